"""Tutorial 7: reconstruct a whole mesh from a few views, starting from a sphere (Large Steps).

The target (the Utah teapot, and a generated blob with dents between three lobes) floats in
the dark and is seen by several cameras spread around it. Each camera carries its own rig of
three coloured area lights (red from the upper right, green from the left, blue from below,
all out of view), so in every view the colour of a pixel tells which way the surface faces,
and the silhouette stands out against the black background: both the shading and the
outline carry information about the shape.

We start from a coarse icosphere and move its vertices by gradient descent on the squared
difference between the renders and the target images, with ``rt.render``'s gradients (the
silhouette edges are sampled explicitly). Three methods run side by side on the same views,
the same iterations and the same remeshing schedule:

- **Adam** on the vertex positions;
- **Adam + Laplacian**: the same, with ``weight * mean ||L x||^2`` added to the loss (``L``
  the combinatorial Laplacian), which penalises bumps;
- **Large Steps** (Nicolet et al. 2021): ``x = (I + 19 L)^-1 u``, UniformAdam on ``u``
  (``rt.optim``). Each step moves the vertices by ``(I + 19 L)^-2`` times the gradient, a
  smooth field, so sparse silhouette gradients move whole regions instead of tangling a few
  vertices.

At a few chosen iterations the mesh is remeshed (``rt.optim.remesh``) with a shrinking target
edge length, so detail is added as the shape settles; after each remesh the matrix ``M`` and
the latent ``u`` (and the optimiser's state) are rebuilt.

The error is the Chamfer distance to the target: points sampled uniformly on both surfaces,
the mean distance from each set to the nearest point of the other, summed (scene units; the
target fits in the unit sphere). The run writes, into the output folder:

- ``comparison.png``: per target, the target and the three results from a view not used in
  the fit (and from a training view);
- ``chamfer.png``: the Chamfer distance per iteration of each method;
- ``optimisation_<target>.gif``: the Large Steps run (target | current, first view);
- ``result.json``: the final Chamfer distances, wall times, vertex counts and histories.

    python tutorials/07_shape_reconstruction.py            # full run (about 10 minutes on 2 cores)
    python tutorials/07_shape_reconstruction.py --quick    # tiny images, ~30 s on one idle core
    python tutorials/07_shape_reconstruction.py --targets blob   # one target (teapot, blob)
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from scipy.spatial import cKDTree

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from _common import rt  # noqa: E402

NAME = "07_shape_reconstruction"
METHODS = ("adam", "adam_laplacian", "large_steps")
LABELS = {"adam": "Adam", "adam_laplacian": "Adam + Laplacian", "large_steps": "Large Steps"}
SHORT_LABELS = {"adam": "Adam", "adam_laplacian": "Adam+L", "large_steps": "LS"}
TARGETS = ("teapot", "blob")
CAMERA_DISTANCE = 3.2
FOV = 45.0
# Light rig, in the camera's frame (right, up, back toward the camera) and colours: every view
# sees the surface lit from three sides in three colours, out of the picture.
RIG = [((0.8, 0.7, 0.4), (9.0, 3.0, 2.0)),     # upper right: red
       ((-0.9, 0.1, 0.3), (2.0, 8.0, 3.0)),    # left: green
       ((0.1, -0.9, 0.3), (2.0, 3.0, 9.0))]    # below: blue
LIGHT_DISTANCE = 3.0
LIGHT_SIZE = 1.6


# ------------------------------------------------------------------------------------------------
# Targets
# ------------------------------------------------------------------------------------------------
def make_blob(subdivisions: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """A star-shaped solid with concavities: three lobes around the y axis with dents between
    them, a dimple on top and a bump below; radius r(d) = 0.75 (1 + 0.3 cos(3 phi) sin^2 theta
    - 0.25 exp(-|d - up|^2 / 0.15) + 0.15 exp(-|d + up|^2 / 0.3)) along each unit direction d of
    an icosphere, scaled into the unit sphere. Returns vertices [N, 3] float32, faces [M, 3]."""
    mesh = rt.sphere(subdivisions=subdivisions)
    d = mesh.vertices.double()
    phi = torch.atan2(d[:, 2], d[:, 0])
    sin2 = 1 - d[:, 1] ** 2
    up = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    r = 1 + 0.3 * torch.cos(3 * phi) * sin2 - 0.25 * torch.exp(-((d - up) ** 2).sum(1) / 0.15) \
        + 0.15 * torch.exp(-((d + up) ** 2).sum(1) / 0.3)
    v = d * r[:, None]
    v = v / v.norm(dim=1).max()
    return v.float(), mesh.indices


def make_target(name: str, quick: bool) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """The target mesh: vertices [N, 3], faces [M, 3], normals [N, 3] or None (then computed)."""
    if name == "teapot":
        m = rt.teapot(subdivisions=4 if quick else 6, normalize=True)
        return m.vertices, m.indices, m.normals
    if name == "blob":
        v, f = make_blob(4 if quick else 5)
        return v, f, None
    raise ValueError(f"target must be one of {TARGETS} (got {name!r})")


# ------------------------------------------------------------------------------------------------
# Views
# ------------------------------------------------------------------------------------------------
def view_directions(n: int, offset: float = 0.0) -> List[np.ndarray]:
    """n unit directions spread over the sphere (a Fibonacci spiral, kept away from the poles
    so that the up vector (0, 1, 0) is never parallel to a view)."""
    out = []
    golden = math.pi * (3 - math.sqrt(5))
    for i in range(n):
        y = 0.8 * (1 - 2 * (i + 0.5) / n)
        r = math.sqrt(1 - y * y)
        a = golden * i + offset
        out.append(np.array([r * math.cos(a), y, r * math.sin(a)]))
    return out


class Views:
    """Cameras around the origin, each with its own light rig; ``scene(i, x, f)`` renders view i."""

    def __init__(self, directions: Sequence[np.ndarray], size: int):
        self.cameras, self.lights = [], []
        for d in directions:
            eye = CAMERA_DISTANCE * d
            back = d / np.linalg.norm(d)
            right = np.cross([0.0, 1.0, 0.0], back)
            right /= np.linalg.norm(right)
            up = np.cross(back, right)
            self.cameras.append(dict(position=eye.tolist(), look_at=[0.0, 0.0, 0.0], up=[0.0, 1.0, 0.0], fov=FOV,
                                     resolution=(size, size)))
            rig = []
            for (a, b, c), intensity in RIG:
                p = a * right + b * up + c * back
                p = LIGHT_DISTANCE * p / np.linalg.norm(p)
                normal = -p / np.linalg.norm(p)                    # faces the object
                t1 = np.cross(normal, up if abs(np.dot(normal, up)) < 0.9 else right)
                t1 /= np.linalg.norm(t1)
                t2 = np.cross(normal, t1)                           # (t1, t2, normal) right-handed
                h = LIGHT_SIZE / 2
                quad = np.stack([p - h * t1 - h * t2, p + h * t1 - h * t2, p + h * t1 + h * t2, p - h * t1 + h * t2])
                rig.append((torch.tensor(quad, dtype=torch.float32), intensity))
            self.lights.append(rig)
        self.quad_faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
        self.materials = [rt.Material(diffuse_reflectance=[0.8, 0.8, 0.8]),
                          rt.Material(diffuse_reflectance=[0.0, 0.0, 0.0])]

    def __len__(self) -> int:
        return len(self.cameras)

    def scene(self, i: int, vertices: torch.Tensor, faces: torch.Tensor,
              normals: Optional[torch.Tensor] = None) -> rt.Scene:
        """View i of the mesh (vertices [N, 3], faces [M, 3]), smooth-shaded with `normals`
        [N, 3] (default: area-weighted normals of the vertices, differentiable)."""
        if normals is None:
            normals = rt.vertex_normals(vertices, faces)
        shapes = [rt.Shape(vertices, faces, 0, normals=normals)]
        shapes += [rt.Shape(q, self.quad_faces, 1) for q, _ in self.lights[i]]
        lights = [rt.AreaLight(1 + k, intensity) for k, (_, intensity) in enumerate(self.lights[i])]
        return rt.Scene(rt.Camera(**self.cameras[i]), shapes, self.materials, lights)


# ------------------------------------------------------------------------------------------------
# Chamfer distance
# ------------------------------------------------------------------------------------------------
def sample_surface(vertices: np.ndarray, faces: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n points uniformly distributed (by area) on a triangle mesh: vertices [N, 3], faces
    [M, 3] -> [n, 3] float64."""
    tri = np.asarray(vertices, np.float64)[np.asarray(faces)]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    if not np.isfinite(area).all() or area.sum() <= 0:
        raise ValueError("the mesh has no area to sample")
    pick = rng.choice(len(tri), size=n, p=area / area.sum())
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    w = np.stack([1 - s, s * (1 - r2), s * r2], axis=1)     # uniform barycentrics
    return np.einsum("nk,nkd->nd", w, tri[pick])


