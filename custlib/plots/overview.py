"""Overview charts shared by the reports."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import FuncFormatter

from custlib.plots import axes, finish
from custlib.present import fmt
from custlib.present.i18n import t


def monthly_bars(data: pd.DataFrame, *, value: str, title: str, ylabel: str, kind: str = "count",
                 currency: str = "", ax: plt.Axes | None = None) -> plt.Axes:
    """One bar per calendar month (``data`` has ``month`` and ``value``); the value axis reads
    in the report's number style (money compact, no offset such as 1e6)."""
    import seaborn as sns

    ax = axes(ax, (9, 3.6))
    d = data.assign(label=data["month"].dt.strftime("%Y-%m"))
    sns.barplot(data=d, x="label", y=value, color=sns.color_palette()[0], ax=ax)
    step = max(1, len(d) // 12)
    ax.set_xticks(range(0, len(d), step), d["label"].iloc[::step], rotation=45, ha="right")
    ax.yaxis.set_major_formatter(FuncFormatter(
        lambda y, _: fmt.value(y, kind, currency=currency, compact=True) if kind == "money" else fmt.value(y, kind)))
    return finish(ax, title, t("overview.month"), ylabel)
