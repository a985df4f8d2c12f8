"""What the lifecycle report shows, built from a :class:`custlib.lifecycle.LifecycleResult` and
the unit's params: findings, section texts, display tables, warnings, the diagnostics block,
the output files and the portfolio KPIs, in the report language.

Stage names come from params (``lifecycle.stages``: ``label`` in English, ``chinese`` in
Chinese); the stage playbook is the stage's ``strategy`` (``strategy_chinese`` in Chinese).
Every threshold and window a sentence
states is read from params or from the result.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from custlib import clv, features, lifecycle, report
from custlib.funnel import ALL_SOURCES, Funnel
from custlib.funnel import STAGES as FUNNEL_STAGES
from custlib.params import LIFECYCLE_STAGES, UnitParams
from custlib.plots import lifecycle as lifecycle_plots
from custlib.present import fmt
from custlib.present.i18n import language, name, t
from custlib.report import Finding
from custlib.stats import Unavailable

RETENTION_TABLE_MONTHS = (1, 2, 3, 6, 12, 18, 24, 36)  # plus params.lifecycle.retention_months
CHURN_ROWS_SHOWN = 15
PRECEDENCE = ("new", "lapsed", "at_risk", "loyal")  # the first matching rule wins (lifecycle.assign_stages)


# -- names, rules and the playbook from params ---------------------------------------------------

def stage_name(stage: str, params: UnitParams) -> str:
    """The stage's name in the report language: params label (en) or Chinese name (zh)."""
    s = params.lifecycle.stages.get(stage)
    text = (s.chinese if language() == "zh" else s.label) if s else ""
    return text or name("lifecycle_stage", stage)


def stage_names(params: UnitParams) -> dict[str, str]:
    """Stage -> display name, for the charts."""
    return {s: stage_name(s, params) for s in LIFECYCLE_STAGES}


def strategy(stage: str, params: UnitParams) -> str:
    """The playbook for a stage from params: ``strategy``, or ``strategy_chinese`` in Chinese."""
    s = params.lifecycle.stages.get(stage)
    if s is None:
        return ""
    return (s.strategy_chinese or s.strategy) if language() == "zh" else s.strategy


def funnel_stage_names(params: UnitParams) -> dict[str, str]:
    """Funnel stage -> display name: the client's term from params in Chinese."""
    terms = params.lifecycle.funnel_stages
    return {s: (terms.get(s) if language() == "zh" and terms.get(s) else name("lifecycle_funnel_stage", s))
            for s in FUNNEL_STAGES}


def _days(x) -> str:
    return fmt.value(x, "days")


def _pct(x) -> str:
    return fmt.value(x, "pct")


def _factor(x: float) -> str:
    return fmt.value(x, "number", digits=0 if float(x).is_integer() else 1)


def stage_rules(params: UnitParams, with_model: bool = True) -> dict[str, str]:
    """Stage -> the rule that puts a customer in it, with the thresholds from params
    (``with_model``: the at-risk rule includes the model's probability of being active)."""
    r = params.lifecycle
    at_risk = "lifecycle.rules.at_risk_model" if with_model else "lifecycle.rules.at_risk"
    return {
        "prospect": t("lifecycle.rules.prospect"),
        "new": t("lifecycle.rules.new", days=_days(r.new_within_days)),
        "repeat": t("lifecycle.rules.repeat"),
        "loyal": t("lifecycle.rules.loyal", n=fmt.value(r.loyal_min_purchases, "count"),
                   days=_days(r.loyal_recent_days)),
        "at_risk": t(at_risk, days=_days(r.new_within_days), factor=_factor(r.at_risk_gap_factor),
                     p=_pct(r.at_risk_p_alive)),
        "lapsed": t("lifecycle.rules.lapsed", days=_days(r.lapsed_after_days)),
    }


def _days_estimate(e, ci_words: bool = True) -> str:
    """"186 days (95% CI 178–196)"; an open upper bound reads "178 or more"."""
    lo = fmt.value(e.ci_low, "count")
    ci = t("lifecycle.lapse.ci_open", lo=lo) if pd.isna(e.ci_high) else f"{lo}–{fmt.value(e.ci_high, 'count')}"
    return t("lifecycle.lapse.days_ci" if ci_words else "lifecycle.lapse.days_cell", x=_days(e.estimate), ci=ci)


def _money(e, params: UnitParams) -> str:
    return fmt.estimate(e, "money", currency=params.currency, n=False, compact=True)


# -- findings ------------------------------------------------------------------------------------

def _stage_finding(lc, params) -> Finding:
    mix = lc.stage_mix.set_index("stage")
    top = mix["entities"].idxmax()
    rule = stage_rules(params, lc.has_value)[top]
    return Finding(t("lifecycle.findings.stage", stage=stage_name(top, params), rule=rule,
                     share=fmt.estimate(mix.loc[top], "pct", n=False)),
                   t("lifecycle.actions.stage", stage=stage_name(top, params), strategy=strategy(top, params)))


