"""Mutation check of the gradient tests: plausible one-line bugs, applied one at a time.

Each mutation below is an exact text replacement in one source file (a flipped sign, a dropped
factor, an off-by-one index, swapped blocks) that a test must catch. For each one the script
applies it to the worktree's file, rebuilds only what the change reaches, runs the tests named
for it (``pytest -x -q``) and records whether they failed (caught) or passed (NOT caught). The
file is always restored (byte for byte, with its modification time, so that a later
``setup.py build_ext`` sees nothing to rebuild), and so are the object files and the extension
the mutation touched.

Rebuilds: a mutation in a ``.cpp`` recompiles that unit; one in a header recompiles the units
that include it (or the narrower ``units`` a mutation lists: RT_INLINE functions are always
inlined, so a unit that never calls the mutated function is unchanged by it), with the flags,
compiler and build directory of ``setup.py`` itself (its extension object, built by setuptools'
own build_ext, the other objects linked as they are). A mutation in Python needs no rebuild.

    python tests/mutation/mutate.py                 # every mutation
    python tests/mutation/mutate.py --list          # the list
    python tests/mutation/mutate.py --only up_sign stride_weight_minus_one
    python tests/mutation/mutate.py --only up_sign --run "python my_probe.py"   # explore

Run from anywhere with the project's Python; it works on the checkout it lives in. The
results, the mutations and their tests are listed in docs/mutations.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[2]
T = "tests/test_gradient_terms.py::"


@dataclasses.dataclass
class Mutation:
    id: str
    file: str            # relative to the repository root
    old: str             # exact text, found exactly once in the file
    new: str
    what: str            # the bug, in one line
    tests: List[str]     # pytest node ids that must fail with it
    units: Optional[List[str]] = None  # .cpp units to rebuild (default: the file, or its includers)


MUTATIONS = [
    # ---- The eight that the suite used to miss (issue 16) -------------------------------------
    Mutation("up_sign", "csrc/core/backward_terms.h",
             "add_vec3(acc, layout.camera, 2, d_cam.up);", "add_vec3(acc, layout.camera, 2, -d_cam.up);",
             "the camera up gradient's sign flipped",
             [T + "test_camera_gradients_of_a_clipped_triangle"],
             units=["csrc/core/backward_interior.cpp", "csrc/core/backward_primary.cpp"]),
    Mutation("look_at_up_blocks_swapped", "raytrace/render.py",
             '(c.look_at, ("camera", 3, 6)), (c.up, ("camera", 6, 9))',
             '(c.look_at, ("camera", 6, 9)), (c.up, ("camera", 3, 6))',
             "render.py maps the look_at and up gradient blocks to each other's tensors",
             [T + "test_camera_gradients_of_a_clipped_triangle"]),
    Mutation("flat_normal_dropped", "csrc/core/backward_path.h",
             "d_ng += d_ns;  // flat shading", "// flat shading",
             "flat shading: the shading normal's gradient not passed to the geometric normal",
             [T + "test_flat_shaded_quad_normal_gradient"]),
    Mutation("flat_normal_vertices_swapped", "csrc/core/backward_path.h",
             "d_v[1] += d_e1;\n            d_v[2] += d_e2;", "d_v[1] += d_e2;\n            d_v[2] += d_e1;",
             "the geometric normal's gradient: two vertices of the triangle exchange theirs",
             [T + "test_flat_shaded_quad_normal_gradient"]),
    Mutation("emission_light_grad_dropped", "csrc/core/backward_interior.h",
             "if (p.interior && pv.light_id >= 0) add_vec3(acc, L.lights, pv.light_id, d_L * pv.emit_weight);",
             "",
             "the light-intensity gradient of emission that paths hit (camera rays, BSDF samples) dropped",
             [T + "test_light_intensity_seen_directly", T + "test_light_intensity_with_mis"]),
    Mutation("bsdf_hit_light_grad_dropped", "csrc/core/backward_interior.h",
             "if (p.interior && pv.light_id >= 0) add_vec3(",
             "if (p.interior && pv.light_id >= 0 && k == 0) add_vec3(",
             "the light-intensity gradient of emission that BSDF samples hit dropped (kept where seen directly)",
             [T + "test_light_intensity_with_mis"]),
    Mutation("terminator_nee_adjoint_dropped", "csrc/core/backward_interior.h",
             "Real S = pv.nee_S;", "Real S = 1;",
             "the shadow-terminator factor dropped from the next-event adjoint",
             [T + "test_terminator_band"]),
    Mutation("uv_v_takes_u", "csrc/core/backward_path.h",
             "acc.add(layout.uvs + 2 * tv.idx[k] + 1, d_uv.y * b[k]);",
             "acc.add(layout.uvs + 2 * tv.idx[k] + 1, d_uv.x * b[k]);",
             "the uv gradient's v component takes u's value",
             [T + "test_uv_gradient"]),
    Mutation("secondary_endpoints_swapped", "csrc/core/backward_secondary.h",
             "add_vec3(acc, layout.vertices, e.v0, g0);\n    add_vec3(acc, layout.vertices, e.v1, g1);",
             "add_vec3(acc, layout.vertices, e.v0, g1);\n    add_vec3(acc, layout.vertices, e.v1, g0);",
             "the secondary-edge gradients of an edge's two endpoints swapped",
             [T + "test_shadow_gradient_of_single_occluder_vertices"]),
    Mutation("stride_weight_minus_one", "csrc/core/backward_interior.h",
             "ew.emission = ew.traced * Real(stride);", "ew.emission = ew.traced * Real(stride - 1);",
             "the secondary_stride weight one too small",
             [T + "test_secondary_stride_weight"]),
    Mutation("stride_weight_minus_one_above_one", "csrc/core/backward_interior.h",
             "ew.emission = ew.traced * Real(stride);", "ew.emission = ew.traced * Real(stride > 1 ? stride - 1 : 1);",
             "the secondary_stride weight one too small where it is above 1 (stride 1 still right: 6% at 16)",
             [T + "test_secondary_stride_weight"]),
    Mutation("stride_weight_plus_one", "csrc/core/backward_interior.h",
             "ew.emission = ew.traced * Real(stride);", "ew.emission = ew.traced * Real(stride + 1);",
             "the secondary_stride weight one too large",
             [T + "test_secondary_stride_weight"]),
    # ---- More of the same kind ----------------------------------------------------------------
    Mutation("terminator_nee_d_terminator_dropped", "csrc/core/backward_interior.h",
             "d_terminator(pv.ng, pv.ns, pv.nee_wi, d_cS * c, &d_ng, &d_ns, &unused);", "",
             "the terminator factor's own derivative dropped from the next-event adjoint",
             [T + "test_terminator_band"]),
    Mutation("nee_light_grad_dropped", "csrc/core/backward_interior.h",
             "add_vec3(acc, L.lights, pv.nee_light, d_Le);", "",
             "the light-intensity gradient of next-event estimation dropped",
             [T + "test_light_intensity_with_mis"]),
    Mutation("emission_mis_weight_dropped", "csrc/core/backward_interior.h",
             "add_vec3(acc, L.lights, pv.light_id, d_L * pv.emit_weight);",
             "add_vec3(acc, L.lights, pv.light_id, d_L);",
             "the MIS weight of BSDF-sampled emission dropped from its intensity gradient",
             [T + "test_light_intensity_with_mis"]),
    Mutation("d_bsdf_kd_sign", "csrc/core/material.h",
             "d_p->kd += d_f * kInvPi;", "d_p->kd += d_f * -kInvPi;",
             "d_bsdf: the diffuse reflectance's gradient with the wrong sign",
             [T + "test_texel_gradient"], units=["csrc/core/backward_interior.cpp"]),
    Mutation("barycentrics_swapped", "csrc/core/backward_path.h",
             "Real d_b1 = d_b[1] - d_b[0], d_b2 = d_b[2] - d_b[0];",
             "Real d_b1 = d_b[2] - d_b[0], d_b2 = d_b[1] - d_b[0];",
             "the gradients of the hit's two barycentrics swapped",
             [T + "test_textured_quad_vertex_gradient"]),
    Mutation("fov_degrees_as_radians", "csrc/core/camera.h",
             "d_p->fov_degrees += d_tan * (1 + tan_half_fov * tan_half_fov) * (kPi / 360);",
             "d_p->fov_degrees += d_tan * (1 + tan_half_fov * tan_half_fov) * Real(0.5);",
             "the fov gradient taken per radian instead of per degree",
             [T + "test_camera_gradients_of_a_clipped_triangle"],
             units=["csrc/core/backward_interior.cpp", "csrc/core/backward_primary.cpp"]),
    Mutation("primary_pixel_off_by_one", "csrc/core/backward_primary.h",
             "int px = int(pt.x), py = int(pt.y);", "int px = int(pt.x) + 1, py = int(pt.y);",
             "a primary edge sample weighted by the next pixel's d_image",
             [T + "test_camera_gradients_of_a_clipped_triangle"]),
    Mutation("texel_gradient_wrong_tap", "csrc/core/material.h",
             "add(b.y0, b.x1, b.tx * (1 - b.ty));\n    add(b.y1, b.x0, (1 - b.tx) * b.ty);",
             "add(b.y1, b.x0, b.tx * (1 - b.ty));\n    add(b.y0, b.x1, (1 - b.tx) * b.ty);",
             "a texture's gradient sent to the wrong texels of the bilinear footprint",
             [T + "test_texel_gradient"], units=["csrc/core/backward_interior.cpp"]),
    Mutation("envmap_row_column_swapped", "csrc/core/light.h",
             "int index = (yy * env.width + xx) * 3;", "int index = (xx * env.height + yy) * 3;",
             "the environment map's gradient indexed column-major",
             [T + "test_envmap_gradient_seen_directly"], units=["csrc/core/backward_interior.cpp"]),
    Mutation("sky_camera_direction_dropped", "csrc/core/backward_interior.h",
             "if (path.n == 0) d_cam_dir += d_dir;", "",
             "the camera gradient of the environment seen directly (camera rays' directions) dropped",
             [T + "test_camera_turning_under_the_sky"]),
    Mutation("camera_position_sign", "csrc/core/backward_terms.h",
             "add_vec3(acc, layout.camera, 0, d_cam.position);",
             "add_vec3(acc, layout.camera, 0, -d_cam.position);",
             "the camera position gradient's sign flipped",
             [T + "test_camera_gradients_of_a_clipped_triangle"],
             units=["csrc/core/backward_interior.cpp", "csrc/core/backward_primary.cpp"]),
    Mutation("primary_edge_weight_halved", "csrc/core/backward_primary.h",
             "seg_len / (p_edge * Real(num_samples));", "seg_len / (2 * p_edge * Real(num_samples));",
             "the primary edge samples' weight halved",
             [T + "test_camera_gradients_of_a_clipped_triangle"]),
    Mutation("secondary_term_sign", "csrc/core/backward_secondary.h",
             "Real K = -S * jacobian * inv_density / N_len;", "Real K = S * jacobian * inv_density / N_len;",
             "the secondary edge term's sign flipped",
             [T + "test_shadow_gradient_of_single_occluder_vertices"]),
    Mutation("smooth_normal_wrong_vertex", "csrc/core/backward_path.h",
             "add_vec3(acc, layout.normals, tv.idx[k], d_n * b[k]);",
             "add_vec3(acc, layout.normals, tv.idx[(k + 1) % 3], d_n * b[k]);",
             "the interpolated normal's gradient sent to the next vertex of the triangle",
             [T + "test_terminator_band"]),
]


# ---- Building --------------------------------------------------------------------------------

def _setup_extension():
    """setup.py's extension and cmdclass, without running setup()."""
    import setuptools

    captured = {}
    original = setuptools.setup
    setuptools.setup = lambda **kw: captured.update(kw)
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)
        runpy.run_path(str(ROOT / "setup.py"), run_name="setup")
    finally:
        setuptools.setup = original
        os.chdir(cwd)
    return captured


