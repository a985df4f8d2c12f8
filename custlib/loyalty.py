"""Loyalty-programme impact (客户忠诚度计划: points 积分 and VIP membership VIP会员): what membership
changes beyond the fact that good customers are the ones who join.

Members are not a random sample: heavier buyers join more often, so the member vs non-member
gap (:func:`naive_gap`) mixes the programme's effect with who joins. The estimates that answer
the question compare customers who enrolled in a given month with customers of the same tier
and the same acquisition month who had not enrolled yet:

* :func:`cohort_did` — staggered difference-in-differences around enrollment on the customer x
  month panel: one comparison per enrollment cohort and event month against not-yet-enrolled
  customers (Callaway & Sant'Anna 2021), aggregated to an event-study curve (leads = pre-trend
  check) and an overall effect: weighted least squares in statsmodels, cluster-robust (by
  customer) errors with residuals corrected for the leverage of small comparison strata.
* :func:`estimate_att` — inverse-probability weighting, nearest-neighbour matching and doubly
  robust AIPW for any binary intervention, with a balance table; applied to pre/post changes on
  :func:`cohort_snapshots` it is the doubly robust DiD of Sant'Anna & Zhao (2020).

Effects are absolute (orders per customer-month, currency per customer-month, percentage
points) and relative to the members' counterfactual level (what they would have done without
the programme), which is how a purchase-rate uplift is usually stated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.stats import chi2
from statsmodels.tools.numdiff import approx_fprime
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neighbors import NearestNeighbors

from custlib import features, report
from custlib.params import LoyaltyParams, SegmentationParams
from custlib.stats import Estimate, Unavailable

TIERS = ("points", "vip")
ControlGroup = Literal["later_members", "all_not_yet_enrolled"]
ATTMethod = Literal["ipw", "matching", "aipw"]
PANEL_OUTCOMES = ("orders", "spend", "gross_sales", "active")
STATIC_COVARIATES = ("acquisition_channel", "customer_type", "region", "age", "gender", "income_band")
PRE_COVARIATES = ("pre_orders", "pre_spend", "pre_order_value", "last3_orders", "active_share",
                  "lifetime_orders", "recency_months", "tenure_months")


def _month_number(values) -> np.ndarray:
    """Calendar months as integers (year * 12 + month - 1); NaN for missing dates."""
    s = pd.to_datetime(pd.Series(values))
    return (s.dt.year * 12 + s.dt.month - 1).to_numpy(dtype=float)


# -- inputs ---------------------------------------------------------------------------------

def customer_frame(panel: pd.DataFrame, members: pd.DataFrame,
                   attributes: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per buyer in ``panel``: ``first_month``, ``enrolled_month`` (NaT if not a member),
    ``tier`` (None if not a member) and, if given, the customer ``attributes``. Indexed by
    ``customer_id``; members who never bought are left out (they have no behaviour to compare).
    """
    out = panel.groupby("customer_id", sort=True)["first_month"].first().to_frame()
    m = members.set_index("customer_id")
    out["enrolled_month"] = pd.to_datetime(m["enrolled_date"]).dt.to_period("M").dt.to_timestamp().reindex(out.index)
    out["tier"] = m["tier"].reindex(out.index).astype(object).where(out["enrolled_month"].notna(), None)
    if attributes is not None:
        out = out.join(attributes.set_index("customer_id"), how="left")
    return out


@dataclass(frozen=True)
class LoyaltyInputs:
    """The customer x month panel and the per-customer frame of one unit (see :func:`load_inputs`)."""

    panel: pd.DataFrame
    customers: pd.DataFrame

    @property
    def launch(self) -> pd.Timestamp:
        """Programme launch month, taken as the first enrollment month."""
        return self.customers["enrolled_month"].min()


def load_inputs(data) -> LoyaltyInputs:
    """Panel (built in the engine, :func:`custlib.features.customer_month_panel`), members and the
    non-personal customer attributes of one unit (a :class:`custlib.sources.UnitData`)."""
    p = data.params
    panel = features.customer_month_panel(data.transactions, p.observation_end, data.period()[0])
    members = data.loyalty_members.select("customer_id", "enrolled_date", "tier").execute()
    attributes = data.customers.select("customer_id", *STATIC_COVARIATES).execute()
    return LoyaltyInputs(panel, customer_frame(panel, members, attributes))


@dataclass(frozen=True)
class _Grid:
    """Panel outcomes as customer x month arrays (NaN before a customer's first order month),
    aligned with a customer frame; months are column positions counted from ``start``."""

    start: int
    values: dict[str, np.ndarray]
    cumulative: dict[str, np.ndarray]  # running sums with a leading zero column
    first: np.ndarray
    enrolled: np.ndarray  # NaN = not a member
    tier: np.ndarray
    last_active: np.ndarray  # latest month with an order up to each month, -1 if none

    @property
    def n_months(self) -> int:
        return next(iter(self.values.values())).shape[1]

    @classmethod
    def build(cls, panel: pd.DataFrame, customers: pd.DataFrame) -> "_Grid":
        month = _month_number(panel["month"])
        start = int(month.min())
        rows = customers.index.get_indexer(panel["customer_id"])
        keep = rows >= 0
        shape = (len(customers), int(month.max()) - start + 1)
        values, cumulative = {}, {}
        for c in PANEL_OUTCOMES:
            a = np.full(shape, np.nan)
            a[rows[keep], month[keep].astype(int) - start] = panel[c].to_numpy(dtype=float)[keep]
            values[c] = a
            cumulative[c] = np.c_[np.zeros(shape[0]), np.cumsum(np.nan_to_num(a), axis=1)]
        active = np.nan_to_num(values["active"]) > 0
        last = np.maximum.accumulate(np.where(active, np.arange(shape[1]), -1), axis=1)
        return cls(start, values, cumulative, _month_number(customers["first_month"]) - start,
                   _month_number(customers["enrolled_month"]) - start,
                   customers["tier"].fillna("none").to_numpy(dtype=object), last)

    def window_sum(self, outcome: str, rows: np.ndarray, lo, hi) -> tuple[np.ndarray, np.ndarray]:
        """Sum of ``outcome`` over months ``lo..hi`` (inclusive; ``lo`` clipped to each row's first
        order month) and the number of months summed."""
        lo = np.maximum(lo, self.first[rows]).astype(int)
        hi = np.broadcast_to(np.asarray(hi, dtype=int), lo.shape)
        cum = self.cumulative[outcome]
        return cum[rows, hi + 1] - cum[rows, lo], (hi + 1 - lo).astype(float)

    def window_mean(self, outcome: str, rows: np.ndarray, lo, hi) -> np.ndarray:
        total, months = self.window_sum(outcome, rows, lo, hi)
        return total / months

    def history(self, outcome: str, rows: np.ndarray, g: int, pre_months: int) -> dict[str, np.ndarray]:
        """Pre-enrollment behaviour of ``rows`` before month ``g``: mean ``outcome`` per month over
        the last ``pre_months`` months, the last 12 months and the whole tenure, the outcome in
        the month before, and months since the last order (0 = bought in the month before)."""
        return {"x_pre": self.window_mean(outcome, rows, g - pre_months, g - 1),
                "x_year": self.window_mean(outcome, rows, g - 12, g - 1),
                "x_tenure": self.window_mean(outcome, rows, 0, g - 1),
                "x_last": np.nan_to_num(self.values[outcome][rows, g - 1]),
                "x_recency": (g - 1 - self.last_active[rows, g - 1]).astype(float)}


def _controls(grid: _Grid, after: int, control_group: ControlGroup) -> np.ndarray:
    """Customers not enrolled by month ``after``: later members, plus never-enrolled customers
    for ``"all_not_yet_enrolled"``."""
    later = np.nan_to_num(grid.enrolled, nan=-1) > after
    if control_group == "all_not_yet_enrolled":
        return later | np.isnan(grid.enrolled)
    return later


# -- the naive gap ----------------------------------------------------------------------------

def _ratio(beta: np.ndarray, cov: np.ndarray, num: np.ndarray, den: np.ndarray, n: int,
           method: str) -> Estimate:
    """Ratio ``num @ beta / den @ beta`` of linear combinations, delta-method interval; NaN when
    the denominator (the baseline level) is not positive."""
    a, b = float(num @ beta), float(den @ beta)
    if b <= 0:
        return Estimate(np.nan, np.nan, np.nan, np.nan, n, method)
    grad = num / b - den * a / b**2
    return Estimate.normal(a / b, float(np.sqrt(max(grad @ cov @ grad, 0.0))), n, method)  # rounding: >= 0


def naive_gap(panel: pd.DataFrame, customers: pd.DataFrame, outcome: str = "orders") -> pd.DataFrame | Unavailable:
    """Members' mean monthly ``outcome`` after enrollment vs never-enrolled customers' mean over the
    same programme months — the comparison that mixes the programme's effect with who joins.

    One row per tier (``all``, ``points``, ``vip``): ``member_mean``, ``non_member_mean``, absolute
    ``gap`` and ``relative_gap`` (members / non-members - 1) with cluster-robust (by customer)
    95% intervals, ``n_members``, ``n_non_members`` (customers). Tiers without member months are
    left out; :class:`Unavailable` without never-enrolled customers or without any member month.
    """
    launch = customers["enrolled_month"].min()
    p = panel[panel["month"] >= launch].merge(customers[["enrolled_month", "tier"]],
                                              left_on="customer_id", right_index=True)
    member_months = p["enrolled_month"].notna() & (p["month"] > p["enrolled_month"])
    never = p["enrolled_month"].isna()
    if not never.any() or not member_months.any():
        return Unavailable(f"The naive comparison needs members after enrolment and never-enrolled customers: "
                           f"{p.loc[member_months, 'customer_id'].nunique():,} members and "
                           f"{p.loc[never, 'customer_id'].nunique():,} never-enrolled customers bought since the launch.")
    rows = []
    for tier in ("all", *TIERS):
        treated = member_months & ((p["tier"] == tier) if tier != "all" else True)
        if not treated.any():
            continue
        d = p[treated | never]
        x = sm.add_constant(treated[treated | never].astype(float).to_numpy())
        fit = sm.OLS(d[outcome].to_numpy(dtype=float), x).fit(
            cov_type="cluster", cov_kwds={"groups": pd.factorize(d["customer_id"])[0]})
        beta, cov = fit.params, fit.cov_params()
        n_m, n_n = d.loc[treated, "customer_id"].nunique(), d.loc[never, "customer_id"].nunique()
        gap = Estimate.normal(beta[1], np.sqrt(cov[1, 1]), n_m + n_n, "naive_gap")
        rel = _ratio(beta, cov, np.array([0.0, 1.0]), np.array([1.0, 0.0]), n_m + n_n, "naive_gap")
        rows.append({"tier": tier, "member_mean": beta[0] + beta[1], "non_member_mean": beta[0],
                     "gap": gap.estimate, "gap_ci_low": gap.ci_low, "gap_ci_high": gap.ci_high,
                     "gap_se": gap.se, "relative_gap": rel.estimate, "relative_se": rel.se,
                     "relative_ci_low": rel.ci_low, "relative_ci_high": rel.ci_high,
                     "n_members": n_m, "n_non_members": n_n})
    return pd.DataFrame(rows)


