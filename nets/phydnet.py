"""PhyDNet (Le Guen & Thome, CVPR 2020, "Disentangling Physical Dynamics from Unknown Factors
for Unsupervised Video Prediction") as OpenSTL's PhyDNet_Model, frame by frame.

Per step, the frame (un-patched to [B, C, H, W] inside the net) is encoded by encoder_E (three
dcgan convs, 3x3 + GroupNorm(16) + LeakyReLU(0.2), strides 2, 1, patch_size / 2: the latent is
H / patch_size), then by two specific encoders (two dcgan convs each) into
  - PhyCell (the physical branch, one cell, 64 channels): K = sigmoid(convgate([x, H]));
    H~ = H + F(H) with F = conv1 (7x7, 49 filters) -> GroupNorm(7) -> conv2 (1x1); H' = H~ + K * (x - H~);
  - a ConvLSTM of 128, 128, 64 channels (3x3, biased, gates i, f, o, g, no forget bias);
each branch's top output goes through its specific decoder (two dcgan transposed convs), the two
are added, and decoder_D (transposed convs back to H, the last without norm) + sigmoid gives the
next frame. OpenSTL's inference reads the true frames while they exist and then its own
output: the evaluation mask; its training coin decides teacher forcing for the whole batch
(teacher_forcing: batch).

Training loss: OpenSTL sums the per-step MSEs and, for each of PhyCell's 64 input channels, the
MSE between the moments of conv1's 49 filters (K2M: m = M0 k M1^T with M[p, i] = (i - 3)^p / p!)
and the one-hot constraint of each filter's own (p, q). Our trainer averages the per-step MSEs
over the T - 1 steps, so the moment term is divided by T - 1 as well: the same loss up to one
factor, which Adam's update does not see (up to its epsilon).
"""
import math

import numpy as np
import mindspore as ms
from mindspore import nn, ops

from layers.conv import Conv2d
from layers.mau_cell import UpConv
from layers.simvp_blocks import GroupNorm
from nets.base import RecurrentPredictor, zeros_like_layers

PHY_CHANNELS, PHY_FILTERS, PHY_KERNEL = 64, 49, 7
CONV_HIDDEN = (128, 128, 64)


def dcgan_conv(c_in, c_out, stride):
    return nn.SequentialCell([Conv2d(c_in, c_out, 3, stride, pad_mode="pad", padding=1, has_bias=True),
                              GroupNorm(16, c_out), nn.LeakyReLU(0.2)])


def dcgan_upconv(c_in, c_out, stride):
    return nn.SequentialCell([UpConv(c_in, c_out, 3, stride, 1, 1 if stride == 2 else 0), GroupNorm(16, c_out),
                              nn.LeakyReLU(0.2)])


class EncoderSpecific(nn.Cell):
    """Two dcgan convs (64 -> 64): encoder_Ep and encoder_Er."""

    def __init__(self):
        super().__init__()
        self.c1 = dcgan_conv(64, 64, 1)
        self.c2 = dcgan_conv(64, 64, 1)

    def construct(self, x):
        return self.c2(self.c1(x))


class DecoderSpecific(nn.Cell):
    """Two dcgan transposed convs (64 -> 64, stride 1): decoder_Dp and decoder_Dr."""

    def __init__(self):
        super().__init__()
        self.upc1 = dcgan_upconv(64, 64, 1)
        self.upc2 = dcgan_upconv(64, 64, 1)

    def construct(self, x):
        return self.upc2(self.upc1(x))


