"""Benchmark the intent workflow (:mod:`segkit.intent`) on a ~1M-event simulated shop and on UCI.

Data: ``simulate_shop(n_users=14000, n_days=56, seed=7)`` (about 1M raw rows) → ``load_events``
→ ``apply_taxonomy`` (default taxonomy) → ``clean_events`` (default cleaning: bots, duplicates,
unknown events dropped) → ``split_sessions`` (30 minutes), the recipe of the test suite. The
cleaned events and the planted truth are cached as Parquet under :data:`CACHE`; framing reads
the Parquet file through DuckDB, so the events never enter pandas.

Cases (one run each; the fits dominate and are deterministic):

* ``intent_framing``: :func:`segkit.intent.time_split` with the default cutoffs, observation
  ``28d``, horizon ``7d``, label ``purchase`` and every default feature; ``n`` is the number of
  events. Extra columns give the users and positives of each part.
* ``intent_grid_search``: ``IntentModel("auto")`` with the default grids
  (:data:`segkit.intent.DEFAULT_GRIDS`: 4 logistic + 4 random-forest configurations, 3 folds,
  then out-of-fold scores and calibration) on the training frame; ``n`` is the number of
  training rows. Extras: the chosen model, cross-validated and test ROC-AUC / PR-AUC, and per
  planted persona the test users' mean score and observed purchase rate.
* ``intent_uci_grid_search``: the same model on the UCI Online Shoppers table
  (``../shared/data/uci_online_shoppers``; stratified 75/25 split, seed 0); skipped when the
  shared data is absent.

``quick`` uses 1,500 users over 42 days, a 14-day observation and one configuration per model.

Used by ``python -m benchmarks`` through :func:`run`; also runnable on its own::

    .venv/bin/python -m benchmarks.bench_intent [--quick]
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

N_USERS, N_DAYS, SEED = 14_000, 56, 7
N_USERS_QUICK, N_DAYS_QUICK = 1_500, 42
OBSERVATION, OBSERVATION_QUICK, HORIZON = "28d", "14d", "7d"
CACHE = Path("/tmp/segkit_bench_intent")
ROOT = Path(__file__).resolve().parents[1]
UCI = ROOT.parent / "shared" / "data" / "uci_online_shoppers"
QUICK_GRID = {"logistic": {"C": [0.1]}, "random_forest": {"n_estimators": [100], "min_samples_leaf": [5]}}


def shop_events(n_users: int, n_days: int, seed: int = SEED) -> tuple[Path, pd.DataFrame, int]:
    """``(events parquet path, truth, raw rows)`` of the cleaned, sessionized simulated shop (cached)."""
    events_path = CACHE / f"events_{n_users}_{n_days}_seed{seed}.parquet"
    truth_path = CACHE / f"truth_{n_users}_{n_days}_seed{seed}.parquet"
    raw_path = CACHE / f"raw_rows_{n_users}_{n_days}_seed{seed}.txt"
    if events_path.exists() and truth_path.exists() and raw_path.exists():
        return events_path, pd.read_parquet(truth_path), int(raw_path.read_text())
    import segkit

    tax = segkit.load_taxonomy(ROOT / "parameters" / "taxonomy" / "default.yaml")
    shop = segkit.simulate_shop(n_users, n_days=n_days, seed=seed)
    loaded = segkit.load_events(shop.events, columns=shop.column_map, timezone=shop.timezone)
    cleaned = segkit.clean_events(segkit.apply_taxonomy(loaded.events, tax), rejected=loaded.rejected)
    events = segkit.split_sessions(cleaned.events)
    CACHE.mkdir(parents=True, exist_ok=True)
    events.to_parquet(events_path, index=False)
    shop.truth.to_parquet(truth_path, index=False)
    raw_path.write_text(str(len(shop.events)))
    return events_path, shop.truth, len(shop.events)


def run(measure: Callable[..., tuple[float, float, Any]], quick: bool = False) -> list[dict[str, Any]]:
    """Time framing and the grid search on the shop, and the grid search on UCI.

    Returns up to three rows (``intent_framing``, ``intent_grid_search``,
    ``intent_uci_grid_search``), engine ``segkit``; see the module docstring for ``n`` and the
    extra columns.
    """
    import pyarrow.parquet as pq

    from benchmarks.harness import row
    from segkit.intent import IntentModel, evaluate_intent, intent_by_group, load_online_shoppers, time_split

    n_users, n_days = (N_USERS_QUICK, N_DAYS_QUICK) if quick else (N_USERS, N_DAYS)
    observation = OBSERVATION_QUICK if quick else OBSERVATION
    grid = QUICK_GRID if quick else None
    path, truth, raw_rows = shop_events(n_users, n_days)
    n_events = pq.read_metadata(path).num_rows

    frame_s, frame_mb, sp = measure(lambda: time_split(str(path), observation=observation, horizon=HORIZON), repeat=1)
    parts = sp.summary().set_index("part")
    counts = {f"{p}_{k}": int(parts.loc[p, c]) for p in ("train", "test")
              for k, c in (("users", "users"), ("positive", "positive"), ("excluded_new", "excluded_new"),
                           ("excluded_new_positive", "excluded_new_positive"))}
    rows = [row("intent_framing", "segkit", n_events, frame_s, frame_mb, raw_rows=raw_rows, n_users=n_users,
                n_days=n_days, observation=observation, horizon=HORIZON,
                train_cutoff=str(sp.train.cutoff), test_cutoff=str(sp.test.cutoff), in_both=sp.n_users_in_both,
                n_features=int(sp.train.X.shape[1]), **counts)]

    fit_s, fit_mb, model = measure(lambda: IntentModel("auto", param_grid=grid).fit(sp.train.X, sp.train.y), repeat=1)
    rep = evaluate_intent(model, sp.test.X, sp.test.y, threshold="f1", n_repeats=0)
    personas = intent_by_group(rep.scores, sp.test.y, truth)
    cv = {f"cv_{m}": round(float(s), 4) for m, s in model.cv_results_.groupby("model")["mean_test_score"].max().items()}
    rows.append(row("intent_grid_search", "segkit", len(sp.train.X), fit_s, fit_mb, n_test=len(sp.test.X),
                    n_configs=len(model.cv_results_), best_model=model.model_, best_params=str(model.best_params_),
                    **cv, test_roc_auc=round(rep.roc_auc, 4), test_pr_auc=round(rep.pr_auc, 4),
                    test_prevalence=round(rep.prevalence, 4), top_decile_lift=round(float(rep.gains["lift"].iloc[0]), 2),
                    persona_mean_score={k: round(float(v), 4) for k, v in personas["mean_score"].items()},
                    persona_observed_rate={k: round(float(v), 4) for k, v in personas["observed_rate"].items()}))

    if (UCI / "online_shoppers_intention.csv").exists():
        from sklearn.model_selection import train_test_split

        X, y = load_online_shoppers(UCI)
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
        uci_s, uci_mb, uci = measure(lambda: IntentModel("auto", param_grid=grid).fit(X_tr, y_tr), repeat=1)
        r = evaluate_intent(uci, X_te, y_te, threshold="f1", n_repeats=0)
        cv = {f"cv_{m}": round(float(s), 4) for m, s in uci.cv_results_.groupby("model")["mean_test_score"].max().items()}
        rows.append(row("intent_uci_grid_search", "segkit", len(X_tr), uci_s, uci_mb, n_test=len(X_te),
                        n_configs=len(uci.cv_results_), best_model=uci.model_, best_params=str(uci.best_params_), **cv,
                        test_roc_auc=round(r.roc_auc, 4), test_pr_auc=round(r.pr_auc, 4)))
    return rows


if __name__ == "__main__":
    from benchmarks.harness import run_standalone

    raise SystemExit(run_standalone(run))
