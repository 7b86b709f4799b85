import pandas as pd
import pytest

from segkit.errors import SchemaError, check_columns, did_you_mean
from segkit.schema import coerce_events, validate_events


def _events(**over):
    base = {
        "user_id": ["u1", "u2", "u3"],
        "timestamp": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 10:01", "2024-01-02 09:00"], utc=True),
        "event": ["page_view", "search", "purchase"],
    }
    base.update(over)
    return pd.DataFrame(base)


def test_valid_log_passes_and_is_returned_unchanged():
    ev = _events()
    before = ev.copy()
    assert validate_events(ev) is ev
    pd.testing.assert_frame_equal(ev, before)


def test_missing_column_suggests_closest_name():
    ev = _events().rename(columns={"user_id": "user"})
    with pytest.raises(SchemaError, match=r"'user_id' not found; did you mean 'user'\?") as info:
        validate_events(ev)
    assert info.value.columns == ["user_id"]


def test_all_failures_reported_together():
    ev = _events(user_id=["u1", None, ""], timestamp=["2024-01-01", "x", "y"], price=["1.0", "abc", "2"])
    with pytest.raises(SchemaError) as info:
        validate_events(ev)
    checks = {(f["column"], f["check"]) for f in info.value.failures}
    assert ("user_id", "null") in checks
    assert ("timestamp", "dtype") in checks
    assert ("price", "dtype") in checks
    null = next(f for f in info.value.failures if f["check"] == "null")
    assert null["count"] == 2 and len(null["examples"]) == 2
    assert "2 null or empty value(s) of 3 rows" in str(info.value)


def test_naive_timestamps_rejected_with_hint():
    ev = _events(timestamp=pd.to_datetime(["2024-01-01"] * 3))
    with pytest.raises(SchemaError, match="tz-aware UTC.*naive datetime.*parse_timestamps"):
        validate_events(ev)


def test_non_utc_timezone_rejected():
    ev = _events(timestamp=pd.to_datetime(["2024-01-01"] * 3).tz_localize("Europe/Berlin"))
    with pytest.raises(SchemaError, match="must be in UTC, got time zone 'Europe/Berlin'"):
        validate_events(ev)


def test_scroll_depth_range_checked():
    ev = _events(scroll_depth=[25.0, 150.0, None])
    with pytest.raises(SchemaError, match=r"scroll_depth' must lie in \[0, 100\]; 1 value"):
        validate_events(ev)


def test_extra_columns_optional_rejection():
    ev = _events(colour=["r", "g", "b"])
    validate_events(ev)
    with pytest.raises(SchemaError, match="'colour' is not in the canonical schema"):
        validate_events(ev, allow_extra=False)


def test_not_a_dataframe():
    with pytest.raises(SchemaError, match="Expected a pandas DataFrame, got list"):
        validate_events([1, 2])


def test_coerce_sets_canonical_dtypes_and_order():
    ev = _events(price=["1.5", "x", None], status=[200, 404, None]).iloc[:, ::-1]
    out = coerce_events(ev)
    assert list(out.columns[:3]) == ["user_id", "timestamp", "event"]
    assert out["price"].dtype == "float64" and out["price"].isna().sum() == 2
    assert str(out["status"].dtype) == "Int64"
    assert str(out["user_id"].dtype).startswith("str") or out["user_id"].dtype == "string"


def test_check_columns_and_did_you_mean():
    with pytest.raises(SchemaError, match="Column 'event' not found in events; did you mean 'events'"):
        check_columns(["events", "user_id"], ["event"], what="events")
    assert did_you_mean("zzz", ["user_id"]) == ""
    assert did_you_mean("USER_ID", ["user_id"]) == " did you mean 'user_id'?"
