#!/usr/bin/env python3
"""Tables of gorp run directories: AP, BWT, FWT, forgetting and in-list rate per method and order.

    python postprocess/gorp_tables.py PATH [PATH ...] [--format md|csv|latex] [--out DIR]
                                      [--plots] [--allow-partial]

PATH is a run directory (it holds results.h5, docs/RESULTS.md) or a folder searched recursively
for them. Every metric is recomputed here with numpy from the matrices and must equal the
attribute gorp stored (the two implementations check each other). docs/POSTPROCESS.md is the
reference: formulas, table layout, how seeds and orders are averaged, what is refused.
Exit codes: 0 tables written, 1 bad or refused input (the message names the file), 2 usage.
"""
import argparse
import csv
import io
import math
import os
import re
import statistics
import sys
from dataclasses import dataclass

import h5py
import numpy as np

REL_TOL = 1e-9
STORED = ("AP", "BWT", "FWT", "forgetting")  # the metrics gorp also stores as attributes
COLUMNS = STORED + ("in_list",)
HEAD = {"AP": "AP", "BWT": "BWT", "FWT": "FWT", "forgetting": "forgetting", "in_list": "in-list"}


class TableError(Exception):
    """Bad or refused input; the message names the file and what was expected."""


@dataclass
class Run:
    path: str
    method: str
    order: str
    seed: int
    tasks: list
    acc: np.ndarray
    values: dict  # COLUMNS -> float (NaN: undefined, e.g. BWT of an mtl run)
    rows_complete: int

    @property
    def partial(self):
        """The last row is not fully measured (an mtl run, with rows 0 and T only, is complete)."""
        return bool(np.isnan(self.acc[-1]).any())


def find_results(paths):
    """Every results.h5 at or below the PATHs, each file once, in a stable order."""
    found, seen = [], set()
    for p in paths:
        if not os.path.isdir(p):
            raise TableError(f"{p}: not a directory (expected a run directory holding "
                             "results.h5, or a folder of them)")
        hits = []
        for root, dirs, files in os.walk(p):
            dirs.sort()
            if "results.h5" in files:
                hits.append(os.path.join(root, "results.h5"))
        if not hits:
            raise TableError(f"{p}: no results.h5 in it or below (not a gorp run directory, "
                             "or the run has not evaluated anything yet)")
        for h in hits:
            real = os.path.realpath(h)
            if real not in seen:
                seen.add(real)
                found.append(h)
    return found


def text_attr(path, key, v):
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v[()]
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if not isinstance(v, str):
        raise TableError(f"{path}: attribute '{key}' is {type(v).__name__}, expected a string")
    return v


def number_attr(path, key, v, integer):
    kinds = "iu" if integer else "iuf"
    if np.ndim(v) != 0 or np.asarray(v).dtype.kind not in kinds:
        raise TableError(f"{path}: attribute '{key}' is {v!r}, expected a single "
                         f"{'integer' if integer else 'number'}")
    return int(v) if integer else float(v)


def matrix(f, path, name, T):
    d = f.get(name)
    if not isinstance(d, h5py.Dataset):
        raise TableError(f"{path}: no dataset '/{name}' (not a gorp results.h5?)")
    if d.shape != (T + 1, T):
        raise TableError(f"{path}: dataset '/{name}' has shape {list(d.shape)}, expected "
                         f"[T+1, T] = [{T + 1}, {T}] with T = {T} = len(attribute tasks)")
    if d.dtype.kind != "f":
        raise TableError(f"{path}: dataset '/{name}' holds {d.dtype}, expected float64 percent")
    m = np.asarray(d[...], dtype=np.float64)
    bad = ~np.isnan(m) & ~((m >= 0) & (m <= 100))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise TableError(f"{path}: dataset '/{name}' row {r}, column {c} is {m[r, c]!r}, "
                         "expected a percentage in 0..100 or NaN")
    return m


def recompute(acc, in_list):
    """AP, BWT, FWT, forgetting, in-list from the matrices (docs/POSTPROCESS.md); NaN where a term
    is not measured. Written with whole-array numpy on purpose: gorp's cl_metrics.c loops."""
    T = acc.shape[1]
    last = acc[T]
    out = {"AP": float(np.mean(last)), "in_list": float(np.mean(in_list[T]))}
    if T < 2:
        return dict(out, BWT=math.nan, FWT=math.nan, forgetting=math.nan)
    just_learned = np.diagonal(acc[1:T, :T - 1])  # a[i, i], i = 1..T-1 (1-based)
    out["BWT"] = float(np.mean(last[:T - 1] - just_learned))
    before = np.diagonal(acc[1:T, 1:T])  # a[i-1, i], i = 2..T: task i just before its training
    out["FWT"] = float(np.mean(before - acc[0, 1:T]))
    # rows k = 1..T-1 against tasks i = 1..T-1: a[k, i] counts for task i when k >= i (learned)
    learned = acc[1:T, :T - 1].copy()
    learned[np.triu_indices(T - 1, 1)] = np.nan
    best = np.max(np.where(np.isnan(learned), -np.inf, learned), axis=0)
    best[np.isneginf(best)] = np.nan  # a task never measured after its training
    out["forgetting"] = float(np.mean(best - last[:T - 1]))
    return out


