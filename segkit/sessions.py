"""Sessionization: split each user's events into sessions, and summarize each session.

:func:`split_sessions` labels every event with a ``session_id`` and a per-user ``session_index``.
It is one Ibis expression built from window functions partitioned by user (the gap to the user's
previous event, then a running sum of "a new session starts here" flags), so the same definition
runs on DuckDB and on PySpark. :func:`session_table` turns labelled events into one row per
session with the session-level features of the :mod:`segkit.features` registry.

Rules
-----
Event order and ties
    Within a user, events are ordered by ``timestamp`` (and, when splitting on referrer changes,
    then by referrer with missing ones last). Events tied on these keys always land in the same
    session: the running count of session starts uses a ``RANGE`` frame, so whichever tied event
    the engine puts first, all of them get the same index. Session labels are therefore
    deterministic on any engine and independent of the input's row order. (No event-name
    tie-break is needed for that; sorting on the name too costs about a third more on 10M rows.)
    The one per-event value that depends on the order of ties is ``gap_s``: one of the tied
    events carries the gap and the others 0, so per-session sums are exact.
Timeout boundary
    A new session starts when the gap to the user's previous event is **strictly greater** than
    ``timeout``. A gap exactly equal to the timeout stays in the session (``30m`` gap, same session;
    ``30m`` plus one microsecond, new session).
Midnight (``split_at_midnight=True``)
    A new session also starts when the event's calendar date in ``timezone`` differs from the
    previous event's. Local dates are computed portably (no backend time-zone functions): the
    UTC offsets of ``timezone`` over the data's time range are looked up once in Python's tz
    database, and the expression adds the right offset to each timestamp. This costs one small
    ``min``/``max`` query when the expression is built.
Referrer change (``split_on_referrer_change=True``)
    A new session also starts when an event carries a traffic source that differs from the
    user's most recent earlier source (like a new campaign visit in web analytics). The source
    is the referrer's host, lowercased and without ``www.`` (``https://www.google.com/search?q=x``
    becomes ``google.com``; a value without a scheme such as ``Newsletter`` becomes
    ``newsletter``, ``google.com/x`` becomes ``google.com``). Empty values and
    ``direct``/``(direct)``/``(none)``/``none``/``-`` count as no source, and so does a referrer
    whose host equals the host of the event's ``page`` URL (an internal click). Events without a
    source never start a session. Internal referrers are only recognised when ``page`` holds full
    URLs; if your ``referrer`` column is the HTTP referrer of every page view and pages are paths,
    this mode will split on internal navigation: use it with a traffic-source column.
Gaps
    ``gap_s`` is the time since the previous event of the same session in seconds (NaN for a
    session's first event). :func:`session_table` uses it for engaged time without a second pass.
Session ids
    ``session_id`` is ``f"{user_id}-{session_index}"`` (``"u1-0"``, ``"u1-1"``, ...) with
    ``session_index`` the 0-based ordinal of the session within the user. It is unique (the part
    after the last ``-`` is the index), stable for the same events and parameters, and readable.
    A ``session_id`` column already in the input (a tracker's sessions) is replaced, and so are
    ``session_index`` and ``gap_s``.

Performance
-----------
The whole labelling is two window passes (the lag, then the running count) over the user's
events; no Python runs per row or per user. Keep the result as an Ibis expression
(``output="ibis"``) and pass it on to :func:`session_table` and
:func:`segkit.features.build_user_features`: DuckDB then reads only the columns those need. On
DuckDB, epoch arithmetic uses the native ``epoch_us`` (``TIMESTAMPTZ`` arithmetic goes through
ICU and is many times slower); other backends use the portable Ibis expression.
"""
from __future__ import annotations

import datetime as _dt
import zoneinfo
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import numpy as np
import pandas as pd

from .engine import ROW_COL, Data, Output, arrow_batches, as_table, backend_name, backend_of, epoch_us, finish, hash64, kept_source, materialize, numbered, order_free, shared, to_pandas
from .features import _US
from .errors import ParameterError, SchemaError, check_columns
from .params import parse_duration
from .timestamps import check_timezone

__all__ = ["split_sessions", "session_table", "referrer_source", "NO_SOURCE_REFERRERS"]

#: Referrer values that mean "no traffic source" when splitting on referrer changes.
NO_SOURCE_REFERRERS: tuple[str, ...] = ("", "direct", "(direct)", "(none)", "none", "-")
_HOST_RE = r"^[a-z][a-z0-9+.-]*://(?:[^@/?#]*@)?(?:www\.)?([^/?#:]+)"
_LABEL_RE = r"^(?:www\.)?([^/?#:]+)"
_OUTPUTS = ("pandas", "ibis")


