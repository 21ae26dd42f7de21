"""The train step of our ConvLSTM, PredRNN, PredRNN++, SimVP and TAU written in PyTorch (eager),
for benchmark.py's side-by-side column. Same maths, widths, kernel sizes, frame loop and
scheduled-sampling input as nets/*.py; Adam; MSE over the T-1 generated frames (SimVP / TAU:
over the predicted frames, TAU plus its differential divergence term).

MIM, MAU and PhyDNet are not re-written: the step runs OpenSTL's own MIM_Model, MAU_Model and
PhyDNet_Model (which nets/mim.py, mau.py and phydnet.py follow), loaded from a checkout of
chengtan9907/OpenSTL given as --openstl=PATH (tools/openstl_import.py), with their own
forward and loss; see openstl_model() for the configs and the few changes that keep the work
per step equal to ours.

Needs torch (never needed by the tests), e.g. the throwaway venv of tools/make_torch_fixtures.py:
    /tmp/torchvenv/bin/python tools/torch_step.py --model=predrnn_pp --num_hidden=128,64,64,64 \
        --filter_size=5 --patch_size=4 --img_width=64 --seq_length=20 --input_length=10 \
        --batch_size=2 --layer_norm=1 --steps=3
    /tmp/torchvenv/bin/python tools/torch_step.py --model=mau --openstl=/tmp/OpenSTL --num_hidden=64,64,64,64 \
        --patch_size=1 --sr_size=4 --mau_tau=5 --batch_size=2 --eval
Prints one line 'RESULT {json}' with the median step time after a warm-up step (with --eval:
the median call and that over the batch, ms_per_sequence) and the model's parameter count.
--serve: after the warm-up step print 'READY', then run one timed step per 'step' line read
from stdin (answering 'TIME <s>') until any other line: benchmark.py alternates these steps
with MindSpore's so that both frameworks are timed under the same machine load.
"""
import argparse
import contextlib
import json
import os
import resource
import sys
import time
import types

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def conv(cin, cout, k, bias):
    return nn.Conv2d(cin, cout, k, 1, k // 2, bias=bias)


class ChannelLN(nn.Module):
    """Per-sample statistics over (C, H, W), one scale and shift per channel (our PredRNN++)."""

    def __init__(self, c):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(c, 1, 1))
        self.beta = nn.Parameter(torch.zeros(c, 1, 1))

    def forward(self, x):
        return F.layer_norm(x, x.shape[1:]) * self.gamma + self.beta


def gate(cin, cout, k, ln, bias):
    return nn.Sequential(conv(cin, cout, k, bias), ChannelLN(cout)) if ln else conv(cin, cout, k, bias)


class ConvLSTMCell(nn.Module):
    def __init__(self, cin, c, k, ln):
        super().__init__()
        self.c = c
        self.conv_x = gate(cin, 4 * c, k, ln, False)
        self.conv_h = gate(c, 4 * c, k, ln, False)

    def forward(self, x, h, c):
        i, f, g, o = torch.split(self.conv_x(x) + self.conv_h(h), self.c, 1)
        c = torch.sigmoid(f + 1.0) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class STLSTMCell(nn.Module):
    def __init__(self, cin, c, k, ln):
        super().__init__()
        self.c = c
        self.conv_x = gate(cin, 7 * c, k, ln, False)
        self.conv_h = gate(c, 4 * c, k, ln, False)
        self.conv_m = gate(c, 3 * c, k, ln, False)
        self.conv_o = gate(2 * c, c, k, ln, False)
        self.conv_last = nn.Conv2d(2 * c, c, 1, bias=False)

    def forward(self, x, h, c, m):
        i_x, f_x, g_x, i_xp, f_xp, g_xp, o_x = torch.split(self.conv_x(x), self.c, 1)
        i_h, f_h, g_h, o_h = torch.split(self.conv_h(h), self.c, 1)
        i_m, f_m, g_m = torch.split(self.conv_m(m), self.c, 1)
        c = torch.sigmoid(f_x + f_h + 1.0) * c + torch.sigmoid(i_x + i_h) * torch.tanh(g_x + g_h)
        m = torch.sigmoid(f_xp + f_m + 1.0) * m + torch.sigmoid(i_xp + i_m) * torch.tanh(g_xp + g_m)
        mem = torch.cat((c, m), 1)
        o = torch.sigmoid(o_x + o_h + self.conv_o(mem))
        return o * torch.tanh(self.conv_last(mem)), c, m


