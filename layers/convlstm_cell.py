"""ConvLSTM cell (Shi et al. 2015), thuml/OpenSTL form without peepholes.

    i, f, g, o = split(conv_x(x) + conv_h(h), 4)
    c' = sigmoid(f + forget_bias) * c + sigmoid(i) * tanh(g)
    h' = sigmoid(o) * tanh(c')

hidden='g' gives h' = sigmoid(o) * tanh(g) instead: the ConvLSTMCell of OpenSTL v0.3.0
(the code its published Moving MNIST weights were trained with); OpenSTL later changed it
to tanh(c'). Only for running such checkpoints.
exact=True: float64 sigmoid/tanh and precise LayerNorms (layers/activations.py).
"""
from mindspore import nn, ops

from layers.activations import sigmoid, tanh
from layers.conv import gate_conv


class ConvLSTMCell(nn.Cell):
    """in_channels=0 builds a cell without input (the forecaster of Shi et al. reads none)."""

    def __init__(self, in_channels, num_hidden, height, width, filter_size, stride=1,
                 layer_norm=False, forget_bias=1.0, hidden="tanh_c", exact=False):
        super().__init__()
        if hidden not in ("tanh_c", "g"):
            raise ValueError(f"hidden must be 'tanh_c' or 'g', got {hidden!r}")
        self.hidden_from_g = hidden == "g"
        self.num_hidden = num_hidden
        self.forget_bias = forget_bias
        self.has_input = in_channels > 0
        self.exact = bool(exact)
        if self.has_input:
            self.conv_x = gate_conv(in_channels, 4 * num_hidden, filter_size, stride, layer_norm, height, width,
                                    precise=self.exact)
        self.conv_h = gate_conv(num_hidden, 4 * num_hidden, filter_size, stride, layer_norm, height, width,
                                precise=self.exact)

    def construct(self, x, h, c):
        gates = self.conv_h(h)
        if self.has_input:
            gates = gates + self.conv_x(x)
        i, f, g, o = ops.split(gates, self.num_hidden, axis=1)
        exact = self.exact
        g = tanh(g, exact)
        c_new = sigmoid(f + self.forget_bias, exact) * c + sigmoid(i, exact) * g
        h_new = sigmoid(o, exact) * (g if self.hidden_from_g else tanh(c_new, exact))
        return h_new, c_new
