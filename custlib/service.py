"""Customer service: how fast tickets are answered and resolved, whether that is changing, what
a slow first response costs in lapsed customers and later satisfaction, and how often customers
complain.

* **Response and resolution times** (hours from opening to the first response, and to the
  resolution) by service channel and by ticket category: n, the median and the 90th percentile
  (sample quantile as :func:`numpy.quantile`) each with a distribution-free 95% interval from
  order statistics (the binomial ranks of Conover 1999, §3.2: coverage at least 95% whatever the
  distribution, no bootstrap), the share answered within the SLA (Wilson) and the share not
  answered (Wilson). The ranks are computed by the engine; only the few order statistics the
  intervals need leave it.
* **Trend**: the same per month of opening.
* **Slow replies and lapse**: a Cox model (lifelines, :class:`custlib.satisfaction.LapseModel`)
  of the time from a customer's first ticket to lapse (the satisfaction report's lapse definition,
  :func:`custlib.features.survey_followup` and :func:`custlib.satisfaction.lapse_frame`) on the
  delay of that ticket's first response beyond the SLA (capped; never answered counts as the cap),
  controlling for tenure and the net revenue of the year before the ticket; the hazard ratio is
  per 24 hours of delay. The revenue at stake per hour of delay follows from it.
* **Slow replies and later scores**: NPS and CSAT of survey responses after the first ticket
  regressed (OLS, standard errors clustered by customer) on the same delay and controls.
* **Complaints**: tickets of the complaint categories per 1,000 orders (exact Poisson interval),
  overall and by channel, and every category's tickets per 1,000 orders; retention (a purchase
  within N days) after a resolved against an unresolved complaint (observational: Newcombe
  interval of the difference).

Numbers only: :func:`analyse` returns a :class:`ServiceResult`; its wording, tables, charts and
output file are built by :mod:`custlib.present.service`. A part the tickets cannot support is a
:class:`custlib.stats.Unavailable` whose key is in the ``service.unavailable`` catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from scipy import stats as st

from custlib import features
from custlib.params import ServiceParams, UnitParams
from custlib.satisfaction import LapseModel, lapse_frame
from custlib.stats import Z95, Estimate, Unavailable, proportion

TABLE = "service_tickets"
QUANTILES = {"median": 0.5, "p90": 0.9}
MEASURES = ("response", "resolution")  # hours from opening to the first response / to the resolution
DIMENSIONS = ("unit", "channel", "category", "month")  # groups of the times table
SCALES = {"nps": (0, 10), "csat": (1, 5)}  # survey answer scales (data contract)
TIMES_MEASURES = ("tickets", "response_median", "response_p90", "sla_share", "unanswered_share",
                  "resolution_median", "resolution_p90", "resolved_share")  # rows of the times table


def small_sample_n(params: UnitParams) -> int:
    """The small-sample threshold of this analysis (its override, else the unit's)."""
    return params.service.small_sample_n or params.small_sample_n


# -- quantiles with distribution-free intervals -------------------------------------------------
def quantile_ranks(n: int, q: float, level: float = 0.95) -> tuple[int, int]:
    """1-based ranks (l, u) of the order statistics that bound the ``q`` quantile with coverage at
    least ``level``, whatever the (continuous) distribution: l = the α/2 quantile of Bin(n, q) and
    u = its 1 − α/2 quantile + 1, so that P(X₍ₗ₎ ≤ ξ_q ≤ X₍ᵤ₎) ≥ P(l ≤ B ≤ u − 1) ≥ level
    (Conover 1999, §3.2). l = 0 or u = n + 1: that side is unbounded at this n."""
    alpha = 1 - level
    lo = int(st.binom.ppf(alpha / 2, n, q))
    hi = int(st.binom.ppf(1 - alpha / 2, n, q)) + 1
    return lo, hi


def point_ranks(n: int, q: float) -> tuple[int, int, float]:
    """The two 1-based ranks and the weight of the sample quantile of :func:`numpy.quantile`
    (linear interpolation, Hyndman & Fan type 7): x₍ⱼ₎ + w (x₍ⱼ₊₁₎ − x₍ⱼ₎), h = (n − 1) q + 1,
    j = ⌊h⌋, w = h − j."""
    h = (n - 1) * q + 1
    j = int(np.floor(h))
    return j, min(j + 1, n), h - j


def quantile_estimate(x, q: float, level: float = 0.95) -> Estimate:
    """The ``q`` quantile of ``x`` (missing values ignored) with its order-statistic interval
    (:func:`quantile_ranks`; NaN on an unbounded side) — the in-memory twin of the engine's
    :func:`quantile_table`."""
    s = np.sort(pd.Series(x, dtype=float).dropna().to_numpy())
    n = len(s)
    if n == 0:
        return Estimate(np.nan, np.nan, np.nan, np.nan, 0, "")
    j, k, w = point_ranks(n, q)
    lo, hi = quantile_ranks(n, q, level)
    low = s[lo - 1] if lo >= 1 else np.nan
    high = s[hi - 1] if hi <= n else np.nan
    return _quantile(s[j - 1] + w * (s[k - 1] - s[j - 1]), low, high, n)


def _quantile(estimate: float, low: float, high: float, n: int) -> Estimate:
    """A quantile as an :class:`Estimate`; ``se`` is the interval's width / (2 × 1.96), for
    reference only (the interval is not symmetric), NaN when a side is unbounded."""
    se = (high - low) / (2 * Z95) if np.isfinite(low) and np.isfinite(high) else np.nan
    return Estimate(float(estimate), float(se), float(low), float(high), int(n), "order-statistic interval")


def quantile_table(values: ir.Table, probs: dict[str, float] = QUANTILES, level: float = 0.95) -> pd.DataFrame:
    """Quantiles per group of an Ibis table with columns ``measure``, ``dimension``, ``group`` and
    ``x`` (missing ``x`` ignored): one row per group and quantile (``quantile`` the key of
    ``probs``) with ``estimate``, ``ci_low``, ``ci_high`` (:func:`quantile_ranks`) and ``n``.

    Two engine queries: the group sizes, then the order statistics at the ranks the estimates and
    intervals need (``row_number`` within the group, ordered by ``x``; tied values are equal, so
    the order among them does not matter)."""
    v = values.filter(values.x.notnull())
    keys = ["measure", "dimension", "group"]
    sizes = v.group_by(keys).aggregate(n=v.count()).execute()
    if sizes.empty:
        return pd.DataFrame(columns=[*keys, "quantile", "estimate", "se", "ci_low", "ci_high", "n"])
    wanted = []
    for r in sizes.itertuples(index=False):
        for q in probs.values():
            j, k, _ = point_ranks(r.n, q)
            lo, hi = quantile_ranks(r.n, q, level)
            wanted += [(r.measure, r.dimension, r.group, rank) for rank in {j, k, lo, hi} if 1 <= rank <= r.n]
    ranks = ibis.memtable(pd.DataFrame(wanted, columns=[*keys, "rank"]).drop_duplicates())
    ranked = v.mutate(rank=ibis.row_number().over(ibis.window(group_by=keys, order_by=v.x)) + 1)
    picked = ranked.inner_join(ranks, [*keys, "rank"]).select(*keys, "rank", "x").execute()
    at = {(r.measure, r.dimension, r.group, int(r.rank)): float(r.x) for r in picked.itertuples(index=False)}
    rows = []
    for r in sizes.itertuples(index=False):
        key = (r.measure, r.dimension, r.group)
        for name, q in probs.items():
            j, k, w = point_ranks(r.n, q)
            lo, hi = quantile_ranks(r.n, q, level)
            e = _quantile(at[(*key, j)] + w * (at[(*key, k)] - at[(*key, j)]),
                          at.get((*key, lo), np.nan), at.get((*key, hi), np.nan), r.n)
            rows.append({"measure": r.measure, "dimension": r.dimension, "group": r.group, "quantile": name,
                         "estimate": e.estimate, "se": e.se, "ci_low": e.ci_low, "ci_high": e.ci_high, "n": e.n})
    return pd.DataFrame(rows)


# -- tickets in the engine ----------------------------------------------------------------------
def observation_stop(params: UnitParams) -> pd.Timestamp:
    """The end of the observation: midnight after ``observation_end`` (exclusive)."""
    return pd.Timestamp(params.observation_end) + pd.Timedelta(days=1)


def ticket_durations(tickets: ir.Table, params: UnitParams) -> ir.Table:
    """One row per ticket opened by the observation end (an Ibis expression, not executed):
    ``ticket_id``, ``customer_id``, ``channel``, ``category``, ``month`` ("YYYY-MM" of opening),
    ``opened_at``, ``response_hours`` and ``resolution_hours`` (null while not answered / not
    resolved by the observation end), ``sla_known`` (opened at least ``sla_hours`` before the
    end, so whether the SLA was met is known), ``within_sla``, ``wait_known`` (opened at least
    ``delay_cap_hours`` before the end), ``unanswered``, ``resolved`` (resolved by the end, or
    flagged resolved without a resolution time) and
    ``delay_days``: the delay beyond the SLA in days, capped at ``delay_cap_hours`` (never
    answered: the cap)."""
    cfg = params.service
    stop = observation_stop(params)
    t = tickets.filter(tickets.opened_at < stop)

    def hours(later):
        known = later.notnull() & (later < stop)
        return ibis.ifelse(known, (later.epoch_seconds() - t.opened_at.epoch_seconds()).cast("float64") / 3600,
                           ibis.null("float64"))

    response, resolution = hours(t.first_response_at), hours(t.resolved_at)
    t = t.mutate(response_hours=response, resolution_hours=resolution)
    late = (t.response_hours - cfg.sla_hours).clip(lower=0, upper=cfg.delay_cap_hours)
    return t.select(
        "ticket_id", "customer_id", "channel", "category", "opened_at", "response_hours", "resolution_hours",
        month=t.opened_at.strftime("%Y-%m"),
        sla_known=t.opened_at <= ibis.literal(stop - pd.Timedelta(hours=cfg.sla_hours)),
        within_sla=t.response_hours <= cfg.sla_hours,
        wait_known=t.opened_at <= ibis.literal(stop - pd.Timedelta(hours=cfg.delay_cap_hours)),
        unanswered=t.response_hours.isnull(),
        resolved=t.resolution_hours.notnull() | (t.resolved_at.isnull() & (t.resolved == 1)),
        delay_days=ibis.coalesce(late, cfg.delay_cap_hours) / 24.0,
    )


def _stacked(d: ir.Table, dimensions=DIMENSIONS) -> ir.Table:
    """Each ticket once per dimension: ``dimension`` and ``group`` (the unit's group is "all")."""
    parts = [d.mutate(dimension=ibis.literal(dim),
                      group=ibis.literal("all") if dim == "unit" else d[dim].cast("string"))
             for dim in dimensions]
    return ibis.union(*parts, distinct=False)


def times_table(durations: ir.Table, level: float = 0.95) -> pd.DataFrame:
    """Response and resolution times and shares per group (``dimension``: unit, channel,
    category, month; ``group``), tidy: ``measure`` is ``tickets`` (count), ``response_median``,
    ``response_p90``, ``resolution_median``, ``resolution_p90`` (hours, order-statistic
    intervals), ``sla_share`` (answered within the SLA, of the tickets whose SLA is known),
    ``unanswered_share`` (no answer by the end, of the tickets opened at least the delay cap
    before it) and ``resolved_share`` (of the same tickets), with Wilson intervals; columns
    ``dimension``, ``group``, ``measure``, ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``n``.
    Months are in time order, other groups by decreasing number of tickets."""
    s = _stacked(durations)
    values = ibis.union(*[s.select("dimension", "group", measure=ibis.literal(m), x=s[f"{m}_hours"])
                          for m in MEASURES], distinct=False)
    q = quantile_table(values, QUANTILES, level)
    q["measure"] = q["measure"] + "_" + q.pop("quantile")
    counts = s.group_by(["dimension", "group"]).aggregate(
        tickets=s.count(), sla_n=s.sla_known.sum(), sla_hit=(s.sla_known & s.within_sla.fill_null(False)).sum(),
        wait_n=s.wait_known.sum(), unanswered=(s.wait_known & s.unanswered).sum(),
        resolved=(s.wait_known & s.resolved).sum()).execute()
    rows = []
    for r in counts.itertuples(index=False):
        key = {"dimension": r.dimension, "group": r.group}
        rows.append({**key, "measure": "tickets", "estimate": float(r.tickets), "se": np.nan, "ci_low": np.nan,
                     "ci_high": np.nan, "n": int(r.tickets)})
        for measure, k, n in (("sla_share", r.sla_hit, r.sla_n), ("unanswered_share", r.unanswered, r.wait_n),
                              ("resolved_share", r.resolved, r.wait_n)):
            e = proportion(int(k), int(n))
            rows.append({**key, "measure": measure, "estimate": e.estimate, "se": e.se, "ci_low": e.ci_low,
                         "ci_high": e.ci_high, "n": e.n})
    out = pd.concat([pd.DataFrame(rows), q], ignore_index=True)
    size = counts.set_index(["dimension", "group"])["tickets"]
    out["_size"] = [size.get((d, g), 0) for d, g in zip(out["dimension"], out["group"], strict=True)]
    out["_dim"] = out["dimension"].map({d: i for i, d in enumerate(DIMENSIONS)})
    out["_order"] = np.where(out["dimension"] == "month", 0, -out["_size"])
    out["_m"] = out["measure"].map({m: i for i, m in enumerate(TIMES_MEASURES)})
    out = out.sort_values(["_dim", "_order", "group", "_m"], ignore_index=True)
    return out.drop(columns=["_size", "_dim", "_order", "_m"])


def group_rows(times: pd.DataFrame, dimension: str) -> pd.DataFrame:
    """:func:`times_table` of one dimension, wide: one row per group with ``tickets`` and per
    measure of :data:`TIMES_MEASURES` ``<measure>``, ``<measure>_ci_low``, ``<measure>_ci_high``
    and ``<measure>_n`` (NaN and 0 where a group has no value, e.g. no ticket answered)."""
    d = times[times["dimension"] == dimension]
    groups = list(dict.fromkeys(d["group"]))
    wide = d.pivot(index="group", columns="measure", values=["estimate", "ci_low", "ci_high", "n"])
    out = pd.DataFrame({"group": groups})

    def column(value: str, m: str) -> np.ndarray:
        if (value, m) not in wide.columns:
            return np.full(len(groups), np.nan)
        return wide[(value, m)].reindex(groups).to_numpy(dtype=float)

    out["tickets"] = np.nan_to_num(column("estimate", "tickets")).astype(int)
    for m in TIMES_MEASURES[1:]:
        out[m] = column("estimate", m)
        out[f"{m}_ci_low"], out[f"{m}_ci_high"] = column("ci_low", m), column("ci_high", m)
        out[f"{m}_n"] = np.nan_to_num(column("n", m)).astype(int)
    return out


# -- slow replies and lapse ----------------------------------------------------------------------
def first_tickets(durations: ir.Table) -> ir.Table:
    """The first ticket of each customer (earliest opening, ties by ticket id), as an Ibis
    expression of :func:`ticket_durations` rows."""
    w = ibis.window(group_by="customer_id", order_by=[durations.opened_at, durations.ticket_id])
    d = durations.mutate(_k=ibis.row_number().over(w))
    return d.filter(d._k == 0).drop("_k")


def ticket_frame(data, durations: ir.Table) -> pd.DataFrame:
    """One row per customer's first ticket, in the context of their purchases: ``ticket_id``,
    ``customer_id``, ``channel``, ``opened`` (day), ``delay_days``, and the satisfaction report's
    lapse follow-up from that day (:func:`custlib.features.survey_followup` with the ticket in
    place of a survey response: ``first_order``, ``revenue_year_before``, ``lapse_date``,
    ``followup_end``)."""
    p = data.params
    first = first_tickets(durations)
    as_response = first.select(response_id=first.ticket_id, customer_id=first.customer_id,
                               response_date=first.opened_at.date())
    context = features.survey_followup(as_response, data.transactions, p.observation_end,
                                       p.lifecycle.lapsed_after_days)
    own = first.select("ticket_id", "channel", "delay_days").execute()
    out = (context.rename(columns={"response_id": "ticket_id", "response_date": "opened"})
           .merge(own, on="ticket_id", how="left"))
    return out.sort_values(["opened", "ticket_id"], ignore_index=True)


def lapse_data(tickets: pd.DataFrame) -> pd.DataFrame:
    """Survival data of lapse after the first ticket, one row per customer: the satisfaction
    report's :func:`custlib.satisfaction.lapse_frame` (``days``, ``lapsed``, ``tenure_years``,
    ``log_value``, ``revenue_year_before``; tickets after its follow-up end left out) with
    ``delay_days`` and ``channel`` of the ticket."""
    frame = lapse_frame(tickets.rename(columns={"ticket_id": "response_id", "opened": "response_date"})
                        .assign(nps_group="ticket"))
    own = tickets.set_index("customer_id")
    return frame.drop(columns="nps_group").assign(delay_days=frame["customer_id"].map(own["delay_days"]).to_numpy(),
                                                  channel=frame["customer_id"].map(own["channel"]).to_numpy())


@dataclass(frozen=True)
class DelayCost:
    """What slow first replies cost, among the ``customers`` whose first ticket came in the last
    ``window_days`` days and was answered later than the SLA (or never): ``hours_late``, their
    counted delay beyond the SLA in hours (capped; summed); the expected extra lapses within
    ``horizon_days`` of the ticket against answers within the SLA (``lapses``) and the annual
    revenue of those lapses (``revenue``: net revenue of the year before the ticket); and the
    same per hour of delay (``lapses_per_hour``, ``revenue_per_hour``: divided by
    ``hours_late``). Intervals from the hazard-ratio interval."""

    horizon_days: int
    window_days: int
    customers: int
    hours_late: float
    lapses: Estimate
    revenue: Estimate
    lapses_per_hour: Estimate
    revenue_per_hour: Estimate


class DelayLapseModel(LapseModel):
    """Cox model of lapse after a customer's first ticket (lifelines ``CoxPHFitter``, the
    satisfaction report's :class:`custlib.satisfaction.LapseModel`) on ``delay_days`` (the delay
    of the first response beyond the SLA, capped, in days = 24 h), ``tenure_years`` and
    ``log_value`` (:func:`lapse_data`). :meth:`hazard_ratio` of ``delay_days`` is the hazard
    ratio per 24 hours of delay."""

    COVARIATES = ("delay_days", "tenure_years", "log_value")

    def hazard_ratio(self, term: str = "delay_days") -> Estimate:
        return super().hazard_ratio(term)

    def delay_cost(self, customers: pd.DataFrame, horizon_days: int, window_days: int) -> DelayCost:
        """:class:`DelayCost` over ``customers`` (covariates of :func:`lapse_data` with
        ``delay_days`` > 0 and ``revenue_year_before``).

        Customer i with delay d_i (days) has predicted survival S_i at the horizon (the model at
        their own delay, tenure and value); answered within the SLA it would be
        S_i^(HR^(−d_i)), so the extra lapse probability is S_i^(HR^(−d_i)) − S_i. Summed, and
        weighted by the revenue of the year before the ticket; per hour: divided by the summed
        delay in hours. The interval evaluates the same at the ends of the hazard-ratio interval
        (the baseline held)."""
        d = customers
        delay = d["delay_days"].to_numpy(dtype=float)
        value = d["revenue_year_before"].clip(lower=0).to_numpy(dtype=float)
        hr = self.hazard_ratio()
        if len(d):
            surv = self.cph_.predict_survival_function(d[self.covariates_], times=[horizon_days]).iloc[0].to_numpy()
        else:
            surv = np.empty(0)
        on_time = surv ** (hr.estimate ** -delay)  # survival answered within the SLA

        def extra(h: float) -> np.ndarray:
            return on_time - on_time ** (h ** delay)

        hours = float(24 * delay.sum())
        method = "Cox PH, interval from the hazard-ratio interval"

        def est(weight: np.ndarray, per: float = 1.0) -> Estimate:
            v = [float((extra(h) * weight).sum()) / per for h in (hr.estimate, hr.ci_low, hr.ci_high)]
            lo, hi = min(v[1:]), max(v[1:])
            return Estimate(v[0], (hi - lo) / (2 * Z95), lo, hi, len(d), method)

        ones = np.ones(len(d))
        per = hours if hours > 0 else float("nan")
        return DelayCost(horizon_days, window_days, len(d), hours, est(ones), est(value), est(ones, per),
                         est(value, per))


def delay_model(frame: pd.DataFrame, small_n: int) -> DelayLapseModel | Unavailable:
    """:class:`DelayLapseModel` fitted on :func:`lapse_data`, or why not: fewer than ``small_n``
    customers, fewer than ``small_n`` of them (or all) with a first response later than the SLA,
    no lapses, or a fit that does not converge."""
    from lifelines.exceptions import ConvergenceError

    if len(frame) < small_n:
        return Unavailable.too_few("service.what.delay_hazard", len(frame), small_n, of="service.of.first_tickets")
    late = int((frame["delay_days"] > 0).sum())
    if late < small_n or late == len(frame):
        return Unavailable("service.unavailable.delay_flat", {"n": len(frame), "late": late, "needed": small_n})
    if not frame["lapsed"].any():
        return Unavailable("service.unavailable.no_lapses", {"n": len(frame)})
    try:
        return DelayLapseModel().fit(frame.assign(nps_group="ticket"))
    except ConvergenceError:
        return Unavailable("service.unavailable.no_convergence", {"n": len(frame)})


# -- slow replies and later satisfaction ------------------------------------------------------------
@dataclass(frozen=True)
class ScoreSlope:
    """Change of a later survey score per 24 hours of first-response delay beyond the SLA, with
    tenure and value as controls: ``score`` is ``nps`` (0-10 answer) or ``csat`` (1-5 rating);
    ``slope`` from :class:`ScaleRegression` (the shift of the score before the scale rounds and
    bounds it), ``ols`` the plain least-squares slope of the answers (flattened where answers sit
    at the ends of the scale), both with standard errors clustered by customer; ``n`` responses
    (``slope.n``) from ``customers``, ``late`` of them after a late first response."""

    score: str
    slope: Estimate
    p_value: float
    ols: Estimate
    customers: int
    late: int


class ScaleRegression:
    """Interval ("grouped-data") regression of answers on a bounded integer scale: the answer is a
    latent score y* = x'β + ε, ε ~ N(0, σ²), rounded to the nearest point of the scale and
    bounded by its ends (``low`` .. ``high``), so answer k says y* ∈ [k − ½, k + ½), the lowest
    y* < low + ½ and the highest y* ≥ high − ½. β is the effect on the score before rounding and
    bounding, which least squares on the answers flattens where many answer at an end of the
    scale. Maximum likelihood through statsmodels' ``GenericLikelihoodModel`` (BFGS from the OLS
    fit; ``log_sigma`` the extra parameter).

    ``fit(y, X, groups=None)`` (returns self); learned: ``params_``, ``standard_errors_``
    (clustered by ``groups`` when given), ``results_`` (the statsmodels results),
    ``converged_``."""

    def __init__(self, low: int, high: int):
        self.low, self.high = low, high

    def fit(self, y: pd.Series, X: pd.DataFrame, groups=None) -> ScaleRegression:
        import statsmodels.api as sm
        from statsmodels.base.model import GenericLikelihoodModel

        low, high = self.low, self.high

        class _Model(GenericLikelihoodModel):
            def loglikeobs(self, params):
                mu, sigma = self.exog @ params[:-1], np.exp(params[-1])
                a = np.where(self.endog <= low, -np.inf, self.endog - 0.5)
                b = np.where(self.endog >= high, np.inf, self.endog + 0.5)
                p = st.norm.cdf((b - mu) / sigma) - st.norm.cdf((a - mu) / sigma)
                return np.log(np.clip(p, 1e-300, None))

        ols = sm.OLS(y, X).fit()
        start = np.r_[ols.params.to_numpy(), np.log(max(float(np.std(ols.resid)), 0.1))]
        cov = {"cov_type": "cluster", "cov_kwds": {"groups": groups}} if groups is not None else {}
        model = _Model(np.asarray(y, dtype=float), X, extra_params_names=["log_sigma"])
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # statsmodels' notes on df of the extra parameter
            self.results_ = model.fit(start_params=start, method="bfgs", maxiter=500, disp=0, **cov)
        names = [*X.columns, "log_sigma"]
        self.params_ = pd.Series(np.asarray(self.results_.params), index=names, name="estimate")
        self.standard_errors_ = pd.Series(np.asarray(self.results_.bse), index=names, name="se")
        self.converged_ = bool(self.results_.mle_retvals.get("converged", False)) and bool(
            np.isfinite(self.standard_errors_).all())
        return self

    def coefficient(self, term: str, n: int) -> tuple[Estimate, float]:
        """The coefficient of ``term`` with its Wald 95% interval, and its two-sided p-value."""
        b, se = float(self.params_[term]), float(self.standard_errors_[term])
        p = float(2 * st.norm.sf(abs(b / se))) if se > 0 else float("nan")
        return Estimate.normal(b, se, n, "interval regression, se clustered by customer"), p


def later_responses(data, durations: ir.Table) -> pd.DataFrame:
    """Survey responses given after the day of the respondent's first ticket: ``response_id``,
    ``customer_id``, ``nps``, ``csat`` (joined in the engine)."""
    first = first_tickets(durations)
    first = first.select("customer_id", day=first.opened_at.date())
    r = data.survey_responses
    j = r.inner_join(first, "customer_id")
    j = j.filter(j.response_date > j.day)
    return j.select("response_id", "customer_id", "nps", "csat").order_by("response_id").execute()


def score_slopes(responses: pd.DataFrame, covariates: pd.DataFrame, small_n: int) -> dict[str, ScoreSlope | Unavailable]:
    """Per score (``nps`` on 0-10, ``csat`` on 1-5): :class:`ScoreSlope` of the responses after
    the first ticket (:func:`later_responses`) on the customer's ``delay_days`` with
    ``tenure_years`` and ``log_value`` (``covariates``, one row per customer), or why not: fewer
    than ``small_n`` responses, fewer than ``small_n`` (or all) from customers answered late, or a
    fit that does not converge."""
    import statsmodels.api as sm

    d = responses.merge(covariates[["customer_id", "delay_days", "tenure_years", "log_value"]], on="customer_id")
    out: dict[str, ScoreSlope | Unavailable] = {}
    for score, (low, high) in SCALES.items():
        x = d.dropna(subset=[score, "delay_days", "tenure_years", "log_value"])
        late = int((x["delay_days"] > 0).sum())
        if len(x) < small_n:
            out[score] = Unavailable.too_few(f"service.what.{score}_slope", len(x), small_n,
                                             of="service.of.later_responses")
            continue
        if late < small_n or late == len(x):
            out[score] = Unavailable("service.unavailable.score_flat", {"n": len(x), "late": late, "needed": small_n})
            continue
        if x[score].nunique() < 2:
            out[score] = Unavailable("service.unavailable.score_constant", {"n": len(x), "score": f"{x[score].iloc[0]:g}"})
            continue
        controls = [c for c in ("tenure_years", "log_value") if x[c].nunique() > 1]
        X = sm.add_constant(x[["delay_days", *controls]].astype(float), has_constant="add")
        y = x[score].astype(float)
        groups = pd.factorize(x["customer_id"])[0]
        ols = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": groups})
        lo, hi = ols.conf_int().loc["delay_days"]
        ols_slope = Estimate(float(ols.params["delay_days"]), float(ols.bse["delay_days"]), float(lo), float(hi),
                             len(x), "OLS, se clustered by customer")
        model = ScaleRegression(low, high).fit(y, X, groups)
        if not model.converged_:
            out[score] = Unavailable("service.unavailable.score_no_convergence", {"n": len(x)})
            continue
        slope, p = model.coefficient("delay_days", len(x))
        out[score] = ScoreSlope(score, slope, p, ols_slope, int(x["customer_id"].nunique()), late)
    return out


# -- complaints ------------------------------------------------------------------------------------
def poisson_rate(count: int, exposure: float, per: float = 1000.0, level: float = 0.95) -> Estimate:
    """``count`` events per ``per`` units of ``exposure`` with the exact (Garwood) Poisson
    interval: χ²(α/2; 2k)/2 and χ²(1 − α/2; 2k + 2)/2 events, 0 below when k = 0."""
    alpha = 1 - level
    if exposure <= 0:
        return Estimate(np.nan, np.nan, np.nan, np.nan, int(count), "exact Poisson")
    lo = st.chi2.ppf(alpha / 2, 2 * count) / 2 if count > 0 else 0.0
    hi = st.chi2.ppf(1 - alpha / 2, 2 * count + 2) / 2
    scale = per / exposure
    return Estimate(count * scale, np.sqrt(count) * scale, float(lo * scale), float(hi * scale), int(count),
                    "exact Poisson")


def complaint_rates(durations: ir.Table, transactions: ir.Table, params: UnitParams) -> pd.DataFrame:
    """Tickets per 1,000 orders over the period the tickets cover (from the day of the first
    ticket to the observation end): complaints overall (``dimension`` unit) and by service
    channel, and tickets of every category (``dimension`` category). Columns ``dimension``,
    ``group``, ``tickets``, ``orders`` (positive orders in the period), ``estimate``, ``se``,
    ``ci_low``, ``ci_high`` (per 1,000 orders, exact Poisson), ``start``, ``end``."""
    cfg = params.service
    complaint = durations.category.isin(cfg.complaint_categories)
    c = durations.filter(complaint)
    agg = [
        c.aggregate(tickets=c.count()).mutate(dimension=ibis.literal("unit"), group=ibis.literal("all")),
        c.group_by(group=c.channel.cast("string")).aggregate(tickets=c.count()).mutate(
            dimension=ibis.literal("channel")),
        durations.group_by(group=durations.category.cast("string")).aggregate(
            tickets=durations.count()).mutate(dimension=ibis.literal("category")),
    ]
    counts = ibis.union(*[a.select("dimension", "group", "tickets") for a in agg], distinct=False).execute()
    first = durations.opened_at.min().execute()
    start = pd.Timestamp(first).normalize()
    tx = transactions.filter((transactions.amount > 0) & (transactions.order_date >= start.date())
                             & (transactions.order_date <= params.observation_end))
    orders = int(tx.count().execute())
    rows = []
    for r in counts.itertuples(index=False):
        if r.dimension != "unit" and r.tickets == 0:
            continue
        e = poisson_rate(int(r.tickets), orders)
        rows.append({"dimension": r.dimension, "group": r.group, "tickets": int(r.tickets), "orders": orders,
                     "estimate": e.estimate, "se": e.se, "ci_low": e.ci_low, "ci_high": e.ci_high,
                     "start": start, "end": pd.Timestamp(params.observation_end)})
    out = pd.DataFrame(rows)
    out["_dim"] = out["dimension"].map({"unit": 0, "channel": 1, "category": 2})
    return out.sort_values(["_dim", "tickets", "group"], ascending=[True, False, True],
                           ignore_index=True).drop(columns="_dim")


@dataclass(frozen=True)
class ComplaintRetention:
    """Retention after a customer's first complaint (opened at least ``days`` before the
    observation end): the share with a purchase within ``days`` days after a resolved and after
    an unresolved complaint (Wilson), the difference resolved − unresolved (Newcombe) and its
    p-value (score test). Observational: resolution is not assigned at random."""

    days: int
    resolved: Estimate
    unresolved: Estimate
    difference: Estimate
    p_value: float


def complaint_retention(durations: ir.Table, transactions: ir.Table, params: UnitParams,
                        small_n: int) -> ComplaintRetention | Unavailable:
    """:class:`ComplaintRetention`, or why not: fewer than ``small_n`` resolved or unresolved
    first complaints with the whole window observed."""
    from statsmodels.stats.proportion import (
        confint_proportions_2indep,
        test_proportions_2indep,
    )

    cfg = params.service
    days = cfg.retention_days
    last = pd.Timestamp(params.observation_end) - pd.Timedelta(days=days)
    c = first_tickets(durations.filter(durations.category.isin(cfg.complaint_categories)))
    c = c.filter(c.opened_at < last + pd.Timedelta(days=1))
    c = c.select("customer_id", "resolved", day=c.opened_at.date())
    tx = transactions.filter(transactions.amount > 0)
    j = c.inner_join(tx, "customer_id")
    j = j.filter((j.order_date > j.day) & (j.order_date <= j.day + ibis.interval(days=days)))
    back = j.group_by("customer_id").aggregate(orders=j.count())
    per = c.left_join(back, "customer_id")
    per = per.select(resolved=per.resolved, retained=per.orders.notnull())
    agg = per.group_by("resolved").aggregate(n=per.count(), retained=per.retained.sum()).execute()
    counts = {bool(r.resolved): (int(r.retained), int(r.n)) for r in agg.itertuples(index=False)}
    (k1, n1), (k0, n0) = counts.get(True, (0, 0)), counts.get(False, (0, 0))
    if min(n1, n0) < small_n:
        return Unavailable("service.unavailable.retention_few",
                           {"resolved": n1, "unresolved": n0, "needed": small_n, "days": days})
    with np.errstate(divide="ignore", invalid="ignore"):
        lo, hi = confint_proportions_2indep(k1, n1, k0, n0, method="newcomb")
        p = float(test_proportions_2indep(k1, n1, k0, n0, method="score").pvalue)
    diff = Estimate(k1 / n1 - k0 / n0, float((hi - lo) / (2 * Z95)), float(lo), float(hi), n1 + n0,
                    "difference of shares, Newcombe")
    return ComplaintRetention(days, proportion(k1, n1), proportion(k0, n0), diff, p)


# -- the whole analysis ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServiceResult:
    """The customer-service analysis of one unit, numbers only (:func:`analyse` builds it). A
    part the unit's tickets cannot support is a :class:`custlib.stats.Unavailable` saying why
    (every part, when the unit has no ``service_tickets``).

    ``tickets``: tickets opened by the observation end; ``times``: :func:`times_table`;
    ``first_tickets``: :func:`ticket_frame`; ``lapse_data``: :func:`lapse_data`, followed up to
    ``followup_end``; ``lapse``: :func:`delay_model`; ``cost``: its :meth:`DelayLapseModel.delay_cost`
    over the late first tickets of the last year; ``scores``: :func:`score_slopes` per score;
    ``complaints``: :func:`complaint_rates`; ``retention``: :func:`complaint_retention`.
    """

    cfg: ServiceParams
    small_n: int
    lapse_days: int
    tickets: int
    times: pd.DataFrame | Unavailable
    first_tickets: pd.DataFrame | Unavailable
    lapse_data: pd.DataFrame | Unavailable
    followup_end: pd.Timestamp
    lapse: DelayLapseModel | Unavailable
    cost: DelayCost | Unavailable
    scores: dict[str, ScoreSlope | Unavailable]
    complaints: pd.DataFrame | Unavailable
    retention: ComplaintRetention | Unavailable

    def group_rows(self, dimension: str) -> pd.DataFrame:
        """The ``times`` rows of one dimension, wide (:func:`group_rows`)."""
        return group_rows(self.times, dimension)


WHAT = {"times": "service.what.times", "lapse": "service.what.delay_hazard", "cost": "service.what.cost",
        "nps": "service.what.nps_slope", "csat": "service.what.csat_slope", "complaints": "service.what.complaints",
        "retention": "service.what.retention"}


def analyse(data) -> ServiceResult:
    """Run the customer-service analysis of one unit (``data``: :class:`custlib.sources.UnitData`);
    without service tickets every part says it needs them."""
    p, cfg = data.params, data.params.service
    small_n = small_sample_n(p)
    lapse_days = p.lifecycle.lapsed_after_days
    followup_end = pd.Timestamp(p.observation_end) - pd.Timedelta(days=lapse_days)
    if not data.has(TABLE):
        missing = {k: Unavailable.needs_table(TABLE, w) for k, w in WHAT.items()}
        return ServiceResult(cfg, small_n, lapse_days, 0, missing["times"], missing["lapse"], missing["lapse"],
                             followup_end, missing["lapse"], missing["cost"],
                             {"nps": missing["nps"], "csat": missing["csat"]}, missing["complaints"],
                             missing["retention"])
    durations = ticket_durations(data.service_tickets, p)
    tickets = int(durations.count().execute())
    times = times_table(durations)
    first = ticket_frame(data, durations)
    frame = lapse_data(first)
    lapse = delay_model(frame, small_n)
    covariates = _covariates(first, p)
    cost = lapse if isinstance(lapse, Unavailable) else _delay_cost(lapse, first, covariates, p)
    if data.has("survey_responses"):
        scores = score_slopes(later_responses(data, durations), covariates, small_n)
    else:
        scores = {s: Unavailable.needs_table("survey_responses", WHAT[s]) for s in ("nps", "csat")}
    complaints = complaint_rates(durations, data.transactions, p)
    retention = complaint_retention(durations, data.transactions, p, small_n)
    return ServiceResult(cfg, small_n, lapse_days, tickets, times, first, frame, followup_end, lapse, cost, scores,
                         complaints, retention)


def _covariates(first: pd.DataFrame, params: UnitParams) -> pd.DataFrame:
    """``customer_id``, ``delay_days``, ``tenure_years``, ``log_value``, ``revenue_year_before`` at
    every first ticket (also those after the follow-up end), as :func:`lapse_data` defines them."""
    stop = pd.Timestamp(params.observation_end)
    frame = lapse_data(first.assign(followup_end=stop))
    return frame[["customer_id", "delay_days", "tenure_years", "log_value", "revenue_year_before"]]


def _delay_cost(model: DelayLapseModel, first: pd.DataFrame, covariates: pd.DataFrame,
                params: UnitParams) -> DelayCost:
    """:meth:`DelayLapseModel.delay_cost` over the customers whose first ticket (``first``, with
    their ``covariates``) came in the last 365 days and was answered later than the SLA (or
    never)."""
    window = 365
    since = pd.Timestamp(params.observation_end) - pd.Timedelta(days=window - 1)
    recent = set(first.loc[first["opened"] >= since, "customer_id"])
    late = covariates[covariates["customer_id"].isin(recent) & (covariates["delay_days"] > 0)]
    return model.delay_cost(late, params.service.horizon_days, window)
