"""E3D-LSTM (Wang et al., ICLR 2019): a stack of eidetic 3D LSTM cells over a sliding window.

At step t the bottom layer reads the window of the last window_length net inputs
[x_{t-tau+1}, ..., x_t] (zeros before the first frame), so the states are short clips
[B, C, tau, H, W]. The next frame is a convolution of the top hidden state with kernel and
stride (tau, 1, 1), which folds the window into one frame (no bias): as the authors' code
and OpenSTL. Predictions are frame by frame, T-1 of them, with the base class's input
schedule (scheduled sampling through the mask), like the PredRNN family.

Eidetic memory: each layer keeps the history of its cell states, [C_init, C_0, ..., C_{t-1}]
at step t (the initial zero state included, as both references do), in the token layout
the recall attention reads ([B, n*tau*H*W, C]). The time loop is unrolled statically, so the
history is a tensor whose length is fixed at every step: one graph serves the whole
sequence and exports.

Spatiotemporal memory M (`memory_flow`):
- 'paper' (default): M zigzags as in PredRNN, up through the layers within a step and from
  the top layer at t-1 to the bottom layer at t.
- 'released': the authors' TensorFlow code (and OpenSTL) returns from each cell the M it was
  given, so every layer at every step reads the initial zero M; the new M of a cell still
  feeds its own output gate and hidden state. Parameters are the same in both modes, so a
  checkpoint can be evaluated either way.

The released code differs in more than the memory flow; `e3d_gates`, `e3d_temporal_conv`,
and `e3d_recall_layout` select its maths cell by cell (layers/e3d_lstm_cell.py).
OpenSTL's E3DLSTM_Model is e3d_memory=released, e3d_gates=released,
e3d_temporal_conv=upsample, e3d_recall_layout=flat with kernel (2, 5, 5) and a window of 2
(configs/openstl_e3d_lstm_mmnist.yaml); activations=exact makes our float32 CPU result
agree with PyTorch's within 1e-5.
"""
from mindspore import nn, ops

from engine.errors import UserError
from layers.conv import Conv3d
from layers.e3d_lstm_cell import GATES, RECALL_LAYOUTS, TEMPORAL_CONVS, Eidetic3DLSTMCell
from nets.base import RecurrentPredictor, frame_dims

MEMORY_FLOWS = ("paper", "released")


class E3DLSTM(RecurrentPredictor):
    def __init__(self, num_hidden, seq_length, input_length, frame_channel, height, width,
                 filter_size=5, window_length=2, temporal_kernel=2, layer_norm=False,
                 forget_bias=1.0, memory_flow="paper", gates="paper", temporal_conv="same",
                 recall_layout="tokens", exact=False):
        super().__init__(seq_length, input_length, frame_channel, height, width)
        for key, value, allowed in (("e3d_memory", memory_flow, MEMORY_FLOWS), ("e3d_gates", gates, GATES),
                                    ("e3d_temporal_conv", temporal_conv, TEMPORAL_CONVS),
                                    ("e3d_recall_layout", recall_layout, RECALL_LAYOUTS)):
            if value not in allowed:
                raise UserError(f"config key '{key}': must be {' or '.join(allowed)}, got {value!r}")
        if window_length < 1:
            raise UserError(f"config key 'window_length': must be >= 1, got {window_length}")
        if temporal_kernel < 1:
            raise UserError(f"config key 'temporal_kernel': must be >= 1, got {temporal_kernel}")
        if temporal_conv == "upsample" and temporal_kernel > window_length:
            raise UserError(f"config key 'temporal_kernel': with e3d_temporal_conv=upsample (no temporal padding) "
                            f"it must be <= window_length ({window_length}), got {temporal_kernel}")
        self.num_hidden = list(num_hidden)
        self.num_layers = len(self.num_hidden)
        self.window_length = window_length
        self.carry_memory = memory_flow == "paper"
        self.memory_widths = [self.num_hidden[i - 1] for i in range(self.num_layers)]
        cells = []
        for i, hidden in enumerate(self.num_hidden):
            in_channels = frame_channel if i == 0 else self.num_hidden[i - 1]
            cells.append(Eidetic3DLSTMCell(in_channels, hidden, window_length, height, width, filter_size,
                                           temporal_kernel, layer_norm, forget_bias,
                                           memory_channels=self.memory_widths[i], gates=gates,
                                           temporal_conv=temporal_conv, recall_layout=recall_layout,
                                           exact=exact))
        self.cell_list = nn.CellList(cells)
        self.conv_last = Conv3d(self.num_hidden[-1], frame_channel, (window_length, 1, 1),
                                   stride=(window_length, 1, 1), pad_mode="valid", has_bias=False)

    @classmethod
    def from_config(cls, cfg):
        channel, height, width = frame_dims(cfg)
        return cls(cfg.hidden_list(), cfg.seq_length, cfg.input_length, channel, height, width,
                   cfg.filter_size, cfg.window_length, cfg.temporal_kernel, cfg.layer_norm,
                   cfg.forget_bias, cfg.e3d_memory, cfg.e3d_gates, cfg.e3d_temporal_conv,
                   cfg.e3d_recall_layout, cfg.get("activations", "ops") == "exact")

    def zeros(self, batch, channels):
        return ops.zeros((batch, channels, self.window_length, self.height, self.width),
                         self.conv_last.weight.dtype)

    def init_state(self, batch):
        previous = ()
        for _ in range(self.window_length - 1):
            previous = previous + (ops.zeros((batch, self.frame_channel, self.height, self.width),
                                             self.conv_last.weight.dtype),)
        h, c, history = (), (), ()
        for i in range(self.num_layers):
            zero = self.zeros(batch, self.num_hidden[i])
            h = h + (zero,)
            c = c + (zero,)
            history = history + (self.cell_list[i].tokens(zero),)
        return previous, h, c, self.zeros(batch, self.num_hidden[-1]), history

    def step(self, x, state):
        previous, h, c, m, history = state
        batch = x.shape[0]
        frames = previous + (x,)
        window = ops.stack(frames, axis=2)  # oldest first: [B, C, tau, H, W]
        new_h, new_c, new_history = (), (), ()
        inp = window
        for i in range(self.num_layers):
            m_in = m if self.carry_memory else self.zeros(batch, self.memory_widths[i])
            h_i, c_i, m_out = self.cell_list[i](inp, h[i], c[i], m_in, history[i])
            if self.carry_memory:
                m = m_out
            new_h = new_h + (h_i,)
            new_c = new_c + (c_i,)
            new_history = new_history + (ops.concat((history[i], self.cell_list[i].tokens(c_i)), axis=1),)
            inp = h_i
        frame = self.conv_last(inp)
        frame = ops.reshape(frame, (batch, self.frame_channel, self.height, self.width))
        return frame, (frames[1:], new_h, new_c, m, new_history)
