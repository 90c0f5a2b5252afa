"""Scene files: a versioned JSON format, an OBJ reader, and ``load_scene`` / ``save_scene``.

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

Relative file names are relative to the folder of the JSON file. Every error is a ValueError
whose message starts with the file and the JSON path of the offending entry, e.g.
``scene.json: shapes[2].material: index 5 out of range (3 materials)``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from .images import _EXR_CHANNELS, exr_supported, imread, imwrite

__all__ = ["load_scene", "save_scene", "load_obj", "FORMAT_VERSION"]

PathLike = Union[str, os.PathLike]

FORMAT_VERSION = 1
SCENE_FILE_NAME = "scene.json"  # looked for when a folder is given
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".exr", ".npy")
_MESH_SUFFIXES = (".obj", ".npz")
# Defaults used when a key is absent (they match the rt.Camera / rt.Material defaults).
_CAMERA_DEFAULTS = {"fov": 45.0, "type": "perspective"}
# Arrays at most this long (vertices, texels) are written inline by save_scene(inline=None).
_INLINE_LIMIT = 64


def _rt():
    """The raytrace package, imported lazily (raytrace/__init__.py imports this module)."""
    import raytrace  # noqa: PLC0415

    return raytrace


# =============================================================================================
# Error context: which file, which JSON entry
# =============================================================================================
class _Ctx:
    """The scene file being read: names it in errors and resolves relative paths."""

    def __init__(self, path: Path, shown: str):
        self.path = path
        self.shown = shown  # the file name as the caller wrote it
        self.base = path.parent
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
        if not full.is_file():
            raise self.error(where, f"{name!r}: no such file (looked for {str(full)!r})")
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
    return arr.astype(dtype)


# =============================================================================================
# OBJ reader
# =============================================================================================
def load_obj(path: PathLike) -> Dict[str, Optional[torch.Tensor]]:
    """Reads a Wavefront OBJ file into one triangle mesh.

    Reads ``v``, ``vt``, ``vn`` and ``f`` statements (other statements such as ``o``, ``g``,
    ``usemtl`` and ``s`` are ignored). Polygons are fan-triangulated; indices may be negative
    (relative to the end of the list so far); each distinct ``v/vt/vn`` combination becomes one
    output vertex. OBJ texture coordinates have v pointing up the image, raytrace textures have
    row 0 at v = 0, so ``v`` is flipped: ``uv = (u, 1 - v)``.

    Returns:
        dict with "vertices" [N, 3] float32, "indices" [M, 3] int64, "uvs" [N, 2] float32 or
        None (None when no face uses ``vt``; vertices of faces without ``vt`` get uv (0, 0)),
        "normals" [N, 3] float32 or None (None when no face uses ``vn``).

    Raises:
        ValueError: missing file, malformed statement, index out of range, no faces, or some
            faces with normals and others without (the message names the file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{str(path)}: no such file")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise ValueError(f"{str(path)}: cannot read ({e})") from e
    return _parse_obj(text, str(path))


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


# =============================================================================================
# Loading: JSON -> rt.Scene
# =============================================================================================
def load_scene(path: PathLike) -> "Any":
    """Reads a scene file (or a folder holding ``scene.json``) into an ``rt.Scene``.

    Args:
        path: a ``.json`` scene file, or a folder that contains ``scene.json``.

    Returns:
        rt.Scene. The file's default render settings (``"render"``) are not part of the Scene;
        ``python -m raytrace render`` reads them with :func:`read_scene`.

    Raises:
        ValueError: missing file, malformed JSON, missing/unknown keys or bad values, with the
            file and the JSON path of the entry in the message.
    """
    return read_scene(path)[0]


def read_scene(path: PathLike, resolution: Optional[Tuple[int, int]] = None
               ) -> Tuple["Any", Dict[str, int]]:
    """Like :func:`load_scene`, and also returns the file's render settings.

    Args:
        path: a ``.json`` scene file, or a folder that contains ``scene.json``.
        resolution: (H, W) to use instead of the file's camera resolution.

    Returns:
        (scene, settings): settings holds "spp" and/or "max_bounces" where the file gives them.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike (got {type(path).__name__})")
    shown = str(path)
    file = Path(path)
    if file.is_dir():
        file = file / SCENE_FILE_NAME
        shown = str(file)
        if not file.is_file():
            raise ValueError(f"{str(path)}: folder has no {SCENE_FILE_NAME}")
    elif not file.exists():
        raise ValueError(f"{shown}: no such file or folder")
    ctx = _Ctx(file, shown)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ctx.error("", f"cannot read ({e})") from e
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ctx.error("", f"malformed JSON: {e}") from None
    return _build_scene(ctx, doc, resolution)


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
    """An image file (PNG/JPEG/EXR/NPY) -> float32 [h, w, c] numpy array (linear)."""
    file = ctx.resolve(where, name, _IMAGE_SUFFIXES)
    key = (f"image:{srgb}", file.resolve())
    if key in ctx.cache:
        return ctx.cache[key]
    suffix = file.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(file, allow_pickle=False)
            if arr.ndim == 2:
                arr = arr[:, :, None]
            if arr.ndim != 3 or not np.issubdtype(arr.dtype, np.number):
                raise ValueError(f"must hold a numeric [h, w, c] array, got {arr.dtype} "
                                 f"{list(arr.shape)}")
            arr = arr.astype(np.float32)
        else:
            arr = imread(file, srgb=True if srgb is None else srgb).numpy()
    except (ValueError, ImportError, OSError) as e:
        raise ctx.error(where, f"{name}: {e}") from e
    if not np.isfinite(arr).all():
        raise ctx.error(where, f"{name}: contains a non-finite value")
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
            mesh = load_obj(file)
        except ValueError as e:
            raise ctx.error(where, str(e)) from e
        out = {k: (v.numpy() if v is not None else None) for k, v in mesh.items()}
    else:
        try:
            with np.load(file, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise ctx.error(where, f"{name}: cannot read .npz ({e})") from e
        for k in arrays:
            if k not in ("vertices", "indices", "uvs", "normals"):
                raise ctx.error(where, f"{name}: unknown array {k!r} (allowed: indices, normals, "
                                       "uvs, vertices)")
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


# =============================================================================================
# Saving: rt.Scene -> JSON (+ .npz meshes and .exr/.npy textures)
# =============================================================================================
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
        path: the ``.json`` file to write (its folder is created if needed).
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
        writer(data_dir / name)
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

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_json(doc) + "\n", encoding="utf-8")


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
