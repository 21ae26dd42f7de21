"""PredRNN, PredRNN-V2 and PredRNN++ cells against numpy computations of their equations,
the decoupling loss, the memory zigzag, and a few training steps of each model."""
import os

import numpy as np
import pytest

from engine.config import load_config
from tests.conftest import TINY
from tests.test_convlstm import conv2d_same, layer_norm, sigmoid


# Weights small enough that gate pre-activations stay where MindSpore's CPU tanh is exact to
# ~1e-7 (its approximation errs by up to 1e-4 for 3 < |x| < 8, measured on MindSpore 2.10 CPU), so
# the equations can be checked to 1e-5.
def randomize(cell, ms, rng, scale=0.15):
    params = {}
    for p in cell.get_parameters():
        value = rng.normal(0, scale, p.shape).astype(np.float32)
        p.set_data(ms.Tensor(value))
        params[p.name] = value.astype(np.float64)
    return params


def conv(params, name, x, use_ln, channel_ln=False):
    out = conv2d_same(x, params[f"{name}.0.weight"])
    if f"{name}.0.bias" in params:
        out = out + params[f"{name}.0.bias"][None, :, None, None]
    if use_ln:
        gamma, beta = params[f"{name}.1.gamma"], params[f"{name}.1.beta"]
        out = layer_norm(out, gamma, beta)
    return out


def states(rng, b, size, *channels):
    return [rng.normal(0, 0.5, (b, ch, size, size)).astype(np.float32) for ch in channels]


@pytest.mark.parametrize("use_ln", [False, True])
def test_st_lstm_cell_matches_numpy(ms_context, use_ln):
    ms = ms_context
    from layers.st_lstm_cell import SpatioTemporalLSTMCell
    rng = np.random.default_rng(1)
    b, cin, hid, size = 2, 3, 4, 5
    cell = SpatioTemporalLSTMCell(cin, hid, size, size, 3, layer_norm=use_ln)
    p = randomize(cell, ms, rng)
    x, h, c, m = states(rng, b, size, cin, hid, hid, hid)
    got = [t.asnumpy() for t in cell(*(ms.Tensor(a) for a in (x, h, c, m)))]
    x, h, c, m = (a.astype(np.float64) for a in (x, h, c, m))
    i_x, f_x, g_x, i_xp, f_xp, g_xp, o_x = np.split(conv(p, "conv_x", x, use_ln), 7, axis=1)
    i_h, f_h, g_h, o_h = np.split(conv(p, "conv_h", h, use_ln), 4, axis=1)
    i_m, f_m, g_m = np.split(conv(p, "conv_m", m, use_ln), 3, axis=1)
    delta_c = sigmoid(i_x + i_h) * np.tanh(g_x + g_h)
    c_new = sigmoid(f_x + f_h + 1.0) * c + delta_c
    delta_m = sigmoid(i_xp + i_m) * np.tanh(g_xp + g_m)
    m_new = sigmoid(f_xp + f_m + 1.0) * m + delta_m
    mem = np.concatenate([c_new, m_new], axis=1)
    o = sigmoid(o_x + o_h + conv(p, "conv_o", mem, use_ln))
    h_new = o * np.tanh(conv2d_same(mem, p["conv_last.weight"]))
    for a, e in zip(got, (h_new, c_new, m_new, delta_c, delta_m)):
        np.testing.assert_allclose(a, e, atol=1e-5)


