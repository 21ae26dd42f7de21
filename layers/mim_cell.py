"""Memory In Memory (Wang et al., CVPR 2019) cells, as OpenSTL's mim_modules: convolutions
without bias, optional LayerNorm over (C, H, W), forget bias 1.0, every width equal.

MIMN (the non-stationary module; also MIMBlock's inner MIMS) with input x, state (h, c):
    i_h, g_h, f_h, o_h = split(conv_h_concat(h), 4);  i_x, g_x, f_x, o_x = split(conv_x_concat(x), 4)
    i_c, f_c = split([c, c] * ct_weight, 2)            (ct_weight [2C, H, W], initialised 0)
    c' = sigmoid(f_h + f_c + f_x + 1) * c + sigmoid(i_h + i_c + i_x) * tanh(g_h + g_x)
    h' = sigmoid(o_h + o_x + c' * oc_weight) * tanh(c')  (oc_weight [C, H, W], initialised 0)

MIMBlock with input x (the layer below's h), the difference signal d (the MIMN's h), its
state (h, c), the spatiotemporal memory m and its MIMS state n:
    i_t, g_t, o_t = split(conv_t_cc(h), 3);  i_s, g_s, f_s, o_s = split(conv_s_cc(m), 4)
    i_x, g_x, f_x, o_x = split(conv_x_cc(x), 4)
    m' = sigmoid(f_x + f_s + 1) * m + sigmoid(i_x + i_s) * tanh(g_x + g_s)
    (c_mims, n') = MIMS(x=d, h=c, c=n)              (the stationary module, on the cell state)
    c' = c_mims + sigmoid(i_x + i_t) * tanh(g_x + g_t)
    h' = sigmoid(o_x + o_t + o_s) * tanh(conv_last([c', m']))
Gate activations from layers/activations.py (exact=True: float64, for reproducing PyTorch).
"""
import numpy as np
import mindspore as ms
from mindspore import nn, ops

from layers.activations import sigmoid, tanh
from layers.conv import Conv2d, gate_conv


class MIMN(nn.Cell):
    def __init__(self, in_channels, num_hidden, height, width, filter_size, stride=1, layer_norm=False,
                 forget_bias=1.0, exact=False):
        super().__init__()
        self.num_hidden = num_hidden
        self.forget_bias = forget_bias
        self.exact = bool(exact)
        args = (filter_size, stride, layer_norm, height, width)
        self.conv_h_concat = gate_conv(in_channels, 4 * num_hidden, *args, precise=self.exact)
        self.conv_x_concat = gate_conv(in_channels, 4 * num_hidden, *args, precise=self.exact)
        self.ct_weight = ms.Parameter(ms.Tensor(np.zeros((2 * num_hidden, height, width), np.float32)),
                                      name="ct_weight")
        self.oc_weight = ms.Parameter(ms.Tensor(np.zeros((num_hidden, height, width), np.float32)),
                                      name="oc_weight")

    def construct(self, x, h, c):
        i_h, g_h, f_h, o_h = ops.split(self.conv_h_concat(h), self.num_hidden, axis=1)
        i_c, f_c = ops.split(ops.concat((c, c), axis=1) * self.ct_weight, self.num_hidden, axis=1)
        i_x, g_x, f_x, o_x = ops.split(self.conv_x_concat(x), self.num_hidden, axis=1)
        e = self.exact
        c_new = sigmoid(f_h + f_c + f_x + self.forget_bias, e) * c + sigmoid(i_h + i_c + i_x, e) * tanh(g_h + g_x, e)
        h_new = sigmoid(o_h + o_x + c_new * self.oc_weight, e) * tanh(c_new, e)
        return h_new, c_new


class MIMBlock(nn.Cell):
    def __init__(self, in_channels, num_hidden, height, width, filter_size, stride=1, layer_norm=False,
                 forget_bias=1.0, exact=False):
        super().__init__()
        self.num_hidden = num_hidden
        self.forget_bias = forget_bias
        self.exact = bool(exact)
        args = (filter_size, stride, layer_norm, height, width)
        self.conv_t_cc = gate_conv(in_channels, 3 * num_hidden, *args, precise=self.exact)
        self.conv_s_cc = gate_conv(num_hidden, 4 * num_hidden, *args, precise=self.exact)
        self.conv_x_cc = gate_conv(num_hidden, 4 * num_hidden, *args, precise=self.exact)
        # the MIMS (stationary module): a MIMN on the cell state; OpenSTL names its tensors
        # on the block itself (conv_h_concat, conv_x_concat, ct_weight, oc_weight)
        self.mims = MIMN(num_hidden, num_hidden, height, width, filter_size, stride, layer_norm, forget_bias, exact)
        self.conv_last = Conv2d(2 * num_hidden, num_hidden, 1, has_bias=False)

    def construct(self, x, diff_h, h, c, m, mims_c):
        i_t, g_t, o_t = ops.split(self.conv_t_cc(h), self.num_hidden, axis=1)
        i_s, g_s, f_s, o_s = ops.split(self.conv_s_cc(m), self.num_hidden, axis=1)
        i_x, g_x, f_x, o_x = ops.split(self.conv_x_cc(x), self.num_hidden, axis=1)
        e = self.exact
        m_new = sigmoid(f_x + f_s + self.forget_bias, e) * m + sigmoid(i_x + i_s, e) * tanh(g_x + g_s, e)
        c_mims, mims_c_new = self.mims(diff_h, c, mims_c)
        c_new = c_mims + sigmoid(i_x + i_t, e) * tanh(g_x + g_t, e)
        h_new = sigmoid(o_x + o_t + o_s, e) * tanh(self.conv_last(ops.concat((c_new, m_new), axis=1)), e)
        return h_new, c_new, m_new, mims_c_new
