"""Event sequences: one ordered list of items per session (or per user), ready for pattern mining.

:func:`build_sequences` turns an event log into a :class:`Sequences` object: a table of
sequence ids (``ids``) and, aligned with it, one list of string items per sequence (``items``).
``Sequences`` is itself a sequence of those lists, so it can be passed straight to
:func:`segkit.patterns.mine_patterns` and :func:`segkit.patterns.discriminative_patterns`.

Rules
-----
Order
    Within a sequence, events are ordered by ``timestamp``, then by input order: the row order of
    a DataFrame; for a Parquet file or an Ibis table, the order in which the engine scans it
    (DuckDB keeps the file order by default). Sequences are ordered by user, then start time.
Items
    ``item="event"``: the event name. ``item="page_type"``: the ``page_type`` of ``page_view``
    events; every other event, and page views without a page type, is skipped (a clickstream of
    page types, without scrolls, heartbeats or clicks). ``item="event+category"``: the event name
    and the ``category`` joined by a colon (``"add_to_cart:shoes"``); an event without a category
    is just its name. ``item="flow"``: the page type of page views plus the shopping actions in
    :data:`FLOW_EVENTS` by name (``home > product > add_to_cart > cart > ...``), the flows of the
    brief's "Home → Product View → Add to Cart → Abandon". Any other value names a column whose
    values (as text) are the items.
    Events whose item is missing or empty are skipped, for every choice.
Gaps (``max_gap``)
    The gap is measured between consecutive events that give an item (so with
    ``item="page_type"`` between page views). A gap strictly greater than ``max_gap`` ends a
    sub-sequence and starts the next one. The sub-sequences of one session (or user) are
    numbered 0, 1, ... in time order (column ``part``) and their ids carry that suffix
    (``"u1-0#0"``, ``"u1-0#1"``); numbers are given before ``min_length`` filtering, so ids are
    stable and a dropped short part leaves a hole in the numbering.
Repeats (``collapse_repeats=True``)
    A run of equal consecutive items (within a sub-sequence) becomes one item; the run's events
    still count for the sequence's ``end``.
Length
    ``max_length`` keeps the first ``max_length`` items of each sequence (after collapsing) and
    drops the rest, events included; ``min_length`` then drops the sequences with fewer items.
Ids
    ``by="session"``: the ``session_col`` value (with the ``#part`` suffix under ``max_gap``);
    when one session id occurs for several users (tracker sessions are not always global), ids
    become ``"{user}/{session}"``. ``by="user"``: the user id.

Performance
-----------
Ordering, gap splitting, collapsing (a ``lag`` per sequence) and truncation are one Ibis
expression, run on DuckDB; the result comes back through Arrow sorted by sequence and position,
sequence boundaries are found with numpy, and the lists are built by Arrow
(``ListArray.from_arrays(...).to_pylist()``), with no Python loop over events.

Examples
--------
>>> import pandas as pd
>>> ev = pd.DataFrame({"user_id": ["a", "a", "a", "b"],
...                    "session_id": ["a-0", "a-0", "a-0", "b-0"],
...                    "event": ["page_view", "page_view", "add_to_cart", "search"],
...                    "timestamp": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 10:01",
...                                                 "2024-01-01 10:02", "2024-01-01 09:00"], utc=True)})
>>> seqs = build_sequences(ev, collapse_repeats=True)
>>> seqs.items
[['page_view', 'add_to_cart'], ['search']]
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from collections.abc import Sequence as _AbcSequence
from dataclasses import dataclass
from typing import Any, Literal, overload

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa

from .engine import Data, as_table, backend_of, epoch_us, to_pandas
from .errors import ParameterError, SchemaError, check_columns, did_you_mean, format_allowed
from .params import parse_duration

__all__ = ["Sequences", "build_sequences", "has_event", "ITEM_KINDS", "FLOW_EVENTS"]

#: The item granularities that are not plain column names.
ITEM_KINDS: tuple[str, ...] = ("flow", "event", "page_type", "event+category")
#: The actions ``item="flow"`` keeps beside page views (the steps of a shopping flow).
FLOW_EVENTS: tuple[str, ...] = ("search", "wishlist_add", "add_to_cart", "cart_view", "checkout_start", "purchase")
_BY = ("session", "user")
_PAGE_VIEW = "page_view"
_PAGE_TYPE_COL = "page_type"
_CATEGORY_COL = "category"
_PART_SEP = "#"
_USER_SEP = "/"


@dataclass(frozen=True, eq=False)
class Sequences(_AbcSequence):
    """Ordered item sequences with their ids, as returned by :func:`build_sequences`.

    A ``Sequences`` is a sequence of its ``items`` lists (``len``, indexing and iteration), so it
    can be given wherever a list of sequences is expected (:func:`segkit.patterns.mine_patterns`).

    Attributes
    ----------
    ids : DataFrame
        One row per sequence, aligned with ``items``: ``sequence_id`` (str), the user column,
        the session column (``by="session"``), ``part`` (only with ``max_gap``), ``start`` and
        ``end`` (UTC times of the first and last event kept) and ``length`` (number of items).
    items : list of list of str
        The items of each sequence, in time order.
    by : {"session", "user"}
        What one sequence is.
    item : str
        The item granularity (``"event"``, ``"page_type"``, ``"event+category"`` or a column).

    Examples
    --------
    >>> import pandas as pd
    >>> s = Sequences(pd.DataFrame({"sequence_id": ["s1", "s2"]}), [["a", "b"], ["b"]])
    >>> len(s), s[0], s.subset(["s2"]).items
    (2, ['a', 'b'], [['b']])
    """

    ids: pd.DataFrame
    items: list[list[str]]
    by: str = "session"
    item: str = "event"

    def __post_init__(self) -> None:
        if not isinstance(self.ids, pd.DataFrame) or "sequence_id" not in self.ids.columns:
            raise ParameterError("ids", type(self.ids).__name__,
                                 message="Sequences.ids must be a DataFrame with a 'sequence_id' column")
        if len(self.ids) != len(self.items):
            raise ParameterError("items", len(self.items),
                                 message=f"Sequences.items has {len(self.items)} sequences but ids has "
                                 f"{len(self.ids)} rows; they must be aligned")

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, index: int) -> list[str]: ...

    @overload
    def __getitem__(self, index: slice) -> list[list[str]]: ...

    def __getitem__(self, index: int | slice) -> list[str] | list[list[str]]:
        return self.items[index]

    def __iter__(self) -> Iterator[list[str]]:
        return iter(self.items)

    def __repr__(self) -> str:
        return f"Sequences(n={len(self)}, by={self.by!r}, item={self.item!r})"

    def to_frame(self) -> pd.DataFrame:
        """The ids table with an ``items`` column (the list of items of each sequence).

        Examples
        --------
        >>> import pandas as pd
        >>> Sequences(pd.DataFrame({"sequence_id": ["s1"]}), [["a", "b"]]).to_frame().values.tolist()
        [['s1', ['a', 'b']]]
        """
        out = self.ids.copy()
        out["items"] = pd.Series(self.items, index=out.index, dtype=object)
        return out

    def drop_items(self, items: Iterable[str]) -> Sequences:
        """The same sequences without the given items (``length`` updated; empty ones kept).

        Use it to compare cohorts on the paths that lead up to what defines them: buyers and
        cart abandoners differ trivially by ``purchase`` and the checkout pages.

        Examples
        --------
        >>> import pandas as pd
        >>> s = Sequences(pd.DataFrame({"sequence_id": ["s1"], "length": [3]}), [["a", "purchase", "b"]])
        >>> s.drop_items(["purchase"]).items
        [['a', 'b']]
        """
        if isinstance(items, str):
            raise ParameterError("items", items, "a list of items (wrap a single item in a list)")
        gone = set(items)
        kept = [[x for x in seq if x not in gone] for seq in self.items]
        ids = self.ids.copy()
        if "length" in ids.columns:
            ids["length"] = np.array([len(k) for k in kept], dtype=ids["length"].dtype)
        return Sequences(ids, kept, self.by, self.item)

    def subset(self, which: Iterable[Any]) -> Sequences:
        """The sequences selected by a boolean mask (aligned with ``ids``) or by a list of ids.

        Parameters
        ----------
        which : array-like of bool, or iterable of str
            A mask of ``len(self)`` booleans, or ``sequence_id`` values (in the order wanted).

        Returns
        -------
        Sequences

        Raises
        ------
        ParameterError
            A mask of the wrong length, or an id that is not a sequence id.

        Examples
        --------
        >>> import pandas as pd
        >>> s = Sequences(pd.DataFrame({"sequence_id": ["s1", "s2"]}), [["a"], ["b"]])
        >>> s.subset([False, True]).items
        [['b']]
        """
        values = which.to_numpy() if isinstance(which, (pd.Series, pd.Index)) else np.asarray(list(which), dtype=object)
        if len(values) and all(isinstance(v, (bool, np.bool_)) for v in values):
            if len(values) != len(self):
                raise ParameterError("which", f"mask of length {len(values)}",
                                     message=f"A boolean mask must have one value per sequence ({len(self)}), "
                                     f"got {len(values)}")
            rows = np.flatnonzero(values.astype(bool))
        else:
            pos = pd.Index(self.ids["sequence_id"].astype(str)).get_indexer([str(v) for v in values])
            if (pos < 0).any():
                bad = str(values[np.flatnonzero(pos < 0)[0]])
                raise ParameterError("which", bad,
                                     message=f"Sequence id {bad!r} not found;"
                                     f"{did_you_mean(bad, self.ids['sequence_id'].astype(str).head(10_000))} "
                                     f"Ids: {format_allowed(self.ids['sequence_id'].astype(str).head(5))}")
            rows = pos
        ids = self.ids.iloc[rows].reset_index(drop=True)
        return Sequences(ids, [self.items[i] for i in rows.tolist()], self.by, self.item)


def _check_name(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ParameterError(name, value, "a column name")
    return value


def _check_int(name: str, value: Any, lo: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ParameterError(name, value, f"an int >= {lo}")
    return int(value)


def _item_expr(t: ibis.Table, item: str, event_col: str) -> ibis.StringValue:
    """The item of every event as a string expression (NULL where the event gives no item)."""
    if item == "event":
        value = t[event_col].cast("string")
    elif item == "flow":
        ev = t[event_col].cast("string")
        value = ibis.cases((ev == _PAGE_VIEW, t[_PAGE_TYPE_COL].cast("string")), (ev.isin(list(FLOW_EVENTS)), ev),
                           else_=ibis.null("string"))
    elif item == "page_type":
        value = ibis.cases((t[event_col].cast("string") == _PAGE_VIEW, t[_PAGE_TYPE_COL].cast("string")),
                           else_=ibis.null("string"))
    elif item == "event+category":
        ev = t[event_col].cast("string")
        cat = t[_CATEGORY_COL].cast("string").nullif("")
        value = ibis.cases((cat.notnull(), ev.concat(":", cat)), else_=ev)
    else:
        value = t[item].cast("string")
    return value.nullif("")


def build_sequences(
    events: Data,
    *,
    by: Literal["session", "user"] = "session",
    item: str = "event",
    collapse_repeats: bool = False,
    max_gap: str | pd.Timedelta | None = None,
    min_length: int = 1,
    max_length: int | None = None,
    user_col: str = "user_id",
    session_col: str = "session_id",
    timestamp_col: str = "timestamp",
    event_col: str = "event",
) -> Sequences:
    """Build one ordered item sequence per session (or per user) from an event log.

    See the module docstring (:mod:`segkit.sequences`) for the exact rules on order, items,
    gaps, repeats, lengths and ids.

    Parameters
    ----------
    events : DataFrame, Parquet path or Ibis table
        Canonical events; with ``by="session"`` they need ``session_col`` (label sessions with
        :func:`segkit.sessions.split_sessions`). Not modified.
    by : {"session", "user"}, default="session"
        One sequence per session, or per user (all their events, across sessions).
    item : str, default="event"
        ``"event"`` (event names), ``"page_type"`` (page types of page views only; other events
        are skipped), ``"event+category"`` (``"add_to_cart:shoes"``, just the event name when the
        category is missing) or the name of any other column.
    collapse_repeats : bool, default=False
        Replace each run of equal consecutive items by one item.
    max_gap : str or Timedelta, optional
        Duration with units (``"30m"``): a gap strictly greater than this between consecutive
        events of a sequence splits it into sub-sequences (``part`` 0, 1, ...; ids get a
        ``#part`` suffix).
    min_length : int, default=1
        Drop sequences with fewer items (after collapsing and truncating).
    max_length : int, optional
        Keep only the first ``max_length`` items of each sequence; at least ``min_length``.
    user_col, session_col, timestamp_col, event_col : str
        Column names. ``session_col`` is only used with ``by="session"`` (changing it with
        ``by="user"`` is an error); ``event_col`` is not needed when ``item`` is another column.

    Returns
    -------
    Sequences
        ``ids`` (``sequence_id``, ``user_col``, ``session_col`` for sessions, ``part`` with
        ``max_gap``, ``start``, ``end``, ``length``) and ``items`` (list of lists of str), in the
        order user, start time.

    Raises
    ------
    ParameterError
        Unknown ``by``, unknown ``item`` (neither a granularity nor a column; with a
        did-you-mean hint), a duration without units or not positive, bad lengths or switches,
        ``session_col`` given with ``by="user"``.
    SchemaError
        A required column is missing (``session_col`` with ``by="session"``: the message says to
        run :func:`segkit.sessions.split_sessions`), or the timestamp column is not a timestamp.

    Examples
    --------
    >>> import pandas as pd
    >>> ev = pd.DataFrame({"user_id": ["a"] * 4, "event": ["page_view", "scroll_depth_25", "page_view", "page_view"],
    ...                    "page_type": ["home", None, "product", "product"],
    ...                    "timestamp": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 10:01",
    ...                                                 "2024-01-01 10:02", "2024-01-01 12:00"], utc=True)})
    >>> build_sequences(ev, by="user", item="page_type").items
    [['home', 'product', 'product']]
    >>> s = build_sequences(ev, by="user", item="page_type", max_gap="1h")
    >>> s.ids["sequence_id"].tolist(), s.items
    (['a#0', 'a#1'], [['home', 'product'], ['product']])
    """
    if by not in _BY:
        raise ParameterError("by", by, list(_BY))
    if not isinstance(item, str) or not item:
        raise ParameterError("item", item, list(ITEM_KINDS) + ["or a column name"])
    if not isinstance(collapse_repeats, (bool, np.bool_)):
        raise ParameterError("collapse_repeats", collapse_repeats, [True, False])
    gap = None if max_gap is None else parse_duration(max_gap, name="max_gap")
    min_length = _check_int("min_length", min_length, 1)
    if max_length is not None:
        max_length = _check_int("max_length", max_length, 1)
        if max_length < min_length:
            raise ParameterError("max_length", max_length, f"None or an int >= min_length ({min_length})")
    for name, value in (("user_col", user_col), ("session_col", session_col), ("timestamp_col", timestamp_col),
                        ("event_col", event_col)):
        _check_name(name, value)
    if by == "user" and session_col != "session_id":
        raise ParameterError("session_col", session_col,
                             message=f"Parameter 'session_col' got {session_col!r} but by='user'; sessions are only "
                             "used with by='session': pass by='session' or leave session_col='session_id'")

    if isinstance(events, pd.DataFrame):
        # the input order breaks timestamp ties; assign returns a new frame (the input is untouched)
        t = as_table(events.assign(_sk_row=np.arange(len(events), dtype=np.int64)))
        row = t["_sk_row"]
    else:
        t = as_table(events)
        row = ibis.row_number().cast("int64")
    columns = [c for c in t.columns if c != "_sk_row"]

    # which columns the item needs
    if item in ITEM_KINDS:
        item_cols = {"event": [event_col], "page_type": [event_col, _PAGE_TYPE_COL], "flow": [event_col, _PAGE_TYPE_COL],
                     "event+category": [event_col, _CATEGORY_COL]}[item]
    elif item in columns:
        item_cols = [item]
    else:
        hint = did_you_mean(item, list(ITEM_KINDS) + columns)
        raise ParameterError(
            "item", item, list(ITEM_KINDS),
            message=f"Parameter 'item' got {item!r}, which is neither a granularity nor a column;{hint} "
            f"Granularities: {format_allowed(ITEM_KINDS)}; columns: {format_allowed(columns)}",
        )
    if by == "session" and session_col not in columns:
        raise SchemaError([{
            "column": session_col, "check": "missing_column", "count": None, "examples": None,
            "message": f"Column {session_col!r} not found in event log;{did_you_mean(session_col, columns)} "
            "by='session' needs sessions: label them with segkit.split_sessions first (or use by='user')",
        }], title="event log is missing required columns")
    check_columns(columns, dict.fromkeys([user_col, timestamp_col, *item_cols]), what="event log")
    if not t[timestamp_col].type().is_timestamp():
        raise SchemaError([{
            "column": timestamp_col, "check": "dtype", "count": None, "examples": None,
            "message": f"Column {timestamp_col!r} must hold timestamps, got {t[timestamp_col].type()}; "
            "parse it with segkit.parse_timestamps",
        }], title="Event log failed validation")

    keys = {"_sk_user": t[user_col].cast("string")}
    if by == "session":
        keys["_sk_sess"] = t[session_col].cast("string")
    key_names = list(keys)
    base = t.select(**keys, _sk_ts=t[timestamp_col], _sk_us=epoch_us(t, t[timestamp_col]), _sk_row=row,
                    _sk_item=_item_expr(t, item, event_col))
    base = base.filter(base._sk_item.notnull() & base._sk_user.notnull()
                       & base._sk_us.notnull() & (base._sk_sess.notnull() if by == "session" else True))
    order = ["_sk_us", "_sk_row"]
    if gap is not None:
        w = ibis.window(group_by=key_names, order_by=order)
        base = base.mutate(_sk_prev=base._sk_us.lag().over(w))
        cut = (base._sk_us - base._sk_prev > int(gap / pd.Timedelta(microseconds=1))).fill_null(False)
        base = base.mutate(_sk_part=cut.cast("int64").sum().over(ibis.window(group_by=key_names, order_by=order,
                                                                                rows=(None, 0))))
    else:
        base = base.mutate(_sk_part=ibis.literal(0, type="int64"))
    seq_keys = key_names + ["_sk_part"]
    w_seq = ibis.window(group_by=seq_keys, order_by=order)
    if collapse_repeats:
        new = (base._sk_item != base._sk_item.lag().over(w_seq)).fill_null(True)
    else:
        new = ibis.literal(True)
    base = base.mutate(_sk_new=new)
    base = base.mutate(_sk_pos=(base._sk_new.cast("int64").sum().over(
        ibis.window(group_by=seq_keys, order_by=order, rows=(None, 0))) - 1))
    if max_length is not None:
        base = base.filter(base._sk_pos < max_length)
    if collapse_repeats:
        runs = base.group_by([*seq_keys, "_sk_pos"]).aggregate(
            _sk_item=base._sk_item.arbitrary(), _sk_ts=base._sk_ts.min(), _sk_end=base._sk_ts.max(),
            _sk_us=base._sk_us.min())
    else:
        runs = base.select(*seq_keys, "_sk_pos", "_sk_item", "_sk_ts", _sk_end=base._sk_ts, _sk_us=base._sk_us)
    # sequences in the order user, start (then session and part for ties); items by position
    runs = runs.mutate(_sk_first=runs._sk_us.min().over(ibis.window(group_by=seq_keys)))
    runs = runs.order_by(["_sk_user", "_sk_first", *key_names[1:], "_sk_part", "_sk_pos"])
    tbl = backend_of(runs).to_pyarrow(runs.select(*seq_keys, "_sk_pos", "_sk_item", "_sk_ts", "_sk_end"))
    return _assemble(tbl, by=by, item=item, gap=gap is not None, min_length=min_length, user_col=user_col,
                     session_col=session_col)


def _assemble(tbl: pa.Table, *, by: str, item: str, gap: bool, min_length: int, user_col: str,
              session_col: str) -> Sequences:
    """Cut the sorted item rows into sequences (numpy offsets, Arrow lists) and build the ids table."""
    n = tbl.num_rows
    pos = tbl.column("_sk_pos").to_numpy()
    starts = np.flatnonzero(pos == 0)
    offsets = np.append(starts, n).astype(np.int64)
    lengths = np.diff(offsets)
    keep = lengths >= min_length
    first = starts[keep]
    last = offsets[1:][keep] - 1
    ids = pd.DataFrame({user_col: tbl.column("_sk_user").take(pa.array(first)).to_pandas()})
    ids[user_col] = ids[user_col].astype(object)
    if by == "session":
        ids[session_col] = tbl.column("_sk_sess").take(pa.array(first)).to_pandas().astype(object)
    part = tbl.column("_sk_part").take(pa.array(first)).to_numpy().astype(np.int64)
    if gap:
        ids["part"] = part
    ids["start"] = _utc(tbl.column("_sk_ts").take(pa.array(first)))
    ids["end"] = _utc(tbl.column("_sk_end").take(pa.array(last)))
    ids["length"] = lengths[keep].astype(np.int64)
    base = ids[session_col] if by == "session" else ids[user_col]
    base = base.astype(str)
    if by == "session" and len(ids):
        pairs = ids[[user_col, session_col]].drop_duplicates()
        if pairs[session_col].duplicated().any():  # one session id for several users
            base = ids[user_col].astype(str) + _USER_SEP + base
    seq_id = base + _PART_SEP + pd.Series(part, index=ids.index).astype(str) if gap else base
    ids.insert(0, "sequence_id", seq_id.astype(object))
    values = tbl.column("_sk_item").combine_chunks()
    lists = pa.ListArray.from_arrays(pa.array(offsets, type=pa.int64()), values)
    if not keep.all():
        lists = lists.filter(pa.array(keep))
    return Sequences(ids.reset_index(drop=True), lists.to_pylist(), by, item)


def _utc(values: pa.ChunkedArray) -> pd.Series:
    s = values.to_pandas()
    s = pd.to_datetime(s, utc=True) if len(s) else pd.Series([], dtype="datetime64[us, UTC]")
    return s.reset_index(drop=True)


def has_event(sequences: Sequences, events: Data, event: str, *, user_col: str = "user_id",
              session_col: str = "session_id", event_col: str = "event") -> np.ndarray:
    """Which sequences come from a session (or user, for ``by="user"``) with ``event``.

    Looks at the events themselves, not the items, so it works whatever the granularity
    (``item="page_type"`` sequences never show a purchase). Returns a boolean mask aligned with
    ``sequences.ids``, for :meth:`Sequences.subset`.

    Examples
    --------
    >>> import pandas as pd
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "b"], "session_id": ["a-0", "a-0", "b-0"],
    ...                    "event": ["page_view", "purchase", "page_view"],
    ...                    "timestamp": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 10:01", "2024-01-01 10:00"], utc=True)})
    >>> s = build_sequences(ev)
    >>> has_event(s, ev, "purchase").tolist()
    [True, False]
    """
    key = session_col if sequences.by == "session" else user_col
    t = as_table(events)
    check_columns(t.columns, [key, event_col], what="events")
    if key not in sequences.ids.columns:
        check_columns(sequences.ids.columns, [key], what="sequence ids")
    hits = to_pandas(t.filter(t[event_col].cast("string") == event).select(_k=t[key].cast("string")).distinct())["_k"]
    return sequences.ids[key].astype(str).isin(set(hits)).to_numpy()

