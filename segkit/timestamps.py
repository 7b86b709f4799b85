"""Parse messy timestamp columns into tz-aware UTC datetimes, vectorized.

Clickstream exports mix layouts within one column: ISO 8601 strings with ``Z`` or an offset,
naive local times, epoch seconds or milliseconds as digits or numbers, Apache log times, and
junk. :func:`parse_timestamps` sorts the values into a few format groups with vectorized
string tests and calls :func:`pandas.to_datetime` once per group, so a million mixed strings
parse in about a second. :func:`timestamp_failures` tells failed parses apart from missing input.

Recognised layouts (after stripping surrounding whitespace)
-----------------------------------------------------------
``iso``
    ``YYYY-MM-DD`` optionally followed by ``T`` or a space and ``HH:MM[:SS[.fff...]]``. With a
    designator (``Z``, ``+01:00``, ``-0500``, ``+01``, or a trailing ``UTC``/``GMT`` as REES46
    writes it) the string is an instant; without one it is a naive wall time in ``timezone``.
    Fractions finer than a microsecond are truncated.
``epoch``
    Non-negative digit strings, optionally with a decimal fraction (``"1661724000"``,
    ``"1661724000278"``, ``"1661724000.5"``), and numbers. ``unit="auto"`` reads values
    ``>= 1e11`` as milliseconds and smaller ones as seconds (1e11 s is the year 5138, 1e11 ms is
    March 1973). Micro- and nanosecond epochs are not detected. Note that compact dates such as
    ``"20240101"`` are digit strings and so read as epoch seconds.
``clf``
    The Apache/Nginx ``%t`` layout ``17/May/2015:10:05:03 +0000`` (brackets optional).

Anything else (``""``, ``"not-a-date"``, ``"0000-00-00 00:00:00"``, ``"10/01/2019"``, None)
becomes ``NaT``; layouts are never guessed per row. Parse such columns yourself with
``pd.to_datetime(..., format=...)`` and pass the resulting datetimes in.

Naive wall times and daylight saving time
-----------------------------------------
Naive values are localized to ``timezone``. A wall time that occurs twice (the hour repeated when
clocks go back) resolves to the **earlier** instant, i.e. the daylight-saving reading; a wall time
that does not exist (skipped when clocks go forward) is **shifted forward** to the first valid
instant after the gap (``02:30`` on a spring-forward night in Europe/Berlin becomes ``03:00``).
"""
from __future__ import annotations

import datetime as _dt
import zoneinfo
from typing import Any, Literal

import numpy as np
import pandas as pd

from .errors import ParameterError, did_you_mean

__all__ = ["parse_timestamps", "timestamp_failures", "check_timezone", "MS_THRESHOLD"]

#: Epoch values at or above this magnitude are milliseconds when ``unit="auto"``.
MS_THRESHOLD: float = 1e11

_UNITS = ("auto", "s", "ms")
_RESULT_DTYPE = pd.DatetimeTZDtype(unit="us", tz="UTC")
_US_PER = {"s": 1_000_000, "ms": 1_000}
_I64_MAX = np.iinfo(np.int64).max
_MONTHS = {m: f"{i:02d}" for i, m in enumerate(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1)}
_CLF_RE = r"^\[?\d{2}/[A-Za-z]{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\]?$"
_EPOCH_FLOAT_RE = r"^\d+\.\d*$"


def check_timezone(timezone: Any) -> str:
    """Return ``timezone`` if it names an IANA time zone, else raise :class:`ParameterError`.

    Parameters
    ----------
    timezone : str
        A name such as ``"UTC"`` or ``"Europe/Berlin"``.

    Returns
    -------
    str
        The same name.

    Examples
    --------
    >>> check_timezone("Europe/Berlin")
    'Europe/Berlin'
    """
    allowed = "an IANA time zone name such as 'UTC' or 'Europe/Berlin'"
    if not isinstance(timezone, str) or not timezone:
        raise ParameterError("timezone", timezone, allowed)
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        hint = did_you_mean(timezone, sorted(zoneinfo.available_timezones() | {"UTC"}))
        raise ParameterError(
            "timezone",
            timezone,
            allowed,
            message=f"Parameter 'timezone' got {timezone!r}, which is not a known time zone;{hint} "
            f"Allowed: {allowed}",
        ) from None
    return timezone


