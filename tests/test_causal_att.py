"""The generic ATT estimators (custlib.causal.att) on the Dehejia-Wahba NSW data: IPW and AIPW
recover the experimental benchmark from non-experimental controls, and every method gives the
same answer however tightly the propensity model is fitted and however the rows are ordered.
Matching's ties, caliper and Abadie-Imbens variance on small hand-made frames.

NSW data: tests/data/nsw_dw.csv.gz (tests/data/README.md). Propensity specification: the
Dehejia-Wahba covariates (age, education, black, hispanic, married, nodegree, re74, re75) plus
u74, u75 (no earnings in 1974 / 1975) and higher-order terms of the kind Dehejia & Wahba (1999)
add: age^2, age^3, education^2, re74^2, re75^2 and education x re74; the same specification for
both comparison groups, and the outcome model of AIPW is linear in the same terms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from conftest import DATA

from custlib.causal import att
from custlib.stats import Unavailable

BENCHMARK = 1794.34  # NSW experiment: treated minus randomised controls, 1978 earnings (US$)
COVARIATES = ["age", "education", "black", "hispanic", "married", "nodegree", "re74", "re75", "u74", "u75",
              "age2", "age3", "education2", "re74_2", "re75_2", "education_re74"]
METHODS = ["ipw", "aipw", "matching"]


@pytest.fixture(scope="module")
def nsw() -> pd.DataFrame:
    df = pd.read_csv(DATA / "nsw_dw.csv.gz")
    return df.assign(u74=(df["re74"] == 0).astype(int), u75=(df["re75"] == 0).astype(int),
                     age2=df["age"] ** 2, age3=df["age"] ** 3, education2=df["education"] ** 2,
                     re74_2=df["re74"] ** 2, re75_2=df["re75"] ** 2,
                     education_re74=df["education"] * df["re74"])


def observational(nsw: pd.DataFrame, controls: str) -> pd.DataFrame:
    """NSW treated men against one non-experimental comparison sample."""
    df = nsw[nsw["sample"].isin(["nsw_treated", controls])]
    return df.assign(treated=(df["sample"] == "nsw_treated").astype(int)).reset_index(drop=True)


def test_vendored_samples_match_the_papers(nsw):
    """Sizes of Dehejia & Wahba (1999); the experimental benchmark and naive gaps they report."""
    assert nsw["sample"].value_counts().to_dict() == {"cps1": 15_992, "psid1": 2_490, "nsw_control": 260,
                                                     "nsw_treated": 185}
    mean = nsw.groupby("sample")["re78"].mean()
    assert mean["nsw_treated"] - mean["nsw_control"] == pytest.approx(BENCHMARK, abs=0.01)
    assert mean["nsw_treated"] - mean["psid1"] == pytest.approx(-15_205, abs=1)
    assert mean["nsw_treated"] - mean["cps1"] == pytest.approx(-8_498, abs=1)


@pytest.mark.parametrize("controls", ["psid1", "cps1"])
@pytest.mark.parametrize("method", ["ipw", "aipw"])
def test_weighting_intervals_cover_the_experimental_benchmark(nsw, controls, method):
    r = att.estimate_att(observational(nsw, controls), "treated", "re78", COVARIATES, method)
    assert r.estimate.ci_low < BENCHMARK < r.estimate.ci_high
    assert r.n_treated >= 184 and r.n_control == {"psid1": 2_490, "cps1": 15_992}[controls]


def test_weighting_estimates_equal_an_independent_converged_fit(nsw):
    """IPW and AIPW by hand from a statsmodels Newton fit of the unpenalised logit (CPS-1, the
    eight Dehejia-Wahba covariates and u74, u75: no treated row is trimmed)."""
    df = observational(nsw, "cps1")
    x = sm.add_constant(df[COVARIATES[:10]].to_numpy(dtype=float))
    d, y = df["treated"].to_numpy(), df["re78"].to_numpy()
    logit = sm.Logit(d, x).fit(method="newton", maxiter=100, tol=1e-12, disp=0)
    assert logit.mle_retvals["converged"]
    odds = np.exp(x @ logit.params)  # e / (1 - e): the controls' weights
    ipw = y[d == 1].mean() - np.average(y[d == 0], weights=odds[d == 0])
    resid = y - x @ np.linalg.lstsq(x[d == 0], y[d == 0], rcond=None)[0]
    aipw = resid[d == 1].mean() - np.average(resid[d == 0], weights=odds[d == 0])
    for method, expected in (("ipw", ipw), ("aipw", aipw)):
        r = att.estimate_att(df, "treated", "re78", COVARIATES[:10], method)
        assert r.n_trimmed == 0
        assert r.estimate.estimate == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("controls", ["psid1", "cps1"])
@pytest.mark.parametrize("method", METHODS)
def test_estimates_do_not_move_with_the_tolerance_or_the_row_order(nsw, controls, method):
    df = observational(nsw, controls)
    fit = lambda frame, tol: att.estimate_att(frame, "treated", "re78", COVARIATES, method, tol=tol)
    ref = fit(df, 1e-8)
    shuffled = df.sample(frac=1, random_state=3)
    for other in (fit(df, 1e-12), fit(shuffled, 1e-8), fit(shuffled.reset_index(drop=True), 1e-12)):
        for scale in ("estimate", "relative"):
            a, b = getattr(other, scale), getattr(ref, scale)
            assert a.estimate == pytest.approx(b.estimate, rel=1e-6, abs=0)
            assert a.se == pytest.approx(b.se, rel=1e-6, abs=0)
        assert (other.n_treated, other.n_control, other.n_unmatched) == (ref.n_treated, ref.n_control, ref.n_unmatched)


@pytest.mark.parametrize("method", METHODS)
def test_a_loose_tolerance_does_move_the_estimates(nsw, method):
    """The tolerance reaches the fit: stopped early, every method is off (what the test above rules out)."""
    df = observational(nsw, "cps1")
    loose, tight = (att.estimate_att(df, "treated", "re78", COVARIATES, method, tol=tol) for tol in (1e-1, 1e-8))
    assert abs(loose.estimate.estimate / tight.estimate.estimate - 1) > 1e-4


def _frame(x_treated, x_control, y_treated, y_control) -> pd.DataFrame:
    return pd.DataFrame({"d": [1] * len(x_treated) + [0] * len(x_control),
                         "x": np.r_[x_treated, x_control].astype(float),
                         "y": np.r_[y_treated, y_control].astype(float)})


def test_matching_keeps_all_controls_tied_with_the_kth_and_shares_the_weight():
    """One covariate: the logit score is linear in x, so distances are |x difference|.
    Treated x=0 (y 10) and x=3 (y 20); controls at -1, 1, 3, 3, 6 (y 1, 3, 5, 7, 9)."""
    df = _frame([0, 3], [-1, 1, 3, 3, 6], [10, 20], [1, 3, 5, 7, 9])
    fit = lambda frame, k: att.estimate_att(frame, "d", "y", ["x"], "matching", neighbours=k, caliper=None)
    # k = 1: x=0 ties -1 and 1 (y0 = 2); x=3 ties both controls at 3 (y0 = 6)
    one = fit(df, 1)
    assert one.estimate.estimate == pytest.approx(((10 - 2) + (20 - 6)) / 2)
    assert one.n_control == 4
    # k = 3: x=0 takes -1, 1 and both 3s (tied third, y0 = 4); x=3 takes 3, 3 and 1 (y0 = 5)
    three = fit(df, 3)
    assert three.estimate.estimate == pytest.approx(((10 - 4) + (20 - 5)) / 2)
    assert three.balance.set_index("covariate").loc["x", "control_mean_weighted"] == pytest.approx(
        (-1 / 4 + 1 * (1 / 4 + 1 / 3) + 3 * 2 * (1 / 4 + 1 / 3)) / 2)
    for k, r in ((1, one), (3, three)):
        for seed in range(5):
            again = fit(df.sample(frac=1, random_state=seed), k)
            assert (again.estimate.estimate, again.estimate.se) == pytest.approx((r.estimate.estimate, r.estimate.se),
                                                                                rel=1e-12)


def _matches(x: float, pool: np.ndarray, k: int) -> np.ndarray:
    """Indices of ``pool`` matched to ``x``: the k nearest and all tied with the k-th (exact integers)."""
    distance = np.abs(pool - x)
    return np.flatnonzero(distance <= np.sort(distance)[min(k, len(pool)) - 1])


def _abadie_imbens_se(df: pd.DataFrame, k: int, j: int = 2) -> tuple[float, float]:
    """Matching ATT and its Abadie & Imbens (2006) standard error, pair by pair."""
    t, c = df[df["d"] == 1], df[df["d"] == 0]
    xc, yc = c["x"].to_numpy(), c["y"].to_numpy()
    used = np.zeros(len(c))  # K(i): summed weights of control i
    used_sq = np.zeros(len(c))  # K'(i): summed squared weights
    gaps = []
    for x, y in zip(t["x"], t["y"]):
        m = _matches(x, xc, k)
        used[m] += 1 / len(m)
        used_sq[m] += 1 / len(m) ** 2
        gaps.append(y - yc[m].mean())
    tau = np.mean(gaps)
    variance = np.sum((np.array(gaps) - tau) ** 2)
    for i in range(len(c)):
        others = np.delete(np.arange(len(c)), i)
        m = others[_matches(xc[i], xc[others], j)]
        sigma2 = len(m) / (len(m) + 1) * (yc[i] - yc[m].mean()) ** 2
        variance += (used[i] ** 2 - used_sq[i]) * sigma2
    return tau, np.sqrt(variance) / len(t)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_matching_standard_error_is_the_abadie_imbens_formula(k):
    """Integer covariate: many ties and controls used many times."""
    rng = np.random.default_rng(11)
    xt, xc = rng.integers(0, 8, 15), rng.integers(0, 10, 25)
    df = _frame(xt, xc, 2 + xt + rng.normal(size=15), xc + rng.normal(size=25) * (1 + xc / 5))
    r = att.estimate_att(df, "d", "y", ["x"], "matching", neighbours=k, caliper=None)
    tau, se = _abadie_imbens_se(df, k)
    assert r.estimate.estimate == pytest.approx(tau, rel=1e-12)
    assert r.estimate.se == pytest.approx(se, rel=1e-12)


def test_caliper_drops_treated_rows_without_a_close_control():
    """Caliper 0.2 pooled standard deviations of the logit score; with one covariate that is 0.2
    pooled standard deviations of x."""
    df = _frame([-1.05, 0.02, 1.5, 5.0], [-3, -2, -1, 0, 1, 2, 8, 9], [4, 6, 8, 30], [0, 1, 2, 3, 4, 5, 6, 7])
    xt, xc = df.loc[df["d"] == 1, "x"], df.loc[df["d"] == 0, "x"]
    width = 0.2 * np.sqrt((xt.var() + xc.var()) / 2)
    nearest = np.array([np.abs(xc.to_numpy() - x).min() for x in xt])
    assert list(nearest <= width) == [True, True, True, False]  # x = 5 is 3 from the nearest control
    r = att.estimate_att(df, "d", "y", ["x"], "matching")
    assert (r.caliper, r.n_unmatched, r.n_treated) == (0.2, 1, 3)
    assert r.estimate.estimate == pytest.approx(((4 - 2) + (6 - 3) + (8 - 4.5)) / 3)  # 1.5: 1 and 2 tie
    wide = att.estimate_att(df, "d", "y", ["x"], "matching", caliper=None)
    assert (wide.caliper, wide.n_unmatched, wide.n_treated) == (None, 0, 4)
    none = att.estimate_att(df, "d", "y", ["x"], "matching", caliper=1e-6)
    assert isinstance(none, Unavailable) and none.key == "causal.att.no_match_within_caliper"


def test_a_fit_that_does_not_converge_is_unavailable(monkeypatch):
    df = _frame([0, 3], [-1, 1, 3, 3, 6], [10, 20], [1, 3, 5, 7, 9])
    monkeypatch.setattr(att, "NEWTON_STEPS", 1)
    r = att.estimate_att(df, "d", "y", ["x"], "ipw")
    assert isinstance(r, Unavailable) and r.key == "causal.att.not_converged" and r.values == {"steps": 1}
