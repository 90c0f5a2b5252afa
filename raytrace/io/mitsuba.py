"""Mitsuba 3 XML scenes: the common subset, read into an ``rt.Scene``.

    scene = rt.load_mitsuba("cbox.xml")
    scene, report = rt.load_mitsuba("cbox.xml", return_report=True)
    image = rt.render(scene, spp=report.spp or 16, max_bounces=report.max_bounces or 4)

The XML document (``<scene version=...>``, ``<default>`` and ``$name`` substitution, ``<include>``,
ids and ``<ref>``, property tags and transforms) is read here; plugins are converted by
:mod:`raytrace.io._mitsuba_plugins`. What is supported, what is approximated and what is skipped
is listed in ``docs/mesh_and_mitsuba.md``. Everything skipped is announced with a
:class:`MitsubaWarning` ("file: line N: ...") and collected in :class:`MitsubaReport`; malformed
XML, missing files and bad values raise ValueError naming the file and line.

Files the scene names (includes, meshes, textures) must lie inside the scene file's folder
unless the caller allows more (:mod:`raytrace.io.paths`); element nesting, the number of
includes and every file's size are checked against :class:`raytrace.io.Limits`; XML entity
declarations (``<!ENTITY``: entity expansion bombs) are refused.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union
from xml.parsers import expat

import numpy as np

from .._validation import boolean
from .limits import Limits
from .paths import FileAccess, check_policy_args

__all__ = ["load_mitsuba", "EmptySceneWarning", "MitsubaReport", "MitsubaWarning"]

PathLike = Union[str, os.PathLike]


class MitsubaWarning(UserWarning):
    """Something in a Mitsuba scene that load_mitsuba skipped (the message names file and line)."""


class EmptySceneWarning(UserWarning):
    """A loaded scene that renders black or empty: no emitter raytrace renders, or no shape."""


@dataclass
class MitsubaReport:
    """What :func:`load_mitsuba` did with a scene file.

    Attributes:
        file: the scene file, as given.
        skipped: one message per thing that was skipped (unknown plugins, unsupported
            parameters), each "file: line N: ..."; each was also warned about.
        approximations: the conversions that are not exact (e.g. a Beckmann roughness used
            as GGX alpha), "file: line N: ...". These are not warned about.
        spp: the sampler's ``sample_count``, or None when the file has no sampler.
        max_bounces: raytrace's ``max_bounces`` from the integrator's ``max_depth``
            (``max_depth - 1``), or None (no integrator, or ``max_depth = -1``: unbounded).
        resolution: (H, W) of the camera, or None without a sensor.
        shape_ids: Mitsuba ``id`` of a shape -> its index in ``scene.shapes``.
        material_ids: Mitsuba ``id`` of a bsdf -> its index in ``scene.materials``.
        camera_mirrored: the sensor's ``to_world`` mirrors (negative determinant). raytrace's
            camera cannot mirror, so the whole scene was mirrored instead (through the plane
            of the camera's view and up directions): the image is Mitsuba's, but world
            coordinates of the scene are reflected.
        files: the real path (symlinks resolved) of every file read: the scene file, its
            includes, meshes and textures, in reading order.
        warnings: problems of the scene as a whole, each also an :class:`EmptySceneWarning`:
            no emitter that raytrace renders (the image is black), no shape.
    """
    file: str
    skipped: List[str] = field(default_factory=list)
    approximations: List[str] = field(default_factory=list)
    spp: Optional[int] = None
    max_bounces: Optional[int] = None
    resolution: Optional[Tuple[int, int]] = None
    shape_ids: Dict[str, int] = field(default_factory=dict)
    material_ids: Dict[str, int] = field(default_factory=dict)
    camera_mirrored: bool = False
    files: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)


def load_mitsuba(path: PathLike, *, params: Optional[Mapping[str, Any]] = None,
                 resolution: Optional[Tuple[int, int]] = None, return_report: bool = False,
                 warn: bool = True, sphere_resolution: Tuple[int, int] = (32, 64),
                 allowed_paths: Optional[Iterable[PathLike]] = None, allow_any_path: bool = False,
                 limits: Optional[Limits] = None):
    """Reads a Mitsuba 3 XML scene (the common subset) into an ``rt.Scene``.

    Args:
        path: the ``.xml`` scene file. Relative file names inside it (meshes, textures,
            includes) are relative to its folder (and to folders added by ``<path>``).
        params: values for ``$name`` parameters; they override the file's ``<default>``s, like
            ``mitsuba.load_file(path, **params)``.
        resolution: (H, W) to use instead of the film's width/height. The field of view is
            converted with the film's aspect ratio.
        return_report: also return a :class:`MitsubaReport`.
        warn: issue a :class:`MitsubaWarning` for every skipped element (the report lists them
            either way).
        sphere_resolution: (rings, segments) of the tessellated ``sphere`` shapes.
        allowed_paths: folders (or files) outside the scene file's folder whose files the
            scene may read. By default every file it names (``<include>``, meshes, textures;
            also through ``<path>``) must resolve, after symlinks, inside the scene file's folder.
        allow_any_path: let the scene read files anywhere (only for scenes you trust).
        limits: size limits (:class:`raytrace.io.Limits`; None: ``raytrace.io.limits.
            DEFAULT_LIMITS``): file sizes, image pixels, element nesting, the total number of
            ``<include>``s; checked before data is read.

    Returns:
        rt.Scene, or (rt.Scene, MitsubaReport) with ``return_report=True``. The camera is None
        when the file has no supported sensor.

    Raises:
        ValueError: missing file, malformed XML, undefined ``$name``, bad numbers or values,
            missing referenced files or ids, a file outside the allowed folders, a size limit
            exceeded; the message starts "file: line N:".
        TypeError: an argument of the wrong type.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike (got {type(path).__name__})")
    if params is not None and not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping of names to values (got {type(params).__name__})")
    if resolution is not None:
        if (not isinstance(resolution, (tuple, list)) or len(resolution) != 2
                or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in resolution)):
            raise ValueError(f"resolution must be (H, W), two positive integers (got {resolution!r})")
        resolution = (int(resolution[0]), int(resolution[1]))
    if (not isinstance(sphere_resolution, (tuple, list)) or len(sphere_resolution) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in sphere_resolution)
            or sphere_resolution[0] < 2 or sphere_resolution[1] < 3):
        raise ValueError(f"sphere_resolution must be (rings >= 2, segments >= 3) (got {sphere_resolution!r})")
    allowed = check_policy_args(allowed_paths, allow_any_path)
    return_report = boolean(return_report, "return_report")
    warn = boolean(warn, "warn")
    shown = str(path)
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"{shown}: no such file" if not file.exists() else f"{shown}: not a file")
    ctx = _Context(file, shown, warn, FileAccess(file, shown, allowed, allow_any_path, limits))
    ctx.access.record(file)
    from ._mitsuba_plugins import build_scene  # noqa: PLC0415

    try:
        root = ctx.parse(file, shown)
        _prepare(ctx, root, dict(params or {}))
        scene = build_scene(ctx, root, resolution, (int(sphere_resolution[0]), int(sphere_resolution[1])))
    except (RecursionError, MemoryError) as e:  # not expected past the limits' checks
        raise ValueError(f"{shown}: cannot load ({type(e).__name__})") from e
    return (scene, ctx.report) if return_report else scene


