"""Files from the wild (issue 16, parts 8-10): the command line loses nothing, every loader
error is a ValueError naming the file, sizes are checked before data is inflated, and scene
files read only inside their folder unless the caller allows more.

Every malicious or garbage file is built here, in tmp_path.
"""
from __future__ import annotations

import json
import os
import struct
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import raytrace as rt
from raytrace.__main__ import main
from raytrace.io import Limits

# ----------------------------------------------------------------------------------------------
# Builders
# ----------------------------------------------------------------------------------------------
TRIANGLE = {"vertices": [[-1, -1, 0], [1, -1, 0], [0, 1, 0]], "indices": [[0, 1, 2]]}


def json_scene(folder: Path, diffuse=(0.5, 0.5, 0.5), mesh=None, name="scene.json") -> Path:
    """A one-triangle emissive scene; `diffuse` may be {"texture": ...}, `mesh` {"path": ...}."""
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"version": 1,
           "camera": {"position": [0, 0, 3], "look_at": [0, 0, 0], "up": [0, 1, 0],
                      "resolution": [8, 8]},
           "materials": [{"diffuse": diffuse if isinstance(diffuse, dict) else list(diffuse)}],
           "shapes": [{"mesh": mesh or TRIANGLE, "material": 0,
                       "emission": {"intensity": [1, 1, 1]}}]}
    path = folder / name
    path.write_text(json.dumps(doc))
    return path


