"""Tests of segkit.standardize: devices, URLs, page types and duplicate events."""
from __future__ import annotations

import json

import ibis
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import segkit.standardize as std
from segkit.errors import ParameterError, SchemaError
from segkit.standardize import (
    DEFAULT_PAGE_TYPE_RULES,
    DEVICE_TYPES,
    assign_page_types,
    find_duplicates,
    normalize_devices,
    normalize_urls,
    parse_user_agents,
)

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1"
)
ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36"
)
ANDROID_TABLET = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15"
)
LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
FAST = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _ts(*seconds: float) -> pd.Series:
    return pd.Series(pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(list(seconds), unit="s"))


def _values(s: pd.Series) -> list:
    return [None if pd.isna(v) else v for v in s]


# --------------------------------------------------------------------------------------------
# devices
# --------------------------------------------------------------------------------------------


def test_device_labels_map_case_insensitively_after_stripping():
    raw = [" iPhone ", "ANDROID", "Mobile", "phone", "smartphone", "desktop", "PC", "mac", "Windows",
           "laptop", "iPad", "tablet", "bot", "Crawler", "spider"]
    out = normalize_devices(pd.DataFrame({"device": raw, "user_agent": [None] * len(raw)}))
    assert out["device"].tolist() == ["Mobile"] * 5 + ["Desktop"] * 5 + ["Tablet"] * 2 + ["Bot"] * 3
    assert set(out["device_source"]) == {"label"}


def test_unknown_label_becomes_other_and_is_kept():
    ev = pd.DataFrame({"device": ["smart tv", "console"], "user_agent": [None, None]})
    out = normalize_devices(ev)
    assert out["device"].tolist() == ["Other", "Other"]
    assert out["device_source"].tolist() == ["label", "label"]
    assert len(out) == 2


def test_missing_or_blank_label_falls_back_to_user_agent():
    ev = pd.DataFrame({"device": [None, "  ", "other"], "user_agent": [IPHONE, WINDOWS, IPAD]})
    out = normalize_devices(ev)
    assert out["device"].tolist() == ["Mobile", "Desktop", "Tablet"]
    assert out["device_source"].tolist() == ["user_agent"] * 3


def test_no_label_and_no_usable_user_agent_is_default_other():
    ev = pd.DataFrame({"device": [None, None], "user_agent": [None, "-"]})
    out = normalize_devices(ev)
    assert out["device"].tolist() == ["Other", "Other"]
    assert out["device_source"].tolist() == ["default", "default"]


def test_label_wins_over_user_agent_by_default():
    out = normalize_devices(pd.DataFrame({"device": ["desktop"], "user_agent": [IPHONE]}))
    assert out["device"].tolist() == ["Desktop"]


def test_prefer_user_agent_uses_label_only_where_user_agent_fails():
    ev = pd.DataFrame({"device": ["desktop", "tablet", None], "user_agent": [IPHONE, None, "-"]})
    out = normalize_devices(ev, prefer="user_agent")
    assert out["device"].tolist() == ["Mobile", "Tablet", "Other"]
    assert out["device_source"].tolist() == ["user_agent", "label", "default"]


def test_labels_extend_and_override_the_default_table():
    ev = pd.DataFrame({"device": ["Phablet", "mac"], "user_agent": [None, None]})
    out = normalize_devices(ev, labels={" PHABLET": "Mobile", "mac": "Tablet"})
    assert out["device"].tolist() == ["Mobile", "Tablet"]


def test_labels_with_an_unknown_class_are_rejected():
    with pytest.raises(ParameterError, match=r"labels\['tv'\].*'Mobile'"):
        normalize_devices(pd.DataFrame({"device": ["x"], "user_agent": [None]}), labels={"tv": "Television"})


def test_prefer_must_be_label_or_user_agent():
    with pytest.raises(ParameterError, match=r"'prefer' got 'useragent'.*did you mean 'user_agent'"):
        normalize_devices(pd.DataFrame({"device": ["x"], "user_agent": [None]}), prefer="useragent")


