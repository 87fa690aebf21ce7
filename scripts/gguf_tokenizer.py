"""Writes the tokenizer.json of a GGUF model file, as transformers' own GGUF tokenizer conversion
makes it (AutoTokenizer.from_pretrained(folder, gguf_file=name)); scripts/get_model.sh runs it
next to `gorp import-gguf`. Not a converter of its own: the vocabulary, merges, pre-tokenizer and
special tokens are whatever transformers derives from the GGUF metadata (tokenizer.ggml.*), so
the file equals the tokenizer a transformers user gets for that GGUF; tests/ref/test_tokenizer_vs_hf.py
checks both that and gorp's C tokenizer against it.

One correction: transformers (4.57) gives every GGUF LLaMA tokenizer a post-processor that
prepends the BOS token, ignoring the file's tokenizer.ggml.add_bos_token; where the GGUF says
false (SmolLM2, whose BOS id 1 is <|im_start|>; llama.cpp honours the flag), the written file
has no post-processor, so that a reader following the tokenizer's template adds nothing. Encoding without special tokens is untouched by this.

Usage: gguf_tokenizer.py FILE.gguf OUT.tokenizer.json   (load(path) gives the transformers tokenizer)
Needs transformers with GGUF support (tested: 4.57.6), gguf and tokenizers; not torch: transformers refuses a GGUF
file without torch >= 2.1 because it may dequantize tensors, but the tokenizer reads metadata
only, so the check is lifted for this call (the venv's torch 1.13 is older).
"""

import os
import sys


def load(gguf):
    """transformers' fast tokenizer for the GGUF file gguf (a path)."""
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from transformers import AutoTokenizer

    gguf_utils.is_torch_available = lambda: True  # metadata only: see the header
    tok = AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(gguf)),
                                        gguf_file=os.path.basename(gguf))
    if not tok.is_fast:
        sys.exit(f"gguf_tokenizer: transformers gave a slow tokenizer ({type(tok).__name__}) for {gguf}")
    return tok


def adds_bos(gguf):
    """The GGUF's tokenizer.ggml.add_bos_token (None where the file has none)."""
    from gguf import GGUFReader

    field = GGUFReader(gguf).fields.get("tokenizer.ggml.add_bos_token")
    return None if field is None else bool(field.contents())


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: gguf_tokenizer.py FILE.gguf OUT.tokenizer.json")
    gguf, out = sys.argv[1], sys.argv[2]
    tok = load(gguf)
    if adds_bos(gguf) is False:
        tok.backend_tokenizer.post_processor = None  # see the header
    # through a temporary name, so that an interrupted run leaves no partial file under the cached one
    tok.backend_tokenizer.save(out + ".part")
    os.replace(out + ".part", out)


if __name__ == "__main__":
    main()
