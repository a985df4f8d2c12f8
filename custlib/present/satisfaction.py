"""What the satisfaction report shows, from :class:`custlib.satisfaction.SatisfactionResult`
and the unit's params, in the report language: the executive findings, one function per
section (heading, intro, tables, charts, notes and warnings), the collapsed "Method and
diagnostics" block, the output files and the KPIs of the portfolio page.

Every sentence that states a threshold or window (NPS groups, CSAT top box, lapse threshold,
horizon, the months of the change test) is generated from params; every number comes from the
result through :mod:`custlib.present.fmt`. NPS groups are named by the catalogue in English and
by ``satisfaction.nps_group_names`` of params in Chinese.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from custlib import report, satisfaction
from custlib.params import UnitParams
from custlib.plots import satisfaction as plots
from custlib.present import fmt
from custlib.present.i18n import language, name, t
from custlib.report import Finding
from custlib.satisfaction import SatisfactionResult
from custlib.stats import Unavailable

CSAT_TOP = 5  # the CSAT scale is 1-5 (data contract)
NPS_TOP = 10
SHOWN_DIMENSIONS = ("segment", "channel", "region", "customer type")


# -- names and phrases from params ---------------------------------------------------------------
def group_name(group: str, params: UnitParams, title: bool = False) -> str:
    """An NPS group's name: the params' ``nps_group_names`` in Chinese; in English the
    catalogue's ("promoters", or "Promoters" with ``title``)."""
    if language() == "zh" and params.satisfaction.nps_group_names.get(group):
        return params.satisfaction.nps_group_names[group]
    return name("sat_group", group) if title else t(f"satisfaction.group.{group}")


def _band(low: int, high: int) -> str:
    return str(low) if low == high else t("satisfaction.band", low=low, high=high)


def score_bands(params: UnitParams) -> dict[str, str]:
    """The score ranges of the NPS groups ("9–10", "7–8", "0–6") and of CSAT satisfied
    ("4–5"), from params."""
    cfg = params.satisfaction
    passives = (_band(cfg.detractor_max + 1, cfg.promoter_min - 1) if cfg.promoter_min - cfg.detractor_max > 1
                else t("satisfaction.scores.no_passives"))
    return {"promoters": _band(cfg.promoter_min, NPS_TOP), "passives": passives,
            "detractors": _band(0, cfg.detractor_max), "csat": _band(cfg.csat_satisfied_min, CSAT_TOP)}


def _period(period: tuple[pd.Timestamp, pd.Timestamp]) -> str:
    return t("satisfaction.period", start=f"{period[0]:%Y-%m}", end=f"{period[1]:%Y-%m}")


def _window(months: int) -> dict[str, str]:
    """"the last 6 months" / "the 6 months before" for the change test's window."""
    if months == 1:
        return {"recent": t("satisfaction.recent_month"), "before": t("satisfaction.before_month")}
    return {"recent": t("satisfaction.recent_months", months=months),
            "before": t("satisfaction.before_months", months=months)}


def value_name(dimension: str, value, params: UnitParams) -> str:
    """Display name of a group value: RFM segments by their Chinese name in Chinese, channels
    and customer types from the catalogue, regions and months as they are in the data."""
    if dimension == "segment" and language() == "zh":
        chinese = {s.name: s.chinese for s in params.segmentation.rfm_segments if s.chinese}
        return chinese.get(value, str(value))
    if dimension == "channel":
        return name("sat_channel", value)
    if dimension == "customer type":
        return name("sat_customer_type", value)
    if dimension == "unit":
        return params.display_name
    return str(value)


def _attribute(attribute: str, title: bool = False) -> str:
    return name("sat_attribute", attribute) if title else t(f"satisfaction.attribute.{attribute}")


def _scale(outcome: str) -> str:
    """The scale of the overall rating: "0–10" (NPS question) or "1–5" (CSAT)."""
    return _band(0, NPS_TOP) if outcome == "nps" else _band(1, CSAT_TOP)