def _retention_finding(lc, params) -> Finding | None:
    if isinstance(lc.retention, Unavailable):
        return None
    r = lc.retention.set_index("months")
    shown = [m for m in params.lifecycle.retention_months if m in r.index and r.loc[m, "n"] >= params.small_sample_n]
    if not shown:
        return None
    k = max(shown)
    return Finding(t("lifecycle.findings.retention", months=k, share=fmt.estimate(r.loc[k], "pct", n=False)),
                   t("lifecycle.actions.retention", strategy=strategy("new", params)))


def _lapse_finding(lc, params) -> Finding | None:
    if isinstance(lc.lapse, Unavailable) or lc.lapse.n < params.small_sample_n:
        return None
    return Finding(t("lifecycle.findings.lapse", days=_days_estimate(lc.lapse),
                     threshold=_days(params.lifecycle.lapsed_after_days)),
                   t("lifecycle.actions.lapse", days=_days(lc.lapse.estimate), strategy=strategy("repeat", params)))


def _clv_finding(lc, params) -> Finding | None:
    if not lc.has_value:
        return None
    r = params.lifecycle
    top = lc.stage_value.set_index("stage")["estimate"].idxmax()
    return Finding(t("lifecycle.findings.clv", value=_money(lc.value.total.estimate, params),
                     months=r.clv_horizon_months, rate=_pct(r.annual_discount_rate)),
                   t("lifecycle.actions.clv", stage=stage_name(top, params), strategy=strategy(top, params)))


def _churn_finding(lc, params) -> Finding | None:
    if isinstance(lc.value_at_risk, Unavailable):
        return None
    return Finding(t("lifecycle.findings.churn", n=fmt.value(len(lc.churn), "count"),
                     value=_money(lc.value_at_risk, params), months=params.lifecycle.clv_horizon_months),
                   t("lifecycle.actions.churn", strategy=strategy("at_risk", params)))


def _funnel_finding(lc, params) -> Finding | None:
    if isinstance(lc.funnel, Unavailable) or lc.funnel.bottleneck is None:
        return None
    b = lc.funnel.bottleneck
    if b["n"] < params.small_sample_n:
        return None
    return Finding(t("lifecycle.findings.funnel", step=_step(b, params),
                     share=fmt.estimate(_conversion(b), "pct", n=False)))


def findings(lc: lifecycle.LifecycleResult, params: UnitParams) -> list[Finding]:
    """At most five findings in the executive reading order: where customers are, retention,
    time to lapse, total CLV, the churn warning (the funnel bottleneck when one of these is
    not available); each one sentence with one estimate and the stage playbook's action."""
    parts = [_stage_finding(lc, params), _retention_finding(lc, params), _lapse_finding(lc, params),
             _clv_finding(lc, params), _churn_finding(lc, params), _funnel_finding(lc, params)]
    return [f for f in parts if f is not None][:report.MAX_FINDINGS]


def caveats(lc: lifecycle.LifecycleResult, params: UnitParams) -> list[str]:
    """Cautions an executive must see (small samples, weak validation, rules left out)."""
    small, out = params.small_sample_n, []
    if lc.buyers < small:
        out.append(t("lifecycle.warnings.few_buyers", n=fmt.value(lc.buyers, "count"), needed=small))
    if isinstance(lc.retention, pd.DataFrame):
        r = lc.retention.set_index("months")
        for m in params.lifecycle.retention_months:
            if m in r.index and r.loc[m, "n"] < small:
                out.append(t("lifecycle.warnings.retention_few", months=m, n=fmt.value(r.loc[m, "n"], "count")))
    if not lc.has_value:
        out.append(t("lifecycle.warnings.no_model"))
    if isinstance(lc.funnel, Funnel):
        few = int((lc.funnel.overall["n"] < small).sum())
        if few:
            out.append(t("lifecycle.warnings.funnel_few", steps=few, needed=small))
    if isinstance(lc.churn, pd.DataFrame) and len(lc.churn) < small:
        out.append(t("lifecycle.warnings.churn_few", n=len(lc.churn)))
    if _ranked(lc.ranking, lc.purchase_model.model) and _ranking_row(
            lc.ranking, lc.purchase_model.model, "auc_difference")["ci_low"] <= 0:
        out.append(t("lifecycle.warnings.ranking_weak"))
    if isinstance(lc.holdout, lifecycle.HoldoutCheck):
        out += [t("lifecycle.warnings.model_not_converged", model=model_name(k))
                for k, m in lc.holdout.models.items() if not m.converged_]
    if lc.purchase_model.forced_failed:
        out.append(t("lifecycle.warnings.forced_failed", forced=model_name(lc.purchase_model.forced_failed),
                     model=model_name(lc.purchase_model.model)))
    if spend_correlated(lc, params):
        out.append(t("lifecycle.warnings.spend_correlation", r=fmt.estimate(lc.spend_correlation, "ratio"),
                     threshold=fmt.value(params.lifecycle.spend_correlation_warning, "ratio")))
    return out


def spend_correlated(lc: lifecycle.LifecycleResult, params: UnitParams) -> bool:
    """Whether spend and frequency are clearly correlated among repeat buyers: the 95% interval
    excludes 0 and the estimate is at least ``spend_correlation_warning`` away from it."""
    r = lc.spend_correlation
    return (not isinstance(r, Unavailable) and (r.ci_low > 0 or r.ci_high < 0)
            and abs(r.estimate) >= params.lifecycle.spend_correlation_warning)


