"""Customer lifetime value: BG/NBD purchase model, Gamma-Gamma spend model, discounted CLV.

The models follow the papers and take the per-customer summary of
:func:`custlib.features.customer_summary` (``frequency``, ``recency``, ``T`` in periods,
``monetary_value`` in currency), so a lifetimes user will recognise the API:

* BG/NBD — Fader, Hardie & Lee (2005), "Counting your customers the easy way": while alive a
  customer buys at rate ``lambda ~ Gamma(r, alpha)`` per period and drops out after each purchase
  with probability ``p ~ Beta(a, b)``.
* Gamma-Gamma — Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves": the value of a
  purchase is ``Gamma(p, nu)`` with ``nu ~ Gamma(q, v)``, independent of the purchase process.

Both are fitted by maximum likelihood (scipy, analytic gradient on log-parameters); standard
errors come from the inverse of the numerical Hessian of the log-likelihood (statsmodels).
Customers with identical ``(frequency, recency, T)`` are fitted once with a weight, so a million
customers fit in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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


def _maximise(neg_ll_and_grad, n_params: int, start: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    """Maximise a log-likelihood over log-parameters; returns the natural parameters and what
    went wrong (empty when the optimiser converged to a finite, positive maximum)."""
    x0 = np.zeros(n_params) if start is None else np.log(start)
    # a 4-parameter problem: BLAS threads only add contention; the line search may probe extreme
    # values that overflow, and the result is checked below
    with threadpool_limits(1), np.errstate(all="ignore"):
        res = optimize.minimize(neg_ll_and_grad, x0, jac=True, method="L-BFGS-B",
                                options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9})
    theta = np.exp(res.x)
    problems = [] if res.success else ["the optimiser stopped without reaching a maximum"]
    if not np.all(np.isfinite(theta) & (theta > 0)):
        problems.append("the likelihood has no finite maximum (parameters run off to zero or infinity)")
    return theta, problems


def _standard_errors(score, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Standard errors and covariance from the inverse observed information (numerical Hessian
    of the score); NaN, with the reason, when the information is not positive definite."""
    hess = approx_fprime(theta, score, centered=True)
    info = -(hess + hess.T) / 2
    if not (np.all(np.isfinite(info)) and np.linalg.eigvalsh(info).min() > 0):
        k = len(theta)
        return (np.full(k, np.nan), np.full((k, k), np.nan),
                ["the information matrix is singular: the data do not identify every parameter, "
                 "so there are no standard errors"])
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


