"""Tests of segkit.membership: overlaps, profiles, makeup, scroll maps and the activation export.

Tiny inline tables with hand-computed expectations, then one integration test on a small simulated
shop evaluated with the default segments.
"""
from __future__ import annotations

import doctest
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import ibis  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import segkit  # noqa: E402
import segkit.membership as membership_module  # noqa: E402
from segkit.errors import ParameterError, SchemaError, SegkitError  # noqa: E402
from segkit.membership import (  # noqa: E402
    ALL_USERS,
    EXPORT_COLUMNS,
    export_membership,
    overlap_matrix,
    plot_makeup,
    plot_overlaps,
    plot_profiles,
    plot_scroll_heatmap,
    read_membership,
    scroll_depth_heatmap,
    segment_makeup,
    segment_overlaps,
    segment_profiles,
)
from segkit.segments import Segment, definition_hash, did, evaluate_segments, segment_sizes, then  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore:The set_bad function:PendingDeprecationWarning")  # seaborn vs matplotlib
T0 = pd.Timestamp("2024-01-01", tz="UTC")
DEFS = [Segment("x", did("add_to_cart")), Segment("y", then("search", "purchase")), Segment("z", did("purchase", at_least=3))]
HASHES = {s.name: definition_hash(s) for s in DEFS}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _membership(rows, *, attrs: bool = True) -> pd.DataFrame:
    """rows: (user, segment[, minutes after T0[, reason]]); attrs as evaluate_segments sets them."""
    full = [tuple(r) + (0.0, "r")[len(r) - 2:] for r in rows]
    m = pd.DataFrame({
        "user_id": pd.array([r[0] for r in full], dtype="string"),
        "segment": pd.array([r[1] for r in full], dtype="string"),
        "entered_at": pd.Series([T0 + pd.Timedelta(minutes=r[2]) for r in full], dtype="datetime64[us, UTC]"),
        "reason": pd.array([r[3] for r in full], dtype="string"),
    })
    if attrs:
        m.attrs.update({"segments": ["x", "y", "z"], "n_users": 5, "as_of": T0 + pd.Timedelta(days=1),
                        "hashes": dict(HASHES)})
    return m


# x = {a, b, c}, y = {b, c}, z empty (listed in attrs only)
XY = [("a", "x"), ("b", "x"), ("c", "x"), ("b", "y"), ("c", "y")]


# --------------------------------------------------------------------------------------------
# Overlaps
# --------------------------------------------------------------------------------------------


def test_segment_overlaps_counts_jaccard_and_asymmetric_share():
    o = segment_overlaps(_membership(XY)).set_index(["segment_a", "segment_b"])
    assert list(o.index.get_level_values(0)) == ["x"] * 3 + ["y"] * 3 + ["z"] * 3  # definition order
    assert o.loc[("x", "y"), ["n_a", "n_b", "n_both"]].tolist() == [3, 2, 2]
    assert o.loc[("x", "y"), "jaccard"] == pytest.approx(2 / 3) == o.loc[("y", "x"), "jaccard"]
    assert o.loc[("x", "y"), "share_a_in_b"] == pytest.approx(2 / 3)  # 2 of x's 3 are in y
    assert o.loc[("y", "x"), "share_a_in_b"] == 1.0  # all of y is in x
    assert o.loc[("x", "z"), "jaccard"] == 0.0 and o.loc[("x", "z"), "share_a_in_b"] == 0.0
    assert np.isnan(o.loc[("z", "x"), "share_a_in_b"]) and np.isnan(o.loc[("z", "z"), "jaccard"])
    assert o.loc[("x", "x"), "jaccard"] == 1.0


def test_overlap_matrix_metrics_are_square_in_definition_order():
    m = _membership(XY)
    count = overlap_matrix(m, "count")
    assert list(count.index) == list(count.columns) == ["x", "y", "z"]
    assert count.values.tolist() == [[3, 2, 0], [2, 2, 0], [0, 0, 0]] and count.dtypes.eq("int64").all()
    share = overlap_matrix(m, "share")
    assert share.loc["x", "y"] == pytest.approx(2 / 3) and share.loc["y", "x"] == 1.0  # rows are A
    jac = overlap_matrix(m)
    assert jac.loc["x", "y"] == jac.loc["y", "x"] == pytest.approx(2 / 3)


