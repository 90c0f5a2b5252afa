"""Reading scene files: a versioned JSON format -> ``rt.Scene`` (``load_scene``).

The format is documented in ``docs/scene_format.md``. In short::

    {"version": 1,
     "camera": {"position": [..], "look_at": [..], "up": [..], "fov": 39.3,
                "resolution": [H, W], "type": "perspective"},
     "materials": [{"diffuse": [r, g, b] | {"texture": "file.png"} | [[[r, g, b], ...], ...],
                    "specular": ..., "roughness": 0.3, "two_sided": false}],
     "shapes": [{"mesh": {"path": "mesh.obj"} | {"vertices": [...], "indices": [...]},
                 "material": 0, "emission": {"intensity": [r, g, b], "two_sided": false}}],
     "envmap": {"path": "sky.exr"} | {"values": [...]} | {"constant": [r, g, b]},
     "render": {"spp": 16, "max_bounces": 4}}

Relative file names are relative to the folder of the JSON file, and every file named must
lie inside that folder unless the caller allows more (``allowed_paths``, ``allow_any_path``;
:mod:`raytrace.io.paths`). Sizes are checked against :class:`raytrace.io.Limits` before data
is read. Every error is a ValueError whose message starts with the file and the JSON path of
the offending entry, e.g. ``scene.json: shapes[2].material: index 5 out of range (3 materials)``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

import numpy as np
import torch

from .arrays import check_mesh, read_npy, read_npz
from .images import _imread
from .limits import Limits
from .obj import _load_obj, load_obj
from .paths import FileAccess, check_policy_args
from .scene_writer import FORMAT_VERSION, save_scene

__all__ = ["load_scene", "read_scene", "save_scene", "load_obj", "FORMAT_VERSION"]

PathLike = Union[str, os.PathLike]

SCENE_FILE_NAME = "scene.json"  # looked for when a folder is given
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".exr", ".hdr", ".npy")
_MESH_SUFFIXES = (".obj", ".npz")
# Defaults used when a key is absent (they match the rt.Camera / rt.Material defaults).
_CAMERA_DEFAULTS = {"fov": 45.0, "type": "perspective"}
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _rt():
    """The raytrace package, imported lazily (raytrace/__init__.py imports this module)."""
    import raytrace  # noqa: PLC0415

    return raytrace


# =============================================================================================
# Error context: which file, which JSON entry
# =============================================================================================
class _Ctx:
    """The scene file being read: names it in errors, resolves relative paths (within the
    path policy of `access`, which also holds the size budget and records the files read)."""

    def __init__(self, path: Path, shown: str, access: FileAccess):
        self.path = path
        self.shown = shown  # the file name as the caller wrote it
        self.base = path.parent
        self.access = access
        self.cache: Dict[Tuple[str, Path], Any] = {}

    def error(self, where: str, msg: str) -> ValueError:
        return ValueError(f"{self.shown}: {where}: {msg}" if where else f"{self.shown}: {msg}")

    def resolve(self, where: str, name: Any, suffixes: Tuple[str, ...]) -> Path:
        if not isinstance(name, str) or not name:
            raise self.error(where, f"must be a file name (a non-empty string), got {_show(name)}")
        p = Path(name)
        if p.suffix.lower() not in suffixes:
            raise self.error(where, f"{name!r} has unsupported extension {p.suffix!r} "
                                    f"(supported: {', '.join(suffixes)})")
        full = p if p.is_absolute() else self.base / p
        refused = self.access.refused(full)
        if refused is not None:
            raise self.error(where, self.access.refusal(name, refused))
        if not full.is_file():
            raise self.error(where, f"{name!r}: no such file (looked for {str(full)!r})")
        self.access.record(full)
        return full


def _show(value: Any) -> str:
    """A short description of a JSON value for error messages."""
    text = json.dumps(value) if _is_jsonable(value) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _check_keys(ctx: _Ctx, where: str, obj: Any, required: Tuple[str, ...],
                optional: Tuple[str, ...] = ()) -> dict:
    if not isinstance(obj, dict):
        raise ctx.error(where, f"must be an object, got {_show(obj)}")
    for key in required:
        if key not in obj:
            raise ctx.error(where, f"missing key {key!r}")
    allowed = set(required) | set(optional)
    for key in obj:
        if key not in allowed:
            raise ctx.error(where, f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")
    return obj


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _number(ctx: _Ctx, where: str, value: Any) -> float:
    if not _is_number(value) or not math.isfinite(value):
        raise ctx.error(where, f"must be a finite number, got {_show(value)}")
    return float(value)


def _int(ctx: _Ctx, where: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ctx.error(where, f"must be an integer, got {_show(value)}")
    if value < minimum:
        raise ctx.error(where, f"must be >= {minimum}, got {value}")
    return value


def _bool(ctx: _Ctx, where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ctx.error(where, f"must be true or false, got {_show(value)}")
    return value


def _vector(ctx: _Ctx, where: str, value: Any, n: int = 3) -> torch.Tensor:
    if (not isinstance(value, list) or len(value) != n
            or not all(_is_number(x) and math.isfinite(x) for x in value)):
        raise ctx.error(where, f"must be a list of {n} finite numbers, got {_show(value)}")
    if any(abs(x) > _FLOAT32_MAX for x in value):
        raise ctx.error(where, f"{_show(value)} is out of the float32 range (|x| <= "
                               f"{_FLOAT32_MAX:.4g})")
    return torch.tensor(value, dtype=torch.float32)


def _nested_array(ctx: _Ctx, where: str, value: Any, dtype, tail: Tuple[int, ...],
                  what: str) -> np.ndarray:
    """A nested JSON list -> numpy array of shape [N, *tail] (or [h, w, c] for tail=(None, c))."""
    try:
        arr = np.array(value, dtype=np.float64)
    except (ValueError, TypeError):
        raise ctx.error(where, f"must be {what} (a nested list of numbers with equal-length "
                               "rows)") from None
    ndim = 1 + len(tail)
    if arr.ndim != ndim or any(t is not None and s != t for s, t in zip(arr.shape[1:], tail)):
        raise ctx.error(where, f"must be {what}, got shape {list(arr.shape)}")
    if not np.isfinite(arr).all():
        raise ctx.error(where, "contains a non-finite value")
    if np.issubdtype(dtype, np.integer):
        if (arr != np.round(arr)).any():
            raise ctx.error(where, f"must be {what} of integers")
        return arr.astype(np.int64)
    if (np.abs(arr) > _FLOAT32_MAX).any():
        raise ctx.error(where, f"contains a value out of the float32 range (|x| <= {_FLOAT32_MAX:.4g})")
    return arr.astype(dtype)


def _json_depth(doc: Any, limit: int) -> int:
    """Nesting depth of lists/objects (a number is depth 0), without recursion; stops at limit + 1."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > limit:
            return depth
        children = value.values() if isinstance(value, dict) else value
        stack.extend((c, depth + 1) for c in children if isinstance(c, (list, dict)))
    return deepest if isinstance(doc, (list, dict)) else 0


