"""Ordinary workflows that once gave silently wrong answers (issue 16): the reverse pass reading
a scene changed after the render, flags that were not booleans, material values out of range,
rays with tiny directions. Scene units: tests/test_robustness_scale.py."""
import numpy as np
import pytest
import torch

import raytrace as rt
from test_determinism import busy_scene
from test_robustness_scale import occluder_scene


def cameras(H=24, W=24):
    return [rt.Camera([0.0, 3.0, 3.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0], fov=45.0, resolution=(H, W)),
            rt.Camera([2.0, 2.0, 2.0], [0.0, 0.5, 0.0], [0.0, 1.0, 0.0], fov=40.0, resolution=(H, W)),
            rt.Camera([-2.5, 1.5, 1.0], [0.0, 0.3, 0.0], [0.0, 1.0, 0.0], fov=50.0, resolution=(H, W))]


# ---- The reverse pass uses the scene as the forward pass saw it -----------------------------

def multiview_grads(scene, tensors, views, joint, **kw):
    """Gradients of the summed images of all views, by one backward (joint) or one per view."""
    for t in tensors:
        t.grad = None
    per_view = []
    loss = 0
    for cam in views:
        scene.camera = cam
        img = rt.render(scene, **kw)
        if joint:
            loss = loss + (img * img).sum()
        else:
            (img * img).sum().backward()
            per_view.append([t.grad.clone() for t in tensors])
            for t in tensors:
                t.grad = None
    if joint:
        loss.backward()
        return [t.grad.clone() for t in tensors]
    return per_view


@pytest.mark.parametrize("name", ["occluder", "glossy"])
def test_multiview_backward_equals_the_per_view_backwards(name):
    """The usual multi-view loop assigns scene.camera before each render and calls backward once;
    each view's reverse pass must use its own camera (it used the last one assigned: 14-86% off)."""
    if name == "occluder":
        scene = occluder_scene(1.0, grad=True)
        scene.materials[0].diffuse_reflectance.requires_grad_(True)
        tensors = [scene.shapes[2].vertices, scene.materials[0].diffuse_reflectance]
        kw = dict(spp=16, max_bounces=2, seed=3)
    else:
        scene = busy_scene()
        for t in (scene.shapes[0].vertices, scene.materials[0].roughness, scene.area_lights[0].intensity):
            t.requires_grad_(True)
        tensors = [scene.shapes[0].vertices, scene.materials[0].roughness, scene.area_lights[0].intensity]
        kw = dict(spp=8, max_bounces=2, seed=3)
    views = cameras()
    joint = multiview_grads(scene, tensors, views[:2], joint=True, **kw)
    per_view = multiview_grads(scene, tensors, views[:2], joint=False, **kw)
    for j, a, b in zip(joint, *per_view):
        assert torch.equal(j, a + b), "two views: the sum is exact in floating point"
    # Three views: the same up to the order of the additions.
    joint = multiview_grads(scene, tensors, views, joint=True, **kw)
    per_view = multiview_grads(scene, tensors, views, joint=False, **kw)
    for k, j in enumerate(joint):
        total = per_view[0][k] + per_view[1][k] + per_view[2][k]
        torch.testing.assert_close(j, total, rtol=1e-5, atol=1e-6 * float(total.abs().max()))
    # And the views differ, so a pass reading the wrong camera would fail the checks above.
    assert not torch.allclose(per_view[0][0], per_view[1][0], rtol=0.1)


def test_reassigned_tensors_do_not_change_an_earlier_renders_gradient():
    """Assigning new tensors (a new camera, new vertices, a new material) between render and
    backward leaves that render's gradient as it was."""
    def grads(change):
        scene = occluder_scene(1.0, grad=True)
        v = scene.shapes[2].vertices
        img = rt.render(scene, spp=16, max_bounces=1, seed=2)
        change(scene)
        img.sum().backward()
        return v.grad

    ref = grads(lambda s: None)

    def move_everything(s):
        s.camera = cameras()[1]
        s.shapes[0].vertices = s.shapes[0].vertices + 0.3
        s.shapes[2].vertices = s.shapes[2].vertices.detach() * 0.5
        s.materials[0] = rt.Material(torch.tensor([0.1, 0.9, 0.2]))
        s.area_lights[0].intensity = torch.tensor([1.0, 2.0, 3.0])
        s.shapes.append(rt.Shape(torch.rand(3, 3), torch.tensor([[0, 1, 2]]), 0))
    assert torch.equal(grads(move_everything), ref)
    assert not torch.equal(grads(lambda s: None) * 2, ref)  # (the comparison can fail)


