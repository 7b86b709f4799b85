from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segkit.errors import ParameterError
from segkit.timestamps import check_timezone, parse_timestamps, timestamp_failures

NOON = pd.Timestamp("2024-03-01 12:00:00", tz="UTC")


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


# ----------------------------------------------------------------------------- string layouts


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-01T12:00:00Z",
        "2024-03-01 12:00:00Z",
        "2024-03-01T13:00:00+01:00",
        "2024-03-01T07:00:00-0500",
        "2024-03-01T14:00:00+02",
        "2024-03-01 12:00:00 UTC",
        "2024-03-01 12:00:00 GMT",
        "2024-03-01T12:00:00z",
        "  2024-03-01T12:00:00Z  ",
        "01/Mar/2024:12:00:00 +0000",
        "[01/Mar/2024:13:00:00 +0100]",
        "1709294400",
        "1709294400000",
        "1709294400.0",
    ],
)
def test_parses_each_layout_to_the_same_instant(text):
    assert parse_timestamps(pd.Series([text])).iloc[0] == NOON


def test_fractional_seconds_kept_to_the_microsecond():
    out = parse_timestamps(pd.Series(["2024-03-01T12:00:00.123456789Z", "2024-03-01 12:00:00.5+00:00"]))
    assert out.iloc[0] == utc("2024-03-01 12:00:00.123456")
    assert out.iloc[1] == utc("2024-03-01 12:00:00.5")


def test_mixed_column_parses_every_group():
    s = pd.Series(["2024-03-01T12:00:00Z", "1709294400", "2024-03-01 12:00", "1709294400000", "junk"])
    out = parse_timestamps(s)
    assert out.iloc[:4].eq(NOON).all()
    assert pd.isna(out.iloc[4])


@pytest.mark.parametrize("bad", ["", "   ", "not-a-date", "0000-00-00 00:00:00", None, "10/01/2019", "2024-02-30", "-5"])
def test_unparseable_values_become_nat(bad):
    assert pd.isna(parse_timestamps(pd.Series([bad, "2024-03-01T12:00:00Z"], dtype=object)).iloc[0])


def test_result_dtype_index_and_name_follow_input():
    s = pd.Series(["2024-03-01T12:00:00Z", "x"], index=[10, 3], name="when")
    out = parse_timestamps(s)
    assert str(out.dtype) == "datetime64[us, UTC]"
    assert out.index.tolist() == [10, 3]
    assert out.name == "when"


def test_input_is_not_modified():
    s = pd.Series([" 2024-03-01 12:00 UTC ", "1709294400", None], dtype=object)
    before = s.copy()
    parse_timestamps(s, timezone="Europe/Berlin")
    pd.testing.assert_series_equal(s, before)


def test_empty_and_all_missing_input():
    assert str(parse_timestamps(pd.Series([], dtype=object)).dtype) == "datetime64[us, UTC]"
    assert parse_timestamps(pd.Series([None, None])).isna().all()


def test_accepts_array_like():
    assert parse_timestamps(["2024-03-01T12:00:00Z"]).iloc[0] == NOON


# ----------------------------------------------------------------------------- epochs


def test_epoch_unit_auto_switches_to_ms_at_1e11():
    out = parse_timestamps(pd.Series([99_999_999_999, 100_000_000_000]))
    assert out.iloc[0] == pd.Timestamp(99_999_999_999, unit="s", tz="UTC")
    assert out.iloc[1] == pd.Timestamp(100_000_000_000, unit="ms", tz="UTC")


def test_epoch_numbers_and_digit_strings_agree():
    numbers = parse_timestamps(pd.Series([1709294400, 1709294400000, np.nan]))
    floats = parse_timestamps(pd.Series([1709294400.0, 1709294400000.0]))
    nullable = parse_timestamps(pd.Series([1709294400, None], dtype="Int64"))
    assert numbers.iloc[:2].eq(NOON).all() and pd.isna(numbers.iloc[2])
    assert floats.eq(NOON).all()
    assert nullable.iloc[0] == NOON and pd.isna(nullable.iloc[1])


