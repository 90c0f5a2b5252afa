"""render(): the forward renderer."""
from __future__ import annotations

import warnings
from typing import Optional, Sequence

import torch

from . import _validation as v
from .scene import Scene, _np, _threads

# Channel name -> (core id, width).
CHANNELS = {
    "radiance": (0, 3),
    "alpha": (1, 1),
    "depth": (2, 1),
    "normal": (3, 3),
    "albedo": (4, 3),
    "shape_id": (5, 1),
}

_warned_no_grad = False


def render(scene: Scene, spp: int = 16, max_bounces: int = 1, seed: int = 0,
           channels: Sequence[str] = ("radiance",), threads: Optional[int] = None) -> torch.Tensor:
    """Renders the scene with a Monte Carlo path tracer.

    Args:
        scene: the Scene.
        spp: samples per pixel (>= 1), stratified within each pixel.
        max_bounces: 0 shows emitters (and the environment) seen directly; 1 adds direct
            lighting; more add indirect light.
        seed: the random seed (>= 0). The same scene and seed give the same image, bit for
            bit, whatever the thread count.
        channels: names stacked along the last axis in this order: "radiance" (3, linear),
            "alpha" (1, pixel coverage), "depth" (1, mean distance to the first hit, 0 on
            misses), "normal" (3, mean shading normal facing the camera), "albedo" (3, mean
            diffuse reflectance at the first hit), "shape_id" (1, the shape hit through the
            pixel centre, -1 for none).
        threads: worker threads (default: RT_NUM_THREADS or all cores).

    Returns:
        [H, W, C] float32 tensor.
    """
    if not isinstance(scene, Scene):
        raise TypeError(f"scene must be a raytrace.Scene (got {type(scene).__name__})")
    spp = v.integer(spp, "spp", minimum=1)
    max_bounces = v.integer(max_bounces, "max_bounces", minimum=0)
    seed = v.integer(seed, "seed", minimum=0)
    if seed >= 2**63:
        raise ValueError(f"seed must be < 2**63 (got {seed})")
    if isinstance(channels, str) or not isinstance(channels, (list, tuple)) or len(channels) == 0:
        raise TypeError(f"channels must be a non-empty tuple of names from {tuple(CHANNELS)} (got {channels!r})")
    for c in channels:
        if c not in CHANNELS:
            raise ValueError(f"channels: unknown channel {c!r}; known channels are {tuple(CHANNELS)}")
    if len(channels) > 8:
        raise ValueError(f"channels: at most 8 channels per call (got {len(channels)})")
    num_threads = _threads(threads)
    if scene.camera is None:
        raise ValueError("scene.camera is None: a camera is needed to render")
    _warn_if_grad_requested(scene)
    core = scene._sync(num_threads)
    h, w = scene.camera.resolution
    width = sum(CHANNELS[c][1] for c in channels)
    out = torch.empty((h, w, width), dtype=torch.float32)
    core.render(out.numpy(), spp, max_bounces, seed, [CHANNELS[c][0] for c in channels],
                num_threads)
    return out


def _warn_if_grad_requested(scene: Scene) -> None:
    global _warned_no_grad
    if _warned_no_grad or not torch.is_grad_enabled():
        return
    tensors = [scene.camera.position, scene.camera.look_at, scene.camera.up, scene.camera.fov]
    for s in scene.shapes:
        tensors += [s.vertices, s.uvs, s.normals]
    for m in scene.materials:
        tensors += [m.diffuse_reflectance, m.specular_reflectance, m.roughness]
    tensors += [l.intensity for l in scene.area_lights]
    if scene.envmap is not None:
        tensors.append(scene.envmap.values)
    if any(t is not None and t.requires_grad for t in tensors):
        _warned_no_grad = True
        warnings.warn("raytrace.render does not compute gradients yet (the reverse pass is being built): "
                      "the image is returned detached from the scene tensors", RuntimeWarning, stacklevel=3)
