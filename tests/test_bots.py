"""Tests of segkit.bots: user-agent classification, behavioral signals, the filter and scoring."""
from __future__ import annotations

import json
import time

import ibis
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from segkit.bots import BotResult, bot_signals, classify_user_agents, filter_bots, score_bots
from segkit.errors import ParameterError, SchemaError

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.129 Safari/537.36"
SAFARI_IOS = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
              "Version/17.2 Mobile/15E148 Safari/604.1")
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
EDGE = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
        "Safari/537.36 Edg/120.0.2210.91")
SAMSUNG = ("Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 "
           "Chrome/115.0.0.0 Mobile Safari/537.36")
CUBOT = ("Mozilla/5.0 (Linux; Android 6.0; CUBOT MAX Build/MRA58K) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/51.0.2704.81 Mobile Safari/537.36")
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
T0 = pd.Timestamp("2024-03-01 10:00", tz="UTC")


def _events(user: str, offsets_s, events=None, ua: str = CHROME, ip: str = "81.2.69.160") -> pd.DataFrame:
    offsets_s = list(offsets_s)
    return pd.DataFrame({
        "user_id": user,
        "timestamp": [T0 + pd.Timedelta(seconds=float(s)) for s in offsets_s],
        "event": events if events is not None else ["page_view"] * len(offsets_s),
        "user_agent": ua,
        "ip": ip,
    })


def _human(user: str = "person", n: int = 40, seed: int = 0, **kw) -> pd.DataFrame:
    """Irregular (lognormal) gaps and a mix of page views, scrolls and engagement heartbeats."""
    rng = np.random.default_rng(seed)
    offsets = np.cumsum(rng.lognormal(np.log(8), 0.9, n))
    names = rng.choice(["page_view", "scroll_depth_25", "scroll_depth_50", "engagement_time", "product_image_click"], n)
    return _events(user, offsets, list(names), **kw)


def _script(user: str = "script", n: int = 40, gap: float = 2.0, **kw) -> pd.DataFrame:
    return _events(user, np.arange(n) * gap, **kw)


def _visitor(result: BotResult, user: str) -> pd.Series:
    return result.visitors.set_index("user_id").loc[user]


# ---------------------------------------------------------------------------------------------
# classify_user_agents
# ---------------------------------------------------------------------------------------------


def test_declared_crawler_is_flagged_with_the_list_pattern():
    out = classify_user_agents(pd.Series([GOOGLEBOT]))
    assert out["is_bot"].tolist() == [True]
    assert out["reason"].tolist() == ["crawler-list:Googlebot/"]


def test_human_browsers_are_not_flagged():
    out = classify_user_agents(pd.Series([CHROME, SAFARI_IOS, FIREFOX, EDGE, SAMSUNG, CUBOT]))
    assert not out["is_bot"].any()
    assert (out["reason"] == "").all()


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
        "python-requests/2.31.0",
        "curl/8.4.0",
        "Wget/1.21.4",
        "Scrapy/2.11.0 (+https://scrapy.org)",
        "Go-http-client/1.1",
        "Apache-HttpClient/4.5.14 (Java/17.0.9)",
        "okhttp/4.12.0",
        "MyCompanySpider/1.0",
        "Mozilla/5.0 (compatible; SomeNewCrawler/0.1)",
        "Mozilla/5.0 (compatible; Acmebot/2.0; +https://acme.example/bot)",
        "Hexometer",
    ],
)
def test_generic_tools_and_bot_words_are_flagged(ua):
    out = classify_user_agents(pd.Series([ua]))
    assert out["is_bot"].item(), out["reason"].item()
    assert out["reason"].item() != ""


@pytest.mark.parametrize("ua", [None, np.nan, "", "   ", "-"])
def test_missing_user_agent_is_unknown_not_bot(ua):
    out = classify_user_agents(pd.Series([ua], dtype=object))
    assert out["is_bot"].tolist() == [False]
    assert out["reason"].tolist() == ["missing-user-agent"]


def test_custom_and_allow_patterns():
    uas = pd.Series(["AcmeMonitor/1.0 (Windows NT 10.0)", GOOGLEBOT, CHROME + " InternalQA"])
    out = classify_user_agents(uas, patterns=["internalqa"], allow_patterns=["googlebot"])
    assert out["is_bot"].tolist() == [True, False, True]
    assert out["reason"].tolist() == ["generic-token:monitor", "allow-pattern:googlebot", "custom-pattern:internalqa"]


