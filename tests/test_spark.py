"""Tests of segkit.spark on one local[2] session: PrefixSpan on Spark MLlib gives exactly
mine_patterns' answer (published examples, a pattern longer than Spark's default cap of 10, the
rounding of fractional supports, random databases), K-Means on Spark recovers separated blobs
deterministically, and the session is quiet and offline.

pyspark and Java come with ``make setup`` (the ``spark`` extra); without them the module is
skipped, except under CI (``CI`` set), where it fails.
"""
from __future__ import annotations

import math
import os
import re
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import require_shared, require_spark
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


require_spark()

from sklearn.datasets import make_blobs  # noqa: E402
from sklearn.metrics import adjusted_rand_score  # noqa: E402

from segkit.errors import ParameterError, SegkitError  # noqa: E402
from segkit.patterns import mine_patterns  # noqa: E402
from segkit.spark import (  # noqa: E402
    SparkUnavailableError,
    _check_java,
    _spark_fraction,
    kmeans_spark,
    mine_patterns_spark,
    spark_connection,
    spark_session,
    to_spark_df,
)

pytestmark = pytest.mark.spark

README_DB = [[0, 1, 2, 3, 4], [1, 1, 1, 3, 4], [2, 1, 2, 2, 0], [1, 1, 1, 2, 2]]
@pytest.fixture(scope="module")
def session(spark):
    return spark


def assert_same(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, expected)
    assert got.attrs["engine"] == "spark"
    assert {k: got.attrs[k] for k in ("min_support", "n_sequences")} == \
        {k: expected.attrs[k] for k in ("min_support", "n_sequences")}


# --- the session --------------------------------------------------------------------------------

def test_session_is_quiet_offline_and_reused(session):
    conf = session.sparkContext.getConf()
    assert session.sparkContext.master == "local[2]"
    assert conf.get("spark.ui.enabled") == "false" and conf.get("spark.eventLog.enabled") == "false"
    assert conf.get("spark.driver.host") == "127.0.0.1" and conf.get("spark.driver.bindAddress") == "127.0.0.1"
    assert os.environ["SPARK_LOCAL_IP"] == "127.0.0.1"
    assert session.conf.get("spark.sql.session.timeZone") == "UTC"
    assert session.conf.get("spark.sql.shuffle.partitions") == "4"
    assert "log4j2.configurationFile" in conf.get("spark.driver.extraJavaOptions")
    assert "segkit-spark-warehouse-" in session.conf.get("spark.sql.warehouse.dir")
    assert spark_session() is session
    assert spark_session("local[2]", {"spark.sql.shuffle.partitions": 4}) is session


def test_a_running_session_that_differs_is_an_error(session):
    with pytest.raises(ParameterError, match=r"already running.*master is 'local\[2\]', not 'local\[1\]'"):
        spark_session("local[1]")
    with pytest.raises(ParameterError, match=r"spark.sql.shuffle.partitions is '4', not '9'.*session.stop\(\)"):
        spark_session(config={"spark.sql.shuffle.partitions": 9})


@pytest.mark.parametrize("kwargs, name", [
    ({"master": ""}, "master"),
    ({"config": ["spark.ui.enabled"]}, "config"),
    ({"config": {"ui.enabled": "false"}}, "config"),
    ({"log_level": "LOUD"}, "log_level"),
])
def test_bad_session_arguments(kwargs, name):
    with pytest.raises(ParameterError, match=name) as info:
        spark_session(**kwargs)
    assert info.value.name == name


def test_missing_pyspark_names_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark", None)
    with pytest.raises(SparkUnavailableError, match=r"pyspark, which is not installed.*pip install 'segkit\[spark\]'"):
        spark_session()


def test_missing_java_names_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(SparkUnavailableError, match=r"JAVA_HOME=.* has no bin/java.*openjdk-17"):
        _check_java()
    monkeypatch.delenv("JAVA_HOME")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SegkitError, match=r"no 'java' is on PATH.*Java runtime, 17 or newer"):
        _check_java()


