"""Command line: ``custlib run | demo-data | validate | contract-doc``.

Exit codes of ``custlib run``: 0 all reports ok; 1 some report failed (the others are still
rendered); 2 bad parameters or bad input data found before any run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from custlib.contract import ANALYSES
from custlib.errors import CustlibDataError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="custlib", description="Customer Insights Workbook")
    p.add_argument("--root", default=".", help="project root (holds params/, notebooks/, reports/)")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="render the reports of business units")
    r.add_argument("--bu", nargs="+", metavar="ID", help="business units (default: all in params/business_units)")
    r.add_argument("--analysis", nargs="+", metavar="NAME",
                   choices=list(ANALYSES), help="analyses (default: all)")
    r.add_argument("--jobs", type=int, default=None, help="reports rendered in parallel (default: CPU count)")
    r.add_argument("--run-date", default=None, help="date shown in the reports (default: today)")
    d = sub.add_parser("demo-data", help="generate demo data with planted truths")
    d.add_argument("--out", default="data/demo")
    d.add_argument("--customers", type=int, default=20_000, help="customers per business unit")
    d.add_argument("--seed", type=int, default=42)
    d.add_argument("--units", nargs="+", metavar="ID", help="demo units to generate (default: online stores b2b)")
    v = sub.add_parser("validate", help="check the units' data against the data contract and show "
                                        "what each unit has and which reports it supports")
    v.add_argument("source", nargs="?", help="data source for every unit instead of the one in params "
                                             "(a folder of files, a .duckdb file, a postgresql:// URL or spark:local:<folder>)")
    v.add_argument("--bu", nargs="+", metavar="ID", help="business units (default: all)")
    c = sub.add_parser("contract-doc", help="write docs/data_contract.md from the contract")
    c.add_argument("--out", default="docs/data_contract.md")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            from custlib import runner

            results = runner.run(args.root, args.bu, args.analysis, args.jobs, args.run_date)
            for unit, reason in sorted({(r.unit, r.error) for r in results if r.status == "refused"}):
                print(f"custlib: {reason}", file=sys.stderr)
            for r in results:
                if r.status == "failed":
                    print(f"custlib: report {r.unit}/{r.analysis} failed: {r.error}", file=sys.stderr)
                elif r.status == "not available":
                    print(f"custlib: report {r.unit}/{r.analysis} not available: {r.error}", file=sys.stderr)
            ok = sum(r.status == "ok" for r in results)
            print(f"{ok} of {len(results)} reports ok; index: {Path(args.root) / 'reports' / 'index.html'}")
            return runner.exit_code(results)
        if args.command == "demo-data":
            from custlib import demo

            units = tuple(args.units or demo.UNITS)
            counts = demo.generate(args.out, customers=args.customers, seed=args.seed, units=units, progress=True)
            print("wrote " + ", ".join(f"{k} {v:,}" for k, v in counts.items()) + f" to {args.out}")
            return 0
        if args.command == "validate":
            from custlib import runner

            text, refused = runner.describe_inputs(args.root, args.bu, args.source)
            print(text)
            return runner.EXIT_BAD_INPUT if refused else runner.EXIT_OK
        if args.command == "contract-doc":
            from custlib.contract import contract_markdown

            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(contract_markdown() + "\n", encoding="utf-8")
            print(f"wrote {args.out}")
            return 0
    except CustlibDataError as e:
        print(str(e), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
