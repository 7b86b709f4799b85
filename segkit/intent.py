"""Intent models: who will purchase (or do another event) in the next N days.

The workflow of notebook 06, in four steps:

1. **Framing** (:func:`frame_intent`, :func:`time_split`, :func:`plot_framing`). One row per user
   with features from an *observation window* that ends at a *cutoff*, and a label saying whether
   the user did the *label event* in the *horizon* after the cutoff.
2. **Models** (:class:`IntentModel`). Logistic regression (imputed, optionally log-transformed,
   scaled) and a random forest, each tuned by ``GridSearchCV``; the best by cross-validated
   score is kept, then calibrated on out-of-fold scores so that its ``predict_proba`` reads as
   ``P(label event within the horizon)``.
3. **Evaluation** (:func:`evaluate_intent` → :class:`IntentReport`). ROC-AUC and PR-AUC with
   their curves, a confusion matrix at a chosen threshold, a calibration table, permutation
   importance and a lift / gains table by decile, plus plots of each.
4. **Export** (:func:`intent_segments`). Scores cut into ``intent_low`` / ``intent_medium`` /
   ``intent_high`` in the membership-table format of :func:`segkit.segments.evaluate_segments`.

Framing rules (no leakage)
--------------------------
For a cutoff ``c``, an observation length ``O`` and a horizon ``H`` (durations with units):

* the **observation window** is ``[c - O, c)``: features come only from events strictly before
  the cutoff, through :func:`segkit.features.build_user_features` with ``as_of=c`` (so
  ``recency_days`` and ``tenure_days`` are measured at the cutoff). An event at or after ``c``
  never changes a feature.
* the **label window** is ``[c, c + H)``: ``y = 1`` when the user has at least one
  ``label_event`` in it.
* the **population** is the users with at least one event in the observation window. Users who
  are not there are excluded and counted: *new* users (first event in the label window) and
  *lapsed* users (events only before the observation window), each with how many of them did the
  label event in the label window anyway (the model cannot score them).
* both windows must lie inside the log: ``c - O`` at or after the first event (otherwise the
  window is shorter than asked and features would not be comparable between cutoffs) and
  ``c + H`` at or before the last event (otherwise labels would be censored).
* CRM features are not available: a CRM snapshot is taken at export time and can describe what
  happened after the cutoff (lifetime value includes later orders).

The **time-based split** (:func:`time_split`) frames the training rows at a cutoff ``c1`` and
the test rows at a later cutoff ``c2`` with ``c1 + H <= c2``: every event the training rows use
(features *and* labels) is before ``c2``, so the test labels come from a period the model never
saw. Test features may cover the training label window, as they would in production. The same
user can appear in both parts (as they would, scored again later); the split reports how many.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = pd.DataFrame({"visits": rng.poisson(3, 200), "carts": rng.poisson(1, 200)})
>>> y = (X["carts"] + rng.normal(0, 0.5, 200) > 1.5).astype(int)
>>> m = IntentModel("logistic", param_grid={"C": [1.0]}).fit(X, y)
>>> report = evaluate_intent(m, X, y, n_repeats=0)
>>> bool(report.roc_auc > 0.8)
True
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import ibis
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from .engine import Data, as_table, to_pandas
from .errors import NotFittedError, ParameterError, SchemaError, SegkitError, check_columns, did_you_mean, format_allowed
from .features import FEATURES, build_user_features
from .params import parse_duration

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "IntentFrame",
    "IntentSplit",
    "frame_intent",
    "time_split",
    "plot_framing",
    "IntentModel",
    "IntentReport",
    "evaluate_intent",
    "choose_threshold",
    "lift_table",
    "calibration_table",
    "plot_roc_pr",
    "plot_confusion",
    "plot_calibration",
    "plot_importance",
    "plot_gains",
    "intent_segments",
    "intent_by_group",
    "load_online_shoppers",
    "DEFAULT_FEATURES",
    "DEFAULT_GRIDS",
    "INTENT_SEGMENTS",
]

#: User features never used by default: free text (high cardinality) and CRM snapshots (may
#: describe what happened after the cutoff).
_EXCLUDED = ("top_search_term",)
#: The user-level features a frame uses by default (every registered one except CRM and free text).
DEFAULT_FEATURES: tuple[str, ...] = tuple(
    f.name for f in FEATURES if f.level == "user" and f.stage != "crm" and f.name not in _EXCLUDED
)
#: Default segment names, lowest intent first.
INTENT_SEGMENTS: tuple[str, str, str] = ("intent_low", "intent_medium", "intent_high")
#: Default grids of :class:`IntentModel`, per candidate (estimator parameters).
DEFAULT_GRIDS: dict[str, dict[str, list[Any]]] = {
    "logistic": {"C": [0.01, 0.1, 1.0, 10.0]},
    "random_forest": {"n_estimators": [300], "max_depth": [None, 12], "min_samples_leaf": [1, 5]},
}
_MODELS = ("logistic", "random_forest")
_GRID_RESERVED = ("class_weight", "random_state", "n_jobs")
_KEY_COLUMNS = ("first_seen", "last_seen")


# --------------------------------------------------------------------------------------------
# Framing
# --------------------------------------------------------------------------------------------


def _utc(value: Any, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        ts = pd.NaT
    if ts is pd.NaT or pd.isna(ts):
        raise ParameterError(name, value, "a timestamp such as '2024-03-01' or '2024-03-01T12:00Z' (naive = UTC)")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _fmt_ts(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.strftime("%Y-%m-%d %H:%M:%S")


def _fmt_td(td: pd.Timedelta) -> str:
    secs = td.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs % size == 0:
            return f"{int(secs // size)}{unit}"
    return f"{secs:g}s"


@dataclass(frozen=True)
class IntentFrame:
    """Features and labels of one cutoff: one row per user seen in the observation window.

    Attributes
    ----------
    X : DataFrame
        User features (:data:`DEFAULT_FEATURES` or the requested ones), indexed by user id
        (index name ``user_col``), rows sorted by user. Label features (``primary_device``,
        ``primary_referrer``) stay text; :class:`IntentModel` one-hot encodes them.
    y : Series
        1 when the user did ``label_event`` in ``[cutoff, cutoff + horizon)``, else 0 (int8,
        same index as ``X``, named ``label``).
    cutoff : Timestamp
        End of the observation window and start of the label window (UTC).
    observation, horizon : Timedelta
        Lengths of the observation window and of the label window.
    label_event : str
        The event the label asks about.
    counts : dict of str to int
        ``n_users`` (rows), ``n_positive``, ``n_new`` / ``n_new_positive`` (users whose first
        event is in the label window, and of them those who did the label event), ``n_lapsed`` /
        ``n_lapsed_positive`` (users with events only before the observation window).
    first_event, last_event : Timestamp
        Time range of the whole event log (UTC).
    name : str
        ``"train"``, ``"test"`` or ``"frame"``.
    """

    X: pd.DataFrame
    y: pd.Series
    cutoff: pd.Timestamp
    observation: pd.Timedelta
    horizon: pd.Timedelta
    label_event: str
    counts: dict[str, int]
    first_event: pd.Timestamp
    last_event: pd.Timestamp
    name: str = "frame"

    @property
    def observation_start(self) -> pd.Timestamp:
        """Start of the observation window, ``cutoff - observation`` (inclusive)."""
        return self.cutoff - self.observation

    @property
    def label_end(self) -> pd.Timestamp:
        """End of the label window, ``cutoff + horizon`` (exclusive)."""
        return self.cutoff + self.horizon

    @property
    def user_ids(self) -> pd.Index:
        """The users of the rows, in row order."""
        return self.X.index

    @property
    def label(self) -> str:
        """The label in words, e.g. ``"P(purchase in 7d)"``."""
        return f"P({self.label_event} in {_fmt_td(self.horizon)})"

    def summary(self) -> pd.DataFrame:
        """One row: the windows and the user counts of this frame.

        Examples
        --------
        >>> ev = pd.DataFrame({"user_id": ["a", "a", "b", "b"], "session_id": ["a-0", "a-1", "b-0", "b-1"],
        ...                    "event": ["page_view", "purchase", "page_view", "page_view"],
        ...                    "timestamp": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-01-02",
        ...                                                 "2024-01-06"], utc=True)})
        >>> fr = frame_intent(ev, cutoff="2024-01-03", observation="2d", horizon="3d", features=["n_sessions"])
        >>> fr.summary()[["part", "users", "positive", "excluded_new"]].values.tolist()
        [['frame', 2, 1, 0]]
        """
        c = self.counts
        return pd.DataFrame([{
            "part": self.name,
            "observation_start": self.observation_start,
            "cutoff": self.cutoff,
            "label_end": self.label_end,
            "users": c["n_users"],
            "positive": c["n_positive"],
            "positive_rate": c["n_positive"] / c["n_users"] if c["n_users"] else math.nan,
            "excluded_new": c["n_new"],
            "excluded_new_positive": c["n_new_positive"],
            "excluded_lapsed": c["n_lapsed"],
            "excluded_lapsed_positive": c["n_lapsed_positive"],
        }])


@dataclass(frozen=True)
class IntentSplit:
    """A time-based train / test split: two :class:`IntentFrame` at increasing cutoffs.

    Attributes
    ----------
    train, test : IntentFrame
        Frames at the training and the test cutoff (``train.label_end <= test.cutoff``).
    """

    train: IntentFrame
    test: IntentFrame

    @property
    def n_users_in_both(self) -> int:
        """Users that are rows of both frames (scored at both cutoffs)."""
        return int(self.train.X.index.isin(self.test.X.index).sum())

    def summary(self) -> pd.DataFrame:
        """Two rows (train, test): windows and user counts (see :meth:`IntentFrame.summary`)."""
        out = pd.concat([self.train.summary(), self.test.summary()], ignore_index=True)
        out["in_both"] = self.n_users_in_both
        return out


def _feature_names(features: Sequence[str] | None) -> list[str]:
    if features is None:
        return list(DEFAULT_FEATURES)
    if isinstance(features, str) or not isinstance(features, Iterable):
        raise ParameterError("features", features, "a list of user-level feature names")
    names = list(features)
    if not names:
        raise ParameterError("features", names, "a non-empty list of user-level feature names")
    pool = {f.name: f for f in FEATURES if f.level == "user"}
    for name in names:
        if name in pool and pool[name].stage == "crm":
            raise ParameterError("features", name, message=f"Feature {name!r} comes from a CRM snapshot, which can "
                                 "describe what happened after the cutoff; intent frames use event features only")
        if name not in pool:
            raise ParameterError("features", name, message=f"Unknown user-level feature {name!r};"
                                 f"{did_you_mean(name, DEFAULT_FEATURES)} allowed: {format_allowed(list(DEFAULT_FEATURES))} "
                                 "(see segkit.features.feature_registry('user'))")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ParameterError("features", dup, message=f"Feature {dup!r} is listed twice")
    return names


@dataclass(frozen=True)
class _Log:
    """What framing needs to know about the whole log, from one scan."""

    t: ibis.Table
    events: dict[str, int]
    first: pd.Timestamp
    last: pd.Timestamp


def _scan_log(events: Data, *, user_col: str, session_col: str, timestamp_col: str, event_col: str) -> _Log:
    for name, value in (("user_col", user_col), ("session_col", session_col), ("timestamp_col", timestamp_col),
                        ("event_col", event_col)):
        if not isinstance(value, str) or not value:
            raise ParameterError(name, value, "a column name")
    t = as_table(events)
    check_columns(t.columns, [user_col, timestamp_col, event_col], what="event log")
    if session_col not in t.columns:
        raise SchemaError([{"column": session_col, "check": "missing_column", "count": None, "examples": None,
                            "message": f"Column {session_col!r} not found in event log;"
                            f"{did_you_mean(session_col, t.columns)} label sessions with segkit.split_sessions first. "
                            f"Available: {format_allowed(list(t.columns))}"}],
                          title="event log is missing required columns")
    if not t[timestamp_col].type().is_timestamp():
        raise SchemaError([{"column": timestamp_col, "check": "dtype", "count": None, "examples": None,
                            "message": f"Column {timestamp_col!r} must hold timestamps, got {t[timestamp_col].type()}; "
                            "parse it with segkit.parse_timestamps"}])
    g = to_pandas(t.group_by(t[event_col].name("_ev")).aggregate(
        _n=lambda x: x.count(), _first=t[timestamp_col].min(), _last=t[timestamp_col].max()))
    if not len(g):
        raise SegkitError("The event log is empty: no rows to frame")
    first = pd.Timestamp(g["_first"].min())
    last = pd.Timestamp(g["_last"].max())
    first = first.tz_localize("UTC") if first.tzinfo is None else first.tz_convert("UTC")
    last = last.tz_localize("UTC") if last.tzinfo is None else last.tz_convert("UTC")
    counts = {str(e): int(n) for e, n in zip(g["_ev"], g["_n"]) if pd.notna(e)}
    return _Log(t, counts, first, last)


def _check_label_event(label_event: Any, log: _Log) -> str:
    if not isinstance(label_event, str) or not label_event:
        raise ParameterError("label_event", label_event, "an event name such as 'purchase'")
    if label_event not in log.events:
        present = sorted(log.events, key=lambda e: (-log.events[e], e))
        raise ParameterError(
            "label_event", label_event, present,
            message=f"Label event {label_event!r} never occurs in the event log;{did_you_mean(label_event, present)} "
            f"events present (most frequent first): {format_allowed(present)}",
        )
    return label_event


def _check_windows(cutoff: pd.Timestamp, obs: pd.Timedelta, hor: pd.Timedelta, log: _Log, name: str = "cutoff") -> None:
    start, end = cutoff - obs, cutoff + hor
    span = f"the log runs from {_fmt_ts(log.first)} to {_fmt_ts(log.last)}"
    if cutoff <= log.first or cutoff >= log.last:
        raise ParameterError(name, str(cutoff), message=f"Parameter {name!r} got {_fmt_ts(cutoff)!r}, outside the "
                             f"event log: {span}")
    if start < log.first:
        raise ParameterError(name, str(cutoff), message=f"Parameter {name!r} got {_fmt_ts(cutoff)!r}: the observation "
                             f"window [{_fmt_ts(start)}, {_fmt_ts(cutoff)}) starts before the first event "
                             f"({_fmt_ts(log.first)}), so its features would cover less than {_fmt_td(obs)}; {span}. "
                             f"Use a cutoff at or after {_fmt_ts(log.first + obs)} or a shorter observation")
    if end > log.last:
        raise ParameterError(name, str(cutoff), message=f"Parameter {name!r} got {_fmt_ts(cutoff)!r}: the label window "
                             f"[{_fmt_ts(cutoff)}, {_fmt_ts(end)}) ends after the last event ({_fmt_ts(log.last)}), "
                             f"so labels would be censored; {span}. Use a cutoff at or before "
                             f"{_fmt_ts(log.last - hor)} or a shorter horizon")


def _lit(t: ibis.Table, col: str, ts: pd.Timestamp) -> ibis.Value:
    typ = t[col].type()
    value = ts if typ.timezone else ts.tz_convert("UTC").tz_localize(None)
    return ibis.literal(value.to_pydatetime(), type=typ)


def _frame(log: _Log, *, cutoff: pd.Timestamp, obs: pd.Timedelta, hor: pd.Timedelta, label_event: str,
           features: list[str], user_col: str, session_col: str, timestamp_col: str, event_col: str,
           name: str) -> IntentFrame:
    t = log.t
    start, end = cutoff - obs, cutoff + hor
    ts = t[timestamp_col]
    c_start, c_cut, c_end = _lit(t, timestamp_col, start), _lit(t, timestamp_col, cutoff), _lit(t, timestamp_col, end)
    window = t.filter((ts >= c_start) & (ts < c_cut))
    feats = build_user_features(window, as_of=cutoff, features=features, user_col=user_col, session_col=session_col,
                                timestamp_col=timestamp_col, event_col=event_col)
    if not len(feats):
        raise ParameterError("cutoff", str(cutoff), message=f"No user has an event in the observation window "
                             f"[{_fmt_ts(start)}, {_fmt_ts(cutoff)}): no rows to frame; move the cutoff or lengthen "
                             f"the observation (the log runs from {_fmt_ts(log.first)} to {_fmt_ts(log.last)})")
    # every user seen before the label window ends, classified by where their events fall
    early = t.filter(ts < c_end)
    in_obs = (early[timestamp_col] >= c_start) & (early[timestamp_col] < c_cut)
    in_hor = early[timestamp_col] >= c_cut
    per_user = to_pandas(early.group_by(early[user_col].cast("string").name("_u")).aggregate(
        _obs=early.count(where=in_obs),
        _before=early.count(where=early[timestamp_col] < c_start),
        _label=early.count(where=in_hor & (early[event_col] == label_event)),
    ))
    positive = set(per_user.loc[per_user["_label"] > 0, "_u"].astype(str))
    new = per_user[(per_user["_obs"] == 0) & (per_user["_before"] == 0)]
    lapsed = per_user[(per_user["_obs"] == 0) & (per_user["_before"] > 0)]

    users = feats[user_col].astype(str)
    X = feats.drop(columns=[user_col, *_KEY_COLUMNS]).copy()
    X.index = pd.Index(users.to_numpy(dtype=object), name=user_col)
    for col in X.columns:
        if pd.api.types.is_bool_dtype(X[col]):
            X[col] = X[col].astype("float64")  # nullable booleans become 0/1/NaN
    y = pd.Series(X.index.isin(list(positive)).astype("int8"), index=X.index, name="label")
    counts = {
        "n_users": int(len(X)),
        "n_positive": int(y.sum()),
        "n_new": int(len(new)),
        "n_new_positive": int((new["_label"] > 0).sum()),
        "n_lapsed": int(len(lapsed)),
        "n_lapsed_positive": int((lapsed["_label"] > 0).sum()),
    }
    return IntentFrame(X=X, y=y, cutoff=cutoff, observation=obs, horizon=hor, label_event=label_event, counts=counts,
                       first_event=log.first, last_event=log.last, name=name)


def frame_intent(
    events: Data,
    *,
    cutoff: str | pd.Timestamp,
    observation: str | pd.Timedelta = "28d",
    horizon: str | pd.Timedelta = "7d",
    label_event: str = "purchase",
    features: Sequence[str] | None = None,
    user_col: str = "user_id",
    session_col: str = "session_id",
    timestamp_col: str = "timestamp",
    event_col: str = "event",
) -> IntentFrame:
    """Features from the observation window before ``cutoff``, labels from the horizon after it.

    See the module docstring for the exact rules. The events are scanned four times (event
    names and time range; features, one pass for sessions and one for search terms; labels and the
    excluded users); only the per-user results come back to pandas.

    Parameters
    ----------
    events : DataFrame, Parquet path or Ibis table
        Cleaned, sessionized events (the output of :func:`segkit.sessions.split_sessions`).
    cutoff : str or Timestamp
        End of the observation window, start of the label window (naive values are UTC).
    observation : str or Timedelta, default="28d"
        Length of the observation window, with units.
    horizon : str or Timedelta, default="7d"
        Length of the label window, with units.
    label_event : str, default="purchase"
        Event whose occurrence in the label window makes ``y = 1``.
    features : list of str, optional
        User-level features (:func:`segkit.features.feature_registry`); default
        :data:`DEFAULT_FEATURES` (all but CRM and ``top_search_term``). CRM features are refused.
    user_col, session_col, timestamp_col, event_col : str
        Columns of ``events``.

    Returns
    -------
    IntentFrame

    Raises
    ------
    ParameterError
        A duration without units, a cutoff outside the log or whose windows do not fit in it, a
        label event that never occurs (with a did-you-mean hint), an observation window without
        any event, an unknown or CRM feature.
    SchemaError
        A required column is missing (``session_col``: run :func:`segkit.split_sessions`).

    Examples
    --------
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "b", "b", "c"],
    ...                    "session_id": ["a-0", "a-1", "b-0", "b-1", "c-0"],
    ...                    "event": ["page_view", "purchase", "page_view", "page_view", "purchase"],
    ...                    "timestamp": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-01-02",
    ...                                                 "2024-01-06", "2024-01-04"], utc=True)})
    >>> fr = frame_intent(ev, cutoff="2024-01-03", observation="2d", horizon="3d", features=["n_sessions"])
    >>> fr.y.to_dict()
    {'a': 1, 'b': 0}
    >>> fr.counts["n_new"], fr.counts["n_new_positive"]
    (1, 1)
    """
    obs = parse_duration(observation, name="observation")
    hor = parse_duration(horizon, name="horizon")
    cut = _utc(cutoff, "cutoff")
    names = _feature_names(features)
    log = _scan_log(events, user_col=user_col, session_col=session_col, timestamp_col=timestamp_col, event_col=event_col)
    label_event = _check_label_event(label_event, log)
    _check_windows(cut, obs, hor, log)
    return _frame(log, cutoff=cut, obs=obs, hor=hor, label_event=label_event, features=names, user_col=user_col,
                  session_col=session_col, timestamp_col=timestamp_col, event_col=event_col, name="frame")


def time_split(
    events: Data,
    *,
    cutoffs: Sequence[str | pd.Timestamp] | None = None,
    observation: str | pd.Timedelta = "28d",
    horizon: str | pd.Timedelta = "7d",
    label_event: str = "purchase",
    features: Sequence[str] | None = None,
    user_col: str = "user_id",
    session_col: str = "session_id",
    timestamp_col: str = "timestamp",
    event_col: str = "event",
) -> IntentSplit:
    """Frame a training cutoff and a later test cutoff whose label windows do not overlap.

    Rules: ``train_cutoff + horizon <= test_cutoff`` (everything the training rows use, labels
    included, happened before the test cutoff), and each cutoff's windows lie inside the log (see
    :func:`frame_intent`). Users may be rows of both frames; :attr:`IntentSplit.n_users_in_both`
    counts them.

    Parameters
    ----------
    events : DataFrame, Parquet path or Ibis table
        Cleaned, sessionized events.
    cutoffs : pair of str or Timestamp, optional
        ``(train_cutoff, test_cutoff)``. Default: the test cutoff is the last event's time minus
        ``horizon``, floored to UTC midnight, and the training cutoff is ``horizon`` before it
        (the latest pair the log allows; needs ``observation + 2 * horizon`` of data).
    observation, horizon, label_event, features, user_col, session_col, timestamp_col, event_col
        As in :func:`frame_intent`; the same for both frames.

    Returns
    -------
    IntentSplit

    Raises
    ------
    ParameterError
        Cutoffs that are not two increasing times, label windows that overlap, and every error of
        :func:`frame_intent`.

    Examples
    --------
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "a", "b", "b"], "session_id": ["a-0", "a-1", "a-2", "b-0", "b-1"],
    ...                    "event": ["page_view", "purchase", "purchase", "page_view", "page_view"],
    ...                    "timestamp": pd.to_datetime(["2024-01-01", "2024-01-04", "2024-01-07",
    ...                                                 "2024-01-02", "2024-01-08"], utc=True)})
    >>> sp = time_split(ev, cutoffs=("2024-01-03", "2024-01-06"), observation="2d", horizon="2d",
    ...                 features=["n_sessions"])
    >>> sp.train.y.to_dict(), sp.test.y.to_dict()
    ({'a': 1, 'b': 0}, {'a': 1})
    >>> sp.test.counts["n_lapsed"]
    1
    """
    obs = parse_duration(observation, name="observation")
    hor = parse_duration(horizon, name="horizon")
    names = _feature_names(features)
    if cutoffs is not None:
        if isinstance(cutoffs, (str, bytes, pd.Timestamp)) or not isinstance(cutoffs, Sequence) or len(cutoffs) != 2:
            raise ParameterError("cutoffs", cutoffs, "a pair (train_cutoff, test_cutoff) of timestamps")
        c_train, c_test = _utc(cutoffs[0], "cutoffs[0]"), _utc(cutoffs[1], "cutoffs[1]")
        if c_train + hor > c_test:
            raise ParameterError("cutoffs", [str(c) for c in cutoffs], message=(
                f"Parameter 'cutoffs' got ({_fmt_ts(c_train)!r}, {_fmt_ts(c_test)!r}): the training label window "
                f"[{_fmt_ts(c_train)}, {_fmt_ts(c_train + hor)}) must end at or before the test cutoff, "
                "so that no training row uses an event after it; "
                f"use a test cutoff at or after {_fmt_ts(c_train + hor)}"))
    log = _scan_log(events, user_col=user_col, session_col=session_col, timestamp_col=timestamp_col, event_col=event_col)
    label_event = _check_label_event(label_event, log)
    if cutoffs is None:
        c_test = (log.last - hor).floor("D")
        c_train = c_test - hor
        need = obs + 2 * hor
        if c_train - obs < log.first:
            raise ParameterError("cutoffs", None, message=(
                f"The log runs from {_fmt_ts(log.first)} to {_fmt_ts(log.last)}, too short for the default cutoffs "
                f"({_fmt_ts(c_train)}, {_fmt_ts(c_test)}): observation + 2 x horizon = {_fmt_td(need)} of data are "
                "needed; shorten observation or horizon, or pass cutoffs=(train, test)"))
    _check_windows(c_train, obs, hor, log, "cutoffs[0]")
    _check_windows(c_test, obs, hor, log, "cutoffs[1]")
    kw = dict(obs=obs, hor=hor, label_event=label_event, features=names, user_col=user_col, session_col=session_col,
              timestamp_col=timestamp_col, event_col=event_col)
    return IntentSplit(train=_frame(log, cutoff=c_train, name="train", **kw),  # type: ignore[arg-type]
                       test=_frame(log, cutoff=c_test, name="test", **kw))  # type: ignore[arg-type]


def plot_framing(framing: IntentFrame | IntentSplit | Sequence[IntentFrame], *, ax: Axes | None = None) -> Figure:
    """Timeline of the framing: observation and label windows of each frame, with user counts.

    Parameters
    ----------
    framing : IntentSplit, IntentFrame or list of IntentFrame
    ax : Axes, optional
        Where to draw; a new figure by default.

    Returns
    -------
    Figure

    Examples
    --------
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "b", "b"], "session_id": ["a-0", "a-1", "b-0", "b-1"],
    ...                    "event": ["page_view", "purchase", "page_view", "page_view"],
    ...                    "timestamp": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-01-02",
    ...                                                 "2024-01-06"], utc=True)})
    >>> fig = plot_framing(frame_intent(ev, cutoff="2024-01-03", observation="2d", horizon="3d", features=["n_sessions"]))
    >>> fig.axes[0].get_yticklabels()[0].get_text().splitlines()
    ['frame', 'cutoff 2024-01-03']
    """
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    if isinstance(framing, IntentSplit):
        frames = [framing.train, framing.test]
    elif isinstance(framing, IntentFrame):
        frames = [framing]
    elif isinstance(framing, Sequence) and framing and all(isinstance(f, IntentFrame) for f in framing):
        frames = list(framing)
    else:
        raise ParameterError("framing", type(framing).__name__, "an IntentSplit, an IntentFrame or a list of them")
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 1.1 * len(frames) + 1.6))

    def num(ts: pd.Timestamp) -> float:
        return float(mdates.date2num(ts.tz_convert("UTC").tz_localize(None).to_pydatetime()))

    first, last = frames[0].first_event, frames[0].last_event
    ax.axvspan(num(first), num(last), color="0.93", zorder=0, label="event log")
    for i, fr in enumerate(frames):
        yv = len(frames) - 1 - i
        c = fr.counts
        o0, cut, l1 = num(fr.observation_start), num(fr.cutoff), num(fr.label_end)
        ax.barh(yv, cut - o0, left=o0, height=0.5, color="#4C72B0", label="observation" if i == 0 else None)
        ax.barh(yv, l1 - cut, left=cut, height=0.5, color="#DD8452", label="label window" if i == 0 else None)
        rate = c["n_positive"] / c["n_users"] if c["n_users"] else math.nan
        ax.text((o0 + cut) / 2, yv, f"{c['n_users']:,} users", ha="center", va="center", color="white", fontsize=9)
        ax.text((cut + l1) / 2, yv, f"{c['n_positive']:,} ({rate:.1%})", ha="center", va="center", color="white",
                fontsize=9)
        ax.text(o0, yv - 0.3, f"not scored: {c['n_new']:,} new users ({c['n_new_positive']:,} positive), "
                f"{c['n_lapsed']:,} lapsed ({c['n_lapsed_positive']:,} positive)", ha="left", va="top", fontsize=8,
                color="0.3")
        ax.axvline(cut, color="0.2", lw=0.8, ls="--")
    ax.set_yticks(range(len(frames)), [f"{fr.name}\ncutoff {_fmt_ts(fr.cutoff)}" for fr in reversed(frames)])
    ax.set_ylim(-0.75, len(frames) - 0.4)
    ax.xaxis_date()
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    fr0 = frames[0]
    ax.set_title(f"Framing: features from {_fmt_td(fr0.observation)} before the cutoff, "
                 f"label = {fr0.label_event!r} within {_fmt_td(fr0.horizon)} after it")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    ax.grid(axis="y", visible=False)
    ax.figure.autofmt_xdate()
    ax.figure.tight_layout()
    return ax.figure


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


def _signed_log1p(x: Any) -> Any:
    """``sign(x) * log1p(|x|)``: monotone, defined everywhere, tames counts and durations."""
    return np.sign(x) * np.log1p(np.abs(x))


def _as_text(x: Any) -> np.ndarray:
    """Categorical columns as text, missing values as ``"(missing)"`` (uniform types for the encoder)."""
    df = pd.DataFrame(x)
    return df.astype(object).where(df.notna(), "(missing)").astype(str).to_numpy()


def _check_grid(model: str, grid: Any, estimator: Any) -> dict[str, list[Any]]:
    if not isinstance(grid, Mapping):
        raise ParameterError("param_grid", grid, message=f"Parameter 'param_grid' for {model!r} must be a mapping "
                             f"of parameter -> list of values, got {type(grid).__name__}")
    valid = sorted(estimator.get_params(deep=False))
    out: dict[str, list[Any]] = {}
    for key, values in grid.items():
        if key in _GRID_RESERVED:
            raise ParameterError("param_grid", key, message=f"param_grid[{model!r}] sets {key!r}; set it on "
                                 f"IntentModel({key}=...) instead")
        if key not in valid:
            raise ParameterError("param_grid", key, message=f"Unknown {model} parameter {key!r} in param_grid;"
                                 f"{did_you_mean(key, valid)} allowed: {format_allowed(valid)}")
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            values = [values]
        values = list(values)
        if not values:
            raise ParameterError("param_grid", key,
                                 message=f"param_grid[{model!r}][{key!r}] is empty; give at least one value")
        out[key] = values
    return out


class IntentModel(ClassifierMixin, BaseEstimator):
    """Purchase-intent classifier: grid-searched logistic regression and/or random forest.

    ``fit`` runs one ``GridSearchCV`` per candidate on stratified, shuffled folds, keeps the
    candidate with the best mean cross-validated ``scoring``, computes that configuration's
    out-of-fold scores on the same folds, and fits a calibrator on them, so :meth:`predict_proba`
    returns probabilities that match observed rates even with ``class_weight="balanced"``
    (which inflates raw scores of the rare class). Out-of-fold scores also let
    :func:`evaluate_intent` choose a threshold without looking at the test set.

    Preprocessing: numeric (and boolean) columns are median-imputed with missing-value indicators;
    text and categorical columns are one-hot encoded (unknown categories ignored). The logistic
    regression also applies ``sign(x) * log1p(|x|)`` (when ``log1p``) and standard scaling.

    Parameters
    ----------
    model : {"auto", "logistic", "random_forest"}, default="auto"
        The candidate(s); ``"auto"`` tries both and keeps the better.
    param_grid : mapping, optional
        Estimator parameters to search. With one candidate, ``{"C": [0.1, 1]}``; with
        ``"auto"``, per candidate: ``{"logistic": {...}, "random_forest": {...}}`` (a candidate left
        out uses its default). Default :data:`DEFAULT_GRIDS`. ``class_weight``, ``random_state``
        and ``n_jobs`` are set on the model, not in the grid.
    cv : int, default=3
        Number of stratified folds (at least 2; each class needs at least ``cv`` rows).
    scoring : str, default="roc_auc"
        Scikit-learn scorer name that picks the best configuration and candidate.
    class_weight : {"balanced", "balanced_subsample", None} or dict, default="balanced"
        Class weights of both estimators (``"balanced_subsample"`` is for the random forest only).
    calibration : {"sigmoid", "isotonic", None}, default="sigmoid"
        Calibrator fitted on the out-of-fold scores: a logistic regression on the score's logit,
        or isotonic regression; ``None`` returns the best estimator's raw probabilities. The
        sigmoid keeps the ranking (ROC-AUC unchanged); isotonic is a step function whose ties can
        move ROC-AUC slightly.
    log1p : bool, default=True
        Log-transform numeric columns before scaling (logistic regression only: setting it with
        ``model="random_forest"`` is an error).
    n_jobs : int, optional
        Parallel fits of the grid search.
    random_state : int, default=0
        Seed of the folds and of the random forest.

    Attributes
    ----------
    model_ : str
        The chosen candidate.
    best_model_ : Pipeline
        The chosen candidate's preprocessing + estimator, refitted on all rows (uncalibrated).
    best_params_ : dict
        Its estimator parameters from the grid.
    best_score_ : float
        Its mean cross-validated ``scoring``.
    cv_results_ : DataFrame
        One row per (candidate, configuration): ``model``, ``params``, ``mean_test_score``,
        ``std_test_score``, ``mean_fit_time``, ``rank`` (1 = best over all candidates).
    searches_ : dict of str to GridSearchCV
        The fitted searches.
    calibrator_ : estimator or None
        Maps raw scores to probabilities.
    oof_proba_ : ndarray
        Calibrated out-of-fold probabilities of the training rows (in row order).
    oof_y_ : ndarray
        Training labels as 0/1 (1 = ``classes_[1]``).
    classes_ : ndarray
        The two labels, sorted; the second is the positive class.
    n_features_in_ : int
    feature_names_in_ : ndarray
        Column names (only when ``X`` was a DataFrame).
    numeric_features_, categorical_features_ : list of str
        How columns were treated.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"carts": rng.poisson(1, 200), "device": rng.choice(["Mobile", "Desktop"], 200)})
    >>> y = (X["carts"] + rng.normal(0, 0.7, 200) > 1.5).astype(int)
    >>> m = IntentModel("auto", param_grid={"logistic": {"C": [1.0]},
    ...                                     "random_forest": {"n_estimators": [10], "min_samples_leaf": [5]}}).fit(X, y)
    >>> m.model_ in ("logistic", "random_forest"), m.predict_proba(X).shape
    (True, (200, 2))
    """

    def __init__(
        self,
        model: Literal["auto", "logistic", "random_forest"] = "auto",
        *,
        param_grid: Mapping[str, Any] | None = None,
        cv: int = 3,
        scoring: str = "roc_auc",
        class_weight: str | Mapping[Any, float] | None = "balanced",
        calibration: Literal["sigmoid", "isotonic"] | None = "sigmoid",
        log1p: bool = True,
        n_jobs: int | None = None,
        random_state: int = 0,
    ):
        self.model = model
        self.param_grid = param_grid
        self.cv = cv
        self.scoring = scoring
        self.class_weight = class_weight
        self.calibration = calibration
        self.log1p = log1p
        self.n_jobs = n_jobs
        self.random_state = random_state

    # --- validation -------------------------------------------------------------------------

    def _candidates(self) -> list[str]:
        if self.model == "auto":
            return list(_MODELS)
        if self.model in _MODELS:
            return [self.model]
        raise ParameterError("model", self.model, ["auto", *_MODELS])

    def _check_params(self) -> list[str]:
        cands = self._candidates()
        if isinstance(self.cv, bool) or not isinstance(self.cv, numbers.Integral) or self.cv < 2:
            raise ParameterError("cv", self.cv, "a whole number of folds >= 2")
        from sklearn.metrics import get_scorer_names

        names = get_scorer_names()
        if not isinstance(self.scoring, str) or self.scoring not in names:
            hint = did_you_mean(self.scoring, names) if isinstance(self.scoring, str) else ""
            raise ParameterError("scoring", self.scoring, message=f"Parameter 'scoring' got {self.scoring!r};{hint} "
                                 "allowed: a scikit-learn scorer name such as 'roc_auc', 'average_precision', "
                                 "'neg_log_loss' (sklearn.metrics.get_scorer_names())")
        cw = self.class_weight
        if not (cw is None or isinstance(cw, Mapping) or cw in ("balanced", "balanced_subsample")):
            raise ParameterError("class_weight", cw, ["balanced", "balanced_subsample", None])
        if cw == "balanced_subsample" and "logistic" in cands:
            raise ParameterError("class_weight", cw, message="class_weight='balanced_subsample' is for the random "
                                 "forest only; use 'balanced' or model='random_forest'")
        if self.calibration not in ("sigmoid", "isotonic", None):
            raise ParameterError("calibration", self.calibration, ["sigmoid", "isotonic", None])
        if not isinstance(self.log1p, (bool, np.bool_)):
            raise ParameterError("log1p", self.log1p, [True, False])
        if not self.log1p and cands == ["random_forest"]:
            raise ParameterError("log1p", self.log1p, message="log1p applies to the logistic regression only (trees "
                                 "do not change under monotone transforms); drop it or use model='auto'/'logistic'")
        if isinstance(self.random_state, bool) or not isinstance(self.random_state, numbers.Integral):
            raise ParameterError("random_state", self.random_state, "a whole number (the seed)")
        return cands

    def _grids(self, cands: list[str]) -> dict[str, dict[str, list[Any]]]:
        pg = self.param_grid
        if pg is None:
            return {c: dict(DEFAULT_GRIDS[c]) for c in cands}
        if not isinstance(pg, Mapping):
            raise ParameterError("param_grid", pg, "a mapping of parameter -> list of values")
        per_model = any(k in _MODELS for k in pg)
        if per_model:
            unknown = [k for k in pg if k not in _MODELS]
            if unknown:
                raise ParameterError("param_grid", unknown[0], message=f"param_grid mixes candidates and parameters: "
                                     f"{unknown[0]!r} is not a candidate; keys must all be candidates {list(_MODELS)}")
            other = [k for k in pg if k not in cands]
            if other:
                raise ParameterError("param_grid", other[0], message=f"param_grid has a grid for {other[0]!r} but "
                                     f"model={self.model!r}; set model='auto' or drop that grid")
            grids = {c: (pg[c] if c in pg else dict(DEFAULT_GRIDS[c])) for c in cands}
        else:
            if len(cands) > 1:
                raise ParameterError("param_grid", dict(pg), message="With model='auto' the grid is per candidate: "
                                     "{'logistic': {...}, 'random_forest': {...}}")
            grids = {cands[0]: dict(pg)}
        return {c: _check_grid(c, g, self._estimator(c)) for c, g in grids.items()}

    def _estimator(self, name: str) -> Any:
        if name == "logistic":
            from sklearn.linear_model import LogisticRegression

            # newton-cholesky: exact and fast for many rows and few (one-hot) columns
            return LogisticRegression(class_weight=self.class_weight, solver="newton-cholesky", max_iter=500)
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(class_weight=self.class_weight, random_state=self.random_state, n_estimators=300)

    def _pipeline(self, name: str, numeric: list[str], categorical: list[str]) -> Any:
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

        num_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median", add_indicator=True,
                                                                     keep_empty_features=True))]
        if name == "logistic":
            if self.log1p:
                num_steps.append(("log1p", FunctionTransformer(_signed_log1p, feature_names_out="one-to-one")))
            num_steps.append(("scale", StandardScaler()))
        parts = []
        if numeric:
            parts.append(("num", Pipeline(num_steps), numeric))
        if categorical:
            parts.append(("cat", Pipeline([
                ("text", FunctionTransformer(_as_text, feature_names_out="one-to-one")),
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]), categorical))
        prep = ColumnTransformer(parts, remainder="drop")
        return Pipeline([("prep", prep), ("clf", self._estimator(name))])

    def _frame_X(self, X: Any, *, fitting: bool) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            df = X
        else:
            arr = np.asarray(X)
            if arr.ndim != 2:
                raise ParameterError("X", f"array of shape {arr.shape}", "a DataFrame or a 2-D array")
            df = pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])
        if fitting:
            if df.shape[1] == 0:
                raise ParameterError("X", "0 columns", "at least one feature column")
            return df
        names = list(getattr(self, "feature_names_in_", [f"x{i}" for i in range(self.n_features_in_)]))
        if isinstance(X, pd.DataFrame) and hasattr(self, "feature_names_in_"):
            check_columns(df.columns, names, what="X")
            return df[names]
        if df.shape[1] != self.n_features_in_:
            raise ParameterError("X", f"{df.shape[1]} columns", message=f"X has {df.shape[1]} columns; the model was "
                                 f"fitted on {self.n_features_in_}")
        return df.set_axis(names, axis=1)

    # --- fitting ----------------------------------------------------------------------------

    def fit(self, X: Any, y: Any) -> IntentModel:
        """Grid-search every candidate, keep the best, calibrate it on out-of-fold scores.

        Parameters
        ----------
        X : DataFrame or 2-D array
            One row per user (``IntentFrame.X``).
        y : array-like
            Two classes (0/1 or bool; the larger label is the positive class).

        Returns
        -------
        IntentModel
            ``self``, fitted.

        Raises
        ------
        ParameterError
            Bad constructor arguments or grid, mismatched lengths, missing labels, a single class,
            fewer rows of a class than folds.
        """
        from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_predict

        cands = self._check_params()
        grids = self._grids(cands)
        df = self._frame_X(X, fitting=True)
        yy = pd.Series(np.asarray(y).ravel()) if not isinstance(y, pd.Series) else y.reset_index(drop=True)
        if len(yy) != len(df):
            raise ParameterError("y", f"{len(yy)} labels", message=f"y has {len(yy):,} labels but X has {len(df):,} rows")
        if yy.isna().any():
            raise ParameterError("y", "missing labels", message=f"y has {int(yy.isna().sum()):,} missing label(s)")
        classes = np.unique(yy.to_numpy())
        if len(classes) < 2:
            only = classes[0] if len(classes) else None
            raise ParameterError("y", only, message=f"y has a single class ({only!r} for all {len(yy):,} rows): "
                                 "nothing to learn. If it comes from frame_intent, the label event never happened "
                                 "in the label window; choose another cutoff, a longer horizon or another label event")
        if len(classes) > 2:
            raise ParameterError("y", format_allowed(classes.tolist()), message=f"y has {len(classes)} classes "
                                 f"{format_allowed(classes.tolist())}; intent models are binary")
        y01 = (yy.to_numpy() == classes[1]).astype("int64")
        n_min = int(min(y01.sum(), len(y01) - y01.sum()))
        if n_min < self.cv:
            raise ParameterError("cv", self.cv, message=f"The rarer class has {n_min} row(s), fewer than cv={self.cv} "
                                 "folds; lower cv or frame more users")
        numeric = [str(c) for c in df.columns if pd.api.types.is_numeric_dtype(df[c])
                   and not isinstance(df[c].dtype, pd.CategoricalDtype)]
        categorical = [str(c) for c in df.columns if str(c) not in numeric]
        df = df.copy()
        df.columns = [str(c) for c in df.columns]
        folds = StratifiedKFold(n_splits=int(self.cv), shuffle=True, random_state=int(self.random_state))

        searches: dict[str, Any] = {}
        rows = []
        for name in cands:
            grid = {f"clf__{k}": v for k, v in grids[name].items()}
            search = GridSearchCV(self._pipeline(name, numeric, categorical), grid, scoring=self.scoring, cv=folds,
                                  n_jobs=self.n_jobs, refit=True, error_score="raise")
            search.fit(df, y01)
            searches[name] = search
            res = search.cv_results_
            for i, params in enumerate(res["params"]):
                rows.append({"model": name, "params": {k.removeprefix("clf__"): v for k, v in params.items()},
                             "mean_test_score": float(res["mean_test_score"][i]),
                             "std_test_score": float(res["std_test_score"][i]),
                             "mean_fit_time": float(res["mean_fit_time"][i])})
        best = max(cands, key=lambda c: (searches[c].best_score_, -cands.index(c)))
        results = pd.DataFrame(rows)
        results["rank"] = results["mean_test_score"].rank(ascending=False, method="min").astype("int64")

        chosen = searches[best]
        raw_oof = cross_val_predict(clone(chosen.best_estimator_), df, y01, cv=folds, method="predict_proba",
                                    n_jobs=self.n_jobs)[:, 1]
        calibrator = self._fit_calibrator(raw_oof, y01)
        self.searches_ = searches
        self.model_ = best
        self.best_model_ = chosen.best_estimator_
        self.best_params_ = {k.removeprefix("clf__"): v for k, v in chosen.best_params_.items()}
        self.best_score_ = float(chosen.best_score_)
        self.cv_results_ = results
        self.calibrator_ = calibrator
        self.oof_y_ = y01
        self.oof_proba_ = self._calibrate(raw_oof)
        self.classes_ = classes
        self.n_features_in_ = int(df.shape[1])
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(df.columns, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.numeric_features_ = numeric
        self.categorical_features_ = categorical
        return self

    def _fit_calibrator(self, raw: np.ndarray, y01: np.ndarray) -> Any:
        if self.calibration is None:
            return None
        if self.calibration == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y01)
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=np.inf, max_iter=1000).fit(_logit(raw)[:, None], y01)

    def _calibrate(self, raw: np.ndarray) -> np.ndarray:
        cal = self.calibrator_
        if cal is None:
            return raw
        if self.calibration == "isotonic":
            return np.clip(cal.predict(raw), 0.0, 1.0)
        return cal.predict_proba(_logit(raw)[:, None])[:, 1]

    # --- prediction -------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "best_model_"):
            raise NotFittedError("This IntentModel is not fitted yet; call fit(X, y) first")

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated class probabilities, shape ``(n, 2)``; column 1 is ``classes_[1]``.

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        SchemaError
            ``X`` lacks a column the model was fitted on (extra columns are ignored).
        """
        self._check_fitted()
        df = self._frame_X(X, fitting=False)
        p1 = self._calibrate(self.best_model_.predict_proba(df)[:, 1])
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X: Any) -> np.ndarray:
        """Labels at probability 0.5 (use :func:`evaluate_intent` / :func:`choose_threshold` for others)."""
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        return tags


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype="float64"), 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def _binary(y: Any, name: str = "y") -> np.ndarray:
    arr = np.asarray(y).ravel()
    if pd.isna(arr).any():
        raise ParameterError(name, "missing labels", message=f"{name} has missing labels")
    values = np.unique(arr)
    if len(values) > 2 or not set(values.tolist()) <= {0, 1, True, False}:
        raise ParameterError(name, format_allowed(values.tolist()), message=f"{name} must hold 0/1 labels, got "
                             f"{format_allowed(values.tolist())}")
    return arr.astype("int64")