def warnings(lc: lifecycle.LifecycleResult, params: UnitParams) -> None:
    """Show each caveat as a visible warning."""
    for text in caveats(lc, params):
        report.warning(text)


# -- stages --------------------------------------------------------------------------------------

def stage_table(lc: lifecycle.LifecycleResult, params: UnitParams) -> pd.DataFrame:
    """Stages at the observation end: name, rule, customers and open leads, share (95% CI),
    expected CLV over the horizon (95% CI, currency in the header) and the playbook."""
    rules = stage_rules(params, lc.has_value)
    mix = lc.stage_mix
    out = pd.DataFrame({
        t("lifecycle.stage_table.stage"): [stage_name(s, params) for s in mix["stage"]],
        t("lifecycle.stage_table.rule"): [rules[s] for s in mix["stage"]],
        t("lifecycle.stage_table.entities"): mix["entities"].map(lambda x: fmt.value(x, "count")),
        t("lifecycle.stage_table.share"): [fmt.cell(row, "pct") for _, row in mix.iterrows()],
    })
    if lc.has_value:
        value = lc.stage_value.set_index("stage")
        out[t("lifecycle.stage_table.clv", months=params.lifecycle.clv_horizon_months, currency=params.currency)] = [
            fmt.cell(value.loc[s], "number") if s in value.index else "–" for s in mix["stage"]]
    out[t("lifecycle.stage_table.strategy")] = [strategy(s, params) for s in mix["stage"]]
    return out


def stages(lc: lifecycle.LifecycleResult, params: UnitParams) -> None:
    """Section: where each customer is — heading, the rules, the stage table and where the
    prospects come from."""
    order = t("lifecycle.list_sep").join(stage_name(s, params) for s in PRECEDENCE)
    report.section(t("lifecycle.stages.title"),
                   t("lifecycle.stages.intro", end=f"{params.observation_end:%Y-%m-%d}", order=order))
    caption = t("lifecycle.stages.caption" if lc.has_value else "lifecycle.stages.caption_no_clv")
    report.table(stage_table(lc, params), caption, n=lc.n_staged)
    if report.available(lc.open_leads):
        prospects = int(lc.stage_mix.set_index("stage").loc["prospect", "entities"])
        report.note(t("lifecycle.stages.prospects", n=fmt.value(prospects, "count"),
                      leads=fmt.value(lc.open_leads, "count"), signups=fmt.value(prospects - lc.open_leads, "count"))
                    if prospects else t("lifecycle.stages.no_prospects"))


def transitions(lc: lifecycle.LifecycleResult, params: UnitParams) -> bool:
    """Sub-section: where customers go next (the window from the result); False, after the
    reason, when the data cover a single month end."""
    report.section(t("lifecycle.transitions.title"),
                   t("lifecycle.transitions.intro", months=lc.transition_months,
                     at_risk=stage_name("at_risk", params)), level=3)
    return report.available(lc.transitions)


# -- retention -----------------------------------------------------------------------------------

def retention_table(lc: lifecycle.LifecycleResult, params: UnitParams) -> pd.DataFrame:
    """Pooled retention in the months that matter (1, 2, 3, 6, 12 ... and params'
    ``retention_months``, as far as cohorts reach): % with its 95% interval and the customers
    it rests on ("too few" below ``small_sample_n``)."""
    r = lc.retention.set_index("months")
    months = sorted(m for m in {*RETENTION_TABLE_MONTHS, *params.lifecycle.retention_months} if m in r.index)
    return pd.DataFrame({
        t("lifecycle.retention.months"): months,
        t("lifecycle.retention.share"): [fmt.cell(r.loc[m], "pct", small_n=params.small_sample_n) for m in months],
        t("lifecycle.retention.customers"): [fmt.value(r.loc[m, "n"], "count") for m in months],
    })


def retention(lc: lifecycle.LifecycleResult, params: UnitParams) -> bool:
    """Section: how well cohorts are kept — heading, intro and the pooled table; False, after
    the reason, without cohorts to follow."""
    report.section(t("lifecycle.retention.title"), t("lifecycle.retention.intro"))
    if not report.available(lc.cohorts):
        return False
    size = int(lc.cohorts.drop_duplicates("cohort")["cohort_size"].sum())
    report.table(retention_table(lc, params), t("lifecycle.retention.caption"), n=size)
    return True


# -- time to lapse -------------------------------------------------------------------------------

def lapse_table(curves: lifecycle.LapseCurves) -> pd.DataFrame:
    """Median days from the first purchase to the lapse per group, whole days with the 95%
    interval ("not reached" while fewer than half have lapsed)."""
    m = curves.medians
    median = [t("lifecycle.lapse.not_reached") if pd.isna(row.median_days) else _days_estimate(
        pd.Series({"estimate": row.median_days, "ci_low": row.ci_low, "ci_high": row.ci_high}), ci_words=False)
        for row in m.itertuples()]
    return pd.DataFrame({
        t(f"lifecycle.lapse.by.{curves.by}"): [name(f"lifecycle_{curves.by}", g) for g in m["group"]],
        t("lifecycle.lapse.customers"): m["n"].map(lambda x: fmt.value(x, "count")),
        t("lifecycle.lapse.lapses"): m["lapses"].map(lambda x: fmt.value(x, "count")),
        t("lifecycle.lapse.median"): median,
    })