# =============================================================================================
# The XML tree, with the file and line of every element
# =============================================================================================
class Node:
    """An XML element: tag, attributes, children, and where it was written."""
    __slots__ = ("tag", "attrs", "children", "file", "line")

    def __init__(self, tag: str, attrs: Dict[str, str], file: str, line: int):
        self.tag = tag
        self.attrs = attrs
        self.children: List["Node"] = []
        self.file = file
        self.line = line

    @property
    def where(self) -> str:
        return f"{self.file}: line {self.line}"

    def describe(self) -> str:
        kind = self.attrs.get("type")
        name = self.attrs.get("name")
        return f"<{self.tag}{f' type={kind!r}' if kind else ''}{f' name={name!r}' if name else ''}>"


class _Context:
    """State of one load: the report, file resolution, ids and the warnings."""

    def __init__(self, file: Path, shown: str, warn: bool, access: FileAccess):
        self.file = file
        self.shown = shown
        self.search = [file.parent]
        self.report = MitsubaReport(file=shown, files=access.files_read)
        self.warn_enabled = warn
        self.access = access  # path policy, size limits and budget, files read
        self.ids: Dict[str, Node] = {}
        self.cache: Dict[Any, Any] = {}
        self.including: List[Path] = []
        self.includes = 0  # <include>s read so far (limits.max_includes)

    # -- messages ------------------------------------------------------------------------------
    def error(self, node: Optional[Node], msg: str) -> ValueError:
        return ValueError(f"{node.where}: {msg}" if node is not None else f"{self.shown}: {msg}")

    def skip(self, node: Node, msg: str) -> None:
        text = f"{node.where}: {msg}"
        self.report.skipped.append(text)
        if self.warn_enabled:  # shown as coming from the scene file's line
            warnings.warn_explicit(text, MitsubaWarning, filename=node.file, lineno=node.line)

    def scene_warning(self, msg: str) -> None:
        text = f"{self.shown}: {msg}"
        self.report.warnings.append(text)
        if self.warn_enabled:
            warnings.warn_explicit(text, EmptySceneWarning, filename=str(self.file), lineno=1)

    def approximate(self, node: Node, msg: str) -> None:
        self.report.approximations.append(f"{node.where}: {msg}")

    # -- files ---------------------------------------------------------------------------------
    def resolve(self, node: Node, name: str, what: str) -> Path:
        """A file named in the scene: absolute, or relative to the scene's folder / <path>s;
        candidates outside the allowed folders (raytrace.io.paths) are not looked at."""
        if not name:
            raise self.error(node, f"{what}: empty file name")
        p = Path(name)
        candidates = [p] if p.is_absolute() else [base / p for base in reversed(self.search)]
        refused = []
        for c in candidates:
            real = self.access.refused(c)
            if real is not None:
                refused.append(real)
            elif c.is_file():
                self.access.record(c)
                return c
        if refused:  # whether or not it exists there: nothing is probed outside
            raise self.error(node, f"{what}: {self.access.refusal(name, refused[0])}")
        raise self.error(node, f"{what}: file {name!r} not found (looked in "
                               f"{', '.join(repr(str(c.parent)) for c in candidates)})")

    def parse(self, file: Path, shown: str, depth: int = 0) -> Node:
        """Reads one XML file into Nodes. `depth`: how deep its root's children will sit in
        the whole document (an included file's elements continue its <include>'s depth)."""
        budget = self.access.budget
        try:
            budget.check_file(file, shown)
            data = file.read_bytes()
        except OSError as e:
            raise ValueError(f"{shown}: cannot read ({e})") from e
        parser = expat.ParserCreate()
        stack: List[Node] = []
        roots: List[Node] = []
        max_depth = budget.limits.max_nesting_depth

        def start(tag, attrs):
            node = Node(tag, dict(attrs), shown, parser.CurrentLineNumber)
            if depth + len(stack) >= max_depth:
                budget.check_depth(node.where, depth + len(stack) + 1, "XML elements (with includes)"
                                   if depth else "XML elements")
            (stack[-1].children if stack else roots).append(node)
            stack.append(node)

        def end(tag):
            stack.pop()

        def entity(name, *args):
            raise ValueError(f"{shown}: line {parser.CurrentLineNumber}: XML entity declarations "
                             f"(<!ENTITY {name} ...>) are not supported")

        parser.StartElementHandler = start
        parser.EndElementHandler = end
        parser.EntityDeclHandler = entity
        try:
            parser.Parse(data, True)
        except expat.ExpatError as e:
            raise ValueError(f"{shown}: line {e.lineno}: malformed XML: {expat.ErrorString(e.code)} "
                             f"(column {e.offset + 1})") from None
        if not roots:
            raise ValueError(f"{shown}: no XML element")
        root = roots[0]
        if root.tag != "scene":
            raise ValueError(f"{root.where}: the root element must be <scene> (got <{root.tag}>)")
        return root


