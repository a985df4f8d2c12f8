"""Charts of the satisfaction report: NPS over time and by group, key drivers, the priority
matrix, lapse curves by NPS group and hazard ratios. Labels are in English (Chinese terms are
stripped from chart text and kept in the tables)."""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from custlib.plots import finish, interval_plot

NPS_AXIS = "NPS (points, -100 to 100)"
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


def _english(label) -> str:
    return CJK.sub("", str(label)).replace("_", " ").strip()


def nps_trend(scores: pd.DataFrame) -> plt.Axes:
    """Monthly NPS with its 95% interval band (the ``month`` rows of ``score_table``)."""
    d = scores[scores["group"] == "month"]
    month = pd.to_datetime(d["group_value"])
    _, ax = plt.subplots(figsize=(9, 3.8))
    ax.fill_between(month, d["ci_low"], d["ci_high"], alpha=0.25, label="95% interval")
    ax.plot(month, d["nps"], marker="o", ms=3, label="NPS")
    ax.axhline(0, color="grey", lw=1, ls="--")
    ax.legend(loc="lower right")
    return finish(ax, "NPS by month of response, with 95% intervals", "Month of response", NPS_AXIS)


def nps_by_group(scores: pd.DataFrame, group: str) -> plt.Axes:
    """NPS with 95% intervals for each value of one dimension (groups with too few responses
    left out); the dashed line is the unit's NPS."""
    d = scores[(scores["group"] == group) & ~scores["small_n"]]
    d = d.assign(label=d["group_value"].map(_english))
    overall = float(scores.loc[scores["group"] == "unit", "nps"].iloc[0])
    return interval_plot(d, "label", f"NPS by {group}, with 95% intervals", NPS_AXIS, estimate="nps",
                         ref=overall)


def drivers(summary: pd.DataFrame) -> plt.Axes:
    """Shapley / LMG importance of each attribute with bootstrap 95% intervals."""
    d = summary.assign(label=summary["attribute"].map(_english))
    title = f"Key drivers: share of the overall rating's variance explained (n = {summary['n'].iloc[0]:,})"
    return interval_plot(d, "label", title, "Part of R² explained (Shapley / LMG), with 95% bootstrap interval",
                         estimate="importance", n=None)


def priority_matrix(priority: pd.DataFrame, satisfied_score: float = 4.0) -> plt.Axes:
    """Importance against mean rating; the lower right (important, rated below satisfied) is
    where to act first."""
    _, ax = plt.subplots(figsize=(7.5, 5))
    colors = {q: c for q, c in zip(sorted(priority["quadrant"].unique()), sns.color_palette())}
    for r in priority.itertuples():
        ax.errorbar(r.importance, r.mean_score, xerr=[[r.importance - r.ci_low], [r.ci_high - r.importance]],
                    yerr=[[r.mean_score - r.mean_score_ci_low], [r.mean_score_ci_high - r.mean_score]],
                    fmt="o", ms=8 if r.first_fix else 6, capsize=3, color=colors[r.quadrant],
                    label=_english(r.quadrant))
        label = _english(r.attribute) + (" (fix first)" if r.first_fix else "")
        ax.annotate(label, (r.importance, r.mean_score), textcoords="offset points", xytext=(6, 6), fontsize=9)
    ax.axvline(priority["importance"].mean(), color="grey", lw=1, ls="--")
    ax.axhline(satisfied_score, color="grey", lw=1, ls="--")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), loc="best", fontsize=9)
    return finish(ax, f"Priority matrix: importance x performance (n = {priority['n'].iloc[0]:,})",
                  "Importance (part of R² explained)", "Mean rating (1-5)")


def lapse_curves(frame: pd.DataFrame, horizon_days: int | None = None) -> plt.Axes:
    """Kaplan–Meier share of respondents not yet lapsed, by NPS group, with 95% bands."""
    from lifelines import KaplanMeierFitter

    _, ax = plt.subplots(figsize=(8, 4.5))
    for g in ("promoter", "passive", "detractor"):
        part = frame[frame["nps_group"] == g]
        if len(part):
            km = KaplanMeierFitter(label=f"{g}s (n={len(part):,})").fit(part["days"], part["lapsed"])
            km.plot_survival_function(ax=ax)
    if horizon_days:
        ax.axvline(horizon_days, color="grey", lw=1, ls="--")
    ax.set_ylim(0, 1)
    return finish(ax, "Customers not yet lapsed after the survey, by NPS group",
                  "Days since the survey response", "Share not yet lapsed")


def hazard_ratios(summary: pd.DataFrame) -> plt.Axes:
    """Hazard ratios of lapse with 95% intervals (log scale; 1 = no difference)."""
    names = {"detractor": "detractors vs promoters", "passive": "passives vs promoters",
             "tenure_years": "per year of tenure", "log_value": "per unit of log(1 + annual revenue)"}
    d = summary.assign(label=summary["term"].map(names))
    title = f"Hazard of lapse after the survey: Cox model (n = {summary['n'].iloc[0]:,})"
    ax = interval_plot(d, "label", title, "Hazard ratio (log scale), 95% interval",
                       estimate="hazard_ratio", n=None, ref=1.0)
    ax.set_xscale("log")
    low, high = ax.get_xlim()
    ticks = [t for t in (0.25, 0.33, 0.5, 0.67, 0.8, 1, 1.25, 1.5, 2, 3, 4) if low <= t <= high]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    return ax
