"""PyTorch checkpoints of thuml/predrnn-pytorch and OpenSTL on our nets (no torch needed).

tests/fixtures/torch/ was written once by tools/make_torch_fixtures.py: PyTorch modules with
those repositories' parameter names and forward passes (OpenSTL at v0.3.0 and today where
they differ), saved in each container they write (thuml {'net_param'}, plain state_dict in
the zip and the legacy format, v0.3.0 latest.pth, Lightning best.ckpt), with their
predictions for one input under the evaluation schedule and under a reverse-scheduled-
sampling mask, and PredRNN-V2's decoupling loss, computed in float64 from the saved float32
weights. Converted, our float32 nets must reproduce them within 1e-5.

The converter sets activations=exact (float64 sigmoid/tanh, layers/activations.py): with
MindSpore's float32 CPU kernels (tanh off by up to 1e-4, sigmoid by 8e-7) OpenSTL
PredRNN-V2 with LayerNorm part from PyTorch by 1.3e-5, because the LayerNorms divide those
errors by the small spread of the gate pre-activations.
"""
import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

from engine.errors import UserError
from tests.conftest import ROOT

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "torch")


def manifest():
    with open(os.path.join(FIXTURES, "manifest.json")) as f:
        return json.load(f)


def case_argv(tag):
    m = manifest()
    c = m["cases"][tag]
    return [f"--model_name={c['model']}", f"--num_hidden={m['num_hidden']}", f"--filter_size={m['filter_size']}",
            f"--patch_size={m['patch_size']}", f"--img_width={m['img_width']}", f"--img_channel={m['img_channel']}",
            f"--input_length={m['input_length']}", f"--seq_length={m['seq_length']}",
            f"--layer_norm={str(c['layer_norm']).lower()}", "--device_target=CPU"] + \
        [f"--{k}={v}" for k, v in c.get("settings", {}).items()]


def convert(tag, out, *extra):
    import convert_checkpoint
    c = manifest()["cases"][tag]
    lines = []
    cfg = convert_checkpoint._convert_torch(c["source"], os.path.join(FIXTURES, c["file"]), out,
                                            case_argv(tag) + list(extra), log=lines.append)
    return cfg, lines


def predict(ms, cfg, path, *masks_):
    """Our predictions for the fixture's frames under each mask, from one net (one compile)."""
    net = load_net(cfg, path)
    net.set_train(False)
    frames = ms.Tensor(np.load(os.path.join(FIXTURES, "reference.npz"))["frames"])
    outs = [net(frames, ms.Tensor(m.astype(np.float32))).asnumpy() for m in masks_]
    return outs[0] if len(outs) == 1 else outs


def load_net(cfg, path):
    from engine.checkpoint import load_weights
    from nets.registry import build_model
    net = build_model(cfg)
    load_weights(net, path, log=None, cfg=cfg)
    return net


def masks():
    m = manifest()
    b, t, t_in = m["batch"], m["seq_length"], m["input_length"]
    evaluation = np.zeros((b, t - 1), np.float32)
    evaluation[:, :t_in] = 1.0
    rss = np.ones((b, t - 1), np.float32)
    rss[:, 1:] = np.load(os.path.join(FIXTURES, "reference.npz"))["rss_mask"]  # theirs at t-1 is ours at t
    return evaluation, rss


TOLERANCE = 1e-5


@pytest.mark.parametrize("tag", sorted(json.load(open(os.path.join(FIXTURES, "manifest.json")))["cases"]))
def test_converted_checkpoint_reproduces_pytorch(ms_context, tmp_path, tag):
    ref = np.load(os.path.join(FIXTURES, "reference.npz"))
    out = str(tmp_path / "ours.ckpt")
    cfg, lines = convert(tag, out)
    evaluation, rss = masks()
    atol = TOLERANCE
    assert np.abs(ref[f"{tag}_eval"]).mean() > 0.02  # non-trivial outputs
    got_eval, got_rss = predict(ms_context, cfg, out, evaluation, rss)
    np.testing.assert_allclose(got_eval, ref[f"{tag}_eval"], atol=atol, rtol=0)
    np.testing.assert_allclose(got_rss, ref[f"{tag}_rss"], atol=atol, rtol=0)
    assert any(line.startswith("run it with") for line in lines)


