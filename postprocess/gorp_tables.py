#!/usr/bin/env python3
"""Tables of gorp run directories: AP, BWT, FWT, forgetting and in-list rate per method and order.

    python postprocess/gorp_tables.py PATH [PATH ...] [--layout long|wide] [--format md|csv|latex]
                                      [--out DIR] [--plots] [--figures DIR] [--allow-partial]

PATH is a run directory (it holds results.h5, docs/RESULTS.md) or a folder searched recursively
for them, and for runs of the O-LoRA/GORP authors' scripts (folders {i}-{task}/all_results.json).
Every metric is recomputed here with numpy from the matrices and must equal the attribute gorp
stored (the two implementations check each other). Not for: running or resuming anything.
docs/POSTPROCESS.md is the reference: formulas, table layouts, how seeds and orders are averaged,
the authors' layout, what is refused.
Exit codes: 0 tables written, 1 bad or refused input (the message names the file), 2 usage.
"""
import argparse
import csv
import io
import json
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


AUTHORS_ROUND = re.compile(r"(\d+)-(.+)")  # {i}-{task}: the authors' output folder of round i
AUTHORS_SEED = re.compile(r"(.+?)[-_]s(?:eed)?(\d+)")  # <label>-s<seed>, as scripts/demo.sh names
AUTHORS_KEY = "predict_exact_match_for_"


@dataclass
class Run:
    path: str
    method: str
    label: str  # run.name, else the method: one row of the tables
    order: str
    seed: int
    tasks: list
    acc: np.ndarray  # (T+1, T) percent, NaN = not measured
    values: dict  # COLUMNS -> float (NaN: undefined, e.g. BWT of an mtl run)
    rows_complete: int
    authors: bool = False  # read from the authors' all_results.json files, not a results.h5

    @property
    def partial(self):
        """The last row is not fully measured (an mtl run, with rows 0 and T only, is complete)."""
        return bool(np.isnan(self.acc[-1]).any())


def authors_rounds(d):
    """{i: folder} of the {i}-{task}/all_results.json folders directly in d."""
    rounds = {}
    for e in sorted(os.listdir(d)):
        m = AUTHORS_ROUND.fullmatch(e)
        if m and os.path.isfile(os.path.join(d, e, "all_results.json")):
            rounds.setdefault(int(m.group(1)), []).append(e)
    return rounds


def find_runs(paths):
    """Every run at or below the PATHs, each once, in a stable order: ("gorp", results.h5) or
    ("authors", the folder holding the {i}-{task} folders)."""
    found, seen = [], set()
    for p in paths:
        if not os.path.isdir(p):
            raise TableError(f"{p}: not a directory (expected a run directory holding "
                             "results.h5, or a folder of them)")
        hits = []
        for root, dirs, files in os.walk(p):
            dirs.sort()
            if "results.h5" in files:
                hits.append(("gorp", os.path.join(root, "results.h5")))
            if authors_rounds(root):
                hits.append(("authors", root))
        if not hits:
            raise TableError(f"{p}: no results.h5 (nor authors' {{i}}-{{task}}/all_results.json) "
                             "in it or below (not a run directory, or the run has not evaluated "
                             "anything yet)")
        for kind, h in hits:
            real = os.path.realpath(h)
            if real not in seen:
                seen.add(real)
                found.append((kind, h))
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
            # run.name; a file of a gorp older than the key has none: the method labels it
            name = text_attr(path, "name", attrs["name"]) if "name" in attrs else ""
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
    return Run(path, method, name or method, order, seed, tasks, acc, values, rows_complete(acc))


