"""Customer lifecycle 客户生命周期: stages, acquisition cohorts, time to lapse and the churn-risk
warning, plus :func:`analyse`, which runs the whole lifecycle report of one business unit.

Stages (rules in ``params.lifecycle``; the first matching rule wins, in this order):

* ``prospect`` — no purchase yet: open leads and customers who signed up without buying;
* ``new`` — first purchase within ``new_within_days``;
* ``lapsed`` — no purchase for more than ``lapsed_after_days``;
* ``at_risk`` — one purchase only and past the new window, or silent for longer than
  ``at_risk_gap_factor`` times the customer's own mean gap between purchase days, or BG/NBD
  P(alive) below ``at_risk_p_alive``;
* ``loyal`` — at least ``loyal_min_purchases`` purchase days and a purchase within
  ``loyal_recent_days``;
* ``repeat`` — everyone else (two or more purchase days).

Purchases are purchase *days* (several orders on one day are one purchase); returns are left out.

:func:`analyse` returns a :class:`LifecycleResult` of numbers only; what a report shows (tables,
findings, notes, output files) is built from it by :mod:`custlib.present.lifecycle`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test
from lifelines.utils import median_survival_times
from scipy.stats import mannwhitneyu
from sklearn.metrics import roc_curve

from custlib import clv, features, funnel
from custlib.params import LIFECYCLE_STAGES, LifecycleParams
from custlib.stats import Estimate, Term, Unavailable, proportion

ACTIVE_STAGES = ("new", "repeat", "loyal", "at_risk")
CHURN_COLUMNS = ["customer_id", "risk_rank", "p_alive", "p_no_purchase", "clv", "value_if_retained",
                 "value_at_risk", "became_at_risk"]
WEEK = 7.0
TRANSITION_MONTHS = 12  # month-to-month moves pooled in the transition matrix
CHURN_SCORES = ("bgnbd_p_no_purchase", "recency_weeks")  # the model's churn score, the plain rule


# -- stages ------------------------------------------------------------------------------------

def assign_stages(history: pd.DataFrame, rules: LifecycleParams) -> pd.Series:
    """Stage of each row of ``history`` at its ``snapshot`` date.

    ``history`` columns: ``snapshot``, ``first_purchase``, ``last_purchase`` (NaT without a
    purchase), ``purchase_days`` (0 without a purchase) and optionally ``p_alive``.
    """
    snap = pd.to_datetime(history["snapshot"])
    n = history["purchase_days"].fillna(0).to_numpy()
    since_first = (snap - pd.to_datetime(history["first_purchase"])).dt.days.to_numpy(float)
    silence = (snap - pd.to_datetime(history["last_purchase"])).dt.days.to_numpy(float)
    span = since_first - silence  # first to last purchase, days
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_gap = np.where(n >= 2, span / np.maximum(n - 1, 1), np.nan)
    p_alive = history["p_alive"].to_numpy(float) if "p_alive" in history else np.full(len(n), np.nan)
    at_risk = ((n == 1) | (silence > rules.at_risk_gap_factor * mean_gap)
               | (p_alive < rules.at_risk_p_alive))
    conditions = [
        n == 0,
        since_first <= rules.new_within_days,
        silence > rules.lapsed_after_days,
        at_risk,
        (n >= rules.loyal_min_purchases) & (silence <= rules.loyal_recent_days),
    ]
    stage = np.select(conditions, ["prospect", "new", "lapsed", "at_risk", "loyal"], default="repeat")
    return pd.Series(pd.Categorical(stage, categories=LIFECYCLE_STAGES), index=history.index, name="stage")


def snapshot_dates(start: date, end: date) -> list[date]:
    """Month ends from ``start``'s month to ``end``; the last snapshot is ``end`` itself."""
    ends = [d.date() for d in pd.date_range(start, end, freq="ME")]
    return ends if ends and ends[-1] == end else [*ends, end]


def _with_p_alive(hist: pd.DataFrame, model: clv.BetaGeoModel | None) -> pd.DataFrame:
    if model is None:
        return hist
    weeks = lambda a, b: (a - b).dt.days / WEEK  # noqa: E731
    summ = pd.DataFrame({"frequency": hist["purchase_days"] - 1,
                         "recency": weeks(hist["last_purchase"], hist["first_purchase"]),
                         "T": weeks(hist["snapshot"], hist["first_purchase"])}, index=hist.index)
    return hist.assign(p_alive=model.probability_alive(summ))


