"""End-to-end: a 3-task sequence of real mini data (SST-2 -> COPA -> IMDB) runs to the end, and
results.h5 agrees with what the test recomputes independently of gorp's own bookkeeping: every
matrix cell (exact match and in-list, percent) from the predictions and the gold labels of each
dataset's test.json and labels.json (by item id; the prediction file's own label and 'correct'
flag are not trusted), the NaN pattern (row 0 all tasks, row j tasks <= j+1), and AP, BWT, FWT and
forgetting from their definitions.

A model trained from scratch scores 0 everywhere, and an all-zero matrix passes any formula. So the
sequence starts from a base that has been fine-tuned on IMDB first (a seqft run; seqft's model.h5
is the trained model): it answers Good/Bad zero-shot on SST-2 and IMDB, each task is learned and
the next one's format replaces it. The test first requires a matrix that carries signal (nonzero
zero-shot cells, cells strictly between 0 and 100, nonzero AP, BWT, FWT and forgetting)."""
import json
import math
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from checks import Checks  # noqa: E402

GORP = os.environ["GORP"]
DATA = os.environ["GORP_DATA"]
ROOT = f"{DATA}/CL_Benchmark/mini"
TASKS = ["SST-2", "COPA", "IMDB"]
FOLDERS = {"SST-2": "SC/SST-2", "COPA": "COPA/COPA", "IMDB": "SC/IMDB"}
N_TEST = 16
checks = Checks()
check = checks.report

CONFIG = f"""[run]
seed = 3
log_every = 1000
[model]
hidden_size = 32
intermediate_size = 64
num_layers = 1
num_heads = 2
max_seq = 384
[data]
root = {ROOT}
instructions = {DATA}/CL_Benchmark/instruction_config.json
tasks = {", ".join(TASKS)}
max_source_length = 48
max_train_per_task = 48
max_test_per_task = {N_TEST}
[train]
batch_size = 8
epochs = 6
lr = 3e-3
[eval]
max_new_tokens = 8
"""


def norm(s):
    """The benchmark's answer normalisation: lower case, no ASCII punctuation, single spaces."""
    return " ".join("".join(ch for ch in s.lower() if ch not in
                            "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~").split())


def run(cfg, *sets):
    args = [GORP, "run", cfg]
    for s in sets:
        args += ["--set", s]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode:
        print(r.stdout[-3000:], r.stderr[-3000:])
    return r


def metrics(a):
    """AP, BWT, FWT and forgetting of a (T+1) x T accuracy matrix, from their definitions."""
    T = a.shape[1]
    ap = a[T].mean()
    bwt = sum(a[T, i] - a[i + 1, i] for i in range(T - 1)) / (T - 1)
    # 1-based a[i-1, i] is row i-1, column i-1 in 0-based columns: row c, column c for c >= 1
    fwt = sum(a[c, c] - a[0, c] for c in range(1, T)) / (T - 1)
    forg = sum(max(a[k, i] for k in range(i + 1, T)) - a[T, i] for i in range(T - 1)) / (T - 1)
    return {"AP": ap, "BWT": bwt, "FWT": fwt, "forgetting": forg}


def main():
    with tempfile.TemporaryDirectory() as work:
        cfg = os.path.join(work, "seq.ini")
        with open(cfg, "w") as f:
            f.write(CONFIG)
        r = run(cfg, "data.tasks=IMDB", "data.max_train_per_task=128", "run.out_dir=base")
        check(r.returncode == 0, "the base: seqft on IMDB exits 0")
        r = run(cfg, f"model.init={work}/base/model.h5", "run.out_dir=out")
        check(r.returncode == 0, "gorp run over 3 tasks from the base exits 0")
        if r.returncode:
            return checks.finish()
        out = os.path.join(work, "out")
        T = len(TASKS)
        with h5py.File(os.path.join(out, "results.h5"), "r") as f:
            acc, inl = f["acc_matrix"][...], f["in_list"][...]
            attrs = {k: f.attrs[k] for k in f.attrs}
        check(acc.shape == (T + 1, T) and inl.shape == (T + 1, T), f"matrices are {T+1} x {T}")
        tasks = [t.decode() if isinstance(t, bytes) else t for t in attrs["tasks"]]
        check(tasks == TASKS, f"tasks attribute {tasks}")
        check(attrs["method"] in ("seqft", b"seqft") and int(attrs["seed"]) == 3,
              "method and seed attributes")

        want = np.full((T + 1, T), np.nan)
        want_in = np.full((T + 1, T), np.nan)
        for i, task in enumerate(TASKS):
            folder = os.path.join(ROOT, FOLDERS[task])
            gold = json.load(open(os.path.join(folder, "test.json")))
            labels = {norm(x) for x in json.load(open(os.path.join(folder, "labels.json")))}
            ids_seen = None
            for row in range(T + 1):
                path = os.path.join(out, "predictions", f"after_{row:02d}", f"{task}.jsonl")
                measured = row == 0 or i <= row
                check(os.path.exists(path) == measured,
                      f"predictions after_{row:02d}/{task} {'present' if measured else 'absent'}")
                if not measured:
                    continue
                items = [json.loads(line) for line in open(path)]
                ids = [it["id"] for it in items]
                check(len(ids) == N_TEST and len(set(ids)) == N_TEST and
                      all(0 <= k < len(gold) for k in ids) and ids_seen in (None, ids),
                      f"after_{row:02d}/{task}: {N_TEST} distinct test.json items, the same "
                      "sample in every row")
                ids_seen = ids
                right = [norm(it["prediction"]) == norm(gold[it["id"]]["label"]) for it in items]
                check(all(it["label"] == gold[it["id"]]["label"] for it in items),
                      f"after_{row:02d}/{task}: each line's label is test.json's for its id")
                want[row, i] = 100.0 * sum(right) / len(items)
                want_in[row, i] = 100.0 * sum(norm(it["prediction"]) in labels
                                              for it in items) / len(items)

        # signal first: an all-zero (or all-equal) matrix would pass any formula below
        cells = want[~np.isnan(want)]
        inside = [x for x in cells if 0 < x < 100]
        m = metrics(want)
        check(np.nanmax(want[0]) > 0 and len(inside) >= 3 and len(set(cells)) >= 3 and
              all(abs(v) > 0 for v in m.values()),
              f"the recomputed matrix carries signal: zero-shot row max {np.nanmax(want[0]):.1f}, "
              f"{len(inside)} cells strictly inside (0, 100), {len(set(cells))} distinct values, "
              "AP/BWT/FWT/forgetting all nonzero", f"\n{want}\n{m}")

        same = np.array_equal(np.isnan(acc), np.isnan(want)) and np.allclose(
            acc[~np.isnan(acc)], want[~np.isnan(want)])
        check(same, "acc_matrix equals the matrix recomputed from test.json's labels",
              f"\n{acc}\n{want}")
        same = np.array_equal(np.isnan(inl), np.isnan(want_in)) and np.allclose(
            inl[~np.isnan(inl)], want_in[~np.isnan(want_in)])
        check(same, "in_list equals the rates recomputed from labels.json", f"\n{inl}\n{want_in}")
        for key, v in m.items():
            got = float(attrs[key])
            check(math.isclose(got, v, abs_tol=1e-9), f"{key} {got:.4f} = recomputed {v:.4f}")
        check("AP " in r.stdout and "BWT " in r.stdout, "metrics printed at the end")
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
