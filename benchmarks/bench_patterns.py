"""Sequential-pattern mining on 100k simulated sessions: segkit's fast engine vs the prefixspan package.

Data: the simulated shop (``simulate_shop(n_users, seed=7)``) loaded with ``load_events``, raw
event aliases mapped to canonical names (``apply_taxonomy`` with ``parameters/taxonomy/default.yaml``),
bots removed with ``filter_bots`` (their sessions run to hundreds of hits and would make any
support threshold meaningless), sessions split at gaps over 30 minutes, and each session's items
the page types of its page views (home, category, search, product, cart, checkout, blog): the
visitor's journey. The first ``n`` sessions with at least one page view are kept (~39k users for
100k sessions). The sequences are cached in a pickle under the temp directory.

Cases: 100k sessions at 1 % and 0.5 % support (``quick``: 5k sessions), frequent mode, both engines
in the same run (``reference="prefixspan"``; the package runs once, ``repeat=1``). The engines'
pattern sets are checked to be identical. Closed and generator modes are timed for the fast
engine only (the package's checks are approximations, see :mod:`segkit.patterns`). The kernels
are loaded before timing; ``compile_s`` is the first call's wall time in a fresh process with an
empty numba cache, ``cached_first_call_s`` the same with the cache.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.harness import row

ROOT = Path(__file__).resolve().parents[1]
USERS_PER_SESSION = 0.39  # human sessions with a page view per simulated visitor, plus a margin
SEED = 7


def session_sequences(n_sessions: int, seed: int = SEED) -> list[list[str]]:
    """Page-type journeys of ``n_sessions`` human sessions of the simulated shop (cached)."""
    cache = Path(tempfile.gettempdir()) / f"segkit-bench-patterns-{n_sessions}-{seed}.pkl"
    if cache.exists():
        with open(cache, "rb") as fh:
            return pickle.load(fh)
    import segkit
    from segkit.taxonomy import apply_taxonomy, load_taxonomy

    shop = segkit.simulate_shop(int(n_sessions * USERS_PER_SESSION) + 50, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        events = segkit.load_events(shop.events, columns=shop.column_map, timezone=shop.timezone).events
        events = apply_taxonomy(events, load_taxonomy(ROOT / "parameters" / "taxonomy" / "default.yaml"))
        events = segkit.filter_bots(events).events
    events = events.sort_values(["user_id", "timestamp"], kind="stable")
    gap = events.groupby("user_id", sort=False)["timestamp"].diff()
    events["session"] = (gap.isna() | (gap > pd.Timedelta("30m"))).cumsum()
    views = events[events["page_type"].notna()]
    seqs = [list(map(str, s)) for s in views.groupby("session", sort=True)["page_type"].agg(list)]
    if len(seqs) < n_sessions:
        raise RuntimeError(f"only {len(seqs)} sessions simulated, {n_sessions} wanted")
    seqs = seqs[:n_sessions]
    with open(cache, "wb") as fh:
        pickle.dump(seqs, fh)
    return seqs


def first_call_seconds(cold: bool) -> float:
    """Wall time of the first fast-engine calls (frequent, then closed + generator) in a fresh process.

    ``cold=True`` points numba at an empty cache directory, so the kernels compile; otherwise
    they load from the cache that earlier runs wrote.
    """
    code = ("import time; from segkit.patterns import mine_patterns; t = time.perf_counter(); "
            "mine_patterns([['a', 'b'], ['a']], 1); mine_patterns([['a', 'b'], ['a']], 1, closed=True, generator=True); "
            "print(time.perf_counter() - t)")
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="segkit-numba-") as tmp:
        if cold:
            env["NUMBA_CACHE_DIR"] = tmp
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                             check=True)
    return float(out.stdout.strip().splitlines()[-1])


def run(measure: Any, quick: bool = False) -> list[dict]:
    from segkit.patterns import mine_patterns

    n = 5_000 if quick else 100_000
    seqs = session_sequences(n)
    compile_s = first_call_seconds(cold=True)
    cached_s = first_call_seconds(cold=False)
    mine_patterns(seqs[:10], 1, closed=True, generator=True)  # load the kernels in this process
    rows = []
    for frac in (0.01, 0.005):
        case = f"mine_patterns {len(seqs) // 1000}k sessions, support {frac:.1%}"
        t_ref, mb_ref, ref = measure(lambda: mine_patterns(seqs, frac, engine="prefixspan"), repeat=1)
        t, mb, fast = measure(lambda: mine_patterns(seqs, frac, engine="fast"), repeat=3)
        if not fast.equals(ref):
            raise AssertionError(f"{case}: the engines disagree")
        extra = {"patterns": len(fast), "max_length": int(fast["length"].max()) if len(fast) else 0}
        rows.append(row(case, "prefixspan", len(seqs), t_ref, mb_ref, **extra))
        rows.append(row(case, "segkit-fast", len(seqs), t, mb, reference="prefixspan", reference_s=t_ref,
                        compile_s=round(compile_s, 2), cached_first_call_s=round(cached_s, 2), **extra))
        for mode in ("closed", "generator"):
            t_m, mb_m, res = measure(lambda: mine_patterns(seqs, frac, **{mode: True}), repeat=3)
            rows.append(row(f"{case}, {mode}", "segkit-fast", len(seqs), t_m, mb_m, patterns=len(res)))
    return rows


if __name__ == "__main__":  # python -m benchmarks.bench_patterns [--quick]
    from benchmarks.harness import measure as _measure

    t0 = time.perf_counter()
    for r in run(_measure, quick="--quick" in sys.argv):
        print(r)
    print(f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
