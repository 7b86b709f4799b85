"""Benchmark :class:`segkit.clustering.BehaviorClusterer`: full validation on 1M users x 20 features.

Data: :func:`synthetic_features` draws :data:`N_USERS` users of six latent behavior groups with
the 20 :data:`segkit.clustering.DEFAULT_FEATURES` (count features Poisson in the number of
sessions, durations log-normal, scroll depths and conversion rates bounded), seeded, so the
whole pipeline runs: per-session rates, log1p, standard scaling, then ``method="auto"``
(MiniBatch k-means above 50k rows) for k = 2..10 with inertia and the knee, the silhouette on a
10k-row sample with its bootstrap interval, Davies–Bouldin and Calinski–Harabasz on all rows,
and stability over 10 subsample runs (45 pairs) per k: the defaults of the class.

A second row scores the defaults on a simulated shop (``simulate_shop(4000, n_days=56, seed=0)``
loaded, cleaned with the default taxonomy, sessionized, user features built; bots are removed by
cleaning): the adjusted Rand index of the clusters against the planted personas, and the k chosen.
The feature tables are cached under ``/tmp/segkit_bench_clustering``.

Used by ``python -m benchmarks`` through :func:`run`; also runnable on its own::

    .venv/bin/python -m benchmarks.bench_clustering [--quick]
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

N_USERS = 1_000_000
N_USERS_QUICK = 100_000
SEED = 0
SHOP_USERS, SHOP_DAYS, SHOP_SEED = 4000, 56, 0
CACHE = Path("/tmp/segkit_bench_clustering")

#: Per group: (sessions mean, session seconds, scroll depth, per-session rates of the count features).
_GROUPS = 6


def synthetic_features(n_users: int, seed: int = SEED) -> tuple[pd.DataFrame, np.ndarray]:
    """``(table, group)``: a seeded user feature table with the default clustering features."""
    from segkit.clustering import DEFAULT_FEATURES

    rng = np.random.default_rng(seed)
    group = rng.integers(0, _GROUPS, n_users)
    counts = [f for f in DEFAULT_FEATURES if f not in
              ("n_sessions", "avg_session_s", "avg_max_scroll_depth", "max_scroll_depth", "conversion_rate")]
    spec = np.random.default_rng(seed + 1)
    base_rate = spec.gamma(1.0, 0.8, size=(_GROUPS, len(counts)))
    base_rate *= spec.random((_GROUPS, len(counts))) < 0.55  # each group does only some things
    sess_mean = spec.uniform(1.2, 4.0, _GROUPS)
    dur = spec.uniform(60, 400, _GROUPS)
    depth = spec.uniform(20, 90, _GROUPS)
    n_sessions = 1 + rng.poisson(sess_mean[group] - 1)
    out: dict[str, Any] = {"user_id": np.arange(n_users).astype(str), "n_sessions": n_sessions}
    out["avg_session_s"] = dur[group] * rng.lognormal(0, 0.6, n_users)
    out["avg_max_scroll_depth"] = np.clip(depth[group] + rng.normal(0, 15, n_users), 0, 100)
    out["max_scroll_depth"] = np.clip(out["avg_max_scroll_depth"] + rng.exponential(10, n_users), 0, 100)
    for j, name in enumerate(counts):
        out[name] = rng.poisson(n_sessions * base_rate[group, j])
    out["abandoned_carts"] = np.minimum(out["abandoned_carts"], n_sessions)
    out["conversion_rate"] = np.minimum(out["purchases"], n_sessions) / n_sessions
    table = pd.DataFrame(out)[["user_id", *DEFAULT_FEATURES]]
    return table, group


def _cached_synthetic(n_users: int) -> tuple[pd.DataFrame, np.ndarray]:
    path = CACHE / f"synthetic_{n_users}_seed{SEED}.parquet"
    if path.exists():
        t = pd.read_parquet(path)
        return t.drop(columns="_group"), t["_group"].to_numpy()
    table, group = synthetic_features(n_users)
    CACHE.mkdir(parents=True, exist_ok=True)
    table.assign(_group=group).to_parquet(path, index=False)
    return table, group


def shop_features() -> tuple[pd.DataFrame, pd.DataFrame]:
    """User features and truth of the simulated shop (cached)."""
    feats, truth = CACHE / f"shop_{SHOP_USERS}_{SHOP_DAYS}_{SHOP_SEED}.parquet", CACHE / f"truth_{SHOP_USERS}_{SHOP_DAYS}_{SHOP_SEED}.parquet"
    if feats.exists() and truth.exists():
        return pd.read_parquet(feats), pd.read_parquet(truth)
    import segkit

    tax = segkit.load_taxonomy(Path(__file__).resolve().parents[1] / "parameters" / "taxonomy" / "default.yaml")
    shop = segkit.simulate_shop(SHOP_USERS, n_days=SHOP_DAYS, seed=SHOP_SEED)
    loaded = segkit.load_events(shop.events, columns=shop.column_map, timezone=shop.timezone)
    cleaned = segkit.clean_events(segkit.apply_taxonomy(loaded.events, tax), rejected=loaded.rejected)
    users = segkit.build_user_features(segkit.split_sessions(cleaned.events))
    CACHE.mkdir(parents=True, exist_ok=True)
    users.to_parquet(feats, index=False)
    shop.truth.to_parquet(truth, index=False)
    return users, shop.truth


def run(measure: Callable[..., tuple[float, float, Any]], quick: bool = False) -> list[dict[str, Any]]:
    """Time the full validation (k = 2..10) on the synthetic table; score the defaults on the shop.

    Returns two rows: ``case`` ``cluster_validation`` (``n`` users; extra columns ``n_features``,
    ``k_range``, ``method``, ``chosen_k``, ``silhouette_n``, ``stability_pairs``, ``ari_groups``:
    ARI against the six synthetic groups) and ``cluster_shop_ari`` (``n`` shop users; ``ari``,
    ``chosen_k``). ``quick`` uses 100k users and one run.
    """
    from benchmarks.harness import row
    from segkit.clustering import BehaviorClusterer

    n = N_USERS_QUICK if quick else N_USERS
    table, group = _cached_synthetic(n)
    BehaviorClusterer(k_range=(2, 3), stability_runs=2).fit(table.head(2000))  # imports and caches outside the timing
    secs, mb, model = measure(lambda: BehaviorClusterer().fit(table), repeat=1)
    v = model.validation_
    rows = [row("cluster_validation", "segkit-" + model.method_, n, secs, mb, n_features=len(model.feature_names_),
                k_range="2-10", method=model.method_, chosen_k=model.chosen_k_,
                silhouette_n=int(v["silhouette_n"].iloc[0]), stability_pairs=int(v["stability_pairs"].iloc[0]),
                ari_groups=round(model.ari(group), 3))]
    users, truth = shop_features()
    s_secs, s_mb, shop_model = measure(lambda: BehaviorClusterer().fit(users), repeat=1)
    rows.append(row("cluster_shop_ari", "segkit-" + shop_model.method_, len(users), s_secs, s_mb,
                    ari=round(shop_model.ari(truth), 3), chosen_k=shop_model.chosen_k_,
                    shop=f"simulate_shop({SHOP_USERS}, n_days={SHOP_DAYS}, seed={SHOP_SEED})"))
    return rows


if __name__ == "__main__":
    from benchmarks.harness import run_standalone

    raise SystemExit(run_standalone(run))
