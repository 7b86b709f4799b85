"""Read event logs from files or frames into the canonical schema, reporting every rejected row.

:func:`load_events` is the one boundary where raw data becomes a canonical event log
(:mod:`segkit.schema`). It reads generic CSV / Parquet / JSON Lines, or one of the adapters below,
parses timestamps with :func:`segkit.timestamps.parse_timestamps`, moves rows it cannot use to a
``rejected`` table (never silently dropping them), coerces canonical dtypes and validates the result
once. :func:`read_events` returns only the events and warns when anything was rejected.

Formats
-------
``csv``, ``parquet``, ``jsonl``
    Generic tables whose columns already carry canonical names, or are renamed with ``columns=``.
    Inferred from the suffixes ``.csv``/``.tsv`` (tab-separated), ``.parquet``/``.pq`` and
    ``.jsonl``/``.ndjson``/``.json`` (a ``.json`` file that starts with ``[`` is read as one JSON
    array of records). A compression suffix (``.gz``, ``.bz2``, ``.xz``) is looked through. A file
    whose suffix says nothing (``.txt``, no suffix) is inferred from its header line only when
    that is the session-rec YooChoose header (``SessionId<TAB>ItemId<TAB>Time``) or the DIGINETICA
    header; anything else needs ``format=``.
``rees46``
    The REES46 e-commerce export (``event_time, event_type, product_id, category_id,
    category_code, brand, price, user_id, user_session``), as a CSV file or a DataFrame.
    ``view`` -> ``page_view`` (``page_type="product"``), ``cart`` -> ``add_to_cart``,
    ``remove_from_cart`` -> ``remove_from_cart``, ``purchase`` -> ``purchase`` (with
    ``revenue=price``); other types pass through unchanged. The source type is kept in the extra
    column ``raw_event``; ``item_id=product_id``, ``category=category_code`` (falling back to
    ``category_id``), ``session_id=user_session``, ``properties`` = JSON ``{"brand", "category_id"}``.
``otto``
    The OTTO recsys JSON Lines, one session per line ``{"session": 1, "events": [{"aid", "ts",
    "type"}, ...]}``, or a flat table (DataFrame, ``.parquet`` or ``.csv``) with columns
    ``session, aid, ts, type``. ``clicks`` -> ``page_view`` (``page_type="product"``), ``carts`` ->
    ``add_to_cart``, ``orders`` -> ``purchase``; ``user_id = session_id = str(session)``,
    ``item_id = str(aid)``, ``ts`` in epoch milliseconds (seconds are detected by magnitude). The
    source type is kept in ``raw_event``.
``yoochoose``
    YooChoose clicks (RecSys Challenge 2015), in either layout, told apart by the first line:
    the original ``yoochoose-clicks.dat`` (comma-separated, no header: ``session, timestamp, item,
    category``, ISO timestamps such as ``2014-04-07T10:51:09.277Z``), or the session-rec
    "prepared" files (tab-separated, header ``SessionId ItemId Time``, ``Time`` in epoch seconds
    with a fraction). A DataFrame is told apart by its columns the same way. Every row is a click
    on an item: ``event`` is :data:`YOOCHOOSE_EVENT` (``product_click``), ``item_id=item``.
    YooChoose has **no user ids**: a visitor is a session, ``user_id = session_id = str(session)``,
    so "users" counted downstream are sessions. ``category`` (original layout only) is the click
    context as written: ``"S"`` for a special offer, 1-12 a category, longer numbers a brand;
    ``"0"`` (missing in the RecSys 2015 description) becomes missing. Other columns of the
    prepared layout are kept as extra columns.
``diginetica``
    DIGINETICA item views (CIKM Cup 2016 ``train-item-views.csv``), ``;``-separated with the
    header ``sessionId;userId;itemId;timeframe;eventdate`` (the snake-case spelling
    ``session_id;user_id;item_id;timeframe;eventdate`` is read the same), as a file or a
    DataFrame. Each row is a product page view: ``event="page_view"``, ``page_type="product"``,
    ``item_id=itemId``, ``session_id=sessionId``. ``user_id`` is ``userId`` when present and
    ``"session:<sessionId>"`` otherwise (anonymous sessions; ``NA`` is missing), so a logged-in
    user's sessions share one visitor while an anonymous session is a visitor of its own.
    The log holds no clock times: ``eventdate`` is a calendar date and ``timeframe`` a
    millisecond offset within the session, so ``timestamp`` is midnight of ``eventdate`` (a naive
    wall time in ``timezone``) plus ``timeframe``. Order and gaps within a session are real; the
    time of day is not. A row whose ``eventdate`` or ``timeframe`` is blank is
    ``missing_timestamp``; one whose date is not ``YYYY-MM-DD`` or whose offset is not a
    non-negative number is ``unparseable_timestamp``.
``access_log``
    Apache/Nginx combined (or common) log format, inferred from ``.log``. One event per request
    line, duplicates kept (deduplication is a cleaning step). ``user_id`` is the first 16 hex
    digits of ``sha1("ip|user_agent")``; ``page`` is the request path without its query string,
    which goes to the extra column ``query``; ``method`` and ``protocol`` are extra columns;
    ``status``/``bytes`` are Int64 (``-`` is missing), a ``-`` or empty referrer or user agent is
    missing. ``ident`` and ``authuser`` (``%l %u``) are not kept. ``event`` is
    ``"asset_request"`` when the path ends in one of :data:`STATIC_EXTENSIONS`, ``"bad_request"``
    when the request line is not ``METHOD TARGET [PROTOCOL]`` and ``"page_view"`` otherwise.
    A line whose user agent is cut off before its closing quote is still read, with the truncated
    user agent as written; any other line that does not match is rejected as ``malformed_line``.

Rows, rejection and extra columns
---------------------------------
``rejected.row`` is the 0-based data row (CSV records without the header, Parquet/DataFrame
positions) or the 0-based physical line (JSON Lines, OTTO, access logs). Blank lines in line-based
formats are skipped and not counted. For OTTO, ``n_input`` counts events plus malformed lines, so
``n_input == len(events) + len(rejected)`` always holds. Each rejected row gets one reason, the first
that applies, in this order: ``malformed_line``, ``missing_user_id``, ``missing_event``,
``missing_timestamp``, ``unparseable_timestamp``, ``invalid_<column>`` (a canonical numeric column
holding a value that is not a number, or ``scroll_depth`` outside [0, 100]).

Source columns that are neither canonical nor renamed by ``columns=`` are kept, unchanged, after
the canonical ones. Events keep the input order and get a fresh RangeIndex.

An empty input (a zero-byte file, a header-only CSV, a log without lines) gives an empty
:class:`LoadedEvents` whose ``events`` still has the required columns with canonical dtypes.
"""
from __future__ import annotations

