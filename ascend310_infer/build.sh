#!/usr/bin/env bash
# Builds the inference program ascend310_infer/<out>/main on one of two runtimes:
#   BACKEND=onnxruntime  ONNX Runtime's C++ API: runs the ONNX files export.py writes, on
#                        CPU (or GPU). The library is the onnxruntime wheel's (the active
#                        python's onnxruntime package, i.e. the project's .venv); the headers
#                        come from scripts/fetch_onnxruntime_headers.sh (npm, cached).
#                        Binary: ascend310_infer/out_onnxruntime/main.
#   BACKEND=lite         the MindSpore Lite C++ API (include/api/model.h + the library that
#                        defines mindspore::Model::Build): the model zoo's route for MINDIR
#                        files on Ascend 310. Binary: ascend310_infer/out/main.
#   Default: lite where MS_LITE_HOME is set or an Ascend driver is installed, else onnxruntime.
#
# usage: [BACKEND=lite|onnxruntime] bash ascend310_infer/build.sh
#   BACKEND=lite:
#   MS_LITE_HOME  where the API is; any of these layouts:
#                   DIR/include/api/model.h + DIR/lib                    (an unpacked wheel's mindspore_lite/)
#                   DIR/mindspore_lite/include/api/model.h + .../lib     (an unpacked wheel, its top folder)
#                   DIR/runtime/include/api/model.h + DIR/runtime/lib    (the official mindspore-lite tarball)
#                 scripts/fetch_mindspore_lite.sh downloads and unpacks the mindspore-lite 2.0.0 wheel.
#   BACKEND=onnxruntime:
#   ONNXRUNTIME_ROOT     the official onnxruntime-linux-x64-VERSION archive (include/ + lib/):
#                        headers and library from it, nothing fetched
#   ONNXRUNTIME_INCLUDE  folder with onnxruntime_cxx_api.h (default: fetched and cached)
#   ONNXRUNTIME_LIBRARY  libonnxruntime.so* (default: the active python's onnxruntime wheel)
#   BUILD_DIR     build folder (default ascend310_infer/out, or out_onnxruntime); the binary is BUILD_DIR/main.
# Exit status: 0 built, 2 the runtime's API was not found (the message says what to set),
# 3 a download failed, 1 other failures.
set -u

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
DEFAULT_CACHE="${HOME:-/root}/.cache/stpl/mindspore-lite-2.0.0"
has_ascend() { command -v npu-smi >/dev/null 2>&1 || [ -n "${ASCEND_HOME_PATH:-}" ] || [ -d /usr/local/Ascend ]; }
if [ -z "${BACKEND:-}" ]; then
    if [ -n "${MS_LITE_HOME:-}" ] || has_ascend; then BACKEND=lite; else BACKEND=onnxruntime; fi
fi
case "$BACKEND" in
    lite) BUILD_DIR="${BUILD_DIR:-$HERE/out}" ;;
    onnxruntime) BUILD_DIR="${BUILD_DIR:-$HERE/out_onnxruntime}" ;;
    *) echo "build.sh: error: BACKEND must be lite or onnxruntime, got '$BACKEND'" >&2; exit 2 ;;
esac

die() { echo "build.sh: error: $*" >&2; exit 1; }

# Prints "INCLUDE_ROOT<TAB>LIB_DIR<TAB>TOP" for the first layout found under $1.
find_layout() {
    local r="${1%/}"
    if [ -f "$r/include/api/model.h" ]; then
        printf '%s\t%s\t%s\n' "$r" "$r/lib" "$r"
    elif [ -f "$r/mindspore_lite/include/api/model.h" ]; then
        printf '%s\t%s\t%s\n' "$r/mindspore_lite" "$r/mindspore_lite/lib" "$r/mindspore_lite"
    elif [ -f "$r/runtime/include/api/model.h" ]; then
        printf '%s\t%s\t%s\n' "$r/runtime" "$r/runtime/lib" "$r"
    else
        return 1
    fi
}

# True when shared library $1 defines mindspore::Model::Build (mangled prefix below).
defines_model_api() {
    command -v nm >/dev/null 2>&1 || return 0   # cannot check: trust the file name
    nm -D --defined-only "$1" 2>/dev/null | grep -q ' T _ZN9mindspore5Model5Build'
}

guidance() {
    {
        echo "  Set MS_LITE_HOME to a MindSpore Lite package that has include/api/model.h, e.g."
        echo "    bash scripts/fetch_mindspore_lite.sh            # downloads the mindspore-lite 2.0.0 wheel (~170 MB)"
        echo "    MS_LITE_HOME=$DEFAULT_CACHE bash ascend310_infer/build.sh"
        if find_layout "$DEFAULT_CACHE" >/dev/null 2>&1; then
            echo "  (already fetched: $DEFAULT_CACHE)"
        fi
        echo "  or MS_LITE_HOME=/path/to/mindspore-lite-VERSION-linux-x64 (the official tarball, runtime/include + runtime/lib)."
        echo "  Note: MindSpore Lite 2.0 reads MindIR up to version 1, while MindSpore 2.10 exports version 3:"
        echo "  with that wheel the program builds and runs but refuses such models (see docs/deployment.md)."
        echo "  On CPU/GPU, export ONNX instead and build the ONNX Runtime runner: BACKEND=onnxruntime bash ascend310_infer/build.sh"
    } >&2
}