# =============================================================================================
# Document preparation: includes, version upgrade, defaults and $substitution, ids
# =============================================================================================
_PARAM = re.compile(r"\$(\w+)")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")


def _prepare(ctx: _Context, root: Node, params: Dict[str, Any]) -> None:
    _expand_includes(ctx, root)
    version = root.attrs.get("version")
    if version is None:
        ctx.skip(root, "<scene> has no version attribute; read as version 3")
    else:
        m = re.fullmatch(r"\s*(\d+)(\.\d+)*\s*", version)
        if not m:
            raise ctx.error(root, f"bad scene version {version!r} (expected e.g. \"3.0.0\")")
        if int(m.group(1)) < 2:
            # Mitsuba 0.x files name parameters in camelCase; Mitsuba 3 upgrades them to snake_case.
            ctx.approximate(root, f"version {version}: camelCase parameter names read as snake_case")
            _upgrade(root)
    # <default name= value=> at the top level, overridden by the caller's params.
    values: Dict[str, str] = {}
    for child in list(root.children):
        if child.tag == "default":
            name, value = child.attrs.get("name"), child.attrs.get("value")
            if not name or value is None:
                raise ctx.error(child, "<default> needs 'name' and 'value' attributes")
            values.setdefault(name, value)
    for k, v in params.items():
        if not isinstance(k, str):
            raise TypeError(f"params keys must be strings (got {k!r})")
        values[k] = str(v).lower() if isinstance(v, bool) else str(v)
    _substitute(ctx, root, values)
    _collect_ids(ctx, root)


