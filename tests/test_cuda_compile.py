"""The kernels compile with nvcc for a GPU (compile check only: no GPU runs here)."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_kernels_compile_with_nvcc(tmp_path):
    cmd = ["nvcc", "-std=c++17", f"-I{ROOT / 'csrc'}", "-c", str(ROOT / "csrc" / "cuda" / "compile_check.cu"),
           "-o", str(tmp_path / "check.o"), "-Werror", "all-warnings"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "check.o").stat().st_size > 0


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_backend_compiles_with_nvcc(tmp_path):
    """The CUDA backend (csrc/cuda/*.cu: what RT_CUDA=1 builds) compiles for sm_90 without
    warnings: CI has nvcc but no GPU, so this is the check that keeps it building (about two
    minutes: backward.cu holds the whole reverse pass and thrust's sort)."""
    jobs = []
    for name in ("backend.cu", "backward.cu"):
        cmd = ["nvcc", "-std=c++17", "-O3", "--expt-relaxed-constexpr", f"-I{ROOT / 'csrc'}", "-Xcompiler", "-fPIC",
               "-gencode=arch=compute_90,code=sm_90", "-c", str(ROOT / "csrc" / "cuda" / name),
               "-o", str(tmp_path / (name + ".o")), "-Werror", "all-warnings"]
        jobs.append((name, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    for name, job in jobs:
        _, err = job.communicate(timeout=900)
        assert job.returncode == 0, f"{name}: {err}"
        assert (tmp_path / (name + ".o")).stat().st_size > 0
