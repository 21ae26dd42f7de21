#!/usr/bin/env bash
# Shared by the run_*.sh scripts: go to the repository root and set up the environment
# (scripts/setup_env.sh: the active virtual environment, else ./.venv, created and filled
# with requirements.txt the first time), so the scripts work on a fresh clone.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
# shellcheck disable=SC1091
. "$ROOT/scripts/setup_env.sh" || exit 1
abspath() { case "$1" in /*) echo "$1" ;; *) echo "$PWD_AT_CALL/$1" ;; esac; }
