"""Coverage of the loyalty-impact intervals across demo generator seeds.

For each seed the demo data are generated small (``--customers`` per unit), and the main
estimator (cohort DiD vs later members, relative effect on monthly orders) and the doubly robust
AIPW are run per unit and tier; an interval "covers" when it contains the planted uplift
(truth/parameters.json). Writes one row per seed, unit, tier and method to
``benchmarks/out/loyalty_coverage.csv`` and prints the coverage.

    .venv/bin/python benchmarks/loyalty_coverage.py [--seeds 20] [--customers 5000]
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
from seed_coverage import coverage_rows

from custlib import demo, features, loyalty


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
    df, args = coverage_rows(run_seed, __doc__.splitlines()[0], "loyalty_coverage", seeds=20, customers=5000)
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