@pytest.mark.parametrize("use_ln, gate", [(True, "tanh"), (False, "sigmoid")])
def test_causal_lstm_cell_matches_numpy(ms_context, use_ln, gate):
    ms = ms_context
    from layers.causal_lstm_cell import CausalLSTMCell
    rng = np.random.default_rng(2)
    b, cin, hid, mem_in, size = 2, 3, 4, 6, 5
    cell = CausalLSTMCell(cin, hid, size, size, 3, layer_norm=use_ln, memory_channels=mem_in, output_gate=gate)
    p = randomize(cell, ms, rng)
    assert p["conv_m.0.weight"].shape == (12, 6, 3, 3)
    if use_ln:
        assert p["conv_x.1.gamma"].shape == (28, 1, 1)  # per-channel scale, as the reference
    x, h, c, m = states(rng, b, size, cin, hid, hid, mem_in)
    got = [t.asnumpy() for t in cell(*(ms.Tensor(a) for a in (x, h, c, m)))]
    x, h, c, m = (a.astype(np.float64) for a in (x, h, c, m))
    i_h, g_h, f_h, o_h = np.split(conv(p, "conv_h", h, use_ln), 4, axis=1)
    i_c, g_c, f_c = np.split(conv(p, "conv_c", c, use_ln), 3, axis=1)
    i_m, f_m, m_m = np.split(conv(p, "conv_m", m, use_ln), 3, axis=1)
    i_x, g_x, f_x, o_x, i_xp, g_xp, f_xp = np.split(conv(p, "conv_x", x, use_ln), 7, axis=1)
    c_new = sigmoid(f_x + f_h + f_c + 1.0) * c + sigmoid(i_x + i_h + i_c) * np.tanh(g_x + g_h + g_c)
    i_c2, g_c2, f_c2, o_c = np.split(conv(p, "conv_c2m", c_new, use_ln), 4, axis=1)
    m_new = sigmoid(f_c2 + f_xp + f_m + 1.0) * np.tanh(m_m) + sigmoid(i_c2 + i_xp + i_m) * np.tanh(g_c2 + g_xp)
    pre = o_x + o_h + o_c + conv(p, "conv_om", m_new, use_ln)
    o = np.tanh(pre) if gate == "tanh" else sigmoid(pre)
    h_new = o * np.tanh(conv(p, "conv_last", np.concatenate([c_new, m_new], axis=1), False))
    for a, e in zip(got, (h_new, c_new, m_new)):
        np.testing.assert_allclose(a, e, atol=1e-5)


def test_exact_activations_reach_pytorch_precision_where_the_kernels_do_not(ms_context):
    """activations=exact (float64 sigmoid/tanh, precise LayerNorm) in every cell of the PredRNN
    family: with weights large enough that gates reach 3 < |x| < 8, where MindSpore's CPU tanh
    errs by up to 1e-4, the causal LSTM matches float64 numpy within 2e-6 with it and not
    without it; the ST-LSTM, ConvLSTM and GHU cells carry the switch too."""
    ms = ms_context
    from layers.causal_lstm_cell import CausalLSTMCell
    from nets.registry import build_model
    errors = {}
    for exact in (False, True):
        rng = np.random.default_rng(5)
        cell = CausalLSTMCell(3, 4, 5, 5, 3, layer_norm=False, exact=exact)
        p = randomize(cell, ms, rng, scale=0.6)
        x, h, c, m = states(rng, 2, 5, 3, 4, 4, 4)
        got = cell(*(ms.Tensor(a) for a in (x, h, c, m)))[1].asnumpy()
        x, h, c, m = (a.astype(np.float64) for a in (x, h, c, m))
        i_h, g_h, f_h, _ = np.split(conv(p, "conv_h", h, False), 4, axis=1)
        i_c, g_c, f_c = np.split(conv(p, "conv_c", c, False), 3, axis=1)
        i_x, g_x, f_x = np.split(conv(p, "conv_x", x, False), 7, axis=1)[:3]
        assert np.abs(g_x + g_h + g_c).max() > 5  # where the float32 kernel is approximate
        c_new = sigmoid(f_x + f_h + f_c + 1.0) * c + sigmoid(i_x + i_h + i_c) * np.tanh(g_x + g_h + g_c)
        errors[exact] = np.abs(got - c_new).max()
    assert errors[True] < 2e-6 < 1e-5 < errors[False], errors
    for model in ("convlstm", "convlstm_ef", "predrnn", "predrnn_v2", "predrnn_pp", "e3d_lstm"):
        net = build_model(load_config(TINY + [f"--model_name={model}", "--num_hidden=4,4", "--layer_norm=true",
                                              "--activations=exact"]))
        cells = [c for _, c in net.cells_and_names() if hasattr(c, "exact")]
        assert cells and all(c.exact for c in cells), model
        norms = [c for _, c in net.cells_and_names() if type(c).__name__ == "TensorLayerNorm"]
        assert norms and all(n.precise for n in norms), model


