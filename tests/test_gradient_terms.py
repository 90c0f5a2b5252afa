"""Each term of the gradient where it dominates, at a tolerance tight for that term.

End-to-end checks of translations summed over an image hide any term that carries less than
their tolerance, and translations never exercise normals, rotations, per-vertex splits,
look_at or up (issue 16). Here every test builds a scene in which one term carries all (or most)
of the derivative it checks, against a closed form or a central finite difference with the same
seed on both sides:

- camera position, look_at, up and fov: a clipped emitting triangle, closed form;
- the flat-shading normal: every vertex of a quad under an environment map (rotations,
  single vertices out of its plane), interior only, closed form;
- light intensities: seen directly (exact) and reached by MIS-weighted BSDF samples;
- uvs, texels, barycentrics (a texture stretched by a moving vertex), the environment map,
  and the camera turning under it (the interior camera term);
- secondary edges: one occluder vertex at a time, the occluder out of view;
- the secondary_stride weight: stride 16 against stride 1;
- the shadow-terminator band of a coarse smooth sphere.

Each docstring names the plausible one-line bugs (ids of tests/mutation/mutate.py) it catches;
docs/mutations.md has the list and the last run of the mutation script.
"""
import math

import numpy as np
import pytest
import torch

import raytrace as rt
from conftest import envmap_lookup, project

UP = [0.0, 1.0, 0.0]


def directional(make, value, direction, h, spp, seed, max_bounces, weights=1.0):
    """Central difference of sum(weights * image) along `direction` of the tensor `value` that
    `make(value)` places in its scene: the same seed on both sides."""
    vals = []
    for sign in (1.0, -1.0):
        img = rt.render(make(value + sign * h * direction), spp=spp, max_bounces=max_bounces, seed=seed)
        vals.append(float((img.double() * weights).sum()))
    return (vals[0] - vals[1]) / (2 * h)


def gradient(make, value, spp, seed, max_bounces, weights=1.0, **kw):
    """d sum(weights * image) / d value from the reverse pass."""
    leaf = value.clone().requires_grad_(True)
    img = rt.render(make(leaf), spp=spp, max_bounces=max_bounces, seed=seed, **kw)
    (img * weights).sum().backward()
    assert torch.isfinite(leaf.grad).all()
    return leaf.grad.double()


# ---- Camera: a clipped emitting triangle (closed form) ----------------------------------------

def clip_polygon(poly, axis, value, keep_above):
    """Sutherland-Hodgman: the part of polygon `poly` (a list of [2] tensors) on one side of the
    line coordinate[axis] = value. The new vertices are differentiable functions of the old."""
    out = []
    for i in range(len(poly)):
        a, b = poly[i], poly[(i + 1) % len(poly)]
        fa = a[axis] - value if keep_above else value - a[axis]
        fb = b[axis] - value if keep_above else value - b[axis]
        if fa >= 0:
            out.append(a)
        if (fa >= 0) != (fb >= 0):
            out.append(a + (b - a) * (fa / (fa - fb)))
    return out


def polygon_area(poly):
    if len(poly) < 3:
        return torch.zeros((), dtype=torch.float64)
    p = torch.stack(poly)
    x, y = p[:, 0], p[:, 1]
    return 0.5 * torch.abs((x * torch.roll(y, -1) - torch.roll(x, -1) * y).sum())


def area_in_rectangle(points, x0, x1, y0, y1):
    """Area of the polygon `points` [N, 2] inside the rectangle [x0, x1] x [y0, y1]."""
    poly = [points[i] for i in range(points.shape[0])]
    for axis, value, above in ((0, x0, True), (0, x1, False), (1, y0, True), (1, y1, False)):
        poly = clip_polygon(poly, axis, value, above)
        if not poly:
            break
    return polygon_area(poly)


