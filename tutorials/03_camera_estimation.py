"""Tutorial 3: recover where a photo was taken from: the camera's position and look-at point.

A small still life (a box, a ball and a checkered floor under one area light) is
photographed from an unknown viewpoint. Starting from a wrong guess, we move the camera
until our render matches the photo. ``rt.render`` differentiates the image with respect to
``Camera.position`` and ``Camera.look_at`` directly (through the projection of the shading and
of every silhouette edge), and torch carries those gradients on to our unknowns.

The position is optimised in spherical coordinates around the look-at point (azimuth,
elevation, log distance): orbiting the scene and stepping closer then are separate unknowns,
which the image tells apart far better than the raw x, y, z of the eye.

One direction is invisible: sliding the look-at point along the view ray turns nothing. So
the look-at error reported is the distance from the true look-at point to the estimated
camera's view ray, and the direction error is the angle between the two view directions.

    python tutorials/03_camera_estimation.py            # full run
    python tutorials/03_camera_estimation.py --quick    # a few seconds
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from _common import rt  # noqa: E402

NAME = "03_camera_estimation"
TARGET_POSITION = torch.tensor([2.2, 2.0, 4.2])
TARGET_LOOK_AT = torch.tensor([0.0, 0.4, 0.0])
START_POSITION = torch.tensor([2.9, 1.4, 3.8])
START_LOOK_AT = torch.tensor([0.3, 0.7, -0.2])


def checker(n: int, c0, c1) -> torch.Tensor:
    """An n x n checkerboard texture [n, n, 3] of colours c0 and c1."""
    ij = torch.arange(n)
    mask = ((ij[:, None] + ij[None, :]) % 2 == 0).float()[..., None]
    return mask * torch.tensor(c0) + (1 - mask) * torch.tensor(c1)


class StillLife:
    """The scene; ``scene(position, look_at)`` photographs it from there."""

    def __init__(self, resolution):
        self.resolution = resolution
        floor = rt.plane(size=(6.0, 6.0))
        block = rt.box(size=(0.9, 0.9, 0.9), center=(-0.7, 0.45, -0.3), watertight=False)
        ball = rt.sphere(radius=0.5, center=(0.7, 0.5, 0.4), subdivisions=3)
        light = rt.plane(size=(2.0, 2.0), center=(1.0, 4.0, 1.0), normal="-y")
        self.shapes = [rt.Shape(floor.vertices, floor.indices, 0, uvs=floor.uvs),
                       rt.Shape(block.vertices, block.indices, 1, normals=block.normals),
                       rt.Shape(ball.vertices, ball.indices, 2, normals=ball.normals),
                       rt.Shape(light.vertices, light.indices, 3)]
        self.materials = [rt.Material(checker(12, [0.75, 0.75, 0.7], [0.15, 0.2, 0.35])),
                          rt.Material([0.8, 0.25, 0.1]),
                          rt.Material([0.2, 0.7, 0.3], specular_reflectance=[0.04, 0.04, 0.04], roughness=0.3),
                          rt.Material([0.0, 0.0, 0.0])]
        self.lights = [rt.AreaLight(3, [12.0, 12.0, 12.0])]

    def scene(self, position: torch.Tensor, look_at: torch.Tensor) -> rt.Scene:
        camera = rt.Camera(position, look_at, [0.0, 1.0, 0.0], fov=45.0, resolution=self.resolution)
        return rt.Scene(camera, self.shapes, self.materials, self.lights)


def camera_errors(position: torch.Tensor, look_at: torch.Tensor) -> Dict[str, float]:
    """Position error (distance), look-at error (distance of the true look-at point to the
    estimated view ray) and view-direction error (degrees)."""
    p, t = position.detach().double(), look_at.detach().double()
    d = (t - p) / (t - p).norm()
    d_true = (TARGET_LOOK_AT - TARGET_POSITION).double()
    d_true = d_true / d_true.norm()
    q = TARGET_LOOK_AT.double() - p
    off_ray = q - (q @ d) * d
    angle = math.degrees(math.acos(max(-1.0, min(1.0, float(d @ d_true)))))
    return {"position_error": float((p - TARGET_POSITION.double()).norm()),
            "look_at_error": float(off_ray.norm()), "direction_error_deg": angle}


def to_orbit(offset: torch.Tensor) -> torch.Tensor:
    """An offset [3] from the look-at point to the camera -> (azimuth, elevation, log distance) [3]."""
    dist = offset.norm()
    return torch.stack([torch.atan2(offset[0], offset[2]), torch.asin(offset[1] / dist), dist.log()])


def from_orbit(orbit: torch.Tensor) -> torch.Tensor:
    """(azimuth, elevation, log distance) [3] -> the offset [3] from the look-at point to the camera."""
    az, el, log_dist = orbit
    return log_dist.exp() * torch.stack([el.cos() * az.sin(), el.sin(), el.cos() * az.cos()])


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Runs the tutorial; returns the result dict also written to result.json.

    Result keys: "position_error", "look_at_error" (scene units), "direction_error_deg",
    "initial_errors", and the bookkeeping of ``RunLog.finish``.
    """
    args = _common.parse_args(argv, __doc__, NAME, full_iterations=200, quick_iterations=60)
    res = (40, 56) if args.quick else (144, 192)
    spp = 8
    setup = StillLife(res)
    render = dict(max_bounces=1, threads=args.threads)
    with torch.no_grad():
        target = rt.render(setup.scene(TARGET_POSITION, TARGET_LOOK_AT), spp=64, seed=args.seed + 10_000, **render)
        initial = rt.render(setup.scene(START_POSITION, START_LOOK_AT), spp=64, seed=args.seed + 20_000, **render)

    # The unknowns: the look-at point, and the position around it in spherical coordinates
    # (azimuth, elevation, log distance), which separate turning around the scene from
    # moving closer; the renderer's gradients w.r.t. position reach them through torch.
    look_at = START_LOOK_AT.clone().requires_grad_(True)
    orbit = to_orbit(START_POSITION - START_LOOK_AT).requires_grad_(True)
    lr_orbit, lr_look = 0.03, 0.05
    opt = torch.optim.Adam([{"params": [orbit], "lr": lr_orbit}, {"params": [look_at], "lr": lr_look}],
                           betas=(0.9, 0.99))
    clipper = _common.SpikeClipper([orbit, look_at])  # rare huge Monte Carlo gradients
    log = _common.RunLog(args)
    log.set_target(target)
    for it in log.progress(args.iterations):
        scale = _common.lr_schedule(it, args.iterations, 0.03, hold=0.3)
        opt.param_groups[0]["lr"], opt.param_groups[1]["lr"] = lr_orbit * scale, lr_look * scale
        opt.zero_grad()
        position = look_at + from_orbit(orbit)
        img = rt.render(setup.scene(position, look_at), spp=spp, seed=args.seed + it, **render)
        loss = ((img - target) ** 2).mean()
        log.record(loss, camera_errors(position, look_at), img)
        loss.backward()
        clipper.clip()
        opt.step()

    position = (look_at + from_orbit(orbit)).detach()
    with torch.no_grad():
        final = rt.render(setup.scene(position, look_at), spp=64, seed=args.seed + 30_000, **render)
    result = camera_errors(position, look_at)
    result.update({"position": position.detach().tolist(), "look_at": look_at.detach().tolist(),
                   "target_position": TARGET_POSITION.tolist(), "target_look_at": TARGET_LOOK_AT.tolist()})
    return log.finish(target, initial, final, result)


if __name__ == "__main__":
    r = main()
    e0 = r["initial_errors"]
    print(f"position error {e0['position_error']:.3f} -> {r['position_error']:.4f}, look-at error "
          f"{e0['look_at_error']:.3f} -> {r['look_at_error']:.4f}, direction error "
          f"{e0['direction_error_deg']:.2f} -> {r['direction_error_deg']:.3f} degrees, in {r['iterations']} "
          f"iterations, {r['wall_time_s']:.1f} s; pictures in {r['out']}")