def read_authors(d):
    """A run of the O-LoRA/GORP authors' scripts: round i trains task i and writes
    {i}-{task}/all_results.json with predict_exact_match_for_<task> of tasks 1..i. Row i of the
    matrix; no zero-shot row (FWT n/a), no in-list rate. Label: the folder's name (the one above
    when it is called outputs), seed: its -s<N> suffix, else 1."""
    rounds = authors_rounds(d)
    T = max(rounds)
    for i in range(1, T + 1):
        if len(rounds.get(i, [])) != 1:
            raise TableError(f"{d}: round {i} has {len(rounds.get(i, []))} folders "
                             f"{rounds.get(i, [])}, expected one {i}-<task> for each of 1..{T}")
    tasks = [AUTHORS_ROUND.fullmatch(rounds[i][0]).group(2) for i in range(1, T + 1)]
    acc = np.full((T + 1, T), math.nan)
    for i in range(1, T + 1):
        path = os.path.join(d, rounds[i][0], "all_results.json")
        try:
            with open(path) as f:
                res = json.load(f)
        except (OSError, ValueError) as e:
            raise TableError(f"{path}: not a readable JSON file ({e})") from None
        for j, task in enumerate(tasks):
            v = res.get(AUTHORS_KEY + task) if isinstance(res, dict) else None
            if v is None and j < i:
                raise TableError(f"{path}: no key '{AUTHORS_KEY}{task}' (round {i} evaluates "
                                 f"tasks 1..{i}: {', '.join(tasks[:i])})")
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 100:
                raise TableError(f"{path}: '{AUTHORS_KEY}{task}' is {v!r}, expected a percentage "
                                 "in 0..100")
            acc[i, j] = float(v)
    base = os.path.basename(os.path.normpath(d))
    if base == "outputs":
        base = os.path.basename(os.path.dirname(os.path.normpath(d)))
    m = AUTHORS_SEED.fullmatch(base)
    label, seed = (m.group(1), int(m.group(2))) if m else (base, 1)
    values = recompute(acc, np.full_like(acc, math.nan))
    return Run(d, label, label, ",".join(tasks), seed, tasks, acc, values, rows_complete(acc),
               authors=True)


def read_any(kind, path):
    return read_authors(path) if kind == "authors" else read_run(path)


def natural(s):
    """Sort key: order2 before order10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def run_key(r):
    return (natural(r.label), natural(r.order), r.seed)


def check_runs(runs, allow_partial):
    seen = {}
    for r in runs:
        k = (r.label, r.order, r.seed)
        if k in seen:
            raise TableError(f"{r.path}: run {r.label}, order {r.order}, seed {r.seed} "
                             f"again (also {seen[k]}); one seed must not count twice: give "
                             "differing configs of one method a run.name each (or tabulate them "
                             "in separate calls)")
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
        groups.setdefault((r.label, r.order), []).append(r)
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


def authors_note(runs):
    """The authors' BWT divides by T, not T-1: their value beside ours, one line per run."""
    rs = [r for r in runs if r.authors and not r.partial]
    if not rs:
        return ""
    return ("Runs read from the O-LoRA/GORP authors' layout ({i}-{task}/all_results.json): no "
            "zero-shot row (FWT n/a), no in-list rate. BWT here divides by T-1 as for every run; "
            "the authors' scripts divide the same sum by T: " +
            "; ".join(f"{r.label} {r.order} seed {r.seed}: {num(bwt_over_t(r), 2)}" for r in rs) +
            ".")


def bwt_over_t(r):
    """BWT with the authors' denominator: the sum over tasks 1..T-1 divided by T."""
    T = len(r.tasks)
    return r.values["BWT"] * (T - 1) / T


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
        [md_escape(r.label), md_escape(r.order), str(r.seed), status(r)] + run_cells(r)
        for r in runs])
    note = authors_note(runs)
    out += ["", NOTE.format(pm=" ± "), ""] + ([note, ""] if note else [])
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
        w.writerow(["run", r.label, r.order, r.seed, "", status(r)] +
                   [c for k in COLUMNS for c in ("n/a" if r.partial else num(r.values[k], 6),
                                                 "")])
    return buf.getvalue()


TEX_SPECIAL = {**{c: "\\" + c for c in "&%$#_{}"},
               "\\": r"\textbackslash{}", "~": r"\textasciitilde{}", "^": r"\^{}"}


