#!/usr/bin/env bash
# Data-parallel training with MindSpore's launcher msrun (HCCL on Ascend, NCCL on GPU,
# MindSpore's CPU collectives on CPU). batch_size is per device; see docs/training.md.
# usage: bash scripts/run_distribute_train.sh [DEVICE_NUM] [TRAIN_MINDRECORD_PATH] [CONFIG_PATH] [DEVICE_TARGET] [--key=value ...]
#   DEVICE_NUM      workers on this node
# Environment (multi-node: run the script on every node with the same MASTER_ADDR/MASTER_PORT):
#   WORKER_NUM      workers over all nodes (default DEVICE_NUM)
#   NODE_RANK       this node's index, 0 on the master node (default: let msrun assign)
#   MASTER_ADDR     address of node 0 (default 127.0.0.1), MASTER_PORT (default 8118)
#   LOG_DIR         per-rank logs (default ./log_distribute), CLUSTER_TIME_OUT seconds (default 120)
#   MS_NODE_TIMEOUT read by MindSpore itself: seconds without a heartbeat before a dead worker
#                   stops the job (MindSpore's default 30)
if [ $# -lt 2 ]; then
    echo "usage: bash scripts/run_distribute_train.sh [DEVICE_NUM] [TRAIN_MINDRECORD_PATH] [CONFIG_PATH] [DEVICE_TARGET] [--key=value ...]" >&2
    exit 2
fi
PWD_AT_CALL="$PWD"
. "$(dirname "$0")/common.sh"
DEVICE_NUM=$1
if ! [[ "$DEVICE_NUM" =~ ^[1-9][0-9]*$ ]]; then
    echo "error: DEVICE_NUM must be a positive integer, got '$DEVICE_NUM'" >&2
    exit 2
fi
TRAIN=$(abspath "$2"); shift 2
ARGS=(--distribute=true --train_mindrecord="$TRAIN" --device_num="$DEVICE_NUM")
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then ARGS+=(--config_path="$(abspath "$1")"); shift; fi
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then ARGS+=(--device_target="$1"); shift; fi
if ! command -v msrun > /dev/null; then
    echo "error: msrun (MindSpore's launcher) is not on PATH: activate the environment where mindspore is installed" >&2
    exit 2
fi
LOG_DIR=$(abspath "${LOG_DIR:-log_distribute}")
NODE_ARGS=()
[ -n "${NODE_RANK:-}" ] && NODE_ARGS+=(--node_rank="$NODE_RANK")
echo "msrun: ${WORKER_NUM:-$DEVICE_NUM} workers (${DEVICE_NUM} here), master ${MASTER_ADDR:-127.0.0.1}:${MASTER_PORT:-8118}, logs in $LOG_DIR"
msrun --worker_num="${WORKER_NUM:-$DEVICE_NUM}" --local_worker_num="$DEVICE_NUM" \
      --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${MASTER_PORT:-8118}" "${NODE_ARGS[@]}" \
      --log_dir="$LOG_DIR" --join=True --cluster_time_out="${CLUSTER_TIME_OUT:-120}" \
      train.py "${ARGS[@]}" "$@"
rc=$?
if [ $rc -ne 0 ]; then
    echo "error: distributed training failed (exit $rc); see $LOG_DIR/worker_*.log. The last good checkpoint is kept: rerun with --resume=latest" >&2
fi
exit $rc
