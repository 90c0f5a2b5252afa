"""The CUDA backend (docs/cuda.md): GPU against CPU on the same scenes, seeds and settings.

The GPU runs the CPU's kernels (render_pixel, intersect_ray) from the same random streams, so its
images are the CPU's up to the compilers' rounding (fused multiply-adds): a pixel whose path takes
another branch on the way (a ray grazing an edge) differs, the rest agree to float32 precision.
Everything here except the first tests needs a GPU and raytrace built with RT_CUDA=1; without them
it is skipped (benchmarks/gpu_check.sh runs it on a GPU machine).
"""
import sys

import numpy as np
import pytest
import torch

import raytrace as rt
from raytrace import _core

HAVE_GPU = bool(_core.has_cuda) and torch.cuda.is_available() and _core.cuda_device_count() > 0
gpu = pytest.mark.skipif(not HAVE_GPU, reason="needs a GPU and raytrace built with RT_CUDA=1")


def test_cuda_tensors_without_backend_are_refused_by_name():
    if _core.has_cuda:
        pytest.skip("this build has the CUDA backend")
    from raytrace import _validation as v
    with pytest.raises(ValueError, match="Scene.to.*no CUDA backend.*RT_CUDA=1"):
        v.check_device_type(torch.device("cuda:0"), "Scene.to: the device is 'cuda:0'")
    with pytest.raises(ValueError, match="CPU or on CUDA GPUs"):
        v.check_device_type(torch.device("meta"), "x is on device 'meta'")


def test_mixed_devices_are_refused_by_name():
    scene = _scene("cpu")
    scene.shapes[0].vertices = scene.shapes[0].vertices.to("meta")
    with pytest.raises(ValueError, match=r"one device.*Scene.camera.position on cpu.*Scene.shapes\[0\].vertices on meta"):
        rt.render(scene, spp=1)


def _scene(device, resolution=(24, 32), envmap=True, glossy=True):
    """A textured, glossy sphere on a floor under an area light and an environment map."""
    s = rt.geometry.sphere(radius=0.8, center=(0.0, 0.0, 0.0), subdivisions=2)
    floor = rt.geometry.plane(size=(6.0, 6.0), center=(0.0, -0.8, 0.0))
    light = rt.geometry.plane(size=(1.0, 1.0), center=(0.3, 2.5, 0.2), normal="-y")
    g = torch.Generator().manual_seed(1)
    texture = torch.rand(8, 16, 3, generator=g) * 0.8
    materials = [rt.Material(texture, [0.3, 0.3, 0.3] if glossy else None, 0.3),
                 rt.Material([0.5, 0.45, 0.4]), rt.Material([0.0, 0.0, 0.0])]
    shapes = [rt.Shape(s.vertices, s.indices, 0, uvs=s.uvs, normals=s.normals),
              rt.Shape(floor.vertices, floor.indices, 1, uvs=floor.uvs),
              rt.Shape(light.vertices, light.indices, 2)]
    env = rt.EnvironmentMap(torch.rand(8, 16, 3, generator=g) * 0.5) if envmap else None
    camera = rt.Camera([0.3, 1.0, 3.5], [0.0, -0.1, 0.0], [0.0, 1.0, 0.0], 45.0, resolution)
    scene = rt.Scene(camera, shapes, materials, [rt.AreaLight(2, [8.0, 8.0, 8.0])], env)
    return scene.to(device)


ALL = ("radiance", "alpha", "depth", "normal", "albedo", "shape_id")


def _compare(gpu_image, cpu_image, rtol=1e-4, atol=1e-5, fraction=0.99):
    """Most pixels agree to float32 precision; the means agree closely."""
    g, c = gpu_image.cpu().double(), cpu_image.double()
    close = (g - c).abs() <= atol + rtol * c.abs()
    assert float(close.float().mean()) >= fraction, float(close.float().mean())
    assert torch.allclose(g.mean(dim=(0, 1)), c.mean(dim=(0, 1)), rtol=2e-3, atol=1e-4)


