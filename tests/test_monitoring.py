"""Tests of segkit.monitoring: sizes over time, PSI and feature drift, churn, alerts and pitfalls.

Hand-computed expectations on tiny inline tables; property tests where an oracle exists (PSI of a
sample with itself, categorical symmetry, AUC by counting pairs).
"""
from __future__ import annotations

import doctest
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import segkit.monitoring as monitoring_module
from segkit.errors import ParameterError, SchemaError
from segkit.monitoring import (
    Alert,
    _auc,
    alerts_frame,
    alerts_html,
    check_alerts,
    feature_drift,
    membership_churn,
    pitfall_checks,
    psi,
    psi_bins,
    segment_sizes_over_time,
)
from segkit.segments import Segment, did, evaluate_segments

UTC = "UTC"


def ts(*values: str) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values), utc=True))


# --------------------------------------------------------------------------------------------
# PSI
# --------------------------------------------------------------------------------------------


def term(a: float, e: float) -> float:
    return (a - e) * math.log(a / e)


def test_psi_numeric_hand_computed():
    # reference cut at its median 2.5: (-inf, 2.5], (2.5, inf]
    t = psi_bins([1, 2, 3, 4], [1, 3, 4, 5, 6, 7, 8, 9], bins=2)
    assert t["bin"].tolist() == ["(-inf, 2.5]", "(2.5, inf]"]
    assert t["expected_n"].tolist() == [2, 2] and t["actual_n"].tolist() == [1, 7]
    expected = term(1 / 8, 0.5) + term(7 / 8, 0.5)
    assert t.attrs["psi"] == pytest.approx(expected)
    assert psi([1, 2, 3, 4], [1, 3, 4, 5, 6, 7, 8, 9], bins=2) == pytest.approx(expected)


def test_psi_bins_are_right_closed_and_cut_on_the_reference_only():
    t = psi_bins([0, 0, 0, 0, 1, 1, 2, 3], [5, 5, 0], bins=4)
    # quartile cuts (linear interpolation) 0, 0.5, 1.25 (0 is merged once); 5 lands in the open top bin
    assert t["bin"].tolist() == ["(-inf, 0]", "(0, 0.5]", "(0.5, 1.25]", "(1.25, inf]"]
    assert t["expected_n"].tolist() == [4, 0, 2, 2]
    assert t["actual_n"].tolist() == [1, 0, 0, 2]


def test_psi_uniform_strategy_and_constant_reference():
    t = psi_bins([0, 10], [1, 6, 9], bins=2, strategy="uniform")
    assert t["bin"].tolist() == ["(-inf, 5]", "(5, inf]"] and t["actual_n"].tolist() == [1, 2]
    const = psi_bins([3, 3, 3], [3, 4], bins=5)
    assert const["bin"].tolist() == ["(-inf, 3]", "(3, inf]"] and const["actual_n"].tolist() == [1, 1]
    assert const.attrs["psi"] == pytest.approx(term(0.5, 1.0) + term(0.5, 1e-4))
    assert psi_bins([3, 3], [9], bins=3, strategy="uniform")["bin"].tolist() == ["(-inf, 3]", "(3, inf]"]


def test_psi_categorical_with_new_category_and_missing():
    t = psi_bins(pd.Series(["a", "a", "b", None]), pd.Series(["a", "c", None, None]))
    assert t["bin"].tolist() == ["a", "b", "c", "(missing)"]
    assert t["expected_share"].tolist() == [0.5, 0.25, 0.0, 0.25]
    assert t["actual_share"].tolist() == [0.25, 0.0, 0.25, 0.5]
    eps = 1e-4
    expected = term(0.25, 0.5) + term(eps, 0.25) + term(0.25, eps) + term(0.5, 0.25)
    assert t.attrs["psi"] == pytest.approx(expected)
    assert psi(["a", "a", "b", None], ["a", "c", None, None], epsilon=0.01) == pytest.approx(
        term(0.25, 0.5) + term(0.01, 0.25) + term(0.25, 0.01) + term(0.5, 0.25))