def _scores(scores: Any, n: int, name: str = "scores") -> np.ndarray:
    s = np.asarray(scores, dtype="float64").ravel()
    if len(s) != n:
        raise ParameterError(name, f"{len(s)} values", message=f"{name} has {len(s):,} values but y has {n:,}")
    if np.isnan(s).any():
        raise ParameterError(name, "NaN", message=f"{name} has {int(np.isnan(s).sum()):,} NaN value(s)")
    return s


def choose_threshold(y: Any, scores: Any, rule: Literal["f1", "youden"] = "f1") -> float:
    """The score threshold that maximizes F1 (``"f1"``) or Youden's J = TPR - FPR (``"youden"``).

    Choose it on data the model was not evaluated on (validation or out-of-fold scores); choosing
    it on the test set makes the test metrics at that threshold optimistic. Ties go to the
    highest threshold (fewest positive predictions).

    Examples
    --------
    >>> choose_threshold([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], "f1")
    0.35
    """
    from sklearn.metrics import precision_recall_curve, roc_curve

    yy = _binary(y)
    s = _scores(scores, len(yy))
    if yy.min() == yy.max():
        raise ParameterError("y", int(yy[0]), message="y has a single class; a threshold cannot be chosen")
    if rule == "f1":
        prec, rec, thr = precision_recall_curve(yy, s)
        prec, rec = prec[:-1], rec[:-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            f1 = np.where(prec + rec > 0, 2 * prec * rec / (prec + rec), 0.0)
        best = np.flatnonzero(f1 == f1.max())
        return float(thr[best].max())
    if rule == "youden":
        fpr, tpr, thr = roc_curve(yy, s, drop_intermediate=False)
        ok = np.isfinite(thr)
        j = np.where(ok, tpr - fpr, -np.inf)
        best = np.flatnonzero(j == j.max())
        return float(thr[best].max())
    raise ParameterError("rule", rule, ["f1", "youden"])


def lift_table(y: Any, scores: Any, *, n_groups: int = 10) -> pd.DataFrame:
    """Lift and cumulative gains by score group (deciles by default), highest scores first.

    Rows are sorted by score, descending (ties keep their input order), and cut into
    ``n_groups`` groups of equal size (sizes differ by at most one; a tie may straddle a
    boundary).

    Parameters
    ----------
    y : array-like of 0/1
    scores : array-like of float
    n_groups : int, default=10

    Returns
    -------
    DataFrame
        ``group`` (1 = highest scores), ``n``, ``positives``, ``rate``, ``min_score``,
        ``max_score``, ``lift`` (rate / overall rate), ``cum_n``, ``cum_positives``,
        ``cum_share`` (share of users targeted), ``gain`` (share of all positives captured) and
        ``cum_lift`` (gain / cum_share).

    Examples
    --------
    >>> t = lift_table([1, 0, 1, 0, 0, 0, 0, 0, 0, 0], [.9, .8, .7, .6, .5, .4, .3, .2, .1, 0], n_groups=5)
    >>> t[["group", "positives", "gain", "cum_lift"]].values.tolist()[:2]
    [[1.0, 1.0, 0.5, 2.5], [2.0, 1.0, 1.0, 2.5]]
    """
    yy = _binary(y)
    s = _scores(scores, len(yy))
    if isinstance(n_groups, bool) or not isinstance(n_groups, numbers.Integral) or not 1 <= n_groups <= max(1, len(yy)):
        raise ParameterError("n_groups", n_groups, f"a whole number from 1 to the number of rows ({len(yy):,})")
    order = np.argsort(-s, kind="stable")
    groups = np.array_split(order, int(n_groups))
    total_pos = int(yy.sum())
    overall = total_pos / len(yy) if len(yy) else math.nan
    rows = []
    cum_n = cum_pos = 0
    for g, idx in enumerate(groups, start=1):
        n, pos = len(idx), int(yy[idx].sum())
        cum_n += n
        cum_pos += pos
        rate = pos / n if n else math.nan
        gain = cum_pos / total_pos if total_pos else math.nan
        rows.append({"group": g, "n": n, "positives": pos, "rate": rate,
                     "min_score": float(s[idx].min()) if n else math.nan,
                     "max_score": float(s[idx].max()) if n else math.nan,
                     "lift": rate / overall if overall else math.nan,
                     "cum_n": cum_n, "cum_positives": cum_pos, "cum_share": cum_n / len(yy), "gain": gain,
                     "cum_lift": gain / (cum_n / len(yy)) if total_pos else math.nan})
    return pd.DataFrame(rows)


def calibration_table(y: Any, scores: Any, *, n_bins: int = 10,
                      strategy: Literal["uniform", "quantile"] = "uniform") -> pd.DataFrame:
    """Observed rate vs mean predicted probability per score bin (the reliability diagram's data).

    Bins follow :func:`sklearn.calibration.calibration_curve` (``uniform``: equal-width bins on
    [0, 1]; ``quantile``: equal-count bins); empty bins are left out.

    Returns
    -------
    DataFrame
        ``bin`` (0-based), ``lower``, ``upper`` (bin edges), ``n``, ``mean_predicted``,
        ``observed_rate``.

    Examples
    --------
    >>> calibration_table([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9], n_bins=2)[["n", "observed_rate"]].values.tolist()
    [[2.0, 0.0], [2.0, 1.0]]
    """
    yy = _binary(y)
    s = _scores(scores, len(yy))
    if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral) or n_bins < 1:
        raise ParameterError("n_bins", n_bins, "a whole number >= 1")
    if (s < 0).any() or (s > 1).any():
        raise ParameterError("scores", "values outside [0, 1]", message="scores must be probabilities in [0, 1]")
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, int(n_bins) + 1)
    elif strategy == "quantile":
        edges = np.percentile(s, np.linspace(0, 100, int(n_bins) + 1))
    else:
        raise ParameterError("strategy", strategy, ["uniform", "quantile"])
    ids = np.searchsorted(edges[1:-1], s)  # as sklearn.calibration.calibration_curve
    n = np.bincount(ids, minlength=len(edges) - 1)
    sum_p = np.bincount(ids, weights=s, minlength=len(edges) - 1)
    sum_y = np.bincount(ids, weights=yy, minlength=len(edges) - 1)
    keep = n > 0
    return pd.DataFrame({
        "bin": np.arange(len(n))[keep], "lower": edges[:-1][keep], "upper": edges[1:][keep],
        "n": n[keep].astype("int64"), "mean_predicted": sum_p[keep] / n[keep], "observed_rate": sum_y[keep] / n[keep],
    })