class Chamfer:
    """Symmetric Chamfer distance to a fixed target surface.

    ``chamfer(v, f)`` = mean over points a on (v, f) of min_b |a - b| + mean over points b on
    the target of min_a |a - b|, with `samples` points on each surface (the same random stream
    every call, so successive values differ only through the mesh). Scene units."""

    def __init__(self, vertices: torch.Tensor, faces: torch.Tensor, samples: int, seed: int):
        self.samples, self.seed = samples, seed
        self.points = sample_surface(vertices.detach().numpy(), faces.numpy(), samples,
                                     np.random.default_rng(seed))
        self.tree = cKDTree(self.points)

    def __call__(self, vertices: torch.Tensor, faces: torch.Tensor) -> float:
        pts = sample_surface(vertices.detach().double().numpy(), faces.numpy(), self.samples,
                             np.random.default_rng(self.seed + 1))
        d_to_target, _ = self.tree.query(pts)
        d_to_mesh, _ = cKDTree(pts).query(self.points)
        return float(d_to_target.mean() + d_to_mesh.mean())


# ------------------------------------------------------------------------------------------------
# The three methods
# ------------------------------------------------------------------------------------------------
class Method:
    """One optimiser over the mesh vertices; ``positions()`` gives x [N, 3] (differentiable),
    ``step()`` applies the gradient, ``reset(x, f)`` starts over on a new mesh (after remeshing)."""

    def __init__(self, kind: str, lr: float, reg_weight: float, lambda_: float):
        self.kind, self.lr, self.reg_weight, self.lambda_ = kind, lr, reg_weight, lambda_

    def reset(self, x: torch.Tensor, faces: torch.Tensor) -> None:
        self.faces = faces
        if self.kind == "large_steps":
            self.M = rt.optim.compute_matrix(x, faces, lambda_=self.lambda_)
            self.param = rt.optim.to_differential(self.M, x.detach()).detach().requires_grad_()
            self.opt = rt.optim.UniformAdam([self.param], lr=self.lr)
        else:
            self.param = x.detach().clone().requires_grad_()
            self.opt = torch.optim.Adam([self.param], lr=self.lr)
            if self.kind == "adam_laplacian":
                L = rt.optim.laplacian(x, faces).tocoo()
                self.L = torch.sparse_coo_tensor(np.stack([L.row, L.col]), L.data, L.shape, check_invariants=True,
                                                 dtype=torch.float32).coalesce()

    def positions(self) -> torch.Tensor:
        if self.kind == "large_steps":
            return rt.optim.from_differential(self.M, self.param)
        return self.param

    def regulariser(self, x: torch.Tensor) -> torch.Tensor:
        """weight * mean over vertices of ||(L x)_i||^2 (zero except for adam_laplacian)."""
        if self.kind != "adam_laplacian":
            return torch.zeros(())
        return self.reg_weight * torch.sparse.mm(self.L, x).square().sum(1).mean()

    def set_lr_scale(self, scale: float) -> None:
        for g in self.opt.param_groups:
            g["lr"] = self.lr * scale