import bz2
import gzip
import hashlib
import itertools
import json
import lzma
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .errors import ParameterError, SchemaError, SegkitError, check_columns, did_you_mean, format_allowed
from .schema import (
    CANONICAL_COLUMNS,
    FLOAT_COLUMNS,
    INT_COLUMNS,
    REQUIRED_COLUMNS,
    STRING_COLUMNS,
    coerce_events,
    validate_events,
)
from .timestamps import _is_blank, check_timezone, parse_timestamps, timestamp_failures

__all__ = [
    "LoadedEvents",
    "DataQualityWarning",
    "load_events",
    "read_events",
    "FORMATS",
    "REJECT_REASONS",
    "STATIC_EXTENSIONS",
    "REES46_EVENTS",
    "OTTO_EVENTS",
    "YOOCHOOSE_EVENT",
    "DIGINETICA_EVENT",
]

FORMATS: tuple[str, ...] = ("csv", "parquet", "jsonl", "rees46", "otto", "yoochoose", "diginetica", "access_log")
#: Reason codes of ``LoadedEvents.rejected``; ``invalid_<column>`` is written with the column name.
REJECT_REASONS: tuple[str, ...] = (
    "malformed_line",
    "missing_user_id",
    "missing_event",
    "missing_timestamp",
    "unparseable_timestamp",
    "invalid_<column>",
)
#: Request paths ending in one of these (case-insensitive) are ``asset_request`` events.
STATIC_EXTENSIONS: tuple[str, ...] = (
    ".css", ".js", ".map", ".png", ".jpg", ".jpeg", ".gif", ".ico", ".svg", ".webp", ".bmp",
    ".woff", ".woff2", ".ttf", ".eot", ".otf",
)
REES46_EVENTS: dict[str, str] = {
    "view": "page_view",
    "cart": "add_to_cart",
    "remove_from_cart": "remove_from_cart",
    "purchase": "purchase",
}
OTTO_EVENTS: dict[str, str] = {"clicks": "page_view", "carts": "add_to_cart", "orders": "purchase"}
#: Canonical event of every YooChoose click (a click on a product in a list).
YOOCHOOSE_EVENT: str = "product_click"
#: Canonical event of every DIGINETICA item view (shown with ``page_type="product"``).
DIGINETICA_EVENT: str = "page_view"

_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".log": "access_log",
}
_COMPRESSION = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_DATAFRAME_FORMATS = (None, "rees46", "otto", "yoochoose", "diginetica")
_ADAPTERS = ("rees46", "otto", "yoochoose", "diginetica", "access_log")
_LINE_KWARGS = ("encoding",)

_QUOTED = r'[^"\\]*(?:\\.[^"\\]*)*'  # body of a double-quoted field; \" escapes a quote
_LOG_RE = (
    r'^(?P<ip>\S+) (?P<ident>\S+) (?P<authuser>\S+) \[(?P<time>[^\]]*)\] '
    rf'"(?P<request>{_QUOTED})" (?P<status>\d{{3}}|-) (?P<bytes>\d+|-)'
    rf'(?: "(?P<referrer>{_QUOTED})" "(?P<user_agent>{_QUOTED})"?)?\s*$'
)
_REQUEST_RE = r"^(?P<method>[A-Za-z]+) (?P<target>\S+)(?: (?P<protocol>\S+))?$"
_TARGET_RE = r"^(?P<page>[^?]*)(?:\?(?P<query>.*))?$"


class DataQualityWarning(UserWarning):
    """Rows were rejected while reading an event log (see :attr:`LoadedEvents.rejected`)."""


@dataclass(frozen=True)
class LoadedEvents:
    """The result of :func:`load_events`: canonical events plus every row that was left out.

    Attributes
    ----------
    events : pandas.DataFrame
        Canonical, validated event log (see :mod:`segkit.schema`).
    rejected : pandas.DataFrame
        Columns ``row`` (0-based input row or line), ``reason`` (short code, see
        :data:`REJECT_REASONS`) and ``raw`` (the raw line, or the raw row as JSON).
    n_input : int
        Input units read; always ``len(events) + len(rejected)``.
    source : str
        The path as given, or ``"<DataFrame>"``.

    Examples
    --------
    >>> import pandas as pd
    >>> raw = pd.DataFrame({"user_id": ["u1", None], "event": ["page_view", "page_view"],
    ...                     "timestamp": ["2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z"]})
    >>> loaded = load_events(raw)
    >>> loaded.n_input, len(loaded.events), loaded.reason_counts.to_dict()
    (2, 1, {'missing_user_id': 1})
    """

    events: pd.DataFrame
    rejected: pd.DataFrame
    n_input: int
    source: str

    @property
    def reason_counts(self) -> pd.Series:
        """Number of rejected rows per reason, largest first."""
        return self.rejected["reason"].value_counts().rename("count")


# ---------------------------------------------------------------------------------------------
# public API


