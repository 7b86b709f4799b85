"""Tests of segkit.funnels: counting rules on tiny frames, errors, and a brute-force reference.

The reference (``_brute``) implements the documented counting rule literally, in pure Python,
one user and one attempt at a time: for each step it scans every event of the user in the
documented tie order. A property test compares :func:`segkit.funnels.funnel` (DuckDB + the
compiled kernel) with it on random event logs with many tied timestamps, for every order and
with and without exclusions.
"""
from __future__ import annotations

import doctest
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import segkit
import segkit.funnels as funnels_mod
from segkit.errors import ParameterError, SchemaError
from segkit.funnels import Exclusion, FunnelResult, funnel, plot_funnel
from segkit.segments import Segment, Step, did, evaluate_segments, step

ROOT = Path(__file__).resolve().parents[1]
T0 = pd.Timestamp("2024-01-01", tz="UTC")
US = 1_000_000
MIN = 60 * US


def _ev(rows, columns=("user_id", "minute", "event", "device", "page_type")) -> pd.DataFrame:
    """rows: (user, minute, event[, device[, page_type]])."""
    full = [tuple(r) + (None,) * (len(columns) - len(r)) for r in rows]
    df = pd.DataFrame(full, columns=list(columns))
    df["timestamp"] = (T0 + pd.to_timedelta(df["minute"].astype("float64"), unit="min")).astype("datetime64[us, UTC]")
    for c in ("user_id", "event", "device", "page_type"):
        if c in df.columns:
            df[c] = df[c].astype("string")
    return df.drop(columns="minute")


def _at(minutes: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minutes)


def _obj(values) -> list:
    """Values as a list, missing ones as None."""
    return [None if pd.isna(v) else v for v in values]


def _depths(res: FunnelResult) -> dict[str, int]:
    return dict(zip(res.users["user_id"].astype(str), res.users["depth"].astype(int)))


# --------------------------------------------------------------------------------------------
# Counting rules
# --------------------------------------------------------------------------------------------


def test_steps_table_counts_rates_and_medians():
    ev = _ev([("a", 0, "view"), ("a", 5, "cart"), ("a", 65, "buy"),
              ("b", 0, "view"), ("b", 15, "cart"),
              ("c", 0, "view"), ("d", 3, "cart")])
    res = funnel(ev, ["view", "cart", "buy"], within="1d")
    s = res.steps
    assert s["step"].tolist() == [1, 2, 3]
    assert s["label"].tolist() == ["view", "cart", "buy"]
    assert s["users"].tolist() == [3, 2, 1]
    assert s["conversion_from_previous"].tolist() == pytest.approx([1.0, 2 / 3, 0.5])
    assert s["conversion_from_first"].tolist() == pytest.approx([1.0, 2 / 3, 1 / 3])
    assert s["dropped_off"].tolist()[:2] == [1, 1] and pd.isna(s["dropped_off"].iloc[2])
    assert np.isnan(s["median_s_from_previous"].iloc[0])
    assert s["median_s_from_previous"].iloc[1] == pytest.approx(10 * 60)  # median of 5 and 15 minutes
    assert s["median_s_from_previous"].iloc[2] == pytest.approx(60 * 60)
    assert s["median_s_from_first"].iloc[2] == pytest.approx(65 * 60)
    assert res.n_users == 4 and res.as_of == _at(65)


def test_users_without_a_step1_event_are_not_in_the_funnel():
    ev = _ev([("a", 0, "view"), ("b", 1, "cart"), ("b", 2, "buy")])
    res = funnel(ev, ["view", "cart"])
    assert res.users["user_id"].tolist() == ["a"]
    assert res.steps["users"].tolist() == [1, 0]
    assert res.n_users == 2


def test_users_table_columns_and_times():
    ev = _ev([("b", 0, "view"), ("a", 10, "view"), ("a", 12, "cart")])
    U = funnel(ev, ["view", "cart", "buy"]).users
    assert list(U.columns) == ["user_id", "depth", "converted", "step_1_at", "step_2_at", "step_3_at"]
    assert U["user_id"].tolist() == ["a", "b"]  # sorted by user
    assert U["depth"].tolist() == [2, 1] and U["converted"].tolist() == [False, False]
    assert U["step_1_at"].tolist() == [_at(10), _at(0)]
    assert U["step_2_at"].iloc[0] == _at(12) and pd.isna(U["step_2_at"].iloc[1])
    assert str(U["step_1_at"].dtype) == "datetime64[us, UTC]"


def test_window_bound_is_inclusive():
    ev = _ev([("a", 0, "view"), ("a", 60, "buy"),
              ("b", 0, "view"), ("b", 60 + 1 / 60_000_000, "buy")])  # one microsecond too late
    res = funnel(ev, ["view", "buy"], within="1h")
    assert _depths(res) == {"a": 2, "b": 1}


