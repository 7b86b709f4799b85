
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segkit.errors import ParameterError, SchemaError
from segkit.sessions import referrer_source, session_table, split_sessions
from segkit.engine import as_table, to_pandas


def _ts(*values):
    return pd.to_datetime(list(values), utc=True, format="ISO8601")


def _events(users, times, events=None, **extra):
    df = pd.DataFrame({
        "user_id": pd.array(users, dtype="string"),
        "timestamp": _ts(*times),
        "event": pd.array(events or ["page_view"] * len(users), dtype="string"),
    })
    for k, v in extra.items():
        df[k] = v
    return df


def _sessions_of(out, user="a"):
    """Session index of each event of ``user``, in time order."""
    return out[out.user_id == user].sort_values("timestamp")["session_index"].tolist()


# --- timeout boundary -------------------------------------------------------------------------

def test_gap_equal_to_timeout_stays_in_the_session():
    ev = _events(["a", "a"], ["2024-01-01T10:00:00", "2024-01-01T10:30:00"])
    assert _sessions_of(split_sessions(ev, timeout="30m")) == [0, 0]


def test_gap_one_microsecond_over_timeout_starts_a_session():
    ev = _events(["a", "a"], ["2024-01-01T10:00:00", "2024-01-01T10:30:00.000001"])
    out = split_sessions(ev, timeout="30m")
    assert _sessions_of(out) == [0, 1]
    assert out["session_id"].tolist() == ["a-0", "a-1"]


def test_session_ids_are_user_and_index_and_per_user():
    ev = _events(["b", "a", "a", "b"], ["2024-01-01T10:00", "2024-01-01T10:00", "2024-01-01T12:00", "2024-01-01T10:05"])
    out = split_sessions(ev)
    assert out[["user_id", "session_id", "session_index"]].values.tolist() == [
        ["a", "a-0", 0], ["a", "a-1", 1], ["b", "b-0", 0], ["b", "b-0", 0]]


def test_gap_s_is_seconds_since_previous_event_of_the_session():
    ev = _events(["a", "a", "a"], ["2024-01-01T10:00:00", "2024-01-01T10:00:30", "2024-01-01T11:00:00"])
    gaps = split_sessions(ev)["gap_s"].tolist()
    assert np.isnan(gaps[0]) and gaps[1] == 30.0 and np.isnan(gaps[2])


def test_single_event_user_gets_one_session():
    ev = _events(["solo"], ["2024-01-01T10:00"])
    out = split_sessions(ev)
    assert out[["session_id", "session_index"]].values.tolist() == [["solo-0", 0]]


# --- ties -------------------------------------------------------------------------------------

def test_events_at_the_same_timestamp_share_a_session_whatever_the_row_order():
    times = ["2024-01-01T10:00", "2024-01-01T11:00", "2024-01-01T11:00", "2024-01-01T11:00"]
    ev = _events(["a"] * 4, times, ["page_view", "scroll_depth_25", "page_view", "add_to_cart"])
    first = split_sessions(ev)
    again = split_sessions(ev.iloc[::-1].reset_index(drop=True))
    assert _sessions_of(first) == [0, 1, 1, 1]
    pd.testing.assert_frame_equal(first.drop(columns="gap_s"), again.drop(columns="gap_s"))
    assert sorted(first["gap_s"].fillna(-1)) == sorted(again["gap_s"].fillna(-1))


def test_pandas_output_is_ordered_by_user_index_time_and_event():
    ev = _events(["a", "a"], ["2024-01-01T10:00", "2024-01-01T10:00"], ["scroll_depth_25", "add_to_cart"])
    assert split_sessions(ev)["event"].tolist() == ["add_to_cart", "scroll_depth_25"]


# --- midnight ---------------------------------------------------------------------------------

