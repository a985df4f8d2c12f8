"""Overview charts shared by the four reports."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from custlib.plots import finish


def monthly_bars(df: pd.DataFrame, value: str, title: str, ylabel: str) -> plt.Axes:
    """One bar per calendar month."""
    _, ax = plt.subplots(figsize=(9, 3.6))
    d = df.assign(label=df["month"].dt.strftime("%Y-%m"))
    sns.barplot(data=d, x="label", y=value, color=sns.color_palette()[0], ax=ax)
    step = max(1, len(d) // 12)
    ax.set_xticks(range(0, len(d), step), d["label"].iloc[::step], rotation=45, ha="right")
    return finish(ax, title, "Month", ylabel)
