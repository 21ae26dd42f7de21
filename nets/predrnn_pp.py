"""PredRNN++ (Wang et al. ICML 2018): a stack of causal LSTMs with a gradient highway unit
on top of the bottom layer, as the model zoo's predrnn++ (seed 000) and the first author's
TensorFlow code: layer 0 reads the frame, the GHU reads layer 0's hidden state and its own
previous output z, layer 1 reads z, layer i > 1 reads layer i-1; the memory m zigzags as
in PredRNN; a 1x1 convolution with bias of the top hidden state makes the next frame.
With a single layer there is nothing above the GHU, so it is left out.
"""
from mindspore import nn

from layers.conv import Conv2d
from layers.causal_lstm_cell import CausalLSTMCell
from layers.ghu import GradientHighwayUnit
from nets.base import RecurrentPredictor, frame_dims, zeros_like_layers


class PredRNNpp(RecurrentPredictor):
    def __init__(self, num_hidden, seq_length, input_length, frame_channel, height, width,
                 filter_size=5, stride=1, layer_norm=True, forget_bias=1.0, output_gate="tanh",
                 c_input="c", exact=False):
        super().__init__(seq_length, input_length, frame_channel, height, width)
        self.num_hidden = list(num_hidden)
        self.num_layers = len(self.num_hidden)
        self.use_ghu = self.num_layers > 1
        cells = []
        for i, hidden in enumerate(self.num_hidden):
            in_channels = frame_channel if i == 0 else self.num_hidden[i - 1]
            cells.append(CausalLSTMCell(in_channels, hidden, height, width, filter_size, stride, layer_norm,
                                        forget_bias, memory_channels=self.num_hidden[i - 1],
                                        output_gate=output_gate, c_input=c_input,
                                        exact=exact))
        self.lstm = nn.CellList(cells)
        if self.use_ghu:
            self.gradient_highway = GradientHighwayUnit(self.num_hidden[0], self.num_hidden[0], height, width,
                                                        filter_size, stride, layer_norm,
                                                        exact=exact)
        self.conv_last = Conv2d(self.num_hidden[-1], frame_channel, 1, has_bias=True)

    @classmethod
    def from_config(cls, cfg):
        channel, height, width = frame_dims(cfg)
        return cls(cfg.hidden_list(), cfg.seq_length, cfg.input_length, channel, height, width,
                   cfg.filter_size, cfg.stride, cfg.layer_norm, cfg.forget_bias, cfg.causal_output_gate,
                   cfg.get("causal_c_input", "c"), cfg.get("activations", "ops") == "exact")

    def init_state(self, batch):
        zeros = zeros_like_layers(batch, self.num_hidden, self.height, self.width)
        memory = zeros_like_layers(batch, self.num_hidden[-1:], self.height, self.width)[0]
        highway = zeros_like_layers(batch, self.num_hidden[:1], self.height, self.width)[0]
        return zeros, zeros, memory, highway

    def step(self, x, state):
        h, c, m, z = state
        new_h, new_c = (), ()
        inp = x
        for i in range(self.num_layers):
            h_i, c_i, m = self.lstm[i](inp, h[i], c[i], m)
            new_h = new_h + (h_i,)
            new_c = new_c + (c_i,)
            inp = h_i
            if i == 0 and self.use_ghu:
                z = self.gradient_highway(h_i, z)
                inp = z
        return self.conv_last(inp), (new_h, new_c, m, z)