# =============================================================================================
# Loading: JSON -> rt.Scene
# =============================================================================================
def load_scene(path: PathLike, *, allowed_paths: Optional[Iterable[PathLike]] = None,
               allow_any_path: bool = False, limits: Optional[Limits] = None) -> "Any":
    """Reads a scene file (or a folder holding ``scene.json``) into an ``rt.Scene``.

    Args:
        path: a ``.json`` scene file, or a folder that contains ``scene.json``.
        allowed_paths: folders (or files) outside the scene file's folder whose files the
            scene may read. By default every file it names (meshes, textures, arrays) must
            resolve, after symlinks, inside the scene file's folder.
        allow_any_path: let the scene read files anywhere (only for scenes you trust).
        limits: size limits (:class:`raytrace.io.Limits`; None: ``raytrace.io.limits.
            DEFAULT_LIMITS``), checked before data is read or inflated.

    Returns:
        rt.Scene. The file's default render settings (``"render"``) are not part of the Scene;
        ``python -m raytrace render`` reads them with :func:`read_scene`.

    Raises:
        ValueError: missing file, malformed JSON, missing/unknown keys or bad values, a file
            outside the allowed folders, a size limit exceeded; the message names the file and
            the JSON path of the entry. Malformed files it names (meshes, images, arrays)
            are reported the same way, with the inner file and line where there is one.
        TypeError: an argument of the wrong type.
    """
    return read_scene(path, allowed_paths=allowed_paths, allow_any_path=allow_any_path,
                      limits=limits)[0]


