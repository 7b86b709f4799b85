"""Benchmark :func:`segkit.simulate.simulate_shop` on a shop of about one million events.

Used by the benchmark harness (``python -m benchmarks``) through :func:`run`; also runnable on
its own::

    .venv/bin/python benchmarks/bench_simulate.py [n_users] [repeats]

which prints the median wall time of ``repeats`` runs (default 3) for ``n_users`` visitors
(default :data:`N_USERS_1M`, about 1M events). The target is under 15 s for 1M events.
"""
from __future__ import annotations

import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from segkit.simulate import simulate_shop

#: Visitors that yield about one million events with the default arguments (~70 events each).
N_USERS_1M = 14_000
TARGET_S = 15.0


def run(measure: Callable[..., tuple[float, float, Any]], quick: bool = False) -> list[dict[str, Any]]:
    """Time ``simulate_shop`` at ~1M events with the harness's ``measure(fn) -> (median_s, peak_mb, result)``.

    Returns one row ``{case, engine, n, median_s, peak_mb, reference, ratio}``; ``n`` is the number
    of events produced. ``quick`` uses a small shop and a single run, to check the benchmark itself.
    """
    n_users = 1_500 if quick else N_USERS_1M

    def fn() -> int:
        return len(simulate_shop(n_users, seed=0).events)

    median_s, peak_mb, n_events = measure(fn, repeat=1) if quick else measure(fn)
    return [{
        "case": "simulate_shop",
        "engine": "segkit",
        "n": int(n_events),
        "median_s": round(median_s, 4),
        "peak_mb": round(peak_mb, 1),
        "reference": None,
        "ratio": None,
    }]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    n_users = int(args[0]) if args else N_USERS_1M
    repeats = int(args[1]) if len(args) > 1 else 3
    times, n_events = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        shop = simulate_shop(n_users, seed=0)
        times.append(time.perf_counter() - t0)
        n_events = len(shop.events)
        del shop
    median = statistics.median(times)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"simulate_shop(n_users={n_users:,}): {n_events:,} events, median {median:.2f} s over {repeats} runs "
          f"({n_events / median / 1e6:.2f} M events/s), peak RSS {peak_mb:,.0f} MB, "
          f"target {TARGET_S:.0f} s per 1M events: {'ok' if median * 1e6 / max(n_events, 1) < TARGET_S else 'SLOW'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
