"""SimVP's and TAU's blocks (recurrent-free video prediction), as in OpenSTL's simvp_modules:

- ConvSC: conv (stride 2 to downsample; conv to 4x channels + PixelShuffle(2) to upsample)
  -> GroupNorm(2) -> SiLU. Padding (k - stride + 1) // 2.
- gInception_ST (SimVP v1's IncepU translator): 1x1 conv, then the sum of grouped convs of
  kernels 3, 5, 7, 11, each -> GroupNorm(groups) -> LeakyReLU(0.2).
- GASubBlock (SimVP v2's gated spatiotemporal attention, gSTA):
  x + drop_path(ls1 * SpatialAttention(BN(x))), then x + drop_path(ls2 * MixMlp(BN(x))), with
  SpatialAttention = proj_2(LKA(GELU(proj_1(x)))) + x and the large-kernel attention LKA =
  depthwise 5x5 -> depthwise 7x7 dilation 3 -> 1x1 to 2C -> f * sigmoid(g);
  MixMlp = 1x1 -> depthwise 3x3 -> GELU -> dropout -> 1x1 -> dropout.
- TAUSubBlock (TAU): a gSTA block whose attention is TemporalAttention (statical large-kernel
  attention times a squeeze-and-excitation dynamical attention).
Parameter names follow OpenSTL's state_dict where the layout allows (conv.conv.*,
conv.norm.*, norm1.*, attn.proj_1.*, ...), which keeps a converter a renaming.
"""
import math

import numpy as np
import mindspore as ms
from mindspore import nn, ops
from mindspore.common.initializer import Normal, TruncatedNormal, initializer
from layers import native
from layers.activations import GELU
from layers.conv import Conv2d


def conv2d(c_in, c_out, kernel, stride=1, padding=0, dilation=1, groups=1, has_bias=True):
    return Conv2d(c_in, c_out, kernel, stride=stride, pad_mode="pad", padding=padding, dilation=dilation,
                     group=groups, has_bias=has_bias)


class DropPath(nn.Cell):
    """Stochastic depth: in training each sample's branch is dropped with probability p and
    the kept ones scaled by 1 / (1 - p); identity in inference."""

    def __init__(self, p):
        super().__init__()
        self.keep = 1.0 - float(p)

    def construct(self, x):
        if not self.training or self.keep >= 1.0:
            return x
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        mask = ops.floor(self.keep + ops.uniform(shape, ms.Tensor(0.0, ms.float32), ms.Tensor(1.0, ms.float32)))
        return x / self.keep * mask


class GELUForExport(nn.Cell):
    """Exact GELU, x * Phi(x), with erf from Abramowitz & Stegun 7.1.26 (absolute error under
    1.5e-7, float32's own resolution near 1): MindSpore 2.10 cannot export its Erf (nor GeLU)
    to ONNX. Swapped in for nn.GELU by SimVP.use_exportable_ops() before an ONNX export only."""

    def construct(self, x):
        z = ops.abs(x) * 0.7071067811865476
        t = ops.div(ops.ones_like(z), 1.0 + 0.3275911 * z)  # 1.0 / (...) would be Reciprocal: not exportable
        poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
        erf_abs = 1.0 - poly * ops.exp(-z * z)  # erf(|x| / sqrt 2)
        # x * sign(x) * erf(|x| / sqrt 2) = |x| * erf_abs: no Sign op (not exportable either)
        return 0.5 * (x + ops.abs(x) * erf_abs)


def use_exportable_ops(net):
    """Replace every nn.GELU under net by GELUForExport (same maths, ONNX-exportable ops)."""
    for name, cell in list(net.cells_and_names()):
        for attr, child in list(cell._cells.items()):  # noqa: SLF001  (MindSpore keeps children here)
            if isinstance(child, nn.GELU):
                setattr(cell, attr, GELUForExport())
    return net


class GroupNorm(nn.Cell):
    """nn.GroupNorm's maths (biased variance, eps inside the root, per-channel gamma and beta,
    parameters named gamma and beta as there). On the CPU it runs as the native LayerNorm
    kernel in its GroupNorm form (layers/native/layer_norm.cc: one pass for the statistics and
    one for the output each way, where the MindSpore-op form takes ~15 full-size ops); exports
    (layers.conv.standard_operators) and other devices use reductions and elementwise ops,
    since MindSpore 2.10 cannot export its GroupNorm primitive to ONNX."""

    def __init__(self, groups, channels, eps=1e-5):
        super().__init__()
        self.groups, self.eps = groups, eps
        self.gamma = ms.Parameter(ms.Tensor(np.ones(channels, np.float32)), name="gamma")
        self.beta = ms.Parameter(ms.Tensor(np.zeros(channels, np.float32)), name="beta")
        self.native = native.layer_norm()
        self.native_on = True  # False while exporting
        self.native_cfg = ms.Tensor(np.array([eps, groups], np.float32))  # (eps, G): the kernel's GroupNorm form

    def construct(self, x):
        if self.native_on and self.native is not None and x.dtype == ms.float32:
            return self.native(x, self.gamma, self.beta, self.native_cfg)
        b, c, h, w = x.shape
        g = ops.reshape(x, (b, self.groups, -1))
        mean = ops.mean(g, axis=2, keep_dims=True)
        centred = g - mean
        var = ops.mean(centred * centred, axis=2, keep_dims=True)
        y = ops.reshape(centred / ops.sqrt(var + self.eps), (b, c, h, w))
        return y * ops.reshape(self.gamma, (1, c, 1, 1)) + ops.reshape(self.beta, (1, c, 1, 1))