def _check_output(output: Any) -> None:
    if output not in _OUTPUTS:
        raise ParameterError("output", output, list(_OUTPUTS))


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterError(name, value, "True or False")


def _check_timestamp_type(t: ibis.Table, col: str) -> None:
    if not t[col].type().is_timestamp():
        raise SchemaError(
            [
                {
                    "column": col,
                    "check": "dtype",
                    "count": None,
                    "examples": None,
                    "message": f"Column {col!r} must hold timestamps, got {t[col].type()}; "
                    "parse it with segkit.parse_timestamps",
                }
            ],
            title="Event log failed validation",
        )


def referrer_source(referrer: ibis.StringValue, page: ibis.StringValue | None = None) -> ibis.StringValue:
    """The traffic source of a referrer as an Ibis expression (the rule of the referrer-change mode).

    The host of a URL, lowercased and without ``www.``; a value without a scheme, lowercased;
    ``NULL`` for empty values, :data:`NO_SOURCE_REFERRERS`, and referrers whose host equals the
    host of ``page`` (internal navigation).

    Parameters
    ----------
    referrer : ibis string column
        Referrer URLs or source labels.
    page : ibis string column, optional
        Page URLs; when given, a referrer pointing at the page's own host is internal.

    Returns
    -------
    ibis string column

    Examples
    --------
    >>> import pandas as pd
    >>> from segkit.engine import as_table, to_pandas
    >>> t = as_table(pd.DataFrame({"referrer": ["https://www.Google.com/search?q=x", "direct", "Newsletter"]}))
    >>> to_pandas(t.select(s=referrer_source(t.referrer)))["s"].fillna("<none>").tolist()
    ['google.com', '<none>', 'newsletter']
    """
    raw = referrer.strip().lower()
    # URLs give their host; other values their part before any path ("google.com/x" -> "google.com")
    src = ibis.coalesce(raw.re_extract(_HOST_RE, 1).nullif(""), raw.re_extract(_LABEL_RE, 1).nullif(""))
    for label in NO_SOURCE_REFERRERS[1:]:
        src = src.nullif(label)
    if page is not None:
        page_host = page.strip().lower().re_extract(_HOST_RE, 1).nullif("")
        src = ibis.cases((src == page_host, ibis.null(dt.string)), else_=src)
    return src


def _utc_offsets(timezone: str, lo: pd.Timestamp, hi: pd.Timestamp) -> tuple[int, list[tuple[int, int]]]:
    """UTC offset (seconds) of ``timezone`` at ``lo`` and every change ``(epoch_s, new_offset)`` up to ``hi``."""
    tz = zoneinfo.ZoneInfo(timezone)

    def offset(epoch_s: int) -> int:
        off = _dt.datetime.fromtimestamp(epoch_s, tz).utcoffset()
        return int(off.total_seconds()) if off is not None else 0

    start = int(lo.timestamp()) // 3600 * 3600 - 3600
    stop = int(hi.timestamp()) // 3600 * 3600 + 7200
    grid = pd.date_range(pd.Timestamp(start, unit="s", tz="UTC"), pd.Timestamp(stop, unit="s", tz="UTC"), freq="15min")
    local = grid.tz_convert(timezone)
    offs = (local.tz_localize(None) - grid.tz_localize(None)).total_seconds().astype("int64").to_numpy()
    epochs = np.arange(start, start + 900 * len(grid), 900, dtype="int64")
    changes: list[tuple[int, int]] = []
    for i in np.flatnonzero(np.diff(offs) != 0):
        a, b = int(epochs[i]), int(epochs[i + 1])  # offset(a) != offset(b): bisect to the second
        before = offset(a)
        while b - a > 1:
            mid = (a + b) // 2
            if offset(mid) == before:
                a = mid
            else:
                b = mid
        changes.append((b, offset(b)))
    return int(offs[0]), changes


def _local_day(us: ibis.IntegerValue, timezone: str, lo: pd.Timestamp, hi: pd.Timestamp) -> ibis.IntegerValue:
    """Days since 1970-01-01 of the local calendar date in ``timezone`` of UTC epoch microseconds ``us``."""
    first, changes = _utc_offsets(timezone, lo, hi)
    offset_us = ibis.literal(first * _US, type="int64")
    if changes:
        branches = []
        prev = first
        for at, new in changes:
            branches.append((us < ibis.literal(at * _US, type="int64"), ibis.literal(prev * _US, type="int64")))
            prev = new
        offset_us = ibis.cases(*branches, else_=ibis.literal(prev * _US, type="int64"))
    return (us + offset_us) // (86_400 * _US)


