"""Eidetic 3D LSTM cell (E3D-LSTM, Wang et al., ICLR 2019).

Every state is a short clip: [B, C, tau, H, W] over a temporal window of tau frames, and
every convolution is 3D with kernel (temporal_kernel, filter_size, filter_size).

    i_x, g_x, r_x, o_x, i_x', g_x', f_x' = split(conv_x(x), 7)
    i_h, g_h, r_h, o_h = split(conv_h(h), 4);     i_m, f_m, g_m = split(conv_m(m), 3)
    R = sigmoid(r_x + r_h);  I = sigmoid(i_x + i_h);  G = tanh(g_x + g_h)
    RECALL = softmax(Q K^T) K   Q: R as tau*H*W tokens of C features,
                                K: every cell state of the history, the same way
    C' = I * G + LayerNorm(C + RECALL)
    M' = sigmoid(i_x' + i_m) * tanh(g_x' + g_m) + sigmoid(f_x' + f_m + forget_bias) * M
    O = sigmoid(o_x + o_h + conv_oc(C') + conv_om(M'));  H' = O * tanh(conv_last([C', M']))

Gate orders are those of the authors' TensorFlow code (and OpenSTL), so their conv_x and
conv_h weights map one to one; conv_m is the paper's 3C (i, f, g), the first 3C rows of
the released code's 4C conv. The attention token is one (t, y, x) position with its C
channels, as in the authors' channels-last code: there is no 1/sqrt(C) scaling.

Temporal padding follows TensorFlow's 'same': for the even kernel 2 the extra zero frame
goes after the window, so the window keeps its length through every convolution
(WindowConv3d, which also says how the pads reach ONNX).
Convolutions have no bias (as thuml/OpenSTL; the TF code has biases). The LayerNorm on
C + RECALL is always on; `layer_norm` adds LayerNorms after conv_x, conv_h, conv_m, conv_oc
and conv_om (OpenSTL's placement). Both normalise per sample over (C, tau, H, W).
When the memory arriving from the layer below has another width, a 1x1x1 convolution
without bias (`conv_m_in`) maps it to num_hidden (as layers/st_lstm_cell.py).

Switches for the released code (the defaults are the paper's maths above):
- gates='released' (the authors' TF code and OpenSTL): conv_m has 4C outputs (i, f, g, m),
  M' = sigmoid(i_x' + i_m) * tanh(g_x' + g_m) + sigmoid(f_x' + f_m + forget_bias) * tanh(m_m)
  and the output gate is O = sigmoid(tanh(o_x + o_h + o_c + o_m)).
- temporal_conv='upsample' (OpenSTL's tf_Conv3d): no temporal padding, so a kernel of kt
  frames leaves tau - kt + 1 of them, and nearest-neighbour upsampling (torch's
  F.interpolate 'nearest' index rule) repeats them back to tau. With tau = kt = 2 every
  output frame is the one valid frame.
- recall_layout='flat' (OpenSTL): query, keys and the recall output are plain reshapes of the
  NCDHW tensors to [B, -1, C] and back, without the channels-last permute, so a "token" is C
  consecutive values of the C-major memory layout.
- exact=True: sigmoid, tanh and the attention softmax in float64 (layers/activations.py) and
  LayerNorms with a corrected two-pass mean: MindSpore's float32 CPU kernels err by up to
  1e-4 (tanh) and 8e-7 (sigmoid), which the LayerNorms amplify; converted PyTorch
  checkpoints need it to agree within 1e-5.
"""
import numpy as np
import mindspore as ms
from mindspore import nn, ops

from layers.conv import Conv3d
from layers.activations import LastAxisSoftmax, sigmoid_exact, tanh_exact
from layers.layer_norm import TensorLayerNorm

GATES = ("paper", "released")
TEMPORAL_CONVS = ("same", "upsample")
RECALL_LAYOUTS = ("tokens", "flat")


def temporal_padding(kernel):
    """(before, after) zero frames of TensorFlow's 'same' padding for a temporal kernel."""
    before = (kernel - 1) // 2
    return before, kernel - 1 - before