def test_overlaps_without_attrs_use_first_appearance_and_subset():
    m = _membership([("b", "y"), ("a", "x"), ("b", "x")], attrs=False)
    assert list(overlap_matrix(m, "count").index) == ["y", "x"]
    assert overlap_matrix(_membership(XY), "count", segments=["y", "x"]).values.tolist() == [[2, 2], [2, 3]]


def test_overlaps_count_distinct_users_and_leave_input_unchanged():
    m = _membership(XY + [("a", "x")])  # a repeated row counts once
    before = m.copy()
    assert overlap_matrix(m, "count").loc["x", "x"] == 3
    pd.testing.assert_frame_equal(m, before)


def test_unknown_segment_is_a_parameter_error_with_hint():
    with pytest.raises(ParameterError, match=r"Unknown segment 'yy'; did you mean 'y'\?"):
        segment_overlaps(_membership(XY), segments=["x", "yy"])
    with pytest.raises(ParameterError, match="listed twice"):
        overlap_matrix(_membership(XY), segments=["x", "x"])
    with pytest.raises(ParameterError, match="Unknown segment 'w'"):
        segment_profiles(_membership(XY), pd.DataFrame({"user_id": ["a"], "purchases": [1]}), segments=["w"])


def test_bad_metric_lists_allowed():
    with pytest.raises(ParameterError, match=r"'metric' got 'jacard'; allowed: \['jaccard', 'count', 'share'\]"):
        overlap_matrix(_membership(XY), "jacard")


@pytest.mark.parametrize("call", [
    lambda m: segment_overlaps(m),
    lambda m: segment_profiles(m, pd.DataFrame({"user_id": ["a"], "purchases": [1]})),
    lambda m: segment_makeup(m, pd.DataFrame({"user_id": ["a"], "persona": ["p"]})),
    lambda m: export_membership(m, "unused.csv"),
])
def test_membership_missing_column_is_a_schema_error_with_hint(call):
    m = _membership(XY).rename(columns={"segment": "segmnt"})
    with pytest.raises(SchemaError, match=r"'segment' not found in membership table; did you mean 'segmnt'\?") as info:
        call(m)
    assert info.value.columns == ["segment"]


def test_membership_nulls_and_wrong_type_are_rejected():
    m = _membership(XY)
    m.loc[1, "user_id"] = pd.NA
    with pytest.raises(SchemaError, match="'user_id' of the membership table has 1 null"):
        segment_overlaps(m)
    with pytest.raises(ParameterError, match="must be a pandas DataFrame"):
        segment_overlaps([("a", "x")])


# --------------------------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------------------------


FEATS = pd.DataFrame({"user_id": ["a", "b", "c", "d", "e"], "pages_per_session": [1.0, 2.0, 3.0, 4.0, 10.0],
                      "purchases": [0, 0, 0, 0, 0], "is_vip": [True, False, False, False, False],
                      "top_search_term": ["a", "b", "c", "d", "e"]})


def test_segment_profiles_mean_index_and_all_users_row():
    m = _membership(XY + [("q", "y")])  # q has no feature row: counted, not averaged
    before = FEATS.copy()
    p = segment_profiles(m, FEATS, columns=["pages_per_session", "purchases", "is_vip"])
    assert list(p.index) == ["x", "y", "z", ALL_USERS] and p.index.name == "segment"
    assert p["n_users"].tolist() == [3, 3, 0, 5]
    assert p["share"].tolist() == [0.6, 0.6, 0.0, 1.0]
    assert p.loc["x", "pages_per_session"] == 2.0 and p.loc["y", "pages_per_session"] == 2.5
    assert p.loc[ALL_USERS, "pages_per_session"] == 4.0
    assert p.loc["x", "pages_per_session_index"] == 0.5 and p.loc[ALL_USERS, "pages_per_session_index"] == 1.0
    assert p.loc["x", "is_vip"] == pytest.approx(1 / 3) and p.loc["x", "is_vip_index"] == pytest.approx(5 / 3)
    assert np.isnan(p.loc["x", "purchases_index"])  # all users have 0: no index
    assert p.loc["z"].drop(["n_users", "share"]).isna().all()
    assert p.attrs == {"stat": "mean", "columns": ["pages_per_session", "purchases", "is_vip"]}
    pd.testing.assert_frame_equal(FEATS, before)


