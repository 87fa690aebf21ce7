#!/usr/bin/env bash
# SIGUSR1/SIGTERM during start-up (before MPI_Init, the config, the model are ready) are honoured
# at the first checkpoint: exit 75, and the resumed run ends bit-identical to an uninterrupted
# one. gorp run catches them first thing in main (they used to kill it, rc 138/143, for its first
# ~0.3 s). The signal is sent right after the spawn while the launcher blocks it (the mask
# survives exec; gorp unblocks it once its handlers are in place), so it lands before gorp could
# have caught it whatever the machine's speed.
. "$(dirname "$0")/lib.bash"

small_run_config "$work/base.ini"
printf 'include = base.ini\n[run]\nmethod = inclora\ncheckpoint_every = 0\n' >"$work/c.ini"
"$GORP" run "$work/c.ini" --set run.out_dir="$work/ref" >"$work/ref.log" 2>&1 \
  || { fail "reference run"; cat "$work/ref.log"; }

for sig in USR1 TERM; do
  rm -rf "$work/run"
  "$GORP_PYTHON" - "$GORP" "$work/c.ini" "$sig" >"$work/$sig.log" 2>&1 <<'PY'
import os, signal, subprocess, sys
gorp, ini, name = sys.argv[1:]
sig = getattr(signal, "SIG" + name)
p = subprocess.Popen([gorp, "run", ini], preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_BLOCK, {sig}))
os.kill(p.pid, sig)
try:
    sys.exit(p.wait(timeout=300))
except subprocess.TimeoutExpired:
    p.kill()
    sys.exit(124)
PY
  rc=$?
  if [ "$rc" -eq 75 ] && [ -s "$work/run/checkpoints/LATEST" ]; then
    pass "SIG$sig at start-up: checkpointed at the first checkpoint, exit 75"
  else
    fail "SIG$sig at start-up: exit $rc"; tail -3 "$work/$sig.log" | sed 's/^/    /'
  fi
  if "$GORP" run "$work/c.ini" >"$work/resume.log" 2>&1 && same_run "$work/run" "$work/ref"
  then
    pass "SIG$sig at start-up: the resumed run ends bit-identical to the uninterrupted one"
  else
    fail "SIG$sig at start-up: resume"; tail -5 "$work/resume.log" | sed 's/^/    /'
  fi
done
finish
