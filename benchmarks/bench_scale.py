"""The whole event pipeline at 10M and 50M simulated events, on DuckDB and on Spark local[2] (issue 9).

Each size is simulated once in chunks (``simulate_to_parquet``), read lazily from Parquet on the
engine with input row numbers (``numbered``), cleaned, sessionized, turned into sessions and user
features (pandas, one row per session / user) and evaluated against the default segments. The
event-level tables never come back to pandas.

Every case runs in a fresh process (so Spark's driver settings apply and earlier cases do not
inflate the memory), and its peak memory is the resident set of the whole process tree: Spark's
JVM is a child of the Python process and its memory is outside Python's own RSS. The tree is
polled every 50 ms; each process's kernel high-water mark (``VmHWM``) is read too, so a spike
between two polls of a single process is not missed. The DuckDB row is the reference of the
Spark row of the same size (same run, same files). There is no pandas reference at these sizes:
the pandas pipeline (``bench_pipeline``) would need about 90 GB at 50M events.

DuckDB runs with a memory limit (past it, sorts, joins and aggregates spill to a folder under the
benchmark's temporary folder) so that the whole process stays within :data:`PEAK_TARGET_MB`;
Spark with ``spark.driver.memory`` set when its JVM starts. A Spark case whose time, estimated
from the Spark rate measured at the previous size, would exceed :data:`SPARK_BUDGET_S` is not run;
its row says so (``status``) and carries the measured rate. A case that is not run, fails or
passes :data:`CASE_TIMEOUT_S` keeps its row, with NaN time and memory and the reason in ``status``.
The data is simulated in a separate process too (its time and peak are in the rows).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import row, rss_mb

EVENTS_PER_USER = 71.6  # the simulated shop's default rate
ROOT = Path(__file__).resolve().parents[1]
CASE = "load+clean+sessions+features+segments"
PEAK_TARGET_MB = 8000.0  # issue 9: the DuckDB path within 8 GB at 50M events
DUCKDB_MEMORY_LIMIT = "4GB"  # DuckDB's own buffers; the rest of the 8 GB is Python (the session and user tables in pandas) and Arrow
SPARK_DRIVER_MEMORY = "6g"  # local[2]: the driver JVM is the executor too
# a Spark case estimated to take longer is reported as not run. The default runs Spark at 50M
# events too (61 min on local[2] here, estimated from the 10M case at 60 min);
# SEGKIT_BENCH_SPARK_BUDGET_MIN=25 skips it
SPARK_BUDGET_S = float(os.environ.get("SEGKIT_BENCH_SPARK_BUDGET_MIN", "90")) * 60.0
# a case still running after this is stopped and reported as not finished (at least twice the budget)
CASE_TIMEOUT_S = max(60 * 60.0, 2 * SPARK_BUDGET_S)
POLL_S = 0.05


def pipeline(engine: str, path: str, temp_dir: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The event pipeline on ``engine`` (``"duckdb"`` or ``"spark"``) over the Parquet folder ``path``.

    ``settings`` holds ``memory_limit`` (DuckDB) or ``spark_config`` (Spark). Returns the output
    sizes and the seconds spent in each step (lazy steps cost little; the work happens where a
    result is computed). Each finished step adds a line to ``temp_dir/progress.log``.
    """
    from segkit.clean import clean_events
    from segkit.engine import connect, numbered
    from segkit.features import build_user_features
    from segkit.segments import evaluate_segments, load_segments
    from segkit.sessions import session_table, split_sessions

    from benchmarks.bench_segments import _crm

    steps: dict[str, float] = {}
    _reset_peak()
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        steps[f"{name}_s"] = round(now - t, 2)
        steps[f"{name}_peak_mb"] = _own_peak_mb()  # this (Python) process only: DuckDB's memory, not Spark's JVM
        steps[f"{name}_held_mb"] = round(rss_mb(), 1)  # what stays resident after the step
        if engine == "duckdb":  # of which DuckDB's buffer manager (bounded by memory_limit, spills past it)
            with con.con.cursor() as cur:  # a cursor of its own: segkit may hold an open result on the connection
                used = cur.sql("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchall()[0][0]
            steps[f"{name}_duckdb_mb"] = round(float(used) / 1e6, 1)
        _reset_peak()
        t = now
        # a long case (Spark at 50M runs for an hour or more) shows how far it got
        with open(Path(temp_dir) / "progress.log", "a") as fh:
            fh.write(f"{time.strftime('%H:%M:%S')} {engine} {name} done in {steps[f'{name}_s']} s\n")

    if engine == "spark":
        con = connect("spark", spark_master="local[2]", spark_config=settings["spark_config"])
    else:
        con = connect("duckdb", memory_limit=settings["memory_limit"], temp_directory=str(Path(temp_dir) / "duckdb-spill"))
    lap("connect")
    events = numbered(path, con=con)
    clean = clean_events(events, output="ibis")
    lap("clean")
    sessionized = split_sessions(clean.events, output="ibis")
    sessions = session_table(sessionized)
    lap("sessions")
    # the default segments include two CRM features (lifetime_value, is_vip): the CRM table of bench_segments
    users = build_user_features(sessionized, sessions=sessions, crm=_crm(sessions["user_id"].unique()))
    lap("features")
    members = evaluate_segments(load_segments(ROOT / "parameters" / "segments" / "default.yaml"), events=sessionized, features=users)
    lap("segments")
    return {"rows_in": int(clean.rows_in), "rows": int(clean.rows_out), "sessions": len(sessions), "users": len(users),
            "members": len(members), **steps}


def _own_peak_mb() -> float:
    """This process's peak resident MB since start or the last :func:`_reset_peak` (``VmHWM``)."""
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) / 1e3 for line in fh if line.startswith("VmHWM:"))


