#!/usr/bin/env bash
# gorp import-hf and import-gguf stream: they hold one tensor in memory at a time, never the model.
# A 48-layer model of 127 MB (31.7 M float32 values; two safetensors shards, and the same as an F32
# GGUF file) must import with a peak RSS less than 32 MB above that of a 1-layer model of the same
# width (the binary's libraries and HDF5's caches cancel out); an import that builds the whole
# model in memory first exceeds it by about 120 MB. The file import-hf writes must hold the
# source's tensors bit for bit (checked on three of them; import-gguf's values: cli_gguf_fuzz).
# Needs $GORP (the binary) and $GORP_PYTHON (python with torch, safetensors, gguf and h5py).
set -euo pipefail

: "${GORP:?set GORP to the gorp binary}"
: "${GORP_PYTHON:?set GORP_PYTHON to a python with torch, safetensors, gguf and h5py}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# make.py DIR LAYERS: a LLaMA of hidden 256, intermediate 512, vocabulary 1024 in two shards
cat >"$work/make.py" <<'EOF'
import json, os, sys
import torch
from safetensors.torch import save_file

out, L = sys.argv[1], int(sys.argv[2])
V, C, F, H = 1024, 256, 512, 4
os.makedirs(out)
json.dump(dict(architectures=["LlamaForCausalLM"], model_type="llama", vocab_size=V,
               hidden_size=C, intermediate_size=F, num_hidden_layers=L, num_attention_heads=H,
               num_key_value_heads=H, max_position_embeddings=64, rms_norm_eps=1e-5,
               rope_theta=10000.0, tie_word_embeddings=True, hidden_act="silu"),
          open(f"{out}/config.json", "w"))
g = torch.Generator().manual_seed(L)
shapes = {"model.embed_tokens.weight": (V, C), "model.norm.weight": (C,)}
for l in range(L):
    p = f"model.layers.{l}."
    shapes.update({p + "input_layernorm.weight": (C,), p + "post_attention_layernorm.weight": (C,),
                   p + "mlp.gate_proj.weight": (F, C), p + "mlp.up_proj.weight": (F, C),
                   p + "mlp.down_proj.weight": (C, F)})
    for m in "qkvo":
        shapes[p + f"self_attn.{m}_proj.weight"] = (C, C)
names = sorted(shapes)
shards = [names[: len(names) // 2], names[len(names) // 2 :]]
weight_map = {}
for i, part in enumerate(shards):
    file = f"model-0000{i + 1}-of-00002.safetensors"
    save_file({n: torch.randn(shapes[n], generator=g) for n in part}, f"{out}/{file}")
    weight_map.update({n: file for n in part})
json.dump({"weight_map": weight_map}, open(f"{out}/model.safetensors.index.json", "w"))
EOF

# peak.py OUT -- CMD...: runs CMD, prints its peak RSS in kB
cat >"$work/peak.py" <<'EOF'
import resource, subprocess, sys
subprocess.run(sys.argv[2:], check=True, stdout=open(sys.argv[1], "w"))
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
EOF

# to_gguf.py DIR OUT.gguf: the same model as a llama.cpp file of F32 tensors (gguf package)
cat >"$work/to_gguf.py" <<'EOF'
import json, sys
import gguf
from safetensors.numpy import load_file

src, out = sys.argv[1], sys.argv[2]
c = json.load(open(f"{src}/config.json"))
w = gguf.GGUFWriter(out, "llama")
w.add_block_count(c["num_hidden_layers"])
w.add_embedding_length(c["hidden_size"])
w.add_feed_forward_length(c["intermediate_size"])
w.add_head_count(c["num_attention_heads"])
names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
module = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
          "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
          "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
          "mlp.down_proj": "ffn_down"}
shards = json.load(open(f"{src}/model.safetensors.index.json"))["weight_map"].values()
for shard in sorted(set(shards)):
    for name, x in load_file(f"{src}/{shard}").items():
        if name not in names:
            layer, rest = name[len("model.layers."):].split(".", 1)
            names[name] = f"blk.{layer}.{module[rest[: -len('.weight')]]}.weight"
        w.add_tensor(names[name], x)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
EOF

"$GORP_PYTHON" "$work/make.py" "$work/small" 1
"$GORP_PYTHON" "$work/make.py" "$work/big" 48
"$GORP_PYTHON" "$work/to_gguf.py" "$work/small" "$work/small.gguf"
"$GORP_PYTHON" "$work/to_gguf.py" "$work/big" "$work/big.gguf"
model_mb=$(du -sm "$work/big" | cut -f1)
status=0
# check COMMAND SMALL BIG: importing BIG peaks less than 32 MB above importing SMALL
check() {
  local small_kb big_kb
  small_kb=$("$GORP_PYTHON" "$work/peak.py" "$work/small.log" "$GORP" "$1" "$2" "$work/small.h5")
  big_kb=$("$GORP_PYTHON" "$work/peak.py" "$work/big.log" "$GORP" "$1" "$3" "$work/big.h5")
  echo "$1 peak RSS: 1 layer $((small_kb / 1024)) MB, 48 layers $((big_kb / 1024)) MB" \
    "(model ${model_mb} MB)"
  cat "$work/big.log"
  if ((big_kb - small_kb > 32 * 1024)); then
    echo "FAIL: the 48-layer $1 took $(((big_kb - small_kb) / 1024)) MB more than the 1-layer" \
      "one (limit 32 MB; the model is ${model_mb} MB): it holds more than one tensor at a time"
    status=1
  fi
}
check import-gguf "$work/small.gguf" "$work/big.gguf"
check import-hf "$work/small" "$work/big"

"$GORP_PYTHON" - "$work/big" "$work/big.h5" <<'EOF' || status=1
import sys
import h5py, numpy as np
from safetensors.numpy import load_file

src, h5 = sys.argv[1], sys.argv[2]
with h5py.File(h5, "r") as f:
    for shard, name in [(1, "model.embed_tokens.weight"), (2, "model.layers.47.mlp.down_proj.weight"),
                        (2, "model.norm.weight")]:
        want = load_file(f"{src}/model-0000{shard}-of-00002.safetensors").get(name)
        if want is None:
            want = load_file(f"{src}/model-0000{3 - shard}-of-00002.safetensors")[name]
        got = f["model"][name][...]
        if got.shape != want.shape or not np.array_equal(got.view(np.uint32), want.view(np.uint32)):
            sys.exit(f"FAIL: {name} differs from the source")
print("PASS: imported tensors equal the source bit for bit")
EOF
[[ $status == 0 ]] && echo "PASS: import-hf and import-gguf stream tensor by tensor"
exit $status