def _session_columns(t: ibis.Table, td: pd.Timedelta, *, split_at_midnight: bool, split_on_referrer_change: bool,
                     timezone: str, user_col: str, timestamp_col: str, referrer_col: str) -> ibis.Table:
    """Add ``gap_s`` and ``session_index`` (the session rules of :func:`split_sessions`)."""
    # order within a user: timestamp, then (referrer mode) referrer with missing ones last
    order = [ibis.asc(timestamp_col)]
    if split_on_referrer_change:
        order.append(ibis.asc(referrer_col, nulls_first=False))
    if ROW_COL in t.columns:  # ties keep input order, so which tied row shows the gap is fixed
        order.append(ibis.asc(ROW_COL))
    helpers = {"_sk_us": epoch_us(t, t[timestamp_col])}
    if split_on_referrer_change:
        page = t["page"] if "page" in t.columns and t["page"].type().is_string() else None
        helpers["_sk_src"] = referrer_source(t[referrer_col].cast("string"), page)
    t = t.mutate(**helpers)
    w = ibis.window(group_by=user_col, order_by=order)
    lagged = {"_sk_prev": t["_sk_us"].lag().over(w)}  # NULL at the user's first event
    if split_at_midnight:
        bounds = to_pandas(t.aggregate(lo=t[timestamp_col].min(), hi=t[timestamp_col].max()))
        lo, hi = bounds["lo"].iloc[0], bounds["hi"].iloc[0]
        if pd.isna(lo):  # no events: any range will do
            lo = hi = pd.Timestamp("2000-01-01", tz="UTC")
        day = _local_day(t["_sk_us"], timezone, pd.Timestamp(lo), pd.Timestamp(hi))
        lagged["_sk_day"] = day
        lagged["_sk_prev_day"] = day.lag().over(w)
    if split_on_referrer_change:
        # the previous source is the lag among the user's events that have one
        src = t["_sk_src"]
        lagged["_sk_prev_src"] = src.lag().over(ibis.window(group_by=[t[user_col], src.isnull()], order_by=order))
    t = t.mutate(**lagged)
    gap = t["_sk_us"] - t["_sk_prev"]
    new = gap.isnull() | (gap > int(td / pd.Timedelta(microseconds=1)))
    if split_at_midnight:
        new = new | (t["_sk_day"] != t["_sk_prev_day"])
    if split_on_referrer_change:
        new = new | (t["_sk_src"].notnull() & t["_sk_prev_src"].notnull() & (t["_sk_src"] != t["_sk_prev_src"]))
    # gap_s is NULL exactly where a session starts, so it also carries the flag into the second pass
    t = t.mutate(gap_s=ibis.cases((new, ibis.null(dt.float64)), else_=gap.cast("float64") / _US))
    # RANGE framing: events tied on every order key get the same index, whichever of them the
    # engine ordered first (only that one can carry the new-session flag)
    w_sum = ibis.window(group_by=user_col, order_by=order, range=(None, 0))
    starts = t["gap_s"].isnull().cast("int64")
    t = t.mutate(session_index=(starts.sum().over(w_sum) - 1).cast("int64"))
    t = t.drop(*[c for c in t.columns if c.startswith("_sk_")])
    return t


_SPINE_BATCH = 1 << 20


