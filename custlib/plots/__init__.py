"""Charts. Analysis-specific charts live in ``custlib.plots.<analysis>``.

Plot functions behave like seaborn's: ``f(data, *, ..., ax=None)`` draws on ``ax`` (the current
axes when None), returns it, fits no model and takes its text from the language catalogue.
Importing changes no global style: :func:`use_style` (called by :func:`custlib.report.header`)
sets the report theme and fonts that draw Chinese — a full Noto Sans CJK SC when the system has
one, else the GB 2312 subset shipped in ``custlib/fonts``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

if "inline" not in matplotlib.get_backend():  # scripts and tests draw off-screen
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

SHIPPED_CJK_FONT = Path(__file__).resolve().parent.parent / "fonts" / "NotoSansCJKSCSubset-Regular.otf"
CJK_FAMILIES = ["Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC",
                "Noto Sans CJK SC Subset"]


def cjk_fonts() -> list[str]:
    """The sans-serif font list for charts: DejaVu Sans for Latin text, then the first CJK
    family available (the shipped subset is registered here, so there always is one)."""
    from matplotlib import font_manager

    if "Noto Sans CJK SC Subset" not in {f.name for f in font_manager.fontManager.ttflist}:
        font_manager.fontManager.addfont(str(SHIPPED_CJK_FONT))
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return ["DejaVu Sans"] + [f for f in CJK_FAMILIES if f in installed][:1]


def use_style() -> None:
    """The report look: seaborn's whitegrid theme, bold titles, 100 dpi, and fonts with CJK
    glyphs (matplotlib falls back glyph by glyph along the list)."""
    import logging

    import seaborn as sns

    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)  # CJK fonts have no bold: regular is used
    sns.set_theme(style="whitegrid", context="notebook", palette="deep",
                  font=cjk_fonts(), rc={"axes.unicode_minus": True})
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "figure.figsize": (8, 4.2),
                         "axes.titleweight": "bold", "axes.titlesize": 12})


def axes(ax: plt.Axes | None, figsize: tuple[float, float] | None = None) -> plt.Axes:
    """``ax`` itself, or the axes of a new figure of ``figsize`` (inches) when None."""
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize)
    return ax


def finish(ax: plt.Axes, title: str, xlabel: str | None = None, ylabel: str | None = None) -> plt.Axes:
    """Title and axis labels, tight layout."""
    ax.set_title(title)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    ax.figure.tight_layout()
    return ax


def interval_plot(data: pd.DataFrame, *, label: str, title: str, xlabel: str, estimate: str = "estimate",
                  ci_low: str = "ci_low", ci_high: str = "ci_high", n: str | None = "n",
                  ref: float | None = None, ax: plt.Axes | None = None) -> plt.Axes:
    """Point estimates with 95% intervals, one row per ``label``; labels show n."""
    import seaborn as sns

    d = data.reset_index(drop=True)
    ax = axes(ax, (8, 0.45 * len(d) + 1.4))
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
