"""MIM (Memory In Memory, Wang et al. CVPR 2019) as OpenSTL's MIM_Model: an ST-LSTM bottom
layer, MIM blocks above it, and between consecutive layers a MIMN that models the
non-stationary part from the difference of the lower layer's hidden states over time.

Per step t (layer i >= 1; the spatiotemporal memory m zigzags as in PredRNN):
    h_0, c_0, m = STLSTM(x, h_0, c_0, m)
    d_1 = MIMN_1(h_0 - h_0 at t-1, d_1, e_1)          (d, e: the MIMN's hidden and cell states)
    d_i = MIMN_i(d_{i-1}, d_i, e_i)                    (i >= 2)
    h_i, c_i, m, n_i = MIMBlock_i(h_{i-1}, d_i, h_i, c_i, m, n_i)
    x_gen = conv_last(h_top)
At t = 0 OpenSTL runs the MIMNs but discards their output: the MIM blocks read a zero
difference and the MIMNs start from zero states at t = 1; here a 0/1 `started` flag in the
state does the same inside the one compiled loop.

Deviation: OpenSTL keeps each MIM block's MIMS cell state (`convlstm_c`) on the module across
calls, detached, so it leaks from one batch into the next (and fails when the batch size
changes); we start it at zero for every sequence, as the authors' TensorFlow code does. A
freshly built OpenSTL model's first call is identical.
"""
from mindspore import nn, ops

from layers.conv import Conv2d
from layers.mim_cell import MIMBlock, MIMN
from layers.st_lstm_cell import SpatioTemporalLSTMCell
from nets.base import RecurrentPredictor, frame_dims, zeros_like_layers


class MIM(RecurrentPredictor):
    def __init__(self, num_hidden, seq_length, input_length, frame_channel, height, width,
                 filter_size=5, stride=1, layer_norm=False, exact=False):
        super().__init__(seq_length, input_length, frame_channel, height, width)
        self.num_hidden = list(num_hidden)
        self.num_layers = len(self.num_hidden)
        if self.num_layers < 2 or len(set(self.num_hidden)) != 1:
            raise ValueError(f"MIM needs at least two layers of one width (OpenSTL's cells assume it), "
                             f"got num_hidden={num_hidden}")
        c = self.num_hidden[0]
        args = (height, width, filter_size, stride, layer_norm, 1.0, exact)
        layers = [SpatioTemporalLSTMCell(frame_channel, c, height, width, filter_size, stride, layer_norm, 1.0,
                                         exact=exact)]
        layers += [MIMBlock(c, c, *args) for _ in range(1, self.num_layers)]
        self.stlstm_layer = nn.CellList(layers)
        self.stlstm_layer_diff = nn.CellList([MIMN(c, c, *args) for _ in range(1, self.num_layers)])
        self.conv_last = Conv2d(c, frame_channel, 1, has_bias=False)

    @classmethod
    def from_config(cls, cfg):
        channel, height, width = frame_dims(cfg)
        return cls(cfg.hidden_list(), cfg.seq_length, cfg.input_length, channel, height, width,
                   cfg.filter_size, cfg.stride, cfg.layer_norm, cfg.get("activations", "ops") == "exact")

    def init_state(self, batch):
        zeros = zeros_like_layers(batch, self.num_hidden, self.height, self.width)
        upper = zeros[1:]
        started = ops.zeros((batch, 1, 1, 1), zeros[0].dtype)
        # h, c, m, MIMN hidden d, MIMN cell e, MIMS cell n (layers 1..), started
        return zeros, zeros, zeros[0], upper, upper, upper, started

    def step(self, x, state):
        h, c, m, d, e, n, started = state
        pre_h = h[0]
        h0, c0, m, _, _ = self.stlstm_layer[0](x, h[0], c[0], m)
        new_h, new_c, new_d, new_e, new_n = (h0,), (c0,), (), (), ()
        below = h0
        for i in range(1, self.num_layers):
            source = h0 - pre_h if i == 1 else new_d[i - 2]
            d_i, e_i = self.stlstm_layer_diff[i - 1](source, d[i - 1], e[i - 1])
            d_i, e_i = d_i * started, e_i * started  # t = 0: discarded, as OpenSTL
            h_i, c_i, m, n_i = self.stlstm_layer[i](below, d_i, h[i], c[i], m, n[i - 1])
            new_h, new_c = new_h + (h_i,), new_c + (c_i,)
            new_d, new_e, new_n = new_d + (d_i,), new_e + (e_i,), new_n + (n_i,)
            below = h_i
        ones = ops.ones_like(started)
        return self.conv_last(below), (new_h, new_c, m, new_d, new_e, new_n, ones)
