"""Benchmark: ``features.customer_summary``, the purchase-model fits (BG/NBD and Pareto/NBD,
each with standard errors) and the CLV with its intervals on ~1M customers.

Generates the demo data once (333,334 customers per unit, three units) under
``benchmarks/out/`` (git-ignored), or reads a folder given with ``--data`` (one unit of it
with ``--unit``), then prints one markdown table row:

    python benchmarks/bench_clv.py                                    # ~1M customers, 3 units
    python benchmarks/bench_clv.py 456000                             # 1.37M customers, ~10M orders
    python benchmarks/bench_clv.py --data benchmarks/out/demo_1000000 --unit stores

With the ``lifetimes`` package importable (not a dependency of this project) and ``--lifetimes
N``, its BetaGeoFitter and ParetoNBDFitter are timed on the first N customers of the same
summary, for comparison.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import date
from pathlib import Path

from custlib import clv, demo, features, sources

OBSERVATION_END = date(2025, 12, 31)


def timed(f):
    t0 = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t0


def lifetimes_row(summary, n: int) -> str:
    """Seconds of lifetimes' BG/NBD and Pareto/NBD fits on the first ``n`` customers."""
    from lifetimes import BetaGeoFitter, ParetoNBDFitter

    s = summary.head(n)
    cells = []
    for fitter in (BetaGeoFitter, ParetoNBDFitter):
        _, seconds = timed(lambda: fitter(penalizer_coef=0.0).fit(s["frequency"], s["recency"], s["T"]))
        cells.append(f"{seconds:.1f} s")
    return ("| lifetimes 0.11.3 on | BG/NBD fit | Pareto/NBD fit |\n|---|---|---|\n"
            f"| the first {n:,} customers | {cells[0]} | {cells[1]} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("customers_per_unit", nargs="?", type=int, default=333_334)
    ap.add_argument("--data", type=Path, help="a demo data folder instead of generating one")
    ap.add_argument("--unit", help="only this business unit of the data")
    ap.add_argument("--lifetimes", type=int, default=0, help="also time lifetimes on this many customers")
    args = ap.parse_args()
    folder = args.data or Path(__file__).resolve().parent / "out" / f"clv_{args.customers_per_unit}"
    if not (folder / "transactions.parquet").exists():
        _, seconds = timed(lambda: demo.generate(folder, customers=args.customers_per_unit, seed=42, progress=True))
        print(f"generated in {seconds:.0f} s", flush=True)
    tx = sources.open_source(folder).typed("transactions")
    if args.unit:
        tx = tx.filter(tx.business_unit == args.unit)
    n_orders = int(tx.count().execute())

    summary, t_summary = timed(lambda: features.customer_summary(tx, OBSERVATION_END))
    bg, t_bg = timed(lambda: clv.BetaGeoModel().fit(summary))
    pnbd, t_pnbd = timed(lambda: clv.ParetoNBDModel().fit(summary))
    gg = clv.GammaGammaModel().fit(summary)
    _, t_clv_bg = timed(lambda: clv.clv_uncertainty(bg, gg, summary, 12, 0.1).per_customer())
    _, t_clv_pnbd = timed(lambda: clv.clv_uncertainty(pnbd, gg, summary, 12, 0.1).per_customer())
    unique = len(summary.groupby(["frequency", "recency", "T"]).size())

    print("| customers (buyers) | orders | unique (x, t_x, T) | BG/NBD fit + SEs | Pareto/NBD fit + SEs "
          "| customer_summary | CLV + intervals (BG/NBD, Pareto/NBD) | machine |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {len(summary):,} | {n_orders:,} | {unique:,} | {t_bg:.1f} s | {t_pnbd:.1f} s | {t_summary:.1f} s "
          f"| {t_clv_bg:.1f} s, {t_clv_pnbd:.1f} s | {platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()} |")
    if args.lifetimes:
        print(lifetimes_row(summary, args.lifetimes))
    print("BG/NBD:", bg.params_.round(3).to_dict(), "converged", bg.converged_)
    print("Pareto/NBD:", pnbd.params_.round(3).to_dict(), "converged", pnbd.converged_, flush=True)


if __name__ == "__main__":
    main()