@dataclass
class IntentReport:
    """Test-set evaluation of an intent model (the output of :func:`evaluate_intent`).

    Attributes
    ----------
    n, n_positive : int
        Rows and positives evaluated.
    roc_auc, pr_auc : float
        Area under the ROC curve; average precision (area under the precision-recall curve).
    brier : float
        Mean squared error of the probabilities.
    threshold : float
        Score at or above which a row is predicted positive.
    threshold_rule : str
        How it was chosen (``"fixed"``, ``"f1 on out-of-fold training scores"`` ...).
    metrics : dict of str to float
        At the threshold: ``precision``, ``recall``, ``f1``, ``accuracy``, ``specificity``,
        ``predicted_positive_share``.
    roc : DataFrame
        ``fpr``, ``tpr``, ``threshold`` (from :func:`sklearn.metrics.roc_curve`).
    pr : DataFrame
        ``recall``, ``precision``, ``threshold`` (the last point, recall 0, has threshold NaN).
    confusion : DataFrame
        Counts, index ``actual`` (0, 1), columns ``predicted`` (0, 1).
    calibration : DataFrame
        :func:`calibration_table`.
    importance : DataFrame
        ``feature``, ``importance_mean``, ``importance_std`` (drop of ``importance_scoring`` when
        the column is permuted), largest first; empty when ``n_repeats=0``.
    gains : DataFrame
        :func:`lift_table` by decile.
    scores : Series
        Predicted probabilities, indexed like ``X``.
    label : str
        What the scores estimate, e.g. ``"P(purchase in 7d)"``.
    """

    n: int
    n_positive: int
    roc_auc: float
    pr_auc: float
    brier: float
    threshold: float
    threshold_rule: str
    metrics: dict[str, float]
    roc: pd.DataFrame
    pr: pd.DataFrame
    confusion: pd.DataFrame
    calibration: pd.DataFrame
    importance: pd.DataFrame
    gains: pd.DataFrame
    scores: pd.Series
    label: str = "P(positive)"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def prevalence(self) -> float:
        """Share of positives."""
        return self.n_positive / self.n if self.n else math.nan

    def summary(self) -> pd.DataFrame:
        """Headline numbers as a one-column table (``metric`` -> ``value``)."""
        items = {"rows": self.n, "positives": self.n_positive, "prevalence": self.prevalence, "roc_auc": self.roc_auc,
                 "pr_auc": self.pr_auc, "brier": self.brier, "threshold": self.threshold, **self.metrics}
        return pd.DataFrame({"value": pd.Series(items, dtype="float64")}).rename_axis("metric")


