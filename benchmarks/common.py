"""Helpers shared by the benchmarks: timing and a description of the machine."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from typing import Callable, List, Sequence


def time_calls(fn: Callable[[], object], repeats: int) -> List[float]:
    """Calls fn() `repeats` times; returns the wall-clock seconds of each call."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> str:
    """One line per fact: cores, CPU, Python, torch, numpy (and embreex when installed)."""
    lines = [
        f"nproc: {os.cpu_count()}",
        f"cpu: {cpu_model()}",
        f"python: {sys.version.split()[0]}",
    ]
    for name in ("torch", "numpy", "embreex"):
        try:
            from importlib.metadata import version

            lines.append(f"{name}: {version(name)}")
        except Exception:
            lines.append(f"{name}: not installed")
    import importlib.util

    spec = importlib.util.find_spec("raytrace")  # locates the package without importing it
    lines.append(f"raytrace: {spec.origin if spec else 'not found'}")
    lines.append(f"RT_NUM_THREADS: {os.environ.get('RT_NUM_THREADS', '(unset)')}")
    lines.append(load_line("at start") + "  (other work on the machine skews the figures)")
    return "\n".join(lines)


def load_line(when: str) -> str:
    """The load average, printed at the start and the end of a run: a run is only clean when
    both are well below the number of cores."""
    try:
        load = os.getloadavg()
    except OSError:
        return f"load average {when}: unknown"
    return f"load average (1, 5, 15 min) {when}: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub pipe table, aligned so it also reads well in a terminal."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    fmt = lambda r: "| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    return "\n".join([fmt(cells[0]), sep] + [fmt(r) for r in cells[1:]])
