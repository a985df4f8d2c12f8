"""Pareto/NBD and BG/BB models, and degenerate fits flagged: published values, lifetimes reference
numbers, high-precision special functions and Monte Carlo draws from the models themselves."""

from __future__ import annotations

from decimal import Decimal, getcontext

import numpy as np
import pandas as pd
import pytest
from conftest import DATA
from scipy import special
from statsmodels.tools.numdiff import approx_fprime

from custlib import clv

# lifetimes 0.11.3 ParetoNBDFitter(penalizer_coef=0).fit(frequency, recency, T, tol=1e-12) on
# tests/data/cdnow_summary.csv (computed once; lifetimes is not a dependency)
LIFETIMES_PNBD = {"r": 0.5532755230613722, "alpha": 10.577612479743701, "s": 0.6062135884403463,
                  "beta": 11.667911456722075}


@pytest.fixture(scope="module")
def cdnow_pnbd(cdnow) -> clv.ParetoNBDModel:
    return clv.ParetoNBDModel().fit(cdnow)


@pytest.fixture(scope="module")
def donations() -> pd.DataFrame:
    return pd.read_csv(DATA / "donations_summary.csv")


# -- Pareto/NBD ------------------------------------------------------------------------------------

def test_pareto_nbd_reproduces_published_cdnow_estimates(cdnow_pnbd):
    """Fader, Hardie & Lee (2005), Pareto/NBD on the 2,357 CDNOW customers: r = 0.55,
    alpha = 10.58, s = 0.61, beta = 11.67, LL = -9,595.0."""
    for name, value in {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}.items():
        assert cdnow_pnbd.params_[name] == pytest.approx(value, rel=0.01), name
    assert cdnow_pnbd.log_likelihood_ == pytest.approx(-9595.0, abs=0.1)
    assert cdnow_pnbd.n_customers_ == 2357
    assert cdnow_pnbd.converged_ and cdnow_pnbd.warnings_ == []
    assert (cdnow_pnbd.standard_errors_ > 0).all() and len(cdnow_pnbd.summary) == 4


def test_pareto_nbd_agrees_with_lifetimes(cdnow_pnbd):
    """Parameters within 1e-4 (relative) of lifetimes' fit; closed forms at lifetimes' parameters
    equal lifetimes' (0.11.3) predictions for three customers and a new customer."""
    for name, value in LIFETIMES_PNBD.items():
        assert cdnow_pnbd.params_[name] == pytest.approx(value, rel=1e-4), name
    params = pd.Series(LIFETIMES_PNBD)
    three = pd.DataFrame({"frequency": [0.0, 2, 10], "recency": [0.0, 30.43, 20], "T": [38.86] * 3})
    np.testing.assert_allclose(cdnow_pnbd.probability_alive(three, params),
                               [0.29509715, 0.86911871, 0.0827611], rtol=1e-6)
    np.testing.assert_allclose(cdnow_pnbd.expected_purchases(39, three, params),
                               [0.10705979, 1.45511294, 0.57270824], rtol=1e-6)
    np.testing.assert_allclose(cdnow_pnbd.expected_purchases_new_customer(np.array([10.0, 39, 78]), params),
                               [0.42779406, 1.21340806, 1.90988074], rtol=1e-6)