@gpu
@pytest.mark.parametrize("max_bounces", [0, 1, 3])
def test_render_matches_cpu_every_channel(max_bounces):
    cpu = rt.render(_scene("cpu"), spp=8, max_bounces=max_bounces, seed=3, channels=ALL)
    out = rt.render(_scene("cuda"), spp=8, max_bounces=max_bounces, seed=3, channels=ALL)
    assert out.device.type == "cuda" and out.dtype == torch.float32 and out.shape == cpu.shape
    _compare(out, cpu)
    assert float((out[..., -1].cpu() == cpu[..., -1]).float().mean()) > 0.99  # shape_id


@gpu
def test_render_matches_cpu_geometry_channels():
    names = ("position", "geometry_normal", "uv", "barycentrics", "triangle_id")
    cpu = rt.render(_scene("cpu"), spp=8, max_bounces=1, seed=3, channels=names)
    out = rt.render(_scene("cuda"), spp=8, max_bounces=1, seed=3, channels=names)
    _compare(out, cpu)
    assert float((out[..., -1].cpu() == cpu[..., -1]).float().mean()) > 0.99  # triangle_id


@gpu
def test_render_is_deterministic_and_follows_the_seed():
    scene = _scene("cuda")
    a = rt.render(scene, spp=4, max_bounces=2, seed=7, channels=ALL)
    b = rt.render(scene, spp=4, max_bounces=2, seed=7, channels=ALL)
    c = rt.render(scene, spp=4, max_bounces=2, seed=8, channels=ALL)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@gpu
def test_render_converges_to_the_cpu_image():
    """Many samples: the two estimates of the same integral agree (independent of the rounding)."""
    cpu = rt.render(_scene("cpu", (12, 16)), spp=256, max_bounces=2, seed=1)
    out = rt.render(_scene("cuda", (12, 16)), spp=256, max_bounces=2, seed=2)
    assert torch.allclose(out.cpu().mean(dim=(0, 1)), cpu.mean(dim=(0, 1)), rtol=0.02)


@gpu
def test_intersect_matches_cpu():
    scene_cpu, scene_gpu = _scene("cpu"), _scene("cuda")
    g = torch.Generator().manual_seed(0)
    n = 20000
    origins = torch.rand(n, 3, generator=g) * 4 - 2
    directions = torch.randn(n, 3, generator=g)
    directions[:5] *= 1e-20  # any length works
    ref = scene_cpu.intersect(origins, directions)
    out = scene_gpu.intersect(origins.cuda(), directions.cuda())
    for k in ("t", "shape_id", "triangle_id", "uv"):
        assert out[k].device.type == "cuda" and out[k].dtype == ref[k].dtype and out[k].shape == ref[k].shape
    same = (out["triangle_id"].cpu() == ref["triangle_id"]) & (out["shape_id"].cpu() == ref["shape_id"])
    assert float(same.float().mean()) > 0.999
    hit = same & (ref["shape_id"] >= 0)
    # t to float32 precision, except at grazing angles where rounding (fused multiply-adds on the
    # GPU) moves it more; the hit points agree to 1e-5 of the distance travelled everywhere.
    t_gpu, t_cpu = out["t"].cpu()[hit].double(), ref["t"][hit].double()
    assert float(((t_gpu - t_cpu).abs() <= 1e-5 * t_cpu).float().mean()) > 0.999
    reach = t_cpu * directions[hit].double().norm(dim=1)
    assert bool(((t_gpu - t_cpu).abs() * directions[hit].double().norm(dim=1) <= 1e-4 * (1 + reach)).all())
    assert torch.allclose(out["uv"].cpu()[hit], ref["uv"][hit], atol=1e-4)
    assert torch.equal(torch.isinf(out["t"].cpu()), torch.isinf(ref["t"]))
    empty = scene_gpu.intersect(torch.zeros(0, 3, device="cuda"), torch.zeros(0, 3, device="cuda"))
    assert empty["t"].shape == (0,)


@gpu
def test_rays_and_scene_on_different_devices_are_refused():
    scene = _scene("cuda")
    with pytest.raises(ValueError, match="one device"):
        scene.intersect(torch.zeros(4, 3), torch.ones(4, 3))


