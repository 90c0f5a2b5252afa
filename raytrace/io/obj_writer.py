"""Writing Wavefront OBJ files: ``rt.save_obj`` (geometry, ``.mtl`` materials, PNG textures).

    rt.save_obj("out/room.obj", scene)                       # shapes, materials, area lights
    rt.save_obj("out/bunny.obj", mesh)                       # a load_obj / load_mesh dict
    rt.save_obj("out/parts.obj", objects)                    # load_obj(..., return_objects=True)

The files are what ``rt.load_obj(path, return_objects=True)`` reads back: each shape is a group
(``g``) with its own ``usemtl``; positions, uvs (written as ``(u, 1 - v)``, OBJ's convention)
and normals with 9 significant digits (float32 values come back bit for bit); materials as
``Kd``, ``Ks``, ``Ns = 2 / roughness^2 - 2`` (the inverse of load_obj's rule) and ``Ke`` for
emitting shapes; textures as 8-bit sRGB PNG files beside the ``.obj`` (``map_Kd`` / ``map_Ks``).
Every file is written atomically (``raytrace.io.atomic``).

What MTL cannot hold is warned about (:class:`raytrace.io.obj.ObjWarning`): a roughness texture
is written as its mean Ns, ``two_sided`` is dropped, texture values above 1 are clipped by the
8-bit PNG. A roughness above sqrt(2) (Ns would be negative) is written as Ns 0 (roughness 1).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .atomic import atomic_write

__all__ = ["save_obj"]

PathLike = Union[str, os.PathLike]


def save_obj(path: PathLike, shapes: Any, materials: Optional[Sequence[Any]] = None, *,
             area_lights: Optional[Sequence[Any]] = None) -> None:
    """Writes triangle meshes to a Wavefront ``.obj`` file, with a ``.mtl`` when they have
    materials.

    Args:
        path: the ``.obj`` file to write. Missing folders are created. With materials, the
            ``.mtl`` (same name, ``.mtl`` extension) and the textures (``NAME_MATERIAL_Kd.png``,
            ...) are written beside it.
        shapes: an ``rt.Scene`` (its shapes, materials and area lights), a mesh dict
            (``{"vertices", "indices", "uvs", "normals"}``, as ``load_obj`` / ``load_mesh``
            return), an ``rt.Shape``, an ``ObjObject`` (carries its material and emission), or
            a list of these.
        materials: ``rt.Material`` list: a Shape uses ``materials[shape.material_id]``, a mesh
            dict ``materials[0]``. None: shapes and dicts get no material (no ``.mtl`` unless
            ObjObjects bring theirs).
        area_lights: ``rt.AreaLight`` list; ``shape_id`` indexes `shapes` (in list order): that
            shape's material gets ``Ke`` = the light's intensity.

    Raises:
        TypeError: `path`, `shapes`, `materials` or `area_lights` of the wrong type.
        ValueError: an empty list of shapes, a mesh dict without vertices/indices, a
            ``material_id`` or ``shape_id`` out of range, non-finite values.
    """
    from .. import AreaLight, Material, Scene, Shape  # noqa: PLC0415
    from .obj import ObjObject  # noqa: PLC0415

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike (got {type(path).__name__})")
    if isinstance(shapes, Scene):
        if materials is not None or area_lights is not None:
            raise ValueError("a Scene brings its own materials and area lights: give either a "
                             "Scene or materials= / area_lights=, not both")
        shapes, materials, area_lights = list(shapes.shapes), list(shapes.materials), list(shapes.area_lights)
    items = list(shapes) if isinstance(shapes, (list, tuple)) else [shapes]
    if not items:
        raise ValueError("shapes is empty: nothing to write")
    if materials is not None:
        if isinstance(materials, Material) or not isinstance(materials, (list, tuple)):
            raise TypeError(f"materials must be a list of rt.Material or None (got "
                            f"{type(materials).__name__})")
        for i, m in enumerate(materials):
            if not isinstance(m, Material):
                raise TypeError(f"materials[{i}] must be an rt.Material (got {type(m).__name__})")
    emission: Dict[int, np.ndarray] = {}
    for i, light in enumerate(area_lights or []):
        if not isinstance(light, AreaLight):
            raise TypeError(f"area_lights[{i}] must be an rt.AreaLight (got {type(light).__name__})")
        if light.shape_id >= len(items):
            raise ValueError(f"area_lights[{i}].shape_id {light.shape_id} is out of range "
                             f"({len(items)} shapes)")
        emission[light.shape_id] = _numpy(light.intensity, f"area_lights[{i}].intensity").reshape(3)

    # Each item -> (name, mesh arrays, material or None, Ke or None).
    parts = []
    for i, item in enumerate(items):
        material, ke = None, emission.get(i)
        if isinstance(item, ObjObject):
            name, mesh = item.name, item.mesh()
            material = item.material
            if ke is None and item.emission is not None:
                ke = _numpy(item.emission, f"shapes[{i}].emission").reshape(3)
        elif isinstance(item, Shape):
            name = f"shape_{i}"
            mesh = {"vertices": item.vertices, "indices": item.indices, "uvs": item.uvs,
                    "normals": item.normals}
            if materials is not None:
                if item.material_id >= len(materials):
                    raise ValueError(f"shapes[{i}].material_id {item.material_id} is out of range "
                                     f"({len(materials)} materials)")
                material = materials[item.material_id]
        elif isinstance(item, dict):
            name, mesh = f"mesh_{i}", item
            for key in ("vertices", "indices"):
                if item.get(key) is None:
                    raise ValueError(f"shapes[{i}] (a mesh dict) has no {key!r}")
            if materials:
                material = materials[0]
        else:
            raise TypeError(f"shapes[{i}] must be an rt.Shape, an ObjObject or a mesh dict "
                            f"(got {type(item).__name__})")
        if material is None and ke is not None:
            material = Material(torch.zeros(3))
        parts.append((name, _mesh_arrays(mesh, i), material, ke))

    if any(m is not None for _, _, m, _ in parts):
        # usemtl carries over to the next group in OBJ: shapes without a material get the
        # loader's default (diffuse 0.5) explicitly.
        from .mtl import DEFAULT_KD  # noqa: PLC0415
        default = Material(torch.full((3,), DEFAULT_KD))
        parts = [(n, a, default if m is None else m, k) for n, a, m, k in parts]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mtl_path = path.with_suffix(".mtl")
    names = _unique([_safe(n) for n, _, _, _ in parts])
    # One newmtl per distinct (material, emission).
    mtl_of: Dict[Tuple[int, Optional[Tuple[float, ...]]], str] = {}
    mtl_entries: List[Tuple[str, Any, Optional[np.ndarray]]] = []
    used_names: set = set()
    for item, (name, _, material, ke) in zip(items, parts):
        if material is None:
            continue
        key = (id(material), None if ke is None else tuple(ke.tolist()))
        if key not in mtl_of:
            # The ObjObject's material name when it has one, else material_K; unique.
            base = _safe(item.material_name) if isinstance(item, ObjObject) and item.material_name \
                else f"material_{len(mtl_entries)}"
            mtl_name, k = base, 1
            while mtl_name in used_names:
                k += 1
                mtl_name = f"{base}_{k}"
            used_names.add(mtl_name)
            mtl_of[key] = mtl_name
            mtl_entries.append((mtl_name, material, ke))

    lines = ["# written by raytrace (rt.save_obj)"]
    if mtl_entries:
        lines.append(f"mtllib {mtl_path.name}")
    offsets = [0, 0, 0]  # v, vt, vn written so far
    for (name, arrays, material, ke), unique_name in zip(parts, names):
        v, f, uv, n = arrays
        lines.append(f"g {unique_name}")
        if material is not None:
            lines.append(f"usemtl {mtl_of[(id(material), None if ke is None else tuple(ke.tolist()))]}")
        lines.extend("v %.9g %.9g %.9g" % tuple(r) for r in v.tolist())
        if uv is not None:
            lines.extend("vt %.9g %.9g" % (r[0], 1.0 - r[1]) for r in uv.astype(np.float64).tolist())
        if n is not None:
            lines.extend("vn %.9g %.9g %.9g" % tuple(r) for r in n.tolist())
        fv = f + 1 + offsets[0]
        ft = f + 1 + offsets[1]
        fn = f + 1 + offsets[2]
        for a, b, c in zip(fv.tolist(), ft.tolist(), fn.tolist()):
            if uv is not None and n is not None:
                lines.append(f"f {a[0]}/{b[0]}/{c[0]} {a[1]}/{b[1]}/{c[1]} {a[2]}/{b[2]}/{c[2]}")
            elif uv is not None:
                lines.append(f"f {a[0]}/{b[0]} {a[1]}/{b[1]} {a[2]}/{b[2]}")
            elif n is not None:
                lines.append(f"f {a[0]}//{c[0]} {a[1]}//{c[1]} {a[2]}//{c[2]}")
            else:
                lines.append(f"f {a[0]} {a[1]} {a[2]}")
        offsets[0] += len(v)
        offsets[1] += 0 if uv is None else len(uv)
        offsets[2] += 0 if n is None else len(n)

    if mtl_entries:
        _write_mtl(mtl_path, path.stem, mtl_entries)
    with atomic_write(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")


# =============================================================================================
def _numpy(t: Any, what: str) -> np.ndarray:
    arr = t.detach().cpu().double().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} has non-finite values")
    return arr


def _mesh_arrays(mesh: Dict[str, Any], i: int):
    """(vertices [N, 3] float32, indices [M, 3] int64, uvs or None, normals or None), checked."""
    v = _numpy(mesh["vertices"], f"shapes[{i}].vertices").astype(np.float32)
    f = mesh["indices"]
    f = (f.detach().cpu().numpy() if isinstance(f, torch.Tensor) else np.asarray(f)).astype(np.int64)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"shapes[{i}].vertices must have shape [N, 3] (got {list(v.shape)})")
    if f.ndim != 2 or f.shape[1] != 3 or (f.size and (f.min() < 0 or f.max() >= len(v))):
        raise ValueError(f"shapes[{i}].indices must have shape [M, 3] with values in [0, {len(v)})")
    uv = mesh.get("uvs")
    uv = None if uv is None else _numpy(uv, f"shapes[{i}].uvs").astype(np.float32).reshape(-1, 2)
    n = mesh.get("normals")
    n = None if n is None else _numpy(n, f"shapes[{i}].normals").astype(np.float32).reshape(-1, 3)
    for name, a in (("uvs", uv), ("normals", n)):
        if a is not None and len(a) != len(v):
            raise ValueError(f"shapes[{i}].{name} must have one row per vertex ({len(v)}, got {len(a)})")
    return v, f, uv, n


def _safe(name: str) -> str:
    """A name usable as an OBJ group / file name part: no spaces or path characters."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "shape"


