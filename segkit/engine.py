"""The execution engine: event-level transforms are Ibis expressions, run on DuckDB by default.

Writing transforms once as Ibis expressions lets the same definitions run on DuckDB (in process,
the default), on PySpark and on warehouses. Public functions accept a pandas DataFrame, a Parquet
path or an Ibis table (:func:`as_table`) and return pandas unless asked for the expression
(``output="ibis"``).

Examples
--------
>>> import pandas as pd
>>> t = as_table(pd.DataFrame({"user_id": ["a", "b"]}))
>>> to_pandas(t.aggregate(n=t.count()))["n"].item()
2
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import duckdb
import ibis
import ibis.expr.datatypes as dt
import pandas as pd
from ibis.backends import BaseBackend

from .errors import ParameterError

__all__ = ["Data", "Output", "ROW_COL", "connect", "default_connection", "use_engine", "as_table", "numbered", "to_pandas", "materialize", "shared", "finish",
           "backend_of", "backend_name", "epoch_us", "hash64", "remember_kept", "kept_source", "arrow_batches", "drop_temp", "release_temps"]

Data = pd.DataFrame | str | Path | ibis.Table
Output = Literal["pandas", "ibis"]
_DEFAULT: BaseBackend | None = None
ROW_COL = "__segkit_row"
"""Column holding the input row number (0-based, input order) that :func:`numbered` adds."""


def connect(backend: Literal["duckdb", "spark"] = "duckdb", *, threads: int | None = None, memory_limit: str | None = None,
            temp_directory: str | None = None, spark_master: str = "local[2]", spark_config: dict[str, Any] | None = None) -> BaseBackend:
    """Open a new engine connection: in-process DuckDB, or PySpark through the Ibis pyspark backend.

    DuckDB takes ``threads``, ``memory_limit`` (past it, sorts, joins and aggregates spill to
    ``temp_directory``); Spark takes ``spark_master`` and ``spark_config`` (see
    :func:`segkit.spark.spark_session`).
    """
    if backend == "spark":
        from .spark import spark_connection, spark_session

        return spark_connection(spark_session(spark_master, config=spark_config))
    if backend != "duckdb":
        raise ParameterError("backend", backend, ["duckdb", "spark"])
    kwargs: dict[str, Any] = {"threads": threads or os.cpu_count() or 2}
    if memory_limit:
        kwargs["memory_limit"] = memory_limit
    if temp_directory:
        kwargs["temp_directory"] = temp_directory
    con = ibis.duckdb.connect(**kwargs)
    _release_memtables(con)
    try:  # no progress bars in logs; inside Jupyter duckdb refuses the setting without ipywidgets
        con.raw_sql("SET enable_progress_bar = false")
    except duckdb.Error:
        pass
    # DuckDB's allocator keeps what a query freed for the next one, up to 128 MB per thread by
    # default, and purges lazily: the memory a large sort or join used stayed resident for the
    # rest of a pipeline (2.6 GB resident after the 10M-event pipeline with segments, of which
    # 0.4 GB temp tables; 1.4 GB with these settings). Flushing past 32 MB, with the purge on
    # background threads, returns it.
    for setting in ("allocator_flush_threshold = '32MB'", "allocator_background_threads = true"):
        try:
            con.raw_sql(f"SET {setting}")
        except duckdb.Error:  # pragma: no cover - a DuckDB build without the setting
            pass
    return con


def insertion_order(con: BaseBackend) -> bool:
    """Whether a DuckDB connection keeps the scan order of results without ORDER BY."""
    return bool(con.con.sql("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0])


def order_free(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``func`` with DuckDB free to return unordered results in any order.

    DuckDB keeps the scan order of results without ORDER BY by default
    (``preserve_insertion_order``), which costs buffering and parallelism in inserts, joins
    and result collection. The event pipeline's functions (cleaning, sessions, features) order
    every result whose order matters, so they run without that promise: the 10M-event pipeline
    ran 1.7 and 2.9 s faster in two alternating runs, with identical outputs at 1M events
    (Parquet and DataFrame inputs). Elsewhere the default stands: a Parquet file read into
    pandas keeps its row order, so seeded steps (clustering, sampling) see the same rows in the
    same order every run. The setting is restored afterwards on the default connection and on
    the backend of an Ibis table passed first (Spark connections are left alone).
    """
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        first = args[0] if args else None
        candidates = [default_connection()] + ([backend_of(first)] if isinstance(first, ibis.Table) else [])
        cons = [c for i, c in enumerate(candidates) if c.name == "duckdb" and all(c is not d for d in candidates[:i])]
        before = [insertion_order(con) for con in cons]
        for con in cons:
            con.con.execute("SET preserve_insertion_order = false")
        try:
            return func(*args, **kwargs)
        finally:
            for con, value in zip(cons, before):
                con.con.execute(f"SET preserve_insertion_order = {str(value).lower()}")

    return wrapper


