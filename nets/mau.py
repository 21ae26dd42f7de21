"""MAU (Motion-Aware Unit, Chang et al. NeurIPS 2021) as OpenSTL's MAU_Model.

Each (patch-reshaped) frame is encoded by a 1x1 conv to num_hidden[0] channels + LeakyReLU(0.2)
and log2(sr_size) stride-2 3x3 convs + LeakyReLU(0.2); a stack of MAU cells (layers/mau_cell.py)
runs at that reduced size, each with its temporal state T and the last tau T and S states it
attends over (zeros at first); the top cell's S is decoded by log2(sr_size) transposed convs
(3x3, stride 2, padding 1, output padding 1; LeakyReLU(0.2) after all but the last), with
model_mode recall adding the matching encoder feature after each, and a 1x1 conv (srcnn) to
the frame. OpenSTL's merge and conv_last_sr convolutions are built but never used; we build
neither. Every width must be equal (OpenSTL feeds num_hidden[i - 1] channels to layer i and
num_hidden[-1] to layer 0).
"""
import math

from mindspore import nn, ops

from layers.conv import Conv2d
from layers.mau_cell import MAUCell, UpConv
from nets.base import RecurrentPredictor, frame_dims, zeros_like_layers


class MAU(RecurrentPredictor):
    def __init__(self, num_hidden, seq_length, input_length, frame_channel, height, width, filter_size=5,
                 stride=1, tau=5, sr_size=4, cell_mode="normal", model_mode="normal"):
        super().__init__(seq_length, input_length, frame_channel, height, width)
        self.num_hidden = list(num_hidden)
        self.num_layers = len(self.num_hidden)
        if len(set(self.num_hidden)) != 1:
            raise ValueError(f"MAU needs layers of one width (OpenSTL's cells assume it), got num_hidden={num_hidden}")
        if model_mode not in ("normal", "recall"):
            raise ValueError(f"model_mode must be normal or recall, got {model_mode!r}")
        n = int(round(math.log2(sr_size)))
        if 2 ** n != sr_size or height % sr_size or width % sr_size:
            raise ValueError(f"sr_size must be a power of 2 dividing the patch-reshaped frame size "
                             f"{height}x{width}, got {sr_size}")
        c = self.num_hidden[0]
        self.tau, self.recall = tau, model_mode == "recall"
        self.small_h, self.small_w = height // sr_size, width // sr_size
        encoders = [nn.SequentialCell([Conv2d(frame_channel, c, 1, has_bias=True), nn.LeakyReLU(0.2)])]
        encoders += [nn.SequentialCell([Conv2d(c, c, 3, 2, pad_mode="pad", padding=1, has_bias=True),
                                        nn.LeakyReLU(0.2)]) for _ in range(n)]
        self.encoders = nn.CellList(encoders)
        decoders = [nn.SequentialCell([UpConv(c, c), nn.LeakyReLU(0.2)]) for _ in range(n - 1)]
        if n > 0:
            decoders.append(nn.SequentialCell([UpConv(c, c)]))
        self.decoders = nn.CellList(decoders)
        self.cell_list = nn.CellList([MAUCell(c, c, self.small_h, self.small_w, filter_size, stride, tau, cell_mode)
                                      for _ in range(self.num_layers)])
        self.srcnn = nn.SequentialCell([Conv2d(c, frame_channel, 1, has_bias=True)])

    @classmethod
    def from_config(cls, cfg):
        channel, height, width = frame_dims(cfg)
        return cls(cfg.hidden_list(), cfg.seq_length, cfg.input_length, channel, height, width, cfg.filter_size,
                   cfg.stride, cfg.mau_tau, cfg.sr_size, cfg.cell_mode, cfg.model_mode)

    def init_state(self, batch):
        zeros = zeros_like_layers(batch, self.num_hidden, self.small_h, self.small_w)
        history = tuple(zeros[:1] * self.tau for _ in range(self.num_layers))
        # per layer: T, the last tau T states, the last tau S inputs (the oldest first)
        return zeros, history, history

    def step(self, x, state):
        t_states, t_hist, s_hist = state
        features = ()
        for encoder in self.encoders:
            x = encoder(x)
            features = features + (x,)
        s = x
        new_t, new_t_hist, new_s_hist = (), (), ()
        for i in range(self.num_layers):
            t_att, s_att = ops.stack(t_hist[i], axis=1), ops.stack(s_hist[i], axis=1)
            s_in = s
            t_i, s = self.cell_list[i](t_states[i], s, t_att, s_att)
            new_t = new_t + (t_i,)
            new_t_hist = new_t_hist + (t_hist[i][1:] + (t_i,),)
            new_s_hist = new_s_hist + (s_hist[i][1:] + (s_in,),)
        out = s
        for i in range(len(self.decoders)):
            out = self.decoders[i](out)
            if self.recall:
                out = out + features[len(features) - 2 - i]
        return self.srcnn(out), (new_t, new_t_hist, new_s_hist)
