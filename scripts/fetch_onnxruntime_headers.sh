#!/usr/bin/env bash
# Fetches ONNX Runtime's C/C++ API headers for ascend310_infer/build.sh BACKEND=onnxruntime.
#
# usage: bash scripts/fetch_onnxruntime_headers.sh [DEST]
#   DEST defaults to ~/.cache/stpl/onnxruntime-headers-api29. The last line printed is
#   ONNXRUNTIME_INCLUDE=DEST/include, the folder holding onnxruntime_cxx_api.h.
#
# Why this route: the onnxruntime wheel in requirements.txt ships libonnxruntime.so but no
# headers; Debian 12 has no onnxruntime package, the onnxruntime-node npm package has no
# headers either. The npm package com.github.asus4.onnxruntime (ONNX Runtime for Unity, MIT)
# carries ONNX Runtime's own unmodified headers (API version 29) inside its iOS framework;
# they are the same on every platform, and the C API is backward compatible, so they build
# against the newer library of the wheel (1.31). Only the 15 headers are kept (the package is
# ~150 MB; npm keeps it in its cache). The tarball is checked against a pinned sha512.
# With internet access, ONNXRUNTIME_ROOT=/path/to/onnxruntime-linux-x64-VERSION (the official
# release archive, include/ + lib/) given to build.sh needs none of this.
# Exit status: 0 ready, 3 the download failed (network/registry), 1 other failures.
set -u

PACKAGE=com.github.asus4.onnxruntime
VERSION=0.4.9
INTEGRITY="sha512-BkzxduSZ9IkeDP6Q8lz2TFU2ie7hSSvS7ZIfzMooExoq0CNzJnuuGaUJ7IsojBgqO4ouD1jXah8OYyJbCN29Fg=="
API=29
HEADERS_IN_PACKAGE="package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/onnxruntime.framework/Headers"
DEST="${1:-${HOME:-/root}/.cache/stpl/onnxruntime-headers-api$API}"
DEST="${DEST%/}"
MARKER="$DEST/.stpl_unpacked"

die() { echo "fetch_onnxruntime_headers.sh: error: $1" >&2; exit "${2:-1}"; }

if [ -f "$MARKER" ] && [ -f "$DEST/include/onnxruntime_cxx_api.h" ]; then
    echo "ONNX Runtime headers (API $API) already in $DEST"
    echo "ONNXRUNTIME_INCLUDE=$DEST/include"
    exit 0
fi
if [ -d "$DEST" ] && [ -n "$(ls -A "$DEST" 2>/dev/null)" ] && [ ! -d "$DEST/include" ]; then
    die "$DEST exists and holds something else: give a new or empty folder"
fi
command -v npm >/dev/null 2>&1 || die "npm not found: install Node.js's npm (apt-get install npm), or give build.sh ONNXRUNTIME_ROOT (the official onnxruntime-linux-x64 archive)"
command -v tar >/dev/null 2>&1 || die "tar not found"

PARENT="$(dirname "$DEST")"
mkdir -p "$PARENT" || die "cannot create $PARENT"
WORK="$(mktemp -d "$PARENT/.fetch-onnxruntime-headers.XXXXXX")" || die "cannot create a temporary folder in $PARENT"
trap 'rm -rf "$WORK"' EXIT

echo "downloading the npm package $PACKAGE@$VERSION (~150 MB, for ONNX Runtime's headers) ..."
if ! npm pack "$PACKAGE@$VERSION" --json --pack-destination "$WORK" >"$WORK/pack.json" 2>"$WORK/npm.log"; then
    tail -n 15 "$WORK/npm.log" >&2
    die "npm could not download $PACKAGE@$VERSION (output above); check access to the npm registry" 3
fi
GOT=$(sed -n 's/.*"integrity": *"\([^"]*\)".*/\1/p' "$WORK/pack.json" | head -n 1)
[ "$GOT" = "$INTEGRITY" ] || die "$PACKAGE@$VERSION has integrity '$GOT', expected '$INTEGRITY': not the package this script was written for"
TARBALL=$(find "$WORK" -maxdepth 1 -name '*.tgz' | head -n 1)
[ -n "$TARBALL" ] || die "npm pack wrote no .tgz into $WORK"

mkdir -p "$WORK/unpacked" || die "cannot create $WORK/unpacked"
tar -xzf "$TARBALL" -C "$WORK/unpacked" --wildcards "$HEADERS_IN_PACKAGE/*.h" \
    || die "cannot extract the headers from $TARBALL"
HDIR="$WORK/unpacked/$HEADERS_IN_PACKAGE"
for h in onnxruntime_c_api.h onnxruntime_cxx_api.h onnxruntime_cxx_inline.h; do
    [ -f "$HDIR/$h" ] || die "the package has no $h"
done
grep -q "^#define ORT_API_VERSION $API\$" "$HDIR/onnxruntime_c_api.h" \
    || die "the headers are not ONNX Runtime API version $API"

mkdir -p "$WORK/out/include" || die "cannot create $WORK/out"
mv "$HDIR"/*.h "$WORK/out/include/" || die "cannot move the headers"
rm -rf "$DEST"
mv "$WORK/out" "$DEST" || die "cannot move the headers to $DEST"
echo "$PACKAGE@$VERSION $(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$MARKER"
echo "ONNX Runtime headers (API $API) in $DEST/include"
echo "ONNXRUNTIME_INCLUDE=$DEST/include"