@pytest.mark.parametrize("what", ["requires_grad", "vertices", "indices", "material", "intensity", "camera", "envmap"])
def test_in_place_edits_after_render_raise(what):
    """A tensor the render read, edited in place before backward, raises autograd's usual error
    (the gradient would belong to the edited scene)."""
    scene = busy_scene()
    v = scene.shapes[0].vertices.requires_grad_(True)
    img = rt.render(scene, spp=2, max_bounces=1, seed=0)
    target = {"requires_grad": v, "vertices": scene.shapes[1].vertices, "indices": scene.shapes[0].indices,
              "material": scene.materials[1].diffuse_reflectance, "intensity": scene.area_lights[0].intensity,
              "camera": scene.camera.position, "envmap": scene.envmap.values}[what]
    with torch.no_grad():
        target.mul_(1)  # any in-place operation bumps the version, even one that changes nothing
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        img.sum().backward()


# ---- Flags --------------------------------------------------------------------------------

def flag_scene():
    scene = occluder_scene(1.0, grad=True, H=12, W=12)
    return scene, scene.shapes[2].vertices


@pytest.mark.parametrize("value", [1, 0, "all", "Primary", None, 1.0, [True], torch.tensor([True, False])])
def test_boundary_must_be_a_documented_value(value):
    """boundary=1 passed the check and switched every boundary term off."""
    scene, _ = flag_scene()
    with pytest.raises((TypeError, ValueError), match="boundary"):
        rt.render(scene, spp=1, boundary=value)
    with pytest.raises((TypeError, ValueError), match="boundary"):
        rt.gradient_image(scene, scene.shapes[2].vertices, spp=1, boundary=value)


@pytest.mark.parametrize("true, false", [(np.True_, np.False_), (torch.tensor(True), torch.tensor(False))])
def test_booleans_of_any_kind_are_booleans(true, false):
    def grad(**kw):
        scene, v = flag_scene()
        rt.render(scene, spp=4, seed=1, **kw).sum().backward()
        return v.grad
    assert torch.equal(grad(boundary=true, interior=true), grad(boundary=True, interior=True))
    assert torch.equal(grad(boundary=false, interior=true), grad(boundary=False, interior=True))
    assert torch.equal(grad(boundary=true, interior=false), grad(boundary=True, interior=False))
    assert not torch.equal(grad(boundary=True), grad(boundary=False))
    m = rt.Material(torch.ones(3), two_sided=true)
    assert m.two_sided is True
    assert rt.AreaLight(0, torch.ones(3), two_sided=false).two_sided is False


@pytest.mark.parametrize("make", [
    lambda: rt.render(flag_scene()[0], spp=1, interior=1),
    lambda: rt.gradient_image(*flag_scene(), spp=1, interior="yes"),
    lambda: rt.Material(torch.ones(3), two_sided=1),
    lambda: rt.AreaLight(0, torch.ones(3), two_sided="true"),
    lambda: rt.sphere(watertight=1),
    lambda: rt.box(watertight=None),
    lambda: rt.teapot(subdivisions=2, normalize=1),
])
def test_other_flags_must_be_booleans(make):
    with pytest.raises(TypeError, match="must be a bool"):
        make()


# ---- Material values ----------------------------------------------------------------------

def glossy_plane_scene(roughness, H=16, W=16):
    """A glossy plane under a small light, seen near the mirror direction."""
    plane = torch.tensor([[-1.0, 0, -1], [1, 0, -1], [1, 0, 1], [-1, 0, 1]])
    light = torch.tensor([[-0.2, 1.0, -0.2], [0.2, 1.0, -0.2], [0.2, 1.0, 0.2], [-0.2, 1.0, 0.2]])
    mats = [rt.Material(torch.tensor([0.2, 0.2, 0.2]), torch.tensor([0.8, 0.8, 0.8]), roughness),
            rt.Material(torch.zeros(3))]
    shapes = [rt.Shape(plane, torch.tensor([[0, 2, 1], [0, 3, 2]]), 0),
              rt.Shape(light, torch.tensor([[0, 1, 2], [0, 2, 3]]), 1)]  # facing down
    cam = rt.Camera([0.0, 1.0, 1.5], [0.0, 0.0, -0.2], [0.0, 1.0, 0.0], fov=60.0, resolution=(H, W))
    return rt.Scene(cam, shapes, mats, [rt.AreaLight(1, torch.tensor([10.0, 10.0, 10.0]))])


