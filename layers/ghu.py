"""Gradient Highway Unit (PredRNN++), as the TensorFlow reference code:

    p, s = split(conv_x(x) + conv_z(z), 2);  z' = sigmoid(s) * tanh(p) + (1 - sigmoid(s)) * z

Convolutions with bias, weights ~ U(-0.001, 0.001), optional per-channel tensor LayerNorm.
exact as in layers/causal_lstm_cell.py (False for the zoo's checkpoints, True for PyTorch's).
"""
from mindspore import nn, ops

from layers import activations
from layers.causal_lstm_cell import REFERENCE_INIT
from layers.conv import gate_conv


class GradientHighwayUnit(nn.Cell):
    def __init__(self, in_channels, num_hidden, height, width, filter_size, stride=1,
                 layer_norm=True, init_scale=REFERENCE_INIT, exact=False):
        super().__init__()
        self.exact = bool(exact)
        self.num_hidden = num_hidden

        def conv(cin):
            return gate_conv(cin, 2 * num_hidden, filter_size, stride, layer_norm, height, width,
                             has_bias=True, ln_affine="channel", init_scale=init_scale,
                             precise=self.exact)

        self.conv_z = conv(num_hidden)
        self.conv_x = conv(in_channels)

    def construct(self, x, z):
        p, s = ops.split(self.conv_x(x) + self.conv_z(z), self.num_hidden, axis=1)
        gate = activations.sigmoid_exact(s) if self.exact else ops.sigmoid(s)
        p = activations.tanh_exact(p) if self.exact else ops.tanh(p)
        return gate * p + (1.0 - gate) * z
