"""Convolutions of every model, and the convolution blocks shared by the recurrent cells.

Conv2d and Conv3d are MindSpore's nn.Conv2d / nn.Conv3d (same parameters, names and
initialisation) that run on the native oneDNN kernels of layers/native/conv.cc on the CPU,
in training and in evaluation: full-ISA blocked-layout convolutions where MindSpore's own
run AVX2 gemm-based ones (docs/performance.md). Exports use MindSpore's ops (see
standard_operators), so exported files never depend on the kernels; elsewhere (GPU,
Ascend, STPL_NATIVE_OPS=0, no compiler or no oneDNN) MindSpore's ops run, with one line on
stderr saying why where the CPU could have had the kernels. standard_operators switches
every native kernel under a net (these and the LayerNorm's) back to MindSpore's operators.
"""
import contextlib

import numpy as np
import mindspore as ms
from mindspore import nn
from mindspore.common.initializer import Uniform

from layers import native
from layers.layer_norm import TensorLayerNorm


def _tuple(value, n):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


class _Native:
    """What Conv2d and Conv3d share: the kernel's configuration and the choice of path."""

    def _init_native(self, spatial, out_channels, stride, pad_mode, padding, dilation, group, has_bias):
        self.native_stride, self.native_dilation = _tuple(stride, spatial), _tuple(dilation, spatial)
        pads = _tuple(padding, 2 * spatial) if pad_mode == "pad" else (0,) * (2 * spatial)
        if isinstance(padding, (tuple, list)) or pad_mode != "pad":
            lo, hi = pads[0::2], pads[1::2]  # MindSpore: (top, bottom, left, right) and (head, tail, ...)
        else:
            lo = hi = (padding,) * spatial
        self.native_same = pad_mode == "same"
        self.native_pads = (tuple(lo), tuple(hi))
        self.native_has_bias = has_bias
        self.native_cfg = self._native_config(lo, hi)
        # the kernel always takes a bias; a convolution without one gives it zeros
        self.native_zero_bias = None if has_bias else ms.Tensor(np.zeros(out_channels, np.float32))
        self.native_on = True
        self.native = native.conv(self._native_out_shape)

    def _native_config(self, lo, hi):
        """The kernel's cfg tensor (layers/native/conv.cc): spatial dims, groups, bias, same,
        strides, dilations, pads before, pads after."""
        cfg = [len(self.native_stride), self.group, int(self.native_has_bias), int(self.native_same),
               *self.native_stride, *self.native_dilation, *lo, *hi]
        return ms.Tensor(np.array(cfg, np.int32))

    def padded_native(self, lo, hi):
        """(op, cfg): this convolution's native kernel with its input zero-padded by lo / hi
        per spatial axis inside the kernel, for a caller that pads before a pad_mode="valid"
        convolution (op(x, weight, bias, cfg)); None where the kernel is not available."""
        if self.native is None:
            return None
        kernel = self.weight.shape[2:]

        def out_shape(x, w):
            return [x[0], w[0]] + [x[2 + i] + lo[i] + hi[i] - (kernel[i] - 1) * self.native_dilation[i]
                                   for i in range(len(kernel))]
        return native.conv(out_shape), self._native_config(lo, hi)

    def _native_ready(self, x):
        # constants when the graph is compiled: one branch stays
        return self.native_on and self.native is not None and x.dtype == ms.float32

    def _native_out_shape(self, x, w):
        out = [x[0], w[0]]
        for i, size in enumerate(x[2:]):
            stride, dilation = self.native_stride[i], self.native_dilation[i]
            if self.native_same:
                out.append((size + stride - 1) // stride)
            else:
                span = (w[2 + i] - 1) * dilation + 1
                out.append((size + self.native_pads[0][i] + self.native_pads[1][i] - span) // stride + 1)
        return out

    def _native_conv(self, x):
        bias = self.bias if self.native_has_bias else self.native_zero_bias
        return self.native(x, self.weight, bias, self.native_cfg)


class Conv2d(nn.Conv2d, _Native):
    """nn.Conv2d (NCHW) on the native kernel where it is available."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, pad_mode="same", padding=0, dilation=1,
                 group=1, has_bias=False, **kwargs):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, pad_mode=pad_mode, padding=padding,
                         dilation=dilation, group=group, has_bias=has_bias, **kwargs)
        self._init_native(2, out_channels, stride, pad_mode, padding, dilation, group, has_bias)

    def construct(self, x):
        if self._native_ready(x):
            return self._native_conv(x)
        return super().construct(x)


class Conv3d(nn.Conv3d, _Native):
    """nn.Conv3d (NCDHW) on the native kernel where it is available."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, pad_mode="same", padding=0, dilation=1,
                 group=1, has_bias=False, **kwargs):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, pad_mode=pad_mode, padding=padding,
                         dilation=dilation, group=group, has_bias=has_bias, **kwargs)
        self._init_native(3, out_channels, stride, pad_mode, padding, dilation, group, has_bias)

    def conv(self, x):
        """The convolution without the bias path of nn.Conv3d (for subclasses' construct)."""
        if self._native_ready(x):
            return self._native_conv(x)
        return self.conv3d(x, self.weight)

    def construct(self, x):
        if self._native_ready(x):
            return self._native_conv(x)
        return super().construct(x)


@contextlib.contextmanager
def standard_operators(net):
    """Within the block, every cell under net with a native CPU kernel (Conv2d, Conv3d,
    TensorLayerNorm: the cells with a native_on switch) runs MindSpore's own operators (for
    ms.export: exported graphs hold standard operators only)."""
    cells = [c for _, c in net.cells_and_names() if hasattr(c, "native_on")]
    before = [c.native_on for c in cells]
    for c in cells:
        c.native_on = False
    try:
        yield net
    finally:
        for c, on in zip(cells, before):
            c.native_on = on


def gate_conv(in_channels, out_channels, kernel_size, stride=1, layer_norm=False,
              height=None, width=None, has_bias=False, ln_affine="element", init_scale=None, precise=False):
    """A 'same'-padded convolution, optionally followed by a tensor LayerNorm over (C, H, W).

    Explicit symmetric padding instead of pad_mode='same' so the exported graph carries
    fixed pads. Wrapped in a SequentialCell either way so parameter names are stable
    ('conv_x.0.weight', 'conv_x.1.gamma'), matching thuml/OpenSTL's nn.Sequential layout.
    init_scale: weights ~ U(-s, s) (the PredRNN++ reference code); default MindSpore's
    HeUniform(sqrt(5)), the same distribution as PyTorch's default.
    precise: the LayerNorm's corrected two-pass mean (with `activations: exact`).
    """
    kwargs = {}
    if init_scale is not None:
        kwargs["weight_init"] = Uniform(init_scale)
        if has_bias:
            kwargs["bias_init"] = "zeros"
    conv = Conv2d(in_channels, out_channels, kernel_size, stride=stride, pad_mode="pad",
                     padding=kernel_size // 2, has_bias=has_bias, **kwargs)
    if layer_norm:
        return nn.SequentialCell([conv, TensorLayerNorm(out_channels, height, width, affine=ln_affine, precise=precise)])
    return nn.SequentialCell([conv])
