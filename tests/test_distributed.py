"""Multi-view fitting on torch.distributed (raytrace.distributed, issue 13).

- The exact sum's tree: for any number of views and ranks, the ranks' subtree sums complete
  to the single-process sum bit for bit (random vectors, no processes), while a plain
  per-rank sum does not.
- Two processes (torchrun, gloo) fit tests/distributed_fit.py (Large Steps vertices, a
  material, a light and the cameras) for a few steps: the gradients of every iteration and the
  final parameters equal a single-process run bit for bit, on both ranks.
- Faults: a rank that raises, or hangs past the timeout, ends the job (every process exits
  non-zero) within seconds; a job killed midway (SIGKILL of one rank) and started again
  resumes from its checkpoint to the same final parameters.

Each launch takes a few seconds (mostly importing torch); the processes run one render
thread each.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import raytrace.distributed as rtd

REPO = Path(__file__).resolve().parent.parent
FIT = Path(__file__).resolve().parent / "distributed_fit.py"
ITERATIONS = 4
LAUNCH_TIMEOUT_S = 180  # a launch that takes longer is a hang


def launch(out: Path, *extra: str, nproc: int = 2) -> subprocess.CompletedProcess:
    env = dict(os.environ, RT_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", str(FIT),
           "--out", str(out), "--iterations", str(ITERATIONS), *extra]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The fit in this process, without a process group: the single-process result."""
    spec = importlib.util.spec_from_file_location("distributed_fit", FIT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    try:
        return module.run(["--out", str(tmp_path_factory.mktemp("single")), "--iterations", str(ITERATIONS)])
    finally:
        torch.set_num_threads(threads)


def same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b)) and len(a) == len(b)


# ------------------------------------------------------------------------------------------------
# Shares, seeds and the tree (no processes)
# ------------------------------------------------------------------------------------------------
def test_shards_cover_every_view_once_and_balance():
    for views in (1, 3, 4, 16, 17, 100):
        for world in (1, 2, 3, 4, 7, 64):
            shares = [rtd.shard_views(views, r, world) for r in range(world)]
            assert [i for s in shares for i in s] == list(range(views))
            assert max(map(len, shares)) - min(map(len, shares)) <= 1
    with pytest.raises(ValueError, match="rank"):
        rtd.shard_views(4, 2, 2)


def test_view_seeds_depend_on_seed_iteration_and_view_only():
    seeds = {rtd.view_seed(b, it, v) for b in range(3) for it in range(20) for v in range(50)}
    assert len(seeds) == 3 * 20 * 50  # distinct
    assert all(0 <= s < 2 ** 63 for s in seeds)
    assert rtd.view_seed(0, 5, 7) == rtd.view_seed(0, 5, 7)
    with pytest.raises(ValueError, match="view"):
        rtd.view_seed(0, 0, -1)


@pytest.mark.parametrize("views", [1, 2, 5, 16, 23, 64])
def test_subtree_sums_complete_to_the_single_process_sum(views):
    g = torch.Generator().manual_seed(views)
    # Values of many magnitudes, so that a different order of additions changes the last bits.
    per_view = [torch.randn(64, generator=g) * 10.0 ** torch.randint(-4, 5, (64,), generator=g) for _ in range(views)]
    leaf = lambda a, b: per_view[a] if b - a == 1 else None
    single = rtd._tree_sum(0, views, leaf)
    order_matters = False
    for world in (2, 3, 4, 5, 8, 64):
        known = {}
        plain = torch.zeros(64)
        for r in range(world):
            for a, b in rtd._nodes(views, r, world):
                known[(a, b)] = rtd._tree_sum(a, b, leaf)  # what rank r sends
            share = rtd.shard_views(views, r, world)
            if len(share):
                plain = plain + rtd._tree_sum(share.start, share.stop, leaf)
        assert torch.equal(rtd._tree_sum(0, views, lambda a, b: known.get((a, b))), single), world
        order_matters |= not torch.equal(plain, single)
    if views >= 16:
        assert order_matters  # (else this test could not tell an ordered sum from any other)


