"""Gate activations, and the one switch (config key `activations`) that makes them exact.

MindSpore's tanh kernels (ops.tanh, mint.tanh, nn.Tanh) on CPU are approximations with an
absolute error up to 1e-4 for 3 < |x| < 8 (measured on MindSpore 2.10 CPU); ops.sigmoid
is accurate to ~1e-6, and the identity tanh(x) = 2 * sigmoid(2x) - 1 built on it stays
within 2e-6 everywhere, so that is the cells' float32 tanh (PredRNN++ keeps ops.tanh, the
kernel the model zoo's checkpoints were made and checked with: layers/causal_lstm_cell.py).

MindSpore's float32 CPU sigmoid is itself off by up to 8e-7 (its kernel builds it on an exp
with a relative error of ~5e-6). Where a LayerNorm sits downstream it divides such errors by
the spread of its input, and converted PyTorch checkpoints with LayerNorm then part from
PyTorch by ~1e-5 after a few steps. In float64 both functions are exact to float32 rounding
(3e-8), at ~7x the cost of the float32 kernel (measured on a [16, 128, 16, 16] tensor,
forward and backward): `activations: exact` is a switch for reproducing PyTorch, not a default.

`exact` below is a Python bool fixed when the cell is built, so GRAPH mode folds the branch.
"""
from mindspore import nn, ops
from mindspore.common import dtype as mstype

from layers import native


def sigmoid_exact(x):
    return ops.cast(ops.sigmoid(ops.cast(x, mstype.float64)), x.dtype)


def tanh_exact(x):
    return ops.cast(ops.tanh(ops.cast(x, mstype.float64)), x.dtype)


def sigmoid(x, exact=False):
    return sigmoid_exact(x) if exact else ops.sigmoid(x)


def tanh(x, exact=False):
    return tanh_exact(x) if exact else 2.0 * ops.sigmoid(2.0 * x) - 1.0


class LastAxisSoftmax(nn.Cell):
    """ops.softmax over the last axis with a written backward: dx = y * (dy - sum(dy * y)).
    MindSpore's automatic one takes the row sum with a ReduceSum over the last axis, which on
    the CPU was a quarter of a small E3D-LSTM train step (its recall attention,
    [B, tau*H*W, N]: 387 of 1522 ms operator time). On the CPU the backward is one native
    kernel (layers/native/softmax_grad.cc); elsewhere, or without a compiler, the row sum is
    a matmul with a ones vector. The forward is the plain op, so exports are unchanged."""

    def __init__(self):
        super().__init__()
        self.matmul = ops.MatMul()
        self.native_grad = native.softmax_grad()

    def construct(self, x):
        return ops.softmax(x, axis=-1)

    def bprop(self, x, out, dout):
        if self.native_grad is not None and out.dtype == mstype.float32:
            return (self.native_grad(out, dout),)
        shape = x.shape
        width = shape[-1]
        row_sum = self.matmul(ops.reshape(dout * out, (-1, width)), ops.ones((width, 1), out.dtype))
        return (out * (dout - ops.reshape(row_sum, shape[:-1] + (1,))),)


class GELU(nn.GELU):
    """nn.GELU(approximate=False) that runs layers/native/gelu.cc on the CPU (one vectorised
    pass each way; MindSpore's CPU Erf alone took 43-66 ms on SimVP's [16, 640, 32, 32]);
    elsewhere, under exports (layers.conv.standard_operators) and for float16, MindSpore's op.
    Still an nn.GELU, so SimVP.use_exportable_ops swaps it for the ONNX form."""

    def __init__(self):
        super().__init__(approximate=False)
        self.native = native.gelu()
        self.native_on = True  # False while exporting

    def construct(self, x):
        if self.native_on and self.native is not None and x.dtype == mstype.float32:
            return self.native(x)
        return super().construct(x)