def test_window_runs_from_step1_not_step_to_step():
    ev = _ev([("a", 0, "view"), ("a", 50, "cart"), ("a", 70, "buy")])
    assert _depths(funnel(ev, ["view", "cart", "buy"], within="1h")) == {"a": 2}


def test_same_timestamp_counts_as_following_but_needs_another_row():
    ev = _ev([("a", 5, "view"), ("a", 5, "cart"),   # tied: cart may follow view
              ("b", 5, "cart"), ("b", 5, "view"),   # row order does not matter
              ("c", 5, "view")])                    # one view cannot be both steps of view -> view
    assert _depths(funnel(ev, ["view", "cart"])) == {"a": 2, "b": 2, "c": 1}
    assert _depths(funnel(ev, ["view", "view"])) == {"a": 1, "b": 1, "c": 1}
    two = _ev([("a", 5, "view"), ("a", 5, "view")])
    assert _depths(funnel(two, ["view", "view"])) == {"a": 2}


def test_repeated_step_needs_distinct_events():
    ev = _ev([("a", 0, "view"), ("a", 1, "buy"), ("b", 0, "view"), ("b", 1, "view"), ("b", 2, "buy")])
    assert _depths(funnel(ev, ["view", "view", "buy"])) == {"a": 1, "b": 3}


def test_greedy_takes_the_earliest_next_match():
    ev = _ev([("a", 0, "view"), ("a", 5, "cart"), ("a", 9, "cart"), ("a", 20, "buy")])
    U = funnel(ev, ["view", "cart", "buy"], within="1h").users
    assert U["step_2_at"].iloc[0] == _at(5) and U["step_3_at"].iloc[0] == _at(20)


def test_best_attempt_is_the_deepest_then_the_earliest():
    # the first view's window ends before the cart; the second view converts
    ev = _ev([("a", 0, "view"), ("a", 100, "view"), ("a", 105, "cart"),
              # both views reach the cart: the earliest attempt counts (time from the first view)
              ("b", 0, "view"), ("b", 10, "view"), ("b", 12, "cart")])
    res = funnel(ev, ["view", "cart"], within="1h")
    U = res.users.set_index("user_id")
    assert U.loc["a", "step_1_at"] == _at(100) and U.loc["a", "depth"] == 2
    assert U.loc["b", "step_1_at"] == _at(0)
    assert res.steps["median_s_from_first"].iloc[1] == pytest.approx((5 * 60 + 12 * 60) / 2)


def test_strict_order_forbids_any_event_between_steps():
    ev = _ev([("a", 0, "view"), ("a", 1, "scroll"), ("a", 2, "cart"),   # scroll between
              ("b", 0, "view"), ("b", 2, "cart"), ("b", 2, "scroll"),   # tied with cart: adjacent
              ("c", 0, "view"), ("c", 0, "scroll"), ("c", 3, "cart")])  # tied with view: adjacent
    assert _depths(funnel(ev, ["view", "cart"], order="sequential")) == {"a": 2, "b": 2, "c": 2}
    assert _depths(funnel(ev, ["view", "cart"], order="strict")) == {"a": 1, "b": 2, "c": 2}


def test_strict_uses_a_later_attempt_when_the_first_is_interrupted():
    ev = _ev([("a", 0, "view"), ("a", 1, "scroll"), ("a", 2, "view"), ("a", 3, "cart")])
    U = funnel(ev, ["view", "cart"], order="strict").users
    assert U["depth"].iloc[0] == 2 and U["step_1_at"].iloc[0] == _at(2)


def test_any_order_allows_later_steps_in_any_order_but_after_step1():
    ev = _ev([("a", 0, "view"), ("a", 1, "buy"), ("a", 2, "cart"),
              ("b", 0, "cart"), ("b", 1, "view"), ("b", 2, "buy")])  # cart before view: not counted
    steps = ["view", "cart", "buy"]
    assert _depths(funnel(ev, steps)) == {"a": 2, "b": 1}
    res = funnel(ev, steps, order="any")
    assert _depths(res) == {"a": 3, "b": 1}
    U = res.users.set_index("user_id")
    assert U.loc["a", "step_3_at"] == _at(1) and U.loc["a", "step_2_at"] == _at(2)
    # completion times: all three steps were done at minute 2; nothing is negative
    assert res.steps["median_s_from_previous"].tolist()[1:] == [120.0, 0.0]
    assert res.steps["median_s_from_first"].tolist()[1:] == [120.0, 120.0]


def test_multi_event_step_and_where_filters():
    ev = _ev([("a", 0, "page_view", "m", "home"), ("a", 1, "page_view", "m", "product"), ("a", 2, "add_to_cart"),
              ("b", 0, "page_view", "d", "product"), ("b", 1, "wishlist_add"),
              ("c", 0, "page_view", "d", None), ("c", 1, "add_to_cart")])  # missing page_type never matches
    steps = [step("page_view", where={"page_type": "product"}), ["add_to_cart", "wishlist_add"]]
    res = funnel(ev, steps)
    assert _depths(res) == {"a": 2, "b": 2}
    assert res.labels == ("page_view[page_type=product]", "add_to_cart|wishlist_add")
    labelled = funnel(ev, [{"event": "page_view", "where": {"page_type": "product"}, "label": "product view"}, "add_to_cart"])
    assert labelled.steps["label"].tolist() == ["product view", "add_to_cart"]
    assert _depths(labelled) == {"a": 2, "b": 1}


