#!/usr/bin/env bash
# Downloads the MindSpore Lite C++ API (headers + libraries) for ascend310_infer/build.sh.
#
# usage: bash scripts/fetch_mindspore_lite.sh [DEST]
#   DEST defaults to ~/.cache/stpl/mindspore-lite-2.0.0. The last line printed is
#   MS_LITE_HOME=DEST, the value to give build.sh.
#
# The only MindSpore Lite on PyPI for Linux x86_64 is the mindspore-lite 2.0.0 wheel tagged
# cp37; it is fetched for that tag (no Python 3.7 needed: only its files are used) and
# unpacked. It weighs ~170 MB (~480 MB unpacked). Its runtime reads MindIR up to version 1,
# so it refuses MINDIR files from MindSpore 2.10 (version 3): see docs/deployment.md.
# Exit status: 0 ready, 3 the download failed (network/index), 1 other failures.
set -u

VERSION=2.0.0
DEST="${1:-${HOME:-/root}/.cache/stpl/mindspore-lite-$VERSION}"
DEST="${DEST%/}"
MARKER="$DEST/.stpl_unpacked"

die() { echo "fetch_mindspore_lite.sh: error: $1" >&2; exit "${2:-1}"; }

# Idempotent: the marker is written only after a complete unpack.
if [ -f "$MARKER" ] && [ -f "$DEST/mindspore_lite/include/api/model.h" ]; then
    echo "mindspore-lite $VERSION already unpacked in $DEST"
    echo "MS_LITE_HOME=$DEST"
    exit 0
fi

# DEST is replaced wholesale below: refuse a folder that holds anything else.
if [ -d "$DEST" ] && [ -n "$(ls -A "$DEST" 2>/dev/null)" ] && [ ! -d "$DEST/mindspore_lite" ]; then
    die "$DEST exists and is not an unpacked mindspore-lite wheel: give a new or empty folder"
fi

PY="$(command -v python || command -v python3 || true)"
[ -n "$PY" ] || die "no python on PATH (activate the project's venv: . .venv/bin/activate)"
"$PY" -m pip --version >/dev/null 2>&1 || die "$PY has no pip"

PARENT="$(dirname "$DEST")"
mkdir -p "$PARENT" || die "cannot create $PARENT"
WORK="$(mktemp -d "$PARENT/.fetch-mindspore-lite.XXXXXX")" || die "cannot create a temporary folder in $PARENT"
trap 'rm -rf "$WORK"' EXIT

echo "downloading mindspore-lite==$VERSION (cp37 manylinux1_x86_64 wheel, ~170 MB) with $PY -m pip ..."
if ! "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.7 \
        --platform manylinux1_x86_64 "mindspore-lite==$VERSION" -d "$WORK/wheel" >"$WORK/pip.log" 2>&1; then
    tail -n 15 "$WORK/pip.log" >&2
    die "could not download mindspore-lite==$VERSION from the package index (pip output above); check network access to PyPI or the pip index settings" 3
fi
WHEEL="$(find "$WORK/wheel" -maxdepth 1 -name "mindspore_lite-$VERSION-*.whl" | head -n 1)"
[ -n "$WHEEL" ] || die "pip reported success but no mindspore_lite-$VERSION wheel is in $WORK/wheel"

echo "unpacking $(basename "$WHEEL") ..."
# Python's zipfile rather than unzip, which is not always installed. Shared libraries need
# no execute bit to be loaded, so the permissions zipfile drops do not matter.
"$PY" -m zipfile -e "$WHEEL" "$WORK/unpacked" || die "cannot unpack $WHEEL"
[ -f "$WORK/unpacked/mindspore_lite/include/api/model.h" ] || die "the wheel has no mindspore_lite/include/api/model.h"
[ -f "$WORK/unpacked/mindspore_lite/lib/libmindspore-extendrt_python.so" ] \
    || die "the wheel has no mindspore_lite/lib/libmindspore-extendrt_python.so"

# Swap in the finished folder, so an interrupted run never leaves a half-unpacked DEST.
rm -rf "$DEST"
mv "$WORK/unpacked" "$DEST" || die "cannot move the unpacked wheel to $DEST"
date -u +%Y-%m-%dT%H:%M:%SZ >"$MARKER"
echo "unpacked into $DEST ($(du -sh "$DEST" 2>/dev/null | cut -f1))"
echo "MS_LITE_HOME=$DEST"
