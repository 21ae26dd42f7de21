"""SRVP: Stochastic Latent Residual Video Prediction (Franceschi et al., ICML 2020).

Frames are encoded one by one (DCGAN 64x64 encoder); a content vector w pools the
conditioning encodings; the state y_1 is inferred from the first nt_inf encodings and then
evolves in latent space only, y_{t+1} = y_t + dt * f(y_t, z_{t+1}), with z drawn from an
LSTM posterior over the encodings (training, conditioning frames) or from the learned prior
N(mu(y_t), sigma(y_t)) (the future). Each frame is decoded from (w, y_t) alone, so
prediction never feeds generated frames back through the encoder.

Registry contract (nets/base.py): net(frames [B,T,H,W,C], mask) -> [B, T-1, H, W, C]. The
mask is not read: SRVP conditions on exactly input_length frames (the seed's nt_cond) and,
outside training, never encodes the frames after them. While training, the net returns
(frames, term) with term = ELBO - MSE(frames): NetWithLoss adds the MSE back, so the loss
it minimises is exactly the negative ELBO (both MSEs are the same graph value, their
gradients cancel), with no change to NetWithLoss for the other nets.

Noise: every draw reads a slice of one tensor eps [B, T, max(ny, nz)] ~ N(0, I); row 0 is
y_1's, row t the z of frame t. construct() takes eps (and in training the frame picks) as
optional inputs, which the trainer draws per step from (seed, step) (training_noise), else
draws them from a seeded StandardNormal;
sample(frames, eps) and SRVPSampler take it as an input, so a given eps reproduces a
future exactly (exported graphs included).
"""
import mindspore as ms
from mindspore import nn, ops

from engine.errors import UserError
from layers.srvp_blocks import (ARCHITECTURES, LSTMCell, MLP, gaussian_nll, kl_normal, kl_std_normal, rsample,
                                split_gaussian)


