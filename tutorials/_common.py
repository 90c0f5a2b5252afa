"""What every tutorial shares: arguments, the output folder, and the pictures of a run.

Each tutorial builds a scene, renders a target, then optimises some scene parameters by
gradient descent through ``rt.render``. This module keeps the bookkeeping out of the way:

    args = parse_args(argv, __doc__, "02_pose_estimation", full_iterations=300, quick_iterations=12)
    log = RunLog(args)
    for it in log.progress(args.iterations):
        ...
        log.record(loss=float(loss), errors={"rotation_deg": e_rot}, image=img)
    return log.finish(target=target, initial=initial, final=final, result={...})

``finish`` writes target.png, initial.png, final.png, comparison.png (target | initial |
final), optimisation.gif, loss.png and result.json into the output folder, and returns the
result dict (with iterations and wall time added).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np
import torch

# Run from a checkout without installing: make `import raytrace` find the repository.
_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

import raytrace as rt  # noqa: E402
from raytrace.io.images import srgb_encode  # noqa: E402

OUTPUT_ROOT = Path(__file__).resolve().parent / "output"
GIF_MAX_FRAMES = 40      # frames kept in optimisation.gif (evenly spaced, always the last)
GIF_MAX_WIDTH = 384      # pixels: each frame is target | current, downscaled to at most this


def parse_args(argv: Optional[Sequence[str]], description: str, name: str, full_iterations: int,
               quick_iterations: int) -> argparse.Namespace:
    """Parses the options every tutorial takes.

    Args:
        argv: the arguments (None: ``sys.argv[1:]``).
        description: the tutorial's docstring, shown by ``--help``.
        name: the tutorial's name; the default output folder is ``tutorials/output/<name>``.
        full_iterations, quick_iterations: the default iteration counts without / with
            ``--quick``.

    Returns:
        Namespace with ``quick`` (bool), ``out`` (Path, created), ``iterations`` (int >= 1),
        ``seed`` (int >= 0), ``threads`` (int >= 1 or None: RT_NUM_THREADS or all cores),
        ``name`` (str), ``gif`` (bool).
    """
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny images, few samples and iterations (seconds)")
    p.add_argument("--out", type=Path, default=None, help=f"output folder (default tutorials/output/{name})")
    p.add_argument("--iterations", type=int, default=None,
                   help=f"optimisation steps (default {full_iterations}, {quick_iterations} with --quick)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the renders and the start (default 0)")
    p.add_argument("--threads", type=int, default=None, help="render threads (default: RT_NUM_THREADS or all cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(list(argv) if argv is not None else None)
    if args.iterations is None:
        args.iterations = quick_iterations if args.quick else full_iterations
    if args.iterations < 1:
        p.error(f"--iterations must be >= 1 (got {args.iterations})")
    if args.seed < 0:
        p.error(f"--seed must be >= 0 (got {args.seed})")
    if args.threads is not None and args.threads < 1:
        p.error(f"--threads must be >= 1 (got {args.threads})")
    args.out = Path(args.out) if args.out is not None else OUTPUT_ROOT / name
    args.out.mkdir(parents=True, exist_ok=True)
    args.name = name
    args.start_time = time.perf_counter()
    return args


def to_uint8(img) -> np.ndarray:
    """[H, W, 3] linear radiance (tensor or array) -> [H, W, 3] uint8, sRGB-encoded, clipped."""
    a = img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
    a = np.asarray(a, dtype=np.float32)[..., :3]
    return np.rint(np.clip(srgb_encode(np.clip(a, 0.0, None)), 0.0, 1.0) * 255.0).astype(np.uint8)


def side_by_side(images: Sequence[np.ndarray], gap: int = 2) -> np.ndarray:
    """uint8 [H, W_i, 3] images of equal height -> one [H, sum W_i + gaps, 3] strip (white gaps)."""
    h = images[0].shape[0]
    parts: List[np.ndarray] = []
    for i, im in enumerate(images):
        if im.shape[0] != h:
            raise ValueError(f"images must share a height (got {im.shape[0]} and {h})")
        if i:
            parts.append(np.full((h, gap, 3), 255, np.uint8))
        parts.append(im)
    return np.concatenate(parts, axis=1)


def _downscale(im: np.ndarray, max_width: int) -> np.ndarray:
    """Box-filters a uint8 image by an integer factor so its width is at most max_width."""
    f = int(np.ceil(im.shape[1] / max_width))
    if f <= 1:
        return im
    h, w = (im.shape[0] // f) * f, (im.shape[1] // f) * f
    return im[:h, :w].reshape(h // f, f, w // f, f, 3).mean(axis=(1, 3)).round().astype(np.uint8)


class RunLog:
    """Records one optimisation: loss, parameter errors and snapshots per iteration.

    Args:
        args: the Namespace of ``parse_args``.
        gif_every: keep a frame every this many iterations (default: so that about
            GIF_MAX_FRAMES frames are kept).
    """

    def __init__(self, args: argparse.Namespace, gif_every: Optional[int] = None):
        self.args = args
        self.losses: List[float] = []
        self.errors: Dict[str, List[float]] = {}
        self.frames: List[np.ndarray] = []
        self.gif_every = gif_every or max(1, int(np.ceil(args.iterations / GIF_MAX_FRAMES)))
        self.target_u8: Optional[np.ndarray] = None
        self.start = getattr(args, "start_time", time.perf_counter())
        self._bar = None

    def set_target(self, target) -> None:
        """The target image [H, W, 3] (linear), shown beside each GIF frame."""
        self.target_u8 = to_uint8(target)

    def progress(self, n: int) -> Iterable[int]:
        """range(n) with a tqdm progress bar (none with --no-progress or when tqdm is missing)."""
        if getattr(self.args, "no_progress", False):
            return range(n)
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover - tqdm is a dependency
            return range(n)
        self._bar = tqdm(range(n), desc=self.args.name, leave=False, dynamic_ncols=True)
        return self._bar

    def record(self, loss, errors: Dict[str, float], image=None) -> None:
        """Logs one iteration: the loss, the named parameter errors, and (maybe) a GIF frame.

        Args:
            loss: the loss of this iteration's render (float or scalar tensor).
            errors: parameter errors of the parameters that rendered this image.
            image: [H, W, 3] linear render of this iteration (kept every ``gif_every``).
        """
        it = len(self.losses)
        if isinstance(loss, torch.Tensor):
            loss = loss.detach().item()
        self.losses.append(float(loss))
        for k, e in errors.items():
            self.errors.setdefault(k, []).append(float(e))
        if image is not None and (it % self.gif_every == 0 or it == self.args.iterations - 1):
            frame = to_uint8(image)
            if self.target_u8 is not None:
                frame = side_by_side([self.target_u8, frame])
            self.frames.append(_downscale(frame, GIF_MAX_WIDTH))
        if self._bar is not None:
            first = next(iter(errors.items()), None)
            post = {"loss": f"{loss:.3g}"}
            if first is not None:
                post[first[0]] = f"{first[1]:.3g}"
            self._bar.set_postfix(post, refresh=False)

    def finish(self, target, initial, final, result: Dict) -> Dict:
        """Writes the pictures and result.json; returns ``result`` with bookkeeping added.

        Args:
            target, initial, final: [H, W, 3] linear images.
            result: the final parameter errors and anything else worth keeping (JSON-able).

        Returns:
            ``result`` plus "iterations", "wall_time_s", "quick", "seed", "threads", "out",
            "initial_errors", "loss_first", "loss_last" and "history" (the loss and each error
            per iteration).
        """
        if self._bar is not None:
            self._bar.close()
        wall = time.perf_counter() - self.start
        out: Path = self.args.out
        for name, img in (("target", target), ("initial", initial), ("final", final)):
            rt.imwrite(img.detach()[..., :3] if isinstance(img, torch.Tensor) else img, out / f"{name}.png")
        strip = side_by_side([to_uint8(target), to_uint8(initial), to_uint8(final)])
        rt.imwrite(strip.astype(np.float32) / 255.0, out / "comparison.png", srgb=False)
        self._write_gif(out / "optimisation.gif")
        self._write_plot(out / "loss.png")
        full = dict(result)
        full.update({
            "iterations": len(self.losses),
            "wall_time_s": round(wall, 3),
            "quick": bool(self.args.quick),
            "seed": int(self.args.seed),
            "threads": self.args.threads or int(os.environ.get("RT_NUM_THREADS", "0") or 0) or os.cpu_count(),
            "initial_errors": {k: v[0] for k, v in self.errors.items()},
            "loss_first": self.losses[0] if self.losses else None,
            "loss_last": self.losses[-1] if self.losses else None,
            "out": str(out),
            "history": {"loss": self.losses, **self.errors},
        })
        with open(out / "result.json", "w") as f:
            json.dump(full, f, indent=2)
        return full

    def _write_gif(self, path: Path) -> None:
        import imageio.v2 as imageio
        if not self.frames:
            return
        frames = self.frames + [self.frames[-1]] * 5  # linger on the result
        imageio.mimsave(path, frames, duration=0.12, loop=0)

    def _write_plot(self, path: Path) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        n = 1 + len(self.errors)
        fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.0), dpi=80)
        axes = np.atleast_1d(axes)
        its = np.arange(len(self.losses))
        axes[0].plot(its, self.losses, color="tab:blue", lw=1.2)
        axes[0].set_title("loss")
        for ax, (k, vals) in zip(axes[1:], self.errors.items()):
            ax.plot(its[:len(vals)], vals, color="tab:red", lw=1.2)
            ax.set_title(k.replace("_", " "))
        for ax, vals in zip(axes, [self.losses] + list(self.errors.values())):
            ax.set_xlabel("iteration")
            if len(vals) and min(vals) > 0 and max(vals) / max(min(vals), 1e-30) > 20:
                ax.set_yscale("log")
            ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)


def lr_schedule(it: int, iterations: int, final_fraction: float = 0.05, hold: float = 0.0) -> float:
    """A learning-rate multiplier: 1 for the first `hold` fraction of the run, then an
    exponential decay to `final_fraction` at the last iteration."""
    start = int(hold * iterations)
    if iterations - 1 <= start or it <= start:
        return 1.0
    return float(final_fraction ** ((it - start) / (iterations - 1 - start)))


def axis_angle_matrix(rotvec: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: a rotation vector [3] (axis * angle, radians) -> [3, 3] matrix.

    Differentiable, also at and near zero (a Taylor expansion is used for tiny angles).
    """
    theta2 = (rotvec * rotvec).sum()
    theta = torch.sqrt(theta2.clamp_min(1e-24))
    small = theta2 < 1e-8
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2.clamp_min(1e-24))
    x, y, z = rotvec
    zero = torch.zeros((), dtype=rotvec.dtype)
    k = torch.stack([torch.stack([zero, -z, y]), torch.stack([z, zero, -x]), torch.stack([-y, x, zero])])
    return torch.eye(3, dtype=rotvec.dtype) + a * k + b * (k @ k)