CLIP_H, CLIP_W = 24, 32
CLIP_L = torch.tensor([1.0, 2.0, 0.5])
CLIP_TRI = torch.tensor([[-1.9, -0.5, 0.2], [0.9, -1.1, -0.1], [0.4, 1.2, 0.1]])
CLIP_CAMERA = {"position": [0.3, 0.25, 3.0], "look_at": [0.15, 0.1, 0.05], "up": [0.25, 1.0, 0.1], "fov": 45.0}


def stripes():
    """Pixel weights 1 + (column odd) + 2 (row odd): an edge sample weighted by a neighbouring
    pixel's weight is off by one or two."""
    col = (torch.arange(CLIP_W) % 2).double()
    row = (torch.arange(CLIP_H) % 2).double()
    return 1.0 + col[None, :] + 2.0 * row[:, None]


def clipped_reference(position, look_at, up, fov, orthographic, weighted):
    """3 L x (the projected triangle's area inside the image), or with stripes() weights the
    same area plus its parts in odd columns plus twice its parts in odd rows."""
    p = project(CLIP_TRI.double(), position, look_at, up, fov, CLIP_H, CLIP_W, orthographic)
    area = area_in_rectangle(p, 0.0, CLIP_W, 0.0, CLIP_H)
    if weighted:
        for c in range(1, CLIP_W, 2):
            area = area + area_in_rectangle(p, float(c), c + 1.0, 0.0, CLIP_H)
        for r in range(1, CLIP_H, 2):
            area = area + 2 * area_in_rectangle(p, 0.0, CLIP_W, float(r), r + 1.0)
    return float(CLIP_L.sum()) * area


@pytest.mark.parametrize("camera_type", ["perspective", "orthographic"])
def test_camera_gradients_of_a_clipped_triangle(camera_type):
    """An emitting triangle the image frame clips, seen by a rolled camera (up not perpendicular to
    the view) looking off the origin. The image is exactly L times the coverage, so its sum is
    3 L x the projected area inside the frame: the reference differentiates that (Sutherland-
    Hodgman clipping in torch) w.r.t. position, look_at, up and fov. Clipping is what gives `up`
    a gradient at all: rolling the camera leaves an unclipped triangle's projected area unchanged.
    With the pixels weighted in stripes of odd columns and rows, each edge sample must also land
    in its own pixel. Every component within 0.5% (and 0.25% of the tensor's largest): 256 edge
    samples per pixel along straight edges of constant jump leave little noise.

    Catches: up_sign, look_at_up_blocks_swapped, camera_position_sign, fov_degrees_as_radians,
    primary_edge_weight_halved, primary_pixel_off_by_one."""
    ortho = camera_type == "orthographic"
    for weighted in (False, True):
        ref = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in CLIP_CAMERA.items()}
        clipped_reference(ref["position"], ref["look_at"], ref["up"], ref["fov"], ortho, weighted).backward()
        cam = {k: torch.tensor(v, requires_grad=True) for k, v in CLIP_CAMERA.items()}
        camera = rt.Camera(cam["position"], cam["look_at"], cam["up"], fov=cam["fov"],
                           resolution=(CLIP_H, CLIP_W), camera_type=camera_type)
        scene = rt.Scene(camera, [rt.Shape(CLIP_TRI, torch.tensor([[0, 1, 2]]), 0)], [rt.Material(torch.zeros(3))],
                         [rt.AreaLight(0, CLIP_L, two_sided=True)])
        w = stripes()[..., None].float() if weighted else 1.0
        (rt.render(scene, spp=4, max_bounces=0, seed=1, edge_spp=256) * w).sum().backward()
        for k in ("position", "look_at", "up", "fov"):
            expected = ref[k].grad
            got = cam[k].grad.double()
            scale = float(expected.abs().max())
            assert scale > 1.0, f"setup: {k} has a gradient"
            np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=0.005, atol=0.0025 * scale,
                                       err_msg=f"{camera_type} camera, {k}, weighted={weighted}")
        if not weighted:
            p = project(CLIP_TRI.double(), *(torch.tensor(CLIP_CAMERA[k], dtype=torch.float64)
                                             for k in ("position", "look_at", "up", "fov")),
                        CLIP_H, CLIP_W, ortho)
            inside = area_in_rectangle(p, 0.0, CLIP_W, 0.0, CLIP_H)
            assert float(inside) < 0.9 * float(polygon_area(list(p))), "setup: the frame clips the triangle"
            look, up = ref["look_at"].grad, ref["up"].grad
            assert float(up.norm()) > 0.03 * float(look.norm()), "setup: up has a sizeable gradient"
            assert float((look - up).norm()) > 0.5 * float(look.norm()), "setup: look_at and up differ"


