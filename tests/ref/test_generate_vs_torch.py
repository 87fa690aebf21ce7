"""gorp's greedy decoding with the KV cache (`gorp generate`, the path evaluation uses) against
greedy decoding in the independent PyTorch reference (llama_ref.py) that recomputes the whole
sequence at every step (no cache): tiny random models (untied MHA, tied GQA, KV = 1), three
prompts each, 24 new tokens. The ids must be equal; a difference is accepted only at a near tie
(the reference's two best logits within 1e-4), and then the rest of that sequence is not compared.
A sequence stops before the model's end id (config.json's eos_token_id, 2, which import-hf keeps
in the model file), as transformers' generate() stops. Also: --eos stops a sequence before the
eos id too, and bad arguments fail naming the option."""
import os
import subprocess
import sys
import tempfile
import zlib

import torch

sys.path.insert(0, os.path.dirname(__file__))
import llama_ref as ref  # noqa: E402

CASES = [
    ("untied_mha", ref.Config(61, 48, 136, 2, 6, 6)),
    ("tied_gqa", ref.Config(50, 48, 136, 3, 6, 2, tie_word_embeddings=True)),
    ("untied_kv1", ref.Config(37, 32, 88, 2, 4, 1, rope_theta=500000.0)),
]
NEW = 24
END = 2  # llama_ref's config.json eos_token_id

checks = ref.Checks()
report = checks.report


def greedy_ref(model, prompt, n_new):
    """Greedy continuation of prompt (1-D ids) and, per step, the margin of the best logit."""
    ids = prompt.clone()
    out, margins = [], []
    with torch.no_grad():
        for _ in range(n_new):
            logits = model(ids[None, :])[0, -1]
            top = torch.topk(logits, 2)
            out.append(int(top.indices[0]))
            margins.append(float(top.values[0] - top.values[1]))
            ids = torch.cat([ids, top.indices[:1]])
    return out, margins


def until(ids, stops):
    """ids up to (not including) the first of stops."""
    return ids[:next((i for i, t in enumerate(ids) if t in stops), len(ids))]


def read_ids(path):
    with open(path) as f:
        return [[int(x) for x in line.split()] for line in f]


def run_case(name, cfg, work):
    # a fixed seed per case: Python randomises hash() of a str per process
    model = ref.make_model(cfg, seed=zlib.crc32(name.encode()) % 1000, std=0.3)
    hf_dir = os.path.join(work, name)
    ref.save_hf(model, hf_dir)
    h5 = os.path.join(work, name + ".h5")
    ref.gorp("import-hf", hf_dir, h5)
    gen = torch.Generator().manual_seed(11)
    prompts = torch.randint(0, cfg.vocab_size, (3, 9), generator=gen)
    ids_path = os.path.join(work, name + ".ids")
    ref.write_ids(ids_path, prompts)
    out_path = os.path.join(work, name + ".out")
    ref.gorp("generate", "--model", h5, "--tokens", ids_path, "--max-new", str(NEW),
             "--out", out_path)
    got = read_ids(out_path)
    report(len(got) == 3 and all(len(g) <= NEW for g in got),
           f"{name}: 3 lines of at most {NEW} new ids")
    distinct = len({i for g in got for i in g})
    report(distinct >= 6, f"{name}: {distinct} distinct ids generated (not a degenerate model)")
    for s in range(3):
        want, margins = greedy_ref(model, prompts[s], NEW)
        want = until(want, {END})
        n = min(len(want), len(got[s]))
        first = next((i for i in range(n) if got[s][i] != want[i]), None)
        if first is None and len(got[s]) != len(want):
            first = n
        if first is None:
            report(True, f"{name} prompt {s}: {len(want)} ids equal to the reference"
                   + (f", stopped before end id {END}" if len(want) < NEW else ""))
        else:
            report(margins[first] < 1e-4,
                   f"{name} prompt {s}: first difference at step {first}, reference margin "
                   f"{margins[first]:.2e} (a near tie is < 1e-4)")

    # --eos: the third new id of prompt 0 stops it (or an earlier one equal to it or END)
    want, _ = greedy_ref(model, prompts[0], NEW)
    eos = want[2]
    want = until(want, {eos, END})
    ref.gorp("generate", "--model", h5, "--tokens", ids_path, "--max-new", str(NEW), "--eos",
             str(eos), "--out", out_path)
    got = read_ids(out_path)
    report(got[0] == want, f"{name}: --eos {eos} stops prompt 0 after {len(want)} ids")


def expect_fail(args, needle, what):
    r = subprocess.run([ref.GORP, *args], capture_output=True, text=True)
    report(r.returncode != 0 and needle in r.stderr,
           f"{what}: exit {r.returncode}, message names '{needle}'")


def main():
    with tempfile.TemporaryDirectory() as work:
        for name, cfg in CASES:
            run_case(name, cfg, work)
        h5 = os.path.join(work, "untied_mha.h5")
        ids = os.path.join(work, "untied_mha.ids")
        expect_fail(["generate", "--model", h5, "--tokens", ids], "--max-new",
                    "generate without --max-new")
        expect_fail(["generate", "--model", h5, "--tokens", ids, "--max-new", "4", "--eos", "61"],
                    "--eos 61", "generate with an eos outside the vocabulary")
        expect_fail(["generate", "--model", h5, "--tokens", ids, "--max-new", "500"],
                    "max_position_embeddings", "generate past the model's positions")
    sys.exit(checks.finish())


if __name__ == "__main__":
    main()