def _session_numbers_sorted(t: ibis.Table, td: pd.Timedelta, *, user_col: str, timestamp_col: str) -> ibis.Table | None:
    """The inactivity rule of :func:`_session_columns` from one sort (DuckDB): a stored table of
    ``_sk_row``, ``session_index`` and ``gap_s`` for the rows of ``t``, or None on a hash collision.

    The engine sorts (64-bit hash of the visitor, time, row number) once and returns three
    integers per row; the gaps, the new-session flags and their running count per visitor are
    then plain array arithmetic. The SQL form needs two window passes (the running count can only
    start once the flags exist), each a full sort. A second, independent hash of the visitor must
    be constant within each run of the first; if it is not (two visitors share a 64-bit hash),
    None sends the caller to the SQL form. Ties in time are ordered by row number; they are one
    session either way (a zero gap never starts one).
    """
    import numpy as np
    import pyarrow as pa

    user = t[user_col]
    spine = t.select(
        _r=t[ROW_COL], _h=hash64(t, user), _h2=hash64(t, user.cast("string").concat("\x1f")), _us=epoch_us(t, t[timestamp_col]),
    ).order_by(["_h", "_us", "_r"])
    con = backend_of(t)
    timeout_us = int(td / pd.Timedelta(microseconds=1))
    # streamed in sorted batches (memory stays at one batch plus the three output columns);
    # the state carried across a batch boundary is the last row's visitor, time and numbers
    last_h = last_h2 = last_us = None
    number_base, user_first = 0, 0
    schema = pa.schema([("_sk_row", pa.int64()), ("session_index", pa.int64()), ("gap_s", pa.float64())])
    out: list[pa.RecordBatch] = []  # kept as batches: no concatenated copy of the result
    for batch in arrow_batches(spine, batch_size=_SPINE_BATCH, con=con):
        n = batch.num_rows
        if not n:
            continue
        h = batch.column("_h").to_numpy()
        h2 = batch.column("_h2").to_numpy()
        us = batch.column("_us").to_numpy()
        new_user = np.ones(n, dtype=bool)
        new_user[1:] = h[1:] != h[:-1]
        same = ~new_user[1:] & (h2[1:] != h2[:-1])
        if last_h is not None:
            new_user[0] = h[0] != last_h
            if not new_user[0] and h2[0] != last_h2:
                return None
        if bool(np.any(same)):
            return None
        gap = np.zeros(n, dtype="int64")
        gap[1:] = us[1:] - us[:-1]
        if last_us is not None:
            gap[0] = us[0] - last_us
        start = new_user | (gap > timeout_us)
        number = number_base + np.cumsum(start) - 1  # running session number over all visitors
        # the number of each row's visitor's first session: carried in from the last batch for
        # the rows before this batch's first new visitor
        firsts = np.flatnonzero(new_user)
        first_number = np.full(n, user_first, dtype="int64")
        if len(firsts):
            first_number[firsts[0]:] = np.repeat(number[firsts], np.diff(np.append(firsts, n)))
        out.append(pa.record_batch([batch.column("_r").cast(pa.int64()), pa.array(number - first_number, type=pa.int64()),
                                    pa.array(gap / _US, type=pa.float64(), mask=start)], schema=schema))
        last_h, last_h2, last_us = h[-1], h2[-1], us[-1]
        number_base, user_first = int(number[-1]) + 1, int(first_number[-1])
    parts = pa.Table.from_batches(out, schema=schema)
    return materialize(ibis.memtable(parts), con=con)


