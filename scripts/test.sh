#!/usr/bin/env bash
# Runs every test: the normal build (all tests, including the slow PyTorch reference and
# end-to-end ones) and an AddressSanitizer+UBSan build (unit tests, the fast end-to-end checks and
# the label "asan": reference, run-sequence, kill/resume, dp, tp-checkpoint and a tp subset, listed
# in tests/CMakeLists.txt). This is the README's test command and what .ci/run calls.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
scripts/setup.sh
py="$here/build/venv/bin/python"
echo "== normal build: all tests"
ctest --test-dir build --output-on-failure -j 2 -LE asan_only
echo "== sanitizer build (ASan+UBSan): fast tests and the asan subset"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DGORP_SANITIZE=ON -DGORP_CUDA=OFF \
  -DGORP_PYTHON="$py" >/dev/null
cmake --build build-asan -j "$(nproc)" >/dev/null
ctest --test-dir build-asan --output-on-failure -j 2 -L "fast|asan"
