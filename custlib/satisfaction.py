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
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import factorial
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as st

from custlib import contract, features
from custlib.params import SatisfactionParams, UnitParams
from custlib.stats import Z95, Estimate, Unavailable, proportion

GROUPS = ("promoter", "passive", "detractor")
ATTRIBUTES = contract.SURVEY_ATTRIBUTES
CUSTOMER_TYPE_NAMES = {"individual": "individual 个人客户", "enterprise": "enterprise 企业客户"}
# report dimension -> column of the survey frame
DIMENSIONS = {"unit": "business_unit", "segment": "segment", "channel": "order_channel",
              "region": "region", "customer type": "customer_type", "month": "month"}


def signed(x: float, digits: int = 0) -> str:
    """A number with its sign, '+12' or '-3', that never reads '-0' (zero is shown unsigned)."""
    text = f"{x:+.{digits}f}"
    return text[1:] if float(text) == 0 else text


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
    return out.sort_values("response_date", kind="stable", ignore_index=True)


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


def score_display(scores: pd.DataFrame, group: str) -> pd.DataFrame:
    """One dimension of :func:`score_table` formatted for the report; estimates on fewer than
    the small-sample threshold of responses are replaced by "n too small"."""
    d = scores[scores["group"] == group]
    value = d["group_value"].map(lambda v: CUSTOMER_TYPE_NAMES.get(v, v))
    nps_text = d.apply(lambda r: f"{signed(r.nps)} ({signed(r.ci_low)} to {signed(r.ci_high)})", axis=1)
    csat_text = d.apply(lambda r: f"{r.csat:.0%} ({r.csat_ci_low:.0%}–{r.csat_ci_high:.0%})", axis=1)
    small = d["small_n"].to_numpy()
    return pd.DataFrame({
        group: value, "n": d["n"],
        "NPS (95% CI)": np.where(small, "n too small", nps_text),
        "promoters": np.where(small, "–", d["promoters"].map("{:.0%}".format)),
        "detractors": np.where(small, "–", d["detractors"].map("{:.0%}".format)),
        "CSAT (95% CI)": np.where(small, "n too small", csat_text),
    }).reset_index(drop=True)


def group_rows(scores: pd.DataFrame, group: str, small_n: int) -> pd.DataFrame | Unavailable:
    """The rows of one dimension of :func:`score_table`, or why NPS cannot be compared across
    its values: none recorded, a single value, or fewer than two values with at least
    ``small_n`` responses."""
    d = scores[scores["group"] == group]
    if d.empty:
        return Unavailable(f"No {group} is recorded for the survey respondents, so there is no NPS by {group}.")
    if len(d) == 1:
        return Unavailable(f"All {int(d['n'].iloc[0]):,} responses come from one {group} "
                           f"({d['group_value'].iloc[0]}): there is nothing to compare by {group}.")
    enough = int((d["n"] >= small_n).sum())
    if enough < 2:
        return Unavailable(f"Too few responses to compare NPS by {group}: {enough} of {len(d)} {group} values "
                           f"have at least {small_n:,} responses (the largest has {int(d['n'].max()):,}); "
                           f"at least two are needed.")
    return d


