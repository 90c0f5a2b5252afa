"""Tutorial 2: recover the 6-DoF pose of the Utah teapot from one image.

The teapot floats in the dark, lit by three coloured area lights, so its shading tells
which way each part of it faces and its silhouette stands out against the black
background. (A floor adds a shadow, ``TeapotScene(with_floor=True)``, but also render noise
in every pixel of the loss: without it the fit is quieter.) We know its shape but not its pose: the start is rotated by 20
degrees (about a random axis) and shifted by 10% of its size (in a random direction) from
the pose of the target image.

The pose is six numbers in torch: a rotation vector (axis times angle, turned into a matrix
by Rodrigues' formula) and a translation. Every iteration we move the mesh's vertices and
normals with them, render, compare with the target, and back-propagate: ``rt.render`` gives
the gradient of the image with respect to the vertices and normals (with the silhouette
edges sampled explicitly), and torch carries it on to the six pose numbers.

The run goes from coarse to fine: it starts on 64 x 64 images, whose large pixels smooth
the loss so the first steps head for the right basin, and ends on 128 x 128 images. The loss
compares the images at several scales too (a pyramid of 2x2 averages). Adam's step shrinks
over the run, and the pose reported is the average of the last 30% of the iterates, so the
render noise in the gradients averages out. Monte Carlo gradients have rare large outliers,
which Adam would follow for many steps: each gradient element is clipped to three times
its running RMS first.

    python tutorials/02_pose_estimation.py            # full run: < 1 degree, < 1% of the size
    python tutorials/02_pose_estimation.py --quick    # a few seconds
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from _common import rt  # noqa: E402

NAME = "02_pose_estimation"
SIZE = 2.0                # the teapot's size: the diameter of its bounding sphere (normalised mesh)
START_ANGLE_DEG = 20.0    # how far the start is rotated from the target
START_OFFSET = 0.1        # how far the start is shifted, as a fraction of SIZE
TARGET_ROTVEC = torch.tensor([0.0, math.radians(-35.0), 0.0])  # the target pose
TARGET_T = torch.tensor([0.05, 0.0, -0.1])


class TeapotScene:
    """The teapot (optionally over a floor) under three coloured lights; ``scene(R, t, size)`` poses it."""

    def __init__(self, subdivisions: int, with_floor: bool = False):
        mesh = rt.teapot(subdivisions=subdivisions, normalize=True)
        self.vertices, self.indices, self.normals = mesh.vertices, mesh.indices, mesh.normals
        self.camera = dict(position=[0.0, 1.5, 3.6], look_at=[0.0, -0.2, 0.0], up=[0.0, 1.0, 0.0], fov=40.0)
        floor = rt.plane(size=(10.0, 10.0), center=(0.0, -1.1, 0.0))
        # Three lights above and around the teapot (out of view): warm key, cool fill, green rim.
        lights = [(rt.plane(size=(2.0, 2.0), center=(2.5, 2.5, 2.0), normal="-y"), [16.0, 9.0, 4.0]),
                  (rt.plane(size=(2.0, 2.0), center=(-2.5, 1.0, 1.0), normal="+x"), [2.0, 4.0, 14.0]),
                  (rt.plane(size=(2.5, 2.5), center=(0.5, 3.0, -2.5), normal="-y"), [2.0, 10.0, 3.0])]
        self.static = [rt.Shape(floor.vertices, floor.indices, 1)] if with_floor else []
        self.static += [rt.Shape(m.vertices, m.indices, 2) for m, _ in lights]
        self.first_light = len(self.static) - len(lights) + 1
        self.intensities = [i for _, i in lights]
        self.materials = [rt.Material(diffuse_reflectance=[0.8, 0.8, 0.8]),
                          rt.Material(diffuse_reflectance=[0.35, 0.35, 0.35]),
                          rt.Material(diffuse_reflectance=[0.0, 0.0, 0.0])]

    def scene(self, rotation: torch.Tensor, translation: torch.Tensor, size: int) -> rt.Scene:
        """The scene with the teapot rotated by rotation [3, 3] about its centre and moved by
        translation [3], seen in a size x size image."""
        vertices = self.vertices @ rotation.T + translation
        normals = self.normals @ rotation.T
        teapot = rt.Shape(vertices, self.indices, 0, normals=normals)
        lights = [rt.AreaLight(self.first_light + k, i) for k, i in enumerate(self.intensities)]
        camera = rt.Camera(**self.camera, resolution=(size, size))
        return rt.Scene(camera, [teapot] + self.static, self.materials, lights)


def pyramid_loss(img: torch.Tensor, target: torch.Tensor, levels: int) -> torch.Tensor:
    """Sum over `levels` scales (2x2 averages) of the mean squared error; img, target [H, W, 3]."""
    a, b = img.permute(2, 0, 1)[None], target.permute(2, 0, 1)[None]
    loss = torch.zeros(())
    for level in range(levels):
        loss = loss + ((a - b) ** 2).mean()
        if min(a.shape[-2:]) < 4:
            break
        a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
    return loss


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Runs the tutorial; returns the result dict also written to result.json.

    Result keys: "rotation_error_deg" (angle of the rotation between the found and the true
    orientation), "translation_error" (distance, scene units), "translation_error_percent"
    (of the teapot's size, its bounding-sphere diameter 2), their "initial_..." values, and
    the bookkeeping of ``RunLog.finish``.
    """
    args = _common.parse_args(argv, __doc__, NAME, full_iterations=300, quick_iterations=80)
    # Coarse to fine: (fraction of the run, image size, samples per pixel). Small images
    # average the picture over large pixels, which smooths the loss so the first steps
    # head for the right basin; the full size settles the last fraction of a pixel.
    if args.quick:
        subdivisions, stages = 3, [(0.0, 96, 8)]
    else:
        subdivisions, stages = 6, [(0.0, 64, 16), (0.2, 128, 16)]
    size = stages[-1][1]
    # The target is rendered with many samples: its noise would shift the optimum, most of
    # all along combinations of rotation and translation that change the image little.
    target_spp = 256 if args.quick else 1024
    gen = torch.Generator().manual_seed(args.seed)
    setup = TeapotScene(subdivisions)
    r_target = _common.axis_angle_matrix(TARGET_ROTVEC)
    render = dict(max_bounces=1, threads=args.threads)

    # The target images (one per stage's size), with many samples.
    with torch.no_grad():
        targets = {n: rt.render(setup.scene(r_target, TARGET_T, n), spp=target_spp, seed=args.seed + 10_000, **render)
                   for _, n, _ in stages}
    target = targets[size]

    # The start: 20 degrees about a random axis, 10% of the size in a random direction.
    axis = torch.randn(3, generator=gen)
    offset = torch.randn(3, generator=gen)
    # (--quick starts half as far: a few dozen steps on small images do not cover 20 degrees.)
    shrink = 0.5 if args.quick else 1.0
    r_start = _common.axis_angle_matrix(axis / axis.norm() * math.radians(START_ANGLE_DEG * shrink)) @ r_target
    t_start = TARGET_T + offset / offset.norm() * START_OFFSET * SIZE * shrink

    # The unknowns: a rotation vector applied on top of the start, and the translation.
    rotvec = torch.zeros(3, requires_grad=True)
    translation = t_start.clone().requires_grad_(True)

    def errors() -> Dict[str, float]:
        r = _common.axis_angle_matrix(rotvec.detach()) @ r_start
        t_err = float((translation.detach() - TARGET_T).norm())
        return {"rotation_error_deg": _common.rotation_angle_deg(r, r_target),
                "translation_error_percent": 100.0 * t_err / SIZE}

    with torch.no_grad():
        initial = rt.render(setup.scene(r_start, t_start, size), spp=64, seed=args.seed + 20_000, **render)
    lr_rot, lr_t = (0.02, 0.02) if args.quick else (0.03, 0.03)
    opt = torch.optim.Adam([{"params": [rotvec], "lr": lr_rot}, {"params": [translation], "lr": lr_t}],
                           betas=(0.9, 0.99))
    clipper = _common.SpikeClipper([rotvec, translation])
    log = _common.RunLog(args)
    log.set_target(target)
    initial_errors = errors()
    average_from = int((0.9 if args.quick else 0.7) * args.iterations)
    rot_avg, t_avg = torch.zeros(3), torch.zeros(3)
    for it in log.progress(args.iterations):
        frac = it / max(1, args.iterations - 1)
        n, spp = [(n, spp) for start, n, spp in stages if frac >= start][-1]
        scale = _common.lr_schedule(it, args.iterations, *((0.1, 0.3) if args.quick else (0.01, 0.2)))
        opt.param_groups[0]["lr"], opt.param_groups[1]["lr"] = lr_rot * scale, lr_t * scale
        opt.zero_grad()
        rotation = _common.axis_angle_matrix(rotvec) @ r_start
        img = rt.render(setup.scene(rotation, translation, n), spp=spp, seed=args.seed + it, **render)
        loss = pyramid_loss(img, targets[n], levels=4)
        log.record(loss, errors(), img.detach().repeat_interleave(size // n, 0).repeat_interleave(size // n, 1))
        loss.backward()
        clipper.clip()
        opt.step()
        if it >= average_from:  # Polyak averaging of the last iterates: their noise averages out
            k = it - average_from
            rot_avg.mul_(k / (k + 1)).add_(rotvec.detach() / (k + 1))
            t_avg.mul_(k / (k + 1)).add_(translation.detach() / (k + 1))

    with torch.no_grad():
        rotvec.copy_(rot_avg)
        translation.copy_(t_avg)
        r_final = _common.axis_angle_matrix(rotvec) @ r_start
        final = rt.render(setup.scene(r_final, translation, size), spp=64, seed=args.seed + 30_000, **render)
    e = errors()
    return log.finish(target, initial, final, {
        "rotation_error_deg": e["rotation_error_deg"],
        "translation_error": e["translation_error_percent"] * SIZE / 100.0,
        "translation_error_percent": e["translation_error_percent"],
        "initial_rotation_error_deg": initial_errors["rotation_error_deg"],
        "initial_translation_error_percent": initial_errors["translation_error_percent"],
        "translation_error_xyz": (translation.detach() - TARGET_T).tolist(),
        "resolution": [size, size],
        "teapot_triangles": int(setup.indices.shape[0]),
    })


if __name__ == "__main__":
    r = main()
    print(f"rotation error {r['initial_rotation_error_deg']:.2f} -> {r['rotation_error_deg']:.3f} degrees, "
          f"translation error {r['initial_translation_error_percent']:.2f}% -> "
          f"{r['translation_error_percent']:.3f}% of the size, in {r['iterations']} iterations, "
          f"{r['wall_time_s']:.1f} s; pictures in {r['out']}")
