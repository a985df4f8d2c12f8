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
    step has a decided lead). Numbers only; :mod:`custlib.present.lifecycle` shows it."""

    conversion: pd.DataFrame

    @property
    def overall(self) -> pd.DataFrame:
        return self.conversion[self.conversion["source"] == ALL_SOURCES]

    @property
    def bottleneck(self) -> pd.Series | None:
        o = self.overall.dropna(subset=["conversion"])
        return o.loc[o["conversion"].idxmin()] if len(o) else None


def sales_funnel(leads: pd.DataFrame, observation_end: date) -> Funnel:
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
    return Funnel(pd.DataFrame(rows))