def read_scene(path: PathLike, resolution: Optional[Tuple[int, int]] = None, *,
               allowed_paths: Optional[Iterable[PathLike]] = None, allow_any_path: bool = False,
               limits: Optional[Limits] = None, files_read: Optional[List[str]] = None
               ) -> Tuple["Any", Dict[str, int]]:
    """Like :func:`load_scene`, and also returns the file's render settings.

    Args:
        path: a ``.json`` scene file, or a folder that contains ``scene.json``.
        resolution: (H, W) to use instead of the file's camera resolution.
        allowed_paths, allow_any_path, limits: as for :func:`load_scene`.
        files_read: a list to which the real path of every file the scene refers to (and of
            the scene file) is appended, even when the load fails (the command line refuses
            to write its output over one of them).

    Returns:
        (scene, settings): settings holds "spp" and/or "max_bounces" where the file gives them.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike (got {type(path).__name__})")
    allowed = check_policy_args(allowed_paths, allow_any_path)
    shown = str(path)
    file = Path(path)
    if file.is_dir():
        file = file / SCENE_FILE_NAME
        shown = str(file)
        if not file.is_file():
            raise ValueError(f"{str(path)}: folder has no {SCENE_FILE_NAME}")
    elif not file.exists():
        raise ValueError(f"{shown}: no such file or folder")
    access = FileAccess(file, shown, allowed, allow_any_path, limits)
    if files_read is not None:
        access.files_read = files_read
    access.record(file)
    ctx = _Ctx(file, shown, access)
    try:
        access.budget.check_file(file, shown)
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ctx.error("", f"cannot read ({e})") from e
    max_depth = access.budget.limits.max_nesting_depth
    try:
        doc = json.loads(text)
    except RecursionError as e:
        raise ctx.error("", f"malformed JSON: lists/objects nested too deeply for the parser "
                            f"(the limit is {max_depth} levels)") from e
    except ValueError as e:  # JSONDecodeError; an integer of more than 4300 digits
        raise ctx.error("", f"malformed JSON: {e}") from None
    if _json_depth(doc, max_depth) > max_depth:
        access.budget.check_depth(shown, max_depth + 1, "JSON lists/objects")
    try:
        return _build_scene(ctx, doc, resolution)
    except (RecursionError, MemoryError) as e:  # not expected past the checks above
        raise ctx.error("", f"cannot load ({type(e).__name__})") from e


def _build_scene(ctx: _Ctx, doc: Any, resolution: Optional[Tuple[int, int]]):
    rt = _rt()
    _check_keys(ctx, "", doc, ("version", "camera", "materials", "shapes"),
                ("description", "envmap", "render"))
    version = doc["version"]
    if version != FORMAT_VERSION:
        raise ctx.error("version", f"unsupported version {_show(version)} (this raytrace reads "
                                   f"version {FORMAT_VERSION})")
    if "description" in doc and not isinstance(doc["description"], str):
        raise ctx.error("description", "must be a string")

    camera = _camera(ctx, doc["camera"], resolution)

    if not isinstance(doc["materials"], list):
        raise ctx.error("materials", "must be a list")
    materials = [_material(ctx, f"materials[{i}]", m) for i, m in enumerate(doc["materials"])]
    names: Dict[str, int] = {}
    for i, m in enumerate(doc["materials"]):
        if "name" in m:
            if m["name"] in names:
                raise ctx.error(f"materials[{i}].name", f"duplicate name {m['name']!r} (also "
                                                        f"materials[{names[m['name']]}])")
            names[m["name"]] = i

    if not isinstance(doc["shapes"], list):
        raise ctx.error("shapes", "must be a list")
    shapes, lights = [], []
    for i, s in enumerate(doc["shapes"]):
        shape, light = _shape(ctx, f"shapes[{i}]", s, i, len(materials), names)
        shapes.append(shape)
        if light is not None:
            lights.append(light)

    envmap = None
    if doc.get("envmap") is not None:
        envmap = _envmap(ctx, "envmap", doc["envmap"])

    settings: Dict[str, int] = {}
    if doc.get("render") is not None:
        r = _check_keys(ctx, "render", doc["render"], (), ("spp", "max_bounces"))
        if "spp" in r:
            settings["spp"] = _int(ctx, "render.spp", r["spp"], 1)
        if "max_bounces" in r:
            settings["max_bounces"] = _int(ctx, "render.max_bounces", r["max_bounces"], 0)

    try:
        scene = rt.Scene(camera=camera, shapes=shapes, materials=materials, area_lights=lights,
                         envmap=envmap)
    except (TypeError, ValueError) as e:
        raise ctx.error("", str(e)) from e
    return scene, settings


def _camera(ctx: _Ctx, value: Any, resolution: Optional[Tuple[int, int]]):
    rt = _rt()
    where = "camera"
    c = _check_keys(ctx, where, value, ("position", "look_at", "up", "resolution"),
                    ("fov", "type"))
    position = _vector(ctx, f"{where}.position", c["position"])
    look_at = _vector(ctx, f"{where}.look_at", c["look_at"])
    up = _vector(ctx, f"{where}.up", c["up"])
    fov = _number(ctx, f"{where}.fov", c.get("fov", _CAMERA_DEFAULTS["fov"]))
    res = c["resolution"]
    if (not isinstance(res, list) or len(res) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in res)):
        raise ctx.error(f"{where}.resolution", f"must be [height, width] (positive integers), "
                                               f"got {_show(res)}")
    camera_type = c.get("type", _CAMERA_DEFAULTS["type"])
    if not isinstance(camera_type, str):
        raise ctx.error(f"{where}.type", f"must be a string, got {_show(camera_type)}")
    try:
        return rt.Camera(position, look_at, up, fov=fov,
                         resolution=tuple(resolution) if resolution is not None else tuple(res),
                         camera_type=camera_type)
    except (TypeError, ValueError) as e:
        raise ctx.error(where, str(e)) from e


# --- textures ------------------------------------------------------------------------------------
def _load_image(ctx: _Ctx, where: str, name: Any, srgb: Optional[bool]) -> np.ndarray:
    """An image file (PNG/JPEG/EXR/HDR/NPY) -> float32 [h, w, c] numpy array (linear)."""
    file = ctx.resolve(where, name, _IMAGE_SUFFIXES)
    key = (f"image:{srgb}", file.resolve())
    if key in ctx.cache:
        return ctx.cache[key]
    suffix = file.suffix.lower()
    budget = ctx.access.budget
    try:
        if suffix == ".npy":
            arr = read_npy(file, name, budget)
            if arr.ndim == 2:
                arr = arr[:, :, None]
            if arr.ndim != 3 or not np.issubdtype(arr.dtype, np.number):
                raise ValueError(f"{name}: must hold a numeric [h, w, c] array, got {arr.dtype} "
                                 f"{list(arr.shape)}")
            with np.errstate(over="ignore"):
                arr = arr.astype(np.float32)
        else:
            arr = _imread(file, name, True if srgb is None else srgb, budget).numpy()
    except (ValueError, ImportError, OSError) as e:
        raise ctx.error(where, str(e)) from e
    if not np.isfinite(arr).all():
        raise ctx.error(where, f"{name}: contains a value that is not finite in float32")
    ctx.cache[key] = arr
    return arr


def _texture(ctx: _Ctx, where: str, value: Any, channels: int) -> torch.Tensor:
    """A material value -> [channels] constant or [h, w, channels] texture tensor.

    Accepted: a number (roughness only), a list of `channels` numbers, an inline nested list
    [h][w][channels], or {"texture": file, "srgb": bool}. Image files with 1 channel are
    broadcast to 3; for 3-channel values a 4th (alpha) channel is dropped; for 1-channel values
    (roughness) the first channel of a multi-channel file is used.
    """
    if _is_number(value) and channels == 1:
        return _vector(ctx, where, [value], 1)
    if isinstance(value, list) and (not value or not isinstance(value[0], list)):
        return _vector(ctx, where, value, channels)
    if isinstance(value, list):
        arr = _nested_array(ctx, where, value, np.float32, (None, channels),
                            f"an [h, w, {channels}] texture")
        return torch.from_numpy(np.ascontiguousarray(arr))
    if isinstance(value, dict):
        t = _check_keys(ctx, where, value, ("texture",), ("srgb",))
        srgb = _bool(ctx, f"{where}.srgb", t["srgb"]) if "srgb" in t else None
        if srgb is None:
            srgb = channels == 3  # colours are sRGB-encoded in 8-bit files, data is not
        arr = _load_image(ctx, f"{where}.texture", t["texture"], srgb)
        if channels == 3:
            arr = np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr[:, :, :3]
        else:
            arr = arr[:, :, :1]
        return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    what = "a number, " if channels == 1 else ""
    raise ctx.error(where, f"must be {what}a list of {channels} numbers, a nested [h][w]"
                           f"[{channels}] list or {{\"texture\": file}}, got {_show(value)}")


def _material(ctx: _Ctx, where: str, value: Any):
    rt = _rt()
    m = _check_keys(ctx, where, value, ("diffuse",), ("name", "specular", "roughness",
                                                      "two_sided"))
    if "name" in m and not isinstance(m["name"], str):
        raise ctx.error(f"{where}.name", "must be a string")
    diffuse = _texture(ctx, f"{where}.diffuse", m["diffuse"], 3)
    specular = _texture(ctx, f"{where}.specular", m["specular"], 3) if "specular" in m else None
    roughness = _texture(ctx, f"{where}.roughness", m["roughness"], 1) if "roughness" in m else None
    two_sided = _bool(ctx, f"{where}.two_sided", m.get("two_sided", False))
    try:
        return rt.Material(diffuse, specular_reflectance=specular, roughness=roughness,
                           two_sided=two_sided)
    except (TypeError, ValueError) as e:
        raise ctx.error(where, str(e)) from e


# --- meshes ------------------------------------------------------------------------------------
def _load_mesh_file(ctx: _Ctx, where: str, name: Any) -> Dict[str, Optional[np.ndarray]]:
    file = ctx.resolve(where, name, _MESH_SUFFIXES)
    key = ("mesh", file.resolve())
    if key in ctx.cache:
        return ctx.cache[key]
    if file.suffix.lower() == ".obj":
        try:
            mesh = _load_obj(file, str(file), ctx.access.budget)
        except ValueError as e:
            raise ctx.error(where, str(e)) from e
        out = {k: (v.numpy() if v is not None else None) for k, v in mesh.items()}
    else:
        try:
            arrays = read_npz(file, name, ctx.access.budget,
                              names=("vertices", "indices", "uvs", "normals"))
        except OSError as e:
            raise ctx.error(where, f"{name}: cannot read .npz ({e})") from e
        except ValueError as e:
            raise ctx.error(where, str(e)) from e
        for k in ("vertices", "indices"):
            if k not in arrays:
                raise ctx.error(where, f"{name}: missing array {k!r}")
        out = {"vertices": arrays["vertices"], "indices": arrays["indices"],
               "uvs": arrays.get("uvs"), "normals": arrays.get("normals")}
        for k, v in out.items():
            if v is None:
                continue
            if k == "indices" and not np.issubdtype(v.dtype, np.integer):
                raise ctx.error(where, f"{name}: 'indices' must be an integer array, got {v.dtype}")
            if k != "indices" and not np.issubdtype(v.dtype, np.floating):
                raise ctx.error(where, f"{name}: {k!r} must be a float array, got {v.dtype}")
        try:
            check_mesh(out, name)
        except ValueError as e:
            raise ctx.error(where, str(e)) from e
    ctx.cache[key] = out
    return out


def _transform_matrix(ctx: _Ctx, where: str, value: Any) -> np.ndarray:
    """{"matrix": 4x4} or {"scale", "rotate": [x, y, z, degrees], "translate"} -> 4x4 float64."""
    t = _check_keys(ctx, where, value, (), ("matrix", "scale", "rotate", "translate"))
    if "matrix" in t:
        if len(t) > 1:
            raise ctx.error(where, "give either 'matrix' or scale/rotate/translate, not both")
        m = _nested_array(ctx, f"{where}.matrix", t["matrix"], np.float64, (4,), "a 4x4 matrix")
        if m.shape != (4, 4):
            raise ctx.error(f"{where}.matrix", f"must be a 4x4 matrix, got shape {list(m.shape)}")
        if not np.allclose(m[3], [0, 0, 0, 1]):
            raise ctx.error(f"{where}.matrix", "last row must be [0, 0, 0, 1] (affine)")
        return m
    m = np.eye(4)
    if "scale" in t:
        s = t["scale"]
        scale = [_number(ctx, f"{where}.scale", s)] * 3 if _is_number(s) else \
            _vector(ctx, f"{where}.scale", s).double().tolist()
        m = np.diag(scale + [1.0]) @ m
    if "rotate" in t:
        r = _vector(ctx, f"{where}.rotate", t["rotate"], 4).double().numpy()
        axis = r[:3]
        if np.linalg.norm(axis) == 0:
            raise ctx.error(f"{where}.rotate", "axis (the first three numbers) must not be zero")
        x, y, z = axis / np.linalg.norm(axis)
        a = math.radians(r[3])
        c, s_ = math.cos(a), math.sin(a)
        rot = np.eye(4)
        rot[:3, :3] = [[c + x * x * (1 - c), x * y * (1 - c) - z * s_, x * z * (1 - c) + y * s_],
                       [y * x * (1 - c) + z * s_, c + y * y * (1 - c), y * z * (1 - c) - x * s_],
                       [z * x * (1 - c) - y * s_, z * y * (1 - c) + x * s_, c + z * z * (1 - c)]]
        m = rot @ m
    if "translate" in t:
        tr = np.eye(4)
        tr[:3, 3] = _vector(ctx, f"{where}.translate", t["translate"]).double().numpy()
        m = tr @ m
    if abs(np.linalg.det(m[:3, :3])) < 1e-12:
        raise ctx.error(where, "is singular (a scale of 0?)")
    return m


def _mesh(ctx: _Ctx, where: str, value: Any) -> Dict[str, Optional[np.ndarray]]:
    if not isinstance(value, dict):
        raise ctx.error(where, f"must be an object ({{\"path\": ...}} or {{\"vertices\": ..., "
                               f"\"indices\": ...}}), got {_show(value)}")
    if "path" in value:
        m = _check_keys(ctx, where, value, ("path",), ("transform",))
        mesh = dict(_load_mesh_file(ctx, f"{where}.path", m["path"]))
    else:
        m = _check_keys(ctx, where, value, ("vertices", "indices"), ("uvs", "normals", "transform"))
        mesh = {
            "vertices": _nested_array(ctx, f"{where}.vertices", m["vertices"], np.float32, (3,),
                                      "a list of [x, y, z] vertices"),
            "indices": _nested_array(ctx, f"{where}.indices", m["indices"], np.int64, (3,),
                                     "a list of [i, j, k] triangles"),
            "uvs": _nested_array(ctx, f"{where}.uvs", m["uvs"], np.float32, (2,),
                                 "a list of [u, v] pairs") if "uvs" in m else None,
            "normals": _nested_array(ctx, f"{where}.normals", m["normals"], np.float32, (3,),
                                     "a list of [x, y, z] normals") if "normals" in m else None,
        }
    if "transform" in m:
        mat = _transform_matrix(ctx, f"{where}.transform", m["transform"])
        v = mesh["vertices"].astype(np.float64)
        mesh["vertices"] = (v @ mat[:3, :3].T + mat[:3, 3]).astype(np.float32)
        if mesh["normals"] is not None:
            n = mesh["normals"].astype(np.float64) @ np.linalg.inv(mat[:3, :3])  # inverse transpose
            length = np.linalg.norm(n, axis=1, keepdims=True)
            mesh["normals"] = (n / np.where(length > 0, length, 1.0)).astype(np.float32)
        if np.linalg.det(mat[:3, :3]) < 0:  # a mirror flips the winding: keep the facing
            mesh["indices"] = mesh["indices"][:, [0, 2, 1]]
    return mesh


def _shape(ctx: _Ctx, where: str, value: Any, shape_id: int, n_materials: int,
           names: Dict[str, int]):
    rt = _rt()
    s = _check_keys(ctx, where, value, ("mesh", "material"), ("name", "emission"))
    if "name" in s and not isinstance(s["name"], str):
        raise ctx.error(f"{where}.name", "must be a string")
    mat = s["material"]
    if isinstance(mat, str):
        if mat not in names:
            raise ctx.error(f"{where}.material", f"no material named {mat!r}")
        material_id = names[mat]
    else:
        material_id = _int(ctx, f"{where}.material", mat, 0)
        if material_id >= n_materials:
            raise ctx.error(f"{where}.material", f"index {material_id} out of range "
                                                 f"({n_materials} materials)")
    mesh = _mesh(ctx, f"{where}.mesh", s["mesh"])
    as_tensor = (lambda a: None if a is None else torch.from_numpy(np.ascontiguousarray(a)))
    try:
        shape = rt.Shape(as_tensor(mesh["vertices"].astype(np.float32, copy=False)),
                         as_tensor(mesh["indices"].astype(np.int64, copy=False)), material_id,
                         uvs=as_tensor(mesh["uvs"]), normals=as_tensor(mesh["normals"]))
    except (TypeError, ValueError) as e:
        raise ctx.error(f"{where}.mesh", str(e)) from e
    light = None
    if "emission" in s:
        e_where = f"{where}.emission"
        e = _check_keys(ctx, e_where, s["emission"], ("intensity",), ("two_sided",))
        intensity = _vector(ctx, f"{e_where}.intensity", e["intensity"])
        two_sided = _bool(ctx, f"{e_where}.two_sided", e.get("two_sided", False))
        try:
            light = rt.AreaLight(shape_id, intensity, two_sided=two_sided)
        except (TypeError, ValueError) as err:
            raise ctx.error(e_where, str(err)) from err
    return shape, light


def _envmap(ctx: _Ctx, where: str, value: Any):
    rt = _rt()
    if not isinstance(value, dict):
        raise ctx.error(where, f"must be an object or null, got {_show(value)}")
    sources = [k for k in ("path", "values", "constant") if k in value]
    if len(sources) != 1:
        raise ctx.error(where, "give exactly one of 'path', 'values' or 'constant'"
                               + (f" (got {', '.join(sources)})" if sources else ""))
    optional = ("scale", "srgb") if sources[0] == "path" else ("scale",)
    e = _check_keys(ctx, where, value, (sources[0],), optional)
    if "path" in e:
        srgb = _bool(ctx, f"{where}.srgb", e["srgb"]) if "srgb" in e else True
        arr = _load_image(ctx, f"{where}.path", e["path"], srgb)
        arr = np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr[:, :, :3]
        values = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    elif "values" in e:
        values = torch.from_numpy(np.ascontiguousarray(_nested_array(
            ctx, f"{where}.values", e["values"], np.float32, (None, 3), "an [h, w, 3] image")))
    else:
        values = _vector(ctx, f"{where}.constant", e["constant"]).reshape(1, 1, 3)
    if "scale" in e:
        s = e["scale"]
        scale = torch.full((3,), _number(ctx, f"{where}.scale", s)) if _is_number(s) \
            else _vector(ctx, f"{where}.scale", s)
        values = values * scale
    try:
        return rt.EnvironmentMap(values)
    except (TypeError, ValueError) as err:
        raise ctx.error(where, str(err)) from err