def _unique(names: List[str]) -> List[str]:
    seen: Dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if k == 0 else f"{n}_{k + 1}")
    return out


def _warn(msg: str) -> None:
    from .obj import warn  # noqa: PLC0415

    warn(msg)


def _write_mtl(mtl_path: Path, stem: str, entries) -> None:
    from .images import imwrite  # noqa: PLC0415
    from .mtl import roughness_to_ns  # noqa: PLC0415

    lines = ["# written by raytrace (rt.save_obj)"]
    for name, material, ke in entries:
        lines.append(f"newmtl {name}")
        for key, value in (("Kd", material.diffuse_reflectance), ("Ks", material.specular_reflectance)):
            arr = _numpy(value, f"{name}.{key}")
            if arr.ndim == 3:  # a texture
                file = f"{_safe(stem)}_{name}_{key}.png"
                if arr.max(initial=0.0) > 1.0:
                    _warn(f"{mtl_path}: {name} {key} texture has values above 1 "
                          f"(max {arr.max():.4g}), clipped by the 8-bit PNG {file}")
                imwrite(arr.astype(np.float32), mtl_path.parent / file)
                lines.append(f"{key} 1 1 1")
                lines.append(f"map_{key} {file}")
            else:
                lines.append(f"{key} " + " ".join("%.9g" % x for x in np.broadcast_to(arr.reshape(-1), (3,))))
        rough = _numpy(material.roughness, f"{name}.roughness")
        if rough.ndim == 3:
            _warn(f"{mtl_path}: {name}: a roughness texture cannot be stored in MTL; its mean "
                  f"({rough.mean():.4g}) is written as Ns")
        lines.append("Ns %.9g" % roughness_to_ns(float(rough.mean())))
        if material.two_sided:
            _warn(f"{mtl_path}: {name}: two_sided is not stored (MTL has no such setting)")
        if ke is not None:
            lines.append("Ke " + " ".join("%.9g" % x for x in ke))
    with atomic_write(mtl_path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
