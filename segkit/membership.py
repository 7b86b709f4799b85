"""What comes out of the segment engine: overlaps, profiles, makeup, scroll maps and the export.

Every function here reads a *membership table*, the output of
:func:`segkit.segments.evaluate_segments`: one row per (user, segment) member with columns
``user_id``, ``segment``, ``entered_at`` (UTC) and ``reason``. Its ``attrs`` carry ``segments``
(names in definition order, empty segments included), ``n_users``, ``as_of`` and ``hashes``
(:func:`segkit.segments.definition_hash` per segment). Pandas drops ``attrs`` in many operations
(``concat``, ``read_csv``, ...): without them segments are listed in order of first appearance,
and :func:`export_membership` needs ``definitions=``. :func:`read_membership` restores them.

Describing segments
-------------------
:func:`segment_overlaps` / :func:`overlap_matrix` / :func:`plot_overlaps`
    Users in both of two segments, Jaccard index and the (asymmetric) share of A also in B.
:func:`segment_profiles` / :func:`plot_profiles`
    Per segment, and for all users, the mean or median of the main features, with an index
    (segment / all users) that says what characterises each segment.
:func:`segment_makeup` / :func:`plot_makeup`
    Per segment the share of its members from each planted persona (or any truth label).
:func:`scroll_depth_heatmap` / :func:`plot_scroll_heatmap`
    Per page type, the share of page views reaching each scroll depth.

Users are compared as text (``str(user_id)``) and every output is ordered: segments in definition
order then the ``"all users"`` row, labels and page types sorted.

Export for activation
---------------------
:func:`export_membership` writes one row per member, sorted by segment (definition order) then
``user_id``, in CSV, Parquet or JSON Lines, with this schema (version 1):

===================  ==================================  ==========================================
column               CSV / JSON Lines                    Parquet
===================  ==================================  ==========================================
``user_id``          text                                string
``segment``          text                                string
``entered_at``       ISO 8601 UTC text, microseconds,    timestamp[us, tz=UTC]
                     ``2024-01-01T10:00:00.000000Z``
``reason``           text, may be null                   string
``definition_hash``  64 hex digits (SHA-256 of the       string
                     segment's canonical definition)
``exported_at``      ISO 8601 UTC text, same value on    timestamp[us, tz=UTC]
                     every row
``run_id``           text, null when not given           string
===================  ==================================  ==========================================

A null is an empty field in CSV and ``null`` in JSON Lines; an empty ``reason`` is written as null
in every format (CSV could not tell the two apart). Times keep microseconds (finer digits are
dropped). Files are UTF-8; JSON Lines has one object per line, keys in the order above. Beside
the data file, ``<file>.meta.json`` records::

    {"schema": "segkit.membership", "schema_version": 1, "format": "csv",
     "file": "members.csv", "n_rows": 42, "sha256": "<of the data file>",
     "exported_at": "...Z", "run_id": null, "as_of": "...Z" or null, "n_users": 1000 or null,
     "columns": [{"name": "user_id", "type": "string"}, ...],
     "segments": [{"name": "cart_abandoners", "definition_hash": "...", "n_users": 17}, ...]}

``segments`` lists every exported definition in definition order, empty ones included (so an
activation job can clear an audience that became empty). :func:`read_membership` reads any of
the three formats back into the same dtypes (``string`` columns, ``datetime64[us, UTC]``
timestamps) and checks them against the sidecar: columns, row count, segment sizes, every row's
``definition_hash`` and the file's SHA-256.

Examples
--------
>>> import pandas as pd
>>> m = pd.DataFrame({"user_id": ["a", "b", "b"], "segment": ["x", "x", "y"]})
>>> overlap_matrix(m, metric="count").values.tolist()
[[2, 1], [1, 1]]
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import ibis
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .engine import Data, as_table, to_pandas
from .errors import ParameterError, SchemaError, SegkitError, check_columns, did_you_mean, format_allowed
from .segments import _coerce_definitions, definition_hash

__all__ = [
    "combine_memberships",
    "labels_to_membership",
    "ALL_USERS",
    "DEFAULT_PROFILE_COLUMNS",
    "SCROLL_EVENTS",
    "EXPORT_COLUMNS",
    "EXPORT_FORMATS",
    "SCHEMA_VERSION",
    "segment_overlaps",
    "overlap_matrix",
    "plot_overlaps",
    "segment_profiles",
    "plot_profiles",
    "segment_makeup",
    "plot_makeup",
    "scroll_depth_heatmap",
    "plot_scroll_heatmap",
    "export_membership",
    "read_membership",
]

#: Label of the row that describes every user (no segment name can contain a space).
ALL_USERS = "all users"
#: Features :func:`segment_profiles` shows by default (those present in the feature table).
DEFAULT_PROFILE_COLUMNS: tuple[str, ...] = (
    "n_sessions",
    "visits_per_week",
    "recency_days",
    "pages_per_session",
    "avg_session_s",
    "total_time_s",
    "bounce_rate",
    "avg_max_scroll_depth",
    "product_views",
    "searches",
    "add_to_carts",
    "cart_abandonment",
    "purchases",
    "revenue",
    "conversion_rate",
)
#: Canonical scroll events of the default taxonomy (each also carries ``scroll_depth``).
SCROLL_EVENTS: tuple[str, ...] = ("scroll_depth_25", "scroll_depth_50", "scroll_depth_75", "scroll_depth_100")
#: Export column -> type in the sidecar (``string`` or ``timestamp[us, UTC]``).
EXPORT_COLUMNS: dict[str, str] = {
    "user_id": "string",
    "segment": "string",
    "entered_at": "timestamp[us, UTC]",
    "reason": "string",
    "definition_hash": "string",
    "exported_at": "timestamp[us, UTC]",
    "run_id": "string",
}
EXPORT_FORMATS: tuple[str, ...] = ("csv", "parquet", "jsonl")
SCHEMA_NAME = "segkit.membership"
SCHEMA_VERSION = 1

Metric = Literal["jaccard", "count", "share"]
Stat = Literal["mean", "median"]
ScrollHow = Literal["reached", "distribution"]
ExportFormat = Literal["csv", "parquet", "jsonl"]

_METRICS: dict[str, str] = {"jaccard": "jaccard", "count": "n_both", "share": "share_a_in_b"}
_STATS: tuple[str, ...] = ("mean", "median")
_HOWS: tuple[str, ...] = ("reached", "distribution")
_SUFFIXES: dict[str, str] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
                             ".ndjson": "jsonl"}
_ISO = "%Y-%m-%dT%H:%M:%S.%fZ"
_MISSING = "(missing)"
_NOT_IN_TRUTH = "(not in truth)"
_STRING_COLUMNS = [c for c, t in EXPORT_COLUMNS.items() if t == "string"]
_TIME_COLUMNS = [c for c, t in EXPORT_COLUMNS.items() if t != "string"]


# --------------------------------------------------------------------------------------------
# Shared checks
# --------------------------------------------------------------------------------------------


def _check_membership(membership: Any, *, user_col: str, extra: Sequence[str] = ()) -> None:
    """Membership must be a DataFrame with the user and segment columns and no nulls in them."""
    if not isinstance(membership, pd.DataFrame):
        raise ParameterError("membership", type(membership).__name__,
                             message=f"membership must be a pandas DataFrame (the output of evaluate_segments), "
                             f"got {type(membership).__name__}")
    check_columns(membership.columns, [user_col, "segment", *extra], what="membership table")
    failures = []
    for col in (user_col, "segment"):
        null = membership[col].isna().to_numpy()
        if null.any():
            failures.append({"column": col, "check": "not_null", "count": int(null.sum()),
                             "examples": membership.loc[null].head(5),
                             "message": f"Column {col!r} of the membership table has {int(null.sum()):,} null value(s)"})
    if failures:
        raise SchemaError(failures, title="membership table failed validation")


def _known_segments(membership: pd.DataFrame) -> list[str]:
    """``attrs["segments"]`` (definition order) then any other segment present, by first appearance."""
    names = [str(s) for s in membership.attrs.get("segments") or []]
    seen = set(names)
    for s in membership["segment"].astype(str).unique():
        if s not in seen:
            names.append(s)
            seen.add(s)
    return names


def _segment_order(membership: pd.DataFrame, segments: Iterable[str] | str | None) -> list[str]:
    known = _known_segments(membership)
    if segments is None:
        return known
    chosen = [segments] if isinstance(segments, str) else list(segments)
    if not chosen:
        raise ParameterError("segments", chosen, message="segments must name at least one segment")
    for name in chosen:
        if not isinstance(name, str) or name not in known:
            hint = did_you_mean(name, known) if isinstance(name, str) else ""
            raise ParameterError("segments", name, known, message=f"Unknown segment {name!r};{hint} "
                                 f"Known segments: {format_allowed(known)}")
    dup = [n for i, n in enumerate(chosen) if n in chosen[:i]]
    if dup:
        raise ParameterError("segments", dup[0], message=f"Segment {dup[0]!r} is listed twice in segments")
    return chosen


def _members(membership: pd.DataFrame, user_col: str, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Sorted distinct user ids (as text) per segment."""
    seg = membership["segment"].astype(str).to_numpy(dtype=object)
    users = membership[user_col].astype(str).to_numpy(dtype=object)
    out = {}
    for name in names:
        out[name] = np.array(sorted(set(users[seg == name])), dtype=object)
    return out


