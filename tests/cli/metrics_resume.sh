#!/usr/bin/env bash
# metrics.jsonl and results.h5's history across kill -9 and resume. A run is killed (SIGKILL,
# GORP_FAULT_LOG_KILL=k: right after its k-th metrics line, so at a known point whatever the
# machine's speed) again and again, between checkpoints, inside an evaluation row, mid-task, and
# left with an unfinished last line; after the last resume its metrics.jsonl must hold every
# training step and evaluation cell exactly once, in run order, with the uninterrupted run's
# losses, gradient norms and scores, and its results.h5 the same loss curves (each equal to the
# file's losses), the resolved config and a time per task and row. The same for mtl (one curve) and
# under two data-parallel ranks (rank 0 alone writes). A damaged line stops the resume naming it.
. "$(dirname "$0")/lib.bash"

small_run_config "$work/base.ini"
printf 'include = base.ini\n' >"$work/c.ini"

# check RUN REF: RUN's metrics.jsonl and results.h5 against the uninterrupted REF's (tol: the
# relative tolerance of the losses, 0 = bit for bit)
check() {
  "$GORP_PYTHON" - "$1" "$2" "$3" "$work/config.txt" <<'PY'
import json, math, sys
import h5py, numpy as np
run, ref, tol, config = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
def lines(d):
    return [json.loads(l) for l in open(f"{d}/metrics.jsonl")]
def key(x):
    return (x["kind"], x.get("after"), x["task_index"], x.get("step"))
a, b = lines(run), lines(ref)
ka, kb = [key(x) for x in a], [key(x) for x in b]
dup = sorted({k for k in ka if ka.count(k) > 1})
if dup: sys.exit(f"{run}/metrics.jsonl: {len(dup)} lines twice, e.g. {dup[:3]}")
if ka != kb:
    sys.exit(f"{run}/metrics.jsonl: {len(ka)} lines, not the uninterrupted run's {len(kb)} in its "
             f"order; missing {sorted(set(kb) - set(ka))[:3]}, extra {sorted(set(ka) - set(kb))[:3]}")
if not any(x["kind"] == "train" for x in a) or not any(x["kind"] == "eval" for x in a):
    sys.exit("no train or no eval lines")
for x, y in zip(a, b):
    fields = ["accuracy", "in_list", "correct", "n"] if x["kind"] == "eval" else \
        ["loss", "grad_norm", "tokens", "steps", "task"] + [k for k in ("lr", "lora_lr", "full_lr") if k in y]
    for f in fields:
        u, v = x[f], y[f]
        same = u == v if tol == 0 or isinstance(u, str) else math.isclose(u, v, rel_tol=tol)
        if not same: sys.exit(f"{key(x)}: {f} {u} vs the uninterrupted run's {v}")
    if x["kind"] == "train" and not (x["elapsed_s"] > 0 and x["tokens_per_s"] > 0):
        sys.exit(f"{key(x)}: elapsed_s {x['elapsed_s']}, tokens_per_s {x['tokens_per_s']}")
# elapsed_s counts from the task's first step across resumes: it grows step by step
train = {}
for x in a:
    if x["kind"] == "train": train.setdefault(x["task_index"], []).append(x["elapsed_s"])
for k, el in train.items():
    if any(u >= v for u, v in zip(el, el[1:])):
        sys.exit(f"task {k}: elapsed_s does not grow step by step across the resumes: {el}")
with h5py.File(f"{run}/results.h5") as f, h5py.File(f"{ref}/results.h5") as g:
    names = sorted(g["loss_curves"])
    if sorted(f["loss_curves"]) != names or not names:
        sys.exit(f"results.h5 loss curves {sorted(f['loss_curves'])}, want {names}")
    for i, n in enumerate(names):
        c = f["loss_curves"][n][...]
        steps = [x for x in a if x["kind"] == "train" and x["task_index"] == i + 1]
        if c.dtype != np.float32 or not np.array_equal(c, np.float32([x["loss"] for x in steps])):
            sys.exit(f"results.h5 loss_curves/{n} {c} differs from metrics.jsonl's losses")
        if not np.allclose(c, g["loss_curves"][n][...], rtol=tol, atol=0):
            sys.exit(f"results.h5 loss_curves/{n} differs from the uninterrupted run's")
        if f["loss_curves"][n].attrs["task"].decode() != steps[0]["task"]:
            sys.exit(f"loss_curves/{n} task attribute {f['loss_curves'][n].attrs['task']}")
    ts, es = f["run"].attrs["train_seconds"], f["run"].attrs["eval_seconds"]
    rows = sorted({x["after"] for x in a if x["kind"] == "eval"})
    if len(ts) != len(names) or not np.all(es[rows] > 0) or \
            not np.allclose(ts, [train[k][-1] for k in sorted(train)], rtol=1e-12, atol=0):
        sys.exit(f"results.h5 train_seconds {ts} (want each task's last elapsed_s), eval_seconds {es}")
    want = open(config).read().split("\n", 1)[1]  # gorp config's text, less its comment line
    if f["run"].attrs["config"].decode() != want or "gorp_version" not in f.attrs:
        sys.exit("results.h5: config attribute is not the resolved config, or no gorp_version")
PY
}