def nearest_frames(valid, window):
    """Which of `valid` frames each of `window` output frames copies, by torch's 'nearest'
    rule: floor(j * (valid / window)) in float32, at most valid - 1."""
    scale = np.float32(valid) / np.float32(window)
    return [min(int(np.floor(np.float32(j) * scale)), valid - 1) for j in range(window)]


class WindowConv3d(Conv3d):
    """A Conv3d without bias over a window, 'same' in space, in time either TensorFlow's
    'same' (temporal_conv='same': for an even kernel the extra zero frame goes after the
    window) or OpenSTL's tf_Conv3d (temporal_conv='upsample': no temporal padding, then
    nearest upsampling of the tau - kt + 1 remaining frames back to tau).

    Padding and ONNX: MindSpore's exporter writes explicit Conv3d pads in its own order
    (front, back, top, bottom, left, right) where ONNX reads (begins, ends), which is wrong
    whenever they are not all equal, as for kernel (2, 5, 5). pad_mode='same' is TensorFlow's
    rule (the odd pad after) and exports as SAME_UPPER, the same rule; 'upsample' pads only
    in space, so its zeros come from a Pad before an unpadded convolution (an extra op per
    conv, ~25% of a tiny E3D step, hence not used for 'same'). A Conv3d subclass, so that
    the weight keeps the name of a plain convolution ('conv_x.0.weight')."""

    def __init__(self, in_channels, out_channels, temporal_kernel, filter_size, window=None,
                 temporal_conv="same"):
        upsample = temporal_conv == "upsample"
        super().__init__(in_channels, out_channels, (temporal_kernel, filter_size, filter_size),
                         pad_mode="valid" if upsample else "same", has_bias=False)
        pad = filter_size // 2
        self.padded = upsample and pad > 0
        self.pad_op = ops.Pad(((0, 0), (0, 0), (0, 0), (pad, pad), (pad, pad)))
        self.resample = False
        index = [0]
        if upsample:
            valid = window - temporal_kernel + 1
            if valid < 1:
                raise ValueError(f"a temporal kernel of {temporal_kernel} frames needs a window of at least "
                                 f"{temporal_kernel} frames without temporal padding, got {window}")
            index = nearest_frames(valid, window)
            self.resample = index != list(range(window))
        # a constant index (Gather exports to ONNX; interpolate does not)
        self.frame_index = ms.Tensor(np.array(index, np.int32))

    def construct(self, x):
        if self.padded:
            x = self.pad_op(x)
        out = self.conv(x)
        if self.resample:
            out = ops.gather(out, self.frame_index, 2)
        return out


def gate_conv3d(in_channels, out_channels, temporal_kernel, filter_size, layer_norm=False,
                window=None, height=None, width=None, temporal_conv="same", precise=False):
    """A WindowConv3d, optionally followed by a LayerNorm, in a SequentialCell for stable
    names ('conv_x.0.weight', 'conv_x.1.gamma')."""
    conv = WindowConv3d(in_channels, out_channels, temporal_kernel, filter_size, window, temporal_conv)
    if layer_norm:
        return nn.SequentialCell([conv, TensorLayerNorm(out_channels, window, height, width, precise=precise)])
    return nn.SequentialCell([conv])


def history_tokens(c):
    """[B, C, tau, H, W] -> [B, tau*H*W, C]: the keys (and values) one cell state adds to
    the eidetic memory."""
    b, ch = c.shape[0], c.shape[1]
    return ops.reshape(ops.transpose(c, (0, 2, 3, 4, 1)), (b, -1, ch))


