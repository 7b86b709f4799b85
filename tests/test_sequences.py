"""Tests of segkit.sequences.build_sequences and the Sequences container."""
from __future__ import annotations

import doctest

import ibis
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import segkit.sequences as sequences_module
from segkit.errors import ParameterError, SchemaError
from segkit.patterns import mine_patterns
from segkit.sequences import Sequences, build_sequences
from segkit.sessions import split_sessions

T0 = pd.Timestamp("2024-01-01 10:00", tz="UTC")


def _events(rows, **extra) -> pd.DataFrame:
    """rows: (user, session, event, minutes after T0) tuples; extra: more columns (lists)."""
    users, sessions, events, minutes = zip(*rows)
    frame = pd.DataFrame({
        "user_id": list(users),
        "session_id": list(sessions),
        "event": list(events),
        "timestamp": [T0 + pd.Timedelta(minutes=m) for m in minutes],
    })
    for name, values in extra.items():
        frame[name] = values
    return frame


def test_items_are_ordered_by_timestamp_then_input_order():
    ev = _events([("a", "a-0", "c", 2), ("a", "a-0", "a", 0), ("a", "a-0", "x", 1), ("a", "a-0", "y", 1)])
    assert build_sequences(ev).items == [["a", "x", "y", "c"]]
    # swapping the two tied rows swaps their items
    assert build_sequences(ev.iloc[[0, 1, 3, 2]]).items == [["a", "y", "x", "c"]]


def test_sequences_are_ordered_by_user_then_start():
    ev = _events([("b", "b-0", "e", 0), ("a", "a-1", "late", 30), ("a", "a-0", "early", 5)])
    seqs = build_sequences(ev)
    assert seqs.ids["sequence_id"].tolist() == ["a-0", "a-1", "b-0"]
    assert seqs.items == [["early"], ["late"], ["e"]]


def test_ids_table_columns_and_values():
    ev = _events([("a", "a-0", "x", 0), ("a", "a-0", "y", 3), ("b", "b-0", "z", 1)])
    ids = build_sequences(ev).ids
    assert ids.columns.tolist() == ["sequence_id", "user_id", "session_id", "start", "end", "length"]
    assert ids["start"].tolist() == [T0, T0 + pd.Timedelta(minutes=1)]
    assert ids["end"].tolist() == [T0 + pd.Timedelta(minutes=3), T0 + pd.Timedelta(minutes=1)]
    assert ids["length"].tolist() == [2, 1]
    assert str(ids["start"].dtype).endswith("UTC]")


def test_collapse_repeats_merges_runs_only():
    ev = _events([("a", "a-0", e, i) for i, e in enumerate(["x", "x", "y", "x", "x", "x", "y"])])
    assert build_sequences(ev).items == [["x", "x", "y", "x", "x", "x", "y"]]
    seqs = build_sequences(ev, collapse_repeats=True)
    assert seqs.items == [["x", "y", "x", "y"]]
    assert seqs.ids["length"].tolist() == [4]
    assert seqs.ids["end"].iloc[0] == T0 + pd.Timedelta(minutes=6)


def test_collapsed_run_counts_for_end():
    ev = _events([("a", "a-0", "x", 0), ("a", "a-0", "x", 9)])
    seqs = build_sequences(ev, collapse_repeats=True)
    assert seqs.items == [["x"]]
    assert seqs.ids["end"].iloc[0] == T0 + pd.Timedelta(minutes=9)


def test_max_gap_splits_into_numbered_parts():
    ev = _events([("a", "a-0", "x", 0), ("a", "a-0", "y", 10), ("a", "a-0", "z", 21), ("a", "a-0", "w", 22)])
    seqs = build_sequences(ev, max_gap="10m")  # a gap equal to max_gap does not split
    assert seqs.items == [["x", "y"], ["z", "w"]]
    assert seqs.ids["sequence_id"].tolist() == ["a-0#0", "a-0#1"]
    assert seqs.ids["part"].tolist() == [0, 1]
    assert build_sequences(ev, max_gap=pd.Timedelta(minutes=9)).items == [["x"], ["y"], ["z", "w"]]