# -- change between two periods -----------------------------------------------------------------
@dataclass(frozen=True)
class PeriodChange:
    """NPS and CSAT in two periods and the change from the earlier to the later one."""

    previous: str
    recent: str
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
        """Tidy: measure, period, estimate, ci_low, ci_high, n (NPS in points, CSAT shares)."""
        rows = [("NPS", self.previous, self.nps_previous), ("NPS", self.recent, self.nps_recent),
                ("NPS", "change", self.nps_change), ("CSAT", self.previous, self.csat_previous),
                ("CSAT", self.recent, self.csat_recent), ("CSAT", "change", self.csat_change)]
        return pd.DataFrame([{"measure": m, "period": p, "estimate": e.estimate, "ci_low": e.ci_low,
                              "ci_high": e.ci_high, "n": e.n} for m, p, e in rows])

    def display(self, small_n: int = 0) -> pd.DataFrame:
        """The summary formatted for the report (NPS in points, CSAT in %); a period with fewer
        than ``small_n`` responses, and the change when either period has, read "n too small"."""
        d = self.summary
        scale = np.where(d["measure"] == "NPS", 1.0, 100.0)
        unit = np.where(d["measure"] == "NPS", " points", "%")
        few = min(self.nps_previous.n, self.nps_recent.n) < small_n
        text = ["n too small" if (few if p == "change" else n < small_n)
                else f"{signed(e, 1)}{u} (95% CI {signed(lo, 1)} to {signed(hi, 1)})" if p == "change"
                else f"{e:.1f}{u} ({lo:.1f}–{hi:.1f})"
                for e, lo, hi, u, p, n in zip(d["estimate"] * scale, d["ci_low"] * scale, d["ci_high"] * scale,
                                              unit, d["period"], d["n"])]
        return pd.DataFrame({"measure": d["measure"], "period": d["period"], "estimate (95% CI)": text,
                             "n": d["n"]})

    def sentence(self, small_n: int = 30) -> str:
        """The change in one sentence; a caution instead when a period has fewer than ``small_n``
        responses."""
        a, b, c, d = self.nps_previous, self.nps_recent, self.nps_change, self.csat_change
        if min(a.n, b.n) < small_n:
            return (f"Too few responses to judge the change of NPS: n = {a.n:,} in {self.previous} and "
                    f"n = {b.n:,} in {self.recent}.")
        verdict = "a significant change" if self.nps_p_value < 0.05 else "no significant change"
        return (f"NPS {self.recent}: {signed(b.estimate)} (n = {b.n:,}) against {signed(a.estimate)} in "
                f"{self.previous} (n = {a.n:,}): change {signed(c.estimate, 1)} points (95% CI "
                f"{signed(c.ci_low, 1)} to {signed(c.ci_high, 1)}, p = {self.nps_p_value:.2f}), {verdict}; "
                f"CSAT change {signed(100 * d.estimate, 1)} percentage points (95% CI {signed(100 * d.ci_low, 1)} "
                f"to {signed(100 * d.ci_high, 1)}, p = {self.csat_p_value:.2f}).")


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
    labels, npss, csats, counts = [], [], [], []
    for start, end in periods:
        part = responses[responses["response_date"].between(start, end)]
        labels.append(f"{start:%Y-%m} to {end:%Y-%m}")
        npss.append(nps(part["nps"], cfg.promoter_min, cfg.detractor_max))
        csats.append(csat(part["csat"], cfg.csat_satisfied_min))
        counts.append(int((part["csat"] >= cfg.csat_satisfied_min).sum()))
    a, b = npss
    if min(a.n, b.n) == 0:
        empty = " and ".join(label for label, e in zip(labels, npss) if e.n == 0)
        return Unavailable(f"No survey responses in {empty}: the change of NPS and CSAT between "
                           f"{labels[0]} and {labels[1]} cannot be tested.")
    diff = Estimate.normal(b.estimate - a.estimate, float(np.hypot(a.se, b.se)), a.n + b.n,
                           "difference of NPS, independent samples")
    p_nps = float(2 * st.norm.sf(abs(diff.estimate / diff.se))) if diff.se > 0 else float("nan")
    ca, cb = csats
    with np.errstate(divide="ignore", invalid="ignore"):  # a share of 0 or 1 in a period: ratio and odds undefined
        lo, hi = confint_proportions_2indep(counts[1], cb.n, counts[0], ca.n, method="newcomb")
        p_csat = float(test_proportions_2indep(counts[1], cb.n, counts[0], ca.n, method="score").pvalue)
    csat_diff = Estimate(float(cb.estimate - ca.estimate), float((hi - lo) / (2 * Z95)), float(lo), float(hi),
                         ca.n + cb.n, "difference of shares, Newcombe")
    return PeriodChange(labels[0], labels[1], a, b, diff, p_nps, ca, cb, csat_diff, p_csat)


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
        values = d.to_numpy()
        boot = np.empty((self.bootstrap_reps, len(self.attributes)))
        for b in range(self.bootstrap_reps):
            sample = values[rng.integers(0, self.n_, self.n_)]
            with np.errstate(invalid="ignore", divide="ignore"):
                corr = np.corrcoef(sample, rowvar=False)
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

    def display(self) -> pd.DataFrame:
        """The summary formatted for the report."""
        d = self.summary
        return pd.DataFrame({
            "rank": d["rank"], "attribute": d["attribute"].map(_name),
            "importance (95% CI)": _ci_text(d["importance"], d["ci_low"], d["ci_high"]),
            "top two in resamples": d["top2_share"].map("{:.0%}".format),
            "mean rating (95% CI)": _ci_text(d["mean_score"], d["mean_score_ci_low"],
                                             d["mean_score_ci_high"]),
            "standardized coefficient (95% CI)": _ci_text(d["std_coef"], d["std_coef_ci_low"],
                                                          d["std_coef_ci_high"]),
        })

    def sentence(self) -> str:
        a, b = (r for r in self.summary.head(2).itertuples())
        return (f"Top drivers of the {self.outcome.upper()} score: {_name(a.attribute)}, accounting for "
                f"{a.importance:.2f} of R² (95% CI {a.ci_low:.2f}–{a.ci_high:.2f}), and {_name(b.attribute)}, "
                f"{b.importance:.2f} (95% CI {b.ci_low:.2f}–{b.ci_high:.2f}); the {len(self.attributes)} "
                f"attributes together explain R² = {self.r2_:.2f} (n = {self.n_:,}). These two rank top two "
                f"in {min(a.top2_share, b.top2_share):.0%} of bootstrap resamples.")


