#!/usr/bin/env python3
"""The table of the synthetic forgetting demo (scripts/demo.sh): one Markdown row per run directory.

    python3 postprocess/demo_table.py RUN_DIR [RUN_DIR ...]

Each RUN_DIR holds the results.h5 of a `gorp run` (docs/RESULTS.md) and, from scripts/demo.sh, a
file wall_seconds (absent: time '-'). Every number is computed here from the matrices
(a = acc_matrix in percent, [T+1, T]: row j = after training task j, row 0 = zero-shot;
column i-1 = task i; NaN = not measured):

    diag mean = mean over j = 1..T of a[j, j-1]        (each task just after it was learned)
    AP        = mean of the last row a[T, :]
    BWT       = mean over i = 1..T-1 of a[T, i-1] - a[i, i-1]
    in-list % = mean of the last row of in_list

An mtl run trains once on all tasks: only rows 0 and T are measured, so its diag mean and BWT are
'-'. Reading and checks are gorp_tables.py's (every stored metric must equal the matrices).
Run directories named <name>-s<seed> (scripts/demo.sh --seeds) are grouped by <name>: when a group
has more than one run, a seed column and a mean row per group are added. A missing or malformed
input stops with exit code 1 and a message naming the file.
"""
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gorp_tables  # noqa: E402  (reading, checks and the metrics shared with the papers' tables)

TableError = gorp_tables.TableError


def read_run(run_dir):
    path = os.path.join(run_dir, "results.h5")
    if not os.path.isfile(path):
        raise TableError(f"{path}: missing (did the run fail or not start? see its log)")
    r = gorp_tables.read_run(path)  # refuses a malformed file or a stored metric off the matrices
    acc, T = r.acc, r.acc.shape[1]
    if r.partial:
        raise TableError(f"{path}: the last row (after task {T}) is not fully measured "
                         "(an unfinished run?)")
    diag = np.array([acc[j, j - 1] for j in range(1, T + 1)])
    if r.method == "mtl":
        if not np.isnan(acc[1:T]).all():
            raise TableError(f"{path}: an mtl run with measured rows between 0 and {T}")
        diag_mean = None
    elif np.isnan(diag).any():
        raise TableError(f"{path}: method {r.method} but the diagonal a[j, j-1] is not fully "
                         "measured")
    else:
        diag_mean = float(np.mean(diag))
    wall = None
    wall_path = os.path.join(run_dir, "wall_seconds")
    if os.path.exists(wall_path):
        try:
            with open(wall_path) as f:
                wall = float(f.read().strip())
        except ValueError:
            raise TableError(f"{wall_path}: not a number of seconds") from None
    return {
        "run": os.path.basename(os.path.normpath(run_dir)),
        "method": r.method,
        "seed": r.seed,
        "order": r.order,
        "T": T,
        "diag": diag_mean,
        "AP": r.values["AP"],
        "BWT": None if r.method == "mtl" or T < 2 else r.values["BWT"],
        "in_list": r.values["in_list"],
        "time": wall,
    }


def fmt(v, digits=1):
    return "-" if v is None else f"{v:.{digits}f}"


def mean_of(rows, key):
    vals = [r[key] for r in rows]
    return None if any(v is None for v in vals) else float(np.mean(vals))


def table(rows):
    groups = {}  # <name> of <name>-s<seed> (both gorp configs have method gorp: not the method)
    for r in rows:
        groups.setdefault(re.sub(r"-s[0-9]+$", "", r["run"]), []).append(r)
    seeds = any(len(rs) > 1 for rs in groups.values())
    cols = ["run", "method"] + (["seed"] if seeds else []) + [
        "diag mean", "AP", "BWT", "in-list % (last row)", "time s"]
    out = ["| " + " | ".join(cols) + " |",
           "|" + "|".join(["---"] * (3 if seeds else 2) + ["---:"] * 5) + "|"]

    def line(run, method, seed, r):
        cells = [run, method] + ([seed] if seeds else []) + [
            fmt(r["diag"]), fmt(r["AP"]), fmt(r["BWT"]), fmt(r["in_list"]), fmt(r["time"], 0)]
        out.append("| " + " | ".join(cells) + " |")

    for name, rs in groups.items():
        for r in rs:
            line(r["run"], r["method"], str(r["seed"]), r)
        if len(rs) > 1:
            m = {k: mean_of(rs, k) for k in ("diag", "AP", "BWT", "in_list", "time")}
            methods = sorted({r["method"] for r in rs})
            line(f"**{name} mean**", "/".join(methods), f"{len(rs)} runs", m)
    return "\n".join(out)


def main(argv):
    if len(argv) > 1 and argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0
    if len(argv) < 2:
        print("usage: demo_table.py RUN_DIR [RUN_DIR ...]", file=sys.stderr)
        return 64
    try:
        rows = [read_run(d) for d in argv[1:]]
    except TableError as e:
        print(f"demo_table.py: error: {e}", file=sys.stderr)
        return 1
    print(table(rows))
    orders = sorted({r["order"] for r in rows})
    tasks = sorted({r["T"] for r in rows})
    print(f"\norder {', '.join(orders)}, {', '.join(map(str, tasks))} tasks; accuracies in % "
          "(exact match); diag mean = each task just after it was learned; AP and in-list % = "
          "after the last task; BWT = last row minus diagonal; time = wall clock of the run")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
