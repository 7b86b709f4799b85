"""The event pipeline on Spark (local[2]) gives the same answer as on DuckDB.

The simulated shop goes from one Parquet file through cleaning, sessionization, session and user
features and the default rule segments twice: on segkit's default DuckDB connection and on an Ibis
pyspark connection, the same Ibis definitions on both. Clean rows, ledger, sessions, features and
memberships must be equal (dtypes included: Spark's timestamps come back in UTC).

Skipped without pyspark/Java, failing under CI (see conftest.require_spark).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import require_spark

require_spark()

import segkit  # noqa: E402
from segkit.clean import clean_events  # noqa: E402
from segkit.engine import ROW_COL, connect, numbered, to_pandas  # noqa: E402
from segkit.features import build_user_features  # noqa: E402
from segkit.segments import evaluate_segments, load_segments  # noqa: E402
from segkit.sessions import session_table, split_sessions  # noqa: E402
from segkit.spark import spark_connection  # noqa: E402

pytestmark = pytest.mark.spark
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shop_parquet(tmp_path_factory):
    shop = segkit.simulate_shop(250, n_days=14, seed=5)
    loaded = segkit.load_events(shop.events, columns=shop.column_map, timezone=shop.timezone)
    events = segkit.apply_taxonomy(loaded.events, segkit.load_taxonomy(ROOT / "parameters" / "taxonomy" / "default.yaml"))
    path = tmp_path_factory.mktemp("spark") / "events.parquet"
    events.to_parquet(path)
    return shop, path


def _run(con, path, crm):
    clean = clean_events(numbered(str(path), con=con), output="ibis")
    sessionized = split_sessions(clean.events, output="ibis")
    sessions = session_table(sessionized)
    users = build_user_features(sessionized, sessions=sessions, crm=crm)
    members = evaluate_segments(load_segments(ROOT / "parameters" / "segments" / "default.yaml"), events=sessionized, features=users)
    rows = to_pandas(sessionized.select(ROW_COL, "user_id", "timestamp", "event", "page", "page_type", "device", "referrer",
                                        "session_id", "session_index", "gap_s"))
    return {
        "clean": clean,
        "rows": rows.sort_values(ROW_COL).reset_index(drop=True),
        "sessions": sessions.sort_values("session_id").reset_index(drop=True),
        "users": users.sort_values("user_id").reset_index(drop=True),
        "members": members.sort_values(["segment", "user_id"]).reset_index(drop=True),
    }


@pytest.fixture(scope="module")
def both(shop_parquet, spark):
    shop, path = shop_parquet
    return _run(connect("duckdb"), path, shop.crm), _run(spark_connection(spark), path, shop.crm)


def test_clean_events_and_ledger_are_the_same_on_spark(both):
    duck, spark = both
    assert spark["clean"].rows_out == duck["clean"].rows_out > 0
    pd.testing.assert_frame_equal(spark["clean"].ledger, duck["clean"].ledger)
    pd.testing.assert_frame_equal(spark["clean"].bots.sort_values("user_id").reset_index(drop=True),
                                  duck["clean"].bots.sort_values("user_id").reset_index(drop=True), check_dtype=False)
    pd.testing.assert_frame_equal(spark["rows"], duck["rows"])
    assert str(spark["rows"]["timestamp"].dtype) == str(duck["rows"]["timestamp"].dtype)  # UTC on both


def test_sessions_and_user_features_are_the_same_on_spark(both):
    duck, spark = both
    assert len(duck["sessions"]) > 100
    pd.testing.assert_frame_equal(spark["sessions"], duck["sessions"], check_exact=False, rtol=1e-9)
    pd.testing.assert_frame_equal(spark["users"], duck["users"], check_exact=False, rtol=1e-9)


def test_segment_memberships_are_the_same_on_spark(both):
    duck, spark = both
    assert duck["members"]["segment"].nunique() >= 5
    pd.testing.assert_frame_equal(spark["members"], duck["members"])


def test_parquet_files_are_numbered_in_input_order_on_spark(spark, tmp_path):
    # several files: each file's rows follow the previous files' rows (the DuckDB numbering);
    # Spark percent-encodes the spaces, "%" and "é" of these names in the URIs it maps
    folder = tmp_path / "odd dir %é"
    folder.mkdir()
    for i in range(3):
        pd.DataFrame({"a": range(i * 10, i * 10 + 10 - i)}).to_parquet(folder / f"part {i}%.parquet")
    link = tmp_path.parent / f"{tmp_path.name}-link"
    link.symlink_to(folder)  # Spark names files by the path given, not the resolved one
    for path in (folder, link):
        on_spark = to_pandas(numbered(str(path), con=spark_connection(spark))).sort_values(ROW_COL)
        on_duck = to_pandas(numbered(str(path), con=connect("duckdb"))).sort_values(ROW_COL)
        assert on_spark[ROW_COL].tolist() == list(range(27)) == on_duck[ROW_COL].tolist()
        assert on_spark["a"].tolist() == on_duck["a"].tolist()


def _plan(con, expr) -> str:
    """The physical plan Spark runs for ``expr`` (what it scans, shuffles and joins)."""
    con._run_pre_execute_hooks(expr)
    return con._session.sql(str(con.compile(expr)))._jdf.queryExecution().executedPlan().toString()


def test_shared_checkpoints_on_spark(spark, tmp_path):
    # (on DuckDB it returns the expression itself: tests/test_engine.py)
    from segkit.engine import shared

    pd.DataFrame({"a": range(10)}).to_parquet(tmp_path / "a.parquet")
    con = spark_connection(spark)
    t = numbered(str(tmp_path / "a.parquet"), con=con)
    expr = t.mutate(b=t.a * 2)
    assert "FileScan" in _plan(con, expr)
    stored = shared(expr)
    assert "FileScan" not in _plan(con, stored)  # read twice, computed once
    assert to_pandas(stored).sort_values("a")["b"].tolist() == list(range(0, 20, 2))


def test_spark_reads_stored_sessions_and_bot_gaps_not_the_parquet_again(shop_parquet, spark):
    # Spark recomputes a subquery for each query (and each reference) that reads it; the
    # sessionized events and the bots' per-event gaps are stored, so the queries on them scan
    # no Parquet file, shuffle no event-level join and sort no event-level window
    from segkit.bots import bot_signals

    _, path = shop_parquet
    con = spark_connection(spark)
    events = numbered(str(path), con=con)
    sessionized = split_sessions(clean_events(events, output="ibis").events, output="ibis")
    plan = _plan(con, sessionized.group_by("session_id").aggregate(n=sessionized.count()))
    assert "FileScan" not in plan and "SortMergeJoin" not in plan
    plan = _plan(con, bot_signals(events, output="ibis"))
    assert "FileScan" not in plan  # (its one window orders the few session boundaries)
    assert "lead(" not in plan


def test_release_temps_frees_the_checkpoints_of_lazy_results_on_spark(shop_parquet, spark):
    # lazy cleaning and sessions on Spark store kept rows, bot gaps and sessionized events as
    # checkpointed temp views; release_temps drops them (and only them) between runs
    from segkit.engine import release_temps

    _, path = shop_parquet
    con = spark_connection(spark)
    release_temps(con)  # what earlier tests on this session left
    spark.range(3).createOrReplaceTempView("my_view")

    def ours() -> set[str]:
        return {t.name for t in spark.catalog.listTables() if t.isTemporary and t.name.startswith("_segkit_")}

    sessionized = split_sessions(clean_events(numbered(str(path), con=con), output="ibis").events, output="ibis")
    assert to_pandas(sessionized.count().name("n").as_table())["n"].item() > 0
    stored = ours()
    assert any(n.startswith("_segkit_clean_kept_") for n in stored) and len(stored) >= 3
    assert release_temps(con) == sorted(stored)
    assert ours() == set() and "my_view" in {t.name for t in spark.catalog.listTables()}
    spark.catalog.dropTempView("my_view")
