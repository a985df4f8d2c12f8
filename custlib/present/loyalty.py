"""The loyalty-impact report (notebook 03) from a :class:`custlib.loyalty.LoyaltyResult` and the
unit's params: findings, section texts, display tables, chart data, warnings, the collapsed
diagnostics block, the effects file and the KPIs of the portfolio page, in the report language.

Every sentence that states a window, a cut, a cost or a direction is built here from params and
the result (``lags`` -> "months 1–12", ``value_tier_cuts`` -> "the first 80%", the sign and
interval of an estimate -> "raises" / "lowers" / "no clear change")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from custlib import report
from custlib.causal.att import MISSING_LEVEL, ATTResult
from custlib.causal.did import CohortDiD
from custlib.loyalty import MAX_CONTROLS, LoyaltyResult
from custlib.plots import loyalty as loyalty_plots
from custlib.present import fmt
from custlib.present.i18n import language, name, t
from custlib.report import Finding
from custlib.stats import Estimate, Unavailable

OUTPUT_FILE = "loyalty_effects.csv"
BALANCE_ROWS = 15


# -- names -------------------------------------------------------------------------------------

def tier_name(tier: str, params) -> str:
    """Display name of a tier: the client's term from params in Chinese (积分, VIP会员), the
    catalogue's name in English; ``all`` = all members."""
    terms = params.loyalty.terms
    if language() == "zh" and tier in terms:
        return terms[tier]
    return name("loyalty_tier", tier)


def method_name(method: str, control: str, params) -> str:
    """Display name of an estimation method against a comparison group; the main estimator
    (params' method and comparison group) is marked."""
    text = name("loyalty_method", method)
    main = method == params.loyalty.main_estimator and control == params.loyalty.control_group
    return t("loyalty.methods.main", method=text) if main else text


def _control_of(method: str, params) -> tuple[str, str]:
    """(method, comparison group) of a method code of the effects table (``aipw_<group>`` =
    AIPW against the other comparison group)."""
    base, _, group = method.partition("_")
    if base == "aipw" and group:
        return base, group
    return method, params.loyalty.control_group


def segment_name(segment: str, params, capital: bool = True) -> str:
    """Display name of a value segment at launch (客户价值 from params: "High value" / 高价值) or
    of new customers; ``capital=False`` inside a sentence."""
    for v in params.segmentation.value_tiers:
        if v.name == segment:
            text = t("loyalty.segment_value", name=v.chinese if language() == "zh" else v.name)
            return text[:1].upper() + text[1:] if capital else text
    return name("loyalty_segment", segment)


def covariate_name(code: str) -> str:
    """Display name of a column of the propensity design matrix: ``tenure_months`` ->
    "Tenure (months)", ``region=West`` -> "Region: West" (category values by the segmentation
    profiles' display names, else as they are, Chinese included), ``pre_order_value_missing`` ->
    "Value per order before enrollment: missing"."""
    if "=" in code:
        column, value = code.split("=", 1)
        if value == MISSING_LEVEL:
            return t("loyalty.diagnostics.missing_value", name=name("loyalty_covariate", column))
        return t("loyalty.diagnostics.covariate_value", name=name("loyalty_covariate", column),
                 value=name(f"profile_value.{column}", value))
    if code.endswith("_missing"):
        return t("loyalty.diagnostics.missing_value", name=name("loyalty_covariate", code[: -len("_missing")]))
    return name("loyalty_covariate", code)


def _label(params, tier: str, method: str, segment: str = "all", control: str | None = None) -> str:
    """"VIP · Doubly robust AIPW · all not yet enrolled": what an estimate is, for warnings and
    notes (the comparison group only when it is not the params' one, the segment when not all).
    ``method``: a method code of the effects table, or a plain method with its ``control``."""
    base, implied = _control_of(method, params)
    control = control or implied
    parts = [tier_name(tier, params), name("loyalty_method", base)]
    parts += [name("loyalty_control", control)] if control != params.loyalty.control_group else []
    parts += [segment_name(segment, params)] if segment != "all" else []
    return " · ".join(parts)