class CausalLSTMCell(nn.Module):
    def __init__(self, cin, c, cm, k, ln):
        super().__init__()
        self.c = c
        self.conv_x = gate(cin, 7 * c, k, ln, True)
        self.conv_h = gate(c, 4 * c, k, ln, True)
        self.conv_c = gate(c, 3 * c, k, ln, True)
        self.conv_m = gate(cm, 3 * c, k, ln, True)
        self.conv_c2m = gate(c, 4 * c, k, ln, True)
        self.conv_om = gate(c, c, k, ln, True)
        self.conv_last = nn.Conv2d(2 * c, c, 1)

    def forward(self, x, h, c, m):
        i_h, g_h, f_h, o_h = torch.split(self.conv_h(h), self.c, 1)
        i_c, g_c, f_c = torch.split(self.conv_c(c), self.c, 1)
        i_m, f_m, m_m = torch.split(self.conv_m(m), self.c, 1)
        i_x, g_x, f_x, o_x, i_xp, g_xp, f_xp = torch.split(self.conv_x(x), self.c, 1)
        c = torch.sigmoid(f_x + f_h + f_c + 1.0) * c + torch.sigmoid(i_x + i_h + i_c) * torch.tanh(g_x + g_h + g_c)
        i_c2, g_c2, f_c2, o_c = torch.split(self.conv_c2m(c), self.c, 1)
        m = (torch.sigmoid(f_c2 + f_xp + f_m + 1.0) * torch.tanh(m_m)
             + torch.sigmoid(i_c2 + i_xp + i_m) * torch.tanh(g_c2 + g_xp))
        o = torch.tanh(o_x + o_h + o_c + self.conv_om(m))
        return o * torch.tanh(self.conv_last(torch.cat((c, m), 1))), c, m


class GHU(nn.Module):
    def __init__(self, c, k, ln):
        super().__init__()
        self.c = c
        self.conv_z = gate(c, 2 * c, k, ln, True)
        self.conv_x = gate(c, 2 * c, k, ln, True)

    def forward(self, x, z):
        p, s = torch.split(self.conv_x(x) + self.conv_z(z), self.c, 1)
        s = torch.sigmoid(s)
        return s * torch.tanh(p) + (1 - s) * z


class Net(nn.Module):
    def __init__(self, model, hidden, frame_c, k, ln):
        super().__init__()
        self.model, self.hidden = model, hidden
        cells = []
        for i, c in enumerate(hidden):
            cin = frame_c if i == 0 else hidden[i - 1]
            if model == "convlstm":
                cells.append(ConvLSTMCell(cin, c, k, ln))
            elif model == "predrnn":
                cells.append(STLSTMCell(cin, c, k, ln))
            else:
                cells.append(CausalLSTMCell(cin, c, hidden[i - 1], k, ln))
        self.cells = nn.ModuleList(cells)
        self.ghu = GHU(hidden[0], k, ln) if model == "predrnn_pp" and len(hidden) > 1 else None
        self.conv_last = nn.Conv2d(hidden[-1], frame_c, 1, bias=model == "predrnn_pp")

    def forward(self, frames, mask):
        b, t_len, _, hh, ww = frames.shape
        h = [frames.new_zeros(b, c, hh, ww) for c in self.hidden]
        c = list(h)
        m = frames.new_zeros(b, self.hidden[-1], hh, ww)
        z = frames.new_zeros(b, self.hidden[0], hh, ww)
        x_gen, outs = None, []
        for t in range(t_len - 1):
            if t == 0:
                inp = frames[:, 0]
            else:
                w = mask[:, t].view(b, 1, 1, 1)
                inp = w * frames[:, t] + (1 - w) * x_gen
            for i, cell in enumerate(self.cells):
                if self.model == "convlstm":
                    h[i], c[i] = cell(inp, h[i], c[i])
                else:
                    h[i], c[i], m = cell(inp, h[i], c[i], m)
                inp = h[i]
                if i == 0 and self.ghu is not None:
                    z = self.ghu(h[0], z)
                    inp = z
            x_gen = self.conv_last(inp)
            outs.append(x_gen)
        return torch.stack(outs, 1)


