"""The command line (python -m raytrace) and image files (raytrace.io.images)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import raytrace as rt
from raytrace.__main__ import main, parse_resolution, pass_seed, split_passes, UsageError
from raytrace.io.images import exr_supported, imread, imwrite, srgb_decode, srgb_encode
from raytrace.io.scenes import read_scene

ROOT = Path(__file__).resolve().parent.parent
CORNELL = ROOT / "scenes" / "cornell_box"
needs_exr = pytest.mark.skipif(not exr_supported(), reason="OpenEXR package not installed")


def run_cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "raytrace", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


# ----------------------------------------------------------------------------------------------
# python -m raytrace, as a user runs it
# ----------------------------------------------------------------------------------------------
def test_render_cornell_box_png(tmp_path):
    out = tmp_path / "tmp.png"
    r = run_cli("render", CORNELL, "-o", out, "--spp", 1, "--resolution", "32x32", "--threads", 2)
    assert r.returncode == 0, r.stderr
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (32, 32) and im.mode == "RGB"
        pixels = np.asarray(im)
    assert pixels.mean() > 10  # not black
    assert str(out) in r.stdout and "32x32" in r.stdout and "1 spp" in r.stdout
    assert "Traceback" not in r.stderr


def test_help_exits_0(capsys):
    r = run_cli("--help")
    assert r.returncode == 0 and "render" in r.stdout and "usage: python -m raytrace" in r.stdout
    with pytest.raises(SystemExit) as exit_:  # in-process: the same parser
        main(["render", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for option in ("SCENE", "--output", "--spp", "--max-bounces", "--seed", "--resolution",
                   "--threads", "HEIGHTxWIDTH"):
        assert option in out, option


def test_missing_scene_exits_2_with_one_line(tmp_path):
    missing = tmp_path / "no_such_scene"
    r = run_cli("render", missing, "-o", tmp_path / "x.png")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert lines == [f"python -m raytrace: error: {missing}: no such file or folder"]
    assert not (tmp_path / "x.png").exists()


# The remaining argument errors run in-process (fast): same code path as the subprocess.
@pytest.mark.parametrize("args, message", [
    (["--resolution", "32by32"], "--resolution must be HEIGHTxWIDTH"),
    (["--resolution", "0x4"], "--resolution must be positive"),
    (["--spp", "0"], "--spp must be >= 1"),
    (["--seed", "-1"], "--seed must be >= 0"),
    (["--max-bounces", "-2"], "--max-bounces must be >= 0"),
    (["--threads", "0"], "--threads must be >= 1"),
])
def test_bad_arguments_exit_2(tmp_path, capsys, args, message):
    assert main(["render", str(CORNELL), "-o", str(tmp_path / "x.png"), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_bad_output_extension_and_bad_scene_exit_2(tmp_path, capsys):
    assert main(["render", str(CORNELL), "-o", str(tmp_path / "x.bmp")]) == 2
    assert "unknown image extension '.bmp'" in capsys.readouterr().err
    bad = tmp_path / "scene.json"
    bad.write_text('{"version": 1}')
    assert main(["render", str(bad), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad}: missing key 'camera'" in err


def test_resolution_and_passes():
    assert parse_resolution("240x320") == (240, 320)
    assert parse_resolution("64") == (64, 64)
    with pytest.raises(UsageError):
        parse_resolution("x3")
    assert split_passes(20) == [8, 8, 4] and split_passes(16) == [8, 8] and split_passes(3) == [3]
    assert pass_seed(0, 0) == 0 and pass_seed(2, 1) == 2 * 1000003 + 1
    assert pass_seed(2**62, 5) < 2**63


@needs_exr
def test_output_is_the_weighted_average_of_the_passes(tmp_path):
    """12 spp = an 8-spp pass and a 4-spp pass with derived seeds, weighted by spp; the result
    does not depend on the thread count."""
    out1, out2 = tmp_path / "a.exr", tmp_path / "b.exr"
    common = ["render", str(CORNELL), "--spp", "12", "--resolution", "6x5", "--seed", "3",
              "--max-bounces", "2", "-q"]
    assert main(common + ["-o", str(out1), "--threads", "1"]) == 0
    assert main(common + ["-o", str(out2), "--threads", "2"]) == 0
    a, b = imread(out1), imread(out2)
    assert torch.equal(a, b)
    scene, _ = read_scene(CORNELL, resolution=(6, 5))
    p0 = rt.render(scene, spp=8, max_bounces=2, seed=pass_seed(3, 0)).double()
    p1 = rt.render(scene, spp=4, max_bounces=2, seed=pass_seed(3, 1)).double()
    assert torch.equal(a, ((p0 * 8 + p1 * 4) / 12).float())


def test_png_output_is_deterministic(tmp_path):
    outs = [tmp_path / "a.png", tmp_path / "b.png"]
    for out in outs:
        assert main(["render", str(CORNELL), "-o", str(out), "--spp", "2", "--resolution", "8",
                     "-q"]) == 0
    assert outs[0].read_bytes() == outs[1].read_bytes()


# ----------------------------------------------------------------------------------------------
# Image files
# ----------------------------------------------------------------------------------------------
def srgb_reference(x: float) -> float:
    """IEC 61966-2-1, written out once more in float64."""
    return 12.92 * x if x <= 0.0031308 else 1.055 * x ** (1 / 2.4) - 0.055


def test_png_encodes_linear_values_with_the_srgb_curve(tmp_path):
    values = [0.0, 0.0005, 0.0031308, 0.004, 0.01, 0.05, 0.18, 0.214, 0.5, 0.75, 0.99, 1.0]
    img = torch.tensor(values, dtype=torch.float32).reshape(1, -1, 1).repeat(2, 1, 3)
    img[1] = torch.tensor([-1.0, 2.0, 5.0, 0, 0, 0, 0, 0, 0, 0, 0, 0])[:, None]  # clipped
    imwrite(img, tmp_path / "ramp.png")
    with Image.open(tmp_path / "ramp.png") as im:
        stored = np.asarray(im).astype(np.float64) / 255.0
    expected = np.array([srgb_reference(x) for x in values])
    assert np.abs(stored[0, :, 0] - expected).max() <= 0.5 / 255 + 1e-9  # rounded to nearest
    assert (stored[0] == stored[0, :, :1]).all()
    assert stored[1, 0, 0] == 0.0 and stored[1, 1, 0] == 1.0 and stored[1, 2, 0] == 1.0
    # Reading decodes back to linear: within one 8-bit step of the sRGB curve.
    back = imread(tmp_path / "ramp.png")
    assert back.dtype == torch.float32 and back.shape == (2, 12, 3)
    assert np.allclose(back[0, :, 0].numpy(), srgb_decode(stored[0, :, 0]), atol=1e-6)
    assert (srgb_encode(back[0, :, 0].double()) - torch.tensor(expected)).abs().max() <= 1 / 255


def test_srgb_functions_invert_each_other():
    x = torch.linspace(0, 1, 1001, dtype=torch.float64)
    assert torch.allclose(srgb_decode(srgb_encode(x)), x, atol=1e-12)
    assert np.allclose(srgb_encode(x.numpy()), [srgb_reference(float(v)) for v in x], atol=1e-12)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_png_channel_counts_and_alpha_is_linear(tmp_path, channels):
    img = torch.full((3, 4, channels), 0.5)
    imwrite(img, tmp_path / "c.png")
    back = imread(tmp_path / "c.png")
    assert back.shape == (3, 4, channels)
    assert (back[..., :3] - 0.5).abs().max() < 0.005
    if channels == 4:
        with Image.open(tmp_path / "c.png") as im:
            assert im.mode == "RGBA" and np.asarray(im)[0, 0, 3] == 128  # alpha not sRGB-encoded


def test_jpeg_round_trip_is_close(tmp_path):
    img = torch.linspace(0, 1, 16).reshape(1, 16, 1).repeat(8, 1, 3)
    for name in ("a.jpg", "b.JPEG"):
        imwrite(img.numpy(), tmp_path / name)
        back = imread(tmp_path / name)
        assert back.shape == (8, 16, 3) and (back - img).abs().max() < 0.05


@needs_exr
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_exr_round_trip_is_bit_exact(tmp_path, channels):
    g = torch.Generator().manual_seed(0)
    img = torch.randn(5, 7, channels, generator=g) * 100.0
    img[0, 0] = 1e-30
    img[0, 1] = 3e38
    imwrite(img, tmp_path / "a.exr")
    back = imread(tmp_path / "a.exr")
    assert back.dtype == torch.float32 and torch.equal(back, img)


@pytest.mark.parametrize("img, path, error, message", [
    (torch.zeros(4), "a.png", ValueError, "img must have shape [H, W, C]"),
    (torch.zeros(1, 4, 4, 3), "a.png", ValueError, "or [H, W]"),
    (torch.zeros(4, 4, 2), "a.png", ValueError, "C in (1, 3, 4)"),
    (torch.full((2, 2, 3), float("nan")), "a.png", ValueError, "img contains NaN"),
    (torch.full((2, 2, 3), float("inf")), "a.exr", ValueError, "img contains Inf"),
    (torch.zeros(2, 2, 3, dtype=torch.uint8), "a.png", TypeError, "floating-point"),
    ([[[0.0, 0.0, 0.0]]], "a.png", TypeError, "torch.Tensor or numpy.ndarray"),
    (torch.zeros(2, 2, 3), "a.bmp", ValueError, "unknown image extension '.bmp'"),
    (torch.zeros(2, 2, 4), "a.jpg", ValueError, "alpha channel"),
])
def test_imwrite_errors(tmp_path, img, path, error, message):
    with pytest.raises(error) as err:
        imwrite(img, tmp_path / path)
    assert message in str(err.value)
    assert not (tmp_path / path).exists()


def test_imread_errors(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        imread(tmp_path / "missing.png")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read image"):
        imread(tmp_path / "junk.png")
    with pytest.raises(ValueError, match="unknown image extension"):
        imread(tmp_path / "a.tif")


def test_imwrite_detaches_and_accepts_numpy(tmp_path):
    img = torch.rand(4, 4, 3, requires_grad=True)
    imwrite(img, tmp_path / "g.png")
    imwrite(np.random.default_rng(0).random((4, 4, 3)), tmp_path / "n.png")  # float64 ok
    assert imread(tmp_path / "g.png").shape == (4, 4, 3)


# ----------------------------------------------------------------------------------------------
# Mitsuba 3 XML scenes on the command line
# ----------------------------------------------------------------------------------------------
MITSUBA_CBOX = ROOT / "scenes" / "mitsuba_cbox" / "scene.xml"


def test_render_mitsuba_xml_png(tmp_path):
    out = tmp_path / "cbox.png"
    r = run_cli("render", MITSUBA_CBOX, "-o", out, "--spp", 1, "--resolution", "12x16",
                "--threads", 1)
    assert r.returncode == 0, r.stderr
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (16, 12) and im.mode == "RGB"
        pixels = np.asarray(im)
    assert pixels.mean() > 10  # not black: the area light is seen
    # max_bounces comes from the file's max_depth = 5 when --max-bounces is not given
    assert str(out) in r.stdout and "12x16" in r.stdout and "1 spp, 4 bounces" in r.stdout
    assert "Traceback" not in r.stderr and "skipped" not in r.stderr  # nothing is skipped


@needs_exr
def test_mitsuba_defaults_come_from_the_report(tmp_path, capsys):
    """No --spp/--max-bounces: the sampler's sample_count (here $spp, set with -D) and
    max_depth - 1 are used; the folder stands for its scene.xml; the pixels are those of
    rt.load_mitsuba + rt.render with the first pass's seed."""
    out = tmp_path / "a.exr"
    assert main(["render", str(MITSUBA_CBOX.parent), "-o", str(out), "-D", "spp=3",
                 "--resolution", "5x6", "--seed", "2", "--threads", "1"]) == 0
    assert "(5x6, 3 spp, 4 bounces)" in capsys.readouterr().out
    scene, report = rt.load_mitsuba(MITSUBA_CBOX, params={"spp": 3}, resolution=(5, 6),
                                    return_report=True, warn=False)
    assert report.spp == 3 and report.max_bounces == 4
    expected = rt.render(scene, spp=3, max_bounces=4, seed=pass_seed(2, 0))
    assert torch.equal(imread(out), expected.float())


