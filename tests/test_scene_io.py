"""Scene files: the OBJ reader, load_scene/save_scene round trips, the shipped scenes, errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import raytrace as rt
from raytrace.io.images import exr_supported, imwrite, srgb_decode, srgb_encode
from raytrace.io.scene_writer import _json_floats
from raytrace.io.obj import ObjWarning
from raytrace.io.scenes import load_obj, load_scene, read_scene, save_scene

SCENES = Path(__file__).resolve().parent.parent / "scenes"
needs_exr = pytest.mark.skipif(not exr_supported(), reason="OpenEXR package not installed")


# ----------------------------------------------------------------------------------------------
# OBJ reader
# ----------------------------------------------------------------------------------------------
OBJ_TEXT = """\
# a unit quad in z = 0 and a triangle, with comments, groups and materials (ignored)
mtllib nothing.mtl
o quad
v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0
vt 0 0
vt 1 0
vt 1 1
vt 0 1
vn 0 0 1
usemtl red
s off
f 1/1/1 2/2/1 3/3/1 4/4/1
o tri
v 2 0 0
v 3 0 0
v 2 \\
  1 0
vt 0.25 0.75
f -3/-1/-1 -2/-1/-1 -1/-1/-1
"""


def test_obj_quads_negative_indices_and_combos(tmp_path):
    path = tmp_path / "mesh.obj"
    path.write_text(OBJ_TEXT)
    with pytest.warns(ObjWarning, match=r"2 groups/materials merged into one mesh: 'quad' \(usemtl 'red'\), 'tri'"):
        mesh = load_obj(path)
    v, i, uv, n = mesh["vertices"], mesh["indices"], mesh["uvs"], mesh["normals"]
    # The quad is fan-triangulated into (0,1,2), (0,2,3); the triangle adds 3 new combos.
    assert v.dtype == torch.float32 and i.dtype == torch.int64
    assert v.shape == (7, 3) and i.shape == (3, 3) and uv.shape == (7, 2) and n.shape == (7, 3)
    assert i.tolist() == [[0, 1, 2], [0, 2, 3], [4, 5, 6]]
    assert v[:4].tolist() == [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]]
    assert v[4:].tolist() == [[2, 0, 0], [3, 0, 0], [2, 1, 0]]  # the continued line read as one
    # OBJ's v points up the image; raytrace's row 0 is v = 0: uv = (u, 1 - v).
    assert uv[:4].tolist() == [[0, 1], [1, 1], [1, 0], [0, 0]]
    assert uv[4:].tolist() == [[0.25, 0.25]] * 3
    assert (n == torch.tensor([0.0, 0.0, 1.0])).all()
    # Geometric normals follow the file's winding (+z here).
    tri = v[i]
    assert (torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])[:, 2] > 0).all()


def test_obj_same_position_different_uv_is_two_vertices(tmp_path):
    path = tmp_path / "seam.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nvt 0.5 0.5\n"
                    "f 1/1 2/2 3/3\nf 1/4 3/3 2/2\nf 1 2 3\n")
    mesh = load_obj(path)
    # combos (1,1), (2,2), (3,3), (1,4) and the three vt-less (1), (2), (3)
    assert mesh["vertices"].shape == (7, 3)
    assert mesh["normals"] is None
    assert mesh["uvs"][4:].tolist() == [[0, 0]] * 3  # faces without vt get uv (0, 0)


@pytest.mark.parametrize("text, message", [
    ("v 0 0 0\nv 1 0 0\nf 1 2 3\n", "line 3: vertex index 3 out of range"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 -4\n", "line 4: vertex index -4 out of range"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n", "line 4: vertex index 0 is invalid"),
    ("v 0 0\n", "line 1: 'v' needs 3 numbers"),
    ("v 0 0 x\n", "line 1: 'v' has a non-number"),
    ("v 0 0 0\nv 1 0 0\nf 1 2\n", "line 3: 'f' needs at least 3 vertices"),
    ("v 0 0 0\n", "no faces"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nvn 0 0 1\nf 1//1 2//1 3//1\nf 1 2 3\n",
     "some faces have normals (line 5) and some do not (line 6)"),
])
def test_obj_errors_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "bad.obj"
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        load_obj(path)
    assert str(path) in str(err.value) and message in str(err.value)


# ----------------------------------------------------------------------------------------------
# Round trips
# ----------------------------------------------------------------------------------------------
def _sphere_arrays(n_lon=12, n_lat=6):
    th = np.linspace(0, np.pi, n_lat + 1)[:, None]
    ph = np.linspace(0, 2 * np.pi, n_lon + 1)[None, :]
    p = np.stack(np.broadcast_arrays(np.sin(th) * np.sin(ph), np.cos(th), np.sin(th) * np.cos(ph)),
                 -1).reshape(-1, 3)
    uv = np.stack(np.broadcast_arrays(ph / (2 * np.pi), th / np.pi), -1).reshape(-1, 2)
    idx = np.arange(p.shape[0]).reshape(n_lat + 1, n_lon + 1)
    tris = []
    for r in range(n_lat):
        for c in range(n_lon):
            tris += [(idx[r, c], idx[r + 1, c], idx[r, c + 1]),
                     (idx[r, c + 1], idx[r + 1, c], idx[r + 1, c + 1])]
    return (torch.tensor(p, dtype=torch.float32), torch.tensor(tris, dtype=torch.int64),
            torch.tensor(uv, dtype=torch.float32), torch.tensor(p, dtype=torch.float32))


def _textured_scene(with_envmap=True):
    """A scene with every feature the format stores: textures, envmap, small and large meshes."""
    g = torch.Generator().manual_seed(7)
    camera = rt.Camera([0.3, 1.1, 4.0], [0.0, 0.2, 0.0], [0.0, 1.0, 0.0], fov=41.3,
                       resolution=(12, 16))
    materials = [
        rt.Material(torch.rand(4, 5, 3, generator=g), specular_reflectance=[0.04, 0.05, 0.06],
                    roughness=torch.rand(3, 2, 1, generator=g) * 0.5 + 0.1),
        rt.Material([0.7, 0.1, 0.1], two_sided=True),
        rt.Material(torch.rand(20, 10, 3, generator=g), specular_reflectance=torch.rand(2, 2, 3, generator=g),
                    roughness=0.3),
        rt.Material([0.0, 0.0, 0.0]),
    ]
    sv, si, suv, sn = _sphere_arrays()  # 91 vertices: larger than the inline limit
    ground_v = torch.tensor([[-3, 0, -3], [3, 0, -3], [3, 0, 3], [-3, 0, 3]], dtype=torch.float32)
    ground_i = torch.tensor([[0, 2, 1], [0, 3, 2]])
    shapes = [
        rt.Shape(ground_v, ground_i, 1,
                 uvs=torch.tensor([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=torch.float32)),
        rt.Shape(sv * 0.7 + torch.tensor([0.0, 0.7, 0.0]), si, 0, uvs=suv, normals=sn),
        rt.Shape(sv * 0.3 + torch.tensor([1.2, 0.3, 0.5]), si, 2, uvs=suv),
        rt.Shape(torch.tensor([[-0.5, 2.5, -0.5], [0.5, 2.5, -0.5], [0.5, 2.5, 0.5],
                               [-0.5, 2.5, 0.5]], dtype=torch.float32), ground_i, 3),
    ]
    lights = [rt.AreaLight(3, [5.0, 4.5, 4.0], two_sided=True)]
    envmap = rt.EnvironmentMap(torch.rand(8, 16, 3, generator=g) * 2.0) if with_envmap else None
    return rt.Scene(camera=camera, shapes=shapes, materials=materials, area_lights=lights,
                    envmap=envmap)


def _assert_same_scene(a, b):
    for name in ("position", "look_at", "up", "fov"):
        assert torch.equal(getattr(a.camera, name), getattr(b.camera, name)), name
    assert a.camera.resolution == b.camera.resolution
    assert a.camera.camera_type == b.camera.camera_type
    assert len(a.materials) == len(b.materials) and len(a.shapes) == len(b.shapes)
    for ma, mb in zip(a.materials, b.materials):
        for name in ("diffuse_reflectance", "specular_reflectance", "roughness"):
            assert torch.equal(getattr(ma, name), getattr(mb, name)), name
        assert ma.two_sided == mb.two_sided
    for sa, sb in zip(a.shapes, b.shapes):
        assert torch.equal(sa.vertices, sb.vertices)
        assert torch.equal(sa.indices.long(), sb.indices.long())
        assert sa.material_id == sb.material_id
        for name in ("uvs", "normals"):
            x, y = getattr(sa, name), getattr(sb, name)
            assert (x is None) == (y is None) and (x is None or torch.equal(x, y)), name
    assert [(l.shape_id, l.two_sided) for l in a.area_lights] == \
        [(l.shape_id, l.two_sided) for l in b.area_lights]
    for la, lb in zip(a.area_lights, b.area_lights):
        assert torch.equal(la.intensity, lb.intensity)
    assert (a.envmap is None) == (b.envmap is None)
    if a.envmap is not None:
        assert torch.equal(a.envmap.values, b.envmap.values)


@pytest.mark.parametrize("inline", [None, True, False])
def test_save_load_round_trip_renders_identically(tmp_path, inline):
    scene = _textured_scene()
    path = tmp_path / "out" / "scene.json"
    save_scene(scene, path, render={"spp": 3, "max_bounces": 2}, inline=inline)
    files = sorted(p.name for p in (tmp_path / "out").rglob("*") if p.is_file())
    if inline is True:
        assert files == ["scene.json"]
    else:
        assert "shape_1.npz" in files  # the 91-vertex sphere goes to a file
    loaded, settings = read_scene(path)
    assert settings == {"spp": 3, "max_bounces": 2}
    _assert_same_scene(scene, loaded)
    a = rt.render(scene, spp=2, max_bounces=2, seed=5)
    b = rt.render(loaded, spp=2, max_bounces=2, seed=5)
    assert torch.equal(a, b)
    # Saving the loaded scene again gives the same JSON text.
    save_scene(loaded, tmp_path / "again" / "scene.json", render=settings, inline=inline)
    assert (tmp_path / "again" / "scene.json").read_text() == path.read_text()


def test_round_trip_without_envmap_and_folder_argument(tmp_path):
    scene = _textured_scene(with_envmap=False)
    save_scene(scene, tmp_path / "scene.json")
    loaded = load_scene(tmp_path)  # a folder holding scene.json
    assert loaded.envmap is None
    _assert_same_scene(scene, loaded)


def test_float32_values_written_exactly():
    values = np.random.default_rng(0).standard_normal(2000).astype(np.float32) \
        * np.float32(10.0) ** np.random.default_rng(1).integers(-30, 30, 2000).astype(np.float32)
    values = np.concatenate([values, np.float32([0.0, -0.0, 1e-45, 3.4e38, 0.1, 1 / 3])])
    text = json.dumps(_json_floats(values))
    back = np.array(json.loads(text), dtype=np.float32)
    assert np.array_equal(back.view(np.uint32), values.view(np.uint32))
    assert json.dumps(_json_floats(np.float32([0.1, 0.5, 17.25]))) == "[0.1, 0.5, 17.25]"


# ----------------------------------------------------------------------------------------------
# Files the loader reads: OBJ and NPZ meshes, transforms, PNG/EXR/NPY textures
# ----------------------------------------------------------------------------------------------
def _write(path: Path, doc) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=1))
    return path


def _base_doc(**extra):
    doc = {
        "version": 1,
        "camera": {"position": [0, 0, 3], "look_at": [0, 0, 0], "up": [0, 1, 0], "fov": 40,
                   "resolution": [6, 8]},
        "materials": [{"diffuse": [0.5, 0.5, 0.5]}],
        "shapes": [{"mesh": {"vertices": [[-1, -1, 0], [1, -1, 0], [0, 1, 0]],
                             "indices": [[0, 1, 2]]}, "material": 0}],
    }
    doc.update(extra)
    return doc


def test_load_obj_npz_transform_and_textures(tmp_path):
    (tmp_path / "quad.obj").write_text(OBJ_TEXT)
    sv, si, suv, sn = _sphere_arrays()
    np.savez(tmp_path / "sphere.npz", vertices=sv.numpy(), indices=si.numpy().astype(np.int32),
             uvs=suv.numpy(), normals=sn.numpy())
    tex = np.random.default_rng(3).random((4, 6, 3)).astype(np.float32)
    imwrite(tex, tmp_path / "tex.png")
    np.save(tmp_path / "rough.npy", np.full((2, 2), 0.25, np.float32))
    doc = _base_doc(
        materials=[{"name": "tex", "diffuse": {"texture": "tex.png"},
                    "roughness": {"texture": "rough.npy"}},
                   {"name": "plain", "diffuse": [[[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]],
                    "specular": [0.1, 0.1, 0.1], "roughness": [0.2], "two_sided": True}],
        shapes=[{"mesh": {"path": "quad.obj"}, "material": "tex"},
                {"mesh": {"path": "sphere.npz",
                          "transform": {"scale": [2, 2, 2], "rotate": [0, 1, 0, 90],
                                        "translate": [1, 2, 3]}}, "material": 1},
                {"mesh": {"path": "sphere.npz",
                          "transform": {"matrix": [[-1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0],
                                                   [0, 0, 0, 1]]}},
                 "material": "plain", "emission": {"intensity": [1, 2, 3]}}],
        envmap={"constant": [0.1, 0.2, 0.3], "scale": 2.0},
        render={"spp": 4})
    scene, settings = read_scene(_write(tmp_path / "scene.json", doc), resolution=(3, 5))
    assert settings == {"spp": 4}
    assert scene.camera.resolution == (3, 5)
    assert [s.material_id for s in scene.shapes] == [0, 1, 1]
    assert scene.shapes[0].vertices.shape == (7, 3)
    # PNG colour textures are decoded from sRGB to linear: within one 8-bit step.
    diffuse = scene.materials[0].diffuse_reflectance
    assert diffuse.shape == (4, 6, 3)
    assert (diffuse - torch.from_numpy(tex)).abs().max() < 0.01
    expected = srgb_decode(np.rint(np.clip(srgb_encode(tex), 0, 1) * 255) / 255)
    assert np.allclose(diffuse.numpy(), expected, atol=1e-6)
    assert torch.equal(scene.materials[0].roughness, torch.full((2, 2, 1), 0.25))
    assert scene.materials[1].diffuse_reflectance.shape == (1, 2, 3)
    # Transform: scale 2, rotate +90 degrees about y (x -> -z), then translate.
    moved = scene.shapes[1].vertices.double()
    expect = torch.stack([sv[:, 2] * 2, sv[:, 1] * 2, -sv[:, 0] * 2], 1).double() \
        + torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    assert torch.allclose(moved, expect, atol=1e-5)
    rot_n = scene.shapes[1].normals.double()
    assert torch.allclose(rot_n, torch.stack([sn[:, 2], sn[:, 1], -sn[:, 0]], 1).double(), atol=1e-5)
    # A mirror keeps triangles facing outward by swapping the winding.
    assert torch.equal(scene.shapes[2].indices[:, 0], si[:, 0])
    assert torch.equal(scene.shapes[2].indices[:, 1], si[:, 2])
    assert scene.area_lights[0].shape_id == 2
    assert torch.allclose(scene.envmap.values, torch.tensor([0.2, 0.4, 0.6]).reshape(1, 1, 3))
    img = rt.render(scene, spp=1, max_bounces=1)
    assert img.shape == (3, 5, 3) and torch.isfinite(img).all()


@needs_exr
def test_load_exr_envmap_and_texture(tmp_path):
    env = (np.random.default_rng(4).random((8, 16, 3)) * 50).astype(np.float32)
    imwrite(env, tmp_path / "env.exr")
    imwrite(env[:2, :3], tmp_path / "tex.exr")
    doc = _base_doc(envmap={"path": "env.exr"},
                    materials=[{"diffuse": {"texture": "tex.exr"}}])
    scene = load_scene(_write(tmp_path / "scene.json", doc))
    assert torch.equal(scene.envmap.values, torch.from_numpy(env))  # EXR is stored exactly
    assert torch.equal(scene.materials[0].diffuse_reflectance, torch.from_numpy(env[:2, :3]))


# ----------------------------------------------------------------------------------------------
# The shipped scenes
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cornell_box", "sphere_light", "envmap_spheres"])
def test_shipped_scene_loads_and_renders(name):
    if name == "envmap_spheres" and not exr_supported():
        pytest.skip("envmap_spheres stores its sky as EXR; OpenEXR not installed")
    scene, settings = read_scene(SCENES / name, resolution=(8, 8))
    assert set(settings) == {"spp", "max_bounces"}
    img = rt.render(scene, spp=2, max_bounces=settings["max_bounces"], seed=0)
    assert img.shape == (8, 8, 3)
    assert torch.isfinite(img).all() and (img >= 0).all() and img.mean() > 0.01


def test_cornell_box_layout():
    """Red wall on the image's left, green on its right, the light in the top centre."""
    scene = load_scene(SCENES / "cornell_box" / "scene.json")
    assert scene.camera.resolution == (256, 256)
    assert abs(float(scene.camera.fov) - 39.3076) < 1e-3
    scene.camera = rt.Camera(scene.camera.position, scene.camera.look_at, scene.camera.up,
                             fov=scene.camera.fov, resolution=(16, 16))
    img = rt.render(scene, spp=4, max_bounces=1, seed=0)
    left, right = img[6:10, 1].mean(0), img[6:10, 14].mean(0)
    assert left[0] > 3 * left[1] and right[1] > 2 * right[0]
    ids = rt.render(scene, spp=1, channels=("shape_id",))[..., 0]
    names = [s["name"] for s in json.loads(
        (SCENES / "cornell_box" / "scene.json").read_text())["shapes"]]
    assert [names[int(i)] for i in ids[2, 7:9]] == ["light", "light"]  # top centre
    assert names[int(ids[0, 8])] == "ceiling" and names[int(ids[15, 8])] == "floor"
    brightest = int(img.mean(-1).argmax())
    assert divmod(brightest, 16) in [(2, 7), (2, 8)]


