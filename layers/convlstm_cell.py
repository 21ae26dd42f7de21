"""ConvLSTM cell (Shi et al. 2015), thuml/OpenSTL form without peepholes.

    i, f, g, o = split(conv_x(x) + conv_h(h), 4)
    c' = sigmoid(f + forget_bias) * c + sigmoid(i) * tanh(g)
    h' = sigmoid(o) * tanh(c')
"""
from mindspore import nn, ops

from layers.conv import gate_conv


class ConvLSTMCell(nn.Cell):
    """in_channels=0 builds a cell without input (the forecaster of Shi et al. reads none)."""

    def __init__(self, in_channels, num_hidden, height, width, filter_size, stride=1,
                 layer_norm=False, forget_bias=1.0):
        super().__init__()
        self.num_hidden = num_hidden
        self.forget_bias = forget_bias
        self.has_input = in_channels > 0
        if self.has_input:
            self.conv_x = gate_conv(in_channels, 4 * num_hidden, filter_size, stride, layer_norm, height, width)
        self.conv_h = gate_conv(num_hidden, 4 * num_hidden, filter_size, stride, layer_norm, height, width)

    def construct(self, x, h, c):
        gates = self.conv_h(h)
        if self.has_input:
            gates = gates + self.conv_x(x)
        i, f, g, o = ops.split(gates, self.num_hidden, axis=1)
        c_new = ops.sigmoid(f + self.forget_bias) * c + ops.sigmoid(i) * ops.tanh(g)
        h_new = ops.sigmoid(o) * ops.tanh(c_new)
        return h_new, c_new
