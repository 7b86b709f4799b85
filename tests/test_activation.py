"""Tests of segkit.activation: mapping validation, the personalization plan and run-to-run diffs.

Tiny inline tables with hand-computed expectations, property tests against brute-force oracles,
and one round trip through the engine and the membership export.
"""
from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import segkit.activation as activation_module
from segkit.activation import (
    ACTION_FIELDS,
    Action,
    ActionMap,
    diff_summary,
    membership_diff,
    parse_mapping,
    personalization_plan,
    plan_summary,
)
from segkit.errors import ParameterError, SchemaError
from segkit.membership import export_membership, read_membership
from segkit.segments import Segment, did, evaluate_segments

MAPPING = [
    {"segment": "cart", "priority": 1, "action": "email", "content": "cart reminder", "offer": "free shipping"},
    {"segment": "vip", "priority": 2, "action": "call", "channel": "phone"},
    {"segment": "engaged", "priority": 3, "action": "banner", "content": "new arrivals"},
]


def members(pairs: list[tuple[str, str]], segments: list[str] | None = None) -> pd.DataFrame:
    m = pd.DataFrame(pairs, columns=["user_id", "segment"])
    if segments is not None:
        m.attrs["segments"] = segments
    return m


def rows_of(frame: pd.DataFrame) -> list[list]:
    """Rows as plain lists, missing values as None."""
    return frame.astype(object).where(frame.notna(), None).values.tolist()


M = members([("a", "engaged"), ("a", "cart"), ("b", "vip"), ("b", "engaged"), ("c", "engaged"), ("d", "other")],
            segments=["cart", "vip", "engaged", "other", "empty"])


# --------------------------------------------------------------------------------------------
# parse_mapping
# --------------------------------------------------------------------------------------------


def test_parse_mapping_list_form_sorted_by_priority():
    am = parse_mapping(list(reversed(MAPPING)))
    assert am.segments == ["cart", "vip", "engaged"]
    assert am.rules[0] == Action("cart", 1, "email", content="cart reminder", offer="free shipping")
    assert am.default is None


def test_parse_mapping_dict_form_equals_list_form():
    as_dict = {e["segment"]: {k: v for k, v in e.items() if k != "segment"} for e in MAPPING}
    assert parse_mapping(as_dict) == parse_mapping(MAPPING)


def test_parse_mapping_default_and_action_map_passthrough():
    am = parse_mapping(MAPPING, default={"action": "newsletter", "channel": "email"})
    assert am.default == Action(None, None, "newsletter", channel="email")
    assert parse_mapping(am) == am
    bare = parse_mapping(MAPPING)
    assert parse_mapping(bare, default={"action": "x"}).default.action == "x"


def test_parse_mapping_does_not_mutate_input():
    mapping = [dict(e) for e in MAPPING]
    snapshot = [dict(e) for e in mapping]
    parse_mapping(mapping, default={"action": "x"})
    assert mapping == snapshot