def test_epoch_ms_precision_is_exact():
    assert parse_timestamps(pd.Series(["1661724000278"])).iloc[0] == utc("2022-08-28 22:00:00.278")


@pytest.mark.parametrize(("unit", "expected"), [("s", pd.Timestamp(1709294400, unit="s", tz="UTC")), ("ms", pd.Timestamp(1709294400, unit="ms", tz="UTC"))])
def test_explicit_unit_overrides_magnitude(unit, expected):
    assert parse_timestamps(pd.Series(["1709294400"]), unit=unit).iloc[0] == expected


def test_out_of_range_epoch_is_nat():
    assert parse_timestamps(pd.Series(["99999999999999999999999"])).isna().all()


# ----------------------------------------------------------------------------- time zones


def test_naive_strings_are_local_to_timezone():
    out = parse_timestamps(pd.Series(["2024-03-01 13:00:00", "2024-03-01T12:00:00Z"]), timezone="Europe/Berlin")
    assert out.eq(NOON).all()


def test_dst_ambiguous_wall_time_resolves_to_earlier_instant():
    out = parse_timestamps(pd.Series(["2024-10-27 02:30:00"]), timezone="Europe/Berlin")
    assert out.iloc[0] == utc("2024-10-27 00:30:00")  # CEST reading (+02:00), not 01:30 UTC


def test_dst_nonexistent_wall_time_shifts_forward():
    out = parse_timestamps(pd.Series(["2024-03-31 02:30:00"]), timezone="Europe/Berlin")
    assert out.iloc[0] == utc("2024-03-31 01:00:00")  # 03:00 CEST


def test_naive_datetimes_are_localized_and_aware_converted():
    naive = pd.Series(pd.to_datetime(["2024-03-01 13:00"]))
    aware = pd.Series(pd.to_datetime(["2024-03-01 07:00"]).tz_localize("America/New_York"))
    assert parse_timestamps(naive, timezone="Europe/Berlin").iloc[0] == NOON
    out = parse_timestamps(aware, timezone="Europe/Berlin")
    assert out.iloc[0] == NOON and str(out.dtype) == "datetime64[us, UTC]"


def test_object_column_mixing_python_types():
    s = pd.Series(
        [
            "2024-03-01T12:00:00Z",
            1709294400,
            1709294400000.0,
            dt.datetime(2024, 3, 1, 13, 0),
            pd.Timestamp("2024-03-01 07:00", tz="America/New_York"),
            None,
            True,
        ],
        dtype=object,
    )
    out = parse_timestamps(s, timezone="Europe/Berlin")
    assert out.iloc[:5].eq(NOON).all()
    assert out.iloc[5:].isna().all()


def test_categorical_input():
    s = pd.Series(["2024-03-01T12:00:00Z", "x", None, "2024-03-01T12:00:00Z"], dtype="category")
    out = parse_timestamps(s)
    assert out.iloc[[0, 3]].eq(NOON).all() and out.iloc[[1, 2]].isna().all()


# ----------------------------------------------------------------------------- failures & errors


def test_timestamp_failures_separates_missing_from_unparseable():
    raw = pd.Series(["2024-03-01T12:00:00Z", "", "  ", None, np.nan, "junk", "0000-00-00 00:00:00"], dtype=object)
    assert timestamp_failures(raw, parse_timestamps(raw)).tolist() == [False, False, False, False, False, True, True]


def test_bad_timezone_raises_parameter_error_with_hint():
    with pytest.raises(ParameterError, match=r"'Europe/Berln'.*did you mean 'Europe/Berlin'") as info:
        parse_timestamps(pd.Series(["2024-03-01"]), timezone="Europe/Berln")
    assert info.value.name == "timezone" and info.value.value == "Europe/Berln"


@pytest.mark.parametrize("tz", ["", None, 5, "Not/AZone", "../etc/passwd"])
def test_check_timezone_rejects_non_zones(tz):
    with pytest.raises(ParameterError, match="timezone"):
        check_timezone(tz)