def test_layer_norm_written_gradients_match_autodiff(ms_context):
    """The written backward of the non-precise TensorLayerNorm (per-channel and element-wise
    affine, NCHW and NCDHW) against MindSpore's automatic differentiation of the plain
    formula, for the input, the scale and the shift, with a mean several spreads from 0."""
    ms = ms_context
    from mindspore import nn
    from layers.layer_norm import TensorLayerNorm, _normalize
    rng = np.random.default_rng(8)

    class Plain(nn.Cell):  # the same forward, no written backward
        def construct(self, x, gamma, beta):
            return _normalize(x, 1e-5, False) * gamma + beta

    class Loss(nn.Cell):
        def __init__(self, norm, weight):
            super().__init__()
            self.norm = norm
            self.weight = weight

        def construct(self, x, gamma, beta):
            return (self.norm(x, gamma, beta) * self.weight).sum()

    for affine, dims in (("channel", (6, 5)), ("channel", (2, 6, 5)), ("element", (6, 5)), ("element", (2, 6, 5))):
        norm = TensorLayerNorm(4, *dims, affine=affine)
        gamma = rng.normal(1, 0.3, norm.gamma.shape).astype(np.float32)
        beta = rng.normal(0, 0.3, norm.beta.shape).astype(np.float32)
        x = rng.normal(2.0, 0.7, (3, 4) + dims).astype(np.float32)
        weight = ms.Tensor(rng.normal(0, 1, x.shape).astype(np.float32))
        args = [ms.Tensor(a) for a in (x, gamma, beta)]
        grads = []
        for cell in (norm.norm, Plain()):
            grads.append([g.asnumpy() for g in ms.grad(Loss(cell, weight), (0, 1, 2))(*args)])
            np.testing.assert_allclose(cell(*args).asnumpy(), Plain()(*args).asnumpy(), atol=2e-6)
        for written, auto in zip(*grads):
            assert np.abs(auto).max() > 1e-2
            np.testing.assert_allclose(written, auto, atol=2e-6 * np.abs(auto).max())


def _native_layer_norm_or_skip():
    from layers import native
    op = native.layer_norm()
    if op is None:
        pytest.skip("no native LayerNorm here (no C++ compiler, or STPL_NATIVE_OPS=0): training uses the MindSpore ops")
    return op


