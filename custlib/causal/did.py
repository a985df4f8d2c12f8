"""Staggered difference-in-differences on a customer x month panel (Callaway & Sant'Anna 2021):
every treatment cohort (customers first treated in month g) is compared, month by month, with
customers of the same acquisition month (and treatment group) who had not been treated yet —
never a two-way fixed-effects regression, which is biased when timing is staggered and effects
change over time. Aggregated to an overall effect (absolute and relative to the treated's
counterfactual level), an event-study curve and a joint pre-trend test on the leads; weighted
least squares (statsmodels) with cluster-robust (by customer) errors whose residuals are
corrected for the leverage of small comparison strata.

Data-agnostic. Inputs: a ``panel`` with ``customer_id``, ``month`` (first day), ``first_month``
(month of the first activity) and numeric outcome columns per customer-month, plus a 0/1
activity column (``active``) for recency; and a ``customers`` frame indexed by ``customer_id``
with ``first_month``, the treatment month (``enrolled_month`` by default; NaT = never treated)
and the treatment group (``tier`` by default; None = never treated). Comparison groups:
``"later_treated"`` (customers treated later, who chose treatment just the same) or
``"not_yet_treated"`` (adds the never-treated).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.stats import chi2
from statsmodels.tools.numdiff import approx_fprime

from custlib.stats import Estimate, Unavailable

ControlGroup = Literal["later_treated", "not_yet_treated"]
HISTORY_COVARIATES = ("x_pre", "x_year", "x_tenure", "x_last", "x_recency")


def _month_number(values) -> np.ndarray:
    """Calendar months as integers (year * 12 + month - 1); NaN for missing dates."""
    s = pd.to_datetime(pd.Series(values))
    return (s.dt.year * 12 + s.dt.month - 1).to_numpy(dtype=float)


@dataclass(frozen=True)
class PanelGrid:
    """Panel outcomes as customer x month arrays (NaN before a customer's first month), aligned
    with a customer frame; months are column positions counted from ``start``."""

    start: int
    values: dict[str, np.ndarray]
    cumulative: dict[str, np.ndarray]  # running sums with a leading zero column
    first: np.ndarray
    treated: np.ndarray  # month of treatment; NaN = never treated
    group: np.ndarray  # treatment group; "none" = never treated
    last_active: np.ndarray  # latest month with activity up to each month, -1 if none

    @property
    def n_months(self) -> int:
        return next(iter(self.values.values())).shape[1]

    @classmethod
    def build(cls, panel: pd.DataFrame, customers: pd.DataFrame, outcomes: tuple[str, ...],
              treated_at: str = "enrolled_month", group: str = "tier", activity: str = "active") -> PanelGrid:
        """The grid of ``outcomes`` (and the 0/1 ``activity`` column) of ``panel``; treatment month
        and group from the ``treated_at`` and ``group`` columns of ``customers``."""
        month = _month_number(panel["month"])
        start = int(month.min())
        rows = customers.index.get_indexer(panel["customer_id"])
        keep = rows >= 0
        shape = (len(customers), int(month.max()) - start + 1)
        values, cumulative = {}, {}
        for c in dict.fromkeys((*outcomes, activity)):
            a = np.full(shape, np.nan)
            a[rows[keep], month[keep].astype(int) - start] = panel[c].to_numpy(dtype=float)[keep]
            values[c] = a
            cumulative[c] = np.c_[np.zeros(shape[0]), np.cumsum(np.nan_to_num(a), axis=1)]
        active = np.nan_to_num(values[activity]) > 0
        last = np.maximum.accumulate(np.where(active, np.arange(shape[1]), -1), axis=1)
        return cls(start, values, cumulative, _month_number(customers["first_month"]) - start,
                   _month_number(customers[treated_at]) - start,
                   customers[group].fillna("none").to_numpy(dtype=object), last)

    def window_sum(self, outcome: str, rows: np.ndarray, lo, hi) -> tuple[np.ndarray, np.ndarray]:
        """Sum of ``outcome`` over months ``lo..hi`` (inclusive; ``lo`` clipped to each row's first
        active month) and the number of months summed."""
        lo = np.maximum(lo, self.first[rows]).astype(int)
        hi = np.broadcast_to(np.asarray(hi, dtype=int), lo.shape)
        cum = self.cumulative[outcome]
        return cum[rows, hi + 1] - cum[rows, lo], (hi + 1 - lo).astype(float)

    def window_mean(self, outcome: str, rows: np.ndarray, lo, hi) -> np.ndarray:
        total, months = self.window_sum(outcome, rows, lo, hi)
        return total / months

    def history(self, outcome: str, rows: np.ndarray, g: int, pre_months: int) -> dict[str, np.ndarray]:
        """Pre-treatment behaviour of ``rows`` before month ``g``: mean ``outcome`` per month over
        the last ``pre_months`` months, the last 12 months and the whole tenure, the outcome in
        the month before, and months since the last active month (0 = active in the month before)."""
        return {"x_pre": self.window_mean(outcome, rows, g - pre_months, g - 1),
                "x_year": self.window_mean(outcome, rows, g - 12, g - 1),
                "x_tenure": self.window_mean(outcome, rows, 0, g - 1),
                "x_last": np.nan_to_num(self.values[outcome][rows, g - 1]),
                "x_recency": (g - 1 - self.last_active[rows, g - 1]).astype(float)}


def not_yet_treated(grid: PanelGrid, after: int, control_group: ControlGroup) -> np.ndarray:
    """Customers not treated by month ``after``: those treated later, plus the never-treated for
    ``"not_yet_treated"``."""
    later = np.nan_to_num(grid.treated, nan=-1) > after
    if control_group == "not_yet_treated":
        return later | np.isnan(grid.treated)
    return later


def ratio_estimate(beta: np.ndarray, cov: np.ndarray, num: np.ndarray, den: np.ndarray, n: int,
           method: str) -> Estimate:
    """Ratio ``num @ beta / den @ beta`` of linear combinations, delta-method interval; NaN when
    the denominator (the baseline level) is not positive."""
    a, b = float(num @ beta), float(den @ beta)
    if b <= 0:
        return Estimate(np.nan, np.nan, np.nan, np.nan, n, method)
    grad = num / b - den * a / b**2
    return Estimate.normal(a / b, float(np.sqrt(max(grad @ cov @ grad, 0.0))), n, method)  # rounding: >= 0


def did_cells(grid: PanelGrid, outcome: str, event_times, base_months: int,
              control_group: ControlGroup, covariates: bool = False) -> pd.DataFrame:
    """Stacked 2x2 comparisons (no rows when no cohort has both treated and controls). For each
    treatment cohort g and event month e (t = g + e): the cohort's treated customers and the
    customers not treated by max(t, g), both acquired by min(t, g - 1). ``dy`` = outcome in month
    t minus its mean over the ``base_months`` months before g (from the first month if later),
    ``y`` = outcome in month t; stratum = (g, e, acquisition month, treatment group) — for
    ``"not_yet_treated"`` controls of any group and never-treated customers share the stratum.
    ``group``: the treatment group of each row. With ``covariates``, the pre-treatment history
    (:meth:`PanelGrid.history`) is added as ``x_*`` columns."""
    group_code = (pd.factorize(grid.group)[0] if control_group == "later_treated"
                  else np.zeros(len(grid.group), dtype=int))
    y = grid.values[outcome]
    parts = []
    for g in np.unique(grid.treated[~np.isnan(grid.treated)]).astype(int):
        acquired = grid.first <= g - 1
        if g < 1 or not (acquired & (grid.treated == g)).any():
            continue
        for e in event_times:
            t = g + e
            if t < 0 or t >= grid.n_months:
                continue
            in_cell = acquired & (grid.first <= t) & ((grid.treated == g)
                                                      | not_yet_treated(grid, max(t, g), control_group))
            rows = np.flatnonzero(in_cell)
            d = (grid.treated[rows] == g).astype(int)
            if d.all() or not d.any():
                continue
            part = pd.DataFrame({"row": rows, "cohort": g, "event_time": e, "treated": d,
                                 "stratum_acq": grid.first[rows].astype(int), "stratum_group": group_code[rows],
                                 "dy": y[rows, t] - grid.window_mean(outcome, rows, g - base_months, g - 1),
                                 "y": y[rows, t]})
            if covariates:
                part = part.assign(**grid.history(outcome, rows, g, base_months))
            parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["row", "cohort", "event_time", "treated", "stratum_acq", "stratum_group",
                                     "dy", "y", "group"])
    cells = pd.concat(parts, ignore_index=True)
    cells["group"] = grid.group[cells["row"].to_numpy()]
    return cells


def _strata_weights(cells: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows in strata that have both treated and controls, stratum ids, and weights: 1 for the
    treated, n_T / n_C for the controls, so both carry equal weight in every stratum."""
    key = cells.groupby(["cohort", "event_time", "stratum_acq", "stratum_group"], sort=False).ngroup().to_numpy()
    d = cells["treated"].to_numpy(dtype=float)
    n_t, n_c = np.bincount(key, weights=d), np.bincount(key, weights=1 - d)
    keep = (n_t[key] > 0) & (n_c[key] > 0)
    w = np.where(d == 1, 1.0, (n_t / np.where(n_c > 0, n_c, 1))[key])[keep]
    return keep, pd.factorize(key[keep])[0], w


def cluster_covariance(fit, leverage: np.ndarray, groups: np.ndarray) -> np.ndarray:
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
    """Why stacked cells support no DiD: no stratum holds both treated customers and controls."""
    d = cells["treated"].to_numpy(dtype=bool)
    if not d.any():
        return Unavailable("causal.did.no_history")
    return Unavailable("causal.did.no_comparison", {"treated": int(cells["row"][d].nunique()),
                                                    "control": int(cells["row"][~d].nunique())})


def did_regression(cells: list[pd.DataFrame], covariates: tuple[str, ...] = ()
                   ) -> tuple[np.ndarray, np.ndarray, dict] | Unavailable:
    """Stratified DiD for one or more outcomes on the same stacked cells (one frame per outcome,
    same rows), as one weighted least-squares regression (statsmodels) with cluster-robust
    (by customer) covariance. Per outcome two equations: the within-stratum demeaned change on
    the demeaned treatment indicator (plus demeaned ``covariates``, common slopes) — its
    coefficient is the treated-weighted mean of the stratum differences in mean change, i.e. the
    ATT — and the treated post-period level on a constant. Covariance: :func:`cluster_covariance`.
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
    cov = cluster_covariance(fit, np.concatenate(blocks_h), np.concatenate(blocks_g))
    pos["n_treated"], pos["n_control"] = int(pd.unique(groups[tr]).size), int(pd.unique(groups[~tr]).size)
    return np.asarray(fit.params), cov, pos


def _stratified_did(cells: pd.DataFrame, covariates: tuple[str, ...] = (),
                    method: str = "cohort_did") -> dict | Unavailable:
    """ATT (absolute and relative to the treated's counterfactual level, delta-method interval
    from the joint covariance) of one outcome from stacked 2x2 cells (:func:`did_regression`)."""
    fit = did_regression([cells], covariates)
    if isinstance(fit, Unavailable):
        return fit
    beta, cov, pos = fit
    unit = np.eye(len(beta))
    n = pos["n_treated"] + pos["n_control"]
    a, lv = pos["att0"], pos["level0"]
    return {"absolute": Estimate.normal(beta[a], np.sqrt(cov[a, a]), n, method),
            "relative": ratio_estimate(beta, cov, unit[a], unit[lv] - unit[a], n, method),
            "counterfactual_mean": float(beta[lv] - beta[a]),
            "n_treated": pos["n_treated"], "n_control": pos["n_control"]}


def _leads_test(cells: pd.DataFrame) -> tuple[float, int, float] | Unavailable:
    """Joint Wald test that the treated-control differences at all lead months are zero (one
    regression with a treatment indicator per lead, cluster-robust by customer): chi2, df, p.
    :class:`Unavailable` when the cluster-robust covariance cannot be inverted: no more
    customers than lead months with both treated and controls, or an outcome that does not vary."""
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
        b, v = np.asarray(fit.params), cluster_covariance(fit, w / total_w[key], c["row"].to_numpy())
        if np.linalg.matrix_rank(v) == len(b):
            stat = float(b @ np.linalg.solve(v, b))
            return stat, len(b), float(chi2.sf(stat, len(b)))
    return Unavailable("causal.did.pretrend_untestable", {"customers": int(clusters), "leads": len(times)})


@dataclass(frozen=True)
class CohortDiD:
    """Staggered DiD around treatment (:func:`cohort_did`); ``group`` names the column of the
    treatment group in every frame.

    ``overall``: one row per group and scale (``absolute`` in outcome units per customer-month,
    ``relative`` to the treated's counterfactual level) over event months 1..lags;
    ``event_study``: one row per group and event month (-leads..lags, month before treatment = 0
    by construction) with the absolute and relative effect; ``pretrend``: per group, the joint
    Wald test that all leads are zero (chi2, p-value; NaN when it cannot be tested, the reason in
    ``pretrend_missing``); ``missing``: why a requested group has no estimate."""

    outcome: str
    control_group: str
    overall: pd.DataFrame
    event_study: pd.DataFrame
    pretrend: pd.DataFrame
    missing: dict[str, Unavailable] = field(default_factory=dict)
    pretrend_missing: dict[str, Unavailable] = field(default_factory=dict)
    group: str = "tier"

    def effect(self, group: str = "all", scale: str = "relative") -> Estimate:
        """The overall effect of one group on one scale."""
        r = self.overall[(self.overall[self.group] == group) & (self.overall["scale"] == scale)].iloc[0]
        return Estimate(r["estimate"], r["se"], r["ci_low"], r["ci_high"], int(r["n_treated"] + r["n_control"]),
                        r["method"])


def group_cells(cells: pd.DataFrame, group: str) -> pd.DataFrame:
    """The cells of one treatment group's treated and all controls (every row for ``"all"``)."""
    return cells if group == "all" else cells[(cells["treated"] == 0) | (cells["group"] == group)]


def cohort_did(panel: pd.DataFrame, customers: pd.DataFrame, outcome: str, leads: int = 6,
               lags: int = 12, pre_months: int = 6, control_group: ControlGroup = "later_treated",
               event_study: bool = True, groups: tuple[str, ...] = ("all",), adjust: bool = True,
               treated_at: str = "enrolled_month", group: str = "tier", activity: str = "active"
               ) -> CohortDiD | Unavailable:
    """Difference-in-differences around treatment with staggered timing, Callaway & Sant'Anna
    style: every treatment cohort is compared, month by month, with customers of the same
    acquisition month (and treatment group) who had not been treated yet.

    ``outcome``: a numeric panel column per customer-month. Overall effect: event months
    1..``lags`` (the treatment month itself is only partly treated), baseline = mean of the
    ``pre_months`` months before treatment, regression-adjusted for the pre-treatment history
    (``adjust``; it removes noise, not bias, because within a stratum the timing of treatment is
    as good as random). Event study: months -``leads``..``lags`` against the month before
    treatment, unadjusted (leads near zero = no pre-trend). ``control_group``: ``"later_treated"``
    (customers treated later; like the treated they chose treatment) or ``"not_yet_treated"``
    (adds the never-treated, who may differ in ways that made them never choose it — a check on
    how much self-selection biases that comparison). ``groups``: ``"all"`` and/or values of the
    ``group`` column; the output frames name that column ``group`` too.

    Groups without a comparison are left out (reason in :attr:`CohortDiD.missing`);
    :class:`Unavailable` when no requested group has one."""
    grid = PanelGrid.build(panel, customers, (outcome,), treated_at, group, activity)
    post = did_cells(grid, outcome, range(1, lags + 1), pre_months, control_group, covariates=adjust)
    overall, curve, pretrend, missing, untestable = [], [], [], {}, {}
    for g in groups:
        r = _stratified_did(group_cells(post, g), HISTORY_COVARIATES if adjust else ())
        if isinstance(r, Unavailable):
            missing[g] = r
            continue
        for scale in ("absolute", "relative"):
            est = r[scale]
            overall.append({"outcome": outcome, group: g, "scale": scale, "method": est.method,
                            "estimate": est.estimate, "se": est.se, "ci_low": est.ci_low,
                            "ci_high": est.ci_high, "counterfactual_mean": r["counterfactual_mean"],
                            "n_treated": r["n_treated"], "n_control": r["n_control"]})
    if not overall:
        return missing[groups[0]]
    if event_study:
        cells = did_cells(grid, outcome, [e for e in range(-leads, lags + 1) if e != -1], 1, control_group)
        for g in (g for g in groups if g not in missing):
            sub = group_cells(cells, g)
            test = _leads_test(sub[sub["event_time"] < -1])
            if isinstance(test, Unavailable):
                untestable[g] = test
                pretrend.append({group: g, "leads_tested": leads - 1, "chi2": np.nan, "p_value": np.nan})
            else:
                pretrend.append({group: g, "leads_tested": test[1], "chi2": test[0], "p_value": test[2]})
            for e in (e for e in range(-leads, lags + 1) if e != -1):
                r = _stratified_did(sub[sub["event_time"] == e])
                if isinstance(r, Unavailable):
                    continue
                curve.append({group: g, "event_time": e, "estimate": r["absolute"].estimate,
                              "se": r["absolute"].se, "ci_low": r["absolute"].ci_low,
                              "ci_high": r["absolute"].ci_high, "relative": r["relative"].estimate,
                              "relative_ci_low": r["relative"].ci_low,
                              "relative_ci_high": r["relative"].ci_high,
                              "n_treated": r["n_treated"], "n_control": r["n_control"]})
            curve.append({group: g, "event_time": -1, "estimate": 0.0, "se": 0.0, "ci_low": 0.0,
                          "ci_high": 0.0, "relative": 0.0, "relative_ci_low": 0.0,
                          "relative_ci_high": 0.0, "n_treated": np.nan, "n_control": np.nan})
    es = pd.DataFrame(curve)
    if len(es):
        es = es.sort_values([group, "event_time"]).reset_index(drop=True)
    return CohortDiD(outcome, control_group, pd.DataFrame(overall), es, pd.DataFrame(pretrend), missing,
                     untestable, group)


def delta_estimate(fn, beta: np.ndarray, cov: np.ndarray, n: int, method: str) -> Estimate:
    """Delta-method interval of a smooth function of regression coefficients (numerical gradient)."""
    grad = approx_fprime(beta, fn, centered=True)
    return Estimate.normal(fn(beta), float(np.sqrt(grad @ cov @ grad)), n, method)
