"""PyTorch checkpoints of thuml/predrnn-pytorch and OpenSTL on our nets (no torch needed).

tests/fixtures/torch/ was written once by tools/make_torch_fixtures.py: PyTorch modules with
those repositories' parameter names and forward passes (OpenSTL at v0.3.0 and today where
they differ), saved in each container they write (thuml {'net_param'}, plain state_dict in
the zip and the legacy format, v0.3.0 latest.pth, Lightning best.ckpt), with their
predictions for one input under the evaluation schedule and under a reverse-scheduled-
sampling mask, computed in float64 from the saved float32 weights. Converted, our float32
nets must reproduce them within 1e-5; with LayerNorm within 2e-5: LayerNorm divides by the
per-sample spread of the gate pre-activations, which magnifies float32 rounding (PyTorch's
own float32 forward differs from the float64 one by the same ~1e-5 on these fixtures).
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
            f"--layer_norm={str(c['layer_norm']).lower()}", "--device_target=CPU"]


def convert(tag, out, *extra):
    import convert_checkpoint
    c = manifest()["cases"][tag]
    lines = []
    cfg = convert_checkpoint._convert_torch(c["source"], os.path.join(FIXTURES, c["file"]), out,
                                            case_argv(tag) + list(extra), log=lines.append)
    return cfg, lines


def predict(ms, cfg, path, mask):
    from engine.checkpoint import load_weights
    from nets.registry import build_model
    net = build_model(cfg)
    load_weights(net, path, log=None)
    net.set_train(False)
    frames = np.load(os.path.join(FIXTURES, "reference.npz"))["frames"]
    return net(ms.Tensor(frames), ms.Tensor(mask.astype(np.float32))).asnumpy()


def masks():
    m = manifest()
    b, t, t_in = m["batch"], m["seq_length"], m["input_length"]
    evaluation = np.zeros((b, t - 1), np.float32)
    evaluation[:, :t_in] = 1.0
    rss = np.ones((b, t - 1), np.float32)
    rss[:, 1:] = np.load(os.path.join(FIXTURES, "reference.npz"))["rss_mask"]  # theirs at t-1 is ours at t
    return evaluation, rss


@pytest.mark.parametrize("tag", sorted(json.load(open(os.path.join(FIXTURES, "manifest.json")))["cases"]))
def test_converted_checkpoint_reproduces_pytorch(ms_context, tmp_path, tag):
    ref = np.load(os.path.join(FIXTURES, "reference.npz"))
    out = str(tmp_path / "ours.ckpt")
    cfg, lines = convert(tag, out)
    evaluation, rss = masks()
    atol = 2e-5 if manifest()["cases"][tag]["layer_norm"] else 1e-5
    assert np.abs(ref[f"{tag}_eval"]).mean() > 0.02  # non-trivial outputs
    np.testing.assert_allclose(predict(ms_context, cfg, out, evaluation), ref[f"{tag}_eval"], atol=atol, rtol=0)
    np.testing.assert_allclose(predict(ms_context, cfg, out, rss), ref[f"{tag}_rss"], atol=atol, rtol=0)
    assert any(line.startswith("run it with") for line in lines)


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