def test_part_numbers_survive_min_length_filtering():
    ev = _events([("a", "a-0", "x", 0), ("a", "a-0", "y", 60), ("a", "a-0", "z", 61)])
    seqs = build_sequences(ev, max_gap="30m", min_length=2)
    assert seqs.ids["sequence_id"].tolist() == ["a-0#1"]
    assert seqs.items == [["y", "z"]]


def test_gap_is_measured_between_events_that_give_items():
    ev = _events([("a", "a-0", "page_view", 0), ("a", "a-0", "scroll_depth_25", 20), ("a", "a-0", "page_view", 40)],
                 page_type=["home", None, "product"])
    assert build_sequences(ev, item="page_type", max_gap="30m").items == [["home"], ["product"]]
    assert build_sequences(ev, item="event", max_gap="30m").items == [["page_view", "scroll_depth_25", "page_view"]]


def test_page_type_uses_page_views_only():
    ev = _events([("a", "a-0", "page_view", 0), ("a", "a-0", "add_to_cart", 1), ("a", "a-0", "page_view", 2),
                  ("a", "a-0", "page_view", 3)],
                 page_type=["product", "product", None, "cart"])
    assert build_sequences(ev, item="page_type").items == [["product", "cart"]]


def test_flow_keeps_page_types_and_shopping_actions_only():
    ev = _events([("a", "a-0", "page_view", 0), ("a", "a-0", "scroll_depth_50", 1), ("a", "a-0", "add_to_cart", 2),
                  ("a", "a-0", "engagement_time", 3), ("a", "a-0", "page_view", 4), ("a", "a-0", "purchase", 5)],
                 page_type=["home", "home", "product", "product", "cart", "checkout"])
    assert build_sequences(ev, item="flow").items == [["home", "add_to_cart", "cart", "purchase"]]


def test_event_plus_category_falls_back_to_event():
    ev = _events([("a", "a-0", "add_to_cart", 0), ("a", "a-0", "add_to_cart", 1), ("a", "a-0", "search", 2)],
                 category=["shoes", None, ""])
    assert build_sequences(ev, item="event+category").items == [["add_to_cart:shoes", "add_to_cart", "search"]]


def test_any_column_can_be_the_item_and_missing_values_are_skipped():
    ev = _events([("a", "a-0", "x", 0), ("a", "a-0", "y", 1), ("a", "a-0", "z", 2)],
                 item_id=["p1", None, ""], price=[1.5, 2.0, np.nan])
    assert build_sequences(ev, item="item_id").items == [["p1"]]
    assert build_sequences(ev, item="price").items == [["1.5", "2.0"]]


def test_by_user_spans_sessions():
    ev = _events([("a", "a-0", "x", 0), ("a", "a-1", "y", 90), ("b", "b-0", "z", 5)])
    seqs = build_sequences(ev, by="user")
    assert seqs.items == [["x", "y"], ["z"]]
    assert seqs.ids.columns.tolist() == ["sequence_id", "user_id", "start", "end", "length"]
    assert seqs.ids["sequence_id"].tolist() == ["a", "b"]
    assert build_sequences(ev.drop(columns="session_id"), by="user").items == [["x", "y"], ["z"]]


def test_min_and_max_length():
    ev = _events([("a", "a-0", e, i) for i, e in enumerate("pqrs")] + [("b", "b-0", "p", 0)])
    assert build_sequences(ev, min_length=2).items == [["p", "q", "r", "s"]]
    seqs = build_sequences(ev, max_length=2)
    assert seqs.items == [["p", "q"], ["p"]]
    assert seqs.ids["end"].iloc[0] == T0 + pd.Timedelta(minutes=1)  # the dropped events do not count
    assert seqs.ids["length"].tolist() == [2, 1]


def test_max_length_counts_collapsed_items():
    ev = _events([("a", "a-0", e, i) for i, e in enumerate("ppqqr")])
    seqs = build_sequences(ev, collapse_repeats=True, max_length=2)
    assert seqs.items == [["p", "q"]]
    assert seqs.ids["end"].iloc[0] == T0 + pd.Timedelta(minutes=3)


def test_session_ids_shared_by_users_get_the_user_prefix():
    ev = _events([("a", "s1", "x", 0), ("b", "s1", "y", 1)])
    assert build_sequences(ev).ids["sequence_id"].tolist() == ["a/s1", "b/s1"]