def rows_complete(acc):
    """Rows whose measured cells are all there: row 0 every task, row j tasks 1..j+1."""
    T = acc.shape[1]
    need = [T] + [min(j + 1, T) for j in range(1, T + 1)]
    return sum(1 for j in range(T + 1) if not np.isnan(acc[j, :need[j]]).any())


def agree(stored, mine):
    if math.isnan(stored) or math.isnan(mine):
        return math.isnan(stored) and math.isnan(mine)
    # relative to at least 1 percent point: a BWT of 0 has no meaningful relative error
    return abs(stored - mine) <= REL_TOL * max(1.0, abs(stored), abs(mine))


def read_run(path):
    try:
        with h5py.File(path, "r") as f:
            attrs = f.attrs
            for key in ("tasks", "method", "order", "seed") + STORED:
                if key not in attrs:
                    raise TableError(f"{path}: no attribute '{key}' (docs/RESULTS.md)")
            tasks = np.asarray(attrs["tasks"])
            if tasks.ndim != 1 or tasks.size < 1:
                raise TableError(f"{path}: attribute 'tasks' has shape {list(tasks.shape)}, "
                                 "expected a list of at least one task name")
            tasks = [text_attr(path, "tasks", t) for t in tasks]
            T = len(tasks)
            acc = matrix(f, path, "acc_matrix", T)
            inl = matrix(f, path, "in_list", T)
            method = text_attr(path, "method", attrs["method"])
            order = text_attr(path, "order", attrs["order"])
            seed = number_attr(path, "seed", attrs["seed"], True)
            stored = {k: number_attr(path, k, attrs[k], False) for k in STORED}
    except OSError as e:
        raise TableError(f"{path}: not a readable HDF5 file ({e})") from None
    if not np.array_equal(np.isnan(acc), np.isnan(inl)):
        r, c = np.argwhere(np.isnan(acc) != np.isnan(inl))[0]
        raise TableError(f"{path}: acc_matrix and in_list differ in which cells are measured "
                         f"(row {r}, column {c})")
    values = recompute(acc, inl)
    for k in STORED:
        if not agree(stored[k], values[k]):
            raise TableError(f"{path}: attribute {k} = {stored[k]!r} but the matrices give "
                             f"{values[k]!r} (more than {REL_TOL:g} relative apart)")
    return Run(path, method, order, seed, tasks, acc, values, rows_complete(acc))


