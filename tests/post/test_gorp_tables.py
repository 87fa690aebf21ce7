"""postprocess/gorp_tables.py on hand-made results.h5 files (no gorp run): two methods x two orders x two
seeds built with h5py in gorp's layout (src/cl/cl_results.c: vlen UTF-8 strings, uint64 seed, float64
metrics), from four 3-task accuracy matrices whose metrics are worked out by hand below. Checks
the Markdown, CSV and LaTeX numbers, the means and sample stds over seeds and the means over
orders, the deterministic order, partial runs (refused; listed with --allow-partial), stored
attributes that disagree with the matrices, every bad-input message and exit code, and the files
of --out and --plots."""
import csv
import io
import math
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
from checks import Checks  # noqa: E402

TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "postprocess",
                    "gorp_tables.py")
N = math.nan
checks = Checks()
check = checks.report


# Four accuracy matrices, T = 3 (rows: zero-shot, after 1, 2, 3; 1-based a[row, task] below),
# the in-list rate's last row, and their metrics by hand.
A = {"acc": [[10, 20, 30], [80, 40, N], [85, 90, 50], [50, 70, 90]],
     "inl_last": [100, 90, 80],
     # AP = (50 + 70 + 90) / 3 = 70
     # BWT = ((a31 - a11) + (a32 - a22)) / 2 = ((50 - 80) + (70 - 90)) / 2 = -25
     # FWT = ((a12 - a02) + (a23 - a03)) / 2 = ((40 - 20) + (50 - 30)) / 2 = 20
     # forgetting = ((max(a11, a21) - a31) + (a22 - a32)) / 2 = ((85 - 50) + (90 - 70)) / 2 = 27.5
     #   (task 1 peaked after task 2, so forgetting is not -BWT here)
     # in-list = (100 + 90 + 80) / 3 = 90
     "want": {"AP": 70.0, "BWT": -25.0, "FWT": 20.0, "forgetting": 27.5, "in_list": 90.0}}
B = {"acc": [[10, 20, 30], [80, 40, N], [85, 90, 50], [40, 70, 90]],
     "inl_last": [100, 80, 80],
     # AP = (40 + 70 + 90) / 3 = 200/3; BWT = ((40 - 80) + (70 - 90)) / 2 = -30
     # FWT = 20 as A; forgetting = ((85 - 40) + (90 - 70)) / 2 = 32.5; in-list = 260/3
     "want": {"AP": 200 / 3, "BWT": -30.0, "FWT": 20.0, "forgetting": 32.5, "in_list": 260 / 3}}
C = {"acc": [[70, 30, 30], [60, 95, N], [50, 80, 40], [55, 60, 70]],
     "inl_last": [90, 90, 90],
     # AP = (55 + 60 + 70) / 3 = 185/3; BWT = ((55 - 60) + (60 - 80)) / 2 = -12.5
     # FWT = ((a12 - a02) + (a23 - a03)) / 2 = ((95 - 30) + (40 - 30)) / 2 = 37.5
     # forgetting = ((max(a11, a21) - a31) + (a22 - a32)) / 2 = ((60 - 55) + (80 - 60)) / 2 = 12.5:
     #   the zero-shot a01 = 70 and the before-training a12 = 95 are not learned accuracy and
     #   must not enter the max
     # in-list = 90
     "want": {"AP": 185 / 3, "BWT": -12.5, "FWT": 37.5, "forgetting": 12.5, "in_list": 90.0}}
D = {"acc": [[0, 10, 20], [70, 20, N], [75, 60, 30], [65, 50, 80]],
     "inl_last": [70, 80, 90],
     # AP = (65 + 50 + 80) / 3 = 65; BWT = ((65 - 70) + (50 - 60)) / 2 = -7.5
     # FWT = ((20 - 10) + (30 - 20)) / 2 = 10; forgetting = ((75 - 65) + (60 - 50)) / 2 = 10
     # in-list = (70 + 80 + 90) / 3 = 80
     "want": {"AP": 65.0, "BWT": -7.5, "FWT": 10.0, "forgetting": 10.0, "in_list": 80.0}}
