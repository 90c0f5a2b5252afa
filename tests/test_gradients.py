"""Gradients of whole images against closed forms and finite differences.

Each test renders with fixed seeds; the finite differences use the same seed on both sides.
Tolerances are chosen so that a wrong sign, a factor of two or a missing boundary term fails,
and the `boundary=False` checks show that the edge-sampling terms carry the visibility part.
"""
import functools

import numpy as np
import pytest
import torch

import raytrace as rt
from conftest import project


# ---- Reference projection (independent of the C++ code) ------------------------------------

def shoelace(p):
    x, y = p[:, 0], p[:, 1]
    return 0.5 * torch.abs((x * torch.roll(y, -1) - torch.roll(x, -1) * y).sum())


TRI = torch.tensor([[-0.5, -0.4, 0.0], [0.5, -0.3, 0.1], [0.1, 0.5, -0.1]])
UP = torch.tensor([0.0, 1.0, 0.0])


def triangle_scene(camera_type, vertices, position, H=48, W=64, radiance=2.0, fov=50.0):
    cam = rt.Camera(position, torch.zeros(3), UP, fov=fov, resolution=(H, W), camera_type=camera_type)
    shape = rt.Shape(vertices, torch.tensor([[0, 1, 2]]), 0)
    return rt.Scene(cam, [shape], [rt.Material(torch.zeros(3))],
                    [rt.AreaLight(0, torch.full((3,), radiance), two_sided=True)])


def area_gradient(camera_type, vertices, position, fov, H=48, W=64, radiance=2.0):
    """d(sum of the image)/d(inputs) by the closed form 3 L * projected area."""
    area = shoelace(project(vertices, position, torch.zeros(3), UP, fov, H, W, camera_type == "orthographic"))
    (3 * radiance * area).backward()


@pytest.mark.parametrize("camera_type", ["perspective", "orthographic"])
def test_emitting_triangle_vertex_gradient_is_radiance_times_area_derivative(camera_type):
    verts = TRI.clone().requires_grad_(True)
    position = torch.tensor([0.3, 0.2, 3.0])
    img = rt.render(triangle_scene(camera_type, verts, position), spp=4, max_bounces=0, seed=1, edge_spp=64)
    img.sum().backward()
    v_ref = TRI.clone().requires_grad_(True)
    area_gradient(camera_type, v_ref, position, torch.tensor(50.0))
    assert torch.isfinite(verts.grad).all()
    # Every component (moves along all three axes) within 3% of the largest.
    scale = float(v_ref.grad.abs().max())
    np.testing.assert_allclose(verts.grad.numpy(), v_ref.grad.numpy(), atol=0.03 * scale)


@pytest.mark.parametrize("camera_type", ["perspective", "orthographic"])
def test_emitting_triangle_camera_gradients(camera_type):
    position = torch.tensor([0.3, 0.2, 3.0], requires_grad=True)
    fov = torch.tensor(50.0, requires_grad=True)
    scene = triangle_scene(camera_type, TRI, position, fov=fov)
    rt.render(scene, spp=4, max_bounces=0, seed=2, edge_spp=64).sum().backward()
    p_ref = torch.tensor([0.3, 0.2, 3.0], requires_grad=True)
    fov_ref = torch.tensor(50.0, requires_grad=True)
    area_gradient(camera_type, TRI, p_ref, fov_ref)
    scale = float(p_ref.grad.abs().max())
    np.testing.assert_allclose(position.grad.numpy(), p_ref.grad.numpy(), atol=0.04 * scale)
    assert float(fov.grad) == pytest.approx(float(fov_ref.grad), rel=0.04)


def test_emitting_triangle_gradient_is_all_boundary():
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
    g = scene.shapes[shape_index].vertices.grad
    assert torch.isfinite(g).all()
    return float((g.double().sum(0) * direction.double()).sum())


