"""The loop shared by the coverage benchmarks (``loyalty_coverage.py``, ``marketing_coverage.py``):
command-line arguments, one demo per seed, the rows written to ``benchmarks/out/<name>.csv``."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from custlib import report


def coverage_rows(run_seed: Callable[[int, int], list[dict]], description: str, name: str, seeds: int,
                  customers: int) -> tuple[pd.DataFrame, argparse.Namespace]:
    """``run_seed(seed, customers)`` for seeds 1..``--seeds`` (default ``seeds``), ``--customers``
    per unit (default ``customers``); the rows, also written to ``--out``, and the arguments."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--seeds", type=int, default=seeds)
    ap.add_argument("--customers", type=int, default=customers)
    ap.add_argument("--out", default=str(Path(__file__).parent / "out" / f"{name}.csv"))
    args = ap.parse_args()
    rows, t0 = [], time.perf_counter()
    for seed in range(1, args.seeds + 1):
        rows += run_seed(seed, args.customers)
        print(f"seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    df = pd.DataFrame(rows)
    report.write_output(df, args.out)
    return df, args