def lapse(lc: lifecycle.LifecycleResult, params: UnitParams) -> None:
    """Section: how long until customers lapse — heading, intro with the lapse threshold and the
    median over all customers followed."""
    report.section(t("lifecycle.lapse.title"), t("lifecycle.lapse.intro", threshold=_days(
        params.lifecycle.lapsed_after_days), min_n=fmt.value(params.small_sample_n, "count")))
    if report.available(lc.lapse):
        report.note(t("lifecycle.lapse.overall", n=fmt.value(lc.lapse.n, "count"), days=_days_estimate(lc.lapse)))


def lapse_groups(curves: lifecycle.LapseCurves | Unavailable) -> bool:
    """Sub-section for one grouping: the medians and the log-rank test in words; False, after
    the reason, when the groups cannot be compared."""
    by = curves.by if isinstance(curves, lifecycle.LapseCurves) else None
    if by is None:
        return report.available(curves)
    report.section(t(f"lifecycle.lapse.by_title.{by}"), level=3)
    report.table(lapse_table(curves), t("lifecycle.lapse.caption"), n=int(curves.medians["n"].sum()))
    p = curves.logrank["p_value"]
    report.note(t("lifecycle.lapse.differ" if p < 0.05 else "lifecycle.lapse.same",
                  groups=t(f"lifecycle.lapse.groups.{by}"), p=fmt.pvalue(p)))
    return True


# -- which purchase model ------------------------------------------------------------------------

def model_names() -> dict[str, str]:
    """Purchase model key -> display name, for the charts."""
    return {k: model_name(k) for k in (*lifecycle.PURCHASE_MODELS, *lifecycle.OCCASION_MODELS)}


def occasion_words(occasion: str) -> dict[str, str]:
    """``unit`` and ``units``: the report's words for one calendar occasion and several
    (``yearly``: year, years), for the sentences about BG/BB."""
    return {"unit": t(f"lifecycle.occasions.unit.{occasion}"), "units": t(f"lifecycle.occasions.units.{occasion}")}


def occasion_count(n: int, occasion: str) -> str:
    """"1 year", "2 quarters", "6 months" in the report language."""
    return t(f"lifecycle.occasions.{'one' if n == 1 else 'many'}.{occasion}", n=fmt.value(n, "count"))


def holdout_occasions(holdout: lifecycle.HoldoutCheck, params: UnitParams) -> int:
    """The whole occasions BG/BB forecasts in the holdout check: after the last whole occasion
    by the calibration end, up to the observation end (:func:`features.occasion_summary`)."""
    occasion = params.lifecycle.purchase_occasions
    return (features.last_whole_occasion(params.observation_end, occasion)
            - features.last_whole_occasion(holdout.calibration_end, occasion))


def comparison_table(holdout: lifecycle.HoldoutCheck, params: UnitParams) -> pd.DataFrame:
    """One row per purchase model: calibration log-likelihood and BIC, the holdout total
    forecast vs actual with the forecast error (95% CI), the churn-ranking AUC and its margin
    over the recency rule (bootstrap 95% CI), and whether the fit converged ("–" where a model
    that did not converge has no forecast)."""
    small = params.small_sample_n
    rows = []
    for r in holdout.comparison.to_dict("records"):
        def est(prefix: str, n: str, r: dict = r) -> dict:
            return {"estimate": r[prefix], "ci_low": r[f"{prefix}_ci_low"], "ci_high": r[f"{prefix}_ci_high"],
                    "n": r[n]}

        ranked = not pd.isna(r["auc"])
        rows.append({
            t("lifecycle.models.model"): model_name(r["model"]),
            t("lifecycle.models.log_likelihood"): fmt.value(r["log_likelihood"], "number", digits=1),
            t("lifecycle.models.bic"): fmt.value(r["bic"], "number", digits=1),
            t("lifecycle.models.predicted", weeks=params.lifecycle.holdout_weeks): fmt.value(r["predicted"], "count"),
            t("lifecycle.models.actual"): fmt.value(r["actual"], "count"),
            t("lifecycle.models.error"): ("–" if pd.isna(r["error"])
                                          else fmt.cell(est("error", "n"), "change", small_n=small)),
            t("lifecycle.models.auc"): fmt.cell(est("auc", "ranked"), "ratio", small_n=small) if ranked else "–",
            t("lifecycle.models.auc_vs_rule"): (fmt.cell(est("auc_difference", "ranked"), "ratio", signed=True,
                                                         small_n=small) if ranked else "–"),
            t("lifecycle.models.converged"): (t("lifecycle.churn.yes") if r["converged"]
                                              else t("lifecycle.diagnostics.no")),
        })
    return pd.DataFrame(rows)