# -- estimates ---------------------------------------------------------------------------------

def _row_estimate(row, n: str = "n_treated") -> dict:
    """An estimate of a tidy result row with the treated count as its n (for 'too few')."""
    return {"estimate": row["estimate"], "ci_low": row["ci_low"], "ci_high": row["ci_high"], "n": row[n]}


def _direction(e) -> str:
    """raises / lowers / unclear from the sign of the interval."""
    if e["ci_low"] > 0:
        return "raises"
    if e["ci_high"] < 0:
        return "lowers"
    return "unclear"


def _magnitude(e) -> dict:
    """The estimate as a size (a decrease as a positive number) for "lowers ... by"."""
    return {"estimate": -e["estimate"], "ci_low": -e["ci_high"], "ci_high": -e["ci_low"], "n": e["n"]}


def _cell(e, kind: str, small_n: int, **options) -> str:
    return fmt.cell(e, kind, small_n=small_n, **options)


def _roi_estimate(row) -> dict:
    return {"estimate": row["roi"], "se": row["roi_se"], "ci_low": row["roi_ci_low"], "ci_high": row["roi_ci_high"],
            "n": int(row["n_treated"])}


def _net_estimate(row, prefix: str = "net") -> dict:
    return {"estimate": row[prefix], "ci_low": row[f"{prefix}_ci_low"], "ci_high": row[f"{prefix}_ci_high"],
            "n": int(row["n_treated"])}


# -- the executive layer -----------------------------------------------------------------------

def _naive_finding(res: LoyaltyResult) -> Finding | None:
    if isinstance(res.naive, Unavailable):
        return None
    r = res.naive.set_index("tier").loc["all"]
    if r["n_members"] < res.small_sample_n or not np.isfinite(r["relative_gap"]):
        return None
    gap = {"estimate": r["relative_gap"], "ci_low": r["relative_ci_low"], "ci_high": r["relative_ci_high"],
           "n": r["n_members"]}
    more = gap["estimate"] >= 0
    return Finding(t(f"loyalty.findings.naive_{'more' if more else 'fewer'}",
                     gap=fmt.estimate(gap if more else _magnitude(gap), "change", signed=False, n=False)),
                   t("loyalty.findings.naive_action"))


def _effect_finding(res: LoyaltyResult) -> Finding:
    main = res.main_effect("all")
    if isinstance(main, Unavailable):
        return Finding(t("loyalty.findings.effect_missing", reason=main.reason))
    e = main.to_dict()
    way = _direction(e)
    shown = fmt.estimate(_magnitude(e) if way == "lowers" else e, "change", signed=way == "unclear")
    return Finding(t(f"loyalty.findings.effect_{way}", effect=shown), t(f"loyalty.findings.effect_{way}_action"))


def _roi_findings(res: LoyaltyResult, params) -> list[Finding]:
    if isinstance(res.roi, Unavailable):
        return []
    out = []
    for r in res.roi[res.roi["tier"] != "all"].to_dict("records"):
        tier = tier_name(r["tier"], params)
        if r["n_treated"] < res.small_sample_n:
            reason = Unavailable.too_few("loyalty.what.chart_roi", r["n_treated"], res.small_sample_n,
                                         "loyalty.of.compared_members").reason
            out.append(Finding(t("loyalty.findings.roi_missing", tier=tier, reason=reason)))
            continue
        way = {"raises": "pays", "lowers": "loses", "unclear": "unclear"}[_direction(_net_estimate(r))]
        action = t(f"loyalty.findings.roi_{way}_action", tier=tier, uplift=fmt.value(r["estimated_uplift"], "change"),
                   break_even=fmt.value(r["break_even_uplift"], "change"))
        out.append(Finding(t(f"loyalty.findings.roi_{way}", tier=tier,
                             roi=fmt.estimate(_roi_estimate(r), "change", n=False)), action))
    return out


