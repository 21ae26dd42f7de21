#!/usr/bin/env bash
# The model zoo's 310 inference flow: preprocess -> runner -> postprocess.
#
# usage: bash scripts/run_infer_310.sh [MODEL_PATH] [DATASET_PATH] [NEED_PREPROCESS] [DEVICE_ID] [DEVICE_TYPE] [RUNNER]
#   MODEL_PATH       model exported with export.py --batch_size=1: --file_format=MINDIR (the
#                    zoo's; MindSpore Lite on Ascend, or the Python runner) or ONNX (the
#                    ONNX Runtime C++ runner on CPU/GPU, or the Python runner)
#   DATASET_PATH     NEED_PREPROCESS=y: the test MindRecord file (mnist_test.mindrecord);
#                    NEED_PREPROCESS=n: a folder written by preprocess.py (00_data, 01_label, manifest.json)
#   NEED_PREPROCESS  y|n
#   DEVICE_ID        device number
#   DEVICE_TYPE      Ascend | GPU | CPU (default: Ascend where an Ascend driver is installed, else CPU)
#   RUNNER           cpp | python (infer_mindir.py: MindSpore for a MINDIR, ONNX Runtime for ONNX).
#                    cpp is ascend310_infer's program, built by ascend310_infer/build.sh when
#                    missing: for a MINDIR on MindSpore Lite (ascend310_infer/out/main, needs
#                    MS_LITE_HOME), for an ONNX file on ONNX Runtime
#                    (ascend310_infer/out_onnxruntime/main, built from the project's packages).
#                    Default: cpp on Ascend (the zoo's flow) and for ONNX files; python for a
#                    MINDIR elsewhere, because the only MindSpore Lite on the package index
#                    (2.0.0) cannot read the MINDIR files that MindSpore 2.10 writes (MindIR
#                    version 3).
# Environment: CONFIG_ARGS="--config_path=... [--key=value ...]" goes to preprocess.py and
# postprocess.py (use the config the model was exported with).
#
# Like the zoo's script, everything is written to the current directory: preprocess_Result/,
# result_Files/, time_Result/, build.log, infer.log, acc.log.
set -u

usage() {
    [ -n "${1:-}" ] && echo "error: $1" >&2
    echo "usage: bash scripts/run_infer_310.sh [MODEL_PATH] [DATASET_PATH] [NEED_PREPROCESS] [DEVICE_ID] [DEVICE_TYPE(optional: Ascend|GPU|CPU, default Ascend if present, else CPU)] [RUNNER(optional: cpp|python, default cpp on Ascend or for an .onnx model, else python)]" >&2
    echo "  MODEL_PATH: a .mindir or an .onnx file from export.py --batch_size=1" >&2
    echo "  NEED_PREPROCESS=y: DATASET_PATH is the test MindRecord file; n: a preprocess_Result folder from preprocess.py" >&2
    echo "  CONFIG_ARGS=\"--config_path=...\" (environment) is passed to preprocess.py and postprocess.py" >&2
    exit 2
}
fail() { echo "run_infer_310.sh: $1" >&2; exit "${2:-1}"; }

if [ $# -lt 4 ] || [ $# -gt 6 ]; then
    usage "expected 4 to 6 arguments, got $#"
fi
case "$3" in y|Y) NEED_PREPROCESS=y ;; n|N) NEED_PREPROCESS=n ;; *) usage "NEED_PREPROCESS must be y or n, got '$3'" ;; esac
[[ "$4" =~ ^[0-9]+$ ]] || usage "DEVICE_ID must be a non-negative integer, got '$4'"
DEVICE_ID=$4
# An Ascend machine has the driver's npu-smi or the CANN folder (ASCEND_HOME_PATH / /usr/local/Ascend).
has_ascend() { command -v npu-smi >/dev/null 2>&1 || [ -n "${ASCEND_HOME_PATH:-}" ] || [ -d /usr/local/Ascend ]; }
if [ -n "${5:-}" ]; then
    DEVICE_TYPE=$5