def purchase_models(lc: lifecycle.LifecycleResult, params: UnitParams) -> None:
    """Section: which purchase model — the two models and the choice rule (window and tie
    margin from params and the analysis), the comparison table, the warnings of a fit that
    did not converge and one sentence naming the model used and why."""
    r, choice, h = params.lifecycle, lc.purchase_model, lc.holdout
    tie = fmt.value(lifecycle.NEAR_TIE, "pp", signed=False, digits=0)
    report.section(t("lifecycle.models.title"), t("lifecycle.models.intro", weeks=r.holdout_weeks, tie=tie))
    if report.available(h):
        caption = t("lifecycle.models.caption", end=f"{h.calibration_end:%Y-%m-%d}", weeks=r.holdout_weeks)
        report.table(comparison_table(h, params), caption, n=int(h.comparison["n"].max()))
        for k, m in h.models.items():
            if not m.converged_:
                report.warning(t("lifecycle.models.not_converged", model=model_name(k),
                                 warnings=_fit_warnings(m.warnings_)))
    if choice.forced_failed:
        report.note(t("lifecycle.warnings.forced_failed", forced=model_name(choice.forced_failed),
                      model=model_name(choice.model)))
    if report.available(h) and set(lifecycle.OCCASION_MODELS) & set(h.models):
        occasion = r.purchase_occasions
        n = holdout_occasions(h, params)
        key = "lifecycle.models.occasions" if n > 0 else "lifecycle.models.occasions_no_holdout"
        report.note(t(key, window=occasion_count(n, occasion), end=f"{h.calibration_end:%Y-%m-%d}",
                      **occasion_words(occasion)))
    chosen = h.comparison.set_index("model").loc[choice.model] if isinstance(h, lifecycle.HoldoutCheck) else None
    error = "–" if chosen is None or pd.isna(chosen["error"]) else fmt.value(abs(chosen["error"]), "pct")
    report.note(t(f"lifecycle.models.chosen.{choice.reason}", model=model_name(choice.model), error=error, tie=tie))


# -- CLV and the churn warning -------------------------------------------------------------------

def model_name(model: str) -> str:
    """Display name of a purchase model key (``bg_nbd``, ``pareto_nbd``, ``bg_bb``)."""
    return name("lifecycle_purchase_model", model)


def _fit_warnings(warnings: list[clv.FitWarning]) -> str:
    """A fit's warnings in the report language, one clause each."""
    return t("lifecycle.model_warnings.sep").join(t(f"lifecycle.model_warnings.{w.key}", **w.values)
                                                   for w in warnings)


def value(lc: lifecycle.LifecycleResult, params: UnitParams) -> bool:
    """Section: what customers are worth — heading, the method in a sentence (the chosen
    purchase model, horizon and discount rate), the spend-frequency correlation Gamma-Gamma
    assumes away and the total; False, after the reason (and the fits' own warnings when a
    model did not converge), without CLV."""
    r, model = params.lifecycle, lc.purchase_model.model
    report.section(t("lifecycle.value.title"), t(
        "lifecycle.value.intro", model=model_name(model), source=name("lifecycle_purchase_model_source", model),
        months=r.clv_horizon_months, rate=_pct(r.annual_discount_rate)))
    if isinstance(lc.spend_correlation, Unavailable):
        report.note(lc.spend_correlation.reason)
    else:
        report.note(t("lifecycle.value.correlation", n=fmt.value(lc.spend_correlation.n, "count"),
                      r=fmt.estimate(lc.spend_correlation, "ratio", n=False)))
        if spend_correlated(lc, params):
            report.warning(t("lifecycle.warnings.spend_correlation", r=fmt.estimate(lc.spend_correlation, "ratio"),
                             threshold=fmt.value(r.spend_correlation_warning, "ratio")))
    if not report.available(lc.value):
        for fitted, warnings in lc.value.values.get("warnings", {}).items():
            report.note(t("lifecycle.value.fit_warnings", model=fitted, warnings=_fit_warnings(warnings)))
        return False
    if lc.value.model in lifecycle.OCCASION_MODELS:
        report.note(t("lifecycle.value.occasions", months=r.clv_horizon_months, **occasion_words(r.purchase_occasions)))
    report.note(t("lifecycle.value.total", n=fmt.value(lc.value.total.estimate.n, "count"),
                  months=r.clv_horizon_months, value=_money(lc.value.total.estimate, params)))
    return True


def _ranking_row(ranking: lifecycle.ChurnRanking, score: str, metric: str) -> pd.Series:
    return ranking.table.set_index(["score", "metric"]).loc[(score, metric)]


def _ranked(ranking: lifecycle.ChurnRanking | Unavailable, score: str) -> bool:
    """Whether the holdout ranking scored ``score`` (BG/BB is not scored without holdout occasions)."""
    return isinstance(ranking, lifecycle.ChurnRanking) and score in set(ranking.table["score"])


