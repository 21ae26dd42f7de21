"""PredRNN (ST-LSTM stack with a zigzag spatiotemporal memory) and PredRNN-V2.

The memory m flows upward through the layers within a time step and from the top layer at
t-1 to the bottom layer at t. The next frame is a 1x1 convolution (no bias) of the top
hidden state. As thuml/predrnn-pytorch (core/models/predrnn.py, predrnn_v2.py).

PredRNN-V2 adds the decoupling loss: a 1x1 adapter (no bias) shared by all layers maps
delta_c and delta_m; per channel their flattened H*W vectors are L2-normalised and the
absolute cosine similarity averaged over batch and channels, then over layers and steps;
the training loss is MSE + decouple_beta * that. (With layers of different widths each
layer gets its own adapter: our extension, thuml requires equal widths.)
Reverse scheduled sampling is a property of the masks (data_provider/sampling.py).
"""
from mindspore import nn, ops

from layers.conv import Conv2d
from layers.st_lstm_cell import SpatioTemporalLSTMCell
from nets.base import RecurrentPredictor, frame_dims, zeros_like_layers


class PredRNN(RecurrentPredictor):
    def __init__(self, num_hidden, seq_length, input_length, frame_channel, height, width,
                 filter_size=5, stride=1, layer_norm=False, forget_bias=1.0, exact=False):
        super().__init__(seq_length, input_length, frame_channel, height, width)
        self.num_hidden = list(num_hidden)
        self.num_layers = len(self.num_hidden)
        cells = []
        for i, hidden in enumerate(self.num_hidden):
            in_channels = frame_channel if i == 0 else self.num_hidden[i - 1]
            memory = self.num_hidden[i - 1]  # i = 0: the top layer's memory from t-1
            cells.append(SpatioTemporalLSTMCell(in_channels, hidden, height, width, filter_size, stride,
                                                layer_norm, forget_bias, memory_channels=memory, exact=exact))
        self.cell_list = nn.CellList(cells)
        self.conv_last = Conv2d(self.num_hidden[-1], frame_channel, 1, has_bias=False)

    @classmethod
    def from_config(cls, cfg):
        channel, height, width = frame_dims(cfg)
        return cls(cfg.hidden_list(), cfg.seq_length, cfg.input_length, channel, height, width,
                   cfg.filter_size, cfg.stride, cfg.layer_norm, cfg.forget_bias, cfg.get("activations", "ops") == "exact")

    def init_state(self, batch):
        zeros = zeros_like_layers(batch, self.num_hidden, self.height, self.width)
        memory = zeros_like_layers(batch, self.num_hidden[-1:], self.height, self.width)[0]
        return zeros, zeros, memory

    def run_layers(self, x, state):
        h, c, m = state[0], state[1], state[2]
        new_h, new_c, deltas = (), (), ()
        inp = x
        for i in range(self.num_layers):
            h_i, c_i, m, delta_c, delta_m = self.cell_list[i](inp, h[i], c[i], m)
            new_h = new_h + (h_i,)
            new_c = new_c + (c_i,)
            deltas = deltas + ((delta_c, delta_m),)
            inp = h_i
        return self.conv_last(inp), (new_h, new_c, m), deltas

    def step(self, x, state):
        x_gen, new_state, _ = self.run_layers(x, state)
        return x_gen, new_state


class PredRNNv2(PredRNN):
    def __init__(self, num_hidden, seq_length, input_length, frame_channel, height, width,
                 filter_size=5, stride=1, layer_norm=False, forget_bias=1.0, decouple_beta=0.1,
                 exact=False):
        super().__init__(num_hidden, seq_length, input_length, frame_channel, height, width,
                         filter_size, stride, layer_norm, forget_bias, exact)
        self.decouple_beta = float(decouple_beta)
        self.shared_adapter = len(set(self.num_hidden)) == 1
        if self.shared_adapter:
            self.adapter = Conv2d(self.num_hidden[0], self.num_hidden[0], 1, has_bias=False)
        else:
            self.adapter_list = nn.CellList([Conv2d(c, c, 1, has_bias=False) for c in self.num_hidden])

    @classmethod
    def from_config(cls, cfg):
        channel, height, width = frame_dims(cfg)
        return cls(cfg.hidden_list(), cfg.seq_length, cfg.input_length, channel, height, width,
                   cfg.filter_size, cfg.stride, cfg.layer_norm, cfg.forget_bias, cfg.decouple_beta,
                   cfg.get("activations", "ops") == "exact")

    def init_state(self, batch):
        return super().init_state(batch) + (ops.zeros((), self.conv_last.weight.dtype),)

    def normalized(self, delta, i):
        adapted = self.adapter(delta) if self.shared_adapter else self.adapter_list[i](delta)
        flat = ops.reshape(adapted, (adapted.shape[0], adapted.shape[1], -1))
        norm = ops.sqrt(ops.sum(flat * flat, dim=2, keepdim=True))
        return flat / ops.maximum(norm, 1e-12)  # torch.nn.functional.normalize

    def step(self, x, state):
        x_gen, new_state, deltas = self.run_layers(x, state)
        total = state[3]
        if self.training:
            for i in range(self.num_layers):
                a = self.normalized(deltas[i][0], i)
                b = self.normalized(deltas[i][1], i)
                # torch.cosine_similarity of the normalised vectors, eps 1e-8
                na = ops.sqrt(ops.sum(a * a, dim=2))
                nb = ops.sqrt(ops.sum(b * b, dim=2))
                cosine = ops.sum(a * b, dim=2) / ops.maximum(na * nb, 1e-8)
                total = total + ops.mean(ops.abs(cosine))
        return x_gen, new_state + (total,)

    def finish(self, predictions, state):
        if self.training:
            count = self.num_layers * (self.seq_length - 1)
            return predictions, self.decouple_beta * state[3] / count
        return predictions
