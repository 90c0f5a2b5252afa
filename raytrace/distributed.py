"""Multi-view fitting on torch.distributed: each rank renders its share of the views.

Launch the same script with ``torchrun --nproc_per_node=N`` (or as one plain process): every
rank holds the same parameters, renders the views :func:`shard_views` gives it, and
:func:`sum_gradients` returns the gradient of the loss summed over *all* views, identical on
every rank, so every rank takes the same optimiser step.

    setup = rt.distributed.init()                      # torchrun's environment, or one process
    for it in range(start, iterations):
        x = rt.optim.from_differential(M, u)           # the Laplacian solve, on every rank
        x_leaf = x.detach().requires_grad_()
        def view_loss(i):                              # this view's share of the mean loss
            image = rt.render(scene(i, x_leaf), spp=4, seed=rt.distributed.view_seed(0, it, i),
                              threads=setup.threads)
            return (image - targets[i]).square().mean() / num_views
        (g_x,), loss = rt.distributed.sum_gradients(view_loss, num_views, [x_leaf])
        opt.zero_grad(); x.backward(g_x); opt.step()   # back through the solve; same step everywhere

Exactness. With ``exact=True`` (the default) the sum over views is a fixed binary tree over the
view indices (``sum[a, b) = sum[a, m) + sum[m, b)``, ``m = a + (b - a) // 2``; one view's
gradient at each leaf). Each rank sums the largest subtrees that lie in its share of the views,
the ranks exchange those partial sums (``all_gather``) and every rank completes the same tree.
Floating-point addition is not associative, but each node is the same two operands added in
the same order whatever the number of ranks, so the result is bit for bit the one a single
process computes (the renders themselves are deterministic for any thread count). With
``exact=False`` each rank sums its share and one ``all_reduce`` adds the ranks' sums: less
traffic (one vector instead of about one per rank), the same result on every rank, but not
bit for bit the single-process sum. docs/distributed.md measures both.

Seeds (:func:`view_seed`) are a function of (base seed, iteration, view) only, never of the rank
or the number of ranks.

Faults. A collective that fails because another rank raised, was killed or lost its connection
raises :class:`PeerError` on every surviving rank; a rank that stops answering makes the others
raise after the process group's timeout (``init(timeout_s=...)``). Under torchrun, a rank that
exits non-zero makes the agent stop the other ranks and report the first failure. Checkpoints
(:func:`save_checkpoint`, :func:`load_checkpoint`) are written by rank 0, atomically, and read
by rank 0 and broadcast, so a restarted job resumes from the last one.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.distributed as dist

from .io.atomic import atomic_write

__all__ = ["PeerError", "Setup", "all_reduce_gradients", "broadcast_object", "check_in_sync", "finalize", "init",
           "load_checkpoint", "save_checkpoint", "shard_views", "sum_gradients", "view_seed"]

_MASK64 = (1 << 64) - 1


class PeerError(RuntimeError):
    """A collective failed on this rank because another rank stopped: it raised, was killed,
    lost its connection, or did not arrive within the process group's timeout."""


@dataclass(frozen=True)
class Setup:
    """What :func:`init` found.

    Attributes:
        rank, world_size: this process's rank and the number of processes (0 and 1 without
            torchrun).
        local_rank, local_world_size: the same on this machine.
        threads: render threads for this process (pass ``threads=`` to ``rt.render``):
            ``RT_NUM_THREADS`` if set, else the machine's cores divided by the processes on it.
        backend: "gloo", "nccl" or None (one process, no process group).
    """
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    threads: int
    backend: Optional[str]

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes pictures, logs and checkpoints."""
        return self.rank == 0


# ------------------------------------------------------------------------------------------------
# Process group
# ------------------------------------------------------------------------------------------------
def init(backend: Optional[str] = None, timeout_s: float = 600.0, threads: Optional[int] = None,
         set_torch_threads: bool = True) -> Setup:
    """Joins the process group torchrun describes in the environment (RANK, WORLD_SIZE,
    MASTER_ADDR, ...), or sets up a single process when WORLD_SIZE is unset or 1.

    Args:
        backend: "gloo" (CPUs) or "nccl" (GPUs); default: nccl when CUDA is available, else gloo.
        timeout_s: how long a collective waits for the other ranks before it raises (seconds,
            > 0). It bounds the wait when a rank hangs; it must exceed the longest time one
            rank may spend between two collectives more than another (its share of the views).
        threads: render threads per process (default: RT_NUM_THREADS, else the machine's cores
            divided by LOCAL_WORLD_SIZE, at least 1), so that the processes on one machine do
            not oversubscribe its cores.
        set_torch_threads: also set torch's intra-op threads to that number when several
            processes share the machine (LOCAL_WORLD_SIZE > 1); one process keeps torch's own.

    Returns:
        :class:`Setup`.
    """
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0 (got {timeout_s!r})")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend, timeout=timedelta(seconds=float(timeout_s)))
    if threads is None:
        env = os.environ.get("RT_NUM_THREADS", "").strip()
        threads = int(env) if env.isdigit() and int(env) > 0 else max(1, (os.cpu_count() or 1) // max(1, local_world))
    if set_torch_threads and world > 1 and local_world > 1:
        torch.set_num_threads(threads)
    rank, world = _rank_world()
    return Setup(rank=rank, world_size=world, local_rank=local_rank if world > 1 else 0,
                 local_world_size=local_world if world > 1 else 1, threads=int(threads),
                 backend=dist.get_backend() if dist.is_initialized() else None)


def finalize() -> None:
    """Leaves the process group (a no-op for a single process)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def _rank_world() -> Tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _collective(what: str, fn: Callable, *args, **kwargs):
    """Runs one torch.distributed call; a failure (a peer gone, a timeout) becomes a PeerError
    that says what happened and where."""
    try:
        return fn(*args, **kwargs)
    except Exception as e:  # gloo raises RuntimeError, DistBackendError or DistNetworkError
        rank, world = _rank_world()
        raise PeerError(f"raytrace.distributed: rank {rank} of {world}: {what} failed: another rank has stopped "
                        f"(it raised, was killed or lost its connection) or did not arrive within the process "
                        f"group's timeout; that rank's own error says why. ({type(e).__name__}: {e})") from e


