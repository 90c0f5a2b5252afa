"""The scene: a camera, shapes, materials and emitters, and its compiled counterpart."""
from __future__ import annotations

import copy
import os
import threading
from typing import Dict, List, NamedTuple, Optional, Sequence

import numpy as np
import torch

from . import _core
from . import _limits as limits
from . import _validation as v
from .camera import Camera
from .light import AreaLight, EnvironmentMap
from .material import Material
from .shape import Shape


def _np(t: torch.Tensor) -> np.ndarray:
    """A float32/int32 C-contiguous numpy view (zero-copy when the tensor already is one on the
    CPU; a GPU tensor is copied to the host: the core builds the BVH and the light tables there)."""
    return t.detach().cpu().contiguous().numpy()


def _constant_or_texture(t: torch.Tensor, channels: int) -> np.ndarray:
    return _np(t.reshape(1, 1, channels) if t.dim() == 1 else t)


class Scene:
    """Everything that is rendered.

    Args:
        camera: the Camera.
        shapes: list of Shape.
        materials: list of Material; ``Shape.material_id`` indexes it.
        area_lights: list of AreaLight; ``AreaLight.shape_id`` indexes ``shapes``.
        envmap: optional EnvironmentMap (else the background is black).

    The scene reads its objects' tensors anew at every ``render`` or ``intersect``: move
    vertices (in place or by assigning new tensors) and the BVH is refit; change a mesh's
    connectivity and it is rebuilt.
    """

    def __init__(self, camera: Optional[Camera] = None, shapes: Sequence[Shape] = (),
                 materials: Sequence[Material] = (), area_lights: Sequence[AreaLight] = (),
                 envmap: Optional[EnvironmentMap] = None):
        if camera is not None and not isinstance(camera, Camera):
            raise TypeError(f"Scene.camera must be a raytrace.Camera (got {type(camera).__name__})")
        self.camera = camera
        self.shapes: List[Shape] = _list_of(shapes, Shape, "Scene.shapes")
        self.materials: List[Material] = _list_of(materials, Material, "Scene.materials")
        if isinstance(area_lights, (list, tuple)):
            for i, light in enumerate(area_lights):
                if type(light).__name__ in ("PointLight", "DirectionalLight", "AmbientLight"):
                    raise TypeError(f"Scene.area_lights[{i}] is a {type(light).__name__}: point, directional and "
                                    "ambient lights light rt.render_deferred's local shading only, for now (pass "
                                    "them there); the path tracer takes AreaLight and EnvironmentMap")
        self.area_lights: List[AreaLight] = _list_of(area_lights, AreaLight, "Scene.area_lights")
        if envmap is not None and not isinstance(envmap, EnvironmentMap):
            raise TypeError(f"Scene.envmap must be a raytrace.EnvironmentMap or None (got {type(envmap).__name__})")
        self.envmap = envmap
        self._validate_references()
        self._core = _core.Scene()
        # The core scene holds one state at a time and the core runs without the GIL: a call
        # copies its state in (_sync) and runs under this lock, so that calls on one Scene from
        # several Python threads take turns instead of changing the state under each other.
        self._lock = threading.RLock()
        self._topology: Optional[list] = None  # the connectivity the BVH was built for
        self._stats: Dict[str, int] = {"bvh_builds": 0, "bvh_refits": 0}
        self._cache: Dict[str, list] = {}  # what was last copied into the core, per part

    def _validate_references(self) -> None:
        for i, shape in enumerate(self.shapes):
            if shape.material_id >= len(self.materials):
                raise ValueError(f"Scene.shapes[{i}].material_id is {shape.material_id}, but the scene has "
                                 f"{len(self.materials)} materials")
        seen = {}
        for i, light in enumerate(self.area_lights):
            if light.shape_id >= len(self.shapes):
                raise ValueError(f"Scene.area_lights[{i}].shape_id is {light.shape_id}, but the scene has "
                                 f"{len(self.shapes)} shapes")
            if light.shape_id in seen:
                raise ValueError(f"Scene.area_lights[{i}] and area_lights[{seen[light.shape_id]}] both use "
                                 f"shape {light.shape_id}")
            seen[light.shape_id] = i

    # -- The compiled scene ------------------------------------------------------------------

    def _state(self) -> "_SceneState":
        """What a render reads, as of now: the camera, shapes, materials and lights as shallow
        copies (the same tensors; assigning a new tensor to the live object later does not
        change the state) for the reverse pass to use exactly what the forward pass saw. Its
        values are checked here, once (the reverse pass's saved tensors cannot change after)."""
        self._validate_references()
        for i, s in enumerate(self.shapes):
            if not isinstance(s, Shape):
                raise TypeError(f"Scene.shapes[{i}] must be a raytrace.Shape (got {type(s).__name__})")
        state = _SceneState(copy.copy(self.camera), [copy.copy(s) for s in self.shapes],
                            [copy.copy(m) for m in self.materials], [copy.copy(l) for l in self.area_lights],
                            copy.copy(self.envmap))
        state.device()  # (raises when the scene's tensors are on several devices)
        _check_values(state)
        _check_extent(state)
        return state

    def to(self, device) -> "Scene":
        """A copy of the scene whose tensors are on `device` ("cuda", "cuda:1", "cpu"): the
        camera, shapes, materials, lights and environment map are copied shallowly and each
        tensor is moved with ``Tensor.to``, so gradients flow back to the tensors of this
        scene. Rendering a scene on a GPU needs raytrace's CUDA backend (docs/cuda.md)."""
        device = torch.device(device)
        v.check_device_type(device, f"Scene.to: the device is '{device}'")

        def moved(obj, attrs):
            if obj is None:
                return None
            out = copy.copy(obj)
            for a in attrs:
                t = getattr(obj, a)
                if t is not None:
                    setattr(out, a, t.to(device))
            return out
        scene = Scene(moved(self.camera, ("position", "look_at", "up", "fov")),
                      [moved(s, ("vertices", "indices", "uvs", "normals")) for s in self.shapes],
                      [moved(m, ("diffuse_reflectance", "specular_reflectance", "roughness")) for m in self.materials],
                      [moved(l, ("intensity",)) for l in self.area_lights],
                      moved(self.envmap, ("values",)))
        return scene

    def _sync(self, threads: int = 0, need_camera: bool = True, state: Optional["_SceneState"] = None) -> "_core.Scene":
        """Copies the current tensors (or those of `state`, a _state() taken, and checked, earlier)
        into the core scene; rebuilds or refits the BVH."""
        if state is None:
            state = self._state()
        shapes = []
        topology = []
        for s in state.shapes:
            idx = _np(s.indices.to(torch.int32))
            shapes.append((_np(s.vertices.to(torch.float32)), idx,
                           None if s.uvs is None else _np(s.uvs.to(torch.float32)),
                           None if s.normals is None else _np(s.normals.to(torch.float32)),
                           s.material_id))
            topology.append((s.num_vertices, idx))
        rebuild = self._topology is None or len(topology) != len(self._topology) or any(
            a[0] != b[0] or a[1].shape != b[1].shape or not np.array_equal(a[1], b[1])
            for a, b in zip(topology, self._topology))
        # Each part is copied into the core only when its values changed since the last call
        # (compared by value, so in-place edits, through .data too, are seen).
        materials = [(_constant_or_texture(m.diffuse_reflectance, 3), _constant_or_texture(m.specular_reflectance, 3),
                      _constant_or_texture(m.roughness, 1), m.two_sided) for m in state.materials]
        lights = [(l.shape_id, _np(l.intensity), l.two_sided) for l in state.area_lights]
        envmap = None if state.envmap is None else _np(state.envmap.values)
        shape_values = [a for s in shapes for a in (s[0], s[2], s[3])]
        if rebuild:
            self._topology = None  # stays unset if the core rejects the shapes
            self._cache.clear()
            self._core.set_shapes(shapes, True, threads)
            self._topology = [(n, idx.copy()) for n, idx in topology]
            self._remember("shapes", shape_values)
            self._stats["bvh_builds"] += 1
        elif self._changed("shapes", shape_values):
            self._core.set_shapes(shapes, False, threads)
            self._remember("shapes", shape_values)
            self._stats["bvh_refits"] += 1
        if self._changed("materials", materials):
            self._core.set_materials(materials)
            self._remember("materials", materials)
        if self._changed("lights", lights):  # always after a rebuild, which forgets the lights
            self._core.set_lights(lights)
            self._remember("lights", lights)
        if self._changed("envmap", [envmap]):
            self._core.set_envmap(envmap)
            self._remember("envmap", [envmap])
        if need_camera:
            if state.camera is None:
                raise ValueError("Scene.camera is None: a camera is needed to render")
            c = state.camera
            self._core.set_camera(_np(c.position), _np(c.look_at), _np(c.up), float(c.fov.detach()),
                                  c.height, c.width, c.camera_type == "orthographic")
        return self._core

    def _changed(self, key: str, items: list) -> bool:
        """Whether `items` (nested lists/tuples of arrays and scalars) differ from what was
        last copied into the core under `key`."""
        return key not in self._cache or not _same(self._cache[key], items)

    def _remember(self, key: str, items: list) -> None:
        self._cache[key] = _copy(items)

    # -- Queries -----------------------------------------------------------------------------

    def intersect(self, origins, directions, threads: Optional[int] = None) -> Dict[str, torch.Tensor]:
        """Closest hits of rays against the scene's shapes.

        Args:
            origins: [N, 3] float ray origins, N at most 2**31 - 1.
            directions: [N, 3] float ray directions (need not be unit length: any length in
                [1e-30, 1e30]).
            threads: worker threads, 1 to 256 (default: RT_NUM_THREADS or all cores).

        Ctrl-C (SIGINT) stops it within about 0.1 s and raises KeyboardInterrupt.

        Returns:
            dict of "t" [N] float32 (hit point = origin + t * direction; +inf on a miss),
            "shape_id" [N] int64 (-1 on a miss), "triangle_id" [N] int64 (index within the
            shape; -1 on a miss), "uv" [N, 2] float32 barycentrics of the hit
            (hit = (1 - u - v) v0 + u v1 + v v2).
        """
        v.check_same_device([("origins", origins), ("directions", directions)])
        o = v.float_tensor(origins, "origins", (None, 3))
        d = v.float_tensor(directions, "directions", (o.shape[0], 3))
        if o.shape[0] > limits.MAX_RAYS:
            raise ValueError(f"origins: at most {limits.MAX_RAYS} rays per call (got {o.shape[0]})")
        if o.shape[0] > 0:
            length = d.detach().double().norm(dim=1)
            if bool((length == 0).any()):
                raise ValueError("directions must not contain zero vectors")
            # (Up to float32's rounding of a direction scaled to exactly 1e-30 or 1e30.)
            if bool((length < 1e-30 * (1 - 1e-6)).any()) or bool((length > 1e30 * (1 + 1e-6)).any()):
                raise ValueError(f"directions must have lengths in [1e-30, 1e30] (got {float(length.min()):g} .. "
                                 f"{float(length.max()):g}): t is in units of the direction's length and would "
                                 "leave float32's range")
        num_threads = _threads(threads)
        with self._lock:
            state = self._state()
            if state.device() != o.device and state.shapes:
                raise ValueError(f"origins are on {o.device} but the scene's tensors are on {state.device()}: "
                                 "rays and scene must be on one device")
            core = self._sync(num_threads, need_camera=False, state=state)
            if o.device.type == "cuda":
                n = o.shape[0]
                out = {"t": torch.empty(n, device=o.device), "shape_id": torch.empty(n, dtype=torch.int64, device=o.device),
                       "triangle_id": torch.empty(n, dtype=torch.int64, device=o.device),
                       "uv": torch.empty((n, 2), device=o.device)}
                core.intersect_cuda(o.detach().contiguous(), d.detach().contiguous(), out["t"], out["shape_id"],
                                    out["triangle_id"], out["uv"], torch.cuda.current_stream(o.device).cuda_stream)
                return out
            t, shape_id, tri_id, uv = core.intersect(_np(o), _np(d), num_threads)
        return {"t": torch.from_numpy(t), "shape_id": torch.from_numpy(shape_id),
                "triangle_id": torch.from_numpy(tri_id), "uv": torch.from_numpy(uv)}

    def _sample_lights(self, points, u):
        """Area-light sampling as next-event estimation does it (private, for tests)."""
        p = v.float_tensor(points, "points", (None, 3))
        uu = v.float_tensor(u, "u", (p.shape[0], 3))
        with self._lock:
            dirs, dist, pdf = self._sync(need_camera=False).sample_lights(_np(p), _np(uu))
        return torch.from_numpy(dirs), torch.from_numpy(dist), torch.from_numpy(pdf)

    def _pdf_lights(self, points, directions):
        """The solid-angle pdf of _sample_lights for the first hit along each ray (private)."""
        p = v.float_tensor(points, "points", (None, 3))
        d = v.float_tensor(directions, "directions", (p.shape[0], 3))
        with self._lock:
            return torch.from_numpy(self._sync(need_camera=False).pdf_lights(_np(p), _np(d)))

    def __repr__(self) -> str:
        return (f"Scene(camera={self.camera!r}, {len(self.shapes)} shapes, {len(self.materials)} materials, "
                f"{len(self.area_lights)} area lights, envmap={self.envmap!r})")


