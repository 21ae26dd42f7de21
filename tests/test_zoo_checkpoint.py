"""Checkpoints of the MindSpore model zoo's PredRNN++ (research/cv/predrnn++) on our predrnn_pp.

The fixtures in tests/fixtures/zoo/ were written by THEIR code (tools/make_zoo_fixtures.py,
their PreRNN trained two steps through their train.py wrapper and saved by ModelCheckpoint),
with their eval.py's predictions for a fixed clip and their loss on a fixed batch. Both
sides run on MindSpore with the same operators, so predictions agree to float rounding.
"""
import json
import os

import numpy as np
import pytest

from engine.errors import UserError
from tests.conftest import ROOT

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "zoo")


def manifest():
    with open(os.path.join(FIXTURES, "manifest.json")) as f:
        return json.load(f)


def reference():
    return np.load(os.path.join(FIXTURES, "zoo_reference.npz"))


def zoo_argv(tag, *extra):
    m = manifest()
    return ["--model_name=predrnn_pp", f"--num_hidden={m['configs'][tag]['num_hidden']}",
            f"--filter_size={m['filter_size']}", f"--patch_size={m['patch_size']}",
            f"--img_width={m['img_width']}", f"--img_channel={m['img_channel']}",
            f"--input_length={m['input_length']}", f"--seq_length={m['seq_length']}",
            "--layer_norm=true", f"--batch_size={m['batch_size']}", "--reverse_input=false",
            "--device_target=CPU", "--log_interval=1"] + list(extra)


def zoo_checkpoint(tag):
    return os.path.join(FIXTURES, manifest()["configs"][tag]["checkpoint"])


def bare_name(name):
    """The name the zoo's bare PreRNN has under mindspore.save_checkpoint(net, ...) for a
    tensor their train.py saves as `name`: 'network.' dropped and, as PreRNN fills an empty
    nn.CellList with append(), the cells' 'lstm.' too ('0.h_conv.weight');
    test_bare_prernn_names_are_what_mindspore_gives pins that rule to MindSpore itself."""
    short = name[len("network."):]
    return short[len("lstm."):] if short.startswith("lstm.") else short


def bare_copy(ms, src, dst):
    """The same network saved as the zoo's bare PreRNN is: its names, no optimizer."""
    params = ms.load_checkpoint(src)
    entries = [{"name": bare_name(k), "data": v} for k, v in params.items() if k.startswith("network.")]
    ms.save_checkpoint(entries, dst)
    return dst


def test_bare_prernn_names_are_what_mindspore_gives(ms_context):
    """PreRNN's containers (an empty nn.CellList filled by append, then gradient_highway and
    conv2d attributes), saved bare and inside their NetWithLossCell's 'network'."""
    from mindspore import nn

    class Cell(nn.Cell):
        def __init__(self):
            super().__init__()
            self.h_conv = nn.Conv2d(2, 2, 3)

    class PreRNNShape(nn.Cell):
        def __init__(self):
            super().__init__()
            self.lstm = nn.CellList()
            for _ in range(2):
                self.lstm.append(Cell())
            self.gradient_highway = Cell()
            self.conv2d = nn.Conv2d(2, 1, 1)

    class Wrapper(nn.Cell):
        def __init__(self, network):
            super().__init__()
            self.network = network

    wrapped = [p.name for p in Wrapper(PreRNNShape()).get_parameters()]
    bare = [p.name for p in PreRNNShape().get_parameters()]
    assert wrapped[0] == "network.lstm.0.h_conv.weight" and bare[0] == "0.h_conv.weight"
    assert [bare_name(n) for n in wrapped] == bare


def predict(ms, cfg, path):
    from data_provider.patch import reshape_patch
    from data_provider.sampling import eval_mask
    from engine.checkpoint import load_weights
    from nets.registry import build_model
    net = build_model(cfg)
    load_weights(net, path, log=None)
    net.set_train(False)
    frames = reshape_patch(reference()["test_clip"].astype(np.float32) / 255.0, cfg.patch_size)
    mask = eval_mask(frames.shape[0], cfg.seq_length, cfg.input_length)
    out = net(ms.Tensor(frames.astype(np.float32)), ms.Tensor(mask)).asnumpy()
    return out.transpose(0, 1, 4, 2, 3)  # ours NHWC, theirs NCHW


@pytest.mark.parametrize("tag", ["L3", "L4"])
def test_zoo_checkpoint_predicts_what_the_zoo_predicted(ms_context, tmp_path, tag):
    from engine.config import load_config
    ms = ms_context
    cfg = load_config(zoo_argv(tag))
    expected = reference()[f"{tag}_pred"]
    prefixed = predict(ms, cfg, zoo_checkpoint(tag))
    assert prefixed.shape == expected.shape
    assert np.abs(expected).mean() > 0.02  # non-trivial weights, not ~0 outputs
    np.testing.assert_allclose(prefixed, expected, atol=1e-5)
    bare_path = bare_copy(ms, zoo_checkpoint(tag), str(tmp_path / "bare.ckpt"))
    assert "0.h_conv.weight" in ms.load_checkpoint(bare_path)
    bare = predict(ms, cfg, bare_path)
    np.testing.assert_allclose(bare, expected, atol=1e-5)


