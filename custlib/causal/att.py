"""Average treatment effects on the treated (ATT) of a binary intervention from observational
data: inverse-probability weighting, nearest-neighbour matching on the propensity score and
doubly robust AIPW, with sandwich (influence-function) errors clustered on repeated units, a
covariate balance table (standardized mean differences) and the propensity scores for overlap
checks. Data-agnostic: any frame with a 0/1 treatment column, an outcome and pre-treatment
covariates (a loyalty programme, a marketing campaign ...).

With a pre/post change as the outcome, :func:`estimate_att` with ``method="aipw"`` is the doubly
robust difference-in-differences of Sant'Anna & Zhao (2020).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neighbors import NearestNeighbors

from custlib.stats import Estimate, Unavailable

ATTMethod = Literal["ipw", "matching", "aipw"]
MISSING_LEVEL = "missing"  # the level of a missing category in design_matrix


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


def _propensity(z: np.ndarray, d: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Logistic-regression propensity scores (scikit-learn, effectively unpenalised on
    standardized covariates; rows weighted by their sampling ``weights``)."""
    model = LogisticRegression(C=1e4, solver="newton-cholesky", max_iter=200)
    return model.fit(z, d, sample_weight=weights).predict_proba(z)[:, 1]


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
                 exact: list[str] | None = None, neighbours: int = 1, trim: float = 0.01,
                 weights: str | None = None) -> ATTResult | Unavailable:
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

    ``weights``: a column of sampling weights (a row stands for that many, e.g. controls kept at
    random with probability 1 / weight). The propensity and outcome models, the means and the
    clustered influence sums are weighted, so IPW and AIPW estimate the full-sample effect and
    their intervals include the sampling noise; matching draws on the sampled controls as they
    are (a thinner pool) and only the balance before weighting uses the weights.

    :class:`Unavailable` when the propensity model sees one class only (no treated or no
    control rows, before or after trimming) or matching finds no control for any treated row.
    """
    exact = list(exact or [])
    names = list(covariates) + [c for c in exact if c not in covariates]
    complete = df[[outcome] + ([level] if level else [])].notna().all(axis=1).to_numpy()
    data = df if complete.all() else df[complete]
    if (one_class := _one_class(data[treatment].to_numpy(dtype=int))) is not None:
        return one_class
    x = design_matrix(data, names)
    s = np.ones(len(data)) if weights is None else data[weights].to_numpy(dtype=float)
    keep = _propensity(_standardized(x), data[treatment].to_numpy(dtype=int), s) <= 1 - trim
    if not keep.all():
        data, x, s = data[keep], x[keep], s[keep]
        x = x.loc[:, [v.min() < v.max() for v in _columns(x)]]
    d = data[treatment].to_numpy(dtype=int)
    if (one_class := _one_class(d, after_trimming=True)) is not None:
        return one_class
    z = _standardized(x)
    e = _propensity(z, d, s)
    y = data[outcome].to_numpy(dtype=float)
    lv = data[level or outcome].to_numpy(dtype=float)
    groups = pd.factorize(data[cluster] if cluster else pd.Series(np.arange(len(data))))[0]
    n, p1 = s.sum(), np.sum(s * d) / s.sum()
    r = e / (1 - e)
    m0 = LinearRegression(copy_X=False).fit(z[d == 0], y[d == 0], sample_weight=s[d == 0]).predict(z)
    base = s

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
        exact_key = (pd.factorize(data[exact].astype(str).agg("|".join, axis=1))[0] if exact
                     else np.zeros(len(d), dtype=int))
        w = _nearest_controls(e, d, exact_key, neighbours)
        used = (d == 0) | (w > 0)  # treated rows without a control in their exact group drop out
        if not d[used].any():
            return Unavailable("causal.att.no_match", {"treated": int(d.sum())})
        d, w, y, lv, m0, groups, x = d[used], w[used], y[used], lv[used], m0[used], groups[used], x[used]
        base, s = s[used], np.ones(len(d))  # the matched sample as it is
        n1 = d.sum()
        tau = np.sum(d * y) / n1 - np.sum((1 - d) * w * y) / n1
        psi = (d * (y - m0 - tau) - (1 - d) * w * (y - m0)) * len(d) / n1
        p1 = d.mean()
    else:
        raise ValueError(f"unknown method {method!r}: use 'ipw', 'matching' or 'aipw'")

    n_treated = int(pd.Series(groups[d == 1]).nunique())
    n_control = int(pd.Series(groups[(d == 0) & (w > 0)]).nunique())
    est = Estimate.normal(tau, np.sqrt(_cluster_variance(psi, groups, s)), n_treated + n_control, method)
    mean_level = np.sum(s * d * lv) / np.sum(s * d)
    kappa = mean_level - tau
    relative = None
    if kappa > 0:
        psi_level = d * (lv - mean_level) / p1
        psi_rel = (psi * mean_level - tau * psi_level) / kappa**2
        relative = Estimate.normal(tau / kappa, np.sqrt(_cluster_variance(psi_rel, groups, s)),
                                   n_treated + n_control, method)
    scores = pd.DataFrame({"treated": data[treatment].to_numpy(dtype=int), "propensity": e})
    return ATTResult(method, outcome, est, relative, float(kappa), n_treated, n_control,
                     int((~keep).sum()), balance_table(x, d == 1, w, None if weights is None else base), scores)