class _SceneState(NamedTuple):
    """A scene as one render saw it (Scene._state)."""
    camera: Optional[Camera]
    shapes: List[Shape]
    materials: List[Material]
    area_lights: List[AreaLight]
    envmap: Optional[EnvironmentMap]

    def device(self) -> torch.device:
        """Where the scene's tensors are (the CPU for a scene without any); raises a ValueError
        naming them when they are on several devices."""
        found = {}
        for name, t in self.named_tensors():
            found.setdefault(t.device, name)
        if len(found) > 1:
            where = ", ".join(f"{name} on {dev}" for dev, name in found.items())
            raise ValueError(f"the scene's tensors must be on one device (found {where}): create them there, or "
                             "move the whole scene with scene.to(device)")
        return next(iter(found), torch.device("cpu"))

    def named_tensors(self) -> List[tuple]:
        """(name, tensor) for every tensor the core reads, as tensors() lists them."""
        out = []
        c = self.camera
        if c is not None:
            out += [(f"Scene.camera.{a}", getattr(c, a)) for a in ("position", "look_at", "up", "fov")]
        for i, s in enumerate(self.shapes):
            out += [(f"Scene.shapes[{i}].{a}", getattr(s, a)) for a in ("vertices", "indices", "uvs", "normals")
                    if getattr(s, a) is not None]
        for i, m in enumerate(self.materials):
            out += [(f"Scene.materials[{i}].{a}", getattr(m, a))
                    for a in ("diffuse_reflectance", "specular_reflectance", "roughness")]
        out += [(f"Scene.area_lights[{i}].intensity", l.intensity) for i, l in enumerate(self.area_lights)]
        if self.envmap is not None:
            out.append(("Scene.envmap.values", self.envmap.values))
        return out

    def tensors(self) -> List[torch.Tensor]:
        """Every tensor the core reads from this state (for autograd's version checks)."""
        return [t for _, t in self.named_tensors()]