def test_segment_profiles_median():
    p = segment_profiles(_membership(XY), FEATS, columns=["pages_per_session"], stat="median")
    assert p["pages_per_session"].tolist()[:2] == [2.0, 2.5] and p.loc[ALL_USERS, "pages_per_session"] == 3.0
    assert p.loc["x", "pages_per_session_index"] == pytest.approx(2 / 3)


def test_segment_profiles_default_columns_are_the_present_main_features(tmp_path):
    p = segment_profiles(_membership(XY), FEATS)
    assert [c for c in p.columns if not c.endswith("_index")][2:] == ["pages_per_session", "purchases"]
    FEATS.to_parquet(tmp_path / "f.parquet")
    pd.testing.assert_frame_equal(segment_profiles(_membership(XY), tmp_path / "f.parquet"), p)
    with pytest.raises(ParameterError, match="None of the default profile features"):
        segment_profiles(_membership(XY), FEATS[["user_id", "is_vip"]])


def test_segment_profiles_bad_feature_tables():
    m = _membership(XY)
    with pytest.raises(SchemaError, match=r"'user_id' not found in feature table; did you mean 'user'\?"):
        segment_profiles(m, FEATS.rename(columns={"user_id": "user"}))
    with pytest.raises(SchemaError, match=r"'pages' not found in feature table; did you mean 'pages_per_session'\?"):
        segment_profiles(m, FEATS, columns=["pages"])
    with pytest.raises(ParameterError, match="'top_search_term' is not numeric"):
        segment_profiles(m, FEATS, columns=["top_search_term"])
    with pytest.raises(SchemaError, match="must be unique"):
        segment_profiles(m, pd.concat([FEATS, FEATS.head(1)]))
    with pytest.raises(ParameterError, match=r"'stat' got 'avg'; allowed: \['mean', 'median'\]"):
        segment_profiles(m, FEATS, stat="avg")


# --------------------------------------------------------------------------------------------
# Makeup
# --------------------------------------------------------------------------------------------


TRUTH = pd.DataFrame({"user_id": ["a", "b", "c", "d", "e"], "persona": ["p1", "p2", "p1", "p2", "bot"],
                      "is_bot": [False, False, False, False, True]})


def test_segment_makeup_shares_counts_and_all_users():
    m = _membership(XY)
    shares = segment_makeup(m, TRUTH)
    assert list(shares.columns) == ["bot", "p1", "p2", "n_users"] and shares.columns.name == "persona"
    assert list(shares.index) == ["x", "y", "z", ALL_USERS]
    assert shares.loc["x", ["bot", "p1", "p2"]].tolist() == pytest.approx([0, 2 / 3, 1 / 3])
    assert shares.loc["y", ["bot", "p1", "p2"]].tolist() == [0.0, 0.5, 0.5]
    assert shares.loc["z", ["bot", "p1", "p2"]].isna().all()
    assert shares.loc[ALL_USERS, ["bot", "p1", "p2"]].tolist() == [0.2, 0.4, 0.4]
    assert shares["n_users"].tolist() == [3, 2, 0, 5]
    counts = segment_makeup(m, TRUTH, normalize=False)
    assert counts.loc["x"].tolist() == [0, 2, 1, 3] and counts.dtypes.eq("int64").all()
    assert segment_makeup(m, TRUTH, by="is_bot", normalize=False).loc[ALL_USERS].tolist() == [4, 1, 5]


def test_segment_makeup_members_missing_from_truth_and_missing_labels():
    truth = TRUTH.assign(persona=["p1", None, "p1", "p2", "bot"]).iloc[1:]  # a not in truth, b unlabelled
    out = segment_makeup(_membership(XY), truth, normalize=False)
    assert list(out.columns) == ["bot", "p1", "p2", "(missing)", "(not in truth)", "n_users"]
    assert out.loc["x"].tolist() == [0, 1, 0, 1, 1, 3]
    assert out.loc[ALL_USERS].tolist() == [1, 1, 1, 1, 0, 4]


def test_segment_makeup_bad_truth():
    m = _membership(XY)
    with pytest.raises(SchemaError, match=r"'persona' not found in truth table; did you mean 'personas'\?"):
        segment_makeup(m, TRUTH.rename(columns={"persona": "personas"}))
    with pytest.raises(SchemaError, match="'user_id' not found in truth table"):
        segment_makeup(m, TRUTH.drop(columns="user_id"))
    with pytest.raises(ParameterError, match="'normalize' got 'yes'"):
        segment_makeup(m, TRUTH, normalize="yes")