def test_midnight_split_in_utc():
    ev = _events(["a", "a"], ["2024-01-01T23:50", "2024-01-02T00:10"])
    assert _sessions_of(split_sessions(ev)) == [0, 0]
    assert _sessions_of(split_sessions(ev, split_at_midnight=True)) == [0, 1]


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        # spring forward (2024-03-31 01:00 UTC): local midnight of the 31st is 23:00 UTC on the 30th
        (["2024-03-30T22:50", "2024-03-30T23:10"], [0, 1]),
        # after the change the offset is +2: local midnight of 1 April is 22:00 UTC on 31 March
        (["2024-03-31T21:50", "2024-03-31T22:10"], [0, 1]),
        (["2024-03-31T00:50", "2024-03-31T01:20"], [0, 0]),  # across the DST jump itself, same day
        # fall back (2024-10-27 01:00 UTC): midnight of the 27th is 22:00 UTC on the 26th (+2) ...
        (["2024-10-26T21:50", "2024-10-26T22:10"], [0, 1]),
        # ... and midnight of the 28th is 23:00 UTC on the 27th (+1)
        (["2024-10-27T22:50", "2024-10-27T23:10"], [0, 1]),
        (["2024-10-26T23:50", "2024-10-27T00:10"], [0, 0]),  # UTC midnight is not a local one
    ],
)
def test_midnight_split_in_berlin_across_dst(times, expected):
    ev = _events(["a", "a"], times)
    assert _sessions_of(split_sessions(ev, split_at_midnight=True, timezone="Europe/Berlin")) == expected


def test_midnight_split_on_empty_log():
    ev = _events([], [])
    out = split_sessions(ev, split_at_midnight=True, timezone="Europe/Berlin")
    assert len(out) == 0 and {"session_id", "session_index", "gap_s"} <= set(out.columns)


# --- referrer change --------------------------------------------------------------------------

def test_referrer_change_starts_a_session_and_missing_referrers_do_not():
    times = ["2024-01-01T10:00", "2024-01-01T10:01", "2024-01-01T10:02", "2024-01-01T10:03", "2024-01-01T10:04"]
    refs = ["https://www.google.com/search?q=shoes", None, "https://google.com/?q=boots", "newsletter", "direct"]
    ev = _events(["a"] * 5, times, referrer=pd.array(refs, dtype="string"))
    assert _sessions_of(split_sessions(ev)) == [0, 0, 0, 0, 0]
    assert _sessions_of(split_sessions(ev, split_on_referrer_change=True)) == [0, 0, 0, 1, 1]


def test_internal_referrers_do_not_split():
    ev = _events(["a", "a", "a"], ["2024-01-01T10:00", "2024-01-01T10:01", "2024-01-01T10:02"],
                 referrer=["https://google.com/", "https://shop.example/home", "https://www.shop.example/cart"],
                 page=["https://shop.example/home", "https://shop.example/cart", "https://shop.example/checkout"])
    assert _sessions_of(split_sessions(ev, split_on_referrer_change=True)) == [0, 0, 0]


def test_referrer_source_normalizes_hosts_and_labels():
    t = as_table(pd.DataFrame({"r": ["HTTPS://WWW.Bing.com/x", "android-app://com.google/", " Email ", "(none)", "", None]}))
    got = to_pandas(t.select(s=referrer_source(t.r)))["s"].tolist()
    assert got[:3] == ["bing.com", "com.google", "email"]
    assert all(pd.isna(v) for v in got[3:])


def test_same_instant_event_without_referrer_joins_the_new_source():
    ev = _events(["a", "a", "a"], ["2024-01-01T10:00", "2024-01-01T10:05", "2024-01-01T10:05"],
                 ["page_view", "scroll_depth_25", "page_view"], referrer=["google", None, "email"])
    out = split_sessions(ev, split_on_referrer_change=True)
    assert out[["event", "session_index"]].values.tolist() == [["page_view", 0], ["page_view", 1], ["scroll_depth_25", 1]]


# --- inputs and outputs -----------------------------------------------------------------------

