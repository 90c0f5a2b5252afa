"""Mitsuba 3 plugins -> raytrace objects (private; used by :func:`raytrace.load_mitsuba`).

Sensors become an ``rt.Camera``, shapes triangle meshes (files through ``load_mesh``, analytic
shapes tessellated), bsdfs ``rt.Material``s, area emitters ``rt.AreaLight``s and the constant /
envmap emitters one ``rt.EnvironmentMap``. Geometry is kept as float64 numpy until the end so
that a mirrored camera can be handled by mirroring the whole scene (see ``_mirror``).
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from .mitsuba import Node, Props, _Context

# Roughness used for Mitsuba's smooth (delta) lobes: the core's smallest GGX alpha.
SMOOTH_ALPHA = 1e-3
# Silently ignored parameters: they do not change the image raytrace renders, or they are
# documented as ignored (near/far clipping; a perspective sensor ignores focus_distance in
# Mitsuba too).
_FILM_IGNORED = ("file_format", "pixel_format", "component_format", "banner", "compensate",
                 "high_quality_edges", "sample_border")
_SENSOR_IGNORED = ("near_clip", "far_clip", "shutter_open", "shutter_close", "srf", "focus_distance")
# Normal-incidence reflectance (linear RGB) of Mitsuba's conductor presets, for Schlick's F0.
_CONDUCTOR_F0 = {"ag": (0.97, 0.96, 0.91), "al": (0.91, 0.92, 0.92), "au": (1.00, 0.78, 0.34),
                 "cu": (0.96, 0.64, 0.54), "cr": (0.55, 0.56, 0.55), "ni_palik": (0.66, 0.61, 0.53),
                 "w": (0.50, 0.49, 0.46), "hg": (0.78, 0.78, 0.78), "none": (1.0, 1.0, 1.0)}
# Emitters raytrace lacks for now (issue 11), named as such when skipped.
_DELTA_EMITTERS = ("point", "spot", "directional", "collimated", "projector", "sun", "sky",
                   "sunsky")
# Named indices of refraction (Mitsuba's list, the common ones).
_IOR = {"vacuum": 1.0, "air": 1.000277, "water": 1.3330, "acrylic glass": 1.49, "polypropylene": 1.49,
        "bk7": 1.5046, "fused quartz": 1.458, "diamond": 2.419, "pet": 1.575, "ethanol": 1.361,
        "water ice": 1.31, "glycerol": 1.4729, "bromine": 1.661, "sodium chloride": 1.544,
        "amber": 1.55, "silicone oil": 1.52077, "carbon tetrachloride": 1.461, "benzene": 1.501,
        "helium": 1.000036, "hydrogen": 1.000132}


def build_scene(ctx: _Context, root: Node, resolution: Optional[Tuple[int, int]],
                sphere_res: Tuple[int, int]):
    """The whole <scene>: returns an rt.Scene (and fills ctx.report)."""
    from .. import AreaLight, EnvironmentMap, Material, Scene, Shape  # noqa: PLC0415

    camera_spec = None
    meshes: List[Dict[str, Any]] = []  # numpy meshes with "bsdf", "emission", "node"
    env: List[Tuple[Node, np.ndarray, np.ndarray]] = []  # (node, image [h, w, 3], to_world 3x3)
    for child in root.children:
        tag = child.tag
        if tag == "default":
            continue
        if tag == "sensor":
            if camera_spec is None:
                camera_spec = _sensor(ctx, child, resolution)
            else:
                ctx.skip(child, "a second <sensor> was skipped (raytrace renders the first)")
        elif tag == "shape":
            mesh = _shape(ctx, child, sphere_res)
            if mesh is not None:
                meshes.append(mesh)
        elif tag == "emitter":
            e = _environment(ctx, child)
            if e is not None:
                env.append(e)
        elif tag == "integrator":
            _integrator(ctx, child)
        elif tag in ("bsdf", "texture", "sampler", "film", "rfilter") and "id" in child.attrs:
            continue  # declared for <ref>; converted where used
        else:
            ctx.skip(child, f"{child.describe()} is not supported and was skipped")

    # A mirroring sensor transform: mirror the scene instead (the image is the same).
    camera = None
    if camera_spec is not None:
        camera, mirror = camera_spec
        if mirror is not None:
            origin, n = mirror
            reflect = np.eye(3) - 2.0 * np.outer(n, n)
            for m in meshes:
                m["vertices"] = (m["vertices"] - origin) @ reflect + origin
                if m["normals"] is not None:
                    m["normals"] = m["normals"] @ reflect
                m["indices"] = m["indices"][:, [0, 2, 1]]
            env = [(node, img, reflect @ a) for node, img, a in env]
            ctx.report.camera_mirrored = True

    # Materials: one per distinct bsdf element (shared through ids / <ref>).
    materials: List[Any] = []
    material_of: Dict[int, int] = {}
    shapes, lights = [], []
    for i, m in enumerate(meshes):
        bsdf = m["bsdf"]
        key = id(bsdf) if bsdf is not None else 0
        if key not in material_of:
            spec = _bsdf(ctx, bsdf) if bsdf is not None else _diffuse_default()
            try:
                materials.append(Material(torch.from_numpy(spec["diffuse"]).float(),
                                          specular_reflectance=torch.from_numpy(spec["specular"]).float(),
                                          roughness=torch.from_numpy(spec["roughness"]).float(),
                                          two_sided=spec["two_sided"]))
            except (TypeError, ValueError) as e:
                raise ctx.error(bsdf, str(e)) from e
            material_of[key] = len(materials) - 1
            if bsdf is not None and "id" in bsdf.attrs:
                ctx.report.material_ids[bsdf.attrs["id"]] = len(materials) - 1

        def t(a, dtype=torch.float32):
            return None if a is None else torch.from_numpy(np.ascontiguousarray(a)).to(dtype)
        try:
            shapes.append(Shape(t(m["vertices"]), t(m["indices"], torch.int64), material_of[key],
                                uvs=t(m["uvs"]), normals=t(m["normals"])))
        except (TypeError, ValueError) as e:
            raise ctx.error(m["node"], str(e)) from e
        if "id" in m["node"].attrs:
            ctx.report.shape_ids[m["node"].attrs["id"]] = i
        if m["emission"] is not None:
            lights.append(AreaLight(i, torch.from_numpy(m["emission"]).float()))

    envmap = None
    if env:
        envmap = EnvironmentMap(torch.from_numpy(_combine_environments(ctx, env)).float())
    # A scene that renders black or empty says so (redner's Mitsuba 0.6 scenes used to load as
    # empty scenes without a word).
    skipped = [m for m in ctx.report.skipped if "<emitter type=" in m]
    if not lights and (envmap is None or not float(envmap.values.max()) > 0):
        ctx.scene_warning("the scene has no emitter that raytrace renders (area lights in shapes, "
                          "constant and envmap emitters)" +
                          (f"; skipped: {'; '.join(skipped)}" if skipped else "") +
                          ": it renders black")
    if not shapes:
        ctx.scene_warning("the scene has no shape that raytrace could load" +
                          (" (see the skipped shapes in the warnings or report.skipped)"
                           if any("<shape" in m for m in ctx.report.skipped) else ""))
    return Scene(camera=camera, shapes=shapes, materials=materials, area_lights=lights, envmap=envmap)


# =============================================================================================
# Sensor, film, sampler, integrator
# =============================================================================================
def x_fov(fov: float, axis: str, aspect: float) -> float:
    """Mitsuba's field of view along `axis` -> the horizontal one (aspect = width / height)."""
    if axis == "smaller":
        axis = "y" if aspect > 1 else "x"
    elif axis == "larger":
        axis = "x" if aspect > 1 else "y"
    half = math.tan(math.radians(fov) / 2)
    if axis == "x":
        return fov
    if axis == "y":
        return math.degrees(2 * math.atan(half * aspect))
    if axis == "diagonal":
        return math.degrees(2 * math.atan(half / math.sqrt(1 + 1 / aspect ** 2)))
    raise ValueError(f"fov_axis must be x, y, diagonal, smaller or larger (got {axis!r})")