def evaluate_intent(
    model: Any,
    X: Any,
    y: Any,
    *,
    threshold: float | Literal["f1", "youden"] = 0.5,
    n_bins: int = 10,
    calibration_strategy: Literal["uniform", "quantile"] = "quantile",
    n_repeats: int = 5,
    importance_scoring: str = "roc_auc",
    random_state: int = 0,
    label: str | None = None,
    n_jobs: int | None = None,
) -> IntentReport:
    """Evaluate a fitted intent model on held-out rows.

    Parameters
    ----------
    model : IntentModel or fitted scikit-learn classifier with ``predict_proba``
    X : DataFrame or array
        Test features (``split.test.X``).
    y : array-like of 0/1
        Test labels; both classes must be present.
    threshold : float or {"f1", "youden"}, default=0.5
        A probability, or a rule applied to the model's out-of-fold *training* scores
        (:attr:`IntentModel.oof_proba_`), so the test set is not used to pick it. For another
        model, pick it with :func:`choose_threshold` on validation data and pass the number.
    n_bins : int, default=10
        Bins of the calibration table.
    calibration_strategy : {"uniform", "quantile"}, default="quantile"
        Equal-count bins (informative when most scores are small) or equal-width bins.
    n_repeats : int, default=5
        Shuffles per column for permutation importance; 0 skips it (it costs
        ``n_columns * n_repeats`` predictions).
    importance_scoring : str, default="roc_auc"
        Scorer whose drop measures importance.
    random_state : int, default=0
        Seed of the permutations.
    label : str, optional
        What the scores estimate (``"P(purchase in 7d)"``), used by plots.
    n_jobs : int, optional
        Parallel jobs of permutation importance.

    Returns
    -------
    IntentReport

    Raises
    ------
    ParameterError
        A single class in ``y``, mismatched lengths, a bad threshold, a rule threshold for a
        model without out-of-fold scores.
    NotFittedError
        The model is not fitted.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> X = pd.DataFrame({"carts": rng.poisson(1, 300)})
    >>> y = (X["carts"] + rng.normal(0, 0.7, 300) > 1.5).astype(int)
    >>> m = IntentModel("logistic", param_grid={"C": [1.0]}).fit(X, y)
    >>> r = evaluate_intent(m, X, y, threshold="f1", n_repeats=2)
    >>> int(r.confusion.to_numpy().sum()), r.importance["feature"].tolist()
    (300, ['carts'])
    """
    from sklearn.metrics import average_precision_score, brier_score_loss, confusion_matrix, precision_recall_curve
    from sklearn.metrics import roc_auc_score, roc_curve

    if not hasattr(model, "predict_proba"):
        raise ParameterError("model", type(model).__name__, "a fitted classifier with predict_proba (an IntentModel)")
    yy = _binary(y)
    if yy.min() == yy.max():
        raise ParameterError("y", int(yy[0]), message=f"y has a single class ({int(yy[0])} for all {len(yy):,} rows); "
                             "ROC-AUC and PR-AUC need both classes: choose a test cutoff with positives")
    proba = np.asarray(model.predict_proba(X))
    if proba.ndim != 2 or proba.shape[1] != 2:
        raise ParameterError("model", type(model).__name__, message="model.predict_proba must return two columns")
    s = _scores(proba[:, 1], len(yy), "predictions")
    if isinstance(threshold, str):
        if threshold not in ("f1", "youden"):
            raise ParameterError("threshold", threshold, ["f1", "youden", "a probability in [0, 1]"])
        if not hasattr(model, "oof_proba_"):
            raise ParameterError("threshold", threshold, message=f"threshold={threshold!r} is chosen on out-of-fold "
                                 "training scores, which only IntentModel records; pass a number, e.g. "
                                 "choose_threshold(y_val, scores_val, 'f1')")
        thr = choose_threshold(model.oof_y_, model.oof_proba_, threshold)
        rule = f"{threshold} on out-of-fold training scores"
    else:
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0 <= float(threshold) <= 1:
            raise ParameterError("threshold", threshold, ["f1", "youden", "a probability in [0, 1]"])
        thr, rule = float(threshold), "fixed"
    if isinstance(n_repeats, bool) or not isinstance(n_repeats, numbers.Integral) or n_repeats < 0:
        raise ParameterError("n_repeats", n_repeats, "a whole number >= 0 (0 skips permutation importance)")

    pred = (s >= thr).astype("int64")
    cm = confusion_matrix(yy, pred, labels=[0, 1])
    tn, fp, fn, tp = (int(v) for v in cm.ravel())
    precision = tp / (tp + fp) if tp + fp else math.nan
    recall = tp / (tp + fn)
    metrics = {
        "precision": precision,
        "recall": recall,
        "f1": 2 * tp / (2 * tp + fp + fn),
        "accuracy": (tp + tn) / len(yy),
        "specificity": tn / (tn + fp) if tn + fp else math.nan,
        "predicted_positive_share": (tp + fp) / len(yy),
    }
    fpr, tpr, roc_thr = roc_curve(yy, s)
    prec, rec, pr_thr = precision_recall_curve(yy, s)
    index = X.index if isinstance(X, pd.DataFrame) else pd.RangeIndex(len(yy))
    if n_repeats:
        from sklearn.inspection import permutation_importance

        classes = getattr(model, "classes_", None)
        y_model = np.asarray(classes)[yy] if classes is not None and len(classes) == 2 else yy
        imp = permutation_importance(model, X, y_model, scoring=importance_scoring, n_repeats=int(n_repeats),
                                     random_state=random_state, n_jobs=n_jobs)
        names = list(X.columns) if isinstance(X, pd.DataFrame) else [f"x{i}" for i in range(np.asarray(X).shape[1])]
        importance = pd.DataFrame({"feature": [str(c) for c in names], "importance_mean": imp.importances_mean,
                                   "importance_std": imp.importances_std})
        importance = importance.sort_values("importance_mean", ascending=False, kind="stable", ignore_index=True)
    else:
        importance = pd.DataFrame({"feature": pd.Series(dtype=object), "importance_mean": pd.Series(dtype="float64"),
                                   "importance_std": pd.Series(dtype="float64")})
    return IntentReport(
        n=len(yy), n_positive=int(yy.sum()),
        roc_auc=float(roc_auc_score(yy, s)), pr_auc=float(average_precision_score(yy, s)),
        brier=float(brier_score_loss(yy, s)), threshold=thr, threshold_rule=rule, metrics=metrics,
        roc=pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": roc_thr}),
        pr=pd.DataFrame({"recall": rec, "precision": prec, "threshold": np.append(pr_thr, np.nan)}),
        confusion=pd.DataFrame(cm, index=pd.Index([0, 1], name="actual"), columns=pd.Index([0, 1], name="predicted")),
        calibration=calibration_table(yy, s, n_bins=n_bins, strategy=calibration_strategy),
        importance=importance,
        gains=lift_table(yy, s, n_groups=min(10, len(yy))).rename(columns={"group": "decile"}),
        scores=pd.Series(s, index=index, name="score"),
        label=label or "P(positive)",
        extra={"model": getattr(model, "model_", type(model).__name__), "importance_scoring": importance_scoring},
    )


