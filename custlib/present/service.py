"""What the satisfaction report shows of customer service, from
:class:`custlib.service.ServiceResult` and the unit's params, in the report language: how fast
tickets are answered and resolved, the monthly trend, what a slow first reply costs, complaints,
the collapsed method block, the ``service.csv`` output and a finding.

The SLA, the delay cap, the complaint categories, the retention window and the horizon are
stated from params; every number comes from the result through :mod:`custlib.present.fmt`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from custlib import report, service
from custlib.params import UnitParams
from custlib.plots import service as plots
from custlib.present import fmt
from custlib.present.i18n import name, t
from custlib.report import Finding
from custlib.service import ServiceResult
from custlib.stats import Unavailable

REPLIES = ("on_time", "late", "capped")  # lapse curves: answered within the SLA, late, at the cap


# -- small helpers ---------------------------------------------------------------------------------
def _unit_of(hours: float) -> str:
    """The unit a duration reads best in: minutes below an hour, hours up to three days, days."""
    return "min" if hours < 1 else "h" if hours < 72 else "d"


def _in_unit(hours: float, unit: str) -> str:
    x = {"min": 60 * hours, "h": hours, "d": hours / 24}[unit]
    return fmt.value(x, "number", digits=0 if x >= 100 or unit == "min" else 1)


def duration(hours: float) -> str:
    """"3 min", "18.9 h", "3.2 days" (catalogue units)."""
    if fmt.missing(hours):
        return "–"
    unit = _unit_of(hours)
    return t(f"service.unit.{unit}", x=_in_unit(hours, unit))


def duration_cell(e: dict, small_n: int = 0) -> str:
    """A duration with its 95% interval in the estimate's unit: "18.9 h (18.1–20.0 h)"; an
    unbounded side reads "from 55 h" / "up to 3 min"; below ``small_n`` "too few"."""
    n = e["n"]
    if small_n and not fmt.missing(n) and n < small_n:
        return t("fmt.too_few", n=fmt.value(n, "count"))
    if fmt.missing(e["estimate"]):
        return "–"
    unit = _unit_of(e["estimate"])
    est = t(f"service.unit.{unit}", x=_in_unit(e["estimate"], unit))
    lo, hi = e["ci_low"], e["ci_high"]
    if fmt.missing(lo) and fmt.missing(hi):
        return est
    if fmt.missing(hi):
        ci = t("service.fmt.from", x=t(f"service.unit.{unit}", x=_in_unit(lo, unit)))
    elif fmt.missing(lo):
        ci = t("service.fmt.up_to", x=t(f"service.unit.{unit}", x=_in_unit(hi, unit)))
    else:
        ci = t(f"service.unit.{unit}", x=f"{_in_unit(lo, unit)}–{_in_unit(hi, unit)}")
    return f"{est} ({ci})"


def _estimate(row, column: str) -> dict:
    return {"estimate": row[column], "ci_low": row[f"{column}_ci_low"], "ci_high": row[f"{column}_ci_high"],
            "n": row[f"{column}_n"]}


def group_name(dimension: str, value, params: UnitParams | None = None) -> str:
    """Display name of a group: service channels and ticket categories from the catalogue, the
    unit by its display name, months as they are."""
    if dimension == "unit":
        return params.display_name if params is not None else t("service.all")
    if dimension in ("channel", "category"):
        return name(f"svc_{dimension}", value)
    return str(value)


def _missing_table(part, title: str, level: int = 2) -> bool:
    """Without the tickets a section is its heading and the note saying which table it needs."""
    if isinstance(part, Unavailable) and part.key == "unavailable.needs_table":
        report.section(title, level=level)
        report.available(part)
        return True
    return False


def _hours(x: float) -> str:
    return f"{x:g}"


def _complaint_words(params: UnitParams) -> str:
    return ", ".join(name("svc_category", c) for c in params.service.complaint_categories)


# -- finding ----------------------------------------------------------------------------------------
def finding(svc: ServiceResult, params: UnitParams) -> Finding | None:
    """One finding for the key findings: what slow first replies cost (with an action), or
    how fast tickets are answered when the cost cannot be estimated; None without tickets."""
    if not isinstance(svc.lapse, Unavailable):
        hr = svc.lapse.hazard_ratio()
        if hr.ci_low > 1 and not isinstance(svc.cost, Unavailable):
            return Finding(t("service.findings.cost", hr=fmt.estimate(hr, "ratio", n=False),
                             sla=_hours(params.service.sla_hours),
                             revenue=fmt.estimate(svc.cost.revenue, "money", currency=params.currency, n=False,
                                                  compact=True),
                             per_hour=fmt.value(svc.cost.revenue_per_hour.estimate, "money", currency=params.currency)),
                           t("service.actions.answer_on_time", sla=_hours(params.service.sla_hours),
                             channel=_slowest_channel(svc)))
    if isinstance(svc.times, Unavailable):
        return None
    unit = svc.group_rows("unit").iloc[0]
    return Finding(t("service.findings.speed", median=duration(unit["response_median"]),
                     share=fmt.estimate(_estimate(unit, "sla_share"), "pct", n=False),
                     sla=_hours(params.service.sla_hours)))


def _slowest_channel(svc: ServiceResult) -> str:
    rows = svc.group_rows("channel")
    rows = rows[rows["sla_share_n"] >= svc.small_n]
    if rows.empty:
        return t("service.all_channels")
    return group_name("channel", rows.sort_values("sla_share")["group"].iloc[0])


# -- how fast do we answer? ---------------------------------------------------------------------------
def response_table(rows: pd.DataFrame, dimension: str, params: UnitParams, small_n: int) -> pd.DataFrame:
    """First responses per group: tickets, median and 90th percentile of the hours to the first
    response (95% CI), share within the SLA and share not answered; small groups "too few"."""
    sla = _hours(params.service.sla_hours)
    return pd.DataFrame({
        name("svc_dimension", dimension): [group_name(dimension, g, params) for g in rows["group"]],
        t("service.times.tickets"): [fmt.value(n, "count") for n in rows["tickets"]],
        t("service.times.median"): [duration_cell(_estimate(r, "response_median"), small_n) for _, r in rows.iterrows()],
        t("service.times.p90"): [duration_cell(_estimate(r, "response_p90"), small_n) for _, r in rows.iterrows()],
        t("service.times.within_sla", sla=sla): [fmt.cell(_estimate(r, "sla_share"), "pct", small_n=small_n)
                                                 for _, r in rows.iterrows()],
        t("service.times.unanswered"): [fmt.cell(_estimate(r, "unanswered_share"), "pct", small_n=small_n)
                                        for _, r in rows.iterrows()],
    })


def resolution_table(rows: pd.DataFrame, dimension: str, params: UnitParams, small_n: int) -> pd.DataFrame:
    """Resolutions per group: tickets, median and 90th percentile of the hours from opening to
    resolution (95% CI) and the share resolved."""
    return pd.DataFrame({
        name("svc_dimension", dimension): [group_name(dimension, g, params) for g in rows["group"]],
        t("service.times.tickets"): [fmt.value(n, "count") for n in rows["tickets"]],
        t("service.times.resolution_median"): [duration_cell(_estimate(r, "resolution_median"), small_n)
                                               for _, r in rows.iterrows()],
        t("service.times.resolution_p90"): [duration_cell(_estimate(r, "resolution_p90"), small_n)
                                            for _, r in rows.iterrows()],
        t("service.times.resolved"): [fmt.cell(_estimate(r, "resolved_share"), "pct", small_n=small_n)
                                      for _, r in rows.iterrows()],
    })


def _small_note(rows: pd.DataFrame, small_n: int) -> None:
    few = int((rows["tickets"] < small_n).sum())
    if few:
        report.note(t("service.times.small", k=few, groups=len(rows), needed=f"{small_n:,}"))


def times(svc: ServiceResult, params: UnitParams) -> None:
    """Section: how fast tickets are answered and resolved — the unit's overall figures, first
    responses by channel (table and chart), resolution by category (table)."""
    cfg = params.service
    if _missing_table(svc.times, t("service.times.title")):
        return
    report.section(t("service.times.title"), t("service.times.intro", sla=_hours(cfg.sla_hours),
                                                 cap=_hours(cfg.delay_cap_hours)))
    if not report.available(svc.times):
        return
    unit = svc.group_rows("unit").iloc[0]
    if unit["tickets"] < svc.small_n:
        report.warning(t("service.times.too_few", n=fmt.value(unit["tickets"], "count"), needed=f"{svc.small_n:,}"))
    report.note(t("service.times.overall", tickets=fmt.value(unit["tickets"], "count"),
                  median=duration_cell(_estimate(unit, "response_median")),
                  p90=duration_cell(_estimate(unit, "response_p90")),
                  share=fmt.estimate(_estimate(unit, "sla_share"), "pct", n=False), sla=_hours(cfg.sla_hours),
                  unanswered=fmt.estimate(_estimate(unit, "unanswered_share"), "pct", n=False)))
    channels = svc.group_rows("channel")
    report.table(response_table(channels, "channel", params, svc.small_n), t("service.times.caption_channel"),
                 n=int(unit["tickets"]))
    shown = channels[channels["response_median_n"] >= svc.small_n]
    if len(shown):
        labels = [group_name("channel", g) for g in shown["group"]]
        report.chart(plots.response_times(shown.assign(label=labels), sla_hours=cfg.sla_hours))
    _small_note(channels, svc.small_n)
    categories = svc.group_rows("category")
    report.table(response_table(categories, "category", params, svc.small_n), t("service.times.caption_category"),
                 n=int(unit["tickets"]))
    report.table(resolution_table(categories, "category", params, svc.small_n),
                 t("service.times.caption_resolution"), n=int(unit["tickets"]))
    _small_note(categories, svc.small_n)


def trend(svc: ServiceResult, params: UnitParams) -> None:
    """Section: first responses per month of opening — the share within the SLA and the median
    hours (charts), and the first and last whole months side by side."""
    cfg = params.service
    if _missing_table(svc.times, t("service.trend.title"), level=3):
        return
    report.section(t("service.trend.title"), t("service.trend.intro", sla=_hours(cfg.sla_hours)), level=3)
    if not report.available(svc.times):
        return
    months = svc.group_rows("month")
    if len(months) < 2:
        report.note(t("service.trend.one_month", n=len(months)))
        return
    report.chart(plots.trend(months, measure="sla_share"))
    report.chart(plots.trend(months, measure="response_median", sla_hours=cfg.sla_hours))
    small = int((months["tickets"] < svc.small_n).sum())
    if small:
        report.note(t("service.trend.small", k=small, months=len(months), needed=f"{svc.small_n:,}"))


# -- what does a slow reply cost? ------------------------------------------------------------------
def reply_groups(frame: pd.DataFrame, cap_hours: float) -> pd.Series:
    """``on_time`` (answered within the SLA), ``late`` or ``capped`` (late by the cap or more, or
    never answered) for each row of :func:`custlib.service.lapse_data`."""
    cap = cap_hours / 24
    return pd.Series(["on_time" if d <= 0 else "capped" if d >= cap - 1e-9 else "late" for d in frame["delay_days"]],
                     index=frame.index)


def effects_table(svc: ServiceResult) -> pd.DataFrame:
    """The effects of 24 hours of delay beyond the SLA: the lapse hazard ratio and the change of
    later NPS and CSAT answers, each with its interval, n and p-value."""
    rows = []
    if not isinstance(svc.lapse, Unavailable):
        hr = svc.lapse.hazard_ratio()
        p = float(svc.lapse.summary.set_index("term").loc["delay_days", "p_value"])
        rows.append((t("service.cost.effect_lapse"), fmt.cell(hr, "ratio"), svc.lapse.n_, p))
    for score in ("nps", "csat"):
        s = svc.scores[score]
        if not isinstance(s, Unavailable):
            rows.append((t(f"service.cost.effect_{score}"), fmt.cell(s.slope, "number", digits=2, signed=True),
                         s.slope.n, s.p_value))
    return pd.DataFrame({
        t("service.cost.effect"): [r[0] for r in rows],
        t("service.cost.estimate"): [r[1] for r in rows],
        t("service.cost.n"): [fmt.value(r[2], "count") for r in rows],
        t("service.cost.p"): [fmt.pvalue(r[3]) for r in rows],
    })


def cost_sentence(svc: ServiceResult, params: UnitParams) -> str:
    """What a slow reply costs, in plain words: the hazard ratio per 24 hours beyond the SLA
    and, when slow replies make customers lapse sooner, the revenue at stake in total and per
    hour of delay among the last year's late first replies."""
    m = svc.lapse
    hr = m.hazard_ratio()
    common = {"n": fmt.value(m.n_, "count"), "lapses": fmt.value(m.events_, "count"),
              "sla": _hours(params.service.sla_hours)}
    if hr.ci_low > 1:
        c = svc.cost
        if c.customers == 0:
            return t("service.cost.sooner_none_recent", hr=fmt.value(hr.estimate, "ratio"),
                     ci=fmt.interval(hr, "ratio"), **common)
        money = {"currency": params.currency}
        return t("service.cost.sooner", hr=fmt.value(hr.estimate, "ratio"), ci=fmt.interval(hr, "ratio"),
                 late=fmt.value(c.customers, "count"), hours=fmt.value(c.hours_late, "count"),
                 excess=fmt.estimate(c.lapses, "count", n=False), horizon=f"{c.horizon_days:,}",
                 revenue=fmt.estimate(c.revenue, "money", n=False, compact=True, **money),
                 per_hour=fmt.estimate(c.revenue_per_hour, "money", n=False, **money), **common)
    key = "later" if hr.ci_high < 1 else "none"
    return t(f"service.cost.{key}", hr=fmt.estimate(hr, "ratio", n=False), **common)


