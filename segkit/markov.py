"""Markov chains of event sequences: transitions, higher orders, absorption and removal effects.

:class:`MarkovChain` estimates a Markov chain of order 1, 2 or 3 from sequences of hashable items
(event names, page types, channels), with an explicit start state before the first item of every
sequence and an explicit exit state after its last item, so that "where do journeys begin" and
"where do they end" are transitions like any other. :func:`select_markov_order` compares orders
by log-likelihood, AIC, BIC and held-out next-event accuracy. The first-order chain supports
absorbing-chain analysis (:meth:`MarkovChain.absorption_probabilities`,
:meth:`MarkovChain.expected_steps`) and the attribution removal effect
(:meth:`MarkovChain.removal_effects`). :func:`plot_transition_heatmap` and
:func:`plot_transition_flow` draw the fitted transitions.

States and transitions
----------------------
With items ``a, b, ...`` (sorted; strings and numbers in their natural order, other items by type
name and ``repr``) the states are ``[start, a, b, ..., exit]`` (``states_``; the labels are the
``start_state`` and ``exit_state`` parameters, ``"(start)"`` and ``"(exit)"`` by default). A
sequence ``[a, b]`` contributes the transitions ``start -> a``, ``a -> b`` and ``b -> exit``. The
first-order ``transition_matrix_`` is square over ``states_``: the start column is zero (nothing
returns to the start) and the exit row has a 1 on the diagonal (the exit is absorbing), so every
row sums to 1. Every sequence needs at least one item.

For order ``k`` the state is the tuple of the last ``k`` items, oldest first, padded at the
beginning of a sequence with the start state: for ``k = 2`` the sequence ``[a, b]`` contributes
``(start, start) -> a``, ``(start, a) -> b`` and ``(a, b) -> exit``. ``transition_matrix_`` then
has one row per context seen in the data (a MultiIndex with levels ``t-2, t-1``) and one column
per next item plus the exit.

How counting works
------------------
Items are encoded once to integer codes (start ``0``, items ``1..m``, exit ``m + 1``) and the
sequences flattened to one code array with sequence offsets. Each sequence is laid out as ``k``
start codes, its items and one exit code; every non-start position is a target and its context is
the ``k`` codes before it. A (context, next) pair is one int64 key in base ``m + 3``, counted by
``numpy.bincount`` when the key space is no larger than twice the number of transitions, and by
``numpy.unique`` otherwise, so memory is bounded by the data, not by ``(m + 3) ** (k + 1)``.
Ten million events over 15 items fit in about 0.5 s from codes and 2 s from a DataFrame (first
order; about 1 s from codes for orders 2 and 3; ``benchmarks/bench_markov.py``). A DataFrame
already grouped by sequence and ordered within each (checked in one pass) is not sorted again.
The base limits the number of distinct items to about 3e9 for order 1, 2e6 for order 2 and
55,000 for order 3. Dense outputs (``counts_``, ``transition_matrix_``, the absorbing-chain
analysis and the plots) are limited to 20 million cells, about 4,500 items in the first order;
:meth:`MarkovChain.to_frame` has no such limit.

Model selection
---------------
The number of free parameters of an order-``k`` chain is the number of contexts seen in
training times ``m`` (each context's distribution over the ``m + 1`` next states sums to 1):
contexts never seen carry no estimated parameters. For the first order that is the usual
``(m + 1) m``. AIC is ``-2 log L + 2 p`` and BIC ``-2 log L + p log n`` with ``n`` the number of
predicted transitions (events plus exits).

Smoothing and back-off
----------------------
``smoothing = alpha`` adds ``alpha`` to the count of every possible next state (every item and
the exit) of every *seen* context: ``P(next | context) = (n(context, next) + alpha) /
(n(context) + alpha * (m + 1))``. A fitted chain of order ``k`` also keeps the tables of orders
``k - 1, ..., 1`` and the order-0 frequencies of next states; :meth:`MarkovChain.next_proba`,
:meth:`MarkovChain.predict_next` and :meth:`MarkovChain.score` use the longest context seen in
training (back-off to lower orders for unseen contexts; no discounting). Order 1 never needs to
back off, since every item of the alphabet has been seen as a context.
"""
from __future__ import annotations

import math
import numbers
import reprlib
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain as _chain
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from .errors import NotFittedError, ParameterError, SegkitError, check_columns, did_you_mean, format_allowed

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "MarkovChain",
    "OrderSelection",
    "select_markov_order",
    "plot_transition_heatmap",
    "plot_transition_flow",
]

_ORDERS = (1, 2, 3)
_CRITERIA = ("bic", "aic", "accuracy")
_INT64_MAX = 2**63 - 1
#: Largest number of cells a dense ``counts_`` / ``transition_matrix_`` frame may have.
_MAX_DENSE_CELLS = 20_000_000
_START = 0

_short = reprlib.Repr()
_short.maxlist = _short.maxtuple = 6
_short.maxstring = _short.maxother = 60


# ---------------------------------------------------------------------------------------------
# input encoding


@dataclass
class _Encoded:
    """Sequences as codes ``0..len(labels)-1`` into ``labels``, one flat array plus lengths."""

    codes: np.ndarray
    lengths: np.ndarray
    labels: list[Any]

    @property
    def offsets(self) -> np.ndarray:
        off = np.zeros(self.lengths.size + 1, dtype=np.int64)
        np.cumsum(self.lengths, out=off[1:])
        return off


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_missing(item: Any) -> bool:
    return item is None or item is pd.NA or item is pd.NaT or (isinstance(item, (float, np.floating)) and item != item)


def _unhashable(item: Any) -> bool:
    try:
        hash(item)
    except TypeError:
        return True
    return False


def _item_order(uniques: list[Any]) -> list[Any]:
    """Sorted strings or numbers; any other mix by (type name, repr)."""
    if all(isinstance(u, str) for u in uniques) or all(isinstance(u, numbers.Real) for u in uniques):
        try:
            return sorted(uniques)
        except TypeError:  # pragma: no cover - e.g. exotic Real subclasses
            pass
    return sorted(uniques, key=lambda u: (type(u).__name__, repr(u)))


def _factorize(values: Any) -> tuple[np.ndarray, list[Any]]:
    """Codes (int64, 0-based, in :func:`_item_order`) and labels of ``values``; -1 marks missing."""
    try:
        codes, uniques = pd.factorize(values, sort=False)
    except TypeError:
        raise _Unhashable from None
    labels = list(uniques.tolist() if hasattr(uniques, "tolist") else uniques)
    ordered = _item_order(labels)
    if ordered != labels:
        rank = {lab: i for i, lab in enumerate(ordered)}
        perm = np.array([rank[lab] for lab in labels] + [-1], dtype=np.int64)
        codes = perm[codes]  # a missing value's -1 picks the trailing -1
    return np.asarray(codes, dtype=np.int64), ordered


class _Unhashable(Exception):
    pass


def _encode_lists(sequences: Sequence[Any]) -> _Encoded:
    if len(sequences) == 0:
        raise ParameterError("sequences", [], message="sequences is empty; a Markov chain needs at least one sequence")
    seqs = list(sequences)
    for i, seq in enumerate(seqs):
        kind = type(seq)
        if kind is list or kind is tuple:
            continue
        if isinstance(seq, (np.ndarray, pd.Series, pd.Index)) and np.ndim(seq) == 1:
            seqs[i] = list(seq)
            continue
        if isinstance(seq, (str, bytes)) or not isinstance(seq, Sequence):
            why = ("a string is not a sequence of items; wrap it in a list (or use list(s) for its characters)"
                   if isinstance(seq, (str, bytes)) else "expected a list or tuple of items")
            raise ParameterError(
                f"sequences[{i}]", seq, "a list or tuple of hashable items",
                message=f"sequences[{i}] is {type(seq).__name__} {_short.repr(seq)}: {why}",
            )
        seqs[i] = list(seq)
    lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
    empty = np.flatnonzero(lengths == 0)
    if empty.size:
        raise ParameterError(
            f"sequences[{int(empty[0])}]", [],
            message=f"sequences[{int(empty[0])}] is empty ({empty.size:,} empty sequence(s)); every sequence needs "
            "at least one item (drop empty ones first)",
        )
    n = int(lengths.sum())
    flat = np.fromiter(_chain.from_iterable(seqs), dtype=object, count=n)
    try:
        codes, labels = _factorize(flat)
    except _Unhashable:
        _raise_item(seqs, _unhashable, "is not hashable")
    if (codes < 0).any():
        _raise_item(seqs, _is_missing, "is a missing value (None or NaN)")
    return _Encoded(codes, lengths, labels)


def _raise_item(sequences: Sequence[Any], bad: Any, what: str) -> NoReturn:
    for i, seq in enumerate(sequences):
        for j, item in enumerate(seq):
            if bad(item):
                raise ParameterError(
                    f"sequences[{i}][{j}]", item, "a hashable item that is not None or NaN",
                    message=f"Item sequences[{i}][{j}] = {_short.repr(item)} ({type(item).__name__}) {what}; "
                    "items must be hashable (str, int, tuple, ...) and not missing",
                )
    raise ParameterError("sequences", None, message=f"An item {what}")  # pragma: no cover