def test_psi_numeric_missing_bin_and_booleans():
    t = psi_bins([1.0, 2.0, np.nan, np.nan], [1.0, 2.0, 3.0, np.nan], bins=2)
    assert t["bin"].tolist()[-1] == "(missing)" and t["expected_n"].tolist()[-1] == 2
    assert psi([True, False, False, False], [True, False, False, False]) == 0.0
    assert psi_bins([True, False], [True, True]).attrs["categorical"] is True
    codes = psi_bins([1, 1, 2], [2, 2, 3], categorical=True)
    assert codes["bin"].tolist() == ["1", "2", "3"]


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (([], [1]), {}, "at least one value"),
        (([1], []), {}, "at least one value"),
        (([1, 2], [1]), {"bins": 1}, "a whole number >= 2"),
        (([1, 2], [1]), {"bins": True}, "a whole number >= 2"),
        (([1, 2], [1]), {"strategy": "kmeans"}, r"allowed: \['quantile', 'uniform'\]"),
        ((["a"], ["a"]), {"bins": 5}, "apply to numeric features"),
        ((["a"], ["a"]), {"strategy": "uniform"}, "apply to numeric features"),
        ((["a"], ["b"]), {"categorical": False}, "categorical=False but the values are not numeric"),
        (([1], [1]), {"categorical": "yes"}, r"allowed: \[True, False, None\]"),
        (([1], [1]), {"epsilon": 0}, "epsilon"),
        (([np.nan, np.inf], [1]), {}, "no finite value"),
        ((pd.DataFrame({"a": [1]}), [1]), {}, "use feature_drift for a table"),
        ((5, [1]), {}, "must be a Series, an array or a list"),
    ],
)
def test_psi_errors(args, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        psi(*args, **kwargs)


samples = st.lists(st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.integers(-5, 5).map(float)), min_size=1,
                   max_size=60)


@settings(max_examples=30, deadline=None)
@given(samples, st.integers(2, 12), st.sampled_from(["quantile", "uniform"]))
def test_psi_of_a_sample_with_itself_is_zero(xs, bins, strategy):
    assert psi(xs, xs, bins=bins, strategy=strategy) == pytest.approx(0.0, abs=1e-12)
    assert psi(xs, list(reversed(xs)) * 3, bins=bins, strategy=strategy) == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(samples, samples, st.integers(2, 12))
def test_psi_is_non_negative_and_shares_sum_to_one(xs, ys, bins):
    t = psi_bins(xs, ys, bins=bins)
    assert t.attrs["psi"] >= -1e-12
    assert t["expected_share"].sum() == pytest.approx(1.0) and t["actual_share"].sum() == pytest.approx(1.0)
    assert (t["contribution"] >= -1e-12).all()


cats = st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=40)


@settings(max_examples=30, deadline=None)
@given(cats, cats)
def test_categorical_psi_is_symmetric(xs, ys):
    assert psi(xs, ys) == pytest.approx(psi(ys, xs))


def test_psi_grows_with_the_shift_and_reads_the_usual_scale():
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 1, 20_000)
    values = [psi(ref, rng.normal(shift, 1, 20_000)) for shift in (0.0, 0.25, 0.5, 1.0)]
    assert values == sorted(values)
    assert values[0] < 0.01 and 0.05 < values[1] < 0.1 and values[3] > 0.25


# --------------------------------------------------------------------------------------------
# feature_drift
# --------------------------------------------------------------------------------------------

REF = pd.DataFrame({
    "user_id": list("abcdefgh"),
    "first_seen": pd.to_datetime(["2024-01-01"] * 8, utc=True),
    "pages": [1, 2, 3, 4, 5, 6, 7, 8],
    "visits": [1, 1, 2, 2, 3, 3, 4, 4],
    "vip": [True, False] * 4,
    "device": ["mobile"] * 4 + ["desktop"] * 4,
})