def scores_sentence(svc: ServiceResult) -> str | None:
    """The change of later NPS and CSAT answers per 24 hours of delay, or None when neither
    could be estimated."""
    nps, csat = svc.scores["nps"], svc.scores["csat"]
    if isinstance(nps, Unavailable) or isinstance(csat, Unavailable):
        return None
    return t("service.cost.scores", nps=fmt.estimate(nps.slope, "number", digits=2, signed=True, n=False),
             csat=fmt.estimate(csat.slope, "number", digits=2, signed=True, n=False),
             n=fmt.value(nps.slope.n, "count"), late=fmt.value(nps.late, "count"))


def cost(svc: ServiceResult, params: UnitParams) -> None:
    """Section: whether a slow first reply makes customers lapse sooner and answer surveys worse
    (lapse curves by reply speed, the effects table, the plain-language cost sentence)."""
    cfg = params.service
    if _missing_table(svc.lapse, t("service.cost.title"), level=3):
        return
    report.section(t("service.cost.title"), t(
        "service.cost.intro", sla=_hours(cfg.sla_hours), cap=_hours(cfg.delay_cap_hours),
        lapse_days=f"{svc.lapse_days:,}", followup_end=f"{svc.followup_end:%Y-%m-%d}"), level=3)
    if isinstance(svc.lapse_data, pd.DataFrame) and len(svc.lapse_data) >= svc.small_n:
        d = svc.lapse_data.assign(reply=reply_groups(svc.lapse_data, cfg.delay_cap_hours))
        names = {"on_time": t("service.cost.reply.on_time", sla=_hours(cfg.sla_hours)),
                 "late": t("service.cost.reply.late", sla=_hours(cfg.sla_hours), cap=_hours(cfg.delay_cap_hours)),
                 "capped": t("service.cost.reply.capped", cap=_hours(cfg.delay_cap_hours))}
        report.chart(plots.lapse_curves(d, names=names))
    if not report.available(svc.lapse):
        for score in ("nps", "csat"):
            report.available(svc.scores[score])
        return
    table = effects_table(svc)
    report.table(table, t("service.cost.caption", sla=_hours(cfg.sla_hours)), n=svc.lapse.n_)
    report.note(cost_sentence(svc, params))
    sentence = scores_sentence(svc)
    if sentence:
        report.note(sentence)
    else:
        for score in ("nps", "csat"):
            report.available(svc.scores[score])
    late = int((svc.lapse.data_["delay_days"] > 0).sum())
    report.note(t("service.cost.assumption"))
    if late < 2 * svc.small_n:
        report.warning(t("service.cost.few_late", late=fmt.value(late, "count"), needed=f"{svc.small_n:,}"))


