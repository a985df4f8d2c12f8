"""Charts of the satisfaction report: NPS over time and by group, key drivers, the priority
matrix, lapse curves by NPS group and hazard ratios.

Each function takes a tidy frame of :class:`custlib.satisfaction.SatisfactionResult` (display
labels, where the data's own values are not shown, in a ``label`` column prepared by
:mod:`custlib.present.satisfaction`), draws on ``ax`` (a new figure when None), returns it and
fits nothing; text comes from the language catalogue. Labels are shown as they are: Chinese
category values are never stripped.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.dates import DateFormatter, MonthLocator
from matplotlib.ticker import MaxNLocator, PercentFormatter

from custlib.plots import axes, finish, interval_plot
from custlib.present.i18n import t

GROUPS = ("promoter", "passive", "detractor")


def nps_trend(data: pd.DataFrame, *, ax: plt.Axes | None = None) -> plt.Axes:
    """Monthly NPS with its 95% interval band: the ``month`` rows of
    :func:`custlib.satisfaction.score_table` (``group_value`` "YYYY-MM", ``nps``, ``ci_low``,
    ``ci_high``); the dashed line is 0 (as many promoters as detractors)."""
    ax = axes(ax, (9, 3.8))
    month = pd.to_datetime(data["group_value"])
    ax.fill_between(month, data["ci_low"], data["ci_high"], alpha=0.25, label=t("satisfaction.change.interval"))
    ax.plot(month, data["nps"], marker="o", ms=3, label="NPS")
    ax.axhline(0, color="grey", lw=1, ls="--")
    step = next((k for k in (1, 2, 3, 4, 6, 12) if len(month) / k <= 7), 12)  # about 7 ticks or fewer
    ax.xaxis.set_major_locator(MonthLocator(bymonth=range(1, 13, step)))
    ax.xaxis.set_major_formatter(DateFormatter("%Y-%m"))  # numeric months read the same in every language
    ax.legend(loc="best")
    return finish(ax, t("satisfaction.change.trend_title"), t("satisfaction.change.month_axis"),
                  t("satisfaction.change.trend_axis"))


def nps_by_group(data: pd.DataFrame, *, dimension: str, ref: float | None = None,
                 ax: plt.Axes | None = None) -> plt.Axes:
    """NPS with 95% intervals per value of one dimension (``label``, ``nps``, ``ci_low``,
    ``ci_high``, ``n``); ``ref`` (dashed line) is the unit's NPS."""
    title = t("satisfaction.groups.chart_title", dimension=t(f"satisfaction.dimension.{dimension}"))
    ax = interval_plot(data, label="label", title=title, xlabel=t("satisfaction.change.trend_axis"),
                       estimate="nps", ref=ref, ax=ax)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return ax


def drivers(data: pd.DataFrame, *, outcome: str = "nps", ax: plt.Axes | None = None) -> plt.Axes:
    """Shapley / LMG importance (share of the outcome's variance) of each attribute with its
    bootstrap 95% interval: ``label``, ``importance``, ``ci_low``, ``ci_high`` of
    :attr:`custlib.satisfaction.KeyDrivers.summary`."""
    title = t("satisfaction.drivers.chart_title", outcome=t(f"satisfaction.outcome.{outcome}"))
    ax = interval_plot(data, label="label", title=title, xlabel=t("satisfaction.drivers.chart_axis"),
                       estimate="importance", n=None, ax=ax)
    ax.set_xlim(left=0)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    return ax


# label positions around a point: offset (points), alignment; nearest first
_LABEL_SPOTS = [(0, 9, "center", "bottom"), (0, -9, "center", "top"), (9, 0, "left", "center"),
                (-9, 0, "right", "center"), (9, 9, "left", "bottom"), (-9, 9, "right", "bottom"),
                (9, -9, "left", "top"), (-9, -9, "right", "top"),
                *[(0, sign * dy, "center", "bottom" if sign > 0 else "top") for dy in (22, 35, 48) for sign in (1, -1)]]


def _overlap(a, b) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _place_labels(ax: plt.Axes, data: pd.DataFrame, x: str, y: str, bold: pd.Series) -> None:
    """Label each point at the first spot of :data:`_LABEL_SPOTS` that overlaps no other label,
    marker or error bar and stays inside the axes, else at the spot that overlaps least (another
    label weighs most, then a marker, then an error bar); a label set further away gets a thin
    line to its point."""
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    px = ax.transData.transform
    obstacles = []  # (box, weight)
    for r in data.itertuples():
        cx, cy = px((getattr(r, x), getattr(r, y)))
        (x0, _), (x1, _) = px((r.ci_low, getattr(r, y))), px((r.ci_high, getattr(r, y)))
        (_, y0), (_, y1) = px((getattr(r, x), r.mean_score_ci_low)), px((getattr(r, x), r.mean_score_ci_high))
        obstacles += [(Bbox([[cx - 7, cy - 7], [cx + 7, cy + 7]]), 5.0), (Bbox([[x0, cy - 2], [x1, cy + 2]]), 1.0),
                      (Bbox([[cx - 2, y0], [cx + 2, y1]]), 1.0)]
    order = data.assign(is_bold=bold.to_numpy()).sort_values(["is_bold", x], ascending=False)
    for r in order.itertuples():
        style = {"fontsize": 9, "fontweight": "bold" if r.is_bold else "normal"}
        best = None
        for dx, dy, ha, va in _LABEL_SPOTS:
            text = ax.annotate(r.label, (getattr(r, x), getattr(r, y)), xytext=(dx, dy), textcoords="offset points",
                               ha=ha, va=va, **style)
            box = text.get_window_extent(renderer)
            text.remove()
            outside = box.width * box.height - _overlap(box, frame)
            cost = sum(w * _overlap(box, o) for o, w in obstacles) + 50 * outside
            if best is None or cost < best[0]:
                best = (cost, dx, dy, ha, va, box)
            if cost == 0:
                break
        _, dx, dy, ha, va, box = best
        line = {"arrowstyle": "-", "color": "grey", "lw": 0.6, "shrinkA": 0, "shrinkB": 5} if abs(dy) > 9 else None
        ax.annotate(r.label, (getattr(r, x), getattr(r, y)), xytext=(dx, dy), textcoords="offset points", ha=ha,
                    va=va, arrowprops=line, **style)
        obstacles.append((box, 50.0))


