"""Tests of the discriminative-pattern tools of segkit.patterns.

discriminative_patterns, its subsequence counter (checked against a brute-force containment
check), its tests (against scipy), the multiple-testing corrections (against known values),
pattern_features and pattern_condition (evaluated as a segment on a tiny event log), and an
integration test on a simulated shop (buyers' vs cart abandoners' sessions).
"""
from __future__ import annotations

import doctest
import itertools

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import segkit.patterns as patterns_module
from segkit.errors import ParameterError
from segkit.patterns import (
    adjust_pvalues,
    discriminative_patterns,
    mine_patterns,
    pattern_condition,
    pattern_features,
    pattern_label,
)
from segkit.segments import Did, Segment, Then, evaluate_segments
from segkit.sequences import build_sequences


def _contains(seq, pat) -> bool:
    it = iter(seq)
    return all(any(x == y for y in it) for x in pat)


def _greedy_count(seq, pat) -> int:
    count, j = 0, 0
    for x in seq:
        if x == pat[j]:
            j += 1
            if j == len(pat):
                count, j = count + 1, 0
    return count


def _rows(res: pd.DataFrame) -> dict:
    """The result's rows by pattern (a frame indexed by tuples would read them as levels)."""
    return {r["pattern"]: pd.Series(r) for r in res.to_dict("records")}


A = [["s", "p", "c", "k"], ["s", "p", "c", "k"], ["s", "p", "c", "k"], ["h", "p", "c"], ["h", "p"]]
B = [["h", "p", "c"], ["h", "p", "c"], ["s", "p"], ["h", "p"], ["h", "c"], ["p"]]


# --- supports, shares, tests ---------------------------------------------------------------------

def test_supports_and_shares_are_exact_in_both_cohorts():
    res = _rows(discriminative_patterns(A, B, 3, max_len=2))
    # candidates: frequent (>= 3) in a or in b
    expected = set(mine_patterns(A, 3, max_len=2)["pattern"]) | set(mine_patterns(B, 3, max_len=2)["pattern"])
    assert set(res) == expected
    for pat, row in res.items():
        assert row["support_a"] == sum(_contains(s, pat) for s in A)
        assert row["support_b"] == sum(_contains(s, pat) for s in B)
        assert row["share_a"] == pytest.approx(row["support_a"] / 5)
        assert row["share_b"] == pytest.approx(row["support_b"] / 6)
        assert row["difference"] == pytest.approx(row["share_a"] - row["share_b"])
        assert row["length"] == len(pat)
    assert res[("k",)][["support_a", "support_b"]].tolist() == [3, 0]  # frequent in a only
    assert res[("h", "p")][["support_a", "support_b"]].tolist() == [2, 3]  # frequent in b only


def test_fisher_p_values_match_scipy():
    res = discriminative_patterns(A, B, 2, max_len=3)
    for _, row in res.iterrows():
        ka, kb = row["support_a"], row["support_b"]
        table = [[ka, 5 - ka], [kb, 6 - kb]]
        assert row["p_value"] == pytest.approx(scipy.stats.fisher_exact(table).pvalue, rel=1e-9)


def test_fisher_matches_scipy_on_many_tables():
    rng = np.random.default_rng(3)
    for _ in range(25):
        na, nb = (int(v) for v in rng.integers(1, 80, 2))
        ka, kb = rng.integers(0, na + 1, 15), rng.integers(0, nb + 1, 15)
        got = patterns_module._fisher_pvalues(ka, kb, na, nb)
        want = [scipy.stats.fisher_exact([[a, na - a], [b, nb - b]]).pvalue for a, b in zip(ka, kb)]
        np.testing.assert_allclose(got, want, rtol=1e-9)