def test_ibis_connection_and_spark_frames(session, tmp_path):
    frame = pd.DataFrame({"user_id": ["a", "a", "b"], "n": [1, 2, 3],
                          "timestamp": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 11:00", "2024-01-02 00:00"], utc=True)})
    sdf = to_spark_df(frame, session=session)
    assert dict(sdf.dtypes) == {"user_id": "string", "n": "bigint", "timestamp": "timestamp"}
    path = tmp_path / "events.parquet"
    frame.to_parquet(path)
    assert to_spark_df(path, session=session).count() == 3
    with pytest.raises(ParameterError, match="does not exist"):
        to_spark_df(tmp_path / "missing.parquet", session=session)
    with pytest.raises(ParameterError, match="Expected a pandas DataFrame"):
        to_spark_df([1, 2], session=session)
    con = spark_connection(session)
    t = con.read_parquet(str(path))
    got = t.group_by("user_id").aggregate(total=t.n.sum(), first=t.timestamp.min()).order_by("user_id").execute()
    assert got["total"].tolist() == [3, 3]
    # the pyspark backend types every timestamp as naive: UTC values without the zone
    assert got["first"].tolist() == [frame.timestamp[0].tz_localize(None), frame.timestamp[2].tz_localize(None)]
    assert to_spark_df(t, session=session).count() == 3


# --- patterns: published examples ---------------------------------------------------------------

@pytest.fixture(scope="module")
def readme():
    text = require_shared("prefixspan_readme", "README.md").read_text()
    dat = re.search(r"cat test\.dat\n\n(.*?)```", text, flags=re.S).group(1)
    txt = re.search(r"cat test\.txt\n\n(.*?)```", text, flags=re.S).group(1)
    block = re.search(r"prefixspan-cli frequent 2 test\.dat\n\n(.*?)```", text, flags=re.S).group(1)
    return {
        "dat": [[int(x) for x in line.split()] for line in dat.strip().splitlines()],
        "txt": [line.split() for line in txt.strip().splitlines()],
        "frequent": {tuple(int(x) for x in p.split()): int(s) for p, s in
                     (line.rsplit(" : ", 1) for line in block.strip().splitlines())},
    }


def test_readme_example_equals_mine_patterns(session, readme):
    assert readme["dat"] == README_DB
    got = mine_patterns_spark(readme["dat"], 2, session=session)
    assert_same(got, mine_patterns(readme["dat"], 2))
    assert dict(zip(got["pattern"], got["support"])) == readme["frequent"] and len(got) == 14
    assert_same(mine_patterns_spark(readme["txt"], 2, session=session), mine_patterns(readme["txt"], 2))
    assert_same(mine_patterns_spark(readme["dat"], 1, top_k=5, session=session), mine_patterns(readme["dat"], 1, top_k=5))


def test_zaki_example_equals_mine_patterns(session):
    rows = [line.split() for line in require_shared("zaki_spade", "zaki.txt").read_text().splitlines() if line.strip()]
    db: dict[int, list[str]] = {}
    for sid, _eid, _size, *items in rows:
        db.setdefault(int(sid), []).extend(sorted(items))
    flat = [db[k] for k in sorted(db)]
    assert_same(mine_patterns_spark(flat, 0.4, session=session), mine_patterns(flat, 0.4))
    singles = mine_patterns_spark(flat, 0.4, max_len=1, session=session)
    # cspade's single-item patterns at support 0.4 (zaki.Rout.save)
    assert dict(zip(singles["pattern"], singles["support"])) == {("A",): 4, ("B",): 4, ("D",): 2, ("F",): 4}


# --- patterns: longer than Spark's default maxPatternLength --------------------------------------

def test_patterns_longer_than_ten_are_kept_and_max_len_cuts_both(session):
    db = [list("abcdefghijklmn")] * 3 + [["a", "b"], ["n"]]
    full = mine_patterns_spark(db, 3)
    assert_same(full, mine_patterns(db, 3))
    assert full["length"].max() == 14 and tuple("abcdefghijklmn") in set(full["pattern"])
    assert len(full) == 2 ** 14 - 1
    cut = mine_patterns_spark(db, 3, max_len=5)
    assert_same(cut, mine_patterns(db, 3, max_len=5))
    assert cut["length"].max() == 5
    assert_same(mine_patterns_spark(db, 3, min_len=12, top_k=4), mine_patterns(db, 3, min_len=12, top_k=4))


# --- patterns: supports -------------------------------------------------------------------------

def test_spark_fraction_gives_exactly_the_count():
    # Spark turns minSupport into ceil(minSupport * n); m / n alone can overshoot (0.07 * 100 > 7)
    assert math.ceil(7 / 100 * 100) == 8
    for n in range(1, 400):
        for m in range(1, n + 1):
            f = _spark_fraction(m, n)
            assert 0 < f <= 1 and math.ceil(f * n) == m, (m, n)
    for n in (10**6 + 3, 2**31 + 11):
        for m in (1, 7, n // 3, n - 1, n):
            assert math.ceil(_spark_fraction(m, n) * n) == m


def _threshold_db(n: int, m: int) -> list[list[str]]:
    """n sequences: 'x' in exactly m of them, 'y' in m - 1, 'z' in m + 1 (when they fit)."""
    return [[item for item, count in (("x", m), ("y", m - 1), ("z", m + 1)) if i < count] for i in range(n)]


@pytest.mark.parametrize("n, min_support, count", [
    (100, 0.07, 7),       # 0.07 * 100 = 7.000000000000001: the 1e-9 tolerance keeps 7
    (100, 7, 7),          # an int: Spark's minSupport must not become 8
    (10, 0.3, 3),         # 0.3 * 10 = 3.0000000000000004
    (3, 2 / 3, 2),
    (49, 0.5, 25),        # ceil(24.5)
    (29, 0.1, 3),         # ceil(2.9)
    (7, 1.0, 7),
])
def test_fractional_and_count_supports_round_like_mine_patterns(session, n, min_support, count):
    db = _threshold_db(n, count)
    got = mine_patterns_spark(db, min_support, session=session)
    assert_same(got, mine_patterns(db, min_support))
    assert got.attrs["min_support"] == count
    assert ("x",) in set(got["pattern"]) and ("y",) not in set(got["pattern"])


def test_support_above_the_number_of_sequences_and_empty_inputs(session):
    for db, ms in (([["a"], ["a"]], 3), ([], 1), ([[], []], 0.5), ([[]], 1)):
        assert_same(mine_patterns_spark(db, ms, session=session), mine_patterns(db, ms))


def test_spark_dataframe_input_equals_the_list_input(session):
    db = [["home", "product", "cart"], ["home", "search", "product"], ["product", "cart"], []]
    sdf = session.createDataFrame([(s,) for s in db], "journey array<string>")
    assert_same(mine_patterns_spark(sdf, 2 / 4, sequence_col="journey"), mine_patterns(db, 0.5))
    with pytest.raises(ParameterError, match="Column 'sequence' not found.*did you mean|Available"):
        mine_patterns_spark(sdf, 2)
    bad = session.createDataFrame([(["a", None],), (None,)], "sequence array<string>")
    with pytest.raises(ParameterError, match="null sequence"):
        mine_patterns_spark(bad, 1)
    with pytest.raises(ParameterError, match="sequence_col"):
        mine_patterns_spark(db, 2, sequence_col="journey", session=session)
    with pytest.raises(ParameterError, match="not the session of the Spark DataFrame"):
        mine_patterns_spark(sdf, 2, sequence_col="journey", session=object())


def test_input_is_not_mutated(session):
    db = [[3, 1, 2], [1, 2]]
    before = [list(s) for s in db]
    mine_patterns_spark(db, 1, session=session)
    assert db == before


# --- patterns: random databases -----------------------------------------------------------------

@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(db=st.lists(st.lists(st.integers(0, 4), max_size=12), max_size=9),
       minsup=st.one_of(st.integers(1, 4), st.sampled_from([0.1, 0.25, 0.3, 0.5, 2 / 3, 1.0])),
       max_len=st.one_of(st.none(), st.integers(1, 4)), min_len=st.integers(1, 2),
       top_k=st.one_of(st.none(), st.integers(1, 8)))
def test_random_databases_equal_mine_patterns(session, db, minsup, max_len, min_len, top_k):
    if max_len is not None and max_len < min_len:
        max_len = min_len
    kw = dict(max_len=max_len, min_len=min_len, top_k=top_k)
    assert_same(mine_patterns_spark(db, minsup, session=session, **kw), mine_patterns(db, minsup, **kw))


# --- patterns: errors (raised before Spark runs) --------------------------------------------------

@pytest.mark.parametrize("min_support", [0, -1, 0.0, 1.5, float("nan"), True, "2", None])
def test_bad_min_support(min_support):
    with pytest.raises(ParameterError, match="min_support") as info:
        mine_patterns_spark(README_DB, min_support)
    assert info.value.name == "min_support"


@pytest.mark.parametrize("kwargs, name", [
    ({"max_len": 0}, "max_len"), ({"max_len": 2.5}, "max_len"), ({"max_len": 1, "min_len": 2}, "max_len"),
    ({"min_len": 0}, "min_len"), ({"top_k": 0}, "top_k"),
])
def test_bad_lengths_and_top_k(kwargs, name):
    with pytest.raises(ParameterError, match=name) as info:
        mine_patterns_spark(README_DB, 2, **kwargs)
    assert info.value.name == name


def test_bad_sequences_are_named():
    with pytest.raises(ParameterError, match=r"sequences\[1\]"):
        mine_patterns_spark([["a"], "ab"], 1)
    with pytest.raises(ParameterError, match=r"sequences\[0\]\[1\]"):
        mine_patterns_spark([["a", None]], 1)


# --- K-Means ------------------------------------------------------------------------------------

def test_kmeans_recovers_separated_blobs_deterministically(session):
    X, y = make_blobs(600, n_features=3, centers=[[0, 0, 0], [10, 10, 0], [0, 10, 10], [10, 0, 10]],
                      cluster_std=0.6, random_state=3)
    first = kmeans_spark(X, 4, random_state=7, session=session)
    assert adjusted_rand_score(y, first.labels) == 1.0
    assert first.labels.dtype == np.int64 and first.centers.shape == (4, 3) and first.n_clusters == 4
    means = np.array([X[first.labels == c].mean(axis=0) for c in range(4)])
    np.testing.assert_allclose(first.centers, means, atol=1e-6)
    assert first.inertia == pytest.approx(((X - first.centers[first.labels]) ** 2).sum())
    sizes = np.bincount(first.labels)
    assert (np.diff(sizes) <= 0).all()  # numbered by size
    again = kmeans_spark(X, 4, random_state=7, session=session)
    np.testing.assert_array_equal(again.labels, first.labels)
    np.testing.assert_array_equal(again.centers, first.centers)


@pytest.mark.parametrize("kwargs, name", [
    ({"X": np.zeros(5), "n_clusters": 2}, "X"),
    ({"X": np.array([[0.0], [np.nan]]), "n_clusters": 2}, "X"),
    ({"X": np.zeros((5, 2)), "n_clusters": 1}, "n_clusters"),
    ({"X": np.zeros((5, 2)), "n_clusters": 6}, "n_clusters"),
    ({"X": np.zeros((5, 2)), "n_clusters": 2, "max_iter": 0}, "max_iter"),
    ({"X": np.zeros((5, 2)), "n_clusters": 2, "random_state": None}, "random_state"),
    ({"X": np.zeros((5, 2)), "n_clusters": 2, "init": "kmeans++"}, "init"),
])
def test_kmeans_bad_arguments(kwargs, name):
    with pytest.raises(ParameterError, match=name) as info:
        kmeans_spark(**kwargs)
    assert info.value.name == name


# --- mine_patterns(engine="spark"): the public API on Spark --------------------------------------

def assert_engines_equal(db, min_support, **kw) -> pd.DataFrame:
    """mine_patterns on Spark is engine="fast"'s frame (dtypes, order), attrs["engine"] aside."""
    got = mine_patterns(db, min_support, engine="spark", **kw)
    expected = mine_patterns(db, min_support, engine="fast", **kw)
    pd.testing.assert_frame_equal(got, expected)
    assert got.attrs == {**expected.attrs, "engine": "spark"}
    return got


@pytest.mark.parametrize("kw, n", [
    ({}, 14), ({"closed": True}, 6), ({"generator": True}, 6), ({"closed": True, "generator": True}, 1),
])
def test_engine_spark_equals_fast_on_the_readme_database(session, readme, kw, n):
    # the README's counts: prefixspan-cli frequent 2 [--closed] [--generator] test.dat
    assert len(assert_engines_equal(readme["dat"], 2, **kw)) == n


def test_engine_spark_top_k_lengths_and_item_filters(session, readme):
    assert_engines_equal(readme["dat"], 1, top_k=5)
    assert_engines_equal(readme["txt"], 2, must_contain="c", min_len=2)
    assert_engines_equal(readme["dat"], 2, must_end_with=2, top_k=3)
    assert_engines_equal(readme["dat"], 2, closed=True, max_len=2, must_contain=1)


def test_engine_spark_equals_fast_on_zakis_example(session):
    rows = [line.split() for line in require_shared("zaki_spade", "zaki.txt").read_text().splitlines() if line.strip()]
    db: dict[int, list[str]] = {}
    for sid, _eid, _size, *items in rows:
        db.setdefault(int(sid), []).extend(sorted(items))
    flat = [db[k] for k in sorted(db)]
    assert_engines_equal(flat, 0.4)
    assert_engines_equal(flat, 0.4, generator=True, min_len=2)


def test_engine_spark_keeps_a_14_item_pattern_and_max_len_cuts_both(session):
    from pyspark.ml.fpm import PrefixSpan

    assert PrefixSpan().getMaxPatternLength() == 10  # Spark's default, which would drop the long pattern
    db = [list("abcdefghijklmn")] * 3 + [["a", "b"], ["n"]]
    full = assert_engines_equal(db, 3)
    assert full["length"].max() == 14 and tuple("abcdefghijklmn") in set(full["pattern"])
    cut = assert_engines_equal(db, 3, max_len=5)
    assert cut["length"].max() == 5 and len(cut) == sum(math.comb(14, j) for j in range(1, 6))
    # closed is judged one level beyond max_len, as the fast engine does
    assert assert_engines_equal(db, 3, closed=True)["pattern"].tolist() == [("a", "b"), ("n",), tuple("abcdefghijklmn")]
    assert set(assert_engines_equal(db, 3, closed=True, max_len=12)["pattern"]) == {("a", "b"), ("n",)}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(db=st.lists(st.lists(st.sampled_from("pqrs"), min_size=1, max_size=8), min_size=1, max_size=7),
       minsup=st.integers(1, 3), closed=st.booleans(), generator=st.booleans(),
       max_len=st.one_of(st.none(), st.integers(1, 3)), top_k=st.one_of(st.none(), st.integers(1, 6)),
       contain=st.one_of(st.none(), st.sampled_from("pq")))
def test_engine_spark_equals_fast_on_random_databases(session, db, minsup, closed, generator, max_len, top_k, contain):
    if contain is not None and not any(contain in s for s in db):
        contain = None
    assert_engines_equal(db, minsup, closed=closed, generator=generator, max_len=max_len, top_k=top_k,
                         must_contain=contain)


def test_discriminative_patterns_on_spark_equal_fast(session):
    from segkit.patterns import discriminative_patterns

    buyers = [["search", "product", "cart", "checkout"]] * 6 + [["home", "product"]] * 4
    abandoners = [["search", "product", "cart"]] * 3 + [["home", "product", "cart"]] * 7
    kw = dict(labels=("buyers", "abandoners"), max_len=3)
    got = discriminative_patterns(buyers, abandoners, 0.3, engine="spark", **kw)
    pd.testing.assert_frame_equal(got, discriminative_patterns(buyers, abandoners, 0.3, engine="fast", **kw))
    assert got["significant"].any()


def test_engine_spark_points_a_spark_dataframe_to_mine_patterns_spark(session):
    sdf = session.createDataFrame([(["a", "b"],), (["a"],)], "sequence array<string>")
    with pytest.raises(ParameterError, match=r"Spark DataFrame.*segkit.spark.mine_patterns_spark") as info:
        mine_patterns(sdf, 1, engine="spark")
    assert info.value.name == "sequences"


# --- BehaviorClusterer(method="spark_kmeans") ----------------------------------------------------

def _blob_table() -> tuple[pd.DataFrame, np.ndarray]:
    # unequal sizes, so the numbering by size is visible
    X, y = make_blobs([300, 200, 150, 100], n_features=3, centers=[[0, 0, 0], [10, 10, 0], [0, 10, 10], [10, 0, 10]],
                      cluster_std=0.6, random_state=3)
    t = pd.DataFrame(X, columns=["x0", "x1", "x2"])
    t.insert(0, "user_id", [f"u{i}" for i in range(len(t))])
    return t, y


def test_spark_kmeans_recovers_blobs_and_agrees_with_kmeans(session):
    from segkit.clustering import BehaviorClusterer

    t, y = _blob_table()
    kw = dict(features=[], extra_features=["x0", "x1", "x2"], k_range=(3, 5), stability_runs=3, n_bootstrap=20)
    spark = BehaviorClusterer(method="spark_kmeans", **kw).fit(t)
    local = BehaviorClusterer(method="kmeans", **kw).fit(t)
    assert spark.method_ == "spark_kmeans" and spark.stability_method_ == "kmeans"
    assert spark.chosen_k_ == 4 and adjusted_rand_score(y, spark.labels_) == 1.0
    assert np.bincount(spark.labels_).tolist() == [300, 200, 150, 100]  # numbered by size
    np.testing.assert_array_equal(spark.labels_, local.labels_)
    np.testing.assert_allclose(spark.cluster_centers_, local.cluster_centers_, atol=1e-6)
    np.testing.assert_array_equal(spark.predict(t), spark.labels_)
    pd.testing.assert_series_equal(spark.validation_.loc[4], local.validation_.loc[4], atol=1e-6)
    assert spark.names_ == local.names_


def test_inputs_go_to_spark_in_chunks_with_int32_offsets(session, monkeypatch):
    import segkit.spark as spark_module

    # Arrow list offsets are int32: large inputs are sent in chunks of fewer than 2**31 values
    monkeypatch.setattr(spark_module, "_ARROW_CHUNK_ROWS", 3)
    monkeypatch.setattr(spark_module, "_ARROW_MAX_VALUES", 7)
    assert spark_module._row_chunks(np.array([0, 5, 6, 15, 16, 17, 18, 19])) == [(0, 2), (2, 3), (3, 6), (6, 7)]
    db = [list("abcab"), ["a"], list("bcabcabca"), ["c"], ["a", "b"], ["b"], list("abc")]
    assert_engines_equal(db, 2, closed=True)
    X, y = make_blobs(40, n_features=3, centers=[[0, 0, 0], [10, 10, 0]], cluster_std=0.5, random_state=0)
    assert adjusted_rand_score(y, kmeans_spark(X, 2, session=session).labels) == 1.0
