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
'-'. AP and BWT are checked against the file's own attributes (a mismatch above 1e-6 is an error).
Run directories named <name>-s<seed> (scripts/demo.sh --seeds) are grouped by <name>: when a group
has more than one run, a seed column and a mean row per group are added. A missing or malformed
input stops with exit code 1 and a message naming the file.
"""
import math
import os
import re
import sys

import h5py
import numpy as np

TOL = 1e-6


class TableError(Exception):
    pass


def text(v):
    """An HDF5 string attribute as str (h5py gives str, bytes or a 0-d array)."""
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v[()]
    return v.decode() if isinstance(v, bytes) else str(v)


def same(x, y):
    """Equal within TOL, or both NaN."""
    return (math.isnan(x) and math.isnan(y)) or abs(x - y) <= TOL


def read_run(run_dir):
    path = os.path.join(run_dir, "results.h5")
    if not os.path.isfile(path):
        raise TableError(f"{path}: missing (did the run fail or not start? see its log)")
    try:
        with h5py.File(path, "r") as f:
            for name in ("acc_matrix", "in_list"):
                if name not in f or not isinstance(f[name], h5py.Dataset):
                    raise TableError(f"{path}: no dataset '{name}' (not a gorp results.h5?)")
            acc = np.asarray(f["acc_matrix"][...], dtype=np.float64)
            inl = np.asarray(f["in_list"][...], dtype=np.float64)
            attrs = dict(f.attrs)
    except OSError as e:
        raise TableError(f"{path}: not a readable HDF5 file ({e})") from None
    if acc.ndim != 2 or acc.shape[0] != acc.shape[1] + 1 or acc.shape[1] < 1:
        raise TableError(f"{path}: acc_matrix has shape {acc.shape}, expected [T+1, T]")
    if inl.shape != acc.shape:
        raise TableError(f"{path}: in_list has shape {inl.shape}, acc_matrix {acc.shape}")
    T = acc.shape[1]
    for key in ("method", "seed"):
        if key not in attrs:
            raise TableError(f"{path}: no attribute '{key}'")
    try:
        method, seed = text(attrs["method"]), int(attrs["seed"])
        metric_attrs = {k: float(attrs[k]) for k in ("AP", "BWT") if k in attrs}
    except (TypeError, ValueError) as e:
        raise TableError(f"{path}: malformed attribute ({e})") from None
    for name, m in (("acc_matrix", acc), ("in_list", inl)):
        ok = m[~np.isnan(m)]
        if ok.size and (ok.min() < 0 or ok.max() > 100):
            raise TableError(f"{path}: {name} has values outside 0..100 percent")
    last, last_in = acc[T], inl[T]
    if np.isnan(last).any() or np.isnan(last_in).any():
        raise TableError(f"{path}: the last row (after task {T}) is not fully measured "
                         "(an unfinished run?)")
    diag = np.array([acc[j, j - 1] for j in range(1, T + 1)])
    drops = [acc[T, i - 1] - acc[i, i - 1] for i in range(1, T)]  # task i after all vs just after
    bwt = float(np.mean(drops)) if drops else math.nan
    ap = float(np.mean(last))
    if method == "mtl":
        inner = acc[1:T]
        if not np.isnan(inner).all():
            raise TableError(f"{path}: an mtl run with measured rows between 0 and {T}")
        diag_mean = None
    elif np.isnan(diag).any():
        raise TableError(f"{path}: method {method} but the diagonal a[j, j-1] is not fully "
                         "measured")
    else:
        diag_mean = float(np.mean(diag))
    for key, mine in (("AP", ap), ("BWT", bwt)):
        if key in metric_attrs and not same(metric_attrs[key], mine):
            raise TableError(f"{path}: attribute {key} = {metric_attrs[key]!r} but the matrix "
                             f"gives {mine!r}")
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
        "method": method,
        "seed": seed,
        "order": text(attrs["order"]) if "order" in attrs else "?",
        "T": T,
        "diag": diag_mean,
        "AP": ap,
        "BWT": None if method == "mtl" or T < 2 else bwt,
        "in_list": float(np.mean(last_in)),
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