class EncoderE(nn.Cell):
    def __init__(self, nc, patch_size, nf=32):
        super().__init__()
        self.c1 = dcgan_conv(nc, nf, 2)
        self.c2 = dcgan_conv(nf, nf, 1)
        self.c3 = dcgan_conv(nf, 2 * nf, patch_size // 2)

    def construct(self, x):
        return self.c3(self.c2(self.c1(x)))


class DecoderD(nn.Cell):
    def __init__(self, nc, patch_size, nf=32):
        super().__init__()
        stride = patch_size // 2
        self.upc1 = dcgan_upconv(2 * nf, nf, 2)
        self.upc2 = dcgan_upconv(nf, nf, 1)
        self.upc3 = UpConv(nf, nc, 3, stride, 1, 1 if stride == 2 else 0)

    def construct(self, x):
        return self.upc3(self.upc2(self.upc1(x)))


class PhyCellCell(nn.Cell):
    def __init__(self, channels=PHY_CHANNELS, filters=PHY_FILTERS, kernel=PHY_KERNEL):
        super().__init__()
        self.F = nn.SequentialCell([Conv2d(channels, filters, kernel, pad_mode="pad", padding=kernel // 2,
                                              has_bias=True),
                                    GroupNorm(7, filters),
                                    Conv2d(filters, channels, 1, has_bias=True)])
        self.convgate = Conv2d(2 * channels, channels, 3, pad_mode="pad", padding=1, has_bias=True)

    def construct(self, x, hidden):
        k = ops.sigmoid(self.convgate(ops.concat((x, hidden), axis=1)))
        tilde = hidden + self.F(hidden)
        return tilde + k * (x - tilde)


class ConvLSTMCell(nn.Cell):
    def __init__(self, c_in, c_hidden):
        super().__init__()
        self.c_hidden = c_hidden
        self.conv = Conv2d(c_in + c_hidden, 4 * c_hidden, 3, pad_mode="pad", padding=1, has_bias=True)

    def construct(self, x, h, c):
        i, f, o, g = ops.split(self.conv(ops.concat((x, h), axis=1)), self.c_hidden, axis=1)
        c_new = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
        return ops.sigmoid(o) * ops.tanh(c_new), c_new


def moment_matrices(size=PHY_KERNEL):
    """K2M's M for one axis: M[p, i] = (i - (size - 1) // 2) ** p / p!."""
    i = np.arange(size) - (size - 1) // 2
    return np.stack([i.astype(np.float64) ** p / math.factorial(p) for p in range(size)])


def moment_constraints(filters=PHY_FILTERS, size=PHY_KERNEL):
    """OpenSTL's constraints: filter n = i * 7 + j must have the moment (i, j) alone."""
    out = np.zeros((filters, size, size), np.float32)
    for n in range(filters):
        out[n, n // size, n % size] = 1.0
    return out


class PhyDNet(RecurrentPredictor):
    def __init__(self, seq_length, input_length, img_channel, patch_size, height, width):
        if patch_size not in (2, 4):
            raise ValueError(f"PhyDNet's encoder downsamples by 2 or 4: patch_size must be 2 or 4, got {patch_size}")
        p = patch_size
        super().__init__(seq_length, input_length, p * p * img_channel, height, width)
        self.p, self.c = p, img_channel
        self.encoder_E = EncoderE(img_channel, p)
        self.encoder_Ep, self.encoder_Er = EncoderSpecific(), EncoderSpecific()
        self.decoder_Dp, self.decoder_Dr = DecoderSpecific(), DecoderSpecific()
        self.decoder_D = DecoderD(img_channel, p)
        self.phycell = nn.CellList([PhyCellCell()])
        widths = (PHY_CHANNELS,) + CONV_HIDDEN
        self.convcell = nn.CellList([ConvLSTMCell(widths[i], widths[i + 1]) for i in range(len(CONV_HIDDEN))])
        m = moment_matrices()
        self.m0 = ms.Tensor(m.astype(np.float32))
        self.m1t = ms.Tensor(m.T.copy().astype(np.float32))
        self.constraints = ms.Tensor(moment_constraints())

    @classmethod
    def from_config(cls, cfg):
        return cls(cfg.seq_length, cfg.input_length, cfg.img_channel, cfg.patch_size,
                   cfg.img_height // cfg.patch_size, cfg.img_width // cfg.patch_size)

    def init_state(self, batch):
        phys = zeros_like_layers(batch, (PHY_CHANNELS,), self.height, self.width)
        conv = zeros_like_layers(batch, CONV_HIDDEN, self.height, self.width)
        return phys, conv, conv

    def unpatch(self, x):
        b, _, hp, wp = x.shape
        x = ops.reshape(x, (b, self.p, self.p, self.c, hp, wp))
        return ops.reshape(ops.transpose(x, (0, 3, 4, 1, 5, 2)), (b, self.c, hp * self.p, wp * self.p))

    def patch(self, x):
        b, c, h, w = x.shape
        x = ops.reshape(x, (b, c, h // self.p, self.p, w // self.p, self.p))
        return ops.reshape(ops.transpose(x, (0, 3, 5, 1, 2, 4)), (b, self.p * self.p * c, h // self.p, w // self.p))

    def step(self, x, state):
        phys, h, c = state
        feature = self.encoder_E(self.unpatch(x))
        hidden = self.phycell[0](self.encoder_Ep(feature), phys[0])
        inp = self.encoder_Er(feature)
        new_h, new_c = (), ()
        for i in range(len(CONV_HIDDEN)):
            h_i, c_i = self.convcell[i](inp, h[i], c[i])
            new_h, new_c = new_h + (h_i,), new_c + (c_i,)
            inp = h_i
        frame = ops.sigmoid(self.decoder_D(self.decoder_Dp(hidden) + self.decoder_Dr(inp)))
        return self.patch(frame), ((hidden,), new_h, new_c)

    def moment_loss(self):
        """Sum over PhyCell's 64 input channels of MSE(K2M(conv1[:, b]), constraints)."""
        k = ops.transpose(self.phycell[0].F[0].weight, (1, 0, 2, 3))  # [64, 49, 7, 7]
        moments = ops.matmul(ops.matmul(self.m0, k), self.m1t)
        return ops.mean(ops.square(moments - self.constraints)) * k.shape[0]

    def finish(self, predictions, state):
        if self.training:
            return predictions, self.moment_loss() / (self.seq_length - 1)
        return predictions