@dataclass(frozen=True)
class StageHistory:
    """Stages per entity and snapshot. ``panel``: ``key`` (customer_id, or lead_id for a lead
    that never became a customer), ``is_customer``, ``snapshot``, ``stage``, the purchase history
    columns and ``p_alive``. ``counts``: ``snapshot, stage, entities``."""

    panel: pd.DataFrame

    @property
    def snapshots(self) -> list[pd.Timestamp]:
        return sorted(self.panel["snapshot"].unique())

    @property
    def counts(self) -> pd.DataFrame:
        c = self.panel.groupby(["snapshot", "stage"], observed=False).size().rename("entities")
        return c.reset_index()

    def current(self) -> pd.DataFrame:
        """Customers at the last snapshot (leads without a customer record are left out)."""
        p = self.panel
        last = p[(p["snapshot"] == self.snapshots[-1]) & p["is_customer"]]
        return last.rename(columns={"key": "customer_id"}).set_index("customer_id")

    def previous_stage(self) -> pd.Series:
        """Each customer's stage one snapshot before the last."""
        if len(self.snapshots) < 2:
            return pd.Series(dtype=object)
        p = self.panel
        prev = p[(p["snapshot"] == self.snapshots[-2]) & p["is_customer"]]
        return prev.set_index("key")["stage"].rename_axis("customer_id")

    def transitions(self, months: int = TRANSITION_MONTHS) -> pd.DataFrame | Unavailable:
        """Stage-to-stage moves between consecutive snapshots, pooled over the last ``months``
        pairs: ``from_stage, to_stage, entities, share`` (share of the from-stage row)."""
        if len(self.snapshots) < 2:
            return Unavailable("lifecycle.unavailable.transitions_one_month")
        snaps = self.snapshots[-(months + 1):]
        p = self.panel[self.panel["snapshot"].isin(snaps)][["key", "snapshot", "stage"]]
        nxt = {a: b for a, b in zip(snaps[:-1], snaps[1:])}
        a = p[p["snapshot"].isin(list(nxt))].assign(snapshot=lambda d: d["snapshot"].map(nxt))
        m = a.merge(p, on=["key", "snapshot"], suffixes=("_from", "_to"))
        t = (m.groupby(["stage_from", "stage_to"], observed=False).size().rename("entities").reset_index()
             .rename(columns={"stage_from": "from_stage", "stage_to": "to_stage"}))
        t["share"] = t["entities"] / t.groupby("from_stage", observed=False)["entities"].transform("sum")
        return t

    def stage_mix(self) -> pd.DataFrame:
        """Stages at the last snapshot: ``stage, entities`` (customers and open leads) and their
        share of all entities with its Wilson 95% interval (``estimate, se, ci_low, ci_high, n``)."""
        c = self.counts
        c = c[c["snapshot"] == self.snapshots[-1]]
        total = int(c["entities"].sum())
        rows = [{"stage": str(stage), "entities": int(k), **proportion(int(k), total).to_dict()}
                for stage, k in zip(c["stage"], c["entities"])]
        return pd.DataFrame(rows)


def stage_history(transactions, customers: pd.DataFrame, leads: pd.DataFrame, observation_end: date,
                  rules: LifecycleParams, model: clv.BetaGeoModel | None = None,
                  start: date | None = None) -> StageHistory:
    """Monthly stage snapshots of every customer and open lead.

    ``customers``: ``customer_id, signup_date``; ``leads``: ``lead_id, customer_id,
    created_date, won_date, lost_date``. A lead is a prospect from its creation until it is won
    or lost; a won lead continues as its customer record. ``model``: a fitted BG/NBD model whose
    P(alive) feeds the at-risk rule at every snapshot (without it the rule is not used).
    """
    signup = pd.to_datetime(customers["signup_date"])
    snaps = snapshot_dates(start or signup.min().date(), observation_end)
    hist = features.customer_snapshots(transactions, snaps)
    snap_frame = pd.DataFrame({"snapshot": pd.to_datetime(pd.Series(snaps))})
    cust = customers[["customer_id"]].assign(signup=signup).merge(snap_frame, how="cross")
    cust = cust.merge(hist, on=["customer_id", "snapshot"], how="left")
    cust = cust[(cust["signup"] <= cust["snapshot"]) | cust["first_purchase"].notna()]
    cust = cust.drop(columns="signup").rename(columns={"customer_id": "key"}).assign(is_customer=True)

    ld = leads.copy()
    for c in ("created_date", "won_date", "lost_date"):
        ld[c] = pd.to_datetime(ld[c])
    decided = ld["won_date"].fillna(ld["lost_date"]).fillna(pd.Timestamp.max)
    lp = ld.assign(key=ld["customer_id"].fillna(ld["lead_id"]), decided=decided).merge(snap_frame, how="cross")
    lp = lp[(lp["created_date"] <= lp["snapshot"]) & (lp["snapshot"] < lp["decided"])]
    lp = lp[["key", "snapshot"]].assign(is_customer=False)
    lp = lp.merge(cust[["key", "snapshot"]], how="left", indicator=True)
    lp = lp[lp["_merge"] == "left_only"].drop(columns="_merge")

    panel = pd.concat([cust, lp], ignore_index=True)
    panel["purchase_days"] = panel["purchase_days"].fillna(0).astype(int)
    buyers = panel["purchase_days"] > 0
    panel = pd.concat([_with_p_alive(panel[buyers], model), panel[~buyers]]).sort_index()
    panel["stage"] = assign_stages(panel, rules)
    return StageHistory(panel.reset_index(drop=True))