def test_native_layer_norm_matches_the_formula(ms_context):
    """The training kernel (layers/native/layer_norm.cc) against the textbook LayerNorm in
    float64 (numpy): output and the three gradients of sum(y * w), per-channel and
    per-element affine, NCHW and NCDHW, small and 48x48 maps, and means 60 and 1000 times
    the spread (sums and outputs are taken around a shift, so that nothing cancels; taken
    around the absolute mean, the outputs erred by 2e-5 of the largest at 1000)."""
    ms = ms_context
    from mindspore import nn
    from layers import native
    op = _native_layer_norm_or_skip()
    eps = native.eps_tensor(1e-5)
    rng = np.random.default_rng(9)

    class Loss(nn.Cell):
        def __init__(self, weight):
            super().__init__()
            self.weight = weight

        def construct(self, x, gamma, beta):
            return (op(x, gamma, beta, eps) * self.weight).sum()

    def reference(x, gamma, beta, w):
        x, gamma, beta, w = (a.astype(np.float64) for a in (x, gamma, beta, w))
        axes = tuple(range(1, x.ndim))
        rstd = 1 / np.sqrt(x.var(axis=axes, keepdims=True) + 1e-5)
        normed = (x - x.mean(axis=axes, keepdims=True)) * rstd
        g = w * gamma
        dx = rstd * (g - g.mean(axis=axes, keepdims=True) - normed * (g * normed).mean(axis=axes, keepdims=True))
        summed = (0,) + tuple(i for i in axes if gamma.shape[i - 1] == 1)
        return (normed * gamma + beta, dx, (w * normed).sum(axis=summed).reshape(gamma.shape),
                w.sum(axis=summed).reshape(gamma.shape))

    cases = [("channel", 3, 4, (6, 5), 2.0, 0.7), ("channel", 3, 4, (2, 6, 5), 2.0, 0.7),
             ("element", 3, 4, (6, 5), 2.0, 0.7), ("element", 3, 4, (2, 6, 5), 2.0, 0.7),
             ("channel", 4, 8, (48, 48), -1.0, 2.0), ("element", 4, 8, (48, 48), 0.5, 1.0),
             ("channel", 2, 4, (6, 5), 60.0, 1.0), ("element", 2, 4, (6, 5), 60.0, 1.0),
             ("channel", 2, 4, (6, 5), 1000.0, 1.0), ("element", 2, 4, (6, 5), 1000.0, 1.0)]
    for affine, batch, channels, dims, mean, spread in cases:
        shape = (channels,) + (dims if affine == "element" else (1,) * len(dims))
        gamma = rng.normal(1, 0.3, shape).astype(np.float32)
        beta = rng.normal(0, 0.3, shape).astype(np.float32)
        x = rng.normal(mean, spread, (batch, channels) + dims).astype(np.float32)
        w = rng.normal(0, 1, x.shape).astype(np.float32)
        args = [ms.Tensor(a) for a in (x, gamma, beta)]
        got = [op(*args, eps).asnumpy()] + [g.asnumpy() for g in ms.grad(Loss(ms.Tensor(w)), (0, 1, 2))(*args)]
        for name, value, want in zip(("y", "dx", "dgamma", "dbeta"), got, reference(x, gamma, beta, w)):
            np.testing.assert_allclose(value, want, atol=2e-6 * np.abs(want).max(),
                                       err_msg=f"{name}, {affine} affine, x {x.shape} around {mean}")


def test_layer_norm_uses_the_native_kernel_except_in_exports(ms_context):
    """Training and evaluation run the kernel; under standard_operators (every export) the
    LayerNorm runs MindSpore's ops, which MINDIR, ONNX and AIR can hold; precise never runs it."""
    ms = ms_context
    from layers.conv import standard_operators
    from layers.layer_norm import TensorLayerNorm
    _native_layer_norm_or_skip()
    calls = []

    def recording(x, gamma, beta, eps):
        calls.append(tuple(x.shape))
        return x

    x = ms.Tensor(np.random.default_rng(1).normal(size=(2, 3, 4, 4)).astype(np.float32))
    ms.set_context(mode=ms.PYNATIVE_MODE)  # so that the construct below runs as Python
    try:
        for affine in ("channel", "element"):
            norm = TensorLayerNorm(3, 4, 4, affine=affine)
            norm.native = recording
            for training in (True, False):
                norm.set_train(training)
                assert norm(x) is x and calls == [(2, 3, 4, 4)]
                calls.clear()
            with standard_operators(norm):
                assert abs(float(norm(x).asnumpy().std()) - 1) < 1e-3 and not calls
            assert norm.native_on
        precise = TensorLayerNorm(3, 4, 4, affine="channel", precise=True)
        assert precise.native is None
    finally:
        ms.set_context(mode=ms.GRAPH_MODE)


