#!/usr/bin/env bash
# Runs every test: the normal build (all tests, including the slow PyTorch reference and
# end-to-end ones), a build on the reference BLAS/LAPACK (numerics tests) and an
# AddressSanitizer+UBSan build (unit tests, the fast end-to-end checks and
# the label "asan": reference, run-sequence, kill/resume, dp, tp-checkpoint and a tp subset, listed
# in tests/CMakeLists.txt). This is the README's test command and what .ci/run calls.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
scripts/setup.sh
py="$here/build/venv/bin/python"
echo "== normal build: all tests"
ctest --test-dir build --output-on-failure -j 2 -LE asan_only
echo "== second configuration: reference BLAS/LAPACK (-DBLA_VENDOR=Generic), numerics tests"
# Debian's netlib BLAS/LAPACK (libblas-dev, liblapack-dev) sit in blas/ and lapack/ beside the
# libblas.so.3 alternative (OpenBLAS here); LIBRARY_PATH, CMAKE_LIBRARY_PATH and LD_LIBRARY_PATH
# pick them for this build and its tests only, never system-wide. The build then has no OpenBLAS
# thread calls (GORP_HAVE_OPENBLAS unset): one of them left in fails its link.
lib="/usr/lib/$(gcc -print-multiarch)"
ref="$lib/blas:$lib/lapack"
alt_tests=(gorp test_backend test_linalg test_linalg_dist test_lowrank test_ops_gradcheck)
LIBRARY_PATH="$ref" cmake -S . -B build-alt -DBLA_VENDOR=Generic -DCMAKE_LIBRARY_PATH="${ref/:/;}" \
  -DGORP_CUDA=OFF -DGORP_PYTHON="$py" >/dev/null
LIBRARY_PATH="$ref" cmake --build build-alt -j "$(nproc)" --target "${alt_tests[@]}" >/dev/null
libs=$(LD_LIBRARY_PATH="$ref" ldd build-alt/gorp)
if grep -q openblas <<<"$libs" || ! grep -q "$lib/blas/libblas.so.3" <<<"$libs" ||
  ! grep -q "$lib/lapack/liblapack.so.3" <<<"$libs"; then
  echo "build-alt/gorp does not run on the reference BLAS/LAPACK:" >&2
  echo "$libs" >&2
  exit 1
fi
LD_LIBRARY_PATH="$ref" ctest --test-dir build-alt --output-on-failure -j 2 --no-tests=error \
  -R '^(test_backend|test_linalg|test_linalg_dist|test_lowrank|test_ops_gradcheck|cli_linalg_dist_mpi|cli_run_end_to_end)$'
echo "== sanitizer build (ASan+UBSan): fast tests and the asan subset"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DGORP_SANITIZE=ON -DGORP_CUDA=OFF \
  -DGORP_PYTHON="$py" >/dev/null
cmake --build build-asan -j "$(nproc)" >/dev/null
ctest --test-dir build-asan --output-on-failure -j 2 -L "fast|asan"
