"""Tutorial 7 (shape reconstruction) in quick mode, and its Chamfer distance.

The quick run (40 iterations) reconstructs the teapot and the generated blob from three 32 x 32 views,
starting from an icosphere, with plain Adam, Adam + a Laplacian regulariser and Large Steps
(issue 5). The test asserts what the tutorial is there to show: on both targets Large Steps
ends at a lower Chamfer distance than plain Adam, and it gets closer than the start sphere.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

TUTORIAL = Path(__file__).resolve().parent.parent / "tutorials" / "07_shape_reconstruction.py"


def load():
    spec = importlib.util.spec_from_file_location("tutorial_07_shape_reconstruction", TUTORIAL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_chamfer_distance():
    """The Chamfer distance of a mesh to itself is near zero; to the same mesh moved by t it
    is about 2 |t| for a t small against the mesh but large against the sample spacing."""
    t07 = load()
    import raytrace as rt
    m = rt.sphere(subdivisions=3)
    chamfer = t07.Chamfer(m.vertices, m.indices, samples=4000, seed=3)
    same = chamfer(m.vertices, m.indices)
    shift = 0.3
    moved = chamfer(m.vertices + torch.tensor([shift, 0.0, 0.0]), m.indices)
    # Only the sample spacing (4000 points on 4 pi: about 0.06 apart) keeps it above zero.
    assert same < 0.08
    # Unit sphere moved by 0.3 along x: the mean distance from one surface to the other is
    # E|0.3 cos(theta)| = 0.15 each way (to first order), so about 0.3 in all.
    assert moved == pytest.approx(shift, rel=0.25)
    assert moved > 4 * same
    with pytest.raises(ValueError):
        t07.sample_surface(np.zeros((3, 3)), np.array([[0, 1, 2]]), 10, np.random.default_rng(0))


def test_quick_large_steps_beats_adam(tmp_path):
    out = tmp_path / "07"
    result = load().main(["--quick", "--out", str(out), "--threads", "1", "--no-progress"])
    for picture in ("comparison.png", "chamfer.png", "optimisation_teapot.gif", "optimisation_blob.gif",
                    "result.json"):
        path = out / picture
        assert path.is_file() and path.stat().st_size > 0, f"tutorial 07 did not write {picture}"
    with open(out / "result.json") as f:
        saved = json.load(f)
    assert saved["chamfer"] == result["chamfer"]
    assert saved["quick"] is True
    for target in ("teapot", "blob"):
        ch = result["chamfer"][target]
        assert set(ch) == {"adam", "adam_laplacian", "large_steps"}
        assert len(result["history"][target]["large_steps"]) == result["iterations"]
        assert ch["large_steps"] < ch["adam"], f"{target}: Large Steps {ch['large_steps']:.4f} >= Adam {ch['adam']:.4f}"
        assert ch["large_steps"] < 0.8 * result["initial_chamfer"][target], (
            f"{target}: Large Steps {ch['large_steps']:.4f} vs the start sphere {result['initial_chamfer'][target]:.4f}")
