"""Tutorial 5: recover a material: a diffuse texture and a specular roughness.

A glossy tile lies under two lamps: a broad one that lights it evenly and a small one whose
highlight the camera sees in the tile. The tile's colour is a 16 x 16 texture and its gloss a
GGX roughness; we start from a plain grey, rough tile and recover both from one photo.

- The texture is a leaf tensor [16, 16, 3], clamped to [0, 1] when it is handed to the
  material (the renderer rejects negative reflectance); ``rt.render`` returns the gradient
  of the image with respect to every texel (through the bilinear lookups).
- The roughness is optimised as its logarithm: it must stay positive, and the highlight's
  width changes by similar fractions for similar ratios of roughness.

The highlight is what tells roughness from colour: a rougher tile spreads the small lamp's
reflection over a wider, dimmer patch, something no change of the diffuse colour can mimic.

    python tutorials/05_materials.py            # full run
    python tutorials/05_materials.py --quick    # a few seconds
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

NAME = "05_materials"
TEXTURE_SIZE = 16
TARGET_ROUGHNESS = 0.2
START_ROUGHNESS = 0.6
SPECULAR = [0.25, 0.25, 0.25]


def target_texture(n: int = TEXTURE_SIZE) -> torch.Tensor:
    """The texture to recover, [n, n, 3] in [0.05, 0.95]: coloured rings around an off-centre point."""
    y, x = torch.meshgrid(torch.linspace(0, 1, n), torch.linspace(0, 1, n), indexing="ij")
    r = torch.sqrt((x - 0.4) ** 2 + (y - 0.55) ** 2)
    red = 0.5 + 0.4 * torch.cos(14 * r)
    green = 0.5 + 0.4 * torch.sin(9 * x + 2 * y)
    blue = 0.5 + 0.4 * torch.cos(6 * y - 3 * x)
    return torch.stack([red, green, blue], dim=-1).clamp(0.05, 0.95)


class TileScene:
    """A textured glossy tile under a broad and a small lamp; ``scene(texture, roughness)``."""

    def __init__(self, resolution):
        tile = rt.plane(size=(2.0, 2.0))
        broad = rt.plane(size=(3.0, 3.0), center=(-1.5, 3.0, 1.0), normal="-y")
        # The small lamp sits where the tile mirrors it into the middle of the view.
        small = rt.plane(size=(0.4, 0.4), center=(0.0, 2.0, -2.2), normal="-y")
        self.shapes = [rt.Shape(tile.vertices, tile.indices, 0, uvs=tile.uvs),
                       rt.Shape(broad.vertices, broad.indices, 1), rt.Shape(small.vertices, small.indices, 1)]
        self.camera = rt.Camera([0.0, 1.8, 1.9], [0.0, 0.0, -0.05], [0.0, 1.0, 0.0], fov=50.0, resolution=resolution)
        self.lights = [rt.AreaLight(1, [4.0, 4.0, 4.0]), rt.AreaLight(2, [30.0, 30.0, 30.0])]

    def scene(self, texture: torch.Tensor, roughness: torch.Tensor) -> rt.Scene:
        """texture [h, w, 3] diffuse reflectance, roughness [1] GGX alpha."""
        materials = [rt.Material(texture, specular_reflectance=SPECULAR, roughness=roughness),
                     rt.Material([0.0, 0.0, 0.0])]
        return rt.Scene(self.camera, self.shapes, materials, self.lights)


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Runs the tutorial; returns the result dict also written to result.json.

    Result keys: "texture_rmse" (root mean square texel error, reflectance units),
    "roughness" (found), "roughness_error" (absolute), their initial values, and the
    bookkeeping of ``RunLog.finish``.
    """
    args = _common.parse_args(argv, __doc__, NAME, full_iterations=200, quick_iterations=60)
    res = (48, 48) if args.quick else (128, 128)
    spp = 4 if args.quick else 8
    setup = TileScene(res)
    render = dict(max_bounces=1, threads=args.threads)
    tex_target = target_texture()
    with torch.no_grad():
        target = rt.render(setup.scene(tex_target, torch.tensor([TARGET_ROUGHNESS])), spp=128,
                           seed=args.seed + 10_000, **render)
        initial = rt.render(setup.scene(torch.full_like(tex_target, 0.5), torch.tensor([START_ROUGHNESS])), spp=64,
                            seed=args.seed + 20_000, **render)

    texture = torch.full_like(tex_target, 0.5).requires_grad_(True)
    log_roughness = torch.tensor([math.log(START_ROUGHNESS)], requires_grad=True)

    def errors() -> Dict[str, float]:
        tex = texture.detach().clamp(0, 1)
        return {"texture_rmse": float(((tex - tex_target) ** 2).mean().sqrt()),
                "roughness_error": abs(float(log_roughness.detach().exp()) - TARGET_ROUGHNESS)}

    lr_tex, lr_rough = 0.05, 0.15
    opt = torch.optim.Adam([{"params": [texture], "lr": lr_tex}, {"params": [log_roughness], "lr": lr_rough}],
                           betas=(0.8, 0.95))
    clipper = _common.SpikeClipper([texture, log_roughness])  # rare huge Monte Carlo gradients
    log = _common.RunLog(args)
    log.set_target(target)
    initial_errors = errors()
    for it in log.progress(args.iterations):
        scale = _common.lr_schedule(it, args.iterations, 0.05, hold=0.3)
        opt.param_groups[0]["lr"], opt.param_groups[1]["lr"] = lr_tex * scale, lr_rough * scale
        opt.zero_grad()
        img = rt.render(setup.scene(texture.clamp(0, 1), log_roughness.exp()), spp=spp, seed=args.seed + it, **render)
        loss = ((img - target) ** 2).mean()
        log.record(loss, errors(), img)
        loss.backward()
        clipper.clip()
        opt.step()

    with torch.no_grad():
        final = rt.render(setup.scene(texture.clamp(0, 1), log_roughness.exp()), spp=64, seed=args.seed + 30_000,
                          **render)
    rt.imwrite(torch.cat([tex_target, torch.ones(TEXTURE_SIZE, 1, 3), texture.detach().clamp(0, 1)], dim=1),
               args.out / "textures.png", srgb=False)
    e = errors()
    return log.finish(target, initial, final, {
        "texture_rmse": e["texture_rmse"], "roughness": float(log_roughness.detach().exp()),
        "roughness_error": e["roughness_error"], "target_roughness": TARGET_ROUGHNESS,
        "initial_texture_rmse": initial_errors["texture_rmse"],
        "initial_roughness_error": initial_errors["roughness_error"],
    })


if __name__ == "__main__":
    r = main()
    e0 = r["initial_errors"]
    print(f"texture RMSE {e0['texture_rmse']:.3f} -> {r['texture_rmse']:.4f}, roughness {START_ROUGHNESS} -> "
          f"{r['roughness']:.4f} (target {TARGET_ROUGHNESS}) in {r['iterations']} iterations, "
          f"{r['wall_time_s']:.1f} s; pictures in {r['out']}")