def _sensor(ctx: _Context, node: Node, resolution):
    from .. import Camera  # noqa: PLC0415

    kind = node.attrs.get("type")
    if kind not in ("perspective", "thinlens", "orthographic"):
        ctx.skip(node, f"<sensor type={kind!r}> is not supported (raytrace has perspective and "
                       "orthographic cameras); the scene has no camera")
        return None
    props = Props(ctx, node)
    width, height = 768, 576
    for film in props.objects_of("film"):
        fp = Props(ctx, film)
        width, height = fp.int("width", width), fp.int("height", height)
        if width < 1 or height < 1:
            raise ctx.error(film, f"film width and height must be >= 1 (got {width}x{height})")
        for rf in fp.objects_of("rfilter"):
            if rf.attrs.get("type") != "box":
                ctx.skip(rf, f"reconstruction filter {rf.attrs.get('type')!r} skipped (raytrace "
                             "box-filters pixels)")
        fp.finish(ignore=_FILM_IGNORED)
    for sampler in props.objects_of("sampler"):
        sp = Props(ctx, sampler)
        spp = sp.int("sample_count", 4)
        if spp < 1:
            raise ctx.error(sampler, f"sample_count must be >= 1 (got {spp})")
        ctx.report.spp = spp
        sp.used.update(sp.values)  # the sampler's type, seed, jitter... do not matter here
    ctx.report.resolution = resolution or (height, width)
    m = props.transform("to_world")
    a, origin = m[:3, :3], m[:3, 3]
    left, up, forward = a[:, 0], a[:, 1], a[:, 2]
    if min(np.linalg.norm(left), np.linalg.norm(up), np.linalg.norm(forward)) < 1e-12:
        raise ctx.error(node, "to_world is degenerate")
    mirror = None
    if np.linalg.det(a) < 0:  # camera +x (image left) is world right: mirrored image
        mirror = (origin, left / np.linalg.norm(left))
        ctx.approximate(node, "the sensor's to_world mirrors; the scene was mirrored instead")
    aspect = width / height
    if kind == "orthographic":
        # Mitsuba's orthographic view spans camera-space x in [-1, 1] scaled by to_world.
        half_width = float(np.linalg.norm(left))
        if not np.isclose(half_width, np.linalg.norm(up), rtol=1e-4):
            ctx.approximate(node, "orthographic to_world scales x and y differently; x is used")
        fov = math.degrees(2 * math.atan(half_width))
        props.used.update(("fov", "fov_axis"))
    else:
        if kind == "thinlens":
            ctx.skip(node, "thinlens depth of field (aperture_radius, focus_distance) skipped: "
                           "rendered as a pinhole camera")
            props.used.update(("aperture_radius", "focus_distance"))
        if not np.allclose([np.linalg.norm(left), np.linalg.norm(up), np.linalg.norm(forward)], 1, rtol=1e-4):
            ctx.approximate(node, "scale in the sensor's to_world ignored (Mitsuba rejects it)")
        if props.has("fov") and props.has("focal_length"):
            raise ctx.error(node, "give either fov or focal_length, not both")
        if props.has("fov"):
            fov, axis = props.float("fov", None), props.string("fov_axis", "x").lower()
        else:
            text = props.string("focal_length", "50mm")
            try:
                f = float(text[:-2] if text.endswith("mm") else text)
            except ValueError:
                raise ctx.error(node, f"focal_length={text!r} must be like \"50mm\"") from None
            if not f > 0:
                raise ctx.error(node, f"focal_length={text!r} must be > 0")
            fov, axis = math.degrees(2 * math.atan(math.hypot(36, 24) / (2 * f))), "diagonal"
        try:
            fov = x_fov(fov, axis, aspect)
        except ValueError as e:
            raise ctx.error(node, str(e)) from None
        if not 0 < fov < 180:
            raise ctx.error(node, f"the horizontal field of view must be in (0, 180) degrees (got {fov:g})")
    props.finish(ignore=_SENSOR_IGNORED + ("film", "sampler"))
    f = forward / np.linalg.norm(forward)
    try:
        camera = Camera(torch.tensor(origin, dtype=torch.float32), torch.tensor(origin + f, dtype=torch.float32),
                        torch.tensor(up / np.linalg.norm(up), dtype=torch.float32), fov=float(fov),
                        resolution=ctx.report.resolution,
                        camera_type="orthographic" if kind == "orthographic" else "perspective")
    except (TypeError, ValueError) as e:
        raise ctx.error(node, f"to_world does not give a valid camera ({e})") from e
    return camera, mirror