# --------------------------------------------------------------------------------------------
# Plots of a report
# --------------------------------------------------------------------------------------------


def _check_report(report: Any) -> IntentReport:
    if not isinstance(report, IntentReport):
        raise ParameterError("report", type(report).__name__, message="report must be the IntentReport that "
                             "evaluate_intent returns")
    return report


def _new_ax(ax: Axes | None, size: tuple[float, float]) -> Axes:
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=size)
    return ax


def plot_roc_pr(report: IntentReport) -> Figure:
    """ROC and precision-recall curves side by side, the chosen threshold marked.

    Examples
    --------
    >>> r = _toy_report()
    >>> len(plot_roc_pr(r).axes)
    2
    """
    import matplotlib.pyplot as plt

    r = _check_report(report)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.2))
    a1.plot(r.roc["fpr"], r.roc["tpr"], color="#4C72B0", label=f"model (AUC {r.roc_auc:.3f})")
    a1.plot([0, 1], [0, 1], color="0.6", ls="--", lw=1, label="chance (0.5)")
    fpr_t = 1 - r.metrics["specificity"] if not math.isnan(r.metrics["specificity"]) else math.nan
    a1.scatter([fpr_t], [r.metrics["recall"]], color="#C44E52", zorder=3, label=f"threshold {r.threshold:.3g}")
    a1.set(xlabel="false positive rate", ylabel="true positive rate (recall)", title="ROC curve",
           xlim=(0, 1), ylim=(0, 1.02))
    a1.legend(loc="lower right", frameon=False)
    a2.plot(r.pr["recall"], r.pr["precision"], color="#4C72B0", label=f"model (AP {r.pr_auc:.3f})")
    a2.axhline(r.prevalence, color="0.6", ls="--", lw=1, label=f"chance ({r.prevalence:.3f})")
    if not math.isnan(r.metrics["precision"]):
        a2.scatter([r.metrics["recall"]], [r.metrics["precision"]], color="#C44E52", zorder=3,
                   label=f"threshold {r.threshold:.3g}")
    a2.set(xlabel="recall", ylabel="precision", title="Precision-recall curve", xlim=(0, 1), ylim=(0, 1.02))
    a2.legend(loc="upper right", frameon=False)
    fig.suptitle(f"{r.label}: {r.n:,} test rows, {r.n_positive:,} positive")
    fig.tight_layout()
    return fig