@pytest.mark.parametrize(
    ("mapping", "kwargs", "match"),
    [
        ([{"segment": "cart", "prority": 1, "action": "email"}], {}, r"Unknown key 'prority'.*did you mean 'priority'"),
        ([{"segment": "cart", "priority": 1}], {}, r"has no 'action'"),
        ([{"segment": "cart", "action": "email"}], {}, r"has no 'priority'"),
        ([{"priority": 1, "action": "email"}], {}, r"has no 'segment'"),
        ([{"segment": "cart", "priority": 1.5, "action": "email"}], {}, r"an integer \(lower wins\)"),
        ([{"segment": "cart", "priority": True, "action": "email"}], {}, r"an integer"),
        ([{"segment": "cart", "priority": 1, "action": "email", "offer": 10}], {}, r"quote numbers in YAML"),
        ([{"segment": "cart", "priority": 1, "action": "  "}], {}, r"non-empty text"),
        ([{"segment": "cart", "priority": 1, "action": "a"}, {"segment": "vip", "priority": 1, "action": "b"}], {},
         r"Priority 1 is given to both 'cart' and 'vip'"),
        ([{"segment": "cart", "priority": 1, "action": "a"}, {"segment": "cart", "priority": 2, "action": "b"}], {},
         r"Segment 'cart' is mapped twice"),
        ([{"segment": "carts", "priority": 1, "action": "a"}], {"segments": ["cart", "vip"]},
         r"Unknown segment 'carts'.*did you mean 'cart'"),
        ([{"segment": "a,b", "priority": 1, "action": "a"}], {}, r"contains a comma"),
        ([], {}, r"at least one segment"),
        ("cart", {}, r"must be a list of entries"),
        ([["cart", 1]], {}, r"must be a mapping"),
        ({"cart": {"segment": "cart", "priority": 1, "action": "a"}}, {}, r"in the dict form the key"),
        (MAPPING, {"default": {"segment": "x", "action": "a"}}, r"default action applies to users in no mapped segment"),
        (MAPPING, {"default": {"action": "a", "priority": 9}}, r"has no segment or priority"),
        (MAPPING, {"default": {"content": "x"}}, r"'default' has no 'action'"),
    ],
)
def test_parse_mapping_errors(mapping, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        parse_mapping(mapping, **kwargs)


def test_parse_mapping_default_given_twice():
    am = parse_mapping(MAPPING, default={"action": "x"})
    with pytest.raises(ParameterError, match="default was given twice"):
        parse_mapping(am, default={"action": "y"})


def test_parameter_error_carries_name():
    with pytest.raises(ParameterError) as info:
        parse_mapping([{"segment": "cart", "priority": "high", "action": "email"}])
    assert info.value.name == "mapping[0].priority" and info.value.value == "high"


# --------------------------------------------------------------------------------------------
# personalization_plan
# --------------------------------------------------------------------------------------------


def test_plan_hand_computed():
    plan = personalization_plan(M, MAPPING)
    assert list(plan.columns) == ["user_id", "segment", "priority", *ACTION_FIELDS, "n_segments", "other_segments"]
    assert rows_of(plan) == [
        ["a", "cart", 1, "email", None, "cart reminder", "free shipping", None, 2, "engaged"],
        ["b", "vip", 2, "call", "phone", None, None, None, 2, "engaged"],
        ["c", "engaged", 3, "banner", None, "new arrivals", None, None, 1, ""],
    ]  # d is only in an unmapped segment and there is no default: no row
    assert plan.attrs["mapping"] == parse_mapping(MAPPING)


def test_plan_dtypes_are_stable():
    plan = personalization_plan(M, MAPPING, default={"action": "none"})
    assert plan.dtypes.astype(str).to_dict() == {
        "user_id": "string", "segment": "string", "priority": "Int64", "action": "string", "channel": "string",
        "content": "string", "offer": "string", "message": "string", "n_segments": "int64",
        "other_segments": "string"}


def test_plan_default_covers_unmapped_members_and_the_audience():
    plan = personalization_plan(M, MAPPING, default={"action": "newsletter", "channel": "email"},
                                users=["a", "b", "c", "d", "e"])
    tail = plan[plan["user_id"].isin(["d", "e"])]
    assert tail["segment"].isna().all() and tail["priority"].isna().all()
    assert tail["action"].tolist() == ["newsletter", "newsletter"]
    assert tail["channel"].tolist() == ["email", "email"]
    assert tail["n_segments"].tolist() == [0, 0] and tail["other_segments"].tolist() == ["", ""]
    assert plan["user_id"].tolist() == ["a", "b", "c", "d", "e"]


def test_plan_all_default_when_no_mapped_member():
    plan = personalization_plan(M, [{"segment": "empty", "priority": 1, "action": "x"}], default={"action": "none"})
    assert plan["user_id"].tolist() == ["a", "b", "c", "d"] and (plan["action"] == "none").all()
    assert personalization_plan(M, [{"segment": "empty", "priority": 1, "action": "x"}]).empty


def test_plan_ignores_repeated_rows_and_compares_ids_as_text():
    m = pd.DataFrame({"user_id": [1, 1, 2], "segment": ["cart", "cart", "vip"]})
    m.attrs["segments"] = ["cart", "vip", "engaged"]
    plan = personalization_plan(m, MAPPING)
    assert plan["user_id"].tolist() == ["1", "2"] and plan["n_segments"].tolist() == [1, 1]
    with_users = personalization_plan(m, MAPPING[:2], default={"action": "none"}, users=pd.Series([1, 2, 3]))
    assert with_users["user_id"].tolist() == ["1", "2", "3"]


def test_plan_is_independent_of_row_order():
    shuffled = M.sample(frac=1.0, random_state=3)
    shuffled.attrs = dict(M.attrs)
    pd.testing.assert_frame_equal(personalization_plan(shuffled, MAPPING), personalization_plan(M, MAPPING))


def test_plan_does_not_mutate_membership():
    before = M.copy()
    personalization_plan(M, MAPPING, default={"action": "x"}, users=["z"])
    pd.testing.assert_frame_equal(M, before)


def test_plan_negative_priorities_and_other_segments_in_priority_order():
    m = members([("u", "s1"), ("u", "s2"), ("u", "s3")])
    mapping = {"s1": {"priority": 10, "action": "a"}, "s2": {"priority": -5, "action": "b"},
               "s3": {"priority": 0, "action": "c"}}
    row = personalization_plan(m, mapping).iloc[0]
    assert (row["segment"], row["priority"], row["other_segments"]) == ("s2", -5, "s3, s1")


def test_plan_unknown_segment_checked_against_attrs_and_override():
    with pytest.raises(ParameterError, match=r"Unknown segment 'engagd'.*did you mean 'engaged'"):
        personalization_plan(M, [{"segment": "engagd", "priority": 1, "action": "x"}])
    # an empty segment listed in attrs is a valid target
    assert personalization_plan(M, [{"segment": "empty", "priority": 1, "action": "x"}]).empty
    plan = personalization_plan(M.copy(), [{"segment": "later", "priority": 1, "action": "x"}],
                                segments=["later", "cart"])
    assert plan.empty


def test_plan_errors():
    with pytest.raises(ParameterError, match="users only matters with a default action"):
        personalization_plan(M, MAPPING, users=["a"])
    with pytest.raises(ParameterError, match="not the whole table"):
        personalization_plan(M, MAPPING, default={"action": "x"}, users=pd.DataFrame({"user_id": ["a"]}))
    with pytest.raises(ParameterError, match="null id"):
        personalization_plan(M, MAPPING, default={"action": "x"}, users=["a", None])
    with pytest.raises(SchemaError, match="Column 'segment' not found"):
        personalization_plan(M.rename(columns={"segment": "seg"}), MAPPING)
    with pytest.raises(SchemaError, match="null value"):
        personalization_plan(members([("a", None)]), MAPPING)
    with pytest.raises(ParameterError, match="must be a pandas DataFrame"):
        personalization_plan([("a", "cart")], MAPPING)


@st.composite
def membership_and_priorities(draw):
    segs = [f"s{i}" for i in range(draw(st.integers(1, 5)))]
    users = [f"u{i}" for i in range(draw(st.integers(1, 8)))]
    pairs = draw(st.lists(st.tuples(st.sampled_from(users), st.sampled_from(segs)), max_size=25))
    mapped = draw(st.lists(st.sampled_from(segs), unique=True, min_size=1))
    prios = draw(st.lists(st.integers(-20, 20), unique=True, min_size=len(mapped), max_size=len(mapped)))
    return pairs, segs, dict(zip(mapped, prios))


@settings(max_examples=30, deadline=None)
@given(membership_and_priorities())
def test_plan_picks_the_min_priority_segment_per_user(case):
    pairs, segs, prios = case
    m = members(pairs, segments=segs)
    plan = personalization_plan(m, [{"segment": s, "priority": p, "action": f"do_{s}"} for s, p in prios.items()])
    oracle: dict[str, list[str]] = {}
    for u, s in set(pairs):
        if s in prios:
            oracle.setdefault(u, []).append(s)
    assert plan["user_id"].tolist() == sorted(oracle)
    for _, row in plan.iterrows():
        ranked = sorted(oracle[row["user_id"]], key=prios.get)
        assert row["segment"] == ranked[0] and row["priority"] == prios[ranked[0]]
        assert row["action"] == f"do_{ranked[0]}"
        assert row["n_segments"] == len(ranked)
        assert row["other_segments"] == ", ".join(ranked[1:])


# --------------------------------------------------------------------------------------------
# plan_summary
# --------------------------------------------------------------------------------------------


def test_plan_summary_hand_computed():
    plan = personalization_plan(M, MAPPING, default={"action": "newsletter"}, users=["a", "b", "c", "d", "e"])
    s = plan_summary(plan)
    assert rows_of(s[["segment", "priority", "action", "n_users", "n_eligible", "n_overridden"]]) == [
        ["cart", 1, "email", 1, 1, 0],
        ["vip", 2, "call", 1, 1, 0],
        ["engaged", 3, "banner", 1, 3, 2],
        ["(default)", None, "newsletter", 2, 2, 0],
    ]
    assert s["share"].tolist() == [0.2, 0.2, 0.2, 0.4]
    assert s["n_users"].sum() == len(plan)


def test_plan_summary_lists_rules_without_users_and_works_without_attrs():
    mapping = MAPPING + [{"segment": "empty", "priority": 9, "action": "x"}]
    plan = personalization_plan(M, mapping)
    s = plan_summary(plan)
    assert s["segment"].tolist() == ["cart", "vip", "engaged", "empty"] and s["n_users"].tolist() == [1, 1, 1, 0]
    bare = plan.copy()
    bare.attrs.clear()
    s2 = plan_summary(bare)
    assert s2["segment"].tolist() == ["cart", "vip", "engaged"]
    assert s2["n_eligible"].tolist() == [1, 1, 3]


def test_plan_summary_errors():
    with pytest.raises(SchemaError, match="Column 'other_segments' not found"):
        plan_summary(personalization_plan(M, MAPPING).drop(columns="other_segments"))
    with pytest.raises(ParameterError, match="plan must be the DataFrame"):
        plan_summary([1, 2])


# --------------------------------------------------------------------------------------------
# membership_diff / diff_summary
# --------------------------------------------------------------------------------------------

PREV = members([("a", "x"), ("b", "x"), ("c", "x"), ("a", "y"), ("z", "gone")], segments=["x", "y", "gone"])
CUR = members([("b", "x"), ("c", "x"), ("d", "x"), ("e", "new")], segments=["x", "y", "new", "quiet"])


def test_membership_diff_hand_computed():
    d = membership_diff(PREV, CUR)
    assert d.values.tolist() == [
        ["d", "x", "entered"], ["a", "x", "left"], ["b", "x", "stayed"], ["c", "x", "stayed"],
        ["a", "y", "left"],
        ["e", "new", "entered"],
        ["z", "gone", "left"],
    ]
    assert d.attrs["segments"] == ["x", "y", "new", "quiet", "gone"]
    assert d.dtypes.astype(str).tolist() == ["string", "string", "string"]


def test_diff_summary_hand_computed():
    s = diff_summary(membership_diff(PREV, CUR))
    got = s.drop(columns="definition_changed").astype(object).values.tolist()
    assert got[0] == ["x", 3, 3, 1, 1, 2, 0.5]
    assert got[1] == ["y", 1, 0, 0, 1, 0, 0.0]
    assert got[2] == ["new", 0, 1, 1, 0, 0, 0.0]
    assert got[3][:6] == ["quiet", 0, 0, 0, 0, 0] and np.isnan(got[3][6])
    assert got[4] == ["gone", 1, 0, 0, 1, 0, 0.0]
    assert s["definition_changed"].isna().all()


def test_membership_diff_definition_hashes():
    prev, cur = PREV.copy(), CUR.copy()
    prev.attrs = {**PREV.attrs, "hashes": {"x": "h1", "y": "h2"}}
    cur.attrs = {**CUR.attrs, "hashes": {"x": "h1", "y": "h9"}}
    s = diff_summary(membership_diff(prev, cur))
    flags = dict(zip(s["segment"], s["definition_changed"].astype(object)))
    assert flags["x"] is False and flags["y"] is True and flags["new"] is pd.NA


def test_membership_diff_segments_and_errors():
    d = membership_diff(PREV, CUR, segments=["y", "x"])
    assert d["segment"].unique().tolist() == ["y", "x"]
    with pytest.raises(ParameterError, match=r"Unknown segment 'xx'.*did you mean 'x'"):
        membership_diff(PREV, CUR, segments=["xx"])
    with pytest.raises(ParameterError, match="listed twice"):
        membership_diff(PREV, CUR, segments=["x", "x"])
    with pytest.raises(ParameterError, match="previous must be a membership DataFrame"):
        membership_diff(None, CUR)
    with pytest.raises(SchemaError, match="Column 'user_id' not found"):
        membership_diff(PREV, CUR.rename(columns={"user_id": "uid"}))
    with pytest.raises(SchemaError, match="must hold"):
        diff_summary(pd.DataFrame({"user_id": ["a"], "segment": ["x"], "change": ["joined"]}))
    with pytest.raises(ParameterError, match="diff must be the DataFrame"):
        diff_summary(None)


def test_membership_diff_does_not_mutate_inputs():
    prev, cur = PREV.copy(), CUR.copy()
    membership_diff(prev, cur)
    pd.testing.assert_frame_equal(prev, PREV)
    pd.testing.assert_frame_equal(cur, CUR)


pair_lists = st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d", "e"]), st.sampled_from(["s", "t", "u"])),
                      max_size=15)