def _reset_peak() -> None:
    """Restart the kernel's peak-RSS mark of this process (Linux 4.0+; ignored where refused)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _tree_rss(root: int) -> tuple[float, dict[int, tuple[str, float]]]:
    """Resident MB of ``root`` and all its descendants (Linux /proc), and each process's (name, VmHWM MB)."""
    pids, todo = [], [root]
    while todo:  # descendants through /proc/<pid>/task/<tid>/children
        pid = todo.pop()
        pids.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except OSError:
            continue
    total, hwm = 0.0, {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as fh:
                status = dict(line.split(":", 1) for line in fh if ":" in line)
        except OSError:
            continue
        try:  # the program (java, python); the kernel's Name is a thread name that the JVM changes
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                name = Path(fh.read().split(b"\0", 1)[0].decode(errors="replace")).name
        except OSError:
            name = ""
        total += int(status.get("VmRSS", "0 kB").split()[0]) / 1e3
        hwm[pid] = (name, int(status.get("VmHWM", "0 kB").split()[0]) / 1e3)
    return total, hwm


def measure_tree(target: str, *args: Any, timeout: float = CASE_TIMEOUT_S) -> tuple[float, float, dict[str, Any]]:
    """Run ``target`` (``"module:function"``) once in a fresh process; its wall time, the peak RSS
    of its whole process tree in MB, and its result with the memory details added.

    Like :func:`benchmarks.harness.measure_isolated` (the time is measured inside the child, around
    the call only, after segkit is imported), but the memory counts the child's descendants too
    (Spark's JVM). ``peak_mb`` is the largest of the polled tree total, each process's high-water
    mark and the per-step peaks the target reports (``*_peak_mb``). Raises ``TimeoutError`` after ``timeout`` seconds (the child's
    process group is stopped).
    """
    module, func = target.split(":")
    code = (
        "import json, sys, time, importlib\n"
        "import segkit.clean, segkit.engine, segkit.features, segkit.segments, segkit.sessions\n"
        f"fn = getattr(importlib.import_module({module!r}), {func!r})\n"
        f"args = json.loads({json.dumps(json.dumps(list(args)))})\n"
        "t0 = time.perf_counter(); res = fn(*args); t = time.perf_counter() - t0\n"
        "sys.stdout.write('\\n@@RESULT@@' + json.dumps([t, res]))\n"
    )
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=out, stderr=err, text=True, start_new_session=True)
        peak, hwm, t0 = 0.0, {}, time.monotonic()
        try:
            while proc.poll() is None:
                total, marks = _tree_rss(proc.pid)
                peak = max(peak, total)
                for pid, (name, mb) in marks.items():  # a process's last program name (a fork runs python until it execs java)
                    seen_name, seen_mb = hwm.get(pid, ("?", 0.0))
                    hwm[pid] = (name or seen_name, max(seen_mb, mb))
                if time.monotonic() - t0 > timeout:
                    raise TimeoutError(f"{target} still running after {timeout:.0f} s")
                time.sleep(POLL_S)
        finally:  # a timeout or an interrupted benchmark stops the case's whole group (start_new_session)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{target} failed (exit {proc.returncode}):\n{stderr[-3000:]}")
    t, res = json.loads(stdout.rsplit("@@RESULT@@", 1)[1])
    res = res if isinstance(res, dict) else {"result": res}
    names: dict[str, float] = {}
    for name, mb in hwm.values():  # python and java; the launcher's short-lived shells are left out
        if mb >= 50:
            names[name] = max(names.get(name, 0.0), mb)
    res = {**res, "tree_polled_mb": round(peak, 1), "hwm_mb": {k: round(v, 1) for k, v in sorted(names.items())}}
    # the child's own per-step peaks too (it restarts its high-water mark at each step)
    marks = [mb for _, mb in hwm.values()] + [v for k, v in res.items() if k.endswith("_peak_mb") and isinstance(v, (int, float))]
    return t, max([peak, *marks]), res