def natural(s):
    """Sort key: order2 before order10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def run_key(r):
    return (natural(r.method), natural(r.order), r.seed)


def check_runs(runs, allow_partial):
    seen = {}
    for r in runs:
        k = (r.method, r.order, r.seed)
        if k in seen:
            raise TableError(f"{r.path}: method {r.method}, order {r.order}, seed {r.seed} "
                             f"again (also {seen[k]}); one seed must not count twice: pass "
                             "differing configs of one method in separate calls")
        seen[k] = r.path
    partial = [r for r in runs if r.partial]
    if partial and not allow_partial:
        lines = [f"{r.path}: the last row (after task {r.acc.shape[1]}) is not fully measured, "
                 f"{r.rows_complete} of {r.acc.shape[0]} rows complete (run still going or "
                 "stopped)" for r in partial]
        raise TableError("\n".join(lines) + "\n(--allow-partial lists such runs without "
                         "metrics and leaves them out of the averages)")


def mean_std(xs):
    """Mean and sample std; std None with one value; NaN when a value is undefined."""
    if any(math.isnan(x) for x in xs):
        return math.nan, (math.nan if len(xs) > 1 else None)
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else None)


def build(runs):
    """The three tables as row dicts: per (method, order), per method, per run."""
    runs = sorted(runs, key=run_key)
    groups = {}
    for r in runs:
        groups.setdefault((r.method, r.order), []).append(r)
    by_order, by_method = [], {}
    for (method, order), rs in groups.items():
        done = [r for r in rs if not r.partial]
        row = {"method": method, "order": order, "seeds": len(done),
               "partial": len(rs) - len(done), "mean": {}, "std": {}}
        for k in COLUMNS:
            row["mean"][k], row["std"][k] = (mean_std([r.values[k] for r in done]) if done
                                             else (math.nan, None))
        by_order.append(row)
        if done:
            by_method.setdefault(method, []).append(row)
    method_rows = [{"method": m, "orders": [o["order"] for o in os_],
                    "seeds": sum(o["seeds"] for o in os_),
                    "mean": {k: mean_std([o["mean"][k] for o in os_])[0] for k in COLUMNS}}
                   for m, os_ in by_method.items()]
    return by_order, method_rows, runs


def num(v, digits):
    if v is None:
        return ""
    if math.isnan(v):
        return "n/a"
    s = f"{v:.{digits}f}"
    return s[1:] if re.fullmatch(r"-0\.0*", s) else s


def cell(mean, std, pm):
    return num(mean, 2) if std is None or math.isnan(mean) else f"{num(mean, 2)}{pm}{num(std, 2)}"


def status(r):
    return f"partial ({r.rows_complete} of {r.acc.shape[0]} rows)" if r.partial else "complete"


def seeds_cell(row):
    return f"{row['seeds']}" + (f" (+{row['partial']} partial)" if row["partial"] else "")


def run_cells(r):
    return ["n/a" if r.partial else num(r.values[k], 2) for k in COLUMNS]


NOTE = ("Accuracies in percent (exact match), metrics after the last task. Per method and order: "
        "mean{pm}sample std over seeds (std with more than one seed). Per method: mean of the "
        "per-order means over the orders listed (those with a complete run). Partial runs are "
        "listed, not averaged. n/a: undefined, a term not measured (BWT, FWT, forgetting of mtl; FWT "
        "of a run without the zero-shot row, eval.zero_shot = false). Formulas: "
        "docs/POSTPROCESS.md.")


def md_escape(s):
    return s.replace("|", "\\|")


def markdown(tables):
    by_order, by_method, runs = tables
    heads = [HEAD[k] for k in COLUMNS]

    def table(cols, n_left, rows):
        out = ["| " + " | ".join(cols) + " |",
               "|" + "|".join(["---"] * n_left + ["---:"] * (len(cols) - n_left)) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return out

    out = ["## Per method and order", ""]
    out += table(["method", "order", "seeds"] + heads, 2, [
        [md_escape(o["method"]), md_escape(o["order"]), seeds_cell(o)] +
        [cell(o["mean"][k], o["std"][k], " ± ") for k in COLUMNS] for o in by_order])
    out += ["", "## Per method, mean over orders", ""]
    out += table(["method", "orders", "seeds"] + heads, 2, [
        [md_escape(m["method"]), md_escape(", ".join(m["orders"])), str(m["seeds"])] +
        [num(m["mean"][k], 2) for k in COLUMNS] for m in by_method])
    out += ["", "## Runs", ""]
    out += table(["method", "order", "seed", "status"] + heads, 4, [
        [md_escape(r.method), md_escape(r.order), str(r.seed), status(r)] + run_cells(r)
        for r in runs])
    out += ["", NOTE.format(pm=" ± "), ""]
    return "\n".join(out)


def csv_text(tables):
    """One CSV, column 'table' = order | method | run; NaN as n/a, no std as an empty cell."""
    by_order, by_method, runs = tables
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["table", "method", "order", "seed", "seeds", "status"] +
               [c for k in COLUMNS for c in (k, k + "_std")])
    for o in by_order:
        w.writerow(["order", o["method"], o["order"], "", o["seeds"],
                    f"{o['partial']} partial" if o["partial"] else ""] +
                   [c for k in COLUMNS for c in (num(o["mean"][k], 6), num(o["std"][k], 6))])
    for m in by_method:
        w.writerow(["method", m["method"], ";".join(m["orders"]), "", m["seeds"], ""] +
                   [c for k in COLUMNS for c in (num(m["mean"][k], 6), "")])
    for r in runs:
        w.writerow(["run", r.method, r.order, r.seed, "", status(r)] +
                   [c for k in COLUMNS for c in ("n/a" if r.partial else num(r.values[k], 6),
                                                 "")])
    return buf.getvalue()


TEX_SPECIAL = {**{c: "\\" + c for c in "&%$#_{}"},
               "\\": r"\textbackslash{}", "~": r"\textasciitilde{}", "^": r"\^{}"}


def tex_escape(s):
    return "".join(TEX_SPECIAL.get(c, c) for c in s)


def latex(tables):
    by_order, by_method, runs = tables
    heads = [HEAD[k] for k in COLUMNS]

    def table(title, cols, n_left, rows):
        out = [f"% {title}", "\\begin{tabular}{" + "l" * n_left + "r" * (len(cols) - n_left) +
               "}", "\\hline", " & ".join(cols) + r" \\", "\\hline"]
        out += [" & ".join(r) + r" \\" for r in rows]
        return out + ["\\hline", "\\end{tabular}", ""]

    def lcell(mean, std):
        c = cell(mean, std, r" \pm ")
        return f"${c}$" if std is not None and not math.isnan(mean) else c

    out = [f"% gorp_tables.py. {NOTE.format(pm=' +- ')}", ""]
    out += table("per method and order", ["method", "order", "seeds"] + heads, 2, [
        [tex_escape(o["method"]), tex_escape(o["order"]), tex_escape(seeds_cell(o))] +
        [lcell(o["mean"][k], o["std"][k]) for k in COLUMNS] for o in by_order])
    out += table("per method, mean over orders", ["method", "orders", "seeds"] + heads, 2, [
        [tex_escape(m["method"]), tex_escape(", ".join(m["orders"])), str(m["seeds"])] +
        [num(m["mean"][k], 2) for k in COLUMNS] for m in by_method])
    out += table("runs", ["method", "order", "seed", "status"] + heads, 4, [
        [tex_escape(r.method), tex_escape(r.order), str(r.seed), tex_escape(status(r))] +
        run_cells(r) for r in runs])
    return "\n".join(out)


def write_atomic(path, data):
    """A reader (or a job killed halfway) never sees half a table."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(data)
    os.replace(tmp, path)