# --------------------------------------------------------------------------------------------
# Exclusions
# --------------------------------------------------------------------------------------------


def test_exclusion_between_two_steps_cuts_the_attempt_there():
    ev = _ev([("a", 0, "view"), ("a", 1, "cart"), ("a", 2, "remove"), ("a", 3, "buy"),
              ("b", 0, "view"), ("b", 1, "remove"), ("b", 2, "cart"), ("b", 3, "buy"),   # outside [2, 3]
              ("c", 0, "view"), ("c", 1, "cart"), ("c", 3, "remove"), ("c", 3, "buy")])  # tied with buy: not between
    ex = [{"event": "remove", "between": [2, 3]}]
    res = funnel(ev, ["view", "cart", "buy"], exclude=ex)
    assert _depths(res) == {"a": 2, "b": 3, "c": 3}
    assert _obj(res.users["excluded_by"]) == [1, None, None]
    assert res.exclusions == (Exclusion(Step("remove"), (2, 3)),)


def test_exclusion_by_name_applies_between_first_and_last_step():
    ev = _ev([("a", 0, "view"), ("a", 1, "remove"), ("a", 2, "cart"), ("a", 3, "buy"),
              ("b", 0, "remove"), ("b", 1, "view"), ("b", 2, "cart"), ("b", 5, "buy"), ("b", 6, "remove")])
    res = funnel(ev, ["view", "cart", "buy"], exclude=["remove"])
    assert _depths(res) == {"a": 1, "b": 3}


def test_exclusion_cut_attempt_loses_to_a_clean_later_attempt():
    ev = _ev([("a", 0, "view"), ("a", 1, "remove"), ("a", 2, "view"), ("a", 3, "cart")])
    U = funnel(ev, ["view", "cart"], exclude="remove").users
    assert U["depth"].iloc[0] == 2 and U["step_1_at"].iloc[0] == _at(2)


def test_exclusion_with_where_filter_and_step_object():
    ev = _ev([("a", 0, "view", "m", "home"), ("a", 1, "view", "m", "error"), ("a", 2, "buy"),
              ("b", 0, "view", "m", "home"), ("b", 1, "view", "m", "product"), ("b", 2, "buy")])
    steps = [step("view", where={"page_type": "home"}), "buy"]
    res = funnel(ev, steps, exclude=[{"event": "view", "where": {"page_type": "error"}}])
    assert _depths(res) == {"a": 1, "b": 2}
    same = funnel(ev, steps, exclude=[Exclusion(step("view", where={"page_type": "error"}))])
    assert _depths(same) == {"a": 1, "b": 2}
    # an excluded event that is itself a step-1 event starts a clean attempt of its own
    assert _depths(funnel(ev, ["view", "buy"], exclude=[{"event": "view", "where": {"page_type": "error"}}])) == {"a": 2, "b": 2}


def test_exclusion_reason_in_dropoff_segment():
    ev = _ev([("a", 0, "view"), ("a", 1, "cart"), ("a", 2, "remove"), ("a", 3, "buy"),
              ("b", 0, "view"), ("b", 1, "cart")])
    seg = funnel(ev, ["view", "cart", "buy"], within="1h", exclude=[{"event": "remove", "between": [2, 3]}]).dropoff_segment(2)
    reasons = dict(zip(seg["user_id"], seg["reason"]))
    assert reasons == {"a": "reached 'cart' (step 2), not 'buy' within 1h: 'remove' came in between",
                       "b": "reached 'cart' (step 2), not 'buy' within 1h"}


# --------------------------------------------------------------------------------------------
# Breakdowns
# --------------------------------------------------------------------------------------------


def test_breakdown_takes_the_value_of_the_best_attempts_first_step():
    ev = _ev([("a", 0, "view", "mobile"), ("a", 100, "view", "desktop"), ("a", 101, "buy", "desktop"),
              ("b", 0, "view", "mobile"), ("b", 1, "buy", "tablet"),
              ("c", 0, "view", "desktop"),
              ("d", 0, "view", None)])
    res = funnel(ev, ["view", "buy"], within="1h", breakdown="device")
    assert dict(zip(res.users["user_id"], _obj(res.users["device"]))) == {
        "a": "desktop", "b": "mobile", "c": "desktop", "d": None}
    by = res.by
    assert list(by.columns) == ["device", "step", "label", "users", "conversion_from_previous", "conversion_from_first",
                                "dropped_off", "median_s_from_previous", "median_s_from_first"]
    # bigger groups first, then by value, missing last
    assert _obj(by["device"]) == ["desktop", "desktop", "mobile", "mobile", None, None]
    assert by["device"].dtype == res.users["device"].dtype
    assert by["users"].tolist() == [2, 1, 1, 1, 1, 0]
    assert by.groupby("step")["users"].sum().tolist() == res.steps["users"].tolist()


