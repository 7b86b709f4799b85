"""Tests of segkit.patterns.mine_patterns.

The fast engine is checked three ways: against the prefixspan package (frequent and top-k
answers must be identical), against a brute-force oracle of the definitions (closed, generator,
both), and on the published examples (the prefixspan README, Zaki's SPADE example).
"""
from __future__ import annotations

import copy
import re
import sys
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from conftest import require_shared
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segkit.errors import ParameterError, SegkitError
from segkit.patterns import mine_patterns

README_DB = [[0, 1, 2, 3, 4], [1, 1, 1, 3, 4], [2, 1, 2, 2, 0], [1, 1, 1, 2, 2]]


# --- brute-force oracle -------------------------------------------------------------------------

def _contains(seq, pat):
    it = iter(seq)
    return all(any(x == y for y in it) for x in pat)


def oracle(db, minsup, *, max_len=None):
    """All patterns with support >= minsup, by enumerating every subsequence of every sequence."""
    candidates = set()
    for s in db:
        for n in range(1, len(s) + 1 if max_len is None else min(len(s), max_len) + 1):
            candidates.update(combinations(s, n))
    support = {p: sum(_contains(s, p) for s in db) for p in candidates}
    return {p: v for p, v in support.items() if v >= minsup}


def oracle_closed(freq):
    return {p: v for p, v in freq.items()
            if not any(len(q) == len(p) + 1 and w == v and _contains(q, p) for q, w in freq.items())}


def oracle_generators(freq, n_sequences):
    def sub_support(p, j):
        return n_sequences if len(p) == 1 else freq[p[:j] + p[j + 1:]]
    return {p: v for p, v in freq.items() if all(sub_support(p, j) != v for j in range(len(p)))}


def as_dict(df):
    return dict(zip(df["pattern"], df["support"]))


def expected_order(d):
    return sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))


# --- hypothesis: random databases -----------------------------------------------------------------

databases = st.lists(st.lists(st.integers(0, 3), max_size=7), max_size=8)
supports = st.one_of(st.integers(1, 4), st.sampled_from([0.1, 0.25, 0.5, 0.6, 1.0]))
fast_settings = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _abs(minsup, n):
    import math
    return minsup if isinstance(minsup, int) else max(1, math.ceil(minsup * n - 1e-9))


@fast_settings
@given(db=databases, minsup=supports, max_len=st.one_of(st.none(), st.integers(1, 4)),
       min_len=st.integers(1, 3))
def test_fast_equals_package_frequent(db, minsup, max_len, min_len):
    if max_len is not None and max_len < min_len:
        max_len = min_len
    fast = mine_patterns(db, minsup, engine="fast", max_len=max_len, min_len=min_len)
    ref = mine_patterns(db, minsup, engine="prefixspan", max_len=max_len, min_len=min_len)
    pd.testing.assert_frame_equal(fast, ref)
    truth = {p: v for p, v in oracle(db, _abs(minsup, len(db)), max_len=max_len).items() if len(p) >= min_len}
    assert list(zip(fast["pattern"], fast["support"])) == expected_order(truth)


@fast_settings
@given(db=databases, minsup=supports, max_len=st.one_of(st.none(), st.integers(1, 3)))
def test_fast_closed_and_generators_follow_the_definitions(db, minsup, max_len):
    ms = _abs(minsup, len(db))
    freq = oracle(db, ms)
    closed = oracle_closed(freq)
    gens = oracle_generators(freq, len(db))
    short = (lambda d: d) if max_len is None else (lambda d: {p: v for p, v in d.items() if len(p) <= max_len})
    assert as_dict(mine_patterns(db, minsup, closed=True, max_len=max_len)) == short(closed)
    assert as_dict(mine_patterns(db, minsup, generator=True, max_len=max_len)) == short(gens)
    both = {p: v for p, v in closed.items() if p in gens}
    assert as_dict(mine_patterns(db, minsup, closed=True, generator=True, max_len=max_len)) == short(both)


@fast_settings
@given(db=databases, minsup=st.integers(1, 4))
def test_package_closed_and_generators_bracket_the_exact_ones(db, minsup):
    # The package's BIDE-like closed check may keep non-closed patterns, its generator check may
    # drop generators; everything it keeps or drops wrongly is on the safe side of the definition.
    fast_c = as_dict(mine_patterns(db, minsup, closed=True))
    ref_c = as_dict(mine_patterns(db, minsup, closed=True, engine="prefixspan"))
    assert fast_c.items() <= ref_c.items()
    fast_g = as_dict(mine_patterns(db, minsup, generator=True))
    ref_g = as_dict(mine_patterns(db, minsup, generator=True, engine="prefixspan"))
    assert ref_g.items() <= fast_g.items()