def plane_light_scene(offset, grad_shape=None, H=32, W=32):
    """A large diffuse plane filling the view under a small square light above the camera."""
    def v(t, i):
        return (t + offset.get(i, torch.zeros(3))).requires_grad_(grad_shape == i)
    plane = torch.tensor([[-9.0, 0, -9], [9, 0, -9], [9, 0, 9], [-9, 0, 9]])
    light = torch.tensor([[-0.5, 1.5, -0.3], [0.2, 1.5, -0.3], [0.2, 1.5, 0.3], [-0.5, 1.5, 0.3]])
    quad = torch.tensor([[0, 2, 1], [0, 3, 2]])     # normal +y for the plane, -y for the light below
    cam = rt.Camera([1.0, 1.0, 2.0], [0.0, 0.0, 0.0], UP, fov=50.0, resolution=(H, W))
    shapes = [rt.Shape(v(plane, 0), quad, 0), rt.Shape(v(light, 1), quad[:, [0, 2, 1]], 1)]
    mats = [rt.Material(torch.tensor([0.5, 0.5, 0.5])), rt.Material(torch.zeros(3))]
    return rt.Scene(cam, shapes, mats, [rt.AreaLight(1, torch.tensor([20.0, 20.0, 20.0]))])


@pytest.mark.parametrize("shape_index,axis", [(0, 1), (1, 0), (1, 1)])
def test_secondary_edges_plane_under_area_light(shape_index, axis):
    """Moving the plane or the light changes the irradiance only through the light's edges
    as seen from each shading point (no edge is visible to the camera)."""
    d = torch.zeros(3)
    d[axis] = 1.0
    w = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(0))
    fd = fd_translation(plane_light_scene, shape_index, d, h=0.01, spp=512, seed=5, max_bounces=1, weights=w)
    g = grad_translation(plane_light_scene, shape_index, d, spp=128, seed=6, max_bounces=1, weights=w)
    assert abs(fd) > 10
    assert g == pytest.approx(fd, rel=0.05)
    g0 = grad_translation(plane_light_scene, shape_index, d, spp=8, seed=6, max_bounces=1, weights=w,
                          boundary=False)
    assert abs(g0) < 1e-3 * abs(fd), "the interior terms alone carry none of this gradient"


def roof_scene(offset, grad_shape=None):
    """A flat-shaded ridge (two faces) filling the view, lit by an uneven environment: the
    image jumps across the crease edge, which is not a silhouette."""
    v = torch.tensor([[-3, 0, -3], [0, 0.8, -3], [0, 0.8, 3], [-3, 0, 3], [3, 0, -3], [3, 0, 3.0]])
    v = (v + offset.get(0, torch.zeros(3))).requires_grad_(grad_shape == 0)
    f = torch.tensor([[0, 2, 1], [0, 3, 2], [1, 2, 5], [1, 5, 4]])
    env = torch.ones(16, 32, 3)
    env[:, :8] = 5.0
    cam = rt.Camera([0.0, 4.0, 0.5], [0.0, 0.0, 0.0], UP, fov=30.0, resolution=(32, 32))
    return rt.Scene(cam, [rt.Shape(v, f, 0)], [rt.Material(torch.tensor([0.5, 0.5, 0.5]))],
                    envmap=rt.EnvironmentMap(env))


def test_flat_shading_crease_edges():
    d = torch.tensor([1.0, 0.0, 0.0])
    fd = fd_translation(roof_scene, 0, d, h=0.01, spp=256, seed=5, max_bounces=1)
    g = grad_translation(roof_scene, 0, d, spp=4, seed=1, max_bounces=1, edge_spp=64)
    assert abs(fd) > 100
    assert g == pytest.approx(fd, rel=0.03)
    # Silhouette-only sampling (what the crease term adds) would miss all of it.
    g0 = grad_translation(roof_scene, 0, d, spp=4, seed=1, max_bounces=1, boundary=False)
    assert abs(g0) < 1e-3 * abs(fd)


