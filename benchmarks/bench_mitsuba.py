"""Mitsuba 3 on the reference scene of benchmarks/scenes.py, for comparison with raytrace.

The scene is the one of `reference_scene(resolution)`, rebuilt in Mitsuba from the same arrays,
in memory (nothing is written to disk):

- the sphere: `reference_sphere_mesh()` (the unwelded cube-sphere of 10,092 triangles, as
  bench_cuda.py's Fit uses), with its smooth vertex normals, diffuse reflectance [0.7, 0.45, 0.3];
- the 10 x 10 ground at y = -1, diffuse 0.5 (face normals, +y);
- the 1 x 1 area light at y = 3, radiance 20, one-sided, facing -y: Mitsuba's `area` emitter
  emits on the side of the face normal, cross(v1 - v0, v2 - v0), the same convention as
  raytrace.AreaLight; the triangles are those of reference_scene, so the light faces down;
- the camera of REFERENCE_CAMERA: a pinhole `perspective` sensor built with look_at (y up).
  raytrace's fov is horizontal, hence `fov_axis: "x"`; raytrace's pixel filter is a box over
  the pixel, hence `rfilter: box`; the film is `hdrfilm` in rgb (no alpha), sampler
  `independent`.

Light transport is direct lighting only, as raytrace's max_bounces=1 (emitters seen directly,
plus one bounce towards the light, with emitter and BSDF sampling):

- forward: the `direct_projective` integrator (its primal pass, gradients suspended);
- forward+backward: `prb_projective` with max_depth=2 (rr_depth=2: no Russian roulette), and
  the loss of bench_grad.py / bench_cuda.py: mean((image - target)^2) w.r.t. the sphere's
  vertex positions, the target being one image rendered once (16 spp, seed 1, as raytrace's).
  Mitsuba's projective integrators estimate the interior (continuous) term with `spp` samples
  per pixel and the primary-visibility (silhouette) term with `spp` samples per pixel (sppc and
  sppp follow the `spp` of mi.render). The indirect-visibility term (shadow edges, what raytrace
  calls secondary edges) is switched off with sppi=0 by default (--sppi N turns it on; it then
  also builds a guided octree at each call, which costs much more): so by default Mitsuba does
  less work here than raytrace's full gradient (interior, primary and secondary edges).

Each figure is the median of `repeats` calls after one warm-up call (the warm-up also compiles
Dr.Jit's kernels, which are cached for the later calls); the clock stops after dr.eval of the
outputs and dr.sync_thread(). The geometry does not change between calls (no BVH rebuild),
as in bench_cuda.py.

A sanity line compares the mean radiance of Mitsuba's forward image with raytrace's
(rt.render(reference_scene(res), spp, max_bounces=1)) at the first case: the two should agree
to within a few percent (Monte Carlo noise only).

Mitsuba is optional: where it cannot be imported, or the variant cannot be set (no GPU, no
OptiX in the driver for cuda_* variants, no LLVM for llvm_*), one line "mitsuba: SKIPPED
(reason)" is printed and no rows are returned. A later failure prints "mitsuba: FAILED (...)"
and returns the rows measured so far. The llvm_* variants need libLLVM >= 16 (LLVM 15 aborts on
these kernels; DRJIT_LIBLLVM_PATH selects the library).

    python benchmarks/bench_mitsuba.py                          # cuda_ad_rgb, the full cases
    python benchmarks/bench_mitsuba.py --out mitsuba.md
    DRJIT_LIBLLVM_PATH=/path/to/libLLVM.so python benchmarks/bench_mitsuba.py --variant llvm_ad_rgb --quick
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import List, Optional, Sequence, Tuple

import numpy as np

sys.path[:0] = [os.path.dirname(os.path.abspath(__file__)),
                os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
from common import markdown_table, median  # noqa: E402
from scenes import REFERENCE_CAMERA, reference_sphere_mesh  # noqa: E402

CASES = [((256, 256), 16), ((256, 256), 64), ((1024, 1024), 16), ((1024, 1024), 64)]
QUICK_CASES = [((64, 64), 4)]

SPHERE_ALBEDO = [0.7, 0.45, 0.3]
GROUND_ALBEDO = [0.5, 0.5, 0.5]
LIGHT_RADIANCE = [20.0, 20.0, 20.0]
# The quads of reference_scene (two triangles each, (0, 1, 2) and (0, 2, 3)).
GROUND_VERTICES = [[-5, -1, -5], [-5, -1, 5], [5, -1, 5], [5, -1, -5]]  # normal +y
LIGHT_VERTICES = [[-0.5, 3, -0.5], [0.5, 3, -0.5], [0.5, 3, 0.5], [-0.5, 3, 0.5]]  # normal -y
QUAD_FACES = [[0, 1, 2], [0, 2, 3]]

TARGET_SPP, TARGET_SEED = 16, 1  # the target image of the loss, as bench_cuda.py's Fit
SPHERE_KEY = "sphere.vertex_positions"


def _load_mitsuba(variant: str):
    """(mi, dr), or raises with a readable reason."""
    import drjit as dr
    import mitsuba as mi

    if variant not in mi.variants():
        raise RuntimeError(f"variant {variant} not in this build ({', '.join(mi.variants())})")
    mi.set_variant(variant)  # raises ImportError when the backend (CUDA, LLVM) cannot start
    backend = dr.JitBackend.CUDA if variant.startswith("cuda") else \
        dr.JitBackend.LLVM if variant.startswith("llvm") else None
    if backend is not None and not dr.has_backend(backend):
        raise RuntimeError(f"Dr.Jit backend {backend.name} unavailable")
    if backend == dr.JitBackend.LLVM and dr.detail.llvm_version() < (16,):
        # LLVM 15.0.6 (Debian 12's libLLVM-15) aborts the process on the projective integrators'
        # kernels ("Cannot select: fmaximum"); LLVM 22 works. Point Dr.Jit at a newer one.
        raise RuntimeError(f"LLVM {'.'.join(map(str, dr.detail.llvm_version()))} is too old for these "
                           "kernels: set DRJIT_LIBLLVM_PATH to libLLVM >= 16")
    # Creating a scene starts the ray tracing backend (OptiX for cuda_* variants, from the NVIDIA
    # driver's libnvoptix.so.1): fail here, as a skip, rather than in the middle of the cases.
    probe = mi.load_dict({"type": "scene",
                          "probe": _mesh(mi, "probe", LIGHT_VERTICES, QUAD_FACES, _diffuse(GROUND_ALBEDO))})
    hit = probe.ray_intersect(mi.Ray3f(mi.Point3f(0, 0, 0), mi.Vector3f(0, 1, 0)))
    dr.eval(hit.t)
    return mi, dr


def _diffuse(rgb) -> dict:
    # An explicit rgb reflectance, as raytrace.Material's (in the rgb variants, an "rgb" value
    # is the srgb plugin; the reflectance's default would load one more, "uniform").
    return {"type": "diffuse", "reflectance": {"type": "rgb", "value": list(rgb)}}


def _mesh(mi, name: str, vertices, faces, bsdf: dict, normals=None, emitter: Optional[dict] = None):
    """A mi.Mesh filled from arrays (float32 [N, 3] positions and normals, int [M, 3] faces)."""
    vertices = np.ascontiguousarray(vertices, np.float32)
    faces = np.ascontiguousarray(faces, np.uint32)
    props = mi.Properties()
    props["bsdf"] = mi.load_dict(bsdf)
    if emitter is not None:
        props["emitter"] = mi.load_dict(emitter)
    mesh = mi.Mesh(name, len(vertices), len(faces), props=props, has_vertex_normals=normals is not None)
    params = mi.traverse(mesh)
    params["vertex_positions"] = mi.Float(vertices.ravel())
    params["faces"] = mi.UInt32(faces.ravel())
    if normals is not None:
        params["vertex_normals"] = mi.Float(np.ascontiguousarray(normals, np.float32).ravel())
    params.update()
    return mesh


def build_scene(mi, resolution: Tuple[int, int]):
    """The Mitsuba twin of scenes.reference_scene(resolution) (see the module docstring)."""
    height, width = resolution
    vertices, faces, normals = reference_sphere_mesh()
    cam = REFERENCE_CAMERA
    return mi.load_dict({
        "type": "scene",
        "sensor": {
            "type": "perspective",
            # raytrace: fov is the horizontal angle; vertical extent scaled by H / W.
            "fov": cam["fov"],
            "fov_axis": "x",
            "near_clip": 1e-3,
            "far_clip": 1e4,
            "to_world": mi.ScalarTransform4f().look_at(origin=list(cam["position"]),
                                                       target=list(cam["look_at"]),
                                                       up=list(cam["up"])),
            "film": {
                "type": "hdrfilm",
                "width": width,
                "height": height,
                "pixel_format": "rgb",
                "rfilter": {"type": "box"},  # raytrace averages samples uniform in the pixel
            },
            "sampler": {"type": "independent", "sample_count": TARGET_SPP},
        },
        "sphere": _mesh(mi, "sphere", vertices, faces, _diffuse(SPHERE_ALBEDO), normals=normals),
        "ground": _mesh(mi, "ground", GROUND_VERTICES, QUAD_FACES, _diffuse(GROUND_ALBEDO)),
        # A black diffuse BSDF as raytrace's Material([0, 0, 0]) of the light.
        "light": _mesh(mi, "light", LIGHT_VERTICES, QUAD_FACES, _diffuse([0.0, 0.0, 0.0]),
                       emitter={"type": "area", "radiance": {"type": "rgb", "value": LIGHT_RADIANCE}}),
    })


def _timed(dr, fn, repeats: int) -> float:
    """Median seconds of `repeats` calls of fn after one warm-up; fn evaluates its outputs."""
    fn()
    dr.sync_thread()
    times = []
    for _ in range(repeats):
        dr.sync_thread()
        start = time.perf_counter()
        fn()
        dr.sync_thread()
        times.append(time.perf_counter() - start)
    return median(times)


class MitsubaFit:
    """The reference scene in Mitsuba, with bench_cuda.py's loss w.r.t. the sphere's vertices."""

    def __init__(self, mi, dr, resolution, sppi: int = 0):
        self.mi, self.dr = mi, dr
        self.scene = build_scene(mi, resolution)
        self.forward_integrator = mi.load_dict({"type": "direct_projective"})
        backward = {"type": "prb_projective", "max_depth": 2, "rr_depth": 2}
        if sppi == 0:
            backward["sppi"] = 0  # no indirect (shadow-edge) visibility term; see the docstring
        self.backward_integrator = mi.load_dict(backward)
        # The sphere stays inside the frame: no need for the film's sample_border, so the
        # warning about it is silenced.
        self.backward_integrator.sample_border_warning = False
        self.params = mi.traverse(self.scene)
        with dr.suspend_grad():
            self.target = mi.render(self.scene, integrator=self.forward_integrator, spp=TARGET_SPP,
                                    seed=TARGET_SEED)
            dr.eval(self.target)
        self.image = None

    def forward(self, spp: int):
        with self.dr.suspend_grad():
            self.image = self.mi.render(self.scene, integrator=self.forward_integrator, spp=spp, seed=0)
            self.dr.eval(self.image)

    def step(self, spp: int):
        dr, params = self.dr, self.params
        positions = params[SPHERE_KEY]
        if not dr.grad_enabled(positions):
            dr.enable_grad(positions)
            params.update()
        dr.clear_grad(positions)
        image = self.mi.render(self.scene, params, integrator=self.backward_integrator, spp=spp, seed=0)
        loss = dr.mean(dr.square(image - self.target), axis=None)
        dr.backward(loss)
        self.grad = dr.grad(params[SPHERE_KEY])
        dr.eval(self.grad)

    def times(self, spp: int, repeats: int) -> Tuple[float, float]:
        return (_timed(self.dr, lambda: self.forward(spp), repeats),
                _timed(self.dr, lambda: self.step(spp), repeats))


def _raytrace_mean(resolution, spp) -> Optional[float]:
    """raytrace's mean radiance of the same scene (on the GPU where it can), or None."""
    try:
        import torch

        import raytrace as rt
        from raytrace import _core
        from scenes import reference_scene

        scene = reference_scene(resolution)
        if getattr(_core, "has_cuda", False) and torch.cuda.is_available():
            scene = scene.to("cuda")
        with torch.no_grad():
            return float(rt.render(scene, spp=spp, max_bounces=1, seed=0).mean())
    except Exception as e:  # the sanity line is optional
        print(f"mitsuba: raytrace reference unavailable ({type(e).__name__}: {e})")
        return None