@fast_settings
@given(db=databases, minsup=supports, top_k=st.integers(1, 12), closed=st.booleans(),
       max_len=st.one_of(st.none(), st.integers(1, 4)))
def test_fast_equals_package_top_k(db, minsup, top_k, closed, max_len):
    fast = mine_patterns(db, minsup, top_k=top_k, max_len=max_len)
    ref = mine_patterns(db, minsup, top_k=top_k, max_len=max_len, engine="prefixspan")
    pd.testing.assert_frame_equal(fast, ref)
    # ties are broken by the pattern order: the result is the head of the full sorted list
    full = mine_patterns(db, minsup, max_len=max_len, closed=closed)
    pd.testing.assert_frame_equal(mine_patterns(db, minsup, top_k=top_k, max_len=max_len, closed=closed),
                                  full.head(top_k))


@fast_settings
@given(db=databases, top_k=st.integers(1, 10))
def test_top_k_supports_equal_the_package_topk(db, top_k):
    from prefixspan import PrefixSpan

    ours = mine_patterns(db, 1, top_k=top_k)["support"].tolist()
    theirs = sorted((s for s, _ in PrefixSpan(db).topk(top_k)), reverse=True)
    assert ours == theirs


@fast_settings
@given(db=databases, minsup=st.integers(1, 3), contain=st.integers(0, 3), end=st.integers(0, 3),
       top_k=st.one_of(st.none(), st.integers(1, 6)), min_len=st.integers(1, 2))
def test_item_filters_equal_the_package(db, minsup, contain, end, top_k, min_len):
    present = {x for s in db for x in s}
    contain = contain if contain in present else None
    end = end if end in present else None
    kw = dict(must_contain=contain, must_end_with=end, top_k=top_k, min_len=min_len)
    fast = mine_patterns(db, minsup, **kw)
    pd.testing.assert_frame_equal(fast, mine_patterns(db, minsup, engine="prefixspan", **kw))
    assert all((contain is None or contain in p) and (end is None or p[-1] == end) for p in fast["pattern"])


@fast_settings
@given(db=st.lists(st.lists(st.sampled_from(["a", "b", "c"]), min_size=0, max_size=6), max_size=6),
       minsup=st.integers(1, 3))
def test_string_items_equal_the_package(db, minsup):
    for kw in ({}, {"max_len": 2}, {"min_len": 2, "top_k": 3}):
        pd.testing.assert_frame_equal(mine_patterns(db, minsup, **kw),
                                      mine_patterns(db, minsup, engine="prefixspan", **kw))


# --- the package's deviations, pinned down -------------------------------------------------------

def test_package_closed_keeps_a_pattern_with_an_equal_support_super_pattern():
    db = [[0, 4, 0, 1], [0, 4, 1]]
    ref = as_dict(mine_patterns(db, 2, closed=True, engine="prefixspan"))
    fast = as_dict(mine_patterns(db, 2, closed=True))
    assert ref[(0, 1)] == 2 and as_dict(mine_patterns(db, 2))[(0, 4, 1)] == 2
    assert (0, 1) not in fast and fast == oracle_closed(oracle(db, 2))


def test_package_generator_misses_a_generator():
    db = [[0, 2, 3, 1, 2], [0, 1, 2, 3], [1, 2, 3], [0, 1, 3]]
    ref = as_dict(mine_patterns(db, 1, generator=True, engine="prefixspan"))
    fast = as_dict(mine_patterns(db, 1, generator=True))
    # (1, 2, 3) has support 2; (2, 3), (1, 3) and (1, 2) all have support 3
    assert fast[(1, 2, 3)] == 2 and (1, 2, 3) not in ref
    assert fast == oracle_generators(oracle(db, 1), len(db))


def test_package_generator_misses_repeated_item_generators():
    # (p, p, p) has support 1 and its only deletion (p, p) support 2, so it is a generator; the
    # package's prefix-based check drops it (on the simulated page-type journeys it drops most of
    # the generators this way: product, product, product, ...)
    db = [["p", "p", "p"], ["p", "p"], ["p"]]
    assert as_dict(mine_patterns(db, 1, generator=True)) == {("p", "p"): 2, ("p", "p", "p"): 1}
    assert as_dict(mine_patterns(db, 1, generator=True, engine="prefixspan")) == {("p", "p"): 2}


# --- published examples: the prefixspan README ---------------------------------------------------