def test_pareto_nbd_gradient_is_the_derivative_of_the_likelihood(cdnow, cdnow_pnbd):
    x, t_x, T = (cdnow[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    w = np.ones(len(x))
    for factor in ([1.1, 0.9, 1.2, 0.8], [0.7, 1.3, 3.0, 0.2]):  # alpha >= beta and alpha < beta
        theta = cdnow_pnbd.params_.to_numpy() * np.array(factor)
        _, grad = clv.ParetoNBDModel._log_likelihood(theta, x, t_x, T, w, gradient=True)
        numeric = approx_fprime(theta, lambda th: clv.ParetoNBDModel._log_likelihood(th, x, t_x, T, w),
                                centered=True)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5)


def _log_hyp2f1_series(a: float, b: float, z: float) -> float:
    """log 2F1(a, b; a + 1; z) by its power series in 60-digit decimal arithmetic."""
    getcontext().prec = 60
    a_, b_, z_ = Decimal(repr(a)), Decimal(repr(b)), Decimal(repr(z))
    term, total, n = Decimal(1), Decimal(1), 0  # term = (b)_n z^n / n!
    while True:
        term = term * (b_ + n) * z_ / (n + 1)
        n += 1
        add = term * a_ / (a_ + n)
        total += add
        if n > 10 and add < total * Decimal(10) ** -30:
            return float(total.ln())


def test_log_hyp2f1_is_finite_where_2f1_overflows():
    """The Pareto/NBD terms of x = 500, T = 1000, alpha = 1e4 (beta = 10, r = 0.5, s = 0.6) in
    both branches: 2F1 itself is up to 1e518 (beyond float range); its log matches a
    high-precision series to 1e-10 relative."""
    r, s, x, T, big, small = 0.5, 0.6, 500, 1000.0, 1e4, 10.0
    z = (big - small) / (big + T)
    cases = [(r + s + x, s + 1, z), (r + s + x, r + x, z), (r + s, r, 0.5), (r + s + 3, s + 1, 0.3)]
    for a, b, zz in cases:
        got = float(clv.log_hyp2f1_shifted(a, b, zz))
        assert np.isfinite(got)
        assert got == pytest.approx(_log_hyp2f1_series(a, b, zz), rel=1e-10, abs=1e-12), (a, b, zz)
    assert float(clv.log_hyp2f1_shifted(*cases[1])) > 1000  # log of a number beyond 1e308
    # and the likelihood and predictions of such a customer are finite
    one = pd.DataFrame({"frequency": [500.0], "recency": [3.0], "T": [T]})
    for params in ({"r": r, "alpha": big, "s": s, "beta": small}, {"r": r, "alpha": small, "s": s, "beta": big}):
        model = clv.ParetoNBDModel()
        model.params_ = pd.Series(params)
        p = model.probability_alive(one).iloc[0]
        assert 0 <= p <= 1 and np.isfinite(model.expected_purchases(52, one).iloc[0])
        ll = clv.ParetoNBDModel._log_likelihood(model.params_.to_numpy(), one["frequency"].to_numpy(),
                                                one["recency"].to_numpy(), one["T"].to_numpy(), np.ones(1))
        assert np.isfinite(ll)


def _posterior_future_purchases(params, x, t_x, T, horizon, rng, n=400_000):
    """E[purchases in (T, T + horizon] | x, t_x, T] by importance sampling from the prior with
    the individual-level likelihood (no closed form involved), and its Monte Carlo error."""
    lam = rng.gamma(params["r"], 1 / params["alpha"], n)
    mu = rng.gamma(params["s"], 1 / params["beta"], n)
    log_alive = x * np.log(lam) - (lam + mu) * T
    log_died = (x * np.log(lam) + np.log(mu / (lam + mu))
                + np.log(np.exp(-(lam + mu) * t_x) - np.exp(-(lam + mu) * T)))
    log_weight = np.logaddexp(log_alive, log_died)
    weight = np.exp(log_weight - log_weight.max())
    alive = rng.random(n) < np.exp(log_alive - log_weight)
    future = np.where(alive, rng.poisson(lam * np.minimum(horizon, rng.exponential(1 / mu))), 0)
    mean = np.sum(weight * future) / weight.sum()
    ess = weight.sum() ** 2 / np.sum(weight ** 2)
    sd = np.sqrt(np.sum(weight * (future - mean) ** 2) / weight.sum())
    return mean, sd / np.sqrt(ess), np.sum(weight * alive) / weight.sum()


def test_pareto_nbd_predictions_match_simulation(cdnow_pnbd):
    """P(alive) in [0, 1], and conditional and new-customer expectations and P(X(t) = k) against
    Monte Carlo draws from the fitted model (within 4 Monte Carlo standard errors)."""
    rng = np.random.default_rng(7)
    params = cdnow_pnbd.params_
    points = pd.DataFrame({"frequency": [0.0, 2, 7, 1], "recency": [0.0, 30.43, 10, 35],
                           "T": [38.86, 38.86, 38.86, 60]})
    alive = cdnow_pnbd.probability_alive(points)
    assert ((alive >= 0) & (alive <= 1)).all()
    expected = cdnow_pnbd.expected_purchases(39, points)
    for i, row in points.iterrows():
        mean, se, p_alive = _posterior_future_purchases(params, row["frequency"], row["recency"], row["T"], 39.0, rng)
        assert expected[i] == pytest.approx(mean, abs=4 * se), row.to_dict()
        assert alive[i] == pytest.approx(p_alive, abs=0.01), row.to_dict()

    n, horizon = 200_000, 39.0
    lam = rng.gamma(params["r"], 1 / params["alpha"], n)
    life = rng.exponential(1 / rng.gamma(params["s"], 1 / params["beta"], n))
    count = rng.poisson(lam * np.minimum(life, horizon))
    assert cdnow_pnbd.expected_purchases_new_customer(horizon) == pytest.approx(
        count.mean(), abs=4 * count.std() / np.sqrt(n))
    k = np.arange(6)
    observed = np.array([(count == j).mean() for j in k])
    gap = np.abs(cdnow_pnbd.probability_of_purchases(k, horizon) - observed)
    assert (gap <= 4 * np.sqrt(observed * (1 - observed) / n)).all(), gap
    total = cdnow_pnbd.probability_of_purchases(np.arange(400), horizon)
    assert total.sum() == pytest.approx(1, abs=1e-10)
    assert (np.arange(400) * total).sum() == pytest.approx(cdnow_pnbd.expected_purchases_new_customer(horizon), rel=1e-10)


def test_pareto_nbd_clv_uses_the_same_interface(cdnow, cdnow_pnbd):
    """DiscountedClv takes the Pareto/NBD model in place of BG/NBD (purchases_if_alive x P(alive))."""
    gg = clv.GammaGammaModel().fit(cdnow)
    month = clv.DAYS_PER_MONTH / 7
    one = cdnow.head(20)
    value = clv.discounted_clv(cdnow_pnbd, gg, one, 1, 0.0)
    np.testing.assert_allclose(value, cdnow_pnbd.expected_purchases(month, one) * gg.expected_spend(one),
                               rtol=1e-12)


def test_pareto_nbd_total_clv_labels_its_own_parameters(cdnow, cdnow_pnbd):
    """clv_uncertainty hands the Pareto/NBD parameters (r, alpha, s, beta) to the CLV: the total
    CLV equals the sum of the model's own discounted CLV, with a finite interval around it, and
    the gradient in s is the CLV's own slope in s."""
    gg = clv.GammaGammaModel().fit(cdnow)
    total = clv.total_clv(cdnow_pnbd, gg, cdnow, 12, 0.1).estimate
    assert total.estimate == pytest.approx(clv.discounted_clv(cdnow_pnbd, gg, cdnow, 12, 0.1).sum(), rel=1e-12)
    assert 0 < total.se < np.inf and total.ci_low < total.estimate < total.ci_high and total.n == len(cdnow)
    uncertainty = clv.clv_uncertainty(cdnow_pnbd, gg, cdnow, 12, 0.1)
    s_up = cdnow_pnbd.params_.copy()
    s_up["s"] *= 1.001
    slope = (clv.discounted_clv(cdnow_pnbd, gg, cdnow, 12, 0.1, purchase_params=s_up).sum() - total.estimate) / (
        s_up["s"] - cdnow_pnbd.params_["s"])
    assert uncertainty.clv_gradient[:, 2].sum() == pytest.approx(slope, rel=1e-2)


def test_pareto_probability_of_no_purchase_equals_a_simulation():
    """P(no purchase in t | history) of Pareto/NBD against drawing (lambda, mu) from the posterior
    given alive and the death time: silent when the next purchase comes after min(t, death)."""
    model = clv.ParetoNBDModel()
    model.params_ = pd.Series({"r": 0.8, "alpha": 6.0, "s": 0.6, "beta": 20.0})
    summary = pd.DataFrame({"frequency": [0.0, 3.0, 10.0], "recency": [0.0, 20.0, 50.0], "T": [30.0, 40.0, 52.0]})
    t = 26.0
    got = model.probability_no_purchase(t, summary).to_numpy()
    alive = model.probability_alive(summary).to_numpy()
    rng = np.random.default_rng(1)
    for i, row in summary.iterrows():
        lam = rng.gamma(0.8 + row["frequency"], 1 / (6.0 + row["T"]), 400_000)
        mu = rng.gamma(0.6, 1 / (20.0 + row["T"]), 400_000)
        silent = rng.exponential(1 / lam) > np.minimum(t, rng.exponential(1 / mu))
        assert got[i] == pytest.approx(1 - alive[i] + alive[i] * silent.mean(), abs=3e-3)
    other = clv.ParetoNBDModel()
    other.params_ = pd.Series({"r": 2.0, "alpha": 3.0, "s": 1.5, "beta": 10.0})
    np.testing.assert_array_equal(model.probability_no_purchase(t, summary, other.params_),
                                  other.probability_no_purchase(t, summary))


# -- BG/BB -----------------------------------------------------------------------------------------

def test_bgbb_reproduces_published_donations_estimates(donations):
    """Fader, Hardie & Shang (2010), 11,104 donors, 6 opportunities: alpha = 1.204, beta = 0.750,
    gamma = 0.657, delta = 2.783, LL = -33,225.6."""
    model = clv.BetaGeoBetaBinomModel().fit(donations)
    published = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}
    for name, value in published.items():
        assert model.params_[name] == pytest.approx(value, rel=0.005), name
    assert model.log_likelihood_ == pytest.approx(-33225.6, rel=0.005)
    assert model.log_likelihood_ == pytest.approx(-33225.6, abs=0.1)
    assert model.n_customers_ == 11104 and model.converged_ and model.warnings_ == []
    assert (model.standard_errors_ > 0).all()
    alive = model.probability_alive(donations)
    assert ((alive > 0) & (alive < 1)).all()
    # more past transactions, same recency: more expected
    assert (model.expected_transactions(5, donations) >= 0).all()