# ---- Flat shading: a tilted quad under an environment map (interior only) ----------------------

def sky(h=16, w=32):
    """A smooth, uneven environment: brighter toward (0.6, 0.5, 0.3), reddish."""
    v = (torch.arange(h) + 0.5) / h
    u = (torch.arange(w) + 0.5) / w
    th, ph = v * math.pi, (u - 0.5) * 2 * math.pi
    d = torch.stack([torch.sin(th)[:, None] * torch.sin(ph)[None], torch.cos(th)[:, None].expand(h, w),
                     -torch.sin(th)[:, None] * torch.cos(ph)[None]], -1)
    lum = 0.2 + 2.0 * torch.clamp(d @ torch.tensor([0.6, 0.5, 0.3]), min=0) ** 2
    return lum[..., None] * torch.tensor([1.0, 0.8, 0.6])


FLOOR = torch.tensor([[-2.0, 0, -2], [2, 0, -2], [2, 0, 2], [-2, 0, 2]])
FLOOR_FACES = torch.tensor([[0, 2, 1], [0, 3, 2]])  # normal +y, diagonal 0-2


FLAT_KD = torch.tensor([0.7, 0.5, 0.3])
FLAT_CAMERA = {"position": [0.0, 2.0, 0.8], "look_at": [0.0, 0.0, 0.0], "up": UP, "fov": 40.0}


def flat_quad_scene(vertices):
    """A flat-shaded diffuse quad filling the view (no silhouette in it), lit by the sky only: with
    no light at a finite distance, moving its points changes nothing but their normal."""
    c = FLAT_CAMERA
    cam = rt.Camera(c["position"], c["look_at"], c["up"], fov=c["fov"], resolution=(16, 16))
    return rt.Scene(cam, [rt.Shape(vertices, FLOOR_FACES, 0)], [rt.Material(FLAT_KD)],
                    envmap=rt.EnvironmentMap(sky()))


def sphere_directions(n):
    """n directions spread evenly over the sphere (a Fibonacci lattice): a quadrature with equal
    weights 4 pi / n."""
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    r = np.sqrt(1 - z * z)
    phi = np.pi * (1 + 5 ** 0.5) * i
    return np.stack([r * np.cos(phi), z, r * np.sin(phi)], -1)


def flat_quad_reference(vertices):
    """The image sum of flat_quad_scene, differentiable w.r.t. the vertices: each face shows
    kd / pi x its irradiance E(n) = integral of the sky (as the renderer looks it up) times
    max(0, n . w) over the sphere, over the pixel area of its projection inside the frame."""
    dirs = sphere_directions(40000)
    le = torch.from_numpy(envmap_lookup(sky().numpy(), dirs))
    dirs = torch.from_numpy(dirs)
    cam = {k: torch.tensor(v, dtype=torch.float64) for k, v in FLAT_CAMERA.items()}
    total = torch.zeros((), dtype=torch.float64)
    for face in FLOOR_FACES:
        v = vertices[face]
        n = torch.linalg.cross(v[1] - v[0], v[2] - v[0])
        irradiance = (torch.clamp(dirs @ (n / n.norm()), min=0)[:, None] * le).sum(0) * (4 * math.pi / len(dirs))
        p = project(v, cam["position"], cam["look_at"], cam["up"], cam["fov"], 16, 16, False)
        total = total + (FLAT_KD.double() / math.pi * irradiance).sum() * area_in_rectangle(p, 0.0, 16.0, 0.0, 16.0)
    return total