class PixelShuffle(nn.Cell):
    """[B, C*r*r, H, W] -> [B, C, H*r, W*r], PyTorch's channel order (c, i, j), written with
    reshape and transpose so that ONNX export and every backend take it."""

    def __init__(self, r):
        super().__init__()
        self.r = r

    def construct(self, x):
        b, c, h, w = x.shape
        r = self.r
        x = ops.reshape(x, (b, c // (r * r), r, r, h, w))
        x = ops.transpose(x, (0, 1, 4, 2, 5, 3))
        return ops.reshape(x, (b, c // (r * r), h * r, w * r))


class BasicConv2d(nn.Cell):
    def __init__(self, c_in, c_out, kernel, stride=1, padding=0, upsampling=False, act_norm=False):
        super().__init__()
        self.act_norm = act_norm
        if upsampling:
            self.conv = nn.SequentialCell([conv2d(c_in, c_out * 4, kernel, 1, padding), PixelShuffle(2)])
        else:
            self.conv = conv2d(c_in, c_out, kernel, stride, padding)
        self.norm = GroupNorm(2, c_out)
        self.act = nn.SiLU()
        # OpenSTL: conv weights ~ trunc_normal(std 0.02), biases 0
        for cell in self.conv.cells() if upsampling else [self.conv]:
            if isinstance(cell, nn.Conv2d):
                cell.weight.set_data(initializer(TruncatedNormal(0.02), cell.weight.shape, ms.float32))
                cell.bias.set_data(initializer("zeros", cell.bias.shape, ms.float32))

    def construct(self, x):
        y = self.conv(x)
        if self.act_norm:
            y = self.act(self.norm(y))
        return y


class ConvSC(nn.Cell):
    def __init__(self, c_in, c_out, kernel=3, downsampling=False, upsampling=False, act_norm=True):
        super().__init__()
        stride = 2 if downsampling else 1
        padding = (kernel - stride + 1) // 2
        self.conv = BasicConv2d(c_in, c_out, kernel, stride, padding, upsampling, act_norm)

    def construct(self, x):
        return self.conv(x)


def sampling_pattern(n, reverse=False):
    """[False, True, False, True, ...][:n]: which of the N_S ConvSC blocks resample."""
    pattern = ([False, True] * ((n + 1) // 2))[:n]
    return list(reversed(pattern)) if reverse else pattern


class GroupConv2d(nn.Cell):
    def __init__(self, c_in, c_out, kernel, padding, groups, act_norm=True):
        super().__init__()
        if c_in % groups != 0:
            groups = 1
        self.act_norm = act_norm
        self.conv = conv2d(c_in, c_out, kernel, 1, padding, groups=groups)
        self.norm = GroupNorm(groups, c_out)
        self.activate = nn.LeakyReLU(0.2)

    def construct(self, x):
        y = self.conv(x)
        if self.act_norm:
            y = self.activate(self.norm(y))
        return y


class InceptionST(nn.Cell):
    """gInception_ST: a 1x1 conv to c_hid, then the sum of one GroupConv2d per kernel size."""

    def __init__(self, c_in, c_hid, c_out, kernels=(3, 5, 7, 11), groups=8):
        super().__init__()
        self.conv1 = conv2d(c_in, c_hid, 1)
        self.layers = nn.CellList([GroupConv2d(c_hid, c_out, k, k // 2, groups) for k in kernels])

    def construct(self, x):
        x = self.conv1(x)
        y = self.layers[0](x)
        for i in range(1, len(self.layers)):
            y = y + self.layers[i](x)
        return y


class MidIncepNet(nn.Cell):
    """SimVP v1's translator: N_T InceptionST blocks down, N_T up with U-Net skips."""

    def __init__(self, c_in, c_hid, n_t, kernels=(3, 5, 7, 11), groups=8):
        super().__init__()
        if n_t < 2:
            raise ValueError("N_T must be at least 2 for the IncepU translator")
        self.n_t = n_t
        enc = [InceptionST(c_in, c_hid // 2, c_hid, kernels, groups)]
        enc += [InceptionST(c_hid, c_hid // 2, c_hid, kernels, groups) for _ in range(1, n_t)]
        dec = [InceptionST(c_hid, c_hid // 2, c_hid, kernels, groups)]
        dec += [InceptionST(2 * c_hid, c_hid // 2, c_hid, kernels, groups) for _ in range(1, n_t - 1)]
        dec.append(InceptionST(2 * c_hid, c_hid // 2, c_in, kernels, groups))
        self.enc = nn.CellList(enc)
        self.dec = nn.CellList(dec)

    def construct(self, x):
        skips = ()
        z = x
        for i in range(self.n_t):
            z = self.enc[i](z)
            if i < self.n_t - 1:
                skips = skips + (z,)
        z = self.dec[0](z)
        for i in range(1, self.n_t):
            z = self.dec[i](ops.concat((z, skips[self.n_t - 1 - i]), axis=1))
        return z


class AttentionModule(nn.Cell):
    """Large-kernel attention: depthwise (2d-1)x(2d-1), depthwise dilated, 1x1 to 2C, f * sigmoid(g)."""

    def __init__(self, dim, kernel_size, dilation=3):
        super().__init__()
        d_k = 2 * dilation - 1
        d_p = (d_k - 1) // 2
        dd_k = kernel_size // dilation + ((kernel_size // dilation) % 2 - 1)
        dd_p = dilation * (dd_k - 1) // 2
        self.dim = dim
        self.conv0 = conv2d(dim, dim, d_k, padding=d_p, groups=dim)
        self.conv_spatial = conv2d(dim, dim, dd_k, padding=dd_p, dilation=dilation, groups=dim)
        self.conv1 = conv2d(dim, 2 * dim, 1)
        # on the CPU the gate is one native pass each way (layers/native/gelu.cc); exports
        # (standard_operators switches native_on off) and other devices keep the ops
        self.native_gate = native.sigmoid_gate()
        self.native_on = True

    def construct(self, x):
        f_g = self.conv1(self.conv_spatial(self.conv0(x)))
        if self.native_on and self.native_gate is not None and f_g.dtype == ms.float32:
            return self.native_gate(f_g)
        return ops.sigmoid(f_g[:, self.dim:]) * f_g[:, :self.dim]


class SpatialAttention(nn.Cell):
    def __init__(self, dim, kernel_size=21):
        super().__init__()
        self.proj_1 = conv2d(dim, dim, 1)
        self.activation = GELU()
        self.spatial_gating_unit = AttentionModule(dim, kernel_size)
        self.proj_2 = conv2d(dim, dim, 1)

    def construct(self, x):
        return self.proj_2(self.spatial_gating_unit(self.activation(self.proj_1(x)))) + x


class MixMlp(nn.Cell):
    def __init__(self, dim, hidden, drop=0.0):
        super().__init__()
        self.fc1 = conv2d(dim, hidden, 1)
        self.dwconv = conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.act = GELU()
        self.fc2 = conv2d(hidden, dim, 1)
        self.drop = nn.Dropout(p=drop) if drop > 0 else nn.Identity()

    def construct(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.dwconv(self.fc1(x))))))


class GASubBlock(nn.Cell):
    """gSTA: BN -> spatial attention and BN -> MixMlp, each a layer-scaled residual."""

    def __init__(self, dim, kernel_size=21, mlp_ratio=4.0, drop=0.0, drop_path=0.0, init_value=1e-2):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(dim, eps=1e-5, momentum=0.9)  # PyTorch momentum 0.1
        self.attn = SpatialAttention(dim, kernel_size)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.BatchNorm2d(dim, eps=1e-5, momentum=0.9)
        self.mlp = MixMlp(dim, int(dim * mlp_ratio), drop)
        self.layer_scale_1 = ms.Parameter(ms.Tensor(np.full((dim,), init_value, np.float32)), name="layer_scale_1")
        self.layer_scale_2 = ms.Parameter(ms.Tensor(np.full((dim,), init_value, np.float32)), name="layer_scale_2")
        # OpenSTL: conv weights ~ N(0, sqrt(2 / fan_out)), fan_out = k*k*C_out / groups; biases 0
        for _, cell in self.cells_and_names():
            if isinstance(cell, nn.Conv2d):
                k0, k1 = cell.kernel_size
                fan_out = k0 * k1 * cell.out_channels // cell.group
                cell.weight.set_data(initializer(Normal(math.sqrt(2.0 / fan_out)), cell.weight.shape, ms.float32))
                cell.bias.set_data(initializer("zeros", cell.bias.shape, ms.float32))

    def construct(self, x):
        ls1 = ops.reshape(self.layer_scale_1, (1, -1, 1, 1))
        ls2 = ops.reshape(self.layer_scale_2, (1, -1, 1, 1))
        x = x + self.drop_path(ls1 * self.attn(self.norm1(x)))
        return x + self.drop_path(ls2 * self.mlp(self.norm2(x)))


class TemporalAttentionModule(nn.Cell):
    """TAU's attention: the large-kernel attention's convs (depthwise 5x5, depthwise 7x7 with
    dilation 3, 1x1 to C) give the intra-frame statical attention f; a squeeze-and-excitation
    of the input (global average, Linear to C / r, ReLU, Linear back, sigmoid; no biases,
    r = max(C // 16, 4)) the inter-frame dynamical attention s; out = s * f * x."""

    def __init__(self, dim, kernel_size, dilation=3, reduction=16):
        super().__init__()
        d_k = 2 * dilation - 1
        d_p = (d_k - 1) // 2
        dd_k = kernel_size // dilation + ((kernel_size // dilation) % 2 - 1)
        dd_p = dilation * (dd_k - 1) // 2
        self.conv0 = conv2d(dim, dim, d_k, padding=d_p, groups=dim)
        self.conv_spatial = conv2d(dim, dim, dd_k, padding=dd_p, dilation=dilation, groups=dim)
        self.conv1 = conv2d(dim, dim, 1)
        self.reduction = max(dim // reduction, 4)
        self.fc = nn.SequentialCell([nn.Dense(dim, dim // self.reduction, has_bias=False), nn.ReLU(),
                                     nn.Dense(dim // self.reduction, dim, has_bias=False), nn.Sigmoid()])

    def construct(self, x):
        f_x = self.conv1(self.conv_spatial(self.conv0(x)))
        b, c = x.shape[0], x.shape[1]
        se = self.fc(ops.mean(x, axis=(2, 3)))
        return ops.reshape(se, (b, c, 1, 1)) * f_x * x


class TemporalAttention(nn.Cell):
    def __init__(self, dim, kernel_size=21):
        super().__init__()
        self.proj_1 = conv2d(dim, dim, 1)
        self.activation = GELU()
        self.spatial_gating_unit = TemporalAttentionModule(dim, kernel_size)
        self.proj_2 = conv2d(dim, dim, 1)

    def construct(self, x):
        return self.proj_2(self.spatial_gating_unit(self.activation(self.proj_1(x)))) + x


class TAUSubBlock(GASubBlock):
    """A gSTA block whose attention is TAU's temporal attention (OpenSTL replaces it after the
    block's weight init, so its convs keep the framework's default init)."""

    def __init__(self, dim, kernel_size=21, mlp_ratio=4.0, drop=0.0, drop_path=0.0, init_value=1e-2):
        super().__init__(dim, kernel_size, mlp_ratio, drop, drop_path, init_value)
        self.attn = TemporalAttention(dim, kernel_size)


BLOCKS = {"gsta": GASubBlock, "tau": TAUSubBlock}


class MetaBlock(nn.Cell):
    """A gSTA or TAU block, with a 1x1 reduction when the channel count changes."""

    def __init__(self, c_in, c_out, mlp_ratio, drop, drop_path, block="gsta"):
        super().__init__()
        self.block = BLOCKS[block](c_in, 21, mlp_ratio, drop, drop_path)
        self.reduce = c_in != c_out
        if self.reduce:
            self.reduction = conv2d(c_in, c_out, 1)

    def construct(self, x):
        z = self.block(x)
        return self.reduction(z) if self.reduce else z


class MidMetaNet(nn.Cell):
    """SimVP v2's translator: N_T gSTA blocks, c_in -> c_hid -> ... -> c_in, drop-path rates
    rising linearly from 0.01 to drop_path (the last block: drop_path)."""

    def __init__(self, c_in, c_hid, n_t, mlp_ratio=4.0, drop=0.0, drop_path=0.1, block="gsta"):
        super().__init__()
        if n_t < 2:
            raise ValueError("N_T must be at least 2 for the gSTA / TAU translator")
        rates = np.linspace(1e-2, drop_path, n_t)
        blocks = [MetaBlock(c_in, c_hid, mlp_ratio, drop, float(rates[0]), block)]
        blocks += [MetaBlock(c_hid, c_hid, mlp_ratio, drop, float(rates[i]), block) for i in range(1, n_t - 1)]
        blocks.append(MetaBlock(c_hid, c_in, mlp_ratio, drop, float(drop_path), block))
        self.enc = nn.CellList(blocks)

    def construct(self, x):
        for block in self.enc:
            x = block(x)
        return x
