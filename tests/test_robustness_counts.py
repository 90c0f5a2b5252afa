"""Absurd counts: every count has a documented upper bound and a ValueError naming it.

Issue 16, parts 4 and 11: integers at 2**31 or 2**63 used to reach the core as wrapped 32-bit
ints (edge_spp=134_203_665 at 256x256 gave a gradient 1e-7 of the right one) or as pybind11
signature dumps; threads= had no bound and the worker pool kept every thread it ever started.
The bounds live in raytrace/_limits.py (read from csrc/core/limits.h) and docs/limits.md.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import raytrace as rt
from raytrace import _core
from raytrace import _limits as limits
from raytrace.__main__ import main
from raytrace.render import _edge_spp

ROOT = Path(__file__).resolve().parents[1]
CORNELL = ROOT / "scenes" / "cornell_box"
HUGE = [2**31, 2**32 + 1, 2**63, 2**64 + 5]


def small_scene(resolution=(8, 8), grad=False):
    v = torch.tensor([[-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [0.0, 1.0, 0.0]], requires_grad=grad)
    light = torch.tensor([[-1.0, -1.0, 2.0], [1.0, -1.0, 2.0], [0.0, 1.0, 2.0]])
    cam = rt.Camera([0.0, 0.0, 4.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0], 45.0, resolution)
    return rt.Scene(cam, [rt.Shape(v, torch.tensor([[0, 1, 2]]), material_id=0),
                          rt.Shape(light, torch.tensor([[0, 2, 1]]), material_id=0)],
                    [rt.Material(torch.tensor([0.5, 0.5, 0.5]))],
                    [rt.AreaLight(1, torch.tensor([1.0, 1.0, 1.0]))])


def expect_value_error(call, name):
    with pytest.raises(ValueError) as info:
        call()
    assert name in str(info.value), str(info.value)
    return str(info.value)


# ---- render / gradient_image ------------------------------------------------------------

RENDER_COUNTS = [
    ("spp", limits.MAX_SPP),
    ("max_bounces", limits.MAX_BOUNCES),
    ("seed", limits.MAX_SEED),
    ("threads", limits.MAX_THREADS),
    ("edge_spp", limits.MAX_EDGE_SPP),
    ("secondary_spp", limits.MAX_SECONDARY_SPP),
    ("secondary_stride", limits.MAX_SECONDARY_STRIDE),
]


@pytest.mark.parametrize("name, bound", RENDER_COUNTS)
@pytest.mark.parametrize("grad", [False, True])
def test_render_counts_past_their_bound_name_the_argument(name, bound, grad):
    scene = small_scene(grad=grad)
    for value in [bound + 1] + [h for h in HUGE if h > bound]:
        expect_value_error(lambda: rt.render(scene, **{name: value}), name)


@pytest.mark.parametrize("name, bound", RENDER_COUNTS)
def test_gradient_image_counts_past_their_bound_name_the_argument(name, bound):
    scene = small_scene()
    for value in [bound + 1] + [h for h in HUGE if h > bound]:
        expect_value_error(lambda: rt.gradient_image(scene, scene.shapes[0].vertices, **{name: value}), name)


def test_gradients_bound_max_bounces_at_16():
    scene = small_scene(grad=True)
    expect_value_error(lambda: rt.render(scene, max_bounces=17), "max_bounces")
    expect_value_error(lambda: rt.gradient_image(scene, scene.shapes[0].vertices, max_bounces=17), "max_bounces")
    # Without gradients a longer path is fine.
    with torch.no_grad():
        assert rt.render(scene, spp=1, max_bounces=17).shape == (8, 8, 3)


def test_counts_at_their_bound_are_accepted():
    scene = small_scene((1, 1))
    rt.render(scene, spp=1, max_bounces=limits.MAX_BOUNCES, seed=limits.MAX_SEED, threads=limits.MAX_THREADS)
    img = rt.render(small_scene((1, 1), grad=True), spp=1, max_bounces=1, seed=limits.MAX_SEED,
                    edge_spp=limits.MAX_EDGE_SPP, secondary_spp=limits.MAX_SECONDARY_SPP,
                    secondary_stride=limits.MAX_SECONDARY_STRIDE)
    assert img.shape == (1, 1, 3)


def test_the_wrapping_edge_spp_of_issue_16_is_refused():
    # edge_spp * 256 * 256 = 8.8e12 primary-edge samples wrapped the core's 32-bit tile count.
    scene = small_scene((256, 256), grad=True)
    msg = expect_value_error(lambda: rt.render(scene, spp=1, edge_spp=134_203_665), "edge_spp")
    assert str(limits.MAX_EDGE_SPP) in msg
    # Within the per-pixel bound but past 2**31 - 1 samples in all: refused too, with the largest
    # value that fits at this resolution.
    msg = expect_value_error(lambda: rt.render(scene, spp=1, edge_spp=32768), "edge_spp")
    assert str(limits.MAX_EDGE_SAMPLES // (256 * 256)) in msg
    msg = expect_value_error(lambda: rt.gradient_image(scene, scene.shapes[0].vertices, spp=1, edge_spp=32768),
                             "edge_spp")
    # The forward pass alone, or a gradient without primary edges, takes no edge samples.
    with torch.no_grad():
        rt.render(small_scene((4, 4)), spp=1, edge_spp=limits.MAX_EDGE_SPP)
    rt.render(scene, spp=1, edge_spp=32768, boundary="secondary")
    # Per pixel, the bound holds whatever the boundary setting.
    expect_value_error(lambda: rt.render(scene, spp=1, edge_spp=limits.MAX_EDGE_SPP + 1, boundary=False), "edge_spp")


def test_default_edge_spp_stays_within_the_total_bound():
    scene = small_scene((8192, 8192))
    assert _edge_spp(None, 8, scene) == 4
    assert _edge_spp(None, limits.MAX_SPP, scene) == limits.MAX_EDGE_SAMPLES // (8192 * 8192)
    assert _edge_spp(None, limits.MAX_SPP, scene) * 8192 * 8192 <= limits.MAX_EDGE_SAMPLES


def test_primary_edge_sample_count_is_exact_at_a_large_edge_spp():
    # The count the core reports is edge_spp * H * W times the share of the edges sampled:
    # computed in 64 bits, not wrapped.
    scene = small_scene((4, 4), grad=True)
    scene.shapes[1].vertices.requires_grad_()  # every edge wanted: the share is 1
    img = rt.render(scene, spp=1, max_bounces=0, edge_spp=1 << 14, boundary="primary", interior=False)
    img.sum().backward()
    assert scene._stats["primary_edge_samples"] == (1 << 14) * 16


def test_gradient_sums_every_batch_of_tiles():
    """The reverse pass adds its tiles' sums in batches of 1024 tiles (csrc/core/grad.h): an image
    of 3 x 512 tiles of 8 x 8 pixels takes two batches. An emitter covers the lower half of the
    image exactly (its edge on a pixel boundary, orthographic view), so d(sum of the image) /
    d(intensity) is the covered area: a batch dropped, added twice or run on the wrong tiles
    changes it by a third or more."""
    h, w = 24, 4096
    cam = rt.Camera([0.0, 0.0, 4.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0], 90.0, (h, w), "orthographic")
    quad = torch.tensor([[-5.0, -1.0, 0.0], [5.0, -1.0, 0.0], [5.0, 0.0, 0.0], [-5.0, 0.0, 0.0]])
    intensity = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    scene = rt.Scene(cam, [rt.Shape(quad, torch.tensor([[0, 1, 2], [0, 2, 3]]), material_id=0)],
                     [rt.Material(torch.tensor([0.5, 0.5, 0.5]))], [rt.AreaLight(0, intensity, two_sided=True)])
    img = rt.render(scene, spp=1, max_bounces=0, seed=0, threads=2, boundary=False)
    assert float(img[:12].detach().abs().sum()) == 0 and bool((img[12:] > 0).all())
    img.sum().backward()
    covered = (h // 2) * w
    assert torch.allclose(intensity.grad, torch.full((3,), float(covered)), rtol=1e-3), intensity.grad


# ---- resolution ------------------------------------------------------------------------

@pytest.mark.parametrize("resolution", [(limits.MAX_RESOLUTION + 1, 1), (1, limits.MAX_RESOLUTION + 1),
                                        (2**31, 4), (4, 2**31), (2**63, 1), (8193, 8193),
                                        (limits.MAX_RESOLUTION, limits.MAX_RESOLUTION)])
def test_resolution_past_its_bound_names_it(resolution):
    expect_value_error(lambda: rt.Camera([0, 0, 1], [0, 0, 0], [0, 1, 0], 45, resolution), "Camera.resolution")


def test_resolution_at_its_bounds_is_accepted():
    for resolution in [(limits.MAX_RESOLUTION, 1), (1, limits.MAX_RESOLUTION), (8192, 8192)]:
        rt.Camera([0, 0, 1], [0, 0, 0], [0, 1, 0], 45, resolution)


def test_resolution_changed_after_construction_is_checked_by_the_core():
    scene = small_scene()
    scene.camera.resolution = (2**31, 2)
    expect_value_error(lambda: rt.render(scene, spp=1), "height")
    scene.camera.resolution = (16384, 16384)
    expect_value_error(lambda: rt.render(scene, spp=1), "resolution")


# ---- intersect ---------------------------------------------------------------------------

@pytest.mark.parametrize("threads", [limits.MAX_THREADS + 1] + HUGE)
def test_intersect_threads_past_the_bound(threads):
    scene = small_scene()
    expect_value_error(lambda: scene.intersect(torch.zeros(1, 3), torch.ones(1, 3), threads=threads), "threads")


# ---- the core on its own (no Python checks in front) -----------------------------------------

def core_scene(resolution=(16, 16)):
    scene = small_scene(resolution)
    return scene._sync(0)


@pytest.mark.parametrize("name, value", [("spp", 2**31), ("spp", 2**40), ("spp", 0), ("max_bounces", 2**31),
                                         ("threads", 2**31), ("threads", 257), ("seed", 2**63)])
def test_core_render_checks_its_counts(name, value):
    core = core_scene()
    args = dict(spp=1, max_bounces=1, seed=0, channels=[0], num_threads=0)
    args["num_threads" if name == "threads" else name] = value
    out = np.zeros((16, 16, 3), np.float32)
    expect_value_error(lambda: core.render(out, args["spp"], args["max_bounces"], args["seed"], args["channels"],
                                           args["num_threads"]), name)


@pytest.mark.parametrize("name, value", [("edge_spp", 134_203_665), ("edge_spp", 2**31), ("edge_spp", 2**40),
                                         ("spp", 2**31), ("max_bounces", 17), ("secondary_spp", 2**31),
                                         ("secondary_stride", 2**31), ("threads", 2**33), ("edge_spp", 1 << 20)])
def test_core_backward_checks_its_counts(name, value):
    core = core_scene((256, 256))
    d = np.ones((256, 256, 3), np.float32)
    args = dict(spp=1, max_bounces=1, seed=0, edge_spp=1, interior=True, primary_edges=True, secondary_edges=1,
                num_threads=0, secondary_edges_traced=1, secondary_stride=16)
    args["num_threads" if name == "threads" else "secondary_edges" if name == "secondary_spp" else name] = value
    expect_value_error(lambda: core.render_backward(d, **args), name)


def test_core_camera_checks_the_resolution():
    core = core_scene()
    f = lambda *a: np.asarray(a, np.float32)  # noqa: E731
    for h, w in [(2**31, 1), (1, 2**40), (16385, 1), (16384, 16384)]:
        with pytest.raises(ValueError, match="resolution"):
            core.set_camera(f(0, 0, 4), f(0, 0, 0), f(0, 1, 0), 45.0, h, w, False)


def test_core_limits_match_the_documented_values():
    assert _core.limits() == {
        "spp": 2**20, "edge_spp": 2**20, "edge_samples": 2**31 - 1, "secondary_spp": 4096,
        "secondary_stride": 65536, "max_bounces": 1024, "max_bounces_grad": 16, "threads": 256,
        "resolution": 16384, "pixels": 2**26, "rays": 2**31 - 1, "seed": 2**63 - 1, "channels": 8}
    doc = (ROOT / "docs" / "limits.md").read_text()
    for value in ["1048576", "2147483647", "4096", "65536", "1024", "16", "256", "16384", "67108864",
                  "9223372036854775807"]:
        assert value in doc, value


# ---- threads and the worker pool ----------------------------------------------------------

def live_threads():
    return len(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc")
def test_threads_at_the_bound_work_and_the_pool_shrinks_after():
    scene = small_scene((16, 16))
    ref = rt.render(scene, spp=2, seed=1, threads=1)
    before = live_threads()
    img = rt.render(scene, spp=2, seed=1, threads=limits.MAX_THREADS)
    assert torch.equal(img, ref)
    # The workers started for 256 threads are gone once the call returns...
    default = _core.default_num_threads()
    assert _core.pool_workers() <= default - 1
    rt.render(scene, spp=2, seed=1, threads=2)
    assert _core.pool_workers() <= max(default - 1, 1)
    # ... and the process does not keep hundreds of threads alive (torch may start a few of its own).
    assert live_threads() <= before + default + 4, (before, live_threads())
    expect_value_error(lambda: rt.render(scene, spp=1, threads=limits.MAX_THREADS + 1), "threads")


def test_backward_with_many_threads_gives_the_same_gradient():
    grads = []
    for threads in (1, 64):
        scene = small_scene((16, 16), grad=True)
        rt.render(scene, spp=4, max_bounces=1, seed=2, threads=threads).sum().backward()
        grads.append(scene.shapes[0].vertices.grad)
    assert torch.equal(grads[0], grads[1])
    assert _core.pool_workers() <= max(_core.default_num_threads() - 1, 1)


def test_a_kernel_error_on_a_worker_thread_reaches_python():
    # (It used to std::terminate the process.) The pool works afterwards.
    scene = small_scene((16, 16))
    ref = rt.render(scene, spp=2, seed=1, threads=4)
    for at in (0, 500, 999):
        with pytest.raises(RuntimeError, match=f"kernel {at} failed"):
            _core.check_pool_error(1000, 4, at)
    assert torch.equal(rt.render(scene, spp=2, seed=1, threads=4), ref)


def test_rt_num_threads_is_capped(monkeypatch):
    monkeypatch.setenv("RT_NUM_THREADS", "100000")
    assert _core.default_num_threads() == limits.MAX_THREADS
    monkeypatch.setenv("RT_NUM_THREADS", "2")
    assert _core.default_num_threads() == 2


# ---- the command line ----------------------------------------------------------------------

@pytest.mark.parametrize("option, value", [("--spp", 2**31), ("--spp", 2**63), ("--spp", limits.MAX_SPP + 1),
                                           ("--max-bounces", 2**31), ("--max-bounces", limits.MAX_BOUNCES + 1),
                                           ("--seed", 2**63), ("--threads", 2**31), ("--threads", 257),
                                           ("--resolution", f"{2**31}x4"), ("--resolution", "16385"),
                                           ("--resolution", "8193x8193"), ("--resolution", str(2**63))])
def test_cli_counts_past_their_bound_exit_2_naming_the_option(tmp_path, capsys, option, value):
    out = tmp_path / "x.png"
    assert main(["render", str(CORNELL), "-o", str(out), option, str(value)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(re.escape(option) + r"\b", err), err
    assert not out.exists()