def shadow_scene(offset, grad_shape=None, H=32, W=32):
    """A diffuse plane, a small square light above and a black triangle occluder between."""
    def v(t, i):
        return (t + offset.get(i, torch.zeros(3))).requires_grad_(grad_shape == i)
    plane = torch.tensor([[-2.0, 0, -2], [2, 0, -2], [2, 0, 2], [-2, 0, 2]])
    light = torch.tensor([[-0.25, 2.0, -0.25], [0.25, 2.0, -0.25], [0.25, 2.0, 0.25], [-0.25, 2.0, 0.25]])
    occ = torch.tensor([[-0.3, 1.0, -0.3], [0.4, 1.0, -0.2], [0.0, 1.0, 0.4]])
    cam = rt.Camera([0.0, 3.0, 3.0], [0.0, 0.0, 0.0], UP, fov=45.0, resolution=(H, W))
    shapes = [rt.Shape(v(plane, 0), torch.tensor([[0, 2, 1], [0, 3, 2]]), 0),
              rt.Shape(v(light, 1), torch.tensor([[0, 1, 2], [0, 2, 3]]), 1),
              rt.Shape(v(occ, 2), torch.tensor([[0, 1, 2]]), 1)]
    mats = [rt.Material(torch.tensor([0.6, 0.6, 0.6])), rt.Material(torch.zeros(3), two_sided=True)]
    return rt.Scene(cam, shapes, mats, [rt.AreaLight(1, torch.tensor([20.0, 20.0, 20.0]))])


def small_shadow_scene(offset, grad_shape=None):
    return shadow_scene(offset, grad_shape, H=24, W=24)


@functools.lru_cache(maxsize=None)
def occluder_fd():
    """Central difference for the occluder moving along +z (it needs many samples: the shadow's
    edge makes it noisy)."""
    return fd_translation(small_shadow_scene, 2, torch.tensor([0.0, 0.0, 1.0]), h=0.02, spp=4096, seed=3,
                          max_bounces=1)


@pytest.mark.parametrize("stride", [16, 1])
def test_shadow_of_moving_occluder(stride):
    """The occluder is black: it changes the image only through its edges, seen from the camera
    (its silhouette against the plane) and from the plane (the shadow's outline). The plane's
    points take the shadow's terms on one path in 16 (the default) or on every path."""
    make = small_shadow_scene
    d = torch.tensor([0.0, 0.0, 1.0])
    fd = occluder_fd()
    g = grad_translation(make, 2, d, spp=1024, seed=4, max_bounces=1, edge_spp=64, secondary_stride=stride)
    assert abs(fd) > 10.0, "setup: the shadow must move"
    assert g == pytest.approx(fd, rel=0.05)
    g0 = grad_translation(make, 2, d, spp=8, seed=4, max_bounces=1, boundary=False)
    assert abs(g0) < 1e-3 * abs(fd)
    g_primary = grad_translation(make, 2, d, spp=8, seed=4, max_bounces=1, edge_spp=64, boundary="primary")
    assert abs(g_primary - fd) > 0.3 * abs(fd), "the shadow's own edges (secondary) carry much of it"


def test_shadow_of_moving_occluder_with_a_bounce_left():
    """The same shadow with two bounces: at the plane's points a bounce is left, so every edge may
    matter there and the light's own edges (the direct light's outline) are drawn by a mixture of
    the general edge tree and the emission one; the gradient must still match finite differences."""
    d = torch.tensor([0.0, 0.0, 1.0])
    fd = fd_translation(small_shadow_scene, 2, d, h=0.02, spp=4096, seed=3, max_bounces=2)
    g = grad_translation(small_shadow_scene, 2, d, spp=1024, seed=4, max_bounces=2, edge_spp=64)
    assert abs(fd) > 10.0
    assert g == pytest.approx(fd, rel=0.05)