for tool in cmake make g++; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (install cmake, make and g++)"
done

# ---- BACKEND=onnxruntime ----
if [ "$BACKEND" = onnxruntime ]; then
    INC="${ONNXRUNTIME_INCLUDE:-}"
    LIBRARY="${ONNXRUNTIME_LIBRARY:-}"
    if [ -n "${ONNXRUNTIME_ROOT:-}" ]; then
        [ -n "$INC" ] || INC="$ONNXRUNTIME_ROOT/include"
        if [ -z "$LIBRARY" ]; then
            LIBRARY=$(find "$ONNXRUNTIME_ROOT/lib" -maxdepth 1 -name 'libonnxruntime.so*' -type f 2>/dev/null | sort | tail -n 1)
        fi
    fi
    if [ -z "$LIBRARY" ]; then
        PY="$(command -v python || command -v python3 || true)"
        PKG=""
        [ -n "$PY" ] && PKG=$("$PY" -c "import importlib.util as u, os; s = u.find_spec('onnxruntime'); print(os.path.dirname(s.origin) if s and s.origin else '')" 2>/dev/null || true)
        [ -n "$PKG" ] && LIBRARY=$(find "$PKG/capi" -maxdepth 1 -name 'libonnxruntime.so*' -type f 2>/dev/null | sort | tail -n 1)
        if [ -z "$LIBRARY" ]; then
            echo "build.sh: no ONNX Runtime library found: the active python (${PY:-none}) has no onnxruntime package with capi/libonnxruntime.so*." >&2
            echo "  Run from the project's environment (source .venv/bin/activate; bash scripts/setup_env.sh installs it)," >&2
            echo "  or set ONNXRUNTIME_LIBRARY=/path/to/libonnxruntime.so or ONNXRUNTIME_ROOT=/path/to/onnxruntime-linux-x64-VERSION." >&2
            exit 2
        fi
    fi
    [ -f "$LIBRARY" ] || { echo "build.sh: ONNXRUNTIME_LIBRARY=$LIBRARY does not exist" >&2; exit 2; }
    if command -v nm >/dev/null 2>&1 && ! nm -D --defined-only "$LIBRARY" 2>/dev/null | grep -q ' T OrtGetApiBase'; then
        echo "build.sh: $LIBRARY defines no OrtGetApiBase: not an ONNX Runtime library" >&2
        exit 2
    fi
    if [ -z "$INC" ]; then
        OUT=$(bash "$ROOT/scripts/fetch_onnxruntime_headers.sh")
        rc=$?
        echo "$OUT"
        [ $rc -eq 0 ] || exit $rc
        INC=$(printf '%s\n' "$OUT" | sed -n 's/^ONNXRUNTIME_INCLUDE=//p' | tail -n 1)
    fi
    [ -f "$INC/onnxruntime_cxx_api.h" ] || { echo "build.sh: no onnxruntime_cxx_api.h in $INC (ONNXRUNTIME_INCLUDE / ONNXRUNTIME_ROOT)" >&2; exit 2; }
    API=$(sed -n 's/^#define ORT_API_VERSION \([0-9]*\)$/\1/p' "$INC/onnxruntime_c_api.h")
    echo "build.sh: ONNX Runtime backend: headers $INC (C API version ${API:-?}), library $LIBRARY (opened at run time)"
    mkdir -p "$BUILD_DIR" || die "cannot create $BUILD_DIR"
    cmake -S "$HERE" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DSTPL_BACKEND=onnxruntime \
        -DONNXRUNTIME_INCLUDE="$INC" -DONNXRUNTIME_LIBRARY="$LIBRARY" >"$BUILD_DIR/cmake.log" 2>&1 \
        || { cat "$BUILD_DIR/cmake.log" >&2; die "cmake configure failed (log: $BUILD_DIR/cmake.log)"; }
    JOBS=$(nproc 2>/dev/null || echo 2)
    cmake --build "$BUILD_DIR" -- -j"$JOBS" || die "compile/link failed"
    [ -x "$BUILD_DIR/main" ] || die "build finished but $BUILD_DIR/main is missing"
    echo "build.sh: built ${BUILD_DIR#"$ROOT"/}/main (ONNX Runtime)"
    exit 0
fi

# ---- BACKEND=lite ----
LAYOUT=""
SOURCE=""
if [ -n "${MS_LITE_HOME:-}" ]; then
    if ! LAYOUT=$(find_layout "$MS_LITE_HOME"); then
        echo "build.sh: MS_LITE_HOME=$MS_LITE_HOME holds no MindSpore Lite C++ API: looked for" >&2
        echo "  $MS_LITE_HOME/include/api/model.h, $MS_LITE_HOME/mindspore_lite/include/api/model.h," >&2
        echo "  $MS_LITE_HOME/runtime/include/api/model.h" >&2
        guidance
        exit 2
    fi
    SOURCE="MS_LITE_HOME=$MS_LITE_HOME"
