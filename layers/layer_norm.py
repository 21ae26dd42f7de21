"""Tensor LayerNorm over (C, H, W) of an NCHW tensor, written with ReduceMean so that it
exports to ONNX (nn.LayerNorm over several axes does not, see MINDSPORE_NOTES.md)."""
import mindspore as ms
from mindspore import nn, ops
from mindspore.common.initializer import initializer


class TensorLayerNorm(nn.Cell):
    """Per-sample statistics over (C, H, W).

    affine='element': scale and shift of shape (C, H, W), as torch.nn.LayerNorm([C, H, W])
    in thuml/OpenSTL. affine='channel': one scale and shift per channel (model-zoo style).
    """

    def __init__(self, channels, height, width, eps=1e-5, affine="element"):
        super().__init__()
        if affine == "element":
            shape = (channels, height, width)
        elif affine == "channel":
            shape = (channels, 1, 1)
        else:
            raise ValueError(f"affine must be 'element' or 'channel', got {affine!r}")
        self.gamma = ms.Parameter(initializer("ones", shape, ms.float32), name="gamma")
        self.beta = ms.Parameter(initializer("zeros", shape, ms.float32), name="beta")
        self.eps = eps

    def construct(self, x):
        # statistics on a flat [B, C*H*W] view: the backward of a multi-axis ReduceMean is
        # several times slower on the CPU (measured 0.27 -> 0.22 s per PredRNN LN step)
        shape = x.shape
        flat = ops.reshape(x, (shape[0], -1))
        mean = ops.mean(flat, axis=1, keep_dims=True)
        centred = flat - mean
        var = ops.mean(centred * centred, axis=1, keep_dims=True)
        normed = ops.reshape(centred / ops.sqrt(var + self.eps), shape)
        return normed * self.gamma + self.beta
