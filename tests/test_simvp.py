"""SimVP: its blocks against numpy computations of OpenSTL's equations (ConvSC, PixelShuffle's
channel order, the Inception-U block, the gSTA block with BatchNorm's running statistics),
the whole clip in and out with OpenSTL's rolling scheme, the onecycle schedule, and OpenSTL
checkpoints; the tiny SimVP that learns beyond the baselines is in tests/test_training.py."""
import math

import numpy as np
import pytest

from engine.config import load_config


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation as torch.nn.functional.conv2d, float64: x [B, Ci, H, W], w [Co, Ci/g, k, k]."""
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    bsz, ci, h, wd = x.shape
    co, cig, k, _ = w.shape
    span = dilation * (k - 1) + 1
    oh, ow = (h - span) // stride + 1, (wd - span) // stride + 1
    out = np.zeros((bsz, co, oh, ow))
    per = co // groups
    for g in range(groups):
        xs = x[:, g * cig:(g + 1) * cig]
        for i in range(k):
            for j in range(k):
                patch = xs[:, :, i * dilation:i * dilation + stride * (oh - 1) + 1:stride,
                           j * dilation:j * dilation + stride * (ow - 1) + 1:stride]
                out[:, g * per:(g + 1) * per] += np.einsum("bchw,oc->bohw", patch, w[g * per:(g + 1) * per, :, i, j])
    if b is not None:
        out += b[None, :, None, None]
    return out


def group_norm(x, groups, gamma, beta, eps=1e-5):
    bsz, c, h, w = x.shape
    xg = x.reshape(bsz, groups, -1)
    xg = (xg - xg.mean(-1, keepdims=True)) / np.sqrt(xg.var(-1, keepdims=True) + eps)
    return xg.reshape(bsz, c, h, w) * gamma[None, :, None, None] + beta[None, :, None, None]


def silu(x):
    return x / (1.0 + np.exp(-x))


def gelu(x):
    from scipy.special import erf
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def pixel_shuffle(x, r):
    """torch.nn.PixelShuffle: out[b, c, h*r + i, w*r + j] = x[b, c*r*r + i*r + j, h, w]."""
    bsz, c, h, w = x.shape
    out = np.zeros((bsz, c // (r * r), h * r, w * r))
    for ch in range(c // (r * r)):
        for i in range(r):
            for j in range(r):
                out[:, ch, i::r, j::r] = x[:, ch * r * r + i * r + j]
    return out


def randomize(cell, ms, rng, scale=0.2):
    """Random values for every parameter (BatchNorm's running statistics included)."""
    params = {}
    for p in cell.get_parameters():
        value = rng.normal(0, scale, p.shape)
        if p.name.endswith("moving_variance"):
            value = 0.5 + np.abs(value)
        p.set_data(ms.Tensor(value.astype(np.float32)))
        params[p.name] = value.astype(np.float32).astype(np.float64)
    return params


def test_group_norm_native_kernel_matches_numpy_and_the_op_form(ms_context):
    """GroupNorm on the native LayerNorm kernel (its GroupNorm form): forward against numpy,
    and the gradients of x, gamma and beta against the MindSpore-op form's automatic ones."""
    ms = ms_context
    from mindspore import nn
    from layers.simvp_blocks import GroupNorm
    rng = np.random.default_rng(7)
    x = rng.normal(0.5, 2.0, (3, 8, 5, 6)).astype(np.float32)
    g = rng.normal(0, 1, x.shape).astype(np.float32)

    class Loss(nn.Cell):
        def __init__(self, norm):
            super().__init__()
            self.norm = norm

        def construct(self, x):
            return (self.norm(x) * ms.Tensor(g)).sum()

    for groups in (1, 2, 8):
        native, ops_form = GroupNorm(groups, 8), GroupNorm(groups, 8)
        if native.native is None:
            pytest.skip("no native kernels here (no C++ compiler, or STPL_NATIVE_OPS=0)")
        ops_form.native_on = False
        gamma, beta = rng.normal(1, 0.3, 8).astype(np.float32), rng.normal(0, 0.3, 8).astype(np.float32)
        for cell in (native, ops_form):
            cell.gamma.set_data(ms.Tensor(gamma))
            cell.beta.set_data(ms.Tensor(beta))
        want = group_norm(x.astype(np.float64), groups, gamma, beta)
        np.testing.assert_allclose(native(ms.Tensor(x)).asnumpy(), want, rtol=1e-5, atol=1e-5)
        grads = []
        for cell in (native, ops_form):
            dx, (dgamma, dbeta) = ms.grad(Loss(cell), grad_position=0, weights=[cell.gamma, cell.beta])(ms.Tensor(x))
            grads.append([dx.asnumpy(), dgamma.asnumpy(), dbeta.asnumpy()])
        for got, ref, name in zip(grads[0], grads[1], ("x", "gamma", "beta")):
            np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max(), err_msg=f"d{name}, G={groups}")


