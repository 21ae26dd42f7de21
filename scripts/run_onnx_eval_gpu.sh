#!/usr/bin/env bash
# Evaluate an ONNX model with ONNX Runtime (CUDAExecutionProvider where it works, else the CPU).
# usage: bash scripts/run_onnx_eval_gpu.sh [TEST_MINDRECORD_PATH] [DEVICE_ID] [ONNX_PATH] [CONFIG_PATH] [--key=value ...]
if [ $# -lt 3 ]; then
    echo "usage: bash scripts/run_onnx_eval_gpu.sh [TEST_MINDRECORD_PATH] [DEVICE_ID] [ONNX_PATH] [CONFIG_PATH] [--key=value ...]" >&2
    exit 2
fi
PWD_AT_CALL="$PWD"
. "$(dirname "$0")/common.sh"
TEST=$(abspath "$1"); DEVICE_ID=$2; ONNX=$(abspath "$3"); shift 3
ARGS=(--test_mindrecord="$TEST" --device_id="$DEVICE_ID" --onnx_path="$ONNX")
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then ARGS+=(--config_path="$(abspath "$1")"); shift; fi
export CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES:-$DEVICE_ID}"
python eval_onnx.py "${ARGS[@]}" "$@"