# --------------------------------------------------------------------------------------------
# Scroll depth
# --------------------------------------------------------------------------------------------


def _scroll_events(*, sessions: bool = True) -> pd.DataFrame:
    rows = [  # user, session, minute, event, page_type, scroll_depth
        ("u", "u1", 0, "page_view", "home", None),
        ("u", "u1", 1, "scroll_depth_25", None, 25.0),
        ("u", "u1", 2, "scroll_depth_50", None, 50.0),
        ("u", "u1", 3, "page_view", "product", None),
        ("u", "u1", 4, "scroll_depth_25", None, 25.0),
        ("u", "u1", 5, "page_view", "product", None),
        ("u", "u2", 100, "scroll_depth_75", None, 75.0),  # no page view in its session: ignored
        ("v", "v1", 1, "scroll_depth_100", None, 100.0),  # same instant as the page view below: follows it
        ("v", "v1", 0, "scroll_depth_25", None, 25.0),  # before any page view: ignored
        ("v", "v1", 1, "page_view", "home", None),
        ("w", "w1", 0, "page_view", "product", None),
        ("w", "w1", 1, "scroll_depth_75", None, None),  # depth missing: 75 from the name
        ("w", "w1", 1.5, "add_to_cart", None, None),
        ("w", "w1", 2, "page_view", None, None),  # page type missing
    ]
    df = pd.DataFrame(rows, columns=["user_id", "session_id", "minute", "event", "page_type", "scroll_depth"])
    df["timestamp"] = (T0 + pd.to_timedelta(df.pop("minute").astype(float), unit="min")).astype("datetime64[us, UTC]")
    df["scroll_depth"] = df["scroll_depth"].astype("float64")
    return df if sessions else df.drop(columns="session_id")


def test_scroll_depth_heatmap_reached():
    ev = _scroll_events()
    before = ev.copy()
    h = scroll_depth_heatmap(ev)
    assert list(h.index) == ["home", "product", "(missing)"] and h.index.name == "page_type"
    assert list(h.columns) == [">=25%", ">=50%", ">=75%", ">=90%", ">=100%", "n_page_views"]
    assert h.loc["home"].tolist() == [1.0, 1.0, 0.5, 0.5, 0.5, 2]
    assert h.loc["product"].tolist() == pytest.approx([2 / 3, 1 / 3, 1 / 3, 0, 0, 3])
    assert h.loc["(missing)"].tolist() == [0, 0, 0, 0, 0, 1]
    assert h.attrs["how"] == "reached"
    pd.testing.assert_frame_equal(ev, before)


def test_scroll_depth_heatmap_distribution_rows_sum_to_one():
    h = scroll_depth_heatmap(_scroll_events(), how="distribution")
    assert list(h.columns) == ["0-25%", "25-50%", "50-75%", "75-90%", "90-100%", "n_page_views"]
    assert h.loc["home"].tolist() == [0, 0, 0.5, 0, 0.5, 2]
    assert h.loc["product"].tolist() == pytest.approx([1 / 3, 1 / 3, 0, 1 / 3, 0, 3])
    assert h.loc["(missing)"].tolist() == [1, 0, 0, 0, 0, 1]
    two = scroll_depth_heatmap(_scroll_events(), bins=(0, 100), how="distribution")
    assert two["0-100%"].tolist() == [1.0, 1.0, 1.0]


def test_scroll_depth_heatmap_without_sessions_attaches_to_the_users_last_page_view():
    h = scroll_depth_heatmap(_scroll_events(sessions=False))
    assert h.loc["product"].tolist()[:3] == pytest.approx([1.0, 2 / 3, 2 / 3])  # u's 75 % joins its last product view


def test_scroll_depth_heatmap_reads_parquet_and_ibis_and_names(tmp_path):
    ev = _scroll_events()
    expected = scroll_depth_heatmap(ev)
    ev.to_parquet(tmp_path / "ev.parquet")
    pd.testing.assert_frame_equal(scroll_depth_heatmap(tmp_path / "ev.parquet"), expected)
    pd.testing.assert_frame_equal(scroll_depth_heatmap(ibis.memtable(ev)), expected)
    # without a depth column the names carry the depth (w's missing value came from it anyway)
    pd.testing.assert_frame_equal(scroll_depth_heatmap(ev.drop(columns="scroll_depth")), expected)


