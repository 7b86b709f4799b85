"""Run the benchmarks: ``python -m benchmarks [--only NAME ...] [--quick]``.

Writes ``reports/benchmarks/results.json`` (a list of ``{case, engine, n, median_s, peak_mb,
reference, ratio}``) and ``results.md``. Every ``bench_*.py`` module runs in its own process.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "reports" / "benchmarks"


def _modules() -> list[str]:
    return sorted(p.stem for p in HERE.glob("bench_*.py"))


def _run_one(module: str, quick: bool) -> list[dict]:
    code = (
        "import json, sys, importlib; from benchmarks.harness import measure; "
        f"m = importlib.import_module('benchmarks.{module}'); "
        f"rows = m.run(measure, quick={quick!r}); sys.stdout.write('\\n@@ROWS@@' + json.dumps(rows))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=HERE.parent, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"benchmark {module} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.rsplit("@@ROWS@@", 1)[1])


def _markdown(rows: list[dict]) -> str:
    cols = ["case", "engine", "n", "median_s", "peak_mb", "reference", "ratio", "target_s", "runs_s"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join("" if r.get(c) is None else f"{r[c]:,}" if c == "n" else str(r[c]) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--only", nargs="*", help="module names (bench_simulate ...) to run")
    ap.add_argument("--quick", action="store_true", help="small sizes, to check the benchmarks themselves")
    args = ap.parse_args(argv)
    modules = [m for m in _modules() if not args.only or m in args.only or m.removeprefix("bench_") in args.only]
    rows: list[dict] = []
    OUT.mkdir(parents=True, exist_ok=True)
    for module in modules:
        t0 = time.perf_counter()
        print(f"{module} ...", flush=True)
        got = _run_one(module, args.quick)
        for r in got:
            print(f"   {r['case']:<40} {r['engine']:<14} n={r['n']:>11,}  {r['median_s']:>9.3f} s  {r['peak_mb']:>8.0f} MB"
                  + (f"  x{r['ratio']} vs {r['reference']}" if r.get("ratio") else ""), flush=True)
        rows.extend({**r, "module": module} for r in got)
        print(f"   ({time.perf_counter() - t0:.0f} s)", flush=True)
    # a partial run (--only) replaces its modules' rows and keeps the others' from earlier runs
    path = OUT / "results.json"
    earlier = json.loads(path.read_text()) if path.exists() and args.only else []
    ran = set(modules)
    rows = [r for r in earlier if r.get("module") not in ran] + rows
    rows.sort(key=lambda r: str(r.get("module", "")))
    path.write_text(json.dumps(rows, indent=2))
    (OUT / "results.md").write_text("# segkit benchmarks\n\n" + _markdown(rows))
    print(f"wrote {OUT / 'results.json'} and results.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