def test_chi2_p_values_match_scipy_with_yates():
    res = discriminative_patterns(A, B, 2, max_len=2, test="chi2")
    for _, row in res.iterrows():
        ka, kb = row["support_a"], row["support_b"]
        if ka + kb == 11:  # in every sequence: scipy refuses the zero margin, segkit says p = 1
            assert row["p_value"] == 1.0
            continue
        table = [[ka, 5 - ka], [kb, 6 - kb]]
        assert row["p_value"] == pytest.approx(scipy.stats.chi2_contingency(table).pvalue, rel=1e-9)


def test_hand_computed_table():
    # ("k",) is in 3 of 5 sequences of a and 0 of 6 of b; with ka + kb = 3 fixed, ka is
    # hypergeometric: P(ka = 0, 1, 2, 3) = (20, 75, 60, 10) / 165, so only ka = 3 is as improbable
    row = _rows(discriminative_patterns(A, B, 3, max_len=1))[("k",)]
    p_exact = scipy.stats.hypergeom(11, 5, 3)
    assert [p_exact.pmf(k) * 165 for k in range(4)] == pytest.approx([20, 75, 60, 10])
    assert row["p_value"] == pytest.approx(10 / 165)
    assert row["lift"] == pytest.approx((3.5 / 6) / (0.5 / 7))  # the Jeffreys estimates, finite
    assert row["odds_ratio"] == pytest.approx((3.5 * 6.5) / (2.5 * 0.5))  # Haldane-Anscombe
    assert row["enriched_in"] == "a"


def test_odds_ratio_without_empty_cells_is_the_sample_odds_ratio():
    row = _rows(discriminative_patterns(A, B, 3, max_len=1))[("c",)]  # 4/5 in a, 3/6 in b
    assert row["odds_ratio"] == pytest.approx((4 * 3) / (1 * 3))


def test_order_is_q_value_then_absolute_difference():
    res = discriminative_patterns(A, B, 2, max_len=3)
    keys = list(zip(res["q_value"], -res["difference"].abs()))
    assert keys == sorted(keys)
    assert res["significant"].tolist() == (res["q_value"] <= 0.05).tolist()


def test_labels_name_the_columns_and_attrs():
    res = discriminative_patterns(A, B, 0.5, labels=("buyers", "others"), max_len=2)
    assert res.columns.tolist() == [
        "pattern", "length", "support_buyers", "support_others", "share_buyers", "share_others", "difference",
        "lift", "odds_ratio", "p_value", "q_value", "significant", "enriched_in"]
    assert set(res["enriched_in"].dropna()) <= {"buyers", "others"}
    assert res.attrs["min_support"] == {"buyers": 3, "others": 3}  # ceil(0.5 * 5), ceil(0.5 * 6)
    assert res.attrs["n_a"] == 5 and res.attrs["n_b"] == 6 and res.attrs["n_tests"] == len(res)


def test_no_candidate_gives_an_empty_frame():
    res = discriminative_patterns([["a"]], [["b"]], 2)
    assert len(res) == 0 and "q_value" in res.columns and res.attrs["n_tests"] == 0


def test_accepts_sequences_objects():
    ts = pd.Timestamp("2024-01-01", tz="UTC")
    ev = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u2"], "session_id": ["u1-0", "u1-0", "u2-0", "u2-0"],
                       "event": ["x", "y", "y", "x"], "timestamp": [ts, ts + pd.Timedelta("1s")] * 2})
    seqs = build_sequences(ev)
    a, b = seqs.subset([True, False]), seqs.subset([False, True])
    res = _rows(discriminative_patterns(a, b, 1, min_len=2))
    assert res[("x", "y")][["support_a", "support_b"]].tolist() == [1, 0]
    assert res[("y", "x")][["support_a", "support_b"]].tolist() == [0, 1]


