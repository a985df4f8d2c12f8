"""Benchmark: ``features.customer_summary`` and the BG/NBD fit on ~1M customers / ~10M orders.

Generates the demo data once (333,334 customers per unit, three units) under
``benchmarks/out/`` (git-ignored), then times the engine summary and the maximum-likelihood
fit (including standard errors) and prints one markdown table row:

    python benchmarks/bench_clv.py            # generate if missing, then time
    python benchmarks/bench_clv.py 456000     # customers per unit: 1.37M customers, ~10M orders
"""

from __future__ import annotations

import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

from custlib import clv, demo, features, sources

CUSTOMERS_PER_UNIT = int(sys.argv[1]) if len(sys.argv) > 1 else 333_334
OUT = Path(__file__).resolve().parent / "out" / f"clv_{CUSTOMERS_PER_UNIT}"
OBSERVATION_END = date(2025, 12, 31)


def main() -> None:
    if not (OUT / "transactions.parquet").exists():
        t0 = time.perf_counter()
        demo.generate(OUT, customers=CUSTOMERS_PER_UNIT, seed=42, progress=True)
        print(f"generated in {time.perf_counter() - t0:.0f} s", flush=True)
    src = sources.open_source(OUT)
    tx = src.typed("transactions")
    n_orders = int(tx.count().execute())

    t0 = time.perf_counter()
    summary = features.customer_summary(tx, OBSERVATION_END)
    t_summary = time.perf_counter() - t0

    t0 = time.perf_counter()
    model = clv.BetaGeoModel().fit(summary)
    t_fit = time.perf_counter() - t0
    unique = len(summary.groupby(["frequency", "recency", "T"]).size())

    print("| customers (buyers) | orders | unique (x, t_x, T) | customer_summary | BG/NBD fit + SEs | machine |")
    print("|---|---|---|---|---|---|")
    print(f"| {len(summary):,} | {n_orders:,} | {unique:,} | {t_summary:.1f} s | {t_fit:.1f} s | "
          f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()} |")
    print("fitted:", model.params_.round(3).to_dict(), flush=True)


if __name__ == "__main__":
    main()