def test_feature_drift_statuses_order_and_defaults():
    cur = REF.assign(pages=[8, 8, 8, 8, 8, 8, 7, 8], visits=[1, 1, 2, 2, 3, 3, 4, 1],
                     device=["mobile"] * 6 + ["desktop"] * 2)
    d = feature_drift(REF, cur, bins=4)
    assert d["feature"].tolist() == ["pages", "device", "visits", "vip"]  # most drifted first, dates left out
    by = d.set_index("feature")
    assert by.loc["device", "psi"] == pytest.approx(term(0.75, 0.5) + term(0.25, 0.5))  # 0.275
    assert by.loc["visits", "psi"] == pytest.approx(term(0.375, 0.25) + term(0.125, 0.25))  # 0.137
    assert by.loc["vip", "psi"] == 0.0
    assert by["status"].to_dict() == {"pages": "alert", "device": "alert", "visits": "warn", "vip": "ok"}
    row = d.set_index("feature").loc["pages"]
    assert row["kind"] == "numeric" and row["mean_reference"] == 4.5 and row["mean_current"] == 7.875
    assert d.set_index("feature").loc["vip", "kind"] == "categorical"
    assert np.isnan(d.set_index("feature").loc["vip", "mean_reference"])
    assert d.attrs == {"warn": 0.1, "alert": 0.25}


def test_feature_drift_thresholds_from_parameters():
    cur = REF.assign(device=["mobile"] * 6 + ["desktop"] * 2)
    exp_device = term(0.75, 0.5) + term(0.25, 0.5)  # 0.2747
    d = feature_drift(REF, cur, ["device"], warn=0.2, alert=0.3)
    assert d["psi"].iloc[0] == pytest.approx(exp_device) and d["status"].iloc[0] == "warn"
    assert feature_drift(REF, cur, ["device"], warn=0.3, alert=0.5)["status"].iloc[0] == "ok"
    assert feature_drift(REF, cur, ["device"])["status"].iloc[0] == "alert"


def test_feature_drift_does_not_mutate_inputs():
    ref, cur = REF.copy(), REF.assign(pages=REF["pages"] * 2)
    cur_before = cur.copy()
    feature_drift(ref, cur)
    pd.testing.assert_frame_equal(ref, REF)
    pd.testing.assert_frame_equal(cur, cur_before)


def test_feature_drift_errors():
    with pytest.raises(SchemaError, match=r"Column 'pages' not found in current feature table"):
        feature_drift(REF, REF.drop(columns="pages"))
    with pytest.raises(SchemaError, match=r"Column 'page' not found in reference feature table.*did you mean 'pages'"):
        feature_drift(REF, REF, ["page"])
    with pytest.raises(ParameterError, match="holds dates"):
        feature_drift(REF, REF, ["first_seen"])
    with pytest.raises(ParameterError, match="must be greater than warn"):
        feature_drift(REF, REF, warn=0.3, alert=0.2)
    with pytest.raises(ParameterError, match="No feature to compare"):
        feature_drift(REF[["user_id"]], REF)
    with pytest.raises(ParameterError, match="must be a pandas DataFrame"):
        feature_drift(REF, REF["pages"])


# --------------------------------------------------------------------------------------------
# membership_churn
# --------------------------------------------------------------------------------------------


def test_membership_churn_hand_computed():
    prev = pd.DataFrame({"user_id": ["a", "b", "c", "d"], "segment": ["x", "x", "x", "y"]})
    cur = pd.DataFrame({"user_id": ["b", "c", "e", "d"], "segment": ["x", "x", "x", "y"]})
    c = membership_churn(prev, cur)
    assert c[["segment", "entered", "left", "stayed"]].values.tolist() == [["x", 1, 1, 2], ["y", 0, 0, 1]]
    assert c["jaccard"].tolist() == [0.5, 1.0] and c["churn"].tolist() == [0.5, 0.0]


# --------------------------------------------------------------------------------------------
# segment_sizes_over_time
# --------------------------------------------------------------------------------------------

MEM = pd.DataFrame({"user_id": ["a", "b", "c", "a", "d"], "segment": ["x", "x", "x", "y", "y"],
                    "entered_at": ts("2024-01-01", "2024-01-05", "2024-01-12", "2024-01-14", "2024-01-15")})
