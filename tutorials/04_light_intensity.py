"""Tutorial 4: recover an area light's intensity from a photo of what it lights.

A small square lamp hangs above a teapot on a floor, out of the picture. In the photo it
shines with radiance 50,000; our first guess is 5,000, ten times too dim. (A known
experiment with redner needed 800 iterations to reach 48,506.) Two choices make this fast:

- The unknown is the logarithm of the intensity. The image is proportional to the
  intensity, so a step in log-intensity changes the image by the same *fraction* whatever
  the intensity: Adam's steps (of a fixed size in the parameter) become steps of a fixed
  ratio, and a 10x error is a distance of only log(10) = 2.3.
- The loss is the squared error divided by the target's mean square, so its scale does not
  depend on the units of radiance.

The forward and the backward pass trace independent paths (``rt.render`` does this for
every seed), so the gradient of the squared error is unbiased even at a few samples per
pixel: the optimum is not pulled down by the render noise. A new seed every iteration and a
learning rate that decays over the run average the remaining noise away.

    python tutorials/04_light_intensity.py            # full run: within 0.5% in <= 100 iterations
    python tutorials/04_light_intensity.py --quick    # a few seconds
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

NAME = "04_light_intensity"
TARGET_INTENSITY = 50_000.0
START_INTENSITY = 5_000.0


class LampScene:
    """A teapot on a floor before a wall, lit by one small square lamp; ``scene(intensity)``."""

    def __init__(self, resolution):
        floor = rt.plane(size=(8.0, 8.0), center=(0.0, -1.0, 0.0))
        wall = rt.plane(size=(8.0, 5.0), center=(0.0, 1.5, -2.5), normal="+z")
        pot = rt.teapot(subdivisions=4, normalize=True)
        lamp = rt.plane(size=(0.02, 0.02), center=(0.6, 2.2, 0.8), normal="-y")  # 4 cm^2
        self.shapes = [rt.Shape(floor.vertices, floor.indices, 0), rt.Shape(wall.vertices, wall.indices, 1),
                       rt.Shape(pot.vertices, pot.indices, 2, normals=pot.normals),
                       rt.Shape(lamp.vertices, lamp.indices, 3)]
        self.materials = [rt.Material([0.5, 0.5, 0.5]), rt.Material([0.6, 0.55, 0.45]),
                          rt.Material([0.75, 0.2, 0.15], specular_reflectance=[0.04, 0.04, 0.04], roughness=0.25),
                          rt.Material([0.0, 0.0, 0.0])]
        self.camera = rt.Camera([0.0, 0.9, 4.0], [0.0, -0.1, 0.0], [0.0, 1.0, 0.0], fov=45.0, resolution=resolution)

    def scene(self, intensity: torch.Tensor) -> rt.Scene:
        """intensity: a scalar tensor, the lamp's radiance (the same in all three channels)."""
        return rt.Scene(self.camera, self.shapes, self.materials, [rt.AreaLight(3, intensity.reshape(1).expand(3))])


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Runs the tutorial; returns the result dict also written to result.json.

    Result keys: "intensity" (found), "relative_error_percent" (|found - 50,000| / 50,000,
    in percent), "initial_relative_error_percent", and the bookkeeping of ``RunLog.finish``.
    """
    args = _common.parse_args(argv, __doc__, NAME, full_iterations=100, quick_iterations=30)
    res = (32, 32) if args.quick else (128, 128)
    spp = 4 if args.quick else 8
    setup = LampScene(res)
    render = dict(max_bounces=2, threads=args.threads)
    with torch.no_grad():
        target = rt.render(setup.scene(torch.tensor(TARGET_INTENSITY)), spp=256 if args.quick else 128,
                           seed=args.seed + 10_000, **render)
        initial = rt.render(setup.scene(torch.tensor(START_INTENSITY)), spp=64, seed=args.seed + 20_000, **render)
    target_power = (target ** 2).mean()

    log_intensity = torch.tensor(math.log(START_INTENSITY), requires_grad=True)

    def error() -> float:
        return 100.0 * abs(math.exp(float(log_intensity.detach())) - TARGET_INTENSITY) / TARGET_INTENSITY

    lr = 0.3
    opt = torch.optim.Adam([log_intensity], lr=lr, betas=(0.6, 0.9))
    log = _common.RunLog(args)
    log.set_target(target)
    initial_error = error()
    for it in log.progress(args.iterations):
        opt.param_groups[0]["lr"] = lr * _common.lr_schedule(it, args.iterations, 0.01, hold=0.3)
        opt.zero_grad()
        img = rt.render(setup.scene(log_intensity.exp()), spp=spp, seed=args.seed + it, **render)
        loss = ((img - target) ** 2).mean() / target_power
        log.record(loss, {"relative_error_percent": error()}, img)
        loss.backward()
        opt.step()

    with torch.no_grad():
        final = rt.render(setup.scene(log_intensity.exp()), spp=64, seed=args.seed + 30_000, **render)
    return log.finish(target, initial, final, {
        "intensity": math.exp(float(log_intensity.detach())),
        "target_intensity": TARGET_INTENSITY,
        "start_intensity": START_INTENSITY,
        "relative_error_percent": error(),
        "initial_relative_error_percent": initial_error,
    })


if __name__ == "__main__":
    r = main()
    print(f"intensity {r['start_intensity']:.0f} -> {r['intensity']:.1f} (target {r['target_intensity']:.0f}, "
          f"error {r['relative_error_percent']:.3f}%) in {r['iterations']} iterations, {r['wall_time_s']:.1f} s; "
          f"pictures in {r['out']}")
