"""Charts of the marketing report (see :mod:`custlib.plots`): seaborn-style functions that draw on
``ax`` (a new figure when None), return it and take their text from the catalogue. The frames
come from :mod:`custlib.present.marketing` with display labels in a ``label`` column."""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker as mtick
import pandas as pd
import seaborn as sns

from custlib.plots import axes, finish, interval_plot
from custlib.present.i18n import t


def campaign_effects(effects: pd.DataFrame, *, ax: plt.Axes | None = None) -> plt.Axes:
    """Effect on the conversion rate (difference of shares, shown in percentage points) with
    95% intervals, one row per campaign ``label``; columns label, estimate, ci_low, ci_high, n."""
    pp = effects.assign(**{c: 100 * effects[c] for c in ("estimate", "ci_low", "ci_high")})
    ax = interval_plot(pp, label="label", title=t("marketing.chart.effects_title"),
                       xlabel=t("marketing.chart.effects_x"), ref=0.0, ax=ax)
    ax.xaxis.set_major_formatter(mtick.FuncFormatter(lambda x, _: f"{x:+g}".replace("-", "−") if x else "0"))
    return ax


def qini_curves(curves: pd.DataFrame, *, ax: plt.Axes | None = None) -> plt.Axes:
    """Qini curves, one line per ``label`` (campaign): extra conversions per treated customer
    (``incremental``) when the top ``share_targeted`` of customers by predicted uplift are
    contacted, each with its random-targeting line (``random``, dashed)."""
    ax = axes(ax, (8, 4.4))
    for (label, g), color in zip(curves.groupby("label", sort=False), sns.color_palette()):
        ax.plot(g["share_targeted"], 100 * g["incremental"], color=color, label=label)
        ax.plot(g["share_targeted"], 100 * g["random"], color=color, ls="--", lw=1)
    ax.plot([], [], color="grey", ls="--", lw=1, label=t("marketing.chart.qini_random"))
    ax.xaxis.set_major_formatter(mtick.PercentFormatter(1.0, decimals=0))
    ax.legend(loc="upper left", fontsize=9)
    return finish(ax, t("marketing.chart.qini_title"), t("marketing.chart.qini_x"), t("marketing.chart.qini_y"))