@order_free
def split_sessions(
    events: Data,
    *,
    timeout: str | pd.Timedelta = "30m",
    split_at_midnight: bool = False,
    timezone: str = "UTC",
    split_on_referrer_change: bool = False,
    user_col: str = "user_id",
    timestamp_col: str = "timestamp",
    event_col: str = "event",
    referrer_col: str = "referrer",
    session_col: str = "session_id",
    output: Output = "pandas",
) -> pd.DataFrame | ibis.Table:
    """Label each event with the session it belongs to.

    A user's new session starts at their first event and whenever the gap to their previous
    event exceeds ``timeout``; optionally also at local midnight and when the traffic source
    changes. See the module docstring for the exact rules (event order, boundary, sources).

    Parameters
    ----------
    events : DataFrame, Parquet path or Ibis table
        Canonical event log.
    timeout : str or Timedelta, default="30m"
        Inactivity gap that ends a session, with units (``"30m"``, ``"1h"``). A gap strictly
        greater than ``timeout`` starts a new session; an equal gap does not.
    split_at_midnight : bool, default=False
        Also start a new session when the local calendar date changes.
    timezone : str, default="UTC"
        IANA time zone whose midnight splits sessions. Only used with ``split_at_midnight=True``;
        any other value than ``"UTC"`` without it is an error.
    split_on_referrer_change : bool, default=False
        Also start a new session when an event's traffic source differs from the user's
        previous one (see :func:`referrer_source`).
    user_col, timestamp_col, event_col : str
        Columns with the user key, the UTC timestamp and the event name (used to order the
        pandas output).
    referrer_col : str, default="referrer"
        Referrer column; only with ``split_on_referrer_change=True``. When a ``page`` column is
        present, referrers to the page's own host are internal and ignored.
    session_col : str, default="session_id"
        Name of the output session key (replaces a column of that name).
    output : {"pandas", "ibis"}, default="pandas"
        Return a DataFrame, or the Ibis expression to keep the work in the backend.

    Returns
    -------
    DataFrame or Ibis table
        The events with ``session_col`` (string ``"{user}-{index}"``), ``session_index``
        (0-based int64 per user) and ``gap_s`` (seconds since the session's previous event, NaN
        for its first), ordered by user, session, timestamp and event name for pandas output.

    Raises
    ------
    ParameterError
        Timeout without units or not positive, unknown time zone, a mode's parameter given while
        the mode is off, a non-boolean switch, unknown ``output``.
    SchemaError
        A required column is missing (with a did-you-mean hint) or the timestamp is not a timestamp.

    Examples
    --------
    >>> import pandas as pd
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "a"], "event": ["page_view"] * 3,
    ...                    "timestamp": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 10:20",
    ...                                                 "2024-01-01 11:00"], utc=True)})
    >>> split_sessions(ev, timeout="30m")["session_id"].tolist()
    ['a-0', 'a-0', 'a-1']
    """
    td = parse_duration(timeout, name="timeout")
    _check_bool("split_at_midnight", split_at_midnight)
    _check_bool("split_on_referrer_change", split_on_referrer_change)
    check_timezone(timezone)
    if not split_at_midnight and timezone != "UTC":
        raise ParameterError(
            "timezone",
            timezone,
            message=f"Parameter 'timezone' got {timezone!r} but split_at_midnight is False; the time zone "
            "only sets where midnight falls: pass split_at_midnight=True or leave timezone='UTC'",
        )
    if not split_on_referrer_change and referrer_col != "referrer":
        raise ParameterError(
            "referrer_col",
            referrer_col,
            message=f"Parameter 'referrer_col' got {referrer_col!r} but split_on_referrer_change is False; "
            "pass split_on_referrer_change=True or leave referrer_col='referrer'",
        )
    _check_output(output)
    for name, value in (("user_col", user_col), ("timestamp_col", timestamp_col), ("event_col", event_col),
                        ("referrer_col", referrer_col), ("session_col", session_col)):
        if not isinstance(value, str) or not value:
            raise ParameterError(name, value, "a column name")

    # a DataFrame is numbered, so ties in time keep their input order in the pandas result
    t = numbered(events) if isinstance(events, pd.DataFrame) else as_table(events)
    required = [user_col, timestamp_col, event_col] + ([referrer_col] if split_on_referrer_change else [])
    check_columns(t.columns, required, what="event log")
    _check_timestamp_type(t, timestamp_col)
    replaced = [c for c in (session_col, "session_index", "gap_s") if c in t.columns]
    if replaced:
        t = t.drop(*replaced)

    # Events that carry their input row number (segkit.clean_events with output="ibis") are
    # sessionized on a narrow projection whose result, three numbers per row, is stored once and
    # joined back on the row number: the window sorts carry no wide payload and later queries
    # (session table, user features) do not repeat them.
    # (a DataFrame is small and already in memory: it takes the direct path, no table is stored)
    narrow = ROW_COL in t.columns and not isinstance(events, pd.DataFrame)
    full = t
    if narrow:
        keep = [ROW_COL, user_col, timestamp_col] + ([referrer_col] if split_on_referrer_change else [])
        if split_on_referrer_change and "page" in t.columns:
            keep.append("page")
        # Clean events record their unfiltered form (segkit.engine.remember_kept): the session
        # numbers exist only for kept rows, so joining them to the unfiltered events drops the
        # other rows with no anti-join, and the row numbers, visitors and times are read from
        # the filtered input without the standardization lookups.
        source = None if replaced or not isinstance(events, ibis.Table) else kept_source(events)
        if source is not None:
            full = source[0]
            t = (source[1] if set(keep) <= {ROW_COL, user_col, timestamp_col} else t).select(*dict.fromkeys(keep))
        else:
            t = t.select(*dict.fromkeys(keep))
    parts = None
    if narrow and not (split_at_midnight or split_on_referrer_change) and backend_name(t) == "duckdb":
        parts = _session_numbers_sorted(t, td, user_col=user_col, timestamp_col=timestamp_col)
    if narrow and parts is None:
        t = _session_columns(t, td, split_at_midnight=split_at_midnight, split_on_referrer_change=split_on_referrer_change,
                             timezone=timezone, user_col=user_col, timestamp_col=timestamp_col, referrer_col=referrer_col)
        parts = materialize(t.select(_sk_row=t[ROW_COL], session_index=t["session_index"], gap_s=t["gap_s"]))
    if narrow:
        j = full.inner_join(parts, full[ROW_COL] == parts._sk_row)
        t = j.select(*full.columns, gap_s=j["gap_s"], session_index=j["session_index"],
                     **{session_col: j[user_col].cast("string").concat("-", j["session_index"].cast("string"))})
        if output == "ibis":
            # every later query (session table, user features, segments) reads the sessionized
            # events; Spark would repeat this join, a shuffle of every event, for each
            t = shared(t)
    else:
        t = _session_columns(t, td, split_at_midnight=split_at_midnight, split_on_referrer_change=split_on_referrer_change,
                             timezone=timezone, user_col=user_col, timestamp_col=timestamp_col, referrer_col=referrer_col)
        t = t.mutate(**{session_col: t[user_col].cast("string").concat("-", t["session_index"].cast("string"))})
    if output == "pandas":
        t = t.order_by([user_col, "session_index", timestamp_col, event_col]
                       + ([referrer_col] if split_on_referrer_change else []) + ([ROW_COL] if ROW_COL in t.columns else []))
        return finish(t.drop(ROW_COL) if ROW_COL in t.columns else t, output)
    if isinstance(events, pd.DataFrame):
        t = t.drop(ROW_COL)
    return finish(t, output)


