"""Presentation helpers for the notebooks: header, headline findings, tables with n, warnings,
and atomic writes of machine-readable outputs. Everything renders as plain HTML that the
report stylesheet (custlib/templates/report.css) styles; nothing loads from the web.
"""

from __future__ import annotations

import html
import os
import tempfile
import uuid
from pathlib import Path

import pandas as pd

from custlib.contract import PERSONAL_FIELDS
from custlib.stats import Unavailable


def _show(markup: str) -> None:
    from IPython.display import HTML, display

    display(HTML(markup))


def header(data) -> None:
    """The line under the report title: unit display name, data period, observation end, run
    date and currency."""
    first, last = data.period()
    p = data.params
    _show(
        f'<div class="cl-header"><p class="cl-meta">{html.escape(p.display_name)} · data {first:%Y-%m-%d} to '
        f"{last:%Y-%m-%d} · observation end {p.observation_end:%Y-%m-%d} · run {data.run_date:%Y-%m-%d}"
        f" · currency {html.escape(p.currency)}</p></div>"
    )


def headline(findings: str | list[str], title: str = "Key findings") -> None:
    """The findings an executive reads first, as a highlighted list."""
    items = [findings] if isinstance(findings, str) else list(findings)
    lis = "".join(f"<li>{html.escape(s)}</li>" for s in items)
    _show(f'<div class="cl-headline"><h3>{html.escape(title)}</h3><ul>{lis}</ul></div>')


def warning(text: str) -> None:
    """A visible caution (small samples, weak evidence, failed checks)."""
    _show(f'<div class="cl-warning">⚠ {html.escape(text)}</div>')


def available(result) -> bool:
    """False, after showing the reason in place of the section, when ``result`` is a
    :class:`custlib.stats.Unavailable`; True otherwise. Notebook use:
    ``if report.available(lc.funnel): report.table(...)``."""
    if isinstance(result, Unavailable):
        _show(f'<div class="cl-unavailable">{html.escape(result.reason)}</div>')
        return False
    return True


def note(text: str) -> None:
    """A short explanatory note under a table or chart."""
    _show(f'<p class="cl-note">{html.escape(text)}</p>')


def table(df: pd.DataFrame, caption: str, n: int | None = None, formats: dict | None = None,
          index: bool = False, max_rows: int = 40) -> None:
    """A captioned table; the caption states n (rows shown if n is not given)."""
    shown = df.head(max_rows)
    formats = {**{c: "{:,}".format for c in shown.columns if pd.api.types.is_integer_dtype(shown[c])},
               **(formats or {})}
    n_text = f"n = {n:,}" if n is not None else f"{len(df):,} rows"
    if len(df) > max_rows:
        n_text += f", first {max_rows} shown"
    table_id = f"t{uuid.uuid4().hex[:8]}"
    body = shown.to_html(index=index, formatters=formats, float_format=lambda x: f"{x:,.2f}",
                         na_rep="–", border=0, classes="cl-table", escape=True, table_id=table_id)
    offset = shown.index.nlevels if index else 0
    right = [offset + i + 1 for i, c in enumerate(shown.columns) if _looks_numeric(shown[c])]
    style = ",".join(f"#{table_id} td:nth-child({k})" for k in right)
    style = f"<style>{style}{{text-align:right}}</style>" if right else ""
    _show(f'<figure class="cl-fig">{style}<figcaption>{html.escape(caption)} ({n_text})</figcaption>'
          f"{body}</figure>")


def _looks_numeric(col: pd.Series) -> bool:
    """Numbers, and text that starts like a number ('12.8% (12.4%–13.3%)'), align right."""
    if pd.api.types.is_numeric_dtype(col):
        return True
    text = col.dropna().astype(str)
    return len(text) > 0 and text.str.match(r"^\s*[-+−–]?[\d.,]+").mean() >= 0.9


def _check_no_personal(df: pd.DataFrame, path: Path) -> None:
    leaked = [c for c in df.columns if c in PERSONAL_FIELDS]
    if leaked:
        raise ValueError(f"refusing to write personal fields {leaked} to {path}")


def write_output(df: pd.DataFrame, path: str | Path, index: bool = False) -> Path:
    """Write a CSV or Parquet output atomically (temporary file, then rename); never writes
    personal fields."""
    path = Path(path)
    _check_no_personal(df, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=index)
        else:
            df.to_csv(tmp, index=index)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