def test_bgbb_predictions_match_simulation(donations):
    """New-customer and conditional expectations against draws from the BG/BB process."""
    model = clv.BetaGeoBetaBinomModel().fit(donations)
    a, b, g, d = model.params_
    rng = np.random.default_rng(5)
    n, periods, future = 400_000, 6, 5
    p, theta = rng.beta(a, b, n), rng.beta(g, d, n)
    alive = np.ones(n, bool)
    tx = np.zeros((n, periods + future), bool)
    for j in range(periods + future):
        alive &= rng.random(n) >= theta  # dies at the start of opportunity j with probability theta
        tx[:, j] = alive & (rng.random(n) < p)
    counts = tx[:, :periods].sum(axis=1)
    assert model.expected_transactions_new_customer(periods) == pytest.approx(
        counts.mean(), abs=4 * counts.std() / np.sqrt(n))
    summary = clv.repeat_summary(tx[:, :periods])
    assert summary["weights"].sum() == n
    later = tx[:, periods:].sum(axis=1)
    last = np.where(tx[:, :periods].any(axis=1), periods - np.argmax(tx[:, :periods][:, ::-1], axis=1), 0)
    expected = model.expected_transactions(future, summary)
    for i in range(0, len(summary), 5):
        row = summary.iloc[i]
        group = later[(counts == row["frequency"]) & (last == row["recency"])]
        if len(group) > 2000:
            assert expected.iloc[i] == pytest.approx(group.mean(), abs=4 * group.std() / np.sqrt(len(group)) + 1e-3)