def test_breakdown_tie_between_simultaneous_starts_takes_the_smallest_value():
    ev = _ev([("a", 0, "view", "mobile"), ("a", 0, "view", "desktop"), ("a", 1, "buy")])
    res = funnel(ev, ["view", "buy"], breakdown="device")
    assert res.users["device"].tolist() == ["desktop"]


def test_breakdown_by_the_event_or_a_numeric_column():
    ev = _ev([("a", 0, "search"), ("a", 1, "buy"), ("b", 0, "view"), ("c", 0, "view"), ("c", 1, "buy")])
    ev["price"] = [1.5, 2.0, 3.0, np.nan, 4.0]
    by = funnel(ev, [["search", "view"], "buy"], breakdown="event").by
    assert by["event"].tolist() == ["view", "view", "search", "search"] and by["users"].tolist() == [2, 1, 1, 1]
    byp = funnel(ev, [["search", "view"], "buy"], breakdown="price").by
    assert _obj(byp["price"]) == [1.5, 1.5, 3.0, 3.0, None, None] and byp["price"].dtype == "float64"


def test_breakdown_by_segments_counts_users_in_every_segment():
    ev = _ev([("a", 0, "view"), ("a", 1, "buy"), ("b", 0, "view"), ("c", 0, "view"), ("c", 2, "buy"), ("d", 0, "buy")])
    mem = pd.DataFrame({"user_id": ["a", "b", "a", "c", "d"], "segment": ["x", "x", "y", "y", "y"]})
    mem.attrs["segments"] = ["x", "y", "empty"]
    by = funnel(ev, ["view", "buy"], segments=mem).by
    assert list(by.columns)[0] == "segment"
    assert by["segment"].tolist() == ["(all users)"] * 2 + ["x"] * 2 + ["y"] * 2 + ["empty"] * 2
    assert by["users"].tolist() == [3, 2, 2, 1, 2, 2, 0, 0]
    assert by["conversion_from_first"].iloc[3] == pytest.approx(0.5)
    assert np.isnan(by["conversion_from_first"].iloc[6])


def test_segments_from_evaluate_segments_and_dropoff_round_trip():
    ev = _ev([("a", 0, "view"), ("a", 1, "buy"), ("b", 0, "view"), ("c", 0, "search"), ("c", 1, "view")])
    mem = evaluate_segments([Segment("searchers", did("search"))], events=ev)
    res = funnel(ev, ["view", "buy"], segments=mem)
    assert res.by.loc[res.by["segment"] == "searchers", "users"].tolist() == [1, 0]


# --------------------------------------------------------------------------------------------
# Drop-off segments
# --------------------------------------------------------------------------------------------


def test_dropoff_segment_has_the_membership_shape_and_concatenates():
    ev = _ev([("a", 0, "view"), ("a", 5, "cart"), ("b", 0, "view"), ("b", 3, "cart"), ("b", 4, "buy"), ("c", 7, "view")])
    res = funnel(ev, ["view", "cart", "buy"], within="7d")
    seg = res.dropoff_segment(2)
    rules = evaluate_segments([Segment("viewers", did("view"))], events=ev)
    assert list(seg.columns) == list(rules.columns) == ["user_id", "segment", "entered_at", "reason"]
    assert seg.dtypes.tolist() == rules.dtypes.tolist()
    assert seg["user_id"].tolist() == ["a"]
    assert seg["segment"].tolist() == ["dropoff_step2_cart"]
    assert seg["entered_at"].tolist() == [_at(5)]
    assert seg["reason"].tolist() == ["reached 'cart' (step 2), not 'buy' within 7d"]
    assert seg.attrs["segments"] == ["dropoff_step2_cart"] and seg.attrs["n_users"] == 3
    both = pd.concat([rules, seg], ignore_index=True)
    assert both.dtypes.tolist() == rules.dtypes.tolist() and len(both) == 4
    by_label = res.dropoff_segment("view", name="bounced")
    assert by_label["user_id"].tolist() == ["c"] and by_label["segment"].tolist() == ["bounced"]
    for k in (1, 2):
        assert len(res.dropoff_segment(k)) == res.steps["dropped_off"].iloc[k - 1]


