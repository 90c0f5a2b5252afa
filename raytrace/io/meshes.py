"""Triangle meshes from files: OBJ, PLY, STL, OFF, GLB and glTF.

    mesh = rt.load_mesh("bunny.ply")                 # {"vertices", "indices", "uvs", "normals"}
    shape = rt.Shape(**mesh, material_id=0)

:func:`load_mesh` returns the same kind of dict as :func:`raytrace.load_obj` (whose reader it
uses for ``.obj``): ``vertices`` [N, 3] float32, ``indices`` [M, 3] int64, ``uvs`` [N, 2]
float32 or None and ``normals`` [N, 3] float32 or None, so ``rt.Shape(**mesh, material_id=k)``
builds a shape from it.

Conventions:

- ``uvs`` and ``normals`` are present only when the file has them. A file without vertex
  normals gives ``normals=None`` (the shape is flat-shaded); nothing is computed. Normals are
  normalised to unit length.
- Texture coordinates follow raytrace's convention (row 0 of a texture is v = 0, the top of the
  image): OBJ, PLY and OFF store v pointing up the image and are read as ``(u, 1 - v)``; glTF
  stores v pointing down and is read as is (trimesh flips it on import, and it is flipped back).
- Files other than OBJ are parsed by trimesh with ``process=False``: trimesh neither merges
  nor reorders vertices, nor drops degenerate faces, so the vertices are the file's. Polygons
  (quads in PLY/OFF) are fan-triangulated by trimesh. STL stores every triangle with its own
  three corners; by default they are welded (see ``weld``) so the mesh is index-connected.
- What is returned is checked: indices in range and non-negative, vertices, uvs and normals
  finite in float32. A file that breaks this (a PLY face with index 7 of 3 vertices, -1, a
  NaN vertex) is a ValueError naming the file, the part and the element (``face 0``, ``vertex
  2``). So is every failure inside trimesh (with its exception chained), and a file past the
  size limits (:class:`raytrace.io.Limits`), which is checked before it is read.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from .arrays import check_mesh
from .limits import Budget, Limits

__all__ = ["load_mesh", "MESH_FORMATS", "MeshFileNotFoundError"]

PathLike = Union[str, os.PathLike]
MeshDict = Dict[str, Optional[torch.Tensor]]

#: File extensions load_mesh reads, and the trimesh file type of each.
MESH_FORMATS = {".obj": "obj", ".ply": "ply", ".stl": "stl", ".off": "off", ".glb": "glb",
                ".gltf": "gltf"}


class MeshFileNotFoundError(FileNotFoundError, ValueError):
    """A mesh file that does not exist. Both a FileNotFoundError and a ValueError (raytrace's
    loaders report bad input as ValueError)."""


def load_mesh(path: PathLike, *, part: Union[None, int, str] = None, split: bool = False,
              weld: Optional[bool] = None, limits: Optional[Limits] = None
              ) -> Union[MeshDict, Dict[str, MeshDict]]:
    """Reads a triangle mesh file.

    Args:
        path: a ``.obj``, ``.ply``, ``.stl``, ``.off``, ``.glb`` or ``.gltf`` file (the
            extension picks the reader, case-insensitively).
        part: for files that hold several meshes (glTF/GLB scenes): which one to read, by
            index (parts are ordered as the file's meshes) or by name (the scene-graph node's
            name, or the mesh's name). None (default) reads all of them, each placed by its
            scene-graph transform, and concatenates them into one mesh.
        split: return every part separately, as ``{node name: mesh dict}`` (ordered as the
            file's meshes; each placed by its transform). Cannot be combined with ``part``.
        weld: merge vertices whose position, uv and normal are all bit-identical (it never
            changes the surface or its shading, only its connectivity). None (default) welds
            STL files only, whose triangles do not share vertices by construction.
        limits: size limits (:class:`raytrace.io.Limits`; None: the defaults): the file's size
            before it is read, the returned arrays' elements and bytes.

    Returns:
        dict with "vertices" [N, 3] float32, "indices" [M, 3] int64 (front face:
        ``cross(v1 - v0, v2 - v0)``, the file's winding), "uvs" [N, 2] float32 or None and
        "normals" [N, 3] float32 unit vectors or None (see the module docstring). With
        ``split=True``, a dict of such dicts.

        When the parts of a concatenated scene differ, vertices of parts without uvs get uv
        (0, 0) (as ``load_obj`` does), and parts without normals get their face normals
        (their vertices are split per triangle), so they stay flat-shaded.

    Raises:
        MeshFileNotFoundError (a ValueError): the file does not exist.
        ValueError: unknown extension, unreadable or malformed file, invalid indices or
            non-finite values, no triangles, unknown ``part``, a size limit exceeded; the
            message starts with the file name.
        TypeError: an argument of the wrong type.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike (got {type(path).__name__})")
    if part is not None and (isinstance(part, bool) or not isinstance(part, (int, str))):
        raise TypeError(f"part must be None, an int or a str (got {type(part).__name__})")
    if not isinstance(split, bool):
        raise TypeError(f"split must be a bool (got {type(split).__name__})")
    if weld is not None and not isinstance(weld, bool):
        raise TypeError(f"weld must be None or a bool (got {type(weld).__name__})")
    if split and part is not None:
        raise ValueError("give either part= or split=True, not both")
    return _load_mesh(Path(path), str(path), Budget(limits), part=part, split=split, weld=weld,
                      obj_warn=True)


def _load_mesh(file: Path, shown: str, budget: Budget, *, part: Union[None, int, str] = None,
               split: bool = False, weld: Optional[bool] = None,
               obj_warn: bool = False) -> Union[MeshDict, Dict[str, MeshDict]]:
    """load_mesh within a load's budget (scene loaders share one across their files).
    `obj_warn`: warn when an OBJ file's groups / materials are merged (load_mesh does; scene
    loaders give the mesh its material and do not)."""
    suffix = file.suffix.lower()
    if suffix not in MESH_FORMATS:
        raise ValueError(f"{shown}: unknown mesh format {file.suffix!r} (supported: "
                         f"{', '.join(MESH_FORMATS)})")
    if not file.is_file():
        raise MeshFileNotFoundError(f"{shown}: no such file" if not file.exists()
                                    else f"{shown}: not a file")
    if weld is None:
        weld = suffix == ".stl"
    try:
        size = budget.check_file(file, shown)
    except OSError as e:
        raise ValueError(f"{shown}: cannot read ({e})") from e

    if suffix == ".stl":
        _check_stl(file, shown, size)
    try:
        parts = _read_parts(file, shown, suffix, budget, obj_warn)
        if part is not None:
            parts = [_select(parts, part, shown)]
        if split:
            return {name: _finish(p, weld, shown, budget, f"mesh {name!r}: ") for name, p in parts}
        where = f"mesh {parts[0][0]!r}: " if len(parts) == 1 and suffix in (".glb", ".gltf") else ""
        return _finish(_concatenate([p for _, p in parts]), weld, shown, budget, where)
    except MemoryError as e:
        raise ValueError(f"{shown}: out of memory reading the mesh") from e


def _check_stl(file: Path, shown: str, size: int) -> None:
    """Refuses a file that is neither binary STL (84 + 50 bytes per triangle its header
    declares) nor ASCII STL (ASCII text starting with 'solid'), before trimesh guesses."""
    with open(file, "rb") as f:
        head = f.read(84)
        if len(head) == 84 and 84 + 50 * int.from_bytes(head[80:84], "little") == size:
            return  # binary
        if head.lstrip().lower().startswith(b"solid"):
            data = head + f.read()
            bad = next((i for i, b in enumerate(data) if b > 127), None)
            if bad is None:
                return  # ASCII
            raise ValueError(f"{shown}: not an STL file: starts like ASCII STL ('solid') but byte "
                             f"{bad} is not ASCII ({data[bad]:#04x})")
    declared = int.from_bytes(head[80:84], "little") if len(head) == 84 else None
    raise ValueError(f"{shown}: not an STL file: neither binary STL (its {size} bytes are not 84 + "
                     f"50 x the {declared} triangles its header declares) nor ASCII STL (it does "
                     "not start with 'solid')")


# =============================================================================================
# Reading
# =============================================================================================
_Part = Dict[str, Optional[np.ndarray]]  # numpy float64 vertices/uvs/normals, int64 indices


def _read_parts(file: Path, shown: str, suffix: str, budget: Budget,
                obj_warn: bool = False) -> List[Tuple[str, _Part]]:
    """The file's meshes as (name, part), ordered as its meshes, each in world space, each
    checked (indices in range, finite values)."""
    if suffix == ".obj":
        from .obj import _load_obj  # noqa: PLC0415

        m = _load_obj(file, shown, budget, warn=obj_warn, warn_unread_material=False)  # errors name file and line
        part = {k: (None if v is None else v.numpy().astype(np.int64 if k == "indices" else np.float64))
                for k, v in m.items()}
        return [(file.stem, part)]

    import trimesh  # noqa: PLC0415

    try:  # trimesh raises every kind of error on malformed files, some of them lazily
        with np.errstate(all="ignore"):  # overflow in its casts: check_mesh reports it
            loaded = trimesh.load(str(file), file_type=MESH_FORMATS[suffix], process=False,
                                  force="scene")
        raw = []
        skipped = []
        graph = loaded.graph
        # Nodes in the order of the file's meshes (trimesh's node order is not the file's).
        mesh_order = {name: i for i, name in enumerate(loaded.geometry)}
        nodes = sorted(((node,) + tuple(graph[node]) for node in graph.nodes_geometry),
                       key=lambda n: (mesh_order.get(n[2], len(mesh_order)), str(n[0])))
        for node, matrix, geom_name in nodes:
            geom = loaded.geometry[geom_name]
            if not isinstance(geom, trimesh.Trimesh):
                skipped.append(f"{node} ({type(geom).__name__})")
                continue
            raw.append((str(node), geom_name, np.asarray(matrix, dtype=np.float64),
                        _from_trimesh(geom, suffix)))
    except MemoryError as e:
        raise ValueError(f"{shown}: out of memory reading the mesh") from e
    except Exception as e:
        hint = " (trimesh needs an optional module for this file: is it well-formed?)" \
            if isinstance(e, ImportError) else ""
        raise ValueError(f"{shown}: cannot read as {suffix[1:].upper()}{hint} "
                         f"({type(e).__name__}: {e})") from e

    parts: List[Tuple[str, _Part]] = []
    for node, geom_name, matrix, part in raw:
        check_mesh(part, shown, f"mesh {node!r}: " if suffix in (".glb", ".gltf") else "")
        part = _transform(part, matrix)
        part["_geometry"] = geom_name  # type: ignore[assignment]  (for selection by mesh name)
        parts.append((node, part))
    if skipped:
        warnings.warn(f"{shown}: skipped parts without triangles: {', '.join(skipped)}", stacklevel=4)
    if not parts or all(len(p["indices"]) == 0 for _, p in parts):
        raise ValueError(f"{shown}: no triangles (empty mesh)")
    return parts


def _has_file_normals(geom) -> bool:
    """Whether trimesh read vertex normals from the file (it stores them in its cache at load
    time; with process=False nothing else has computed them yet)."""
    cache = getattr(geom, "_cache", None)
    try:
        return cache is not None and "vertex_normals" in cache
    except TypeError:
        return False


def _from_trimesh(geom, suffix: str) -> _Part:
    vertices = np.asarray(geom.vertices, dtype=np.float64).reshape(-1, 3)
    faces = np.asarray(geom.faces, dtype=np.int64).reshape(-1, 3)
    normals = None
    if _has_file_normals(geom) and len(vertices):
        n = np.asarray(geom.vertex_normals, dtype=np.float64)
        if n.shape == vertices.shape:
            normals = n
    uvs = None
    uv = getattr(geom.visual, "uv", None)
    if uv is not None:
        uv = np.asarray(uv, dtype=np.float64)
        if uv.shape == (len(vertices), 2):
            # trimesh holds uvs with v pointing up the image (it flips glTF's on import);
            # raytrace's v points down (row 0 is v = 0).
            uvs = np.stack([uv[:, 0], 1.0 - uv[:, 1]], axis=1)
    return {"vertices": vertices, "indices": faces, "uvs": uvs, "normals": normals}


def _transform(part: _Part, matrix: np.ndarray) -> _Part:
    """Applies a 4x4 affine transform: positions, normals (inverse transpose), and the winding
    when the transform mirrors (so the front face stays the side the normals face)."""
    if np.allclose(matrix, np.eye(4)):
        return part
    part = dict(part)
    a, t = matrix[:3, :3], matrix[:3, 3]
    part["vertices"] = part["vertices"] @ a.T + t
    if part["normals"] is not None:
        part["normals"] = part["normals"] @ np.linalg.inv(a)
    if np.linalg.det(a) < 0:
        part["indices"] = part["indices"][:, [0, 2, 1]]
    return part


def _select(parts: List[Tuple[str, _Part]], part: Union[int, str], shown: str) -> Tuple[str, _Part]:
    names = [n for n, _ in parts]
    if isinstance(part, int):
        if not -len(parts) <= part < len(parts):
            raise ValueError(f"{shown}: part {part} out of range (the file has {len(parts)} "
                             f"meshes: {', '.join(names)})")
        return parts[part]
    for n, p in parts:
        if n == part:
            return n, p
    matches = [(n, p) for n, p in parts if p.get("_geometry") == part]
    if len(matches) == 1:
        return matches[0]
    raise ValueError(f"{shown}: no mesh named {part!r} (the file has: {', '.join(names)})"
                     if not matches else
                     f"{shown}: {len(matches)} nodes use the mesh {part!r}; select one by node "
                     f"name ({', '.join(n for n, _ in matches)}) or index")


# =============================================================================================
# Assembling
# =============================================================================================
def _flat(part: _Part) -> _Part:
    """Splits vertices per triangle and gives each its face normal (exact flat shading)."""
    v, f = part["vertices"], part["indices"]
    corners = f.reshape(-1)
    tri = v[f]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    return {"vertices": v[corners], "indices": np.arange(len(corners), dtype=np.int64).reshape(-1, 3),
            "uvs": None if part["uvs"] is None else part["uvs"][corners],
            "normals": np.repeat(n, 3, axis=0)}


def _concatenate(parts: List[_Part]) -> _Part:
    if len(parts) == 1:
        return parts[0]
    any_uvs = any(p["uvs"] is not None for p in parts)
    any_normals = any(p["normals"] is not None for p in parts)
    if any_normals:
        parts = [p if p["normals"] is not None else _flat(p) for p in parts]
    vertices, indices, uvs, normals = [], [], [], []
    offset = 0
    for p in parts:
        vertices.append(p["vertices"])
        indices.append(p["indices"] + offset)
        offset += len(p["vertices"])
        if any_uvs:
            uvs.append(p["uvs"] if p["uvs"] is not None else np.zeros((len(p["vertices"]), 2)))
        if any_normals:
            normals.append(p["normals"])
    return {"vertices": np.concatenate(vertices), "indices": np.concatenate(indices),
            "uvs": np.concatenate(uvs) if any_uvs else None,
            "normals": np.concatenate(normals) if any_normals else None}


def _weld(v: np.ndarray, f: np.ndarray, uvs, normals):
    """Merges bit-identical (position, uv, normal) vertices, keeping first-occurrence order."""
    columns = [v] + [a for a in (uvs, normals) if a is not None]
    key = np.ascontiguousarray(np.concatenate(columns, axis=1))
    _, first, inverse = np.unique(key.view(np.dtype((np.void, key.dtype.itemsize * key.shape[1]))).ravel(),
                                  return_index=True, return_inverse=True)
    order = np.argsort(first)  # unique rows in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    keep = first[order]
    return (v[keep], rank[inverse.reshape(-1)][f],
            None if uvs is None else uvs[keep], None if normals is None else normals[keep])


def _finish(part: _Part, weld: bool, shown: str, budget: Budget, where: str) -> MeshDict:
    """float64/int64 numpy part -> the float32/int64 tensor dict, with unit normals, checked
    (a transform can overflow float32) and counted against the budget."""
    check_mesh(part, shown, where)
    v = part["vertices"].astype(np.float32)
    f = np.asarray(part["indices"], dtype=np.int64).reshape(-1, 3)
    uvs = None if part["uvs"] is None else part["uvs"].astype(np.float32)
    normals = None
    if part["normals"] is not None:
        n = part["normals"]
        length = np.linalg.norm(n, axis=1, keepdims=True)
        normals = (n / np.where(length > 0, length, 1.0)).astype(np.float32)
    if weld and len(v):
        v, f, uvs, normals = _weld(v, f, uvs, normals)
    for name, a in (("vertices", v), ("indices", f), ("uvs", uvs), ("normals", normals)):
        if a is not None:
            budget.check_array(shown, name, a.shape, a.itemsize)

    def t(a):
        return None if a is None else torch.from_numpy(np.ascontiguousarray(a))
    return {"vertices": t(v), "indices": t(f), "uvs": t(uvs), "normals": t(normals)}
