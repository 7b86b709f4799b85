"""Benchmark :class:`segkit.markov.MarkovChain` fits on 10M events against straightforward references.

Data: :data:`N_EVENTS` events in sequences of 5–35 items (about 20 on average) over
:data:`N_STATES` states, drawn from a random first-order chain (Dirichlet(0.5) start and
transition rows) with a seeded numpy generator, vectorised across sequences. The same data
is given to each engine in the form it takes:

* ``segkit-codes``: pre-encoded ``fit(codes=..., lengths=...)``;
* ``segkit-frame``: a DataFrame (``session_id``, integer ``timestamp``, string ``event``), rows
  already grouped by session and in order (segkit checks that in one pass and skips the sort);
* ``pandas-groupby``: the reference on the same frame — previous event by ``groupby(session).shift(1)``
  (start where missing), the last event of each session to the exit, ``value_counts`` of the pairs;
* ``segkit-lists`` vs ``python-counter``: a list of Python lists of strings, 1M events
  (:data:`N_EVENTS_LISTS`), against a ``collections.Counter`` over the padded pairs.

Every reference's counts are checked to equal segkit's. Orders 2 and 3 are timed on the codes
(no reference). ``quick`` uses 200k events (50k for the lists) and single runs.

Used by ``python -m benchmarks`` through :func:`run`; also runnable on its own::

    .venv/bin/python -m benchmarks.bench_markov [--quick]
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

N_EVENTS = 10_000_000
N_EVENTS_QUICK = 200_000
N_EVENTS_LISTS = 1_000_000
N_EVENTS_LISTS_QUICK = 50_000
N_STATES = 15
SEED = 0
START, EXIT = "(start)", "(exit)"


def random_sequences(n_events: int, n_states: int = N_STATES, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, lengths)``: about ``n_events`` events (trimmed to exactly that) from a random first-order chain."""
    rng = np.random.default_rng(seed)
    n_seq = int(n_events / 20 * 1.02) + 1
    lengths = rng.integers(5, 36, size=n_seq)
    total = np.cumsum(lengths)
    n_seq = int(np.searchsorted(total, n_events)) + 1
    lengths = lengths[:n_seq]
    lengths[-1] -= int(total[n_seq - 1] - n_events)  # exactly n_events events
    start = rng.dirichlet(np.full(n_states, 0.5))
    trans_cum = np.cumsum(rng.dirichlet(np.full(n_states, 0.5), size=n_states), axis=1)
    steps = np.empty((int(lengths.max()), n_seq), dtype=np.int64)
    steps[0] = rng.choice(n_states, size=n_seq, p=start)
    for t in range(1, steps.shape[0]):  # one vectorised draw per position, across all sequences
        u = rng.random(n_seq)
        steps[t] = np.minimum((trans_cum[steps[t - 1]] < u[:, None]).sum(axis=1), n_states - 1)
    mask = np.arange(steps.shape[0])[:, None] < lengths[None, :]
    codes = steps.T[mask.T]  # sequence by sequence
    return codes, lengths.astype(np.int64)


def event_names(n_states: int = N_STATES) -> np.ndarray:
    return np.array([f"event_{i:02d}" for i in range(n_states)], dtype=object)


def as_frame(codes: np.ndarray, lengths: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({
        "session_id": np.repeat(np.arange(lengths.size, dtype=np.int64), lengths),
        "timestamp": np.arange(codes.size, dtype=np.int64),
        "event": pd.array(event_names()[codes], dtype="str"),
    })


def as_lists(codes: np.ndarray, lengths: np.ndarray) -> list[list[str]]:
    names = event_names()[codes]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return [names[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:])]


def pandas_reference(frame: pd.DataFrame) -> pd.Series:
    """Transition counts with pandas: groupby-shift for the previous event, value_counts of the pairs."""
    by = frame.groupby("session_id", sort=False)["event"]
    prev = by.shift(1).fillna(START)
    last = frame.loc[~frame["session_id"].duplicated(keep="last"), "event"]
    pairs = pd.concat([
        pd.DataFrame({"from": prev.array, "to": frame["event"].array}),
        pd.DataFrame({"from": last.array, "to": pd.array([EXIT] * len(last), dtype="str")}),
    ], ignore_index=True)
    return pairs.value_counts()


def counter_reference(sequences: list[list[str]]) -> Counter:
    """Transition counts in pure Python: a Counter over each padded sequence's consecutive pairs."""
    counts: Counter = Counter()
    for seq in sequences:
        padded = [START, *seq, EXIT]
        counts.update(zip(padded, padded[1:]))
    return counts


