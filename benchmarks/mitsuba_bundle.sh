#!/usr/bin/env bash
# mitsuba_bundle.sh: makes .mi/mitsuba_cp312.zip, Mitsuba 3.9.1 + Dr.Jit 1.5.0 trimmed to what
# benchmarks/bench_mitsuba.py needs with the cuda_ad_rgb variant, for a GPU machine that has no
# network (CPython 3.12, x86_64, glibc >= 2.28, an NVIDIA driver with OptiX: libnvoptix.so.1).
# About 23 MB; carry the folder .mi (git ignores it) and gpu_check.sh unpacks it.
#
# Run from the repository root where pip can reach PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    -d "$work/whl" mitsuba==3.9.1 drjit==1.5.0
mkdir -p "$work/site"
for w in "$work"/whl/*.whl; do (cd "$work/site" && python3 -m zipfile -e "$w" .); done
cd "$work/site"
# Only the cuda_ad_rgb variant's module.
for f in mitsuba/{scalar,llvm,cuda}_*.cpython-*.so; do
    case "$(basename "$f")" in cuda_ad_rgb.cpython-*) ;; *) rm -f "$f" ;; esac
done
# Plugins: those the benchmark's scene loads (found by a trial run: /proc/self/maps), and the C++
# direct-lighting integrators and the uniform texture as fallbacks. The integrators it uses
# (direct_projective, prb_projective) are Python, under mitsuba/python, kept whole.
keep="area box diffuse hdrfilm independent merge perspective srgb uniform path direct"
for f in mitsuba/plugins/*.so; do
    case " $keep " in *" $(basename "$f" .so) "*) ;; *) rm -f "$f" ;; esac
done
# Headers, CMake files, the command-line program, tests, typing stubs, spectral data tables.
rm -rf share mitsuba/libIlmImfUtil-mitsuba.so mitsuba/include mitsuba/cmake drjit/include drjit/cmake \
    mitsuba/mitsuba mitsuba/python/test mitsuba/data
find . -name '*.pyi' -delete
find . -name __pycache__ -prune -exec rm -rf {} +
# Dr.Jit's thread pool needs libatomic, which a minimal image may lack; it looks beside itself first.
lib=$(ldconfig -p | awk '/libatomic.so.1 .*x86-64/ {print $NF; exit}')
[ -n "$lib" ] && cp "$lib" drjit/libatomic.so.1
cd - > /dev/null
mkdir -p .mi
grep -qx '/.mi/' .git/info/exclude 2>/dev/null || echo '/.mi/' >> .git/info/exclude
rm -f .mi/mitsuba_cp312.zip
(cd "$work/site" && zip -q -9 -r "$OLDPWD/.mi/mitsuba_cp312.zip" .)
rm -rf "$work"
ls -la .mi/mitsuba_cp312.zip
