"""Timing and peak-memory measurement shared by the benchmark modules.

Each ``bench_*.py`` module defines ``run(measure, quick) -> list[dict]``; ``measure(fn)`` calls
``fn`` ``repeat`` times and returns ``(median_seconds, peak_rss_mb, last_result)``. Peak memory
is the process's resident set size sampled every 5 ms while ``fn`` runs (each module runs in
its own process, so earlier cases do not inflate it).
"""
from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["measure", "row", "rss_mb"]

_PAGE = 4096


def rss_mb() -> float:
    """Current resident set size of this process in MB (Linux /proc)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * _PAGE / 1e6


def measure(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, float, Any]:
    """Median wall time over ``repeat`` calls and the peak RSS seen during them."""
    peak = rss_mb()
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss_mb())
            time.sleep(0.005)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    times = []
    result = None
    try:
        for _ in range(repeat):
            t0 = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - t0)
    finally:
        stop.set()
        watcher.join()
    return statistics.median(times), max(peak, rss_mb()), result


def row(case: str, engine: str, n: int, median_s: float, peak_mb: float, reference: str | None = None,
        reference_s: float | None = None, **extra: Any) -> dict[str, Any]:
    """One results row; ``ratio`` is reference time / this time (above 1 means faster than the reference)."""
    out = {
        "case": case,
        "engine": engine,
        "n": int(n),
        "median_s": round(median_s, 4),
        "peak_mb": round(peak_mb, 1),
        "reference": reference,
        "ratio": round(reference_s / median_s, 2) if reference_s and median_s else None,
    }
    out.update(extra)
    return out


def measure_isolated(target: str, *args: Any, repeat: int = 3) -> tuple[float, float, Any]:
    """Like :func:`measure`, in a fresh Python process, so peak memory is the call's own.

    ``target`` is ``"module:function"``; the function's return value must be JSON-serializable
    (return a small summary, not a frame).
    """
    import json
    import subprocess
    import sys
    from pathlib import Path

    module, func = target.split(":")
    code = (
        "import json, sys, importlib\n"
        "from benchmarks.harness import measure\n"
        f"fn = getattr(importlib.import_module({module!r}), {func!r})\n"
        f"args = json.loads({json.dumps(json.dumps(list(args)))})\n"
        f"t, mb, res = measure(lambda: fn(*args), repeat={repeat})\n"
        "sys.stdout.write('\\n@@RESULT@@' + json.dumps([t, mb, res]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{target} failed:\n{proc.stderr[-3000:]}")
    t, mb, res = json.loads(proc.stdout.rsplit("@@RESULT@@", 1)[1])
    return t, mb, res


def run_standalone(run: Callable[..., list[dict]], argv: list[str] | None = None) -> int:
    """Run one benchmark module on its own (``python -m benchmarks.bench_x [--quick]``), printing its rows."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    for r in run(measure, quick="--quick" in args):
        print(r)
    return 0
