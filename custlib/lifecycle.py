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
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test
from lifelines.utils import median_survival_times
from scipy.stats import mannwhitneyu
from sklearn.metrics import roc_curve

from custlib import clv, features, funnel
from custlib.params import LIFECYCLE_STAGES, LifecycleParams
from custlib.stats import Estimate, Unavailable, proportion

ACTIVE_STAGES = ("new", "repeat", "loyal", "at_risk")
CHURN_COLUMNS = ["customer_id", "risk_rank", "p_alive", "p_no_purchase", "clv", "value_if_retained",
                 "value_at_risk", "became_at_risk"]
WEEK = 7.0


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
    rules: LifecycleParams

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

    def transitions(self, months: int = 12) -> pd.DataFrame | Unavailable:
        """Stage-to-stage moves between consecutive snapshots, pooled over the last ``months``
        pairs: ``from_stage, to_stage, entities, share`` (share of the from-stage row)."""
        if len(self.snapshots) < 2:
            return Unavailable("Moves between stages need at least two month ends; the data cover one. "
                               "A longer history would show them.")
        snaps = self.snapshots[-(months + 1):]
        p = self.panel[self.panel["snapshot"].isin(snaps)][["key", "snapshot", "stage"]]
        nxt = {a: b for a, b in zip(snaps[:-1], snaps[1:])}
        a = p[p["snapshot"].isin(list(nxt))].assign(snapshot=lambda d: d["snapshot"].map(nxt))
        m = a.merge(p, on=["key", "snapshot"], suffixes=("_from", "_to"))
        t = (m.groupby(["stage_from", "stage_to"], observed=False).size().rename("entities").reset_index()
             .rename(columns={"stage_from": "from_stage", "stage_to": "to_stage"}))
        t["share"] = t["entities"] / t.groupby("from_stage", observed=False)["entities"].transform("sum")
        return t

    def stage_table(self, current_model: pd.DataFrame | None = None) -> pd.DataFrame:
        """Stages at the last snapshot with the client's names, share (Wilson 95% CI) and
        strategy; with per-customer values, the expected CLV per stage."""
        c = self.counts
        c = c[c["snapshot"] == self.snapshots[-1]]
        total = int(c["entities"].sum())
        rows = []
        for stage, k in zip(c["stage"], c["entities"]):
            est = proportion(int(k), total)
            s = self.rules.stages.get(stage)
            rows.append({"stage": stage, "name": self.rules.stage_label(stage),
                         "phase": s.phase if s else "", "customers": int(k),
                         "share %": round(100 * est.estimate, 1),
                         "95% CI": f"{100 * est.ci_low:.1f}–{100 * est.ci_high:.1f}",
                         "strategy": s.strategy if s else ""})
        out = pd.DataFrame(rows)
        if current_model is not None:
            v = current_model.groupby("stage", observed=False)["clv"].sum()
            out.insert(5, "expected CLV", out["stage"].map(v).fillna(0.0))
        return out


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
    return StageHistory(panel.reset_index(drop=True), rules)


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
        return Unavailable("Cohort retention needs customers followed into at least one month after "
                           "their first purchase; the data cover a single month. A longer history would "
                           "enable it.")
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

    def display(self) -> pd.DataFrame:
        """The medians for the report: whole days with their 95% CI, "–" where the curve (or
        its bound) does not reach 50%."""
        days = lambda v: "–" if pd.isna(v) else f"{v:,.0f}"  # noqa: E731
        m = self.medians
        return pd.DataFrame({self.by.replace("_", " "): m["group"], "customers": m["n"], "lapses": m["lapses"],
                             "median days to lapse": m["median_days"].map(days),
                             "95% CI": [f"{days(lo)} to {days(hi)}" for lo, hi in zip(m["ci_low"], m["ci_high"])]})


def time_to_lapse(lapses: pd.DataFrame, by: str, min_n: int = 30) -> LapseCurves | Unavailable:
    """Kaplan–Meier estimate per value of ``by`` on ``features.lapse_times`` rows (``days_to_lapse``,
    ``lapsed``) and a multivariate log-rank test; groups smaller than ``min_n`` are left out.
    Unavailable with fewer than two such groups or without any lapse in them."""
    d = lapses.dropna(subset=[by])
    sizes = d[by].value_counts()
    d = d[d[by].isin(sizes[sizes >= min_n].index)]
    what = f"Time to lapse by {by.replace('_', ' ')}"
    groups = d[by].nunique()
    if groups < 2:
        return Unavailable(f"{what} needs at least two groups of {min_n:,} or more customers to compare; "
                           f"{len(lapses):,} customers can be followed and {groups} group(s) are that large. "
                           "More customers would enable it.")
    if not d["lapsed"].any():
        return Unavailable(f"{what}: none of the {len(d):,} customers followed has lapsed yet, so there is "
                           "no lapse curve to compare. A longer history would enable it.")
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


