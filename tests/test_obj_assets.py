"""OBJ files the way users have them: groups, usemtl and .mtl materials with textures, separate
position / uv / normal indices, smooth normals without seams, and rt.save_obj round trips."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import raytrace as rt
from raytrace.io.obj import ObjWarning


def caught(fn, *args, **kwargs):
    """(result, [warning messages]) of fn(*args, **kwargs)."""
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, [str(w.message) for w in ws if issubclass(w.category, ObjWarning)]


ROOM_OBJ = """# two groups, three materials, textures
mtllib room.mtl
v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0
v 0 0 1
v 1 0 1
vt 0 0
vt 1 0
vt 1 1
vt 0 1
g floor
usemtl tiles
f 1/1 2/2 3/3 4/4
g wall
usemtl plain
f 1/1 5/4 6/3
f 1/1 6/3 2/2
g lamp
usemtl glow
f 5 6 3
g floor
usemtl tiles
f 3/3 4/4 5/1
"""

ROOM_MTL = """newmtl tiles
Ka 1 1 1
Kd 0.2 0.2 0.2
Ks 0.04 0.05 0.06
Ns 98
illum 2
map_Kd -s 1 1 1 textures/tiles.png
map_Bump bump.png

newmtl plain
Ka 0 0 0
Kd 0.7
Ns 0

