# Sourced by the scripts that run on a lent GPU machine (bench/cuda_search.sh,
# bench/fidelity/cuda_reference.sh), from the repo root, with $out set: packages and the
# data set shipped beside the repo, unbuffered output, $py, and what the machine is
# (written to $out/env.txt).
#   .devcarry/site.tar.xz        packages the machine lacks (ray, optuna), for its Python
#   .devcarry/fashion-mnist/     the four IDX files
if [ -f .devcarry/site.tar.xz ]; then
    mkdir -p /tmp/mbnas-site && tar -xJf .devcarry/site.tar.xz -C /tmp/mbnas-site
    export PYTHONPATH=/tmp/mbnas-site:$PWD
fi
[ -d .devcarry/fashion-mnist ] && export MBNAS_DATA=$PWD/.devcarry/fashion-mnist
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    nproc
    $py -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0),
'bf16', torch.cuda.is_bf16_supported())"
    $py -c "import ray, optuna; print('ray', ray.__version__, 'optuna', optuna.__version__)"
} 2>&1 | tee "$out/env.txt"
