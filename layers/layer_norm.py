"""Tensor LayerNorm over every axis but the batch (C, H, W of NCHW; C, tau, H, W of NCDHW),
written with ReduceMean so that it exports to ONNX (nn.LayerNorm over several axes does
not, measured on MindSpore 2.10 CPU)."""
import numpy as np
import mindspore as ms
from mindspore import nn, ops
from mindspore.common.initializer import initializer

from layers import native


# primitives, not ops.mean(..., keep_dims=...): the written bprops below call
# _centred_std, and MindSpore cannot parse the functional form inside a bprop
_MEAN = ops.ReduceMean(keep_dims=True)
_SQRT = ops.Sqrt()


def _centred_std(x, eps, precise):
    """(x - mean as [B, N], sqrt(var + eps) as [B, 1]): per-sample statistics over all
    non-batch axes, shared by the forward passes and the written backwards."""
    # statistics on a flat [B, N] view: the backward of a multi-axis ReduceMean is
    # several times slower on the CPU (measured 0.27 -> 0.22 s per PredRNN LN step)
    flat = ops.reshape(x, (x.shape[0], -1))
    centred = flat - _MEAN(flat, 1)
    if precise:
        centred = centred - _MEAN(centred, 1)
    return centred, _SQRT(_MEAN(centred * centred, 1) + eps)


def _normalize(x, eps, precise):
    """(x - mean) / sqrt(var + eps) with per-sample statistics over all non-batch axes."""
    centred, std = _centred_std(x, eps, precise)
    return ops.reshape(centred / std, x.shape)


class _AffineNorm(nn.Cell):
    """(x, gamma, beta) -> _normalize(x) * gamma + beta with an element-wise affine (gamma
    of shape (C, *dims)), the same forward ops, with a written backward. MindSpore's
    automatic one sums the scale and shift gradients with a ReduceSum over the broadcast
    axes, which on the CPU took as long as the whole normalisation (measured: 6.8 ms against
    0.7 ms for the same sums as a matmul with a ones vector, [2, 896, 16, 16]), and builds the
    input gradient from ~20 elementwise ops. The backward below is the textbook one (same
    maths, float rounding apart):
        g = dy * gamma;  dx = (g - mean(g) - n * mean(g * n)) / std
        dgamma = sum over the batch of dy * n;  dbeta of dy
    with n the normalised input; the statistics are recomputed from x rather than kept.
    """

    def __init__(self, eps):
        super().__init__()
        self.eps = eps
        self.mean = ops.ReduceMean(keep_dims=True)
        self.sum = ops.ReduceSum(keep_dims=False)

    def construct(self, x, gamma, beta):
        return _normalize(x, self.eps, False) * gamma + beta

    def bprop(self, x, gamma, beta, out, dout):
        shape = x.shape
        batch = shape[0]
        centred, std = _centred_std(x, self.eps, False)
        normed = centred / std
        dy = ops.reshape(dout, (batch, -1))
        g = ops.reshape(dout * gamma, (batch, -1))
        dx = (g - self.mean(g, 1) - normed * self.mean(g * normed, 1)) / std
        dgamma = ops.reshape(self.sum(dy * normed, 0), gamma.shape)
        dbeta = ops.reshape(self.sum(dy, 0), beta.shape)
        return ops.reshape(dx, shape), dgamma, dbeta