def test_input_is_not_mutated():
    ev = _events(["a", "a"], ["2024-01-01T10:00", "2024-01-01T12:00"], session_id=["t1", "t1"])
    before = ev.copy()
    out = split_sessions(ev)
    pd.testing.assert_frame_equal(ev, before)
    assert out["session_id"].tolist() == ["a-0", "a-1"]  # a tracker's session id is replaced


def test_parquet_and_ibis_inputs_give_the_same_result(tmp_path):
    ev = _events(["a", "b", "a"], ["2024-01-01T10:00", "2024-01-01T10:00", "2024-01-01T11:00"])
    path = tmp_path / "ev.parquet"
    ev.to_parquet(path)
    from_pandas = split_sessions(ev)
    from_path = split_sessions(str(path))
    pd.testing.assert_frame_equal(from_pandas, from_path, check_dtype=False)
    expr = split_sessions(path, output="ibis")
    assert isinstance(expr, ibis.Table)
    assert to_pandas(expr.aggregate(n=expr.session_id.nunique()))["n"].item() == 3


# --- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"timeout": "30"}, r"needs units"),
        ({"timeout": 1800}, r"needs units"),
        ({"timeout": "0m"}, r"must be positive"),
        ({"timezone": "Europe/Berln", "split_at_midnight": True}, r"did you mean 'Europe/Berlin'"),
        ({"timezone": "Europe/Berlin"}, r"split_at_midnight is False"),
        ({"referrer_col": "source"}, r"split_on_referrer_change is False"),
        ({"split_at_midnight": "yes"}, r"'split_at_midnight' got 'yes'"),
        ({"output": "polars"}, r"allowed: \['pandas', 'ibis'\]"),
        ({"user_col": 3}, r"'user_col' got 3; allowed: a column name"),
    ],
)
def test_parameter_errors(kwargs, match):
    ev = _events(["a"], ["2024-01-01T10:00"])
    with pytest.raises(ParameterError, match=match):
        split_sessions(ev, **kwargs)


def test_missing_column_suggests_the_closest_name():
    ev = _events(["a"], ["2024-01-01T10:00"]).rename(columns={"user_id": "user"})
    with pytest.raises(SchemaError, match=r"'user_id' not found in event log; did you mean 'user'\?") as info:
        split_sessions(ev)
    assert info.value.columns == ["user_id"]


def test_referrer_mode_needs_the_referrer_column():
    ev = _events(["a"], ["2024-01-01T10:00"])
    with pytest.raises(SchemaError, match=r"'referrer' not found"):
        split_sessions(ev, split_on_referrer_change=True)


def test_timestamp_must_be_a_timestamp():
    ev = _events(["a"], ["2024-01-01T10:00"]).assign(timestamp=["2024-01-01 10:00"])
    with pytest.raises(SchemaError, match=r"'timestamp' must hold timestamps"):
        split_sessions(ev)


# --- session table ----------------------------------------------------------------------------

def test_session_table_for_a_user_without_page_views():
    ev = _events(["a", "a", "b"], ["2024-01-01T10:00", "2024-01-01T10:02", "2024-01-01T10:00"],
                 ["search", "add_to_cart", "page_view"], page_type=[None, None, "home"])
    s = session_table(split_sessions(ev))
    a = s.set_index("user_id").loc["a"]
    assert a["n_pages"] == 0 and pd.isna(a["entry_page_type"]) and a["n_content_types"] == 1
    assert a["duration_s"] == 120.0 and bool(a["cart_abandoned"]) and not bool(a["is_bounce"])
    assert s.set_index("user_id").loc["b", "entry_page_type"] == "home"


def test_engaged_time_from_heartbeats_else_capped_gaps():
    ev = _events(
        ["a"] * 3 + ["b"] * 3,
        ["2024-01-01T10:00", "2024-01-01T10:00:15", "2024-01-01T10:20",
         "2024-01-01T10:00", "2024-01-01T10:01", "2024-01-01T10:21"],
        ["page_view", "engagement_time", "page_view", "page_view", "page_view", "page_view"],
        engagement_ms=[None, 15000.0, None, None, None, None],
    )
    s = session_table(split_sessions(ev), features=["engaged_s", "duration_s"]).set_index("user_id")
    assert s.loc["a", "engaged_s"] == 15.0
    assert s.loc["b", "engaged_s"] == 60.0 + 300.0  # the 20-minute gap counts as gap_cap = 5m
    assert s.loc["b", "duration_s"] == 21 * 60.0