def plot_confusion(report: IntentReport, *, ax: Axes | None = None) -> Figure:
    """Confusion matrix at the report's threshold: counts and share of each actual class.

    Examples
    --------
    >>> r = _toy_report()
    >>> len(plot_confusion(r).axes[0].texts)
    4
    """
    r = _check_report(report)
    ax = _new_ax(ax, (4.8, 4))
    cm = r.confusion.to_numpy()
    share = cm / cm.sum(axis=1, keepdims=True).clip(min=1)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(2):
        for j in range(2):
            ax.text(j, i, f"{cm[i, j]:,}\n{share[i, j]:.1%}", ha="center", va="center",
                    color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks([0, 1], ["predicted 0", "predicted 1"])
    ax.set_yticks([0, 1], ["actual 0", "actual 1"])
    ax.grid(False)
    ax.set_title(f"Confusion matrix at {r.threshold:.3g} ({r.threshold_rule})", fontsize=10)
    ax.figure.tight_layout()
    return ax.figure


def plot_calibration(report: IntentReport, *, ax: Axes | None = None) -> Figure:
    """Reliability diagram: observed rate vs mean predicted probability per bin, over a score histogram.

    Examples
    --------
    >>> r = _toy_report()
    >>> len(plot_calibration(r).axes)
    2
    """
    r = _check_report(report)
    ax = _new_ax(ax, (6, 4.5))
    c = r.calibration
    ax.plot([0, 1], [0, 1], color="0.6", ls="--", lw=1, label="perfectly calibrated")
    ax.plot(c["mean_predicted"], c["observed_rate"], marker="o", color="#4C72B0", label="model")
    top = float(max(c["upper"].max(), c["observed_rate"].max())) if len(c) else 1.0
    lim = min(1.0, max(0.05, 1.1 * top))  # zoom in when every score is small
    ax.set(xlabel=f"mean predicted {r.label}", ylabel="observed rate", xlim=(0, lim), ylim=(0, lim),
           title=f"Calibration (Brier {r.brier:.4f})")
    ax.legend(loc="upper left", frameon=False)
    twin = ax.twinx()
    twin.hist(r.scores.to_numpy(), bins=40, range=(0, lim), color="0.8", alpha=0.6, zorder=0)
    twin.set_ylabel("rows (score histogram)")
    twin.grid(False)
    ax.set_zorder(twin.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.figure.tight_layout()
    return ax.figure


def plot_importance(report: IntentReport, *, top: int = 15, ax: Axes | None = None) -> Figure:
    """Permutation importance: the drop in score when a column is shuffled, with its spread.

    Examples
    --------
    >>> fig = plot_importance(_toy_report())
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['visits', 'carts']
    """
    r = _check_report(report)
    if not len(r.importance):
        raise ParameterError("report", "no importance", message="The report has no permutation importance "
                             "(evaluate_intent(..., n_repeats=0)); evaluate with n_repeats >= 1")
    imp = r.importance.head(int(top)).iloc[::-1]
    ax = _new_ax(ax, (7, 0.3 * len(imp) + 1.5))
    ax.barh(imp["feature"].astype(str), imp["importance_mean"], xerr=imp["importance_std"], color="#4C72B0",
            error_kw={"ecolor": "0.3", "lw": 1})
    ax.axvline(0, color="0.3", lw=0.8)
    scoring = r.extra.get("importance_scoring", "roc_auc")
    ax.set(xlabel=f"drop in {scoring} when the column is shuffled", title="Permutation importance (test rows)")
    ax.figure.tight_layout()
    return ax.figure


def plot_gains(report: IntentReport) -> Figure:
    """Cumulative gains curve (with random and perfect targeting) and lift per decile.

    Examples
    --------
    >>> r = _toy_report()
    >>> len(plot_gains(r).axes)
    2
    """
    import matplotlib.pyplot as plt

    r = _check_report(report)
    g = r.gains
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.2))
    a1.plot(np.r_[0, g["cum_share"]], np.r_[0, g["gain"]], marker="o", color="#4C72B0", label="model")
    a1.plot([0, 1], [0, 1], color="0.6", ls="--", lw=1, label="random")
    prev = r.prevalence
    a1.plot([0, prev, 1], [0, 1, 1], color="0.3", ls=":", lw=1, label="perfect")
    a1.set(xlabel="share of users targeted (highest scores first)", ylabel="share of positives captured",
           title="Cumulative gains", xlim=(0, 1), ylim=(0, 1.02))
    a1.legend(loc="lower right", frameon=False)
    a2.bar(g["decile"], g["lift"], color="#4C72B0")
    a2.axhline(1, color="0.6", ls="--", lw=1)
    a2.set(xlabel="decile (1 = highest scores)", ylabel="lift (rate / overall rate)", title="Lift by decile")
    a2.set_xticks(g["decile"])
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Export as segments
# --------------------------------------------------------------------------------------------


