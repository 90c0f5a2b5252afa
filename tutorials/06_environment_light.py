"""Tutorial 6: recover the lighting all around from its reflection in a glossy ball.

A polished metal ball (GGX roughness 0.06, no diffuse colour) reflects the environment: sky,
sun, ground and a few coloured patches in a 16 x 32 lat-long environment map. From one photo
of the ball we recover that map. Only the ball's pixels enter the loss (the target's alpha
channel masks the background), so everything we learn about the map comes from
reflections.

The map's texels are optimised as logarithms (radiance must stay positive, and the sun is
thousands of times brighter than the ground). ``rt.render`` returns the gradient of the
image with respect to every texel of ``EnvironmentMap.values``.

A ball seen from one side reflects almost every direction, but the directions behind it
are squeezed into a thin ring at its rim. So the error is reported over the texels that
lie within 120 degrees of the direction towards the camera ("seen" texels: the ball mirrors
those into its visible disc away from the rim); the error over all texels is kept too.

    python tutorials/06_environment_light.py            # full run
    python tutorials/06_environment_light.py --quick    # a few seconds
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

NAME = "06_environment_light"
CAMERA_POSITION = torch.tensor([0.0, 0.5, 3.0])
SEEN_ANGLE_DEG = 120.0


def texel_directions(h: int, w: int) -> torch.Tensor:
    """Unit directions [h, w, 3] of lat-long texel centres (the EnvironmentMap convention)."""
    theta = (torch.arange(h) + 0.5) / h * math.pi
    phi = ((torch.arange(w) + 0.5) / w - 0.5) * 2 * math.pi
    t, p = torch.meshgrid(theta, phi, indexing="ij")
    return torch.stack([torch.sin(t) * torch.sin(p), torch.cos(t), -torch.sin(t) * torch.cos(p)], dim=-1)


def target_envmap(h: int, w: int) -> torch.Tensor:
    """The environment to recover [h, w, 3]: a blue sky over a brown ground, a sun, two coloured walls."""
    d = texel_directions(h, w)
    up = d[..., 1:2]
    sky = torch.tensor([0.35, 0.55, 1.0]) * (0.6 + 0.6 * up.clamp(min=0))
    ground = torch.tensor([0.35, 0.25, 0.15]) * torch.ones_like(up)
    env = torch.where(up > 0, sky, ground)
    sun_dir = torch.tensor([0.5, 0.6, 0.62])
    sun = torch.exp(((d @ (sun_dir / sun_dir.norm())) - 1) * 25)[..., None] * torch.tensor([6.0, 5.0, 3.5])
    red = torch.exp(((d @ torch.tensor([-1.0, 0.1, 0.2])) - 1) * 6)[..., None] * torch.tensor([1.2, 0.1, 0.1])
    green = torch.exp(((d @ torch.tensor([0.7, -0.1, 0.7])) - 1) * 6)[..., None] * torch.tensor([0.1, 0.9, 0.2])
    return env + sun + red + green


def seen_mask(h: int, w: int) -> torch.Tensor:
    """[h, w] bool: texels within SEEN_ANGLE_DEG of the direction from the ball towards the camera."""
    v = CAMERA_POSITION / CAMERA_POSITION.norm()
    return texel_directions(h, w) @ v >= math.cos(math.radians(SEEN_ANGLE_DEG))


def relative_error(env: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    """Solid-angle weighted RMS error over the masked texels, relative to the target's RMS there."""
    h = env.shape[0]
    weight = torch.sin((torch.arange(h) + 0.5) / h * math.pi)[:, None].expand(mask.shape) * mask
    err = (((env - target) ** 2).sum(-1) * weight).sum()
    ref = ((target ** 2).sum(-1) * weight).sum()
    return float((err / ref).sqrt())