def findings(res: LoyaltyResult, params) -> list[Finding]:
    """At most five findings: the naive gap, what membership itself changes, and whether each
    tier pays for itself, each with its action."""
    items = [_naive_finding(res), _effect_finding(res), *_roi_findings(res, params)]
    return [f for f in items if f is not None]


def warnings(res: LoyaltyResult, params) -> None:
    """A visible warning naming the tier and method estimates that rest on fewer members than
    ``small_sample_n`` (shown as too few in the tables)."""
    small = res.small_samples()
    if len(small):
        which = {_label(params, r.tier, r.method, r.segment)
                 for r in small.itertuples() if r.method != "cohort_did_roi"}
        report.warning(t("loyalty.warning_small", n=res.small_sample_n, which=", ".join(sorted(which))))


# -- programme economics -----------------------------------------------------------------------

def _money(x, currency: str) -> str:
    return fmt.value(x, "money", currency=currency)


def _plain(x: float) -> str:
    """A parameter value as written: 1 not 1.00, 0.5 as 0.5."""
    return fmt.value(x, "number", digits=0 if float(x).is_integer() else 2)


def roi_table(res: LoyaltyResult, params) -> pd.DataFrame:
    """Net contribution, ROI, estimated and break-even uplift per tier and for all members."""
    small, cur = res.small_sample_n, params.currency
    rows = []
    for r in res.roi.to_dict("records"):
        rows.append({
            t("loyalty.roi.tier"): tier_name(r["tier"], params),
            t("loyalty.roi.net"): _cell(_net_estimate(r), "money", small, currency=cur),
            t("loyalty.roi.roi"): _cell(_roi_estimate(r), "change", small),
            t("loyalty.roi.uplift"): ("–" if pd.isna(r["estimated_uplift"]) else _cell(
                {"estimate": r["estimated_uplift"], "ci_low": r["estimated_uplift_ci_low"],
                 "ci_high": r["estimated_uplift_ci_high"], "n": r["n_treated"]}, "change", small)),
            t("loyalty.roi.break_even"): fmt.value(r["break_even_uplift"], "change"),
            t("loyalty.roi.annual"): _cell(_net_estimate(r, "annual_net"), "money", small, currency=cur)})
    return pd.DataFrame(rows)


def roi_costs_table(res: LoyaltyResult, params) -> pd.DataFrame:
    """How the net contribution per member-month is built (revenue, margin, costs) and the
    member-months of the last 12 months (diagnostics)."""
    cur = params.currency
    return pd.DataFrame({
        t("loyalty.roi.tier"): res.roi["tier"].map(lambda x: tier_name(x, params)),
        t("loyalty.roi.revenue"): res.roi["incremental_revenue"].map(lambda x: _money(x, cur)),
        t("loyalty.roi.margin"): res.roi["incremental_margin"].map(lambda x: _money(x, cur)),
        t("loyalty.roi.benefit_cost"): res.roi["fixed_cost"].map(lambda x: _money(x, cur)),
        t("loyalty.roi.liability"): res.roi["points_liability"].map(lambda x: _money(x, cur)),
        t("loyalty.roi.net"): res.roi["net"].map(lambda x: _money(x, cur)),
        t("loyalty.roi.member_months"): res.roi["member_months_12m"].map(lambda x: fmt.value(x, "count"))})


def roi_section(res: LoyaltyResult, params) -> bool:
    """Section: does the programme pay for itself (intro from the cost params, table); False
    with the reason when the unit's data cannot tell."""
    p = params.loyalty
    costs = ", ".join(t("loyalty.roi.cost_item", cost=_money(c, params.currency), tier=tier_name(k, params))
                      for k, c in p.cost_per_member_month.items())
    report.section(t("loyalty.roi.title"), t(
        "loyalty.roi.intro", margin=fmt.value(p.margin_rate, "pct"), costs=costs,
        points=_plain(p.points_per_currency),
        currency_unit=fmt.value(1, "money", currency=params.currency, digits=0),
        point_value=_money(p.point_value, params.currency), redemption=fmt.value(p.redemption_rate, "pct")))
    if not report.available(res.roi):
        return False
    report.table(roi_table(res, params), t("loyalty.roi.caption"), n=res.n_members)
    return True


