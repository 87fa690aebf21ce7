"""gorp export-hf and export-peft against the libraries users load them with (docs/EXPORT.md):
transformers' LlamaForCausalLM.from_pretrained and peft's PeftModel.from_pretrained, in the
venv-hf environment (scripts/setup.sh: transformers 4.46.3 and peft 0.13.2, the last releases that
run on Debian's torch 1.13).

  export-hf of random models (tied and untied head, GQA, MHA; one file and forced shards with an
  index), of a short run's model.h5 and of SmolLM2-135M with its tokenizer: the exported tensors
  are the model file's bit for bit, and from_pretrained's logits equal `gorp logits` on the model
  file within 2e-5 of max|logit| (float32 on both sides, different summation orders: measured
  <= 2e-6);
  export-peft of a one-task LoRA run: PeftModel on the exported base gives `gorp logits` of the
  run's merged model.h5; of a two-task run: each task's adapter on the base gives the logits of
  the base with alpha/r * B A of that pair added in PyTorch (float64 merge), both within 2e-5;
  --task exports one pair; a run without adapters is refused and leaves nothing behind."""
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch
from safetensors.numpy import load_file

sys.path.insert(0, os.path.dirname(__file__))
from llama_ref import Checks, Config, gorp, gorp_ranks, make_model, save_hf, write_ids  # noqa: E402

from transformers import AutoTokenizer, LlamaForCausalLM  # noqa: E402
from peft import PeftModel  # noqa: E402