def _outcome(params: UnitParams) -> str:
    return t(f"satisfaction.outcome.{params.satisfaction.driver_outcome}")


def _estimate(row, column: str = "estimate") -> dict:
    """The estimate dict (estimate, ci_low, ci_high, n) of ``column`` of a result row: its
    interval is ``<column>_ci_low`` / ``<column>_ci_high`` when the row has them, else
    ``ci_low`` / ``ci_high``."""
    lo, hi = ((f"{column}_ci_low", f"{column}_ci_high") if f"{column}_ci_low" in row.index
              else ("ci_low", "ci_high"))
    return {"estimate": row[column], "ci_low": row[lo], "ci_high": row[hi], "n": row["n"]}




def _too_few(sat: SatisfactionResult) -> bool:
    return sat.nps.n < sat.small_n


# -- executive findings ----------------------------------------------------------------------------
def findings(sat: SatisfactionResult, params: UnitParams, service: Finding | None = None) -> list[Finding]:
    """At most five findings: NPS, CSAT, whether NPS is changing, the fix that comes first and
    what detractors cost; a part the responses cannot support says why. A ``service`` finding
    (:func:`custlib.present.service.finding`) takes the place of CSAT, which the scores section
    and the portfolio page still show."""
    if _too_few(sat):
        return [Finding(t("satisfaction.findings.too_few", n=f"{sat.nps.n:,}", needed=f"{sat.small_n:,}"))]
    bands = score_bands(params)
    e = sat.nps
    balance = "positive" if e.ci_low > 0 else "negative" if e.ci_high < 0 else "even"
    out = [
        Finding(t(f"satisfaction.findings.nps_{balance}", nps=fmt.estimate(e, "nps"),
                  promoters=bands["promoters"], detractors=bands["detractors"])),
        service or Finding(t("satisfaction.findings.csat", csat=fmt.estimate(sat.csat, "pct"), band=bands["csat"],
                             top=CSAT_TOP)),
        _change_finding(sat, params),
        _driver_finding(sat),
        _cost_finding(sat, params),
    ]
    if service is not None:
        out.append(out.pop(1))  # after what detractors cost
    return [f for f in out if f is not None]


def _change_finding(sat: SatisfactionResult, params: UnitParams) -> Finding:
    c = sat.change
    if isinstance(c, Unavailable):
        return Finding(c.reason)
    a, b = c.nps_previous, c.nps_recent
    if min(a.n, b.n) < sat.small_n:
        return Finding(t("satisfaction.findings.change_few", n_previous=f"{a.n:,}", n_recent=f"{b.n:,}",
                         previous=_period(c.previous), recent=_period(c.recent)))
    x = c.nps_change
    direction = "none" if not c.nps_p_value < 0.05 else "up" if x.estimate > 0 else "down"
    text = t(f"satisfaction.findings.change_{direction}", **_window(params.satisfaction.compare_months),
             period=_period(c.recent), change=fmt.value(x.estimate, "nps", digits=1),
             ci=fmt.interval(x, "nps", digits=1), p=fmt.pvalue(c.nps_p_value))
    action = t("satisfaction.actions.change_down", period=_period(c.recent)) if direction == "down" else ""
    return Finding(text, action)


def _first_fix(sat: SatisfactionResult) -> pd.Series:
    return sat.priority[sat.priority["first_fix"]].iloc[0]


def _driver_finding(sat: SatisfactionResult) -> Finding:
    if isinstance(sat.priority, Unavailable):
        return Finding(sat.priority.reason)
    r = _first_fix(sat)
    key = "fix_first" if r.quadrant == "fix_first" else "fix_gap"
    text = t(f"satisfaction.findings.{key}", attribute=_attribute(r.attribute, title=True),
             importance=fmt.estimate(_estimate(r, "importance"), "pct", n=False), outcome=t(
                 f"satisfaction.outcome.{sat.cfg.driver_outcome}"),
             satisfied=sat.cfg.csat_satisfied_min, top=CSAT_TOP)
    return Finding(text, t("satisfaction.actions.fix_first", attribute=_attribute(r.attribute)))