def _release_memtables(con: BaseBackend) -> None:
    """Unregister each in-memory table from DuckDB once its Ibis operation is garbage collected.

    Ibis 12 registers every ``ibis.memtable`` it executes as a DuckDB view over an Arrow copy of
    the data and only drops it at interpreter exit, so each DataFrame segkit joins (session
    tables, CRM attributes, visitor flags, session numbers) stayed resident for the life of the
    connection: 2.5 GB of the 10.8 GB peak of the 50M-event pipeline. This restores the
    op-lifetime cleanup of Ibis 9 (ibis-project/ibis#10042) on connections segkit opens. An
    expression still holding the table keeps its operation, and so its registration, alive;
    Ibis registers it again if needed.
    """
    import types
    import weakref

    register = con._register_in_memory_table  # the class's bound method

    def _register(self: BaseBackend, op: Any) -> None:
        register(op)
        weakref.finalize(op, _unregister, self.con, op.name)

    con._register_in_memory_table = types.MethodType(_register, con)  # type: ignore[method-assign]


def _unregister(raw: Any, name: str) -> None:
    try:
        raw.unregister(name)
    except Exception:  # noqa: BLE001  # a closed connection has nothing left to free
        pass


def default_connection() -> BaseBackend:
    """The process-wide connection segkit uses when none is given (DuckDB unless :func:`use_engine` chose another)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = connect()
    return _DEFAULT


def use_engine(params: Any = None) -> BaseBackend:
    """Make the engine of a parameter set's ``engine`` section the process-wide default and return it.

    ``params`` is a :class:`segkit.params.EngineParams`, a mapping of its fields, or None (DuckDB
    with its defaults). Paths and tables given to segkit afterwards are read and transformed on
    that engine.

    Examples
    --------
    >>> use_engine({"name": "duckdb", "duckdb_threads": 2}).name
    'duckdb'
    """
    from .params import EngineParams

    if params is None:
        params = EngineParams()
    elif not isinstance(params, EngineParams):
        try:
            params = EngineParams.model_validate(dict(params))
        except Exception as exc:
            raise ParameterError("engine", dict(params), message=f"Invalid engine parameters: {exc}") from None
    global _DEFAULT
    if params.name == "spark":
        _DEFAULT = connect("spark", spark_master=params.spark_master, spark_config=dict(params.spark_config))
    else:
        _DEFAULT = connect("duckdb", threads=params.duckdb_threads, memory_limit=params.duckdb_memory_limit,
                           temp_directory=params.duckdb_temp_directory)
    return _DEFAULT


def as_table(data: Data, *, con: BaseBackend | None = None, name: str = "data") -> ibis.Table:
    """Turn a DataFrame, a Parquet file (or glob) or an Ibis table into an Ibis table."""
    if isinstance(data, ibis.Table):
        return data
    if isinstance(data, pd.DataFrame):
        if con is not None and con.name == "pyspark":  # a frame joined with Spark tables lives on Spark
            return materialize(ibis.memtable(data), con=con)
        return ibis.memtable(data)
    if isinstance(data, (str, Path)):
        backend = con or default_connection()
        if backend.name == "pyspark":
            return _spark_parquet(backend, _parquet_path(data), numbered=False)
        return backend.read_parquet(_parquet_path(data), table_name=None)
    raise ParameterError(
        "data", type(data).__name__, message=f"Expected a pandas DataFrame, a Parquet path or an Ibis table, got {type(data).__name__}"
    )


def bound_backend(expr: ibis.Table) -> BaseBackend | None:
    """The backend ``expr`` is bound to, or None for an unbound one (in-memory tables only)."""
    try:
        return expr._find_backend(use_default=False)
    except Exception:  # noqa: BLE001
        return None


def _parquet_path(data: str | Path) -> str:
    """The path as a string, after checking it names Parquet data that exists."""
    path = str(data)
    if not any(ch in path for ch in "*?[") and not Path(path).exists():
        raise ParameterError("data", path, message=f"Input {path!r} does not exist; expected a DataFrame, a Parquet path or an Ibis table")
    if not path.endswith(".parquet") and not Path(path).is_dir():
        raise ParameterError("data", path, message=f"Input {path!r} is not a Parquet file; read other formats with segkit.read_events")
    return path


def _parquet_files(path: str) -> list[str]:
    import glob

    if Path(path).is_dir():
        return sorted(str(p) for p in Path(path).glob("*.parquet"))
    if any(ch in path for ch in "*?["):
        return sorted(glob.glob(path))
    return [path]


def numbered(data: Data, *, con: BaseBackend | None = None) -> ibis.Table:
    """The input as an Ibis table with its row number (0-based, input order) in :data:`ROW_COL`.

    Numbering never copies the rows when it can avoid it: a DataFrame gets a numpy range before
    it is registered, and Parquet files are read with DuckDB's ``file_row_number`` plus each
    file's offset from the Parquet footers, so the number is stable across queries and the
    file is scanned lazily, column by column. Any other Ibis table is copied once into a
    temporary table with ``row_number()``; a table that already has the column is returned as is.
    """
    import numpy as np

    if isinstance(data, pd.DataFrame):
        if ROW_COL in data.columns:
            raise ParameterError("events", ROW_COL, message=f"Column {ROW_COL!r} is reserved by segkit")
        return ibis.memtable(data.assign(**{ROW_COL: np.arange(len(data), dtype="int64")}))
    if isinstance(data, (str, Path)):
        import pyarrow.parquet as pq

        files = _parquet_files(_parquet_path(data))
        # the footers give each file's rows (the offsets) and the columns, so nothing is scanned
        metas = [pq.read_metadata(f) for f in files]
        if metas and not {"filename", "file_row_number"} & set(metas[0].schema.names):
            sizes = [m.num_rows for m in metas]
            offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype("int64")
            backend = con or default_connection()
            if backend.name == "pyspark":
                return _spark_parquet(backend, files, numbered=True, offsets=dict(zip(files, offsets.tolist())))
            raw = backend.read_parquet(files, filename=True, file_row_number=True)
            offset = ibis.cases(*[(raw.filename == f, int(o)) for f, o in zip(files, offsets)], else_=0) if len(files) > 1 else 0
            return raw.mutate(**{ROW_COL: raw.file_row_number + offset}).drop("filename", "file_row_number")
        data = as_table(data, con=con)
    if ROW_COL in data.columns:
        return data
    # a global row_number(): on Spark this runs through one partition (number Parquet files instead)
    return materialize(data.mutate(**{ROW_COL: ibis.row_number().cast("int64")}), con=con)


def _spark_parquet(backend: BaseBackend, files: str | list[str], *, numbered: bool, offsets: dict[str, int] | None = None) -> ibis.Table:
    """Parquet on Spark as an Ibis table; with ``numbered``, the row number from Spark's hidden
    ``_metadata.row_index`` plus each file's offset (no shuffle, unlike a global row_number)."""
    import uuid

    from pyspark.sql import functions as F

    paths = [files] if isinstance(files, str) else list(files)
    df = backend._session.read.parquet(*paths)
    if numbered:
        assert offsets is not None
        from urllib.parse import unquote, urlparse

        # Spark names files by its own URIs ("file:/tmp/x.parquet"); map them back to our paths
        local = {os.path.abspath(f): o for f, o in offsets.items()}  # Spark qualifies paths without resolving links
        by_uri = {}
        for uri in df.inputFiles():
            key = os.path.abspath(unquote(urlparse(uri).path))
            if key not in local:
                raise ParameterError("data", uri, message=f"Spark reads {uri!r}, which is not among the Parquet files "
                                     f"segkit numbered ({len(local)} files); pass a folder or a glob of local files")
            by_uri[uri] = local[key]
        if len(by_uri) != len(local):
            raise ParameterError("data", sorted(local), message=f"Spark reads {len(by_uri)} of the {len(local)} Parquet files")
        # Each row's file offset is one map lookup of its file's URI. The metadata column spells
        # local files "file:/tmp/x" where inputFiles says "file:///tmp/x" (the same percent
        # encoding otherwise), so the map holds both spellings. (A chain of per-row path
        # comparisons cost rows x files and, past Spark's code-generation limit, ran
        # interpreted: 50M events in 35 files took 520 s just to number.) A file the map misses
        # fails the query instead of numbering its rows null.
        pairs: list[Any] = []
        for uri, o in by_uri.items():
            for spelling in dict.fromkeys([uri, re.sub("^file:/+", "file:/", uri)]):
                pairs += [F.lit(spelling), F.lit(int(o))]
        missing = F.raise_error(F.concat(F.lit("Spark reads "), F.col("_metadata.file_path"),
                                         F.lit(f", which is not among the Parquet files segkit numbered: {sorted(by_uri)}")))
        offset = F.coalesce(F.element_at(F.create_map(*pairs), F.col("_metadata.file_path")), missing.cast("long"))
        df = df.select("*", (F.col("_metadata.row_index") + offset).cast("long").alias(ROW_COL))
    name = f"_segkit_{uuid.uuid4().hex[:12]}"
    df.createOrReplaceTempView(name)
    return backend.table(name)


