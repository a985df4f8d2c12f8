"""Charts of the segmentation report (notebook 01). English text only; Chinese terms are in
the tables."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from custlib.plots import finish


def segment_shares(summary: pd.DataFrame) -> plt.Axes:
    """Share of customers and of revenue per RFM segment, with 95% intervals."""
    rows = []
    for _, r in summary.iterrows():
        for what, e in (("customers", r["share"]), ("revenue", r["revenue_share"])):
            rows.append({"segment": r["segment"], "what": f"share of {what}", "est": 100 * e.estimate,
                         "lo": 100 * e.ci_low, "hi": 100 * e.ci_high, "n": r["customers"]})
    d = pd.DataFrame(rows)
    _, ax = plt.subplots(figsize=(8, 0.45 * len(summary) + 1.6))
    y = np.arange(len(summary))
    for k, (what, g) in enumerate(d.groupby("what", sort=False)):
        ax.barh(y + (k - 0.5) * 0.38, g["est"], height=0.38, label=what,
                xerr=[g["est"] - g["lo"], g["hi"] - g["est"]], capsize=2)
    ax.set_yticks(y, [f"{s} (n={n:,})" for s, n in zip(summary["segment"], summary["customers"])])
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    return finish(ax, "RFM segments: share of customers and of revenue", "Share (%), 95% CI", "")


def rf_grid(grid: pd.DataFrame) -> plt.Axes:
    """Customers per recency score (rows) and frequency score (columns)."""
    _, ax = plt.subplots(figsize=(6, 4.2))
    sns.heatmap(grid, annot=True, fmt=",d", cmap="Blues", cbar_kws={"label": "Customers"}, ax=ax)
    return finish(ax, "Customers by recency and frequency score",
                  "Frequency score (1 = fewest orders, 5 = most)", "Recency score (5 = most recent)")


def lorenz(curve: pd.DataFrame, gini_text: str) -> plt.Axes:
    """Concentration (Lorenz) curve of revenue per customer with the line of equality."""
    _, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot(100 * curve["customer_share"], 100 * curve["revenue_share"], lw=2, label="revenue")
    ax.plot([0, 100], [0, 100], color="grey", ls="--", lw=1, label="equal revenue per customer")
    ax.legend(loc="upper left")
    ax.text(55, 15, f"Gini {gini_text}", fontsize=9)
    return finish(ax, "Revenue concentration (Lorenz curve)",
                  "Cumulative share of customers, smallest first (%)", "Cumulative share of revenue (%)")


def silhouette(scores: pd.DataFrame, chosen: int) -> plt.Axes:
    """Mean silhouette per number of clusters; the chosen k is marked."""
    _, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(scores["k"], scores["silhouette"], marker="o")
    best = scores[scores["k"] == chosen]
    ax.scatter(best["k"], best["silhouette"], s=160, facecolors="none", edgecolors="red", lw=2,
               label=f"chosen: k = {chosen}")
    ax.legend()
    ax.set_xticks(scores["k"])
    return finish(ax, "Choosing the number of behavioural clusters", "Number of clusters k",
                  "Mean silhouette (-1 to 1, higher = better separated)")


def cluster_centroids(clustering) -> plt.Axes:
    """Cluster means of the standardized features of a fitted
    :class:`custlib.segmentation.BehaviourClustering` (0 = unit average, in standard deviations)."""
    d = clustering.zscores_.copy()
    sizes = clustering.centroids_.set_index("cluster")["customers"]
    d.index = [f"{c}: {clustering.names_[c]} (n={sizes[c]:,})" for c in d.index]
    d.columns = [c.replace("_", " ") for c in d.columns]
    _, ax = plt.subplots(figsize=(8.5, 0.6 * len(d) + 1.8))
    sns.heatmap(d, annot=True, fmt=".1f", center=0, cmap="RdBu_r",
                cbar_kws={"label": "Standard deviations from the unit average"}, ax=ax)
    return finish(ax, "What sets the clusters apart (standardized cluster means)", "Feature", "")


def migration(m) -> plt.Axes:
    """Where the customers of each earlier segment are now (% of the earlier segment), from a
    :class:`custlib.segmentation.Migration`."""
    row_shares = m.row_shares()
    earlier, later = f"{m.earlier:%Y-%m-%d}", f"{m.later:%Y-%m-%d}"
    _, ax = plt.subplots(figsize=(9, 0.45 * len(row_shares) + 2.2))
    sns.heatmap(100 * row_shares, annot=True, fmt=".0f", cmap="Greens", vmin=0, vmax=100,
                cbar_kws={"label": "% of the earlier segment"}, ax=ax)
    ax.set_xticklabels(ax.get_xticklabels(), rotation=40, ha="right")
    return finish(ax, f"Segment migration {earlier} to {later}", f"Segment at {later}",
                  f"Segment at {earlier}")


def profile_index(cells: pd.DataFrame, variable: str, title: str) -> plt.Axes:
    """Index (100 = unit average) of each category of one variable per group; * marks a
    significant over- or under-representation."""
    d = cells[cells["variable"] == variable]
    index = d.pivot(index="group", columns="category", values="index")[pd.unique(d["category"])]
    mark = d.pivot(index="group", columns="category", values="flagged").reindex_like(index)
    labels = index.round(0).astype("Int64").astype(str) + np.where(mark.fillna(False).astype(bool), "*", "")
    _, ax = plt.subplots(figsize=(1.0 * index.shape[1] + 4, 0.45 * len(index) + 1.8))
    sns.heatmap(index, annot=labels, fmt="", center=100, cmap="RdBu_r", vmin=0, vmax=200,
                cbar_kws={"label": "Index (100 = unit average)"}, ax=ax)
    ax.set_xticklabels(ax.get_xticklabels(), rotation=30, ha="right")
    return finish(ax, title, variable.replace("_", " "), "")


def action_sizes(actions: pd.DataFrame) -> plt.Axes:
    """Customers on each action's target list."""
    d = actions.sort_values("customers", ascending=True)
    _, ax = plt.subplots(figsize=(7.5, 0.4 * len(d) + 1.4))
    ax.barh(d["action"].str.replace("_", " "), d["customers"], color=sns.color_palette()[0])
    return finish(ax, "Customers per recommended action (target lists)", "Customers", "")