def churn_table(lc: lifecycle.LifecycleResult, params: UnitParams, rows: int = CHURN_ROWS_SHOWN) -> pd.DataFrame:
    """The top ``rows`` of the churn-warning list for the report: display names, probabilities
    in %, money in whole currency units (the currency in the header); "newly at risk" only when
    one of them is."""
    c, cur, r = lc.churn.head(rows), params.currency, params.lifecycle
    amount = lambda x: fmt.value(x, "number", digits=0)
    if lc.value.model in lifecycle.OCCASION_MODELS:
        window = lifecycle.churn_window_occasions(r.holdout_weeks, r.purchase_occasions)
        no_purchase = t("lifecycle.churn.p_no_purchase_occasions", window=occasion_count(window, r.purchase_occasions))
    else:
        no_purchase = t("lifecycle.churn.p_no_purchase", weeks=r.holdout_weeks)
    out = pd.DataFrame({
        t("lifecycle.churn.rank"): c["risk_rank"].map(lambda x: fmt.value(x, "count")),
        t("lifecycle.churn.customer"): c["customer_id"],
        t("lifecycle.churn.p_alive"): c["p_alive"].map(_pct),
        no_purchase: c["p_no_purchase"].map(_pct),
        t("lifecycle.churn.clv", currency=cur): c["clv"].map(amount),
        t("lifecycle.churn.if_retained", currency=cur): c["value_if_retained"].map(amount),
        t("lifecycle.churn.at_stake", currency=cur): c["value_at_risk"].map(amount),
    })
    if c["became_at_risk"].any():
        out[t("lifecycle.churn.newly")] = c["became_at_risk"].map({1: t("lifecycle.churn.yes"), 0: ""})
    return out


def churn(lc: lifecycle.LifecycleResult, params: UnitParams) -> None:
    """Section: who is about to leave and is worth saving — the selection rule from params,
    how well the score found real lapses in the holdout, and the top of the list."""
    r = params.lifecycle
    report.section(t("lifecycle.churn.title"), t(
        "lifecycle.churn.intro", top=_pct(1 - r.churn_value_quantile), at_risk=stage_name("at_risk", params),
        p=_pct(r.at_risk_p_alive), months=r.clv_horizon_months))
    if _ranked(lc.ranking, lc.purchase_model.model):
        model, rule = lc.purchase_model.model, lifecycle.RULE_SCORE
        diff = _ranking_row(lc.ranking, model, "auc_difference")
        report.note(t("lifecycle.churn.check", weeks=r.holdout_weeks, model=model_name(model),
                      auc=fmt.value(_ranking_row(lc.ranking, model, "auc")["estimate"], "ratio"),
                      rule_auc=fmt.value(_ranking_row(lc.ranking, rule, "auc")["estimate"], "ratio"),
                      diff=fmt.estimate(diff, "ratio", signed=True, n=False)))
    if report.available(lc.churn):
        report.note(t("lifecycle.churn.total", n=fmt.value(len(lc.churn), "count"),
                      value=_money(lc.value_at_risk, params), months=r.clv_horizon_months))
        report.table(churn_table(lc, params), t("lifecycle.churn.caption", shown=min(CHURN_ROWS_SHOWN, len(lc.churn))), n=len(lc.churn))


# -- funnel --------------------------------------------------------------------------------------

def _conversion(row) -> dict:
    """A funnel step's conversion as an estimate (n: decided leads)."""
    return {"estimate": row["conversion"], "ci_low": row["ci_low"], "ci_high": row["ci_high"], "n": row["n"]}


def _step(row, params: UnitParams) -> str:
    names = funnel_stage_names(params)
    return f"{names[row['from_stage']]} → {names[row['to_stage']]}"


def funnel_table(fun: Funnel, params: UnitParams, source: str = ALL_SOURCES) -> pd.DataFrame:
    """One source's funnel (all sources pooled by default): step names, counts, conversion
    with its 95% interval and median days in stage."""
    d = fun.conversion[fun.conversion["source"] == source] if source else fun.conversion
    count = lambda x: fmt.value(x, "count")
    out = pd.DataFrame({
        t("lifecycle.funnel.step"): [_step(row, params) for _, row in d.iterrows()],
        t("lifecycle.funnel.reached"): d["reached"].map(count),
        t("lifecycle.funnel.advanced"): d["advanced"].map(count),
        t("lifecycle.funnel.lost"): d["lost"].map(count),
        t("lifecycle.funnel.open"): d["open"].map(count),
        t("lifecycle.funnel.conversion"): [fmt.cell(_conversion(row), "pct") if row["n"] else "–"
                                           for _, row in d.iterrows()],
        t("lifecycle.funnel.median_days"): d["median_days_in_stage"].map(
            lambda x: "–" if pd.isna(x) else _days(x)),
    })
    if not source:
        out.insert(0, t("lifecycle.funnel.source"), d["source"].map(_source_name).to_numpy())
    return out


def _source_name(source: str) -> str:
    return t("lifecycle.funnel.all_sources") if source == ALL_SOURCES else name("lifecycle_source", source)


def funnel(lc: lifecycle.LifecycleResult, params: UnitParams) -> bool:
    """Section: where leads get stuck — the stages from params, the pooled funnel and the
    bottleneck; False, after the reason, without leads."""
    names = funnel_stage_names(params)
    report.section(t("lifecycle.funnel.title"), t("lifecycle.funnel.intro", stages=" → ".join(names.values())))
    if not report.available(lc.funnel):
        return False
    report.table(funnel_table(lc.funnel, params), t("lifecycle.funnel.caption"),
                 n=int(lc.funnel.overall["reached"].iloc[0]))
    b = lc.funnel.bottleneck
    if b is None:
        report.note(t("lifecycle.funnel.none_decided", n=fmt.value(lc.funnel.overall["reached"].iloc[0], "count")))
    else:
        key = "lifecycle.funnel.bottleneck_few" if b["n"] < params.small_sample_n else "lifecycle.funnel.bottleneck"
        report.note(t(key, step=_step(b, params), needed=params.small_sample_n,
                      share=fmt.estimate(_conversion(b), "pct")))
    return True


