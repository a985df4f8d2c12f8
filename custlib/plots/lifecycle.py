"""Charts of the lifecycle report. Text comes from the catalogue (``lifecycle.charts.*``); stage
and funnel-stage names, which come from params, are passed in as ``names`` (stage -> display
name, see :func:`custlib.present.lifecycle.stage_names`)."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from custlib.funnel import ALL_SOURCES
from custlib.plots import axes, finish, interval_plot
from custlib.present import fmt
from custlib.present.i18n import name, t

STAGE_COLOURS = {"prospect": "#9e9e9e", "new": "#64b5f6", "repeat": "#1976d2", "loyal": "#2e7d32",
                 "at_risk": "#f9a825", "lapsed": "#c62828"}


def _name(names: dict | None, stage: str) -> str:
    return (names or {}).get(stage) or name("lifecycle_stage", stage)


def _count(n) -> str:
    return fmt.value(n, "count")


def _percent_axis(axis) -> None:
    axis.set_major_formatter(FuncFormatter(lambda x, _: fmt.value(x, "pct", digits=0)))


def stage_counts(counts: pd.DataFrame, *, names: dict | None = None, ax: plt.Axes | None = None) -> plt.Axes:
    """Customers and open leads per stage at each month end (stacked areas); ``counts``:
    ``snapshot, stage, entities`` (:attr:`custlib.lifecycle.StageHistory.counts`)."""
    wide = counts.pivot(index="snapshot", columns="stage", values="entities").fillna(0)
    ax = axes(ax, (9, 4.4))
    cols = [c for c in STAGE_COLOURS if c in wide]
    ax.stackplot(wide.index, *[wide[c] for c in cols], colors=[STAGE_COLOURS[c] for c in cols],
                 labels=[_name(names, c) for c in cols], alpha=0.9)
    ax.legend(loc="upper left", fontsize=8, ncol=3, title=t("lifecycle.charts.stage"), title_fontsize=8)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda x, _: _count(x)))
    return finish(ax, t("lifecycle.charts.stages_title"), t("lifecycle.charts.month_end"),
                  t("lifecycle.charts.entities"))


def transition_heatmap(transitions: pd.DataFrame, *, months: int, names: dict | None = None,
                       ax: plt.Axes | None = None) -> plt.Axes:
    """Share of each stage that is in each stage one month end later (rows sum to 100%),
    pooled over ``months`` month-to-month moves; rows show how many moves they rest on."""
    wide = transitions.pivot(index="from_stage", columns="to_stage", values="share").fillna(0)
    n = transitions.groupby("from_stage", observed=True)["entities"].sum()
    wide = wide.loc[[s for s in wide.index if n.get(s, 0) > 0]]
    wide.index = [f"{_name(names, s)}\n(n = {_count(n[s])})" for s in wide.index]
    wide.columns = [textwrap.fill(label, 12 if label.isascii() else 6)  # CJK glyphs are twice as wide
                    for label in (_name(names, s) for s in wide.columns)]
    ax = axes(ax, (9, 5.6))
    sns.heatmap(wide, annot=True, fmt=".0%", cmap="Blues", vmin=0, vmax=1, ax=ax,
                cbar_kws={"label": t("lifecycle.charts.share_of_row"), "format": FuncFormatter(
                    lambda x, _: fmt.value(x, "pct", digits=0))})
    ax.tick_params(axis="x", rotation=0, labelsize=9)
    ax.tick_params(axis="y", rotation=0, labelsize=9)
    ax.grid(False)
    return finish(ax, t("lifecycle.charts.transitions_title", months=months),
                  t("lifecycle.charts.next_stage"), t("lifecycle.charts.from_stage"))


def cohort_heatmap(cohorts: pd.DataFrame, *, value: str = "retention", currency: str = "",
                   ax: plt.Axes | None = None) -> plt.Axes:
    """Acquisition cohort (month of the first purchase; size in the label) x months since the
    first purchase. ``value``: ``"retention"`` (share buying in that month; month 0, 100% by
    definition, is left out) or ``"revenue_per_customer"`` (net revenue per acquired customer,
    in ``currency``)."""
    retention = value == "retention"
    d = cohorts[cohorts["months_since_first"] >= (1 if retention else 0)]
    wide = d.pivot(index="cohort", columns="months_since_first", values=value)
    size = d.drop_duplicates("cohort").set_index("cohort")["cohort_size"]
    wide.index = [f"{c:%Y-%m} (n = {_count(size[c])})" for c in wide.index]
    ax = axes(ax, (9, 0.2 * len(wide) + 2.2))
    tick = (lambda x, _: fmt.value(x, "pct", digits=0)) if retention else (lambda x, _: _count(x))
    label = t("lifecycle.charts.retention_bar") if retention else t("lifecycle.charts.revenue_bar", currency=currency)
    sns.heatmap(wide, cmap="viridis", ax=ax, cbar_kws={"label": label, "format": FuncFormatter(tick)},
                yticklabels=1 if len(wide) <= 40 else 2)
    ax.tick_params(axis="y", labelsize=8, rotation=0)
    ax.tick_params(axis="x", labelsize=8, rotation=0)
    ax.grid(False)
    title = t("lifecycle.charts.retention_title") if retention else t("lifecycle.charts.revenue_title")
    return finish(ax, title, t("lifecycle.charts.months_since_first"), t("lifecycle.charts.cohort"))


def lapse_curves(curves, *, ax: plt.Axes | None = None) -> plt.Axes:
    """Kaplan–Meier share not yet lapsed with 95% bands, one line per group
    (:class:`custlib.lifecycle.LapseCurves`)."""
    ax = axes(ax, (8.5, 4.4))
    med = curves.medians.set_index("group")
    for k, (group, d) in enumerate(curves.curves.groupby("group", sort=True)):
        colour = sns.color_palette()[k % 10]
        ax.step(d["days"], d["survival"], where="post", color=colour,
                label=f"{name(f'lifecycle_{curves.by}', group)} (n = {_count(med.loc[group, 'n'])})")
        ax.fill_between(d["days"], d["ci_low"], d["ci_high"], step="post", color=colour, alpha=0.15)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_ylim(0, 1.02)
    _percent_axis(ax.yaxis)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: _count(x)))
    ax.legend(fontsize=8, title=t(f"lifecycle.lapse.by.{curves.by}"), title_fontsize=8)
    return finish(ax, t(f"lifecycle.charts.lapse_title.{curves.by}"), t("lifecycle.charts.days_since_first"),
                  t("lifecycle.charts.not_lapsed"))


def holdout_by_frequency(by_frequency: pd.DataFrame, *, weeks: int, names: dict | None = None,
                         occasions: str | None = None, ax: plt.Axes | None = None) -> plt.Axes:
    """Mean actual and each model's predicted purchases in the holdout, by calibration repeat
    purchases; ``by_frequency``: ``model, bucket, customers, actual, predicted``
    (:attr:`custlib.lifecycle.HoldoutCheck.by_frequency`, rows of models that count the same
    thing); ``names``: model -> display name; ``occasions``: the word for the occasions (e.g.
    "years") when the rows are BG/BB's, which count occasions with a purchase, not purchases."""
    if occasions is None:
        legend = t("lifecycle.charts.holdout_legend", weeks=weeks)
        title = t("lifecycle.charts.holdout_title", weeks=weeks)
        x_label, y_label = t("lifecycle.charts.calibration_repeats"), t("lifecycle.charts.mean_purchases")
    else:
        legend, title = (t("lifecycle.charts.holdout_legend_occasions", units=occasions),
                         t("lifecycle.charts.holdout_title_occasions", units=occasions))
        x_label = t("lifecycle.charts.calibration_occasions", units=occasions)
        y_label = t("lifecycle.charts.mean_occasions", units=occasions)
    first = by_frequency[by_frequency["model"] == by_frequency["model"].iloc[0]]
    actual = first.assign(series=t("lifecycle.charts.actual"), purchases=first["actual"])
    predicted = by_frequency.assign(
        series=[t("lifecycle.charts.predicted", model=(names or {}).get(m, m)) for m in by_frequency["model"]],
        purchases=by_frequency["predicted"])
    d = pd.concat([actual, predicted], ignore_index=True)
    d["bucket"] = d["bucket"] + "\n(n = " + d["customers"].map(_count) + ")"
    ax = axes(ax, (9, 4.2))
    sns.barplot(data=d, x="bucket", y="purchases", hue="series", ax=ax)
    ax.legend(title=legend, fontsize=8, title_fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    return finish(ax, title, x_label, y_label)


def tracking(track: pd.DataFrame, *, calibration_end, model: str, ax: plt.Axes | None = None) -> plt.Axes:
    """Cumulative repeat purchases of the calibration customers, actual vs predicted by
    ``model`` (its display name); the part after ``calibration_end`` is a forecast."""
    ax = axes(ax, (9, 4))
    ax.plot(track["week"], track["actual"], label=t("lifecycle.charts.actual"), lw=2)
    ax.plot(track["week"], track["predicted"], label=t("lifecycle.charts.predicted", model=model), ls="--", lw=2)
    ax.axvline(pd.Timestamp(calibration_end), color="grey", lw=1)
    ax.text(pd.Timestamp(calibration_end), ax.get_ylim()[1] * 0.05, " " + t("lifecycle.charts.holdout"), color="grey")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda x, _: _count(x)))
    ax.legend(title=t("lifecycle.charts.repeat_purchases"), fontsize=8, title_fontsize=8)
    return finish(ax, t("lifecycle.charts.tracking_title"), t("lifecycle.charts.week"),
                  t("lifecycle.charts.cumulative_repeats"))