# -- staggered difference-in-differences ------------------------------------------------------

DID_COVARIATES = ("x_pre", "x_year", "x_tenure", "x_last", "x_recency")


def _did_cells(grid: _Grid, outcome: str, event_times, base_months: int,
               control_group: ControlGroup, covariates: bool = False) -> pd.DataFrame:
    """Stacked 2x2 comparisons (no rows when no cohort has both members and controls). For each enrollment cohort g and event month e (t = g + e): the
    cohort's members and the customers not enrolled by max(t, g), both acquired by min(t, g - 1).
    ``dy`` = outcome in month t minus its mean over the ``base_months`` months before g (from
    the first order month if later), ``y`` = outcome in month t; stratum = (g, e, acquisition
    month, tier) — for ``"all_not_yet_enrolled"`` controls of any tier and never-enrolled
    customers share the stratum. With ``covariates``, the pre-enrollment history
    (:meth:`_Grid.history`) is added as ``x_*`` columns."""
    tier_code = (pd.factorize(grid.tier)[0] if control_group == "later_members"
                 else np.zeros(len(grid.tier), dtype=int))
    y = grid.values[outcome]
    parts = []
    for g in np.unique(grid.enrolled[~np.isnan(grid.enrolled)]).astype(int):
        acquired = grid.first <= g - 1
        if g < 1 or not (acquired & (grid.enrolled == g)).any():
            continue
        for e in event_times:
            t = g + e
            if t < 0 or t >= grid.n_months:
                continue
            in_cell = acquired & (grid.first <= t) & ((grid.enrolled == g) | _controls(grid, max(t, g), control_group))
            rows = np.flatnonzero(in_cell)
            d = (grid.enrolled[rows] == g).astype(int)
            if d.all() or not d.any():
                continue
            part = pd.DataFrame({"row": rows, "cohort": g, "event_time": e, "treated": d,
                                 "stratum_acq": grid.first[rows].astype(int), "stratum_tier": tier_code[rows],
                                 "dy": y[rows, t] - grid.window_mean(outcome, rows, g - base_months, g - 1),
                                 "y": y[rows, t]})
            if covariates:
                part = part.assign(**grid.history(outcome, rows, g, base_months))
            parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["row", "cohort", "event_time", "treated", "stratum_acq", "stratum_tier",
                                     "dy", "y", "tier"])
    cells = pd.concat(parts, ignore_index=True)
    cells["tier"] = grid.tier[cells["row"].to_numpy()]
    return cells


