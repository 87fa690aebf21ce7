#!/usr/bin/env bash
# gorp import-hf on tiny Hugging Face directories written with PyTorch + safetensors: valid single
# and sharded (F16/BF16 mixed) imports match the source tensors bit for bit, and every kind of bad
# input fails with a non-zero exit and a message naming the file, tensor or key, leaving no output.
# Needs $GORP (the binary) and $GORP_PYTHON (python with torch, safetensors, h5py).
set -euo pipefail

: "${GORP:?set GORP to the gorp binary}"
: "${GORP_PYTHON:?set GORP_PYTHON to a python with torch, safetensors and h5py}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

# make_hf.py reads one directory to write per line (torch is imported once for all of them):
#   DIR [--tie] [--shards] [--dtype f32|f16|bf16] [--special] [--extra NAME] [--inv-freq]
#   [--lm-head] [--drop NAME] [--transpose NAME] [--int64 NAME] [--config-drop KEY]
#   [--config-set KEY=JSON]
cat >"$work/make_hf.py" <<'EOF'
import argparse, json, os, shlex, sys
import torch
from safetensors.torch import save_file

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("--tie", action="store_true")
ap.add_argument("--shards", action="store_true", help="two shards + index, F16/BF16 alternating")
ap.add_argument("--dtype", default="f32")
ap.add_argument("--special", action="store_true", help="inf, nan, -0, subnormals in one tensor")
ap.add_argument("--extra", action="append", default=[])
ap.add_argument("--inv-freq", action="store_true")
ap.add_argument("--lm-head", action="store_true", help="write lm_head.weight even when tied")
ap.add_argument("--drop", action="append", default=[])
ap.add_argument("--transpose", action="append", default=[])
ap.add_argument("--int64", action="append", default=[])
ap.add_argument("--config-drop", action="append", default=[])
ap.add_argument("--config-set", action="append", default=[])


V, C, F, L, H, KV = 32, 16, 24, 2, 4, 2
D = C // H