def test_repeat_summary_of_a_binary_matrix():
    matrix = [[0, 0, 0], [1, 0, 1], [1, 0, 1], [0, 1, 0], [1, 1, 1]]
    summary = clv.repeat_summary(matrix)
    expected = pd.DataFrame({"frequency": [0, 1, 2, 3], "recency": [0, 2, 3, 3], "n_periods": 3,
                             "weights": [1, 1, 2, 1]})
    pd.testing.assert_frame_equal(summary, expected, check_dtype=False)


# -- degenerate fits are flagged, never raised -----------------------------------------------------

def test_bgnbd_on_the_donations_data_is_flagged(donations):
    """Donations as continuous-time BG/NBD data (recency and T in opportunities): the likelihood
    runs off to a -> 0 (the issue saw a = 2.6e-7, b = 75,097 and NaN standard errors)."""
    rows = donations.loc[donations.index.repeat(donations["weights"])]
    summary = pd.DataFrame({"frequency": rows["frequency"].to_numpy(float),
                            "recency": rows["recency"].to_numpy(float), "T": rows["n_periods"].to_numpy(float)})
    bg = clv.BetaGeoModel().fit(summary)
    assert not bg.converged_
    assert any(w.key == "boundary_zero" and w.values["parameter"] == "a" for w in bg.warnings_)
    assert any(w.startswith("boundary_zero (parameter=a, value=") for w in bg.warnings_)  # reads in a notebook


