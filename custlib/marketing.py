"""Marketing campaigns (个性化邮件营销, targeted pushes): which campaign caused extra purchases,
for which value tier, and whether it paid. Numbers only: wording, tables and files belong to the
presentation layer.

Per contact (:func:`campaign_outcomes`, computed in the engine): whether the customer converted
(a positive order 1..``window_days`` days after sending) and the net spend over those days,
with pre-campaign behaviour (orders and net spend in the 90 and 365 days before the campaign's
start, tenure, value tier at the start).

* Campaigns with a random holdout: treatment − holdout difference in conversion and in spend,
  plain (:func:`difference`) and regression-adjusted on pre-campaign behaviour
  (:func:`adjusted_difference`, Lin 2013), overall and per value tier with a test of equal
  effects across tiers; incremental revenue and ROI against ``cost_per_contact``.
* Campaigns without a holdout (contacts chosen by the marketer): observational. The naive gap
  contacted − eligible non-contacted, beside the effect on the contacted (ATT) by IPW, AIPW and
  matching (:func:`custlib.causal.att.estimate_att`) on the same pre-campaign behaviour; valid
  only if that behaviour captures how contacts were chosen.

Open and click rates are context, not effects.

Uplift models (:func:`campaign_uplift`): per randomised campaign, who converts because of it,
from pre-campaign behaviour (:mod:`custlib.uplift`), evaluated by cross-fitting (every customer
scored by a model that did not see them) with the Qini curve against random targeting, per
campaign and for the unit's campaigns taken together (:func:`unit_uplift`); the target list is
the current customers (:func:`current_customers`) with the highest predicted uplift, not the
highest response.

Next best category (:func:`next_best_category`): per customer the top-k product categories not
bought yet, from category co-occurrence across customers, checked on a time holdout against the
most popular categories. Basket rules (:func:`basket_rules`): pairs of categories bought by the
same customer within a year, per value tier (support, confidence, lift).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import scipy.linalg
from scipy import stats as st
from sklearn.model_selection import StratifiedKFold
from statsmodels.regression.linear_model import OLS
from threadpoolctl import threadpool_limits

from custlib.causal.att import ATTResult, design_matrix, estimate_att
from custlib.features import as_table
from custlib.params import MarketingParams, SegmentationParams
from custlib.stats import Estimate, Unavailable, proportion
from custlib.uplift import TwoModelUplift, cross_fitted_qini

PRE_DAYS = (90, 365)  # pre-campaign windows of the covariates, days before the campaign's start
COUNT_COLUMNS = tuple(f"pre_{k}_{d}" for d in PRE_DAYS for k in ("orders", "spend"))
COVARIATES = (*(f"log_{c}" for c in COUNT_COLUMNS), "tenure_years", "value_tier")
OUTCOMES = ("conversion", "spend")  # conversion: 0/1; spend: net currency per customer in the window
ATT_METHODS = ("ipw", "aipw", "matching")
MAX_CONTROLS = 20_000  # eligible non-contacted customers per campaign without holdout (sampled above)
SAMPLE_SEED = 2024
WHAT = "marketing.what.campaign_effects"


# -- inputs ---------------------------------------------------------------------------------

def _campaign_table(data) -> pd.DataFrame:
    """One row per campaign of the unit: name, start date, cost per contact, whether it kept a
    random holdout, contacts (treated) and holdout counts, channel (the first by name if several).
    Campaigns without contacts are left out."""
    c = data.campaign_contacts
    counts = c.group_by("campaign_id").aggregate(
        contacts=c.count(), holdout=(c["group"] == "holdout").fill_null(False).sum(),  # no group: no holdout
        channel=c.channel.min()).execute()
    counts["treated"] = counts["contacts"] - counts["holdout"]
    camp = data.campaigns.select("campaign_id", "campaign_name", "start_date", "cost_per_contact").execute()
    out = camp.merge(counts, on="campaign_id").sort_values(["start_date", "campaign_id"], ignore_index=True)
    out["start_date"] = pd.to_datetime(out["start_date"]).dt.date
    out["randomised"] = out["holdout"] > 0
    return out


def _eligible(data, campaigns: pd.DataFrame, window_days: int, params: SegmentationParams) -> pd.DataFrame:
    """Per campaign, the unit's customers it could have chosen: first positive order at least
    ``window_days`` before its start (a full window of history), plus anyone it contacted.
    Columns: campaign_id, customer_id, contacted, value_tier (the segmentation's Pareto tiers on
    net revenue before the start, among these customers)."""
    from custlib.segmentation import value_tiers

    tx = data.transactions.select("customer_id", "order_date", amount=data.transactions.amount.cast("float64"))
    starts = ibis.memtable(campaigns[["campaign_id", "start_date"]]).mutate(
        start=ibis._.start_date.cast("date")).select("campaign_id", "start")
    j = tx.join(starts, tx.order_date < starts.start)
    history = j.group_by(["campaign_id", "customer_id"]).aggregate(
        revenue=j.amount.sum(), first_order=j.order_date.min(where=j.amount > 0), start=j.start.max())
    history = history.filter(history.first_order <= history.start - ibis.interval(days=window_days))
    c = data.campaign_contacts
    contacted = c.select("campaign_id", "customer_id").distinct().mutate(contacted=ibis.literal(True))
    pool = history.select("campaign_id", "customer_id", "revenue").outer_join(
        contacted, ["campaign_id", "customer_id"])
    pool = pool.select(
        campaign_id=ibis.coalesce(pool.campaign_id, pool.campaign_id_right),
        customer_id=ibis.coalesce(pool.customer_id, pool.customer_id_right),
        revenue=pool.revenue.fill_null(0.0), contacted=pool.contacted.fill_null(False)).execute()
    names = tuple(t.name for t in params.value_tiers)
    pool["value_tier"] = pd.concat([
        value_tiers(g.set_index("customer_id")["revenue"], params.value_tier_cuts, names).set_axis(g.index)
        for _, g in pool.groupby("campaign_id", sort=False)])
    return pool.drop(columns="revenue")


def _comparison_rows(campaigns: pd.DataFrame, contacts: pd.DataFrame, eligible: pd.DataFrame,
                     max_controls: int, seed: int) -> pd.DataFrame:
    """Rows to measure: every contact (``treated`` 1 for treatment or a campaign without
    holdout, 0 for holdout, weight 1, outcome from its ``sent_date``) and, for each campaign
    without holdout, its eligible non-contacted customers (``treated`` 0, outcome from the
    campaign's start), at most ``max_controls`` of them drawn at random, each standing for
    eligible / drawn customers (``weight``)."""
    start = campaigns.set_index("campaign_id")["start_date"]
    rows = [contacts.assign(treated=(contacts["group"] != "holdout").astype(int), weight=1.0)
            [["campaign_id", "customer_id", "sent_date", "treated", "weight"]]]
    rng = np.random.default_rng(seed)
    for cid in campaigns.loc[~campaigns["randomised"], "campaign_id"]:
        pool = eligible.loc[(eligible["campaign_id"] == cid) & ~eligible["contacted"], "customer_id"].to_numpy()
        drawn = pool if len(pool) <= max_controls else rng.choice(np.sort(pool), max_controls, replace=False)
        rows.append(pd.DataFrame({"campaign_id": cid, "customer_id": drawn, "sent_date": start[cid], "treated": 0,
                                  "weight": len(pool) / max(len(drawn), 1)}))
    out = pd.concat(rows, ignore_index=True)
    out["start_date"] = out["campaign_id"].map(start)
    return out


def _pre_aggregates(t: ir.Table, before: ir.IntegerColumn) -> dict[str, ir.Scalar]:
    """Aggregates of orders ``t`` (order_date, amount) by their days ``before`` a start (1 = the
    day before): ``pre_orders_<d>`` (positive orders) and ``pre_spend_<d>`` (net revenue; null
    without an order) in the ``d`` days before, for ``d`` in :data:`PRE_DAYS`."""
    out = {}
    for d in PRE_DAYS:
        pre = (before >= 1) & (before <= d)
        out[f"pre_orders_{d}"] = (pre & (t.amount > 0)).sum()
        out[f"pre_spend_{d}"] = t.amount.sum(where=pre)
    return out


def campaign_outcomes(data, window_days: int = 30, max_controls: int = MAX_CONTROLS,
                      seed: int = SAMPLE_SEED) -> pd.DataFrame:
    """One row per compared customer and campaign (a :class:`custlib.sources.UnitData` with
    campaign tables): campaign_id, customer_id, treated (0/1), weight (sampling weight of
    non-contacted controls, else 1), sent_date, start_date, value_tier (at the campaign's start),
    ``conversion`` (1 if a positive order 1..``window_days`` days after sent_date), ``spend``
    (net revenue over those days, currency), ``pre_orders_<d>`` / ``pre_spend_<d>`` (positive
    orders and net revenue in the ``d`` days before the campaign's start, for ``d`` in
    :data:`PRE_DAYS`) and ``tenure_days`` (start minus first positive order; 0 without one).

    Compared customers: a campaign's contacts (holdout as controls) and, for a campaign without
    holdout, its eligible non-contacted customers (see :func:`_eligible`, sampled above
    ``max_controls``). Windows and aggregates are computed in the engine."""
    campaigns = _campaign_table(data)
    contacts = data.campaign_contacts.select("campaign_id", "customer_id", "sent_date", "group").execute()
    contacts["sent_date"] = pd.to_datetime(contacts["sent_date"]).dt.date
    eligible = _eligible(data, campaigns, window_days, data.params.segmentation)
    rows = _comparison_rows(campaigns, contacts, eligible, max_controls, seed)
    rows["row"] = np.arange(len(rows))
    r = ibis.memtable(rows[["row", "customer_id", "sent_date", "start_date"]]).mutate(
        sent=ibis._.sent_date.cast("date"), start=ibis._.start_date.cast("date")).select(
        "row", "customer_id", "sent", "start")
    tx = data.transactions.select("customer_id", "order_date", amount=data.transactions.amount.cast("float64"))
    bought = tx.filter(tx.amount > 0)
    first = bought.group_by("customer_id").aggregate(first_order=bought.order_date.min())
    j = r.join(tx, "customer_id")
    j = j.filter((j.order_date >= j.start - ibis.interval(days=max(PRE_DAYS)))
                 & (j.order_date <= j.sent + ibis.interval(days=window_days)))
    after = j.order_date.delta(j.sent, unit="day")
    inside = (after >= 1) & (after <= window_days)
    agg = j.group_by("row").aggregate(window_orders=(inside & (j.amount > 0)).sum(), spend=j.amount.sum(where=inside),
                                      **_pre_aggregates(j, j.start.delta(j.order_date, unit="day")))
    r2 = r.left_join(first, "customer_id")
    tenure = r2.select("row", tenure_days=r2.start.delta(r2.first_order, unit="day").cast("float64"))
    measured = tenure.left_join(agg, "row").drop("row_right").execute().set_index("row").sort_index()
    measured = measured.astype(float).fillna(0.0)  # no order in any window: zeros
    measured["tenure_days"] = measured["tenure_days"].clip(lower=0)
    out = rows.join(measured, on="row").drop(columns="row")
    out["conversion"] = (out.pop("window_orders") > 0).astype(int)
    out["spend"] = out["spend"].astype(float)
    tiers = eligible.set_index(["campaign_id", "customer_id"])["value_tier"]
    out["value_tier"] = tiers.reindex(pd.MultiIndex.from_frame(out[["campaign_id", "customer_id"]])).to_numpy()
    return out


def _covariate_frame(df: pd.DataFrame) -> pd.DataFrame:
    """:data:`COVARIATES`: log(1 + x) of the pre-campaign counts and spends (negative net spend
    counts as 0), tenure in years and the value tier."""
    out = pd.DataFrame({f"log_{c}": np.log1p(df[c].clip(lower=0)) for c in COUNT_COLUMNS}, index=df.index)
    out["tenure_years"] = df["tenure_days"] / 365.25
    out["value_tier"] = df["value_tier"]
    return out


# -- randomised campaigns ---------------------------------------------------------------------

def difference(y: np.ndarray, treated: np.ndarray) -> Estimate:
    """Mean of ``y`` among treated minus among controls, with the unequal-variance (Neyman)
    standard error sqrt(s1²/n1 + s0²/n0) and a normal 95% interval."""
    y, d = np.asarray(y, dtype=float), np.asarray(treated).astype(bool)
    a, b = y[d], y[~d]
    se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    return Estimate.normal(a.mean() - b.mean(), se, len(y), "difference")


def adjusted_difference(y: np.ndarray, treated: np.ndarray, covariates: pd.DataFrame) -> Estimate:
    """Treatment effect adjusted for pre-treatment ``covariates`` (Lin 2013): OLS of ``y`` on the
    treatment, the centred covariates (:func:`custlib.causal.att.design_matrix`) and their
    interactions with the treatment; the treatment coefficient with HC2 robust standard error.
    Consistent for the average effect under randomisation whatever the outcome model; never less
    precise asymptotically than the plain difference. Terms that add no information among the rows
    (e.g. no orders in the last 90 days within a lapsed segment: a constant, or a copy of other
    terms) are left out, found by a pivoted QR decomposition."""
    d = np.asarray(treated, dtype=float)
    x = design_matrix(covariates, list(covariates.columns)).to_numpy()
    x = x - x.mean(axis=0)
    exog = np.column_stack([np.ones_like(d), d, x, d[:, None] * x])
    _, r, pivot = scipy.linalg.qr(exog, mode="economic", pivoting=True)
    diagonal = np.abs(np.diag(r))
    keep = np.sort(pivot[diagonal > diagonal[0] * max(exog.shape) * np.finfo(float).eps])
    fit = OLS(np.asarray(y, dtype=float), exog[:, keep]).fit(cov_type="HC2")  # statsmodels.api: 0.6 s more to import
    at = int(np.searchsorted(keep, 1))  # the treatment column (kept: it varies under randomisation)
    return Estimate.normal(fit.params[at], fit.bse[at], len(d), "regression_adjusted")


def heterogeneity_test(estimates: list[Estimate]) -> tuple[float, int, float]:
    """Wald (Cochran's Q) test that independent subgroup effects are equal: Q = Σ (b_k − b̄)² /
    se_k² with b̄ the inverse-variance weighted mean; chi-square with K − 1 degrees of freedom.
    Returns (Q, df, p-value); NaN below two groups."""
    b = np.array([e.estimate for e in estimates])
    w = 1 / np.array([e.se for e in estimates]) ** 2
    if len(b) < 2 or not np.isfinite(w).all():
        return float("nan"), len(b) - 1, float("nan")
    q = float(np.sum(w * (b - np.sum(w * b) / w.sum()) ** 2))
    return q, len(b) - 1, float(st.chi2.sf(q, len(b) - 1))


def _effect_row(campaign: str, segment_type: str, segment: str, outcome: str, e: Estimate, n_treated: int,
                n_control: int) -> dict:
    return {"campaign": campaign, "segment_type": segment_type, "segment": segment, "outcome": outcome,
            "estimate": e.estimate, "se": e.se, "ci_low": e.ci_low, "ci_high": e.ci_high, "n_treated": n_treated,
            "n_control": n_control, "method": e.method}


def _both_estimates(cid: str, segment_type: str, segment: str, outcome: str, y: np.ndarray, d: np.ndarray,
                    covariates: pd.DataFrame) -> tuple[list[dict], Estimate]:
    adjusted = adjusted_difference(y, d, covariates)
    n1, n0 = int(d.sum()), int((1 - d).sum())
    return [_effect_row(cid, segment_type, segment, outcome, difference(y, d), n1, n0),
            _effect_row(cid, segment_type, segment, outcome, adjusted, n1, n0)], adjusted


def randomised_effects(outcomes: pd.DataFrame, segments: dict[str, tuple[str, ...]], min_n: int
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Effects of the randomised campaigns in ``outcomes`` (:func:`campaign_outcomes`, campaigns
    with a holdout only): per campaign and outcome, for all compared customers (segment_type and
    segment ``all``) and within each segment of ``segments`` ({column of ``outcomes``, e.g.
    ``value_tier`` or ``rfm_segment`` at the start: its values}), the plain difference (method
    ``difference``) and the Lin-adjusted one (``regression_adjusted``; within a segment without
    the value tier among the covariates); segments with fewer than ``min_n`` treated or controls
    are left out. Conversion effects are in proportion points (0.02 = +2 pp), spend effects in
    currency per selected customer over the window. Second frame: per campaign, outcome and
    segment type the test of equal adjusted effects across its segments (``q``, ``df``,
    ``p_value``, ``segments``)."""
    rows, tests = [], []
    for cid, g in outcomes.groupby("campaign_id", sort=False):
        cov = _covariate_frame(g)
        d_all = g["treated"].to_numpy()
        for outcome in OUTCOMES:
            y_all = g[outcome].to_numpy()
            if min(d_all.sum(), (1 - d_all).sum()) >= min_n:
                rows += _both_estimates(cid, "all", "all", outcome, y_all, d_all, cov)[0]
            for segment_type, values in segments.items():
                per_segment = []
                for segment in values:
                    sel = (g[segment_type] == segment).to_numpy()
                    d = d_all[sel]
                    if min(d.sum(), (1 - d).sum()) < min_n:
                        continue
                    new, adjusted = _both_estimates(cid, segment_type, segment, outcome, y_all[sel], d,
                                                    cov[sel].drop(columns="value_tier"))
                    rows += new
                    per_segment.append(adjusted)
                q, df, p = heterogeneity_test(per_segment)
                tests.append({"campaign": cid, "outcome": outcome, "segment_type": segment_type, "q": q, "df": df,
                              "p_value": p, "segments": len(per_segment)})
    return pd.DataFrame(rows), pd.DataFrame(tests)


def rfm_segments_at_start(data, campaigns: pd.DataFrame) -> pd.DataFrame:
    """campaign_id, customer_id, rfm_segment: each buyer's RFM segment the day before each of
    ``campaigns`` started (:func:`custlib.segmentation.rfm_at`, the unit's segment rules)."""
    from custlib.segmentation import rfm_at

    frames = []
    for r in campaigns.itertuples():
        seg = rfm_at(data.transactions, r.start_date - timedelta(days=1), data.params.segmentation).customers
        frames.append(pd.DataFrame({"campaign_id": r.campaign_id, "customer_id": seg.index.to_numpy(),
                                    "rfm_segment": seg["rfm_segment"].to_numpy()}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["campaign_id", "customer_id", "rfm_segment"])


# -- campaigns without holdout ------------------------------------------------------------------

def observational_effects(outcomes: pd.DataFrame, trim: float, caliper: float | None
                          ) -> tuple[pd.DataFrame, dict[tuple[str, str, str], ATTResult | Unavailable]]:
    """For each campaign in ``outcomes`` without a holdout: per outcome the naive gap (contacted
    − eligible non-contacted, sampling-weighted controls, method ``naive_gap``) and the effect on
    the contacted by :data:`ATT_METHODS` on :data:`COVARIATES`. Returns the effect rows (as
    :func:`randomised_effects`, segment ``all``) and the ATT results keyed (campaign, outcome,
    method) for balance and overlap checks."""
    rows, results = [], {}
    for cid, g in outcomes.groupby("campaign_id", sort=False):
        frame = pd.concat([g[["treated", "weight", *OUTCOMES]], _covariate_frame(g)], axis=1)
        d, w = g["treated"].to_numpy(), g["weight"].to_numpy()
        for outcome in OUTCOMES:
            rows.append(_effect_row(cid, "all", "all", outcome, _weighted_gap(g[outcome].to_numpy(), d, w),
                                    int(d.sum()), int((1 - d).sum())))
            for method in ATT_METHODS:
                r = estimate_att(frame, "treated", outcome, list(COVARIATES), method=method, trim=trim,
                                 weights="weight", caliper=caliper)
                results[cid, outcome, method] = r
                if isinstance(r, ATTResult):
                    rows.append(_effect_row(cid, "all", "all", outcome, r.estimate, r.n_treated, r.n_control))
    return pd.DataFrame(rows), results


def _weighted_gap(y: np.ndarray, treated: np.ndarray, weights: np.ndarray) -> Estimate:
    """Treated mean minus the weighted control mean (controls sampled with weight = 1 / chance of
    being drawn), standard error treating the weights as fixed."""
    d = treated.astype(bool)
    a, b, w = y[d], y[~d], weights[~d] / weights[~d].sum()
    mean_b = np.sum(w * b)
    se = np.sqrt(a.var(ddof=1) / len(a) + np.sum(w**2 * (b - mean_b) ** 2) * len(b) / (len(b) - 1))
    return Estimate.normal(a.mean() - mean_b, se, len(y), "naive_gap")


# -- money and context ---------------------------------------------------------------------------

def campaign_roi(effects: pd.DataFrame, campaigns: pd.DataFrame, margin_rate: float) -> pd.DataFrame:
    """Per campaign from its main spend effect (randomised: ``regression_adjusted``; else
    ``aipw``): incremental revenue = effect × treated contacts (currency, with interval),
    cost = cost_per_contact × treated contacts (taken as known), ROI = margin_rate × incremental
    revenue / cost − 1 with the interval carried over from the spend effect's (NaN at zero cost).
    """
    main = effects[(effects["segment"] == "all") & (effects["outcome"] == "spend")
                   & effects["method"].isin(["regression_adjusted", "aipw"])]
    c = campaigns.set_index("campaign_id")
    rows = []
    for _, e in main.iterrows():
        n = int(c.loc[e["campaign"], "treated"])
        cost = float(c.loc[e["campaign"], "cost_per_contact"]) * n
        revenue = np.array([e["estimate"], e["ci_low"], e["ci_high"]]) * n
        roi = margin_rate * revenue / cost - 1 if cost > 0 else np.full(3, np.nan)
        rows.append({"campaign": e["campaign"], "method": e["method"], "treated": n, "cost": cost,
                     "incremental_revenue": revenue[0], "revenue_ci_low": revenue[1], "revenue_ci_high": revenue[2],
                     "margin_rate": margin_rate, "roi": roi[0], "roi_ci_low": roi[1], "roi_ci_high": roi[2]})
    return pd.DataFrame(rows)


def engagement(data) -> pd.DataFrame:
    """Open and click rates of the contacted per campaign (context, not effects): ``measure``
    (opened / clicked), share with Wilson 95% interval, ``n`` contacts where it is tracked.
    Campaigns or measures without tracked values are left out."""
    c = data.campaign_contacts
    counts = c.group_by("campaign_id").aggregate(
        opened=c.opened.sum(), opened_n=c.opened.count(), clicked=c.clicked.sum(), clicked_n=c.clicked.count()
    ).execute()
    rows = []
    for _, r in counts.sort_values("campaign_id").iterrows():
        for measure in ("opened", "clicked"):
            if r[f"{measure}_n"] > 0:
                e = proportion(int(r[measure]), int(r[f"{measure}_n"]))
                rows.append({"campaign": r["campaign_id"], "measure": measure, "share": e.estimate,
                             "ci_low": e.ci_low, "ci_high": e.ci_high, "n": e.n})
    return pd.DataFrame(rows, columns=["campaign", "measure", "share", "ci_low", "ci_high", "n"])


# -- next best category ---------------------------------------------------------------------------

NBC_WHAT = "marketing.what.next_best_category"
NBC_OF = "marketing.of.categories"


def _category_pairs(tx: ir.Table, until: date, since: date | None = None) -> ir.Table:
    """Distinct (customer_id, category) of positive orders on or before ``until`` (and after
    ``since``)."""
    t = tx.filter((tx.amount > 0) & tx.product_category.notnull() & (tx.order_date <= until))
    if since is not None:
        t = t.filter(t.order_date > since)
    return t.select("customer_id", category=t.product_category.cast("string")).distinct()


def _ranked(pairs: ir.Table, k: int, segments: pd.DataFrame | None, segment_weight: float) -> ir.Table:
    """Top-``k`` categories per customer of ``pairs`` among those the customer has not bought:
    customer_id, rank (1..k), category, score, and the popularity baseline's ``base_rank`` /
    ``base_score`` (share of customers who bought the category) of the same candidates.

    Score = mean over the customer's bought categories b of P(c | b) = (customers who bought both
    b and c) / (customers who bought b), from co-occurrence counts across customers; with
    ``segments`` (customer_id, segment) blended as (1 − w)·score + w·(share of the customer's
    segment who bought c), w = ``segment_weight``. Ties: more popular first, then by name."""
    n_customers = pairs.customer_id.nunique()
    buyers = pairs.group_by("category").aggregate(n_b=pairs.count())
    other = pairs.rename(candidate="category")
    co = pairs.join(other, "customer_id").filter(ibis._.category != ibis._.candidate)
    co = co.group_by(["category", "candidate"]).aggregate(n_bc=co.count())
    cond = co.join(buyers, "category").mutate(p=ibis._.n_bc.cast("float64") / ibis._.n_b)
    j = pairs.join(cond, "category")
    summed = j.group_by(["customer_id", "candidate"]).aggregate(p_sum=j.p.sum())
    n_bought = pairs.group_by("customer_id").aggregate(n_bought=pairs.count())
    popularity = buyers.select(candidate=buyers.category, base_score=buyers.n_b.cast("float64") / n_customers)
    cand = n_bought.cross_join(popularity)
    cand = cand.anti_join(pairs, [cand.customer_id == pairs.customer_id, cand.candidate == pairs.category])
    cand = cand.left_join(summed, ["customer_id", "candidate"]).select(
        "customer_id", "candidate", "base_score", score=ibis._.p_sum.fill_null(0.0) / ibis._.n_bought)
    if segments is not None:
        seg = ibis.memtable(segments[["customer_id", "segment"]].astype({"segment": str}))
        sized = seg.join(pairs.select("customer_id").distinct(), "customer_id")
        size = sized.group_by("segment").aggregate(n_s=sized.count())
        bought = pairs.join(seg, "customer_id")
        share = bought.group_by(["segment", bought.category.name("candidate")]).aggregate(n_sc=bought.count())
        share = share.join(size, "segment").mutate(share=ibis._.n_sc.cast("float64") / ibis._.n_s)
        cand = cand.left_join(seg, "customer_id").drop("customer_id_right")
        cand = cand.left_join(share, ["segment", "candidate"]).select(
            "customer_id", "candidate", "base_score",
            score=(1 - segment_weight) * ibis._.score + segment_weight * ibis._.share.fill_null(0.0))
    by_score = ibis.row_number().over(group_by="customer_id", order_by=[
        ibis.desc("score"), ibis.desc("base_score"), "candidate"])
    by_popularity = ibis.row_number().over(group_by="customer_id", order_by=[ibis.desc("base_score"), "candidate"])
    cand = cand.mutate(rank=by_score + 1, base_rank=by_popularity + 1)
    return cand.rename(category="candidate")


def recommend(transactions, cutoff: date, k: int = 3, segments: pd.DataFrame | None = None,
              segment_weight: float = 0.5) -> pd.DataFrame:
    """Next best categories: per customer with a positive order on or before ``cutoff``, the
    top-``k`` product categories they have not bought by then, scored as in :func:`_ranked`
    (score in [0, 1]). Columns customer_id, rank (1 = best), category, score: no personal data.
    ``transactions``: a typed transactions table or a pandas frame with the contract's columns."""
    r = _ranked(_category_pairs(as_table(transactions), cutoff), k, segments, segment_weight)
    out = r.filter(r["rank"] <= k).select("customer_id", "rank", "category", "score").execute()
    return out.sort_values(["customer_id", "rank"], ignore_index=True)


@dataclass(frozen=True)
class NextBestCategory:
    """Next-best-category recommendations and their holdout evaluation (:func:`next_best_category`).

    ``recommendations``: :func:`recommend` from purchases up to ``end`` (the CRM import file).
    Evaluation: fitted on purchases up to ``cutoff``, on the ``n_customers`` customers with a
    recommendation and a positive order in (cutoff, end]. ``precision``: share of their
    recommended categories bought in the holdout (delta-method interval of the ratio, customer
    clusters); ``hit_rate``: among the ``n_hit_customers`` of them who buy a new category, share
    whose first new category (any of those first bought on the same day) is in the top k (Wilson).
    Keys ``model``, ``popularity`` (the k most popular categories not bought) and ``difference``
    (model − popularity, paired over the same customers, normal interval), proportions 0..1."""

    k: int
    cutoff: date
    end: date
    recommendations: pd.DataFrame
    precision: dict[str, Estimate]
    hit_rate: dict[str, Estimate]
    n_customers: int
    n_hit_customers: int


def _holdout_outcomes(tx: ir.Table, cutoff: date, end: date, k: int, segments: pd.DataFrame | None,
                      segment_weight: float) -> pd.DataFrame:
    """Per evaluated customer (a recommendation and a positive order in (cutoff, end]): n_rec,
    hits / base_hits (recommended categories bought in the holdout), first / base_first (1 if a
    first new category is among them) and has_new (1 if any category new to the customer)."""
    pairs = _category_pairs(tx, cutoff)
    r = _ranked(pairs, k, segments, segment_weight)
    later = tx.filter((tx.amount > 0) & (tx.order_date > cutoff) & (tx.order_date <= end))
    holdout_buyers = later.select("customer_id").distinct()
    later = later.filter(later.product_category.notnull())
    new = later.group_by(["customer_id", later.product_category.cast("string").name("category")]).aggregate(
        first_date=later.order_date.min())
    new = new.anti_join(pairs, ["customer_id", "category"])
    new = new.mutate(first=ibis.ifelse(new.first_date == new.first_date.min().over(group_by="customer_id"), 1, 0))
    j = r.left_join(new, ["customer_id", "category"])
    top, base = j["rank"] <= k, j.base_rank <= k
    per = j.group_by(j.customer_id).aggregate(
        n_rec=top.sum(), hits=(top & j.first_date.notnull()).sum(), base_hits=(base & j.first_date.notnull()).sum(),
        first=(top & (j.first == 1)).sum(), base_first=(base & (j.first == 1)).sum(),
        has_new=j.first_date.notnull().sum())
    out = per.join(holdout_buyers, "customer_id").execute()
    for c in ("first", "base_first", "has_new"):
        out[c] = (out[c] > 0).astype(int)
    return out


def _precision(hits: np.ndarray, n_rec: np.ndarray, method: str) -> Estimate:
    """Ratio Σ hits / Σ n_rec over customers, delta-method standard error with customers as
    clusters: sd(hits − R·n_rec) / (mean n_rec · √n)."""
    r = hits.sum() / n_rec.sum()
    se = np.std(hits - r * n_rec, ddof=1) / (n_rec.mean() * np.sqrt(len(hits)))
    return Estimate.normal(r, se, len(hits), method)


def next_best_category(transactions, cutoff: date, end: date, k: int = 3,
                       segments: Callable[[date], pd.DataFrame] | None = None,
                       segment_weight: float = 0.5) -> NextBestCategory:
    """Recommendations from purchases up to ``end`` and their evaluation on the time holdout
    (cutoff, end] (see :class:`NextBestCategory`); ``segments(day)``: the customers' segments on
    that day (customer_id, segment) blended in as in :func:`_ranked`. A customer who has bought
    every category by ``cutoff`` gets no recommendation and is not evaluated."""
    tx = as_table(transactions)
    at = (lambda day: segments(day)) if segments else (lambda day: None)
    o = _holdout_outcomes(tx, cutoff, end, k, at(cutoff), segment_weight)
    n_rec = o["n_rec"].to_numpy(float)
    hits, base_hits = o["hits"].to_numpy(float), o["base_hits"].to_numpy(float)
    r_m, r_b = hits.sum() / n_rec.sum(), base_hits.sum() / n_rec.sum()
    linear = (hits - r_m * n_rec) - (base_hits - r_b * n_rec)
    precision = {"model": _precision(hits, n_rec, "delta"), "popularity": _precision(base_hits, n_rec, "delta"),
                 "difference": Estimate.normal(r_m - r_b, np.std(linear, ddof=1) / (n_rec.mean() * np.sqrt(len(o))),
                                               len(o), "paired_delta")}
    h = o[o["has_new"] == 1]
    d = (h["first"] - h["base_first"]).to_numpy(float)
    hit_rate = {"model": proportion(int(h["first"].sum()), len(h)),
                "popularity": proportion(int(h["base_first"].sum()), len(h)),
                "difference": Estimate.normal(d.mean(), d.std(ddof=1) / np.sqrt(len(d)), len(d), "paired")}
    return NextBestCategory(k, cutoff, end, recommend(tx, end, k, at(end), segment_weight), precision, hit_rate,
                            len(o), len(h))


def value_tiers_at(transactions, day: date, params: SegmentationParams) -> pd.DataFrame:
    """customer_id, segment: the value tier (the segmentation's Pareto tiers of net revenue) of
    every buyer on ``day``, from their orders up to that day (aggregated in the engine)."""
    from custlib.segmentation import value_tiers

    tx = as_table(transactions)
    tx = tx.filter(tx.order_date <= day)
    revenue = tx.group_by("customer_id").aggregate(revenue=tx.amount.cast("float64").sum()).execute()
    tiers = value_tiers(revenue.set_index("customer_id")["revenue"], params.value_tier_cuts,
                        tuple(t.name for t in params.value_tiers))
    return pd.DataFrame({"customer_id": revenue["customer_id"], "segment": tiers.to_numpy()})


# -- uplift models of randomised campaigns ---------------------------------------------------------

UPLIFT_WHAT = "marketing.what.uplift_model"
UPLIFT_OF = "marketing.of.rarer_outcome"
UPLIFT_CAMPAIGNS_OF = "marketing.of.randomised_campaigns"
# cross-fitting: each compared customer is scored by the model fitted on the other fold(s). Two,
# because the folds' Qini areas are combined conservatively (custlib.uplift): the bound widens
# with the number of folds, each evaluated on fewer customers
UPLIFT_FOLDS = 2
UPLIFT_SEED = 2024  # the folds and the bootstrap of the Qini area
UPLIFT_BOOTSTRAP_REPS = 500  # bootstrap resamples behind the Qini area's interval
UPLIFT_CURVE_POINTS = 41  # Qini curve kept at every 2.5% of the held-out customers (for plotting)
UPLIFT_GROUPS = 5  # held-out customers compared in quintiles of predicted uplift


def current_customers(data, window_days: int) -> pd.DataFrame:
    """The customers a campaign starting the day after the observation end could choose (first
    positive order at least ``window_days`` before that day, as :func:`_eligible`) with their
    pre-campaign behaviour as :func:`campaign_outcomes` measures it for a campaign starting that
    day: customer_id, ``pre_orders_<d>`` / ``pre_spend_<d>``, tenure_days and value_tier (the
    segmentation's Pareto tiers of net revenue to date among these customers). Aggregated in the
    engine; sorted by customer_id."""
    from custlib.segmentation import value_tiers

    start = data.params.observation_end + timedelta(days=1)
    tx = data.transactions.select("customer_id", "order_date", amount=data.transactions.amount.cast("float64"))
    per = tx.group_by("customer_id").aggregate(
        revenue=tx.amount.sum(), first_order=tx.order_date.min(where=tx.amount > 0),
        **_pre_aggregates(tx, ibis.literal(start).delta(tx.order_date, unit="day")))
    per = per.filter(per.first_order <= start - timedelta(days=window_days))
    per = per.mutate(tenure_days=ibis.literal(start).delta(per.first_order, unit="day").cast("float64"))
    out = per.drop("first_order").execute().sort_values("customer_id", ignore_index=True)
    out[list(COUNT_COLUMNS)] = out[list(COUNT_COLUMNS)].astype(float).fillna(0.0)
    seg = data.params.segmentation
    names = tuple(t.name for t in seg.value_tiers)
    out["value_tier"] = value_tiers(out.set_index("customer_id")["revenue"], seg.value_tier_cuts, names).to_numpy()
    return out[["customer_id", *COUNT_COLUMNS, "tenure_days", "value_tier"]]


def uplift_by_group(predicted: np.ndarray, treated: np.ndarray, converted: np.ndarray, groups: int) -> pd.DataFrame:
    """Observed conversion uplift in ``groups`` equal-size groups of customers by predicted uplift
    (``group`` 1 = highest; equal predictions in their given order): mean_predicted_uplift, the
    treated − control conversion difference (:func:`difference`, proportion points) with se,
    95% interval (NaN for a group with fewer than two customers in an arm), n_treated and n_control."""
    rows = []
    for k, rows_k in enumerate(np.array_split(np.argsort(-predicted, kind="stable"), groups), start=1):
        d = treated[rows_k]
        e = (difference(converted[rows_k], d) if min(d.sum(), len(d) - d.sum()) >= 2
             else Estimate(np.nan, np.nan, np.nan, np.nan, len(d), "difference"))  # a group without both arms
        rows.append({"group": k, "mean_predicted_uplift": float(predicted[rows_k].mean()), "uplift": e.estimate,
                     "se": e.se, "ci_low": e.ci_low, "ci_high": e.ci_high, "n_treated": int(d.sum()),
                     "n_control": int(len(d) - d.sum())})
    return pd.DataFrame(rows)


def target_list(customer_ids, predicted: np.ndarray, limit: int) -> pd.DataFrame:
    """The customers to contact: customer_id, rank (1 = first), predicted_uplift (proportion
    points) of those with a positive predicted uplift, highest first (equal predictions in the
    order of ``customer_ids``), at most ``limit``. No personal data."""
    ids = np.asarray(customer_ids)
    order = np.argsort(-predicted, kind="stable")
    order = order[predicted[order] > 0][:limit]
    return pd.DataFrame({"customer_id": ids[order], "rank": np.arange(1, len(order) + 1),
                         "predicted_uplift": predicted[order]})


@dataclass(frozen=True)
class CampaignUplift:
    """Uplift model of one randomised campaign (:func:`campaign_uplift`), its held-out evaluation
    and the customers to target if it is run again.

    Evaluation by cross-fitting: each of the ``n`` compared customers is scored by the model
    fitted on the other fold(s) of :data:`UPLIFT_FOLDS` (``held_out``: treated, converted,
    predicted, fold, value_tier per customer); ``qini_curve`` (share_targeted, incremental,
    random; :mod:`custlib.uplift`, in conversions per treated customer; the folds' mean) at
    :data:`UPLIFT_CURVE_POINTS` shares, ``qini_area`` (area between curve and random targeting,
    the folds' mean with a conservative bootstrap interval; above 0: the ranking beats random
    targeting) and ``by_group`` (:func:`uplift_by_group` in quintiles of
    predicted uplift). ``model``: the same learner fitted on all compared customers, behind
    ``by_tier`` (value_tier, n, mean predicted uplift over the campaign's compared customers,
    highest first) and ``targets`` (:func:`target_list` of the current customers, at most as
    many as the campaign contacted)."""

    campaign: str
    n: int
    held_out: pd.DataFrame
    qini_curve: pd.DataFrame
    qini_area: Estimate
    by_group: pd.DataFrame
    by_tier: pd.DataFrame
    targets: pd.DataFrame
    model: TwoModelUplift

    @property
    def beats_random(self) -> bool:
        """Whether the whole 95% interval of the Qini area is above 0."""
        return self.qini_area.ci_low > 0


def _cross_fitted(covariates: pd.DataFrame, treated: np.ndarray, converted: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold predicted uplift of every row and its fold: :data:`UPLIFT_FOLDS` folds
    stratified by group and outcome (:data:`UPLIFT_SEED`), each scored by the model fitted on the
    others."""
    predicted, fold = np.empty(len(treated)), np.empty(len(treated), dtype=int)
    folds = StratifiedKFold(UPLIFT_FOLDS, shuffle=True, random_state=UPLIFT_SEED)
    for k, (fit_rows, score_rows) in enumerate(folds.split(covariates, 2 * treated + converted)):
        predicted[score_rows] = TwoModelUplift.fit(covariates.iloc[fit_rows], treated[fit_rows],
                                                   converted[fit_rows]).predict(covariates.iloc[score_rows])
        fold[score_rows] = k
    return predicted, fold


def _qini(held_out: pd.DataFrame) -> tuple[pd.DataFrame, Estimate]:
    """:func:`custlib.uplift.cross_fitted_qini` of held-out rows (treated, converted, predicted,
    fold)."""
    folds = [tuple(f[c].to_numpy() for c in ("predicted", "treated", "converted"))
             for _, f in held_out.groupby("fold")]
    return cross_fitted_qini(folds, UPLIFT_CURVE_POINTS, UPLIFT_BOOTSTRAP_REPS, UPLIFT_SEED)


def campaign_uplift(outcomes: pd.DataFrame, customers: pd.DataFrame, limit: int, min_n: int
                    ) -> CampaignUplift | Unavailable:
    """Uplift model of one randomised campaign from its rows of :func:`campaign_outcomes`
    (:class:`custlib.uplift.TwoModelUplift` of conversion on :data:`COVARIATES`), evaluated by
    cross-fitting (see :class:`CampaignUplift`). ``customers``: :func:`current_customers`, scored
    for ``targets``. Unavailable when a group (treated or control) has fewer than 2 × ``min_n``
    customers converting, or not converting, whichever is rarer (each fit sees 4/5 of them)."""
    g = outcomes.sort_values("customer_id", ignore_index=True)
    d, y = g["treated"].to_numpy(), g["conversion"].to_numpy()
    rarer = min(int(((d == arm) & (y == k)).sum()) for arm in (0, 1) for k in (0, 1))
    if rarer < 2 * min_n:
        return Unavailable.too_few(UPLIFT_WHAT, rarer, 2 * min_n, of=UPLIFT_OF)
    covariates = _covariate_frame(g)
    predicted, fold = _cross_fitted(covariates, d, y)
    held_out = pd.DataFrame({"treated": d, "converted": y, "predicted": predicted, "fold": fold,
                             "value_tier": g["value_tier"].to_numpy()})
    curve, area = _qini(held_out)
    model = TwoModelUplift.fit(covariates, d, y)
    by_tier = pd.DataFrame({"value_tier": g["value_tier"], "predicted": model.predict(covariates)}).groupby(
        "value_tier")["predicted"].agg(n="size", mean_predicted_uplift="mean")
    return CampaignUplift(
        campaign=str(g["campaign_id"].iloc[0]), n=len(g), held_out=held_out, qini_curve=curve, qini_area=area,
        by_group=uplift_by_group(held_out["predicted"].to_numpy(), d, y, UPLIFT_GROUPS),
        by_tier=by_tier.sort_values("mean_predicted_uplift", ascending=False).reset_index(),
        targets=target_list(customers["customer_id"], model.predict(_covariate_frame(customers)), limit),
        model=model)


@dataclass(frozen=True)
class UnitUplift:
    """The uplift models of a unit's randomised campaigns taken together (:func:`unit_uplift`):
    the campaigns' cross-fitted scores pooled into one ranking of (campaign, customer) pairs per
    fold, ``qini_curve`` and ``qini_area`` of that ranking (the folds' mean, as for one campaign)
    against random targeting over the same pairs (above 0: sending each campaign to the
    customers it is predicted to move most beats sending at random), and ``by_tier``:
    value_tier, n, mean predicted uplift over the campaigns' compared customers (each
    campaign's full model), highest first."""

    campaigns: tuple[str, ...]
    n: int
    qini_curve: pd.DataFrame
    qini_area: Estimate
    by_tier: pd.DataFrame

    @property
    def beats_random(self) -> bool:
        return self.qini_area.ci_low > 0


def unit_uplift(models: dict[str, CampaignUplift | Unavailable]) -> UnitUplift | Unavailable:
    """:class:`UnitUplift` of the campaigns with a model; Unavailable without any."""
    fitted = {c: m for c, m in models.items() if isinstance(m, CampaignUplift)}
    if not fitted:
        return Unavailable.too_few(UPLIFT_WHAT, 0, 1, of=UPLIFT_CAMPAIGNS_OF)
    held_out = pd.concat([m.held_out for m in fitted.values()], ignore_index=True)
    curve, area = _qini(held_out)
    tiers = pd.concat([m.by_tier for m in fitted.values()], ignore_index=True)
    tiers = tiers.assign(total=tiers["n"] * tiers["mean_predicted_uplift"]).groupby("value_tier")[["n", "total"]].sum()
    by_tier = tiers.assign(mean_predicted_uplift=tiers["total"] / tiers["n"]).drop(columns="total")
    return UnitUplift(tuple(fitted), len(held_out), curve, area,
                      by_tier.sort_values("mean_predicted_uplift", ascending=False).reset_index())


# -- basket rules -----------------------------------------------------------------------------------

BASKET_WHAT = "marketing.what.basket_rules"
BASKET_DAYS = 365  # a customer's basket: the categories of their positive orders in the last year
BASKET_MIN_SUPPORT = 0.01  # rules whose two categories are bought together by under 1% of the segment are left out
BASKET_TOP_RULES = 10  # rules kept per segment


def basket_rules(transactions, segments: pd.DataFrame, end: date, days: int = BASKET_DAYS,
                 min_support: float = BASKET_MIN_SUPPORT, top: int = BASKET_TOP_RULES, min_customers: int = 1
                 ) -> pd.DataFrame:
    """Association rules antecedent → consequent between two product categories, per segment.

    A basket is the set of categories of a customer's positive orders in the ``days`` days up to
    ``end`` (customer level: the contract has one category per order). Per segment of
    ``segments`` (customer_id, segment) and for ``all`` their customers, among the
    ``n_customers`` with a basket: support = share who bought both categories (``n_both``),
    confidence = share of the antecedent's buyers (``n_antecedent``) who bought the consequent,
    lift = confidence / share who bought the consequent (``n_consequent``); lift > 1: bought
    together more often than if independent. Rules with support ≥ ``min_support`` and lift > 1;
    per segment the ``top`` by lift, then support, then names (``rank`` 1 = first). Segments with
    fewer than ``min_customers`` baskets are left out. Counted in the engine."""
    tx = as_table(transactions)
    seg = ibis.memtable(segments[["customer_id", "segment"]].astype({"segment": str}))
    b = _category_pairs(tx, end, since=end - timedelta(days=days)).join(seg, "customer_id")
    b = b.union(b.mutate(segment=ibis.literal("all")))
    size = b.group_by("segment").aggregate(n_customers=b.customer_id.nunique())
    size = size.filter(size.n_customers >= min_customers)
    buyers = b.group_by(["segment", "category"]).aggregate(n=b.count())
    other = b.rename(consequent="category")
    both = b.join(other, ["customer_id", "segment"]).filter(ibis._.category != ibis._.consequent)
    both = both.group_by(["segment", both.category.name("antecedent"), "consequent"]).aggregate(n_both=both.count())
    r = both.join(size, "segment").join(buyers.rename(antecedent="category", n_antecedent="n"),
                                        ["segment", "antecedent"])
    r = r.join(buyers.rename(consequent="category", n_consequent="n"), ["segment", "consequent"])
    n = r.n_customers.cast("float64")
    r = r.mutate(support=r.n_both / n, confidence=r.n_both.cast("float64") / r.n_antecedent,
                 lift=r.n_both * n / (r.n_antecedent * r.n_consequent))
    r = r.filter((r.support >= min_support) & (r.lift > 1))
    r = r.mutate(rank=ibis.row_number().over(group_by="segment", order_by=[
        ibis.desc("lift"), ibis.desc("support"), "antecedent", "consequent"]) + 1)
    out = r.filter(r["rank"] <= top).select(
        "segment", "rank", "antecedent", "consequent", "support", "confidence", "lift", "n_both", "n_antecedent",
        "n_consequent", "n_customers").execute()
    return out.sort_values(["segment", "rank"], ignore_index=True)


def _basket_rules(data, customers: pd.DataFrame) -> pd.DataFrame | Unavailable:
    """:func:`basket_rules` of the unit up to the observation end, the segments the value tiers of
    :func:`current_customers` (who first bought in the last ``window_days`` are in none);
    segments with fewer than ``small_sample_n`` baskets are left out. Unavailable below
    ``small_sample_n`` customers with a basket or below two categories bought in the window;
    empty when no pair passes the filters."""
    small_n, end = data.params.small_sample_n, data.params.observation_end
    pairs = _category_pairs(data.transactions, end, since=end - timedelta(days=BASKET_DAYS))
    buyers = pairs.select("customer_id").distinct().execute()["customer_id"]
    n_baskets = int(customers["customer_id"].isin(buyers).sum())
    if n_baskets < small_n:
        return Unavailable.too_few(BASKET_WHAT, n_baskets, small_n)
    n_categories = int(pairs.category.nunique().execute())
    if n_categories < 2:
        return Unavailable.too_few(BASKET_WHAT, n_categories, 2, of=NBC_OF)
    segments = customers[["customer_id"]].assign(segment=customers["value_tier"])
    return basket_rules(data.transactions, segments, end, min_customers=small_n)


# -- the analysis of one unit -----------------------------------------------------------------

EFFECT_COLUMNS = ["campaign", "segment_type", "segment", "outcome", "estimate", "se", "ci_low", "ci_high", "n_treated",
                  "n_control", "method"]


@dataclass(frozen=True)
class MarketingResult:
    """Campaign effects of one unit (:func:`analyse`); a part the data cannot support is an
    :class:`Unavailable` saying why.

    ``campaigns``: one row per campaign (:func:`_campaign_table`); ``randomised``: effect rows of
    campaigns with a holdout (:func:`randomised_effects`) and ``heterogeneity`` its tests across
    value tiers and RFM segments; ``observational``: effect rows of campaigns without one
    (:func:`observational_effects`) and ``att`` the ATT results behind them; ``roi``:
    :func:`campaign_roi`; ``engagement``: open / click rates; ``too_few``: campaigns left out
    because a group has fewer than ``small_sample_n`` customers; ``next_best_category``:
    :func:`next_best_category` (needs no campaign table); ``basket_rules``: :func:`_basket_rules`
    per value tier (needs no campaign table); ``sampled_controls``: whether some campaign without
    holdout was compared with a weighted sample of its non-contacted customers; ``uplift``: per
    randomised campaign with an effect estimate, its :class:`CampaignUplift` (or why not), and
    ``unit_uplift`` the campaigns' models taken together (:func:`unit_uplift`)."""

    params: MarketingParams
    currency: str
    small_sample_n: int
    campaigns: pd.DataFrame | Unavailable
    randomised: pd.DataFrame | Unavailable
    heterogeneity: pd.DataFrame | Unavailable
    observational: pd.DataFrame | Unavailable
    att: dict[tuple[str, str, str], ATTResult | Unavailable]
    roi: pd.DataFrame | Unavailable
    engagement: pd.DataFrame | Unavailable
    too_few: dict[str, Unavailable]
    next_best_category: NextBestCategory | Unavailable
    basket_rules: pd.DataFrame | Unavailable
    sampled_controls: bool = False
    uplift: dict[str, CampaignUplift | Unavailable] | Unavailable = field(default_factory=dict)
    unit_uplift: UnitUplift | Unavailable | None = None

    def effects_table(self) -> pd.DataFrame:
        """Every effect as tidy rows (``campaign_effects.csv``): campaign, segment_type (``all``,
        ``value_tier`` or ``rfm_segment``, both at the campaign's start), segment, outcome
        (conversion in proportion points, spend in currency per customer over the window), estimate, se, ci_low, ci_high, n_treated, n_control, method
        (``randomised_difference``, ``randomised_regression_adjusted``, ``observational_naive_gap``,
        ``observational_ipw`` / ``_aipw`` / ``_matching``)."""
        frames = [f.assign(method=f"{kind}_" + f["method"])
                  for kind, f in (("randomised", self.randomised), ("observational", self.observational))
                  if isinstance(f, pd.DataFrame) and len(f)]
        out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=EFFECT_COLUMNS)
        return out[EFFECT_COLUMNS].astype({"n_treated": "Int64", "n_control": "Int64"})


def _unavailable(params: MarketingParams, currency: str, small_n: int, reason: Unavailable,
                 nbc: NextBestCategory | Unavailable, baskets: pd.DataFrame | Unavailable) -> MarketingResult:
    return MarketingResult(params, currency, small_n, reason, reason, reason, reason, {}, reason, reason, {}, nbc,
                           baskets, uplift=reason, unit_uplift=reason)


def _next_best(data) -> NextBestCategory | Unavailable:
    """:func:`next_best_category` of the unit: cutoff ``recommendation_holdout_days`` before the
    observation end, value tiers blended in at ``recommendation_segment_weight``. Unavailable
    below ``top_k`` + 1 categories bought, or when fewer than ``small_sample_n`` customers are
    evaluated or buy a new category in the holdout."""
    p, end, small_n = data.params.marketing, data.params.observation_end, data.params.small_sample_n
    tx = data.transactions
    n_categories = int(tx.filter((tx.amount > 0) & (tx.order_date <= end)).product_category.nunique().execute())
    if n_categories < p.top_k + 1:
        return Unavailable.too_few(NBC_WHAT, n_categories, p.top_k + 1, of=NBC_OF)
    weight = p.recommendation_segment_weight
    tiers = (lambda day: value_tiers_at(tx, day, data.params.segmentation)) if weight > 0 else None
    r = next_best_category(tx, end - timedelta(days=p.recommendation_holdout_days), end, p.top_k, tiers, weight)
    n = min(r.n_customers, r.n_hit_customers)
    return Unavailable.too_few(NBC_WHAT, n, small_n) if n < small_n else r


@threadpool_limits.wrap(limits=1)  # small fits: more BLAS threads stall more than they help
def analyse(data) -> MarketingResult:
    """Campaign effects of one unit (a :class:`custlib.sources.UnitData`)."""
    p, small_n = data.params.marketing, data.params.small_sample_n
    nbc = _next_best(data)
    customers = current_customers(data, p.window_days)
    baskets = _basket_rules(data, customers)
    for table in ("campaigns", "campaign_contacts"):
        if not data.has(table):
            return _unavailable(p, data.params.currency, small_n, Unavailable.needs_table(table, WHAT), nbc, baskets)
    campaigns = _campaign_table(data)
    control = np.where(campaigns["randomised"], campaigns["holdout"], small_n)  # non-contacted: checked below
    thin = campaigns[np.minimum(campaigns["treated"], control) < small_n]
    too_few = {r.campaign_id: Unavailable.too_few("marketing.what.campaign_effect", min(r.treated, r.holdout)
                                                  if r.randomised else r.treated, small_n)
               for r in thin.itertuples()}
    outcomes = campaign_outcomes(data, p.window_days)
    outcomes = outcomes[~outcomes["campaign_id"].isin(too_few)]
    observational_ids = campaigns.loc[~campaigns["randomised"], "campaign_id"]
    controls = outcomes[outcomes["campaign_id"].isin(observational_ids)].groupby("campaign_id")["treated"].agg(
        lambda d: int((d == 0).sum()))
    for cid, n in controls.items():
        if n < small_n:
            too_few[cid] = Unavailable.too_few("marketing.what.campaign_effect", n, small_n)
    outcomes = outcomes[~outcomes["campaign_id"].isin(too_few)]
    is_randomised = outcomes["campaign_id"].isin(campaigns.loc[campaigns["randomised"], "campaign_id"])
    sp = data.params.segmentation
    segments = {"value_tier": tuple(t.name for t in sp.value_tiers),
                "rfm_segment": tuple(r.name for r in sp.rfm_segments)}
    measured = campaigns["campaign_id"].isin(outcomes.loc[is_randomised, "campaign_id"])
    rfm = rfm_segments_at_start(data, campaigns[measured])
    none_left = Unavailable.too_few(WHAT, 0, small_n)
    randomised, heterogeneity = randomised_effects(
        outcomes[is_randomised].merge(rfm, on=["campaign_id", "customer_id"], how="left"), segments, small_n)
    observational, att = observational_effects(outcomes[~is_randomised], p.propensity_trim, p.matching_caliper)
    main = pd.concat([randomised, observational], ignore_index=True)
    contacted = campaigns.set_index("campaign_id")["treated"]
    uplift = {cid: campaign_uplift(g, customers, int(contacted[cid]), small_n)
              for cid, g in outcomes[is_randomised].groupby("campaign_id", sort=False)}
    margin = p.margin_rate if p.margin_rate is not None else data.params.loyalty.margin_rate
    return MarketingResult(
        params=p, currency=data.params.currency, small_sample_n=small_n, campaigns=campaigns,
        randomised=randomised if len(randomised) else none_left,
        heterogeneity=heterogeneity if len(heterogeneity) else none_left,
        observational=observational if len(observational) else none_left, att=att,
        roi=campaign_roi(main, campaigns, margin) if len(main) else none_left,
        engagement=engagement(data), too_few=too_few, next_best_category=nbc, basket_rules=baskets,
        sampled_controls=bool((outcomes.loc[~is_randomised, "weight"] > 1).any()),
        uplift=uplift if uplift else Unavailable.too_few(UPLIFT_WHAT, 0, 1, of=UPLIFT_CAMPAIGNS_OF),
        unit_uplift=unit_uplift(uplift))