def _settings(engine: str, n: int, temp_dir: Path) -> dict[str, Any]:
    if engine == "duckdb":
        return {"memory_limit": DUCKDB_MEMORY_LIMIT}
    return {"spark_config": {
        "spark.driver.memory": SPARK_DRIVER_MEMORY,
        "spark.local.dir": str(temp_dir / "spark-local"),  # shuffle and checkpoint blocks, removed with the folder
        "spark.sql.shuffle.partitions": max(4, n // 2_000_000),  # about 2M events per shuffle partition
    }}


def _load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def _not_run(engine: str, n: int, status: str, **extra: Any) -> dict[str, Any]:
    """A row for a case that did not run or failed: no time or memory (NaN), ``status`` says why."""
    return {"case": CASE, "engine": engine, "n": int(n), "median_s": float("nan"), "peak_mb": float("nan"),
            "reference": "segkit-duckdb" if engine == "segkit-spark" else None, "ratio": None, "status": status, **extra}


def simulate(folder: str, n_users: int) -> dict[str, Any]:
    """The simulated shop as a Parquet folder, in chunks of 20,000 visitors; its events and size."""
    from segkit.simulate import simulate_to_parquet

    info = simulate_to_parquet(folder, n_users, chunk_users=20_000, seed=7, taxonomy=ROOT / "parameters" / "taxonomy" / "default.yaml")
    return {"events": int(info["events"]), "parquet_mb": round(sum(f.stat().st_size for f in Path(folder).glob("*.parquet")) / 1e6, 1)}


def _case(engine: str, folder: Path, work: Path, n: int) -> tuple[float, float, dict[str, Any]] | str:
    """One measured case, or the reason it failed (the last line of the error)."""
    try:
        return measure_tree("benchmarks.bench_scale:pipeline", engine, str(folder), str(work), _settings(engine, n, work))
    except TimeoutError as exc:
        return f"not finished: {exc}"
    except RuntimeError as exc:
        return "failed: " + str(exc).strip().splitlines()[-1][:300]


def run(measure: Any, quick: bool = False) -> list[dict]:
    """Rows per size and engine; ``measure`` is unused (each case is measured over its process tree)."""
    sizes = [200_000] if quick else [10_000_000, 50_000_000]
    rows: list[dict] = []
    spark_rate: float | None = None  # seconds per event on Spark at the previous size
    spark_failed: str | None = None
    root = Path(tempfile.mkdtemp(prefix="segkit-bench-scale-"))
    try:
        for n in sizes:
            folder, work = root / f"events_{n}", root / f"work_{n}"
            work.mkdir()
            # in its own process too, so the simulator's memory is not held while the cases run
            t_sim, mb_sim, info = measure_tree("benchmarks.bench_scale:simulate", str(folder), round(n / EVENTS_PER_USER))
            events = info["events"]
            sim = {"simulate_s": round(t_sim, 1), "simulate_peak_mb": round(mb_sim, 1), "parquet_mb": info["parquet_mb"]}

            before = _load()
            got = _case("duckdb", folder, work, n)
            ref = None
            common = {"peak_target_mb": PEAK_TARGET_MB, "pandas_reference": "none: the pandas pipeline would need about 90 GB at 50M events"}
            if isinstance(got, str):
                rows.append(_not_run("segkit-duckdb", events, got, memory_limit=DUCKDB_MEMORY_LIMIT, **common, **sim))
            else:
                t_ref, mb_ref, ref = got
                rows.append(row(CASE, "segkit-duckdb", events, t_ref, mb_ref, memory_limit=DUCKDB_MEMORY_LIMIT,
                                within_target=mb_ref <= PEAK_TARGET_MB, load_before=before, load_after=_load(), **common, **sim, **ref))
            shutil.rmtree(work / "duckdb-spill", ignore_errors=True)

            estimate = spark_rate * events if spark_rate else None
            if spark_failed:
                rows.append(_not_run("segkit-spark", events, f"not run: Spark failed at the previous size ({spark_failed})", **sim))
            elif estimate and estimate > SPARK_BUDGET_S:
                rows.append(_not_run("segkit-spark", events,
                                     f"not run: estimated {estimate / 60:.0f} min from the Spark rate measured at the previous size "
                                     f"({1 / spark_rate:,.0f} events/s; budget {SPARK_BUDGET_S / 60:.0f} min)",
                                     measured_rate_events_per_s=round(1 / spark_rate), **sim))
            else:
                before = _load()
                got = _case("spark", folder, work, n)
                if isinstance(got, str):
                    spark_failed = got
                    rows.append(_not_run("segkit-spark", events, got, **sim))
                else:
                    t, mb, out = got
                    spark_rate = t / events
                    same = all(out[k] == ref[k] for k in ("rows", "sessions", "users", "members")) if ref else None
                    rows.append(row(CASE, "segkit-spark", events, t, mb, reference="segkit-duckdb" if ref else None,
                                    reference_s=t_ref if ref else None, spark_master="local[2]",
                                    spark_config=_settings("spark", n, work)["spark_config"], same_counts_as_duckdb=same,
                                    load_before=before, load_after=_load(), **sim, **out))
            shutil.rmtree(folder, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return rows


if __name__ == "__main__":
    from benchmarks.harness import measure, run_standalone

    raise SystemExit(run_standalone(run))
