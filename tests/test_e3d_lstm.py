"""E3D-LSTM: the cell (recall attention over a history of cell states included) and the whole
net in both memory flows against numpy computations of the equations, training, the two
trivial baselines, and export to ONNX and MINDIR."""
import numpy as np
import pytest

from engine.config import load_config
from tests.conftest import ROOT, TINY
from tests.test_convlstm import sigmoid
from tests.test_training import quiet, tiny_cfg, tiny_data  # noqa: F401  (module fixture)


# Weights small enough that gate pre-activations stay where MindSpore's CPU tanh is exact to
# ~1e-7 (it errs by up to 1e-4 for 3 < |x| < 8, measured on MindSpore 2.10 CPU).
def randomize(cell, ms, rng, scale=0.1):
    params = {}
    for p in cell.get_parameters():
        value = rng.normal(0, scale, p.shape).astype(np.float32)
        if p.name.endswith("gamma"):
            value = value + 0.3  # LayerNorm outputs stay small: see above
        p.set_data(ms.Tensor(value))
        params[p.name] = value.astype(np.float64)
    return params


def conv3d(x, w):
    """numpy cross-correlation, TensorFlow 'same' padding (an even temporal kernel pads the
    extra frame after): x [B, Ci, T, H, W], w [Co, Ci, kt, k, k]."""
    kt, k = w.shape[2], w.shape[3]
    before = (kt - 1) // 2
    p = k // 2
    xp = np.pad(x, ((0, 0), (0, 0), (before, kt - 1 - before), (p, p), (p, p)))
    t, h, wd = x.shape[2:]
    out = np.zeros((x.shape[0], w.shape[0], t, h, wd))
    for dt in range(kt):
        for dy in range(k):
            for dx in range(k):
                out += np.einsum("bcthw,oc->bothw", xp[:, :, dt:dt + t, dy:dy + h, dx:dx + wd], w[:, :, dt, dy, dx])
    return out


def conv3d_upsampled(x, w):
    """OpenSTL's tf_Conv3d in numpy: no temporal padding, then torch's 'nearest' frame index
    floor(j * valid / window) back to the window (written out, not from our code)."""
    kt, window = w.shape[2], x.shape[2]
    padded = np.pad(x, ((0, 0), (0, 0), (0, kt - 1), (0, 0), (0, 0)))  # conv3d() pads after
    valid = window - kt + 1
    same = conv3d(padded, w)[:, :, :valid]  # frames whose kernel saw no padding
    return same[:, :, [min(int(np.floor(j * valid / window)), valid - 1) for j in range(window)]]


def recall_flat(r, history):
    """OpenSTL's _attn: plain reshapes of NCDHW tensors to [B, -1, C] and back."""
    b, ch = r.shape[:2]
    q = r.reshape(b, -1, ch)
    keys = np.concatenate([s.reshape(b, -1, ch) for s in history], axis=1)
    logits = q @ np.swapaxes(keys, 1, 2)
    weights = np.exp(logits - logits.max(axis=2, keepdims=True))
    weights = weights / weights.sum(axis=2, keepdims=True)
    return (weights @ keys).reshape(r.shape)


def numpy_released_cell(p, x, h, c, m, history, forget_bias=1.0):
    """The authors' released cell as OpenSTL runs it, with LayerNorm after every gate conv."""
    def g(name, inp):
        return layer_norm5(conv3d_upsampled(inp, p[f"{name}.0.weight"]), p[f"{name}.1.gamma"], p[f"{name}.1.beta"])
    i_x, g_x, r_x, o_x, i_xp, g_xp, f_xp = np.split(g("conv_x", x), 7, axis=1)
    i_h, g_h, r_h, o_h = np.split(g("conv_h", h), 4, axis=1)
    rec = recall_flat(sigmoid(r_x + r_h), history)
    c_new = sigmoid(i_x + i_h) * np.tanh(g_x + g_h) + layer_norm5(c + rec, p["norm_c.gamma"], p["norm_c.beta"])
    i_m, f_m, g_m, m_m = np.split(g("conv_m", m), 4, axis=1)
    m_new = sigmoid(i_xp + i_m) * np.tanh(g_xp + g_m) + sigmoid(f_xp + f_m + forget_bias) * np.tanh(m_m)
    o = sigmoid(np.tanh(o_x + o_h + g("conv_oc", c_new) + g("conv_om", m_new)))
    mem = np.concatenate([c_new, m_new], axis=1)
    h_new = o * np.tanh(np.einsum("bcthw,oc->bothw", mem, p["conv_last.weight"][:, :, 0, 0, 0]))
    return h_new, c_new, m_new


