"""Building blocks of SRVP (Franceschi et al., ICML 2020): Gaussian parameter heads,
reparameterised sampling, closed-form KL terms, MLPs, an LSTM cell, and the DCGAN-style
64x64 frame encoder / decoder with skip connections.

Gaussians are parameterised as (mean, softplus(raw) + eps) as in the reference code: the
softplus keeps the scale positive without the exploding gradients of exp(log_sigma).

Layouts follow edouardelasalles/srvp module/conv.py: every block is conv -> BatchNorm ->
activation, convolutions without bias, the encoder's last block ends in BatchNorm + tanh,
the decoder's last (transposed) convolution has no bias and a sigmoid follows. Weights
start as the reference's init: N(0, 0.02) for (transposed) convolutions and N(1, 0.02)
for BatchNorm scales, orthogonal with gain res_gain for the dynamics MLP.
"""
import math

import numpy as np
import mindspore as ms
from mindspore import nn, ops
from mindspore.common.initializer import Normal, Orthogonal
from layers.conv import Conv2d

SCALE_EPS = 1e-8  # the reference's floor on every standard deviation (utils.make_normal_from_raw_params)


def split_gaussian(params):
    """[..., 2n] raw parameters -> (mean [..., n], std [..., n])."""
    n = params.shape[-1] // 2
    mean = params[..., :n]
    std = ops.softplus(params[..., n:]) + SCALE_EPS
    return mean, std


def rsample(mean, std, eps):
    """Reparameterised draw: the noise eps ~ N(0, I) comes in from outside, so the same eps
    reproduces the same sample and the draw stays differentiable in (mean, std)."""
    return mean + std * eps


def kl_normal(mean_q, std_q, mean_p, std_p):
    """KL(N(mean_q, std_q^2) || N(mean_p, std_p^2)), elementwise."""
    var_ratio = ops.square(std_q / std_p)
    diff = ops.square((mean_q - mean_p) / std_p)
    return 0.5 * (var_ratio + diff - 1.0) - ops.log(std_q / std_p)


def kl_std_normal(mean, std):
    """KL(N(mean, std^2) || N(0, 1)), elementwise."""
    return 0.5 * (ops.square(std) + ops.square(mean) - 1.0) - ops.log(std)


def gaussian_nll(x_hat, x, scale):
    """-log N(x; x_hat, scale^2), elementwise (scale a Python float: obs_scale)."""
    return 0.5 * ops.square((x - x_hat) / scale) + (math.log(scale) + 0.5 * math.log(2 * math.pi))


class MLP(nn.Cell):
    """n_layers Dense layers, ReLU between them and none at the output."""

    def __init__(self, n_in, n_hidden, n_out, n_layers, orthogonal_gain=None):
        super().__init__()
        sizes = [n_in] + [n_hidden] * (n_layers - 1) + [n_out]
        # orthogonal_gain: the reference's init of the residual function (zero biases)
        init = {} if orthogonal_gain is None else {"weight_init": Orthogonal(orthogonal_gain), "bias_init": "zeros"}
        layers = []
        for i in range(n_layers):
            layers.append(nn.Dense(sizes[i], sizes[i + 1], **init))
            if i < n_layers - 1:
                layers.append(nn.ReLU())
        self.body = nn.SequentialCell(layers)

    def construct(self, x):
        return self.body(x)


class LSTMCell(nn.Cell):
    """Plain LSTM cell (PyTorch gate order i, f, g, o) on vectors; a hand-written cell keeps
    the posterior over the encodings a static loop that GRAPH mode and MINDIR export take."""

    def __init__(self, n_in, n_hidden):
        super().__init__()
        self.n_hidden = n_hidden
        self.gates = nn.Dense(n_in + n_hidden, 4 * n_hidden)

    def construct(self, x, h, c):
        g = self.gates(ops.concat((x, h), axis=-1))
        n = self.n_hidden
        i = ops.sigmoid(g[:, :n])
        f = ops.sigmoid(g[:, n:2 * n])
        cand = ops.tanh(g[:, 2 * n:3 * n])
        o = ops.sigmoid(g[:, 3 * n:])
        c = f * c + i * cand
        h = o * ops.tanh(c)
        return h, c