def load_events(
    source: str | os.PathLike | pd.DataFrame,
    *,
    format: str | None = None,
    columns: Mapping[str, str] | None = None,
    timezone: str = "UTC",
    **read_kwargs: Any,
) -> LoadedEvents:
    """Read an event log into the canonical schema and report the rows that could not be used.

    See the module docstring (:mod:`segkit.io`) for the formats, the adapters' mappings, the
    rejection reasons and how rows are numbered.

    Parameters
    ----------
    source : str, pathlib.Path or pandas.DataFrame
        A file (a directory for a Parquet dataset) or a frame; a frame is never modified.
    format : {"csv", "parquet", "jsonl", "rees46", "otto", "yoochoose", "diginetica", "access_log"}, optional
        Inferred from the file suffix when omitted (see the module docstring for the two headers
        recognised in files without a telling suffix). A DataFrame takes no format (canonical or
        renamed columns), ``"rees46"``, ``"otto"`` (flat ``session, aid, ts, type``),
        ``"yoochoose"`` or ``"diginetica"`` (the files' columns).
    columns : dict of str to str, optional
        Renames source columns to canonical ones, e.g. ``{"visitor_id": "user_id"}``; only for
        ``csv``, ``parquet``, ``jsonl`` and DataFrames (adapters map their own columns).
    timezone : str, default="UTC"
        Time zone of naive timestamps (values without an offset).
    **read_kwargs
        Passed to :func:`pandas.read_csv` / :func:`pandas.read_parquet` (csv, parquet, rees46,
        flat otto, yoochoose, diginetica). Line formats (jsonl, otto JSONL, access_log) accept only ``encoding``.

    Returns
    -------
    LoadedEvents
        ``events``, ``rejected``, ``n_input`` and ``source``.

    Raises
    ------
    SegkitError
        If the file does not exist or cannot be read as the format.
    ParameterError
        For an unknown or uninferable ``format``, a bad ``columns`` target, ``columns`` with an
        adapter, an unknown read option, or a bad ``timezone``.
    SchemaError
        If a ``columns`` key is not in the source, or required columns are missing (each with a
        did-you-mean hint).

    Examples
    --------
    >>> import pandas as pd
    >>> raw = pd.DataFrame({"visitor_id": [7, 7], "action": ["page_view", "purchase"],
    ...                     "ts": ["2024-01-01 10:00", "1704103260"], "utm": ["ads", "ads"]})
    >>> loaded = load_events(raw, columns={"visitor_id": "user_id", "action": "event",
    ...                                    "ts": "timestamp"})
    >>> loaded.events.columns.tolist()
    ['user_id', 'timestamp', 'event', 'utm']
    >>> loaded.events["timestamp"].dt.strftime("%H:%M").tolist()
    ['10:00', '10:01']
    """
    check_timezone(timezone)
    if format is not None and format not in FORMATS:
        raise ParameterError("format", format, list(FORMATS))
    if columns is not None:
        if not isinstance(columns, Mapping):
            raise ParameterError("columns", columns, "a dict mapping source column -> canonical column")
        if format in _ADAPTERS:
            raise ParameterError(
                "columns",
                dict(columns),
                message=f"Parameter 'columns' does not apply to format={format!r}: the {format} adapter "
                "maps its own columns. Drop columns=, or read the file as 'csv'/'parquet'/'jsonl' and rename.",
            )
        _check_mapping_targets(columns)

    if isinstance(source, pd.DataFrame):
        if format not in _DATAFRAME_FORMATS:
            raise ParameterError(
                "format",
                format,
                list(_DATAFRAME_FORMATS),
                message=f"Parameter 'format' got {format!r}, but the source is a DataFrame; "
                f"allowed for DataFrames: {format_allowed(_DATAFRAME_FORMATS)}",
            )
        if read_kwargs:
            name = next(iter(read_kwargs))
            raise ParameterError(name, read_kwargs[name], message=f"Read option {name!r} applies to files only, not DataFrames")
        label = "<DataFrame>"
        if format == "rees46":
            return _finish(*_rees46_frame(source), source=label, timezone=timezone)
        if format == "otto":
            return _finish(*_otto_flat(source), source=label, timezone=timezone)
        if format == "yoochoose":
            return _finish(*_yoochoose_frame(source), source=label, timezone=timezone)
        if format == "diginetica":
            return _finish(*_diginetica_frame(source), source=label, timezone=timezone)
        return _finish(*_generic_frame(source, columns, label), source=label, timezone=timezone)

    if not isinstance(source, (str, os.PathLike)):
        raise ParameterError("source", type(source).__name__, "a path (str or pathlib.Path) or a pandas DataFrame")
    path = Path(source)
    label = str(source)
    if not path.exists():
        raise SegkitError(f"Event file not found: {label!r} (resolved to {str(path.resolve())!r})")
    fmt = format or _infer_format(path)
    if path.is_dir() and not (fmt == "parquet" or (fmt == "otto" and _table_suffix(path) == "parquet")):
        raise SegkitError(f"{label!r} is a directory; only a Parquet dataset can be read from a directory")
    if path.is_file() and path.stat().st_size == 0:
        return _empty(label)
    try:
        if fmt == "csv":
            frame = _read_csv(path, columns, read_kwargs)
            if frame is None:
                return _empty(label)
            parts = _generic_frame(frame, columns, label)
        elif fmt == "parquet":
            parts = _generic_frame(pd.read_parquet(path, **read_kwargs), columns, label)
        elif fmt == "jsonl":
            parts = _read_jsonl(path, columns, label, _line_kwargs(read_kwargs, fmt))
        elif fmt == "rees46":
            frame = _read_csv(path, None, {"dtype": _REES46_STR_DTYPES, **read_kwargs})
            if frame is None:
                return _empty(label)
            parts = _rees46_frame(frame)
        elif fmt == "otto":
            table = _table_suffix(path)
            if table == "parquet":
                parts = _otto_flat(pd.read_parquet(path, **read_kwargs))
            elif table == "csv":
                frame = _read_csv(path, None, read_kwargs)
                if frame is None:
                    return _empty(label)
                parts = _otto_flat(frame)
            else:
                parts = _read_otto_jsonl(path, _line_kwargs(read_kwargs, fmt))
        elif fmt == "yoochoose":
            frame = _read_yoochoose(path, label, read_kwargs)
            if frame is None:
                return _empty(label)
            parts = _yoochoose_frame(frame)
        elif fmt == "diginetica":
            frame = _read_text_table(path, {"sep": ";"}, read_kwargs)
            if frame is None:
                return _empty(label)
            parts = _diginetica_frame(frame)
        else:
            parts = _read_access_log(path, _line_kwargs(read_kwargs, fmt))
    except SegkitError:
        raise
    except TypeError as exc:  # unknown keyword passed through to pandas
        if not read_kwargs:
            raise
        raise ParameterError("read_kwargs", sorted(read_kwargs), message=f"Bad read option for {fmt}: {exc}") from exc
    except (ValueError, OSError, pa.ArrowException, pd.errors.ParserError) as exc:
        raise SegkitError(f"Could not read {label!r} as {fmt}: {exc}") from exc
    return _finish(*parts, source=label, timezone=timezone)