def _cost_finding(sat: SatisfactionResult, params: UnitParams) -> Finding:
    if isinstance(sat.lapse, Unavailable):
        return Finding(sat.lapse.reason)
    hr = sat.lapse.hazard_ratio()
    if hr.ci_low > 1:
        text = t("satisfaction.findings.cost_sooner", revenue=fmt.estimate(sat.at_stake.revenue, "money", currency=params.currency, n=False, compact=True),
                 horizon=f"{sat.at_stake.horizon_days:,}")
        return Finding(text, t("satisfaction.actions.call_detractors"))
    key = "cost_later" if hr.ci_high < 1 else "cost_none"
    return Finding(t(f"satisfaction.findings.{key}", hr=fmt.estimate(hr, "ratio", n=False)))


# -- sections ----------------------------------------------------------------------------------------
def score_table(rows: pd.DataFrame, dimension: str, params: UnitParams, small_n: int) -> pd.DataFrame:
    """Rows of :func:`custlib.satisfaction.score_table` for the report: the group, responses,
    NPS and CSAT with intervals and the shares of the NPS groups; groups with fewer than
    ``small_n`` responses read "too few"."""
    small = rows["n"] < small_n

    def share(column: str) -> list[str]:
        return ["–" if few else fmt.value(x, "pct") for x, few in zip(rows[column], small, strict=True)]

    return pd.DataFrame({
        name("sat_dimension", dimension): [value_name(dimension, v, params) for v in rows["group_value"]],
        t("satisfaction.scores.responses"): [fmt.value(n, "count") for n in rows["n"]],
        t("satisfaction.scores.nps"): [fmt.cell(_estimate(r, "nps"), "nps", small_n=small_n)
                                       for _, r in rows.iterrows()],
        group_name("promoter", params, title=True): share("promoters"),
        group_name("passive", params, title=True): share("passives"),
        group_name("detractor", params, title=True): share("detractors"),
        t("satisfaction.scores.csat"): [fmt.cell(_estimate(r, "csat"), "pct", small_n=small_n)
                                        for _, r in rows.iterrows()],
    })


def score_warnings(sat: SatisfactionResult, params: UnitParams) -> list[str]:
    """Cautions on the unit's scores: too few responses overall, or an NPS group nobody is in."""
    if _too_few(sat):
        return [t("satisfaction.findings.too_few", n=f"{sat.nps.n:,}", needed=f"{sat.small_n:,}")]
    bands = score_bands(params)
    return [t("satisfaction.scores.no_group", group=group_name(g, params), band=bands[f"{g}s"], n=f"{sat.nps.n:,}")
            for g in ("promoter", "detractor") if getattr(sat.nps, f"{g}s") == 0]


def scores(sat: SatisfactionResult, params: UnitParams) -> None:
    """Section: how satisfied customers are (NPS and CSAT of the unit), with the NPS groups and
    the CSAT top box stated from params."""
    report.section(t("satisfaction.scores.title"), t("satisfaction.scores.intro", **score_bands(params), top=CSAT_TOP))
    unit = sat.scores[sat.scores["group"] == "unit"]
    report.table(score_table(unit, "unit", params, sat.small_n), t("satisfaction.scores.caption"), n=sat.nps.n)
    for text in score_warnings(sat, params):
        report.warning(text)