def _frame(data: Any, what: str) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, (str, Path, ibis.Table)):
        return to_pandas(as_table(data))
    raise ParameterError(what.replace(" ", "_"), type(data).__name__,
                         message=f"Expected the {what} as a pandas DataFrame, a Parquet path or an Ibis table, "
                         f"got {type(data).__name__}")


def _unique_users(frame: pd.DataFrame, user_col: str, what: str) -> pd.Series:
    check_columns(frame.columns, [user_col], what=what)
    users = frame[user_col].astype(str)
    dup = users.duplicated().to_numpy() | frame[user_col].isna().to_numpy()
    if dup.any():
        raise SchemaError([{"column": user_col, "check": "unique", "count": int(dup.sum()),
                            "examples": frame.loc[dup, [user_col]].head(5),
                            "message": f"Column {user_col!r} of the {what} must be unique and not null; "
                            f"{int(dup.sum()):,} repeated or null value(s)"}], title=f"{what} failed validation")
    return users


def _check_choice(name: str, value: Any, allowed: Sequence[str]) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ParameterError(name, value, list(allowed))


def _new_axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=size)
    return ax


# --------------------------------------------------------------------------------------------
# Overlaps
# --------------------------------------------------------------------------------------------


def segment_overlaps(membership: pd.DataFrame, *, segments: Iterable[str] | None = None,
                     user_col: str = "user_id") -> pd.DataFrame:
    """How much every pair of segments shares: users in both, Jaccard index, share of A in B.

    Parameters
    ----------
    membership : DataFrame
        Output of :func:`segkit.segments.evaluate_segments` (a user column and ``segment``).
    segments : list of str, optional
        Segments to compare, in order; default: all, in definition order
        (``membership.attrs["segments"]``, else first appearance). Unknown names are an error.
    user_col : str, default="user_id"
        The membership's user column.

    Returns
    -------
    DataFrame
        One row per ordered pair (A, B), A == B included, ordered by A then B: ``segment_a``,
        ``segment_b``, ``n_a``, ``n_b`` (distinct members), ``n_both`` (members of both),
        ``jaccard`` (``n_both / (n_a + n_b - n_both)``, NaN when both are empty) and
        ``share_a_in_b`` (``n_both / n_a``: the share of A's members also in B; NaN when A is
        empty). ``jaccard`` is symmetric, ``share_a_in_b`` is not.

    Raises
    ------
    SchemaError
        A required column is missing or holds nulls.
    ParameterError
        An unknown segment name.

    Examples
    --------
    >>> m = pd.DataFrame({"user_id": ["a", "b", "c", "b", "c"], "segment": ["x", "x", "x", "y", "y"]})
    >>> print(segment_overlaps(m).round(3).to_string(index=False))
    segment_a segment_b  n_a  n_b  n_both  jaccard  share_a_in_b
            x         x    3    3       3    1.000         1.000
            x         y    3    2       2    0.667         0.667
            y         x    2    3       2    0.667         1.000
            y         y    2    2       2    1.000         1.000
    """
    _check_membership(membership, user_col=user_col)
    names = _segment_order(membership, segments)
    members = _members(membership, user_col, names)
    sets = {n: set(members[n]) for n in names}
    rows = []
    for a in names:
        for b in names:
            n_a, n_b = len(sets[a]), len(sets[b])
            both = len(sets[a] & sets[b])
            union = n_a + n_b - both
            rows.append((a, b, n_a, n_b, both, both / union if union else np.nan, both / n_a if n_a else np.nan))
    cols = ["segment_a", "segment_b", "n_a", "n_b", "n_both", "jaccard", "share_a_in_b"]
    out = pd.DataFrame(rows, columns=cols)
    return out.astype({"segment_a": "string", "segment_b": "string", "n_a": "int64", "n_b": "int64",
                       "n_both": "int64", "jaccard": "float64", "share_a_in_b": "float64"})


def overlap_matrix(membership: pd.DataFrame, metric: Metric = "jaccard", *, segments: Iterable[str] | None = None,
                   user_col: str = "user_id") -> pd.DataFrame:
    """Square segment-by-segment overlap table, rows and columns in definition order.

    Parameters
    ----------
    membership : DataFrame
        Output of :func:`segkit.segments.evaluate_segments`.
    metric : {"jaccard", "count", "share"}, default="jaccard"
        ``jaccard``: Jaccard index (symmetric, 1 on the diagonal); ``count``: users in both (the
        diagonal holds the sizes); ``share``: the share of the *row* segment's members that are
        also in the *column* segment (asymmetric). See :func:`segment_overlaps`.
    segments : list of str, optional
        Segments to show, in order; default all.
    user_col : str, default="user_id"
        The membership's user column.

    Returns
    -------
    DataFrame
        Index ``segment_a`` (rows), columns ``segment_b``; int64 for ``count``, float64 otherwise.

    Examples
    --------
    >>> m = pd.DataFrame({"user_id": ["a", "b", "c", "b", "c"], "segment": ["x", "x", "x", "y", "y"]})
    >>> overlap_matrix(m, "share").round(2).values.tolist()
    [[1.0, 0.67], [1.0, 1.0]]
    """
    _check_choice("metric", metric, list(_METRICS))
    long = segment_overlaps(membership, segments=segments, user_col=user_col)
    names = list(dict.fromkeys(long["segment_a"].astype(str)))
    square = long.assign(segment_a=long["segment_a"].astype(str), segment_b=long["segment_b"].astype(str)).pivot(
        index="segment_a", columns="segment_b", values=_METRICS[metric])
    square = square.reindex(index=names, columns=names)
    square.index.name, square.columns.name = "segment_a", "segment_b"
    return square.astype("int64" if metric == "count" else "float64")