# -- acquisition cohorts -----------------------------------------------------------------------

def cohort_retention(panel: pd.DataFrame) -> pd.DataFrame | Unavailable:
    """Monthly acquisition cohorts x months since the first purchase.

    ``panel``: dense customer x month frame (``features.customer_month_panel``: ``first_month``,
    ``months_since_first``, ``active``, ``spend``). Returns ``cohort`` (month of the first
    purchase), ``months_since_first``, ``cohort_size``, ``active`` (customers with a purchase that
    month), ``retention`` (active / cohort size), ``revenue`` (net, currency) and
    ``revenue_per_customer`` (revenue / cohort size). Unavailable when no customer can be followed
    into a month after the first purchase.
    """
    if not (panel["months_since_first"] >= 1).any():
        return Unavailable("lifecycle.unavailable.cohorts_one_month")
    size = panel[panel["months_since_first"] == 0].groupby("first_month").size().rename("cohort_size")
    g = panel.groupby(["first_month", "months_since_first"]).agg(active=("active", "sum"),
                                                                  revenue=("spend", "sum"))
    out = g.reset_index().rename(columns={"first_month": "cohort"}).merge(
        size.rename_axis("cohort").reset_index(), on="cohort")
    out["retention"] = out["active"] / out["cohort_size"]
    out["revenue_per_customer"] = out["revenue"] / out["cohort_size"]
    return out[["cohort", "months_since_first", "cohort_size", "active", "retention", "revenue",
                "revenue_per_customer"]]


def retention_at(cohorts: pd.DataFrame, months: int) -> Estimate:
    """Share of customers who bought in month ``months`` after their first purchase, pooled over
    the cohorts observed that long (Wilson 95% interval; n = customers in those cohorts)."""
    c = cohorts[cohorts["months_since_first"] == months]
    return proportion(int(c["active"].sum()), int(c["cohort_size"].sum()))


def pooled_retention(cohorts: pd.DataFrame) -> pd.DataFrame:
    """:func:`retention_at` for every month after the first purchase that a cohort reaches:
    ``months, estimate, se, ci_low, ci_high, n, method``."""
    months = range(1, int(cohorts["months_since_first"].max()) + 1)
    return pd.DataFrame([{"months": m, **retention_at(cohorts, m).to_dict()} for m in months])


# -- time to lapse -----------------------------------------------------------------------------

@dataclass(frozen=True)
class LapseCurves:
    """Kaplan–Meier curves of days from the first purchase to the lapse, by a group column.

    ``curves``: ``group, days, survival, ci_low, ci_high`` (share not yet lapsed, 95% band);
    ``medians``: ``group, n, lapses, median_days, ci_low, ci_high`` (NaN where the curve does not
    reach 50%); ``logrank``: test statistic, degrees of freedom and p-value of equal curves.
    """

    by: str
    curves: pd.DataFrame
    medians: pd.DataFrame
    logrank: dict