def backend_of(expr: ibis.Table | ibis.Expr) -> BaseBackend:
    """The backend an expression is bound to, or the default DuckDB connection for unbound ones."""
    try:
        return expr._find_backend(use_default=False)
    except Exception:  # unbound (memtables only): run on the default connection
        return default_connection()


def to_pandas(expr: ibis.Table | ibis.Expr, *, con: BaseBackend | None = None) -> pd.DataFrame:
    """Execute an expression and return a pandas DataFrame.

    Tables go through Arrow (``to_pyarrow().to_pandas()``): Ibis's own ``execute`` converts every
    column that holds nulls value by value, which costs seconds on large results.
    """
    backend = con or backend_of(expr)
    if isinstance(expr, ibis.Table):
        return _arrow(backend, expr).to_pandas()
    return backend.execute(expr)


def _arrow(backend: BaseBackend, expr: ibis.Table) -> Any:
    """The result as an Arrow table. On Spark through Spark's own ``toArrow`` (Ibis's pyspark
    ``to_pyarrow`` goes through pandas and types timestamps as naive, losing their UTC zone)."""
    if backend.name == "pyspark":
        backend._run_pre_execute_hooks(expr)
        return backend._session.sql(str(backend.compile(expr))).toArrow()
    return backend.to_pyarrow(expr)


