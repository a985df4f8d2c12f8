"""The HTML building blocks of every report: header, findings, sections, tables, notes,
warnings, a collapsed "Method and diagnostics" block, and atomic writes of machine-readable
outputs. Everything renders as plain HTML styled by ``custlib/templates/report.css``; nothing
loads from the web. Wording comes from the language catalogue (:mod:`custlib.present.i18n`);
numbers are formatted by :mod:`custlib.present.fmt` before they get here.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from custlib.contract import PERSONAL_FIELDS
from custlib.present.i18n import set_language, t
from custlib.stats import Unavailable

MAX_FINDINGS = 5


@dataclass(frozen=True)
class Finding:
    """One sentence an executive reads first (with one number and its interval) and, where
    there is one, what to do about it."""

    text: str
    action: str = ""


def _show(markup: str) -> None:
    from IPython.display import HTML, display

    display(HTML(markup))


def header(data, analysis: str) -> None:
    """Start a report: set the unit's language and chart style, then show the title and the
    line under it (unit, data period, observation end, run date, currency)."""
    from custlib.plots import use_style

    p = data.params
    set_language(p.language)
    use_style()
    first, last = data.period()
    meta = t("report.meta", unit=p.display_name, first=f"{first:%Y-%m-%d}", last=f"{last:%Y-%m-%d}",
             end=f"{p.observation_end:%Y-%m-%d}", run=f"{data.run_date:%Y-%m-%d}", currency=p.currency)
    _show(f'<div class="cl-header"><h1>{html.escape(t(f"analysis.{analysis}"))}</h1>'
          f'<p class="cl-meta">{html.escape(meta)}</p></div>')


def findings(items: list[Finding]) -> None:
    """The executive layer: at most five findings, each one sentence and its action."""
    if len(items) > MAX_FINDINGS:
        raise ValueError(f"{len(items)} findings; a report opens with at most {MAX_FINDINGS}")
    lis = "".join(
        f"<li><span class=\"cl-finding\">{html.escape(f.text)}</span>"
        + (f' <span class="cl-action">{html.escape(t("report.action"))} {html.escape(f.action)}</span>'
           if f.action else "") + "</li>"
        for f in items)
    _show(f'<div class="cl-headline"><h2>{html.escape(t("report.findings"))}</h2><ul>{lis}</ul></div>')


def section(title: str, intro: str = "", level: int = 2) -> None:
    """A section heading and the sentence or two that says what question it answers."""
    _show(f"<h{level}>{html.escape(title)}</h{level}>" + (f"<p>{html.escape(intro)}</p>" if intro else ""))


def warning(text: str) -> None:
    """A visible caution (small samples, weak evidence, failed checks)."""
    _show(warning_html(text))


def warning_html(text: str) -> str:
    return f'<div class="cl-warning">⚠ {html.escape(text)}</div>'


def available(result) -> bool:
    """False, after showing the reason in place of the section, when ``result`` is a
    :class:`custlib.stats.Unavailable`; True otherwise. Notebook use:
    ``if report.available(lc.funnel): ...``."""
    if isinstance(result, Unavailable):
        _show(f'<div class="cl-unavailable">{html.escape(result.reason)}</div>')
        return False
    return True


def note(text: str) -> None:
    """A short explanatory note under a table or chart."""
    _show(note_html(text))


def note_html(text: str) -> str:
    return f'<p class="cl-note">{html.escape(text)}</p>'


def table(df: pd.DataFrame, caption: str, n: int | None = None, index: bool = False, max_rows: int = 40) -> None:
    """A captioned table of display-ready cells; the caption states n (rows if n is not given)."""
    _show(table_html(df, caption, n, index, max_rows))


def table_html(df: pd.DataFrame, caption: str, n: int | None = None, index: bool = False,
               max_rows: int = 40) -> str:
    """The HTML of :func:`table`. Cells should be text from :mod:`custlib.present.fmt`;
    integers get separators, other numbers two decimals."""
    shown = df.head(max_rows)
    formats = {c: "{:,}".format for c in shown.columns if pd.api.types.is_integer_dtype(shown[c])}
    n_text = t("report.caption_n", n=f"{n:,}") if n is not None else t("report.caption_rows", n=f"{len(df):,}")
    if len(df) > max_rows:
        n_text += ", " + t("report.caption_first", shown=max_rows)
    table_id = f"t{uuid.uuid4().hex[:8]}"
    body = shown.to_html(index=index, formatters=formats, float_format=lambda x: f"{x:,.2f}",
                         na_rep="–", border=0, classes="cl-table", escape=True, table_id=table_id)
    offset = shown.index.nlevels if index else 0
    right = [offset + i + 1 for i, c in enumerate(shown.columns) if _looks_numeric(shown[c])]
    unbroken = [offset + i + 1 for i, c in enumerate(shown.columns)  # long cells (estimate and interval) may wrap
                if offset + i + 1 in right and shown[c].astype(str).str.len().max() <= NOWRAP_MAX_CHARS]
    style = "".join(f"{','.join(f'#{table_id} td:nth-child({k})' for k in cols)}{{{rule}}}"
                    for cols, rule in ((right, "text-align:right;word-break:keep-all"), (unbroken, "white-space:nowrap"))
                    if cols)
    style = f"<style>{style}</style>" if style else ""
    return (f'<figure class="cl-fig">{style}<figcaption>{html.escape(caption)} ({n_text})</figcaption>'
            f"{body}</figure>")


NOWRAP_MAX_CHARS = 28  # a numeric cell up to this long is kept on one line
# '12.8% (12.4%–13.3%)', 'p = 0.03', 'CNY 43.75 (CNY 24.35–CNY 63.16)', '¥5'
NUMBER_START = re.compile(r"^\s*(?:[pn]\s*[=<>]\s*|[A-Z]{3}\s|[¥$€£])?[-+−–]?[\d.,]+")


def _looks_numeric(col: pd.Series) -> bool:
    """Numbers, and text that starts like a number, align right. Cells without a digit (a dash,
    'sample too small') do not decide: a column of effects with some notes stays right-aligned."""
    if pd.api.types.is_numeric_dtype(col):
        return True
    text = col.dropna().astype(str)
    text = text[text.str.contains(r"\d")]
    return len(text) > 0 and text.str.match(NUMBER_START).mean() >= 0.9


def chart(ax) -> None:
    """Show a chart where the report is (not at the end of the notebook cell) and close it."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    display(ax.figure)
    plt.close(ax.figure)