def _bn(channels):
    return nn.BatchNorm2d(channels, gamma_init=Normal(0.02, 1.0), beta_init="zeros")


def _conv(cin, cout, k, stride, padding):
    return Conv2d(cin, cout, k, stride, pad_mode="pad" if padding else "valid", padding=padding,
                     has_bias=False, weight_init=Normal(0.02))


def _deconv(cin, cout, k, stride, padding):
    return nn.Conv2dTranspose(cin, cout, k, stride, pad_mode="pad" if padding else "valid", padding=padding,
                              has_bias=False, weight_init=Normal(0.02))


def _block(conv, cout, activation="leaky_relu", bn=True):
    """The reference's make_conv_block: conv -> BatchNorm -> activation."""
    layers = [conv]
    if bn:
        layers.append(_bn(cout))
    layers.append(nn.LeakyReLU(0.2) if activation == "leaky_relu" else nn.Tanh())
    return nn.SequentialCell(layers)


class Upsample2x(nn.Cell):
    """Nearest-neighbour x2 upsampling by reshape and tile: the same graph in every runtime."""

    def construct(self, x):
        n, c, h, w = x.shape
        x = ops.tile(ops.reshape(x, (n, c, h, 1, w, 1)), (1, 1, 1, 2, 1, 2))
        return ops.reshape(x, (n, c, 2 * h, 2 * w))


class MaxPool2x(nn.Cell):
    def __init__(self):
        super().__init__()
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)

    def construct(self, x):
        return self.pool(x)


class Encoder(nn.Cell):
    """[N, nc, 64, 64] -> (code [N, nh], skips deepest first), like the reference's BaseEncoder:
    stages run in turn, each stage's output is a skip, the last block makes the code."""

    def __init__(self, stages, last, nh):
        super().__init__()
        self.stages = nn.CellList(stages)
        self.last = last
        self.nh = nh

    def construct(self, x):
        skips = ()
        h = x
        for stage in self.stages:
            h = stage(h)
            skips = (h,) + skips
        code = self.last(h)
        return ops.reshape(code, (code.shape[0], self.nh)), skips


class Decoder(nn.Cell):
    """code [N, nin] (+ skips deepest first) -> frames [N, nc, 64, 64] in (0, 1); with skip
    connections each stage first concatenates the encoder map of its size (SVG's design)."""

    def __init__(self, first, stages, skip):
        super().__init__()
        self.first = first
        self.stages = nn.CellList(stages)
        self.skip = skip

    def construct(self, code, skips):
        h = self.first(ops.reshape(code, (code.shape[0], code.shape[1], 1, 1)))
        i = 0
        for stage in self.stages:
            if self.skip:
                h = ops.concat((h, skips[i]), axis=1)
            h = stage(h)
            i += 1
        return ops.sigmoid(h)


def dcgan_encoder(nc, nh, nf):
    """The reference's DCGAN64Encoder: four stride-2 4x4 blocks (no BatchNorm on the first)."""
    stages = [_block(_conv(nc, nf, 4, 2, 1), nf, bn=False),
              _block(_conv(nf, 2 * nf, 4, 2, 1), 2 * nf),
              _block(_conv(2 * nf, 4 * nf, 4, 2, 1), 4 * nf),
              _block(_conv(4 * nf, 8 * nf, 4, 2, 1), 8 * nf)]
    return Encoder(stages, _block(_conv(8 * nf, nh, 4, 1, 0), nh, activation="tanh"), nh)


def dcgan_decoder(nc, nin, nf, skip):
    k = 2 if skip else 1
    first = _block(_deconv(nin, 8 * nf, 4, 1, 0), 8 * nf)
    stages = [_block(_deconv(8 * nf * k, 4 * nf, 4, 2, 1), 4 * nf),
              _block(_deconv(4 * nf * k, 2 * nf, 4, 2, 1), 2 * nf),
              _block(_deconv(2 * nf * k, nf, 4, 2, 1), nf),
              nn.SequentialCell([_deconv(nf * k, nc, 4, 2, 1)])]
    return Decoder(first, stages, skip)


