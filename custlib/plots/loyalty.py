"""Charts of the loyalty-impact report (see :mod:`custlib.plots`): seaborn-style functions that
draw on ``ax`` (a new figure when None), return it and take their text from the catalogue. The
frames come from :mod:`custlib.present.loyalty` with display labels in a ``label`` column."""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker as mtick
import numpy as np
import pandas as pd
import seaborn as sns

from custlib.plots import axes, finish, interval_plot
from custlib.present.i18n import t


def event_study(curve: pd.DataFrame, *, ax: plt.Axes | None = None) -> plt.Axes:
    """Relative effect on monthly orders by months since enrollment, one line and 95% band per
    ``label`` (tier); the month before enrollment is the reference (0). Leads near zero = no
    pre-trend. Columns: label, event_time, relative, relative_ci_low, relative_ci_high."""
    ax = axes(ax, (9, 4.2))
    for (label, g), color in zip(curve.groupby("label", sort=False), sns.color_palette()):
        g = g.sort_values("event_time")
        ax.plot(g["event_time"], g["relative"], marker="o", ms=3.5, color=color, label=label)
        ax.fill_between(g["event_time"], g["relative_ci_low"], g["relative_ci_high"], color=color, alpha=0.15)
    ax.axhline(0, color="grey", lw=1)
    ax.axvline(-0.5, color="grey", lw=1, ls="--")
    ax.text(-0.4, ax.get_ylim()[1], " " + t("loyalty.chart.event_marker"), va="top", fontsize=9, color="grey")
    ax.yaxis.set_major_formatter(mtick.PercentFormatter(1.0, decimals=0))
    ax.xaxis.set_major_locator(mtick.MaxNLocator(integer=True))
    ax.legend(title=t("loyalty.chart.legend_tier"), loc="upper left")
    return finish(ax, t("loyalty.chart.event_title"), t("loyalty.chart.event_x"), t("loyalty.chart.event_y"))


def overlap(scores: pd.DataFrame, *, ax: plt.Axes | None = None) -> plt.Axes:
    """Distribution of the propensity score among members (``treated`` = 1) and their
    comparison group."""
    ax = axes(ax, (8, 3.8))
    group = t("loyalty.chart.overlap_legend")
    d = scores.assign(**{group: np.where(scores["treated"] == 1, t("loyalty.chart.treated"),
                                         t("loyalty.chart.control"))})
    sns.histplot(data=d, x="propensity", hue=group, stat="density", common_norm=False, bins=40,
                 element="step", ax=ax)
    return finish(ax, t("loyalty.chart.overlap_title"), t("loyalty.chart.overlap_x"), t("loyalty.chart.overlap_y"))


def balance(table: pd.DataFrame, *, ax: plt.Axes | None = None) -> plt.Axes:
    """Standardized mean differences per covariate (``label``) before (circles) and after
    (crosses) weighting; |SMD| < 0.1 (shaded) is good balance."""
    d = table.iloc[::-1].reset_index(drop=True)
    ax = axes(ax, (8, 0.32 * len(d) + 1.6))
    y = np.arange(len(d))
    ax.axvspan(-0.1, 0.1, color="grey", alpha=0.12)
    ax.scatter(d["smd_before"], y, marker="o", label=t("loyalty.chart.before"), color=sns.color_palette()[3])
    ax.scatter(d["smd_after"], y, marker="x", label=t("loyalty.chart.after"), color=sns.color_palette()[0])
    ax.set_yticks(y, d["label"])
    ax.axvline(0, color="grey", lw=1)
    ax.legend(title=t("loyalty.chart.balance_legend"), loc="lower right")
    return finish(ax, t("loyalty.chart.balance_title"), t("loyalty.chart.balance_x"), "")


def method_comparison(effects: pd.DataFrame, *, ax: plt.Axes | None = None) -> plt.Axes:
    """Relative effect on monthly orders with 95% intervals, one row per ``label`` (method ·
    tier); columns label, estimate, ci_low, ci_high, n_treated."""
    ax = interval_plot(effects, label="label", title=t("loyalty.chart.methods_title"),
                       xlabel=t("loyalty.chart.methods_x"), n="n_treated", ref=0.0, ax=ax)
    ax.xaxis.set_major_formatter(mtick.PercentFormatter(1.0, decimals=0))
    return ax


def roi(table: pd.DataFrame, *, currency: str, ax: plt.Axes | None = None) -> plt.Axes:
    """Net contribution per member-month (incremental gross margin minus programme cost) with
    95% interval, one row per ``label`` (tier); the axis in ``currency``."""
    ax = interval_plot(table, label="label", title=t("loyalty.chart.roi_title"),
                       xlabel=t("loyalty.chart.roi_axis", currency=currency), n="n_treated", ref=0.0, ax=ax)
    ax.ticklabel_format(axis="x", style="plain", useOffset=False)
    return ax