class _ChannelAffineNorm(nn.Cell):
    """(x, gamma, beta) -> normalised x * gamma + beta with one scale and shift per channel
    (gamma of shape (C, 1, ...)), written for speed in both directions:

    forward: x_c = x - mean;  std = sqrt(mean(x_c^2) + eps)  ([B, 1]: tiny);
             y = x_c * (gamma / std) + beta, the scale folded into one [B, C, 1, ...] factor,
             so that no full-size division and one full-size product fewer than
             (x_c / std) * gamma run (same value, float rounding apart);
    backward (textbook dx = rstd * (g - mean(g) - n * mean(g * n)), g = dy * gamma,
             n = x_c * rstd), rearranged so that every per-sample mean is a channel sum:
             S = sum over H, W of dy * x_c and D = sum over H, W of dy ([B, C], as GEMVs:
             ReduceSum over the spatial axes is several times slower on the CPU);
             mean(g) = sum_c gamma_c D / N, mean(g * n) = rstd * sum_c gamma_c S / N;
             dx = (rstd * gamma) * dy - rstd^3 * mean(g * x_c) * x_c - rstd * mean(g);
             dgamma = sum_b rstd * S, dbeta = sum_b D.
    Four full-size products and sums in the forward, six in the backward, against 5 and ~12
    of the element-wise form. A chain of 20 of them (each followed by the same three other
    ops), forward + backward, measured 3.6 -> 3.0 ms and 6.4 -> 5.6 ms per link at
    [4, 224, 16, 16] and [2, 896, 16, 16]; gradients within 4e-9 relative of the
    element-wise form's.
    """

    def __init__(self, channels, dims, eps):
        super().__init__()
        self.eps = eps
        self.channels = channels
        self.rest = int(np.prod(dims))
        self.count = channels * self.rest
        self.sum = ops.ReduceSum(keep_dims=False)
        self.matmul = ops.MatMul()
        self.ones = ms.Tensor(np.ones((self.rest, 1), np.float32))

    def construct(self, x, gamma, beta):
        shape = x.shape
        centred, std = _centred_std(x, self.eps, False)
        # gamma / std, not gamma * (1 / std): a Reciprocal does not export to ONNX
        scale = gamma / ops.reshape(std, (shape[0],) + (1,) * (len(shape) - 1))
        return ops.reshape(centred, shape) * scale + beta

    def channel_sum(self, t, batch):
        """[B, C * rest] -> [B, C]: a GEMV with a ones vector."""
        return ops.reshape(self.matmul(ops.reshape(t, (batch * self.channels, self.rest)), self.ones),
                           (batch, self.channels))

    def bprop(self, x, gamma, beta, out, dout):
        shape = x.shape
        batch = shape[0]
        centred, std = _centred_std(x, self.eps, False)                     # [B, N], [B, 1]
        rstd = 1.0 / std
        dy = ops.reshape(dout, (batch, -1))
        gam = ops.reshape(gamma, (1, self.channels))
        s = self.channel_sum(dy * centred, batch)                           # [B, C]
        d = self.channel_sum(dy, batch)                                     # [B, C]
        mean_g = self.sum(d * gam, 1) / self.count                          # [B]
        mean_gx = self.sum(s * gam, 1) / self.count                         # [B]: mean(g * x_c)
        r = ops.reshape(rstd, (batch,))
        scale = ops.reshape(rstd * gam, (batch, self.channels) + (1,) * (len(shape) - 2))
        dx = (ops.reshape(dout * scale, (batch, -1)) - centred * ops.reshape(r * r * r * mean_gx, (batch, 1))
              - ops.reshape(r * mean_g, (batch, 1)))
        dgamma = ops.reshape(self.sum(s * rstd, 0), gamma.shape)
        dbeta = ops.reshape(self.sum(d, 0), beta.shape)
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

    Every form exports to ONNX as ReduceMean, Sub, Mul, Sqrt, Div and Add. Without precise
    the gradient is a written one (_ChannelAffineNorm, _AffineNorm: faster, less memory);
    precise keeps MindSpore's automatic differentiation of the two-pass form.

    On the CPU (not precise) it runs as one native kernel per direction
    (layers/native/layer_norm.cc, built at first use; see layers/native.py) instead of ~10
    MindSpore ops, in training and in evaluation: same maths, float rounding apart, and no
    full-size intermediate tensors. Export (layers/conv.py's standard_operators) keeps the
    MindSpore ops, which every runtime loads.
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
        self.norm = _ChannelAffineNorm(channels, dims, eps) if affine == "channel" else _AffineNorm(eps)
        self.native = None if self.precise else native.layer_norm()
        self.native_on = True  # False while exporting (layers/conv.py's standard_operators)
        self.eps_tensor = native.eps_tensor(eps)

    def construct(self, x):
        # native_on and x.dtype are constants when the graph is compiled: one branch stays
        if self.native_on and self.native is not None and x.dtype == ms.float32:
            return self.native(x, self.gamma, self.beta, self.eps_tensor)
        if self.precise:
            return _normalize(x, self.eps, True) * self.gamma + self.beta
        return self.norm(x, self.gamma, self.beta)