newmtl glow
Kd 0 0 0
Ke 4 3 2
"""


def write_room(tmp_path):
    (tmp_path / "room.obj").write_text(ROOM_OBJ)
    (tmp_path / "room.mtl").write_text(ROOM_MTL)
    texture = torch.linspace(0, 1, 2 * 4 * 3).reshape(2, 4, 3)
    rt.imwrite(texture, tmp_path / "textures" / "tiles.png")
    rt.imwrite(torch.full((2, 2), 0.5), tmp_path / "bump.png")
    return tmp_path / "room.obj", rt.imread(tmp_path / "textures" / "tiles.png")


# ------------------------------------------------------------------------------------------------
# Groups and materials
# ------------------------------------------------------------------------------------------------
def test_groups_and_usemtl_load_as_objects_with_their_materials(tmp_path):
    path, texture = write_room(tmp_path)
    objects, warned = caught(rt.load_obj, path, return_objects=True)
    # One object per (group, material), in order of first appearance; the second 'floor' block
    # joins the first.
    assert [(o.name, o.material_name) for o in objects] == [("floor", "tiles"), ("wall", "plain"),
                                                            ("lamp", "glow")]
    floor, wall, lamp = objects
    assert floor.indices.shape == (3, 3) and wall.indices.shape == (2, 3) and lamp.indices.shape == (1, 3)
    assert floor.vertices.shape == (5, 3)  # positions 1-5, each with one uv
    assert lamp.uvs is None and floor.uvs is not None
    # Kd (replaced by map_Kd), Ks, Ns -> roughness = sqrt(2 / (Ns + 2)), Ke.
    assert torch.equal(floor.material.diffuse_reflectance, texture)
    assert torch.allclose(floor.material.specular_reflectance, torch.tensor([0.04, 0.05, 0.06]))
    assert float(floor.material.roughness) == pytest.approx(math.sqrt(2 / 100))
    assert torch.allclose(wall.material.diffuse_reflectance, torch.tensor([0.7] * 3))  # one number: grey
    assert float(wall.material.roughness) == pytest.approx(1.0)
    assert floor.emission is None and wall.emission is None
    assert torch.equal(lamp.emission, torch.tensor([4.0, 3.0, 2.0]))
    assert floor.textures["map_Kd"].endswith("tiles.png") and floor.textures["map_Bump"].endswith("bump.png")
    # Warnings: each unsupported key once (Ka twice in the file), the texture option, the bump map.
    assert sum("'Ka' is not supported" in w for w in warned) == 1
    assert sum("'illum' is not supported" in w for w in warned) == 1
    assert any("map_Kd options -s 1 1 1" in w for w in warned)
    assert any("map_Bump 'bump.png' of material 'tiles' is ignored" in w and "room.mtl: line 8" in w
               for w in warned)
    assert len(warned) == 4, warned

    shapes, materials, lights = parts = rt.io.scene_parts(objects)
    assert len(shapes) == 3 and len(materials) == 3 and [s.material_id for s in shapes] == [0, 1, 2]
    assert len(lights) == 1 and lights[0].shape_id == 2
    camera = rt.Camera([0.5, 0.5, 4], [0.5, 0.5, 0.5], [0, 1, 0], fov=40, resolution=(8, 8))
    image = rt.render(rt.Scene(camera, *parts), spp=4, max_bounces=1, seed=0, threads=1)
    assert torch.isfinite(image).all() and float(image.max()) > 0
    # Offsets when appended to other shapes and materials.
    more = rt.io.scene_parts(objects, shape_offset=5, material_offset=2)
    assert more.area_lights[0].shape_id == 7 and more.shapes[0].material_id == 2


def test_default_load_merges_with_a_warning_naming_what(tmp_path):
    path, _ = write_room(tmp_path)
    mesh, warned = caught(rt.load_obj, path)
    assert set(mesh) == {"vertices", "indices", "uvs", "normals"}
    assert mesh["indices"].shape == (6, 3) and mesh["normals"] is None  # as before: nothing computed
    assert len(warned) == 1
    assert "3 groups/materials merged into one mesh: 'floor' (usemtl 'tiles'), 'wall' (usemtl " \
           "'plain'), 'lamp' (usemtl 'glow')" in warned[0] and "return_objects=True" in warned[0]
    # load_mesh warns the same; a Mitsuba scene's obj shape (Mitsuba ignores materials) does not.
    _, warned = caught(rt.load_mesh, path)
    assert len(warned) == 1 and "merged" in warned[0]
    # One material: said too; a plain file: silent.
    (tmp_path / "one.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nusemtl red\nf 1 2 3\n")
    _, warned = caught(rt.load_obj, tmp_path / "one.obj")
    assert len(warned) == 1 and "material 'red' (usemtl) is not read" in warned[0]
    (tmp_path / "plain.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\ng only\nf 1 2 3\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rt.load_obj(tmp_path / "plain.obj")


def test_missing_files_and_unknown_materials_warn_and_fall_back(tmp_path):
    (tmp_path / "a.obj").write_text("mtllib missing.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nusemtl red\nf 1 2 3\n")
    objects, warned = caught(rt.load_obj, tmp_path / "a.obj", return_objects=True)
    assert any("mtllib 'missing.mtl' not found" in w for w in warned)
    assert any("line 5: material 'red' is not defined" in w for w in warned)
    assert torch.allclose(objects[0].material.diffuse_reflectance, torch.tensor([0.5] * 3))
    (tmp_path / "b.mtl").write_text("newmtl red\nKd 1 0 0\nmap_Kd nothere.png\nmap_Ks tex.gif\n")
    (tmp_path / "tex.gif").write_bytes(b"GIF89a")
    (tmp_path / "b.obj").write_text("mtllib b.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nusemtl red\nf 1 2 3\n")
    objects, warned = caught(rt.load_obj, tmp_path / "b.obj", return_objects=True)
    assert any("map_Kd 'nothere.png' not found" in w for w in warned)
    assert any("image format '.gif' is not supported" in w for w in warned)
    assert torch.equal(objects[0].material.diffuse_reflectance, torch.tensor([1.0, 0, 0]))


def test_mtl_and_texture_paths_follow_the_path_rule(tmp_path):
    inner = tmp_path / "model"
    inner.mkdir()
    rt.imwrite(torch.full((2, 2, 3), 0.5), tmp_path / "outside.png")
    (tmp_path / "outside.mtl").write_text("newmtl m\nKd 1 1 1\n")
    (inner / "a.obj").write_text("mtllib ../outside.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nusemtl m\nf 1 2 3\n")
    with pytest.raises(ValueError, match=r"a\.obj: line 1: mtllib: '\.\./outside\.mtl' resolves to .*outside"):
        rt.load_obj(inner / "a.obj", return_objects=True)
    _, warned = caught(rt.load_obj, inner / "a.obj")  # the single mesh does not read the .mtl
    assert "material 'm' (usemtl) is not read" in warned[0]
    objects = rt.load_obj(inner / "a.obj", return_objects=True, allowed_paths=[tmp_path])
    assert torch.equal(objects[0].material.diffuse_reflectance, torch.ones(3))
    (inner / "b.mtl").write_text("newmtl m\nmap_Kd ..\\outside.png\n")  # a Windows-style name
    (inner / "b.obj").write_text("mtllib b.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nusemtl m\nf 1 2 3\n")
    with pytest.raises(ValueError, match=r"b\.mtl: line 2: map_Kd: .*outside"):
        rt.load_obj(inner / "b.obj", return_objects=True)
    objects = rt.load_obj(inner / "b.obj", return_objects=True, allow_any_path=True)
    assert objects[0].material.diffuse_reflectance.shape == (2, 2, 3)
    # Texture sizes count against the load's limits.
    with pytest.raises(ValueError, match="max_image_pixels"):
        rt.load_obj(inner / "b.obj", return_objects=True, allow_any_path=True,
                    limits=rt.io.Limits(max_image_pixels=3))


@pytest.mark.parametrize("mtl, message", [
    ("Kd 1 1 1\n", "line 1: 'Kd' before any 'newmtl'"),
    ("newmtl m\nKd 1 x 1\n", "line 2: 'Kd' has a non-number"),
    ("newmtl m\nKd -1 0 0\n", "line 2: 'Kd' must be >= 0"),
    ("newmtl m\nNs -5\n", "line 2: 'Ns' must be >= 0"),
    ("newmtl m\nmap_Kd -s 1 1 1\n", "line 2: 'map_Kd' needs a file name after its options"),
])
def test_mtl_errors_name_file_and_line(tmp_path, mtl, message):
    (tmp_path / "m.mtl").write_text(mtl)
    (tmp_path / "a.obj").write_text("mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nusemtl m\nf 1 2 3\n")
    with pytest.raises(ValueError) as err:
        rt.load_obj(tmp_path / "a.obj", return_objects=True)
    assert "m.mtl" in str(err.value) and message in str(err.value)


# ------------------------------------------------------------------------------------------------
# Separate position / uv / normal indices
# ------------------------------------------------------------------------------------------------
def cylinder_obj(segments=12, rings=3):
    """An open cylinder whose uv seam duplicates the texture coordinates (not the positions)
    of one column: positions are shared all round, vt has segments + 1 columns."""
    lines = []
    for r in range(rings + 1):
        for s in range(segments):
            a = 2 * math.pi * s / segments
            lines.append(f"v {math.cos(a):.9g} {r / rings:.9g} {-math.sin(a):.9g}")
    for r in range(rings + 1):
        for s in range(segments + 1):
            lines.append(f"vt {s / segments:.9g} {r / rings:.9g}")
    for r in range(rings):
        for s in range(segments):
            p = [r * segments + s, r * segments + (s + 1) % segments,
                 (r + 1) * segments + (s + 1) % segments, (r + 1) * segments + s]
            t = [r * (segments + 1) + s, r * (segments + 1) + s + 1,
                 (r + 1) * (segments + 1) + s + 1, (r + 1) * (segments + 1) + s]
            lines.append("f " + " ".join(f"{pi + 1}/{ti + 1}" for pi, ti in zip(p, t)))
    return "\n".join(lines) + "\n"


def welded_cylinder(path):
    """The file's positions and its faces on position indices (fan-triangulated)."""
    positions, faces = [], []
    for line in path.read_text().splitlines():
        if line.startswith("v "):
            positions.append([float(x) for x in line.split()[1:]])
        elif line.startswith("f "):
            p = [int(c.split("/")[0]) - 1 for c in line.split()[1:]]
            faces += [[p[0], p[k], p[k + 1]] for k in range(1, len(p) - 1)]
    return torch.tensor(positions, dtype=torch.float32), torch.tensor(faces)


