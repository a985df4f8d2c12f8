"""Sales funnel 销售漏斗 from the leads table: conversion of each stage by source, time in stage,
and the bottleneck.

A lead reaches ``lead -> qualified -> opportunity -> won`` or is lost at some stage. Leads still
open at the observation end have no decision yet at their current stage. Because the time to a
decision does not depend on the outcome, the conversion of a stage is estimated among the leads
whose decision is known: ``advanced / (advanced + lost)`` (open leads are left out, not counted
as lost). Time in stage is a Kaplan–Meier estimate with open leads censored at the observation
end (lifelines).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter

from custlib.stats import proportion

STAGES = ("lead", "qualified", "opportunity", "won")
STAGE_DATES = {"lead": "created_date", "qualified": "qualified_date",
               "opportunity": "opportunity_date", "won": "won_date"}
ALL_SOURCES = "all sources"


def _median_days(days: np.ndarray, decided: np.ndarray) -> tuple[float, int]:
    """Kaplan–Meier median days to the decision (first day on which at least half are decided)."""
    if decided.sum() == 0:
        return float("nan"), 0
    kmf = KaplanMeierFitter().fit(days, decided)
    return float(kmf.median_survival_time_), int(decided.sum())


def _step_rows(leads: pd.DataFrame, observation_end: date, group: str) -> list[dict]:
    end = pd.Timestamp(observation_end)
    rows = []
    for k, (stage, nxt) in enumerate(zip(STAGES[:-1], STAGES[1:])):
        start = pd.to_datetime(leads[STAGE_DATES[stage]])
        advanced_on = pd.to_datetime(leads[STAGE_DATES[nxt]])
        lost_on = pd.to_datetime(leads["lost_date"])
        reached = start.notna()
        advanced = reached & advanced_on.notna()
        lost = reached & ~advanced & lost_on.notna()
        open_ = reached & ~advanced & ~lost
        decision = advanced_on.where(advanced, lost_on.where(lost, end))
        days = (decision - start)[reached].dt.days.to_numpy(float)
        median, _ = _median_days(days, (advanced | lost)[reached].to_numpy())
        est = proportion(int(advanced.sum()), int((advanced | lost).sum()))
        rows.append({"source": group, "step": k + 1, "from_stage": stage, "to_stage": nxt,
                     "reached": int(reached.sum()), "advanced": int(advanced.sum()),
                     "lost": int(lost.sum()), "open": int(open_.sum()), "n": est.n,
                     "conversion": est.estimate, "ci_low": est.ci_low, "ci_high": est.ci_high,
                     "median_days_in_stage": median})
    return rows


@dataclass(frozen=True)
class Funnel:
    """Funnel result: ``conversion`` (one row per source and step, ``source == "all sources"``
    for the pooled funnel), the ``bottleneck`` row (lowest pooled conversion; None while no
    step has a decided lead), the stage terms."""

    conversion: pd.DataFrame
    stage_terms: dict

    @property
    def overall(self) -> pd.DataFrame:
        return self.conversion[self.conversion["source"] == ALL_SOURCES]

    @property
    def bottleneck(self) -> pd.Series | None:
        o = self.overall.dropna(subset=["conversion"])
        return o.loc[o["conversion"].idxmin()] if len(o) else None

    def step_name(self, row: pd.Series) -> str:
        """'opportunity 商机 → won 成交'."""
        term = lambda s: f"{s} {self.stage_terms.get(s, '')}".strip()  # noqa: E731
        return f"{term(row['from_stage'])} → {term(row['to_stage'])}"

    def headline(self, small_n: int = 0) -> str:
        """The bottleneck in a sentence; below ``small_n`` decided leads it is flagged as too few."""
        b = self.bottleneck
        if b is None:
            leads = int(self.overall["reached"].iloc[0])
            return (f"Funnel bottleneck 销售漏斗瓶颈: none of the {leads:,} leads has been decided "
                    "(advanced or lost) at any step yet, so no conversion can be estimated.")
        few = f" (too few decided leads to act on; at least {small_n:,} needed)" if b["n"] < small_n else ""
        days = b["median_days_in_stage"]
        median = f"; median {days:.0f} days to a decision" if np.isfinite(days) else ""
        return (f"Funnel bottleneck 销售漏斗瓶颈: {self.step_name(b)} converts "
                f"{b['conversion']:.0%} (95% CI {b['ci_low']:.0%}–{b['ci_high']:.0%}, n = {int(b['n']):,} "
                f"decided leads){few}, the lowest of the {len(self.overall)} steps{median}.")

    def table(self) -> pd.DataFrame:
        """Presentation table: step names with the client's terms, rates in percent."""
        t = self.conversion.copy()
        t["step"] = t.apply(self.step_name, axis=1)
        t["conversion %"] = (100 * t["conversion"]).round(1)
        t["95% CI"] = [f"{100 * lo:.1f}–{100 * hi:.1f}" if n else "–"
                       for lo, hi, n in zip(t["ci_low"], t["ci_high"], t["n"])]
        t["median days in stage"] = t["median_days_in_stage"].map(lambda d: "–" if pd.isna(d) else f"{d:,.0f}")
        return t[["source", "step", "reached", "advanced", "lost", "open", "conversion %", "95% CI",
                  "median days in stage"]]


def sales_funnel(leads: pd.DataFrame, observation_end: date, stage_terms: dict | None = None) -> Funnel:
    """Conversion of each funnel step by lead source and pooled, with Wilson 95% intervals.

    ``leads``: one row per lead with ``source``, ``created_date``, ``qualified_date``,
    ``opportunity_date``, ``won_date``, ``lost_date`` (contract columns). Leads created after
    ``observation_end`` are left out; decisions after it are treated as not yet known.
    """
    end = pd.Timestamp(observation_end)
    df = leads.copy()
    for c in (*STAGE_DATES.values(), "lost_date"):
        df[c] = pd.to_datetime(df[c])
        if c != "created_date":
            df.loc[df[c] > end, c] = pd.NaT
    df = df[df["created_date"] <= end]
    rows = _step_rows(df, observation_end, ALL_SOURCES)
    for source, part in df.groupby("source", sort=True):
        rows += _step_rows(part, observation_end, source)
    return Funnel(pd.DataFrame(rows), dict(stage_terms or {}))
