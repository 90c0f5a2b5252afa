"""rt.render_deferred: the G-buffer shaded by point, directional and ambient lights (issue 11)."""
import math

import pytest
import torch

import raytrace as rt

H, W = 20, 24


def _scene(half=3.0, kd=(0.6, 0.4, 0.2), camera_type="orthographic"):
    verts = torch.tensor([[-half, -half, 0.0], [half, -half, 0.0], [half, half, 0.0], [-half, half, 0.0]])
    camera = rt.Camera([0.0, 0.0, 3.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0], 40.0, (H, W), camera_type=camera_type)
    return rt.Scene(camera, [rt.Shape(verts, torch.tensor([[0, 1, 2], [0, 2, 3]]), 0)], [rt.Material(list(kd))])


def test_directional_and_ambient_closed_form():
    kd = torch.tensor([0.6, 0.4, 0.2])
    d = torch.tensor([0.3, -0.2, -1.0])
    img = rt.render_deferred(_scene(), [rt.DirectionalLight(d, [2.0, 2.0, 2.0]), rt.AmbientLight([0.1, 0.2, 0.3])])
    cos = float(-(torch.tensor([0.0, 0.0, 1.0]) @ (d / d.norm())))
    want = kd / math.pi * 2.0 * cos + kd * torch.tensor([0.1, 0.2, 0.3])
    torch.testing.assert_close(img, want.expand(H, W, 3), rtol=1e-5, atol=1e-6)


def test_point_light_inverse_square_law():
    """I cos / r^2 at each pixel's hit point (orthographic: the pixel centre's)."""
    lp = torch.tensor([0.5, 0.3, 1.5])
    img = rt.render_deferred(_scene(kd=(1.0, 1.0, 1.0)), [rt.PointLight(lp, [3.0, 3.0, 3.0])], spp=16)
    gbuf = rt.render(_scene(), spp=16, max_bounces=0, channels=("position",))
    to = lp - gbuf
    r2 = (to * to).sum(-1)
    want = 3.0 / math.pi * (to[..., 2] / r2.sqrt()) / r2
    torch.testing.assert_close(img[..., 0], want, rtol=1e-4, atol=0)


def test_gradients_of_light_and_pose_match_finite_differences():
    """d(image sum) w.r.t. the point light's position and the object's translation (its silhouette
    moves: averaged over 8 seeds, as the boundary terms' finite differences need)."""
    g = torch.Generator().manual_seed(0)
    weights = torch.rand(H, W, 3, generator=g)
    grads, fds = torch.zeros(2), torch.zeros(2)
    for seed in range(8):
        scene = _scene(half=0.6, camera_type="perspective")
        offset = torch.zeros(3, requires_grad=True)
        base = scene.shapes[0].vertices.detach().clone()
        lp = torch.tensor([0.4, 0.6, 1.5], requires_grad=True)

        def loss(off, light_pos):
            scene.shapes[0].vertices = base + off
            img = rt.render_deferred(scene, [rt.PointLight(light_pos, [4.0, 4.0, 4.0]), rt.AmbientLight([0.1] * 3)],
                                     spp=32, seed=seed, edge_spp=32)
            return (img * weights).sum()
        loss(offset, lp).backward()
        d = torch.tensor([1.0, 0.5, 0.0])
        grads[0] += float(offset.grad @ d) / 8
        grads[1] += float(lp.grad @ d) / 8
        with torch.no_grad():
            e = 1e-2
            fds[0] += float(loss(e * d, lp) - loss(-e * d, lp)) / (2 * e) / 8
            fds[1] += float(loss(torch.zeros(3), lp + e * d) - loss(torch.zeros(3), lp - e * d)) / (2 * e) / 8
    assert bool((fds.abs() > 1).all()), "setup: the loss moves"
    torch.testing.assert_close(grads, fds, rtol=0.05, atol=0.0)


def test_bad_arguments_are_named():
    scene = _scene()
    with pytest.raises(ValueError, match="lights is empty"):
        rt.render_deferred(scene, [])
    with pytest.raises(TypeError, match=r"lights\[1\] must be"):
        rt.render_deferred(scene, [rt.AmbientLight([1.0] * 3), "sun"])
    with pytest.raises(TypeError, match="channels is set by render_deferred"):
        rt.render_deferred(scene, [rt.AmbientLight([1.0] * 3)], channels=("radiance",))
    with pytest.raises(ValueError, match="zero vector"):
        rt.DirectionalLight([0.0, 0.0, 0.0], [1.0] * 3)
    with pytest.raises(TypeError, match="render_deferred's local shading only"):
        rt.Scene(scene.camera, scene.shapes, scene.materials, [rt.PointLight([0.0] * 3, [1.0] * 3)])