def test_flat_shaded_quad_normal_gradient():
    """A flat-shaded quad under an environment map: the image changes with its vertices through
    the faces' normals only (the quad fills the view, the sky is infinitely far, and where a
    vertex leaves the plane the crease it makes has no jump yet). The interior gradient
    (boundary=False) of every vertex along every axis, and of rotations about two in-plane axes,
    must match the closed form (the sky integrated over each face's hemisphere, times the face's
    projected area): 3% of each, 1% of the largest.

    Catches: flat_normal_dropped, flat_normal_vertices_swapped."""
    alpha = rt.render(flat_quad_scene(FLOOR), spp=1, channels=("alpha",))
    assert float(alpha.min()) == 1.0, "setup: the quad fills the view"
    v = FLOOR.double().clone().requires_grad_(True)
    reference = flat_quad_reference(v)
    reference.backward()
    img = rt.render(flat_quad_scene(FLOOR), spp=256, max_bounces=1, seed=1)
    assert float(img.double().sum()) == pytest.approx(float(reference.detach()), rel=0.01), "setup: the closed form"
    g = gradient(flat_quad_scene, FLOOR, spp=2048, seed=5, max_bounces=1, boundary=False)
    expected = v.grad
    np.testing.assert_allclose(g.numpy(), expected.numpy(), rtol=0.03, atol=0.01 * float(expected.abs().max()))
    for axis in ([1.0, 0, 0], [0, 0, 1.0]):
        rotation = torch.linalg.cross(torch.tensor(axis).expand_as(FLOOR), FLOOR).double()
        assert abs(float((expected * rotation).sum())) > 20, "setup: the tilt changes the shading"
        assert float((g * rotation).sum()) == pytest.approx(float((expected * rotation).sum()), rel=0.02)


# ---- Light intensity ---------------------------------------------------------------------------

INTENSITY = torch.tensor([6.0, 4.0, 2.0])


def directly_seen_scene(intensity):
    cam = rt.Camera([0.2, 0.1, 3.0], [0.0, 0.0, 0.0], UP, fov=40.0, resolution=(16, 16))
    tri = torch.tensor([[-0.6, -0.5, 0.0], [0.7, -0.3, 0.2], [0.0, 0.6, -0.1]])
    return rt.Scene(cam, [rt.Shape(tri, torch.tensor([[0, 1, 2]]), 0)], [rt.Material(torch.zeros(3))],
                    [rt.AreaLight(0, intensity, two_sided=True)])


def lit_floor_scene(intensity):
    """A diffuse floor filling the view under a large light close above it (out of view): BSDF
    samples meet the light often, and their MIS weights carry much of the image."""
    cam = rt.Camera([0.0, 1.0, 1.5], [0.0, 0.0, 0.0], UP, fov=40.0, resolution=(16, 16))
    floor = torch.tensor([[-3.0, 0, -3], [3, 0, -3], [3, 0, 3], [-3, 0, 3]])
    light = torch.tensor([[-1.5, 0.6, -1.5], [1.5, 0.6, -1.5], [1.5, 0.6, -0.5], [-1.5, 0.6, -0.5]])
    quad = torch.tensor([[0, 2, 1], [0, 3, 2]])
    return rt.Scene(cam, [rt.Shape(floor, quad, 0), rt.Shape(light, quad[:, [0, 2, 1]], 1)],
                    [rt.Material(torch.tensor([0.6, 0.6, 0.6])), rt.Material(torch.zeros(3))],
                    [rt.AreaLight(1, intensity)])