def angle_deg(a, b):
    """Angles between rows, accurate near 0 (atan2 of the sine and cosine, not acos)."""
    a, b = a.double(), b.double()
    return torch.rad2deg(torch.atan2(torch.linalg.cross(a, b, dim=-1).norm(dim=-1), (a * b).sum(-1)))


def test_vertices_split_only_at_the_uv_seam_and_normals_have_no_seam(tmp_path):
    segments, rings = 12, 3
    (tmp_path / "cyl.obj").write_text(cylinder_obj(segments, rings))
    mesh = rt.load_obj(tmp_path / "cyl.obj", compute_normals=True)
    # Split only where the (position, uv) pairs differ: the seam column is doubled.
    assert mesh["vertices"].shape == ((segments + 1) * (rings + 1), 3)
    v, n = mesh["vertices"], mesh["normals"]
    # The copies of each seam position get the same normal, the one of the welded mesh.
    welded = rt.vertex_normals(v.double(), mesh["indices"])  # the split mesh: seams
    same = (v[:, None, :] == v[None, :, :]).all(-1) & ~torch.eye(len(v), dtype=torch.bool)
    i, j = same.nonzero(as_tuple=True)
    assert len(i) == 2 * (rings + 1)
    assert torch.equal(n[i], n[j])
    # They are rt.vertex_normals of the welded mesh (positions indexed as in the file).
    positions, faces = welded_cylinder(tmp_path / "cyl.obj")
    reference = rt.vertex_normals(positions.double(), faces)
    match = (v[:, None, :] == positions[None, :, :]).all(-1).float().argmax(dim=1)
    assert torch.equal(positions[match], v)
    assert float(angle_deg(n.double(), reference[match]).max()) < 1e-4
    # Close to radial (the fan triangulation weighs the two sides of a boundary vertex unequally).
    radial = torch.nn.functional.normalize(v * torch.tensor([1.0, 0.0, 1.0]), dim=1)
    assert float(angle_deg(n.double(), radial.double()).max()) < 6
    # Computing normals after the split instead leaves seams (the reported bug: one segment's
    # angle, 360 / 12 degrees here).
    assert float(angle_deg(welded[i], welded[j]).max()) > 29
    # The same with return_objects (where compute_normals is the default).
    obj = rt.load_obj(tmp_path / "cyl.obj", return_objects=True)[0]
    assert torch.equal(obj.normals, n) and torch.equal(obj.vertices, v)


