"""Charts of the lifecycle report (English text only; Chinese terms go in the tables)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from custlib.plots import finish, interval_plot

STAGE_COLOURS = {"prospect": "#9e9e9e", "new": "#64b5f6", "repeat": "#1976d2", "loyal": "#2e7d32",
                 "at_risk": "#f9a825", "lapsed": "#c62828"}


def _english(stage: str, rules) -> str:
    s = rules.stages.get(stage)
    return s.label if s else stage


def stage_counts(history) -> plt.Axes:
    """Customers and open leads per stage at each month end (stacked areas)."""
    wide = history.counts.pivot(index="snapshot", columns="stage", values="entities").fillna(0)
    _, ax = plt.subplots(figsize=(9, 4.2))
    cols = [c for c in STAGE_COLOURS if c in wide]
    ax.stackplot(wide.index, *[wide[c] for c in cols], colors=[STAGE_COLOURS[c] for c in cols],
                 labels=[_english(c, history.rules) for c in cols], alpha=0.9)
    ax.legend(loc="upper left", fontsize=8, ncol=3)
    return finish(ax, "Lifecycle stages at each month end", "Month end", "Customers and open leads")


def transition_heatmap(transitions: pd.DataFrame, rules) -> plt.Axes:
    """Share of each stage that moves to each stage by the next month end (rows sum to 100%)."""
    wide = transitions.pivot(index="from_stage", columns="to_stage", values="share").fillna(0) * 100
    n = transitions.groupby("from_stage", observed=True)["entities"].sum()
    wide = wide.loc[[s for s in wide.index if n.get(s, 0) > 0]]
    wide.index = [f"{_english(s, rules)} (n={int(n[s]):,})" for s in wide.index]
    wide.columns = [_english(s, rules) for s in wide.columns]
    _, ax = plt.subplots(figsize=(9.5, 5.2))
    sns.heatmap(wide, annot=True, fmt=".1f", cmap="Blues", cbar_kws={"label": "% of the row"}, ax=ax)
    ax.tick_params(axis="x", rotation=30)
    return finish(ax, "Stage one month later (% of row, last 12 months)", "Stage at the next month end",
                  "Stage at a month end")


def cohort_heatmap(cohorts: pd.DataFrame, value: str, title: str, label: str, scale: float = 1.0,
                   from_month: int = 0) -> plt.Axes:
    """Cohort (month of first purchase, size in the label) x months since the first purchase,
    from ``from_month`` on (1 leaves out the acquisition month, 100% retention by definition)."""
    d = cohorts[cohorts["months_since_first"] >= from_month]
    d = d.assign(v=d[value] * scale)
    wide = d.pivot(index="cohort", columns="months_since_first", values="v")
    size = d.drop_duplicates("cohort").set_index("cohort")["cohort_size"]
    wide.index = [f"{c:%Y-%m} (n={int(size[c]):,})" for c in wide.index]
    _, ax = plt.subplots(figsize=(11, 0.22 * len(wide) + 2))
    sns.heatmap(wide, cmap="viridis", cbar_kws={"label": label}, ax=ax)
    ax.tick_params(axis="y", labelsize=7)
    return finish(ax, title, "Months since the first purchase", "Acquisition cohort (customers)")


def lapse_curves(curves, title: str) -> plt.Axes:
    """Kaplan–Meier share not yet lapsed with 95% bands, one line per group."""
    _, ax = plt.subplots(figsize=(8.5, 4.4))
    med = curves.medians.set_index("group")
    for k, (group, d) in enumerate(curves.curves.groupby("group", sort=True)):
        colour = sns.color_palette()[k % 10]
        ax.step(d["days"], d["survival"], where="post", color=colour,
                label=f"{group} (n={int(med.loc[group, 'n']):,})")
        ax.fill_between(d["days"], d["ci_low"], d["ci_high"], step="post", color=colour, alpha=0.15)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    return finish(ax, title, "Days since the first purchase", "Share not yet lapsed")


def holdout_by_frequency(by_frequency: pd.DataFrame, weeks: int) -> plt.Axes:
    """Mean actual vs predicted purchases in the holdout, by calibration repeat purchases."""
    d = by_frequency.melt(id_vars=["bucket", "customers"], value_vars=["actual", "predicted"],
                          var_name="series", value_name="purchases")
    d["bucket"] = d["bucket"] + "\n(n=" + d["customers"].map("{:,}".format) + ")"
    _, ax = plt.subplots(figsize=(9, 4))
    sns.barplot(data=d, x="bucket", y="purchases", hue="series", ax=ax)
    return finish(ax, f"Holdout check: purchases in the last {weeks} weeks, actual vs BG/NBD",
                  "Repeat purchases in the calibration period", "Mean purchases per customer")


def tracking(track: pd.DataFrame, calibration_end) -> plt.Axes:
    """Cumulative repeat purchases of the calibration customers, actual vs predicted."""
    _, ax = plt.subplots(figsize=(9, 4))
    ax.plot(track["week"], track["actual"], label="actual", lw=2)
    ax.plot(track["week"], track["predicted"], label="BG/NBD expected", ls="--", lw=2)
    ax.axvline(pd.Timestamp(calibration_end), color="grey", lw=1)
    ax.text(pd.Timestamp(calibration_end), ax.get_ylim()[1] * 0.05, " holdout", color="grey")
    ax.legend()
    return finish(ax, "Cumulative repeat purchases: actual vs model", "Week", "Repeat purchases (cumulative)")


def roc(ranking) -> plt.Axes:
    """ROC curves of the churn-risk score and of the recency rule on the holdout outcome
    (``lifecycle.ChurnRanking``)."""
    auc = ranking.table[ranking.table["metric"] == "AUC"].set_index("score")["estimate"]
    _, ax = plt.subplots(figsize=(5.5, 5))
    for score, d in ranking.roc.groupby("score", sort=False):
        ax.plot(d["false_positive_rate"], d["true_positive_rate"], label=f"{score}: AUC {auc[score]:.2f}")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.legend(fontsize=8, loc="lower right")
    return finish(ax, f"Who lapsed in the holdout (n={ranking.n:,})",
                  "False positive rate (kept buying, flagged)", "True positive rate (lapsed, flagged)")


def funnel_rates(fun) -> plt.Axes:
    """Conversion of each funnel step by source with 95% Wilson intervals."""
    d = fun.conversion.assign(label=lambda x: x["source"] + ": " + x["from_stage"] + " -> " + x["to_stage"])
    d = d.sort_values(["step", "source"])
    ax = interval_plot(d, "label", "Funnel conversion by step and source (95% CI)",
                       "Conversion (share of decided leads)", estimate="conversion")
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda x, _: f"{x:.0%}"))
    return ax


def clv_distribution(values: pd.DataFrame, currency: str) -> plt.Axes:
    """Distribution of the discounted CLV of buyers (log scale)."""
    v = values["clv"][values["clv"] > 0]
    _, ax = plt.subplots(figsize=(8, 3.8))
    ax.hist(np.log10(v), bins=50, color=sns.color_palette()[0])
    ticks = np.arange(np.floor(np.log10(v.min())), np.ceil(np.log10(v.max())) + 1)
    ax.set_xticks(ticks, [f"{10 ** t:,.0f}" for t in ticks])
    return finish(ax, f"Expected CLV per customer (n={len(v):,})", f"CLV ({currency}, log scale)", "Customers")
