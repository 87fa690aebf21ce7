"""postprocess/demo_table.py, the table of scripts/demo.sh, on real gorp output: two tiny runs
(seqft and mtl) with the demo's shared settings (inputs/demo/common.ini, but a random model of the
base's shape and 20 steps per task, 20 test items), then every printed number is checked against
the same quantity computed here from results.h5 by other means (numpy diagonals instead of
indexing): diag mean, AP, BWT, last-row in-list rate, wall time; mtl's layout (rows 0 and T only)
gives '-' for diag and BWT. A doctored copy with known values (as seed 2) checks the arithmetic
and the mean row of <name>-s<seed> runs; a wrong AP attribute, a missing and a malformed
results.h5 must fail naming the file."""
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np

GORP = os.environ["GORP"]
SRC = os.environ["GORP_SRC"]
TABLE = os.path.join(SRC, "postprocess", "demo_table.py")
sys.path.insert(0, os.path.join(SRC, "postprocess"))
import gorp_tables  # noqa: E402
from checks import Checks  # noqa: E402  (this folder)
COMMON = os.path.join(SRC, "inputs", "demo", "common.ini")
# the demo's settings, shrunk; the model has the shape of inputs/demo/pretrain.ini's base
QUICK = ["model.init=random", "model.hidden_size=64", "model.intermediate_size=128",
         "model.num_layers=2", "model.num_heads=4", "model.max_seq=256", "train.max_steps=20",
         "data.synthetic_test=20", "train.lr=3e-3"]
checks = Checks()
check = checks.report


def table(*dirs):
    return subprocess.run([sys.executable, TABLE, *dirs], capture_output=True, text=True)


def rows_of(stdout):
    """The Markdown table as a list of {column: cell} dicts."""
    lines = [l for l in stdout.splitlines() if l.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(head, (c.strip() for c in l.strip("|").split("|")))) for l in lines[2:]]


def expected(run_dir):
    """The table's quantities, from results.h5 and wall_seconds, independently of demo_table.py."""
    with h5py.File(os.path.join(run_dir, "results.h5"), "r") as f:
        a, inl = f["acc_matrix"][...], f["in_list"][...]
        method = f.attrs["method"]
        method = method.decode() if isinstance(method, bytes) else str(method)
        ap_attr = float(f.attrs["AP"])
    T = a.shape[1]
    diag = np.diagonal(a[1:])  # a[j, j-1], j = 1..T: each task right after its training
    want = {"method": method, "AP": a[-1].mean(), "in-list % (last row)": inl[-1].mean(),
            "time s": float(open(os.path.join(run_dir, "wall_seconds")).read())}
    if method == "mtl":
        want["diag mean"] = want["BWT"] = None
    else:
        want["diag mean"] = diag.mean()
        want["BWT"] = (a[-1, :T - 1] - diag[:T - 1]).mean()
    return want, a, ap_attr


def same_cell(cell, v, tol):
    if v is None:
        return cell == "-"
    try:
        return abs(float(cell) - v) <= tol + 1e-9
    except ValueError:
        return False


def check_row(row, want, name):
    for col, v in want.items():
        if col == "method":
            check(row["method"] == v, f"{name}: method {row['method']}")
            continue
        tol = 0.5 if col == "time s" else 0.05  # printed with 0 / 1 decimals
        check(same_cell(row[col], v, tol), f"{name}: {col} printed {row[col]}, recomputed {v}")


def gorp_run(work, method, name, seconds):
    out = os.path.join(work, name)
    cmd = [GORP, "run", COMMON, "--set", f"run.method={method}", "--set", f"run.out_dir={out}"]
    for s in QUICK:
        cmd += ["--set", s]
    r = subprocess.run(cmd, capture_output=True, text=True)
    check(r.returncode == 0, f"gorp run {method} (demo common settings, 20 steps) exits 0")
    if r.returncode:
        print(r.stdout[-2000:], r.stderr[-2000:])
        sys.exit(1)
    with open(os.path.join(out, "wall_seconds"), "w") as f:
        f.write(f"{seconds}\n")
    return out