def _grads(device, resolution=(16, 16), spp=4, max_bounces=2, texture=None, **kw):
    """Every block's gradient of a weighted image sum, and the edge-sample counts."""
    scene = _scene(device, resolution)
    if texture is not None:
        scene.materials[0].diffuse_reflectance = texture.to(device)
    params = [scene.shapes[0].vertices, scene.shapes[0].normals, scene.shapes[0].uvs,
              scene.materials[0].diffuse_reflectance, scene.materials[0].specular_reflectance,
              scene.materials[0].roughness, scene.area_lights[0].intensity, scene.envmap.values,
              scene.camera.position, scene.camera.look_at, scene.camera.fov, scene.shapes[1].vertices,
              scene.shapes[2].vertices]
    for p in params:
        p.requires_grad_(True)
    img = rt.render(scene, spp=spp, max_bounces=max_bounces, seed=5, **kw)
    (img * torch.linspace(0.2, 1, 3, device=device)).sum().backward()
    return [p.grad for p in params], dict(scene._stats)


def _agree(gpu_grads, cpu_grads, rtol=2e-2):
    """The same paths and edge samples, summed in another order: the gradients agree closely,
    block by block (a path that takes another branch on the GPU moves a block by a sample's worth)."""
    for i, (g, c) in enumerate(zip(gpu_grads, cpu_grads)):
        assert g.device.type == "cuda" and g.dtype == torch.float32 and g.shape == c.shape
        err = float((g.cpu().double() - c.double()).norm()) / max(float(c.double().norm()), 1e-30)
        assert err < rtol, (i, err)


@gpu
@pytest.mark.parametrize("terms", [dict(), dict(boundary=False), dict(boundary="primary", interior=False),
                                   dict(boundary="secondary", interior=False)],
                         ids=["all", "interior", "primary", "secondary"])
def test_gradients_match_cpu_term_by_term(terms):
    """The GPU's reverse pass (interior, primary and secondary edges, every block) against the
    CPU's on the same scene, seed and settings."""
    gpu_grads, gpu_stats = _grads("cuda", **terms)
    cpu_grads, cpu_stats = _grads("cpu", **terms)
    _agree(gpu_grads, cpu_grads)
    assert gpu_stats["primary_edge_samples"] == cpu_stats["primary_edge_samples"]
    assert abs(gpu_stats["secondary_edge_draws"] - cpu_stats["secondary_edge_draws"]) <= \
        0.01 * cpu_stats["secondary_edge_draws"]


@gpu
def test_auxiliary_channel_gradients_match_cpu():
    """A loss on radiance and every differentiable auxiliary channel together: their interior and
    primary-edge terms on the GPU."""
    grads = {}
    for device in ("cpu", "cuda"):
        scene = _scene(device, (16, 16))
        params = [scene.shapes[0].vertices, scene.shapes[0].normals, scene.shapes[0].uvs,
                  scene.materials[0].diffuse_reflectance, scene.camera.position]
        for p in params:
            p.requires_grad_(True)
        img = rt.render(scene, spp=4, max_bounces=1, seed=5, channels=("radiance", "alpha", "depth", "normal", "albedo",
                                                                        "position", "geometry_normal", "uv"))
        w = torch.linspace(0.5, 1.5, img.shape[-1], device=device)
        (img * w).sum().backward()
        grads[device] = [p.grad for p in params]
    _agree(grads["cuda"], grads["cpu"])


@gpu
def test_gradients_are_deterministic():
    a, _ = _grads("cuda", max_bounces=3)
    b, _ = _grads("cuda", max_bounces=3)
    for x, y in zip(a, b):
        assert torch.equal(x, y)


