"""The alpha (coverage) channel's gradient: the silhouettes' primary-edge term (issue 11).

A triangle fully inside the image covers its projected area: the sum of the alpha image is that
area in pixels, and its gradient w.r.t. the vertices and the camera is the derivative of the
projected area, computed here in torch (conftest.project, independent of the C++ code).
"""
import pytest
import torch

import raytrace as rt
from conftest import project

H, W = 32, 40


def _shoelace(p):
    x, y = p[:, 0], p[:, 1]
    return 0.5 * (x * torch.roll(y, -1) - y * torch.roll(x, -1)).sum().abs()


def _scene(verts, camera_type="perspective"):
    camera = rt.Camera([0.2, 0.3, 4.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0], 40.0, (H, W), camera_type=camera_type)
    shapes = [rt.Shape(verts, torch.tensor([[0, 1, 2]]), 0)]
    return rt.Scene(camera, shapes, [rt.Material([0.5, 0.5, 0.5])])


def _triangle():
    return torch.tensor([[-0.9, -0.6, 0.1], [0.8, -0.4, -0.2], [0.1, 0.7, 0.3]], requires_grad=True)


@pytest.mark.parametrize("camera_type", ["perspective", "orthographic"])
def test_alpha_gradient_is_the_projected_area_derivative(camera_type):
    verts = _triangle()
    scene = _scene(verts, camera_type)
    cam = scene.camera
    for t in (cam.position, cam.look_at, cam.fov):
        t.requires_grad_(True)
    alpha = rt.render(scene, spp=16, max_bounces=0, seed=1, channels=("alpha",), edge_spp=64)
    alpha.sum().backward()
    # The reference: the projected area, differentiated by torch.
    ref = [t.detach().clone().requires_grad_(True) for t in (verts, cam.position, cam.look_at, cam.fov)]
    area = _shoelace(project(ref[0], ref[1], ref[2], cam.up.detach(), ref[3], H, W,
                             orthographic=camera_type == "orthographic"))
    area.backward()
    assert float(alpha.detach().sum()) == pytest.approx(float(area.detach()), rel=0.01)  # (setup: the forward)
    for got, want in zip((verts.grad, cam.position.grad, cam.look_at.grad, cam.fov.grad), (r.grad for r in ref)):
        scale = float(want.abs().max())
        assert scale > 0
        torch.testing.assert_close(got, want, rtol=0.03, atol=0.03 * scale)


def test_alpha_gradient_needs_the_primary_boundary():
    """Coverage has no interior term: with boundary=False its gradient is zero (and the vertex
    gradient of a loss on alpha alone is exactly zero, not None)."""
    verts = _triangle()
    rt.render(_scene(verts), spp=4, max_bounces=0, channels=("alpha",), boundary=False).sum().backward()
    assert verts.grad is not None and float(verts.grad.abs().max()) == 0.0


def test_a_loss_on_radiance_and_alpha_in_one_backward():
    """One render with both channels and one backward give the sum of the two losses' gradients."""
    def grad(w_radiance, w_alpha):
        verts = _triangle()
        light = rt.plane(size=(2.0, 2.0), center=(0.0, 2.5, 1.5), normal="-y")
        scene = _scene(verts)
        scene.shapes.append(rt.Shape(light.vertices, light.indices, 1))
        scene.materials.append(rt.Material([0.0, 0.0, 0.0]))
        scene.area_lights.append(rt.AreaLight(1, [4.0, 4.0, 4.0]))
        img = rt.render(scene, spp=4, max_bounces=1, seed=2, channels=("radiance", "alpha"))
        (w_radiance * img[..., :3].sum() + w_alpha * img[..., 3].sum()).backward()
        return verts.grad
    both, radiance, alpha = grad(1.0, 2.0), grad(1.0, 0.0), grad(0.0, 2.0)
    assert float(radiance.abs().max()) > 0 and float(alpha.abs().max()) > 0
    torch.testing.assert_close(both, radiance + alpha, rtol=1e-5, atol=1e-6 * float(both.abs().max()))