def tex_escape(s):
    return "".join(TEX_SPECIAL.get(c, c) for c in s)


def tex_cell(mean, std):
    c = cell(mean, std, r" \pm ")
    return f"${c}$" if std is not None and not math.isnan(mean) else c


def latex(tables):
    by_order, by_method, runs = tables
    heads = [HEAD[k] for k in COLUMNS]

    def table(title, cols, n_left, rows):
        out = [f"% {title}", "\\begin{tabular}{" + "l" * n_left + "r" * (len(cols) - n_left) +
               "}", "\\hline", " & ".join(cols) + r" \\", "\\hline"]
        out += [" & ".join(r) + r" \\" for r in rows]
        return out + ["\\hline", "\\end{tabular}", ""]

    out = [f"% gorp_tables.py. {NOTE.format(pm=' +- ')}", ""]
    note = authors_note(runs)
    out += [f"% {note}", ""] if note else []
    out += table("per method and order", ["method", "order", "seeds"] + heads, 2, [
        [tex_escape(o["method"]), tex_escape(o["order"]), tex_escape(seeds_cell(o))] +
        [tex_cell(o["mean"][k], o["std"][k]) for k in COLUMNS] for o in by_order])
    out += table("per method, mean over orders", ["method", "orders", "seeds"] + heads, 2, [
        [tex_escape(m["method"]), tex_escape(", ".join(m["orders"])), str(m["seeds"])] +
        [num(m["mean"][k], 2) for k in COLUMNS] for m in by_method])
    out += table("runs", ["method", "order", "seed", "status"] + heads, 4, [
        [tex_escape(r.label), tex_escape(r.order), str(r.seed), tex_escape(status(r))] +
        run_cells(r) for r in runs])
    return "\n".join(out)


# ---- the papers' wide layout: rows = runs (labels), columns = orders, then Avg ----

WIDE = (("AP", "AP"), ("BWT", "BWT"))


def wide_columns(runs):
    """The orders as columns, one per task sequence: [(header, tasks)]. A named order (data.order)
    heads its column; sequences given as lists are tasks-1, tasks-2, ... after the named ones."""
    cols = {}
    for r in runs:
        named = r.order if "," not in r.order else None
        if cols.get(tuple(r.tasks)) is None:
            cols[tuple(r.tasks)] = named
    named = sorted((k for k, v in cols.items() if v), key=lambda k: natural(cols[k]))
    unnamed = [k for k, v in cols.items() if not v]
    return ([(cols[k], k) for k in named] +
            [(f"tasks-{i}", k) for i, k in enumerate(unnamed, 1)])


def wide(runs):
    """{"columns": [(header, tasks)], metric: [row]}; a row per label: its cells per column
    (mean, sample std or None, seeds; mean NaN and 0 seeds where the label has no run) and Avg,
    the mean of its column means (None unless it has every column). The authors' runs add a BWT
    row with their denominator T (key "BWT/T")."""
    done = sorted((r for r in runs if not r.partial), key=run_key)
    columns = wide_columns(done)
    out = {"columns": columns}
    labels = sorted({r.label for r in done}, key=natural)
    for label in labels:
        rs = [r for r in done if r.label == label]
        if len({r.authors for r in rs}) > 1:
            raise TableError(f"{rs[0].path}: label {label} names both gorp runs and authors' runs "
                             "(give one of them another name)")
    metrics = [(k, lambda r, k=k: r.values[k], False) for k, _ in WIDE]
    metrics.append(("BWT/T", bwt_over_t, True))
    for key, value, authors_only in metrics:
        rows = []
        for label in labels:
            rs = [r for r in done if r.label == label]
            if authors_only and not rs[0].authors:
                continue
            cells = []
            for _, tasks in columns:
                xs = [value(r) for r in rs if tuple(r.tasks) == tasks]
                cells.append(mean_std(xs) + (len(xs),) if xs else (math.nan, None, 0))
            avg = (mean_std([c[0] for c in cells])[0] if all(c[2] for c in cells) else None)
            rows.append({"label": label, "authors": rs[0].authors, "cells": cells, "avg": avg})
        out[key] = rows
    return out


