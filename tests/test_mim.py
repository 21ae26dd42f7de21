"""MIM: the MIMN and MIM block against numpy computations of OpenSTL's equations, OpenSTL
checkpoints reproduced (fixtures written once by OpenSTL's own modules); the tiny MIM that
learns beyond the baselines is in tests/test_training.py."""
import json
import os

import numpy as np
import pytest

from engine.config import load_config
from tests.conftest import ROOT
from tests.test_convlstm import conv2d_same, layer_norm, sigmoid
from tests.test_predrnn_family import randomize

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "openstl_mim")


def conv(p, name, x, use_ln):
    out = conv2d_same(x, p[f"{name}.0.weight"])
    if use_ln:
        out = layer_norm(out, p[f"{name}.1.gamma"], p[f"{name}.1.beta"])
    return out


def mimn(p, prefix, x, h, c, use_ln, n):
    i_h, g_h, f_h, o_h = np.split(conv(p, f"{prefix}conv_h_concat", h, use_ln), 4, axis=1)
    i_c, f_c = np.split(np.concatenate([c, c], axis=1) * p[f"{prefix}ct_weight"], 2, axis=1)
    i_x, g_x, f_x, o_x = np.split(conv(p, f"{prefix}conv_x_concat", x, use_ln), 4, axis=1)
    c_new = sigmoid(f_h + f_c + f_x + 1.0) * c + sigmoid(i_h + i_c + i_x) * np.tanh(g_h + g_x)
    h_new = sigmoid(o_h + o_x + c_new * p[f"{prefix}oc_weight"]) * np.tanh(c_new)
    return h_new, c_new


@pytest.mark.parametrize("use_ln", [False, True])
def test_mimn_and_mim_block_match_numpy(ms_context, use_ln):
    ms = ms_context
    from layers.mim_cell import MIMN, MIMBlock
    rng = np.random.default_rng(0)
    b, c, size = 2, 4, 5
    states = [rng.normal(0, 0.5, (b, c, size, size)).astype(np.float32) for _ in range(6)]
    x, d, h, cc, m, n = states
    cell = MIMN(c, c, size, size, 3, layer_norm=use_ln)
    p = randomize(cell, ms, rng)
    got = [t.asnumpy() for t in cell(*(ms.Tensor(a) for a in (x, h, cc)))]
    want = mimn(p, "", *(a.astype(np.float64) for a in (x, h, cc)), use_ln, c)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)

    block = MIMBlock(c, c, size, size, 3, layer_norm=use_ln)
    p = randomize(block, ms, rng)
    got = [t.asnumpy() for t in block(*(ms.Tensor(a) for a in (x, d, h, cc, m, n)))]
    x, d, h, cc, m, n = (a.astype(np.float64) for a in (x, d, h, cc, m, n))
    i_t, g_t, o_t = np.split(conv(p, "conv_t_cc", h, use_ln), 3, axis=1)
    i_s, g_s, f_s, o_s = np.split(conv(p, "conv_s_cc", m, use_ln), 4, axis=1)
    i_x, g_x, f_x, o_x = np.split(conv(p, "conv_x_cc", x, use_ln), 4, axis=1)
    m_new = sigmoid(f_x + f_s + 1.0) * m + sigmoid(i_x + i_s) * np.tanh(g_x + g_s)
    c_mims, n_new = mimn(p, "mims.", d, cc, n, use_ln, c)  # MIMS: the difference in, the cell state as h
    c_new = c_mims + sigmoid(i_x + i_t) * np.tanh(g_x + g_t)
    h_new = sigmoid(o_x + o_t + o_s) * np.tanh(conv2d_same(np.concatenate([c_new, m_new], 1), p["conv_last.weight"]))
    for g, w in zip(got, (h_new, c_new, m_new, n_new)):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_needs_equal_widths():
    from nets.mim import MIM
    with pytest.raises(ValueError, match="one width"):
        MIM([8, 4], 5, 2, 4, 8, 8)
    # from a config the same check is one line for the user (run_cli prints UserError)
    from engine.errors import UserError
    from nets.registry import build_model
    with pytest.raises(UserError, match="model_name=mim: .*one width"):
        build_model(load_config(["--model_name=mim", "--num_hidden=8,4", "--patch_size=4"]))
    with pytest.raises(UserError, match="model_name=phydnet: .*patch_size must be 2 or 4"):
        build_model(load_config(["--model_name=phydnet", "--patch_size=8"]))


def manifest():
    with open(os.path.join(FIXTURES, "manifest.json"), encoding="utf-8") as f:
        return json.load(f)


@pytest.mark.parametrize("tag", ["mim", "mim_ln"])
def test_openstl_checkpoint_reproduces_pytorch(ms_context, tmp_path, tag):
    """tools/make_openstl_mim_fixtures.py ran OpenSTL's own MIM_Model (a fresh model per call)
    under the evaluation schedule and a scheduled-sampling mask; convert_checkpoint.py and
    the torch file itself reproduce both to 1e-5 (activations: exact, as for the other
    recurrent models)."""
    import convert_checkpoint
    from engine.checkpoint import load_weights
    from nets.registry import build_model
    ms = ms_context
    m = manifest()
    case = m["cases"][tag]
    argv = ["--model_name=mim", f"--num_hidden={m['num_hidden']}", f"--filter_size={m['filter_size']}",
            f"--patch_size={m['patch_size']}", f"--img_width={m['img_width']}", f"--img_channel={m['img_channel']}",
            f"--input_length={m['input_length']}", f"--seq_length={m['seq_length']}",
            f"--layer_norm={str(case['layer_norm']).lower()}", "--device_target=CPU"]
    ref = np.load(os.path.join(FIXTURES, "reference.npz"))
    b, t, t_in = m["batch"], m["seq_length"], m["input_length"]
    evaluation = np.zeros((b, t - 1), np.float32)
    evaluation[:, :t_in] = 1.0
    sampled = evaluation.copy()
    sampled[:, t_in:] = ref["ss_mask"]  # theirs at t - input_length is ours at t
    out = str(tmp_path / "ours.ckpt")
    lines = []
    cfg = convert_checkpoint._convert_torch("openstl", os.path.join(FIXTURES, case["file"]), out, argv,
                                            log=lines.append)
    assert any("activations=exact" in line for line in lines), lines
    for source in (out, os.path.join(FIXTURES, case["file"])):
        net = build_model(cfg)
        load_weights(net, source, log=None, cfg=cfg)
        net.set_train(False)
        for mask, schedule in ((evaluation, "eval"), (sampled, "ss")):
            got = net(ms.Tensor(ref["frames"]), ms.Tensor(mask)).asnumpy()
            assert np.abs(ref[f"{tag}_{schedule}"]).mean() > 0.02
            np.testing.assert_allclose(got, ref[f"{tag}_{schedule}"], rtol=0, atol=1e-5)