# -- method and diagnostics ----------------------------------------------------------------------

def _fitted(value: lifecycle.CustomerValue, params: UnitParams) -> list[tuple[str, object, str]]:
    """(label, fitted model, the catalogue's kind of its parameter names) of both models."""
    if value.model in lifecycle.OCCASION_MODELS:
        purchases = (t("lifecycle.diagnostics.purchases_occasions", model=model_name(value.model),
                       **occasion_words(params.lifecycle.purchase_occasions)), "lifecycle_bg_bb_parameter")
    else:
        purchases = (t("lifecycle.diagnostics.purchases", model=model_name(value.model)), "lifecycle_clv_parameter")
    return [(purchases[0], value.purchases, purchases[1]),
            (t("lifecycle.diagnostics.gamma_gamma", currency=params.currency), value.spend, "lifecycle_clv_parameter")]


def model_table(value: lifecycle.CustomerValue, params: UnitParams) -> pd.DataFrame:
    """The chosen purchase model's (per week, or BG/BB's shape parameters) and Gamma-Gamma's
    (currency) parameters: estimate, standard error and the 95% interval (log-scale Wald)."""
    rows = []
    for model, fitted, kind in _fitted(value, params):
        for r in fitted.summary.itertuples():
            rows.append({t("lifecycle.diagnostics.model"): model,
                         t("lifecycle.diagnostics.parameter"): name(kind, r.parameter),
                         t("lifecycle.diagnostics.estimate"): fmt.value(r.estimate, "number", digits=3),
                         t("lifecycle.diagnostics.se"): fmt.value(r.se, "number", digits=3),
                         t("lifecycle.diagnostics.ci"): fmt.interval(r._asdict(), "number", digits=3)})
    return pd.DataFrame(rows)


def fit_table(value: lifecycle.CustomerValue, params: UnitParams) -> pd.DataFrame:
    """Customers, log-likelihood and convergence of both models."""
    parts = _fitted(value, params)
    return pd.DataFrame({
        t("lifecycle.diagnostics.model"): [m for m, _, _ in parts],
        t("lifecycle.diagnostics.customers"): [fmt.value(f.n_customers_, "count") for _, f, _ in parts],
        t("lifecycle.diagnostics.log_likelihood"): [fmt.value(f.log_likelihood_, "number", digits=1)
                                                    for _, f, _ in parts],
        t("lifecycle.diagnostics.converged"): [t("lifecycle.churn.yes") if f.converged_ else t("lifecycle.diagnostics.no")
                                               for _, f, _ in parts],
    })


def ranking_table(ranking: lifecycle.ChurnRanking) -> pd.DataFrame:
    """AUC and top-decile lift per score and the AUC difference, with bootstrap 95% intervals."""
    d = ranking.table
    return pd.DataFrame({
        t("lifecycle.diagnostics.score"): d["score"].map(lambda s: name("lifecycle_churn_score", s)),
        t("lifecycle.diagnostics.measure"): d["metric"].map(lambda s: name("lifecycle_churn_metric", s)),
        t("lifecycle.diagnostics.estimate_ci"): [fmt.cell(r, "ratio", signed=r["metric"] == "auc_difference")
                                                 for _, r in d.iterrows()],
    })


def logrank_table(lc: lifecycle.LifecycleResult) -> pd.DataFrame:
    """Log-rank tests of equal lapse curves: chi-square, degrees of freedom, p."""
    tests = [c for c in (lc.lapse_by_channel, lc.lapse_by_tier) if isinstance(c, lifecycle.LapseCurves)]
    return pd.DataFrame({
        t("lifecycle.diagnostics.groups"): [t(f"lifecycle.lapse.by.{c.by}") for c in tests],
        t("lifecycle.diagnostics.chi2"): [fmt.value(c.logrank["statistic"], "number", digits=1) for c in tests],
        t("lifecycle.diagnostics.df"): [fmt.value(c.logrank["df"], "count") for c in tests],
        "p": [fmt.pvalue(c.logrank["p_value"]) for c in tests],
    })


