"""ConvLSTM predictors.

ConvLSTM: the stacked predictor of the PredRNN/OpenSTL benchmarks. Layer 0 reads the frame,
layer i reads layer i-1's hidden state, a 1x1 convolution (no bias) of the top hidden state
makes the next frame, which is fed back under scheduled sampling.

ConvLSTMEncoderForecaster: the arrangement of Shi et al. 2015 used by the MindSpore ConvLSTM
(seed 001). An encoder stack reads the input frames; a forecaster stack, started from the
encoder's final states and reading no input, unrolls over the future; a 1x1 convolution over
the concatenated hidden states of all forecaster layers makes each predicted frame.
"""
from mindspore import nn, ops

from layers.conv import Conv2d
from layers.convlstm_cell import ConvLSTMCell
from nets.base import RecurrentPredictor, frame_dims, zeros_like_layers


class ConvLSTM(RecurrentPredictor):
    def __init__(self, num_hidden, seq_length, input_length, frame_channel, height, width,
                 filter_size=5, stride=1, layer_norm=False, forget_bias=1.0, hidden="tanh_c",
                 exact=False):
        super().__init__(seq_length, input_length, frame_channel, height, width)
        self.num_hidden = list(num_hidden)
        self.num_layers = len(self.num_hidden)
        cells = []
        for i, width_i in enumerate(self.num_hidden):
            in_channels = frame_channel if i == 0 else self.num_hidden[i - 1]
            cells.append(ConvLSTMCell(in_channels, width_i, height, width, filter_size, stride,
                                      layer_norm, forget_bias, hidden, exact))
        self.cell_list = nn.CellList(cells)
        self.conv_last = Conv2d(self.num_hidden[-1], frame_channel, 1, has_bias=False)

    @classmethod
    def from_config(cls, cfg):
        channel, height, width = frame_dims(cfg)
        return cls(cfg.hidden_list(), cfg.seq_length, cfg.input_length, channel, height, width,
                   cfg.filter_size, cfg.stride, cfg.layer_norm, cfg.forget_bias,
                   cfg.get("convlstm_hidden", "tanh_c"), cfg.get("activations", "ops") == "exact")

    def init_state(self, batch):
        zeros = zeros_like_layers(batch, self.num_hidden, self.height, self.width)
        return zeros, zeros

    def step(self, x, state):
        h, c = state
        new_h = ()
        new_c = ()
        inp = x
        for i in range(self.num_layers):
            h_i, c_i = self.cell_list[i](inp, h[i], c[i])
            new_h = new_h + (h_i,)
            new_c = new_c + (c_i,)
            inp = h_i
        return self.conv_last(inp), (new_h, new_c)


class ConvLSTMEncoderForecaster(nn.Cell):
    def __init__(self, num_hidden, seq_length, input_length, frame_channel, height, width,
                 filter_size=5, stride=1, layer_norm=False, forget_bias=1.0, exact=False):
        super().__init__()
        self.num_hidden = list(num_hidden)
        self.num_layers = len(self.num_hidden)
        self.seq_length = seq_length
        self.input_length = input_length
        self.height = height
        self.width = width
        encoder, forecaster = [], []
        for i, hidden in enumerate(self.num_hidden):
            in_channels = frame_channel if i == 0 else self.num_hidden[i - 1]
            encoder.append(ConvLSTMCell(in_channels, hidden, height, width, filter_size, stride,
                                        layer_norm, forget_bias, exact=exact))
            forecaster.append(ConvLSTMCell(0 if i == 0 else self.num_hidden[i - 1], hidden, height, width,
                                           filter_size, stride, layer_norm, forget_bias, exact=exact))
        self.encoder = nn.CellList(encoder)
        self.forecaster = nn.CellList(forecaster)
        self.conv_out = Conv2d(sum(self.num_hidden), frame_channel, 1, has_bias=True)

    @classmethod
    def from_config(cls, cfg):
        channel, height, width = frame_dims(cfg)
        return cls(cfg.hidden_list(), cfg.seq_length, cfg.input_length, channel, height, width,
                   cfg.filter_size, cfg.stride, cfg.layer_norm, cfg.forget_bias, cfg.get("activations", "ops") == "exact")

    def construct(self, frames, mask):
        batch = frames.shape[0]
        frames = ops.transpose(frames, (0, 1, 4, 2, 3))
        h = zeros_like_layers(batch, self.num_hidden, self.height, self.width)
        c = h
        for t in range(self.input_length):
            inp = frames[:, t]
            new_h, new_c = (), ()
            for i in range(self.num_layers):
                h_i, c_i = self.encoder[i](inp, h[i], c[i])
                new_h = new_h + (h_i,)
                new_c = new_c + (c_i,)
                inp = h_i
            h, c = new_h, new_c
        outputs = ()
        for t in range(self.seq_length - self.input_length):
            inp = h[0]  # ignored by forecaster layer 0, which has no input convolution
            new_h, new_c = (), ()
            for i in range(self.num_layers):
                h_i, c_i = self.forecaster[i](inp, h[i], c[i])
                new_h = new_h + (h_i,)
                new_c = new_c + (c_i,)
                inp = h_i
            h, c = new_h, new_c
            outputs = outputs + (self.conv_out(ops.concat(h, axis=1)),)
        out = ops.stack(outputs, axis=1)
        return ops.transpose(out, (0, 1, 3, 4, 2))

