#!/usr/bin/env bash
# Every GPU check and benchmark of the training-speed work in one run, most important first, each
# step under its own time limit so that a slow step cannot eat the others' time. The limits add up
# to 550 s, so the whole script fits one 10-minute command.
#
#   bash benchmarks/gpu_check.sh                # on a CUDA machine with torch, einops, click
#   QUICK=1 bash benchmarks/gpu_check.sh        # the same steps, tiny, on a CPU (to try it out)
#
# Results are printed and written under ${OUT:-gpu-results}/.
set -uo pipefail

out=${OUT:-gpu-results}
mkdir -p "$out"
quick=${QUICK:-0}

step() {  # step NAME SECONDS COMMAND...: run with a limit, log to $out/NAME.txt, go on regardless
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s): $*"
    timeout "$limit" "$@" 2>&1 | grep -v "^W[0-9]" | tee "$out/$name.txt"
    echo "== $name exit ${PIPESTATUS[0]}"
}

python3 -c "import fwp" 2>/dev/null || pip install -q --no-deps --no-build-isolation -e .
step device 20 python3 -c "
import torch
print('torch', torch.__version__, 'cuda', torch.version.cuda)
print(torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA device')"

if [ "$quick" = 1 ]; then
    step train_b20 600 python3 benchmarks/bench_train.py --quick --device cpu --steps 2 \
        --modes reference fast compile
    step paint 300 python3 benchmarks/bench_paint.py --quick --device cpu
    step profile 300 python3 benchmarks/profile_step.py --quick --device cpu --rows 10
    exit 0
fi

# the math: fast vs reference losses, compiled vs eager values and gradients (CPU tests), and the
# CUDA-only data test
step tests 100 python3 -m pytest -q -p no:cacheprovider tests/gan/test_fast_mode.py \
    tests/gan/test_compile.py tests/gan/test_data.py
# the headline: the paper's configuration at the official code's batch of 20
step train_b20 180 python3 benchmarks/bench_train.py --batch 20 --modes reference fast amp compile
step profile 50 python3 benchmarks/profile_step.py --rows 30 --trace "$out/step_trace.json"
step paint 50 python3 benchmarks/bench_paint.py --device cuda --batch 20 --batch 256
# scaling with the batch
step train_b64_b256 150 python3 benchmarks/bench_train.py --batch 64 256 --modes fast compile