def _enough(res: LoyaltyResult, frame: pd.DataFrame, what: str) -> pd.DataFrame | Unavailable:
    """Rows with at least ``small_sample_n`` treated and a finite estimate (charts cannot carry
    a 'too few' note); :class:`Unavailable` if none."""
    ok = frame[(frame["n_treated"] >= res.small_sample_n) & np.isfinite(frame["estimate"].astype(float))]
    if len(ok):
        return ok.reset_index(drop=True)
    return Unavailable.too_few(what, int(frame["n_treated"].max()) if len(frame) else 0, res.small_sample_n,
                               "loyalty.of.compared_members")


def roi_chart(res: LoyaltyResult, params) -> pd.DataFrame | Unavailable:
    """Net contribution per member-month with interval per tier (label, estimate, ci_low,
    ci_high, n) for :func:`custlib.plots.loyalty.roi`."""
    r = res.roi[res.roi["tier"] != "all"]
    d = pd.DataFrame({"label": r["tier"].map(lambda x: tier_name(x, params)), "estimate": r["net"],
                      "ci_low": r["net_ci_low"], "ci_high": r["net_ci_high"], "n_treated": r["n_treated"]})
    return _enough(res, d, "loyalty.what.chart_roi")


# -- naive gap, DiD, propensity methods ---------------------------------------------------------

def naive_table(res: LoyaltyResult, params) -> pd.DataFrame:
    """Members' and never-enrolled customers' orders per month and the relative gap, per tier."""
    n = res.naive
    return pd.DataFrame({
        t("loyalty.roi.tier"): n["tier"].map(lambda x: tier_name(x, params)),
        t("loyalty.naive.members"): n["member_mean"].map(lambda x: fmt.value(x, "number", digits=2)),
        t("loyalty.naive.non_members"): n["non_member_mean"].map(lambda x: fmt.value(x, "number", digits=2)),
        t("loyalty.naive.gap"): [_cell({"estimate": r.relative_gap, "ci_low": r.relative_ci_low,
                                        "ci_high": r.relative_ci_high, "n": r.n_members}, "change", res.small_sample_n)
                                 for r in n.itertuples()],
        t("loyalty.naive.n_members"): n["n_members"].map(lambda x: fmt.value(x, "count")),
        t("loyalty.naive.n_non_members"): n["n_non_members"].map(lambda x: fmt.value(x, "count"))})


def naive_section(res: LoyaltyResult, params) -> None:
    """Section: the naive member vs non-member gap, and why it misleads."""
    report.section(t("loyalty.naive.title"), t("loyalty.naive.intro"))
    if report.available(res.naive):
        report.table(naive_table(res, params), t("loyalty.naive.caption"))


def did_intro(params) -> str:
    """What the DiD compares, with the window ("months 1–12" from ``lags``), the baseline months
    and the lead months of the params."""
    p = params.loyalty
    window = t("loyalty.did.window_one") if p.lags == 1 else t("loyalty.did.window", lags=p.lags)
    return t("loyalty.did.intro", controls=t(f"loyalty.did.controls.{p.control_group}"), pre_months=p.pre_months,
             window=window, leads=p.leads)


def did_section(res: LoyaltyResult, params) -> bool:
    """Section: the staggered DiD (:func:`did_intro`); False with the reason when it cannot be
    estimated."""
    report.section(t("loyalty.did.title"), did_intro(params))
    return report.available(res.did)


def event_study_chart(res: LoyaltyResult, params) -> pd.DataFrame | Unavailable:
    """The event-study curve of the tiers with at least ``small_sample_n`` members compared,
    labelled by tier (for :func:`custlib.plots.loyalty.event_study`)."""
    enough = _enough(res, res.did.overall, "loyalty.what.chart_event")
    if isinstance(enough, Unavailable):
        return enough
    curve = res.did.event_study[res.did.event_study["tier"].isin(enough["tier"])]
    return curve.assign(label=curve["tier"].map(lambda x: tier_name(x, params))).reset_index(drop=True)