MEM.attrs.update({"segments": ["x", "y", "z"], "as_of": pd.Timestamp("2024-01-15", tz=UTC)})


def test_sizes_from_entered_at_hand_computed():
    s = segment_sizes_over_time(MEM)
    assert s["as_of"].astype(str).unique().tolist() == ["2024-01-01 00:00:00+00:00", "2024-01-08 00:00:00+00:00",
                                                        "2024-01-15 00:00:00+00:00"]
    got = s[["segment", "n_users", "entered", "change"]].astype(object).values.tolist()
    assert got == [["x", 1, 1, 1], ["y", 0, 0, 0], ["z", 0, 0, 0],
                   ["x", 2, 1, 1], ["y", 0, 0, 0], ["z", 0, 0, 0],
                   ["x", 3, 1, 1], ["y", 2, 2, 2], ["z", 0, 0, 0]]
    assert s["left"].isna().all() and s["share"].isna().all()
    assert s.loc[6, "pct_change"] == 0.5 and np.isnan(s.loc[7, "pct_change"])
    assert s.attrs["source"] == "entered_at"
    assert str(s["as_of"].dtype) == "datetime64[us, UTC]"


def test_sizes_from_entered_at_start_end_every_and_segments():
    s = segment_sizes_over_time(MEM, start="2024-01-10", end="2024-01-15", every="1d", segments=["y"])
    assert s["n_users"].tolist() == [0, 0, 0, 0, 1, 2]
    assert s["as_of"].iloc[-1] == pd.Timestamp("2024-01-15", tz=UTC)
    bare = MEM.copy()
    bare.attrs = {}
    assert segment_sizes_over_time(bare)["as_of"].max() == pd.Timestamp("2024-01-15", tz=UTC)


def test_sizes_from_evaluate_are_exact_for_windowed_segments():
    ev = pd.DataFrame({"user_id": ["a", "a", "b", "c", "c"], "event": ["search", "purchase", "search", "search", "search"],
                       "timestamp": ts("2024-01-01", "2024-01-09", "2024-01-03", "2024-01-10", "2024-01-16")})
    defs = [Segment("buyers", did("purchase")), Segment("recent_search", did("search", within="7d"))]
    calls = []

    def run(t):
        calls.append(t)
        return evaluate_segments(defs, events=ev, as_of=t)

    s = segment_sizes_over_time(evaluate=run, start="2024-01-02", end="2024-01-16")
    assert calls == [pd.Timestamp(d, tz=UTC) for d in ("2024-01-02", "2024-01-09", "2024-01-16")]
    rs = s[s["segment"] == "recent_search"]
    # searches in the 7 days before: {a} on 01-02, {b} on 01-09, {c} on 01-16
    assert rs["n_users"].tolist() == [1, 1, 1]
    assert rs["entered"].astype(object).tolist()[1:] == [1, 1] and rs["left"].astype(object).tolist()[1:] == [1, 1]
    assert rs["entered"].isna().tolist() == [True, False, False]
    buyers = s[s["segment"] == "buyers"]
    assert buyers["n_users"].tolist() == [0, 1, 1] and buyers["share"].tolist() == [0.0, 0.5, 1 / 3]
    # from entered_at alone the windowed segment is understated in the past (b has left by the last run)
    approx = segment_sizes_over_time(run(pd.Timestamp("2024-01-16", tz=UTC)), start="2024-01-02")
    assert approx[approx["segment"] == "recent_search"]["n_users"].tolist() == [0, 0, 1]