def logrank_text(curves: LapseCurves) -> str:
    """One sentence on the log-rank test of equal lapse curves."""
    t = curves.logrank
    verdict = "differ" if t["p_value"] < 0.05 else "do not differ detectably"
    return (f"Log-rank test: the curves {verdict} between groups of {curves.by.replace('_', ' ')} "
            f"(chi-square {t['statistic']:.1f}, df {t['df']}, p = {t['p_value']:.2g}).")


# -- CLV and its validation --------------------------------------------------------------------

@dataclass(frozen=True)
class CustomerValue:
    """Fitted BG/NBD and Gamma-Gamma models and per-customer values at the observation end.

    ``table`` (indexed by customer_id): ``p_alive``, ``expected_purchases`` (over the horizon),
    ``expected_spend`` (per purchase, currency), ``clv`` (discounted, currency),
    ``value_if_retained`` (CLV if the customer is still active: clv / p_alive) and
    ``p_no_purchase`` (no purchase in the next ``window_weeks``)."""

    purchases: clv.BetaGeoModel
    spend: clv.GammaGammaModel
    table: pd.DataFrame
    total: clv.ClvTotal
    window_weeks: int


def _degenerate(models: dict) -> str:
    """Why the fitted models (name -> model) are degenerate; empty when all converged."""
    return "; ".join(f"{name}: {'; '.join(m.warnings_)}" for name, m in models.items() if not m.converged_)