def time_to_lapse(lapses: pd.DataFrame, by: str, min_n: int = 30) -> LapseCurves | Unavailable:
    """Kaplan–Meier estimate per value of ``by`` on ``features.lapse_times`` rows (``days_to_lapse``,
    ``lapsed``) and a multivariate log-rank test; groups smaller than ``min_n`` are left out.
    ``by``: ``acquisition_channel`` or ``first_order_tier`` (the groupings the report names).
    Unavailable with fewer than two such groups or without any lapse in them."""
    d = lapses.dropna(subset=[by])
    sizes = d[by].value_counts()
    d = d[d[by].isin(sizes[sizes >= min_n].index)]
    what = Term(f"lifecycle.what.lapse_by.{by}")
    groups = d[by].nunique()
    if groups < 2:
        return Unavailable("lifecycle.unavailable.lapse_groups",
                           {"what": what, "min_n": int(min_n), "n": len(lapses), "groups": int(groups)})
    if not d["lapsed"].any():
        return Unavailable("lifecycle.unavailable.lapse_none", {"what": what, "n": len(d)})
    curves, medians = [], []
    for group, part in d.groupby(by, sort=True):
        kmf = KaplanMeierFitter().fit(part["days_to_lapse"], part["lapsed"], label=str(group))
        ci = kmf.confidence_interval_survival_function_
        curves.append(pd.DataFrame({"group": str(group), "days": kmf.survival_function_.index,
                                    "survival": kmf.survival_function_.iloc[:, 0].to_numpy(),
                                    "ci_low": ci.iloc[:, 0].to_numpy(), "ci_high": ci.iloc[:, 1].to_numpy()}))
        med_ci = median_survival_times(kmf.confidence_interval_)
        medians.append({"group": str(group), "n": len(part), "lapses": int(part["lapsed"].sum()),
                        "median_days": float(kmf.median_survival_time_),
                        "ci_low": float(med_ci.iloc[0, 0]), "ci_high": float(med_ci.iloc[0, 1])})
    test = multivariate_logrank_test(d["days_to_lapse"], d[by], d["lapsed"])
    med = pd.DataFrame(medians).replace([np.inf, -np.inf], np.nan)
    return LapseCurves(by, pd.concat(curves, ignore_index=True), med,
                       {"statistic": float(test.test_statistic), "df": int(test.degrees_of_freedom),
                        "p_value": float(test.p_value)})


def median_time_to_lapse(lapses: pd.DataFrame) -> Estimate | Unavailable:
    """Kaplan–Meier median days from the first purchase to the lapse over all customers
    followed (``features.lapse_times`` rows), with its 95% interval (NaN bound where the band
    does not reach 50%); unavailable while fewer than half have lapsed."""
    lapsed = int(lapses["lapsed"].sum()) if len(lapses) else 0
    if not lapsed:
        return Unavailable("lifecycle.unavailable.lapse_none", {"what": Term("lifecycle.what.lapse"),
                                                                "n": len(lapses)})
    kmf = KaplanMeierFitter().fit(lapses["days_to_lapse"], lapses["lapsed"])
    median = float(kmf.median_survival_time_)
    if not np.isfinite(median):
        return Unavailable("lifecycle.unavailable.lapse_median", {"n": len(lapses), "lapses": lapsed})
    lo, hi = (float(x) for x in median_survival_times(kmf.confidence_interval_).iloc[0])
    return Estimate(median, float("nan"), lo, hi if np.isfinite(hi) else float("nan"), len(lapses),
                    "Kaplan–Meier median")


# -- CLV and its validation --------------------------------------------------------------------

@dataclass(frozen=True)
class CustomerValue:
    """Fitted BG/NBD and Gamma-Gamma models and per-customer values at the observation end.

    ``table`` (indexed by customer_id): ``p_alive``, ``expected_purchases`` (over the horizon),
    ``expected_spend`` (per purchase, currency), ``clv`` (discounted, currency),
    ``value_if_retained`` (CLV if the customer is still active: clv / p_alive) and
    ``p_no_purchase`` (no purchase in the next ``window_weeks``); ``summary``: the weekly
    customer summary the models were fitted on."""

    purchases: clv.BetaGeoModel
    spend: clv.GammaGammaModel
    table: pd.DataFrame
    total: clv.ClvTotal
    window_weeks: int
    summary: pd.DataFrame

    def total_of(self, customers, horizon_months: int, annual_discount_rate: float,
                 if_retained: bool = False) -> Estimate:
        """Sum of the discounted CLV of ``customers`` (ids; ``if_retained``: of their value if
        still active, CLV / P(alive)) with a delta-method 95% interval for this fixed group."""
        s = self.summary.loc[list(customers)]

        def total(bg: pd.Series, gg: pd.Series) -> float:
            value = clv.discounted_clv(self.purchases, self.spend, s, horizon_months, annual_discount_rate,
                                       purchase_params=bg, spend_params=gg)
            if if_retained:
                p = self.purchases.probability_alive(s, bg)
                value = np.where(p > 0, value / p.where(p > 0, 1.0), 0.0)
            return float(np.sum(value))

        method = "CLV if retained (CLV / P(alive)), delta method" if if_retained else "CLV, delta method"
        return clv.delta_total(self.purchases, self.spend, total, len(s), method)