def arrow_batches(expr: ibis.Table, *, batch_size: int = 1 << 20, con: BaseBackend | None = None) -> Any:
    """Execute ``expr`` and iterate over its result as Arrow record batches (in result order).

    On DuckDB this reads the result with DuckDB's own Arrow reader (Ibis 12's
    ``to_pyarrow_batches`` calls a method DuckDB 2 removed); elsewhere Ibis's batches.
    """
    backend = con or backend_of(expr)
    if backend.name == "duckdb":
        backend._run_pre_execute_hooks(expr)  # registers memtables the expression reads
        return iter(backend.con.sql(str(backend.compile(expr))).to_arrow_reader(batch_size))
    return iter(backend.to_pyarrow_batches(expr, chunk_size=batch_size))


def materialize(expr: ibis.Table, *, con: BaseBackend | None = None, name: str | None = None) -> ibis.Table:
    """Compute an expression once into a temporary table of its backend and return that table.

    Use it for an intermediate result that several later queries read (for example sessionized
    events feeding both the session table and the user features), so it is not recomputed. On
    DuckDB this is a temporary table; on Spark (whose Ibis backend has no temporary tables) the
    result is computed eagerly, its lineage cut with ``localCheckpoint`` and registered as a
    temporary view. :func:`drop_temp` removes either.
    """
    import uuid

    backend = con or backend_of(expr)
    name = name or f"_segkit_{uuid.uuid4().hex[:12]}"
    if backend.name == "pyspark":
        backend._run_pre_execute_hooks(expr)  # registers the memtables the query joins
        df = backend._session.sql(str(backend.compile(expr))).localCheckpoint(eager=True)
        df.createOrReplaceTempView(name)
        return backend.table(name)
    return backend.create_table(name, expr, temp=True)


