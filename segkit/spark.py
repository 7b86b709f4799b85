"""The PySpark engine: a quiet local (or cluster) Spark session, its Ibis connection, and the
Spark MLlib versions of pattern mining and K-Means for inputs too large for one process.

pyspark is an optional extra (``pip install 'segkit[spark]'``; ``make setup`` installs it) and
needs a Java runtime, 17 or newer. Nothing here imports pyspark until it is called, so
``import segkit.spark`` always works; a missing pyspark or Java is a :class:`SparkUnavailableError`
that says what to install.

- :func:`spark_session`: a SparkSession that is quiet (errors only, no progress bars, no UI, no
  event logs) and, for ``local[...]`` masters, offline (driver bound to 127.0.0.1, a temporary
  warehouse folder, 4 shuffle partitions); timestamps in UTC.
- :func:`spark_connection`: the Ibis pyspark backend on that session, on which segkit's Ibis
  definitions can run.
- :func:`to_spark_df`: a pandas DataFrame, Arrow table, Parquet path or Ibis table as a Spark
  DataFrame.
- :func:`mine_patterns_spark`: ``pyspark.ml.fpm.PrefixSpan`` with the result of
  :func:`segkit.patterns.mine_patterns` (same patterns, supports, order and dtypes).
- :func:`kmeans_spark`: ``pyspark.ml.clustering.KMeans`` on a 2-D array, labels and centers back
  as numpy, clusters numbered by size as in :mod:`segkit.clustering`.

The public APIs reach them too: ``segkit.mine_patterns(..., engine="spark")`` mines on Spark with
every option of the fast engine, and ``BehaviorClusterer(method="spark_kmeans")`` fits its k-means
on Spark, both on the running session (the one ``engine: spark`` started) or a local one.
Inputs go to Spark as Arrow chunks of fewer than 2**31 values (Arrow's list offsets are int32).

Examples
--------
>>> from segkit.spark import mine_patterns_spark, spark_session  # doctest: +SKIP
>>> session = spark_session()  # doctest: +SKIP
>>> mine_patterns_spark([["a", "b"], ["a", "c", "b"], ["c"]], 2, session=session)  # doctest: +SKIP
  pattern  support  length
0    (a,)        2       1
1  (a, b)        2       2
2    (b,)        2       1
3    (c,)        2       1
"""
from __future__ import annotations

import atexit
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .errors import ParameterError, SegkitError, did_you_mean, format_allowed

if TYPE_CHECKING:  # pragma: no cover
    import ibis
    import pyarrow as pa
    from ibis.backends.pyspark import Backend as PySparkBackend
    from pyspark.sql import DataFrame as SparkDataFrame
    from pyspark.sql import SparkSession

__all__ = [
    "SparkUnavailableError",
    "SparkKMeansResult",
    "DEFAULT_CONFIG",
    "LOCAL_CONFIG",
    "spark_session",
    "spark_connection",
    "to_spark_df",
    "mine_patterns_spark",
    "kmeans_spark",
]

