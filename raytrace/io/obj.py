"""Wavefront OBJ files: ``rt.load_obj``, raytrace's own reader.

    mesh = rt.load_obj("bunny.obj")                          # one mesh: a dict of tensors
    objects = rt.load_obj("room.obj", return_objects=True)   # one ObjObject per group / material
    scene = rt.Scene(camera, *rt.io.scene_parts(objects))    # shapes, materials, area lights

Reads ``v``, ``vt``, ``vn``, ``f``, ``o``, ``g``, ``usemtl``, ``mtllib`` and ``s``; materials come
from the ``.mtl`` files (:mod:`raytrace.io.mtl`). Every error names the file and the line.
Numbers must be finite *in float32*, the precision the mesh is returned in: ``v 1e39 0 0`` is
refused on its line rather than becoming inf.

Vertices. An OBJ face corner names a position, a texture coordinate and a normal by separate
indices (``v/vt/vn``). raytrace's shapes have one index per vertex, so each distinct
(position, uv, normal) triple becomes one vertex: a position is split only where its corners
differ (a uv seam, a crease with its own normals), in the order the triples first appear.

Computed normals (``compute_normals=True``, the default with ``return_objects=True``). Faces
without ``vn`` get vertex normals computed *before* the split, on the welded positions (corners
naming the same ``v``): the area-weighted sum of the face normals of every face around the
position in the same smoothing group (``s 1``, ``s 2``, ...; a file without ``s`` is one group).
So the copies of a position on both sides of a uv seam (or of a group or material boundary)
get the same normal and no shading seam appears. Faces in ``s off`` / ``s 0`` get their face
normal (flat). Positions are welded by their index: two ``v`` lines with the same coordinates
stay apart (exporters write them to keep an edge hard).
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple, Union

import numpy as np
import torch

from .._validation import boolean
from .limits import Budget, Limits
from .paths import FileAccess, check_policy_args

__all__ = ["load_obj", "ObjObject", "ObjWarning", "SceneParts", "scene_parts"]

PathLike = Union[str, os.PathLike]
MeshDict = Dict[str, Optional[torch.Tensor]]
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_LISTED = 8  # names listed in a "merged" warning before "and N more"


class ObjWarning(UserWarning):
    """Something in an OBJ or MTL file that load_obj ignored or merged (the message names it)."""


def warn(msg: str) -> None:
    """An ObjWarning shown as coming from the first caller outside raytrace.io."""
    here = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(0), 1
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == here:
        frame, level = frame.f_back, level + 1
    warnings.warn(msg, ObjWarning, stacklevel=level)


@dataclass
class ObjObject:
    """One part of an OBJ file: the faces of one group (``g`` / ``o``) with one material.

    Attributes:
        name: the group's name (``g``, else ``o``; "default" before any), as in the file.
        material_name: the ``usemtl`` name, or None for faces before any ``usemtl``.
        vertices: [N, 3] float32 positions (only those its faces use).
        indices: [M, 3] int64 triangles (polygons fan-triangulated; the file's winding).
        uvs: [N, 2] float32 or None, ``(u, 1 - v)`` of the file (raytrace's row 0 is v = 0);
            corners without ``vt`` get (0, 0). None when none of its faces has ``vt``.
        normals: [N, 3] float32 unit normals: the file's ``vn``, or computed (see the module
            docstring); None only with ``compute_normals=False`` and no ``vn``.
        material: the ``rt.Material`` built from the ``.mtl`` (:mod:`raytrace.io.mtl`); a
            diffuse 0.5 material when the file names none or the name is not defined.
        emission: [3] float32 ``Ke`` of the material when it is not black (the object is then
            an area light of that radiance), else None.
        textures: the texture files of its material, by MTL key (``map_Kd``, ``map_Ks``,
            ``map_Bump``, ...): real paths, including those raytrace does not use (bump maps).
    """
    name: str
    material_name: Optional[str]
    vertices: torch.Tensor
    indices: torch.Tensor
    uvs: Optional[torch.Tensor]
    normals: Optional[torch.Tensor]
    material: "object"
    emission: Optional[torch.Tensor] = None
    textures: Dict[str, str] = field(default_factory=dict)

    def mesh(self) -> MeshDict:
        """The geometry as ``load_obj``'s dict: ``rt.Shape(**obj.mesh(), material_id=k)``."""
        return {"vertices": self.vertices, "indices": self.indices, "uvs": self.uvs,
                "normals": self.normals}


class SceneParts(NamedTuple):
    """What :func:`scene_parts` returns; ``rt.Scene(camera, *parts)`` takes it in order."""
    shapes: list
    materials: list
    area_lights: list


def scene_parts(objects: Iterable[ObjObject], *, shape_offset: int = 0,
                material_offset: int = 0) -> SceneParts:
    """Shapes, materials and area lights for ``rt.Scene`` from ``load_obj(...,
    return_objects=True)``.

    Objects with the same material (the same ``usemtl`` name of one file: the same
    ``ObjObject.material`` object) share one ``rt.Material``; an object with ``emission`` gets an
    ``rt.AreaLight`` of that radiance (one-sided: it emits on the side its normals face).

    Args:
        objects: ObjObjects (of one or several files).
        shape_offset: the index the first shape will have in ``Scene.shapes`` (when the parts
            are appended to other shapes), for the area lights' ``shape_id``.
        material_offset: the index the first material will have in ``Scene.materials``.

    Returns:
        SceneParts(shapes, materials, area_lights): ``rt.Scene(camera, *parts)``.
    """
    from .. import AreaLight, Shape  # noqa: PLC0415
    from .._validation import integer  # noqa: PLC0415

    shape_offset = integer(shape_offset, "shape_offset", minimum=0)
    material_offset = integer(material_offset, "material_offset", minimum=0)
    objects = list(objects)
    shapes, materials, lights = [], [], []
    index: Dict[int, int] = {}
    for i, obj in enumerate(objects):
        if not isinstance(obj, ObjObject):
            raise TypeError(f"objects[{i}] must be an ObjObject (from load_obj(..., "
                            f"return_objects=True)) (got {type(obj).__name__})")
        key = id(obj.material)
        if key not in index:
            index[key] = material_offset + len(materials)
            materials.append(obj.material)
        shapes.append(Shape(obj.vertices, obj.indices, index[key], uvs=obj.uvs, normals=obj.normals))
        if obj.emission is not None:
            lights.append(AreaLight(shape_offset + i, obj.emission))
    return SceneParts(shapes, materials, lights)


def load_obj(path: PathLike, *, return_objects: bool = False, compute_normals: Optional[bool] = None,
             allowed_paths: Optional[Iterable[PathLike]] = None, allow_any_path: bool = False,
             limits: Optional[Limits] = None) -> Union[MeshDict, List[ObjObject]]:
    """Reads a Wavefront OBJ file: one triangle mesh, or its objects with their materials.

    Polygons are fan-triangulated; indices may be negative (relative to the end of the list so
    far); each distinct ``v/vt/vn`` triple becomes one output vertex (module docstring). OBJ
    texture coordinates have v pointing up the image, raytrace textures have row 0 at v = 0, so
    ``v`` is flipped: ``uv = (u, 1 - v)``.

    Args:
        path: the ``.obj`` file.
        return_objects: False (default): one mesh of all faces, as before; a file with several
            groups or materials is merged, with an :class:`ObjWarning` naming what was merged,
            and its ``.mtl`` files are not read. True: a list of :class:`ObjObject`, one per
            (group, material) pair in order of first appearance, with the materials of the
            ``mtllib`` files (:mod:`raytrace.io.mtl`: Kd, Ks, Ns -> roughness, Ke,
            map_Kd / map_Ks textures; unsupported keys warned once each).
            :func:`scene_parts` turns them into shapes, materials and area lights.
        compute_normals: give faces without ``vn`` smooth vertex normals computed on the welded
            positions (module docstring). None (default): True with ``return_objects=True``,
            False otherwise (those faces keep ``normals=None``: flat shading, as before).
        allowed_paths: folders (or files) outside the OBJ file's folder whose files the
            ``mtllib`` and texture names may read. By default they must resolve, after
            symlinks, inside the OBJ file's folder (docs/limits.md).
        allow_any_path: let them read files anywhere (only for files you trust).
        limits: size limits (:class:`raytrace.io.Limits`; None: the defaults): the sizes of the
            file, ``.mtl`` files and textures (max_file_bytes), the returned arrays and textures
            (max_array_elements, max_image_pixels, max_total_bytes).

    Returns:
        With ``return_objects=False``: dict with "vertices" [N, 3] float32, "indices" [M, 3]
        int64, "uvs" [N, 2] float32 or None (None when no face uses ``vt``; vertices of faces
        without ``vt`` get uv (0, 0)), "normals" [N, 3] float32 or None (None when no face uses
        ``vn`` and normals are not computed). With ``return_objects=True``: a list of
        :class:`ObjObject`.

    Raises:
        ValueError: missing file, malformed statement, a number that is not finite in float32,
            index out of range, no faces, some faces with normals and others without (unless
            normals are computed), a malformed ``.mtl`` statement, an ``.mtl`` or texture file
            outside the allowed folders, or a limit exceeded (the message names the file, and
            the line where there is one). A missing ``.mtl`` or texture file is an
            :class:`ObjWarning` (the material falls back to its constants or the default).
        TypeError: an argument of the wrong type.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike (got {type(path).__name__})")
    return_objects = boolean(return_objects, "return_objects")
    compute_normals = return_objects if compute_normals is None else boolean(compute_normals, "compute_normals")
    allowed = check_policy_args(allowed_paths, allow_any_path)
    file, shown = Path(path), str(path)
    if not return_objects:
        return _load_obj(file, shown, Budget(limits), compute_normals=compute_normals, warn=True)
    access = FileAccess(file, shown, allowed, allow_any_path, limits)
    parsed = _read_and_parse(file, shown, access.budget)
    return _objects(parsed, shown, access, compute_normals)


def _load_obj(path: Path, shown: str, budget: Budget, *, compute_normals: bool = False,
              warn: bool = False, warn_unread_material: bool = True) -> MeshDict:
    """load_obj's single mesh within a load's budget (scene loaders share one across their
    files; they pass warn=False: a scene gives the mesh its material). load_mesh, a geometry
    reader, warns only of merged parts (warn_unread_material=False)."""
    parsed = _read_and_parse(path, shown, budget)
    if warn:
        _warn_merged(parsed, shown, warn_unread_material)
    mesh = _assemble_parts(parsed, shown, [np.arange(len(parsed.tri_v))], compute_normals, [""])[0]
    for key, value in mesh.items():
        if value is not None:
            budget.check_array(shown, key, tuple(value.shape), value.element_size())
    return mesh


# =============================================================================================
# Parsing
# =============================================================================================
class _Parsed:
    """An OBJ file's statements: the pools, and per triangle its corners, part and smoothing."""

    def __init__(self):
        self.positions: List[Tuple[float, float, float]] = []
        self.texcoords: List[Tuple[float, float]] = []
        self.normals: List[Tuple[float, float, float]] = []
        self.tri_v: List[Tuple[int, int, int]] = []
        self.tri_t: List[Tuple[int, int, int]] = []
        self.tri_n: List[Tuple[int, int, int]] = []
        self.tri_part: List[int] = []
        self.tri_smooth: List[int] = []   # smoothing group; -1: s off (flat)
        self.tri_line: List[int] = []
        self.parts: List[Tuple[str, Optional[str]]] = []  # (group name, usemtl name)
        self.part_lines: List[int] = []  # its usemtl's line (else its first face's)
        self.mtllibs: List[Tuple[str, int]] = []  # (name as written, line)


def _read_and_parse(path: Path, shown: str, budget: Budget) -> _Parsed:
    if not path.is_file():
        raise ValueError(f"{shown}: no such file")
    try:
        budget.check_file(path, shown)
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise ValueError(f"{shown}: cannot read ({e})") from e
    except MemoryError as e:
        raise ValueError(f"{shown}: out of memory reading the file") from e
    return _parse_obj(text, shown)


def statements(text: str):
    """(line number, keyword, arguments) of each statement: comments dropped, ``\\``
    continuations joined (shared with the MTL reader)."""
    lines = text.splitlines()
    lineno = 0
    while lineno < len(lines):
        line = lines[lineno]
        lineno += 1
        start = lineno
        while line.endswith("\\") and lineno < len(lines):  # line continuation
            line = line[:-1] + " " + lines[lineno]
            lineno += 1
        line = line.split("#", 1)[0]
        tokens = line.split()
        if tokens:
            yield start, tokens[0], tokens[1:], line.strip()[len(tokens[0]):].strip()


def parse_floats(fail, lineno: int, tokens: List[str], count: int, keyword: str) -> List[float]:
    """`count` numbers finite in float32 (ValueError from `fail(lineno, msg)` otherwise)."""
    if len(tokens) < count:
        raise fail(lineno, f"'{keyword}' needs {count} numbers, got {len(tokens)}")
    try:
        values = [float(t) for t in tokens[:count]]
    except ValueError:
        raise fail(lineno, f"'{keyword}' has a non-number in {' '.join(tokens)!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise fail(lineno, f"'{keyword}' has a non-finite number")
    big = next((v for v in values if abs(v) > _FLOAT32_MAX), None)
    if big is not None:
        raise fail(lineno, f"'{keyword}' has {big:g}, out of the float32 range "
                           f"(|x| <= {_FLOAT32_MAX:.4g})")
    return values


def _parse_obj(text: str, name: str) -> _Parsed:
    p = _Parsed()
    part_of: Dict[Tuple[str, Optional[str]], int] = {}
    group, material, smooth = "default", None, 0
    material_line = 0
    part = -1

    def fail(lineno: int, msg: str) -> ValueError:
        return ValueError(f"{name}: line {lineno}: {msg}")

    def resolve(lineno: int, token: str, count: int, kind: str) -> int:
        try:
            i = int(token)
        except ValueError:
            raise fail(lineno, f"bad {kind} index {token!r}") from None
        if i == 0:
            raise fail(lineno, f"{kind} index 0 is invalid (OBJ indices start at 1)")
        j = i - 1 if i > 0 else count + i
        if not 0 <= j < count:
            raise fail(lineno, f"{kind} index {i} out of range ({count} defined so far)")
        return j

    for start, keyword, args, rest in statements(text):
        if keyword == "v":
            p.positions.append(tuple(parse_floats(fail, start, args, 3, "v")))
        elif keyword == "vt":
            uv = parse_floats(fail, start, args, 2, "vt") if len(args) >= 2 else \
                parse_floats(fail, start, args, 1, "vt") + [0.0]
            p.texcoords.append((uv[0], 1.0 - uv[1]))
        elif keyword == "vn":
            p.normals.append(tuple(parse_floats(fail, start, args, 3, "vn")))
        elif keyword == "f":
            if len(args) < 3:
                raise fail(start, f"'f' needs at least 3 vertices, got {len(args)}")
            corners = []
            for ref in args:
                parts = ref.split("/")
                if len(parts) > 3 or parts[0] == "":
                    raise fail(start, f"bad face vertex {ref!r} "
                                      "(expected v, v/vt, v//vn or v/vt/vn)")
                vi = resolve(start, parts[0], len(p.positions), "vertex")
                ti = resolve(start, parts[1], len(p.texcoords), "texture") \
                    if len(parts) >= 2 and parts[1] else -1
                ni = resolve(start, parts[2], len(p.normals), "normal") \
                    if len(parts) == 3 and parts[2] else -1
                corners.append((vi, ti, ni))
            if part < 0:
                key = (group, material)
                part = part_of.get(key, -1)
                if part < 0:
                    part = part_of[key] = len(p.parts)
                    p.parts.append(key)
                    p.part_lines.append(material_line or start)
            for k in range(1, len(corners) - 1):  # fan triangulation
                tri = (corners[0], corners[k], corners[k + 1])
                p.tri_v.append((tri[0][0], tri[1][0], tri[2][0]))
                p.tri_t.append((tri[0][1], tri[1][1], tri[2][1]))
                p.tri_n.append((tri[0][2], tri[1][2], tri[2][2]))
                p.tri_part.append(part)
                p.tri_smooth.append(smooth)
                p.tri_line.append(start)
        elif keyword in ("g", "o"):
            group = rest or "default"
            part = -1
        elif keyword == "usemtl":
            material = rest or None
            material_line = start
            part = -1
        elif keyword == "s":
            value = rest.lower()
            if value in ("off", "0", ""):
                smooth = -1
            else:
                try:
                    smooth = int(value)
                except ValueError:
                    raise fail(start, f"bad smoothing group {rest!r} (expected a number or "
                                      "'off')") from None
                if smooth < 0:
                    raise fail(start, f"bad smoothing group {rest!r}")
        elif keyword == "mtllib":
            if not rest:
                raise fail(start, "'mtllib' needs a file name")
            p.mtllibs.append((rest, start))
        # every other statement (l, p, vp, curves, ...) is ignored
    if not p.tri_v:
        raise ValueError(f"{name}: no faces ('f' statements)")
    return p


def _warn_merged(p: _Parsed, shown: str, unread_material: bool = True) -> None:
    """The single-mesh load: says what it merged and which materials it did not read."""
    def describe(g: str, m: Optional[str]) -> str:
        return repr(g) + (f" (usemtl {m!r})" if m is not None else "")

    names = [describe(g, m) for g, m in p.parts]
    if len(p.parts) > 1:
        listed = ", ".join(names[:_LISTED]) + (f" and {len(names) - _LISTED} more"
                                               if len(names) > _LISTED else "")
        msg = (f"{shown}: {len(p.parts)} groups/materials merged into one mesh: {listed}; their "
               "materials are not read (rt.load_obj(path, return_objects=True) keeps them apart, "
               "with their materials)")
    elif p.parts[0][1] is not None and unread_material:
        msg = (f"{shown}: material {p.parts[0][1]!r} (usemtl) is not read "
               "(rt.load_obj(path, return_objects=True) reads the .mtl)")
    else:
        return
    warn(msg)


# =============================================================================================
# Assembling: normals, then the vertex split
# =============================================================================================
def _corner_normals(p: _Parsed, tri_v: np.ndarray, tri_n: np.ndarray, tri_smooth: np.ndarray,
                    positions: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Normals for the corners without ``vn``: returns (normal id per corner [M, 3], table of
    computed normals [K, 3]); ids >= 0 index the file's normals, ids <= -2 the table
    (-2 - id); corners with a file normal keep it."""
    tri = positions[tri_v]  # float64 [M, 3, 3]
    face = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # twice the area x the normal
    missing = tri_n < 0
    ids = tri_n.copy()
    tables = []
    # Smooth corners: one normal per (position, smoothing group), from every face around it.
    smooth_faces = tri_smooth >= 0
    if (missing & smooth_faces[:, None]).any():
        groups = np.unique(tri_smooth[smooth_faces])
        g_index = np.searchsorted(groups, tri_smooth)
        keys = tri_v.astype(np.int64) * len(groups) + g_index[:, None]  # [M, 3]
        sel = np.repeat(smooth_faces, 3)
        uniq, inverse = np.unique(keys.reshape(-1)[sel], return_inverse=True)
        acc = np.zeros((len(uniq), 3))
        np.add.at(acc, inverse, np.repeat(face[smooth_faces], 3, axis=0))
        corner_id = np.full(keys.size, -1, dtype=np.int64)
        corner_id[sel] = inverse
        corner_id = corner_id.reshape(-1, 3)
        use = missing & smooth_faces[:, None]
        ids[use] = -2 - corner_id[use]
        tables.append(acc)
    # Flat corners (s off): the face normal.
    flat = missing & ~smooth_faces[:, None]
    if flat.any():
        base = sum(len(t) for t in tables)
        rows = np.flatnonzero(flat.any(axis=1))
        slot = np.full(len(tri_v), -1, dtype=np.int64)
        slot[rows] = base + np.arange(len(rows))
        ids[flat] = -2 - np.broadcast_to(slot[:, None], flat.shape)[flat]
        tables.append(face[rows])
    table = np.concatenate(tables) if tables else np.zeros((0, 3))
    length = np.linalg.norm(table, axis=1, keepdims=True)
    # A position whose faces all have zero area keeps a zero normal (rt.vertex_normals does too;
    # the renderer falls back to the geometric normal there).
    return ids, table / np.where(length > 0, length, 1.0)


def _assemble_parts(p: _Parsed, shown: str, selects: List[np.ndarray], compute_normals: bool,
                    wheres: List[str]) -> List[MeshDict]:
    """One mesh dict (float32/int64 tensors) per array of triangle numbers in `selects`."""
    tri_v = np.asarray(p.tri_v, dtype=np.int64).reshape(-1, 3)
    tri_t = np.asarray(p.tri_t, dtype=np.int64).reshape(-1, 3)
    tri_n = np.asarray(p.tri_n, dtype=np.int64).reshape(-1, 3)
    tri_smooth = np.asarray(p.tri_smooth, dtype=np.int64)
    positions = np.asarray(p.positions, dtype=np.float32).reshape(-1, 3)
    texcoords = np.concatenate([np.asarray(p.texcoords, dtype=np.float32).reshape(-1, 2),
                                np.zeros((1, 2), np.float32)])  # index -1 -> (0, 0)
    file_normals = np.asarray(p.normals, dtype=np.float32).reshape(-1, 3)
    table = np.zeros((0, 3), np.float32)
    if compute_normals and (tri_n < 0).any():
        # On the positions as returned (float32), in float64.
        tri_n, table = _corner_normals(p, tri_v, tri_n, tri_smooth, positions.astype(np.float64))
        table = table.astype(np.float32)
    out = []
    for rows, where in zip(selects, wheres):
        v, t, n = tri_v[rows], tri_t[rows], tri_n[rows]
        has_n, no_n = (n != -1), (n == -1)
        if has_n.any() and no_n.any():
            lines = np.asarray(p.tri_line)[rows]
            first_with = int(lines[has_n.any(axis=1)][0])
            first_without = int(lines[no_n.any(axis=1)][0])
            raise ValueError(f"{shown}: {where}some faces have normals (line {first_with}) and "
                             f"some do not (line {first_without}); give every face vertex a "
                             "normal or none, or pass compute_normals=True")
        # One vertex per distinct (position, uv, normal) triple, in order of first appearance.
        triples = np.stack([v.reshape(-1), t.reshape(-1), n.reshape(-1)], axis=1)
        _, first, inverse = np.unique(triples, axis=0, return_index=True, return_inverse=True)
        order = np.argsort(first)
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        combo = triples[first[order]]
        indices = rank[inverse.reshape(-1)].reshape(-1, 3)
        uvs = texcoords[combo[:, 1]] if (combo[:, 1] >= 0).any() else None
        normals = None
        if has_n.any():
            ids = combo[:, 2]
            fn = np.concatenate([file_normals, np.zeros((1, 3), np.float32)])
            tb = np.concatenate([table, np.zeros((1, 3), np.float32)])
            normals = np.where((ids >= 0)[:, None], fn[np.where(ids >= 0, ids, len(fn) - 1)],
                               tb[np.where(ids <= -2, -2 - ids, len(tb) - 1)])
        out.append({"vertices": torch.from_numpy(np.ascontiguousarray(positions[combo[:, 0]])),
                    "indices": torch.from_numpy(np.ascontiguousarray(indices)),
                    "uvs": None if uvs is None else torch.from_numpy(np.ascontiguousarray(uvs)),
                    "normals": None if normals is None else
                    torch.from_numpy(np.ascontiguousarray(normals, dtype=np.float32))})
    return out


# =============================================================================================
# Objects with materials
# =============================================================================================
def _objects(p: _Parsed, shown: str, access: FileAccess, compute_normals: bool) -> List[ObjObject]:
    from .mtl import MtlReader  # noqa: PLC0415

    reader = MtlReader(access, shown)
    for name, line in p.mtllibs:
        reader.read_library(name, line)
    part = np.asarray(p.tri_part, dtype=np.int64)
    wheres = [f"group {g!r}" + (f" (usemtl {m!r})" if m is not None else "") + ": "
              for g, m in p.parts]
    order = np.argsort(part, kind="stable")  # triangle numbers of each part, in file order
    rows = np.split(order, np.cumsum(np.bincount(part, minlength=len(p.parts)))[:-1])
    meshes = _assemble_parts(p, shown, rows, compute_normals, wheres)
    objects = []
    for (group, material), line, mesh in zip(p.parts, p.part_lines, meshes):
        for key, value in mesh.items():
            if value is not None:
                access.budget.check_array(shown, f"{group!r} {key}", tuple(value.shape),
                                          value.element_size())
        built = reader.material(material, line)
        objects.append(ObjObject(group, material, mesh["vertices"], mesh["indices"], mesh["uvs"],
                                 mesh["normals"], built.material, built.emission,
                                 dict(built.textures)))
    return objects
