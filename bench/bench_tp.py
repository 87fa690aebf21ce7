#!/usr/bin/env python3
"""Tensor parallelism on this machine: `gorp run` trains the same randomly initialised LLaMA that
is big for this machine (default hidden 1536, 8 layers, 12 heads, intermediate 4096: 226 M
parameters in the layers; the synthetic suite's vocabulary) with tp = 1 (one rank, all cores as
threads) and tp = 2 (two ranks, the cores split between them), for seqft (every weight trained
with AdamW) and for GORP's input-axis recipe (plain Adam on all seven linears, moment bases, no
LoRA: inputs/demo/gorp_input_moment.ini). Reports per layout the step time (median of the timed
steps' tokens/s, from `gorp run`'s progress lines; training loop only), the peak resident memory
per rank (VmHWM, printed by `gorp run`) and `gorp plan`'s per-rank estimate for the same config
and layout. Prints one Markdown table and appends it to BENCHMARKS.md.

    build/venv/bin/python bench/bench_tp.py [--hidden 1536 --layers 8 --heads 12 --inter 4096]
                                            [--steps 4] [--batch 4] [--no-append]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench_train as bt  # noqa: E402  (thread environment, BENCHMARKS entry writer)

METHODS = {
    "seqft": "",
    "gorp": ("[lora]\ntargets = none\n[full]\ntargets = all\noptimizer = adam\nlr = 2.5e-4\n"
             "[gorp]\naxis = input\nbasis_source = moment\nenergy = 0.9995\n"
             "project_update = true\n"),
}
STEP = re.compile(r"syn-dbpedia step +(\d+)/\d+ +loss [0-9.]+ +([0-9.]+) tok/s")
PEAK = re.compile(r"peak resident memory per rank \(VmHWM\): max (\d+) MB, min (\d+) MB")


def config(a, method):
    return (f"[run]\nmethod = {method}\nseed = 1\nlog_every = 1\n"
            f"[model]\nhidden_size = {a.hidden}\nintermediate_size = {a.inter}\n"
            f"num_layers = {a.layers}\nnum_heads = {a.heads}\nmax_seq = 256\n"
            + (f"vocab_size = {a.vocab}\n" if a.vocab else "") +
            f"[data]\nformat = synthetic\ntasks = syn-dbpedia\n"
            f"synthetic_train = {(a.steps + 1) * a.batch}\nsynthetic_test = 2\n"
            f"[train]\nbatch_size = {a.batch}\nmax_steps = {a.steps + 1}\nlr = 1e-4\n"
            f"[eval]\nmax_new_tokens = 2\n" + METHODS[method])


def run_layout(a, path, tp, work, cores):
    """One `gorp run` with tp ranks sharing the machine's cores; (median tok/s, peak MB max)."""
    threads = max(1, cores // tp)
    env = bt.thread_env(threads)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    out_dir = os.path.join(work, f"out-tp{tp}-{os.path.basename(path)}")
    cmd = [a.gorp, "run", path, "--set", f"run.out_dir={out_dir}", "--set", f"parallel.tp={tp}"]
    if tp > 1:
        cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np",
               str(tp)] + cmd
    out = bt.run(cmd, env)
    steps = [(int(s), float(t)) for s, t in STEP.findall(out)]
    timed = [t for s, t in steps if s > 1]  # step 1 pays first-touch of every buffer
    peak = PEAK.search(out)
    if not timed or not peak:
        raise RuntimeError(f"no progress or peak-memory line in the output of {cmd}")
    return statistics.median(timed), int(peak.group(1))


def plan_mb(a, path, tp):
    # --seq: the synthetic prompts are at most ~96 tokens, not the data keys' 512 + 50 worst case
    out = subprocess.run([a.gorp, "plan", path, "--tp", str(tp), "--seq", "96", "--json"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["bytes_per_rank"]["total"] / 2**20


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=1536)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--inter", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=4, help="timed steps (after one untimed)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--methods", default="seqft,gorp")
    ap.add_argument("--tps", default="1,2", help="layouts to run (also: --tps 1 measures memory "
                    "against the plan for one rank, issue 8's small/medium check)")
    ap.add_argument("--vocab", type=int, default=0,
                    help="model vocabulary (0: the synthetic tokenizer's 384)")
    ap.add_argument("--gorp", default=os.environ.get("GORP", os.path.join(ROOT, "build", "gorp")))
    ap.add_argument("--no-append", action="store_true")
    a = ap.parse_args()
    cores = os.cpu_count()
    rows, load_start = [], os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as work:
        for method in a.methods.split(","):
            path = os.path.join(work, f"{method}.ini")
            with open(path, "w") as f:
                f.write(config(a, method))
            base = None
            for tp in (int(x) for x in a.tps.split(",")):
                tok_s, peak = run_layout(a, path, tp, work, cores)
                plan = plan_mb(a, path, tp)
                base = base or tok_s
                rows.append(f"| {method} | {tp} x {max(1, cores // tp)} | {tok_s:,.0f} | "
                            f"{tok_s / base:.2f}x | {peak:,} | {plan:,.0f} | {peak / plan:.2f} |")
                print(rows[-1], file=sys.stderr)
    params = a.layers * (4 * a.hidden ** 2 + 3 * a.hidden * a.inter)
    table = ["| method | ranks x threads | tok/s (median) | vs tp = 1 | peak RSS per rank MB (max) "
             "| `gorp plan` per rank MB | measured / plan |",
             "|---|---|---:|---:|---:|---:|---:|"] + rows
    print("\n".join(table))
    if a.no_append:
        return
    title = ("tensor parallelism, tp = " + " vs tp = ".join(a.tps.split(",")) if "," in a.tps
             else f"peak memory per rank vs gorp plan, tp = {a.tps}")
    bt.append_entry("bench_tp.py", title, cores, load_start, [
        f"model hidden {a.hidden}, {a.layers} layers, {a.heads} heads, intermediate {a.inter} "
        f"({params / 1e6:.0f} M parameters in the layers), vocabulary "
        f"{a.vocab or 'of the synthetic suite (384)'}; batch {a.batch} "
        f"synthetic prompts; median of {a.steps} steps after one untimed step"
        + (f"; tp = 2 runs two ranks of {max(1, cores // 2)} thread(s) each on the same {cores} "
           "cores" if "2" in a.tps.split(",") else "")], table)


if __name__ == "__main__":
    main()
