"""The portfolio page (``reports/index.html``): the business units side by side on the numbers
an executive compares — customers, active buyers, revenue and its trend, concentration, total
expected CLV, value at risk, NPS, the loyalty programme's effect and ROI — each with its
interval, a small revenue trend chart and the unit's top actions, then the links to the reports.

Built from the machine-readable outputs of the run (``reports/<unit>/data/<analysis>/kpis.json``
written by each report) and ``reports/manifest.json``, never from the report HTML.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path

from custlib.contract import ANALYSES
from custlib.present import fmt
from custlib.present.i18n import name, set_language, t

# (analysis whose kpis.json holds it, key, catalogue label); kinds come from the file
KPI_ROWS = [
    ("segmentation", "customers", "portfolio.customers"),
    ("segmentation", "active_buyers", "portfolio.active_buyers"),
    ("segmentation", "revenue_12m", "portfolio.revenue_12m"),
    ("segmentation", "top20_share", "portfolio.concentration"),
    ("segmentation", "gini", "portfolio.gini"),
    ("lifecycle", "clv_total", "portfolio.clv_total"),
    ("lifecycle", "value_at_risk", "portfolio.value_at_risk"),
    ("satisfaction", "nps", "portfolio.nps"),
    ("loyalty_impact", "effect", "portfolio.loyalty_effect"),
    ("loyalty_impact", "roi", "portfolio.loyalty_roi"),
    ("marketing", "campaign_revenue", "portfolio.campaign_revenue"),
]


def read_kpis(reports: Path, unit: str, manifest: dict) -> dict[str, dict]:
    """``{analysis: kpis}`` of one unit, for the reports that have a published HTML (a report
    whose last run failed keeps its last good numbers, as it keeps its last good page)."""
    published = {r["analysis"] for r in manifest["reports"] if r["unit"] == unit and r.get("html")}
    out = {}
    for analysis in ANALYSES:
        path = reports / unit / "data" / analysis / "kpis.json"
        if analysis in published and path.exists():
            out[analysis] = json.loads(path.read_text(encoding="utf-8"))
    return out


def page_language(manifest: dict) -> str:
    """The language most units' reports use (English on a tie)."""
    counts = Counter(p.get("language", "en") for p in manifest["parameters"].values())
    return "zh" if counts["zh"] > counts["en"] else "en"


def _cell(entry, currency: str) -> str:
    """One KPI as "estimate (interval)", a plain count, or "not measured"."""
    if entry is None:
        return f'<span class="cl-muted">{html.escape(t("portfolio.not_measured"))}</span>'
    if not isinstance(entry, dict):
        return html.escape(fmt.value(entry, "count"))
    if entry.get("estimate") is None:
        return f'<span class="cl-muted">{html.escape(t("portfolio.not_measured"))}</span>'
    kind = entry.get("kind", "number")
    cur = entry.get("currency", currency)
    main = fmt.value(entry["estimate"], kind, currency=cur, compact=True)
    ci = fmt.interval(entry, kind, currency=cur, compact=True) if entry.get("ci_low") is not None else ""
    return html.escape(main) + (f'<br><span class="cl-ci">95% CI {html.escape(ci)}</span>' if ci else "")


def _revenue_cell(entry, currency: str) -> str:
    """Net revenue of the last 12 months and its change against the 12 months before."""
    if not entry or entry.get("current") is None:
        return _cell(None, currency)
    trend = "" if entry.get("estimate") is None else (
        f'<br><span class="cl-ci">{html.escape(t("portfolio.revenue_trend"))}: '
        f'{html.escape(fmt.cell(entry, "change"))}</span>')
    return html.escape(fmt.value(entry["current"], "money", currency=currency, compact=True)) + trend


def sparkline(months: list[str], values: list[float], width: int = 220, height: int = 48) -> str:
    """A small inline SVG line of monthly values (last 24 months) with first and last month."""
    values, months = values[-24:], months[-24:]
    if len(values) < 2:
        return ""
    lo, hi = min(values + [0.0]), max(values)
    span = (hi - lo) or 1.0
    step = (width - 4) / (len(values) - 1)
    points = " ".join(f"{2 + i * step:.1f},{2 + (height - 16) * (1 - (v - lo) / span):.1f}" for i, v in enumerate(values))
    return (f'<svg class="cl-spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
            f'<polyline fill="none" stroke="#2f6f9f" stroke-width="1.8" points="{points}"/>'
            f'<text x="2" y="{height - 2}" font-size="10" fill="#616e7c">{html.escape(months[0])}</text>'
            f'<text x="{width - 2}" y="{height - 2}" font-size="10" fill="#616e7c" text-anchor="end">'
            f"{html.escape(months[-1])}</text></svg>")