@order_free
def session_table(
    events: Data,
    *,
    features: list[str] | tuple[str, ...] | None = None,
    heartbeat_event: str = "engagement_time",
    gap_cap: str | pd.Timedelta = "5m",
    user_col: str = "user_id",
    session_col: str = "session_id",
    timestamp_col: str = "timestamp",
    event_col: str = "event",
    output: Output = "pandas",
) -> pd.DataFrame | ibis.Table:
    """One row per session with the session-level features of the registry.

    Parameters
    ----------
    events : DataFrame, Parquet path or Ibis table
        Events with a session key, e.g. the output of :func:`split_sessions` (or tracker
        sessions in ``session_col``).
    features : list of str, optional
        Session-level feature names to compute (see :func:`segkit.features.feature_registry`);
        all by default. Features they depend on are computed too.
    heartbeat_event : str, default="engagement_time"
        Event whose ``engagement_ms`` values add up to a session's engaged time.
    gap_cap : str or Timedelta, default="5m"
        For sessions without heartbeats, engaged time is the sum of the gaps between consecutive
        events, each gap capped at ``gap_cap`` so an idle tab does not count (time after the last
        event is not counted either).
    user_col, session_col, timestamp_col, event_col : str
        Key, time and event-name columns. Other inputs use canonical names (``page_type``,
        ``engagement_ms``, ``scroll_depth``, ``revenue``, ``device``, ``referrer``); when one is
        missing the features built from it are null.
    output : {"pandas", "ibis"}, default="pandas"

    Returns
    -------
    DataFrame or Ibis table
        ``user_col``, ``session_col``, ``session_index`` (when the events come from
        :func:`split_sessions`), ``start``, ``end`` and the features in registry order, ordered
        by user and start for pandas output. Durations are in seconds.

    Notes
    -----
    Events from :func:`split_sessions` are grouped by ``(user_col, session_index)`` (an integer
    key is cheaper than the string id, which is rebuilt as ``"{user}-{index}"``) and their
    ``gap_s`` gives the gaps; other events are grouped by ``(user_col, session_col)`` and the gaps
    come from a window over each session.

    Examples
    --------
    >>> import pandas as pd
    >>> ev = pd.DataFrame({"user_id": ["a", "a"], "event": ["page_view", "purchase"], "revenue": [None, 20.0],
    ...                    "timestamp": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 10:05"], utc=True)})
    >>> s = session_table(split_sessions(ev), features=["duration_s", "revenue"])
    >>> s[["session_id", "duration_s", "revenue"]].values.tolist()
    [['a-0', 300.0, 20.0]]
    """
    from .features import _session_features_expr

    _check_output(output)
    expr = _session_features_expr(
        as_table(events),
        features=features,
        heartbeat_event=heartbeat_event,
        gap_cap=gap_cap,
        user_col=user_col,
        session_col=session_col,
        timestamp_col=timestamp_col,
        event_col=event_col,
    )
    if output == "pandas":
        expr = expr.order_by([user_col, "start", session_col])
    return finish(expr, output)