def mean_edge_length(x: torch.Tensor, faces: torch.Tensor) -> float:
    """Mean length of the mesh's edges (each interior edge counted twice): x [N, 3], faces [M, 3]."""
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return float((x[e[:, 0]] - x[e[:, 1]]).norm(dim=1).mean())


def reconstruct(method: Method, views: Views, targets: List[torch.Tensor], chamfer: Chamfer, settings: Dict,
                seed: int, threads: Optional[int], frame: Optional[Callable[[int, torch.Tensor, torch.Tensor], None]],
                progress: Optional[str] = None) -> Dict:
    """Runs one method from the start sphere.

    Args:
        method: the optimiser (reset here to the start sphere).
        views: the cameras and their lights; targets: their target images, [H, W, 3] each.
        chamfer: the error measure; settings: sizes, schedule (see ``main``).
        seed: render seed; threads: render threads.
        frame: called as frame(iteration, image of view 0 [H, W, 3], vertices [N, 3]).
        progress: a tqdm progress bar with this label (None: no bar).

    Returns:
        {"vertices": [N, 3], "faces": [M, 3], "history": {"chamfer", "loss", "vertices"} per
        iteration, "time_s", "remesh_failures"}.
    """
    start = rt.sphere(radius=settings["start_radius"], subdivisions=settings["start_subdivisions"])
    x, faces = start.vertices, start.indices
    method.reset(x, faces)
    h0 = mean_edge_length(x, faces)
    iterations = settings["iterations"]
    remesh_at = {int(round(f * iterations)): s for f, s in settings["remesh"]}
    history = {"chamfer": [], "loss": [], "vertices": []}
    remesh_failures = 0
    t0 = time.perf_counter()
    steps = range(iterations)
    if progress is not None:
        from tqdm import tqdm
        steps = tqdm(steps, desc=progress, leave=False, dynamic_ncols=True)
    for it in steps:
        method.set_lr_scale(_common.lr_schedule(it, iterations, settings["lr_final"], settings["lr_hold"]))
        x = method.positions()
        loss = torch.zeros(())
        image0 = None
        for i in range(len(views)):
            img = rt.render(views.scene(i, x, faces), spp=settings["spp"], max_bounces=1,
                            seed=seed + 1000 * it + i, threads=threads)
            loss = loss + (img - targets[i]).square().mean() / len(views)
            if i == 0:
                image0 = img.detach()
        total = loss + method.regulariser(x)
        method.opt.zero_grad()
        total.backward()
        method.opt.step()
        xd = method.positions().detach()
        history["chamfer"].append(chamfer(xd, faces))
        history["loss"].append(float(loss.detach()))
        history["vertices"].append(int(xd.shape[0]))
        if frame is not None:
            frame(it, image0, xd)
        if it + 1 in remesh_at:
            # Remesh the current surface toward a shorter edge length; the optimiser starts over
            # on the new vertices (for Large Steps: a new M = I + lambda L and u = M x).
            try:
                xd, faces = rt.optim.remesh(xd, faces, remesh_at[it + 1] * h0)
            except (ValueError, RuntimeError):
                remesh_failures += 1  # a tangled mesh may not remesh: keep optimising it as it is
            method.reset(xd.float(), faces)
    x = method.positions().detach()
    return {"vertices": x, "faces": faces, "history": history, "time_s": time.perf_counter() - t0,
            "remesh_failures": remesh_failures}


