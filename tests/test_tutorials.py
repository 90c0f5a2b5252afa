"""Every tutorial in quick mode: the parameter errors must fall by a large factor.

Each tutorial's ``main(argv)`` runs in-process with ``--quick`` into a temporary folder. The
checks would fail if the gradients were zero, of the wrong sign or badly scaled: the start
is far from the target and only a working gradient brings the error down by the factors
asserted here (each quick run reaches these with a margin at the default seed).
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
PICTURES = ("target.png", "initial.png", "final.png", "comparison.png", "optimisation.gif", "loss.png",
            "result.json")


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"tutorial_{name}", TUTORIALS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_quick(name: str, tmp_path: Path) -> dict:
    out = tmp_path / name
    result = load(name).main(["--quick", "--out", str(out), "--threads", "1", "--no-progress"])
    for picture in PICTURES:
        path = out / picture
        assert path.is_file() and path.stat().st_size > 0, f"{name} did not write {picture}"
    with open(out / "result.json") as f:
        saved = json.load(f)
    assert saved["iterations"] == result["iterations"] > 0
    assert saved["quick"] is True
    return result


def fell(result: dict, key: str, factor: float, below: float = 0.0) -> None:
    """The error `key` ended below its initial value (result["initial_errors"][key]) / factor, or below `below`."""
    start, end = result["initial_errors"][key], result[key]
    assert end < start / factor or end < below, (
        f"{key} fell from {start:.4g} to {end:.4g}: less than {factor}x (and not below {below})")


def test_01_single_triangle(tmp_path):
    r = run_quick("01_single_triangle", tmp_path)
    fell(r, "vertex_error", 10.0)


def test_02_pose_estimation(tmp_path):
    r = run_quick("02_pose_estimation", tmp_path)
    # --quick starts half as far as the full run (10 degrees, 5% of the size).
    assert r["initial_errors"]["rotation_error_deg"] == pytest.approx(10.0, abs=1e-3)
    assert r["initial_errors"]["translation_error_percent"] == pytest.approx(5.0, abs=1e-3)
    fell(r, "rotation_error_deg", 5.0)
    fell(r, "translation_error_percent", 4.0)  # depth is the hardest part to see in a 96 x 96 image


def test_03_camera_estimation(tmp_path):
    r = run_quick("03_camera_estimation", tmp_path)
    fell(r, "position_error", 5.0)
    fell(r, "direction_error_deg", 5.0)


def test_04_light_intensity(tmp_path):
    r = run_quick("04_light_intensity", tmp_path)
    assert r["initial_errors"]["relative_error_percent"] == pytest.approx(90.0, abs=1e-3)
    # From 10x too dim to within 2% in 30 quick iterations.
    assert r["relative_error_percent"] < 2.0, r


def test_05_materials(tmp_path):
    r = run_quick("05_materials", tmp_path)
    fell(r, "texture_rmse", 3.0)
    fell(r, "roughness_error", 5.0)


def test_06_environment_light(tmp_path):
    r = run_quick("06_environment_light", tmp_path)
    fell(r, "envmap_error", 5.0)


def test_10_distributed_reconstruction(tmp_path):
    # One process here; tests/test_distributed.py checks torchrun's ranks against one process.
    r = run_quick("10_distributed_reconstruction", tmp_path)
    assert r["views"] >= 16 and r["world_size"] == 1 and r["exact"] is True
    fell(r, "chamfer", 3.0)