def xml_scene(folder: Path, body: str, name="scene.xml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"""<scene version="3.0.0">
  <sensor type="perspective"><float name="fov" value="45"/>
    <film type="hdrfilm"><integer name="width" value="8"/><integer name="height" value="8"/></film>
  </sensor>
{body}
</scene>
""")
    return path


def bitmap_shape(filename: str) -> str:
    return f"""  <shape type="rectangle"><bsdf type="diffuse">
    <texture type="bitmap" name="reflectance"><string name="filename" value="{filename}"/></texture>
  </bsdf></shape>"""


def png(path: Path, size=(4, 4), value=128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)
    return path


def npy_header(shape, descr="<f4") -> bytes:
    """A version 1.0 .npy header for an array of `shape` (whatever data follows it)."""
    d = "{'descr': '%s', 'fortran_order': False, 'shape': %r, }" % (descr, tuple(shape))
    d += " " * ((64 - (10 + len(d) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d)) + d.encode("latin1")


def npz_of_zeros(path: Path, shape, data_bytes=None, name="vertices") -> Path:
    """A compressed .npz holding one float32 array of zeros of `shape`, streamed (never in
    memory); `data_bytes` writes that many bytes of data instead (a header that lies)."""
    n = int(np.prod(shape)) * 4 if data_bytes is None else data_bytes
    chunk = bytes(1 << 20)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
            f.write(npy_header(shape))
            while n > 0:
                f.write(chunk[:min(n, len(chunk))])
                n -= len(chunk)
    return path


def cli(*args) -> int:
    return main(["render", *map(str, args)])


def error_line(capsys) -> str:
    return capsys.readouterr().err.strip()


# ==============================================================================================
# Part 8: the command line
# ==============================================================================================
def test_cli_refuses_output_onto_an_input_texture(tmp_path, capsys):
    """-o naming the scene's own texture (directly or through a symlink) is refused, and the
    texture is intact."""
    tex = png(tmp_path / "s" / "tex.png")
    scene = json_scene(tmp_path / "s", {"texture": "tex.png"})
    before = tex.read_bytes()
    assert cli(scene, "-o", tex, "--spp", 1) == 2
    err = error_line(capsys)
    assert "a file the scene reads" in err and str(tex.resolve()) in err
    link = tmp_path / "link.png"
    link.symlink_to(tex)
    assert cli(scene, "-o", link, "--spp", 1) == 2
    assert "a file the scene reads" in error_line(capsys)
    assert tex.read_bytes() == before and link.is_symlink()


def test_cli_refuses_output_onto_a_mitsuba_texture_and_hard_link(tmp_path, capsys):
    tex = png(tmp_path / "s" / "tex.png")
    scene = xml_scene(tmp_path / "s", bitmap_shape("tex.png"))
    before = tex.read_bytes()
    assert cli(scene, "-o", tex, "--spp", 1) == 2
    assert "a file the scene reads" in error_line(capsys)
    hard = tmp_path / "hard.png"
    os.link(tex, hard)
    assert cli(scene, "-o", hard, "--spp", 1) == 2
    assert "a file the scene reads" in error_line(capsys)
    assert tex.read_bytes() == before


def test_cli_checks_the_output_before_reading_or_rendering(tmp_path, capsys, monkeypatch):
    """An unwritable output fails at once: the scene is not even read, nothing is rendered,
    nothing is created."""
    import raytrace.io.scenes as scenes
    import sys
    calls = []
    monkeypatch.setattr(scenes, "read_scene", lambda *a, **k: calls.append("read"))
    monkeypatch.setattr(sys.modules["raytrace.render"], "render", lambda *a, **k: calls.append("render"))
    scene = json_scene(tmp_path / "s")
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    (tmp_path / "adir.png").mkdir()
    for out, message in ((blocker / "sub" / "out.png", "is not a folder"),
                         (blocker / "out.png", "is not a folder"),
                         (tmp_path / "adir.png", "it is a folder")):
        assert cli(scene, "-o", out, "--spp", 1) == 2
        err = error_line(capsys)
        assert "cannot write" in err and message in err, err
    assert calls == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir.png", "afile", "s"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_cli_refuses_a_read_only_output_folder(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert cli(json_scene(tmp_path / "s"), "-o", ro / "out.png", "--spp", 1) == 2
        assert "is not writable" in error_line(capsys)
    finally:
        ro.chmod(0o700)


def test_cli_creates_no_output_folder_when_the_scene_fails(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 1')
    out = tmp_path / "new" / "deeper" / "out.png"
    assert cli(bad, "-o", out) == 2
    assert "malformed JSON" in error_line(capsys)
    assert not (tmp_path / "new").exists()
    assert cli(json_scene(tmp_path / "s"), "-o", out, "--spp", 1, "-q") == 0  # a good scene: created
    assert out.is_file()


def test_imwrite_is_atomic(tmp_path, monkeypatch):
    """A writer that dies half-way leaves the old image intact and no temporary file."""
    out = tmp_path / "img.png"
    rt.imwrite(torch.full((4, 4, 3), 0.25), out)
    before = out.read_bytes()

    def half_then_fail(self, fp, *args, **kwargs):
        Path(fp).write_bytes(before[:10])
        raise OSError("No space left on device")
    monkeypatch.setattr(Image.Image, "save", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        rt.imwrite(torch.full((4, 4, 3), 0.75), out)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.png"]


def test_cli_failed_write_keeps_the_old_image(tmp_path, capsys, monkeypatch):
    scene = json_scene(tmp_path / "s")
    out = tmp_path / "out.png"
    assert cli(scene, "-o", out, "--spp", 1, "-q") == 0
    before = out.read_bytes()
    monkeypatch.setattr(Image.Image, "save", lambda self, fp, *a, **k: (
        Path(fp).write_bytes(b"\x89PNG partial"), (_ for _ in ()).throw(OSError("disk full"))))
    assert cli(scene, "-o", out, "--spp", 2, "-q") == 2
    assert "disk full" in error_line(capsys)
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["out.png", "s"]


@pytest.mark.parametrize("fail_on", ["json", "npz"])
def test_save_scene_is_atomic(tmp_path, monkeypatch, fail_on):
    """save_scene dying while writing the JSON or a mesh .npz leaves the previous scene file
    loadable and no temporary file."""
    scene = rt.load_scene(json_scene(tmp_path / "src"))
    path = tmp_path / "out" / "scene.json"
    rt.save_scene(scene, path, inline=False)
    before = path.read_bytes()
    files_before = sorted(p.relative_to(path.parent) for p in path.parent.rglob("*"))
    if fail_on == "json":
        real = Path.write_text

        def write_text(self, text, *args, **kwargs):
            real(self, text[:20], *args, **kwargs)
            raise OSError("No space left on device")
        monkeypatch.setattr(Path, "write_text", write_text)
    else:
        def savez(file, **arrays):
            Path(file).write_bytes(b"PK\x03\x04 partial")
            raise OSError("No space left on device")
        monkeypatch.setattr(np, "savez_compressed", savez)
    with pytest.raises(OSError, match="No space left"):
        rt.save_scene(scene, path, inline=False)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.relative_to(path.parent) for p in path.parent.rglob("*")) == files_before
    rt.load_scene(path)


# ==============================================================================================
# Part 9: every loader error is a ValueError naming the file; limits before reading
# ==============================================================================================
def test_deep_json_is_a_value_error(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(ValueError, match=r"deep\.json: malformed JSON: .*nested too deeply"):
        rt.load_scene(deep)
    nested = tmp_path / "nested.json"  # parses, but past max_nesting_depth
    nested.write_text('{"version": 1, "description": ' + "[" * 100 + "]" * 100 + "}")
    with pytest.raises(ValueError, match=r"nested\.json: .*nested more than 64 levels.*max_nesting_depth"):
        rt.load_scene(nested)


def test_deep_xml_is_a_value_error(tmp_path):
    deep = tmp_path / "deep.xml"
    deep.write_text('<scene version="3.0.0">\n' + "<shape>" * 100_000 + "</shape>" * 100_000 + "</scene>")
    with pytest.raises(ValueError, match=r"deep\.xml: line 2: XML elements nested more than 64"):
        rt.load_mitsuba(deep)
    ok = xml_scene(tmp_path, "<shape type='rectangle'/>")
    rt.load_mitsuba(ok, limits=Limits(max_nesting_depth=4), warn=False)
    with pytest.raises(ValueError, match="max_nesting_depth"):
        rt.load_mitsuba(ok, limits=Limits(max_nesting_depth=2), warn=False)


def test_xml_depth_counts_across_includes(tmp_path):
    """20 files, each nesting 10 elements deep before including the next: 200 levels."""
    for k in range(20):
        inner = f'<include filename="d{k + 1}.xml"/>' if k < 19 else ""
        (tmp_path / f"d{k}.xml").write_text('<scene version="3.0.0">' + "<shape>" * 10 + inner
                                            + "</shape>" * 10 + "</scene>")
    scene = xml_scene(tmp_path, '<include filename="d0.xml"/>')
    with pytest.raises(ValueError, match=r"d\d+\.xml: line 1: XML elements \(with includes\) nested more than 64"):
        rt.load_mitsuba(scene, warn=False)


@pytest.mark.parametrize("name, content", [
    ("bad.json", b'{"version": 1, "description": "\xff\xfe"}'),
    ("bad.xml", b'<?xml version="1.0" encoding="utf-8"?><scene version="3.0.0">\xff\xfe</scene>'),
])
def test_undecodable_bytes_are_a_value_error(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    load = rt.load_scene if name.endswith(".json") else rt.load_mitsuba
    with pytest.raises(ValueError, match=rf"{name}: (cannot read|line 1: malformed XML)"):
        load(tmp_path / name)


def test_xml_entity_expansion_is_refused(tmp_path):
    lol = tmp_path / "lol.xml"
    lol.write_text('<?xml version="1.0"?>\n<!DOCTYPE scene [\n <!ENTITY a "aaaaaaaaaa">\n'
                   ' <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">\n]>\n'
                   '<scene version="3.0.0"><string name="x" value="&b;"/></scene>')
    with pytest.raises(ValueError, match=r"lol\.xml: line 3: XML entity declarations"):
        rt.load_mitsuba(lol)


def test_npz_bomb_is_refused_from_its_header_before_inflating(tmp_path):
    """200 MB of zeros compressed to a few hundred KB: refused from the .npy header with almost
    no memory used, both for the element limit and for the total-bytes limit."""
    n = 200 * (1 << 20) // 12
    bomb = npz_of_zeros(tmp_path / "s" / "bomb.npz", (n, 3))
    assert bomb.stat().st_size < 2 << 20
    scene = json_scene(tmp_path / "s", mesh={"path": "bomb.npz"})
    for limits, field in ((Limits(max_array_elements=10 ** 6), "max_array_elements"),
                          (Limits(max_total_bytes=50 << 20), "max_total_bytes")):
        tracemalloc.start()
        try:
            with pytest.raises(ValueError) as err:
                rt.load_scene(scene, limits=limits)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        msg = str(err.value)
        assert msg.startswith(f"{scene}: shapes[0].mesh.path: bomb.npz: array 'vertices'"), msg
        assert field in msg and (str(n * 3) in msg or str(n * 12) in msg), msg
        assert peak < 20 << 20, peak  # nothing inflated


def test_npz_header_claiming_a_huge_array_is_refused_with_the_default_limits(tmp_path):
    bomb = npz_of_zeros(tmp_path / "s" / "huge.npz", (1 << 30, 3), data_bytes=1024)  # "12 GiB"
    scene = json_scene(tmp_path / "s", mesh={"path": "huge.npz"})
    with pytest.raises(ValueError, match=r"huge\.npz: array 'vertices' has 3221225472 elements.*max_array_elements"):
        rt.load_scene(scene)
    # within the limits, but the zip entry holds less than the header needs: forged
    npz_of_zeros(bomb, (1000, 3), data_bytes=1024)
    with pytest.raises(ValueError, match=r"huge\.npz: array 'vertices': the zip entry holds 1152 bytes but its header needs 12128"):
        rt.load_scene(scene)


@pytest.mark.parametrize("content, message", [
    (b"this is not a zip file at all", r"not a valid \.npz \(zip\) file \(BadZipFile"),
    (b"PK\x03\x04" + bytes(60), r"not a valid \.npz \(zip\) file"),
])
def test_bad_zip_is_a_value_error(tmp_path, content, message):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "bad.npz").write_bytes(content)
    scene = json_scene(tmp_path / "s", mesh={"path": "bad.npz"})
    with pytest.raises(ValueError, match=r"scene\.json: shapes\[0\]\.mesh\.path: bad\.npz: " + message) as err:
        rt.load_scene(scene)
    assert isinstance(err.value.__cause__.__cause__ or err.value.__cause__, zipfile.BadZipFile)


def test_npy_with_pickled_objects_is_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    scene = json_scene(tmp_path, {"texture": "obj.npy"})
    with pytest.raises(ValueError, match=r"obj\.npy: array: dtype object is not a plain numeric type"):
        rt.load_scene(scene)


def test_out_of_memory_while_reading_an_array_is_a_value_error(tmp_path, monkeypatch):
    """numpy's _ArrayMemoryError (a MemoryError) becomes a ValueError naming the file."""
    np.savez(tmp_path / "m.npz", vertices=np.zeros((3, 3), np.float32), indices=np.array([[0, 1, 2]]))
    scene = json_scene(tmp_path, mesh={"path": "m.npz"})

    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 4.00 GiB for an array")
    monkeypatch.setattr(np.lib.format, "read_array", no_memory)
    with pytest.raises(ValueError, match=r"m\.npz: array '(vertices|indices)': out of memory") as err:
        rt.load_scene(scene)
    assert isinstance(err.value.__cause__.__cause__, MemoryError)


def test_image_pixel_limit_is_checked_before_decoding(tmp_path):
    """A 4000 x 4000 PNG of zeros is a small file: refused from its header with a low limit;
    Pillow's own DecompressionBombError becomes a ValueError naming the file; inside a scene
    the message names the scene file and the entry too."""
    bomb = tmp_path / "bomb.png"
    Image.new("L", (4000, 4000)).save(bomb)
    assert bomb.stat().st_size < 100_000
    with pytest.raises(ValueError, match=r"bomb\.png.*4000 x 4000 = 16000000 pixels.*max_image_pixels"):
        rt.imread(bomb, limits=Limits(max_image_pixels=10 ** 6))
    scene = json_scene(tmp_path, {"texture": "bomb.png"})
    with pytest.raises(ValueError, match=r"scene\.json: materials\[0\]\.diffuse\.texture: bomb\.png: image is"):
        rt.load_scene(scene, limits=Limits(max_image_pixels=10 ** 6))
    xml = xml_scene(tmp_path, bitmap_shape("bomb.png"))
    with pytest.raises(ValueError, match=r"scene\.xml: line \d+: bomb\.png: image is"):
        rt.load_mitsuba(xml, limits=Limits(max_image_pixels=10 ** 6), warn=False)
    Image.MAX_IMAGE_PIXELS, saved = 1000, Image.MAX_IMAGE_PIXELS
    try:
        with pytest.raises(ValueError, match=r"bomb\.png.*too many pixels for Pillow") as err:
            rt.imread(bomb)
        assert isinstance(err.value.__cause__, Image.DecompressionBombError)
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def test_truncated_png_is_a_value_error(tmp_path):
    good = png(tmp_path / "good.png", size=(64, 64))
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:60])
    with pytest.raises(ValueError, match=r"cut\.png.*cannot read image"):
        rt.imread(cut)