def test_dropoff_reasons_name_the_order_and_entered_at_is_the_completion_time():
    ev = _ev([("a", 0, "view"), ("a", 1, "buy"), ("a", 2, "cart")])
    res = funnel(ev, ["view", "cart", "buy"], order="any", within="2h")
    assert _depths(res) == {"a": 3}
    ev2 = _ev([("a", 0, "view"), ("a", 1, "scroll"), ("a", 2, "cart")])
    seg = funnel(ev2, ["view", "cart"], order="strict", within="2h").dropoff_segment(1)
    assert seg["reason"].tolist() == ["reached 'view' (step 1), not 'cart' directly after it within 2h"]
    ev3 = _ev([("a", 0, "view"), ("a", 5, "buy")])
    seg3 = funnel(ev3, ["view", "cart", "buy"], order="any").dropoff_segment(1)
    assert seg3["reason"].tolist() == ["reached 'view' (step 1), not 'cart' (any order) within 7d"]
    assert seg3["entered_at"].tolist() == [_at(0)]


def test_dropoff_segment_errors():
    res = funnel(_ev([("a", 0, "view"), ("a", 1, "view")]), ["view", "view", "buy"])
    with pytest.raises(ParameterError, match="nobody drops off at the last step"):
        res.dropoff_segment(3)
    with pytest.raises(ParameterError, match=r"numbered 1\.\.2"):
        res.dropoff_segment(0)
    with pytest.raises(ParameterError, match="names steps \\[1, 2\\]"):
        res.dropoff_segment("view")
    with pytest.raises(ParameterError, match="'step' got 'vieww'.*did you mean 'view'"):
        res.dropoff_segment("vieww")
    with pytest.raises(ParameterError, match="segment name"):
        res.dropoff_segment(1, name="no spaces")
    with pytest.raises(ParameterError, match="a step number"):
        res.dropoff_segment(1.0)


# --------------------------------------------------------------------------------------------
# Inputs, edge cases, errors
# --------------------------------------------------------------------------------------------


def test_input_is_not_mutated_and_parquet_and_ibis_inputs_agree(tmp_path):
    ev = _ev([("a", 0, "view", "m"), ("a", 2, "cart"), ("b", 0, "view", "d"), ("b", 1, "scroll"), ("b", 3, "cart")])
    before = ev.copy()
    ref = funnel(ev, ["view", "cart"], order="strict", breakdown="device")
    pd.testing.assert_frame_equal(ev, before)
    path = tmp_path / "ev.parquet"
    ev.to_parquet(path)
    from_file = funnel(str(path), ["view", "cart"], order="strict", breakdown="device")
    t = segkit.engine.as_table(ev)
    from_expr = funnel(t.filter(t.event != "nothing"), ["view", "cart"], order="strict", breakdown="device")
    assert ref.users["device"].dtype == ev["device"].dtype  # a DataFrame's breakdown dtype is kept
    for other in (from_file, from_expr):
        pd.testing.assert_frame_equal(other.users.drop(columns="device"), ref.users.drop(columns="device"))
        assert _obj(other.users["device"]) == _obj(ref.users["device"])
        pd.testing.assert_frame_equal(other.steps, ref.steps)


def test_result_does_not_depend_on_row_order():
    rng = np.random.default_rng(0)
    rows = [(f"u{rng.integers(3)}", int(rng.integers(6)), str(rng.choice(list("abcz"))), str(rng.choice(["m", "d"])))
            for _ in range(60)]
    ev = _ev(rows, columns=("user_id", "minute", "event", "device"))
    kw = dict(within="3m", exclude=[{"event": "c", "between": [2, 3]}], breakdown="device")
    for order in ("sequential", "strict", "any"):
        ref = funnel(ev, ["a", ["a", "b"], "b"], order=order, **kw)
        for seed in (1,):
            shuffled = ev.sample(frac=1, random_state=seed).reset_index(drop=True)
            pd.testing.assert_frame_equal(funnel(shuffled, ["a", ["a", "b"], "b"], order=order, **kw).users, ref.users)


def test_string_keys_when_hashes_are_not_used(monkeypatch):
    ev = _ev([("a", 0, "view"), ("a", 1, "x"), ("a", 2, "cart"), ("b", 0, "view"), ("b", 2, "cart"), ("c", 1, "cart")])
    ref = funnel(ev, ["view", "cart"], order="strict", breakdown="device")
    monkeypatch.setattr(funnels_mod, "_HASH_KEYS", False)
    alt = funnel(ev, ["view", "cart"], order="strict", breakdown="device")
    pd.testing.assert_frame_equal(alt.users, ref.users)
    assert alt.n_users == ref.n_users == 3


def test_rows_without_user_or_time_are_ignored_and_empty_funnels_work():
    ev = _ev([("a", 0, "view"), (None, 1, "view")])
    ev.loc[0, "timestamp"] = pd.NaT
    res = funnel(ev, ["view", "cart"], breakdown="device")
    assert res.users.empty and res.steps["users"].tolist() == [0, 0]
    assert res.steps["conversion_from_first"].isna().all() and res.by.empty
    assert res.dropoff_segment(1).empty and res.n_users == 0 and res.as_of is None