def _build_command(captured, jobs):
    import setuptools

    os.environ.setdefault("RT_BUILD_JOBS", str(jobs))
    dist = setuptools.Distribution({"ext_modules": captured["ext_modules"], "cmdclass": captured["cmdclass"]})
    cmd = dist.get_command_obj("build_ext")
    cmd.inplace = True
    cmd.force = True
    cmd.ensure_finalized()
    return cmd


def _object_path(cmd, source):
    return ROOT / cmd.build_temp / (os.path.splitext(source)[0] + ".o")


def _includers(header, sources):
    """The .cpp units among `sources` that include `header` (directly or through other headers)."""
    inc = re.compile(r'#include "([^"]+)"')
    target = (ROOT / header).resolve()

    def reaches(path, seen):
        for name in inc.findall(path.read_text()):
            dep = (path.parent / name).resolve()
            if not dep.exists():
                dep = (ROOT / "csrc" / name).resolve()
            if dep == target:
                return True
            if dep.exists() and dep not in seen:
                seen.add(dep)
                if reaches(dep, seen):
                    return True
        return False

    return [s for s in sources if reaches(ROOT / s, set())]


class Builder:
    """Rebuilds the extension from a few changed units, linking the others' objects as they are."""

    def __init__(self, jobs):
        self.captured = _setup_extension()
        self.ext = self.captured["ext_modules"][0]
        self.sources = list(self.ext.sources)
        self.jobs = jobs
        self.cmd = _build_command(self.captured, jobs)
        self.target = ROOT / self.cmd.get_ext_fullpath(self.ext.name)  # the in-place copy tests load
        self.cmd.inplace = False
        self.build_copy = ROOT / self.cmd.get_ext_fullpath(self.ext.name)  # build/lib...: copied from
        self.cmd.inplace = True

    def ensure_built(self, force=False):
        """A full build (setup.py's own) when the extension or an object is missing or stale."""
        newest = max((ROOT / p).stat().st_mtime for p in self.sources + list(self.ext.depends))
        paths = [self.target] + [_object_path(self.cmd, s) for s in self.sources]
        if not force and all(p.exists() and p.stat().st_mtime >= newest for p in paths):
            return
        print("mutate: full build first (setup.py build_ext --inplace --force)", flush=True)
        subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace", "--force", "-q"], cwd=ROOT,
                       check=True, env=dict(os.environ, RT_BUILD_JOBS=str(self.jobs)))

    def units_for(self, m: Mutation):
        if m.file.endswith(".py"):
            return []
        if m.units is not None:
            return list(m.units)
        if m.file.endswith(".cpp"):
            return [m.file]
        return _includers(m.file, self.sources)

    def build(self, units):
        """Compiles `units` and links them with the other units' existing objects."""
        import copy

        ext = copy.copy(self.ext)
        ext.sources = list(units)
        ext.extra_objects = [str(_object_path(self.cmd, s)) for s in self.sources if s not in units]
        cmd = _build_command(self.captured, self.jobs)
        cmd.extensions = [ext]
        cwd = os.getcwd()
        try:
            os.chdir(ROOT)
            cmd.run()  # setuptools: builds into build/lib..., then copies in place
        finally:
            os.chdir(cwd)


