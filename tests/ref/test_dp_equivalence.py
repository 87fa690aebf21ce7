"""Data parallelism under mpirun: the same config and global batches with (tp, dp) = (1, 1),
(1, 2) and (1, 3) (uneven splits of a batch of 4) give the same loss at every step, the same final
weights, LoRA adapters and Adam moments (the newest checkpoint) and the same final accuracy
matrix, for a 20-step seqft run and for a 2-task gorp sequence with activation bases on the input
axis, including the basis sizes per module; and a checkpoint written with dp = 2 resumes with
dp = 1 to the same end.

The runs start from a base fine-tuned on IMDB first (seqft; its model.h5 is the trained model),
so that the accuracy matrices are not all zero (required before they are compared); the trained
state carries the finer signal: the test first requires that the weights moved and that every
LoRA B and Adam moment is nonzero. Tolerances (relative) are ~10x the largest difference
measured: loss 4e-5 (4.1e-6 measured: one unit in the last printed digit of a loss near 0.25),
each checkpoint dataset against its own largest value 1.5e-3 (1.4e-4 measured, a task-2 LoRA B:
Adam turns tiny gradient differences of a young B into visible ones; weights differ by <= 1e-5). Any difference in a discrete outcome is reported with the evidence of
a near tie."""
import os
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from llama_ref import (MPI_ENV, TRAINED, Checks, checkpoint_bases,  # noqa: E402
                       checkpoint_path, gorp_ranks, h5_datasets, step_losses, trained_signal,
                       worst_relative)

DATA = os.environ["GORP_DATA"]
# relative tolerances, ~10x the largest difference measured (see the docstring)
TOL_LOSS, TOL_STATE = 4e-5, 1.5e-3
checks = Checks()


BASE = """[run]
seed = 5
log_every = 1
method = {method}
[model]
init = {init}
hidden_size = 32
intermediate_size = 48
num_layers = 2
num_heads = 2
max_seq = 384
[data]
root = {data}/CL_Benchmark/mini
instructions = {data}/CL_Benchmark/instruction_config.json
tasks = {tasks}
max_source_length = 40
max_train_per_task = {ntrain}
max_test_per_task = 8
[train]
batch_size = 4
max_steps = {steps}
lr = 3e-3
[lora]
targets = q, v, gate
lr = 3e-3
[full]
targets = gate, down
optimizer = adam
lr = 1e-3
[gorp]
axis = input
basis_source = activation
energy = 0.99
project_update = true
activation_examples = 12
[eval]
max_new_tokens = 6
"""


def gorp(cfg, out, ranks, extra=()):
    return gorp_ranks(["run", cfg, "--set", f"run.out_dir={out}", "--set", f"parallel.dp={ranks}",
                       *extra], ranks)


def acc(out):
    with h5py.File(os.path.join(out, "results.h5"), "r") as f:
        return f["acc_matrix"][...]


def same_state(o1, ok):
    """(ok, text): the newest checkpoints of runs o1 and ok hold the same weights, adapters and
    moments, each dataset within TOL_STATE of its own largest value."""
    worst, where = worst_relative(h5_datasets(checkpoint_path(o1), TRAINED),
                                  h5_datasets(checkpoint_path(ok), TRAINED))
    return worst <= TOL_STATE, f"worst {worst:.1e} ({where})"


def compare(name, runs):
    (r1, o1), rest = runs[0], runs[1:]
    why, summary = trained_signal(o1)
    checks.report(not why, f"{name}: dp=1 carries signal to compare: {summary}", why)
    l1 = step_losses(r1.stdout)
    for ranks, (r, o) in rest:
        lk = step_losses(r.stdout)
        worst = max((abs(a - b) / abs(a) for a, b in zip(l1, lk)), default=1.0)
        checks.report(r.returncode == 0 and len(lk) == len(l1) > 0 and worst <= TOL_LOSS,
                      f"{name}: dp={ranks} loss at each of {len(l1)} steps within {worst:.1e} "
                      "of dp=1")
        b1, bk = checkpoint_bases(o1), checkpoint_bases(o)
        checks.report(b1 == bk, f"{name}: dp={ranks} basis sizes per module equal "
                      f"({sum(b1.values())} columns over {len(b1)} matrices)")
        same, text = same_state(o1, o)
        checks.report(same, f"{name}: dp={ranks} final weights, adapters and moments equal: {text}")
        a1, ak = acc(o1), acc(o)
        same = np.nanmax(a1) > 0 and np.array_equal(a1, ak, equal_nan=True)
        checks.report(same, f"{name}: dp={ranks} final accuracy matrix equal and not all zero "
                      f"(max {np.nanmax(a1):.1f}%)", f"\n{a1}\n{ak}")


def main():
    with tempfile.TemporaryDirectory() as work:
        # the base: the same tiny model, seqft on IMDB (answers Good/Bad on SST-2 afterwards)
        cfg = os.path.join(work, "base.ini")
        with open(cfg, "w") as f:
            f.write(BASE.format(data=DATA, init="random", method="seqft", tasks="IMDB", ntrain=128,
                                steps=0).replace("max_steps = 0\n", "epochs = 6\n"))
        init = os.path.join(work, "base", "model.h5")
        r = gorp(cfg, os.path.dirname(init), 1)
        checks.report(r.returncode == 0, "the base: seqft on IMDB")
        cases = (("seqft, 20 steps", dict(method="seqft", tasks="SST-2", ntrain=80, steps=20)),
                 ("gorp 2 tasks, input axis, activation bases",
                  dict(method="gorp", tasks="SST-2, CB", ntrain=16, steps=0)))
        for name, kw in cases:
            cfg = os.path.join(work, "c.ini")
            with open(cfg, "w") as f:
                f.write(BASE.format(data=DATA, init=init, **kw).replace("max_steps = 0\n", ""))
            runs = []
            for ranks in (1, 2, 3):
                out = os.path.join(work, f"{kw['method']}{ranks}")
                runs.append((ranks, (gorp(cfg, out, ranks), out)))
            compare(name, [x[1] for x in runs[:1]] + [(k, v) for k, v in runs[1:]])

        # a checkpoint written with dp = 2 resumes with dp = 1: stop after the first task by
        # crashing the second task's first save, then finish on one rank
        cfg = os.path.join(work, "c.ini")
        out = os.path.join(work, "across")
        gorp_ranks(["run", cfg, "--set", f"run.out_dir={out}", "--set", "parallel.dp=2", "--set",
                    "run.checkpoint_every=2"], 2, dict(MPI_ENV, GORP_FAULT_SAVE_ABORT="3"),
                   expect_failure=True)
        r = gorp(cfg, out, 1, ("--set", "run.checkpoint_every=2"))
        ref = os.path.join(work, "gorp1")
        same = r.returncode == 0 and (np.array_equal(acc(out), acc(ref), equal_nan=True)
                                      and checkpoint_bases(out) == checkpoint_bases(ref))
        state, text = same_state(ref, out) if r.returncode == 0 else (False, "no run")
        checks.report("resuming from" in r.stdout and same and state,
                      "checkpoint from dp=2 resumed with dp=1: same accuracy matrix, bases, "
                      f"weights, adapters and moments ({text})")
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
