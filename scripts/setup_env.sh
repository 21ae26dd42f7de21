#!/usr/bin/env bash
# Source this file: activates a virtual environment (the active one, else ./.venv, created
# if needed) and installs requirements.txt (plus requirements-test.txt with WITH_TESTS=1)
# when they changed since the last install (a stamp per file and content in the venv).
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${VIRTUAL_ENV:-}" ]; then
    if [ ! -x "$_root/.venv/bin/python" ]; then
        echo "[setup] creating virtual environment $_root/.venv"
        python3 -m venv "$_root/.venv" || { echo "error: python3 -m venv failed (install python3-venv)" >&2; return 1 2>/dev/null || exit 1; }
    fi
    # shellcheck disable=SC1091
    . "$_root/.venv/bin/activate"
fi
_reqs=("$_root/requirements.txt")
[ "${WITH_TESTS:-0}" = "1" ] && _reqs+=("$_root/requirements-test.txt")
_args=()
_stamps=()
for _r in "${_reqs[@]}"; do
    _stamp="$VIRTUAL_ENV/.stpl-${_r##*/}-$(sha256sum <"$_r" | cut -c1-16)"
    if [ ! -f "$_stamp" ]; then
        _args+=(-r "$_r")
        _stamps+=("$_stamp")
    fi
done
if [ ${#_args[@]} -gt 0 ]; then
    echo "[setup] installing ${_args[*]##*/} into $VIRTUAL_ENV (first time: a few minutes, ~3 GB)"
    python -m pip install --disable-pip-version-check -q "${_args[@]}" || { echo "error: pip install failed" >&2; return 1 2>/dev/null || exit 1; }
    touch "${_stamps[@]}"
fi
export PYTHONPATH="$_root${PYTHONPATH:+:$PYTHONPATH}"
unset _root _reqs _stamp _stamps _args _r