def test_bad_unit_raises_parameter_error():
    with pytest.raises(ParameterError, match=r"'unit' got 'us'; allowed: \['auto', 's', 'ms'\]"):
        parse_timestamps(pd.Series(["1"]), unit="us")


def test_boolean_input_is_rejected():
    with pytest.raises(ParameterError, match="'values' got 'bool'"):
        parse_timestamps(pd.Series([True, False]))


# ----------------------------------------------------------------------------- speed & property


def test_large_mixed_column_is_vectorized():
    n = 100_000
    base = np.datetime64("2020-01-01T00:00:00", "s") + np.arange(n) * 37
    iso = np.datetime_as_string(base, unit="s")
    layouts = [
        np.char.add(iso, "Z"),
        np.char.add(np.datetime_as_string(base + 3600, unit="s"), "+01:00"),
        (base.astype("int64") * 1000).astype(str),
        np.char.add(np.char.replace(iso, "T", " "), " UTC"),
    ]
    values = np.select([np.arange(n) % 4 == k for k in range(4)], layouts, default="").astype(object)
    start = time.perf_counter()
    out = parse_timestamps(pd.Series(values, dtype="str"))
    elapsed = time.perf_counter() - start
    assert (out.dt.tz_localize(None).to_numpy() == base.astype("datetime64[us]")).all()
    assert elapsed < 10, f"parsing {n:,} values took {elapsed:.1f}s; is a per-row loop back?"


_OFFSETS = st.integers(min_value=-14 * 4, max_value=14 * 4).map(lambda q: dt.timedelta(minutes=15 * q))


def _render(instant: dt.datetime, layout: str, offset: dt.timedelta) -> str:
    """Write a UTC instant in one layout (instants are truncated to the layout's precision by the caller)."""
    local = instant + offset
    sign = "-" if offset < dt.timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    hhmm = f"{minutes // 60:02d}{minutes % 60:02d}"
    frac = f".{instant.microsecond:06d}" if instant.microsecond else ""
    if layout == "iso_z":
        return instant.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"
    if layout == "iso_colon":
        return local.strftime("%Y-%m-%dT%H:%M:%S") + frac + f"{sign}{hhmm[:2]}:{hhmm[2:]}"
    if layout == "iso_basic_space":
        return local.strftime("%Y-%m-%d %H:%M:%S") + frac + f"{sign}{hhmm}"
    if layout == "iso_utc_suffix":
        return instant.strftime("%Y-%m-%d %H:%M:%S") + frac + " UTC"
    if layout == "naive_tokyo":
        return (instant + dt.timedelta(hours=9)).strftime("%Y-%m-%d %H:%M:%S") + frac
    if layout == "clf":
        return local.strftime("%d/%b/%Y:%H:%M:%S ") + f"{sign}{hhmm}"
    epoch_us = (instant - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)
    if layout == "epoch_s":
        return str(epoch_us // 1_000_000)
    return str(epoch_us // 1000)  # epoch_ms


_PRECISION = {"clf": 1_000_000, "epoch_s": 1_000_000, "epoch_ms": 1000}
_LAYOUTS = ["iso_z", "iso_colon", "iso_basic_space", "iso_utc_suffix", "naive_tokyo", "clf", "epoch_s", "epoch_ms"]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.datetimes(min_value=dt.datetime(1975, 1, 1), max_value=dt.datetime(2199, 12, 31)),
            st.sampled_from(_LAYOUTS),
            _OFFSETS,
        ),
        min_size=1,
        max_size=40,
    )
)
def test_random_instants_in_random_layouts_round_trip(cases):
    expected, texts = [], []
    for instant, layout, offset in cases:
        step = _PRECISION.get(layout, 1)
        instant = instant - dt.timedelta(microseconds=instant.microsecond % step)
        expected.append(pd.Timestamp(instant, tz="UTC"))
        texts.append(_render(instant, layout, offset))
    out = parse_timestamps(pd.Series(texts), timezone="Asia/Tokyo")
    assert out.tolist() == expected, list(zip(texts, out, expected))