def test_fine_tuning_starts_from_the_zoo_loss(ms_context, tmp_path):
    """train.py --pretrained_model=zoo.ckpt: the first loss is their loss on the same batch.
    Theirs is L2Loss / batch (half the sum of squares over the T-1 generated frames, per
    sequence), ours the mean squared error over the same frames. Their NetWithLossCell
    assigns the freshly drawn mask to its mask_true Parameter inside construct, but the
    network reads the value from before that assignment: a step uses the previous step's
    mask, and the first step the initial zeros (every prediction-period input is the
    model's own output). With scheduled_sampling off our first step feeds the same."""
    from data_provider.mindrecord import write_mindrecord
    from engine.config import load_config
    from engine.trainer import train
    tag = "L4"
    ref = reference()
    clip = ref["train_clip"]
    data = str(tmp_path / "train.mindrecord")
    write_mindrecord(data, [clip])
    lines = []
    cfg = load_config(zoo_argv(tag, f"--train_mindrecord={data}", f"--pretrained_model={zoo_checkpoint(tag)}",
                               f"--save_dir={tmp_path / 'run'}", "--max_iterations=3", "--snapshot_interval=3",
                               "--scheduled_sampling=false"))
    result = train(cfg, log=lines.append)
    b, t = clip.shape[:2]
    elements = clip[0, 1:].size * b
    ours_as_theirs = result["history"][0][1] * elements / (2.0 * b)
    theirs = manifest()["configs"][tag]["loss_l2_over_batch"]["forward"]
    assert ours_as_theirs == pytest.approx(theirs, rel=1e-5)
    assert len(result["history"]) == 3 and all(np.isfinite(l) for _, l in result["history"])
    assert any("weights from" in line for line in lines)


def test_convert_checkpoint_writes_a_plain_checkpoint_of_ours(ms_context, tmp_path, capsys):
    import convert_checkpoint
    from engine.checkpoint import load_into, read_checkpoint
    from engine.config import load_config
    from nets.registry import build_model
    out = str(tmp_path / "ours.ckpt")
    convert_checkpoint.main(["--source=zoo", f"--input={zoo_checkpoint('L3')}", f"--output={out}"] + zoo_argv("L3"))
    params = read_checkpoint(out)
    assert not any(k.startswith(("network.", "moment")) for k in params)
    assert "lstm.0.conv_x.1.gamma" in params and np.all(params["conv_last.bias"].asnumpy() == 0)
    load_into(build_model(load_config(zoo_argv("L3"))), params, out)  # strict: every tensor, every shape
    np.testing.assert_allclose(predict(ms_context, load_config(zoo_argv("L3")), out),
                               reference()["L3_pred"], atol=1e-5)


def test_mis_shaped_or_unknown_tensors_give_one_clear_list(ms_context, tmp_path):
    import mindspore as ms
    from engine.checkpoint import load_weights
    from engine.config import load_config
    from nets.registry import build_model
    params = ms.load_checkpoint(zoo_checkpoint("L3"))
    entries = [{"name": k, "data": v} for k, v in params.items() if k != "network.lstm.2.cell_conv.bias"]
    entries.append({"name": "network.lstm.0.extra_conv.weight", "data": ms.Tensor(np.zeros((2, 2), np.float32))})
    bad = str(tmp_path / "bad.ckpt")
    ms.save_checkpoint(entries, bad)
    net = build_model(load_config(zoo_argv("L3", "--num_hidden=6,3,5")))
    with pytest.raises(UserError) as err:
        load_weights(net, bad, log=None)
    text = str(err.value)
    assert "unknown tensor network.lstm.0.extra_conv.weight" in text
    assert "lstm.2.conv_last.0.bias (5,) of this net is not in the checkpoint" in text
    assert "network.lstm.2.h_conv.weight (12, 3, 3, 3) -> lstm.2.conv_h.0.weight (20, 5, 3, 3)" in text
    assert "num_hidden=6,3,3" in text  # says what the checkpoint was trained with
    assert "1 tensor(s) it has no place for (network.lstm.0.extra_conv.weight)" in text.splitlines()[0]
    # a zoo checkpoint is refused by another model, by name
    with pytest.raises(UserError, match="predrnn_pp only"):
        load_weights(build_model(load_config(zoo_argv("L3", "--model_name=predrnn", "--num_hidden=4,4"))),
                     zoo_checkpoint("L3"), log=None)
