#!/usr/bin/env python3
"""Greedy decoding for evaluation: gorp (`gorp generate`, the KV-cache path `gorp run` evaluates
with) against PyTorch with a KV cache written out below, on the same random LLaMA (the tiny/small/
medium sizes of bench_train.py), the same prompts and the same thread count. Both decode one
prompt at a time (as evaluation does): prefill the prompt in one pass, then one position per new
token. Prints one Markdown table (new tokens/s per engine, the ratio, and whether both produced the
same ids) and appends it to BENCHMARKS.md with the command and machine.

    build/venv/bin/python bench/bench_decode.py [--sizes tiny,small] [--prompts 8] [--prompt-len 64]
                                                [--new 64] [--threads 2] [--no-append]
"""
import argparse
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "ref"))
import bench_train as bt  # noqa: E402  (sizes, thread environment, runner)

SEED_MODEL, SEED_PROMPTS = 1, 3


def torch_child(spec):
    """Greedy decoding with a KV cache in PyTorch; prints one JSON line {seconds, ids}."""
    import torch
    import llama_ref as ref
    torch.set_num_threads(spec["threads"])
    cfg = bt.make_config(spec["size"], spec["prompt_len"] + spec["new"])
    model = ref.make_model(cfg, seed=SEED_MODEL)
    prompts = torch.randint(0, cfg.vocab_size, (spec["prompts"], spec["prompt_len"]),
                            generator=torch.Generator().manual_seed(SEED_PROMPTS))
    D, H, KV = cfg.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads
    S = spec["prompt_len"] + spec["new"]
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, D, 2).float() / D))
    emb = torch.cat([torch.arange(S).float()[:, None] * inv] * 2, dim=-1)
    cos, sin = emb.cos(), emb.sin()
    head = model.embed_tokens.weight if cfg.tie_word_embeddings else model.lm_head.weight

    def rope(x, pos):  # x (heads, T, D) at positions pos
        return x * cos[pos] + ref.rotate_half(x) * sin[pos]

    def forward(ids, pos, cache):  # ids (T,), pos (T,): logits of the last position
        x = model.embed_tokens(ids)
        for layer, (kc, vc) in zip(model.layers, cache):
            h = layer.input_layernorm(x)
            T = ids.shape[0]
            q = rope(layer.q_proj(h).view(T, H, D).transpose(0, 1), pos)
            k = rope(layer.k_proj(h).view(T, KV, D).transpose(0, 1), pos)
            v = layer.v_proj(h).view(T, KV, D).transpose(0, 1)
            kc[:, pos] = k
            vc[:, pos] = v
            n = int(pos[-1]) + 1
            kk = kc[:, :n].repeat_interleave(H // KV, dim=0)
            vv = vc[:, :n].repeat_interleave(H // KV, dim=0)
            s = q @ kk.transpose(1, 2) / D ** 0.5
            if T > 1:
                s = s + torch.full((T, n), float("-inf")).triu(n - T + 1)
            y = (torch.softmax(s, dim=-1) @ vv).transpose(0, 1).reshape(T, H * D)
            x = x + layer.o_proj(y)
            h = layer.post_attention_layernorm(x)
            x = x + layer.down_proj(torch.nn.functional.silu(layer.gate_proj(h)) * layer.up_proj(h))
        return model.norm(x[-1]) @ head.t()

    out = []
    t0 = time.perf_counter()
    with torch.no_grad():
        for p in prompts:
            cache = [(torch.zeros(KV, S, D), torch.zeros(KV, S, D)) for _ in model.layers]
            T = p.shape[0]
            nxt = int(torch.argmax(forward(p, torch.arange(T), cache)))
            ids = [nxt]
            for i in range(spec["new"] - 1):
                nxt = int(torch.argmax(forward(torch.tensor([nxt]), torch.tensor([T + i]), cache)))
                ids.append(nxt)
            out.append(ids)
    print(json.dumps({"seconds": time.perf_counter() - t0, "ids": out}))


def gorp_side(spec, work, gorp, env):
    import torch
    import llama_ref as ref
    cfg = bt.make_config(spec["size"], spec["prompt_len"] + spec["new"])
    model = ref.make_model(cfg, seed=SEED_MODEL)
    hf = os.path.join(work, spec["size"])
    ref.save_hf(model, hf)
    h5 = hf + ".h5"
    bt.run([gorp, "import-hf", hf, h5], env)
    prompts = torch.randint(0, cfg.vocab_size, (spec["prompts"], spec["prompt_len"]),
                            generator=torch.Generator().manual_seed(SEED_PROMPTS))
    ids_path, out_path = hf + ".ids", hf + ".out"
    ref.write_ids(ids_path, prompts)
    line = bt.run([gorp, "generate", "--model", h5, "--tokens", ids_path, "--max-new",
                   str(spec["new"]), "--out", out_path, "--time"], env).strip().splitlines()[-1]
    fields = dict(kv.split("=") for kv in line.split()[1:])
    with open(out_path) as f:
        ids = [[int(x) for x in row.split()] for row in f]
    return float(fields["total_s"]), ids, float(fields["peak_rss_mb"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="tiny,small,medium")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gorp", default=os.environ.get("GORP", os.path.join(ROOT, "build", "gorp")))
    ap.add_argument("--no-append", action="store_true")
    ap.add_argument("--torch-child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_child:
        torch_child(json.loads(a.torch_child))
        return
    rows, load_start = [], os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as work:
        for size in a.sizes.split(","):
            spec = dict(size=size, prompts=a.prompts, prompt_len=a.prompt_len, new=a.new,
                        threads=a.threads)
            env = bt.thread_env(a.threads)
            g_s, g_ids, g_mb = gorp_side(spec, work, a.gorp, env)
            out = bt.run([sys.executable, __file__, "--torch-child", json.dumps(spec)],
                         bt.thread_env(a.threads, omp_passive=True))
            t = json.loads(out.strip().splitlines()[-1])
            n = a.prompts * a.new
            same = sum(x == y for gi, ti in zip(g_ids, t["ids"]) for x, y in zip(gi, ti))
            rows.append(f"| {size} | {n} | {n / g_s:.1f} | {n / t['seconds']:.1f} | "
                        f"{t['seconds'] / g_s:.2f}x | {same}/{n} | {g_mb:.0f} |")
            print(rows[-1], file=sys.stderr)
    table = ["| size | new tokens | gorp tok/s | PyTorch tok/s | gorp / PyTorch | same ids | "
             "gorp peak RSS MB |", "|---|---:|---:|---:|---:|---:|---:|"] + rows
    print("\n".join(table))
    if a.no_append:
        return
    bt.append_entry("bench_decode.py", "greedy decoding", a.threads, load_start, [
        f"{a.prompts} prompts of {a.prompt_len} random ids, {a.new} new ids each, one prompt at "
        "a time, KV cache on both sides (PyTorch: bench/bench_decode.py's own loop over "
        "tests/ref/llama_ref.py's weights); tok/s = new ids / wall time of all prompts (prefill "
        "included, model load excluded); 'same ids' counts positions where both engines chose "
        "the same id"], table)

if __name__ == "__main__":
    main()
