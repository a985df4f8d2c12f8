"""Staggered difference-in-differences on a customer x month panel (Callaway & Sant'Anna 2021):
every treatment cohort (customers first treated in month g) is compared, month by month, with
customers of the same acquisition month (and treatment group) who had not been treated yet —
never a two-way fixed-effects regression, which is biased when timing is staggered and effects
change over time. Aggregated to an overall effect (absolute and relative to the treated's
counterfactual level), an event-study curve and a joint pre-trend test on the leads; weighted
least squares with cluster-robust (by customer) errors whose residuals are corrected for the
leverage of small comparison strata.

The regressions run on sufficient statistics, one comparison (cohort x event month) at a time:
a first pass accumulates X'WX and X'Wy, a second, given the coefficients, each customer's sum
of scores for the cluster-robust covariance. The stacked rows (one per cohort, event month and
customer) are never held at once; memory is the panel's running sums (customers x months per
outcome, :class:`PanelGrid`) plus a few numbers per customer.

Data-agnostic. Inputs, turned into a :class:`PanelGrid` once: a ``panel`` with ``customer_id``,
``month`` (first day or month number; months without a row count as zeros) and numeric outcome
columns per customer-month, plus a 0/1 activity column (``active``) for recency; and a
``customers`` frame indexed by ``customer_id`` with ``first_month``, the treatment month
(``enrolled_month`` by default; NaT = never treated) and the treatment group (``tier`` by
default; None = never treated). Comparison groups:
``"later_treated"`` (customers treated later, who chose treatment just the same) or
``"not_yet_treated"`` (adds the never-treated).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import chi2
from statsmodels.tools.numdiff import approx_fprime

from custlib.stats import Estimate, Unavailable

ControlGroup = Literal["later_treated", "not_yet_treated"]
HISTORY_COVARIATES = ("x_pre", "x_year", "x_tenure", "x_last", "x_recency")


def month_number(values) -> np.ndarray:
    """Calendar months as month numbers (year * 12 + month - 1), from dates or from month numbers;
    NaN for missing dates."""
    s = pd.Series(values)
    if pd.api.types.is_numeric_dtype(s):
        return s.to_numpy(dtype=float)
    s = pd.to_datetime(s)
    return (s.dt.year * 12 + s.dt.month - 1).to_numpy(dtype=float)


def month_start(numbers) -> pd.DatetimeIndex:
    """First days of the months with these month numbers (:func:`month_number`)."""
    m = np.asarray(numbers, dtype=int)
    return pd.DatetimeIndex(pd.to_datetime({"year": m // 12, "month": m % 12 + 1, "day": 1}))


@dataclass(frozen=True)
class PanelGrid:
    """Panel outcomes as running sums per customer and month, aligned with a customer frame:
    ``cumulative[outcome][i, m]`` is customer i's total over months 0..m-1, months being column
    positions counted from ``start`` (zero before a customer's first month), so every monthly
    value and window sum is a difference of two entries. Counts are stored as 16- or 32-bit
    integers, amounts as float64: customers x (months + 1) x 2 to 8 bytes per outcome."""

    start: int  # month number of column 0
    cumulative: dict[str, np.ndarray]
    first: np.ndarray  # month of the first activity
    treated: np.ndarray  # month of treatment; NaN = never treated
    group: np.ndarray  # treatment group; "none" = never treated
    activity: str  # the 0/1 activity outcome (recency)

    @property
    def n_months(self) -> int:
        return next(iter(self.cumulative.values())).shape[1] - 1

    @classmethod
    def build(cls, panel: pd.DataFrame, customers: pd.DataFrame, outcomes: tuple[str, ...],
              treated_at: str = "enrolled_month", group: str = "tier", activity: str = "active",
              months: tuple | None = None) -> PanelGrid:
        """The grid of ``outcomes`` (and the 0/1 ``activity`` column) of ``panel``, dense or
        without its zero rows (months as dates or month numbers); rows of customers not in
        ``customers`` are ignored. ``months``: the first and last calendar month, by default
        those of ``panel`` (pass them when the panel has no zero rows). Treatment month and
        group from the ``treated_at`` and ``group`` columns of ``customers``."""
        month = month_number(panel["month"])
        lo, hi = (np.nanmin(month), np.nanmax(month)) if months is None else month_number(list(months))
        start = int(lo)
        rows = customers.index.get_indexer(panel["customer_id"])
        keep = rows >= 0
        rows, cols = rows[keep], month[keep].astype(int) - start + 1
        shape = (len(customers), int(hi) - start + 2)
        cumulative = {}
        for c in dict.fromkeys((*outcomes, activity)):
            v = panel[c].to_numpy()[keep]
            dtype = np.float64
            if np.issubdtype(v.dtype, np.integer):
                dtype = np.int16 if np.bincount(rows, weights=np.abs(v)).max(initial=0) < 2**15 else np.int32
            a = np.zeros(shape, dtype)
            a[rows, cols] = v
            cumulative[c] = np.cumsum(a, axis=1, out=a)
        return cls(start, cumulative, np.maximum(month_number(customers["first_month"]) - start, 0).astype(int),
                   month_number(customers[treated_at]) - start,
                   customers[group].fillna("none").to_numpy(dtype=object), activity)

    def value(self, outcome: str, rows: np.ndarray, month: int) -> np.ndarray:
        """``outcome`` of ``rows`` in ``month`` (0 before their first month)."""
        cum = self.cumulative[outcome]
        return (cum[rows, month + 1] - cum[rows, month]).astype(float)

    def window_sum(self, outcome: str, rows: np.ndarray, lo, hi) -> tuple[np.ndarray, np.ndarray]:
        """Sum of ``outcome`` over months ``lo..hi`` (inclusive, numbers or one per row; ``lo``
        clipped to each row's first active month) and the number of months summed."""
        lo = np.maximum(lo, self.first[rows])
        cum = self.cumulative[outcome]
        return (cum[rows, hi + 1] - cum[rows, lo]).astype(float), (hi + 1 - lo).astype(float)

    def window_mean(self, outcome: str, rows: np.ndarray, lo, hi) -> np.ndarray:
        total, months = self.window_sum(outcome, rows, lo, hi)
        return total / months

    def recency(self, rows: np.ndarray, g: int) -> np.ndarray:
        """Months from each row's last active month before ``g`` to month g - 1 (0 = active in
        g - 1, g = never active): a binary search for the first month whose running activity
        count equals the count at g."""
        cum = self.cumulative[self.activity]
        target = cum[rows, g]
        lo, hi = np.zeros(len(rows), int), np.full(len(rows), g)
        while (lo < hi).any():
            mid = (lo + hi) // 2
            below = cum[rows, mid] < target
            lo, hi = np.where(below, mid + 1, lo), np.where(below, hi, mid)
        return (g - lo).astype(float)

    def history(self, outcome: str, rows: np.ndarray, g: int, pre_months: int) -> dict[str, np.ndarray]:
        """Pre-treatment behaviour of ``rows`` before month ``g``: mean ``outcome`` per month over
        the last ``pre_months`` months, the last 12 months and the whole tenure, the outcome in
        the month before, and months since the last active month (0 = active in the month before)."""
        return {"x_pre": self.window_mean(outcome, rows, g - pre_months, g - 1),
                "x_year": self.window_mean(outcome, rows, g - 12, g - 1),
                "x_tenure": self.window_mean(outcome, rows, 0, g - 1),
                "x_last": self.value(outcome, rows, g - 1),
                "x_recency": self.recency(rows, g)}


def not_yet_treated(treated: np.ndarray, after: int, control_group: ControlGroup) -> np.ndarray:
    """Which of the treatment months ``treated`` (NaN = never) are not treated by month
    ``after``: those treated later, plus the never-treated for ``"not_yet_treated"``."""
    later = np.nan_to_num(treated, nan=-1) > after
    if control_group == "not_yet_treated":
        return later | np.isnan(treated)
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


# -- the stacked comparisons, one at a time --------------------------------------------------------

class _Stack:
    """The 2x2 comparisons of a grid. Customers are numbered by their position in ``pool`` (grid
    rows that can take part: everybody for ``"not_yet_treated"``, the ever-treated otherwise,
    within ``sample``). Stratum = (acquisition month, treatment group); for ``"not_yet_treated"``
    controls of any group and never-treated customers share the stratum."""

    def __init__(self, grid: PanelGrid, control_group: ControlGroup, sample: np.ndarray | None = None):
        pool = np.ones(len(grid.first), bool) if control_group == "not_yet_treated" else ~np.isnan(grid.treated)
        self.grid, self.control_group = grid, control_group
        self.pool = np.flatnonzero(pool if sample is None else pool & sample)
        self.first, self.treated = grid.first[self.pool], grid.treated[self.pool]
        self.group, self.group_names = pd.factorize(grid.group[self.pool])
        codes = self.group if control_group == "later_treated" else 0
        self.stratum = self.first * (len(self.group_names) + 1) + codes
        self.n_strata = int(np.max(self.stratum, initial=0)) + 1
        cohorts = np.unique(self.treated[~np.isnan(self.treated)]).astype(int)
        self.cohorts = [g for g in cohorts if ((self.treated == g) & (self.first <= g - 1)).any()]

    def candidates(self, g: int) -> np.ndarray:
        """Pool positions that can enter a comparison of cohort g: acquired by g - 1 and treated
        in g or not treated by g."""
        return np.flatnonzero((self.first <= g - 1)
                              & ((self.treated == g) | not_yet_treated(self.treated, g, self.control_group)))

    def cell(self, candidates: np.ndarray, g: int, e: int) -> np.ndarray | None:
        """Which ``candidates`` form cohort g's comparison at event month e (t = g + e): the
        cohort's treated and the customers not treated by max(t, g), both acquired by
        min(t, g - 1); None when t is outside the grid or the cell lacks treated or controls."""
        t, first, treated = g + e, self.first[candidates], self.treated[candidates]
        if t < 0 or t >= self.grid.n_months:
            return None
        m = (first <= t) & ((treated == g) | not_yet_treated(treated, max(t, g), self.control_group))
        d = treated[m] == g
        return None if d.all() or not d.any() else m

    def strata(self, at: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Of the rows ``at`` (pool positions; ``d``: treated): those in strata with both treated
        and controls, their stratum ids and weights — 1 for the treated, n_T / n_C for the
        controls, so both carry equal weight in every stratum."""
        key = self.stratum[at]
        n_t = np.bincount(key, weights=d, minlength=self.n_strata)
        n_c = np.bincount(key, weights=~d, minlength=self.n_strata)
        keep = (n_t[key] > 0) & (n_c[key] > 0)
        w = np.where(d, 1.0, (n_t / np.where(n_c > 0, n_c, 1))[key])[keep]
        return keep, key[keep], w


class _Fit:
    """One weighted least-squares regression on stacked rows, fed comparison by comparison in two
    passes: X'WX and X'Wy first, then, after :meth:`solve`, each customer's (cluster's) score sum
    x w e / sqrt(1 - h), with residuals corrected for the leverage ``h`` of the row (HC2 / CR2
    idea: small strata otherwise shrink the residuals and understate the error). Customers are
    pool positions (:class:`_Stack`)."""

    def __init__(self, n: int, p: int):
        self.xtx, self.xty = np.zeros((p, p)), np.zeros(p)
        self.seen = np.zeros((2, n), bool)  # customers as control / treated in any row
        self.kept = np.zeros((2, n), bool)  # ... in rows of strata with both
        self.beta = self.bread = self.scores = None

    def add(self, cols: slice, customers: np.ndarray, x: np.ndarray, y: np.ndarray, w: np.ndarray,
            h: np.ndarray) -> None:
        """Rows with design ``x`` in columns ``cols``, outcome ``y``, weights ``w``, leverages ``h``
        (one row per customer)."""
        if self.scores is None:
            xw = x * w[:, None]
            self.xtx[cols, cols] += xw.T @ x
            self.xty[cols] += xw.T @ y
        else:
            e = y - x @ self.beta[cols]
            self.scores[cols, customers] += (x * (w * e / np.sqrt(1 - np.clip(h, 0, 0.99)))[:, None]).T

    def add_mean(self, col: int, customers: np.ndarray, y: np.ndarray) -> None:
        """Rows of a level equation: ``y`` on a constant in column ``col`` (weight 1, leverage 1/n)."""
        if self.scores is None:
            self.xtx[col, col] += len(y)
            self.xty[col] += y.sum()
        else:
            h = min(1 / self.xtx[col, col], 0.99)
            self.scores[col, customers] += (y - self.beta[col]) / np.sqrt(1 - h)

    @property
    def fitted(self) -> bool:
        return bool(self.kept.any())

    def solve(self) -> None:
        """Coefficients from the first pass; opens the second. (X'WX)^-1 through X'WX with its
        columns scaled to unit diagonal (better conditioned when orders and currency mix), whose
        eigenvalues also give the rank: columns collinear to within 1e-10 do not count. Without
        full rank, statsmodels' pseudo-inverse: the inverse on as many leading eigen-directions
        of X'WX (the minimum-norm solution; the ATT and level are the same for any choice)."""
        scale = np.sqrt(np.diag(self.xtx))
        scale = np.outer(*2 * [np.where(scale > 0, scale, 1.0)])
        lam, vec = np.linalg.eigh(self.xtx / scale)  # ascending
        rank = int((lam > 1e-10 * lam[-1]).sum())
        if rank < len(lam):
            lam, vec = np.linalg.eigh(self.xtx)
            scale = 1.0
        self.bread = (vec[:, -rank:] / lam[-rank:]) @ vec[:, -rank:].T / scale
        self.beta = self.bread @ self.xty
        self.scores = np.zeros((len(self.xty), self.seen.shape[1]))  # a row per coefficient

    def covariance(self) -> np.ndarray:
        """Cluster-robust covariance G / (G - 1) B S'S B (B = (X'WX)^-1, S: customers' score sums)."""
        g = int(self.kept.any(axis=0).sum())
        return g / (g - 1) * self.bread @ (self.scores @ self.scores.T) @ self.bread

    def result(self, outcomes: int = 1) -> tuple[np.ndarray, np.ndarray, dict]:
        """Coefficients, covariance and the positions of ``att<j>`` and ``level<j>`` per outcome j
        (blocks of equal width), plus ``n_treated`` and ``n_control`` (customers)."""
        k = len(self.beta) // outcomes
        pos = {f"{name}{j}": j * k + off for j in range(outcomes) for name, off in (("att", 0), ("level", k - 1))}
        pos["n_treated"], pos["n_control"] = int(self.kept[1].sum()), int(self.kept[0].sum())
        return self.beta, self.covariance(), pos

    def no_comparison(self) -> Unavailable:
        """Why no stratum held both treated customers and controls."""
        if not self.seen[1].any():
            return Unavailable("causal.did.no_history")
        return Unavailable("causal.did.no_comparison", {"treated": int(self.seen[1].sum()),
                                                        "control": int(self.seen[0].sum())})


def _demean(v: np.ndarray, stratum: np.ndarray, w: np.ndarray, total: np.ndarray) -> np.ndarray:
    """``v`` minus its ``w``-weighted mean in each row's stratum (``total``: the stratum's weight)."""
    return v - np.bincount(stratum, weights=w * v)[stratum] / total


def _fit_stack(stack: _Stack, outcomes: tuple[str, ...], event_times, base_months: int,
               groups: tuple[str, ...], covariates: tuple[str, ...]) -> dict[str, _Fit]:
    """The stratified DiD regressions of :func:`did_regression`, one :class:`_Fit` per group,
    columns per outcome j: ``att`` (j * k), the covariates, ``level`` (j * k + k - 1). Baselines
    and covariates are computed once per cohort, for all its candidates."""
    grid, k = stack.grid, 2 + len(covariates)
    fits = {grp: _Fit(len(stack.pool), k * len(outcomes)) for grp in groups}
    names = list(stack.group_names)
    codes = {grp: names.index(grp) if grp in names else -1 for grp in groups}
    for second in (False, True):
        for g in stack.cohorts:
            cand = stack.candidates(g)
            cells = [(e, m) for e in event_times if (m := stack.cell(cand, g, e)) is not None]
            if not cells:
                continue
            rows, history = stack.pool[cand], {}
            for o in outcomes:
                hist = grid.history(o, rows, g, base_months) if covariates else {}
                history[o] = [grid.window_mean(o, rows, g - base_months, g - 1)] + [hist[c] for c in covariates]
            for e, m in cells:
                at = cand[m]
                d = stack.treated[at] == g
                data = [(grid.value(o, rows[m], g + e), [v[m] for v in history[o]]) for o in outcomes]
                for grp, fit in fits.items():
                    sub = np.ones(len(d), bool) if grp == "all" else ~d | (stack.group[at] == codes[grp])
                    keep, s, w = stack.strata(at[sub], d[sub])
                    c, dk = at[sub][keep], d[sub][keep]
                    if not second:
                        fit.seen[d[sub].astype(int), at[sub]] = True
                        fit.kept[dk.astype(int), c] = True
                    if not keep.any():
                        continue
                    total = np.bincount(s, weights=w)[s]
                    for j, (y, (base, *xs)) in enumerate(data):
                        y, base = y[sub][keep], base[sub][keep]
                        x = np.column_stack([dk - 0.5] + [_demean(v[sub][keep], s, w, total) for v in xs])
                        fit.add(slice(j * k, j * k + k - 1), c, x, _demean(y - base, s, w, total), w, w / total)
                        fit.add_mean(j * k + k - 1, c[dk], y[dk])
        for fit in fits.values():
            if fit.fitted and not second:
                fit.solve()
    return fits


def did_regression(grid: PanelGrid, outcomes: tuple[str, ...], event_times, base_months: int,
                   control_group: ControlGroup, groups: tuple[str, ...] = ("all",),
                   covariates: tuple[str, ...] = (), sample: np.ndarray | None = None
                   ) -> dict[str, tuple[np.ndarray, np.ndarray, dict] | Unavailable]:
    """Stratified DiD for one or more outcomes on the same stacked comparisons, as one weighted
    least-squares regression per group with cluster-robust (by customer) covariance.

    Rows: for each treatment cohort g and event month e in ``event_times`` (t = g + e) the
    cohort's treated and the customers not treated by max(t, g), both acquired by min(t, g - 1);
    ``dy`` = outcome in month t minus its mean over the ``base_months`` months before g (from the
    first month if later); stratum = (g, e, acquisition month, treatment group). A group's rows:
    its treated and all controls (every row for ``"all"``); ``sample``: a customer mask of the
    grid to draw them from. Per outcome two equations: the within-stratum demeaned change on the
    treatment indicator (plus the demeaned pre-treatment history ``covariates`` of
    :meth:`PanelGrid.history`, common slopes) — its coefficient is the treated-weighted mean of
    the stratum differences in mean change, i.e. the ATT — and the treated post-period level on a
    constant; weights 1 for the treated and n_T / n_C for the controls of a stratum.

    Per group: coefficients, covariance and the positions of ``att<k>`` and ``level<k>``, plus
    ``n_treated``, ``n_control`` (customers); :class:`Unavailable` when no stratum has both
    treated and controls."""
    fits = _fit_stack(_Stack(grid, control_group, sample), outcomes, event_times, base_months, groups, covariates)
    return {grp: fit.result(len(outcomes)) if fit.fitted else fit.no_comparison() for grp, fit in fits.items()}


def _stratified_did(fit: tuple[np.ndarray, np.ndarray, dict], method: str = "cohort_did") -> dict:
    """ATT (absolute and relative to the treated's counterfactual level, delta-method interval
    from the joint covariance) of one outcome from a :meth:`_Fit.result`."""
    beta, cov, pos = fit
    unit = np.eye(len(beta))
    n = pos["n_treated"] + pos["n_control"]
    a, lv = pos["att0"], pos["level0"]
    return {"absolute": Estimate.normal(beta[a], np.sqrt(cov[a, a]), n, method),
            "relative": ratio_estimate(beta, cov, unit[a], unit[lv] - unit[a], n, method),
            "counterfactual_mean": float(beta[lv] - beta[a]),
            "n_treated": pos["n_treated"], "n_control": pos["n_control"]}


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


def _event_study(stack: _Stack, outcome: str, leads: int, lags: int, groups: tuple[str, ...], group: str
                 ) -> tuple[list[dict], dict[str, tuple[float, int, float] | Unavailable]]:
    """Event-study rows (one unadjusted regression per group and event month -leads..lags but
    -1, baseline = month -1) and per group the joint Wald test that the leads (-leads..-2) are
    zero: chi2, df, p, or :class:`Unavailable` when the cluster-robust covariance cannot be
    inverted (no more customers than lead months with both treated and controls, or an outcome
    that does not vary). The lead regressions are separable, so the joint test reuses each lead
    month's coefficient, bread and customer score sums."""
    curve, lead = [], {grp: [] for grp in groups}
    for e in (e for e in range(-leads, lags + 1) if e != -1):
        for grp, fit in _fit_stack(stack, (outcome,), [e], 1, groups, ()).items():
            if not fit.fitted:
                continue
            r = _stratified_did(fit.result())
            curve.append({group: grp, "event_time": e, "estimate": r["absolute"].estimate,
                          "se": r["absolute"].se, "ci_low": r["absolute"].ci_low, "ci_high": r["absolute"].ci_high,
                          "relative": r["relative"].estimate, "relative_ci_low": r["relative"].ci_low,
                          "relative_ci_high": r["relative"].ci_high,
                          "n_treated": r["n_treated"], "n_control": r["n_control"]})
            if e < -1:  # coefficient, customers' scores times the bread, customers compared
                lead[grp].append((fit.beta[0], fit.scores[0] * fit.bread[0, 0], fit.kept.any(axis=0)))
    tests = {}
    for grp, fits in lead.items():
        b = np.array([f[0] for f in fits])
        n = int(np.logical_or.reduce([f[2] for f in fits]).sum()) if fits else 0
        tests[grp] = Unavailable("causal.did.pretrend_untestable", {"customers": n, "leads": len(b)})
        if len(b) and n > len(b):
            s = np.array([f[1] for f in fits])
            v = n / (n - 1) * s @ s.T
            if np.linalg.matrix_rank(v) == len(b):
                stat = float(b @ np.linalg.solve(v, b))
                tests[grp] = stat, len(b), float(chi2.sf(stat, len(b)))
    return curve, tests


def cohort_did(grid: PanelGrid, outcome: str, leads: int = 6, lags: int = 12, pre_months: int = 6,
               control_group: ControlGroup = "later_treated", event_study: bool = True,
               groups: tuple[str, ...] = ("all",), adjust: bool = True, group: str = "tier",
               sample: np.ndarray | None = None) -> CohortDiD | Unavailable:
    """Difference-in-differences around treatment with staggered timing, Callaway & Sant'Anna
    style: every treatment cohort is compared, month by month, with customers of the same
    acquisition month (and treatment group) who had not been treated yet.

    ``outcome``: a panel outcome of ``grid``. Overall effect: event months 1..``lags`` (the
    treatment month itself is only partly treated), baseline = mean of the ``pre_months``
    months before treatment, regression-adjusted for the pre-treatment history (``adjust``; it
    removes noise, not bias, because within a stratum the timing of treatment is as good as
    random). Event study: months -``leads``..``lags`` against the month before treatment,
    unadjusted (leads near zero = no pre-trend). ``control_group``: ``"later_treated"``
    (customers treated later; like the treated they chose treatment) or ``"not_yet_treated"``
    (adds the never-treated, who may differ in ways that made them never choose it — a check on
    how much self-selection biases that comparison). ``groups``: ``"all"`` and/or treatment
    groups of the grid; the output frames name their column ``group``. ``sample``: a customer
    mask of the grid (e.g. one segment), treated and controls both from it.

    Groups without a comparison are left out (reason in :attr:`CohortDiD.missing`);
    :class:`Unavailable` when no requested group has one."""
    stack = _Stack(grid, control_group, sample)
    fits = _fit_stack(stack, (outcome,), range(1, lags + 1), pre_months, groups, HISTORY_COVARIATES if adjust else ())
    overall, pretrend, missing, untestable = [], [], {}, {}
    for g, fit in fits.items():
        if not fit.fitted:
            missing[g] = fit.no_comparison()
            continue
        r = _stratified_did(fit.result())
        for scale in ("absolute", "relative"):
            est = r[scale]
            overall.append({"outcome": outcome, group: g, "scale": scale, "method": est.method,
                            "estimate": est.estimate, "se": est.se, "ci_low": est.ci_low,
                            "ci_high": est.ci_high, "counterfactual_mean": r["counterfactual_mean"],
                            "n_treated": r["n_treated"], "n_control": r["n_control"]})
    if not overall:
        return missing[groups[0]]
    curve = []
    if event_study:
        present = tuple(g for g in groups if g not in missing)
        rows, tests = _event_study(stack, outcome, leads, lags, present, group)
        for g in present:
            test = tests[g]
            if isinstance(test, Unavailable):
                untestable[g] = test
                pretrend.append({group: g, "leads_tested": leads - 1, "chi2": np.nan, "p_value": np.nan})
            else:
                pretrend.append({group: g, "leads_tested": test[1], "chi2": test[0], "p_value": test[2]})
            curve += [r for r in rows if r[group] == g]
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