def intensity_ratio(make, spp, backward_spp, max_bounces, seed, weights=1.0):
    """d sum(weights * image) / d I_c over sum_c(weights * image) / I_c: 1 in expectation (the
    image is linear in the one light's intensity)."""
    img = rt.render(make(INTENSITY), spp=spp, max_bounces=max_bounces, seed=seed)
    expected = (img.double() * weights).sum((0, 1)) / INTENSITY.double()
    g = gradient(make, INTENSITY, spp=backward_spp, seed=seed, max_bounces=max_bounces, weights=weights)
    return (g / expected).numpy()


@pytest.mark.parametrize("max_bounces", [0, 2])
def test_light_intensity_seen_directly(max_bounces):
    """An emitting triangle seen directly: the image is L times its coverage, so d sum / d L_c =
    sum_c / L_c, up to the coverage estimates of two streams (0.5%).

    Catches: emission_light_grad_dropped."""
    np.testing.assert_allclose(intensity_ratio(directly_seen_scene, 256, 64, max_bounces, seed=1), 1.0, rtol=0.005)


def test_light_intensity_with_mis():
    """A floor lit by a large light close above it (out of view), one bounce: next-event estimation
    and the BSDF samples that meet the light share the image by their MIS weights. The gradient
    must still be sum_c / I_c (1.5%): it loses a share with either part's term dropped and gains
    one with the BSDF part's MIS weight dropped.

    Catches: emission_light_grad_dropped, nee_light_grad_dropped, emission_mis_weight_dropped."""
    np.testing.assert_allclose(intensity_ratio(lit_floor_scene, 256, 256, 1, seed=2), 1.0, rtol=0.015)


# ---- Textures, uvs, barycentrics, the environment map ------------------------------------------

QUAD_UVS = torch.tensor([[0.1, 0.05], [0.9, 0.1], [0.95, 0.9], [0.05, 0.85]])


def ramp_texture(h=8, w=8):
    """Red grows along u (columns), green along v (rows), at different rates: d/du != d/dv."""
    u = (torch.arange(w) + 0.5) / w
    v = (torch.arange(h) + 0.5) / h
    tex = torch.empty(h, w, 3)
    tex[..., 0] = 0.1 + 0.8 * u[None, :]
    tex[..., 1] = 0.1 + 0.5 * v[:, None] ** 2
    tex[..., 2] = 0.3 + 0.2 * torch.sin(6.0 * u[None, :] + 3.0 * v[:, None])
    return tex


def textured_quad_scene(vertices=FLOOR, uvs=QUAD_UVS, texture=None):
    """A textured diffuse quad filling the view under a constant sky: every pixel is the
    texture at its uv times the sky (the quad sees the whole sky), so only the texture varies."""
    cam = rt.Camera([0.0, 2.0, 0.8], [0.0, 0.0, 0.0], UP, fov=40.0, resolution=(16, 16))
    tex = ramp_texture() if texture is None else texture
    return rt.Scene(cam, [rt.Shape(vertices, FLOOR_FACES, 0, uvs=uvs)], [rt.Material(tex)],
                    envmap=rt.EnvironmentMap(torch.ones(4, 8, 3)))


def test_uv_gradient():
    """uvs moved along a random field of u components, then of v components: the interior
    gradient w.r.t. uvs must match the finite differences (1%).

    Catches: uv_v_takes_u."""
    gen = torch.Generator().manual_seed(4)
    g = gradient(lambda uv: textured_quad_scene(uvs=uv), QUAD_UVS, spp=256, seed=5, max_bounces=1, boundary=False)
    for axis in (0, 1):
        d = torch.zeros_like(QUAD_UVS)
        d[:, axis] = torch.rand(4, generator=gen) + 0.5
        fd = directional(lambda uv: textured_quad_scene(uvs=uv), QUAD_UVS, d, h=0.005, spp=256, seed=3,
                         max_bounces=1)
        assert abs(fd) > 5, "setup: the texture varies along this axis"
        assert float((g * d).sum()) == pytest.approx(fd, rel=0.01), f"uv axis {axis}"


