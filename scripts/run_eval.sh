#!/usr/bin/env bash
# Evaluate a checkpoint: per-frame MSE / MAE / SSIM / PSNR, written to eval/log.txt.
# usage: bash scripts/run_eval.sh [TEST_MINDRECORD_PATH] [DEVICE_ID] [CHECKPOINT_PATH] [CONFIG_PATH] [DEVICE_TARGET]
#   Further --key=value options may follow the positional arguments.
if [ $# -lt 3 ]; then
    echo "usage: bash scripts/run_eval.sh [TEST_MINDRECORD_PATH] [DEVICE_ID] [CHECKPOINT_PATH] [CONFIG_PATH] [DEVICE_TARGET] [--key=value ...]" >&2
    exit 2
fi
PWD_AT_CALL="$PWD"
. "$(dirname "$0")/common.sh"
TEST=$(abspath "$1"); DEVICE_ID=$2; CKPT=$(abspath "$3"); shift 3
ARGS=(--test_mindrecord="$TEST" --device_id="$DEVICE_ID" --pretrained_model="$CKPT")
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then ARGS+=(--config_path="$(abspath "$1")"); shift; fi
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then ARGS+=(--device_target="$1"); shift; fi
python eval.py "${ARGS[@]}" "$@"