def _order_values(col: pd.Series) -> np.ndarray:
    """A sortable numeric array for the order column."""
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        col = col.dt.tz_convert(None)
    if pd.api.types.is_datetime64_any_dtype(col.dtype) or pd.api.types.is_timedelta64_dtype(col.dtype):
        return col.to_numpy().view(np.int64)
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        return col.to_numpy(dtype=float if pd.api.types.is_float_dtype(col.dtype) else np.int64)
    codes, _ = pd.factorize(col, sort=True)
    return codes


def _encode_frame(frame: pd.DataFrame, session_col: str, timestamp_col: str, event_col: str) -> _Encoded:
    check_columns(frame.columns, [session_col, timestamp_col, event_col], what="sequences frame")
    if len(frame) == 0:
        raise ParameterError("sequences", "empty frame", message="sequences is an empty frame; a Markov chain needs "
                             "at least one event")
    for col in (session_col, timestamp_col, event_col):
        missing = frame[col].isna()
        if missing.any():
            first = missing.to_numpy().nonzero()[0][0]
            raise ParameterError(
                col, None,
                message=f"Column {col!r} has {int(missing.sum()):,} missing value(s) (first at row {int(first)}); "
                "sequence ids, order values and items must not be missing",
            )
    sid, _ = pd.factorize(frame[session_col], sort=False)
    sid = np.asarray(sid, dtype=np.int64)
    order = _order_values(frame[timestamp_col])
    grouped = bool(np.all(sid[1:] >= sid[:-1]))
    if grouped and not np.any((sid[1:] == sid[:-1]) & (order[1:] < order[:-1])):
        idx = None  # already grouped by sequence and ordered within each
    else:
        if bool(np.all(order[1:] >= order[:-1])):
            idx = np.argsort(sid, kind="stable")  # a time-ordered log: group by sequence only
        else:
            idx = np.argsort(order, kind="stable")
            idx = idx[np.argsort(sid[idx], kind="stable")]
        sid = sid[idx]
    events = frame[event_col]
    try:
        codes, labels = _factorize(events)
    except _Unhashable:
        bad = next(i for i, v in enumerate(events) if _unhashable(v))
        raise ParameterError(
            event_col, events.iloc[bad],
            message=f"Column {event_col!r} holds an unhashable item at row {bad}: {_short.repr(events.iloc[bad])} "
            f"({type(events.iloc[bad]).__name__}); items must be hashable",
        ) from None
    if idx is not None:
        codes = codes[idx]
    lengths = np.bincount(sid)
    return _Encoded(codes, lengths.astype(np.int64), labels)


def _encode_codes(codes: Any, lengths: Any, labels: Any) -> _Encoded:
    arr = np.asarray(codes)
    if arr.ndim != 1:
        raise ParameterError("codes", arr.shape, message=f"codes must be a 1-D array of integer codes; got shape {arr.shape!r}")
    if arr.size == 0:
        raise ParameterError("codes", [], message="codes is empty; a Markov chain needs at least one event")
    if arr.dtype.kind not in "iu":
        raise ParameterError("codes", str(arr.dtype), message=f"codes must hold integers; got dtype {str(arr.dtype)!r} "
                             "(encode items first, e.g. with pandas.factorize, or pass sequences=)")
    x = np.asarray(arr, dtype=np.int64)
    if int(x.min()) < 0:
        raise ParameterError("codes", int(x.min()), message=f"codes holds negative code {int(x.min())!r}; codes must be >= 0")
    if lengths is None:
        raise ParameterError("lengths", None, message="lengths is required with codes (one length per sequence)")
    lens = np.asarray(lengths)
    if lens.ndim != 1 or lens.size == 0 or lens.dtype.kind not in "iu":
        raise ParameterError("lengths", _short.repr(lengths),
                             message="lengths must be a non-empty 1-D sequence of integers, one per sequence")
    lens = lens.astype(np.int64)
    if lens.min() < 1:
        bad = int(np.flatnonzero(lens < 1)[0])
        raise ParameterError("lengths", int(lens[bad]), message=f"lengths[{bad}] is {int(lens[bad])!r}; every sequence "
                             "needs at least one item")
    if int(lens.sum()) != x.size:
        raise ParameterError("lengths", int(lens.sum()), message=f"lengths sum to {int(lens.sum()):,} but codes has "
                             f"{x.size:,} entries; they must be equal")
    hi = int(x.max())
    if labels is None:
        names: list[Any] = list(range(hi + 1))
    else:
        names = list(labels)
        if len(names) <= hi:
            raise ParameterError("labels", len(names), message=f"labels has {len(names)} entries but codes holds code "
                                 f"{hi}; give one label per code 0..{hi}")
        for i, lab in enumerate(names):
            if _unhashable(lab) or _is_missing(lab):
                raise ParameterError(f"labels[{i}]", lab, message=f"labels[{i}] = {_short.repr(lab)} must be hashable "
                                     "and not missing")
        if len(set(names)) != len(names):
            dup = next(lab for i, lab in enumerate(names) if lab in names[:i])
            raise ParameterError("labels", dup, message=f"labels must be unique; {dup!r} repeats")
    return _Encoded(x, lens, names)


def _encode_input(sequences: Any, codes: Any, lengths: Any, labels: Any, session_col: str | None,
                  timestamp_col: str | None, event_col: str | None) -> _Encoded:
    """Validate the input mode and encode it."""
    cols = {"session_col": session_col, "timestamp_col": timestamp_col, "event_col": event_col}
    encoded_args = {"lengths": lengths, "labels": labels}
    if sequences is not None and codes is not None:
        raise ParameterError("codes", "given", message="give either sequences or codes (with lengths), not both")
    if codes is not None:
        given = [k for k, v in cols.items() if v is not None]
        if given:
            raise ParameterError(given[0], cols[given[0]], message=f"{given[0]} applies to a DataFrame of sequences, "
                                 "not to pre-encoded codes")
        return _encode_codes(codes, lengths, labels)
    given = [k for k, v in encoded_args.items() if v is not None]
    if given:
        raise ParameterError(given[0], _short.repr(encoded_args[given[0]]),
                             message=f"{given[0]} applies to pre-encoded codes (codes=...), not to sequences")
    if sequences is None:
        raise ParameterError("sequences", None, message="no data: give sequences (a list of lists or a DataFrame) or "
                             "codes with lengths")
    if isinstance(sequences, pd.DataFrame):
        return _encode_frame(sequences, session_col or "session_id", timestamp_col or "timestamp", event_col or "event")
    given = [k for k, v in cols.items() if v is not None]
    if given:
        raise ParameterError(given[0], cols[given[0]], message=f"{given[0]} applies to a DataFrame of sequences, not to "
                             "a list of sequences")
    if isinstance(sequences, pd.Series):
        sequences = sequences.tolist()
    elif isinstance(sequences, np.ndarray) and sequences.dtype == object and sequences.ndim == 1:
        sequences = list(sequences)
    if isinstance(sequences, (str, bytes)) or not isinstance(sequences, Sequence):
        raise ParameterError(
            "sequences", _short.repr(sequences), "a list of lists of hashable items, a DataFrame, or codes with lengths",
            message=f"sequences must be a list of sequences (lists) of hashable items or a DataFrame; got "
            f"{type(sequences).__name__} {_short.repr(sequences)}",
        )
    return _encode_lists(sequences)


# ---------------------------------------------------------------------------------------------
# counting tables


