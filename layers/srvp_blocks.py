"""Building blocks of SRVP (Franceschi et al., ICML 2020): Gaussian parameter heads,
reparameterised sampling, closed-form KL terms, MLPs, an LSTM cell, and the DCGAN-style
64x64 frame encoder / decoder with skip connections.

Gaussians are parameterised as (mean, softplus(raw) + eps) as in the reference code: the
softplus keeps the scale positive without the exploding gradients of exp(log_sigma).
"""
import math

from mindspore import nn, ops

SCALE_EPS = 1e-4  # floor on every standard deviation: keeps log(scale) and 1/scale finite


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

    def __init__(self, n_in, n_hidden, n_out, n_layers):
        super().__init__()
        sizes = [n_in] + [n_hidden] * (n_layers - 1) + [n_out]
        layers = []
        for i in range(n_layers):
            layers.append(nn.Dense(sizes[i], sizes[i + 1]))
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


def _down(cin, cout, bn=True):
    layers = [nn.Conv2d(cin, cout, 4, 2, pad_mode="pad", padding=1, has_bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.LeakyReLU(0.2))
    return nn.SequentialCell(layers)


def _up(cin, cout):
    return nn.SequentialCell([nn.Conv2dTranspose(cin, cout, 4, 2, pad_mode="pad", padding=1, has_bias=False),
                              nn.BatchNorm2d(cout), nn.LeakyReLU(0.2)])


class DCGANEncoder64(nn.Cell):
    """[N, nc, 64, 64] -> (code [N, nh], skips: the four feature maps, 32x32 down to 4x4)."""

    def __init__(self, nc, nh, nf):
        super().__init__()
        self.c1 = _down(nc, nf, bn=False)
        self.c2 = _down(nf, 2 * nf)
        self.c3 = _down(2 * nf, 4 * nf)
        self.c4 = _down(4 * nf, 8 * nf)
        self.last = nn.Conv2d(8 * nf, nh, 4, 1, pad_mode="valid", has_bias=True)

    def construct(self, x):
        h1 = self.c1(x)
        h2 = self.c2(h1)
        h3 = self.c3(h2)
        h4 = self.c4(h3)
        code = self.last(h4)
        return ops.reshape(code, (code.shape[0], -1)), (h1, h2, h3, h4)


class DCGANDecoder64(nn.Cell):
    """code [N, nin] (+ the encoder's skips) -> frames [N, nc, 64, 64] in (0, 1).

    With skip connections each stage also reads the encoder feature map of its size, which
    carries the static appearance of the conditioning frames (Denton & Fergus's SVG design)."""

    def __init__(self, nc, nin, nf, skip):
        super().__init__()
        self.skip = skip
        k = 2 if skip else 1
        self.first = nn.SequentialCell([nn.Conv2dTranspose(nin, 8 * nf, 4, 1, pad_mode="valid", has_bias=False),
                                        nn.BatchNorm2d(8 * nf), nn.LeakyReLU(0.2)])
        self.u4 = _up(8 * nf * k, 4 * nf)
        self.u3 = _up(4 * nf * k, 2 * nf)
        self.u2 = _up(2 * nf * k, nf)
        self.out = nn.Conv2dTranspose(nf * k, nc, 4, 2, pad_mode="pad", padding=1, has_bias=True)

    def construct(self, code, skips):
        h = self.first(ops.reshape(code, (code.shape[0], code.shape[1], 1, 1)))
        if self.skip:
            h = ops.concat((h, skips[3]), axis=1)
        h = self.u4(h)
        if self.skip:
            h = ops.concat((h, skips[2]), axis=1)
        h = self.u3(h)
        if self.skip:
            h = ops.concat((h, skips[1]), axis=1)
        h = self.u2(h)
        if self.skip:
            h = ops.concat((h, skips[0]), axis=1)
        return ops.sigmoid(self.out(h))