def driver_attributes(responses: pd.DataFrame, outcome: str = "nps",
                      attributes: tuple[str, ...] = ATTRIBUTES) -> dict[str, str]:
    """The attributes that cannot enter the key-driver model, with why: rated by no respondent,
    or rated the same by every respondent who rated the overall score and all rated attributes."""
    rated = [a for a in attributes if responses[a].notna().any()]
    complete = responses[[outcome, *rated]].dropna()
    out = {a: "rated by no respondent" for a in attributes if a not in rated}
    if len(complete):
        out |= {a: f"rated {complete[a].iloc[0]:g} by every respondent" for a in rated if complete[a].nunique() < 2}
    return out


def key_drivers(responses: pd.DataFrame, cfg: SatisfactionParams, small_n: int,
                left_out: dict[str, str] | None = None) -> KeyDrivers | Unavailable:
    """:class:`KeyDrivers` fitted on the attributes not ``left_out`` (see
    :func:`driver_attributes`), or why the responses cannot support it: fewer than two
    attributes, fewer complete responses than ``small_n`` (and than attributes + 2), an overall
    score that does not vary, or collinear attributes."""
    attributes = tuple(a for a in ATTRIBUTES if a not in (left_out or {}))
    outcome = cfg.driver_outcome
    if len(attributes) < 2:
        return Unavailable(f"Key drivers need at least two attributes whose ratings vary; "
                           f"{len(attributes)} of {len(ATTRIBUTES)} do.")
    d = responses[[outcome, *attributes]].dropna()
    needed = max(small_n, len(attributes) + 2)
    if len(d) < needed:
        return Unavailable.too_few("the key drivers", len(d), needed,
                                   of="responses with the overall score and every attribute rated")
    if d[outcome].nunique() < 2:
        return Unavailable(f"All {len(d):,} responses give the same {outcome.upper()} score "
                           f"({d[outcome].iloc[0]:g}): there is no variation for the attributes to explain.")
    if not _regular(np.corrcoef(d.to_numpy(dtype=float), rowvar=False)):
        return Unavailable(f"The attribute ratings of the {len(d):,} responses are collinear (one is a linear "
                           f"combination of the others): their separate importance cannot be estimated.")
    return KeyDrivers(outcome, attributes, cfg.bootstrap_reps, cfg.bootstrap_seed).fit(responses)


QUADRANTS = {(True, True): "fix first 优先改进", (True, False): "keep up 保持优势",
             (False, True): "watch 次要改进", (False, False): "maintain 维持"}