def mitsuba_rows(variant: str, cases: Sequence[Tuple[Tuple[int, int], int]], repeats: int,
                 sppi: int = 0) -> List[list]:
    """Rows [resolution, spp, forward ms, forward+backward ms], printed as they come; [] where
    Mitsuba or the variant is unavailable (one line "mitsuba: SKIPPED (reason)"). Never raises."""
    try:
        mi, dr = _load_mitsuba(variant)
    except Exception as e:
        reason = (str(e).strip().splitlines() or [""])[0]
        print(f"mitsuba: SKIPPED ({variant}: {type(e).__name__}: {reason})", flush=True)
        return []
    print(f"mitsuba {mi.__version__}, drjit {dr.__version__}, variant {variant}", flush=True)
    rows = []
    try:
        for i, (res, spp) in enumerate(cases):
            fit = MitsubaFit(mi, dr, res, sppi=sppi)
            fwd, total = fit.times(spp, repeats)
            rows.append([f"{res[0]}x{res[1]}", spp, f"{fwd * 1e3:.1f}", f"{total * 1e3:.1f}"])
            print("mitsuba", rows[-1], flush=True)
            if i == 0:
                mi_mean = float(np.mean(np.array(fit.image)))
                rt_mean = _raytrace_mean(res, spp)
                line = f"mitsuba: sanity {res[0]}x{res[1]} {spp} spp: mean radiance Mitsuba {mi_mean:.5f}"
                if rt_mean is not None:
                    line += f", raytrace {rt_mean:.5f} (ratio {mi_mean / rt_mean:.4f})"
                print(line, flush=True)
            del fit
    except Exception as e:  # report and keep what was measured; never crash the caller
        print(f"mitsuba: FAILED ({type(e).__name__}: {e})", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="cuda_ad_rgb")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="64x64, 4 spp only (a smoke test)")
    parser.add_argument("--sppi", type=int, default=0,
                        help="0 (default): no indirect-visibility gradient; else spp of mi.render")
    parser.add_argument("--out", default=None, help="also write the table (markdown) to this file")
    args = parser.parse_args()
    rows = mitsuba_rows(args.variant, QUICK_CASES if args.quick else CASES, args.repeats, sppi=args.sppi)
    if not rows:
        return
    table = markdown_table(["resolution", "spp", "Mitsuba fwd", "Mitsuba fwd+bwd"], rows)
    report = (f"### Mitsuba 3 {args.variant}, reference scene, ms per call "
              f"(direct_projective / prb_projective max_depth=2, sppi={args.sppi})\n\n{table}\n")
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report)


if __name__ == "__main__":
    main()