def change_table(change: satisfaction.PeriodChange, small_n: int) -> pd.DataFrame:
    """NPS (points) and CSAT (%) in the two periods and the change (CSAT in percentage points)
    with p-values; a period with fewer than ``small_n`` responses, and the change when either
    period has, read "too few"."""
    few = min(change.nps_previous.n, change.nps_recent.n) < small_n
    periods = {"previous": _period(change.previous), "recent": _period(change.recent),
               "change": t("satisfaction.change.change")}
    rows = []
    for r in change.summary.itertuples():
        kind = ("nps" if r.measure == "nps" else "pp") if r.period == "change" else (
            "nps" if r.measure == "nps" else "pct")
        is_few = few if r.period == "change" else r.n < small_n
        cell = (t("fmt.too_few", n=fmt.value(r.n, "count")) if is_few
                else fmt.cell(r._asdict(), kind, digits=1 if kind == "nps" and r.period == "change" else None))
        rows.append({t("satisfaction.change.measure"): t(f"satisfaction.change.{r.measure}"),
                     t("satisfaction.change.period"): periods[r.period],
                     t("satisfaction.change.estimate"): cell,
                     t("satisfaction.change.responses"): fmt.value(r.n, "count"),
                     t("satisfaction.change.p"): "" if r.period != "change" or is_few else fmt.pvalue(r.p_value)})
    return pd.DataFrame(rows)


def change(sat: SatisfactionResult, params: UnitParams) -> None:
    """Section: NPS by month (chart) and the test of change between the two periods."""
    cfg = params.satisfaction
    previous, recent = satisfaction.compare_periods(params.observation_end, cfg.compare_months)
    report.section(t("satisfaction.change.title"),
                   t("satisfaction.change.intro", **_window(cfg.compare_months), period=_period(recent),
                     previous=_period(previous)), level=3)
    months = sat.groups["month"]
    if report.available(months):
        report.chart(plots.nps_trend(months))
        small = int((months["n"] < sat.small_n).sum())
        if small:
            report.note(t("satisfaction.scores.small_months", k=small, months=len(months), needed=f"{sat.small_n:,}"))
    if report.available(sat.change):
        report.table(change_table(sat.change, sat.small_n), t("satisfaction.change.caption"),
                     n=sat.change.nps_previous.n + sat.change.nps_recent.n)


def groups(sat: SatisfactionResult, params: UnitParams) -> None:
    """Section: NPS and CSAT by segment, order channel, region and customer type (table and
    chart each; groups with too few responses stay out of the charts)."""
    report.section(t("satisfaction.groups.title"), t("satisfaction.groups.intro", needed=f"{sat.small_n:,}"), level=3)
    for dimension in SHOWN_DIMENSIONS:
        report.section(t("satisfaction.groups.heading", dimension=t(f"satisfaction.dimension.{dimension}")),
                       level=4)
        rows = sat.groups[dimension]
        if not report.available(rows):
            continue
        report.table(score_table(rows, dimension, params, sat.small_n),
                     t("satisfaction.scores.caption_by", dimension=t(f"satisfaction.dimension.{dimension}")),
                     n=sat.nps.n)
        shown = rows[rows["n"] >= sat.small_n]
        labels = [value_name(dimension, v, params) for v in shown["group_value"]]
        report.chart(plots.nps_by_group(shown.assign(label=labels), dimension=dimension, ref=sat.nps.estimate))


def drivers_table(sat: SatisfactionResult) -> pd.DataFrame:
    """The key drivers for the report: rank, attribute, share of the variation explained,
    how often among the top two in bootstrap resamples, mean rating and priority quadrant."""
    d = sat.drivers.summary
    quadrant = sat.priority.set_index("attribute")["quadrant"]
    return pd.DataFrame({
        t("satisfaction.drivers.rank"): d["rank"],
        t("satisfaction.drivers.attribute"): [_attribute(a, title=True) for a in d["attribute"]],
        t("satisfaction.drivers.importance"): [fmt.cell(_estimate(r, "importance"), "pct") for _, r in d.iterrows()],
        t("satisfaction.drivers.top_two"): [fmt.value(x, "pct", digits=0) for x in d["top2_share"]],
        t("satisfaction.drivers.rating", top=CSAT_TOP): [
            fmt.cell(_estimate(r, "mean_score"), "number", digits=2) for _, r in d.iterrows()],
        t("satisfaction.drivers.priority"): [name("sat_quadrant", quadrant[a]) for a in d["attribute"]],
    })