# -- complaints -----------------------------------------------------------------------------------
def complaints_table(rates: pd.DataFrame, dimension: str, params: UnitParams) -> pd.DataFrame:
    """Tickets per 1,000 orders (exact Poisson 95% CI) for one dimension of
    :func:`custlib.service.complaint_rates`; by channel, the complaints of all channels first."""
    d = rates[rates["dimension"].isin(["unit", "channel"] if dimension == "channel" else [dimension])]
    labels = [t("service.complaints.all") if dim == "unit" else group_name(dim, g, params)
              for dim, g in zip(d["dimension"], d["group"], strict=True)]
    return pd.DataFrame({
        name("svc_dimension", dimension): labels,
        t("service.complaints.tickets"): [fmt.value(n, "count") for n in d["tickets"]],
        t("service.complaints.rate"): [fmt.cell({**r, "n": r["tickets"]}, "number", digits=2)
                                       for r in d.to_dict("records")],
    })


def retention_table(r: service.ComplaintRetention) -> pd.DataFrame:
    """Customers and the share who bought again within the window after a resolved and an
    unresolved complaint, and the difference (percentage points)."""
    rows = [(t("service.complaints.resolved"), r.resolved, fmt.cell(r.resolved, "pct"), ""),
            (t("service.complaints.unresolved"), r.unresolved, fmt.cell(r.unresolved, "pct"), ""),
            (t("service.complaints.difference"), r.difference, fmt.cell(r.difference, "pp"), fmt.pvalue(r.p_value))]
    return pd.DataFrame({
        t("service.complaints.group"): [x[0] for x in rows],
        t("service.complaints.customers"): [fmt.value(x[1].n, "count") for x in rows],
        t("service.complaints.retained", days=f"{r.days:,}"): [x[2] for x in rows],
        t("service.complaints.p"): [x[3] for x in rows],
    })


