"""The scale benchmark's measurement (process-tree memory) and its pipeline on a tiny shop (DuckDB)."""
import sys
from pathlib import Path

import pytest

from benchmarks.bench_scale import measure_tree, pipeline

ROOT = Path(__file__).resolve().parents[1]


def test_measure_tree_counts_a_child_process_memory():
    # the measured process stays small; its child touches 300 MB (Spark's JVM is such a child)
    grandchild = "import time; b = b'x' * 300_000_000; time.sleep(1.0)"
    t, peak_mb, res = measure_tree("subprocess:check_call", [sys.executable, "-c", grandchild])
    assert res["result"] == 0
    assert res["tree_polled_mb"] >= 300
    assert peak_mb >= 300
    assert t >= 1.0


def test_measure_tree_reports_a_failing_target():
    with pytest.raises(RuntimeError, match="failed"):
        measure_tree("subprocess:check_call", [sys.executable, "-c", "raise SystemExit(3)"])


def test_measure_tree_stops_a_case_past_its_timeout():
    with pytest.raises(TimeoutError, match="still running"):
        measure_tree("time:sleep", 30, timeout=1.0)


def test_pipeline_on_duckdb_reports_sizes_and_steps(tmp_path):
    from segkit.simulate import simulate_to_parquet

    folder = tmp_path / "events"
    info = simulate_to_parquet(folder, 300, chunk_users=150, seed=7, taxonomy=ROOT / "parameters" / "taxonomy" / "default.yaml")
    out = pipeline("duckdb", str(folder), str(tmp_path), {"memory_limit": "1GB"})
    assert out["rows_in"] == info["events"]
    assert 0 < out["rows"] <= out["rows_in"]
    assert 0 < out["users"] <= 300 and out["sessions"] >= out["users"]
    assert out["members"] > 0
    steps = ("connect", "clean", "sessions", "features", "segments")
    assert all(out[f"{step}_s"] >= 0 and out[f"{step}_peak_mb"] > 0 for step in steps)
