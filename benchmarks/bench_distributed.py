"""Multi-view fitting on torch.distributed: time per iteration on 1, 2 and 4 processes, and a
projection to many views and machines (issue 13).

The fit is tutorial 10's iteration: a Large Steps mesh (an icosphere of --subdivisions, 4 ->
2,562 vertices) against the teapot, --views views (default 16) at --resolution (64) x 64,
--spp 2, max_bounces=1, three lights per view; the gradient summed over the views with
rt.distributed.sum_gradients (exact: the ordered tree sum), the solve on every rank, a
UniformAdam step. For each process count N (--procs, default 1,2,4) the script launches
``torchrun --standalone --nproc_per_node=N`` with ``RT_NUM_THREADS = max(1, cores // N)``
(torch's threads 1), so the cores are not oversubscribed, and measures on every rank:

- the iteration (median of --iterations after one warm-up), and the time the rank spent in
  its views (render + backward), its largest over the ranks;
- the gradient reduction alone, exact (all_gather of the subtree sums, then the tree) and fast
  (one all_reduce), at the mesh's size and at 100,000 vertices (--big-vertices);
- the Laplacian solve (x = M^-1 u, then grad_u = M^-1 grad_x) on every rank, against on rank
  0 with x and grad_u broadcast, at the mesh's size and at 40,962 vertices.

It then prints a projection for 64 and 1,024 views on 1 to 64 machines like this one (2 ranks
of one thread each), with the model and the network figures it assumes (printed).

    python benchmarks/bench_distributed.py
    python benchmarks/bench_distributed.py --procs 1,2 --iterations 2
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]
from common import load_line, machine_info, markdown_table  # noqa: E402

LATENCY_S = 50e-6          # assumed network latency per message
BANDWIDTH_BPS = 10e9 / 8   # assumed link bandwidth: 10 Gb/s, in bytes per second
RANKS_PER_MACHINE = 2      # machines like this one: 2 cores, 2 ranks of one thread


# ------------------------------------------------------------------------------------------------
# Worker (one rank of a torchrun job)
# ------------------------------------------------------------------------------------------------
def worker(args) -> None:
    import importlib.util
    import torch
    import torch.distributed as dist
    import raytrace as rt
    rtd = rt.distributed

    setup = rtd.init(threads=int(os.environ["RT_NUM_THREADS"]))
    torch.set_num_threads(1)
    spec = importlib.util.spec_from_file_location("t07", REPO / "tutorials" / "07_shape_reconstruction.py")
    t07 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(t07)
    V = args.views
    views = t07.Views(t07.view_directions(V), args.resolution)
    tv, tf, tn = t07.make_target("teapot", quick=True)
    share = rtd.shard_views(V, setup.rank, setup.world_size)
    with torch.no_grad():
        targets = {i: rt.render(views.scene(i, tv, tf, tn), spp=16, seed=i, threads=setup.threads) for i in share}
    mesh = rt.sphere(radius=0.75, subdivisions=args.subdivisions)
    faces = mesh.indices
    M = rt.optim.compute_matrix(mesh.vertices, faces, lambda_=19.0)
    u = rt.optim.to_differential(M, mesh.vertices).detach().requires_grad_()
    opt = rt.optim.UniformAdam([u], lr=0.1)

    # The iteration. A rank's view time runs from the start of sum_gradients until it enters
    # the all_gather (its renders, backward passes and subtree sums).
    marks = {}
    all_gather = dist.all_gather

    def timed_all_gather(*a, **k):
        marks["enter"] = time.perf_counter()
        return all_gather(*a, **k)

    dist.all_gather = timed_all_gather
    iteration_s, view_s = [], []
    for it in range(args.iterations + 1):
        if setup.world_size > 1:
            dist.barrier()
        t0 = time.perf_counter()
        x = rt.optim.from_differential(M, u)
        x_leaf = x.detach().requires_grad_()

        def view_loss(i):
            image = rt.render(views.scene(i, x_leaf, faces), spp=args.spp, seed=rtd.view_seed(0, it, i),
                              threads=setup.threads)
            return (image - targets[i]).square().mean() / V

        marks.clear()
        s = time.perf_counter()
        (g,), _ = rtd.sum_gradients(view_loss, V, [x_leaf])
        e = time.perf_counter()
        opt.zero_grad()
        x.backward(g)
        opt.step()
        if it > 0:
            iteration_s.append(time.perf_counter() - t0)
            view_s.append(marks.get("enter", e) - s)
    dist.all_gather = all_gather

    # The reductions alone
    def reduction(n_floats: int, reps: int) -> dict:
        if setup.world_size == 1:
            return {"exact_s": 0.0, "fast_s": 0.0, "exact_bytes": 0, "fast_bytes": 0}
        nodes = max(len(rtd._nodes(V, r, setup.world_size)) for r in range(setup.world_size))
        send = torch.randn(nodes, n_floats)
        recv = [torch.empty_like(send) for _ in range(setup.world_size)]
        flat = torch.randn(n_floats)
        out = {}
        for name, fn in (("exact", lambda: dist.all_gather(recv, send)), ("fast", lambda: dist.all_reduce(flat))):
            fn()
            dist.barrier()
            t = time.perf_counter()
            for _ in range(reps):
                fn()
            out[f"{name}_s"] = (time.perf_counter() - t) / reps
        out["exact_bytes"], out["fast_bytes"] = 4 * nodes * n_floats, 4 * n_floats
        return out

    small = reduction(3 * mesh.vertices.shape[0] + 1, 20)
    big = reduction(3 * args.big_vertices + 1, 5)

    # The solve: on every rank, or on rank 0 and broadcast
    def solve_times(subdivisions: int, reps: int) -> dict:
        m = rt.sphere(subdivisions=subdivisions)
        Mb = rt.optim.compute_matrix(m.vertices, m.indices, lambda_=19.0)
        ub = rt.optim.to_differential(Mb, m.vertices).detach()
        grad = torch.randn_like(ub)
        if setup.world_size > 1:
            dist.barrier()
        t = time.perf_counter()
        for _ in range(reps):
            xb = Mb.solve(ub)
            gu = Mb.solve(grad)
        every = (time.perf_counter() - t) / reps
        one = every
        if setup.world_size > 1:
            dist.barrier()
            t = time.perf_counter()
            for _ in range(reps):
                xb = Mb.solve(ub) if setup.rank == 0 else torch.empty_like(ub)
                dist.broadcast(xb, 0)
                gu = Mb.solve(grad) if setup.rank == 0 else torch.empty_like(ub)
                dist.broadcast(gu, 0)
            one = (time.perf_counter() - t) / reps
        return {"vertices": int(m.vertices.shape[0]), "every_rank_s": every, "rank0_broadcast_s": one}

    solves = [solve_times(args.subdivisions, 20), solve_times(6, 5)]

    # Gather every rank's figures on rank 0
    mine = {"iteration_s": statistics.median(iteration_s), "view_s": statistics.median(view_s),
            "views": len(share), "small": small, "big": big, "solves": solves}
    got = [None] * setup.world_size
    if setup.world_size > 1:
        dist.all_gather_object(got, mine)
    else:
        got = [mine]
    if setup.rank == 0:
        with open(args.result, "w") as f:
            json.dump({"world": setup.world_size, "threads": setup.threads, "vertices": int(mesh.vertices.shape[0]),
                       "ranks": got}, f)
    rtd.finalize()


# ------------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------------
def launch(n: int, args) -> dict:
    cores = os.cpu_count() or 1
    env = dict(os.environ, RT_NUM_THREADS=str(max(1, cores // n)), OMP_NUM_THREADS="1",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}", __file__,
               "--worker", "--result", str(result), "--views", str(args.views), "--resolution", str(args.resolution),
               "--spp", str(args.spp), "--iterations", str(args.iterations), "--subdivisions", str(args.subdivisions),
               "--big-vertices", str(args.big_vertices)]
        t = time.perf_counter()
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"{n} processes failed:\n{r.stderr[-4000:]}")
        out = json.loads(result.read_text())
        out["wall_s"] = time.perf_counter() - t
        return out


def ring_all_gather_s(ranks: int, bytes_per_rank: float) -> float:
    """Ring all_gather: ranks - 1 steps, each sending one rank's block."""
    return (ranks - 1) * (LATENCY_S + bytes_per_rank / BANDWIDTH_BPS)