def read_events(
    source: str | os.PathLike | pd.DataFrame,
    *,
    format: str | None = None,
    columns: Mapping[str, str] | None = None,
    timezone: str = "UTC",
    **read_kwargs: Any,
) -> pd.DataFrame:
    """Read an event log like :func:`load_events` and return only the events.

    Emits a :class:`DataQualityWarning` summarising the rejected rows by reason when any were
    rejected (and when the source holds no events at all).

    Parameters
    ----------
    source, format, columns, timezone, **read_kwargs
        As for :func:`load_events`.

    Returns
    -------
    pandas.DataFrame
        The canonical event log.

    Examples
    --------
    >>> import pandas as pd
    >>> raw = pd.DataFrame({"user_id": ["u1"], "event": ["page_view"], "timestamp": ["2024-01-01"]})
    >>> read_events(raw)["timestamp"].dtype
    datetime64[us, UTC]
    """
    loaded = load_events(source, format=format, columns=columns, timezone=timezone, **read_kwargs)
    if len(loaded.rejected):
        counts = ", ".join(f"{reason}={n:,}" for reason, n in loaded.reason_counts.items())
        warnings.warn(
            f"Rejected {len(loaded.rejected):,} of {loaded.n_input:,} input rows from {loaded.source!r} "
            f"({counts}); use segkit.io.load_events(...).rejected to inspect them",
            DataQualityWarning,
            stacklevel=2,
        )
    elif loaded.n_input == 0:
        warnings.warn(f"No events in {loaded.source!r}: the source is empty", DataQualityWarning, stacklevel=2)
    return loaded.events


# ---------------------------------------------------------------------------------------------
# shared pipeline

# An adapter returns: frame (canonical + extra columns, raw values), rows (input row per frame
# row), raw_for (positions -> raw text), pre_rejected (rows rejected while reading), n_input.
_Parts = tuple[pd.DataFrame, np.ndarray, Callable[[np.ndarray], list[str]], pd.DataFrame, int]


def _finish(
    frame: pd.DataFrame,
    rows: np.ndarray,
    raw_for: Callable[[np.ndarray], list[str]],
    pre_rejected: pd.DataFrame,
    n_input: int,
    *,
    source: str,
    timezone: str,
) -> LoadedEvents:
    """Parse, reject, coerce and validate an adapter's frame."""
    check_columns(list(map(str, frame.columns)), REQUIRED_COLUMNS, what=f"events from {source!r}")
    n = len(frame)
    frame = frame.reset_index(drop=True)
    reasons = np.full(n, None, dtype=object)

    def reject(mask: Any, reason: str) -> None:
        mask = np.asarray(mask, dtype=bool) & pd.isna(reasons)
        reasons[mask] = reason

    out: dict[str, Any] = {}
    for col in ("user_id", "event"):
        out[col] = _as_string(frame[col])
        reject(_is_blank(out[col]).to_numpy(), f"missing_{col}")
    raw_ts = frame["timestamp"]
    parsed = parse_timestamps(raw_ts, timezone=timezone)
    reject(_is_blank(raw_ts).to_numpy() & parsed.isna().to_numpy(), "missing_timestamp")
    reject(timestamp_failures(raw_ts, parsed).to_numpy(), "unparseable_timestamp")
    out["timestamp"] = parsed
    for col in frame.columns:
        if col in out:
            continue
        values = frame[col]
        if col in STRING_COLUMNS:
            out[col] = _as_string(values)
        elif col in FLOAT_COLUMNS or col in INT_COLUMNS:
            numbers = _to_number(values)
            bad = numbers.isna().to_numpy() & ~_is_blank(values).to_numpy()
            if col in INT_COLUMNS:
                bad |= (numbers.notna() & (numbers % 1 != 0)).to_numpy(dtype=bool)
            if col == "scroll_depth":
                bad |= ((numbers < 0) | (numbers > 100)).fillna(False).to_numpy(dtype=bool)
            reject(bad, f"invalid_{col}")
            out[col] = numbers
        else:
            out[col] = values
    converted = pd.DataFrame(out, index=frame.index)[list(frame.columns)]

    bad = pd.notna(reasons)
    events = coerce_events(converted.loc[~bad]).reset_index(drop=True)
    validate_events(events)
    positions = np.flatnonzero(bad)
    rejected = pd.DataFrame(
        {
            "row": np.asarray(rows, dtype=np.int64)[positions],
            "reason": pd.Series(reasons[positions], dtype="str"),
            "raw": pd.Series(raw_for(positions), dtype="str"),
        }
    )
    if len(pre_rejected):
        rejected = pd.concat([pre_rejected, rejected], ignore_index=True)
    rejected = rejected.sort_values("row", kind="stable").reset_index(drop=True)
    rejected = rejected.astype({"row": "int64", "reason": "str", "raw": "str"})
    return LoadedEvents(events=events, rejected=rejected, n_input=int(n_input), source=source)


def _empty(source: str) -> LoadedEvents:
    frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in REQUIRED_COLUMNS})
    return _finish(frame, np.array([], dtype=np.int64), lambda pos: [], _no_rejects(), 0, source=source, timezone="UTC")