def slug(s):
    return re.sub(r"[^A-Za-z0-9._-]+", "-", s).strip("-") or "x"


def plot_runs(runs, out_dir):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise TableError(f"--plots needs matplotlib ({e}); Debian: apt-get install "
                         "python3-matplotlib") from None
    names = {}
    for r in runs:
        stem = f"{slug(r.method)}_{slug(r.order)}_s{r.seed}"
        if stem in names:
            raise TableError(f"{r.path} and {names[stem]}: both would plot to *_{stem}.png")
        names[stem] = r.path
        T = len(r.tasks)
        rows = ["zero-shot"] + [f"after {j}" for j in range(1, T + 1)]
        title = f"{r.method}, {r.order}, seed {r.seed}" + (" (partial)" if r.partial else "")

        fig, ax = plt.subplots(figsize=(max(4.0, 0.7 * T + 2.5), max(3.0, 0.45 * T + 2.0)))
        cmap = plt.get_cmap("viridis").copy()
        cmap.set_bad("white")  # NaN = not measured: a blank cell
        im = ax.imshow(np.ma.masked_invalid(r.acc), cmap=cmap, vmin=0, vmax=100, aspect="auto")
        for (j, i), v in np.ndenumerate(r.acc):
            if not math.isnan(v):
                ax.text(i, j, f"{v:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if v < 60 else "black")
        ax.set_xticks(range(T), r.tasks, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(T + 1), rows, fontsize=8)
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, label="accuracy %")
        save(fig, os.path.join(out_dir, f"heatmap_{stem}.png"), plt)

        fig, ax = plt.subplots(figsize=(max(5.0, 0.5 * T + 4.0), 3.5))
        for i, task in enumerate(r.tasks):
            ax.plot(range(T + 1), r.acc[:, i], marker="o", markersize=3, label=task)
        ax.set_xticks(range(T + 1), rows, rotation=45, ha="right", fontsize=8)
        ax.set_ylim(-3, 103)
        ax.set_ylabel("accuracy %")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
        save(fig, os.path.join(out_dir, f"per_task_{stem}.png"), plt)


def save(fig, path, plt):
    tmp = path + ".tmp"
    fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="gorp_tables.py", description=__doc__.split("\n\n")[0],
        epilog="Reference: docs/POSTPROCESS.md")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="a run directory (holds results.h5) or a folder searched recursively")
    p.add_argument("--format", choices=("md", "csv", "latex"), default="md",
                   help="what goes to stdout (default md)")
    p.add_argument("--out", metavar="DIR",
                   help="also write tables.md, tables.csv and tables.tex into DIR")
    p.add_argument("--plots", action="store_true",
                   help="with --out: heatmap_* and per_task_* PNGs per run")
    p.add_argument("--allow-partial", action="store_true",
                   help="list runs whose last row is not measured yet (no metrics, not averaged)")
    args = p.parse_args(argv)
    if args.plots and not args.out:
        p.error("--plots needs --out DIR (the PNGs are written there)")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        runs = [read_run(f) for f in find_results(args.paths)]
        check_runs(runs, args.allow_partial)
        tables = build(runs)
        text = {"md": markdown(tables), "csv": csv_text(tables), "latex": latex(tables)}
        if args.out:
            try:
                os.makedirs(args.out, exist_ok=True)
                for fmt, ext in (("md", "md"), ("csv", "csv"), ("latex", "tex")):
                    write_atomic(os.path.join(args.out, f"tables.{ext}"), text[fmt])
            except OSError as e:
                raise TableError(f"{args.out}: cannot write the tables ({e})") from None
            if args.plots:
                plot_runs(tables[2], args.out)
    except TableError as e:
        print(f"gorp_tables.py: error: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(text[args.format])
    return 0


if __name__ == "__main__":
    sys.exit(main())