def priority_matrix(drivers: pd.DataFrame, satisfied_score: float = 4.0, top_score: float = 5.0
                    ) -> pd.DataFrame:
    """Importance × performance: each attribute's Shapley importance against its mean rating.

    High importance: at least the average importance (R² / p). Low score: a mean rating below
    ``satisfied_score`` (the rating that counts as satisfied, 4 of 5), a fixed benchmark rather
    than the average of the attributes, whose differences are often within noise. High
    importance and a low score = fix first 优先改进. ``first_fix`` marks the most important
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


def first_fix_sentence(priority: pd.DataFrame, satisfied_score: float = 4.0) -> str:
    r = priority[priority["first_fix"]].iloc[0]
    why = (f"the most important driver with a mean rating below {satisfied_score:g} ('satisfied')"
           if r.quadrant.startswith("fix first") else "the largest importance-weighted gap to the top rating")
    return (f"Fix first 优先改进: {_name(r.attribute)} — {why}: importance {r.importance:.2f} "
            f"(95% CI {r.ci_low:.2f}–{r.ci_high:.2f}), mean rating {r.mean_score:.2f} of 5 "
            f"(95% CI {r.mean_score_ci_low:.2f}–{r.mean_score_ci_high:.2f}, n = {r.n:,}).")


def priority_display(priority: pd.DataFrame) -> pd.DataFrame:
    """The priority matrix formatted for the report."""
    d = priority
    return pd.DataFrame({
        "attribute": d["attribute"].map(_name), "quadrant": d["quadrant"],
        "importance (95% CI)": _ci_text(d["importance"], d["ci_low"], d["ci_high"]),
        "mean rating (95% CI)": _ci_text(d["mean_score"], d["mean_score_ci_low"], d["mean_score_ci_high"]),
        "first fix": np.where(d["first_fix"], "yes", ""),
    })


def _name(attribute: str) -> str:
    return attribute.replace("_", " ")


def _ci_text(estimate, low, high, fmt: str = "{:.2f}") -> list[str]:
    return [f"{fmt.format(e)} ({fmt.format(lo)}–{fmt.format(hi)})"
            for e, lo, hi in zip(estimate, low, high)]


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
    d = d.sort_values("response_date", kind="stable").drop_duplicates("customer_id")
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


def lapse_definition(responses: pd.DataFrame, frame: pd.DataFrame, lapse_days: int) -> str:
    """The lapse definition and the follow-up of :func:`lapse_frame`, in one sentence."""
    end = responses["followup_end"].iloc[0]
    after = int((responses["response_date"] > end).sum())
    return (f"Lapsed: more than {lapse_days} days without a purchase. Follow-up runs to {end:%Y-%m-%d}, "
            f"{lapse_days} days before the observation end; {after:,} responses after that date have no "
            f"follow-up yet. Modelled: {len(frame):,} customers (their first response), "
            f"{int(frame['lapsed'].sum()):,} lapses.")


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

    def sentence(self, at_stake: RevenueAtStake, currency: str) -> str:
        hr = self.hazard_ratio()
        r, x = at_stake.revenue, at_stake.excess_lapses
        figures = (f"hazard ratio {hr.estimate:.2f} (95% CI {hr.ci_low:.2f}–{hr.ci_high:.2f}, "
                   f"n = {hr.n:,}, {self.events_:,} lapses) against promoters 推荐者, controlling for "
                   f"tenure and value")
        if hr.ci_low <= 1 <= hr.ci_high:
            return (f"No evidence that detractors 贬损者 lapse sooner: {figures}; the interval includes 1, "
                    f"so no revenue can be attributed to dissatisfaction-driven lapse.")
        return (f"Detractors 贬损者 lapse {'sooner' if hr.ci_low > 1 else 'later'}: {figures}. Among the "
                f"{at_stake.detractors:,} surveyed detractors that is about {x.estimate:,.0f} extra lapses "
                f"within {at_stake.horizon_days} days of the survey (95% CI {x.ci_low:,.0f}–{x.ci_high:,.0f}), "
                f"with {r.estimate:,.0f} {currency} of annual revenue at stake "
                f"(95% CI {r.ci_low:,.0f}–{r.ci_high:,.0f}).")


def lapse_model(frame: pd.DataFrame, small_n: int) -> LapseModel | Unavailable:
    """:class:`LapseModel` fitted on :func:`lapse_frame`, or why the frame cannot support the
    detractors' hazard ratio: fewer than ``small_n`` customers, no promoters or no detractors
    (the comparison itself), no lapses, or a fit that does not converge (complete separation)."""
    from lifelines.exceptions import ConvergenceError

    what = "the lapse hazard of detractors against promoters"
    if len(frame) < small_n:
        return Unavailable.too_few(what, len(frame), small_n, of="surveyed customers with follow-up")
    absent = [g for g in ("promoter", "detractor") if not (frame["nps_group"] == g).any()]
    if absent:
        return Unavailable(f"No {' and no '.join(g + 's' for g in absent)} among the {len(frame):,} surveyed "
                           f"customers with follow-up: {what} cannot be estimated.")
    if not frame["lapsed"].any():
        return Unavailable(f"None of the {len(frame):,} surveyed customers with follow-up has lapsed: "
                           f"{what} cannot be estimated.")
    try:
        return LapseModel().fit(frame)
    except ConvergenceError:
        return Unavailable(f"The Cox model of lapse does not converge on these {len(frame):,} customers (a group "
                           f"or covariate separates lapsed from retained customers): {what} cannot be estimated.")


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


def lapse_display(by_group: pd.DataFrame, cfg: SatisfactionParams = SatisfactionParams(),
                  small_n: int = 0) -> pd.DataFrame:
    """:func:`lapse_by_group` formatted for the report, with the client's group names; groups
    of fewer than ``small_n`` customers read "n too small"."""
    d = by_group
    shares = _ci_text(d["lapsed_share"], d["ci_low"], d["ci_high"], "{:.0%}")
    return pd.DataFrame({
        "NPS group": [f"{g} {cfg.nps_group_names[g]}" for g in d["nps_group"]], "n": d["n"],
        "lapses observed": d["lapses"],
        "share lapsed (95% CI)": np.where(d["n"] < small_n, "n too small", shares),
    })


def hazard_display(summary: pd.DataFrame) -> pd.DataFrame:
    """The Cox model's hazard ratios formatted for the report."""
    names = {"detractor": "detractors 贬损者 vs promoters 推荐者", "passive": "passives 被动者 vs promoters 推荐者",
             "tenure_years": "per year of tenure",
             "log_value": "per unit of log(1 + revenue of the prior year)"}
    return pd.DataFrame({
        "term": summary["term"].map(names),
        "hazard ratio (95% CI)": _ci_text(summary["hazard_ratio"], summary["ci_low"], summary["ci_high"]),
        "p-value": summary["p_value"].map(lambda p: "< 0.001" if p < 0.001 else f"{p:.3f}"),
    })


