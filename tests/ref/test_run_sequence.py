"""End-to-end: a 3-task sequence of real mini data (SST-2 -> CB -> COPA) with a tiny model runs to
the end, and results.h5 agrees with what the test recomputes independently from the per-task
prediction files: every matrix cell (exact match and in-list, percent), the NaN pattern (row 0
all tasks, row j tasks <= j+1), and AP, BWT, FWT and forgetting from their definitions."""
import json
import math
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

GORP = os.environ["GORP"]
DATA = os.environ["GORP_DATA"]
TASKS = ["SST-2", "CB", "COPA"]
n_pass = n_fail = 0


def check(ok, what):
    global n_pass, n_fail
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    n_pass, n_fail = n_pass + bool(ok), n_fail + (not ok)


def main():
    with tempfile.TemporaryDirectory() as work:
        cfg = os.path.join(work, "seq.ini")
        with open(cfg, "w") as f:
            f.write(f"""[run]
out_dir = out
seed = 3
log_every = 50
[model]
hidden_size = 32
intermediate_size = 64
num_layers = 1
num_heads = 2
max_seq = 384
[data]
root = {DATA}/CL_Benchmark/mini
instructions = {DATA}/CL_Benchmark/instruction_config.json
tasks = {", ".join(TASKS)}
max_source_length = 48
max_train_per_task = 48
max_test_per_task = 10
[train]
batch_size = 8
epochs = 2
lr = 3e-3
[eval]
max_new_tokens = 8
""")
        r = subprocess.run([GORP, "run", cfg], capture_output=True, text=True)
        check(r.returncode == 0, "gorp run over 3 tasks exits 0")
        if r.returncode:
            print(r.stdout[-3000:], r.stderr[-3000:])
            return 1
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
        for row in range(T + 1):
            for i, task in enumerate(TASKS):
                path = os.path.join(out, "predictions", f"after_{row:02d}", f"{task}.jsonl")
                measured = row == 0 or i <= row
                check(os.path.exists(path) == measured,
                      f"predictions after_{row:02d}/{task} {'present' if measured else 'absent'}")
                if not measured:
                    continue
                items = [json.loads(line) for line in open(path)]
                want[row, i] = 100.0 * sum(it["correct"] for it in items) / len(items)
                want_in[row, i] = 100.0 * sum(it["in_list"] for it in items) / len(items)
                # the 'correct' flag itself follows the benchmark's normalised exact match
                norm = lambda s: " ".join(
                    "".join(ch for ch in s.lower() if ch not in
                            "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~").split())
                check(all(it["correct"] == (norm(it["prediction"]) == norm(it["label"]))
                          for it in items), f"after_{row:02d}/{task}: correct = normalised match")
        same = np.array_equal(np.isnan(acc), np.isnan(want)) and np.allclose(
            acc[~np.isnan(acc)], want[~np.isnan(want)])
        check(same, "acc_matrix equals the matrix recomputed from the prediction files")
        check(np.allclose(inl[~np.isnan(inl)], want_in[~np.isnan(want_in)]),
              "in_list equals the recomputed in-list rates")

        a = want
        ap = a[T].mean()
        bwt = sum(a[T, i] - a[i + 1, i] for i in range(T - 1)) / (T - 1)
        # 1-based a[i-1, i] is row i-1, column i-1 in 0-based columns: row c, column c for c >= 1
        fwt = sum(a[c, c] - a[0, c] for c in range(1, T)) / (T - 1)
        forg = sum(max(a[k, i] for k in range(i + 1, T)) - a[T, i] for i in range(T - 1)) / (T - 1)
        for key, v in (("AP", ap), ("BWT", bwt), ("FWT", fwt), ("forgetting", forg)):
            got = float(attrs[key])
            check(math.isclose(got, v, abs_tol=1e-9), f"{key} {got:.4f} = recomputed {v:.4f}")
        check("AP " in r.stdout and "BWT " in r.stdout, "metrics printed at the end")
    print(f"{n_pass} passed, {n_fail} failed")
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
