"""Wavefront OBJ files: ``rt.load_obj``, raytrace's own reader (``v``, ``vt``, ``vn``, ``f``).

Every error names the file and the line. Numbers must be finite *in float32*, the precision
the mesh is returned in: ``v 1e39 0 0`` is refused on its line rather than becoming inf.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from .limits import Budget, Limits

__all__ = ["load_obj"]

PathLike = Union[str, os.PathLike]
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def load_obj(path: PathLike, *, limits: Optional[Limits] = None) -> Dict[str, Optional[torch.Tensor]]:
    """Reads a Wavefront OBJ file into one triangle mesh.

    Reads ``v``, ``vt``, ``vn`` and ``f`` statements (other statements such as ``o``, ``g``,
    ``usemtl`` and ``s`` are ignored). Polygons are fan-triangulated; indices may be negative
    (relative to the end of the list so far); each distinct ``v/vt/vn`` combination becomes one
    output vertex. OBJ texture coordinates have v pointing up the image, raytrace textures have
    row 0 at v = 0, so ``v`` is flipped: ``uv = (u, 1 - v)``.

    Args:
        path: the ``.obj`` file.
        limits: size limits (:class:`raytrace.io.Limits`; None: the defaults): the file's size
            (max_file_bytes) and the returned arrays (max_array_elements, max_total_bytes).

    Returns:
        dict with "vertices" [N, 3] float32, "indices" [M, 3] int64, "uvs" [N, 2] float32 or
        None (None when no face uses ``vt``; vertices of faces without ``vt`` get uv (0, 0)),
        "normals" [N, 3] float32 or None (None when no face uses ``vn``).

    Raises:
        ValueError: missing file, malformed statement, a number that is not finite in float32,
            index out of range, no faces, some faces with normals and others without, or a
            limit exceeded (the message names the file, and the line where there is one).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike (got {type(path).__name__})")
    return _load_obj(Path(path), str(path), Budget(limits))


def _load_obj(path: Path, shown: str, budget: Budget) -> Dict[str, Optional[torch.Tensor]]:
    """load_obj within a load's budget (scene loaders share one across their files)."""
    if not path.is_file():
        raise ValueError(f"{shown}: no such file")
    try:
        budget.check_file(path, shown)
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise ValueError(f"{shown}: cannot read ({e})") from e
    except MemoryError as e:
        raise ValueError(f"{shown}: out of memory reading the file") from e
    mesh = _parse_obj(text, shown)
    for key, value in mesh.items():
        if value is not None:
            budget.check_array(shown, key, tuple(value.shape), value.element_size())
    return mesh


def _parse_obj(text: str, name: str) -> Dict[str, Optional[torch.Tensor]]:
    positions: List[Tuple[float, float, float]] = []
    texcoords: List[Tuple[float, float]] = []
    normals: List[Tuple[float, float, float]] = []
    combo_to_vertex: Dict[Tuple[int, int, int], int] = {}
    combos: List[Tuple[int, int, int]] = []
    triangles: List[Tuple[int, int, int]] = []
    with_normal = without_normal = 0
    first_without_normal = first_with_normal = 0

    def fail(lineno: int, msg: str) -> ValueError:
        return ValueError(f"{name}: line {lineno}: {msg}")

    def floats(lineno: int, tokens: List[str], count: int, keyword: str) -> List[float]:
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
        if not tokens:
            continue
        keyword, args = tokens[0], tokens[1:]
        if keyword == "v":
            positions.append(tuple(floats(start, args, 3, "v")))
        elif keyword == "vt":
            uv = floats(start, args, 2, "vt") if len(args) >= 2 else \
                floats(start, args, 1, "vt") + [0.0]
            texcoords.append((uv[0], 1.0 - uv[1]))
        elif keyword == "vn":
            normals.append(tuple(floats(start, args, 3, "vn")))
        elif keyword == "f":
            if len(args) < 3:
                raise fail(start, f"'f' needs at least 3 vertices, got {len(args)}")
            polygon = []
            for ref in args:
                parts = ref.split("/")
                if len(parts) > 3 or parts[0] == "":
                    raise fail(start, f"bad face vertex {ref!r} "
                                      "(expected v, v/vt, v//vn or v/vt/vn)")
                vi = resolve(start, parts[0], len(positions), "vertex")
                ti = resolve(start, parts[1], len(texcoords), "texture") \
                    if len(parts) >= 2 and parts[1] else -1
                ni = resolve(start, parts[2], len(normals), "normal") \
                    if len(parts) == 3 and parts[2] else -1
                if ni >= 0:
                    with_normal += 1
                    first_with_normal = first_with_normal or start
                else:
                    without_normal += 1
                    first_without_normal = first_without_normal or start
                key = (vi, ti, ni)
                idx = combo_to_vertex.get(key)
                if idx is None:
                    idx = combo_to_vertex[key] = len(combos)
                    combos.append(key)
                polygon.append(idx)
            for k in range(1, len(polygon) - 1):  # fan triangulation
                triangles.append((polygon[0], polygon[k], polygon[k + 1]))
        # every other statement (o, g, s, usemtl, mtllib, l, p, vp, ...) is ignored

    if not triangles:
        raise ValueError(f"{name}: no faces ('f' statements)")
    if with_normal and without_normal:
        raise ValueError(f"{name}: some faces have normals (line {first_with_normal}) and some "
                         f"do not (line {first_without_normal}); give every face vertex a "
                         "normal or none")
    combo = np.array(combos, dtype=np.int64)
    vertices = np.array(positions, dtype=np.float32)[combo[:, 0]]
    uvs = None
    if (combo[:, 1] >= 0).any():
        table = np.concatenate([np.array(texcoords, dtype=np.float32).reshape(-1, 2),
                                np.zeros((1, 2), np.float32)])  # index -1 -> (0, 0)
        uvs = torch.from_numpy(np.ascontiguousarray(table[combo[:, 1]]))
    normal_t = None
    if with_normal:
        normal_t = torch.from_numpy(np.ascontiguousarray(
            np.array(normals, dtype=np.float32)[combo[:, 2]]))
    return {"vertices": torch.from_numpy(np.ascontiguousarray(vertices)),
            "indices": torch.tensor(triangles, dtype=torch.int64),
            "uvs": uvs, "normals": normal_t}