@settings(max_examples=30, deadline=None)
@given(pair_lists, pair_lists)
def test_membership_diff_matches_set_oracle(prev_pairs, cur_pairs):
    d = membership_diff(members(prev_pairs), members(cur_pairs))
    P, C = set(prev_pairs), set(cur_pairs)
    got = {(u, s): c for u, s, c in d.values.tolist()}
    expected = {**{p: "entered" for p in C - P}, **{p: "left" for p in P - C}, **{p: "stayed" for p in P & C}}
    assert got == expected and len(d) == len(expected)
    s = diff_summary(d)
    for _, row in s.iterrows():
        ps = {u for u, g in P if g == row["segment"]}
        cs = {u for u, g in C if g == row["segment"]}
        assert (row["n_previous"], row["n_current"]) == (len(ps), len(cs))
        assert row["jaccard"] == pytest.approx(len(ps & cs) / len(ps | cs))


# --------------------------------------------------------------------------------------------
# With the engine and the export
# --------------------------------------------------------------------------------------------


def test_engine_runs_diff_and_plan_from_an_export(tmp_path):
    ev = pd.DataFrame({
        "user_id": ["a", "a", "b", "c", "c"],
        "event": ["add_to_cart", "purchase", "add_to_cart", "purchase", "add_to_cart"],
        "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-05", "2024-01-06", "2024-01-07"], utc=True),
    })
    defs = [Segment("carters", did("add_to_cart")), Segment("buyers", did("purchase"))]
    week1 = evaluate_segments(defs, events=ev, as_of="2024-01-03")
    week2 = evaluate_segments(defs, events=ev, as_of="2024-01-08")
    s = diff_summary(membership_diff(week1, week2))
    assert s[["segment", "entered", "left", "stayed"]].values.tolist() == [["carters", 2, 0, 1], ["buyers", 1, 0, 1]]
    assert not s["definition_changed"].any()
    path = export_membership(week2, tmp_path / "members.parquet", exported_at="2024-01-08")
    back = read_membership(path)
    plan = personalization_plan(back, {"buyers": {"priority": 1, "action": "cross_sell"},
                                       "carters": {"priority": 2, "action": "cart_email"}})
    assert plan[["user_id", "action", "other_segments"]].values.tolist() == [
        ["a", "cross_sell", "carters"], ["b", "cart_email", ""], ["c", "cross_sell", "carters"]]