MIN_PYSPARK = (4, 0)
MIN_JAVA = 17
DEFAULT_CONFIG: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.eventLog.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
"""Settings :func:`spark_session` applies to every session it starts (``config`` overrides them)."""
LOCAL_CONFIG: dict[str, str] = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.shuffle.partitions": "4",
}
"""Further settings for ``local[...]`` masters (plus a temporary ``spark.sql.warehouse.dir``)."""
LOG_LEVELS = ("ALL", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF", "TRACE")
_LOG4J = Path(__file__).resolve().parent / "data" / "spark-log4j2.properties"
_INSTALL_HINT = "install it with: pip install 'segkit[spark]' (or pip install 'pyspark[sql]>=4.0'); `make setup` does"
_JAVA_HINT = ("install a Java runtime, 17 or newer (Debian/Ubuntu: apt-get install openjdk-17-jre-headless), "
              "or point JAVA_HOME at one")


class SparkUnavailableError(SegkitError, RuntimeError):
    """pyspark is not installed, is too old, or Java is missing, so no Spark session can start."""


@dataclass(frozen=True)
class SparkKMeansResult:
    """What :func:`kmeans_spark` returns.

    Attributes
    ----------
    labels : ndarray of int64, shape (n_samples,)
        The cluster of each row, 0 for the largest cluster, 1 for the next, ...
    centers : ndarray of float64, shape (n_clusters_found, n_features)
        The cluster centers, in label order.
    inertia : float
        Sum of squared distances of the rows to their centers (Spark's training cost).
    n_iter : int
        Iterations Spark ran.
    n_clusters : int
        Number of non-empty clusters (can be below the requested number on data with few
        distinct points).
    """

    labels: np.ndarray
    centers: np.ndarray
    inertia: float
    n_iter: int
    n_clusters: int


# --------------------------------------------------------------------------------------------
# Session and connection
# --------------------------------------------------------------------------------------------

def _require_pyspark() -> None:
    try:
        import pyspark
    except ImportError as e:
        raise SparkUnavailableError(f"segkit's Spark engine needs pyspark, which is not installed; {_INSTALL_HINT}") from e
    found = tuple(int(p) for p in re.findall(r"\d+", pyspark.__version__)[:2])
    if found < MIN_PYSPARK:
        raise SparkUnavailableError(f"segkit's Spark engine needs pyspark >= {'.'.join(map(str, MIN_PYSPARK))}, "
                                    f"found {pyspark.__version__}; {_INSTALL_HINT}")


def _java_major(java: str) -> int | None:
    """The major version of a ``java`` binary (``1.8`` is 8), or None when it does not say."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def _check_java() -> None:
    home = os.environ.get("JAVA_HOME")
    if home:
        java: str | None = str(Path(home) / "bin" / "java")
        if not Path(java).exists():
            raise SparkUnavailableError(f"Spark needs Java, but JAVA_HOME={home!r} has no bin/java; {_JAVA_HINT}")
    else:
        java = shutil.which("java")
        if java is None:
            raise SparkUnavailableError(f"Spark needs Java, but JAVA_HOME is not set and no 'java' is on PATH; {_JAVA_HINT}")
    major = _java_major(java)
    if major is not None and major < MIN_JAVA:
        raise SparkUnavailableError(f"Spark 4 needs Java {MIN_JAVA} or newer, but {java} is Java {major}; {_JAVA_HINT}")


def _conf_value(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    return str(value)


def _check_config(config: Any) -> dict[str, str]:
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise ParameterError("config", config, "None or a mapping of Spark settings, e.g. {'spark.driver.memory': '4g'}")
    out = {}
    for key, value in config.items():
        if not isinstance(key, str) or not key.startswith("spark."):
            raise ParameterError("config", key, message=f"Parameter 'config' has key {key!r}; Spark settings are strings "
                                 "starting with 'spark.' (e.g. 'spark.driver.memory')")
        if value is None or isinstance(value, (Mapping, list, tuple, set)):
            raise ParameterError(f"config[{key!r}]", value, "a string, number or bool")
        out[key] = _conf_value(value)
    return out


@contextmanager
def _quiet() -> Iterator[None]:
    """Hide pyspark's warning that it does not fully support pandas 3 (segkit tests what it uses)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
        yield


def _running_session() -> SparkSession | None:
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession() or getattr(SparkSession, "_instantiatedSession", None)
    if session is None:
        return None
    try:
        if session.sparkContext._jsc is None:  # stopped
            return None
    except Exception:  # pragma: no cover - remote (Spark Connect) sessions have no SparkContext
        return session
    return session


def spark_session(
    master: str = "local[2]",
    config: Mapping[str, Any] | None = None,
    app_name: str = "segkit",
    *,
    log_level: str = "ERROR",
) -> SparkSession:
    """Start (or reuse) a quiet SparkSession for segkit.

    A new session gets :data:`DEFAULT_CONFIG` (no UI, no console progress bars, no event logs,
    UTC session time zone, Arrow transfers to and from pandas) and, when ``master`` is
    ``local[...]``, :data:`LOCAL_CONFIG` (driver bound to 127.0.0.1 so nothing listens beyond
    loopback, 4 shuffle partitions instead of 200, a temporary ``spark.sql.warehouse.dir``, removed
    when Python exits, so no ``spark-warehouse/`` folder appears in the working directory); ``SPARK_LOCAL_IP`` is set to
    127.0.0.1 when unset. The driver logs errors only (a bundled Log4j 2 file, then
    ``log_level``). Workers run this Python (``PYSPARK_PYTHON`` defaults to ``sys.executable``).

    Spark runs one session per process: when one is already running with the same master and
    every setting in ``config``, it is returned as is (settings segkit adds by default are not
    compared); otherwise the error says what differs.

    Parameters
    ----------
    master : str, default="local[2]"
        Spark master URL: ``"local[2]"`` (two cores on this machine), ``"local[*]"``,
        ``"spark://host:7077"``, ``"yarn"``, ...
    config : mapping, optional
        Spark settings (``{"spark.driver.memory": "8g"}``); they override segkit's defaults.
        Driver settings such as ``spark.driver.memory`` take effect only when the session
        starts its JVM.
    app_name : str, default="segkit"
        Application name shown by the cluster manager.
    log_level : {"ERROR", "WARN", "INFO", "DEBUG", "FATAL", "OFF", "ALL", "TRACE"}, default="ERROR"
        Driver log level after start-up.

    Returns
    -------
    SparkSession

    Raises
    ------
    SparkUnavailableError
        pyspark (>= 4.0) is not installed, no Java 17+ runtime is found, or the JVM does not start.
    ParameterError
        A bad ``master``, ``config``, ``app_name`` or ``log_level``; a running session whose
        master or settings differ from those asked for.

    Examples
    --------
    >>> session = spark_session("local[2]", {"spark.sql.shuffle.partitions": 8})  # doctest: +SKIP
    >>> session.conf.get("spark.sql.shuffle.partitions")  # doctest: +SKIP
    '8'
    """
    if not isinstance(master, str) or not master.strip():
        raise ParameterError("master", master, "a Spark master URL such as 'local[2]', 'local[*]' or 'spark://host:7077'")
    if not isinstance(app_name, str) or not app_name:
        raise ParameterError("app_name", app_name, "a non-empty string")
    if not isinstance(log_level, str) or log_level.upper() not in LOG_LEVELS:
        raise ParameterError("log_level", log_level, list(LOG_LEVELS))
    requested = _check_config(config)
    _require_pyspark()

    running = _running_session()
    if running is not None:
        return _reuse(running, master, requested)

    local = master.startswith("local")
    settings = dict(DEFAULT_CONFIG)
    if local:
        settings.update(LOCAL_CONFIG)
        warehouse = tempfile.mkdtemp(prefix="segkit-spark-warehouse-")
        atexit.register(shutil.rmtree, warehouse, True)
        settings["spark.sql.warehouse.dir"] = warehouse
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    settings.update(requested)
    java_opts = settings.get("spark.driver.extraJavaOptions", "")
    if "log4j2.configurationFile" not in java_opts and _LOG4J.exists():
        settings["spark.driver.extraJavaOptions"] = f"{java_opts} -Dlog4j2.configurationFile={_LOG4J.as_uri()}".strip()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    _check_java()

    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    # the session's users (Ibis's pyspark backend, notebooks converting results) would see
    # pyspark's pandas-3 warning at every conversion; segkit's Spark tests run on pandas 3
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    try:
        with _quiet():
            session = builder.getOrCreate()
    except Exception as e:
        if "JAVA_GATEWAY_EXITED" in str(e) or "Java gateway process exited" in str(e):
            raise SparkUnavailableError(f"The Spark JVM did not start (master {master!r}): {e}; check the Java "
                                        f"runtime and the settings passed in 'config'; {_JAVA_HINT}") from e
        raise
    _set_log_level(session, log_level.upper())
    return session


def _set_log_level(session: SparkSession, level: str) -> None:
    """The root level, and that of Spark's own loggers (the bundled file sets them apart)."""
    session.sparkContext.setLogLevel(level)
    try:
        jvm = session.sparkContext._jvm
        jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(
            "org.apache.spark", jvm.org.apache.logging.log4j.Level.toLevel(level))
    except Exception:  # pragma: no cover - another logging backend
        pass


def _reuse(session: SparkSession, master: str, requested: dict[str, str]) -> SparkSession:
    differences = []
    have_master = session.sparkContext.master
    if have_master != master:
        differences.append(f"master is {have_master!r}, not {master!r}")
    for key, want in requested.items():
        have = session.conf.get(key, None)
        if have != want:
            differences.append(f"{key} is {have!r}, not {want!r}")
    if differences:
        name = "master" if have_master != master else "config"
        raise ParameterError(name, master if name == "master" else requested,
                             message="A Spark session is already running and does not match: " + "; ".join(differences)
                             + ". Spark runs one session per process: stop it first (session.stop()) or pass it "
                             "to segkit as session=...")
    return session


def _session(session: SparkSession | None) -> SparkSession:
    """The given session (checked) or :func:`spark_session`'s default one."""
    if session is None:
        return spark_session()
    _require_pyspark()
    from pyspark.sql import SparkSession

    if not isinstance(session, SparkSession):
        raise ParameterError("session", type(session).__name__, "None or a pyspark.sql.SparkSession")
    return session


def _active_session() -> SparkSession:
    """The running SparkSession (for example the one :func:`segkit.engine.use_engine` started with
    ``engine: spark``), else :func:`spark_session`'s default local one: the session of
    ``mine_patterns(engine="spark")`` and ``BehaviorClusterer(method="spark_kmeans")``, which
    take no ``session`` argument."""
    _require_pyspark()
    running = _running_session()
    return running if running is not None else spark_session()


def spark_connection(session: SparkSession | None = None) -> PySparkBackend:
    """The Ibis pyspark backend on ``session`` (default: :func:`spark_session`'s local one).

    segkit's event-level transforms are Ibis expressions; tables of this connection
    (``con.read_parquet(path)``, ``con.table(name)``, ``con.create_table(name, frame)``) run them
    on Spark. Ibis sets the session time zone to UTC.

    Parameters
    ----------
    session : SparkSession, optional
        A running session, for example one on a cluster; by default :func:`spark_session()`.

    Returns
    -------
    ibis.backends.pyspark.Backend

    Examples
    --------
    >>> con = spark_connection()  # doctest: +SKIP
    >>> events = con.read_parquet("events.parquet")  # doctest: +SKIP
    """
    session = _session(session)
    import ibis

    with _quiet():  # the backend's module defines pandas UDFs, which warns about pandas 3
        return ibis.pyspark.connect(session)


def to_spark_df(data: Any, *, session: SparkSession | None = None) -> SparkDataFrame:
    """A pandas DataFrame, Arrow table, Parquet path or Ibis table as a Spark DataFrame.

    Parameters
    ----------
    data : DataFrame, pyarrow.Table, str, Path, ibis.Table or pyspark DataFrame
        A pandas frame or an Arrow table is sent through Arrow (timestamps, with a zone or
        without, become Spark ``TIMESTAMP`` values read as UTC, the session time zone); a path (file,
        folder or glob) is read lazily as Parquet by Spark; an Ibis table bound to a pyspark
        connection is compiled to Spark SQL (other Ibis tables are executed to Arrow first); a
        Spark DataFrame is returned as is.
    session : SparkSession, optional
        Default: :func:`spark_session()`.

    Returns
    -------
    pyspark.sql.DataFrame

    Raises
    ------
    ParameterError
        An input of another type, or a path that does not exist.

    Examples
    --------
    >>> sdf = to_spark_df(pd.DataFrame({"user_id": ["a", "b"]}))  # doctest: +SKIP
    >>> sdf.count()  # doctest: +SKIP
    2
    """
    session = _session(session)
    import pyarrow as pa
    from pyspark.sql import DataFrame as SparkDataFrame

    if isinstance(data, SparkDataFrame):
        return data
    if isinstance(data, pd.DataFrame):
        return _from_arrow(session, pa.Table.from_pandas(data, preserve_index=False))
    if isinstance(data, pa.Table):
        return _from_arrow(session, data)
    if isinstance(data, (str, Path)):
        path = str(data)
        if not any(ch in path for ch in "*?[") and not Path(path).exists() and "://" not in path:
            raise ParameterError("data", path, message=f"Input {path!r} does not exist; expected a Parquet file, folder or glob")
        return session.read.parquet(path)
    import ibis

    if isinstance(data, ibis.Table):
        try:
            backend = data._find_backend(use_default=False)
        except Exception:
            backend = None
        if backend is not None and getattr(backend, "name", None) == "pyspark":
            return backend._session.sql(backend.compile(data))
        return _from_arrow(session, data.to_pyarrow())
    raise ParameterError("data", type(data).__name__,
                         message=f"Expected a pandas DataFrame, a pyarrow Table, a Parquet path, an Ibis table or a Spark "
                                 f"DataFrame, got {type(data).__name__}")


def _from_arrow(session: SparkSession, table: pa.Table) -> SparkDataFrame:
    import pyarrow as pa

    # Spark's Arrow reader takes string and list, not their large_ (64-bit offset) variants
    fields = []
    for field in table.schema:
        t = field.type
        if pa.types.is_large_string(t):
            t = pa.string()
        elif pa.types.is_large_list(t):
            t = pa.list_(t.value_type)
        fields.append(pa.field(field.name, t, field.nullable))
    schema = pa.schema(fields)
    if schema != table.schema:
        table = table.cast(schema)
    with _quiet():
        return session.createDataFrame(table)


# --------------------------------------------------------------------------------------------
# Sequential patterns on Spark MLlib
# --------------------------------------------------------------------------------------------

def _spark_fraction(min_count: int, n_sequences: int) -> float:
    """The ``minSupport`` fraction for which Spark's ``ceil(minSupport * n)`` is exactly ``min_count``.

    ``min_count / n`` is not always it: the product can round to just above ``min_count``
    (and Spark would ask for one sequence more). Step to the neighbouring doubles until
    IEEE arithmetic, the same in Python and on the JVM, gives ``min_count``.
    """
    frac = min_count / n_sequences
    while frac > 0 and math.ceil(frac * n_sequences) > min_count:
        frac = math.nextafter(frac, 0.0)
    while math.ceil(frac * n_sequences) < min_count:
        frac = math.nextafter(frac, 1.0)
    return min(frac, 1.0)


def _frame(rows: list[tuple[int, tuple[int, ...]]], items: list[Any], minsup: int, n_seq: int) -> pd.DataFrame:
    from .patterns import _pattern_frame

    return _pattern_frame(rows, items, minsup, n_seq, "spark")


def _sequences_from_spark(df: SparkDataFrame, sequence_col: Any) -> tuple[SparkDataFrame, int, int, list[Any]]:
    """Check a Spark DataFrame's sequence column; return (itemset frame, n, longest, items in order)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from .patterns import _item_order

    if not isinstance(sequence_col, str) or sequence_col not in df.columns:
        raise ParameterError("sequence_col", sequence_col, df.columns,
                             message=f"Column {sequence_col!r} not found in the Spark DataFrame;"
                             f"{did_you_mean(str(sequence_col), df.columns)} Available: {format_allowed(df.columns)}")
    dtype = df.schema[sequence_col].dataType
    if not isinstance(dtype, T.ArrayType) or isinstance(dtype.elementType, (T.ArrayType, T.MapType, T.StructType)):
        raise ParameterError("sequence_col", sequence_col,
                             message=f"Column {sequence_col!r} is {dtype.simpleString()}; expected an array of items "
                             "(array<string>, array<int>, ...), one sequence per row (itemsets are not supported)")
    col = F.col(sequence_col)
    missing = F.exists(col, lambda x: x.isNull())
    if isinstance(dtype.elementType, (T.FloatType, T.DoubleType)):
        missing = F.exists(col, lambda x: x.isNull() | F.isnan(x))
    stats = df.agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(col.isNull().cast("long")).alias("null_sequences"),
        F.sum(F.coalesce(missing, F.lit(False)).cast("long")).alias("missing_items"),
        F.max(F.size(col)).alias("longest"),
    ).collect()[0]
    if stats["null_sequences"]:
        raise ParameterError(sequence_col, None, message=f"Column {sequence_col!r} has {stats['null_sequences']} null "
                             "sequence(s); use an empty array for a sequence without items")
    if stats["missing_items"]:
        raise ParameterError(sequence_col, None, message=f"Column {sequence_col!r} has {stats['missing_items']} "
                             "sequence(s) with a missing item (null or NaN); items must not be missing")
    n = int(stats["n"])
    longest = int(stats["longest"] or 0) if n else 0
    distinct = [r[0] for r in df.select(F.explode(col)).distinct().collect()]
    items = _item_order(distinct)
    itemsets = df.select(F.transform(col, lambda x: F.array(x)).alias("sequence"))
    return itemsets, n, longest, items


def mine_patterns_spark(
    sequences: Sequence[Sequence[Hashable]] | SparkDataFrame,
    min_support: int | float,
    *,
    max_len: int | None = None,
    min_len: int = 1,
    top_k: int | None = None,
    sequence_col: str = "sequence",
    session: SparkSession | None = None,
) -> pd.DataFrame:
    """Frequent sequential patterns with Spark MLlib's PrefixSpan, as :func:`segkit.patterns.mine_patterns`.

    The answer equals ``mine_patterns(sequences, min_support, max_len=..., min_len=...,
    top_k=...)``: the same patterns, supports (sequences containing the pattern, gaps
    allowed), row order (support descending, then pattern), columns and dtypes. Spark mines
    sequences of itemsets; each item here is a one-item itemset.

    Two Spark defaults would change the answer and are taken care of: ``maxPatternLength`` (10
    by default, longer patterns silently dropped) is ``max_len``, or the longest sequence when
    ``max_len`` is None; ``minSupport`` is a fraction that Spark turns into
    ``ceil(minSupport * n)``, so segkit's count is converted to the fraction for which that is
    exactly the count.

    Parameters
    ----------
    sequences : list of list of hashable, or pyspark DataFrame
        As for :func:`~segkit.patterns.mine_patterns` (items are encoded as integers for Spark
        and decoded back), or a Spark DataFrame with one sequence per row in ``sequence_col``
        (an array column; the distinct items are collected to order the result).
    min_support : int or float
        An int >= 1 is a number of sequences; a float in (0, 1] a fraction of them, converted
        to ``ceil(min_support * n)`` with a 1e-9 tolerance (0.07 of 100 sequences is 7).
    max_len : int, optional
        Longest pattern (Spark's ``maxPatternLength``); unbounded when None.
    min_len : int, default=1
        Shortest pattern to return (filtered after mining).
    top_k : int, optional
        Keep the ``top_k`` first rows (Spark mines every frequent pattern, then segkit cuts).
    sequence_col : str, default="sequence"
        The array column of a Spark DataFrame input; a parameter of that input only.
    session : SparkSession, optional
        Default: :func:`spark_session()`. A Spark DataFrame input runs on its own session (a
        different ``session`` is an error).

    Returns
    -------
    DataFrame
        ``pattern`` (tuple of items), ``support`` (int64), ``length`` (int64); ``attrs`` holds
        ``min_support`` (the count used), ``n_sequences`` and ``engine="spark"``.

    Raises
    ------
    ParameterError
        Whatever :func:`~segkit.patterns.mine_patterns` rejects for these arguments; a missing
        or non-array ``sequence_col``, a null sequence or a missing item in a Spark input;
        ``sequence_col`` given with a list input; ``session`` not the Spark input's own.
    SparkUnavailableError
        No pyspark or Java.

    Notes
    -----
    Closed and generator patterns and the item filters of ``mine_patterns`` are not offered
    here: for sequences in a list, ``mine_patterns(..., engine="spark")`` mines on Spark too and
    offers them all, exactly.

    Examples
    --------
    >>> db = [[0, 1, 2, 3, 4], [1, 1, 1, 3, 4], [2, 1, 2, 2, 0], [1, 1, 1, 2, 2]]
    >>> mine_patterns_spark(db, 2, top_k=3)  # doctest: +SKIP
      pattern  support  length
    0    (1,)        4       1
    1  (1, 2)        3       2
    2    (2,)        3       1
    """
    from .patterns import _absolute_support, _check_optional_int, _encode, _is_int

    top_k = _check_optional_int("top_k", top_k, 1)
    if not _is_int(min_len) or min_len < 1:
        raise ParameterError("min_len", min_len, "an int >= 1")
    min_len = int(min_len)
    max_len = _check_optional_int("max_len", max_len, 1)
    if max_len is not None and max_len < min_len:
        raise ParameterError("max_len", max_len, f"None or an int >= min_len ({min_len})")
    _absolute_support(min_support, 0)  # type and range checks before Spark starts

    spark_input = type(sequences).__module__.startswith("pyspark.")
    if spark_input:  # runs on the DataFrame's own session
        if session is not None and session is not sequences.sparkSession:
            raise ParameterError("session", session, message="Parameter 'session' is not the session of the Spark "
                                 "DataFrame given as sequences; leave it out (the DataFrame's own session runs it)")
        sdf, n_seq, longest, items = _sequences_from_spark(sequences, sequence_col)
        minsup = _absolute_support(min_support, n_seq)
        if n_seq == 0 or longest == 0 or minsup > n_seq:
            return _frame([], items, minsup, n_seq)
    else:
        if sequence_col != "sequence":
            raise ParameterError("sequence_col", sequence_col, message="Parameter 'sequence_col' names the column of "
                                 "a Spark DataFrame input; the sequences given are a list")
        codes, offsets, items = _encode(sequences)
        n_seq = len(offsets) - 1
        longest = int(np.diff(offsets).max()) if n_seq else 0
        minsup = _absolute_support(min_support, n_seq)
        if n_seq == 0 or longest == 0 or minsup > n_seq:
            return _frame([], items, minsup, n_seq)
        sdf = _codes_frame(_session(session), codes, offsets)

    limit = longest if max_len is None else min(max_len, longest)
    rows = _prefixspan(sdf, minsup, n_seq, limit, None if not spark_input else {item: c for c, item in enumerate(items)})
    if min_len > 1:
        rows = [r for r in rows if len(r[1]) >= min_len]
    rows.sort(key=lambda r: (-r[0], r[1]))
    if top_k is not None:
        rows = rows[:top_k]
    return _frame(rows, items, minsup, n_seq)


_ARROW_CHUNK_ROWS = 1 << 20
"""Rows per Arrow chunk sent to Spark: list offsets are int32, so one chunk holds < 2**31 values."""
_ARROW_MAX_VALUES = 2**31 - 1


def _row_chunks(offsets: np.ndarray) -> list[tuple[int, int]]:
    """(first, stop) row ranges of a CSR layout with at most ``_ARROW_CHUNK_ROWS`` rows and
    ``_ARROW_MAX_VALUES`` values each (a longer row goes alone in its chunk, and Arrow refuses it)."""
    n = len(offsets) - 1
    out, start = [], 0
    while start < n:
        stop = min(n, start + _ARROW_CHUNK_ROWS)
        fit = int(np.searchsorted(offsets, offsets[start] + _ARROW_MAX_VALUES, side="right")) - 1
        stop = max(start + 1, min(stop, fit))
        out.append((start, stop))
        start = stop
    return out


def _codes_frame(session: SparkSession, codes: np.ndarray, offsets: np.ndarray) -> SparkDataFrame:
    """A CSR database of item codes as a Spark DataFrame of one-item itemsets (column ``sequence``)."""
    import pyarrow as pa

    chunks = []
    for a, b in _row_chunks(offsets):
        lo, hi = int(offsets[a]), int(offsets[b])
        # one-item itemsets: inner lists of length 1 over the codes, outer lists by sequence
        inner = pa.ListArray.from_arrays(pa.array(np.arange(hi - lo + 1), type=pa.int32()), pa.array(codes[lo:hi]))
        chunks.append(pa.ListArray.from_arrays(pa.array(offsets[a:b + 1] - lo, type=pa.int32()), inner))
    return _from_arrow(session, pa.table({"sequence": pa.chunked_array(chunks)}))


def _prefixspan(sdf: SparkDataFrame, minsup: int, n_seq: int, limit: int,
                code_of: dict[Any, int] | None) -> list[tuple[int, tuple[int, ...]]]:
    """Every pattern of at most ``limit`` items in at least ``minsup`` of the ``n_seq`` sequences
    of ``sdf`` (column ``sequence``, one-item itemsets), as unsorted (support, tuple of codes)."""
    from pyspark.ml.fpm import PrefixSpan

    miner = PrefixSpan(minSupport=_spark_fraction(minsup, n_seq), maxPatternLength=limit, sequenceCol="sequence")
    with _quiet():
        found = miner.findFrequentSequentialPatterns(sdf).toArrow()
    return _decode_patterns(found, code_of)


def _frequent_codes(codes: np.ndarray, offsets: np.ndarray, minsup: int,
                    limit: int) -> list[tuple[int, tuple[int, ...]]]:
    """Every pattern of at most ``limit`` codes in at least ``minsup`` sequences of a non-empty CSR
    database, mined on :func:`_active_session` (unsorted); what ``mine_patterns(engine="spark")`` runs."""
    return _prefixspan(_codes_frame(_active_session(), codes, offsets), minsup, len(offsets) - 1, limit, None)


def _decode_patterns(found: pa.Table, code_of: dict[Any, int] | None) -> list[tuple[int, tuple[int, ...]]]:
    """Spark's (sequence of one-item itemsets, freq) rows as (support, tuple of codes)."""
    import pyarrow.compute as pc

    if found.num_rows == 0:
        return []
    seqs = found.column("sequence").combine_chunks()
    freq = found.column("freq").to_numpy()
    itemsets = seqs.flatten()
    if not pc.all(pc.equal(itemsets.value_lengths(), 1)).as_py():  # pragma: no cover - Spark invariant
        raise SegkitError("Spark's PrefixSpan returned an itemset of several items from one-item itemsets")
    values = itemsets.flatten()
    flat = values.to_numpy(zero_copy_only=False).tolist() if code_of is None else [code_of[v] for v in values.to_pylist()]
    bounds = np.concatenate([[0], np.cumsum(seqs.value_lengths().to_numpy())]).tolist()
    return [(int(freq[i]), tuple(flat[bounds[i]:bounds[i + 1]])) for i in range(len(freq))]


# --------------------------------------------------------------------------------------------
# K-Means on Spark MLlib
# --------------------------------------------------------------------------------------------

def kmeans_spark(
    X: Any,
    n_clusters: int,
    *,
    random_state: int = 0,
    max_iter: int = 100,
    tol: float = 1e-4,
    init: str = "k-means||",
    session: SparkSession | None = None,
) -> SparkKMeansResult:
    """K-Means with ``pyspark.ml.clustering.KMeans`` on a 2-D array; labels and centers as numpy.

    The rows go to Spark through Arrow (one ``array<double>`` column, turned into ML vectors),
    the model is fitted there, and the predictions come back in row order. Clusters are
    renumbered by decreasing size (ties: the cluster of the earlier first row first), as
    :mod:`segkit.clustering` does, so the numbering does not depend on Spark's. With the same
    data, ``random_state`` and session settings the result is the same on every run.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Finite numbers.
    n_clusters : int
        Number of clusters, >= 2 (Spark's ``k``).
    random_state : int, default=0
        Seed of the initialization (Spark's ``seed``).
    max_iter : int, default=100
        Most iterations (Spark's ``maxIter``).
    tol : float, default=1e-4
        Stop when no center moves farther than this (Spark's ``tol``, a distance).
    init : {"k-means||", "random"}, default="k-means||"
        Initialization (Spark's ``initMode``).
    session : SparkSession, optional
        Default: :func:`spark_session()`.

    Returns
    -------
    SparkKMeansResult
        ``labels``, ``centers``, ``inertia``, ``n_iter``, ``n_clusters``.

    Raises
    ------
    ParameterError
        ``X`` not 2-D, empty, not numeric or not finite; ``n_clusters`` not an int in
        [2, n_samples]; a bad ``random_state``, ``max_iter``, ``tol`` or ``init``.

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0], [5.0, 5.1]])
    >>> kmeans_spark(X, 2).labels  # doctest: +SKIP
    array([1, 1, 0, 0, 0])
    """
    from .clustering import _order_by_size
    from .patterns import _is_int

    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError("X", type(X).__name__, "a 2-D array of numbers") from None
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ParameterError("X", f"array of shape {arr.shape}", "a non-empty 2-D array (n_samples, n_features)")
    if not np.isfinite(arr).all():
        raise ParameterError("X", "non-finite values", message=f"Parameter 'X' has {int((~np.isfinite(arr)).sum())} "
                             "NaN or infinite value(s); impute or drop them first")
    n = arr.shape[0]
    if not _is_int(n_clusters) or not 2 <= n_clusters <= n:
        raise ParameterError("n_clusters", n_clusters, f"an int in [2, n_samples={n}] (Spark's KMeans needs k >= 2)")
    if not _is_int(random_state):
        raise ParameterError("random_state", random_state, "an int")
    if not _is_int(max_iter) or max_iter < 1:
        raise ParameterError("max_iter", max_iter, "an int >= 1")
    if isinstance(tol, bool) or not isinstance(tol, (int, float, np.floating)) or not tol >= 0:
        raise ParameterError("tol", tol, "a number >= 0")
    if init not in ("k-means||", "random"):
        raise ParameterError("init", init, ["k-means||", "random"])
    session = _session(session)
    d = arr.shape[1]
    sdf = _vectors(session, arr)
    model = _fit_kmeans(sdf, int(n_clusters), int(random_state), int(max_iter), float(tol), init)
    with _quiet():
        pred = model.transform(sdf).select("row", "prediction").toArrow()
    rows = pred.column("row").to_numpy()
    labels = np.empty(n, dtype=np.int64)
    labels[rows] = pred.column("prediction").to_numpy()
    centers = np.asarray(model.clusterCenters(), dtype=np.float64).reshape(-1, d)
    labels, ordered, found = _order_by_size(labels, centers, centers.shape[0])
    summary = model.summary
    return SparkKMeansResult(labels=labels, centers=np.asarray(ordered), inertia=float(summary.trainingCost),
                             n_iter=int(summary.numIter), n_clusters=found)


def _vectors(session: SparkSession, arr: np.ndarray) -> SparkDataFrame:
    """The rows of a float64 matrix as a Spark DataFrame (``row`` number, ``features`` ML vector)."""
    import pyarrow as pa
    from pyspark.ml.functions import array_to_vector

    n, d = arr.shape
    flat = arr.ravel()
    chunks = []
    for a, b in _row_chunks(np.arange(0, (n + 1) * d, d, dtype=np.int64)):
        offsets = np.arange(0, (b - a + 1) * d, d, dtype=np.int64)
        chunks.append(pa.ListArray.from_arrays(pa.array(offsets, type=pa.int32()), pa.array(flat[a * d:b * d])))
    sdf = _from_arrow(session, pa.table({"row": pa.array(np.arange(n, dtype=np.int64)), "x": pa.chunked_array(chunks)}))
    return sdf.select("row", array_to_vector("x").alias("features"))


def _fit_kmeans(sdf: SparkDataFrame, k: int, seed: int, max_iter: int, tol: float, init: str) -> Any:
    from pyspark.ml.clustering import KMeans

    return KMeans(k=k, seed=seed, maxIter=max_iter, tol=tol, initMode=init).fit(sdf)


def _kmeans_centers(X: np.ndarray, ks: Sequence[int], seed: int, *, max_iter: int = 100, tol: float = 1e-4,
                    init: str = "k-means||") -> dict[int, np.ndarray]:
    """Spark K-Means centers (as :func:`kmeans_spark` fits them, in Spark's order) of a finite 2-D
    matrix for every k in ``ks``, on :func:`_active_session`; the rows go to Spark once and stay
    cached for all the fits. What ``BehaviorClusterer(method="spark_kmeans")`` runs."""
    session = _active_session()
    d = X.shape[1]
    sdf = _vectors(session, np.ascontiguousarray(X, dtype=np.float64)).select("features").cache()
    try:
        out = {}
        for k in ks:
            model = _fit_kmeans(sdf, int(k), int(seed), max_iter, tol, init)
            out[int(k)] = np.asarray(model.clusterCenters(), dtype=np.float64).reshape(-1, d)
        return out
    finally:
        sdf.unpersist()