def test_file_normals_uvs_and_positions_indexed_separately(tmp_path):
    # A quad whose four corners share one normal index and use their own vt indices, in a
    # different order from the positions.
    (tmp_path / "q.obj").write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 1\nvt 0 0\nvt 1 0\n"
                                    "vt 1 1\nvn 0 0 1\nf 1/2/1 2/3/1 3/4/1 4/1/1\n")
    mesh = rt.load_obj(tmp_path / "q.obj")
    assert mesh["vertices"].shape == (4, 3)
    assert mesh["uvs"].tolist() == [[0, 1], [1, 1], [1, 0], [0, 0]]
    assert (mesh["normals"] == torch.tensor([0.0, 0, 1])).all()


def test_smoothing_groups_and_mixed_normals(tmp_path):
    # Two triangles folded 90 degrees along the edge 1-2: smooth ('s 1'), flat ('s off'), and
    # smoothing group 1 / 2 (no smoothing across groups).
    base = "v 0 0 0\nv 1 0 0\nv 0 0 -1\nv 0 1 0\n"
    cases = {"s 1\nf 1 2 3\nf 2 1 4\n": "smooth", "s off\nf 1 2 3\nf 2 1 4\n": "flat",
             "s 1\nf 1 2 3\ns 2\nf 2 1 4\n": "flat", "f 1 2 3\nf 2 1 4\n": "smooth"}
    for body, kind in cases.items():
        (tmp_path / "fold.obj").write_text(base + body)
        mesh = rt.load_obj(tmp_path / "fold.obj", compute_normals=True)
        if kind == "smooth":
            assert mesh["vertices"].shape == (4, 3), body
            assert torch.allclose(mesh["normals"][0], torch.tensor([0.0, 1, -1]) / math.sqrt(2)), body
        else:  # the shared edge's positions are split: each face keeps its own normal
            assert mesh["vertices"].shape == (6, 3), body
            f = mesh["indices"]
            assert (mesh["normals"][f[0]] == torch.tensor([0.0, 1, 0])).all(), body
            assert (mesh["normals"][f[1]] == torch.tensor([0.0, 0, -1])).all(), body
    # Faces with and without vn: an error unless normals are computed for the others.
    (tmp_path / "mixed.obj").write_text(base + "vn 0 1 0\nf 1//1 2//1 3//1\nf 2 1 4\n")
    with pytest.raises(ValueError, match=r"some faces have normals \(line 6\) and some do not \(line 7\)"):
        rt.load_obj(tmp_path / "mixed.obj")
    mesh = rt.load_obj(tmp_path / "mixed.obj", compute_normals=True)
    assert mesh["normals"] is not None and torch.isfinite(mesh["normals"]).all()
    with pytest.raises(TypeError, match="compute_normals must be a bool"):
        rt.load_obj(tmp_path / "mixed.obj", compute_normals=1)
    with pytest.raises(TypeError, match="return_objects must be a bool"):
        rt.load_obj(tmp_path / "mixed.obj", return_objects="yes")
    with pytest.raises(ValueError, match="line 5: bad smoothing group 'x'"):
        (tmp_path / "bad.obj").write_text(base + "s x\nf 1 2 3\n")
        rt.load_obj(tmp_path / "bad.obj")