def drivers(sat: SatisfactionResult, params: UnitParams) -> None:
    """Section: which attribute ratings drive the overall rating (chart, table, R², attributes
    left out)."""
    cfg = params.satisfaction
    attributes = [a for a in satisfaction.ATTRIBUTES if a not in sat.left_out]
    report.section(t("satisfaction.drivers.title"), t(
        "satisfaction.drivers.intro", outcome=_outcome(params), scale=_scale(cfg.driver_outcome), top=CSAT_TOP,
        k=len(attributes),
        attributes=", ".join(_attribute(a) for a in attributes), reps=f"{cfg.bootstrap_reps:,}"))
    if report.available(sat.drivers):
        kd = sat.drivers
        labelled = kd.summary.assign(label=[_attribute(a, title=True) for a in kd.summary["attribute"]])
        report.chart(plots.drivers(labelled, outcome=cfg.driver_outcome))
        report.table(drivers_table(sat), t("satisfaction.drivers.caption", outcome=_outcome(params)), n=kd.n_)
        report.note(t("satisfaction.drivers.r2", k=len(kd.attributes), r2=fmt.value(kd.r2_, "pct"),
                      outcome=_outcome(params), n=fmt.value(kd.n_, "count")))
        for attribute, why in sat.left_out.items():
            report.warning(t("satisfaction.drivers.left_out", attribute=_attribute(attribute, title=True),
                             why=why.reason))


def priority(sat: SatisfactionResult, params: UnitParams) -> None:
    """Section: the priority matrix (importance against rating) and the fix that comes first."""
    satisfied = params.satisfaction.csat_satisfied_min
    report.section(t("satisfaction.priority.title"),
                   t("satisfaction.priority.intro", satisfied=satisfied, top=CSAT_TOP))
    if not report.available(sat.priority):
        return
    p = sat.priority.assign(label=[_attribute(a, title=True) for a in sat.priority["attribute"]])
    report.chart(plots.priority_matrix(p, satisfied_score=satisfied, top_score=CSAT_TOP))
    r = _first_fix(sat)
    report.note(t("satisfaction.priority.first_fix", attribute=_attribute(r.attribute, title=True),
                  importance=fmt.estimate(_estimate(r, "importance"), "pct", n=False),
                  rating=fmt.estimate(_estimate(r, "mean_score"), "number", digits=2, n=False), top=CSAT_TOP))


def lapse_table(by_group: pd.DataFrame, params: UnitParams, small_n: int) -> pd.DataFrame:
    """:func:`custlib.satisfaction.lapse_by_group` for the report; groups of fewer than
    ``small_n`` customers read "too few"."""
    days = f"{params.satisfaction.horizon_days:,}"
    return pd.DataFrame({
        t("satisfaction.lapse.group"): [group_name(g, params, title=True) for g in by_group["nps_group"]],
        t("satisfaction.lapse.customers"): [fmt.value(n, "count") for n in by_group["n"]],
        t("satisfaction.lapse.lapses"): [fmt.value(n, "count") for n in by_group["lapses"]],
        t("satisfaction.lapse.share", days=days): [fmt.cell(_estimate(r, "lapsed_share"), "pct", small_n=small_n)
                                                   for _, r in by_group.iterrows()],
    })


def _term_names(terms, params: UnitParams) -> list[str]:
    reference = group_name("promoter", params)
    return [t("satisfaction.lapse.group_vs", group=group_name(x, params, title=True), reference=reference)
            if x in ("detractor", "passive") else name("sat_term", x) for x in terms]


