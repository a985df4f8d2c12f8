"""Customer lifetime value: BG/NBD, Pareto/NBD and BG/BB purchase models, Gamma-Gamma spend
model, discounted CLV.

The models follow the papers and take the per-customer summary of
:func:`custlib.features.customer_summary` (``frequency``, ``recency``, ``T`` in periods,
``monetary_value`` in currency), so a lifetimes user will recognise the API:

* BG/NBD — Fader, Hardie & Lee (2005), "Counting your customers the easy way": while alive a
  customer buys at rate ``lambda ~ Gamma(r, alpha)`` per period and drops out after each purchase
  with probability ``p ~ Beta(a, b)``.
* Pareto/NBD — Schmittlein, Morrison & Colombo (1987), "Counting your customers: who are they and
  what will they do next?": while alive a customer buys at rate ``lambda ~ Gamma(r, alpha)`` and
  dies at rate ``mu ~ Gamma(s, beta)`` per period (likelihood as in Fader & Hardie's note "A note
  on deriving the Pareto/NBD model and related expressions").
* BG/BB — Fader, Hardie & Shang (2010), "Customer-base analysis in a discrete-time noncontractual
  setting": at each of ``n`` discrete opportunities an alive customer transacts with probability
  ``p ~ Beta(alpha, beta)`` and dies with probability ``theta ~ Beta(gamma, delta)``.
* Gamma-Gamma — Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves": the value of a
  purchase is ``Gamma(p, nu)`` with ``nu ~ Gamma(q, v)``, independent of the purchase process.

All are fitted by maximum likelihood (scipy, analytic gradient on log-parameters); standard
errors come from the inverse of the numerical Hessian of the log-likelihood (statsmodels).
Customers with identical ``(frequency, recency, T)`` are fitted once with a weight, so a million
customers fit in seconds. A fit never raises for a degenerate optimum: ``converged_`` is False and
``warnings_`` says why (:class:`FitWarning`; see :meth:`_MaximumLikelihoodModel._store`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import numpy as np
import pandas as pd
from scipy import optimize, special
from statsmodels.tools.numdiff import approx_fprime
from threadpoolctl import threadpool_limits

from custlib.stats import Z95, Estimate

DAYS_PER_MONTH = 365.25 / 12


def _compress(summary: pd.DataFrame, columns: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Unique rows of ``columns`` and how many customers share each."""
    grouped = summary.groupby(columns, sort=False).size()
    arrays = {c: grouped.index.get_level_values(c).to_numpy(float) for c in columns}
    return arrays, grouped.to_numpy(float)


# What each FitWarning key says to a library user; the reports word them in their own
# language from the catalogue (``lifecycle.model_warnings.<key>``).
# why a fit is not trusted (worded in the report's catalogue, lifecycle.model_warnings)
FIT_WARNING_KEYS = ("optimiser_failed", "no_finite_maximum", "boundary_zero", "boundary_infinity",
                    "singular_information", "standard_errors", "no_repeat_purchases", "no_transactions",
                    "no_repeat_spend", "no_finite_mean_spend")


class FitWarning(str):
    """Why a fit is not trusted: ``key`` (one of :data:`FIT_WARNING_KEYS`) and its ``values``
    (``parameter`` and ``value`` at the boundary, ``customers`` without repeats); as text the key
    with its values, e.g. ``boundary_zero (parameter=a, value=1.1e-06)``."""

    def __new__(cls, key: str, values: dict | None = None) -> Self:
        if key not in FIT_WARNING_KEYS:
            raise ValueError(f"unknown fit warning {key!r}")
        values = dict(values or {})
        shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
        out = super().__new__(cls, f"{key} ({shown})" if shown else key)
        out.key, out.values = key, values
        return out

    def __reduce__(self):
        return type(self), (self.key, self.values)


NEWTON_STEP = 1e-6  # log-parameters: an optimiser stop this close to a stationary point is a maximum