def shared(expr: ibis.Table) -> ibis.Table:
    """``expr`` for an intermediate that is read more than once: twice by one query (a self-join,
    two aggregates joined) or by several lazy queries.

    DuckDB computes a subquery that a query reads twice once (a materialized CTE), and its hash
    joins are cheap next to copying wide rows, so there ``expr`` comes back as is. Spark inlines
    it and computes it once per reference, scan, joins and window sorts included (a plan with the
    same Parquet scan four times), so on Spark it is checkpointed first (:func:`materialize`).
    """
    if backend_name(expr) == "pyspark":
        return materialize(expr)
    return expr


def drop_temp(con: BaseBackend, name: str) -> None:
    """Drop a table made by :func:`materialize` (never raises: cleanup must not hide an error)."""
    try:
        if con.name == "pyspark":
            con._session.catalog.dropTempView(name)
        else:  # raw SQL: ibis 12's drop_table emits SQL that sqlglot 30 / duckdb 2 reject
            con.raw_sql(f'DROP TABLE IF EXISTS "{name}"')
    except Exception:  # noqa: BLE001  # pragma: no cover
        pass


def release_temps(con: BaseBackend | None = None) -> list[str]:
    """Drop every intermediate segkit stored on ``con`` (default: the default connection); the
    names dropped, sorted.

    A pipeline function that returns a lazy result (``output="ibis"``) keeps the intermediates
    that result reads: on Spark the checkpoints of :func:`shared` (kept rows, the bots' gaps,
    the sessionized events) and on either engine the tables of :func:`materialize`. They live as
    long as the connection, so a notebook that re-runs cleaning on one Spark session holds every
    run's copies. Call this between runs: lazy results built before it can no longer be
    computed (their tables are gone); pandas results are unaffected. Only names segkit made
    (``_segkit_*``) are dropped, never the user's tables or views.
    """
    backend = con or default_connection()
    if backend.name == "pyspark":
        names = [t.name for t in backend._session.catalog.listTables() if t.isTemporary and t.name.startswith("_segkit_")]
    else:
        names = [r[0] for r in backend.raw_sql(
            "SELECT table_name FROM duckdb_tables() WHERE temporary AND starts_with(table_name, '_segkit_')").fetchall()]
    for name in names:
        drop_temp(backend, name)
    for key in [k for k, (unfiltered, _) in _KEPT.items() if bound_backend(unfiltered) is backend]:
        del _KEPT[key]
    return sorted(names)


_KEPT: dict[Any, tuple[ibis.Table, ibis.Table]] = {}
_KEPT_MAX = 32


def remember_kept(expr: ibis.Table, *, unfiltered: ibis.Table, kept: ibis.Table) -> None:
    """Record that ``expr`` is ``unfiltered`` restricted to the rows (by :data:`ROW_COL`) of ``kept``.

    ``unfiltered`` has ``expr``'s columns and computes them the same way, on every input row;
    ``kept`` is the filtered input before those transforms (same ``ROW_COL``, and the same
    values in the columns the transforms leave alone). :func:`segkit.clean_events` records its
    output so that a later step whose narrow result exists only for kept rows (the session
    numbers of :func:`segkit.split_sessions`) can join that result to ``unfiltered``, and read
    its narrow input from ``kept``, instead of repeating the filter and the transforms.
    """
    if len(_KEPT) >= _KEPT_MAX:
        _KEPT.pop(next(iter(_KEPT)))
    _KEPT[expr.op()] = (unfiltered, kept)