def cost_sentence(sat: SatisfactionResult, params: UnitParams) -> str:
    """What detractors' lapse costs: the hazard ratio against promoters and, when detractors
    lapse sooner, their extra lapses and the revenue at stake within the horizon."""
    m, stake = sat.lapse, sat.at_stake
    hr = m.hazard_ratio()
    common = {"n": fmt.value(m.n_, "count"), "lapses": fmt.value(m.events_, "count")}
    if hr.ci_low > 1:
        return t("satisfaction.lapse.cost_sooner", hr=fmt.value(hr.estimate, "ratio"), ci=fmt.interval(hr, "ratio"),
                 detractors=fmt.value(stake.detractors, "count"),
                 excess=fmt.estimate(stake.excess_lapses, "count", n=False),
                 horizon=f"{stake.horizon_days:,}", revenue=fmt.estimate(stake.revenue, "money", currency=params.currency, n=False, compact=True), **common)
    key = "cost_later" if hr.ci_high < 1 else "cost_none"
    return t(f"satisfaction.lapse.{key}", hr=fmt.estimate(hr, "ratio", n=False), **common)


def lapse(sat: SatisfactionResult, params: UnitParams) -> None:
    """Section: whether detractors lapse sooner (lapse definition from params, Kaplan–Meier
    curves and shares by NPS group, hazard ratios against promoters, revenue at stake)."""
    cfg = params.satisfaction
    report.section(t("satisfaction.lapse.title"), t(
        "satisfaction.lapse.intro", lapse_days=f"{sat.lapse_days:,}", followup_end=f"{sat.followup_end:%Y-%m-%d}",
        after=fmt.value(sat.responses_after_followup, "count"), customers=fmt.value(len(sat.lapse_data), "count"),
        lapses=fmt.value(int(sat.lapse_data["lapsed"].sum()), "count")))
    names = {g: group_name(g, params, title=True) for g in satisfaction.GROUPS}
    if report.available(sat.lapse_groups):
        report.chart(plots.lapse_curves(sat.lapse_data, names=names, horizon_days=cfg.horizon_days))
        report.table(lapse_table(sat.lapse_groups, params, sat.small_n),
                     t("satisfaction.lapse.caption", days=f"{cfg.horizon_days:,}"), n=len(sat.lapse_data))
    if not report.available(sat.lapse):
        return
    groups_only = sat.lapse.summary[sat.lapse.summary["term"].isin(["detractor", "passive"])]
    report.chart(plots.hazard_ratios(groups_only.assign(label=_term_names(groups_only["term"], params))))
    report.note(cost_sentence(sat, params))
    counts = sat.lapse.data_["nps_group"].value_counts()
    few = [t("satisfaction.lapse.count", n=fmt.value(counts[g], "count"), group=group_name(g, params))
           for g in ("promoter", "detractor") if counts[g] < sat.small_n]
    if few:
        report.warning(t("satisfaction.lapse.few", counts=", ".join(few), needed=f"{sat.small_n:,}"))


def terms_table(top: pd.DataFrame, params: UnitParams) -> pd.DataFrame:
    """:func:`custlib.text.top_terms` for the report: typical of (group), term, uses by
    detractors and by promoters, z."""
    a, b = top.attrs["groups"]
    return pd.DataFrame({
        t("satisfaction.comments.typical_of"): [group_name(g, params, title=True) for g in top["side"]],
        t("satisfaction.comments.term"): top["term"],
        t("satisfaction.comments.uses", group=group_name(a, params)): [fmt.value(x, "count") for x in top["n_a"]],
        t("satisfaction.comments.uses", group=group_name(b, params)): [fmt.value(x, "count") for x in top["n_b"]],
        t("satisfaction.comments.z"): [fmt.value(z, "number", digits=1, signed=True) for z in top["z"]],
    })


def comments(sat: SatisfactionResult, params: UnitParams) -> None:
    """Section: the terms most typical of detractors' and of promoters' comments, per language."""
    report.section(t("satisfaction.comments.title"), t("satisfaction.comments.intro"))
    for lang, top in sat.comments.items():
        if report.available(top):
            report.table(terms_table(top, params),
                         t("satisfaction.comments.caption", language=t(f"satisfaction.language.{lang}")),
                         n=sat.terms.attrs["n_comments"][lang])


