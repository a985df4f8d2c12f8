"""Charts of the customer-service section of the satisfaction report: first-response times by
channel, the monthly trend, and lapse after the first ticket by how fast it was answered.

Each function takes a tidy frame of :class:`custlib.service.ServiceResult` (display labels in a
``label`` column prepared by :mod:`custlib.present.service`), draws on ``ax`` (a new figure when
None), returns it and fits nothing; text comes from the language catalogue.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.dates import DateFormatter, MonthLocator
from matplotlib.ticker import PercentFormatter

from custlib.plots import axes, finish
from custlib.present.i18n import t


def _hours_tick(x: float, _pos=None) -> str:
    if x < 1:
        return t("service.unit.min", x=f"{60 * x:g}")
    if x < 24:
        return t("service.unit.h", x=f"{x:g}")
    return t("service.unit.d", x=f"{x / 24:g}")


# round durations for the ticks of a log-scale hours axis: 1, 5, 15, 30 min, 1, 2, 4, 8 h, 1, 2, 4 days, 1, 2, 4 weeks
HOUR_TICKS = (1 / 60, 5 / 60, 0.25, 0.5, 1, 2, 4, 8, 24, 48, 96, 168, 336, 672)


def _hour_ticks(ax: plt.Axes) -> None:
    """Round durations as the ticks of a log-scale hours axis (about six), labelled in minutes,
    hours or days."""
    low, high = ax.get_xlim()
    ticks = [x for x in HOUR_TICKS if low <= x <= high]
    while len(ticks) > 7:
        ticks = ticks[::2]
    ax.set_xticks(ticks, [_hours_tick(x) for x in ticks])
    ax.minorticks_off()
    ax.set_xlim(low, high)


def _errors(d: pd.DataFrame, column: str) -> np.ndarray:
    """Error-bar lengths below and above ``column``; an unbounded side (NaN) draws none."""
    low = (d[column] - d[f"{column}_ci_low"]).fillna(0).clip(lower=0)
    high = (d[f"{column}_ci_high"] - d[column]).fillna(0).clip(lower=0)
    return np.vstack([low.to_numpy(), high.to_numpy()])


def response_times(data: pd.DataFrame, *, measure: str = "response", sla_hours: float | None = None,
                   ax: plt.Axes | None = None) -> plt.Axes:
    """Median and 90th percentile of the hours to the first response (``measure="response"``)
    or to the resolution (``"resolution"``) per group, with their 95% intervals, on a log scale:
    rows of :meth:`custlib.service.ServiceResult.group_rows` with ``label``, ``<measure>_median``
    / ``_p90`` and their ``_ci_low`` / ``_ci_high`` and ``tickets``; the dashed line is the SLA."""
    d = data.reset_index(drop=True)
    ax = axes(ax, (8, 0.55 * len(d) + 1.6))
    y = np.arange(len(d))
    colours = sns.color_palette("deep", 2)
    for k, (q, marker) in enumerate((("median", "o"), ("p90", "s"))):
        column = f"{measure}_{q}"
        ax.errorbar(d[column], y + (k - 0.5) * 0.22, xerr=_errors(d, column), fmt=marker, capsize=3,
                    color=colours[k], label=t(f"service.chart.{q}"))
    ax.set_yticks(list(y), d["label"].astype(str) + "  (n=" + d["tickets"].map("{:,}".format) + ")")
    ax.invert_yaxis()
    ax.set_xscale("log")
    _hour_ticks(ax)
    if sla_hours:
        ax.axvline(sla_hours, color="grey", lw=1, ls="--")
        ax.annotate(t("service.chart.sla", hours=f"{sla_hours:g}"), (sla_hours, 0), xycoords=("data", "axes fraction"),
                    xytext=(4, 4), textcoords="offset points", fontsize=8, color="grey")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=9, frameon=False)
    return finish(ax, t(f"service.chart.{measure}_title"), t(f"service.chart.{measure}_axis"), "")


def trend(data: pd.DataFrame, *, measure: str = "sla_share", sla_hours: float | None = None,
          ax: plt.Axes | None = None) -> plt.Axes:
    """One measure per month of opening with its 95% interval band: the ``month`` rows of
    :meth:`custlib.service.ServiceResult.group_rows` (``group`` "YYYY-MM"). ``measure``:
    ``sla_share`` (share answered within the SLA) or ``response_median`` (hours; the dashed line
    is the SLA)."""
    ax = axes(ax, (9, 3.8))
    month = pd.to_datetime(data["group"])
    ax.fill_between(month, data[f"{measure}_ci_low"], data[f"{measure}_ci_high"], alpha=0.25,
                    label=t("service.chart.interval"))
    ax.plot(month, data[measure], marker="o", ms=3, label=t(f"service.chart.{measure}"))
    if measure == "sla_share":
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_ylim(max(0.0, float(np.nanmin(data[f"{measure}_ci_low"])) - 0.05), 1.0)
    elif sla_hours:
        ax.axhline(sla_hours, color="grey", lw=1, ls="--", label=t("service.chart.sla", hours=f"{sla_hours:g}"))
        ax.set_ylim(bottom=0)
    step = next((k for k in (1, 2, 3, 4, 6, 12) if len(month) / k <= 7), 12)
    ax.xaxis.set_major_locator(MonthLocator(bymonth=range(1, 13, step)))
    ax.xaxis.set_major_formatter(DateFormatter("%Y-%m"))
    ax.legend(loc="best", fontsize=9)
    return finish(ax, t(f"service.chart.{measure}_trend_title"), t("service.chart.month_axis"),
                  t(f"service.chart.{measure}_trend_axis"))


def lapse_curves(data: pd.DataFrame, *, names: dict[str, str], ax: plt.Axes | None = None) -> plt.Axes:
    """Kaplan–Meier share of customers not yet lapsed after their first ticket, one curve per
    ``reply`` group (in the order of ``names``, their display names), with 95% bands: rows of
    :func:`custlib.service.lapse_data` with a ``reply`` column."""
    from lifelines import KaplanMeierFitter

    ax = axes(ax, (8, 4.5))
    for key, label in names.items():
        part = data[data["reply"] == key]
        if len(part):
            KaplanMeierFitter(label=f"{label} (n = {len(part):,})").fit(
                part["days"], part["lapsed"]).plot_survival_function(ax=ax)
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.legend(title=t("service.chart.reply_legend"), loc="upper right", fontsize=9)
    return finish(ax, t("service.chart.lapse_title"), t("service.chart.days_axis"), t("service.chart.share_axis"))
