#!/usr/bin/env bash
# A short search, its confirmation and the winner's final training on one CUDA GPU
# (AMP, one trial per GPU): the figures of docs/measurements.md "On a GPU, measured". Run from the repo root:
#
#   bash bench/cuda_search.sh [TRIALS]        # default 8 search trials
#
# Where the GPU machine has no ray/optuna and no data set, ship them beside the repo:
#   .devcarry/site.tar.xz        ray, optuna and what they need, built for its Python
#   .devcarry/fashion-mnist/     the four IDX files
# Figures and logs go to $OUT (default runs/cuda).
set -uo pipefail
trials=${1:-8}
out=${OUT:-runs/cuda}
runs=${RUNS:-/tmp/mbnas-cuda-runs}
mkdir -p "$out"
source "$(dirname "$0")/cuda_env.sh"

# 1. One default proxy training of MobileNetV2 1.0 (AMP on CUDA is the default); V2=0 skips it.
[ "${V2:-1}" = 1 ] && t0=$SECONDS && timeout 90 $py -m mbnas train mobilenet_v2 --device cuda \
    --out "$runs/train-v2" 2>&1 | tee "$out/train_v2.log"
[ "${V2:-1}" = 1 ] && echo "wall $((SECONDS - t0)) s" | tee -a "$out/train_v2.log"

# 2. The search: references, search trials, confirmation, one trial per GPU.
t0=$SECONDS; timeout 400 $py -m mbnas search --budget 300M \
    --trials "$trials" --device cuda --runs-dir "$runs" --name cuda-300M 2>&1 \
    | tee "$out/search.log"
echo "wall $((SECONDS - t0)) s" | tee -a "$out/search.log"
$py -m mbnas show "$runs/cuda-300M" >"$out/show.txt" 2>&1
cp "$runs/cuda-300M/best.json" "$runs/cuda-300M/trials.csv" "$out/" 2>/dev/null

# 3. The winner's final model: all training images, 3 epochs.
t0=$SECONDS; timeout 100 $py -m mbnas train "$runs/cuda-300M" --subset 0 \
    --epochs 3 --device cuda 2>&1 | tee "$out/final.log"
echo "wall $((SECONDS - t0)) s" | tee -a "$out/final.log"