# -- the whole analysis ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SatisfactionAnalysis:
    """The satisfaction analysis of one unit (numbers only; :func:`analyse` builds it). A part
    the unit's responses cannot support is a :class:`custlib.stats.Unavailable` saying why.

    ``groups``: the rows of ``scores`` per dimension of :data:`DIMENSIONS` other than the unit
    (see :func:`group_rows`); ``left_out``: attributes not in the key-driver model, with why;
    ``lapse_groups``: :func:`lapse_by_group`; ``comments``: per language, the terms most typical
    of detractors and of promoters (:func:`custlib.text.language_terms`).
    """

    cfg: SatisfactionParams
    small_n: int
    currency: str
    responses: pd.DataFrame
    scores: pd.DataFrame
    groups: dict[str, pd.DataFrame | Unavailable]
    change: PeriodChange | Unavailable
    left_out: dict[str, str]
    drivers: KeyDrivers | Unavailable
    priority: pd.DataFrame | Unavailable
    lapse_data: pd.DataFrame
    lapse_groups: pd.DataFrame | Unavailable
    lapse: LapseModel | Unavailable
    at_stake: RevenueAtStake | Unavailable
    terms: pd.DataFrame
    comments: dict[str, pd.DataFrame | Unavailable]

    @property
    def overall(self) -> pd.Series:
        """The unit row of ``scores``."""
        return self.scores[self.scores["group"] == "unit"].iloc[0]

    def headline(self) -> list[str]:
        """The executive findings: NPS and CSAT with intervals and the change, the top drivers and
        the first fix, what detractors cost; a part the data cannot support says why."""
        o, cfg = self.overall, self.cfg
        if o["n"] < self.small_n:
            return [f"Only {o['n']:,} survey responses: too few for reliable satisfaction estimates "
                    f"(at least {self.small_n:,} needed)."]
        findings = [
            f"NPS 净推荐值 {signed(o['nps'])} (95% CI {signed(o['ci_low'])} to {signed(o['ci_high'])}, "
            f"n = {o['n']:,}): {o['promoters']:.0%} promoters 推荐者, {o['passives']:.0%} passives 被动者, "
            f"{o['detractors']:.0%} detractors 贬损者. CSAT 客户满意度 (rating {cfg.csat_satisfied_min}-5 of 5) "
            f"{o['csat']:.0%} (95% CI {o['csat_ci_low']:.0%}–{o['csat_ci_high']:.0%}, n = {o['n']:,}).",
            _said(self.change, lambda c: c.sentence(self.small_n)),
            _said(self.drivers, KeyDrivers.sentence),
        ]
        if not isinstance(self.drivers, Unavailable):
            findings.append(first_fix_sentence(self.priority, cfg.csat_satisfied_min))
        findings.append(_said(self.lapse, lambda m: m.sentence(self.at_stake, self.currency)))
        return findings

    def warnings(self, section: str) -> list[str]:
        """Cautions of one section: ``"scores"`` (groups with too few responses, an NPS group
        nobody is in), ``"drivers"`` (attributes left out) or ``"lapse"`` (few promoters or
        detractors behind the hazard ratio)."""
        if section == "scores":
            return self._score_warnings()
        if section == "drivers" and not isinstance(self.drivers, Unavailable):
            return [f"Left out of the key drivers: {_name(a)}, {why}." for a, why in self.left_out.items()]
        if section == "lapse" and not isinstance(self.lapse, Unavailable):
            counts = self.lapse.data_["nps_group"].value_counts()
            few = [f"{counts[g]:,} {g}s" for g in ("promoter", "detractor") if counts[g] < self.small_n]
            if few:
                return [f"Only {' and '.join(few)} behind the hazard ratio (fewer than {self.small_n:,} each): "
                        f"treat it as indicative."]
        return []

    def _score_warnings(self) -> list[str]:
        out = []
        shown = [d for d in self.groups.values() if not isinstance(d, Unavailable)]
        small = pd.concat([self.scores[self.scores["group"] == "unit"], *shown])
        small = small[small["small_n"]]
        months = small["group"] == "month"
        names = [f"{g} {v} (n = {n:,})" for g, v, n in small.loc[~months, ["group", "group_value", "n"]].itertuples(
            index=False)]
        if months.any():
            names.append(f"{int(months.sum())} months")
        if names:
            out.append(f"Fewer than {self.small_n:,} responses, too few for a reliable estimate (shown as "
                       f"'n too small'): {', '.join(names)}.")
        cfg = self.cfg
        bands = {"promoter": f"{cfg.promoter_min}-10", "detractor": f"0-{cfg.detractor_max}"}
        for group, band in bands.items():
            if self.overall[f"{group}s"] == 0 and self.overall["n"] >= self.small_n:
                out.append(f"No {group}s {cfg.nps_group_names[group]} (scores {band}) among the "
                           f"{self.overall['n']:,} responses: the NPS rests on the other groups alone, and "
                           f"nothing can be compared with {group}s.")
        return out

    def show_warnings(self, section: str) -> None:
        """Each caution of ``section`` (see :meth:`warnings`) as a visible report warning."""
        from custlib import report

        for text_ in self.warnings(section):
            report.warning(text_)

    def write_outputs(self, folder: str | Path) -> list[Path]:
        """``nps.csv`` (:func:`score_table`) and, when estimated, ``drivers.csv`` (the key
        drivers' summary), written atomically; returns the paths."""
        from custlib import report

        folder = Path(folder)
        paths = [report.write_output(self.scores, folder / "nps.csv")]
        if not isinstance(self.drivers, Unavailable):
            paths.append(report.write_output(self.drivers.summary, folder / "drivers.csv"))
        return paths


