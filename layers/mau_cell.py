"""MAU's cell and its up-convolution (Chang et al., NeurIPS 2021, "MAU: A Motion-Aware Unit
for Video Prediction and Beyond"), as OpenSTL's mau_modules.MAUCell.

With the temporal state T, the spatial input S and the last tau states of each (T_att, S_att),
all convolutions biased and followed by a LayerNorm over (C, H, W), d = C * H * W:
    s_next = conv_s_next(S);  t_next = conv_t_next(T)
    w_j = softmax_j( sum(S_att_j * s_next) / sqrt(d) )         (per sample, over the tau states)
    T_trend = sum_j w_j * T_att_j;   g = sigmoid(t_next)
    T_fusion = T * g + (1 - g) * T_trend
    t_g, t_t, t_s = split(conv_t(T_fusion), 3);  s_g, s_t, s_s = split(conv_s(S), 3)
    T' = sigmoid(t_g) * t_t + (1 - sigmoid(t_g)) * s_t
    S' = sigmoid(s_g) * s_s + (1 - sigmoid(s_g)) * t_s  (+ S in cell_mode residual)
"""
import math

import numpy as np
import mindspore as ms
from mindspore import nn, ops

from layers.conv import Conv2d, gate_conv


class MAUCell(nn.Cell):
    def __init__(self, in_channels, num_hidden, height, width, filter_size, stride=1, tau=5, cell_mode="normal"):
        super().__init__()
        if cell_mode not in ("normal", "residual"):
            raise ValueError(f"cell_mode must be normal or residual, got {cell_mode!r}")
        self.num_hidden, self.tau, self.residual = num_hidden, tau, cell_mode == "residual"
        self.scale = 1.0 / math.sqrt(num_hidden * height * width)
        args = (filter_size, stride, True, height, width)
        self.conv_t = gate_conv(in_channels, 3 * num_hidden, *args, has_bias=True)
        self.conv_t_next = gate_conv(in_channels, num_hidden, *args, has_bias=True)
        self.conv_s = gate_conv(num_hidden, 3 * num_hidden, *args, has_bias=True)
        self.conv_s_next = gate_conv(num_hidden, num_hidden, *args, has_bias=True)
        self.matmul, self.matmul_ta = ops.BatchMatMul(), ops.BatchMatMul(transpose_a=True)

    def construct(self, t_state, s_state, t_att, s_att):
        """t_att, s_att: [B, tau, C, H, W], the oldest first."""
        s_next = self.conv_s_next(s_state)
        t_next = self.conv_t_next(t_state)
        # The scores and the weighted sum as batched matrix products over d = C*H*W (one
        # kernel each way, where broadcast Mul + ReduceSum cost 4 ops and their gradients)
        b = s_next.shape[0]
        scores = self.matmul(ops.reshape(s_att, (b, self.tau, -1)), ops.reshape(s_next, (b, -1, 1)))  # [B, tau, 1]
        weights = ops.softmax(scores * self.scale, axis=1)
        t_trend = ops.reshape(self.matmul_ta(weights, ops.reshape(t_att, (b, self.tau, -1))), t_state.shape)
        gate = ops.sigmoid(t_next)
        t_fusion = t_state * gate + (1.0 - gate) * t_trend
        t_g, t_t, t_s = ops.split(self.conv_t(t_fusion), self.num_hidden, axis=1)
        s_g, s_t, s_s = ops.split(self.conv_s(s_state), self.num_hidden, axis=1)
        t_gate, s_gate = ops.sigmoid(t_g), ops.sigmoid(s_g)
        t_new = t_gate * t_t + (1.0 - t_gate) * s_t
        s_new = s_gate * s_s + (1.0 - s_gate) * t_s
        if self.residual:
            s_new = s_new + s_state
        return t_new, s_new


class UpConv(nn.Cell):
    """PyTorch's ConvTranspose2d(k, stride, padding, output_padding) with bias, computed as
    zero insertion + padding + a convolution with the flipped kernel, in training and export
    alike (MindSpore's ONNX export has no ConvTranspose). Our weight is [out, in, k, k], the
    spatially flipped and transposed PyTorch weight [in, out, k, k] (the converter flips it)."""

    def __init__(self, c_in, c_out, k=3, stride=2, padding=1, output_padding=1):
        super().__init__()
        self.stride = stride
        before, after = k - 1 - padding, k - 1 - padding + output_padding
        # Zero insertion: each value followed by stride - 1 zeros per axis, built as a stack
        # with zeros and one transpose (a 6-D Pad took 6 ms per call where this takes 2 at
        # [2, 64, 32, 32]). Those trailing zeros after the last value stand for part of the
        # padding after, so nothing is cut where `after` allows it (a StridedSlice and two
        # Concats per call were ~20% of MAU's step); else the stuffing after the last value is cut.
        self.keep_tail = stride > 1 and after >= stride - 1
        if self.keep_tail:
            after -= stride - 1
        self.pad = ops.Pad(((0, 0), (0, 0), (before, after), (before, after)))
        self.conv = Conv2d(c_in, c_out, k, 1, pad_mode="valid", has_bias=True)
        # On the CPU the padding goes inside the native convolution (no full-size Pad copy each
        # way: PhyDNet's 133 Pads took 0.26 s of a 2.7 s step). Exports keep Pad + a valid
        # convolution: with the pads in the convolution MindSpore's ONNX file failed to load.
        self.native_on = True
        self.native, self.native_cfg = self.conv.padded_native((before, before), (after, after)) or (None, None)

    def construct(self, x):
        n, c, h, w = x.shape
        s = self.stride
        if s > 1:  # x[.., i, j] lands at (i * s, j * s)
            zeros = ops.zeros_like(x)
            x = ops.reshape(ops.stack((x,) + (zeros,) * (s * s - 1), axis=2), (n, c, s, s, h, w))
            x = ops.reshape(ops.transpose(x, (0, 1, 4, 2, 5, 3)), (n, c, h * s, w * s))
            if not self.keep_tail:
                x = x[:, :, :(h - 1) * s + 1, :(w - 1) * s + 1]
        if self.native_on and self.native is not None and x.dtype == ms.float32:
            return self.native(x, self.conv.weight, self.conv.bias, self.native_cfg)
        return self.conv(self.pad(x))


def flip_transposed_weight(w):
    """PyTorch ConvTranspose2d weight [in, out, k, k] -> UpConv's conv weight [out, in, k, k]."""
    return np.ascontiguousarray(np.asarray(w)[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))

