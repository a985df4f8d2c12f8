"""Satisfaction: how satisfied customers are and whether it is changing, which parts of the
experience drive it, which fix comes first, and whether dissatisfaction costs customers.

* **NPS** 净推荐值 = % promoters 推荐者 − % detractors 贬损者, in points (−100 to 100), with the
  multinomial standard error ``sqrt((p_pro + p_det − (p_pro − p_det)²) / n)`` and a Wald 95%
  interval; **CSAT** 客户满意度 = share of top-2-box ratings with a Wilson interval.
* **Change** between the last N months and the N months before: difference of the two NPS with
  independent-sample standard error, and the CSAT difference (Newcombe interval, score test).
* **Key drivers**: the overall rating regressed on the five attribute ratings; standardized OLS
  coefficients (statsmodels) and the Shapley / LMG decomposition of R² (exact over all 2^p
  subsets, as R's relaimpo ``type = "lmg"``) with percentile bootstrap intervals; the
  importance × performance priority matrix.
* **Retention**: a Cox proportional-hazards model (lifelines) of lapse after the survey on NPS
  group, controlling for tenure and value, and the revenue at stake.

Numbers only: :func:`analyse` returns a :class:`SatisfactionResult`; what the report shows of
it (wording, display tables, findings, charts, output files) is built by
:mod:`custlib.present.satisfaction`. A part the responses cannot support is a
:class:`custlib.stats.Unavailable` whose key is in the ``satisfaction.unavailable`` catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import factorial

import numpy as np
import pandas as pd
from scipy import stats as st

from custlib import contract, features
from custlib.params import SatisfactionParams, UnitParams
from custlib.stats import Z95, Estimate, Term, Unavailable, proportion

GROUPS = ("promoter", "passive", "detractor")
ATTRIBUTES = contract.SURVEY_ATTRIBUTES
# report dimension -> column of the survey frame
DIMENSIONS = {"unit": "business_unit", "segment": "segment", "channel": "order_channel",
              "region": "region", "customer type": "customer_type", "month": "month"}


# -- scores ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NPSEstimate(Estimate):
    """NPS in points (−100 to 100) with its multinomial standard error, Wald 95% interval and the
    shares (0-1) of promoters, passives and detractors."""

    promoters: float = float("nan")
    passives: float = float("nan")
    detractors: float = float("nan")


def nps_group(scores, promoter_min: int = 9, detractor_max: int = 6) -> pd.Series:
    """``promoter`` / ``passive`` / ``detractor`` for each 0-10 score (missing stays missing)."""
    s = pd.Series(scores, dtype="Float64")
    x = s.to_numpy(dtype=float, na_value=np.nan)
    out = np.where(x >= promoter_min, "promoter", np.where(x <= detractor_max, "detractor", "passive"))
    return pd.Series(np.where(np.isnan(x), None, out), index=s.index, dtype=object)


def nps(scores, promoter_min: int = 9, detractor_max: int = 6) -> NPSEstimate:
    """Net Promoter Score of 0-10 scores (missing scores ignored).

    Var(NPS) = (p_pro + p_det − (p_pro − p_det)²) / n for the shares (multinomial); the interval
    is NPS ± 1.96 se, in points. With n = 0 everything is NaN.
    """
    s = pd.Series(scores, dtype="Float64").dropna().to_numpy(dtype=float)
    n = len(s)
    if n == 0:
        nan = float("nan")
        return NPSEstimate(nan, nan, nan, nan, 0, "NPS, multinomial se", nan, nan, nan)
    pro, det = float(np.mean(s >= promoter_min)), float(np.mean(s <= detractor_max))
    se = float(np.sqrt((pro + det - (pro - det) ** 2) / n))
    est = NPSEstimate.normal(100 * (pro - det), 100 * se, n, "NPS, multinomial se")
    return replace(est, promoters=pro, passives=1 - pro - det, detractors=det)


def csat(ratings, satisfied_min: int = 4) -> Estimate:
    """CSAT: share (0-1) of ratings ≥ ``satisfied_min`` (top-2-box on 1-5), Wilson interval."""
    r = pd.Series(ratings, dtype="Float64").dropna()
    return replace(proportion(int((r >= satisfied_min).sum()), len(r)), method="top-2-box share, Wilson")


def small_sample_n(params: UnitParams) -> int:
    """The small-sample threshold of this analysis (its override, else the unit's)."""
    return params.satisfaction.small_sample_n or params.small_sample_n


# -- the survey frame ----------------------------------------------------------------------------
def survey_frame(data, segments: pd.Series | None = None) -> pd.DataFrame:
    """One row per survey response of the unit: scores, attribute ratings, comment, NPS group,
    month, the respondent's customer type, region and segment, and the purchase context of
    :func:`custlib.features.survey_followup` (order channel, tenure, value, lapse).

    ``segments``: segment name per ``customer_id``; without it, the RFM segments at the
    observation end (:func:`custlib.segmentation.current_segments`).
    """
    p, cfg = data.params, data.params.satisfaction
    responses = data.survey_responses.execute()
    responses["response_date"] = pd.to_datetime(responses["response_date"])
    context = features.survey_followup(data.survey_responses, data.transactions, p.observation_end,
                                       p.lifecycle.lapsed_after_days)
    customers = data.customers.select("customer_id", "customer_type", "region").execute()
    if segments is None:
        from custlib.segmentation import current_segments

        segments = current_segments(data)
    out = (responses
           .merge(context.drop(columns=["customer_id", "response_date"]), on="response_id", how="left")
           .merge(customers, on="customer_id", how="left"))
    out["segment"] = out["customer_id"].map(segments)
    out["month"] = out["response_date"].dt.strftime("%Y-%m")
    out["nps_group"] = nps_group(out["nps"], cfg.promoter_min, cfg.detractor_max)
    return out.sort_values(["response_date", "response_id"], ignore_index=True)  # ties: by id, not engine order


def score_table(responses: pd.DataFrame, cfg: SatisfactionParams = SatisfactionParams(),
                small_n: int = 30, dimensions: dict[str, str] = DIMENSIONS) -> pd.DataFrame:
    """NPS and CSAT per value of each dimension (``group``, ``group_value``): ``n``, ``nps``,
    ``se``, ``ci_low``, ``ci_high`` (points), shares of promoters / passives / detractors,
    ``csat`` with ``csat_ci_low`` / ``csat_ci_high`` (shares) and ``small_n`` (n < ``small_n``).
    Months are in time order, other values by decreasing n; written as ``nps.csv``."""
    rows = []
    for group, column in dimensions.items():
        if column not in responses or responses[column].isna().all():
            continue
        parts = responses.groupby(column, sort=True)
        sizes = parts.size()
        keys = list(sizes.index) if group == "month" else list(sizes.sort_values(ascending=False).index)
        for value in keys:
            part = parts.get_group(value)
            e = nps(part["nps"], cfg.promoter_min, cfg.detractor_max)
            c = csat(part["csat"], cfg.csat_satisfied_min)
            rows.append({"group": group, "group_value": value, "n": e.n, "nps": e.estimate, "se": e.se,
                         "ci_low": e.ci_low, "ci_high": e.ci_high, "promoters": e.promoters,
                         "passives": e.passives, "detractors": e.detractors, "csat": c.estimate,
                         "csat_ci_low": c.ci_low, "csat_ci_high": c.ci_high, "small_n": e.n < small_n})
    return pd.DataFrame(rows)


def group_rows(scores: pd.DataFrame, group: str, small_n: int) -> pd.DataFrame | Unavailable:
    """The rows of one dimension of :func:`score_table`, or why NPS cannot be compared across
    its values: none recorded, a single value, or fewer than two values with at least
    ``small_n`` responses."""
    d = scores[scores["group"] == group]
    dimension = Term(f"satisfaction.dimension.{group}")
    if d.empty:
        return Unavailable("satisfaction.unavailable.group_none", {"dimension": dimension})
    if len(d) == 1:
        return Unavailable("satisfaction.unavailable.group_one",
                           {"dimension": dimension, "n": int(d["n"].iloc[0]), "value": d["group_value"].iloc[0]})
    enough = int((d["n"] >= small_n).sum())
    if enough < 2:
        return Unavailable("satisfaction.unavailable.group_few",
                           {"dimension": dimension, "enough": enough, "values": len(d), "needed": small_n,
                            "largest": int(d["n"].max())})
    return d


# -- change between two periods -----------------------------------------------------------------
@dataclass(frozen=True)
class PeriodChange:
    """NPS and CSAT in two periods (first and last day of each) and the change from the earlier
    to the later one."""

    previous: tuple[pd.Timestamp, pd.Timestamp]
    recent: tuple[pd.Timestamp, pd.Timestamp]
    nps_previous: NPSEstimate
    nps_recent: NPSEstimate
    nps_change: Estimate
    nps_p_value: float
    csat_previous: Estimate
    csat_recent: Estimate
    csat_change: Estimate
    csat_p_value: float

    @property
    def summary(self) -> pd.DataFrame:
        """Tidy: measure (``nps`` in points, ``csat`` as a share), period (``previous``,
        ``recent``, ``change``), estimate, ci_low, ci_high, n, p_value (of the change)."""
        rows = [("nps", "previous", self.nps_previous, np.nan), ("nps", "recent", self.nps_recent, np.nan),
                ("nps", "change", self.nps_change, self.nps_p_value),
                ("csat", "previous", self.csat_previous, np.nan), ("csat", "recent", self.csat_recent, np.nan),
                ("csat", "change", self.csat_change, self.csat_p_value)]
        return pd.DataFrame([{"measure": m, "period": p, "estimate": e.estimate, "ci_low": e.ci_low,
                              "ci_high": e.ci_high, "n": e.n, "p_value": pv} for m, p, e, pv in rows])


def compare_periods(observation_end, months: int) -> tuple[tuple[pd.Timestamp, pd.Timestamp], ...]:
    """The N months up to the observation end and the N months before: ((start, end), (start, end))."""
    end = pd.Timestamp(observation_end)
    split = end + pd.Timedelta(days=1) - pd.DateOffset(months=months)
    start = split - pd.DateOffset(months=months)
    return (start, split - pd.Timedelta(days=1)), (split, end)


def change_test(responses: pd.DataFrame, observation_end, cfg: SatisfactionParams = SatisfactionParams()
                ) -> PeriodChange | Unavailable:
    """NPS and CSAT of the last ``cfg.compare_months`` months against the months before, or why
    not when a period has no responses.

    NPS change: difference with se = sqrt(se₁² + se₂²) (independent samples) and a two-sided
    z-test; CSAT change: Newcombe interval and score test (statsmodels).
    """
    from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

    periods = compare_periods(observation_end, cfg.compare_months)
    npss, csats, counts = [], [], []
    for start, end in periods:
        part = responses[responses["response_date"].between(start, end)]
        npss.append(nps(part["nps"], cfg.promoter_min, cfg.detractor_max))
        csats.append(csat(part["csat"], cfg.csat_satisfied_min))
        counts.append(int((part["csat"] >= cfg.csat_satisfied_min).sum()))
    a, b = npss
    if min(a.n, b.n) == 0:
        (a0, a1), (b0, b1) = periods
        return Unavailable("satisfaction.unavailable.change_empty",
                           {"previous_start": f"{a0:%Y-%m}", "previous_end": f"{a1:%Y-%m}", "n_previous": a.n,
                            "recent_start": f"{b0:%Y-%m}", "recent_end": f"{b1:%Y-%m}", "n_recent": b.n})
    diff = Estimate.normal(b.estimate - a.estimate, float(np.hypot(a.se, b.se)), a.n + b.n,
                           "difference of NPS, independent samples")
    p_nps = float(2 * st.norm.sf(abs(diff.estimate / diff.se))) if diff.se > 0 else float("nan")
    ca, cb = csats
    with np.errstate(divide="ignore", invalid="ignore"):  # a share of 0 or 1 in a period: ratio and odds undefined
        lo, hi = confint_proportions_2indep(counts[1], cb.n, counts[0], ca.n, method="newcomb")
        p_csat = float(test_proportions_2indep(counts[1], cb.n, counts[0], ca.n, method="score").pvalue)
    csat_diff = Estimate(float(cb.estimate - ca.estimate), float((hi - lo) / (2 * Z95)), float(lo), float(hi),
                         ca.n + cb.n, "difference of shares, Newcombe")
    return PeriodChange(periods[0], periods[1], a, b, diff, p_nps, ca, cb, csat_diff, p_csat)


# -- key drivers ---------------------------------------------------------------------------------
def _lmg_from_corr(corr: np.ndarray) -> np.ndarray:
    """Shapley / LMG shares of R² from the correlation matrix of (y, x1..xp): exact over all
    2^p subsets, R²(S) = r_S' R_SS⁻¹ r_S."""
    p = corr.shape[0] - 1
    r, rxx = corr[0, 1:], corr[1:, 1:]
    r2 = np.zeros(1 << p)
    for mask in range(1, 1 << p):
        idx = [j for j in range(p) if mask >> j & 1]
        r2[mask] = r[idx] @ np.linalg.solve(rxx[np.ix_(idx, idx)], r[idx])
    weight = [factorial(k) * factorial(p - k - 1) / factorial(p) for k in range(p)]
    out = np.zeros(p)
    for mask in range(1 << p):
        k = mask.bit_count()
        for j in range(p):
            if not mask >> j & 1:
                out[j] += weight[k] * (r2[mask | 1 << j] - r2[mask])
    return out


def _weighted_corr(rows: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Correlation matrix of the columns of ``rows`` each repeated ``counts`` times (NaN where a
    column does not vary), as :func:`numpy.corrcoef` of the repeated rows."""
    centered = rows - counts @ rows / counts.sum()
    cov = (centered * counts[:, None]).T @ centered
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(np.diag(cov))
        return np.clip(cov / np.outer(sd, sd), -1, 1)


def _regular(corr: np.ndarray) -> bool:
    """Whether a correlation matrix of (y, x1..xp) supports the LMG split: every variable
    varies and no predictor is a linear combination of the others."""
    return bool(np.isfinite(corr).all()) and np.linalg.matrix_rank(corr[1:, 1:]) == corr.shape[0] - 1


def lmg_importance(X: pd.DataFrame, y: pd.Series) -> pd.Series:
    """Shapley / LMG relative importance of each column of ``X`` for the OLS R² of ``y``: the
    average increase of R² when the predictor is added, over all orders of entry. Sums to the
    R² of the full model."""
    corr = np.corrcoef(np.column_stack([np.asarray(y, dtype=float), np.asarray(X, dtype=float)]),
                       rowvar=False)
    return pd.Series(_lmg_from_corr(corr), index=list(X.columns), name="importance")


class KeyDrivers:
    """Which attribute ratings drive the overall rating.

    ``fit(responses)`` uses complete cases of the outcome (``"nps"`` 0-10 or ``"csat"`` 1-5) and
    the attribute ratings (check them with :func:`key_drivers`); bootstrap resamples in which a
    variable does not vary or the attributes are collinear are left out of the intervals.
    Learned: ``n_``, ``r2_``, ``ols_`` (statsmodels OLS on standardized variables),
    ``bootstrap_`` (importances of each resample) and ``summary``: attribute, importance
    (Shapley / LMG part of R²), ci_low, ci_high (percentile bootstrap), mean_score (1-5) with
    its 95% interval, rank, top2_share (share of resamples in which the attribute ranks in the
    top two), std_coef with its 95% interval and n; written as ``drivers.csv``. Importances are
    parts of R² and sum to ``r2_``.
    """

    def __init__(self, outcome: str = "nps", attributes: tuple[str, ...] = ATTRIBUTES,
                 bootstrap_reps: int = 500, seed: int = 2025):
        self.outcome, self.attributes = outcome, tuple(attributes)
        self.bootstrap_reps, self.seed = bootstrap_reps, seed

    def fit(self, responses: pd.DataFrame) -> "KeyDrivers":
        import statsmodels.api as sm

        cols = [self.outcome, *self.attributes]
        d = responses[cols].dropna().astype(float)
        z = (d - d.mean()) / d.std()
        self.n_ = len(d)
        self.ols_ = sm.OLS(z[self.outcome], sm.add_constant(z[list(self.attributes)])).fit()
        self.r2_ = float(self.ols_.rsquared)
        importance = lmg_importance(d[list(self.attributes)], d[self.outcome])
        rng = np.random.default_rng(self.seed)
        # ratings are few distinct vectors: a resample is how often it draws each of them
        patterns, pattern_of = np.unique(d.to_numpy(), axis=0, return_inverse=True)
        boot = np.empty((self.bootstrap_reps, len(self.attributes)))
        for b in range(self.bootstrap_reps):
            counts = np.bincount(pattern_of.ravel()[rng.integers(0, self.n_, self.n_)], minlength=len(patterns))
            corr = _weighted_corr(patterns, counts)
            boot[b] = _lmg_from_corr(corr) if _regular(corr) else np.nan
        self.bootstrap_ = pd.DataFrame(boot, columns=list(self.attributes))
        ranks = (-self.bootstrap_.dropna()).rank(axis=1)
        ci = self.bootstrap_.quantile([0.025, 0.975])
        conf = self.ols_.conf_int()
        mean, sem = d[list(self.attributes)].mean(), d[list(self.attributes)].sem()
        s = pd.DataFrame({
            "attribute": list(self.attributes), "importance": importance.to_numpy(),
            "ci_low": ci.loc[0.025].to_numpy(), "ci_high": ci.loc[0.975].to_numpy(),
            "mean_score": mean.to_numpy(),
            "mean_score_ci_low": (mean - Z95 * sem).to_numpy(),
            "mean_score_ci_high": (mean + Z95 * sem).to_numpy(),
            "rank": importance.rank(ascending=False, method="first").astype(int).to_numpy(),
            "top2_share": (ranks <= 2).mean().to_numpy(),
            "std_coef": self.ols_.params[list(self.attributes)].to_numpy(),
            "std_coef_ci_low": conf.loc[list(self.attributes), 0].to_numpy(),
            "std_coef_ci_high": conf.loc[list(self.attributes), 1].to_numpy(), "n": self.n_,
        })
        self.summary = s.sort_values("rank", ignore_index=True)
        return self

def driver_attributes(responses: pd.DataFrame, outcome: str = "nps",
                      attributes: tuple[str, ...] = ATTRIBUTES) -> dict[str, Unavailable]:
    """The attributes that cannot enter the key-driver model, with why: rated by no respondent,
    or rated the same by every respondent who rated the overall score and all rated attributes."""
    rated = [a for a in attributes if responses[a].notna().any()]
    complete = responses[[outcome, *rated]].dropna()
    out = {a: Unavailable("satisfaction.left_out.not_rated") for a in attributes if a not in rated}
    if len(complete):
        out |= {a: Unavailable("satisfaction.left_out.constant", {"rating": f"{complete[a].iloc[0]:g}"})
                for a in rated if complete[a].nunique() < 2}
    return out


def key_drivers(responses: pd.DataFrame, cfg: SatisfactionParams, small_n: int,
                left_out: dict[str, Unavailable] | None = None) -> KeyDrivers | Unavailable:
    """:class:`KeyDrivers` fitted on the attributes not ``left_out`` (see
    :func:`driver_attributes`), or why the responses cannot support it: fewer than two
    attributes, fewer complete responses than ``small_n`` (and than attributes + 2), an overall
    score that does not vary, or collinear attributes."""
    attributes = tuple(a for a in ATTRIBUTES if a not in (left_out or {}))
    outcome = cfg.driver_outcome
    if len(attributes) < 2:
        return Unavailable("satisfaction.unavailable.drivers_attributes",
                           {"n": len(attributes), "total": len(ATTRIBUTES)})
    d = responses[[outcome, *attributes]].dropna()
    needed = max(small_n, len(attributes) + 2)
    if len(d) < needed:
        return Unavailable.too_few("satisfaction.what.drivers", len(d), needed,
                                   of="satisfaction.of.complete_responses")
    if d[outcome].nunique() < 2:
        return Unavailable("satisfaction.unavailable.drivers_flat",
                           {"n": len(d), "outcome": outcome.upper(), "score": f"{d[outcome].iloc[0]:g}"})
    if not _regular(np.corrcoef(d.to_numpy(dtype=float), rowvar=False)):
        return Unavailable("satisfaction.unavailable.drivers_collinear", {"n": len(d)})
    return KeyDrivers(outcome, attributes, cfg.bootstrap_reps, cfg.bootstrap_seed).fit(responses)


# (high importance, low score) -> quadrant code of the priority matrix
QUADRANTS = {(True, True): "fix_first", (True, False): "keep_up", (False, True): "watch",
             (False, False): "maintain"}


def priority_matrix(drivers: pd.DataFrame, satisfied_score: float = 4.0, top_score: float = 5.0
                    ) -> pd.DataFrame:
    """Importance × performance: each attribute's Shapley importance against its mean rating.

    High importance: at least the average importance (R² / p). Low score: a mean rating below
    ``satisfied_score`` (the rating that counts as satisfied, 4 of 5), a fixed benchmark rather
    than the average of the attributes, whose differences are often within noise. High
    importance and a low score = ``fix_first`` (the other quadrants: ``keep_up``, ``watch``,
    ``maintain``; see :data:`QUADRANTS`). ``first_fix`` marks the most important
    attribute in that quadrant (if it is empty, the one with the largest importance-weighted gap
    ``importance × (top_score − mean_score)``).
    """
    d = drivers[["attribute", "importance", "ci_low", "ci_high", "mean_score", "mean_score_ci_low",
                 "mean_score_ci_high", "n"]].copy()
    high = d["importance"] >= d["importance"].mean()
    low = d["mean_score"] < satisfied_score
    d["quadrant"] = [QUADRANTS[(h, lo)] for h, lo in zip(high, low)]
    d["weighted_gap"] = d["importance"] * (top_score - d["mean_score"])
    candidates = d[high & low]
    first = candidates["importance"].idxmax() if len(candidates) else d["weighted_gap"].idxmax()
    d["first_fix"] = d.index == first
    return d.sort_values("importance", ascending=False, ignore_index=True)


# -- satisfaction -> retention ------------------------------------------------------------------
def lapse_frame(responses: pd.DataFrame) -> pd.DataFrame:
    """Survival data of lapse after the survey, one row per customer (their first response).

    Lapse (see :func:`custlib.features.survey_followup`): the first purchase day, from the last
    purchase on or before the response onwards, that is followed by more than L days without a
    purchase; the lapse date is that last purchase. ``days`` runs from the response date: to the
    lapse date for ``lapsed`` customers (0 if they never bought again after the survey), else to
    ``followup_end`` = observation end − L, the last date whose L-day gap is fully observed
    (administrative censoring, independent of behaviour). Responses after ``followup_end`` have
    no follow-up and are left out. Covariates: ``tenure_years`` (first order to response) and
    ``log_value`` = log(1 + net revenue of the year before the response, floored at 0).
    """
    d = responses[responses["response_date"] <= responses["followup_end"]]
    d = d.sort_values(["response_date", "response_id"]).drop_duplicates("customer_id")  # the first response
    lapsed = d["lapse_date"].notna()
    end = d["lapse_date"].where(lapsed, d["followup_end"])
    return pd.DataFrame({
        "customer_id": d["customer_id"], "nps_group": d["nps_group"],
        "days": (end - d["response_date"]).dt.days.clip(lower=0).astype(float),
        "lapsed": lapsed.astype(int),
        "tenure_years": (d["response_date"] - d["first_order"]).dt.days / 365.25,
        "log_value": np.log1p(d["revenue_year_before"].clip(lower=0)),
        "revenue_year_before": d["revenue_year_before"],
    }).dropna().reset_index(drop=True)


@dataclass(frozen=True)
class RevenueAtStake:
    """What detractors' faster lapse costs among the surveyed detractors: expected excess lapses
    within ``horizon_days`` of the survey (against the same customers as promoters) and the
    annual revenue (year before the survey) of those lapses; intervals from the hazard-ratio
    interval."""

    horizon_days: int
    detractors: int
    excess_lapses: Estimate
    revenue: Estimate


class LapseModel:
    """Cox proportional-hazards model of lapse after the survey (lifelines ``CoxPHFitter``).

    Covariates: ``detractor`` and ``passive`` indicators (promoters are the reference),
    ``tenure_years`` and ``log_value`` (see :func:`lapse_frame`); one that does not vary is left
    out (check the frame with :func:`lapse_model`). Learned: ``cph_``, ``covariates_``, ``n_``,
    ``events_``, ``data_`` (the design) and ``summary``: term, hazard_ratio, ci_low, ci_high,
    p_value, n.
    """

    COVARIATES = ("detractor", "passive", "tenure_years", "log_value")

    def fit(self, frame: pd.DataFrame) -> "LapseModel":
        from lifelines import CoxPHFitter

        d = frame.assign(detractor=(frame["nps_group"] == "detractor").astype(int),
                         passive=(frame["nps_group"] == "passive").astype(int))
        self.data_ = d
        self.covariates_ = [c for c in self.COVARIATES if d[c].nunique() > 1]
        self.cph_ = CoxPHFitter().fit(d[[*self.covariates_, "days", "lapsed"]], "days", "lapsed")
        self.n_, self.events_ = len(d), int(d["lapsed"].sum())
        s = self.cph_.summary
        self.summary = pd.DataFrame({
            "term": self.covariates_, "hazard_ratio": s["exp(coef)"].to_numpy(),
            "ci_low": s["exp(coef) lower 95%"].to_numpy(), "ci_high": s["exp(coef) upper 95%"].to_numpy(),
            "p_value": s["p"].to_numpy(), "n": self.n_,
        })
        return self

    def hazard_ratio(self, term: str = "detractor") -> Estimate:
        """Hazard ratio of ``term`` with its 95% interval (se on the log scale)."""
        r = self.summary.set_index("term").loc[term]
        se = float(self.cph_.summary.loc[term, "se(coef)"])
        return Estimate(float(r.hazard_ratio), se, float(r.ci_low), float(r.ci_high), self.n_,
                        "Cox PH hazard ratio (se of log HR)")

    def revenue_at_stake(self, horizon_days: int) -> RevenueAtStake:
        """Excess lapses of the surveyed detractors within ``horizon_days`` and their revenue.

        For detractor i with promoter-counterfactual survival S_i(h) (same tenure and value),
        its survival as a detractor is S_i(h)^HR, so the excess lapse probability is
        S_i(h) − S_i(h)^HR; summed, and weighted by the revenue of the year before the survey.
        The interval evaluates the same at the ends of the hazard-ratio interval.
        """
        det = self.data_[self.data_["detractor"] == 1]
        as_promoter = det[self.covariates_].assign(detractor=0)
        surv = self.cph_.predict_survival_function(as_promoter, times=[horizon_days]).iloc[0].to_numpy()
        value = det["revenue_year_before"].clip(lower=0).to_numpy()
        hr = self.hazard_ratio()

        def excess(h: float) -> np.ndarray:
            return surv - surv ** h

        lapses = [float(excess(h).sum()) for h in (hr.estimate, hr.ci_low, hr.ci_high)]
        money = [float((excess(h) * value).sum()) for h in (hr.estimate, hr.ci_low, hr.ci_high)]
        method = "Cox PH, interval from the hazard-ratio interval"

        def est(v: list[float]) -> Estimate:
            return Estimate(v[0], (v[2] - v[1]) / (2 * Z95), v[1], v[2], len(det), method)

        return RevenueAtStake(horizon_days, len(det), est(lapses), est(money))

def lapse_model(frame: pd.DataFrame, small_n: int) -> LapseModel | Unavailable:
    """:class:`LapseModel` fitted on :func:`lapse_frame`, or why the frame cannot support the
    detractors' hazard ratio: fewer than ``small_n`` customers, no promoters or no detractors
    (the comparison itself), no lapses, or a fit that does not converge (complete separation)."""
    from lifelines.exceptions import ConvergenceError

    if len(frame) < small_n:
        return Unavailable.too_few("satisfaction.what.lapse_hazard", len(frame), small_n,
                                   of="satisfaction.of.followup_customers")
    absent = [g for g in ("promoter", "detractor") if not (frame["nps_group"] == g).any()]
    if absent:
        which = absent[0] if len(absent) == 1 else "both"
        return Unavailable(f"satisfaction.unavailable.lapse_absent.{which}", {"n": len(frame)})
    if not frame["lapsed"].any():
        return Unavailable("satisfaction.unavailable.lapse_no_events", {"n": len(frame)})
    try:
        return LapseModel().fit(frame)
    except ConvergenceError:
        return Unavailable("satisfaction.unavailable.lapse_no_convergence", {"n": len(frame)})


def lapse_by_group(frame: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """Kaplan–Meier share lapsed within ``horizon_days`` of the survey per NPS group, with its
    95% interval (lifelines, exponential Greenwood): nps_group, n, lapses, lapsed_share,
    ci_low, ci_high."""
    from lifelines import KaplanMeierFitter

    rows = []
    for g in GROUPS:
        part = frame[frame["nps_group"] == g]
        if part.empty:
            continue
        km = KaplanMeierFitter().fit(part["days"], part["lapsed"])
        ci = km.confidence_interval_survival_function_
        at = ci[ci.index <= horizon_days].iloc[-1]
        rows.append({"nps_group": g, "n": len(part), "lapses": int(part["lapsed"].sum()),
                     "lapsed_share": 1 - float(km.predict(horizon_days)),
                     "ci_low": 1 - float(at.iloc[1]), "ci_high": 1 - float(at.iloc[0])})
    return pd.DataFrame(rows)


# -- comments ------------------------------------------------------------------------------------
COMMENT_GROUPS = ("detractor", "promoter")  # comments of detractors against promoters


def comment_terms(terms: pd.DataFrame, language: str, n: int, min_comments: int) -> pd.DataFrame | Unavailable:
    """:func:`custlib.text.top_terms` of one language (``"zh"`` or ``"en"``) from
    :func:`custlib.text.distinctive_terms` of detractors against promoters, or why there are
    none: no comments of that language from one of the two groups, fewer than ``min_comments``
    comments from both together, or no term distinctive enough (|z| above 1.96)."""
    from custlib import text

    counts = {g: terms.attrs["comments"].get((language, g), 0) for g in COMMENT_GROUPS}
    lang = Term(f"satisfaction.language.{language}")
    missing = [g for g, k in counts.items() if k == 0]
    if missing:
        which = missing[0] if len(missing) == 1 else "both"
        return Unavailable(f"satisfaction.unavailable.comments_none.{which}", {"language": lang})
    total = sum(counts.values())
    if total < min_comments:
        return Unavailable("satisfaction.unavailable.comments_few",
                           {"language": lang, "n": total, "needed": min_comments})
    top = text.top_terms(terms, n, language)
    if top.empty:
        return Unavailable("satisfaction.unavailable.comments_flat", {"language": lang, "n": total})
    return top

# -- the whole analysis ------------------------------------------------------------------------
@dataclass(frozen=True)
class SatisfactionResult:
    """The satisfaction analysis of one unit, numbers only (:func:`analyse` builds it). A part
    the unit's responses cannot support is a :class:`custlib.stats.Unavailable` saying why.

    ``nps`` / ``csat``: the unit's scores (points / share); ``scores``: :func:`score_table`;
    ``groups``: its rows per dimension of :data:`DIMENSIONS` other than the unit (see
    :func:`group_rows`); ``change``: :func:`change_test`; ``left_out``: attributes not in the
    key-driver model, with why; ``drivers`` / ``priority``: :func:`key_drivers`,
    :func:`priority_matrix`; ``lapse_data``: :func:`lapse_frame`, followed up to
    ``followup_end`` (observation end − ``lapse_days``), ``responses_after_followup`` responses
    come later; ``lapse_groups``: :func:`lapse_by_group`; ``lapse`` / ``at_stake``:
    :func:`lapse_model` and its :meth:`LapseModel.revenue_at_stake`; ``terms``:
    :func:`custlib.text.distinctive_terms` of detractors against promoters; ``comments``: per
    language, :func:`comment_terms`.
    """

    cfg: SatisfactionParams
    small_n: int
    lapse_days: int
    nps: NPSEstimate
    csat: Estimate
    responses: pd.DataFrame
    scores: pd.DataFrame
    groups: dict[str, pd.DataFrame | Unavailable]
    change: PeriodChange | Unavailable
    left_out: dict[str, Unavailable]
    drivers: KeyDrivers | Unavailable
    priority: pd.DataFrame | Unavailable
    lapse_data: pd.DataFrame
    followup_end: pd.Timestamp
    responses_after_followup: int
    lapse_groups: pd.DataFrame | Unavailable
    lapse: LapseModel | Unavailable
    at_stake: RevenueAtStake | Unavailable
    terms: pd.DataFrame
    comments: dict[str, pd.DataFrame | Unavailable]

    @property
    def overall(self) -> pd.Series:
        """The unit row of ``scores``."""
        return self.scores[self.scores["group"] == "unit"].iloc[0]


def analyse(data) -> SatisfactionResult:
    """Run the satisfaction analysis of one unit (``data``: :class:`custlib.sources.UnitData`
    with survey responses)."""
    from custlib import text

    p, cfg = data.params, data.params.satisfaction
    small_n = small_sample_n(p)
    lapse_days = p.lifecycle.lapsed_after_days
    responses = survey_frame(data)
    scores = score_table(responses, cfg, small_n)
    groups = {g: group_rows(scores, g, small_n) for g in DIMENSIONS if g != "unit"}
    left_out = driver_attributes(responses, cfg.driver_outcome)
    drivers = key_drivers(responses, cfg, small_n, left_out)
    priority = (drivers if isinstance(drivers, Unavailable)
                else priority_matrix(drivers.summary, cfg.csat_satisfied_min))
    lapse_data = lapse_frame(responses)
    followup_end = pd.Timestamp(p.observation_end) - pd.Timedelta(days=lapse_days)
    lapse_groups = (lapse_by_group(lapse_data, cfg.horizon_days) if len(lapse_data) >= small_n else
                    Unavailable.too_few("satisfaction.what.lapse_by_group", len(lapse_data), small_n,
                                        of="satisfaction.of.followup_customers"))
    lapse = lapse_model(lapse_data, small_n)
    at_stake = lapse if isinstance(lapse, Unavailable) else lapse.revenue_at_stake(cfg.horizon_days)
    terms = text.distinctive_terms(responses["comment"], responses["nps_group"], *COMMENT_GROUPS)
    comments = {lang: comment_terms(terms, lang, cfg.top_terms, small_n) for lang in text.LANGUAGES}
    return SatisfactionResult(
        cfg, small_n, lapse_days, nps(responses["nps"], cfg.promoter_min, cfg.detractor_max),
        csat(responses["csat"], cfg.csat_satisfied_min), responses, scores, groups,
        change_test(responses, p.observation_end, cfg), left_out, drivers, priority, lapse_data, followup_end,
        int((responses["response_date"] > followup_end).sum()), lapse_groups, lapse, at_stake, terms, comments)