def test_occluder_gradient_when_more_is_asked():
    """Only the gradients asked for steer the edge sampling: with the occluder alone requiring
    grad, the plane's shading points sample only the occluder's edges and the primary samples
    skip the plane's and the light's. With the plane's vertices and the camera requiring grad
    as well, every edge is sampled from everywhere; the occluder's gradient must agree with the
    finite differences either way."""
    d = torch.tensor([0.0, 0.0, 1.0])
    scene = small_shadow_scene(offset={}, grad_shape=2)
    scene.shapes[0].vertices.requires_grad_(True)
    scene.camera.position.requires_grad_(True)
    rt.render(scene, spp=1024, max_bounces=1, seed=4, edge_spp=64).sum().backward()
    g = float((scene.shapes[2].vertices.grad.double().sum(0) * d.double()).sum())
    assert scene.shapes[0].vertices.grad is not None and scene.camera.position.grad is not None
    assert g == pytest.approx(occluder_fd(), rel=0.05)


def test_edge_samples_go_only_where_gradients_are_asked():
    """The backward pass samples the edges whose motion reaches a gradient that was asked for:
    none for a light's intensity alone (no edge moves it), only the occluder's own for its
    vertices, every edge that can matter once the camera's position is asked for too."""
    def counts(wanted):
        scene = shadow_scene({})
        tensors = {"intensity": scene.area_lights[0].intensity, "occluder": scene.shapes[2].vertices,
                   "camera": scene.camera.position}
        for name in wanted:
            tensors[name].requires_grad_(True)
        rt.render(scene, spp=2, max_bounces=1, seed=2).sum().backward()
        return scene._stats["primary_edge_samples"], scene._stats["secondary_edge_draws"]
    assert counts(["intensity"]) == (0, 0)
    occluder, everything = counts(["occluder"]), counts(["occluder", "camera"])
    assert 0 < occluder[0] < everything[0] and 0 < occluder[1] < everything[1]
    # Same density on the occluder's edges: its share of the edges' screen length.
    assert everything[0] <= 2 * 32 * 32 + 1


def test_occluder_behind_the_light_casts_no_shadow_gradient():
    """A small black square just above a downward light: seen from the plane it lies behind the
    light, so it shadows nothing and its edges' secondary terms must all vanish (the light in
    front hides them on both sides)."""
    plane = torch.tensor([[-2.0, 0, -2], [2, 0, -2], [2, 0, 2], [-2, 0, 2]])
    light = torch.tensor([[-0.25, 1.0, -0.25], [0.25, 1.0, -0.25], [0.25, 1.0, 0.25], [-0.25, 1.0, 0.25]])
    occ = torch.tensor([[-0.15, 1.1, -0.15], [0.15, 1.1, -0.15], [0.15, 1.1, 0.15], [-0.15, 1.1, 0.15]],
                       requires_grad=True)
    cam = rt.Camera([0.0, 0.8, 2.5], [0.0, 0.0, 0.0], UP, fov=40.0, resolution=(24, 24))
    quad = torch.tensor([[0, 2, 1], [0, 3, 2]])  # +y normal
    shapes = [rt.Shape(plane, quad, 0), rt.Shape(light, torch.tensor([[0, 1, 2], [0, 2, 3]]), 1),
              rt.Shape(occ, quad, 1)]
    mats = [rt.Material(torch.tensor([0.6, 0.6, 0.6])), rt.Material(torch.zeros(3), two_sided=True)]
    scene = rt.Scene(cam, shapes, mats, [rt.AreaLight(1, torch.tensor([20.0, 20.0, 20.0]))])
    img = rt.render(scene, spp=16, max_bounces=1, seed=3, boundary="secondary", interior=False)
    assert float(img.detach()[..., :3].mean()) > 0.1, "setup: the plane is lit"
    img.sum().backward()
    assert scene._stats["secondary_edge_draws"] > 0, "setup: the occluder's edges are drawn"
    assert float(occ.grad.abs().max()) == 0.0


