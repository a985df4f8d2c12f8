"""Charts of the loyalty-impact report (English text only; see :mod:`custlib.plots`)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker as mtick
import numpy as np
import pandas as pd
import seaborn as sns

from custlib.plots import finish, interval_plot


def event_study(curve: pd.DataFrame, title: str = "Effect of enrollment on monthly purchases, by month") -> plt.Axes:
    """Relative effect on monthly orders by months since enrollment, one line and 95% band per
    tier; the month before enrollment is the reference (0). Leads near zero = no pre-trend."""
    _, ax = plt.subplots(figsize=(9, 4.2))
    for (tier, g), color in zip(curve.groupby("tier", sort=False), sns.color_palette()):
        g = g.sort_values("event_time")
        ax.plot(g["event_time"], g["relative"], marker="o", ms=3.5, color=color, label=tier)
        ax.fill_between(g["event_time"], g["relative_ci_low"], g["relative_ci_high"], color=color, alpha=0.15)
    ax.axhline(0, color="grey", lw=1)
    ax.axvline(-0.5, color="grey", lw=1, ls="--")
    ax.text(-0.4, ax.get_ylim()[1], " enrollment", va="top", fontsize=9, color="grey")
    ax.yaxis.set_major_formatter(mtick.PercentFormatter(1.0))
    ax.xaxis.set_major_locator(mtick.MaxNLocator(integer=True))
    ax.legend(title="tier", loc="upper left")
    return finish(ax, title, "Months since enrollment (0 = enrollment month)",
                  "Effect on orders per month (% of counterfactual)")


def overlap(scores: pd.DataFrame, title: str = "Overlap of propensity scores") -> plt.Axes:
    """Distribution of the propensity score among members (treated) and their comparison group."""
    _, ax = plt.subplots(figsize=(8, 3.8))
    d = scores.assign(group=np.where(scores["treated"] == 1, "enrolled in the cohort month", "comparison group"))
    sns.histplot(data=d, x="propensity", hue="group", stat="density", common_norm=False, bins=40,
                 element="step", ax=ax)
    return finish(ax, title, "Propensity score (probability of enrolling that month)", "Density")


def balance(table: pd.DataFrame, title: str = "Covariate balance before and after weighting") -> plt.Axes:
    """Standardized mean differences per covariate before (circles) and after (crosses)
    weighting; |SMD| < 0.1 (shaded) is good balance."""
    d = table.iloc[::-1].reset_index(drop=True)
    _, ax = plt.subplots(figsize=(8, 0.32 * len(d) + 1.4))
    y = np.arange(len(d))
    ax.axvspan(-0.1, 0.1, color="grey", alpha=0.12)
    ax.scatter(d["smd_before"], y, marker="o", label="before", color=sns.color_palette()[3])
    ax.scatter(d["smd_after"], y, marker="x", label="after", color=sns.color_palette()[0])
    ax.set_yticks(y, d["covariate"])
    ax.axvline(0, color="grey", lw=1)
    ax.legend(loc="lower right")
    return finish(ax, title, "Standardized mean difference (members - comparison)", "")


def method_comparison(effects: pd.DataFrame, truth: float | None = None,
                      title: str = "Effect on monthly purchases by method") -> plt.Axes:
    """Relative effect on monthly orders with 95% intervals, one row per method and tier
    (``effects``: rows of the effects table with ``outcome == 'monthly_orders_relative'``)."""
    d = effects.assign(label=effects["method"] + " · " + effects["tier"], n=effects["n_treated"].astype(int))
    ax = interval_plot(d, "label", title, "Effect on orders per month (relative, 0.10 = +10%)", ref=0.0)
    ax.xaxis.set_major_formatter(mtick.PercentFormatter(1.0))
    return ax


def roi(table: pd.DataFrame, currency: str, title: str = "Net contribution per member and month") -> plt.Axes:
    """Incremental gross margin minus programme cost per member-month, 95% interval, per tier."""
    d = table[table["tier"] != "all"].assign(estimate=lambda t: t["net"], ci_low=lambda t: t["net_ci_low"],
                                             ci_high=lambda t: t["net_ci_high"], n=lambda t: t["n_treated"])
    return interval_plot(d, "tier", title, f"Net margin after programme cost ({currency} per member-month)", ref=0.0)