def _comm_device(t: torch.Tensor) -> torch.device:
    """NCCL moves CUDA tensors only; gloo moves both."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else t.device


# ------------------------------------------------------------------------------------------------
# Views and seeds
# ------------------------------------------------------------------------------------------------
def shard_views(num_views: int, rank: int, world_size: int) -> range:
    """The views rank `rank` of `world_size` renders: a contiguous range, sizes within one of
    each other, every view on exactly one rank (ranks past the number of views get none).

    Rank r gets ``range(r * V // W, (r + 1) * V // W)``. Contiguous ranges keep the subtrees of
    the exact sum few (about one per rank when W is a power of two)."""
    for name, value in (("num_views", num_views), ("world_size", world_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1 (got {value!r})")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ValueError(f"rank must be an integer in [0, {world_size}) (got {rank!r})")
    return range(rank * num_views // world_size, (rank + 1) * num_views // world_size)


def _splitmix64(z: int) -> int:
    z = (z + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def view_seed(base_seed: int, iteration: int, view: int) -> int:
    """The render seed of `view` at `iteration`: a hash (SplitMix64) of the three, in
    [0, 2**63), so it is the same whichever rank renders the view and however many ranks
    there are, and distinct (up to hash collisions) across views and iterations.

    Args:
        base_seed, iteration, view: integers >= 0 (the run's seed, the optimiser step, the
            view's index in the full list of views).
    """
    for name, value in (("base_seed", base_seed), ("iteration", iteration), ("view", view)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0 (got {value!r})")
    z = _splitmix64(base_seed & _MASK64)
    z = _splitmix64(z ^ (iteration & _MASK64))
    z = _splitmix64(z ^ (view & _MASK64))
    return z >> 1


# ------------------------------------------------------------------------------------------------
# The exact sum: a fixed binary tree over the views
# ------------------------------------------------------------------------------------------------
def _middle(a: int, b: int) -> int:
    return a + (b - a) // 2


def _cover(a: int, b: int, lo: int, hi: int, out: List[Tuple[int, int]]) -> None:
    """Appends, left to right, the largest tree nodes [a', b') inside [lo, hi) below node [a, b)."""
    if b <= lo or a >= hi or a >= b:
        return
    if lo <= a and b <= hi:
        out.append((a, b))
        return
    m = _middle(a, b)
    _cover(a, m, lo, hi, out)
    _cover(m, b, lo, hi, out)


def _nodes(num_views: int, rank: int, world_size: int) -> List[Tuple[int, int]]:
    """The tree nodes whose sums rank `rank` contributes: those tiling its share of the views."""
    share = shard_views(num_views, rank, world_size)
    out: List[Tuple[int, int]] = []
    _cover(0, num_views, share.start, share.stop, out)
    return out


def _tree_sum(a: int, b: int, value: Callable[[int, int], Optional[torch.Tensor]]) -> torch.Tensor:
    """The sum of node [a, b): value(a, b) when that is known (not None), else the sum of its two
    children, left + right. Leaves (b = a + 1) must be known."""
    known = value(a, b)
    if known is not None:
        return known
    if b - a == 1:
        raise RuntimeError(f"raytrace.distributed: no value for view {a} (internal error)")
    m = _middle(a, b)
    left = _tree_sum(a, m, value)
    return left + _tree_sum(m, b, value)


# ------------------------------------------------------------------------------------------------
# Gradients
# ------------------------------------------------------------------------------------------------
def _flat_view(view_loss: Callable[[int], torch.Tensor], i: int, params: Sequence[torch.Tensor],
               dtype: torch.dtype) -> torch.Tensor:
    """[P + 1]: the gradient of view_loss(i) w.r.t. every param, flattened, then the loss."""
    loss = view_loss(i)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise TypeError(f"view_loss({i}) must return a scalar tensor (got {type(loss).__name__}"
                        f"{'' if not isinstance(loss, torch.Tensor) else ' of shape ' + str(list(loss.shape))})")
    if loss.requires_grad:
        grads = torch.autograd.grad(loss.reshape(()), list(params), allow_unused=True)
    else:
        grads = [None] * len(params)
    parts = [torch.zeros(p.numel(), dtype=dtype, device=p.device) if g is None else g.detach().reshape(-1).to(dtype)
             for p, g in zip(params, grads)]
    device = params[0].device
    return torch.cat([x.to(device) for x in parts] + [loss.detach().reshape(1).to(dtype=dtype, device=device)])


def _unflatten(flat: torch.Tensor, params: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    out, k = [], 0
    for p in params:
        out.append(flat[k:k + p.numel()].reshape(p.shape).to(dtype=p.dtype, device=p.device))
        k += p.numel()
    return out


def sum_gradients(view_loss: Callable[[int], torch.Tensor], num_views: int, params: Sequence[torch.Tensor],
                  exact: bool = True) -> Tuple[List[torch.Tensor], torch.Tensor]:
    """The gradient of ``sum_i view_loss(i)`` over all views, with this rank rendering only its
    share (:func:`shard_views`); every rank gets the same result.

    Args:
        view_loss: ``view_loss(i) -> scalar tensor``, view i's term of the loss, differentiable
            in `params`. For a mean over the views, divide each term by ``num_views`` (the
            normalisation must not depend on the number of ranks). Called once per view of
            this rank's share, in increasing order; each call's graph is freed after its
            gradient is taken, so memory does not grow with the number of views.
        num_views: V >= 1, the total number of views (on all ranks).
        params: leaf tensors that require grad (e.g. ``x.detach().requires_grad_()`` for
            positions computed from a latent, then ``x.backward(grad)``). Their gradients
            are returned, not accumulated into ``.grad``.
        exact: True: the fixed tree sum of the module docstring, bit for bit the same for any
            number of ranks (an all_gather of each rank's subtree sums); False: each rank's
            sum, then one all_reduce (less traffic; not bit for bit the single-process sum).

    Returns:
        (gradients, one per param with its shape, dtype and device; the summed loss, a scalar
        float tensor, detached). With one process (no process group) both modes compute the
        same tree sum as the exact mode.
    """
    params = list(params)
    if not params:
        raise ValueError("params must name at least one tensor")
    for k, p in enumerate(params):
        if not isinstance(p, torch.Tensor) or not p.requires_grad:
            raise ValueError(f"params[{k}] must be a tensor that requires grad")
    if isinstance(num_views, bool) or not isinstance(num_views, int) or num_views < 1:
        raise ValueError(f"num_views must be an integer >= 1 (got {num_views!r})")
    dtype = params[0].dtype
    for p in params[1:]:
        dtype = torch.promote_types(dtype, p.dtype)
    rank, world = _rank_world()
    views: Dict[Tuple[int, int], torch.Tensor] = {}

    def leaf(a: int, b: int) -> Optional[torch.Tensor]:
        return _flat_view(view_loss, a, params, dtype) if b - a == 1 else None

    mine = _nodes(num_views, rank, world)
    partial = [_tree_sum(a, b, leaf) for a, b in mine]  # this rank's subtrees, each in the fixed order
    size = sum(p.numel() for p in params) + 1
    if world == 1:
        flat = partial[0]
    elif exact:
        # Every rank's nodes are known to all: gather them (padded to the longest list) and
        # complete the tree from the top.
        all_nodes = [_nodes(num_views, r, world) for r in range(world)]
        most = max(len(n) for n in all_nodes)
        device = _comm_device(params[0])
        send = torch.zeros((most, size), dtype=dtype, device=device)
        for k, t in enumerate(partial):
            send[k] = t.to(device)
        recv = [torch.empty_like(send) for _ in range(world)]
        _collective("all_gather of the gradients", dist.all_gather, recv, send)
        for r, nodes in enumerate(all_nodes):
            for k, node in enumerate(nodes):
                views[node] = recv[r][k]
        flat = _tree_sum(0, num_views, lambda a, b: views.get((a, b)))
    else:
        device = _comm_device(params[0])
        flat = torch.zeros(size, dtype=dtype, device=device)
        for t in partial:
            flat = flat + t.to(device)
        _collective("all_reduce of the gradients", dist.all_reduce, flat)
    flat = flat.to(params[0].device)
    return _unflatten(flat[:-1], params), flat[-1].clone()


def all_reduce_gradients(params: Sequence[torch.Tensor], ordered: bool = False) -> None:
    """Sums ``.grad`` of `params` over the ranks, in place (for a loop that calls
    ``loss.backward()`` on each rank's own views). A param without ``.grad`` counts as zeros,
    and gets a ``.grad`` (zeros where no rank had one, also with one process: an optimiser
    then treats it the same whatever the number of ranks).

    Args:
        params: the tensors whose ``.grad`` is summed (the same list, in the same order, on
            every rank).
        ordered: False: one all_reduce. True: all_gather and add rank 0's, rank 1's, ... in
            that order on every rank (a fixed order, so repeatable for a given number of
            ranks; for a result that does not depend on it, use :func:`sum_gradients`).
    """
    params = list(params)
    _, world = _rank_world()
    if world == 1 or not params:
        for p in params:  # (as with several ranks: every param gets a .grad)
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        return
    dtype = params[0].dtype
    for p in params[1:]:
        dtype = torch.promote_types(dtype, p.dtype)
    device = _comm_device(params[0])
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.detach().reshape(-1).to(dtype=dtype, device=device) for g in grads])
    if ordered:
        recv = [torch.empty_like(flat) for _ in range(world)]
        _collective("all_gather of the gradients", dist.all_gather, recv, flat)
        flat = recv[0].clone()
        for t in recv[1:]:
            flat += t
    else:
        _collective("all_reduce of the gradients", dist.all_reduce, flat)
    for p, g in zip(params, _unflatten(flat, params)):
        p.grad = g


# ------------------------------------------------------------------------------------------------
# Objects, checks and checkpoints
# ------------------------------------------------------------------------------------------------
def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank `src`'s `obj` (any picklable object: e.g. a remeshed (vertices, faces)) on every
    rank; the object itself with one process."""
    _, world = _rank_world()
    if world == 1:
        return obj
    box = [obj]
    _collective("broadcast", dist.broadcast_object_list, box, src=src)
    return box[0]


def _digest(tensors: Sequence[torch.Tensor]) -> int:
    """A 63-bit hash of the tensors' bytes (shapes, dtypes and values)."""
    import hashlib
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}{list(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return int.from_bytes(h.digest()[:8], "little") >> 1


def check_in_sync(tensors: Sequence[torch.Tensor], what: str = "the parameters") -> None:
    """Raises a RuntimeError on every rank unless the tensors are bit for bit the same on
    every rank (compares a hash of their bytes; one small all_gather). A no-op with one process."""
    rank, world = _rank_world()
    if world == 1:
        return
    mine = torch.tensor([_digest(tensors)], dtype=torch.int64)
    if dist.get_backend() == "nccl":
        mine = mine.cuda()
    got = [torch.empty_like(mine) for _ in range(world)]
    _collective("all_gather of the parameter hashes", dist.all_gather, got, mine)
    values = [int(g) for g in got]
    if len(set(values)) > 1:
        differ = [r for r, v in enumerate(values) if v != values[0]]
        raise RuntimeError(f"raytrace.distributed: {what} differ between ranks (ranks {differ} differ from rank 0)")


def save_checkpoint(path: Union[str, os.PathLike], state: Dict[str, Any]) -> None:
    """Writes `state` with ``torch.save`` on rank 0 only, atomically (the file is the old
    checkpoint or the complete new one, never half written); other ranks return at once.

    Args:
        path: the checkpoint file (its folder must exist on rank 0's machine).
        state: what a restart needs, e.g. ``{"iteration": it + 1, "u": u, "optimizer":
            opt.state_dict(), "faces": faces, "losses": [...]}``: tensors, numbers, strings and
            lists, tuples and dicts of them (what ``torch.load(weights_only=True)`` reads).
    """
    rank, _ = _rank_world()
    if rank != 0:
        return
    with atomic_write(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Union[str, os.PathLike]) -> Optional[Dict[str, Any]]:
    """The state in `path` on every rank (read by rank 0 and broadcast, so only rank 0 needs
    the file), or None on every rank when there is no such file. Tensors come back on the CPU."""
    rank, world = _rank_world()
    state = None
    error = None
    if rank == 0 and Path(path).is_file():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # every rank must learn about it, not only rank 0
            error = f"{type(e).__name__}: {e}"
    if world > 1:
        state, error = broadcast_object((state, error))
    if error is not None:
        raise ValueError(f"{path}: not a readable checkpoint ({error})")
    return state

