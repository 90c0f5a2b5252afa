"""Procedural meshes: sphere, plane, box, the Utah teapot, and vertex normals.

Every builder returns a :class:`Mesh`, a named tuple ``(vertices, indices, uvs, normals)`` that
unpacks like a plain tuple:

- ``vertices``: [N, 3] float32 positions.
- ``indices``: [M, 3] int64 triangles, wound so that ``cross(v1 - v0, v2 - v0)`` points out of
  the solid (the side ``Shape`` treats as the front).
- ``uvs``: [N, 2] float32 texture coordinates, or None.
- ``normals``: [N, 3] float32 unit shading normals pointing outwards, or None (flat shading).

Texture coordinates follow ``Material`` (row 0 of a texture is v = 0). The spheres use the
lat-long mapping of ``EnvironmentMap`` (y up): for a unit direction d from the centre,
u = atan2(d.x, -d.z) / (2 pi) + 1/2 and v = acos(d.y) / pi, so v = 0 at the north pole.

    mesh = rt.sphere(radius=0.5)
    shape = rt.Shape(mesh.vertices, mesh.indices, 0, uvs=mesh.uvs, normals=mesh.normals)
"""
from __future__ import annotations

import math
import numbers
from typing import NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch

from . import _teapot_data
from ._validation import boolean as _boolean


class Mesh(NamedTuple):
    """A triangle mesh: ``(vertices, indices, uvs, normals)``; see the module docstring."""
    vertices: torch.Tensor
    indices: torch.Tensor
    uvs: Optional[torch.Tensor]
    normals: Optional[torch.Tensor]


# ------------------------------------------------------------------------------------------------
# Argument checks and conversion
# ------------------------------------------------------------------------------------------------
def _vec(value, name: str, n: int, positive: bool = False) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.size == 1 and n > 1 and positive:  # a scalar size means a cube / square
        arr = np.repeat(arr, n)
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be {n} finite numbers (got {value!r})")
    if positive and not np.all(arr > 0):
        raise ValueError(f"{name} must be > 0 (got {value!r})")
    return arr


def _positive(value, name: str) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0 (got {value!r})")
    return value