def test_sizes_errors():
    with pytest.raises(ParameterError, match="exactly one of membership= .* and evaluate="):
        segment_sizes_over_time()
    with pytest.raises(ParameterError, match="exactly one of"):
        segment_sizes_over_time(MEM, evaluate=lambda t: MEM)
    with pytest.raises(ParameterError, match="needs start= and end="):
        segment_sizes_over_time(evaluate=lambda t: MEM, end="2024-01-01")
    with pytest.raises(ParameterError, match="a duration needs units"):
        segment_sizes_over_time(MEM, every="7")
    with pytest.raises(ParameterError, match="is after end"):
        segment_sizes_over_time(MEM, start="2024-02-01")
    with pytest.raises(ParameterError, match="at most 1,000"):
        segment_sizes_over_time(MEM, every="1m")
    with pytest.raises(ParameterError, match="it must return a membership table"):
        segment_sizes_over_time(evaluate=lambda t: None, start="2024-01-01", end="2024-01-02")
    with pytest.raises(ParameterError, match=r"Unknown segment 'xx'.*did you mean 'x'"):
        segment_sizes_over_time(MEM, segments=["xx"])
    naive = MEM.assign(entered_at=MEM["entered_at"].dt.tz_localize(None))
    with pytest.raises(SchemaError, match="tz-aware"):
        segment_sizes_over_time(naive)
    with pytest.raises(SchemaError, match="Column 'entered_at' not found"):
        segment_sizes_over_time(MEM.drop(columns="entered_at"))
    with pytest.raises(SchemaError, match="null values"):
        segment_sizes_over_time(MEM.assign(entered_at=MEM["entered_at"].where(MEM["user_id"] != "a")))


# --------------------------------------------------------------------------------------------
# check_alerts
# --------------------------------------------------------------------------------------------


def test_check_alerts_from_drift_uses_the_table_thresholds():
    drift = pd.DataFrame({"feature": ["a", "b", "c"], "psi": [0.05, 0.4, 0.12]})
    drift.attrs.update({"warn": 0.1, "alert": 0.25})
    alerts = check_alerts(drift=drift)
    assert [(a.level, a.subject, a.value, a.threshold) for a in alerts] == [("alert", "b", 0.4, 0.25),
                                                                           ("warn", "c", 0.12, 0.1)]
    assert "PSI 0.400 >= 0.25" in alerts[0].message
    no_attrs = drift.copy()
    no_attrs.attrs = {}
    assert [a.level for a in check_alerts(drift=no_attrs, psi_warn=0.01, psi_alert=0.1)] == ["alert", "alert", "warn"]
    with pytest.raises(ParameterError, match="was computed with warn=0.1"):
        check_alerts(drift=drift, psi_warn=0.2)


def test_check_alerts_from_feature_drift_end_to_end():
    cur = REF.assign(pages=[8] * 8)
    alerts = check_alerts(drift=feature_drift(REF, cur, ["pages", "visits"], warn=0.2, alert=0.3))
    assert [(a.check, a.subject, a.level, a.threshold) for a in alerts] == [("feature_drift", "pages", "alert", 0.3)]


def test_check_alerts_from_churn():
    prev = pd.DataFrame({"user_id": ["a", "b", "c", "d"], "segment": ["x", "x", "x", "y"]})
    cur = pd.DataFrame({"user_id": ["c", "e", "d"], "segment": ["x", "x", "y"]})
    prev.attrs.update({"segments": ["x", "y", "empty"], "hashes": {"x": "1", "y": "2", "empty": "3"}})
    cur.attrs.update({"segments": ["x", "y", "empty"], "hashes": {"x": "9", "y": "2", "empty": "3"}})
    alerts = check_alerts(churn=membership_churn(prev, cur), min_jaccard=0.3)
    assert len(alerts) == 1
    a = alerts[0]
    assert (a.level, a.check, a.subject, a.value, a.threshold) == ("warn", "membership_churn", "x", 0.25, 0.3)
    assert a.message == ("Segment 'x' kept 1 of 4 users between runs: Jaccard 0.25 < 0.3 (entered 1, left 2); its "
                         "definition changed")


def test_check_alerts_from_sizes():
    sizes = pd.DataFrame({"as_of": pd.to_datetime(["2024-01-01"] * 3 + ["2024-01-08"] * 3, utc=True),
                          "segment": ["x", "y", "z"] * 2, "n_users": [100, 100, 0, 40, 130, 5]})
    alerts = check_alerts(sizes=sizes, max_size_change=0.5)
    assert [(a.subject, a.value) for a in alerts] == [("x", -0.6), ("z", math.inf)]
    assert alerts[0].message == ("Segment 'x' went from 100 to 40 users (-60.0%) between 2024-01-01 and 2024-01-08; "
                                 "threshold +/-50%")
    assert [a.subject for a in check_alerts(sizes=sizes, max_size_change=0.3)] == ["x", "y", "z"]
    assert check_alerts(sizes=sizes.iloc[:3]) == []


