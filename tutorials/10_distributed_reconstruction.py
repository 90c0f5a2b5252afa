"""Tutorial 10: tutorial 07's Large Steps reconstruction from many views, on many processes.

The teapot of tutorial 07 (or its blob), seen by 32 cameras (16 with ``--quick``) each with
its own rig of three coloured lights, is recovered from a sphere with Large Steps
(``x = (I + 19 L)^-1 u``, UniformAdam on u) and two remeshes. The views are shared out among
the processes of a ``torchrun`` job (``rt.distributed``): each rank renders its share of the
views and takes the gradient of its part of the loss, the ranks add their gradients in a fixed
order, and every rank takes the same step, so every rank holds the same mesh. The result is
bit for bit the one of a single process with the same seed, whatever the number of ranks.

    python tutorials/10_distributed_reconstruction.py --quick                  # one process
    torchrun --nproc_per_node=2 tutorials/10_distributed_reconstruction.py     # two on one machine
    torchrun --nnodes=4 --nproc_per_node=1 --rdzv-backend=c10d \\
        --rdzv-endpoint=HOST:29500 --rdzv-id=fit10 tutorials/10_distributed_reconstruction.py  # four machines

Options beyond the common ones (``--quick``, ``--out``, ``--iterations``, ``--seed``,
``--threads``, ``--no-progress``): ``--views N`` (default 32, 16 with --quick), ``--target
teapot|blob``, ``--fast`` (one all_reduce instead of the exact ordered sum),
``--checkpoint PATH`` with ``--checkpoint-every K`` (default 5): save the optimisation state
every K iterations and resume from PATH when it exists (run the same command again after a
failure). Seeds: view i at iteration t renders with ``rt.distributed.view_seed(seed, t, i)``.

Rank 0 writes, into the output folder: target.png, initial.png, final.png, comparison.png
(target | start | result, seen from the side, between the training views), optimisation.gif
(target | current render of the first view), loss.png (the loss and the Chamfer distance per
iteration) and result.json (with the seconds per iteration and the
number of ranks). See docs/distributed.md.
"""
from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch
from torch.distributed.elastic.multiprocessing.errors import record

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from _common import rt  # noqa: E402

rtd = rt.distributed
NAME = "10_distributed_reconstruction"