PLY_HEAD = ("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
            "property float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n")


@pytest.mark.parametrize("body, message", [
    ("0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n", r"bad\.ply: face 0: vertex index 7 is out of range \(3 vertices\)"),
    ("0 0 0\n1 0 0\n0 1 0\n3 0 1 3\n", r"bad\.ply: face 0: vertex index 3 is out of range \(3 vertices\)"),
    ("0 0 0\n1 0 0\n0 1 0\n3 0 -1 2\n", r"bad\.ply: face 0: vertex index -1 is negative"),
    ("0 0 0\n1 nan 0\n0 1 0\n3 0 1 2\n", r"bad\.ply: vertex 1 is not finite in float32"),
    ("0 0 0\n1 0 0\n0 1e39 0\n3 0 1 2\n", r"bad\.ply: vertex 2 is not finite in float32"),
])
def test_ply_indices_and_values_are_validated(tmp_path, body, message):
    head = PLY_HEAD.replace("float", "double") if "1e39" in body else PLY_HEAD  # finite in float64
    (tmp_path / "bad.ply").write_text(head + body)
    with pytest.raises(ValueError, match=message):
        rt.load_mesh(tmp_path / "bad.ply")
    xml = xml_scene(tmp_path, '<shape type="ply"><string name="filename" value="bad.ply"/></shape>')
    with pytest.raises(ValueError, match=r"scene\.xml: line \d+: .*" + message):
        rt.load_mitsuba(xml, warn=False)


