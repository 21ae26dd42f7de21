"""Tensor LayerNorm over every axis but the batch (C, H, W of NCHW; C, tau, H, W of NCDHW),
written with ReduceMean so that it exports to ONNX (nn.LayerNorm over several axes does
not, see MINDSPORE_NOTES.md)."""
import mindspore as ms
from mindspore import nn, ops
from mindspore.common.initializer import initializer


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

    def construct(self, x):
        # statistics on a flat [B, N] view: the backward of a multi-axis ReduceMean is
        # several times slower on the CPU (measured 0.27 -> 0.22 s per PredRNN LN step)
        shape = x.shape
        flat = ops.reshape(x, (shape[0], -1))
        mean = ops.mean(flat, axis=1, keep_dims=True)
        centred = flat - mean
        if self.precise:
            centred = centred - ops.mean(centred, axis=1, keep_dims=True)
        var = ops.mean(centred * centred, axis=1, keep_dims=True)
        normed = ops.reshape(centred / ops.sqrt(var + self.eps), shape)
        return normed * self.gamma + self.beta
