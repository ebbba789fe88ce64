#!/usr/bin/env bash
# Install what mbnas needs into .venv: the Fashion-MNIST package, CPU torch, mbnas itself.
# Safe to run again: each step is skipped when already done.
#   bash scripts/setup.sh          # to run mbnas
#   bash scripts/setup.sh --dev    # also the test and export extras
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"
python=${PYTHON:-python3}
torch_pin="torch==2.13.0"   # a CPU build lies on this machine's disk; plain `torch` is a CUDA build

step() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# 1. The default proxy data set, from Debian (no download at run time).
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    step "installing dataset-fashion-mnist (apt)"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dataset-fashion-mnist
fi

# 2. A virtual environment.
if [ ! -x .venv/bin/python ]; then
    step "creating .venv with $($python --version)"
    $python -m venv .venv
fi
pip=".venv/bin/python -m pip"

# 3. torch, explicitly, before the package (pyproject only says torch>=2.4).
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    step "installing $torch_pin"
    $pip install -q "$torch_pin"
fi

# 4. mbnas itself (editable), re-installed only when pyproject.toml or the extras change.
stamp=.venv/.mbnas-installed
want="$(sha256sum pyproject.toml | cut -c1-16) $extras"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    step "installing mbnas$extras"
    $pip install -q -e ".$extras"
    echo "$want" > "$stamp"
fi
step "ready: .venv/bin/mbnas"