class Eidetic3DLSTMCell(nn.Cell):
    def __init__(self, in_channels, num_hidden, window_length, height, width, filter_size,
                 temporal_kernel=2, layer_norm=False, forget_bias=1.0, memory_channels=None,
                 gates="paper", temporal_conv="same", recall_layout="tokens", exact=False):
        super().__init__()
        for name, value, allowed in (("gates", gates, GATES), ("temporal_conv", temporal_conv, TEMPORAL_CONVS),
                                     ("recall_layout", recall_layout, RECALL_LAYOUTS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        self.num_hidden = num_hidden
        self.forget_bias = forget_bias
        self.released_gates = gates == "released"
        self.flat_recall = recall_layout == "flat"
        self.exact = bool(exact)
        memory_channels = memory_channels or num_hidden
        self.project_memory = memory_channels != num_hidden
        if self.project_memory:
            self.conv_m_in = Conv3d(memory_channels, num_hidden, 1, has_bias=False)
        args = (temporal_kernel, filter_size, layer_norm, window_length, height, width, temporal_conv, self.exact)
        self.conv_x = gate_conv3d(in_channels, 7 * num_hidden, *args)
        self.conv_h = gate_conv3d(num_hidden, 4 * num_hidden, *args)
        self.conv_m = gate_conv3d(num_hidden, (4 if self.released_gates else 3) * num_hidden, *args)
        self.conv_oc = gate_conv3d(num_hidden, num_hidden, *args)
        self.conv_om = gate_conv3d(num_hidden, num_hidden, *args)
        self.conv_last = Conv3d(2 * num_hidden, num_hidden, 1, has_bias=False)
        self.norm_c = TensorLayerNorm(num_hidden, window_length, height, width, precise=self.exact)
        self.attend = ops.BatchMatMul(transpose_b=True)
        self.gather = ops.BatchMatMul()
        self.softmax_last = LastAxisSoftmax()

    def sigmoid(self, x):
        if self.exact:
            return sigmoid_exact(x)
        return ops.sigmoid(x)

    def tanh(self, x):
        if self.exact:
            return tanh_exact(x)
        return ops.tanh(x)

    def softmax(self, x):
        if self.exact:
            return ops.cast(ops.softmax(ops.cast(x, ms.float64), axis=2), x.dtype)
        return self.softmax_last(x)  # axis 2 is the last: [B, tau*H*W, N]

    def tokens(self, c):
        """[B, C, tau, H, W] -> [B, tau*H*W, C], the memory layout the recall reads."""
        if self.flat_recall:
            return ops.reshape(c, (c.shape[0], -1, c.shape[1]))
        return history_tokens(c)

    def recall(self, r, history):
        """Attention of the recall gate over the eidetic memory.
        r [B, C, tau, H, W]; history [B, N, C] (N = tau*H*W per stored state)."""
        b, ch, tau, h, w = r.shape
        query = self.tokens(r)
        weights = self.softmax(self.attend(query, history))  # [B, tau*H*W, N]
        out = self.gather(weights, history)
        if self.flat_recall:
            return ops.reshape(out, (b, ch, tau, h, w))
        return ops.transpose(ops.reshape(out, (b, tau, h, w, ch)), (0, 4, 1, 2, 3))

    def construct(self, x, h, c, m, history):
        if self.project_memory:
            m = self.conv_m_in(m)
        i_x, g_x, r_x, o_x, i_xp, g_xp, f_xp = ops.split(self.conv_x(x), self.num_hidden, axis=1)
        i_h, g_h, r_h, o_h = ops.split(self.conv_h(h), self.num_hidden, axis=1)
        recall_gate = self.sigmoid(r_x + r_h)
        c_new = (self.sigmoid(i_x + i_h) * self.tanh(g_x + g_h)
                 + self.norm_c(c + self.recall(recall_gate, history)))
        if self.released_gates:
            i_m, f_m, g_m, m_m = ops.split(self.conv_m(m), self.num_hidden, axis=1)
            kept = self.tanh(m_m)
        else:
            i_m, f_m, g_m = ops.split(self.conv_m(m), self.num_hidden, axis=1)
            kept = m
        m_new = (self.sigmoid(i_xp + i_m) * self.tanh(g_xp + g_m)
                 + self.sigmoid(f_xp + f_m + self.forget_bias) * kept)
        o = o_x + o_h + self.conv_oc(c_new) + self.conv_om(m_new)
        o = self.sigmoid(self.tanh(o)) if self.released_gates else self.sigmoid(o)
        h_new = o * self.tanh(self.conv_last(ops.concat((c_new, m_new), axis=1)))
        return h_new, c_new, m_new