@pytest.mark.parametrize("tag", ["thuml_predrnn_v2", "openstl_predrnn_v2"])
def test_decoupling_loss_matches_pytorch(ms_context, tmp_path, tag):
    """Training mode returns decouple_beta * the mean over layers and steps of the mean
    |cosine| between adapted delta_c and delta_m (per channel, flattened over H*W), as thuml."""
    ref = np.load(os.path.join(FIXTURES, "reference.npz"))
    cfg, _ = convert(tag, str(tmp_path / "ours.ckpt"))
    net = load_net(cfg, str(tmp_path / "ours.ckpt"))
    net.set_train(True)
    _, rss = masks()
    frames = ms_context.Tensor(ref["frames"])
    pred, term = net(frames, ms_context.Tensor(rss))
    assert 0.05 < float(ref[f"{tag}_decouple"]) < 1  # a value the test can tell from 0 or 1
    assert abs(float(term.asnumpy()) / cfg.decouple_beta - float(ref[f"{tag}_decouple"])) < 1e-5
    np.testing.assert_allclose(pred.asnumpy(), ref[f"{tag}_rss"], atol=TOLERANCE, rtol=0)


def test_switches_are_selected_and_reported(ms_context, tmp_path):
    cfg, lines = convert("openstl_convlstm_v030", str(tmp_path / "a.ckpt"))
    assert cfg.forget_bias == 0.0 and cfg.convlstm_hidden == "g"
    assert any("never adds" in line for line in lines)
    cfg, lines = convert("openstl_predrnn_pp_current", str(tmp_path / "b.ckpt"))
    assert cfg.causal_c_input == "c" and any("assuming OpenSTL current" in line for line in lines)
    assert any("--causal_c_input=c" in line for line in lines if line.startswith("run it with"))
    # the other code version on the same tensors converts, but predicts something else
    cfg, _ = convert("openstl_predrnn_pp_current", str(tmp_path / "c.ckpt"), "--openstl_code=v0.3.0")
    assert cfg.causal_c_input == "m"
    evaluation, _ = masks()
    wrong = predict(ms_context, cfg, str(tmp_path / "c.ckpt"), evaluation)
    ref = np.load(os.path.join(FIXTURES, "reference.npz"))["openstl_predrnn_pp_current_eval"]
    assert np.abs(wrong - ref).max() > 1e-3


def test_e3d_switches_are_selected_and_reported(tmp_path):
    cfg, lines = convert("openstl_e3d_lstm", str(tmp_path / "e.ckpt"), "--e3d_memory=paper")
    assert (cfg.e3d_memory, cfg.e3d_gates, cfg.e3d_temporal_conv, cfg.e3d_recall_layout, cfg.activations,
            cfg.filter_size, cfg.temporal_kernel, cfg.window_length) == \
        ("released", "released", "upsample", "flat", "exact", 5, 2, 2)
    assert any("setting e3d_memory=released (was paper)" in line for line in lines)
    assert any("tf_Conv3d" in line for line in lines) and any("without a permute" in line for line in lines)


def pth(tag):
    return os.path.join(FIXTURES, manifest()["cases"][tag]["file"])


def test_pytorch_files_load_directly(ms_context):
    """eval/export/infer build their net through engine.inference, which hands the config to
    load_weights: a Lightning best.ckpt (not one of ours) is converted in memory."""
    from engine.config import load_config
    from engine.inference import CheckpointPredictor
    tag = "openstl_convlstm_current"
    cfg = load_config(case_argv(tag) + ["--forget_bias=0.0"])
    m = manifest()
    frames = np.load(os.path.join(FIXTURES, "reference.npz"))["frames"]
    got = CheckpointPredictor(cfg, pth(tag), m["batch"]).predict(frames[:, :m["input_length"]])
    ref = np.load(os.path.join(FIXTURES, "reference.npz"))[f"{tag}_eval"][:, m["input_length"] - 1:]
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)