def vgg_encoder(nc, nh, nf):
    """The reference's VGG64Encoder: 3x3 blocks, max-pooling between stages."""
    def blocks(*chans):
        return [_block(_conv(a, b, 3, 1, 1), b) for a, b in zip(chans[:-1], chans[1:])]
    stages = [nn.SequentialCell(blocks(nc, nf, nf)),
              nn.SequentialCell([MaxPool2x()] + blocks(nf, 2 * nf, 2 * nf)),
              nn.SequentialCell([MaxPool2x()] + blocks(2 * nf, 4 * nf, 4 * nf, 4 * nf)),
              nn.SequentialCell([MaxPool2x()] + blocks(4 * nf, 8 * nf, 8 * nf, 8 * nf))]
    last = nn.SequentialCell([MaxPool2x(), _block(_conv(8 * nf, nh, 4, 1, 0), nh, activation="tanh")])
    return Encoder(stages, last, nh)


def vgg_decoder(nc, nin, nf, skip):
    k = 2 if skip else 1

    def blocks(*chans):
        return [_block(_conv(a, b, 3, 1, 1), b) for a, b in zip(chans[:-1], chans[1:])]
    first = nn.SequentialCell([_block(_deconv(nin, 8 * nf, 4, 1, 0), 8 * nf), Upsample2x()])
    stages = [nn.SequentialCell(blocks(8 * nf * k, 8 * nf, 8 * nf, 4 * nf) + [Upsample2x()]),
              nn.SequentialCell(blocks(4 * nf * k, 4 * nf, 4 * nf, 2 * nf) + [Upsample2x()]),
              nn.SequentialCell(blocks(2 * nf * k, 2 * nf, nf) + [Upsample2x()]),
              nn.SequentialCell(blocks(nf * k, nf) + [_deconv(nf, nc, 3, 1, 1)])]
    return Decoder(first, stages, skip)


ARCHITECTURES = {"dcgan": (dcgan_encoder, dcgan_decoder), "vgg": (vgg_encoder, vgg_decoder)}


class StuffedConvTranspose(nn.Cell):
    """A Conv2dTranspose computed as zero-stuffing + padding + a convolution with the flipped
    kernel: the same numbers from ops every runtime has (MindSpore's ONNX export has no
    ConvTranspose). Built from a trained nn.Conv2dTranspose (weights [in, out, k, k])."""

    def __init__(self, deconv):
        super().__init__()
        w = deconv.weight.asnumpy()
        k = w.shape[2]
        self.stride = deconv.stride[0] if isinstance(deconv.stride, tuple) else deconv.stride
        pad = deconv.padding[0] if isinstance(deconv.padding, tuple) else deconv.padding
        before, after = k - 1 - pad, k - pad - self.stride
        self.pad = ops.Pad(((0, 0), (0, 0), (before, after), (before, after)))
        self.stuff = ops.Pad(((0, 0), (0, 0), (0, 0), (0, self.stride - 1), (0, 0), (0, self.stride - 1)))
        flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
        self.conv = Conv2d(w.shape[0], w.shape[1], k, 1, pad_mode="valid", has_bias=False,
                              weight_init=ms.Tensor(flipped))
        self.conv.weight.name = deconv.weight.name  # it takes the replaced cell's place (and unique name)

    def construct(self, x):
        if self.stride > 1:
            n, c, h, w = x.shape
            s = self.stride
            x = self.stuff(ops.reshape(x, (n, c, h, 1, w, 1)))
            x = ops.reshape(x, (n, c, h * s, w * s))
        return self.conv(self.pad(x))


def replace_transposed_convs(cell):
    """Swap every nn.Conv2dTranspose under cell for a StuffedConvTranspose (for ONNX export)."""
    for name, child in list(cell.name_cells().items()):
        if isinstance(child, nn.Conv2dTranspose):
            if isinstance(cell, nn.SequentialCell):  # keeps its own list of cells beside _cells
                cell[int(name)] = StuffedConvTranspose(child)
            else:
                cell.insert_child_to_cell(name, StuffedConvTranspose(child))
        else:
            replace_transposed_convs(child)
    return cell