def complaints(svc: ServiceResult, params: UnitParams) -> None:
    """Section: complaints per 1,000 orders overall and by channel, tickets per 1,000 orders by
    category, and retention after a resolved against an unresolved complaint (observational)."""
    cfg = params.service
    if _missing_table(svc.complaints, t("service.complaints.title"), level=3):
        return
    report.section(t("service.complaints.title"), t("service.complaints.intro", categories=_complaint_words(params),
                                                      days=f"{cfg.retention_days:,}"), level=3)
    if not report.available(svc.complaints):
        return
    rates = svc.complaints
    unit = rates[rates["dimension"] == "unit"].iloc[0]
    report.note(t("service.complaints.period", start=f"{unit['start']:%Y-%m-%d}", end=f"{unit['end']:%Y-%m-%d}",
                  orders=fmt.value(unit["orders"], "count")))
    report.table(complaints_table(rates, "channel", params), t("service.complaints.caption_channel"),
                 n=int(unit["tickets"]))
    report.table(complaints_table(rates, "category", params), t("service.complaints.caption_category"),
                 n=int(rates.loc[rates["dimension"] == "category", "tickets"].sum()))
    if report.available(svc.retention):
        r = svc.retention
        report.table(retention_table(r), t("service.complaints.caption_retention", days=f"{r.days:,}"),
                     n=r.difference.n)
        key = ("higher" if r.difference.ci_low > 0 else "lower" if r.difference.ci_high < 0 else "same")
        report.note(t(f"service.complaints.retention_{key}", days=f"{r.days:,}",
                      difference=fmt.estimate(r.difference, "pp", n=False)))
        report.note(t("service.complaints.observational"))