def test_huge_roughness_is_clamped_not_nan():
    """roughness=1e20 (allowed: > 0) made NaN pixels; it is clamped to 100 (docs/limits.md)."""
    img = rt.render(glossy_plane_scene(1e20), spp=8, seed=1)
    assert torch.isfinite(img).all()
    assert torch.equal(img, rt.render(glossy_plane_scene(100.0), spp=8, seed=1))
    # One huge texel in a roughness texture.
    tex = torch.full((4, 4, 1), 0.3)
    tex[1, 2] = 3e38
    img = rt.render(glossy_plane_scene(tex), spp=8, seed=1)
    assert torch.isfinite(img).all()


@pytest.mark.parametrize("roughness, clamped", [(1e-4, True), (0.3, False), (150.0, True)])
def test_roughness_gradient_is_zero_exactly_where_it_is_clamped(roughness, clamped):
    r = torch.tensor([roughness], requires_grad=True)
    scene = glossy_plane_scene(r)
    rt.render(scene, spp=8, seed=1).sum().backward()
    assert torch.isfinite(r.grad).all()
    if clamped:
        assert float(r.grad) == 0.0
    else:
        assert abs(float(r.grad)) > 1.0, "setup: the glossy highlight depends on the roughness"


@pytest.mark.parametrize("edit, match", [
    (lambda s: s.materials[0].diffuse_reflectance.sub_(1.0), r"materials\[0\].diffuse_reflectance must be non-negative"),
    (lambda s: s.materials[0].specular_reflectance.fill_(-0.1), r"specular_reflectance must be non-negative"),
    (lambda s: s.materials[0].roughness.fill_(0.0), r"roughness must be positive"),
    (lambda s: s.materials[0].roughness.fill_(float("nan")), r"roughness contains NaN"),
    (lambda s: s.area_lights[0].intensity.fill_(-1.0), r"area_lights\[0\].intensity must be non-negative"),
    (lambda s: s.shapes[0].vertices.__setitem__((0, 0), float("inf")), r"shapes\[0\].vertices contains NaN or Inf"),
    (lambda s: s.shapes[0].indices.__setitem__((0, 0), 9), r"shapes\[0\].indices must have values in \[0, 4\)"),
    (lambda s: s.shapes[0].indices.__setitem__((0, 0), -1), r"shapes\[0\].indices must have values in"),
    (lambda s: s.camera.position.fill_(float("nan")), r"camera.position contains NaN"),
    (lambda s: setattr(s.shapes[0], "vertices", torch.zeros(4, 2)), r"shapes\[0\].vertices must have shape"),
    (lambda s: setattr(s.camera, "position", torch.zeros(2)), r"camera.position must have shape \[3\]"),
    (lambda s: setattr(s.materials[0], "diffuse_reflectance", torch.ones(4, 4, 1)),
     r"diffuse_reflectance must have shape \[3\] \(a constant\) or \[h, w, 3\]"),
    (lambda s: setattr(s.materials[0], "roughness", torch.ones(3)), r"roughness must have shape \[1\]"),
])
def test_values_written_after_construction_are_checked_at_render(edit, match):
    """Tensors are mutable: an optimiser step or an in-place edit can leave the range the
    constructors checked. Negative reflectances were rendered."""
    scene = glossy_plane_scene(0.3)
    with torch.no_grad():
        edit(scene)
    with pytest.raises(ValueError, match=match):
        rt.render(scene, spp=1)


def test_overflowing_radiance_is_an_error_not_inf():
    scene = glossy_plane_scene(0.3)
    scene.area_lights[0].intensity = torch.full((3,), 3e38)
    with pytest.raises(FloatingPointError, match="too large for float32"):
        rt.render(scene, spp=4, seed=1)


# ---- Rays ---------------------------------------------------------------------------------