def test_gamma_gamma_without_within_customer_variation_is_flagged():
    """Every purchase of a customer costs the same (inverse-gamma prices across customers): the
    Gamma-Gamma limit p -> infinity, v -> 0 with p v fixed, as in the issue (p = 9.6e8, v = 8.5e-8)."""
    rng = np.random.default_rng(5)
    n = 2000
    spend = pd.DataFrame({"frequency": rng.integers(1, 8, n).astype(float),
                          "monetary_value": 50.0 / rng.gamma(3.0, 1.0, n)})
    gg = clv.GammaGammaModel().fit(spend)
    assert not gg.converged_ and gg.warnings_
    assert {(w.key, w.values["parameter"]) for w in gg.warnings_ if "parameter" in w.values} == {
        ("boundary_infinity", "p"), ("boundary_zero", "v")}
    assert any(w.startswith("boundary_infinity (parameter=p, value=") for w in gg.warnings_)


def test_well_identified_fits_are_not_flagged(cdnow):
    for model in (clv.BetaGeoModel().fit(cdnow), clv.GammaGammaModel().fit(cdnow)):
        assert model.converged_ and model.warnings_ == [], model.warnings_


def test_new_models_without_repeat_purchases_say_so():
    one_time = pd.DataFrame({"frequency": 0.0, "recency": 0.0, "T": [10.0, 20.0, 30.0]})
    pnbd = clv.ParetoNBDModel().fit(one_time)
    assert not pnbd.converged_ and pnbd.warnings_[0] == "no_repeat_purchases (customers=3)" and pnbd.params_.isna().all()
    assert pnbd.warnings_ == [clv.FitWarning("no_repeat_purchases", {"customers": 3})]
    assert pnbd.warnings_[0].values == {"customers": 3}
    never = pd.DataFrame({"frequency": [0], "recency": [0], "n_periods": [6], "weights": [100]})
    bgbb = clv.BetaGeoBetaBinomModel().fit(never)
    assert not bgbb.converged_ and bgbb.warnings_[0].key == "no_transactions" and bgbb.params_.isna().all()


def _simulate_bgbb(params, n, periods, future, rng):
    """The BG/BB process: per customer p ~ Beta(alpha, beta), theta ~ Beta(gamma, delta); at each
    opportunity an alive customer first dies with probability theta, then, alive, transacts with
    probability p. Returns the transactions (customers x opportunities) and whether each customer
    is alive at each opportunity."""
    p, theta = rng.beta(params["alpha"], params["beta"], n), rng.beta(params["gamma"], params["delta"], n)
    alive = np.ones(n, bool)
    tx = np.zeros((n, periods + future), bool)
    alive_at = np.zeros_like(tx)
    for j in range(periods + future):
        alive &= rng.random(n) >= theta
        alive_at[:, j] = alive
        tx[:, j] = alive & (rng.random(n) < p)
    return tx, alive_at


def test_bgbb_predictions_if_alive_and_of_no_purchase_match_simulation(donations):
    """Per history (x, t_x, n = 6): P(alive at the next opportunity), the transactions of the next
    t opportunities of the customers alive then (purchases_if_alive), and P(no transaction in
    them), against the simulated process (4 Monte Carlo standard errors); and
    expected_purchases = expected_transactions = P(alive) x purchases_if_alive."""
    model = clv.BetaGeoBetaBinomModel().fit(donations)
    rng = np.random.default_rng(11)
    periods, future = 6, 4
    tx, alive_at = _simulate_bgbb(model.params_, 400_000, periods, future, rng)
    summary = clv.repeat_summary(tx[:, :periods])
    counts = tx[:, :periods].sum(axis=1)
    last = np.where(counts > 0, periods - np.argmax(tx[:, :periods][:, ::-1], axis=1), 0)
    alive_next = alive_at[:, periods]
    x, n = summary["frequency"].to_numpy(float), summary["n_periods"].to_numpy(float)
    p_alive = model.probability_alive(summary)
    checked = 0
    for t in (1, 4):
        if_alive = model.purchases_if_alive(t, x, n)
        expected = model.expected_purchases(t, summary)
        np.testing.assert_allclose(expected, model.expected_transactions(t, summary), rtol=1e-12)
        np.testing.assert_allclose(expected, p_alive * if_alive, rtol=1e-10)
        silent = model.probability_no_purchase(t, summary)
        later = tx[:, periods:periods + t].sum(axis=1)
        for i, row in summary.iterrows():
            group = (counts == row["frequency"]) & (last == row["recency"])
            alive_group = group & alive_next
            if alive_group.sum() < 2000:
                continue
            checked += 1
            a = later[alive_group]
            assert if_alive[i] == pytest.approx(a.mean(), abs=4 * a.std() / np.sqrt(len(a))), (t, row.to_dict())
            none = (later[group] == 0).mean()
            assert silent[i] == pytest.approx(none, abs=4 * np.sqrt(none * (1 - none) / group.sum())), row.to_dict()
            share = alive_next[group].mean()
            assert p_alive[i] == pytest.approx(share, abs=4 * np.sqrt(share * (1 - share) / group.sum()))
    assert checked >= 10