def test_texel_gradient():
    """The image is linear in the texels and their sampling does not depend on them, so the
    difference along a field of texels is exact. Fields of alternating signs (by rows, by
    columns) make the sum depend on each texel's own share of every lookup: the gradient must
    match (3%); a share sent to a neighbouring texel (which a uniform field would not see) or
    with the wrong sign fails.

    Catches: texel_gradient_wrong_tap, d_bsdf_kd_sign."""
    tex = ramp_texture()
    g = gradient(lambda t: textured_quad_scene(texture=t), tex, spp=512, seed=5, max_bounces=1, boundary=False)
    alternate = (torch.arange(8) % 2).float() * 2 - 1
    for name, d in (("rows", alternate[:, None, None].expand(tex.shape)),
                    ("columns", alternate[None, :, None].expand(tex.shape))):
        fd = directional(lambda t: textured_quad_scene(texture=t), tex, d, h=0.01, spp=512, seed=3, max_bounces=1)
        assert abs(fd) > 20, f"setup: {name}"
        assert float((g * d).sum()) == pytest.approx(fd, rel=0.03), name


def test_textured_quad_vertex_gradient():
    """A corner of the textured quad moved within its plane (the view holds no edge of it): the
    texture stretches across both triangles, through the hit points' barycentrics. The interior
    gradient must match the finite differences (1%).

    Catches: barycentrics_swapped."""
    g = gradient(lambda v: textured_quad_scene(vertices=v), FLOOR, spp=256, seed=5, max_bounces=1, boundary=False)
    for k, axis in ((0, 0), (1, 0), (2, 0), (2, 2)):
        d = torch.zeros_like(FLOOR)
        d[k, axis] = 1.0
        fd = directional(lambda v: textured_quad_scene(vertices=v), FLOOR, d, h=0.01, spp=256, seed=3, max_bounces=1)
        assert abs(fd) > 2, f"setup: vertex {k} along {axis} stretches the texture"
        assert float((g * d).sum()) == pytest.approx(fd, rel=0.01), f"vertex {k} axis {axis}"


def sky_scene(values, look_at=(0.3, 0.4, -1.0), up=UP):
    """Nothing but the environment in view (a small triangle behind the camera)."""
    cam = rt.Camera([0.0, 0.0, 0.0], look_at, up, fov=90.0, resolution=(16, 24))
    tri = torch.tensor([[0.0, 0.0, 5.0], [1.0, 0.0, 5.0], [0.0, 1.0, 5.0]])
    return rt.Scene(cam, [rt.Shape(tri, torch.tensor([[0, 1, 2]]), 0)], [rt.Material(torch.ones(3) * 0.5)],
                    envmap=rt.EnvironmentMap(values))


def test_envmap_gradient_seen_directly():
    """The environment seen directly is a bilinear lookup per camera ray, linear in the map's
    values: the difference along a random field, pixels weighted at random, is exact, and the
    gradient must match it (2%). The map is not square, so a texel index with rows and columns
    exchanged lands elsewhere.

    Catches: envmap_row_column_swapped."""
    gen = torch.Generator().manual_seed(8)
    values = 0.5 + torch.rand(8, 16, 3, generator=gen)
    w = torch.rand(16, 24, 1, generator=gen)
    d = torch.randn(values.shape, generator=gen)
    fd = directional(sky_scene, values, d, h=0.01, spp=16, seed=3, max_bounces=0, weights=w)
    g = gradient(sky_scene, values, spp=16, seed=4, max_bounces=0, weights=w)
    assert abs(fd) > 1, "setup"
    assert float((g * d).sum()) == pytest.approx(fd, rel=0.02)


