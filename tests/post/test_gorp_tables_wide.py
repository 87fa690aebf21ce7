"""postprocess/gorp_tables.py --layout wide, run labels, the authors' layout and --figures, on
hand-made input (no gorp run): test_gorp_tables.py's 2 methods x 2 orders of results.h5 files,
three gorp-method files that differ only in their name attribute (run.name), and the hand-written
authors' run of tests/post/authors beside a gorp file on the same order. Every number of the wide
tables is checked against values worked out here from the hand-computed metrics, not from the
tool; the figures must be PDFs and 300-dpi PNGs."""
import csv
import io
import os
import shutil
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "ref"))
sys.path.insert(0, HERE)
from checks import Checks  # noqa: E402
import test_gorp_tables as base  # noqa: E402  (its hand-made matrices and file writer)

AUTHORS = os.path.join(HERE, "authors")
CLB = ["dbpedia", "amazon", "yahoo", "agnews"]  # order1 of inputs/orders.txt
checks = Checks()
check = checks.report
f2 = base.f2


def png_dpi(path):
    """The dots per inch of a PNG's pHYs chunk (None without one)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    i = 8
    while i < len(data):
        n, kind = struct.unpack(">I4s", data[i:i + 8])
        if kind == b"pHYs":
            x, _, unit = struct.unpack(">IIB", data[i + 8:i + 17])
            return round(x * 0.0254) if unit == 1 else None
        i += 12 + n
    return None


def main():
    with tempfile.TemporaryDirectory(prefix="post_wide_") as work:
        tests(work)
    return checks.finish()


def tests(work):
    root = os.path.join(work, "runs")
    for (method, order), seeds in base.PLAN.items():
        for seed, m in enumerate(seeds, 1):
            base.write_results(os.path.join(root, f"{method}-{order}", f"s{seed}"), m, method,
                               order, seed)
    per_order, _ = base.expected()

    # the wide layout: per method and order mean ± std of AP and BWT, Avg = mean of order means
    r = base.tool(root, "--layout", "wide")
    t = base.md_tables(r.stdout)
    bad = []
    for key in ("AP", "BWT"):
        rows = t.get(key, [])
        if [x["method"] for x in rows] != ["inclora", "seqft"]:
            bad.append((key, "rows", rows))
        for x in rows:
            m = x["method"]
            for o in ("order1", "order2"):
                mu, sd = per_order[m, o][key]
                if x[o] != f"{f2(mu)} ± {f2(sd)}":
                    bad.append((key, m, o, x[o], mu, sd))
            avg = (per_order[m, "order1"][key][0] + per_order[m, "order2"][key][0]) / 2
            seeds = f"{len(base.PLAN[m, 'order1'])}/{len(base.PLAN[m, 'order2'])}"
            if x["Avg"] != f2(avg) or x["seeds"] != seeds:
                bad.append((key, m, "Avg", x["Avg"], avg, x["seeds"]))
    check(r.returncode == 0 and not bad and "BWT ÷ T (the authors' denominator)" not in t,
          "wide Markdown: AP and BWT mean ± sample std per order, Avg, seeds per order", bad)
    c = base.tool(root, "--layout", "wide", "--format", "csv")
    bad = []
    recs = list(csv.DictReader(io.StringIO(c.stdout)))
    for x in recs:
        for o in ("order1", "order2"):
            mu, sd = per_order[x["method"], o][x["metric"]]
            if abs(float(x[o]) - mu) > 1e-6 or abs(float(x[o + "_std"]) - sd) > 1e-6:
                bad.append((x["metric"], x["method"], o))
    check(c.returncode == 0 and [(x["metric"], x["method"]) for x in recs] ==
          [("AP", "inclora"), ("AP", "seqft"), ("BWT", "inclora"), ("BWT", "seqft")] and not bad,
          "wide CSV: every mean and std to 1e-6", (c.stderr, bad))
    lt = base.tool(root, "--layout", "wide", "--format", "latex")
    mu, sd = per_order["seqft", "order2"]["BWT"]
    check(lt.returncode == 0 and lt.stdout.count(r"\begin{tabular}") == 2 and
          rf"${f2(mu)} \pm {f2(sd)}$" in lt.stdout, "wide LaTeX: two tabulars", lt.stdout)
    # one order missing: no Avg for that row (a mean over fewer orders would not compare)
    shutil.rmtree(os.path.join(root, "inclora-order2"))
    t = base.md_tables(base.tool(root, "--layout", "wide").stdout)
    inc = [x for x in t.get("AP", []) if x["method"] == "inclora"]
    check(inc and inc[0]["order2"] == "–" and inc[0]["Avg"] == "–" and inc[0]["seeds"] == "2/0",
          "a row without one of the orders: – in that column and in Avg", inc)

    # run.name: three files of method gorp, one order and seed, differing only in their name
    named = os.path.join(work, "named")
    for name, m in (("gorp_paper", base.A), ("gorp_input", base.C), ("", base.D)):
        base.write_results(os.path.join(named, name or "plain"), m, "gorp", "order1", 1,
                           attrs={"name": name})
    t = base.md_tables(base.tool(named, "--layout", "wide").stdout)
    got = {x["method"]: x["order1"] for x in t.get("AP", [])}
    want = {"gorp": f2(base.D["want"]["AP"]), "gorp_input": f2(base.C["want"]["AP"]),
            "gorp_paper": f2(base.A["want"]["AP"])}
    check(got == want, "run.name labels the rows; an empty name falls back to the method",
          (got, want))
    base.write_results(os.path.join(named, "again"), base.B, "gorp", "order1", 1,
                       attrs={"name": "gorp_paper"})
    d = base.tool(named)
    check(d.returncode == 1 and "run gorp_paper, order order1, seed 1 again" in d.stderr
          and "run.name" in d.stderr, "two runs with one label, order and seed are refused",
          d.stderr)

    # the authors' layout beside a gorp run on the same task sequence (order1 of the benchmark)
    both = os.path.join(work, "both")
    shutil.copytree(AUTHORS, os.path.join(both, "authors"))
    acc = [[10, 10, 10, 10], [90, 20, N, N], [80, 60, 30, N], [70, 50, 65, 40], [60, 40, 55, 85]]
    gorp = {"acc": acc, "inl_last": [100] * 4,
            # AP = (60 + 40 + 55 + 85) / 4 = 60; BWT = ((60-90) + (40-60) + (55-65)) / 3 = -20
            # FWT = ((20-10) + (30-10) + (40-10)) / 3 = 20
            # forgetting = ((90-60) + (60-40) + (65-55)) / 3 = 20
            "want": {"AP": 60.0, "BWT": -20.0, "FWT": 20.0, "forgetting": 20.0}}
    base.TASKS["order1-clb"] = CLB
    base.write_results(os.path.join(both, "gorp"), gorp, "gorp", "order1-clb", 1,
                       attrs={"order": "order1"})
    r = base.tool(both, "--layout", "wide")
    t = base.md_tables(r.stdout)
    ap = {x["method"]: x.get("order1") for x in t.get("AP", [])}
    bwt = {x["method"]: x.get("order1") for x in t.get("BWT", [])}
    over_t = t.get("BWT ÷ T (the authors' denominator)", [])
    # the fixture's numbers by hand (tests/post/authors/README.md)
    check(r.returncode == 0 and ap == {"gorp": "60.00", "olora †": "74.25"}
          and bwt == {"gorp": "-20.00", "olora †": f2(-11 / 3)}
          and [(x["method"], x["order1"], x["Avg"]) for x in over_t] ==
          [("olora †", "-2.75", "-2.75")] and "Orders: order1 = dbpedia → amazon → yahoo → "
          "agnews." in r.stdout and "divide BWT's sum by T instead of T-1" in r.stdout,
          "the authors' run shares gorp's order1 column, marked †, its BWT ÷ T row beside",
          (r.stderr, ap, bwt, over_t))
    lg = base.tool(both)
    runs = {x["method"]: x for x in base.md_tables(lg.stdout).get("Runs", [])}
    o = runs.get("olora", {})
    check(lg.returncode == 0 and [o.get(h) for h in ("order", "seed", "AP", "BWT", "FWT",
                                                       "forgetting", "in-list")] ==
          [",".join(CLB), "1", "74.25", f2(-11 / 3), "n/a", f2(11 / 3), "n/a"]
          and "olora dbpedia,amazon,yahoo,agnews seed 1: -2.75" in lg.stdout,
          "long layout: the authors' run with FWT and in-list n/a, the T-denominator note",
          (lg.stderr, o))
    authors_bad(work)

    # --figures: curves per order and the bars, PDF and 300-dpi PNG
    fig = os.path.join(work, "fig")
    r = base.tool(root, both, "--layout", "wide", "--figures", fig)
    files = sorted(os.listdir(fig)) if os.path.isdir(fig) else []
    want = sorted(f"{s}.{e}" for s in ("curves_order1", "curves_order2", "bars")
                  for e in ("pdf", "png"))
    pdf_ok = all(open(os.path.join(fig, f), "rb").read(5) == b"%PDF-" for f in want
                 if f.endswith(".pdf") and f in files)
    dpi = {f: png_dpi(os.path.join(fig, f)) for f in want if f.endswith(".png") and f in files}
    check(r.returncode == 0 and files == want and pdf_ok and set(dpi.values()) == {300},
          "--figures: curves_<order> and bars as PDF and 300-dpi PNG, nothing else",
          (r.stderr, files, dpi))


N = base.N


def authors_bad(work):
    """Malformed authors' folders: exit 1 naming the file and what is wrong."""
    cases = []
    d = os.path.join(work, "a_nokey")
    shutil.copytree(AUTHORS, d)
    p = os.path.join(d, "olora-s1", "outputs", "3-yahoo", "all_results.json")
    with open(p) as f:
        text = f.read()
    with open(p, "w") as f:
        f.write(text.replace('"predict_exact_match_for_amazon"', '"predict_exact_match_for_x"'))
    cases.append(("a round without a task's key", d,
                  ["3-yahoo/all_results.json", "no key 'predict_exact_match_for_amazon'"]))
    d = os.path.join(work, "a_range")
    shutil.copytree(AUTHORS, d)
    p = os.path.join(d, "olora-s1", "outputs", "2-amazon", "all_results.json")
    with open(p) as f:
        text = f.read()
    with open(p, "w") as f:
        f.write(text.replace('"predict_exact_match_for_amazon": 50.0',
                             '"predict_exact_match_for_amazon": 0.5e3'))
    cases.append(("an accuracy of 500", d, ["2-amazon/all_results.json", "500.0",
                                            "percentage in 0..100"]))
    d = os.path.join(work, "a_gap")
    shutil.copytree(AUTHORS, d)
    shutil.rmtree(os.path.join(d, "olora-s1", "outputs", "2-amazon"))
    cases.append(("round 2 missing", d, ["round 2 has 0 folders", "1..4"]))
    d = os.path.join(work, "a_json")
    shutil.copytree(AUTHORS, d)
    with open(os.path.join(d, "olora-s1", "outputs", "4-agnews", "all_results.json"), "w") as f:
        f.write("{ not json")
    cases.append(("a file that is not JSON", d, ["4-agnews/all_results.json",
                                                 "not a readable JSON"]))
    for what, path, needles in cases:
        b = base.tool(path)
        missing = [n for n in needles if n not in b.stderr]
        check(b.returncode == 1 and not missing and not b.stdout,
              f"authors' layout, {what}: exit 1 naming it", (b.returncode, b.stderr, missing))


if __name__ == "__main__":
    sys.exit(main())
