"""The largest counts raytrace accepts, in one place (docs/limits.md).

The values come from the compiled core (csrc/core/limits.h), which checks them again, so the
Python checks and the core's cannot drift apart. Every public function that takes a count
checks it against these bounds and raises a ValueError naming the argument.
"""
from __future__ import annotations

from . import _core

_CORE = _core.limits()

MAX_SPP: int = _CORE["spp"]  # 2**20: samples per pixel of one render / backward pass
MAX_EDGE_SPP: int = _CORE["edge_spp"]  # 2**20: primary-edge samples per pixel
MAX_EDGE_SAMPLES: int = _CORE["edge_samples"]  # 2**31 - 1: edge_spp * H * W
MAX_SECONDARY_SPP: int = _CORE["secondary_spp"]  # 4096: secondary-edge samples per path vertex
MAX_SECONDARY_STRIDE: int = _CORE["secondary_stride"]  # 65536
MAX_BOUNCES: int = _CORE["max_bounces"]  # 1024: path length of the forward pass
MAX_GRAD_BOUNCES: int = _CORE["max_bounces_grad"]  # 16: path length when gradients are needed
MAX_THREADS: int = _CORE["threads"]  # 256 worker threads per call
MAX_RESOLUTION: int = _CORE["resolution"]  # 16384 pixels on each side of the image
MAX_PIXELS: int = _CORE["pixels"]  # 2**26 = 67108864 pixels (H * W), e.g. 8192 x 8192
MAX_RAYS: int = _CORE["rays"]  # 2**31 - 1 rays per Scene.intersect call
MAX_SEED: int = _CORE["seed"]  # 2**63 - 1
MAX_CHANNELS: int = _CORE["channels"]  # 8 channel names per render call


def check_resolution(height: int, width: int, name: str) -> None:
    """Raises a ValueError naming `name` when H * W passes MAX_PIXELS (each side is checked
    against MAX_RESOLUTION by the caller)."""
    if height * width > MAX_PIXELS:
        raise ValueError(f"{name} must have at most {MAX_PIXELS} pixels (height x width; got "
                         f"{height} x {width} = {height * width})")


def check_edge_samples(edge_spp: int, height: int, width: int) -> None:
    """Raises a ValueError naming edge_spp when edge_spp * H * W passes MAX_EDGE_SAMPLES."""
    if edge_spp * height * width > MAX_EDGE_SAMPLES:
        raise ValueError(f"edge_spp * height * width (the primary-edge samples) must be at most "
                         f"{MAX_EDGE_SAMPLES} (got {edge_spp} * {height} * {width} = "
                         f"{edge_spp * height * width}): lower edge_spp to at most "
                         f"{MAX_EDGE_SAMPLES // (height * width)} at this resolution")
