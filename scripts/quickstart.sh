#!/usr/bin/env bash
# The README's first command: set up, make Moving MNIST offline, train a small SimVP on
# the CPU for a few minutes, evaluate it beside the trivial baselines, draw predictions.
# Extra --key=value options apply to every step (e.g. --max_iterations=1000).
# Running it again starts a new run: the earlier checkpoints move to
# output/quickstart/ckpt/earlier_runs/ (train.py --start_over=true).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup_env.sh
CFG=configs/quickstart_simvp_mmnist.yaml
began=$(date +%s)
echo "== 1/3 data: Moving MNIST -> MindRecord"
python generate_mindrecord.py --config_path=$CFG "$@"
echo "== 2/3 train ($CFG)"
python train.py --config_path=$CFG --start_over=true "$@"
echo "== 3/3 eval"
python eval.py --config_path=$CFG --pretrained_model=latest "$@"
# the quickstart's bar: the model must beat both trivial baselines on MSE and on SSIM
python - "$CFG" "$began" "$@" <<'PY'
import json, os, sys, time
from engine.config import load_config
cfg = load_config(["--config_path=" + sys.argv[1]] + sys.argv[3:], validate=False)
m = json.load(open(os.path.join(cfg.eval_dir, "metrics.json"), encoding="utf-8"))["metrics"]
model = m["model"]
beaten = [name for name in ("copy-last", "all-black")
          if model["mse"]["mean"] < m[name]["mse"]["mean"] and model["ssim"]["mean"] > m[name]["ssim"]["mean"]]
verdict = "beats both baselines" if len(beaten) == 2 else "does NOT beat both baselines"
print(f"quickstart: the model {verdict} on MSE and SSIM (model {model['mse']['mean']:.1f} / "
      f"{model['ssim']['mean']:.3f}; copy-last {m['copy-last']['mse']['mean']:.1f} / {m['copy-last']['ssim']['mean']:.3f}; "
      f"all-black {m['all-black']['mse']['mean']:.1f} / {m['all-black']['ssim']['mean']:.3f}); "
      f"{(time.time() - float(sys.argv[2])) / 60:.1f} min in all")
PY