def customer_value(summary: pd.DataFrame, rules: LifecycleParams, small_n: int) -> CustomerValue | Unavailable:
    """Fit both models on a weekly ``customer_summary`` and value every customer; unavailable
    with fewer than ``small_n`` buyers or repeat buyers, or when a fit is degenerate."""
    repeat_buyers = len(clv.GammaGammaModel.repeat_buyers(summary))
    if len(summary) < small_n:
        return Unavailable.too_few("the purchase model (BG/NBD) and CLV", len(summary), small_n, "buyers")
    if repeat_buyers < small_n:
        return Unavailable.too_few("the spend model (Gamma-Gamma) and CLV", repeat_buyers, small_n,
                                   "repeat buyers")
    bg = clv.BetaGeoModel().fit(summary)
    gg = clv.GammaGammaModel().fit(summary)
    problem = _degenerate({"BG/NBD": bg, "Gamma-Gamma": gg})
    if problem:
        return Unavailable(f"CLV is not estimated: the models cannot be fitted reliably on these data "
                           f"({problem}). More customers with repeat purchases would enable it.")
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
    return CustomerValue(bg, gg, table, total, rules.holdout_weeks)


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
    bootstrap 95% intervals (resamples that hold one class only are left out)."""
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
        for j, metric in enumerate(("AUC", "top-decile lift")):
            lo, hi = np.nanpercentile(b[:, j], [2.5, 97.5])
            rows.append({"score": k, "metric": metric, "estimate": point[k][j], "ci_low": lo,
                         "ci_high": hi, "n": len(y)})
    diff = np.array(boot[names[0]])[:, 0] - np.array(boot[names[1]])[:, 0]
    lo, hi = np.nanpercentile(diff, [2.5, 97.5])
    rows.append({"score": f"{names[0]} − {names[1]}", "metric": "AUC difference",
                 "estimate": point[names[0]][0] - point[names[1]][0], "ci_low": lo, "ci_high": hi, "n": len(y)})
    return pd.DataFrame(rows)


def churn_ranking(y: np.ndarray, scores: dict[str, np.ndarray], small_n: int) -> ChurnRanking | Unavailable:
    """AUC, top-decile lift and ROC of each score for the outcome ``y`` (1: no purchase in the
    window); unavailable with fewer than ``small_n`` customers or one outcome only."""
    if len(y) < small_n:
        return Unavailable.too_few("how well the churn ranking finds lapses (AUC)", len(y), small_n,
                                   "customers active at the start of the holdout window")
    if y.min() == y.max():
        outcome = "bought nothing" if y[0] else "bought again"
        return Unavailable(f"How well the churn ranking finds lapses cannot be checked: all {len(y):,} "
                           f"customers active at the start of the holdout window {outcome} in it, and AUC "
                           "needs customers of both kinds. A longer or later holdout window would enable it.")
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
        return Unavailable.too_few("the purchase model for the holdout check", len(calibration), small_n,
                                   f"buyers before the holdout window (the last {rules.holdout_weeks} weeks)")
    model = clv.BetaGeoModel().fit(calibration)
    problem = _degenerate({"BG/NBD": model})
    if problem:
        return Unavailable(f"The holdout check is not possible: the purchase model fitted on the data before "
                           f"the holdout window is degenerate ({problem}). More repeat buyers would enable it.")
    window = float(calibration["duration_holdout"].iloc[0])
    predicted = model.expected_purchases(window, calibration)
    silence_weeks = calibration["T"] - calibration["recency"]
    active = calibration[silence_weeks * WEEK <= rules.lapsed_after_days]
    y = (active["frequency_holdout"] == 0).to_numpy(int)
    scores = {"BG/NBD P(no purchase)": model.probability_no_purchase(window, active).to_numpy(),
              "recency rule (weeks silent)": (active["T"] - active["recency"]).to_numpy()}
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
        return Unavailable("The churn-risk list ranks customers by CLV, which this unit's data cannot "
                           "support yet (see the CLV section).")
    out = churn_risk(value.table, stages.current()["stage"], stages.previous_stage(), rules)
    if out.empty:
        return Unavailable("No valuable active customer is at risk at the observation end, so the "
                           "churn-risk list is empty.")
    return out


# -- the whole report --------------------------------------------------------------------------

@dataclass(frozen=True)
class LifecycleAnalysis:
    """Everything the lifecycle report shows for one business unit; a part this unit's data
    cannot support is a :class:`custlib.stats.Unavailable` saying why."""

    unit: str
    currency: str
    small_sample_n: int
    rules: LifecycleParams
    stages: StageHistory
    open_leads: int | Unavailable
    cohorts: pd.DataFrame | Unavailable
    lapse_by_channel: LapseCurves | Unavailable
    lapse_by_tier: LapseCurves | Unavailable
    value: CustomerValue | Unavailable
    holdout: HoldoutCheck | Unavailable
    churn: pd.DataFrame | Unavailable
    funnel: funnel.Funnel | Unavailable
    customers: pd.DataFrame = field(repr=False)

    def output_table(self) -> pd.DataFrame:
        """lifecycle.parquet: customer_id, stage, p_alive, expected_purchases, expected_spend, clv
        (the model columns empty without CLV)."""
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
        return Unavailable("How well the churn ranking finds real lapses is checked in the holdout window, "
                           "which this unit's data cannot support yet (see the holdout check).")

    @property
    def n_staged(self) -> int:
        """Customers and open leads at the observation end."""
        p = self.stages.panel
        return int((p["snapshot"] == self.stages.snapshots[-1]).sum())

    def prospect_note(self) -> str:
        """Where the prospects come from (use when ``open_leads`` is available)."""
        p = self.stages.panel
        prospects = int(((p["snapshot"] == self.stages.snapshots[-1]) & (p["stage"] == "prospect")).sum())
        if not prospects:
            return "No prospects at the observation end: no open sales lead and no customer without a purchase."
        return (f"Prospects at the observation end: {prospects:,}, of which open sales leads without a customer "
                f"record {self.open_leads:,} and customers who signed up without buying "
                f"{prospects - self.open_leads:,}.")

    def stage_table(self) -> pd.DataFrame:
        """Stages at the observation end with names, shares, expected CLV (when available) and
        strategies."""
        if not self.has_value:
            return self.stages.stage_table()
        current = self.stages.current()[["stage"]].join(self.value.table[["clv"]], how="left")
        return self.stages.stage_table(current)

    def model_table(self) -> pd.DataFrame:
        """Fitted BG/NBD (weekly) and Gamma-Gamma parameters with standard errors and 95% CIs."""
        v = self.value
        parts = [v.purchases.summary.assign(model="BG/NBD purchases (per week)"),
                 v.spend.summary.assign(model=f"Gamma-Gamma spend ({self.currency})")]
        t = pd.concat(parts, ignore_index=True)
        t["log-likelihood"] = [v.purchases.log_likelihood_] * 4 + [v.spend.log_likelihood_] * 3
        for c in ("estimate", "se", "ci_low", "ci_high"):
            t[c] = t[c].map("{:,.4g}".format)
        t["95% CI"] = t["ci_low"] + " to " + t["ci_high"]
        t = t.rename(columns={"se": "standard error", "n": "customers"})
        return t[["model", "parameter", "estimate", "standard error", "95% CI", "customers", "log-likelihood"]]

    def ranking_table(self) -> pd.DataFrame:
        """AUC and lift per score with their bootstrap 95% CI, two decimals."""
        t = self.ranking.table
        return pd.DataFrame({"score": t["score"], "measure": t["metric"], "estimate": t["estimate"].map("{:.2f}".format),
                             "95% CI": [f"{lo:.2f} to {hi:.2f}" for lo, hi in zip(t["ci_low"], t["ci_high"])]})

    def churn_display(self) -> pd.DataFrame:
        """The churn-risk list for the report: probabilities in %, money in whole currency units."""
        c, money = self.churn, "{:,.0f}".format
        return pd.DataFrame({"customer": c["customer_id"], "rank": c["risk_rank"],
                             "P(still active)": c["p_alive"].map("{:.0%}".format),
                             "P(no purchase in the horizon)": c["p_no_purchase"].map("{:.0%}".format),
                             f"CLV ({self.currency})": c["clv"].map(money),
                             f"value if retained ({self.currency})": c["value_if_retained"].map(money),
                             f"value at risk ({self.currency})": c["value_at_risk"].map(money),
                             "newly at risk": c["became_at_risk"].map({1: "yes", 0: ""})})

    def retention_table(self) -> pd.DataFrame:
        """Pooled cohort retention at each month (Wilson 95% CI; a note instead below
        ``small_sample_n`` customers)."""
        months = range(1, int(self.cohorts["months_since_first"].max()) + 1)
        rows = [(m, retention_at(self.cohorts, m)) for m in months]
        return pd.DataFrame({"months since first purchase": [m for m, _ in rows],
                             "retention (95% CI)": [e.short("{:.1%}", self.small_sample_n) for _, e in rows],
                             "n": [e.n for _, e in rows]})

    def retention(self) -> dict[int, Estimate]:
        if isinstance(self.cohorts, Unavailable):
            return {}
        return {m: retention_at(self.cohorts, m) for m in self.rules.retention_months}

    def _count(self, k: int, n: int, of: str) -> str:
        """'298 of 466 buyers (63.9%, 95% CI 59.5%–68.2%)', or a too-few note instead of the rate."""
        if n < self.small_sample_n:
            return f"{k:,} of {n:,} {of} (too few for a reliable rate; at least {self.small_sample_n:,} needed)"
        e = proportion(k, n)
        return f"{k:,} of {n:,} {of} ({e.estimate:.1%}, 95% CI {e.ci_low:.1%}–{e.ci_high:.1%})"

    def headline(self) -> list[str]:
        """Headline numbers in the executive reading order."""
        cur = self.stages.current()
        buyers = cur[cur["purchase_days"] > 0]
        active = int(buyers["stage"].isin(ACTIVE_STAGES).sum())
        repeat = int((buyers["purchase_days"] >= 2).sum())
        c = self.currency
        out = [
            f"Active customers 活跃客户: {self._count(active, len(buyers), 'buyers')} bought within the "
            f"last {self.rules.lapsed_after_days} days.",
            f"Repeat rate 复购率: {self._count(repeat, len(buyers), 'buyers')} bought on two or more days.",
        ]
        ret = "; ".join(f"{m} months {r.estimate:.1%} (95% CI {r.ci_low:.1%}–{r.ci_high:.1%}, n = {r.n:,})"
                        for m, r in self.retention().items() if r.n >= self.small_sample_n)
        if isinstance(self.cohorts, Unavailable):
            out.append(f"Cohort retention: {self.cohorts.reason}")
        else:
            ret = ret or f"too few customers followed that long (at least {self.small_sample_n:,} needed)"
            out.append(f"Cohort retention (bought again in month k after the first purchase): {ret}.")
        if self.has_value:
            tot = self.value.total.estimate
            out.append(f"Expected CLV 客户生命周期价值 of all buyers over the next "
                       f"{self.rules.clv_horizon_months} months: {tot.estimate:,.0f} {c} "
                       f"(95% CI {tot.ci_low:,.0f}–{tot.ci_high:,.0f}, n = {tot.n:,}; discounted at {self.rules.annual_discount_rate:.0%} a year).")
        else:
            out.append(f"Expected CLV 客户生命周期价值: {self.value.reason}")
        if isinstance(self.churn, Unavailable):
            out.append(f"Churn-risk warning 流失预警: {self.churn.reason}")
        else:
            text = (f"Churn-risk warning 流失预警: {len(self.churn):,} valuable customers are at risk, "
                    f"{self.churn['value_at_risk'].sum():,.0f} {c} of expected value at stake "
                    f"(their value if retained: {self.churn['value_if_retained'].sum():,.0f} {c})")
            if isinstance(self.ranking, ChurnRanking):
                auc = self.ranking.table.set_index(["score", "metric"])["estimate"].xs("AUC", level="metric")
                text += (f"; the ranking found real lapses in the holdout window with AUC {auc.iloc[0]:.2f} "
                         f"vs {auc.iloc[1]:.2f} for days since the last purchase")
            out.append(text + ".")
        if isinstance(self.funnel, funnel.Funnel):
            out.append(self.funnel.headline(self.small_sample_n))
        return out

    def caveats(self) -> list[str]:
        """Warnings an executive must see (small samples, weak validation, rules left out)."""
        out = []
        buyers = int((self.stages.current()["purchase_days"] > 0).sum())
        if buyers < self.small_sample_n:
            out.append(f"This unit has {buyers:,} buyers only (fewer than {self.small_sample_n:,}): read the "
                       "stage shares and cohort figures as counts, not as rates to act on.")
        for m, r in self.retention().items():
            if r.n < self.small_sample_n:
                out.append(f"Retention at {m} months rests on {r.n} customers only; not shown as a finding.")
        if not self.has_value:
            out.append("The at-risk stage uses the purchase-gap rules only: the purchase model's probability "
                       "of being active is not available for this unit.")
        if isinstance(self.funnel, funnel.Funnel):
            small = self.funnel.conversion[self.funnel.conversion["n"] < self.small_sample_n]
            if len(small):
                out.append(f"{len(small)} funnel steps have fewer than {self.small_sample_n} decided leads; "
                           "their rates are too uncertain to act on.")
        if isinstance(self.churn, pd.DataFrame) and len(self.churn) < self.small_sample_n:
            out.append(f"Only {len(self.churn)} customers are on the churn-risk list.")
        if isinstance(self.ranking, ChurnRanking):
            diff = self.ranking.table[self.ranking.table["metric"] == "AUC difference"].iloc[0]
            if diff["ci_low"] <= 0:
                out.append("In the holdout window the model's churn ranking was not clearly better than "
                           "ranking by days since the last purchase.")
        return out

    def show_caveats(self) -> None:
        """Render each caveat as a visible warning."""
        from custlib import report

        for text in self.caveats():
            report.warning(text)

    def write_outputs(self, output_dir) -> list:
        """lifecycle.parquet, funnel.csv (with leads; a stale one is removed without) and
        targets/churn_risk.csv (empty when nobody is listed), via report.write_output."""
        from custlib import report

        d = Path(output_dir)
        churn = self.churn if isinstance(self.churn, pd.DataFrame) else pd.DataFrame(columns=CHURN_COLUMNS)
        paths = [report.write_output(self.output_table(), d / "lifecycle.parquet")]
        if isinstance(self.funnel, funnel.Funnel):
            paths.append(report.write_output(self.funnel.conversion, d / "funnel.csv"))
        else:
            (d / "funnel.csv").unlink(missing_ok=True)
        return [*paths, report.write_output(churn, d / "targets" / "churn_risk.csv")]


def output_files(paths: list) -> pd.DataFrame:
    """The written output files (relative to their common folder) with their rows, for the report."""
    root = Path(os.path.commonpath(paths))
    rows = []
    for path in paths:
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        rows.append({"file": path.relative_to(root).as_posix(), "rows": len(df),
                     "columns": ", ".join(df.columns)})
    return pd.DataFrame(rows)


def analyse(data) -> LifecycleAnalysis:
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
        fun = funnel.sales_funnel(leads, end, rules.funnel_stages)
    else:
        open_leads = Unavailable.needs_table("leads", "Counting open sales leads as prospects 潜在客户")
        fun = Unavailable.needs_table("leads", "The sales funnel 销售漏斗")
    return LifecycleAnalysis(p.id, p.currency, small, rules, stages, open_leads, cohorts,
                             time_to_lapse(lapses, "acquisition_channel", small),
                             time_to_lapse(lapses, "first_order_tier", small),
                             value, holdout, churn_list(value, stages, rules), fun, customers)
