"""The marketing report (notebook 05) from a :class:`custlib.marketing.MarketingResult` and the
unit's params: findings, section texts, display tables, charts, the collapsed diagnostics
block, the output files and the KPIs of the portfolio page, in the report language.

Each campaign is judged by one main estimate: the regression-adjusted treatment − holdout
difference when it kept a random holdout, the doubly robust AIPW effect on the contacted when
it did not (labelled observational, with the naive gap beside it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from custlib import marketing, report
from custlib.marketing import MarketingResult
from custlib.plots import marketing as plots
from custlib.present import fmt
from custlib.present.i18n import language, name, t
from custlib.present.loyalty import segment_name
from custlib.report import Finding
from custlib.stats import Unavailable

EFFECTS_FILE = "campaign_effects.csv"
NEXT_BEST_FILE = "targets/next_best_category.csv"
BASKET_FILE = "basket_rules.csv"
MAIN_METHOD = {True: "regression_adjusted", False: "aipw"}  # randomised? -> the campaign's main estimate


# -- names and estimates --------------------------------------------------------------------

def campaign_name(res: MarketingResult, campaign_id: str) -> str:
    """The campaign's name from the campaigns table (as the client wrote it), else its id."""
    c = res.campaigns.set_index("campaign_id")
    text = c.at[campaign_id, "campaign_name"] if campaign_id in c.index else None
    return str(text) if isinstance(text, str) and text.strip() else str(campaign_id)


def _estimate(row, n: str = "n_treated") -> dict:
    return {"estimate": row["estimate"], "ci_low": row["ci_low"], "ci_high": row["ci_high"], "n": row[n]}


def _direction(e) -> str:
    """raises / lowers / unclear from the sign of the interval."""
    return "raises" if e["ci_low"] > 0 else "lowers" if e["ci_high"] < 0 else "unclear"




def _uplift_models(res: MarketingResult) -> dict:
    """The campaigns' fitted uplift models (none when the unit has no campaign data)."""
    if not isinstance(res.uplift, dict):
        return {}
    return {c: m for c, m in res.uplift.items() if not isinstance(m, Unavailable)}


