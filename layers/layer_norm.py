"""Tensor LayerNorm over every axis but the batch (C, H, W of NCHW; C, tau, H, W of NCDHW),
written with ReduceMean so that it exports to ONNX (nn.LayerNorm over several axes does
not, see MINDSPORE_NOTES.md)."""
import numpy as np
import mindspore as ms
from mindspore import nn, ops
from mindspore.common.initializer import initializer


def _normalize(x, eps, precise):
    """(x - mean) / sqrt(var + eps) with per-sample statistics over all non-batch axes."""
    # statistics on a flat [B, N] view: the backward of a multi-axis ReduceMean is
    # several times slower on the CPU (measured 0.27 -> 0.22 s per PredRNN LN step)
    shape = x.shape
    flat = ops.reshape(x, (shape[0], -1))
    mean = ops.mean(flat, axis=1, keep_dims=True)
    centred = flat - mean
    if precise:
        centred = centred - ops.mean(centred, axis=1, keep_dims=True)
    var = ops.mean(centred * centred, axis=1, keep_dims=True)
    return ops.reshape(centred / ops.sqrt(var + eps), shape)


class _AffineNorm(nn.Cell):
    """(x, gamma, beta) -> _normalize(x) * gamma + beta, the same forward ops, with a written
    backward. MindSpore's automatic one sums the scale and shift gradients with a ReduceSum
    over the broadcast axes (0, 2, 3), which on the CPU took as long as the whole
    normalisation (measured: 6.8 ms against 0.7 ms for the same sums as a matmul with a
    ones vector, [2, 896, 16, 16]), and builds the input gradient from ~20 elementwise ops.
    The backward below is the textbook one (same maths, float rounding apart):
        g = dy * gamma;  dx = (g - mean(g) - n * mean(g * n)) / std
        dgamma = sum over batch (and, per channel, the spatial axes) of dy * n;  dbeta of dy
    with n the normalised input; the statistics are recomputed from x rather than kept.
    """

    def __init__(self, channels, dims, eps, per_channel):
        super().__init__()
        self.eps = eps
        self.per_channel = per_channel
        self.channels = channels
        self.rest = int(np.prod(dims))
        self.mean = ops.ReduceMean(keep_dims=True)
        self.sum = ops.ReduceSum(keep_dims=False)
        self.sqrt = ops.Sqrt()
        self.matmul = ops.MatMul()
        self.ones = ms.Tensor(np.ones((self.rest, 1), np.float32))

    def construct(self, x, gamma, beta):
        return _normalize(x, self.eps, False) * gamma + beta

    def param_sum(self, t, batch, like):
        """Sum of t [B, C, *dims] over the axes gamma is broadcast along, in gamma's shape."""
        if self.per_channel:  # [B * C, rest] @ ones: a GEMV, fast where ReduceSum is not
            t = ops.reshape(self.matmul(ops.reshape(t, (batch * self.channels, self.rest)), self.ones),
                            (batch, self.channels))
        else:
            t = ops.reshape(t, (batch, -1))
        return ops.reshape(self.sum(t, 0), like.shape)

    def bprop(self, x, gamma, beta, out, dout):
        shape = x.shape
        batch = shape[0]
        flat = ops.reshape(x, (batch, -1))
        centred = flat - self.mean(flat, 1)
        std = self.sqrt(self.mean(centred * centred, 1) + self.eps)
        normed = centred / std
        g = ops.reshape(dout * gamma, (batch, -1))
        dx = (g - self.mean(g, 1) - normed * self.mean(g * normed, 1)) / std
        dgamma = self.param_sum(dout * ops.reshape(normed, shape), batch, gamma)
        dbeta = self.param_sum(dout, batch, beta)
        return ops.reshape(dx, shape), dgamma, dbeta


class TensorLayerNorm(nn.Cell):
    """Per-sample statistics over all non-batch axes, as torch.nn.LayerNorm(x.shape[1:]):
    biased variance of the centred values, eps inside the square root.

    TensorLayerNorm(channels, *dims): dims are the remaining axes (H, W or tau, H, W).
    affine='element': scale and shift of shape (channels, *dims), as torch.nn.LayerNorm in
    thuml/OpenSTL. affine='channel': one scale and shift per channel (model-zoo style,
    tf.contrib.layers.layer_norm).

    The float32 mean errs by a few ulps of the mean, which the division by the standard
    deviation magnifies when the mean dwarfs the spread (7e-6 in the output at mean/std = 60;
    ~3e-7 on typical gate pre-activations). precise=True adds the mean of the first-pass
    residuals back (a corrected two-pass mean: 3e-7 in that case too), at one more reduction
    and subtraction: ~8% of a tiny PredRNN++ LN training step, so only where outputs must
    match PyTorch closely (activations=exact).

    The forward ops are the same either way (ONNX export sees ReduceMean, Sub, Mul, Sqrt,
    Div). Without precise the gradient is the written one of _AffineNorm (faster, less
    memory); precise keeps MindSpore's automatic differentiation of the two-pass form.
    """

    def __init__(self, channels, *dims, eps=1e-5, affine="element", precise=False):
        super().__init__()
        if not dims:
            raise ValueError("TensorLayerNorm needs the sizes of the axes after the channels")
        if affine == "element":
            shape = (channels,) + tuple(dims)
        elif affine == "channel":
            shape = (channels,) + (1,) * len(dims)
        else:
            raise ValueError(f"affine must be 'element' or 'channel', got {affine!r}")
        self.gamma = ms.Parameter(initializer("ones", shape, ms.float32), name="gamma")
        self.beta = ms.Parameter(initializer("zeros", shape, ms.float32), name="beta")
        self.eps = eps
        self.precise = bool(precise)
        self.norm = _AffineNorm(channels, dims, eps, affine == "channel")

    def construct(self, x):
        if self.precise:
            return _normalize(x, self.eps, True) * self.gamma + self.beta
        return self.norm(x, self.gamma, self.beta)