def _orders_effects(res: LoyaltyResult) -> pd.DataFrame:
    t_ = res.effects_table()
    return t_[t_["outcome"].str.startswith("monthly_orders") & (t_["segment"] == "all")
              & (t_["method"] != "naive_gap")]


def methods_table(res: LoyaltyResult, params) -> pd.DataFrame:
    """Relative and absolute effect on monthly orders per tier and method, with the comparison
    group of each."""
    rows = []
    for (tier, method), g in _orders_effects(res).groupby(["tier", "method"], sort=False):
        rel, ab = g[g["outcome"] == "monthly_orders_relative"], g[g["outcome"] == "monthly_orders"]
        base, control = _control_of(method, params)
        n = int(g["n_treated"].min())
        rows.append({
            t("loyalty.methods.tier"): tier_name(tier, params),
            t("loyalty.methods.method"): method_name(base, control, params),
            t("loyalty.methods.compared_with"): name("loyalty_control", control),
            t("loyalty.methods.relative"): (_cell(_row_estimate(rel.iloc[0]) | {"n": n}, "change", res.small_sample_n)
                                            if len(rel) else "–"),
            t("loyalty.methods.absolute"): _cell(_row_estimate(ab.iloc[0]) | {"n": n}, "number", res.small_sample_n,
                                                 signed=True, digits=3),
            t("loyalty.methods.n_treated"): fmt.value(g["n_treated"].iloc[0], "count"),
            t("loyalty.methods.n_control"): fmt.value(g["n_control"].iloc[0], "count")})
    return pd.DataFrame(rows)


def methods_section(res: LoyaltyResult, params) -> bool:
    """Section: the propensity methods (intro with the windows from params) and the table of
    every method's effect on orders; False with the reason when none can be estimated."""
    p = params.loyalty
    report.section(t("loyalty.methods.title"), t("loyalty.methods.intro", pre_months=p.pre_months,
                                                 post_months=p.post_months))
    if not report.available(res.propensity):
        return False
    report.table(methods_table(res, params), t("loyalty.methods.caption"))
    return True


def method_chart(res: LoyaltyResult, params) -> pd.DataFrame | Unavailable:
    """Relative effect on monthly orders of every method and tier with enough members (label,
    estimate, ci_low, ci_high, n_treated) for :func:`custlib.plots.loyalty.method_comparison`."""
    e = _orders_effects(res)
    e = e[e["outcome"] == "monthly_orders_relative"]

    def label(r) -> str:
        base, control = _control_of(r.method, params)
        text = f"{tier_name(r.tier, params)} · {name('loyalty_method_short', base)}"
        if control != params.loyalty.control_group:
            text += f" ({name('loyalty_control', control)})"
        return text

    return _enough(res, e.assign(label=[label(r) for r in e.itertuples()]), "loyalty.what.chart_effects")


# -- segments and other outcomes ----------------------------------------------------------------

def segment_table(res: LoyaltyResult, params) -> pd.DataFrame:
    """Main-estimator effect on monthly orders per value segment at launch (客户价值)."""
    order = [v.name for v in params.segmentation.value_tiers]
    s = res.segments.assign(rank=lambda d: d["segment"].map({k: i for i, k in enumerate(order)}).fillna(len(order)))
    s = s.sort_values("rank", kind="stable")
    rel, ab = s[s["scale"] == "relative"], s[s["scale"] == "absolute"].set_index("segment")
    small = res.small_sample_n
    return pd.DataFrame({
        t("loyalty.segments.segment"): rel["segment"].map(lambda x: segment_name(x, params)),
        t("loyalty.methods.relative"): [_cell(_row_estimate(r), "change", small) for _, r in rel.iterrows()],
        t("loyalty.methods.absolute"): [_cell(_row_estimate(ab.loc[r["segment"]]), "number", small, signed=True,
                                              digits=3) for _, r in rel.iterrows()],
        t("loyalty.methods.n_treated"): rel["n_treated"].map(lambda x: fmt.value(x, "count")),
        t("loyalty.methods.n_control"): rel["n_control"].map(lambda x: fmt.value(x, "count"))}).reset_index(drop=True)