def layer_norm5(x, gamma, beta, eps=1e-5):
    mean = x.mean(axis=(1, 2, 3, 4), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=(1, 2, 3, 4), keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def recall(r, history):
    """Attention of every (t, y, x) position of r over every position of every stored
    state, features = channels; written on the explicit axes, independent of any reshape."""
    keys = np.stack(history, axis=1)  # [B, n, C, T, H, W]
    logits = np.einsum("bcthw,bncsyx->bthwnsyx", r, keys)
    b, t, h, w = logits.shape[:4]
    flat = logits.reshape(b, t, h, w, -1)
    weights = np.exp(flat - flat.max(axis=-1, keepdims=True))
    weights = (weights / weights.sum(axis=-1, keepdims=True)).reshape(logits.shape)
    return np.einsum("bthwnsyx,bncsyx->bcthw", weights, keys)


def gate(p, name, x, use_ln):
    out = conv3d(x, p[f"{name}.0.weight"])
    if use_ln:
        out = layer_norm5(out, p[f"{name}.1.gamma"], p[f"{name}.1.beta"])
    return out


def numpy_cell(p, x, h, c, m, history, use_ln, forget_bias=1.0):
    if "conv_m_in.weight" in p:
        m = np.einsum("bcthw,oc->bothw", m, p["conv_m_in.weight"][:, :, 0, 0, 0])
    i_x, g_x, r_x, o_x, i_xp, g_xp, f_xp = np.split(gate(p, "conv_x", x, use_ln), 7, axis=1)
    i_h, g_h, r_h, o_h = np.split(gate(p, "conv_h", h, use_ln), 4, axis=1)
    i_m, f_m, g_m = np.split(gate(p, "conv_m", m, use_ln), 3, axis=1)
    rec = recall(sigmoid(r_x + r_h), history)
    c_new = sigmoid(i_x + i_h) * np.tanh(g_x + g_h) + layer_norm5(c + rec, p["norm_c.gamma"], p["norm_c.beta"])
    m_new = sigmoid(i_xp + i_m) * np.tanh(g_xp + g_m) + sigmoid(f_xp + f_m + forget_bias) * m
    o = sigmoid(o_x + o_h + gate(p, "conv_oc", c_new, use_ln) + gate(p, "conv_om", m_new, use_ln))
    mem = np.concatenate([c_new, m_new], axis=1)
    h_new = o * np.tanh(np.einsum("bcthw,oc->bothw", mem, p["conv_last.weight"][:, :, 0, 0, 0]))
    return h_new, c_new, m_new


def layer_params(params, i):
    prefix = f"cell_list.{i}."
    return {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}


def numpy_net(params, frames, mask, num_hidden, window, memory_flow):
    """The whole recurrence: frames [B, T, H, W, C] (patched), mask [B, T-1]."""
    x_all = np.transpose(frames, (0, 1, 4, 2, 3)).astype(np.float64)
    b, t_total, ch, hh, ww = x_all.shape
    zeros = [np.zeros((b, n, window, hh, ww)) for n in num_hidden]
    h, c = list(zeros), list(zeros)
    history = [[z] for z in zeros]
    m = np.zeros((b, num_hidden[-1], window, hh, ww))
    inputs = [np.zeros((b, ch, hh, ww))] * (window - 1)
    out = []
    x_gen = None
    for t in range(t_total - 1):
        wgt = mask[:, t].reshape(b, 1, 1, 1)
        x = x_all[:, 0] if t == 0 else wgt * x_all[:, t] + (1 - wgt) * x_gen
        inputs = inputs + [x]
        inp = np.stack(inputs[len(inputs) - window:], axis=2)
        for i in range(len(num_hidden)):
            m_in = m if memory_flow == "paper" else np.zeros((b, num_hidden[i - 1], window, hh, ww))
            h[i], c[i], m_new = numpy_cell(layer_params(params, i), inp, h[i], c[i], m_in, history[i], False)
            if memory_flow == "paper":
                m = m_new
            history[i].append(c[i])
            inp = h[i]
        x_gen = np.einsum("bcthw,oct->bohw", h[-1], params["conv_last.weight"][:, :, :, 0, 0])
        out.append(x_gen)
    return np.transpose(np.stack(out, axis=1), (0, 1, 3, 4, 2))


@pytest.mark.parametrize("use_ln, window, kernel", [(False, 2, 2), (True, 3, 3)])
def test_cell_matches_numpy_with_recall_over_history(ms_context, use_ln, window, kernel):
    ms = ms_context
    from layers.e3d_lstm_cell import Eidetic3DLSTMCell
    rng = np.random.default_rng(11)
    b, cin, hid, mem_in, size = 2, 3, 4, 5, 4
    cell = Eidetic3DLSTMCell(cin, hid, window, size, size, 3, temporal_kernel=kernel, layer_norm=use_ln,
                             memory_channels=mem_in)
    p = randomize(cell, ms, rng)
    assert p["conv_x.0.weight"].shape == (7 * hid, cin, kernel, 3, 3)

    def state(ch):
        return rng.normal(0, 0.7, (b, ch, window, size, size)).astype(np.float32)

    x, h, c, m = state(cin), state(hid), state(hid), state(mem_in)
    history = [state(hid) for _ in range(4)]  # an eidetic memory of 4 earlier cell states
    tokens = np.concatenate([np.transpose(s, (0, 2, 3, 4, 1)).reshape(b, -1, hid) for s in history], axis=1)
    got = [o.asnumpy() for o in cell(*(ms.Tensor(a) for a in (x, h, c, m, tokens)))]
    as64 = [a.astype(np.float64) for a in (x, h, c, m)]
    hist64 = [s.astype(np.float64) for s in history]
    expected = numpy_cell(p, *as64, hist64, use_ln)
    for a, e in zip(got, expected):
        np.testing.assert_allclose(a, e, atol=1e-5)
    # the test would notice a recall that ignored all but the last state
    short = numpy_cell(p, *as64, hist64[-1:], use_ln)
    assert np.abs(short[1] - expected[1]).max() > 1e-2


def test_recall_softmax_written_backward_is_the_softmax_gradient(ms_context):
    """LastAxisSoftmax (the recall attention's softmax, with a written backward: the native
    kernel where it builds, and the MindSpore-op form) against the softmax Jacobian in
    float64: dx_i = y_i * (dy_i - sum_j dy_j y_j), on a 3-D attention-like tensor with large
    logits."""
    ms = ms_context
    from mindspore import nn
    from layers.activations import LastAxisSoftmax
    rng = np.random.default_rng(12)
    x = rng.normal(0, 4, (2, 6, 9)).astype(np.float32)
    w = rng.normal(0, 1, x.shape).astype(np.float32)

    class Loss(nn.Cell):
        def __init__(self, native_grad):
            super().__init__()
            self.softmax = LastAxisSoftmax()
            if not native_grad:
                self.softmax.native_grad = None
            self.w = ms.Tensor(w)

        def construct(self, t):
            return (self.softmax(t) * self.w).sum()

    y = np.exp(x.astype(np.float64) - x.max(-1, keepdims=True))
    y /= y.sum(-1, keepdims=True)
    want = y * (w - (w * y).sum(-1, keepdims=True))
    np.testing.assert_allclose(LastAxisSoftmax()(ms.Tensor(x)).asnumpy(), y, atol=1e-6)
    assert np.abs(want).max() > 0.1
    for native_grad in (True, False):
        if native_grad and LastAxisSoftmax().native_grad is None:
            continue  # no compiler here: the MindSpore-op form below is what trains
        got = ms.grad(Loss(native_grad))(ms.Tensor(x)).asnumpy()
        np.testing.assert_allclose(got, want, atol=1e-6 * np.abs(want).max() + 1e-7, err_msg=f"native {native_grad}")


def test_released_cell_switches_match_numpy(ms_context):
    """e3d_gates=released, e3d_temporal_conv=upsample, e3d_recall_layout=flat, exact
    activations, on a window of 3 frames with kernel 2 (2 valid frames upsampled to 3 by
    the index [0, 0, 1]) and weights large enough to reach where MindSpore's float32 tanh
    errs by 1e-4: within 1e-5 of numpy."""
    ms = ms_context
    from layers.e3d_lstm_cell import Eidetic3DLSTMCell, nearest_frames
    assert nearest_frames(2, 3) == [0, 0, 1] and nearest_frames(1, 2) == [0, 0] and nearest_frames(3, 3) == [0, 1, 2]
    rng = np.random.default_rng(14)
    b, cin, hid, window, size = 2, 3, 4, 3, 4
    cell = Eidetic3DLSTMCell(cin, hid, window, size, size, 3, temporal_kernel=2, layer_norm=True,
                             gates="released", temporal_conv="upsample", recall_layout="flat", exact=True)
    p = randomize(cell, ms, rng, scale=0.3)
    assert p["conv_m.0.weight"].shape == (4 * hid, hid, 2, 3, 3)
    for name in ("conv_x", "conv_h", "conv_m", "conv_oc", "conv_om", "norm_c"):  # gate pre-activations beyond 3
        key = f"{name}.1.gamma" if name != "norm_c" else "norm_c.gamma"
        value = (p[key] * 4).astype(np.float32)
        dict(cell.parameters_and_names())[key].set_data(ms.Tensor(value))
        p[key] = value.astype(np.float64)

    def state(ch):
        return rng.normal(0, 0.7, (b, ch, window, size, size)).astype(np.float32)

    x, h, c, m = state(cin), state(hid), state(hid), state(hid)
    history = [state(hid) for _ in range(3)]
    tokens = np.concatenate([s.reshape(b, -1, hid) for s in history], axis=1)
    got = [o.asnumpy() for o in cell(*(ms.Tensor(a) for a in (x, h, c, m, tokens)))]
    expected = numpy_released_cell(p, *(a.astype(np.float64) for a in (x, h, c, m)),
                                   [s.astype(np.float64) for s in history])
    for a, e in zip(got, expected):
        np.testing.assert_allclose(a, e, atol=1e-5)
    assert np.abs(expected[0]).max() > 0.3
    # the flat layout is not the token layout: the recall would differ
    assert np.abs(recall_flat(expected[1], [expected[1]]) - recall(expected[1], [expected[1]])).max() > 1e-2


def test_tensor_layer_norm_any_rank_is_torchs_formula(ms_context):
    """One TensorLayerNorm for NCHW and NCDHW: per-sample biased variance of the centred
    values, eps inside the root, element-wise affine; precise=True keeps 1e-6 where the mean
    dwarfs the spread (gate pre-activations far from 0), the float32 mean alone does not."""
    ms = ms_context
    from layers.layer_norm import TensorLayerNorm
    rng = np.random.default_rng(5)
    for dims in ((6, 5), (2, 6, 5)):
        x = rng.normal(0.5, 2.0, (3, 4) + dims).astype(np.float32)
        norm = TensorLayerNorm(4, *dims)
        gamma, beta = (rng.normal(1, 0.3, (4,) + dims).astype(np.float32), rng.normal(0, 0.3, (4,) + dims).astype(np.float32))
        norm.gamma.set_data(ms.Tensor(gamma))
        norm.beta.set_data(ms.Tensor(beta))
        flat = x.astype(np.float64).reshape(3, -1)
        expected = ((flat - flat.mean(1, keepdims=True)) / np.sqrt(flat.var(1, keepdims=True) + 1e-5)).reshape(x.shape)
        np.testing.assert_allclose(norm(ms.Tensor(x)).asnumpy(), expected * gamma + beta, atol=2e-6)
        assert norm.gamma.shape == (4,) + dims
    assert TensorLayerNorm(4, 2, 6, 5, affine="channel").gamma.shape == (4, 1, 1, 1)
    skewed = rng.normal(3.0, 0.05, (2, 28, 2, 8, 8)).astype(np.float32)
    flat = skewed.astype(np.float64).reshape(2, -1)
    expected = ((flat - flat.mean(1, keepdims=True)) / np.sqrt(flat.var(1, keepdims=True) + 1e-5)).reshape(skewed.shape)
    from layers.conv import standard_operators

    def error(norm):
        return np.abs(norm(ms.Tensor(skewed)).asnumpy() - expected).max()

    ops_form = TensorLayerNorm(28, 2, 8, 8)
    with standard_operators(ops_form):  # the MindSpore-op form (exports)
        errors = [error(ops_form), error(TensorLayerNorm(28, 2, 8, 8, precise=True))]
    assert errors[1] < 1e-6 < errors[0], errors
    native = TensorLayerNorm(28, 2, 8, 8)
    if native.native is not None:  # the native kernel sums around a shift: precise too
        assert error(native) < 1e-6


def test_memory_flow_switch_changes_only_the_memory_path(ms_context):
    """Both flows against the numpy recurrence with the same weights: 'paper' hands M up the
    layers and from the top layer at t-1 to layer 0 at t; 'released' gives every layer the
    zero M at every step. Everything else (weights, windows, history, mask) is shared."""
    ms = ms_context
    from nets.e3d_lstm import E3DLSTM
    rng = np.random.default_rng(12)
    num_hidden, window, b, t_total = [4, 3], 2, 2, 6
    nets = {flow: E3DLSTM(num_hidden, t_total, 3, 3, 4, 4, filter_size=3, window_length=window,
                          memory_flow=flow) for flow in ("paper", "released")}
    params = randomize(nets["paper"], ms, rng, scale=0.2)
    for p in nets["released"].get_parameters():
        p.set_data(ms.Tensor(params[p.name].astype(np.float32)))
    assert set(params) == {p.name for p in nets["released"].get_parameters()}
    frames = rng.random((b, t_total, 4, 4, 3)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 1], [1, 0, 1, 1, 0]], np.float32)  # some feedback in both periods
    got = {}
    for flow, net in nets.items():
        net.set_train(False)
        got[flow] = net(ms.Tensor(frames), ms.Tensor(mask)).asnumpy()
        expected = numpy_net(params, frames, mask, num_hidden, window, flow)
        np.testing.assert_allclose(got[flow], expected, atol=1e-5, err_msg=flow)
    # the switch does something from the first step (layer 1 reads layer 0's M in 'paper')
    assert np.abs(got["paper"][:, 0] - got["released"][:, 0]).max() > 1e-4
    assert np.abs(got["paper"][:, 1:] - got["released"][:, 1:]).max() > 1e-3


