#!/usr/bin/env bash
# The build enforces the layering (docs/ARCHITECTURE.md): for each "layer:header" argument, the
# probe source of that layer including gorp/<header> (a layer above it) must fail to compile on
# that very header, and the same layer's probe including a header from below must build.
# Probes: tests/CMakeLists.txt (GORP_LAYERING_PROBES). Usage: layering.sh BUILD_DIR layer:header...
set -uo pipefail
build=$1
shift
fail=0
for pair in "$@"; do
  layer=${pair%%:*} header=${pair#*:}
  if ! out=$(cmake --build "$build" --target "layering_${layer}_allowed" 2>&1); then
    echo "FAIL: layer $layer cannot build its allowed probe:"
    echo "$out" | tail -5
    fail=1
  fi
  if out=$(cmake --build "$build" --target "layering_${layer}_denied" 2>&1); then
    echo "FAIL: layer $layer compiled a source that includes gorp/$header.h from a layer above it"
    fail=1
  elif ! grep -q "gorp/$header.h: No such file" <<<"$out"; then
    echo "FAIL: layer ${layer}'s denied probe failed, but not on gorp/$header.h:"
    echo "$out" | tail -5
    fail=1
  else
    echo "ok: layer $layer cannot include gorp/$header.h"
  fi
done
exit $fail