def _check_unit(unit: Any) -> str:
    if unit not in _UNITS:
        raise ParameterError("unit", unit, list(_UNITS))
    return unit


def _nat(n: int) -> np.ndarray:
    return np.full(n, np.datetime64("NaT", "us"))


def _to_utc_us(parsed: Any) -> np.ndarray:
    """Tz-aware datetimes (Series/Index) -> naive UTC ``datetime64[us]`` numpy array."""
    idx = pd.DatetimeIndex(parsed)
    return idx.tz_convert("UTC").tz_localize(None).as_unit("us").to_numpy(dtype="datetime64[us]")


def _localize(naive: pd.Series, timezone: str) -> np.ndarray:
    """Naive datetimes in ``timezone`` -> naive UTC ``datetime64[us]`` (DST rules in module doc)."""
    naive = naive.dt.as_unit("us")
    if timezone == "UTC":
        return np.asarray(naive, dtype="datetime64[us]")
    aware = naive.dt.tz_localize(timezone, ambiguous=np.ones(len(naive), dtype=bool), nonexistent="shift_forward")
    return _to_utc_us(aware)


def _epoch_to_us(numbers: np.ndarray, unit: str) -> np.ndarray:
    """Epoch numbers (int or float array, NaN allowed) -> ``datetime64[us]`` with NaT for bad values."""
    n = len(numbers)
    out = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)  # NaT
    vals = numbers.astype("float64") if numbers.dtype.kind not in "iu" else numbers
    if unit == "auto":
        is_ms = np.abs(vals) >= MS_THRESHOLD
    else:
        is_ms = np.full(n, unit == "ms")
    factor = np.where(is_ms, _US_PER["ms"], _US_PER["s"])
    with np.errstate(invalid="ignore", over="ignore"):
        if numbers.dtype.kind in "iu":
            ok = np.abs(vals.astype("float64")) * factor < _I64_MAX / 2
            out[ok] = vals[ok].astype(np.int64) * factor[ok]
        else:
            scaled = vals * factor
            ok = np.isfinite(scaled) & (np.abs(scaled) < _I64_MAX / 2)
            out[ok] = np.round(scaled[ok]).astype(np.int64)
    return out.view("datetime64[us]")


def _take(s: pd.Series, mask: np.ndarray) -> pd.Series:
    """``s[mask]``, skipping the copy when the mask selects everything (the common case)."""
    return s if mask.all() else s[mask]