def test_camera_turning_under_the_sky():
    """A rolled camera turning under the environment: no edge in view, so look_at and up change the
    image only through the camera rays' directions, the interior camera term (the edges' terms
    are the clipped triangle's above). Every component against same-seed differences (3% of
    each, 2% of the largest).

    Catches: sky_camera_direction_dropped."""
    gen = torch.Generator().manual_seed(9)
    values = 0.5 + torch.rand(8, 16, 3, generator=gen)
    w = torch.rand(16, 24, 1, generator=gen)
    look_at, up = torch.tensor([0.3, 0.4, -1.0]), torch.tensor([0.2, 1.0, 0.1])
    makes = {"look_at": (look_at, lambda t: sky_scene(values, look_at=t, up=up)),
             "up": (up, lambda t: sky_scene(values, look_at=look_at, up=t))}
    for name, (value, make) in makes.items():
        g = gradient(make, value, spp=64, seed=4, max_bounces=0, weights=w)
        fd = torch.tensor([directional(make, value, d, h=0.002, spp=64, seed=3, max_bounces=0, weights=w)
                           for d in torch.eye(3)], dtype=torch.float64)
        assert float(fd.abs().max()) > 5, f"setup: {name} turns the view"
        np.testing.assert_allclose(g.numpy(), fd.numpy(), rtol=0.03, atol=0.02 * float(fd.abs().max()),
                                   err_msg=name)


# ---- Secondary edges: single vertices of an occluder out of view -------------------------------

OCCLUDER = torch.tensor([[-0.3, 1.0, -0.3], [0.4, 1.1, -0.2], [0.0, 0.9, 0.4]])


def shadow_only_scene(occluder):
    """A black triangle between a small light and a floor; the camera looks at its shadow from low
    down, the triangle itself above the frame: it changes the image through the shadow's
    outline only (secondary edges)."""
    plane = torch.tensor([[-3.0, 0, -3], [3, 0, -3], [3, 0, 3], [-3, 0, 3]])
    light = torch.tensor([[-0.25, 2.0, -0.25], [0.25, 2.0, -0.25], [0.25, 2.0, 0.25], [-0.25, 2.0, 0.25]])
    cam = rt.Camera([0.0, 0.6, 2.2], [0.0, 0.0, 0.0], UP, fov=40.0, resolution=(16, 16))
    shapes = [rt.Shape(plane, torch.tensor([[0, 2, 1], [0, 3, 2]]), 0),
              rt.Shape(light, torch.tensor([[0, 1, 2], [0, 2, 3]]), 1),
              rt.Shape(occluder, torch.tensor([[0, 1, 2]]), 1)]
    mats = [rt.Material(torch.tensor([0.6, 0.6, 0.6])), rt.Material(torch.zeros(3), two_sided=True)]
    return rt.Scene(cam, shapes, mats, [rt.AreaLight(1, torch.tensor([20.0, 20.0, 20.0]))])


def test_shadow_gradient_of_single_occluder_vertices():
    """Each of the occluder's vertices moved alone, along its largest component: the secondary
    term splits each edge's gradient between its two endpoints, which a translation (the sum)
    never checks. Against finite differences (5%).

    Catches: secondary_endpoints_swapped, secondary_term_sign."""
    ids = rt.render(shadow_only_scene(OCCLUDER), spp=4, channels=("shape_id",))
    assert 2 not in ids.unique().tolist(), "setup: the occluder is out of view"
    g = gradient(shadow_only_scene, OCCLUDER, spp=256, seed=5, max_bounces=1, secondary_stride=1)
    for k, axis in ((0, 0), (1, 0), (2, 2)):
        d = torch.zeros_like(OCCLUDER)
        d[k, axis] = 1.0
        fd = directional(shadow_only_scene, OCCLUDER, d, h=0.03, spp=2048, seed=3, max_bounces=1)
        assert abs(fd) > 10, f"setup: vertex {k} moves the shadow"
        assert float(g[k, axis]) == pytest.approx(fd, rel=0.05), f"vertex {k} axis {axis}"