def _readme_blocks(text):
    """``{command: {pattern: support}}`` for every ``prefixspan-cli ...`` output block."""
    blocks = {}
    for cmd, body in re.findall(r"``` text\n(prefixspan-cli [^\n]+)\n\n(.*?)```", text, flags=re.S):
        rows = [line.rsplit(" : ", 1) for line in body.strip().splitlines()]
        blocks[cmd.strip()] = {tuple(p.split()): int(s) for p, s in rows}
    return blocks


@pytest.fixture(scope="module")
def readme():
    text = require_shared("prefixspan_readme", "README.md").read_text()
    dat = re.search(r"cat test\.dat\n\n(.*?)```", text, flags=re.S).group(1)
    txt = re.search(r"cat test\.txt\n\n(.*?)```", text, flags=re.S).group(1)
    return {
        "dat": [[int(x) for x in line.split()] for line in dat.strip().splitlines()],
        "txt": [line.split() for line in txt.strip().splitlines()],
        "blocks": _readme_blocks(text),
        "text": text,
    }


def test_readme_database_is_the_api_example(readme):
    assert readme["dat"] == README_DB
    assert "\n".join(f"    {row}," for row in map(str, README_DB)) in readme["text"]


@pytest.mark.parametrize("engine", ["fast", "prefixspan"])
@pytest.mark.parametrize("cmd, kw, n", [
    ("prefixspan-cli frequent 2 test.dat", {}, 14),
    ("prefixspan-cli frequent 2 --closed test.dat", {"closed": True}, 6),
    ("prefixspan-cli frequent 2 --generator test.dat", {"generator": True}, 6),
    ("prefixspan-cli frequent 2 --closed --generator test.dat", {"closed": True, "generator": True}, 1),
])
def test_readme_outputs(readme, engine, cmd, kw, n):
    expected = {tuple(int(x) for x in p): s for p, s in readme["blocks"][cmd].items()}
    got = mine_patterns(readme["dat"], 2, engine=engine, **kw)
    assert len(expected) == n and len(got) == n
    assert as_dict(got) == expected


def test_readme_text_output(readme):
    expected = readme["blocks"]["prefixspan-cli frequent 2 --text test.txt"]
    assert len(expected) == 14
    assert as_dict(mine_patterns(readme["txt"], 2)) == expected


def test_readme_topk_supports(readme):
    # README: topk(5) -> [(4, [1]), (3, [2]), (3, [1, 2]), (2, [1, 3]), (2, [1, 3, 4])]; the
    # package breaks ties by search order, segkit by pattern order, so compare supports and the
    # patterns above the tie.
    got = mine_patterns(readme["dat"], 1, top_k=5)
    assert got["support"].tolist() == [4, 3, 3, 2, 2]
    assert set(got["pattern"][:3]) == {(1,), (2,), (1, 2)}


# --- published examples: Zaki's SPADE example (arulesSequences) ----------------------------------
#
# SPADE mines sequences of itemsets; segkit mines sequences of single items. The saved cspade
# output is therefore checked with an itemset-sequence oracle (which validates the reading of
# both files), and mine_patterns is checked only where the semantics coincide: single items.
# Flattening each itemset into items loses "same event" versus "later event", so on the
# flattened database mine_patterns' supports of multi-element patterns are upper bounds of
# SPADE's (and can exceed them, as the last test shows).

def _zaki():
    rows = [line.split() for line in require_shared("zaki_spade", "zaki.txt").read_text().splitlines() if line.strip()]
    db = {}
    for sid, _eid, size, *items in rows:
        assert int(size) == len(items)
        db.setdefault(int(sid), []).append(frozenset(items))
    return [db[k] for k in sorted(db)]


def _cspade_block(text, header):
    """Parse an ``as(..., "data.frame")``-style listing: ``[(elements, support)]``."""
    body = text.split(header, 1)[1].split("\n> ", 1)[0]
    out = []
    for line in body.strip().splitlines()[1:]:
        m = re.match(r"\s*\d+\s+(<\S+>)\s+([\d.]+)", line)
        if m:
            elements = tuple(frozenset(e.split(",")) for e in re.findall(r"\{([^}]*)\}", m.group(1)))
            out.append((elements, float(m.group(2))))
    return out


def _contains_itemsets(seq, pattern):
    i = 0
    for element in pattern:
        while i < len(seq) and not element <= seq[i]:
            i += 1
        if i == len(seq):
            return False
        i += 1
    return True


