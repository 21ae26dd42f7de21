"""Write tests/fixtures/torch/: small PyTorch checkpoints of thuml/predrnn-pytorch and OpenSTL
networks and their predictions, for tests/test_torch_checkpoint.py (which needs no torch).

Needs torch (run once, not in CI), in a throwaway venv:
    python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch==2.13.0 numpy==1.26.4
    /tmp/torchvenv/bin/python tools/make_torch_fixtures.py

The modules below are written for this purpose. They follow, parameter name for parameter
name and line for line in the forward pass, thuml/predrnn-pytorch (core/models/predrnn.py,
predrnn_v2.py, core/layers/SpatioTemporalLSTMCell*.py) and OpenSTL (openstl/models/
{convlstm,predrnn,predrnnpp,predrnnv2,e3dlstm}_model.py, openstl/modules/*_modules.py), at
OpenSTL v0.3.0 (branch OpenSTLv0.3.0) and at today's branch where the two differ
(ConvLSTM's hidden state, PredRNN++'s conv_c input; E3D-LSTM is the same in both). They are saved in every container those repositories
write: thuml {'net_param': sd}, a plain state_dict (OpenSTL's published weights, also in
the legacy non-zip format), v0.3.0 latest.pth {'state_dict', 'optimizer', 'scheduler'} and
Lightning's best.ckpt {'state_dict': {'model.<key>': ...}, ...}.
"""
import argparse
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "torch")

B, T, T_IN = 2, 5, 2
IMG, PATCH, CH = 16, 2, 1
HID, K = (4, 4), 3
H = IMG // PATCH
FRAME_C = PATCH * PATCH * CH