def test_index_alignment_with_non_default_index():
    idx = pd.Index(["z", "a", "m", "b", "q"], name="row")
    uas = pd.Series([CHROME, GOOGLEBOT, None, CHROME, "curl/8.0"], index=idx)
    out = classify_user_agents(uas)
    assert out.index.equals(idx)
    assert out["is_bot"].to_dict() == {"z": False, "a": True, "m": False, "b": False, "q": True}
    assert out["is_bot"].dtype == bool
    assert out.loc["m", "reason"] == "missing-user-agent"


def test_classify_accepts_a_list_and_does_not_mutate():
    uas = pd.Series([GOOGLEBOT, CHROME], index=[5, 3])
    before = uas.copy()
    classify_user_agents(uas)
    pd.testing.assert_series_equal(uas, before)
    assert classify_user_agents([GOOGLEBOT, CHROME])["is_bot"].tolist() == [True, False]


def test_classify_empty_series():
    out = classify_user_agents(pd.Series([], dtype="str"))
    assert out.empty and list(out.columns) == ["is_bot", "reason"]


@pytest.mark.parametrize("name", ["patterns", "allow_patterns"])
def test_patterns_must_be_a_list(name):
    with pytest.raises(ParameterError, match=rf"'{name}' got 'bot'; expected a list"):
        classify_user_agents(pd.Series([CHROME]), **{name: "bot"})


def test_invalid_regex_is_a_parameter_error():
    with pytest.raises(ParameterError, match=r"'patterns' holds '\(unclosed', not a valid regular expression"):
        classify_user_agents(pd.Series([CHROME]), patterns=["(unclosed"])


def test_classification_is_fast_on_many_rows_with_few_unique_agents():
    rng = np.random.default_rng(0)
    uniques = np.array([f"{CHROME} Build/{i}" for i in range(900)] + [f"python-requests/2.{i}" for i in range(100)], dtype=object)
    classify_user_agents(pd.Series(uniques[:2]))  # compiles the rules once
    rows = pd.Series(uniques[rng.integers(0, uniques.size, 1_000_000)], dtype="str")
    t0 = time.perf_counter()
    out = classify_user_agents(rows)
    elapsed = time.perf_counter() - t0
    assert len(out) == 1_000_000
    assert elapsed < 1.0, f"classify_user_agents took {elapsed:.2f} s on 1M rows / 1k unique agents"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=60)), max_size=30))
def test_classify_never_raises_and_stays_aligned(values):
    s = pd.Series(values, dtype=object, index=pd.RangeIndex(100, 100 + len(values)))
    out = classify_user_agents(s)
    assert out.index.equals(s.index)
    assert out["is_bot"].dtype == bool
    assert out["reason"].notna().all()
    assert not out.loc[out["reason"] == "missing-user-agent", "is_bot"].any()


def _yaml_agents(path, skip_sections=()):
    data = yaml.safe_load(path.read_text())
    return [str(ua) for section, uas in data.items() if section not in skip_sections
            for ua in (uas if isinstance(uas, list) else [uas])]


@pytest.mark.shared_data
def test_user_agent_targets_on_shared_lists(shared_data):
    folder = shared_data / "user_agents"
    # browsers.yml (isbot's fixture of agents not to flag, 555 entries) has a section of 10 that it
    # heads "Insignificat bots - These bots have very low appearance rate and are not worth
    # blocking"; we flag two of them (Yahoo! Slurp, amazon-kendra). They are left out of the human
    # set: with them the rate is 6/555 = 1.08 %, without them 4/545 = 0.73 %.
    sections = yaml.safe_load((folder / "browsers.yml").read_text())
    browsers = _yaml_agents(folder / "browsers.yml", skip_sections=[s for s in sections if s.startswith("ZZZ Insignificat bots")])
    profiles = [p["userAgent"] for p in json.loads((folder / "human_user_agents_intoli.json").read_text())]
    crawlers = _yaml_agents(folder / "crawlers.yml")
    assert len(browsers) == 545 and len(profiles) == 10_000 and len(crawlers) == 626
    fp_browsers = classify_user_agents(pd.Series(browsers))["is_bot"].mean()
    fp_profiles = classify_user_agents(pd.Series(profiles))["is_bot"].mean()
    recall = classify_user_agents(pd.Series(crawlers))["is_bot"].mean()
    assert fp_browsers <= 0.01, fp_browsers
    assert fp_profiles <= 0.01, fp_profiles
    assert recall >= 0.90, recall