def build(a):
    cfg = dict(architectures=["LlamaForCausalLM"], model_type="llama", vocab_size=V,
               hidden_size=C, intermediate_size=F, num_hidden_layers=L, num_attention_heads=H,
               num_key_value_heads=KV, max_position_embeddings=64, rms_norm_eps=1e-5,
               rope_theta=10000.0, tie_word_embeddings=a.tie, hidden_act="silu",
               rope_scaling=None)
    shapes = {"model.embed_tokens.weight": (V, C)}
    for l in range(L):
        p = f"model.layers.{l}."
        shapes.update({p + "input_layernorm.weight": (C,),
                       p + "self_attn.q_proj.weight": (H * D, C),
                       p + "self_attn.k_proj.weight": (KV * D, C),
                       p + "self_attn.v_proj.weight": (KV * D, C),
                       p + "self_attn.o_proj.weight": (C, H * D),
                       p + "post_attention_layernorm.weight": (C,),
                       p + "mlp.gate_proj.weight": (F, C), p + "mlp.up_proj.weight": (F, C),
                       p + "mlp.down_proj.weight": (C, F)})
    shapes["model.norm.weight"] = (C,)
    if not a.tie or a.lm_head:
        shapes["lm_head.weight"] = (V, C)
    if a.inv_freq:
        for l in range(L):
            shapes[f"model.layers.{l}.self_attn.rotary_emb.inv_freq"] = (D // 2,)
    for name in a.extra:
        shapes[name] = (3,)

    g = torch.Generator().manual_seed(1234)
    dtypes = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
    tensors = {}
    for i, (name, shape) in enumerate(shapes.items()):
        if name in a.drop:
            continue
        t = torch.randn(shape, generator=g) * (1.0 if len(shape) == 1 else 0.02)
        if name in a.transpose:
            t = t.t().contiguous()
        if a.shards:
            dt = torch.float16 if i % 2 == 0 else torch.bfloat16
        else:
            dt = dtypes[a.dtype]
        t = t.to(dt)
        if a.special and name == "model.layers.0.mlp.up_proj.weight":
            flat = t.view(-1)
            flat[:6] = torch.tensor([float("inf"), float("-inf"), float("nan"), -0.0, 0.0, 1.0])
            tiny = torch.finfo(dt).tiny  # smallest normal; below it are subnormals
            subnormals = torch.tensor([tiny / 2, -tiny / 4, tiny / 1024], dtype=torch.float32)
            flat[6:9] = subnormals.to(dt)
        if name in a.int64:
            t = torch.arange(t.numel(), dtype=torch.int64).view(t.shape)
        tensors[name] = t

    os.makedirs(a.dir, exist_ok=True)
    for key in a.config_drop:
        del cfg[key]
    for kv in a.config_set:
        key, value = kv.split("=", 1)
        cfg[key] = json.loads(value)
    with open(os.path.join(a.dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    if a.shards:
        names = list(tensors)
        half = len(names) // 2
        parts = {"model-00001-of-00002.safetensors": names[:half],
                 "model-00002-of-00002.safetensors": names[half:]}
        weight_map = {}
        for fname, part in parts.items():
            save_file({n: tensors[n] for n in part}, os.path.join(a.dir, fname),
                      metadata={"format": "pt"})
            weight_map.update({n: fname for n in part})
        with open(os.path.join(a.dir, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f, indent=2)
    else:
        save_file(tensors, os.path.join(a.dir, "model.safetensors"), metadata={"format": "pt"})


for line in sys.stdin:
    if line.strip():
        build(ap.parse_args(shlex.split(line)))
EOF

# check_h5.py OUT.h5 HFDIR: every /model dataset equals the float32 value of its source tensor
# bit for bit (a BF16 matrix is kept as a bfloat16 dataset, the rest float32), its crc32 attribute
# is zlib's crc32 of its little-endian bytes as stored, and the architecture attributes match
# config.json.
cat >"$work/check_h5.py" <<'EOF'
import glob, json, sys, zlib
import h5py, numpy as np
from safetensors.torch import load_file

out, hf = sys.argv[1], sys.argv[2]
src = {}
for path in sorted(glob.glob(hf + "/*.safetensors")):
    src.update(load_file(path))
cfg = json.load(open(hf + "/config.json"))
with h5py.File(out, "r") as f:
    assert f.attrs["gorp_format_version"] == 1
    assert f.attrs["gorp_file_kind"] == b"model"  # fixed-length strings: h5py reads bytes
    g = f["model"]
    expected = {n for n in src if not n.endswith("rotary_emb.inv_freq")}
    if cfg.get("tie_word_embeddings"):
        expected.discard("lm_head.weight")
    assert set(g.keys()) == expected, (sorted(g.keys()), sorted(expected))
    import torch
    for name, ds in g.items():
        want = src[name].float().numpy()
        got = ds[()]
        # a BF16 matrix stays bfloat16 (uint16 bits + dtype attribute); everything else float32
        kept = src[name].dtype == torch.bfloat16 and src[name].dim() == 2
        assert (ds.attrs.get("dtype") == b"bfloat16") == kept, (name, src[name].dtype)
        if kept:
            assert got.dtype == np.uint16 and got.shape == want.shape, name
            assert ds.attrs["crc32"] == zlib.crc32(got.astype("<u2").tobytes()), name
            got = (got.astype(np.uint32) << 16).view(np.float32)
        else:
            assert got.dtype == np.float32 and got.shape == want.shape, name
            assert ds.attrs["crc32"] == zlib.crc32(got.astype("<f4").tobytes()), name
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), name
    for key in ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                "num_attention_heads", "num_key_value_heads", "max_position_embeddings"]:
        assert g.attrs[key] == cfg[key], key
    assert g.attrs["head_dim"] == cfg["hidden_size"] // cfg["num_attention_heads"]
    assert g.attrs["rms_norm_eps"] == cfg["rms_norm_eps"]
    # transformers 5 writes rope_parameters.rope_theta instead of a top-level rope_theta
    theta = cfg.get("rope_theta", (cfg.get("rope_parameters") or {}).get("rope_theta", 1e4))
    assert g.attrs["rope_theta"] == np.float32(theta), (g.attrs["rope_theta"], theta)
    assert g.attrs["tie_word_embeddings"] == int(cfg["tie_word_embeddings"])
    assert json.loads(g.attrs["hf_config"]) == cfg
    n = len(g)
print("checked", n, "datasets")
EOF

pass() {
  echo "ok - $1"
  passed=$((passed + 1))
}
fail() {
  echo "FAIL - $1"
  sed 's/^/    /' "$work/log" || true
  failed=$((failed + 1))
}

# expect_ok NAME DIR: import succeeds and the file matches its source.
expect_ok() {
  local name=$1 dir=$2 out="$work/$1.h5"
  if "$GORP" import-hf "$dir" "$out" >"$work/log" 2>&1 &&
    grep -q "import-hf: .* tensors, .* parameters (.* kept in bf16) -> $out" "$work/log" &&
    "$GORP_PYTHON" "$work/check_h5.py" "$out" "$dir" >>"$work/log" 2>&1 &&
    h5ls -r "$out" >>"$work/log" 2>&1 &&
    grep -q '^/model/model.layers.1.mlp.down_proj.weight  *Dataset {16, 24}' "$work/log" &&
    [ ! -e "$out.tmp" ]; then
    pass "$name"
  else
    fail "$name"
  fi
}

# expect_fail NAME DIR PATTERN...: import exits non-zero within 20 s, prints every PATTERN (fixed
# strings) and leaves neither the output nor its temporary file behind.
expect_fail() {
  local name=$1 dir=$2 out="$work/$1.h5" rc=0
  shift 2
  timeout 20 "$GORP" import-hf "$dir" "$out" >"$work/log" 2>&1 || rc=$?
  local ok=1
  [ "$rc" -ne 0 ] || ok=0
  for pattern in "$@"; do grep -qF -- "$pattern" "$work/log" || ok=0; done
  [ ! -e "$out" ] && [ ! -e "$out.tmp" ] || ok=0
  if [ $ok = 1 ]; then pass "$name"; else fail "$name (exit $rc; wanted: $*)"; fi
}

# every fixture in one python run; the broken ones are damaged below
"$GORP_PYTHON" "$work/make_hf.py" <<EOF
$work/single
$work/tied --tie --lm-head --inv-freq --dtype bf16
$work/sharded --shards --special
$work/nofile
$work/shape --transpose model.layers.0.mlp.gate_proj.weight
$work/i64 --int64 model.norm.weight
$work/missing --drop model.layers.1.self_attn.k_proj.weight
$work/extra --extra model.layers.0.self_attn.q_proj.bias
$work/untied_no_head --drop lm_head.weight
$work/nokey --config-drop hidden_size
$work/scaling --config-set 'rope_scaling={"type":"linear","factor":2.0}'
$work/noconfig
$work/lostshard --shards
$work/deep --config-set num_hidden_layers=477218589
$work/wide --config-set num_attention_heads=65536 --config-set head_dim=65536 --config-set num_key_value_heads=1
$work/hugeeps --config-set rms_norm_eps=1e300
$work/hugetheta --config-set rope_theta=1e300
$work/ropeparams --config-drop rope_theta --config-set 'rope_parameters={"rope_theta":100000.0,"rope_type":"default"}'
$work/ropeyarn --config-drop rope_theta --config-set 'rope_parameters={"rope_theta":100000.0,"rope_type":"yarn"}'
$work/ropeconflict --config-set 'rope_parameters={"rope_theta":100000.0,"rope_type":"default"}'
$work/ropefactor --config-drop rope_theta --config-set 'rope_parameters={"rope_theta":100000.0,"rope_type":"default","factor":2.0}'
$work/overlap
$work/dupheader
$work/dupconfig
$work/dirconfig
$work/fifoweights
EOF
rm "$work/nofile/model.safetensors" "$work/noconfig/config.json" \
  "$work/lostshard/model-00002-of-00002.safetensors"
# hostile files: a directory where config.json belongs, a FIFO where the weights belong (a
# blocking open would hang: every import below runs under timeout 20), a key twice in
# config.json (Python keeps the last, cJSON the first)
rm "$work/dirconfig/config.json" "$work/fifoweights/model.safetensors"
mkdir "$work/dirconfig/config.json"
mkfifo "$work/fifoweights/model.safetensors"
sed -i 's/"hidden_size": 16,/"hidden_size": 16, "hidden_size": 32,/' "$work/dupconfig/config.json"
# headers rewritten in place: two tensors sharing bytes; a tensor named twice
"$GORP_PYTHON" - "$work" <<'EOF'
import json, struct, sys
w = sys.argv[1]
def rewrite(path, edit):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    text = edit(json.loads(raw[8:8 + n]), raw[8:8 + n].decode())
    open(path, "wb").write(struct.pack("<Q", len(text)) + text.encode() + raw[8 + n:])
def overlap(h, _):
    a, b = "model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight"
    h[b]["data_offsets"] = h[a]["data_offsets"]
    return json.dumps(h)
def twice(h, text):
    name = "model.norm.weight"
    entry = json.dumps({name: h[name]})[1:-1]
    return text.rstrip()[:-1] + ", " + entry + "}"
rewrite(w + "/overlap/model.safetensors", overlap)
rewrite(w + "/dupheader/model.safetensors", twice)
EOF
# hand-made headers: length past the end, not JSON, offsets past the data
mkdir "$work/biglen" "$work/notjson" "$work/badoffsets"
for d in biglen notjson badoffsets; do cp "$work/single/config.json" "$work/$d/"; done
"$GORP_PYTHON" - "$work" <<'EOF'
import json, struct, sys
w = sys.argv[1]
open(w + "/biglen/model.safetensors", "wb").write(struct.pack("<Q", 10**6) + b"{}")
open(w + "/notjson/model.safetensors", "wb").write(struct.pack("<Q", 10) + b"not json!!")
h = json.dumps({"model.norm.weight": {"dtype": "F32", "shape": [16], "data_offsets": [0, 4096]}})
open(w + "/badoffsets/model.safetensors", "wb").write(
    struct.pack("<Q", len(h)) + h.encode() + bytes(64))
EOF

# --- imports that work ---
expect_ok single_f32_untied "$work/single"
expect_ok tied_bf16_ignores_lm_head_and_inv_freq "$work/tied"
expect_ok sharded_f16_bf16_with_inf_nan_subnormals "$work/sharded"
expect_ok rope_parameters_transformers5 "$work/ropeparams"

# --- bad weights ---
expect_fail missing_safetensors "$work/nofile" "$work/nofile" "model.safetensors"
expect_fail header_length_beyond_file "$work/biglen" "$work/biglen/model.safetensors" \
  "header length"
expect_fail header_not_json "$work/notjson" "$work/notjson/model.safetensors" "not valid JSON"
expect_fail data_offsets_outside_data "$work/badoffsets" "$work/badoffsets/model.safetensors" \
  "model.norm.weight" "data_offsets"
expect_fail wrong_shape "$work/shape" "$work/shape/model.safetensors" \
  "model.layers.0.mlp.gate_proj.weight" "[16, 24], expected [24, 16]"
expect_fail unsupported_dtype_i64 "$work/i64" "$work/i64/model.safetensors" "model.norm.weight" \
  "I64"
expect_fail missing_tensor "$work/missing" "model.layers.1.self_attn.k_proj.weight" "missing"
expect_fail unknown_tensor "$work/extra" "model.layers.0.self_attn.q_proj.bias"
expect_fail untied_without_lm_head "$work/untied_no_head" "lm_head.weight"
expect_fail index_names_missing_shard "$work/lostshard" "model.safetensors.index.json" \
  "model-00002-of-00002.safetensors"

# --- bad config.json ---
expect_fail missing_config_key "$work/nokey" "$work/nokey/config.json" "hidden_size"
expect_fail rope_scaling_refused "$work/scaling" "$work/scaling/config.json" "rope_scaling" \
  "not supported"
expect_fail missing_config "$work/noconfig" "$work/noconfig/config.json"

# --- hostile input: sizes that overflowed, non-finite floats, overlaps, duplicates, FIFOs ---
expect_fail layers_past_limit "$work/deep" "num_hidden_layers = 477218589 is over gorp's limit of 65536"
expect_fail heads_times_dim_past_int "$work/wide" "num_attention_heads x head_dim = 65536 x 65536"
expect_fail rms_norm_eps_1e300 "$work/hugeeps" "$work/hugeeps/config.json" \
  '"rms_norm_eps" = 1e+300 is outside the range of a float32'
expect_fail rope_theta_1e300 "$work/hugetheta" '"rope_theta" = 1e+300 is outside the range'
expect_fail rope_type_yarn_refused "$work/ropeyarn" "$work/ropeyarn/config.json" \
  'rope_parameters.rope_type "yarn" is not implemented'
expect_fail rope_theta_conflict "$work/ropeconflict" \
  "rope_parameters.rope_theta = 100000 disagrees with the top-level rope_theta = 10000"
expect_fail rope_parameters_factor "$work/ropefactor" "rope_parameters.factor is not supported"
expect_fail overlapping_offsets "$work/overlap" "$work/overlap/model.safetensors" \
  "'model.layers.0.input_layernorm.weight'" "'model.layers.0.post_attention_layernorm.weight'" \
  "overlap"
expect_fail duplicate_tensor_in_header "$work/dupheader" 'duplicate key "model.norm.weight"'
expect_fail duplicate_config_key "$work/dupconfig" "$work/dupconfig/config.json" \
  'duplicate key "hidden_size"'
expect_fail config_is_a_directory "$work/dirconfig" "not a regular file (a directory)"
expect_fail weights_are_a_fifo "$work/fifoweights" "model.safetensors': not a regular file (a FIFO)"

# --- command line and output ---
rc=0
"$GORP" import-hf >"$work/log" 2>&1 || rc=$?
if [ "$rc" = 64 ] && grep -q "usage: gorp import-hf DIR OUT.h5" "$work/log"; then
  pass usage_without_arguments
else
  fail "usage_without_arguments (exit $rc)"
fi

rc=0
"$GORP" import-hf "$work/single" "$work/no/such/dir/out.h5" >"$work/log" 2>&1 || rc=$?
if [ "$rc" != 0 ] && grep -qF "$work/no/such/dir/out.h5" "$work/log"; then
  pass unwritable_output_named
else
  fail "unwritable_output_named (exit $rc)"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ] || exit 1
