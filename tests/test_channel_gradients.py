"""Gradients of the auxiliary channels: alpha, depth, normal, albedo (issue 11).

Alpha (coverage) is piecewise constant: its gradient is the silhouettes' primary-edge term. A
triangle fully inside the image covers its projected area, so the sum of the alpha image is that
area in pixels and its gradient is the projected area's derivative, computed here in torch
(conftest.project, independent of the C++ code). Depth, normal and albedo have an interior term at
the first hit and the same boundary term (their jump across a silhouette); they are checked
against central finite differences of renders with the same seed (the same sample positions).
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


def _fd(make, loss, tensor, direction, eps, **kw):
    """Central difference of loss(render) along `direction`, with the same seed on both sides."""
    with torch.no_grad():
        base = tensor.detach().clone()
        vals = []
        for sign in (1, -1):
            tensor.copy_(base + sign * eps * direction)
            vals.append(float(loss(rt.render(make(), **kw))))
        tensor.copy_(base)
    return (vals[0] - vals[1]) / (2 * eps)


def _quad_scene(verts, uvs=None, texture=None, normals=None):
    """A quad seen from the front; the camera looks at it from z = 3."""
    camera = rt.Camera([0.1, 0.2, 3.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0], 40.0, (24, 28))
    material = rt.Material(texture if texture is not None else [0.5, 0.4, 0.3])
    shape = rt.Shape(verts, torch.tensor([[0, 1, 2], [0, 2, 3]]), 0, uvs=uvs, normals=normals)
    return rt.Scene(camera, [shape], [material])


def _quad(half=2.0, tilt=0.3):
    return torch.tensor([[-half, -half, -tilt], [half, -half, tilt], [half, half, tilt], [-half, half, -tilt]])


@pytest.mark.parametrize("covering", [True, False], ids=["interior", "with-silhouettes"])
def test_depth_gradient_matches_finite_differences(covering):
    """Depth of a tilted quad w.r.t. its vertices and the camera position: filling the view (the
    interior term alone; finite differences are exact there) and seen whole on the black
    background, where its silhouettes jump to depth 0 (the boundary term; there the differences
    move with the samples the silhouettes cross, so both sides are averaged over 8 seeds: their
    standard error is about 1.5%, and without the boundary term the gradients are off by 30% and
    have the wrong sign)."""
    weights = torch.linspace(0.5, 1.5, 28)
    loss = lambda img: (img[..., 0] * weights).sum()  # noqa: E731
    g = torch.Generator().manual_seed(0)
    directions = [torch.randn(4, 3, generator=g), torch.randn(3, generator=g)]
    seeds = [3] if covering else range(8)
    grads, fds = torch.zeros(2), torch.zeros(2)
    for seed in seeds:
        kw = dict(spp=64, max_bounces=0, seed=seed, channels=("depth",), edge_spp=32)
        scene = _quad_scene(_quad(2.0 if covering else 0.6))
        params = [scene.shapes[0].vertices, scene.camera.position]
        for t in params:
            t.requires_grad_(True)
        loss(rt.render(scene, **kw)).backward()
        for i, (t, d) in enumerate(zip(params, directions)):
            grads[i] += float((t.grad * d).sum()) / len(seeds)
            fds[i] += _fd(lambda: scene, loss, t, d, 1e-2, **kw) / len(seeds)
    assert bool((fds.abs() > 100).all()), "setup: the loss moves"
    torch.testing.assert_close(grads, fds, rtol=0.003 if covering else 0.04, atol=0.0)


def test_normal_gradient_matches_finite_differences():
    """The shading-normal channel of a smooth-shaded quad w.r.t. its vertex normals (interior:
    the interpolated, normalised normal) and its vertices (through the barycentrics)."""
    verts = _quad()
    normals = torch.tensor([[-0.3, -0.2, 1.0], [0.3, -0.1, 1.0], [0.2, 0.3, 1.0], [-0.2, 0.2, 1.0]])
    kw = dict(spp=16, max_bounces=0, seed=4, channels=("normal",))
    w = torch.tensor([0.7, -1.1, 0.4])
    loss = lambda img: (img * w).sum()  # noqa: E731
    scene = _quad_scene(verts, normals=normals)
    for t in (scene.shapes[0].normals, scene.shapes[0].vertices):
        t.requires_grad_(True)
    loss(rt.render(scene, **kw)).backward()
    g = torch.Generator().manual_seed(1)
    for tensor in (scene.shapes[0].normals, scene.shapes[0].vertices):
        direction = torch.randn(tensor.shape, generator=g)
        fd = _fd(lambda: scene, loss, tensor, direction, 1e-3, **kw)
        assert abs(fd) > 0.1, "setup: the loss moves"
        assert float((tensor.grad * direction).sum()) == pytest.approx(fd, rel=0.03)


def test_albedo_gradient_matches_finite_differences():
    """The albedo channel of a textured quad w.r.t. the texture (linear: exact) and the uvs."""
    verts = _quad()
    uvs = torch.tensor([[0.1, 0.1], [0.9, 0.15], [0.85, 0.9], [0.05, 0.8]])
    texture = 0.2 + 0.6 * torch.rand(8, 8, 3, generator=torch.Generator().manual_seed(2))
    kw = dict(spp=16, max_bounces=0, seed=5, channels=("albedo",))
    w = torch.tensor([1.0, 0.5, -0.8])
    loss = lambda img: (img * w).sum()  # noqa: E731
    scene = _quad_scene(verts, uvs=uvs, texture=texture)
    for t in (scene.materials[0].diffuse_reflectance, scene.shapes[0].uvs):
        t.requires_grad_(True)
    loss(rt.render(scene, **kw)).backward()
    g = torch.Generator().manual_seed(3)
    for tensor, eps in ((scene.materials[0].diffuse_reflectance, 1e-2), (scene.shapes[0].uvs, 1e-3)):
        direction = torch.randn(tensor.shape, generator=g)
        fd = _fd(lambda: scene, loss, tensor, direction, eps, **kw)
        assert abs(fd) > 0.1, "setup: the loss moves"
        assert float((tensor.grad * direction).sum()) == pytest.approx(fd, rel=0.03)


def test_position_geometry_normal_and_uv_channels():
    """position, geometry_normal and uv: their values on an orthographic view of a tilted quad (where
    they are affine in screen space, so the pixel's average is the value at its centre), and their
    gradients against finite differences (w.r.t. the vertices and the uvs)."""
    verts = _quad()
    uvs = torch.tensor([[0.1, 0.1], [0.9, 0.15], [0.85, 0.9], [0.05, 0.8]])
    camera = rt.Camera([0.1, 0.2, 3.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0], 40.0, (24, 28), camera_type="orthographic")
    scene = rt.Scene(camera, [rt.Shape(verts, torch.tensor([[0, 1, 2], [0, 2, 3]]), 0, uvs=uvs)],
                     [rt.Material([0.5, 0.5, 0.5])])
    channels = ("position", "geometry_normal", "uv", "barycentrics", "triangle_id")
    img = rt.render(scene, spp=16, max_bounces=0, seed=1, channels=channels)
    assert img.shape == (24, 28, 11)
    # The pixel centres' hits, from scene.intersect.
    h, w = 24, 28
    from conftest import CameraModel
    model = CameraModel([0.1, 0.2, 3.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0], 40.0, (h, w), "orthographic")
    col, row = model.pixel_centers()
    o, d = model.rays(col, row)
    hits = scene.intersect(torch.from_numpy(o.reshape(-1, 3)).float(), torch.from_numpy(d.reshape(-1, 3)).float())
    p = torch.from_numpy(o.reshape(-1, 3)).float() + hits["t"][:, None] * torch.from_numpy(d.reshape(-1, 3)).float()
    # (The mean of a pixel's 16 jittered samples is within a few hundredths of a pixel of its
    # centre, 0.078 world units wide here.)
    torch.testing.assert_close(img[..., 0:3].reshape(-1, 3), p, atol=0.05 * 0.078, rtol=0)
    n = torch.linalg.cross(verts[1] - verts[0], verts[2] - verts[0])
    n = n / n.norm() * (1 if float(n[2]) > 0 else -1)  # facing the camera (at +z)
    torch.testing.assert_close(img[..., 3:6].reshape(-1, 3), n.expand(h * w, 3), atol=1e-5, rtol=0)
    assert torch.equal(img[..., 10].reshape(-1).long(), hits["triangle_id"])
    torch.testing.assert_close(img[..., 8:10].reshape(-1, 2), hits["uv"], atol=1e-5, rtol=0)
    tri = torch.tensor([[0, 1, 2], [0, 2, 3]])[hits["triangle_id"]]  # [N, 3] vertex indices
    b = hits["uv"]
    uv_centre = (1 - b[:, :1] - b[:, 1:]) * uvs[tri[:, 0]] + b[:, :1] * uvs[tri[:, 1]] + b[:, 1:] * uvs[tri[:, 2]]
    torch.testing.assert_close(img[..., 6:8].reshape(-1, 2), uv_centre, atol=0.05 * 0.016, rtol=0)  # (0.016 / px)
    # Gradients.
    g = torch.Generator().manual_seed(5)
    weights = torch.randn(11, generator=g) * torch.tensor([1.0] * 8 + [0.0] * 3)  # (ids: no gradient)
    kw = dict(spp=16, max_bounces=0, seed=1, channels=channels)
    loss = lambda im: (im * weights).sum()  # noqa: E731
    for t in (scene.shapes[0].vertices, scene.shapes[0].uvs):
        t.requires_grad_(True)
    loss(rt.render(scene, **kw)).backward()
    for t in (scene.shapes[0].vertices, scene.shapes[0].uvs):
        direction = torch.randn(t.shape, generator=g)
        fd = _fd(lambda: scene, loss, t, direction, 1e-3, **kw)
        assert abs(fd) > 0.1, "setup: the loss moves"
        assert float((t.grad * direction).sum()) == pytest.approx(fd, rel=0.03)


def test_misses_are_zero_and_ids_minus_one():
    """Where nothing is hit every channel is 0 (depth too), but shape_id and triangle_id, -1."""
    scene = _scene(_triangle().detach())
    names = ("alpha", "depth", "normal", "albedo", "position", "geometry_normal", "uv", "barycentrics", "shape_id",
             "triangle_id")
    img = torch.cat([rt.render(scene, spp=4, max_bounces=0, channels=names[:5]),
                     rt.render(scene, spp=4, max_bounces=0, channels=names[5:])], dim=-1)
    corner = img[0, 0]  # (the triangle does not reach the corner)
    assert torch.equal(corner[:-2], torch.zeros(len(corner) - 2))
    assert corner[-2:].tolist() == [-1.0, -1.0]