# ---------------------------------------------------------------------------------------------
# bot_signals
# ---------------------------------------------------------------------------------------------


def test_signals_of_a_constant_rate_visitor():
    sig = bot_signals(_script(n=11, gap=2.0)).set_index("user_id").loc["script"]
    assert sig["n_events"] == 11 and sig["n_gaps"] == 10 and sig["n_sessions"] == 1
    assert sig["gap_cv"] == pytest.approx(0.0)
    assert sig["median_gap_s"] == pytest.approx(2.0)
    assert sig["events_per_minute"] == pytest.approx(30.0)
    assert sig["max_session_s"] == pytest.approx(20.0)
    assert sig["engagement_share"] == 0.0
    assert sig["user_agents"] == 1 and sig["ua_per_ip"] == 1
    assert not sig["one_hit"] and not sig["ua_bot"] and not sig["ip_listed"]


def test_signals_split_sessions_and_ignore_ties():
    # two sessions (a 2 h pause), a duplicated timestamp (no gap), one engagement event
    ev = _events("u", [0, 10, 10, 30, 7200, 7205], ["page_view", "scroll_depth_50", "page_view", "page_view", "page_view", "video_play"])
    sig = bot_signals(ev, session_timeout="30m").set_index("user_id").loc["u"]
    assert sig["n_sessions"] == 2
    assert sig["n_gaps"] == 3  # 10, 20 and 5 seconds
    assert sig["max_session_s"] == pytest.approx(30.0)
    assert sig["engagement_share"] == pytest.approx(2 / 6)


def test_signals_one_hit_and_ua_per_ip():
    shared_ip = pd.concat([_events(f"v{i}", [0], ua=f"{CHROME} v{i}", ip="10.1.1.1") for i in range(4)])
    sig = bot_signals(shared_ip).set_index("user_id")
    assert sig["one_hit"].all()
    assert (sig["ua_per_ip"] == 4).all()


def test_signals_without_agent_and_ip_columns():
    ev = _script(n=6).drop(columns=["user_agent", "ip"])
    sig = bot_signals(ev).iloc[0]
    assert sig["user_agents"] == 0 and sig["ua_per_ip"] == 0
    assert not sig["ua_bot"] and not sig["ip_listed"] and sig["ua_reason"] == ""


def test_signals_ibis_output_and_custom_columns():
    ev = _script(n=6).rename(columns={"user_id": "visitor", "timestamp": "ts", "event": "action"})
    expr = bot_signals(ev, user_col="visitor", timestamp_col="ts", event_col="action", output="ibis")
    assert isinstance(expr, ibis.Table)
    assert expr.execute()["visitor"].tolist() == ["script"]


def test_signals_missing_column_is_a_schema_error():
    with pytest.raises(SchemaError, match=r"Column 'user' not found in events; did you mean 'user_id'"):
        bot_signals(_script(), user_col="user")


def test_signals_need_timestamps():
    ev = _script().assign(timestamp=lambda d: d["timestamp"].astype(str))
    with pytest.raises(SchemaError, match=r"'timestamp' must hold timestamps"):
        bot_signals(ev)


def test_ip_lists_without_ip_column_are_a_schema_error():
    with pytest.raises(SchemaError, match=r"Column 'ip' not found"):
        bot_signals(_script().drop(columns="ip"), ip_list=["10.0.0.1"])