def test_nanosecond_and_zoned_timestamps_are_read_in_utc_microseconds():
    ev = _ev([("a", 0, "view"), ("a", 30, "buy")])
    ns = ev.assign(timestamp=ev["timestamp"].astype("datetime64[ns, UTC]"))
    berlin = ev.assign(timestamp=ev["timestamp"].dt.tz_convert("Europe/Berlin"))
    for frame in (ns, berlin):
        U = funnel(frame, ["view", "buy"]).users
        assert U["step_1_at"].tolist() == [_at(0)] and U["step_2_at"].tolist() == [_at(30)]


def test_custom_column_names():
    ev = _ev([("a", 0, "view"), ("a", 1, "buy")]).rename(columns={"user_id": "uid", "event": "name", "timestamp": "ts"})
    res = funnel(ev, ["view", "buy"], user_col="uid", event_col="name", timestamp_col="ts")
    assert res.users["uid"].tolist() == ["a"] and res.steps["users"].tolist() == [1, 1]
    assert list(res.dropoff_segment(1).columns)[0] == "uid"


def test_step_and_order_errors():
    ev = _ev([("a", 0, "view")])
    with pytest.raises(ParameterError, match="at least two steps"):
        funnel(ev, ["view"])
    with pytest.raises(ParameterError, match="at least two steps"):
        funnel(ev, "view")
    with pytest.raises(ParameterError, match="'order' got 'strcit'.*did you mean 'strict'"):
        funnel(ev, ["view", "buy"], order="strcit")
    with pytest.raises(ParameterError, match=r"'steps\[1\]' has unknown key 'evnt'; did you mean 'event'"):
        funnel(ev, ["view", {"evnt": "buy"}])
    with pytest.raises(ParameterError, match=r"steps\[1\].*needs 'event'"):
        funnel(ev, ["view", {"where": {"page_type": "x"}}])
    with pytest.raises(ParameterError, match=r"steps\[0\].*a step is an event name"):
        funnel(ev, [3, "buy"])
    with pytest.raises(ParameterError, match=r"steps\[1\].*own window"):
        funnel(ev, ["view", step("buy", within="1h")])
    with pytest.raises(ParameterError, match=r"steps\[0\].*virtual session start"):
        funnel(ev, ["session_start", "buy"])
    with pytest.raises(ParameterError, match=r"steps\[1\]\.where\.page_type\.in"):
        funnel(ev, ["view", {"event": "buy", "where": {"page_type": {"in": []}}}])
    with pytest.raises(ParameterError, match=r"steps\[0\]\.event.*unknown event; did you mean 'view'"):
        funnel(ev, ["vew", "buy"], taxonomy_events=["view", "buy"])


@pytest.mark.parametrize("within, match", [(3600, "needs units"), ("3600", "needs units"), ("0h", "must be positive"),
                                           ("-1d", "needs units"), (pd.Timedelta(0), "must be positive")])
def test_within_errors(within, match):
    with pytest.raises(ParameterError, match=f"'within' got .*{match}"):
        funnel(_ev([("a", 0, "view")]), ["view", "buy"], within=within)


def test_exclusion_errors():
    ev = _ev([("a", 0, "view")])
    with pytest.raises(ParameterError, match=r"exclude\[0\]\.between.*got \[2, 4\]: steps are numbered 1\.\.3"):
        funnel(ev, ["view", "cart", "buy"], exclude=[{"event": "remove", "between": [2, 4]}])
    with pytest.raises(ParameterError, match=r"1 <= a < b <= 3"):
        funnel(ev, ["view", "cart", "buy"], exclude=[{"event": "remove", "between": [2, 2]}])
    with pytest.raises(ParameterError, match=r"steps are numbered 1\.\.3"):
        funnel(ev, ["view", "cart", "buy"], exclude=[{"event": "remove", "between": [0, 2]}])
    with pytest.raises(ParameterError, match=r"exclude\[1\]\.between.*two step numbers"):
        funnel(ev, ["view", "buy"], exclude=["x", {"event": "remove", "between": "2-3"}])
    with pytest.raises(ParameterError, match=r"'exclude\[0\]' has unknown key 'betwen'; did you mean 'between'"):
        funnel(ev, ["view", "buy"], exclude=[{"event": "remove", "betwen": [1, 2]}])
    with pytest.raises(ParameterError, match=r"exclude\[0\]\.between.*got \[1, 3\]"):
        funnel(ev, ["view", "buy"], exclude=[Exclusion(Step("remove"), (1, 3))])
    with pytest.raises(ParameterError, match=r"exclude\[0\]\.where\.device"):
        funnel(ev, ["view", "buy"], exclude=[{"event": "remove", "where": {"device": 3}}])