def _integrator(ctx: _Context, node: Node) -> None:
    kind = node.attrs.get("type")
    props = Props(ctx, node)
    if kind in ("path", "volpath", "volpathmis", "prb", "prb_basic", "direct_projective",
                "prb_projective", "ptracer"):
        depth = props.int("max_depth", -1)
        if depth == 0:
            ctx.skip(node, "max_depth = 0 (a black image) read as max_bounces = 0")
            ctx.report.max_bounces = 0
        elif depth > 0:
            ctx.report.max_bounces = depth - 1
        elif depth < -1:
            raise ctx.error(node, f"max_depth must be -1 or >= 0 (got {depth})")
        props.finish(ignore=("rr_depth",))
    elif kind == "direct":
        ctx.report.max_bounces = 1
        props.finish(ignore=("emitter_samples", "bsdf_samples", "shading_samples"))
    else:
        ctx.skip(node, f"<integrator type={kind!r}> is not supported (raytrace is a path tracer)")


# =============================================================================================
# Shapes
# =============================================================================================
def _place(mesh: Dict[str, Any], m: np.ndarray, flip: bool) -> Dict[str, Any]:
    """Applies to_world (normals by the inverse transpose; a mirror keeps the facing) and
    flip_normals (reverses the winding and the normals)."""
    a, t = m[:3, :3], m[:3, 3]
    mesh["vertices"] = mesh["vertices"] @ a.T + t
    if mesh["normals"] is not None:
        n = mesh["normals"] @ np.linalg.inv(a)
        length = np.linalg.norm(n, axis=1, keepdims=True)
        mesh["normals"] = n / np.where(length > 0, length, 1.0)
    if (np.linalg.det(a) < 0) != flip:
        mesh["indices"] = mesh["indices"][:, [0, 2, 1]]
    if flip and mesh["normals"] is not None:
        mesh["normals"] = -mesh["normals"]
    return mesh