@pytest.mark.parametrize("text, message", [
    ("v 0 0 0\nv 1e39 0 0\nv 0 1 0\nf 1 2 3\n", r"line 2: 'v' has 1e\+39, out of the float32 range"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nvn 0 0 -4e38\nf 1//1 2//1 3//1\n", r"line 4: 'vn' has -4e\+38"),
])
def test_obj_float32_overflow_names_the_line(tmp_path, text, message):
    (tmp_path / "big.obj").write_text(text)
    with pytest.raises(ValueError, match=r"big\.obj: " + message):
        rt.load_obj(tmp_path / "big.obj")
    with pytest.raises(ValueError, match=r"big\.obj: " + message):
        rt.load_mesh(tmp_path / "big.obj")


def test_json_inline_values_out_of_float32_range(tmp_path):
    scene = json_scene(tmp_path, mesh={"vertices": [[-1, -1, 0], [1e39, -1, 0], [0, 1, 0]],
                                       "indices": [[0, 1, 2]]})
    with pytest.raises(ValueError, match=r"shapes\[0\]\.mesh\.vertices: contains a value out of the float32 range"):
        rt.load_scene(scene)
    scene = json_scene(tmp_path, (0.5, 1e39, 0.5))
    with pytest.raises(ValueError, match=r"materials\[0\]\.diffuse: .*out of the float32 range"):
        rt.load_scene(scene)


@pytest.mark.parametrize("content, message", [
    (bytes(range(256)) * 3, "neither binary STL"),
    (b"solid x\n facet normal 0 0 1 \xff\xfe garbage", "starts like ASCII STL"),
])
def test_garbage_stl_is_a_clear_value_error(tmp_path, content, message):
    (tmp_path / "junk.stl").write_bytes(content)
    with pytest.raises(ValueError, match=r"junk\.stl: not an STL file: " + message) as err:
        rt.load_mesh(tmp_path / "junk.stl")
    assert "charset_normalizer" not in str(err.value)


def _fan_out(folder: Path, depth: int) -> Path:
    """inc0.xml includes inc1.xml twice, which includes inc2.xml twice, ...: 2^depth files."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(depth):
        (folder / f"inc{k}.xml").write_text(
            f'<scene version="3.0.0"><include filename="inc{k + 1}.xml"/>'
            f'<include filename="inc{k + 1}.xml"/></scene>')
    (folder / f"inc{depth}.xml").write_text('<scene version="3.0.0"/>')
    return xml_scene(folder, '<include filename="inc0.xml"/>')


def test_include_fan_out_is_capped(tmp_path):
    scene = _fan_out(tmp_path, 30)  # 2^31 includes if nothing stopped it
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"inc\d+\.xml: line 1: <include> of 'inc\d+\.xml': more than 256 includes.*max_includes"):
        rt.load_mitsuba(scene, warn=False)
    assert time.perf_counter() - start < 10
    small = _fan_out(tmp_path / "small", 5)  # 63 includes: fine by default, refused below
    rt.load_mitsuba(small, warn=False)
    with pytest.raises(ValueError, match="more than 40 includes"):
        rt.load_mitsuba(small, warn=False, limits=Limits(max_includes=40))


def test_file_size_limit(tmp_path):
    scene = json_scene(tmp_path)
    with pytest.raises(ValueError, match=r"scene\.json: file is \d+ bytes, more than the limit of 100 .*max_file_bytes"):
        rt.load_scene(scene, limits=Limits(max_file_bytes=100))


def test_limits_arguments_are_checked():
    with pytest.raises(ValueError, match=r"Limits\.max_includes must be a positive integer"):
        Limits(max_includes=0)
    with pytest.raises(TypeError, match="limits must be a raytrace.io.Limits"):
        rt.load_scene("scenes/cornell_box", limits={"max_includes": 3})


def test_default_limits_can_be_replaced(tmp_path, monkeypatch):
    import raytrace.io.limits as limits
    scene = json_scene(tmp_path)
    monkeypatch.setattr(limits, "DEFAULT_LIMITS", Limits(max_file_bytes=100))
    with pytest.raises(ValueError, match="max_file_bytes"):
        rt.load_scene(scene)


# ==============================================================================================
# Part 10: paths in scene files
# ==============================================================================================
@pytest.fixture
def outside(tmp_path):
    """A texture, an OBJ and an .npz outside the scene folder tmp_path/s."""
    other = tmp_path / "other"
    png(other / "tex.png")
    (other / "tri.obj").write_text("v -1 -1 0\nv 1 -1 0\nv 0 1 0\nf 1 2 3\n")
    np.savez(other / "tri.npz", vertices=np.array(TRIANGLE["vertices"], np.float32),
             indices=np.array(TRIANGLE["indices"]))
    (tmp_path / "s").mkdir()
    return other


def _json_refs(other: Path, how: str):
    """(diffuse, mesh) entries naming files of `other` by absolute path, ../ or a symlink."""
    def name(file):
        if how == "absolute":
            return str(other / file)
        if how == "dotdot":
            return f"../other/{file}"
        return f"link/{file}"
    return name


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink"])
@pytest.mark.parametrize("kind", ["texture", "obj", "npz"])
def test_json_paths_outside_the_folder_are_refused_unless_allowed(tmp_path, outside, how, kind):
    folder = tmp_path / "s"
    if how == "symlink":
        (folder / "link").symlink_to(outside, target_is_directory=True)
    name = _json_refs(outside, how)
    if kind == "texture":
        scene = json_scene(folder, {"texture": name("tex.png")})
        entry = r"materials\[0\]\.diffuse\.texture"
    else:
        scene = json_scene(folder, mesh={"path": name(f"tri.{kind}")})
        entry = r"shapes\[0\]\.mesh\.path"
    with pytest.raises(ValueError) as err:
        rt.load_scene(scene)
    msg = str(err.value)
    assert msg.startswith(f"{scene}: ") and "resolves to" in msg and "outside the scene's folder" in msg
    assert __import__("re").search(entry, msg) and str(outside.resolve()) in msg
    assert "allowed_paths" in msg and "--allow-path" in msg
    rt.load_scene(scene, allowed_paths=[outside])
    rt.load_scene(scene, allow_any_path=True)
    with pytest.raises(ValueError, match="outside the scene's folder .* and the allowed paths"):
        rt.load_scene(scene, allowed_paths=[tmp_path / "elsewhere"])


def test_a_sibling_folder_with_the_same_prefix_is_outside(tmp_path):
    """s2/ is not inside s/ although its path starts with it."""
    png(tmp_path / "s2" / "tex.png")
    scene = json_scene(tmp_path / "s", {"texture": "../s2/tex.png"})
    with pytest.raises(ValueError, match="outside the scene's folder"):
        rt.load_scene(scene)


def test_refusal_happens_before_looking_at_the_file(tmp_path):
    """A refused name is refused whether or not the file exists (no probing outside)."""
    scene = json_scene(tmp_path / "s", {"texture": "/nonexistent/secret.png"})
    with pytest.raises(ValueError, match="resolves to '/nonexistent/secret.png', outside"):
        rt.load_scene(scene)


def test_symlinks_inside_the_folder_are_fine(tmp_path):
    png(tmp_path / "s" / "real" / "tex.png")
    (tmp_path / "s" / "alias.png").symlink_to(tmp_path / "s" / "real" / "tex.png")
    rt.load_scene(json_scene(tmp_path / "s", {"texture": "alias.png"}))
    # the scene folder itself reached through a symlink
    (tmp_path / "via").symlink_to(tmp_path / "s", target_is_directory=True)
    rt.load_scene(tmp_path / "via" / "scene.json")


def test_mitsuba_include_outside_is_refused_before_reading(tmp_path):
    scene = xml_scene(tmp_path / "s", '<include filename="/etc/passwd"/>')
    with pytest.raises(ValueError, match=r"scene\.xml: line \d+: <include>: '/etc/passwd' resolves to '/etc/passwd', outside"):
        rt.load_mitsuba(scene)
    (tmp_path / "inc.xml").write_text('<scene version="3.0.0"/>')
    scene = xml_scene(tmp_path / "s", '<include filename="../inc.xml"/>')
    with pytest.raises(ValueError, match="resolves to .*inc.xml'?, outside"):
        rt.load_mitsuba(scene)
    rt.load_mitsuba(scene, allowed_paths=[tmp_path / "inc.xml"])


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink", "path"])
def test_mitsuba_files_outside_the_folder_are_refused_unless_allowed(tmp_path, outside, how):
    folder = tmp_path / "s"
    if how == "symlink":
        (folder / "link").symlink_to(outside, target_is_directory=True)
    name = _json_refs(outside, how)
    if how == "path":  # <path> adds a search folder; the files found there are still checked
        body = f'<path value="{outside}"/>' + bitmap_shape("tex.png")
    else:
        body = bitmap_shape(name("tex.png"))
    mesh = bitmap_shape("tri.png").replace("rectangle", "obj").replace(
        "<bsdf", f'<string name="filename" value="{name("tri.obj")}"/><bsdf') if how != "path" else \
        f'<path value="{outside}"/><shape type="obj"><string name="filename" value="tri.obj"/></shape>'
    png(folder / "tri.png")
    for part, what in ((body, "bitmap"), (mesh, "<shape type='obj'>")):
        scene = xml_scene(folder, part)
        with pytest.raises(ValueError) as err:
            rt.load_mitsuba(scene, warn=False)
        assert __import__("re").match(
            rf"{scene}: line \d+: {what}: '[^']*' resolves to '{outside.resolve()}/[^']*', outside the scene's folder",
            str(err.value)), str(err.value)
    scene = xml_scene(folder, body + mesh)
    _, report = rt.load_mitsuba(scene, warn=False, allowed_paths=[outside], return_report=True)
    assert report.files[0] == str(scene.resolve())
    assert {str((outside / f).resolve()) for f in ("tri.obj", "tex.png")} <= set(report.files)
    rt.load_mitsuba(scene, warn=False, allow_any_path=True)


def test_policy_arguments_are_checked(tmp_path):
    scene = json_scene(tmp_path)
    with pytest.raises(TypeError, match=r"allowed_paths must be a list .*write allowed_paths=\["):
        rt.load_scene(scene, allowed_paths=str(tmp_path))
    with pytest.raises(TypeError, match="allow_any_path must be a bool"):
        rt.load_mitsuba(xml_scene(tmp_path, ""), allow_any_path="yes")


def test_files_read_are_reported(tmp_path):
    from raytrace.io.scenes import read_scene
    png(tmp_path / "tex.png")
    (tmp_path / "tri.obj").write_text("v -1 -1 0\nv 1 -1 0\nv 0 1 0\nf 1 2 3\n")
    scene = json_scene(tmp_path, {"texture": "tex.png"}, mesh={"path": "tri.obj"})
    files = []
    read_scene(scene, files_read=files)
    assert files == [str(p.resolve()) for p in (scene, tmp_path / "tex.png", tmp_path / "tri.obj")]


def test_cli_allow_path_flags(tmp_path, outside, capsys):
    scene = json_scene(tmp_path / "s", {"texture": "../other/tex.png"})
    out = tmp_path / "out.png"
    assert cli(scene, "-o", out, "--spp", 1, "-q") == 2
    err = error_line(capsys)
    assert "outside the scene's folder" in err and "--allow-path" in err and not out.exists()
    assert cli(scene, "-o", out, "--spp", 1, "-q", "--allow-path", outside) == 0
    out.unlink()
    assert cli(scene, "-o", out, "--spp", 1, "-q", "--allow-any-path") == 0
    assert out.is_file()


def test_atomic_write_follows_a_symlink(tmp_path):
    """Writing to a link replaces the file it points to and keeps the link, as a plain open()
    would."""
    target = tmp_path / "real.png"
    rt.imwrite(torch.zeros(2, 2, 3), target)
    link = tmp_path / "link.png"
    link.symlink_to(target)
    rt.imwrite(torch.ones(2, 2, 3), link)
    assert link.is_symlink()
    assert float(rt.imread(target).min()) == 1.0
