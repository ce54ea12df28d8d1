#!/usr/bin/env bash
# Set up everything ga, its tests and its report need, in one command (Debian or Ubuntu, Python >= 3.10 with pip):
#   1. Debian packages (SYSTEM_PACKAGES), only those whose programs are missing, with apt-get: as root, or through
#      `sudo -n` (sudo without a password); otherwise the script stops and prints the one command to run first:
#        graphviz   `dot` draws the report's rule graph (ga/report/dag.py)
#        chromium   the report page's browser test opens it headless (tests/test_report_page.py)
#        tmux       tests/test_app.py drives `ga chat` under it as a person would
#        slurm-wlm, munge   the one-node SLURM cluster the SLURM profile's test starts (ga/testing/slurm_cluster.py)
#   2. PyTorch (TORCH_VERSION, the version the project is tested with),
#   3. DeepSpeed without its compiled ops and without pip's build isolation (its build imports the torch
#      installed in step 2; an isolated build would fetch a second, CUDA, torch),
#   4. this package, editable, with the dev extras (pytest, playwright, ruff, snakefmt, pre-commit), which pulls
#      in everything else in pyproject.toml (matplotlib and jinja2 draw the run report).
# Usage: bash scripts/setup.sh [--system-only | --python-only]. --python-only skips step 1 (e.g. in a conda
# environment with graphviz, or where an administrator installs the packages); the report then says on its page
# and in its log why a picture is missing, and the tests that need a missing program fail.
# On a CPU-only machine, point pip at PyTorch's CPU-only wheel index for step 2 (PIP_EXTRA_INDEX_URL) to avoid
# downloading the CUDA build.
set -euo pipefail
cd "${BASH_SOURCE[0]%/*}/.."
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
SYSTEM_PACKAGES=(slurm-wlm munge tmux graphviz chromium)
# the programs that show each package is installed (same order as SYSTEM_PACKAGES)
SYSTEM_PROGRAMS=("sbatch slurmctld slurmd" munged tmux dot chromium)

missing_system_packages() {
  local i program
  for i in "${!SYSTEM_PACKAGES[@]}"; do
    for program in ${SYSTEM_PROGRAMS[i]}; do  # the daemons sit in sbin, outside a user's PATH
      if ! PATH="$PATH:/usr/sbin:/sbin" command -v "$program" >/dev/null; then echo "${SYSTEM_PACKAGES[i]}"; break; fi
    done
  done
}

install_system_packages() {
  local missing
  mapfile -t missing < <(missing_system_packages)
  if ((${#missing[@]} == 0)); then echo "== system packages: all present (${SYSTEM_PACKAGES[*]})"; return; fi
  local install="apt-get install -y ${missing[*]}"
  local as_root=()
  if ((EUID != 0)); then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then as_root=(sudo -n); else as_root=(); fi
  fi
  if ! command -v apt-get >/dev/null || { ((EUID != 0)) && ((${#as_root[@]} == 0)); }; then
    echo "setup.sh: missing system packages: ${missing[*]}; install them as root, then rerun scripts/setup.sh:" >&2
    echo "  apt-get update && $install" >&2
    echo "(without apt-get: the same packages from your system's package manager; or skip them: --python-only)" >&2
    exit 1
  fi
  echo "== system packages: ${as_root[*]:+${as_root[*]} }$install"
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${missing[@]}" </dev/null
  mapfile -t missing < <(missing_system_packages)
  if ((${#missing[@]})); then echo "setup.sh: still missing after apt-get: ${missing[*]}" >&2; exit 1; fi
}

install_python_packages() {
  "$PYTHON" -m pip install "torch==${TORCH_VERSION}"
  DS_BUILD_OPS=0 "$PYTHON" -m pip install --no-build-isolation "deepspeed>=0.19.8"
  "$PYTHON" -m pip install -e ".[dev]"
  "$PYTHON" -c "import ga, torch, deepspeed, snakemake, matplotlib; print('ga', ga.__version__, '| torch', torch.__version__, '| deepspeed', deepspeed.__version__, '| matplotlib', matplotlib.__version__)"
}

case "${1:-}" in
  "") install_system_packages; install_python_packages ;;
  --system-only) install_system_packages ;;
  --python-only) install_python_packages ;;
  *) echo "setup.sh: unknown option ${1}; use --system-only or --python-only" >&2; exit 2 ;;
esac