def test_single_layer_paper_memory_comes_from_the_previous_step(ms_context):
    """With one layer the two flows agree at step 0 (both read the zero M) and part from
    step 1, where 'paper' feeds the layer its own M from t-1."""
    ms = ms_context
    from nets.e3d_lstm import E3DLSTM
    rng = np.random.default_rng(13)
    nets = {flow: E3DLSTM([4], 4, 2, 3, 4, 4, filter_size=3, memory_flow=flow) for flow in ("paper", "released")}
    params = randomize(nets["paper"], ms, rng, scale=0.2)
    for p in nets["released"].get_parameters():
        p.set_data(ms.Tensor(params[p.name].astype(np.float32)))
    frames = ms.Tensor(rng.random((2, 4, 4, 4, 3)).astype(np.float32))
    mask = ms.Tensor(np.ones((2, 3), np.float32))
    out = {flow: net(frames, mask).asnumpy() for flow, net in nets.items()}
    np.testing.assert_array_equal(out["paper"][:, 0], out["released"][:, 0])
    assert np.abs(out["paper"][:, 1:] - out["released"][:, 1:]).max() > 1e-3


def test_config_keys_reach_the_model():
    from nets.registry import build_model
    cfg = load_config(TINY + ["--model_name=e3d_lstm", "--window_length=3", "--temporal_kernel=1",
                              "--e3d_memory=released", "--num_hidden=8"])
    net = build_model(cfg)
    assert not net.carry_memory and net.window_length == 3
    assert net.cell_list[0].conv_x[0].weight.shape == (56, 64, 1, 3, 3)
    assert net.conv_last.weight.shape == (64, 8, 3, 1, 1)
    default = load_config(TINY + ["--model_name=e3d_lstm"])
    assert (default.e3d_memory, default.e3d_gates, default.e3d_temporal_conv, default.e3d_recall_layout,
            default.activations) == ("paper", "paper", "same", "tokens", "ops")
    released = build_model(load_config(TINY + ["--model_name=e3d_lstm", "--num_hidden=8", "--e3d_gates=released",
                                               "--e3d_temporal_conv=upsample", "--e3d_recall_layout=flat",
                                               "--activations=exact"]))
    cell = released.cell_list[0]
    assert cell.conv_m[0].weight.shape == (32, 8, 2, 3, 3) and cell.released_gates and cell.flat_recall
    assert cell.exact and cell.conv_x[0].resample  # 1 valid frame of 2 copied twice
    from engine.errors import UserError
    for bad in ("--e3d_memory=tf", "--e3d_gates=tf", "--e3d_temporal_conv=valid", "--e3d_recall_layout=x",
                "--activations=fast"):
        with pytest.raises(UserError, match=bad[2:].split("=")[0]):
            build_model(load_config(TINY + ["--model_name=e3d_lstm", bad]))
    with pytest.raises(UserError, match="temporal_kernel"):
        build_model(load_config(TINY + ["--model_name=e3d_lstm", "--e3d_temporal_conv=upsample", "--temporal_kernel=3"]))
    openstl = load_config([f"--config_path={ROOT}/configs/openstl_e3d_lstm_mmnist.yaml"])
    assert (openstl.e3d_memory, openstl.e3d_gates, openstl.e3d_temporal_conv, openstl.e3d_recall_layout,
            openstl.activations) == ("released", "released", "upsample", "flat", "exact")
    kth = load_config([f"--config_path={ROOT}/configs/e3d_lstm_kth.yaml"])
    assert (kth.img_width, kth.patch_size, kth.input_length, kth.seq_length) == (128, 8, 10, 30)
    assert kth.sampling_stop_iter == 100000 and kth.model_name == "e3d_lstm" and kth.dataset == "kth"
    mmnist = load_config([f"--config_path={ROOT}/configs/e3d_lstm_mmnist.yaml"])
    assert mmnist.hidden_list() == [128] * 4 and mmnist.lr == 1e-4 and mmnist.batch_size == 16


