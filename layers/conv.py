"""Convolution blocks shared by the recurrent cells."""
from mindspore import nn

from layers.layer_norm import TensorLayerNorm


def gate_conv(in_channels, out_channels, kernel_size, stride=1, layer_norm=False,
              height=None, width=None, has_bias=False):
    """A 'same'-padded convolution, optionally followed by a tensor LayerNorm over (C, H, W).

    Explicit symmetric padding instead of pad_mode='same' so the exported graph carries
    fixed pads. Wrapped in a SequentialCell either way so parameter names are stable
    ('conv_x.0.weight', 'conv_x.1.gamma'), matching thuml/OpenSTL's nn.Sequential layout.
    """
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, pad_mode="pad",
                     padding=kernel_size // 2, has_bias=has_bias)
    if layer_norm:
        return nn.SequentialCell([conv, TensorLayerNorm(out_channels, height, width)])
    return nn.SequentialCell([conv])