def _load_tutorial_07():
    spec = importlib.util.spec_from_file_location("tutorial_07_shape_reconstruction",
                                                  Path(__file__).resolve().parent / "07_shape_reconstruction.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


t07 = _load_tutorial_07()  # the targets, the views and their lights, the Chamfer distance


def _take(argv: List[str], flag: str, default: Optional[str], has_value: bool = True):
    """Removes `flag` (and its value) from argv; returns the value (True for a bare flag)."""
    if flag not in argv:
        return default
    k = argv.index(flag)
    if not has_value:
        del argv[k]
        return True
    if k + 1 >= len(argv):
        raise SystemExit(f"{flag} needs a value")
    value = argv[k + 1]
    del argv[k:k + 2]
    return value


@record  # under torchrun: a rank's traceback goes into the job's error report
def main(argv: Optional[Sequence[str]] = None) -> Dict:
    # torch's own threads only slow this script's small tensor operations (their OpenMP workers
    # spin against the render threads: --quick on one process took 0.76 s per iteration with
    # torch's 2 threads, 0.25 s with 1), so torch runs on one thread for the run's length.
    torch_threads = torch.get_num_threads()
    try:
        return _main(argv)
    finally:
        torch.set_num_threads(torch_threads)


def _main(argv: Optional[Sequence[str]]) -> Dict:
    """Runs the tutorial on this rank; returns the result dict (rank 0 also writes it to
    result.json). Result keys: "chamfer" (final), "initial_errors" ({"chamfer": start}),
    "views", "world_size", "threads_per_rank", "exact", "seconds_per_iteration",
    "start_iteration" (> 0 when resumed), "vertices", "remesh_failures", plus _common's."""
    argv = list(sys.argv[1:] if argv is None else argv)
    views_arg = _take(argv, "--views", None)
    target_name = _take(argv, "--target", "teapot")
    fast = bool(_take(argv, "--fast", False, has_value=False))
    checkpoint = _take(argv, "--checkpoint", None)
    checkpoint_every = int(_take(argv, "--checkpoint-every", "5"))
    if target_name not in t07.TARGETS:
        raise SystemExit(f"--target must be one of {', '.join(t07.TARGETS)} (got {target_name!r})")
    setup = rtd.init(threads=None)
    args = _common.parse_args(argv, __doc__, NAME, full_iterations=80, quick_iterations=20)
    threads = args.threads or setup.threads
    torch.set_num_threads(1)
    num_views = int(views_arg) if views_arg is not None else (16 if args.quick else 32)
    if num_views < 1 or checkpoint_every < 1:
        raise SystemExit("--views and --checkpoint-every must be >= 1")
    if args.quick:
        s = dict(size=24, spp=2, start_subdivisions=3, chamfer_samples=3000, remesh=[(0.3, 0.75), (0.6, 0.55)],
                 picture=64)
    else:
        s = dict(size=64, spp=2, start_subdivisions=3, chamfer_samples=8000, remesh=[(0.4, 0.7), (0.7, 0.5)],
                 picture=128)
    s.update(lr=0.3, lambda_=19.0, lr_final=0.1, lr_hold=0.5, start_radius=0.75)
    iterations = args.iterations
    remesh_at = {int(round(f * iterations)): h for f, h in s["remesh"]}

    # Views and targets: each rank renders the targets of its own share of the views only.
    views = t07.Views(t07.view_directions(num_views), s["size"])
    tv, tf, tn = t07.make_target(target_name, args.quick)
    share = rtd.shard_views(num_views, setup.rank, setup.world_size)
    with torch.no_grad():
        targets = {i: rt.render(views.scene(i, tv, tf, tn), spp=64, max_bounces=1, seed=args.seed + 50_000 + i,
                                threads=threads) for i in share}
    if setup.is_main:
        chamfer = t07.Chamfer(tv, tf, s["chamfer_samples"], args.seed + 7)
        picture = t07.Views(t07.view_directions(1, offset=1.3), s["picture"])  # from the side, between views
        still = lambda v, f, n=None: rt.render(picture.scene(0, v, f, n), spp=32, max_bounces=1,
                                               seed=args.seed + 90_000, threads=threads)
    else:
        args.no_progress = True

    # The start: an icosphere, Large Steps on it.
    sphere = rt.sphere(radius=s["start_radius"], subdivisions=s["start_subdivisions"])
    x0, faces = sphere.vertices, sphere.indices
    h0 = t07.mean_edge_length(x0, faces)

    def large_steps(x: torch.Tensor, f: torch.Tensor):
        M = rt.optim.compute_matrix(x, f, lambda_=s["lambda_"])
        u = rt.optim.to_differential(M, x.detach()).detach().requires_grad_()
        return M, u, rt.optim.UniformAdam([u], lr=s["lr"])

    M, u, opt = large_steps(x0, faces)
    log = _common.RunLog(args)
    start, remesh_failures = 0, 0
    if checkpoint is not None:
        state = rtd.load_checkpoint(checkpoint)
        if state is not None:
            faces = state["faces"]
            M, u, opt = large_steps(state["u"], faces)  # (M depends on the connectivity only)
            with torch.no_grad():
                u.copy_(state["u"])
            opt.load_state_dict(state["optimizer"])
            start, remesh_failures = state["iteration"], state["remesh_failures"]
            log.losses, log.errors = list(state["losses"]), {k: list(v) for k, v in state["errors"].items()}
            print(f"rank {setup.rank}: resumed from {checkpoint} at iteration {start}", flush=True)
    if setup.is_main:
        with torch.no_grad():  # (the GIF shows view 0, which rank 0 renders unless ranks outnumber views)
            log.set_target(targets[0] if 0 in targets else rt.render(views.scene(0, tv, tf, tn), spp=64, max_bounces=1,
                                                                     seed=args.seed + 50_000, threads=threads))

    times: List[float] = []
    steps = log.progress(iterations) if setup.is_main else range(iterations)
    for it in steps:
        if it < start:
            continue
        t0 = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = s["lr"] * _common.lr_schedule(it, iterations, s["lr_final"], s["lr_hold"])
        x = rt.optim.from_differential(M, u)  # the Laplacian solve: on every rank (docs/distributed.md)
        x_leaf = x.detach().requires_grad_()
        seen: Dict[int, torch.Tensor] = {}

        def view_loss(i: int) -> torch.Tensor:
            image = rt.render(views.scene(i, x_leaf, faces), spp=s["spp"], max_bounces=1,
                              seed=rtd.view_seed(args.seed, it, i), threads=threads)
            if i == 0:
                seen[0] = image.detach()
            return (image - targets[i]).square().mean() / num_views  # the mean over all views

        (g_x,), loss = rtd.sum_gradients(view_loss, num_views, [x_leaf], exact=not fast)
        if setup.is_main:  # the loss and error of the mesh that rendered this iteration
            log.record(loss, {"chamfer": chamfer(x_leaf.detach(), faces)}, image=seen.get(0))
        opt.zero_grad()
        x.backward(g_x)  # through the solve: grad_u = M^-1 grad_x
        opt.step()
        if it + 1 in remesh_at:
            # Rank 0 remeshes and sends the new mesh to all (one answer, whatever the platform).
            new = None
            if setup.is_main:
                try:
                    new = rt.optim.remesh(u_to_x(M, u), faces, remesh_at[it + 1] * h0)
                except (ValueError, RuntimeError):
                    new = None  # a tangled mesh may not remesh: keep optimising it as it is
            new = rtd.broadcast_object(new)
            if new is None:
                remesh_failures += 1
                xs = u_to_x(M, u)
            else:
                xs, faces = new
            M, u, opt = large_steps(xs.float(), faces)
        times.append(time.perf_counter() - t0)
        if checkpoint is not None and ((it + 1) % checkpoint_every == 0 or it + 1 == iterations):
            rtd.save_checkpoint(checkpoint, {
                "iteration": it + 1, "u": u.detach(), "faces": faces, "optimizer": opt.state_dict(),
                "remesh_failures": remesh_failures, "losses": log.losses, "errors": log.errors})

    x = u_to_x(M, u)
    rtd.check_in_sync([x, faces], "the meshes")
    result = {"views": num_views, "world_size": setup.world_size, "threads_per_rank": threads, "exact": not fast,
              "target": target_name, "start_iteration": start, "vertices": int(x.shape[0]),
              "remesh_failures": remesh_failures,
              "seconds_per_iteration": round(sum(times) / max(1, len(times)), 4)}
    if setup.is_main:
        result["chamfer"] = chamfer(x, faces)
        with torch.no_grad():
            result = log.finish(target=still(tv, tf, tn), initial=still(x0, sphere.indices), final=still(x, faces),
                                result=result)
    rtd.finalize()
    return result


def u_to_x(M, u: torch.Tensor) -> torch.Tensor:
    """The vertex positions [N, 3] of the latent u, detached."""
    with torch.no_grad():
        return rt.optim.from_differential(M, u)


if __name__ == "__main__":
    r = main()
    if "chamfer" in r:
        print(f"{r['target']}: Chamfer {r['initial_errors']['chamfer']:.4f} -> {r['chamfer']:.4f} from {r['views']} "
              f"views on {r['world_size']} rank(s), {r['seconds_per_iteration']:.3f} s per iteration; "
              f"pictures in {r['out']}")
