#!/usr/bin/env bash
# Every config shipped in inputs/ loads and runs (one step per task, one test item) on the shared
# data; the orders that contain yahoo stop at start-up naming the missing folder, and their
# *_noyahoo variants run to the end (synthetic configs use the suite's own orders). Configs of a
# model file (LLaMA-2-7B, the demo's base) must pass `gorp config` (every key valid, the order
# expanded).
. "$(dirname "$0")/lib.bash"
: "${GORP_SRC:?GORP_SRC must name the source tree}"
quick=(--set train.max_steps=1 --set data.max_train_per_task=8 --set data.max_test_per_task=1
       --set eval.max_new_tokens=2)
for cfg in "$GORP_SRC"/inputs/*/*.ini; do
  name=${cfg#"$GORP_SRC"/inputs/}
  out="$work/${name//\//_}"
  # a config of a model file (LLaMA-2-7B, the demo's pretrained base; an include may set it) is
  # checked with `gorp config`: slow_pretrain_base.sh runs the demo configs on a fresh base
  if grep -q "^init = .*\.h5" <("$GORP" config "$cfg" 2>/dev/null); then
    if "$GORP" config "$cfg" >"$work/log" 2>&1 && grep -q "^tasks = " "$work/log"; then
      pass "$name is a valid config ($(grep '^tasks = ' "$work/log"))"
    else
      fail "$name:"; cat "$work/log"
    fi
    continue
  fi
  if grep -q "^order = " "$cfg" && ! grep -q "^substitute" "$cfg" \
    && ! grep -q "^format = synthetic" "$cfg"; then
    if grep -q "yahoo" <(grep "^$(sed -n 's/^order = //p' "$cfg") " "$GORP_SRC/inputs/orders.txt"); then
      expect_error "$name stops at start-up naming yahoo" "dataset 'yahoo' not found" \
        "$GORP" run "$cfg" "${quick[@]}" --set run.out_dir="$out"
      [ ! -e "$out/results.h5" ] && pass "$name wrote no results" || fail "$name wrote results"
      continue
    fi
  fi
  if "$GORP" run "$cfg" "${quick[@]}" --set run.out_dir="$out" >"$work/log" 2>&1 \
    && [ -s "$out/results.h5" ]; then
    pass "$name runs to the end ($(grep -c '^loaded' "$work/log") tasks)"
  else
    fail "$name:"; tail -5 "$work/log"
  fi
done
finish