def test_prefer_user_agent_needs_a_user_agent_column():
    with pytest.raises(ParameterError, match="user_agent_col is None"):
        normalize_devices(pd.DataFrame({"device": ["x"]}), user_agent_col=None, prefer="user_agent")


def test_user_agent_col_none_uses_labels_only():
    out = normalize_devices(pd.DataFrame({"device": ["pc", None]}), user_agent_col=None)
    assert out["device"].tolist() == ["Desktop", "Other"]
    assert out["device_source"].tolist() == ["label", "default"]


def test_missing_device_column_names_it_with_a_hint():
    with pytest.raises(SchemaError, match=r"Column 'device' not found.*did you mean 'devices'"):
        normalize_devices(pd.DataFrame({"devices": ["pc"], "user_agent": [None]}))


def test_normalize_devices_keeps_rows_order_index_and_input():
    ev = pd.DataFrame(
        {"device": ["iphone", None, "PC", "weird"], "user_agent": [None, MAC, None, GOOGLEBOT], "n": [1, 2, 3, 4]},
        index=[40, 10, 30, 20],
    )
    before = ev.copy()
    out = normalize_devices(ev)
    pd.testing.assert_frame_equal(ev, before)
    assert out.index.tolist() == [40, 10, 30, 20]
    assert out["n"].tolist() == [1, 2, 3, 4]
    assert out["device"].tolist() == ["Mobile", "Desktop", "Desktop", "Bot"]
    assert _values(out["device_raw"]) == ["iphone", None, "PC", "weird"]
    assert list(out.columns) == ["device", "user_agent", "n", "device_raw", "device_source"]


def test_user_agents_are_parsed_once_per_distinct_value(monkeypatch):
    calls: list[str] = []
    real = std._parse_device_type

    def counting(ua: str) -> str:
        calls.append(ua)
        return real(ua)

    monkeypatch.setattr(std, "_parse_device_type", counting)
    ev = pd.DataFrame({"device": [None] * 3000, "user_agent": [IPHONE, WINDOWS, None] * 1000})
    out = normalize_devices(ev)
    assert sorted(calls) == sorted([IPHONE, WINDOWS])
    assert out["device_source"].value_counts().to_dict() == {"user_agent": 2000, "default": 1000}


def test_parse_user_agents_classifies_common_devices():
    uas = [IPHONE, IPAD, ANDROID_PHONE, ANDROID_TABLET, WINDOWS, MAC, LINUX, GOOGLEBOT, None, ""]
    out = parse_user_agents(pd.Series(uas, index=range(10, 20)))
    assert list(out.columns) == ["browser", "os", "device_family", "device_type"]
    assert out.index.tolist() == list(range(10, 20))
    assert out["device_type"].tolist() == [
        "Mobile", "Tablet", "Mobile", "Tablet", "Desktop", "Desktop", "Desktop", "Bot", None, None,
    ]
    assert out.loc[10, "os"] == "iOS"
    assert out.loc[17, "device_family"] == "Spider"
    assert set(out["device_type"].dropna()) <= set(DEVICE_TYPES)


def test_normalize_devices_returns_ibis_on_request():
    ev = pd.DataFrame({"device": ["pc", None], "user_agent": [None, IPHONE]})
    expr = normalize_devices(ev, output="ibis")
    assert isinstance(expr, ibis.Table)
    assert expr.execute()["device"].tolist() == ["Desktop", "Mobile"]


def test_normalize_devices_reads_parquet(tmp_path):
    path = tmp_path / "ev.parquet"
    pd.DataFrame({"device": ["tablet", None], "user_agent": [None, WINDOWS]}).to_parquet(path)
    out = normalize_devices(str(path))
    assert sorted(out["device"]) == ["Desktop", "Tablet"]


def test_output_must_be_pandas_or_ibis():
    with pytest.raises(ParameterError, match=r"'output' got 'polars'"):
        normalize_devices(pd.DataFrame({"device": ["pc"], "user_agent": [None]}), output="polars")