def test_session_table_on_tracker_sessions_computes_gaps_itself():
    ev = _events(["a"] * 3, ["2024-01-01T10:00", "2024-01-01T10:01", "2024-01-01T10:02"],
                 session_id=["s1", "s1", "s2"])
    s = session_table(ev, features=["n_events", "engaged_s"])
    assert s[["session_id", "n_events", "engaged_s"]].values.tolist() == [["s1", 2, 60.0], ["s2", 1, 0.0]]


def test_session_table_features_missing_optional_columns_are_null():
    ev = _events(["a"], ["2024-01-01T10:00"])
    s = session_table(split_sessions(ev), features=["device", "revenue", "n_product_views"])
    assert s[["device", "revenue", "n_product_views"]].isna().all(axis=None)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"features": ["n_page"]}, ParameterError, r"did you mean 'n_pages'"),
        ({"features": ["pages_per_session"]}, ParameterError, r"is a user-level feature"),
        ({"gap_cap": "5"}, ParameterError, r"'gap_cap'.*needs units"),
        ({"output": "arrow"}, ParameterError, r"allowed"),
        ({"heartbeat_event": ""}, ParameterError, r"'heartbeat_event' got ''"),
    ],
)
def test_session_table_errors(kwargs, exc, match):
    ev = split_sessions(_events(["a"], ["2024-01-01T10:00"]))
    with pytest.raises(exc, match=match):
        session_table(ev, **kwargs)


def test_session_table_needs_sessions():
    with pytest.raises(SchemaError, match=r"'session_id' not found.*split_sessions"):
        session_table(_events(["a"], ["2024-01-01T10:00"]))


# --- against a brute-force sessionizer --------------------------------------------------------

def _brute_force(df, timeout_min, midnight_tz, on_referrer):
    """Walk each user's events in order, grouping events tied on every order key."""
    def src(r):
        if r is None or pd.isna(r):
            return None
        r = r.strip().lower()
        return None if r in ("", "direct", "(direct)", "(none)", "none", "-") else r

    out = {}
    for user, g in df.groupby("user_id"):
        g = g.assign(referrer=g["referrer"].astype(object).where(g["referrer"].notna(), None))
        rows = sorted(g.itertuples(), key=lambda r: (r.timestamp, (0, r.referrer) if on_referrer and r.referrer is not None else (1, "")))
        index, prev, last_src, prev_key = -1, None, None, None
        for r in rows:
            key = (r.timestamp, r.referrer if on_referrer else None)
            if key != prev_key:  # a new group of tied events: only it can start a session
                new = prev is None or (r.timestamp - prev) > pd.Timedelta(minutes=timeout_min)
                if midnight_tz and prev is not None:
                    new |= r.timestamp.tz_convert(midnight_tz).date() != prev.tz_convert(midnight_tz).date()
                if on_referrer:
                    s = src(r.referrer)
                    new |= s is not None and last_src is not None and s != last_src
                index += new
            if on_referrer and src(r.referrer) is not None:
                last_src = src(r.referrer)
            prev, prev_key = r.timestamp, key
            out[r.Index] = index
    return pd.Series(out).sort_index()


