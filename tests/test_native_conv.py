"""The native CPU convolutions (layers/native/conv.cc on oneDNN, through layers/conv.py's
Conv2d / Conv3d) against the float64 textbook convolution: output and the three gradients
(input, weights, bias) of sum(y * g), for 1x1, 3x3, 5x5 and dilated 2-D kernels, strides,
explicit, asymmetric and "same" pads, groups (depthwise included), and the 3-D kernels
E3D-LSTM uses; and the switch back to MindSpore's ops for export."""
import itertools

import numpy as np
import pytest


def textbook(x, w, b, g, stride, dilation, lo, hi, groups):
    """y = conv(x, w) + b and the gradients of sum(y * g), in float64 with explicit loops over
    the kernel offsets (any number of spatial axes)."""
    x, w, g = (a.astype(np.float64) for a in (x, w, g))
    spatial = x.ndim - 2
    xp = np.pad(x, [(0, 0), (0, 0)] + [(lo[i], hi[i]) for i in range(spatial)])
    out = g.shape[2:]
    cg, og = x.shape[1] // groups, w.shape[0] // groups
    y = np.zeros(g.shape)
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for k in itertools.product(*[range(n) for n in w.shape[2:]]):
        window = tuple(slice(k[i] * dilation[i], k[i] * dilation[i] + (out[i] - 1) * stride[i] + 1, stride[i])
                       for i in range(spatial))
        for gi in range(groups):
            cs, os_ = slice(gi * cg, (gi + 1) * cg), slice(gi * og, (gi + 1) * og)
            patch = xp[(slice(None), cs) + window]               # [N, cg, *out]
            flat = patch.reshape(patch.shape[0], cg, -1)
            gk = g[:, os_].reshape(g.shape[0], og, -1)
            wk = w[(os_, slice(None)) + k]                       # [og, cg]
            y[:, os_] += np.einsum("ncp,oc->nop", flat, wk).reshape(y[:, os_].shape)
            dw[(os_, slice(None)) + k] += np.einsum("ncp,nop->oc", flat, gk)
            dxp[(slice(None), cs) + window] += np.einsum("nop,oc->ncp", gk, wk).reshape(patch.shape)
    y += b.astype(np.float64).reshape((1, -1) + (1,) * spatial)
    crop = tuple(slice(lo[i], lo[i] + x.shape[2 + i]) for i in range(spatial))
    return y, dxp[(slice(None), slice(None)) + crop], dw, g.sum(axis=tuple(i for i in range(g.ndim) if i != 1))


# (input shape, out channels, kernel, stride, pad_mode, padding, dilation, groups, bias)
CASES = [
    ((2, 5, 7, 6), 4, 1, 1, "valid", 0, 1, 1, False),                  # 1x1 (conv_last, adapters)
    ((2, 6, 9, 8), 8, 3, 2, "pad", 1, 1, 1, True),                     # 3x3 stride 2 (MAU, SimVP)
    ((3, 4, 8, 8), 6, 5, 1, "pad", 2, 1, 1, True),                     # 5x5 gates
    ((2, 4, 7, 9), 5, 3, 1, "same", 0, 1, 1, False),                   # pad_mode same
    ((2, 3, 9, 9), 4, 3, 2, "same", 0, 1, 1, True),                    # same, stride 2 (odd pad at the end)
    ((2, 6, 8, 7), 6, 3, 1, "pad", (1, 2, 0, 1), 1, 1, True),          # asymmetric pads
    ((2, 8, 10, 10), 8, 3, 1, "pad", 3, 3, 8, True),                   # dilated depthwise (gSTA)
    ((2, 16, 9, 9), 16, 5, 1, "pad", 2, 1, 16, True),                  # depthwise 5x5 (gSTA: direct weight gradient)
    ((2, 16, 7, 9), 16, 3, 1, "pad", (0, 2, 1, 2), 2, 16, False),      # dilated depthwise, asymmetric pads (direct)
    ((2, 8, 6, 6), 4, 3, 1, "pad", 1, 1, 2, False),                    # groups 2
    ((2, 3, 4, 6, 6), 4, (2, 5, 5), 1, "same", 0, 1, 1, False),        # E3D-LSTM gates
    ((2, 4, 3, 5, 5), 3, 1, 1, "valid", 0, 1, 1, False),               # E3D-LSTM 1x1x1
    ((2, 4, 3, 5, 5), 2, (3, 1, 1), 1, "valid", 0, 1, 1, True),        # E3D-LSTM conv_last over the window
]


