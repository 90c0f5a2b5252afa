"""Closest-hit ray throughput of raytrace's `scene.intersect` against Intel Embree (embreex).

For each mesh size (a bumpy cube-sphere, generated) and each ray set (coherent pinhole-camera
rays, incoherent random rays, and rays that miss the bounding box), the same rays go through

- Embree 4 via the `embreex` package: `EmbreeScene.run(origins, dirs, output=1)`. embreex
  4.4.0.post1 loops over the rays in Cython calling rtcIntersect1 one ray at a time on the
  calling thread, so its query figures are SINGLE-THREADED. (Embree's BVH build uses its own
  TBB pool over all cores.)
- raytrace's `scene.intersect(origins, dirs)`.

Both run in one worker process per raytrace thread count (RT_NUM_THREADS is set before raytrace
is imported), which times the two in alternation, so each ratio compares calls made within the
same few seconds: load from other work on the machine drifts too much between separate runs.

Reported: Mrays/s (median of --repeats calls), the ratio raytrace / Embree, BVH build time
(raytrace: Scene(...) plus a first one-ray intersect; Embree: EmbreeScene + TriangleMesh plus a
first one-ray query, which commits the scene), and how often both agree on hit/miss, on the
triangle hit and on t.

    python benchmarks/bench_trace.py                      # defaults: ~100k and ~1M triangles
    python benchmarks/bench_trace.py --sizes 100000 --rays 262144 --repeats 5 --threads 1,2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

# benchmarks/ for the helpers, then the repository root so that a raytrace built in place
# (python setup.py build_ext --inplace) is found when run as python benchmarks/<script>.py.
sys.path[:0] = [os.path.dirname(os.path.abspath(__file__)),
                os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
from common import load_line, machine_info, markdown_table, median  # noqa: E402
from scenes import camera_rays, cube_sphere, cube_sphere_n_for, random_rays  # noqa: E402

BUMP = 0.1
CAMERA = dict(position=(1.6, 1.3, 2.5), look_at=(0.0, 0.0, 0.0), up=(0.0, 1.0, 0.0), fov=45.0)
# t agrees when |t_raytrace - t_embree| <= T_RTOL * max(1, t_embree).
T_RTOL = 1e-4


RAY_SETS = ("camera", "random", "miss")


def make_rays(vertices: np.ndarray, num_rays: int, seed: int):
    """{'camera': (o, d), 'random': (o, d), 'miss': (o, d)}: a square pinhole grid of about
    num_rays rays looking at the mesh; num_rays random rays with origins in the mesh's bounding
    box; and num_rays rays that start outside the bounding box and point away from it, which
    measure the fixed cost per ray of each binding (no traversal beyond the root box)."""
    side = max(1, int(round(num_rays ** 0.5)))
    # Place the camera at the same direction, 3.2 radii from the centre.
    pos = np.asarray(CAMERA["position"], np.float64)
    pos = pos / np.linalg.norm(pos) * 3.2
    cam = camera_rays(pos, CAMERA["look_at"], CAMERA["up"], CAMERA["fov"], side, side)
    rnd = random_rays(num_rays, vertices.min(0), vertices.max(0), seed=seed)
    miss_o = np.tile(vertices.max(0) + 1.0, (num_rays, 1)).astype(np.float32)
    miss_d = np.tile(np.float32([1.0, 0.0, 0.0]), (num_rays, 1))
    return {"camera": cam, "random": rnd, "miss": (miss_o, miss_d)}


# ---------------------------------------------------------------------------------------------
# One worker process per raytrace thread count: RT_NUM_THREADS is set before raytrace is
# imported. Each worker times Embree and raytrace in alternation on the same rays, so that both
# figures of a ratio come from the same minutes on the machine (other load drifts between runs).
# ---------------------------------------------------------------------------------------------

def _embree_build(vertices, indices, probe, robust):
    """(scene, total seconds, commit seconds). run() commits the scene on its first call; embreex
    copies the mesh into Embree's buffers element by element, which takes longer than the BVH
    build itself, so the commit (the build proper) is timed on its own too."""
    from embreex import rtcore_scene
    from embreex.mesh_construction import TriangleMesh

    start = time.perf_counter()
    scene = rtcore_scene.EmbreeScene(robust=robust)
    TriangleMesh(scene, vertices, indices)
    mesh_done = time.perf_counter()
    scene.run(*probe, output=1)
    end = time.perf_counter()
    return scene, end - start, end - mesh_done


def _embree_hits(r):
    tri = r["primID"].astype(np.int64)
    hit = tri >= 0
    return np.where(hit, r["tfar"], np.inf).astype(np.float32), np.where(hit, tri, -1)


def worker(in_path: str, out_path: str, repeats: int, robust: bool) -> None:
    """Loads mesh and rays from in_path; times Embree and raytrace builds and queries; writes
    times and hits to out_path (keys embree_* and raytrace_*; *_error when one is missing)."""
    import torch

    data = np.load(in_path)
    rays = {name: (data[name + "_o"], data[name + "_d"]) for name in RAY_SETS}
    probe = (rays["camera"][0][:1].copy(), rays["camera"][1][:1].copy())
    out = {}

    try:
        embree, out["embree_build"], out["embree_commit"] = _embree_build(
            data["vertices"], data["indices"], probe, robust)
    except ImportError as e:
        embree, out["embree_error"] = None, np.str_(f"embreex unavailable: {e}")

    try:
        import raytrace as rt
    except Exception as e:  # not built yet, or broken
        scene, out["raytrace_error"] = None, np.str_(f"{type(e).__name__}: {e}")
    else:
        vertices = torch.from_numpy(data["vertices"])
        indices = torch.from_numpy(data["indices"])
        start = time.perf_counter()
        camera = rt.Camera(CAMERA["position"], CAMERA["look_at"], CAMERA["up"],
                           fov=CAMERA["fov"], resolution=(16, 16))
        scene = rt.Scene(camera=camera, shapes=[rt.Shape(vertices, indices, 0)],
                         materials=[rt.Material([0.5, 0.5, 0.5])], area_lights=[])
        scene.intersect(torch.from_numpy(probe[0]), torch.from_numpy(probe[1]))
        out["raytrace_build"] = time.perf_counter() - start
        builds_after_first = scene._stats.get("bvh_builds", -1)

    for name, (o, d) in rays.items():
        ot, dt = torch.from_numpy(o), torch.from_numpy(d)
        calls = []
        if embree is not None:
            calls.append(("embree", lambda: embree.run(o, d, output=1)))
        if scene is not None:
            calls.append(("raytrace", lambda: scene.intersect(ot, dt)))
        times = {k: [] for k, _ in calls}
        last = {}
        for rep in range(repeats):
            # Alternate the order so that neither side always runs first.
            for k, fn in (calls if rep % 2 == 0 else calls[::-1]):
                begin = time.perf_counter()
                last[k] = fn()
                times[k].append(time.perf_counter() - begin)
        for k in times:
            out[f"{k}_{name}_times"] = np.array(times[k])
        if "embree" in last:
            out[f"embree_{name}_t"], out[f"embree_{name}_tri"] = _embree_hits(last["embree"])
        if "raytrace" in last:
            out[f"raytrace_{name}_t"] = last["raytrace"]["t"].numpy().astype(np.float32)
            out[f"raytrace_{name}_tri"] = last["raytrace"]["triangle_id"].numpy().astype(np.int64)

    if scene is not None:
        # A rebuild or a refit during the timed calls would be charged to the query figures.
        out["bvh_builds_after_first"] = builds_after_first
        out["bvh_builds"] = scene._stats.get("bvh_builds", -1)
        out["bvh_refits"] = scene._stats.get("bvh_refits", -1)
    np.savez(out_path, **out)


def run_worker(in_path: str, threads: int, repeats: int, robust: bool, tmpdir: str):
    """Runs `worker` in a subprocess with RT_NUM_THREADS=threads. Returns
    {"embree": side, "raytrace": side, "stats": {...}}, where a side is an error string or
    {"build", ["commit"], set name: {"times", "t", "tri"}}."""
    out_path = os.path.join(tmpdir, f"worker_{threads}.npz")
    env = dict(os.environ, RT_NUM_THREADS=str(threads))
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", in_path, out_path,
           "--repeats", str(repeats)] + (["--embree-robust"] if robust else [])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        error = f"worker failed (exit {proc.returncode}): {tail[0]}"
        return {"embree": error, "raytrace": error, "stats": {}}
    data = dict(np.load(out_path))
    result = {"stats": {k: int(data[k]) for k in
                        ("bvh_builds_after_first", "bvh_builds", "bvh_refits") if k in data}}
    for side in ("embree", "raytrace"):
        if f"{side}_error" in data:
            result[side] = str(data[f"{side}_error"])
            continue
        r = {"build": float(data[f"{side}_build"])}
        if side == "embree":
            r["commit"] = float(data["embree_commit"])
        for name in RAY_SETS:
            r[name] = {"times": list(data[f"{side}_{name}_times"]),
                       "t": data[f"{side}_{name}_t"], "tri": data[f"{side}_{name}_tri"]}
        result[side] = r
    return result


# ---------------------------------------------------------------------------------------------
# Agreement
# ---------------------------------------------------------------------------------------------

def agreement(a, b):
    """(hit/miss agree %, same triangle % of rays both hit, t agrees % of rays both hit)."""
    hit_a, hit_b = a["tri"] >= 0, b["tri"] >= 0
    same_hit = (hit_a == hit_b).mean() * 100
    both = hit_a & hit_b
    if not both.any():
        return same_hit, float("nan"), float("nan")
    same_tri = (a["tri"][both] == b["tri"][both]).mean() * 100
    ta, tb = a["t"][both].astype(np.float64), b["t"][both].astype(np.float64)
    t_ok = (np.abs(ta - tb) <= T_RTOL * np.maximum(1.0, np.abs(tb))).mean() * 100
    return same_hit, same_tri, t_ok


# ---------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000",
                        help="comma-separated triangle counts (rounded to 12 n^2)")
    parser.add_argument("--rays", type=int, default=1024 * 1024,
                        help="rays per set (the camera grid is the nearest square)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per figure (median)")
    parser.add_argument("--threads", default="1,2", help="raytrace thread counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--embree-robust", action="store_true",
                        help="set RTC_SCENE_FLAG_ROBUST on the Embree scene")
    parser.add_argument("--worker", nargs=2, metavar=("IN", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], args.repeats, args.embree_robust)
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    thread_counts = [int(s) for s in args.threads.split(",")]
    print("# bench_trace")
    print(machine_info())
    print(f"settings: sizes={sizes} rays={args.rays} repeats={args.repeats} "
          f"raytrace threads={thread_counts} embree robust={args.embree_robust} bump={BUMP}")
    print("Embree (embreex) queries run single-threaded (one rtcIntersect1 per ray, in a Cython "
          "loop); its BVH build uses TBB on all cores. Each worker process (one per raytrace "
          "thread count) times Embree and raytrace in alternation; a ratio uses the Embree calls "
          "of its own worker, the Embree column all of them.\n")

    speed_rows, build_rows, agree_rows, notes = [], [], [], []
    fmt = lambda x: "n/a" if x is None else f"{x:.3f}"
    with tempfile.TemporaryDirectory(prefix="bench_trace_") as tmpdir:
        for size in sizes:
            n = cube_sphere_n_for(size)
            vertices, indices, _ = cube_sphere(n, bump=BUMP)
            rays = make_rays(vertices, args.rays, args.seed)
            num_tris = len(indices)
            print(f"mesh: {num_tris:,} triangles ({len(vertices):,} vertices); "
                  f"camera rays {len(rays['camera'][0]):,}, random rays {len(rays['random'][0]):,}",
                  flush=True)
            in_path = os.path.join(tmpdir, "input.npz")
            np.savez(in_path, vertices=vertices, indices=indices,
                     **{f"{k}_o": v[0] for k, v in rays.items()},
                     **{f"{k}_d": v[1] for k, v in rays.items()})

            results = {}
            for threads in thread_counts:
                results[threads] = run_worker(in_path, threads, args.repeats, args.embree_robust,
                                              tmpdir)
                for side in ("embree", "raytrace"):
                    if isinstance(results[threads][side], str):
                        print(f"  threads={threads}: {results[threads][side]}", flush=True)
            embree_runs = [r["embree"] for r in results.values() if not isinstance(r["embree"], str)]
            rt_ok = [t for t in thread_counts if not isinstance(results[t]["raytrace"], str)]

            # Build times (Embree: median over the workers).
            row = [f"{num_tris:,}",
                   fmt(median([e["build"] for e in embree_runs]) if embree_runs else None),
                   fmt(median([e["commit"] for e in embree_runs]) if embree_runs else None)]
            for threads in thread_counts:
                r = results[threads]
                row.append(fmt(r["raytrace"]["build"]) if threads in rt_ok else "n/a")
                st = r["stats"]
                if st and (st["bvh_builds"] != st["bvh_builds_after_first"] or st["bvh_refits"]):
                    notes.append(f"{num_tris:,} tris, {threads} thr: the timed intersect calls "
                                 f"rebuilt or refit the BVH ({st})")
            build_rows.append(row)

            # Throughput and agreement.
            for name in RAY_SETS:
                num_rays = len(rays[name][0])
                mrays = lambda times: num_rays / median(times) / 1e6
                e_all = [t for e in embree_runs for t in e[name]["times"]]
                row = [f"{num_tris:,}", name, f"{num_rays:,}",
                       f"{mrays(e_all):.2f}" if e_all else "n/a"]
                line = []
                for threads in thread_counts:
                    r = results[threads]
                    if threads not in rt_ok:
                        row += ["n/a", "n/a"]
                        continue
                    rt_mrays = mrays(r["raytrace"][name]["times"])
                    line.append(f"{threads} thr {rt_mrays:.2f}")
                    if isinstance(r["embree"], str):
                        row += [f"{rt_mrays:.2f}", "n/a"]
                        continue
                    ratio = rt_mrays / mrays(r["embree"][name]["times"])
                    row += [f"{rt_mrays:.2f}", f"{ratio:.2f}"]
                    same_hit, same_tri, t_ok = agreement(r["raytrace"][name], r["embree"][name])
                    agree_rows.append([f"{num_tris:,}", name, threads] + [
                        "-" if np.isnan(x) else f"{x:.3f}" for x in (same_hit, same_tri, t_ok)])
                speed_rows.append(row)
                print(f"  {name}: embree {row[3]} Mrays/s; raytrace " + ", ".join(line),
                      flush=True)

            # Determinism across thread counts.
            for t in rt_ok[1:]:
                for name in RAY_SETS:
                    a, b = results[rt_ok[0]]["raytrace"][name], results[t]["raytrace"][name]
                    if not (np.array_equal(a["tri"], b["tri"]) and np.array_equal(a["t"], b["t"])):
                        notes.append(f"{num_tris:,} tris, {name}: raytrace hits differ between "
                                     f"{rt_ok[0]} and {t} threads")

    header = ["triangles", "rays", "count", "Embree 1 thr Mrays/s"]
    for t in thread_counts:
        header += [f"raytrace {t} thr Mrays/s", f"ratio rt{t}/Embree"]
    print("\n## Closest-hit throughput (median of %d calls)\n" % args.repeats)
    print(markdown_table(header, speed_rows))
    print("\n## BVH build (s): scene construction + a first one-ray query\n")
    print("(Embree total includes embreex's element-by-element mesh copy; 'commit only' is "
          "Embree's BVH build.)\n")
    print(markdown_table(["triangles", "Embree total", "Embree commit only (TBB, all cores)"]
                         + [f"raytrace {t} thr" for t in thread_counts], build_rows))
    print("\n## Agreement with Embree (%% of rays; t within %g relative)\n" % T_RTOL)
    print(markdown_table(["triangles", "rays", "raytrace thr", "hit/miss agree %",
                          "same triangle % (both hit)", "t agrees % (both hit)"], agree_rows))
    print("\n" + load_line("at end"))
    if notes:
        print("\nNotes:")
        for note in notes:
            print(" - " + note)


if __name__ == "__main__":
    main()
