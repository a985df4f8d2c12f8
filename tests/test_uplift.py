"""Uplift models and the Qini curve (custlib.uplift) on small hand-computed and simulated examples.
Their use on the demo's campaigns is tested in test_marketing.py."""

import itertools

import numpy as np
import pandas as pd
import pytest
from test_presentation import test_analyses_compute_only as computes_only

from custlib import uplift

# eight customers, best predicted first: treated 1/0 alternating; converted: t1, c0, t1, c1, t0, c0, t0, c0
PREDICTED = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
TREATED = np.array([1, 0, 1, 0, 1, 0, 1, 0])
CONVERTED = np.array([1, 0, 1, 1, 0, 0, 0, 0])


def test_uplift_computes_only():
    computes_only("uplift")


def test_qini_curve_by_hand():
    # Q(k) = n_t1 - n_c1 * N_t / N_c over the top k (control term 0 while the top has no control):
    # k=1: 1 - 0; 2: 1 - 0*1/1; 3: 2 - 0; 4: 2 - 1*2/2; 5: 2 - 1*3/2; 6: 2 - 1*3/3; 7: 2 - 1*4/3; 8: 2 - 1*4/4
    q = np.array([0, 1, 1, 2, 1, 0.5, 1, 2 / 3, 1]) / 4  # per treated customer (N_t = 4)
    p = uplift.qini_points(PREDICTED, TREATED, CONVERTED)
    assert p["share_targeted"].tolist() == pytest.approx(np.arange(9) / 8)
    assert p["incremental"].tolist() == pytest.approx(q)
    # q(1) = treated rate 2/4 - control rate 1/4; random targeting is the line through it
    assert p["incremental"].iloc[-1] == pytest.approx(0.25) and p["random"].tolist() == pytest.approx(np.arange(9) / 32)
    # trapezoids under the curve, minus the area under the random line (0.25 / 2)
    under = sum((a + b) / 2 / 8 for a, b in itertools.pairwise(q))
    assert under == pytest.approx(1.916667 / 8, abs=1e-6)
    area = uplift.qini_area(PREDICTED, TREATED, CONVERTED, reps=50, seed=1)
    assert area.estimate == pytest.approx(under - 0.125) and area.n == 8


def test_qini_curve_does_not_depend_on_row_order_and_treats_equal_predictions_as_one_step():
    order = np.random.default_rng(3).permutation(8)
    shuffled = uplift.qini_points(PREDICTED[order], TREATED[order], CONVERTED[order])
    pd.testing.assert_frame_equal(shuffled, uplift.qini_points(PREDICTED, TREATED, CONVERTED))
    # all predictions equal: no ranking, the curve is the random line itself and the area is 0
    flat = uplift.qini_points(np.zeros(8), TREATED, CONVERTED)
    assert flat["share_targeted"].tolist() == [0.0, 1.0] and flat["incremental"].tolist() == pytest.approx([0, 0.25])
    assert uplift.qini_area(np.zeros(8), TREATED, CONVERTED, reps=50, seed=1).estimate == pytest.approx(0.0)
    # the first two tied: one point at k = 2, Q = 1 - 0 * 1 / 1
    tied = uplift.qini_points(np.r_[0.9, 0.9, PREDICTED[2:]], TREATED, CONVERTED)
    assert tied["share_targeted"].tolist() == pytest.approx(np.r_[0, np.arange(2, 9)] / 8)


def _simulated(n: int, heterogeneous: bool, seed: int) -> pd.DataFrame:
    """Random assignment (15% controls), a binary segment ``x``: base conversion 0.2; the
    campaign adds 0.15 in segment b and nothing in a (heterogeneous), else 0.075 everywhere."""
    rng = np.random.default_rng(seed)
    x = rng.choice(["a", "b"], n)
    treated = (rng.random(n) < 0.85).astype(int)
    effect = np.where(x == "b", 0.15, 0.0) if heterogeneous else np.full(n, 0.075)
    converted = (rng.random(n) < 0.2 + treated * effect).astype(int)
    return pd.DataFrame({"x": x, "noise": rng.normal(size=n), "treated": treated, "converted": converted})


def test_qini_interval_is_above_zero_for_an_informative_ranking():
    informative = _simulated(6000, True, 1)
    score = (informative["x"] == "b").to_numpy(float)
    a = uplift.qini_area(score, informative["treated"], informative["converted"], reps=200, seed=2)
    # expected area: half the customers gain 0.15, q(phi) rises to 0.075 at phi = 0.5 and stays:
    # (0.5 * 0.075 / 2 + 0.5 * 0.075) - 0.075 / 2 = 0.01875
    assert 0 < a.ci_low < 0.01875 < a.ci_high


def test_qini_area_of_an_uninformative_ranking_is_zero_on_average_and_the_bootstrap_error_is_its_spread():
    """200 simulated campaigns with the same effect for everyone, ranked at random: the areas
    (trapezoids of the curve points minus the random line) average 0 and spread as the bootstrap
    standard error of one of them says."""
    areas = []
    for seed in range(200):
        sim = _simulated(3000, False, seed)
        p = uplift.qini_points(sim["noise"], sim["treated"], sim["converted"])
        areas.append(np.trapezoid(p["incremental"] - p["random"], p["share_targeted"]))
    spread = np.std(areas, ddof=1)
    assert abs(np.mean(areas)) < 3 * spread / np.sqrt(200)
    one = _simulated(3000, False, 0)
    a = uplift.qini_area(one["noise"], one["treated"], one["converted"], reps=300, seed=2)
    assert a.estimate == pytest.approx(areas[0])
    assert a.se == pytest.approx(spread, rel=0.2) and a.ci_high - a.ci_low == pytest.approx(3.92 * spread, rel=0.25)