# Scene scale: images and gradients are the same (gradients scaled by the inverse factor) for a
# scene scaled by any factor whose coordinates stay within these bounds (docs/limits.md; tests/
# test_robustness_scale.py renders scenes from 1e-6 to 1e7 of their unit size). Beyond them, float
# squares and fourth powers of lengths (areas, squared distances) under- or overflow.
MAX_COORDINATE = 1e8
MIN_EXTENT = 1e-7


def _check_values(state: "_SceneState") -> None:
    """The checks the constructors made, made again on the values as they are now: tensors are
    mutable (an optimiser step, an in-place edit), and the core trusts what it is given.

    Shapes are checked first; the values of every tensor are then checked together, with one
    synchronisation for a scene on a GPU (each tensor's own check, which names it, runs only
    when something is wrong)."""
    pending = []  # (tensor, name, nonnegative, positive)

    def check(t, name, shape=None, nonnegative=False, positive=False):
        if t is None:
            return
        if shape is not None:
            v.check_shape(t, name, shape)
        pending.append((t, name, nonnegative, positive))
    c = state.camera
    if c is not None:
        for attr, shape in (("position", (3,)), ("look_at", (3,)), ("up", (3,)), ("fov", ())):
            check(getattr(c, attr), f"Scene.camera.{attr}", shape)
    ranges = []  # (shape index, number of vertices, its indices' [min, max])
    for i, s in enumerate(state.shapes):
        n = s.vertices.shape[0] if s.vertices.dim() == 2 else -1
        check(s.vertices, f"Scene.shapes[{i}].vertices", (None, 3))
        check(s.uvs, f"Scene.shapes[{i}].uvs", (n, 2))
        check(s.normals, f"Scene.shapes[{i}].normals", (n, 3))
        idx = s.indices
        v.check_shape(idx, f"Scene.shapes[{i}].indices", (None, 3))
        if idx.numel() > 0:
            ranges.append((i, n, torch.stack(idx.aminmax()).to(torch.int64)))
    for i, m in enumerate(state.materials):
        for attr, channels, rule in (("diffuse_reflectance", 3, "nonnegative"),
                                     ("specular_reflectance", 3, "nonnegative"), ("roughness", 1, "positive")):
            t, name = getattr(m, attr), f"Scene.materials[{i}].{attr}"
            if not (t.dim() == 1 and t.shape[0] == channels or t.dim() == 3 and t.shape[2] == channels
                    and t.shape[0] > 0 and t.shape[1] > 0):
                raise ValueError(f"{name} must have shape [{channels}] (a constant) or [h, w, {channels}] "
                                 f"(a texture), got {list(t.shape)}")
            check(t, name, **{rule: True})
    for i, light in enumerate(state.area_lights):
        check(light.intensity, f"Scene.area_lights[{i}].intensity", (3,), nonnegative=True)
    if state.envmap is not None:
        check(state.envmap.values, "Scene.envmap.values", (None, None, 3), nonnegative=True)
    # All values at once: one flag per tensor, read back together.
    flags = []
    for t, _, nonnegative, positive in pending:
        d = t.detach()
        if d.numel() == 0:
            continue
        good = torch.isfinite(d).all()
        if nonnegative:
            good = good & (d >= 0).all()
        if positive:
            good = good & (d > 0).all()
        flags.append(good.reshape(1))
    read = torch.cat(flags + [r for _, _, r in ranges]).cpu() if flags or ranges else None
    if flags and not bool(read[:len(flags)].all()):
        for t, name, nonnegative, positive in pending:
            v.check_values(t, name, nonnegative=nonnegative, positive=positive)  # (raises, naming it)
    for k, (i, n, _) in enumerate(ranges):
        lo, hi = int(read[len(flags) + 2 * k]), int(read[len(flags) + 2 * k + 1])
        if lo < 0 or hi >= n:
            raise ValueError(f"Scene.shapes[{i}].indices must have values in [0, {n}), the number of vertices "
                             f"(got min {lo}, max {hi})")


