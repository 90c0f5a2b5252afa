"""The CUDA backend against the CPU backend, and against Mitsuba 3 on the same GPU, in one run.

The reference scene (benchmarks/scenes.py: a smooth diffuse sphere of about 10k triangles on a
ground plane under one area light; bench_render.py and bench_grad.py use it) is rendered with
direct lighting (max_bounces=1):

- forward: rt.render at 256x256 and 1024x1024, 16 and 64 spp;
- forward+backward: bench_grad.py's loss, mean((image - target)^2) w.r.t. the sphere's vertices,
  with every term of the gradient (interior, primary and secondary edges); "bwd / fwd" is the
  backward's time over the forward's; and the backward's time by term at 256x256, 16 spp;
- the same sphere with 2 million triangles (sphere_n = 408), forward and forward+backward;
- scene.intersect of random rays (origins in the scene's box, directions uniform).

Each figure is the median of --repeats calls after one warm-up call (which also copies the scene
to the GPU and builds what is cached). The CPU reference runs in the same process with
--cpu-threads threads (default 2: the development machines' two cores); "CPU / GPU" is the ratio
of the times. The CPU is skipped where one call would take seconds (marked "-"). Mitsuba 3's
cuda_ad_rgb variant renders the same scene where it can be imported (benchmarks/bench_mitsuba.py;
skipped with a message otherwise).

    python benchmarks/bench_cuda.py --out results.md
    python benchmarks/bench_cuda.py --quick          # a smoke test
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

# Samples per call above which the CPU reference is skipped (seconds per call on two cores).
CPU_FORWARD_LIMIT = 1024 * 1024 * 16
CPU_BACKWARD_LIMIT = 256 * 256 * 16


def timed(fn, repeats, cuda):
    fn()  # warm-up (scene upload, caches)
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


class Fit:
    """One scene on one device with bench_grad.py's loss, w.r.t. the sphere's vertices."""

    def __init__(self, device, res, sphere_n=None, threads=None):
        kw = {} if sphere_n is None else {"sphere_n": sphere_n}
        self.scene = reference_scene(res, **kw).to(device)
        self.threads = None if device == "cuda" else threads
        self.cuda = device == "cuda"
        self.target = rt.render(self.scene, spp=16, max_bounces=1, seed=1, threads=self.threads).detach()
        self.verts = self.scene.shapes[0].vertices.detach().clone().requires_grad_(True)
        self.scene.shapes[0].vertices = self.verts

    def forward(self, spp):
        with torch.no_grad():
            rt.render(self.scene, spp=spp, max_bounces=1, seed=0, threads=self.threads)

    def step(self, spp, **kw):
        self.verts.grad = None
        img = rt.render(self.scene, spp=spp, max_bounces=1, seed=0, threads=self.threads, **kw)
        ((img - self.target) ** 2).mean().backward()

    def times(self, spp, repeats, **kw):
        fwd = timed(lambda: self.forward(spp), repeats, self.cuda)
        return fwd, timed(lambda: self.step(spp, **kw), repeats, self.cuda)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cpu-threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="also write the tables (markdown) to this file")
    parser.add_argument("--quick", action="store_true", help="small sizes only (a smoke test)")
    parser.add_argument("--no-large", action="store_true", help="skip the 2-million-triangle scene")
    parser.add_argument("--profile-step", action="store_true",
                        help="only one forward+backward at 256x256, 16 spp (for a profiler: gpu_check.sh RT_PROFILE=1)")
    args = parser.parse_args()
    if not (_core.has_cuda and torch.cuda.is_available() and _core.cuda_device_count() > 0):
        sys.exit("bench_cuda.py needs a GPU and raytrace built with RT_CUDA=1 (docs/cuda.md)")
    if args.profile_step:
        fit = Fit("cuda", (256, 256))
        fit.step(16)
        torch.cuda.synchronize()
        return
    threads = args.cpu_threads
    lines = [f"GPU: {_core.cuda_device_name(0)}", machine_info(), f"CPU reference: {threads} threads"]
    print("\n".join(lines), flush=True)
    sections = []

    # Forward and forward+backward on the reference scene.
    cases = [((64, 64), 4)] if args.quick else [((256, 256), 16), ((256, 256), 64), ((1024, 1024), 16),
                                                ((1024, 1024), 64)]
    rows = []
    for res, spp in cases:
        pixels = res[0] * res[1]
        gpu_fwd, gpu_all = Fit("cuda", res).times(spp, args.repeats)
        cpu = Fit("cpu", res, threads=threads) if pixels * spp <= CPU_FORWARD_LIMIT else None
        cpu_fwd = timed(lambda: cpu.forward(spp), args.repeats, False) if cpu else None
        cpu_all = timed(lambda: cpu.step(spp), args.repeats, False) if cpu and pixels * spp <= CPU_BACKWARD_LIMIT \
            else None
        ms = lambda t: "-" if t is None else f"{t * 1e3:.1f}"  # noqa: E731
        ratio = lambda c, g: "-" if c is None else f"{c / g:.1f}"  # noqa: E731
        rows.append([f"{res[0]}x{res[1]}", spp, ms(gpu_fwd), ms(cpu_fwd), ratio(cpu_fwd, gpu_fwd), ms(gpu_all),
                     f"{(gpu_all - gpu_fwd) / gpu_fwd:.1f}", ms(cpu_all), ratio(cpu_all, gpu_all)])
        print("reference scene", rows[-1], flush=True)
    sections.append(("Reference scene (10k triangles, max_bounces=1), ms per call",
                     markdown_table(["resolution", "spp", "GPU fwd", "CPU fwd", "CPU / GPU", "GPU fwd+bwd",
                                     "GPU bwd / fwd", "CPU fwd+bwd", "CPU / GPU"], rows)))

    # The backward by term (each alone, interior=False for the boundary terms).
    res, spp = ((64, 64), 4) if args.quick else ((256, 256), 16)
    fit = Fit("cuda", res)
    fwd = timed(lambda: fit.forward(spp), args.repeats, True)
    rows = []
    for name, kw in (("all terms", {}), ("interior only (boundary=False)", {"boundary": False}),
                     ("primary edges only", {"boundary": "primary", "interior": False}),
                     ("secondary edges only", {"boundary": "secondary", "interior": False})):
        t = timed(lambda: fit.step(spp, **kw), args.repeats, True)
        rows.append([name, f"{(t - fwd) * 1e3:.1f}", fit.scene._stats.get("primary_edge_samples", 0),
                     fit.scene._stats.get("secondary_edge_draws", 0)])
        print("backward by term", rows[-1], flush=True)
    sections.append((f"GPU backward by term ({res[0]}x{res[1]}, {spp} spp), ms (fwd+bwd minus fwd)",
                     markdown_table(["terms", "backward ms", "primary edge samples", "secondary edge draws"], rows)))

    # Two million triangles.
    if not args.quick and not args.no_large:
        rows = []
        res, spp = (256, 256), 16
        for device in ("cuda", "cpu"):
            start = time.perf_counter()
            fit = Fit(device, res, sphere_n=408, threads=threads)
            setup = time.perf_counter() - start
            fwd, total = fit.times(spp, max(1, args.repeats - 1))
            rows.append([device, f"{setup:.1f}", f"{fwd * 1e3:.0f}", f"{total * 1e3:.0f}"])
            print("2M triangles", rows[-1], flush=True)
        sections.append(("Sphere of 2M triangles (256x256, 16 spp), ms per call",
                         markdown_table(["device", "setup s (BVH, first renders)", "fwd", "fwd+bwd"], rows)))

    # Ray queries.
    rows = []
    gpu_scene = reference_scene((64, 64)).to("cuda")
    cpu_scene = reference_scene((64, 64))
    for n in ([100_000] if args.quick else [100_000, 1_000_000, 10_000_000]):
        o, d = (torch.from_numpy(a) for a in random_rays(n, (-5, -1, -5), (5, 3, 5), seed=0))
        og, dg = o.cuda(), d.cuda()
        tg = timed(lambda: gpu_scene.intersect(og, dg), args.repeats, True)
        tc = timed(lambda: cpu_scene.intersect(o, d, threads=threads), args.repeats, False) if n <= 1_000_000 \
            else None
        rows.append([n, f"{tg * 1e3:.2f}", "-" if tc is None else f"{tc * 1e3:.1f}",
                     "-" if tc is None else f"{tc / tg:.1f}", f"{n / tg / 1e6:.0f}"])
        print("intersect", rows[-1], flush=True)
    sections.append(("scene.intersect (random rays), ms per call",
                     markdown_table(["rays", "GPU", "CPU", "CPU / GPU", "GPU Mrays/s"], rows)))

    # Mitsuba 3 on the same GPU.
    try:
        import bench_mitsuba
    except ImportError as e:
        print(f"mitsuba: SKIPPED (benchmarks/bench_mitsuba.py: {e})")
    else:
        mi_cases = [((64, 64), 4)] if args.quick else [((256, 256), 16), ((256, 256), 64), ((1024, 1024), 16),
                                                       ((1024, 1024), 64)]
        mi_rows = bench_mitsuba.mitsuba_rows("cuda_ad_rgb", mi_cases, args.repeats)
        if mi_rows:
            sections.append(("Mitsuba 3 cuda_ad_rgb on the same GPU, ms per call",
                             markdown_table(["resolution", "spp", "Mitsuba fwd", "Mitsuba fwd+bwd"], mi_rows)))

    report = "\n".join(lines) + "\n"
    for title, table in sections:
        report += f"\n### {title}\n\n{table}\n"
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report)


if __name__ == "__main__":
    main()