def test_column_errors():
    ev = _ev([("a", 0, "view")])
    with pytest.raises(SchemaError, match="'user' not found in event log; did you mean 'user_id'"):
        funnel(ev, ["view", "buy"], user_col="user")
    with pytest.raises(SchemaError, match="'events' not found in event log; did you mean 'event'"):
        funnel(ev, ["view", "buy"], event_col="events")
    with pytest.raises(SchemaError, match="'devices' not found in event log; did you mean 'device'"):
        funnel(ev, ["view", "buy"], breakdown="devices")
    with pytest.raises(SchemaError, match="'page_typ' not found"):
        funnel(ev, [step("view", where={"page_typ": "product"}), "buy"])
    with pytest.raises(SchemaError, match="must hold timestamps"):
        funnel(ev.assign(timestamp=ev["timestamp"].astype(str)), ["view", "buy"])
    with pytest.raises(ParameterError, match="key column cannot be filtered"):
        funnel(ev, [step("view", where={"user_id": "a"}), "buy"])
    with pytest.raises(ParameterError, match="not by the user or the time"):
        funnel(ev, ["view", "buy"], breakdown="timestamp")
    with pytest.raises(ParameterError, match="either 'breakdown'.*or 'segments'"):
        funnel(ev, ["view", "buy"], breakdown="device", segments=pd.DataFrame({"user_id": [], "segment": []}))
    with pytest.raises(SchemaError, match="'segment' not found in segments membership table"):
        funnel(ev, ["view", "buy"], segments=pd.DataFrame({"user_id": ["a"]}))
    with pytest.raises(ParameterError, match="'user_col'"):
        funnel(ev, ["view", "buy"], user_col="")


def test_plot_funnel_returns_a_figure_with_labelled_bars():
    ev = _ev([("a", 0, "view"), ("a", 1, "buy"), ("b", 0, "view")])
    fig = plot_funnel(funnel(ev, ["view", "buy"]))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1. view", "2. buy"]
    texts = [t.get_text() for t in ax.texts]
    assert "2\n100%" in texts and "1\n50%" in texts and "50% \u2192" in texts
    assert [round(p.get_height()) for p in ax.patches] == [2, 1]
    import matplotlib.pyplot as plt

    _, ax2 = plt.subplots()
    assert plot_funnel(funnel(ev, ["view", "buy"]), ax=ax2) is ax2.figure
    plt.close("all")
    with pytest.raises(ParameterError, match="FunnelResult"):
        plot_funnel(ev)