# ---- Running ---------------------------------------------------------------------------------

def _run_tests(tests: Sequence[str], timeout: float):
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "timed out"
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    summary = lines[-1] if lines else r.stderr.strip()[-200:]
    # The first failed assertion, to show by how much a mutation fails.
    errors = [ln[1:].strip() for ln in lines if ln.startswith("E ")]
    relative = [e for e in errors if e.startswith("Max relative difference")]  # assert_allclose's
    if errors:
        summary += ": " + " ".join(errors[:3] + relative[:1])[:200]
    return r.returncode, summary


def _backup(paths, folder):
    saved = []
    for p in paths:
        if p.exists():
            copy = Path(folder) / (str(len(saved)) + "_" + p.name)
            shutil.copy2(p, copy)
            saved.append((p, copy))
    return saved


def _restore(saved):
    for p, copy in saved:
        tmp = p.with_name(p.name + ".mutate-tmp")
        shutil.copy2(copy, tmp)
        os.replace(tmp, p)  # atomic: a process that maps the old file keeps it


# The original of the file being mutated, kept until it is restored: a run killed outright
# (SIGKILL, power loss) leaves it here, and the next run puts it back before anything else.
PENDING = ROOT / "build" / "mutation-pending"


def restore_pending():
    """Puts back the files an interrupted run left mutated; True if there were any (then the
    objects built from them are rebuilt too)."""
    copies = sorted(PENDING.glob("*.orig")) if PENDING.is_dir() else []
    for copy in copies:
        rel = copy.name[:-len(".orig")].replace("__", "/")
        print(f"mutate: restoring {rel} left mutated by an interrupted run", flush=True)
        shutil.copy2(copy, ROOT / rel)
        copy.unlink()
    return bool(copies)


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # a killed job unwinds like Ctrl-C, through the restoring finally blocks