# -- method and diagnostics, outputs, KPIs ----------------------------------------------------------
def diagnostics(sat: SatisfactionResult, params: UnitParams) -> None:
    """The collapsed "Method and diagnostics" block: the standardized OLS coefficients of the
    drivers and the bootstrap, the full Cox model, and how the revenue at stake is computed."""
    parts = []
    if not isinstance(sat.drivers, Unavailable):
        kd = sat.drivers
        d = kd.summary
        coefficients = pd.DataFrame({
            t("satisfaction.drivers.attribute"): [_attribute(a, title=True) for a in d["attribute"]],
            t("satisfaction.diagnostics.coefficient"): [fmt.cell(_estimate(r, "std_coef"), "number", digits=2)
                                                        for _, r in d.iterrows()],
            t("satisfaction.diagnostics.p"): [fmt.pvalue(kd.ols_.pvalues[a]) for a in d["attribute"]],
        })
        parts.append(report.table_html(coefficients, t("satisfaction.diagnostics.ols_caption", outcome=_outcome(
            params), r2=fmt.value(kd.r2_, "number", digits=2)), n=kd.n_))
        parts.append(report.note_html(t("satisfaction.diagnostics.bootstrap", reps=f"{kd.bootstrap_reps:,}",
                                        used=f"{int(kd.bootstrap_.notna().all(axis=1).sum()):,}")))
    if not isinstance(sat.lapse, Unavailable):
        m = sat.lapse
        s = m.summary
        cox = pd.DataFrame({
            t("satisfaction.diagnostics.term"): _term_names(s["term"], params),
            t("satisfaction.diagnostics.hazard_ratio"): [fmt.cell(_estimate(r, "hazard_ratio"), "ratio")
                                                         for _, r in s.iterrows()],
            t("satisfaction.diagnostics.p"): [fmt.pvalue(p) for p in s["p_value"]],
        })
        parts.append(report.table_html(cox, t("satisfaction.diagnostics.cox_caption", lapses=f"{m.events_:,}",
                                              concordance=fmt.value(m.cph_.concordance_index_, "number", digits=2)),
                                       n=m.n_))
        parts.append(report.note_html(t("satisfaction.diagnostics.revenue", horizon=f"{sat.at_stake.horizon_days:,}",
                                        excess=fmt.estimate(sat.at_stake.excess_lapses, "count", n=False))))
    report.details(parts)


def write_outputs(sat: SatisfactionResult, data) -> list[Path]:
    """``nps.csv`` (:func:`custlib.satisfaction.score_table`) and, when estimated,
    ``drivers.csv`` (the key drivers' summary) in ``data.outputs("satisfaction")``, and a
    section listing them; returns the paths."""
    folder = data.outputs("satisfaction")
    paths = [report.write_output(sat.scores, folder / "nps.csv")]
    if not isinstance(sat.drivers, Unavailable):
        paths.append(report.write_output(sat.drivers.summary, folder / "drivers.csv"))
    report.section(t("report.outputs"), t("satisfaction.outputs.files"))
    report.note(t("report.written", folder=str(folder.relative_to(data.project_root)),
                  files=", ".join(p.name for p in paths)))
    return paths


def kpis(sat: SatisfactionResult, params: UnitParams) -> dict:
    """The portfolio page's satisfaction KPIs: ``nps`` (points, kind nps), ``csat`` (share,
    kind pct) and up to three ``actions`` from the findings; with too few responses, only the
    actions (the page says "not measured")."""
    out = {} if _too_few(sat) else {"nps": {**sat.nps.to_dict(), "kind": "nps"},
                                    "csat": {**sat.csat.to_dict(), "kind": "pct"}}
    return {**out, "actions": [f.action for f in findings(sat, params) if f.action][:3]}