def angle_weighted_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Vertex normals as Mitsuba computes them: face normals weighted by the corner angles."""
    tri = v[f]
    face = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(face, axis=1, keepdims=True)
    face = face / np.where(length > 0, length, 1.0)
    acc = np.zeros_like(v)
    for k in range(3):
        e1 = tri[:, (k + 1) % 3] - tri[:, k]
        e2 = tri[:, (k + 2) % 3] - tri[:, k]
        angle = np.arctan2(np.linalg.norm(np.cross(e1, e2), axis=1), np.einsum("ij,ij->i", e1, e2))
        np.add.at(acc, f[:, k], face * angle[:, None])
    length = np.linalg.norm(acc, axis=1, keepdims=True)
    return acc / np.where(length > 0, length, 1.0)


def _rectangle() -> Dict[str, Any]:
    v = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], dtype=np.float64)
    return {"vertices": v, "indices": np.array([[0, 1, 2], [0, 2, 3]]), "uvs": (v[:, :2] + 1) / 2,
            "normals": np.tile([0.0, 0.0, 1.0], (4, 1))}


def _disk(segments: int) -> Dict[str, Any]:
    phi = np.linspace(0, 2 * np.pi, segments + 1)
    ring = np.stack([np.cos(phi), np.sin(phi), np.zeros_like(phi)], axis=1)
    v = np.concatenate([[[0.0, 0.0, 0.0]], ring])
    uvs = np.concatenate([[[0.0, 0.0]], np.stack([np.ones_like(phi), phi / (2 * np.pi)], axis=1)])
    j = np.arange(segments)
    f = np.stack([np.zeros_like(j), 1 + j, 2 + j], axis=1)
    return {"vertices": v, "indices": f, "uvs": uvs, "normals": np.tile([0.0, 0.0, 1.0], (len(v), 1))}


def _cube() -> Dict[str, Any]:
    from ..geometry import box  # noqa: PLC0415

    b = box(size=2.0, watertight=False)
    return {"vertices": b.vertices.double().numpy(), "indices": b.indices.numpy(),
            "uvs": b.uvs.double().numpy(), "normals": b.normals.double().numpy()}


def _sphere(rings: int, segments: int) -> Dict[str, Any]:
    """The unit sphere with Mitsuba's parameterisation: poles on +-z, u = phi / 2pi with
    phi = atan2(y, x), v = theta / pi from +z. Outward winding; seam and poles duplicated."""
    theta = np.linspace(0, np.pi, rings + 1)[:, None]
    phi = np.linspace(0, 2 * np.pi, segments + 1)[None, :]
    p = np.stack(np.broadcast_arrays(np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi),
                                     np.cos(theta)), axis=-1).reshape(-1, 3)
    uvs = np.stack(np.broadcast_arrays(phi / (2 * np.pi), theta / np.pi), axis=-1).reshape(-1, 2)
    i, j = np.meshgrid(np.arange(rings), np.arange(segments), indexing="ij")
    p00 = (i * (segments + 1) + j).reshape(-1)
    p01, p10 = p00 + 1, p00 + segments + 1
    p11 = p10 + 1
    row = i.reshape(-1)
    # (p00, p10, p01) has normal d/dtheta x d/dphi: outwards. Drop the triangles that
    # collapse onto a pole.
    lower = np.stack([p00, p10, p01], 1)[row != 0]
    upper = np.stack([p01, p10, p11], 1)[row != rings - 1]
    f = np.concatenate([lower, upper])
    used = np.zeros(len(p), dtype=bool)
    used[f.reshape(-1)] = True
    remap = np.cumsum(used) - 1
    return {"vertices": p[used], "indices": remap[f], "uvs": uvs[used], "normals": p[used]}


def _mesh_file(ctx: _Context, node: Node, props: Props, kind: str) -> Dict[str, Any]:
    from .meshes import _load_mesh  # noqa: PLC0415

    name = props.string("filename", None)
    if name is None:
        raise ctx.error(node, f"<shape type={kind!r}> needs a 'filename' string")
    file = ctx.resolve(node, name, f"<shape type={kind!r}>")
    try:
        m = _load_mesh(file, str(file), ctx.access.budget)
    except ValueError as e:
        raise ctx.error(node, str(e)) from e
    mesh = {k: (None if v is None else v.numpy().astype(np.int64 if k == "indices" else np.float64))
            for k, v in m.items()}
    # load_mesh gives uvs with v pointing down the image (OBJ/PLY read as (u, 1 - v)). Mitsuba
    # flips OBJ texture coordinates by default and PLY ones only if asked.
    flip = props.bool("flip_tex_coords", kind == "obj")
    if mesh["uvs"] is not None and not flip:
        mesh["uvs"][:, 1] = 1.0 - mesh["uvs"][:, 1]
    if props.bool("face_normals", False):
        mesh["normals"] = None
    elif mesh["normals"] is None:
        mesh["normals"] = angle_weighted_normals(mesh["vertices"], mesh["indices"])
        ctx.approximate(node, f"{name}: no vertex normals in the file; computed as Mitsuba does "
                              "(angle-weighted)")
    return mesh


def _serialized(ctx: _Context, node: Node, props: Props) -> Dict[str, Any]:
    """A ``serialized`` shape (raytrace.io.serialized): normals from the file, else computed as
    Mitsuba does, unless face normals are asked for (by the file's flag or face_normals)."""
    from .serialized import read_serialized  # noqa: PLC0415

    name = props.string("filename", None)
    if name is None:
        raise ctx.error(node, "<shape type='serialized'> needs a 'filename' string")
    index = props.int("shape_index", 0)
    if index < 0:
        raise ctx.error(node, f"shape_index must be >= 0 (got {index})")
    file = ctx.resolve(node, name, "<shape type='serialized'>")
    try:
        mesh = read_serialized(file, str(file), ctx.access.budget, index)
    except ValueError as e:
        raise ctx.error(node, str(e)) from e
    flat = props.bool("face_normals", False) or mesh.pop("face_normals")
    mesh.pop("name", None)
    if flat:
        mesh["normals"] = None
    elif mesh["normals"] is None:
        mesh["normals"] = angle_weighted_normals(mesh["vertices"], mesh["indices"])
        ctx.approximate(node, f"{name}: no vertex normals in the file; computed as Mitsuba does "
                              "(angle-weighted)")
    else:
        length = np.linalg.norm(mesh["normals"], axis=1, keepdims=True)
        mesh["normals"] = mesh["normals"] / np.where(length > 0, length, 1.0)
    if props.has("max_smooth_angle"):
        props.float("max_smooth_angle", None)
        ctx.skip(node, "max_smooth_angle is not supported (the file's or the computed smooth "
                       "normals are used)")
    return mesh


def _shape(ctx: _Context, node: Node, sphere_res: Tuple[int, int]) -> Optional[Dict[str, Any]]:
    kind = node.attrs.get("type")
    if kind not in ("obj", "ply", "serialized", "rectangle", "cube", "sphere", "disk"):
        ctx.skip(node, f"<shape type={kind!r}> is not supported and was skipped")
        return None
    props = Props(ctx, node)
    m = props.transform("to_world")
    if kind in ("obj", "ply"):
        mesh = _mesh_file(ctx, node, props, kind)
    elif kind == "serialized":
        mesh = _serialized(ctx, node, props)
    elif kind == "rectangle":
        mesh = _rectangle()
    elif kind == "disk":
        mesh = _disk(sphere_res[1])
    elif kind == "cube":
        mesh = _cube()
    else:
        center = props.point("center", (0.0, 0.0, 0.0))
        radius = props.float("radius", 1.0)
        if not radius > 0:
            raise ctx.error(node, f"sphere radius must be > 0 (got {radius:g})")
        local = np.diag([radius, radius, radius, 1.0])
        local[:3, 3] = center
        m = m @ local
        mesh = _sphere(*sphere_res)
    mesh = _place(mesh, m, props.bool("flip_normals", False))
    bsdfs = props.objects_of("bsdf")
    if len(bsdfs) > 1:
        for extra in bsdfs[1:]:
            ctx.skip(extra, "a second <bsdf> in one shape was skipped")
    mesh["bsdf"] = bsdfs[0] if bsdfs else None
    mesh["emission"] = None
    for e in props.objects_of("emitter"):
        if e.attrs.get("type") != "area":
            ctx.skip(e, f"<emitter type={e.attrs.get('type')!r}> inside a shape is not supported")
            continue
        if mesh["emission"] is not None:
            ctx.skip(e, "a second area emitter in one shape was skipped")
            continue
        ep = Props(ctx, e)
        radiance = _spectrum(ctx, ep, "radiance", None)
        if radiance is None:
            raise ctx.error(e, "area emitter needs a 'radiance'")
        if radiance.ndim == 3:
            ctx.skip(e, "textured radiance is not supported; its mean was used")
            radiance = radiance.reshape(-1, 3).mean(axis=0)
        ep.finish()
        mesh["emission"] = radiance
    mesh["node"] = node
    props.finish()
    return mesh


# =============================================================================================
# Spectra and textures
# =============================================================================================
def _spectrum(ctx: _Context, props: Props, name: str, default: Optional[float]) -> Optional[np.ndarray]:
    """A colour parameter: [3] (rgb, srgb, spectrum, float) or [h, w, 3] (a texture)."""
    obj = props.named(name)
    if obj is not None:
        if obj.tag != "texture":
            raise ctx.error(obj, f"{name!r} must be a colour or a <texture> (got <{obj.tag}>)")
        tex = _texture(ctx, obj)
        if tex is not None:
            return tex
        return None if default is None else np.full(3, default)
    p = props.get(name, ("rgb", "srgb", "spectrum", "float", "integer", "blackbody"))
    if p is None:
        return None if default is None else np.full(3, float(default))
    value = np.asarray(p.value, dtype=np.float64)
    value = np.full(3, float(value)) if value.ndim == 0 else value
    if (value < 0).any():
        raise ctx.error(p.node, f"{name!r} must be >= 0 (got {p.node.attrs.get('value')!r})")
    return value


def _scalar(ctx: _Context, props: Props, name: str, default: float) -> np.ndarray:
    """A float parameter that may be a texture: [1] or [h, w, 1] (mean of the channels)."""
    obj = props.named(name)
    if obj is not None:
        tex = _texture(ctx, obj) if obj.tag == "texture" else None
        if tex is not None:
            return tex.mean(axis=2, keepdims=True)
        return np.array([default])
    p = props.get(name, ("float", "integer", "rgb", "spectrum"))
    if p is None:
        return np.array([default])
    value = np.asarray(p.value, dtype=np.float64).reshape(-1)
    if value.size > 1:
        ctx.approximate(p.node, f"{name!r}: a colour where a float is expected; its mean was used")
    return np.array([float(value.mean())])


def _texture(ctx: _Context, node: Node) -> Optional[np.ndarray]:
    """A <texture> -> [h, w, 3] float64 linear values (row 0 is v = 0), or None if skipped."""
    key = ("texture", id(node))
    if key in ctx.cache:
        return ctx.cache[key]
    from .images import _imread  # noqa: PLC0415

    kind = node.attrs.get("type")
    props = Props(ctx, node)
    out = None
    if kind == "bitmap":
        name = props.string("filename", None)
        if name is None:
            raise ctx.error(node, "<texture type='bitmap'> needs a 'filename' string")
        file = ctx.resolve(node, name, "bitmap")
        raw = props.bool("raw", False)
        if file.suffix.lower() not in (".png", ".jpg", ".jpeg", ".exr", ".hdr"):
            ctx.skip(node, f"{name}: image format {file.suffix!r} is not supported (PNG, JPEG, "
                           "EXR, HDR); the texture was skipped")
        else:
            try:
                img = _imread(file, name, not raw, ctx.access.budget).double().numpy()
            except (OSError, ValueError) as e:
                raise ctx.error(node, str(e)) from e
            out = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img[:, :, :3]
        wrap = props.string("wrap_mode", "repeat")
        if wrap != "repeat":
            ctx.skip(node, f"wrap_mode {wrap!r} skipped (raytrace textures repeat)")
        if props.string("filter_type", "bilinear") != "bilinear":
            ctx.approximate(node, "filter_type nearest read as bilinear")
    elif kind == "checkerboard":
        c0 = _spectrum(ctx, props, "color0", 0.4)
        c1 = _spectrum(ctx, props, "color1", 0.2)
        if c0.ndim != 1 or c1.ndim != 1:
            ctx.skip(node, "textured checkerboard colours are not supported; 0.4 / 0.2 used")
            c0, c1 = np.full(3, 0.4), np.full(3, 0.2)
        n = 32  # texels per unit of uv; the pattern is exact up to the bilinear blend of one texel
        x = (np.arange(n) + 0.5) / n
        mask = (x[None, :] > 0.5) == (x[:, None] > 0.5)
        out = np.where(mask[:, :, None], c0, c1)
    else:
        ctx.skip(node, f"<texture type={kind!r}> is not supported and was skipped")
        ctx.cache[key] = None
        return None
    to_uv = props.transform("to_uv")
    if not np.allclose(to_uv, np.eye(4)) and out is not None:
        scale = np.diag(to_uv)[:2]
        plain = np.allclose(to_uv - np.diag(np.diag(to_uv)), 0) and np.allclose(scale, np.round(scale))
        if plain and (scale >= 1).all():
            out = np.tile(out, (int(round(scale[1])), int(round(scale[0])), 1))  # wraps: tile it
        else:
            ctx.skip(node, "to_uv other than an integer scale is not supported and was skipped")
    props.finish(ignore=("format", "accel", "wrap_mode"))
    ctx.cache[key] = out
    return out


# =============================================================================================
# BSDFs
# =============================================================================================
def _diffuse_default() -> Dict[str, Any]:
    return {"diffuse": np.full(3, 0.5), "specular": np.zeros(3), "roughness": np.array([0.5]),
            "two_sided": False}


def _ior(ctx: _Context, props: Props, name: str, default: float) -> float:
    p = props.get(name, ("float", "string"))
    if p is None:
        return default
    if p.tag == "string":
        if p.value.lower() not in _IOR:
            raise ctx.error(p.node, f"unknown index of refraction {p.value!r} (known: "
                                    f"{', '.join(sorted(_IOR))})")
        return _IOR[p.value.lower()]
    if not p.value > 0:
        raise ctx.error(p.node, f"{name} must be > 0 (got {p.value:g})")
    return float(p.value)


def _alpha(ctx: _Context, props: Props, node: Node, rough: bool) -> np.ndarray:
    if not rough:
        return np.array([SMOOTH_ALPHA])
    dist = props.string("distribution", "beckmann")
    if dist not in ("beckmann", "ggx"):
        raise ctx.error(node, f"distribution must be beckmann or ggx (got {dist!r})")
    if props.has("alpha_u") or props.has("alpha_v"):
        au, av = _scalar(ctx, props, "alpha_u", 0.1), _scalar(ctx, props, "alpha_v", 0.1)
        if au.shape != av.shape or not np.allclose(au, av):
            ctx.approximate(node, "anisotropic roughness: sqrt(alpha_u alpha_v) used")
        alpha = np.sqrt(au * av) if au.shape == av.shape else au
    else:
        alpha = _scalar(ctx, props, "alpha", 0.1)
    props.bool("sample_visible", True)
    if dist == "beckmann":
        ctx.approximate(node, "Beckmann roughness alpha used as GGX alpha")
    if (alpha <= 0).any():
        raise ctx.error(node, "roughness alpha must be > 0")
    return np.maximum(alpha, SMOOTH_ALPHA)


def _bsdf(ctx: _Context, node: Node) -> Dict[str, Any]:
    """A <bsdf> -> {"diffuse", "specular", "roughness" (numpy constants or textures), "two_sided"}."""
    kind = node.attrs.get("type")
    props = Props(ctx, node)
    out = _diffuse_default()
    if kind == "twosided":
        inner = props.objects_of("bsdf")
        if not inner:
            raise ctx.error(node, "<bsdf type='twosided'> needs a nested <bsdf>")
        if len(inner) > 1:
            ctx.skip(inner[1], "twosided with a different back-side bsdf: the front one is used "
                               "on both sides")
        out = dict(_bsdf(ctx, inner[0]))
        out["two_sided"] = True
    elif kind == "diffuse":
        out["diffuse"] = _spectrum(ctx, props, "reflectance", 0.5)
    elif kind in ("conductor", "roughconductor"):
        out["diffuse"] = np.zeros(3)
        if props.has("eta") or props.has("k"):
            eta, k = _spectrum(ctx, props, "eta", 0.0), _spectrum(ctx, props, "k", 1.0)
            if eta.ndim != 1 or k.ndim != 1:
                raise ctx.error(node, "textured eta / k are not supported")
            f0 = ((eta - 1) ** 2 + k ** 2) / ((eta + 1) ** 2 + k ** 2)
            props.string("material", "none")
        else:
            name = props.string("material", "none")
            if name.lower() not in _CONDUCTOR_F0:
                ctx.skip(node, f"conductor material {name!r} has no RGB reflectance here; 0.9 used")
            f0 = np.array(_CONDUCTOR_F0.get(name.lower(), (0.9, 0.9, 0.9)))
        ctx.approximate(node, f"{kind}: complex Fresnel approximated by Schlick with F0 = "
                              f"{np.round(f0, 3).tolist()}")
        out["specular"] = f0 * _spectrum(ctx, props, "specular_reflectance", 1.0)
        out["roughness"] = _alpha(ctx, props, node, kind == "roughconductor")
    elif kind in ("plastic", "roughplastic"):
        n = _ior(ctx, props, "int_ior", 1.49) / _ior(ctx, props, "ext_ior", 1.000277)
        f0 = ((n - 1) / (n + 1)) ** 2
        out["diffuse"] = _spectrum(ctx, props, "diffuse_reflectance", 0.5)
        out["specular"] = f0 * _spectrum(ctx, props, "specular_reflectance", 1.0)
        out["roughness"] = _alpha(ctx, props, node, kind == "roughplastic")
        props.bool("nonlinear", False)
        ctx.approximate(node, f"{kind}: diffuse + GGX lobe with Schlick F0 = {f0:.4f} (no "
                              "internal scattering)")
    elif kind == "principled":
        base = _spectrum(ctx, props, "base_color", 0.5)
        metallic = float(_scalar(ctx, props, "metallic", 0.0).mean())
        specular = float(_scalar(ctx, props, "specular", 0.5).mean())
        roughness = _scalar(ctx, props, "roughness", 0.5)
        out["diffuse"] = base * (1 - metallic)
        out["specular"] = (1 - metallic) * 0.08 * specular + metallic * base
        out["roughness"] = np.maximum(roughness ** 2, SMOOTH_ALPHA)
        ctx.approximate(node, "principled: diffuse + GGX (alpha = roughness^2); textured "
                              "metallic/specular averaged")
    elif kind in ("dielectric", "thindielectric", "roughdielectric"):
        n = _ior(ctx, props, "int_ior", 1.5046) / _ior(ctx, props, "ext_ior", 1.000277)
        out = {"diffuse": np.zeros(3), "specular": np.full(3, ((n - 1) / (n + 1)) ** 2),
               "roughness": _alpha(ctx, props, node, kind == "roughdielectric"), "two_sided": True}
        ctx.skip(node, f"{kind}: transmission is not supported; only the reflection is kept")
        props.used.update(props.values)
    elif kind in ("bumpmap", "normalmap", "mask", "blendbsdf"):
        inner = props.objects_of("bsdf")
        if not inner:
            raise ctx.error(node, f"<bsdf type={kind!r}> needs a nested <bsdf>")
        ctx.skip(node, f"{kind}: the wrapper's effect is not supported; its (first) nested bsdf is used")
        props.used.update(props.values)
        props.used.update(("object", id(o)) for _, o in props.objects)
        out = _bsdf(ctx, inner[0])
    else:
        ctx.skip(node, f"<bsdf type={kind!r}> is not supported; a diffuse 0.5 material is used")
        return out
    props.finish()
    return out


# =============================================================================================
# Environment emitters
# =============================================================================================
def _environment(ctx: _Context, node: Node) -> Optional[Tuple[Node, np.ndarray, np.ndarray]]:
    kind = node.attrs.get("type")
    props = Props(ctx, node)
    if kind == "constant":
        radiance = _spectrum(ctx, props, "radiance", 1.0)
        if radiance.ndim != 1:
            ctx.skip(node, "textured constant radiance: its mean was used")
            radiance = radiance.reshape(-1, 3).mean(axis=0)
        props.finish()
        return node, radiance.reshape(1, 1, 3), np.eye(3)
    if kind == "envmap":
        from .images import _imread  # noqa: PLC0415

        name = props.string("filename", None)
        if name is None:
            raise ctx.error(node, "<emitter type='envmap'> needs a 'filename' string")
        file = ctx.resolve(node, name, "envmap")
        if file.suffix.lower() not in (".png", ".jpg", ".jpeg", ".exr", ".hdr"):
            ctx.skip(node, f"{name}: image format {file.suffix!r} is not supported (PNG, JPEG, "
                           "EXR, HDR); the envmap was skipped")
            return None
        try:
            img = _imread(file, name, True, ctx.access.budget).double().numpy()
        except (OSError, ValueError) as e:
            raise ctx.error(node, str(e)) from e
        img = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img[:, :, :3]
        scale = props.float("scale", 1.0)
        m = props.transform("to_world")
        props.finish()
        return node, img * scale, m[:3, :3]
    if kind in _DELTA_EMITTERS:
        ctx.skip(node, f"<emitter type={kind!r}> is not supported yet: raytrace has no point, spot "
                       "or directional lights (issue 11), only area lights and environment maps; "
                       "skipped, so the scene gets less light than in Mitsuba")
    else:
        ctx.skip(node, f"<emitter type={kind!r}> is not supported (raytrace has area lights and "
                       "environment maps) and was skipped")
    return None


def resample_envmap(img: np.ndarray, to_world: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    """A Mitsuba envmap image -> raytrace's lat-long layout of the given (h, w).

    Mitsuba looks up local direction v = to_world^-1 d at u = atan2(v.x, -v.z) / 2pi (wrapped
    to [0, 1)), v = acos(v.y) / pi, with pixel x at u = x / w and row y at v = y / (h - 1);
    raytrace's texel (i, j) is the direction with u = (j + 1/2) / w' - 1/2 turn, v = (i + 1/2) / h'.
    Each raytrace texel takes Mitsuba's bilinear value in its centre direction.
    """
    h, w = shape
    mh, mw = img.shape[:2]
    u = (np.arange(w) + 0.5) / w
    v = (np.arange(h) + 0.5) / h
    phi = (u[None, :] - 0.5) * 2 * np.pi
    theta = v[:, None] * np.pi
    d = np.stack(np.broadcast_arrays(np.sin(theta) * np.sin(phi), np.cos(theta),
                                     -np.sin(theta) * np.cos(phi)), axis=-1)
    local = d @ np.linalg.inv(to_world).T
    local /= np.linalg.norm(local, axis=-1, keepdims=True)
    mu = (np.arctan2(local[..., 0], -local[..., 2]) / (2 * np.pi)) % 1.0
    mv = np.arccos(np.clip(local[..., 1], -1, 1)) / np.pi
    x = mu * mw
    y = mv * (mh - 1) if mh > 1 else np.zeros_like(mv)
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    x1, y1 = (x0 + 1) % mw, np.minimum(y0 + 1, mh - 1)
    x0, y0 = x0 % mw, np.clip(y0, 0, mh - 1)
    return ((1 - fx) * (1 - fy) * img[y0, x0] + fx * (1 - fy) * img[y0, x1]
            + (1 - fx) * fy * img[y1, x0] + fx * fy * img[y1, x1])


def _combine_environments(ctx: _Context, env: List[Tuple[Node, np.ndarray, np.ndarray]]) -> np.ndarray:
    """Constant emitters add to the (first) envmap; further envmaps are skipped."""
    maps = [(n, img, a) for n, img, a in env if img.shape[:2] != (1, 1)]
    constant = sum((img.reshape(3) for _, img, a in env if img.shape[:2] == (1, 1)), np.zeros(3))
    for node, _, _ in maps[1:]:
        ctx.skip(node, "a second envmap was skipped (raytrace has one environment map)")
    if not maps:
        return constant.reshape(1, 1, 3)
    node, img, a = maps[0]
    out = resample_envmap(img, a, img.shape[:2])
    ctx.approximate(node, "envmap resampled to raytrace's lat-long layout (bilinear)")
    return out + constant
