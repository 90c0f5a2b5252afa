"""Gradients of whole images against closed forms and finite differences.

Each test renders with fixed seeds. Tolerances are chosen so that a wrong sign, a factor of
two or a missing boundary term fails: the `boundary=False` variants show that the same
checks fail without the edge-sampling terms.
"""
import math

import numpy as np
import pytest
import torch

import raytrace as rt


# ---- Reference projection (independent of the C++ code) ------------------------------------

def project(points, position, look_at, up, fov, H, W, orthographic=False):
    """Continuous pixel coordinates [N, 2] of world points, in torch (differentiable)."""
    fwd = look_at - position
    dist = fwd.norm()
    fwd = fwd / dist
    right = torch.linalg.cross(fwd, up)
    right = right / right.norm()
    upp = torch.linalg.cross(right, fwd)
    d = points - position
    xc, yc, zc = d @ right, d @ upp, d @ fwd
    tan = torch.tan(fov * math.pi / 360)
    if orthographic:
        sx, sy = xc / (tan * dist), yc / (tan * dist * H / W)
    else:
        sx, sy = xc / (zc * tan), yc / (zc * tan * H / W)
    return torch.stack([(sx + 1) / 2 * W, (1 - sy) / 2 * H], -1)


def shoelace(p):
    x, y = p[:, 0], p[:, 1]
    return 0.5 * torch.abs((x * torch.roll(y, -1) - torch.roll(x, -1) * y).sum())


TRI = torch.tensor([[-0.5, -0.4, 0.0], [0.5, -0.3, 0.1], [0.1, 0.5, -0.1]])


