#!/usr/bin/env bash
# One run per run.out_dir: gorp run holds an exclusive lock on run.out_dir/gorp.lock for its whole
# life. A second run on the same directory fails at once with exit 3, naming the holder (pid, host,
# start time); the first run's results are those of a run alone (two runs used to both "succeed",
# or fail renaming each other's files). The lock ends with its process.
. "$(dirname "$0")/lib.bash"

small_run_config "$work/base.ini"
printf 'include = base.ini\n[run]\nmethod = inclora\n[train]\nepochs = 60\n' >"$work/c.ini"
"$GORP" run "$work/c.ini" --set run.out_dir="$work/ref" >"$work/ref.log" 2>&1 \
  || { fail "reference run"; cat "$work/ref.log"; }

# the first run, frozen (SIGSTOP) as soon as it holds the lock (its 60 epochs leave seconds for
# that), so that the second surely overlaps it
"$GORP" run "$work/c.ini" >"$work/first.log" 2>&1 &
first=$!
for _ in $(seq 600); do
  grep -q "^pid $first on host" "$work/run/gorp.lock" 2>/dev/null && break
  kill -0 "$first" 2>/dev/null || break
  sleep 0.1
done
if grep -q "^pid $first on host $(hostname) since 20" "$work/run/gorp.lock" 2>/dev/null; then
  pass "the run writes its pid, host and start time into run.out_dir/gorp.lock"
else
  fail "no gorp.lock naming pid $first: $(cat "$work/run/gorp.lock" 2>&1)"
fi
kill -STOP "$first" 2>/dev/null
"$GORP" run "$work/c.ini" >"$work/second.log" 2>"$work/second.err"
rc=$?
if [ "$rc" -eq 3 ] && grep -q "in use by another gorp run (pid $first on host" "$work/second.err"; then
  pass "a second run on the same run.out_dir exits 3 naming the holder"
else
  fail "second run: exit $rc"; sed 's/^/    /' "$work/second.err" | head -5
fi
kill -CONT "$first" 2>/dev/null
wait "$first"
rc=$?
if [ "$rc" -eq 0 ] && same_run "$work/run" "$work/ref"
then
  pass "the first run ends as a run alone would (results and adapters bit-identical)"
else
  fail "the first run: exit $rc"; tail -5 "$work/first.log"
fi
if "$GORP" run "$work/c.ini" >"$work/third.log" 2>&1; then
  pass "after the first run ended, a new run takes the lock"
else
  fail "a run after the first ended:"; tail -5 "$work/third.log"
fi
finish