def diagnostics(lc: lifecycle.LifecycleResult, params: UnitParams) -> None:
    """The one collapsed "Method and diagnostics" block: how value at risk is defined, the
    fitted model parameters and fit, the holdout check, the churn ranking, the log-rank tests
    and the funnel by lead source."""
    r, model = params.lifecycle, lc.purchase_model.model
    if model in lifecycle.OCCASION_MODELS:
        method = t("lifecycle.diagnostics.method_occasions", model=model_name(model), months=r.clv_horizon_months,
                   rate=_pct(r.annual_discount_rate), weeks=r.holdout_weeks, **occasion_words(r.purchase_occasions))
    else:
        method = t("lifecycle.diagnostics.method", model=model_name(model), months=r.clv_horizon_months,
                   rate=_pct(r.annual_discount_rate), weeks=r.holdout_weeks)
    parts = [report.note_html(method),
             report.note_html(t("lifecycle.diagnostics.value_at_risk", months=r.clv_horizon_months))]
    if lc.has_value:
        parts += [report.table_html(model_table(lc.value, params), t("lifecycle.diagnostics.model_caption"),
                                    n=lc.value.purchases.n_customers_),
                  report.table_html(fit_table(lc.value, params), t("lifecycle.diagnostics.fit_caption"))]
    if isinstance(lc.holdout, lifecycle.HoldoutCheck):
        h = lc.holdout
        parts.append(report.note_html(t("lifecycle.diagnostics.holdout", weeks=r.holdout_weeks,
                                        end=f"{h.calibration_end:%Y-%m-%d}")))
        on_occasions = h.by_frequency["model"].isin(list(lifecycle.OCCASION_MODELS))
        if (~on_occasions).any():
            parts.append(report.figure_html(lifecycle_plots.holdout_by_frequency(
                h.by_frequency[~on_occasions], weeks=r.holdout_weeks, names=model_names())))
        if on_occasions.any():
            parts.append(report.figure_html(lifecycle_plots.holdout_by_frequency(
                h.by_frequency[on_occasions], weeks=r.holdout_weeks, names=model_names(),
                occasions=occasion_words(r.purchase_occasions)["units"])))
        if h.tracking is not None:
            if h.tracking_model != h.choice.model:
                parts.append(report.note_html(t(
                    "lifecycle.diagnostics.tracking_other", model=model_name(h.tracking_model),
                    chosen=model_name(h.choice.model), **occasion_words(r.purchase_occasions))))
            parts.append(report.figure_html(lifecycle_plots.tracking(
                h.tracking, calibration_end=h.calibration_end, model=model_name(h.tracking_model))))
    else:
        parts.append(report.note_html(lc.holdout.reason))
    if isinstance(lc.ranking, lifecycle.ChurnRanking):
        parts += [report.table_html(ranking_table(lc.ranking), t("lifecycle.diagnostics.ranking_caption",
                                                                  weeks=r.holdout_weeks), n=lc.ranking.n),
                  report.figure_html(lifecycle_plots.roc(lc.ranking))]
    logrank = logrank_table(lc)
    if len(logrank):
        parts.append(report.table_html(logrank, t("lifecycle.diagnostics.logrank_caption")))
    if isinstance(lc.funnel, Funnel):
        parts.append(report.table_html(funnel_table(lc.funnel, params, source=""),
                                       t("lifecycle.diagnostics.funnel_caption"), max_rows=60))
    report.details(parts)


# -- outputs and KPIs ----------------------------------------------------------------------------

def write_outputs(lc: lifecycle.LifecycleResult, data) -> list[Path]:
    """``lifecycle.parquet`` (one row per customer), ``funnel.csv`` (with leads; a stale one is
    removed without) and ``targets/churn_risk.csv`` (header only when nobody is listed) under
    ``reports/<unit>/data/lifecycle``, then a note listing them."""
    folder = data.outputs("lifecycle")
    churn = lc.churn if isinstance(lc.churn, pd.DataFrame) else pd.DataFrame(columns=lifecycle.CHURN_COLUMNS)
    per_customer = lc.output_table()
    written = [(report.write_output(per_customer, folder / "lifecycle.parquet"), len(per_customer))]
    if isinstance(lc.funnel, Funnel):
        written.append((report.write_output(lc.funnel.conversion, folder / "funnel.csv"), len(lc.funnel.conversion)))
    else:
        (folder / "funnel.csv").unlink(missing_ok=True)
    written.append((report.write_output(churn, folder / "targets" / "churn_risk.csv"), len(churn)))
    files = t("lifecycle.list_sep").join(
        t("lifecycle.outputs.file", file=p.relative_to(folder).as_posix(), rows=fmt.value(n, "count"))
        for p, n in written)
    report.section(t("report.outputs"), t("lifecycle.outputs.intro"))
    report.note(t("report.written", folder=folder.relative_to(data.project_root).as_posix(), files=files))
    return [p for p, _ in written]


def _kpi(e, params: UnitParams) -> dict:
    return {**e.to_dict(), "kind": "money", "currency": params.currency}


def kpis(lc: lifecycle.LifecycleResult, params: UnitParams) -> dict:
    """Portfolio KPIs: total expected CLV and the churn list's value if retained (money, with
    their intervals), the customers on the churn list, and up to three actions; a KPI the data
    cannot support is left out."""
    out = {}
    if lc.has_value:
        out["clv_total"] = _kpi(lc.value.total.estimate, params)
    if not isinstance(lc.value_at_risk, Unavailable):
        out["value_at_risk"] = _kpi(lc.value_at_risk, params)
        out["at_risk_customers"] = len(lc.churn)
    first = [_churn_finding(lc, params), _stage_finding(lc, params), _retention_finding(lc, params),
             _lapse_finding(lc, params)]
    out["actions"] = [f.action for f in first if f is not None and f.action][:3]
    return out