else
    # Python packages of the active interpreter: a mindspore_lite package (unpacked wheel on
    # the path) or a MindSpore that ships include/api (the 2.x wheels do not).
    PY="$(command -v python || command -v python3 || true)"
    NOTES=()
    if [ -n "$PY" ]; then
        for pkg in mindspore_lite mindspore; do
            dir=$("$PY" -c "import importlib.util as u, os; s = u.find_spec('$pkg'); print(os.path.dirname(s.origin) if s and s.origin else '')" 2>/dev/null || true)
            [ -n "$dir" ] || continue
            if LAYOUT=$(find_layout "$dir"); then
                SOURCE="python package $pkg at $dir"
                break
            fi
            ver=$("$PY" -c "import importlib.metadata as m; print(m.version('${pkg//_/-}'))" 2>/dev/null || echo "?")
            NOTES+=("  the active python's $pkg $ver ($dir) ships no include/api/model.h (MindSpore 2.x wheels have no C++ inference headers)")
        done
    fi
    if [ -z "$LAYOUT" ]; then
        echo "build.sh: no MindSpore Lite C++ API found: MS_LITE_HOME is not set." >&2
        for n in "${NOTES[@]}"; do echo "$n" >&2; done
        guidance
        exit 2
    fi
fi

IFS=$'\t' read -r INC_ROOT LIB_DIR TOP <<<"$LAYOUT"
LIB=""
for name in libmindspore-lite.so libmindspore-extendrt.so libmindspore-extendrt_python.so; do
    if [ -f "$LIB_DIR/$name" ] && defines_model_api "$LIB_DIR/$name"; then
        LIB="$LIB_DIR/$name"
        break
    fi
done
if [ -z "$LIB" ]; then
    echo "build.sh: found the headers in $INC_ROOT ($SOURCE) but no library defining mindspore::Model::Build" >&2
    echo "  in $LIB_DIR (looked for libmindspore-lite.so, libmindspore-extendrt.so, libmindspore-extendrt_python.so)." >&2
    guidance
    exit 2
fi

# Every folder of the package holding shared libraries goes into the binary's RPATH: the
# API library loads its dependencies (dnnl, glog, converter, plugins) by soname, and in the
# official tarball they sit in runtime/third_party/*/ and tools/converter/lib.
RPATH=$(find "$TOP" -maxdepth 5 -name '*.so*' \( -type f -o -type l \) -printf '%h\n' 2>/dev/null | sort -u | paste -sd ';' -)
[ -n "$RPATH" ] || RPATH="$LIB_DIR"

# The library's std::string ABI: symbols with __cxx11 mean the new one.
ABI=0
if command -v nm >/dev/null 2>&1 && nm -D --defined-only "$LIB" 2>/dev/null | grep -q '__cxx11'; then
    ABI=1
fi

# The Lite version, for the program's error messages: the wheel has version.py, the
# official tarball carries it in its folder name (mindspore-lite-2.0.0-linux-x64).
VER=""
if [ -f "$TOP/version.py" ]; then
    VER=$(sed -n "s/^__version__ = '\(.*\)'/\1/p" "$TOP/version.py")
else
    VER=$(basename "$TOP" | sed -n 's/^mindspore-lite-\([0-9][0-9.a-z]*\)-.*/\1/p')
fi

echo "build.sh: MindSpore Lite API from $SOURCE"
echo "  headers $INC_ROOT/include/api, library $LIB (_GLIBCXX_USE_CXX11_ABI=$ABI)"
echo "  MindSpore Lite version ${VER:-unknown}"
case "$VER" in
    1.*|2.0.*) echo "  warning: MindSpore Lite $VER reads MindIR up to version 1; MINDIR files from MindSpore 2.10 (version 3) will be refused." ;;
esac

mkdir -p "$BUILD_DIR" || die "cannot create $BUILD_DIR"
cmake -S "$HERE" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DSTPL_BACKEND=lite \
    -DMS_LITE_INCLUDE_ROOT="$INC_ROOT" -DMS_LITE_LIBRARY="$LIB" \
    -DMS_LITE_RPATH="$RPATH" -DMS_LITE_CXX11_ABI="$ABI" -DMS_LITE_VERSION="$VER" >"$BUILD_DIR/cmake.log" 2>&1 \
    || { cat "$BUILD_DIR/cmake.log" >&2; die "cmake configure failed (log: $BUILD_DIR/cmake.log)"; }
JOBS=$(nproc 2>/dev/null || echo 2)
cmake --build "$BUILD_DIR" -- -j"$JOBS" || die "compile/link failed"
[ -x "$BUILD_DIR/main" ] || die "build finished but $BUILD_DIR/main is missing"
echo "build.sh: built ${BUILD_DIR#"$ROOT"/}/main (MindSpore Lite)"
