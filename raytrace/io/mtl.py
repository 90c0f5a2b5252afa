"""Wavefront MTL material libraries -> ``rt.Material`` (private; used by ``load_obj``).

What is read, per ``newmtl``:

| MTL | raytrace | |
|---|---|---|
| ``Kd r g b`` | ``diffuse_reflectance`` | default 0.5 (grey) when absent; one number is grey |
| ``Ks r g b`` | ``specular_reflectance`` (Schlick F0) | default 0 |
| ``Ns n`` | ``roughness`` = sqrt(2 / (n + 2)) | the GGX alpha, see below; default n = 0 (roughness 1) |
| ``Ke r g b`` | ``ObjObject.emission`` (an area light) | only when not black |
| ``map_Kd`` | diffuse texture | replaces Kd (as redner, Blender and most importers do) |
| ``map_Ks`` | specular texture | replaces Ks |
| ``map_Bump``, ``bump``, ``norm`` | not used | raytrace has no bump or normal maps: an ObjWarning names the file; its path is kept in ``ObjObject.textures`` |

Ns -> roughness. raytrace's ``roughness`` is the GGX alpha. A Blinn-Phong exponent ``Ns`` and a
Beckmann alpha describe about the same lobe when ``Ns = 2 / alpha^2 - 2`` (Walter et al. 2007,
"Microfacet models for refraction"), and raytrace takes a Beckmann alpha as the GGX alpha (as
``load_mitsuba`` does), so ``roughness = sqrt(2 / (Ns + 2))``: Ns 0 -> 1, 10 -> 0.41, 100 -> 0.14,
1000 -> 0.045. (redner stores ``2 / (Ns + 2)`` itself, the square of this, as its roughness.)

Textures are read with ``rt.imread``'s decoders (PNG, JPEG, TGA, BMP sRGB-decoded to linear;
EXR and HDR linear), relative to the ``.mtl`` file's folder, under the load's path rule and
size limits: a name that resolves outside the allowed folders is a ValueError. A missing
``.mtl`` or texture file, an unknown material name and every other key (``Ka``, ``Ni``, ``d``,
``illum``, ``map_d``, ...) are an ObjWarning each (each key once per load) and are skipped.
Texture options (``-s``, ``-o``, ``-bm``, ...) are skipped with a warning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from .paths import FileAccess

DEFAULT_KD = 0.5
# Texture options and how many arguments each takes (the MTL spec's list).
_MAP_OPTIONS = {"-blendu": 1, "-blendv": 1, "-bm": 1, "-boost": 1, "-cc": 1, "-clamp": 1,
                "-imfchan": 1, "-mm": 2, "-o": 3, "-s": 3, "-t": 3, "-texres": 1, "-type": 1}
_MAPS = {"map_kd": "map_Kd", "map_ks": "map_Ks", "map_bump": "map_Bump", "bump": "map_Bump",
         "norm": "norm"}
_COLOURS = ("kd", "ks", "ke")
_TEXTURE_FORMATS = (".png", ".jpg", ".jpeg", ".tga", ".bmp", ".exr", ".hdr")


def ns_to_roughness(ns: float) -> float:
    """A Blinn-Phong exponent -> raytrace's roughness (the GGX alpha): sqrt(2 / (Ns + 2))."""
    return math.sqrt(2.0 / (ns + 2.0))


def roughness_to_ns(roughness: float) -> float:
    """The inverse of :func:`ns_to_roughness`: 2 / roughness^2 - 2 (at least 0)."""
    return max(2.0 / (roughness * roughness) - 2.0, 0.0)


@dataclass
class _Entry:
    """One ``newmtl``: its values as written, and where."""
    name: str
    file: str
    line: int
    values: Dict[str, Tuple[float, float, float]] = field(default_factory=dict)  # kd, ks, ke
    ns: Optional[float] = None
    maps: Dict[str, Tuple[str, int]] = field(default_factory=dict)  # key -> (name, line)


@dataclass
class Built:
    material: object
    emission: Optional[torch.Tensor]
    textures: Dict[str, str]


