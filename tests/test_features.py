import importlib.util
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest

from segkit.errors import ParameterError, SchemaError
from segkit.features import FEATURES, build_user_features, feature_percentiles, feature_registry
from segkit.sessions import session_table, split_sessions

ROOT = Path(__file__).resolve().parents[1]


def _load_baseline():
    spec = importlib.util.spec_from_file_location("baseline_pandas", ROOT / "benchmarks" / "baseline_pandas.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _two_users() -> pd.DataFrame:
    """User a: two sessions (one with heartbeats, one with a purchase); user b: blog reader."""
    rows = [
        # user, time, event, page_type, referrer, device, search_query, scroll_depth, engagement_ms, revenue
        ("a", "2024-01-01T10:00:00", "page_view", "home", "google", "Mobile", None, None, None, None),
        ("a", "2024-01-01T10:00:15", "engagement_time", None, None, "Mobile", None, None, 15000.0, None),
        ("a", "2024-01-01T10:00:30", "engagement_time", None, None, "Mobile", None, None, 15000.0, None),
        ("a", "2024-01-01T10:01:00", "page_view", "product", None, "Mobile", None, None, None, None),
        ("a", "2024-01-01T10:01:10", "product_image_click", None, None, "Mobile", None, None, None, None),
        ("a", "2024-01-01T10:01:20", "review_click", None, None, "Mobile", None, None, None, None),
        ("a", "2024-01-01T10:02:00", "scroll_depth_50", None, None, "Mobile", None, 50.0, None, None),
        ("a", "2024-01-01T10:03:00", "search", None, None, "Mobile", "Red Shoes", None, None, None),
        ("a", "2024-01-01T10:04:00", "add_to_cart", None, None, "Mobile", None, None, None, None),
        ("a", "2024-01-01T10:10:00", "page_view", "cart", None, "Mobile", None, None, None, None),
        ("a", "2024-01-03T09:00:00", "page_view", "product", "email", "Mobile", None, None, None, None),
        ("a", "2024-01-03T09:01:00", "add_to_cart", None, None, "Mobile", None, None, None, None),
        ("a", "2024-01-03T09:02:00", "checkout_start", None, None, "Mobile", None, None, None, None),
        ("a", "2024-01-03T09:03:00", "search", None, None, "Mobile", " red shoes ", None, None, None),
        ("a", "2024-01-03T09:05:00", "purchase", None, None, "Mobile", None, None, None, 120.0),
        ("b", "2024-01-02T12:00:00", "page_view", "blog", "google", "Desktop", None, None, None, None),
        ("b", "2024-01-02T12:00:30", "scroll_depth_100", None, None, "Desktop", None, 100.0, None, None),
        ("b", "2024-01-02T12:01:00", "deep_read", None, None, "Desktop", None, None, None, None),
        ("b", "2024-01-02T12:02:00", "video_play", None, None, "Desktop", None, None, None, None),
        ("b", "2024-01-02T12:03:00", "search", None, None, "Desktop", "Hats", None, None, None),
        ("b", "2024-01-02T12:04:00", "search", None, None, "Desktop", "boots", None, None, None),
        ("b", "2024-01-08T08:00:00", "cart_view", None, None, "Desktop", None, None, None, None),
        ("b", "2024-01-08T08:00:40", "wishlist_add", None, None, "Desktop", None, None, None, None),
    ]
    cols = ["user_id", "timestamp", "event", "page_type", "referrer", "device", "search_query", "scroll_depth",
            "engagement_ms", "revenue"]
    df = pd.DataFrame(rows, columns=cols)
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    for c in ("user_id", "event", "page_type", "referrer", "device", "search_query"):
        df[c] = df[c].astype("string")
    for c in ("scroll_depth", "engagement_ms", "revenue"):
        df[c] = df[c].astype("float64")
    return df


EXPECTED = {
    "a": dict(n_sessions=2, n_events=15, pages_per_session=2.0, total_time_s=900.0, avg_session_s=450.0,
              engaged_time_s=330.0, avg_engaged_s=165.0, bounce_rate=0.5, distinct_content_types=4, active_days=2,
              max_sessions_per_week=2, max_scroll_depth=50.0, avg_max_scroll_depth=25.0, product_views=2,
              category_views=0, blog_views=0, image_clicks=1, review_clicks=1, related_clicks=0, video_plays=0,
              deep_reads=0, searches=2, distinct_search_terms=1, top_search_term="red shoes", wishlist_adds=0,
              add_to_carts=2, cart_views=0, checkout_starts=1, purchases=1, revenue=120.0, avg_order_value=120.0,
              conversion_rate=0.5, cart_sessions=2, abandoned_carts=1, cart_abandonment=0.5, share_mobile=1.0,
              share_desktop=0.0, share_tablet=0.0, share_other=0.0, primary_device="Mobile",
              primary_referrer="email", visits_per_week=2.0, r_score=1, f_score=5, m_score=5, rfm_score=11),
    "b": dict(n_sessions=2, n_events=8, pages_per_session=0.5, total_time_s=280.0, avg_session_s=140.0,
              engaged_time_s=280.0, avg_engaged_s=140.0, bounce_rate=0.5, distinct_content_types=3, active_days=2,
              max_sessions_per_week=1, max_scroll_depth=100.0, avg_max_scroll_depth=50.0, product_views=0,
              blog_views=1, video_plays=1, deep_reads=1, searches=2, distinct_search_terms=2,
              top_search_term="boots", wishlist_adds=1, add_to_carts=0, cart_views=1, purchases=0, revenue=0.0,
              avg_order_value=np.nan, conversion_rate=0.0, cart_sessions=0, abandoned_carts=0,
              cart_abandonment=np.nan, share_desktop=1.0, share_mobile=0.0, primary_device="Desktop",
              primary_referrer="google", recency_days=0.0, visits_per_week=2.0, r_score=5, f_score=1, m_score=1,
              rfm_score=7),
}


@pytest.fixture(scope="module")
def sessionized():
    return split_sessions(_two_users())


@pytest.fixture(scope="module")
def users(sessionized):
    return build_user_features(sessionized).set_index("user_id")


@pytest.mark.parametrize("user", ["a", "b"])
def test_user_features_by_hand(users, user):
    row = users.loc[user]
    for name, want in EXPECTED[user].items():
        got = row[name]
        if isinstance(want, float) and np.isnan(want):
            assert pd.isna(got), name
        elif isinstance(want, float):
            assert got == pytest.approx(want), name
        else:
            assert got == want, name


def test_recency_and_tenure_in_days_from_the_last_event(users):
    as_of = pd.Timestamp("2024-01-08T08:00:40", tz="UTC")
    assert users.loc["a", "recency_days"] == pytest.approx((as_of - pd.Timestamp("2024-01-03T09:05", tz="UTC")) / pd.Timedelta("1D"))
    assert users.loc["a", "tenure_days"] == pytest.approx((as_of - pd.Timestamp("2024-01-01T10:00", tz="UTC")) / pd.Timedelta("1D"))


def test_output_columns_follow_the_registry(users):
    user_features = [f.name for f in FEATURES if f.level == "user" and f.stage != "crm"]
    assert list(users.columns) == ["first_seen", "last_seen", *user_features]


def test_as_of_ignores_later_events(sessionized):
    u = build_user_features(sessionized, as_of="2024-01-02", features=["n_sessions", "purchases", "recency_days"])
    u = u.set_index("user_id")
    assert u.loc["a", "n_sessions"] == 1 and u.loc["a", "purchases"] == 0
    assert "b" not in u.index
    assert u.loc["a", "recency_days"] == pytest.approx((pd.Timestamp("2024-01-02", tz="UTC")
                                                        - pd.Timestamp("2024-01-01T10:10", tz="UTC")) / pd.Timedelta("1D"))


def test_feature_subset_and_dependencies(sessionized):
    u = build_user_features(sessionized, features=["cart_abandonment"])
    assert list(u.columns) == ["user_id", "first_seen", "last_seen", "cart_sessions", "abandoned_carts",
                               "cart_abandonment"]


def test_reusing_a_session_table_gives_the_same_features(sessionized, users):
    s = session_table(sessionized)
    again = build_user_features(sessionized, sessions=s).set_index("user_id")
    pd.testing.assert_frame_equal(again, users)


def test_crm_left_join():
    ev = split_sessions(_two_users())
    crm = pd.DataFrame({"customer_id": ["a", "zzz"], "lifetime_value": [500.0, 10.0], "is_vip": [True, False],
                        "signup_date": ["2023-01-01", "2023-02-01"]})
    u = build_user_features(ev, crm=crm, features=["n_sessions", "lifetime_value", "is_vip", "has_crm"])
    u = u.set_index("user_id")
    assert u.loc["a", ["lifetime_value", "is_vip", "has_crm"]].tolist() == [500.0, True, True]
    assert pd.isna(u.loc["b", "lifetime_value"]) and not u.loc["b", "is_vip"] and not u.loc["b", "has_crm"]
    assert len(u) == 2


def test_crm_features_are_included_by_default_when_crm_is_given(sessionized):
    crm = pd.DataFrame({"customer_id": [1], "lifetime_value": [1.0], "is_vip": [0]})  # int keys match as strings
    expr = build_user_features(sessionized, crm=crm, output="ibis")
    assert list(expr.columns[-3:]) == ["lifetime_value", "is_vip", "has_crm"]
    assert "lifetime_value" not in build_user_features(sessionized, output="ibis").columns


def test_missing_device_column_gives_nan_shares():
    ev = split_sessions(_two_users().drop(columns=["device"]))
    u = build_user_features(ev, features=["share_mobile", "primary_device"])
    assert u["share_mobile"].isna().all() and u["primary_device"].isna().all()


def test_missing_search_query_gives_null_search_features():
    ev = split_sessions(_two_users().drop(columns=["search_query"]))
    u = build_user_features(ev, features=["searches", "distinct_search_terms", "top_search_term"])
    assert u["searches"].tolist() == [2, 2]
    assert u[["distinct_search_terms", "top_search_term"]].isna().all(axis=None)


def test_parquet_input_and_ibis_output(tmp_path, users):
    path = tmp_path / "sessions.parquet"
    split_sessions(_two_users()).to_parquet(path)
    some = ["n_sessions", "engaged_time_s", "top_search_term", "primary_referrer", "rfm_score"]
    from_path = build_user_features(str(path), features=some).set_index("user_id")
    pd.testing.assert_frame_equal(from_path, users[from_path.columns], check_dtype=False)
    assert isinstance(build_user_features(path, output="ibis"), ibis.Table)


def test_inputs_are_not_mutated():
    ev = split_sessions(_two_users())
    crm = pd.DataFrame({"customer_id": ["a"], "lifetime_value": [1.0], "is_vip": [True]})
    before, crm_before = ev.copy(), crm.copy()
    build_user_features(ev, crm=crm, features=["n_sessions", "is_vip"])
    session_table(ev, features=["n_pages"])
    pd.testing.assert_frame_equal(ev, before)
    pd.testing.assert_frame_equal(crm, crm_before)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"features": ["pages_per_sesion"]}, ParameterError, r"did you mean 'pages_per_session'"),
        ({"features": ["n_pages"]}, ParameterError, r"'n_pages' is a session-level feature"),
        ({"features": "n_sessions"}, ParameterError, r"a list of feature names"),
        ({"features": ["is_vip"]}, ParameterError, r"comes from the CRM table"),
        ({"crm_key_col": "id"}, ParameterError, r"no crm table was given"),
        ({"as_of": "not a date"}, ParameterError, r"'as_of' got 'not a date'"),
        ({"as_of": "2024-01-02", "sessions": pd.DataFrame()}, ParameterError, r"cannot reuse a precomputed session"),
        ({"output": "dict"}, ParameterError, r"allowed"),
        ({"crm": pd.DataFrame({"customer_id": ["a"], "ltv": [1.0], "is_vip": [True]})}, SchemaError,
         r"'lifetime_value' not found in CRM table"),
        ({"crm": pd.DataFrame({"customer_id": ["a", "a"], "lifetime_value": [1.0, 2.0], "is_vip": [True, True]})},
         SchemaError, r"must be unique"),
        ({"sessions": pd.DataFrame({"user_id": ["a"]})}, SchemaError, r"'session_id' not found in session table"),
    ],
)
def test_build_user_features_errors(sessionized, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        build_user_features(sessionized, **kwargs)


def test_user_features_need_sessions():
    with pytest.raises(SchemaError, match=r"split_sessions first"):
        build_user_features(_two_users())


# --- registry ---------------------------------------------------------------------------------

def test_registry_lists_every_feature_once_per_level():
    reg = feature_registry()
    assert list(reg.columns) == ["name", "level", "unit", "definition"]
    assert not reg.duplicated(["name", "level"]).any()
    assert set(reg["level"]) == {"session", "user"}
    assert reg["definition"].str.endswith(".").all()
    units = {"count", "s", "days", "percent", "share", "currency", "flag", "label", "per week", "score"}
    assert set(reg["unit"]) <= units
    assert len(feature_registry("user")) == (reg["level"] == "user").sum()


def test_registry_level_is_validated():
    with pytest.raises(ParameterError, match=r"'level' got 'users'"):
        feature_registry("users")


def test_registry_matches_session_table_columns(sessionized):
    s = session_table(sessionized)
    assert list(s.columns) == ["user_id", "session_id", "session_index", "start", "end",
                               *feature_registry("session")["name"]]


# --- percentiles ------------------------------------------------------------------------------

def test_percentiles_match_numpy():
    rng = np.random.default_rng(0)
    uf = pd.DataFrame({"user_id": range(101), "pages_per_session": rng.gamma(2, 2, 101),
                       "revenue": np.r_[np.nan, rng.gamma(1, 50, 100)], "primary_device": "Mobile"})
    got = feature_percentiles(uf, percentiles=(0.5, 0.9, 0.999))
    assert list(got.columns) == ["unit", "count", "p50", "p90", "p99.9"]
    assert list(got.index) == ["pages_per_session", "revenue"]
    assert got.loc["pages_per_session", "p90"] == pytest.approx(np.quantile(uf["pages_per_session"], 0.9))
    assert got.loc["revenue", "p50"] == pytest.approx(np.nanquantile(uf["revenue"], 0.5))
    assert got.loc["revenue", "count"] == 100 and got.loc["revenue", "unit"] == "currency"


def test_percentiles_need_a_numeric_feature():
    with pytest.raises(ParameterError, match=r"No numeric registered feature"):
        feature_percentiles(pd.DataFrame({"user_id": ["a"], "primary_device": ["Mobile"]}))


def test_percentiles_of_real_user_features(users):
    pct = feature_percentiles(users, features=["n_sessions", "pages_per_session"])
    assert pct.loc["pages_per_session", "p50"] == pytest.approx(1.25)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"percentiles": (90,)}, ParameterError, r"strictly between 0 and 1 \(0.9, not 90\)"),
        ({"percentiles": ()}, ParameterError, r"non-empty"),
        ({"percentiles": "0.5"}, ParameterError, r"a list of numbers"),
        ({"features": ["primary_device"]}, ParameterError, r"'primary_device' is not numeric"),
        ({"features": ["pages"]}, SchemaError, r"'pages' not found in feature table"),
        ({"features": "n_sessions"}, ParameterError, r"a list of column names"),
    ],
)
def test_percentile_errors(users, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        feature_percentiles(users.reset_index(), **kwargs)


# --- the pandas baseline ----------------------------------------------------------------------

def test_pandas_baseline_agrees_with_segkit():
    base = _load_baseline()
    ev = base.synthetic_events(6_000, 150, n_days=14, seed=3)
    sessions_pd, users_pd = base.pandas_sessions_and_features(ev, timeout="30m")
    sess = split_sessions(ev)
    users_sk = build_user_features(sess).set_index("user_id").sort_index()
    users_pd = users_pd.set_index("user_id").sort_index()
    assert len(sessions_pd) == len(session_table(sess))
    for col in ["n_sessions", "n_events", "product_views", "add_to_carts", "purchases", "cart_sessions",
                "abandoned_carts", "distinct_content_types", "active_days", "distinct_search_terms"]:
        pd.testing.assert_series_equal(users_sk[col], users_pd[col], check_dtype=False, check_names=False,
                                       check_index_type=False)
    for col in ["pages_per_session", "total_time_s", "engaged_time_s", "revenue", "avg_max_scroll_depth",
                "share_mobile", "cart_abandonment", "recency_days", "visits_per_week"]:
        np.testing.assert_allclose(users_sk[col].to_numpy(float), users_pd[col].to_numpy(float), rtol=1e-9,
                                   err_msg=col)


@pytest.mark.parametrize("base", ["1969-12-31 23:00", "2024-01-01 10:00"])
def test_first_and_last_values_break_ties_in_time_by_input_row(base):
    # DuckDB orders (time, row) as one 128-bit integer: times before 1970 and row numbers past
    # 2**32 must order exactly as the pair does
    from segkit.engine import ROW_COL

    t0 = pd.Timestamp(base, tz="UTC")
    ts = [t0, t0, t0 + pd.Timedelta("1min"), t0 + pd.Timedelta("1min")]
    ev = pd.DataFrame({
        "user_id": ["a"] * 4, "event": ["page_view"] * 4, "timestamp": ts,
        "page_type": ["home", "search", "product", "cart"], "referrer": ["x.com", "y.com", "z.com", "w.com"],
        ROW_COL: np.array([2**40 + 7, 2**40 + 3, 5, 2**33], dtype="int64"),
    })
    s = session_table(split_sessions(ibis.memtable(ev), output="ibis"), features=["entry_page_type", "exit_page_type", "referrer"])
    got = s.iloc[0]
    assert (got["entry_page_type"], got["exit_page_type"], got["referrer"]) == ("search", "cart", "y.com")
    reordered = ev.assign(**{ROW_COL: np.array([3, 2**40, 2**41, 7], dtype="int64")})  # the other of each tie first
    got = session_table(split_sessions(ibis.memtable(reordered), output="ibis"), features=["entry_page_type", "exit_page_type", "referrer"]).iloc[0]
    assert (got["entry_page_type"], got["exit_page_type"], got["referrer"]) == ("home", "product", "x.com")