# kills RUN_DIR K...: the run killed after its K-th line for each K in turn (each must die, and
# the next resume must find a checkpoint), then completed; extra gorp options in $opts
kills() {
  local dir=$1 k rc
  shift
  for k in "$@"; do
    { (GORP_FAULT_LOG_KILL=$k "${launch[@]}" "$GORP" run "$work/c.ini" --set run.out_dir="$dir" \
      "${opts[@]}" >"$work/kill.log" 2>&1); } 2>/dev/null # no "Killed" line from bash
    rc=$?
    [ "$rc" -ne 0 ] || { fail "$dir: GORP_FAULT_LOG_KILL=$k did not stop the run"; return 1; }
  done
  printf '{"kind":"train","task' >>"$dir/metrics.jsonl" # a line cut short by a crash
  "${launch[@]}" "$GORP" run "$work/c.ini" --set run.out_dir="$dir" "${opts[@]}" \
    >"$work/resume.log" 2>&1 || { fail "$dir: final resume"; tail -5 "$work/resume.log"; return 1; }
}

launch=()
opts=()
"$GORP" config "$work/c.ini" --set run.out_dir="$work/ref" >"$work/config.txt"
"$GORP" run "$work/c.ini" --set run.out_dir="$work/ref" >"$work/ref.log" 2>&1 \
  || { fail "uninterrupted run"; tail -5 "$work/ref.log"; }
# the run: zero-shot row (lines 1-2), SST-2 steps 1-6 (3-8, checkpoints after steps 2 and 4), row
# 1 (9-10), CB steps (11-16), row 2 (17-18). Kills: before the step-2 checkpoint (line 4: the
# resume drops step 1-2), after it (3: drops step 3), inside row 1 (5 after resuming at step 2:
# drops steps 5-6 and SST-2's cell), in CB (6 after resuming at step 4).
"$GORP" config "$work/c.ini" --set run.out_dir="$work/run" >"$work/config.txt"
if kills "$work/run" 4 3 5 6; then
  if out=$(check "$work/run" "$work/ref" 0 2>&1); then
    pass "kill -9 x4 and resumes: every step and cell once, losses, scores, curves as uninterrupted"
  else
    fail "kill -9 x4 and resumes: $out"
  fi
  "$GORP" inspect "$work/run/results.h5" >"$work/inspect.txt" 2>&1
  grep -q "^train_seconds" "$work/inspect.txt" && grep -q "^config  *[0-9]* lines" "$work/inspect.txt" \
    && grep -q "task_01 6: .*task_02 6: " "$work/inspect.txt" \
    && pass "gorp inspect results.h5 shows the times, the config and both loss curves" \
    || { fail "gorp inspect results.h5:"; cat "$work/inspect.txt"; }
  if same_run "$work/run" "$work/ref"; then
    pass "the resumed run's results.h5 (loss curves included), model and checkpoint bit for bit"
  else
    fail "resumed run differs from the uninterrupted one"
  fi
fi