def test_native_build_falls_back_with_one_line_and_rebuilds_a_broken_cache(tmp_path, monkeypatch, capsys, ms_context):
    from layers import native
    _native_layer_norm_or_skip()
    monkeypatch.setattr(native, "_warned", set())
    monkeypatch.setenv("STPL_CACHE_DIR", str(tmp_path / "cache"))
    library = native.build("layer_norm")
    assert library and library.startswith(str(tmp_path / "cache"))
    # a cached library that does not load (truncated, another machine's) is built again;
    # a new file, not the loaded one rewritten in place (which would SIGBUS this process)
    os.unlink(library)
    with open(library, "wb") as f:
        f.write(b"not a library")
    native._built.clear()
    assert native.build("layer_norm") == library and native._loads(library, "layer_norm")
    assert capsys.readouterr().err == ""
    # a compiler that fails: one line, no op, training falls back to the MindSpore ops
    monkeypatch.setenv("STPL_CACHE_DIR", str(tmp_path / "other"))
    monkeypatch.setenv("CXX", "/bin/false")
    assert native.layer_norm() is None and native.layer_norm() is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "layer_norm.cc failed" in err[0] and "MindSpore-op form" in err[0]
    monkeypatch.delenv("CXX")
    monkeypatch.setenv("STPL_NATIVE_OPS", "0")
    monkeypatch.setenv("STPL_CACHE_DIR", str(tmp_path / "third"))
    assert native.layer_norm() is None and not (tmp_path / "third").exists()


def test_ghu_matches_numpy(ms_context):
    ms = ms_context
    from layers.ghu import GradientHighwayUnit
    rng = np.random.default_rng(3)
    ghu = GradientHighwayUnit(3, 4, 5, 5, 3, layer_norm=True)
    p = randomize(ghu, ms, rng)
    x, z = states(rng, 2, 5, 3, 4)
    got = ghu(ms.Tensor(x), ms.Tensor(z)).asnumpy()
    gates = conv(p, "conv_x", x.astype(np.float64), True) + conv(p, "conv_z", z.astype(np.float64), True)
    pp, s = np.split(gates, 2, axis=1)
    np.testing.assert_allclose(got, sigmoid(s) * np.tanh(pp) + (1 - sigmoid(s)) * z, atol=1e-5)


def test_reference_init_of_predrnn_pp():
    from nets.registry import build_model
    net = build_model(load_config(TINY + ["--model_name=predrnn_pp", "--layer_norm=true"]))
    weights = {p.name: p.asnumpy() for p in net.get_parameters()}
    w = weights["lstm.0.conv_x.0.weight"]
    assert np.abs(w).max() <= 0.001 and w.std() > 1e-4
    assert np.all(weights["lstm.0.conv_x.0.bias"] == 0)
    assert "gradient_highway.conv_z.0.weight" in weights and weights["conv_last.bias"].shape == (64,)


def tiny_model(model_name, *extra):
    import mindspore as ms
    from nets.registry import build_model
    ms.set_seed(0)  # the initial weights; the train masks are seeded by the config
    cfg = load_config(TINY + [f"--model_name={model_name}", "--seq_length=6", "--input_length=3", *extra])
    return cfg, build_model(cfg)