def _expand_includes(ctx: _Context, node: Node, depth: int = 1) -> None:
    """Replaces every <include> below `node` (at `depth`) by the included file's elements."""
    out = []
    for child in node.children:
        if child.tag == "include":
            name = child.attrs.get("filename")
            if not name:
                raise ctx.error(child, "<include> needs a 'filename' attribute")
            ctx.includes += 1
            if ctx.includes > ctx.access.budget.limits.max_includes:
                raise ctx.error(child, f"<include> of {name!r}: more than "
                                       f"{ctx.access.budget.limits.max_includes} includes in one "
                                       "scene (max_includes; raise it with "
                                       "limits=rt.io.Limits(max_includes=...))")
            file = ctx.resolve(child, name, "<include>")
            if file.resolve() in ctx.including:
                raise ctx.error(child, f"<include> of {name!r} includes itself")
            ctx.including.append(file.resolve())
            sub = ctx.parse(file, str(file), depth - 1)  # its <scene> takes the include's place
            _expand_includes(ctx, sub, depth)
            ctx.including.pop()
            out.extend(sub.children)
        elif child.tag == "path":
            value = child.attrs.get("value")
            if not value:
                raise ctx.error(child, "<path> needs a 'value' attribute")
            p = Path(value)
            ctx.search.append(p if p.is_absolute() else ctx.file.parent / p)
        else:
            _expand_includes(ctx, child, depth + 1)
            out.append(child)
    node.children = out


def _upgrade(node: Node) -> None:
    if "name" in node.attrs:
        node.attrs["name"] = _CAMEL.sub(r"\1_\2", node.attrs["name"]).lower()
    if node.tag == "lookAt":
        node.tag = "lookat"
    for child in node.children:
        _upgrade(child)


def _substitute(ctx: _Context, node: Node, values: Dict[str, str]) -> None:
    for key, text in node.attrs.items():
        if "$" in text:
            def repl(m, key=key):
                if m.group(1) not in values:
                    raise ctx.error(node, f"attribute {key}={text!r}: undefined parameter "
                                          f"${m.group(1)} (declare it with <default name="
                                          f"\"{m.group(1)}\" value=.../> or pass params=)")
                return values[m.group(1)]
            node.attrs[key] = _PARAM.sub(repl, text)
    for child in node.children:
        _substitute(ctx, child, values)


def _collect_ids(ctx: _Context, node: Node) -> None:
    for child in node.children:
        ident = child.attrs.get("id")
        if ident is not None and child.tag not in ("ref",):
            if ident in ctx.ids:
                raise ctx.error(child, f"duplicate id {ident!r} (first at {ctx.ids[ident].where})")
            ctx.ids[ident] = child
        _collect_ids(ctx, child)