@dataclass
class _Table:
    """Counts of one order: sorted (context, next) pair keys grouped by context."""

    order: int
    base: int
    ctx: np.ndarray        # sorted unique context keys
    ptr: np.ndarray        # offsets of each context's pairs, len(ctx) + 1
    nxt: np.ndarray        # next codes of the pairs (sorted within a context)
    cnt: np.ndarray        # pair counts
    total: np.ndarray      # per-context totals
    best: np.ndarray       # per-context most frequent next code (ties: smallest code)
    pair: np.ndarray = field(repr=False)  # sorted pair keys ctx * base + nxt

    @classmethod
    def from_pairs(cls, order: int, base: int, pair: np.ndarray, cnt: np.ndarray) -> _Table:
        ctx_of, nxt = np.divmod(pair, base)
        ctx, start = np.unique(ctx_of, return_index=True)
        ptr = np.append(start, pair.size).astype(np.int64)
        total = np.add.reduceat(cnt, start)
        sort = np.lexsort((nxt, -cnt, ctx_of))
        best = nxt[sort[start]]
        return cls(order, base, ctx, ptr, nxt, cnt, total, best, pair)

    def find_ctx(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = np.searchsorted(self.ctx, keys)
        pos_c = np.minimum(pos, self.ctx.size - 1)
        return pos_c, self.ctx[pos_c] == keys

    def pair_counts(self, pairs: np.ndarray) -> np.ndarray:
        pos = np.minimum(np.searchsorted(self.pair, pairs), self.pair.size - 1)
        return np.where(self.pair[pos] == pairs, self.cnt[pos], 0)


def _count(keys: np.ndarray, key_space: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct keys and their counts (bincount when the key space is small)."""
    if key_space <= max(2 * keys.size, 1 << 16):
        counts = np.bincount(keys, minlength=key_space)
        nz = np.flatnonzero(counts)
        return nz.astype(np.int64), counts[nz].astype(np.int64)
    uniq, counts = np.unique(keys, return_counts=True)
    return uniq.astype(np.int64), counts.astype(np.int64)


def _check_key_space(base: int, order: int, n_items: int) -> None:
    if base ** (order + 1) > _INT64_MAX:
        limit = int(math.floor(_INT64_MAX ** (1.0 / (order + 1)))) - 3
        raise ParameterError(
            "order", order,
            message=f"order={order} supports at most {limit:,} distinct items (int64 keys); got {n_items:,}. "
            "Use a lower order or group rare items first",
        )


def _layout(x: np.ndarray, offsets: np.ndarray, k: int, exit_code: int) -> np.ndarray:
    """Sequences laid out back to back as ``k`` start codes (0), the items and one exit code."""
    n_seq = offsets.size - 1
    steps = np.arange(n_seq, dtype=np.int64) * (k + 1)
    special = np.empty((n_seq, k + 1), dtype=np.int64)
    special[:, :k] = (offsets[:-1] + steps)[:, None] + np.arange(k, dtype=np.int64)
    special[:, k] = offsets[1:] + steps + k
    y = np.zeros(x.size + n_seq * (k + 1), dtype=np.int64)
    is_item = np.ones(y.size, dtype=bool)
    is_item[special.ravel()] = False
    y[is_item] = x
    y[special[:, k]] = exit_code
    return y


def _context_keys(y: np.ndarray, k: int, base: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(j, key)`` for orders 1..k: the context key of every position ``p >= k`` of the layout.

    The key of order ``j`` at ``p`` encodes ``y[p - j .. p - 1]`` in base ``base`` with the most
    recent code as the lowest digit; aligned with ``y[k:]`` (the next codes). Positions whose
    next code is a start code (0) are padding, not targets.
    """
    n = y.size - k
    ctx = np.zeros(n, dtype=np.int64)
    weight = 1
    for j in range(1, k + 1):
        lag = y[k - j: k - j + n]
        ctx = ctx + (lag if weight == 1 else lag * weight)
        yield j, ctx
        weight *= base


def _first_order_counts(x: np.ndarray, offsets: np.ndarray, base: int, exit_code: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted first-order pair keys ``from * base + to`` and their counts (the fast path)."""
    starts, ends = offsets[:-1], offsets[1:] - 1
    inner = x[:-1] * base
    inner += x[1:]
    cross = inner[ends[:-1]]  # pairs that straddle two sequences
    edges = np.concatenate([x[starts], x[ends] * base + exit_code])
    space = base * base
    if space <= max(2 * x.size, 1 << 16):
        counts = np.bincount(inner, minlength=space)
        counts -= np.bincount(cross, minlength=space)
        counts += np.bincount(edges, minlength=space)
        nz = np.flatnonzero(counts)
        return nz.astype(np.int64), counts[nz].astype(np.int64)
    keep = np.ones(inner.size, dtype=bool)
    keep[ends[:-1]] = False
    return _count(np.concatenate([inner[keep], edges]), space)


def _build_tables(x: np.ndarray, offsets: np.ndarray, m: int, k: int) -> list[_Table]:
    """Tables of orders 0..k for item codes ``x`` in ``1..m`` (start 0, exit m + 1)."""
    base = m + 3
    exit_code = m + 1
    _check_key_space(base, k, m)
    pairs1, cnt1 = _first_order_counts(x, offsets, base, exit_code)
    # order 0: how often each next state occurs (every target)
    c0 = np.bincount(pairs1 % base, weights=cnt1, minlength=base).astype(np.int64)
    nz = np.flatnonzero(c0)
    tables = [_Table.from_pairs(0, base, nz.astype(np.int64), c0[nz]), _Table.from_pairs(1, base, pairs1, cnt1)]
    if k >= 2:
        y = _layout(x, offsets, k, exit_code)
        nxt = y[k:]
        for j, ctx in _context_keys(y, k, base):
            if j < 2:
                continue
            keys = ctx * base
            keys += nxt
            pairs, cnt = _count(keys, base ** (j + 1))
            del keys
            target = pairs % base != _START  # drop the padding positions
            tables.append(_Table.from_pairs(j, base, pairs[target], cnt[target]))
    return tables


def _decode_context(key: int, order: int, base: int) -> list[int]:
    """Codes of a context key, oldest first."""
    digits = []
    for _ in range(order):
        key, d = divmod(key, base)
        digits.append(d)
    return digits[::-1]


# ---------------------------------------------------------------------------------------------
# the estimator


def _check_fraction(name: str, value: Any) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not ok or not (0.0 <= float(value) <= 1.0):  # also rejects NaN
        raise ParameterError(name, value, "a number in [0, 1]")
    return float(value)


class MarkovChain(BaseEstimator):
    """Markov chain of order 1, 2 or 3 over event sequences, with explicit start and exit states.

    Parameters
    ----------
    order : {1, 2, 3}, default=1
        Number of previous items the next item depends on.
    smoothing : float, default=0.0
        Additive (Laplace / Lidstone) smoothing ``alpha >= 0`` added to every possible next state
        (each item and the exit) of every context seen in training. ``0`` is the maximum
        likelihood estimate. The start column (order 1) is never smoothed.
    start_state : hashable, default="(start)"
        Label of the state before every sequence's first item; must not be an item.
    exit_state : hashable, default="(exit)"
        Label of the state after every sequence's last item; must not be an item.

    Attributes
    ----------
    states_ : list
        ``[start_state, *items_, exit_state]``; the codes ``0 .. len(states_) - 1`` used inside.
    items_ : list
        The distinct items seen in training, sorted.
    counts_ : pandas.DataFrame
        Transition counts. Order 1: square over ``states_`` (rows = from, columns = to). Order
        ``k >= 2``: one row per context seen (a MultiIndex ``t-k, ..., t-1`` of labels, oldest
        first), one column per next state (``items_`` and the exit). Built on first access;
        raises for more than 20 million cells (use :meth:`to_frame`).
    transition_matrix_ : pandas.DataFrame
        Transition probabilities, same layout as ``counts_``; every row sums to 1 (order 1: the
        exit row is absorbing, a 1 on the diagonal).
    mean_position_ : pandas.Series
        Mean 1-based position of each state in its sequences (start 0, exit the mean sequence
        length + 1); used to lay out :func:`plot_transition_flow`.
    loglik_ : float
        Log-likelihood of the training sequences (natural log; every item and exit predicted).
    n_params_ : int
        Free parameters: contexts seen in training times ``len(items_)`` (each context's
        distribution over ``len(items_) + 1`` next states sums to 1).
    n_sequences_, n_events_ : int
        Training sequences and items.
    n_transitions_ : int
        Predicted transitions, ``n_events_ + n_sequences_`` (the BIC's sample size).

    See Also
    --------
    select_markov_order : Compare orders by AIC, BIC and held-out accuracy.
    plot_transition_heatmap, plot_transition_flow : Draw the fitted transitions.

    Examples
    --------
    >>> from segkit.markov import MarkovChain
    >>> seqs = [["home", "product", "cart"], ["home", "product"], ["product"]]
    >>> mc = MarkovChain().fit(seqs)
    >>> mc.states_
    ['(start)', 'cart', 'home', 'product', '(exit)']
    >>> mc.transition_matrix_.loc["product"].round(2).tolist()
    [0.0, 0.33, 0.0, 0.0, 0.67]
    >>> mc.predict_next(["home"])
    'product'
    >>> round(float(mc.absorption_probabilities("cart").loc["(start)", "cart"]), 4)
    0.3333
    """

    def __init__(
        self,
        order: int = 1,
        *,
        smoothing: float = 0.0,
        start_state: Hashable = "(start)",
        exit_state: Hashable = "(exit)",
    ) -> None:
        self.order = order
        self.smoothing = smoothing
        self.start_state = start_state
        self.exit_state = exit_state

    # -- fitting ------------------------------------------------------------------------------

    def _validate_params(self) -> tuple[int, float]:
        if not _is_int(self.order) or self.order not in _ORDERS:
            raise ParameterError("order", self.order, list(_ORDERS))
        s = self.smoothing
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, float, np.integer, np.floating)) or not (
            math.isfinite(float(s)) and float(s) >= 0
        ):
            raise ParameterError("smoothing", s, "a finite number >= 0 (0: maximum likelihood)")
        for name in ("start_state", "exit_state"):
            value = getattr(self, name)
            if _unhashable(value) or _is_missing(value):
                raise ParameterError(name, value, "a hashable label that is not None or NaN")
        if self.start_state == self.exit_state:
            raise ParameterError("exit_state", self.exit_state, message=f"start_state and exit_state must differ; both "
                                 f"are {self.start_state!r}")
        return int(self.order), float(s)

    def fit(
        self,
        sequences: Sequence[Sequence[Hashable]] | pd.DataFrame | None = None,
        *,
        codes: Any = None,
        lengths: Any = None,
        labels: Sequence[Hashable] | None = None,
        session_col: str | None = None,
        timestamp_col: str | None = None,
        event_col: str | None = None,
    ) -> MarkovChain:
        """Count the transitions of ``sequences`` and estimate the chain.

        Parameters
        ----------
        sequences : list of lists of hashable, or pandas.DataFrame, default=None
            Either a list of sequences (lists or tuples of hashable items; each non-empty), or a
            DataFrame with one row per event: a sequence id column, an order column and an item
            column. Rows are ordered by the order column within each sequence (a stable sort,
            so ties keep their row order); the frame is not modified.
        codes : array-like of int, default=None
            Pre-encoded alternative to ``sequences``: all sequences' integer codes (``>= 0``),
            concatenated. Codes that never occur are not states.
        lengths : array-like of int, default=None
            With ``codes`` (required): the length of each sequence, summing to ``len(codes)``.
        labels : sequence of hashable, default=None
            With ``codes``: the label of each code (``labels[c]``); default the codes themselves.
        session_col : str, default="session_id"
            With a DataFrame: the sequence id column.
        timestamp_col : str, default="timestamp"
            With a DataFrame: the order column (timestamps, numbers or any sortable values).
        event_col : str, default="event"
            With a DataFrame: the item column.

        Returns
        -------
        self : MarkovChain
            The fitted chain.

        Raises
        ------
        ParameterError
            On an empty input, an empty sequence, an unhashable or missing item, an item equal
            to the start or exit label, ``order`` not in 1..3, ``smoothing < 0``, or arguments of
            two input modes at once.
        SchemaError
            When a DataFrame lacks one of the three columns.

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"session_id": [1, 1, 2], "timestamp": [2, 1, 1],
        ...                    "event": ["b", "a", "a"]})
        >>> MarkovChain().fit(df).counts_.loc["a", ["b", "(exit)"]].tolist()
        [1, 1]
        >>> MarkovChain().fit(codes=[0, 1, 0], lengths=[2, 1], labels=["a", "b"]).items_
        ['a', 'b']
        """
        order, alpha = self._validate_params()
        enc = _encode_input(sequences, codes, lengths, labels, session_col, timestamp_col, event_col)
        self._fit_encoded(enc, order, alpha)
        return self

    def _fit_encoded(self, enc: _Encoded, order: int, alpha: float) -> None:
        # keep only the codes that occur, in item order
        occ = np.bincount(enc.codes, minlength=len(enc.labels))
        present = occ > 0
        x, items = enc.codes, list(enc.labels)
        if not present.all():
            x = (np.cumsum(present) - 1)[x]
            items = [lab for lab, p in zip(items, present) if p]
            occ = occ[present]
        ordered = _item_order(items)
        if ordered != items:
            rank_of = {lab: i for i, lab in enumerate(ordered)}
            rank = np.array([rank_of[lab] for lab in items], dtype=np.int64)
            x = rank[x]
            occ = occ[np.argsort(rank)]
            items = ordered
        for name in ("start_state", "exit_state"):
            value = getattr(self, name)
            if value in set(items):
                raise ParameterError(name, value, message=f"{name}={value!r} is also an item of the sequences; choose "
                                     f"another label (e.g. {f'({value})'!r})")
        m = len(items)
        x = x.astype(np.int64, copy=False) + 1
        offsets = enc.offsets
        self._tables = _build_tables(x, offsets, m, order)
        self._alpha = alpha
        self._base = m + 3
        self._order = order
        self.items_ = items
        self.states_ = [self.start_state, *items, self.exit_state]
        self._code_of = {lab: i for i, lab in enumerate(self.states_)}
        self.n_sequences_ = int(offsets.size - 1)
        self.n_events_ = int(x.size)
        self.n_transitions_ = self.n_events_ + self.n_sequences_
        # mean 1-based position of each item
        pos = np.arange(1, x.size + 1, dtype=np.int64)
        pos -= np.repeat(offsets[:-1], enc.lengths)
        mean = np.bincount(x, weights=pos, minlength=m + 2)
        mean[1: m + 1] /= occ
        del pos
        mean[0] = 0.0
        mean[m + 1] = x.size / self.n_sequences_ + 1.0
        self.mean_position_ = pd.Series(mean, index=pd.Index(self.states_, dtype=object, tupleize_cols=False),
                                        name="mean_position")
        self.loglik_ = self._train_loglik(order)
        self.n_params_ = int(self._tables[order].ctx.size * m)
        self._cache: dict[str, pd.DataFrame] = {}

    def _train_loglik(self, order: int) -> float:
        t = self._tables[order]
        v = len(self.items_) + 1
        tot = np.repeat(t.total, np.diff(t.ptr))
        p = (t.cnt + self._alpha) / (tot + self._alpha * v)
        return float(np.sum(t.cnt * np.log(p)))

    def _truncated(self, order: int) -> MarkovChain:
        """The chain of a lower ``order`` fitted on the same data (its tables are a prefix)."""
        other = MarkovChain(order, smoothing=self.smoothing, start_state=self.start_state, exit_state=self.exit_state)
        other.__dict__.update({k: v for k, v in self.__dict__.items() if k.endswith("_") or k.startswith("_")})
        other.order = order
        other._order = order
        other._tables = self._tables[: order + 1]
        other.loglik_ = other._train_loglik(order)
        other.n_params_ = int(other._tables[order].ctx.size * len(self.items_))
        other._cache = {}
        return other

    # -- fitted state -------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if "_tables" not in self.__dict__:
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; call 'fit' first")

    def _first_order_dense(self) -> np.ndarray:
        """First-order counts as a dense (m + 2) x (m + 2) int64 array over ``states_``."""
        t = self._tables[1]
        size = len(self.states_)
        if size * size > _MAX_DENSE_CELLS:
            raise SegkitError(
                f"The first-order matrix would have {size:,} x {size:,} cells (over {_MAX_DENSE_CELLS:,}); dense "
                "outputs and the absorbing-chain analysis need fewer items (group rare ones); to_frame() works"
            )
        ctx_of = np.repeat(t.ctx, np.diff(t.ptr))
        dense = np.zeros((size, size), dtype=np.int64)
        dense[ctx_of, t.nxt] = t.cnt
        return dense

    def _first_order_prob(self) -> np.ndarray:
        """First-order transition probabilities (smoothed), exit absorbing; rows sum to 1."""
        cnt = self._first_order_dense().astype(float)
        size = cnt.shape[0]
        if self._alpha:
            cnt[: size - 1, 1:] += self._alpha
        cnt[size - 1, size - 1] = 1.0
        return cnt / cnt.sum(axis=1, keepdims=True)

    def _dense(self, what: str) -> pd.DataFrame:
        self._check_fitted()
        if what in self._cache:
            return self._cache[what]
        k = self._order
        idx = pd.Index(self.states_, dtype=object, tupleize_cols=False)
        if k == 1:
            values: np.ndarray = self._first_order_dense() if what == "counts" else self._first_order_prob()
            frame = pd.DataFrame(values, index=idx.copy(), columns=idx.copy())
        else:
            t = self._tables[k]
            n_rows, n_cols = t.ctx.size, len(self.items_) + 1
            if n_rows * n_cols > _MAX_DENSE_CELLS:
                raise SegkitError(
                    f"The order-{k} {what} matrix would have {n_rows:,} x {n_cols:,} cells (over "
                    f"{_MAX_DENSE_CELLS:,}); use to_frame() for the transitions seen"
                )
            dense = np.zeros((n_rows, n_cols), dtype=np.int64)
            row = np.repeat(np.arange(n_rows), np.diff(t.ptr))
            dense[row, t.nxt - 1] = t.cnt
            if what == "counts":
                values = dense
            else:
                sm = dense + self._alpha
                values = sm / sm.sum(axis=1, keepdims=True)
            tuples = [tuple(self.states_[c] for c in _decode_context(int(key), k, self._base)) for key in t.ctx]
            rows = pd.MultiIndex.from_tuples(tuples, names=[f"t-{k - i}" for i in range(k)])
            frame = pd.DataFrame(values, index=rows, columns=pd.Index(self.states_[1:], dtype=object, tupleize_cols=False))
        frame.index.name = frame.index.name if k > 1 else "from"
        frame.columns.name = "to"
        self._cache[what] = frame
        return frame

    @property
    def counts_(self) -> pd.DataFrame:
        """Transition counts (see the class docstring for the layout)."""
        return self._dense("counts")

    @property
    def transition_matrix_(self) -> pd.DataFrame:
        """Transition probabilities, rows summing to 1 (see the class docstring for the layout)."""
        return self._dense("prob")

    def aic(self) -> float:
        """Akaike information criterion of the training data, ``-2 loglik_ + 2 n_params_`` (lower is better).

        Examples
        --------
        >>> mc = MarkovChain().fit([["a", "b"], ["a"]])
        >>> round(mc.aic(), 4) == round(-2 * mc.loglik_ + 2 * mc.n_params_, 4)
        True
        """
        self._check_fitted()
        return -2.0 * self.loglik_ + 2.0 * self.n_params_

    def bic(self) -> float:
        """Bayesian information criterion, ``-2 loglik_ + n_params_ log(n_transitions_)`` (lower is better).

        Examples
        --------
        >>> mc = MarkovChain().fit([["a", "b"], ["a"]])
        >>> mc.n_params_, mc.n_transitions_
        (6, 5)
        """
        self._check_fitted()
        return -2.0 * self.loglik_ + self.n_params_ * math.log(self.n_transitions_)

    def to_frame(self) -> pd.DataFrame:
        """Tidy table of the transitions seen in training: ``from``, ``to``, ``count``, ``prob``.

        For order ``k >= 2``, ``from`` holds the context tuple (oldest first). Sorted by
        ``count`` descending, then by state order. Smoothed probabilities of transitions never
        seen are not listed.

        Returns
        -------
        pandas.DataFrame
            One row per (from, to) pair seen.

        Examples
        --------
        >>> MarkovChain().fit([["a", "b"], ["a"]]).to_frame().head(2)
              from to  count  prob
        0  (start)  a      2   1.0
        1        a  b      1   0.5
        """
        self._check_fitted()
        k = self._order
        t = self._tables[k]
        v = len(self.items_) + 1
        row = np.repeat(np.arange(t.ctx.size), np.diff(t.ptr))
        prob = (t.cnt + self._alpha) / (t.total[row] + self._alpha * v)
        if k == 1:
            src = [self.states_[int(c)] for c in t.ctx]
        else:
            src = [tuple(self.states_[c] for c in _decode_context(int(key), k, self._base)) for key in t.ctx]
        src_arr = np.empty(len(src), dtype=object)
        src_arr[:] = src
        order = np.lexsort((t.nxt, row, -t.cnt))
        to = np.empty(len(self.states_), dtype=object)
        to[:] = self.states_
        return pd.DataFrame({
            "from": src_arr[row[order]],
            "to": to[t.nxt[order]],
            "count": t.cnt[order],
            "prob": prob[order],
        })

    # -- prediction ---------------------------------------------------------------------------

    def _context_codes(self, context: Any) -> list[int]:
        if isinstance(context, (str, bytes)) or not isinstance(context, (list, tuple, np.ndarray, pd.Series, pd.Index)):
            context = [context]
        codes = []
        for i, item in enumerate(list(context)):
            if _unhashable(item):
                raise ParameterError(f"context[{i}]", item, message=f"context[{i}] = {_short.repr(item)} is not hashable")
            code = self._code_of.get(item)
            if code is None:
                raise ParameterError(
                    f"context[{i}]", item, self.items_,
                    message=f"context[{i}] = {item!r} is not a state of the chain;"
                    f"{did_you_mean(str(item), [str(s) for s in self.items_])} Items: {format_allowed(self.items_)}",
                )
            if code == len(self.states_) - 1:
                raise ParameterError(f"context[{i}]", item, message=f"context[{i}] is the exit state {item!r}: nothing "
                                     "follows the end of a sequence")
            if code == _START and any(c != _START for c in codes):
                raise ParameterError(f"context[{i}]", item, message=f"context[{i}] is the start state {item!r} after an "
                                     "item; the start state can only pad the beginning of a context")
            codes.append(code)
        k = self._order
        codes = [c for c in codes if c != _START][-k:] if any(c != _START for c in codes) else []
        return [_START] * (k - len(codes)) + codes

    def _row(self, context: Any) -> tuple[np.ndarray, np.ndarray, int]:
        """(next codes, smoothed probabilities over items + exit, order used) for one context."""
        self._check_fitted()
        codes = self._context_codes(context)
        v = len(self.items_) + 1
        for j in range(self._order, -1, -1):
            key = 0
            for d in codes[len(codes) - j:] if j else []:
                key = key * self._base + d  # the most recent item ends up the lowest digit
            t = self._tables[j]
            pos, found = t.find_ctx(np.array([key], dtype=np.int64))
            if found[0]:
                a, b = t.ptr[pos[0]], t.ptr[pos[0] + 1]
                counts = np.zeros(v, dtype=float)
                counts[t.nxt[a:b] - 1] = t.cnt[a:b]
                counts += self._alpha
                return np.arange(1, v + 1), counts / counts.sum(), j
        raise AssertionError("order 0 always matches")  # pragma: no cover

    def next_proba(self, context: Sequence[Hashable] | Hashable = ()) -> pd.Series:
        """Probability of each next state (items and exit) after ``context``.

        Parameters
        ----------
        context : sequence of hashable, default=()
            The sequence so far, oldest first; only the last ``order`` items matter. A shorter
            context is the beginning of a sequence (padded with the start state); ``()`` is the
            start. A single string is one item. For an order-``k`` context never seen in
            training, the longest seen suffix is used (``attrs["order_used"]`` tells which).

        Returns
        -------
        pandas.Series
            Indexed by ``items_`` and the exit state; sums to 1.

        Raises
        ------
        ParameterError
            When an item of the context is not a state (with a did-you-mean hint).

        Examples
        --------
        >>> mc = MarkovChain().fit([["a", "b"], ["a"]])
        >>> mc.next_proba(["a"]).tolist()
        [0.0, 0.5, 0.5]
        """
        _, prob, used = self._row(context)
        out = pd.Series(prob, index=pd.Index(self.states_[1:], dtype=object, tupleize_cols=False), name="prob")
        out.attrs["order_used"] = used
        return out

    def predict_next(self, context: Sequence[Hashable] | Hashable = ()) -> Hashable:
        """The most likely next state after ``context`` (ties: the first in ``states_`` order).

        Parameters
        ----------
        context : sequence of hashable, default=()
            As in :meth:`next_proba` (back-off to lower orders for unseen contexts).

        Returns
        -------
        hashable
            An item or the exit state.

        Examples
        --------
        >>> MarkovChain().fit([["a", "b"], ["a", "b"], ["b"]]).predict_next(["a"])
        'b'
        """
        nxt, prob, _ = self._row(context)
        return self.states_[int(nxt[int(np.argmax(prob))])]

    def _map_codes(self, enc: _Encoded, *, strict: bool) -> np.ndarray:
        """Model codes (1..m, unknown m + 2) of encoded data; unknown items raise when ``strict``."""
        lut = np.empty(len(enc.labels), dtype=np.int64)
        unknown_code = len(self.items_) + 2
        for i, lab in enumerate(enc.labels):
            code = self._code_of.get(lab)
            if code is None or code == _START or code == len(self.states_) - 1:
                if strict:
                    hint = did_you_mean(str(lab), [str(s) for s in self.items_])
                    raise ParameterError("sequences", lab, self.items_,
                                         message=f"Item {lab!r} was not seen in training;{hint} Items: "
                                         f"{format_allowed(self.items_)}")
                code = unknown_code
            lut[i] = code
        return lut[enc.codes]

    def _targets(self, x: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For every target: next code, matched-context probability, prediction and order used."""
        k = self._order
        y = _layout(x, offsets, k, len(self.items_) + 1)
        target = y[k:] != _START
        nxt = y[k:][target]
        keys = [np.zeros(nxt.size, dtype=np.int64)] + [ctx[target] for _, ctx in _context_keys(y, k, self._base)]
        v = len(self.items_) + 1
        prob = np.zeros(nxt.size)
        pred = np.zeros(nxt.size, dtype=np.int64)
        used = np.full(nxt.size, -1, dtype=np.int64)
        todo = np.arange(nxt.size)
        for j in range(k, -1, -1):
            t = self._tables[j]
            pos, found = t.find_ctx(keys[j][todo])
            hit, pos = todo[found], pos[found]
            c = t.pair_counts(keys[j][hit] * self._base + nxt[hit])
            prob[hit] = (c + self._alpha) / (t.total[pos] + self._alpha * v)
            pred[hit] = t.best[pos]
            used[hit] = j
            todo = todo[~found]
            if not todo.size:
                break
        prob[nxt == len(self.items_) + 2] = 0.0  # unknown items have no probability
        return nxt, prob, pred, used

    def score(
        self,
        sequences: Sequence[Sequence[Hashable]] | pd.DataFrame | None = None,
        *,
        codes: Any = None,
        lengths: Any = None,
        labels: Sequence[Hashable] | None = None,
        session_col: str | None = None,
        timestamp_col: str | None = None,
        event_col: str | None = None,
    ) -> float:
        """Log-likelihood (natural log) of ``sequences`` under the chain, every item and exit predicted.

        Takes the same inputs as :meth:`fit`. Contexts of order ``k >= 2`` not seen in training
        back off to the longest seen suffix. A transition with probability zero (possible when
        ``smoothing=0``) makes the result ``-inf``.

        Returns
        -------
        float
            The log-likelihood.

        Raises
        ------
        ParameterError
            When an item was not seen in training (did-you-mean hint), or on bad input as in :meth:`fit`.

        Examples
        --------
        >>> mc = MarkovChain().fit([["a", "b"], ["a"]])
        >>> round(mc.score([["a", "b"], ["a"]]), 6) == round(mc.loglik_, 6)
        True
        """
        self._check_fitted()
        enc = _encode_input(sequences, codes, lengths, labels, session_col, timestamp_col, event_col)
        x = self._map_codes(enc, strict=True)
        _, prob, _, _ = self._targets(x, enc.offsets)
        with np.errstate(divide="ignore"):
            return float(np.sum(np.log(prob)))

    # -- absorbing-chain analysis -------------------------------------------------------------

    def _require_first_order(self, what: str) -> None:
        self._check_fitted()
        if self._order != 1:
            raise ParameterError("order", self._order, message=f"{what} needs a first-order chain; this chain has "
                                 f"order={self._order} (fit MarkovChain(order=1))")

    def _item_code(self, name: str, value: Any) -> int:
        code = None if _unhashable(value) else self._code_of.get(value)
        if code is None or code == _START or code == len(self.states_) - 1:
            if code == _START:
                extra = " (the start state cannot be a target)"
            elif code is not None:
                extra = " (the exit state is always absorbing; name an item)"
            else:
                extra = ";" + did_you_mean(str(value), [str(s) for s in self.items_])
            raise ParameterError(name, value, self.items_,
                                 message=f"{name}={value!r} is not an item of the chain{extra} Items: "
                                 f"{format_allowed(self.items_)}")
        return code

    def _absorbing(self, absorbing: Any) -> tuple[list[int], list[int], Any, np.ndarray]:
        """(transient codes, absorbing codes, LU of I - Q, R) for the given absorbing items."""
        from scipy.linalg import LinAlgWarning, lu_factor

        if absorbing is None:
            absorbing = []
        elif isinstance(absorbing, (str, bytes)) or not isinstance(absorbing, (list, tuple, set, frozenset)):
            absorbing = [absorbing]
        exit_code = len(self.states_) - 1
        a_codes = list(dict.fromkeys(self._item_code("absorbing", a) for a in absorbing if a != self.exit_state))
        a_codes.append(exit_code)
        transient = [c for c in range(len(self.states_)) if c not in set(a_codes)]
        p = self._first_order_prob()
        q = p[np.ix_(transient, transient)]
        r = p[np.ix_(transient, a_codes)]
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error", LinAlgWarning)
            try:
                lu = lu_factor(np.eye(len(transient)) - q)
            except (LinAlgWarning, np.linalg.LinAlgError, ValueError) as exc:  # pragma: no cover - cannot happen for fitted chains
                raise SegkitError(f"I - Q is singular: some states never reach an absorbing state ({exc})") from None
        return transient, a_codes, lu, r

    def absorption_probabilities(self, absorbing: Hashable | Sequence[Hashable] = ()) -> pd.DataFrame:
        """Probability of ending in each absorbing state, from every other state.

        The given items become absorbing (the chain stops at the first visit), together with
        the exit state, which always is. With ``Q`` the transitions among the other (transient)
        states and ``R`` those into the absorbing ones, the fundamental matrix is
        ``N = (I - Q)^-1`` and the absorption probabilities are ``B = N R``, computed by LU
        solves (never an explicit inverse). Dense: for up to a few thousand states.

        Parameters
        ----------
        absorbing : hashable or sequence of hashable, default=()
            Items to make absorbing (e.g. ``"purchase"``); the exit state is added.

        Returns
        -------
        pandas.DataFrame
            Rows: the transient states (start first), columns: the absorbing states (the exit
            last); each row sums to 1.

        Raises
        ------
        ParameterError
            For an unknown item (did-you-mean hint), the start state, or a chain of order > 1.

        Examples
        --------
        >>> mc = MarkovChain().fit([["a", "buy"], ["a"], ["b", "a", "buy"]])
        >>> mc.absorption_probabilities("buy").round(3).loc["(start)"].tolist()
        [0.667, 0.333]
        """
        from scipy.linalg import lu_solve

        self._require_first_order("absorption_probabilities")
        transient, a_codes, lu, r = self._absorbing(absorbing)
        b = lu_solve(lu, r)
        lab = self.states_
        return pd.DataFrame(b, index=pd.Index([lab[c] for c in transient], dtype=object, name="from", tupleize_cols=False),
                            columns=pd.Index([lab[c] for c in a_codes], dtype=object, name="absorbed_in", tupleize_cols=False))

    def expected_steps(self, absorbing: Hashable | Sequence[Hashable] = ()) -> pd.Series:
        """Expected number of transitions until absorption, from every transient state (``t = N 1``).

        With only the exit absorbing, the value at the start state is the mean number of
        transitions per sequence implied by the chain (for the unsmoothed fit: the mean
        sequence length + 1).

        Parameters
        ----------
        absorbing : hashable or sequence of hashable, default=()
            Items to make absorbing, as in :meth:`absorption_probabilities`.

        Returns
        -------
        pandas.Series
            Indexed by the transient states.

        Examples
        --------
        >>> mc = MarkovChain().fit([["a", "b"], ["a"]])
        >>> float(mc.expected_steps().loc["(start)"])
        2.5
        """
        from scipy.linalg import lu_solve

        self._require_first_order("expected_steps")
        transient, _, lu, _ = self._absorbing(absorbing)
        t = lu_solve(lu, np.ones(len(transient)))
        return pd.Series(t, index=pd.Index([self.states_[c] for c in transient], dtype=object, name="from",
                                           tupleize_cols=False), name="expected_steps")

    def conversion_probability(self, target: Hashable) -> float:
        """Probability that a sequence reaches ``target`` before it ends (target absorbing).

        Examples
        --------
        >>> MarkovChain().fit([["a", "buy"], ["a"]]).conversion_probability("buy")
        0.5
        """
        self._require_first_order("conversion_probability")
        code = self._item_code("target", target)
        return float(self.absorption_probabilities(self.states_[code]).iloc[0, 0])

    def removal_effects(self, target: Hashable) -> pd.DataFrame:
        """How much the conversion probability from the start falls when each state is removed.

        The conversion probability is the probability of reaching ``target`` before the exit
        (both absorbing). Removing a state redirects every transition into it to the exit; the
        removal effect is the relative fall ``1 - conversion_without / conversion`` (the
        attribution removal effect of Anderl et al., 2016) and ``share`` normalises the effects
        to sum to 1. Computed in closed form from one factorisation: the conversion without
        ``s`` is ``h(start) - f(start, s) h(s)``, with ``h`` the conversion probability from
        each state and ``f(start, s) = N[start, s] / N[s, s]`` the probability of ever visiting
        ``s`` (equal to recomputing the chain with ``s`` redirected).

        Parameters
        ----------
        target : hashable
            The converting item (e.g. ``"purchase"``).

        Returns
        -------
        pandas.DataFrame
            One row per item other than ``target``: ``state``, ``visit_probability``,
            ``conversion_without``, ``drop`` (absolute), ``removal_effect`` (relative) and
            ``share``; sorted by ``removal_effect`` descending (ties in state order).
            ``attrs["conversion"]`` is the conversion probability. When it is 0 the
            relative columns are NaN.

        Raises
        ------
        ParameterError
            For an unknown target (did-you-mean hint), the start or exit state, or order > 1.

        Examples
        --------
        >>> mc = MarkovChain().fit([["a", "buy"], ["b", "buy"], ["a"], ["b"]])
        >>> mc.removal_effects("buy")[["state", "removal_effect", "share"]]
          state  removal_effect  share
        0     a             0.5    0.5
        1     b             0.5    0.5
        """
        from scipy.linalg import lu_solve

        self._require_first_order("removal_effects")
        code = self._item_code("target", target)
        transient, a_codes, lu, r = self._absorbing(self.states_[code])
        h = lu_solve(lu, r[:, 0])
        n_t = len(transient)
        n_mat = lu_solve(lu, np.eye(n_t))  # fundamental matrix N, column by column
        start_row = n_mat[0]
        diag = np.diag(n_mat)
        visit = start_row / diag
        base = float(h[0])
        without = base - visit * h
        states = np.array([self.states_[c] for c in transient], dtype=object)
        sel = np.arange(1, n_t)  # every transient item (not the start)
        drop = base - without[sel]
        if base > 0:
            effect = np.clip(drop / base, 0.0, 1.0)
            total = effect.sum()
            share = effect / total if total > 0 else np.zeros_like(effect)
        else:
            effect = np.full(sel.size, np.nan)
            share = np.full(sel.size, np.nan)
        out = pd.DataFrame({
            "state": states[sel],
            "visit_probability": np.clip(visit[sel], 0.0, 1.0),
            "conversion_without": np.clip(without[sel], 0.0, 1.0),
            "drop": drop,
            "removal_effect": effect,
            "share": share,
        })
        out = out.iloc[np.lexsort((np.arange(sel.size), -np.nan_to_num(effect)))].reset_index(drop=True)
        out.attrs["conversion"] = base
        out.attrs["target"] = self.states_[code]
        return out


# ---------------------------------------------------------------------------------------------
# order selection


@dataclass(frozen=True)
class OrderSelection:
    """Result of :func:`select_markov_order`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per order: ``order``, ``n_contexts``, ``n_params``, ``loglik``, ``aic``, ``bic``
        (training split), ``accuracy`` (held-out next-state accuracy), ``accuracy_gain``
        (minus first order's accuracy), ``backoff_rate`` (share of held-out predictions that
        backed off to a lower order) and ``chosen``.
    order : int
        The chosen order.
    criterion : str
        The criterion the choice minimised (``"bic"``, ``"aic"``) or maximised (``"accuracy"``).
    reason : str
        One sentence explaining the choice from the table's numbers.
    model : MarkovChain
        The chosen order fitted on all sequences.
    n_train, n_test : int
        Training and held-out sequences.
    """

    table: pd.DataFrame
    order: int
    criterion: str
    reason: str
    model: MarkovChain
    n_train: int
    n_test: int


def _split(enc: _Encoded, test_size: float, random_state: Any) -> tuple[_Encoded, _Encoded | None]:
    n_seq = enc.lengths.size
    n_test = int(round(test_size * n_seq))
    if test_size > 0 and n_test == 0:
        n_test = 1
    if test_size > 0 and n_test >= n_seq:
        raise ParameterError("test_size", test_size, message=f"test_size={test_size!r} leaves no training sequence "
                             f"out of {n_seq:,}; give more sequences or a smaller test_size")
    if n_test == 0:
        return enc, None
    rng = np.random.default_rng(random_state)
    is_test = np.zeros(n_seq, dtype=bool)
    is_test[rng.permutation(n_seq)[:n_test]] = True
    event_test = np.repeat(is_test, enc.lengths)
    train = _Encoded(enc.codes[~event_test], enc.lengths[~is_test], enc.labels)
    test = _Encoded(enc.codes[event_test], enc.lengths[is_test], enc.labels)
    return train, test


def select_markov_order(
    sequences: Sequence[Sequence[Hashable]] | pd.DataFrame | None = None,
    orders: Iterable[int] = (1, 2, 3),
    criterion: Literal["bic", "aic", "accuracy"] = "bic",
    test_size: float = 0.2,
    random_state: int | None = 0,
    *,
    smoothing: float = 0.0,
    codes: Any = None,
    lengths: Any = None,
    labels: Sequence[Hashable] | None = None,
    session_col: str | None = None,
    timestamp_col: str | None = None,
    event_col: str | None = None,
) -> OrderSelection:
    """Compare Markov orders by AIC, BIC and held-out next-state accuracy; choose one.

    The sequences are split at random into training and held-out sequences (``test_size``).
    Every order is fitted on the training sequences (one counting pass at the highest order:
    the lower orders' counts are its prefix tables); log-likelihood, AIC and BIC are those of
    the training sequences. Held-out accuracy is the share of held-out transitions (every
    item and every exit) whose next state is the most likely one given the context (ties: the
    first in state order). A context not seen in training backs off to the longest seen
    suffix (down to the overall most frequent next state); an item not seen in training is a
    context nobody matches and, as a next state, a miss.

    Parameters
    ----------
    sequences : list of lists of hashable, or pandas.DataFrame, default=None
        As in :meth:`MarkovChain.fit` (also ``codes``/``lengths``/``labels`` and the column
        arguments).
    orders : iterable of int, default=(1, 2, 3)
        Orders to compare, each in 1..3. Order 1's accuracy is always computed, as the baseline.
    criterion : {"bic", "aic", "accuracy"}, default="bic"
        Choose the lowest BIC or AIC, or the highest held-out accuracy (needs ``test_size > 0``).
    test_size : float, default=0.2
        Share of sequences held out, in ``[0, 1)``; ``0`` fits on everything and leaves the
        accuracy columns NaN.
    random_state : int or None, default=0
        Seed of the split.
    smoothing : float, default=0.0
        Passed to :class:`MarkovChain`.

    Returns
    -------
    OrderSelection
        The table, the chosen order, a sentence explaining why, and the chosen model refitted
        on all sequences.

    Raises
    ------
    ParameterError
        On an empty or invalid ``orders``, an unknown criterion, ``test_size`` outside
        ``[0, 1)``, ``criterion="accuracy"`` with ``test_size=0``, or bad input.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> seqs = [rng.choice(["a", "b", "c"], size=8).tolist() for _ in range(300)]
    >>> sel = select_markov_order(seqs, orders=(1, 2))
    >>> sel.table[["order", "n_params", "chosen"]]
       order  n_params  chosen
    0      1        12    True
    1      2        39   False
    >>> sel.order, sel.n_train, sel.n_test
    (1, 240, 60)
    """
    if criterion not in _CRITERIA:
        raise ParameterError("criterion", criterion, list(_CRITERIA))
    try:
        wanted = list(orders)
    except TypeError:
        raise ParameterError("orders", orders, "a non-empty list of orders in 1..3") from None
    if not wanted:
        raise ParameterError("orders", wanted, message="orders is empty; give at least one order in 1..3")
    for o in wanted:
        if not _is_int(o) or o not in _ORDERS:
            raise ParameterError("orders", o, list(_ORDERS), message=f"orders holds {o!r}; each order must be one of "
                                 f"{list(_ORDERS)!r}")
    if len(set(wanted)) != len(wanted):
        raise ParameterError("orders", wanted, message=f"orders has repeats: {wanted!r}")
    wanted = sorted(int(o) for o in wanted)
    ok = isinstance(test_size, (int, float, np.integer, np.floating)) and not isinstance(test_size, (bool, np.bool_))
    if not ok or not (0.0 <= float(test_size) < 1.0):
        raise ParameterError("test_size", test_size, "a number in [0, 1)")
    if criterion == "accuracy" and float(test_size) == 0.0:
        raise ParameterError("test_size", test_size, message="criterion='accuracy' needs held-out sequences; give "
                             "test_size > 0")
    top = max(wanted)
    probe = MarkovChain(top, smoothing=smoothing)
    _, alpha = probe._validate_params()
    enc = _encode_input(sequences, codes, lengths, labels, session_col, timestamp_col, event_col)
    train, test = _split(enc, float(test_size), random_state)
    full = MarkovChain(top, smoothing=smoothing)
    full._fit_encoded(train, top, alpha)
    x_test = None if test is None else full._map_codes(test, strict=False)
    rows = []
    for o in sorted(set(wanted) | {1}):
        chain = full._truncated(o) if o != top else full
        acc, backoff = float("nan"), float("nan")
        if test is not None:
            nxt, _, pred, used = chain._targets(x_test, test.offsets)
            acc = float(np.mean(pred == nxt))
            backoff = float(np.mean(used < o))
        rows.append({"order": o, "n_contexts": int(chain._tables[o].ctx.size), "n_params": chain.n_params_,
                     "loglik": chain.loglik_, "aic": chain.aic(), "bic": chain.bic(), "accuracy": acc,
                     "backoff_rate": backoff})
    table = pd.DataFrame(rows)
    first_acc = float(table.loc[table["order"] == 1, "accuracy"].iloc[0])
    table = table[table["order"].isin(wanted)].reset_index(drop=True)
    table.insert(table.columns.get_loc("accuracy") + 1, "accuracy_gain", table["accuracy"] - first_acc)
    values = table[criterion].to_numpy()
    best = int(np.argmax(values) if criterion == "accuracy" else np.argmin(values))
    table["chosen"] = np.arange(len(table)) == best
    chosen = int(table.loc[best, "order"])
    reason = _reason(table, best, criterion, first_acc)
    model = MarkovChain(chosen, smoothing=smoothing)
    model._fit_encoded(enc, chosen, alpha)
    return OrderSelection(table=table, order=chosen, criterion=criterion, reason=reason, model=model,
                          n_train=int(train.lengths.size), n_test=0 if test is None else int(test.lengths.size))


def _reason(table: pd.DataFrame, best: int, criterion: str, first_acc: float) -> str:
    row = table.loc[best]
    o = int(row["order"])
    name = criterion.upper() if criterion != "accuracy" else "held-out accuracy"
    if len(table) == 1:
        text = f"order {o} is the only candidate ({name} {row[criterion]:,.4g})"
    elif criterion == "accuracy":
        runner = table.drop(index=best)["accuracy"].idxmax()
        text = (f"order {o} has the highest held-out accuracy ({row['accuracy']:.3f}; next best order "
                f"{int(table.loc[runner, 'order'])}: {table.loc[runner, 'accuracy']:.3f})")
    else:
        runner = table.drop(index=best)[criterion].idxmin()
        text = (f"order {o} has the lowest {name} ({row[criterion]:,.1f}; next best order "
                f"{int(table.loc[runner, 'order'])}: {table.loc[runner, criterion]:,.1f}, "
                f"{table.loc[runner, criterion] - row[criterion]:,.1f} higher)")
    if not math.isnan(first_acc):
        if o != 1:
            text += f"; held-out accuracy {row['accuracy']:.3f} vs {first_acc:.3f} for order 1 ({row['accuracy_gain']:+.3f})"
        else:
            text += f"; held-out accuracy {row['accuracy']:.3f}"
        acc = table["accuracy"].to_numpy()
        top_acc = int(np.argmax(acc))
        if criterion != "accuracy" and top_acc != best and acc[top_acc] > acc[best]:
            d = table.loc[top_acc, criterion] - row[criterion]
            text += (f"; order {int(table.loc[top_acc, 'order'])} predicts held-out sequences better "
                     f"({acc[top_acc]:.3f}) but its {name} is {d:,.1f} higher: the gain does not pay for its "
                     f"{int(table.loc[top_acc, 'n_params']):,} parameters")
    return text


# ---------------------------------------------------------------------------------------------
# plots


def _check_top(top: Any) -> int | None:
    if top is None:
        return None
    if not _is_int(top) or top < 1:
        raise ParameterError("top", top, "None or an int >= 1")
    return int(top)


def _top_items(chain: MarkovChain, top: int | None) -> list[int]:
    """Codes of the ``top`` most frequent items (all when None), in state order."""
    occ = chain._tables[1].total  # per context; order 1 contexts are start + every item
    codes = chain._tables[1].ctx
    items = [(int(c), int(n)) for c, n in zip(codes, occ) if c != _START]
    if top is not None and top < len(items):
        keep = sorted(items, key=lambda cn: (-cn[1], cn[0]))[:top]
        items = sorted(keep)
    return [c for c, _ in items]


def plot_transition_heatmap(chain: MarkovChain, top: int | None = None, ax: Axes | None = None,
                            annot: bool | None = None) -> Figure:
    """Heatmap of the transition probabilities (rows = from, columns = to).

    For a first-order chain the rows are the start and the items and the columns the items and
    the exit (the all-zero start column and the trivial exit row are left out). For order
    ``k >= 2`` the rows are contexts (``a › b``), the ``top`` most frequent ones when given.

    Parameters
    ----------
    chain : MarkovChain
        A fitted chain.
    top : int, default=None
        Keep the ``top`` most frequent items (and, for order >= 2, contexts); rows then need
        not sum to 1.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw on (a new figure when None).
    annot : bool, default=None
        Write the probabilities in the cells; default when at most 15 columns are shown.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> fig = plot_transition_heatmap(MarkovChain().fit([["a", "b"], ["b"]]))
    >>> fig.axes[0].get_xlabel()
    'to'
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    chain._check_fitted()
    top = _check_top(top)
    if annot is not None and not isinstance(annot, (bool, np.bool_)):
        raise ParameterError("annot", annot, [None, True, False])
    keep = _top_items(chain, top)
    labels = chain.states_
    exit_label = labels[-1]
    cols = [labels[c] for c in keep] + [exit_label]
    mat = chain.transition_matrix_
    if chain._order == 1:
        rows = [labels[0]] + [labels[c] for c in keep]
        data = mat.loc[rows, cols]
    else:
        k = chain._order
        t = chain._tables[k]
        keep_set = set(keep) | {_START}
        row_pos = [i for i, key in enumerate(t.ctx)
                   if all(d in keep_set for d in _decode_context(int(key), k, chain._base))]
        if top is not None and len(row_pos) > top:
            row_pos = sorted(sorted(row_pos, key=lambda i: (-t.total[i], i))[:top])
        data = mat.iloc[row_pos].loc[:, cols]
        data.index = [" › ".join(map(str, ctx)) for ctx in data.index]
    data = data.astype(float)
    if annot is None:
        annot = data.shape[1] <= 15 and data.shape[0] <= 30
    if ax is None:
        width = min(16.0, 2.5 + 0.55 * data.shape[1])
        height = min(14.0, 1.5 + 0.4 * data.shape[0])
        _, ax = plt.subplots(figsize=(width, height))
    sns.heatmap(data, ax=ax, cmap="Blues", vmin=0.0, vmax=1.0, annot=bool(annot), fmt=".2f", linewidths=0.5,
                linecolor="white", annot_kws={"fontsize": 8}, cbar_kws={"label": "P(to | from)"})
    ax.set_xlabel("to")
    ax.set_ylabel("from" if chain._order == 1 else "context (oldest › latest)")
    title = f"Order-{chain._order} transition probabilities"
    notes = []
    if top is not None and len(keep) < len(chain.items_):
        notes.append(f"top {top} of {len(chain.items_)} items")
    if chain._order > 1 and len(data) < chain._tables[chain._order].ctx.size:
        notes.append(f"{len(data)} of {chain._tables[chain._order].ctx.size} contexts")
    if notes:
        title += f" ({'; '.join(notes)})"
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=45)
    for lab in ax.get_xticklabels():
        lab.set_ha("right")
    return ax.figure


def _lanes(x: np.ndarray, n_lanes: int) -> np.ndarray:
    """Vertical lane of each node, left to right: the lane with the widest gap since its last node."""
    centre = (n_lanes - 1) / 2
    preference = sorted(range(n_lanes), key=lambda i: (abs(i - centre), i))
    last = [-np.inf] * n_lanes
    lanes = np.zeros(x.size, dtype=float)
    for idx in np.argsort(x, kind="stable"):
        best, best_gap = preference[0], -np.inf
        for lane in preference:
            gap = x[idx] - last[lane]
            if gap > best_gap + 1e-12:
                best, best_gap = lane, gap
        lanes[idx] = best
        last[best] = x[idx]
    return lanes


def plot_transition_flow(chain: MarkovChain, min_prob: float = 0.1, top: int | None = 12,
                         ax: Axes | None = None) -> Figure:
    """Flow graph of the strongest first-order transitions, drawn with matplotlib.

    States are laid out left to right by their mean position in the sequences (start at the
    left, exit at the right), stacked in lanes where they would overlap. Every transition with
    probability at least ``min_prob`` between shown states is an arrow whose width grows with
    the probability and which is labelled with it; a state's probability of repeating itself is
    written under its name (``↺ 0.35``). Node sizes grow with the number of visits. For a chain
    of order >= 2 the first-order transitions of the same data are drawn (the chain keeps them
    for back-off).

    Parameters
    ----------
    chain : MarkovChain
        A fitted chain.
    min_prob : float, default=0.1
        Smallest transition probability drawn, in ``[0, 1]``.
    top : int or None, default=12
        Show the ``top`` most visited items (None: all); start and exit are always shown.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw on (a new figure when None).

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> fig = plot_transition_flow(MarkovChain().fit([["a", "b"], ["b", "a", "b"]]), min_prob=0.2)
    >>> len(fig.axes)
    1
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch

    chain._check_fitted()
    min_prob = _check_fraction("min_prob", min_prob)
    top = _check_top(top)
    p = chain._first_order_prob()
    keep = [_START] + _top_items(chain, top) + [len(chain.states_) - 1]
    labels = [chain.states_[c] for c in keep]
    visits = np.array([chain._tables[1].total[np.searchsorted(chain._tables[1].ctx, c)] if c != keep[-1]
                       else chain.n_sequences_ for c in keep], dtype=float)
    pos = chain.mean_position_.to_numpy()[keep[1:-1]]
    span = pos.max() - pos.min() if pos.size else 0.0
    x = np.empty(len(keep))
    x[0], x[-1] = 0.0, 1.0  # start at the left, exit at the right, items between by mean position
    x[1:-1] = 0.12 + 0.76 * ((pos - pos.min()) / span if span > 0 else 0.5)
    n_lanes = max(1, min(len(keep) - 2, int(math.ceil(math.sqrt(max(len(keep) - 2, 1))))))
    y = np.zeros(len(keep))
    y[1:-1] = _lanes(x[1:-1], n_lanes) if len(keep) > 2 else 0.0
    y[0] = y[-1] = (n_lanes - 1) / 2
    if ax is None:
        _, ax = plt.subplots(figsize=(11, max(4.0, 1.6 * n_lanes + 2)))
    sizes = 300 + 1700 * np.sqrt(visits / visits.max())
    colors = ["#55A868"] + ["#4C72B0"] * (len(keep) - 2) + ["#C44E52"]
    ax.scatter(x, y, s=sizes, c=colors, alpha=0.9, zorder=3, edgecolors="white", linewidths=1.5)
    cmap = plt.get_cmap("Greys")
    radius = np.sqrt(sizes) / 2 + 2  # points
    index_of = {c: i for i, c in enumerate(keep)}
    ax.set_xlim(-0.08, 1.08)
    ax.set_ylim(-0.8, n_lanes - 0.2)
    to_display, to_data = ax.transData.transform, ax.transData.inverted().transform
    rad = 0.2  # the same bend for every arrow: a -> b and b -> a curve to opposite sides
    for a, ca in enumerate(keep[:-1]):
        for cb in keep[1:]:
            b = index_of[cb]
            prob = float(p[ca, cb])
            if a == b or prob < min_prob or prob <= 0:
                continue
            arrow = FancyArrowPatch(
                (x[a], y[a]), (x[b], y[b]), arrowstyle="-|>", mutation_scale=8 + 10 * prob,
                connectionstyle=f"arc3,rad={rad}", linewidth=0.6 + 6.0 * prob, color=cmap(0.35 + 0.6 * prob),
                alpha=0.85, shrinkA=radius[a], shrinkB=radius[b], zorder=2,
            )
            ax.add_patch(arrow)
            # label at the middle of the quadratic Bezier matplotlib draws (arc3, in display space)
            (x1, y1), (x2, y2) = to_display([(x[a], y[a]), (x[b], y[b])])
            cx, cy = (x1 + x2) / 2 + rad * (y2 - y1), (y1 + y2) / 2 - rad * (x2 - x1)
            mx, my = to_data([(0.25 * x1 + 0.5 * cx + 0.25 * x2, 0.25 * y1 + 0.5 * cy + 0.25 * y2)])[0]
            ax.text(mx, my, f"{prob:.2f}", fontsize=7, ha="center", va="center", color="#333333", zorder=4,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
    for i, (c, lab) in enumerate(zip(keep, labels)):
        text = str(lab)
        if 0 < i < len(keep) - 1 and p[c, c] >= min_prob:
            text += f"\n↺ {p[c, c]:.2f}"
        ax.annotate(text, (x[i], y[i]), xytext=(0, -(radius[i] + 4)), textcoords="offset points", ha="center",
                    va="top", fontsize=9, zorder=5, bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7})
    ax.set_axis_off()
    shown = f"top {len(keep) - 2} of {len(chain.items_)} items" if len(keep) - 2 < len(chain.items_) else "all items"
    ax.set_title(f"Transitions with probability ≥ {min_prob:g} ({shown}; left → right by mean position)")
    return ax.figure