@pytest.mark.shared_data
def test_device_types_agree_with_intoli_categories(shared_data):
    profiles = json.loads((shared_data / "user_agents" / "human_user_agents_intoli.json").read_text())
    ev = pd.DataFrame({"device": None, "user_agent": [p["userAgent"] for p in profiles]})
    expected = pd.Series([p["deviceCategory"].capitalize() for p in profiles])
    out = normalize_devices(ev)
    agreement = (out["device"].to_numpy() == expected.to_numpy()).mean()
    assert agreement >= 0.95, agreement


# --------------------------------------------------------------------------------------------
# URLs
# --------------------------------------------------------------------------------------------


def _norm(pages: list, **kwargs) -> list:
    return _values(normalize_urls(pd.DataFrame({"page": pages}), **kwargs)["page"])


def test_tricky_absolute_url_becomes_a_clean_path():
    assert _norm(["HTTP://Shop.Example.com/Product/p1/?utm_source=x&sid=9#top"]) == ["/Product/p1?utm_source=x"]


def test_relative_and_absolute_forms_of_a_page_agree():
    assert _norm(["/cart/", "https://shop.example.com/cart", "http://www.shop.example.com:443/cart/#x"]) == ["/cart"] * 3


def test_root_keeps_its_slash_and_host_only_url_is_root():
    assert _norm(["/", "https://shop.example.com", "https://shop.example.com/?sid=1", "//"]) == ["/"] * 4


def test_blank_and_missing_pages_become_missing():
    assert _norm([None, "", "   "]) == [None, None, None]


def test_kept_query_parameters_are_sorted_and_others_dropped():
    assert _norm(["/search?utm_source=b&sid=1&q=shoes&gclid=z"]) == ["/search?q=shoes&utm_source=b"]
    assert _norm(["/search?q=&q=a"]) == ["/search?q=&q=a"]


def test_keep_params_empty_drops_the_whole_query():
    assert _norm(["/search?q=shoes"], keep_params=()) == ["/search"]


def test_repeated_slashes_and_fragments_are_removed():
    assert _norm(["/a//b///", "/a#section", "#top"]) == ["/a/b", "/a", "/"]


def test_keep_host_unifies_scheme_host_www_and_default_ports():
    pages = [
        "HTTP://WWW.Shop.Example.com:80/Product/p1/?utm_source=x&sid=9#top",
        "https://user:pw@shop.example.com:443/cart",
        "https://shop.example.com:8080/cart",
        "/cart/",
    ]
    assert _norm(pages, keep_host=True) == [
        "https://shop.example.com/Product/p1?utm_source=x",
        "https://shop.example.com/cart",
        "https://shop.example.com:8080/cart",
        "/cart",
    ]


def test_lowercase_path_lowers_the_path_but_not_query_values():
    assert _norm(["/Product/P1?q=Shoes"], lowercase_path=True) == ["/product/p1?q=Shoes"]


def test_normalize_urls_keeps_raw_value_rows_and_input():
    ev = pd.DataFrame({"page": ["/b/", None, "/a"], "user_id": ["u1", "u2", "u3"]}, index=[2, 0, 1])
    before = ev.copy()
    out = normalize_urls(ev)
    pd.testing.assert_frame_equal(ev, before)
    assert out.index.tolist() == [2, 0, 1]
    assert _values(out["page"]) == ["/b", None, "/a"]
    assert _values(out["page_raw"]) == ["/b/", None, "/a"]
    assert out["user_id"].tolist() == ["u1", "u2", "u3"]


def test_keep_params_must_be_a_list_of_names():
    with pytest.raises(ParameterError, match="keep_params"):
        normalize_urls(pd.DataFrame({"page": ["/"]}), keep_params="q")


def test_missing_page_column_is_a_schema_error():
    with pytest.raises(SchemaError, match=r"'page' not found.*did you mean 'pages'"):
        normalize_urls(pd.DataFrame({"pages": ["/"]}))


