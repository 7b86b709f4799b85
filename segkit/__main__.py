"""Command line: ``python -m segkit report|refresh|validate``."""
from __future__ import annotations

import argparse
import sys

from .errors import SegkitError


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m segkit`` and the ``segkit`` script."""
    ap = argparse.ArgumentParser(prog="segkit", description="Behavioral segmentation reports")
    sub = ap.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="execute every notebook for a parameter set and write HTML reports")
    rep.add_argument("--params", default="parameters/default.yaml", help="parameter set (path or NAME)")
    rep.add_argument("--reports-dir", default="reports")
    rep.add_argument("--runs-dir", default="runs")
    ref = sub.add_parser("refresh", help="re-execute the committed notebooks in place with their own parameters")
    ref.add_argument("--notebooks-dir", default="notebooks")
    val = sub.add_parser("validate", help="validate every parameter set in parameters/")
    val.add_argument("--dir", default="parameters")
    args = ap.parse_args(argv)
    try:
        if args.command == "report":
            from .params import load_params
            from .report import build_reports

            path = args.params if args.params.endswith((".yaml", ".yml")) else f"parameters/{args.params}.yaml"
            timeout = load_params(path).report.cell_timeout
            from .stakeholder import stakeholder_summary

            build_reports(path, reports_dir=args.reports_dir, runs_dir=args.runs_dir, cell_timeout=timeout,
                          summary_html=stakeholder_summary)
        elif args.command == "refresh":
            from .report import refresh_notebooks

            refresh_notebooks(args.notebooks_dir)
        elif args.command == "validate":
            from .params import validate_parameter_dir

            sets = validate_parameter_dir(args.dir)
            print(f"{len(sets)} parameter set(s) valid: {', '.join(sets)}")
    except SegkitError as exc:
        print(f"segkit: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