def _no_rejects() -> pd.DataFrame:
    return pd.DataFrame({"row": pd.Series([], dtype="int64"), "reason": pd.Series([], dtype="str"), "raw": pd.Series([], dtype="str")})


def _rejects(rows: list[int], reason: str, raw: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {"row": pd.Series(rows, dtype="int64"), "reason": pd.Series([reason] * len(rows), dtype="str"), "raw": pd.Series(raw, dtype="str")}
    )


def _as_string(values: pd.Series) -> pd.Series:
    """Render ids and text as strings: integral floats without ``.0``, dicts/lists as JSON."""
    if pd.api.types.is_string_dtype(values.dtype) and values.dtype != object:
        return values
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("str")
    if pd.api.types.is_float_dtype(values.dtype):
        finite = values.dropna()
        if len(finite) == 0 or bool((finite % 1 == 0).all()):
            return values.astype("Int64").astype("str")
        return values.astype("str")
    if values.dtype == object:
        inferred = pd.api.types.infer_dtype(values, skipna=True)
        if inferred in ("string", "empty"):
            return values.astype("str")
        return values.map(_render_value, na_action="ignore").astype("str")
    return values.astype("str")


def _render_value(v: Any) -> Any:
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str, ensure_ascii=False)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _to_number(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("float64")
    return pd.to_numeric(values, errors="coerce").astype("float64")


def _raw_json_rows(source: pd.DataFrame) -> Callable[[np.ndarray], list[str]]:
    def raw_for(positions: np.ndarray) -> list[str]:
        if len(positions) == 0:
            return []
        text = source.iloc[positions].to_json(orient="records", lines=True, date_format="iso", default_handler=str)
        return text.splitlines()

    return raw_for


# ---------------------------------------------------------------------------------------------
# generic tables


def _check_mapping_targets(columns: Mapping[str, str]) -> None:
    for src, target in columns.items():
        if target not in CANONICAL_COLUMNS:
            hint = did_you_mean(target, CANONICAL_COLUMNS) if isinstance(target, str) else ""
            raise ParameterError(
                "columns",
                target,
                list(CANONICAL_COLUMNS),
                message=f"Parameter 'columns' maps {src!r} to {target!r}, which is not a canonical column;{hint} "
                f"Allowed: {format_allowed(CANONICAL_COLUMNS, limit=len(CANONICAL_COLUMNS))}",
            )
    targets = list(columns.values())
    dupes = sorted({t for t in targets if targets.count(t) > 1})
    if dupes:
        raise ParameterError(
            "columns", dict(columns), message=f"Parameter 'columns' maps several source columns to {dupes!r}; map each at most once"
        )


def _apply_mapping(frame: pd.DataFrame, columns: Mapping[str, str] | None, label: str) -> pd.DataFrame:
    if not columns:
        return frame
    have = list(map(str, frame.columns))
    failures = []
    for src in columns:
        if src not in have:
            failures.append(
                {
                    "column": src,
                    "check": "missing_column",
                    "count": None,
                    "examples": None,
                    "message": f"Column {src!r} given in columns= not found in {label!r};"
                    f"{did_you_mean(src, have)} Available: {format_allowed(have)}",
                }
            )
    if failures:
        raise SchemaError(failures, title="columns= names source columns that do not exist")
    for src, target in columns.items():
        if target in have and target not in columns and target != src:
            raise ParameterError(
                "columns",
                dict(columns),
                message=f"Parameter 'columns' maps {src!r} to {target!r}, but {label!r} already has a "
                f"{target!r} column; map that column too (or drop it first)",
            )
    return frame.rename(columns=dict(columns))


def _generic_frame(frame: pd.DataFrame, columns: Mapping[str, str] | None, label: str) -> _Parts:
    mapped = _apply_mapping(frame, columns, label)
    rows = np.arange(len(frame), dtype=np.int64)
    return mapped, rows, _raw_json_rows(frame), _no_rejects(), len(frame)


def _string_dtypes(columns: Mapping[str, str] | None) -> dict[str, str]:
    """dtype= for read_csv: read columns that end up as canonical strings/timestamps as text."""
    mapping = dict(columns or {})
    text_targets = set(STRING_COLUMNS) | {"timestamp"}
    dtypes = {c: "str" for c in text_targets if c not in mapping}
    dtypes.update({src: "str" for src, target in mapping.items() if target in text_targets})
    return dtypes


def _read_csv(path: Path, columns: Mapping[str, str] | None, read_kwargs: dict[str, Any]) -> pd.DataFrame | None:
    kwargs = dict(read_kwargs)
    dtype = kwargs.pop("dtype", None)
    merged: Any = _string_dtypes(columns)
    if isinstance(dtype, Mapping):
        merged.update(dtype)
    elif dtype is not None:
        merged = dtype
    if _strip_compression(path).suffix.lower() == ".tsv":
        kwargs.setdefault("sep", "\t")
    try:
        return pd.read_csv(path, dtype=merged, **kwargs)
    except pd.errors.EmptyDataError:
        return None


def _line_kwargs(read_kwargs: dict[str, Any], fmt: str) -> dict[str, Any]:
    for name, value in read_kwargs.items():
        if name not in _LINE_KWARGS:
            raise ParameterError(
                name, value, message=f"Read option {name!r} is not supported for format {fmt!r}; allowed: {list(_LINE_KWARGS)!r}"
            )
    return dict(read_kwargs)


def _strip_compression(path: Path) -> Path:
    return path.with_suffix("") if path.suffix.lower() in _COMPRESSION or path.suffix.lower() in (".zip", ".zst") else path


def _table_suffix(path: Path) -> str | None:
    return _SUFFIXES.get(_strip_compression(path).suffix.lower())


def _infer_format(path: Path) -> str:
    fmt = _table_suffix(path)
    if fmt is None and path.is_file():
        fmt = _sniff_header(path)
    if fmt is None:
        suffix = _strip_compression(path).suffix
        raise ParameterError(
            "format",
            None,
            list(FORMATS),
            message=f"Cannot infer the format of {str(path)!r} from its suffix {suffix!r}; pass format= one of "
            f"{format_allowed(FORMATS)} (known suffixes: {format_allowed(_SUFFIXES)})",
        )
    return fmt


def _read_lines(path: Path) -> list[bytes]:
    opener = _COMPRESSION.get(path.suffix.lower(), open)
    with opener(path, "rb") as fh:
        data = fh.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def _read_jsonl(path: Path, columns: Mapping[str, str] | None, label: str, kwargs: dict[str, Any]) -> _Parts:
    encoding = kwargs.get("encoding")
    lines = _read_lines(path)
    head = next((ln.strip() for ln in lines if ln.strip()), b"")
    if head.startswith(b"["):  # a .json file holding one array of records
        try:
            records = json.loads(b"\n".join(lines).decode(encoding) if encoding else b"\n".join(lines))
        except ValueError as exc:
            raise SegkitError(f"Could not read {label!r} as a JSON array of records: {exc}") from exc
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise SegkitError(f"Could not read {label!r}: a JSON array must hold objects (records)")
        frame = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=list(REQUIRED_COLUMNS))
        raw = [json.dumps(r, default=str) for r in records]
        parts = _generic_frame(frame, columns, label)
        return parts[0], parts[1], lambda pos: [raw[i] for i in pos], parts[3], parts[4]
    good_rows: list[int] = []
    good_raw: list[str] = []
    records = []
    bad_rows: list[int] = []
    bad_raw: list[str] = []
    for i, line, rec in _json_lines(lines, encoding):
        if isinstance(rec, dict):
            records.append(rec)
            good_rows.append(i)
            good_raw.append(line)
        else:
            bad_rows.append(i)
            bad_raw.append(_decode(line, encoding))
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=list(REQUIRED_COLUMNS))
    mapped = _apply_mapping(frame, columns, label) if records else frame
    return (
        mapped,
        np.asarray(good_rows, dtype=np.int64),
        lambda pos: [_decode(good_raw[i], encoding) for i in pos],
        _rejects(bad_rows, "malformed_line", bad_raw),
        len(records) + len(bad_rows),
    )



