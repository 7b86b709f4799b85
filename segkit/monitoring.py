"""Monitoring segments: sizes over time, feature drift (PSI), membership churn, alerts and pitfalls.

Every check returns numbers first (a DataFrame) and :class:`Alert` objects second, so the report
shows both the table and a visible, coloured verdict (:func:`alerts_html`).

Sizes over time
---------------
:func:`segment_sizes_over_time` gives each segment's size at weekly points (``every="7d"``)
ending at ``end``: ``end``, ``end - 7d``, ... back to ``start``. Two sources, one keyword each:

``membership=``
    One membership table; a user counts from their ``entered_at`` on, and nobody ever leaves.
    Cheap (no re-evaluation), and exact for segments a user cannot leave ("did X at least N
    times" with no window, "did A then B"). It *overstates* windowed and absence conditions
    (``window: last``, ``not_followed_by``) and puts feature-only segments (whose ``entered_at``
    is the run's ``as_of``) entirely at the last point. ``left`` is <NA>.
``evaluate=``
    A callable ``as_of -> membership`` (say ``lambda t: evaluate_segments(defs, events=ev,
    features=build_user_features(ev, as_of=t), as_of=t)``) evaluated at every point: exact for
    every kind of segment (each point sees only the events up to it), at the cost of one
    evaluation per point; ``entered`` / ``left`` compare consecutive points' member sets.

Population stability index
--------------------------
:func:`psi` compares a feature's distribution in a *reference* period (``expected``) with a
*current* one (``actual``)::

    PSI = sum over bins of (a_i - e_i) * ln(a_i / e_i)

with ``e_i``, ``a_i`` the shares of each sample in bin ``i``; a share of 0 is replaced by
``epsilon`` (default 1e-4) so an empty bin gives a large but finite term. Numeric features are
binned on the reference only: ``strategy="quantile"`` cuts at its deciles (``bins=10``; repeated
cut points are merged, so a feature with many zeros gets fewer bins), ``"uniform"`` at equal
widths between its min and max. Bins are right-closed, ``(-inf, c1], (c1, c2], ..., (ck, inf)``,
so current values beyond the reference range land in the outer bins; a constant reference is
cut at its value. Categorical features (text, category, boolean) use one bin per category of
either sample. Missing values always form their own bin, ``"(missing)"``: more missing values is
drift too. The usual reading (and the defaults of :func:`feature_drift`): below 0.1 stable,
0.1-0.25 a moderate shift worth a look, 0.25 and above a major shift. PSI is symmetric in the
two samples *given the bins*; since the bins come from the reference, swapping the samples
changes the result somewhat.

Alerts and pitfalls
-------------------
:func:`check_alerts` turns drift, churn and size tables into :class:`Alert` objects with the
thresholds from the parameters; :func:`pitfall_checks` looks for the classic mistakes of deep
behavioral segmentation: segments too small to act on or test, segments that are nearly the same
users, features that give the label away, and stale data. :func:`alerts_frame` and
:func:`alerts_html` render them, alerts before warnings.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ref = rng.normal(0, 1, 5000)
>>> round(psi(ref, ref), 6), psi(ref, rng.normal(1, 1, 5000)) > 0.25
(0.0, True)
"""
from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from .activation import diff_summary, membership_diff
from .errors import ParameterError, SchemaError, check_columns, did_you_mean, format_allowed
from .membership import _check_membership, _known_segments, _utc, _utc_literal, segment_overlaps
from .params import parse_duration

__all__ = [
    "LEVELS",
    "STRATEGIES",
    "Alert",
    "segment_sizes_over_time",
    "psi",
    "psi_bins",
    "feature_drift",
    "membership_churn",
    "check_alerts",
    "pitfall_checks",
    "alerts_frame",
    "alerts_html",
]

#: Alert levels, most severe first.
LEVELS: tuple[str, ...] = ("alert", "warn")
#: Binning strategies of :func:`psi`.
STRATEGIES: tuple[str, ...] = ("quantile", "uniform")
MISSING_BIN = "(missing)"
DEFAULT_BINS = 10
DEFAULT_EPSILON = 1e-4
_MAX_POINTS = 1000
_COLOURS = {"alert": ("#b71c1c", "#fdecea"), "warn": ("#8a5300", "#fff4e0")}

Level = Literal["alert", "warn"]
Strategy = Literal["quantile", "uniform"]


# --------------------------------------------------------------------------------------------
# Small checks
# --------------------------------------------------------------------------------------------


def _number(value: Any, name: str, *, low: float | None = None, high: float | None = None,
            low_open: bool = True, high_open: bool = False, what: str | None = None) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if ok:
        v = float(value)
        ok = math.isfinite(v)
        if ok and low is not None:
            ok = v > low if low_open else v >= low
        if ok and high is not None:
            ok = v < high if high_open else v <= high
    if not ok:
        if what is None:
            lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
            hi = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
            what = "a number " + " and ".join(p for p in (lo, hi) if p)
        raise ParameterError(name, value, what)
    return float(value)