def rotation_angle_deg(r1: torch.Tensor, r2: torch.Tensor) -> float:
    """The angle in degrees of the rotation that takes matrix r1 [3, 3] to r2 [3, 3]."""
    c = (float(torch.trace(r1.detach().double().T @ r2.detach().double())) - 1) / 2
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


class SpikeClipper:
    """Clips gradient outliers: each element to `k` times its running RMS.

    Monte Carlo gradients are heavy-tailed (a rare edge sample can be large), and Adam turns
    one huge gradient into a run of full-size steps in its direction. Call ``clip()`` after
    ``backward()`` and before ``step()``; the first `warmup` calls only learn the RMS.

    Args:
        params: the leaf tensors whose ``.grad`` is clipped.
        k: the bound, in running RMS (default 3).
        beta: decay of the running mean square (default 0.95).
        warmup: calls before clipping starts.
    """

    def __init__(self, params: Sequence[torch.Tensor], k: float = 3.0, beta: float = 0.95, warmup: int = 5):
        self.params = list(params)
        self.k, self.beta, self.warmup = k, beta, warmup
        self.mean_sq = [torch.zeros_like(p) for p in self.params]
        self.calls = 0

    def clip(self) -> None:
        self.calls += 1
        for p, ms in zip(self.params, self.mean_sq):
            if p.grad is None:
                continue
            g = p.grad
            if self.calls > self.warmup:
                bound = self.k * (ms / (1 - self.beta ** (self.calls - 1))).sqrt()
                g = torch.maximum(torch.minimum(g, bound), -bound)
                p.grad.copy_(g)
            ms.mul_(self.beta).add_((1 - self.beta) * g * g)
