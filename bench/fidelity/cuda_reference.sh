#!/usr/bin/env bash
# More seeds of the fidelity reference (18,000 images x 5 epochs, 10,000 validation
# images), trained on one CUDA GPU under the protocol as mbnas runs it there (AMP in
# bfloat16, the default on CUDA), several trainings at a time: seeds 1 and 2 of the 11
# canonical networks (the shipped reference has seed 0) and seeds 3 and 4 of the 8 space
# members (it has 0-2). Run from the repo root:
#
#   bash bench/fidelity/cuda_reference.sh [SECONDS]      # default 480: stops there
#
# Rows are written after every training, so a run cut by its time limit keeps what it
# finished; rerunning the same command resumes. Tables and logs go to $OUT (default
# runs/fidelity/cuda). Merge them into the CPU reference with bench/fidelity/merge.py.
# Where the GPU machine has no data set, ship it beside the repo in
# .devcarry/fashion-mnist/ (the four IDX files); .devcarry/site.tar.xz adds packages.
set -uo pipefail
limit=${1:-480}
out=${OUT:-runs/fidelity/cuda}
work=${WORK:-/tmp/mbnas-cuda-reference}
mkdir -p "$out" "$work"
source "$(dirname "$0")/../cuda_env.sh"

reference=(--subset 18000 --epochs 5 --val-size 10000 --test --device cuda --threads 1
           --jobs 5 --reference none)
# The two halves run side by side (10 trainings on the GPU at once), each into its folder.
timeout "$limit" $py -m mbnas fidelity "${reference[@]}" --panel-size 0 --seeds 1,2 \
    --out "$work/canonical" >"$out/canonical.log" 2>&1 &
timeout "$limit" $py -m mbnas fidelity "${reference[@]}" --models none --seeds 3,4 \
    --out "$work/space" >"$out/space.log" 2>&1 &
wait
for half in canonical space; do
    cp "$work/$half/fidelity.csv" "$out/$half.csv" 2>/dev/null
done
tail -n 3 "$out"/*.log