def test_two_model_uplift_ranks_by_uplift_not_by_response():
    """Segment a converts 80% whether treated or not (response high, uplift 0); segment b 10%
    without and 40% with the campaign (response lower, uplift 0.3)."""
    rows = [("a", 1, 800, 1000), ("a", 0, 800, 1000), ("b", 1, 400, 1000), ("b", 0, 100, 1000)]
    df = pd.DataFrame([(x, t, int(i < k)) for x, t, k, n in rows for i in range(n)],
                      columns=["segment", "treated", "converted"])
    m = uplift.TwoModelUplift.fit(df[["segment"]], df["treated"], df["converted"])
    new = pd.DataFrame({"segment": ["a", "b"]})
    treated, control = m.response(new)
    # the ridge pulls each arm's segment rates a little toward the arm's overall rate
    assert treated == pytest.approx([0.8, 0.4], abs=0.02) and control == pytest.approx([0.8, 0.1], abs=0.02)
    assert m.predict(new) == pytest.approx([0.0, 0.3], abs=0.02)
    assert treated[0] > treated[1] and m.predict(new)[1] > m.predict(new)[0]
    # a level not seen in fitting is coded as no level (the intercepts only), not an error
    assert np.isfinite(m.predict(pd.DataFrame({"segment": ["c"]}))).all()


def test_on_grid_interpolates_the_curve():
    g = uplift.on_grid(uplift.qini_points(PREDICTED, TREATED, CONVERTED), 5)
    assert g["share_targeted"].tolist() == [0, 0.25, 0.5, 0.75, 1]
    # at phi = 0.25 (k = 2) q = 1/4; at 0.5 (k = 4) 1/4; at 0.75 (k = 6) 1/4
    assert g["incremental"].tolist() == pytest.approx([0, 0.25, 0.25, 0.25, 0.25])
    assert g["random"].tolist() == pytest.approx([0, 0.0625, 0.125, 0.1875, 0.25])


def test_cross_fitted_qini_is_the_mean_of_the_folds():
    sim = _simulated(800, True, 3)
    score = (sim["x"] == "b").to_numpy(float) + sim["noise"].to_numpy() / 10
    folds = [(score[k::2], sim["treated"].to_numpy()[k::2], sim["converted"].to_numpy()[k::2]) for k in (0, 1)]
    curve, area = uplift.cross_fitted_qini(folds, 5, reps=50, seed=7)
    each = [uplift.qini_area(*f, reps=50, seed=7 + k) for k, f in enumerate(folds)]
    for attribute in ("estimate", "se", "ci_low", "ci_high"):
        assert getattr(area, attribute) == pytest.approx(np.mean([getattr(e, attribute) for e in each]))
    assert area.n == 800
    grids = [uplift.on_grid(uplift.qini_points(*f), 5) for f in folds]
    assert curve["incremental"].to_numpy() == pytest.approx((grids[0]["incremental"] + grids[1]["incremental"]) / 2)


def _no_effect_campaign(seed: int, n: int = 2000) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Random assignment (15% controls), five covariates that move conversion, no campaign effect."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(n, 5)), columns=[f"x{i}" for i in range(5)])
    treated = (rng.random(n) < 0.85).astype(int)
    converted = (rng.random(n) < 1 / (1 + np.exp(1.5 - 0.5 * x["x0"]))).astype(int)
    return x, treated, converted


def test_the_cross_fitted_interval_is_not_too_narrow_when_there_is_nothing_to_find():
    """40 campaigns without effect, each fold scored by the model fitted on the other: area /
    standard error averages 0 and spreads about as a standard normal (sd 1.06 here; 1.01 over 100
    campaigns), while one ranking pooled over the two models spreads wider than its bootstrap
    says (1.38 over 100), which is why the folds are evaluated one by one."""
    from sklearn.model_selection import StratifiedKFold

    by_fold, pooled = [], []
    for seed in range(40):
        x, d, y = _no_effect_campaign(seed)
        folds, predicted = [], np.empty(len(d))
        for fit, score in StratifiedKFold(2, shuffle=True, random_state=seed).split(x, 2 * d + y):
            predicted[score] = uplift.TwoModelUplift.fit(x.iloc[fit], d[fit], y[fit]).predict(x.iloc[score])
            folds.append((predicted[score], d[score], y[score]))
        _, area = uplift.cross_fitted_qini(folds, 5, reps=100, seed=seed)
        by_fold.append(area.estimate / area.se)
        one = uplift.qini_area(predicted, d, y, reps=100, seed=seed)
        pooled.append(one.estimate / one.se)
    assert abs(np.mean(by_fold)) < 0.5 and np.std(by_fold, ddof=1) < 1.2
    assert np.std(pooled, ddof=1) > np.std(by_fold, ddof=1)
