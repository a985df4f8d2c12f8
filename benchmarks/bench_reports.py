"""Benchmark: every report of the demo at growing size — the cost curve per report.

For each size (customers per unit; default 20,000, 200,000 and 1,000,000) the demo is generated
once into ``benchmarks/out/demo_<n>`` (3 units, about 7 transactions per customer), and a
project folder ``benchmarks/out/project_<n>`` points the units' ``data_source`` at it (the
repository's notebooks and params otherwise). Then each report of each unit is rendered alone,
one after the other, in its own process (``custlib.runner.render_report``: papermill, a fresh
kernel, HTML export) and measured:

* seconds: wall time of that process (kernel start and imports included);
* peak memory: the largest resident set of the process and its kernel (``wait4``'s maxrss of
  the child, which covers its waited-for children).

``--run`` also times the whole ``custlib run`` of the size (all units and reports, two in
parallel as on the 2-core machine). ``--units`` limits the units (``--units stores`` for one
10M-customer unit), ``--analyses`` the reports. ``--fixed`` measures a report's fixed cost: a
process that only imports the report's modules. Prints markdown tables:

    .venv/bin/python benchmarks/bench_reports.py [sizes ...] [--units U ...] [--run] [--fixed]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path


from custlib import demo
from custlib.contract import ANALYSES
from custlib.params import unit_ids

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
RUN_DATE = "2026-01-15"
RENDER = ("import sys; from pathlib import Path; from custlib.runner import render_report; "
          "r = render_report(Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]); "
          "sys.exit(0 if r.status == 'ok' else print(r.error, file=sys.stderr) or 1)")


def project(customers: int) -> Path:
    """A project folder whose units read the demo of ``customers`` per unit (generated if missing)."""
    data = OUT / f"demo_{customers}"
    if not (data / "transactions.parquet").exists():
        demo.generate(data, customers=customers, seed=42)
    root = OUT / f"project_{customers}"
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(ROOT / "params", root / "params")
    (root / "notebooks").symlink_to(ROOT / "notebooks")
    defaults = root / "params" / "defaults.yaml"
    text = re.sub(r"(?m)^data_source:.*$", f"data_source: {data}", defaults.read_text(encoding="utf-8"))
    defaults.write_text(text, encoding="utf-8")
    return root


def measured(cmd: list[str]) -> tuple[float, float, int]:
    """Run ``cmd``: wall seconds, peak resident memory in GiB (the process or any of its
    children), exit status."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - t0, usage.ru_maxrss / 2**20, os.waitstatus_to_exitcode(status)


def report_costs(root: Path, units: list[str], analyses: list[str]) -> dict[tuple[str, str], tuple[float, float, int]]:
    """(unit, analysis) -> seconds, peak GiB, exit status of rendering that report alone."""
    costs = {}
    for unit in units:
        for analysis in analyses:
            costs[unit, analysis] = measured([sys.executable, "-c", RENDER, str(root), unit, analysis, RUN_DATE])
            s, gib, code = costs[unit, analysis]
            print(f"  {unit}/{analysis}: {s:.0f} s, {gib:.2f} GiB{'' if code == 0 else ' FAILED'}", file=sys.stderr)
    return costs


def fixed_cost() -> dict[str, float]:
    """Seconds to start a kernel that imports each report's modules and nothing else."""
    out = {}
    for analysis in ANALYSES:
        imports = (f"from custlib import {analysis}, report, sources; "
                   f"from custlib.present import {analysis} as p; from custlib.plots import {analysis} as q")
        out[analysis] = min(measured([sys.executable, "-c", imports])[0] for _ in range(3))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sizes", nargs="*", type=int, default=[20_000, 200_000, 1_000_000])
    ap.add_argument("--units", nargs="+", default=None)
    ap.add_argument("--analyses", nargs="+", default=list(ANALYSES), choices=list(ANALYSES))
    ap.add_argument("--run", action="store_true", help="also time the whole custlib run per size")
    ap.add_argument("--fixed", action="store_true", help="also measure the fixed cost (imports) per report")
    args = ap.parse_args()
    units = args.units or unit_ids(ROOT / "params")
    results, runs = {}, {}
    for n in args.sizes:
        print(f"{n:,} customers per unit", file=sys.stderr)
        root = project(n)
        results[n] = report_costs(root, units, args.analyses)
        if args.run:
            runs[n] = measured([str(Path(sys.executable).with_name("custlib")), "--root", str(root), "run", "--bu", *units,
                                "--jobs", "2", "--run-date", RUN_DATE])
    head = " | ".join(f"{n:,}/unit: s · peak GiB" for n in args.sizes)
    print(f"| report | {head} |\n|---|{'---:|' * len(args.sizes)}")
    for unit in units:
        for analysis in args.analyses:
            cells = []
            for n in args.sizes:
                s, gib, code = results[n][unit, analysis]
                cells.append(f"{s:.0f} · {gib:.2f}" if code == 0 else "failed")
            print(f"| {unit} {analysis} | {' | '.join(cells)} |")
    if runs:
        cells = [f"{runs[n][0] / 60:.1f} min · {runs[n][1]:.2f}" if runs[n][2] == 0 else "failed" for n in args.sizes]
        print(f"| whole `custlib run` (2 in parallel) | {' | '.join(cells)} |")
    if args.fixed:
        print("\n| report | imports only, s |\n|---|---:|")
        for analysis, s in fixed_cost().items():
            print(f"| {analysis} | {s:.1f} |")


if __name__ == "__main__":
    main()