def _spade_oracle(db, minsup, maxsize=10, maxlen=10):
    """Every itemset-sequence pattern with support >= minsup, grown element by element."""
    elements = {frozenset(c) for s in db for itemset in s for n in range(1, min(len(itemset), maxsize) + 1)
                for c in combinations(sorted(itemset), n)}
    support = lambda p: sum(_contains_itemsets(s, p) for s in db)  # noqa: E731
    found, frontier = {}, [()]
    while frontier:
        nxt = []
        for p in frontier:
            if len(p) == maxlen:
                continue
            for e in elements:
                q = p + (e,)
                if q not in found and (v := support(q)) >= minsup:
                    found[q] = v
                    nxt.append(q)
        frontier = nxt
    return found


@pytest.fixture(scope="module")
def zaki():
    text = require_shared("zaki_spade", "zaki.Rout.save").read_text()
    return {
        "db": _zaki(),
        "s1": _cspade_block(text, "> d1\n"),
        "s2": _cspade_block(text, '> as(s2, "data.frame")\n'),
    }


def test_zaki_saved_output_matches_the_itemset_oracle(zaki):
    db = zaki["db"]
    assert len(db) == 4 and len(zaki["s1"]) == 18 and len(zaki["s2"]) == 14
    # support 0.4 of 4 sequences -> at least 2 sequences
    s1 = _spade_oracle(db, 2)
    assert {p: v / 4 for p, v in s1.items()} == dict(zaki["s1"])
    s2 = _spade_oracle(db, 2, maxsize=2, maxlen=2)
    assert {p: v / 4 for p, v in s2.items()} == dict(zaki["s2"])


def test_zaki_single_items_match_cspade(zaki):
    flat = [[item for itemset in s for item in sorted(itemset)] for s in zaki["db"]]
    got = as_dict(mine_patterns(flat, 0.4, max_len=1))
    expected = {tuple(sorted(p[0])): v * 4 for p, v in zaki["s1"] if len(p) == 1 and len(p[0]) == 1}
    assert expected == {("A",): 4, ("B",): 4, ("D",): 2, ("F",): 4}
    assert got == expected


def test_zaki_single_item_element_patterns_are_bounded_on_the_flattening(zaki):
    flat = [[item for itemset in s for item in sorted(itemset)] for s in zaki["db"]]
    got = as_dict(mine_patterns(flat, 0.4))
    single = {tuple(next(iter(e)) for e in p): v * 4 for p, v in zaki["s1"] if all(len(e) == 1 for e in p)}
    assert len(single) == 11
    assert all(got[p] >= v for p, v in single.items())
    # ... but not equal in general: A then B inside one event is no SPADE <{A},{B}>
    assert got[("A", "B")] == 3
    assert _spade_oracle(zaki["db"], 1)[(frozenset("A"), frozenset("B"))] == 1


# --- semantics -----------------------------------------------------------------------------------

def test_support_counts_each_sequence_once():
    out = mine_patterns([["a", "a", "a"], ["a"]], 1)
    assert as_dict(out) == {("a",): 2, ("a", "a"): 1, ("a", "a", "a"): 1}


def test_columns_dtypes_and_order():
    out = mine_patterns(README_DB, 2)
    assert list(out.columns) == ["pattern", "support", "length"]
    assert out["support"].dtype == np.int64 and out["length"].dtype == np.int64
    assert (out["length"] == out["pattern"].map(len)).all()
    assert list(zip(out["pattern"], out["support"])) == expected_order(as_dict(out))
    assert out.attrs == {"min_support": 2, "n_sequences": 4, "engine": "fast"}


def test_fraction_is_rounded_up():
    db = [["a"]] * 7 + [["b"]] * 93
    assert mine_patterns(db, 0.07).attrs["min_support"] == 7
    assert mine_patterns(db, 0.071)["pattern"].tolist() == [("b",)]
    assert mine_patterns([["a"], ["a", "b"], ["b"]], 0.5).attrs["min_support"] == 2


def test_mixed_item_types_have_a_deterministic_order():
    db = [[1, "a", (2, 3)], ["a", 1, (2, 3)]]
    a = mine_patterns(db, 2)
    b = mine_patterns(db[::-1], 2)
    pd.testing.assert_frame_equal(a, b)
    # items by (type name, repr): int < str < tuple; a pattern before its extensions
    assert a["pattern"].tolist() == [(1,), (1, (2, 3)), ("a",), ("a", (2, 3)), ((2, 3),)]


def test_numbers_sort_naturally():
    out = mine_patterns([[10, 2, 1]], 1, max_len=1)
    assert out["pattern"].tolist() == [(1,), (2,), (10,)]