def test_sphere_light_is_the_benchmark_reference_scene():
    """scenes/sphere_light is written from benchmarks/scenes.py reference_scene(): same scene."""
    import importlib.util  # noqa: PLC0415

    spec = importlib.util.spec_from_file_location(
        "bench_scenes", SCENES.parent / "benchmarks" / "scenes.py")
    if spec is None or not (SCENES.parent / "benchmarks" / "scenes.py").is_file():
        pytest.skip("benchmarks/scenes.py not present")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    reference = module.reference_scene(resolution=(8, 8))
    shipped, _ = read_scene(SCENES / "sphere_light", resolution=(8, 8))
    _assert_same_scene(reference, shipped)


def test_shipped_scenes_are_small():
    total = sum(p.stat().st_size for p in SCENES.rglob("*") if p.is_file())
    assert total < 2 * 1024 * 1024


# ----------------------------------------------------------------------------------------------
# Errors name the file and the JSON entry
# ----------------------------------------------------------------------------------------------
def _error(path) -> str:
    with pytest.raises(ValueError) as err:
        load_scene(path)
    return str(err.value)


def test_missing_file_and_folder(tmp_path):
    assert _error(tmp_path / "nope.json") == f"{tmp_path / 'nope.json'}: no such file or folder"
    assert _error(tmp_path) == f"{tmp_path}: folder has no scene.json"


