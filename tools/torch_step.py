"""The train step of our ConvLSTM, PredRNN and PredRNN++ written in PyTorch (eager), for
benchmark.py's side-by-side column. Same maths, widths, kernel sizes, frame loop and
scheduled-sampling input as nets/*.py; Adam; MSE over the T-1 generated frames.

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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True, choices=["convlstm", "predrnn", "predrnn_pp"])
    p.add_argument("--num_hidden", required=True)
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
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    hidden = [int(v) for v in a.num_hidden.split(",")]
    frame_c = a.patch_size ** 2 * a.img_channel
    rows, cols = (a.img_height or a.img_width) // a.patch_size, a.img_width // a.patch_size
    net = Net(a.model, hidden, frame_c, a.filter_size, bool(a.layer_norm))
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    rng = np.random.default_rng(0)
    frames = torch.from_numpy(rng.random((a.batch_size, a.seq_length, frame_c, rows, cols)).astype(np.float32))
    mask = torch.zeros(a.batch_size, a.seq_length - 1)
    mask[:, :a.input_length] = 1.0

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(net(frames, mask), frames[:, 1:])
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
