"""Deferred shading: a G-buffer from the path tracer's first hits, shaded in torch by point,
directional and ambient lights.

``render_deferred`` renders the scene's alpha, position, normal and albedo channels (each
differentiable, silhouettes included: ``render``'s docstring), then shades every pixel with the
Lambert BRDF under the given lights, in torch. The whole image is therefore differentiable end to
end: w.r.t. the lights' tensors by torch, w.r.t. the geometry, the camera and the diffuse textures
through the G-buffer's gradients. No shadows and no indirect light: it is local shading, far
cheaper per iteration than path tracing (benchmarks/RESULTS.md), as in redner's
``render_deferred``.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch

from . import _validation as v
from .scene import Scene


class PointLight:
    """A point light for deferred shading: intensity I (W/sr per colour channel) at `position`; a
    surface at distance r whose normal makes angle theta with the light receives irradiance
    I cos(theta) / r^2.

    Args:
        position: [3] float.
        intensity: [3] float, >= 0.
    """

    def __init__(self, position, intensity):
        device = v.device_of(position, intensity)
        self.position = v.float_tensor(position, "PointLight.position", (3,), device=device)
        self.intensity = v.float_tensor(intensity, "PointLight.intensity", (3,), nonnegative=True, device=device)

    def __repr__(self):
        return f"PointLight(position={self.position.tolist()}, intensity={self.intensity.tolist()})"


class DirectionalLight:
    """Light from infinitely far away travelling along `direction`: a surface facing it receives
    irradiance `intensity` x cos(theta).

    Args:
        direction: [3] float, the direction the light travels (towards the scene); need not be
            unit length, must not be zero.
        intensity: [3] float, >= 0: the irradiance on a surface perpendicular to the light.
    """

    def __init__(self, direction, intensity):
        device = v.device_of(direction, intensity)
        self.direction = v.float_tensor(direction, "DirectionalLight.direction", (3,), device=device)
        if float(self.direction.detach().norm()) == 0.0:
            raise ValueError("DirectionalLight.direction must not be the zero vector")
        self.intensity = v.float_tensor(intensity, "DirectionalLight.intensity", (3,), nonnegative=True,
                                        device=device)

    def __repr__(self):
        return f"DirectionalLight(direction={self.direction.tolist()}, intensity={self.intensity.tolist()})"


class AmbientLight:
    """Uniform light from every direction: a surface of diffuse reflectance kd reflects
    kd x `intensity` (irradiance pi x intensity).

    Args:
        intensity: [3] float, >= 0 (radiance).
    """

    def __init__(self, intensity):
        self.intensity = v.float_tensor(intensity, "AmbientLight.intensity", (3,), nonnegative=True)

    def __repr__(self):
        return f"AmbientLight(intensity={self.intensity.tolist()})"


_G_BUFFER = ("alpha", "position", "normal", "albedo")


def render_deferred(scene: Scene, lights: Sequence, spp: int = 4, seed: int = 0, threads: Optional[int] = None,
                    **kwargs) -> torch.Tensor:
    """Renders the scene's first hits shaded by `lights` (Lambert BRDF, no shadows): [H, W, 3].

    Each pixel's G-buffer (the means over its samples of the first hits' position, shading normal
    facing the camera, and diffuse albedo; ``render(..., max_bounces=0)``) is divided by its
    coverage (alpha), to give the mean over the samples that hit, shaded, and multiplied by the
    coverage again: a silhouette pixel is the covered fraction of the shaded surface over black,
    and moves smoothly with it. With L the lights:

        radiance = alpha x (albedo / pi x sum_L irradiance_L + albedo x ambient)

    where a point light gives I max(n . l, 0) / r^2 (l towards the light, r its distance) and a
    directional light I max(-n . d, 0). The scene's own emitters and materials' specular lobes
    are not used.

    Args:
        scene: the Scene (its area lights and environment map are ignored).
        lights: a list of PointLight, DirectionalLight and AmbientLight (at least one).
        spp, seed, threads: as for ``render``; the keyword arguments of ``render`` (edge_spp,
            boundary, interior) set how the G-buffer's gradient is estimated.

    Returns:
        [H, W, 3] float32 on the scene's device, differentiable w.r.t. the lights' tensors and
        everything the G-buffer depends on (vertices, normals, uvs, diffuse textures, the camera).
    """
    from .render import render

    if isinstance(lights, (PointLight, DirectionalLight, AmbientLight)) or not isinstance(lights, (list, tuple)):
        raise TypeError("render_deferred: lights must be a list of PointLight, DirectionalLight or AmbientLight")
    if len(lights) == 0:
        raise ValueError("render_deferred: lights is empty: the image would be black")
    for i, light in enumerate(lights):
        if not isinstance(light, (PointLight, DirectionalLight, AmbientLight)):
            raise TypeError(f"render_deferred: lights[{i}] must be a PointLight, DirectionalLight or AmbientLight "
                            f"(got {type(light).__name__})")
    for key in ("channels", "max_bounces"):
        if key in kwargs:
            raise TypeError(f"render_deferred: {key} is set by render_deferred itself")
    g = render(scene, spp=spp, max_bounces=0, seed=seed, channels=_G_BUFFER, threads=threads, **kwargs)
    device = g.device
    alpha = g[..., 0:1]
    covered = alpha > 0
    safe = torch.where(covered, alpha, torch.ones_like(alpha))
    position = g[..., 1:4] / safe
    normal = g[..., 4:7]
    normal = normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    albedo = g[..., 7:10] / safe
    irradiance = torch.zeros_like(position)
    ambient = torch.zeros(3, device=device)
    for i, light in enumerate(lights):
        for name in ("position", "direction", "intensity"):
            t = getattr(light, name, None)
            if t is not None and t.device != device:
                raise ValueError(f"render_deferred: lights[{i}].{name} is on {t.device} but the scene is on {device}")
        if isinstance(light, PointLight):
            to_light = light.position - position
            r2 = (to_light * to_light).sum(dim=-1, keepdim=True).clamp_min(1e-30)
            cos = ((normal * to_light).sum(dim=-1, keepdim=True) / r2.sqrt()).clamp_min(0.0)
            irradiance = irradiance + light.intensity * cos / r2
        elif isinstance(light, DirectionalLight):
            d = light.direction / light.direction.norm()
            cos = (-(normal * d).sum(dim=-1, keepdim=True)).clamp_min(0.0)
            irradiance = irradiance + light.intensity * cos
        else:
            ambient = ambient + light.intensity
    shaded = albedo * (irradiance / math.pi + ambient)
    return torch.where(covered, alpha * shaded, torch.zeros_like(shaded))