def _maximise(neg_ll_and_grad, n_params: int, start: np.ndarray | None = None) -> tuple[np.ndarray, list[FitWarning]]:
    """Maximise a log-likelihood over log-parameters; returns the natural parameters and what
    went wrong (empty when the optimiser converged to a finite, positive maximum).

    L-BFGS-B stops where the objective is flat to its tolerance, at a point that moves with the
    last digits of the data's sums (one engine's sums against another's). Its result is polished
    by Newton steps on the analytic gradient (numerical Hessian) while the objective is convex
    there and the steps stay below :data:`NEWTON_STEP` in every log-parameter, which lands on the
    stationary point itself. L-BFGS-B's line search can also stop right at a maximum and report
    failure; a stop that polishes this way is a maximum. Otherwise the fit is flagged."""
    x0 = np.zeros(n_params) if start is None else np.log(start)
    options = {"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9}
    # a 4-parameter problem: BLAS threads only add contention; the line search may probe extreme
    # values that overflow, and the result is checked below
    with threadpool_limits(1), np.errstate(all="ignore"):
        res = optimize.minimize(neg_ll_and_grad, x0, jac=True, method="L-BFGS-B", options=options)
        x, polished = _polish(lambda x: neg_ll_and_grad(x)[1], res.x)
    theta = np.exp(x)
    problems = [] if res.success or polished else [FitWarning("optimiser_failed")]
    if not np.all(np.isfinite(theta) & (theta > 0)):
        problems.append(FitWarning("no_finite_maximum"))
    return theta, problems


def _polish(gradient, x: np.ndarray, iterations: int = 4) -> tuple[np.ndarray, bool]:
    """Newton steps x − H⁻¹ g from ``x`` towards the stationary point of a convex objective, at
    most ``iterations``, each below :data:`NEWTON_STEP` in every coordinate, until the step is
    below 1e-12. Returns the point and whether the steps converged (else ``x`` unchanged)."""
    start = x
    for _ in range(iterations):
        g = gradient(x)
        if not np.all(np.isfinite(x) & np.isfinite(g)):
            return start, False
        hess = approx_fprime(x, gradient, centered=True)
        hess = (hess + hess.T) / 2
        if not (np.all(np.isfinite(hess)) and np.linalg.eigvalsh(hess).min() > 0):
            return start, False
        step = np.linalg.solve(hess, g)
        if np.max(np.abs(step)) > NEWTON_STEP:
            return start, False
        x = x - step
        if np.max(np.abs(step)) < 1e-12:
            break
    return x, True


def _standard_errors(score, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[FitWarning]]:
    """Standard errors and covariance from the inverse observed information (numerical Hessian
    of the score); NaN, with the reason, when the information is not positive definite."""
    hess = approx_fprime(theta, score, centered=True)
    info = -(hess + hess.T) / 2
    if not (np.all(np.isfinite(info)) and np.linalg.eigvalsh(info).min() > 0):
        k = len(theta)
        return np.full(k, np.nan), np.full((k, k), np.nan), [FitWarning("singular_information")]
    cov = np.linalg.inv(info)
    return np.sqrt(np.clip(np.diag(cov), 0, None)), cov, []


def _param_table(names: list[str], theta: np.ndarray, se: np.ndarray, n: int) -> pd.DataFrame:
    """Tidy parameter table; intervals are Wald intervals on the log scale (parameters > 0)."""
    rows = {}
    for name, est, s in zip(names, theta, se):
        half = Z95 * s / est
        rows[name] = Estimate(float(est), float(s), float(est * np.exp(-half)), float(est * np.exp(half)),
                              n, "maximum likelihood, log-scale Wald interval")
    return pd.DataFrame([{"parameter": k, **v.to_dict()} for k, v in rows.items()])


# A fitted log-parameter (relative to its data scale) beyond +-12 — a shape parameter below 6e-6 or
# above 1.6e5, or a scale parameter that far from the data's scale — means the likelihood was
# still rising towards the edge of the parameter space: a degenerate optimum (for example a
# mixing distribution collapsing to a point mass), not an estimate.
LOG_PARAMETER_BOUNDARY = 12.0


def _boundary_problems(names: list[str], theta: np.ndarray, scales: np.ndarray) -> list[FitWarning]:
    """Warnings for parameters at the edge of the parameter space (running off towards zero or
    infinity)."""
    log_rel = np.log(theta / scales)
    return [FitWarning("boundary_zero" if rel < 0 else "boundary_infinity",
                       {"parameter": name, "value": float(value)})
            for name, value, rel in zip(names, theta, log_rel) if abs(rel) > LOG_PARAMETER_BOUNDARY]


def _mean_age(T: np.ndarray, w: np.ndarray) -> float:
    """Customer-weighted mean observation length (periods): the data's scale of a rate parameter."""
    return float(np.average(T, weights=w)) if w.sum() > 0 and np.any(T > 0) else 1.0


class _MaximumLikelihoodModel:
    """Shared fitted attributes of the models; a degenerate fit says so (``converged_``
    False, the reasons in ``warnings_``) instead of raising."""

    names: list[str]

    def _fit(self, log_likelihood, n: float, unidentified: FitWarning | None = None,
             scales: np.ndarray | None = None, fit_scales: np.ndarray | None = None) -> None:
        """Maximise ``log_likelihood(theta, gradient=False)`` (with ``gradient=True``: the value
        and its gradient) over the log-parameters, per customer (``n``: customers, weights
        summed), then :meth:`_store`. ``unidentified``: why the data cannot identify the model
        (nothing is fitted), or None; ``scales``: as in :meth:`_store`; ``fit_scales``: the
        parameters are optimised as ``log(theta / fit_scales)`` (a well-scaled start at 1)."""
        k = len(self.names)
        unit = np.ones(k) if fit_scales is None else fit_scales

        def objective(log_theta):
            theta = np.exp(log_theta) * unit
            ll, grad = log_likelihood(theta, gradient=True)
            return -ll / n, -grad * theta / n

        if unidentified is None:
            theta, problems = _maximise(objective, k)
            theta = theta * unit
        else:
            theta, problems = np.full(k, np.nan), [unidentified]
        self._store(theta, problems, lambda th: log_likelihood(th, gradient=True)[1], log_likelihood, int(n),
                    scales)

    def _store(self, theta: np.ndarray, problems: list[FitWarning], score, log_likelihood, n: int,
               scales: np.ndarray | None = None) -> None:
        """Set the learned attributes from ``theta`` (NaN when nothing could be fitted).

        ``converged_`` is False, with the reasons in ``warnings_`` (:class:`FitWarning`), when the
        optimiser failed, when a parameter is at the edge of the parameter space
        (:data:`LOG_PARAMETER_BOUNDARY` relative to ``scales``, the data's scale for each
        parameter, 1 for shape parameters) or when the information matrix is not finite and
        positive definite (NaN standard errors).
        """
        k = len(self.names)
        se, cov = np.full(k, np.nan), np.full((k, k), np.nan)
        ll = float("nan")
        if np.all(np.isfinite(theta) & (theta > 0)):
            problems = [*problems, *_boundary_problems(self.names, theta, np.ones(k) if scales is None else scales)]
            se, cov, singular = _standard_errors(score, theta)
            problems = [*problems, *singular]
            if not singular and not np.all(np.isfinite(se) & (se > 0)):
                problems.append(FitWarning("standard_errors"))
            ll = log_likelihood(theta)
        self.params_ = pd.Series(theta, index=self.names)
        self.standard_errors_ = pd.Series(se, index=self.names)
        self.covariance_ = pd.DataFrame(cov, index=self.names, columns=self.names)
        self.log_likelihood_ = ll
        self.n_customers_ = n
        self.summary = _param_table(self.names, theta, se, n)
        self.converged_ = not problems
        self.warnings_ = problems


class BetaGeoModel(_MaximumLikelihoodModel):
    """BG/NBD model of repeat purchases (periods as in the summary, usually weeks).

    Learned attributes after :meth:`fit`: ``params_`` (Series r, alpha, a, b), ``standard_errors_``,
    ``covariance_`` (of r, alpha, a, b), ``log_likelihood_`` (total, natural log),
    ``n_customers_``, ``summary`` (tidy parameter table with 95% intervals), ``converged_`` and
    ``warnings_`` (why not). Without any repeat purchase the parameters are not identified and
    nothing is fitted (NaN).
    """

    names = ["r", "alpha", "a", "b"]

    @staticmethod
    def _log_likelihood(theta: np.ndarray, x, t_x, T, w, gradient: bool = False):
        """Total log-likelihood (FHL 2005, eq. 6) and optionally its gradient in (r, alpha, a, b)."""
        r, alpha, a, b = theta
        rx = r + x
        repeat = x > 0
        log_a_term = -rx * np.log(alpha + T)
        log_b_term = np.where(repeat, np.log(a) - np.log(np.where(repeat, b + x - 1, 1.0))
                              - rx * np.log(alpha + t_x), -np.inf)
        log_mix = np.logaddexp(log_a_term, log_b_term)
        ll_i = (special.gammaln(rx) - special.gammaln(r) + r * np.log(alpha)
                + special.betaln(a, b + x) - special.betaln(a, b) + log_mix)
        ll = float((w * ll_i).sum())
        if not gradient:
            return ll
        share_b = np.exp(log_b_term - log_mix)
        share_a = 1.0 - share_b
        dg = special.digamma
        d_r = dg(rx) - dg(r) + np.log(alpha) - share_a * np.log(alpha + T) - share_b * np.log(alpha + t_x)
        d_alpha = r / alpha - share_a * rx / (alpha + T) - share_b * rx / (alpha + t_x)
        d_a = dg(a + b) - dg(a + b + x) + share_b / a
        d_b = (dg(b + x) - dg(a + b + x) - dg(b) + dg(a + b)
               - share_b / np.where(repeat, b + x - 1, 1.0))
        grad = np.array([(w * d).sum() for d in (d_r, d_alpha, d_a, d_b)])
        return ll, grad

    def fit(self, summary: pd.DataFrame) -> "BetaGeoModel":
        """Maximum-likelihood fit on ``frequency``, ``recency``, ``T`` (one row per customer)."""
        data, w = _compress(summary, ["frequency", "recency", "T"])
        x, t_x, T = data["frequency"], data["recency"], data["T"]
        total = w.sum()
        self._fit(lambda th, gradient=False: self._log_likelihood(th, x, t_x, T, w, gradient=gradient), total,
                  None if np.any(x > 0) else FitWarning("no_repeat_purchases", {"customers": int(total)}),
                  scales=np.array([1.0, _mean_age(T, w), 1.0, 1.0]))
        return self

    def _theta(self, params: pd.Series | None) -> tuple[float, float, float, float]:
        p = self.params_ if params is None else params
        return float(p["r"]), float(p["alpha"]), float(p["a"]), float(p["b"])

    def probability_alive(self, summary: pd.DataFrame, params: pd.Series | None = None) -> pd.Series:
        """P(still active at the end of the summary's period | history) (FHL 2005, eq. 11)."""
        r, alpha, a, b = self._theta(params)
        x, t_x, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
        repeat = x > 0
        log_odds_dead = (np.log(a) - np.log(np.where(repeat, b + x - 1, 1.0))
                         + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)))
        p = np.where(repeat, special.expit(-log_odds_dead), 1.0)
        return pd.Series(p, index=summary.index, name="p_alive")

    def purchases_if_alive(self, t, x, T, params: pd.Series | None = None) -> np.ndarray:
        """Expected repeat purchases in the next ``t`` periods of a customer who is still alive,
        after ``x`` repeat purchases in ``T`` periods (FHL 2005, eq. 10 without P(alive); the 2F1
        term in its Euler-transformed, numerically stable form). Arrays broadcast."""
        r, alpha, a, b = self._theta(params)
        z = t / (alpha + T + t)
        hyp = (1 - z) ** (a - 1) * special.hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
        return (a + b + x - 1) / (a - 1) * (1 - hyp)

    def expected_purchases(self, t: float, summary: pd.DataFrame, params: pd.Series | None = None) -> pd.Series:
        """Expected repeat purchases in the next ``t`` periods given each customer's history
        (FHL 2005, eq. 10): :meth:`purchases_if_alive` x P(alive)."""
        x, T = summary["frequency"].to_numpy(float), summary["T"].to_numpy(float)
        values = self.purchases_if_alive(t, x, T, params) * self.probability_alive(summary, params).to_numpy()
        return pd.Series(values, index=summary.index, name="expected_purchases")

    def expected_purchases_new_customer(self, t, params: pd.Series | None = None) -> np.ndarray:
        """Expected repeat purchases within ``t`` periods of a first purchase (FHL 2005, eq. 9)."""
        r, alpha, a, b = self._theta(params)
        t = np.asarray(t, dtype=float)
        z = t / (alpha + t)
        hyp = (1 - z) ** (a - 1) * special.hyp2f1(a + b - 1 - r, a - 1, a + b - 1, z)
        return (a + b - 1) / (a - 1) * (1 - hyp)

    def probability_no_purchase(self, t: float, summary: pd.DataFrame,
                                params: pd.Series | None = None) -> pd.Series:
        """P(no purchase in the next ``t`` periods | history): dropped out, or alive and silent
        (given alive, ``lambda ~ Gamma(r + x, alpha + T)``)."""
        r, alpha, _, _ = self._theta(params)
        x, T = summary["frequency"].to_numpy(float), summary["T"].to_numpy(float)
        alive = self.probability_alive(summary, params).to_numpy()
        silent = ((alpha + T) / (alpha + T + t)) ** (r + x)
        return pd.Series(1 - alive + alive * silent, index=summary.index, name="p_no_purchase")