def _said(part, sentence) -> str:
    """The part's sentence, or the reason it is unavailable."""
    return part.reason if isinstance(part, Unavailable) else sentence(part)


def analyse(data) -> SatisfactionAnalysis:
    """Run the satisfaction analysis of one unit (``data``: :class:`custlib.sources.UnitData`
    with survey responses)."""
    from custlib import text

    p, cfg = data.params, data.params.satisfaction
    small_n = small_sample_n(p)
    responses = survey_frame(data)
    scores = score_table(responses, cfg, small_n)
    groups = {g: group_rows(scores, g, small_n) for g in DIMENSIONS if g != "unit"}
    left_out = driver_attributes(responses, cfg.driver_outcome)
    drivers = key_drivers(responses, cfg, small_n, left_out)
    priority = (drivers if isinstance(drivers, Unavailable)
                else priority_matrix(drivers.summary, cfg.csat_satisfied_min))
    lapse_data = lapse_frame(responses)
    lapse_groups = (lapse_by_group(lapse_data, cfg.horizon_days) if len(lapse_data) >= small_n else
                    Unavailable.too_few("the share lapsed by NPS group", len(lapse_data), small_n,
                                        of="surveyed customers with follow-up"))
    lapse = lapse_model(lapse_data, small_n)
    at_stake = lapse if isinstance(lapse, Unavailable) else lapse.revenue_at_stake(cfg.horizon_days)
    terms = text.distinctive_terms(responses["comment"], responses["nps_group"], "detractor", "promoter")
    comments = {lang: text.language_terms(terms, lang, cfg.top_terms, small_n) for lang in text.LANGUAGES}
    return SatisfactionAnalysis(cfg, small_n, p.currency, responses, scores, groups,
                                change_test(responses, p.observation_end, cfg), left_out, drivers, priority,
                                lapse_data, lapse_groups, lapse, at_stake, terms, comments)
