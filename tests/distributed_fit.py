"""A tiny multi-view fit for tests/test_distributed.py, run by torchrun or as one process.

Every kind of parameter at once: a mesh's vertices through Large Steps (UniformAdam on
u = (I + 19 L) x), a material's diffuse reflectance, an area light's intensity and an offset
shared by all cameras' positions (Adam). V views of a small sphere on a circle, each with its
own camera; the target renders a squashed sphere, another colour and light, and shifted
cameras. Each rank writes ``rank<r>.pt`` into --out: the gradient of every parameter and the
loss at every iteration, the final parameters and the iteration it started from.

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/distributed_fit.py --out DIR
    python tests/distributed_fit.py --out DIR                      # the same fit in one process

Test hooks: ``--fail-at K --fail-rank R --fail-how raise|kill|hang`` make rank R raise, SIGKILL
itself or sleep for an hour at the start of iteration K of a first launch (not of a restarted one, see
TORCHELASTIC_RESTART_COUNT); ``--checkpoint PATH`` saves after every iteration and resumes.
"""
from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import raytrace as rt  # noqa: E402
from raytrace import distributed as rtd  # noqa: E402

TRUE = dict(scale=(0.8, 0.6, 0.75), kd=(0.7, 0.4, 0.25), intensity=(14.0, 14.0, 14.0), offset=(0.06, -0.04, 0.0))
START = dict(scale=(0.7, 0.7, 0.7), kd=(0.5, 0.5, 0.5), intensity=(10.0, 10.0, 10.0), offset=(0.0, 0.0, 0.0))


def camera_positions(num_views: int) -> List[List[float]]:
    return [[3.0 * math.cos(2 * math.pi * i / num_views), 0.8, 3.0 * math.sin(2 * math.pi * i / num_views)]
            for i in range(num_views)]


def make_scene(vertices, faces, kd, intensity, eye, offset, size: int) -> rt.Scene:
    light_v = torch.tensor([[-0.6, 2.5, -0.6], [0.6, 2.5, -0.6], [0.6, 2.5, 0.6], [-0.6, 2.5, 0.6]])
    light_f = torch.tensor([[0, 1, 2], [0, 2, 3]])  # normal -y: faces the sphere
    camera = rt.Camera(position=torch.tensor(eye) + offset, look_at=[0.0, 0.0, 0.0], up=[0.0, 1.0, 0.0], fov=40.0,
                       resolution=(size, size))
    return rt.Scene(camera, [rt.Shape(vertices, faces, 0), rt.Shape(light_v, light_f, 1)],
                    [rt.Material(diffuse_reflectance=kd), rt.Material(diffuse_reflectance=[0.0, 0.0, 0.0])],
                    [rt.AreaLight(1, intensity)])


def parse(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--views", type=int, default=4)
    p.add_argument("--iterations", type=int, default=3)
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--spp", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fast", action="store_true", help="all_reduce instead of the exact tree sum")
    p.add_argument("--checkpoint", type=Path, default=None)
    p.add_argument("--fail-at", type=int, default=-1)
    p.add_argument("--fail-rank", type=int, default=1)
    p.add_argument("--fail-how", choices=("raise", "kill", "hang"), default="raise")
    p.add_argument("--timeout", type=float, default=60.0)
    return p.parse_args(argv)


