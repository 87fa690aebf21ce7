#!/usr/bin/env python3
"""Training-step speed of two gorp builds against each other: a change that must not cost speed
(a refactor) is measured here, in one run that alternates the builds round by round so that both
meet the same load.

For each size of bench_train.py (the same random model, batch, thread count and AdamW settings),
each build imports the model with its own `gorp import-hf` and runs `gorp fit --time`; rounds
alternate A, B, A, B, ... The step-1 losses of the two builds must agree bit for bit (the same
numbers, or the comparison is not of the same computation). Prints one Markdown table (mean and
fastest step of each build, B/A) and appends it to BENCHMARKS.md unless --no-append.

Not for: comparison with PyTorch (bench_train.py).

  build/venv/bin/python bench/bench_ab.py --a OLD/gorp --b build/gorp [--sizes tiny,small]
      [--rounds 3] [--threads 2]
"""
import argparse
import os
import re
import sys
import tempfile
import time

import bench_train as bt


def fit(gorp, d, warmup, steps, threads):
    h5 = os.path.join(d, f"model-{abs(hash(gorp))}.h5")
    if not os.path.exists(h5):
        bt.run([gorp, "import-hf", os.path.join(d, "hf"), h5])
    o = bt.OPT
    out = bt.run([gorp, "fit", "--model", h5, "--tokens", os.path.join(d, "ids.txt"), "--steps",
                  str(warmup + steps), "--warmup", str(warmup), "--time", "--lr", str(o["lr"]),
                  "--beta1", str(o["beta1"]), "--beta2", str(o["beta2"]), "--eps", str(o["eps"]),
                  "--weight-decay", str(o["weight_decay"]), "--grad-clip", str(o["grad_clip"])],
                 env=bt.thread_env(threads))
    first = re.search(r"step\s+1 loss (\S+)", out).group(1)
    return first, [float(x) for x in re.findall(r"step_s ([0-9.]+)", out)][warmup:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--a", required=True, help="the baseline gorp binary")
    ap.add_argument("--b", required=True, help="the changed gorp binary")
    ap.add_argument("--sizes", default="tiny,small")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args()
    import llama_ref as ref
    load = os.getloadavg()[0]
    rows = ["| size | A mean step s | A fastest | B mean step s | B fastest | B/A mean | B/A fastest |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as work:
        for size in args.sizes.split(","):
            s = bt.SIZES[size]
            cfg = bt.make_config(size, args.seq)
            d = os.path.join(work, size)
            os.makedirs(d)
            ref.save_hf(ref.make_model(cfg, seed=bt.SEED_MODEL), os.path.join(d, "hf"))
            ref.write_ids(os.path.join(d, "ids.txt"), bt.make_ids(cfg, args.batch, args.seq))
            times = {"a": [], "b": []}
            firsts = set()
            for r in range(args.rounds):
                for k in ("a", "b"):
                    t0 = time.monotonic()
                    first, ts = fit(getattr(args, k), d, s["warmup"], s["steps"], args.threads)
                    firsts.add(first)
                    times[k] += ts
                    print(f"[{size}] round {r + 1} {k.upper()}: mean {sum(ts) / len(ts):.4f} s "
                          f"({time.monotonic() - t0:.0f} s)", file=sys.stderr)
            if len(firsts) != 1:
                raise RuntimeError(f"{size}: the builds' step-1 losses differ: {sorted(firsts)}")
            ma, mb = (sum(times[k]) / len(times[k]) for k in ("a", "b"))
            fa, fb = min(times["a"]), min(times["b"])
            rows.append(f"| {size} | {ma:.4f} | {fa:.4f} | {mb:.4f} | {fb:.4f} | {mb / ma:.3f} | "
                        f"{fb / fa:.3f} |")
    print("\n".join(rows))
    if not args.no_append:
        bt.append_entry("bench_ab.py", "gorp build B against build A (training step)",
                        args.threads, load,
                        [f"A: `{args.a}`, B: `{args.b}`; {args.rounds} rounds alternating A, B; "
                         "step-1 losses equal"], rows)


if __name__ == "__main__":
    main()