# ------------------------------------------------------------------------------------------------
# rt.save_obj
# ------------------------------------------------------------------------------------------------
def test_save_obj_round_trips_a_scene_with_textures_and_lights(tmp_path):
    g = torch.Generator().manual_seed(0)
    sphere = rt.uv_sphere(rings=8, segments=12)
    quad_v = torch.tensor([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=torch.float32) * 0.3
    quad_f = torch.tensor([[0, 1, 2], [0, 2, 3]])
    texture = torch.rand(3, 5, 3, generator=g)
    materials = [rt.Material(texture, specular_reflectance=[0.1, 0.2, 0.3], roughness=0.25),
                 rt.Material([0.0, 0.0, 0.0])]
    shapes = [rt.Shape(sphere.vertices, sphere.indices, 0, uvs=sphere.uvs, normals=sphere.normals),
              rt.Shape(quad_v + 2, quad_f, 1),
              rt.Shape(quad_v - 2, quad_f, 0, uvs=torch.rand(4, 2, generator=g))]
    lights = [rt.AreaLight(1, [3.0, 2.0, 1.0])]
    camera = rt.Camera([0, 0, 5], [0, 0, 0], [0, 1, 0], fov=60, resolution=(4, 4))
    scene = rt.Scene(camera, shapes, materials, lights)
    rt.save_obj(tmp_path / "out" / "scene.obj", scene)
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["scene.mtl", "scene.obj", "scene_material_0_Kd.png"]
    objects = rt.load_obj(tmp_path / "out" / "scene.obj", return_objects=True)
    assert [o.name for o in objects] == ["shape_0", "shape_1", "shape_2"]
    for obj, shape in zip(objects, shapes):
        # Each triangle's corners, bit for bit (vertices are renumbered in order of first use).
        assert torch.equal(obj.vertices[obj.indices], shape.vertices[shape.indices])
        if shape.uvs is not None:
            assert torch.allclose(obj.uvs[obj.indices], shape.uvs[shape.indices], atol=1e-7)
    assert torch.equal(objects[0].normals[objects[0].indices], shapes[0].normals[shapes[0].indices])
    assert objects[0].material is objects[2].material  # shared, as in the scene
    m = objects[0].material
    assert (m.diffuse_reflectance - texture).abs().max() < 0.01  # 8-bit sRGB
    assert torch.allclose(m.specular_reflectance, torch.tensor([0.1, 0.2, 0.3]))
    assert float(m.roughness) == pytest.approx(0.25, rel=1e-6)  # Ns = 2 / r^2 - 2 and back
    assert torch.equal(objects[1].emission, torch.tensor([3.0, 2.0, 1.0])) and objects[0].emission is None
    parts = rt.io.scene_parts(objects)
    assert len(parts.materials) == 2 and parts.area_lights[0].shape_id == 1


def test_save_obj_mesh_dict_and_objects_round_trip(tmp_path):
    (tmp_path / "cyl.obj").write_text(cylinder_obj(6, 2))
    mesh = rt.load_obj(tmp_path / "cyl.obj", compute_normals=True)
    rt.save_obj(tmp_path / "copy.obj", mesh)
    assert not (tmp_path / "copy.mtl").exists()
    back = rt.load_obj(tmp_path / "copy.obj")
    assert torch.equal(back["vertices"], mesh["vertices"]) and torch.equal(back["indices"], mesh["indices"])
    assert torch.equal(back["normals"], mesh["normals"])
    assert torch.allclose(back["uvs"], mesh["uvs"], atol=1e-7)
    path, _ = write_room(tmp_path)
    objects, _ = caught(rt.load_obj, path, return_objects=True)
    rt.save_obj(tmp_path / "room2.obj", objects)
    again, warned = caught(rt.load_obj, tmp_path / "room2.obj", return_objects=True)
    assert warned == []
    assert [(o.name, o.material_name) for o in again] == [("floor", "tiles"), ("wall", "plain"),
                                                          ("lamp", "glow")]
    assert torch.equal(again[2].emission, objects[2].emission)
    assert torch.allclose(again[0].material.diffuse_reflectance, objects[0].material.diffuse_reflectance,
                          atol=1e-6)  # the 8-bit texture survives exactly


@pytest.mark.parametrize("args, error, message", [
    (([],), ValueError, "shapes is empty"),
    (({"vertices": torch.zeros(3, 3)},), ValueError, "has no 'indices'"),
    (("not a mesh",), TypeError, "shapes[0] must be an rt.Shape"),
    (({"vertices": torch.zeros(3, 3), "indices": torch.tensor([[0, 1, 3]])},), ValueError, "values in [0, 3)"),
    ((rt.Shape(torch.eye(3), torch.tensor([[0, 1, 2]]), 2), [rt.Material([1.0, 1, 1])]), ValueError,
     "material_id 2 is out of range"),
    ((rt.Shape(torch.eye(3), torch.tensor([[0, 1, 2]]), 0), rt.Material([1.0, 1, 1])), TypeError,
     "materials must be a list"),
])
def test_save_obj_errors_name_the_argument(tmp_path, args, error, message):
    with pytest.raises(error) as err:
        rt.save_obj(tmp_path / "x.obj", *args)
    assert message in str(err.value)
    assert not (tmp_path / "x.obj").exists()