elif has_ascend; then
    DEVICE_TYPE=Ascend
else
    DEVICE_TYPE=CPU
    echo "DEVICE_TYPE: CPU (no Ascend driver found; give Ascend, GPU or CPU as the 5th argument to choose)"
fi
case "$DEVICE_TYPE" in Ascend|GPU|CPU) ;; *) usage "DEVICE_TYPE must be Ascend, GPU or CPU, got '$DEVICE_TYPE'" ;; esac
case "$1" in *.onnx|*.ONNX) FORMAT=onnx ;; *) FORMAT=mindir ;; esac
if [ -n "${6:-}" ]; then
    RUNNER=$6
elif [ "$DEVICE_TYPE" = Ascend ]; then
    RUNNER=cpp
elif [ "$FORMAT" = onnx ]; then
    RUNNER=cpp
    echo "RUNNER: cpp (the ONNX Runtime C++ runner, ascend310_infer/out_onnxruntime/main; give python as the 6th argument for ONNX Runtime from Python)"
else
    RUNNER=python
    echo "RUNNER: python (infer_mindir.py with MindSpore). The C++ runner here runs ONNX: python export.py --file_format=ONNX --batch_size=1 ..., then pass the .onnx file (a MINDIR needs a MindSpore Lite that reads MindSpore 2.10's MindIR, see docs/deployment.md)"
fi
case "$RUNNER" in cpp|python) ;; *) usage "RUNNER must be cpp or python, got '$RUNNER'" ;; esac
if [ "$RUNNER" = cpp ] && [ "$FORMAT" = onnx ] && [ "$DEVICE_TYPE" = Ascend ]; then
    usage "an ONNX model runs on CPU or GPU (ONNX Runtime); on Ascend give a MINDIR (MindSpore Lite)"
fi
PYTHON_HINT="hint: the Python runner runs the same protocol: bash scripts/run_infer_310.sh MODEL DATASET y|n DEVICE_ID $DEVICE_TYPE python; on CPU/GPU the C++ runner runs ONNX exports (export.py --file_format=ONNX --batch_size=1)"

# common.sh moves to the repository root and activates .venv; the outputs belong in the
# caller's directory, so come back to it afterwards.
PWD_AT_CALL="$PWD"
# shellcheck disable=SC1091
. "$(dirname "$0")/common.sh"
cd "$PWD_AT_CALL" || exit 1
# realpath -m tidies "./" and "../" for the messages (coreutils; plain abspath otherwise).
tidy() { realpath -m "$1" 2>/dev/null || abspath "$1"; }
MODEL=$(tidy "$1")
DATASET=$(tidy "$2")
# Word splitting on purpose: CONFIG_ARGS holds several --key=value options.
read -r -a EXTRA <<<"${CONFIG_ARGS:-}"

[ -f "$MODEL" ] || fail "MODEL_PATH not found: $MODEL" 2
export GLOG_v="${GLOG_v:-3}"   # MindSpore / MindSpore Lite: errors only in the logs

# ---- preprocess ----
if [ "$NEED_PREPROCESS" = y ]; then
    [ -f "$DATASET" ] || fail "DATASET_PATH (the test MindRecord) not found: $DATASET" 2
    PRE="$PWD_AT_CALL/preprocess_Result"
    rm -rf "$PRE"
    echo "[1/3] preprocess: $DATASET -> $PRE"
    python "$ROOT/preprocess.py" --test_mindrecord="$DATASET" --result_path="$PRE/" ${EXTRA[@]+"${EXTRA[@]}"} \
        || fail "preprocess failed (exit $?): see the messages above"
else
    PRE="${DATASET%/}"
    [ -d "$PRE/00_data" ] || fail "DATASET_PATH must be a preprocess_Result folder with 00_data/ when NEED_PREPROCESS=n: $PRE" 2
    echo "[1/3] preprocess: skipped, using $PRE"