def _json_lines(lines: Any, encoding: str | None) -> Any:
    """Yield ``(line number, raw line, parsed value or None)`` for every non-blank JSON line."""
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line.decode(encoding) if encoding else line)
        except ValueError:
            rec = None
        yield i, line, rec

def _decode(line: bytes, encoding: str | None) -> str:
    return line.rstrip(b"\r").decode(encoding or "utf-8", errors="backslashreplace")


# ---------------------------------------------------------------------------------------------
# adapters

_REES46_REQUIRED = ("event_time", "event_type", "user_id")
_REES46_STR_DTYPES = {c: "str" for c in ("event_time", "event_type", "product_id", "category_id", "category_code", "brand", "user_id", "user_session")}
_REES46_KNOWN = ("event_time", "event_type", "product_id", "category_id", "category_code", "brand", "price", "user_id", "user_session")


def _json_values(values: pd.Series) -> pd.Series:
    """JSON literal of each value (``null`` for missing), computed once per distinct value."""
    text = _as_string(values)
    uniques = pd.unique(text.dropna())
    lookup = {u: json.dumps(u, ensure_ascii=False) for u in uniques}
    return text.map(lookup).astype("str").where(text.notna(), "null")


def _rees46_frame(raw: pd.DataFrame) -> _Parts:
    check_columns(list(map(str, raw.columns)), _REES46_REQUIRED, what="REES46 source")
    n = len(raw)
    get = lambda c: raw[c] if c in raw.columns else pd.Series([None] * n, index=raw.index, dtype=object)  # noqa: E731
    event_type = _as_string(raw["event_type"])
    is_purchase = (event_type == "purchase").fillna(False).to_numpy(dtype=bool)
    price = _to_number(get("price"))
    category = _as_string(get("category_code"))
    category = category.where(~_is_blank(category), _as_string(get("category_id")))
    props = '{"brand": ' + _json_values(get("brand")) + ', "category_id": ' + _json_values(get("category_id")) + "}"
    frame = pd.DataFrame(
        {
            "user_id": raw["user_id"],
            "timestamp": raw["event_time"],
            "event": event_type.map(lambda t: REES46_EVENTS.get(t, t), na_action="ignore"),
            "session_id": get("user_session"),
            "page_type": pd.Series(np.where(event_type.eq("view").fillna(False), "product", None), index=raw.index, dtype="str"),
            "item_id": get("product_id"),
            "category": category,
            "price": get("price"),
            "revenue": price.where(is_purchase),
            "properties": props,
            "raw_event": event_type,
        },
        index=raw.index,
    )
    for col in raw.columns:
        if col not in _REES46_KNOWN and col not in frame.columns:
            frame[col] = raw[col]
    return frame, np.arange(n, dtype=np.int64), _raw_json_rows(raw), _no_rejects(), n


_OTTO_FLAT = ("session", "aid", "ts", "type")


def _otto_frame(session: pd.Series, aid: pd.Series, ts: pd.Series, typ: pd.Series) -> pd.DataFrame:
    sid = _as_string(session)
    typ = _as_string(typ)
    return pd.DataFrame(
        {
            "user_id": sid,
            "timestamp": ts,
            "event": typ.map(lambda t: OTTO_EVENTS.get(t, t), na_action="ignore"),
            "session_id": sid,
            "page_type": pd.Series(np.where(typ.eq("clicks").fillna(False), "product", None), index=sid.index, dtype="str"),
            "item_id": _as_string(aid),
            "raw_event": typ,
        },
        index=sid.index,
    )


def _otto_flat(raw: pd.DataFrame) -> _Parts:
    check_columns(list(map(str, raw.columns)), _OTTO_FLAT, what="OTTO source")
    frame = _otto_frame(raw["session"], raw["aid"], raw["ts"], raw["type"])
    return frame, np.arange(len(raw), dtype=np.int64), _raw_json_rows(raw), _no_rejects(), len(raw)


