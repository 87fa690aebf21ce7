#!/usr/bin/env bash
# The README's first command: setup + build if needed, then `gorp run` on the embedded default.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
[ -x build/gorp ] || scripts/setup.sh
cmake --build build -j "$(nproc)" >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# the demo starts fresh: a run directory with checkpoints would otherwise be resumed
rm -rf runs/demo-default
exec build/gorp run inputs/demo/default.ini "$@"
