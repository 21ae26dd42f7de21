"""SimVP (Gao et al. 2022, "SimVP: Simpler yet Better Video Prediction"; Tan et al. 2022,
SimVP v2 with gated spatiotemporal attention), as OpenSTL's SimVP_Model: no recurrence.

    frames [B, T_in, C, H, W] -> encoder (N_S ConvSC blocks, every second one downsampling
    by 2, shared over time) -> [B, T_in * hid_S, H', W'] -> translator (N_T blocks over all
    input frames at once: IncepU or gSTA) -> decoder (N_S ConvSC blocks, upsampling by
    PixelShuffle, the first encoder block's output added before the last) -> 1x1 readout.

The net follows the registry's contract (nets/base.py): it takes the whole patch-reshaped
clip and the mask, reads only the input_length known frames (the mask does not matter: no
frame is fed back), and returns the seq_length - input_length predicted frames. When that
number differs from input_length, OpenSTL's rolling scheme: the model is applied to its own
last T_in predictions until enough frames exist, the surplus cut off.
"""
from mindspore import nn, ops

from layers.conv import Conv2d
from layers.simvp_blocks import ConvSC, MidIncepNet, MidMetaNet, sampling_pattern, use_exportable_ops
from nets.base import frame_dims

MODEL_TYPES = ("incepu", "gsta", "tau")


class Encoder(nn.Cell):
    def __init__(self, c_in, c_hid, n_s, kernel):
        super().__init__()
        down = sampling_pattern(n_s)
        self.enc = nn.CellList([ConvSC(c_in, c_hid, kernel, downsampling=down[0])]
                               + [ConvSC(c_hid, c_hid, kernel, downsampling=d) for d in down[1:]])

    def construct(self, x):
        enc1 = self.enc[0](x)
        latent = enc1
        for i in range(1, len(self.enc)):
            latent = self.enc[i](latent)
        return latent, enc1


class Decoder(nn.Cell):
    def __init__(self, c_hid, c_out, n_s, kernel):
        super().__init__()
        up = sampling_pattern(n_s, reverse=True)
        self.dec = nn.CellList([ConvSC(c_hid, c_hid, kernel, upsampling=u) for u in up])
        self.readout = Conv2d(c_hid, c_out, 1, has_bias=True)

    def construct(self, hid, enc1):
        for i in range(len(self.dec) - 1):
            hid = self.dec[i](hid)
        return self.readout(self.dec[len(self.dec) - 1](hid + enc1))


class SimVP(nn.Cell):
    def __init__(self, seq_length, input_length, channels, height, width, hid_s=16, hid_t=256, n_s=4, n_t=4,
                 model_type="gsta", mlp_ratio=8.0, drop=0.0, drop_path=0.0, kernel_enc=3, kernel_dec=3):
        super().__init__()
        if model_type not in MODEL_TYPES:
            raise ValueError(f"simvp_model_type must be one of {MODEL_TYPES}, got {model_type!r}")
        scale = 2 ** (n_s // 2)
        if height % scale or width % scale:
            raise ValueError(f"SimVP with N_S={n_s} halves the frames {n_s // 2} times: the patch-reshaped frame "
                             f"size {height}x{width} must be divisible by {scale}")
        self.input_length = input_length
        self.future = seq_length - input_length
        self.channels, self.height, self.width = channels, height, width
        self.hid_s = hid_s
        self.enc = Encoder(channels, hid_s, n_s, kernel_enc)
        self.dec = Decoder(hid_s, channels, n_s, kernel_dec)
        if model_type == "incepu":
            self.hid = MidIncepNet(input_length * hid_s, hid_t, n_t)
        else:
            self.hid = MidMetaNet(input_length * hid_s, hid_t, n_t, mlp_ratio, drop, drop_path, block=model_type)

    @classmethod
    def from_config(cls, cfg):
        channels, height, width = frame_dims(cfg)
        return cls(cfg.seq_length, cfg.input_length, channels, height, width, hid_s=cfg.hid_S, hid_t=cfg.hid_T,
                   n_s=cfg.N_S, n_t=cfg.N_T, model_type=cfg.simvp_model_type, mlp_ratio=cfg.mlp_ratio,
                   drop=cfg.drop, drop_path=cfg.drop_path, kernel_enc=cfg.spatio_kernel_enc,
                   kernel_dec=cfg.spatio_kernel_dec)

    def use_exportable_ops(self):
        """Before an ONNX export: GELU's erf from elementary ops (layers/simvp_blocks.py)."""
        use_exportable_ops(self)

    def clip(self, x):
        """One application: [B, T_in, C, H, W] -> [B, T_in, C, H, W]."""
        b, t, c, h, w = x.shape
        embed, skip = self.enc(ops.reshape(x, (b * t, c, h, w)))
        _, c2, h2, w2 = embed.shape
        hid = self.hid(ops.reshape(embed, (b, t * c2, h2, w2)))
        y = self.dec(ops.reshape(hid, (b * t, c2, h2, w2)), skip)
        return ops.reshape(y, (b, t, c, h, w))

    def construct(self, frames, mask):
        x = ops.transpose(frames[:, :self.input_length], (0, 1, 4, 2, 3))
        if self.future == self.input_length:
            y = self.clip(x)
        else:
            outs = ()
            made = 0
            while made < self.future:  # static shapes: unrolled at compile time
                x = self.clip(x)
                outs = outs + (x,)
                made += self.input_length
            y = ops.concat(outs, axis=1)[:, :self.future]
        return ops.transpose(y, (0, 1, 3, 4, 2))


def differential_divergence(pred, true, tau=0.1, eps=1e-12):
    """TAU's differential divergence regularization (OpenSTL methods/tau.py diff_div_reg):
    the frame differences of prediction and truth, each flattened per frame and softmaxed
    with temperature tau, compared by KL(p || q) = mean of p * log(p / (q + eps) + eps) over
    batch, frame pairs and elements. Zero for two or fewer predicted frames."""
    b, t = pred.shape[0], pred.shape[1]
    if t <= 2:
        return ops.zeros((), pred.dtype)
    gap_p = ops.reshape(pred[:, 1:] - pred[:, :-1], (b, t - 1, -1))
    gap_t = ops.reshape(true[:, 1:] - true[:, :-1], (b, t - 1, -1))
    p = ops.softmax(gap_p / tau, axis=-1)
    q = ops.softmax(gap_t / tau, axis=-1)
    return ops.mean(p * ops.log(p / (q + eps) + eps))


class TAU(SimVP):
    """TAU (Tan et al., CVPR 2023): SimVP with the temporal attention unit translator, trained
    on MSE + alpha * the differential divergence regularization (returned as the extra
    training term, see engine.trainer.NetWithLoss)."""

    def __init__(self, *args, alpha=0.1, **kwargs):
        super().__init__(*args, model_type="tau", **kwargs)
        self.alpha = alpha

    @classmethod
    def from_config(cls, cfg):
        channels, height, width = frame_dims(cfg)
        return cls(cfg.seq_length, cfg.input_length, channels, height, width, hid_s=cfg.hid_S, hid_t=cfg.hid_T,
                   n_s=cfg.N_S, n_t=cfg.N_T, mlp_ratio=cfg.mlp_ratio, drop=cfg.drop, drop_path=cfg.drop_path,
                   kernel_enc=cfg.spatio_kernel_enc, kernel_dec=cfg.spatio_kernel_dec, alpha=cfg.alpha)

    def construct(self, frames, mask):
        pred = super().construct(frames, mask)
        if self.training:
            return pred, self.alpha * differential_divergence(pred, frames[:, self.input_length:])
        return pred