def test_secondary_stride_weight():
    """The shadow terms taken on one path in 16 (weighted by 16) against every path (stride 1),
    secondary terms only, along the three large components of the single-vertex test (signed so
    that they add): the means must agree to 2% (their noise is 0.35% over six seeds and 0.2% over
    two), so a weight of 15 or 17 (6%) fails.

    Catches: stride_weight_minus_one, stride_weight_minus_one_above_one, stride_weight_plus_one."""
    along = torch.zeros(3, 3, dtype=torch.float64)
    along[0, 0], along[1, 0], along[2, 2] = 1.0, -1.0, -1.0

    def mean(stride, seeds):
        return np.mean([float((gradient(shadow_only_scene, OCCLUDER, spp=256, seed=s, max_bounces=1,
                                        boundary="secondary", interior=False, secondary_stride=stride)
                               * along).sum()) for s in seeds])
    every = mean(1, (10, 11))
    assert every > 50, "setup: the shadow terms carry a gradient"
    assert mean(16, range(12, 18)) == pytest.approx(every, rel=0.02)


# ---- The shadow-terminator band ---------------------------------------------------------------

ICOSAHEDRON = rt.sphere(radius=0.8, subdivisions=0)


def terminator_scene(intensity=torch.tensor([100.0, 100.0, 100.0]), normals=ICOSAHEDRON.normals):
    """A smooth-shaded icosahedron (its interpolated normals up to 37 degrees from the faces') lit
    from the side: the terminator factor fades the shading over a wide band."""
    cam = rt.Camera([0.0, 0.3, 3.0], [0.0, 0.0, 0.0], UP, fov=40.0, resolution=(24, 24))
    light = torch.tensor([[3.0, -0.4, -0.4], [3.0, 0.4, -0.4], [3.0, 0.4, 0.4], [3.0, -0.4, 0.4]])
    shapes = [rt.Shape(ICOSAHEDRON.vertices, ICOSAHEDRON.indices, 0, normals=normals),
              rt.Shape(light, torch.tensor([[0, 2, 1], [0, 3, 2]]), 1)]
    return rt.Scene(cam, shapes, [rt.Material(torch.tensor([0.7, 0.6, 0.5])), rt.Material(torch.zeros(3))],
                    [rt.AreaLight(1, intensity)])


def test_terminator_band():
    """Next-event estimation on a smooth-shaded icosahedron lit from the side, where the
    shadow-terminator factor S (material.h, terminator()) is below 1 over much of the lit
    surface. The intensity gradient must be exactly the image over the intensity (1%), which
    fails if the adjoint leaves S out; the normals' gradient along a random field must match
    the finite differences (4%), which fails without S's own derivative.

    Catches: terminator_nee_adjoint_dropped, terminator_nee_d_terminator_dropped,
    smooth_normal_wrong_vertex."""
    intensity = torch.tensor([100.0, 100.0, 100.0])
    img = rt.render(terminator_scene(intensity), spp=256, max_bounces=1, seed=1)
    g = gradient(lambda i: terminator_scene(intensity=i), intensity, spp=256, seed=1, max_bounces=1)
    np.testing.assert_allclose((g * intensity.double() / img.double().sum((0, 1))).numpy(), 1.0, rtol=0.01)
    d = torch.randn(ICOSAHEDRON.normals.shape, generator=torch.Generator().manual_seed(3))
    fd = directional(lambda n: terminator_scene(normals=n), ICOSAHEDRON.normals, d, h=0.01, spp=1024, seed=5,
                     max_bounces=1)
    g = gradient(lambda n: terminator_scene(normals=n), ICOSAHEDRON.normals, spp=256, seed=7, max_bounces=1)
    assert abs(fd) > 5, "setup"
    assert float((g * d).sum()) == pytest.approx(fd, rel=0.04)