def segments_section(res: LoyaltyResult, params) -> None:
    """Section: the effect by value segment at launch; the cut points and names from the
    segmentation params."""
    cuts = params.segmentation.value_tier_cuts
    names = [segment_name(v.name, params, capital=False) for v in params.segmentation.value_tiers]
    report.section(t("loyalty.segments.title"), t(
        "loyalty.segments.intro", first=fmt.value(cuts[0], "pct"), next=fmt.value(cuts[1] - cuts[0], "pct"),
        high=names[0], mid=names[1], low=names[2]))
    if report.available(res.segments):
        report.table(segment_table(res, params), t("loyalty.segments.caption"))


def other_outcomes_table(res: LoyaltyResult, params) -> pd.DataFrame | None:
    """Spend, active months, spend per order and retention per tier (None when none has an
    estimate); the missing ones are named by :func:`other_outcomes_missing`."""
    cur, small = params.currency, res.small_sample_n
    rows = []
    for key, result, scale, kind in (("spend", res.did_spend, "absolute", "money"),
                                     ("spend_relative", res.did_spend, "relative", "change"),
                                     ("active", res.did_active, "absolute", "pp"),
                                     ("order_value", res.order_value, "absolute", "money"),
                                     ("order_value_relative", res.order_value, "relative", "change")):
        if isinstance(result, Unavailable):
            continue
        frame = result.overall if isinstance(result, CohortDiD) else result
        for _, r in frame[frame["scale"] == scale].iterrows():
            rows.append((t(f"loyalty.other.{key}"), r["tier"], r["method"],
                         _cell(_row_estimate(r), kind, small, currency=cur, signed=kind != "money"), r))
    if not isinstance(res.retention, Unavailable):
        label = t("loyalty.other.retention", months=res.params.retention_months)
        for _, r in res.retention.iterrows():
            rows.append((label, r["tier"], "aipw", _cell(_row_estimate(r), "pp", small), r))
    if not rows:
        return None
    return pd.DataFrame({
        t("loyalty.other.outcome"): [r[0] for r in rows],
        t("loyalty.methods.tier"): [tier_name(r[1], params) for r in rows],
        t("loyalty.methods.method"): [name("loyalty_method", r[2]) for r in rows],
        t("loyalty.other.effect"): [r[3] for r in rows],
        t("loyalty.methods.n_treated"): [fmt.value(r[4]["n_treated"], "count") for r in rows],
        t("loyalty.methods.n_control"): [fmt.value(r[4]["n_control"], "count") for r in rows]})


def other_outcomes_missing(res: LoyaltyResult) -> list[str]:
    """One sentence per outcome of :func:`other_outcomes_table` that has no estimate."""
    months = res.params.retention_months
    return [t("loyalty.other.missing", what=t(f"loyalty.other.missing_what.{key}", months=months), reason=r.reason)
            for key, r in (("spend", res.did_spend), ("order_value", res.order_value), ("retention", res.retention))
            if isinstance(r, Unavailable)]


def other_outcomes_section(res: LoyaltyResult, params) -> None:
    """Section: spend, order value and retention (intro with the regular-buyer rule from params)."""
    p = params.loyalty
    report.section(t("loyalty.other.title"), t("loyalty.other.intro", orders=_plain(p.regular_buyer_orders),
                                               pre_months=p.pre_months))
    table = other_outcomes_table(res, params)
    if table is not None:
        report.table(table, t("loyalty.other.caption"))
    for sentence in other_outcomes_missing(res):
        report.note(sentence)


