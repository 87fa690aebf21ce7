#!/usr/bin/env bash
# gorp import-gguf on small GGUF files written byte by byte here (Python struct + numpy, no gguf
# package): valid llama files of every supported tensor type (F32, F16, BF16, Q8_0, Q4_0, Q4_1;
# v2 and v3; tied and untied; grouped-query and multi-head; alignment 32 and 64) import to exactly
# the values that ggml's block layouts give (dequantized here with numpy from the layouts, not
# from gorp's code), with llama.cpp's q/k row permutation undone: the F32 file is written from a
# Hugging Face model through convert_hf_to_gguf's permute, and its import must give that model
# back bit for bit. Then hostile files, each refused with exit 2 and a message naming the problem
# and leaving no output file: truncations, wrong magic and versions, huge counts, lengths, dims and
# offsets, bad value and tensor types, misaligned, overlapping and missing data, bad metadata; and
# random byte flips in the header, each of which must import or be refused (exit 0 or 2), never
# crash. Needs $GORP, $GORP_DATA (lib.bash) and $GORP_PYTHON (python with numpy and h5py).
. "$(dirname "$0")/lib.bash"
: "${GORP_PYTHON:?set GORP_PYTHON to a python with numpy and h5py}"

cat >"$work/make_gguf.py" <<'EOF'
"""Writes the valid files (valid/*.gguf with their expected tensors in *.npz), the hostile ones
(bad/*.gguf) and the byte flips (flip/*.gguf); prints one manifest line per hostile file:
NAME<TAB>PATTERN."""
import os, struct, sys
import numpy as np

out = sys.argv[1]
for d in ("valid", "bad", "flip"):
    os.makedirs(os.path.join(out, d), exist_ok=True)

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
FMT = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "?",
       U64: "Q", I64: "q", F64: "d"}
T_F32, T_F16, T_Q4_0, T_Q4_1, T_Q8_0, T_BF16 = 0, 1, 2, 3, 8, 30
LAYER = ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate",
         "ffn_up", "ffn_down"]
HF_LAYER = ["input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
            "self_attn.o_proj", "post_attention_layernorm", "mlp.gate_proj", "mlp.up_proj",
            "mlp.down_proj"]


def gstr(b):
    b = b.encode() if isinstance(b, str) else b
    return struct.pack("<Q", len(b)) + b


def value(t, v):
    if t == STR:
        return gstr(v)
    if t == ARR:
        et, items = v
        body = b"".join(gstr(x) if et == STR else struct.pack("<" + FMT[et], x) for x in items)
        return struct.pack("<IQ", et, len(items)) + body
    return struct.pack("<" + FMT[t], v)