def plot_overlaps(membership: pd.DataFrame, metric: Metric = "jaccard", *, segments: Iterable[str] | None = None,
                  user_col: str = "user_id", ax: Axes | None = None) -> Figure:
    """Heatmap of :func:`overlap_matrix`, every cell annotated; returns the Figure.

    Parameters
    ----------
    membership : DataFrame
        Output of :func:`segkit.segments.evaluate_segments`.
    metric : {"jaccard", "count", "share"}, default="jaccard"
        See :func:`overlap_matrix`; for ``share`` read a row: "this share of the row segment is
        also in the column segment".
    segments : list of str, optional
        Segments to show, in order; default all.
    user_col : str, default="user_id"
        The membership's user column.
    ax : Axes, optional
        Where to draw; a new figure by default.

    Returns
    -------
    Figure

    Examples
    --------
    >>> m = pd.DataFrame({"user_id": ["a", "b", "b"], "segment": ["x", "x", "y"]})
    >>> fig = plot_overlaps(m, "count")
    >>> fig.axes[0].get_title()
    'Segment overlap: users in both'
    """
    import seaborn as sns

    square = overlap_matrix(membership, metric, segments=segments, user_col=user_col)
    n = len(square)
    ax = _new_axes(ax, (max(5.0, 0.9 * n + 3), max(3.5, 0.6 * n + 1.5)))
    titles = {"jaccard": "Segment overlap: Jaccard index", "count": "Segment overlap: users in both",
              "share": "Share of the row segment also in the column segment"}
    kwargs: dict[str, Any] = {"vmin": 0.0, "vmax": 1.0} if metric != "count" else {}
    sns.heatmap(square.astype("float64"), annot=True, fmt=".0f" if metric == "count" else ".2f", cmap="Blues",
                linewidths=0.5, cbar_kws={"label": {"count": "users", "jaccard": "Jaccard", "share": "share"}[metric]},
                ax=ax, **kwargs)
    ax.set_title(titles[metric])
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.tick_params(axis="x", rotation=35)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    ax.figure.tight_layout()
    return ax.figure


# --------------------------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------------------------