class _MaximumLikelihoodModel:
    """Shared fitted attributes of the two models; a degenerate fit says so (``converged_``
    False, the reasons in ``warnings_``) instead of raising."""

    names: list[str]

    def _store(self, theta: np.ndarray, problems: list[str], score, log_likelihood, n: int) -> None:
        """Set the learned attributes from ``theta`` (NaN when nothing could be fitted)."""
        k = len(self.names)
        se, cov = np.full(k, np.nan), np.full((k, k), np.nan)
        ll = float("nan")
        if np.all(np.isfinite(theta) & (theta > 0)):
            se, cov, singular = _standard_errors(score, theta)
            problems = [*problems, *singular]
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

        def objective(log_theta):
            theta = np.exp(log_theta)
            ll, grad = self._log_likelihood(theta, x, t_x, T, w, gradient=True)
            return -ll / total, -grad * theta / total

        if np.any(x > 0):
            theta, problems = _maximise(objective, 4)
        else:
            theta = np.full(4, np.nan)
            problems = [f"none of the {int(total):,} customers made a repeat purchase, so the purchase "
                        "rate and dropout are not identified"]
        self._store(theta, problems, lambda th: self._log_likelihood(th, x, t_x, T, w, gradient=True)[1],
                    lambda th: self._log_likelihood(th, x, t_x, T, w), int(total))
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

        def objective(log_theta):
            theta = np.exp(log_theta) * np.array([1.0, 1.0, scale])
            ll, grad = self._log_likelihood(theta, x, z, gradient=True)
            return -ll / len(x), -grad * theta / len(x)

        if len(x):
            scale = float(np.mean(z))  # v is fitted relative to the mean spend for a well-scaled start
            theta, problems = _maximise(objective, 3)
            theta = theta * np.array([1.0, 1.0, scale])
        else:
            theta, problems = np.full(3, np.nan), ["no customer made a repeat purchase of positive value"]
        self._store(theta, problems, lambda th: self._log_likelihood(th, x, z, gradient=True)[1],
                    lambda th: self._log_likelihood(th, x, z), len(x))
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
    (frequency, T) and scaled per customer: the same value up to rounding (relative 1e-15), at a
    fraction of the cost when the delta method evaluates it again and again.
    """

    def __init__(self, summary: pd.DataFrame, horizon_months: int, annual_discount_rate: float,
                 period_days: float = 7.0):
        self.summary = summary
        self.pair = summary.groupby(["frequency", "T"], sort=False, dropna=False).ngroup().to_numpy()
        pairs = self.pair.max() + 1 if len(summary) else 0
        self.x, self.T = np.empty(pairs), np.empty(pairs)
        self.x[self.pair] = summary["frequency"].to_numpy(float)  # every customer of a pair writes the same
        self.T[self.pair] = summary["T"].to_numpy(float)
        months = np.arange(1, horizon_months + 1)
        self.t = (months * DAYS_PER_MONTH / period_days)[:, None]
        self.discount = ((1 + monthly_discount(annual_discount_rate)) ** months)[:, None]

    def __call__(self, purchases: BetaGeoModel, spend: GammaGammaModel, purchase_params: pd.Series | None = None,
                 spend_params: pd.Series | None = None) -> np.ndarray:
        """CLV per customer (currency), in the summary's row order."""
        cumulative = purchases.purchases_if_alive(self.t, self.x, self.T, purchase_params)  # months x pairs
        per_pair = (np.diff(cumulative, axis=0, prepend=0.0) / self.discount).sum(axis=0)
        alive = purchases.probability_alive(self.summary, purchase_params).to_numpy()
        return per_pair[self.pair] * alive * spend.expected_spend(self.summary, spend_params).to_numpy()


def discounted_clv(purchases: BetaGeoModel, spend: GammaGammaModel, summary: pd.DataFrame,
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


def delta_total(purchases: BetaGeoModel, spend: GammaGammaModel,
                total: Callable[[pd.Series, pd.Series], float], n: int, method: str) -> Estimate:
    """A total that depends on both models' parameters (``total(bg_params, gg_params)``, in
    currency) with a 95% Wald interval from the parameters' covariance (delta method; the two
    models are fitted independently, as the Gamma-Gamma model assumes). ``n``: customers summed."""
    theta = np.concatenate([purchases.params_.to_numpy(), spend.params_.to_numpy()])

    def at(th):
        return total(pd.Series(th[:4], index=BetaGeoModel.names), pd.Series(th[4:], index=GammaGammaModel.names))

    grad = approx_fprime(theta, at, epsilon=theta * 1e-5, centered=True)
    cov = np.zeros((7, 7))
    cov[:4, :4] = purchases.covariance_.to_numpy()
    cov[4:, 4:] = spend.covariance_.to_numpy()
    se = float(np.sqrt(grad @ cov @ grad))
    return Estimate.normal(at(theta), se, n, method)


def total_clv(purchases: BetaGeoModel, spend: GammaGammaModel, summary: pd.DataFrame,
              horizon_months: int, annual_discount_rate: float, period_days: float = 7.0) -> ClvTotal:
    """Sum of discounted CLV with a 95% delta-method interval (:func:`delta_total`). The
    interval is for the expected total, not for the realised future revenue."""
    value = DiscountedClv(summary, horizon_months, annual_discount_rate, period_days)

    def total(bg: pd.Series, gg: pd.Series) -> float:
        return float(value(purchases, spend, bg, gg).sum())

    est = delta_total(purchases, spend, total, len(summary), "BG/NBD x Gamma-Gamma, delta method")
    return ClvTotal(est, horizon_months, annual_discount_rate)
