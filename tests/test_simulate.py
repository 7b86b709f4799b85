"""Tests for segkit.simulate: the simulated shop and the truth planted in it."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from segkit.errors import ParameterError
from segkit.schema import CANONICAL_COLUMNS
from segkit.simulate import (
    CANONICAL_RAW_EVENTS,
    COLUMN_MAP,
    PAGE_TYPES,
    PERSONAS,
    RAW_EVENT_ALIASES,
    TIME_FORMATS,
    UNKNOWN_RAW_EVENTS,
    simulate_shop,
)

RAW_COLUMNS = [
    "visitor_id", "event_time", "event_name", "page_url", "page_type", "product_id", "product_category", "price",
    "revenue", "search_term", "scroll_pct", "engagement_ms", "device", "user_agent", "ip", "referrer",
]
BOT_TOKENS = re.compile(r"bot|python-requests|curl", re.IGNORECASE)
FORMAT_PATTERNS = {
    "iso_z": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z",
    "iso_offset": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d",
    "epoch_ms": r"\d{13}",
    "epoch_s": r"\d{10}",
    "naive_local": r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d",
}


@pytest.fixture(scope="module")
def shop():
    return simulate_shop(800, n_days=28, seed=7)


@pytest.fixture(scope="module")
def clean():
    return simulate_shop(800, n_days=28, seed=7, dirt=False)


def _users(shop, **where):
    tr = shop.truth
    mask = np.ones(len(tr), dtype=bool)
    for col, value in where.items():
        mask &= (tr[col] == value).to_numpy()
    return set(tr.loc[mask, "user_id"])


def _canonical(events: pd.DataFrame) -> pd.Series:
    return events["event_name"].replace(RAW_EVENT_ALIASES)


def _parse(strings: pd.Series, fmt: str, tz: str) -> pd.Series:
    if fmt in ("iso_z", "iso_offset"):
        return pd.to_datetime(strings, format="ISO8601", utc=True)
    if fmt == "epoch_ms":
        return pd.to_datetime(strings.astype("int64"), unit="ms", utc=True)
    if fmt == "epoch_s":
        return pd.to_datetime(strings.astype("int64"), unit="s", utc=True)
    return pd.to_datetime(strings, format="%Y-%m-%d %H:%M:%S").dt.tz_localize(tz).dt.tz_convert("UTC")


# ---------------------------------------------------------------- shape and contracts


def test_columns_and_dtypes(shop):
    ev = shop.events
    assert list(ev.columns) == RAW_COLUMNS
    for col in ("price", "revenue", "scroll_pct", "engagement_ms"):
        assert ev[col].dtype == np.float64
    for col in set(RAW_COLUMNS) - {"price", "revenue", "scroll_pct", "engagement_ms"}:
        assert pd.api.types.is_string_dtype(ev[col]), col
    assert ev["visitor_id"].notna().all() and ev["event_name"].notna().all()


def test_column_map_targets_canonical_schema(shop):
    assert shop.column_map == COLUMN_MAP
    assert list(shop.column_map) == RAW_COLUMNS
    renamed = shop.events.rename(columns=shop.column_map)
    assert set(renamed.columns) <= set(CANONICAL_COLUMNS)
    assert {"user_id", "timestamp", "event"} <= set(renamed.columns)


def test_params_and_timezone(shop):
    assert shop.timezone == "Europe/Berlin"
    assert shop.params["n_users"] == 800 and shop.params["seed"] == 7 and shop.params["dirt"] is True
    assert sum(shop.params["persona_weights"].values()) == pytest.approx(1.0)


def test_params_reproduce_the_shop():
    a = simulate_shop(150, n_days=7, seed=9, persona_weights={"researcher": 1, "loyal_repeat": 1})
    pd.testing.assert_frame_equal(simulate_shop(**a.params).events, a.events)


def test_truth_events_aligned(shop):
    te = shop.truth_events
    assert len(te) == len(shop.events)
    assert str(te["timestamp"].dt.tz) == "UTC"
    assert set(te.loc[te["noise"], "event"]) <= set(UNKNOWN_RAW_EVENTS)
    assert set(te.loc[~te["noise"], "event"]) <= set(CANONICAL_RAW_EVENTS)
    assert (te["event"] == _canonical(shop.events).where(~te["noise"], shop.events["event_name"])).all()


# ---------------------------------------------------------------- determinism


def test_same_arguments_same_frames():
    a = simulate_shop(300, n_days=14, seed=11)
    b = simulate_shop(300, n_days=14, seed=11)
    pd.testing.assert_frame_equal(a.events, b.events)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    pd.testing.assert_frame_equal(a.crm, b.crm)
    pd.testing.assert_frame_equal(a.truth_events, b.truth_events)


def test_different_seeds_differ():
    a = simulate_shop(300, n_days=14, seed=1)
    b = simulate_shop(300, n_days=14, seed=2)
    assert not a.events.head(200).equals(b.events.head(200))
    assert set(a.truth["user_id"]).isdisjoint(set(b.truth["user_id"]))


def test_dirt_does_not_change_behaviour(shop, clean):
    pd.testing.assert_frame_equal(shop.truth, clean.truth)
    pd.testing.assert_frame_equal(shop.crm, clean.crm)


# ---------------------------------------------------------------- visitors


def test_persona_mix_follows_weights(shop):
    tr = shop.truth
    humans = tr[~tr["is_bot"]]
    assert set(humans["persona"]) == set(PERSONAS)
    share = humans["persona"].value_counts(normalize=True)
    assert share["content_reader"] == pytest.approx(0.25, abs=0.01)
    assert share["loyal_repeat"] == pytest.approx(0.10, abs=0.01)


def test_persona_weights_argument():
    shop = simulate_shop(200, n_days=7, seed=0, bot_share=0, persona_weights={"researcher": 3, "content_reader": 1})
    counts = shop.truth["persona"].value_counts()
    assert counts.to_dict() == {"researcher": 150, "content_reader": 50}


def test_bot_share_and_kinds(shop):
    tr = shop.truth
    assert tr["is_bot"].sum() == 40
    assert set(tr.loc[tr["is_bot"], "bot_kind"]) == {"crawler", "headless"}
    assert tr.loc[~tr["is_bot"], "bot_kind"].isna().all()
    assert (tr.loc[tr["is_bot"], "persona"] == "bot").all()
    none = simulate_shop(100, n_days=7, seed=0, bot_share=0)
    assert not none.truth["is_bot"].any()


def test_every_visitor_has_events(shop):
    assert set(shop.events["visitor_id"]) == set(shop.truth["user_id"])
    assert (shop.truth["n_sessions"] >= 1).all()


def test_crm(shop):
    crm, tr = shop.crm, shop.truth.set_index("user_id")
    assert list(crm.columns) == ["customer_id", "lifetime_value", "is_vip", "signup_date"]
    assert crm["customer_id"].is_unique
    assert not tr.loc[crm["customer_id"], "is_bot"].any()
    assert 0.5 < len(crm) / (~tr["is_bot"]).sum() < 0.7
    assert crm["is_vip"].mean() == pytest.approx(0.05, abs=0.01)
    assert crm.loc[crm["is_vip"], "lifetime_value"].min() >= crm.loc[~crm["is_vip"], "lifetime_value"].max()
    ltv = crm.groupby(tr.loc[crm["customer_id"], "persona"].to_numpy())["lifetime_value"].median()
    assert ltv.idxmax() == "loyal_repeat"
    assert crm["signup_date"].str.fullmatch(r"\d{4}-\d\d-\d\d").all()


# ---------------------------------------------------------------- planted dirt


def test_every_time_format_appears_and_looks_right(shop):
    te, ev = shop.truth_events, shop.events
    assert set(te["time_format"]) == set(TIME_FORMATS)
    for fmt, pattern in FORMAT_PATTERNS.items():
        strings = ev.loc[te["time_format"] == fmt, "event_time"]
        assert strings.str.fullmatch(pattern).all(), fmt
    bad = ev.loc[te["time_format"] == "unparseable", "event_time"]
    assert 0 < len(bad) < 0.005 * len(ev)
    assert set(bad.fillna("")) <= {"", "not-a-date", "0000-00-00 00:00:00"}


def test_all_formats_denote_the_true_instant(shop):
    te, ev = shop.truth_events, shop.events
    for fmt in FORMAT_PATTERNS:
        mask = te["time_format"] == fmt
        parsed = _parse(ev.loc[mask, "event_time"], fmt, shop.timezone)
        assert (parsed.to_numpy() == te.loc[mask, "timestamp"].to_numpy()).all(), fmt


def test_instants_survive_dst_changes():
    shop = simulate_shop(200, n_days=14, start="2024-10-27", timezone="America/New_York", seed=2)
    te, ev = shop.truth_events, shop.events
    offsets = set(ev.loc[te["time_format"] == "iso_offset", "event_time"].str[-6:])
    assert offsets == {"-04:00", "-05:00"}
    for fmt in FORMAT_PATTERNS:
        mask = te["time_format"] == fmt
        parsed = _parse(ev.loc[mask, "event_time"], fmt, shop.timezone)
        assert (parsed.to_numpy() == te.loc[mask, "timestamp"].to_numpy()).all(), fmt


def test_duplicates_planted(shop):
    ev, te = shop.events, shop.truth_events
    n_exact = (te["duplicate"] == "exact").sum()
    assert n_exact == pytest.approx(0.005 * len(ev), rel=0.05)
    assert ev.duplicated().sum() >= n_exact
    near = te["duplicate"] == "near"
    assert near.sum() == pytest.approx(0.003 * len(ev), rel=0.2)
    # each near duplicate has a twin: same visitor and event, less than a second earlier
    key = ev[["visitor_id", "event_name", "page_url"]].assign(t=te["timestamp"])
    originals = key[te["duplicate"].isna()]
    twins = key[near].merge(originals, on=["visitor_id", "event_name", "page_url"], suffixes=("", "_orig"))
    delta = (twins["t"] - twins["t_orig"]).dt.total_seconds()
    twins = twins[(delta > 0) & (delta < 1)]
    assert twins.drop_duplicates(["visitor_id", "event_name", "page_url", "t"]).shape[0] == near.sum()


def test_rows_lightly_shuffled(shop, clean):
    ts = shop.truth_events["timestamp"]
    assert not ts.is_monotonic_increasing
    assert (ts.diff().dt.total_seconds().fillna(0) < 0).mean() < 0.5
    assert clean.truth_events["timestamp"].is_monotonic_increasing


def test_device_labels_are_inconsistent(shop):
    dev = shop.events["device"]
    assert {"iPhone", "android", "Android", "Desktop", "desktop", "PC", "Mobile", "mobile", "iPad", "tablet",
            "Tablet"} <= set(dev.dropna())
    assert dev.isna().mean() == pytest.approx(0.05, abs=0.01)


def test_missing_fields(shop):
    ev = shop.events
    assert 0.01 < ev["user_agent"].isna().mean() < 0.04
    assert ev["referrer"].isna().mean() > 0.02
    pv = _canonical(ev) == "page_view"
    assert ev.loc[pv, "page_type"].isna().mean() == pytest.approx(0.05, abs=0.015)
    assert ev.loc[~pv, "page_type"].isna().all()


def test_legacy_and_unknown_event_names(shop):
    names = shop.events["event_name"]
    assert set(RAW_EVENT_ALIASES) <= set(names) or {"pageview", "AddToCart"} <= set(names)
    assert set(UNKNOWN_RAW_EVENTS) <= set(names)
    assert set(names) <= set(CANONICAL_RAW_EVENTS) | set(RAW_EVENT_ALIASES) | set(UNKNOWN_RAW_EVENTS)
    assert set(RAW_EVENT_ALIASES.values()) <= set(CANONICAL_RAW_EVENTS)
    pv = _canonical(shop.events) == "page_view"
    assert (names[pv] == "pageview").mean() == pytest.approx(0.03, abs=0.01)


def test_tracking_plan_violations(shop):
    ev = shop.events
    canon = _canonical(ev)
    scroll = canon.str.startswith("scroll_depth_")
    assert 0 < ev.loc[scroll, "scroll_pct"].isna().mean() < 0.03
    assert set(ev.loc[scroll, "scroll_pct"].dropna()) == {25.0, 50.0, 75.0, 100.0}
    assert 0 < ev.loc[canon == "search", "search_term"].isna().mean() < 0.04
    buyers = simulate_shop(600, n_days=28, seed=1, bot_share=0,
                           persona_weights={"decisive_buyer": 1, "loyal_repeat": 1}).events
    revenue = buyers.loc[_canonical(buyers) == "purchase", "revenue"]
    assert len(revenue) > 500 and 0 < revenue.isna().mean() < 0.03
    assert revenue.dropna().gt(0).all()
    heartbeat = ev.loc[canon == "engagement_time", "engagement_ms"]
    assert heartbeat.notna().all() and heartbeat.between(14_000, 16_000).all()


def test_urls_and_page_types(shop):
    ev = shop.events
    assert set(ev["page_type"].dropna()) == set(PAGE_TYPES)
    assert ev["page_url"].str.match(r"https?://(shop\.example\.com|SHOP\.EXAMPLE\.COM|Shop\.Example\.com)/").all()
    assert ev["page_url"].str.startswith("http://").any() and ev["page_url"].str.contains("SHOP.EXAMPLE.COM").any()
    assert ev["page_url"].str.contains(r"utm_source=.*&sid=[0-9a-f]{12}").any()
    prod = ev["page_type"] == "product"
    assert ev.loc[prod, "page_url"].str.contains("/product/p\\d{5}").all()
    assert ev.loc[prod, "product_id"].notna().all() and ev.loc[prod, "price"].gt(0).all()


def test_clean_mode(clean):
    ev, te = clean.events, clean.truth_events
    assert ev["event_time"].str.fullmatch(FORMAT_PATTERNS["iso_z"]).all()
    assert set(ev["device"]) == {"mobile", "desktop", "tablet"}
    assert set(ev["event_name"]) <= set(CANONICAL_RAW_EVENTS)
    assert te["duplicate"].isna().all() and not te["noise"].any()
    assert ev["user_agent"].notna().all() and ev["page_type"][ev["event_name"] == "page_view"].notna().all()
    assert ev["page_url"].str.startswith("https://shop.example.com/").all()
    parsed = pd.to_datetime(ev["event_time"], format="ISO8601", utc=True)
    assert (parsed.to_numpy() == te["timestamp"].to_numpy()).all()


# ---------------------------------------------------------------- planted behaviour


def test_abandoners_buy_only_after_returning(shop):
    tr = shop.truth
    ab = tr[tr["persona"] == "cart_abandoner"]
    assert not ab.loc[~ab["returns_within_48h"], "n_purchases"].any()
    assert ab["returns_within_48h"].mean() == pytest.approx(0.4, abs=0.12)
    assert ab.loc[ab["returns_within_48h"], "n_purchases"].gt(0).any()
    users = set(ab["user_id"])
    views = shop.events.loc[shop.events["visitor_id"].isin(users) & (shop.events["event_name"] == "cart_view")]
    assert views.groupby("visitor_id").size().median() >= 2


def test_returns_within_48h_matches_session_timing(clean):
    te, ev, tr = clean.truth_events, clean.events, clean.truth
    ab = set(tr.loc[(tr["persona"] == "cart_abandoner") & tr["returns_within_48h"], "user_id"])
    sess = te.assign(user=ev["visitor_id"]).groupby("session").agg(user=("user", "first"), start=("timestamp", "min"),
                                                                 end=("timestamp", "max"))
    sess = sess.sort_values(["user", "start"])
    gap = (sess["start"] - sess.groupby("user")["end"].shift()).dt.total_seconds() / 3600
    assert gap[sess["user"].isin(ab)].groupby(sess["user"]).min().lt(48).all()
    others = set(tr.loc[(tr["persona"] == "cart_abandoner") & ~tr["returns_within_48h"], "user_id"])
    assert gap[sess["user"].isin(others)].dropna().gt(48).all()


def test_crawlers_declare_themselves_and_do_not_engage(shop):
    ev = shop.events
    crawl = ev["visitor_id"].isin(_users(shop, bot_kind="crawler"))
    assert ev.loc[crawl, "user_agent"].dropna().str.contains(BOT_TOKENS).all()
    assert not ev.loc[~crawl & ev["user_agent"].notna(), "user_agent"].str.contains(BOT_TOKENS).any()
    canon = _canonical(ev[crawl])
    assert not canon.str.startswith("scroll_depth").any() and not (canon == "engagement_time").any()
    google = ev.loc[crawl & ev["user_agent"].str.contains("Googlebot", na=False), "ip"]
    assert google.str.startswith("66.249.").all()


def test_headless_bots_have_machine_timing(clean):
    te, ev = clean.truth_events, clean.events
    frame = te.assign(user=ev["visitor_id"]).sort_values(["session", "timestamp"])
    frame["gap"] = frame.groupby("session")["timestamp"].diff().dt.total_seconds()
    std = frame.groupby("user")["gap"].std()
    head = std[std.index.isin(_users(clean, bot_kind="headless"))]
    human = std[std.index.isin(_users(clean, is_bot=False))]
    assert head.max() < 0.1
    assert human.quantile(0.01) > 1.0
    ua = ev.loc[ev["visitor_id"].isin(head.index), "user_agent"]
    assert not ua.str.contains(BOT_TOKENS).any() and not ua.str.contains("Headless").any()


def test_personas_are_separable():
    sklearn = pytest.importorskip("sklearn")
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score
    from sklearn.preprocessing import StandardScaler

    shop = simulate_shop(1500, seed=3, bot_share=0)
    ev = shop.events.assign(event=lambda d: _canonical(d), day=shop.truth_events["timestamp"].dt.date)
    counts = pd.crosstab(ev["visitor_id"], ev["event"])
    days = ev.groupby("visitor_id")["day"].nunique()
    pv = ev[ev["event"] == "page_view"]
    X = np.log1p(counts.div(days, axis=0))
    X["days"] = np.log1p(days)
    X["blog_share"] = pv["page_url"].str.contains("/blog/").groupby(pv["visitor_id"]).mean().reindex(X.index).fillna(0)
    X["scroll"] = ev.groupby("visitor_id")["scroll_pct"].mean().reindex(X.index).fillna(0)
    X["revenue"] = np.log1p(ev.groupby("visitor_id")["revenue"].sum().reindex(X.index))
    labels = KMeans(6, n_init=10, random_state=0).fit_predict(StandardScaler().fit_transform(X))
    truth = shop.truth.set_index("user_id").loc[X.index, "persona"]
    assert sklearn is not None
    assert adjusted_rand_score(truth, labels) >= 0.6


def test_event_volume_and_loyal_rhythm():
    shop = simulate_shop(1000, seed=5)
    assert 40_000 < len(shop.events) < 110_000
    tr = shop.truth
    sessions = tr.groupby("persona")["n_sessions"].mean()
    assert sessions.idxmax() == "loyal_repeat"
    assert sessions["loyal_repeat"] > 2 * sessions["decisive_buyer"]


def test_write(tmp_path):
    shop = simulate_shop(60, n_days=7, seed=4)
    paths = shop.write(tmp_path / "out" / "events.csv")
    back = pd.read_csv(paths["events"], dtype={"event_time": str})
    assert list(back.columns) == RAW_COLUMNS and len(back) == len(shop.events)
    assert len(pd.read_csv(paths["truth"])) == 60
    assert paths["crm"].exists() and paths["params"].exists() and paths["truth_events"].exists()


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_users": 0}, r"'n_users' got 0; allowed: an integer >= 1"),
        ({"n_users": 2.5}, r"'n_users' got 2.5"),
        ({"n_users": True}, r"'n_users' got True"),
        ({"n_days": 0}, r"'n_days' got 0; allowed: an integer >= 1"),
        ({"seed": -1}, r"'seed' got -1"),
        ({"bot_share": 0.6}, r"'bot_share' got 0.6; allowed: a number in \[0, 0.5\]"),
        ({"bot_share": -0.1}, r"'bot_share' got -0.1"),
        ({"persona_weights": {"reseacher": 1.0}}, r"unknown persona 'reseacher'; did you mean 'researcher'\?"),
        ({"persona_weights": {"researcher": -1}}, r"'persona_weights.researcher' got -1"),
        ({"persona_weights": {"researcher": 0}}, r"positive sum"),
        ({"persona_weights": ["researcher"]}, r"'persona_weights'"),
        ({"timezone": "Europe/Berln"}, r"'Europe/Berln'.*did you mean 'Europe/Berlin'\?"),
        ({"timezone": 1}, r"'timezone' got 1"),
        ({"start": "not a date"}, r"'start' got 'not a date'"),
        ({"dirt": "yes"}, r"'dirt' got 'yes'"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ParameterError, match=match) as info:
        simulate_shop(**{"n_users": 10, **kwargs})
    assert info.value.name.split(".")[0] == next(iter(kwargs))