def triangle_scene(camera_type, vertices, position, H=48, W=64, radiance=2.0):
    cam = rt.Camera(position, torch.tensor([0.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), fov=50.0,
                    resolution=(H, W), camera_type=camera_type)
    shape = rt.Shape(vertices, torch.tensor([[0, 1, 2]]), 0)
    return rt.Scene(cam, [shape], [rt.Material(torch.zeros(3))],
                    [rt.AreaLight(0, torch.full((3,), radiance), two_sided=True)])


@pytest.mark.parametrize("camera_type", ["perspective", "orthographic"])
def test_emitting_triangle_vertex_gradient_is_radiance_times_area_derivative(camera_type):
    H, W, L = 48, 64, 2.0
    verts = TRI.clone().requires_grad_(True)
    position = torch.tensor([0.3, 0.2, 3.0])
    scene = triangle_scene(camera_type, verts, position, H, W, L)
    img = rt.render(scene, spp=4, max_bounces=0, seed=1, edge_spp=64)
    img.sum().backward()
    # Closed form: sum(image) = 3 L * projected area in pixels.
    v_ref = TRI.clone().requires_grad_(True)
    area = shoelace(project(v_ref, position, torch.zeros(3), torch.tensor([0.0, 1.0, 0.0]),
                            torch.tensor(50.0), H, W, camera_type == "orthographic"))
    (3 * L * area).backward()
    expected = v_ref.grad
    assert torch.isfinite(verts.grad).all()
    # Every component (moves in all three axes) within 3% of the largest.
    scale = expected.abs().max()
    np.testing.assert_allclose(verts.grad.numpy(), expected.numpy(), atol=0.03 * float(scale))


@pytest.mark.parametrize("camera_type", ["perspective", "orthographic"])
def test_emitting_triangle_camera_position_gradient(camera_type):
    H, W, L = 48, 64, 2.0
    position = torch.tensor([0.3, 0.2, 3.0], requires_grad=True)
    scene = triangle_scene(camera_type, TRI, position, H, W, L)
    img = rt.render(scene, spp=4, max_bounces=0, seed=2, edge_spp=64)
    img.sum().backward()
    p_ref = torch.tensor([0.3, 0.2, 3.0], requires_grad=True)
    area = shoelace(project(TRI, p_ref, torch.zeros(3), torch.tensor([0.0, 1.0, 0.0]), torch.tensor(50.0), H, W,
                            camera_type == "orthographic"))
    (3 * L * area).backward()
    scale = p_ref.grad.abs().max()
    np.testing.assert_allclose(position.grad.numpy(), p_ref.grad.numpy(), atol=0.04 * float(scale))


def test_emitting_triangle_gradient_needs_the_boundary_term():
    verts = TRI.clone().requires_grad_(True)
    scene = triangle_scene("perspective", verts, torch.tensor([0.3, 0.2, 3.0]))
    rt.render(scene, spp=4, max_bounces=0, seed=1, boundary=False).sum().backward()
    # An emitter's radiance does not depend on its vertices: without edges there is no gradient.
    assert float(verts.grad.abs().max()) == 0.0


# ---- Finite differences --------------------------------------------------------------------

def fd_translation(make_scene, shape_index, direction, h, spp, seed, max_bounces, weights=None):
    """Central difference of sum(weights * image) when shape `shape_index` moves by h * direction."""
    vals = []
    for sign in (1.0, -1.0):
        scene = make_scene(offset={shape_index: sign * h * direction})
        img = rt.render(scene, spp=spp, max_bounces=max_bounces, seed=seed).double()
        vals.append(float((img * (1 if weights is None else weights)).sum()))
    return (vals[0] - vals[1]) / (2 * h)


def grad_translation(make_scene, shape_index, direction, spp, seed, max_bounces, weights=None, **kw):
    scene = make_scene(offset={}, grad_shape=shape_index)
    img = rt.render(scene, spp=spp, max_bounces=max_bounces, seed=seed, **kw)
    (img * (1 if weights is None else weights)).sum().backward()
    g = scene.shapes[shape_index].vertices.grad.double()
    return float((g.sum(0) * direction.double()).sum())


def shadow_scene(offset, grad_shape=None, H=32, W=32):
    """A diffuse plane, a small square light above and a black triangle occluder between."""
    def v(t, i):
        t = t.clone() + offset.get(i, torch.zeros(3))
        return t.requires_grad_(grad_shape == i)
    plane = torch.tensor([[-2.0, 0, -2], [2, 0, -2], [2, 0, 2], [-2, 0, 2]])
    plane_idx = torch.tensor([[0, 2, 1], [0, 3, 2]])          # normal +y
    light = torch.tensor([[-0.25, 2.0, -0.25], [0.25, 2.0, -0.25], [0.25, 2.0, 0.25], [-0.25, 2.0, 0.25]])
    light_idx = torch.tensor([[0, 1, 2], [0, 2, 3]])          # normal -y
    occ = torch.tensor([[-0.3, 1.0, -0.3], [0.4, 1.0, -0.2], [0.0, 1.0, 0.4]])
    cam = rt.Camera([0.0, 3.0, 3.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0], fov=45.0, resolution=(H, W))
    shapes = [rt.Shape(v(plane, 0), plane_idx, 0), rt.Shape(v(light, 1), light_idx, 1),
              rt.Shape(v(occ, 2), torch.tensor([[0, 1, 2]]), 1)]
    mats = [rt.Material(torch.tensor([0.6, 0.6, 0.6])), rt.Material(torch.zeros(3), two_sided=True)]
    return rt.Scene(cam, shapes, mats, [rt.AreaLight(1, torch.tensor([20.0, 20.0, 20.0]))])


@pytest.mark.parametrize("axis", [0, 2])
def test_shadow_gradient_matches_finite_differences(axis):
    d = torch.zeros(3)
    d[axis] = 1.0
    fd = fd_translation(shadow_scene, 2, d, h=0.02, spp=256, seed=3, max_bounces=1)
    g = grad_translation(shadow_scene, 2, d, spp=64, seed=4, max_bounces=1)
    assert abs(fd) > 1.0, "setup: the shadow must move"
    assert g == pytest.approx(fd, rel=0.05)
    g_no_edges = grad_translation(shadow_scene, 2, d, spp=16, seed=4, max_bounces=1, boundary=False)
    assert abs(g_no_edges - fd) > 0.5 * abs(fd), "without boundary terms the shadow gradient is lost"


def sphere_scene(offset, grad_shape=None, smooth=False, H=48, W=48):
    mesh = rt.sphere(radius=0.8, subdivisions=2)
    verts = mesh.vertices + offset.get(0, torch.zeros(3))
    verts = verts.clone().requires_grad_(grad_shape == 0)
    light = torch.tensor([[-0.5, 2.5, -0.5], [0.5, 2.5, -0.5], [0.5, 2.5, 0.5], [-0.5, 2.5, 0.5]])
    cam = rt.Camera([0.0, 1.0, 3.5], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0], fov=40.0, resolution=(H, W))
    shapes = [rt.Shape(verts, mesh.indices, 0, normals=mesh.normals if smooth else None),
              rt.Shape(light, torch.tensor([[0, 1, 2], [0, 2, 3]]), 1)]
    mats = [rt.Material(torch.tensor([0.7, 0.5, 0.3])), rt.Material(torch.zeros(3))]
    return rt.Scene(cam, shapes, mats, [rt.AreaLight(1, torch.tensor([15.0, 15.0, 15.0]))])


@pytest.mark.parametrize("smooth", [False, True])
def test_sphere_translation_gradient_within_two_percent(smooth):
    def make(offset, grad_shape=None):
        return sphere_scene(offset, grad_shape, smooth=smooth)
    d = torch.tensor([1.0, 0.3, 0.0])
    fd = fd_translation(make, 0, d, h=0.01, spp=512, seed=5, max_bounces=1)
    g = grad_translation(make, 0, d, spp=128, seed=6, max_bounces=1, edge_spp=64)
    assert g == pytest.approx(fd, rel=0.02)