# ---------------------------------------------------------------------------------------------
# filter_bots: rules
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zoo() -> tuple[pd.DataFrame, BotResult]:
    """One log with a visitor per rule, filtered once with an IP list, a range and a UA pattern."""
    rng = np.random.default_rng(3)
    people = [_human(f"person{i}", n=60, seed=i, ip=f"81.2.69.{10 + i}") for i in range(12)]
    crowd = [_events(f"crowd{i:02d}", [i], ua=f"{CHROME} build{i}", ip="198.51.100.9") for i in range(25)]
    parts = people + crowd + [
        _script(ip="81.2.70.1"),
        _human("gbot", ua=GOOGLEBOT, seed=20, ip="81.2.70.2"),
        _human("ranged", seed=21, ip="66.249.66.1"),
        _human("listed", seed=22, ip="203.0.113.7"),
        _human("qa", ua=CHROME + " AcmeQA/1.0", seed=23, ip="81.2.70.3"),
        # a 5.25 h session of 14 page views (too few to time) on the crowded IP: two weak rules
        _events("marathon", np.cumsum([0, 1500, 1200, 1700, 1400, 1600, 1100, 1500, 1300, 1700, 1450, 1550, 1250, 1650]),
                ip="198.51.100.9"),
        # irregular (cv 0.67) but 100 events a minute
        _events("fast", np.concatenate([[0], np.cumsum(np.tile([0.2, 1.0], 30))]), ["page_view", "video_play"] * 30 + ["page_view"],
                ip="81.2.70.4"),
        # 30 page views with human timing and no engagement events at all: one weak rule
        _events("reader", np.cumsum(rng.lognormal(np.log(30), 0.8, 30)), ip="81.2.70.5"),
        _events("once", [0], ip="81.2.70.6"),
    ]
    ev = pd.concat(parts, ignore_index=True)
    ev.index = ev.index * 10 + 7  # a non-default index, kept by the split
    before = ev.copy(deep=True)
    res = filter_bots(ev, ip_ranges=["66.249.64.0/19"], ip_list=["203.0.113.7"], ua_patterns=["acmeqa"])
    pd.testing.assert_frame_equal(ev, before)  # the input is not mutated
    return ev, res


def test_constant_gaps_are_flagged_naming_gap_cv(zoo):
    bot = _visitor(zoo[1], "script")  # page views only: the (weak) engagement rule fires too
    assert bot["is_bot"] and bot["score"] == pytest.approx(1 - 0.2 * 0.6)
    assert bot["reasons"] == "gap_cv=0.0<0.35; engagement_share=0.0<0.05"


def test_irregular_humans_with_scrolls_are_kept(zoo):
    v = zoo[1].visitors
    people = v[v["user_id"].str.startswith("person")]
    assert len(people) == 12
    assert not people["is_bot"].any(), people.loc[people["is_bot"], ["user_id", "reasons"]]
    assert (people["score"] == 0).all() and (people["reasons"] == "").all()


def test_declared_googlebot_is_flagged_whatever_its_timing(zoo):
    bot = _visitor(zoo[1], "gbot")
    assert bot["is_bot"] and bot["score"] == 1.0 and bot["ua_bot"]
    assert bot["reasons"] == "ua=crawler-list:Googlebot/"


def test_ip_in_cidr_range_and_ip_list(zoo):
    ranged, listed = _visitor(zoo[1], "ranged"), _visitor(zoo[1], "listed")
    assert ranged["is_bot"] and ranged["ip_listed"] and ranged["reasons"] == "ip-range:66.249.64.0/19"
    assert listed["is_bot"] and listed["reasons"] == "ip-list:203.0.113.7"


def test_ua_per_ip_alone_is_weak_evidence(zoo):
    one = _visitor(zoo[1], "crowd00")
    assert one["ua_per_ip"] == 26
    assert not one["is_bot"] and one["score"] == pytest.approx(0.4)
    assert one["reasons"] == "ua_per_ip=26>20"


def test_two_weak_rules_make_a_bot(zoo):
    m = _visitor(zoo[1], "marathon")
    assert m["is_bot"] and m["score"] == pytest.approx(0.64)
    assert m["reasons"] == "max_session_s=18900>14400; ua_per_ip=26>20"


def test_inhuman_speed_is_a_strong_rule(zoo):
    fast = _visitor(zoo[1], "fast")
    assert fast["gap_cv"] > 0.35
    assert fast["is_bot"] and fast["reasons"] == "events_per_minute=100.0>60"


def test_low_engagement_alone_is_weak(zoo):
    r = _visitor(zoo[1], "reader")
    assert not r["is_bot"] and r["reasons"] == "engagement_share=0.0<0.05"


def test_custom_ua_patterns_reach_the_filter(zoo):
    assert _visitor(zoo[1], "qa")["reasons"] == "ua=custom-pattern:acmeqa"


