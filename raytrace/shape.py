"""Triangle meshes."""
from __future__ import annotations

from typing import Optional

import torch

from . import _validation as v


class Shape:
    """A triangle mesh with one material.

    Args:
        vertices: [N, 3] float, positions.
        indices: [M, 3] int32 or int64, vertex indices of each triangle. The geometric normal of
            a triangle is ``cross(v1 - v0, v2 - v0)``. Degenerate (zero-area) triangles are
            allowed and never hit.
        material_id: index into ``Scene.materials``.
        uvs: optional [N, 2] float texture coordinates (without them, textures are looked up
            at the hit's barycentric coordinates).
        normals: optional [N, 3] float per-vertex normals, interpolated across faces (smooth
            shading). Without them the shape is flat-shaded.
    """

    def __init__(self, vertices, indices, material_id: int, uvs=None, normals=None):
        v.check_same_device([("vertices", vertices), ("indices", indices), ("uvs", uvs), ("normals", normals)])
        device = v.device_of(vertices, indices, uvs, normals)
        self.vertices = v.float_tensor(vertices, "Shape.vertices", (None, 3), device=device)
        n = self.vertices.shape[0]
        if n == 0:
            raise ValueError("Shape.vertices is empty: a shape needs at least three vertices")
        self.indices = v.index_tensor(indices, "Shape.indices", n, device=self.vertices.device)
        self.material_id = v.integer(material_id, "Shape.material_id", minimum=0)
        self.uvs: Optional[torch.Tensor] = (
            None if uvs is None else v.float_tensor(uvs, "Shape.uvs", (n, 2), device=device))
        self.normals: Optional[torch.Tensor] = (
            None if normals is None else v.float_tensor(normals, "Shape.normals", (n, 3), device=device))

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def num_triangles(self) -> int:
        return int(self.indices.shape[0])

    def __repr__(self) -> str:
        return (f"Shape({self.num_vertices} vertices, {self.num_triangles} triangles, "
                f"material_id={self.material_id}, uvs={self.uvs is not None}, normals={self.normals is not None})")
