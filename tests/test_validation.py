"""Bad inputs raise TypeError (wrong Python type or dtype) or ValueError (wrong shape or value),
with the argument's name in the message; valid inputs of every accepted form work."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import raytrace as rt

F = torch.float32


def t(x, dtype=F):
    return torch.tensor(x, dtype=dtype)


# ----------------------------------------------------------------------------------------------
# Valid building blocks
# ----------------------------------------------------------------------------------------------
def verts():
    return t([[-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [1.0, 1.0, 0.0], [-1.0, 1.0, 0.0]])


def idx(dtype=torch.int64):
    return t([[0, 1, 2], [0, 2, 3]], dtype)


def uvs():
    return t([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])


def normals():
    return t([[0.0, 0.0, 1.0]] * 4)


def camera(**kw):
    args = dict(position=t([0.0, 0.0, 5.0]), look_at=t([0.0, 0.0, 0.0]), up=t([0.0, 1.0, 0.0]))
    for k in list(args):
        if k in kw:
            args[k] = kw.pop(k)
    opts = dict(fov=45.0, resolution=(8, 8), camera_type="perspective")
    opts.update(kw)
    return rt.Camera(args["position"], args["look_at"], args["up"], **opts)


def shape(**kw):
    args = dict(vertices=verts(), indices=idx(), material_id=0)
    for k in list(args):
        if k in kw:
            args[k] = kw.pop(k)
    return rt.Shape(args["vertices"], args["indices"], args["material_id"], **kw)


def material(**kw):
    d = kw.pop("diffuse_reflectance", t([0.5, 0.5, 0.5]))
    return rt.Material(d, **kw)


def light(**kw):
    sid = kw.pop("shape_id", 0)
    inten = kw.pop("intensity", t([1.0, 1.0, 1.0]))
    return rt.AreaLight(sid, inten, **kw)


def envmap(values=None):
    return rt.EnvironmentMap(torch.ones(4, 8, 3) if values is None else values)


def scene(**kw):
    args = dict(camera=camera(), shapes=[shape()], materials=[material()],
                area_lights=[light()], envmap=None)
    args.update(kw)
    return rt.Scene(**args)


def render(**kw):
    s = kw.pop("scene", None) or scene()
    args = dict(spp=1, max_bounces=1, seed=0, channels=("radiance",))
    args.update(kw)
    return rt.render(s, **args)


def intersect(origins=None, directions=None):
    s = scene()
    o = t([[0.0, 0.0, 3.0]]) if origins is None else origins
    d = t([[0.0, 0.0, -1.0]]) if directions is None else directions
    return s.intersect(o, d)


def with_value(x, pos, value):
    x = x.clone()
    x.view(-1)[pos] = value
    return x


META = torch.device("meta")

# (id, callable, match)
TYPE_ERRORS = [
    # wrong Python types
    ("scene-camera-not-camera", lambda: scene(camera="camera"), "camera"),
    ("scene-camera-is-shape", lambda: scene(camera=shape()), "camera"),
    ("scene-shapes-not-shapes", lambda: scene(shapes=[material()]), "shapes"),
    ("scene-shapes-not-list", lambda: scene(shapes=shape()), "shapes"),
    ("scene-materials-not-materials", lambda: scene(materials=[shape()]), "materials"),
    ("scene-materials-not-list", lambda: scene(materials=material()), "materials"),
    ("scene-lights-not-lights", lambda: scene(area_lights=[material()]), "area_lights"),
    ("scene-envmap-not-envmap", lambda: scene(envmap=torch.ones(4, 8, 3)), "envmap"),
    ("render-scene-not-scene", lambda: rt.render("scene", spp=1), "scene"),
    ("vertices-string", lambda: shape(vertices="vertices"), "vertices"),
    ("indices-string", lambda: shape(indices="indices"), "indices"),
    ("diffuse-string", lambda: material(diffuse_reflectance="red"), "diffuse_reflectance"),
    ("position-string", lambda: camera(position="origin"), "position"),
    ("look-at-none", lambda: camera(look_at=None), "look_at"),
    ("intensity-string", lambda: light(intensity="bright"), "intensity"),
    ("envmap-values-string", lambda: envmap("sky"), "values"),
    ("fov-string", lambda: camera(fov="wide"), "fov"),
    ("material-id-float", lambda: shape(material_id=0.5), "material_id"),
    ("shape-id-float", lambda: light(shape_id=0.5), "shape_id"),
    ("spp-float", lambda: render(spp=1.5), "spp"),
    ("spp-string", lambda: render(spp="4"), "spp"),
    ("max-bounces-float", lambda: render(max_bounces=1.5), "max_bounces"),
    ("seed-float", lambda: render(seed=0.5), "seed"),
    ("resolution-float", lambda: camera(resolution=(8.0, 8)), "resolution"),
    ("resolution-float-width", lambda: camera(resolution=(8, 7.5)), "resolution"),
    # wrong dtypes
    ("indices-float", lambda: shape(indices=idx(F)), "indices"),
    ("indices-float64", lambda: shape(indices=idx(torch.float64)), "indices"),
    ("indices-bool", lambda: shape(indices=idx(torch.bool)), "indices"),
    ("vertices-int", lambda: shape(vertices=verts().long()), "vertices"),
    ("vertices-int32", lambda: shape(vertices=verts().int()), "vertices"),
    ("vertices-bool", lambda: shape(vertices=verts().bool()), "vertices"),
    ("uvs-int", lambda: shape(uvs=uvs().long()), "uvs"),
    ("normals-int", lambda: shape(normals=normals().long()), "normals"),
    ("diffuse-int", lambda: material(diffuse_reflectance=t([1, 0, 0], torch.int64)),
     "diffuse_reflectance"),
    ("specular-int", lambda: material(specular_reflectance=t([1, 0, 0], torch.int64)),
     "specular_reflectance"),
    ("roughness-int-tensor", lambda: material(roughness=t([1], torch.int64)), "roughness"),
    ("intensity-int", lambda: light(intensity=t([1, 1, 1], torch.int64)), "intensity"),
    ("envmap-int", lambda: envmap(torch.ones(4, 8, 3, dtype=torch.int64)), "values"),
    ("position-int", lambda: camera(position=t([0, 0, 5], torch.int64)), "position"),
    ("look-at-bool", lambda: camera(look_at=t([0, 0, 0], torch.bool)), "look_at"),
    ("up-int", lambda: camera(up=t([0, 1, 0], torch.int32)), "up"),
    ("origins-int", lambda: intersect(origins=t([[0, 0, 3]], torch.int64)), "origins"),
    ("directions-int", lambda: intersect(directions=t([[0, 0, -1]], torch.int64)), "directions"),
]

VALUE_ERRORS = [
    # wrong shapes
    ("vertices-n2", lambda: shape(vertices=verts()[:, :2]), "vertices"),
    ("vertices-1d", lambda: shape(vertices=verts().reshape(-1)), "vertices"),
    ("indices-m4", lambda: shape(indices=t([[0, 1, 2, 3]], torch.int64)), "indices"),
    ("indices-1d", lambda: shape(indices=t([0, 1, 2], torch.int64)), "indices"),
    ("uvs-count", lambda: shape(uvs=uvs()[:3]), "uvs"),
    ("uvs-n3", lambda: shape(uvs=torch.zeros(4, 3)), "uvs"),
    ("normals-count", lambda: shape(normals=torch.cat([normals(), normals()[:1]])), "normals"),
    ("normals-n2", lambda: shape(normals=torch.zeros(4, 2)), "normals"),
    ("diffuse-texture-2ch", lambda: material(diffuse_reflectance=torch.ones(4, 4, 2)),
     "diffuse_reflectance"),
    ("diffuse-2", lambda: material(diffuse_reflectance=t([0.5, 0.5])), "diffuse_reflectance"),
    ("diffuse-2d", lambda: material(diffuse_reflectance=torch.ones(4, 3)), "diffuse_reflectance"),
    ("specular-4", lambda: material(specular_reflectance=torch.ones(4)), "specular_reflectance"),
    ("roughness-texture-3ch", lambda: material(roughness=torch.ones(4, 4, 3) * 0.5),
     "roughness"),
    ("envmap-2d", lambda: envmap(torch.ones(4, 8)), "values"),
    ("envmap-4ch", lambda: envmap(torch.ones(4, 8, 4)), "values"),
    ("intensity-4", lambda: light(intensity=torch.ones(4)), "intensity"),
    ("position-2", lambda: camera(position=t([0.0, 5.0])), "position"),
    ("origins-n2", lambda: intersect(origins=t([[0.0, 3.0]])), "origins"),
    ("rays-count-mismatch", lambda: intersect(directions=t([[0.0, 0.0, -1.0]] * 2)),
     "origins|directions"),
    # NaN / Inf
    ("vertices-nan", lambda: shape(vertices=with_value(verts(), 4, math.nan)), "vertices"),
    ("vertices-inf", lambda: shape(vertices=with_value(verts(), 0, math.inf)), "vertices"),
    ("uvs-nan", lambda: shape(uvs=with_value(uvs(), 3, math.nan)), "uvs"),
    ("normals-inf", lambda: shape(normals=with_value(normals(), 2, -math.inf)), "normals"),
    ("diffuse-nan", lambda: material(diffuse_reflectance=t([0.5, math.nan, 0.5])),
     "diffuse_reflectance"),
    ("diffuse-texture-inf",
     lambda: material(diffuse_reflectance=with_value(torch.ones(2, 2, 3), 5, math.inf)),
     "diffuse_reflectance"),
    ("specular-inf", lambda: material(specular_reflectance=t([math.inf, 0.0, 0.0])),
     "specular_reflectance"),
    ("roughness-nan", lambda: material(roughness=math.nan), "roughness"),
    ("roughness-inf-tensor", lambda: material(roughness=t([math.inf])), "roughness"),
    ("intensity-nan", lambda: light(intensity=t([1.0, math.nan, 1.0])), "intensity"),
    ("envmap-inf", lambda: envmap(with_value(torch.ones(4, 8, 3), 7, math.inf)), "values"),
    ("envmap-nan", lambda: envmap(with_value(torch.ones(4, 8, 3), 0, math.nan)), "values"),
    ("position-nan", lambda: camera(position=t([0.0, math.nan, 5.0])), "position"),
    ("look-at-inf", lambda: camera(look_at=t([0.0, 0.0, math.inf])), "look_at"),
    ("up-nan", lambda: camera(up=t([math.nan, 1.0, 0.0])), "up"),
    ("fov-nan", lambda: camera(fov=math.nan), "fov"),
    ("origins-nan", lambda: intersect(origins=t([[0.0, math.nan, 3.0]])), "origins"),
    ("directions-inf", lambda: intersect(directions=t([[0.0, 0.0, -math.inf]])), "directions"),
    # index ranges and empty meshes
    ("indices-negative", lambda: shape(indices=t([[0, 1, -1]], torch.int64)), "indices"),
    ("indices-too-large", lambda: shape(indices=t([[0, 1, 4]], torch.int64)), "indices"),
    ("indices-too-large-int32", lambda: shape(indices=t([[0, 7, 2]], torch.int32)), "indices"),
    ("no-triangles", lambda: shape(indices=torch.zeros(0, 3, dtype=torch.int64)), "indices"),
    ("no-vertices", lambda: shape(vertices=torch.zeros(0, 3),
                                  indices=torch.zeros(0, 3, dtype=torch.int64)),
     "vertices|indices"),
    # references that do not exist in the Scene
    ("material-id-missing", lambda: scene(shapes=[shape(material_id=1)]), "material_id"),
    ("material-id-negative", lambda: scene(shapes=[shape(material_id=-1)]), "material_id"),
    ("shape-id-missing", lambda: scene(area_lights=[light(shape_id=1)]), "shape_id"),
    ("shape-id-negative", lambda: scene(area_lights=[light(shape_id=-1)]), "shape_id"),
    # render / camera settings
    ("resolution-zero", lambda: camera(resolution=(0, 8)), "resolution"),
    ("resolution-negative", lambda: camera(resolution=(8, -4)), "resolution"),
    ("spp-zero", lambda: render(spp=0), "spp"),
    ("spp-negative", lambda: render(spp=-3), "spp"),
    ("max-bounces-negative", lambda: render(max_bounces=-1), "max_bounces"),
    ("seed-negative", lambda: render(seed=-1), "seed"),
    ("fov-zero", lambda: camera(fov=0.0), "fov"),
    ("fov-180", lambda: camera(fov=180.0), "fov"),
    ("fov-negative", lambda: camera(fov=-30.0), "fov"),
    ("fov-too-large", lambda: camera(fov=200.0), "fov"),
    ("look-at-equals-position", lambda: camera(look_at=t([0.0, 0.0, 5.0])), "look_at|position"),
    ("up-zero", lambda: camera(up=t([0.0, 0.0, 0.0])), "up"),
    ("up-parallel", lambda: camera(up=t([0.0, 0.0, -2.0])), "up"),
    ("up-antiparallel", lambda: camera(up=t([0.0, 0.0, 1.0])), "up"),
    ("camera-type-unknown", lambda: camera(camera_type="fisheye"), "camera_type"),
    ("channel-unknown", lambda: render(channels=("radiance", "colour")), "channels"),
    # negative or non-positive values
    ("diffuse-negative", lambda: material(diffuse_reflectance=t([0.5, -0.1, 0.5])),
     "diffuse_reflectance"),
    ("diffuse-texture-negative",
     lambda: material(diffuse_reflectance=with_value(torch.ones(2, 2, 3), 4, -1.0)),
     "diffuse_reflectance"),
    ("specular-negative", lambda: material(specular_reflectance=t([0.0, 0.0, -0.5])),
     "specular_reflectance"),
    ("intensity-negative", lambda: light(intensity=t([1.0, -1.0, 1.0])), "intensity"),
    ("roughness-zero", lambda: material(roughness=0.0), "roughness"),
    ("roughness-negative", lambda: material(roughness=-0.2), "roughness"),
    ("roughness-tensor-zero", lambda: material(roughness=t([0.0])), "roughness"),
    ("roughness-texture-zero",
     lambda: material(roughness=with_value(torch.full((2, 2, 1), 0.5), 3, 0.0)), "roughness"),
    # intersect
    ("zero-direction", lambda: intersect(directions=t([[0.0, 0.0, 0.0]])), "directions"),
    ("one-zero-direction",
     lambda: intersect(origins=t([[0.0, 0.0, 3.0]] * 3),
                       directions=t([[0.0, 0.0, -1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])),
     "directions"),
    # devices
    ("mixed-devices-shape", lambda: shape(vertices=verts().to(META)), "vertices|indices"),
    ("mixed-devices-shape-uvs", lambda: shape(uvs=uvs().to(META)), "uvs"),
    ("meta-camera", lambda: camera(position=t([0.0, 0.0, 5.0]).to(META)), "position"),
    ("meta-material", lambda: material(diffuse_reflectance=t([0.5, 0.5, 0.5]).to(META)),
     "diffuse_reflectance"),
    ("meta-intensity", lambda: light(intensity=t([1.0, 1.0, 1.0]).to(META)), "intensity"),
    ("meta-envmap", lambda: envmap(torch.ones(4, 8, 3, device=META)), "values"),
    ("meta-rays", lambda: intersect(origins=t([[0.0, 0.0, 3.0]]).to(META)), "origins"),
]


@pytest.mark.parametrize("make,match", [c[1:] for c in TYPE_ERRORS],
                         ids=[c[0] for c in TYPE_ERRORS])
def test_type_errors(make, match):
    with pytest.raises(TypeError, match=match):
        make()


@pytest.mark.parametrize("make,match", [c[1:] for c in VALUE_ERRORS],
                         ids=[c[0] for c in VALUE_ERRORS])
def test_value_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_non_cpu_tensors_message():
    """All tensors on one device that is neither the CPU nor a GPU: refused, naming the argument."""
    with pytest.raises(ValueError, match="on device 'meta': raytrace renders on the CPU or on CUDA GPUs") as e:
        rt.Shape(verts().to(META), idx().to(META), 0)
    assert "vertices" in str(e.value) or "indices" in str(e.value)
    with pytest.raises(ValueError, match="on device 'meta': raytrace renders on the CPU or on CUDA GPUs") as e:
        rt.EnvironmentMap(torch.ones(4, 8, 3, device=META))
    assert "values" in str(e.value)


# ----------------------------------------------------------------------------------------------
# Valid inputs of every accepted form
# ----------------------------------------------------------------------------------------------
# Values exactly representable in float32, so every form gives the same float32 scene.
V = [[-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [1.0, 1.0, 0.0], [-1.0, 1.0, 0.0],
     [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]  # the last two: a degenerate triangle's vertices
I = [[0, 1, 2], [0, 2, 3], [4, 5, 4], [0, 4, 5]]
KD = [0.75, 0.5, 0.25]
LIGHT_V = [[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.0, 0.5, 2.0]]
LIGHT_I = [[0, 2, 1]]  # faces -z, toward the quad
LE = [4.0, 4.0, 2.0]
ENV = np.full((4, 8, 3), 0.25)


def build(form):
    """The same scene with its inputs in one of several accepted forms."""
    if form == "torch32":
        vec = lambda x: torch.tensor(x, dtype=torch.float32)  # noqa: E731
        ind = lambda x: torch.tensor(x, dtype=torch.int64)  # noqa: E731
        rough = torch.tensor([0.25])
    elif form == "lists":
        vec = lambda x: x  # noqa: E731
        ind = lambda x: x  # noqa: E731
        rough = 0.25
    elif form == "numpy64":
        vec = lambda x: np.asarray(x, dtype=np.float64)  # noqa: E731
        ind = lambda x: np.asarray(x, dtype=np.int32)  # noqa: E731
        rough = np.float64(0.25)
    elif form == "torch64_int32":
        vec = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731
        ind = lambda x: torch.tensor(x, dtype=torch.int32)  # noqa: E731
        rough = torch.tensor([0.25], dtype=torch.float64)
    elif form == "torch16_numpy_int64":
        vec = lambda x: torch.tensor(x, dtype=torch.float16)  # noqa: E731
        ind = lambda x: np.asarray(x, dtype=np.int64)  # noqa: E731
        rough = 0.25
    else:
        raise AssertionError(form)
    cam = rt.Camera(vec([0.0, 0.0, 4.0]), vec([0.0, 0.0, 0.0]), vec([0.0, 1.0, 0.0]), fov=45.0,
                    resolution=(12, 16))
    shapes = [rt.Shape(vec(V), ind(I), 0), rt.Shape(vec(LIGHT_V), ind(LIGHT_I), 1)]
    mats = [rt.Material(vec(KD), specular_reflectance=vec([0.25, 0.25, 0.25]), roughness=rough),
            rt.Material(vec([0.0, 0.0, 0.0]))]
    lights = [rt.AreaLight(1, vec(LE))]
    env = rt.EnvironmentMap(vec(ENV.tolist()) if form != "numpy64" else ENV)
    return rt.Scene(camera=cam, shapes=shapes, materials=mats, area_lights=lights, envmap=env)


@pytest.mark.parametrize("form", ["lists", "numpy64", "torch64_int32", "torch16_numpy_int64"])
def test_accepted_input_forms_give_identical_images(form):
    channels = ("radiance", "alpha", "depth", "normal", "albedo", "shape_id")
    ref = rt.render(build("torch32"), spp=4, max_bounces=2, seed=1, channels=channels)
    img = rt.render(build(form), spp=4, max_bounces=2, seed=1, channels=channels)
    assert img.dtype == torch.float32
    assert torch.equal(ref, img)
    assert torch.isfinite(img).all() and ref[..., :3].max() > 0


def test_stored_tensors_are_float32_and_indices_integer():
    s = build("numpy64")
    assert s.shapes[0].vertices.dtype == torch.float32
    assert s.shapes[0].indices.dtype in (torch.int32, torch.int64)
    assert s.materials[0].diffuse_reflectance.dtype == torch.float32


def test_int32_and_int64_indices_intersect_identically():
    o = torch.tensor([[0.25, -0.5, 3.0], [-0.5, 0.25, 3.0], [2.0, 2.0, 3.0]])
    d = torch.tensor([[0.0, 0.0, -1.0]] * 3)
    res = []
    for dt in (torch.int32, torch.int64):
        s = rt.Scene(camera=camera(), shapes=[rt.Shape(verts(), idx(dt), 0)],
                     materials=[material()], area_lights=[])
        res.append(s.intersect(o, d))
    for k in ("t", "shape_id", "triangle_id", "uv"):
        assert torch.equal(res[0][k], res[1][k])
    assert res[0]["shape_id"].tolist() == [0, 0, -1]


def test_scene_with_only_required_arguments_and_python_scalars():
    s = rt.Scene(camera=camera(), shapes=[shape()], materials=[material(roughness=0.3)])
    img = rt.render(s, spp=1)
    assert img.shape == (8, 8, 3)
    # a scene with no lights and no envmap renders black
    assert torch.count_nonzero(img) == 0


def test_degenerate_triangles_render_without_error():
    v = torch.tensor([[-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [1.0, 1.0, 0.0],
                      [0.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1.0, 1.0, 0.0]])
    i = torch.tensor([[0, 1, 2], [3, 4, 5], [3, 3, 3], [0, 0, 1]])
    only_degenerate = rt.Shape(v, torch.tensor([[3, 4, 5], [1, 1, 2]]), 0)
    s = rt.Scene(camera=camera(), shapes=[rt.Shape(v, i, 0), only_degenerate],
                 materials=[material()],
                 area_lights=[rt.AreaLight(1, t([1.0, 1.0, 1.0])), rt.AreaLight(0, t([1.0, 1.0,
                                                                                         1.0]))],
                 envmap=envmap())
    img = rt.render(s, spp=4, max_bounces=2,
                    channels=("radiance", "alpha", "depth", "normal", "albedo", "shape_id"))
    assert torch.isfinite(img).all()
    # the degenerate-only shape is never seen
    assert not (img[..., -1] == 1).any()
