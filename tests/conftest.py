"""Shared test fixtures.

The real sample datasets live beside the repository in ``../shared/data`` (``/work/shared/data``
for a clone at ``/work/main``; CI checks ``shared/`` out beside the clone the same way). Tests that
need them skip when the folder is absent, except under CI (``CI`` set and non-empty), where a
missing sample is a failure rather than a silently skipped test.
"""
from __future__ import annotations

import os
import shutil
from importlib.util import find_spec
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def require_shared(*parts: str) -> Path:
    """Return ``SHARED_DATA / parts...``; skip the test when it is missing (fail under CI).

    Examples
    --------
    >>> path = require_shared("rees46_sample", "2019-Oct-sample.csv")  # doctest: +SKIP
    """
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = f"../shared/data not found: {path} (expected the shared samples beside the repository)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the shared sample-data folder (skips when absent, fails under CI)."""
    return require_shared()


def spark_unavailable() -> str | None:
    """Why Spark tests cannot run here (None when pyspark and Java are present)."""
    if find_spec("pyspark") is None:
        return "pyspark is not installed (the 'spark' extra: make setup, or pip install 'segkit[spark]')"
    home = os.environ.get("JAVA_HOME")
    if not (os.path.exists(os.path.join(home, "bin", "java")) if home else shutil.which("java")):
        return "no Java runtime (JAVA_HOME or 'java' on PATH; Spark 4 needs Java 17+)"
    return None


def require_spark() -> None:
    """Skip the calling test module without pyspark/Java; fail instead under CI."""
    reason = spark_unavailable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"Spark tests cannot run under CI: {reason}", pytrace=False)
        pytest.skip(reason, allow_module_level=True)


# Test settings, not defaults: C1-only JIT and the serial GC start the JVM and run many tiny jobs
# about twice as fast on two cores, and without whole-stage code generation and adaptive planning
# a tiny query compiles less (long jobs want all four)
FAST_JVM = {"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
            "spark.sql.codegen.wholeStage": "false", "spark.sql.adaptive.enabled": "false"}


@pytest.fixture(scope="session")
def spark():
    """One local[2] SparkSession for every Spark test module (started on first use)."""
    from segkit.spark import spark_session

    s = spark_session("local[2]", FAST_JVM)
    yield s
    s.stop()
