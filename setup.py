"""Builds raytrace._core, the C++17 core, with pybind11 (no libtorch)."""
import glob
import os

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import setup

ParallelCompile("RT_BUILD_JOBS", default=0).install()

sources = sorted(glob.glob("csrc/core/*.cpp")) + ["csrc/bindings.cpp"]
extra = ["-O3", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"]
if os.environ.get("RT_NATIVE") == "1":  # opt-in: tune for the build machine
    extra.append("-march=native")

ext = Pybind11Extension(
    "raytrace._core",
    sources,
    cxx_std=17,
    include_dirs=["csrc"],
    extra_compile_args=extra,
    extra_link_args=["-pthread"],
    depends=sorted(glob.glob("csrc/core/*.h")),
)

setup(ext_modules=[ext], cmdclass={"build_ext": build_ext})
