"""ConvLSTM: the cell against a numpy computation of the equations, and the input schedule."""
import numpy as np
import pytest

from engine.config import load_config
from tests.conftest import TINY


def conv2d_same(x, w):
    """numpy cross-correlation with 'same' zero padding: x [B,Ci,H,W], w [Co,Ci,k,k]."""
    k = w.shape[-1]
    pad = k // 2
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    h, wd = x.shape[2], x.shape[3]
    out = np.zeros((x.shape[0], w.shape[0], h, wd))
    for dy in range(k):
        for dx in range(k):
            out += np.einsum("bchw,oc->bohw", xp[:, :, dy:dy + h, dx:dx + wd], w[:, :, dy, dx])
    return out


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def layer_norm(x, gamma, beta, eps=1e-5):
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=(1, 2, 3), keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


@pytest.mark.parametrize("use_ln", [False, True])
def test_cell_matches_numpy_equations(ms_context, use_ln):
    ms = ms_context
    from layers.convlstm_cell import ConvLSTMCell
    rng = np.random.default_rng(0)
    b, cin, hid, size, k = 2, 3, 4, 6, 3
    cell = ConvLSTMCell(cin, hid, size, size, k, layer_norm=use_ln, forget_bias=1.0)
    params = {}
    for p in cell.get_parameters():
        value = rng.normal(0, 0.15, p.shape).astype(np.float32)  # gates where tanh is exact, see test_predrnn_family
        p.set_data(ms.Tensor(value))
        params[p.name] = value.astype(np.float64)
    x, h, c = (rng.normal(0, 0.5, (b, n, size, size)).astype(np.float32) for n in (cin, hid, hid))
    h_new, c_new = (t.asnumpy() for t in cell(ms.Tensor(x), ms.Tensor(h), ms.Tensor(c)))

    gx = conv2d_same(x.astype(np.float64), params["conv_x.0.weight"])
    gh = conv2d_same(h.astype(np.float64), params["conv_h.0.weight"])
    if use_ln:
        gx = layer_norm(gx, params["conv_x.1.gamma"], params["conv_x.1.beta"])
        gh = layer_norm(gh, params["conv_h.1.gamma"], params["conv_h.1.beta"])
    i, f, g, o = np.split(gx + gh, 4, axis=1)
    c_ref = sigmoid(f + 1.0) * c + sigmoid(i) * np.tanh(g)
    h_ref = sigmoid(o) * np.tanh(c_ref)
    np.testing.assert_allclose(c_new, c_ref, atol=1e-5)
    np.testing.assert_allclose(h_new, h_ref, atol=1e-5)
    assert np.abs(c_ref).max() > 0.5  # the check is not vacuous


def test_parameter_names_follow_thuml_layout():
    from nets.registry import build_model
    cfg = load_config(TINY + ["--layer_norm=true"])
    names = {p.name: tuple(p.shape) for p in build_model(cfg).get_parameters()}
    assert names["cell_list.0.conv_x.0.weight"] == (64, 64, 3, 3)
    assert names["cell_list.1.conv_h.0.weight"] == (64, 16, 3, 3)
    assert names["cell_list.0.conv_x.1.gamma"] == (64, 8, 8)
    assert names["conv_last.weight"] == (64, 16, 1, 1)


@pytest.mark.parametrize("model_name", ["convlstm", "convlstm_ef"])
def test_test_mode_never_sees_future_frames(ms_context, model_name):
    """With the evaluation mask the predictions must not depend on the ground-truth future."""
    ms = ms_context
    from data_provider.sampling import eval_mask
    from nets.registry import build_model
    cfg = load_config(TINY + [f"--model_name={model_name}"])
    net = build_model(cfg)
    net.set_train(False)
    rng = np.random.default_rng(1)
    frames = rng.random((8, 10, 8, 8, 64)).astype(np.float32)
    changed = frames.copy()
    changed[:, cfg.input_length:] = rng.random(changed[:, cfg.input_length:].shape)
    mask = ms.Tensor(eval_mask(8, cfg.seq_length, cfg.input_length))
    a = net(ms.Tensor(frames), mask).asnumpy()
    b = net(ms.Tensor(changed), mask).asnumpy()
    assert a.shape[1] == (9 if model_name == "convlstm" else 5) and a.shape[2:] == (8, 8, 64)
    np.testing.assert_array_equal(a, b)
    if model_name == "convlstm":
        # teacher forcing (all-ones mask) does read the future frames
        ones = ms.Tensor(np.ones((8, 9), np.float32))
        assert not np.allclose(net(ms.Tensor(frames), ones).asnumpy(), net(ms.Tensor(changed), ones).asnumpy())