def test_scroll_depth_heatmap_bad_input():
    ev = _scroll_events()
    with pytest.raises(ParameterError, match="'bins' got .*increasing sequence of percentages from 0 to 100"):
        scroll_depth_heatmap(ev, bins=(10, 50, 100))
    with pytest.raises(ParameterError, match="'bins'"):
        scroll_depth_heatmap(ev, bins=(0, 50, 50, 100))
    with pytest.raises(ParameterError, match=r"'how' got 'share'; allowed: \['reached', 'distribution'\]"):
        scroll_depth_heatmap(ev, how="share")
    with pytest.raises(SchemaError, match=r"'page_typ' not found in event log; did you mean 'page_type'\?"):
        scroll_depth_heatmap(ev, by="page_typ")
    with pytest.raises(SchemaError, match="must hold timestamps"):
        scroll_depth_heatmap(ev.assign(timestamp=ev["timestamp"].astype(str)))
    with pytest.raises(ParameterError, match="does not end with its depth"):
        scroll_depth_heatmap(ev.drop(columns="scroll_depth"), scroll_events=["scroll"])


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------


def _tricky() -> pd.DataFrame:
    m = _membership([("b", "y", 3.0, "search -> purchase"), ("a", "x", 2.0, 'cart, "quoted"; ü | x\nsecond line'),
                     ("NA", "x", 1.0, None), ("007", "x", 0.0, "")])
    m.loc[0, "entered_at"] = pd.Timestamp("2024-01-01 10:00:00.123456", tz="UTC")
    return m


def _expected(m: pd.DataFrame, *, exported_at: pd.Timestamp, run_id: str | None) -> pd.DataFrame:
    order = m.assign(_r=m["segment"].map({"x": 0, "y": 1, "z": 2})).sort_values(["_r", "user_id"]).drop(columns="_r")
    out = order.reset_index(drop=True)
    out["reason"] = out["reason"].replace("", pd.NA).astype("string")  # an empty text is a null in the schema
    out["definition_hash"] = pd.array(out["segment"].map(HASHES).tolist(), dtype="string")
    out["exported_at"] = pd.Series([exported_at] * len(out), dtype="datetime64[us, UTC]")
    out["run_id"] = pd.array([run_id] * len(out), dtype="string")
    return out[list(EXPORT_COLUMNS)]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_export_round_trip(tmp_path, fmt):
    m = _tricky()
    before = m.copy()
    path = export_membership(m, tmp_path / "out" / f"members.{fmt}", run_id="run-1", exported_at="2024-02-01 12:00")
    assert path == tmp_path / "out" / f"members.{fmt}"
    back = read_membership(path)
    stamp = pd.Timestamp("2024-02-01 12:00", tz="UTC")
    pd.testing.assert_frame_equal(back, _expected(m, exported_at=stamp, run_id="run-1"))
    assert back["user_id"].tolist() == ["007", "NA", "a", "b"]  # leading zeros and 'NA' stay text
    assert back.attrs["segments"] == ["x", "y", "z"] and back.attrs["hashes"] == HASHES
    assert back.attrs["n_users"] == 5 and back.attrs["run_id"] == "run-1"
    assert back.attrs["as_of"] == T0 + pd.Timedelta(days=1) and back.attrs["exported_at"] == stamp
    assert segment_sizes(back)["n_users"].tolist() == [3, 1, 0]  # works like a fresh membership
    pd.testing.assert_frame_equal(m, before)

    meta = json.loads((tmp_path / "out" / f"members.{fmt}.meta.json").read_text())
    assert meta["schema"] == "segkit.membership" and meta["schema_version"] == 1 and meta["format"] == fmt
    assert meta["n_rows"] == 4 and meta["run_id"] == "run-1" and meta["exported_at"] == "2024-02-01T12:00:00.000000Z"
    assert meta["segments"] == [{"name": "x", "definition_hash": HASHES["x"], "n_users": 3},
                                {"name": "y", "definition_hash": HASHES["y"], "n_users": 1},
                                {"name": "z", "definition_hash": HASHES["z"], "n_users": 0}]
    assert [c["name"] for c in meta["columns"]] == list(EXPORT_COLUMNS)