def test_planted_pattern_is_found_and_noise_mostly_is_not():
    rng = np.random.default_rng(11)
    noise = list("abcdefgh")

    def cohort(n, share):
        out = []
        for _ in range(n):
            seq = [str(x) for x in rng.choice(noise, size=int(rng.integers(3, 9)))]
            if rng.random() < share:  # plant x ... y ... z at random places
                cut = np.sort(rng.choice(len(seq) + 1, size=3))
                for offset, (pos, item) in enumerate(zip(cut.tolist(), "xyz")):
                    seq.insert(pos + offset, item)
            out.append(seq)
        return out

    a, b = cohort(200, 0.6), cohort(200, 0.05)
    res = discriminative_patterns(a, b, 0.05, max_len=3)
    planted = _rows(res)[("x", "y", "z")]
    assert planted["significant"] and planted["enriched_in"] == "a"
    assert 0.5 < planted["share_a"] < 0.7 and planted["share_b"] < 0.1
    noise_only = np.array([not set(p) & set("xyz") for p in res["pattern"]])
    assert noise_only.sum() > 100
    # Benjamini-Hochberg bounds the share of false discoveries among the discoveries...
    significant = res["significant"].to_numpy()
    assert (significant & noise_only).sum() <= 0.05 * significant.sum()
    # ... Holm the chance of any false discovery
    holm = discriminative_patterns(a, b, 0.05, max_len=3, correction="holm")
    assert _rows(holm)[("x", "y", "z")]["significant"]
    noise_holm = np.array([not set(p) & set("xyz") for p in holm["pattern"]])
    assert (holm["significant"].to_numpy() & noise_holm).sum() <= 1


# --- the counter against brute force -------------------------------------------------------------

sequences_strategy = st.lists(st.lists(st.sampled_from("abcd"), max_size=8), min_size=1, max_size=12)
patterns_strategy = st.lists(st.lists(st.sampled_from("abcde"), min_size=1, max_size=4).map(tuple),
                             min_size=1, max_size=15, unique=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(db=sequences_strategy, pats=patterns_strategy)
def test_counter_matches_brute_force(db, pats):
    feats = pattern_features(db, pats)
    for j, pat in enumerate(pats):
        expected = [int(_contains(s, pat)) for s in db]
        assert feats.iloc[:, j].tolist() == expected
    counts = pattern_features(db, pats, binary=False)
    for j, pat in enumerate(pats):
        assert counts.iloc[:, j].tolist() == [_greedy_count(s, pat) for s in db]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=sequences_strategy, b=sequences_strategy)
def test_discriminative_supports_match_brute_force(a, b):
    res = discriminative_patterns(a, b, 2, max_len=3)
    for pat, ka, kb in zip(res["pattern"], res["support_a"], res["support_b"]):
        assert ka == sum(_contains(s, pat) for s in a)
        assert kb == sum(_contains(s, pat) for s in b)
    assert (res["p_value"].between(0, 1)).all() and (res["q_value"] >= res["p_value"] - 1e-12).all()


def test_counter_shares_prefixes_correctly_on_all_short_patterns():
    rng = np.random.default_rng(5)
    db = [list(rng.choice(list("abc"), size=int(rng.integers(0, 7)))) for _ in range(60)]
    pats = [p for n in (1, 2, 3) for p in itertools.product("abc", repeat=n)]
    rng.shuffle(pats)  # any input order; columns come back in it
    feats = pattern_features(db, pats)
    assert feats.columns.tolist() == [pattern_label(p) for p in pats]
    assert feats.sum().tolist() == [sum(_contains(s, p) for s in db) for p in pats]


# --- multiple testing ----------------------------------------------------------------------------