def test_check_alerts_errors():
    with pytest.raises(ParameterError, match="needs at least one of"):
        check_alerts()
    with pytest.raises(SchemaError, match="Column 'psi' not found in drift table"):
        check_alerts(drift=pd.DataFrame({"feature": ["a"]}))
    with pytest.raises(ParameterError, match="min_jaccard"):
        check_alerts(churn=pd.DataFrame(), min_jaccard=1.5)
    with pytest.raises(ParameterError, match="max_size_change"):
        check_alerts(sizes=pd.DataFrame(), max_size_change=0)


# --------------------------------------------------------------------------------------------
# pitfall_checks
# --------------------------------------------------------------------------------------------

PIT = pd.DataFrame({"user_id": ["a", "b", "c", "d", "a", "b", "c", "e"],
                    "segment": ["big", "big", "big", "big", "twin", "twin", "twin", "tiny"]})
PIT.attrs["segments"] = ["big", "twin", "tiny", "empty"]


def test_pitfall_small_and_overlapping_segments():
    alerts = pitfall_checks(PIT, min_size=2, max_overlap=0.7)
    got = [(a.check, a.subject, a.value, a.threshold) for a in alerts]
    assert got == [("small_segment", "tiny", 1.0, 2.0), ("small_segment", "empty", 0.0, 2.0),
                   ("overlapping_segments", "big & twin", 0.75, 0.7)]
    assert all(a.level == "warn" for a in alerts)
    assert alerts[1].message == "Segment 'empty' is empty (< 2): too few to personalize for or to test reliably"
    assert "3 users in both; 4 and 3 members" in alerts[2].message
    assert pitfall_checks(PIT, min_size=1, max_overlap=0.75) == [
        Alert("warn", "small_segment", "empty", 0.0, 1.0,
              "Segment 'empty' is empty (< 1): too few to personalize for or to test reliably")]


def test_pitfall_label_leak():
    rng = np.random.default_rng(1)
    n = 400
    y = rng.random(n) < 0.3
    feats = pd.DataFrame({"user_id": [f"u{i}" for i in range(n)], "purchases": y * rng.integers(1, 4, n),
                          "no_purchase_days": np.where(y, 0, 30) + rng.integers(0, 5, n),
                          "pages": rng.poisson(5, n), "device": ["m"] * n, "converted": y})
    alerts = pitfall_checks(PIT, feats, "converted", min_size=1, max_overlap=1.0)
    leaks = [a for a in alerts if a.check == "label_leak"]
    assert [a.subject for a in leaks] == ["purchases", "no_purchase_days"]
    assert leaks[0].value == 1.0 and leaks[1].value == 1.0
    assert "(inverted)" in leaks[1].message and "(inverted)" not in leaks[0].message
    # the same check with the label as a Series indexed by user id, on a subset of users
    label = pd.Series(y[:300], index=feats["user_id"][:300])
    leaks2 = [a.subject for a in pitfall_checks(PIT, feats.drop(columns="converted"), label, min_size=1)
              if a.check == "label_leak"]
    assert leaks2 == ["purchases", "no_purchase_days"]
    assert [a for a in pitfall_checks(PIT, feats, "converted", min_size=1, leak_auc=1.0) if a.check == "label_leak"] == []


def test_pitfall_stale_data():
    alerts = pitfall_checks(PIT, min_size=1, last_event="2024-01-01 06:00", now="2024-01-04 08:30")
    stale = alerts[-1]
    assert (stale.check, stale.subject, stale.value, stale.threshold) == ("stale_data", "events", 268200.0, 172800.0)
    assert "is 3d 2h old" in stale.message and "(> 2d)" in stale.message
    assert pitfall_checks(PIT, min_size=1, last_event="2024-01-01", now="2024-01-02",
                          max_staleness="36h") == [a for a in alerts if a.check != "stale_data"]
    assert any(a.check == "stale_data" for a in pitfall_checks(PIT, min_size=1, last_event="2000-01-01"))