# -- method and diagnostics, outputs --------------------------------------------------------------------
def diagnostics(svc: ServiceResult, params: UnitParams) -> None:
    """The collapsed method block of the service sections: the full Cox model, the two
    regressions of later scores, and how the intervals and the revenue at stake are computed."""
    cfg = params.service
    if isinstance(svc.times, Unavailable):
        return
    parts = [report.note_html(t("service.diagnostics.quantiles"))]
    if not isinstance(svc.lapse, Unavailable):
        m = svc.lapse
        s = m.summary
        cox = pd.DataFrame({
            t("service.diagnostics.term"): [name("svc_term", x) for x in s["term"]],
            t("service.diagnostics.hazard_ratio"): [fmt.cell(r, "ratio") for r in
                                                    s.rename(columns={"hazard_ratio": "estimate"}).to_dict("records")],
            t("service.diagnostics.p"): [fmt.pvalue(p) for p in s["p_value"]],
        })
        parts.append(report.table_html(cox, t("service.diagnostics.cox_caption", lapses=f"{m.events_:,}",
                                              concordance=fmt.value(m.cph_.concordance_index_, "number", digits=2)),
                                       n=m.n_))
    scores = {k: v for k, v in svc.scores.items() if not isinstance(v, Unavailable)}
    if scores:
        table = pd.DataFrame({
            t("service.diagnostics.score"): [t(f"service.cost.effect_{k}") for k in scores],
            t("service.diagnostics.interval_regression"): [fmt.cell(v.slope, "number", digits=2, signed=True)
                                                           for v in scores.values()],
            t("service.diagnostics.ols"): [fmt.cell(v.ols, "number", digits=2, signed=True) for v in scores.values()],
            t("service.diagnostics.customers"): [fmt.value(v.customers, "count") for v in scores.values()],
        })
        parts.append(report.table_html(table, t("service.diagnostics.scores_caption"),
                                       n=next(iter(scores.values())).slope.n))
        parts.append(report.note_html(t("service.diagnostics.scores")))
    if not isinstance(svc.cost, Unavailable):
        parts.append(report.note_html(t("service.diagnostics.revenue", horizon=f"{svc.cost.horizon_days:,}",
                                        window=f"{svc.cost.window_days:,}", sla=_hours(cfg.sla_hours))))
    report.details(parts, t("service.diagnostics.title"))