def test_export_text_formats_write_iso_utc_and_nulls(tmp_path):
    m = _tricky()
    csv = export_membership(m, tmp_path / "m.csv", exported_at="2024-02-01")
    lines = csv.read_text(encoding="utf-8").split("\n")
    assert lines[0] == "user_id,segment,entered_at,reason,definition_hash,exported_at,run_id"
    assert lines[1] == f"007,x,2024-01-01T00:00:00.000000Z,,{HASHES['x']},2024-02-01T00:00:00.000000Z,"
    jsonl = export_membership(m, tmp_path / "m.jsonl", exported_at="2024-02-01")
    first = json.loads(jsonl.read_text(encoding="utf-8").splitlines()[0])
    assert list(first) == list(EXPORT_COLUMNS) and first["reason"] is None and first["run_id"] is None
    back = read_membership(jsonl)
    assert back["reason"].isna().tolist() == [True, True, False, False]  # "" and None are both null
    assert back.loc[3, "entered_at"] == pd.Timestamp("2024-01-01 10:00:00.123456", tz="UTC")


def test_export_is_sorted_and_byte_identical_when_repeated(tmp_path):
    m = _tricky()
    a = export_membership(m, tmp_path / "a.parquet", exported_at="2024-02-01")
    b = export_membership(m.sample(frac=1.0, random_state=0), tmp_path / "b.parquet", exported_at="2024-02-01")
    assert a.read_bytes() == b.read_bytes()
    meta_a = json.loads((tmp_path / "a.parquet.meta.json").read_text())
    assert meta_a["sha256"] == json.loads((tmp_path / "b.parquet.meta.json").read_text())["sha256"]


def test_export_format_from_suffix_and_errors(tmp_path):
    m = _membership(XY)
    assert read_membership(export_membership(m, tmp_path / "m.ndjson")).shape == (5, 7)
    assert read_membership(export_membership(m, tmp_path / "m.txt", format="csv"), format="csv").shape == (5, 7)
    with pytest.raises(ParameterError, match=r"Cannot infer the format .*'\.txt'.*\['csv', 'parquet', 'jsonl'\]"):
        export_membership(m, tmp_path / "m.txt")
    with pytest.raises(ParameterError, match=r"'format' got 'xlsx'; allowed: \['csv', 'parquet', 'jsonl'\]"):
        export_membership(m, tmp_path / "m.xlsx", format="xlsx")
    with pytest.raises(ParameterError, match="contradicts the suffix '.csv'"):
        export_membership(m, tmp_path / "m.csv", format="parquet")
    with pytest.raises(ParameterError, match="'run_id'"):
        export_membership(m, tmp_path / "m.csv", run_id=3)


def test_export_hashes_from_definitions(tmp_path):
    bare = _membership(XY, attrs=False)
    with pytest.raises(ParameterError, match="carries no definition hashes"):
        export_membership(bare, tmp_path / "m.csv")
    body = {"segments": {"x": {"did": "add_to_cart"}, "y": {"then": ["search", "purchase"]},
                         "z": {"did": "purchase", "at_least": 3}}}
    (tmp_path / "segs.yaml").write_text(yaml.safe_dump(body))
    for definitions in (DEFS, body, tmp_path / "segs.yaml", str(tmp_path / "segs.yaml")):
        back = read_membership(export_membership(bare, tmp_path / "m.csv", definitions=definitions))
        assert back.attrs["hashes"] == HASHES and back.attrs["segments"] == ["x", "y", "z"]
        assert back.attrs["n_users"] is None
    with pytest.raises(ParameterError, match=r"Segment 'y' of the membership is not among the definitions"):
        export_membership(bare, tmp_path / "m.csv", definitions=DEFS[:1])
    other = [DEFS[0], Segment("y", did("search")), DEFS[2]]
    with pytest.raises(SegkitError, match="'y' of the membership was evaluated with another definition"):
        export_membership(_membership(XY), tmp_path / "m.csv", definitions=other)


def test_export_rejects_duplicates_and_naive_times(tmp_path):
    with pytest.raises(SchemaError, match=r"repeats 1 \(user, segment\) pair"):
        export_membership(_membership(XY + [("a", "x")]), tmp_path / "m.csv")
    naive = _membership(XY).assign(entered_at=lambda d: d["entered_at"].dt.tz_localize(None))
    with pytest.raises(SchemaError, match="naive timestamps"):
        export_membership(naive, tmp_path / "m.csv")
    with pytest.raises(SchemaError, match="'reason' not found in membership table"):
        export_membership(_membership(XY).drop(columns="reason"), tmp_path / "m.csv")