def test_malformed_json(tmp_path):
    path = _write(tmp_path / "scene.json", '{"version": 1,\n "camera": }')
    msg = _error(path)
    assert msg.startswith(f"{path}: malformed JSON:") and "line 2" in msg


@pytest.mark.parametrize("edit, where, message", [
    (lambda d: d.pop("camera"), "", "missing key 'camera'"),
    (lambda d: d.update(version=2), "version", "unsupported version 2"),
    (lambda d: d.update(colour=1), "", "unknown key 'colour'"),
    (lambda d: d["camera"].pop("up"), "camera", "missing key 'up'"),
    (lambda d: d["camera"].update(resolution=[0, 3]), "camera.resolution", "[height, width]"),
    (lambda d: d["camera"].update(fov=200), "camera", "fov must be in (0, 180)"),
    (lambda d: d["camera"].update(type="fisheye"), "camera", "camera_type"),
    (lambda d: d["materials"][0].update(diffuse=[1, 2]), "materials[0].diffuse",
     "list of 3 finite numbers"),
    (lambda d: d["materials"][0].update(diffuse=[-1, 0, 0]), "materials[0]", "diffuse_reflectance"),
    (lambda d: d["materials"][0].update(roughness=0), "materials[0]", "roughness"),
    (lambda d: d["materials"][0].update(shiny=True), "materials[0]", "unknown key 'shiny'"),
    (lambda d: d["materials"][0].update(diffuse={"texture": "gone.png"}),
     "materials[0].diffuse.texture", "'gone.png': no such file"),
    (lambda d: d["materials"][0].update(diffuse={"texture": "x.bmp"}),
     "materials[0].diffuse.texture", "unsupported extension '.bmp'"),
    (lambda d: d["shapes"].extend([d["shapes"][0], dict(d["shapes"][0], material=5)]),
     "shapes[2].material", "index 5 out of range (1 materials)"),
    (lambda d: d["shapes"][0].update(material="steel"), "shapes[0].material",
     "no material named 'steel'"),
    (lambda d: d["materials"].extend([{"name": "a", "diffuse": [0, 0, 0]}] * 2),
     "materials[2].name", "duplicate name 'a' (also materials[1])"),
    (lambda d: d["shapes"][0].update(materail=0), "shapes[0]", "unknown key 'materail'"),
    (lambda d: d["shapes"][0]["mesh"].update(indices=[[0, 1, 3]]), "shapes[0].mesh",
     "indices"),
    (lambda d: d["shapes"][0]["mesh"].update(indices=[[0, 1]]), "shapes[0].mesh.indices",
     "list of [i, j, k] triangles"),
    (lambda d: d["shapes"][0]["mesh"].update(vertices=[[0, 0, "a"]]), "shapes[0].mesh.vertices",
     "nested list of numbers"),
    (lambda d: d["shapes"][0].update(mesh={"path": "gone.obj"}), "shapes[0].mesh.path",
     "'gone.obj': no such file"),
    (lambda d: d["shapes"][0]["mesh"].update(transform={"scale": 0}),
     "shapes[0].mesh.transform", "singular"),
    (lambda d: d["shapes"][0].update(emission={"intensity": [1, 1, 1], "sides": 2}),
     "shapes[0].emission", "unknown key 'sides'"),
    (lambda d: d["shapes"][0].update(emission={"intensity": [-1, 1, 1]}),
     "shapes[0].emission", "intensity"),
    (lambda d: d.update(envmap={"constant": [1, 1, 1], "values": [[[1, 1, 1]]]}), "envmap",
     "exactly one of"),
    (lambda d: d.update(envmap={"values": [[1, 1, 1]]}), "envmap.values", "[h, w, 3]"),
    (lambda d: d.update(render={"spp": 0}), "render.spp", "must be >= 1"),
    (lambda d: d.update(render={"bounces": 3}), "render", "unknown key 'bounces'"),
])
def test_bad_entries_name_file_and_json_path(tmp_path, edit, where, message):
    doc = _base_doc()
    edit(doc)
    path = _write(tmp_path / "scene.json", doc)
    msg = _error(path)
    prefix = f"{path}: {where}: " if where else f"{path}: "
    assert msg.startswith(prefix), msg
    assert message in msg, msg


def test_bad_obj_inside_scene_names_both_files(tmp_path):
    (tmp_path / "bad.obj").write_text("v 0 0 0\nf 1 2 3\n")
    path = _write(tmp_path / "scene.json",
                  _base_doc(shapes=[{"mesh": {"path": "bad.obj"}, "material": 0}]))
    msg = _error(path)
    assert msg.startswith(f"{path}: shapes[0].mesh.path: ") and "bad.obj: line 2" in msg


def test_save_scene_rejects_non_json_path(tmp_path):
    with pytest.raises(ValueError, match="must end in .json"):
        save_scene(_textured_scene(), tmp_path / "scene.txt")