# =============================================================================================
# Properties of a plugin
# =============================================================================================
VALUE_TAGS = ("float", "integer", "boolean", "string", "rgb", "srgb", "spectrum", "point",
              "vector", "transform", "blackbody")
OBJECT_TAGS = ("bsdf", "texture", "emitter", "shape", "sensor", "film", "sampler", "rfilter",
               "medium", "phase", "integrator", "volume")


class Prop:
    """One named property: its tag, the parsed value, and its element."""
    __slots__ = ("tag", "value", "node")

    def __init__(self, tag: str, value: Any, node: Node):
        self.tag, self.value, self.node = tag, value, node


class Props:
    """The properties and nested objects of a plugin element. ``get`` marks a name as used;
    ``finish`` reports the unused ones as skipped."""

    def __init__(self, ctx: _Context, node: Node):
        self.ctx, self.node = ctx, node
        self.plugin = node.attrs.get("type", "")
        self.values: Dict[str, Prop] = {}
        self.objects: List[Tuple[Optional[str], Node]] = []  # (name attribute, element)
        self.used: set = set()
        for child in node.children:
            if child.tag in VALUE_TAGS:
                name = child.attrs.get("name")
                if not name:
                    raise ctx.error(child, f"<{child.tag}> needs a 'name' attribute")
                if name in self.values:
                    raise ctx.error(child, f"property {name!r} given twice (first at "
                                           f"{self.values[name].node.where})")
                self.values[name] = Prop(child.tag, parse_value(ctx, child), child)
            elif child.tag in OBJECT_TAGS:
                self.objects.append((child.attrs.get("name"), child))
            elif child.tag == "ref":
                ident = child.attrs.get("id")
                if not ident:
                    raise ctx.error(child, "<ref> needs an 'id' attribute")
                if ident not in ctx.ids:
                    raise ctx.error(child, f"<ref id={ident!r}>: no element has this id")
                self.objects.append((child.attrs.get("name"), ctx.ids[ident]))
            elif child.tag == "default":
                continue
            else:
                ctx.skip(child, f"unknown element <{child.tag}> in {node.describe()} skipped")

    def has(self, name: str) -> bool:
        return name in self.values or any(n == name for n, _ in self.objects)

    def get(self, name: str, tags: Sequence[str]) -> Optional[Prop]:
        p = self.values.get(name)
        if p is None:
            return None
        self.used.add(name)
        if p.tag not in tags:
            raise self.ctx.error(p.node, f"{self.node.describe()}: {name!r} must be given as "
                                         f"{' or '.join('<' + t + '>' for t in tags)} (got <{p.tag}>)")
        return p

    def float(self, name: str, default: Optional[float]) -> Optional[float]:
        p = self.get(name, ("float", "integer"))
        return default if p is None else float(p.value)

    def int(self, name: str, default: Optional[int]) -> Optional[int]:
        p = self.get(name, ("integer",))
        return default if p is None else int(p.value)

    def bool(self, name: str, default: bool) -> bool:
        p = self.get(name, ("boolean",))
        return default if p is None else bool(p.value)

    def string(self, name: str, default: Optional[str]) -> Optional[str]:
        p = self.get(name, ("string",))
        return default if p is None else str(p.value)

    def point(self, name: str, default) -> np.ndarray:
        p = self.get(name, ("point", "vector"))
        return np.asarray(default, dtype=np.float64) if p is None else p.value

    def transform(self, name: str) -> np.ndarray:
        p = self.get(name, ("transform",))
        return np.eye(4) if p is None else p.value

    def named(self, name: str) -> Optional[Node]:
        """The nested object (or <ref>) whose name attribute is `name`, or None."""
        for n, obj in self.objects:
            if n == name:
                self.used.add(("object", id(obj)))
                return obj
        return None

    def objects_of(self, tag: str) -> List[Node]:
        found = [obj for _, obj in self.objects if obj.tag == tag]
        for obj in found:
            self.used.add(("object", id(obj)))
        return found

    def finish(self, ignore: Sequence[str] = ()) -> None:
        """Reports every property and nested object that no converter read."""
        for name, p in self.values.items():
            if name not in self.used and name not in ignore:
                self.ctx.skip(p.node, f"parameter {name!r} of {self.node.describe()} is not "
                                      "supported and was skipped")
        for name, obj in self.objects:
            if ("object", id(obj)) not in self.used and obj.tag not in ignore:
                self.ctx.skip(obj, f"{obj.describe()} inside {self.node.describe()} is not "
                                   "supported and was skipped")