# Gauss-Legendre rule used on each side of the integrand's peak in _log_power_tail; the integrand
# is followed down to exp(-_TAIL_DROP) of its peak (relative accuracy 1e-10 or better).
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(40)
_TAIL_DROP = 46.0
_TAIL_CHUNK = 20_000  # rows per block, so the rows x nodes arrays stay small


def _log_power_tail(t, c, p, m, q, gradient: bool = False):
    """``log of the integral over tau from t to infinity of (c + tau)^-p (m + tau)^-q``, for
    ``0 < c <= m``, ``t >= 0``, ``p, q >= 0`` and ``p + q > 1`` (arrays broadcast), and optionally
    its derivatives in (c, p, m, q).

    This is the Pareto/NBD tail ``(m + t)^-(p+q-1) 2F1(p+q-1, p; p+q; (m-c)/(m+t)) / (p+q-1)``,
    evaluated without the 2F1 series: with ``y = log((c + tau)/(c + t))`` the log-integrand is
    concave, so it is integrated by Gauss-Legendre on both sides of its peak down to
    ``exp(-46)`` of the peak, all in log space (no overflow for large p, q, t or m/c).
    """
    t, c, p, m, q = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (t, c, p, m, q)))
    shape = t.shape
    t, c, p, m, q = (v.ravel() for v in (t, c, p, m, q))
    out = np.empty(t.size)
    grads = np.empty((4, t.size)) if gradient else None
    for lo in range(0, t.size, _TAIL_CHUNK):
        block = slice(lo, lo + _TAIL_CHUNK)
        res = _log_power_tail_block(t[block], c[block], p[block], m[block], q[block], gradient)
        if gradient:
            out[block], grads[:, block] = res
        else:
            out[block] = res
    if gradient:
        return out.reshape(shape), grads.reshape((4, *shape))
    return out.reshape(shape)


def _log_power_tail_block(t, c, p, m, q, gradient):
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lc = np.log(c + t)
        ld = np.log(m - c)  # -inf when c == m

        def h(y, rows=slice(None)):  # y: one value per row, or a row of nodes per row
            col = (rows,) + (None,) * (y.ndim - 1)
            return (1 - p[col]) * (lc[col] + y) - q[col] * np.logaddexp(ld[col], lc[col] + y)

        def dh(y, rows=slice(None)):
            return (1 - p[rows]) - q[rows] * special.expit(lc[rows] + y - ld[rows])

        # the peak: h' decreases from h'(0) to 1 - p - q < 0
        rising = dh(np.zeros_like(t)) > 0
        ratio = np.where(rising, (1 - p) / q, 0.5)
        peak = np.where(rising, special.logit(ratio) + ld - lc, 0.0)
        top = h(peak)
        target = top - _TAIL_DROP
        # right end: Newton from the right of the root converges monotonically (h is concave)
        # (the ends need not be exact: stop when no end moves by more than 0.01)
        hi = peak + 1.0
        for _ in range(60):
            step = np.clip(hi - (h(hi) - target) / np.minimum(dh(hi), -1e-300), peak, peak + 1e6) - hi
            hi += step
            if np.all(np.abs(step) < 0.01):
                break
        # left end: 0, or Newton from 0 (left of the root, monotone)
        lo = np.zeros_like(t)
        climb = np.flatnonzero(rising & (h(lo) < target))
        if climb.size:
            y = np.zeros(climb.size)
            for _ in range(60):
                step = np.clip(y - (h(y, climb) - target[climb]) / np.maximum(dh(y, climb), 1e-300),
                               0.0, peak[climb]) - y
                y += step
                if np.all(np.abs(step) < 0.01):
                    break
            lo[climb] = y
        half_l, half_r = (peak - lo) / 2, (hi - peak) / 2
        y = np.concatenate([((peak + lo) / 2)[:, None] + half_l[:, None] * _GL_NODES,
                            ((peak + hi) / 2)[:, None] + half_r[:, None] * _GL_NODES], axis=1)
        log_w = np.concatenate([np.log(half_l)[:, None] + np.log(_GL_WEIGHTS),
                                np.log(half_r)[:, None] + np.log(_GL_WEIGHTS)], axis=1)
        # h at the nodes; the tau-integral's dtau = (c + tau) dy is in h through the (1 - p) factor
        log_c_tau = lc[:, None] + y
        log_m_tau = np.logaddexp(ld[:, None], log_c_tau)
        hy = (1 - p[:, None]) * log_c_tau - q[:, None] * log_m_tau + log_w
        value = special.logsumexp(hy, axis=1)
        if not gradient:
            return value
        share = np.exp(hy - value[:, None])
        d_c = -(share * np.exp(-log_c_tau)).sum(axis=1) * p
        d_p = -(share * log_c_tau).sum(axis=1)
        d_m = -(share * np.exp(-log_m_tau)).sum(axis=1) * q
        d_q = -(share * log_m_tau).sum(axis=1)
        return value, np.array([d_c, d_p, d_m, d_q])


