"""rt.load_mesh: OBJ, PLY, STL, OFF, GLB on hand-written and trimesh-exported files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import raytrace as rt
from raytrace.io.meshes import MeshFileNotFoundError

trimesh = pytest.importorskip("trimesh")

KEYS = {"vertices", "indices", "uvs", "normals"}


def face_normals(mesh):
    v, f = mesh["vertices"].double(), mesh["indices"]
    return torch.linalg.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]], dim=1)


def signed_volume(mesh):
    v, f = mesh["vertices"].double(), mesh["indices"]
    return float(torch.einsum("ij,ij->i", v[f[:, 0]], torch.linalg.cross(v[f[:, 1]], v[f[:, 2]], dim=1)).sum() / 6)


PLY_QUAD = """ply
format ascii 1.0
comment a unit square in the z = 0 plane facing +z, as one quad{extra_comment}
element vertex 4
property float x
property float y
property float z
{normal_props}{uv_props}element face 1
property list uchar int vertex_indices
end_header
0 0 0{n0}{t0}
1 0 0{n1}{t1}
1 1 0{n1}{t2}
0 1 0{n1}{t3}
4 0 1 2 3
"""


def write_ply(path, normals: bool, uvs: bool):
    text = PLY_QUAD.format(
        extra_comment="",
        normal_props="property float nx\nproperty float ny\nproperty float nz\n" if normals else "",
        uv_props="property float s\nproperty float t\n" if uvs else "",
        n0=" 0 0 2" if normals else "", n1=" 0 0 1" if normals else "",
        t0=" 0 0" if uvs else "", t1=" 1 0" if uvs else "", t2=" 1 1" if uvs else "",
        t3=" 0 0.25" if uvs else "")
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------------------------
# Hand-written files, with and without uvs / normals
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("normals", [False, True])
@pytest.mark.parametrize("uvs", [False, True])
def test_ply_quad_is_triangulated_with_attributes_only_when_present(tmp_path, normals, uvs):
    mesh = rt.load_mesh(write_ply(tmp_path / "quad.ply", normals, uvs))
    assert set(mesh) == KEYS
    assert mesh["vertices"].dtype == torch.float32 and mesh["indices"].dtype == torch.int64
    assert mesh["vertices"].shape == (4, 3) and mesh["indices"].shape == (2, 3)
    # The quad's winding (counter-clockwise seen from +z) survives triangulation.
    n = face_normals(mesh)
    assert (n[:, 2] > 0).all() and torch.allclose(n[:, :2], torch.zeros(2, 2, dtype=torch.float64))
    assert float(n[:, 2].sum()) == pytest.approx(2.0)  # twice the area
    if normals:
        # Unit length (the file's first normal has length 2), pointing +z.
        assert torch.allclose(mesh["normals"], torch.tensor([[0.0, 0.0, 1.0]]).expand(4, 3))
    else:
        assert mesh["normals"] is None
    if uvs:
        # PLY's t points up the image; raytrace's v points down: v = 1 - t.
        expected = torch.tensor([[0, 1], [1, 1], [1, 0], [0, 0.75]], dtype=torch.float32)
        assert torch.equal(mesh["uvs"], expected)
    else:
        assert mesh["uvs"] is None


OBJ_TEXT = """# a square: two triangles facing +z
v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0
{vt}{vn}f {f1}
f {f2}
"""


@pytest.mark.parametrize("variant", ["plain", "uv", "normal", "uv+normal"])
def test_obj_matches_load_obj(tmp_path, variant):
    vt = "vt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\n" if "uv" in variant else ""
    vn = "vn 0 0 1\n" if "normal" in variant else ""

    def corner(i):
        return {"plain": f"{i}", "uv": f"{i}/{i}", "normal": f"{i}//1", "uv+normal": f"{i}/{i}/1"}[variant]
    text = OBJ_TEXT.format(vt=vt, vn=vn, f1=" ".join(corner(i) for i in (1, 2, 3)),
                           f2=" ".join(corner(i) for i in (1, 3, 4)))
    path = tmp_path / "square.obj"
    path.write_text(text)
    mesh = rt.load_mesh(path)
    ref = rt.load_obj(path)
    for k in KEYS:
        assert (mesh[k] is None) == (ref[k] is None), k
        if ref[k] is not None:
            assert torch.equal(mesh[k], ref[k]), k
    assert (mesh["uvs"] is not None) == ("uv" in variant)
    assert (mesh["normals"] is not None) == ("normal" in variant)
    if "uv" in variant:
        assert torch.equal(mesh["uvs"][2], torch.tensor([1.0, 0.0]))  # vt (1, 1) -> (1, 0)


def test_off_and_shape_from_mesh(tmp_path):
    path = tmp_path / "tri.off"
    path.write_text("OFF\n4 1 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3\n")
    mesh = rt.load_mesh(path)
    assert mesh["indices"].shape == (2, 3) and mesh["normals"] is None and mesh["uvs"] is None
    shape = rt.Shape(**mesh, material_id=0)
    scene = rt.Scene(shapes=[shape], materials=[rt.Material([0.5, 0.5, 0.5])])
    hit = scene.intersect(torch.tensor([[0.25, 0.75, 1.0], [2.0, 2.0, 1.0]]), torch.tensor([[0.0, 0, -1], [0, 0, -1]]))
    assert hit["shape_id"].tolist() == [0, -1]
    assert float(hit["t"][0]) == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------------
# Round trips through files trimesh writes
# ------------------------------------------------------------------------------------------------
def textured_sphere():
    m = trimesh.creation.icosphere(subdivisions=1)
    rng = np.random.default_rng(0)
    m.visual = trimesh.visual.TextureVisuals(uv=rng.random((len(m.vertices), 2)))
    return m


@pytest.mark.parametrize("ext", ["ply", "glb", "obj"])
def test_round_trip_trimesh_export_with_uvs_and_normals(tmp_path, ext):
    m = textured_sphere()
    normals = np.asarray(m.vertex_normals)  # computed, so the export includes them
    path = tmp_path / f"sphere.{ext}"
    m.export(path, include_normals=True) if ext != "ply" else m.export(path, vertex_normal=True)
    mesh = rt.load_mesh(path)
    assert mesh["vertices"].shape == (len(m.vertices), 3)
    # Compared per triangle corner (the OBJ reader numbers vertices in order of first use).
    f, ref_f = mesh["indices"].numpy(), np.asarray(m.faces)
    np.testing.assert_allclose(mesh["vertices"].numpy()[f], m.vertices[ref_f], atol=1e-6)
    uv = np.asarray(m.visual.uv)
    np.testing.assert_allclose(mesh["uvs"].numpy()[f], np.stack([uv[:, 0], 1 - uv[:, 1]], 1)[ref_f], atol=1e-6)
    assert mesh["normals"] is not None
    np.testing.assert_allclose(mesh["normals"].numpy()[f], normals[ref_f], atol=1e-5)
    if ext != "obj":  # trimesh's own vertex order, untouched (process=False)
        np.testing.assert_array_equal(f, ref_f)
    assert signed_volume(mesh) > 0  # outward winding kept


@pytest.mark.parametrize("ext", ["ply", "glb"])
def test_round_trip_without_normals_is_flat(tmp_path, ext):
    m = trimesh.Trimesh(vertices=trimesh.creation.box().vertices, faces=trimesh.creation.box().faces,
                        process=False)
    path = tmp_path / f"box.{ext}"
    m.export(path)
    mesh = rt.load_mesh(path)
    assert mesh["normals"] is None and mesh["uvs"] is None
    assert mesh["indices"].shape == (12, 3)


def test_stl_is_welded_by_default(tmp_path):
    path = tmp_path / "box.stl"
    trimesh.creation.box(extents=(1, 2, 3)).export(path)
    mesh = rt.load_mesh(path)
    assert mesh["vertices"].shape == (8, 3) and mesh["indices"].shape == (12, 3)
    assert mesh["normals"] is None and mesh["uvs"] is None
    assert signed_volume(mesh) == pytest.approx(6.0, rel=1e-6)
    # Every edge is shared by exactly two triangles: the welded box is closed.
    f = mesh["indices"]
    edges = torch.sort(torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), dim=1).values
    _, counts = torch.unique(edges, dim=0, return_counts=True)
    assert (counts == 2).all()
    soup = rt.load_mesh(path, weld=False)
    assert soup["vertices"].shape == (36, 3)
    assert signed_volume(soup) == pytest.approx(6.0, rel=1e-6)


# ------------------------------------------------------------------------------------------------
# Multi-mesh files (GLB scenes)
# ------------------------------------------------------------------------------------------------
def two_part_glb(path, with_normals=True):
    a = trimesh.creation.box(extents=(1, 1, 1))
    b = trimesh.creation.icosphere(subdivisions=1, radius=0.5)
    if with_normals:
        b.vertex_normals  # noqa: B018  (computed: exported)
    scene = trimesh.Scene()
    scene.add_geometry(a, node_name="box", geom_name="box_mesh")
    shift = np.eye(4)
    shift[:3, 3] = [3.0, 0.0, 0.0]
    scene.add_geometry(b, node_name="ball", geom_name="ball_mesh", transform=shift)
    scene.export(path)
    return a, b


def test_glb_parts_concatenated_selected_and_split(tmp_path):
    path = tmp_path / "two.glb"
    a, b = two_part_glb(path)
    whole = rt.load_mesh(path)
    box = rt.load_mesh(path, part="box")
    ball = rt.load_mesh(path, part=1)
    assert torch.equal(rt.load_mesh(path, part="ball_mesh")["vertices"], ball["vertices"])
    assert box["indices"].shape == (12, 3) and ball["indices"].shape == (len(b.faces), 3)
    # The ball is placed by its node transform.
    np.testing.assert_allclose(ball["vertices"].numpy(), b.vertices + [3, 0, 0], atol=1e-6)
    assert ball["normals"] is not None and box["normals"] is None
    # Concatenated: the box has no normals, so its vertices are split per triangle and get
    # its face normals (it stays flat-shaded).
    assert whole["indices"].shape[0] == 12 + len(b.faces)
    assert whole["vertices"].shape[0] == 36 + len(b.vertices)
    fn = face_normals(whole)[:12]
    fn = fn / fn.norm(dim=1, keepdim=True)
    corner_normals = whole["normals"].double()[whole["indices"][:12]]
    assert torch.allclose(corner_normals, fn[:, None, :].expand(12, 3, 3), atol=1e-6)
    parts = rt.load_mesh(path, split=True)
    assert list(parts) == ["box", "ball"]
    assert torch.equal(parts["ball"]["vertices"], ball["vertices"])
    with pytest.raises(ValueError, match=r"two\.glb: no mesh named 'teapot' \(the file has: box, ball\)"):
        rt.load_mesh(path, part="teapot")
    with pytest.raises(ValueError, match=r"two\.glb: part 2 out of range"):
        rt.load_mesh(path, part=2)
    with pytest.raises(ValueError, match="not both"):
        rt.load_mesh(path, part=0, split=True)


def test_mirroring_node_transform_keeps_facing(tmp_path):
    m = trimesh.creation.icosphere(subdivisions=1)
    m.vertex_normals  # noqa: B018
    scene = trimesh.Scene()
    scene.add_geometry(m, node_name="mirrored", transform=np.diag([-1.0, 1.0, 1.0, 1.0]))
    path = tmp_path / "mirror.glb"
    scene.export(path)
    mesh = rt.load_mesh(path)
    assert signed_volume(mesh) > 0  # still wound outwards
    fn = face_normals(mesh)
    centroid = mesh["vertices"].double()[mesh["indices"]].mean(1)
    assert ((fn * centroid).sum(1) > 0).all()
    corner = mesh["normals"].double()[mesh["indices"][:, 0]]
    assert ((fn * corner).sum(1) > 0).all()


# ------------------------------------------------------------------------------------------------
# Errors name the file
# ------------------------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    path = tmp_path / "nope.ply"
    with pytest.raises(MeshFileNotFoundError, match=r"nope\.ply: no such file") as info:
        rt.load_mesh(path)
    assert isinstance(info.value, ValueError) and isinstance(info.value, FileNotFoundError)


def test_unknown_format(tmp_path):
    path = tmp_path / "mesh.xyz"
    path.write_text("0 0 0\n")
    with pytest.raises(ValueError, match=r"mesh\.xyz: unknown mesh format '\.xyz'"):
        rt.load_mesh(path)


def test_empty_and_malformed_files(tmp_path):
    empty = tmp_path / "points.ply"
    empty.write_text("ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\n"
                     "property float z\nend_header\n0 0 0\n1 1 1\n")
    with pytest.raises(ValueError, match=r"points\.ply: no triangles"):
        with pytest.warns(UserWarning, match="skipped parts without triangles"):
            rt.load_mesh(empty)
    garbage = tmp_path / "garbage.glb"
    garbage.write_bytes(b"\x00\x01not a glb at all" * 4)
    with pytest.raises(ValueError, match=r"garbage\.glb: cannot read as GLB"):
        rt.load_mesh(garbage)
    bad_obj = tmp_path / "bad.obj"
    bad_obj.write_text("v 0 0 0\nv 1 0 0\nv 0 1 x\nf 1 2 3\n")
    with pytest.raises(ValueError, match=r"bad\.obj: line 3"):
        rt.load_mesh(bad_obj)
    no_faces = tmp_path / "nofaces.obj"
    no_faces.write_text("v 0 0 0\n")
    with pytest.raises(ValueError, match=r"nofaces\.obj: no faces"):
        rt.load_mesh(no_faces)


def test_argument_types(tmp_path):
    with pytest.raises(TypeError, match="path"):
        rt.load_mesh(3)
    path = write_ply(tmp_path / "q.ply", False, False)
    with pytest.raises(TypeError, match="part"):
        rt.load_mesh(path, part=1.5)
    with pytest.raises(TypeError, match="weld"):
        rt.load_mesh(path, weld="yes")
