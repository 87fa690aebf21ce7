"""The model's end ids (the optional `eos_token_id` attribute of a model file's /model,
docs/MODELFILE.md) from `gorp import-hf`, and decoding's stop at them (`gorp generate`).

Checked on a tiny random LLaMA (tests/ref/llama_ref.py) saved as a Hugging Face directory:
- import-hf takes config.json's eos_token_id (2) when there is no generation_config.json, and
  generation_config.json's (here the list [3, 5], read back as int32 [3, 5]) when there is;
- an id outside the vocabulary, a list of 9 ids or a non-integer is refused naming the file and
  the key;
- a model file whose attribute was edited to an id >= vocab_size or to 9 ids is refused by
  `gorp generate` naming the file and the attribute; without the attribute it loads;
- `gorp generate` with end ids [3, 5] gives, for each prompt, the ids of the same model without
  end ids up to (not including) the first 3 or 5: the stop is the only difference."""
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import llama_ref as ref  # noqa: E402

checks = ref.Checks()
report = checks.report
NEW = 24
V = 37


def fails(args, needles, what):
    r = subprocess.run([ref.GORP, *args], capture_output=True, text=True)
    missing = [n for n in needles if n not in r.stderr]
    report(r.returncode != 0 and not missing,
           f"{what}: exit {r.returncode}" + (f", message lacks {missing}: {r.stderr.strip()}"
                                             if missing else f", message names {needles}"))


def end_ids(h5):
    with h5py.File(h5, "r") as f:
        a = f["model"].attrs.get("eos_token_id")
        return None if a is None else (a.dtype.name, [int(x) for x in np.atleast_1d(a)])


def generate(h5, ids_path, out_path):
    ref.gorp("generate", "--model", h5, "--tokens", ids_path, "--max-new", str(NEW), "--out",
             out_path)
    with open(out_path) as f:
        return [[int(x) for x in line.split()] for line in f]


def main():
    cfg = ref.Config(V, 32, 88, 2, 4, 2)
    model = ref.make_model(cfg, seed=5, std=0.3)
    with tempfile.TemporaryDirectory() as work:
        hf = os.path.join(work, "hf")
        ref.save_hf(model, hf)
        h5 = os.path.join(work, "m.h5")
        ref.gorp("import-hf", hf, h5)
        got = end_ids(h5)
        report(got == ("int32", [2]), f"config.json's eos_token_id 2 -> /model eos_token_id {got}")

        gen = os.path.join(hf, "generation_config.json")
        for bad, what in ((V, f"{V} >= vocab {V}"), (list(range(9)), "9 ids"), ("2", "a string")):
            with open(gen, "w") as f:
                json.dump({"eos_token_id": bad}, f)
            fails(["import-hf", hf, os.path.join(work, "bad.h5")],
                  ["generation_config.json", "eos_token_id"], f"import-hf refuses {what}")
        with open(gen, "w") as f:
            json.dump({"bos_token_id": 1, "eos_token_id": [3, 5]}, f)
        ref.gorp("import-hf", hf, h5)
        got = end_ids(h5)
        report(got == ("int32", [3, 5]),
               f"generation_config.json's eos_token_id [3, 5] wins over config.json's: {got}")

        prompts = torch.randint(0, V, (6, 7), generator=torch.Generator().manual_seed(3))
        ids_path = os.path.join(work, "ids.txt")
        ref.write_ids(ids_path, prompts)
        stopped = generate(h5, ids_path, os.path.join(work, "stopped.txt"))

        for value, what, needle in (([V], f"an end id {V}", f"end id {V}"),
                                    (list(range(9)), "9 end ids", "1 to 8")):
            with h5py.File(h5, "r+") as f:
                del f["model"].attrs["eos_token_id"]
                f["model"].attrs.create("eos_token_id", np.array(value, dtype=np.int32))
            fails(["generate", "--model", h5, "--tokens", ids_path, "--max-new", "4"],
                  [h5, "eos_token_id", needle], f"a model file with {what} is refused")
        with h5py.File(h5, "r+") as f:
            del f["model"].attrs["eos_token_id"]
        free = generate(h5, ids_path, os.path.join(work, "free.txt"))
        report(all(len(g) == NEW for g in free),
               f"without eos_token_id the file loads and every prompt runs to {NEW} ids")
        want = [g[:next((i for i, t in enumerate(g) if t in (3, 5)), NEW)] for g in free]
        early = sum(len(w) < NEW for w in want)
        report(stopped == want and early >= 2,
               f"end ids [3, 5] stop {early} of 6 prompts before them, the others run to {NEW}; "
               f"the ids before the stop are unchanged")
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