def test_trains_with_decreasing_loss(ms_context):
    ms = ms_context
    from mindspore import nn
    from data_provider.digits import builtin_digits
    from data_provider.moving_mnist import generate_moving_mnist
    from data_provider.patch import reshape_patch
    from data_provider.sampling import train_mask
    from engine.trainer import NetWithLoss, TrainStep
    from nets.registry import build_model
    ms.set_seed(0)
    cfg = load_config(TINY + ["--model_name=e3d_lstm", "--seq_length=6", "--input_length=3", "--num_hidden=8,8",
                              "--layer_norm=true", "--lr=0.008"])
    net = build_model(cfg)
    seqs = generate_moving_mnist(builtin_digits(), 8, seq_length=6, image_size=64, num_digits=1, seed=0)
    frames = ms.Tensor(reshape_patch(seqs.astype(np.float32) / 255, 8))
    step = TrainStep(NetWithLoss(net, 6), nn.Adam(net.trainable_params(), cfg.lr))
    step.set_train()
    losses = [float(step(frames, ms.Tensor(train_mask(i, 8, cfg)[0])).asnumpy()) for i in range(12)]
    assert all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < 0.75 * np.mean(losses[:3]), losses


def test_tiny_e3d_lstm_beats_both_baselines(ms_context, tiny_data, tmp_path):  # noqa: F811
    from engine.evaluator import evaluate
    from engine.trainer import train
    cfg = tiny_cfg(tiny_data, tmp_path, "--model_name=e3d_lstm", "--num_hidden=8", "--lr=0.008",
                   "--max_iterations=100", "--snapshot_interval=100", "--scheduled_sampling=false")
    result = train(cfg, log=quiet)
    losses = [l for _, l in result["history"]]
    assert np.mean(losses[-20:]) < 0.7 * np.mean(losses[:5])
    cfg.pretrained_model = result["checkpoint"]
    summaries = evaluate(cfg, log=quiet)
    model = summaries["model"]["mse"]["mean"]
    black = summaries["all-black"]["mse"]["mean"]
    copy_last = summaries["copy-last"]["mse"]["mean"]
    assert model < 0.8 * min(black, copy_last), (model, black, copy_last)