class MtlReader:
    """The material libraries of one OBJ load, and the materials built from them."""

    def __init__(self, access: FileAccess, obj_shown: str):
        self.access = access
        self.obj_shown = obj_shown
        self.entries: Dict[str, _Entry] = {}
        self.built: Dict[Optional[str], Built] = {}
        self.warned_keys: set = set()
        self.textures: Dict[str, np.ndarray] = {}

    def warn(self, msg: str) -> None:
        from .obj import warn  # noqa: PLC0415

        warn(msg)

    # -- files ---------------------------------------------------------------------------------
    def _resolve(self, base: Path, name: str, where: str, what: str) -> Optional[Path]:
        """A file named in the OBJ or MTL file, relative to `base`; ValueError when it lies
        outside the allowed folders, None (warned) when it does not exist."""
        name = name.strip().strip('"')
        candidate = Path(name.replace("\\", "/"))
        file = candidate if candidate.is_absolute() else base / candidate
        real = self.access.refused(file)
        if real is not None:
            raise ValueError(f"{where}: {what}: {self.access.refusal(name, real)}")
        if not file.is_file():
            self.warn(f"{where}: {what} {name!r} not found (looked in {str(file.parent)!r}); "
                      "skipped")
            return None
        self.access.record(file)
        return file

    def read_library(self, names: str, line: int) -> None:
        """An ``mtllib`` statement: one or more file names (or one name with spaces)."""
        obj_dir = Path(self.obj_shown).parent
        where = f"{self.obj_shown}: line {line}"
        whole = obj_dir / names.replace("\\", "/")
        parts = [names] if (self.access.refused(whole) is None and whole.is_file()) else names.split()
        for name in parts:
            file = self._resolve(obj_dir, name, where, "mtllib")
            if file is not None:
                self._parse(file, name if Path(name).is_absolute() else str(obj_dir / name))

    def _parse(self, file: Path, shown: str) -> None:
        from .obj import parse_floats, statements  # noqa: PLC0415

        try:
            self.access.budget.check_file(file, shown)
            text = file.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise ValueError(f"{shown}: cannot read ({e})") from e

        def fail(lineno: int, msg: str) -> ValueError:
            return ValueError(f"{shown}: line {lineno}: {msg}")

        entry: Optional[_Entry] = None
        for lineno, keyword, args, rest in statements(text):
            key = keyword.lower()
            if key == "newmtl":
                if not rest:
                    raise fail(lineno, "'newmtl' needs a name")
                entry = _Entry(rest, shown, lineno)
                if rest not in self.entries:  # the first definition wins, as in most readers
                    self.entries[rest] = entry
                continue
            if entry is None:
                raise fail(lineno, f"'{keyword}' before any 'newmtl'")
            if key in _COLOURS:
                if args and args[0].lower() in ("spectral", "xyz"):
                    self._unsupported(f"{keyword} {args[0]}", shown, lineno)
                    continue
                values = parse_floats(fail, lineno, args, 1 if len(args) < 3 else 3, keyword)
                values = values * 3 if len(values) == 1 else values
                if min(values) < 0:
                    raise fail(lineno, f"'{keyword}' must be >= 0 (got {rest!r})")
                entry.values[key] = tuple(values)
            elif key == "ns":
                ns = parse_floats(fail, lineno, args, 1, keyword)[0]
                if ns < 0:
                    raise fail(lineno, f"'Ns' must be >= 0 (got {rest!r})")
                entry.ns = ns
            elif key in _MAPS:
                if not rest:
                    raise fail(lineno, f"'{keyword}' needs a file name")
                entry.maps[_MAPS[key]] = (rest, lineno)
            else:
                self._unsupported(keyword, shown, lineno)

    def _unsupported(self, keyword: str, shown: str, lineno: int) -> None:
        if keyword.lower() in self.warned_keys:
            return
        self.warned_keys.add(keyword.lower())
        self.warn(f"{shown}: line {lineno}: '{keyword}' is not supported and is ignored "
                  "(raytrace reads Kd, Ks, Ns, Ke, map_Kd and map_Ks; warned once per key)")

    # -- materials -----------------------------------------------------------------------------
    def material(self, name: Optional[str], obj_line: int) -> Built:
        """The material of a ``usemtl`` name (None: no usemtl), built once per name."""
        if name in self.built:
            return self.built[name]
        from .. import Material  # noqa: PLC0415

        entry = self.entries.get(name) if name is not None else None
        if name is not None and entry is None:
            self.warn(f"{self.obj_shown}: line {obj_line}: material {name!r} is not defined "
                      f"(mtllib: {', '.join(sorted({e.file for e in self.entries.values()})) or 'none'}); "
                      f"a diffuse {DEFAULT_KD} material is used")
        if entry is None:
            built = Built(Material(torch.full((3,), DEFAULT_KD)), None, {})
            self.built[name] = built
            return built
        textures: Dict[str, str] = {}
        diffuse = self._map(entry, "map_Kd", textures)
        if diffuse is None:
            diffuse = torch.tensor(entry.values.get("kd", (DEFAULT_KD,) * 3), dtype=torch.float32)
        specular = self._map(entry, "map_Ks", textures)
        if specular is None:
            specular = torch.tensor(entry.values.get("ks", (0.0,) * 3), dtype=torch.float32)
        for key in ("map_Bump", "norm"):
            if key in entry.maps:
                file = self._map_file(entry, key)
                if file is not None:
                    textures[key] = str(file.resolve())
                    self.warn(f"{entry.file}: line {entry.maps[key][1]}: {key} "
                              f"{entry.maps[key][0]!r} of material {entry.name!r} is ignored: "
                              "raytrace materials have no bump or normal maps")
        roughness = torch.tensor([ns_to_roughness(entry.ns if entry.ns is not None else 0.0)])
        try:
            material = Material(diffuse, specular_reflectance=specular, roughness=roughness)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{entry.file}: line {entry.line}: material {entry.name!r}: {e}") from e
        ke = entry.values.get("ke")
        emission = torch.tensor(ke, dtype=torch.float32) if ke is not None and max(ke) > 0 else None
        built = Built(material, emission, textures)
        self.built[name] = built
        return built

    def _map_file(self, entry: _Entry, key: str) -> Optional[Path]:
        """The file of a map statement (options skipped with a warning)."""
        text, line = entry.maps[key]
        tokens = text.split()
        options: List[str] = []
        i = 0
        while i < len(tokens) and tokens[i].lower() in _MAP_OPTIONS:
            n = _MAP_OPTIONS[tokens[i].lower()]
            options.append(" ".join(tokens[i:i + 1 + n]))
            i += 1 + n
        if i >= len(tokens):
            raise ValueError(f"{entry.file}: line {line}: '{key}' needs a file name after its "
                             f"options (got {text!r})")
        name = " ".join(tokens[i:])
        if options and key in ("map_Kd", "map_Ks"):
            self.warn(f"{entry.file}: line {line}: {key} options {', '.join(options)} are not "
                      "supported and are ignored")
        return self._resolve(Path(entry.file).parent, name, f"{entry.file}: line {line}", key)

    def _map(self, entry: _Entry, key: str, textures: Dict[str, str]) -> Optional[torch.Tensor]:
        """The [h, w, 3] linear texture of map_Kd / map_Ks, or None (absent, missing, skipped)."""
        if key not in entry.maps:
            return None
        file = self._map_file(entry, key)
        if file is None:
            return None
        line = entry.maps[key][1]
        if file.suffix.lower() not in _TEXTURE_FORMATS:
            self.warn(f"{entry.file}: line {line}: {key} {file.name!r}: image format "
                      f"{file.suffix!r} is not supported ({', '.join(_TEXTURE_FORMATS)}); skipped")
            return None
        real = str(file.resolve())
        textures[key] = real
        if real not in self.textures:
            self.textures[real] = _read_texture(file, f"{entry.file}: line {line}: {key} {file.name!r}",
                                                self.access)
        return torch.from_numpy(self.textures[real])


def _read_texture(file: Path, shown: str, access: FileAccess) -> np.ndarray:
    """An image -> float32 [h, w, 3] linear (8-bit formats sRGB-decoded)."""
    from .images import _imread, _read_pil, srgb_decode  # noqa: PLC0415

    budget = access.budget
    if file.suffix.lower() in (".tga", ".bmp"):
        try:
            budget.check_file(file, shown)
        except OSError as e:
            raise ValueError(f"{shown}: cannot read ({e})") from e
        arr = _read_pil(file, shown, budget)
        colour = min(arr.shape[2], 3)
        arr[:, :, :colour] = srgb_decode(arr[:, :, :colour])
    else:
        arr = _imread(file, shown, True, budget).numpy()
    arr = np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr[:, :, :3]
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError(f"{shown}: texture values must be finite and >= 0")
    return np.ascontiguousarray(arr, dtype=np.float32)
