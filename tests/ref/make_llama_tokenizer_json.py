"""Writes LLaMA-2's tokenizer.json from the SentencePiece tokenizer.model in the shared data.

Test fixture (tests/ref/test_tokenizer_vs_hf.py): the shared data folder has only
tokenizers/llama2/tokenizer.model, and gorp reads Hugging Face tokenizer.json files, so the
fixture converts it offline with transformers (pinned 4.57.6 by scripts/setup.sh) + sentencepiece
+ protobuf, into a folder the caller names (a temporary or build folder: the shared folder is
read-only in CI).

Variants:
  legacy      LlamaTokenizerFast.from_pretrained(<dir with tokenizer.model>, from_slow=True):
              normalizer Prepend("▁") + Replace(" " -> "▁"), no pre-tokenizer, BPE with byte
              fallback, decoder Replace/ByteFallback/Fuse/Strip. This is the file the hub's
              Llama-2 repositories ship and it encodes as SentencePiece itself does.
  nonlegacy   the same with legacy=False, add_prefix_space=True: no normalizer, a Metaspace
              pre-tokenizer (prepend_scheme "first", split false). transformers 5.x writes this
              one by default; it differs from SentencePiece on leading spaces and after special
              tokens, so gorp's LLaMA runs should use the legacy file.
Note: LlamaTokenizerFast(vocab_file=...) without add_prefix_space writes a legacy file WITHOUT the
Prepend normalizer (transformers 4.57 passes add_prefix_space=None to the slow tokenizer), which
is not LLaMA's tokenization; that is why this script uses from_pretrained.

Usage: python make_llama_tokenizer_json.py OUT.json [--variant legacy|nonlegacy] [--model PATH]
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import warnings


def default_model_path():
    data = os.environ.get("GORP_DATA")
    if not data:
        src = os.environ.get("GORP_SRC") or os.path.join(os.path.dirname(__file__), "..", "..")
        data = os.path.join(src, "..", "shared", "data")
    return os.path.join(data, "tokenizers", "llama2", "tokenizer.model")


def make(out_path, variant="legacy", model_path=None):
    """Converts tokenizer.model to out_path; returns the parsed JSON."""
    model_path = model_path or default_model_path()
    if not os.path.isfile(model_path):
        raise FileNotFoundError(f"LLaMA-2 tokenizer.model not found at {model_path}")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from transformers import LlamaTokenizerFast
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        with tempfile.TemporaryDirectory() as d:
            shutil.copy(model_path, os.path.join(d, "tokenizer.model"))
            kwargs = {"from_slow": True}
            if variant == "legacy":
                kwargs["legacy"] = True
            elif variant == "nonlegacy":
                kwargs.update(legacy=False, add_prefix_space=True)
            else:
                raise ValueError(f"unknown variant {variant!r}")
            tok = LlamaTokenizerFast.from_pretrained(d, **kwargs)
            tok.backend_tokenizer.save(out_path)
    with open(out_path, encoding="utf-8") as f:
        j = json.load(f)
    norm = json.dumps(j.get("normalizer"))
    if variant == "legacy" and '"Prepend"' not in norm:
        raise RuntimeError(f"converted LLaMA tokenizer lacks the Prepend normalizer: {norm}")
    if variant == "nonlegacy" and (j.get("pre_tokenizer") or {}).get("type") != "Metaspace":
        raise RuntimeError(f"non-legacy conversion has no Metaspace pre-tokenizer: {j.get('pre_tokenizer')}")
    return j


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--variant", default="legacy", choices=["legacy", "nonlegacy"])
    ap.add_argument("--model", default=None, help="tokenizer.model (default: the shared data's)")
    a = ap.parse_args()
    make(a.out, a.variant, a.model)
    print(f"wrote {a.out} ({a.variant})")


if __name__ == "__main__":
    sys.exit(main())