def test_one_hit_visitors_are_kept_by_default(zoo):
    once = _visitor(zoo[1], "once")
    assert once["one_hit"] and not once["is_bot"]


def test_events_are_split_and_keep_the_index(zoo):
    ev, res = zoo
    flagged = set(res.visitors.loc[res.visitors["is_bot"], "user_id"])
    assert flagged == {"script", "gbot", "ranged", "listed", "qa", "marathon", "fast"}
    assert set(res.bot_events["user_id"]) == flagged
    pd.testing.assert_frame_equal(res.events, ev.loc[~ev["user_id"].isin(flagged)])
    pd.testing.assert_frame_equal(res.bot_events.drop(columns="reason"), ev.loc[ev["user_id"].isin(flagged)])
    assert res.bot_events.loc[res.bot_events["user_id"] == "gbot", "reason"].unique().tolist() == ["ua=crawler-list:Googlebot/"]
    assert list(res.visitors.columns[-3:]) == ["score", "is_bot", "reasons"]
    with pytest.raises(AttributeError):
        res.events = None  # frozen


def test_low_engagement_rule_needs_engagement_in_the_log(zoo):
    ev = zoo[0]
    alone = filter_bots(ev[ev["user_id"] == "reader"])  # like an access log: no engagement events
    assert _visitor(alone, "reader")["reasons"] == ""


def test_timing_rules_need_evidence():
    short = _script(n=8)
    assert not _visitor(filter_bots(short), "script")["is_bot"]
    flagged = _visitor(filter_bots(short, min_events_for_timing=8), "script")
    assert flagged["is_bot"] and "gap_cv=" in flagged["reasons"]


def test_rules_can_be_switched_off():
    res = filter_bots(_script(), min_gap_cv=None, max_events_per_minute=None)
    assert not _visitor(res, "script")["is_bot"]


def test_drop_one_hit():
    res = filter_bots(pd.concat([_events("once", [0]), _human()], ignore_index=True), drop_one_hit=True)
    assert _visitor(res, "once")["reasons"] == "one_hit" and _visitor(res, "once")["is_bot"]
    assert not _visitor(res, "person")["is_bot"]


# ---------------------------------------------------------------------------------------------
# filter_bots: outputs, errors
# ---------------------------------------------------------------------------------------------


def test_ibis_output_matches_pandas(tmp_path):
    ev = pd.concat([_human(), _script(), _human("gbot", ua=GOOGLEBOT, seed=4)], ignore_index=True)
    path = tmp_path / "events.parquet"
    ev.to_parquet(path)  # nanosecond timestamps, read back by DuckDB as TIMESTAMPTZ_NS
    lazy = filter_bots(str(path), output="ibis")
    assert all(isinstance(x, ibis.Table) for x in (lazy.visitors, lazy.events, lazy.bot_events))
    assert lazy.events.execute()["user_id"].unique().tolist() == ["person"]
    bots = lazy.bot_events.execute()
    assert sorted(bots["user_id"].unique()) == ["gbot", "script"] and "reason" in bots.columns
    eager = filter_bots(str(path))
    assert isinstance(eager.events, pd.DataFrame) and len(eager.events) + len(eager.bot_events) == len(ev)
    assert lazy.visitors.execute().sort_values("user_id")["is_bot"].tolist() == eager.visitors["is_bot"].tolist() == [True, False, True]
    assert eager.summary()["bot_visitors"] == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_gap_cv": -0.1}, r"'min_gap_cv' got -0.1; allowed: a number >= 0"),
        ({"max_events_per_minute": 0}, r"'max_events_per_minute' got 0; allowed: a number > 0"),
        ({"max_events_per_minute": "fast"}, r"'max_events_per_minute' got 'fast'"),
        ({"min_engagement_share": 1.5}, r"'min_engagement_share' got 1.5; allowed: a number >= 0 and <= 1"),
        ({"max_ua_per_ip": -3}, r"'max_ua_per_ip' got -3"),
        ({"max_ua_per_ip": True}, r"'max_ua_per_ip' got True"),
        ({"max_session": "4"}, r"'max_session' got '4'; a duration needs units"),
        ({"session_timeout": 1800}, r"'session_timeout' got 1800; a duration needs units"),
        ({"ip_ranges": ["10.0.0.0/33"]}, r"'ip_ranges' holds '10.0.0.0/33', not a CIDR range"),
        ({"ip_ranges": "10.0.0.0/8"}, r"'ip_ranges' got '10.0.0.0/8'; expected a list"),
        ({"ip_list": ["999.1.1.1"]}, r"'ip_list' holds '999.1.1.1', not an IP address"),
        ({"ip_list": "1.2.3.4"}, r"'ip_list' got '1.2.3.4'; expected a list"),
        ({"ua_patterns": ["[bad"]}, r"'ua_patterns' holds '\[bad', not a valid regular expression"),
        ({"drop_one_hit": "yes"}, r"'drop_one_hit' got 'yes'; allowed: True or False"),
        ({"min_events_for_timing": 2}, r"'min_events_for_timing' got 2; allowed: an integer >= 3"),
        ({"engagement_events": "scroll"}, r"'engagement_events' got 'scroll'; expected a list"),
        ({"output": "polars"}, r"'output' got 'polars'; allowed: \['pandas', 'ibis'\]"),
    ],
)
def test_filter_bots_parameter_errors(kwargs, match):
    with pytest.raises(ParameterError, match=match) as info:
        filter_bots(_script(), **kwargs)
    assert info.value.name == next(iter(kwargs))


