"""All default segments evaluated on 1M and 10M simulated events (issue 4; target 10M <= 30 s).

The inputs are prepared first with segkit's own pipeline and written to Parquet (clean,
sessionized events; user features), so the timed part is :func:`segkit.evaluate_segments` alone,
reading the events from Parquet the way a user with a large log would. There is no comparable
reference engine for these segments (retentioneering and pandas recipes cover a few of the
operators each), so the row reports the time against the target.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.harness import measure_isolated, row

EVENTS_PER_USER = 71.6  # the simulated shop's default rate
ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 30.0


def _crm(user_ids: Any) -> Any:
    """A CRM table for the chunked simulator's visitors (it writes events only): lifetime value
    and a VIP flag for 60 % of them, seeded."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(7)
    ids = np.sort(np.asarray(user_ids, dtype=object))
    ids = ids[rng.random(len(ids)) < 0.6]
    ltv = rng.lognormal(4.5, 1.0, len(ids)).round(2)
    return pd.DataFrame({"customer_id": ids, "lifetime_value": ltv, "is_vip": ltv > np.quantile(ltv, 0.9)})


def prepare(raw: str, out: str) -> dict[str, int]:
    """Clean + sessionize ``raw`` (Parquet glob) into ``out``/events.parquet and features.parquet."""
    from segkit.clean import clean_events
    from segkit.engine import ROW_COL, backend_of
    from segkit.features import build_user_features
    from segkit.sessions import session_table, split_sessions

    clean = clean_events(raw, output="ibis")
    sessionized = split_sessions(clean.events, output="ibis")
    events_path = Path(out) / "events.parquet"
    backend_of(sessionized).to_parquet(sessionized.drop(ROW_COL), events_path)
    sessions = session_table(sessionized)
    users = build_user_features(sessionized, sessions=sessions, crm=_crm(sessions["user_id"].unique()))
    users.to_parquet(Path(out) / "features.parquet", index=False)
    return {"events": int(clean.rows_out), "users": len(users)}


def evaluate(folder: str) -> dict[str, Any]:
    """The default segments on the prepared inputs; returns the members per segment."""
    from segkit.segments import evaluate_segments, segment_sizes

    m = evaluate_segments(ROOT / "parameters" / "segments" / "default.yaml", events=str(Path(folder) / "events.parquet"),
                          features=str(Path(folder) / "features.parquet"))
    sizes = segment_sizes(m)
    return {"members": int(sizes["n_users"].sum()), "segments": len(sizes)}


def run(measure: Any, quick: bool = False) -> list[dict]:
    from segkit.simulate import simulate_to_parquet

    sizes = [100_000] if quick else [1_000_000, 10_000_000]
    rows = []
    root = Path(tempfile.mkdtemp(prefix="segkit-bench-segments-"))
    try:
        for n in sizes:
            raw, prepared = root / f"raw_{n}", root / f"prepared_{n}"
            prepared.mkdir()
            simulate_to_parquet(raw, int(n / EVENTS_PER_USER), chunk_users=20_000, seed=7,
                                taxonomy=ROOT / "parameters" / "taxonomy" / "default.yaml")
            _, _, info = measure_isolated("benchmarks.bench_segments:prepare", str(raw / "*.parquet"), str(prepared), repeat=1)
            shutil.rmtree(raw)
            t, mb, out = measure_isolated("benchmarks.bench_segments:evaluate", str(prepared), repeat=1 if n >= 5_000_000 else 3)
            rows.append(row("default segments (10)", "segkit-duckdb", info["events"], t, mb, users=info["users"],
                            target_s=TARGET_S, **out))
            shutil.rmtree(prepared)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return rows
