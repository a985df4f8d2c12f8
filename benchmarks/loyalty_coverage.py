"""Coverage of the loyalty-impact intervals across demo generator seeds.

For each seed the demo data are generated small (``--customers`` per unit), and the main
estimator (cohort DiD vs later members, relative effect on monthly orders) and the doubly robust
AIPW are run per unit and tier; an interval "covers" when it contains the planted uplift
(truth/parameters.json). Writes one row per seed, unit, tier and method to
``benchmarks/out/loyalty_coverage.csv`` and prints the coverage.

    .venv/bin/python benchmarks/loyalty_coverage.py [--seeds 20] [--customers 5000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from custlib import demo, features, loyalty, report


def run_seed(seed: int, customers: int) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        demo.generate(tmp, customers=customers, seed=seed)
        truth = json.loads((Path(tmp) / "truth" / "parameters.json").read_text())
        tx = pd.read_parquet(Path(tmp) / "transactions.parquet")
        members = pd.read_parquet(Path(tmp) / "loyalty_members.parquet")
    rows = []
    start, end = pd.Timestamp(truth["data_start"]).date(), pd.Timestamp(truth["observation_end"]).date()
    for unit, spec in truth["units"].items():
        panel = features.customer_month_panel(tx[tx["business_unit"] == unit], end, start)
        cust = loyalty.customer_frame(panel, members[members["business_unit"] == unit])
        did = loyalty.cohort_did(panel, cust, event_study=False, tiers=loyalty.TIERS)
        snaps = loyalty.cohort_snapshots(panel, cust)
        aipw = loyalty.propensity_effects(snaps, methods=("aipw",), tiers=loyalty.TIERS)
        for tier in loyalty.TIERS:
            planted = spec["loyalty_uplift"][tier]
            for method, e in (("cohort_did", did.effect(tier, "relative")), ("aipw", aipw[tier, "aipw"].relative)):
                rows.append({"seed": seed, "unit": unit, "tier": tier, "method": method, "planted": planted,
                             "estimate": e.estimate, "se": e.se, "ci_low": e.ci_low, "ci_high": e.ci_high,
                             "covers": e.ci_low <= planted <= e.ci_high})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--customers", type=int, default=5000)
    ap.add_argument("--out", default=str(Path(__file__).parent / "out" / "loyalty_coverage.csv"))
    args = ap.parse_args()
    rows, t0 = [], time.perf_counter()
    for seed in range(1, args.seeds + 1):
        rows += run_seed(seed, args.customers)
        print(f"seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    df = pd.DataFrame(rows)
    report.write_output(df, args.out)
    summary = df.groupby(["method", "unit", "tier"]).agg(
        coverage=("covers", "mean"), mean_estimate=("estimate", "mean"), planted=("planted", "first"),
        mean_se=("se", "mean"), sd_estimate=("estimate", "std"))
    print(summary.round(3).to_string())
    for method, g in df.groupby("method"):
        print(f"{method}: {g['covers'].sum()} of {len(g)} intervals contain the planted uplift "
              f"({g['covers'].mean():.0%}); {args.seeds} seeds x 3 units x 2 tiers, "
              f"{args.customers:,} customers per unit")


if __name__ == "__main__":
    main()
