"""The CUDA backend against the CPU backend on the same machine, in the same run.

The reference scene (benchmarks/scenes.py: a smooth diffuse sphere of about 10k triangles on a
ground plane under one area light) is rendered with direct lighting (max_bounces=1) on the GPU
and on the CPU (all of the machine's cores), at several resolutions and spp; each figure is the
median of --repeats calls, after one warm-up call (which also copies the scene to the GPU). The
ratio column is CPU time / GPU time. Then `scene.intersect` of random rays (origins in the
scene's box, directions uniform), and the forward+backward pass of bench_grad.py's loss.

    python benchmarks/bench_cuda.py --out results.md
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path[:0] = [os.path.dirname(os.path.abspath(__file__)),
                os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
from common import machine_info, markdown_table, median  # noqa: E402
from scenes import random_rays, reference_scene  # noqa: E402

import raytrace as rt  # noqa: E402
from raytrace import _core  # noqa: E402


def timed(fn, repeats, cuda):
    fn()  # warm-up (scene upload, module load)
    times = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None, help="also write the tables (markdown) to this file")
    parser.add_argument("--quick", action="store_true", help="small sizes only (a smoke test)")
    args = parser.parse_args()
    if not (_core.has_cuda and torch.cuda.is_available() and _core.cuda_device_count() > 0):
        sys.exit("bench_cuda.py needs a GPU and raytrace built with RT_CUDA=1 (docs/cuda.md)")
    lines = [f"GPU: {_core.cuda_device_name(0)}", machine_info(), f"CPU threads: {_core.default_num_threads()}"]
    print("\n".join(lines))

    # Forward pass.
    sizes = [(256, 256)] if args.quick else [(256, 256), (1024, 1024)]
    spps = [4, 16] if args.quick else [4, 16, 64]
    rows = []
    for res in sizes:
        scenes = {"cpu": reference_scene(res), "cuda": reference_scene(res).to("cuda")}
        for spp in spps:
            t = {}
            for dev, scene in scenes.items():
                if dev == "cpu" and res[0] * res[1] * spp > 256 * 256 * 64 * 4 and not args.quick:
                    continue  # (the CPU at 1024^2 x 64 spp: minutes)
                t[dev] = timed(lambda: rt.render(scene, spp=spp, max_bounces=1, seed=0), args.repeats,
                               dev == "cuda")
            mrays = res[0] * res[1] * spp / t["cuda"] / 1e6
            rows.append([f"{res[0]}x{res[1]}", spp, f"{t['cuda'] * 1e3:.2f}",
                         f"{t['cpu'] * 1e3:.1f}" if "cpu" in t else "-",
                         f"{t['cpu'] / t['cuda']:.1f}" if "cpu" in t else "-", f"{mrays:.0f}"])
            print("forward", rows[-1], flush=True)
    forward = markdown_table(["resolution", "spp", "GPU ms", "CPU ms", "CPU / GPU", "GPU Msamples/s"], rows)

    # Ray queries.
    rows = []
    cpu_scene = reference_scene((64, 64))
    gpu_scene = reference_scene((64, 64)).to("cuda")
    for n in ([100_000] if args.quick else [100_000, 1_000_000, 10_000_000]):
        o, d = (torch.from_numpy(a) for a in random_rays(n, (-5, -1, -5), (5, 3, 5), seed=0))
        og, dg = o.cuda(), d.cuda()
        tg = timed(lambda: gpu_scene.intersect(og, dg), args.repeats, True)
        tc = timed(lambda: cpu_scene.intersect(o, d), args.repeats, False) if n <= 1_000_000 else None
        rows.append([n, f"{tg * 1e3:.2f}", f"{tc * 1e3:.1f}" if tc else "-", f"{tc / tg:.1f}" if tc else "-",
                     f"{n / tg / 1e6:.0f}"])
        print("intersect", rows[-1], flush=True)
    intersect = markdown_table(["rays", "GPU ms", "CPU ms", "CPU / GPU", "GPU Mrays/s"], rows)

    # Forward + backward (bench_grad.py's loss: the image against a target, w.r.t. the sphere's
    # vertices; every term: interior, primary and secondary edges).
    rows = []
    for res, spp in ([((256, 256), 4)] if args.quick else [((256, 256), 4), ((256, 256), 16), ((256, 256), 64),
                                                         ((1024, 1024), 16)]):
        t = {}
        for dev in ("cpu", "cuda"):
            if dev == "cpu" and res[0] * res[1] * spp > 256 * 256 * 16:
                continue  # (seconds per call on the CPU)
            scene = reference_scene(res).to(dev)
            target = rt.render(scene, spp=16, max_bounces=1, seed=1).detach()
            verts = scene.shapes[0].vertices.detach().clone().requires_grad_(True)
            scene.shapes[0].vertices = verts

            def forward():
                with torch.no_grad():
                    rt.render(scene, spp=spp, max_bounces=1, seed=0)

            def step():
                verts.grad = None
                img = rt.render(scene, spp=spp, max_bounces=1, seed=0)
                ((img - target) ** 2).mean().backward()
            t[dev] = (timed(forward, args.repeats, dev == "cuda"), timed(step, args.repeats, dev == "cuda"))
        g_fwd, g_all = t["cuda"]
        rows.append([f"{res[0]}x{res[1]}", spp, f"{g_all * 1e3:.1f}", f"{(g_all - g_fwd) / g_fwd:.1f}",
                     f"{t['cpu'][1] * 1e3:.0f}" if "cpu" in t else "-",
                     f"{t['cpu'][1] / g_all:.1f}" if "cpu" in t else "-"])
        print("forward+backward", rows[-1], flush=True)
    backward = markdown_table(["resolution", "spp", "GPU fwd+bwd ms", "GPU bwd / fwd", "CPU fwd+bwd ms",
                               "CPU / GPU"], rows)

    report = "\n".join(lines) + "\n\n### Forward (max_bounces=1)\n\n" + forward + "\n\n### scene.intersect (random rays)\n\n" \
        + intersect + "\n\n### Forward + backward\n\n" + backward + "\n"
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report)


if __name__ == "__main__":
    main()