# =============================================================================================
# Values
# =============================================================================================
_NUMBER_SPLIT = re.compile(r"[\s,]+")


def numbers(ctx: _Context, node: Node, text: Optional[str], what: str,
            counts: Sequence[int]) -> List[float]:
    """'1, 2 3' -> [1.0, 2.0, 3.0], with a count check and a clear error for non-numbers."""
    if text is None:
        raise ctx.error(node, f"<{node.tag}> needs a {what!r} attribute")
    tokens = [t for t in _NUMBER_SPLIT.split(text.strip()) if t]
    try:
        values = [float(t) for t in tokens]
    except ValueError:
        raise ctx.error(node, f"{what}={text!r} is not a list of numbers") from None
    if len(values) not in counts:
        raise ctx.error(node, f"{what}={text!r} must have {' or '.join(map(str, counts))} "
                              f"numbers (got {len(values)})")
    if not all(math.isfinite(v) for v in values):
        raise ctx.error(node, f"{what}={text!r} contains a non-finite number")
    return values


def _xyz(ctx: _Context, node: Node, default: float) -> np.ndarray:
    if "value" in node.attrs:
        v = numbers(ctx, node, node.attrs["value"], "value", (1, 3))
        return np.array(v * 3 if len(v) == 1 else v, dtype=np.float64)
    return np.array([numbers(ctx, node, node.attrs.get(k, str(default)), k, (1,))[0]
                     for k in ("x", "y", "z")], dtype=np.float64)


def parse_value(ctx: _Context, node: Node) -> Any:
    tag, text = node.tag, node.attrs.get("value")
    if tag in ("float", "integer"):
        v = numbers(ctx, node, text, "value", (1,))[0]
        if tag == "integer":
            if v != int(v):
                raise ctx.error(node, f"<integer> value={text!r} is not an integer")
            return int(v)
        return v
    if tag == "boolean":
        if text is None or text.strip().lower() not in ("true", "false", "1", "0"):
            raise ctx.error(node, f"<boolean> value={text!r} must be true or false")
        return text.strip().lower() in ("true", "1")
    if tag == "string":
        if text is None:
            raise ctx.error(node, "<string> needs a 'value' attribute")
        return text
    if tag in ("rgb", "srgb"):
        if text is not None and text.strip().startswith("#"):
            h = text.strip()[1:]
            if not re.fullmatch(r"[0-9a-fA-F]{6}", h):
                raise ctx.error(node, f"<{tag}> value={text!r} is not a #rrggbb colour")
            rgb = np.array([int(h[i:i + 2], 16) / 255.0 for i in (0, 2, 4)])
            tag = "srgb"
        else:
            v = numbers(ctx, node, text, "value", (1, 3))
            rgb = np.array(v * 3 if len(v) == 1 else v, dtype=np.float64)
        if tag == "srgb":
            from .images import srgb_decode  # noqa: PLC0415
            rgb = np.asarray(srgb_decode(rgb), dtype=np.float64)
        return rgb
    if tag == "spectrum":
        if "filename" in node.attrs:
            ctx.skip(node, "<spectrum filename=...> (a spectral data file) is not supported; "
                           "read as 1")
            return np.ones(3)
        if text is not None and ":" in text:
            pairs = [p for p in _NUMBER_SPLIT.split(text.replace(" :", ":").replace(": ", ":").strip()) if p]
            try:
                vals = [float(p.split(":")[1]) for p in pairs]
            except (ValueError, IndexError):
                raise ctx.error(node, f"<spectrum> value={text!r} is not a list of "
                                      "wavelength:value pairs") from None
            ctx.approximate(node, "spectrum given by wavelengths read as a grey value (their mean)")
            return np.full(3, float(np.mean(vals)))
        v = numbers(ctx, node, text, "value", (1, 3))
        if len(v) == 3:  # Mitsuba 0.6 in RGB mode, and redner's scenes: r, g, b
            ctx.approximate(node, "<spectrum> with three values read as linear RGB")
            return np.array(v, dtype=np.float64)
        return np.full(3, v[0])
    if tag in ("point", "vector"):
        return _xyz(ctx, node, 0.0)
    if tag == "transform":
        return _transform(ctx, node)
    if tag == "blackbody":
        ctx.skip(node, "<blackbody> emission is not supported; read as 1")
        return np.ones(3)
    raise ctx.error(node, f"unknown value tag <{tag}>")  # unreachable: callers check the tag