def run(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse(argv)
    setup = rtd.init(timeout_s=args.timeout, threads=1)
    mesh = rt.sphere(subdivisions=1)
    faces = mesh.indices
    eyes = camera_positions(args.views)
    true_v = mesh.vertices * torch.tensor(TRUE["scale"])
    targets: Dict[int, torch.Tensor] = {}

    def target(i: int) -> torch.Tensor:  # rendered by the rank that needs it, once
        if i not in targets:
            with torch.no_grad():
                scene = make_scene(true_v, faces, TRUE["kd"], TRUE["intensity"], eyes[i], torch.tensor(TRUE["offset"]),
                                   args.size)
                targets[i] = rt.render(scene, spp=8, seed=rtd.view_seed(args.seed + 1, 0, i), threads=setup.threads)
        return targets[i]

    # Parameters and optimisers
    M = rt.optim.compute_matrix(mesh.vertices, faces, lambda_=19.0)
    u = rt.optim.to_differential(M, mesh.vertices * torch.tensor(START["scale"])).detach().requires_grad_()
    kd = torch.tensor(START["kd"], requires_grad=True)
    intensity = torch.tensor(START["intensity"], requires_grad=True)
    offset = torch.tensor(START["offset"], requires_grad=True)
    opt_u = rt.optim.UniformAdam([u], lr=0.02)
    opt_rest = torch.optim.Adam([kd, intensity, offset], lr=0.02)
    history: Dict[str, List] = {"grads": [], "losses": []}
    start = 0
    if args.checkpoint is not None:
        state = rtd.load_checkpoint(args.checkpoint)
        if state is not None:
            with torch.no_grad():
                for t, name in ((u, "u"), (kd, "kd"), (intensity, "intensity"), (offset, "offset")):
                    t.copy_(state[name])
            opt_u.load_state_dict(state["opt_u"])
            opt_rest.load_state_dict(state["opt_rest"])
            history = state["history"]
            start = state["iteration"]

    first_launch = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
    for it in range(start, args.iterations):
        if it == args.fail_at and setup.rank == args.fail_rank and first_launch:
            if args.fail_how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if args.fail_how == "hang":
                time.sleep(3600)
            raise RuntimeError(f"injected failure on rank {setup.rank} at iteration {it}")
        x = rt.optim.from_differential(M, u)
        x_leaf = x.detach().requires_grad_()

        def view_loss(i: int) -> torch.Tensor:
            scene = make_scene(x_leaf, faces, kd, intensity, eyes[i], offset, args.size)
            image = rt.render(scene, spp=args.spp, seed=rtd.view_seed(args.seed, it, i), threads=setup.threads)
            return (image - target(i)).square().mean() / args.views

        (g_x, g_kd, g_i, g_o), loss = rtd.sum_gradients(view_loss, args.views, [x_leaf, kd, intensity, offset],
                                                         exact=not args.fast)
        opt_u.zero_grad()
        opt_rest.zero_grad()
        x.backward(g_x)  # through the Laplacian solve, on every rank
        kd.grad, intensity.grad, offset.grad = g_kd, g_i, g_o
        history["grads"].append([t.grad.clone() for t in (u, kd, intensity, offset)])
        history["losses"].append(loss)
        opt_u.step()
        opt_rest.step()
        if args.checkpoint is not None:
            rtd.save_checkpoint(args.checkpoint, {
                "iteration": it + 1, "u": u.detach(), "kd": kd.detach(), "intensity": intensity.detach(),
                "offset": offset.detach(), "opt_u": opt_u.state_dict(), "opt_rest": opt_rest.state_dict(),
                "history": history})
    params = [t.detach().clone() for t in (u, kd, intensity, offset)]
    rtd.check_in_sync(params)
    # The other helpers, on values every rank knows: rank r's gradient is r + 1 (and no .grad
    # for a second tensor, which counts as zeros).
    sums = []
    for ordered in (False, True):
        a, b = torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)
        a.grad = torch.full((3,), float(setup.rank + 1))
        rtd.all_reduce_gradients([a, b], ordered=ordered)
        sums.append((a.grad.tolist(), b.grad.tolist()))
    helpers = {"all_reduce_gradients": sums, "broadcast_object": rtd.broadcast_object({"from": setup.rank})}
    result = {"world": setup.world_size, "rank": setup.rank, "start": start, "params": params, "helpers": helpers,
              **history}
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(result, args.out / f"rank{setup.rank}.pt")
    rtd.finalize()
    return result


if __name__ == "__main__":
    run()