_segment = st.text(alphabet="abcXYZ019-._~%", min_size=0, max_size=6)
_url = st.builds(
    lambda scheme, host, segs, slash, params, frag: (
        (f"{scheme}{host}" if scheme is not None else "")
        + "/" + "/".join(segs) + ("/" if slash else "")
        + ("?" + "&".join(params) if params else "")
        + (f"#{frag}" if frag is not None else "")
    ),
    st.sampled_from([None, "http://", "HTTPS://", "//"]),
    st.sampled_from(["Shop.Example.com", "www.example.com:80", "a.b:8080", ""]),
    st.lists(_segment, max_size=4),
    st.booleans(),
    st.lists(st.builds(lambda k, v: f"{k}={v}", st.sampled_from(["q", "sid", "utm_source", "utm_medium", "x"]), _segment), max_size=4),
    st.one_of(st.none(), _segment),
)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pages=st.lists(st.one_of(st.none(), _url, st.text(max_size=8)), min_size=1, max_size=60), keep_host=st.booleans())
@example(pages=["0\r?", "/a \t?x=1"], keep_host=False)  # whitespace left at the path's end once the query is gone
def test_normalize_urls_is_idempotent(pages, keep_host):
    once = normalize_urls(pd.DataFrame({"page": pages}), keep_host=keep_host)
    twice = normalize_urls(once.drop(columns="page_raw"), keep_host=keep_host)
    assert _values(twice["page"]) == _values(once["page"])
    assert len(once) == len(pages)


# --------------------------------------------------------------------------------------------
# page types
# --------------------------------------------------------------------------------------------

SHOP_PAGES = {
    "https://shop.example.com/product/p00123?utm_source=google&sid=abc": "product",
    "/category/shoes": "category",
    "/blog/how-to-choose-running-shoes": "blog",
    "/search?q=red+shoes": "search",
    "/cart": "cart",
    "/checkout": "checkout",
    "/": "home",
    "https://shop.example.com/?utm_source=x": "home",
    "/Product/P1/": "product",
    "/about-us": "other",
    "/cartography": "other",
}


def test_default_rules_type_the_simulated_shop_pages():
    ev = pd.DataFrame({"page": list(SHOP_PAGES)})
    out = assign_page_types(ev)
    assert out["page_type"].tolist() == list(SHOP_PAGES.values())
    assert "page_type" in out.columns and len(DEFAULT_PAGE_TYPE_RULES) == 7


def test_rules_fill_only_missing_page_types():
    ev = pd.DataFrame({"page": ["/cart", "/cart", "/cart", "/x"], "page_type": ["basket", None, " ", None]})
    out = assign_page_types(ev)
    assert _values(out["page_type"]) == ["basket", "cart", "cart", "other"]
    assert out["page_type_source"].tolist() == ["tracked", "rule", "rule", "default"]


def test_overwrite_lets_rules_replace_tracked_types_but_keeps_unmatched_ones():
    ev = pd.DataFrame({"page": ["/cart", "/x", "/y"], "page_type": ["basket", "landing", None]})
    out = assign_page_types(ev, overwrite=True)
    assert _values(out["page_type"]) == ["cart", "landing", "other"]
    assert out["page_type_source"].tolist() == ["rule", "tracked", "default"]


def test_first_matching_rule_wins_in_mapping_and_list_form():
    ev = pd.DataFrame({"page": ["/sale/shoes", "/shoes"]})
    rules = {"sale": r"^/sale", "shoes": r"shoes"}
    assert assign_page_types(ev, rules)["page_type"].tolist() == ["sale", "shoes"]
    as_list = [("shoes", r"shoes"), ("sale", r"^/sale")]
    assert assign_page_types(ev, as_list)["page_type"].tolist() == ["shoes", "shoes"]


def test_one_page_type_may_have_several_regexes():
    ev = pd.DataFrame({"page": ["/basket", "/cart", "/x"]})
    out = assign_page_types(ev, [("cart", "^/cart"), ("cart", "^/basket")], default=None)
    assert _values(out["page_type"]) == ["cart", "cart", None]
    assert out["page_type_source"].tolist() == ["rule", "rule", "default"]


def test_case_sensitive_matching_on_request():
    ev = pd.DataFrame({"page": ["/Product/p1"]})
    assert assign_page_types(ev, case_sensitive=True)["page_type"].tolist() == ["other"]


def test_missing_page_gets_the_default_type():
    out = assign_page_types(pd.DataFrame({"page": [None, ""]}))
    assert out["page_type"].tolist() == ["other", "other"]
    assert out["page_type_source"].tolist() == ["default", "default"]


