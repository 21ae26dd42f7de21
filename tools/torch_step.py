"""The train step of our ConvLSTM, PredRNN, PredRNN++, SimVP and TAU written in PyTorch (eager),
for benchmark.py's side-by-side column. Same maths, widths, kernel sizes, frame loop and
scheduled-sampling input as nets/*.py; Adam; MSE over the T-1 generated frames (SimVP / TAU:
over the predicted frames, TAU plus its differential divergence term).

Needs torch (never needed by the tests), e.g. the throwaway venv of tools/make_torch_fixtures.py:
    /tmp/torchvenv/bin/python tools/torch_step.py --model=predrnn_pp --num_hidden=128,64,64,64 \
        --filter_size=5 --patch_size=4 --img_width=64 --seq_length=20 --input_length=10 \
        --batch_size=2 --layer_norm=1 --steps=3
Prints one line 'RESULT {json}' with the median step time after a warm-up step.
--serve: after the warm-up step print 'READY', then run one timed step per 'step' line read
from stdin (answering 'TIME <s>') until any other line: benchmark.py alternates these steps
with MindSpore's so that both frameworks are timed under the same machine load.
"""
import argparse
import json
import os
import resource
import sys
import time

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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True, choices=["convlstm", "predrnn", "predrnn_pp", "simvp", "tau"])
    p.add_argument("--num_hidden", default="64")
    p.add_argument("--hid_S", type=int, default=64)
    p.add_argument("--hid_T", type=int, default=512)
    p.add_argument("--N_S", type=int, default=4)
    p.add_argument("--N_T", type=int, default=8)
    p.add_argument("--mlp_ratio", type=float, default=8.0)
    p.add_argument("--alpha", type=float, default=0.1)
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
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    hidden = [int(v) for v in a.num_hidden.split(",")]
    frame_c = a.patch_size ** 2 * a.img_channel
    rows, cols = (a.img_height or a.img_width) // a.patch_size, a.img_width // a.patch_size
    if a.model in ("simvp", "tau"):  # gSTA or TAU translator (the IncepU variant is not timed here)
        net = SimVPNet(a.input_length, a.seq_length - a.input_length, frame_c, a.hid_S, a.hid_T, a.N_S, a.N_T,
                       a.mlp_ratio, a.model == "tau")
    else:
        net = Net(a.model, hidden, frame_c, a.filter_size, bool(a.layer_norm))
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    rng = np.random.default_rng(0)
    frames = torch.from_numpy(rng.random((a.batch_size, a.seq_length, frame_c, rows, cols)).astype(np.float32))
    mask = torch.zeros(a.batch_size, a.seq_length - 1)
    mask[:, :a.input_length] = 1.0

    def step():
        if a.eval:
            net.eval()
            with torch.no_grad():
                return float(net(frames, mask).mean())
        opt.zero_grad(set_to_none=True)
        out = net(frames, mask)
        truth = frames[:, frames.shape[1] - out.shape[1]:]
        loss = F.mse_loss(out, truth)
        if a.model == "tau":
            loss = loss + a.alpha * differential_divergence(out, truth)
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
    print("RESULT " + json.dumps({
        "torch": torch.__version__, "threads": torch.get_num_threads(), "first_step_s": first,
        "cpu_capability": _cpu_capability(), "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", ""),
        "train_ms_per_step": 1000 * float(np.median(times)), "step_ms": [1000 * v for v in times],
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20}), flush=True)


def _cpu_capability():
    """The ISA PyTorch's CPU kernels dispatch to (e.g. AVX512, AVX2)."""
    try:
        return torch.backends.cpu.get_cpu_capability()
    except AttributeError:
        return "unknown"


if __name__ == "__main__":
    main()
