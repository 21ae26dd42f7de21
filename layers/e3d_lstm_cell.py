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
goes after the window, so the window keeps its length through every convolution.
Convolutions have no bias (as thuml/OpenSTL; the TF code has biases). The LayerNorm on
C + RECALL is always on; `layer_norm` adds LayerNorms after conv_x, conv_h, conv_m, conv_oc
and conv_om (OpenSTL's placement). Both normalise per sample over (C, tau, H, W).
When the memory arriving from the layer below has another width, a 1x1x1 convolution
without bias (`conv_m_in`) maps it to num_hidden (as layers/st_lstm_cell.py).
"""
import mindspore as ms
from mindspore import nn, ops
from mindspore.common.initializer import initializer


class WindowLayerNorm(nn.Cell):
    """Per-sample LayerNorm over (C, tau, H, W) of an NCDHW tensor, written with ReduceMean
    so that it exports to ONNX. affine='element': scale and shift of shape (C, tau, H, W),
    as torch.nn.LayerNorm([C, tau, H, W]) in OpenSTL; 'channel': one per channel, as the
    authors' tf.contrib.layers.layer_norm."""

    def __init__(self, channels, window, height, width, eps=1e-5, affine="element"):
        super().__init__()
        if affine == "element":
            shape = (channels, window, height, width)
        elif affine == "channel":
            shape = (channels, 1, 1, 1)
        else:
            raise ValueError(f"affine must be 'element' or 'channel', got {affine!r}")
        self.gamma = ms.Parameter(initializer("ones", shape, ms.float32), name="gamma")
        self.beta = ms.Parameter(initializer("zeros", shape, ms.float32), name="beta")
        self.eps = eps

    def construct(self, x):
        # statistics on a [B, N] view: MindSpore's CPU backward of a 4-axis ReduceMean is
        # several times slower than that of a 1-axis one
        flat = ops.reshape(x, (x.shape[0], -1))
        mean = ops.mean(flat, axis=1, keep_dims=True)
        centred = flat - mean
        var = ops.mean(centred * centred, axis=1, keep_dims=True)
        normed = ops.reshape(centred / ops.sqrt(var + self.eps), x.shape)
        return normed * self.gamma + self.beta


def temporal_padding(kernel):
    """(before, after) zero frames of TensorFlow's 'same' padding for a temporal kernel."""
    before = (kernel - 1) // 2
    return before, kernel - 1 - before


def gate_conv3d(in_channels, out_channels, temporal_kernel, filter_size, layer_norm=False,
                window=None, height=None, width=None):
    """A 'same'-padded 3D convolution without bias, optionally followed by a LayerNorm.
    Explicit pads so the exported graph carries fixed (possibly asymmetric) pads; wrapped
    in a SequentialCell for stable names ('conv_x.0.weight', 'conv_x.1.gamma')."""
    before, after = temporal_padding(temporal_kernel)
    pad = filter_size // 2
    conv = nn.Conv3d(in_channels, out_channels, (temporal_kernel, filter_size, filter_size),
                     pad_mode="pad", padding=(before, after, pad, pad, pad, pad), has_bias=False)
    if layer_norm:
        return nn.SequentialCell([conv, WindowLayerNorm(out_channels, window, height, width)])
    return nn.SequentialCell([conv])


def history_tokens(c):
    """[B, C, tau, H, W] -> [B, tau*H*W, C]: the keys (and values) one cell state adds to
    the eidetic memory."""
    b, ch = c.shape[0], c.shape[1]
    return ops.reshape(ops.transpose(c, (0, 2, 3, 4, 1)), (b, -1, ch))


class Eidetic3DLSTMCell(nn.Cell):
    def __init__(self, in_channels, num_hidden, window_length, height, width, filter_size,
                 temporal_kernel=2, layer_norm=False, forget_bias=1.0, memory_channels=None):
        super().__init__()
        self.num_hidden = num_hidden
        self.forget_bias = forget_bias
        memory_channels = memory_channels or num_hidden
        self.project_memory = memory_channels != num_hidden
        if self.project_memory:
            self.conv_m_in = nn.Conv3d(memory_channels, num_hidden, 1, has_bias=False)
        args = (temporal_kernel, filter_size, layer_norm, window_length, height, width)
        self.conv_x = gate_conv3d(in_channels, 7 * num_hidden, *args)
        self.conv_h = gate_conv3d(num_hidden, 4 * num_hidden, *args)
        self.conv_m = gate_conv3d(num_hidden, 3 * num_hidden, *args)
        self.conv_oc = gate_conv3d(num_hidden, num_hidden, *args)
        self.conv_om = gate_conv3d(num_hidden, num_hidden, *args)
        self.conv_last = nn.Conv3d(2 * num_hidden, num_hidden, 1, has_bias=False)
        self.norm_c = WindowLayerNorm(num_hidden, window_length, height, width)
        self.attend = ops.BatchMatMul(transpose_b=True)
        self.gather = ops.BatchMatMul()

    def recall(self, r, history):
        """Attention of the recall gate over the eidetic memory.
        r [B, C, tau, H, W]; history [B, N, C] (N = tau*H*W per stored state)."""
        b, ch, tau, h, w = r.shape
        query = history_tokens(r)
        weights = ops.softmax(self.attend(query, history), axis=2)  # [B, tau*H*W, N]
        out = ops.reshape(self.gather(weights, history), (b, tau, h, w, ch))
        return ops.transpose(out, (0, 4, 1, 2, 3))

    def construct(self, x, h, c, m, history):
        if self.project_memory:
            m = self.conv_m_in(m)
        i_x, g_x, r_x, o_x, i_xp, g_xp, f_xp = ops.split(self.conv_x(x), self.num_hidden, axis=1)
        i_h, g_h, r_h, o_h = ops.split(self.conv_h(h), self.num_hidden, axis=1)
        i_m, f_m, g_m = ops.split(self.conv_m(m), self.num_hidden, axis=1)
        recall_gate = ops.sigmoid(r_x + r_h)
        c_new = (ops.sigmoid(i_x + i_h) * ops.tanh(g_x + g_h)
                 + self.norm_c(c + self.recall(recall_gate, history)))
        m_new = (ops.sigmoid(i_xp + i_m) * ops.tanh(g_xp + g_m)
                 + ops.sigmoid(f_xp + f_m + self.forget_bias) * m)
        o = ops.sigmoid(o_x + o_h + self.conv_oc(c_new) + self.conv_om(m_new))
        h_new = o * ops.tanh(self.conv_last(ops.concat((c_new, m_new), axis=1)))
        return h_new, c_new, m_new
