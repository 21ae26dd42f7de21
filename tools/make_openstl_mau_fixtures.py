"""Write tests/fixtures/openstl_mau/: small OpenSTL MAU_Model checkpoints (cell and model
modes normal, and residual + recall) and their predictions under the evaluation schedule and
a scheduled-sampling mask, computed by OpenSTL's own modules, for tests/test_mau.py (which
needs no torch).

Run once, not in CI, with torch in a throwaway venv and a checkout of OpenSTL:
    /tmp/torchvenv/bin/python tools/make_openstl_mau_fixtures.py --openstl=PATH/TO/OpenSTL
"""
import argparse
import json
import os
import types

import numpy as np
import torch
from openstl_import import load_openstl_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "openstl_mau")

B, T_IN, T_OUT, C, IMG, PATCH, HID, K = 2, 3, 3, 1, 16, 2, 4, 3
LAYERS, TAU, SR = 2, 2, 2


def load_openstl(path):
    return load_openstl_model(path, ('mau_modules',), "mau_model", "MAU_Model")


def build(MAU_Model, modes, state):
    configs = types.SimpleNamespace(in_shape=(T_IN, C, IMG, IMG), patch_size=PATCH, filter_size=K, stride=1,
                                    sr_size=SR, tau=TAU, cell_mode=modes[0], model_mode=modes[1],
                                    pre_seq_length=T_IN, aft_seq_length=T_OUT, total_length=T_IN + T_OUT)
    net = MAU_Model(LAYERS, [HID] * LAYERS, configs)
    if state is not None:
        net.load_state_dict(state)
    return net.eval()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--openstl", required=True, help="a checkout of chengtan9907/OpenSTL")
    args = parser.parse_args()
    MAU_Model = load_openstl(args.openstl)
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    hp = IMG // PATCH
    frames = torch.rand((B, T_IN + T_OUT, hp, hp, PATCH * PATCH * C), generator=gen)
    ss = (torch.rand((B, T_OUT - 1), generator=gen) > 0.5).float()
    reference = {"frames": frames.numpy(), "ss_mask": ss.numpy()}
    manifest = {"batch": B, "input_length": T_IN, "seq_length": T_IN + T_OUT, "img_width": IMG, "img_channel": C,
                "patch_size": PATCH, "num_hidden": ",".join([str(HID)] * LAYERS), "filter_size": K,
                "mau_tau": TAU, "sr_size": SR, "cases": {}}
    for tag, modes in (("mau", ("normal", "normal")), ("mau_residual_recall", ("residual", "recall"))):
        torch.manual_seed(1)
        state = {}
        with torch.no_grad():
            for name, tensor in build(MAU_Model, modes, None).state_dict().items():
                if name.endswith((".1.weight",)) and tensor.dim() == 3:  # LayerNorm scale: near 1
                    state[name] = 1.0 + 0.1 * torch.randn(tensor.shape, generator=gen)
                else:
                    state[name] = 0.3 * torch.randn(tensor.shape, generator=gen)
        for schedule, mask in (("eval", torch.zeros(B, T_OUT - 1)), ("ss", ss)):
            net = build(MAU_Model, modes, state)
            mask_true = mask[:, :, None, None, None].expand(B, T_OUT - 1, hp, hp, PATCH * PATCH * C)
            with torch.no_grad():
                out, _ = net(frames, mask_true, return_loss=False)
            reference[f"{tag}_{schedule}"] = out.permute(0, 1, 3, 4, 2).numpy()  # theirs is [B, T, C, H, W]
        name = f"{tag}.pth"
        torch.save(state, os.path.join(OUT, name))
        manifest["cases"][tag] = {"file": name, "cell_mode": modes[0], "model_mode": modes[1]}
        print(f"{tag}: mean |y| {float(np.abs(reference[f'{tag}_eval']).mean()):.4f}")
    np.savez_compressed(os.path.join(OUT, "reference.npz"), **reference)
    with open(os.path.join(OUT, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)


if __name__ == "__main__":
    main()