def test_sum_gradients_in_one_process():
    """Without a process group: the gradient and loss of the sum over views, each view's graph
    taken in view order; parameters a view does not use get zeros; arguments are checked."""
    p, q = torch.tensor([1.0, 2.0], requires_grad=True), torch.tensor(3.0, requires_grad=True)
    called = []

    def view_loss(i):
        called.append(i)
        return (i + 1) * (p ** 2).sum() + (q * i if i % 2 else torch.zeros(()))

    (gp, gq), loss = rtd.sum_gradients(view_loss, 5, [p, q])
    assert called == [0, 1, 2, 3, 4]
    assert torch.equal(gp, 15 * 2 * p.detach()) and float(gq) == 1 + 3
    assert float(loss) == 15 * 5 + 3 * (1 + 3)
    assert p.grad is None  # returned, not accumulated
    (gp,), _ = rtd.sum_gradients(lambda i: torch.zeros(()), 2, [p])  # no graph at all: zeros
    assert torch.equal(gp, torch.zeros(2))
    with pytest.raises(ValueError, match="requires grad"):
        rtd.sum_gradients(view_loss, 2, [p.detach()])
    with pytest.raises(TypeError, match="scalar"):
        rtd.sum_gradients(lambda i: p * 2, 2, [p])


# ------------------------------------------------------------------------------------------------
# Two processes against one
# ------------------------------------------------------------------------------------------------
def test_two_ranks_match_one_process_bit_for_bit(reference, tmp_path):
    r = launch(tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert reference["world"] == 1
    assert all(torch.count_nonzero(g) > 0 for g in reference["grads"][0])  # every kind of parameter moves
    for rank in (0, 1):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        assert got["world"] == 2 and got["start"] == 0
        for it in range(ITERATIONS):
            assert same(got["grads"][it], reference["grads"][it]), f"rank {rank}, iteration {it}: gradients differ"
        assert same(got["losses"], reference["losses"])
        assert same(got["params"], reference["params"]), f"rank {rank}: parameters differ"
        assert got["helpers"]["all_reduce_gradients"] == [([3.0] * 3, [0.0] * 2)] * 2  # 1 + 2, both modes
        assert got["helpers"]["broadcast_object"] == {"from": 0}


def test_fast_mode_agrees_across_ranks(reference, tmp_path):
    r = launch(tmp_path, "--fast")
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = (torch.load(tmp_path / f"rank{k}.pt") for k in (0, 1))
    assert same(a["params"], b["params"])  # (the script also checks this on every rank)
    for x, y in zip(a["params"], reference["params"]):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# Faults
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["raise", "hang"])
def test_a_failing_rank_ends_the_job(tmp_path, how):
    start = time.monotonic()
    r = launch(tmp_path, "--fail-at", "1", "--fail-how", how, "--timeout", "3")
    elapsed = time.monotonic() - start
    assert r.returncode != 0
    assert elapsed < 60, f"the job took {elapsed:.0f} s to end"
    assert not list(tmp_path.glob("rank*.pt"))  # no rank finished
    if how == "raise":
        assert "injected failure on rank 1 at iteration 1" in r.stderr
    # The surviving rank either says what happened or was stopped by torchrun's agent.
    assert "PeerError" in r.stderr or "SIGTERM" in r.stderr, r.stderr[-3000:]


def test_killed_job_resumes_from_its_checkpoint(reference, tmp_path):
    ckpt = tmp_path / "fit.ckpt"
    r = launch(tmp_path, "--checkpoint", str(ckpt), "--fail-at", "2", "--fail-how", "kill")
    assert r.returncode != 0
    saved = torch.load(ckpt, weights_only=True)
    assert 1 <= saved["iteration"] <= 2  # rank 1 died in iteration 2; rank 0 had saved 1 or 2
    r = launch(tmp_path, "--checkpoint", str(ckpt))
    assert r.returncode == 0, r.stderr[-3000:]
    for rank in (0, 1):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        assert got["start"] == saved["iteration"]
        assert same(got["params"], reference["params"]), f"rank {rank}: resumed parameters differ"
        for it in range(ITERATIONS):
            assert same(got["grads"][it], reference["grads"][it])
    assert not list(tmp_path.glob(".*.tmp*"))  # the atomic writes left no temporary files


def test_checkpoint_round_trip_and_missing_file(tmp_path):
    path = tmp_path / "state.pt"
    assert rtd.load_checkpoint(path) is None
    state = {"iteration": 3, "u": torch.arange(6.0).reshape(2, 3), "history": [1.0, 2.0]}
    rtd.save_checkpoint(path, state)
    back = rtd.load_checkpoint(path)
    assert back["iteration"] == 3 and torch.equal(back["u"], state["u"]) and back["history"] == [1.0, 2.0]
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        rtd.load_checkpoint(path)