def card_on_light_scene(offset, grad_shape=None):
    """A black card standing on a large upward-facing light, a diffuse wall behind it: the card's
    bottom edge lies on the light's surface, so from the wall the light is seen right past it."""
    def v(t, i):
        return (t + offset.get(i, torch.zeros(3))).requires_grad_(grad_shape == i)
    light = torch.tensor([[-1.0, 0, -1], [1, 0, -1], [1, 0, 1], [-1, 0, 1]])
    wall = torch.tensor([[-1.5, 0, -1.2], [1.5, 0, -1.2], [1.5, 2, -1.2], [-1.5, 2, -1.2]])
    card = torch.tensor([[-0.4, 0, 0.0], [0.4, 0, 0.0], [0.4, 0.6, 0.0], [-0.4, 0.6, 0.0]])
    cam = rt.Camera([0.0, 1.6, 3.0], [0.0, 0.6, -1.2], UP, fov=50.0, resolution=(24, 24))
    shapes = [rt.Shape(v(light, 0), torch.tensor([[0, 2, 1], [0, 3, 2]]), 1),   # normal +y
              rt.Shape(v(wall, 1), torch.tensor([[0, 1, 2], [0, 2, 3]]), 0),    # normal +z
              rt.Shape(v(card, 2), torch.tensor([[0, 1, 2], [0, 2, 3]]), 1)]
    mats = [rt.Material(torch.tensor([0.6, 0.6, 0.6])), rt.Material(torch.zeros(3), two_sided=True)]
    return rt.Scene(cam, shapes, mats, [rt.AreaLight(0, torch.tensor([5.0, 5.0, 5.0]))])


def test_occluder_edge_lying_on_a_light():
    """The card's shadow on the wall moves with it; its bottom edge, flush with the light, bounds
    that light on one side (a light surface through the edge point must not count as in front of
    it: that lost half of the secondary term)."""
    d = torch.tensor([0.0, 0.0, 1.0])
    fd = fd_translation(card_on_light_scene, 2, d, h=0.02, spp=4096, seed=3, max_bounces=1)
    g = grad_translation(card_on_light_scene, 2, d, spp=1024, seed=4, max_bounces=1, edge_spp=64)
    g_primary = grad_translation(card_on_light_scene, 2, d, spp=1024, seed=4, max_bounces=1, edge_spp=64,
                                 boundary="primary")
    assert abs(fd) > 100
    assert abs(g_primary - fd) > 0.06 * abs(fd), "setup: the secondary (shadow) term carries a share"
    assert g == pytest.approx(fd, rel=0.03)


def test_backward_rejects_wrong_gradient_flags():
    scene = shadow_scene({})
    core = scene._sync(1)
    d = np.ones((32, 32, 3), np.float32)
    with pytest.raises(ValueError, match="shape_vertex_grad"):
        core.render_backward(d, 1, 1, 0, 1, True, True, 1, 1, shape_vertex_grad=[True])
    with pytest.raises(ValueError, match="secondary_stride"):
        core.render_backward(d, 1, 1, 0, 1, True, True, 1, 1, secondary_stride=0)
    for bad, error in [(0, ValueError), (-3, ValueError), (2**31, ValueError), (2.5, TypeError)]:
        with pytest.raises(error, match="secondary_stride"):
            rt.render(scene, spp=1, secondary_stride=bad)
        with pytest.raises(error, match="secondary_stride"):
            rt.gradient_image(scene, scene.shapes[2].vertices, secondary_stride=bad)


# ---- Interior terms ------------------------------------------------------------------------

def lit_scene(kd, ks, roughness, intensity, envmap, texture=False):
    """A smooth sphere on a plane, lit by an area light and an environment map."""
    mesh = rt.sphere(radius=0.7, subdivisions=2)
    plane = torch.tensor([[-3.0, -0.7, -3], [3, -0.7, -3], [3, -0.7, 3], [-3, -0.7, 3]])
    light = torch.tensor([[-0.4, 2.0, -0.4], [0.4, 2.0, -0.4], [0.4, 2.0, 0.4], [-0.4, 2.0, 0.4]])
    plane_uv = torch.tensor([[0.0, 0], [1, 0], [1, 1], [0, 1]])
    cam = rt.Camera([0.0, 1.2, 3.0], [0.0, 0.0, 0.0], UP, fov=45.0, resolution=(24, 24))
    shapes = [rt.Shape(mesh.vertices, mesh.indices, 0, normals=mesh.normals),
              rt.Shape(plane, torch.tensor([[0, 2, 1], [0, 3, 2]]), 1, uvs=plane_uv),
              rt.Shape(light, torch.tensor([[0, 1, 2], [0, 2, 3]]), 2)]
    mats = [rt.Material(kd, ks, roughness), rt.Material(texture), rt.Material(torch.zeros(3))]
    return rt.Scene(cam, shapes, mats, [rt.AreaLight(2, intensity)], envmap=rt.EnvironmentMap(envmap))