# a signal inside the zero-shot row (after its 3rd evaluation batch of one prompt: inside CB's
# cell), then a kill -9 right after the resumed run's first line, CB's cell: the checkpoint still
# says the row stopped in CB's column, so the next resume drops that line
opts=(--set eval.batch_size=1)
"$GORP" config "$work/c.ini" --set run.out_dir="$work/evs" "${opts[@]}" >"$work/config.txt"
GORP_FAULT_EVAL_SIGNAL=3 "$GORP" run "$work/c.ini" --set run.out_dir="$work/evs" "${opts[@]}" \
  >"$work/evs.log" 2>&1
rc=$?
[ "$rc" = 75 ] && [ "$(wc -l <"$work/evs/metrics.jsonl")" = 1 ] \
  || fail "signal inside the zero-shot row: exit $rc, $(wc -l <"$work/evs/metrics.jsonl") lines"
if kills "$work/evs" 1; then
  out=$(check "$work/evs" "$work/ref" 0 2>&1) \
    && pass "stopped inside a row, killed after the resumed cell: every cell once, as uninterrupted" \
    || fail "stopped inside a row, then killed: $out"
fi
opts=()

# a fresh run (no checkpoint) in a folder where an earlier run left a metrics.jsonl: not read
# (whatever it holds), replaced by the run's own lines
mkdir -p "$work/fresh" && printf 'junk from an earlier run\n{"kind":"tr' >"$work/fresh/metrics.jsonl"
"$GORP" config "$work/c.ini" --set run.out_dir="$work/fresh" >"$work/config.txt"
out=""
if "$GORP" run "$work/c.ini" --set run.out_dir="$work/fresh" >"$work/fresh.log" 2>&1 \
  && out=$(check "$work/fresh" "$work/ref" 0 2>&1); then
  pass "a fresh run replaces an earlier metrics.jsonl without reading it"
else
  fail "a fresh run over an earlier metrics.jsonl: ${out:-$(tail -3 "$work/fresh.log")}"
fi

# a damaged line before the checkpoint's position: the resume stops naming it, the file kept
cp -r "$work/run" "$work/bad"
sed -i '5s/.*/{"kind": "train", "garbage": 1}/' "$work/bad/metrics.jsonl"
cp "$work/bad/metrics.jsonl" "$work/bad.jsonl"
expect_error "a damaged metrics line stops the resume naming the file and line" \
  "metrics.jsonl, line 5: not a metrics line" "$GORP" run "$work/c.ini" --set run.out_dir="$work/bad"
cmp -s "$work/bad/metrics.jsonl" "$work/bad.jsonl" && pass "the damaged file is left as it was" \
  || fail "the damaged metrics.jsonl was changed"

# mtl: one curve, /loss_curves/mtl
opts=(--set run.method=mtl --set train.epochs=2)
"$GORP" config "$work/c.ini" --set run.out_dir="$work/mtl_ref" "${opts[@]}" >"$work/config.txt"
"$GORP" run "$work/c.ini" --set run.out_dir="$work/mtl_ref" "${opts[@]}" >"$work/ref.log" 2>&1 \
  || { fail "uninterrupted mtl run"; tail -5 "$work/ref.log"; }
"$GORP" config "$work/c.ini" --set run.out_dir="$work/mtl" "${opts[@]}" >"$work/config.txt"
if kills "$work/mtl" 5 4; then
  out=$(check "$work/mtl" "$work/mtl_ref" 0 2>&1) && [ -n "$("$GORP_PYTHON" -c \
    'import h5py,sys; print(*h5py.File(sys.argv[1])["loss_curves"])' "$work/mtl/results.h5" |
    grep -x mtl)" ] && pass "mtl: killed twice, resumed; one curve, loss_curves/mtl, every step once" \
    || fail "mtl: $out"
fi

# two data-parallel ranks: rank 0 alone writes; losses as one rank's up to reduction order
if command -v mpirun >/dev/null; then
  launch=(mpirun --allow-run-as-root --oversubscribe -np 2)
  opts=(--set parallel.dp=2)
  "$GORP" config "$work/c.ini" --set run.out_dir="$work/dp" "${opts[@]}" >"$work/config.txt"
  if kills "$work/dp" 5; then
    out=$(check "$work/dp" "$work/ref" 1e-4 2>&1) \
      && pass "dp = 2, killed and resumed: every step and cell once (rank 0's), losses as one rank's" \
      || fail "dp = 2: $out"
  fi
else
  fail "mpirun is not on PATH"
fi
finish
