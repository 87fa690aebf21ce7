"""Independent PyTorch reference of Hugging Face's LlamaForCausalLM (transformers' modeling_llama,
eager attention), used to check gorp's numerics. Also writes a model as a Hugging Face directory
(config.json + model.safetensors) that `gorp import-hf` reads, and runs the gorp binary.

Not for: production use; it is deliberately written out op by op, like HF's code.
"""
import json
import re
import os
import subprocess
import sys

import torch
from safetensors.torch import save_file

from checks import Checks  # noqa: F401  (the tests import it from here)

GORP = os.environ.get("GORP", "build/gorp")


class Config:
    def __init__(self, vocab_size, hidden_size, intermediate_size, num_hidden_layers,
                 num_attention_heads, num_key_value_heads, tie_word_embeddings=False,
                 rms_norm_eps=1e-5, rope_theta=10000.0, max_position_embeddings=128):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads
        self.tie_word_embeddings = tie_word_embeddings
        self.rms_norm_eps = rms_norm_eps
        self.rope_theta = rope_theta
        self.max_position_embeddings = max_position_embeddings
        self.head_dim = hidden_size // num_attention_heads

    def hf_json(self):
        d = {k: v for k, v in self.__dict__.items() if k != "head_dim"}
        d.update(architectures=["LlamaForCausalLM"], model_type="llama", hidden_act="silu",
                 torch_dtype="float32", rope_scaling=None, bos_token_id=1, eos_token_id=2)
        return d


class RMSNorm(torch.nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Layer(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        D = c.head_dim
        self.c = c
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        lin = lambda i, o: torch.nn.Linear(i, o, bias=False)
        self.q_proj = lin(c.hidden_size, c.num_attention_heads * D)
        self.k_proj = lin(c.hidden_size, c.num_key_value_heads * D)
        self.v_proj = lin(c.hidden_size, c.num_key_value_heads * D)
        self.o_proj = lin(c.num_attention_heads * D, c.hidden_size)
        self.gate_proj = lin(c.hidden_size, c.intermediate_size)
        self.up_proj = lin(c.hidden_size, c.intermediate_size)
        self.down_proj = lin(c.intermediate_size, c.hidden_size)

    def forward(self, x, cos, sin):
        c, D = self.c, self.c.head_dim
        B, T, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, c.num_attention_heads, D).transpose(1, 2)
        k = self.k_proj(h).view(B, T, c.num_key_value_heads, D).transpose(1, 2)
        v = self.v_proj(h).view(B, T, c.num_key_value_heads, D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = c.num_attention_heads // c.num_key_value_heads
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        s = q @ k.transpose(2, 3) / (D ** 0.5)
        mask = torch.full((T, T), torch.finfo(s.dtype).min).triu(1)
        p = torch.softmax(s + mask, dim=-1)
        y = (p @ v).transpose(1, 2).reshape(B, T, -1)
        x = x + self.o_proj(y)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(torch.nn.functional.silu(self.gate_proj(h)) * self.up_proj(h))


class Llama(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = torch.nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = torch.nn.ModuleList([Layer(c) for _ in range(c.num_hidden_layers)])
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        if not c.tie_word_embeddings:
            self.lm_head = torch.nn.Linear(c.hidden_size, c.vocab_size, bias=False)

    def forward(self, ids):
        c, D = self.c, self.c.head_dim
        T = ids.shape[1]
        inv_freq = 1.0 / (c.rope_theta ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
        freqs = torch.arange(T).float()[:, None] * inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, cos, sin)
        x = self.norm(x)
        head = self.embed_tokens.weight if c.tie_word_embeddings else self.lm_head.weight
        return x @ head.t()

    def hf_state_dict(self):
        """Parameters under their Hugging Face names."""
        out = {}
        for name, p in self.named_parameters():
            for proj, block in (("q_proj", "self_attn"), ("k_proj", "self_attn"),
                                ("v_proj", "self_attn"), ("o_proj", "self_attn"),
                                ("gate_proj", "mlp"), ("up_proj", "mlp"), ("down_proj", "mlp")):
                name = name.replace("." + proj + ".", "." + block + "." + proj + ".")
            out[name if name.startswith("lm_head") else "model." + name] = p
        return out


def make_model(c, seed, std=0.1):
    torch.manual_seed(seed)
    m = Llama(c)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.dim() == 1:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.normal_(0.0, std)
    return m


def save_hf(model, directory, dtype=torch.float32):
    """Writes config.json + model.safetensors; rounds the model's weights to dtype in place so
    that the reference computes with exactly what gorp imports."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(model.c.hf_json(), f, indent=1)
    tensors = {}
    with torch.no_grad():
        for name, p in model.hf_state_dict().items():
            p.copy_(p.to(dtype).float())
            tensors[name] = p.detach().to(dtype).contiguous()
    save_file(tensors, os.path.join(directory, "model.safetensors"))


def next_token_targets(ids):
    t = torch.full_like(ids, -1)
    t[:, :-1] = ids[:, 1:]
    return t


def masked_loss(logits, targets):
    """Sum of token cross-entropies over targets >= 0 divided by their count."""
    flat = logits.reshape(-1, logits.shape[-1])
    return torch.nn.functional.cross_entropy(flat, targets.reshape(-1), ignore_index=-1,
                                             reduction="mean")


def write_ids(path, ids):
    with open(path, "w") as f:
        for row in ids.tolist():
            f.write(" ".join(str(i) for i in row) + "\n")


def gorp(*args):
    """Runs the gorp binary; returns stdout; raises with its stderr on failure."""
    r = subprocess.run([GORP, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        raise RuntimeError(f"gorp {' '.join(args)} exited {r.returncode}")
    return r.stdout


# The environment of a gorp run under mpirun as root, one BLAS/OpenMP thread per rank.
MPI_ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")


def gorp_ranks(args, ranks, env=None, timeout=600, expect_failure=False):
    """`gorp ARGS` as one process, or under mpirun with `ranks` ranks and a timeout (a hang fails
    instead of blocking the suite); prints the output's tail when it fails unexpectedly."""
    cmd = [GORP] + list(args)
    if ranks > 1:
        cmd = ["timeout", str(timeout), "mpirun", "--allow-run-as-root", "--oversubscribe",
               "-np", str(ranks)] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, env=env or MPI_ENV)
    if r.returncode and not expect_failure:
        print(r.stdout[-3000:], r.stderr[-3000:])
    return r


def step_losses(stdout):
    """The loss of every training step `gorp run` printed, in order."""
    return [float(x) for x in re.findall(r" step +\d+/\d+  loss ([0-9.]+)", stdout)]


def checkpoint_bases(out):
    """Columns of every GORP basis in the run's newest checkpoint, by module."""
    import h5py
    ck = os.path.join(out, "checkpoints")
    latest = open(os.path.join(ck, "LATEST")).read().strip()
    with h5py.File(os.path.join(ck, latest), "r") as f:
        if "gorp" not in f:
            return {}
        return {k: int(f["gorp"][k].attrs["columns"]) for k in f["gorp"]}


def h5_datasets(path, prefixes=("",)):
    """Every dataset of an HDF5 file whose path starts with one of `prefixes`, as arrays by path."""
    import h5py
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset)
                     and n.startswith(prefixes) else None)
    return out


