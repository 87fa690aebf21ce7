#!/usr/bin/env bash
# gorp import-hf streams: it holds one tensor in memory at a time, never the model. A 48-layer
# model of 127 MB (31.7 M float32 values, two shards) must import with a peak RSS less than 32 MB
# above that of a 1-layer model of the same width (the binary's libraries and HDF5's caches cancel
# out); an import that builds the whole model in memory first exceeds it by about 120 MB. The
# imported file must hold the source's tensors bit for bit (checked on three of them).
# Needs $GORP (the binary) and $GORP_PYTHON (python with torch, safetensors and h5py).
set -euo pipefail

: "${GORP:?set GORP to the gorp binary}"
: "${GORP_PYTHON:?set GORP_PYTHON to a python with torch, safetensors and h5py}"
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

"$GORP_PYTHON" "$work/make.py" "$work/small" 1
"$GORP_PYTHON" "$work/make.py" "$work/big" 48
small_kb=$("$GORP_PYTHON" "$work/peak.py" "$work/small.log" "$GORP" import-hf "$work/small" "$work/small.h5")
big_kb=$("$GORP_PYTHON" "$work/peak.py" "$work/big.log" "$GORP" import-hf "$work/big" "$work/big.h5")
model_mb=$(du -sm "$work/big" | cut -f1)
echo "peak RSS: 1 layer $((small_kb / 1024)) MB, 48 layers $((big_kb / 1024)) MB (model ${model_mb} MB)"
cat "$work/big.log"

status=0
if ((big_kb - small_kb > 32 * 1024)); then
  echo "FAIL: the 48-layer import took $(((big_kb - small_kb) / 1024)) MB more than the 1-layer one" \
    "(limit 32 MB; the model is ${model_mb} MB): it holds more than one tensor at a time"
  status=1
fi

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
[[ $status == 0 ]] && echo "PASS: import-hf streams tensor by tensor"
exit $status
