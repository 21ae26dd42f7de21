"""Write tests/fixtures/openstl_mim/: small OpenSTL MIM_Model checkpoints (with and without
LayerNorm) and their predictions under the evaluation schedule and a scheduled-sampling
mask, computed by OpenSTL's own modules, for tests/test_mim.py (which needs no torch).

Run once, not in CI, with torch in a throwaway venv and a checkout of OpenSTL (MIM's modules
are the same at OpenSTLv0.3.0 and on OpenSTL-Lightning):
    /tmp/torchvenv/bin/python tools/make_openstl_mim_fixtures.py --openstl=PATH/TO/OpenSTL

A fresh model per forward pass: OpenSTL's MIM blocks keep their MIMS cell state on the module
from one call to the next (see nets/mim.py), which a first call does not see.
"""
import argparse
import json
import os
import types

import numpy as np
import torch
from openstl_import import load_openstl_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "openstl_mim")

B, T_IN, T_OUT, C, IMG, PATCH, HID, K = 2, 3, 3, 1, 16, 2, 4, 3
LAYERS = 3


def load_openstl(path):
    return load_openstl_model(path, ('predrnn_modules', 'mim_modules'), "mim_model", "MIM_Model")


def build(MIM_Model, layer_norm, state):
    configs = types.SimpleNamespace(in_shape=(T_IN, C, IMG, IMG), patch_size=PATCH, filter_size=K, stride=1,
                                    layer_norm=layer_norm, pre_seq_length=T_IN, aft_seq_length=T_OUT,
                                    reverse_scheduled_sampling=0)
    net = MIM_Model(LAYERS, [HID] * LAYERS, configs)
    if state is not None:
        net.load_state_dict(state)
    return net.eval()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--openstl", required=True, help="a checkout of chengtan9907/OpenSTL")
    args = parser.parse_args()
    MIM_Model = load_openstl(args.openstl)
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    hp = IMG // PATCH
    frames = torch.rand((B, T_IN + T_OUT, hp, hp, PATCH * PATCH * C), generator=gen)
    ss = (torch.rand((B, T_OUT - 1), generator=gen) > 0.5).float()
    reference = {"frames": frames.numpy(), "ss_mask": ss.numpy()}
    manifest = {"batch": B, "input_length": T_IN, "seq_length": T_IN + T_OUT, "img_width": IMG, "img_channel": C,
                "patch_size": PATCH, "num_hidden": ",".join([str(HID)] * LAYERS), "filter_size": K, "cases": {}}
    for tag, layer_norm in (("mim", 0), ("mim_ln", 1)):
        torch.manual_seed(1)
        state = {}
        with torch.no_grad():
            for name, tensor in build(MIM_Model, layer_norm, None).state_dict().items():
                if name.endswith((".1.weight",)) and tensor.dim() == 3:  # LayerNorm scale: near 1
                    state[name] = 1.0 + 0.1 * torch.randn(tensor.shape, generator=gen)
                else:
                    state[name] = 0.3 * torch.randn(tensor.shape, generator=gen)
        for schedule, mask in (("eval", torch.zeros(B, T_OUT - 1)), ("ss", ss)):
            net = build(MIM_Model, layer_norm, state)  # fresh: no MIMS state from an earlier call
            mask_true = mask[:, :, None, None, None].expand(B, T_OUT - 1, hp, hp, PATCH * PATCH * C)
            with torch.no_grad():
                out, _ = net(frames, mask_true, return_loss=False)
            reference[f"{tag}_{schedule}"] = out.numpy()
        name = f"{tag}.pth"
        torch.save(state, os.path.join(OUT, name))
        manifest["cases"][tag] = {"file": name, "layer_norm": bool(layer_norm)}
        print(f"{tag}: mean |y| {float(np.abs(reference[f'{tag}_eval']).mean()):.4f}")
    np.savez_compressed(os.path.join(OUT, "reference.npz"), **reference)
    with open(os.path.join(OUT, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)


if __name__ == "__main__":
    main()
