"""Average treatment effects on the treated (ATT) of a binary intervention from observational
data: inverse-probability weighting, nearest-neighbour matching on the propensity score and
doubly robust AIPW, with sandwich (influence-function) errors clustered on repeated units, the
Abadie-Imbens variance for matching, a covariate balance table (standardized mean differences)
and the propensity scores for overlap checks. Data-agnostic: any frame with a 0/1 treatment
column, an outcome and pre-treatment covariates (a loyalty programme, a marketing campaign ...).

The propensity model is fitted to convergence (Newton-Raphson, :func:`_propensity_logit`) and
ties in matching are kept and share the weight, so an estimate depends neither on the
optimiser's stopping rule nor on the order of the rows.

With a pre/post change as the outcome, :func:`estimate_att` with ``method="aipw"`` is the doubly
robust difference-in-differences of Sant'Anna & Zhao (2020).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.linear_model import LinearRegression

from custlib.stats import Estimate, Unavailable

ATTMethod = Literal["ipw", "matching", "aipw"]
MISSING_LEVEL = "missing"  # the level of a missing category in design_matrix
RIDGE = 1e-12  # penalty on the propensity slopes (standardized covariates, mean log-loss scale)
NEWTON_STEPS = 100  # most Newton-Raphson steps of a propensity fit
TIE_BAND = 1e-9  # distances on the logit propensity score closer than this are ties in matching
VARIANCE_MATCHES = 2  # same-group matches for the conditional variance (Abadie & Imbens 2006)


def design_matrix(df: pd.DataFrame, covariates: list[str]) -> pd.DataFrame:
    """Numeric model matrix of ``covariates``: numbers as they are (a missing value gets the column
    mean and a ``<name>_missing`` indicator), text / categorical / boolean columns one-hot coded
    with the first level dropped (a missing value is its own level). Constant columns are dropped.
    Written column by column into one float array (indicators stay boolean until then)."""
    columns = {}
    for c in covariates:
        s = df[c]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            s = s.astype(float)
            if s.isna().any():
                columns[f"{c}_missing"] = s.isna().to_numpy()
                s = s.fillna(s.mean())
            columns[c] = s.to_numpy()
        else:
            cat = s.astype(object).where(s.notna(), MISSING_LEVEL).astype(str)
            codes, levels = pd.factorize(cat, sort=True)
            columns.update({f"{c}={level}": codes == i for i, level in enumerate(levels[1:], start=1)})
    names = [k for k, v in columns.items() if len(v) and v.min() < v.max()]
    values = np.empty((len(names), len(df)))  # a row per column: the layout of a pandas block
    for row, name in zip(values, names):
        row[:] = columns.pop(name)
    return pd.DataFrame(values.T, index=df.index, columns=names)


def _columns(x: pd.DataFrame) -> np.ndarray:
    """The columns of a numeric frame as rows of one array (a view of a single-block frame)."""
    return x.to_numpy(dtype=float).T


def _standardized(x: pd.DataFrame) -> np.ndarray:
    """``(x - mean) / sd`` (population sd) as a new array, column by column with pandas'
    arithmetic (two-pass variance) but without its full-size temporaries."""
    z = np.empty_like(_columns(x))
    for v, out in zip(_columns(x), z):
        mean = v.sum() / len(v)
        np.subtract(v, mean, out=out)
        out /= np.sqrt(((mean - v) ** 2).sum() / len(v))
    return z.T


def _variance(v: np.ndarray) -> float:
    """Sample variance (ddof 1, two-pass as pandas); NaN for fewer than two values."""
    return ((v.sum() / len(v) - v) ** 2).sum() / (len(v) - 1) if len(v) > 1 else np.nan


def balance_table(x: pd.DataFrame, treated: np.ndarray, weights: np.ndarray,
                  base: np.ndarray | None = None) -> pd.DataFrame:
    """Standardized mean differences of each column of ``x``, treated vs controls, before and
    after weighting the controls by ``weights`` (treated rows' weights are ignored); ``base``:
    the controls' sampling weights for the mean before (none: unweighted).

    SMD = (treated mean - control mean) / sqrt((treated variance + control variance) / 2), with
    the unweighted variances in the denominator both times, so before and after are comparable;
    |SMD| < 0.1 is the usual threshold for good balance."""
    t = np.asarray(treated, dtype=bool)
    wc = np.asarray(weights, dtype=float)[~t]
    bc = None if base is None else np.asarray(base, dtype=float)[~t]
    rows = []
    for v in _columns(x):  # covariate by covariate: no copy of x
        vt, vc = v[t], v[~t]
        sd = np.sqrt((_variance(vt) + _variance(vc)) / 2) or np.nan
        rows.append((vt.sum() / len(vt), vc.sum() / len(vc) if bc is None else (vc * bc).sum() / bc.sum(),
                     (vc * wc).sum() / wc.sum(), sd))
    out = pd.DataFrame(rows, columns=["treated_mean", "control_mean", "control_mean_weighted", "sd"])
    out.insert(0, "covariate", x.columns)
    out["smd_before"] = (out["treated_mean"] - out["control_mean"]) / out["sd"]
    out["smd_after"] = (out["treated_mean"] - out["control_mean_weighted"]) / out["sd"]
    return out.drop(columns="sd")


@dataclass(frozen=True)
class ATTResult:
    """Average effect of a binary intervention on the treated (:func:`estimate_att`).

    ``estimate``: absolute ATT; ``relative``: ATT / counterfactual mean of the treated (``None``
    when that mean is not positive); ``balance``: standardized mean differences before/after;
    ``scores``: propensity score and treatment of every row kept after trimming (overlap plots);
    ``n_unmatched``: treated rows that matching left out (no control within the caliper or in
    their exact group); ``caliper``: the caliper of matching in pooled standard deviations of the
    logit propensity score (``None``: no caliper, or not matching)."""

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
    n_unmatched: int = 0
    caliper: float | None = None

    @property
    def summary(self) -> pd.DataFrame:
        """One row per scale (absolute, relative): estimate, se, ci_low, ci_high, n_treated, n_control."""
        rows = [("absolute", self.estimate)] + ([("relative", self.relative)] if self.relative else [])
        return pd.DataFrame([{"outcome": self.outcome, "method": self.method, "scale": s,
                              "estimate": e.estimate, "se": e.se, "ci_low": e.ci_low,
                              "ci_high": e.ci_high, "n_treated": self.n_treated,
                              "n_control": self.n_control} for s, e in rows])


def _propensity_logit(z: np.ndarray, d: np.ndarray, weights: np.ndarray, tol: float) -> np.ndarray | None:
    """Logit of the propensity score: logistic regression of ``d`` on ``z`` (standardized
    covariates) with an intercept, rows weighted by their sampling ``weights``, by Newton-Raphson
    to convergence. It minimises the weighted mean log-loss plus ``RIDGE / 2 * |slopes|^2``, a
    ridge too small to move a well-determined fit (logits by < 1e-5 on the Dehejia-Wahba data)
    that keeps the fit unique and finite under collinear columns or (quasi-)separation.

    Stops after the step whose Newton decrement sqrt(g' H^-1 g) is at most ``tol`` (convergence
    is quadratic, so that step leaves an error far below ``tol``), or once the decrement is below
    1e-8 and no longer falls (the floating-point floor), provided that step moved no coefficient
    by more than sqrt(``tol``): under separation the loss is flat to rounding long before the
    coefficients reach the ridge's optimum, and stopping on the loss alone would leave the
    separated rows' scores at wherever the rounding stopped them. While the decrement exceeds
    0.1 a step is halved until the loss falls enough (Armijo). ``None`` if not converged in ``NEWTON_STEPS``."""
    x = np.c_[np.ones(len(d)), z]
    share = weights / weights.sum()
    ridge = np.r_[0.0, np.full(z.shape[1], RIDGE)]
    p1 = share @ d
    beta = np.r_[np.log(p1 / (1 - p1)), np.zeros(z.shape[1])]
    eta = x @ beta

    def loss(b: np.ndarray, linear: np.ndarray) -> float:
        return share @ (np.logaddexp(0.0, linear) - d * linear) + ridge @ b**2 / 2

    last = np.inf
    for _ in range(NEWTON_STEPS):
        e = expit(eta)
        gradient = x.T @ (share * (e - d)) + ridge * beta
        hessian = (x * (share * e * (1 - e))[:, None]).T @ x + np.diag(ridge)
        step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        decrement = np.sqrt(max(gradient @ step, 0.0))
        shift, t = x @ step, 1.0
        if decrement > 0.1:
            start = loss(beta, eta)
            while loss(beta - t * step, eta - t * shift) > start - t * decrement**2 / 4 and t > 1e-10:
                t /= 2
        beta, eta = beta - t * step, eta - t * shift
        settled = np.max(np.abs(t * step)) <= np.sqrt(tol)  # the coefficients too, not only the loss
        if settled and (decrement <= tol or last <= decrement <= 1e-8):
            return eta
        last = decrement
    return None


def _one_class(d: np.ndarray, after_trimming: bool = False) -> Unavailable | None:
    """Why a propensity model cannot be fitted on treatment ``d``: it needs treated and control rows."""
    n1 = int(d.sum())
    if 0 < n1 < len(d):
        return None
    key = "causal.att.one_class_after_trimming" if after_trimming else "causal.att.one_class"
    return Unavailable(key, {"treated": n1, "control": len(d) - n1})


def _cluster_variance(psi: np.ndarray, groups: np.ndarray, weights: np.ndarray) -> float:
    """Variance of sum(weights psi) / sum(weights) from per-row influence values, weighted sums
    within clusters, with the usual G / (G - 1) small-sample factor. With sampling weights
    (1 / inclusion probability) this includes the sampling noise."""
    sums = np.bincount(groups, weights=weights * psi)
    g = len(sums)
    return float(g / max(g - 1, 1) * np.sum(sums**2) / weights.sum() ** 2)


def _within(values: np.ndarray, queries: np.ndarray, k: int, width: float = np.inf,
            own: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``[lo, hi)`` of the sorted ``values`` within min(d_k + TIE_BAND, ``width``) of
    each query, d_k its k-th smallest distance to ``values``: its ``k`` nearest values and all
    values tied with the k-th. ``own``: each query's own position in ``values`` (queries that
    are values themselves), left out of d_k but inside the range. Empty: none within ``width``."""
    n = len(values)
    pos = np.searchsorted(values, queries) if own is None else own
    window = pos[:, None] + np.arange(-k, k + 1)  # the k nearest lie within k places of pos
    candidate = (window >= 0) & (window < n)
    if own is not None:
        candidate &= window != own[:, None]
    distance = np.where(candidate, np.abs(values[window.clip(0, n - 1)] - queries[:, None]), np.inf)
    k = min(k, n - (own is not None))
    radius = np.minimum(np.partition(distance, k - 1, axis=1)[:, k - 1] + TIE_BAND, width)
    return np.searchsorted(values, queries - radius, "left"), np.searchsorted(values, queries + radius, "right")


def _range_sums(lo: np.ndarray, hi: np.ndarray, amounts: np.ndarray, n: int) -> np.ndarray:
    """At each of ``n`` positions, the sum of ``amounts`` over the ranges ``[lo, hi)`` covering it
    (exactly 0 where none does)."""
    change = np.bincount(lo, amounts, n + 1) - np.bincount(hi, amounts, n + 1)
    covered = np.cumsum(np.bincount(lo, minlength=n + 1) - np.bincount(hi, minlength=n + 1))[:n] > 0
    return np.where(covered, np.cumsum(change)[:n], 0.0)


def _nearest_controls(logit: np.ndarray, d: np.ndarray, y: np.ndarray, cells: np.ndarray, k: int,
                      width: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest-neighbour matching on the logit propensity score, with replacement, within
    ``cells`` (exact matching): a treated row's matches are its ``k`` nearest controls and all
    controls tied with the k-th (``TIE_BAND``), each weighted 1 / (number of matches) as in
    Abadie & Imbens (2006), among the controls within ``width`` (the caliper); a treated row
    without one is left unmatched.

    Per row: ``weight`` (treated: 1 if matched, else 0; control: K, its summed match weights),
    ``weight_sq`` (control: its summed squared match weights) and ``y0`` (matched treated: the
    mean outcome of its matches; NaN elsewhere)."""
    weight, weight_sq, y0 = np.zeros(len(d)), np.zeros(len(d)), np.full(len(d), np.nan)
    for cell in np.unique(cells[d == 1]):
        t = np.flatnonzero((cells == cell) & (d == 1))
        c = np.flatnonzero((cells == cell) & (d == 0))
        if len(c) == 0:
            continue
        c = c[np.argsort(logit[c], kind="stable")]
        lo, hi = _within(logit[c], logit[t], k, width)
        matched = hi > lo
        t, lo, hi = t[matched], lo[matched], hi[matched]
        share = 1.0 / (hi - lo)
        weight[t] = 1.0
        weight[c] = _range_sums(lo, hi, share, len(c))
        weight_sq[c] = _range_sums(lo, hi, share**2, len(c))
        total = np.r_[0.0, np.cumsum(y[c])]
        y0[t] = (total[hi] - total[lo]) * share
    return weight, weight_sq, y0


def _conditional_variance(logit: np.ndarray, y: np.ndarray, j: int) -> np.ndarray:
    """Abadie & Imbens (2006) estimate of var(y | score) at each row of one treatment group:
    m / (m + 1) * (y - mean outcome of its m matches)^2, its matches being its ``j`` nearest other
    rows on the logit score and those tied with the j-th. NaN with fewer than two rows."""
    if len(y) < 2:
        return np.full(len(y), np.nan)
    order = np.argsort(logit, kind="stable")
    v, yv = logit[order], y[order]
    lo, hi = _within(v, v, j, own=np.arange(len(v)))
    m = hi - lo - 1
    total = np.r_[0.0, np.cumsum(yv)]
    out = np.empty(len(y))
    out[order] = m / (m + 1) * (yv - (total[hi] - total[lo] - yv) / m) ** 2
    return out


def _abadie_imbens_variance(terms: np.ndarray, control_excess: float, n1: int) -> float:
    """Abadie & Imbens (2006) variance of a matching ATT: (sum over matched treated of
    terms^2 + sum over controls of (K^2 - K') sigma^2) / n1^2; ``terms`` = y - y0 - ATT,
    ``control_excess`` the controls' sum."""
    return float((terms @ terms + control_excess) / n1**2)


def estimate_att(df: pd.DataFrame, treatment: str, outcome: str, covariates: list[str],
                 method: ATTMethod = "aipw", cluster: str | None = None, level: str | None = None,
                 exact: list[str] | None = None, neighbours: int = 1, trim: float = 0.01,
                 weights: str | None = None, caliper: float | None = 0.2,
                 tol: float = 1e-8) -> ATTResult | Unavailable:
    """Average treatment effect on the treated of a binary ``treatment`` (0/1 column) on
    ``outcome``, adjusting for pre-treatment ``covariates`` (numeric or categorical columns).
    Assumes no unmeasured confounding given the covariates and controls comparable to every
    treated row (overlap).

    The propensity score e is a logistic regression on the standardized covariates, fitted to
    convergence (Newton decrement <= ``tol``; a ridge of 1e-12 keeps it finite, see
    :func:`_propensity_logit`), so the estimates do not depend on ``tol`` once converged, nor on
    the order of the rows (up to rounding: matching treats distances within 1e-9 as ties).

    ``method``:
    * ``"ipw"`` — inverse-probability weighting: controls weighted by e/(1-e) (normalised);
    * ``"matching"`` — each treated row matched to its ``neighbours`` nearest controls on the
      logit propensity score, with replacement (within the ``exact`` groups, if given), all
      controls tied with the last one kept with a shared weight, among controls within
      ``caliper`` pooled standard deviations of the logit score (Austin 2011; ``None``: no
      caliper). Treated rows without such a control are dropped (``n_unmatched``): the estimate
      is then the effect on the matched treated;
    * ``"aipw"`` — doubly robust: IPW of the residuals of a linear outcome model fitted on the
      controls (consistent if either model is right). With a pre/post change as ``outcome`` this
      is the doubly robust DiD of Sant'Anna & Zhao (2020).

    Rows with a propensity score above 1 - ``trim`` (treated without comparable controls) are
    dropped and the model refit; low scores need no trimming for the ATT (such controls simply
    get little weight).
    Standard errors of IPW and AIPW are sandwich (influence-function) errors, summed within
    ``cluster`` when rows of one customer repeat; for IPW they include the effect of estimating
    the propensity model. For matching, without ``cluster``, the Abadie & Imbens (2006) variance
    for the ATT: the conditional variances estimated by matching each control to its 2 nearest
    controls on the score, the controls weighted by how often they are used; the propensity
    score is treated as known (no Abadie & Imbens 2016 adjustment, which for the ATT can go
    either way). With ``cluster``, matching errors are influence-function errors summed within
    clusters, conditional on the matched sample, with a regression estimate of the conditional
    mean. ``level``: when ``outcome`` is a change, the column holding the post-period level, so
    that the relative effect is ATT / (treated mean level - ATT); by default the outcome itself.

    ``weights``: a column of sampling weights (a row stands for that many, e.g. controls kept at
    random with probability 1 / weight). The propensity and outcome models, the means and the
    clustered influence sums are weighted, so IPW and AIPW estimate the full-sample effect and
    their intervals include the sampling noise; matching draws on the sampled controls as they
    are (a thinner pool) and only the balance before weighting uses the weights.

    :class:`Unavailable` when the propensity model sees one class only (no treated or no
    control rows, before or after trimming), does not converge, or matching finds no control for
    any treated row.
    """
    exact = list(exact or [])
    names = list(covariates) + [c for c in exact if c not in covariates]
    complete = df[[outcome] + ([level] if level else [])].notna().all(axis=1).to_numpy()
    data = df if complete.all() else df[complete]
    if (one_class := _one_class(data[treatment].to_numpy(dtype=int))) is not None:
        return one_class
    x = design_matrix(data, names)
    s = np.ones(len(data)) if weights is None else data[weights].to_numpy(dtype=float)
    logit = _propensity_logit(_standardized(x), data[treatment].to_numpy(dtype=float), s, tol)
    if logit is None:
        return Unavailable("causal.att.not_converged", {"steps": NEWTON_STEPS})
    keep = expit(logit) <= 1 - trim
    if not keep.all():
        data, x, s = data[keep], x[keep], s[keep]
        x = x.loc[:, [v.min() < v.max() for v in _columns(x)]]
    d = data[treatment].to_numpy(dtype=int)
    if (one_class := _one_class(d, after_trimming=True)) is not None:
        return one_class
    z = _standardized(x)
    if (logit := _propensity_logit(z, d.astype(float), s, tol)) is None:
        return Unavailable("causal.att.not_converged", {"steps": NEWTON_STEPS})
    e, r = expit(logit), np.exp(logit)
    y = data[outcome].to_numpy(dtype=float)
    lv = data[level or outcome].to_numpy(dtype=float)
    groups = pd.factorize(data[cluster] if cluster else pd.Series(np.arange(len(data))))[0]
    n, p1 = s.sum(), np.sum(s * d) / s.sum()
    m0 = LinearRegression(copy_X=False).fit(z[d == 0], y[d == 0], sample_weight=s[d == 0]).predict(z)
    base = s
    n_unmatched, control_excess = 0, None  # control_excess: the Abadie-Imbens term of matching

    if method == "ipw":
        w = np.where(d == 1, 1.0, r * s)
        q = np.sum(s * (1 - d) * r) / n
        mu1 = np.sum(s * d * y) / np.sum(s * d)
        mu0 = np.sum(s * (1 - d) * r * y) / np.sum(s * (1 - d) * r)
        tau = mu1 - mu0
        # propensity-estimation term: d mu0 / d gamma, times the logit score's influence
        xi = np.c_[np.ones(len(d)), z]
        grad = (s * (1 - d) * r * (y - mu0)) @ xi / n / q
        hessian = (xi * (s * e * (1 - e))[:, None]).T @ xi / n
        correction = xi * (d - e)[:, None] @ (np.linalg.pinv(hessian) @ grad)  # pinv: collinear dummies
        psi = d * (y - mu1) / p1 - (1 - d) * r * (y - mu0) / q - correction
    elif method == "aipw":
        w = np.where(d == 1, 1.0, r * s)
        q = np.sum(s * (1 - d) * r) / n
        resid = y - m0
        delta0 = np.sum(s * (1 - d) * r * resid) / np.sum(s * (1 - d) * r)
        tau = np.sum(s * d * resid) / np.sum(s * d) - delta0
        psi = d * (resid - tau) / p1 - (1 - d) * r * (resid - delta0) / q
    elif method == "matching":
        cells = (pd.factorize(data[exact].astype(str).agg("|".join, axis=1))[0] if exact
                 else np.zeros(len(d), dtype=int))
        pooled_sd = np.sqrt((_variance(logit[d == 1]) + _variance(logit[d == 0])) / 2)
        width = np.inf if caliper is None else caliper * pooled_sd
        w, w_sq, y0 = _nearest_controls(logit, d, y, cells, neighbours, width)
        used = (d == 0) | (w > 0)  # treated rows without a control in their cell or caliper drop out
        n_unmatched = int((~used).sum())
        if not d[used].any():
            if np.isin(cells[d == 1], cells[d == 0]).any():
                return Unavailable("causal.att.no_match_within_caliper", {"treated": int(d.sum())})
            return Unavailable("causal.att.no_match", {"treated": int(d.sum())})
        if cluster is None:
            sigma2 = _conditional_variance(logit[d == 0], y[d == 0], VARIANCE_MATCHES)
            excess = w[d == 0] ** 2 - w_sq[d == 0]  # K^2 - K' (0 for a control used once)
            control_excess = float(np.sum(np.where(excess > 0, excess * sigma2, 0.0)))
        d, w, y, y0, lv, m0, groups, x = (v[used] for v in (d, w, y, y0, lv, m0, groups, x))
        base, s = s[used], np.ones(len(d))  # the matched sample as it is
        n1 = d.sum()
        tau = float(np.mean((y - y0)[d == 1]))
        psi = (d * (y - m0 - tau) - (1 - d) * w * (y - m0)) * len(d) / n1
        p1 = d.mean()
    else:
        raise ValueError(f"unknown method {method!r}: use 'ipw', 'matching' or 'aipw'")

    n_treated = int(pd.Series(groups[d == 1]).nunique())
    n_control = int(pd.Series(groups[(d == 0) & (w > 0)]).nunique())
    mean_level = np.sum(s * d * lv) / np.sum(s * d)
    kappa = mean_level - tau
    psi_level = d * (lv - mean_level) / p1
    if control_excess is not None:
        terms, level_terms, n1 = (y - y0 - tau)[d == 1], (lv - mean_level)[d == 1], int(d.sum())

    def variance(a: float, b: float) -> float:
        """Variance of a * ATT + b * (treated mean level), by Abadie-Imbens or influence values."""
        if control_excess is None:
            return _cluster_variance(a * psi + b * psi_level, groups, s)
        return _abadie_imbens_variance(a * terms + b * level_terms, a**2 * control_excess, n1)

    est = Estimate.normal(tau, np.sqrt(variance(1.0, 0.0)), n_treated + n_control, method)
    relative = None
    if kappa > 0:  # ATT / kappa with kappa = mean level - ATT: gradient (mean level, -ATT) / kappa^2
        relative = Estimate.normal(tau / kappa, np.sqrt(variance(mean_level / kappa**2, -tau / kappa**2)),
                                   n_treated + n_control, method)
    scores = pd.DataFrame({"treated": data[treatment].to_numpy(dtype=int), "propensity": e})
    return ATTResult(method, outcome, est, relative, float(kappa), n_treated, n_control,
                     int((~keep).sum()), balance_table(x, d == 1, w, None if weights is None else base),
                     scores, n_unmatched, caliper if method == "matching" else None)