def test_filter_bots_missing_column():
    with pytest.raises(SchemaError, match=r"Column 'event' not found in events"):
        filter_bots(_script().drop(columns="event"))


def test_filter_bots_on_empty_log():
    res = filter_bots(_script().iloc[:0])
    assert res.visitors.empty and res.events.empty and res.bot_events.empty


# ---------------------------------------------------------------------------------------------
# score_bots
# ---------------------------------------------------------------------------------------------


def test_score_bots_counts_and_rates():
    flags = pd.Series([True, True, False, False, True], index=list("abcde"))
    truth = pd.Series([True, False, True, False, True], index=list("edcba"))[::-1].rename(None)
    truth.index = list("abcde")
    out = score_bots(flags, truth)
    assert (out["tp"], out["fp"], out["fn"], out["tn"]) == (2, 1, 1, 1)
    assert out["precision"] == pytest.approx(2 / 3) and out["recall"] == pytest.approx(2 / 3)
    assert out["f1"] == pytest.approx(2 / 3)


def test_score_bots_aligns_on_index():
    flags = pd.Series([True, False], index=["x", "y"])
    truth = pd.Series([False, True], index=["y", "x"])
    assert score_bots(flags, truth)["tp"] == 1


def test_score_bots_errors():
    with pytest.raises(ParameterError, match=r"same unique index; missing from flags: \['z'\]"):
        score_bots(pd.Series([True], index=["x"]), pd.Series([True, False], index=["x", "z"]))
    with pytest.raises(ParameterError, match=r"'flags' must hold booleans"):
        score_bots(pd.Series([1, 0]), pd.Series([True, False]))
    with pytest.raises(ParameterError, match=r"'truth' must be a pandas Series"):
        score_bots(pd.Series([True]), [True])


# ---------------------------------------------------------------------------------------------
# Integration: the simulated shop and a real access log
# ---------------------------------------------------------------------------------------------


def test_simulated_shop_precision_and_recall_with_defaults():
    from segkit.io import load_events
    from segkit.simulate import simulate_shop

    shop = simulate_shop(3000, seed=7)
    events = load_events(shop.events, columns=shop.column_map, timezone=shop.timezone).events
    res = filter_bots(events)
    flags = res.visitors.set_index("user_id")["is_bot"]
    truth = shop.truth.set_index("user_id")["is_bot"].reindex(flags.index)
    assert truth.notna().all()
    scores = score_bots(flags, truth.astype(bool))
    assert scores["precision"] >= 0.95, scores
    assert scores["recall"] >= 0.90, scores


@pytest.mark.shared_data
def test_apache_log_flags_a_plausible_share(shared_data):
    from segkit.io import load_events

    events = load_events(shared_data / "apache_access_10k" / "apache_logs", format="access_log").events
    res = filter_bots(events)
    line_share = len(res.bot_events) / len(events)
    visitor_share = res.visitors["is_bot"].mean()
    assert 0.10 <= line_share <= 0.40, line_share
    assert 0.05 <= visitor_share <= 0.40, visitor_share
    assert len(res.events) + len(res.bot_events) == len(events)