def test_input_is_not_mutated():
    ev = _events([("a", "a-0", "x", 1), ("a", "a-0", "y", 0)], category=["c", None])
    before = ev.copy()
    build_sequences(ev, item="event+category", collapse_repeats=True, max_gap="1m")
    pd.testing.assert_frame_equal(ev, before)


def test_parquet_and_ibis_inputs_agree(tmp_path):
    ev = _events([("a", "a-0", "x", 0), ("a", "a-0", "y", 1), ("b", "b-0", "z", 2)])
    path = tmp_path / "events.parquet"
    ev.to_parquet(path)
    expected = build_sequences(ev)
    for data in (str(path), ibis.memtable(ev)):
        got = build_sequences(data)
        assert got.items == expected.items
        pd.testing.assert_frame_equal(got.ids, expected.ids)


def test_accepts_split_sessions_expression():
    ev = _events([("a", "?", "x", 0), ("a", "?", "y", 10), ("a", "?", "z", 100)]).drop(columns="session_id")
    seqs = build_sequences(split_sessions(ev, timeout="30m", output="ibis"))
    assert seqs.ids["sequence_id"].tolist() == ["a-0", "a-1"]
    assert seqs.items == [["x", "y"], ["z"]]


def test_empty_input_gives_empty_sequences():
    ev = _events([("a", "a-0", "x", 0)]).iloc[:0]
    seqs = build_sequences(ev)
    assert len(seqs) == 0 and seqs.items == []
    assert seqs.ids.columns.tolist() == ["sequence_id", "user_id", "session_id", "start", "end", "length"]


def test_sequences_feed_mine_patterns_and_subset():
    ev = _events([("a", "a-0", "x", 0), ("a", "a-0", "y", 1), ("b", "b-0", "x", 0), ("b", "b-0", "y", 2),
                  ("c", "c-0", "y", 0)])
    seqs = build_sequences(ev)
    res = mine_patterns(seqs, 2, min_len=2)
    assert res["pattern"].tolist() == [("x", "y")]
    sub = seqs.subset(seqs.ids["user_id"] != "b")
    assert sub.ids["sequence_id"].tolist() == ["a-0", "c-0"] and sub.items == [["x", "y"], ["y"]]
    assert seqs.subset(["c-0", "a-0"]).items == [["y"], ["x", "y"]]
    frame = seqs.to_frame()
    assert frame["items"].tolist() == seqs.items and "items" not in seqs.ids.columns
    assert repr(seqs) == "Sequences(n=3, by='session', item='event')"


def test_subset_errors():
    seqs = Sequences(pd.DataFrame({"sequence_id": ["sess-1", "sess-2"]}), [["a"], ["b"]])
    with pytest.raises(ParameterError, match=r"Sequence id 'sess-3' not found; did you mean 'sess-\d'\?"):
        seqs.subset(["sess-3"])
    with pytest.raises(ParameterError, match="one value per sequence"):
        seqs.subset([True])
    with pytest.raises(ParameterError, match="aligned"):
        Sequences(pd.DataFrame({"sequence_id": ["s1"]}), [["a"], ["b"]])


def test_unknown_item_suggests_a_column():
    ev = _events([("a", "a-0", "x", 0)], page_type=["home"])
    with pytest.raises(ParameterError, match=r"'page_typ'.*did you mean 'page_type'\?") as info:
        build_sequences(ev, item="page_typ")
    assert info.value.name == "item"
    with pytest.raises(ParameterError, match=r"did you mean 'event\+category'\?"):
        build_sequences(ev, item="event+categry")


def test_missing_session_column_says_to_split_sessions():
    ev = _events([("a", "a-0", "x", 0)]).drop(columns="session_id")
    with pytest.raises(SchemaError, match=r"'session_id' not found.*split_sessions") as info:
        build_sequences(ev)
    assert info.value.columns == ["session_id"]


def test_missing_columns_of_the_granularity():
    ev = _events([("a", "a-0", "x", 0)])
    with pytest.raises(SchemaError, match="'page_type' not found"):
        build_sequences(ev, item="page_type")
    with pytest.raises(SchemaError, match="'category' not found"):
        build_sequences(ev, item="event+category")


def test_bad_durations():
    ev = _events([("a", "a-0", "x", 0)])
    with pytest.raises(ParameterError, match=r"'max_gap' got '1800'; a duration needs units"):
        build_sequences(ev, max_gap="1800")
    with pytest.raises(ParameterError, match="must be positive"):
        build_sequences(ev, max_gap=pd.Timedelta(0))
    with pytest.raises(ParameterError, match="needs units"):
        build_sequences(ev, max_gap=30)