def _pads(shape, kernel, stride, pad_mode, padding, dilation):
    spatial = len(shape) - 2
    kernel = kernel if isinstance(kernel, tuple) else (kernel,) * spatial
    if pad_mode == "valid":
        return [0] * spatial, [0] * spatial, kernel
    if pad_mode == "pad":
        p = padding if isinstance(padding, tuple) else (padding,) * (2 * spatial)
        return list(p[0::2]), list(p[1::2]), kernel
    lo, hi = [], []
    for i in range(spatial):
        out = -(-shape[2 + i] // stride)
        total = max((out - 1) * stride + (kernel[i] - 1) * dilation + 1 - shape[2 + i], 0)
        lo.append(total // 2)
        hi.append(total - total // 2)
    return lo, hi, kernel


@pytest.fixture(scope="module")
def native_or_skip(ms_context):
    from layers import native
    if native.conv_library() is None:
        pytest.skip("no native convolution here (no C++ compiler, no oneDNN, or STPL_NATIVE_OPS=0)")
    return ms_context


def test_native_convolutions_match_the_textbook(native_or_skip):
    """Every case, forward and gradients; the gradients computed twice (cached plans)."""
    ms = native_or_skip
    from mindspore import nn
    from layers import native
    from layers.conv import Conv2d, Conv3d
    rng = np.random.default_rng(4)
    convs, inputs, weights, expected = [], [], [], []
    for shape, out_channels, kernel, stride, pad_mode, padding, dilation, groups, bias in CASES:
        cls = Conv2d if len(shape) == 4 else Conv3d
        conv = cls(shape[1], out_channels, kernel, stride=stride, pad_mode=pad_mode, padding=padding,
                   dilation=dilation, group=groups, has_bias=bias)
        assert conv.native is not None
        if bias:
            conv.bias.set_data(ms.Tensor(rng.normal(0, 1, out_channels).astype(np.float32)))
        x = rng.normal(0, 1, shape).astype(np.float32)
        lo, hi, kernel = _pads(shape, kernel, stride, pad_mode, padding, dilation)
        spatial = len(shape) - 2
        out = [(shape[2 + i] + lo[i] + hi[i] - (kernel[i] - 1) * dilation - 1) // stride + 1 for i in range(spatial)]
        g = rng.normal(0, 1, (shape[0], out_channels, *out)).astype(np.float32)
        b = conv.bias.asnumpy() if bias else np.zeros(out_channels, np.float32)
        expected.append(textbook(x, conv.weight.asnumpy(), b, g, (stride,) * spatial, (dilation,) * spatial,
                                 lo, hi, groups))
        convs.append(conv)
        inputs.append(ms.Tensor(x))
        weights.append(ms.Tensor(g))

    class Outputs(nn.Cell):  # every case in one graph: one compile
        def __init__(self):
            super().__init__()
            self.convs = nn.CellList(convs)

        def construct(self, *xs):
            return tuple(conv(x) for conv, x in zip(self.convs, xs))

    class Loss(nn.Cell):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def construct(self, *xs):
            total = 0
            for y, g in zip(self.net(*xs), weights):
                total = total + (y * g).sum()
            return total

    net = Outputs()
    outputs = [y.asnumpy() for y in net(*inputs)]
    params = [p for conv in convs for p in conv.trainable_params()]
    gradients = ms.grad(Loss(net), grad_position=tuple(range(len(inputs))), weights=params)
    # twice: the cached plans must run again (oneDNN's own scratchpad broke the gemm-based
    # weight gradient on its second run: a segfault)
    for _ in range(2):
        grads_x, grads_p = gradients(*inputs)
    grads_p = list(grads_p)
    for case, y, dx, (y_ref, dx_ref, dw_ref, db_ref), conv in zip(CASES, outputs, grads_x, expected, convs):
        scale = lambda a: 2e-6 * max(np.abs(a).max(), 1.0)  # noqa: E731  float32 sums of up to ~300 terms
        np.testing.assert_allclose(y, y_ref, atol=scale(y_ref), err_msg=f"forward {case}")
        np.testing.assert_allclose(dx.asnumpy(), dx_ref, atol=scale(dx_ref), err_msg=f"input gradient {case}")
        np.testing.assert_allclose(grads_p.pop(0).asnumpy(), dw_ref, atol=scale(dw_ref), err_msg=f"weight gradient {case}")
        if case[-1]:
            np.testing.assert_allclose(grads_p.pop(0).asnumpy(), db_ref, atol=scale(db_ref), err_msg=f"bias gradient {case}")
    described = native.conv_describe()
    assert "forward" in described and "backward_weights" in described, described
    assert "ref:" not in described, f"a reference (slow) oneDNN path was chosen: {described}"
    # oneDNN 3.2 runs the weight gradient of a depthwise 5x5 gemm-based; the direct loops take it
    assert "backward_weights direct_depthwise" in described, described


def test_standard_operators_switch_back(native_or_skip):
    """Within standard_operators the cells run MindSpore's own convolution (what ms.export
    writes), and the two paths agree."""
    ms = native_or_skip
    from layers.conv import Conv2d, standard_operators
    conv = Conv2d(3, 4, 3, pad_mode="pad", padding=1, has_bias=True)
    x = ms.Tensor(np.random.default_rng(0).normal(0, 1, (1, 3, 6, 6)).astype(np.float32))
    native_y = conv(x).asnumpy()
    with standard_operators(conv):
        assert conv.native_on is False
        standard_y = conv(x).asnumpy()
    assert conv.native_on is True
    np.testing.assert_allclose(native_y, standard_y, atol=1e-5)