def test_decoupling_loss_matches_numpy(ms_context):
    """PredRNN-V2's extra training term, recomputed from the cell outputs in numpy."""
    ms = ms_context
    from data_provider.sampling import eval_mask
    cfg, net = tiny_model("predrnn_v2", "--num_hidden=8,8", "--decouple_beta=0.5")
    rng = np.random.default_rng(4)
    for p in net.get_parameters():
        p.set_data(ms.Tensor(rng.normal(0, 0.2, p.shape).astype(np.float32)))
    frames = rng.random((8, 6, 8, 8, 64)).astype(np.float32)
    mask = eval_mask(8, 6, 3)
    net.set_train(True)
    pred, term = net(ms.Tensor(frames), ms.Tensor(mask))
    net.set_train(False)
    pred_eval = net(ms.Tensor(frames), ms.Tensor(mask))
    np.testing.assert_allclose(pred.asnumpy(), pred_eval.asnumpy(), atol=1e-6)

    # replay the recurrence with the cells (PyNative-free: call the cells one by one)
    adapter = net.adapter.weight.asnumpy()[:, :, 0, 0].astype(np.float64)
    x_all = np.transpose(frames, (0, 1, 4, 2, 3))
    h = [np.zeros((8, 8, 8, 8), np.float32)] * 2
    c = list(h)
    m = np.zeros((8, 8, 8, 8), np.float32)
    x_gen = None
    terms = []
    for t in range(5):
        inp = x_all[:, t] if t < 3 else x_gen
        for i in range(2):
            outs = [o.asnumpy() for o in net.cell_list[i](ms.Tensor(inp), ms.Tensor(h[i]), ms.Tensor(c[i]), ms.Tensor(m))]
            h[i], c[i], m, dc, dm = outs
            inp = h[i]
            a = np.einsum("oc,bchw->bohw", adapter, dc).reshape(8, 8, -1)
            b = np.einsum("oc,bchw->bohw", adapter, dm).reshape(8, 8, -1)
            a /= np.maximum(np.linalg.norm(a, axis=2, keepdims=True), 1e-12)
            b /= np.maximum(np.linalg.norm(b, axis=2, keepdims=True), 1e-12)
            terms.append(np.abs((a * b).sum(axis=2)).mean())
        x_gen = net.conv_last(ms.Tensor(h[1])).asnumpy()
    expected = 0.5 * np.mean(terms)
    assert expected > 0.01
    assert float(term.asnumpy()) == pytest.approx(expected, rel=1e-4)


def test_memory_zigzags_from_top_to_bottom(ms_context):
    """The bottom layer at t reads the top layer's memory from t-1: perturbing the top
    layer's weights changes layer 0's next state only through that path."""
    ms = ms_context
    from data_provider.sampling import eval_mask
    cfg, net = tiny_model("predrnn", "--num_hidden=8,4")
    assert net.cell_list[0].conv_m_in.weight.shape == (8, 4, 1, 1)  # top (4) -> bottom (8)
    frames = np.random.default_rng(5).random((8, 6, 8, 8, 64)).astype(np.float32)
    net.set_train(False)
    before = net(ms.Tensor(frames), ms.Tensor(eval_mask(8, 6, 3))).asnumpy()
    w = net.cell_list[0].conv_m_in.weight
    w.set_data(ms.Tensor(w.asnumpy() * 3.0))
    after = net(ms.Tensor(frames), ms.Tensor(eval_mask(8, 6, 3))).asnumpy()
    np.testing.assert_array_equal(before[:, 0], after[:, 0])  # step 0 reads zero memory
    assert np.abs(before[:, 1:] - after[:, 1:]).max() > 1e-5


@pytest.mark.parametrize("model_name, extra", [
    ("predrnn", ["--num_hidden=16,16", "--layer_norm=true"]),
    ("predrnn_v2", ["--num_hidden=16,16", "--reverse_scheduled_sampling=true"]),
    ("predrnn_pp", ["--num_hidden=16,8", "--layer_norm=true", "--lr=0.005"]),
])
def test_models_train_with_decreasing_loss(ms_context, model_name, extra):
    ms = ms_context
    from mindspore import nn
    from data_provider.digits import builtin_digits
    from data_provider.moving_mnist import generate_moving_mnist
    from data_provider.patch import reshape_patch
    from data_provider.sampling import train_mask
    from engine.trainer import NetWithLoss, TrainStep
    cfg, net = tiny_model(model_name, *extra)
    seqs = generate_moving_mnist(builtin_digits(), 8, seq_length=6, image_size=64, num_digits=1, seed=0)
    frames = ms.Tensor(reshape_patch(seqs.astype(np.float32) / 255, 8))
    step = TrainStep(NetWithLoss(net, 6), nn.Adam(net.trainable_params(), cfg.lr))
    step.set_train()
    losses = [float(step(frames, ms.Tensor(train_mask(i, 8, cfg)[0])).asnumpy()) for i in range(15)]
    assert all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < 0.75 * np.mean(losses[:3]), losses