def test_assign_page_types_keeps_index_and_input():
    ev = pd.DataFrame({"page": ["/", "/cart"], "page_type": [None, None]}, index=[7, 3])
    before = ev.copy()
    out = assign_page_types(ev)
    pd.testing.assert_frame_equal(ev, before)
    assert out.index.tolist() == [7, 3]
    assert out["page_type"].tolist() == ["home", "cart"]


def test_invalid_regex_names_the_rule_and_the_error():
    with pytest.raises(ParameterError, match=r"Rule 1 \('broken'\) has an invalid regex '\(unclosed': missing \)"):
        assign_page_types(pd.DataFrame({"page": ["/"]}), [("home", "^/$"), ("broken", "(unclosed")])


def test_lookaround_regex_is_rejected_as_not_portable():
    with pytest.raises(ParameterError, match="lookaround or backreferences"):
        assign_page_types(pd.DataFrame({"page": ["/"]}), {"x": r"^/(?!cart)"})


def test_malformed_rule_is_rejected():
    with pytest.raises(ParameterError, match=r"rules\[0\]"):
        assign_page_types(pd.DataFrame({"page": ["/"]}), [("home",)])
    with pytest.raises(ParameterError, match="'rules'"):
        assign_page_types(pd.DataFrame({"page": ["/"]}), "^/$")


# --------------------------------------------------------------------------------------------
# duplicates
# --------------------------------------------------------------------------------------------


def _log(rows: list[tuple], extra: dict | None = None) -> pd.DataFrame:
    users, events, seconds, pages = zip(*rows) if rows else ((), (), (), ())
    df = pd.DataFrame({"user_id": list(users), "event": list(events), "timestamp": _ts(*seconds), "page": list(pages)})
    return df.assign(**(extra or {}))


def test_exact_duplicates_flag_every_copy_after_the_first():
    ev = _log([("u", "view", 0, "/a"), ("u", "view", 0, "/a"), ("u", "view", 0, "/a"), ("u", "view", 0, None)])
    out = find_duplicates(ev, tolerance=None)
    assert _values(out["duplicate"]) == [None, "exact_duplicate", "exact_duplicate", None]


def test_missing_values_compare_equal_for_exact_duplicates():
    ev = _log([("u", "view", 0, None), ("u", "view", 0, None)])
    assert _values(find_duplicates(ev, tolerance=None)["duplicate"]) == [None, "exact_duplicate"]


def test_near_duplicates_chain_through_a_burst():
    ev = _log([("u", "click", 0, "/a"), ("u", "click", 0.6, "/b"), ("u", "click", 1.2, "/c"), ("u", "click", 3, "/d")])
    out = find_duplicates(ev, tolerance="1s")
    assert _values(out["duplicate"]) == [None, "near_duplicate", "near_duplicate", None]


def test_gap_equal_to_tolerance_is_a_near_duplicate():
    ev = _log([("u", "click", 0, "/a"), ("u", "click", 1, "/b"), ("u", "click", 2.001, "/c")])
    assert _values(find_duplicates(ev, tolerance="1s")["duplicate"]) == [None, "near_duplicate", None]


def test_near_duplicates_need_the_same_key():
    ev = _log([("u", "click", 0, "/a"), ("v", "click", 0.1, "/a"), ("u", "view", 0.2, "/a")])
    assert _values(find_duplicates(ev)["duplicate"]) == [None, None, None]


def test_exact_duplicate_is_not_also_counted_as_near_and_order_by_time():
    ev = _log([("u", "click", 5, "/a"), ("u", "click", 0, "/a"), ("u", "click", 5, "/a"), ("u", "click", 0.5, "/b")])
    out = find_duplicates(ev, tolerance="1s")
    assert _values(out["duplicate"]) == [None, None, "exact_duplicate", "near_duplicate"]


