"""Generic causal estimators (custlib.causal): ATT by IPW, matching and AIPW on hand-computed
tiny frames and a simulated intervention (the DiD: tests/test_causal_did.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custlib.causal import att
from custlib.stats import Unavailable


@pytest.fixture
def six_rows():
    """x = 0: one treated of three (e = 1/3); x = 1: two treated of three (e = 2/3). Control
    weights e/(1-e): 0.5, 0.5, 2. ATT = mean(5, 8, 10) - (0.5*1 + 0.5*3 + 2*4) / 3 = 13/3,
    the same as exact stratification: (1 * (5 - 2) + 2 * (9 - 4)) / 3."""
    return pd.DataFrame({"d": [1, 0, 0, 1, 1, 0], "x": [0, 0, 0, 1, 1, 1], "y": [5.0, 1, 3, 8, 10, 4],
                         "id": list("abcdef")})


@pytest.mark.parametrize("method", ["ipw", "aipw"])
def test_weighting_estimators_reproduce_hand_computed_att(six_rows, method):
    r = att.estimate_att(six_rows, "d", "y", ["x"], method)
    assert r.estimate.estimate == pytest.approx(13 / 3, abs=1e-3)
    assert r.n_treated == 3 and r.n_control == 3
    assert r.counterfactual_mean == pytest.approx(23 / 3 - 13 / 3, abs=1e-3)
    assert r.relative.estimate == pytest.approx((13 / 3) / (10 / 3), abs=1e-3)
    b = r.balance.set_index("covariate").loc["x"]
    assert b["smd_before"] == pytest.approx((2 / 3 - 1 / 3) / np.sqrt(1 / 3))
    assert b["smd_after"] == pytest.approx(0.0, abs=1e-3)
    assert b["control_mean_weighted"] == pytest.approx(2 / 3, abs=1e-3)
    assert r.estimate.ci_low < r.estimate.estimate < r.estimate.ci_high


def test_matching_pairs_nearest_controls_with_replacement():
    df = pd.DataFrame({"d": [1, 1, 1, 0, 0, 0], "x": [1.0, 5.0, 5.1, 1.1, 4.8, 10.0],
                       "y": [3.0, 9.0, 11.0, 1.0, 6.0, 20.0]})
    r = att.estimate_att(df, "d", "y", ["x"], "matching")
    # pairs: (3 - 1), (9 - 6), (11 - 6): the control at 4.8 is used twice, the one at 10 never
    assert r.estimate.estimate == pytest.approx((2 + 3 + 5) / 3)
    assert r.n_control == 2
    assert r.balance.set_index("covariate").loc["x", "control_mean_weighted"] == pytest.approx((1.1 + 2 * 4.8) / 3)


def test_estimators_remove_confounding_on_a_simulated_intervention():
    """Treatment more likely for high x, outcome rising with x; true ATT 1.5."""
    rng = np.random.default_rng(7)
    n = 4000
    x = rng.normal(size=n)
    d = (rng.random(n) < 1 / (1 + np.exp(-(x - 0.5)))).astype(int)
    y = 1 + 2 * x + 1.5 * d + rng.normal(size=n)
    df = pd.DataFrame({"d": d, "x": x, "y": y, "segment": np.where(x > 0, "a", "b")})
    naive = y[d == 1].mean() - y[d == 0].mean()
    assert naive > 3
    for method in ("ipw", "matching", "aipw"):
        r = att.estimate_att(df, "d", "y", ["x", "segment"], method)
        assert r.estimate.ci_low < 1.5 < r.estimate.ci_high, method
        assert abs(r.estimate.estimate - 1.5) < 0.3, method
        assert 0.01 < r.estimate.se < 0.3, method
    assert r.balance["smd_after"].abs().max() < 0.1 < r.balance["smd_before"].abs().max()


def test_cluster_errors_widen_with_repeated_rows(six_rows):
    """The same customers stacked twice: the estimate is unchanged; summing within customers
    gives the error of the original data (up to the small-sample factor), not one that shrinks."""
    doubled = pd.concat([six_rows, six_rows], ignore_index=True)
    single = att.estimate_att(six_rows, "d", "y", ["x"], "aipw", cluster="id")
    naive = att.estimate_att(doubled, "d", "y", ["x"], "aipw")
    clustered = att.estimate_att(doubled, "d", "y", ["x"], "aipw", cluster="id")
    assert clustered.estimate.estimate == pytest.approx(single.estimate.estimate, abs=1e-3)
    assert clustered.estimate.se == pytest.approx(single.estimate.se, rel=0.05)
    assert naive.estimate.se < clustered.estimate.se


def test_one_class_propensity_is_unavailable(six_rows):
    for d in (1, 0):
        r = att.estimate_att(six_rows.assign(d=d), "d", "y", ["x"])
        assert isinstance(r, Unavailable) and r.key == "causal.att.one_class"
        assert r.values == {"treated": 6 * d, "control": 6 * (1 - d)}