def test_direct_use_checks_model_source_and_switches(ms_context, monkeypatch):
    from engine import torch_compat
    from engine.checkpoint import load_weights, read_checkpoint
    from engine.config import load_config
    from nets.registry import build_model

    def cfg_for(tag, *extra):
        return load_config(case_argv(tag) + list(extra))

    # the released code's switches are required; the message gives every flag and the config
    cfg = cfg_for("openstl_e3d_lstm")
    with pytest.raises(UserError) as err:
        load_weights(build_model(cfg), pth("openstl_e3d_lstm"), log=None, cfg=cfg)
    text = str(err.value)
    assert "\n" not in text and "--e3d_memory=released" in text and "--e3d_temporal_conv=upsample" in text
    assert "configs/openstl_e3d_lstm_mmnist.yaml" in text
    # another model's file, a source that has no such model, a resume from a .pth
    cfg = cfg_for("openstl_predrnn")
    with pytest.raises(UserError, match="holds a e3d_lstm.*--model_name=e3d_lstm"):
        load_weights(build_model(cfg), pth("openstl_e3d_lstm"), log=None, cfg=cfg)
    cfg = cfg_for("openstl_convlstm_v030", "--checkpoint_source=thuml")
    with pytest.raises(UserError, match="checkpoint_source"):
        load_weights(build_model(cfg), pth("openstl_convlstm_v030"), log=None, cfg=cfg)
    with pytest.raises(UserError, match="PyTorch checkpoint.*--pretrained_model"):
        read_checkpoint(pth("thuml_predrnn"))
    # auto: a plain PredRNN-V2 state_dict could be thuml's or OpenSTL's, which mean the same
    sd, kind, origin = torch_compat.network_state(torch_compat.read_torch_file(pth("openstl_predrnn_v2")))
    source, why = torch_compat.resolve_source("auto", "predrnn_v2", sd, origin, kind, "x.pth")
    assert origin == "plain" and "same names" in why
    assert torch_compat.resolve_source("auto", "predrnn_v2", sd, "thuml", kind, "x.pth")[0] == "thuml"
    # were their maths different, auto would refuse in one line and name the key
    real = torch_compat.switches
    monkeypatch.setattr(torch_compat, "switches", lambda s, m, c: {**real(s, m, c), "forget_bias": (float(s == "thuml"), "")})
    with pytest.raises(UserError, match=r"--checkpoint_source=thuml\|openstl") as err:
        torch_compat.resolve_source("auto", "predrnn_v2", sd, origin, kind, "x.pth")
    assert "\n" not in str(err.value)
    monkeypatch.undo()
    # OpenSTL PredRNN++: the config's causal_c_input picks the version, and the log says so
    lines = []
    cfg = cfg_for("openstl_predrnn_pp_current", "--causal_c_input=m", "--activations=exact")
    load_weights(build_model(cfg), pth("openstl_predrnn_pp_current"), log=lines.append, cfg=cfg)
    assert any("computing OpenSTL v0.3.0's predrnn_pp" in line and "usually written by current" in line
               for line in lines)


def test_mismatched_config_is_refused_with_every_key(tmp_path):
    with pytest.raises(UserError) as err:
        convert("thuml_predrnn", str(tmp_path / "x.ckpt"), "--num_hidden=4,4,4", "--layer_norm=false")
    text = str(err.value)
    assert "cell_list.0.conv_x.1.weight" in text and "cell_list.2.conv_x.0.weight" in text
    assert "num_hidden=4,4" in text and "layer_norm=True" in text
    assert not os.path.exists(tmp_path / "x.ckpt")
    with pytest.raises(UserError, match="shapes differ"):
        convert("openstl_predrnn_v2", str(tmp_path / "y.ckpt"), "--filter_size=5")
    with pytest.raises(UserError, match="model_name"):
        convert("thuml_predrnn", str(tmp_path / "z.ckpt"), "--model_name=predrnn_pp")


def test_reader_executes_nothing(tmp_path):
    """A pickle that would run os.system under pickle.load yields an inert placeholder."""
    from engine.torch_compat import Opaque, read_torch_file
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("evil/data.pkl", pickle.dumps({"net_param": {"w": Evil()}}))
    obj = read_torch_file(str(path))
    assert isinstance(obj["net_param"]["w"], Opaque) and not marker.exists()
    from engine.torch_compat import network_state
    with pytest.raises(UserError, match="not tensors"):
        network_state(obj, str(path))
    legacy = tmp_path / "evil_legacy.pth"
    buf = io.BytesIO()
    for part in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}, Evil()):
        pickle.dump(part, buf)
    legacy.write_bytes(buf.getvalue())
    with pytest.raises(Exception):
        read_torch_file(str(legacy))
    assert not marker.exists()


