#!/usr/bin/env python3
"""Step cost of GORP against plain LoRA: `gorp run` trains the same randomly initialised LLaMA
(the tiny/small/medium shapes of bench_train.py; the synthetic suite's 384-token vocabulary) on
syn-dbpedia, then syn-amazon, once with `inclora` (LoRA q, v, r 8, AdamW) and once with `gorp`
(the paper's structure: LoRA q, v plus the gate trained by rank-8 projected Adam with the subspace
refreshed every T = 10 steps by the randomized SVD, both projected off the shared space that the
first task left). The second task's steps are timed (the first has no shared space yet): seconds
per step from `gorp run`'s progress line (training loop only; evaluation and basis extension
excluded). Prints one Markdown table and appends it to BENCHMARKS.md.

    build/venv/bin/python bench/bench_methods.py [--sizes tiny,small,medium] [--steps 40,20,10]
                                                 [--threads 2] [--rounds R] [--no-append]
"""
import argparse
import os
import re
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "ref"))
import bench_train as bt  # noqa: E402  (sizes, thread environment, runner)

METHODS = {
    "inclora": "[lora]\ntargets = q, v\nr = 8\nlr = 2e-4\n",
    "gorp": ("[lora]\ntargets = q, v\nr = 8\nlr = 2e-4\n[full]\ntargets = gate\n"
             "optimizer = lowrank\nrank = 8\nupdate_gap = 10\nlr = 1e-5\n[gorp]\naxis = paper\n"
             "basis_source = moment\nenergy = 0.9\nsvd = randomized\n"),
}
PROGRESS = re.compile(r"syn-amazon step +(\d+)/\d+ .* ([0-9.]+) tok/s +elapsed +([0-9.]+)s")


def config(size, method, steps, batch):
    s = bt.SIZES[size]
    return (f"[run]\nmethod = {method}\nseed = 1\nlog_every = 100000\n"
            f"[model]\nhidden_size = {s['hidden']}\nintermediate_size = {s['inter']}\n"
            f"num_layers = {s['layers']}\nnum_heads = {s['heads']}\nmax_seq = 256\n"
            f"[data]\nformat = synthetic\ntasks = syn-dbpedia, syn-amazon\n"
            f"synthetic_train = {steps * batch}\nsynthetic_test = 2\n"
            f"[train]\nbatch_size = {batch}\nmax_steps = {steps}\n"
            f"[eval]\nmax_new_tokens = 2\n" + METHODS[method])


def step_seconds(gorp, size, method, steps, batch, work, env, round_=0):
    path = os.path.join(work, f"{size}-{method}.ini")
    with open(path, "w") as f:
        f.write(config(size, method, steps, batch))
    # a fresh run directory per round: gorp run resumes (and skips) a finished one
    out = bt.run([gorp, "run", path, "--set", f"run.out_dir={work}/{size}-{method}-{round_}"], env)
    m = PROGRESS.findall(out)
    if not m:
        raise RuntimeError(f"no syn-amazon progress line in the output of {path}")
    done, tok_s, elapsed = m[-1]
    # both methods see the same batches (same seed), so tokens/s compares them to 4+ digits;
    # the elapsed time (0.1 s resolution) gives the absolute step time
    return float(elapsed) / int(done), float(tok_s)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="tiny,small,medium")
    ap.add_argument("--steps", default="40,20,10", help="timed steps per size, in --sizes order")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gorp", default=os.environ.get("GORP", os.path.join(ROOT, "build", "gorp")))
    ap.add_argument("--rounds", type=int, default=1,
                    help="runs of each method per size, alternating (the table gives the mean "
                         "and the range of the per-round differences)")
    ap.add_argument("--no-append", action="store_true")
    a = ap.parse_args()
    sizes, steps = a.sizes.split(","), [int(x) for x in a.steps.split(",")]
    env = bt.thread_env(a.threads)
    rows, load_start = [], os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as work:
        for size, n in zip(sizes, steps):
            runs = []  # alternate the methods so that both meet the same load
            for k in range(a.rounds):
                runs.append({m: step_seconds(a.gorp, size, m, n, a.batch, work, env, k)
                             for m in METHODS})
            # time ratio = inverse tokens/s ratio, per round
            extra = [r["inclora"][1] / r["gorp"][1] - 1 for r in runs]
            ms = {m: 1e3 * sum(r[m][0] for r in runs) / len(runs) for m in METHODS}
            spread = (f" ({100 * min(extra):+.1f}% to {100 * max(extra):+.1f}%)"
                      if len(runs) > 1 else "")
            rows.append(f"| {size} | {a.rounds} x {n} | {ms['inclora']:.1f} | {ms['gorp']:.1f} "
                        f"| {100 * sum(extra) / len(extra):+.1f}%{spread} |")
            print(rows[-1], file=sys.stderr)
    table = ["| size | rounds x timed steps | inclora ms/step | gorp ms/step | gorp vs inclora "
             "(mean over rounds, range) |", "|---|---:|---:|---:|---:|"] + rows
    print("\n".join(table))
    if a.no_append:
        return
    bt.append_entry("bench_methods.py", "GORP step vs LoRA step", a.threads, load_start, [
        f"batch {a.batch}, synthetic prompts (45-85 tokens, padded to the batch's longest), second "
        "task timed; gorp = LoRA q, v + gate by rank-8 projected Adam (T = 10, randomized SVD) + "
        "the shared-space projections"], table)

if __name__ == "__main__":
    main()