def test_pitfall_errors():
    feats = pd.DataFrame({"user_id": ["a", "b", "c"], "x": [1, 2, 3], "y": [0, 1, 2]})
    with pytest.raises(ParameterError, match="needs both features= and label="):
        pitfall_checks(PIT, feats)
    with pytest.raises(ParameterError, match="needs both features= and label="):
        pitfall_checks(PIT, label="y")
    with pytest.raises(ParameterError, match="must be binary with both classes present; it has 3"):
        pitfall_checks(PIT, feats, "y")
    with pytest.raises(ParameterError, match="must be binary.*it has 1"):
        pitfall_checks(PIT, feats.assign(y=1), "y")
    with pytest.raises(SchemaError, match=r"Column 'z' not found in feature table"):
        pitfall_checks(PIT, feats, "z")
    with pytest.raises(ParameterError, match="No user of the feature table is in the label's index"):
        pitfall_checks(PIT, feats, pd.Series([0, 1], index=["q", "r"]))
    with pytest.raises(ParameterError, match="needs last_event="):
        pitfall_checks(PIT, now="2024-01-01")
    with pytest.raises(ParameterError, match="a duration needs units"):
        pitfall_checks(PIT, last_event="2024-01-01", max_staleness=2)
    with pytest.raises(ParameterError, match="min_size"):
        pitfall_checks(PIT, min_size=0)
    with pytest.raises(ParameterError, match="leak_auc"):
        pitfall_checks(PIT, leak_auc=0.4)
    with pytest.raises(ParameterError, match="max_overlap"):
        pitfall_checks(PIT, max_overlap=0)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.booleans()), min_size=2, max_size=30).filter(
    lambda rows: len({y for _, y in rows}) == 2))
def test_auc_matches_pair_counting(rows):
    x = np.array([r[0] for r in rows], dtype=float)
    y = np.array([r[1] for r in rows])
    pos, neg = x[y], x[~y]
    oracle = np.mean([1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg])
    assert _auc(x, y) == pytest.approx(oracle)


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

ALERTS = [Alert("warn", "small_segment", "tiny", 3.0, 50.0, "Segment 'tiny' has 3 members"),
          Alert("alert", "feature_drift", "pages", 0.4, 0.25, "Feature 'pages' drifted"),
          Alert("warn", "stale_data", "events", 9e5, 1.7e5, "Old <data> & stuff")]


def test_alerts_frame_orders_by_severity_then_input():
    f = alerts_frame(ALERTS)
    assert f["subject"].tolist() == ["pages", "tiny", "events"]
    assert list(f.columns) == ["level", "check", "subject", "value", "threshold", "message"]
    assert alerts_frame([]).empty and list(alerts_frame([]).columns) == list(f.columns)


def test_alerts_html_is_escaped_coloured_and_self_contained():
    out = alerts_html(ALERTS, title="Checks <run 3>")
    assert out.startswith('<div class="segkit-alerts"') and out.endswith("</div>")
    assert "Checks &lt;run 3&gt;" in out and "Old &lt;data&gt; &amp; stuff" in out and "<data>" not in out
    assert "1 alert, 2 warnings" in out
    assert out.index("ALERT") < out.index("WARN")
    assert "#b71c1c" in out and "#8a5300" in out
    assert "<script" not in out and "<link" not in out and "<style" not in out
    assert "No alerts" in alerts_html([])


def test_alert_validation():
    with pytest.raises(ParameterError, match=r"allowed: \['alert', 'warn'\]"):
        Alert("error", "x", "y", 1.0, 1.0, "m")
    with pytest.raises(ParameterError, match="alerts must be Alert objects"):
        alerts_frame(["not an alert"])


def test_docstring_examples_run():
    result = doctest.testmod(monitoring_module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted >= 20