def log_hyp2f1_shifted(a, b, z):
    """``log 2F1(a, b; a + 1; z)`` for ``0 <= z < 1`` and ``0 < b < a + 1`` (arrays broadcast),
    the Gauss hypergeometric function of the Pareto/NBD likelihood, in log space: finite where
    2F1 itself overflows (large ``a``, ``b`` or ``z`` near 1)."""
    a, b, z = (np.asarray(v, dtype=float) for v in (a, b, z))
    return np.log(a) + _log_power_tail(0.0, 1 - z, b, 1.0, a + 1 - b)


def _log1mexp(d):
    """``log(1 - exp(d))`` for ``d <= 0`` (-inf at 0)."""
    with np.errstate(divide="ignore"):
        return np.where(d > -0.693, np.log(-np.expm1(d)), np.log1p(-np.exp(d)))


def _growth(k, log_ratio):
    """``(1 - exp(-k log_ratio)) / k``, continuous at ``k = 0`` (where it is ``log_ratio``)."""
    small = np.abs(k) < 1e-8
    return np.where(small, log_ratio, -np.expm1(-k * log_ratio) / np.where(small, 1.0, k))


class ParetoNBDModel(_MaximumLikelihoodModel):
    """Pareto/NBD model of repeat purchases (periods as in the summary, usually weeks).

    Learned attributes after :meth:`fit`: ``params_`` (Series r, alpha, s, beta: purchase rate
    ``Gamma(r, alpha)``, death rate ``Gamma(s, beta)``, alpha and beta in periods),
    ``standard_errors_``, ``covariance_``, ``log_likelihood_``, ``n_customers_``, ``summary``,
    ``converged_`` and ``warnings_``. Fitted on the same columns as :class:`BetaGeoModel`.
    """

    names = ["r", "alpha", "s", "beta"]

    @staticmethod
    def _log_tails(theta, px, pt, gradient: bool):
        """log of the death-time tail integral from ``pt`` on for ``px`` repeat purchases, and
        its derivatives in (r, alpha, s, beta)."""
        r, alpha, s, beta = theta
        # the smaller of alpha, beta is "c" (the concave parametrisation of _log_power_tail)
        if alpha >= beta:
            res = _log_power_tail(pt, beta, s + 1, alpha, r + px, gradient)
            order = (3, 2, 1, 0)  # d/dr = d/dq, d/dalpha = d/dm, d/ds = d/dp, d/dbeta = d/dc
        else:
            res = _log_power_tail(pt, alpha, r + px, beta, s + 1, gradient)
            order = (1, 0, 3, 2)
        if not gradient:
            return res
        value, d = res
        return value, d[list(order)]

    @classmethod
    def _log_likelihood(cls, theta: np.ndarray, x, t_x, T, w, gradient: bool = False, pairs=None):
        """Total log-likelihood (Fader & Hardie's Pareto/NBD note) and optionally its
        gradient in (r, alpha, s, beta). ``pairs``: :meth:`_pairs` of the data, if precomputed."""
        r, alpha, s, beta = theta
        px, pt, i_tx, i_T = cls._pairs(x, t_x, T) if pairs is None else pairs
        tails = cls._log_tails(theta, px, pt, gradient)
        tail, d_tail = tails if gradient else (tails, None)
        l1, l2 = tail[i_tx], tail[i_T]
        rx = r + x
        with np.errstate(divide="ignore", invalid="ignore"):
            log_alive = -rx * np.log(alpha + T) - s * np.log(beta + T)
            log_died = np.log(s) + l1 + _log1mexp(np.minimum(l2 - l1, 0.0))  # dies in (t_x, T]
            log_mix = np.logaddexp(log_alive, log_died)
        ll_i = special.gammaln(rx) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta) + log_mix
        ll = float((w * ll_i).sum())
        if not gradient:
            return ll
        died = np.exp(log_died - log_mix)
        alive = 1.0 - died
        rho = np.exp(np.minimum(l2 - l1, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            d_interval = np.where(died > 0, (d_tail[:, i_tx] - rho * d_tail[:, i_T]) / (1 - rho), 0.0)
        dg = special.digamma
        d_r = dg(rx) - dg(r) + np.log(alpha) - alive * np.log(alpha + T) + died * d_interval[0]
        d_alpha = r / alpha - alive * rx / (alpha + T) + died * d_interval[1]
        d_s = np.log(beta) - alive * np.log(beta + T) + died * (1 / s + d_interval[2])
        d_beta = s / beta - alive * s / (beta + T) + died * d_interval[3]
        return ll, np.array([(w * d).sum() for d in (d_r, d_alpha, d_s, d_beta)])

    @staticmethod
    def _pairs(x, t_x, T):
        """Distinct (x, t) of the recency and age columns, and where each row's two are: the tail
        integrals depend on those only."""
        both = np.column_stack([np.concatenate([x, x]), np.concatenate([t_x, T])])
        distinct, index = np.unique(both, axis=0, return_inverse=True)
        index = index.ravel()
        return distinct[:, 0], distinct[:, 1], index[:len(x)], index[len(x):]

    def fit(self, summary: pd.DataFrame) -> "ParetoNBDModel":
        """Maximum-likelihood fit on ``frequency``, ``recency``, ``T`` (one row per customer)."""
        data, w = _compress(summary, ["frequency", "recency", "T"])
        x, t_x, T = data["frequency"], data["recency"], data["T"]
        total = w.sum()
        pairs = self._pairs(x, t_x, T)
        age = _mean_age(T, w)
        self._fit(lambda th, gradient=False: self._log_likelihood(th, x, t_x, T, w, gradient, pairs), total,
                  None if np.any(x > 0) else FitWarning("no_repeat_purchases", {"customers": int(total)}),
                  scales=np.array([1.0, age, 1.0, age]))
        return self

    def _theta(self, params: pd.Series | None) -> tuple[float, float, float, float]:
        p = self.params_ if params is None else params
        return float(p["r"]), float(p["alpha"]), float(p["s"]), float(p["beta"])

    def probability_alive(self, summary: pd.DataFrame, params: pd.Series | None = None) -> pd.Series:
        """P(still alive at the end of the summary's period | history) (Fader & Hardie's note)."""
        theta = np.array(self._theta(params))
        r, alpha, s, beta = theta
        x, t_x, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
        px, pt, i_tx, i_T = self._pairs(x, t_x, T)
        tails = self._log_tails(theta, px, pt, False)  # once per distinct (x, t)
        tail_tx, tail_T = tails[i_tx], tails[i_T]
        with np.errstate(divide="ignore"):
            log_alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
            log_died = np.log(s) + tail_tx + _log1mexp(np.minimum(tail_T - tail_tx, 0.0))
        return pd.Series(special.expit(log_alive - log_died), index=summary.index, name="p_alive")

    def purchases_if_alive(self, t, x, T, params: pd.Series | None = None) -> np.ndarray:
        """Expected repeat purchases in the next ``t`` periods of a customer who is still alive,
        after ``x`` repeat purchases in ``T`` periods (posterior ``lambda ~ Gamma(r + x, alpha + T)``,
        ``mu ~ Gamma(s, beta + T)``). Arrays broadcast."""
        r, alpha, s, beta = self._theta(params)
        return (r + x) * (beta + T) / (alpha + T) * _growth(s - 1, np.log1p(t / (beta + T)))

    def expected_purchases(self, t: float, summary: pd.DataFrame, params: pd.Series | None = None) -> pd.Series:
        """Expected repeat purchases in the next ``t`` periods given each customer's history:
        :meth:`purchases_if_alive` x P(alive)."""
        x, T = summary["frequency"].to_numpy(float), summary["T"].to_numpy(float)
        values = self.purchases_if_alive(t, x, T, params) * self.probability_alive(summary, params).to_numpy()
        return pd.Series(values, index=summary.index, name="expected_purchases")

    def expected_purchases_new_customer(self, t, params: pd.Series | None = None) -> np.ndarray:
        """Expected repeat purchases within ``t`` periods of a first purchase
        ``r beta / (alpha (s - 1)) (1 - (beta / (beta + t))^(s - 1))``."""
        return self.purchases_if_alive(np.asarray(t, dtype=float), 0.0, 0.0, params)

    def probability_of_purchases(self, k, t, params: pd.Series | None = None) -> np.ndarray:
        """P(exactly ``k`` repeat purchases in (0, t]) of a new customer (Fader & Hardie's note on
        P(X(t) = x)): alive all along, or dead at some ``tau <= t`` after ``k`` purchases; the
        integral over ``tau`` is 200-point Gauss-Legendre in log space. Arrays broadcast."""
        r, alpha, s, beta = self._theta(params)
        k, t = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(t, dtype=float))
        nodes, weights = np.polynomial.legendre.leggauss(200)
        tau = t[..., None] * (nodes + 1) / 2
        lead = special.gammaln(r + k) - special.gammaln(r) - special.gammaln(k + 1)
        alive = (lead + r * np.log(alpha / (alpha + t)) + k * np.log(t / (alpha + t))
                 + s * np.log(beta / (beta + t)))
        with np.errstate(divide="ignore"):
            died = special.logsumexp(k[..., None] * np.log(tau) - (r + k[..., None]) * np.log(alpha + tau)
                                     - (s + 1) * np.log(beta + tau) + np.log(weights / 2), axis=-1)
        died += lead + np.log(s) + s * np.log(beta) + r * np.log(alpha) + np.log(t)
        return np.exp(np.logaddexp(alive, died))

    def probability_no_purchase(self, t: float, summary: pd.DataFrame,
                                params: pd.Series | None = None) -> pd.Series:
        """P(no purchase in the next ``t`` periods | history): dropped out, or alive and silent.
        Given alive, ``lambda ~ Gamma(r + x, A)`` and ``mu ~ Gamma(s, B)`` independently
        (``A = alpha + T``, ``B = beta + T``), and silence means no purchase before ``t`` or
        before a death at ``tau < t``:
        ``(A / (A + t))^(r + x) (B / (B + t))^s + integral_0^t s B^s (B + tau)^-(s + 1) (A / (A + tau))^(r + x) dtau``,
        the integral by 64-point Gauss-Legendre (smooth and monotone on a finite interval)."""
        r, alpha, s, beta = self._theta(params)
        x, T = summary["frequency"].to_numpy(float), summary["T"].to_numpy(float)
        a, b, rx = (alpha + T)[:, None], (beta + T)[:, None], (r + x)[:, None]
        nodes, weights = np.polynomial.legendre.leggauss(64)
        tau = t * (nodes + 1) / 2
        log_f = np.log(s) + s * np.log(b) - (s + 1) * np.log(b + tau) + rx * (np.log(a) - np.log(a + tau))
        died_silent = t / 2 * (np.exp(log_f) * weights).sum(axis=1)
        a, b, rx = a[:, 0], b[:, 0], rx[:, 0]
        lived_silent = np.exp(rx * (np.log(a) - np.log(a + t)) + s * (np.log(b) - np.log(b + t)))
        alive = self.probability_alive(summary, params).to_numpy()
        return pd.Series(1 - alive + alive * (lived_silent + died_silent), index=summary.index, name="p_no_purchase")


def repeat_summary(opportunities) -> pd.DataFrame:
    """Recency/frequency summary of a binary repeat-opportunity matrix (customers x opportunities
    1..n, 1 = transacted): one row per distinct (frequency, recency, n_periods) with ``weights``,
    the number of customers; ``recency`` is the last opportunity with a transaction (0 if none)."""
    m = np.asarray(opportunities, dtype=bool)
    n = m.shape[1]
    last = np.where(m.any(axis=1), n - np.argmax(m[:, ::-1], axis=1), 0)
    rows = pd.DataFrame({"frequency": m.sum(axis=1), "recency": last, "n_periods": n})
    return rows.groupby(["frequency", "recency", "n_periods"]).size().rename("weights").reset_index()


class BetaGeoBetaBinomModel(_MaximumLikelihoodModel):
    """BG/BB model of transactions at discrete opportunities (Fader, Hardie & Shang 2010).

    Fitted on ``frequency`` (transactions in the ``n_periods`` opportunities after the first
    transaction), ``recency`` (the last opportunity with a transaction, 0 if none),
    ``n_periods`` and optionally ``weights`` (customers per row; see :func:`repeat_summary`;
    without it, customers with the same history are fitted once with a weight). Every method
    reads the opportunities from ``n_periods``, else from ``T`` (the age column of the
    summaries :class:`DiscountedClv` hands over), so the model takes the place of BG/NBD there
    with opportunities as the period. Learned attributes: ``params_`` (Series alpha, beta,
    gamma, delta, all shape parameters), ``standard_errors_``, ``covariance_``,
    ``log_likelihood_``, ``n_customers_``, ``summary``, ``converged_`` and ``warnings_``.

    "Alive" in the predictions means alive at the next opportunity, ``n_periods + 1``: a
    customer alive there has ``p ~ Beta(alpha + x, beta + n - x)`` and
    ``theta ~ Beta(gamma, delta + n + 1)``, independently.
    """

    names = ["alpha", "beta", "gamma", "delta"]

    @staticmethod
    def _terms(x, t_x, n):
        """Per row, the (transaction, no-transaction, death-shift) counts of the likelihood's
        terms: alive through ``n``, or died after opportunity ``t_x + i`` (i = 0..n - t_x - 1);
        masked beyond that."""
        i = np.arange(int(np.max(n - t_x)) if len(n) else 0)
        fail = np.column_stack([n - x, t_x[:, None] - x[:, None] + i])
        death = np.column_stack([n, t_x[:, None] + i])
        dead = np.column_stack([np.zeros(len(x)), np.ones((len(x), len(i)))])
        valid = np.column_stack([np.ones(len(x), bool), i < (n - t_x)[:, None]])
        return fail, death, dead, valid

    @classmethod
    def _log_terms(cls, theta, x, t_x, n):
        """Log of each term of each row's likelihood (-inf where masked)."""
        a, b, g, d = theta
        fail, death, dead, valid = cls._terms(x, t_x, n)
        return np.where(valid, special.betaln(a + x[:, None], b + fail) - special.betaln(a, b)
                        + special.betaln(g + dead, d + death) - special.betaln(g, d), -np.inf)

    @classmethod
    def _log_likelihood(cls, theta: np.ndarray, x, t_x, n, w, gradient: bool = False):
        """Total log-likelihood (FHS 2010) and optionally its gradient in
        (alpha, beta, gamma, delta)."""
        a, b, g, d = theta
        log_terms = cls._log_terms(theta, x, t_x, n)
        ll_i = special.logsumexp(log_terms, axis=1)
        ll = float((w * ll_i).sum())
        if not gradient:
            return ll
        fail, death, dead, valid = cls._terms(x, t_x, n)
        xc = x[:, None]
        share = np.exp(log_terms - ll_i[:, None])
        dg = special.digamma
        d_a = dg(a + xc) - dg(a + b + xc + fail) - dg(a) + dg(a + b)
        d_b = dg(b + fail) - dg(a + b + xc + fail) - dg(b) + dg(a + b)
        d_g = dg(g + dead) - dg(g + d + dead + death) - dg(g) + dg(g + d)
        d_d = dg(d + death) - dg(g + d + dead + death) - dg(d) + dg(g + d)
        grad = np.array([(w * np.where(valid, share * dd, 0.0).sum(axis=1)).sum() for dd in (d_a, d_b, d_g, d_d)])
        return ll, grad

    @staticmethod
    def _columns(summary: pd.DataFrame):
        """frequency, recency, opportunities (``n_periods``, else ``T``) and weights (1 without)."""
        opportunities = "n_periods" if "n_periods" in summary else "T"
        x, t_x, n = (summary[c].to_numpy(float) for c in ("frequency", "recency", opportunities))
        w = summary["weights"].to_numpy(float) if "weights" in summary else np.ones(len(x))
        return x, t_x, n, w

    def fit(self, summary: pd.DataFrame) -> "BetaGeoBetaBinomModel":
        """Maximum-likelihood fit on ``frequency``, ``recency``, ``n_periods`` (and ``weights``)."""
        x, t_x, n, w = self._columns(summary)
        if "weights" not in summary:
            histories, w = _compress(pd.DataFrame({"x": x, "t_x": t_x, "n": n}), ["x", "t_x", "n"])
            x, t_x, n = histories["x"], histories["t_x"], histories["n"]
        keep = w > 0
        x, t_x, n, w = x[keep], t_x[keep], n[keep], w[keep]
        total = w.sum()
        self._fit(lambda th, gradient=False: self._log_likelihood(th, x, t_x, n, w, gradient=gradient), total,
                  None if np.any(x > 0) else FitWarning("no_transactions", {"customers": int(total)}))
        return self

    def _theta(self, params: pd.Series | None) -> tuple[float, float, float, float]:
        p = self.params_ if params is None else params
        return float(p["alpha"]), float(p["beta"]), float(p["gamma"]), float(p["delta"])

    def _log_likelihood_rows(self, summary: pd.DataFrame, params: pd.Series | None) -> np.ndarray:
        x, t_x, n, _ = self._columns(summary)
        return special.logsumexp(self._log_terms(np.array(self._theta(params)), x, t_x, n), axis=1)

    def probability_alive(self, summary: pd.DataFrame, params: pd.Series | None = None) -> pd.Series:
        """P(alive at the next opportunity, ``n_periods + 1`` | history) (FHS 2010)."""
        a, b, g, d = self._theta(params)
        x, _, n, _ = self._columns(summary)
        log_p = (special.betaln(a + x, b + n - x) - special.betaln(a, b) + special.betaln(g, d + n + 1)
                 - special.betaln(g, d) - self._log_likelihood_rows(summary, params))
        return pd.Series(np.exp(log_p), index=summary.index, name="p_alive")

    def expected_transactions(self, n_future: int, summary: pd.DataFrame,
                              params: pd.Series | None = None) -> pd.Series:
        """Expected transactions in the next ``n_future`` opportunities given each customer's
        history (FHS 2010)."""
        a, b, g, d = self._theta(params)
        x, _, n, _ = self._columns(summary)
        log_lead = (special.betaln(a + x + 1, b + n - x) - special.betaln(a, b)
                    + special.gammaln(g + d) - special.gammaln(1 + d) - self._log_likelihood_rows(summary, params))
        bracket = (np.exp(special.gammaln(1 + d + n) - special.gammaln(g + d + n))
                   - np.exp(special.gammaln(1 + d + n + n_future) - special.gammaln(g + d + n + n_future)))
        return pd.Series(np.exp(log_lead) * d / (g - 1) * bracket, index=summary.index,
                         name="expected_transactions")

    def expected_transactions_new_customer(self, n, params: pd.Series | None = None) -> np.ndarray:
        """Expected transactions of a new customer in ``n`` opportunities (FHS 2010)."""
        a, b, g, d = self._theta(params)
        n = np.asarray(n, dtype=float)
        ratio = np.exp(special.gammaln(g + d) - special.gammaln(g + d + n)
                       + special.gammaln(1 + d + n) - special.gammaln(1 + d))
        return a / (a + b) * d / (g - 1) * (1 - ratio)

    @staticmethod
    def _whole(t) -> np.ndarray:
        """Whole opportunities in ``t`` (``t`` within 1e-9 below a whole number counts as it: the
        months-to-opportunities conversion of :class:`DiscountedClv` is in floating point)."""
        return np.floor(np.asarray(t, dtype=float) + 1e-9)

    def purchases_if_alive(self, t, x, T, params: pd.Series | None = None) -> np.ndarray:
        """Expected transactions in the next ``t`` opportunities (``floor(t)`` of them) of a
        customer alive at the next opportunity, after ``x`` transactions in ``T`` opportunities:
        ``E[p] * sum_{i=0..m-1} E[(1 - theta)^i]`` with ``p ~ Beta(alpha + x, beta + T - x)``,
        ``theta ~ Beta(gamma, c)``, ``c = delta + T + 1`` and ``m = floor(t)``; the sum in
        closed form ``(gamma + c - 1) / (gamma - 1) * (1 - G(gamma + c - 1) G(c + m) /
        (G(c) G(gamma + c + m - 1)))`` (G the gamma function, in log space; its limit
        ``c (digamma(c + m) - digamma(c))`` at gamma = 1). Times :meth:`probability_alive` it
        is :meth:`expected_transactions`. Arrays broadcast."""
        a, b, g, d = self._theta(params)
        m, x, n = np.broadcast_arrays(self._whole(t), np.asarray(x, dtype=float), np.asarray(T, dtype=float))
        c = d + n + 1
        log_ratio = (special.gammaln(g + c - 1) - special.gammaln(g + c + m - 1)
                     - special.gammaln(c) + special.gammaln(c + m))
        if abs(g - 1) < 1e-8:
            alive_opportunities = c * (special.digamma(c + m) - special.digamma(c))
        else:
            alive_opportunities = (g + c - 1) * -np.expm1(log_ratio) / (g - 1)
        return (a + x) / (a + b + n) * alive_opportunities

    def expected_purchases(self, t, summary: pd.DataFrame, params: pd.Series | None = None) -> pd.Series:
        """Expected transactions in the next ``t`` opportunities (``floor(t)``; a number or one
        per row) given each customer's history: :meth:`expected_transactions`."""
        _, _, n, _ = self._columns(summary)
        future = np.broadcast_to(self._whole(t), n.shape)
        return self.expected_transactions(future, summary, params).rename("expected_purchases")

    def probability_no_purchase(self, t, summary: pd.DataFrame, params: pd.Series | None = None) -> pd.Series:
        """P(no transaction in the next ``t`` opportunities | history) (``floor(t)``; a number or
        one per row): the likelihood of the history followed by that many opportunities without
        a transaction over the likelihood of the history (dead, or alive and silent)."""
        x, t_x, n, _ = self._columns(summary)
        theta = np.array(self._theta(params))
        later = n + np.broadcast_to(self._whole(t), n.shape)
        log_p = (special.logsumexp(self._log_terms(theta, x, t_x, later), axis=1)
                 - special.logsumexp(self._log_terms(theta, x, t_x, n), axis=1))
        return pd.Series(np.exp(log_p), index=summary.index, name="p_no_purchase")


PurchaseModel = BetaGeoModel | ParetoNBDModel | BetaGeoBetaBinomModel


class GammaGammaModel(_MaximumLikelihoodModel):
    """Gamma-Gamma model of the mean repeat-purchase value (currency per purchase).

    Fitted on customers with at least one repeat purchase. Learned attributes: ``params_``
    (Series p, q, v), ``standard_errors_``, ``covariance_``, ``log_likelihood_``, ``n_customers_``,
    ``summary``, ``converged_`` and ``warnings_`` (nothing is fitted without a repeat buyer).
    """

    names = ["p", "q", "v"]

    @staticmethod
    def _log_likelihood(theta: np.ndarray, x, z, gradient: bool = False):
        """Log-likelihood of the mean spend ``z`` over ``x`` purchases (Fader & Hardie GG note)."""
        p, q, v = theta
        px = p * x
        ll_i = (special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q) + q * np.log(v)
                + (px - 1) * np.log(z) + px * np.log(x) - (px + q) * np.log(x * z + v))
        ll = float(ll_i.sum())
        if not gradient:
            return ll
        dg = special.digamma
        d_p = x * (dg(px + q) - dg(px) + np.log(z) + np.log(x) - np.log(x * z + v))
        d_q = dg(px + q) - dg(q) + np.log(v) - np.log(x * z + v)
        d_v = q / v - (px + q) / (x * z + v)
        return ll, np.array([d_p.sum(), d_q.sum(), d_v.sum()])

    @staticmethod
    def repeat_buyers(summary: pd.DataFrame) -> pd.DataFrame:
        """The rows the model is fitted on: a repeat purchase of positive mean value."""
        return summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]

    def fit(self, summary: pd.DataFrame) -> "GammaGammaModel":
        """Maximum-likelihood fit on ``frequency`` and ``monetary_value`` of repeat buyers."""
        rep = self.repeat_buyers(summary)
        x, z = rep["frequency"].to_numpy(float), rep["monetary_value"].to_numpy(float)
        scales = np.array([1.0, 1.0, float(np.mean(z))]) if len(x) else None  # v relative to the mean spend
        self._fit(lambda th, gradient=False: self._log_likelihood(th, x, z, gradient=gradient), len(x),
                  None if len(x) else FitWarning("no_repeat_spend"), scales=scales, fit_scales=scales)
        q = self.params_["q"]
        if q <= 1:  # E[nu^-1] = v / (q - 1): no finite mean spend, so no expected spend of a new buyer
            self.warnings_ = [*self.warnings_, FitWarning("no_finite_mean_spend", {"q": float(q)})]
            self.converged_ = False
        return self

    def expected_spend(self, summary: pd.DataFrame, params: pd.Series | None = None) -> pd.Series:
        """Expected value of a future purchase (currency): the posterior mean
        ``p (v + x zbar) / (p x + q - 1)``; customers without repeats get the population mean."""
        prm = self.params_ if params is None else params
        p, q, v = float(prm["p"]), float(prm["q"]), float(prm["v"])
        x = summary["frequency"].to_numpy(float)
        z = np.where(x > 0, summary["monetary_value"].to_numpy(float), 0.0)
        return pd.Series(p * (v + x * z) / (p * x + q - 1), index=summary.index, name="expected_spend")


