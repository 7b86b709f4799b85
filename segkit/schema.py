"""The canonical event log: column names, dtypes and one lazy validator.

Every reader produces, and every downstream step relies on, this schema:

========================  ===================================  ========
column                    meaning                              dtype
========================  ===================================  ========
``user_id``               visitor or customer key              string
``timestamp``             when the event happened (UTC)        datetime64[*, UTC]
``event``                 event name                           string
``session_id``            tracker or derived session key       string
``page``                  page URL or path                     string
``page_type``             home / category / product / ...      string
``item_id``               product or content id                string
``category``              product or content category          string
``price``                 item price                           float
``revenue``               order revenue on purchases           float
``device``                device label                         string
``user_agent``            raw HTTP user agent                  string
``ip``                    client IP address                    string
``referrer``              referrer URL or source               string
``search_query``          search text                          string
``scroll_depth``          scroll depth in percent (0-100)      float
``engagement_ms``         active time a heartbeat reports      float
``status``                HTTP status (access logs)            Int64
``bytes``                 response size (access logs)          Int64
``properties``            any other fields, JSON text          string
========================  ===================================  ========
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from .errors import SchemaError, did_you_mean, format_allowed

__all__ = [
    "REQUIRED_COLUMNS",
    "OPTIONAL_COLUMNS",
    "CANONICAL_COLUMNS",
    "STRING_COLUMNS",
    "FLOAT_COLUMNS",
    "INT_COLUMNS",
    "validate_events",
    "coerce_events",
]

REQUIRED_COLUMNS: tuple[str, ...] = ("user_id", "timestamp", "event")
STRING_COLUMNS: tuple[str, ...] = (
    "user_id",
    "event",
    "session_id",
    "page",
    "page_type",
    "item_id",
    "category",
    "device",
    "user_agent",
    "ip",
    "referrer",
    "search_query",
    "properties",
)
FLOAT_COLUMNS: tuple[str, ...] = ("price", "revenue", "scroll_depth", "engagement_ms")
INT_COLUMNS: tuple[str, ...] = ("status", "bytes")
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "session_id",
    "page",
    "page_type",
    "item_id",
    "category",
    "price",
    "revenue",
    "device",
    "user_agent",
    "ip",
    "referrer",
    "search_query",
    "scroll_depth",
    "engagement_ms",
    "status",
    "bytes",
    "properties",
)
CANONICAL_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
_N_EXAMPLES = 5


def _failure(column: str, check: str, message: str, count: int | None = None, examples: Any = None) -> dict:
    return {"column": column, "check": check, "message": message, "count": count, "examples": examples}


def _is_string_dtype(s: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(s) or s.dtype == object


def validate_events(df: pd.DataFrame, *, allow_extra: bool = True) -> pd.DataFrame:
    """Check that ``df`` is a canonical event log; raise one :class:`SchemaError` listing every failure.

    Checks, all run before raising: required columns present (with a did-you-mean hint), no nulls
    in required columns, ``timestamp`` is a tz-aware UTC datetime, string columns hold strings,
    numeric columns are numeric, ``scroll_depth`` lies in [0, 100].

    Parameters
    ----------
    df : pandas.DataFrame
        The event log.
    allow_extra : bool, default=True
        Whether columns outside the canonical schema are allowed.

    Returns
    -------
    pandas.DataFrame
        ``df`` itself, unchanged, so the call can be chained.

    Examples
    --------
    >>> import pandas as pd
    >>> ev = pd.DataFrame({"user_id": ["u1"], "event": ["page_view"],
    ...                    "timestamp": pd.to_datetime(["2024-01-01"], utc=True)})
    >>> validate_events(ev) is ev
    True
    """
    if not isinstance(df, pd.DataFrame):
        raise SchemaError(
            [_failure("", "type", f"Expected a pandas DataFrame, got {type(df).__name__}")],
        )
    failures: list[dict] = []
    cols = list(map(str, df.columns))
    for col in REQUIRED_COLUMNS:
        if col not in cols:
            failures.append(
                _failure(
                    col,
                    "missing_column",
                    f"Required column {col!r} not found;{did_you_mean(col, cols)} "
                    f"Available: {format_allowed(cols)}",
                )
            )
    if not allow_extra:
        extra = [c for c in cols if c not in CANONICAL_COLUMNS]
        for col in extra:
            failures.append(
                _failure(
                    col,
                    "extra_column",
                    f"Column {col!r} is not in the canonical schema;{did_you_mean(col, CANONICAL_COLUMNS)}",
                )
            )
    for col in REQUIRED_COLUMNS:
        if col not in cols:
            continue
        nulls = df[col].isna()
        if col in ("user_id", "event") and _is_string_dtype(df[col]):
            nulls = nulls | (df[col].astype("string").str.strip() == "").fillna(False)
        n = int(nulls.sum())
        if n:
            failures.append(
                _failure(
                    col,
                    "null",
                    f"Column {col!r} has {n:,} null or empty value(s) of {len(df):,} rows",
                    n,
                    df.loc[nulls].head(_N_EXAMPLES),
                )
            )
    if "timestamp" in cols:
        ts = df["timestamp"]
        if not isinstance(ts.dtype, pd.DatetimeTZDtype):
            kind = "naive datetime" if pd.api.types.is_datetime64_dtype(ts) else str(ts.dtype)
            failures.append(
                _failure(
                    "timestamp",
                    "dtype",
                    f"Column 'timestamp' must be tz-aware UTC datetimes, got {kind}; "
                    "read files with segkit.read_events or parse with segkit.parse_timestamps",
                    examples=df.head(_N_EXAMPLES)[["timestamp"]],
                )
            )
        elif str(ts.dt.tz) != "UTC":
            failures.append(
                _failure("timestamp", "timezone", f"Column 'timestamp' must be in UTC, got time zone {str(ts.dt.tz)!r}")
            )
    for col in STRING_COLUMNS:
        if col in cols and not _is_string_dtype(df[col]):
            failures.append(
                _failure(col, "dtype", f"Column {col!r} must hold strings, got dtype {str(df[col].dtype)!r}")
            )
    for col in FLOAT_COLUMNS + INT_COLUMNS:
        if col in cols and not pd.api.types.is_numeric_dtype(df[col]):
            bad = pd.to_numeric(df[col], errors="coerce").isna() & df[col].notna()
            failures.append(
                _failure(
                    col,
                    "dtype",
                    f"Column {col!r} must be numeric, got dtype {str(df[col].dtype)!r} "
                    f"({int(bad.sum()):,} value(s) not numbers)",
                    int(bad.sum()),
                    df.loc[bad].head(_N_EXAMPLES),
                )
            )
    if "scroll_depth" in cols and pd.api.types.is_numeric_dtype(df["scroll_depth"]):
        out = (df["scroll_depth"] < 0) | (df["scroll_depth"] > 100)
        if out.any():
            failures.append(
                _failure(
                    "scroll_depth",
                    "range",
                    f"Column 'scroll_depth' must lie in [0, 100]; {int(out.sum()):,} value(s) outside",
                    int(out.sum()),
                    df.loc[out].head(_N_EXAMPLES),
                )
            )
    if failures:
        raise SchemaError(failures)
    return df


def coerce_events(df: pd.DataFrame) -> pd.DataFrame:
    """Return a copy with canonical dtypes: strings as ``string``, numbers as float/Int64, UTC times.

    Values that cannot be converted become missing; callers that must not lose values check
    before coercing (readers do, and report what they reject).
    """
    out = df.copy()
    for col in STRING_COLUMNS:
        if col in out.columns:
            out[col] = out[col].astype("string")
    for col in FLOAT_COLUMNS:
        if col in out.columns:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    for col in INT_COLUMNS:
        if col in out.columns:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype("Int64")
    if "timestamp" in out.columns and isinstance(out["timestamp"].dtype, pd.DatetimeTZDtype):
        out["timestamp"] = out["timestamp"].dt.tz_convert("UTC")
    ordered = [c for c in CANONICAL_COLUMNS if c in out.columns] + [c for c in out.columns if c not in CANONICAL_COLUMNS]
    return out[ordered]
