"""rt.load_mitsuba: the Mitsuba 3 XML subset, its conventions, and its errors and warnings."""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import raytrace as rt
from raytrace.io.mitsuba import MitsubaWarning, look_at

ROOT = Path(__file__).resolve().parent.parent
CBOX = ROOT / "scenes" / "mitsuba_cbox" / "scene.xml"

SENSOR = """
    <sensor type="perspective">
        <float name="fov" value="{fov}"/>
        <string name="fov_axis" value="{axis}"/>
        <transform name="to_world">{transform}</transform>
        <film type="hdrfilm">
            <integer name="width" value="{w}"/>
            <integer name="height" value="{h}"/>
        </film>
    </sensor>"""


def write(tmp_path, body, name="scene.xml", version="3.0.0", **sensor):
    """A scene file with `body` inside <scene>; a sensor is added when `sensor` is given."""
    sensor_xml = ""
    if sensor:
        args = dict(fov=45, axis="x", transform='<lookat origin="0,0,5" target="0,0,0" up="0,1,0"/>',
                    w=16, h=16)
        args.update(sensor)
        sensor_xml = SENSOR.format(**args)
    path = tmp_path / name
    path.write_text(f'<?xml version="1.0"?>\n<scene version="{version}">{sensor_xml}\n{body}\n</scene>\n')
    return path