def test_window_convs_export_their_pads_to_onnx(ms_context, tmp_path):
    """Kernel (2, 5, 5) pads unevenly ((0, 1) or (0, 0) in time, 2 in space): MindSpore's
    exporter would write a Conv3d's own pads in the wrong order, so they come from a Pad."""
    import onnxruntime as ort
    ms = ms_context
    from layers.e3d_lstm_cell import WindowConv3d
    from engine.inference import export_graph
    x = np.random.default_rng(2).random((2, 3, 3, 6, 6)).astype(np.float32)
    for mode in ("same", "upsample"):
        conv = WindowConv3d(3, 4, 2, 5, window=3, temporal_conv=mode)
        expected = conv(ms.Tensor(x)).asnumpy()
        assert expected.shape == (2, 4, 3, 6, 6)
        path = str(tmp_path / f"conv_{mode}")
        export_graph(conv, ms.Tensor(x), file_name=path, file_format="ONNX")
        session = ort.InferenceSession(path + ".onnx", providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=mode)


def test_onnx_and_mindir_match_mindspore(ms_context, tmp_path):
    """OpenSTL's maths (every e3d_* switch on its released value, float64 activations,
    kernel (2, 5, 5)) through MINDIR and ONNX Runtime."""
    from engine.inference import CheckpointPredictor, MindIRPredictor, OnnxPredictor, export_model
    from tests.test_export import SHORT, random_checkpoint
    cfg = load_config(SHORT + ["--model_name=e3d_lstm", "--num_hidden=8,4", "--layer_norm=true", "--filter_size=5",
                               "--e3d_memory=released", "--e3d_gates=released", "--e3d_temporal_conv=upsample",
                               "--e3d_recall_layout=flat", "--activations=exact"])
    ckpt = random_checkpoint(cfg, tmp_path / "model.ckpt")
    inputs = np.random.default_rng(1).random((2, 3, 8, 8, 64)).astype(np.float32)
    expected = CheckpointPredictor(cfg, ckpt, 2).predict(inputs)
    assert expected.shape == (2, 3, 8, 8, 64) and np.abs(expected).max() > 1e-3

    from tests.test_export import standard_convolution_predictions
    standard = standard_convolution_predictions(cfg, ckpt, inputs, expected)
    mindir = export_model(cfg, ckpt, "MINDIR", 2, str(tmp_path / "model"), "CPU")
    np.testing.assert_array_equal(MindIRPredictor(cfg, mindir).predict(inputs), standard)

    onnx_path = export_model(cfg, ckpt, "ONNX", 2, str(tmp_path / "model.onnx"), "CPU")
    got = OnnxPredictor(cfg, onnx_path, providers=["CPUExecutionProvider"]).predict(inputs)
    assert np.abs(got - expected).max() < 1e-4
