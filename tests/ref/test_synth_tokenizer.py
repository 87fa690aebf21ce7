"""The synthetic suite's tokenizer.json against the Hugging Face `tokenizers` library.

The unit-test binary test_synth, in driver mode (GORP_SYNTH_OUT=<dir>; see
tests/unit/test_synth.c), writes the suite's tokenizer.json with synth_write_tokenizer and
cases.json: prompts and prompt + " " + label texts of 50 items of every one of the 15 synthetic
tasks, and 400 pretraining examples (prompt + " " + answer), each with gorp's C encoding and
decoding. Here `Tokenizer.from_file` must load that file, give the same vocabulary size and
special ids, encode every text to the same ids (`encode(text, add_special_tokens=False).ids`),
never produce <unk>, and decode the ids to the same string (`decode(ids)`, tokens joined by one
space since the file has no decoder). The pre-tokenizer is also checked on its own: its words
are the tokens the C side splits, one per id.

The binary is $GORP_TEST_BIN_DIR/test_synth, else <dir of $GORP>/tests/test_synth, else
build/tests/test_synth.
"""

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("GORP_SRC") or os.path.join(HERE, "..", "..")

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def driver_path():
    cands = []
    if os.environ.get("GORP_TEST_BIN_DIR"):
        cands.append(os.path.join(os.environ["GORP_TEST_BIN_DIR"], "test_synth"))
    if os.environ.get("GORP"):
        cands.append(os.path.join(os.path.dirname(os.environ["GORP"]), "tests", "test_synth"))
    cands.append(os.path.join(SRC, "build", "tests", "test_synth"))
    for c in cands:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    sys.exit(f"test_synth_tokenizer: the unit-test binary test_synth is not built (looked at {cands})")


def main():
    from tokenizers import Tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, GORP_SYNTH_OUT=tmp)
        r = subprocess.run([driver_path()], env=env, capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stdout[-3000:], r.stderr[-3000:])
            sys.exit("test_synth_tokenizer: the driver failed")
        path = os.path.join(tmp, "tokenizer.json")
        tok = Tokenizer.from_file(path)
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        with open(os.path.join(tmp, "cases.json"), encoding="utf-8") as f:
            cases = json.load(f)

    vocab = tok.get_vocab(with_added_tokens=True)
    size = max(vocab.values()) + 1
    if size != len(doc["model"]["vocab"]) or size != tok.get_vocab_size():
        fail(f"vocabulary size {size}, file {len(doc['model']['vocab'])}, library {tok.get_vocab_size()}")
    for name, want in (("<unk>", 0), ("<s>", 1), ("</s>", 2), ("<pad>", 3)):
        if tok.token_to_id(name) != want:
            fail(f"{name} has id {tok.token_to_id(name)}, want {want}")
    if sorted(vocab.values()) != list(range(size)):
        fail("ids are not dense 0..n-1")

    texts, c_ids, c_dec = cases["texts"], cases["ids"], cases["decoded"]
    if len(texts) != 15 * 50 * 2 + 400:
        fail(f"{len(texts)} cases, want {15 * 50 * 2 + 400}")
    pre = tok.pre_tokenizer
    bad = 0
    for text, ids, dec in zip(texts, c_ids, c_dec):
        enc = tok.encode(text, add_special_tokens=False)
        words = [w for w, _ in pre.pre_tokenize_str(text)]
        problems = []
        if enc.ids != ids:
            problems.append(f"ids differ:\n  hf {enc.ids}\n  c  {ids}")
        if 0 in enc.ids:
            problems.append("<unk> in the encoding")
        if len(words) != len(ids) or [vocab.get(w) for w in words] != ids:
            problems.append(f"pre-tokenizer words {words[:20]}... do not map one to one to the ids")
        hf_dec = tok.decode(enc.ids)
        if hf_dec != dec:
            problems.append(f"decode differs:\n  hf {hf_dec!r}\n  c  {dec!r}")
        if hf_dec != " ".join(words):
            problems.append("decode is not the words joined by single spaces")
        if problems:
            bad += 1
            if bad <= 3:
                fail(f"{text!r}: " + "; ".join(problems))
    if bad:
        fail(f"{bad} of {len(texts)} texts disagree")
    print(f"test_synth_tokenizer: {len(texts)} texts, vocabulary {size}, "
          f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