def test_openstl_e3d_loss_is_mse_plus_l1(ms_context):
    """configs/openstl_e3d_lstm_mmnist.yaml trains on MSE + L1 over the T-1 predicted frames,
    as OpenSTL's E3DLSTM_Model: our loss on the converted net equals that loss computed
    from PyTorch's own predictions."""
    from engine.config import load_config
    from engine.trainer import NetWithLoss
    tag = "openstl_e3d_lstm"
    cfg = load_config([f"--config_path={ROOT}/configs/openstl_e3d_lstm_mmnist.yaml"] + case_argv(tag))
    assert cfg.loss == "mse_l1"
    net = load_net(cfg, pth(tag))
    net.set_train(False)
    ref = np.load(os.path.join(FIXTURES, "reference.npz"))
    frames = ref["frames"]
    evaluation, _ = masks()
    ours = float(NetWithLoss(net, cfg.seq_length, cfg.loss)(ms_context.Tensor(frames),
                                                            ms_context.Tensor(evaluation)).asnumpy())
    diff = ref[f"{tag}_eval"].astype(np.float64) - frames[:, 1:]
    theirs = np.mean(diff ** 2) + np.mean(np.abs(diff))
    assert np.mean(np.abs(diff)) > 0.05  # the L1 term is there to be seen
    assert abs(ours - theirs) < 1e-5
    mse_only = float(NetWithLoss(net, cfg.seq_length)(ms_context.Tensor(frames),
                                                      ms_context.Tensor(evaluation)).asnumpy())
    assert abs(mse_only - np.mean(diff ** 2)) < 1e-5


def test_fine_tuning_starts_from_a_pytorch_file(ms_context, tmp_path):
    """train.py's path with --pretrained_model=<OpenSTL .pth>: the weights are converted in
    memory, training runs with OpenSTL's loss, and the checkpoint it writes is ours, one
    small Adam step from the converted weights per iteration."""
    from data_provider.mindrecord import write_mindrecord
    from engine.config import load_config
    from engine.trainer import train
    m = manifest()
    rng = np.random.default_rng(0)
    clips = (rng.random((6, m["seq_length"], m["img_width"], m["img_width"], 1)) * 255).astype(np.uint8)
    write_mindrecord(tmp_path / "train.mindrecord", [clips])
    tag, lr, steps = "openstl_e3d_lstm", 1e-3, 2
    cfg = load_config([f"--config_path={ROOT}/configs/openstl_e3d_lstm_mmnist.yaml"] + case_argv(tag) + [
        f"--pretrained_model={pth(tag)}", f"--train_mindrecord={tmp_path / 'train.mindrecord'}",
        f"--save_dir={tmp_path / 'ckpt'}", "--batch_size=2", f"--max_iterations={steps}",
        f"--snapshot_interval={steps}", f"--lr={lr}", "--log_interval=1"])
    lines = []
    result = train(cfg, log=lines.append)
    assert any("PyTorch checkpoint of openstl's e3d_lstm" in line and "converted in memory" in line
               for line in lines), lines
    assert result["step"] == steps and np.isfinite(result["loss"])
    convert(tag, str(tmp_path / "converted.ckpt"))
    from engine.checkpoint import read_checkpoint
    start = read_checkpoint(str(tmp_path / "converted.ckpt"))
    tuned = read_checkpoint(result["checkpoint"])
    moved = []
    for name, value in start.items():
        delta = np.abs(tuned[name].asnumpy() - value.asnumpy())
        assert delta.max() <= 2 * steps * lr, name  # Adam moves each weight ~lr per step
        if ".conv_m." in name:
            # OpenSTL's released memory flow hands every cell the zero M: conv_m never gets
            # a gradient there, in PyTorch as here
            assert delta.max() == 0, name
        else:
            moved.append((delta.max(), name))
    assert min(moved)[0] > 0.1 * lr, min(moved)  # every other tensor trained