# -- diagnostics -------------------------------------------------------------------------------

def pretrend_table(res: LoyaltyResult, params) -> pd.DataFrame:
    """Joint test that the months before enrollment show no difference, per tier."""
    p = res.did.pretrend

    def reading(r) -> str:
        if r["tier"] in res.did.pretrend_missing:
            return res.did.pretrend_missing[r["tier"]].reason
        return t("loyalty.diagnostics.pretrend_warn" if r["p_value"] < 0.05 else "loyalty.diagnostics.pretrend_ok")

    return pd.DataFrame({
        t("loyalty.roi.tier"): p["tier"].map(lambda x: tier_name(x, params)),
        t("loyalty.diagnostics.lead_months"): p["leads_tested"].map(lambda x: fmt.value(x, "count")),
        t("loyalty.diagnostics.chi2"): p["chi2"].map(lambda x: fmt.value(x, "number", digits=2)),
        t("loyalty.diagnostics.p"): p["p_value"].map(fmt.pvalue),
        t("loyalty.diagnostics.reading"): [reading(r) for _, r in p.iterrows()]})


def _aipw_all(res: LoyaltyResult) -> ATTResult | Unavailable:
    """The AIPW fit on all tiers behind the balance and overlap diagnostics."""
    r = res.propensity if isinstance(res.propensity, Unavailable) else res.propensity["all", "aipw"]
    if isinstance(r, ATTResult) and r.n_treated < res.small_sample_n:
        return Unavailable.too_few("loyalty.what.diagnostics", r.n_treated, res.small_sample_n,
                                   "loyalty.of.compared_members")
    return r


def balance(fit: ATTResult) -> pd.DataFrame:
    """The ``BALANCE_ROWS`` pre-enrollment covariates with the largest imbalance before weighting
    (enrollment-month indicators left out: balanced by design), with a display ``label``."""
    b = fit.balance[~fit.balance["covariate"].str.startswith("cohort=")]
    b = b.reindex(b["smd_before"].abs().sort_values(ascending=False).index).head(BALANCE_ROWS)
    return b.assign(label=b["covariate"].map(covariate_name)).reset_index(drop=True)


def balance_table(fit: ATTResult) -> pd.DataFrame:
    """:func:`balance` for display: covariate names, means (two decimals) and standardized
    differences (three, so that a good balance does not read as a column of zeros)."""
    b = balance(fit)
    number = lambda x: fmt.value(x, "number", digits=2)
    smd = lambda x: fmt.value(x, "number", digits=3)
    return pd.DataFrame({
        t("loyalty.diagnostics.characteristic"): b["label"],
        t("loyalty.diagnostics.treated_mean"): b["treated_mean"].map(number),
        t("loyalty.diagnostics.control_mean"): b["control_mean"].map(number),
        t("loyalty.diagnostics.control_weighted"): b["control_mean_weighted"].map(number),
        t("loyalty.diagnostics.smd_before"): b["smd_before"].map(smd),
        t("loyalty.diagnostics.smd_after"): b["smd_after"].map(smd)})


def not_estimated(res: LoyaltyResult, params) -> list[str]:
    """Why estimates of a tier or method inside an available section are missing, one sentence
    per reason naming what it stops."""
    stopped: dict[str, list[str]] = {}
    for did in (res.did, res.did_spend, res.did_active):
        if isinstance(did, CohortDiD):
            for tier, u in did.missing.items():
                stopped.setdefault(u.reason, []).append(_label(params, tier, "cohort_did"))
    for results, control in ((res.propensity, params.loyalty.control_group),
                             (res.propensity_all_customers, res.other_control_group)):
        if not isinstance(results, Unavailable):
            for (tier, method), u in results.items():
                if isinstance(u, Unavailable):
                    stopped.setdefault(u.reason, []).append(_label(params, tier, method, control=control))
    return [t("loyalty.not_estimated", what=", ".join(dict.fromkeys(whats)), reason=reason)
            for reason, whats in stopped.items()]