def _top_actions(unit_kpis: dict[str, dict], n: int = 5) -> list[str]:
    """Up to ``n`` actions, taken in turn from each report (each report lists its own by priority)."""
    lists = [k.get("actions", []) for k in unit_kpis.values()]
    turns = (lst[i] for i in range(max(map(len, lists), default=0)) for lst in lists if i < len(lst))
    return list(dict.fromkeys(turns))[:n]


def _unit_rows(manifest: dict) -> dict[str, list[dict]]:
    by_unit: dict[str, list[dict]] = {}
    for r in manifest["reports"]:
        by_unit.setdefault(r["unit"], []).append(r)
    return by_unit


def _report_links(rows: list[dict]) -> str:
    items = []
    for r in rows:
        title = html.escape(t(f"analysis.{r['analysis']}"))
        link = f'<a href="{html.escape(r["html"])}">{title}</a>' if r.get("html") else title
        status = f'<span class="status-{r["status"].replace(" ", "-")}">{html.escape(t("portfolio.status." + r["status"]))}</span>'
        detail = ""
        if r["status"] == "not available" and r.get("error"):  # error: "needs <table>, <table>"
            tables = ", ".join(name("table", x) for x in r["error"].removeprefix("needs ").split(", "))
            detail = f' <span class="cl-reason">{html.escape(t("portfolio.needs", tables=tables))}</span>'
        elif r["status"] == "failed":
            detail = f' <span class="cl-error">{html.escape(r.get("error") or "")}</span>'
        if r["status"] in ("failed", "refused") and r.get("html"):
            detail += f' <span class="cl-reason">{html.escape(t("portfolio.kept"))}</span>'
        items.append(f"<li>{link} · {status}{detail}</li>")
    return f'<ul class="cl-links">{"".join(items)}</ul>'


def page_body(manifest: dict, reports: Path) -> tuple[str, str, str]:
    """Title, body HTML and language of the portfolio page."""
    language = page_language(manifest)
    set_language(language)
    by_unit = _unit_rows(manifest)
    units = list(by_unit)
    params = manifest["parameters"]
    kpis = {u: read_kpis(reports, u, manifest) for u in units}
    names = {u: params.get(u, {}).get("display_name", u) for u in units}
    currency = {u: params.get(u, {}).get("currency", "") for u in units}
    ok = sum(r["status"] == "ok" for r in manifest["reports"])
    parts = [f'<div class="cl-header"><h1>{html.escape(t("portfolio.title"))}</h1><p class="cl-meta">'
             + html.escape(t("portfolio.run_summary", ok=ok, total=len(manifest["reports"]),
                             when=manifest["run_finished"].replace("T", " ")))
             + f'</p></div><p>{html.escape(t("portfolio.intro"))}</p>']
    head = "".join(f"<th>{html.escape(names[u])}</th>" for u in units)
    rows = []
    for analysis, key, label in KPI_ROWS:
        cells = []
        for u in units:
            entry = kpis[u].get(analysis, {}).get(key)
            cells.append(_revenue_cell(entry, currency[u]) if key == "revenue_12m" else _cell(entry, currency[u]))
        rows.append(f"<tr><th>{html.escape(t(label))}</th>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    spark = [sparkline(**{"months": m["month"], "values": m["revenue"]}) if m else ""
             for m in (kpis[u].get("segmentation", {}).get("monthly_revenue") for u in units)]
    rows.append(f"<tr><th>{html.escape(t('portfolio.monthly_revenue'))}</th>"
                + "".join(f"<td>{s}</td>" for s in spark) + "</tr>")
    parts.append(f'<table class="cl-portfolio"><tr><th></th>{head}</tr>{"".join(rows)}</table>')
    for u in units:
        refusals = sorted({r["error"] for r in by_unit[u] if r["status"] == "refused" and r.get("error")})
        actions = _top_actions(kpis[u])
        parts.append(f'<h2>{html.escape(names[u])}</h2>'
                     + "".join(f'<div class="cl-warning">⚠ {html.escape(x)}</div>' for x in refusals))
        if actions:
            parts.append(f"<h3>{html.escape(t('portfolio.top_actions'))}</h3><ul>"
                         + "".join(f"<li>{html.escape(a)}</li>" for a in actions) + "</ul>")
        parts.append(f"<h3>{html.escape(t('portfolio.reports'))}</h3>{_report_links(by_unit[u])}")
    return t("portfolio.title"), "".join(parts), language