def convs(specs, layer_norm):
    """{name: nn.Sequential(conv[, LayerNorm])} as their cells build them."""
    out = {}
    for name, cin, cout, k in specs:
        layers = [nn.Conv2d(cin, cout, k, 1, k // 2, bias=False)]
        if layer_norm:
            layers.append(nn.LayerNorm([cout, H, H]))
        out[name] = nn.Sequential(*layers)
    return out


class STLSTM(nn.Module):
    """thuml SpatioTemporalLSTMCell(_v2) = OpenSTL SpatioTemporalLSTMCell(v2)."""

    def __init__(self, cin, c, layer_norm):
        super().__init__()
        self.c = c
        for n, m in convs([("conv_x", cin, 7 * c, K), ("conv_h", c, 4 * c, K), ("conv_m", c, 3 * c, K),
                           ("conv_o", 2 * c, c, K)], layer_norm).items():
            setattr(self, n, m)
        self.conv_last = nn.Conv2d(2 * c, c, 1, 1, 0, bias=False)

    def forward(self, x, h, c, m):
        i_x, f_x, g_x, i_xp, f_xp, g_xp, o_x = torch.split(self.conv_x(x), self.c, 1)
        i_h, f_h, g_h, o_h = torch.split(self.conv_h(h), self.c, 1)
        i_m, f_m, g_m = torch.split(self.conv_m(m), self.c, 1)
        delta_c = torch.sigmoid(i_x + i_h) * torch.tanh(g_x + g_h)
        c_new = torch.sigmoid(f_x + f_h + 1.0) * c + delta_c
        delta_m = torch.sigmoid(i_xp + i_m) * torch.tanh(g_xp + g_m)
        m_new = torch.sigmoid(f_xp + f_m + 1.0) * m + delta_m
        mem = torch.cat((c_new, m_new), 1)
        o = torch.sigmoid(o_x + o_h + self.conv_o(mem))
        return o * torch.tanh(self.conv_last(mem)), c_new, m_new, delta_c, delta_m


class ConvLSTMCell(nn.Module):
    """OpenSTL ConvLSTMCell: conv_o and conv_last exist but are unused; _forget_bias never
    added; h' = o * g_t at v0.3.0, o * tanh(c') today."""

    def __init__(self, cin, c, layer_norm, code):
        super().__init__()
        self.c, self.code = c, code
        for n, m in convs([("conv_x", cin, 4 * c, K), ("conv_h", c, 4 * c, K), ("conv_o", 2 * c, c, K)],
                          layer_norm).items():
            setattr(self, n, m)
        self.conv_last = nn.Conv2d(2 * c, c, 1, 1, 0, bias=False)

    def forward(self, x, h, c):
        i_x, f_x, g_x, o_x = torch.split(self.conv_x(x), self.c, 1)
        i_h, f_h, g_h, o_h = torch.split(self.conv_h(h), self.c, 1)
        g_t = torch.tanh(g_x + g_h)
        c_new = torch.sigmoid(f_x + f_h) * c + torch.sigmoid(i_x + i_h) * g_t
        o_t = torch.sigmoid(o_x + o_h)
        return (o_t * g_t if self.code == "v0.3.0" else o_t * torch.tanh(c_new)), c_new


class CausalLSTMCell(nn.Module):
    """OpenSTL CausalLSTMCell (no conv bias, conv_o unused); conv_c reads m at v0.3.0."""

    def __init__(self, cin, c, layer_norm, code):
        super().__init__()
        self.c, self.code = c, code
        for n, m in convs([("conv_x", cin, 7 * c, K), ("conv_h", c, 4 * c, K), ("conv_c", c, 3 * c, K),
                           ("conv_m", c, 3 * c, K), ("conv_o", 2 * c, c, K), ("conv_c2m", c, 4 * c, K),
                           ("conv_om", c, c, K)], layer_norm).items():
            setattr(self, n, m)
        self.conv_last = nn.Conv2d(2 * c, c, 1, 1, 0, bias=False)

    def forward(self, x, h, c, m):
        i_x, f_x, g_x, i_xp, f_xp, g_xp, o_x = torch.split(self.conv_x(x), self.c, 1)
        i_h, f_h, g_h, o_h = torch.split(self.conv_h(h), self.c, 1)
        i_m, f_m, m_m = torch.split(self.conv_m(m), self.c, 1)
        i_c, f_c, g_c = torch.split(self.conv_c(m if self.code == "v0.3.0" else c), self.c, 1)
        c_new = (torch.sigmoid(f_x + f_h + f_c + 1.0) * c
                 + torch.sigmoid(i_x + i_h + i_c) * torch.tanh(g_x + g_h + g_c))
        i_c, g_c, f_c, o_c = torch.split(self.conv_c2m(c_new), self.c, 1)
        m_new = (torch.sigmoid(f_xp + f_m + f_c + 1.0) * torch.tanh(m_m)
                 + torch.sigmoid(i_xp + i_m + i_c) * torch.tanh(g_xp + g_c))
        o = torch.tanh(o_x + o_h + o_c + self.conv_om(m_new))
        return o * torch.tanh(self.conv_last(torch.cat((c_new, m_new), 1))), c_new, m_new


class GHU(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.z_concat = nn.Sequential(nn.Conv2d(c, 2 * c, K, 1, K // 2, bias=False))
        self.x_concat = nn.Sequential(nn.Conv2d(c, 2 * c, K, 1, K // 2, bias=False))

    def forward(self, x, z):
        z = torch.zeros_like(x) if z is None else z
        p, u = torch.split(self.x_concat(x) + self.z_concat(z), self.c, 1)
        u = torch.sigmoid(u)
        return u * torch.tanh(p) + (1 - u) * z


E3D_KERNEL = (2, 5, 5)  # OpenSTL's E3DLSTM_Model passes (2, 5, 5) whatever filter_size says
E3D_WINDOW = 2


class TfConv3d(nn.Module):
    """OpenSTL tf_Conv3d: a Conv3d (here without temporal padding), then nearest
    interpolation back to the input's (T, H, W)."""

    def __init__(self, cin, cout, kernel, padding):
        super().__init__()
        self.conv3d = nn.Conv3d(cin, cout, kernel_size=kernel, stride=1, padding=padding, bias=False)

    def forward(self, x):
        return F.interpolate(self.conv3d(x), size=x.shape[-3:], mode="nearest")


class Eidetic3DLSTMCell(nn.Module):
    """OpenSTL Eidetic3DLSTMCell: 4C global-memory conv (i, f, g, m), M' built on tanh(m_m),
    output gate sigmoid(tanh(.)), recall on plain NCDHW reshapes, returns the M it was given."""

    def __init__(self, cin, c, layer_norm):
        super().__init__()
        self._norm_c_t = nn.LayerNorm([c, E3D_WINDOW, H, H])
        self.c = c
        padding = (0, E3D_KERNEL[1] // 2, E3D_KERNEL[2] // 2)

        def block(ci, co):
            layers = [TfConv3d(ci, co, E3D_KERNEL, padding)]
            if layer_norm:
                layers.append(nn.LayerNorm([co, E3D_WINDOW, H, H]))
            return nn.Sequential(*layers)

        self.conv_x = block(cin, 7 * c)
        self.conv_h = block(c, 4 * c)
        self.conv_gm = block(c, 4 * c)
        self.conv_new_cell = block(c, c)
        self.conv_new_gm = block(c, c)
        self.conv_last = TfConv3d(2 * c, c, 1, 0)

    def _attn(self, in_query, in_keys, in_values):
        batch, num_channels, _, width, height = in_query.shape
        query = in_query.reshape(batch, -1, num_channels)
        keys = in_keys.reshape(batch, -1, num_channels)
        values = in_values.reshape(batch, -1, num_channels)
        attn = torch.softmax(torch.einsum("bxc,byc->bxy", query, keys), dim=2)
        return torch.einsum("bxy,byc->bxc", attn, values).reshape(batch, num_channels, -1, width, height)

    def forward(self, x_t, h_t, c_t, global_memory, eidetic_cell):
        i_h, g_h, r_h, o_h = torch.split(self.conv_h(h_t), self.c, dim=1)
        i_x, g_x, r_x, o_x, temp_i_x, temp_g_x, temp_f_x = torch.split(self.conv_x(x_t), self.c, dim=1)
        i_t = torch.sigmoid(i_x + i_h)
        r_t = torch.sigmoid(r_x + r_h)
        g_t = torch.tanh(g_x + g_h)
        new_cell = c_t + self._attn(r_t, eidetic_cell, eidetic_cell)
        new_cell = self._norm_c_t(new_cell) + i_t * g_t
        i_m, f_m, g_m, m_m = torch.split(self.conv_gm(global_memory), self.c, dim=1)
        temp_i_t = torch.sigmoid(temp_i_x + i_m)
        temp_f_t = torch.sigmoid(temp_f_x + f_m + 1.0)
        temp_g_t = torch.tanh(temp_g_x + g_m)
        new_global_memory = temp_f_t * torch.tanh(m_m) + temp_i_t * temp_g_t
        o_c = self.conv_new_cell(new_cell)
        o_m = self.conv_new_gm(new_global_memory)
        output_gate = torch.tanh(o_x + o_h + o_c + o_m)
        memory = self.conv_last(torch.cat((new_cell, new_global_memory), 1))
        return torch.tanh(memory) * torch.sigmoid(output_gate), new_cell, global_memory


class E3DNet(nn.Module):
    """OpenSTL E3DLSTM_Model's forward: a sliding window of the last 2 inputs (zeros before
    the first), the eidetic history [C_init, C_0, ...] concatenated on the channel axis,
    one zero global memory of num_hidden[0] channels handed to every cell."""

    def __init__(self, layer_norm):
        super().__init__()
        cells = [Eidetic3DLSTMCell(FRAME_C if i == 0 else HID[i - 1], c, layer_norm) for i, c in enumerate(HID)]
        self.cell_list = nn.ModuleList(cells)
        self.conv_last = nn.Conv3d(HID[-1], FRAME_C, kernel_size=(E3D_WINDOW, 1, 1), stride=(E3D_WINDOW, 1, 1),
                                   padding=0, bias=False)

    def forward(self, frames_tensor, mask_true, reverse):
        frames = frames_tensor.permute(0, 1, 4, 2, 3).contiguous()
        mask_true = mask_true.permute(0, 1, 4, 2, 3).contiguous()
        b = frames.shape[0]
        input_list = [torch.zeros_like(frames[:, 0]) for _ in range(E3D_WINDOW - 1)]
        h_t, c_t, c_history = [], [], []
        for c in HID:
            zeros = torch.zeros(b, c, E3D_WINDOW, H, H, dtype=frames.dtype)
            h_t.append(zeros)
            c_t.append(zeros)
            c_history.append(zeros)
        memory = torch.zeros(b, HID[0], E3D_WINDOW, H, H, dtype=frames.dtype)
        outs = []
        for t in range(T - 1):
            if reverse:
                net = frames[:, t] if t == 0 else mask_true[:, t - 1] * frames[:, t] + (1 - mask_true[:, t - 1]) * x_gen
            else:
                net = frames[:, t] if t < T_IN else \
                    mask_true[:, t - T_IN] * frames[:, t] + (1 - mask_true[:, t - T_IN]) * x_gen
            input_list.append(net)
            net = torch.stack(input_list[t:], dim=0).permute(1, 2, 0, 3, 4).contiguous()
            for i in range(len(HID)):
                c_history[i] = c_t[i] if t == 0 else torch.cat((c_history[i], c_t[i]), 1)
                inp = net if i == 0 else h_t[i - 1]
                h_t[i], c_t[i], memory = self.cell_list[i](inp, h_t[i], c_t[i], memory, c_history[i])
            x_gen = self.conv_last(h_t[-1]).squeeze(2)
            outs.append(x_gen)
        return torch.stack(outs, 0).permute(1, 0, 3, 4, 2).contiguous(), torch.tensor(0.0)


class Net(nn.Module):
    """The models' shared frame loop (thuml RNN / OpenSTL *_Model forward)."""

    def __init__(self, model, layer_norm, code):
        super().__init__()
        self.model = model
        cells = []
        for i, c in enumerate(HID):
            cin = FRAME_C if i == 0 else HID[i - 1]
            if model == "convlstm":
                cells.append(ConvLSTMCell(cin, c, layer_norm, code))
            elif model == "predrnn_pp":
                cells.append(CausalLSTMCell(cin, c, layer_norm, code))
            else:
                cells.append(STLSTM(cin, c, layer_norm))
        if model == "predrnn_pp":
            self.gradient_highway = GHU(HID[0])
        self.cell_list = nn.ModuleList(cells)
        self.conv_last = nn.Conv2d(HID[-1], FRAME_C, 1, 1, 0, bias=False)
        if model == "predrnn_v2":
            self.adapter = nn.Conv2d(HID[0], HID[0], 1, 1, 0, bias=False)

    def forward(self, frames_tensor, mask_true, reverse):
        frames = frames_tensor.permute(0, 1, 4, 2, 3).contiguous()
        mask_true = mask_true.permute(0, 1, 4, 2, 3).contiguous()
        b = frames.shape[0]
        h = [torch.zeros(b, c, H, H, dtype=frames.dtype) for c in HID]
        c = [torch.zeros(b, c, H, H, dtype=frames.dtype) for c in HID]
        memory = torch.zeros(b, HID[0], H, H, dtype=frames.dtype)
        z = None
        decouple = []
        outs = []
        for t in range(T - 1):
            if reverse:
                net = frames[:, t] if t == 0 else mask_true[:, t - 1] * frames[:, t] + (1 - mask_true[:, t - 1]) * x_gen
            else:
                net = frames[:, t] if t < T_IN else \
                    mask_true[:, t - T_IN] * frames[:, t] + (1 - mask_true[:, t - T_IN]) * x_gen
            inp = net
            for i in range(len(HID)):
                if self.model == "convlstm":
                    h[i], c[i] = self.cell_list[i](inp, h[i], c[i])
                elif self.model == "predrnn_pp":
                    h[i], c[i], memory = self.cell_list[i](inp, h[i], c[i], memory)
                else:
                    h[i], c[i], memory, dc, dm = self.cell_list[i](inp, h[i], c[i], memory)
                    if self.model == "predrnn_v2":
                        a = F.normalize(self.adapter(dc).view(b, dc.shape[1], -1), dim=2)
                        m = F.normalize(self.adapter(dm).view(b, dm.shape[1], -1), dim=2)
                        decouple.append(torch.mean(torch.abs(torch.cosine_similarity(a, m, dim=2))))
                inp = h[i]
                if i == 0 and self.model == "predrnn_pp":
                    z = self.gradient_highway(h[0], z)
                    inp = z
            x_gen = self.conv_last(h[-1])
            outs.append(x_gen)
        pred = torch.stack(outs, 0).permute(1, 0, 3, 4, 2).contiguous()
        dec = torch.mean(torch.stack(decouple)) if decouple else torch.tensor(0.0)
        return pred, dec


# tag: (source, model, layer_norm, code, container, legacy format)
CASES = {
    "thuml_predrnn": ("thuml", "predrnn", True, None, "net_param", False),
    "thuml_predrnn_v2": ("thuml", "predrnn_v2", False, None, "net_param", False),
    "openstl_convlstm_v030": ("openstl", "convlstm", True, "v0.3.0", "plain", True),
    "openstl_convlstm_current": ("openstl", "convlstm", False, "current", "lightning", False),
    "openstl_predrnn": ("openstl", "predrnn", False, "v0.3.0", "latest", False),
    "openstl_predrnn_v2": ("openstl", "predrnn_v2", True, "v0.3.0", "plain", False),
    "openstl_predrnn_pp_v030": ("openstl", "predrnn_pp", False, "v0.3.0", "plain", True),
    "openstl_predrnn_pp_current": ("openstl", "predrnn_pp", False, "current", "lightning", False),
    "openstl_e3d_lstm": ("openstl", "e3d_lstm", False, "v0.3.0", "plain", True),
    "openstl_e3d_lstm_ln": ("openstl", "e3d_lstm", True, "v0.3.0", "plain", False),
}
# what a case's network differs in from the manifest's shared settings
CASE_SETTINGS = {"e3d_lstm": {"filter_size": E3D_KERNEL[1], "window_length": E3D_WINDOW,
                              "temporal_kernel": E3D_KERNEL[0]}}


def perturb(net, gen):
    """Bigger weights than torch's default init (gates reach the saturating range, where
    tanh kernels differ) and non-trivial LayerNorm scales and shifts."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.dim() >= 4:  # convolution weights
                p.mul_(2.0)
            elif name.endswith((".1.weight", "_norm_c_t.weight")):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))


def container(net, kind):
    sd = net.state_dict()
    if kind == "net_param":
        return {"net_param": sd}
    if kind == "plain":
        return sd
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=10)
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()  # Adam state (step tensors, zero moments) without moving the weights
    sched.step()
    if kind == "latest":
        return {"epoch": 3, "optimizer": opt.state_dict(), "state_dict": sd, "scheduler": sched.state_dict()}
    return {"epoch": 3, "global_step": 30, "pytorch-lightning_version": "2.1.0",
            "state_dict": {f"model.{k}": v for k, v in sd.items()},
            "optimizer_states": [opt.state_dict()], "lr_schedulers": [sched.state_dict()],
            "hyper_parameters": {"args": argparse.Namespace(method="x", lr=1e-3)}}


def main():
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    frames = torch.rand(B, T, H, H, FRAME_C, generator=gen)
    # per-sequence weights of the true frame (ours are per sequence, theirs per pixel)
    rss = (torch.rand(B, T - 2, generator=gen) > 0.5).float()
    ref = {"frames": frames.numpy(), "rss_mask": rss.numpy()}
    manifest = {"batch": B, "seq_length": T, "input_length": T_IN, "img_width": IMG, "patch_size": PATCH,
                "img_channel": CH, "num_hidden": ",".join(map(str, HID)), "filter_size": K, "cases": {}}
    for tag, (source, model, layer_norm, code, kind, legacy) in CASES.items():
        torch.manual_seed(len(tag))
        net = E3DNet(layer_norm) if model == "e3d_lstm" else Net(model, layer_norm, code)
        perturb(net, gen)
        net.eval()
        name = f"{tag}.pth" if kind != "lightning" else f"{tag}_best.ckpt"
        torch.save(container(net, kind), os.path.join(OUT, name), _use_new_zipfile_serialization=not legacy)
        # the saved float32 weights, run in float64: the reference is then the exact result
        # of their maths, and the test measures our float32 error alone, not the sum of
        # two float32 roundings (LayerNorm cases differ by ~1e-5 float32 vs float32)
        net.double()
        with torch.no_grad():
            zeros = torch.zeros(B, T - T_IN - 1, H, H, FRAME_C, dtype=torch.float64)
            ref[f"{tag}_eval"] = net(frames.double(), zeros, False)[0].float().numpy()
            mask = rss.double()[:, :, None, None, None].expand(B, T - 2, H, H, FRAME_C)
            pred, dec = net(frames.double(), mask, True)
            ref[f"{tag}_rss"] = pred.float().numpy()
            if model == "predrnn_v2":
                ref[f"{tag}_decouple"] = np.float64(dec.item())
        manifest["cases"][tag] = {"file": name, "source": source, "model": model, "layer_norm": layer_norm,
                                  "code": code, "container": kind, "legacy_format": legacy,
                                  "settings": CASE_SETTINGS.get(model, {})}
    np.savez_compressed(os.path.join(OUT, "reference.npz"), **ref)
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"wrote {len(CASES)} checkpoints to {OUT}")


if __name__ == "__main__":
    main()