def diagnostics(res: LoyaltyResult, params) -> None:
    """The collapsed "Method and diagnostics" block: method and ROI definitions, what could not
    be estimated, the pre-trend test, the cost build-up, covariate balance and overlap."""
    p = params.loyalty
    main = name("loyalty_method", p.main_estimator)
    parts = [report.note_html(t("loyalty.diagnostics.method", main=main,
                                controls=t(f"loyalty.did.controls.{p.control_group}")))]
    if res.sampled_controls:
        parts.append(report.note_html(t("loyalty.diagnostics.sampled_controls",
                                        controls=fmt.value(MAX_CONTROLS, "count"))))
    if not isinstance(res.propensity, Unavailable):
        matched = [u for (_, m), u in res.propensity.items() if m == "matching" and isinstance(u, ATTResult)]
        if matched and p.matching_caliper is not None:
            parts.append(report.note_html(t("loyalty.diagnostics.matching", neighbours=p.matching_neighbours,
                                            caliper=p.matching_caliper,
                                            unmatched=fmt.value(sum(u.n_unmatched for u in matched), "count"))))
    parts += [report.note_html(s) for s in not_estimated(res, params)]
    if isinstance(res.did, CohortDiD) and len(res.did.pretrend):
        parts.append(report.table_html(pretrend_table(res, params), t("loyalty.diagnostics.pretrend_caption")))
    if not isinstance(res.roi, Unavailable):
        parts.append(report.table_html(roi_costs_table(res, params), t("loyalty.roi.costs_caption")))
    fit = _aipw_all(res)
    if isinstance(fit, ATTResult):
        parts.append(report.note_html(t("loyalty.diagnostics.balance_note")))
        parts.append(report.table_html(balance_table(fit), t("loyalty.diagnostics.balance_caption"),
                                       n=fit.n_treated))
        parts.append(report.figure_html(loyalty_plots.balance(balance(fit))))
        parts.append(report.figure_html(loyalty_plots.overlap(fit.scores)))
    else:
        parts.append(report.note_html(fit.reason))
    report.details(parts)


# -- outputs and KPIs ---------------------------------------------------------------------------

def write_effects(res: LoyaltyResult, output_dir) -> Path:
    """``<output_dir>/loyalty_effects.csv``: :meth:`LoyaltyResult.effects_table`."""
    return report.write_output(res.effects_table(), Path(output_dir) / OUTPUT_FILE)


def write_outputs(res: LoyaltyResult, data) -> None:
    """The effects file in the unit's output folder, and a note naming it."""
    folder = data.outputs("loyalty_impact")
    write_effects(res, folder)
    report.section(t("report.outputs"), t("loyalty.outputs.note"))
    report.note(t("report.written", folder=f"reports/{data.params.id}/data/loyalty_impact", files=OUTPUT_FILE))


def kpis(res: LoyaltyResult, params) -> dict:
    """The portfolio page's loyalty KPIs: ``effect`` (main relative effect on monthly orders, all
    tiers, kind change), ``roi`` (net contribution / programme cost of all tiers over the last
    12 months, kind change, with interval) and up to three ``actions``; a KPI the data cannot
    support is left out."""
    out = {}
    main = res.main_effect("all")
    if isinstance(main, Estimate):
        out["effect"] = {**main.to_dict(), "kind": "change"}
    if not isinstance(res.roi, Unavailable):
        tiers = res.roi[res.roi["tier"] != "all"]
        if (tiers["n_treated"] >= res.small_sample_n).all():
            r = res.roi.set_index("tier").loc["all"]
            out["roi"] = {**Estimate(r["roi"], r["roi_se"], r["roi_ci_low"], r["roi_ci_high"], int(r["n_treated"]),
                                     "net contribution / programme cost").to_dict(), "kind": "change"}
    actions = [_effect_finding(res), *_roi_findings(res, params)]  # what to do, not how to read the gap
    out["actions"] = [f.action for f in actions if f.action][:3]
    return out