def ring_all_reduce_s(ranks: int, nbytes: float) -> float:
    """Ring all_reduce (reduce-scatter, then all_gather): 2 (ranks - 1) steps of nbytes / ranks."""
    return 2 * (ranks - 1) * (LATENCY_S + nbytes / ranks / BANDWIDTH_BPS)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--procs", default="1,2,4")
    p.add_argument("--views", type=int, default=16)
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--spp", type=int, default=2)
    p.add_argument("--subdivisions", type=int, default=4)
    p.add_argument("--iterations", type=int, default=3)
    p.add_argument("--big-vertices", type=int, default=100_000)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return

    print("# bench_distributed")
    print(machine_info())
    print(f"settings: views={args.views} resolution={args.resolution}x{args.resolution} spp={args.spp} "
          f"max_bounces=1 mesh=icosphere({args.subdivisions}) iterations={args.iterations} (median, after a warm-up) "
          f"exact sum; RT_NUM_THREADS=max(1, {os.cpu_count()} // N), OMP_NUM_THREADS=1")
    runs = {}
    for n in [int(x) for x in args.procs.split(",")]:
        runs[n] = launch(n, args)
        r = runs[n]
        print(f"N={n}: iteration {max(x['iteration_s'] for x in r['ranks']):.3f} s, views "
              f"{max(x['view_s'] for x in r['ranks']):.3f} s (largest rank), job {r['wall_s']:.1f} s", flush=True)

    # Iteration times
    base = max(x["iteration_s"] for x in runs[min(runs)]["ranks"])
    rows = []
    for n, r in runs.items():
        it = max(x["iteration_s"] for x in r["ranks"])
        views = max(x["view_s"] for x in r["ranks"])
        rows.append([n, r["threads"], f"{it * 1e3:.0f}", f"{views * 1e3:.0f}", f"{(it - views) * 1e3:.0f}",
                     f"{base / it:.2f}x", f"{views / max(x['views'] for x in r['ranks']) * 1e3:.0f}"])
    print()
    print(markdown_table(["processes", "threads each", "iteration ms", "views ms (largest rank)",
                          "rest ms (solve, reduction, step)", "speed-up", "ms per view (one rank)"], rows))

    # Reductions and solves
    rows = []
    for n, r in runs.items():
        if n == 1:
            continue
        r0 = r["ranks"][0]
        for label, key, verts in (("mesh", "small", r["vertices"]), ("big", "big", args.big_vertices)):
            red = r0[key]
            rows.append([n, f"{verts:,}", f"{red['exact_bytes'] / 1e6:.3f}", f"{red['exact_s'] * 1e3:.2f}",
                         f"{red['fast_bytes'] / 1e6:.3f}", f"{red['fast_s'] * 1e3:.2f}"])
    if rows:
        print()
        print(markdown_table(["processes", "vertices", "exact: MB sent per rank", "exact ms (all_gather)",
                              "fast: MB per rank", "fast ms (all_reduce)"], rows))
    rows = []
    for n, r in runs.items():
        for s in r["ranks"][0]["solves"]:
            rows.append([n, f"{s['vertices']:,}", f"{s['every_rank_s'] * 1e3:.2f}",
                         "-" if n == 1 else f"{s['rank0_broadcast_s'] * 1e3:.2f}"])
    print()
    print(markdown_table(["processes", "vertices", "solve on every rank ms (fwd+bwd)",
                          "solve on rank 0 + 2 broadcasts ms"], rows))

    # Projection
    two = runs.get(RANKS_PER_MACHINE, runs[min(runs)])
    per_view = max(x["view_s"] / max(1, x["views"]) for x in two["ranks"])  # one rank of one thread, beside another
    one = runs[min(runs)]["ranks"][0]
    fixed = one["iteration_s"] - one["view_s"]  # solve, step, the per-iteration Python work, at N=1
    vertices = runs[min(runs)]["vertices"]
    print()
    print(f"projection: machines like this one, {RANKS_PER_MACHINE} ranks of one thread each; per view "
          f"{per_view * 1e3:.0f} ms (one rank's view time at N={RANKS_PER_MACHINE} / its views); fixed "
          f"{fixed * 1e3:.0f} ms per iteration (N=1: iteration - views); network: {LATENCY_S * 1e6:.0f} us latency, "
          f"{BANDWIDTH_BPS * 8 / 1e9:.0f} Gb/s per rank, ring all_gather (exact) and ring all_reduce (fast); "
          f"gradient of {vertices:,} vertices and of {args.big_vertices:,}")
    print("T(V, m) = ceil(V / (2 m)) * per_view + fixed + reduction(2 m ranks)")
    from raytrace.distributed import _nodes
    rows = []
    for V in (64, 1024):
        for m in (1, 2, 4, 8, 16, 32, 64):
            ranks = RANKS_PER_MACHINE * m
            views_each = math.ceil(V / ranks)
            nodes = max(len(_nodes(V, r, ranks)) for r in range(ranks))
            cells = [V, m, views_each]
            small_exact = None
            for verts in (vertices, args.big_vertices):
                size = 4 * (3 * verts + 1)
                exact = ring_all_gather_s(ranks, nodes * size)
                fast = ring_all_reduce_s(ranks, size)
                t_exact = views_each * per_view + fixed + exact
                t_fast = views_each * per_view + fixed + fast
                cells += [f"{t_exact:.3f}", f"{t_fast:.3f}", f"{exact * 1e3:.1f} / {fast * 1e3:.1f}"]
                small_exact = t_exact if small_exact is None else small_exact
            one_machine = math.ceil(V / RANKS_PER_MACHINE) * per_view + fixed
            cells.append(f"{one_machine / small_exact:.1f}x")
            rows.append(cells)
    print()
    print(markdown_table(["views", "machines", "views per rank",
                          f"s/it exact ({vertices:,} v)", "s/it fast", "reduction ms exact / fast",
                          f"s/it exact ({args.big_vertices:,} v)", "s/it fast", "reduction ms exact / fast",
                          "speed-up (exact, small mesh)"], rows))
    print(load_line("at end"))


if __name__ == "__main__":
    main()
