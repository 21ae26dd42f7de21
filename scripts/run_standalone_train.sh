#!/usr/bin/env bash
# Train on one device.
# usage: bash scripts/run_standalone_train.sh [TRAIN_MINDRECORD_PATH] [DEVICE_ID] [CONFIG_PATH] [DEVICE_TARGET]
#   CONFIG_PATH defaults to default_config.yaml, DEVICE_TARGET to auto (the accelerator if present, else CPU).
#   Further --key=value options may follow the four positional arguments.
if [ $# -lt 2 ]; then
    echo "usage: bash scripts/run_standalone_train.sh [TRAIN_MINDRECORD_PATH] [DEVICE_ID] [CONFIG_PATH] [DEVICE_TARGET] [--key=value ...]" >&2
    exit 2
fi
PWD_AT_CALL="$PWD"
. "$(dirname "$0")/common.sh"
TRAIN=$(abspath "$1"); DEVICE_ID=$2; shift 2
ARGS=(--train_mindrecord="$TRAIN" --device_id="$DEVICE_ID")
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then ARGS+=(--config_path="$(abspath "$1")"); shift; fi
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then ARGS+=(--device_target="$1"); shift; fi
python train.py "${ARGS[@]}" "$@"