def test_conv_sc_down_and_up_match_numpy(ms_context):
    ms = ms_context
    from layers.simvp_blocks import ConvSC
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (2, 3, 8, 8)).astype(np.float32)
    for kwargs, kernel, size in (({"downsampling": True}, 3, 4), ({"upsampling": True}, 3, 16), ({}, 5, 8)):
        cell = ConvSC(3, 4, kernel, **kwargs)
        cell.set_train(False)
        p = randomize(cell, ms, rng)
        got = cell(ms.Tensor(x)).asnumpy()
        stride = 2 if kwargs.get("downsampling") else 1
        pad = (kernel - stride + 1) // 2
        if kwargs.get("upsampling"):
            y = pixel_shuffle(conv2d(x.astype(np.float64), p["conv.conv.0.weight"], p["conv.conv.0.bias"],
                                     padding=pad), 2)
        else:
            y = conv2d(x.astype(np.float64), p["conv.conv.weight"], p["conv.conv.bias"], stride, pad)
        want = silu(group_norm(y, 2, p["conv.norm.gamma"], p["conv.norm.beta"]))
        assert got.shape == want.shape == (2, 4, size, size)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_inception_block_matches_numpy(ms_context):
    ms = ms_context
    from layers.simvp_blocks import InceptionST
    rng = np.random.default_rng(1)
    cell = InceptionST(16, 8, 16, kernels=(3, 5), groups=4)
    p = randomize(cell, ms, rng, 0.1)
    x = rng.normal(0, 1, (2, 16, 6, 6)).astype(np.float32)
    got = cell(ms.Tensor(x)).asnumpy()
    z = conv2d(x.astype(np.float64), p["conv1.weight"], p["conv1.bias"])
    want = 0
    for i, k in enumerate((3, 5)):
        y = conv2d(z, p[f"layers.{i}.conv.weight"], p[f"layers.{i}.conv.bias"], padding=k // 2, groups=4)
        y = group_norm(y, 4, p[f"layers.{i}.norm.gamma"], p[f"layers.{i}.norm.beta"])
        want = want + np.where(y > 0, y, 0.2 * y)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def meta_block_numpy(p, x, dim, attention):
    """The gSTA / TAU block layout in float64: x + ls1 * (proj_2(attention(GELU(proj_1(BN1(x))))) + BN1(x)),
    then + ls2 * MixMlp(BN2(.)); BatchNorm from its running statistics. attention(a, conv)
    is the block's own part, conv(v, name, **kw) a biased convolution of p's weights."""
    def bn(v, name):
        mean, var = p[f"{name}.moving_mean"], p[f"{name}.moving_variance"]
        return ((v - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
                * p[f"{name}.gamma"][None, :, None, None] + p[f"{name}.beta"][None, :, None, None])

    def c(v, name, **kw):
        return conv2d(v, p[f"{name}.weight"], p[f"{name}.bias"], **kw)

    v = x.astype(np.float64)
    attn = c(attention(gelu(c(bn(v, "norm1"), "attn.proj_1")), c), "attn.proj_2") + bn(v, "norm1")
    v = v + p["layer_scale_1"][None, :, None, None] * attn
    m = c(gelu(c(c(bn(v, "norm2"), "mlp.fc1"), "mlp.dwconv", padding=1, groups=2 * dim)), "mlp.fc2")
    return v + p["layer_scale_2"][None, :, None, None] * m


def test_gsta_block_matches_numpy(ms_context):
    """x + ls1 * SA(BN1(x)), then + ls2 * MixMlp(BN2(.)), BatchNorm from its running statistics
    (inference), the large-kernel attention's dilated depthwise 7x7 (dilation 3) included."""
    ms = ms_context
    from layers.simvp_blocks import GASubBlock
    rng = np.random.default_rng(2)
    dim = 4
    cell = GASubBlock(dim, kernel_size=21, mlp_ratio=2.0)
    cell.set_train(False)
    p = randomize(cell, ms, rng)
    x = rng.normal(0, 1, (2, dim, 9, 9)).astype(np.float32)
    got = cell(ms.Tensor(x)).asnumpy()

    unit = "attn.spatial_gating_unit"

    def lka(a, c):  # large-kernel attention: f * sigmoid(g)
        g = c(c(c(a, f"{unit}.conv0", padding=2, groups=dim), f"{unit}.conv_spatial", padding=9, dilation=3,
                groups=dim), f"{unit}.conv1")
        return sigmoid(g[:, dim:]) * g[:, :dim]

    np.testing.assert_allclose(got, meta_block_numpy(p, x, dim, lka), rtol=1e-4, atol=1e-5)


def simvp_cfg(*extra):
    return load_config(["--model_name=simvp", "--patch_size=1", "--img_width=16", "--hid_S=8", "--hid_T=16",
                        "--N_S=2", "--N_T=2", "--mlp_ratio=2", "--input_length=4", "--seq_length=8", *extra])


@pytest.mark.parametrize("model_type", ["gsta", "incepu"])
def test_whole_clip_in_and_out_with_the_rolling_scheme(ms_context, model_type):
    """future == input_length: one application; longer: applied again to its own predictions;
    shorter: the first frames of one application. The mask and the future frames are not read."""
    ms = ms_context
    from nets.registry import build_model
    rng = np.random.default_rng(3)
    clip = rng.random((2, 11, 16, 16, 1)).astype(np.float32)
    outs = {}
    weights = None
    for seq in (8, 11, 6):
        cfg = simvp_cfg(f"--seq_length={seq}", f"--simvp_model_type={model_type}")
        net = build_model(cfg)
        net.set_train(False)
        if weights is None:
            randomize(net, ms, rng, 0.1)
            weights = {p.name: p.asnumpy() for p in net.get_parameters()}
        else:
            for p in net.get_parameters():
                p.set_data(ms.Tensor(weights[p.name]))
        frames = clip[:, :seq].copy()
        frames[:, 4:] = rng.random(frames[:, 4:].shape)  # the future must not matter
        mask = ms.Tensor(rng.random((2, seq - 1)).astype(np.float32))
        outs[seq] = net(ms.Tensor(frames), mask).asnumpy()
        assert outs[seq].shape == (2, seq - 4, 16, 16, 1)
    one = outs[8]
    np.testing.assert_allclose(outs[6], one[:, :2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outs[11][:, :4], one, rtol=1e-5, atol=1e-6)
    # the rolled part is the model applied to its own 4 predictions
    cfg = simvp_cfg(f"--simvp_model_type={model_type}")
    net = build_model(cfg)
    net.set_train(False)
    for p in net.get_parameters():
        p.set_data(ms.Tensor(weights[p.name]))
    again = np.concatenate([one, np.zeros_like(one)], axis=1)
    second = net(ms.Tensor(again.astype(np.float32)), ms.Tensor(np.ones((2, 7), np.float32))).asnumpy()
    np.testing.assert_allclose(outs[11][:, 4:], second[:, :3], rtol=1e-4, atol=1e-5)


def test_config_checks():
    from engine.errors import UserError
    with pytest.raises(UserError, match="simvp_model_type"):
        simvp_cfg("--simvp_model_type=swin")
    with pytest.raises(UserError, match="N_T"):
        simvp_cfg("--N_T=1")


def test_onecycle_is_pytorchs_onecyclelr():
    """PyTorch's OneCycleLR(max_lr, total_steps, defaults): lr/25 at step 0, lr at step
    0.3 * total - 1, lr/25/1e4 at the last step, cosine in between (values by hand)."""
    from engine.trainer import learning_rates
    cfg = load_config(["--lr_schedule=onecycle", "--lr=0.001", "--max_iterations=100"])
    lr = learning_rates(cfg).astype(np.float64)
    np.testing.assert_allclose(lr[0], 0.001 / 25, rtol=1e-6)
    np.testing.assert_allclose(lr[29], 0.001, rtol=1e-6)
    np.testing.assert_allclose(lr[99], 0.001 / 25 / 1e4, rtol=1e-5)
    # half way up (step 14.5 of 29): the cosine's midpoint; step 10 by the formula
    np.testing.assert_allclose(lr[10], 0.001 + (0.00004 - 0.001) / 2 * (1 + math.cos(math.pi * 10 / 29)), rtol=1e-6)
    np.testing.assert_allclose(lr[64], 4e-9 + (0.001 - 4e-9) / 2 * (1 + math.cos(math.pi * 35 / 70)), rtol=1e-6)
    assert np.all(np.diff(lr[:30]) > 0) and np.all(np.diff(lr[29:]) < 0)


def test_exportable_gelu_is_the_exact_gelu(ms_context):
    """The GELU swapped in before an ONNX export equals x * Phi(x) to 1e-6 on [-8, 8] (erf to 1.5e-7, times |x|)."""
    ms = ms_context
    from mindspore import nn
    from layers.simvp_blocks import GELUForExport, use_exportable_ops
    x = np.linspace(-8, 8, 4001).astype(np.float32)
    got = GELUForExport()(ms.Tensor(x)).asnumpy().astype(np.float64)
    np.testing.assert_allclose(got, gelu(x.astype(np.float64)), rtol=0, atol=1e-6)
    holder = nn.SequentialCell([nn.GELU(approximate=False), nn.SequentialCell([nn.GELU(approximate=False)])])
    use_exportable_ops(holder)
    assert not any(isinstance(c, nn.GELU) for _, c in holder.cells_and_names())


def test_native_gelu_is_the_exact_gelu_both_ways(ms_context):
    """layers.activations.GELU on the native kernel: x * Phi(x) and its derivative
    Phi(x) + x phi(x) to 1e-6 on [-12, 12] (and for the tails), against scipy's erf in float64;
    the export switch gives MindSpore's GELU back, and the ONNX swap still finds it."""
    ms = ms_context
    from mindspore import nn
    from layers.activations import GELU
    from layers.conv import standard_operators
    from layers.simvp_blocks import use_exportable_ops
    cell = GELU()
    if cell.native is None:
        pytest.skip("no native kernels here (no C++ compiler, or STPL_NATIVE_OPS=0)")
    x = np.concatenate([np.linspace(-12, 12, 24001), [-100.0, -30.0, 30.0, 100.0]]).astype(np.float32)
    x64 = x.astype(np.float64)
    got = cell(ms.Tensor(x)).asnumpy().astype(np.float64)
    np.testing.assert_allclose(got, gelu(x64), rtol=1e-6, atol=1e-6)
    dx = ms.grad(cell)(ms.Tensor(x)).asnumpy().astype(np.float64)
    from scipy.special import erf
    slope = 0.5 * (1.0 + erf(x64 / math.sqrt(2.0))) + x64 * np.exp(-0.5 * x64 * x64) / math.sqrt(2.0 * math.pi)
    np.testing.assert_allclose(dx, slope, rtol=0, atol=1e-6)
    holder = nn.SequentialCell([GELU()])
    with standard_operators(holder):
        assert not holder[0].native_on
        np.testing.assert_allclose(holder(ms.Tensor(x[:100])).asnumpy(), gelu(x64[:100]), rtol=1e-5, atol=1e-6)
    use_exportable_ops(holder)
    assert not any(isinstance(c, nn.GELU) for _, c in holder.cells_and_names())


def test_native_sigmoid_gate_matches_numpy_both_ways(ms_context):
    """gSTA's attention gate on the native kernel: y = sigmoid(g) * f from [B, 2C, H, W] and
    both gradients against float64 numpy (g over [-30, 30]); under standard_operators the
    module runs the op form, with the same values."""
    ms = ms_context
    from layers import native
    from layers.conv import standard_operators
    from layers.simvp_blocks import AttentionModule
    from mindspore import nn
    op = native.sigmoid_gate()
    if op is None:
        pytest.skip("no native kernels here (no C++ compiler, or STPL_NATIVE_OPS=0)")

    class Gate(nn.Cell):
        def construct(self, x):
            return op(x)
    gate = Gate()
    rng = np.random.default_rng(5)
    fg = rng.normal(0, 3, (2, 6, 5, 7)).astype(np.float32)
    fg[:, 3:].flat[:4] = (-30.0, 30.0, 0.0, -0.0)
    dy = rng.normal(0, 1, (2, 3, 5, 7)).astype(np.float32)
    f, g = fg[:, :3].astype(np.float64), fg[:, 3:].astype(np.float64)
    s = 1.0 / (1.0 + np.exp(-g))
    np.testing.assert_allclose(gate(ms.Tensor(fg)).asnumpy(), s * f, rtol=1e-6, atol=1e-6)
    grad = ms.grad(gate, grad_position=0, sens_param=True)(ms.Tensor(fg), ms.Tensor(dy)).asnumpy()
    np.testing.assert_allclose(grad, np.concatenate([dy * s, dy * f * s * (1 - s)], axis=1), rtol=1e-5, atol=1e-6)
    cell = AttentionModule(4, 21)
    x = ms.Tensor(rng.normal(0, 1, (2, 4, 8, 8)).astype(np.float32))
    native_out = cell(x).asnumpy()
    with standard_operators(cell):
        np.testing.assert_allclose(cell(x).asnumpy(), native_out, rtol=1e-5, atol=1e-6)


def test_tau_block_matches_numpy(ms_context):
    """TAU's temporal attention: s * f * x with f the large-kernel convs and s the
    squeeze-and-excitation of x (no biases, hidden C / max(C // 16, 4)), inside the gSTA
    residual layout."""
    ms = ms_context
    from layers.simvp_blocks import TAUSubBlock
    rng = np.random.default_rng(4)
    dim = 8
    cell = TAUSubBlock(dim, kernel_size=21, mlp_ratio=2.0)
    cell.set_train(False)
    p = randomize(cell, ms, rng)
    x = rng.normal(0, 1, (2, dim, 9, 9)).astype(np.float32)
    got = cell(ms.Tensor(x)).asnumpy()

    unit = "attn.spatial_gating_unit"
    assert p[f"{unit}.fc.0.weight"].shape == (dim // 4, dim)  # r = max(8 // 16, 4)

    def temporal(a, c):  # s * f * a: squeeze-and-excitation times the large-kernel convs
        f = c(c(c(a, f"{unit}.conv0", padding=2, groups=dim), f"{unit}.conv_spatial", padding=9, dilation=3,
                groups=dim), f"{unit}.conv1")
        hidden = np.maximum(a.mean(axis=(2, 3)) @ p[f"{unit}.fc.0.weight"].T, 0)
        s = sigmoid(hidden @ p[f"{unit}.fc.2.weight"].T)
        return s[:, :, None, None] * f * a

    np.testing.assert_allclose(got, meta_block_numpy(p, x, dim, temporal), rtol=1e-4, atol=1e-5)


def test_differential_divergence_by_hand(ms_context):
    """OpenSTL's diff_div_reg: softmax(frame differences / 0.1) of prediction (p) and truth
    (q) over each flattened frame, mean of p * log(p / (q + 1e-12) + 1e-12); 0 for <= 2 frames."""
    ms = ms_context
    from nets.simvp import differential_divergence
    rng = np.random.default_rng(5)
    pred = rng.random((2, 4, 3, 3, 2)).astype(np.float32)
    true = rng.random((2, 4, 3, 3, 2)).astype(np.float32)
    got = float(differential_divergence(ms.Tensor(pred), ms.Tensor(true)).asnumpy())

    def soft(v):
        gap = (v[:, 1:] - v[:, :-1]).reshape(2, 3, -1).astype(np.float64) / 0.1
        e = np.exp(gap - gap.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    p, q = soft(pred), soft(true)
    want = np.mean(p * np.log(p / (q + 1e-12) + 1e-12))
    np.testing.assert_allclose(got, want, rtol=1e-4)
    assert want > 0.01
    assert float(differential_divergence(ms.Tensor(true), ms.Tensor(true)).asnumpy()) < 1e-6
    assert float(differential_divergence(ms.Tensor(pred[:, :2]), ms.Tensor(true[:, :2])).asnumpy()) == 0.0


def test_tau_adds_its_regularization_while_training(ms_context):
    ms = ms_context
    from engine.trainer import NetWithLoss
    from nets.registry import build_model
    from nets.simvp import differential_divergence
    cfg = simvp_cfg("--model_name=tau", "--alpha=0.5")
    net = build_model(cfg)
    rng = np.random.default_rng(6)
    frames = ms.Tensor(rng.random((2, 8, 16, 16, 1)).astype(np.float32))
    mask = ms.Tensor(np.ones((2, 7), np.float32))
    net.set_train(False)
    pred = net(frames, mask).asnumpy()  # BatchNorm from running statistics: the same in both modes below
    loss = NetWithLoss(net, 8)
    loss.set_train(True)
    net.set_train(True)
    from layers.simvp_blocks import DropPath
    for _, cell in net.cells_and_names():
        if hasattr(cell, "use_batch_statistics"):  # BatchNorm: running statistics in training too
            cell.use_batch_statistics = False
        if isinstance(cell, DropPath):  # OpenSTL's rates start at 0.01 even with drop_path 0
            cell.keep = 1.0
    got = float(loss(frames, mask).asnumpy())
    truth = frames.asnumpy()[:, 4:]
    want = np.mean((pred - truth) ** 2) + 0.5 * float(
        differential_divergence(ms.Tensor(pred), ms.Tensor(truth)).asnumpy())
    np.testing.assert_allclose(got, want, rtol=1e-4)


# ---------------------------------------------------------------- OpenSTL checkpoints
def openstl_fixtures():
    import json
    import os
    from tests.conftest import ROOT
    folder = os.path.join(ROOT, "tests", "fixtures", "openstl_simvp")
    with open(os.path.join(folder, "manifest.json"), encoding="utf-8") as f:
        return folder, json.load(f)


@pytest.mark.parametrize("tag", ["simvp_gsta", "simvp_incepu", "tau"])
def test_openstl_checkpoint_reproduces_pytorch(ms_context, tmp_path, tag):
    """tools/make_openstl_simvp_fixtures.py ran OpenSTL's own SimVP_Model (gSTA, IncepU, tau;
    the same maths at OpenSTLv0.3.0 and OpenSTL-Lightning) on random weights, BatchNorm
    running statistics included, and saved it in OpenSTL's containers. convert_checkpoint.py
    and the direct use of the file reproduce its predictions to 1e-5."""
    import os
    import convert_checkpoint
    from engine.checkpoint import load_weights
    from nets.registry import build_model
    ms = ms_context
    folder, m = openstl_fixtures()
    case = m["cases"][tag]
    argv = [f"--model_name={case['model']}", f"--simvp_model_type={case['simvp_model_type']}",
            f"--patch_size={m['patch_size']}", f"--img_width={m['img_width']}", f"--img_channel={m['img_channel']}",
            f"--input_length={m['input_length']}", f"--seq_length={m['seq_length']}", "--device_target=CPU"] + \
        [f"--{k}={v}" for k, v in m["shape"].items()]
    ref = np.load(os.path.join(folder, "reference.npz"))
    frames = ms.Tensor(ref["frames"])
    mask = ms.Tensor(np.ones((m["batch"], m["seq_length"] - 1), np.float32))
    lines = []
    out = str(tmp_path / "ours.ckpt")
    cfg = convert_checkpoint._convert_torch("openstl", os.path.join(folder, case["file"]), out, argv,
                                            log=lines.append)
    if case["simvp_model_type"] != "incepu":  # gSTA / TAU blocks hold BatchNorms
        assert any("BatchNorm's update counter" in line for line in lines), lines
    for source in (out, os.path.join(folder, case["file"])):  # converted, and the torch file itself
        net = build_model(cfg)
        load_weights(net, source, log=None, cfg=cfg)
        net.set_train(False)
        got = net(frames, mask).asnumpy()
        assert np.abs(ref[tag]).mean() > 0.02
        np.testing.assert_allclose(got, ref[tag], rtol=0, atol=1e-5)


def test_openstl_checkpoint_that_does_not_fit_says_what_it_is(ms_context, tmp_path):
    import os
    import convert_checkpoint
    from engine.errors import UserError
    folder, m = openstl_fixtures()
    with pytest.raises(UserError) as err:
        convert_checkpoint._convert_torch("openstl", os.path.join(folder, m["cases"]["simvp_incepu"]["file"]),
                                          str(tmp_path / "x.ckpt"),
                                          ["--model_name=simvp", "--simvp_model_type=gsta", "--patch_size=1",
                                           "--img_width=16", "--input_length=4", "--seq_length=8", "--hid_S=4",
                                           "--hid_T=16", "--N_S=2", "--N_T=2"], log=lambda *_: None)
    text = str(err.value)
    assert "SimVP translator incepu, hid_S=4, hid_T=16, N_S=2, N_T=2" in text and "simvp_model_type" in text
