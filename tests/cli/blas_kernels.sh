#!/usr/bin/env bash
# OpenBLAS's kernels (backend_blas_core_init, docs/ARCHITECTURE.md): on a CPU with AVX2/FMA or
# AVX-512, gorp runs OpenBLAS kernels that use them even where OpenBLAS itself falls back to its
# generic ones (a CPU newer than the library: 5x slower SGEMM), on one rank and under mpirun; a
# user's OPENBLAS_CORETYPE is kept; the run's first line names the kernels that ran.
. "$(dirname "$0")/lib.bash"

small_run_config "$work/run.ini"
# one step of one task, no zero-shot row: only the first line matters here
short=(--set data.tasks=SST-2 --set train.max_steps=1 --set eval.zero_shot=false)

kernels() { sed -n 's/^gorp run: .*(BLAS kernels \([A-Za-z0-9]*\))$/\1/p' "$1"; }
vector_core() { case "$1" in Haswell | Zen | SkylakeX | Cooperlake | SapphireRapids) return 0 ;; esac
  return 1; }
flags=$(grep -m1 '^flags' /proc/cpuinfo)
has() { grep -qw "$1" <<<"$flags"; }

run() { # NAME [env ARGS...]: a one-step run into $work/NAME
  local name=$1
  shift
  env "$@" "$GORP" run "$work/run.ini" "${short[@]}" --set run.out_dir="$work/$name" \
    >"$work/$name.log" 2>&1
}

if run plain -u OPENBLAS_CORETYPE; then
  k=$(kernels "$work/plain.log")
  if [ -z "$k" ]; then
    fail "the first line names no BLAS kernels:"; head -3 "$work/plain.log"
  elif [ "$k" = "n/a" ] || ! { has avx2 && has fma; }; then
    pass "kernels '$k' (no OpenBLAS, or a CPU without AVX2/FMA: nothing to choose)"
  elif vector_core "$k"; then
    pass "OpenBLAS runs vector kernels: $k"
  else
    fail "a CPU with AVX2/FMA runs OpenBLAS's generic '$k' kernels"
  fi
else
  fail "gorp run:"; tail -5 "$work/plain.log"
fi

# the user's choice is kept (and the line reads the kernels that really run)
if run chosen OPENBLAS_CORETYPE=Prescott; then
  k=$(kernels "$work/chosen.log")
  [ "$k" = Prescott ] || [ "$k" = n/a ] && pass "OPENBLAS_CORETYPE=Prescott kept: $k" \
    || fail "OPENBLAS_CORETYPE=Prescott gave kernels '$k'"
else
  fail "gorp run with OPENBLAS_CORETYPE:"; tail -5 "$work/chosen.log"
fi

# under mpirun the ranks start again before MPI_Init and still form one job
if OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 300 env -u OPENBLAS_CORETYPE \
  mpirun --allow-run-as-root --oversubscribe -np 2 "$GORP" run "$work/run.ini" "${short[@]}" \
  --set run.out_dir="$work/tp2" --set parallel.tp=2 >"$work/tp2.log" 2>&1; then
  [ "$(kernels "$work/tp2.log")" = "$(kernels "$work/plain.log")" ] \
    && pass "2 ranks under mpirun: kernels $(kernels "$work/tp2.log")" \
    || fail "2 ranks ran kernels '$(kernels "$work/tp2.log")', one rank '$(kernels "$work/plain.log")'"
else
  fail "gorp run on 2 ranks:"; tail -5 "$work/tp2.log"
fi
finish