def output_table(svc: ServiceResult) -> pd.DataFrame:
    """Everything the service sections estimate, tidy, one row per number: ``section``
    (times, complaints, retention, outcomes), ``measure``, ``dimension``, ``group``,
    ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``n``, ``unit`` and ``method``. No customer
    appears in it."""
    cols = ["section", "measure", "dimension", "group", "estimate", "se", "ci_low", "ci_high", "n", "unit", "method"]
    parts = []
    if isinstance(svc.times, pd.DataFrame):
        d = svc.times.assign(section="times")
        d["unit"] = d["measure"].map(lambda m: "tickets" if m == "tickets" else "share" if m.endswith("share")
                                     else "hours")
        d["method"] = d["measure"].map(lambda m: "" if m == "tickets" else "Wilson" if m.endswith("share")
                                       else "order-statistic interval")
        parts.append(d)
    if isinstance(svc.complaints, pd.DataFrame):
        d = svc.complaints.assign(section="complaints", unit="per 1,000 orders", method="exact Poisson",
                                  n=svc.complaints["tickets"])
        d["measure"] = d["dimension"].map(lambda x: "tickets_per_1000_orders" if x == "category"
                                          else "complaints_per_1000_orders")
        parts.append(d)
    rows = []

    def add(section, measure, e, unit, group="all"):
        rows.append({"section": section, "measure": measure, "dimension": "unit", "group": group,
                     "estimate": e.estimate, "se": e.se, "ci_low": e.ci_low, "ci_high": e.ci_high, "n": e.n,
                     "unit": unit, "method": e.method})

    if isinstance(svc.retention, service.ComplaintRetention):
        r = svc.retention
        add("retention", f"retained_{r.days}d", r.resolved, "share", "resolved")
        add("retention", f"retained_{r.days}d", r.unresolved, "share", "unresolved")
        add("retention", f"retained_{r.days}d_difference", r.difference, "difference of shares",
            "resolved - unresolved")
    if not isinstance(svc.lapse, Unavailable):
        add("outcomes", "lapse_hazard_ratio_per_24h_delay", svc.lapse.hazard_ratio(), "hazard ratio")
    for score, s in svc.scores.items():
        if not isinstance(s, Unavailable):
            add("outcomes", f"{score}_change_per_24h_delay", s.slope, "points")
            add("outcomes", f"{score}_change_per_24h_delay_ols", s.ols, "points")
    if not isinstance(svc.cost, Unavailable):
        c = svc.cost
        add("outcomes", f"extra_lapses_{c.horizon_days}d_late_first_replies", c.lapses, "customers")
        add("outcomes", f"revenue_at_stake_{c.horizon_days}d_late_first_replies", c.revenue, "currency")
        add("outcomes", "revenue_at_stake_per_hour_of_delay", c.revenue_per_hour, "currency")
    parts.append(pd.DataFrame(rows, columns=cols))
    out = pd.concat([p[cols] for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) \
        else pd.DataFrame(columns=cols)
    return out.astype({"n": "int64"}) if len(out) else out


def write_outputs(svc: ServiceResult, data) -> list[Path]:
    """``service.csv`` (:func:`output_table`) in ``data.outputs("satisfaction")``, written
    atomically, and a note saying so; returns the path (nothing without service tickets)."""
    if isinstance(svc.times, Unavailable):
        return []
    folder = data.outputs("satisfaction")
    path = report.write_output(output_table(svc), folder / "service.csv")
    report.note(t("service.outputs.files", folder=str(folder.relative_to(data.project_root)), file=path.name))
    return [path]
