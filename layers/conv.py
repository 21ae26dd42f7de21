"""Convolution blocks shared by the recurrent cells."""
from mindspore import nn
from mindspore.common.initializer import Uniform

from layers.layer_norm import TensorLayerNorm


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
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, pad_mode="pad",
                     padding=kernel_size // 2, has_bias=has_bias, **kwargs)
    if layer_norm:
        return nn.SequentialCell([conv, TensorLayerNorm(out_channels, height, width, affine=ln_affine, precise=precise)])
    return nn.SequentialCell([conv])
