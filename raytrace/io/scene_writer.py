"""Writing scene files: ``rt.save_scene`` (an rt.Scene -> JSON, with ``.npz`` meshes and
``.exr``/``.npy`` textures beside it) and the compact JSON layout used by the shipped scenes.

Every file is written atomically (:func:`raytrace.io.atomic.atomic_write`): the data files
first, the JSON last, so a killed process leaves the previous scene file whole (never a
truncated one).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np
import torch

from .atomic import atomic_write
from .images import _EXR_CHANNELS, exr_supported, imwrite

__all__ = ["save_scene", "dump_json", "FORMAT_VERSION"]

PathLike = Union[str, os.PathLike]

FORMAT_VERSION = 1  # the version written; scenes.py reads this version
# Arrays at most this long (vertices, texels) are written inline by save_scene(inline=None).
_INLINE_LIMIT = 64


def _rt():
    """The raytrace package, imported lazily (raytrace/__init__.py imports this module)."""
    import raytrace  # noqa: PLC0415

    return raytrace


def _np(value: Any, dtype=np.float32) -> Optional[np.ndarray]:
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=dtype)


def _json_floats(arr: np.ndarray) -> Any:
    """float32 array -> nested lists of the shortest decimals that read back to the same float32."""
    def shortest(v: np.float32) -> float:
        short = float(np.format_float_positional(v, unique=True, trim="-")
                      if abs(v) >= 1e-4 or v == 0 else
                      np.format_float_scientific(v, unique=True, trim="-"))
        return short if np.float32(short) == v else float(v)  # float(v) is exact

    flat = [shortest(v) for v in arr.astype(np.float32).ravel()]
    return np.array(flat, dtype=object).reshape(arr.shape).tolist() if arr.ndim else flat[0]


def save_scene(scene: Any, path: PathLike, *, render: Optional[Dict[str, int]] = None,
               inline: Optional[bool] = None) -> None:
    """Writes an ``rt.Scene`` as a scene file that :func:`load_scene` reads back identically.

    Args:
        scene: the rt.Scene to write (tensors are detached; values are stored exactly).
        path: the ``.json`` file to write (its folder is created if needed). Every file is
            written atomically (a temporary file in the same folder, then renamed): the data
            files first, the JSON last.
        render: optional default render settings, e.g. ``{"spp": 64, "max_bounces": 4}``.
        inline: True writes every array into the JSON; False writes every mesh to ``.npz`` and
            every texture/envmap to ``.exr`` (``.npy`` without OpenEXR) in the folder
            ``<stem>_files/`` beside the JSON; None (default) inlines arrays of at most 64
            vertices/texels and writes larger ones to files.
    """
    if not isinstance(scene, _rt().Scene):
        raise TypeError(f"scene must be a raytrace.Scene (got {type(scene).__name__})")
    if scene.camera is None:
        raise ValueError("scene.camera is None: a scene file needs a camera")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike (got {type(path).__name__})")
    path = Path(path)
    if path.suffix.lower() != ".json":
        raise ValueError(f"path {str(path)!r} must end in .json")
    data_dir = path.parent / f"{path.stem}_files"

    def to_file(n: int) -> bool:
        return (inline is False) or (inline is None and n > _INLINE_LIMIT)

    def write_data(name: str, writer) -> str:
        data_dir.mkdir(parents=True, exist_ok=True)
        with atomic_write(data_dir / name) as tmp:
            writer(tmp)
        return f"{data_dir.name}/{name}"

    def image_value(arr: np.ndarray, stem: str) -> Any:
        if arr.ndim == 1:
            return _json_floats(arr)
        if not to_file(arr.shape[0] * arr.shape[1]):
            return _json_floats(arr)
        if exr_supported() and arr.shape[2] in _EXR_CHANNELS:
            return {"texture": write_data(f"{stem}.exr", lambda p: imwrite(arr, p))}
        return {"texture": write_data(f"{stem}.npy", lambda p: np.save(p, arr))}

    cam = scene.camera
    camera = {
        "position": _json_floats(_np(cam.position)),
        "look_at": _json_floats(_np(cam.look_at)),
        "up": _json_floats(_np(cam.up)),
        "fov": _json_floats(_np(cam.fov).reshape(())),
        "resolution": [int(x) for x in cam.resolution],
        "type": str(cam.camera_type),
    }

    materials = []
    for i, mat in enumerate(scene.materials):
        entry = {"diffuse": image_value(_np(mat.diffuse_reflectance), f"material_{i}_diffuse")}
        if mat.specular_reflectance is not None:
            entry["specular"] = image_value(_np(mat.specular_reflectance), f"material_{i}_specular")
        if mat.roughness is not None:
            r = _np(mat.roughness)
            entry["roughness"] = _json_floats(r.reshape(())) if r.size == 1 and r.ndim <= 1 \
                else image_value(r, f"material_{i}_roughness")
        entry["two_sided"] = bool(mat.two_sided)
        materials.append(entry)

    emission = {}
    for light in (scene.area_lights or []):
        sid = int(light.shape_id)
        if sid in emission:
            raise ValueError(f"scene.area_lights: shape {sid} has more than one AreaLight, which "
                             "the scene format cannot store")
        emission[sid] = {"intensity": _json_floats(_np(light.intensity).reshape(3)),
                         "two_sided": bool(light.two_sided)}

    shapes = []
    for i, shp in enumerate(scene.shapes):
        arrays = {"vertices": _np(shp.vertices), "indices": _np(shp.indices, np.int64),
                  "uvs": _np(shp.uvs), "normals": _np(shp.normals)}
        arrays = {k: v for k, v in arrays.items() if v is not None}
        if to_file(arrays["vertices"].shape[0]):
            idx = arrays["indices"]
            if idx.size and idx.max() < 2 ** 31:
                arrays["indices"] = idx.astype(np.int32)
            mesh = {"path": write_data(f"shape_{i}.npz",
                                       lambda p: np.savez_compressed(p, **arrays))}
        else:
            mesh = {k: (v.tolist() if k == "indices" else _json_floats(v))
                    for k, v in arrays.items()}
        entry = {"mesh": mesh, "material": int(shp.material_id)}
        if i in emission:
            entry["emission"] = emission[i]
        shapes.append(entry)

    doc = {"version": FORMAT_VERSION, "camera": camera, "materials": materials, "shapes": shapes}
    env = scene.envmap
    if env is not None:
        values = _np(env.values)
        if values.shape[:2] == (1, 1):
            doc["envmap"] = {"constant": _json_floats(values.reshape(3))}
        elif not to_file(values.shape[0] * values.shape[1]):
            doc["envmap"] = {"values": _json_floats(values)}
        else:
            doc["envmap"] = {"path": image_value(values, "envmap")["texture"]}
    if render:
        allowed = {"spp", "max_bounces"}
        unknown = set(render) - allowed
        if unknown:
            raise ValueError(f"render has unknown keys {sorted(unknown)} "
                             "(allowed: max_bounces, spp)")
        doc["render"] = {k: int(render[k]) for k in ("spp", "max_bounces") if k in render}

    text = dump_json(doc) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:  # last: the JSON names data files that are complete
        tmp.write_text(text, encoding="utf-8")


# =============================================================================================
# Compact, readable JSON
# =============================================================================================
def dump_json(value: Any, indent: int = 0) -> str:
    """JSON text with objects indented, lists of numbers on one line, lists of such rows one
    row per line (so meshes read as tables)."""
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(value, dict):
        if not value:
            return "{}"
        flat = all(not isinstance(v, (dict, list)) or (isinstance(v, list) and all(
            not isinstance(x, (dict, list)) for x in v)) for v in value.values())
        if flat:
            one_line = "{" + ", ".join(f"{json.dumps(k)}: {dump_json(v)}"
                                       for k, v in value.items()) + "}"
            if len(one_line) + indent <= 96:
                return one_line
        items = [f"{inner}{json.dumps(k)}: {dump_json(v, indent + 2)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list):
        if all(not isinstance(x, (dict, list)) for x in value):
            return "[" + ", ".join(json.dumps(x) for x in value) + "]"
        if all(isinstance(x, list) and all(not isinstance(y, (dict, list)) for y in x)
               for x in value):
            rows = [dump_json(x) for x in value]
            if sum(len(r) for r in rows) < 60:
                return "[" + ", ".join(rows) + "]"
            return "[\n" + ",\n".join(inner + r for r in rows) + "\n" + pad + "]"
        items = [inner + dump_json(x, indent + 2) for x in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(value)