def main_effects(res: MarketingResult) -> pd.DataFrame:
    """One row per measured campaign and outcome: its main estimate (:data:`MAIN_METHOD`) for
    all compared customers, with the campaign's ``randomised`` flag, in campaign start order."""
    frames = [f for f in (res.randomised, res.observational) if isinstance(f, pd.DataFrame)]
    if not frames:
        return pd.DataFrame(columns=["campaign", "outcome", "estimate", "ci_low", "ci_high", "n_treated",
                                     "n_control", "randomised"])
    rows = pd.concat(frames, ignore_index=True)
    randomised = res.campaigns.set_index("campaign_id")["randomised"]
    rows["randomised"] = rows["campaign"].map(randomised)
    main = rows[(rows["segment"] == "all") & (rows["method"] == rows["randomised"].map(MAIN_METHOD))]
    order = {c: i for i, c in enumerate(res.campaigns["campaign_id"])}
    return main.sort_values("campaign", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def _conversion(res: MarketingResult) -> pd.DataFrame:
    return main_effects(res).query("outcome == 'conversion'").set_index("campaign")


# -- the executive layer -----------------------------------------------------------------------

def _campaign_findings(res: MarketingResult, params) -> list[Finding]:
    """The best randomised campaign (with its ROI) and the randomised ones without a clear effect."""
    conv = _conversion(res)
    rand = conv[conv["randomised"].astype(bool)]
    if not len(rand):
        return []
    out = []
    roi = res.roi.set_index("campaign") if isinstance(res.roi, pd.DataFrame) else pd.DataFrame()
    best = rand["estimate"].idxmax()
    e = _estimate(rand.loc[best])
    if _direction(e) == "raises":
        text = t("marketing.findings.best", campaign=campaign_name(res, best), effect=fmt.estimate(e, "pp"),
                 window=res.params.window_days)
        action = t("marketing.findings.best_action", campaign=campaign_name(res, best))
        if best in roi.index and np.isfinite(roi.at[best, "roi"]):
            r = roi.loc[best]
            way = _direction({"ci_low": r["roi_ci_low"], "ci_high": r["roi_ci_high"]})
            text += " " + t(f"marketing.findings.roi_{way}", roi=fmt.estimate(
                {"estimate": r["roi"], "ci_low": r["roi_ci_low"], "ci_high": r["roi_ci_high"], "n": r["treated"]},
                "change", n=False))
            model = _uplift_models(res).get(best)
            if model is not None and model.beats_random:  # its target file is written
                action = t(f"marketing.findings.roi_{way}_action", campaign=campaign_name(res, best))
            elif way != "raises":
                action = t(f"marketing.findings.roi_{way}_action_untargeted", campaign=campaign_name(res, best))
        out.append(Finding(text, action))
    flat = [c for c, r in rand.iterrows() if _direction(_estimate(r)) != "raises"]
    if flat:
        names = ", ".join(campaign_name(res, c) for c in flat)
        out.append(Finding(t("marketing.findings.no_effect", n=len(flat), total=len(rand), campaigns=names),
                           t("marketing.findings.no_effect_action", campaigns=names)))
    return out


def _observational_finding(res: MarketingResult) -> Finding | None:
    """A campaign without holdout whose naive gap lies outside its AIPW interval."""
    if not isinstance(res.observational, pd.DataFrame):
        return None
    o = res.observational[res.observational["outcome"] == "conversion"].set_index(["campaign", "method"])
    for cid in o.index.get_level_values(0).unique():
        if (cid, "aipw") not in o.index:
            continue
        gap, aipw = o.loc[(cid, "naive_gap")], o.loc[(cid, "aipw")]
        if not aipw["ci_low"] <= gap["estimate"] <= aipw["ci_high"]:
            return Finding(t("marketing.findings.observational", campaign=campaign_name(res, cid),
                             gap=fmt.value(gap["estimate"], "pp"), effect=fmt.estimate(_estimate(aipw), "pp")),
                           t("marketing.findings.observational_action"))
    return None


def _heterogeneity_finding(res: MarketingResult, params) -> Finding | None:
    """The randomised campaign whose conversion effect differs most clearly across value tiers."""
    if not isinstance(res.heterogeneity, pd.DataFrame):
        return None
    h = res.heterogeneity[(res.heterogeneity["outcome"] == "conversion") & (res.heterogeneity["p_value"] < 0.05)
                          & (res.heterogeneity["segment_type"] == "value_tier")]
    if not len(h):
        return None
    cid = h.sort_values("p_value").iloc[0]["campaign"]
    tiers = res.randomised[(res.randomised["campaign"] == cid) & (res.randomised["outcome"] == "conversion")
                           & (res.randomised["method"] == "regression_adjusted")
                           & (res.randomised["segment_type"] == "value_tier")]
    hi, lo = tiers.loc[tiers["estimate"].idxmax()], tiers.loc[tiers["estimate"].idxmin()]
    return Finding(t("marketing.findings.segments", campaign=campaign_name(res, cid),
                     best=segment_name(hi["segment"], params, capital=False), best_effect=fmt.estimate(_estimate(hi), "pp"),
                     worst=segment_name(lo["segment"], params, capital=False),
                     worst_effect=fmt.estimate(_estimate(lo), "pp")),
                   t("marketing.findings.segments_action", campaign=campaign_name(res, cid),
                     best=segment_name(hi["segment"], params, capital=False)))


def _next_best_finding(res: MarketingResult) -> Finding | None:
    nbc = res.next_best_category
    if isinstance(nbc, Unavailable):
        return None
    d = nbc.precision["difference"]
    way = _direction(d.to_dict())
    return Finding(t(f"marketing.findings.nbc_{way}", k=nbc.k, model=fmt.value(nbc.precision["model"].estimate, "pct"),
                     popularity=fmt.value(nbc.precision["popularity"].estimate, "pct"),
                     difference=fmt.estimate(d, "pp")),
                   t(f"marketing.findings.nbc_{way}_action"))


def findings(res: MarketingResult, params) -> list[Finding]:
    """At most five findings: the best campaign and whether it paid, the campaigns without a
    clear effect, for whom a campaign worked best, a misleading naive gap, and whether the
    next-best-category recommendations beat the bestsellers; a part without data says why."""
    items = []
    if isinstance(res.campaigns, Unavailable):
        items.append(Finding(t("marketing.findings.no_campaigns", reason=res.campaigns.reason)))
    else:
        items += [*_campaign_findings(res, params), _heterogeneity_finding(res, params), _observational_finding(res)]
    items.append(_next_best_finding(res))
    return [f for f in items if f is not None][: report.MAX_FINDINGS]


# -- campaign effects ------------------------------------------------------------------------------

def _design(randomised: bool) -> str:
    return t("marketing.effects.randomised" if randomised else "marketing.effects.observational")


def effects_table(res: MarketingResult, params) -> pd.DataFrame:
    """Per measured campaign: channel, design, contacted and comparison customers, the main
    conversion and spend effects."""
    small = res.small_sample_n
    main = main_effects(res)
    spend = main[main["outcome"] == "spend"].set_index("campaign")
    channel = res.campaigns.set_index("campaign_id")["channel"]
    rows = []
    for cid, r in main[main["outcome"] == "conversion"].set_index("campaign").iterrows():
        rows.append({t("marketing.effects.campaign"): campaign_name(res, cid),
                     t("marketing.effects.channel"): name("campaign_channel", channel[cid]),
                     t("marketing.effects.design"): _design(bool(r["randomised"])),
                     t("marketing.effects.contacted"): fmt.value(r["n_treated"], "count"),
                     t("marketing.effects.compared"): fmt.value(r["n_control"], "count"),
                     t("marketing.effects.conversion"): fmt.cell(_estimate(r), "pp", small_n=small),
                     t("marketing.effects.spend"): fmt.cell(_estimate(spend.loc[cid]), "money",
                                                            currency=params.currency, small_n=small)})
    return pd.DataFrame(rows)


def roi_table(res: MarketingResult, params) -> pd.DataFrame:
    """Per measured campaign: cost of its contacts, incremental revenue and ROI."""
    small, cur = res.small_sample_n, params.currency
    rows = []
    for q in res.roi.to_dict("records"):
        n = int(q["treated"])
        rows.append({
            t("marketing.effects.campaign"): campaign_name(res, q["campaign"]),
            t("marketing.effects.contacted"): fmt.value(n, "count"),
            t("marketing.roi.cost"): fmt.value(q["cost"], "money", currency=cur),
            t("marketing.roi.revenue"): fmt.cell({"estimate": q["incremental_revenue"], "ci_low": q["revenue_ci_low"],
                                                  "ci_high": q["revenue_ci_high"], "n": n}, "money", currency=cur,
                                                 small_n=small),
            t("marketing.roi.roi"): fmt.cell({"estimate": q["roi"], "ci_low": q["roi_ci_low"],
                                              "ci_high": q["roi_ci_high"], "n": n}, "change", small_n=small)
            if np.isfinite(q["roi"]) else "–"})
    return pd.DataFrame(rows)


def effects_chart(res: MarketingResult) -> pd.DataFrame:
    """Main conversion effect per campaign with its interval (pp as shares), observational ones
    marked, for :func:`custlib.plots.marketing.campaign_effects`."""
    conv = main_effects(res).query("outcome == 'conversion'")
    label = [campaign_name(res, c) + ("" if r else " *") for c, r in zip(conv["campaign"], conv["randomised"])]
    return conv.assign(label=label, n=conv["n_treated"])[["label", "estimate", "ci_low", "ci_high", "n"]]


def _too_few_notes(res: MarketingResult) -> None:
    for cid, why in res.too_few.items():
        report.note(t("marketing.effects.too_few", campaign=campaign_name(res, cid), reason=why.reason))


def effects(res: MarketingResult, params) -> None:
    """Section: which campaigns caused extra purchases (table, chart of conversion effects),
    with the campaigns left out for too few customers."""
    report.section(t("marketing.effects.title"), t("marketing.effects.intro", window=res.params.window_days))
    if not report.available(res.campaigns):
        return
    table = effects_table(res, params)
    if len(table):
        main = main_effects(res)
        report.table(table, t("marketing.effects.caption", window=res.params.window_days),
                     n=int(main.loc[main["outcome"] == "conversion", "n_treated"].sum()))
        report.chart(plots.campaign_effects(effects_chart(res)))
        if not main["randomised"].all():
            report.note(t("marketing.effects.observational_note"))
    _too_few_notes(res)
    if isinstance(res.roi, pd.DataFrame):
        margin = fmt.value(res.roi["margin_rate"].iloc[0], "pct")
        report.section(t("marketing.roi.title"), t("marketing.roi.intro", margin=margin), level=3)
        report.table(roi_table(res, params), t("marketing.roi.caption"), n=int(res.roi["treated"].sum()))


# -- for whom --------------------------------------------------------------------------------------

def _segment_labels(segment_type: str, params) -> dict[str, str]:
    """Segment code -> display name, in the params' order: value tiers ("High value" / 高价值) or
    RFM segments (the client's terms in Chinese)."""
    sp = params.segmentation
    if segment_type == "value_tier":
        return {v.name: segment_name(v.name, params) for v in sp.value_tiers}
    return {r.name: r.chinese if language() == "zh" and r.chinese else r.name for r in sp.rfm_segments}


def segments_table(res: MarketingResult, params, segment_type: str) -> pd.DataFrame:
    """The regression-adjusted conversion effect of each randomised campaign (columns) within
    each segment of ``segment_type`` at sending (rows), and the p-value of the test that the
    segments' effects are equal; segments without an estimate in any campaign are left out."""
    r = res.randomised
    r = r[(r["outcome"] == "conversion") & (r["method"] == "regression_adjusted") & (r["segment_type"] == segment_type)]
    h = res.heterogeneity
    tests = h[(h["outcome"] == "conversion") & (h["segment_type"] == segment_type)].set_index("campaign")["p_value"]
    campaigns = list(dict.fromkeys(r["campaign"]))
    cells = r.set_index(["segment", "campaign"])
    label = t("marketing.segments.segment") if segment_type == "rfm_segment" else t("marketing.uplift.tier")
    rows = []
    for code, text in _segment_labels(segment_type, params).items():
        if code not in cells.index.get_level_values(0):
            continue
        rows.append({label: text} | {campaign_name(res, c): fmt.cell(_estimate(cells.loc[(code, c)]), "pp")
                                     if (code, c) in cells.index else t("marketing.segments.too_few")
                                     for c in campaigns})
    rows.append({label: t("marketing.segments.test")} | {campaign_name(res, c): fmt.pvalue(tests.get(c, np.nan))
                                                         for c in campaigns})
    return pd.DataFrame(rows)


def segments(res: MarketingResult, params) -> None:
    """Section: the conversion effect of each randomised campaign per value tier and per RFM
    segment at sending (nothing when the unit has no campaign data)."""
    if isinstance(res.campaigns, Unavailable):
        return  # the effects section says why
    report.section(t("marketing.segments.title"), t("marketing.segments.intro"), level=3)
    if isinstance(res.randomised, Unavailable):
        report.note(t("marketing.segments.none", n=res.small_sample_n))
        return
    for segment_type in ("value_tier", "rfm_segment"):
        report.table(segments_table(res, params, segment_type), t(f"marketing.segments.caption_{segment_type}"))


# -- without holdout ---------------------------------------------------------------------------------

OBSERVATIONAL_METHODS = ("naive_gap", "ipw", "aipw", "matching")


def observational_table(res: MarketingResult, params) -> pd.DataFrame:
    """Per campaign without holdout and method (naive gap first): conversion and spend effects
    on the contacted and the customers compared."""
    o = res.observational
    rows = []
    for cid, g in o.groupby("campaign", sort=False):
        by = g.set_index(["method", "outcome"])
        for method in OBSERVATIONAL_METHODS:
            if (method, "conversion") not in by.index:
                continue
            conv, spend = by.loc[(method, "conversion")], by.loc[(method, "spend")]
            rows.append({t("marketing.effects.campaign"): campaign_name(res, cid),
                         t("marketing.observational.method"): name("marketing_method", method),
                         t("marketing.effects.conversion"): fmt.cell(_estimate(conv), "pp", small_n=res.small_sample_n),
                         t("marketing.effects.spend"): fmt.cell(_estimate(spend), "money", currency=params.currency,
                                                                small_n=res.small_sample_n),
                         t("marketing.effects.contacted"): fmt.value(conv["n_treated"], "count"),
                         t("marketing.effects.compared"): fmt.value(conv["n_control"], "count")})
    return pd.DataFrame(rows)


def observational(res: MarketingResult, params) -> None:
    """Section: campaigns without a random holdout — the naive gap beside the ATT estimators
    (nothing when the unit has no campaign data)."""
    if isinstance(res.campaigns, Unavailable):
        return  # the effects section says why
    report.section(t("marketing.observational.title"), t("marketing.observational.intro"), level=3)
    if isinstance(res.observational, Unavailable):
        report.note(t("marketing.observational.none"))
        return
    report.table(observational_table(res, params), t("marketing.observational.caption",
                                                     window=res.params.window_days))
    if res.sampled_controls:
        report.note(t("marketing.observational.sampled"))


# -- who to target next time ------------------------------------------------------------------------

def uplift_table(res: MarketingResult, params) -> pd.DataFrame:
    """Per randomised campaign: customers scored, the Qini area of its cross-fitted ranking, the
    value tier it predicts to move most and the customers in its target file (or why none)."""
    rows = []
    for cid, m in res.uplift.items():
        row = {t("marketing.effects.campaign"): campaign_name(res, cid)}
        if isinstance(m, Unavailable):
            row[t("marketing.uplift.qini")] = m.reason
        else:
            row |= {t("marketing.uplift.scored"): fmt.value(m.n, "count"),
                    t("marketing.uplift.qini"): fmt.cell(m.qini_area, "pp"),
                    t("marketing.uplift.first_tier"): segment_name(m.by_tier["value_tier"].iloc[0], params),
                    t("marketing.uplift.targets"): fmt.value(len(m.targets), "count") if m.beats_random
                    else t("marketing.uplift.no_list")}
        rows.append(row)
    return pd.DataFrame(rows)


def uplift_tiers_table(res: MarketingResult, params) -> pd.DataFrame:
    """The value tiers by mean predicted uplift over the campaigns taken together."""
    b = res.unit_uplift.by_tier
    return pd.DataFrame({t("marketing.uplift.tier"): [segment_name(v, params) for v in b["value_tier"]],
                         t("marketing.uplift.customers"): [fmt.value(n, "count") for n in b["n"]],
                         t("marketing.uplift.mean"): [fmt.value(x, "pp") for x in b["mean_predicted_uplift"]]})


def qini_chart(res: MarketingResult) -> pd.DataFrame:
    """The Qini curves of the campaigns with a model (and of all of them taken together), for
    :func:`custlib.plots.marketing.qini_curves`: label, share_targeted, incremental, random."""
    curves = [m.qini_curve.assign(label=campaign_name(res, c)) for c, m in res.uplift.items()
              if not isinstance(m, Unavailable)]
    return pd.concat(curves, ignore_index=True)


def uplift(res: MarketingResult, params) -> None:
    """Section: whom to contact next time — the uplift models, their check against random
    targeting, the tiers they favour and the target files."""
    if isinstance(res.campaigns, Unavailable):
        return  # the effects section says why
    report.section(t("marketing.uplift.title"), t("marketing.uplift.intro", folds=marketing.UPLIFT_FOLDS))
    if not report.available(res.unit_uplift):
        return
    u = res.unit_uplift
    way = "beats" if u.beats_random else "unclear"
    report.note(t(f"marketing.uplift.unit_{way}", area=fmt.estimate(u.qini_area, "pp"), k=len(u.campaigns)))
    report.chart(plots.qini_curves(qini_chart(res)))
    report.table(uplift_table(res, params), t("marketing.uplift.caption"))
    report.table(uplift_tiers_table(res, params), t("marketing.uplift.tiers_caption"), n=u.n)


# -- basket rules ------------------------------------------------------------------------------------

BASKET_RULES_SHOWN = 5  # rules per segment in the report (the CSV has them all)


def basket_table(res: MarketingResult, params) -> pd.DataFrame:
    """The strongest category pairs per value tier (and all customers): rule, support,
    confidence, lift, customers with a basket. A pair is shown once, in its direction of higher
    confidence (both directions share support and lift)."""
    b = res.basket_rules
    pair = [tuple(sorted(x)) for x in zip(b["antecedent"], b["consequent"])]
    b = b.assign(pair=pair).sort_values(["segment", "confidence"], ascending=[True, False], kind="stable")
    b = b.drop_duplicates(["segment", "pair"]).sort_values(["segment", "rank"], kind="stable")
    b = b[b.groupby("segment").cumcount() < BASKET_RULES_SHOWN]
    order = ["all", *(v.name for v in params.segmentation.value_tiers)]
    b = b.sort_values("segment", key=lambda x: x.map({k: i for i, k in enumerate(order)}), kind="stable")
    return pd.DataFrame({
        t("marketing.baskets.segment"): [t("marketing.baskets.all") if seg == "all" else segment_name(seg, params)
                                         for seg in b["segment"]],
        t("marketing.baskets.rule"): [t("marketing.baskets.arrow", a=name("product_category", a),
                                        c=name("product_category", c))
                                      for a, c in zip(b["antecedent"], b["consequent"])],
        t("marketing.baskets.support"): b["support"].map(lambda x: fmt.value(x, "pct")),
        t("marketing.baskets.confidence"): b["confidence"].map(lambda x: fmt.value(x, "pct")),
        t("marketing.baskets.lift"): b["lift"].map(lambda x: fmt.value(x, "ratio")),
        t("marketing.baskets.customers"): b["n_customers"].map(lambda x: fmt.value(x, "count"))})


def baskets(res: MarketingResult, params) -> None:
    """Section: which categories the same customers buy (basket rules per value tier)."""
    report.section(t("marketing.baskets.title"), t("marketing.baskets.intro", days=marketing.BASKET_DAYS,
                                                   support=fmt.value(marketing.BASKET_MIN_SUPPORT, "pct")), level=3)
    if not report.available(res.basket_rules):
        return
    if res.basket_rules.empty:
        report.note(t("marketing.baskets.none"))
        return
    report.table(basket_table(res, params), t("marketing.baskets.caption", n=BASKET_RULES_SHOWN))


# -- next best category -----------------------------------------------------------------------------

def next_best_table(res: MarketingResult) -> pd.DataFrame:
    """Precision@k and hit rate@k on the time holdout: recommendations, the bestsellers, and the
    paired difference."""
    nbc = res.next_best_category
    rows = []
    for key, kind in (("model", "pct"), ("popularity", "pct"), ("difference", "pp")):
        rows.append({t("marketing.next_best.rule"): t(f"marketing.next_best.{key}", k=nbc.k),
                     t("marketing.next_best.precision", k=nbc.k): fmt.cell(nbc.precision[key], kind),
                     t("marketing.next_best.hit_rate", k=nbc.k): fmt.cell(nbc.hit_rate[key], kind)})
    return pd.DataFrame(rows)


def recommended_table(res: MarketingResult) -> pd.DataFrame:
    """How often each category is recommended first, and at any rank, in the CRM file."""
    r = res.next_best_category.recommendations
    first = r[r["rank"] == 1]["category"].value_counts()
    anywhere = r["category"].value_counts()
    n = r["customer_id"].nunique()
    out = pd.DataFrame({"category": anywhere.index, "anywhere": anywhere.to_numpy()})
    out["first"] = out["category"].map(first).fillna(0).astype(int)
    out = out.sort_values(["first", "anywhere"], ascending=False)
    return pd.DataFrame({
        t("marketing.next_best.category"): out["category"].map(lambda c: name("product_category", c)),
        t("marketing.next_best.first"): [f"{fmt.value(x, 'count')} ({fmt.value(x / n, 'pct')})" for x in out["first"]],
        t("marketing.next_best.anywhere", k=res.next_best_category.k): [
            f"{fmt.value(x, 'count')} ({fmt.value(x / n, 'pct')})" for x in out["anywhere"]]})


def next_best(res: MarketingResult, params) -> None:
    """Section: what to offer each customer next — holdout evaluation against the bestsellers
    and what the CRM file recommends."""
    p = res.params
    blend = p.recommendation_segment_weight
    report.section(t("marketing.next_best.title"), t("marketing.next_best.intro", k=p.top_k,
                                                     days=p.recommendation_holdout_days)
                   + (" " + t("marketing.next_best.blend", weight=fmt.value(blend, "number")) if blend else ""))
    nbc = res.next_best_category
    if not report.available(nbc):
        return
    report.table(next_best_table(res), t("marketing.next_best.caption", cutoff=f"{nbc.cutoff:%Y-%m-%d}",
                                         end=f"{nbc.end:%Y-%m-%d}"), n=nbc.n_customers)
    report.note(t("marketing.next_best.hit_note", k=nbc.k, n=fmt.value(nbc.n_hit_customers, "count")))
    report.table(recommended_table(res), t("marketing.next_best.recommended_caption"),
                 n=int(nbc.recommendations["customer_id"].nunique()))


# -- diagnostics, outputs, KPIs -------------------------------------------------------------------

def engagement_table(res: MarketingResult) -> pd.DataFrame:
    e = res.engagement.pivot(index="campaign", columns="measure")
    rows = []
    for cid in e.index:
        row = {t("marketing.effects.campaign"): campaign_name(res, cid)}
        for measure in ("opened", "clicked"):
            if ("share", measure) in e.columns and np.isfinite(e.at[cid, ("share", measure)]):
                row[t(f"marketing.diagnostics.{measure}")] = fmt.cell(
                    {k: e.at[cid, (k, measure)] for k in ("n",)} | {
                        "estimate": e.at[cid, ("share", measure)], "ci_low": e.at[cid, ("ci_low", measure)],
                        "ci_high": e.at[cid, ("ci_high", measure)]}, "pct")
        rows.append(row)
    return pd.DataFrame(rows)


def precision_table(res: MarketingResult) -> pd.DataFrame:
    """Plain and regression-adjusted conversion effects of the randomised campaigns, with the
    interval width each gives."""
    r = res.randomised
    r = r[(r["segment"] == "all") & (r["outcome"] == "conversion")]
    rows = []
    for cid, g in r.groupby("campaign", sort=False):
        by = g.set_index("method")
        plain, adjusted = by.loc["difference"], by.loc["regression_adjusted"]
        rows.append({t("marketing.effects.campaign"): campaign_name(res, cid),
                     name("marketing_method", "difference"): fmt.cell(_estimate(plain), "pp"),
                     name("marketing_method", "regression_adjusted"): fmt.cell(_estimate(adjusted), "pp"),
                     t("marketing.diagnostics.se_ratio"): fmt.value(adjusted["se"] / plain["se"], "pct")})
    return pd.DataFrame(rows)


def diagnostics(res: MarketingResult, params) -> None:
    """The collapsed "Method and diagnostics" block: how the effects are estimated, plain vs
    adjusted differences, the propensity checks of campaigns without holdout, open and click
    rates as context."""
    parts = [report.note_html(t("marketing.diagnostics.method", window=res.params.window_days,
                                trim=fmt.value(res.params.propensity_trim, "pct")))]
    if isinstance(res.randomised, pd.DataFrame):
        parts.append(report.table_html(precision_table(res), t("marketing.diagnostics.precision_caption")))
    for (cid, outcome, method), fit in res.att.items():
        if outcome == "conversion" and method == "aipw":
            if isinstance(fit, Unavailable):
                parts.append(report.warning_html(t("marketing.diagnostics.att_missing",
                                                   campaign=campaign_name(res, cid), reason=fit.reason)))
            else:
                parts.append(report.note_html(t(
                    "marketing.diagnostics.att", campaign=campaign_name(res, cid),
                    smd=fmt.value(float(np.nanmax(np.abs(fit.balance["smd_after"]))), "number", digits=2),
                    trimmed=fmt.value(fit.n_trimmed, "count"))))
    if isinstance(res.engagement, pd.DataFrame) and len(res.engagement):
        parts.append(report.table_html(engagement_table(res), t("marketing.diagnostics.engagement_caption")))
    report.details(parts)


def write_outputs(res: MarketingResult, data) -> list[Path]:
    """In ``data.outputs("marketing")``: ``campaign_effects.csv`` (:meth:`MarketingResult.effects_table`),
    ``basket_rules.csv``, and the CRM import files ``targets/next_best_category.csv`` (customer_id,
    rank, category, score) and ``targets/uplift_<campaign>.csv`` (customer_id, rank,
    predicted_uplift) for each campaign whose uplift model beats random targeting; a section
    listing them; returns the paths."""
    folder = data.outputs("marketing")
    paths = []
    if not isinstance(res.campaigns, Unavailable):
        paths.append(report.write_output(res.effects_table(), folder / EFFECTS_FILE))
    if not isinstance(res.next_best_category, Unavailable):
        paths.append(report.write_output(res.next_best_category.recommendations, folder / NEXT_BEST_FILE))
    if isinstance(res.basket_rules, pd.DataFrame):
        paths.append(report.write_output(res.basket_rules, folder / BASKET_FILE))
    listed = {f"uplift_{c}" for c, m in _uplift_models(res).items() if m.beats_random}
    for c, m in _uplift_models(res).items():
        if m.beats_random:
            paths.append(report.write_output(m.targets, folder / "targets" / f"uplift_{c}.csv"))
    for stale in (folder / "targets").glob("uplift_*.csv"):
        if stale.stem not in listed:
            stale.unlink()  # a campaign whose model no longer beats random targeting has no list
    report.section(t("report.outputs"), t("marketing.outputs.files"))
    if paths:
        report.note(t("report.written", folder=str(folder.relative_to(data.project_root)),
                      files=", ".join(str(p.relative_to(folder)) for p in paths)))
    return paths


def kpis(res: MarketingResult, params) -> dict:
    """The portfolio page's marketing KPIs: ``campaign_revenue``, the incremental revenue of the
    measured campaigns (sum of their main spend effects × contacts, independent campaigns, kind
    money) and up to three ``actions``."""
    out = {}
    if isinstance(res.roi, pd.DataFrame) and len(res.roi):
        r = res.roi
        se = (r["revenue_ci_high"] - r["revenue_ci_low"]) / (2 * 1.959964)
        total, se_total = float(r["incremental_revenue"].sum()), float(np.sqrt((se**2).sum()))
        out["campaign_revenue"] = {"estimate": total, "se": se_total, "ci_low": total - 1.959964 * se_total,
                                   "ci_high": total + 1.959964 * se_total, "n": int(r["treated"].sum()),
                                   "kind": "money", "currency": params.currency}
    return {**out, "actions": [f.action for f in findings(res, params) if f.action][:3]}