def run_mutation(m: Mutation, builder: Builder, timeout: float, command: Optional[str]):
    path = ROOT / m.file
    original = path.read_bytes()
    stat = path.stat()
    PENDING.mkdir(parents=True, exist_ok=True)
    pending = PENDING / (m.file.replace("/", "__") + ".orig")
    shutil.copy2(path, pending)
    text = original.decode()
    count = text.count(m.old)
    if count != 1:
        return "ERROR", f"the old text occurs {count} times in {m.file}", 0.0
    units = builder.units_for(m)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as folder:
        saved = _backup([builder.target, builder.build_copy] + [_object_path(builder.cmd, u) for u in units], folder)
        try:
            path.write_text(text.replace(m.old, m.new))
            if units:
                try:
                    builder.build(units)
                except Exception as e:  # a mutation that does not compile is a broken entry
                    return "ERROR", f"build failed: {e}", time.time() - t0
            build_s = time.time() - t0
            if command is not None:
                r = subprocess.run(command, shell=True, cwd=ROOT)
                return "RAN", f"exit {r.returncode}", time.time() - t0
            rc, last = _run_tests(m.tests, timeout)
            if rc is None:
                result = "caught (timeout)"
            elif rc == 0:
                result = "NOT CAUGHT"
            elif rc in (1,):
                result = "caught"
            else:
                result = "ERROR"
            return result, f"{last} (build {build_s:.0f}s)", time.time() - t0
        finally:
            path.write_bytes(original)
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
            pending.unlink()
            _restore(saved)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", metavar="ID", help="run these mutations only")
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    ap.add_argument("--run", metavar="CMD", help="run CMD (a shell command, in the repository root) with each "
                                                  "mutation applied instead of its tests")
    ap.add_argument("--jobs", type=int, default=2, help="parallel compile jobs (default 2)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds allowed to one mutation's tests")
    ap.add_argument("--no-baseline", action="store_true", help="skip running the tests unmutated first")
    args = ap.parse_args(argv)
    chosen = MUTATIONS
    if args.only:
        known = {m.id: m for m in MUTATIONS}
        unknown = [i for i in args.only if i not in known]
        if unknown:
            ap.error(f"unknown mutation ids {unknown}; known: {sorted(known)}")
        chosen = [known[i] for i in args.only]
    if args.list:
        for m in chosen:
            print(f"{m.id:40s} {m.file:28s} {m.what}")
            for t in m.tests:
                print(f"{'':40s}   {t}")
        return 0
    # SIGTERM (a killed job) unwinds like Ctrl-C, through the restoring finally blocks.
    signal.signal(signal.SIGTERM, _interrupt)
    restored = restore_pending()
    builder = Builder(args.jobs)
    builder.ensure_built(force=restored)
    start = time.time()
    if args.run is None and not args.no_baseline:
        tests = sorted({t for m in chosen for t in m.tests})
        rc, last = _run_tests(tests, args.timeout * 2)
        print(f"baseline (unmutated) {len(tests)} tests: {last} ({time.time() - start:.0f}s)", flush=True)
        if rc != 0:
            print("mutate: the tests fail without a mutation; fix them first")
            return 2
    results = []
    for m in chosen:
        result, detail, seconds = run_mutation(m, builder, args.timeout, args.run)
        results.append((m, result, seconds))
        print(f"{m.id:40s} {result:12s} {seconds:5.0f}s  {detail}", flush=True)
    missed = [m.id for m, r, _ in results if r not in ("caught", "caught (timeout)", "RAN")]
    print(f"\n{len(results) - len(missed)}/{len(results)} caught in {time.time() - start:.0f}s"
          + (f"; NOT caught or broken: {', '.join(missed)}" if missed else ""))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