def _edges(chain: Any) -> dict[tuple[Any, Any], int]:
    edges = chain.to_frame()
    return dict(zip(zip(edges["from"], edges["to"]), edges["count"].astype(int)))


def _check(name: str, got: dict, want: dict) -> None:
    if got != want:
        diff = {k for k in set(got) | set(want) if got.get(k) != want.get(k)}
        raise RuntimeError(f"{name}: counts differ from segkit on {len(diff)} pairs, e.g. {sorted(diff, key=str)[:3]}")


def run(measure: Callable[..., tuple[float, float, Any]], quick: bool = False) -> list[dict[str, Any]]:
    """Time first-order fits (three input forms, two references) and order-2/3 fits.

    Rows: ``markov_fit_order1`` (engines ``segkit-codes`` and ``segkit-frame`` with reference
    ``pandas-groupby``, and ``pandas-groupby`` itself; ``n`` = events), ``markov_fit_order1_lists``
    (``segkit-lists`` vs ``python-counter`` on 1M events), ``markov_fit_order2`` and
    ``markov_fit_order3`` (``segkit-codes``). Extra columns: ``n_sequences``, ``n_states``,
    ``n_contexts`` (contexts seen, for the segkit rows).
    """
    from benchmarks.harness import row
    from segkit.markov import MarkovChain

    n = N_EVENTS_QUICK if quick else N_EVENTS
    n_lists = N_EVENTS_LISTS_QUICK if quick else N_EVENTS_LISTS
    repeat = 1 if quick else 3
    codes, lengths = random_sequences(n)
    labels = list(event_names())
    frame = as_frame(codes, lengths)
    MarkovChain().fit(codes=codes[:100], lengths=[100])  # imports and first-touch outside the timing
    extra = {"n_sequences": int(lengths.size), "n_states": N_STATES}

    codes_s, codes_mb, by_codes = measure(lambda: MarkovChain().fit(codes=codes, lengths=lengths, labels=labels),
                                          repeat=repeat)
    frame_s, frame_mb, by_frame = measure(lambda: MarkovChain().fit(frame), repeat=repeat)
    ref_s, ref_mb, ref = measure(lambda: pandas_reference(frame), repeat=1)
    want = _edges(by_codes)
    _check("segkit-frame", _edges(by_frame), want)
    _check("pandas-groupby", {k: int(v) for k, v in ref.items()}, want)
    n_ctx = by_codes.n_params_ // len(by_codes.items_)
    rows = [
        row("markov_fit_order1", "segkit-codes", n, codes_s, codes_mb, reference="pandas-groupby", reference_s=ref_s,
            n_contexts=n_ctx, **extra),
        row("markov_fit_order1", "segkit-frame", n, frame_s, frame_mb, reference="pandas-groupby", reference_s=ref_s,
            n_contexts=n_ctx, **extra),
        row("markov_fit_order1", "pandas-groupby", n, ref_s, ref_mb, **extra),
    ]
    del frame, ref

    small_codes, small_lengths = random_sequences(n_lists)
    seqs = as_lists(small_codes, small_lengths)
    lists_s, lists_mb, by_lists = measure(lambda: MarkovChain().fit(seqs), repeat=repeat)
    py_s, py_mb, py = measure(lambda: counter_reference(seqs), repeat=1)
    _check("python-counter", dict(py), _edges(by_lists))
    extra_l = {"n_sequences": int(small_lengths.size), "n_states": N_STATES}
    rows += [
        row("markov_fit_order1_lists", "segkit-lists", n_lists, lists_s, lists_mb, reference="python-counter",
            reference_s=py_s, n_contexts=by_lists.n_params_ // len(by_lists.items_), **extra_l),
        row("markov_fit_order1_lists", "python-counter", n_lists, py_s, py_mb, **extra_l),
    ]
    del seqs, py

    for k in (2, 3):
        s, mb, fitted = measure(lambda: MarkovChain(order=k).fit(codes=codes, lengths=lengths), repeat=repeat)
        n_ctx = fitted.n_params_ // len(fitted.items_)
        rows.append(row(f"markov_fit_order{k}", "segkit-codes", n, s, mb, n_contexts=n_ctx, **extra))
    return rows


if __name__ == "__main__":
    from benchmarks.harness import run_standalone

    raise SystemExit(run_standalone(run))
