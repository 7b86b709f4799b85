"""Row numbering without copies: DataFrames, multi-file Parquet, other tables."""
from __future__ import annotations

import ibis
import pandas as pd
import pytest

from segkit.engine import ROW_COL, numbered, to_pandas
from segkit.errors import ParameterError


def test_dataframe_rows_are_numbered_in_input_order_and_the_input_is_unchanged():
    df = pd.DataFrame({"user_id": ["b", "a", "c"]})
    out = to_pandas(numbered(df)).sort_values(ROW_COL)
    assert out["user_id"].tolist() == ["b", "a", "c"] and out[ROW_COL].tolist() == [0, 1, 2]
    assert ROW_COL not in df.columns
    with pytest.raises(ParameterError, match="reserved by segkit"):
        numbered(df.assign(**{ROW_COL: 1}))


def test_parquet_files_are_numbered_across_files_from_their_footers(tmp_path):
    pd.DataFrame({"x": [10, 11]}).to_parquet(tmp_path / "part-0.parquet")
    pd.DataFrame({"x": [20, 21, 22]}).to_parquet(tmp_path / "part-1.parquet")
    t = numbered(str(tmp_path / "*.parquet"))
    assert ROW_COL in t.columns and "filename" not in t.columns and "file_row_number" not in t.columns
    out = to_pandas(t).sort_values(ROW_COL)
    assert out[ROW_COL].tolist() == [0, 1, 2, 3, 4] and out["x"].tolist() == [10, 11, 20, 21, 22]
    assert to_pandas(numbered(tmp_path).order_by(ROW_COL))["x"].tolist() == [10, 11, 20, 21, 22]  # a folder too
    with pytest.raises(ParameterError, match="does not exist"):
        numbered(str(tmp_path / "missing.parquet"))


def test_another_table_is_numbered_once_and_a_numbered_one_is_kept():
    t = ibis.memtable(pd.DataFrame({"x": [5, 6]}))
    n = numbered(t)
    assert sorted(to_pandas(n)[ROW_COL].tolist()) == [0, 1]
    assert numbered(n) is n


def test_use_engine_makes_a_configured_duckdb_the_default(monkeypatch):
    import segkit.engine as engine_mod

    monkeypatch.setattr(engine_mod, "_DEFAULT", None)
    con = engine_mod.use_engine({"name": "duckdb", "duckdb_threads": 1, "duckdb_memory_limit": "1GB"})
    assert engine_mod.default_connection() is con
    assert con.raw_sql("SELECT current_setting('threads')").fetchone()[0] == 1
    assert con.raw_sql("SELECT current_setting('memory_limit')").fetchone()[0] in {"1.0 GB", "953.6 MiB", "1000.0 MB"}


def test_engine_parameters_are_checked():
    from segkit.engine import use_engine

    with pytest.raises(ParameterError, match="engine"):
        use_engine({"name": "polars"})
    with pytest.raises(ParameterError, match="duckdb_threads"):
        use_engine({"name": "spark", "duckdb_threads": 2})
    with pytest.raises(ParameterError, match="spark_config"):
        use_engine({"name": "duckdb", "spark_config": {"spark.executor.memory": "4g"}})