def test_docstring_examples_run():
    failures, _ = doctest.testmod(funnels_mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert failures == 0


# --------------------------------------------------------------------------------------------
# Brute-force reference and property test
# --------------------------------------------------------------------------------------------


def _brute(ev: pd.DataFrame, steps: list[frozenset], within_us: int, order: str,
           excl: list[tuple[frozenset, int, int]]) -> dict[str, tuple]:
    """user -> (depth, step times in µs, device of step 1, index of the cutting exclusion or -1)."""
    n = len(steps)
    out: dict[str, tuple] = {}
    for u, g in ev.groupby("user_id", sort=True):
        all_ts = [int(t.value // 1000) for t in g["timestamp"]]
        rows = []
        for t_, e, d in zip(all_ts, g["event"], g["device"]):
            mask = sum(1 << j for j, s in enumerate(steps) if e in s)
            xs = {k for k, (s, _, _) in enumerate(excl) if e in s}
            if mask or xs:
                rows.append((t_, mask, xs, None if pd.isna(d) else str(d)))
        rows.sort(key=lambda r: (r[0], r[1] & -r[1], r[1], r[3] is None, r[3] or ""))
        best = None
        for i0, r0 in enumerate(rows):
            if not r0[1] & 1:
                continue
            t0 = r0[0]
            used, times, prev, comp, cut = [i0], [t0], i0, t0, -1
            for j in range(1, n):
                lo = t0 if order == "any" else rows[prev][0]
                pick = next((i for i, r in enumerate(rows)
                             if i not in used and (r[1] >> j) & 1 and lo <= r[0] <= t0 + within_us), None)
                if pick is None:
                    break
                if order == "strict" and any(rows[prev][0] < t_ < rows[pick][0] for t_ in all_ts):
                    break
                new = max(comp, rows[pick][0])
                hit = next((k for k, (_, a, b) in enumerate(excl)
                            if a <= j < b and any(k in r[2] and comp < r[0] < new for r in rows)), None)
                if hit is not None:
                    cut = hit
                    break
                used.append(pick)
                times.append(rows[pick][0])
                prev, comp = pick, new
            if best is None or len(used) > best[0]:
                best = (len(used), times, r0[3], cut)
        if best is not None:
            out[str(u)] = best
    return out


_EVENTS = "abcd"


@st.composite
def _cases(draw):
    n_users = draw(st.integers(1, 4))
    rows = []
    for u in range(n_users):
        for _ in range(draw(st.integers(0, 9))):
            rows.append((f"u{u}", draw(st.integers(0, 12)), draw(st.sampled_from(_EVENTS + "zz")),
                         draw(st.sampled_from(["m", "d", None]))))
    n_steps = draw(st.integers(2, 4))
    steps = [frozenset(draw(st.sets(st.sampled_from(_EVENTS), min_size=1, max_size=2))) for _ in range(n_steps)]
    excl = []
    if draw(st.booleans()):
        for _ in range(draw(st.integers(1, 2))):
            ev = frozenset(draw(st.sets(st.sampled_from(_EVENTS + "z"), min_size=1, max_size=1)))
            if draw(st.booleans()):
                a = draw(st.integers(1, n_steps - 1))
                b = draw(st.integers(a + 1, n_steps))
                excl.append((ev, a, b, True))
            else:
                excl.append((ev, 1, n_steps, False))
    order = draw(st.sampled_from(["sequential", "strict", "any"]))
    within = draw(st.integers(1, 15))
    return rows, steps, excl, order, within


# Each example runs two DuckDB queries (~70 ms, mostly Ibis compilation); SEGKIT_PROPERTY_EXAMPLES=1000
# runs a thorough pass.
N_EXAMPLES = int(os.environ.get("SEGKIT_PROPERTY_EXAMPLES", "50"))


@settings(max_examples=N_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_cases())
def test_funnel_matches_brute_force(case):
    rows, steps, excl, order, within = case
    ev = _ev(rows, columns=("user_id", "minute", "event", "device"))
    arg_steps = [sorted(s)[0] if len(s) == 1 else sorted(s) for s in steps]
    arg_excl = [({"event": sorted(s)[0], "between": [a, b]} if explicit else sorted(s)[0]) for s, a, b, explicit in excl]
    res = funnel(ev, arg_steps, within=f"{within}m", order=order, exclude=arg_excl or None, breakdown="device")
    ref = _brute(ev, steps, within * MIN, order, [(s, a, b) for s, a, b, _ in excl])
    U = res.users
    assert U["user_id"].tolist() == sorted(ref)
    n = len(steps)
    for i, u in enumerate(U["user_id"]):
        depth, times, device, cut = ref[u]
        assert U["depth"].iloc[i] == depth, (u, order)
        got = [int(U[f"step_{j + 1}_at"].iloc[i].value // 1000) for j in range(depth)]
        assert got == times, (u, order)
        assert all(pd.isna(U[f"step_{j + 1}_at"].iloc[i]) for j in range(depth, n))
        assert (None if pd.isna(U["device"].iloc[i]) else U["device"].iloc[i]) == device
        if excl:
            assert (-1 if pd.isna(U["excluded_by"].iloc[i]) else int(U["excluded_by"].iloc[i]) - 1) == cut
        else:
            assert "excluded_by" not in U.columns
    # the step table from the reference
    depths = np.array([ref[u][0] for u in sorted(ref)], dtype=int)
    assert res.steps["users"].tolist() == [int((depths >= k).sum()) for k in range(1, n + 1)]
    for k in range(2, n + 1):
        comp = [np.maximum.accumulate(ref[u][1]) for u in sorted(ref) if ref[u][0] >= k]
        want_prev = np.median([(c[k - 1] - c[k - 2]) / US for c in comp]) if comp else np.nan
        want_first = np.median([(c[k - 1] - c[0]) / US for c in comp]) if comp else np.nan
        assert res.steps["median_s_from_previous"].iloc[k - 1] == pytest.approx(want_prev, nan_ok=True)
        assert res.steps["median_s_from_first"].iloc[k - 1] == pytest.approx(want_first, nan_ok=True)
    for k in range(1, n):
        assert len(res.dropoff_segment(k)) == int((depths == k).sum())
    assert res.by.groupby("step")["users"].sum().tolist() == res.steps["users"].tolist() if len(res.by) else True


# --------------------------------------------------------------------------------------------
# Integration: the simulated shop
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop_events() -> pd.DataFrame:
    tax = segkit.load_taxonomy(ROOT / "parameters" / "taxonomy" / "default.yaml")
    shop = segkit.simulate_shop(n_users=300, n_days=14, seed=1)
    loaded = segkit.load_events(shop.events, columns=shop.column_map, timezone=shop.timezone)
    return segkit.apply_taxonomy(loaded.events, tax)


def test_simulated_shop_funnel_is_consistent(shop_events):
    steps = ["page_view", step("page_view", where={"page_type": "product"}), "add_to_cart", "purchase"]
    res = funnel(shop_events, steps, within="7d", breakdown="device")
    s = res.steps
    users = s["users"].to_numpy()
    assert users[0] > users[-1] > 0
    assert (np.diff(users) <= 0).all()
    for k in range(1, len(steps)):
        seg = res.dropoff_segment(k)
        assert len(seg) + users[k] == users[k - 1]
        assert seg["user_id"].is_unique and seg["entered_at"].notna().all()
    assert res.by.groupby("step")["users"].sum().tolist() == users.tolist()
    assert (s["median_s_from_first"].iloc[1:] >= 0).all()
    strict = funnel(shop_events, steps, within="7d", order="strict").steps["users"].to_numpy()
    anyo = funnel(shop_events, steps, within="7d", order="any").steps["users"].to_numpy()
    assert (strict <= users).all() and (users <= anyo).all() and strict[0] == users[0] == anyo[0]