def make_scene(envmap: torch.Tensor, resolution) -> rt.Scene:
    ball = rt.sphere(radius=1.0, subdivisions=4)
    camera = rt.Camera(CAMERA_POSITION, [0.0, 0.0, 0.0], [0.0, 1.0, 0.0], fov=44.0, resolution=resolution)
    metal = rt.Material([0.0, 0.0, 0.0], specular_reflectance=[0.9, 0.9, 0.9], roughness=0.06)
    return rt.Scene(camera, [rt.Shape(ball.vertices, ball.indices, 0, normals=ball.normals)], [metal],
                    envmap=rt.EnvironmentMap(envmap))


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Runs the tutorial; returns the result dict also written to result.json.

    Result keys: "envmap_error" (relative RMS error over the seen texels),
    "envmap_error_all" (over all texels), their initial values, and the bookkeeping of
    ``RunLog.finish``.
    """
    args = _common.parse_args(argv, __doc__, NAME, full_iterations=200, quick_iterations=40)
    h, w = (8, 16) if args.quick else (16, 32)
    res = (40, 40) if args.quick else (160, 160)
    spp = 4 if args.quick else 8
    env_target = target_envmap(h, w)
    mask = seen_mask(h, w)
    everything = torch.ones_like(mask)
    render = dict(max_bounces=1, threads=args.threads)
    with torch.no_grad():
        out = rt.render(make_scene(env_target, res), spp=128, seed=args.seed + 10_000,
                        channels=("radiance", "alpha"), **render)
        target, alpha = out[..., :3], out[..., 3:]
        start = torch.full_like(env_target, float(env_target.mean()))
        initial = rt.render(make_scene(start, res), spp=64, seed=args.seed + 20_000, **render)

    log_env = start.log().requires_grad_(True)

    def errors() -> Dict[str, float]:
        env = log_env.detach().exp()
        return {"envmap_error": relative_error(env, env_target, mask),
                "envmap_error_all": relative_error(env, env_target, everything)}

    lr = 0.15
    opt = torch.optim.Adam([log_env], lr=lr, betas=(0.8, 0.95))
    clipper = _common.SpikeClipper([log_env])  # rare huge Monte Carlo gradients
    log = _common.RunLog(args)
    log.set_target(target * alpha)
    initial_errors = errors()
    for it in log.progress(args.iterations):
        opt.param_groups[0]["lr"] = lr * _common.lr_schedule(it, args.iterations, 0.05, hold=0.3)
        opt.zero_grad()
        img = rt.render(make_scene(log_env.exp(), res), spp=spp, seed=args.seed + it, **render)
        loss = (alpha * (img - target) ** 2).mean() / (alpha * target ** 2).mean()
        log.record(loss, errors(), img * alpha)
        loss.backward()
        clipper.clip()
        opt.step()

    env = log_env.detach().exp()
    with torch.no_grad():
        final = rt.render(make_scene(env, res), spp=64, seed=args.seed + 30_000, **render)
    # The maps themselves, target above found (scaled down so the sun does not wash out the rest).
    scale = 1.0 / float(env_target.quantile(0.95))
    rt.imwrite(torch.cat([env_target, torch.ones(1, w, 3), env], dim=0) * scale, args.out / "envmaps.png")
    e = errors()
    return log.finish(target, initial, final, {
        "envmap_error": e["envmap_error"], "envmap_error_all": e["envmap_error_all"],
        "initial_envmap_error": initial_errors["envmap_error"],
        "initial_envmap_error_all": initial_errors["envmap_error_all"],
        "envmap_resolution": [h, w], "seen_texels": int(mask.sum()),
    })


if __name__ == "__main__":
    r = main()
    print(f"environment map error (seen texels) {r['initial_envmap_error']:.3f} -> {r['envmap_error']:.4f}, "
          f"(all texels) {r['initial_envmap_error_all']:.3f} -> {r['envmap_error_all']:.4f}, in "
          f"{r['iterations']} iterations, {r['wall_time_s']:.1f} s; pictures in {r['out']}")
