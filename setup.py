"""Builds raytrace._core, the C++17 core, with pybind11 (no libtorch).

The CUDA backend (csrc/cuda, docs/cuda.md) is built into the same extension when RT_CUDA=1, or when
RT_CUDA is unset and both nvcc and an NVIDIA GPU are found; RT_CUDA=0 never builds it. RT_CUDA_ARCH
lists the GPU architectures to compile for ("80;90": sm_80 and sm_90 code plus PTX for the last;
default "native" where a GPU is found, else "75;80;86;89;90").
"""
import glob
import os
import re
import shutil
import subprocess

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import setup

ParallelCompile("RT_BUILD_JOBS", default=0).install()

sources = sorted(glob.glob("csrc/core/*.cpp")) + ["csrc/bindings.cpp"]
# (compile_check.cu is not part of the backend: tests/test_cuda_compile.py compiles it alone.)
cuda_sources = [s for s in sorted(glob.glob("csrc/cuda/*.cu")) if not s.endswith("compile_check.cu")]
extra = ["-O3", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"]
if os.environ.get("RT_NATIVE") == "1":  # opt-in: tune for the build machine
    extra.append("-march=native")


def _gpu_present() -> bool:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def _want_cuda() -> bool:
    flag = os.environ.get("RT_CUDA", "").strip()
    if flag not in ("", "0", "1"):
        raise SystemExit(f"RT_CUDA must be 0 or 1 (got {flag!r})")
    if flag == "1":
        if shutil.which("nvcc") is None:
            raise SystemExit("RT_CUDA=1 but nvcc is not on the PATH: install the CUDA toolkit or unset RT_CUDA")
        return True
    return flag == "" and shutil.which("nvcc") is not None and _gpu_present()


def _cuda_library_dirs():
    """The directories nvcc itself links from (its --dryrun output names them)."""
    out = subprocess.run(["nvcc", "--dryrun", "-c", "-x", "cu", "/dev/null", "-o", "/dev/null"],
                         capture_output=True, text=True)
    dirs = re.findall(r'-L"?([^"\s]+)', out.stdout + out.stderr)
    return [d for d in dict.fromkeys(dirs) if not d.endswith("stubs")]


def _gencode():
    arch = os.environ.get("RT_CUDA_ARCH", "").strip() or ("native" if _gpu_present() else "75;80;86;89;90")
    if arch == "native":
        return ["-arch=native"]
    archs = [a.strip() for a in arch.split(";") if a.strip()]
    if not archs or not all(a.isdigit() for a in archs):
        raise SystemExit(f"RT_CUDA_ARCH must be 'native' or numbers separated by ';', e.g. '80;90' (got {arch!r})")
    flags = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]
    return flags + [f"-gencode=arch=compute_{archs[-1]},code=compute_{archs[-1]}"]


class BuildExt(build_ext):
    """build_ext that compiles csrc/cuda/*.cu with nvcc first when the CUDA backend is wanted."""

    with_cuda = False

    def build_extensions(self):
        if self.with_cuda:
            ext = self.extensions[0]
            os.makedirs(self.build_temp, exist_ok=True)
            flags = ["-std=c++17", "-O3", "--expt-relaxed-constexpr", "-Icsrc", "-Xcompiler", "-fPIC,-fvisibility=hidden",
                     "-Werror", "all-warnings"] + _gencode()
            # The .cu files compile in parallel (backward.cu alone takes a minute or two).
            jobs = []
            for src in cuda_sources:
                obj = os.path.join(self.build_temp, os.path.basename(src) + ".o")
                deps = [src] + glob.glob("csrc/core/*.h") + glob.glob("csrc/cuda/*.h")
                if not os.path.exists(obj) or os.path.getmtime(obj) < max(os.path.getmtime(d) for d in deps):
                    cmd = ["nvcc"] + flags + ["-c", src, "-o", obj]
                    print(" ".join(cmd))
                    jobs.append((src, subprocess.Popen(cmd)))
                ext.extra_objects.append(obj)
            failed = [src for src, job in jobs if job.wait() != 0]
            if failed:
                raise SystemExit(f"nvcc failed on {', '.join(failed)}")
        super().build_extensions()


want_cuda = _want_cuda()
ext = Pybind11Extension(
    "raytrace._core",
    sources,
    cxx_std=17,
    include_dirs=["csrc"],
    extra_compile_args=extra,
    extra_link_args=["-pthread"],
    depends=sorted(glob.glob("csrc/core/*.h") + glob.glob("csrc/cuda/*.h")),
)
if want_cuda:
    ext.define_macros.append(("RT_WITH_CUDA", "1"))
    ext.library_dirs += _cuda_library_dirs()
    ext.libraries += ["cudart_static", "dl", "rt"]
BuildExt.with_cuda = want_cuda
setup(ext_modules=[ext], cmdclass={"build_ext": BuildExt})
