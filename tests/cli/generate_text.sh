#!/usr/bin/env bash
# gorp generate --text/--text-file (docs/DATA.md "gorp generate on text") on a tiny random model
# with a WordLevel tokenizer.json whose template is "<s> $A" and two of whose words hold a newline
# and a backslash. Checked against the `tokenizers` library: each text prompt of different length
# is encoded as the library's encode(text, add_special_tokens=True) (<s> from the template), and
# the answer is what `gorp generate --tokens` gives on those ids (with --eos at the tokenizer's
# EOS), decoded by the library (skip_special_tokens=True), one line per prompt with '\', newline
# and carriage return escaped; --text of one prompt gives that prompt's line. Bad arguments are
# refused naming the option, the file or the line.
. "$(dirname "$0")/lib.bash"
: "${GORP_SRC:?GORP_SRC must name the source tree}"
export OMP_NUM_THREADS=1

# the model (8 ids, end id 2 in config.json) and the tokenizer
"$GORP_PYTHON" - "$work" "$GORP_SRC/tests/ref" <<'PY' || fail "could not write the model"
import json, os, sys
sys.path.insert(0, sys.argv[2])
import llama_ref as ref
work = sys.argv[1]
ref.save_hf(ref.make_model(ref.Config(8, 32, 88, 2, 4, 2), seed=6, std=0.5), f"{work}/hf")
vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "a": 3, "b": 4, "x\\y": 5, "new\nline": 6, "c": 7}
tok = {"version": "1.0", "truncation": None, "padding": None, "normalizer": None,
       "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False,
                         "rstrip": False, "normalized": False, "special": True}
                        for t, i in vocab.items() if t.startswith("<")],
       "pre_tokenizer": {"type": "WhitespaceSplit"}, "decoder": None,
       "post_processor": {"type": "TemplateProcessing",
                          "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                     {"Sequence": {"id": "A", "type_id": 0}}],
                          "pair": [{"Sequence": {"id": "A", "type_id": 0}}],
                          "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
       "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}}
with open(f"{work}/tok.json", "w") as f:
    json.dump(tok, f)
with open(f"{work}/plain.json", "w") as f:  # no template: an empty text has no ids
    json.dump(dict(tok, post_processor=None), f)
with open(f"{work}/prompts.txt", "w") as f:
    f.write("a b c\nc\nb a b a c a\n")
PY
"$GORP" import-hf "$work/hf" "$work/m.h5" >/dev/null || fail "import-hf"

gen() { "$GORP" generate --model "$work/m.h5" --max-new 16 "$@"; }
if gen --text-file "$work/prompts.txt" --tokenizer "$work/tok.json" --out "$work/text.out" \
  && gen --text "b a b a c a" --tokenizer "$work/tok.json" >"$work/one.out"; then
  pass "generate --text-file and --text ran"
else
  fail "generate --text-file / --text"
fi
[ "$(sed -n 3p "$work/text.out")" = "$(cat "$work/one.out")" ] && [ -s "$work/one.out" ] \
  && pass "--text gives the line --text-file gives for the same prompt" \
  || fail "--text: '$(cat "$work/one.out")', --text-file line 3: '$(sed -n 3p "$work/text.out")'"

# the reference: the library's ids through --tokens, the library's decode
"$GORP_PYTHON" - "$work" "$GORP" <<'PY' && pass "each line is the library's decode of --tokens on the library's ids (escapes included)" || fail "text answers differ from the reference"
import subprocess, sys
from tokenizers import Tokenizer
work, gorp = sys.argv[1], sys.argv[2]
tok = Tokenizer.from_file(f"{work}/tok.json")
prompts = open(f"{work}/prompts.txt").read().splitlines()
got = open(f"{work}/text.out").read().split("\n")
assert got[-1] == "" and len(got) == len(prompts) + 1, got
escaped = {"\\": 0, "\n": 0}
for s, text in enumerate(prompts):
    ids = tok.encode(text, add_special_tokens=True).ids
    assert ids[0] == 1 and len(ids) == len(text.split()) + 1, ids  # <s> from the template
    with open(f"{work}/p.ids", "w") as f:
        f.write(" ".join(map(str, ids)) + "\n")
    out = subprocess.run([gorp, "generate", "--model", f"{work}/m.h5", "--max-new", "16",
                          "--eos", "2", "--tokens", f"{work}/p.ids"], capture_output=True,
                         text=True, check=True).stdout.split()
    want = tok.decode([int(i) for i in out], skip_special_tokens=True)
    for c in escaped:
        escaped[c] += want.count(c)
    want = want.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    assert got[s] == want, (s, ids, out, got[s], want)
    print(f"prompt {s + 1}: {len(ids)} ids -> {len(out)} new: {got[s]!r}")
assert all(escaped.values()), f"the answers never hold a backslash and a newline: {escaped}"
PY

# bad arguments
T=(--tokenizer "$work/tok.json")
expect_error "--text without a tokenizer" "--text needs --tokenizer" gen --text "a b"
expect_error "--text and --tokens" "exactly one of --tokens, --text and --text-file \(got 2\)" \
  gen --text "a" --tokens "$work/p.ids" "${T[@]}"
expect_error "no prompts at all" "exactly one of --tokens, --text and --text-file \(got 0\)" gen
expect_error "--tokens with --chat" "--chat applies to --text/--text-file" \
  gen --tokens "$work/p.ids" --chat "$work/tok.json"
printf 'a\n\nb\n' >"$work/blank.txt"
expect_error "an empty line, no template" "prompt 2 is empty and the tokenizer .*plain.json puts no ids" \
  gen --text-file "$work/blank.txt" --tokenizer "$work/plain.json"
: >"$work/none.txt"
expect_error "an empty text file" "none.txt: no prompts" gen --text-file "$work/none.txt" "${T[@]}"
expect_error "a missing text file" "nowhere.txt.*cannot open" \
  gen --text-file "$work/nowhere.txt" "${T[@]}"
expect_error "a tokenizer larger than the model's vocabulary" \
  "vocab_size 8 is smaller than the tokenizer byte's 259 ids" gen --text "a" --tokenizer byte
expect_error "a prompt past the model's context" "could not encode prompt 1 .* in at most max_position_embeddings = 128 ids" \
  gen --text "$(printf 'a %.0s' $(seq 1 3000))" "${T[@]}"
echo '{"before": 1, "after": "", "end": "</s>"}' >"$work/c.json"
expect_error "a bad chat template" "c.json.*(key|JSON)" \
  gen --text "a" "${T[@]}" --chat "$work/c.json"
echo "$n_pass passed, $n_fail failed"
[ "$n_fail" = 0 ]