def _degenerate(models: dict) -> str:
    """The names of the fitted models (name -> model) that did not converge (their ``warnings_``
    say why); empty when all converged."""
    return ", ".join(name for name, m in models.items() if not m.converged_)


def customer_value(summary: pd.DataFrame, rules: LifecycleParams, small_n: int) -> CustomerValue | Unavailable:
    """Fit both models on a weekly ``customer_summary`` and value every customer; unavailable
    with fewer than ``small_n`` buyers or repeat buyers, or when a fit is degenerate."""
    repeat_buyers = len(clv.GammaGammaModel.repeat_buyers(summary))
    if len(summary) < small_n:
        return Unavailable.too_few("lifecycle.what.bgnbd", len(summary), small_n, "lifecycle.of.buyers")
    if repeat_buyers < small_n:
        return Unavailable.too_few("lifecycle.what.gamma_gamma", repeat_buyers, small_n,
                                   "lifecycle.of.repeat_buyers")
    bg = clv.BetaGeoModel().fit(summary)
    gg = clv.GammaGammaModel().fit(summary)
    problem = _degenerate({"BG/NBD": bg, "Gamma-Gamma": gg})
    if problem:
        return Unavailable("lifecycle.unavailable.degenerate", {"models": problem})
    horizon_weeks = rules.clv_horizon_months * clv.DAYS_PER_MONTH / WEEK
    value = clv.discounted_clv(bg, gg, summary, rules.clv_horizon_months, rules.annual_discount_rate)
    p_alive = bg.probability_alive(summary)
    table = pd.DataFrame({
        "p_alive": p_alive,
        "expected_purchases": bg.expected_purchases(horizon_weeks, summary),
        "expected_spend": gg.expected_spend(summary),
        "clv": value,
        "value_if_retained": np.where(p_alive > 0, value / p_alive.where(p_alive > 0, 1.0), 0.0),
        "p_no_purchase": bg.probability_no_purchase(rules.holdout_weeks, summary),
    }, index=summary.index)
    total = clv.total_clv(bg, gg, summary, rules.clv_horizon_months, rules.annual_discount_rate)
    return CustomerValue(bg, gg, table, total, rules.holdout_weeks, summary)


@dataclass(frozen=True)
class ChurnRanking:
    """How well scores rank "no purchase in the holdout window": ``table`` (AUC and top-decile
    lift per score and the AUC difference of the first two, bootstrap 95% intervals), ``roc``
    points, ``n`` customers scored and their ``lapse_rate``."""

    table: pd.DataFrame
    roc: pd.DataFrame
    n: int
    lapse_rate: Estimate


@dataclass(frozen=True)
class HoldoutCheck:
    """Calibration / holdout validation of the purchase model and of the churn-risk ranking.

    ``by_frequency``: calibration repeat purchases (bucket) -> customers, mean actual and
    predicted holdout purchases; ``tracking``: weekly cumulative repeat purchases, actual and
    predicted; ``ranking``: how well the churn score finds the customers who bought nothing in
    the holdout window.
    """

    calibration_end: date
    model: clv.BetaGeoModel
    by_frequency: pd.DataFrame
    tracking: pd.DataFrame
    ranking: ChurnRanking | Unavailable


def _frequency_buckets(summary: pd.DataFrame, predicted: pd.Series, top: int = 7) -> pd.DataFrame:
    b = summary["frequency"].clip(upper=top).astype(int)
    out = pd.DataFrame({"bucket": b, "actual": summary["frequency_holdout"], "predicted": predicted})
    out = out.groupby("bucket").agg(customers=("actual", "size"), actual=("actual", "mean"),
                                    predicted=("predicted", "mean")).reset_index()
    out["bucket"] = out["bucket"].astype(str).where(out["bucket"] < top, f"{top}+")
    return out


