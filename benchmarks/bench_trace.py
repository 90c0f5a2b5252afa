"""Closest-hit ray throughput of raytrace's `scene.intersect` against Intel Embree (embreex).

For each mesh size (a bumpy cube-sphere, generated) and each ray set (coherent pinhole-camera
rays and incoherent random rays), the same rays go through

- Embree 4 via the `embreex` package, in this process: `EmbreeScene.run(origins, dirs,
  output=1)`. embreex 4.4.0.post1 loops over the rays in Cython calling rtcIntersect1 one ray at
  a time on the calling thread, so its query figures are SINGLE-THREADED. (Embree's BVH build
  uses its own TBB pool over all cores.)
- raytrace, in one worker process per thread count (RT_NUM_THREADS is set before raytrace is
  imported), `scene.intersect(origins, dirs)`.

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
from common import machine_info, markdown_table, median, time_calls  # noqa: E402
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
# Embree (in this process)
# ---------------------------------------------------------------------------------------------

def run_embree(vertices, indices, rays, repeats, robust):
    from embreex import rtcore_scene
    from embreex.mesh_construction import TriangleMesh

    # Build: scene + mesh + a first query (run() commits the scene on its first call). embreex
    # copies the mesh into Embree's buffers element by element, which takes longer than the
    # BVH build itself, so the commit (the build proper) is also timed on its own.
    start = time.perf_counter()
    scene = rtcore_scene.EmbreeScene(robust=robust)
    TriangleMesh(scene, vertices, indices)
    mesh_done = time.perf_counter()
    o, d = rays["camera"]
    scene.run(o[:1].copy(), d[:1].copy(), output=1)
    end = time.perf_counter()

    out = {"build": end - start, "commit": end - mesh_done}
    for name, (o, d) in rays.items():
        result = {}

        def call():
            result["r"] = scene.run(o, d, output=1)

        out[name] = {"times": time_calls(call, repeats)}
        r = result["r"]
        t = r["tfar"].astype(np.float32)
        tri = r["primID"].astype(np.int64)
        hit = tri >= 0
        t[~hit] = np.inf
        out[name].update(t=t, tri=np.where(hit, tri, -1))
    return out


# ---------------------------------------------------------------------------------------------
# raytrace (in a worker process, so that RT_NUM_THREADS is read before the import)
# ---------------------------------------------------------------------------------------------

def worker(in_path: str, out_path: str, repeats: int) -> None:
    """Loads mesh and rays from in_path, times raytrace, writes times and hits to out_path."""
    import torch
    import raytrace as rt

    data = np.load(in_path)
    vertices = torch.from_numpy(data["vertices"])
    indices = torch.from_numpy(data["indices"])
    rays = {name: (torch.from_numpy(data[name + "_o"]), torch.from_numpy(data[name + "_d"]))
            for name in RAY_SETS}

    start = time.perf_counter()
    camera = rt.Camera(CAMERA["position"], CAMERA["look_at"], CAMERA["up"], fov=CAMERA["fov"],
                       resolution=(16, 16))
    scene = rt.Scene(camera=camera, shapes=[rt.Shape(vertices, indices, 0)],
                     materials=[rt.Material([0.5, 0.5, 0.5])], area_lights=[])
    o, d = rays["camera"]
    scene.intersect(o[:1].clone(), d[:1].clone())
    build = time.perf_counter() - start
    stats_after_build = dict(getattr(scene, "_stats", {}))

    out = {"build": np.float64(build)}
    for name, (o, d) in rays.items():
        result = {}

        def call():
            result["r"] = scene.intersect(o, d)

        out[name + "_times"] = np.array(time_calls(call, repeats))
        r = result["r"]
        out[name + "_t"] = r["t"].numpy().astype(np.float32)
        out[name + "_tri"] = r["triangle_id"].numpy().astype(np.int64)
    stats = dict(getattr(scene, "_stats", {}))
    # A second build or a refit during the timed calls would be charged to the query figures.
    out["bvh_builds"] = np.int64(stats.get("bvh_builds", -1))
    out["bvh_refits"] = np.int64(stats.get("bvh_refits", -1))
    out["bvh_builds_after_first"] = np.int64(stats_after_build.get("bvh_builds", -1))
    np.savez(out_path, **out)


def run_raytrace(in_path: str, threads: int, repeats: int, tmpdir: str):
    """Runs `worker` in a subprocess with RT_NUM_THREADS=threads; returns its results or an
    error string."""
    out_path = os.path.join(tmpdir, f"raytrace_{threads}.npz")
    env = dict(os.environ, RT_NUM_THREADS=str(threads))
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", in_path,
                           out_path, "--repeats", str(repeats)], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        return f"raytrace failed (exit {proc.returncode}): {tail[0]}"
    data = dict(np.load(out_path))
    out = {"build": float(data["build"]), "stats": {
        k: int(data[k]) for k in ("bvh_builds_after_first", "bvh_builds", "bvh_refits")}}
    for name in RAY_SETS:
        out[name] = {"times": list(data[name + "_times"]), "t": data[name + "_t"],
                     "tri": data[name + "_tri"]}
    return out


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
        worker(args.worker[0], args.worker[1], args.repeats)
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    thread_counts = [int(s) for s in args.threads.split(",")]
    print("# bench_trace")
    print(machine_info())
    print(f"settings: sizes={sizes} rays={args.rays} repeats={args.repeats} "
          f"raytrace threads={thread_counts} embree robust={args.embree_robust} bump={BUMP}")
    print("Embree (embreex) queries run single-threaded (one rtcIntersect1 per ray, in a Cython "
          "loop); its BVH build uses TBB on all cores.\n")

    speed_rows, build_rows, agree_rows, notes = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench_trace_") as tmpdir:
        for size in sizes:
            n = cube_sphere_n_for(size)
            vertices, indices, _ = cube_sphere(n, bump=BUMP)
            rays = make_rays(vertices, args.rays, args.seed)
            num_tris = len(indices)
            print(f"mesh: {num_tris:,} triangles ({len(vertices):,} vertices); "
                  f"camera rays {len(rays['camera'][0]):,}, random rays {len(rays['random'][0]):,}",
                  flush=True)

            embree = run_embree(vertices, indices, rays, args.repeats, args.embree_robust)

            in_path = os.path.join(tmpdir, "input.npz")
            np.savez(in_path, vertices=vertices, indices=indices,
                     **{f"{k}_o": v[0] for k, v in rays.items()},
                     **{f"{k}_d": v[1] for k, v in rays.items()})
            results = {}
            for threads in thread_counts:
                results[threads] = run_raytrace(in_path, threads, args.repeats, tmpdir)
                if isinstance(results[threads], str):
                    print(f"  threads={threads}: {results[threads]}", flush=True)

            # Build times.
            row = [f"{num_tris:,}", f"{embree['build']:.3f}", f"{embree['commit']:.3f}"]
            for threads in thread_counts:
                r = results[threads]
                row.append("n/a" if isinstance(r, str) else f"{r['build']:.3f}")
                if not isinstance(r, str):
                    s = r["stats"]
                    if s["bvh_builds"] != s["bvh_builds_after_first"] or s["bvh_refits"] > 0:
                        notes.append(f"{num_tris:,} tris, {threads} thr: the timed intersect calls "
                                     f"rebuilt or refit the BVH ({s})")
            build_rows.append(row)

            # Throughput and agreement.
            for name in RAY_SETS:
                num_rays = len(rays[name][0])
                e_time = median(embree[name]["times"])
                e_mrays = num_rays / e_time / 1e6
                row = [f"{num_tris:,}", name, f"{num_rays:,}", f"{e_mrays:.2f}"]
                for threads in thread_counts:
                    r = results[threads]
                    if isinstance(r, str):
                        row += ["n/a", "n/a"]
                        continue
                    mrays = num_rays / median(r[name]["times"]) / 1e6
                    row += [f"{mrays:.2f}", f"{mrays / e_mrays:.2f}"]
                    same_hit, same_tri, t_ok = agreement(r[name], embree[name])
                    agree_rows.append([f"{num_tris:,}", name, threads] + [
                        "-" if np.isnan(x) else f"{x:.3f}" for x in (same_hit, same_tri, t_ok)])
                speed_rows.append(row)
                print(f"  {name}: embree {e_mrays:.2f} Mrays/s; raytrace " + ", ".join(
                    f"{t} thr {num_rays / median(results[t][name]['times']) / 1e6:.2f}"
                    for t in thread_counts if not isinstance(results[t], str)), flush=True)

            # Determinism across thread counts.
            ok = [t for t in thread_counts if not isinstance(results[t], str)]
            for t in ok[1:]:
                for name in RAY_SETS:
                    a, b = results[ok[0]][name], results[t][name]
                    if not (np.array_equal(a["tri"], b["tri"]) and np.array_equal(a["t"], b["t"])):
                        notes.append(f"{num_tris:,} tris, {name}: raytrace hits differ between "
                                     f"{ok[0]} and {t} threads")

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
    if notes:
        print("\nNotes:")
        for note in notes:
            print(" - " + note)


if __name__ == "__main__":
    main()