def _parse_strings(s: pd.Series, timezone: str, unit: str) -> np.ndarray:
    """Positional parse of a ``str`` Series (NaN = missing) -> naive UTC ``datetime64[us]``."""
    n = len(s)
    out = _nat(n)
    if n == 0:
        return out
    s = s.str.strip()
    present = s.notna().to_numpy() & (s.str.len().fillna(0).to_numpy() > 0)
    if not present.any():
        return out

    iso = present & s.str.match(r"\d{4}-\d{1,2}-\d{1,2}").fillna(False).to_numpy(dtype=bool)
    digits = present & ~iso & s.str.isdigit().fillna(False).to_numpy(dtype=bool)
    rest = present & ~iso & ~digits

    if iso.any():
        sub = _take(s, iso)
        tail = sub.str.slice(10)
        suffix_utc = (sub.str.endswith("UTC") | sub.str.endswith("GMT")).to_numpy(dtype=bool)
        suffix_z = (sub.str.endswith("z") | sub.str.endswith(" Z")).to_numpy(dtype=bool)
        aware = (
            tail.str.contains("+", regex=False)
            | tail.str.contains("-", regex=False)
            | sub.str.endswith("Z")
        ).to_numpy(dtype=bool) | suffix_utc | suffix_z
        if suffix_utc.any() or suffix_z.any():
            fixed = sub.copy()
            if suffix_utc.any():
                fixed[suffix_utc] = fixed[suffix_utc].str.slice(stop=-3).str.rstrip() + "Z"
            if suffix_z.any():
                fixed[suffix_z] = fixed[suffix_z].str.slice(stop=-1).str.rstrip() + "Z"
            sub = fixed
        iso_out = _nat(len(sub))
        if aware.any():
            parsed = pd.to_datetime(_take(sub, aware), utc=True, format="ISO8601", errors="coerce")
            iso_out[aware] = _to_utc_us(parsed)
        if (~aware).any():
            parsed = pd.to_datetime(_take(sub, ~aware), format="ISO8601", errors="coerce")
            iso_out[~aware] = _localize(parsed, timezone)
        out[iso] = iso_out

    epoch_float = np.zeros(n, dtype=bool)
    clf = np.zeros(n, dtype=bool)
    if rest.any():
        sub = s[rest]
        epoch_float[rest] = sub.str.match(_EPOCH_FLOAT_RE).fillna(False).to_numpy(dtype=bool)
        clf[rest] = sub.str.match(_CLF_RE).fillna(False).to_numpy(dtype=bool)

    if digits.any() or epoch_float.any():
        is_epoch = digits | epoch_float
        numbers = pd.to_numeric(_take(s, is_epoch), errors="coerce")
        out[is_epoch] = _epoch_to_us(numbers.to_numpy(dtype="float64" if numbers.dtype.kind == "f" else None), unit)

    if clf.any():
        sub = s[clf].str.strip("[]")
        month = sub.str.slice(3, 6).str.title().map(_MONTHS)
        iso_text = (
            sub.str.slice(7, 11) + "-" + month + "-" + sub.str.slice(0, 2) + "T" + sub.str.slice(12, 20) + sub.str.slice(21, 26)
        )
        parsed = pd.to_datetime(iso_text, utc=True, format="ISO8601", errors="coerce")
        out[clf] = _to_utc_us(parsed)
    return out


def _parse_objects(values: pd.Series, timezone: str, unit: str) -> np.ndarray:
    """Object column holding a mix of Python types: split by type, parse each group."""
    n = len(values)
    out = _nat(n)
    arr = values.to_numpy(dtype=object)
    kind = np.array(
        [
            "str" if isinstance(v, str)
            else "dt" if isinstance(v, (_dt.datetime, np.datetime64, _dt.date))
            else "num" if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
            else "other"
            for v in arr
        ],
        dtype=object,
    )
    m = kind == "str"
    if m.any():
        out[m] = _parse_strings(pd.Series(arr[m], dtype="str"), timezone, unit)
    m = kind == "num"
    if m.any():
        out[m] = _epoch_to_us(np.asarray(arr[m], dtype="float64"), unit)
    m = kind == "dt"
    if m.any():
        stamps = [pd.Timestamp(v) for v in arr[m]]
        naive = np.array([t.tzinfo is None for t in stamps])
        res = _nat(len(stamps))
        if naive.any():
            res[naive] = _localize(pd.Series([t for t, k in zip(stamps, naive) if k], dtype="datetime64[us]"), timezone)
        if (~naive).any():
            res[~naive] = _to_utc_us(pd.to_datetime([t for t, k in zip(stamps, naive) if not k], utc=True))
        out[m] = res
    return out