_START = pd.Timestamp("2024-03-30T20:00", tz="UTC")  # spans the Berlin and New York DST weeks


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 60 * 30), st.sampled_from(["x", "y"]),
                  st.sampled_from([None, "google", "email", "direct", " Google "])),
        min_size=1, max_size=40,
    ),
    timeout_min=st.integers(1, 90),
    midnight_tz=st.sampled_from([None, "UTC", "Europe/Berlin", "America/New_York"]),
    on_referrer=st.booleans(),
)
def test_split_sessions_matches_brute_force(rows, timeout_min, midnight_tz, on_referrer):
    df = pd.DataFrame(rows, columns=["user_id", "minute", "event", "referrer"])
    df["timestamp"] = _START + pd.to_timedelta(df.pop("minute") * 7, unit="min")
    df["referrer"] = df["referrer"].astype("string")
    expected = _brute_force(df, timeout_min, midnight_tz, on_referrer)
    kwargs = {"timeout": f"{timeout_min}m", "split_on_referrer_change": on_referrer}
    if midnight_tz:
        kwargs.update(split_at_midnight=True, timezone=midnight_tz)
    got = to_pandas(split_sessions(df.reset_index(), output="ibis", **kwargs)).set_index("index")["session_index"]
    pd.testing.assert_series_equal(got.sort_index(), expected, check_names=False, check_index_type=False,
                                   check_dtype=False)


# --- clean events from Parquet: the stored session numbers ---------------------------------------

@pytest.fixture(scope="module")
def parquet_clean(tmp_path_factory):
    import segkit
    from segkit.clean import clean_events
    from segkit.taxonomy import load_taxonomy

    shop = segkit.simulate_shop(300, n_days=14, seed=11)
    loaded = segkit.load_events(shop.events, columns=shop.column_map, timezone=shop.timezone)
    tax = load_taxonomy(Path(__file__).resolve().parents[1] / "parameters" / "taxonomy" / "default.yaml")
    path = tmp_path_factory.mktemp("clean") / "events.parquet"
    segkit.apply_taxonomy(loaded.events, tax).to_parquet(path)
    return clean_events(str(path), output="ibis")


def _by_row(expr):
    from segkit.engine import ROW_COL

    cols = [ROW_COL, "user_id", "timestamp", "page", "device", "session_id", "session_index", "gap_s"]
    return to_pandas(expr.select(*cols)).sort_values(ROW_COL).reset_index(drop=True)


def test_sorted_session_numbers_equal_the_window_form(parquet_clean, monkeypatch):
    import segkit.engine as engine_mod
    import segkit.sessions as sessions_mod

    fast = _by_row(split_sessions(parquet_clean.events, output="ibis"))
    assert len(fast) == parquet_clean.rows_out and fast["session_index"].max() > 0
    monkeypatch.setattr(sessions_mod, "_SPINE_BATCH", 97)  # many batch boundaries inside visitors and sessions
    pd.testing.assert_frame_equal(_by_row(split_sessions(parquet_clean.events, output="ibis")), fast)
    monkeypatch.setattr(sessions_mod, "_session_numbers_sorted", lambda *a, **k: None)  # the two-window SQL form
    pd.testing.assert_frame_equal(_by_row(split_sessions(parquet_clean.events, output="ibis")), fast)
    monkeypatch.setattr(engine_mod, "_KEPT", {})  # no recorded unfiltered source: anti-join + lookups as written
    pd.testing.assert_frame_equal(_by_row(split_sessions(parquet_clean.events, output="ibis")), fast)


def test_a_visitor_hash_collision_falls_back_to_the_window_form(parquet_clean, monkeypatch):
    import segkit.sessions as sessions_mod

    fast = _by_row(split_sessions(parquet_clean.events, output="ibis"))
    real, calls = sessions_mod.hash64, []

    def colliding(t, value):  # every visitor gets the same first hash; the second still differs
        calls.append(value)
        return ibis.literal(7, "uint64") if len(calls) % 2 else real(t, value)

    monkeypatch.setattr(sessions_mod, "hash64", colliding)
    assert sessions_mod._session_numbers_sorted(parquet_clean.events.select("__segkit_row", "user_id", "timestamp"),
                                                pd.Timedelta("30min"), user_col="user_id", timestamp_col="timestamp") is None
    pd.testing.assert_frame_equal(_by_row(split_sessions(parquet_clean.events, output="ibis")), fast)
