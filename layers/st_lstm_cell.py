"""Spatiotemporal LSTM cell (PredRNN, Wang et al. 2017 / TPAMI 2022), as thuml's
SpatioTemporalLSTMCell: convolutions without bias, optional LayerNorm over (C, H, W).

    i_x, f_x, g_x, i_x', f_x', g_x', o_x = split(conv_x(x), 7)
    i_h, f_h, g_h, o_h = split(conv_h(h), 4);   i_m, f_m, g_m = split(conv_m(m), 3)
    delta_c = sigmoid(i_x + i_h) * tanh(g_x + g_h)
    c' = sigmoid(f_x + f_h + forget_bias) * c + delta_c
    delta_m = sigmoid(i_x' + i_m) * tanh(g_x' + g_m)
    m' = sigmoid(f_x' + f_m + forget_bias) * m + delta_m
    o = sigmoid(o_x + o_h + conv_o([c', m']));   h' = o * tanh(conv_last([c', m']))

The cell returns delta_c and delta_m for PredRNN-V2's decoupling loss.
thuml assumes every layer has the same width; when the memory arriving from the layer
below has another width (memory_channels != num_hidden), a 1x1 convolution without bias
(`conv_m_in`) first maps it to num_hidden: our extension, absent with equal widths.
exact=True: float64 sigmoid/tanh and precise LayerNorms (layers/activations.py).
"""
from mindspore import nn, ops

from layers.activations import sigmoid, tanh
from layers.conv import Conv2d, gate_conv


class SpatioTemporalLSTMCell(nn.Cell):
    def __init__(self, in_channels, num_hidden, height, width, filter_size, stride=1,
                 layer_norm=False, forget_bias=1.0, memory_channels=None, exact=False):
        super().__init__()
        self.num_hidden = num_hidden
        self.forget_bias = forget_bias
        self.exact = bool(exact)
        memory_channels = memory_channels or num_hidden
        self.project_memory = memory_channels != num_hidden
        if self.project_memory:
            self.conv_m_in = Conv2d(memory_channels, num_hidden, 1, has_bias=False)
        args = (filter_size, stride, layer_norm, height, width)
        self.conv_x = gate_conv(in_channels, 7 * num_hidden, *args, precise=self.exact)
        self.conv_h = gate_conv(num_hidden, 4 * num_hidden, *args, precise=self.exact)
        self.conv_m = gate_conv(num_hidden, 3 * num_hidden, *args, precise=self.exact)
        self.conv_o = gate_conv(2 * num_hidden, num_hidden, *args, precise=self.exact)
        self.conv_last = Conv2d(2 * num_hidden, num_hidden, 1, has_bias=False)

    def construct(self, x, h, c, m):
        if self.project_memory:
            m = self.conv_m_in(m)
        i_x, f_x, g_x, i_xp, f_xp, g_xp, o_x = ops.split(self.conv_x(x), self.num_hidden, axis=1)
        i_h, f_h, g_h, o_h = ops.split(self.conv_h(h), self.num_hidden, axis=1)
        i_m, f_m, g_m = ops.split(self.conv_m(m), self.num_hidden, axis=1)
        exact = self.exact
        delta_c = sigmoid(i_x + i_h, exact) * tanh(g_x + g_h, exact)
        c_new = sigmoid(f_x + f_h + self.forget_bias, exact) * c + delta_c
        delta_m = sigmoid(i_xp + i_m, exact) * tanh(g_xp + g_m, exact)
        m_new = sigmoid(f_xp + f_m + self.forget_bias, exact) * m + delta_m
        mem = ops.concat((c_new, m_new), axis=1)
        o = sigmoid(o_x + o_h + self.conv_o(mem), exact)
        h_new = o * tanh(self.conv_last(mem), exact)
        return h_new, c_new, m_new, delta_c, delta_m