def _count(value: Any, name: str, *, low: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < low:
        raise ParameterError(name, value, f"a whole number >= {low}")
    return int(value)


def _as_series(values: Any, name: str) -> pd.Series:
    if isinstance(values, pd.Series):
        return values.reset_index(drop=True)
    if isinstance(values, pd.DataFrame):
        raise ParameterError(name, "DataFrame", message=f"{name} must be one feature (a Series or an array), got a "
                             "DataFrame; use feature_drift for a table")
    if isinstance(values, (str, bytes)) or not isinstance(values, (Iterable, np.ndarray, pd.Index)):
        raise ParameterError(name, values, message=f"{name} must be a Series, an array or a list of values, got "
                             f"{type(values).__name__}")
    return pd.Series(values if isinstance(values, (np.ndarray, pd.Index)) else list(values))


def _is_categorical(s: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)


# --------------------------------------------------------------------------------------------
# Sizes over time
# --------------------------------------------------------------------------------------------


def _points(start: pd.Timestamp, end: pd.Timestamp, every: pd.Timedelta) -> list[pd.Timestamp]:
    if start > end:
        raise ParameterError("start", str(start), message=f"start ({start}) is after end ({end})")
    n = int((end - start) // every) + 1
    if n > _MAX_POINTS:
        raise ParameterError("every", str(every), message=f"{n:,} points from {start} to {end} every {every}; at most "
                             f"{_MAX_POINTS:,} (use a longer 'every' or a later start)")
    return [end - k * every for k in range(n)][::-1]


def segment_sizes_over_time(
    membership: pd.DataFrame | None = None,
    *,
    evaluate: Callable[[pd.Timestamp], pd.DataFrame] | None = None,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    every: str | pd.Timedelta = "7d",
    segments: Iterable[str] | None = None,
    user_col: str = "user_id",
) -> pd.DataFrame:
    """Members of each segment at regular points in time (weekly by default).

    Pass exactly one of ``membership`` (sizes from ``entered_at``) and ``evaluate`` (sizes from a
    re-evaluation at every point); the module docstring explains what each can and cannot see.

    Parameters
    ----------
    membership : DataFrame, optional
        A membership table with tz-aware ``entered_at``. A user counts at point ``t`` when their
        ``entered_at <= t``.
    evaluate : callable, optional
        ``evaluate(as_of) -> membership table``, called once per point in time order with a UTC
        Timestamp.
    start, end : str or Timestamp, optional
        First and last point (naive values are UTC). Points are ``end, end - every, ...`` down to
        ``start``, so the last point is ``end`` exactly. With ``membership`` they default to the
        earliest ``entered_at`` and ``attrs["as_of"]`` (else the latest ``entered_at``); with
        ``evaluate`` both are required.
    every : str or Timedelta, default="7d"
        Spacing of the points, a duration with units.
    segments : list of str, optional
        Segments to report, in order; default every segment (definition order, empty included).
    user_col : str, default="user_id"
        User column of the membership tables.

    Returns
    -------
    DataFrame
        One row per (point, segment), ordered by point then segment: ``as_of``
        (datetime64[us, UTC]), ``segment``, ``n_users`` (members at the point), ``share``
        (members / ``attrs["n_users"]`` of the evaluated membership; NaN with ``membership=``),
        ``entered`` and ``left`` (Int64: users who joined / left since the previous point),
        ``change`` (Int64, size minus the previous point's) and ``pct_change`` (change / previous
        size; NaN when that is 0). With ``evaluate=`` these are <NA> (NaN) at the first point;
        with ``membership=`` the "previous point" of the first one is ``first - every`` (read
        from ``entered_at`` like every other), and ``left`` is always <NA>.
        ``attrs["source"]`` is ``"entered_at"`` or ``"evaluate"``.

    Raises
    ------
    ParameterError
        Both or neither source, ``start``/``end`` with ``evaluate`` missing, start after end,
        a bare-number ``every``, more than 1000 points, an unknown segment, ``evaluate``
        returning something other than a membership table.
    SchemaError
        Missing columns, null users or segments, naive ``entered_at``.

    Examples
    --------
    >>> m = pd.DataFrame({"user_id": ["a", "b", "c"], "segment": ["x", "x", "x"],
    ...                   "entered_at": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-01-12"], utc=True)})
    >>> s = segment_sizes_over_time(m, end="2024-01-15")
    >>> s[["as_of", "n_users", "entered"]].astype(str).values.tolist()
    [['2024-01-01 00:00:00+00:00', '1', '1'], ['2024-01-08 00:00:00+00:00', '2', '1'], ['2024-01-15 00:00:00+00:00', '3', '1']]
    """
    if (membership is None) == (evaluate is None):
        raise ParameterError("membership", None, message="Pass exactly one of membership= (sizes from entered_at) "
                             "and evaluate= (a callable as_of -> membership, re-evaluated at every point)")
    step = parse_duration(every, name="every")
    # per (point, segment): members, entered, left and the previous size (None: unknown)
    n_users: list[int] = []
    share: list[float] = []
    entered: list[int | None] = []
    left: list[int | None] = []
    previous: list[int | None] = []
    if membership is not None:
        _check_membership(membership, user_col=user_col, extra=["entered_at"])
        times = _utc(membership["entered_at"], "entered_at")
        null = times.isna().to_numpy()
        if null.any():
            raise SchemaError([{"column": "entered_at", "check": "not_null", "count": int(null.sum()),
                                "examples": membership.loc[null].head(5),
                                "message": "Column 'entered_at' has null values; sizes from entered_at need a time for "
                                "every member"}], title="membership table failed validation")
        names = _pick_segments(_known_segments(membership), segments)
        if end is not None:
            t_end = _utc_literal(end, "end")
        elif membership.attrs.get("as_of") is not None:
            t_end = _utc_literal(membership.attrs["as_of"], "membership.attrs['as_of']")
        elif len(times):
            t_end = pd.Timestamp(times.max())
        else:
            raise ParameterError("end", None, message="The membership is empty and has no attrs['as_of']; pass end=")
        t_start = _utc_literal(start, "start") if start is not None else (
            pd.Timestamp(times.min()) if len(times) else t_end)
        points = _points(t_start, t_end, step)
        # a user counts from their earliest entered_at in the segment (repeated rows count once)
        first = pd.DataFrame({"s": membership["segment"].astype(str).to_numpy(dtype=object),
                              "u": membership[user_col].astype(str).to_numpy(dtype=object),
                              "t": times.array.asi8}).groupby(["s", "u"], sort=False)["t"].min()
        by_segment = {str(k): np.sort(v.to_numpy()) for k, v in first.groupby(level=0, sort=False)}
        at = np.array([p.as_unit("us")._value for p in points], dtype=np.int64)
        step_us = int(step / pd.Timedelta(microseconds=1))
        counts = {n: (np.searchsorted(by_segment.get(n, np.array([], dtype=np.int64)), at, side="right"),
                      np.searchsorted(by_segment.get(n, np.array([], dtype=np.int64)), at - step_us, side="right"))
                  for n in names}
        for i in range(len(points)):
            for n in names:
                now, before = int(counts[n][0][i]), int(counts[n][1][i])
                n_users.append(now)
                share.append(math.nan)
                entered.append(now - before)
                left.append(None)
                previous.append(before)
        source = "entered_at"
    else:
        if not callable(evaluate):
            raise ParameterError("evaluate", type(evaluate).__name__, "a callable as_of -> membership table")
        if start is None or end is None:
            raise ParameterError("start" if start is None else "end", None, message="evaluate= needs start= and end= "
                                 "(the first and last as_of to evaluate)")
        points = _points(_utc_literal(start, "start"), _utc_literal(end, "end"), step)
        results = []
        for t in points:
            m = evaluate(t)
            if not isinstance(m, pd.DataFrame):
                raise ParameterError("evaluate", type(m).__name__, message=f"evaluate({t}) returned "
                                     f"{type(m).__name__}; it must return a membership table (user and segment "
                                     "columns)")
            _check_membership(m, user_col=user_col)
            results.append(m)
        names = _pick_segments(list(dict.fromkeys(s for m in results for s in _known_segments(m))), segments)
        prev_sets: dict[str, set[str]] | None = None
        for m in results:
            seg = m["segment"].astype(str).to_numpy(dtype=object)
            users = m[user_col].astype(str).to_numpy(dtype=object)
            sets = {n: set(users[seg == n]) for n in names}
            total = m.attrs.get("n_users")
            ok_total = isinstance(total, (int, np.integer)) and not isinstance(total, bool) and total > 0
            for n in names:
                n_users.append(len(sets[n]))
                share.append(len(sets[n]) / total if ok_total else math.nan)
                p = None if prev_sets is None else prev_sets[n]
                entered.append(None if p is None else len(sets[n] - p))
                left.append(None if p is None else len(p - sets[n]))
                previous.append(None if p is None else len(p))
            prev_sets = sets
        source = "evaluate"
    as_of = pd.DatetimeIndex([p for p in points for _ in names], dtype="datetime64[us, UTC]")
    change = [None if b is None else a - b for a, b in zip(n_users, previous)]
    pct = [math.nan if b is None or b == 0 else (a - b) / b for a, b in zip(n_users, previous)]
    result = pd.DataFrame({
        "as_of": as_of,
        "segment": pd.array([n for _ in points for n in names], dtype="string"),
        "n_users": np.asarray(n_users, dtype="int64"),
        "share": np.asarray(share, dtype="float64"),
        "entered": pd.array(entered, dtype="Int64"),
        "left": pd.array(left, dtype="Int64"),
        "change": pd.array(change, dtype="Int64"),
        "pct_change": np.asarray(pct, dtype="float64"),
    })
    result.attrs.update({"source": source, "every": str(step)})
    return result


def _pick_segments(known: list[str], segments: Iterable[str] | None) -> list[str]:
    if segments is None:
        return known
    names = [segments] if isinstance(segments, str) else list(segments)
    for n in names:
        if not isinstance(n, str) or n not in known:
            raise ParameterError("segments", n, known, message=f"Unknown segment {n!r};{did_you_mean(str(n), known)} "
                                 f"Known segments: {format_allowed(known)}")
    return list(dict.fromkeys(names))


# --------------------------------------------------------------------------------------------
# PSI
# --------------------------------------------------------------------------------------------


def _fmt_edge(v: float) -> str:
    return "inf" if v == math.inf else "-inf" if v == -math.inf else f"{v:.6g}"


def _psi_table(expected: Any, actual: Any, *, bins: int | None, strategy: str | None, categorical: bool | None,
               epsilon: float) -> dict[str, Any]:
    """Bins, counts, shares and contributions as arrays (shared by :func:`psi` and :func:`psi_bins`)."""
    e = _as_series(expected, "expected")
    a = _as_series(actual, "actual")
    if len(e) == 0 or len(a) == 0:
        raise ParameterError("expected" if len(e) == 0 else "actual", [], message="PSI needs at least one value in "
                             "each sample")
    eps = _number(epsilon, "epsilon", low=0.0, high=1.0, high_open=True)
    inferred = _is_categorical(e) or _is_categorical(a)
    if categorical is None:
        cat = inferred
    elif not isinstance(categorical, (bool, np.bool_)):
        raise ParameterError("categorical", categorical, [True, False, None])
    else:
        cat = bool(categorical)
        if not cat and inferred:
            bad = e if _is_categorical(e) else a
            raise ParameterError("categorical", categorical, message=f"categorical=False but the values are not "
                                 f"numeric ({bad.dtype}); PSI bins text and booleans by category")
    e_miss, a_miss = e.isna().to_numpy(), a.isna().to_numpy()
    if cat:
        if bins is not None or strategy is not None:
            raise ParameterError("bins" if bins is not None else "strategy", bins if bins is not None else strategy,
                                 message="bins and strategy apply to numeric features; a categorical feature has one "
                                 "bin per category")
        ec = e[~e_miss].astype(str).value_counts()
        ac = a[~a_miss].astype(str).value_counts()
        labels = sorted(set(ec.index) | set(ac.index))
        en = [int(ec.get(label, 0)) for label in labels]
        an = [int(ac.get(label, 0)) for label in labels]
        lower = upper = [math.nan] * len(labels)
    else:
        n_bins = DEFAULT_BINS if bins is None else _count(bins, "bins", low=2)
        how = "quantile" if strategy is None else strategy
        if how not in STRATEGIES:
            raise ParameterError("strategy", how, list(STRATEGIES))
        ev = e[~e_miss].astype("float64").to_numpy()
        av = a[~a_miss].astype("float64").to_numpy()
        finite = ev[np.isfinite(ev)]
        if finite.size == 0:
            raise ParameterError("expected", None, message="The reference sample has no finite value to cut bins on")
        if how == "quantile":
            cuts = np.quantile(finite, np.arange(1, n_bins) / n_bins)
        else:
            cuts = np.linspace(finite.min(), finite.max(), n_bins + 1)[1:-1]
        cuts = np.unique(cuts)
        if cuts.size == 0 or (how == "uniform" and finite.min() == finite.max()):
            cuts = np.array([finite.min()])
        edges = np.concatenate([[-math.inf], cuts, [math.inf]])
        en = np.bincount(np.searchsorted(cuts, ev, side="left"), minlength=len(edges) - 1).tolist()
        an = np.bincount(np.searchsorted(cuts, av, side="left"), minlength=len(edges) - 1).tolist()
        lower, upper = edges[:-1].tolist(), edges[1:].tolist()
        labels = [f"({_fmt_edge(lo)}, {_fmt_edge(hi)}]" for lo, hi in zip(lower, upper)]
    if e_miss.any() or a_miss.any():
        labels = [*labels, MISSING_BIN]
        en, an = [*en, int(e_miss.sum())], [*an, int(a_miss.sum())]
        lower, upper = [*lower, math.nan], [*upper, math.nan]
    en_arr, an_arr = np.asarray(en, dtype="int64"), np.asarray(an, dtype="int64")
    es, as_ = en_arr / len(e), an_arr / len(a)
    es_safe, as_safe = np.where(es == 0, eps, es), np.where(as_ == 0, eps, as_)
    return {"labels": labels, "lower": lower, "upper": upper, "en": en_arr, "an": an_arr, "es": es, "as": as_,
            "contribution": (as_safe - es_safe) * np.log(as_safe / es_safe), "categorical": cat, "epsilon": eps}


def psi_bins(
    expected: Any,
    actual: Any,
    *,
    bins: int | None = None,
    strategy: Strategy | None = None,
    categorical: bool | None = None,
    epsilon: float = DEFAULT_EPSILON,
) -> pd.DataFrame:
    """The bins behind :func:`psi`: counts, shares and each bin's contribution.

    Parameters
    ----------
    expected : Series, array or list
        The feature in the reference period; numeric bins are cut on it.
    actual : Series, array or list
        The feature in the current period.
    bins : int, optional
        Number of bins for a numeric feature (default 10); at least 2. Not allowed for a
        categorical feature.
    strategy : {"quantile", "uniform"}, optional
        How numeric bins are cut (default ``"quantile"``): at the reference's quantiles
        ``1/bins, 2/bins, ...`` (linear interpolation, repeated cuts merged) or at equal widths
        between its min and max. Not allowed for a categorical feature.
    categorical : bool, optional
        Treat the values as categories. Default: text, category and boolean data are
        categorical, numbers are not. ``True`` on numbers bins each distinct value (small codes);
        ``False`` on text is an error.
    epsilon : float, default=1e-4
        Replaces a share of 0 in the logarithm, so an empty bin adds a large but finite term.

    Returns
    -------
    DataFrame
        One row per bin: ``bin`` (label: ``"(-inf, 0.5]"``, a category, or ``"(missing)"``),
        ``lower``, ``upper`` (float edges, NaN for categories and missing), ``expected_n``,
        ``actual_n``, ``expected_share``, ``actual_share`` and ``contribution``
        (``(a - e) * ln(a / e)`` with zeros replaced by ``epsilon``). Numeric bins come in
        order, categories sorted by label, ``"(missing)"`` last and only when a sample has missing
        values. ``attrs["psi"]`` is the sum of the contributions.

    Raises
    ------
    ParameterError
        An empty sample, a bad ``bins``, ``strategy`` or ``epsilon``, bins or strategy for a
        categorical feature, ``categorical=False`` on non-numeric data, a reference with no
        non-missing value.

    Examples
    --------
    >>> t = psi_bins([1, 2, 3, 4], [1, 1, 3, 4], bins=2)
    >>> t[["bin", "expected_n", "actual_n"]].values.tolist()
    [['(-inf, 2.5]', 2, 2], ['(2.5, inf]', 2, 2]]
    >>> t = psi_bins(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    >>> round(t.attrs["psi"], 4)
    0.2747
    """
    t = _psi_table(expected, actual, bins=bins, strategy=strategy, categorical=categorical, epsilon=epsilon)
    out = pd.DataFrame({
        "bin": pd.array(t["labels"], dtype="string"),
        "lower": np.asarray(t["lower"], dtype="float64"),
        "upper": np.asarray(t["upper"], dtype="float64"),
        "expected_n": t["en"],
        "actual_n": t["an"],
        "expected_share": t["es"],
        "actual_share": t["as"],
        "contribution": t["contribution"],
    })
    out.attrs.update({"psi": float(t["contribution"].sum()), "categorical": t["categorical"], "epsilon": t["epsilon"]})
    return out


def psi(
    expected: Any,
    actual: Any,
    *,
    bins: int | None = None,
    strategy: Strategy | None = None,
    categorical: bool | None = None,
    epsilon: float = DEFAULT_EPSILON,
) -> float:
    """Population stability index of one feature between a reference and a current sample.

    See the module docstring for the formula, the binning and how to read it;
    :func:`psi_bins` shows each bin's contribution.

    Parameters
    ----------
    expected : Series, array or list
        The feature in the reference period; numeric bins are cut on it.
    actual : Series, array or list
        The feature in the current period.
    bins : int, optional
        Bins of a numeric feature (default 10, at least 2); not for categorical features.
    strategy : {"quantile", "uniform"}, optional
        Cut points of a numeric feature (default ``"quantile"``); not for categorical features.
    categorical : bool, optional
        One bin per value; default for text, category and boolean data.
    epsilon : float, default=1e-4
        Replaces a share of 0 in the logarithm.

    Returns
    -------
    float
        PSI >= 0; 0 when the two samples fill the bins in the same shares.

    Raises
    ------
    ParameterError
        As :func:`psi_bins`.

    Examples
    --------
    >>> round(psi([1, 2, 3, 4], [1, 2, 3, 4], bins=2), 6)
    0.0
    >>> round(psi(["a", "a", "b", "b"], ["a", "b", "b", "b"]), 4)
    0.2747
    """
    t = _psi_table(expected, actual, bins=bins, strategy=strategy, categorical=categorical, epsilon=epsilon)
    return float(t["contribution"].sum())


def _check_thresholds(warn: Any, alert: Any, names: tuple[str, str] = ("warn", "alert")) -> tuple[float, float]:
    w = _number(warn, names[0], low=0.0)
    a = _number(alert, names[1], low=0.0)
    if not w < a:
        raise ParameterError(names[1], alert, message=f"{names[1]} ({alert!r}) must be greater than {names[0]} "
                             f"({warn!r})")
    return w, a


def feature_drift(
    reference_features: pd.DataFrame,
    current_features: pd.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    bins: int | None = None,
    strategy: Strategy | None = None,
    epsilon: float = DEFAULT_EPSILON,
    warn: float = 0.1,
    alert: float = 0.25,
    user_col: str = "user_id",
) -> pd.DataFrame:
    """PSI of every feature between two feature tables, with a status from the thresholds.

    Parameters
    ----------
    reference_features, current_features : DataFrame
        Feature tables of the reference and the current period
        (:func:`segkit.features.build_user_features` with two ``as_of``), one row per user.
    columns : list of str, optional
        Features to compare. Default: every column of the reference except ``user_col`` and
        date/time columns (``first_seen``, ``last_seen`` move with the calendar by construction;
        compare ``recency_days`` instead). Every one must be in both tables.
    bins, strategy, epsilon
        Binning of numeric features, see :func:`psi_bins`; categorical features (text, category,
        boolean) get one bin per category.
    warn, alert : float, default=0.1, 0.25
        ``status`` is ``"ok"`` below ``warn``, ``"warn"`` from ``warn``, ``"alert"`` from ``alert``.

    Returns
    -------
    DataFrame
        One row per feature, most drifted first (ties in column order): ``feature``, ``kind``
        (``numeric`` / ``categorical``), ``psi``, ``status``, ``n_reference``, ``n_current``,
        ``missing_reference``, ``missing_current`` (shares of missing values), ``mean_reference``,
        ``mean_current`` (NaN for categorical features). ``attrs`` holds ``warn`` and ``alert``.

    Raises
    ------
    SchemaError
        A feature is missing from one table.
    ParameterError
        Not DataFrames, no columns, a date/time column asked for, thresholds not ``0 < warn <
        alert``, bad binning parameters.

    Examples
    --------
    >>> ref = pd.DataFrame({"user_id": list("abcd"), "pages": [1, 2, 3, 4], "vip": [True, False, False, False]})
    >>> cur = pd.DataFrame({"user_id": list("efgh"), "pages": [3, 4, 5, 6], "vip": [True, False, False, False]})
    >>> d = feature_drift(ref, cur, bins=2)
    >>> d[["feature", "status"]].values.tolist(), round(float(d["psi"].iloc[0]), 3)
    ([['pages', 'alert'], ['vip', 'ok']], 4.604)
    """
    for name, frame in (("reference_features", reference_features), ("current_features", current_features)):
        if not isinstance(frame, pd.DataFrame):
            raise ParameterError(name, type(frame).__name__, message=f"{name} must be a pandas DataFrame, got "
                                 f"{type(frame).__name__}")
    w, a = _check_thresholds(warn, alert)
    if columns is None:
        cols = [c for c in reference_features.columns if c != user_col
                and not pd.api.types.is_datetime64_any_dtype(reference_features[c])
                and not pd.api.types.is_timedelta64_dtype(reference_features[c])]
    else:
        cols = [columns] if isinstance(columns, str) else list(columns)
        check_columns(reference_features.columns, cols, what="reference feature table")
        for c in cols:
            if pd.api.types.is_datetime64_any_dtype(reference_features[c]):
                raise ParameterError("columns", c, message=f"Column {c!r} holds dates; a date moves with the calendar, "
                                     "so its PSI between two periods is large by construction (compare a duration "
                                     "such as recency_days instead)")
    if not cols:
        raise ParameterError("columns", cols, message="No feature to compare; pass columns=[...]")
    check_columns(current_features.columns, cols, what="current feature table")
    rows = []
    for c in cols:
        r, k = reference_features[c], current_features[c]
        cat = _is_categorical(r) or _is_categorical(k)
        value = psi(r, k, bins=None if cat else bins, strategy=None if cat else strategy, categorical=cat,
                    epsilon=epsilon)
        status = "alert" if value >= a else "warn" if value >= w else "ok"
        rows.append({"feature": c, "kind": "categorical" if cat else "numeric", "psi": value, "status": status,
                     "n_reference": len(r), "n_current": len(k),
                     "missing_reference": float(r.isna().mean()) if len(r) else np.nan,
                     "missing_current": float(k.isna().mean()) if len(k) else np.nan,
                     "mean_reference": np.nan if cat else float(r.astype("float64").mean()),
                     "mean_current": np.nan if cat else float(k.astype("float64").mean())})
    out = pd.DataFrame(rows)
    out = out.sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)
    out = out.astype({"feature": "string", "kind": "string", "psi": "float64", "status": "string",
                      "n_reference": "int64", "n_current": "int64"})
    out.attrs.update({"warn": w, "alert": a})
    return out


def membership_churn(previous: pd.DataFrame, current: pd.DataFrame, *, segments: Iterable[str] | None = None,
                     user_col: str = "user_id") -> pd.DataFrame:
    """How much each segment's membership changed between two runs (Jaccard index and churn).

    Parameters
    ----------
    previous, current : DataFrame
        Membership tables of two runs.
    segments : list of str, optional
        Segments to compare; default all of both runs (current order first).
    user_col : str, default="user_id"
        User column of both tables.

    Returns
    -------
    DataFrame
        :func:`segkit.activation.diff_summary` (``segment``, ``n_previous``, ``n_current``,
        ``entered``, ``left``, ``stayed``, ``jaccard``, ``definition_changed``) plus ``churn``
        (``1 - jaccard``: the share of the union that is not in both runs).

    Examples
    --------
    >>> prev = pd.DataFrame({"user_id": ["a", "b", "c"], "segment": ["x", "x", "x"]})
    >>> cur = pd.DataFrame({"user_id": ["b", "c", "d"], "segment": ["x", "x", "x"]})
    >>> membership_churn(prev, cur)[["segment", "jaccard", "churn"]].round(2).values.tolist()
    [['x', 0.5, 0.5]]
    """
    out = diff_summary(membership_diff(previous, current, segments=segments, user_col=user_col))
    out["churn"] = 1.0 - out["jaccard"]
    return out


# --------------------------------------------------------------------------------------------
# Alerts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """One finding of a monitoring or pitfall check.

    Attributes
    ----------
    level : {"alert", "warn"}
        ``alert``: act before using the segments; ``warn``: look at it.
    check : str
        Which check fired: ``feature_drift``, ``membership_churn``, ``size_change``,
        ``small_segment``, ``overlapping_segments``, ``label_leak``, ``stale_data``.
    subject : str
        What it is about (a feature, a segment, ``"a & b"``, ``"events"``).
    value : float
        The measured number (PSI, Jaccard, relative change, members, AUC, age in seconds).
    threshold : float
        The threshold it crossed, in the same unit.
    message : str
        One sentence with the numbers, for the report.
    """

    level: Level
    check: str
    subject: str
    value: float
    threshold: float
    message: str

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ParameterError("level", self.level, list(LEVELS))


def _severity(alerts: Iterable[Alert]) -> list[Alert]:
    items = list(alerts)
    for a in items:
        if not isinstance(a, Alert):
            raise ParameterError("alerts", type(a).__name__, message=f"alerts must be Alert objects, got "
                                 f"{type(a).__name__}")
    return sorted(items, key=lambda a: LEVELS.index(a.level))


def _pct(v: float) -> str:
    return "+inf %" if v == math.inf else f"{v:+.1%}"


def check_alerts(
    *,
    drift: pd.DataFrame | None = None,
    churn: pd.DataFrame | None = None,
    sizes: pd.DataFrame | None = None,
    psi_warn: float | None = None,
    psi_alert: float | None = None,
    min_jaccard: float = 0.5,
    max_size_change: float = 0.5,
) -> list[Alert]:
    """Alerts from the monitoring tables, with thresholds from the parameters.

    Parameters
    ----------
    drift : DataFrame, optional
        :func:`feature_drift`: a ``warn`` for each feature with PSI >= ``psi_warn``, an
        ``alert`` from ``psi_alert``.
    churn : DataFrame, optional
        :func:`membership_churn`: a ``warn`` for each segment whose Jaccard index between the
        runs is below ``min_jaccard`` (segments empty in both runs are skipped).
    sizes : DataFrame, optional
        :func:`segment_sizes_over_time`: a ``warn`` for each segment whose size at the last
        point differs from the point before by ``max_size_change`` or more (relative; growth from
        0 counts as infinite).
    psi_warn, psi_alert : float, optional
        PSI thresholds. Default: those ``drift`` was computed with (``attrs``), else 0.1 and
        0.25. Values that contradict the table's are an error (its ``status`` would disagree).
    min_jaccard : float, default=0.5
        In (0, 1].
    max_size_change : float, default=0.5
        Relative change, > 0 (0.5: a segment that grew or shrank by half).

    Returns
    -------
    list of Alert
        Drift alerts (most drifted first), then churn, then size alerts.

    Raises
    ------
    ParameterError
        No table, thresholds out of range or contradicting ``drift.attrs``.
    SchemaError
        A table misses a column.

    Examples
    --------
    >>> prev = pd.DataFrame({"user_id": ["a", "b", "c"], "segment": ["x", "x", "x"]})
    >>> cur = pd.DataFrame({"user_id": ["c", "d"], "segment": ["x", "x"]})
    >>> [a.message for a in check_alerts(churn=membership_churn(prev, cur))]
    ["Segment 'x' kept 1 of 4 users between runs: Jaccard 0.25 < 0.5 (entered 1, left 2)"]
    """
    if drift is None and churn is None and sizes is None:
        raise ParameterError("drift", None, message="check_alerts needs at least one of drift=, churn=, sizes=")
    out: list[Alert] = []
    if drift is not None:
        check_columns(drift.columns, ["feature", "psi"], what="drift table")
        given = {"warn": psi_warn, "alert": psi_alert}
        used = {}
        for key, default in (("warn", 0.1), ("alert", 0.25)):
            recorded = drift.attrs.get(key)
            if given[key] is not None and recorded is not None and not math.isclose(float(given[key]), float(recorded)):
                raise ParameterError(f"psi_{key}", given[key], message=f"psi_{key}={given[key]!r} but the drift table "
                                     f"was computed with {key}={recorded!r}; pass the same thresholds to feature_drift "
                                     "and check_alerts")
            used[key] = given[key] if given[key] is not None else recorded if recorded is not None else default
        w, a = _check_thresholds(used["warn"], used["alert"], ("psi_warn", "psi_alert"))
        for _, row in drift.sort_values("psi", ascending=False, kind="stable").iterrows():
            v = float(row["psi"])
            if v >= w:
                level, thr = ("alert", a) if v >= a else ("warn", w)
                shift = "major" if level == "alert" else "moderate"
                out.append(Alert(level, "feature_drift", str(row["feature"]), v, thr,
                                 f"Feature {str(row['feature'])!r} drifted: PSI {v:.3f} >= {thr:g} ({shift} shift "
                                 "between the reference and the current period)"))
    if churn is not None:
        mj = _number(min_jaccard, "min_jaccard", low=0.0, high=1.0)
        check_columns(churn.columns, ["segment", "jaccard", "entered", "left", "stayed"], what="churn table")
        for _, row in churn.iterrows():
            j = row["jaccard"]
            if pd.isna(j) or float(j) >= mj:
                continue
            union = int(row["entered"]) + int(row["left"]) + int(row["stayed"])
            flag = row["definition_changed"] if "definition_changed" in churn.columns else None
            note = "; its definition changed" if flag is not None and not pd.isna(flag) and bool(flag) else ""
            out.append(Alert("warn", "membership_churn", str(row["segment"]), float(j), mj,
                             f"Segment {str(row['segment'])!r} kept {int(row['stayed']):,} of {union:,} users between "
                             f"runs: Jaccard {float(j):.2f} < {mj:g} (entered {int(row['entered']):,}, left "
                             f"{int(row['left']):,}){note}"))
    if sizes is not None:
        mc = _number(max_size_change, "max_size_change", low=0.0)
        check_columns(sizes.columns, ["as_of", "segment", "n_users"], what="sizes table")
        points = sorted(pd.unique(sizes["as_of"]))
        if len(points) >= 2:
            t0, t1 = points[-2], points[-1]
            before = sizes[sizes["as_of"] == t0].set_index(sizes.loc[sizes["as_of"] == t0, "segment"].astype(str))
            after = sizes[sizes["as_of"] == t1].set_index(sizes.loc[sizes["as_of"] == t1, "segment"].astype(str))
            for seg in after.index:
                if seg not in before.index:
                    continue
                n0, n1 = int(before.loc[seg, "n_users"]), int(after.loc[seg, "n_users"])
                if n0 == n1:
                    continue
                rel = math.inf if n0 == 0 else (n1 - n0) / n0
                if abs(rel) >= mc:
                    out.append(Alert("warn", "size_change", seg, rel, mc,
                                     f"Segment {seg!r} went from {n0:,} to {n1:,} users ({_pct(rel)}) between "
                                     f"{pd.Timestamp(t0):%Y-%m-%d} and {pd.Timestamp(t1):%Y-%m-%d}; threshold "
                                     f"+/-{mc:.0%}"))
    return out


def _auc(x: np.ndarray, y: np.ndarray) -> float:
    """ROC-AUC of score x for binary y (Mann-Whitney, ties count one half)."""
    from scipy.stats import rankdata

    ranks = rankdata(x)
    n1 = int(y.sum())
    n0 = len(y) - n1
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _binary_label(label: Any, features: pd.DataFrame, user_col: str) -> tuple[np.ndarray, pd.DataFrame, str | None]:
    if isinstance(label, str):
        check_columns(features.columns, [label], what="feature table")
        y = features[label]
        F = features
        name: str | None = label
    elif isinstance(label, pd.Series):
        check_columns(features.columns, [user_col], what="feature table")
        lab = label.copy()
        lab.index = lab.index.astype(str)
        if lab.index.duplicated().any():
            raise ParameterError("label", "Series", message="label must have one value per user (its index repeats "
                                 "user ids)")
        keys = features[user_col].astype(str)
        F = features[keys.isin(lab.index).to_numpy()]
        if F.empty:
            raise ParameterError("label", "Series", message=f"No user of the feature table is in the label's index; "
                                 f"index the label by {user_col}")
        y = lab.reindex(F[user_col].astype(str).to_numpy())
        y.index = F.index
        name = None
    else:
        raise ParameterError("label", type(label).__name__, message="label must be a column name of features or a "
                             "Series indexed by user id")
    keep = y.notna().to_numpy()
    values = pd.unique(y[keep])
    if len(values) != 2:
        raise ParameterError("label", sorted(map(str, values))[:5], message=f"label must be binary with both classes "
                             f"present; it has {len(values)} distinct value(s): {format_allowed(sorted(map(str, values)))}")
    if pd.api.types.is_bool_dtype(y.dtype) or set(values) <= {0, 1, True, False}:
        positive = y[keep].astype(bool).to_numpy()
    else:
        top = sorted(map(str, values))[-1]
        positive = (y[keep].astype(str) == top).to_numpy()
    return positive, F[keep], name


def pitfall_checks(
    membership: pd.DataFrame,
    features: pd.DataFrame | None = None,
    label: str | pd.Series | None = None,
    *,
    min_size: int = 50,
    max_overlap: float = 0.8,
    leak_auc: float = 0.95,
    last_event: str | pd.Timestamp | None = None,
    now: str | pd.Timestamp | None = None,
    max_staleness: str | pd.Timedelta = "2d",
    segments: Iterable[str] | None = None,
    user_col: str = "user_id",
) -> list[Alert]:
    """Warnings for the pitfalls of deep behavioral segmentation, each with its numbers.

    Parameters
    ----------
    membership : DataFrame
        Membership table; segments come from ``attrs["segments"]`` (empty ones included) and the
        rows.
    features : DataFrame, optional
        Feature table, one row per user, for the leak check (with ``label``).
    label : str or Series, optional
        The target a model or an evaluation uses: a column of ``features`` or a Series indexed by
        user id, binary (bool, 0/1 or two values; the greater label is positive). Only with
        ``features``.
    min_size : int, default=50
        ``small_segment`` for a segment with fewer members (an empty segment included): too few to
        act on or to test (see :func:`segkit.experiments.sample_size`).
    max_overlap : float, default=0.8
        ``overlapping_segments`` for a pair whose Jaccard index exceeds it: nearly the same users
        under two names, and a personalization that cannot tell them apart.
    leak_auc : float, default=0.95
        ``label_leak`` for a numeric or boolean feature whose single-feature ROC-AUC against the
        label exceeds it. The AUC is folded (``max(auc, 1 - auc)``), so a feature that predicts
        the label inverted counts too; users with a missing feature value are left out of that
        feature's AUC. Such a feature usually encodes the outcome (purchases vs "converted").
    last_event : str or Timestamp, optional
        Time of the latest event in the data; with it, ``stale_data`` when it is more than
        ``max_staleness`` before ``now``.
    now : str or Timestamp, optional
        Reference time of the staleness check (naive values are UTC); default the current time.
        Only with ``last_event``.
    max_staleness : str or Timedelta, default="2d"
        Allowed age of the data, a duration with units.
    segments : list of str, optional
        Segments to check; default all.
    user_col : str, default="user_id"
        User column of the membership and feature tables.

    Returns
    -------
    list of Alert
        All ``warn`` level: small segments (definition order), overlapping pairs (by Jaccard,
        highest first), leaking features (by AUC, highest first), stale data. ``value`` is the
        member count, Jaccard index, AUC or the data's age in seconds.

    Raises
    ------
    ParameterError
        ``label`` without ``features`` (or the reverse), ``now`` without ``last_event``, a label
        that is not binary, thresholds out of range, a bare-number ``max_staleness``.
    SchemaError
        Missing columns or null users / segments.

    Examples
    --------
    >>> m = pd.DataFrame({"user_id": ["a", "b", "c"], "segment": ["x", "x", "y"]})
    >>> for a in pitfall_checks(m, min_size=2, last_event="2024-01-01", now="2024-01-10"):
    ...     print(a.check, a.subject, a.value)
    small_segment y 1.0
    stale_data events 777600.0
    """
    _check_membership(membership, user_col=user_col)
    ms = _count(min_size, "min_size", low=1)
    mo = _number(max_overlap, "max_overlap", low=0.0, high=1.0)
    la = _number(leak_auc, "leak_auc", low=0.5, high=1.0)
    if (features is None) != (label is None):
        raise ParameterError("label" if label is None else "features", None, message="The leak check needs both "
                             "features= and label= (the target column or a Series indexed by user id)")
    if now is not None and last_event is None:
        raise ParameterError("now", now, message="now= is the reference of the staleness check, which needs "
                             "last_event= (the time of the latest event)")
    staleness = parse_duration(max_staleness, name="max_staleness")
    names = _pick_segments(_known_segments(membership), segments)
    out: list[Alert] = []

    users = membership[user_col].astype(str).to_numpy(dtype=object)
    seg = membership["segment"].astype(str).to_numpy(dtype=object)
    for n in names:
        size = len(set(users[seg == n]))
        if size < ms:
            what = "is empty" if size == 0 else f"has {size:,} member{'s' if size != 1 else ''}"
            out.append(Alert("warn", "small_segment", n, float(size), float(ms),
                             f"Segment {n!r} {what} (< {ms:,}): too few to personalize for or to test reliably"))

    if len(names) > 1:
        ov = segment_overlaps(membership, segments=names, user_col=user_col)
        rank = {n: i for i, n in enumerate(names)}
        pairs = ov[(ov["segment_a"].astype(str).map(rank) < ov["segment_b"].astype(str).map(rank))
                   & (ov["jaccard"] > mo)].sort_values("jaccard", ascending=False, kind="stable")
        for _, r in pairs.iterrows():
            a_, b_ = str(r["segment_a"]), str(r["segment_b"])
            out.append(Alert("warn", "overlapping_segments", f"{a_} & {b_}", float(r["jaccard"]), mo,
                             f"Segments {a_!r} and {b_!r} overlap heavily: Jaccard {float(r['jaccard']):.2f} > {mo:g} "
                             f"({int(r['n_both']):,} users in both; {int(r['n_a']):,} and {int(r['n_b']):,} members)"))

    if features is not None:
        if not isinstance(features, pd.DataFrame):
            raise ParameterError("features", type(features).__name__, message="features must be a pandas DataFrame")
        positive, F, label_name = _binary_label(label, features, user_col)
        leaks = []
        for c in F.columns:
            if c in (user_col, label_name):
                continue
            col = F[c]
            if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
                continue
            x = col.astype("float64").to_numpy()
            ok = ~np.isnan(x)
            y = positive[ok]
            if ok.sum() < 2 or y.all() or not y.any():
                continue
            auc = _auc(x[ok], y)
            folded = max(auc, 1.0 - auc)
            if folded > la:
                leaks.append((folded, str(c), auc, int(ok.sum())))
        for folded, c, auc, n in sorted(leaks, key=lambda t: -t[0]):
            direction = "" if auc >= 0.5 else " (inverted)"
            out.append(Alert("warn", "label_leak", c, folded, la,
                             f"Feature {c!r} alone predicts the label with ROC-AUC {folded:.3f}{direction} > {la:g} "
                             f"on {n:,} users: it probably encodes the outcome; drop it from models and definitions "
                             "evaluated against this label"))

    if last_event is not None:
        last = _utc_literal(last_event, "last_event")
        ref = pd.Timestamp.now(tz="UTC") if now is None else _utc_literal(now, "now")
        age = ref - last
        if age > staleness:
            out.append(Alert("warn", "stale_data", "events", float(age.total_seconds()),
                             float(staleness.total_seconds()),
                             f"The latest event ({last:%Y-%m-%d %H:%M} UTC) is {_fmt_age(age)} old at "
                             f"{ref:%Y-%m-%d %H:%M} UTC (> {_fmt_age(staleness)}): segments describe past behavior"))
    return out


def _fmt_age(td: pd.Timedelta) -> str:
    s = int(td.total_seconds())
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m = rem // 60
    parts = [f"{d}d"] if d else []
    if h:
        parts.append(f"{h}h")
    if m and not d:
        parts.append(f"{m}m")
    return " ".join(parts) or f"{s}s"


def alerts_frame(alerts: Iterable[Alert]) -> pd.DataFrame:
    """The alerts as a table, alerts before warnings (otherwise in the given order).

    Parameters
    ----------
    alerts : iterable of Alert

    Returns
    -------
    DataFrame
        ``level``, ``check``, ``subject`` (string), ``value``, ``threshold`` (float64) and
        ``message`` (string); no rows when there are no alerts.

    Examples
    --------
    >>> a = [Alert("warn", "small_segment", "x", 3.0, 50.0, "x is small"),
    ...      Alert("alert", "feature_drift", "pages", 0.4, 0.25, "pages drifted")]
    >>> alerts_frame(a)["subject"].tolist()
    ['pages', 'x']
    """
    items = _severity(alerts)
    cols = ["level", "check", "subject", "value", "threshold", "message"]
    out = pd.DataFrame([{c: getattr(a, c) for c in cols} for a in items], columns=cols)
    return out.astype({"level": "string", "check": "string", "subject": "string", "value": "float64",
                       "threshold": "float64", "message": "string"})


def alerts_html(alerts: Iterable[Alert], *, title: str | None = None) -> str:
    """A small self-contained HTML block of the alerts, coloured by level, for the report.

    Inline styles only (no stylesheet or script), every text HTML-escaped. Alerts come first
    (red), then warnings (amber); with no alerts a green "no alerts" line says the checks passed.
    Show it in a notebook with ``IPython.display.HTML(alerts_html(alerts))``.

    Parameters
    ----------
    alerts : iterable of Alert
    title : str, optional
        Heading above the list.

    Returns
    -------
    str

    Examples
    --------
    >>> print(alerts_html([]))
    <div class="segkit-alerts" style="font-family:sans-serif;font-size:13px;margin:6px 0"><div style="border-left:4px solid #1b5e20;background:#e8f5e9;color:#1b5e20;padding:6px 10px;margin:3px 0">No alerts: every check passed.</div></div>
    >>> "&lt;b&gt;" in alerts_html([Alert("warn", "small_segment", "<b>", 1.0, 50.0, "<b> is small")])
    True
    """
    items = _severity(alerts)
    parts = ['<div class="segkit-alerts" style="font-family:sans-serif;font-size:13px;margin:6px 0">']
    if title is not None:
        parts.append(f'<div style="font-weight:bold;margin:4px 0">{html.escape(str(title))}</div>')
    if not items:
        parts.append('<div style="border-left:4px solid #1b5e20;background:#e8f5e9;color:#1b5e20;padding:6px 10px;'
                     'margin:3px 0">No alerts: every check passed.</div>')
    else:
        n_alert = sum(a.level == "alert" for a in items)
        n_warn = len(items) - n_alert
        counts = f"{n_alert} alert{'s' if n_alert != 1 else ''}, {n_warn} warning{'s' if n_warn != 1 else ''}"
        parts.append(f'<div style="margin:2px 0;color:#333">{counts}</div>')
        for a in items:
            fg, bg = _COLOURS[a.level]
            parts.append(f'<div style="border-left:4px solid {fg};background:{bg};padding:6px 10px;margin:3px 0">'
                         f'<strong style="color:{fg}">{html.escape(a.level.upper())}</strong> '
                         f'<span style="color:#555">{html.escape(a.check)} &middot; {html.escape(a.subject)}</span>'
                         f'<br>{html.escape(a.message)}</div>')
    parts.append("</div>")
    return "".join(parts)
