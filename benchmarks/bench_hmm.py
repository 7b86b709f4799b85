"""Benchmark :class:`segkit.hmm.BatchedCategoricalHMM` against hmmlearn on 100k shop sessions.

Data: sessions of the simulated shop (``simulate_shop`` → ``load_events`` → ``apply_taxonomy``
with the default taxonomy → 30-minute inactivity sessions per user), canonical event names
integer-coded in sorted order; the first :data:`N_SEQUENCES` sessions (about 36k visitors,
~26 events per session on average, some a few hundred long). The prepared sequences are cached
under ``/tmp/segkit_bench_hmm``.

Both fits start from the same matrices (``init="random"``, the same seed), run exactly
:data:`N_ITER` EM iterations (``tol=-inf``) and are compared on their per-iteration
log-likelihood histories. The reference is ``hmmlearn.hmm.CategoricalHMM(implementation=
"scaling")``, hmmlearn's faster implementation (its default ``"log"`` is several times slower).
The compiled kernels are warmed up (loaded from numba's cache, or compiled) before timing.

Used by ``python -m benchmarks`` through :func:`run`; also runnable on its own::

    .venv/bin/python -m benchmarks.bench_hmm [--quick]
"""
from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

N_SEQUENCES = 100_000
N_SEQUENCES_QUICK = 5_000
N_ITER = 10
N_STATES = 4
SEED = 0
CACHE = Path("/tmp/segkit_bench_hmm")
#: Sessions per simulated visitor is about 2.75; simulate a little more than needed.
_SESSIONS_PER_USER = 2.6


def shop_sequences(n_sequences: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(X, lengths, event_names)`` for the first ``n_sequences`` simulated shop sessions (cached)."""
    path = CACHE / f"sessions_{n_sequences}_seed{seed}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            return z["X"], z["lengths"], [str(s) for s in z["names"]]
    import pandas as pd

    import segkit
    from segkit.simulate import simulate_shop
    from segkit.taxonomy import apply_taxonomy, load_taxonomy

    n_users = math.ceil(n_sequences / _SESSIONS_PER_USER)
    shop = simulate_shop(n_users, seed=seed)
    ev = segkit.load_events(shop.events, columns=shop.column_map, timezone=shop.timezone).events
    taxonomy = load_taxonomy(Path(__file__).resolve().parents[1] / "parameters" / "taxonomy" / "default.yaml")
    ev = apply_taxonomy(ev, taxonomy)[["user_id", "timestamp", "event"]]
    ev = ev.sort_values(["user_id", "timestamp"], kind="stable", ignore_index=True)
    gap = ev.groupby("user_id", sort=False)["timestamp"].diff()
    session = (gap.isna() | (gap > pd.Timedelta("30min"))).cumsum().to_numpy() - 1
    lengths = np.bincount(session)
    if lengths.size < n_sequences:
        raise RuntimeError(f"simulated {lengths.size:,} sessions, fewer than {n_sequences:,}")
    lengths = lengths[:n_sequences]
    n_events = int(lengths.sum())
    events = ev["event"].to_numpy(dtype=object)[:n_events].astype(str)
    names, codes = np.unique(events, return_inverse=True)
    X = codes.astype(np.int64)[:, None]
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, X=X, lengths=lengths.astype(np.int64), names=names.astype(str))
    return X, lengths.astype(np.int64), [str(s) for s in names]


def _fit(implementation: str, X: np.ndarray, lengths: np.ndarray) -> Any:
    from segkit.hmm import BatchedCategoricalHMM

    return BatchedCategoricalHMM(
        N_STATES, n_iter=N_ITER, tol=-np.inf, random_state=SEED, init="random", implementation=implementation
    ).fit(X, lengths)


def run(measure: Callable[..., tuple[float, float, Any]], quick: bool = False) -> list[dict[str, Any]]:
    """Time the batched fit and hmmlearn's (scaling) fit on the same sessions, same starting matrices.

    Returns two rows (``case`` ``hmm_fit``; engines ``segkit-batched`` and ``hmmlearn-scaling``);
    ``n`` is the number of sequences. Extra columns: ``n_events``, ``n_states``, ``n_features``,
    ``n_iter``, ``loglik`` (last history entry), ``loglik_rel_diff`` (largest relative difference
    between the two per-iteration log-likelihood histories) and ``param_max_abs_diff`` (largest
    difference between the fitted matrices). ``quick`` uses 5k sessions and single runs.
    """
    from benchmarks.harness import row

    n_seq = N_SEQUENCES_QUICK if quick else N_SEQUENCES
    X, lengths, names = shop_sequences(n_seq)
    _fit("batched", X[:100], [100])  # load (or compile) the numba kernels outside the timing

    fast_s, fast_mb, fast = measure(lambda: _fit("batched", X, lengths), repeat=1 if quick else 3)
    ref_s, ref_mb, ref = measure(lambda: _fit("hmmlearn", X, lengths), repeat=1)

    h_fast, h_ref = fast.loglik_history_, ref.loglik_history_
    if h_fast.shape != h_ref.shape:
        raise RuntimeError(f"history lengths differ: {h_fast.size} vs {h_ref.size}")
    rel = float(np.max(np.abs(h_fast - h_ref) / np.abs(h_ref)))
    param_diff = float(max(np.max(np.abs(getattr(fast, a) - getattr(ref, a))) for a in ("startprob_", "transmat_", "emissionprob_")))
    extra = {"n_events": int(X.shape[0]), "n_states": N_STATES, "n_features": len(names), "n_iter": N_ITER,
             "loglik_rel_diff": rel, "param_max_abs_diff": param_diff}
    return [
        row("hmm_fit", "segkit-batched", n_seq, fast_s, fast_mb, reference="hmmlearn-scaling", reference_s=ref_s,
            loglik=float(h_fast[-1]), **extra),
        row("hmm_fit", "hmmlearn-scaling", n_seq, ref_s, ref_mb, loglik=float(h_ref[-1]), **extra),
    ]


if __name__ == "__main__":
    from benchmarks.harness import run_standalone

    raise SystemExit(run_standalone(run))