def test_read_membership_detects_changes(tmp_path):
    path = export_membership(_tricky(), tmp_path / "m.jsonl")
    side = tmp_path / "m.jsonl.meta.json"
    good_text, good_meta = path.read_text(encoding="utf-8"), side.read_text()

    path.write_text("".join(good_text.splitlines(keepends=True)[:-1]), encoding="utf-8")
    with pytest.raises(SegkitError, match=r"has 3 rows but its sidecar records 4"):
        read_membership(path)
    path.write_text(good_text, encoding="utf-8")

    meta = json.loads(good_meta)
    meta["segments"][0]["definition_hash"] = "0" * 64
    side.write_text(json.dumps(meta))
    with pytest.raises(SegkitError, match="3 row\\(s\\) .* carry a definition hash that differs .* segment 'x'"):
        read_membership(path)
    side.write_text(good_meta)

    path.write_text(good_text.replace("search -> purchase", "search -> purchases"), encoding="utf-8")
    with pytest.raises(SegkitError, match="changed after export: its SHA-256"):
        read_membership(path)
    path.write_text(good_text, encoding="utf-8")

    meta = json.loads(good_meta)
    meta["schema_version"] = 2
    side.write_text(json.dumps(meta))
    with pytest.raises(SegkitError, match="schema_version 2"):
        read_membership(path)
    side.unlink()
    with pytest.raises(SegkitError, match="Sidecar .* not found"):
        read_membership(path)
    with pytest.raises(SegkitError, match="not found; write it with"):
        read_membership(tmp_path / "absent.csv")
    read_membership(export_membership(_tricky(), tmp_path / "m.jsonl"))  # a fresh export reads again


def test_read_membership_checks_columns_and_format(tmp_path):
    path = export_membership(_tricky(), tmp_path / "m.csv")
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("definition_hash", "definition_hsh", 1), encoding="utf-8")
    with pytest.raises(SchemaError, match=r"'definition_hash' not found in membership export; did you mean 'definition_hsh'\?"):
        read_membership(path)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ParameterError, match="contradicts the suffix"):
        read_membership(path, format="jsonl")


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------


def test_plots_return_annotated_figures():
    m = _membership(XY)
    fig = plot_overlaps(m, "share")
    assert isinstance(fig, Figure) and len(fig.axes[0].texts) == 6  # z's row is empty (NaN)
    assert [t.get_text() for t in fig.axes[0].texts[:3]] == ["1.00", "0.67", "0.00"]
    fig = plot_profiles(segment_profiles(m, FEATS, columns=["pages_per_session", "is_vip", "purchases"]))
    # purchases: 0 for all users, no index, blank; y has no VIP: ratio 0, annotated, darkest blue
    assert isinstance(fig, Figure) and [t.get_text() for t in fig.axes[0].texts] == ["2", "0.333", "2.5", "0"]
    fig = plot_makeup(segment_makeup(m, TRUTH, normalize=False))
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["bot", "p1", "p2"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()][-1] == "all users (n=5)"
    fig = plot_scroll_heatmap(scroll_depth_heatmap(_scroll_events()))
    assert [t.get_text() for t in fig.axes[0].texts[:5]] == ["100%", "100%", "50%", "50%", "50%"]
    _, ax = plt.subplots()
    assert plot_overlaps(m, ax=ax) is ax.figure


def test_plot_inputs_are_checked():
    with pytest.raises(SchemaError, match="'<feature>_index' columns"):
        plot_profiles(pd.DataFrame({"n_users": [1]}))
    with pytest.raises(SchemaError, match="'n_page_views' not found"):
        plot_scroll_heatmap(pd.DataFrame({">=25%": [0.5]}))