WIDE_NOTE = ("Per run (run.name, else the method) and order: mean{pm}sample std over its complete "
             "seeds (std with more than one seed); seeds: their count per order. Avg: the mean of "
             "the row's order means, given when the row has every order. Accuracies in percent "
             "(exact match) after the last task; BWT = 1/(T-1) sum_{{i<T}} (a[T,i] - a[i,i]). "
             "Formulas: docs/POSTPROCESS.md.")
AUTHORS_MARK = " †"
AUTHORS_FOOT = ("† read from the O-LoRA/GORP authors' layout ({i}-{task}/all_results.json). "
                "Their scripts divide BWT's sum by T instead of T-1: the rows BWT ÷ T give "
                "their number.")


def wide_title(key):
    return {"BWT/T": "BWT ÷ T (the authors' denominator)"}.get(key, key)


def wide_label(row):
    return row["label"] + (AUTHORS_MARK if row["authors"] else "")


def wide_seeds(row):
    return "/".join(str(c[2]) for c in row["cells"])


def wide_legend(columns):
    return "Orders: " + "; ".join(f"{h} = {' → '.join(t)}" for h, t in columns) + "."


def wide_markdown(w):
    heads = [h for h, _ in w["columns"]]
    out = []
    for key in ("AP", "BWT", "BWT/T"):
        if not w[key]:
            continue
        out += [f"## {wide_title(key)}", "",
                "| method | seeds | " + " | ".join(md_escape(h) for h in heads) + " | Avg |",
                "|---|---|" + "---:|" * (len(heads) + 1)]
        out += ["| " + " | ".join([md_escape(wide_label(r)), wide_seeds(r)] +
                                  [cell(m, sd, " ± ") if n else "–" for m, sd, n in r["cells"]] +
                                  ["–" if r["avg"] is None else num(r["avg"], 2)]) + " |"
                for r in w[key]]
        out.append("")
    out += [wide_legend(w["columns"]), "", WIDE_NOTE.format(pm=" ± "), ""]
    if w["BWT/T"]:
        out += [AUTHORS_FOOT, ""]
    return "\n".join(out)


def wide_csv(w):
    """One CSV: metric (AP, BWT, BWT/T), method, authors (1/0), per order mean and std, Avg."""
    buf = io.StringIO()
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(["metric", "method", "authors", "seeds"] +
                [c for h, _ in w["columns"] for c in (h, h + "_std")] + ["Avg"])
    for key in ("AP", "BWT", "BWT/T"):
        for r in w[key]:
            wr.writerow([key, r["label"], int(r["authors"]), wide_seeds(r)] +
                        [c for m, sd, n in r["cells"] for c in ((num(m, 6), num(sd, 6)) if n
                                                                  else ("", ""))] +
                        ["" if r["avg"] is None else num(r["avg"], 6)])
    return buf.getvalue()