# ---------------------------------------------------------------------------------------------
# Execution plan: one window pass, visitor-hash partitions, fallbacks
# ---------------------------------------------------------------------------------------------


def _mixed_log() -> pd.DataFrame:
    parts = [_human(f"p{i}", n=30, seed=i, ip=f"81.2.69.{i}") for i in range(6)] + [
        _script(ip="81.2.69.1"),
        _human("gbot", ua=GOOGLEBOT, seed=9, ip="66.249.66.1"),
        _events("twice", [0, 5, 5000, 5001, 5001]),
        _events("once", [0]),
    ]
    return pd.concat(parts, ignore_index=True)


def _signals_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_exact=False, rtol=1e-12)


def test_tied_rows_at_a_session_start_do_not_split_it():
    # 30 copies of the first event (same time, same name), then a regular tail: one session
    ev = _events("u", [0] * 30 + list(range(1, 21)))
    sig = bot_signals(ev).iloc[0]
    assert sig["n_sessions"] == 1 and sig["n_gaps"] == 20
    assert sig["max_session_s"] == pytest.approx(20.0)


def test_hash_collisions_fall_back_to_the_visitor_key(monkeypatch):
    import segkit.bots as bots_mod

    ev = _mixed_log()
    kw = {"ip_ranges": ["66.249.64.0/19"], "ua_patterns": ["acmeqa"]}
    hashed = bot_signals(ev, **kw)
    monkeypatch.setattr(bots_mod, "hash64", lambda table, value: ibis.literal(7, "int64"))  # every visitor collides
    _signals_equal(bot_signals(ev, **kw), hashed)


def test_portable_expressions_match_the_duckdb_builtins(monkeypatch):
    # the generic path (DATE_DIFF to the epoch, Ibis .hash()) used for backends other than DuckDB/Spark
    import segkit.engine as engine_mod

    ev = _mixed_log()
    fast = bot_signals(ev, ip_list=["81.2.69.3"])
    monkeypatch.setattr(engine_mod, "backend_name", lambda expr: None)
    _signals_equal(bot_signals(ev, ip_list=["81.2.69.3"]), fast)


def test_a_missing_visitor_id_keeps_all_its_signals():
    ev = _mixed_log()
    ev.loc[ev["user_id"] == "twice", "user_id"] = None
    sig = bot_signals(ev)
    missing = sig[sig["user_id"].isna()].iloc[0]
    assert missing["n_events"] == 5 and missing["n_sessions"] == 2 and missing["max_session_s"] == pytest.approx(5.0)
    assert missing["user_agents"] == 1 and missing["ua_per_ip"] >= 1
    assert len(sig) == ev["user_id"].nunique(dropna=False)


def test_ibis_output_is_computed_once():
    ev = _mixed_log()
    res = filter_bots(ev, output="ibis")
    for table in (res.events, res.bot_events):
        sql = ibis.to_sql(table)
        assert "OVER" not in sql.upper(), "the event splits must join the computed flags, not recompute the signals"
    assert res.visitors.execute().sort_values("user_id").reset_index(drop=True).equals(filter_bots(ev).visitors)


def test_ip_reasons_fast_path_matches_ipaddress():
    import ipaddress

    from segkit.bots import _ip_reasons

    ips = ["66.249.66.1", " 66.249.70.3 ", "010.1.1.1", "1.2.3", "1.2.3.4.5", "256.1.1.1", "::1", "2001:db8::1",
           "2001:DB8::7", "::ffff:66.249.66.1", "", "abc", None, "1.2.3.4\n", "\uff11.2.3.4", "10.0.0.1", "0.0.0.0",
           "203.0.113.7", "10.200.3.4"]
    ip_list = frozenset({"203.0.113.7", "2001:db8::7", "10.0.0.1"})
    ranges = tuple(ipaddress.ip_network(n) for n in ["66.249.64.0/19", "10.0.0.0/8", "10.1.0.0/16", "2001:db8::/32"])

    def slow(raw):
        try:
            addr = ipaddress.ip_address(str(raw).strip())
        except ValueError:
            return ""
        if str(addr) in ip_list:
            return f"ip-list:{addr}"
        return next((f"ip-range:{net}" for net in ranges if addr.version == net.version and addr in net), "")

    assert _ip_reasons(ips, ip_list, ranges) == [slow(ip) for ip in ips]