@gpu
def test_gradients_with_many_slots_per_pixel_and_several_batches():
    """A large texture and many samples per pixel (pixels whose gradients touch more slots than
    a thread's first stretch of records holds, so their batch runs again), on an image of more
    pixels than one batch (2**24 / 128)."""
    texture = torch.rand(256, 512, 3, generator=torch.Generator().manual_seed(2)) * 0.8
    gpu_grads, _ = _grads("cuda", (24, 32), spp=64, max_bounces=1, texture=texture)
    cpu_grads, _ = _grads("cpu", (24, 32), spp=64, max_bounces=1, texture=texture)
    _agree(gpu_grads, cpu_grads)
    big, _ = _grads("cuda", (400, 400), spp=1, max_bounces=1, boundary=False)
    big_cpu, _ = _grads("cpu", (400, 400), spp=1, max_bounces=1, boundary=False)
    _agree(big, big_cpu)


@gpu
def test_backward_memory_is_returned():
    _grads("cuda")
    torch.cuda.synchronize()
    free_before = torch.cuda.mem_get_info()[0]
    for _ in range(3):
        _grads("cuda", spp=16)
    torch.cuda.synchronize()
    assert abs(torch.cuda.mem_get_info()[0] - free_before) < 64 << 20


@gpu
def test_gradient_image_of_a_gpu_scene(monkeypatch):
    monkeypatch.setattr(sys.modules["raytrace.render"], "_WARNED_CPU_BACKWARD", False)
    scene = _scene("cuda")
    with pytest.warns(RuntimeWarning, match="gradient_image"):
        img = rt.gradient_image(scene, scene.shapes[0].vertices, spp=2)
    cpu_scene = _scene("cpu")
    ref = rt.gradient_image(cpu_scene, cpu_scene.shapes[0].vertices, spp=2)
    assert img.device.type == "cuda" and torch.equal(img.cpu(), ref)  # (computed by the CPU from the same values)


@gpu
def test_scene_to_moves_every_tensor_and_keeps_the_graph():
    scene = _scene("cpu")
    leaf = scene.shapes[0].vertices.clone().requires_grad_(True)
    scene.shapes[0].vertices = leaf  # (a CPU leaf: the render's gradient comes back through .to)
    moved = scene.to("cuda")
    assert all(t.device.type == "cuda" for t in moved._state().tensors())
    assert all(t.device.type == "cpu" for t in scene._state().tensors())
    img = rt.render(moved, spp=2, max_bounces=1, seed=0)
    img.sum().backward()
    assert leaf.grad is not None and leaf.grad.device.type == "cpu" and float(leaf.grad.abs().sum()) > 0


@gpu
def test_device_memory_does_not_grow_with_spp_or_iterations():
    scene = _scene("cuda")
    rt.render(scene, spp=1, max_bounces=1)
    held = scene._core.device_bytes()
    assert held > 0
    for i in range(3):
        with torch.no_grad():
            scene.shapes[0].vertices.mul_(1.001)  # a refit: the copy is updated in place
        rt.render(scene, spp=64, max_bounces=3, seed=i)
    assert scene._core.device_bytes() == held


@gpu
def test_render_on_a_side_stream_is_ordered_with_torch():
    scene = _scene("cuda")
    ref = rt.render(scene, spp=4, max_bounces=1, seed=2)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        out = rt.render(scene, spp=4, max_bounces=1, seed=2) * 2
    torch.cuda.synchronize()
    assert torch.equal(out, ref * 2)


@gpu
def test_large_image_in_several_launches():
    """An image of more samples than one launch takes (kSamplesPerLaunch = 2**24) is cut into
    launches; the result does not depend on where the cuts fall."""
    img = rt.render(_scene("cuda", (512, 640)), spp=64, max_bounces=0, seed=0, channels=("alpha",))
    cpu = rt.render(_scene("cpu", (512, 640)), spp=64, max_bounces=0, seed=0, channels=("alpha",))
    _compare(img, cpu)


@gpu
def test_values_are_checked_on_the_gpu_too():
    scene = _scene("cuda")
    with torch.no_grad():
        scene.shapes[0].vertices[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"Scene.shapes\[0\].vertices contains NaN"):
        rt.render(scene, spp=1)


@gpu
def test_device_name():
    name = _core.cuda_device_name(0)
    assert "sm_" in name and "GiB" in name
    np.testing.assert_equal(_core.cuda_device_count() >= 1, True)