def wide_latex(w):
    heads = [tex_escape(h) for h, _ in w["columns"]]
    out = [f"% gorp_tables.py --layout wide. {WIDE_NOTE.format(pm=' +- ')}",
           f"% {wide_legend(w['columns'])}"]
    out += [f"% {AUTHORS_FOOT}"] if w["BWT/T"] else []
    out.append("")
    for key in ("AP", "BWT", "BWT/T"):
        if not w[key]:
            continue
        out += [f"% {wide_title(key)}", "\\begin{tabular}{ll" + "r" * (len(heads) + 1) + "}",
                "\\hline", " & ".join(["method", "seeds"] + heads + ["Avg"]) + r" \\", "\\hline"]
        for r in w[key]:
            label = tex_escape(r["label"]) + ("$^\\dagger$" if r["authors"] else "")
            cells = [tex_cell(m, sd) if n else "--" for m, sd, n in r["cells"]]
            out.append(" & ".join([label, wide_seeds(r)] + cells +
                                  ["--" if r["avg"] is None else num(r["avg"], 2)]) + r" \\")
        out += ["\\hline", "\\end{tabular}", ""]
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
    plt = pyplot("--plots")
    names = {}
    for r in runs:
        stem = f"{slug(r.label)}_{slug(r.order)}_s{r.seed}"
        if stem in names:
            raise TableError(f"{r.path} and {names[stem]}: both would plot to *_{stem}.png")
        names[stem] = r.path
        T = len(r.tasks)
        rows = ["zero-shot"] + [f"after {j}" for j in range(1, T + 1)]
        title = f"{r.label}, {r.order}, seed {r.seed}" + (" (partial)" if r.partial else "")

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
        save(fig, plt, [os.path.join(out_dir, f"heatmap_{stem}.png")], 100)

        fig, ax = plt.subplots(figsize=(max(5.0, 0.5 * T + 4.0), 3.5))
        for i, task in enumerate(r.tasks):
            ax.plot(range(T + 1), r.acc[:, i], marker="o", markersize=3, label=task)
        ax.set_xticks(range(T + 1), rows, rotation=45, ha="right", fontsize=8)
        ax.set_ylim(-3, 103)
        ax.set_ylabel("accuracy %")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
        save(fig, plt, [os.path.join(out_dir, f"per_task_{stem}.png")], 100)


def save(fig, plt, paths, dpi):
    """Each path in its extension's format, through a temporary file and a rename."""
    for path in paths:
        tmp = path + ".tmp"
        fig.savefig(tmp, format=os.path.splitext(path)[1][1:], dpi=dpi, bbox_inches="tight")
        os.replace(tmp, path)
    plt.close(fig)