# --- transforms -----------------------------------------------------------------------------------
def rotation(axis: np.ndarray, degrees: float) -> np.ndarray:
    """4x4 right-handed rotation about `axis` by `degrees`."""
    x, y, z = axis / np.linalg.norm(axis)
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    m = np.eye(4)
    m[:3, :3] = [[c + x * x * (1 - c), x * y * (1 - c) - z * s, x * z * (1 - c) + y * s],
                 [y * x * (1 - c) + z * s, c + y * y * (1 - c), y * z * (1 - c) - x * s],
                 [z * x * (1 - c) - y * s, z * y * (1 - c) + x * s, c + z * z * (1 - c)]]
    return m


def look_at(origin: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Mitsuba's look-at matrix: columns (left, up', dir, origin), left = up x dir."""
    d = target - origin
    if np.linalg.norm(d) == 0:
        raise ValueError("origin and target must differ")
    d = d / np.linalg.norm(d)
    left = np.cross(up, d)
    if np.linalg.norm(left) < 1e-12:
        raise ValueError("up must not be parallel to target - origin")
    left /= np.linalg.norm(left)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = left, np.cross(d, left), d, origin
    return m


def _transform(ctx: _Context, node: Node) -> np.ndarray:
    """A <transform>: its children applied in order (each one left-multiplies)."""
    m = np.eye(4)
    for op in node.children:
        t = np.eye(4)
        if op.tag == "translate":
            t[:3, 3] = _xyz(ctx, op, 0.0)
        elif op.tag == "scale":
            t = np.diag(list(_xyz(ctx, op, 1.0)) + [1.0])
        elif op.tag == "rotate":
            axis = (np.array(numbers(ctx, op, op.attrs["value"], "value", (3,))) if "value" in op.attrs
                    else _xyz(ctx, op, 0.0))
            if np.linalg.norm(axis) == 0:
                raise ctx.error(op, "<rotate> needs a non-zero axis (x, y, z)")
            t = rotation(axis, numbers(ctx, op, op.attrs.get("angle"), "angle", (1,))[0])
        elif op.tag == "matrix":
            v = numbers(ctx, op, op.attrs.get("value"), "value", (9, 16))
            if len(v) == 9:
                t[:3, :3] = np.reshape(v, (3, 3))
            else:
                t = np.reshape(v, (4, 4))
                if not np.allclose(t[3], [0, 0, 0, 1]):
                    raise ctx.error(op, "<matrix>: projective matrices are not supported "
                                        "(last row must be 0 0 0 1)")
        elif op.tag == "lookat":
            origin = np.array(numbers(ctx, op, op.attrs.get("origin"), "origin", (3,)))
            target = np.array(numbers(ctx, op, op.attrs.get("target"), "target", (3,)))
            up = np.array(numbers(ctx, op, op.attrs.get("up", "0 1 0"), "up", (3,)))
            try:
                t = look_at(origin, target, up)
            except ValueError as e:
                raise ctx.error(op, f"<lookat>: {e}") from None
        else:
            ctx.skip(op, f"unknown transform <{op.tag}> skipped")
            continue
        m = t @ m
    if abs(np.linalg.det(m[:3, :3])) < 1e-12:
        raise ctx.error(node, "<transform> is singular (a scale of 0?)")
    return m