KEYS = ("AP", "BWT", "FWT", "forgetting", "in_list")
TASKS = {"order1": ["syn-dbpedia", "syn-amazon", "syn-yahoo"],
         "order2": ["syn-yahoo", "syn-dbpedia", "syn-amazon"]}
# (method, order) -> the matrices of seeds 1, 2, ...; inclora mixes them so no std is zero;
# seqft/order2 has three seeds, so the mean over orders (of per-order means) differs from the mean
# over all of seqft's runs
PLAN = {("seqft", "order1"): (A, B), ("seqft", "order2"): (C, D, A),
        ("inclora", "order1"): (A, C), ("inclora", "order2"): (A, D)}


def write_results(run_dir, m, method, order, seed, attrs=None, drop=(), acc=None):
    """results.h5 as gorp writes it; attrs overrides stored values, drop leaves keys out."""
    os.makedirs(run_dir, exist_ok=True)
    acc = np.array(m["acc"] if acc is None else acc, dtype=np.float64)
    inl = np.where(np.isnan(acc), N, 100.0)  # in-list measured where accuracy is
    inl[-1] = m["inl_last"]
    stored = {"tasks": TASKS[order], "method": method, "order": order, "seed": np.uint64(seed),
              **{k: np.float64(m["want"][k]) for k in KEYS if k != "in_list"}}
    stored.update(attrs or {})
    with h5py.File(os.path.join(run_dir, "results.h5"), "w") as f:
        for name, data in (("acc_matrix", acc), ("in_list", inl)):
            if name not in drop:
                f.create_dataset(name, data=data)
        for k, v in stored.items():
            if k in drop:
                continue
            if isinstance(v, (str, list)):
                f.attrs.create(k, v, dtype=h5py.string_dtype("utf-8"))
            else:
                f.attrs[k] = v


def tool(*args):
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True)


def md_tables(stdout):
    """{section title: [{column: cell}]} of the Markdown output."""
    out, title, lines = {}, None, []
    for line in stdout.splitlines() + ["## end"]:
        if line.startswith("## "):
            if title:
                head = [c.strip() for c in lines[0].strip("|").split("|")]
                out[title] = [dict(zip(head, (c.strip() for c in l.strip("|").split("|"))))
                              for l in lines[2:]]
            title, lines = line[3:], []
        elif line.startswith("|"):
            lines.append(line)
    return out


def mean(xs):
    return sum(xs) / len(xs)


def sample_std(xs):
    # sqrt(sum (x - mean)^2 / (n - 1)); for two values this is |x - y| / sqrt(2)
    m = mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def expected():
    """Per (method, order): mean and std of each metric; per method: mean of the order means."""
    per_order = {}
    for (method, order), ms in PLAN.items():
        per_order[method, order] = {k: (mean([m["want"][k] for m in ms]),
                                         sample_std([m["want"][k] for m in ms])) for k in KEYS}
    per_method = {m: {k: mean([per_order[m, "order1"][k][0], per_order[m, "order2"][k][0]])
                      for k in KEYS} for m in ("inclora", "seqft")}
    return per_order, per_method


def f2(v):
    return f"{v:.2f}"


def main():
    with tempfile.TemporaryDirectory(prefix="post_tables_") as work:
        tests(work)
    return checks.finish()


