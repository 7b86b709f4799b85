"""Cleaning + sessionization + features on 1M and 10M simulated events (issue 3).

segkit runs on DuckDB through Ibis, reading the canonical events from Parquet and keeping the
event-level tables in DuckDB (only sessions and user features come back to pandas). The reference
is the same steps in plain pandas (``baseline_clean_pandas`` + ``baseline_pandas``), from the same
Parquet files, in the same run.
"""
from __future__ import annotations

import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.baseline_clean_pandas import pandas_clean
from benchmarks.baseline_pandas import pandas_sessions_and_features
from benchmarks.harness import measure_isolated, row

EVENTS_PER_USER = 71.6  # the simulated shop's default rate
TARGET_S_10M = 20.0  # issue 3: at most 20 s (and 4 GB) at 10M events on the 2-core machine


def segkit_pipeline(path: str) -> dict[str, int]:
    """segkit's cleaning, sessions and features; returns the output sizes."""
    from segkit.clean import clean_events
    from segkit.features import build_user_features
    from segkit.sessions import session_table, split_sessions

    clean = clean_events(path, output="ibis")
    sessionized = split_sessions(clean.events, output="ibis")  # lazy; the session numbers are stored once
    sessions = session_table(sessionized)  # one query; the per-session table comes back to pandas
    users = build_user_features(sessionized, sessions=sessions)
    return {"sessions": len(sessions), "users": len(users)}


def pandas_pipeline(path: str) -> dict[str, int]:
    """The pandas reference of the same steps; returns the output sizes."""
    events = pd.read_parquet(path.removesuffix("*.parquet"))
    clean = pandas_clean(events)
    del events
    sessions, users = pandas_sessions_and_features(clean)
    return {"sessions": len(sessions), "users": len(users)}


def run(measure: Any, quick: bool = False) -> list[dict]:
    from segkit.simulate import simulate_to_parquet

    sizes = [100_000] if quick else [1_000_000, 10_000_000]
    rows = []
    root = Path(tempfile.mkdtemp(prefix="segkit-bench-"))
    try:
        for n in sizes:
            folder = root / f"events_{n}"
            info = simulate_to_parquet(folder, int(n / EVENTS_PER_USER), chunk_users=20_000, seed=7,
                                       taxonomy=Path(__file__).resolve().parents[1] / "parameters" / "taxonomy" / "default.yaml")
            glob = str(folder / "*.parquet")
            large = n >= 5_000_000
            # the pandas reference runs once at 10M (about 3 minutes); segkit's median is over
            # three fresh processes there, because back-to-back runs on a shared 2-core host
            # differ by up to a third (``runs_s`` keeps each one)
            t_ref, mb_ref, ref = measure_isolated("benchmarks.bench_pipeline:pandas_pipeline", glob, repeat=1 if large else 3)
            if large:
                runs = [measure_isolated("benchmarks.bench_pipeline:segkit_pipeline", glob, repeat=1) for _ in range(3)]
                t, mb, out = statistics.median(r[0] for r in runs), max(r[1] for r in runs), runs[-1][2]
                out = {**out, "runs_s": [round(r[0], 1) for r in runs]}
            else:
                t, mb, out = measure_isolated("benchmarks.bench_pipeline:segkit_pipeline", glob, repeat=3)
            rows.append(row("clean+sessions+features", "pandas", info["events"], t_ref, mb_ref, **ref))
            rows.append(row("clean+sessions+features", "segkit-duckdb", info["events"], t, mb, reference="pandas",
                            reference_s=t_ref, **({"target_s": TARGET_S_10M} if large else {}), **out))
            shutil.rmtree(folder)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return rows