def test_empty_inputs():
    for db in ([], [[]], [[], []]):
        out = mine_patterns(db, 1)
        assert out.empty and list(out.columns) == ["pattern", "support", "length"]
    assert mine_patterns([["a"]], 2).empty


def test_closed_is_judged_beyond_max_len():
    db = [["a", "b", "c"], ["a", "b", "c"]]
    for engine in ("fast", "prefixspan"):
        assert mine_patterns(db, 2, closed=True, max_len=2, engine=engine).empty
        assert as_dict(mine_patterns(db, 2, closed=True, engine=engine)) == {("a", "b", "c"): 2}


def test_item_in_every_sequence_is_not_a_generator():
    out = mine_patterns([["a", "b"], ["a"]], 1, generator=True)
    assert as_dict(out) == {("b",): 1}


def test_input_is_not_mutated_and_tuples_and_arrays_are_accepted():
    db = [["a", "b"], ("a", "c"), np.array(["b", "a"])]
    before = copy.deepcopy(db)
    out = mine_patterns(db, 2)
    assert as_dict(out) == {("a",): 3, ("b",): 2}
    assert [list(s) for s in db] == [list(s) for s in before]
    pd.testing.assert_frame_equal(mine_patterns(pd.Series([list(s) for s in db]), 2), out)


def test_infrequent_filter_item_gives_an_empty_result():
    assert mine_patterns([["a", "b"], ["a"]], 2, must_contain="b").empty


def test_auto_is_fast():
    assert mine_patterns(README_DB, 2, engine="auto").attrs["engine"] == "fast"


# --- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [0, -1, 1.5, 0.0, True, "2", None, float("nan")])
def test_bad_min_support(bad):
    with pytest.raises(ParameterError, match="min_support"):
        mine_patterns(README_DB, bad)


def test_string_as_a_sequence_is_rejected_with_its_index():
    with pytest.raises(ParameterError, match=r"sequences\[1\].*string is not a sequence"):
        mine_patterns([["a"], "abc"], 1)


def test_sequences_must_be_a_list():
    with pytest.raises(ParameterError, match="must be a list of sequences"):
        mine_patterns("abc", 1)
    with pytest.raises(ParameterError, match=r"sequences\[0\].*set"):
        mine_patterns([{"a", "b"}], 1)


def test_unhashable_item_is_named():
    with pytest.raises(ParameterError, match=r"sequences\[1\]\[2\] = \['x'\].*not hashable"):
        mine_patterns([["a"], ["a", "b", ["x"]]], 1)


def test_missing_item_is_named():
    with pytest.raises(ParameterError, match=r"sequences\[0\]\[1\] = None.*missing"):
        mine_patterns([["a", None]], 1)
    with pytest.raises(ParameterError, match=r"sequences\[1\]\[0\] = nan"):
        mine_patterns([[1.0], [float("nan")]], 1)


@pytest.mark.parametrize("kw, match", [
    ({"top_k": 0}, "top_k"),
    ({"top_k": True}, "top_k"),
    ({"min_len": 0}, "min_len"),
    ({"max_len": 0}, "max_len"),
    ({"min_len": 3, "max_len": 2}, r"max_len.*min_len \(3\)"),
    ({"closed": "yes"}, "closed"),
    ({"generator": 1}, "generator"),
    ({"engine": "fsat"}, "did you mean 'fast'"),
    ({"must_contain": ["a"]}, "must_contain"),
])
def test_bad_options(kw, match):
    with pytest.raises(ParameterError, match=match):
        mine_patterns(README_DB, 2, **kw)


def test_spark_is_an_engine_and_needs_pyspark(monkeypatch):
    from segkit.patterns import ENGINES
    from segkit.spark import SparkUnavailableError

    assert "spark" in ENGINES
    monkeypatch.setitem(sys.modules, "pyspark", None)
    for db in (README_DB, []):  # checked even when nothing can be frequent
        with pytest.raises(SparkUnavailableError, match=r"pyspark, which is not installed.*segkit\[spark\]"):
            mine_patterns(db, 2, engine="spark")
    with pytest.raises(ParameterError, match="min_support"):  # parameters are checked first
        mine_patterns(README_DB, 0, engine="spark")


def test_unknown_filter_item_suggests_the_closest():
    with pytest.raises(ParameterError, match=r"must_end_with.*'chekout'.*did you mean 'checkout'"):
        mine_patterns([["home", "checkout"]], 1, must_end_with="chekout")
    with pytest.raises(ParameterError, match="must_contain"):
        mine_patterns(README_DB, 1, must_contain=9)


def test_errors_are_segkit_errors():
    with pytest.raises(SegkitError):
        mine_patterns([["a"]], 0)