def figures(runs, w, out_dir):
    """curves_<order>.pdf/.png: each task's accuracy along the sequence, one panel per task, one
    line per run label (mean over seeds, band ± sample std); bars.pdf/.png: AP and BWT per order
    and Avg, one bar per label (error bar ± std). PNGs at 300 dpi."""
    plt = pyplot("--figures")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise TableError(f"{out_dir}: cannot create the figures folder ({e})") from None
    done = [r for r in runs if not r.partial]
    labels = [r["label"] for r in w["AP"]]
    colour = {lab: plt.get_cmap("tab10")(i % 10) for i, lab in enumerate(labels)}
    for header, tasks in w["columns"]:
        T, ncol = len(tasks), min(len(tasks), 4)
        nrow = -(-T // ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.6 * nrow), squeeze=False,
                                 sharey=True)
        x = np.arange(T + 1)
        for row in w["AP"]:
            lab = row["label"]
            rs = [r.acc for r in done if r.label == lab and tuple(r.tasks) == tasks]
            if not rs:
                continue
            accs = np.stack(rs)  # (seeds, T+1, T)
            mean = accs.mean(axis=0)  # a cell any seed lacks stays NaN: a gap, not a guess
            std = accs.std(axis=0, ddof=1) if len(accs) > 1 else None
            for i in range(T):
                ax = axes[i // ncol][i % ncol]
                ax.plot(x, mean[:, i], marker="o", markersize=3, color=colour[lab],
                        label=wide_label(row))
                if std is not None:
                    ax.fill_between(x, mean[:, i] - std[:, i], mean[:, i] + std[:, i],
                                    color=colour[lab], alpha=0.2, linewidth=0)
        for i in range(nrow * ncol):
            ax = axes[i // ncol][i % ncol]
            if i >= T:
                ax.axis("off")
                continue
            ax.set_title(f"task {i + 1}: {tasks[i]}", fontsize=9)
            ax.axvline(i + 1, color="grey", linewidth=0.6, linestyle=":")  # trained here
            ax.set_xticks(x)
            ax.set_ylim(-3, 103)
            ax.set_xlabel("after task (0 = zero-shot)", fontsize=8)
            if i % ncol == 0:
                ax.set_ylabel("accuracy %", fontsize=8)
        axes[0][0].legend(fontsize=7, loc="lower left")
        fig.suptitle(f"{header}: accuracy of each task along the sequence (mean over seeds)",
                     fontsize=10)
        fig.tight_layout()
        stem = os.path.join(out_dir, f"curves_{slug(header)}")
        save(fig, plt, [stem + ".pdf", stem + ".png"], 300)

    groups = [h for h, _ in w["columns"]] + ["Avg"]
    fig, axes = plt.subplots(1, 2, figsize=(max(6.0, 1.2 * len(groups) * 2 + 2), 3.6))
    width = 0.8 / max(1, len(labels))
    for ax, (key, title) in zip(axes, WIDE):
        for j, r in enumerate(w[key]):
            ys = [c[0] if c[2] else math.nan for c in r["cells"]] + [
                math.nan if r["avg"] is None else r["avg"]]
            errs = [c[1] if c[1] is not None and c[2] else 0.0 for c in r["cells"]] + [0.0]
            xs = np.arange(len(groups)) + (j - (len(labels) - 1) / 2) * width
            keep = [i for i, y in enumerate(ys) if not math.isnan(y)]  # n/a: no bar
            errs = [errs[i] for i in keep]
            if not keep:
                continue
            ax.bar(xs[keep], [ys[i] for i in keep], width, yerr=errs if any(errs) else None,
                   capsize=2, color=colour[r["label"]], label=wide_label(r))
        ax.set_xticks(np.arange(len(groups)), groups, fontsize=8)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_title(title + " (%)", fontsize=10)
    fig.tight_layout()
    # one legend off the bars, from AP (every label with a complete run has one)
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=7, loc="center left",
               bbox_to_anchor=(1.0, 0.5))
    stem = os.path.join(out_dir, "bars")
    save(fig, plt, [stem + ".pdf", stem + ".png"], 300)


def pyplot(option):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise TableError(f"{option} needs matplotlib ({e}); scripts/setup.sh installs it "
                         "(Debian: apt-get install python3-matplotlib)") from None
    return plt


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="gorp_tables.py", description=__doc__.split("\n\n")[0],
        epilog="Reference: docs/POSTPROCESS.md")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="a run directory (holds results.h5) or a folder searched recursively")
    p.add_argument("--layout", choices=("long", "wide"), default="long",
                   help="long (default): per run and order, all metrics; wide: the papers' "
                   "tables, runs as rows, orders and Avg as columns, for AP and BWT")
    p.add_argument("--format", choices=("md", "csv", "latex"), default="md",
                   help="what goes to stdout (default md)")
    p.add_argument("--out", metavar="DIR",
                   help="also write the layout's three formats into DIR: tables.md, .csv, .tex "
                   "(long) or wide.md, .csv, .tex (wide)")
    p.add_argument("--figures", metavar="DIR",
                   help="accuracy curves per task (one file per order) and AP/BWT bars across "
                   "runs, PDF and 300-dpi PNG")
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
        runs = [read_any(kind, p) for kind, p in find_runs(args.paths)]
        check_runs(runs, args.allow_partial)
        tables = build(runs)
        w = wide(runs) if args.layout == "wide" or args.figures else None
        if args.layout == "wide":
            text = {"md": wide_markdown(w), "csv": wide_csv(w), "latex": wide_latex(w)}
        else:
            text = {"md": markdown(tables), "csv": csv_text(tables), "latex": latex(tables)}
        if args.out:
            stem = "wide" if args.layout == "wide" else "tables"
            try:
                os.makedirs(args.out, exist_ok=True)
                for fmt, ext in (("md", "md"), ("csv", "csv"), ("latex", "tex")):
                    write_atomic(os.path.join(args.out, f"{stem}.{ext}"), text[fmt])
            except OSError as e:
                raise TableError(f"{args.out}: cannot write the tables ({e})") from None
            if args.plots:
                plot_runs(tables[2], args.out)
        if args.figures:
            figures(runs, w, args.figures)
    except TableError as e:
        print(f"gorp_tables.py: error: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(text[args.format])
    return 0


if __name__ == "__main__":
    sys.exit(main())
