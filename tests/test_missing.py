"""Tests of segkit.missing: the missing-value report, policy parsing and imputation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segkit.errors import ParameterError, SchemaError
from segkit.missing import (
    DropPolicy,
    FillPolicy,
    ImputeResult,
    MeanPolicy,
    MedianPolicy,
    ModelPolicy,
    ModePolicy,
    impute_missing,
    is_missing,
    missing_report,
    parse_policies,
    parse_policy,
)


def _events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["u1", "u2", None, "u4", "u5"],
            "device": ["Mobile", None, "Desktop", "  ", "Mobile"],
            "engagement_ms": [100.0, np.nan, 300.0, 500.0, None],
            "status": pd.array([200, None, 404, 200, 200], dtype="Int64"),
        },
        index=[10, 11, 12, 13, 14],
    )


# --------------------------------------------------------------------------------------------
# is_missing / missing_report
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [object, "string", "str"])
def test_is_missing_counts_null_empty_and_whitespace_strings(dtype):
    s = pd.Series(["a", "", "  \t", None, "b "], dtype=dtype)
    assert is_missing(s).tolist() == [False, True, True, True, False]


def test_is_missing_on_numbers_and_categoricals():
    assert is_missing(pd.Series([1.0, np.nan, 0.0])).tolist() == [False, True, False]
    assert is_missing(pd.Series(["a", None, " "], dtype="category")).tolist() == [False, True, True]


def test_missing_report_counts_shares_and_examples():
    rep = missing_report(_events()).set_index("column")
    assert rep.loc["device", "n_missing"] == 2
    assert rep.loc["device", "share_missing"] == pytest.approx(0.4)
    assert rep.loc["device", "n_unique"] == 2
    assert rep.loc["device", "examples"] == ["Mobile", "Desktop"]
    assert rep.loc["device", "missing_rows"] == [11, 13]
    assert rep.loc["engagement_ms", "missing_rows"] == [11, 14]
    assert rep.loc["status", "dtype"] == "Int64"
    assert rep.loc["user_id", "examples"] == ["u1", "u2", "u4"]
    assert list(rep.columns) == ["dtype", "n_missing", "share_missing", "n_unique", "examples", "missing_rows"]


def test_missing_report_limits_example_rows_to_five():
    ev = pd.DataFrame({"x": [None] * 9})
    rep = missing_report(ev)
    assert rep.loc[0, "missing_rows"] == [0, 1, 2, 3, 4]
    assert rep.loc[0, "examples"] == [] and rep.loc[0, "n_unique"] == 0


def test_missing_report_on_selected_columns_in_order():
    rep = missing_report(_events(), columns=["status", "device"])
    assert rep["column"].tolist() == ["status", "device"]


def test_missing_report_unknown_column_has_a_hint():
    with pytest.raises(SchemaError, match=r"Column 'devices' not found.*did you mean 'device'"):
        missing_report(_events(), columns=["devices"])


def test_missing_report_on_an_empty_frame():
    rep = missing_report(pd.DataFrame({"a": pd.Series([], dtype=float)}))
    assert rep.loc[0, "n_missing"] == 0 and rep.loc[0, "share_missing"] == 0.0


def test_missing_report_does_not_change_its_input():
    ev = _events()
    before = ev.copy()
    missing_report(ev)
    pd.testing.assert_frame_equal(ev, before)


# --------------------------------------------------------------------------------------------
# policy parsing
# --------------------------------------------------------------------------------------------


def test_parse_policy_plain_forms():
    assert parse_policy("drop") == DropPolicy()
    assert parse_policy(" Mode ") == ModePolicy()
    assert parse_policy("median") == MedianPolicy()
    assert parse_policy("mean") == MeanPolicy()
    assert parse_policy({"fill": 0}) == FillPolicy(0)
    model = parse_policy({"model": {"features": ["os", "browser"], "estimator": "knn", "n_neighbors": 3}})
    assert model == ModelPolicy(features=("os", "browser"), estimator="knn", n_neighbors=3)
    assert parse_policy(model) is model


def test_parsed_policies_are_frozen():
    with pytest.raises(AttributeError):
        parse_policy({"fill": 1}).value = 2  # type: ignore[misc]


def test_unknown_policy_name_suggests_the_closest():
    with pytest.raises(ParameterError, match=r"'policies.x' got 'medain'.*did you mean 'median'"):
        parse_policies({"x": "medain"})


def test_unknown_policy_key_suggests_the_closest():
    with pytest.raises(ParameterError, match=r"unknown policy 'fil'.*did you mean 'fill'"):
        parse_policy({"fil": 0}, name="policies.x")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("fill", r"'fill' needs a value"),
        ("model", r"'model' needs options"),
        ({"fill": None}, "must not be missing"),
        ({"fill": 1, "model": {}}, "exactly one key"),
        ({"mode": {}}, "takes no options"),
        (3, "a policy is a name"),
        ({"model": ["os"]}, "takes a mapping"),
        ({"model": {"features": []}}, r"features.*non-empty list"),
        ({"model": {"features": "os"}}, r"features.*non-empty list"),
        ({"model": {"features": ["os"], "estimator": "svm"}}, r"estimator' got 'svm'"),
        ({"model": {"features": ["os"], "n_neighbours": 3}}, r"n_neighbours.*did you mean 'n_neighbors'"),
        ({"model": {"features": ["os"], "n_neighbors": 3}}, r"n_neighbors is set but estimator is 'random_forest'"),
        ({"model": {"features": ["os"], "estimator": "knn", "n_estimators": 3}}, r"n_estimators is set but estimator is 'knn'"),
        ({"model": {"features": ["os"], "random_state": -1}}, r"random_state' got -1"),
    ],
)
def test_malformed_policies_are_rejected(spec, message):
    with pytest.raises(ParameterError, match=message):
        parse_policy(spec, name="policies.device")


def test_policies_must_be_a_mapping():
    with pytest.raises(ParameterError, match="'policies'"):
        parse_policies(["drop"])  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# imputing
# --------------------------------------------------------------------------------------------


def test_fill_replaces_null_and_blank_strings():
    res = impute_missing(_events(), {"device": {"fill": "Other"}})
    assert res.events["device"].tolist() == ["Mobile", "Other", "Desktop", "Other", "Mobile"]
    assert res.report.to_dict("records") == [{"column": "device", "policy": "fill", "rows_touched": 2, "value": "Other"}]


def test_median_mean_and_mode():
    res = impute_missing(_events(), {"engagement_ms": "median", "device": "mode", "status": "mean"})
    assert res.events["engagement_ms"].tolist() == [100.0, 300.0, 300.0, 500.0, 300.0]
    assert res.events["device"].tolist() == ["Mobile", "Mobile", "Desktop", "Mobile", "Mobile"]
    assert res.events["status"].dtype == "Int64"
    assert res.events["status"].tolist() == [200, 251, 404, 200, 200]  # mean 251 rounded for an integer column
    assert res.report.set_index("column")["value"].to_dict() == {"engagement_ms": 300.0, "device": "Mobile", "status": 251}


def test_mode_ties_take_the_smallest_value():
    res = impute_missing(pd.DataFrame({"c": ["b", "a", None]}), {"c": "mode"})
    assert res.events["c"].tolist() == ["b", "a", "a"]


def test_integer_median_is_rounded_and_keeps_the_dtype():
    ev = pd.DataFrame({"n": pd.array([1, 2, None], dtype="Int64")})
    res = impute_missing(ev, {"n": "median"})
    assert res.events["n"].dtype == "Int64" and res.events["n"].tolist() == [1, 2, 2]


def test_drop_removes_rows_with_a_reason_and_keeps_the_count():
    ev = _events()
    res = impute_missing(ev, {"engagement_ms": "drop", "user_id": "drop", "device": {"fill": "Other"}})
    assert res.dropped.index.tolist() == [11, 12, 14]
    assert res.dropped["reason"].tolist() == ["missing_engagement_ms", "missing_user_id", "missing_engagement_ms"]
    assert len(ev) == len(res.events) + len(res.dropped)
    assert res.events.index.tolist() == [10, 13]
    assert res.events["device"].tolist() == ["Mobile", "Other"]
    touched = res.report.set_index("column")["rows_touched"].to_dict()
    assert touched == {"engagement_ms": 2, "user_id": 1, "device": 1}


def test_statistics_come_from_the_rows_that_survive_drops():
    ev = pd.DataFrame({"k": ["a", None, "b", "c"], "x": [1.0, 100.0, None, 3.0]})
    res = impute_missing(ev, {"k": "drop", "x": "median"})
    assert res.events["x"].tolist() == [1.0, 2.0, 3.0]


def test_policy_order_does_not_matter():
    ev = pd.DataFrame({"a": [1.0, None, 3.0, 5.0], "b": ["x", "y", None, "y"]})
    one = impute_missing(ev, {"a": "mean", "b": {"model": {"features": ["a"], "n_estimators": 5}}})
    two = impute_missing(ev, {"b": {"model": {"features": ["a"], "n_estimators": 5}}, "a": "mean"})
    pd.testing.assert_frame_equal(one.events, two.events)


def test_impute_does_not_change_its_input():
    ev = _events()
    before = ev.copy()
    impute_missing(ev, {"device": "mode", "engagement_ms": "median", "user_id": "drop"})
    pd.testing.assert_frame_equal(ev, before)


def test_result_is_a_frozen_dataclass():
    res = impute_missing(_events(), {})
    assert isinstance(res, ImputeResult)
    with pytest.raises(AttributeError):
        res.events = None  # type: ignore[misc]
    assert res.dropped.empty and "reason" in res.dropped.columns and res.report.empty


def test_unknown_column_is_a_schema_error_with_a_hint():
    with pytest.raises(SchemaError, match=r"Column 'devise' not found.*did you mean 'device'"):
        impute_missing(_events(), {"devise": "mode"})


def test_median_on_text_is_rejected():
    with pytest.raises(ParameterError, match=r"'median' needs a numeric column, but 'device' is text"):
        impute_missing(_events(), {"device": "median"})


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("engagement_ms", "zero", "expected a number"),
        ("engagement_ms", True, "expected a number"),
        ("status", 1.5, "expected a whole number"),
        ("device", 0, "expected a string"),
        ("device", "  ", "expected a non-blank string"),
    ],
)
def test_fill_value_of_the_wrong_type_is_rejected(column, value, expected):
    with pytest.raises(ParameterError, match=rf"'policies.{column}.fill' got .*{expected}"):
        impute_missing(_events(), {column: {"fill": value}})


def test_fill_on_datetime_and_categorical_columns():
    ts = pd.Series(pd.to_datetime(["2024-01-01", None], utc=True))
    ev = pd.DataFrame({"t": ts, "c": pd.Series(["a", None], dtype="category")})
    res = impute_missing(ev, {"t": {"fill": "2024-02-01T00:00:00Z"}, "c": {"fill": "new"}})
    assert res.events["t"].iloc[1] == pd.Timestamp("2024-02-01", tz="UTC")
    assert res.events["c"].tolist() == ["a", "new"]
    with pytest.raises(ParameterError, match="time-zone-aware"):
        impute_missing(ev, {"t": {"fill": "2024-02-01"}})


def test_statistic_of_an_all_missing_column_is_an_error():
    with pytest.raises(ParameterError, match=r"Cannot compute the median of column 'x'"):
        impute_missing(pd.DataFrame({"x": [np.nan, np.nan]}), {"x": "median"})


def _device_log(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    os_ = rng.choice(["iOS", "Android", "Windows", "Mac OS X"], n)
    device = np.where(np.isin(os_, ["iOS", "Android"]), "Mobile", "Desktop").astype(object)
    hidden = rng.random(n) < 0.2
    truth = device.copy()
    device[hidden] = None
    return pd.DataFrame({"os": os_, "screen": np.where(truth == "Mobile", 400.0, 1900.0), "device": device}), truth, hidden


@pytest.mark.parametrize("estimator", ["random_forest", "knn"])
def test_model_predicts_a_categorical_column_from_features(estimator):
    ev, truth, hidden = _device_log()
    res = impute_missing(ev, {"device": {"model": {"features": ["os"], "estimator": estimator, "random_state": 0}}})
    assert res.events["device"].tolist() == truth.tolist()
    row = res.report.iloc[0]
    assert row["rows_touched"] == hidden.sum() and row["value"] == f"{estimator}(features=['os'])"


def test_model_predicts_a_numeric_column_and_is_reproducible():
    ev, _, _ = _device_log()
    ev.loc[ev.index[:10], "screen"] = np.nan
    spec = {"screen": {"model": {"features": ["os"], "random_state": 3, "n_estimators": 20}}}
    first = impute_missing(ev, spec).events["screen"]
    second = impute_missing(ev, spec).events["screen"]
    pd.testing.assert_series_equal(first, second)
    expected = np.where(np.isin(ev["os"].iloc[:10], ["iOS", "Android"]), 400.0, 1900.0)
    np.testing.assert_allclose(first.iloc[:10], expected, rtol=0.05)


def test_model_features_must_exist_and_exclude_the_target():
    ev, _, _ = _device_log(20)
    with pytest.raises(SchemaError, match=r"'oss' not found.*did you mean 'os'"):
        impute_missing(ev, {"device": {"model": {"features": ["oss"]}}})
    with pytest.raises(ParameterError, match="cannot be a feature of its own model"):
        impute_missing(ev, {"device": {"model": {"features": ["device", "os"]}}})


def test_model_without_training_rows_is_an_error():
    ev = pd.DataFrame({"os": ["iOS", "Android"], "device": [None, None]})
    with pytest.raises(ParameterError, match="no non-missing values"):
        impute_missing(ev, {"device": {"model": {"features": ["os"]}}})


_cell = st.one_of(st.none(), st.sampled_from(["a", "b", " "]))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    keys=st.lists(_cell, min_size=0, max_size=15),
    data=st.data(),
)
def test_row_count_invariant_and_no_missing_left(keys, data):
    n = len(keys)
    vals = data.draw(st.lists(st.one_of(st.none(), st.floats(0, 10)), min_size=n, max_size=n))
    ev = pd.DataFrame({"k": pd.Series(keys, dtype=object), "v": pd.Series(vals, dtype="float64")})
    policies = {"k": "drop", "v": {"fill": -1.0}}
    res = impute_missing(ev, policies)
    assert len(ev) == len(res.events) + len(res.dropped)
    assert not is_missing(res.events["k"]).any() and not res.events["v"].isna().any()
    assert sorted(res.events.index.tolist() + res.dropped.index.tolist()) == list(range(n))
