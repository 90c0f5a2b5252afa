"""Seconds per frame of raytrace.render on the reference scene, beside pure ray tracing.

The scene (benchmarks/scenes.py: reference_scene) is a smooth diffuse sphere of about 10k
triangles on a ground plane, lit by one small area light, rendered at 256 x 256 with direct
lighting (max_bounces=1) at 1, 4, 16 and 64 samples per pixel; each figure is the median of
--repeats renders.

The same-run reference is `scene.intersect` of one camera ray per pixel centre (primary rays
only), timed just before each render, so the table shows each frame's time relative to
tracing those rays once. The path
tracer's rays/s is an estimate: per sample, one camera ray, and for each camera ray that hits a
surface one shadow ray and one BSDF ray per bounce (so at most 1 + 2 * max_bounces).

    python benchmarks/bench_render.py
    python benchmarks/bench_render.py --spp 1,16 --repeats 5 --threads 1
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

# benchmarks/ for the helpers, then the repository root so that a raytrace built in place
# (python setup.py build_ext --inplace) is found when run as python benchmarks/<script>.py.
sys.path[:0] = [os.path.dirname(os.path.abspath(__file__)),
                os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
from common import load_line, machine_info, markdown_table, median  # noqa: E402
from scenes import REFERENCE_CAMERA, REFERENCE_SPHERE_N, camera_rays, reference_scene  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolution", type=int, default=256, help="image side in pixels")
    parser.add_argument("--spp", default="1,4,16,64", help="comma-separated samples per pixel")
    parser.add_argument("--max-bounces", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per figure (median)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for render and intersect (sets RT_NUM_THREADS before "
                             "raytrace is imported); default: RT_NUM_THREADS or all cores")
    parser.add_argument("--sphere-n", type=int, default=REFERENCE_SPHERE_N,
                        help="sphere subdivision: 12 n^2 triangles")
    args = parser.parse_args()
    if args.threads is not None:
        os.environ["RT_NUM_THREADS"] = str(args.threads)

    import torch
    import raytrace as rt

    height = width = args.resolution
    spps = [int(s) for s in args.spp.split(",")]
    print("# bench_render")
    print(machine_info())
    print(f"settings: resolution={height}x{width} spp={spps} max_bounces={args.max_bounces} "
          f"repeats={args.repeats} threads={args.threads} sphere triangles={12 * args.sphere_n ** 2}")

    scene = reference_scene((height, width), sphere_n=args.sphere_n)

    # Reference: one primary ray per pixel centre. The first call builds the BVH.
    o, d = camera_rays(REFERENCE_CAMERA["position"], REFERENCE_CAMERA["look_at"],
                       REFERENCE_CAMERA["up"], REFERENCE_CAMERA["fov"], height, width)
    o, d = torch.from_numpy(o), torch.from_numpy(d)
    hits = scene.intersect(o, d)
    num_pixels = height * width
    num_hits = int((hits["shape_id"] >= 0).sum())
    print(f"primary rays: {num_pixels:,}, {num_hits / num_pixels:.1%} hit")

    # Check that the reference traces the renderer's own camera rays: shape ids must match.
    ids = rt.render(scene, spp=1, max_bounces=0, seed=0, channels=("shape_id",),
                    threads=args.threads)
    same = (ids.reshape(-1).long() == hits["shape_id"].reshape(-1)).float().mean().item()
    print(f"render shape_id channel == intersect shape_id on {same:.2%} of pixels")

    # Each repeat times one primary trace and one render back to back, so that each ratio
    # compares calls made within the same second (load from other work drifts).
    rows, all_primary = [], []
    rays_per_sample = num_pixels + 2 * args.max_bounces * num_hits  # an upper estimate
    for spp in spps:
        primary_times, render_times = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            scene.intersect(o, d)
            primary_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            image = rt.render(scene, spp=spp, max_bounces=args.max_bounces, seed=0,
                              threads=args.threads)
            render_times.append(time.perf_counter() - start)
        primary, seconds = median(primary_times), median(render_times)
        all_primary += primary_times
        rays = spp * rays_per_sample
        rows.append([spp, f"{seconds:.3f}", f"{primary * 1e3:.2f}", f"{seconds / primary:.1f}",
                     f"{seconds / (spp * primary):.2f}", f"{rays / seconds / 1e6:.2f}",
                     f"{image.mean().item():.4f}"])
        print(f"  spp={spp}: {seconds:.3f} s/frame, primary trace {primary * 1e3:.2f} ms",
              flush=True)

    primary = median(all_primary)
    print(f"\n## Render, {height}x{width}, max_bounces={args.max_bounces} "
          f"(median of {args.repeats})\n")
    print(markdown_table(["spp", "s/frame", "primary trace ms", "frame / primary trace",
                          "per-sample / primary trace", "est. path-tracer Mrays/s",
                          "mean radiance"], rows))
    print(f"\nprimary trace (one intersect of {num_pixels:,} rays): median {primary * 1e3:.2f} ms "
          f"({num_pixels / primary / 1e6:.2f} Mrays/s); est. rays per sample = "
          f"{rays_per_sample / num_pixels:.2f} per pixel (1 camera + 2 x {args.max_bounces} x "
          f"hit fraction {num_hits / num_pixels:.3f}); an upper bound on the rays traced: the "
          f"last bounce's BSDF ray is traced only when it can meet an area light's bounding box "
          f"(it adds only emission), so the Mrays/s column overstates the ray rate")
    print(load_line("at end"))


if __name__ == "__main__":
    main()