def test_mitsuba_skipped_elements_are_listed(tmp_path, capsys):
    text = MITSUBA_CBOX.read_text()
    point = '<emitter type="point"><point name="position" value="0, 0.5, 0"/></emitter>'
    scene = tmp_path / "skip.xml"
    scene.write_text(text.replace("</scene>", point + "\n</scene>"))
    line = scene.read_text().splitlines().index(point) + 1
    args = ["render", str(scene), "-o", str(tmp_path / "s.png"), "--spp", "1", "--resolution",
            "4", "--threads", "1"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "skipped 1 thing" in err
    assert f"skipped: {scene}: line {line}: <emitter type='point'>" in err
    assert main(args + ["-q"]) == 0
    assert capsys.readouterr().err == ""


def test_malformed_mitsuba_xml_exits_2_without_traceback(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text('<scene version="3.0.0">\n  <shape type="rectangle">\n</scene>\n')
    out = tmp_path / "x.png"
    r = run_cli("render", bad, "-o", out)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert lines[0].startswith(f"python -m raytrace: error: {bad}: line 3: malformed XML")
    assert not out.exists()


@pytest.mark.parametrize("scene, extra, message", [
    (MITSUBA_CBOX, ["-D", "spp"], "-D must be NAME=VALUE"),
    (MITSUBA_CBOX, ["-D", "spp=many"], "scene.xml: line 25: value='many'"),  # the loader's error
    (CORNELL, ["-D", "spp=4"], "-D sets parameters of Mitsuba XML scenes"),
    (ROOT / "no_such_scene.xml", [], "no_such_scene.xml: no such file or folder"),
])
def test_mitsuba_argument_errors_exit_2(tmp_path, capsys, scene, extra, message):
    assert main(["render", str(scene), "-o", str(tmp_path / "x.png"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "x.png").exists()


def test_mitsuba_without_sensor_exits_2(tmp_path, capsys):
    scene = tmp_path / "nocam.xml"
    scene.write_text('<scene version="3.0.0">\n  <shape type="rectangle"/>\n</scene>\n')
    assert main(["render", str(scene), "-o", str(tmp_path / "x.png")]) == 2
    assert "has no supported sensor" in capsys.readouterr().err


def test_render_help_documents_xml(capsys):
    with pytest.raises(SystemExit):
        main(["render", "--help"])
    out = capsys.readouterr().out
    for text in (".xml", "Mitsuba", "rt.load_mitsuba", "-D NAME=VALUE", "sample_count",
                 "max_depth", "docs/mesh_and_mitsuba.md"):
        assert text in out, text
