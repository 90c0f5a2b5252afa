"""Same scene and seed -> bit-identical images, for any thread count; different seeds differ."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import raytrace as rt
from conftest import CameraModel, make_quad, make_sphere, rt_diffuse, rt_shape, to_torch

ALL_CHANNELS = ("radiance", "alpha", "depth", "normal", "albedo", "shape_id")


def busy_scene():
    """Env map + area light + glossy and diffuse shapes, so every code path draws numbers."""
    cam = CameraModel(position=(0.5, 1.5, 4.0), look_at=(0.0, 0.3, 0.0), up=(0.0, 1.0, 0.0),
                      fov=50.0, hw=(24, 32))
    sv, si, sn = make_sphere(10, 20, radius=0.8, center=(0.0, 0.8, 0.0))
    floor = make_quad((0.0, 0.0, 0.0), (3.0, 0.0, 0.0), (0.0, 0.0, -3.0))
    light = make_quad((1.0, 2.5, 0.5), (0.4, 0.0, 0.0), (0.0, 0.0, 0.4))  # faces down
    rng = np.random.default_rng(0)
    env = rt.EnvironmentMap(to_torch(rng.uniform(0.0, 1.0, (8, 16, 3)).astype(np.float32)))
    checker = np.kron(np.array([[0.2, 0.8], [0.8, 0.2]]), np.ones((2, 2)))[..., None] * [1, 0.8, 0.6]
    materials = [rt_diffuse((0.6, 0.5, 0.4), ks=(0.3, 0.3, 0.3), roughness=0.2),
                 rt_diffuse(checker.astype(np.float32)),
                 rt_diffuse(0.0)]
    shapes = [rt_shape(sv, si, 0, normals=sn), rt_shape(floor[0], floor[1], 1, uvs=floor[2]),
              rt_shape(light[0], light[1], 2)]
    return rt.Scene(camera=cam.rt(), shapes=shapes, materials=materials,
                    area_lights=[rt.AreaLight(2, to_torch([5.0, 5.0, 4.0]))], envmap=env)


@pytest.fixture(scope="module")
def scene():
    return busy_scene()


def test_same_seed_bit_identical(scene):
    a = rt.render(scene, spp=8, max_bounces=2, seed=5, channels=ALL_CHANNELS)
    b = rt.render(scene, spp=8, max_bounces=2, seed=5, channels=ALL_CHANNELS)
    assert a.shape == (24, 32, 12) and a.dtype == torch.float32
    assert torch.equal(a, b)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_thread_count_does_not_change_the_image(scene, threads):
    ref = rt.render(scene, spp=8, max_bounces=2, seed=11, channels=ALL_CHANNELS, threads=None)
    img = rt.render(scene, spp=8, max_bounces=2, seed=11, channels=ALL_CHANNELS,
                    threads=threads)
    assert torch.equal(ref, img)


def test_rt_num_threads_environment_variable(scene, monkeypatch):
    imgs = []
    for n in ("1", "2"):
        monkeypatch.setenv("RT_NUM_THREADS", n)
        imgs.append(rt.render(scene, spp=4, max_bounces=2, seed=3))
    monkeypatch.delenv("RT_NUM_THREADS")
    imgs.append(rt.render(scene, spp=4, max_bounces=2, seed=3, threads=2))
    assert torch.equal(imgs[0], imgs[1]) and torch.equal(imgs[0], imgs[2])


def test_different_seeds_differ(scene):
    a = rt.render(scene, spp=4, max_bounces=2, seed=0)
    b = rt.render(scene, spp=4, max_bounces=2, seed=1)
    diff = (a != b).float().mean().item()
    assert diff > 0.5, f"only {diff:.1%} of the values differ between seeds"
    # but they estimate the same image
    assert abs(a.mean().item() - b.mean().item()) < 0.05 * a.mean().item()


def test_images_finite_and_non_negative(scene):
    img = rt.render(scene, spp=8, max_bounces=3, seed=2, channels=ALL_CHANNELS).numpy()
    assert np.all(np.isfinite(img))
    rad, alpha, depth, albedo = img[..., 0:3], img[..., 3], img[..., 4], img[..., 8:11]
    assert np.all(rad >= 0) and rad.max() > 0
    assert np.all((alpha >= 0) & (alpha <= 1))
    assert np.all(depth >= 0) and np.all(albedo >= 0)
    assert np.all(np.abs(np.linalg.norm(img[..., 5:8], axis=-1)) <= 1 + 1e-5)


def test_determinism_with_more_samples_than_one_batch(scene):
    """spp large enough that a renderer splitting work by sample still has to be exact."""
    a = rt.render(scene, spp=64, max_bounces=1, seed=9, threads=1)
    b = rt.render(scene, spp=64, max_bounces=1, seed=9, threads=2)
    assert torch.equal(a, b)