def tests(work):
    root = os.path.join(work, "runs")
    dirs = []
    for (method, order), seeds in PLAN.items():
        for seed, m in enumerate(seeds, 1):
            d = os.path.join(root, f"{method}-{order}", f"s{seed}")
            write_results(d, m, method, order, seed)
            dirs.append(d)
    per_order, per_method = expected()

    r = tool(root)
    check(r.returncode == 0, "exit 0 on a folder of 9 runs", r.stderr)
    t = md_tables(r.stdout)
    rows = t.get("Per method and order", [])
    check([(x["method"], x["order"]) for x in rows] ==
          [("inclora", "order1"), ("inclora", "order2"), ("seqft", "order1"), ("seqft", "order2")],
          "one row per (method, order), sorted by method then order", rows)
    bad = []
    for x in rows:
        for k, head in zip(KEYS, ("AP", "BWT", "FWT", "forgetting", "in-list")):
            mu, std = per_order[x["method"], x["order"]][k]
            if (x[head] != f"{f2(mu)} ± {f2(std)}"
                    or x["seeds"] != str(len(PLAN[x["method"], x["order"]]))):
                bad.append((x["method"], x["order"], head, x[head], f2(mu), f2(std)))
    check(rows and not bad, "Markdown: mean ± sample std over the two seeds of every metric", bad)
    mrows = t.get("Per method, mean over orders", [])
    bad = [(x["method"], k, x[h]) for x in mrows
           for k, h in zip(KEYS, ("AP", "BWT", "FWT", "forgetting", "in-list"))
           if x[h] != f2(per_method[x["method"]][k]) or x["orders"] != "order1, order2"
           or x["seeds"] != {"inclora": "4", "seqft": "5"}[x["method"]]]
    check([x["method"] for x in mrows] == ["inclora", "seqft"] and not bad,
          "Markdown: per method the mean of its per-order means, orders listed", (mrows, bad))
    runs = t.get("Runs", [])
    want_runs = [(m, o, str(s), PLAN[m, o][s - 1]) for m in ("inclora", "seqft")
                 for o in ("order1", "order2") for s in range(1, len(PLAN[m, o]) + 1)]
    bad = [(x, w[:3]) for x, w in zip(runs, want_runs)
           if (x["method"], x["order"], x["seed"]) != w[:3] or x["status"] != "complete"
           or [x[h] for h in ("AP", "BWT", "FWT", "forgetting", "in-list")] !=
           [f2(w[3]["want"][k]) for k in KEYS]]
    check(len(runs) == 9 and not bad, "Markdown: per-run rows in (method, order, seed) order "
          "with the hand-computed metrics", bad)

    r2 = tool(*reversed(dirs))
    check(r2.returncode == 0 and r2.stdout == r.stdout,
          "the same output whatever the order of the PATH arguments")

    c = tool(root, "--format", "csv")
    recs = list(csv.DictReader(io.StringIO(c.stdout)))
    bad = []
    for x in recs:
        for k in KEYS:
            if x["table"] == "order":
                mu, std = per_order[x["method"], x["order"]][k]
            elif x["table"] == "method":
                mu, std = per_method[x["method"]][k], None
            else:
                m, o, s = x["method"], x["order"], int(x["seed"])
                mu, std = PLAN[m, o][s - 1]["want"][k], None
            if abs(float(x[k]) - mu) > 1e-6 or (
                    x[k + "_std"] if std is None else abs(float(x[k + "_std"]) - std) > 1e-6):
                bad.append((x["table"], x["method"], x["order"], x["seed"], k))
    check(c.returncode == 0 and [x["table"] for x in recs] == ["order"] * 4 + ["method"] * 2 +
          ["run"] * 9 and not bad, "CSV: every mean and std to 1e-6", (c.stderr, bad))

    lt = tool(root, "--format", "latex")
    s1, s2 = per_order["seqft", "order1"]["AP"]
    pm = per_method["seqft"]
    want_line = " & ".join(["seqft", "order1, order2", "5"] +
                           [f2(pm[k]) for k in KEYS]) + r" \\"
    check(lt.returncode == 0 and lt.stdout.count(r"\begin{tabular}") == 3 and
          rf"seqft & order1 & 2 & ${f2(s1)} \pm {f2(s2)}$ &" in lt.stdout
          and want_line in lt.stdout,
          "LaTeX: three tabulars with the per-order and per-method numbers", lt.stdout)

    # partial: seed 3 of seqft/order1 stopped after task 2 (rows 0..2 measured, 3 of 4)
    part = os.path.join(root, "seqft-order1", "s3")
    acc = [row[:] for row in A["acc"][:3]] + [[N, N, N]]
    write_results(part, dict(A, inl_last=[N, N, N]), "seqft", "order1", 3, acc=acc,
                  attrs={"AP": N, "BWT": N, "forgetting": N})  # FWT needs rows 0..2 only: 20
    p = tool(root)
    check(p.returncode == 1 and os.path.join(part, "results.h5") in p.stderr
          and "3 of 4 rows complete" in p.stderr, "a partial run is refused naming the file "
          "and the complete rows", p.stderr)
    p = tool(root, "--allow-partial")
    t = md_tables(p.stdout)
    prow = [x for x in t.get("Runs", []) if x["seed"] == "3" and x["order"] == "order1"]
    orow = [x for x in t.get("Per method and order", []) if x["method"] == "seqft"
            and x["order"] == "order1"]
    mu, std = per_order["seqft", "order1"]["AP"]
    check(p.returncode == 0 and len(prow) == 1 and prow[0]["status"] == "partial (3 of 4 rows)"
          and all(prow[0][h] == "n/a" for h in ("AP", "BWT", "FWT", "forgetting", "in-list"))
          and orow and orow[0]["seeds"] == "2 (+1 partial)"
          and orow[0]["AP"] == f"{f2(mu)} ± {f2(std)}",
          "--allow-partial lists it with n/a and a partial mark, outside the averages",
          (p.stderr, prow, orow))
    os.remove(os.path.join(part, "results.h5"))
    os.rmdir(part)

    # an mtl run measures rows 0 and T only: BWT, FWT, forgetting are undefined (NaN) but it is
    # complete; AP = (90 + 90 + 90) / 3 = 90
    mtl = os.path.join(work, "mtl")
    acc = [[10, 20, 30], [N, N, N], [N, N, N], [90, 90, 90]]
    write_results(mtl, dict(A, inl_last=[90, 90, 90]), "mtl", "order1", 1, acc=acc,
                  attrs={"AP": 90.0, "BWT": N, "FWT": N, "forgetting": N})
    m = md_tables(tool(mtl).stdout).get("Runs", [{}])[0]
    check([m.get(h) for h in ("status", "AP", "BWT", "FWT", "forgetting", "in-list")] ==
          ["complete", "90.00", "n/a", "n/a", "n/a", "90.00"],
          "an mtl run: AP and in-list, n/a for the metrics it cannot define", m)

    # a run with eval.zero_shot = false leaves row 0 unmeasured: FWT (its only user) is n/a, the
    # rest is A's; the run is complete (a stored FWT number would be refused: nothing gives it)
    noz = os.path.join(work, "noz")
    acc = [[N, N, N]] + A["acc"][1:]
    write_results(noz, A, "seqft", "order1", 1, acc=acc, attrs={"FWT": N})
    m = md_tables(tool(noz).stdout).get("Runs", [{}])[0]
    check([m.get(h) for h in ("status", "AP", "BWT", "FWT", "forgetting", "in-list")] ==
          ["complete", "70.00", "-25.00", "n/a", "27.50", "90.00"],
          "no zero-shot row: FWT n/a, AP, BWT, forgetting and in-list as with it", m)
    write_results(noz, A, "seqft", "order1", 1, acc=acc)
    w = tool(noz)
    check(w.returncode == 1 and "attribute FWT = 20.0" in w.stderr,
          "no zero-shot row: a stored FWT number is refused (the matrix has no row 0)", w.stderr)
    shutil.rmtree(noz)

    # the two implementations must agree to 1e-9 relative
    near = os.path.join(work, "near")
    write_results(near, A, "seqft", "order1", 1, attrs={"AP": 70.0 * (1 + 1e-11)})
    check(tool(near).returncode == 0, "a stored AP 1e-11 relative off is accepted")
    wrong = os.path.join(work, "wrong")
    write_results(wrong, A, "seqft", "order1", 1, attrs={"BWT": -24.0})
    w = tool(wrong)
    check(w.returncode == 1 and os.path.join(wrong, "results.h5") in w.stderr
          and "attribute BWT = -24.0" in w.stderr and "-25.0" in w.stderr,
          "a stored BWT off by 1 is refused naming the file, the metric and both values",
          w.stderr)
    write_results(wrong, A, "seqft", "order1", 1, attrs={"forgetting": 27.5 * (1 + 1e-8)})
    w = tool(wrong)
    check(w.returncode == 1 and "attribute forgetting" in w.stderr,
          "a stored forgetting 1e-8 relative off is refused", w.stderr)

    bad_input(work)

    for args in ([], [root, "--format", "xml"], [root, "--plots"]):
        u = tool(*args)
        check(u.returncode == 2 and "usage:" in u.stderr, f"usage error {args[1:]}: exit 2",
              u.stderr)

    out = os.path.join(work, "tables")
    o = tool(root, "--out", out, "--plots")
    files = sorted(os.listdir(out)) if os.path.isdir(out) else []
    check(o.returncode == 0 and o.stdout == r.stdout, "--out prints the same Markdown", o.stderr)
    same = [open(os.path.join(out, f"tables.{ext}")).read() == tool(root, "--format", fmt).stdout
            for fmt, ext in (("md", "md"), ("csv", "csv"), ("latex", "tex"))
            if os.path.exists(os.path.join(out, f"tables.{ext}"))]
    check(same == [True] * 3, "--out writes tables.md, tables.csv, tables.tex as --format prints")
    pngs = [f"{kind}_{m}_{o}_s{s}.png" for kind in ("heatmap", "per_task")
            for (m, o), ms in PLAN.items() for s in range(1, len(ms) + 1)]
    missing = [p for p in pngs if p not in files]
    not_png = [p for p in pngs if p in files and
               open(os.path.join(out, p), "rb").read(8) != b"\x89PNG\r\n\x1a\n"]
    check(not missing and not not_png and len(files) == 3 + len(pngs),
          "--plots writes a heat map and a per-task plot per run, valid PNGs, nothing else",
          (missing, not_png, o.stderr))