def main():
    with tempfile.TemporaryDirectory() as work:
        seqft = gorp_run(work, "seqft", "seqft-s1", 12.3)
        mtl = gorp_run(work, "mtl", "mtl", 45.6)

        r = table(seqft, mtl)
        check(r.returncode == 0, "demo_table.py on a seqft and an mtl run exits 0")
        rows = rows_of(r.stdout)
        print(r.stdout)
        check(len(rows) == 2 and [x["run"] for x in rows] == ["seqft-s1", "mtl"],
              "one row per run, in the order given")
        check("seed" not in rows[0], "no seed column when every name has one run")
        for row, d in zip(rows, (seqft, mtl)):
            want, a, ap_attr = expected(d)
            check_row(row, want, row["run"])
            check(abs(ap_attr - a[-1].mean()) < 1e-9, f"{row['run']}: AP attribute = last row mean")
        _, a, _ = expected(mtl)
        T = a.shape[1]
        check(np.isnan(a[1:T]).all() and not np.isnan(a[0]).any() and not np.isnan(a[T]).any(),
              "mtl results.h5: rows 0 and T measured, rows 1..T-1 NaN")

        # a doctored copy with known, uneven values as seed 2: the arithmetic, and the mean row
        doc = os.path.join(work, "seqft-s2")
        shutil.copytree(seqft, doc)
        rng = np.random.default_rng(5)
        with h5py.File(os.path.join(doc, "results.h5"), "r+") as f:
            a = f["acc_matrix"][...]
            mask = ~np.isnan(a)
            a[mask] = np.round(rng.uniform(0, 100, mask.sum()), 2)
            inl = np.where(mask, np.round(rng.uniform(0, 100, a.shape), 2), np.nan)
            f["acc_matrix"][...] = a
            f["in_list"][...] = inl
            f.attrs["AP"] = a[-1].mean()
            f.attrs["BWT"] = (a[-1, :T - 1] - np.diagonal(a[1:])[:T - 1]).mean()
            # not printed by demo_table.py, but the reader refuses stored metrics off the matrices
            other = gorp_tables.recompute(a, inl)
            f.attrs["FWT"], f.attrs["forgetting"] = other["FWT"], other["forgetting"]
            f.attrs["seed"] = np.uint64(2)
        with open(os.path.join(doc, "wall_seconds"), "w") as f:
            f.write("100\n")
        r = table(seqft, doc, mtl)
        check(r.returncode == 0, "demo_table.py with two seqft runs exits 0")
        rows = rows_of(r.stdout)
        print(r.stdout)
        check([x["run"] for x in rows] == ["seqft-s1", "seqft-s2", "**seqft mean**", "mtl"],
              "a mean row after the runs seqft-s1, seqft-s2")
        check("seed" in rows[0] and [x["seed"] for x in rows] == ["1", "2", "2 runs", "1"],
              "seed column (the seed attribute) when a name has two runs")
        w1, w2 = expected(seqft)[0], expected(doc)[0]
        check_row(rows[1], w2, "doctored seqft-s2")
        mean = {k: (w1[k] + w2[k]) / 2 for k in w1 if k != "method"}
        mean["method"] = "seqft"
        check_row(rows[2], mean, "mean row")
        # runs are grouped by name, not by method (the demo has two gorp configs)
        other = os.path.join(work, "other")
        shutil.copytree(doc, other)
        rows = rows_of(table(seqft, other).stdout)
        check(len(rows) == 2 and "seed" not in rows[0], "same method, other name: no mean row")

        # a wrong AP attribute is an error that names the file
        with h5py.File(os.path.join(doc, "results.h5"), "r+") as f:
            f.attrs["AP"] = f.attrs["AP"] + 1e-3
        r = table(seqft, doc)
        check(r.returncode != 0 and os.path.join(doc, "results.h5") in r.stderr
              and "AP" in r.stderr, f"AP attribute mismatch fails: {r.stderr.strip()}")

        # missing and malformed results.h5
        empty = os.path.join(work, "empty")
        os.mkdir(empty)
        r = table(seqft, empty)
        path = os.path.join(empty, "results.h5")
        check(r.returncode != 0 and path in r.stderr and not r.stdout,
              f"missing results.h5 fails naming it: {r.stderr.strip()}")
        with open(path, "w") as f:
            f.write("not hdf5\n")
        r = table(empty)
        check(r.returncode != 0 and path in r.stderr,
              f"malformed results.h5 fails naming it: {r.stderr.strip()}")
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
