#!/usr/bin/env bash
# The README's first command: set up, make Moving MNIST offline, train a small ConvLSTM on
# the CPU for a few minutes, evaluate it beside the trivial baselines, draw predictions.
# Extra --key=value options apply to every step (e.g. --max_iterations=1000).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup_env.sh
CFG=configs/quickstart_convlstm_mmnist.yaml
echo "== 1/3 data: Moving MNIST -> MindRecord"
python generate_mindrecord.py --config_path=$CFG "$@"
echo "== 2/3 train ($CFG)"
python train.py --config_path=$CFG "$@"
echo "== 3/3 eval"
python eval.py --config_path=$CFG --pretrained_model=latest "$@"