class File:
    """A GGUF file as lists, serialized by bytes(); tests mutate the lists or the bytes."""

    def __init__(self, version=3, alignment=None):
        self.magic, self.version, self.alignment = b"GGUF", version, alignment or 32
        self.kv = []       # [key, type, value]
        self.tensors = []  # [name, ne, type, raw bytes, offset or None, header offset or None]
        self.n_tensors = self.n_kv = None  # override the counts

    def add(self, key, t, v):
        self.kv.append([key, t, v])

    def set(self, key, t, v):
        self.kv = [e for e in self.kv if e[0] != key] + [[key, t, v]]

    def drop(self, key):
        self.kv = [e for e in self.kv if e[0] != key]

    def layout(self):
        off = 0
        for t in self.tensors:
            if t[4] is None:
                t[4] = off
            off = -(-(t[4] + len(t[3])) // self.alignment) * self.alignment

    def __bytes__(self):
        self.layout()
        h = self.magic + struct.pack("<IQQ", self.version,
                                     len(self.tensors) if self.n_tensors is None else self.n_tensors,
                                     len(self.kv) if self.n_kv is None else self.n_kv)
        h += b"".join(gstr(k) + struct.pack("<I", t) + value(t, v) for k, t, v in self.kv)
        for name, ne, ty, raw, off, fake in self.tensors:
            h += gstr(name) + struct.pack("<I", len(ne)) + struct.pack("<%dQ" % len(ne), *ne)
            h += struct.pack("<IQ", ty, off if fake is None else fake)
        h += b"\0" * (-len(h) % self.alignment)
        data = bytearray()
        for name, ne, ty, raw, off, fake in self.tensors:
            end = off + len(raw)
            if len(data) < end:
                data += b"\0" * (end - len(data))
            data[off:end] = raw
        return h + bytes(data)


def f16(x):
    return np.asarray(x, np.float16)


def quantize(rng, ty, shape):
    """Random raw bytes of a tensor of this type (rows, cols) and their float32 values, computed
    from ggml's block layouts."""
    rows, cols = shape
    n = rows * cols
    if ty == T_F32:
        v = rng.standard_normal(n).astype(np.float32)
        return v.tobytes(), v.reshape(shape)
    if ty == T_F16:
        h = f16(rng.standard_normal(n))
        h[:3] = f16([6e-8, -0.0, 65504])  # a subnormal, -0, the largest half
        return h.tobytes(), h.astype(np.float32).reshape(shape)
    if ty == T_BF16:
        b = (rng.standard_normal(n).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
        return b.tobytes(), (b.astype(np.uint32) << 16).view(np.float32).reshape(shape)
    nb = n // 32
    d = f16(rng.uniform(-0.05, 0.05, nb))
    if ty == T_Q8_0:
        q = rng.integers(-128, 128, (nb, 32)).astype(np.int8)
        raw = b"".join(d[i].tobytes() + q[i].tobytes() for i in range(nb))
        v = q.astype(np.float32) * d.astype(np.float32)[:, None]
        return raw, v.reshape(shape)
    qs = rng.integers(0, 256, (nb, 16)).astype(np.uint8)
    nib = np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.float32)  # values 0-15, 16-31
    if ty == T_Q4_0:
        raw = b"".join(d[i].tobytes() + qs[i].tobytes() for i in range(nb))
        v = (nib - np.float32(8)) * d.astype(np.float32)[:, None]
        return raw, v.reshape(shape)
    m = f16(rng.uniform(-0.1, 0.1, nb))
    raw = b"".join(d[i].tobytes() + m[i].tobytes() + qs[i].tobytes() for i in range(nb))
    v = nib * d.astype(np.float32)[:, None] + m.astype(np.float32)[:, None]
    return raw, v.reshape(shape)


def permute(w, n_head):
    """convert_hf_to_gguf's LlamaModel.permute (Hugging Face rows -> llama.cpp's)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2) \
        .reshape(w.shape)


def unpermute(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2) \
        .reshape(w.shape)


def model(seed, ty, V=40, C=64, F=96, L=2, H=4, KV=2, tie=False, version=3, alignment=None,
          embed_ty=None):
    """A llama file whose linears are of type ty (norms F32, like llama.cpp's), and the Hugging
    Face tensors that importing it must give."""
    rng = np.random.default_rng(seed)
    D = C // H
    f = File(version, alignment)
    f.add("general.architecture", STR, "llama")
    f.add("general.name", STR, "fuzz")
    if alignment:
        f.add("general.alignment", U32, alignment)
    for k, t, v in [("block_count", U32, L), ("context_length", U32, 128),
                    ("embedding_length", U32, C), ("feed_forward_length", U32, F),
                    ("attention.head_count", U32, H), ("attention.head_count_kv", U32, KV),
                    ("rope.freq_base", F32, 100000.0),
                    ("attention.layer_norm_rms_epsilon", F32, 1e-5),
                    ("vocab_size", U32, V), ("rope.dimension_count", U32, D)]:
        f.add("llama." + k, t, v)
    # entries of every other type, which the reader must skip or keep
    for k, t, v in [("x.u8", U8, 7), ("x.i8", I8, -7), ("x.u16", U16, 7), ("x.i16", I16, -7),
                    ("x.u64", U64, 1 << 40), ("x.i64", I64, -(1 << 40)), ("x.f64", F64, 0.5),
                    ("x.bool", BOOL, True), ("x.f32s", ARR, (F32, [1.0, 2.0])),
                    ("x.empty", ARR, (U8, []))]:
        f.add(k, t, v)
    f.add("tokenizer.ggml.tokens", ARR, (STR, ["<t%d>" % i for i in range(V)]))
    f.add("tokenizer.ggml.token_type", ARR, (I32, [1] * V))
    hf = {}

    def tensor(name, hfname, shape, t, n_head=None):
        if t == T_F32 and n_head:
            # from the Hugging Face side, as convert_hf_to_gguf writes it
            w = rng.standard_normal(shape).astype(np.float32)
            raw, vals = permute(w, n_head).tobytes(), w
        else:
            raw, vals = quantize(rng, t, shape)
            if n_head:
                vals = unpermute(vals, n_head)
        ne = [shape[1], shape[0]] if shape[0] > 1 else [shape[1]]
        f.tensors.append([name, ne, t, raw, None, None])
        hf[hfname] = vals.reshape(-1) if len(ne) == 1 else vals

    tensor("token_embd.weight", "model.embed_tokens.weight", (V, C), embed_ty or ty)
    shapes = [(1, C), (H * D, C), (KV * D, C), (KV * D, C), (C, H * D), (1, C), (F, C), (F, C),
              (C, F)]
    for l in range(L):
        for s, (g, h) in enumerate(zip(LAYER, HF_LAYER)):
            t = T_F32 if shapes[s][0] == 1 else ty
            tensor("blk.%d.%s.weight" % (l, g), "model.layers.%d.%s.weight" % (l, h), shapes[s],
                   t, {1: H, 2: KV}.get(s))
    tensor("output_norm.weight", "model.norm.weight", (1, C), T_F32)
    if not tie:
        tensor("output.weight", "lm_head.weight", (V, C), ty)
    return f, hf


VALID = {
    "f32_untied_gqa_v3": dict(ty=T_F32),
    "f16_tied_gqa_v3": dict(ty=T_F16, tie=True),
    "bf16_untied_mha_v2": dict(ty=T_BF16, H=4, KV=4, version=2),
    "q8_0_tied_gqa_align64": dict(ty=T_Q8_0, tie=True, alignment=64),
    "q4_0_untied_gqa": dict(ty=T_Q4_0, KV=1),
    "q4_1_tied_q8_0_embedding": dict(ty=T_Q4_1, tie=True, embed_ty=T_Q8_0, H=2, KV=1),
}
for i, (name, kw) in enumerate(VALID.items()):
    f, hf = model(100 + i, **kw)
    with open(os.path.join(out, "valid", name + ".gguf"), "wb") as fh:
        fh.write(bytes(f))
    np.savez(os.path.join(out, "valid", name + ".npz"), **hf)

manifest = []


def bad(name, pattern, data):
    with open(os.path.join(out, "bad", name + ".gguf"), "wb") as fh:
        fh.write(data if isinstance(data, bytes) else bytes(data))
    manifest.append("%s\t%s" % (name, pattern))


def base(**kw):
    return model(7, T_Q4_1, tie=True, embed_ty=T_Q8_0, **kw)[0]


good = bytes(base())
# where the sections start, for truncations inside each: a 24-byte header, the metadata, the
# tensor infos, the data from the next multiple of 32
f = base()
f.layout()
kv_end = 24 + sum(len(gstr(k)) + 4 + len(value(t, v)) for k, t, v in f.kv)
info = b"".join(gstr(n) + struct.pack("<I", len(ne)) + struct.pack("<%dQ" % len(ne), *ne) +
                struct.pack("<IQ", t, o) for n, ne, t, r, o, _ in f.tensors)
data_start = -(-(kv_end + len(info)) // 32) * 32
for cut in (0, 3, 4, 10, 20, 30, kv_end // 3, kv_end - 1, kv_end + 5, kv_end + len(info) // 2,
            data_start, data_start + 100, len(good) - 1):
    bad("truncated_at_%d" % cut, "truncated|outside the data region|cannot fit", good[:cut])

f = base(); f.magic = b"GGUX"; bad("magic", "not a GGUF file", f)
f = base(); f.version = 1; bad("version_1", "GGUF version 1 is not supported", f)
f = base(); f.version = 99; bad("version_99", "GGUF version 99 is not supported", f)
f = base(); f.version = 3 << 24; bad("big_endian", "version 50331648 is not supported", f)
f = base(); f.n_tensors = 1 << 63; bad("huge_tensor_count", "tensors is over gorp's limit", f)
f = base(); f.n_tensors = 100000; bad("tensor_count_past_end", "cannot fit", f)
f = base(); f.n_kv = 1 << 40; bad("huge_kv_count", "metadata entries is over gorp's limit", f)
f = base(); f.n_kv = 4096; bad("kv_count_past_end", "cannot fit|truncated", f)
g = bytearray(good); g[24:32] = struct.pack("<Q", 1 << 62)
bad("huge_key_length", "key of metadata entry 0: a string of 4611686018427387904 bytes is over", g)
g = bytearray(good); g[24:32] = struct.pack("<Q", 60000)
bad("key_past_end", "key of metadata entry 0 needs 60000 bytes", g)
g = bytearray(good); arch = 24 + len(gstr("general.architecture")) + 4
g[arch:arch + 8] = struct.pack("<Q", 1 << 63)
bad("huge_string_value", "general.architecture' needs 9223372036854775808 bytes", g)
f = base(); f.set("tokenizer.ggml.tokens", ARR, (STR, []))
raw = bytes(f); i = raw.index(b"tokenizer.ggml.tokens") + len("tokenizer.ggml.tokens") + 8
raw = raw[:i] + struct.pack("<Q", 1 << 60) + raw[i + 8:]
bad("huge_array_count", "array elements cannot fit", raw)
raw = bytearray(good); i = raw.index(b"general.name") + len("general.name")
raw[i:i + 4] = struct.pack("<I", 13); bad("value_type_13", "'general.name' has value type 13, which GGUF does not define", bytes(raw))
raw = bytes(base()); i = raw.index(b"x.f32s") + len("x.f32s") + 4
raw = raw[:i] + struct.pack("<I", 99) + raw[i + 4:]
bad("array_type_99", "x.f32s' has value type 99", raw)
f = base(); f.add("x.nested", ARR, (U32, [])); raw = bytes(f)
i = raw.index(b"x.nested") + len("x.nested") + 4
bad("nested_array", "array of arrays", raw[:i] + struct.pack("<I", ARR) + raw[i + 4:])
raw = bytes(base()); i = raw.index(b"x.bool") + len("x.bool") + 4
bad("bool_2", "a bool must be 0 or 1", raw[:i] + b"\x02" + raw[i + 1:])
f = base(); f.add("general.name", STR, "again"); bad("duplicate_key", "key 'general.name' appears twice", f)
f = base(); f.kv[1][0] = "general\0name"; bad("nul_in_key", "NUL byte inside a string", f)
f = base(); f.tensors[3][2] = 99; bad("tensor_type_99", "type id 99, which ggml does not define", f)
f = base(); f.tensors[3][2] = 12; bad("tensor_q4_k", "blk.0.attn_k.weight has type Q4_K, which gorp cannot dequantize", f)
f = base(); f.tensors[3][2] = 4; bad("tensor_type_retired", "type id 4, which ggml does not define", f)
f = base(); f.tensors[1][1] = [64, 1, 1, 1, 1]; bad("five_dims", "has 5 dimensions", f)
f = base(); f.tensors[1][1] = []; bad("zero_dims", "has 0 dimensions", f)
f = base(); f.tensors[2][1] = [1 << 40, 1 << 40]; bad("dims_overflow", "dimensions too large", f)
f = base(); f.tensors[2][1] = [1 << 63, 1]; bad("dim_over_int64", "dimensions too large", f)
f = base(); f.tensors[2][1] = [48, 64]; bad("row_not_blocks", "row length 48 is not a multiple of Q4_1's block of 32", f)
f = base(); f.layout(); f.tensors[5][4] += 8; bad("misaligned", "data offset [0-9]+ is not a multiple of the alignment 32", f)
f = base(); f.tensors[5][5] = 1 << 40
bad("offset_past_end", "blk.0.attn_output.weight: [0-9]+ bytes at data offset 1099511627776 lie outside", f)
f = base(); f.layout(); f.tensors[6][4] = f.tensors[5][4]; bad("overlap", "overlap", f)
f = base(alignment=64); f.set("general.alignment", U32, 0); bad("alignment_0", "general.alignment = 0 is not a power of two", f)
f = base(alignment=64); f.set("general.alignment", U32, 48); f.alignment = 48; bad("alignment_48", "not a power of two", f)
f = base(alignment=64); f.set("general.alignment", U64, 64); bad("alignment_u64", "general.alignment must be a uint32", f)
f = base(); f.tensors[1][0] = "blk.0." + "x" * 64; bad("long_name", "a string of 70 bytes is over the limit of 63", f)
f = base(); f.set("general.architecture", STR, "gpt2"); bad("arch_gpt2", "\"gpt2\"; gorp imports \"llama\" only", f)
f = base(); f.drop("general.architecture"); bad("arch_missing", "general.architecture \\(a string\\) is missing", f)
f = base(); f.drop("llama.block_count"); bad("block_count_missing", "required metadata key llama.block_count is missing", f)
f = base(); f.set("llama.block_count", I32, -1); bad("block_count_negative", "llama.block_count = -1 is out of range", f)
f = base(); f.set("llama.block_count", U64, 1 << 40); bad("block_count_huge", "llama.block_count = 1099511627776 is out of range", f)
f = base(); f.set("llama.block_count", F32, 2.0); bad("block_count_float", "llama.block_count must be an integer", f)
f = base(); f.set("llama.block_count", U32, 3); bad("block_count_3", "a model of [0-9]+ parameters, which needs at least", f)
f = base(); f.set("llama.attention.head_count", U32, 0); bad("heads_0", "must be a positive integer", f)
f = base(); f.set("llama.embedding_length", U32, 1 << 16); bad("huge_embedding", "a model of [0-9]+ parameters, which needs at least [0-9]+ bytes", f)
f = base(); f.set("llama.rope.freq_base", F64, 1e300); bad("rope_theta_inf", "outside the range of a float32", f)
f = base(); f.set("llama.rope.freq_base", STR, "1e4"); bad("rope_theta_string", "must be a float32 or float64", f)
f = base(); f.add("llama.rope.scaling.type", STR, "linear"); bad("rope_scaling", "rope.scaling.type is set", f)
f = base(); f.add("llama.expert_count", U32, 8); bad("experts", "dense models only", f)
f = base(); f.set("llama.rope.dimension_count", U32, 8); bad("partial_rope", "rotates whole heads", f)
f = base(); f.set("llama.vocab_size", U32, 41); bad("vocab_mismatch", "llama.vocab_size = 41, but token_embd.weight has 40 rows", f)
f = base(); f.set("tokenizer.ggml.tokens", ARR, (STR, ["a"])); bad("tokens_mismatch", "tokenizer.ggml.tokens must be an array of the 40 tokens", f)
f = base(); del f.tensors[8]; bad("missing_tensor", "tensor blk.0.ffn_up.weight \\(model.layers.0.mlp.up_proj.weight\\) is missing", f)
f = base(); f.tensors = [t for t in f.tensors if t[0] != "output_norm.weight"]; bad("missing_norm", "tensor output_norm.weight \\(model.norm.weight\\) is missing", f)
f = base(); f.tensors = [t for t in f.tensors if t[0] != "token_embd.weight"]; bad("missing_embedding", "tensor token_embd.weight is missing", f)
f = base(); f.tensors.append(["rope_freqs.weight", [32], T_F32, b"\0" * 128, None, None]); bad("extra_tensor", "rope_freqs.weight is not part of the 2-layer llama model", f)
f = base(); f.tensors.append(list(f.tensors[3][:4]) + [None, None]); bad("duplicate_tensor", "blk.0.attn_k.weight appears twice", f)
f = base(); f.tensors[3][1] = [64, 64]; f.tensors[3][3] = f.tensors[2][3]; bad("wrong_shape", "blk.0.attn_k.weight has shape \\[64, 64\\], expected \\[64, 32\\]", f)
f = base(); f.tensors[2][0] = "blk.00.attn_q.weight"; bad("alias_name", "blk.00.attn_q.weight is not part of", f)
f = base(); f.tensors[2][0] = "blk.2.attn_q.weight"; bad("layer_out_of_range", "blk.2.attn_q.weight is not part of", f)
f = base(); f.tensors[0][1] = [64 * 40]; bad("embedding_1d", "token_embd.weight must be a matrix", f)
f = base(); f.tensors[1][1] = [32]
bad("norm_shape", "blk.0.attn_norm.weight has shape \\[32\\], expected \\[64\\]", f)

# random single-byte changes in the header: import or a clean refusal, never a crash
rng = np.random.default_rng(2024)
for i in range(24):
    g = bytearray(good)
    for _ in range(1 + i % 3):
        g[int(rng.integers(0, data_start))] = int(rng.integers(0, 256))
    with open(os.path.join(out, "flip", "flip_%02d.gguf" % i), "wb") as fh:
        fh.write(bytes(g))
print("\n".join(manifest))
EOF

cat >"$work/check.py" <<'EOF'
"""Compares each imported valid file with its expected tensors, bit for bit, and the
architecture with the metadata."""
import os, sys
import h5py, numpy as np
bad = 0
for path in sys.argv[1:]:
    name = path[:-len(".h5")]
    short = os.path.basename(name)
    want = np.load(name + ".npz")
    with h5py.File(path, "r") as f:
        g = f["model"]
        names = sorted(k for k in g.keys())
        if names != sorted(want.files):
            print("FAIL %s: tensors %s, expected %s" % (short, names, sorted(want.files)))
            bad += 1
            continue
        diff = [k for k in want.files
                if g[k].shape != want[k].shape or
                not np.array_equal(g[k][...].view(np.uint32), want[k].view(np.uint32))]
        a = g.attrs
        tie = "_tied" in name
        cfg_ok = (int(a["tie_word_embeddings"]) == tie and float(a["rope_theta"]) == 100000.0 and
                  np.float32(a["rms_norm_eps"]) == np.float32(1e-5) and
                  int(a["max_position_embeddings"]) == 128 and int(a["vocab_size"]) == 40)
    if diff or not cfg_ok:
        print("FAIL %s: %s differ from the dequantized reference; config %s" %
              (short, diff[:4], "ok" if cfg_ok else "wrong: " + str(dict(a))))
        bad += 1
    else:
        print("PASS %s: %d tensors bit for bit (q/k permutation undone), config" %
              (short, len(want.files)))
sys.exit(1 if bad else 0)
EOF

"$GORP_PYTHON" "$work/make_gguf.py" "$work" >"$work/manifest.tsv" || { fail "make_gguf.py"; finish; exit; }

# valid files: exit 0, then every tensor against the reference
outs=()
for g in "$work"/valid/*.gguf; do
  h5=${g%.gguf}.h5
  if "$GORP" import-gguf "$g" "$h5" >"$work/out" 2>"$work/err" && grep -q "^import-gguf: " "$work/out"; then
    outs+=("$h5")
  else
    fail "$(basename "$g"): import failed"
    sed 's/^/    /' "$work/err"
  fi
done
if [ ${#outs[@]} -gt 0 ]; then
  while read -r line; do
    case $line in PASS*) pass "${line#PASS }" ;; FAIL*) fail "${line#FAIL }" ;; esac
  done < <("$GORP_PYTHON" "$work/check.py" "${outs[@]}" || true)
fi

# hostile files: exit 2, the message, no output file (nor its temporary)
while IFS=$'\t' read -r name pattern; do
  out=$work/bad/$name.h5
  rc=0
  "$GORP" import-gguf "$work/bad/$name.gguf" "$out" </dev/null >/dev/null 2>"$work/err" || rc=$?
  if [ "$rc" != 2 ]; then
    fail "$name: exit $rc, expected 2"
    sed 's/^/    /' "$work/err"
  elif ! grep -Eq -- "$pattern" "$work/err"; then
    fail "$name: stderr lacks /$pattern/:"
    sed 's/^/    /' "$work/err"
  elif [ -e "$out" ] || [ -e "$out.tmp" ]; then
    fail "$name: refused but left $out"
  else
    pass "$name: exit 2, $(grep -m1 'gorp: error' "$work/err" | cut -c1-150)"
  fi
done <"$work/manifest.tsv"

# byte flips: exit 0 or 2 with a message, never a signal or a sanitizer report
n_ok=0 n_refused=0
for g in "$work"/flip/*.gguf; do
  rc=0
  "$GORP" import-gguf "$g" "${g%.gguf}.h5" >/dev/null 2>"$work/err" || rc=$?
  if [ "$rc" = 0 ]; then
    n_ok=$((n_ok + 1))
  elif [ "$rc" = 2 ] && grep -q "gorp: error" "$work/err"; then
    n_refused=$((n_refused + 1))
  else
    fail "$(basename "$g"): exit $rc"
    sed 's/^/    /' "$work/err" | head -20
  fi
done
pass "byte flips: $n_ok imported, $n_refused refused, no other exit"

finish