def _interior_params():
    g = torch.Generator().manual_seed(3)
    return {
        "kd": torch.tensor([0.6, 0.4, 0.3]),
        "ks": torch.tensor([0.3, 0.3, 0.3]),
        "roughness": torch.tensor([0.3]),
        "intensity": torch.tensor([8.0, 8.0, 8.0]),
        "envmap": 0.2 + torch.rand(4, 8, 3, generator=g),
        "texture": 0.2 + 0.6 * torch.rand(4, 4, 3, generator=g),
    }


@pytest.mark.parametrize("name", ["kd", "ks", "roughness", "intensity", "envmap", "texture"])
def test_interior_gradients_match_finite_differences(name):
    params = _interior_params()
    w = torch.rand(24, 24, 3, generator=torch.Generator().manual_seed(1))
    direction = torch.rand(params[name].shape, generator=torch.Generator().manual_seed(2)) + 0.5

    def value(p, spp, seed):
        return float((rt.render(lit_scene(**p), spp=spp, max_bounces=2, seed=seed).double() * w).sum())

    h = 0.01 * float(params[name].abs().max())
    plus = dict(params, **{name: params[name] + h * direction})
    minus = dict(params, **{name: params[name] - h * direction})
    fd = (value(plus, 2048, 7) - value(minus, 2048, 7)) / (2 * h)
    leaf = params[name].clone().requires_grad_(True)
    img = rt.render(lit_scene(**dict(params, **{name: leaf})), spp=512, max_bounces=2, seed=8)
    (img * w).sum().backward()
    g = float((leaf.grad.double() * direction.double()).sum())
    assert abs(fd) > 1e-2
    assert g == pytest.approx(fd, rel=0.06)


def test_light_intensity_gradient_is_exact_for_a_single_light():
    """The image is linear in the intensity of the only light (no environment here)."""
    params = _interior_params()
    params["envmap"] = torch.zeros(4, 8, 3)
    intensity = params["intensity"].clone().requires_grad_(True)
    img = rt.render(lit_scene(**dict(params, intensity=intensity)), spp=16, max_bounces=2, seed=3)
    img.sum().backward()
    # d sum / d I_c = sum of channel c / I_c, up to the noise of different streams.
    expected = img.detach().sum(dim=(0, 1)) / params["intensity"]
    np.testing.assert_allclose(intensity.grad.numpy(), expected.numpy(), rtol=0.05)


def test_gradients_are_finite_in_hard_cases():
    """Grazing views, degenerate triangles, vertices on the silhouette, coplanar neighbours."""
    verts = torch.tensor([[-1.0, 0, -1], [1, 0, -1], [1, 0, 1], [-1, 0, 1], [0, 0, 0], [0, 0, 0],
                          [0.5, 0.0, 0.5]], requires_grad=True)
    idx = torch.tensor([[0, 4, 1], [1, 4, 2], [2, 4, 3], [3, 4, 0], [4, 5, 6], [0, 0, 1]])
    light = torch.tensor([[-0.3, 1.0, -0.3], [0.3, 1.0, -0.3], [0.3, 1.0, 0.3], [-0.3, 1.0, 0.3]])
    for cam_pos in ([0.0, 0.01, 3.0], [0.0, 2.0, 2.0], [0.0, 3.0, 0.001]):
        cam = rt.Camera(cam_pos, [0.0, 0.0, 0.0], UP if cam_pos[1] < 3 else [0.0, 0.0, -1.0], fov=60.0,
                        resolution=(16, 16))
        scene = rt.Scene(cam, [rt.Shape(verts, idx, 0), rt.Shape(light, torch.tensor([[0, 1, 2], [0, 2, 3]]), 1)],
                         [rt.Material(torch.tensor([0.5, 0.5, 0.5]), two_sided=True), rt.Material(torch.zeros(3))],
                         [rt.AreaLight(1, torch.tensor([5.0, 5.0, 5.0]), two_sided=True)],
                         envmap=rt.EnvironmentMap(torch.ones(2, 4, 3)))
        verts.grad = None
        rt.render(scene, spp=8, max_bounces=3, seed=0).sum().backward()
        assert torch.isfinite(verts.grad).all()