def test_bad_parameters():
    ev = _events([("a", "a-0", "x", 0)])
    with pytest.raises(ParameterError, match=r"'by' got 'sessions'.*did you mean 'session'\?"):
        build_sequences(ev, by="sessions")
    with pytest.raises(ParameterError, match="but by='user'"):
        build_sequences(ev, by="user", session_col="sid")
    with pytest.raises(ParameterError, match=r"'max_length' got 1; allowed: None or an int >= min_length \(2\)"):
        build_sequences(ev, min_length=2, max_length=1)
    with pytest.raises(ParameterError, match="'min_length' got 0"):
        build_sequences(ev, min_length=0)
    with pytest.raises(ParameterError, match="'collapse_repeats'"):
        build_sequences(ev, collapse_repeats="yes")
    with pytest.raises(ParameterError, match="'user_col'"):
        build_sequences(ev, user_col="")


def test_timestamp_must_be_a_timestamp():
    ev = _events([("a", "a-0", "x", 0)])
    ev["timestamp"] = ev["timestamp"].astype(str)
    with pytest.raises(SchemaError, match="must hold timestamps"):
        build_sequences(ev)


def _reference(ev: pd.DataFrame, *, collapse: bool, gap_min: float | None, max_length: int | None) -> list[list[str]]:
    """A plain pandas / Python rendering of the rules, for the property test."""
    out = []
    ev = ev.assign(_row=np.arange(len(ev)))
    for (_, _), g in ev.groupby(["user_id", "session_id"], sort=True):
        g = g.sort_values(["timestamp", "_row"], kind="stable")
        parts, cur, last = [], [], None
        for e, t in zip(g["event"], g["timestamp"]):
            if last is not None and gap_min is not None and t - last > pd.Timedelta(minutes=gap_min):
                parts.append(cur)
                cur = []
            if not (collapse and cur and cur[-1] == e):
                cur.append(e)
            last = t
        parts.append(cur)
        for p in parts:
            out.append((g["timestamp"].min(), p[:max_length] if max_length else p))
    return out


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(st.sampled_from(["u1", "u2"]), st.sampled_from(["s0", "s1"]),
                               st.sampled_from(["x", "y", "z"]), st.integers(0, 40)), min_size=1, max_size=25),
       collapse=st.booleans(), gap=st.sampled_from([None, 5, 12]), max_length=st.sampled_from([None, 2, 4]))
def test_matches_a_reference_implementation(rows, collapse, gap, max_length):
    ev = _events(rows)
    ev["session_id"] = ev["user_id"] + "-" + ev["session_id"]
    got = build_sequences(ev, collapse_repeats=collapse, max_gap=None if gap is None else f"{gap}m",
                          max_length=max_length)
    expected = _reference(ev, collapse=collapse, gap_min=gap, max_length=max_length)
    assert sorted(map(tuple, got.items)) == sorted(tuple(p) for _, p in expected)
    assert got.ids["length"].tolist() == [len(i) for i in got.items]


def test_docstring_examples():
    result = doctest.testmod(sequences_module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_drop_items_removes_items_and_updates_lengths():
    ev = _events([("a", "a-0", "x", 0), ("a", "a-0", "purchase", 1), ("a", "a-0", "y", 2), ("b", "b-0", "purchase", 0)])
    s = build_sequences(ev).drop_items(["purchase"])
    assert s.items == [["x", "y"], []]
    assert s.ids["length"].tolist() == [2, 0]
    with pytest.raises(ParameterError, match="wrap a single item"):
        build_sequences(ev).drop_items("purchase")


def test_has_event_looks_at_the_events_not_the_items():
    from segkit.sequences import has_event

    ev = _events([("a", "a-0", "page_view", 0), ("a", "a-0", "purchase", 1), ("b", "b-0", "page_view", 0)],
                 page_type=["home", None, "cart"])
    s = build_sequences(ev, item="page_type")
    assert has_event(s, ev, "purchase").tolist() == [True, False]
    assert has_event(build_sequences(ev, by="user", item="page_type"), ev, "purchase").tolist() == [True, False]