def parse_timestamps(
    values: pd.Series,
    *,
    timezone: str = "UTC",
    unit: Literal["auto", "s", "ms"] = "auto",
) -> pd.Series:
    """Parse a column of mixed timestamps into tz-aware UTC datetimes; unparseable values become NaT.

    The layouts recognised, the epoch unit rule and the daylight-saving rules for naive times
    are described in the module docstring (:mod:`segkit.timestamps`). Already-datetime input is
    converted: naive values are localized to ``timezone``, aware ones converted to UTC. Numeric
    input is read as epoch seconds or milliseconds. Use :func:`timestamp_failures` to find the
    values that were present but could not be parsed.

    Parameters
    ----------
    values : pandas.Series
        Strings, numbers, datetimes, or an object column mixing them. Array-likes are accepted
        and wrapped in a Series with a default index.
    timezone : str, default="UTC"
        IANA time zone of naive values (strings without an offset, naive datetimes).
    unit : {"auto", "s", "ms"}, default="auto"
        Unit of epoch numbers and digit strings; ``"auto"`` picks milliseconds for values
        ``>= 1e11`` and seconds below.

    Returns
    -------
    pandas.Series
        dtype ``datetime64[us, UTC]``, same index and name as ``values``; the input is not modified.

    Raises
    ------
    ParameterError
        If ``timezone`` is not a known time zone or ``unit`` is not allowed.

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.Series(["2024-03-01T12:00:00Z", "2024-03-01 13:00:00+01:00", "1709294400",
    ...                "1709294400000", "2024-03-01 13:00", "not-a-date"])
    >>> parse_timestamps(s, timezone="Europe/Berlin").dt.strftime("%H:%M").tolist()
    ['12:00', '12:00', '12:00', '12:00', '12:00', nan]
    """
    check_timezone(timezone)
    _check_unit(unit)
    if not isinstance(values, pd.Series):
        values = pd.Series(values)
    dtype = values.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        out = values.dt.tz_convert("UTC").dt.as_unit("us")
        return out.astype(_RESULT_DTYPE)
    if pd.api.types.is_datetime64_dtype(dtype):
        arr = _localize(values.reset_index(drop=True), timezone)
    elif isinstance(dtype, pd.CategoricalDtype):
        cats = parse_timestamps(pd.Series(values.cat.categories), timezone=timezone, unit=unit).to_numpy(dtype="datetime64[us]")
        codes = values.cat.codes.to_numpy()
        arr = np.where(codes >= 0, cats[np.clip(codes, 0, None)] if len(cats) else _nat(len(codes)), np.datetime64("NaT", "us"))
    elif pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        raise ParameterError("values", str(dtype), "strings, numbers or datetimes")
    elif pd.api.types.is_numeric_dtype(dtype):
        nums = values.to_numpy(dtype="float64", na_value=np.nan) if values.hasnans or dtype.kind not in "iu" else values.to_numpy()
        arr = _epoch_to_us(np.asarray(nums), unit)
    elif pd.api.types.is_string_dtype(dtype) and dtype != object:
        arr = _parse_strings(values.astype("str").reset_index(drop=True), timezone, unit)
    else:
        inferred = pd.api.types.infer_dtype(values, skipna=True)
        if inferred in ("string", "empty"):
            arr = _parse_strings(values.astype("str").reset_index(drop=True), timezone, unit)
        else:
            arr = _parse_objects(values, timezone, unit)
    return pd.Series(arr, index=values.index, name=values.name).dt.tz_localize("UTC")


def timestamp_failures(values: pd.Series, parsed: pd.Series) -> pd.Series:
    """Flag values that were present but did not parse (``parsed`` is NaT, input not blank).

    Missing input (None, NaN, NaT, empty or whitespace-only strings) is *not* a failure.

    Parameters
    ----------
    values : pandas.Series
        The raw input given to :func:`parse_timestamps`.
    parsed : pandas.Series
        Its result, aligned on the same index.

    Returns
    -------
    pandas.Series
        Boolean Series, True where a value could not be parsed.

    Examples
    --------
    >>> import pandas as pd
    >>> raw = pd.Series(["2024-01-01", "", None, "junk"])
    >>> timestamp_failures(raw, parse_timestamps(raw)).tolist()
    [False, False, False, True]
    """
    if not isinstance(values, pd.Series):
        values = pd.Series(values)
    return (parsed.isna() & ~_is_blank(values)).astype(bool)


def _is_blank(values: pd.Series) -> pd.Series:
    """True where a raw value is missing: NA, or a string that is empty after stripping."""
    blank = values.isna()
    if pd.api.types.is_string_dtype(values.dtype) or values.dtype == object:
        is_str = values.map(lambda v: isinstance(v, str)) if values.dtype == object else ~blank
        stripped = values.where(is_str & ~blank).astype("str").str.strip()
        blank = blank | (stripped == "").fillna(False).astype(bool)
    return blank.astype(bool)