def test_corrections_match_known_values():
    p = [0.01, 0.04, 0.03, 0.005]
    # Bonferroni: m p; Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, running max;
    # BH: sorted times 4/1, 4/2, 4/3, 4/4, running min from the top
    np.testing.assert_allclose(adjust_pvalues(p, "bonferroni"), [0.04, 0.16, 0.12, 0.02])
    np.testing.assert_allclose(adjust_pvalues(p, "holm"), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(adjust_pvalues(p, "fdr_bh"), [0.02, 0.04, 0.04, 0.02])
    np.testing.assert_allclose(adjust_pvalues([0.5, 0.9], "bonferroni"), [1.0, 1.0])


def test_bh_matches_scipy_and_ordering_of_corrections():
    p = np.random.default_rng(2).random(200) ** 3
    bh = adjust_pvalues(p, "fdr_bh")
    np.testing.assert_allclose(bh, scipy.stats.false_discovery_control(p, method="bh"), rtol=1e-12)
    holm, bonf = adjust_pvalues(p, "holm"), adjust_pvalues(p, "bonferroni")
    assert (bh <= holm + 1e-15).all() and (holm <= bonf + 1e-15).all() and (p <= bh + 1e-15).all()
    order = np.argsort(p)
    for adj in (bh, holm, bonf):
        assert (np.diff(adj[order]) >= -1e-15).all()  # monotone in p


def test_correction_is_applied_to_q_values():
    res = discriminative_patterns(A, B, 2, max_len=2, correction="bonferroni")
    np.testing.assert_allclose(res["q_value"], np.minimum(1, res["p_value"] * len(res)))
    res = discriminative_patterns(A, B, 2, max_len=2, correction="holm", alpha=0.5)
    np.testing.assert_allclose(res["q_value"], adjust_pvalues(res["p_value"], "holm"))
    assert res["significant"].tolist() == (res["q_value"] <= 0.5).tolist()


def test_adjust_pvalues_errors():
    with pytest.raises(ParameterError, match=r"'method' got 'bh'.*allowed"):
        adjust_pvalues([0.1], "bh")
    with pytest.raises(ParameterError, match=r"holds 1.5; p-values are numbers in \[0, 1\]"):
        adjust_pvalues([0.1, 1.5])
    with pytest.raises(ParameterError, match="p-values are numbers"):
        adjust_pvalues([np.nan])
    assert adjust_pvalues([]).tolist() == []


# --- errors --------------------------------------------------------------------------------------

def test_discriminative_errors():
    with pytest.raises(ParameterError, match="'sequences_b' holds no sequence"):
        discriminative_patterns(A, [], 2)
    with pytest.raises(ParameterError, match=r"In 'sequences_b': Parameter 'sequences\[1\]' is str") as info:
        discriminative_patterns(A, [["a"], "ab"], 2)
    assert info.value.name == "sequences_b[1]"
    with pytest.raises(ParameterError, match="'labels'"):
        discriminative_patterns(A, B, 2, labels=("a", "a"))
    with pytest.raises(ParameterError, match=r"'test' got 'fischer'.*did you mean 'fisher'\?"):
        discriminative_patterns(A, B, 2, test="fischer")
    with pytest.raises(ParameterError, match=r"'correction' got 'bh'"):
        discriminative_patterns(A, B, 2, correction="bh")
    with pytest.raises(ParameterError, match="'alpha' got 1.5"):
        discriminative_patterns(A, B, 2, alpha=1.5)
    with pytest.raises(ParameterError, match="'min_support' got 0"):
        discriminative_patterns(A, B, 0)
    with pytest.raises(ParameterError, match="'max_len' got 0"):
        discriminative_patterns(A, B, 2, min_len=1, max_len=0)
    with pytest.raises(ParameterError, match="'engine'"):
        discriminative_patterns(A, B, 2, engine="slow")


def test_pattern_features_options_and_errors():
    db = [["a", "b"], ["b"]]
    feats = pattern_features(db, pd.DataFrame({"pattern": [("a", "b"), ("z",)]}), ids=["s1", "s2"])
    assert feats.index.tolist() == ["s1", "s2"] and feats.dtypes.tolist() == [np.uint8, np.uint8]
    assert feats.to_dict("list") == {"a > b": [1, 0], "z": [0, 0]}  # an unknown item is never contained
    assert feats.attrs["patterns"] == {"a > b": ("a", "b"), "z": ("z",)}
    assert pattern_features(db, [("a",)], binary=False).dtypes.tolist() == [np.int64]
    assert pattern_features(db, []).shape == (2, 0)
    with pytest.raises(ParameterError, match=r"'patterns\[0\]' is str 'ab': a string is not a pattern"):
        pattern_features(db, ["ab"])
    with pytest.raises(ParameterError, match="empty pattern"):
        pattern_features(db, [()])
    with pytest.raises(ParameterError, match="repeats the label 'a > b'"):
        pattern_features(db, [("a", "b"), ["a", "b"]])
    with pytest.raises(ParameterError, match="'ids' has 3 labels but there are 2 sequences"):
        pattern_features(db, [("a",)], ids=[1, 2, 3])
    with pytest.raises(ParameterError, match=r"without a 'pattern' column .*; did you mean 'patterns'\?"):
        pattern_features(db, pd.DataFrame({"patterns": [("a",)]}))
    with pytest.raises(ParameterError, match="'binary'"):
        pattern_features(db, [("a",)], binary=1)


def test_pattern_features_index_from_sequences():
    ts = pd.Timestamp("2024-01-01", tz="UTC")
    ev = pd.DataFrame({"user_id": ["u1", "u2"], "session_id": ["u1-0", "u2-0"], "event": ["x", "y"],
                       "timestamp": [ts, ts]})
    feats = pattern_features(build_sequences(ev), [("x",)])
    assert feats.index.name == "sequence_id" and feats.index.tolist() == ["u1-0", "u2-0"]
    assert feats["x"].tolist() == [1, 0]


# --- pattern_condition ---------------------------------------------------------------------------

def test_pattern_condition_builds_then_and_did():
    cond = pattern_condition(("search", "add_to_cart"), within="1h", mode="directly")
    assert isinstance(cond, Then)
    assert cond.to_dict() == {"then": ["search", "add_to_cart"], "mode": "directly", "scope": "same_session",
                              "within": "1h"}
    cond = pattern_condition(["add_to_cart:shoes", "purchase"], item="event+category", scope="any_session")
    assert cond.to_dict()["then"] == [{"event": "add_to_cart", "where": {"category": "shoes"}}, "purchase"]
    assert isinstance(pattern_condition(("home",), item="page_type"), Did)


def test_pattern_condition_errors():
    with pytest.raises(ParameterError, match="wrap a single item in a tuple"):
        pattern_condition("search")
    with pytest.raises(ParameterError, match="non-empty tuple"):
        pattern_condition(())
    with pytest.raises(ParameterError, match="holds 3"):
        pattern_condition(("a", 3))
    with pytest.raises(ParameterError, match=r"'item' got 'item_id'; only"):
        pattern_condition(("p1", "p2"), item="item_id")
    with pytest.raises(ParameterError, match="one item"):
        pattern_condition(("a",), within="1h")
    with pytest.raises(ParameterError, match="one item"):
        pattern_condition(("a",), mode="directly")
    with pytest.raises(ParameterError, match=r"'mode' got 'soon'; allowed: \['eventually', 'directly'\]"):
        pattern_condition(("a", "b"), mode="soon")
    with pytest.raises(ParameterError, match=r"'scope' got 'session'; allowed: \['same_session', 'any_session'\]"):
        pattern_condition(("a",), scope="session")
    with pytest.raises(ParameterError, match="within"):
        pattern_condition(("a", "b"), within="90")


def test_pattern_condition_evaluates_as_a_segment():
    t = pd.Timestamp("2024-01-01 10:00", tz="UTC")
    m = pd.Timedelta(minutes=1)
    ev = pd.DataFrame({
        "user_id": ["a", "a", "a", "b", "b", "c", "c"],
        "session_id": ["a-0", "a-0", "a-0", "b-0", "b-1", "c-0", "c-0"],
        "event": ["page_view", "page_view", "add_to_cart", "page_view", "add_to_cart", "add_to_cart", "page_view"],
        "page_type": ["home", "product", None, "product", None, None, "product"],
        "category": [None, None, "shoes", None, "shoes", None, None],
        "timestamp": [t, t + m, t + 2 * m, t, t + 90 * m, t, t + m],
    })
    seqs = build_sequences(ev, item="page_type")
    found = discriminative_patterns(seqs.subset(seqs.ids["user_id"] == "a"), seqs.subset(seqs.ids["user_id"] != "a"),
                                    1, min_len=2)
    assert found["pattern"].tolist() == [("home", "product")]
    segs = [
        Segment("pv_cart", pattern_condition(("page_view", "add_to_cart"))),
        Segment("pv_cart_any", pattern_condition(("page_view", "add_to_cart"), scope="any_session")),
        Segment("home_product", pattern_condition(found["pattern"].iloc[0], item=seqs.item, within="5m")),
        Segment("shoes", pattern_condition(("page_view", "add_to_cart:shoes"), item="event+category")),
    ]
    members = evaluate_segments(segs, events=ev)
    got = members.groupby("segment")["user_id"].apply(list).to_dict()
    assert got == {"pv_cart": ["a"], "pv_cart_any": ["a", "b"], "home_product": ["a"], "shoes": ["a"]}
    # the users of the sequences that contain the pattern
    seq_users = seqs.ids.loc[pattern_features(seqs, found).iloc[:, 0].to_numpy() == 1, "user_id"]
    assert sorted(seq_users) == got["home_product"]


# --- integration ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shop_sessions():
    from segkit.io import load_events
    from segkit.sessions import split_sessions
    from segkit.simulate import simulate_shop

    shop = simulate_shop(300, n_days=14, seed=1, dirt=False, bot_share=0)
    events = load_events(shop.events, columns=shop.column_map, timezone=shop.timezone).events
    return split_sessions(events)


def test_buyers_and_cart_abandoners_differ_on_the_simulated_shop(shop_sessions):
    ev = shop_sessions
    flags = ev.assign(buy=ev["event"] == "purchase", cart=ev["event"] == "add_to_cart") \
        .groupby("session_id")[["buy", "cart"]].any()
    buyers = set(flags.index[flags["buy"]])
    abandoners = set(flags.index[flags["cart"] & ~flags["buy"]])
    assert len(buyers) >= 30 and len(abandoners) >= 30
    seqs = build_sequences(ev, item="page_type", collapse_repeats=True)
    sid = seqs.ids["session_id"]
    res = discriminative_patterns(seqs.subset(sid.isin(buyers)), seqs.subset(sid.isin(abandoners)), 0.2,
                                  labels=("buyers", "abandoners"), max_len=3)
    significant = res[res["significant"]]
    assert len(significant) >= 1
    assert (significant["enriched_in"] == "buyers").any()
    top = significant.iloc[0]
    assert top["share_buyers"] > top["share_abandoners"]
    # the top pattern, as a segment, holds for the users of the buyers' sessions that contain it
    members = evaluate_segments([Segment("top", pattern_condition(top["pattern"], item="page_type"))], events=ev)
    feats = pattern_features(seqs, [top["pattern"]])
    users = set(seqs.ids.loc[feats.iloc[:, 0].to_numpy() == 1, "user_id"])
    assert users <= set(members["user_id"])


def test_docstring_examples_of_the_new_functions():
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    names = {"discriminative_patterns", "pattern_features", "pattern_condition", "adjust_pvalues", "pattern_label"}
    tests = [t for t in finder.find(patterns_module) if t.name.rsplit(".", 1)[-1] in names]
    assert len(tests) == len(names)
    for t in tests:
        runner.run(t)
    assert runner.failures == 0


def test_pattern_condition_of_a_flow_pattern_mixes_page_types_and_actions():
    from segkit.patterns import pattern_condition

    cond = pattern_condition(("product", "add_to_cart"), item="flow")
    assert cond.to_dict()["then"] == [{"event": "page_view", "where": {"page_type": "product"}}, "add_to_cart"]
