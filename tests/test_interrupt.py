"""Ctrl-C: every long call stops within half a second and raises KeyboardInterrupt.

Each test starts a call that would run for seconds, sends SIGINT to the process from a timer
thread 0.3 s in, and measures the time from the signal to the KeyboardInterrupt. Issue 16 asks
for 0.5 s; the assertions allow 1.5 s because test machines are loaded, and print the measured
latency (pytest -s shows it). Afterwards the same call, run to the end, gives bit for bit what it
gave before the interruption: a cancelled call leaves nothing behind in the scene or the core.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import raytrace as rt
from raytrace.io.scenes import read_scene

ROOT = Path(__file__).resolve().parents[1]
CORNELL = ROOT / "scenes" / "cornell_box"
DELAY = 0.3     # seconds from the start of the call to the signal
LIMIT = 1.5     # seconds allowed from the signal to KeyboardInterrupt (the aim: 0.5)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGINT by os.kill needs POSIX")


def interrupt_after(call, delay=DELAY):
    """Runs call() in this (the main) thread, SIGINT to the process `delay` s in; returns the
    seconds from the signal to the KeyboardInterrupt. Fails if the call returns first."""
    sent = []

    def fire():
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(delay, fire)
    timer.start()
    try:
        call()
    except KeyboardInterrupt:
        caught = time.perf_counter()
        assert sent, "KeyboardInterrupt before the signal was sent"
        return caught - sent[0]
    timer.cancel()
    try:
        time.sleep(0.5)  # a signal sent just as the call returned lands here, not in pytest
    except KeyboardInterrupt:
        pass
    pytest.fail("the call ended before the signal was sent: make it longer")


def cornell(resolution=(64, 64)):
    scene, _ = read_scene(CORNELL, resolution=resolution)
    return scene


def report(name, latency):
    print(f"\n{name}: KeyboardInterrupt {latency * 1000:.0f} ms after SIGINT")
    assert latency < LIMIT, f"{name}: {latency:.2f} s from SIGINT to KeyboardInterrupt"


def test_render_stops_on_sigint():
    scene = cornell((128, 128))
    ref = rt.render(scene, spp=2, max_bounces=3, seed=5, threads=2)
    # 128 x 128 x 65536 paths: minutes if it ran to the end.
    latency = interrupt_after(lambda: rt.render(scene, spp=65536, max_bounces=3, seed=5, threads=2))
    report("render", latency)
    assert torch.equal(rt.render(scene, spp=2, max_bounces=3, seed=5, threads=2), ref)


def test_render_one_thread_stops_on_sigint():
    # One thread: the kernels run on the calling (runner) thread, not on the pool.
    scene = cornell((32, 32))
    latency = interrupt_after(lambda: rt.render(scene, spp=1 << 20, max_bounces=3, seed=5, threads=1))
    report("render, threads=1", latency)


def test_render_single_pixel_at_huge_spp_stops_on_sigint():
    # One pixel, 2^20 samples: the work of a single kernel index is cut short, not only the
    # hand-out of pixels.
    scene = cornell((1, 1))
    latency = interrupt_after(lambda: rt.render(scene, spp=1 << 20, max_bounces=1024, seed=5, threads=2))
    report("render, one pixel", latency)


def backward_scene():
    scene = cornell((64, 64))
    for s in scene.shapes:
        s.vertices.requires_grad_()
    scene.area_lights[0].intensity.requires_grad_()
    return scene


def gradients(scene, spp):
    for s in scene.shapes:
        s.vertices.grad = None
    scene.area_lights[0].intensity.grad = None
    rt.render(scene, spp=spp, max_bounces=2, seed=3, threads=2).sum().backward()
    return [s.vertices.grad.clone() for s in scene.shapes] + [scene.area_lights[0].intensity.grad.clone()]


def test_backward_stops_on_sigint():
    scene = backward_scene()
    ref = gradients(scene, spp=2)
    # The forward pass at this spp takes a fraction of a second, the backward several seconds.
    img = rt.render(scene, spp=256, max_bounces=2, seed=3, threads=2)
    loss = img.sum()
    latency = interrupt_after(loss.backward)
    report("backward", latency)
    after = gradients(scene, spp=2)
    assert all(torch.equal(a, b) for a, b in zip(ref, after))


def test_gradient_image_stops_on_sigint():
    scene = backward_scene()
    v = scene.shapes[5].vertices
    ref = rt.gradient_image(scene, v, spp=2, max_bounces=2, seed=1, threads=2)
    latency = interrupt_after(lambda: rt.gradient_image(scene, v, spp=4096, max_bounces=2, seed=1, threads=2))
    report("gradient_image", latency)
    assert torch.equal(rt.gradient_image(scene, v, spp=2, max_bounces=2, seed=1, threads=2), ref)


def test_intersect_stops_on_sigint():
    # Large overlapping triangles in a cube: a slow BVH, about 6 us a ray.
    g = torch.Generator().manual_seed(0)
    n = 20000
    verts = torch.rand(3 * n, 3, generator=g) * 2 - 1
    scene = rt.Scene(shapes=[rt.Shape(verts, torch.arange(3 * n).reshape(n, 3), material_id=0)],
                     materials=[rt.Material(torch.tensor([0.5, 0.5, 0.5]))])
    o = (torch.rand(1_000_000, 3, generator=g) * 2 - 1) * 3
    d = torch.randn(1_000_000, 3, generator=g)
    ref = scene.intersect(o[:1000], d[:1000], threads=2)  # also builds the BVH
    latency = interrupt_after(lambda: scene.intersect(o, d, threads=2))
    report("intersect", latency)
    after = scene.intersect(o[:1000], d[:1000], threads=2)
    assert all(torch.equal(ref[k], after[k]) for k in ref)


def test_bvh_rebuild_stops_on_sigint_and_is_redone():
    # 1.3 M triangles: building the BVH and the edge list on one thread takes a second or more.
    mesh = rt.sphere(subdivisions=8)
    scene = rt.Scene(shapes=[rt.Shape(mesh.vertices, mesh.indices, material_id=0)],
                     materials=[rt.Material(torch.tensor([0.5, 0.5, 0.5]))])
    o = torch.full((4, 3), 5.0)
    d = -torch.ones(4, 3)
    latency = interrupt_after(lambda: scene.intersect(o, d, threads=1), delay=0.15)
    report("BVH rebuild (in intersect)", latency)
    # The core refuses a half-built BVH...
    with pytest.raises(ValueError, match="interrupted"):
        scene._core.intersect(o.numpy(), d.numpy(), 2)
    # ... and the scene builds it again on the next call: the unit sphere at 5 - 1/sqrt(3).
    t = scene.intersect(o, d, threads=2)["t"]
    assert torch.allclose(t, torch.full((4,), 5 - 3 ** -0.5), atol=2e-3)


def test_interrupt_then_same_image_bit_for_bit_with_all_channels():
    scene = cornell((32, 32))
    channels = ("radiance", "alpha", "depth", "normal", "albedo", "shape_id")
    ref = rt.render(scene, spp=4, max_bounces=2, seed=9, channels=channels, threads=3)
    for _ in range(3):
        interrupt_after(lambda: rt.render(scene, spp=1 << 20, max_bounces=2, seed=9, threads=3), delay=0.1)
    assert torch.equal(rt.render(scene, spp=4, max_bounces=2, seed=9, channels=channels, threads=3), ref)


def test_custom_sigint_handler_exception_propagates():
    # Whatever the handler raises is what the call raises.
    class Stop(Exception):
        pass

    def handler(signum, frame):
        raise Stop()

    old = signal.signal(signal.SIGINT, handler)
    try:
        scene = cornell((32, 32))
        timer = threading.Timer(DELAY, lambda: os.kill(os.getpid(), signal.SIGINT))
        timer.start()
        with pytest.raises(Stop):
            rt.render(scene, spp=1 << 20, max_bounces=2, seed=0, threads=2)
        timer.cancel()
    finally:
        signal.signal(signal.SIGINT, old)


def test_cli_stops_on_sigint_at_2048(tmp_path):
    """`python -m raytrace render` at 2048x2048 (one 8-spp pass: about 20 s on two cores) reports
    the interrupt within half a second of Ctrl-C, exits with status 130 and writes no output
    file. (The interpreter's exit, torch's teardown, takes most of a second more on a loaded
    machine, as after any run.)"""
    out = tmp_path / "out.png"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "raytrace", "render", str(CORNELL), "-o", str(out),
                             "--spp", "8", "--resolution", "2048x2048", "--threads", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(tmp_path))
    err = b""

    def read_until(text, timeout):
        nonlocal err
        deadline = time.monotonic() + timeout
        while text not in err:
            chunk = proc.stderr.read1(4096)
            if not chunk or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"no {text!r} on stderr: {err.decode(errors='replace')}")
            err += chunk

    read_until(b"rendering", 120)  # the progress bar appears once rendering starts
    time.sleep(DELAY)
    sent = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    read_until(b"interrupted", 60)
    reaction = time.perf_counter() - sent
    _, rest = proc.communicate(timeout=60)
    exited = time.perf_counter() - sent
    err += rest
    print(f"\ncli at 2048x2048: 'interrupted' {reaction * 1000:.0f} ms after SIGINT, "
          f"exit {exited * 1000:.0f} ms after")
    assert proc.returncode == 130, err.decode(errors="replace")
    assert not out.exists()
    assert reaction < LIMIT
    assert exited < LIMIT + 3.0
