"""Tutorial 1: fit a triangle's vertices to a target image.

A glowing triangle floats in front of the camera on a black background. We render a target
with the true vertices, move the vertices away, and let gradient descent pull them back by
comparing images. The image of an emitting triangle does not change inside the triangle
when a vertex moves: the whole gradient comes from the triangle's edges, which the renderer
samples explicitly (Li et al. 2018). Without edge sampling this fit would not move at all.

The triangle stays in the plane z = 0 (its depth along the view axis is not visible in the
image of a flat, uniformly glowing shape), so we optimise the x and y of its three corners.

    python tutorials/01_single_triangle.py            # full run
    python tutorials/01_single_triangle.py --quick    # a few seconds
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, Optional, Sequence

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from _common import rt  # noqa: E402

NAME = "01_single_triangle"
TARGET_XY = torch.tensor([[-0.6, -0.5], [0.7, -0.35], [0.05, 0.65]])
START_XY = torch.tensor([[-0.35, -0.2], [0.45, -0.55], [-0.2, 0.4]])


def make_scene(xy: torch.Tensor, resolution) -> rt.Scene:
    """The triangle with corners (x, y, 0) from xy [3, 2], an emitting two-sided shape."""
    vertices = torch.cat([xy, torch.zeros(3, 1)], dim=1)
    camera = rt.Camera(position=[0.0, 0.0, 3.0], look_at=[0.0, 0.0, 0.0], up=[0.0, 1.0, 0.0], fov=45.0,
                       resolution=resolution)
    shape = rt.Shape(vertices, torch.tensor([[0, 1, 2]]), material_id=0)
    light = rt.AreaLight(shape_id=0, intensity=[0.9, 0.6, 0.2], two_sided=True)
    return rt.Scene(camera, [shape], [rt.Material(diffuse_reflectance=[0.0, 0.0, 0.0])], [light])


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Runs the tutorial; returns the result dict also written to result.json.

    Result keys: "vertex_error" (mean distance of the corners to their target, scene units),
    "initial_vertex_error", plus the bookkeeping of ``RunLog.finish``.
    """
    args = _common.parse_args(argv, __doc__, NAME, full_iterations=150, quick_iterations=40)
    res = (32, 32) if args.quick else (128, 128)
    spp = 2 if args.quick else 4
    torch.manual_seed(args.seed)

    # The target image.
    target = rt.render(make_scene(TARGET_XY, res), spp=32, max_bounces=0, seed=args.seed + 10_000,
                       threads=args.threads)

    def error(xy: torch.Tensor) -> float:
        return float((xy.detach() - TARGET_XY).norm(dim=1).mean())

    xy = START_XY.clone().requires_grad_(True)
    initial = rt.render(make_scene(xy.detach(), res), spp=spp, max_bounces=0, seed=args.seed, threads=args.threads)
    lr = 0.03
    opt = torch.optim.Adam([xy], lr=lr)
    log = _common.RunLog(args)
    log.set_target(target)
    initial_error = error(xy)
    for it in log.progress(args.iterations):
        for g in opt.param_groups:
            g["lr"] = lr * _common.lr_schedule(it, args.iterations, 0.1)
        opt.zero_grad()
        # A new seed every step: the noise of successive gradients averages out.
        img = rt.render(make_scene(xy, res), spp=spp, max_bounces=0, seed=args.seed + it, threads=args.threads)
        loss = ((img - target) ** 2).mean()
        log.record(loss, {"vertex_error": error(xy)}, img)
        loss.backward()
        opt.step()

    final = rt.render(make_scene(xy.detach(), res), spp=32, max_bounces=0, seed=args.seed + 20_000,
                      threads=args.threads)
    return log.finish(target, initial, final, {
        "vertex_error": error(xy),
        "initial_vertex_error": initial_error,
        "vertices_xy": xy.detach().tolist(),
        "target_vertices_xy": TARGET_XY.tolist(),
    })


if __name__ == "__main__":
    r = main()
    print(f"vertex error {r['initial_vertex_error']:.4f} -> {r['vertex_error']:.4f} "
          f"in {r['iterations']} iterations, {r['wall_time_s']:.1f} s; pictures in {r['out']}")
