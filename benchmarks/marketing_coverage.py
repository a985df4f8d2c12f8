"""Coverage of the randomised campaign-effect intervals across demo generator seeds.

For each seed the demo data are generated (``--customers`` per unit) and every campaign with a
random holdout is measured for all compared customers: the plain difference and the Lin
regression-adjusted one, on conversion and on spend; an interval "covers" when it contains the
planted effect (truth/parameters.json, ``units.<unit>.campaign_effects``). Writes one row per
seed, campaign, outcome and method to ``benchmarks/out/marketing_coverage.csv`` and prints the
coverage.

    .venv/bin/python benchmarks/marketing_coverage.py [--seeds 10] [--customers 20000]
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from seed_coverage import coverage_rows

from custlib import demo, marketing, sources

ROOT = Path(__file__).resolve().parents[1]


def run_seed(seed: int, customers: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        demo.generate(tmp, customers=customers, seed=seed)
        truth = json.loads((Path(tmp) / "truth" / "parameters.json").read_text())
        for unit, spec in truth["units"].items():
            data = sources.load_unit(unit, ROOT, "2026-01-15", data_source=tmp)
            campaigns = marketing._campaign_table(data)
            randomised = set(campaigns.loc[campaigns["randomised"], "campaign_id"])
            outcomes = marketing.campaign_outcomes(data, data.params.marketing.window_days)
            effects, _ = marketing.randomised_effects(outcomes[outcomes["campaign_id"].isin(randomised)], {}, 1)
            for e in effects.itertuples():
                planted = spec["campaign_effects"][e.campaign][f"{e.outcome}_uplift"]
                rows.append({"seed": seed, "unit": unit, "campaign": e.campaign, "outcome": e.outcome,
                             "method": e.method, "planted": planted, "estimate": e.estimate, "se": e.se,
                             "ci_low": e.ci_low, "ci_high": e.ci_high, "covers": e.ci_low <= planted <= e.ci_high})
    return rows


def main() -> None:
    df, _ = coverage_rows(run_seed, __doc__.splitlines()[0], "marketing_coverage", seeds=10, customers=20_000)
    for (outcome, method), g in df.groupby(["outcome", "method"]):
        z = (g["estimate"] - g["planted"]) / g["se"]
        print(f"{outcome} · {method}: {g['covers'].sum()} of {len(g)} intervals contain the planted effect "
              f"({g['covers'].mean():.0%}); mean (estimate − planted) / se {z.mean():+.2f}, sd {z.std():.2f}")


if __name__ == "__main__":
    main()
