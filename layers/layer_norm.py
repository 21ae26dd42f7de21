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
    """

    def __init__(self, channels, *dims, eps=1e-5, affine="element"):
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

    def construct(self, x):
        # statistics on a flat [B, N] view: the backward of a multi-axis ReduceMean is
        # several times slower on the CPU (measured 0.27 -> 0.22 s per PredRNN LN step)
        shape = x.shape
        flat = ops.reshape(x, (shape[0], -1))
        # corrected two-pass mean: MindSpore's float32 ReduceMean errs by a few ulps of
        # the mean; when the spread is small next to the mean (gate pre-activations), that
        # error divided by the standard deviation reached 7e-6 in the output. The mean of
        # the first-pass residuals is small and exact to far fewer digits, so adding it
        # back brings the output to PyTorch's accuracy (converted checkpoints match to 1e-5).
        rough = ops.mean(flat, axis=1, keep_dims=True)
        residual = flat - rough
        correction = ops.mean(residual, axis=1, keep_dims=True)
        centred = residual - correction
        var = ops.mean(centred * centred, axis=1, keep_dims=True)
        normed = ops.reshape(centred / ops.sqrt(var + self.eps), shape)
        return normed * self.gamma + self.beta