def _strata_weights(cells: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows in strata that have both treated and controls, stratum ids, and weights: 1 for the
    treated, n_T / n_C for the controls, so both carry equal weight in every stratum."""
    key = cells.groupby(["cohort", "event_time", "stratum_acq", "stratum_tier"], sort=False).ngroup().to_numpy()
    d = cells["treated"].to_numpy(dtype=float)
    n_t, n_c = np.bincount(key, weights=d), np.bincount(key, weights=1 - d)
    keep = (n_t[key] > 0) & (n_c[key] > 0)
    w = np.where(d == 1, 1.0, (n_t / np.where(n_c > 0, n_c, 1))[key])[keep]
    return keep, pd.factorize(key[keep])[0], w


def _cluster_cov(fit, leverage: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Cluster-robust covariance of a statsmodels WLS fit with leverage-corrected residuals
    e / sqrt(1 - h) (the HC2 / CR2 idea, with the diagonal leverage ``h`` of the absorbed stratum
    means): small strata otherwise shrink the residuals and understate the error."""
    x, w = fit.model.exog, fit.model.weights
    scores = x * (w * np.asarray(fit.resid) / np.sqrt(1 - np.clip(leverage, 0, 0.99)))[:, None]
    codes = pd.factorize(groups)[0]
    per_cluster = np.zeros((codes.max() + 1, x.shape[1]))
    np.add.at(per_cluster, codes, scores)
    g = len(per_cluster)
    bread = fit.normalized_cov_params
    return g / (g - 1) * bread @ (per_cluster.T @ per_cluster) @ bread


def _no_comparison(cells: pd.DataFrame) -> Unavailable:
    """Why stacked cells support no DiD: no stratum holds both members and controls."""
    d = cells["treated"].to_numpy(dtype=bool)
    if not d.any():
        return Unavailable("No member has purchase history on both sides of their enrolment month, so there "
                           "is no before-and-after to compare; members with orders before and after joining "
                           "would enable it.")
    return Unavailable(f"No enrolment cohort has both members and not-yet-enrolled comparison customers of the "
                       f"same acquisition month and tier ({cells['row'][d].nunique():,} members, "
                       f"{cells['row'][~d].nunique():,} possible comparison customers).")


def _did_regression(cells: list[pd.DataFrame], covariates: tuple[str, ...] = ()
                    ) -> tuple[np.ndarray, np.ndarray, dict] | Unavailable:
    """Stratified DiD for one or more outcomes on the same stacked cells (one frame per outcome,
    same rows), as one weighted least-squares regression (statsmodels) with cluster-robust
    (by customer) covariance. Per outcome two equations: the within-stratum demeaned change on
    the demeaned treatment indicator (plus demeaned ``covariates``, common slopes) — its
    coefficient is the treated-weighted mean of the stratum differences in mean change, i.e. the
    ATT — and the treated post-period level on a constant. Covariance: :func:`_cluster_cov`.
    Returns coefficients, covariance and the positions of ``att<k>`` and ``level<k>``, plus the
    n's; :class:`Unavailable` when no stratum has both treated and controls."""
    keep, key, w = _strata_weights(cells[0])
    if not keep.any():
        return _no_comparison(cells[0])
    total_w = np.bincount(key, weights=w)

    def demean(v: np.ndarray) -> np.ndarray:
        return v - (np.bincount(key, weights=w * v) / total_w)[key]

    c0 = cells[0][keep]
    d = c0["treated"].to_numpy()
    tr = d == 1
    groups = c0["row"].to_numpy()
    k = 2 + len(covariates)
    blocks_y, blocks_x, blocks_w, blocks_g, blocks_h, pos = [], [], [], [], [], {}
    for j, frame in enumerate(cells):
        c = frame[keep]
        change = np.column_stack([d - 0.5] + [demean(c[x].to_numpy(dtype=float)) for x in covariates])
        x = np.zeros((len(c) + tr.sum(), k * len(cells)))
        x[:len(c), j * k:j * k + k - 1] = change
        x[len(c):, j * k + k - 1] = 1.0
        pos[f"att{j}"], pos[f"level{j}"] = j * k, j * k + k - 1
        blocks_x.append(x)
        blocks_y.append(np.r_[demean(c["dy"].to_numpy()), c["y"].to_numpy()[tr]])
        blocks_w.append(np.r_[w, np.ones(tr.sum())])
        blocks_g.append(np.r_[groups, groups[tr]])
        blocks_h.append(np.r_[w / total_w[key], np.full(tr.sum(), 1 / tr.sum())])
    fit = sm.WLS(np.concatenate(blocks_y), np.vstack(blocks_x), weights=np.concatenate(blocks_w)).fit()
    cov = _cluster_cov(fit, np.concatenate(blocks_h), np.concatenate(blocks_g))
    pos["n_treated"], pos["n_control"] = int(pd.unique(groups[tr]).size), int(pd.unique(groups[~tr]).size)
    return np.asarray(fit.params), cov, pos


def _stratified_did(cells: pd.DataFrame, covariates: tuple[str, ...] = (),
                    method: str = "cohort_did") -> dict | Unavailable:
    """ATT (absolute and relative to the treated's counterfactual level, delta-method interval
    from the joint covariance) of one outcome from stacked 2x2 cells (:func:`_did_regression`)."""
    fit = _did_regression([cells], covariates)
    if isinstance(fit, Unavailable):
        return fit
    beta, cov, pos = fit
    unit = np.eye(len(beta))
    n = pos["n_treated"] + pos["n_control"]
    a, lv = pos["att0"], pos["level0"]
    return {"absolute": Estimate.normal(beta[a], np.sqrt(cov[a, a]), n, method),
            "relative": _ratio(beta, cov, unit[a], unit[lv] - unit[a], n, method),
            "counterfactual_mean": float(beta[lv] - beta[a]),
            "n_treated": pos["n_treated"], "n_control": pos["n_control"]}


def _leads_test(cells: pd.DataFrame) -> tuple[float, int, float] | Unavailable:
    """Joint Wald test that the treated-control differences at all lead months are zero (one
    regression with a treatment indicator per lead, cluster-robust by customer): chi2, df, p.
    :class:`Unavailable` when the cluster-robust covariance cannot be inverted: no more
    customers than lead months with both treated and controls, or purchases that do not vary."""
    keep, key, w = _strata_weights(cells)
    c = cells[keep]
    clusters, times = c["row"].nunique(), np.sort(pd.unique(c["event_time"]))
    if len(times) and clusters > len(times):
        total_w = np.bincount(key, weights=w)
        e, d = c["event_time"].to_numpy(), c["treated"].to_numpy(dtype=float)
        x = np.column_stack([(d - 0.5) * (e == t) for t in times])
        y = c["dy"].to_numpy()
        y = y - (np.bincount(key, weights=w * y) / total_w)[key]
        fit = sm.WLS(y, x, weights=w).fit()
        b, v = np.asarray(fit.params), _cluster_cov(fit, w / total_w[key], c["row"].to_numpy())
        if np.linalg.matrix_rank(v) == len(b):
            stat = float(b @ np.linalg.solve(v, b))
            return stat, len(b), float(chi2.sf(stat, len(b)))
    return Unavailable(f"Not testable: the pre-trend test needs purchases that vary across more customers than "
                       f"lead months; {clusters:,} customers in {len(times)} lead months have both members and "
                       f"comparison customers.")


@dataclass(frozen=True)
class CohortDiD:
    """Staggered DiD around enrollment (:func:`cohort_did`).

    ``overall``: one row per tier and scale (``absolute`` in outcome units per customer-month,
    ``relative`` to the members' counterfactual level) over event months 1..lags;
    ``event_study``: one row per tier and event month (-leads..lags, month before enrollment = 0
    by construction) with the absolute and relative effect; ``pretrend``: per tier, the joint Wald
    test that all leads are zero (p-value; NaN and the reason in ``note`` when it cannot be
    tested); ``missing``: why a requested tier has no estimate."""

    outcome: str
    control_group: str
    overall: pd.DataFrame
    event_study: pd.DataFrame
    pretrend: pd.DataFrame
    missing: dict[str, Unavailable] = field(default_factory=dict)

    def effect(self, tier: str = "all", scale: str = "relative") -> Estimate:
        r = self.overall[(self.overall["tier"] == tier) & (self.overall["scale"] == scale)].iloc[0]
        return Estimate(r["estimate"], r["se"], r["ci_low"], r["ci_high"], int(r["n_treated"] + r["n_control"]),
                        r["method"])


def _tier_cells(cells: pd.DataFrame, tier: str) -> pd.DataFrame:
    return cells if tier == "all" else cells[(cells["treated"] == 0) | (cells["tier"] == tier)]


def cohort_did(panel: pd.DataFrame, customers: pd.DataFrame, outcome: str = "orders", leads: int = 6,
               lags: int = 12, pre_months: int = 6, control_group: ControlGroup = "later_members",
               event_study: bool = True, tiers: tuple[str, ...] = ("all", *TIERS),
               adjust: bool = True) -> CohortDiD | Unavailable:
    """Difference-in-differences around enrollment with staggered timing, Callaway & Sant'Anna
    style: every enrollment cohort is compared, month by month, with customers of the same
    acquisition month (and tier) who had not enrolled yet — never a two-way fixed-effects
    regression, which is biased when timing is staggered and effects change over time.

    ``outcome``: a panel column (``orders``, ``spend``, ``gross_sales``, ``active``) per
    customer-month. Overall effect: event months 1..``lags`` (the enrollment month itself is
    only partly treated), baseline = mean of the ``pre_months`` months before enrollment,
    regression-adjusted for the pre-enrollment history (``adjust``; it removes noise, not bias,
    because within a stratum the timing of enrollment is as good as random). Event study:
    months -``leads``..``lags`` against the month before enrollment, unadjusted (leads near
    zero = no pre-trend). ``control_group``:
    ``"later_members"`` (customers who enrolled later; like the treated they chose to join) or
    ``"all_not_yet_enrolled"`` (adds never-enrolled customers, who joined less because they buy
    less — a check on how much self-selection biases that comparison).

    Tiers without a comparison are left out (reason in :attr:`CohortDiD.missing`);
    :class:`Unavailable` when no requested tier has one."""
    grid = _Grid.build(panel, customers)
    post = _did_cells(grid, outcome, range(1, lags + 1), pre_months, control_group, covariates=adjust)
    overall, curve, pretrend, missing = [], [], [], {}
    for tier in tiers:
        r = _stratified_did(_tier_cells(post, tier), DID_COVARIATES if adjust else ())
        if isinstance(r, Unavailable):
            missing[tier] = r
            continue
        for scale in ("absolute", "relative"):
            est = r[scale]
            overall.append({"outcome": outcome, "tier": tier, "scale": scale, "method": est.method,
                            "estimate": est.estimate, "se": est.se, "ci_low": est.ci_low,
                            "ci_high": est.ci_high, "counterfactual_mean": r["counterfactual_mean"],
                            "n_treated": r["n_treated"], "n_control": r["n_control"]})
    if not overall:
        return missing[tiers[0]]
    if event_study:
        cells = _did_cells(grid, outcome, [e for e in range(-leads, lags + 1) if e != -1], 1, control_group)
        for tier in (t for t in tiers if t not in missing):
            sub = _tier_cells(cells, tier)
            test = _leads_test(sub[sub["event_time"] < -1])
            pretrend.append({"tier": tier, "leads_tested": leads - 1, "chi2": np.nan, "p_value": np.nan,
                             "note": test.reason} if isinstance(test, Unavailable) else
                            {"tier": tier, "leads_tested": test[1], "chi2": test[0], "p_value": test[2], "note": ""})
            for e in (e for e in range(-leads, lags + 1) if e != -1):
                r = _stratified_did(sub[sub["event_time"] == e])
                if isinstance(r, Unavailable):
                    continue
                curve.append({"tier": tier, "event_time": e, "estimate": r["absolute"].estimate,
                              "se": r["absolute"].se, "ci_low": r["absolute"].ci_low,
                              "ci_high": r["absolute"].ci_high, "relative": r["relative"].estimate,
                              "relative_ci_low": r["relative"].ci_low,
                              "relative_ci_high": r["relative"].ci_high,
                              "n_treated": r["n_treated"], "n_control": r["n_control"]})
            curve.append({"tier": tier, "event_time": -1, "estimate": 0.0, "se": 0.0, "ci_low": 0.0,
                          "ci_high": 0.0, "relative": 0.0, "relative_ci_low": 0.0,
                          "relative_ci_high": 0.0, "n_treated": np.nan, "n_control": np.nan})
    es = pd.DataFrame(curve)
    if len(es):
        es = es.sort_values(["tier", "event_time"]).reset_index(drop=True)
    return CohortDiD(outcome, control_group, pd.DataFrame(overall), es, pd.DataFrame(pretrend), missing)


def _delta(fn, beta: np.ndarray, cov: np.ndarray, n: int, method: str) -> Estimate:
    """Delta-method interval of a smooth function of regression coefficients (numerical gradient)."""
    grad = approx_fprime(beta, fn, centered=True)
    return Estimate.normal(fn(beta), float(np.sqrt(grad @ cov @ grad)), n, method)


def spend_per_order_did(panel: pd.DataFrame, customers: pd.DataFrame, lags: int = 12, pre_months: int = 6,
                        control_group: ControlGroup = "later_members",
                        tiers: tuple[str, ...] = ("all", *TIERS)) -> pd.DataFrame | Unavailable:
    """Effect of membership on the value per order (gross sales / orders), from the DiD effects on
    monthly gross sales and monthly orders estimated jointly on the same comparisons: relative
    effect = (1 + relative effect on sales) / (1 + relative effect on orders) - 1, absolute =
    members' value per order - counterfactual value per order (currency); delta-method
    intervals. Working from the two monthly totals avoids comparing only customers who happened
    to order after enrollment (membership itself changes who that is). One row per tier and
    scale, as :attr:`CohortDiD.overall`; a tier is left out without a comparison or without
    orders (actual or counterfactual) after enrollment, :class:`Unavailable` if every tier is."""
    grid = _Grid.build(panel, customers)
    post = range(1, lags + 1)
    sales = _did_cells(grid, "gross_sales", post, pre_months, control_group, covariates=True)
    orders = _did_cells(grid, "orders", post, pre_months, control_group, covariates=True)
    rows, missing = [], []
    for tier in tiers:
        mask = (sales["treated"] == 0) | (sales["tier"] == tier) if tier != "all" else np.ones(len(sales), bool)
        fit = _did_regression([sales[mask], orders[mask]], DID_COVARIATES)
        if isinstance(fit, Unavailable):
            missing.append(fit)
            continue
        beta, cov, pos = fit
        a_s, l_s, a_o, l_o = pos["att0"], pos["level0"], pos["att1"], pos["level1"]
        if min(beta[l_o], beta[l_o] - beta[a_o], beta[l_s] - beta[a_s]) <= 0:
            missing.append(Unavailable("Spend per order needs orders after enrolment, actual and counterfactual: "
                                       f"{tier} members ordered {beta[l_o]:.3f} times a month against "
                                       f"{beta[l_o] - beta[a_o]:.3f} without the programme."))
            continue
        n = pos["n_treated"] + pos["n_control"]
        scales = {
            "absolute": lambda b: b[l_s] / b[l_o] - (b[l_s] - b[a_s]) / (b[l_o] - b[a_o]),
            "relative": lambda b: (b[l_s] / (b[l_s] - b[a_s])) / (b[l_o] / (b[l_o] - b[a_o])) - 1,
        }
        for scale, fn in scales.items():
            est = _delta(fn, beta, cov, n, "cohort_did")
            rows.append({"outcome": "spend_per_order", "tier": tier, "scale": scale, "method": est.method,
                         "estimate": est.estimate, "se": est.se, "ci_low": est.ci_low, "ci_high": est.ci_high,
                         "counterfactual_mean": (beta[l_s] - beta[a_s]) / (beta[l_o] - beta[a_o]),
                         "n_treated": pos["n_treated"], "n_control": pos["n_control"]})
    return pd.DataFrame(rows) if rows else missing[0]


# -- cohort snapshots for the propensity methods -----------------------------------------------

def cohort_snapshots(panel: pd.DataFrame, customers: pd.DataFrame, pre_months: int = 6,
                     post_months: int = 6, control_group: ControlGroup = "later_members"
                     ) -> pd.DataFrame | Unavailable:
    """One row per enrollment cohort (month g) and customer: the cohort's members (``treated`` = 1)
    and the customers not enrolled by the end of the outcome window g + ``post_months``
    (``treated`` = 0), all with a first order before g. The same customer can be a control for
    several cohorts (cluster on ``customer_id``).

    Pre-enrollment covariates (the ``pre_months`` months before g): ``pre_orders`` and
    ``pre_spend`` per month, ``pre_order_value`` (gross value per order, NaN without orders),
    ``last3_orders`` per month, ``active_share`` of months, ``lifetime_orders`` per month since the
    first order, ``recency_months``, ``tenure_months``, plus the static customer attributes.
    Outcomes over months g+1..g+``post_months`` (the enrollment month is left out): ``post_orders``,
    ``post_spend`` (per month), ``post_order_value`` and the changes ``d_orders``, ``d_spend``,
    ``d_order_value`` (post minus pre); ``still_active``: any order in the last three months of
    the window.

    :class:`Unavailable` when no member bought before enrolling in a month followed by
    ``post_months`` observed months.
    """
    grid = _Grid.build(panel, customers)
    static = [c for c in STATIC_COVARIATES if c in customers.columns]
    launch = int(np.nanmin(grid.enrolled))
    parts = []
    for g in range(max(launch, 1), grid.n_months - post_months):
        acquired = grid.first <= g - 1
        treated = acquired & (grid.enrolled == g)
        if not treated.any():
            continue
        rows = np.flatnonzero(treated | (acquired & _controls(grid, g + post_months, control_group)))
        pre_lo, post = g - pre_months, (g + 1, g + post_months)
        pre_sales = grid.window_sum("gross_sales", rows, pre_lo, g - 1)[0]
        pre_n = grid.window_sum("orders", rows, pre_lo, g - 1)
        post_sales = grid.window_sum("gross_sales", rows, *post)[0]
        post_orders = grid.window_sum("orders", rows, *post)[0]
        f = pd.DataFrame({
            "customer_id": customers.index[rows], "cohort": pd.Timestamp(
                year=(grid.start + g) // 12, month=(grid.start + g) % 12 + 1, day=1),
            "treated": treated[rows].astype(int), "tier": grid.tier[rows],
            "pre_orders": pre_n[0] / pre_n[1],
            "pre_spend": grid.window_mean("spend", rows, pre_lo, g - 1),
            "pre_order_value": np.where(pre_n[0] > 0, pre_sales / np.maximum(pre_n[0], 1), np.nan),
            "last3_orders": grid.window_mean("orders", rows, g - 3, g - 1),
            "active_share": grid.window_mean("active", rows, pre_lo, g - 1),
            "lifetime_orders": grid.window_mean("orders", rows, 0, g - 1),
            "recency_months": (g - 1 - grid.last_active[rows, g - 1]).astype(float),
            "tenure_months": (g - grid.first[rows]).astype(float),
            "post_orders": post_orders / post_months,
            "post_spend": grid.window_mean("spend", rows, *post),
            "post_order_value": np.where(post_orders > 0, post_sales / np.maximum(post_orders, 1), np.nan),
            "still_active": (grid.window_sum("active", rows, g + post_months - 2, g + post_months)[0] > 0
                             ).astype(float),
        })
        for c in static:
            f[c] = customers[c].to_numpy()[rows]
        parts.append(f)
    if not parts:
        return Unavailable(f"No member has a purchase history before enrolling and {post_months} months observed "
                           f"after it ({int((~np.isnan(grid.enrolled)).sum()):,} members, "
                           f"{int((grid.first < grid.enrolled).sum()):,} of them bought before enrolling).")
    out = pd.concat(parts, ignore_index=True)
    for c in ("orders", "spend", "order_value"):
        out[f"d_{c}"] = out[f"post_{c}"] - out[f"pre_{c}"]
    return out


# -- reusable ATT estimators ------------------------------------------------------------------

def design_matrix(df: pd.DataFrame, covariates: list[str]) -> pd.DataFrame:
    """Numeric model matrix of ``covariates``: numbers as they are (a missing value gets the column
    mean and a ``<name>_missing`` indicator), text / categorical / boolean columns one-hot coded
    with the first level dropped (a missing value is its own level). Constant columns are dropped."""
    parts = []
    for c in covariates:
        s = df[c]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            s = s.astype(float)
            if s.isna().any():
                parts.append(s.isna().astype(float).rename(f"{c}_missing"))
                s = s.fillna(s.mean())
            parts.append(s.rename(c))
        else:
            cat = s.astype(object).where(s.notna(), "missing").astype(str)
            parts.append(pd.get_dummies(cat, prefix=c, prefix_sep="=", drop_first=True, dtype=float))
    x = pd.concat(parts, axis=1)
    return x.loc[:, x.std(ddof=0) > 0]


def balance_table(x: pd.DataFrame, treated: np.ndarray, weights: np.ndarray) -> pd.DataFrame:
    """Standardized mean differences of each column of ``x``, treated vs controls, before and
    after weighting the controls by ``weights`` (treated rows' weights are ignored).

    SMD = (treated mean - control mean) / sqrt((treated variance + control variance) / 2), with
    the unweighted variances in the denominator both times, so before and after are comparable;
    |SMD| < 0.1 is the usual threshold for good balance."""
    t = np.asarray(treated, dtype=bool)
    xt, xc, wc = x[t], x[~t], np.asarray(weights, dtype=float)[~t]
    sd = np.sqrt((xt.var(ddof=1) + xc.var(ddof=1)) / 2).replace(0, np.nan)
    after = (xc.mul(wc, axis=0).sum() / wc.sum())
    return pd.DataFrame({
        "covariate": x.columns, "treated_mean": xt.mean().to_numpy(),
        "control_mean": xc.mean().to_numpy(), "control_mean_weighted": after.to_numpy(),
        "smd_before": ((xt.mean() - xc.mean()) / sd).to_numpy(),
        "smd_after": ((xt.mean() - after) / sd).to_numpy(),
    })


@dataclass(frozen=True)
class ATTResult:
    """Average effect of a binary intervention on the treated (:func:`estimate_att`).

    ``estimate``: absolute ATT; ``relative``: ATT / counterfactual mean of the treated (``None``
    when that mean is not positive); ``balance``: standardized mean differences before/after;
    ``scores``: propensity score and treatment of every row kept after trimming (overlap plots)."""

    method: str
    outcome: str
    estimate: Estimate
    relative: Estimate | None
    counterfactual_mean: float
    n_treated: int
    n_control: int
    n_trimmed: int
    balance: pd.DataFrame = field(repr=False)
    scores: pd.DataFrame = field(repr=False)

    @property
    def summary(self) -> pd.DataFrame:
        """One row per scale (absolute, relative): estimate, se, ci_low, ci_high, n_treated, n_control."""
        rows = [("absolute", self.estimate)] + ([("relative", self.relative)] if self.relative else [])
        return pd.DataFrame([{"outcome": self.outcome, "method": self.method, "scale": s,
                              "estimate": e.estimate, "se": e.se, "ci_low": e.ci_low,
                              "ci_high": e.ci_high, "n_treated": self.n_treated,
                              "n_control": self.n_control} for s, e in rows])


def _propensity(z: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Logistic-regression propensity scores (scikit-learn, effectively unpenalised on
    standardized covariates)."""
    model = LogisticRegression(C=1e4, solver="newton-cholesky", max_iter=200)
    return model.fit(z, d).predict_proba(z)[:, 1]


def _one_class(d: np.ndarray, when: str = "") -> Unavailable | None:
    """Why a propensity model cannot be fitted on treatment ``d``: it needs treated and control rows."""
    n1 = int(d.sum())
    if 0 < n1 < len(d):
        return None
    return Unavailable(f"The propensity model needs members and comparison customers: {n1:,} treated and "
                       f"{len(d) - n1:,} comparison rows{when}.")


def _cluster_variance(psi: np.ndarray, groups: np.ndarray) -> float:
    """Variance of (1/n) sum(psi) from per-row influence values, summed within clusters, with the
    usual G / (G - 1) small-sample factor."""
    sums = np.bincount(groups, weights=psi)
    g = len(sums)
    return float(g / max(g - 1, 1) * np.sum(sums**2) / len(psi) ** 2)


def _nearest_controls(score: np.ndarray, d: np.ndarray, exact: np.ndarray, k: int) -> np.ndarray:
    """Matching weights: each treated row's ``k`` nearest controls on the logit of the propensity
    score (with replacement, within ``exact`` groups) get 1/k each; treated rows get 1."""
    logit = np.log(score / (1 - score))
    w = d.astype(float).copy()
    for grp in np.unique(exact[d == 1]):
        t = np.flatnonzero((exact == grp) & (d == 1))
        c = np.flatnonzero((exact == grp) & (d == 0))
        if len(c) == 0:
            w[t] = 0.0
            continue
        nn = NearestNeighbors(n_neighbors=min(k, len(c))).fit(logit[c, None])
        idx = nn.kneighbors(logit[t, None], return_distance=False)
        np.add.at(w, c[idx.ravel()], 1.0 / idx.shape[1])
    return w


def estimate_att(df: pd.DataFrame, treatment: str, outcome: str, covariates: list[str],
                 method: ATTMethod = "aipw", cluster: str | None = None, level: str | None = None,
                 exact: list[str] | None = None, neighbours: int = 1, trim: float = 0.01) -> ATTResult | Unavailable:
    """Average treatment effect on the treated of a binary ``treatment`` (0/1 column) on
    ``outcome``, adjusting for pre-treatment ``covariates`` (numeric or categorical columns).

    ``method``:
    * ``"ipw"`` — inverse-probability weighting: controls weighted by e/(1-e) (normalised), with
      e the logistic-regression propensity score;
    * ``"matching"`` — each treated row matched to its ``neighbours`` nearest controls on the
      logit propensity score, with replacement (within the ``exact`` groups, if given);
    * ``"aipw"`` — doubly robust: IPW of the residuals of a linear outcome model fitted on the
      controls (consistent if either model is right). With a pre/post change as ``outcome`` this
      is the doubly robust DiD of Sant'Anna & Zhao (2020).

    Rows with a propensity score above 1 - ``trim`` (treated without comparable controls) are
    dropped and the model refit; low scores need no trimming for the ATT (such controls simply
    get little weight).
    Standard errors are sandwich (influence-function) errors, summed within ``cluster`` when rows
    of one customer repeat; for IPW they include the effect of estimating the propensity model;
    for matching they are conditional on the matched sample (Abadie & Imbens 2006 form, with a
    regression estimate of the conditional mean). ``level``: when ``outcome`` is a change, the
    column holding the post-period level, so that the relative effect is ATT / (treated mean
    level - ATT); by default the outcome itself.

    :class:`Unavailable` when the propensity model sees one class only (no treated or no
    control rows, before or after trimming) or matching finds no control for any treated row.
    """
    exact = list(exact or [])
    data = df.dropna(subset=[outcome] + ([level] if level else [])).reset_index(drop=True)
    d_all = data[treatment].to_numpy(dtype=int)
    if (one_class := _one_class(d_all)) is not None:
        return one_class
    x_all = design_matrix(data, list(covariates) + [c for c in exact if c not in covariates])
    z_all = ((x_all - x_all.mean()) / x_all.std(ddof=0)).to_numpy()
    e_all = _propensity(z_all, d_all)
    keep = e_all <= 1 - trim
    data, x = data[keep].reset_index(drop=True), x_all[keep].reset_index(drop=True)
    x = x.loc[:, x.std(ddof=0) > 0]
    d = data[treatment].to_numpy(dtype=int)
    if (one_class := _one_class(d, " after trimming rows without comparable controls")) is not None:
        return one_class
    z = ((x - x.mean()) / x.std(ddof=0)).to_numpy()
    e = _propensity(z, d)
    y = data[outcome].to_numpy(dtype=float)
    lv = data[level or outcome].to_numpy(dtype=float)
    groups = pd.factorize(data[cluster] if cluster else pd.Series(np.arange(len(data))))[0]
    n, p1 = len(data), d.mean()
    r = e / (1 - e)
    m0 = LinearRegression().fit(z[d == 0], y[d == 0]).predict(z)

    if method == "ipw":
        w = np.where(d == 1, 1.0, r)
        q = np.mean((1 - d) * r)
        mu1 = np.sum(d * y) / d.sum()
        mu0 = np.sum((1 - d) * r * y) / np.sum((1 - d) * r)
        tau = mu1 - mu0
        # propensity-estimation term: d mu0 / d gamma, times the logit score's influence
        xi = np.c_[np.ones(n), z]
        grad = ((1 - d) * r * (y - mu0)) @ xi / n / q
        hessian = (xi * (e * (1 - e))[:, None]).T @ xi / n
        correction = xi * (d - e)[:, None] @ (np.linalg.pinv(hessian) @ grad)  # pinv: collinear dummies
        psi = d * (y - mu1) / p1 - (1 - d) * r * (y - mu0) / q - correction
    elif method == "aipw":
        w = np.where(d == 1, 1.0, r)
        q = np.mean((1 - d) * r)
        resid = y - m0
        delta0 = np.sum((1 - d) * r * resid) / np.sum((1 - d) * r)
        tau = np.sum(d * resid) / d.sum() - delta0
        psi = d * (resid - tau) / p1 - (1 - d) * r * (resid - delta0) / q
    elif method == "matching":
        exact_key = (pd.factorize(data[exact].astype(str).agg("|".join, axis=1))[0] if exact
                     else np.zeros(n, dtype=int))
        w = _nearest_controls(e, d, exact_key, neighbours)
        used = (d == 0) | (w > 0)  # treated rows without a control in their exact group drop out
        if not d[used].any():
            return Unavailable(f"Matching found no comparison row in the same {', '.join(exact)} as any of the "
                               f"{d.sum():,} treated rows.")
        d, w, y, lv, m0, groups, x = d[used], w[used], y[used], lv[used], m0[used], groups[used], x[used]
        n1 = d.sum()
        tau = np.sum(d * y) / n1 - np.sum((1 - d) * w * y) / n1
        psi = (d * (y - m0 - tau) - (1 - d) * w * (y - m0)) * len(d) / n1
        p1 = d.mean()
    else:
        raise ValueError(f"unknown method {method!r}: use 'ipw', 'matching' or 'aipw'")

    n_treated = int(pd.Series(groups[d == 1]).nunique())
    n_control = int(pd.Series(groups[(d == 0) & (w > 0)]).nunique())
    est = Estimate.normal(tau, np.sqrt(_cluster_variance(psi, groups)), n_treated + n_control, method)
    mean_level = np.sum(d * lv) / d.sum()
    kappa = mean_level - tau
    relative = None
    if kappa > 0:
        psi_level = d * (lv - mean_level) / p1
        psi_rel = (psi * mean_level - tau * psi_level) / kappa**2
        relative = Estimate.normal(tau / kappa, np.sqrt(_cluster_variance(psi_rel, groups)),
                                   n_treated + n_control, method)
    scores = pd.DataFrame({"treated": data[treatment].to_numpy(dtype=int), "propensity": e})
    return ATTResult(method, outcome, est, relative, float(kappa), n_treated, n_control,
                     int((~keep).sum()), balance_table(x, d == 1, w), scores)


# -- propensity methods, tiers, segments, retention, ROI ----------------------------------------

def _tier_rows(snapshots: pd.DataFrame, tier: str, control_group: ControlGroup) -> pd.DataFrame:
    """Treated of ``tier`` and their controls: later members of the same tier, plus never-enrolled
    customers for ``"all_not_yet_enrolled"``."""
    s = snapshots
    if tier == "all":
        return s
    same = s["tier"] == tier
    if control_group == "all_not_yet_enrolled":
        return s[same | ((s["treated"] == 0) & (s["tier"] == "none"))]
    return s[same]


def snapshot_covariates(snapshots: pd.DataFrame) -> list[str]:
    """Pre-enrollment covariates of :func:`cohort_snapshots` (behaviour, tenure, channel,
    demographics, cohort month)."""
    return [c for c in (*PRE_COVARIATES, *STATIC_COVARIATES, "cohort") if c in snapshots.columns]


def propensity_effects(snapshots: pd.DataFrame, outcome: str = "d_orders", level: str = "post_orders",
                       methods: tuple[ATTMethod, ...] = ("ipw", "matching", "aipw"),
                       tiers: tuple[str, ...] = ("all", *TIERS),
                       control_group: ControlGroup = "later_members", trim: float = 0.01,
                       neighbours: int = 1) -> dict[tuple[str, str], ATTResult | Unavailable]:
    """:func:`estimate_att` per tier and method on cohort snapshots (rows clustered by customer,
    matching exact on the cohort month). Keys are ``(tier, method)``; a tier without members or
    without controls gets :class:`Unavailable` (one class)."""
    data = snapshots.assign(cohort=snapshots["cohort"].dt.strftime("%Y-%m"))
    covariates = snapshot_covariates(data)
    out = {}
    for tier in tiers:
        rows = _tier_rows(data, tier, control_group)
        for m in methods:
            out[tier, m] = estimate_att(rows, "treated", outcome, covariates, m, cluster="customer_id",
                                        level=level, exact=["cohort"] if m == "matching" else None,
                                        neighbours=neighbours, trim=trim)
    return out


def att_frame(results: dict[tuple[str, str], ATTResult], outcome: str) -> pd.DataFrame:
    """Tidy rows (outcome, tier, method, scale, estimate, se, ci_low, ci_high, n_treated,
    n_control) from the estimated :func:`propensity_effects` results."""
    rows = [r.summary.assign(tier=tier, outcome=outcome) for (tier, _), r in results.items()
            if isinstance(r, ATTResult)]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


SEGMENT_NAMES = {"new_since_launch": "new since launch 新客户"}


def value_tiers_at_launch(transactions, launch: pd.Timestamp, params: SegmentationParams) -> pd.Series:
    """Value tier 客户价值 of each buyer on the eve of the programme launch, a segment no member's
    enrollment can have changed: the segmentation's Pareto tiers (cut points and names from
    ``params``) on net revenue before the launch; customers whose first order came later are
    ``new_since_launch`` (assigned by :func:`segment_effects`)."""
    from custlib.segmentation import value_tiers

    agg = features.customer_aggregates(transactions, (launch - pd.Timedelta(days=1)).date())
    labels = tuple(f"{t.name} value {t.chinese}".strip() for t in params.value_tiers)
    return value_tiers(agg["revenue"], params.value_tier_cuts, labels).rename("segment")


def segment_effects(panel: pd.DataFrame, customers: pd.DataFrame, segments: pd.Series,
                    outcome: str = "orders", **did_options) -> pd.DataFrame | Unavailable:
    """:func:`cohort_did` (all tiers) within each segment: treated and controls both from the
    segment. ``segments``: segment per customer_id, fixed before enrollment; customers missing
    from it count as ``new_since_launch``. One row per segment and scale; segments whose members
    have no comparison are left out, :class:`Unavailable` if all are."""
    seg = segments.reindex(customers.index).fillna("new_since_launch")
    rows = []
    for name in pd.unique(seg):
        sub = customers[seg == name]
        did = cohort_did(panel[panel["customer_id"].isin(sub.index)], sub, outcome, event_study=False,
                         tiers=("all",), **did_options) if sub["tier"].notna().any() else None
        if isinstance(did, CohortDiD):
            rows.append(did.overall.assign(segment=name))
    if not rows:
        return Unavailable("No value segment at launch has members with not-yet-enrolled comparison customers "
                           f"of the same segment, acquisition month and tier ({int(customers['tier'].notna().sum()):,} "
                           f"members in {seg[customers['tier'].notna()].nunique()} segments).")
    return pd.concat(rows, ignore_index=True)


def retention_effect(panel: pd.DataFrame, customers: pd.DataFrame, months: int = 12,
                     regular_orders: float = 1.0, pre_months: int = 6,
                     control_group: ControlGroup = "later_members", trim: float = 0.01
                     ) -> pd.DataFrame | Unavailable:
    """Effect of membership on being still active ``months`` after enrollment (any order in the
    last three months of that window), in percentage points, by AIPW on cohort snapshots.

    Measured on regular buyers (at least ``regular_orders`` orders a month in the ``pre_months``
    before enrollment): for them a quarter without an order almost always means they stopped
    buying, so the comparison measures staying rather than buying more often (for an occasional
    buyer, more frequent purchases alone would raise the chance of an order in any quarter).
    One row per tier: estimate, se, ci_low, ci_high (proportions), treated_rate,
    counterfactual_rate, n_treated, n_control; tiers without an estimate are left out,
    :class:`Unavailable` if all are."""
    snaps = cohort_snapshots(panel, customers, pre_months, months, control_group)
    if isinstance(snaps, Unavailable):
        return snaps
    regular = snaps[snaps["pre_orders"] >= regular_orders]
    n_t, n_c = (regular.loc[regular["treated"] == k, "customer_id"].nunique() for k in (1, 0))
    if not (n_t and n_c):
        return Unavailable(f"Retention is measured on regular buyers (at least {regular_orders:g} orders a month in "
                           f"the {pre_months} months before enrolling); {n_t:,} members and {n_c:,} comparison "
                           f"customers bought that often, and both are needed.")
    res = propensity_effects(regular, "still_active", "still_active", ("aipw",),
                             control_group=control_group, trim=trim)
    rows = []
    for (tier, _), r in res.items():
        if isinstance(r, Unavailable):
            continue
        e = r.estimate
        rows.append({"tier": tier, "estimate": e.estimate, "se": e.se, "ci_low": e.ci_low, "ci_high": e.ci_high,
                     "treated_rate": r.counterfactual_mean + e.estimate,
                     "counterfactual_rate": r.counterfactual_mean,
                     "n_treated": r.n_treated, "n_control": r.n_control})
    return pd.DataFrame(rows) if rows else res["all", "aipw"]


def member_months(customers: pd.DataFrame, observation_end, months: int = 12) -> pd.Series:
    """Member-months per tier in the last ``months`` calendar months up to ``observation_end``
    (membership counts from the month after enrollment)."""
    end = pd.Timestamp(observation_end).to_period("M")
    start = end - months + 1
    m = customers.dropna(subset=["enrolled_month"])
    first = np.maximum((m["enrolled_month"].dt.to_period("M") + 1).map(lambda p: p.ordinal), start.ordinal)
    n = (end.ordinal - first + 1).clip(lower=0)
    return n.groupby(m["tier"]).sum()


def programme_roi(spend_did: CohortDiD | Unavailable, customers: pd.DataFrame, params: LoyaltyParams,
                  observation_end) -> pd.DataFrame | Unavailable:
    """Does the programme pay for itself? Per tier and member-month: incremental net revenue (the
    DiD effect on monthly spend) x ``margin_rate`` = incremental gross margin, minus the programme
    cost (``cost_per_member_month`` plus the points liability: members' spend x points per
    currency x point value x redemption rate). The interval of the net contribution is that of
    the spend effect (costs are taken as known). ``break_even_uplift``: the relative spend uplift
    at which the margin would just cover the cost; compare with ``estimated_uplift``. Annual
    figures use the member-months of the last 12 months. :class:`Unavailable` without a spend
    effect for any tier; ``break_even_uplift`` is NaN when the counterfactual spend is not positive."""
    if isinstance(spend_did, Unavailable):
        return Unavailable(f"The programme's return needs its effect on spend, which cannot be estimated: "
                           f"{spend_did.reason}")
    mm = member_months(customers, observation_end)
    rows = []
    for tier in TIERS:
        if mm.get(tier, 0) == 0 or (spend_did.overall["tier"] == tier).sum() == 0:
            continue
        att, rel = spend_did.effect(tier, "absolute"), spend_did.effect(tier, "relative")
        base = float(spend_did.overall.query("tier == @tier")["counterfactual_mean"].iloc[0])
        liability = (base + att.estimate) * params.points_per_currency * params.point_value * params.redemption_rate
        cost = params.cost_per_member_month[tier] + liability
        margin = params.margin_rate * np.array([att.estimate, att.ci_low, att.ci_high])
        net = margin - cost
        rows.append({"tier": tier, "incremental_revenue": att.estimate, "incremental_margin": margin[0],
                     "fixed_cost": params.cost_per_member_month[tier], "points_liability": liability,
                     "cost": cost, "net": net[0], "net_se": params.margin_rate * att.se,
                     "net_ci_low": net[1], "net_ci_high": net[2],
                     "roi": net[0] / cost, "roi_ci_low": net[1] / cost, "roi_ci_high": net[2] / cost,
                     "member_months_12m": int(mm[tier]), "annual_net": net[0] * mm[tier],
                     "annual_net_ci_low": net[1] * mm[tier], "annual_net_ci_high": net[2] * mm[tier],
                     "estimated_uplift": rel.estimate, "estimated_uplift_ci_low": rel.ci_low,
                     "estimated_uplift_ci_high": rel.ci_high,
                     "break_even_uplift": cost / (params.margin_rate * base) if base > 0 else np.nan,
                     "n_treated": int(spend_did.overall.query("tier == @tier")["n_treated"].iloc[0])})
    if not rows:
        return Unavailable("The programme's return needs its effect on spend in a tier with members in the last "
                           "12 months; no tier has both.")
    out = pd.DataFrame(rows)
    total = {"tier": "all", "member_months_12m": int(out["member_months_12m"].sum())}
    for c in ("annual_net", "annual_net_ci_low", "annual_net_ci_high"):
        total[c] = out[c].sum()  # tiers' intervals added: conservative
    w = out["member_months_12m"] / out["member_months_12m"].sum()
    for c in ("incremental_revenue", "incremental_margin", "fixed_cost", "points_liability", "cost", "net"):
        total[c] = float((out[c] * w).sum())
    total["roi"] = total["net"] / total["cost"]
    total["n_treated"] = int(out["n_treated"].sum())
    return pd.concat([out, pd.DataFrame([total])], ignore_index=True)


# -- the analysis of one unit -------------------------------------------------------------------

METHOD_LABELS = {"naive_gap": "naive gap (members vs non-members)",
                 "cohort_did": "cohort DiD vs later members (main)",
                 "ipw": "inverse-probability weighting", "matching": "nearest-neighbour matching",
                 "aipw": "doubly robust AIPW",
                 "aipw_all_not_yet_enrolled": "AIPW vs all not-yet-enrolled incl. never-enrolled"}


def _est(row) -> Estimate:
    return Estimate(row["estimate"], row["se"], row["ci_low"], row["ci_high"],
                    int(row["n_treated"] + row["n_control"]), row["method"])


def _pct(e: Estimate) -> str:
    return f"{e.estimate:+.1%} (95% CI {e.ci_low:+.1%} to {e.ci_high:+.1%})"


@dataclass(frozen=True)
class LoyaltyImpact:
    """Everything the loyalty-impact report shows for one unit (:func:`loyalty_impact`); a part
    the unit's data cannot support is an :class:`Unavailable` saying why."""

    params: LoyaltyParams
    currency: str
    small_sample_n: int
    naive: pd.DataFrame | Unavailable
    did: CohortDiD | Unavailable
    did_spend: CohortDiD | Unavailable
    did_active: CohortDiD | Unavailable
    propensity: dict[tuple[str, str], ATTResult | Unavailable] | Unavailable
    propensity_all_customers: dict[tuple[str, str], ATTResult | Unavailable] | Unavailable
    order_value: pd.DataFrame | Unavailable
    retention: pd.DataFrame | Unavailable
    segments: pd.DataFrame | Unavailable
    roi: pd.DataFrame | Unavailable
    n_members: int

    def main_effect(self, tier: str = "all") -> Estimate | Unavailable:
        """Relative effect on monthly orders from the main estimator (params.main_estimator);
        :class:`Unavailable` without an estimate or with fewer members than ``small_sample_n``."""
        if self.params.main_estimator == "aipw":
            r = self.propensity if isinstance(self.propensity, Unavailable) else self.propensity[tier, "aipw"]
            if isinstance(r, Unavailable):
                return r
            e, n_treated = r.relative, r.n_treated
        else:
            if isinstance(self.did, Unavailable) or tier in self.did.missing:
                return self.did if isinstance(self.did, Unavailable) else self.did.missing[tier]
            e = self.did.effect(tier, "relative")
            n_treated = int(self.did.overall.query("tier == @tier")["n_treated"].iloc[0])
        if n_treated < self.small_sample_n:
            return Unavailable.too_few(f"the effect of membership ({self._term(tier)})", n_treated,
                                       self.small_sample_n, "members with a comparison customer")
        if e is None or not np.isfinite(e.estimate):
            return Unavailable(f"The relative effect of membership ({self._term(tier)}) needs a positive "
                               f"counterfactual purchase rate of the members, which it is not.")
        return e

    def _term(self, tier: str) -> str:
        return f"{tier} {self.params.terms.get(tier, '')}".strip()

    def _tiers(self) -> list[str]:
        """Tiers the main estimator has a result or a reason for."""
        if isinstance(self.did, Unavailable) or isinstance(self.propensity, Unavailable):
            return []
        if self.params.main_estimator == "aipw":
            return [t for t in TIERS if (t, "aipw") in self.propensity]
        return [t for t in TIERS if (self.did.overall["tier"] == t).any() or t in self.did.missing]

    def headline(self) -> list[str]:
        """The answer first: effect with interval, the naive gap, the tiers, the ROI, the checks."""
        main = self.main_effect()
        naive = None if isinstance(self.naive, Unavailable) else self.naive.set_index("tier").loc["all"]
        gap = (f"{naive['relative_gap']:+.0%}" if naive is not None and np.isfinite(naive["relative_gap"])
               and naive["n_members"] >= self.small_sample_n else "")
        if isinstance(main, Unavailable):
            out = [f"What membership itself changes cannot be estimated for this unit. {main.reason}"
                   + (f" The naive member vs non-member gap ({gap}) mixes the programme with who joins and is "
                      f"no substitute." if gap else "")]
        else:
            out = [f"Membership raises monthly purchase frequency by {_pct(main)}, n = {main.n:,} customers compared"
                   + (f"; the naive member vs non-member gap of {gap} is mostly who joins, not what the programme "
                      f"does." if gap else ".")]
        tiers = [(t, self.main_effect(t)) for t in self._tiers()]
        if tiers and not isinstance(main, Unavailable):
            out.append("By tier — " + "; ".join(
                f"{self._term(t)}: " + (e.reason.rstrip(".") if isinstance(e, Unavailable) else _pct(e))
                for t, e in tiers) + ".")
        if not isinstance(self.roi, Unavailable):
            tiers_roi = self.roi[self.roi["tier"] != "all"]
            if (tiers_roi["n_treated"] < self.small_sample_n).any():
                out.append(f"Whether the programme pays for itself cannot be judged: fewer than {self.small_sample_n} "
                           f"members with a comparison customer in "
                           f"{', '.join(tiers_roi.loc[tiers_roi['n_treated'] < self.small_sample_n, 'tier'])}.")
            else:
                total = self.roi.set_index("tier").loc["all"]
                verdict = "pays for itself" if total["annual_net_ci_low"] > 0 else (
                    "does not pay for itself" if total["annual_net_ci_high"] < 0 else "may or may not pay for itself")
                parts = [f"{self._term(r.tier)} {r.roi:+.0%} ROI (net {r.net:,.1f} {self.currency} per member-month, "
                         f"95% CI {r.net_ci_low:,.1f} to {r.net_ci_high:,.1f}; break-even uplift "
                         f"{self._share(r.break_even_uplift)} vs estimated {self._share(r.estimated_uplift)})"
                         for r in tiers_roi.itertuples()]
                out.append(f"The programme {verdict}: net contribution {total['annual_net']:,.0f} {self.currency} "
                           f"over the last 12 months (95% CI {total['annual_net_ci_low']:,.0f} to "
                           f"{total['annual_net_ci_high']:,.0f}) — " + "; ".join(parts) + ".")
        checks = []
        if not isinstance(self.order_value, Unavailable):
            spo = self.order_value[self.order_value["scale"] == "relative"]
            checks.append("spend per order " + ", ".join(
                f"{r.tier} {self._interval(_est(r._asdict()), '{:+.1%}', r.n_treated)}" for r in spo.itertuples()))
        if not isinstance(self.retention, Unavailable) and (self.retention["tier"] == "all").any():
            r = self.retention.set_index("tier").loc["all"]
            checks.append(f"still buying {self.params.retention_months} months after joining " + self._interval(
                Estimate(r["estimate"] * 100, r["se"] * 100, r["ci_low"] * 100, r["ci_high"] * 100, 0),
                "{:+.1f}", r["n_treated"]) + " pp")
        if checks:
            out.append("What else changes: " + "; ".join(checks) + ".")
        return out

    @staticmethod
    def _share(v: float) -> str:
        return "not estimable" if pd.isna(v) else f"{v:.1%}"

    def effects_table(self) -> pd.DataFrame:
        """The machine-readable effects (reports/<unit>/data/loyalty_impact/loyalty_effects.csv):
        outcome, tier, method, estimate, se, ci_low, ci_high, n_treated, n_control, segment.
        Relative effects are fractions (0.10 = +10%) in outcomes ending in ``_relative``;
        absolute effects are per customer-month in orders, currency or, for activity and
        retention, proportions. Only the estimates the unit's data supports."""
        cols = ["outcome", "tier", "method", "estimate", "se", "ci_low", "ci_high", "n_treated", "n_control", "segment"]
        frames = []
        n = self.naive
        if not isinstance(n, Unavailable):
            for scale, suffix, prefix in (("gap", "", ""), ("relative_gap", "_relative", "relative_")):
                frames.append(pd.DataFrame({
                    "outcome": "monthly_orders" + suffix, "tier": n["tier"], "method": "naive_gap",
                    "estimate": n[scale], "se": n[f"{'gap' if scale == 'gap' else 'relative'}_se"],
                    "ci_low": n[f"{prefix or 'gap_'}ci_low"], "ci_high": n[f"{prefix or 'gap_'}ci_high"],
                    "n_treated": n["n_members"], "n_control": n["n_non_members"]}))
        names = {"orders": "monthly_orders", "spend": "monthly_spend", "active": "active_month",
                 "spend_per_order": "spend_per_order"}
        for o in (self.did, self.did_spend, self.did_active, self.order_value):
            if isinstance(o, Unavailable):
                continue
            o = o.overall if isinstance(o, CohortDiD) else o
            o = o if o["outcome"].iloc[0] != "active" else o[o["scale"] == "absolute"]
            suffix = np.where(o["scale"] == "relative", "_relative", "")
            frames.append(o.assign(outcome=names[o["outcome"].iloc[0]] + suffix))
        for results, suffix in ((self.propensity, ""), (self.propensity_all_customers, "_all_not_yet_enrolled")):
            f = pd.DataFrame() if isinstance(results, Unavailable) else att_frame(results, "monthly_orders")
            if len(f):
                frames.append(f.assign(outcome="monthly_orders" + np.where(f["scale"] == "relative", "_relative", ""),
                                       method=f["method"] + suffix))
        r = self.retention
        if not isinstance(r, Unavailable):
            frames.append(r.assign(outcome=f"active_{self.params.retention_months}m_regular_buyers", method="aipw"))
        s = self.segments
        if not isinstance(s, Unavailable):
            frames.append(s.assign(outcome="monthly_orders" + np.where(s["scale"] == "relative", "_relative", "")))
        if not isinstance(self.roi, Unavailable):
            roi = self.roi[self.roi["tier"] != "all"]
            frames.append(pd.DataFrame({"outcome": f"net_margin_per_member_month_{self.currency}", "tier": roi["tier"],
                                        "method": "cohort_did_roi", "estimate": roi["net"], "se": roi["net_se"],
                                        "ci_low": roi["net_ci_low"], "ci_high": roi["net_ci_high"],
                                        "n_treated": roi["n_treated"], "n_control": np.nan}))
        out = (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)).reindex(columns=cols)
        out["segment"] = out["segment"].fillna("all")
        out[["n_treated", "n_control"]] = out[["n_treated", "n_control"]].astype("Int64")
        return out

    def missing(self) -> list[str]:
        """Why estimates of a tier or method inside an available section are missing, one
        sentence each ('vip VIP会员 · doubly robust AIPW: ...')."""
        labels: dict[str, list[str]] = {}  # reason -> what it stops
        for what, did in (("cohort DiD on orders", self.did), ("on spend", self.did_spend),
                          ("on active months", self.did_active)):
            if isinstance(did, CohortDiD):
                for t, u in did.missing.items():
                    labels.setdefault(f"{self._term(t)} · {{}}: {u.reason}", []).append(what)
        for results, suffix in ((self.propensity, ""), (self.propensity_all_customers, "_all_not_yet_enrolled")):
            if not isinstance(results, Unavailable):
                for (t, m), u in results.items():
                    if isinstance(u, Unavailable):
                        labels.setdefault(f"{self._term(t)} · {{}}: {u.reason}", []).append(METHOD_LABELS[m + suffix])
        return [text.format(", ".join(whats)) for text, whats in labels.items()]

    def small_samples(self) -> pd.DataFrame:
        """Rows of the effects table with fewer treated customers than ``small_sample_n``."""
        t = self.effects_table()
        return t[t["n_treated"] < self.small_sample_n]

    def _enough(self, frame: pd.DataFrame, what: str) -> pd.DataFrame | Unavailable:
        """Rows with at least ``small_sample_n`` treated and a finite estimate (for charts, which
        cannot carry a 'too few' note); :class:`Unavailable` if none."""
        ok = frame[(frame["n_treated"] >= self.small_sample_n) & np.isfinite(frame["estimate"].astype(float))]
        if len(ok):
            return ok.reset_index(drop=True)
        return Unavailable.too_few(what, int(frame["n_treated"].max()) if len(frame) else 0, self.small_sample_n,
                                   "members with a comparison customer")

    def method_table(self) -> pd.DataFrame | Unavailable:
        """Relative and absolute effect on monthly orders per tier and method, as text with 95%
        intervals and n (small samples shown as 'n too small')."""
        t = self.effects_table()
        t = t[t["outcome"].str.startswith("monthly_orders") & (t["segment"] == "all")]
        if not len(t):
            return self.did
        rows = []
        for (tier, method), g in t.groupby(["tier", "method"], sort=False):
            rel, ab = (g[g["outcome"].str.endswith(s)] for s in ("_relative", "orders"))
            rows.append({"tier": self._term(tier), "method": METHOD_LABELS.get(method, method),
                         "relative effect": self._interval(_est(rel.iloc[0]), "{:+.1%}", int(g["n_treated"].min()))
                         if len(rel) else "not estimable",
                         "orders per member-month": self._interval(_est(ab.iloc[0]), "{:+.3f}",
                                                                   int(g["n_treated"].min())),
                         "n treated": int(g["n_treated"].iloc[0]), "n control": int(g["n_control"].iloc[0])})
        return pd.DataFrame(rows)

    def _interval(self, e: Estimate, fmt: str, n_treated: int) -> str:
        if n_treated < self.small_sample_n:
            return "n too small"
        if not np.isfinite(e.estimate):
            return "not estimable"
        f = lambda x: fmt.format(x)  # noqa: E731
        return f"{f(e.estimate)} (95% CI {f(e.ci_low)} to {f(e.ci_high)})"

    def naive_table(self) -> pd.DataFrame | Unavailable:
        """The naive comparison per tier: members' and non-members' orders per month and the gap."""
        n = self.naive
        if isinstance(n, Unavailable):
            return n
        return pd.DataFrame({
            "tier": n["tier"].map(self._term),
            "members: orders per month": n["member_mean"].round(3),
            "non-members: orders per month": n["non_member_mean"].round(3),
            "naive gap": [self._interval(Estimate(r.relative_gap, r.relative_se, r.relative_ci_low, r.relative_ci_high,
                                                  0), "{:+.1%}", r.n_members) for r in n.itertuples()],
            "n members": n["n_members"], "n non-members": n["n_non_members"]})

    def event_study(self) -> pd.DataFrame | Unavailable:
        """The event-study curve of the tiers with at least ``small_sample_n`` members compared."""
        if isinstance(self.did, Unavailable):
            return self.did
        enough = self._enough(self.did.overall, "the event study")
        if isinstance(enough, Unavailable):
            return enough
        return self.did.event_study[self.did.event_study["tier"].isin(enough["tier"])].reset_index(drop=True)

    def pretrend_table(self) -> pd.DataFrame | Unavailable:
        """Joint test that the months before enrollment show no difference (per tier)."""
        if isinstance(self.did, Unavailable):
            return self.did
        t = self.did.pretrend
        return pd.DataFrame({"tier": t["tier"].map(self._term), "lead months tested": t["leads_tested"],
                             "chi-square": t["chi2"].round(2), "p-value": t["p_value"].round(3),
                             "reading": np.where(t["note"] != "", t["note"], np.where(
                                 t["p_value"] < 0.05, "differences before enrollment: read with care",
                                 "no sign of a pre-trend"))})

    def orders_effects(self) -> pd.DataFrame | Unavailable:
        """Relative effects on monthly orders of every method with at least ``small_sample_n``
        members (rows of the effects table)."""
        t = self.effects_table()
        return self._enough(t[(t["outcome"] == "monthly_orders_relative") & (t["segment"] == "all")],
                            "the effect on orders by method")

    def segment_table(self) -> pd.DataFrame | Unavailable:
        """Main-estimator effect on monthly orders per value segment at launch (客户价值)."""
        s = self.segments
        if isinstance(s, Unavailable):
            return s
        rel, ab = s[s["scale"] == "relative"], s[s["scale"] == "absolute"].set_index("segment")
        return pd.DataFrame({
            "segment at launch": rel["segment"].map(SEGMENT_NAMES).fillna(rel["segment"]),
            "relative effect": [self._interval(_est(r._asdict()), "{:+.1%}", r.n_treated) for r in rel.itertuples()],
            "orders per member-month": [self._interval(_est(ab.loc[r.segment].to_dict() | {"method": ""}),
                                                       "{:+.3f}", r.n_treated) for r in rel.itertuples()],
            "n treated": rel["n_treated"], "n control": rel["n_control"]}).reset_index(drop=True)

    def other_outcomes_table(self) -> pd.DataFrame | Unavailable:
        """Spend per month, active months, spend per order and retention, per tier; the outcomes
        without an estimate are named by :meth:`other_outcomes_missing`."""
        rows = []
        for label, result, scale, fmt in (
                (f"net spend per month ({self.currency})", self.did_spend, "absolute", "{:+,.1f}"),
                ("net spend per month (relative)", self.did_spend, "relative", "{:+.1%}"),
                ("share of months with an order (points)", self.did_active, "absolute", "{:+.3f}"),
                (f"spend per order ({self.currency})", self.order_value, "absolute", "{:+,.1f}"),
                ("spend per order (relative)", self.order_value, "relative", "{:+.1%}")):
            if isinstance(result, Unavailable):
                continue
            frame = result.overall if isinstance(result, CohortDiD) else result
            for r in frame[frame["scale"] == scale].itertuples():
                rows.append({"outcome": label, "tier": self._term(r.tier), "method": METHOD_LABELS[r.method],
                             "effect": self._interval(_est(r._asdict()), fmt, r.n_treated),
                             "n treated": r.n_treated, "n control": r.n_control})
        if not isinstance(self.retention, Unavailable):
            for r in self.retention.itertuples():
                rows.append({"outcome": f"still buying {self.params.retention_months} months after joining "
                                        f"(regular buyers, percentage points)", "tier": self._term(r.tier),
                             "method": METHOD_LABELS["aipw"],
                             "effect": self._interval(Estimate(r.estimate * 100, r.se * 100, r.ci_low * 100,
                                                               r.ci_high * 100, 0), "{:+.1f}", r.n_treated),
                             "n treated": r.n_treated, "n control": r.n_control})
        return pd.DataFrame(rows) if rows else Unavailable(" ".join(self.other_outcomes_missing()))

    def other_outcomes_missing(self) -> list[str]:
        """One sentence per outcome of :meth:`other_outcomes_table` that has no estimate."""
        return [f"{what}: {r.reason}" for what, r in (
            ("Spend and active months", self.did_spend), ("Spend per order", self.order_value),
            (f"Still buying {self.params.retention_months} months after joining", self.retention))
            if isinstance(r, Unavailable)]

    def roi_table(self) -> pd.DataFrame | Unavailable:
        """Programme economics per tier, currency per member-month unless stated."""
        r = self.roi
        if isinstance(r, Unavailable):
            return r
        few = r["n_treated"] < self.small_sample_n
        too_few = lambda values: values.where(~few, "n too small")  # noqa: E731
        return pd.DataFrame({
            "tier": r["tier"].map(self._term),
            "incremental revenue": too_few(r["incremental_revenue"].round(2)),
            "incremental gross margin": too_few(r["incremental_margin"].round(2)),
            "programme cost": r["fixed_cost"].round(2), "points liability 积分": r["points_liability"].round(2),
            "net contribution": ["n too small" if f else f"{x.net:,.2f}" + (
                f" (95% CI {x.net_ci_low:,.2f} to {x.net_ci_high:,.2f})" if np.isfinite(x.net_ci_low) else "")
                for x, f in zip(r.itertuples(), few)],
            "ROI": ["n too small" if f else f"{x.roi:+.0%}" for x, f in zip(r.itertuples(), few)],
            "estimated uplift": too_few(r["estimated_uplift"].map(lambda v: "" if pd.isna(v) else f"{v:+.1%}")),
            "break-even uplift": too_few(r["break_even_uplift"].map(lambda v: "" if pd.isna(v) else f"{v:+.1%}")),
            "member-months (12 months)": r["member_months_12m"],
            f"net, last 12 months ({self.currency})": [
                "n too small" if f else
                f"{x.annual_net:,.0f} (95% CI {x.annual_net_ci_low:,.0f} to {x.annual_net_ci_high:,.0f})"
                for x, f in zip(r.itertuples(), few)]})

    def roi_estimates(self) -> pd.DataFrame | Unavailable:
        """ROI rows of the tiers with at least ``small_sample_n`` members compared (for the chart)."""
        if isinstance(self.roi, Unavailable):
            return self.roi
        return self._enough(self.roi[self.roi["tier"] != "all"].assign(estimate=self.roi["net"]),
                            "the programme's return")

    def _aipw_all(self) -> ATTResult | Unavailable:
        """The AIPW fit on all tiers behind the diagnostics, if it has ``small_sample_n`` members."""
        r = self.propensity if isinstance(self.propensity, Unavailable) else self.propensity["all", "aipw"]
        if isinstance(r, ATTResult) and r.n_treated < self.small_sample_n:
            return Unavailable.too_few("balance and overlap diagnostics", r.n_treated, self.small_sample_n, "members")
        return r

    def overlap_scores(self, tier: str = "all", method: str = "aipw") -> pd.DataFrame | Unavailable:
        """Propensity scores of the rows of a propensity fit (for the overlap chart)."""
        r = self._aipw_all() if (tier, method) == ("all", "aipw") else self.propensity[tier, method]
        return r if isinstance(r, Unavailable) else r.scores

    def balance(self, tier: str = "all", method: str = "aipw", top: int = 15) -> pd.DataFrame | Unavailable:
        """Balance table of a propensity fit: the ``top`` pre-enrollment covariates with the
        largest imbalance before weighting (cohort-month indicators left out)."""
        r = self._aipw_all() if (tier, method) == ("all", "aipw") else self.propensity[tier, method]
        if isinstance(r, Unavailable):
            return r
        b = r.balance[~r.balance["covariate"].str.startswith("cohort=")]  # enrollment months: balanced by design
        return b.reindex(b["smd_before"].abs().sort_values(ascending=False).index).head(top).reset_index(drop=True)

    def balance_display(self, tier: str = "all", method: str = "aipw") -> pd.DataFrame:
        """:meth:`balance` with display names; differences rounded to two decimals."""
        b = self.balance(tier, method)
        return pd.DataFrame({"pre-enrolment characteristic": b["covariate"].str.replace("_", " ").str.replace("=", ": "),
                             "members' mean": b["treated_mean"], "comparison mean": b["control_mean"],
                             "comparison mean, weighted": b["control_mean_weighted"],
                             "standardized difference before": b["smd_before"].round(2) + 0.0,
                             "standardized difference after": b["smd_after"].round(2) + 0.0})


def _propensity_or(snapshots: pd.DataFrame | Unavailable, **options) -> dict | Unavailable:
    """:func:`propensity_effects` on snapshots, or the reason there are none: no snapshots, or
    no tier and method with an estimate (the reason of the first)."""
    if isinstance(snapshots, Unavailable):
        return snapshots
    results = propensity_effects(snapshots, **options)
    first = next(iter(results.values()))
    return first if all(isinstance(r, Unavailable) for r in results.values()) else results


def loyalty_impact(data) -> LoyaltyImpact:
    """Run the whole loyalty-impact analysis for one unit (a :class:`custlib.sources.UnitData`)."""
    p = data.params.loyalty
    inputs = load_inputs(data)
    panel, cust = inputs.panel, inputs.customers
    did_opts = dict(lags=p.lags, pre_months=p.pre_months, control_group=p.control_group)
    did = cohort_did(panel, cust, "orders", leads=p.leads, **did_opts)
    did_spend = cohort_did(panel, cust, "spend", event_study=False, **did_opts)
    did_active = cohort_did(panel, cust, "active", event_study=False, **did_opts)
    snaps = cohort_snapshots(panel, cust, p.pre_months, p.post_months, p.control_group)
    propensity = _propensity_or(snaps, control_group=p.control_group, trim=p.propensity_trim,
                                neighbours=p.matching_neighbours)
    other = "all_not_yet_enrolled" if p.control_group == "later_members" else "later_members"
    snaps_other = cohort_snapshots(panel, cust, p.pre_months, p.post_months, other)
    propensity_other = _propensity_or(snaps_other, methods=("aipw",), control_group=other, trim=p.propensity_trim)
    segments = value_tiers_at_launch(data.transactions, inputs.launch, data.params.segmentation)
    return LoyaltyImpact(
        params=p, currency=data.params.currency, small_sample_n=data.params.small_sample_n,
        naive=naive_gap(panel, cust), did=did, did_spend=did_spend, did_active=did_active,
        propensity=propensity, propensity_all_customers=propensity_other,
        order_value=spend_per_order_did(panel, cust, tiers=TIERS, **did_opts),
        retention=retention_effect(panel, cust, p.retention_months, p.regular_buyer_orders, p.pre_months,
                                   p.control_group, p.propensity_trim),
        segments=segment_effects(panel, cust, segments, **did_opts),
        roi=programme_roi(did_spend, cust, p, data.params.observation_end),
        n_members=int(cust["tier"].notna().sum()))


def report_warnings(impact: LoyaltyImpact) -> None:
    """Visible warnings for estimates on fewer treated customers than ``small_sample_n``, and
    a note naming the tier and method estimates the data cannot support."""
    small = impact.small_samples()
    if len(small):
        names = ", ".join(sorted({f"{r.outcome} ({r.tier}, {r.segment}, {r.method})" for r in small.itertuples()}))
        report.warning(f"Fewer than {impact.small_sample_n} members behind these estimates; shown as "
                       f"'n too small': {names}.")
    missing = impact.missing()
    if missing:
        report.note("Not estimated for this unit — " + " ".join(missing))


def write_effects(impact: LoyaltyImpact, output_dir) -> None:
    """``<output_dir>/loyalty_effects.csv`` (see :meth:`LoyaltyImpact.effects_table`)."""
    from pathlib import Path

    report.write_output(impact.effects_table(), Path(output_dir) / "loyalty_effects.csv")
