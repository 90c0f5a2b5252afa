"""rt.render_batch: several views in one call, each exactly as rt.render renders it."""
import pytest
import torch

import raytrace as rt

RES = (12, 16)


def _scene(seed=1):
    s = rt.sphere(radius=0.8, subdivisions=1)
    floor = rt.plane(size=(6.0, 6.0), center=(0.0, -0.8, 0.0))
    light = rt.plane(size=(1.0, 1.0), center=(0.3, 2.5, 0.2), normal="-y")
    g = torch.Generator().manual_seed(seed)
    materials = [rt.Material(torch.rand(3, generator=g) * 0.8), rt.Material([0.5, 0.45, 0.4]),
                 rt.Material([0.0, 0.0, 0.0])]
    shapes = [rt.Shape(s.vertices, s.indices, 0, normals=s.normals), rt.Shape(floor.vertices, floor.indices, 1),
              rt.Shape(light.vertices, light.indices, 2)]
    return rt.Scene(_camera(0), shapes, materials, [rt.AreaLight(2, [8.0, 8.0, 8.0])])


def _camera(k, res=RES):
    return rt.Camera([0.3 + 0.7 * k, 1.0, 3.5 - 0.3 * k], [0.0, -0.1, 0.0], [0.0, 1.0, 0.0], 45.0 - 3 * k, res)


def test_views_of_one_scene_are_its_renders_with_each_camera():
    scene = _scene()
    cameras = [_camera(k) for k in range(3)]
    batch = rt.render_batch(scene, cameras=cameras, spp=4, max_bounces=2, seed=7, channels=("radiance", "alpha"))
    assert batch.shape == (3, *RES, 4)
    assert scene._stats["bvh_builds"] == 1 and scene._stats["bvh_refits"] == 0  # one BVH for the batch
    for k, c in enumerate(cameras):
        scene.camera = c
        one = rt.render(scene, spp=4, max_bounces=2, seed=rt.view_seed(7, k), channels=("radiance", "alpha"))
        assert torch.equal(batch[k], one)


def test_a_list_of_scenes():
    scenes = [_scene(1), _scene(2)]
    batch = rt.render_batch(scenes, spp=2, seed=3)
    for k, s in enumerate(scenes):
        assert torch.equal(batch[k], rt.render(s, spp=2, seed=rt.view_seed(3, k)))


def test_gradients_are_the_sum_of_the_views_gradients():
    """One backward through the batch gives each tensor the sum of its views' gradients, and each
    camera its own view's."""
    def run(batched):
        scene = _scene()
        cameras = [_camera(k) for k in range(2)]
        for c in cameras:
            c.position.requires_grad_(True)
        verts = scene.shapes[0].vertices.requires_grad_(True)
        weights = torch.linspace(0.2, 1.0, 3)
        if batched:
            (rt.render_batch(scene, cameras=cameras, spp=2, seed=5) * weights).sum().backward()
        else:
            for k, c in enumerate(cameras):
                scene.camera = c
                (rt.render(scene, spp=2, seed=rt.view_seed(5, k)) * weights).sum().backward()
        return verts.grad, [c.position.grad for c in cameras]
    (v_batch, c_batch), (v_one, c_one) = run(True), run(False)
    assert float(v_batch.abs().sum()) > 0
    torch.testing.assert_close(v_batch, v_one, rtol=1e-6, atol=1e-7)
    for a, b in zip(c_batch, c_one):
        assert torch.equal(a, b)


def test_view_seed():
    assert rt.view_seed(11, 0) == 11
    seeds = {rt.view_seed(11, b) for b in range(1000)}
    assert len(seeds) == 1000 and all(0 <= x < 2 ** 63 for x in seeds)
    assert rt.view_seed(11, 1) != rt.view_seed(12, 1)
    with pytest.raises(ValueError, match="view"):
        rt.view_seed(1, -1)


def test_bad_batches_are_named():
    scene = _scene()
    with pytest.raises(ValueError, match="cameras=\\[...\\]"):
        rt.render_batch(scene)
    with pytest.raises(TypeError, match="cameras must be a non-empty list"):
        rt.render_batch(scene, cameras=[])
    with pytest.raises(TypeError, match=r"cameras\[1\] must be a raytrace.Camera"):
        rt.render_batch(scene, cameras=[_camera(0), "front"])
    with pytest.raises(ValueError, match="same resolution"):
        rt.render_batch(scene, cameras=[_camera(0), _camera(1, (8, 8))])
    with pytest.raises(ValueError, match="goes with one scene"):
        rt.render_batch([scene], cameras=[_camera(0)])
    with pytest.raises(TypeError, match=r"scenes\[1\] must be a raytrace.Scene"):
        rt.render_batch([scene, None])
    bad = _camera(1)
    with torch.no_grad():
        bad.position[0] = float("nan")
    with pytest.raises(ValueError, match="Scene.camera.position contains NaN"):
        rt.render_batch(scene, cameras=[_camera(0), bad])