def test_action_map_segments_property():
    am = ActionMap((Action("b", 1, "x"), Action("a", 2, "y")))
    assert am.segments == ["b", "a"]


def test_docstring_examples_run():
    result = doctest.testmod(activation_module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted >= 10


def test_plan_with_many_mapped_segments_uses_the_general_path():
    segs = [f"s{i:02d}" for i in range(70)]
    m = members([("u", s) for s in segs[::-1]] + [("v", "s65"), ("v", "s03")], segments=segs)
    plan = personalization_plan(m, [{"segment": s, "priority": 100 - i, "action": s} for i, s in enumerate(segs)])
    u, v = plan.iloc[0], plan.iloc[1]
    assert (u["segment"], u["n_segments"]) == ("s69", 70)
    assert u["other_segments"] == ", ".join(reversed(segs[:69]))
    assert (v["segment"], v["other_segments"]) == ("s65", "s03")


# --------------------------------------------------------------------------------------------
# replay_run: the previous run from the event log
# --------------------------------------------------------------------------------------------

DEFAULT_SEGMENTS = "parameters/segments/default.yaml"


@pytest.fixture(scope="module")
def shop_run():
    from pathlib import Path

    import segkit
    from segkit.clean import clean_events
    from segkit.features import build_user_features
    from segkit.sessions import split_sessions

    root = Path(__file__).resolve().parents[1]
    shop = segkit.simulate_shop(400, n_days=21, seed=11)
    loaded = segkit.load_events(shop.events, columns=shop.column_map, timezone=shop.timezone)
    events = segkit.apply_taxonomy(loaded.events, segkit.load_taxonomy(root / "parameters" / "taxonomy" / "default.yaml"))
    ev = split_sessions(clean_events(events).events)
    return root / DEFAULT_SEGMENTS, ev, build_user_features(ev, crm=shop.crm), shop.crm


def test_replay_run_is_the_run_on_the_events_cut_at_as_of(shop_run):
    from segkit.activation import replay_run
    from segkit.features import build_user_features

    defs, ev, features, crm = shop_run
    as_of = ev["timestamp"].max() - pd.Timedelta(days=7)
    replay = replay_run(defs, ev, as_of=as_of, features=features)

    cut = ev[ev["timestamp"] <= as_of]
    expected_features = build_user_features(cut, crm=crm, as_of=as_of)
    assert {"lifetime_value", "is_vip"} <= set(replay.carried)
    assert set(replay.features.columns) == set(expected_features.columns)
    pd.testing.assert_frame_equal(replay.features[expected_features.columns], expected_features)
    expected = evaluate_segments(defs, events=cut, features=expected_features, as_of=as_of)
    pd.testing.assert_frame_equal(replay.membership, expected)
    assert replay.membership.attrs["n_users"] == expected.attrs["n_users"] == cut["user_id"].nunique()
    assert replay.as_of == as_of
    pd.testing.assert_frame_equal(replay.event_features, build_user_features(cut, as_of=as_of))

    # events after as_of change nothing, and a week earlier is not the current run
    again = replay_run(defs, cut, as_of=as_of, features=features)
    pd.testing.assert_frame_equal(again.membership, replay.membership)
    pd.testing.assert_frame_equal(again.features, replay.features)
    current = evaluate_segments(defs, events=ev, features=features)
    changes = diff_summary(membership_diff(replay.membership, current))
    assert changes["entered"].sum() > 0
    assert set(replay.membership["user_id"]) <= set(cut["user_id"])  # nobody first seen after as_of


def test_replay_run_reads_a_parquet_event_log_like_a_frame(shop_run, tmp_path):
    from segkit.activation import replay_run

    defs, ev, features, _ = shop_run
    as_of = ev["timestamp"].max() - pd.Timedelta(days=5)
    ev.to_parquet(tmp_path / "events.parquet")
    from_file = replay_run(defs, str(tmp_path / "events.parquet"), as_of=as_of, features=features)
    from_frame = replay_run(defs, ev, as_of=as_of, features=features)
    assert from_file.carried == from_frame.carried
    pd.testing.assert_frame_equal(from_file.features, from_frame.features)
    pd.testing.assert_frame_equal(from_file.membership, from_frame.membership)


def test_replay_run_rebuilds_crm_columns_from_a_crm_table_instead_of_carrying_them(shop_run):
    from segkit.activation import replay_run

    defs, ev, features, crm = shop_run
    as_of = ev["timestamp"].max() - pd.Timedelta(days=3)
    carried = replay_run(defs, ev, as_of=as_of, features=features)
    rebuilt = replay_run(defs, ev, as_of=as_of, features=features, crm=crm)
    assert rebuilt.carried == ()
    pd.testing.assert_frame_equal(rebuilt.features[carried.features.columns], carried.features)
    pd.testing.assert_frame_equal(rebuilt.membership, carried.membership)


def test_replay_run_errors_name_the_parameter(shop_run):
    from segkit.activation import replay_run

    defs, ev, features, _ = shop_run
    first = ev["timestamp"].min()
    with pytest.raises(ParameterError, match="as_of.*before the first event"):
        replay_run(defs, ev, as_of=first - pd.Timedelta(seconds=1), features=features)
    with pytest.raises(ParameterError, match="as_of.*timestamp such as"):
        replay_run(defs, ev, as_of="last tuesday", features=features)
    with pytest.raises(ParameterError, match="as_of itself"):
        replay_run(defs, ev, as_of=first + pd.Timedelta(days=1), features=features, sessions=ev)
    with pytest.raises(ParameterError, match="features must be"):
        replay_run(defs, ev, as_of=first + pd.Timedelta(days=1), features=[1, 2])
    with pytest.raises(SchemaError, match="user_id"):
        replay_run(defs, ev, as_of=first + pd.Timedelta(days=1), features=features.drop(columns="user_id"))
    with pytest.raises(SchemaError, match="timestamp"):
        replay_run(defs, ev.drop(columns="timestamp"), as_of=first + pd.Timedelta(days=1), features=features)