def _fmt_cmp(score: float, cut: float, op: str) -> str:
    """``score`` with as many decimals (2 to 6) as it takes for the printed comparison to hold."""
    c = f"{cut:g}"
    for d in range(2, 7):
        s = f"{score:.{d}f}"
        v, cv = float(s), float(c)
        if (op == ">=" and v >= cv) or (op == "<" and v < cv):
            return s
    return f"{score:.6g}"


def _rule_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def intent_segments(
    user_ids: Any,
    scores: Any,
    *,
    as_of: str | pd.Timestamp,
    cuts: Sequence[float] | None = None,
    quantiles: Sequence[float] | None = None,
    names: Sequence[str] = INTENT_SEGMENTS,
    label: str = "P(purchase)",
    user_col: str = "user_id",
) -> pd.DataFrame:
    """Cut scores into intent segments, in the membership-table format of ``evaluate_segments``.

    With cuts ``c1 < c2 < ...`` a user is in the first segment when ``score < c1``, in segment
    ``k`` when ``c(k-1) <= score < ck``, in the last when ``score >= c(last)``; every user is in
    exactly one segment. ``quantiles`` sets the cuts at quantiles of the scores instead, rounded
    to 4 decimals so that the printed rule is the applied one (``(0.5, 0.9)`` puts about the top
    10 % in the last segment; ties at a cut go up).

    Probability cuts need calibrated scores (:class:`IntentModel` calibrates them). For a rare
    event the calibrated probabilities seldom reach 0.66, so ``intent_high`` can be empty: that
    is the honest answer to "who will buy with probability >= 0.66"; use ``quantiles`` for
    audiences of a fixed share. Empty segments are still listed in ``attrs["segments"]``, so an
    export clears them.

    Parameters
    ----------
    user_ids : array-like
        One per score, unique.
    scores : array-like of float
        Probabilities in [0, 1] (:attr:`IntentReport.scores`, ``model.predict_proba(X)[:, 1]``).
    as_of : str or Timestamp
        When the scores were made (the frame's cutoff); every row's ``entered_at``.
    cuts : sequence of float, optional
        Increasing probabilities strictly between 0 and 1; default ``(0.33, 0.66)``.
    quantiles : sequence of float, optional
        Increasing quantiles strictly between 0 and 1, instead of ``cuts``.
    names : sequence of str, default=("intent_low", "intent_medium", "intent_high")
        Segment names, lowest scores first; one more than the cuts.
    label : str, default="P(purchase)"
        How reasons name the score, e.g. ``IntentFrame.label`` (``"P(purchase in 7d)"``).
    user_col : str, default="user_id"

    Returns
    -------
    DataFrame
        ``user_col``, ``segment``, ``entered_at`` (UTC) and ``reason`` (``"P(purchase in 7d) =
        0.71 >= 0.66"``), ordered by segment (highest first) then user. ``attrs``: ``segments``,
        ``n_users``, ``as_of``, ``hashes`` (SHA-256 of each segment's rule, for
        :func:`segkit.membership.export_membership`) and ``cuts``.

    Examples
    --------
    >>> m = intent_segments(["a", "b", "c"], [0.9, 0.5, 0.1], as_of="2024-02-01", label="P(purchase in 7d)")
    >>> m[["user_id", "segment", "reason"]].values.tolist()  # doctest: +NORMALIZE_WHITESPACE
    [['a', 'intent_high', 'P(purchase in 7d) = 0.90 >= 0.66'],
     ['b', 'intent_medium', '0.33 <= P(purchase in 7d) = 0.50 < 0.66'],
     ['c', 'intent_low', 'P(purchase in 7d) = 0.10 < 0.33']]
    """
    if cuts is not None and quantiles is not None:
        raise ParameterError("quantiles", quantiles, message="Pass cuts= (probabilities) or quantiles= (shares of "
                             "users), not both")
    mode = "quantiles" if quantiles is not None else "cuts"
    raw = quantiles if quantiles is not None else (cuts if cuts is not None else (0.33, 0.66))
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Iterable):
        raise ParameterError(mode, raw, "an increasing list of numbers strictly between 0 and 1")
    levels = list(raw)
    for v in levels:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 < float(v) < 1:
            raise ParameterError(mode, v, message=f"Parameter {mode!r} got {v!r}; each must be a number strictly "
                                 "between 0 and 1")
    if not levels or any(b <= a for a, b in zip(levels, levels[1:])):
        raise ParameterError(mode, levels, "a non-empty, strictly increasing list of numbers between 0 and 1")
    if isinstance(names, str) or len(list(names)) != len(levels) + 1:
        raise ParameterError("names", names, message=f"Parameter 'names' needs {len(levels) + 1} segment names "
                             f"(one more than the {len(levels)} {mode}), lowest first")
    names = [str(n) for n in names]
    if len(set(names)) != len(names) or any(not n for n in names):
        raise ParameterError("names", names, "distinct, non-empty segment names")
    ts = _utc(as_of, "as_of")
    users = pd.Series(np.asarray(user_ids, dtype=object).ravel()).astype("string")
    s = np.asarray(scores, dtype="float64").ravel()
    if len(s) != len(users):
        raise ParameterError("scores", f"{len(s)} values", message=f"scores has {len(s):,} values but user_ids has "
                             f"{len(users):,}")
    if users.isna().any():
        raise ParameterError("user_ids", "missing", message="user_ids has missing values")
    if users.duplicated().any():
        dup = users[users.duplicated()].iloc[0]
        raise ParameterError("user_ids", dup, message=f"user_ids repeats {dup!r}; one score per user")
    if np.isnan(s).any() or (s < 0).any() or (s > 1).any():
        raise ParameterError("scores", "values outside [0, 1]", message="scores must be probabilities in [0, 1] "
                             "without NaN")
    if mode == "quantiles":
        if not len(s):
            raise ParameterError("scores", "empty", message="quantile cuts need at least one score")
        cut_values = [round(float(np.quantile(s, q)), 4) for q in levels]
        if any(b <= a for a, b in zip(cut_values, cut_values[1:])):
            raise ParameterError("quantiles", levels, message=f"Quantiles {levels} of the scores give cuts "
                                 f"{cut_values} that are not increasing (many tied scores); pass cuts= instead")
    else:
        cut_values = [float(c) for c in levels]
    seg = np.searchsorted(np.asarray(cut_values), s, side="right")
    lab = str(label)
    reasons = []
    for v, k in zip(s, seg):
        if k == 0:
            reasons.append(f"{lab} = {_fmt_cmp(v, cut_values[0], '<')} < {cut_values[0]:g}")
        elif k == len(cut_values):
            reasons.append(f"{lab} = {_fmt_cmp(v, cut_values[-1], '>=')} >= {cut_values[-1]:g}")
        else:
            lo, hi = cut_values[k - 1], cut_values[k]
            shown = _fmt_cmp(v, lo, ">=")
            shown = shown if float(shown) < float(f"{hi:g}") else _fmt_cmp(v, hi, "<")
            reasons.append(f"{lo:g} <= {lab} = {shown} < {hi:g}")
    if mode == "quantiles":
        qs = [0.0, *[float(q) for q in levels], 1.0]
        suffix = [f" (score percentiles {qs[k] * 100:g}-{qs[k + 1] * 100:g})" for k in range(len(levels) + 1)]
        reasons = [r + suffix[k] for r, k in zip(reasons, seg)]
    order_names = names[::-1]
    df = pd.DataFrame({user_col: users, "segment": pd.array(np.asarray(names, dtype=object)[seg], dtype="string"),
                       "reason": pd.array(reasons, dtype="string"), "_k": -seg})
    df = df.sort_values(["_k", user_col], kind="stable", ignore_index=True).drop(columns="_k")
    df.insert(2, "entered_at", pd.Series([ts] * len(df), dtype="datetime64[us, UTC]"))
    hashes = {}
    bounds = [None, *cut_values, None]
    for k, name in enumerate(names):
        hashes[name] = _rule_hash({"kind": "intent_score", "segment": name, "label": lab, "lower": bounds[k],
                                   "upper": bounds[k + 1], "mode": mode,
                                   "levels": [float(v) for v in levels]})
    df.attrs.update({"segments": order_names, "n_users": int(len(users)), "as_of": ts,
                     "hashes": {n: hashes[n] for n in order_names}, "cuts": cut_values})
    return df