def test_key_cols_none_requires_everything_but_the_time_to_match():
    ev = _log([("u", "click", 0, "/a"), ("u", "click", 0.3, "/b"), ("u", "click", 0.6, "/b")])
    assert _values(find_duplicates(ev)["duplicate"]) == [None, "near_duplicate", "near_duplicate"]
    assert _values(find_duplicates(ev, key_cols=None)["duplicate"]) == [None, None, "near_duplicate"]


def test_tolerance_none_flags_exact_duplicates_only():
    ev = _log([("u", "click", 0, "/a"), ("u", "click", 0.1, "/a")])
    assert _values(find_duplicates(ev, tolerance=None)["duplicate"]) == [None, None]


@pytest.mark.parametrize("bad", ["0s", 1, "1"])
def test_tolerance_needs_positive_units(bad):
    with pytest.raises(ParameterError, match=r"tolerance.*tolerance=None"):
        find_duplicates(_log([("u", "click", 0, "/a")]), tolerance=bad)


def test_non_canonical_columns_are_ignored_for_exact_duplicates_by_default():
    ev = _log([("u", "view", 0, "/a"), ("u", "view", 0, "/a")], extra={"line": [1, 2]})
    assert _values(find_duplicates(ev, tolerance=None)["duplicate"]) == [None, "exact_duplicate"]
    strict = find_duplicates(ev, tolerance=None, exact_cols=["user_id", "event", "timestamp", "line"])
    assert _values(strict["duplicate"]) == [None, None]


def test_missing_key_column_is_a_schema_error():
    with pytest.raises(SchemaError, match=r"'session' not found.*did you mean 'session_id'"):
        find_duplicates(_log([("u", "view", 0, "/a")], extra={"session_id": ["s"]}), key_cols=("user_id", "session"))


def test_find_duplicates_keeps_rows_index_and_input():
    ev = _log([("u", "view", 0, "/a"), ("u", "view", 0, "/a")]).set_axis([9, 4])
    before = ev.copy()
    out = find_duplicates(ev)
    pd.testing.assert_frame_equal(ev, before)
    assert out.index.tolist() == [9, 4]
    pd.testing.assert_frame_equal(out.drop(columns="duplicate"), ev)


def test_find_duplicates_on_an_ibis_table_counts_the_same():
    ev = _log([("u", "view", 0, "/a"), ("u", "view", 0, "/a"), ("u", "view", 0.5, "/b")])
    out = find_duplicates(ibis.memtable(ev))
    assert out["duplicate"].value_counts().to_dict() == {"exact_duplicate": 1, "near_duplicate": 1}


def test_find_duplicates_on_an_empty_log():
    ev = _log([])
    out = find_duplicates(ev)
    assert len(out) == 0 and "duplicate" in out.columns


def _brute_force(rows: list[tuple], tol: float | None, key: Any = lambda r: r[:2]) -> list[str | None]:
    flags: list[str | None] = [None] * len(rows)
    for i, r in enumerate(rows):
        if any(rows[j] == r for j in range(i)):
            flags[i] = "exact_duplicate"
    if tol is None:
        return flags
    for i, r in enumerate(rows):
        t = r[2]
        if flags[i]:
            continue
        earlier = [(rows[j][2], j) for j in range(len(rows))
                   if flags[j] != "exact_duplicate" and key(rows[j]) == key(r) and (rows[j][2], j) < (t, i)]
        if earlier and t - max(earlier)[0] <= tol + 1e-9:
            flags[i] = "near_duplicate"
    return flags


_row = st.tuples(
    st.sampled_from(["a", "b"]),
    st.sampled_from(["view", "click"]),
    st.sampled_from([0.0, 0.3, 0.6, 1.0, 1.5, 2.5, 4.0]),
    st.sampled_from(["/p", "/q", None]),
)


@FAST
@given(logs=st.lists(st.lists(_row, min_size=1, max_size=10), min_size=1, max_size=8), tol=st.sampled_from([None, 0.5, 1.0]))
def test_find_duplicates_matches_a_brute_force_checker(logs, tol):
    # many small logs in one call: prefixing the user keeps them independent
    rows = [(f"{k}-{u}", e, t, p) for k, log in enumerate(logs) for (u, e, t, p) in log]
    out = find_duplicates(_log(rows), tolerance=None if tol is None else f"{int(tol * 1000)}ms")
    expected = [flag for k, log in enumerate(logs) for flag in _brute_force([(f"{k}-{u}", e, t, p) for (u, e, t, p) in log], tol)]
    assert _values(out["duplicate"]) == expected
    assert len(out) == len(rows)