def test_bgbb_purchases_if_alive_closed_form_equals_the_sum():
    """The closed form of sum_{i<m} E[(1 - theta)^i] against the direct sum of Beta-function
    ratios, for gamma below, at and above 1; t counts whole opportunities."""
    model = clv.BetaGeoBetaBinomModel()
    x, n = np.array([0.0, 2.0, 5.0, 3.0]), np.array([0.0, 6.0, 6.0, 30.0])
    for gamma in (0.4, 1.0, 1.0 + 1e-9, 2.5):
        params = pd.Series({"alpha": 1.2, "beta": 0.8, "gamma": gamma, "delta": 2.7})
        for m in (1, 3, 12):
            c = params["delta"] + n + 1
            terms = [np.exp(special.betaln(gamma, c + i) - special.betaln(gamma, c)) for i in range(m)]
            direct = (params["alpha"] + x) / (params["alpha"] + params["beta"] + n) * np.sum(terms, axis=0)
            np.testing.assert_allclose(model.purchases_if_alive(m, x, n, params), direct, rtol=1e-9)
            np.testing.assert_array_equal(model.purchases_if_alive(m + 0.7, x, n, params),
                                          model.purchases_if_alive(m, x, n, params))
    assert model.purchases_if_alive(0.5, 1.0, 6.0, params) == 0


def test_bgbb_clv_uses_the_discounted_clv_interface(donations):
    """DiscountedClv with BG/BB (opportunities of a year, the summary's age column T = n_periods):
    opportunity k of the horizon is discounted at k years, and the total's gradient in gamma is
    the CLV's own slope."""
    model = clv.BetaGeoBetaBinomModel().fit(donations)
    summary = donations.assign(T=donations["n_periods"], monetary_value=np.linspace(20.0, 80.0, len(donations)))
    summary["frequency"] = summary["frequency"].astype(float)
    gg = clv.GammaGammaModel()
    gg.params_ = pd.Series({"p": 6.0, "q": 4.0, "v": 15.0})
    gg.covariance_ = pd.DataFrame(np.diag([0.5, 0.3, 2.0]), index=gg.names, columns=gg.names)
    value = clv.discounted_clv(model, gg, summary, 36, 0.1, period_days=365.25)
    yearly = [model.expected_purchases(k, summary) for k in (0, 1, 2, 3)]
    expected = sum((yearly[k] - yearly[k - 1]) / 1.1 ** k for k in (1, 2, 3)) * gg.expected_spend(summary)
    np.testing.assert_allclose(value, expected, rtol=1e-9)
    uncertainty = clv.clv_uncertainty(model, gg, summary, 36, 0.1, period_days=365.25)
    up = model.params_.copy()
    up["gamma"] *= 1.001
    slope = (clv.discounted_clv(model, gg, summary, 36, 0.1, 365.25, purchase_params=up).sum() - value.sum()) / (
        up["gamma"] - model.params_["gamma"])
    assert uncertainty.clv_gradient[:, 2].sum() == pytest.approx(slope, rel=1e-2)
    assert uncertainty.total().estimate == pytest.approx(value.sum(), rel=1e-12)


def test_bgbb_fits_customer_rows_as_their_distinct_histories(donations):
    rows = donations.loc[donations.index.repeat(donations["weights"])].drop(columns="weights")
    per_customer = clv.BetaGeoBetaBinomModel().fit(rows.sample(frac=1.0, random_state=3))
    weighted = clv.BetaGeoBetaBinomModel().fit(donations)
    np.testing.assert_allclose(per_customer.params_, weighted.params_, rtol=1e-6)
    assert per_customer.n_customers_ == 11104
    assert per_customer.log_likelihood_ == pytest.approx(weighted.log_likelihood_, rel=1e-10)