def kept_source(expr: ibis.Table) -> tuple[ibis.Table, ibis.Table] | None:
    """``(unfiltered, kept)`` recorded for ``expr`` by :func:`remember_kept`, or None."""
    try:
        return _KEPT.get(expr.op())
    except TypeError:  # pragma: no cover - an unhashable node
        return None


def finish(expr: ibis.Table, output: Output) -> pd.DataFrame | ibis.Table:
    """Return the expression itself (``output="ibis"``) or its pandas result (``"pandas"``)."""
    if output == "ibis":
        return expr
    if output == "pandas":
        return to_pandas(expr)
    raise ParameterError("output", output, ["pandas", "ibis"])


# ---------------------------------------------------------------------------------------------
# Built-ins that are faster than Ibis's portable forms, picked per backend
# ---------------------------------------------------------------------------------------------

@ibis.udf.scalar.builtin(name="epoch_us")
def _duckdb_epoch_us(ts) -> dt.int64:  # type: ignore[no-untyped-def]
    """DuckDB's ``epoch_us``: the stored microseconds of a timestamp (a plain integer read)."""


@ibis.udf.scalar.builtin(name="unix_micros")
def _spark_unix_micros(ts) -> dt.int64:  # type: ignore[no-untyped-def]
    """Spark's ``unix_micros`` (3.1+): microseconds since the epoch of a timestamp."""


@ibis.udf.scalar.builtin(name="hash")
def _duckdb_hash(value) -> dt.uint64:  # type: ignore[no-untyped-def]
    """DuckDB's 64-bit ``hash`` (Ibis's ``.hash()`` adds a cast through BIT)."""


@ibis.udf.scalar.builtin(name="xxhash64")
def _spark_xxhash64(value) -> dt.int64:  # type: ignore[no-untyped-def]
    """Spark's 64-bit ``xxhash64`` (its ``hash`` has 32 bits: collisions at a few 10,000 keys)."""


def backend_name(expr: ibis.Table | ibis.Expr) -> str | None:
    """Name of the backend an expression runs on (``"duckdb"``, ``"pyspark"``, ...), or None."""
    try:
        return backend_of(expr).name
    except Exception:  # noqa: BLE001 - only picks a faster built-in; the portable form always works
        return None


_EPOCH_UTC = pd.Timestamp("1970-01-01", tz="UTC").to_pydatetime()


def epoch_us(t: ibis.Table | ibis.Expr, ts: ibis.TimestampValue) -> ibis.IntegerValue:
    """Whole microseconds since 1970-01-01 UTC of ``ts`` (a column of ``t``) as int64.

    DuckDB and Spark read the stored integer with a built-in function; on DuckDB that is about a
    hundred times cheaper than the portable ``DATE_DIFF`` against the epoch on a time-zone-aware
    column (which goes through ICU). Finer-than-microsecond timestamps (pandas' nanoseconds) are
    cast to microseconds first, which rounds like the implicit cast of ``DATE_DIFF``.
    """
    typ = ts.type()
    if typ.scale is not None and typ.scale > 6:
        ts = ts.cast(dt.Timestamp(timezone=typ.timezone, scale=6))
        typ = ts.type()
    name = backend_name(t)
    if name == "duckdb":
        return _duckdb_epoch_us(ts)
    if name == "pyspark":
        return _spark_unix_micros(ts)
    origin = ibis.literal(_EPOCH_UTC if typ.timezone else _EPOCH_UTC.replace(tzinfo=None), type=typ)
    return ts.delta(origin, unit="microsecond").cast("int64")


def hash64(t: ibis.Table | ibis.Expr, value: ibis.Value) -> ibis.IntegerValue:
    """A 64-bit hash of ``value`` (a column or a struct of columns of ``t``); nulls hash alike.

    Used to partition or group by many columns at once. Two different values share a hash with
    probability about 2**-64 per pair; callers that cannot accept that check for it.
    """
    name = backend_name(t)
    if name == "duckdb":
        return _duckdb_hash(value)
    if name == "pyspark":
        return _spark_xxhash64(value)
    return value.hash()