# ------------------------------------------------------------------------------------------------
# Pictures
# ------------------------------------------------------------------------------------------------
def write_plot(path: Path, histories: Dict[str, Dict[str, List[float]]], remesh_its: List[int]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    colors = {"adam": "tab:red", "adam_laplacian": "tab:orange", "large_steps": "tab:blue"}
    fig, axes = plt.subplots(1, len(histories), figsize=(4.2 * len(histories), 3.2), dpi=80)
    for ax, (target, runs) in zip(np.atleast_1d(axes), histories.items()):
        for m, ch in runs.items():
            ax.plot(np.arange(1, len(ch) + 1), ch, color=colors[m], lw=1.4, label=LABELS[m])
        for r in remesh_its:
            ax.axvline(r, color="0.6", lw=0.8, ls=":")
        ax.set_yscale("log")
        ax.set_title(f"{target}: Chamfer distance")
        ax.set_xlabel("iteration (dotted: remeshing)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_gif(path: Path, frames: List[np.ndarray]) -> None:
    import imageio.v2 as imageio
    if frames:
        imageio.mimsave(path, frames + [frames[-1]] * 5, duration=0.12, loop=0)


def labelled(img: np.ndarray, text: str) -> np.ndarray:
    """Adds a strip with `text` above a uint8 [H, W, 3] image (matplotlib's text renderer)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    h, w = 14, img.shape[1]
    fig = plt.figure(figsize=(w / 100, h / 100), dpi=100)
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=7 if w >= 96 else 4)
    fig.canvas.draw()
    strip = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    plt.close(fig)
    strip = strip[:h, :w] if strip.shape[0] >= h and strip.shape[1] >= w else np.full((h, w, 3), 255, np.uint8)
    return np.concatenate([strip, img], axis=0)


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------
def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Runs the tutorial; returns the result dict also written to result.json.

    Result keys: "chamfer" ({target: {method: final Chamfer distance}}), "initial_chamfer"
    ({target: distance of the start sphere}), "time_s" ({target: {method: seconds}}),
    "vertices" ({target: {method: final vertex count}}), "remesh_failures", "settings",
    "history" ({target: {method: Chamfer per iteration}}), "iterations", "wall_time_s",
    "quick", "seed", "threads", "out".
    """
    # --targets teapot,blob (default both): pick targets (e.g. to run them as two processes).
    argv = list(sys.argv[1:] if argv is None else argv)
    targets_names = list(TARGETS)
    if "--targets" in argv:
        k = argv.index("--targets")
        if k + 1 >= len(argv):
            raise SystemExit("--targets needs a comma-separated list from " + ", ".join(TARGETS))
        targets_names = [t for t in argv[k + 1].split(",") if t]
        del argv[k:k + 2]
        bad = [t for t in targets_names if t not in TARGETS]
        if bad or not targets_names:
            raise SystemExit(f"--targets must name some of {', '.join(TARGETS)} (got {bad or 'none'})")
    args = _common.parse_args(argv, __doc__, NAME, full_iterations=80, quick_iterations=40)
    if args.quick:
        settings = dict(size=32, spp=2, views=3, start_subdivisions=3, chamfer_samples=3000,
                        remesh=[(0.25, 0.75), (0.6, 0.55)])
    else:
        settings = dict(size=64, spp=2, views=4, start_subdivisions=3, chamfer_samples=8000,
                        remesh=[(0.4, 0.7), (0.7, 0.5)])
    settings.update(iterations=args.iterations, start_radius=0.75, lr_final=0.1, lr_hold=0.5,
                    lr={"adam": 2e-2, "adam_laplacian": 2e-2, "large_steps": 0.3},
                    laplacian_weight=0.1, lambda_=19.0)
    remesh_its = [int(round(f * args.iterations)) for f, _ in settings["remesh"]]
    torch.manual_seed(args.seed)
    views = Views(view_directions(settings["views"]), settings["size"])
    # A view between the training ones, for the comparison picture.
    picture_size = max(settings["size"], 64 if args.quick else 128)
    held_out = Views(view_directions(1, offset=1.3), picture_size)
    first_view = Views(view_directions(settings["views"])[:1], picture_size)

    result: Dict = {"chamfer": {}, "initial_chamfer": {}, "time_s": {}, "vertices": {}, "remesh_failures": {},
                    "history": {}}
    grid_rows = []
    for target_name in targets_names:
        tv, tf, tn = make_target(target_name, args.quick)
        with torch.no_grad():
            targets = [rt.render(views.scene(i, tv, tf, tn), spp=64, max_bounces=1, seed=args.seed + 50_000 + i,
                                 threads=args.threads) for i in range(len(views))]
        chamfer = Chamfer(tv, tf, settings["chamfer_samples"], args.seed + 7)
        s0 = rt.sphere(radius=settings["start_radius"], subdivisions=settings["start_subdivisions"])
        result["initial_chamfer"][target_name] = chamfer(s0.vertices, s0.indices)
        gif_frames: List[np.ndarray] = []
        gif_every = max(1, args.iterations // 40)
        target_u8 = _common.to_uint8(targets[0])

        def frame(it: int, image: torch.Tensor, x: torch.Tensor) -> None:
            if it % gif_every == 0 or it == args.iterations - 1:
                gif_frames.append(_common.side_by_side([target_u8, _common.to_uint8(image)]))

        runs = {}
        for m in METHODS:
            method = Method(m, settings["lr"][m], settings["laplacian_weight"], settings["lambda_"])
            runs[m] = reconstruct(method, views, targets, chamfer, settings, args.seed, args.threads,
                                  frame if m == "large_steps" else None,
                                  None if args.no_progress else f"{target_name} {LABELS[m]}")
            print(f"{target_name} {LABELS[m]}: Chamfer {runs[m]['history']['chamfer'][-1]:.4f} "
                  f"({runs[m]['time_s']:.1f} s, {runs[m]['vertices'].shape[0]} vertices)", flush=True)
        result["chamfer"][target_name] = {m: r["history"]["chamfer"][-1] for m, r in runs.items()}
        result["time_s"][target_name] = {m: round(r["time_s"], 2) for m, r in runs.items()}
        result["vertices"][target_name] = {m: int(r["vertices"].shape[0]) for m, r in runs.items()}
        result["remesh_failures"][target_name] = {m: r["remesh_failures"] for m, r in runs.items()}
        result["history"][target_name] = {m: r["history"]["chamfer"] for m, r in runs.items()}
        write_gif(args.out / f"optimisation_{target_name}.gif", gif_frames)

        # Renders for the comparison: the held-out view and the first training view.
        row = []
        for vw in (held_out, first_view):
            with torch.no_grad():
                pics = [rt.render(vw.scene(0, tv, tf, tn), spp=32, max_bounces=1, seed=args.seed + 90_000,
                                  threads=args.threads)]
                pics += [rt.render(vw.scene(0, runs[m]["vertices"], runs[m]["faces"]), spp=32, max_bounces=1,
                                   seed=args.seed + 90_000, threads=args.threads) for m in METHODS]
            short = picture_size < 96  # narrow pictures: short labels
            names = ["target"] + [f"{SHORT_LABELS[m] if short else LABELS[m]} {result['chamfer'][target_name][m]:.3f}"
                                  for m in METHODS]
            row.append(_common.side_by_side([labelled(_common.to_uint8(p), n) for p, n in zip(pics, names)]))
        grid_rows.extend(row)
    gap = np.full((2, grid_rows[0].shape[1], 3), 255, np.uint8)
    grid = np.concatenate([part for r in grid_rows for part in (r, gap)][:-1], axis=0)
    rt.imwrite(grid.astype(np.float32) / 255.0, args.out / "comparison.png", srgb=False)
    write_plot(args.out / "chamfer.png", result["history"], remesh_its)

    result.update({
        "settings": {k: v for k, v in settings.items()},
        "remesh_iterations": remesh_its,
        "iterations": args.iterations,
        "wall_time_s": round(time.perf_counter() - args.start_time, 2),
        "quick": bool(args.quick),
        "seed": int(args.seed),
        "threads": args.threads,
        "out": str(args.out),
    })
    with open(args.out / "result.json", "w") as f:
        json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    r = main()
    for t, ch in r["chamfer"].items():
        print(f"{t}: Chamfer from the sphere {r['initial_chamfer'][t]:.4f} -> "
              + ", ".join(f"{LABELS[m]} {c:.4f} ({r['time_s'][t][m]:.0f} s)" for m, c in ch.items()))
    print(f"{r['iterations']} iterations, {r['wall_time_s']:.1f} s; pictures in {r['out']}")
