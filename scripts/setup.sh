#!/usr/bin/env bash
# Installs every dependency of gorp (Debian packages, a Python venv with the test/post-processing
# packages) and builds it into build/. Idempotent: a second run only rebuilds what changed.
# Usage: scripts/setup.sh [--no-build]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

debs=(build-essential cmake pkg-config zlib1g-dev
      libopenmpi-dev openmpi-bin libscalapack-openmpi-dev libhdf5-openmpi-dev hdf5-tools
      libopenblas-dev libblas-dev liblapack-dev liblapacke-dev libdnnl-dev libinih-dev
      libcjson-dev clang-format
      python3 python3-venv python3-numpy python3-h5py python3-torch python3-matplotlib
      slurmctld slurmd slurm-client munge)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's torch/numpy/h5py are visible in the venv; pip adds what Debian lacks.
venv=build/venv
if [ ! -x "$venv/bin/python" ]; then
  mkdir -p build
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
# gguf: transformers' GGUF loader, the reference of tests/ref/test_smollm2_gguf.py, and its GGUF
# tokenizer conversion, which scripts/gguf_tokenizer.py (run by get_model.sh) uses; jinja2:
# transformers' apply_chat_template, which scripts/chat_template.py renders a model's template with
if ! "$venv/bin/python" -c "import safetensors, tokenizers, transformers, sentencepiece, google.protobuf, gguf, jinja2" 2>/dev/null; then
  "$venv/bin/pip" install -q --disable-pip-version-check "safetensors==0.8.0" "tokenizers==0.22.2" "transformers==4.57.6" "sentencepiece==0.2.1" "protobuf==5.29.5" "gguf==0.19.0" "jinja2==3.1.6" \
    || { echo "setup: pip could not install safetensors tokenizers transformers sentencepiece protobuf gguf jinja2" >&2; exit 1; }
fi

# tests/ref/test_export.py loads gorp's exports with transformers' LlamaForCausalLM and peft's
# PeftModel. transformers 4.57 runs its models only on torch >= 2.1, so they get a venv of their
# own on the same Debian torch 1.13: transformers 4.46.3 (the last that runs on it), peft 0.13.2
# and accelerate 0.34.2 (installed without dependency checks: they ask for torch >= 1.13.0, which
# Debian's 1.13.0a0 does not satisfy by version number), numpy pinned to Debian's (torch's ABI).
hf=build/venv-hf
[ -x "$hf/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$hf"
if ! "$hf/bin/python" -c "import transformers, peft, accelerate" 2>/dev/null; then
  "$hf/bin/pip" install -q --disable-pip-version-check "transformers==4.46.3" "tokenizers==0.20.3" "safetensors==0.8.0" "psutil==5.9.4" \
    "numpy==$(/usr/bin/python3 -c 'import numpy; print(numpy.__version__)')" \
    && "$hf/bin/pip" install -q --disable-pip-version-check --no-deps "peft==0.13.2" "accelerate==0.34.2" \
    || { echo "setup: pip could not install transformers 4.46.3, peft and accelerate into $hf" >&2; exit 1; }
fi

[ "${1:-}" = "--no-build" ] && exit 0
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGORP_PYTHON="$here/$venv/bin/python" \
  -DGORP_HF_PYTHON="$here/$hf/bin/python" >/dev/null
cmake --build build -j "$(nproc)"
echo "setup: built build/gorp"