@pytest.mark.parametrize("length", [1e-30, 1e-20, 1.0, 1e20, 1e30])
def test_intersect_accepts_any_direction_length(length):
    """A direction of length 1e-30 was reported as a miss past distance 1 (t > 1e30, the core's
    "no hit" distance): the core traces the unit direction and converts t."""
    scene = glossy_plane_scene(0.3)
    o = torch.tensor([[0.5, 2.0, 0.5], [0.0, 0.5, 0.0], [0.0, 0.5, 0.0]])
    d = torch.tensor([[0.0, -1.0, 0.0], [0.0, 1.0, 0.0], [0.6, -0.8, 0.0]]) * length
    hits = scene.intersect(o, d)
    assert hits["shape_id"].tolist() == [0, 1, 0]
    np.testing.assert_allclose((hits["t"].double() * length).numpy(), [2.0, 0.5, 0.625], rtol=1e-6)


@pytest.mark.parametrize("length", [1e-31, 1e31])
def test_intersect_rejects_directions_past_float_range(length):
    scene = glossy_plane_scene(0.3)
    with pytest.raises(ValueError, match=r"directions must have lengths in \[1e-30, 1e30\]"):
        scene.intersect(torch.zeros(1, 3), torch.tensor([[0.0, -1.0, 0.0]]) * length)


@pytest.mark.parametrize("call", [
    lambda tmp: rt.imwrite(torch.zeros(2, 2, 3), tmp / "a.png", srgb=1),
    lambda tmp: rt.imread(tmp / "a.png", srgb="no"),
    lambda tmp: rt.load_scene(tmp / "a.json", allow_any_path=1),
    lambda tmp: rt.load_mitsuba(tmp / "a.xml", warn=0),
    lambda tmp: rt.load_mitsuba(tmp / "a.xml", return_report=1),
])
def test_loader_flags_must_be_booleans(call, tmp_path):
    rt.imwrite(torch.zeros(2, 2, 3), tmp_path / "a.png")
    (tmp_path / "a.xml").write_text('<scene version="3.0.0"/>')
    with pytest.raises(TypeError, match="must be a bool"):
        call(tmp_path)


@pytest.mark.parametrize("value", ["abc", "-3", "0", "257", "1.5"])
def test_rt_num_threads_outside_its_range_is_an_error(value, monkeypatch):
    """RT_NUM_THREADS=abc fell back silently to all cores."""
    monkeypatch.setenv("RT_NUM_THREADS", value)
    with pytest.raises(ValueError, match="RT_NUM_THREADS must be an integer from 1 to 256"):
        rt.render(occluder_scene(1.0, H=4, W=4), spp=1)
    monkeypatch.setenv("RT_NUM_THREADS", "2")
    rt.render(occluder_scene(1.0, H=4, W=4), spp=1)


def test_calls_on_one_scene_from_several_threads_take_turns():
    """The core runs without the GIL (so that Ctrl-C works); calls on one Scene from several
    Python threads must not change its compiled state under each other: each gives what it gives
    alone (renders with different cameras, a backward, an intersect)."""
    import threading
    scene = busy_scene()
    views = cameras(16, 16)
    expected = []
    for cam in views:
        scene.camera = cam
        expected.append(rt.render(scene, spp=4, max_bounces=2, seed=1))
    o, d = torch.zeros(64, 3), torch.tensor([[0.0, -1.0, 0.0]]).repeat(64, 1)
    o[:, 1] = 1.0
    o[:, 0] = torch.linspace(-1, 1, 64)
    hits = scene.intersect(o, d)
    results, errors = {}, []

    def render(k):
        try:
            for _ in range(3):
                s = rt.Scene(views[k], scene.shapes, scene.materials, scene.area_lights, scene.envmap)
                s._core, s._lock = scene._core, scene._lock  # one compiled scene shared, as one Scene's
                s._topology, s._cache = scene._topology, scene._cache
                results.setdefault(k, []).append(rt.render(s, spp=4, max_bounces=2, seed=1))
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    def intersect():
        try:
            for _ in range(5):
                results.setdefault("hits", []).append(scene.intersect(o, d))
        except Exception as e:  # noqa: BLE001
            errors.append(e)
    threads = [threading.Thread(target=render, args=(k,)) for k in range(3)] + [threading.Thread(target=intersect)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k in range(3):
        for img in results[k]:
            assert torch.equal(img, expected[k])
    for h in results["hits"]:
        assert torch.equal(h["t"], hits["t"])