def _read_otto_jsonl(path: Path, kwargs: dict[str, Any]) -> _Parts:
    encoding = kwargs.get("encoding")
    lines = _read_lines(path)
    sessions: list[Any] = []
    event_lists: list[list[dict]] = []
    line_numbers: list[int] = []
    bad_rows: list[int] = []
    bad_raw: list[str] = []
    for i, line, rec in _json_lines(lines, encoding):
        evs = rec.get("events") if isinstance(rec, dict) else None
        if (
            not isinstance(rec, dict)
            or rec.get("session") is None
            or not isinstance(evs, list)
            or not all(isinstance(e, dict) for e in evs)
        ):
            bad_rows.append(i)
            bad_raw.append(_decode(line, encoding))
            continue
        sessions.append(rec["session"])
        event_lists.append(evs)
        line_numbers.append(i)
    lengths = np.fromiter((len(e) for e in event_lists), dtype=np.int64, count=len(event_lists))
    flat = list(itertools.chain.from_iterable(event_lists))
    events = pd.DataFrame.from_records(flat, columns=["aid", "ts", "type"]) if flat else pd.DataFrame(columns=["aid", "ts", "type"])
    session = pd.Series(np.repeat(np.asarray(sessions, dtype=object), lengths), dtype=object)
    rows = np.repeat(np.asarray(line_numbers, dtype=np.int64), lengths)
    frame = _otto_frame(session, events["aid"], events["ts"], events["type"])

    def raw_for(positions: np.ndarray) -> list[str]:
        return [json.dumps({"session": session.iat[p], **flat[p]}, default=str) for p in positions]

    return frame, rows, raw_for, _rejects(bad_rows, "malformed_line", bad_raw), len(flat) + len(bad_rows)


def _first_line(path: Path) -> str | None:
    """The first non-blank line of a (possibly compressed) text file, or None when there is none."""
    opener = _COMPRESSION.get(path.suffix.lower(), open)
    with opener(path, "rb") as fh:
        for _, line in zip(range(1000), fh):
            text = line.decode("utf-8", errors="replace").lstrip("\ufeff").strip("\r\n")
            if text.strip():
                return text
    return None


def _sniff_header(path: Path) -> str | None:
    """``"yoochoose"`` or ``"diginetica"`` when the file starts with that dataset's header."""
    try:
        first = _first_line(path)
    except (OSError, EOFError, lzma.LZMAError):
        return None
    if first is None:
        return None
    if set(_YOOCHOOSE_PREPARED) <= set(first.split("\t")):
        return "yoochoose"
    if set(_DIGINETICA_REQUIRED) <= set(_diginetica_names(first.split(";"))):
        return "diginetica"
    return None


def _read_text_table(path: Path, defaults: Mapping[str, Any], read_kwargs: Mapping[str, Any]) -> pd.DataFrame | None:
    """read_csv with every column as text (unless ``dtype=`` is given); None for an empty file."""
    kwargs = {**defaults, **read_kwargs}
    if kwargs.get("dtype") is None:
        kwargs["dtype"] = "str"
    try:
        return pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        return None


_YOOCHOOSE_PREPARED = ("SessionId", "ItemId", "Time")
_YOOCHOOSE_ORIGINAL = ("session", "timestamp", "item", "category")
_YOOCHOOSE_LAYOUTS = (
    "the session-rec layout (tab-separated, header 'SessionId<TAB>ItemId<TAB>Time')",
    "the RecSys 2015 clicks layout (comma-separated, no header: session,timestamp,item,category)",
)


def _read_yoochoose(path: Path, label: str, read_kwargs: Mapping[str, Any]) -> pd.DataFrame | None:
    first = _first_line(path)
    if first is None:
        return None
    if set(_YOOCHOOSE_PREPARED) <= set(first.split("\t")):
        defaults: dict[str, Any] = {"sep": "\t"}
    elif set(_YOOCHOOSE_PREPARED) <= set(first.split(",")):
        defaults = {"sep": ","}
    elif len(first.split(",")) == len(_YOOCHOOSE_ORIGINAL) and first.split(",")[0].strip().isdigit():
        defaults = {"sep": ",", "header": None, "names": list(_YOOCHOOSE_ORIGINAL)}
    else:
        shown = first if len(first) <= 80 else first[:77] + "..."
        raise SegkitError(
            f"Could not read {label!r} as yoochoose: its first line {shown!r} matches neither "
            f"{_YOOCHOOSE_LAYOUTS[0]} nor {_YOOCHOOSE_LAYOUTS[1]} (buy files are not supported)"
        )
    return _read_text_table(path, defaults, read_kwargs)


def _yoochoose_frame(raw: pd.DataFrame) -> _Parts:
    have = list(map(str, raw.columns))
    if "SessionId" in have or "session" not in have:
        check_columns(have, _YOOCHOOSE_PREPARED, what="YooChoose source (session-rec layout)")
        session, item, ts, known = raw["SessionId"], raw["ItemId"], raw["Time"], _YOOCHOOSE_PREPARED
        category = None
    else:
        check_columns(have, _YOOCHOOSE_ORIGINAL[:3], what="YooChoose source (RecSys 2015 layout)")
        session, item, ts, known = raw["session"], raw["item"], raw["timestamp"], _YOOCHOOSE_ORIGINAL
        category = _as_string(raw["category"]) if "category" in have else None
    sid = _as_string(session)
    n = len(raw)
    columns: dict[str, Any] = {
        "user_id": sid,
        "timestamp": ts,
        "event": pd.Series([YOOCHOOSE_EVENT] * n, index=raw.index, dtype="str"),
        "session_id": sid,
        "item_id": _as_string(item),
    }
    if category is not None:
        columns["category"] = category.where(category.str.strip() != "0")
    frame = pd.DataFrame(columns, index=raw.index)
    for col in raw.columns:
        if col not in known and col not in frame.columns:
            frame[col] = raw[col]
    return frame, np.arange(n, dtype=np.int64), _raw_json_rows(raw), _no_rejects(), n