def figure_html(ax) -> str:
    """A chart as an embedded PNG (for charts inside :func:`details`); closes its figure."""
    import matplotlib.pyplot as plt

    fig = ax.figure
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return f'<img class="cl-chart" alt="" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def details(parts: list[str], title: str | None = None) -> None:
    """Diagnostic material (model parameters, balance and test tables, residual charts) in one
    collapsed block, opened by a click (no script): ``parts`` are HTML from
    :func:`table_html`, :func:`figure_html`, :func:`note_html` or :func:`warning_html`."""
    parts = [p for p in parts if p]
    if parts:
        _show(f'<details class="cl-details"><summary>{html.escape(title or t("report.diagnostics"))}</summary>'
              + "".join(parts) + "</details>")


def _check_no_personal(df: pd.DataFrame, path: Path) -> None:
    leaked = [c for c in df.columns if c in PERSONAL_FIELDS]
    if leaked:
        raise ValueError(f"refusing to write personal fields {leaked} to {path}")


def _write_atomic(path: Path, write) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_output(df: pd.DataFrame, path: str | Path, index: bool = False) -> Path:
    """Write a CSV (UTF-8, header row) or Parquet output atomically (temporary file, then
    rename); never writes personal fields. DuckDB's ``COPY`` writes it from the frame's columns
    (no converted copy in pandas, multi-threaded), which matters for per-customer outputs."""
    path = Path(path)
    _check_no_personal(df, path)
    frame = df.reset_index() if index else df
    options = "FORMAT parquet" if path.suffix == ".parquet" else "FORMAT csv, HEADER"

    columns = ", ".join(f'CAST("{c}" AS DATE) AS "{c}"' if _whole_days(frame[c]) else f'"{c}"'
                        for c in frame.columns)

    def copy(tmp: str) -> None:
        with duckdb.connect() as con:
            con.register("output", frame)
            con.execute(f"COPY (SELECT {columns} FROM output) TO '{tmp.replace(chr(39), chr(39) * 2)}' ({options})")

    return _write_atomic(path, copy)


def _whole_days(column: pd.Series) -> bool:
    """A timestamp column without times of day (written as dates)."""
    return pd.api.types.is_datetime64_any_dtype(column) and bool((column.dropna() == column.dropna().dt.normalize()).all())


def write_kpis(data, analysis: str, kpis: dict) -> Path:
    """The report's headline numbers for the portfolio page, as
    ``reports/<unit>/data/<analysis>/kpis.json`` (numbers and plain values only)."""
    text = json.dumps(_finite(kpis), indent=1, ensure_ascii=False, allow_nan=False, default=_jsonable)
    return _write_atomic(data.outputs(analysis) / "kpis.json",
                         lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _finite(x):
    """NaN and infinities as null (JSON has neither), recursively."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if hasattr(x, "to_dict") and not isinstance(x, pd.DataFrame):
        return _finite(x.to_dict())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _jsonable(x):
    if hasattr(x, "to_dict"):
        return x.to_dict()
    if hasattr(x, "isoformat"):
        return x.isoformat()
    if hasattr(x, "item"):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
