"""Funnels: ordered steps within a conversion window; per-step conversion, drop-off, time to convert.

A funnel is a list of two or more steps, each an event name, several names (any of them) or a
:func:`segkit.segments.step` with ``where`` property filters. :func:`funnel` finds, per user, how
far they got (their *depth*) and when, and summarizes the users per step, overall
(:attr:`FunnelResult.steps`), by a column or by segment (:attr:`FunnelResult.by`). The users who
stopped at a step become a segment with :meth:`FunnelResult.dropoff_segment`, in the membership
shape of :func:`segkit.segments.evaluate_segments`.

Counting rule
-------------
Attempts
    Every event of step 1 starts an *attempt* at its time ``t0``. The conversion window is
    ``t0 <= t <= t0 + within``, both ends inclusive, and bounds every later step (like
    Mixpanel, Amplitude and PostHog, the window runs from the first step, not step to step).
Matching
    In an attempt the steps are matched greedily, one after the other: step k+1 is the
    *earliest* event (in the order below) that matches step k+1, lies in the window, is not
    an event this attempt already used (one event serves one step: a funnel ``A -> A -> B``
    needs two ``A`` events) and satisfies the order rule:

    ``order="sequential"`` (the default; Mixpanel's default, Amplitude's "this order")
        its time is at or after the time of step k; other events may come between.
    ``order="strict"`` (Amplitude's "exact order", PostHog's "strict order")
        as sequential, and no other event of the user -- any event of the log, not only
        funnel events -- has a time strictly between step k and step k+1. Filter the log
        first to ignore noise events such as heartbeats.
    ``order="any"``
        its time is at or after ``t0``: steps 2, 3, ... may come in any order within the
        window, but not before the step-1 event (entering the funnel takes step 1, as
        Amplitude requires of "any order" funnels). Steps are still matched in step order
        (step 2 takes its earliest event first, then step 3 the earliest of the rest, ...).

    Matching stops at the first step without a match: the attempt's *depth* is the number of
    steps matched before it (a later step is not looked for, so depth k means steps 1..k).
Best attempt
    A user's depth is the largest depth of their attempts; of the attempts with that depth
    the earliest counts, and its times and breakdown value are the user's. Users without a
    step-1 event are not in the funnel.
Ties
    Events at one timestamp come in no known order, so an event at the *same* time as step k
    may be step k+1 (it must be another row). "Earliest" orders events by time, then (at one
    timestamp) by the first step they match, then by the set of later steps they match (the
    bit mask ``sum 2**(j-1)`` over the steps j they match, smaller first: rows that can serve
    fewer later steps are used first), then by the breakdown value (missing last). Rows equal
    in all of these are interchangeable, so the result does not depend on the input's row order.
Completion times
    Step k is *complete* at ``c_k = max(t_1, ..., t_k)``, the latest time of the steps matched
    so far. In the ordered modes ``c_k = t_k``; with ``any`` a later step may be matched by an
    earlier event, and ``c_k`` is when the first k steps were all done. Times to convert use
    completion times: from the previous step ``c_k - c_(k-1)``, from the first ``c_k - t_1``, in
    seconds (never negative).
Exclusions
    ``exclude=[{"event": "remove_from_cart", "between": [2, 3]}]``: an attempt is cut at the
    first level k (``2 <= k < 3`` here) at which an event of the exclusion step lies strictly
    between ``c_k`` and ``c_(k+1)``: the attempt reaches step k, not k+1, and does not count
    past that point (its other, earlier steps still count; another attempt of the user may do
    better). Steps are numbered from 1; ``between: [a, b]`` needs ``1 <= a < b <= n_steps``.
    An exclusion given as an event name, a :class:`~segkit.segments.Step` or a mapping without
    ``between`` applies between the first and the last step. An exclusion event at the same
    time as a step is not "between" (strict inequalities). PostHog instead drops a user who
    did an exclusion event from the whole funnel.

Summaries
---------
``users`` at step k are the users whose depth is at least k (so the counts never increase);
``conversion_from_previous`` is ``users_k / users_(k-1)`` (1.0 at step 1),
``conversion_from_first`` is ``users_k / users_1``, ``dropped_off`` at step k is
``users_k - users_(k+1)``: those who reached step k and not step k+1 (missing at the last step,
whose users converted); :meth:`FunnelResult.dropoff_segment` lists exactly these users.
Medians are over the users who reached the step. A user whose window had not ended when the
log ends may still convert: cut the log or the step-1 events before reading recent drop-off.

Differences from other tools
----------------------------
Mixpanel starts a user's counted conversion at the *most recent* step-1 event before step 2,
segkit at the *earliest* attempt of the best depth, so segkit's times from the first step are
longer or equal when a user repeated step 1. Amplitude and segkit take a breakdown value from
the first step (first touch).

Where the work runs
-------------------
DuckDB (through Ibis) runs two queries. The first groups the events by user: the number of users,
the last event time, and a 64-bit hash per user that keys the second query once it is shown
one-to-one on the data (string keys otherwise, so results are exact either way). The second
matches every step and exclusion (``where`` filters included), for ``strict`` first ranks every
event's timestamp per user over *all* events, keeps only the rows some step or exclusion matches,
and sorts them by (user, time, tie order) into Arrow. A compiled numba kernel then walks these
sorted arrays once per user: tables of "the next row at or after position p that matches step
j" and prefix counts of exclusion rows make each attempt cost O(n_steps^2) whatever the window
or the number of events in it, with no Python loop per user, attempt or event. The summaries
are vectorized numpy and pandas over one row per user. A DataFrame input goes to DuckDB as an
Arrow table. On a shared 2-core machine 1M events take about 1.5 s and 5M events 4-10 s (with
the load), most of it in the two DuckDB queries; a small log costs ~70 ms, mostly Ibis compiling.

Examples
--------
>>> import pandas as pd
>>> ev = pd.DataFrame({
...     "user_id": ["a", "a", "a", "b", "b", "c"],
...     "event": ["page_view", "add_to_cart", "purchase", "page_view", "add_to_cart", "page_view"],
...     "timestamp": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 10:05", "2024-01-01 11:00",
...                                  "2024-01-02 09:00", "2024-01-02 09:30", "2024-01-03 12:00"], utc=True)})
>>> res = funnel(ev, ["page_view", "add_to_cart", "purchase"], within="1d")
>>> res.steps[["step", "label", "users", "conversion_from_first", "dropped_off"]]
   step        label  users  conversion_from_first  dropped_off
0     1    page_view      3               1.000000            1
1     2  add_to_cart      2               0.666667            1
2     3     purchase      1               0.333333         <NA>
>>> res.dropoff_segment(2)[["user_id", "reason"]].values.tolist()
[['b', "reached 'add_to_cart' (step 2), not 'purchase' within 1d"]]
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.operations as ops
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

from .engine import Data, as_table, backend_of, drop_temp, epoch_us, hash64, materialize
from .errors import ParameterError, SchemaError, check_columns, did_you_mean, format_allowed
from .params import parse_duration
from .segments import SESSION_START, Step, _describe_step, _fmt_td, _match, _taxonomy_names

if TYPE_CHECKING:  # matplotlib is imported when plotting
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["ORDERS", "Order", "Exclusion", "FunnelResult", "funnel", "plot_funnel"]

Order = Literal["sequential", "strict", "any"]
#: The allowed values of ``order``.
ORDERS: tuple[str, ...] = ("sequential", "strict", "any")
_MODE = {"sequential": 0, "strict": 1, "any": 2}
_MAX_STEPS = 62  # steps and exclusions are bits of one int64 mask each
_STEP_KEYS = ("event", "where", "label")
_EXCLUDE_KEYS = ("event", "where", "between")
_ALL_USERS = "(all users)"
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_NAT = np.iinfo(np.int64).min
_HASH_KEYS = True  # key users by 64-bit hashes once they are shown one-to-one (tests switch it off)


# --------------------------------------------------------------------------------------------
# Definitions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exclusion:
    """An exclusion step: events of ``step`` between steps ``between[0]`` and ``between[1]`` cut an attempt.

    Parameters
    ----------
    step : Step
        The excluded event(s), with optional ``where`` filters.
    between : tuple of int, optional
        ``(a, b)`` with ``1 <= a < b <= n_steps`` (steps numbered from 1); ``None``: between the
        first and the last step.

    Examples
    --------
    >>> Exclusion(Step("remove_from_cart"), (2, 3)).describe()
    "'remove_from_cart' between steps 2 and 3"
    """

    step: Step
    between: tuple[int, int] | None = None

    def describe(self) -> str:
        """Short text used in reasons and reprs."""
        where = "between the first and the last step" if self.between is None else (
            f"between steps {self.between[0]} and {self.between[1]}")
        return f"{_describe_step(self.step)!r} {where}"


def _check_funnel_step(st: Step, name: str) -> Step:
    if st.virtual:
        raise ParameterError(name, SESSION_START, message=f"Parameter {name!r} got {SESSION_START!r}: the virtual "
                             "session start has no place in a funnel; use the session's first real event")
    if st.within is not None:
        raise ParameterError(name, _fmt_td(st.within), message=f"Parameter {name!r} has its own window "
                             f"{_fmt_td(st.within)!r}: a funnel has one conversion window, 'within', from step 1")
    return st


def _make_step(value: Any, name: str, keys: tuple[str, ...]) -> tuple[Step, dict[str, Any]]:
    """A Step and the extra keys (label, between) from a name, list of names, Step or mapping."""
    extra: dict[str, Any] = {}
    if isinstance(value, Step):
        st = value
    elif isinstance(value, str) or (isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value)):
        st = _build_step(value, None, name)
    elif isinstance(value, Mapping):
        for k in value:
            if k not in keys:
                raise ParameterError(f"{name}.{k}", value[k], list(keys),
                                     message=f"Parameter {name!r} has unknown key {k!r};{did_you_mean(str(k), keys)} "
                                     f"allowed: {format_allowed(keys)}")
        if "event" not in value:
            raise ParameterError(name, dict(value), message=f"Parameter {name!r} needs 'event' (an event name or a list of names)")
        st = _build_step(value["event"], value.get("where"), name)
        extra = {k: value[k] for k in keys if k in value and k not in ("event", "where")}
    else:
        raise ParameterError(name, value, message=f"Parameter {name!r} got {value!r}: a step is an event name, a list of "
                             "event names, a segkit.segments.step(...) or {'event': ..., 'where': {...}}")
    return _check_funnel_step(st, name), extra


def _build_step(event: Any, where: Any, name: str) -> Step:
    try:
        return Step(event if isinstance(event, str) else tuple(event) if isinstance(event, (list, tuple)) else event, where)
    except ParameterError as e:
        why = getattr(e, "why", str(e))
        sub = e.name if e.name not in ("event", "") else ""
        path = f"{name}.{sub}" if sub else name
        raise ParameterError(path, e.value, e.allowed, message=f"Parameter {path!r} got {e.value!r}: {why}") from None


def _parse_steps(steps: Any) -> tuple[tuple[Step, ...], tuple[str, ...]]:
    if isinstance(steps, (str, Step, Mapping)) or not isinstance(steps, Sequence) or len(steps) < 2:
        shown = steps.to_dict() if isinstance(steps, Step) else steps
        raise ParameterError("steps", shown, message=f"Parameter 'steps' got {shown!r}: a funnel needs a list of at "
                             "least two steps, e.g. ['page_view', 'add_to_cart', 'purchase']")
    if len(steps) > _MAX_STEPS:
        raise ParameterError("steps", len(steps), message=f"A funnel has at most {_MAX_STEPS} steps, got {len(steps)}")
    out: list[Step] = []
    labels: list[str] = []
    for i, s in enumerate(steps):
        st, extra = _make_step(s, f"steps[{i}]", _STEP_KEYS)
        label = extra.get("label", _describe_step(st))
        if not isinstance(label, str) or not label:
            raise ParameterError(f"steps[{i}].label", label, message=f"Parameter 'steps[{i}].label' got {label!r}: a non-empty text")
        out.append(st)
        labels.append(label)
    return tuple(out), tuple(labels)


def _parse_exclude(exclude: Any, n_steps: int) -> tuple[Exclusion, ...]:
    if exclude is None:
        return ()
    if isinstance(exclude, (str, Step, Mapping, Exclusion)):
        exclude = [exclude]
    if not isinstance(exclude, Sequence):
        raise ParameterError("exclude", exclude, message="Parameter 'exclude' got "
                             f"{exclude!r}: a list of exclusion steps, e.g. [{{'event': 'remove_from_cart', 'between': [2, 3]}}]")
    if len(exclude) > _MAX_STEPS:
        raise ParameterError("exclude", len(exclude), message=f"At most {_MAX_STEPS} exclusion steps, got {len(exclude)}")
    out: list[Exclusion] = []
    for i, x in enumerate(exclude):
        name = f"exclude[{i}]"
        if isinstance(x, Exclusion):
            st, between = _check_funnel_step(x.step, name), x.between
        else:
            st, extra = _make_step(x, name, _EXCLUDE_KEYS)
            between = extra.get("between")
        if between is not None:
            b = list(between) if isinstance(between, (list, tuple)) else between
            ok = (isinstance(b, list) and len(b) == 2
                  and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in b))
            if not ok:
                raise ParameterError(f"{name}.between", between, message=f"Parameter '{name}.between' got {between!r}: "
                                     "two step numbers [a, b] (steps are numbered from 1)")
            a, c = int(b[0]), int(b[1])
            if not 1 <= a < c <= n_steps:
                raise ParameterError(f"{name}.between", [a, c], f"1 <= a < b <= {n_steps}",
                                     message=f"Parameter '{name}.between' got {[a, c]!r}: steps are numbered 1..{n_steps} "
                                     f"and the exclusion needs 1 <= a < b <= {n_steps}")
            between = (a, c)
        out.append(Exclusion(st, between))
    return tuple(out)


def _check_name(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ParameterError(name, value, "a column name")
    return value


# --------------------------------------------------------------------------------------------
# The compiled pass over sorted rows
# --------------------------------------------------------------------------------------------


@njit(cache=True)
def _funnel_kernel(starts, us, m, x, dr, n_steps, window, mode, ex_lo, ex_hi):  # pragma: no cover - compiled
    """Best attempt per user over rows sorted by (user, time, tie order).

    Returns ``depth`` (per user), ``rows`` (per user and step: row index of the matched event
    or -1) and ``cut`` (index of the exclusion that stopped the best attempt, or -1).
    """
    n_users = starts.shape[0] - 1
    n_ex = ex_lo.shape[0]
    depth = np.zeros(n_users, dtype=np.int64)
    rows = np.empty((n_users, n_steps), dtype=np.int64)
    cut = np.empty(n_users, dtype=np.int64)
    maxlen = 0
    for u in range(n_users):
        ln = starts[u + 1] - starts[u]
        if ln > maxlen:
            maxlen = ln
    gs = np.empty(maxlen + 1, dtype=np.int64)  # first row of the row's timestamp group
    ge = np.empty(maxlen + 1, dtype=np.int64)  # one past the last row of the group
    nxt = np.empty((n_steps, maxlen + 1), dtype=np.int64)  # next row at or after p matching step j
    cnt = np.empty((n_ex + 1, maxlen + 1), dtype=np.int64)  # exclusion rows before p
    cur = np.empty(n_steps, dtype=np.int64)
    for u in range(n_users):
        s = starts[u]
        e = starts[u + 1]
        ln = e - s
        for j in range(n_steps):
            rows[u, j] = -1
        cut[u] = -1
        for i in range(ln):
            if i > 0 and us[s + i] == us[s + i - 1]:
                gs[i] = gs[i - 1]
            else:
                gs[i] = i
        for i in range(ln - 1, -1, -1):
            if i < ln - 1 and us[s + i] == us[s + i + 1]:
                ge[i] = ge[i + 1]
            else:
                ge[i] = i + 1
        for j in range(n_steps):
            nxt[j, ln] = ln
            for i in range(ln - 1, -1, -1):
                if (m[s + i] >> j) & 1:
                    nxt[j, i] = i
                else:
                    nxt[j, i] = nxt[j, i + 1]
        for k in range(n_ex):
            cnt[k, 0] = 0
            for i in range(ln):
                cnt[k, i + 1] = cnt[k, i] + ((x[s + i] >> k) & 1)
        best = 0
        for i0 in range(ln):
            if not (m[s + i0] & 1):
                continue
            limit = us[s + i0] + window
            cur[0] = i0
            d = 1
            prev = i0
            crow = i0
            stop = -1
            for j in range(1, n_steps):
                p = gs[i0] if mode == 2 else gs[prev]
                cand = nxt[j, p]
                while cand < ln:
                    used = False
                    for q in range(d):
                        if cur[q] == cand:
                            used = True
                            break
                    if not used:
                        break
                    cand = nxt[j, cand + 1]
                if cand >= ln or us[s + cand] > limit:
                    break
                if mode == 1 and dr[s + cand] > dr[s + prev] + 1:
                    break
                ncrow = cand if us[s + cand] > us[s + crow] else crow
                if ncrow != crow:
                    lo = ge[crow]
                    hi = gs[ncrow]
                    if hi > lo:
                        for k in range(n_ex):
                            if ex_lo[k] <= j and j + 1 <= ex_hi[k] and cnt[k, hi] - cnt[k, lo] > 0:
                                stop = k
                                break
                if stop >= 0:
                    break
                cur[d] = cand
                d += 1
                prev = cand
                crow = ncrow
            if d > best:
                best = d
                for q in range(n_steps):
                    rows[u, q] = s + cur[q] if q < d else -1
                cut[u] = stop
                if best == n_steps:
                    break
        depth[u] = best
    return depth, rows, cut


# --------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "step"


@dataclass(frozen=True)
class FunnelResult:
    """What :func:`funnel` returns.

    Attributes
    ----------
    steps : DataFrame
        One row per step: ``step`` (1-based), ``label``, ``users`` (depth >= step),
        ``conversion_from_previous``, ``conversion_from_first``, ``dropped_off`` (reached this
        step and not the next; missing at the last step), ``median_s_from_previous`` and
        ``median_s_from_first`` (seconds between completion times, over the users who reached
        the step; missing at step 1).
    users : DataFrame
        One row per user in the funnel (users with a step-1 event), sorted by user:
        ``user_col``, ``depth``, ``converted`` (reached the last step), ``step_1_at`` ...
        ``step_N_at`` (UTC time of the event matched to each step in the best attempt; NaT
        for steps not reached; ``step_1_at`` is the attempt's start); with exclusions
        ``excluded_by`` (number, from 1, of the exclusion in ``exclude`` that stopped the best
        attempt; missing when none did); with a column breakdown, that column (its value on the
        step-1 event).
    by : DataFrame or None
        The ``steps`` columns per group, with the group first: the breakdown column's value
        (groups with more step-1 users first, missing values a group of their own), or
        ``segment`` (``"(all users)"`` first, then the segments in order; a user counts in
        every segment they belong to). ``None`` without ``breakdown`` or ``segments``.
    labels : tuple of str
        Step labels.
    within : Timedelta
        The conversion window.
    order : str
        ``"sequential"``, ``"strict"`` or ``"any"``.
    exclusions : tuple of Exclusion
    n_users : int
        Users in the event log (with or without a step-1 event).
    as_of : Timestamp or None
        The last event time of the log.
    user_col : str
    """

    steps: pd.DataFrame = field(repr=False)
    users: pd.DataFrame = field(repr=False)
    by: pd.DataFrame | None = field(repr=False)
    labels: tuple[str, ...]
    within: pd.Timedelta
    order: str
    exclusions: tuple[Exclusion, ...] = ()
    n_users: int = 0
    as_of: pd.Timestamp | None = None
    user_col: str = "user_id"

    def _step_number(self, step: Any) -> int:
        n = len(self.labels)
        if isinstance(step, str):
            hits = [i + 1 for i, lab in enumerate(self.labels) if lab == step]
            if not hits:
                raise ParameterError("step", step, list(self.labels))
            if len(hits) > 1:
                raise ParameterError("step", step, message=f"Step label {step!r} names steps {hits}; pass the step number")
            k = hits[0]
        elif isinstance(step, (int, np.integer)) and not isinstance(step, bool):
            k = int(step)
        else:
            raise ParameterError("step", step, message=f"Parameter 'step' got {step!r}: a step number (1..{n}) or label")
        if k == n:
            raise ParameterError("step", step, f"1..{n - 1}", message=f"Parameter 'step' got {step!r}: nobody drops off "
                                 f"at the last step (its users converted); drop-off steps are 1..{n - 1}")
        if not 1 <= k < n:
            raise ParameterError("step", step, f"1..{n - 1}", message=f"Parameter 'step' got {step!r}: drop-off steps are "
                                 f"numbered 1..{n - 1} (steps are numbered from 1)")
        return k

    def dropoff_segment(self, step: int | str, name: str | None = None) -> pd.DataFrame:
        """The users who reached ``step`` but not the next step, as a segment membership table.

        Parameters
        ----------
        step : int or str
            Step number (1 .. n_steps - 1) or a step label.
        name : str, optional
            Segment name (letters, digits, ``_``, ``.``, ``-``); default
            ``dropoff_step{k}_{label}``.

        Returns
        -------
        DataFrame
            ``user_col``, ``segment``, ``entered_at`` (UTC completion time of the last step
            reached: when the user was last seen progressing) and ``reason``, like
            :func:`segkit.segments.evaluate_segments`, so the two concatenate; ``attrs`` holds
            ``segments``, ``n_users`` (users in the event log) and ``as_of``.

        Raises
        ------
        ParameterError
            Step out of range (the last step has no drop-off), unknown label, bad name.

        Examples
        --------
        >>> import pandas as pd
        >>> ev = pd.DataFrame({"user_id": ["a", "a", "b"], "event": ["view", "buy", "view"],
        ...                    "timestamp": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 10:30",
        ...                                                 "2024-01-01 11:00"], utc=True)})
        >>> seg = funnel(ev, ["view", "buy"], within="1h").dropoff_segment(1)
        >>> seg[["user_id", "segment", "entered_at"]].values.tolist()
        [['b', 'dropoff_step1_view', Timestamp('2024-01-01 11:00:00+0000', tz='UTC')]]
        """
        k = self._step_number(step)
        seg_name = f"dropoff_step{k}_{_slug(self.labels[k - 1])}" if name is None else name
        if not isinstance(seg_name, str) or not _NAME_RE.match(seg_name):
            raise ParameterError("name", seg_name, message=f"Parameter 'name' got {seg_name!r}: a segment name uses "
                                 "letters, digits, '_', '.' and '-'")
        U = self.users
        sel = (U["depth"] == k).to_numpy()
        times = U.loc[sel, [f"step_{j}_at" for j in range(1, k + 1)]]
        entered = times.max(axis=1) if len(times) else pd.Series([], dtype="datetime64[us, UTC]")
        how = {"sequential": "", "strict": " directly after it", "any": " (any order)"}[self.order]
        base = (f"reached {self.labels[k - 1]!r} (step {k}), not {self.labels[k]!r}{how} "
                f"within {_fmt_td(self.within)}")
        reason = np.full(int(sel.sum()), base, dtype=object)
        if "excluded_by" in U.columns:
            cut = U.loc[sel, "excluded_by"].fillna(0).to_numpy(dtype=np.int64)
            for i, ex in enumerate(self.exclusions):
                reason[cut == i + 1] = base + f": {_describe_step(ex.step)!r} came in between"
        out = pd.DataFrame({
            self.user_col: pd.array(U.loc[sel, self.user_col].to_numpy(dtype=object), dtype="string"),
            "segment": pd.array([seg_name] * int(sel.sum()), dtype="string"),
            "entered_at": entered.reset_index(drop=True).astype("datetime64[us, UTC]"),
            "reason": pd.array(reason, dtype="string"),
        })
        out.attrs.update({"segments": [seg_name], "n_users": self.n_users, "as_of": self.as_of})
        return out


# --------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------


def _step_stats(codes: np.ndarray, n_groups: int, depth: np.ndarray, comp: np.ndarray,
                labels: tuple[str, ...]) -> pd.DataFrame:
    """The per-step table of every group: ``_g`` (group code), then the ``steps`` columns.

    ``codes`` gives each row's group (rows are users, or user-segment pairs); ``comp`` holds
    completion times in µs as float (NaN where not reached), shape (rows, steps).
    """
    n = len(labels)
    G = n_groups
    users = np.zeros((G, n), dtype=np.int64)
    med_prev = np.full((G, n), np.nan)
    med_first = np.full((G, n), np.nan)
    for k in range(n):
        reached = depth >= k + 1
        users[:, k] = np.bincount(codes[reached], minlength=G)[:G]
        if k and reached.any():
            sub = codes[reached]
            d_prev = pd.Series((comp[reached, k] - comp[reached, k - 1]) / 1e6).groupby(sub).median()
            d_first = pd.Series((comp[reached, k] - comp[reached, 0]) / 1e6).groupby(sub).median()
            med_prev[d_prev.index.to_numpy(), k] = d_prev.to_numpy()
            med_first[d_first.index.to_numpy(), k] = d_first.to_numpy()
    prev = np.concatenate([users[:, :1], users[:, :-1]], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        c_prev = np.where(prev > 0, users / np.maximum(prev, 1), np.nan)
        c_first = np.where(users[:, :1] > 0, users / np.maximum(users[:, :1], 1), np.nan)
    dropped = np.concatenate([users[:, :-1] - users[:, 1:], np.zeros((G, 1), dtype=np.int64)], axis=1)
    last = np.tile(np.arange(n) == n - 1, G)
    return pd.DataFrame({
        "_g": np.repeat(np.arange(G), n),
        "step": np.tile(np.arange(1, n + 1, dtype=np.int64), G),
        "label": pd.array(list(labels) * G, dtype="string"),
        "users": users.ravel(),
        "conversion_from_previous": c_prev.ravel(),
        "conversion_from_first": c_first.ravel(),
        "dropped_off": pd.array(np.where(last, None, dropped.ravel()).tolist(), dtype="Int64"),
        "median_s_from_previous": med_prev.ravel(),
        "median_s_from_first": med_first.ravel(),
    })


def _blocks(stats: pd.DataFrame, order: Iterable[int], n: int) -> pd.DataFrame:
    """Rows of ``stats`` (``n`` steps per group) for the groups ``order`` (codes), in that order."""
    order = list(order)
    idx = np.concatenate([np.arange(g * n, (g + 1) * n) for g in order]) if len(order) else np.arange(0)
    return stats.iloc[idx].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# The public function
# --------------------------------------------------------------------------------------------


def _where_types(steps: Iterable[tuple[str, Step]], t: ibis.Table) -> None:
    for path, st in steps:
        for col, op, v in st.where:
            typ = t[col].type()
            kind = "number" if typ.is_numeric() else "text" if typ.is_string() else str(typ)
            for val in (v if op == "in" else (v,)):
                vk = "text" if isinstance(val, str) else "number"
                if vk != kind:
                    raise ParameterError(f"{path}.where.{col}", val, message=f"Parameter '{path}.where.{col}' got {val!r}: "
                                         f"column {col!r} holds {kind} values, so it cannot be compared with a {vk} value")


def funnel(
    events: Data,
    steps: Sequence[str | Sequence[str] | Step | Mapping[str, Any]],
    *,
    within: str | pd.Timedelta = "7d",
    order: Order = "sequential",
    exclude: Sequence[str | Step | Mapping[str, Any] | Exclusion] | None = None,
    breakdown: str | None = None,
    segments: pd.DataFrame | None = None,
    taxonomy_events: Any = None,
    user_col: str = "user_id",
    timestamp_col: str = "timestamp",
    event_col: str = "event",
) -> FunnelResult:
    """Count how far users get through ordered steps within a conversion window.

    See the module docstring for the exact counting rule (attempts, greedy matching, ties,
    exclusions, completion times).

    Parameters
    ----------
    events : DataFrame, Parquet path or Ibis table
        Canonical events; rows with a missing user or timestamp are ignored.
    steps : list
        Two or more steps, each an event name, a list of event names (any of them), a
        :func:`segkit.segments.step` (``where`` filters), or a mapping
        ``{"event": ..., "where": {...}, "label": ...}`` (``label`` names the step in tables).
    within : str or Timedelta, default="7d"
        Conversion window from the step-1 event (inclusive), a positive duration with units.
    order : {"sequential", "strict", "any"}, default="sequential"
        Steps in order with other events allowed between; in order with no other event of the
        user between two steps; or in any order after step 1.
    exclude : list, optional
        Exclusion steps: event names, steps or mappings
        ``{"event": ..., "where": {...}, "between": [a, b]}`` (steps numbered from 1; without
        ``between``: between the first and the last step).
    breakdown : str, optional
        Column to break the funnel down by (``device``, ``referrer``, ...): its value on the
        best attempt's step-1 event. Not together with ``segments``.
    segments : DataFrame, optional
        Segment membership (:func:`segkit.segments.evaluate_segments`: ``user_col`` and
        ``segment``); ``by`` then has one block per segment and one for all users. Not
        together with ``breakdown``.
    taxonomy_events : list of str or Taxonomy, optional
        Canonical event names to check step and exclusion events against (did-you-mean).
    user_col, timestamp_col, event_col : str
        Column names of the event log.

    Returns
    -------
    FunnelResult
        ``steps``, ``users``, ``by`` and :meth:`FunnelResult.dropoff_segment`.

    Raises
    ------
    ParameterError
        Fewer than two steps, a bad step, ``order``, ``within`` (no units, zero or negative),
        exclusion (step numbers out of range), unknown event (with ``taxonomy_events``),
        ``breakdown`` together with ``segments``.
    SchemaError
        A column (key, ``where`` or ``breakdown``) is missing from the event log, the timestamp
        column does not hold timestamps, or the membership table lacks its columns.

    Examples
    --------
    >>> import pandas as pd
    >>> from segkit.segments import step
    >>> ev = pd.DataFrame({
    ...     "user_id": ["a", "a", "a", "b", "b"],
    ...     "event": ["page_view", "page_view", "add_to_cart", "page_view", "add_to_cart"],
    ...     "page_type": ["home", "product", None, "product", None],
    ...     "device": ["mobile", "mobile", "mobile", "desktop", "desktop"],
    ...     "timestamp": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 10:01", "2024-01-01 10:03",
    ...                                  "2024-01-01 12:00", "2024-01-09 12:00"], utc=True)})
    >>> res = funnel(ev, [step("page_view", where={"page_type": "product"}), "add_to_cart"],
    ...              within="7d", breakdown="device")
    >>> res.steps[["label", "users", "median_s_from_previous"]].values.tolist()
    [['page_view[page_type=product]', 2, nan], ['add_to_cart', 1, 120.0]]
    >>> res.by[["device", "step", "users"]].values.tolist()
    [['desktop', 1, 1], ['desktop', 2, 0], ['mobile', 1, 1], ['mobile', 2, 1]]
    """
    for nm, val in (("user_col", user_col), ("timestamp_col", timestamp_col), ("event_col", event_col)):
        _check_name(val, nm)
    st_all, labels = _parse_steps(steps)
    n = len(st_all)
    if isinstance(order, str) and order in ORDERS:
        mode = _MODE[order]
    else:
        raise ParameterError("order", order, list(ORDERS))
    window = parse_duration(within, name="within")
    exclusions = _parse_exclude(exclude, n)
    if breakdown is not None and segments is not None:
        raise ParameterError("segments", "<DataFrame>", message="Pass either 'breakdown' (a column) or 'segments' "
                             "(a membership table), not both")
    if breakdown is not None:
        _check_name(breakdown, "breakdown")
        if breakdown in (user_col, timestamp_col):
            raise ParameterError("breakdown", breakdown, message=f"Parameter 'breakdown' got {breakdown!r}: break a "
                                 "funnel down by a property such as 'device' or 'referrer', not by the user or the time")
    tax = _taxonomy_names(taxonomy_events)
    all_named = [(f"steps[{i}]", s) for i, s in enumerate(st_all)] + [(f"exclude[{i}]", x.step) for i, x in enumerate(exclusions)]
    if tax is not None:
        for path, st in all_named:
            for e in st.event:
                if e not in tax:
                    known = sorted(tax)
                    raise ParameterError(f"{path}.event", e, known, message=f"Parameter '{path}.event' got {e!r}: unknown "
                                         f"event;{did_you_mean(e, known)} taxonomy events: {format_allowed(known)}")
    membership = None
    if segments is not None:
        if not isinstance(segments, pd.DataFrame):
            raise ParameterError("segments", type(segments).__name__, message="Parameter 'segments' must be a membership "
                                 "DataFrame (segkit.segments.evaluate_segments) with columns user and 'segment'")
        check_columns(segments.columns, [user_col, "segment"], what="segments membership table")
        membership = segments

    props = sorted({c for _, st in all_named for c, _, _ in st.where})
    for path, st in all_named:
        for c, _, _ in st.where:
            if c in (user_col, timestamp_col, event_col) or c.startswith("_sk_"):
                raise ParameterError(f"{path}.where.{c}", c, message=f"Parameter '{path}.where' filters on {c!r}: a key "
                                     "column cannot be filtered; name the event in 'event'")
    keys = [user_col, timestamp_col, event_col]
    needed = list(dict.fromkeys(keys + props + ([breakdown] if breakdown else [])))
    if isinstance(events, pd.DataFrame):
        check_columns(events.columns, keys, what="event log")
        check_columns(events.columns, needed, what="event log")
        try:  # only the needed columns, as Arrow: DuckDB scans Arrow-backed pandas strings several times slower
            t = ibis.memtable(pa.Table.from_pandas(events[needed], preserve_index=False))
        except (pa.ArrowException, TypeError, ValueError):  # pragma: no cover - mixed object columns
            t = as_table(events[needed])
    else:
        t = as_table(events)
    check_columns(t.columns, keys, what="event log")
    if not t[timestamp_col].type().is_timestamp():
        raise SchemaError([{"column": timestamp_col, "check": "dtype", "count": None, "examples": None,
                            "message": f"Column {timestamp_col!r} must hold timestamps, got {t[timestamp_col].type()}; "
                            "parse it with segkit.parse_timestamps"}])
    check_columns(t.columns, props + ([breakdown] if breakdown else []), what="event log")
    _where_types(all_named, t)

    result = _evaluate(t, st_all, exclusions, window, mode, breakdown, props, user_col, timestamp_col, event_col)
    depth, step_us, users, bvals, cut, n_users, last_us = result

    # per-user table, sorted by user
    nu = len(users)
    o = pc.sort_indices(users).to_numpy() if nu else np.zeros(0, dtype=np.int64)
    depth, step_us, cut = depth[o], step_us[o], cut[o]
    f = np.where(step_us == _NAT, np.nan, step_us.astype("float64"))
    comp = np.fmax.accumulate(f, axis=1) if nu else f
    comp[np.isnan(f)] = np.nan
    data: dict[str, Any] = {user_col: pd.array(users.take(pa.array(o, type=pa.int64())).to_pandas(), dtype="string"),
                            "depth": depth.astype(np.int64), "converted": depth == n}
    for j in range(n):
        data[f"step_{j + 1}_at"] = pd.Series(step_us[:, j].view("datetime64[us]")).dt.tz_localize("UTC")
    if exclusions:
        data["excluded_by"] = pd.array(np.where(cut >= 0, cut + 1, 0), dtype="Int64")
        data["excluded_by"][cut < 0] = pd.NA
    if breakdown is not None:
        data[breakdown] = bvals.iloc[o].reset_index(drop=True)
        if isinstance(events, pd.DataFrame):  # keep the input's dtype (Arrow gives its own)
            try:
                data[breakdown] = data[breakdown].astype(events[breakdown].dtype)
            except (TypeError, ValueError):  # pragma: no cover
                pass
    U = pd.DataFrame(data)
    depth_sorted = depth

    overall = _step_stats(np.zeros(nu, dtype=np.int64), 1, depth_sorted, comp, labels).drop(columns="_g")
    by = None
    if breakdown is not None:
        codes, uniques = pd.factorize(U[breakdown], use_na_sentinel=False)
        values = pd.Series(uniques, dtype=U[breakdown].dtype)
        G = len(values)
        stats = _step_stats(codes.astype(np.int64), G, depth_sorted, comp, labels)
        size = np.bincount(codes, minlength=G) if G else np.zeros(0, dtype=np.int64)
        na = values.isna().to_numpy()
        groups = sorted(range(G), key=lambda g: (-size[g], bool(na[g]), "" if na[g] else values.iloc[g]))
        by = _blocks(stats, groups, n)
        by.insert(0, breakdown, values.iloc[by["_g"].to_numpy()].reset_index(drop=True))
        by = by.drop(columns="_g")
    elif membership is not None:
        mem = pd.DataFrame({"_u": membership[user_col].astype("string").to_numpy(dtype=object),
                            "_s": membership["segment"].astype("string").to_numpy(dtype=object)})
        mem = mem[mem["_u"].notna() & mem["_s"].notna()].drop_duplicates()
        names = [str(x) for x in (membership.attrs.get("segments") or [])]
        names = list(dict.fromkeys(names + list(mem["_s"])))
        names = [x for x in names if x != _ALL_USERS]
        pos = pd.Index(U[user_col].to_numpy(dtype=object)).get_indexer(mem["_u"].to_numpy(dtype=object))
        seg_code = pd.Index(names).get_indexer(mem["_s"].to_numpy(dtype=object)) + 1
        ok = (pos >= 0) & (seg_code >= 1)
        codes = np.concatenate([np.zeros(nu, dtype=np.int64), seg_code[ok]]).astype(np.int64)
        idx = np.concatenate([np.arange(nu), pos[ok]]).astype(np.int64)
        stats = _step_stats(codes, len(names) + 1, depth_sorted[idx], comp[idx], labels)
        by = _blocks(stats, range(len(names) + 1), n)
        labels_g = np.array([_ALL_USERS] + names, dtype=object)
        by.insert(0, "segment", pd.array(labels_g[by["_g"].to_numpy()], dtype="string"))
        by = by.drop(columns="_g")
    as_of = None if last_us is None else pd.Timestamp(int(last_us) * 1_000, tz="UTC")
    return FunnelResult(steps=overall, users=U, by=by, labels=labels, within=window, order=order,
                        exclusions=exclusions, n_users=n_users, as_of=as_of, user_col=user_col)


def _evaluate(t: ibis.Table, steps: tuple[Step, ...], exclusions: tuple[Exclusion, ...], window: pd.Timedelta, mode: int,
              breakdown: str | None, props: list[str], user_col: str, timestamp_col: str,
              event_col: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.Series | None, np.ndarray, int, int | None]:
    """The DuckDB queries and the kernel.

    Returns, for the users with a step-1 event: depth, step times (µs, ``_NAT`` where not
    reached), user names, breakdown values, exclusion cuts; then the number of users of the
    log and its last event time (µs).
    """
    n = len(steps)
    con = backend_of(t)
    user = t[user_col].cast("string")
    ts = t[timestamp_col]
    if (ts.type().scale or 6) > 6:  # nanoseconds: DuckDB has no epoch_us(TIMESTAMPTZ_NS); times are in µs anyway
        ts = ts.cast(dt.Timestamp(timezone=ts.type().timezone, scale=6))
    cols: dict[str, Any] = {"_sk_user": user, "_sk_us": epoch_us(t, ts),
                            "_sk_event": t[event_col].cast("string")}
    cols.update({c: t[c] for c in props})
    bcol = None
    if breakdown is not None:
        bcol = breakdown if breakdown in props else "_sk_b"
        if bcol == "_sk_b":
            cols["_sk_b"] = t[breakdown]
    cols["_sk_v"] = ibis.literal(False)  # no virtual rows here (segkit.segments._match reads the flag)
    base = t.filter(t[user_col].notnull() & t[timestamp_col].notnull()).select(**cols)
    temp: list[str] = []
    try:
        if not isinstance(t.op(), (ops.DatabaseTable, ops.InMemoryTable)):  # compute an expression input once
            name = f"_segkit_funnel_{uuid.uuid4().hex[:12]}"
            base = materialize(base, con=con, name=name)
            temp.append(name)
        # every user once (exact count), with the 64-bit hash that keys them when it is one-to-one
        per = base.group_by("_sk_user").aggregate(_sk_max=base._sk_us.max())
        per = per.mutate(_sk_uk=hash64(per, per._sk_user))
        names = con.to_pyarrow(per)
        n_users = names.num_rows
        mx = pc.max(names.column("_sk_max")).as_py() if n_users else None
        last_us = None if mx is None else int(mx)
        uk_names = names.column("_sk_uk").to_numpy()
        sorted_uk = np.sort(uk_names)
        one_to_one = not bool((sorted_uk[1:] == sorted_uk[:-1]).any())
        key = "_sk_uk" if _HASH_KEYS and one_to_one else "_sk_user"
        mask = ibis.literal(0, type="int64")
        for j, st in enumerate(steps):
            mask = mask + ibis.cases((_match(base, st), ibis.literal(1 << j, type="int64")), else_=ibis.literal(0, type="int64"))
        xmask = ibis.literal(0, type="int64")
        for k, ex in enumerate(exclusions):
            xmask = xmask + ibis.cases((_match(base, ex.step), ibis.literal(1 << k, type="int64")),
                                       else_=ibis.literal(0, type="int64"))
        # one projection (few Ibis layers: compiling deep expressions costs more than running them on small data)
        extra: dict[str, Any] = {"_sk_m": mask, "_sk_x": xmask}
        kexpr = hash64(base, base._sk_user) if key == "_sk_uk" else base._sk_user
        if key == "_sk_uk":
            extra["_sk_uk"] = kexpr
        if mode == 1:  # dense rank of the time among all of the user's events, before rows are dropped
            extra["_sk_dr"] = ibis.dense_rank().over(ibis.window(group_by=kexpr, order_by=base._sk_us)).cast("int64")
        rel = base.mutate(**extra)
        keep = [key, "_sk_us", "_sk_m", "_sk_x"] + (["_sk_dr"] if mode == 1 else []) + ([bcol] if bcol else [])
        rel = rel.filter((rel._sk_m != 0) | (rel._sk_x != 0)).select(*keep)
        sort = [rel[key], rel._sk_us, rel._sk_m & (-rel._sk_m), rel._sk_m] + ([rel[bcol].asc(nulls_first=False)] if bcol else [])
        tab: pa.Table = con.to_pyarrow(rel.order_by(sort))
    finally:
        for name in temp:
            drop_temp(con, name)
    nrows = tab.num_rows
    keycol = tab.column(key).combine_chunks()
    if key == "_sk_uk":
        k = keycol.to_numpy()
        brk = np.flatnonzero(k[1:] != k[:-1]) + 1
    elif nrows:
        neq = pc.not_equal(keycol.slice(1), keycol.slice(0, nrows - 1))
        brk = np.flatnonzero(neq.to_numpy(zero_copy_only=False)) + 1
    else:
        brk = np.zeros(0, dtype=np.int64)
    starts = np.concatenate([[0], brk, [nrows]]).astype(np.int64) if nrows else np.zeros(1, dtype=np.int64)
    us = tab.column("_sk_us").to_numpy().astype(np.int64)
    m = tab.column("_sk_m").to_numpy().astype(np.int64)
    x = tab.column("_sk_x").to_numpy().astype(np.int64)
    dr = tab.column("_sk_dr").to_numpy().astype(np.int64) if mode == 1 else np.zeros(1, dtype=np.int64)
    ex_lo = np.array([1 if e.between is None else e.between[0] for e in exclusions], dtype=np.int64)
    ex_hi = np.array([n if e.between is None else e.between[1] for e in exclusions], dtype=np.int64)
    w_us = int(window / pd.Timedelta(microseconds=1))
    depth, rows, cut = _funnel_kernel(starts, us, m, x, dr, n, w_us, mode, ex_lo, ex_hi)
    entered = depth > 0
    rows = rows[entered]
    first_rows = starts[:-1][entered]
    if key == "_sk_uk":
        order = np.argsort(uk_names, kind="stable")
        pos = order[np.searchsorted(uk_names, keycol.to_numpy()[first_rows], sorter=order)]
        users = names.column("_sk_user").take(pa.array(pos, type=pa.int64()))
    else:
        users = keycol.take(pa.array(first_rows, type=pa.int64()))
    step_us = np.where(rows >= 0, us[np.maximum(rows, 0)], _NAT)
    bvals = None
    if bcol:
        bvals = tab.column(bcol).take(pa.array(rows[:, 0], type=pa.int64())).to_pandas().reset_index(drop=True)
    return depth[entered], step_us, users, bvals, cut[entered], n_users, last_us


# --------------------------------------------------------------------------------------------
# Plot
# --------------------------------------------------------------------------------------------


def _wrap(label: str, width: int = 20) -> str:
    """Break a long step label over lines: before ``[``, after ``|`` or ``,``, else every ``width`` characters."""
    lines: list[str] = []
    for tok in (t for t in re.split(r"(?=\[)|(?<=[|,])", label) if t):
        if lines and len(lines[-1]) + len(tok) <= width:
            lines[-1] += tok
            continue
        lines.extend(tok[i:i + width] for i in range(0, len(tok), width))
    return "\n".join(line.strip() for line in lines)


def plot_funnel(result: FunnelResult, ax: Axes | None = None) -> Figure:
    """Bar chart of the users per step, labelled with counts and conversion.

    Each bar shows the users who reached the step, with the conversion from the first step;
    the gap label between two bars is the conversion from the previous step. Draws on ``ax``
    (a new figure when none is given) and returns the figure; notebooks end the cell with
    ``plt.show()``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "b"], "event": ["view", "buy", "view"],
    ...                    "timestamp": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 10:30",
    ...                                                 "2024-01-01 11:00"], utc=True)})
    >>> fig = plot_funnel(funnel(ev, ["view", "buy"], within="1h"))
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['1. view', '2. buy']
    """
    import matplotlib.pyplot as plt

    if not isinstance(result, FunnelResult):
        raise ParameterError("result", type(result).__name__, message="plot_funnel needs the FunnelResult of segkit.funnels.funnel")
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(6.0, 1.9 * len(result.labels) + 1), 4.2))
    else:
        fig = ax.figure
    S = result.steps
    xs = np.arange(len(S))
    users = S["users"].to_numpy()
    ax.bar(xs, users, color="#4C72B0", width=0.6)
    top = max(int(users.max()) if len(users) else 0, 1)
    for i, (u, c) in enumerate(zip(users, S["conversion_from_first"])):
        pct = "" if pd.isna(c) else f"\n{c:.0%}"
        ax.text(i, u + top * 0.01, f"{int(u):,}{pct}", ha="center", va="bottom", fontsize=9)
    for i in range(1, len(S)):
        c = S["conversion_from_previous"].iloc[i]
        if not pd.isna(c):
            ax.annotate(f"{c:.0%} \u2192", xy=(i - 0.5, top * 0.5), ha="center", va="center", fontsize=8, color="#555555")
    ax.set_xticks(xs)
    ax.set_xticklabels([_wrap(f"{i + 1}. {lab}") for i, lab in enumerate(result.labels)], rotation=0)
    ax.set_ylim(0, top * 1.2)
    ax.set_ylabel("users")
    ax.set_title(f"Funnel ({result.order}, within {_fmt_td(result.within)})")
    return fig