DATA = os.environ["GORP_DATA"]
SRC = os.environ.get("GORP_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
TOL = 2e-5
checks = Checks()
torch.set_num_threads(1)

RUN = f"""[run]
seed = 3
log_every = 1000
method = {{method}}
[model]
hidden_size = 32
intermediate_size = 64
num_layers = 2
num_heads = 4
num_kv_heads = 2
max_seq = 384
[data]
root = {DATA}/CL_Benchmark/mini
instructions = {DATA}/CL_Benchmark/instruction_config.json
tasks = {{tasks}}
tokenizer = byte
max_source_length = 40
max_train_per_task = 32
max_test_per_task = 4
[train]
batch_size = 8
epochs = 1
lr = 3e-3
[eval]
max_new_tokens = 2
"""
LORA = "[lora]\ntargets = {targets}\nr = 4\nalpha = 16\ndropout = 0.1\nlr = 1e-2\n"


def rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def gorp_logits(model_h5, ids_path, work):
    out = os.path.join(work, "logits.h5")
    gorp("logits", "--model", model_h5, "--tokens", ids_path, "--out", out)
    with h5py.File(out, "r") as f:
        return f["logits"][...]


def hf_logits(model, ids):
    model.eval()
    with torch.no_grad():
        return model(torch.tensor(ids)).logits.numpy()


def exported_tensors(out):
    index = os.path.join(out, "model.safetensors.index.json")
    if not os.path.exists(index):
        return load_file(os.path.join(out, "model.safetensors")), 1
    with open(index) as f:
        shards = sorted(set(json.load(f)["weight_map"].values()))
    t = {}
    for s in shards:
        t.update(load_file(os.path.join(out, s)))
    return t, len(shards)


def check_export_hf(tag, src, out, ids, work, extra=()):
    """export-hf of src (a model file or run directory) into out: tensors bit-equal to the model
    file's, from_pretrained logits = gorp logits."""
    gorp("export-hf", src, out, *extra)
    model_h5 = os.path.join(src, "model.h5") if os.path.isdir(src) else src
    t, n_shards = exported_tensors(out)
    with h5py.File(model_h5, "r") as f:
        g = f["model"]
        same = set(t) == set(g) and all(np.array_equal(t[k], g[k][...]) for k in g)
    checks.report(same, f"{tag}: the exported tensors are the model file's, bit for bit "
                  f"({len(t)} tensors in {n_shards} file(s))")
    ids_path = os.path.join(work, "ids.txt")
    write_ids(ids_path, torch.tensor(ids))
    lg = gorp_logits(model_h5, ids_path, work)
    lh = hf_logits(LlamaForCausalLM.from_pretrained(out, torch_dtype=torch.float32), ids)
    err = rel(lh, lg)
    checks.report(err <= TOL, f"{tag}: LlamaForCausalLM.from_pretrained logits = gorp logits "
                  f"(max difference {err:.1e} of max|logit|)")
    return n_shards


def random_models(work):
    cases = [("tied head, GQA 4/2", Config(97, 32, 64, 2, 4, 2, True, 1e-5, 10000.0), []),
             ("untied head, GQA 4/1, rope_theta 5e5, sharded", Config(97, 32, 64, 3, 4, 1, False,
                                                                      1e-6, 500000.0),
              ["--max-shard-gb", "2e-5"]),
             ("untied head, MHA", Config(61, 48, 80, 2, 3, 3, False), [])]
    rng = np.random.default_rng(1)
    for i, (tag, c, extra) in enumerate(cases):
        hf_dir, h5 = os.path.join(work, f"hf{i}"), os.path.join(work, f"m{i}.h5")
        save_hf(make_model(c, seed=10 + i), hf_dir)
        gorp("import-hf", hf_dir, h5)
        out = os.path.join(work, f"export{i}")
        n = check_export_hf(tag, h5, out, rng.integers(0, c.vocab_size, size=(2, 17)), work,
                            extra)
        if extra:
            checks.report(n > 1, f"{tag}: --max-shard-gb 2e-5 writes {n} shards and an index")
        with open(os.path.join(out, "config.json")) as f:
            cfg = json.load(f)
        checks.report(cfg["eos_token_id"] == 2 and cfg["tie_word_embeddings"] == c.tie_word_embeddings
                      and cfg["torch_dtype"] == "float32", f"{tag}: config.json keeps eos_token_id "
                      f"2, tie_word_embeddings and torch_dtype float32")


def real_model(work):
    """SmolLM2-135M-Instruct through scripts/get_model.sh (its model cache)."""
    r = subprocess.run(["bash", os.path.join(SRC, "scripts", "get_model.sh"), "smollm2-135m"],
                       capture_output=True, text=True)
    checks.report(r.returncode == 0, "scripts/get_model.sh smollm2-135m", r.stderr[-2000:])
    if r.returncode:
        return
    cache = os.path.dirname(r.stdout.strip().splitlines()[-1])
    SMOL = os.path.join(cache, "smollm2-135m.h5")
    SMOL_TOK = os.path.join(cache, "smollm2-135m.tokenizer.json")
    out = os.path.join(work, "smol")
    ids = np.array([[1, 504, 3304, 314, 260, 2665, 28, 7219, 30]])
    check_export_hf("SmolLM2-135M, shards of 0.2 GB", SMOL, out, ids, work,
                    ["--tokenizer", SMOL_TOK, "--max-shard-gb", "0.2"])
    from tokenizers import Tokenizer
    text = "Hello world! Gorp exports SmolLM2 to transformers."
    want = Tokenizer.from_file(SMOL_TOK).encode(text).ids
    got = AutoTokenizer.from_pretrained(out)(text)["input_ids"]
    checks.report(got == want, f"SmolLM2-135M: AutoTokenizer on the export encodes as the "
                  f"run's tokenizer.json ({len(got)} ids)")


def run(work, name, method, tasks, extra="", init=None):
    cfg = os.path.join(work, f"{name}.ini")
    with open(cfg, "w") as f:
        f.write(RUN.format(method=method, tasks=tasks) + extra)
    out = os.path.join(work, name)
    args = ["run", cfg, "--set", f"run.out_dir={out}"]
    if init:
        args += ["--set", f"model.init={init}"]
    r = gorp_ranks(args, 1)
    checks.report(r.returncode == 0, f"gorp run {name} ({method}, {tasks})")
    return out if r.returncode == 0 else None


def peft_logits(base_dir, adapter_dir, ids):
    base = LlamaForCausalLM.from_pretrained(base_dir, torch_dtype=torch.float32)
    return hf_logits(PeftModel.from_pretrained(base, adapter_dir), ids)


def torch_merged_logits(base_dir, model_h5, pair, ids):
    """The exported base with alpha/r * B A of one pair of model_h5's /adapters added (float64)."""
    m = LlamaForCausalLM.from_pretrained(base_dir, torch_dtype=torch.float32)
    sd = m.state_dict()
    with h5py.File(model_h5, "r") as f:
        a = f["adapters"]
        scale = float(a.attrs["alpha"]) / int(a.attrs["r"])
        g = a[pair]
        with torch.no_grad():
            for name in g:
                if name.endswith(".lora_A"):
                    stem = name[: -len(".lora_A")]
                    A = torch.from_numpy(g[name][...].astype(np.float64))
                    B = torch.from_numpy(g[stem + ".lora_B"][...].astype(np.float64))
                    w = sd[stem + ".weight"]
                    w.copy_((w.double() + scale * B @ A).float())
    return hf_logits(m, ids)


def runs(work):
    rng = np.random.default_rng(7)
    ids = rng.integers(0, 259, size=(2, 21))
    ids_path = os.path.join(work, "run_ids.txt")
    write_ids(ids_path, torch.tensor(ids))
    base = run(work, "base", "seqft", "CB")
    if not base:
        return
    check_export_hf("a seqft run's directory", base, os.path.join(work, "x_base"), ids, work)
    checks.report(not os.path.exists(os.path.join(work, "x_base", "tokenizer.json")),
                  "a run with the byte tokenizer exports no tokenizer.json")
    # a run without adapters: refused, nothing written
    out = os.path.join(work, "x_peft_none")
    r = subprocess.run([os.environ["GORP"], "export-peft", base, out], capture_output=True,
                       text=True)
    left = [n for n in os.listdir(work) if n.startswith("x_peft_none")]
    checks.report(r.returncode != 0 and "no /adapters" in r.stderr and not left,
                  "export-peft of a seqft run: refused naming /adapters, nothing written",
                  r.stderr)

    base_h5 = os.path.join(base, "model.h5")
    one = run(work, "one", "inclora", "CB", LORA.format(targets="all"), base_h5)
    if one:
        out = os.path.join(work, "x_one")
        gorp("export-peft", one, out)
        with open(os.path.join(out, "CB", "adapter_config.json")) as f:
            ac = json.load(f)
        checks.report(ac["peft_type"] == "LORA" and ac["r"] == 4 and ac["lora_alpha"] == 16 and
                      sorted(ac["target_modules"]) == sorted(
                          ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                           "down_proj"]) and abs(ac["lora_dropout"] - 0.1) < 1e-9,
                      "adapter_config.json: LORA, r 4, lora_alpha 16, dropout 0.1, all seven "
                      "modules", json.dumps(ac))
        lg = gorp_logits(os.path.join(one, "model.h5"), ids_path, work)
        lp = peft_logits(os.path.join(out, "base"), os.path.join(out, "CB"), ids)
        lb = hf_logits(LlamaForCausalLM.from_pretrained(os.path.join(out, "base")), ids)
        err, moved = rel(lp, lg), rel(lb, lg)
        checks.report(err <= TOL and moved > 100 * TOL,
                      f"one-task inclora: PeftModel(base, CB) logits = gorp logits of the merged "
                      f"model.h5 (max difference {err:.1e}; the base alone differs by {moved:.1e})")
    two = run(work, "two", "inclora", "CB, SST-2", LORA.format(targets="q, v, down"), base_h5)
    if two:
        out = os.path.join(work, "x_two")
        gorp("export-peft", two, out)
        for p, task in ((1, "CB"), (2, "SST-2")):
            lp = peft_logits(os.path.join(out, "base"), os.path.join(out, task), ids)
            lt = torch_merged_logits(os.path.join(out, "base"), os.path.join(two, "model.h5"),
                                     f"task_{p:02d}", ids)
            err = rel(lp, lt)
            checks.report(err <= TOL, f"two-task inclora, {task}: PeftModel(base, {task}) logits "
                          f"= base + alpha/r B A of pair {p} in PyTorch (max difference {err:.1e})")
        out = os.path.join(work, "x_two_sst")
        gorp("export-peft", two, out, "--task", "SST-2")
        checks.report(sorted(os.listdir(out)) == ["SST-2", "base"],
                      f"--task SST-2 exports the base and that pair only ({sorted(os.listdir(out))})")


def main():
    with tempfile.TemporaryDirectory() as work:
        random_models(work)
        runs(work)
        real_model(work)
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