def roc(ranking, *, ax: plt.Axes | None = None) -> plt.Axes:
    """ROC curves of the churn scores on the holdout outcome (:class:`custlib.lifecycle.ChurnRanking`)."""
    auc = ranking.table[ranking.table["metric"] == "auc"].set_index("score")["estimate"]
    ax = axes(ax, (6, 5.2))
    for score, d in ranking.roc.groupby("score", sort=False):
        ax.plot(d["false_positive_rate"], d["true_positive_rate"],
                label=f"{name('lifecycle_churn_score', score)}: AUC {fmt.value(auc[score], 'ratio')}")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    _percent_axis(ax.xaxis)
    _percent_axis(ax.yaxis)
    ax.legend(fontsize=8, loc="lower right", title=t("lifecycle.charts.score"), title_fontsize=8)
    return finish(ax, t("lifecycle.charts.roc_title", n=_count(ranking.n)), t("lifecycle.charts.false_positive"),
                  t("lifecycle.charts.true_positive"))


def funnel_rates(conversion: pd.DataFrame, *, names: dict | None = None, ax: plt.Axes | None = None) -> plt.Axes:
    """Conversion of each funnel step by lead source with 95% Wilson intervals (steps without a
    decided lead are left out); ``names``: funnel stage -> display name."""
    names = names or {}
    d = conversion.dropna(subset=["conversion"]).sort_values(["step", "source"])
    source = lambda s: t("lifecycle.funnel.all_sources") if s == ALL_SOURCES else name("lifecycle_source", s)
    d = d.assign(label=[t("lifecycle.charts.source_step", source=source(s), step=f"{names.get(a, a)} → {names.get(b, b)}")
                        for s, a, b in zip(d["source"], d["from_stage"], d["to_stage"])])
    ax = interval_plot(d, label="label", title=t("lifecycle.charts.funnel_title"),
                       xlabel=t("lifecycle.charts.funnel_axis"), estimate="conversion", ax=ax)
    ax.set_xlim(0, 1)
    _percent_axis(ax.xaxis)
    return ax


def clv_distribution(values: pd.DataFrame, *, horizon_months: int, currency: str,
                     ax: plt.Axes | None = None) -> plt.Axes:
    """Distribution of the discounted CLV of buyers on a log axis (values below 1 are counted
    at 1); ``values``: a ``clv`` column (:attr:`custlib.lifecycle.CustomerValue.table`)."""
    v = values["clv"].dropna().clip(lower=1.0)
    ax = axes(ax, (8.5, 4))
    bins = np.logspace(0, np.log10(max(v.max(), 10.0)), 50)
    ax.hist(v, bins=bins, color=sns.color_palette()[0])
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: _count(x)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda x, _: _count(x)))
    return finish(ax, t("lifecycle.charts.clv_title", months=horizon_months, n=_count(len(v))),
                  t("lifecycle.charts.clv_axis", currency=currency), t("lifecycle.charts.buyers"))
