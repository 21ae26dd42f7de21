"""Write tests/fixtures/openstl_phydnet/: a small OpenSTL PhyDNet_Model checkpoint, its
inference predictions and its training loss (no teacher forcing), computed by OpenSTL's own
modules, for tests/test_phydnet.py (which needs no torch).

Run once, not in CI, with torch and scipy in a throwaway venv and a checkout of OpenSTL:
    /tmp/torchvenv/bin/python tools/make_openstl_phydnet_fixtures.py --openstl=PATH/TO/OpenSTL
"""
import argparse
import json
import os
import types

import numpy as np
import torch
from openstl_import import load_openstl_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "openstl_phydnet")
B, T_IN, T_OUT, C, IMG, PATCH = 2, 3, 3, 1, 16, 4


def load_openstl(path):
    return load_openstl_model(path, ('phydnet_modules',), "phydnet_model", "PhyDNet_Model")


def constraints():
    out = torch.zeros((49, 7, 7))
    for n in range(49):
        out[n, n // 7, n % 7] = 1
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--openstl", required=True, help="a checkout of chengtan9907/OpenSTL")
    args = parser.parse_args()
    PhyDNet_Model = load_openstl(args.openstl)
    os.makedirs(OUT, exist_ok=True)
    configs = types.SimpleNamespace(pre_seq_length=T_IN, aft_seq_length=T_OUT, in_shape=(T_IN, C, IMG, IMG),
                                    patch_size=PATCH, device="cpu")
    torch.manual_seed(0)
    net = PhyDNet_Model(configs)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if name.startswith("k2m.") or not tensor.is_floating_point():
                continue
            if name.endswith("bn1.weight") or (".main.1.weight" in name):  # GroupNorm scales near 1
                tensor.copy_(1.0 + 0.1 * torch.randn(tensor.shape, generator=gen))
            else:
                tensor.copy_(tensor + 0.05 * torch.randn(tensor.shape, generator=gen))
    net.eval()
    frames = torch.rand((B, T_IN + T_OUT, C, IMG, IMG), generator=gen)
    x, y = frames[:, :T_IN], frames[:, T_IN:]
    pred, _ = net.inference(x, y, constraints(), return_loss=False)
    with torch.no_grad():
        loss = net(x, y, constraints(), teacher_forcing_ratio=0.0)
    reference = {"frames": frames.permute(0, 1, 3, 4, 2).numpy(), "pred": pred.permute(0, 1, 3, 4, 2).numpy(),
                 "train_loss": np.float64(loss.item())}
    torch.save(net.state_dict(), os.path.join(OUT, "phydnet.pth"))
    np.savez_compressed(os.path.join(OUT, "reference.npz"), **reference)
    manifest = {"batch": B, "input_length": T_IN, "seq_length": T_IN + T_OUT, "img_width": IMG, "img_channel": C,
                "patch_size": PATCH, "file": "phydnet.pth"}
    with open(os.path.join(OUT, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
    print(f"mean |pred| {float(pred.abs().mean()):.4f}, training loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
