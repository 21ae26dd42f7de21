"""MAU: its cell and up-convolution against numpy computations of OpenSTL's equations,
OpenSTL checkpoints reproduced (fixtures written once by OpenSTL's own modules); the tiny
MAU that learns beyond the baselines is in tests/test_training.py."""
import json
import math
import os

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.test_convlstm import layer_norm, sigmoid
from tests.test_predrnn_family import randomize
from tests.test_simvp import conv2d

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "openstl_mau")


@pytest.mark.parametrize("cell_mode", ["normal", "residual"])
def test_mau_cell_matches_numpy(ms_context, cell_mode):
    ms = ms_context
    from layers.mau_cell import MAUCell
    rng = np.random.default_rng(0)
    b, c, size, tau = 2, 4, 5, 3
    cell = MAUCell(c, c, size, size, 3, tau=tau, cell_mode=cell_mode)
    p = randomize(cell, ms, rng)
    t, s = (rng.normal(0, 0.5, (b, c, size, size)).astype(np.float32) for _ in range(2))
    t_att, s_att = (rng.normal(0, 0.5, (tau, b, c, size, size)).astype(np.float32) for _ in range(2))
    # the cell takes the history batch-first: [B, tau, C, H, W]
    got = [a.asnumpy() for a in cell(*(ms.Tensor(a) for a in (t, s, t_att.swapaxes(0, 1), s_att.swapaxes(0, 1))))]

    def block(name, x):
        y = conv2d(x, p[f"{name}.0.weight"], p[f"{name}.0.bias"], padding=1)
        return layer_norm(y, p[f"{name}.1.gamma"], p[f"{name}.1.beta"])

    t, s, t_att, s_att = (a.astype(np.float64) for a in (t, s, t_att, s_att))
    s_next, t_next = block("conv_s_next", s), block("conv_t_next", t)
    scores = (s_att * s_next[None]).sum(axis=(2, 3, 4)) / math.sqrt(c * size * size)
    w = np.exp(scores - scores.max(0)) / np.exp(scores - scores.max(0)).sum(0)
    trend = (t_att * w[:, :, None, None, None]).sum(0)
    g = sigmoid(t_next)
    fusion = t * g + (1 - g) * trend
    t_g, t_t, t_s = np.split(block("conv_t", fusion), 3, axis=1)
    s_g, s_t, s_s = np.split(block("conv_s", s), 3, axis=1)
    t_new = sigmoid(t_g) * t_t + (1 - sigmoid(t_g)) * s_t
    s_new = sigmoid(s_g) * s_s + (1 - sigmoid(s_g)) * t_s + (s if cell_mode == "residual" else 0)
    np.testing.assert_allclose(got[0], t_new, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got[1], s_new, rtol=1e-4, atol=1e-5)


def test_up_conv_is_pytorchs_transposed_conv(ms_context):
    """UpConv = ConvTranspose2d(3, stride 2, padding 1, output_padding 1): each input pixel
    scatters its kernel-weighted values into the output, by definition."""
    ms = ms_context
    from layers.mau_cell import UpConv, flip_transposed_weight
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (2, 3, 4, 5))
    w_torch = rng.normal(0, 1, (3, 2, 3, 3))  # [in, out, k, k]
    bias = rng.normal(0, 1, 2)
    cell = UpConv(3, 2)
    cell.conv.weight.set_data(ms.Tensor(flip_transposed_weight(w_torch).astype(np.float32)))
    cell.conv.bias.set_data(ms.Tensor(bias.astype(np.float32)))
    got = cell(ms.Tensor(x.astype(np.float32))).asnumpy()
    full = np.zeros((2, 2, (4 - 1) * 2 + 3 + 1, (5 - 1) * 2 + 3 + 1))  # before cropping the padding
    for i in range(4):
        for j in range(5):
            full[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3] += np.einsum("bc,cokl->bokl", x[:, :, i, j], w_torch)
    want = full[:, :, 1:1 + 8, 1:1 + 10] + bias[None, :, None, None]  # padding 1; 2h - 1 + 1 rows
    assert got.shape == (2, 2, 8, 10)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def manifest():
    with open(os.path.join(FIXTURES, "manifest.json"), encoding="utf-8") as f:
        return json.load(f)


@pytest.mark.parametrize("tag", ["mau", "mau_residual_recall"])
def test_openstl_checkpoint_reproduces_pytorch(ms_context, tmp_path, tag):
    """tools/make_openstl_mau_fixtures.py ran OpenSTL's own MAU_Model under the evaluation
    schedule and a scheduled-sampling mask; convert_checkpoint.py and the torch file itself
    reproduce both to 1e-5."""
    import convert_checkpoint
    from engine.checkpoint import load_weights
    from nets.registry import build_model
    ms = ms_context
    m = manifest()
    case = m["cases"][tag]
    argv = ["--model_name=mau", f"--num_hidden={m['num_hidden']}", f"--filter_size={m['filter_size']}",
            f"--patch_size={m['patch_size']}", f"--img_width={m['img_width']}", f"--img_channel={m['img_channel']}",
            f"--input_length={m['input_length']}", f"--seq_length={m['seq_length']}", f"--mau_tau={m['mau_tau']}",
            f"--sr_size={m['sr_size']}", f"--cell_mode={case['cell_mode']}", f"--model_mode={case['model_mode']}",
            "--device_target=CPU"]
    ref = np.load(os.path.join(FIXTURES, "reference.npz"))
    b, t, t_in = m["batch"], m["seq_length"], m["input_length"]
    evaluation = np.zeros((b, t - 1), np.float32)
    evaluation[:, :t_in] = 1.0
    sampled = evaluation.copy()
    sampled[:, t_in:] = ref["ss_mask"]
    out = str(tmp_path / "ours.ckpt")
    lines = []
    cfg = convert_checkpoint._convert_torch("openstl", os.path.join(FIXTURES, case["file"]), out, argv,
                                            log=lines.append)
    assert any("merge and conv_last_sr" in line for line in lines), lines
    for source in (out, os.path.join(FIXTURES, case["file"])):
        net = build_model(cfg)
        load_weights(net, source, log=None, cfg=cfg)
        net.set_train(False)
        for mask, schedule in ((evaluation, "eval"), (sampled, "ss")):
            got = net(ms.Tensor(ref["frames"]), ms.Tensor(mask)).asnumpy()
            assert np.abs(ref[f"{tag}_{schedule}"]).mean() > 0.02
            np.testing.assert_allclose(got, ref[f"{tag}_{schedule}"], rtol=0, atol=1e-5)