def _tracking(model: clv.BetaGeoModel, daily: pd.DataFrame, calibration_end: date) -> pd.DataFrame:
    """Weekly cumulative repeat purchases of the calibration customers, actual vs the model's
    expectation (sum over first-purchase days of customers x E[X(t - first day)])."""
    cal = pd.Timestamp(calibration_end)
    firsts = daily[(daily["date"] <= cal) & (daily["first_purchases"] > 0)]
    weeks = pd.date_range(daily["date"].min(), daily["date"].max(), freq="7D")
    age = (weeks.to_numpy()[:, None] - firsts["date"].to_numpy()[None, :]) / np.timedelta64(1, "D") / WEEK
    expected = model.expected_purchases_new_customer(np.clip(age, 0, None))
    predicted = (expected * firsts["first_purchases"].to_numpy()[None, :]).sum(axis=1)
    actual = daily.set_index("date")["repeat_purchases"].cumsum().reindex(weeks, method="ffill").fillna(0)
    return pd.DataFrame({"week": weeks, "actual": actual.to_numpy(), "predicted": predicted,
                         "period": np.where(weeks <= cal, "calibration", "holdout")})


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve as the Mann–Whitney U statistic / (n1 n0) (ties count half);
    NaN with one class only."""
    pos = y == 1
    if pos.all() or not pos.any():
        return float("nan")
    u = mannwhitneyu(score[pos], score[~pos], method="asymptotic", use_continuity=False).statistic
    return float(u / (pos.sum() * (~pos).sum()))


def _top_lift(y: np.ndarray, score: np.ndarray, share: float = 0.1) -> float:
    if not y.any():
        return float("nan")
    k = max(1, int(round(share * len(y))))
    order = np.argsort(-score, kind="stable")
    return float(y[order[:k]].mean() / y.mean())


def _ranking(y: np.ndarray, scores: dict[str, np.ndarray], reps: int = 200, seed: int = 0) -> pd.DataFrame:
    """AUC and top-decile lift per score, and the AUC difference of the first two, with paired
    bootstrap 95% intervals (resamples that hold one class only are left out); the difference
    row has ``score == "difference"``."""
    rng = np.random.default_rng(seed)
    names = list(scores)
    point = {k: (_auc(y, s), _top_lift(y, s)) for k, s in scores.items()}
    boot = {k: [] for k in names}
    for _ in range(reps):
        i = rng.integers(0, len(y), len(y))
        for k, s in scores.items():
            boot[k].append((_auc(y[i], s[i]), _top_lift(y[i], s[i])))
    rows = []
    for k in names:
        b = np.array(boot[k])
        for j, metric in enumerate(("auc", "top_decile_lift")):
            lo, hi = np.nanpercentile(b[:, j], [2.5, 97.5])
            rows.append({"score": k, "metric": metric, "estimate": point[k][j], "ci_low": lo,
                         "ci_high": hi, "n": len(y)})
    diff = np.array(boot[names[0]])[:, 0] - np.array(boot[names[1]])[:, 0]
    lo, hi = np.nanpercentile(diff, [2.5, 97.5])
    rows.append({"score": "difference", "metric": "auc_difference",
                 "estimate": point[names[0]][0] - point[names[1]][0], "ci_low": lo, "ci_high": hi, "n": len(y)})
    return pd.DataFrame(rows)


def churn_ranking(y: np.ndarray, scores: dict[str, np.ndarray], small_n: int) -> ChurnRanking | Unavailable:
    """AUC, top-decile lift and ROC of each score for the outcome ``y`` (1: no purchase in the
    window); unavailable with fewer than ``small_n`` customers or one outcome only."""
    if len(y) < small_n:
        return Unavailable.too_few("lifecycle.what.ranking", len(y), small_n, "lifecycle.of.holdout_customers")
    if y.min() == y.max():
        outcome = "lifecycle.outcome.bought_nothing" if y[0] else "lifecycle.outcome.bought_again"
        return Unavailable("lifecycle.unavailable.ranking_one_outcome", {"n": len(y), "outcome": Term(outcome)})
    roc = []
    for k, s in scores.items():
        fpr, tpr, _ = roc_curve(y, s)
        roc.append(pd.DataFrame({"score": k, "false_positive_rate": fpr, "true_positive_rate": tpr}))
    return ChurnRanking(_ranking(y, scores), pd.concat(roc, ignore_index=True), len(y),
                        proportion(int(y.sum()), len(y)))


def holdout_check(calibration: pd.DataFrame, daily: pd.DataFrame, calibration_end: date,
                  rules: LifecycleParams, small_n: int) -> HoldoutCheck | Unavailable:
    """Fit BG/NBD on the calibration period and compare with what happened in the holdout.

    ``calibration``: ``customer_summary(..., calibration_end=...)`` (weekly, with holdout
    columns); ``daily``: ``features.purchase_day_counts(..., cohort_end=calibration_end)``.
    The ranking is scored on customers active at the calibration end (silent for at most
    ``lapsed_after_days``); the outcome is no purchase in the holdout window. The model score is
    P(no purchase in the window); the plain rule ranks by days since the last purchase.
    Unavailable with fewer than ``small_n`` calibration customers or a degenerate fit.
    """
    if len(calibration) < small_n:
        return Unavailable.too_few("lifecycle.what.holdout_model", len(calibration), small_n,
                                   "lifecycle.of.buyers_before_holdout")
    model = clv.BetaGeoModel().fit(calibration)
    if _degenerate({"BG/NBD": model}):
        return Unavailable("lifecycle.unavailable.holdout_degenerate")
    window = float(calibration["duration_holdout"].iloc[0])
    predicted = model.expected_purchases(window, calibration)
    silence_weeks = calibration["T"] - calibration["recency"]
    active = calibration[silence_weeks * WEEK <= rules.lapsed_after_days]
    y = (active["frequency_holdout"] == 0).to_numpy(int)
    model_score, rule_score = CHURN_SCORES
    scores = {model_score: model.probability_no_purchase(window, active).to_numpy(),
              rule_score: (active["T"] - active["recency"]).to_numpy()}
    return HoldoutCheck(calibration_end, model, _frequency_buckets(calibration, predicted),
                        _tracking(model, daily, calibration_end), churn_ranking(y, scores, small_n))


# -- churn-risk warning ------------------------------------------------------------------------

def churn_risk(values: pd.DataFrame, stage_now: pd.Series, stage_before: pd.Series,
               rules: LifecycleParams) -> pd.DataFrame:
    """Valuable active customers at risk, ranked by value at risk.

    Valuable: ``value_if_retained`` at or above the ``churn_value_quantile`` of active customers
    (not lapsed). At risk: stage ``at_risk`` or P(alive) below ``at_risk_p_alive``.
    ``value_at_risk`` = value_if_retained − clv (the expected value lost because the customer may
    already be gone). Returns customer_id and scores only.
    """
    v = values.join(stage_now.rename("stage"), how="inner")
    active = v[v["stage"].isin(ACTIVE_STAGES)]
    cut = active["value_if_retained"].quantile(rules.churn_value_quantile)
    before = stage_before.reindex(active.index).astype(object)
    flagged = active[(active["value_if_retained"] >= cut)
                     & ((active["stage"] == "at_risk") | (active["p_alive"] < rules.at_risk_p_alive))]
    out = flagged.assign(value_at_risk=flagged["value_if_retained"] - flagged["clv"],
                         became_at_risk=((flagged["stage"] == "at_risk")
                                         & (before.reindex(flagged.index) != "at_risk")).astype(int))
    out = out.sort_values(["value_at_risk", "value_if_retained"], ascending=False)
    out.insert(0, "risk_rank", np.arange(1, len(out) + 1))
    return out.rename_axis("customer_id").reset_index()[CHURN_COLUMNS]


def churn_list(value: CustomerValue | Unavailable, stages: StageHistory,
               rules: LifecycleParams) -> pd.DataFrame | Unavailable:
    """The churn-risk list (:func:`churn_risk`), or why there is none: no CLV, or nobody flagged."""
    if isinstance(value, Unavailable):
        return Unavailable("lifecycle.unavailable.churn_no_clv")
    out = churn_risk(value.table, stages.current()["stage"], stages.previous_stage(), rules)
    if out.empty:
        return Unavailable("lifecycle.unavailable.churn_empty")
    return out


# -- the whole analysis ------------------------------------------------------------------------

@dataclass(frozen=True)
class LifecycleResult:
    """Everything the lifecycle analysis of one business unit estimates, numbers only; a part
    this unit's data cannot support is a :class:`custlib.stats.Unavailable` saying why.

    ``stage_mix``: :meth:`StageHistory.stage_mix`; ``stage_value``: expected CLV per stage of
    the customers in it (``stage, estimate, se, ci_low, ci_high, n``, currency, delta method);
    ``transitions`` pooled over the last ``transition_months`` month-to-month moves;
    ``retention``: :func:`pooled_retention`; ``lapse``: median days to lapse of all customers
    followed; ``value_at_risk``: what the customers on the churn list are worth if retained
    (sum of CLV / P(alive) over the horizon, currency, delta method)."""

    stages: StageHistory
    stage_mix: pd.DataFrame
    stage_value: pd.DataFrame | Unavailable
    open_leads: int | Unavailable
    transitions: pd.DataFrame | Unavailable
    transition_months: int
    cohorts: pd.DataFrame | Unavailable
    retention: pd.DataFrame | Unavailable
    lapse: Estimate | Unavailable
    lapse_by_channel: LapseCurves | Unavailable
    lapse_by_tier: LapseCurves | Unavailable
    value: CustomerValue | Unavailable
    holdout: HoldoutCheck | Unavailable
    churn: pd.DataFrame | Unavailable
    value_at_risk: Estimate | Unavailable
    funnel: funnel.Funnel | Unavailable

    def output_table(self) -> pd.DataFrame:
        """One row per customer: customer_id, stage, p_alive, expected_purchases, expected_spend,
        clv (the model columns empty without CLV)."""
        cols = ["p_alive", "expected_purchases", "expected_spend", "clv"]
        values = self.value.table[cols] if self.has_value else pd.DataFrame(columns=cols, dtype=float)
        out = self.stages.current()[["stage"]].join(values, how="left")
        out["stage"] = out["stage"].astype(str)
        return out.rename_axis("customer_id").reset_index()

    @property
    def has_value(self) -> bool:
        return isinstance(self.value, CustomerValue)

    @property
    def ranking(self) -> ChurnRanking | Unavailable:
        """The holdout check of the churn ranking, or why there is none."""
        if isinstance(self.holdout, HoldoutCheck):
            return self.holdout.ranking
        return Unavailable("lifecycle.unavailable.ranking_no_holdout")

    @property
    def n_staged(self) -> int:
        """Customers and open leads at the observation end."""
        return int(self.stage_mix["entities"].sum())

    @property
    def buyers(self) -> int:
        """Customers with at least one purchase by the observation end."""
        return int((self.stages.current()["purchase_days"] > 0).sum())


def _stage_value(value: CustomerValue, stages: StageHistory, rules: LifecycleParams) -> pd.DataFrame:
    """Expected CLV per stage (buyers only; prospects have none) with delta-method intervals."""
    stage = stages.current()["stage"].reindex(value.table.index)
    rows = [{"stage": str(s), **value.total_of(ids.index, rules.clv_horizon_months,
                                               rules.annual_discount_rate).to_dict()}
            for s, ids in stage.groupby(stage, observed=True)]
    return pd.DataFrame(rows)


def analyse(data) -> LifecycleResult:
    """Run the lifecycle analysis of one unit (``sources.UnitData``); parts its data cannot
    support (no leads, too few customers, no repeat buyers, ...) are :class:`Unavailable`."""
    p = data.params
    rules, small = p.lifecycle, p.small_sample_n
    end = p.observation_end
    tx = data.transactions
    customers = data.customers.select("customer_id", "signup_date", "acquisition_channel").execute()
    leads = data.leads.execute()
    start, _ = data.period()

    summary = features.customer_summary(tx, end)
    value = customer_value(summary, rules, small)
    model = value.purchases if isinstance(value, CustomerValue) else None
    stages = stage_history(tx, customers, leads, end, rules, model=model, start=start)
    cohorts = cohort_retention(features.customer_month_panel(tx, end, start))

    lapses = features.lapse_times(tx, end, rules.lapsed_after_days)
    lapses = lapses.merge(customers[["customer_id", "acquisition_channel"]], on="customer_id", how="left")
    lapses["first_order_tier"] = lapses["first_category"].map(p.category_tiers)

    cal_end = end - timedelta(weeks=rules.holdout_weeks)
    calibration = features.customer_summary(tx, end, calibration_end=cal_end)
    daily = features.purchase_day_counts(tx, end, cal_end)
    holdout = holdout_check(calibration, daily, cal_end, rules, small)

    if data.has("leads"):
        panel = stages.panel
        open_leads = int(((panel["snapshot"] == stages.snapshots[-1]) & ~panel["is_customer"]).sum())
        fun = funnel.sales_funnel(leads, end)
    else:
        open_leads = Unavailable.needs_table("leads", "lifecycle.what.prospect_leads")
        fun = Unavailable.needs_table("leads", "lifecycle.what.funnel")
    churn = churn_list(value, stages, rules)
    stage_value = _stage_value(value, stages, rules) if isinstance(value, CustomerValue) else value
    if isinstance(churn, pd.DataFrame):
        at_risk = value.total_of(churn["customer_id"], rules.clv_horizon_months, rules.annual_discount_rate,
                                 if_retained=True)
    else:
        at_risk = churn
    transitions = stages.transitions(TRANSITION_MONTHS)
    return LifecycleResult(
        stages=stages, stage_mix=stages.stage_mix(), stage_value=stage_value, open_leads=open_leads,
        transitions=transitions, transition_months=min(TRANSITION_MONTHS, len(stages.snapshots) - 1),
        cohorts=cohorts,
        retention=pooled_retention(cohorts) if isinstance(cohorts, pd.DataFrame) else cohorts,
        lapse=median_time_to_lapse(lapses),
        lapse_by_channel=time_to_lapse(lapses, "acquisition_channel", small),
        lapse_by_tier=time_to_lapse(lapses, "first_order_tier", small),
        value=value, holdout=holdout, churn=churn, value_at_risk=at_risk, funnel=fun)