def bad_input(work):
    """Each case: exit 1 and a message naming the file (or folder) and what is wrong."""
    empty = os.path.join(work, "empty")
    os.makedirs(empty)
    cases = [("a folder without results.h5", empty, [empty, "no results.h5"]),
             ("a path that does not exist", os.path.join(work, "nope"),
              [os.path.join(work, "nope"), "not a directory"])]
    junk = os.path.join(work, "junk")
    os.makedirs(junk)
    with open(os.path.join(junk, "results.h5"), "w") as f:
        f.write("not hdf5\n")
    cases.append(("a results.h5 that is not HDF5", junk,
                  ["junk/results.h5", "not a readable HDF5"]))
    cut = os.path.join(work, "cut")
    write_results(cut, A, "seqft", "order1", 1)
    h5 = os.path.join(cut, "results.h5")
    with open(h5, "r+b") as f:
        f.truncate(os.path.getsize(h5) // 2)
    cases.append(("a truncated results.h5", cut, ["cut/results.h5", "not a readable HDF5"]))
    shape = os.path.join(work, "shape")
    write_results(shape, A, "seqft", "order1", 1, acc=[[10, 20, 30]] * 3)
    cases.append(("acc_matrix [3, 3] with 3 tasks", shape,
                  ["shape/results.h5", "'/acc_matrix' has shape [3, 3]", "[4, 3]"]))
    for key in ("FWT", "tasks", "seed"):
        d = os.path.join(work, f"no_{key}")
        write_results(d, A, "seqft", "order1", 1, drop=(key,))
        cases.append((f"no attribute {key}", d, [f"no_{key}/results.h5", f"no attribute '{key}'"]))
    nods = os.path.join(work, "no_inlist")
    write_results(nods, A, "seqft", "order1", 1, drop=("in_list",))
    cases.append(("no dataset in_list", nods, ["no_inlist/results.h5", "no dataset '/in_list'"]))
    rng = os.path.join(work, "range")
    acc = [row[:] for row in A["acc"]]
    acc[2][1] = 900  # a fraction or a count where percent is expected
    write_results(rng, A, "seqft", "order1", 1, acc=acc)
    cases.append(("an accuracy of 900", rng, ["range/results.h5", "row 2, column 1 is 900.0"]))
    for what, path, needles in cases:
        b = tool(path)
        missing = [n for n in needles if n not in b.stderr]
        check(b.returncode == 1 and not missing and not b.stdout,
              f"bad input, {what}: exit 1 naming it", (b.returncode, b.stderr, missing))


if __name__ == "__main__":
    sys.exit(main())