def intent_by_group(scores: pd.Series, y: pd.Series | None, groups: Data, *, by: str = "persona",
                    user_col: str = "user_id") -> pd.DataFrame:
    """Per group of users (say, planted personas): users, mean and median score, observed rate.

    Parameters
    ----------
    scores : Series
        Probabilities indexed by user (:attr:`IntentReport.scores`).
    y : Series, optional
        Labels indexed by user (``split.test.y``); adds ``observed_rate``.
    groups : DataFrame, Parquet path or Ibis table
        One row per user with ``user_col`` and ``by`` (``Shop.truth``).
    by : str, default="persona"
    user_col : str, default="user_id"

    Returns
    -------
    DataFrame
        Index ``by`` (groups present among the scored users, by mean score, highest first):
        ``users``, ``mean_score``, ``median_score`` and ``observed_rate``.

    Examples
    --------
    >>> s = pd.Series([0.9, 0.2, 0.1], index=["a", "b", "c"])
    >>> truth = pd.DataFrame({"user_id": ["a", "b", "c"], "persona": ["buyer", "browser", "browser"]})
    >>> intent_by_group(s, None, truth)["mean_score"].round(2).to_dict()
    {'buyer': 0.9, 'browser': 0.15}
    """
    if not isinstance(scores, pd.Series):
        raise ParameterError("scores", type(scores).__name__, "a Series of scores indexed by user")
    g = groups if isinstance(groups, pd.DataFrame) else to_pandas(as_table(groups))
    check_columns(g.columns, [user_col, by], what="groups table")
    keys = g[user_col].astype(str)
    if keys.duplicated().any():
        raise SchemaError([{"column": user_col, "check": "unique", "count": int(keys.duplicated().sum()),
                            "examples": None, "message": f"groups table repeats users in {user_col!r}"}],
                          title="groups table failed validation")
    label_of = pd.Series(g[by].astype(object).where(g[by].notna(), "(missing)").astype(str).to_numpy(),
                         index=keys.to_numpy())
    idx = scores.index.astype(str)
    df = pd.DataFrame({"score": scores.to_numpy(dtype="float64"),
                       by: label_of.reindex(idx).fillna("(not in groups)").to_numpy()}, index=idx)
    if y is not None:
        if not isinstance(y, pd.Series):
            raise ParameterError("y", type(y).__name__, "a Series of labels indexed by user (or None)")
        yy = y.copy()
        yy.index = yy.index.astype(str)
        df["y"] = yy.reindex(idx).to_numpy(dtype="float64")
    agg = df.groupby(by).agg(users=("score", "size"), mean_score=("score", "mean"), median_score=("score", "median"))
    if y is not None:
        agg["observed_rate"] = df.groupby(by)["y"].mean()
    return agg.sort_values("mean_score", ascending=False, kind="stable")


# --------------------------------------------------------------------------------------------
# UCI Online Shoppers
# --------------------------------------------------------------------------------------------

_UCI_NUMERIC = ("Administrative", "Administrative_Duration", "Informational", "Informational_Duration",
                "ProductRelated", "ProductRelated_Duration", "BounceRates", "ExitRates", "PageValues", "SpecialDay")
_UCI_CATEGORICAL = ("Month", "OperatingSystems", "Browser", "Region", "TrafficType", "VisitorType")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_UCI_FILE = "online_shoppers_intention.csv"


def load_online_shoppers(path: str | Path) -> tuple[pd.DataFrame, pd.Series]:
    """The UCI Online Shoppers Purchasing Intention table as ``(X, y)``.

    One row per *session* (12,330; no user ids, no timestamps: a time-based split is not
    possible, split with a stratified random split and a fixed seed). ``y`` is ``Revenue``
    (1 = the session ended in a purchase, about 15 %).

    Encoding: the ten page-count, duration and rate columns are float; ``Weekend`` is 0/1;
    ``Month`` (``"June"`` read as ``"Jun"``), ``VisitorType`` and the integer codes
    ``OperatingSystems``, ``Browser``, ``Region`` and ``TrafficType`` are categorical (nominal
    codes, one-hot encoded by :class:`IntentModel`, not treated as numbers).

    Parameters
    ----------
    path : str or Path
        The CSV file or the folder that holds ``online_shoppers_intention.csv``.

    Returns
    -------
    X : DataFrame
        17 feature columns, index ``session`` (row number).
    y : Series
        ``Revenue`` as int8.

    Raises
    ------
    ParameterError
        The file does not exist.
    SchemaError
        A column is missing, or ``Revenue`` / ``Weekend`` / ``Month`` hold unexpected values.

    Examples
    --------
    >>> X, y = load_online_shoppers("../shared/data/uci_online_shoppers")  # doctest: +SKIP
    >>> X.shape, round(y.mean(), 3)  # doctest: +SKIP
    ((12330, 17), 0.155)
    """
    p = Path(path)
    if p.is_dir():
        p = p / _UCI_FILE
    if not p.exists():
        raise ParameterError("path", str(path), message=f"Online Shoppers file not found: {str(p)!r} (expected "
                             f"{_UCI_FILE} or the folder that holds it)")
    df = pd.read_csv(p)
    check_columns(df.columns, [*_UCI_NUMERIC, *_UCI_CATEGORICAL, "Weekend", "Revenue"], what="Online Shoppers table")

    def flag(col: str) -> pd.Series:
        text = df[col].astype(str).str.strip().str.upper()
        bad = ~text.isin(["TRUE", "FALSE"])
        if bad.any():
            raise SchemaError([{"column": col, "check": "boolean", "count": int(bad.sum()),
                                "examples": df.loc[bad, [col]].head(5),
                                "message": f"Column {col!r} must be TRUE/FALSE; {int(bad.sum()):,} other value(s)"}],
                              title="Online Shoppers table failed validation")
        return (text == "TRUE").astype("int8")

    X = pd.DataFrame(index=pd.RangeIndex(len(df), name="session"))
    for col in _UCI_NUMERIC:
        X[col] = pd.to_numeric(df[col], errors="raise").astype("float64")
    month = df["Month"].astype(str).str.strip().str[:3].str.title()
    bad = ~month.isin(_MONTHS)
    if bad.any():
        raise SchemaError([{"column": "Month", "check": "month", "count": int(bad.sum()),
                            "examples": df.loc[bad, ["Month"]].head(5),
                            "message": f"Column 'Month' has {int(bad.sum()):,} value(s) that are not month names"}],
                          title="Online Shoppers table failed validation")
    X["Month"] = pd.Categorical(month, categories=list(_MONTHS), ordered=True)
    for col in ("OperatingSystems", "Browser", "Region", "TrafficType"):
        X[col] = pd.Categorical(df[col].astype(str))
    X["VisitorType"] = pd.Categorical(df["VisitorType"].astype(str))
    X["Weekend"] = flag("Weekend")
    y = pd.Series(flag("Revenue").to_numpy(), index=X.index, name="Revenue")
    return X, y


# --------------------------------------------------------------------------------------------
# Doctest helpers
# --------------------------------------------------------------------------------------------


def _toy_data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"carts": rng.poisson(1, 200).astype(float), "visits": rng.poisson(3, 200).astype(float)})
    y = pd.Series((X["carts"] + rng.normal(0, 0.7, 200) > 1.5).astype(int))
    return X, y


@functools.lru_cache(maxsize=1)
def _toy_report() -> IntentReport:
    X, y = _toy_data()
    return evaluate_intent(IntentModel("logistic", param_grid={"C": [1.0]}).fit(X, y), X, y, n_repeats=2)
