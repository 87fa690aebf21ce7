#!/usr/bin/env python3
"""GORP's training step, gorp fp32 and bf16 (and bf16 with the trained products in bf16) against the peer a user would pick: PyTorch 2.x from
PyPI with Hugging Face's LlamaForCausalLM and PEFT, in fp32, with bf16 autocast, and with bf16
frozen weights (issue 17).

The work of one step is the same on every engine: the LLaMA-2-7B GORP recipe
(inputs/llama2-7b/gorp.ini: LoRA q, v with r = 8, alpha 32, dropout 0.1; gate_proj trained;
everything else frozen; AdamW with weight decay 0, no clipping) on a random batch of BATCH
sequences of SEQ tokens whose last 10 tokens carry the loss (as an answer does).
  - gorp: build/bench_step (bench/bench_step.c) with that config, model.init = random and
    model.dtype = fp32 | bf16; its per-step seconds after the first WARMUP steps. gorp-bf16t is
    gorp-bf16 with model.trained_products = bf16 (the gate's products in bf16 too, as autocast
    computes them: the same arithmetic class as torch-bf16).
  - PyTorch: LlamaForCausalLM (attention "sdpa", untied head) with random weights, PEFT's LoRA on
    q_proj/v_proj, gate_proj's weights set trainable, torch.optim.AdamW over what trains:
      torch-fp32      fp32 weights, fp32 arithmetic;
      torch-autocast  fp32 weights, forward under torch.autocast("cpu", bfloat16) (the usual
                      mixed-precision recipe: every linear runs in bf16 with fp32 masters);
      torch-bf16      frozen weights held in bf16 (as gorp's model.dtype = bf16), LoRA and gate in
                      fp32, the same autocast.
    GORP's gate gets a rank-8 projected AdamW in gorp and a full AdamW here: PyTorch has no GaLore
    in its core, and the products (forward, input and weight gradients of the gate) are the same;
    only the optimizer's element-wise work differs, in PyTorch's disfavour by a few percent at most.
The weights are random on both sides and not the same values (the time of a product does not
depend on them). Every run is its own process; rounds alternate all engines per size, so that they
meet the same load; the table gives the mean over rounds of each run's mean timed step and the
process's peak RSS (VmHWM).

The PyTorch side runs in a venv of its own (PyPI's torch is large; nothing of the test suite needs
it): bench/setup_torch2.sh builds build/venv-torch2 with the pinned versions.

  build/venv-torch2/bin/python bench/bench_peer_step.py [--sizes small,medium,1b] [--rounds 2]
      [--warmup 1] [--steps 3] [--batch 2] [--seq 256] [--threads 1] [--no-append]

Not for: full fine-tuning against PyTorch (bench_train.py), correctness (tests/ref/).
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_train import append_entry, thread_env, vm_hwm_mb  # noqa: E402

# hidden, layers, heads, intermediate, vocabulary: bench_train.py's small and medium, and a ~1B
# LLaMA (0.94 B parameters with an untied head)
SIZES = {
    "small": (512, 6, 8, 1376, 4096),
    "medium": (768, 12, 12, 2048, 8192),
    "1b": (2048, 16, 16, 5504, 32000),
}
ENGINES = ["gorp-fp32", "gorp-bf16", "gorp-bf16t", "torch-fp32", "torch-autocast", "torch-bf16"]
ANSWER = 10  # tokens per sequence that carry the loss (bench_step's data.max_target_length)
LORA = dict(r=8, alpha=32, dropout=0.1)
LR_LORA, LR_FULL = 2e-4, 1e-6


def torch_child(spec):
    """One PyTorch run; prints a JSON line with its step seconds and peak RSS."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(1)
    C, L, H, F, V = SIZES[spec["size"]]
    cfg = LlamaConfig(vocab_size=V, hidden_size=C, intermediate_size=F, num_hidden_layers=L,
                      num_attention_heads=H, num_key_value_heads=H,
                      max_position_embeddings=spec["seq"] + 8, tie_word_embeddings=False,
                      attn_implementation="sdpa")
    model = LlamaForCausalLM(cfg)
    mode = spec["engine"]
    if mode == "torch-bf16":
        model = model.to(torch.bfloat16)
    lcfg = LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                      target_modules=["q_proj", "v_proj"], bias="none")
    model = get_peft_model(model, lcfg)  # adapters in fp32 (PEFT's autocast_adapter_dtype)
    gate = []
    for name, mod in model.named_modules():
        if name.endswith("mlp.gate_proj"):
            mod.float()  # the trained full-rank target keeps an fp32 master
            mod.weight.requires_grad_(True)
            gate.append(mod.weight)
    lora = [p for n, p in model.named_parameters() if "lora_" in n]
    opt = torch.optim.AdamW([dict(params=lora, lr=LR_LORA), dict(params=gate, lr=LR_FULL)],
                            betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0)
    model.train()
    gen = torch.Generator().manual_seed(2)
    ids = torch.randint(0, V, (spec["batch"], spec["seq"]), generator=gen)
    labels = torch.full_like(ids, -100)
    labels[:, -ANSWER:] = ids[:, -ANSWER:]  # HF shifts the labels itself
    autocast = mode != "torch-fp32"
    times, losses = [], []
    for _ in range(spec["warmup"] + spec["steps"]):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
        losses.append(float(loss))
    print(json.dumps(dict(step_s=times[spec["warmup"]:], loss=losses[0], peak_mb=vm_hwm_mb())))