def _check_extent(state: "_SceneState") -> None:
    """Raises when the scene lies outside the range of scales the core computes exactly. (The
    figures are computed where the tensors are and read back together: one synchronisation for
    a scene on a GPU.)"""
    names, bigs, lo, hi = [], [], None, None
    for i, s in enumerate(state.shapes):
        vmin, vmax = s.vertices.detach().aminmax(dim=0)
        names.append(f"Scene.shapes[{i}].vertices")
        bigs.append(torch.maximum(-vmin.min(), vmax.max()).double().reshape(1))
        lo = vmin if lo is None else torch.minimum(lo, vmin)
        hi = vmax if hi is None else torch.maximum(hi, vmax)
    c = state.camera
    if c is not None:
        for name, t in (("position", c.position), ("look_at", c.look_at)):
            names.append(f"Scene.camera.{name}")
            bigs.append(t.detach().abs().max().double().reshape(1))
    if not bigs:
        return
    extent = [] if lo is None else [(hi - lo).double().norm().reshape(1)]
    read = torch.cat(bigs + extent).cpu().tolist()
    for name, big in zip(names, read):
        if big > MAX_COORDINATE:
            raise ValueError(f"{name} has a coordinate of magnitude {big:g}: coordinates up to "
                             f"{MAX_COORDINATE:g} are supported (scale the scene down: images do not change)")
    if extent and 0 < read[-1] < MIN_EXTENT:
        raise ValueError(f"Scene.shapes span {read[-1]:g} (the diagonal of their bounding box): scenes of at least "
                         f"{MIN_EXTENT:g} are supported (scale the scene up: images do not change)")


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
                and np.array_equal(a, b))
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b)
                and all(_same(x, y) for x, y in zip(a, b)))
    return a == b


def _copy(a):
    if isinstance(a, np.ndarray):
        return a.copy()
    if isinstance(a, (list, tuple)):
        return [_copy(x) for x in a]
    return a


def _list_of(items, cls, name: str) -> list:
    if isinstance(items, (str, bytes)) or not isinstance(items, (list, tuple)):
        raise TypeError(f"{name} must be a list of raytrace.{cls.__name__} (got {type(items).__name__})")
    for i, item in enumerate(items):
        if not isinstance(item, cls):
            raise TypeError(f"{name}[{i}] must be a raytrace.{cls.__name__} (got {type(item).__name__})")
    return list(items)


def _threads(threads: Optional[int]) -> int:
    """A threads argument as the core's thread count (0: the default), 1 to MAX_THREADS."""
    if threads is None:
        env = os.environ.get("RT_NUM_THREADS", "").strip()
        if env and not (env.isdigit() and 1 <= int(env) <= limits.MAX_THREADS):
            raise ValueError(f"the environment variable RT_NUM_THREADS must be an integer from 1 to "
                             f"{limits.MAX_THREADS} (got {env!r})")
        return 0
    return v.integer(threads, "threads", minimum=1, maximum=limits.MAX_THREADS)