def test_docstring_examples_run():
    result = doctest.testmod(membership_module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 10


# --------------------------------------------------------------------------------------------
# Integration: a small simulated shop and the default segments
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop_membership():
    tax = segkit.load_taxonomy(ROOT / "parameters" / "taxonomy" / "default.yaml")
    shop = segkit.simulate_shop(300, n_days=14, seed=1)
    loaded = segkit.load_events(shop.events, columns=shop.column_map, timezone=shop.timezone)
    cleaned = segkit.clean_events(segkit.apply_taxonomy(loaded.events, tax), rejected=loaded.rejected)
    events = segkit.split_sessions(cleaned.events)
    features = segkit.build_user_features(events, crm=shop.crm)
    m = evaluate_segments(ROOT / "parameters" / "segments" / "default.yaml", events=events, features=features,
                          taxonomy_events=tax)
    return shop, events, features, m


def test_outputs_on_a_simulated_shop(shop_membership, tmp_path):
    shop, events, features, m = shop_membership
    names = m.attrs["segments"]
    sizes = segment_sizes(m).set_index("segment")["n_users"]
    count = overlap_matrix(m, "count")
    assert list(count.index) == names and np.diag(count.to_numpy()).tolist() == sizes.tolist()
    # high and low intent searchers are disjoint by definition
    assert count.loc["high_intent_searchers", "low_intent_searchers"] == 0
    share = overlap_matrix(m, "share").to_numpy()
    assert np.nanmin(share) >= 0 and np.nanmax(share) <= 1

    profiles = segment_profiles(m, features)
    assert list(profiles.index) == names + [ALL_USERS]
    assert profiles["n_users"].tolist() == sizes.tolist() + [len(features)]
    assert {"pages_per_session", "total_time_s", "purchases", "revenue", "recency_days"} <= set(profiles.columns)
    assert profiles.loc[ALL_USERS].filter(like="_index").dropna().eq(1.0).all()

    truth = shop.truth[shop.truth["user_id"].isin(features["user_id"])]
    makeup = segment_makeup(m, truth)
    filled = makeup[makeup["n_users"] > 0].drop(columns="n_users")
    assert np.allclose(filled.sum(axis=1), 1.0)
    assert makeup.loc["cart_abandoners", "cart_abandoner"] > 2 * makeup.loc[ALL_USERS, "cart_abandoner"]
    assert makeup.loc[ALL_USERS, "n_users"] == len(truth)

    scroll = scroll_depth_heatmap(events)
    shares = scroll.drop(columns="n_page_views").to_numpy()
    assert (np.diff(shares, axis=1) <= 1e-12).all()  # deeper is reached less often
    assert scroll["n_page_views"].sum() == int((events["event"] == "page_view").sum())
    assert scroll.loc["blog", ">=50%"] > scroll.loc["cart", ">=50%"]

    back = read_membership(export_membership(m, tmp_path / "members.parquet", run_id="test"))
    assert back.attrs["hashes"] == m.attrs["hashes"] and back.attrs["segments"] == names
    order = m.assign(_r=m["segment"].map({s: i for i, s in enumerate(names)})).sort_values(["_r", "user_id"])
    pd.testing.assert_frame_equal(back[["user_id", "segment", "entered_at", "reason"]],
                                  order.drop(columns="_r").reset_index(drop=True))

    for fig in (plot_overlaps(m), plot_profiles(profiles), plot_makeup(makeup), plot_scroll_heatmap(scroll)):
        assert isinstance(fig, Figure)


def test_combine_memberships_stacks_tables_and_merges_attrs():
    from segkit.membership import combine_memberships, labels_to_membership

    ts = pd.Timestamp("2024-01-01", tz="UTC")
    a = pd.DataFrame({"user_id": ["u", "v"], "segment": ["x", "x"], "entered_at": [ts, ts], "reason": ["r", "r"]})
    a.attrs = {"segments": ["x", "empty"], "n_users": 5, "as_of": ts, "hashes": {"x": "h1", "empty": "h0"}}
    b = labels_to_membership(pd.DataFrame({"user_id": ["u", "w"], "cluster_name": ["buyers", "browsers"]}),
                             label_col="cluster_name", as_of="2024-01-02", prefix="cluster: ")
    both = combine_memberships(a, b)
    assert both["segment"].tolist() == ["x", "x", "cluster: browsers", "cluster: buyers"]
    assert both.attrs["segments"] == ["x", "empty", "cluster: browsers", "cluster: buyers"]
    assert both.attrs["n_users"] == 5 and both.attrs["as_of"] == pd.Timestamp("2024-01-02", tz="UTC")
    assert set(both.attrs["hashes"]) == set(both.attrs["segments"])
    assert both.loc[2, "reason"] == "cluster_name = browsers"
    with pytest.raises(ParameterError, match="appears in two membership tables"):
        combine_memberships(a, a)