def monthly_discount(annual_rate: float) -> float:
    """Monthly rate equivalent to an annual discount rate."""
    return (1 + annual_rate) ** (1 / 12) - 1


class DiscountedClv:
    """Discounted customer lifetime value over ``horizon_months`` (currency per customer) of the
    customers of one ``summary``, for any parameters of the two models.

    Sum over months ``i = 1..H`` of expected purchases in month ``i`` times expected spend,
    discounted by ``(1 + d) ** -i`` with ``d`` the monthly equivalent of the annual rate (as in
    the lifetimes package). ``period_days``: the length of the summary's period (7 for weeks).
    The expected purchases are P(alive) x purchases if alive, and the latter depend on
    (frequency, T) only, so the discounted sum over the months is computed once per distinct
    (frequency, T) and scaled per customer, and P(alive) once per distinct (frequency, recency,
    T): the same value up to rounding (relative 1e-15), at a fraction of the cost when the delta
    method evaluates it again and again.
    """

    def __init__(self, summary: pd.DataFrame, horizon_months: int, annual_discount_rate: float,
                 period_days: float = 7.0):
        self.summary = summary
        self.pair = summary.groupby(["frequency", "T"], sort=False, dropna=False).ngroup().to_numpy()
        pairs = self.pair.max() + 1 if len(summary) else 0
        self.x, self.T = np.empty(pairs), np.empty(pairs)
        self.x[self.pair] = summary["frequency"].to_numpy(float)  # every customer of a pair writes the same
        self.T[self.pair] = summary["T"].to_numpy(float)
        histories = summary.groupby(["frequency", "recency", "T"], sort=False, dropna=False)
        self.history = histories.ngroup().to_numpy()
        self.histories = histories.size().index.to_frame(index=False)  # in ngroup order
        months = np.arange(1, horizon_months + 1)
        self.t = (months * DAYS_PER_MONTH / period_days)[:, None]
        self.discount = ((1 + monthly_discount(annual_discount_rate)) ** months)[:, None]

    def purchase_parts(self, purchases: PurchaseModel,
                       purchase_params: pd.Series | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per customer, in the summary's row order: the discounted expected purchases over the
        horizon if the customer is alive, and P(alive). Times the expected spend per purchase
        (and P(alive)) they make the CLV."""
        cumulative = purchases.purchases_if_alive(self.t, self.x, self.T, purchase_params)  # months x pairs
        per_pair = (np.diff(cumulative, axis=0, prepend=0.0) / self.discount).sum(axis=0)
        alive = purchases.probability_alive(self.histories, purchase_params).to_numpy()[self.history]
        return per_pair[self.pair], alive

    def __call__(self, purchases: PurchaseModel, spend: GammaGammaModel, purchase_params: pd.Series | None = None,
                 spend_params: pd.Series | None = None) -> np.ndarray:
        """CLV per customer (currency), in the summary's row order."""
        if_alive, alive = self.purchase_parts(purchases, purchase_params)
        return if_alive * alive * spend.expected_spend(self.summary, spend_params).to_numpy()


def discounted_clv(purchases: PurchaseModel, spend: GammaGammaModel, summary: pd.DataFrame,
                   horizon_months: int, annual_discount_rate: float, period_days: float = 7.0,
                   purchase_params: pd.Series | None = None,
                   spend_params: pd.Series | None = None) -> pd.Series:
    """Discounted customer lifetime value over ``horizon_months`` (currency per customer), as
    defined in :class:`DiscountedClv`."""
    value = DiscountedClv(summary, horizon_months, annual_discount_rate, period_days)(
        purchases, spend, purchase_params, spend_params)
    return pd.Series(value, index=summary.index, name="clv")


@dataclass(frozen=True)
class ClvTotal:
    """Total expected CLV of a customer base with a delta-method interval (parameter uncertainty)."""

    estimate: Estimate
    horizon_months: int
    annual_discount_rate: float


@dataclass(frozen=True)
class ClvUncertainty:
    """Discounted CLV per customer and its sensitivity to the fitted parameters, for intervals
    that carry the parameters' sampling uncertainty (delta method).

    ``clv`` and ``if_retained`` (the CLV if the customer is still alive, CLV / P(alive)):
    currency per customer, in the summary's row order; ``clv_gradient`` and
    ``if_retained_gradient``: their derivatives (customers x parameters) with respect to the
    purchase model's parameters followed by the Gamma-Gamma parameters; ``covariance``: the
    parameters' covariance (block-diagonal: the two models are fitted independently, as the
    Gamma-Gamma model assumes). The intervals are for the expected value given each
    customer's history, not for the revenue a customer will actually bring."""

    clv: np.ndarray
    if_retained: np.ndarray
    clv_gradient: np.ndarray
    if_retained_gradient: np.ndarray
    covariance: np.ndarray

    def per_customer(self) -> pd.DataFrame:
        """Per customer: ``clv``, its standard error and 95% Wald interval on the log scale (the
        value is positive; a customer with zero expected value gets a zero-width interval)."""
        se = np.sqrt(np.einsum("ij,jk,ik->i", self.clv_gradient, self.covariance, self.clv_gradient))
        half = Z95 * se / np.where(self.clv > 0, self.clv, 1.0)
        return pd.DataFrame({"clv": self.clv, "clv_se": se, "clv_ci_low": self.clv * np.exp(-half),
                             "clv_ci_high": self.clv * np.exp(half)})

    def total(self, rows: np.ndarray | None = None, if_retained: bool = False) -> Estimate:
        """Sum over ``rows`` (positions; None: everyone) of the CLV or, ``if_retained``, of the
        value if retained, with a 95% Wald interval (delta method: the gradient of a sum is the
        sum of the gradients)."""
        value, gradient = ((self.if_retained, self.if_retained_gradient) if if_retained
                           else (self.clv, self.clv_gradient))
        if rows is not None:
            value, gradient = value[rows], gradient[rows]
        g = gradient.sum(axis=0)
        method = "CLV if retained (CLV / P(alive)), delta method" if if_retained else "CLV, delta method"
        return Estimate.normal(float(value.sum()), float(np.sqrt(g @ self.covariance @ g)), len(value), method)


# relative step of the central differences of the CLV in each parameter
GRADIENT_STEP = 1e-5


def clv_uncertainty(purchases: PurchaseModel, spend: GammaGammaModel, summary: pd.DataFrame,
                    horizon_months: int, annual_discount_rate: float,
                    period_days: float = 7.0) -> ClvUncertainty:
    """Discounted CLV per customer (:class:`DiscountedClv`) with its gradient in the parameters
    of both fitted models by central differences (relative step :data:`GRADIENT_STEP`). The CLV
    is (purchases if alive) x P(alive) x spend, the first two depending on the purchase model's
    parameters only and the last on the Gamma-Gamma parameters only, so P(alive) — the costly
    part — is evaluated twice per purchase-model parameter for the whole base, and any
    customer's or group's interval follows (:class:`ClvUncertainty`)."""
    value = DiscountedClv(summary, horizon_months, annual_discount_rate, period_days)

    def shifted(model, j: int, step: float) -> pd.Series:
        theta = model.params_.copy()
        theta.iloc[j] += step
        return theta

    if_alive, alive = value.purchase_parts(purchases)
    per_purchase = spend.expected_spend(summary).to_numpy()
    clv_gradient, retained_gradient = [], []
    for j, theta in enumerate(purchases.params_):
        h = theta * GRADIENT_STEP
        (up, alive_up), (down, alive_down) = (value.purchase_parts(purchases, shifted(purchases, j, s)) for s in (h, -h))
        clv_gradient.append((up * alive_up - down * alive_down) / (2 * h) * per_purchase)
        retained_gradient.append((up - down) / (2 * h) * per_purchase)
    for j, theta in enumerate(spend.params_):
        h = theta * GRADIENT_STEP
        up, down = (spend.expected_spend(summary, shifted(spend, j, s)).to_numpy() for s in (h, -h))
        retained_gradient.append(if_alive * (up - down) / (2 * h))
        clv_gradient.append(retained_gradient[-1] * alive)
    k = len(purchases.names)
    cov = np.zeros((k + len(spend.names),) * 2)
    cov[:k, :k] = purchases.covariance_.to_numpy()
    cov[k:, k:] = spend.covariance_.to_numpy()
    return ClvUncertainty(if_alive * alive * per_purchase, if_alive * per_purchase, np.column_stack(clv_gradient),
                          np.column_stack(retained_gradient), cov)


def total_clv(purchases: PurchaseModel, spend: GammaGammaModel, summary: pd.DataFrame,
              horizon_months: int, annual_discount_rate: float, period_days: float = 7.0) -> ClvTotal:
    """Sum of discounted CLV with a 95% delta-method interval (:class:`ClvUncertainty`). The
    interval is for the expected total, not for the realised future revenue."""
    est = clv_uncertainty(purchases, spend, summary, horizon_months, annual_discount_rate, period_days).total()
    return ClvTotal(est, horizon_months, annual_discount_rate)
