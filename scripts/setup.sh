#!/usr/bin/env bash
# Set up the Python environment for ga in one command (Linux, Python >= 3.10 with pip):
#   1. PyTorch (TORCH_VERSION, the version the project is tested with),
#   2. DeepSpeed without its compiled ops and without pip's build isolation (its build imports the torch
#      installed in step 1; an isolated build would fetch a second, CUDA, torch),
#   3. this package, editable, with the test extras (pytest, playwright), which pulls in everything else in
#      pyproject.toml (matplotlib and jinja2 draw the run report).
# The report's DAG needs graphviz and the report's browser test Debian's chromium (system packages, see .ci/run).
# On a CPU-only machine, point pip at PyTorch's CPU-only wheel index for step 1 (PIP_EXTRA_INDEX_URL) to avoid
# downloading the CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}

"$PYTHON" -m pip install "torch==${TORCH_VERSION}"
DS_BUILD_OPS=0 "$PYTHON" -m pip install --no-build-isolation "deepspeed>=0.19.8"
"$PYTHON" -m pip install -e ".[dev]"
"$PYTHON" -c "import ga, torch, deepspeed, snakemake, matplotlib; print('ga', ga.__version__, '| torch', torch.__version__, '| deepspeed', deepspeed.__version__, '| matplotlib', matplotlib.__version__)"