def test_epoch_us_portable_form_matches_duckdb_and_takes_nanoseconds(monkeypatch):
    import segkit.engine as engine_mod

    ts = pd.to_datetime(["1970-01-01 00:00:01", "2024-02-29 12:34:56.789123"], utc=True, format="ISO8601").as_unit("ns")
    t = engine_mod.as_table(pd.DataFrame({"ts": ts}))
    fast = engine_mod.to_pandas(t.select(us=engine_mod.epoch_us(t, t.ts)))["us"].tolist()
    monkeypatch.setattr(engine_mod, "backend_name", lambda expr: None)
    portable = engine_mod.to_pandas(t.select(us=engine_mod.epoch_us(t, t.ts)))["us"].tolist()
    assert fast == portable == [1_000_000, int(ts[1].value // 1000)]


def test_a_frame_is_released_by_duckdb_once_no_expression_uses_it():
    # Ibis 12 keeps every executed memtable registered (an Arrow copy) until exit; segkit's
    # connections unregister it when its operation is collected, and register it again if needed
    import gc

    import numpy as np

    from segkit.engine import as_table, connect, materialize

    con = connect()

    def views() -> int:
        return con.con.sql("SELECT count(*) FROM duckdb_views() WHERE NOT internal").fetchall()[0][0]

    frame = pd.DataFrame({"a": np.arange(1000)})
    t = as_table(frame)
    assert to_pandas(t.a.sum().name("s").as_table(), con=con)["s"].item() == 499500
    assert views() == 1
    later = t.mutate(b=t.a + 1)
    del t
    gc.collect()
    assert views() == 1  # `later` still reads it
    assert to_pandas(later.b.sum().name("s").as_table(), con=con)["s"].item() == 500500
    del later
    gc.collect()
    assert views() == 0
    stored = materialize(ibis.memtable(frame), con=con)  # the stored copy outlives the memtable
    gc.collect()
    assert views() == 0 and to_pandas(stored.count().name("n").as_table(), con=con)["n"].item() == 1000


def _insertion_order() -> bool:
    from segkit.engine import default_connection, insertion_order

    return insertion_order(default_connection())


def test_order_free_lifts_insertion_order_only_while_the_function_runs():
    from segkit.engine import order_free

    seen = []

    @order_free
    def step(fail: bool) -> None:
        seen.append(_insertion_order())
        if fail:
            raise ValueError("boom")

    assert _insertion_order()
    step(False)
    with pytest.raises(ValueError, match="boom"):
        step(True)
    assert seen == [False, False] and _insertion_order()


def test_row_level_results_keep_input_order_past_one_parallel_scan_chunk():
    # The pipeline functions run with preserve_insertion_order=false (segkit.engine.order_free):
    # results are in input order only where a query says ORDER BY. 400k rows span several of
    # DuckDB's 122,880-row scan chunks, so a DataFrame function that lost the order would
    # return misaligned rows here (an unordered join of this size does come back scrambled).
    import numpy as np

    import segkit
    from segkit.engine import order_free

    rng = np.random.default_rng(3)
    n = 400_000
    pages = np.array(["/Product/p1/", "https://shop.example.com/cart?x=1", "/blog/a", "/"])
    ev = pd.DataFrame({
        "user_id": rng.integers(0, 5000, n).astype(str),
        "event": "page_view",
        "timestamp": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 10**9, n), unit="ms"),
        "page": pages[rng.integers(0, len(pages), n)],
    }, index=rng.permutation(n))
    out = order_free(segkit.normalize_urls)(ev)
    assert out.index.equals(ev.index)
    expected = {"/Product/p1/": "/Product/p1", "https://shop.example.com/cart?x=1": "/cart", "/blog/a": "/blog/a", "/": "/"}
    assert (out["page"].to_numpy() == ev["page"].map(expected).to_numpy()).all()
    dups = order_free(segkit.find_duplicates)(ev, tolerance=None)
    assert dups.index.equals(ev.index)
    first = ~ev.duplicated(["user_id", "event", "timestamp", "page"])
    assert (dups["duplicate"].isna().to_numpy() == first.to_numpy()).all()


def test_shared_is_the_expression_itself_on_duckdb(tmp_path):
    # DuckDB computes a subquery read twice once; only Spark needs it stored (tests/test_spark_engine.py)
    from segkit.engine import connect, shared

    pd.DataFrame({"a": [1, 2]}).to_parquet(tmp_path / "a.parquet")
    t = connect("duckdb").read_parquet(str(tmp_path / "a.parquet"))
    for expr in (t, t.mutate(b=t.a + 1), ibis.memtable(pd.DataFrame({"a": [1]}))):
        assert shared(expr) is expr


def test_release_temps_drops_what_segkit_stored_and_nothing_else(tmp_path):
    # lazy results keep their stored intermediates for the connection's life; release_temps frees
    # them between runs: segkit's names only, and the kept-rows record of clean_events goes too
    import segkit
    from segkit.clean import clean_events
    from segkit.engine import connect, kept_source, materialize, release_temps

    con = connect("duckdb")
    con.raw_sql("CREATE TEMP TABLE mine AS SELECT 1 AS a")
    con.raw_sql("CREATE TABLE _segkit_like_but_not_temp AS SELECT 1 AS a")
    stored = materialize(ibis.memtable(pd.DataFrame({"a": [1, 2]})), con=con, name="_segkit_stored")
    shop = segkit.simulate_shop(30, n_days=5, seed=2)
    loaded = segkit.load_events(shop.events, columns=shop.column_map, timezone=shop.timezone)
    clean = clean_events(materialize(ibis.memtable(loaded.events), con=con, name="my_events"), output="ibis")
    assert kept_source(clean.events) is not None

    dropped = release_temps(con)
    assert "_segkit_stored" in dropped and dropped == sorted(dropped)
    assert any(name.startswith("_segkit_clean_") for name in dropped)  # the lazy cleaning's stored pages
    assert all(name.startswith("_segkit_") for name in dropped)
    left = {r[0] for r in con.raw_sql("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert {"mine", "my_events", "_segkit_like_but_not_temp"} <= left and not any(n in left for n in dropped)
    assert kept_source(clean.events) is None
    with pytest.raises(Exception, match="_segkit_stored"):
        to_pandas(stored, con=con)
    assert release_temps(con) == []  # nothing left to drop