def load(path, **kwargs):
    """load_mitsuba that also returns the warnings it issued."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scene, report = rt.load_mitsuba(path, return_report=True, **kwargs)
    return scene, report, [str(w.message) for w in caught if issubclass(w.category, MitsubaWarning)]


def line_of(path, text):
    """1-based line of the first line of `path` containing `text`."""
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        if text in line:
            return i
    raise AssertionError(text)


def emitter_rect(to_world: np.ndarray, radiance=(1, 1, 1)):
    """A rectangle area light with a <matrix> to_world."""
    m = " ".join(f"{x:.17g}" for x in to_world.reshape(-1))
    return (f'<shape type="rectangle"><transform name="to_world"><matrix value="{m}"/></transform>'
            f'<emitter type="area"><rgb name="radiance" value="{radiance[0]},{radiance[1]},{radiance[2]}"/>'
            f'</emitter></shape>')


def render_direct(scene, spp=16):
    return rt.render(scene, spp=spp, max_bounces=0, seed=1, threads=1)


# ------------------------------------------------------------------------------------------------
# The shipped scene
# ------------------------------------------------------------------------------------------------
def test_shipped_cbox_loads_and_renders():
    scene, report, warned = load(CBOX, resolution=(24, 24))
    assert warned == [] and report.skipped == []
    assert len(scene.shapes) == 9 and len(scene.area_lights) == 1
    assert report.spp == 64 and report.max_bounces == 4 and report.resolution == (24, 24)
    assert report.shape_ids["light"] == scene.area_lights[0].shape_id
    assert scene.materials[report.material_ids["white"]].two_sided
    img = rt.render(scene, spp=4, max_bounces=2, seed=0, threads=1)
    assert img.shape == (24, 24, 3) and torch.isfinite(img).all()
    assert float(img.mean()) > 0.05
    # The light (under the ceiling, centre) is the brightest spot; red wall left, green right.
    lum = img.mean(dim=2)
    row, col = divmod(int(lum.argmax()), 24)
    assert row < 5 and 8 <= col < 16
    left, right = img[8:16, :2].mean(dim=(0, 1)), img[8:16, -2:].mean(dim=(0, 1))
    assert left[0] > 2 * left[1] and right[1] > 2 * right[0]


def test_params_override_defaults():
    _, report, _ = load(CBOX, params={"spp": 3, "resolution": 10})
    assert report.spp == 3 and report.resolution == (10, 10)


# ------------------------------------------------------------------------------------------------
# Camera conventions: orientation and field of view
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mirrored", [False, True])
def test_orientation_camera_left_and_up_appear_left_and_top(tmp_path, mirrored):
    """Mitsuba's camera looks along +z of its to_world frame and shows camera-space +x on the
    image's LEFT and +y at the TOP: a light at camera-space (+0.8, +0.8, 4) lands top-left, one
    at (-0.8, +0.8, 4) top-right. With a mirroring to_world (Mitsuba renders it mirrored) too."""
    cam = look_at(np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.5, -1.0]), np.array([0.0, 1.0, 0.0]))
    if mirrored:
        cam = cam @ np.diag([-1.0, 1.0, 1.0, 1.0])
    m = " ".join(f"{x:.17g}" for x in cam.reshape(-1))
    for side in (1.0, -1.0):
        local = np.diag([0.3, 0.3, -1.0, 1.0])  # the rectangle's front (+z) turned to the camera
        local[:3, 3] = [0.8 * side, 0.8, 4.0]
        path = write(tmp_path, emitter_rect(cam @ local), transform=f'<matrix value="{m}"/>', fov=60, w=20, h=20)
        scene, report, _ = load(path)
        assert report.camera_mirrored == mirrored
        img = render_direct(scene).mean(dim=2)
        rows, cols = torch.nonzero(img > 0.5, as_tuple=True)
        assert len(rows) > 4
        assert rows.float().mean() < 8  # top
        assert (cols.float().mean() < 8) if side > 0 else (cols.float().mean() > 12)


@pytest.mark.parametrize("axis", ["x", "y", "diagonal", "smaller", "larger"])
def test_fov_edge_column(tmp_path, axis):
    """A light covering the camera-space region just past the image's left border
    (camera +x) fills half of pixel column 0 and nothing of column 1."""
    w, h, fov_x = 32, 16, 50.0
    aspect = w / h
    t = math.tan(math.radians(fov_x) / 2)
    fov = {"x": fov_x, "larger": fov_x,
           "y": 2 * math.degrees(math.atan(t / aspect)), "smaller": 2 * math.degrees(math.atan(t / aspect)),
           "diagonal": 2 * math.degrees(math.atan(t * math.sqrt(1 + 1 / aspect ** 2)))}[axis]
    z = 4.0
    x0, x1 = t * z * (1 - 1 / w), t * z * 1.5  # from the middle of column 0 outwards
    light = np.eye(4)
    light[:3, :3] = np.diag([(x1 - x0) / 2, t * z, -1.0])  # -1: faces the camera
    light[:3, 3] = [(x0 + x1) / 2, 0.0, z]
    path = write(tmp_path, emitter_rect(light), transform="", fov=fov, axis=axis, w=w, h=h)
    scene, _, _ = load(path)
    assert float(scene.camera.fov) == pytest.approx(fov_x, rel=1e-5)
    img = render_direct(scene, spp=32).mean(dim=2)
    assert float(img[:, 0].mean()) == pytest.approx(0.5, abs=0.08)
    assert float(img[:, 1:].abs().max()) == 0.0


def test_focal_length_and_bad_fov_axis(tmp_path):
    body = SENSOR.replace('<float name="fov" value="{fov}"/>', '<string name="focal_length" value="35mm"/>')
    body = body.replace('<string name="fov_axis" value="{axis}"/>', "").format(transform="", w=30, h=20)
    scene, _, _ = load(write(tmp_path, body))
    diag = 2 * math.atan(math.hypot(36, 24) / 70)
    expected = 2 * math.degrees(math.atan(math.tan(diag / 2) / math.sqrt(1 + (20 / 30) ** 2)))
    assert float(scene.camera.fov) == pytest.approx(expected, rel=1e-5)
    path = write(tmp_path, "", name="bad.xml", axis="z")
    with pytest.raises(ValueError, match=rf"bad\.xml: line {line_of(path, '<sensor')}: fov_axis must be"):
        rt.load_mitsuba(path)


# ------------------------------------------------------------------------------------------------
# Shapes
# ------------------------------------------------------------------------------------------------
def test_analytic_shapes_and_transforms(tmp_path):
    body = """
    <shape type="rectangle" id="r">
        <transform name="to_world"><scale x="2" y="3"/><rotate x="1" angle="-90"/><translate y="-1"/></transform>
    </shape>
    <shape type="sphere" id="s"><point name="center" x="1" y="2" z="3"/><float name="radius" value="0.5"/></shape>
    <shape type="cube" id="c"><transform name="to_world"><scale value="0.5"/><translate value="0 0 -4"/></transform></shape>
    <shape type="sphere" id="inside"><boolean name="flip_normals" value="true"/></shape>
    <shape type="disk" id="d"/>"""
    scene, report, warned = load(write(tmp_path, body))
    assert warned == []
    shapes = {k: scene.shapes[i] for k, i in report.shape_ids.items()}
    v = shapes["r"].vertices.double()
    assert torch.allclose(v[:, 1], torch.full((4,), -1.0, dtype=torch.float64))
    assert set(v[:, 0].abs().tolist()) == {2.0} and torch.allclose(v[:, 2].abs(), torch.full((4,), 3.0, dtype=torch.float64))

    def facing(s):  # mean geometric normal direction, relative to the centre
        v, f = s.vertices.double(), s.indices
        n = torch.linalg.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]], dim=1)
        return n, v[f].mean(1) - v.mean(0)
    n, _ = facing(shapes["r"])
    assert (n[:, 1] > 0).all()  # rotate x by -90 turns +z to +y
    assert torch.allclose(shapes["r"].normals, torch.tensor([0.0, 1.0, 0.0]).expand(4, 3), atol=1e-6)
    d = (shapes["s"].vertices.double() - torch.tensor([1.0, 2, 3], dtype=torch.float64)).norm(dim=1)
    assert torch.allclose(d, torch.full_like(d, 0.5), atol=1e-6)
    for key, sign in (("s", 1), ("c", 1), ("inside", -1)):
        n, c = facing(shapes[key])
        assert ((n * c).sum(1) * sign > 0).all(), key
    lo, hi = shapes["c"].vertices.min(0).values, shapes["c"].vertices.max(0).values
    assert torch.allclose(lo, torch.tensor([-0.5, -0.5, -4.5])) and torch.allclose(hi, torch.tensor([0.5, 0.5, -3.5]))
    n, _ = facing(shapes["d"])
    assert (n[:, 2] > 0).all() and shapes["d"].vertices[:, :2].norm(dim=1).max() == pytest.approx(1.0)
    # Mitsuba's sphere parameterisation: v = theta / pi from +z.
    s = shapes["s"]
    top = int(s.vertices[:, 2].argmax())
    assert float(s.uvs[top, 1]) == pytest.approx(0.0, abs=1e-6)


def test_mesh_files_relative_paths_uvs_and_normals(tmp_path):
    (tmp_path / "meshes").mkdir()
    (tmp_path / "meshes" / "tri.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nf 1/1 2/2 3/3\n")
    (tmp_path / "meshes" / "tri.ply").write_text(
        "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
        "property float u\nproperty float v\nproperty float nx\nproperty float ny\nproperty float nz\n"
        "element face 1\nproperty list uchar int vertex_indices\nend_header\n"
        "0 0 0 0 0 0 0 1\n1 0 0 1 0 0 0 1\n0 1 0 0 1 0 0 1\n3 0 1 2\n")
    body = """
    <shape type="obj" id="obj"><string name="filename" value="meshes/tri.obj"/>
        <transform name="to_world"><translate x="5"/></transform></shape>
    <shape type="obj" id="obj_noflip"><string name="filename" value="meshes/tri.obj"/>
        <boolean name="flip_tex_coords" value="false"/><boolean name="face_normals" value="true"/></shape>
    <shape type="ply" id="ply"><string name="filename" value="meshes/tri.ply"/></shape>"""
    scene, report, _ = load(write(tmp_path, body))
    obj, noflip, ply = (scene.shapes[report.shape_ids[k]] for k in ("obj", "obj_noflip", "ply"))
    assert torch.allclose(obj.vertices[:, 0], torch.tensor([5.0, 6.0, 5.0]))
    # OBJ: Mitsuba flips v by default (uv = (u, 1 - v)), as raytrace's OBJ reader does.
    assert torch.allclose(obj.uvs, torch.tensor([[0.0, 1.0], [1.0, 1.0], [0.0, 0.0]]))
    assert torch.allclose(noflip.uvs, torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    # No normals in the OBJ: computed (Mitsuba does), unless face_normals.
    assert torch.allclose(obj.normals, torch.tensor([0.0, 0.0, 1.0]).expand(3, 3))
    assert noflip.normals is None
    # PLY: Mitsuba does not flip by default; the file's normals are used.
    assert torch.allclose(ply.uvs, torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    assert torch.allclose(ply.normals, torch.tensor([0.0, 0.0, 1.0]).expand(3, 3))


def test_missing_mesh_file_names_xml_line(tmp_path):
    path = write(tmp_path, '<shape type="ply">\n  <string name="filename" value="gone.ply"/>\n</shape>')
    line = line_of(path, 'type="ply"')
    with pytest.raises(ValueError, match=rf"scene\.xml: line {line}: .*'gone\.ply' not found"):
        rt.load_mitsuba(path)


# ------------------------------------------------------------------------------------------------
# Materials and emitters
# ------------------------------------------------------------------------------------------------
def test_bsdfs_map_to_materials(tmp_path):
    rt.imwrite(torch.full((2, 4, 3), 0.5), tmp_path / "tex.png")
    body = """
    <bsdf type="diffuse" id="rgb"><rgb name="reflectance" value="0.1, 0.2, 0.3"/></bsdf>
    <bsdf type="diffuse" id="grey"><spectrum name="reflectance" value="0.25"/></bsdf>
    <bsdf type="diffuse" id="spectral"><spectrum name="reflectance" value="400:0.2, 700:0.4"/></bsdf>
    <bsdf type="diffuse" id="textured"><texture type="bitmap" name="reflectance">
        <string name="filename" value="tex.png"/></texture></bsdf>
    <bsdf type="conductor" id="mirror"/>
    <bsdf type="roughconductor" id="rough"><float name="alpha" value="0.3"/><string name="material" value="Au"/></bsdf>
    <bsdf type="plastic" id="plastic"/>
    <bsdf type="roughplastic" id="rplastic"><float name="alpha" value="0.2"/>
        <rgb name="diffuse_reflectance" value="0.7, 0.1, 0.1"/></bsdf>
    <bsdf type="twosided" id="two"><bsdf type="diffuse"/></bsdf>
    """ + "".join(f'<shape type="rectangle"><ref id="{k}"/></shape>' for k in (
        "rgb", "grey", "spectral", "textured", "mirror", "rough", "plastic", "rplastic", "two"))
    scene, report, warned = load(write(tmp_path, body))
    assert warned == []
    mat = {k: scene.materials[i] for k, i in report.material_ids.items()}
    assert torch.allclose(mat["rgb"].diffuse_reflectance, torch.tensor([0.1, 0.2, 0.3]))
    assert torch.allclose(mat["grey"].diffuse_reflectance, torch.full((3,), 0.25))
    assert torch.allclose(mat["spectral"].diffuse_reflectance, torch.full((3,), 0.3))
    assert any("mean" in a for a in report.approximations)
    tex = mat["textured"].diffuse_reflectance
    assert tex.shape == (2, 4, 3) and torch.allclose(tex, torch.full((2, 4, 3), 0.5), atol=3e-3)  # sRGB 8-bit
    assert torch.allclose(mat["mirror"].specular_reflectance, torch.ones(3))
    assert float(mat["mirror"].roughness) == pytest.approx(1e-3)
    assert torch.allclose(mat["mirror"].diffuse_reflectance, torch.zeros(3))
    assert float(mat["rough"].roughness) == pytest.approx(0.3)  # Mitsuba alpha is GGX alpha
    assert mat["rough"].specular_reflectance[0] > mat["rough"].specular_reflectance[2]  # gold
    f0 = ((1.49 / 1.000277 - 1) / (1.49 / 1.000277 + 1)) ** 2
    assert torch.allclose(mat["plastic"].specular_reflectance, torch.full((3,), f0))
    assert torch.allclose(mat["plastic"].diffuse_reflectance, torch.full((3,), 0.5))
    assert float(mat["rplastic"].roughness) == pytest.approx(0.2)
    assert torch.allclose(mat["rplastic"].diffuse_reflectance, torch.tensor([0.7, 0.1, 0.1]))
    assert mat["two"].two_sided and not mat["rgb"].two_sided
    assert len(scene.materials) == 9  # one per bsdf element


def test_area_light_and_default_material(tmp_path):
    body = '<shape type="sphere"><emitter type="area"><rgb name="radiance" value="1, 2, 3"/></emitter></shape>'
    scene, _, _ = load(write(tmp_path, body))
    assert scene.area_lights[0].shape_id == 0
    assert torch.allclose(scene.area_lights[0].intensity, torch.tensor([1.0, 2.0, 3.0]))
    assert torch.allclose(scene.materials[0].diffuse_reflectance, torch.full((3,), 0.5))


def test_constant_and_bitmap_environment(tmp_path):
    scene, _, _ = load(write(tmp_path, '<emitter type="constant"><rgb name="radiance" value="0.5"/></emitter>'))
    assert scene.envmap.values.shape == (1, 1, 3) and torch.allclose(scene.envmap.values, torch.full((1, 1, 3), 0.5))
    # A Mitsuba envmap bright in local direction +x: Mitsuba's u = atan2(x, -z) / 2pi = 1/4.
    h, w = 16, 32
    img = np.zeros((h, w, 3), np.float32)
    img[h // 2 - 1: h // 2 + 1, w // 4] = 100.0
    rt.imwrite(torch.from_numpy(img), tmp_path / "env.exr")
    for rotate, expected_dir in (("", (1, 0, 0)), ('<rotate y="1" angle="90"/>', (0, 0, -1))):
        body = (f'<emitter type="envmap"><string name="filename" value="env.exr"/><float name="scale" value="2"/>'
                f'<transform name="to_world">{rotate}</transform></emitter>')
        scene, _, _ = load(write(tmp_path, body, name="env.xml"))
        values = scene.envmap.values
        assert values.shape == (h, w, 3)
        row, col = divmod(int(values.mean(2).argmax()), w)
        # raytrace's lat-long: u = atan2(d.x, -d.z) / 2pi + 1/2, v = acos(d.y) / pi.
        d = np.array(expected_dir, np.float64)
        u = math.atan2(d[0], -d[2]) / (2 * math.pi) + 0.5
        assert abs((col + 0.5) / w - u) <= 1.5 / w and abs((row + 0.5) / h - 0.5) <= 1.5 / h
        assert float(values.max()) > 50  # scale 2 of the 100 peak, blurred by resampling


# ------------------------------------------------------------------------------------------------
# Document features: defaults, refs, includes, old versions, integrator
# ------------------------------------------------------------------------------------------------
def test_defaults_refs_include_and_integrator(tmp_path):
    (tmp_path / "part.xml").write_text('<scene version="3.0.0"><shape type="cube" id="inc"><ref id="m"/></shape></scene>')
    body = """
    <default name="r" value="0.25"/>
    <bsdf type="diffuse" id="m"><rgb name="reflectance" value="$r"/></bsdf>
    <include filename="part.xml"/>
    <integrator type="path"><integer name="max_depth" value="3"/></integrator>
    <shape type="rectangle" id="rect"><ref id="m"/></shape>"""
    scene, report, _ = load(write(tmp_path, body), params={"r": 0.75})
    assert report.max_bounces == 2
    assert set(report.shape_ids) == {"inc", "rect"}
    assert len(scene.materials) == 1
    assert torch.allclose(scene.materials[0].diffuse_reflectance, torch.full((3,), 0.75))


def test_referenced_sampler_and_silently_ignored_sensor_parameters(tmp_path):
    body = """<sampler type="stratified" id="samp"><integer name="sample_count" value="12"/></sampler>
        <integrator type="$integ"><integer name="max_depth" value="$depth"/></integrator>
        <sensor type="perspective"><ref id="samp"/><float name="fov" value="30"/>
            <float name="near_clip" value="0.01"/><float name="far_clip" value="100"/>
            <float name="focus_distance" value="1000"/></sensor>"""
    scene, report, warned = load(write(tmp_path, f"<default name='integ' value='path'/><default name='depth' value='-1'/>{body}"))
    assert warned == [] and report.spp == 12 and report.max_bounces is None
    assert report.resolution == (576, 768)  # Mitsuba's default film
    assert scene.camera.resolution == (576, 768) and float(scene.camera.fov) == pytest.approx(30)


def test_mitsuba_0_6_camel_case_names(tmp_path):
    body = """<sensor type="perspective"><float name="fov" value="30"/><string name="fovAxis" value="y"/>
        <transform name="toWorld"><lookAt origin="0 0 5" target="0 0 0" up="0 1 0"/></transform>
        <sampler type="independent"><integer name="sampleCount" value="7"/></sampler>
        <film type="hdrfilm"><integer name="width" value="20"/><integer name="height" value="10"/></film></sensor>
        <shape type="rectangle"><bsdf type="plastic"><float name="intIOR" value="1.5"/></bsdf></shape>"""
    scene, report, warned = load(write(tmp_path, body, version="0.6.0"))
    assert warned == [] and report.spp == 7
    assert float(scene.camera.fov) == pytest.approx(2 * math.degrees(math.atan(math.tan(math.radians(15)) * 2)))
    assert float(scene.materials[0].specular_reflectance[0]) == pytest.approx(((1.5 / 1.000277 - 1) / (1.5 / 1.000277 + 1)) ** 2)


# ------------------------------------------------------------------------------------------------
# Skipped things warn with file and line; errors name file and line
# ------------------------------------------------------------------------------------------------
def test_unknown_plugins_and_parameters_warn_with_line(tmp_path):
    body = """<shape type="cylinder"/>
    <emitter type="point"><point name="position" x="0" y="1" z="0"/></emitter>
    <shape type="rectangle">
        <bsdf type="hair"/>
        <float name="wobble" value="3"/>
    </shape>
    <bsdf type="diffuse" id="d"><float name="sheen" value="1"/></bsdf>
    <shape type="cube"><ref id="d"/></shape>"""
    path = write(tmp_path, body)
    scene, report, warned = load(path)
    assert len(scene.shapes) == 2  # the cylinder is skipped
    expected = [("cylinder", 'type="cylinder"'), ("'point'", 'type="point"'), ("'hair'", 'type="hair"'),
                ("'wobble'", '"wobble"'), ("'sheen'", '"sheen"')]
    assert len(warned) == len(expected) == len(report.skipped)
    for what, text in expected:
        line = line_of(path, text)
        assert any(re.match(rf"{re.escape(str(path))}: line {line}: .*{what}", w) for w in warned), (what, warned)
    # warn=False: the same report, no warnings.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, quiet = rt.load_mitsuba(path, return_report=True, warn=False)
    assert quiet.skipped == report.skipped


@pytest.mark.parametrize("body, line_text, message", [
    ('<shape type="rectangle">\n<bsdf type="diffuse">\n</shape>', "</shape>", "malformed XML: mismatched tag"),
    ('<shape type="sphere"><float name="radius" value="abc"/></shape>', "abc", "is not a list of numbers"),
    ('<shape type="sphere"><float name="radius" value="-1"/></shape>', "-1", "radius must be > 0"),
    ('<shape type="rectangle"><ref id="nothing"/></shape>', "nothing", "no element has this id"),
    ('<shape type="rectangle"><rgb name="x" value="$undefined"/></shape>', "$undefined", "undefined parameter"),
    ('<shape type="rectangle"><transform name="to_world"><rotate angle="3"/></transform></shape>', "rotate", "non-zero axis"),
    ('<shape type="rectangle"><transform name="to_world"><scale value="1 2"/></transform></shape>', "scale", "1 or 3 numbers"),
    ('<bsdf type="diffuse" id="a"/>\n<bsdf type="diffuse" id="a"/>', 'id="a"/>\n', "duplicate id"),
    ('<shape type="rectangle"><boolean name="flip_normals" value="maybe"/></shape>', "maybe", "true or false"),
])
def test_errors_name_file_and_line(tmp_path, body, line_text, message):
    path = write(tmp_path, body)
    text = path.read_text()
    if line_text.endswith("\n"):  # the second of two identical lines
        line = text[:text.index(line_text) + len(line_text)].count("\n") + 1
    else:
        line = line_of(path, line_text)
    with pytest.raises(ValueError, match=rf"scene\.xml: line {line}: .*{re.escape(message)}"):
        rt.load_mitsuba(path)


def test_file_level_errors(tmp_path):
    with pytest.raises(ValueError, match=r"missing\.xml: no such file"):
        rt.load_mitsuba(tmp_path / "missing.xml")
    bad_root = tmp_path / "root.xml"
    bad_root.write_text("<?xml version='1.0'?>\n<shapes/>\n")
    with pytest.raises(ValueError, match=r"root\.xml: line 2: the root element must be <scene>"):
        rt.load_mitsuba(bad_root)
    with pytest.raises(TypeError, match="path"):
        rt.load_mitsuba(42)
    with pytest.raises(ValueError, match="resolution"):
        rt.load_mitsuba(CBOX, resolution=(0, 3))


def test_orthographic_sensor_view_width(tmp_path):
    """Mitsuba's orthographic view spans camera-space x in [-1, 1] times the to_world scale;
    a light at camera-space x = +1.5 (inside the half width 2) shows on the left."""
    transform = '<scale x="2" y="2"/><lookat origin="0,0,5" target="0,0,0" up="0,1,0"/>'
    body = SENSOR.replace("perspective", "orthographic").replace('<float name="fov" value="{fov}"/>', "")
    body = body.replace('<string name="fov_axis" value="{axis}"/>', "").format(transform=transform, w=20, h=10)
    light = np.diag([0.3, 0.3, 1.0, 1.0])  # camera-space (1.5, 0, 0): world (-1.5, 0, 0), facing +z
    light[:3, 3] = [-1.5, 0.0, 0.0]
    scene, _, warned = load(write(tmp_path, body + emitter_rect(light)))
    assert warned == [] and scene.camera.camera_type == "orthographic"
    assert float(scene.camera.fov) == pytest.approx(2 * math.degrees(math.atan(2.0)))
    img = render_direct(scene).mean(dim=2)
    rows, cols = torch.nonzero(img > 0.5, as_tuple=True)
    assert len(cols) > 0 and abs(cols.float().mean() - 2.5) < 1.0  # x = -1.5 of [-2, 2] over 20 columns
    assert abs(rows.float().mean() - 4.5) < 1.0


def test_checkerboard_principled_and_dielectric(tmp_path):
    body = """
    <bsdf type="diffuse" id="check"><texture type="checkerboard" name="reflectance">
        <rgb name="color0" value="0.9"/><rgb name="color1" value="0.1"/>
        <transform name="to_uv"><scale x="3" y="2"/></transform></texture></bsdf>
    <bsdf type="principled" id="metal"><rgb name="base_color" value="0.8, 0.5, 0.2"/>
        <float name="metallic" value="1"/><float name="roughness" value="0.4"/><float name="sheen" value="0.3"/></bsdf>
    <bsdf type="dielectric" id="glass"/>
    """ + "".join(f'<shape type="rectangle"><ref id="{k}"/></shape>' for k in ("check", "metal", "glass"))
    path = write(tmp_path, body)
    scene, report, warned = load(path)
    mat = {k: scene.materials[i] for k, i in report.material_ids.items()}
    tex = mat["check"].diffuse_reflectance
    assert tex.shape == (64, 96, 3)  # 32 texels per tile, tiled 3 x 2 (u along columns)
    assert float(tex[0, 0, 0]) == pytest.approx(0.9) and float(tex[0, 16, 0]) == pytest.approx(0.1)
    assert float(tex[16, 16, 0]) == pytest.approx(0.9) and float(tex[0, 32, 0]) == pytest.approx(0.9)
    assert torch.allclose(mat["metal"].specular_reflectance, torch.tensor([0.8, 0.5, 0.2]))
    assert torch.allclose(mat["metal"].diffuse_reflectance, torch.zeros(3))
    assert float(mat["metal"].roughness) == pytest.approx(0.16)
    assert torch.allclose(mat["glass"].diffuse_reflectance, torch.zeros(3))
    assert len(warned) == 2
    assert any(f"line {line_of(path, 'sheen')}" in w and "'sheen'" in w for w in warned)
    assert any(f"line {line_of(path, 'dielectric')}" in w and "transmission" in w for w in warned)