def gorp_run(spec, gorp_dir):
    C, L, H, F, V = SIZES[spec["size"]]
    seq = spec["seq"]
    cmd = [os.path.join(gorp_dir, "bench_step"), os.path.join(ROOT, "inputs/llama2-7b/order1.ini"),
           str(seq), str(spec["warmup"] + spec["steps"]), "2", "model.init=random",
           "model.dtype=" + spec["engine"].split("-")[1][:4],
           "model.trained_products=" + ("bf16" if spec["engine"] == "gorp-bf16t" else "fp32"),
           f"model.hidden_size={C}",
           f"model.num_layers={L}", f"model.num_heads={H}", f"model.num_kv_heads={H}",
           f"model.intermediate_size={F}", f"model.vocab_size={V}", f"model.max_seq={seq + 8}",
           f"train.batch_size={spec['batch']}", "gorp.svd=randomized", "eval.batch_size=1",
           f"data.max_target_length={ANSWER}",
           "data.root=" + os.path.join(ROOT, "..", "shared", "data", "CL_Benchmark", "full")]
    r = subprocess.run(cmd, capture_output=True, text=True, env=thread_env(spec["threads"]))
    if r.returncode:
        sys.exit(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout}{r.stderr}")
    steps = [float(m.group(1)) for m in re.finditer(r"^step \d+ loss \S+ step_s (\S+)", r.stdout, re.M)]
    peak = float(re.search(r"peak_rss_mb=(\S+)", r.stdout).group(1))
    loss = float(re.search(r"^step 1 loss (\S+)", r.stdout, re.M).group(1))
    return dict(step_s=steps[spec["warmup"]:], loss=loss, peak_mb=peak)


def torch_run(spec):
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)],
                       capture_output=True, text=True, env=thread_env(spec["threads"]))
    if r.returncode:
        sys.exit(f"PyTorch child {spec} exited {r.returncode}:\n{r.stdout}{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def isa_flags():
    flags = set(next((l for l in open("/proc/cpuinfo") if l.startswith("flags")), "").split())
    return " ".join(f for f in ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags)


def versions():
    import peft
    import torch
    import transformers
    return (f"torch {torch.__version__} (oneDNN {torch.backends.mkldnn.is_available() and 'on'}), "
            f"transformers {transformers.__version__}, peft {peft.__version__}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="small,medium,1b")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--gorp-build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--no-append", action="store_true")
    ap.add_argument("--child")
    a = ap.parse_args()
    if a.child:
        return torch_child(json.loads(a.child))
    engines = a.engines.split(",")
    load0 = os.getloadavg()[0]
    rows = []
    for size in a.sizes.split(","):
        res = {e: [] for e in engines}
        for rnd in range(a.rounds):
            for e in engines:
                spec = dict(engine=e, size=size, warmup=a.warmup, steps=a.steps, batch=a.batch,
                            seq=a.seq, threads=a.threads)
                r = gorp_run(spec, a.gorp_build) if e.startswith("gorp") else torch_run(spec)
                res[e].append(r)
                mean = sum(r["step_s"]) / len(r["step_s"])
                print(f"  {size} round {rnd + 1} {e}: step {mean:.3f} s {r['step_s']}, "
                      f"loss {r['loss']:.4f}, peak {r['peak_mb']:.0f} MB", file=sys.stderr, flush=True)
        rows.append((size, res))
    tok = a.batch * a.seq
    head = ("| size | " + " | ".join(f"{e} tok/s" for e in engines) + " | "
            + " | ".join(f"{e} peak MB" for e in engines))
    lines = [head + " | gorp-bf16 / torch-bf16 | gorp-bf16t / torch-bf16 | gorp-bf16 / best PyTorch |",
             "|" + "---|" * (2 * len(engines) + 4)]
    for size, res in rows:
        tps = {e: tok / (sum(sum(r["step_s"]) / len(r["step_s"]) for r in rs) / len(rs))
               for e, rs in res.items()}
        peak = {e: max(r["peak_mb"] for r in rs) for e, rs in res.items()}
        best = max((v for e, v in tps.items() if e.startswith("torch")), default=float("nan"))
        ratio = lambda x, y: f"{x / y:.2f}x" if x and y else "-"
        lines.append(f"| {size} | " + " | ".join(f"{tps[e]:.0f}" for e in engines) + " | "
                     + " | ".join(f"{peak[e]:.0f}" for e in engines) + " | "
                     + ratio(tps.get("gorp-bf16"), tps.get("torch-bf16")) + " | "
                     + ratio(tps.get("gorp-bf16t"), tps.get("torch-bf16")) + " | "
                     + ratio(tps.get("gorp-bf16"), best) + " |")
    notes = [f"ISA flags: {isa_flags() or 'none of avx512f/bf16/amx'}; Python "
             f"{platform.python_version()}, {versions()}; load average after: "
             f"{os.getloadavg()[0]:.2f}",
             f"Step: LoRA q, v r = 8 + trained gate_proj (GORP rank 8 in gorp, full AdamW in "
             f"PyTorch), batch {a.batch} x {a.seq} tokens, the last {ANSWER} carrying the loss; "
             f"{a.warmup} untimed + {a.steps} timed steps per run, {a.rounds} round(s) alternating "
             "all engines"]
    print("\n".join(lines))
    if not a.no_append:
        append_entry("bench_peer_step.py", "GORP step, gorp fp32/bf16 against PyTorch + PEFT "
                     "fp32/autocast/bf16 (issue 17)", a.threads, load0, notes, lines,
                     python="build/venv-torch2/bin/python")


if __name__ == "__main__":
    main()
