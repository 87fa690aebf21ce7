"""postprocess/gorp_tables.py --layout wide --figures on real gorp output: a 3-seed x 3-order set
of tiny `gorp run`s on the synthetic suite (a random model of 2 layers, 30 steps per task, 8 test
items, orders order1..order3 of 4 tasks; about 1-2 s each), for seqft, inclora and a second seqft
config labelled by run.name (lr 1e-2): 27 runs. The wide AP and BWT tables must equal the values
computed here from each results.h5's acc_matrix with plain loops (mean and sample std over seeds,
Avg over orders), the name attribute must hold run.name, and --figures must write the curves of
each order and the bars as PDF and 300-dpi PNG. The runs, the tables and the figures stay in
post_wide_run/ of the test's working folder (the build tree) to be looked at."""
import csv
import io
import os
import shutil
import statistics
import subprocess
import sys

import h5py

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "ref"))
sys.path.insert(0, HERE)
from checks import Checks  # noqa: E402
from test_gorp_tables_run import CONFIG  # noqa: E402  (the tiny synthetic config)
from test_gorp_tables_wide import png_dpi  # noqa: E402

GORP = os.environ["GORP"]
TOOL = os.path.join(os.environ["GORP_SRC"], "postprocess", "gorp_tables.py")
ORDERS = ("order1", "order2", "order3")
SEEDS = (1, 2, 3)
# label -> extra --set options; the third is seqft again, told apart by run.name
CONFIGS = {"seqft": ["run.method=seqft"], "inclora": ["run.method=inclora"],
           "seqft_lr1e-2": ["run.method=seqft", "run.name=seqft_lr1e-2", "train.lr=1e-2"]}
checks = Checks()
check = checks.report


def by_hand(path):
    """AP and BWT of a results.h5 with loops over its acc_matrix (1-based a[row, task])."""
    with h5py.File(path, "r") as f:
        a = f["acc_matrix"][...].tolist()
        name = f.attrs["name"]
    T = len(a[0])
    ap = sum(a[T][i] for i in range(T)) / T
    bwt = sum(a[T][i - 1] - a[i][i - 1] for i in range(1, T)) / (T - 1)
    return {"AP": ap, "BWT": bwt}, name.decode() if isinstance(name, bytes) else str(name)


def main():
    work = os.path.join(os.getcwd(), "post_wide_run")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    ini = os.path.join(work, "tiny.ini")
    with open(ini, "w") as f:
        f.write(CONFIG)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    jobs = [(lab, o, s) for lab in CONFIGS for o in ORDERS for s in SEEDS]
    for i in range(0, len(jobs), 2):  # two at a time on two cores
        batch = []
        for lab, o, s in jobs[i:i + 2]:
            out = os.path.join(work, "runs", f"{lab}_{o}_s{s}")
            sets = CONFIGS[lab] + [f"run.seed={s}", f"data.order={o}", f"run.out_dir={out}"]
            os.makedirs(out)
            log = open(out + ".log", "w")
            batch.append((out, log, subprocess.Popen(
                [GORP, "run", ini] + [a for kv in sets for a in ("--set", kv)],
                stdout=log, stderr=subprocess.STDOUT, env=env)))
        for out, log, p in batch:
            ok = p.wait() == 0 and os.path.exists(os.path.join(out, "results.h5"))
            log.close()
            if not ok:
                check(False, f"gorp run {os.path.basename(out)}", open(out + ".log").read()[-2000:])
    runs = os.path.join(work, "runs")

    want, names = {}, {}
    for lab, o, s in jobs:
        want[lab, o, s], names[lab, o, s] = by_hand(
            os.path.join(runs, f"{lab}_{o}_s{s}", "results.h5"))
    check(all(names[k] == ("seqft_lr1e-2" if k[0] == "seqft_lr1e-2" else "") for k in names),
          "results.h5 attribute name holds run.name (empty when not set)", names)
    check(len({round(w["BWT"], 6) for w in want.values()}) > 3,
          "the runs learn and forget differently (the comparison is not one number)", want)

    r = subprocess.run([sys.executable, TOOL, runs, "--layout", "wide", "--format", "csv",
                        "--out", os.path.join(work, "tables"), "--figures",
                        os.path.join(work, "figures")], capture_output=True, text=True)
    recs = {(x["metric"], x["method"]): x for x in csv.DictReader(io.StringIO(r.stdout))}
    bad = []
    for key in ("AP", "BWT"):
        for lab in CONFIGS:
            x = recs.get((key, lab))
            if x is None:
                bad.append((key, lab, "no row"))
                continue
            means = []
            for o in ORDERS:
                xs = [want[lab, o, s][key] for s in SEEDS]
                mu, sd = statistics.fmean(xs), statistics.stdev(xs)
                means.append(mu)
                if abs(float(x[o]) - mu) > 1e-6 or abs(float(x[o + "_std"]) - sd) > 1e-6:
                    bad.append((key, lab, o, x[o], mu, x[o + "_std"], sd))
            if abs(float(x["Avg"]) - statistics.fmean(means)) > 1e-6 or x["seeds"] != "3/3/3":
                bad.append((key, lab, "Avg", x["Avg"], statistics.fmean(means)))
    check(r.returncode == 0 and len(recs) == 6 and not bad,
          "wide CSV: AP and BWT per label and order = mean and sample std of the 3 seeds "
          "computed from the matrices here, Avg = mean of the order means", (r.stderr, bad))
    md = open(os.path.join(work, "tables", "wide.md")).read() \
        if os.path.exists(os.path.join(work, "tables", "wide.md")) else ""
    xs = [want["inclora", "order2", s]["AP"] for s in SEEDS]
    cell = f"{statistics.fmean(xs):.2f} ± {statistics.stdev(xs):.2f}"
    check(cell in md and "| seqft_lr1e-2 | 3/3/3 |" in md,
          "--out writes wide.md with the mean ± std cells and the run.name row", md)
    fig = os.path.join(work, "figures")
    files = sorted(os.listdir(fig)) if os.path.isdir(fig) else []
    want_files = sorted(f"{s}.{e}" for s in ["bars"] + [f"curves_{o}" for o in ORDERS]
                        for e in ("pdf", "png"))
    dpi = {f: png_dpi(os.path.join(fig, f)) for f in files if f.endswith(".png")}
    pdf = all(open(os.path.join(fig, f), "rb").read(5) == b"%PDF-" for f in files
              if f.endswith(".pdf"))
    check(files == want_files and pdf and set(dpi.values()) == {300},
          "--figures: curves of each order and the bars, PDF and 300-dpi PNG", (files, dpi))
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
