#!/usr/bin/env bash
# gpu_check.sh OUTDIR: the CUDA backend's checks on a GPU machine, in one call (issue 12).
#
# Builds raytrace in place with its CUDA backend (RT_CUDA=1, for sm_90 unless RT_CUDA_ARCH says
# otherwise), runs the GPU tests (tests/test_cuda.py) and a few CPU test files as a smoke test of
# the build, then the GPU benchmark; logs and results go to OUTDIR (build.log, tests.log,
# bench_cuda.md, bench.log, nvidia-smi.txt). Sized to finish within about 5 minutes on one H200
# with 16 cores: the build takes about 2 (backward.cu is the long one), the tests about 1, the
# benchmark about 1. Uses the machine's python3 (with a CUDA build of torch); installs nothing.
# The built extension is copied to OUTDIR too: RT_SKIP_BUILD=1 with it in raytrace/ skips the build.
set -uo pipefail
out=${1:?usage: benchmarks/gpu_check.sh OUTDIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"
start=$(date +%s)
if [ "${RT_SKIP_BUILD:-0}" = 1 ] && ls raytrace/_core*.so > /dev/null 2>&1; then
    echo "build: skipped (RT_SKIP_BUILD=1: using the extension carried in raytrace/)"
elif ! RT_CUDA=1 RT_CUDA_ARCH=${RT_CUDA_ARCH:-90} RT_BUILD_JOBS=16 timeout 400 python3 setup.py build_ext --inplace \
        > "$out/build.log" 2>&1; then
    tail -40 "$out/build.log"
    echo "BUILD FAILED"
    exit 1
else
    echo "build: $(( $(date +%s) - start )) s"
    cp raytrace/_core*.so "$out/" 2>/dev/null  # (carried back, to rerun without building)
fi
python3 -c "import raytrace._core as c; print('has_cuda', c.has_cuda, 'devices', c.cuda_device_count(), c.cuda_device_name(0))"
start=$(date +%s)
timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_render_basic.py tests/test_determinism.py \
    2>&1 | tee "$out/tests.log" | tail -25
tests_rc=${PIPESTATUS[0]}
echo "tests: rc $tests_rc, $(( $(date +%s) - start )) s"
start=$(date +%s)
timeout 200 python3 benchmarks/bench_cuda.py --out "$out/bench_cuda.md" ${BENCH_ARGS:-} > "$out/bench.log" 2>&1
echo "bench: rc $?, $(( $(date +%s) - start )) s"
tail -40 "$out/bench.log"
exit "$tests_rc"
