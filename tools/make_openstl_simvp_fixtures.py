"""Write tests/fixtures/openstl_simvp/: small OpenSTL SimVP_Model checkpoints (gSTA, IncepU,
TAU) and their predictions, computed by OpenSTL's own modules, for tests/test_simvp.py (which
needs no torch).

Run once, not in CI, with torch and timm in a throwaway venv and a checkout of OpenSTL (its
SimVP and TAU maths are the same at OpenSTLv0.3.0 and on OpenSTL-Lightning: simvp_modules.py
differs by an import only):
    python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch==2.13.0 numpy==1.26.4 timm
    /tmp/torchvenv/bin/python tools/make_openstl_simvp_fixtures.py --openstl=PATH/TO/OpenSTL

OpenSTL's packages import every model of theirs on import; only simvp_modules (with its
layers) and simvp_model are loaded here, by path, under their own package names.
"""
import argparse
import json
import os

import numpy as np
import torch
from openstl_import import load_openstl_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "openstl_simvp")

B, T_IN, T_OUT, C, IMG = 2, 4, 4, 1, 16
SHAPE = {"hid_S": 4, "hid_T": 16, "N_S": 2, "N_T": 2, "mlp_ratio": 2.0, "spatio_kernel_enc": 3,
         "spatio_kernel_dec": 3}
# tag -> (their model_type, our model_name, container)
CASES = {"simvp_gsta": ("gSTA", "simvp", "plain"), "simvp_incepu": ("IncepU", "simvp", "v0.3.0"),
         "tau": ("tau", "tau", "lightning")}


def load_openstl(path):
    return load_openstl_model(path, ('simvp_modules',), "simvp_model", "SimVP_Model")


def randomize(net, gen):
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if name.endswith("num_batches_tracked"):
                tensor.fill_(7)
            elif name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=gen))
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.2)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--openstl", required=True, help="a checkout of chengtan9907/OpenSTL")
    args = parser.parse_args()
    SimVP_Model = load_openstl(args.openstl)
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    inputs = torch.rand((B, T_IN, C, IMG, IMG), generator=gen)
    reference = {"frames": np.concatenate([inputs.permute(0, 1, 3, 4, 2).numpy(),
                                           np.zeros((B, T_OUT, IMG, IMG, C), np.float32)], axis=1)}
    manifest = {"batch": B, "input_length": T_IN, "seq_length": T_IN + T_OUT, "img_width": IMG, "img_channel": C,
                "patch_size": 1, "shape": SHAPE, "cases": {}}
    for tag, (model_type, model_name, container) in CASES.items():
        torch.manual_seed(1)
        net = SimVP_Model((T_IN, C, IMG, IMG), model_type=model_type, drop=0.0, drop_path=0.0, **SHAPE)
        randomize(net, gen)
        net.eval()
        with torch.no_grad():
            out = net(inputs)  # [B, T_IN, C, H, W]; T_OUT == T_IN: one application
        reference[tag] = out.permute(0, 1, 3, 4, 2).numpy()
        sd = net.state_dict()
        if container == "plain":  # OpenSTL's published weights: the bare state_dict
            obj, name = sd, f"{tag}.pth"
        elif container == "v0.3.0":  # OpenSTL v0.3.0 checkpoints/latest.pth
            obj, name = {"epoch": 3, "state_dict": sd, "optimizer": {}, "scheduler": {}}, f"{tag}_latest.pth"
        else:  # OpenSTL-Lightning's best.ckpt: the method wraps the model as self.model
            obj = {"epoch": 3, "global_step": 30, "state_dict": {f"model.{k}": v for k, v in sd.items()},
                   "pytorch-lightning_version": "2.0.0"}
            name = f"{tag}_best.ckpt"
        torch.save(obj, os.path.join(OUT, name))
        manifest["cases"][tag] = {"file": name, "model": model_name, "simvp_model_type": model_type.lower(),
                                  "container": container}
        print(f"{tag}: {name}, output mean |y| {float(out.abs().mean()):.4f}")
    np.savez_compressed(os.path.join(OUT, "reference.npz"), **reference)
    with open(os.path.join(OUT, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)


if __name__ == "__main__":
    main()
