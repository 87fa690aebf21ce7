"""Renders a model's own chat template into the three strings gorp wraps a prompt in
(data.chat_template, docs/DATA.md): {"before", "after", "end"} around one user message and one
answer, as transformers' apply_chat_template renders them:

    before + <user message> + after + <answer> + end

gorp has no Jinja engine, so the template is rendered here once, by the reference implementation,
with sentinel strings in place of the message and the answer. A template that does not render a
conversation as exactly that (e.g. one that rewrites the message text, or puts the answer's
turn elsewhere) is refused rather than approximated.

Usage: chat_template.py MODEL OUT.json
  MODEL: a GGUF file (its tokenizer.chat_template, through scripts/gguf_tokenizer.py) or a
  Hugging Face model folder (its tokenizer_config.json / chat_template.jinja).
Needs transformers (tested: 4.57.6) and jinja2.
"""

import json
import os
import sys

USER, ANSWER = "\x00gorp-user\x00", "\x00gorp-answer\x00"


def load(model):
    if os.path.isdir(model):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(model)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gguf_tokenizer

    return gguf_tokenizer.load(model)


def render(tok):
    """(before, after, end) of tok's chat template."""
    if not tok.chat_template:
        sys.exit("chat_template: the model has no chat template")
    user = [{"role": "user", "content": USER}]
    prompt = tok.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    turn = tok.apply_chat_template(user + [{"role": "assistant", "content": ANSWER}], tokenize=False)
    if prompt.count(USER) != 1:
        sys.exit("chat_template: the template does not render the user message exactly once")
    before, after = prompt.split(USER)
    if not turn.startswith(prompt) or turn[len(prompt):].count(ANSWER) != 1 or \
            not turn[len(prompt):].startswith(ANSWER):
        sys.exit("chat_template: the template does not render the answer right after its generation "
                 "prompt; gorp cannot wrap prompts in it")
    end = turn[len(prompt) + len(ANSWER):]
    if not end.strip():
        sys.exit("chat_template: the template closes the answer with nothing")
    return before, after, end


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: chat_template.py MODEL OUT.json")
    model, out = sys.argv[1], sys.argv[2]
    before, after, end = render(load(model))
    doc = {"source": f"{os.path.basename(model)}: chat template rendered by transformers",
           "before": before, "after": after, "end": end}
    with open(out + ".part", "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    os.replace(out + ".part", out)


if __name__ == "__main__":
    main()
