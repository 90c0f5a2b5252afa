"""Materials: a Lambertian lobe plus a GGX microfacet specular lobe."""
from __future__ import annotations

import torch

from . import _validation as v


class Material:
    """A diffuse + specular material.

    The BSDF is ``kd / pi`` plus a GGX microfacet lobe with Schlick Fresnel (``ks`` is the
    reflectance at normal incidence), GGX alpha = ``roughness`` and Smith masking-shadowing.

    Args:
        diffuse_reflectance: [3] constant or [h, w, 3] texture, >= 0.
        specular_reflectance: [3] constant or [h, w, 3] texture, >= 0 (default black).
        roughness: a float, [1] constant or [h, w, 1] texture, > 0 (default 0.5).
        two_sided: reflect on both sides of the surface (else only on the side the geometric
            normal faces; hit from behind, the surface is black but still blocks light).

    Textures are looked up bilinearly with wrap-around addressing; row 0 is v = 0.
    """

    def __init__(self, diffuse_reflectance, specular_reflectance=None, roughness=None, two_sided: bool = False):
        v.check_same_device([("diffuse_reflectance", diffuse_reflectance),
                             ("specular_reflectance", specular_reflectance), ("roughness", roughness)])
        device = v.device_of(diffuse_reflectance, specular_reflectance, roughness)
        self.diffuse_reflectance = v.texture(diffuse_reflectance, "Material.diffuse_reflectance", 3,
                                             nonnegative=True, device=device)
        if specular_reflectance is None:
            specular_reflectance = torch.zeros(3, device=device)
        self.specular_reflectance = v.texture(specular_reflectance, "Material.specular_reflectance", 3,
                                              nonnegative=True, device=device)
        if roughness is None:
            roughness = torch.tensor([0.5], device=device)
        self.roughness = v.texture(roughness, "Material.roughness", 1, positive=True, device=device)
        self.two_sided = v.boolean(two_sided, "Material.two_sided")

    def __repr__(self) -> str:
        def desc(t):
            return f"texture {list(t.shape)}" if t.dim() == 3 else str([round(float(x), 4) for x in t.detach()])
        return (f"Material(diffuse={desc(self.diffuse_reflectance)}, specular={desc(self.specular_reflectance)}, "
                f"roughness={desc(self.roughness)}, two_sided={self.two_sided})")