fi
DATA_DIR="$PRE/00_data"
LABEL_DIR="$PRE/01_label"
# a stochastic model's noise (preprocess.py writes it for SRVP): the model's second input
NOISE_ARGS=()
[ -d "$PRE/02_noise" ] && NOISE_ARGS=(--input1_path="$PRE/02_noise")

# ---- inference ----
RESULT_DIR="$PWD_AT_CALL/result_Files"
rm -rf "$RESULT_DIR" "$PWD_AT_CALL/time_Result"
mkdir -p "$RESULT_DIR"
if [ "$RUNNER" = cpp ]; then
    if [ "$FORMAT" = onnx ]; then BACKEND=onnxruntime; APP="$ROOT/ascend310_infer/out_onnxruntime/main"
    else BACKEND=lite; APP="$ROOT/ascend310_infer/out/main"; fi
    # (re)built when missing or older than its sources
    STALE=$(find "$ROOT/ascend310_infer/src" "$ROOT/ascend310_infer/inc" "$ROOT/ascend310_infer/CMakeLists.txt" \
        -newer "$APP" 2>/dev/null | head -n 1)
    if [ ! -x "$APP" ] || [ -n "$STALE" ]; then
        echo "[2/3] building $APP (log: build.log)"
        BACKEND=$BACKEND BUILD_DIR="$(dirname "$APP")" bash "$ROOT/ascend310_infer/build.sh" >build.log 2>&1
        rc=$?
        if [ $rc -ne 0 ]; then
            cat build.log >&2
            echo "$PYTHON_HINT" >&2
            fail "building ascend310_infer failed (exit $rc; log: build.log)" "$rc"
        fi
    fi
    echo "[2/3] inference: $APP on $DEVICE_TYPE $DEVICE_ID (log: infer.log)"
    "$APP" --model_path="$MODEL" --input0_path="$DATA_DIR" ${NOISE_ARGS[@]+"${NOISE_ARGS[@]}"} --device_type="$DEVICE_TYPE" \
        --device_id="$DEVICE_ID" --output_dir="$RESULT_DIR" >infer.log 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
        grep -E '^(error|hint):|mind ir version' infer.log >&2 || tail -n 20 infer.log >&2
        [ "$DEVICE_TYPE" = Ascend ] || [ "$FORMAT" = onnx ] || echo "$PYTHON_HINT" >&2
        fail "inference failed (exit $rc; log: infer.log)"
    fi
else
    echo "[2/3] inference: infer_mindir.py ($([ "$FORMAT" = onnx ] && echo "ONNX Runtime" || echo MindSpore)) on $DEVICE_TYPE $DEVICE_ID (log: infer.log)"
    python "$ROOT/infer_mindir.py" --mindir_path="$MODEL" --input0_path="$DATA_DIR" ${NOISE_ARGS[@]+"${NOISE_ARGS[@]}"} \
        --device_target="$DEVICE_TYPE" --device_id="$DEVICE_ID" --output_dir="$RESULT_DIR" >infer.log 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
        tail -n 20 infer.log >&2
        fail "inference failed (exit $rc; log: infer.log)"
    fi
fi
if [ -f time_Result/test_perform_static.txt ]; then
    cat time_Result/test_perform_static.txt
else
    grep -h 'NN inference cost average time' infer.log || true
fi

# ---- postprocess ----
echo "[3/3] postprocess: $RESULT_DIR vs $LABEL_DIR -> acc.log"
rm -f acc.log
python "$ROOT/postprocess.py" --result_dir="$RESULT_DIR" --label_dir="$LABEL_DIR" ${EXTRA[@]+"${EXTRA[@]}"} >postprocess.log 2>&1
rc=$?
if [ $rc -ne 0 ]; then
    tail -n 20 postprocess.log >&2
    fail "postprocess failed (exit $rc; log: postprocess.log)"
fi
[ -f acc.log ] || fail "postprocess.py finished but wrote no acc.log (log: postprocess.log)"
head -n 40 acc.log