def test_backward_is_deterministic_across_thread_counts():
    grads = []
    for threads in (1, 2):
        verts = TRI.clone().requires_grad_(True)
        scene = shadow_scene({}, grad_shape=2)
        rt.render(scene, spp=8, max_bounces=2, seed=3, threads=threads).sum().backward()
        grads.append(scene.shapes[2].vertices.grad.clone())
        del verts
    assert torch.equal(grads[0], grads[1])


def test_gradient_image_sums_to_the_gradient():
    """gradient_image attributes every term to a pixel: its sum is the translation gradient of
    the summed image, and it is zero where nothing depends on the object."""
    scene = shadow_scene({}, grad_shape=None, H=24, W=24)
    occ = scene.shapes[2].vertices
    direction = torch.tensor([0.0, 0.0, 1.0]).expand_as(occ)
    image = rt.gradient_image(scene, occ, direction, spp=16, max_bounces=1, seed=3, edge_spp=16)
    assert image.shape == (24, 24) and torch.isfinite(image).all()
    scene2 = shadow_scene({}, grad_shape=2, H=24, W=24)
    rt.render(scene2, spp=16, max_bounces=1, seed=3, edge_spp=16).sum().backward()
    expected = float((scene2.shapes[2].vertices.grad * direction).sum())
    assert float(image.double().sum()) == pytest.approx(expected, rel=1e-4, abs=1e-4)
    assert float((image != 0).float().mean()) < 0.5, "only pixels near the occluder and its shadow"
    with pytest.raises(ValueError, match="scene's own tensors"):
        rt.gradient_image(scene, occ.clone(), direction)


def test_specular_gradient_at_zero_specular():
    """The specular lobe fades out continuously as ks -> 0, so an optimisation can start from a
    purely diffuse material: the gradient at ks = 0 matches a one-sided difference."""
    params = _interior_params()
    params["ks"] = torch.zeros(3)
    w = torch.rand(24, 24, 3, generator=torch.Generator().manual_seed(1))
    h = 1e-3

    def value(ks, spp, seed):
        return float((rt.render(lit_scene(**dict(params, ks=ks)), spp=spp, max_bounces=1, seed=seed).double() * w)
                     .sum())

    fd = (value(torch.full((3,), h), 2048, 5) - value(torch.zeros(3), 2048, 5)) / h
    ks = torch.zeros(3, requires_grad=True)
    (rt.render(lit_scene(**dict(params, ks=ks)), spp=512, max_bounces=1, seed=6) * w).sum().backward()
    g = float(ks.grad.sum())
    assert fd > 0
    assert g == pytest.approx(fd, rel=0.1)


@pytest.mark.parametrize("spp", [4, 64])
def test_secondary_stride_takes_one_path_in_stride(spp):
    """Emission-only vertices take their shadow terms on one path in `secondary_stride` (weighted
    up by the stride; the occluder test above checks the weights against finite differences):
    fewer paths than pixels when spp < stride, spp / stride per pixel above. The draws counted
    after backward() follow, against every path (stride 1)."""
    def draws(stride):
        scene = shadow_scene({}, grad_shape=2)
        rt.render(scene, spp=spp, max_bounces=1, seed=5, secondary_stride=stride).sum().backward()
        return scene._stats["secondary_edge_draws"]
    every, one_in_16 = draws(1), draws(16)
    assert every > 1000, "setup: the plane's points draw the occluder's edges"
    assert one_in_16 / every == pytest.approx(1 / 16, rel=0.15)
