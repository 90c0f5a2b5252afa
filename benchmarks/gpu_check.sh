#!/usr/bin/env bash
# gpu_check.sh OUTDIR: the CUDA backend's checks on a GPU machine, in one call (issue 12).
#
# Builds raytrace in place with its CUDA backend (RT_CUDA=1, for sm_90 unless RT_CUDA_ARCH says
# otherwise), runs the GPU tests (tests/test_cuda.py), then the closed-form and finite-difference
# gradient tests with every render on the GPU (RT_TEST_DEVICE=cuda), then the GPU benchmark
# (benchmarks/bench_cuda.py, with Mitsuba 3 where .mi/mitsuba_cp312.zip was carried); logs and
# results go to OUTDIR (build.log, tests.log, tests_on_gpu.log, bench_cuda.md, bench.log,
# nvidia-smi.txt). Sized to finish within about 7 minutes on one H200 with 16 cores: the build
# takes about 2 (backward.cu is the long one), the tests about 1, the benchmark about 3. Uses the
# machine's python3 (with a CUDA build of torch); installs nothing.
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
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$out/tests.log" | tail -15
tests_rc=${PIPESTATUS[0]}
echo "GPU tests: rc $tests_rc, $(( $(date +%s) - start )) s"
# The closed-form and finite-difference gradient tests, every render on the GPU (tests/conftest.py).
start=$(date +%s)
RT_TEST_DEVICE=cuda timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_closed_forms.py \
    tests/test_gradients.py tests/test_gradient_terms.py tests/test_sphere_gradients.py 2>&1 \
    | tee "$out/tests_on_gpu.log" | tail -15
fd_rc=${PIPESTATUS[0]}
echo "gradient tests on the GPU: rc $fd_rc, $(( $(date +%s) - start )) s"
# Mitsuba 3 for the comparison, where its trimmed bundle was carried (.mi/README.txt).
if [ -f .mi/mitsuba_cp312.zip ]; then
    rm -rf /tmp/mi && mkdir -p /tmp/mi && unzip -q .mi/mitsuba_cp312.zip -d /tmp/mi && export PYTHONPATH=/tmp/mi:${PYTHONPATH:-}
fi
# RT_PROFILE=1: Nsight Compute's summary of one reverse pass's kernels (the interior kernel is
# the one to make faster: docs/cuda.md), to OUTDIR/ncu.txt. Leaves the clocks alone.
if [ "${RT_PROFILE:-0}" = 1 ] && command -v ncu > /dev/null; then
    start=$(date +%s)
    timeout 240 ncu --clock-control none --set basic --launch-count 6 -k regex:"interior|primary|probe|segment" \
        python3 benchmarks/bench_cuda.py --profile-step > "$out/ncu.txt" 2>&1
    echo "ncu: rc $?, $(( $(date +%s) - start )) s"
    grep -E "interior|primary|Duration|Registers|Achieved Occupancy|Local Memory|Compute \(SM\)|Memory Throughput" \
        "$out/ncu.txt" | head -40
fi
start=$(date +%s)
timeout 300 python3 benchmarks/bench_cuda.py --out "$out/bench_cuda.md" ${BENCH_ARGS:-} > "$out/bench.log" 2>&1
echo "bench: rc $?, $(( $(date +%s) - start )) s"
tail -60 "$out/bench.log"
[ "$tests_rc" = 0 ] && [ "$fd_rc" = 0 ]