_DIGINETICA_COLUMNS = ("sessionId", "userId", "itemId", "timeframe", "eventdate")
_DIGINETICA_REQUIRED = ("sessionId", "timeframe", "eventdate")
_DIGINETICA_SPELLINGS = {c.lower().replace("_", ""): c for c in _DIGINETICA_COLUMNS}
_ISO_DATE_RE = r"^\d{4}-\d{2}-\d{2}$"
_MAX_OFFSET_MS = 1e13  # about 317 years; larger (or infinite) offsets are unparseable


def _diginetica_names(columns: Any) -> list[str]:
    """Source column names with ``session_id``-style spellings mapped to the CIKM ones."""
    return [_DIGINETICA_SPELLINGS.get(str(c).strip().lower().replace("_", ""), str(c)) for c in columns]


def _diginetica_frame(raw: pd.DataFrame) -> _Parts:
    names = _diginetica_names(raw.columns)
    check_columns(names, _DIGINETICA_REQUIRED, what="DIGINETICA source")
    src = raw.set_axis(names, axis=1)
    n = len(src)
    get = lambda c: src[c] if c in src.columns else pd.Series([None] * n, index=src.index, dtype=object)  # noqa: E731
    sid = _as_string(src["sessionId"])
    user = _as_string(get("userId"))
    user = user.where(~_is_blank(user) & (user.str.strip() != "NA"))
    user_id = user.where(user.notna(), "session:" + sid)

    date_text = _as_string(src["eventdate"]).str.strip()
    frame_text = _as_string(src["timeframe"]).str.strip()
    date = pd.to_datetime(date_text.where(date_text.str.match(_ISO_DATE_RE).fillna(False)), format="%Y-%m-%d", errors="coerce")
    offset = pd.to_numeric(frame_text, errors="coerce")
    good = (date.notna() & offset.between(0, _MAX_OFFSET_MS)).to_numpy(dtype=bool)
    stamp = (date + pd.to_timedelta(offset.where(good), unit="ms")).to_numpy(dtype="datetime64[ms]")
    text = np.datetime_as_string(stamp, unit="ms").astype(object)  # naive wall time, ISO 8601
    blank = (_is_blank(date_text) | _is_blank(frame_text)).to_numpy(dtype=bool)
    text[blank] = None
    bad = ~good & ~blank
    text[bad] = ("eventdate=" + date_text.fillna("") + " timeframe=" + frame_text.fillna("")).to_numpy(dtype=object)[bad]

    frame = pd.DataFrame(
        {
            "user_id": user_id,
            "timestamp": pd.Series(text, index=src.index, dtype=object),
            "event": pd.Series([DIGINETICA_EVENT] * n, index=src.index, dtype="str"),
            "session_id": sid,
            "page_type": pd.Series(["product"] * n, index=src.index, dtype="str"),
            "item_id": _as_string(get("itemId")),
        },
        index=src.index,
    )
    for col in src.columns:
        if col not in _DIGINETICA_COLUMNS and col not in frame.columns:
            frame[col] = src[col]
    return frame, np.arange(n, dtype=np.int64), _raw_json_rows(raw), _no_rejects(), n


def _visitor_ids(ip: pd.Series, user_agent: pd.Series) -> pd.Series:
    """First 16 hex digits of sha1("ip|user_agent"), hashing each distinct pair once."""
    key = ip.fillna("") + "|" + user_agent.fillna("")
    codes, uniques = pd.factorize(key)
    hashes = np.array([hashlib.sha1(k.encode("utf-8")).hexdigest()[:16] for k in uniques], dtype=object)
    return pd.Series(hashes[codes] if len(codes) else [], index=ip.index, dtype="str")


def _read_access_log(path: Path, kwargs: dict[str, Any]) -> _Parts:
    encoding = kwargs.get("encoding") or "utf-8"
    raw_lines = _read_lines(path)
    text = [ln.rstrip(b"\r").decode(encoding, errors="backslashreplace") for ln in raw_lines]
    lines = pd.Series(text, dtype="str")
    keep = (lines.str.strip() != "").to_numpy(dtype=bool)
    line_numbers = np.flatnonzero(keep).astype(np.int64)
    lines = lines[keep].reset_index(drop=True)
    parsed = lines.str.extract(_LOG_RE)
    ok = parsed["ip"].notna().to_numpy(dtype=bool)
    bad = np.flatnonzero(~ok)
    pre = _rejects(line_numbers[bad].tolist(), "malformed_line", lines.iloc[bad].tolist())
    p = parsed.loc[ok].reset_index(drop=True)
    good_lines = lines[ok].reset_index(drop=True)
    request = p["request"].str.extract(_REQUEST_RE)
    target = request["target"].str.extract(_TARGET_RE)
    page = target["page"]
    is_asset = page.str.lower().str.endswith(STATIC_EXTENSIONS).fillna(False).to_numpy(dtype=bool)
    has_request = request["method"].notna().to_numpy(dtype=bool)
    event = np.where(~has_request, "bad_request", np.where(is_asset, "asset_request", "page_view"))
    dash = lambda s: s.where((s != "-") & (s != ""))  # noqa: E731  '-' and '' mean "not sent"
    user_agent = dash(p["user_agent"])
    frame = pd.DataFrame(
        {
            "user_id": _visitor_ids(p["ip"], user_agent),
            "timestamp": p["time"],
            "event": pd.Series(event, dtype="str"),
            "page": page,
            "user_agent": user_agent,
            "ip": p["ip"],
            "referrer": dash(p["referrer"]),
            "status": dash(p["status"]),
            "bytes": dash(p["bytes"]),
            "method": request["method"],
            "protocol": request["protocol"],
            "query": target["query"],
        }
    )
    return (
        frame,
        line_numbers[ok],
        lambda pos: good_lines.iloc[pos].tolist(),
        pre,
        int(keep.sum()),
    )
