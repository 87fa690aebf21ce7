"""postprocess/gorp_tables.py on real gorp output: five tiny `gorp run`s on the synthetic suite (a random
model of 2 layers, 30 steps per task, 8 test items, 3 tasks per order; about 1 s each), seqft and
inclora on two orders given as data.tasks, seqft on the first order with two seeds. The tool must
accept gorp's own AP/BWT/FWT/forgetting attributes (it refuses any that differ from its
recomputation beyond 1e-9 relative), print one row per (method, order) with its seed count and per
run the values gorp stored, refuse a copy with a doctored attribute, and write the tables and PNGs
of --out --plots."""
import os
import shutil
import subprocess
import sys
import tempfile

import h5py

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
from checks import Checks  # noqa: E402

GORP = os.environ["GORP"]
SRC = os.environ["GORP_SRC"]
TOOL = os.path.join(SRC, "postprocess", "gorp_tables.py")
ORDERS = ("syn-agnews, syn-IMDB, syn-SST-2", "syn-SST-2, syn-IMDB, syn-agnews")
RUNS = [("seqft", 0, 1), ("seqft", 0, 2), ("seqft", 1, 1), ("inclora", 0, 1), ("inclora", 1, 1)]
CONFIG = """[run]
log_every = 10
[model]
init = random
hidden_size = 64
intermediate_size = 128
num_layers = 2
num_heads = 4
max_seq = 256
[data]
format = synthetic
synthetic_train = 64
synthetic_test = 8
[train]
batch_size = 4
max_steps = 30
lr = 3e-3
[eval]
max_new_tokens = 4
"""
checks = Checks()
check = checks.report


def tool(*args):
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True)


def runs_table(stdout, title):
    lines, on = [], False
    for line in stdout.splitlines():
        if line.startswith("## "):
            on = line[3:] == title
        elif on and line.startswith("|"):
            lines.append([c.strip() for c in line.strip("|").split("|")])
    return [dict(zip(lines[0], l)) for l in lines[2:]] if lines else []


def main():
    with tempfile.TemporaryDirectory(prefix="post_run_") as work:
        tests(work)
    return checks.finish()


def tests(work):
    ini = os.path.join(work, "tiny.ini")
    with open(ini, "w") as f:
        f.write(CONFIG)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    for i in range(0, len(RUNS), 2):  # two at a time on two cores
        batch = []
        for method, o, seed in RUNS[i:i + 2]:
            out = os.path.join(work, "runs", f"{method}_o{o}_s{seed}")
            os.makedirs(out)
            with open(out + ".log", "w") as log:
                batch.append((out, subprocess.Popen(
                    [GORP, "run", ini, "--set", f"run.method={method}", "--set",
                     f"run.seed={seed}", "--set", f"data.tasks={ORDERS[o]}", "--set",
                     f"run.out_dir={out}"], stdout=log, stderr=subprocess.STDOUT, env=env)))
        for out, p in batch:
            ok = p.wait() == 0 and os.path.exists(os.path.join(out, "results.h5"))
            check(ok, f"gorp run {os.path.basename(out)}",
                  "" if ok else open(out + ".log").read()[-2000:])
    root = os.path.join(work, "runs")

    r = tool(root)
    check(r.returncode == 0, "gorp's stored metrics equal the tool's recomputation (exit 0)",
          r.stderr)
    stored = {}
    for method, o, seed in RUNS:
        with h5py.File(os.path.join(root, f"{method}_o{o}_s{seed}", "results.h5"), "r") as f:
            stored[method, o, seed] = {k: float(f.attrs[k]) for k in ("AP", "BWT", "FWT",
                                                                       "forgetting")}
            stored[method, o, seed]["in-list"] = float(f["in_list"][-1].mean())
    order_name = [o.replace(" ", "") for o in ORDERS]  # gorp joins data.tasks with commas
    rows = runs_table(r.stdout, "Per method and order")
    # orders sort as text: "syn-SST-2,..." before "syn-agnews,..." (upper case first)
    want = [("inclora", order_name[1], "1"), ("inclora", order_name[0], "1"),
            ("seqft", order_name[1], "1"), ("seqft", order_name[0], "2")]
    check([(x["method"], x["order"], x["seeds"]) for x in rows] == want,
          "one row per (method, order) of the runs, with its seed count", rows)
    runs = runs_table(r.stdout, "Runs")
    bad = []
    for x in runs:
        key = (x["method"], order_name.index(x["order"]), int(x["seed"]))
        for k, v in stored.get(key, {}).items():
            if x[k] != f"{v:.2f}".replace("-0.00", "0.00"):
                bad.append((key, k, x[k], v))
    check(len(runs) == len(RUNS) and not bad, "per run the values gorp stored", bad or runs)
    check(any(v[k] != 0 for v in stored.values() for k in ("BWT", "FWT", "forgetting")),
          "the runs learn and forget something (the comparison is not all zeros)", stored)

    doctored = os.path.join(work, "doctored")
    shutil.copytree(os.path.join(root, "seqft_o0_s1"), doctored)
    with h5py.File(os.path.join(doctored, "results.h5"), "r+") as f:
        f.attrs["FWT"] = f.attrs["FWT"] + 0.5
    d = tool(doctored)
    check(d.returncode == 1 and "attribute FWT" in d.stderr,
          "a copy of a real file with FWT + 0.5 is refused", d.stderr)

    out = os.path.join(work, "tables")
    o = tool(root, "--out", out, "--plots")
    files = set(os.listdir(out)) if os.path.isdir(out) else set()
    stems = [f"{m}_{order_name[i].replace(',', '-')}_s{s}" for m, i, s in RUNS]
    pngs = {f"{kind}_{s}.png" for kind in ("heatmap", "per_task") for s in stems}
    valid = all(open(os.path.join(out, p), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
                for p in pngs & files)
    check(o.returncode == 0 and o.stdout == r.stdout and
          files == {"tables.md", "tables.csv", "tables.tex"} | pngs and valid,
          "--out --plots: the three tables and two PNGs per run", (o.stderr, sorted(files)))


if __name__ == "__main__":
    sys.exit(main())