class SRVP(nn.Cell):
    def __init__(self, seq_length, nt_cond, nt_inf, nc=1, ny=20, nz=20, nf=64, nhx=128, nh_inf=256,
                 nlayers_inf=3, nh_res=512, nlayers_res=4, skipco=False, n_euler_steps=1, obs_scale=1.0,
                 beta_z=1.0, l2_res=1.0, seed=0, archi="dcgan", beta_y=1.0, res_gain=1.41):
        super().__init__()
        if not 1 <= nt_inf <= nt_cond < seq_length:
            raise UserError(f"SRVP: need 1 <= nt_inf ({nt_inf}) <= input_length ({nt_cond}) < seq_length ({seq_length})")
        if archi not in ARCHITECTURES:
            raise UserError(f"config key 'archi': SRVP's encoder/decoder is one of {', '.join(ARCHITECTURES)}, "
                            f"got {archi!r}")
        self.seq_length = seq_length
        self.nt_cond = nt_cond
        self.nt_inf = nt_inf
        self.nc, self.ny, self.nz, self.nhx, self.nh_inf = nc, ny, nz, nhx, nh_inf
        self.noise_dim = max(ny, nz)  # noise_dim_of(cfg)
        self.skipco = skipco
        self.n_euler_steps = int(n_euler_steps)
        self.dt = 1.0 / self.n_euler_steps
        self.obs_scale = float(obs_scale)
        self.beta_y = float(beta_y)
        self.beta_z = float(beta_z)
        self.l2_res = float(l2_res)
        make_encoder, make_decoder = ARCHITECTURES[archi]
        self.encoder = make_encoder(nc, nhx, nf)
        self.decoder = make_decoder(nc, nh_inf + ny, nf, skipco)
        self.w_proj = nn.SequentialCell([nn.Dense(nhx, nh_inf), nn.ReLU()])
        self.w_inf = nn.SequentialCell([nn.Dense(nh_inf, nh_inf), nn.Tanh()])
        self.q_y = MLP(nhx * nt_inf, nh_inf, 2 * ny, nlayers_inf)
        self.inf_z = LSTMCell(nhx, nh_inf)
        self.q_z = nn.Dense(nh_inf, 2 * nz)
        self.p_z = MLP(ny, nh_res, 2 * nz, nlayers_res)
        self.dynamics = MLP(ny + nz, nh_res, ny, nlayers_res, orthogonal_gain=res_gain)
        self.normal = ops.StandardNormal(seed=int(seed), seed2=7)
        self.uniform = ops.UniformReal(seed=int(seed), seed2=11)

    @staticmethod
    def noise_dim_of(cfg):
        return max(cfg.ny, cfg.nz)

    @classmethod
    def from_config(cls, cfg):
        if cfg.patch_size != 1:
            raise UserError(f"config key 'patch_size': SRVP works on whole frames, set it to 1 (got {cfg.patch_size})")
        if cfg.img_width != 64 or cfg.img_height != 64:
            raise UserError(f"config key 'img_width': SRVP's DCGAN encoder takes 64x64 frames (got {cfg.img_height}x{cfg.img_width})")
        return cls(cfg.seq_length, cfg.input_length, cfg.nt_inf, cfg.img_channel, cfg.ny, cfg.nz, cfg.nf, cfg.nhx,
                   cfg.nh_inf, cfg.nlayers_inf, cfg.nh_res, cfg.nlayers_res, cfg.skipco, cfg.n_euler_steps,
                   cfg.obs_scale, cfg.beta_z, cfg.l2_res, cfg.seed, cfg.archi, cfg.beta_y, cfg.res_gain)

    def draw_noise(self, batch):
        return self.normal((batch, self.seq_length, self.noise_dim))

    def training_noise(self, rng, batch):
        """The random inputs of one training step, drawn on the host from a numpy Generator:
        eps [batch, T, noise_dim] ~ N(0, I) and picks [batch, 2, T] ~ U(0, 1). The trainer
        seeds the Generator with (seed, step), so a resumed run draws what an uninterrupted
        one would have (the in-graph StandardNormal's state is not in a checkpoint)."""
        eps = rng.standard_normal((batch, self.seq_length, self.noise_dim)).astype("float32")
        picks = rng.random((batch, 2, self.seq_length)).astype("float32")
        return eps, picks

    def construct(self, frames, mask, eps=None, picks=None):
        if eps is None:
            eps = self.draw_noise(frames.shape[0])
        if self.training:
            if picks is None:
                picks = self.uniform((frames.shape[0], 2, self.seq_length))
            x_hat, loss, _ = self.elbo(frames, eps, picks)
            out = x_hat[:, 1:]
            mse = ops.mean(ops.square(out - frames[:, 1:]))
            return out, loss - mse
        return self.sample(frames, eps)

    def sample(self, frames, eps):
        """Frames 2..T predicted from the first nt_cond frames with the noise eps."""
        out, _, _ = self._run(frames, eps, False)
        return out

    def elbo(self, frames, eps, picks=None):
        """(reconstructed frames 1..T, negative ELBO per sequence, its parts as a tuple
        (nll, kl_y, kl_z, l2 of the residuals), each summed over time and units, mean over
        the batch): z from the posterior at every step.

        picks [B, 2, T] ~ U(0, 1) choose, as the reference does in training, the nt_inf frames
        (anywhere in the sequence) that make the content w (row 0: the nt_inf largest keys)
        and the frame whose encoder maps feed the skip connections (row 1: the largest key).
        Without picks the test-time choices are used: the last nt_inf conditioning frames
        and the last conditioning frame."""
        return self._run(frames, eps, True, picks)

    def _encode(self, frames):
        """frames [B, n, H, W, C] -> encodings [B, n, nhx] and, with skip connections, the
        encoder maps of every frame [B, n, C', H', W'] (deepest first)."""
        b, n = frames.shape[0], frames.shape[1]
        x = ops.transpose(frames, (0, 1, 4, 2, 3))
        x = ops.reshape(x, (b * n,) + x.shape[2:])
        code, skips = self.encoder(x)
        per_frame = ()
        if self.skipco:
            for s in skips:
                per_frame = per_frame + (ops.reshape(s, (b, n) + s.shape[1:]),)
        return ops.reshape(code, (b, n, self.nhx)), per_frame

    def _content(self, hx, picks):
        """w from nt_inf encodings through the permutation-invariant sum (reference infer_w)."""
        if picks is None:
            chosen = hx[:, self.nt_cond - self.nt_inf:self.nt_cond]
        else:
            _, idx = ops.topk(picks[:, 0, :hx.shape[1]], self.nt_inf)
            idx = ops.tile(ops.expand_dims(idx, -1), (1, 1, self.nhx))
            chosen = ops.gather_elements(hx, 1, idx)
        return self.w_inf(ops.reduce_sum(self.w_proj(chosen), 1))

    def _skips(self, per_frame, picks):
        chosen = ()
        if picks is None:
            for s in per_frame:
                chosen = chosen + (s[:, self.nt_cond - 1],)
            return chosen
        n = per_frame[0].shape[1]
        onehot = ops.one_hot(ops.argmax(picks[:, 1, :n], -1), n, ms.Tensor(1.0, ms.float32),
                             ms.Tensor(0.0, ms.float32))
        for s in per_frame:
            weight = ops.reshape(onehot, onehot.shape + (1, 1, 1))
            chosen = chosen + (ops.reduce_sum(s * weight, 1),)
        return chosen

    def _decode(self, w, y, skips):
        """w [B, nh_inf], y [B, T, ny] -> frames [B, T, H, W, C]."""
        b, n = y.shape[0], y.shape[1]
        w_rep = ops.tile(ops.expand_dims(w, 1), (1, n, 1))
        code = ops.reshape(ops.concat((w_rep, y), axis=-1), (b * n, self.nh_inf + self.ny))
        rep = ()
        for s in skips:
            s = ops.tile(ops.expand_dims(s, 1), (1, n, 1, 1, 1))
            rep = rep + (ops.reshape(s, (b * n,) + s.shape[2:]),)
        x = self.decoder(code, rep)
        x = ops.reshape(x, (b, n) + x.shape[1:])
        return ops.transpose(x, (0, 1, 3, 4, 2))

    def _run(self, frames, eps, train, picks=None):
        b = frames.shape[0]
        seen = self.seq_length if train else self.nt_cond  # the future is never encoded at test time
        hx, per_frame = self._encode(frames[:, :seen])
        w = self._content(hx, picks)
        skips = self._skips(per_frame, picks) if self.skipco else ()

        q_y_mean, q_y_std = split_gaussian(self.q_y(ops.reshape(hx[:, :self.nt_inf], (b, self.nt_inf * self.nhx))))
        y = rsample(q_y_mean, q_y_std, eps[:, 0, :self.ny])
        kl_y = ops.reduce_sum(kl_std_normal(q_y_mean, q_y_std)) / b

        h = ops.zeros((b, self.nh_inf), ms.float32)
        c = ops.zeros((b, self.nh_inf), ms.float32)
        h, c = self.inf_z(hx[:, 0], h, c)
        ys = (y,)
        kl_z = ops.zeros((), ms.float32)
        l2 = ops.zeros((), ms.float32)
        for t in range(1, self.seq_length):
            p_mean, p_std = split_gaussian(self.p_z(y))
            if t < seen:
                h, c = self.inf_z(hx[:, t], h, c)
                q_mean, q_std = split_gaussian(self.q_z(h))
                z = rsample(q_mean, q_std, eps[:, t, :self.nz])
                if train:
                    kl_z = kl_z + ops.reduce_sum(kl_normal(q_mean, q_std, p_mean, p_std))
            else:
                z = rsample(p_mean, p_std, eps[:, t, :self.nz])
            for _ in range(self.n_euler_steps):  # z is held over the sub-steps of one frame
                res = self.dt * self.dynamics(ops.concat((y, z), axis=-1))
                y = y + res
                # the reference's penalty: the L2 norm (not squared) of each residual
                l2 = l2 + ops.reduce_sum(ops.sqrt(ops.reduce_sum(ops.square(res), -1) + 1e-12))
            ys = ys + (y,)
        y_all = ops.stack(ys, axis=1)
        if not train:
            out = self._decode(w, y_all[:, 1:], skips)
            return out, kl_y, (kl_y,)
        x_hat = self._decode(w, y_all, skips)
        nll = ops.reduce_sum(gaussian_nll(x_hat, frames, self.obs_scale)) / b
        kl_z = kl_z / b
        l2 = l2 / b
        loss = nll + self.beta_y * kl_y + self.beta_z * kl_z + self.l2_res * l2
        return x_hat, loss, (nll, kl_y, kl_z, l2)


class SRVPSampler(nn.Cell):
    """The exportable sampling graph: (first nt_cond frames [B, nt_cond, H, W, C],
    noise [B, T, max(ny, nz)]) -> predicted future [B, T - nt_cond, H, W, C]."""

    def __init__(self, net):
        super().__init__(auto_prefix=False)
        self.net = net
        self.net.set_train(False)
        self.future = net.seq_length - net.nt_cond

    def construct(self, inputs, noise):
        b = inputs.shape[0]
        pad = ops.zeros((b, self.future) + inputs.shape[2:], ms.float32)
        out = self.net.sample(ops.concat((inputs, pad), axis=1), noise)
        return out[:, out.shape[1] - self.future:]
