"""Charts shared by all reports. Analysis-specific charts live in ``custlib.plots.<analysis>``.

Every chart has a title and axis labels with units, draws intervals where there are any, and
uses English text only (the reports' fonts carry no CJK glyphs in PNG images; Chinese terms go in
tables and text).
"""

from __future__ import annotations

import matplotlib

if "inline" not in matplotlib.get_backend():  # scripts and tests draw off-screen
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

sns.set_theme(style="whitegrid", context="notebook", palette="deep")
plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "figure.figsize": (8, 4.2),
                     "axes.titleweight": "bold", "axes.titlesize": 12})


def finish(ax: plt.Axes, title: str, xlabel: str | None = None, ylabel: str | None = None) -> plt.Axes:
    """Title and axis labels, tight layout."""
    ax.set_title(title)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    ax.figure.tight_layout()
    return ax


def interval_plot(df: pd.DataFrame, label: str, title: str, xlabel: str, estimate: str = "estimate",
                  ci_low: str = "ci_low", ci_high: str = "ci_high", n: str | None = "n",
                  ref: float | None = None, ax: plt.Axes | None = None) -> plt.Axes:
    """Point estimates with 95% intervals, one row per ``label``; labels show n."""
    d = df.reset_index(drop=True)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.45 * len(d) + 1.4))
    y = range(len(d))
    ax.errorbar(d[estimate], y, xerr=[d[estimate] - d[ci_low], d[ci_high] - d[estimate]],
                fmt="o", capsize=3, color=sns.color_palette()[0])
    names = d[label].astype(str)
    if n and n in d:
        names = names + "  (n=" + d[n].map("{:,}".format) + ")"
    ax.set_yticks(list(y), names)
    ax.invert_yaxis()
    if ref is not None:
        ax.axvline(ref, color="grey", lw=1, ls="--")
    return finish(ax, title, xlabel, "")
