#!/usr/bin/env bash
# The peer of bench/bench_peer_step.py: PyTorch 2.x, transformers and PEFT from PyPI in a venv of
# their own (build/venv-torch2), apart from build/venv (Debian's torch 1.13, which the tests use).
# PyPI's torch wheel pulls the CUDA libraries (about 4 GB of disk, a few minutes); nothing of the
# test suite needs it.
#   bench/setup_torch2.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python3 -m venv "$root/build/venv-torch2"
"$root/build/venv-torch2/bin/pip" install -q torch==2.15.0 transformers==5.25.0 peft==0.21.2
"$root/build/venv-torch2/bin/python" -c 'import torch, transformers, peft; print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)'