def priority_matrix(data: pd.DataFrame, *, satisfied_score: float = 4.0, top_score: float = 5.0,
                    ax: plt.Axes | None = None) -> plt.Axes:
    """Importance against mean rating with 95% intervals (:func:`custlib.satisfaction.priority_matrix`
    with a ``label`` column): the lower right (important, rated below ``satisfied_score``) is
    where to act first. Labels are placed where they overlap no other label, point or error bar."""
    ax = axes(ax, (8, 5.2))
    palette = dict(zip(("fix_first", "keep_up", "watch", "maintain"), sns.color_palette("deep", 4), strict=True))
    for r in data.itertuples():
        ax.errorbar(r.importance, r.mean_score, xerr=[[r.importance - r.ci_low], [r.ci_high - r.importance]],
                    yerr=[[r.mean_score - r.mean_score_ci_low], [r.mean_score_ci_high - r.mean_score]],
                    fmt="*" if r.first_fix else "o", ms=13 if r.first_fix else 7, capsize=3,
                    color=palette[r.quadrant], label=t(f"names.sat_quadrant.{r.quadrant}"))
    ax.axvline(data["importance"].mean(), color="grey", lw=1, ls="--")
    ax.axhline(satisfied_score, color="grey", lw=1, ls="--")
    ax.annotate(t("satisfaction.priority.satisfied_line", satisfied=f"{satisfied_score:g}"),
                (0, satisfied_score), xycoords=("axes fraction", "data"), xytext=(4, 3),
                textcoords="offset points", fontsize=8, color="grey")
    low = min(data["mean_score_ci_low"].min(), satisfied_score) - 0.15
    high = max(data["mean_score_ci_high"].max(), satisfied_score) + 0.15
    ax.set_ylim(max(low, 1.0), min(high, top_score))
    ax.set_xlim(left=0, right=data["ci_high"].max() * 1.35)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    finish(ax, t("satisfaction.priority.chart_title"), t("satisfaction.priority.importance_axis"),
           t("satisfaction.priority.rating_axis", top=f"{top_score:g}"))
    _place_labels(ax, data, "importance", "mean_score", data["first_fix"])
    handles = dict(zip(*reversed(ax.get_legend_handles_labels()), strict=True))  # one entry per quadrant
    shown = [t(f"names.sat_quadrant.{q}") for q in palette if t(f"names.sat_quadrant.{q}") in handles]
    ax.legend([handles[q] for q in shown], shown, title=t("satisfaction.priority.legend"), loc="best", fontsize=9)
    return ax


def lapse_curves(data: pd.DataFrame, *, names: dict[str, str] | None = None, horizon_days: int | None = None,
                 ax: plt.Axes | None = None) -> plt.Axes:
    """Kaplan–Meier share of respondents not yet lapsed by NPS group, with 95% bands, from
    :func:`custlib.satisfaction.lapse_frame`; ``names`` are the groups' display names and the
    dashed line marks ``horizon_days``."""
    from lifelines import KaplanMeierFitter

    ax = axes(ax, (8, 4.5))
    for g in GROUPS:
        part = data[data["nps_group"] == g]
        if len(part):
            label = f"{(names or {}).get(g, g)} (n = {len(part):,})"
            KaplanMeierFitter(label=label).fit(part["days"], part["lapsed"]).plot_survival_function(ax=ax)
    if horizon_days:
        ax.axvline(horizon_days, color="grey", lw=1, ls="--")
        ax.annotate(t("satisfaction.lapse.horizon", days=f"{horizon_days:,}"), (horizon_days, 0.02),
                    xytext=(4, 0), textcoords="offset points", fontsize=8, color="grey")
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.legend(title=t("satisfaction.lapse.legend"), loc="upper right")
    return finish(ax, t("satisfaction.lapse.curves_title"), t("satisfaction.lapse.days_axis"),
                  t("satisfaction.lapse.share_axis"))


def hazard_ratios(data: pd.DataFrame, *, ax: plt.Axes | None = None) -> plt.Axes:
    """Hazard ratios of lapse with 95% intervals on a log scale (1 = no difference): ``label``,
    ``hazard_ratio``, ``ci_low``, ``ci_high`` (rows of :attr:`custlib.satisfaction.LapseModel.summary`)."""
    ax = interval_plot(data, label="label", title=t("satisfaction.lapse.hazard_title"),
                       xlabel=t("satisfaction.lapse.hazard_axis"), estimate="hazard_ratio", n=None, ref=1.0, ax=ax)
    ax.set_xscale("log")
    low = min(float(data["ci_low"].min()), 1.0) / 1.15
    high = max(float(data["ci_high"].max()), 1.0) * 1.15
    ax.set_xlim(low, high)
    candidates = (0.25, 0.33, 0.5, 0.67, 0.8, 1, 1.25, 1.5, 2, 2.5, 3, 4, 5)
    ticks = [x for x in candidates if low <= x <= high]
    ax.set_xticks(ticks, [f"{x:g}" for x in ticks])
    ax.minorticks_off()
    return ax
