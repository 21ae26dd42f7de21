#!/usr/bin/env bash
# Shared by the run_*.sh scripts: go to the repository root and use ./.venv if it exists
# and no virtual environment is active (scripts/setup_env.sh creates it).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$ROOT/.venv/bin/python" ]; then
    # shellcheck disable=SC1091
    . "$ROOT/.venv/bin/activate"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
abspath() { case "$1" in /*) echo "$1" ;; *) echo "$PWD_AT_CALL/$1" ;; esac; }