# ---------------------------------------------------------------- SimVP / TAU (nets/simvp.py)
def conv2d(cin, cout, k, stride=1, pad=0, dil=1, groups=1):
    return nn.Conv2d(cin, cout, k, stride, pad, dil, groups)


class ConvSC(nn.Module):
    def __init__(self, cin, cout, k, down=False, up=False):
        super().__init__()
        stride = 2 if down else 1
        pad = (k - stride + 1) // 2
        self.conv = nn.Sequential(conv2d(cin, cout * 4, k, 1, pad), nn.PixelShuffle(2)) if up \
            else conv2d(cin, cout, k, stride, pad)
        self.norm = nn.GroupNorm(2, cout)

    def forward(self, x):
        return F.silu(self.norm(self.conv(x)))


class LKA(nn.Module):
    def __init__(self, dim, tau):
        super().__init__()
        self.conv0 = conv2d(dim, dim, 5, pad=2, groups=dim)
        self.conv_spatial = conv2d(dim, dim, 7, pad=9, dil=3, groups=dim)
        self.tau = tau
        self.conv1 = conv2d(dim, dim if tau else 2 * dim, 1)
        if tau:
            r = max(dim // 16, 4)
            self.fc = nn.Sequential(nn.Linear(dim, dim // r, bias=False), nn.ReLU(),
                                    nn.Linear(dim // r, dim, bias=False), nn.Sigmoid())

    def forward(self, x):
        f = self.conv1(self.conv_spatial(self.conv0(x)))
        if self.tau:
            return self.fc(x.mean((2, 3)))[:, :, None, None] * f * x
        a, g = torch.split(f, f.shape[1] // 2, 1)
        return torch.sigmoid(g) * a


class MetaBlock(nn.Module):
    def __init__(self, cin, cout, mlp_ratio, tau):
        super().__init__()
        self.norm1, self.norm2 = nn.BatchNorm2d(cin), nn.BatchNorm2d(cin)
        self.proj_1, self.proj_2, self.lka = conv2d(cin, cin, 1), conv2d(cin, cin, 1), LKA(cin, tau)
        hid = int(cin * mlp_ratio)
        self.mlp = nn.Sequential(conv2d(cin, hid, 1), conv2d(hid, hid, 3, pad=1, groups=hid), nn.GELU(),
                                 conv2d(hid, cin, 1))
        self.ls1 = nn.Parameter(1e-2 * torch.ones(cin, 1, 1))
        self.ls2 = nn.Parameter(1e-2 * torch.ones(cin, 1, 1))
        self.reduction = conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        y = self.norm1(x)
        x = x + self.ls1 * (self.proj_2(self.lka(F.gelu(self.proj_1(y)))) + y)
        x = x + self.ls2 * self.mlp(self.norm2(x))
        return x if self.reduction is None else self.reduction(x)


class SimVPNet(nn.Module):
    def __init__(self, t_in, t_out, c, hid_s, hid_t, n_s, n_t, mlp_ratio, tau):
        super().__init__()
        self.t_in, self.t_out = t_in, t_out
        down = ([False, True] * n_s)[:n_s]
        self.enc = nn.ModuleList([ConvSC(c if i == 0 else hid_s, hid_s, 3, down=d) for i, d in enumerate(down)])
        self.dec = nn.ModuleList([ConvSC(hid_s, hid_s, 3, up=u) for u in reversed(down)])
        self.readout = conv2d(hid_s, c, 1)
        widths = [t_in * hid_s] + [hid_t] * (n_t - 1) + [t_in * hid_s]
        self.hid = nn.Sequential(*[MetaBlock(widths[i], widths[i + 1], mlp_ratio, tau) for i in range(n_t)])

    def clip(self, x):
        b, t, c, h, w = x.shape
        z = x.reshape(b * t, c, h, w)
        skip = z = self.enc[0](z)
        for layer in self.enc[1:]:
            z = layer(z)
        _, c2, h2, w2 = z.shape
        z = self.hid(z.reshape(b, t * c2, h2, w2)).reshape(b * t, c2, h2, w2)
        for layer in self.dec[:-1]:
            z = layer(z)
        return self.readout(self.dec[-1](z + skip)).reshape(b, t, c, h, w)

    def forward(self, frames, mask):
        x, outs = frames[:, :self.t_in], []
        while sum(o.shape[1] for o in outs) < self.t_out:
            x = self.clip(x)
            outs.append(x)
        return torch.cat(outs, 1)[:, :self.t_out]


def differential_divergence(pred, true, tau=0.1, eps=1e-12):
    b, t = pred.shape[:2]
    p = F.softmax((pred[:, 1:] - pred[:, :-1]).reshape(b, t - 1, -1) / tau, -1)
    q = F.softmax((true[:, 1:] - true[:, :-1]).reshape(b, t - 1, -1) / tau, -1)
    return (p * torch.log(p / (q + eps) + eps)).mean()


# ---------------------------------------------------------------- MIM / MAU / PhyDNet (OpenSTL's own)
OPENSTL_MODELS = {  # model -> (OpenSTL module files, model file, class)
    "mim": (("predrnn_modules", "mim_modules"), "mim_model", "MIM_Model"),
    "mau": (("mau_modules",), "mau_model", "MAU_Model"),
    "phydnet": (("phydnet_modules",), "phydnet_model", "PhyDNet_Model"),
}


def openstl_class(a):
    """OpenSTL's model class for a.model from the checkout a.openstl, or exit with one line."""
    if not a.openstl:
        sys.exit(f"torch_step.py: --model={a.model} runs OpenSTL's own model class: "
                 f"give --openstl=PATH (a checkout of chengtan9907/OpenSTL)")
    modules, model_file, class_name = OPENSTL_MODELS[a.model]
    if not os.path.isfile(os.path.join(a.openstl, "openstl", "models", f"{model_file}.py")):
        sys.exit(f"torch_step.py: --openstl={a.openstl} is not a checkout of chengtan9907/OpenSTL "
                 f"(no openstl/models/{model_file}.py)")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from openstl_import import load_openstl_model
    return load_openstl_model(a.openstl, modules, model_file, class_name)


def phydnet_without_partial_decodes(encoder):
    """OpenSTL's PhyD_EncoderRNN.forward also decodes each branch on its own (out_phys,
    out_conv: two more decoder_D passes per frame, for pictures; no loss reads them, so they
    cost forward time only: ~7% of an inference step, ~2% of a training step at the Moving
    MNIST config). Ours computes the sum's decode alone; so does this forward, otherwise
    OpenSTL's lines, on OpenSTL's modules."""
    def forward(x, first_timestep=False, decoding=False):
        x = encoder.encoder_E(x)
        input_phys = None if decoding else encoder.encoder_Ep(x)
        input_conv = encoder.encoder_Er(x)
        hidden1, output1 = encoder.phycell(input_phys, first_timestep)
        _, output2 = encoder.convcell(input_conv, first_timestep)
        concat = encoder.decoder_Dp(output1[-1]) + encoder.decoder_Dr(output2[-1])
        output_image = torch.sigmoid(encoder.decoder_D(concat))
        return None, hidden1, output_image, None, None
    encoder.forward = forward


def openstl_model(a, frame_c, rows, cols):
    """(OpenSTL's net at our config, forward(training) -> training loss or predictions).

    Input and regime as our train step in benchmark.py: MIM and MAU read patch-reshaped
    frames [B, T, H/p, W/p, p*p*C] and a scheduled-sampling mask_true [B, T_out - 1, H/p, W/p,
    p*p*C] (OpenSTL's layout; the input frames are always true), loss MSE over the T - 1
    generated frames; PhyDNet reads whole frames [B, T, C, H, W], loss the sum of its per-step
    MSEs and the K2M moment constraint (OpenSTL's PhyDNet_Model.forward; our trainer averages
    the steps: the same work). Regime: benchmark.py's steps draw data_provider.sampling's
    train_mask for steps 0..N, where the probability of the true frame is still ~1 (1 - 2e-5
    * step for MIM / MAU, 1 - 4.8e-6 * step for PhyDNet at their Moving MNIST configs): an
    all-ones mask_true here, and PhyDNet's teacher forcing on (ratio 1, OpenSTL's training
    regime of epoch 0). Either way the work barely differs: MIM and MAU blend true and
    generated frames whatever the mask (as ours does); PhyDNet's teacher forcing only skips the
    input gradient of its first convolution (1 channel). Evaluation: an all-zero mask_true
    (the input frames, then its own predictions) and PhyDNet_Model.inference. OpenSTL's MIM
    blocks carry their MIMS cell state from one call to the next where ours starts it at zero
    (nets/mim.py): different values, the same work."""
    model = openstl_class(a)
    t_out = a.seq_length - a.input_length
    height = a.img_height or a.img_width
    common = dict(in_shape=(a.input_length, a.img_channel, height, a.img_width), patch_size=a.patch_size,
                  pre_seq_length=a.input_length, aft_seq_length=t_out, total_length=a.seq_length)
    hidden = [int(v) for v in a.num_hidden.split(",")]
    rng = np.random.default_rng(0)
    if a.model == "phydnet":
        with contextlib.redirect_stdout(sys.stderr):  # its ConvLSTM prints its layers: not on the protocol's stdout
            net = model(types.SimpleNamespace(device="cpu", **common))
        phydnet_without_partial_decodes(net.encoder)
        frames = torch.from_numpy(rng.random((a.batch_size, a.seq_length, a.img_channel, height, a.img_width))
                                  .astype(np.float32))
        x, y = frames[:, :a.input_length], frames[:, a.input_length:]
        constraints = torch.zeros((49, 7, 7))  # OpenSTL's PhyDNet method: filter i * 7 + j has moment (i, j) alone
        for n in range(49):
            constraints[n, n // 7, n % 7] = 1.0

        def forward(training):
            if training:
                return net(x, y, constraints, teacher_forcing_ratio=1.0)
            return net.inference(x, y, constraints, return_loss=False)[0]
        return net, forward
    # stride 1 as ours (engine/config.py allows no other)
    configs = types.SimpleNamespace(filter_size=a.filter_size, stride=1, **common)
    if a.model == "mim":
        configs.layer_norm, configs.reverse_scheduled_sampling = bool(a.layer_norm), 0
    else:
        configs.sr_size, configs.tau, configs.cell_mode, configs.model_mode = a.sr_size, a.mau_tau, a.cell_mode, \
            a.model_mode
    net = model(len(hidden), hidden, configs)
    # Convolutions OpenSTL builds but never calls (ours build none of them): left out, they
    # would only add parameters that get no gradient (and break the parameter-count check)
    if a.model == "mau":
        del net.merge, net.conv_last_sr
    else:
        for mimn in net.stlstm_layer_diff:  # MIMN.forward has no use for its conv_last
            del mimn.conv_last
    frames = torch.from_numpy(rng.random((a.batch_size, a.seq_length, rows, cols, frame_c)).astype(np.float32))
    masks = {training: torch.full((a.batch_size, max(t_out - 1, 0), rows, cols, frame_c), float(training))
             for training in (True, False)}

    def forward(training):
        out, loss = net(frames, masks[training], return_loss=training)
        return loss if training else out
    return net, forward


def our_model(a, frame_c, rows, cols):
    """(our maths re-written above, forward(training) -> training loss or predictions)."""
    if a.model in ("simvp", "tau"):  # gSTA or TAU translator (the IncepU variant is not timed here)
        net = SimVPNet(a.input_length, a.seq_length - a.input_length, frame_c, a.hid_S, a.hid_T, a.N_S, a.N_T,
                       a.mlp_ratio, a.model == "tau")
    else:
        net = Net(a.model, [int(v) for v in a.num_hidden.split(",")], frame_c, a.filter_size, bool(a.layer_norm))
    rng = np.random.default_rng(0)
    frames = torch.from_numpy(rng.random((a.batch_size, a.seq_length, frame_c, rows, cols)).astype(np.float32))
    mask = torch.zeros(a.batch_size, a.seq_length - 1)
    mask[:, :a.input_length] = 1.0

    def forward(training):
        out = net(frames, mask)
        if not training:
            return out
        truth = frames[:, frames.shape[1] - out.shape[1]:]
        loss = F.mse_loss(out, truth)
        if a.model == "tau":
            loss = loss + a.alpha * differential_divergence(out, truth)
        return loss
    return net, forward


def build(a):
    """(net, forward(training)) for a.model at the configuration in a."""
    frame_c = a.patch_size ** 2 * a.img_channel
    rows, cols = (a.img_height or a.img_width) // a.patch_size, a.img_width // a.patch_size
    if a.model in OPENSTL_MODELS:
        return openstl_model(a, frame_c, rows, cols)
    return our_model(a, frame_c, rows, cols)


def parse_args(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True, choices=["convlstm", "predrnn", "predrnn_pp", "simvp", "tau",
                                                      *OPENSTL_MODELS])
    p.add_argument("--openstl", default="", help="a checkout of chengtan9907/OpenSTL (mim, mau, phydnet only)")
    p.add_argument("--num_hidden", default="64")
    p.add_argument("--hid_S", type=int, default=64)
    p.add_argument("--hid_T", type=int, default=512)
    p.add_argument("--N_S", type=int, default=4)
    p.add_argument("--N_T", type=int, default=8)
    p.add_argument("--mlp_ratio", type=float, default=8.0)
    p.add_argument("--alpha", type=float, default=0.1)
    p.add_argument("--mau_tau", type=int, default=5, help="MAU: past states each cell attends over")
    p.add_argument("--sr_size", type=int, default=4, help="MAU: the encoder's downsampling factor")
    p.add_argument("--cell_mode", default="normal", choices=["normal", "residual"], help="MAU")
    p.add_argument("--model_mode", default="normal", choices=["normal", "recall"], help="MAU")
    p.add_argument("--filter_size", type=int, default=5)
    p.add_argument("--patch_size", type=int, default=4)
    p.add_argument("--img_width", type=int, default=64)
    p.add_argument("--img_height", type=int, default=0, help="0: img_width (square frames)")
    p.add_argument("--img_channel", type=int, default=1)
    p.add_argument("--seq_length", type=int, default=20)
    p.add_argument("--input_length", type=int, default=10)
    p.add_argument("--batch_size", type=int, default=2)
    p.add_argument("--layer_norm", type=int, default=0)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--serve", action="store_true")
    p.add_argument("--eval", action="store_true",
                   help="time inference instead (no_grad, eval mode, the input frames then its own predictions)")
    return p.parse_args(argv)


def main():
    a = parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net, forward = build(a)
    opt = torch.optim.Adam(net.parameters(), 1e-4)

    def step():
        if a.eval:
            net.eval()
            with torch.no_grad():
                return float(forward(False).mean())
        opt.zero_grad(set_to_none=True)
        loss = forward(True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    began = time.perf_counter()
    step()
    first = time.perf_counter() - began
    times = []

    def timed_step():
        began = time.perf_counter()
        step()
        times.append(time.perf_counter() - began)
        return times[-1]

    if a.serve:
        print("READY", flush=True)
        while sys.stdin.readline().strip() == "step":
            print(f"TIME {timed_step()}", flush=True)
    else:
        for _ in range(a.steps):
            timed_step()
    median_ms = 1000 * float(np.median(times)) if times else None
    if a.eval:
        per_sequence = None if median_ms is None else median_ms / a.batch_size
        timing = {"eval_ms_per_call": median_ms, "ms_per_sequence": per_sequence, "call_ms": [1000 * v for v in times]}
    else:
        timing = {"train_ms_per_step": median_ms, "step_ms": [1000 * v for v in times]}
    print("RESULT " + json.dumps({
        "torch": torch.__version__, "threads": torch.get_num_threads(), "first_step_s": first,
        "cpu_capability": _cpu_capability(), "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", ""),
        "mode": "eval" if a.eval else "train", "batch_size": a.batch_size,
        "parameters": sum(p.numel() for p in net.parameters()), **timing,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20}), flush=True)


def _cpu_capability():
    """The ISA PyTorch's CPU kernels dispatch to (e.g. AVX512, AVX2)."""
    try:
        return torch.backends.cpu.get_cpu_capability()
    except AttributeError:
        return "unknown"


if __name__ == "__main__":
    main()
