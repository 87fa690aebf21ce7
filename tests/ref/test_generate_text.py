"""`gorp generate --text-file --tokenizer [--chat]` on the real model (SmolLM2-135M-Instruct,
scripts/get_model.sh smollm2-135m, as tests/ref/test_smollm2_gguf.py fetches it) against an
independent pipeline: the `tokenizers` library encodes each prompt (encode(text,
add_special_tokens=True): SmolLM2's tokenizer.json has no post-processor, so no BOS, as its GGUF's
add_bos_token = false says; with the chat template, the rendered before + text + after, which
tests/ref/test_tokenizer_vs_hf.py shows equal to transformers' apply_chat_template), the PyTorch
reference (llama_ref.py on the GGUF's weights dequantized by gguf-py, test_smollm2_gguf.py's
read_reference) decodes greedily without a KV cache until the model's end id (<|im_end|>) or the
tokenizer's EOS (<|endoftext|>), and the library decodes the new ids (skip_special_tokens=True).

Checked per prompt: `gorp generate --tokens` on the library's ids gives the reference's ids, and
the `--text-file` line is the library's decoded text (newlines written as \\n). A difference is
accepted only after a near tie (the reference's two best logits within 1e-3; the logits agree to
5e-4, test_smollm2_gguf.py), and then the rest of that prompt is not compared."""
import json
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(__file__))
import llama_ref as ref  # noqa: E402
import test_smollm2_gguf as smol  # noqa: E402

NEW = 24
TIE = 1e-3
PROMPTS = ["The capital of France is", "Review: the food was cold and the service was rude. "
           "Is this review positive or negative? Answer:", "def fibonacci(n):"]
CHAT = ["What is the capital of France?", "Write one sentence about the sea."]

checks = ref.Checks()
report = checks.report


def greedy(model, ids, stops):
    """The reference's new ids (up to NEW, stopping before a stop id) and each step's margin."""
    ids, out, margins = torch.tensor(ids), [], []
    with torch.no_grad():
        for _ in range(NEW):
            top = torch.topk(model(ids[None, :])[0, -1], 2)
            t = int(top.indices[0])
            margins.append(float(top.values[0] - top.values[1]))
            if t in stops:
                break
            out.append(t)
            ids = torch.cat([ids, top.indices[:1]])
    return out, margins


def escape(text):
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def check(what, h5, tok, tok_path, model, texts, wrap, chat, work):
    path = os.path.join(work, "prompts.txt")
    with open(path, "w") as f:
        f.write("".join(t + "\n" for t in texts))
    args = ["--tokenizer", tok_path] + (["--chat", chat] if chat else [])
    lines = ref.gorp("generate", "--model", h5, "--max-new", str(NEW), "--text-file", path,
                     *args).split("\n")
    report(len(lines) == len(texts) + 1 and lines[-1] == "",
           f"{what}: one line per prompt ({len(texts)})")
    for s, text in enumerate(texts):
        ids = tok.encode(wrap(text), add_special_tokens=True).ids
        want, margins = greedy(model, ids, {2, 0})
        ref.write_ids(os.path.join(work, "p.ids"), torch.tensor([ids]))
        got = [int(i) for i in ref.gorp("generate", "--model", h5, "--max-new", str(NEW),
                                        "--eos", "0", "--tokens",
                                        os.path.join(work, "p.ids")).split()]
        got = [i for i in got if i not in (0, 2)]
        first = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]), None)
        if first is None and len(got) != len(want):
            first = min(len(got), len(want))
        tie = first is not None and first < len(margins) and margins[first] < TIE
        n = len(want) if first is None else first
        text_want = escape(tok.decode(want, skip_special_tokens=True))
        if first is None:
            same = lines[s] == text_want
        else:  # after a near tie: the line starts with the text of the ids that agree
            same = tie and lines[s].startswith(escape(tok.decode(want[:n],
                                                                 skip_special_tokens=True)))
        report((first is None or tie) and same,
               f"{what} {s + 1}: {len(ids)} prompt ids, {len(want)} new ids equal the "
               f"reference's" + ("" if first is None else
                                 f" up to a near tie at {first} (margin {margins[first]:.1e})") +
               f"; text {lines[s][:60]!r}",
               f"gorp {got}\nref  {want}\nline {lines[s]!r}\nwant {text_want!r}")


def main():
    torch.set_num_threads(1)
    h5, cache = smol.get_model()
    if not h5:
        return checks.finish()
    from tokenizers import Tokenizer
    tok_path = os.path.join(cache, "smollm2-135m.tokenizer.json")
    chat = os.path.join(cache, "smollm2-135m.chat.json")
    tok = Tokenizer.from_file(tok_path)
    with open(chat) as f:
        c = json.load(f)
    cfg, tensors = smol.read_reference(os.path.join(cache, smol.GGUF))
    model = smol.reference_model(cfg, tensors)
    with tempfile.TemporaryDirectory() as work:
        check("text", h5, tok, tok_path, model, PROMPTS, lambda t: t, None, work)
        check("chat", h5, tok, tok_path, model, CHAT, lambda t: c["before"] + t + c["after"],
              chat, work)
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
