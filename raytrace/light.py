"""Emitters: area lights (emitting shapes) and the environment map."""
from __future__ import annotations

from . import _validation as v


class AreaLight:
    """Makes a shape emit light.

    Args:
        shape_id: index into ``Scene.shapes`` of the emitting shape.
        intensity: [3] emitted radiance (>= 0), leaving the side the shape's geometric
            normals face (both sides if ``two_sided``). The shape is seen with this radiance.
        two_sided: emit from both sides.
    """

    def __init__(self, shape_id: int, intensity, two_sided: bool = False):
        self.shape_id = v.integer(shape_id, "AreaLight.shape_id", minimum=0)
        self.intensity = v.float_tensor(intensity, "AreaLight.intensity", (3,), nonnegative=True)
        self.two_sided = v.boolean(two_sided, "AreaLight.two_sided")

    def __repr__(self) -> str:
        i = [round(float(x), 4) for x in self.intensity.detach()]
        return f"AreaLight(shape_id={self.shape_id}, intensity={i}, two_sided={self.two_sided})"


class EnvironmentMap:
    """Radiance arriving from infinitely far away, as a lat-long image.

    Args:
        values: [h, w, 3] radiance (>= 0). For a unit direction d (y up), theta = acos(d.y)
            and phi = atan2(d.x, -d.z) map to u = phi / (2 pi) + 1/2 (columns) and
            v = theta / pi (rows: row 0 is straight up). Looked up bilinearly; sampled by
            importance.
    """

    def __init__(self, values):
        self.values = v.float_tensor(values, "EnvironmentMap.values", (None, None, 3), nonnegative=True)
        if self.values.shape[0] == 0 or self.values.shape[1] == 0:
            raise ValueError(f"EnvironmentMap.values must not be empty (got {list(self.values.shape)})")

    def __repr__(self) -> str:
        return f"EnvironmentMap({self.values.shape[0]}x{self.values.shape[1]})"