def checkpoint_path(out, name=None):
    """The run's newest checkpoint (LATEST), or checkpoint `name` of it."""
    ck = os.path.join(out, "checkpoints")
    return os.path.join(ck, name or open(os.path.join(ck, "LATEST")).read().strip())


# what a run trained: weights, adapters, optimizer moments (GORP bases are compared by size)
TRAINED = ("model/", "lora/", "optim/")


def trained_signal(out):
    """('' or why not, summary): the newest checkpoint carries what training did, so that an
    equality check on it can fail: the weights moved from the oldest checkpoint kept (the
    zero-shot one, or an earlier task's end) or there are LoRA adapters (the LoRA methods freeze
    the weights), and every LoRA B (zero at the start of its task) and every Adam moment is
    nonzero."""
    import numpy as np
    ck = os.path.join(out, "checkpoints")
    oldest = sorted(n for n in os.listdir(ck) if re.fullmatch(r"ckpt_\d+\.h5", n))[0]
    last = h5_datasets(checkpoint_path(out), TRAINED)
    first = h5_datasets(checkpoint_path(out, oldest), ("model/",))
    moved = max((float(np.abs(last[k] - v).max()) for k, v in first.items() if k in last),
                default=0.0)
    zero = [k for k, v in last.items() if (k.endswith("/B") or "/exp_avg" in k)
            and not np.abs(v).max() > 0]
    summary = (f"weights moved up to {moved:.1e} from {oldest}, "
               f"{sum(k.endswith('/B') for k in last)} LoRA B and "
               f"{sum('/exp_avg' in k for k in last)} Adam moments, zero: {len(zero)}")
    if not moved > 0 and not any(k.endswith("/B") for k in last):
        return f"no LoRA adapters, and the weights equal {oldest}'s", summary
    if zero:
        return f"all zero: {zero[:3]}", summary
    return "", summary


def worst_relative(a, b):
    """(worst, name): the largest max|a - b| / max|a| over the datasets of dicts a and b (the same
    names required: else (inf, the names that differ)); each dataset on its own scale, so that small
    tensors such as Adam's second moments are compared as strictly as the weights."""
    import numpy as np
    if a.keys() != b.keys():
        return float("inf"), str(sorted(set(a) ^ set(b))[:4])
    worst, name = 0.0, ""
    for k in a:
        x, y = np.asarray(a[k], dtype=np.float64), np.asarray(b[k], dtype=np.float64)
        if x.shape != y.shape:
            return float("inf"), f"{k}: shape {x.shape} vs {y.shape}"
        scale = np.nanmax(np.abs(x)) if x.size else 0.0
        d = np.nanmax(np.abs(x - y)) if x.size else 0.0
        if np.any(np.isnan(x) != np.isnan(y)):
            return float("inf"), f"{k}: NaN pattern"
        rel = 0.0 if d == 0 else (d / scale if scale > 0 else float("inf"))
        if rel > worst:
            worst, name = rel, k
    return worst, name
