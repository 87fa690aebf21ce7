"""Resume after SIGKILL at random moments: a 2-task gorp run (LoRA, rank-k full-rank targets,
shared space) checkpointing every step is killed with SIGKILL at random times (saves take most of
the time, so kills land inside saves too; the test reports how many left a half-written .tmp)
and resumed each time, until it finishes; then once more with SIGTERM, which must checkpoint and
exit with code 75. Every run ends bit-identical to an uninterrupted one: weights (model.h5), LoRA
factors, optimizer states, GORP bases and the accuracy matrix (the final checkpoint). This tiny
model trained from scratch would score zero everywhere, so the runs start from a base fine-tuned
on IMDB first (seqft), and the uninterrupted run is first required to carry signal: a nonzero
accuracy, weights moved, every LoRA B and Adam moment of its final checkpoint nonzero."""
import glob
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from llama_ref import trained_signal  # noqa: E402

GORP = os.environ["GORP"]
DATA = os.environ["GORP_DATA"]
n_pass = n_fail = 0


def check(ok, what):
    global n_pass, n_fail
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    n_pass, n_fail = n_pass + bool(ok), n_fail + (not ok)


def config(path, init):
    with open(path, "w") as f:
        f.write(f"""[run]
seed = 7
method = gorp
checkpoint_every = 1
log_every = 1000
[model]
init = {init}
hidden_size = 32
intermediate_size = 48
num_layers = 2
num_heads = 2
max_seq = 384
[data]
root = {DATA}/CL_Benchmark/mini
instructions = {DATA}/CL_Benchmark/instruction_config.json
tasks = SST-2, CB
max_source_length = 40
max_train_per_task = 48
max_test_per_task = 4
[train]
batch_size = 4
epochs = 3
[lora]
targets = q, v, down
lr = 3e-3
[full]
targets = gate, o
rank = 4
update_gap = 3
lr = 1e-3
[gorp]
project_update = true
[eval]
max_new_tokens = 4
""")


def datasets(path, skip=()):
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and not name.startswith(skip):
                out[name] = obj[...]
        f.visititems(visit)
    return out


def final_checkpoint(run):
    ck = os.path.join(run, "checkpoints")
    with open(os.path.join(ck, "LATEST")) as f:
        return os.path.join(ck, f.read().strip())


def identical(a_run, b_run):
    for name in ("model.h5", "results.h5"):
        a, b = datasets(os.path.join(a_run, name)), datasets(os.path.join(b_run, name))
        if a.keys() != b.keys() or any(not np.array_equal(a[k], b[k], equal_nan=True) for k in a):
            return f"{name} differs"
    a, b = datasets(final_checkpoint(a_run)), datasets(final_checkpoint(b_run))
    if a.keys() != b.keys():
        return f"final checkpoints hold different datasets: {sorted(set(a) ^ set(b))[:5]}"
    bad = [k for k in a if not np.array_equal(a[k], b[k], equal_nan=True)]
    return f"final checkpoints differ in {bad[:5]}" if bad else ""


def run(cfg, out, **kw):
    return subprocess.Popen([GORP, "run", cfg, "--set", f"run.out_dir={out}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw)


def main():
    random.seed(int(os.environ.get("GORP_TEST_SEED", "1")))
    with tempfile.TemporaryDirectory() as work:
        cfg = os.path.join(work, "k.ini")
        init = os.path.join(work, "base", "model.h5")
        config(cfg, init)
        # the base: seqft on IMDB, the same tiny model (it answers Good/Bad on SST-2 afterwards)
        r = subprocess.run([GORP, "run", cfg, "--set", "model.init=random", "--set",
                            "data.tasks=IMDB", "--set", "run.method=seqft", "--set",
                            "data.max_train_per_task=128", "--set", "train.epochs=6", "--set",
                            "run.checkpoint_every=0", "--set",
                            f"run.out_dir={os.path.dirname(init)}"],
                           capture_output=True, text=True)
        check(r.returncode == 0, "the base: seqft on IMDB" + (f": {r.stderr[-2000:]}"
                                                              if r.returncode else ""))
        ref = os.path.join(work, "ref")
        t0 = time.time()
        p = run(cfg, ref)
        err = p.communicate()[1]
        duration = time.time() - t0
        check(p.returncode == 0, f"uninterrupted run ({duration:.1f} s)")
        if p.returncode:
            print(err)
            return 1
        why, summary = trained_signal(ref)
        with h5py.File(os.path.join(ref, "results.h5"), "r") as f:
            best = float(np.nanmax(f["acc_matrix"][...]))
        check(not why and best > 0, f"the uninterrupted run carries signal to compare: accuracy "
              f"up to {best:.1f}%, {summary}" + (f": {why}" if why else ""))

        killed = os.path.join(work, "killed")
        kills = in_save = 0
        for attempt in range(6):  # kill at random moments (a run restarts, loads, resumes, ...)
            p = run(cfg, killed)
            try:
                p.wait(timeout=random.uniform(0.15, 0.5 if attempt == 0 else 0.9) * duration)
                break  # it finished before the kill
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGKILL)
                p.wait()
                kills += 1
                in_save += bool(glob.glob(os.path.join(killed, "checkpoints", "*.tmp")))
        if p.returncode != 0:  # then let it finish
            p = run(cfg, killed)
            p.wait()
        check(p.returncode == 0, f"finished after {kills} SIGKILLs ({in_save} of them inside a "
              f"checkpoint save, leaving a .tmp)")
        check(kills >= 1, "the run was killed at least once")
        diff = identical(ref, killed)
        check(not diff, "killed and resumed run is bit-identical to the uninterrupted one" +
              (f": {diff}" if diff else ""))

        stopped = os.path.join(work, "stopped")
        p = run(cfg, stopped)
        # SIGTERM once training is under way (the zero-shot checkpoint exists)
        while p.poll() is None and not glob.glob(os.path.join(stopped, "checkpoints", "ckpt_*.h5")):
            time.sleep(0.01)
        p.send_signal(signal.SIGTERM)
        p.wait()
        check(p.returncode == 75, f"SIGTERM: checkpointed and exited with 75 (got {p.returncode})")
        p = run(cfg, stopped)
        p.wait()
        diff = identical(ref, stopped)
        check(p.returncode == 0 and not diff,
              "resubmitted after SIGTERM, bit-identical" + (f": {diff}" if diff else ""))

        # h5py reads every dataset docs/CHECKPOINT.md lists (the families of names)
        names = datasets(final_checkpoint(ref))
        # lean (docs/CHECKPOINT.md): the full-rank targets' weights, the frozen ones in the base
        want = ("model/model.layers.1.self_attn.o_proj.weight",
                "lora/task_01/model.layers.0.self_attn.q_proj/A",
                "lora/task_02/model.layers.1.mlp.down_proj/B",
                "gorp/model.layers.0.mlp.gate_proj.weight/basis",
                "gorp/model.layers.0.self_attn.q_proj.lora_A/basis",
                "optim/full/model.layers.1.self_attn.o_proj.weight/projection",
                "results/acc_matrix", "results/in_list")
        missing = [w for w in want if w not in names]
        check(not missing, "h5py reads the documented datasets" + (f"; missing {missing}" if missing else ""))
        with h5py.File(final_checkpoint(ref), "r") as f:
            frozen = "model/model.embed_tokens.weight" in names
            base = f["base"].attrs["resolved"].decode() if "base" in f else None
        check(not frozen and base == os.path.realpath(init),
              f"the checkpoint is lean: no frozen weight, /base names {base}")
    print(f"{n_pass} passed, {n_fail} failed")
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