@FAST
@given(logs=st.lists(st.lists(_row, min_size=1, max_size=10), min_size=1, max_size=8), tol=st.sampled_from([0.5, 1.0]))
def test_find_duplicates_with_the_whole_row_as_key_matches_a_brute_force_checker(logs, tol):
    # key_cols=None: the key is every compared column but the time (the single-window path)
    rows = [(f"{k}-{u}", e, t, p) for k, log in enumerate(logs) for (u, e, t, p) in log]
    out = find_duplicates(_log(rows), tolerance=f"{int(tol * 1000)}ms", key_cols=None)
    expected = [flag for k, log in enumerate(logs)
                for flag in _brute_force([(f"{k}-{u}", e, t, p) for (u, e, t, p) in log], tol, key=lambda r: (r[0], r[1], r[3]))]
    assert _values(out["duplicate"]) == expected


@FAST
@given(logs=st.lists(st.lists(_row, min_size=1, max_size=10), min_size=1, max_size=8), tol=st.sampled_from([None, 0.5, 1.0]),
       key_cols=st.sampled_from([("user_id", "event"), None]))
def test_flagged_only_returns_exactly_the_flagged_rows(logs, tol, key_cols):
    rows = [(f"{k}-{u}", e, t, p) for k, log in enumerate(logs) for (u, e, t, p) in log]
    ev = _log(rows)
    kw = {"tolerance": None if tol is None else f"{int(tol * 1000)}ms", "key_cols": key_cols}
    full = find_duplicates(ev, **kw)
    pd.testing.assert_frame_equal(find_duplicates(ev, flagged_only=True, **kw), full[full["duplicate"].notna()])
    # an Ibis input takes the engine path (the labels are built after the filter); which of
    # equal rows is the copy is arbitrary there, the counts are not
    lazy = find_duplicates(ibis.memtable(ev), flagged_only=True, output="ibis", **kw).to_pandas()
    assert lazy["duplicate"].value_counts().to_dict() == full["duplicate"].value_counts().to_dict()
    assert len(lazy) == int(full["duplicate"].notna().sum())


def test_flagged_only_must_be_a_boolean():
    with pytest.raises(ParameterError, match="flagged_only.*'yes'.*True or False"):
        find_duplicates(_log([("u", "view", 0, "/a")]), flagged_only="yes")


def test_row_order_survives_a_larger_shuffled_log():
    rng = np.random.default_rng(0)
    n = 5000
    ev = pd.DataFrame(
        {
            "user_id": rng.choice(["a", "b", "c"], n),
            "event": "view",
            "timestamp": _ts(*rng.integers(0, 100_000, n)),
            "page": rng.choice(["/cart/", "/", "https://shop.example.com/product/p1?sid=1"], n),
        }
    )
    out = normalize_urls(ev)
    expected = ev["page"].map({"/cart/": "/cart", "/": "/", "https://shop.example.com/product/p1?sid=1": "/product/p1"})
    assert out["page"].tolist() == expected.tolist()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(st.sampled_from(["u", "v"]), st.sampled_from(["click", "view"]),
                               st.sampled_from([0, 0.4, 0.9, 1.0, 1.5, 3, 3.2]), st.sampled_from(["/a", "/b", None])),
                     max_size=25))
def test_whole_row_duplicates_same_on_duckdb_and_the_portable_window(rows):
    # key_cols=None: DuckDB's single ordered window vs the partitioned window other engines use
    import segkit.standardize as std_mod

    df = _log(rows)
    fast = find_duplicates(df, key_cols=None)["duplicate"].tolist()
    real = std_mod.backend_name
    try:
        std_mod.backend_name = lambda expr: None
        portable = find_duplicates(df, key_cols=None)["duplicate"].tolist()
    finally:
        std_mod.backend_name = real
    assert fast == portable
