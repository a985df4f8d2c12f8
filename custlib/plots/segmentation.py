"""Charts of the segmentation report (notebook 01).

Each function takes a frame or fitted object of :mod:`custlib.segmentation`, draws on ``ax`` (a
new figure when None) and returns the axes. Chart text comes from the language catalogue;
group names (segments, tiers, clusters, actions) come in ``labels`` (value -> display name,
see :func:`custlib.present.segmentation.labels`), so they read in the report language.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from custlib.plots import axes, finish
from custlib.present import fmt
from custlib.present.i18n import name, t


def _relabel(values, labels: Mapping | None) -> list[str]:
    labels = labels or {}
    return [str(labels.get(v, v)) for v in values]


def _colorbar_label(ax: plt.Axes, text: str) -> None:
    """A colour-bar label drawn inside the figure (wrapped to the bar's height)."""
    cbar = ax.collections[0].colorbar
    cbar.set_label(text, fontsize=9)
    cbar.ax.tick_params(labelsize=8)


def segment_shares(summary: pd.DataFrame, *, labels: Mapping | None = None, ax: plt.Axes | None = None) -> plt.Axes:
    """Share of buyers and of net revenue per RFM segment (``RfmSegments.summary``), with 95%
    intervals; labels show n."""
    ax = axes(ax, (8.5, 0.5 * len(summary) + 1.8))
    y = np.arange(len(summary))
    for k, (column, key) in enumerate((("share", "buyers"), ("revenue_share", "revenue"))):
        est = np.array([100 * e.estimate for e in summary[column]])
        lo = np.clip([100 * e.ci_low for e in summary[column]], 0, None)  # a share is never below 0
        hi = np.clip([100 * e.ci_high for e in summary[column]], None, 100)
        ax.barh(y + (k - 0.5) * 0.38, est, height=0.38, label=t(f"segmentation.charts.share_of_{key}"),
                xerr=[est - lo, hi - est], capsize=2)
    ax.set_yticks(y, [f"{s}  (n = {fmt.value(n, 'count')})"
                      for s, n in zip(_relabel(summary["segment"], labels), summary["customers"])])
    ax.invert_yaxis()
    ax.legend(loc="lower right", title=t("segmentation.charts.share_legend"))
    return finish(ax, t("segmentation.charts.segment_shares_title"), t("segmentation.charts.share_axis"), "")


def rf_grid(grid: pd.DataFrame, *, ax: plt.Axes | None = None) -> plt.Axes:
    """Buyers per recency score (rows) and frequency score (columns), ``RfmSegments.grid()``."""
    ax = axes(ax, (6.5, 4.6))
    sns.heatmap(grid, annot=True, fmt=",d", cmap="Blues", ax=ax)
    _colorbar_label(ax, t("segmentation.charts.buyers"))
    top = grid.index.max()
    return finish(ax, t("segmentation.charts.rf_grid_title"),
                  t("segmentation.charts.f_score_axis", top=grid.columns.max()),
                  t("segmentation.charts.r_score_axis", top=top))


def lorenz(curve: pd.DataFrame, *, gini=None, ax: plt.Axes | None = None) -> plt.Axes:
    """Concentration (Lorenz) curve of revenue per buyer (``ValueTiers.lorenz``) with the line of
    equality; ``gini`` (an estimate) is written on the chart."""
    ax = axes(ax, (6, 5))
    ax.plot(100 * curve["customer_share"], 100 * curve["revenue_share"], lw=2,
            label=t("segmentation.charts.lorenz_curve"))
    ax.plot([0, 100], [0, 100], color="grey", ls="--", lw=1, label=t("segmentation.charts.equality"))
    ax.legend(loc="upper left")
    if gini is not None:
        ax.text(97, 4, t("segmentation.charts.gini", gini=fmt.cell(gini, "ratio")), ha="right", fontsize=9)
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    return finish(ax, t("segmentation.charts.lorenz_title"), t("segmentation.charts.lorenz_x"),
                  t("segmentation.charts.lorenz_y"))


def silhouette(scores: pd.DataFrame, *, chosen: int, ax: plt.Axes | None = None) -> plt.Axes:
    """Mean silhouette per number of clusters (``BehaviourClustering.silhouette_``); the chosen
    k is marked."""
    ax = axes(ax, (6.5, 3.8))
    ax.plot(scores["k"], scores["silhouette"], marker="o")
    best = scores[scores["k"] == chosen]
    ax.scatter(best["k"], best["silhouette"], s=160, facecolors="none", edgecolors="red", lw=2,
               label=t("segmentation.charts.chosen_k", k=chosen))
    ax.legend()
    ax.set_xticks(scores["k"])
    return finish(ax, t("segmentation.charts.silhouette_title"), t("segmentation.charts.k_axis"),
                  t("segmentation.charts.silhouette_axis"))


def cluster_centroids(zscores: pd.DataFrame, *, labels: Mapping | None = None,
                      features: Mapping | None = None, ax: plt.Axes | None = None) -> plt.Axes:
    """Cluster means of the standardized features (``BehaviourClustering.zscores_``: 0 = the
    unit average, in standard deviations); ``labels`` name the clusters, ``features`` the
    columns."""
    d = zscores.copy()
    d.index = _relabel(d.index, labels)
    d.columns = _relabel(d.columns, features)
    ax = axes(ax, (9, max(0.6 * len(d) + 2.2, 4.0)))
    sns.heatmap(d, annot=True, fmt=".1f", center=0, cmap="RdBu_r", ax=ax)
    _colorbar_label(ax, t("segmentation.charts.sd_axis"))
    ax.set_xticklabels(ax.get_xticklabels(), rotation=25, ha="right")
    ax.set_yticklabels(ax.get_yticklabels(), rotation=0)
    return finish(ax, t("segmentation.charts.centroids_title"), t("segmentation.charts.feature_axis"), "")


def migration(m, *, labels: Mapping | None = None, ax: plt.Axes | None = None) -> plt.Axes:
    """Where the buyers of each earlier segment are now (% of the earlier segment), from a
    :class:`custlib.segmentation.Migration`."""
    shares = 100 * m.row_shares()
    shares.index = _relabel(shares.index, labels)
    shares.columns = _relabel(shares.columns, labels)
    earlier, later = f"{m.earlier:%Y-%m-%d}", f"{m.later:%Y-%m-%d}"
    ax = axes(ax, (9, max(0.45 * len(shares) + 2.6, 4.0)))
    sns.heatmap(shares, annot=True, fmt=".0f", cmap="Greens", vmin=0, vmax=100, ax=ax)
    _colorbar_label(ax, t("segmentation.charts.pct_of_earlier"))
    ax.set_xticklabels(ax.get_xticklabels(), rotation=35, ha="right")
    ax.set_yticklabels(ax.get_yticklabels(), rotation=0)
    return finish(ax, t("segmentation.charts.migration_title", earlier=earlier, later=later),
                  t("segmentation.charts.segment_at", date=later), t("segmentation.charts.segment_at", date=earlier))


def profile_index(cells: pd.DataFrame, *, variable: str, groups: Mapping | None = None,
                  categories: Mapping | None = None, title: str, ax: plt.Axes | None = None) -> plt.Axes:
    """Index (100 = unit average) of each category of one variable per group, from
    ``Profile.cells`` of that variable; * marks a significant over- or under-representation."""
    d = cells[cells["variable"] == variable]
    index = d.pivot(index="group", columns="category", values="index")[pd.unique(d["category"])]
    mark = d.pivot(index="group", columns="category", values="flagged").reindex_like(index)
    annot = index.round(0).astype("Int64").astype(str) + np.where(mark.fillna(False).astype(bool), "*", "")
    index.index = _relabel(index.index, groups)
    index.columns = _relabel(index.columns, categories)
    ax = axes(ax, (max(0.9 * index.shape[1] + 4.5, 7.0), max(0.45 * len(index) + 2.2, 3.8)))
    sns.heatmap(index, annot=annot.to_numpy(), fmt="", center=100, cmap="RdBu_r", vmin=0, vmax=200, ax=ax)
    _colorbar_label(ax, t("segmentation.charts.index_axis"))
    ax.set_xticklabels(ax.get_xticklabels(), rotation=30, ha="right")
    ax.set_yticklabels(ax.get_yticklabels(), rotation=0)
    return finish(ax, title, name("profile_variable", variable), "")


def action_sizes(actions: pd.DataFrame, *, labels: Mapping | None = None, ax: plt.Axes | None = None) -> plt.Axes:
    """Customers on each action's target list (``Playbook.actions``)."""
    d = actions.sort_values("customers", ascending=True)
    ax = axes(ax, (8.5, 0.55 * len(d) + 1.6))
    ax.barh([textwrap.fill(x, 40) for x in _relabel(d["action"], labels)], d["customers"],
            color=sns.color_palette()[0])
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda x, _: fmt.value(x, "count")))
    return finish(ax, t("segmentation.charts.actions_title"), t("segmentation.charts.customers_axis"), "")