def segment_profiles(membership: pd.DataFrame, features: Data, *, columns: Sequence[str] | None = None,
                     stat: Stat = "mean", segments: Iterable[str] | None = None,
                     user_col: str = "user_id") -> pd.DataFrame:
    """What characterises each segment: its size, the mean (or median) of the main features, and
    an index against all users.

    Parameters
    ----------
    membership : DataFrame
        Output of :func:`segkit.segments.evaluate_segments`.
    features : DataFrame, Parquet path or Ibis table
        One row per user (:func:`segkit.features.build_user_features`); "all users" means its rows.
    columns : list of str, optional
        Numeric (or boolean, read as 0/1) features to profile; default: those of
        :data:`DEFAULT_PROFILE_COLUMNS` present in the table (sessions, visits per week, recency,
        pages per session, time on site, scroll depth, product views, searches, carts, purchases,
        revenue, conversion).
    stat : {"mean", "median"}, default="mean"
        Statistic per segment, over members with a non-missing value. The mean is the default
        because sparse counts (purchases, carts) have a median of 0 for all users, which leaves
        their index undefined.
    segments : list of str, optional
        Segments to profile, in order; default all, in definition order.
    user_col : str, default="user_id"
        User column of both tables.

    Returns
    -------
    DataFrame
        Index ``segment`` (the segments, then ``"all users"``); columns ``n_users`` (members;
        the feature table's rows for all users), ``share`` (members / feature-table users), one
        column per feature with the statistic, then ``<feature>_index``: the segment's statistic
        divided by all users' (1.0 = like everybody, 2.0 = twice as high; NaN when the all-users
        value is 0 or missing). Members missing from the feature table count in ``n_users`` but
        not in the statistics. ``attrs["stat"]`` and ``attrs["columns"]`` record the choice.

    Raises
    ------
    SchemaError
        The membership or feature table misses a column, or the feature table repeats a user.
    ParameterError
        Unknown segment, non-numeric feature, unknown ``stat``, no default feature present.

    Examples
    --------
    >>> m = pd.DataFrame({"user_id": ["a", "b"], "segment": ["x", "x"]})
    >>> f = pd.DataFrame({"user_id": ["a", "b", "c", "d"], "purchases": [1, 3, 0, 0]})
    >>> p = segment_profiles(m, f, columns=["purchases"])
    >>> p[["n_users", "purchases", "purchases_index"]].values.tolist()
    [[2.0, 2.0, 2.0], [4.0, 1.0, 1.0]]
    """
    _check_membership(membership, user_col=user_col)
    _check_choice("stat", stat, _STATS)
    names = _segment_order(membership, segments)
    F = _frame(features, "feature table")
    users = _unique_users(F, user_col, "feature table")
    if columns is None:
        cols = [c for c in DEFAULT_PROFILE_COLUMNS if c in F.columns]
        if not cols:
            raise ParameterError("columns", None, message="None of the default profile features "
                                 f"{format_allowed(DEFAULT_PROFILE_COLUMNS)} is in the feature table; pass columns=[...]. "
                                 f"Available: {format_allowed([c for c in F.columns if c != user_col])}")
    else:
        cols = [columns] if isinstance(columns, str) else list(columns)
        if not cols:
            raise ParameterError("columns", cols, message="columns must name at least one feature")
        check_columns(F.columns, cols, what="feature table")
    for c in cols:
        if c == user_col or not (pd.api.types.is_numeric_dtype(F[c]) or pd.api.types.is_bool_dtype(F[c])):
            raise ParameterError("columns", c, message=f"Feature {c!r} is not numeric ({F[c].dtype}); "
                                 "profiles need numeric or boolean features")
    X = pd.DataFrame({c: F[c].astype("float64").to_numpy() for c in cols}, index=pd.Index(users.to_numpy(dtype=object)))
    members = _members(membership, user_col, names)
    total = len(X)
    rows, sizes = [], []
    for name in names:
        part = X.reindex(members[name])
        rows.append(getattr(part, stat)(skipna=True) if len(part) else pd.Series(np.nan, index=cols))
        sizes.append(len(members[name]))
    base = getattr(X, stat)(skipna=True) if total else pd.Series(np.nan, index=cols)
    rows.append(base)
    sizes.append(total)
    values = pd.DataFrame(rows).reset_index(drop=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = base.notna() & (base != 0)
        index = values.div(base.where(ok, np.nan), axis=1)
    out = pd.DataFrame({"n_users": pd.Series(sizes, dtype="int64"),
                        "share": pd.Series([s / total if total else np.nan for s in sizes], dtype="float64")})
    out = pd.concat([out, values.astype("float64"), index.astype("float64").add_suffix("_index")], axis=1)
    out.index = pd.Index(names + [ALL_USERS], name="segment")
    out.attrs.update({"stat": stat, "columns": cols})
    return out


def _profile_features(profiles: pd.DataFrame) -> list[str]:
    if not isinstance(profiles, pd.DataFrame):
        raise ParameterError("profiles", type(profiles).__name__, message="profiles must be the DataFrame "
                             "segment_profiles returns")
    feats = [c for c in profiles.columns if not str(c).endswith("_index") and f"{c}_index" in profiles.columns]
    if not feats:
        raise SchemaError([{"column": "<feature>_index", "check": "missing_column", "count": None, "examples": None,
                            "message": "profiles has no '<feature>_index' columns; pass the output of segment_profiles"}],
                          title="profiles table is missing columns")
    return feats


def plot_profiles(profiles: pd.DataFrame, *, ax: Axes | None = None) -> Figure:
    """Heatmap of the profile index: log2(segment / all users), centred on 0, annotated with the
    segment's own statistic.

    Red cells are features where the segment is above all users (log2 = 1: twice as high), blue
    cells below (a segment value of 0 takes the darkest blue); the colour scale ends at +-3
    (8 times). Empty cells have no defined index (the all-users value is 0 or missing).

    Parameters
    ----------
    profiles : DataFrame
        Output of :func:`segment_profiles` (the ``"all users"`` row is left out of the picture).
    ax : Axes, optional
        Where to draw; a new figure by default.

    Returns
    -------
    Figure

    Examples
    --------
    >>> m = pd.DataFrame({"user_id": ["a", "b"], "segment": ["x", "x"]})
    >>> f = pd.DataFrame({"user_id": ["a", "b", "c", "d"], "purchases": [1, 3, 0, 0]})
    >>> fig = plot_profiles(segment_profiles(m, f, columns=["purchases"]))
    >>> len(fig.axes[0].texts)
    1
    """
    import seaborn as sns

    feats = _profile_features(profiles)
    body = profiles.drop(index=[ALL_USERS], errors="ignore")
    if body.empty:
        raise ParameterError("profiles", None, message="profiles has no segment rows to plot")
    ratio = body[[f"{c}_index" for c in feats]].to_numpy(dtype="float64")
    logs = np.full(ratio.shape, np.nan)
    positive = ratio > 0
    logs[positive] = np.log2(ratio[positive])
    finite = np.abs(logs[np.isfinite(logs)])
    lim = float(min(3.0, max(1.0, finite.max()))) if finite.size else 1.0
    logs[ratio == 0] = -lim  # none of the segment has it: as far below as the scale goes
    heat = pd.DataFrame(logs, index=body.index, columns=feats)
    annot = np.vectorize(lambda v: "" if pd.isna(v) else f"{v:.3g}", otypes=[object])(body[feats].to_numpy(dtype="float64"))
    n = len(body)
    ax = _new_axes(ax, (max(6.0, 0.75 * len(feats) + 3), max(3.0, 0.5 * n + 2)))
    if "n_users" in body.columns:
        heat.index = [f"{s} (n={int(k):,})" for s, k in zip(body.index, body["n_users"])]
    sns.heatmap(heat, annot=annot, fmt="", cmap="RdBu_r", center=0.0, vmin=-lim, vmax=lim, linewidths=0.5,
                cbar_kws={"label": "log2(segment / all users)"}, ax=ax, annot_kws={"fontsize": 8})
    stat = profiles.attrs.get("stat", "statistic")
    ax.set_title(f"Segment profiles: {stat} per segment, coloured by its ratio to all users")
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.tick_params(axis="x", rotation=35)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    ax.figure.tight_layout()
    return ax.figure


# --------------------------------------------------------------------------------------------
# Makeup
# --------------------------------------------------------------------------------------------


def segment_makeup(membership: pd.DataFrame, truth: Data, *, by: str = "persona", normalize: bool = True,
                   segments: Iterable[str] | None = None, user_col: str = "user_id") -> pd.DataFrame:
    """Who is in each segment: the share (or count) of its members per truth label.

    Parameters
    ----------
    membership : DataFrame
        Output of :func:`segkit.segments.evaluate_segments`.
    truth : DataFrame, Parquet path or Ibis table
        One row per user with the label column, e.g. ``Shop.truth`` of
        :func:`segkit.simulate.simulate_shop` (``persona``, ``is_bot``, ``bot_kind`` ...). Its rows
        are the "all users" baseline: filter it to the analysed users (say, those of the feature
        table, without the bots cleaning removed) for a comparable baseline.
    by : str, default="persona"
        Label column of ``truth``; values are compared as text, a missing one is ``"(missing)"``.
    normalize : bool, default=True
        Shares of the row's members (rows sum to 1; NaN for an empty segment) instead of counts.
    segments : list of str, optional
        Segments to show, in order; default all, in definition order.
    user_col : str, default="user_id"
        User column of both tables.

    Returns
    -------
    DataFrame
        Index ``segment`` (the segments, then ``"all users"``); one column per label, sorted
        (``"(missing)"`` last, then ``"(not in truth)"`` for members the truth table lacks, when
        there are any), then ``n_users`` (members). The label columns' name is ``by``.

    Raises
    ------
    SchemaError
        A column is missing (did-you-mean on ``by``) or the truth table repeats a user.
    ParameterError
        Unknown segment, ``normalize`` not a bool.

    Examples
    --------
    >>> m = pd.DataFrame({"user_id": ["a", "b", "c"], "segment": ["x", "x", "x"]})
    >>> truth = pd.DataFrame({"user_id": ["a", "b", "c", "d"], "persona": ["p", "q", "p", "q"]})
    >>> segment_makeup(m, truth).round(3).values.tolist()
    [[0.667, 0.333, 3.0], [0.5, 0.5, 4.0]]
    """
    _check_membership(membership, user_col=user_col)
    if not isinstance(normalize, (bool, np.bool_)):
        raise ParameterError("normalize", normalize, [True, False])
    if not isinstance(by, str) or not by:
        raise ParameterError("by", by, "a column name of the truth table")
    names = _segment_order(membership, segments)
    T = _frame(truth, "truth table")
    check_columns(T.columns, [user_col, by], what="truth table")
    users = _unique_users(T, user_col, "truth table")
    labels = T[by].astype(object).where(T[by].notna(), _MISSING).astype(str)
    label_of = pd.Series(labels.to_numpy(dtype=object), index=pd.Index(users.to_numpy(dtype=object)))
    members = _members(membership, user_col, names)
    per_row = []
    for name in names:
        per_row.append(label_of.reindex(members[name]).fillna(_NOT_IN_TRUTH).to_numpy(dtype=object))
    per_row.append(label_of.to_numpy(dtype=object))
    present = set(labels)
    cols = sorted(present - {_MISSING}) + ([_MISSING] if _MISSING in present else [])
    if any((r == _NOT_IN_TRUTH).any() for r in per_row[:-1]):
        cols.append(_NOT_IN_TRUTH)
    counts = np.array([[int((r == c).sum()) for c in cols] for r in per_row], dtype="int64").reshape(len(per_row), len(cols))
    sizes = counts.sum(axis=1)
    if normalize:
        with np.errstate(divide="ignore", invalid="ignore"):
            values: np.ndarray = counts / sizes[:, None]
    else:
        values = counts
    out = pd.DataFrame(values, index=pd.Index(names + [ALL_USERS], name="segment"), columns=pd.Index(cols, name=by))
    out["n_users"] = sizes.astype("int64")
    return out


def plot_makeup(makeup: pd.DataFrame, *, ax: Axes | None = None) -> Figure:
    """Stacked horizontal bars: each segment's members split by label (shares, summing to 1).

    Parameters
    ----------
    makeup : DataFrame
        Output of :func:`segment_makeup` (shares or counts; counts are turned into shares).
    ax : Axes, optional
        Where to draw; a new figure by default.

    Returns
    -------
    Figure

    Examples
    --------
    >>> m = pd.DataFrame({"user_id": ["a", "b"], "segment": ["x", "x"]})
    >>> truth = pd.DataFrame({"user_id": ["a", "b", "c"], "persona": ["p", "q", "q"]})
    >>> fig = plot_makeup(segment_makeup(m, truth))
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    ['p', 'q']
    """
    import seaborn as sns

    if not isinstance(makeup, pd.DataFrame):
        raise ParameterError("makeup", type(makeup).__name__, message="makeup must be the DataFrame segment_makeup returns")
    labels = [c for c in makeup.columns if c != "n_users"]
    counts = makeup[labels].astype("float64")
    totals = counts.sum(axis=1)
    shares = counts.div(totals.where(totals > 0, np.nan), axis=0).fillna(0.0)
    n = len(shares)
    ax = _new_axes(ax, (9, max(2.5, 0.45 * n + 1.5)))
    palette = sns.color_palette("tab10" if len(labels) <= 10 else "husl", len(labels))
    names = [f"{s} (n={int(k):,})" for s, k in zip(makeup.index, makeup["n_users"])] if "n_users" in makeup.columns \
        else [str(s) for s in makeup.index]
    y = np.arange(n)[::-1]
    left = np.zeros(n)
    for j, label in enumerate(labels):
        width = shares[label].to_numpy()
        ax.barh(y, width, left=left, color=palette[j], label=str(label), edgecolor="white", linewidth=0.5)
        left += width
    ax.set_yticks(y, names)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of members")
    ax.set_title(f"Segment makeup by {makeup.columns.name or 'label'}")
    ax.legend(title=makeup.columns.name, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.figure.tight_layout()
    return ax.figure


# --------------------------------------------------------------------------------------------
# Scroll depth
# --------------------------------------------------------------------------------------------


def _check_bins(bins: Any) -> list[float]:
    allowed = "an increasing sequence of percentages from 0 to 100, e.g. (0, 25, 50, 75, 90, 100)"
    try:
        edges = [float(b) for b in bins]
    except (TypeError, ValueError):
        raise ParameterError("bins", bins, allowed) from None
    if any(isinstance(b, bool) for b in bins) or len(edges) < 2 or edges[0] != 0 or edges[-1] != 100 \
            or any(not math.isfinite(b) for b in edges) or any(b >= c for b, c in zip(edges, edges[1:])):
        raise ParameterError("bins", tuple(bins), allowed)
    return edges


def _name_depth(name: str) -> float | None:
    match = re.search(r"(\d+(?:\.\d+)?)$", name)
    return float(match.group(1)) if match else None


def scroll_depth_heatmap(
    events: Data,
    *,
    by: str = "page_type",
    bins: Sequence[float] = (0, 25, 50, 75, 90, 100),
    how: ScrollHow = "reached",
    scroll_events: Sequence[str] = SCROLL_EVENTS,
    page_view_event: str = "page_view",
    depth_col: str = "scroll_depth",
    user_col: str = "user_id",
    session_col: str = "session_id",
    timestamp_col: str = "timestamp",
    event_col: str = "event",
) -> pd.DataFrame:
    """How far page views scroll, per page type: the share reaching each depth (or per bucket).

    Each scroll event belongs to the page view it follows: the latest ``page_view_event`` of the
    same user and session (``session_col``, when the log has it) at or before the scroll's
    timestamp; a page view at the same instant as a scroll comes first. A page view's depth is the
    deepest of its scroll events (0 without any); scroll events before any page view of their
    session are ignored. Depths are in percent (0-100, the canonical ``scroll_depth``); a scroll
    event whose ``depth_col`` is missing takes the number its name ends with
    (``scroll_depth_75`` -> 75). ``by`` is read from the page view, so it works on cleaned logs
    where only page views carry ``page_type``; a missing value is ``"(missing)"``.

    Parameters
    ----------
    events : DataFrame, Parquet path or Ibis table
        Canonical events (the aggregation runs on the events' backend, DuckDB by default).
    by : str, default="page_type"
        Page-view column to split by.
    bins : sequence of float, default=(0, 25, 50, 75, 90, 100)
        Depth edges in percent, increasing from 0 to 100.
    how : {"reached", "distribution"}, default="reached"
        ``reached``: one column per edge after 0 (``">=25%"``, ...), the share of page views
        whose depth is at least that edge (falls from left to right). ``distribution``: one
        column per bucket (``"0-25%"``, ..., ``"90-100%"``; each includes its lower edge, the
        last also 100), the share whose depth falls in it (rows sum to 1).
    scroll_events : sequence of str, default=SCROLL_EVENTS
        Event names that report scroll depth.
    page_view_event : str, default="page_view"
        Event name of a page view.
    depth_col, user_col, session_col, timestamp_col, event_col : str
        Column names of the event log (``depth_col`` and ``session_col`` may be absent).

    Returns
    -------
    DataFrame
        Index ``by`` (sorted, ``"(missing)"`` last); the share columns, then ``n_page_views``.
        ``attrs["how"]`` records the mode.

    Raises
    ------
    SchemaError
        A required column is missing, or the timestamps are not timestamps.
    ParameterError
        Invalid ``bins``, ``how`` or ``scroll_events``; without ``depth_col`` a scroll event name
        that does not end with its depth.

    Examples
    --------
    >>> ts = pd.to_datetime(["2024-01-01 10:00", "2024-01-01 10:01", "2024-01-01 10:02"], utc=True)
    >>> ev = pd.DataFrame({"user_id": ["a"] * 3, "timestamp": ts,
    ...                    "event": ["page_view", "scroll_depth_50", "page_view"],
    ...                    "page_type": ["blog", None, "blog"], "scroll_depth": [None, 50.0, None]})
    >>> scroll_depth_heatmap(ev, bins=(0, 50, 100)).values.tolist()
    [[0.5, 0.0, 2.0]]
    """
    edges = _check_bins(bins)
    _check_choice("how", how, _HOWS)
    chosen = [scroll_events] if isinstance(scroll_events, str) else list(scroll_events)
    if not chosen or not all(isinstance(e, str) and e for e in chosen):
        raise ParameterError("scroll_events", scroll_events, "a non-empty list of event names")
    for name, value in (("by", by), ("page_view_event", page_view_event), ("depth_col", depth_col),
                        ("user_col", user_col), ("session_col", session_col), ("timestamp_col", timestamp_col),
                        ("event_col", event_col)):
        if not isinstance(value, str) or not value:
            raise ParameterError(name, value, "a non-empty string")
    t = as_table(events)
    check_columns(t.columns, [user_col, timestamp_col, event_col, by], what="event log")
    if not t[timestamp_col].type().is_timestamp():
        raise SchemaError([{"column": timestamp_col, "check": "dtype", "count": None, "examples": None,
                            "message": f"Column {timestamp_col!r} must hold timestamps, got {t[timestamp_col].type()}; "
                            "parse it with segkit.parse_timestamps"}])
    from_name = {e: _name_depth(e) for e in chosen}
    has_depth = depth_col in t.columns
    if not has_depth:
        bad = [e for e, d in from_name.items() if d is None]
        if bad:
            raise ParameterError("scroll_events", bad[0], message=f"The event log has no {depth_col!r} column and "
                                 f"scroll event {bad[0]!r} does not end with its depth (like 'scroll_depth_50')")
    pairs = [(t[event_col] == e, ibis.literal(d, type="float64")) for e, d in from_name.items() if d is not None]
    depth = ibis.cases(*pairs, else_=ibis.null("float64")) if pairs else ibis.null("float64")
    if has_depth:
        depth = ibis.coalesce(t[depth_col].cast("float64"), depth)
    is_pv = t[event_col] == page_view_event
    s = t.filter(is_pv | t[event_col].isin(chosen)).select(
        _u=t[user_col].cast("string"),
        _s=t[session_col].cast("string") if session_col in t.columns else ibis.literal("", type="string"),
        _ts=t[timestamp_col],
        _pv=is_pv.cast("int64"),
        _by=ibis.ifelse(is_pv, t[by].cast("string"), ibis.null("string")),
        _d=ibis.ifelse(is_pv, ibis.null("float64"), depth),
    )
    w = ibis.window(group_by=[s._u, s._s], order_by=[s._ts, ibis.desc(s._pv), s._by], rows=(None, 0))
    s = s.mutate(_n=s._pv.sum().over(w))
    s = s.filter(s._n > 0)
    pv = s.group_by([s._u, s._s, s._n]).aggregate(_by=s._by.max(), _d=s._d.max())
    pv = pv.mutate(_by=pv._by.fill_null(_MISSING), _d=pv._d.fill_null(0.0))
    reached = {f"_c{j}": (pv._d >= edges[j]).cast("int64").sum() for j in range(1, len(edges))}
    agg = to_pandas(pv.group_by("_by").aggregate(_n=pv.count(), **reached))
    order = sorted(agg["_by"].astype(str), key=lambda v: (v == _MISSING, v))
    agg = agg.assign(_by=agg["_by"].astype(str)).set_index("_by").reindex(order)
    n = agg["_n"].to_numpy(dtype="int64")
    c = np.column_stack([n] + [agg[f"_c{j}"].to_numpy(dtype="int64") for j in range(1, len(edges))]) \
        if len(agg) else np.zeros((0, len(edges)), dtype="int64")
    if how == "reached":
        counts = c[:, 1:]
        labels = [f">={e:g}%" for e in edges[1:]]
    else:
        counts = c[:, :-1] - c[:, 1:]  # depth in [edge i, edge i+1)
        counts[:, -1] = c[:, -2]  # the last bucket also holds 100 (and anything above)
        labels = [f"{lo:g}-{hi:g}%" for lo, hi in zip(edges, edges[1:])]
    shares = counts / n[:, None] if len(n) else counts.astype("float64")
    out = pd.DataFrame(shares.astype("float64"), index=pd.Index(order, name=by, dtype=object), columns=labels)
    out["n_page_views"] = n
    out.attrs["how"] = how
    return out


def plot_scroll_heatmap(heatmap: pd.DataFrame, *, ax: Axes | None = None) -> Figure:
    """Heatmap of :func:`scroll_depth_heatmap`: page types down, depths across, shares annotated.

    Parameters
    ----------
    heatmap : DataFrame
        Output of :func:`scroll_depth_heatmap`.
    ax : Axes, optional
        Where to draw; a new figure by default.

    Returns
    -------
    Figure

    Examples
    --------
    >>> ts = pd.to_datetime(["2024-01-01 10:00", "2024-01-01 10:01"], utc=True)
    >>> ev = pd.DataFrame({"user_id": ["a"] * 2, "timestamp": ts, "event": ["page_view", "scroll_depth_50"],
    ...                    "page_type": ["blog", None], "scroll_depth": [None, 50.0]})
    >>> fig = plot_scroll_heatmap(scroll_depth_heatmap(ev))
    >>> fig.axes[0].get_xlabel()
    'deepest scroll of the page view'
    """
    import seaborn as sns

    if not isinstance(heatmap, pd.DataFrame):
        raise ParameterError("heatmap", type(heatmap).__name__, message="heatmap must be the DataFrame "
                             "scroll_depth_heatmap returns")
    check_columns(heatmap.columns, ["n_page_views"], what="scroll heatmap")
    body = heatmap.drop(columns="n_page_views").astype("float64")
    body.index = [f"{p} (n={int(k):,})" for p, k in zip(heatmap.index, heatmap["n_page_views"])]
    ax = _new_axes(ax, (max(6.0, 1.1 * body.shape[1] + 3), max(2.5, 0.5 * len(body) + 1.5)))
    sns.heatmap(body, annot=True, fmt=".0%", cmap="Blues", vmin=0.0, vmax=1.0, linewidths=0.5,
                cbar_kws={"label": "share of page views"}, ax=ax)
    how = heatmap.attrs.get("how", "reached")
    ax.set_title("Share of page views reaching each scroll depth" if how == "reached"
                 else "Page views by deepest scroll")
    ax.set_xlabel("deepest scroll of the page view")
    ax.set_ylabel(heatmap.index.name or "")
    ax.figure.tight_layout()
    return ax.figure


# --------------------------------------------------------------------------------------------
# Export for activation
# --------------------------------------------------------------------------------------------


def _resolve_format(path: Path, format: str | None) -> str:
    suffix = path.suffix.lower()
    inferred = _SUFFIXES.get(suffix)
    if format is None:
        if inferred is None:
            raise ParameterError("format", None, list(EXPORT_FORMATS),
                                 message=f"Cannot infer the format of {str(path)!r} from its suffix {suffix!r}; pass "
                                 f"format= one of {format_allowed(EXPORT_FORMATS)} or use a suffix of "
                                 f"{format_allowed(list(_SUFFIXES))}")
        return inferred
    _check_choice("format", format, EXPORT_FORMATS)
    if inferred is not None and inferred != format:
        raise ParameterError("format", format, message=f"format={format!r} contradicts the suffix {suffix!r} of "
                             f"{str(path)!r} (a {inferred} file); drop format= or change the suffix")
    return format


def _definition_hashes(membership: pd.DataFrame, definitions: Any) -> tuple[list[str], dict[str, str]]:
    """Segment names (definition order) and their hashes, from ``definitions`` or the attrs."""
    present = list(dict.fromkeys(membership["segment"].astype(str)))
    attrs_hashes = {str(k): str(v) for k, v in (membership.attrs.get("hashes") or {}).items()}
    if definitions is not None:
        defs = _coerce_definitions(definitions)
        names = [d.name for d in defs]
        hashes = {d.name: definition_hash(d) for d in defs}
        for name, h in hashes.items():
            if name in attrs_hashes and attrs_hashes[name] != h:
                raise SegkitError(f"Segment {name!r} of the membership was evaluated with another definition "
                                  f"(membership.attrs hash {attrs_hashes[name][:12]}..., definitions give {h[:12]}...); "
                                  "export with the definitions that produced it")
    else:
        if not attrs_hashes:
            raise ParameterError("definitions", None, message="The membership table carries no definition hashes "
                                 "(membership.attrs['hashes'], lost by concat, read_csv ...); pass "
                                 "definitions= the Segment objects, segments YAML path or mapping that produced it")
        names = [str(s) for s in membership.attrs.get("segments") or list(attrs_hashes)]
        names += [s for s in attrs_hashes if s not in names]
        hashes = attrs_hashes
        missing = [s for s in names if s not in hashes]
        if missing:
            raise ParameterError("definitions", None, message=f"membership.attrs has no definition hash for segment(s) "
                                 f"{format_allowed(missing)}; pass definitions=")
    unknown = [s for s in present if s not in hashes]
    if unknown:
        raise ParameterError("definitions", unknown[0], names,
                             message=f"Segment {unknown[0]!r} of the membership is not among the definitions;"
                             f"{did_you_mean(unknown[0], names)} Defined: {format_allowed(names)}")
    return names, hashes


def _utc(values: pd.Series, column: str) -> pd.Series:
    """tz-aware times as ``datetime64[us, UTC]`` (sub-microsecond digits are dropped)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    if values.isna().all():
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
    hint = ("naive timestamps: localize them, .dt.tz_localize('UTC')" if pd.api.types.is_datetime64_dtype(values.dtype)
            else f"got {values.dtype}")
    raise SchemaError([{"column": column, "check": "dtype", "count": None, "examples": None,
                        "message": f"Column {column!r} of the membership table must hold tz-aware timestamps; {hint}"}],
                      title="membership table failed validation")


def _utc_literal(value: Any, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ParameterError(name, value, "a timestamp (naive values are UTC)") from None
    if ts is pd.NaT:
        raise ParameterError(name, value, "a timestamp (naive values are UTC)")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.as_unit("us").floor("us")


def _iso(ts: Any) -> str | None:
    return None if ts is None or pd.isna(ts) else pd.Timestamp(ts).tz_convert("UTC").strftime(_ISO)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".meta.json")


def _text(values: pd.Series) -> list[str | None]:
    return [None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else str(v)
            for v in values.astype(object)]


def export_membership(
    membership: pd.DataFrame,
    path: str | Path,
    *,
    format: ExportFormat | None = None,
    definitions: Any = None,
    run_id: str | None = None,
    exported_at: str | pd.Timestamp | None = None,
    user_col: str = "user_id",
) -> Path:
    """Write the membership for activation, in the documented schema, with a ``.meta.json`` sidecar.

    See the module docstring for the columns, types and the sidecar's content.

    Parameters
    ----------
    membership : DataFrame
        Output of :func:`segkit.segments.evaluate_segments` (``user_col``, ``segment``,
        ``entered_at`` tz-aware, ``reason``); one row per (user, segment).
    path : str or Path
        Data file to write (parent folders are created); the sidecar is ``<path>.meta.json``.
    format : {"csv", "parquet", "jsonl"}, optional
        Default: from the suffix (``.csv``; ``.parquet`` or ``.pq``; ``.jsonl`` or ``.ndjson``).
        A format that contradicts a known suffix is an error.
    definitions : Segment, list of Segment, YAML path or mapping, optional
        The definitions that produced the membership; their :func:`segkit.segments.definition_hash`
        stamps the rows, and their order (empty segments included) is the export's. Default:
        ``membership.attrs["segments"]`` and ``["hashes"]``. When both exist they must agree.
    run_id : str, optional
        Identifier of the run (written on every row and in the sidecar).
    exported_at : str or Timestamp, optional
        Export time (naive values are UTC); default now. Pass it for byte-identical re-exports.
    user_col : str, default="user_id"
        The membership's user column (written as ``user_id``).

    Returns
    -------
    Path
        The data file.

    Raises
    ------
    SchemaError
        Missing columns, nulls in user or segment, repeated (user, segment) rows, naive times.
    ParameterError
        Unknown or contradictory format, no hashes, a segment the definitions lack, bad ``run_id``.
    SegkitError
        The membership's hashes differ from ``definitions``.

    Examples
    --------
    >>> import tempfile
    >>> from segkit.segments import Segment, did
    >>> m = pd.DataFrame({"user_id": ["b", "a"], "segment": ["buyers", "buyers"], "reason": ["purchase x1"] * 2,
    ...                   "entered_at": pd.to_datetime(["2024-01-02", "2024-01-01"], utc=True)})
    >>> out = export_membership(m, Path(tempfile.mkdtemp()) / "members.csv",
    ...                         definitions=[Segment("buyers", did("purchase"))], exported_at="2024-01-03")
    >>> print(out.read_text().splitlines()[1])  # doctest: +ELLIPSIS
    a,buyers,2024-01-01T00:00:00.000000Z,purchase x1,d80c2b69...,2024-01-03T00:00:00.000000Z,
    """
    _check_membership(membership, user_col=user_col, extra=["entered_at", "reason"])
    path = Path(path)
    fmt = _resolve_format(path, format)
    if run_id is not None and (not isinstance(run_id, str) or not run_id):
        raise ParameterError("run_id", run_id, "a non-empty string or None")
    stamp = pd.Timestamp.now(tz="UTC").floor("us") if exported_at is None else _utc_literal(exported_at, "exported_at")
    names, hashes = _definition_hashes(membership, definitions)
    users = membership[user_col].astype(str)
    segs = membership["segment"].astype(str)
    dup = pd.DataFrame({"u": users, "s": segs}).duplicated().to_numpy()
    if dup.any():
        raise SchemaError([{"column": user_col, "check": "unique", "count": int(dup.sum()),
                            "examples": membership.loc[dup, [user_col, "segment"]].head(5),
                            "message": f"The membership table repeats {int(dup.sum()):,} (user, segment) pair(s)"}],
                          title="membership table failed validation")
    rank = {s: i for i, s in enumerate(names)}
    frame = pd.DataFrame({
        "user_id": users.to_numpy(dtype=object),
        "segment": segs.to_numpy(dtype=object),
        "reason": [None if r == "" else r for r in _text(membership["reason"])],
    })
    frame["entered_at"] = _utc(membership["entered_at"], "entered_at").reset_index(drop=True)
    frame["_rank"] = frame["segment"].map(rank)
    frame = frame.sort_values(["_rank", "user_id"], kind="stable").drop(columns="_rank").reset_index(drop=True)
    frame["definition_hash"] = frame["segment"].map(hashes)
    frame["exported_at"] = pd.Series([stamp] * len(frame), dtype="datetime64[us, UTC]")
    frame["run_id"] = run_id
    frame = frame[list(EXPORT_COLUMNS)]

    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([(c, pa.string() if t == "string" else pa.timestamp("us", tz="UTC"))
                            for c, t in EXPORT_COLUMNS.items()])
        arrays = [pa.array(_text(frame[c]), type=pa.string()) if c in _STRING_COLUMNS
                  else pa.array(frame[c], type=pa.timestamp("us", tz="UTC")) for c in EXPORT_COLUMNS]
        pq.write_table(pa.Table.from_arrays(arrays, schema=schema), path)
    else:
        text = frame.copy()
        for c in _TIME_COLUMNS:
            text[c] = [_iso(v) for v in frame[c]]
        if fmt == "csv":
            text.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
        else:
            rows = text.astype(object).where(text.notna(), None).to_dict(orient="records")
            with open(path, "w", encoding="utf-8", newline="\n") as fh:
                for row in rows:
                    fh.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
    sizes = frame["segment"].value_counts()
    n_users = membership.attrs.get("n_users")
    as_of = membership.attrs.get("as_of")
    meta = {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "format": fmt,
        "file": path.name,
        "n_rows": int(len(frame)),
        "sha256": _sha256(path),
        "exported_at": _iso(stamp),
        "run_id": run_id,
        "as_of": _iso(_utc_literal(as_of, "membership.attrs['as_of']")) if as_of is not None and not pd.isna(as_of)
        else None,
        "n_users": int(n_users) if isinstance(n_users, (int, np.integer)) and not isinstance(n_users, bool) else None,
        "columns": [{"name": c, "type": t} for c, t in EXPORT_COLUMNS.items()],
        "segments": [{"name": s, "definition_hash": hashes[s], "n_users": int(sizes.get(s, 0))} for s in names],
    }
    _sidecar(path).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _read_raw(path: Path, fmt: str) -> pd.DataFrame:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pandas()
    if fmt == "csv":
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8")
        for c in raw.columns:
            if c != "user_id" and c != "segment":
                raw[c] = raw[c].astype(object).where(raw[c] != "", None)
        return raw
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise SegkitError(f"Membership export {str(path)!r} line {lineno} is not JSON: {exc}") from None
    cols = list(rows[0]) if rows else list(EXPORT_COLUMNS)
    return pd.DataFrame(rows, columns=cols)


def read_membership(path: str | Path, *, format: ExportFormat | None = None) -> pd.DataFrame:
    """Read an export of :func:`export_membership` back, checked against its sidecar.

    Parameters
    ----------
    path : str or Path
        The data file; ``<path>.meta.json`` must sit beside it.
    format : {"csv", "parquet", "jsonl"}, optional
        Default: from the suffix; must match the sidecar's.

    Returns
    -------
    DataFrame
        The export's columns (see the module docstring): ``string`` text columns and
        ``datetime64[us, UTC]`` times, in the file's order. ``attrs`` holds ``segments`` (in
        definition order), ``hashes``, ``n_users``, ``as_of``, ``exported_at`` and ``run_id``, so
        the result works like a fresh membership table (:func:`segment_overlaps`,
        :func:`segkit.segments.segment_sizes`, a re-export without ``definitions``).

    Raises
    ------
    SegkitError
        Missing file or sidecar, unsupported schema version, or the file disagrees with the
        sidecar: row count, segment sizes, a row's definition hash, the SHA-256.
    SchemaError
        Columns differ from the schema.
    ParameterError
        Unknown or contradictory format.

    Examples
    --------
    >>> import tempfile
    >>> from segkit.segments import Segment, did
    >>> m = pd.DataFrame({"user_id": ["a"], "segment": ["buyers"], "reason": [None],
    ...                   "entered_at": pd.to_datetime(["2024-01-01"], utc=True)})
    >>> out = export_membership(m, Path(tempfile.mkdtemp()) / "members.parquet",
    ...                         definitions=[Segment("buyers", did("purchase"))])
    >>> back = read_membership(out)
    >>> back[["user_id", "segment"]].values.tolist(), str(back["entered_at"].dtype), back.attrs["segments"]
    ([['a', 'buyers']], 'datetime64[us, UTC]', ['buyers'])
    """
    path = Path(path)
    if not path.is_file():
        raise SegkitError(f"Membership export {str(path)!r} not found; write it with segkit.membership.export_membership")
    side = _sidecar(path)
    if not side.is_file():
        raise SegkitError(f"Sidecar {str(side)!r} not found; an export of export_membership always has one "
                          "(it records the row count and definition hashes checked on read)")
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SegkitError(f"Sidecar {str(side)!r} is not valid JSON: {exc}") from None
    if not isinstance(meta, dict) or meta.get("schema") != SCHEMA_NAME:
        raise SegkitError(f"Sidecar {str(side)!r} is not a {SCHEMA_NAME!r} sidecar")
    version = meta.get("schema_version")
    if not isinstance(version, int) or version < 1 or version > SCHEMA_VERSION:
        raise SegkitError(f"Sidecar {str(side)!r} has schema_version {version!r}; this segkit reads versions 1 to "
                          f"{SCHEMA_VERSION} (upgrade segkit for newer exports)")
    fmt = _resolve_format(path, format)
    if meta.get("format") != fmt:
        raise SegkitError(f"{str(path)!r} is read as {fmt!r} but its sidecar says it was written as {meta.get('format')!r}")

    raw = _read_raw(path, fmt)
    expected = list(EXPORT_COLUMNS)
    if list(raw.columns) != expected:
        missing = [c for c in expected if c not in raw.columns]
        extra = [c for c in raw.columns if c not in expected]
        failures = [{"column": c, "check": "missing_column", "count": None, "examples": None,
                     "message": f"Column {c!r} not found in membership export;{did_you_mean(c, extra)}"} for c in missing]
        failures += [{"column": c, "check": "unexpected_column", "count": None, "examples": None,
                      "message": f"Unexpected column {c!r} in membership export"} for c in extra]
        if not failures:
            failures = [{"column": None, "check": "order", "count": None, "examples": None,
                         "message": f"Columns are out of order: {list(raw.columns)}, expected {expected}"}]
        raise SchemaError(failures, title=f"membership export {str(path)!r} does not match schema version {version}")
    out = pd.DataFrame(index=pd.RangeIndex(len(raw)))
    for c, kind in EXPORT_COLUMNS.items():
        if kind == "string":
            out[c] = pd.array(_text(raw[c]), dtype="string")
        elif isinstance(raw[c].dtype, pd.DatetimeTZDtype):
            out[c] = raw[c].dt.tz_convert("UTC").astype("datetime64[us, UTC]")
        elif fmt == "parquet":
            raise SchemaError([{"column": c, "check": "dtype", "count": None, "examples": None,
                                "message": f"Column {c!r} of {str(path)!r} must be timestamp[us, UTC], got {raw[c].dtype}"}],
                              title=f"membership export {str(path)!r} does not match schema version {version}")
        else:
            try:
                out[c] = pd.to_datetime(pd.Series(_text(raw[c]), dtype=object), format=_ISO, utc=True).astype(
                    "datetime64[us, UTC]")
            except (TypeError, ValueError) as exc:
                raise SegkitError(f"Column {c!r} of {str(path)!r} is not ISO 8601 UTC text ({_ISO!r}): {exc}") from None

    n_rows = meta.get("n_rows")
    if n_rows != len(out):
        raise SegkitError(f"{str(path)!r} has {len(out):,} rows but its sidecar records {n_rows!r}; the file was "
                          "truncated or edited after export")
    seg_meta = meta.get("segments") or []
    hashes = {str(s["name"]): str(s["definition_hash"]) for s in seg_meta}
    names = [str(s["name"]) for s in seg_meta]
    unknown = sorted(set(out["segment"].astype(str)) - set(hashes))
    if unknown:
        raise SegkitError(f"{str(path)!r} holds segment(s) {format_allowed(unknown)} its sidecar does not list "
                          f"(listed: {format_allowed(names)})")
    expected_hash = out["segment"].astype(str).map(hashes)
    wrong = (out["definition_hash"].astype(str) != expected_hash).to_numpy()
    if wrong.any():
        first = out.loc[wrong].iloc[0]
        raise SegkitError(f"{int(wrong.sum()):,} row(s) of {str(path)!r} carry a definition hash that differs from the "
                          f"sidecar's, e.g. segment {first['segment']!r}: {str(first['definition_hash'])[:12]}... vs "
                          f"{hashes[str(first['segment'])][:12]}...")
    sizes = out["segment"].astype(str).value_counts()
    for s in seg_meta:
        if int(sizes.get(str(s["name"]), 0)) != s.get("n_users"):
            raise SegkitError(f"Segment {s['name']!r} has {int(sizes.get(str(s['name']), 0)):,} rows in {str(path)!r} "
                              f"but its sidecar records {s.get('n_users')!r}")
    digest = _sha256(path)
    if digest != meta.get("sha256"):
        raise SegkitError(f"{str(path)!r} changed after export: its SHA-256 {digest[:12]}... differs from the sidecar's "
                          f"{str(meta.get('sha256'))[:12]}...")
    out.attrs.update({
        "segments": names,
        "hashes": hashes,
        "n_users": meta.get("n_users"),
        "as_of": pd.Timestamp(meta["as_of"]) if meta.get("as_of") else None,
        "exported_at": pd.Timestamp(meta["exported_at"]) if meta.get("exported_at") else None,
        "run_id": meta.get("run_id"),
    })
    return out


def combine_memberships(*memberships: pd.DataFrame, n_users: int | None = None) -> pd.DataFrame:
    """Stack membership tables (rule segments, funnel drop-offs, clusters, intent tiers) into one.

    Rows keep their order; ``attrs`` are merged: ``segments`` in the order given, ``hashes`` from
    every table, ``n_users`` as given or the largest of the inputs, ``as_of`` the latest.
    A segment name in two tables is an error (two definitions cannot share a name).

    Examples
    --------
    >>> a = pd.DataFrame({"user_id": ["u"], "segment": ["x"], "entered_at": [pd.Timestamp("2024-01-01", tz="UTC")], "reason": ["r"]})
    >>> b = a.assign(segment="y")
    >>> combine_memberships(a, b)["segment"].tolist()
    ['x', 'y']
    """
    frames = [m for m in memberships if m is not None]
    if not frames:
        raise ParameterError("memberships", "none", message="combine_memberships needs at least one membership table")
    names: list[str] = []
    hashes: dict[str, str] = {}
    sizes, as_ofs = [], []
    for m in frames:
        _check_membership(m, user_col="user_id")
        own = _known_segments(m)
        clash = [s for s in own if s in names]
        if clash:
            raise ParameterError("memberships", clash[0], message=f"Segment {clash[0]!r} appears in two membership tables")
        names += own
        hashes.update(m.attrs.get("hashes", {}))
        if m.attrs.get("n_users") is not None:
            sizes.append(int(m.attrs["n_users"]))
        if m.attrs.get("as_of") is not None:
            as_ofs.append(pd.Timestamp(m.attrs["as_of"]))
    out = pd.concat([m[["user_id", "segment", "entered_at", "reason"]] for m in frames], ignore_index=True)
    out.attrs = {"segments": names, "n_users": n_users if n_users is not None else (max(sizes) if sizes else None),
                 "as_of": max(as_ofs) if as_ofs else None, "hashes": hashes}
    return out


def labels_to_membership(labels: pd.DataFrame, *, label_col: str, as_of: Any, prefix: str = "",
                         reason: str | None = None, user_col: str = "user_id") -> pd.DataFrame:
    """One segment per label value (e.g. cluster names), in the membership format.

    ``entered_at`` is ``as_of`` for everyone (a label has no entry time); ``reason`` says which
    column gave the label. The hash of each segment covers the column, the value and the prefix.

    Examples
    --------
    >>> labels = pd.DataFrame({"user_id": ["a", "b"], "cluster_name": ["browsers", "buyers"]})
    >>> labels_to_membership(labels, label_col="cluster_name", as_of="2024-01-01", prefix="cluster: ")["segment"].tolist()
    ['cluster: browsers', 'cluster: buyers']
    """
    import hashlib

    check_columns(labels.columns, [user_col, label_col], what="labels")
    ts = _utc_literal(as_of, "as_of")
    values = labels[label_col].astype(str)
    seg = prefix + values
    why = (f"{label_col} = " + values) if reason is None else pd.Series(reason, index=labels.index)
    out = pd.DataFrame({"user_id": labels[user_col].astype(str).to_numpy(), "segment": seg.to_numpy(),
                        "entered_at": pd.DatetimeIndex([ts] * len(labels)).as_unit("us"),
                        "reason": pd.array(why.to_numpy(), dtype="string")})
    order = list(dict.fromkeys(sorted(seg.unique())))
    out = out.assign(_o=out["segment"].map({s: i for i, s in enumerate(order)})).sort_values(["_o", "user_id"]).drop(columns="_o")
    out = out.reset_index(drop=True)
    out.attrs = {"segments": order, "n_users": int(labels[user_col].nunique()), "as_of": ts,
                 "hashes": {s: hashlib.sha256(f"label|{label_col}|{prefix}|{s}".encode()).hexdigest() for s in order}}
    return out