def _count(value, name: str, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer in [{minimum}, {maximum}] (got {type(value).__name__} {value!r})")
    if not minimum <= value <= maximum:
        raise ValueError(f"{name} must be an integer in [{minimum}, {maximum}] (got {value!r})")
    return int(value)


def _mesh(vertices, indices, uvs=None, normals=None) -> Mesh:
    def f32(a):
        return None if a is None else torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    return Mesh(f32(vertices), torch.from_numpy(np.ascontiguousarray(indices, dtype=np.int64)),
                f32(uvs), f32(normals))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


# ------------------------------------------------------------------------------------------------
# Vertex normals
# ------------------------------------------------------------------------------------------------
def vertex_normals(vertices: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Area-weighted vertex normals.

    Each vertex gets the sum of ``cross(v1 - v0, v2 - v0)`` (twice the area times the unit
    normal) of the triangles around it, normalised. Differentiable with respect to
    ``vertices``.

    Args:
        vertices: [N, 3] float positions.
        indices: [M, 3] integer triangles.

    Returns:
        [N, 3] unit normals, same dtype and device as ``vertices``. A vertex that no triangle of
        nonzero area uses gets the zero vector.
    """
    if vertices.dim() != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must have shape [N, 3] (got {list(vertices.shape)})")
    if indices.dim() != 2 or indices.shape[1] != 3:
        raise ValueError(f"indices must have shape [M, 3] (got {list(indices.shape)})")
    idx = indices.long()
    v0, v1, v2 = vertices[idx[:, 0]], vertices[idx[:, 1]], vertices[idx[:, 2]]
    face = torch.linalg.cross(v1 - v0, v2 - v0, dim=1)
    acc = torch.zeros_like(vertices)
    for k in range(3):
        acc = acc.index_add(0, idx[:, k], face)
    length = acc.norm(dim=1, keepdim=True)
    return torch.where(length > 0, acc / length.clamp_min(torch.finfo(acc.dtype).tiny), acc)


# ------------------------------------------------------------------------------------------------
# Spheres
# ------------------------------------------------------------------------------------------------
def _latlong(d: np.ndarray) -> np.ndarray:
    """Unit directions [N, 3] -> lat-long uvs [N, 2] (the EnvironmentMap convention)."""
    u = np.arctan2(d[:, 0], -d[:, 2]) / (2 * np.pi) + 0.5
    v = np.arccos(np.clip(d[:, 1], -1.0, 1.0)) / np.pi
    return np.stack([u, v], axis=1)


def _icosahedron() -> Tuple[np.ndarray, np.ndarray]:
    """The unit icosahedron with vertices at both poles (+-y), outward winding."""
    y = 1.0 / math.sqrt(5.0)  # the two rings sit at latitude +-atan(1/2)
    r = 2.0 / math.sqrt(5.0)
    a = 2 * np.pi * np.arange(5) / 5
    upper = np.stack([r * np.sin(a), np.full(5, y), -r * np.cos(a)], axis=1)
    lower = np.stack([r * np.sin(a + np.pi / 5), np.full(5, -y), -r * np.cos(a + np.pi / 5)], axis=1)
    verts = np.concatenate([[[0.0, 1.0, 0.0]], upper, lower, [[0.0, -1.0, 0.0]]])
    faces = []
    for k in range(5):
        u0, u1 = 1 + k, 1 + (k + 1) % 5
        l0, l1 = 6 + k, 6 + (k + 1) % 5
        faces += [(0, u0, u1), (u0, l0, u1), (u1, l0, l1), (l0, 11, l1)]
    faces = np.array(faces, dtype=np.int64)
    # Orient every face outwards (the solid is convex and contains the origin).
    v0, v1, v2 = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    inward = np.einsum("ij,ij->i", np.cross(v1 - v0, v2 - v0), v0 + v1 + v2) < 0
    faces[inward] = faces[inward][:, ::-1]
    return verts, faces


def _subdivide(verts: np.ndarray, faces: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Splits each triangle into four at its edge midpoints, projected onto the unit sphere."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    unique, inverse = np.unique(np.sort(edges, axis=1), axis=0, return_inverse=True)
    mids = _unit(verts[unique[:, 0]] + verts[unique[:, 1]])
    m = len(faces)
    e01, e12, e20 = (len(verts) + inverse.reshape(-1)[k * m:(k + 1) * m] for k in range(3))
    a, b, c = faces[:, 0], faces[:, 1], faces[:, 2]
    new_faces = np.concatenate([np.stack(t, axis=1) for t in
                                ((a, e01, e20), (e01, b, e12), (e20, e12, c), (e01, e12, e20))])
    return np.concatenate([verts, mids]), new_faces


def _split_latlong_seam(dirs: np.ndarray, faces: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Duplicates vertices so lat-long uvs interpolate continuously across every triangle.

    A triangle whose u values span more than 1/2 crosses the u = 0 | 1 seam: its vertices with
    u < 1/2 get copies with u + 1. A pole vertex (where u is undefined) gets one copy per
    triangle, with u the mean of that triangle's other two vertices.
    Returns (directions [N', 3], faces [M, 3], uvs [N', 2]).
    """
    uv = _latlong(dirs)
    corner_uv = uv[faces]  # [M, 3, 2]
    pole = np.abs(dirs[:, 1]) > 1 - 1e-12
    corner_pole = pole[faces]
    u = np.where(corner_pole, np.nan, corner_uv[..., 0])
    crosses = (np.nanmax(u, axis=1) - np.nanmin(u, axis=1)) > 0.5
    shift = crosses[:, None] & (corner_uv[..., 0] < 0.5) & ~corner_pole
    corner_uv[..., 0] += shift
    # Pole corners: u from the other two corners (after the seam shift).
    pole_u = np.nanmean(np.where(corner_pole, np.nan, corner_uv[..., 0]), axis=1)
    corner_uv[..., 0] = np.where(corner_pole, pole_u[:, None], corner_uv[..., 0])
    # New vertex per distinct (vertex, uv) pair.
    keys = np.concatenate([faces.reshape(-1, 1).astype(np.float64), corner_uv.reshape(-1, 2)], axis=1)
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    src = unique[:, 0].astype(np.int64)
    return dirs[src], inverse.reshape(-1, 3), unique[:, 1:]


def sphere(radius: float = 1.0, center: Sequence[float] = (0.0, 0.0, 0.0), subdivisions: int = 3,
           watertight: bool = True) -> Mesh:
    """An icosphere: a subdivided icosahedron projected onto the sphere.

    The icosahedron has vertices at both poles (+-y); each subdivision splits every triangle into
    four, so there are ``20 * 4**subdivisions`` triangles (1280 by default) and, when
    watertight, ``10 * 4**subdivisions + 2`` vertices (642).

    Args:
        radius: > 0.
        center: [3], the centre.
        subdivisions: 0 to 8.
        watertight: if True, vertices are shared: the mesh is closed and manifold (every edge has
            exactly two triangles). Its lat-long uvs are then discontinuous along the seam
            (x = 0, z > 0), where triangles interpolate u across the whole texture, and at the
            poles (u = 1/2). If False, seam and pole vertices are duplicated so uvs interpolate
            continuously (u may reach a little past 1 on the seam's copies; textures wrap); the
            surface is the same but no longer index-connected across the seam.

    Returns:
        Mesh: vertices [N, 3], indices [M, 3], uvs [N, 2] (lat-long, v = 0 at +y), normals
        [N, 3] (exact: radial).
    """
    radius = _positive(radius, "radius")
    center = _vec(center, "center", 3)
    subdivisions = _count(subdivisions, "subdivisions", 0, 8)  # 8: 1.3M triangles
    watertight = _boolean(watertight, "watertight")
    dirs, faces = _icosahedron()
    for _ in range(subdivisions):
        dirs, faces = _subdivide(dirs, faces)
    if watertight:
        uvs = _latlong(dirs)
        uvs[np.abs(dirs[:, 1]) > 1 - 1e-12, 0] = 0.5
    else:
        dirs, faces, uvs = _split_latlong_seam(dirs, faces)
    return _mesh(center + radius * dirs, faces, uvs, dirs)


def uv_sphere(radius: float = 1.0, center: Sequence[float] = (0.0, 0.0, 0.0), rings: int = 16,
              segments: int = 32) -> Mesh:
    """A latitude-longitude sphere with continuous lat-long uvs.

    ``rings`` bands of latitude by ``segments`` of longitude; the seam column and the poles are
    duplicated (one pole vertex per segment) so uvs interpolate without wrapping. The surface is
    closed, but not index-connected across the seam or at the poles.

    Args:
        radius: > 0.
        center: [3], the centre.
        rings: 2 to 4096 bands from pole to pole.
        segments: 3 to 8192 around the y axis.

    Returns:
        Mesh: vertices [(rings + 1) * (segments + 1) - 2, 3], indices [2 * segments * (rings - 1), 3],
        uvs (u in [0, 1] around, v in [0, 1] from +y down), normals (radial).
    """
    radius = _positive(radius, "radius")
    center = _vec(center, "center", 3)
    rings = _count(rings, "rings", 2, 4096)
    segments = _count(segments, "segments", 3, 8192)
    u, v = np.meshgrid(np.linspace(0, 1, segments + 1), np.linspace(0, 1, rings + 1))
    # Each pole copy sits mid-segment of the one triangle that uses it (see below).
    u[0, 1:] -= 0.5 / segments
    u[-1, :-1] += 0.5 / segments
    theta, phi = v * np.pi, (u - 0.5) * 2 * np.pi
    # Inverse of the lat-long map: u = atan2(x, -z) / (2 pi) + 1/2, v = acos(y) / pi.
    dirs = np.stack([np.sin(theta) * np.sin(phi), np.cos(theta), -np.sin(theta) * np.cos(phi)], axis=-1)
    dirs = dirs.reshape(-1, 3)
    uvs = np.stack([u, v], axis=-1).reshape(-1, 2)
    # (i, j) = (ring row, segment column); dP/du x dP/dv points outwards, and so do the faces.
    faces = _grid_triangles(rings, segments)
    # Drop the degenerate half of each cell touching a pole, and the two pole copies left unused.
    w = segments + 1
    keep = ~((faces // w == 0).sum(1) == 2) & ~((faces // w == rings).sum(1) == 2)
    faces, (dirs, uvs) = _compact(faces[keep], dirs, uvs)
    return _mesh(center + radius * dirs, faces, uvs, dirs)


def _compact(faces: np.ndarray, *attributes: np.ndarray):
    """Drops the vertices no face uses: (faces renumbered, [attribute[used] for each])."""
    used = np.zeros(len(attributes[0]), dtype=bool)
    used[faces.reshape(-1)] = True
    remap = np.cumsum(used) - 1
    return remap[faces], [a[used] for a in attributes]


def _grid_triangles(rows: int, cols: int) -> np.ndarray:
    """Two triangles per cell of a (rows + 1) x (cols + 1) vertex grid, id = i * (cols + 1) + j.

    Each triangle's ``cross(v1 - v0, v2 - v0)`` has the direction of ``dP/dj x dP/di``.
    """
    i, j = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    p00 = (i * (cols + 1) + j).reshape(-1)
    p01, p10 = p00 + 1, p00 + cols + 1
    p11 = p10 + 1
    return np.concatenate([np.stack([p00, p01, p10], 1), np.stack([p01, p11, p10], 1)])


# ------------------------------------------------------------------------------------------------
# Plane and box
# ------------------------------------------------------------------------------------------------
# Facing direction -> (normal, u axis, v axis). The axes satisfy u x v = -normal, so a texture
# reads upright (row 0 at the top, u to the right) when the plane is seen from its front with
# the v axis pointing down the screen.
_PLANE_FRAMES = {
    "+x": ((1, 0, 0), (0, 0, -1), (0, -1, 0)),
    "-x": ((-1, 0, 0), (0, 0, 1), (0, -1, 0)),
    "+y": ((0, 1, 0), (1, 0, 0), (0, 0, 1)),
    "-y": ((0, -1, 0), (1, 0, 0), (0, 0, -1)),
    "+z": ((0, 0, 1), (1, 0, 0), (0, -1, 0)),
    "-z": ((0, 0, -1), (-1, 0, 0), (0, -1, 0)),
}


def plane(size: Sequence[float] = (1.0, 1.0), center: Sequence[float] = (0.0, 0.0, 0.0),
          normal: str = "+y") -> Mesh:
    """An axis-aligned rectangle of two triangles.

    Args:
        size: (width, height) along the plane's u and v axes (a scalar gives a square).
        center: [3], the centre.
        normal: the axis the front faces: "+y" (default), "-y", "+x", "-x", "+z" or "-z".
            The (u, v) axes are: +y: (+x, +z); -y: (+x, -z); +z: (+x, -y); -z: (-x, -y);
            +x: (-z, -y); -x: (+z, -y).

    Returns:
        Mesh: vertices [4, 3], indices [2, 3], uvs [4, 2] (the unit square: u along the u axis,
        v along the v axis), normals [4, 3] (all equal to ``normal``).
    """
    size = _vec(size, "size", 2, positive=True)
    center = _vec(center, "center", 3)
    if normal not in _PLANE_FRAMES:
        raise ValueError(f"normal must be one of {tuple(_PLANE_FRAMES)} (got {normal!r})")
    n, tu, tv = (np.array(a, dtype=np.float64) for a in _PLANE_FRAMES[normal])
    uvs = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    verts = center + (uvs[:, :1] - 0.5) * size[0] * tu + (uvs[:, 1:] - 0.5) * size[1] * tv
    # u x v = -n, so (0, 2, 1) and (0, 3, 2) wind towards n.
    indices = np.array([[0, 2, 1], [0, 3, 2]])
    return _mesh(verts, indices, uvs, np.tile(n, (4, 1)))


def box(size: Sequence[float] = (1.0, 1.0, 1.0), center: Sequence[float] = (0.0, 0.0, 0.0),
        watertight: bool = True) -> Mesh:
    """An axis-aligned box of 12 triangles.

    Args:
        size: (x, y, z) edge lengths (a scalar gives a cube).
        center: [3], the centre.
        watertight: if True, 8 shared corners: a closed manifold mesh, flat-shaded, with uvs
            and normals None (a corner has no single normal or uv). If False, 24 vertices, four
            per face, each face with its own unit-square uvs (laid out as ``plane``) and its
            face normal.

    Returns:
        Mesh: vertices [8, 3] or [24, 3], indices [12, 3], uvs None or [24, 2], normals None
        or [24, 3].
    """
    size = _vec(size, "size", 3, positive=True)
    center = _vec(center, "center", 3)
    watertight = _boolean(watertight, "watertight")
    half = size / 2
    if watertight:
        corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
        faces = np.array([
            [0, 1, 3], [0, 3, 2],  # -x
            [4, 6, 7], [4, 7, 5],  # +x
            [0, 4, 5], [0, 5, 1],  # -y
            [2, 3, 7], [2, 7, 6],  # +y
            [0, 2, 6], [0, 6, 4],  # -z
            [1, 5, 7], [1, 7, 3],  # +z
        ])
        return _mesh(center + corners * half, faces, None, None)
    verts, faces, uvs, normals = [], [], [], []
    for k, key in enumerate(("+x", "-x", "+y", "-y", "+z", "-z")):
        n, tu, tv = (np.array(a, dtype=np.float64) for a in _PLANE_FRAMES[key])
        axis = int(np.argmax(np.abs(n)))
        extent_u, extent_v = size[int(np.argmax(np.abs(tu)))], size[int(np.argmax(np.abs(tv)))]
        sq = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
        verts.append(center + n * half[axis] + (sq[:, :1] - 0.5) * extent_u * tu
                     + (sq[:, 1:] - 0.5) * extent_v * tv)
        faces.append(4 * k + np.array([[0, 2, 1], [0, 3, 2]]))
        uvs.append(sq)
        normals.append(np.tile(n, (4, 1)))
    return _mesh(np.concatenate(verts), np.concatenate(faces), np.concatenate(uvs), np.concatenate(normals))


# ------------------------------------------------------------------------------------------------
# The Utah teapot
# ------------------------------------------------------------------------------------------------
def _bernstein(t: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Cubic Bernstein basis and its derivative at t: two [len(t), 4] arrays."""
    s = 1 - t
    b = np.stack([s**3, 3 * t * s**2, 3 * t**2 * s, t**3], axis=1)
    db = np.stack([-3 * s**2, 3 * s**2 - 6 * t * s, 6 * t * s - 3 * t**2, 3 * t**2], axis=1)
    return b, db


def _eval_patches(ctrl: np.ndarray, u: np.ndarray, v: np.ndarray):
    """Bicubic patches [P, 4, 4, 3] (rows along v, columns along u) at the grid v x u.

    Returns P, dP/du, dP/dv, each [P, len(v), len(u), 3].
    """
    bu, dbu = _bernstein(u)
    bv, dbv = _bernstein(v)
    pos = np.einsum("ai,bj,pijc->pabc", bv, bu, ctrl)
    du = np.einsum("ai,bj,pijc->pabc", bv, dbu, ctrl)
    dv = np.einsum("ai,bj,pijc->pabc", dbv, bu, ctrl)
    return pos, du, dv


def _patch_uv_layout():
    """Per patch [32, 4]: (u offset, u scale, v offset, v scale) mapping its (u, v) to a part-wide uv.

    Around the rotationally symmetric parts u is the angle (u = 0 at +x, increasing clockwise
    seen from above, i.e. towards -y in the data's z-up frame); along them v runs from the top
    of the part to its bottom: the pot (rim, body, bottom) over [0, 1] and the lid (knob, lid)
    over [0, 1]. The handle and spout use u around their cross-section and v along their length.
    """
    layout = []
    for p in range(32):
        k = p % 4
        if p < 4:      # rim: v from the inner lip over the top to the outside
            layout.append((k / 4, 1 / 4, 0.0, 1 / 4))
        elif p < 12:   # body: two rings below the rim
            ring = (p - 4) // 4
            layout.append((k / 4, 1 / 4, (1 + ring) / 4, 1 / 4))
        elif p < 20:   # handle, spout: two halves around, two segments along
            q = p - 12 if p < 16 else p - 16
            layout.append(((q % 2) / 2, 1 / 2, (q // 2) / 2, 1 / 2))
        elif p < 28:   # lid: knob, then the lid
            ring = (p - 20) // 4
            layout.append((k / 4, 1 / 4, ring / 2, 1 / 2))
        else:          # bottom: u runs the other way round and v from the centre outwards
            layout.append((1 - k / 4, -1 / 4, 1.0, -1 / 4))
    return np.array(layout)


def _patch_parts() -> np.ndarray:
    """Per patch, the connected part it belongs to: 0 pot (rim, body, bottom), 1 handle, 2 spout,
    3 lid."""
    ids = {"rim": 0, "body": 0, "bottom": 0, "handle": 1, "spout": 2, "lid": 3}
    parts = np.empty(32, dtype=np.int64)
    for name, first, end in _teapot_data.PATCH_GROUPS:
        parts[first:end] = ids[name]
    return parts


def teapot(subdivisions: int = 8, normalize: bool = False, split_uv_seams: bool = False) -> Mesh:
    """The Utah teapot, tessellated from Martin Newell's 32 bicubic Bezier patches.

    Every patch (rim, body, handle, spout, lid and bottom) is evaluated on a
    ``(subdivisions + 1)**2`` grid, with analytic normals ``dP/du x dP/dv`` from the Bernstein
    derivatives (at the poles of the lid and the bottom, where dP/du vanishes, the normal is taken
    a hair inside the patch). Coincident vertices along patch seams are welded (their normals
    averaged), degenerate triangles at the poles dropped, and every triangle wound to agree
    with the analytic normals, which point out of the teapot. Its four parts (the pot: rim, body
    and bottom; the lid; the handle; the spout) are separate surfaces that share no vertices.

    The teapot stands upright with +y up (the data's z axis becomes y): the spout points to +x,
    the handle to -x, and it is mirror-symmetric across the z = 0 plane. In the original units
    it spans x in [-3, 3.43] (handle to spout tip), y in [0, 3.15] (the lid's knob) and z in
    [-2, 2].

    The surface is not closed, as in the original data: the pot's rim is open inside its inner
    lip (the lid sits in it), the lid is open underneath, and the handle and spout are tubes
    open at both ends (their ends meet the body without being stitched to it).

    Args:
        subdivisions: 1 to 64 grid cells along each side of each patch.
        normalize: if True, translate the bounding box's centre to the origin and scale
            uniformly so that the teapot fits in the unit sphere (its farthest vertex at
            distance 1).
        split_uv_seams: if False, every coincident vertex is welded, so uvs wrap across one
            column of triangles where each part's u goes from 1 back to 0, and at the poles. If
            True, vertices are welded only where their uvs agree too: the uvs interpolate
            continuously, and the mesh is cut along those seams.

    Returns:
        Mesh: vertices [N, 3], indices [M, 3], uvs [N, 2] (per part, see below), normals [N, 3].
        With the default 8 subdivisions, N = 2082 and M = 4032.

    UVs: around the pot (rim, body, bottom), the lid, the handle and the spout, u runs around
    and v along each part, both over [0, 1]; the parts overlap in uv space.
    """
    subdivisions = _count(subdivisions, "subdivisions", 1, 64)
    normalize = _boolean(normalize, "normalize")
    split_uv_seams = _boolean(split_uv_seams, "split_uv_seams")
    n = subdivisions
    ctrl = np.asarray(_teapot_data.VERTICES, dtype=np.float64)[
        np.asarray(_teapot_data.PATCHES, dtype=np.int64) - 1].reshape(32, 4, 4, 3)
    t = np.linspace(0.0, 1.0, n + 1)

    # Evaluate every patch and its analytic normal on the grid.
    pos, du, dv = _eval_patches(ctrl, t, t)
    normal = np.cross(du, dv)
    length = np.linalg.norm(normal, axis=-1)
    degenerate = length < 1e-9 * max(1.0, float(np.abs(pos).max()))
    if degenerate.any():
        # A collapsed patch edge (the lid's and bottom's poles): take the normal a hair inside
        # the patch, where both derivatives are nonzero; on a smooth pole it is the limit.
        p_idx, a_idx, b_idx = np.nonzero(degenerate)
        eps = 1e-4
        tv_in = np.clip(t[a_idx], eps, 1 - eps)
        tu_in = np.clip(t[b_idx], eps, 1 - eps)
        bu, dbu = _bernstein(tu_in)
        bv, dbv = _bernstein(tv_in)
        c = ctrl[p_idx]
        du_in = np.einsum("ni,nj,nijc->nc", bv, dbu, c)
        dv_in = np.einsum("ni,nj,nijc->nc", dbv, bu, c)
        normal[p_idx, a_idx, b_idx] = np.cross(du_in, dv_in)
    normal = _unit(normal)

    # Part-wide uvs from each patch's (u, v).
    lay = _patch_uv_layout()
    uu, vv = np.meshgrid(t, t)  # [v, u] grids
    uvs = np.stack([lay[:, None, None, 0] + lay[:, None, None, 1] * uu,
                    lay[:, None, None, 2] + lay[:, None, None, 3] * vv], axis=-1)

    # Triangulate each patch grid (rows along v, columns along u): windings follow dP/du x dP/dv.
    per = (n + 1) ** 2
    grid = _grid_triangles(n, n)
    faces = (np.arange(32)[:, None, None] * per + grid[None]).reshape(-1, 3)
    pos, normal, uvs = pos.reshape(-1, 3), normal.reshape(-1, 3), uvs.reshape(-1, 2)

    # z up -> y up: (x, y, z) -> (x, z, -y), a rotation about x.
    rot = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    pos, normal = pos @ rot.T, normal @ rot.T

    # Weld coincident vertices of the same part (the handle's end touches the body at a point
    # where the surfaces meet at an angle: it stays two vertices), and with split_uv_seams
    # only those with equal uvs.
    tol = 1e-6 * float(np.abs(pos).max())
    part = np.repeat(_patch_parts(), per).astype(np.float64)
    key = np.concatenate([np.round(pos / tol), part[:, None]], axis=1)
    if split_uv_seams:
        key = np.concatenate([key, np.round(uvs / 1e-6)], axis=1)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    count = len(first)
    w_pos = pos[first]
    w_uvs = uvs[first]
    w_normal = np.zeros((count, 3))
    np.add.at(w_normal, inverse, normal)
    w_normal = _unit(w_normal)
    faces = inverse[faces]

    # Drop degenerate triangles (the pole rows), then wind each along its vertices' normals.
    e1 = w_pos[faces[:, 1]] - w_pos[faces[:, 0]]
    e2 = w_pos[faces[:, 2]] - w_pos[faces[:, 0]]
    cross = np.cross(e1, e2)
    area2 = np.linalg.norm(cross, axis=1)
    keep = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 2] != faces[:, 0])
    keep &= area2 > tol * tol
    faces, cross = faces[keep], cross[keep]
    flip = np.einsum("ij,ij->i", cross, w_normal[faces].sum(axis=1)) < 0
    faces[flip] = faces[flip][:, ::-1]

    # Keep only the vertices the triangles use (split seams leave some pole copies unused).
    faces, (w_pos, w_uvs, w_normal) = _compact(faces, w_pos, w_uvs, w_normal)

    if normalize:
        lo, hi = w_pos.min(axis=0), w_pos.max(axis=0)
        w_pos = w_pos - (lo + hi) / 2
        w_pos = w_pos / np.linalg.norm(w_pos, axis=1).max()
    return _mesh(w_pos, faces, w_uvs, w_normal)
