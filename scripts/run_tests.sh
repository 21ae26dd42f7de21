#!/usr/bin/env bash
# Set up (virtual environment + requirements + pytest) and run the test suite.
# Extra arguments go to pytest, e.g. bash scripts/run_tests.sh -k config
set -u
cd "$(dirname "$0")/.."
WITH_TESTS=1 . scripts/setup_env.sh || exit 1
python -m pytest tests -q "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "error: pytest collected no tests" >&2
    exit 1
fi
exit "$rc"
