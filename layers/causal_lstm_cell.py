"""Causal LSTM cell (PredRNN++, Wang et al. ICML 2018), as the first author's TensorFlow
reference code: convolutions with bias, weights ~ U(-0.001, 0.001), optional tensor
LayerNorm (per-sample statistics over (C, H, W), one scale and shift per channel) after
every gate convolution, gate orders of the reference:

    i_h, g_h, f_h, o_h = split(conv_h(h), 4);  i_c, g_c, f_c = split(conv_c(c), 3)
    i_m, f_m, m_m = split(conv_m(m), 3);       i_x, g_x, f_x, o_x, i_x', g_x', f_x' = split(conv_x(x), 7)
    c' = sigmoid(f_x + f_h + f_c + forget_bias) * c + sigmoid(i_x + i_h + i_c) * tanh(g_x + g_h + g_c)
    i_c', g_c', f_c', o_c = split(conv_c2m(c'), 4)
    m' = sigmoid(f_c' + f_x' + f_m + forget_bias) * tanh(m_m) + sigmoid(i_c' + i_x' + i_m) * tanh(g_c' + g_x')
    o = tanh(o_x + o_h + o_c + conv_om(m'))      (sigmoid with output_gate='sigmoid', as some ports)
    h' = o * tanh(conv_last([c', m']))           (conv_last 1x1)

The memory m arriving from the layer below may have another width (memory_channels);
conv_m maps it to 3C, so layers of different widths stack without projection.

c_input='m' makes conv_c read the memory m instead of c: the CausalLSTMCell of OpenSTL
v0.3.0 (the code its published Moving MNIST weights were trained with); OpenSTL later
changed it to c. Only for running such checkpoints.

exact=False keeps MindSpore's float32 sigmoid and tanh kernels: the model zoo's checkpoints
were trained and are checked against them (tests/test_zoo_checkpoint.py), although the CPU
tanh errs by up to 1e-4. exact=True computes both in float64, with precise LayerNorms, so
that converted PyTorch checkpoints reproduce PyTorch within 1e-5 (layers/activations.py).
"""
from mindspore import nn, ops

from layers import activations
from layers.conv import gate_conv

REFERENCE_INIT = 0.001


class CausalLSTMCell(nn.Cell):
    def __init__(self, in_channels, num_hidden, height, width, filter_size, stride=1,
                 layer_norm=True, forget_bias=1.0, memory_channels=None, output_gate="tanh",
                 init_scale=REFERENCE_INIT, c_input="c", exact=False):
        super().__init__()
        self.exact = bool(exact)
        if c_input not in ("c", "m"):
            raise ValueError(f"c_input must be 'c' or 'm', got {c_input!r}")
        self.c_from_m = c_input == "m"
        if output_gate not in ("tanh", "sigmoid"):
            raise ValueError(f"output_gate must be 'tanh' or 'sigmoid', got {output_gate!r}")
        self.num_hidden = num_hidden
        self.forget_bias = forget_bias
        self.sigmoid_output = output_gate == "sigmoid"
        memory_channels = memory_channels or num_hidden

        def conv(cin, cout, k=filter_size):
            return gate_conv(cin, cout, k, stride, layer_norm, height, width, has_bias=True,
                             ln_affine="channel", init_scale=init_scale, precise=self.exact)

        self.conv_x = conv(in_channels, 7 * num_hidden)
        self.conv_h = conv(num_hidden, 4 * num_hidden)
        self.conv_c = conv(memory_channels if self.c_from_m else num_hidden, 3 * num_hidden)
        self.conv_m = conv(memory_channels, 3 * num_hidden)
        self.conv_c2m = conv(num_hidden, 4 * num_hidden)
        self.conv_om = conv(num_hidden, num_hidden)
        self.conv_last = gate_conv(2 * num_hidden, num_hidden, 1, has_bias=True, init_scale=init_scale)

    def sigmoid(self, x):
        return activations.sigmoid_exact(x) if self.exact else ops.sigmoid(x)

    def tanh(self, x):
        return activations.tanh_exact(x) if self.exact else ops.tanh(x)

    def construct(self, x, h, c, m):
        i_h, g_h, f_h, o_h = ops.split(self.conv_h(h), self.num_hidden, axis=1)
        i_c, g_c, f_c = ops.split(self.conv_c(m if self.c_from_m else c), self.num_hidden, axis=1)
        i_m, f_m, m_m = ops.split(self.conv_m(m), self.num_hidden, axis=1)
        i_x, g_x, f_x, o_x, i_xp, g_xp, f_xp = ops.split(self.conv_x(x), self.num_hidden, axis=1)
        c_new = (self.sigmoid(f_x + f_h + f_c + self.forget_bias) * c
                 + self.sigmoid(i_x + i_h + i_c) * self.tanh(g_x + g_h + g_c))
        i_c2, g_c2, f_c2, o_c = ops.split(self.conv_c2m(c_new), self.num_hidden, axis=1)
        m_new = (self.sigmoid(f_c2 + f_xp + f_m + self.forget_bias) * self.tanh(m_m)
                 + self.sigmoid(i_c2 + i_xp + i_m) * self.tanh(g_c2 + g_xp))
        gate = o_x + o_h + o_c + self.conv_om(m_new)
        o = self.sigmoid(gate) if self.sigmoid_output else self.tanh(gate)
        h_new = o * self.tanh(self.conv_last(ops.concat((c_new, m_new), axis=1)))
        return h_new, c_new, m_new
