"""Where a Large Steps iteration spends its time: render, backward, solve (issue 5).

Scene: a flat-shaded diffuse icosphere (rt.sphere, --subdivisions: 5 -> 10,242 vertices,
7 -> 163,842) under a 1 x 1 area light, no ground, --resolution 128 x 128, --spp 4,
max_bounces=1. The loss is the mean squared difference to a render of a smaller sphere. One
iteration of Large Steps with UniformAdam is timed in parts:

- solve: from_differential forward (x = M^-1 u) plus its backward (grad_u = M^-1 grad_x), both
  with the factorisation computed once before the loop (its time is printed separately);
- render: rt.render forward with the new vertices (includes the BVH refit);
- backward: loss.backward() through the render, down to the vertices;
- step: UniformAdam.step on u.

Median over --iterations after one warm-up iteration. The issue's target: solve under 10% of
an iteration.

    python benchmarks/bench_large_steps.py
    python benchmarks/bench_large_steps.py --subdivisions 5 --iterations 3
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path[:0] = [os.path.dirname(os.path.abspath(__file__)),
                os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
from common import load_line, machine_info, markdown_table, median  # noqa: E402


def build_scene(vertices, indices, resolution: int):
    import torch
    import raytrace as rt

    camera = rt.Camera(position=[0.0, 0.5, 3.5], look_at=[0.0, 0.0, 0.0], up=[0.0, 1.0, 0.0], fov=40.0,
                       resolution=(resolution, resolution))
    light_v = torch.tensor([[-0.5, 2.5, -0.5], [0.5, 2.5, -0.5], [0.5, 2.5, 0.5], [-0.5, 2.5, 0.5]])
    light_i = torch.tensor([[0, 1, 2], [0, 2, 3]])  # normal -y: faces the sphere
    shapes = [rt.Shape(vertices, indices, 0), rt.Shape(light_v, light_i, 1)]
    materials = [rt.Material([0.7, 0.5, 0.4]), rt.Material([0.0, 0.0, 0.0])]
    return rt.Scene(camera=camera, shapes=shapes, materials=materials,
                    area_lights=[rt.AreaLight(1, [25.0, 25.0, 25.0])])


def run(subdivisions: int, args) -> list:
    import torch
    import raytrace as rt

    mesh = rt.sphere(subdivisions=subdivisions)
    n = len(mesh.vertices)
    scene = build_scene(mesh.vertices * 0.8, mesh.indices, args.resolution)
    with torch.no_grad():
        target = rt.render(scene, spp=args.spp, max_bounces=1, seed=1000)
    start = time.perf_counter()
    M = rt.optim.compute_matrix(mesh.vertices, mesh.indices, lambda_=19.0)
    factor = time.perf_counter() - start
    u = rt.optim.to_differential(M, mesh.vertices).detach().requires_grad_()
    opt = rt.optim.UniformAdam([u], lr=3e-2)
    parts = {k: [] for k in ("solve", "render", "backward", "step", "total")}
    for it in range(args.iterations + 1):
        t0 = time.perf_counter()
        x = rt.optim.from_differential(M, u)                     # solve (forward)
        t1 = time.perf_counter()
        x_leaf = x.detach().requires_grad_()
        scene.shapes[0].vertices = x_leaf
        image = rt.render(scene, spp=args.spp, max_bounces=1, seed=it)
        loss = (image - target).square().mean()
        t2 = time.perf_counter()
        loss.backward()                                           # render backward
        t3 = time.perf_counter()
        opt.zero_grad()
        x.backward(x_leaf.grad)                                   # solve (backward)
        t4 = time.perf_counter()
        opt.step()
        t5 = time.perf_counter()
        if it == 0:
            continue  # warm-up: BVH build, allocations
        parts["solve"].append((t1 - t0) + (t4 - t3))
        parts["render"].append(t2 - t1)
        parts["backward"].append(t3 - t2)
        parts["step"].append(t5 - t4)
        parts["total"].append(t5 - t0)
    med = {k: median(v) for k, v in parts.items()}
    print(f"{n:,} vertices: factor {factor * 1e3:.0f} ms ({M.backend}), iterations {args.iterations}, "
          + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in med.items()), flush=True)
    return [f"{n:,}", f"{factor * 1e3:.0f}", f"{med['render'] * 1e3:.0f}", f"{med['backward'] * 1e3:.0f}",
            f"{med['solve'] * 1e3:.1f}", f"{med['step'] * 1e3:.1f}", f"{med['total'] * 1e3:.0f}",
            f"{100 * med['solve'] / med['total']:.1f}%"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subdivisions", default="5,7", help="icosphere subdivisions (comma-separated)")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--spp", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=5, help="timed iterations (median)")
    args = parser.parse_args()

    print("# bench_large_steps")
    print(machine_info())
    print(f"settings: resolution={args.resolution}x{args.resolution} spp={args.spp} max_bounces=1 "
          f"iterations={args.iterations} lambda=19 UniformAdam lr=3e-2")
    rows = [run(int(s), args) for s in args.subdivisions.split(",")]
    print()
    print(markdown_table(["vertices", "factor ms (once)", "render ms", "backward ms", "solve ms (fwd+bwd)",
                          "step ms", "iteration ms", "solve share"], rows))
    print(load_line("at end"))


if __name__ == "__main__":
    main()
