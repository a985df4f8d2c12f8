"""Satisfaction: NPS / CSAT intervals, change test, Shapley drivers, priority matrix, lapse model,
and what the report shows of them (custlib.present.satisfaction) in English and Chinese."""

from __future__ import annotations

import itertools
import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from conftest import once_per_unit
from scipy import stats as st

from custlib import contract, features, satisfaction, text
from custlib.params import SatisfactionParams, load_params
from custlib.present import i18n
from custlib.present import satisfaction as present
from custlib.report import Finding
from custlib.stats import Unavailable

UNITS = ("online", "stores", "b2b")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def english():
    """Each test starts in English (a test may switch to Chinese)."""
    i18n.set_language("en")
    yield
    i18n.set_language("en")


@pytest.fixture(scope="module")
def params():
    return load_params("online", ROOT / "params")


@pytest.fixture(scope="module")
def frames(demo_unit):
    """Survey frame per demo unit (built once)."""
    return once_per_unit(lambda unit: satisfaction.survey_frame(demo_unit(unit)))


# -- NPS and CSAT ------------------------------------------------------------------------------
def test_nps_hand_example():
    scores = [10, 9, 8, 7, 6, 0, 10, 3, 9, 9]  # 5 promoters, 2 passives, 3 detractors
    e = satisfaction.nps(scores)
    assert e.n == 10
    assert (e.promoters, e.passives, e.detractors) == pytest.approx((0.5, 0.2, 0.3))
    assert e.estimate == pytest.approx(20.0)
    se = 100 * np.sqrt((0.5 + 0.3 - 0.2**2) / 10)  # 27.57 points
    assert e.se == pytest.approx(se)
    assert (e.ci_low, e.ci_high) == pytest.approx((20 - 1.959964 * se, 20 + 1.959964 * se))


def test_nps_thresholds_and_missing():
    e = satisfaction.nps([8, 8, 7, None, 2], promoter_min=8, detractor_max=2)
    assert e.n == 4 and e.estimate == pytest.approx(25.0)
    groups = satisfaction.nps_group(pd.Series([10, 7, 6, None]))
    assert groups.tolist() == ["promoter", "passive", "detractor", None]
    assert np.isnan(satisfaction.nps([]).estimate)


@pytest.mark.parametrize("shares, n", [((0.35, 0.35, 0.30), 200), ((0.6, 0.3, 0.1), 80)])
def test_nps_interval_coverage(shares, n):
    """About 95% of intervals over 4,000 simulated surveys contain the true NPS."""
    rng = np.random.default_rng(7)
    truth = 100 * (shares[0] - shares[2])
    hits = 0
    reps = 4000
    for _ in range(reps):
        group = rng.choice(3, n, p=shares)
        scores = np.select([group == 0, group == 1], [rng.integers(9, 11, n), rng.integers(7, 9, n)],
                           rng.integers(0, 7, n))
        e = satisfaction.nps(scores)
        hits += e.ci_low <= truth <= e.ci_high
    assert 0.93 <= hits / reps <= 0.965  # Monte Carlo se 0.0035


def test_nps_interval_matches_bootstrap():
    rng = np.random.default_rng(11)
    scores = rng.choice(np.arange(11), 600, p=np.r_[np.full(7, 0.3 / 7), [0.18, 0.17], [0.2, 0.15]])
    e = satisfaction.nps(scores)

    def stat(x, axis=-1):
        return 100 * (np.mean(x >= 9, axis=axis) - np.mean(x <= 6, axis=axis))

    boot = st.bootstrap((scores,), stat, n_resamples=4000, method="percentile",
                        rng=np.random.default_rng(3))
    assert boot.standard_error == pytest.approx(e.se, rel=0.06)
    assert boot.confidence_interval.low == pytest.approx(e.ci_low, abs=1.0)
    assert boot.confidence_interval.high == pytest.approx(e.ci_high, abs=1.0)


def test_csat_top_two_box_wilson():
    assert satisfaction.csat([5, 4, 3, 2, 1, None]).estimate == pytest.approx(2 / 5)  # 4 or 5 of 5
    assert satisfaction.csat([5, 4, 3, 2, 1, 4], satisfied_min=5).estimate == pytest.approx(1 / 6)
    c = satisfaction.csat([5, 4, 4, 2, 1, 3])  # 3 of 6: Wilson interval by hand
    z = 1.959964
    centre, half = (0.5 + z**2 / 12) / (1 + z**2 / 6), z * np.sqrt(0.25 / 6 + z**2 / 144) / (1 + z**2 / 6)
    assert (c.ci_low, c.ci_high) == pytest.approx((centre - half, centre + half), abs=1e-6)


def _responses(spec: dict[str, list[tuple[str, int, int]]]) -> pd.DataFrame:
    """Responses from {date: [(region, nps, csat), ...]}."""
    rows = [{"response_date": pd.Timestamp(d), "business_unit": "x", "region": r, "nps": s, "csat": c,
             "month": d[:7]} for d, items in spec.items() for r, s, c in items]
    return pd.DataFrame(rows)


def test_score_table_groups_and_small_n(params):
    r = _responses({"2025-01-15": [("East", 10, 5)] * 40 + [("West", 3, 2)] * 5,
                    "2025-02-15": [("East", 8, 4)] * 10})
    t = satisfaction.score_table(r, small_n=30)
    assert list(t.columns[:7]) == ["group", "group_value", "n", "nps", "se", "ci_low", "ci_high"]
    unit = t[t["group"] == "unit"].iloc[0]
    assert unit["n"] == 55 and unit["nps"] == pytest.approx(100 * (40 - 5) / 55)
    assert unit["csat"] == pytest.approx(50 / 55)
    east = t[(t["group"] == "region") & (t["group_value"] == "East")].iloc[0]
    assert east["n"] == 50 and east["nps"] == pytest.approx(80.0) and not east["small_n"]
    assert t.loc[(t["group"] == "region") & (t["group_value"] == "West"), "small_n"].item()
    assert t.loc[t["group"] == "month", "group_value"].tolist() == ["2025-01", "2025-02"]
    shown = present.score_table(t[t["group"] == "region"], "region", params, 30).set_index("Region")
    # East: se = 100 √((0.8 − 0.8²) / 50) = 5.66 points
    assert shown.loc["West", "NPS (95% CI)"] == "too few (n = 5)" and shown.loc["West", "Promoters"] == "–"
    assert shown.loc["East", "NPS (95% CI)"] == "+80 (+69 to +91)" and shown.loc["East", "Responses"] == "50"
    assert shown.loc["East", "CSAT (95% CI)"].startswith("100% (")


def test_change_test_hand_example():
    a, b = satisfaction.compare_periods(date(2025, 12, 31), 6)
    assert (a[0], a[1], b[0], b[1]) == tuple(pd.Timestamp(x) for x in
                                             ("2025-01-01", "2025-06-30", "2025-07-01", "2025-12-31"))
    earlier = [("E", 10, 5)] * 50 + [("E", 8, 3)] * 30 + [("E", 2, 1)] * 20
    later = [("E", 9, 4)] * 60 + [("E", 7, 3)] * 30 + [("E", 5, 2)] * 10
    r = _responses({"2024-12-31": [("E", 0, 1)] * 99, "2025-03-01": earlier, "2025-09-01": later})
    c = satisfaction.change_test(r, date(2025, 12, 31), SatisfactionParams())
    assert (c.nps_previous.estimate, c.nps_recent.estimate) == pytest.approx((30.0, 50.0))
    se = 100 * np.hypot(np.sqrt((0.7 - 0.3**2) / 100), np.sqrt((0.7 - 0.5**2) / 100))
    assert c.nps_change.estimate == pytest.approx(20.0) and c.nps_change.se == pytest.approx(se)
    assert c.nps_p_value == pytest.approx(2 * st.norm.sf(20 / se))
    assert c.csat_change.estimate == pytest.approx(0.1)  # 60% against 50%
    assert c.csat_change.ci_low < 0.1 < c.csat_change.ci_high


# -- key drivers -------------------------------------------------------------------------------
def _correlated(n: int, p: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    common = rng.normal(size=(n, 1))
    X = pd.DataFrame(0.6 * common + rng.normal(size=(n, p)), columns=[f"x{j}" for j in range(p)])
    y = pd.Series(X.to_numpy() @ np.linspace(1.0, 0.2, p) + rng.normal(size=n))
    return X, y


def test_shapley_equals_brute_force_and_sums_to_r2():
    """Average R² gain over all 5! orders of entry, each R² from its own OLS fit."""
    X, y = _correlated(80, 5, seed=1)
    r2 = {(): 0.0}
    for k in range(1, 6):
        for cols in itertools.combinations(X.columns, k):
            r2[cols] = sm.OLS(y, sm.add_constant(X[list(cols)])).fit().rsquared
    gain = dict.fromkeys(X.columns, 0.0)
    orders = list(itertools.permutations(X.columns))
    for order in orders:
        for k, col in enumerate(order):
            gain[col] += r2[tuple(sorted(order[: k + 1]))] - r2[tuple(sorted(order[:k]))]
    brute = pd.Series(gain) / len(orders)
    lmg = satisfaction.lmg_importance(X, y)
    pd.testing.assert_series_equal(lmg, brute[lmg.index], check_names=False, atol=1e-10, rtol=0)
    assert lmg.sum() == pytest.approx(r2[tuple(X.columns)], abs=1e-10)


def test_shapley_of_uncorrelated_predictors_is_squared_correlation():
    x1 = np.tile([1.0, -1.0, 1.0, -1.0], 10)
    x2 = np.tile([1.0, 1.0, -1.0, -1.0], 10)  # orthogonal to x1
    y = pd.Series(2 * x1 + x2 + np.tile([0.5, -0.5, -0.5, 0.5], 10))
    lmg = satisfaction.lmg_importance(pd.DataFrame({"x1": x1, "x2": x2}), y)
    r = np.corrcoef(np.column_stack([y, x1, x2]), rowvar=False)[0, 1:]
    assert lmg.to_numpy() == pytest.approx(r**2)


def test_key_drivers_fit_on_simulated_ratings():
    X, y = _correlated(400, 3, seed=5)
    d = X.assign(score=y)
    kd = satisfaction.KeyDrivers("score", ("x0", "x1", "x2"), bootstrap_reps=200, seed=1).fit(d)
    s = kd.summary
    assert s["attribute"].tolist() == ["x0", "x1", "x2"]  # planted weights 1.0, 0.6, 0.2
    assert s["importance"].sum() == pytest.approx(kd.r2_)
    assert ((s["ci_low"] < s["importance"]) & (s["importance"] < s["ci_high"])).all()
    assert s["std_coef"].tolist() == pytest.approx(
        sm.OLS((y - y.mean()) / y.std(), sm.add_constant((X - X.mean()) / X.std())).fit().params[1:].tolist())


@pytest.mark.parametrize("unit", UNITS)
def test_top_two_drivers_are_the_planted_ones(unit, frames, truth):
    kd = satisfaction.KeyDrivers(bootstrap_reps=100).fit(frames(unit))
    weights = pd.Series(truth["units"][unit]["driver_weights"])
    assert set(kd.summary["attribute"].head(2)) == set(weights.nlargest(2).index)
    assert kd.summary["top2_share"].head(2).min() > 0.9


def test_priority_matrix_quadrants_and_first_fix():
    d = pd.DataFrame({"attribute": list("abcd"), "importance": [0.4, 0.3, 0.2, 0.1],
                      "ci_low": 0.0, "ci_high": 1.0, "mean_score": [4.2, 3.1, 3.0, 4.5],
                      "mean_score_ci_low": 0.0, "mean_score_ci_high": 5.0, "n": 100})
    p = satisfaction.priority_matrix(d).set_index("attribute")
    assert p["quadrant"].tolist() == ["keep_up", "fix_first", "watch", "maintain"]
    assert p["first_fix"].tolist() == [False, True, False, False]
    # no important attribute below 'satisfied': the largest importance-weighted gap
    p = satisfaction.priority_matrix(d.assign(mean_score=[4.1, 4.4, 3.0, 4.5])).set_index("attribute")
    assert p.index[p["first_fix"]].tolist() == ["c"]  # 0.2 × (5 − 3.0) = 0.40 > 0.4 × (5 − 4.1) = 0.36


# -- satisfaction -> retention -----------------------------------------------------------------
def _tx(rows: list[tuple[str, str, float, str]]) -> pd.DataFrame:
    return pd.DataFrame([{"order_id": f"O{i}", "customer_id": c, "business_unit": "x", "order_date": d,
                          "amount": a, "discount": 0.0, "quantity": 1, "channel": ch, "product_category": "p"}
                         for i, (c, d, a, ch) in enumerate(rows)])


def test_order_channel_of_same_day_orders_does_not_depend_on_row_order():
    """Two orders on the survey's last purchase day: the one with the larger order_id counts."""
    rows = [("F", "2025-05-01", 5, "app"), ("F", "2025-05-01", 5, "web"), ("F", "2025-04-01", 5, "phone")]
    responses = pd.DataFrame({"response_id": ["1"], "customer_id": ["F"], "response_date": pd.to_datetime(["2025-05-03"])})
    tx = _tx(rows)  # order ids O0 (app), O1 (web), O2 (phone)
    for shuffled in (tx, tx.iloc[::-1], tx.iloc[[1, 2, 0]]):
        f = features.survey_followup(responses, shuffled, date(2025, 12, 31), lapse_days=30)
        assert f["order_channel"].tolist() == ["web"]


def test_survey_followup_and_lapse_frame_hand_example():
    """Lapse = purchase followed by > 30 days without one; observation end 2025-12-31, so
    follow-up ends 2025-12-01."""
    tx = _tx([
        ("A", "2025-01-01", 10, "web"), ("A", "2025-01-20", 20, "app"), ("A", "2025-03-15", 30, "web"),
        ("B", "2025-01-01", 50, "app"), ("B", "2025-01-02", -20, "web"),  # a return is not a purchase
        ("C", "2025-11-01", 5, "web"), ("C", "2025-11-20", 5, "web"),
        ("D", "2025-12-10", 7, "app"),
        ("E", "2024-01-01", 1, "web"), ("E", "2024-06-01", 2, "web"), ("E", "2024-06-10", 4, "app"),
        ("E", "2024-06-20", 8, "web"), ("E", "2024-09-01", 16, "web"),
    ])
    responses = pd.DataFrame({
        "response_id": list("12345"), "customer_id": list("ABCDE"),
        "response_date": pd.to_datetime(["2025-01-05", "2025-01-03", "2025-11-05", "2025-12-12",
                                         "2024-06-12"]),
    })
    f = features.survey_followup(responses, tx, date(2025, 12, 31), lapse_days=30).set_index("customer_id")
    assert f["lapse_date"].dt.strftime("%Y-%m-%d").fillna("-").to_dict() == {
        "A": "2025-01-20",  # 01-01 -> 01-20 is 19 days; 01-20 -> 03-15 is 54 days
        "B": "2025-01-01",  # never bought again
        "C": "2025-11-20",  # last purchase 41 days before the end: the gap is observed
        "D": "-",  # 2025-12-10 is after the follow-up end: censored
        "E": "2024-06-20",  # the earlier gap (2024-01 to 2024-06) ended before the response
    }
    assert f["order_channel"].to_dict() == {"A": "web", "B": "app", "C": "web", "D": "app", "E": "app"}
    assert f["orders_before"].to_dict() == {"A": 1, "B": 1, "C": 1, "D": 1, "E": 3}
    assert f.loc["B", "revenue_year_before"] == pytest.approx(30.0)  # net of the return
    assert f.loc["E", "revenue_year_before"] == pytest.approx(7.0)  # 2024-01-01 is outside the year
    assert (f["followup_end"] == pd.Timestamp("2025-12-01")).all()

    frame = f.reset_index().assign(nps_group=["promoter", "detractor", "passive", "promoter", "detractor"])
    lf = satisfaction.lapse_frame(frame).set_index("customer_id")
    assert "D" not in lf.index  # answered after the follow-up end
    assert lf["days"].to_dict() == {"A": 15.0, "B": 0.0, "C": 15.0, "E": 8.0}
    assert lf["lapsed"].to_dict() == {"A": 1, "B": 1, "C": 1, "E": 1}
    assert lf.loc["E", "tenure_years"] == pytest.approx(163 / 365.25)
    assert lf.loc["B", "log_value"] == pytest.approx(np.log(31.0))


def test_lapse_model_recovers_a_simulated_hazard_ratio():
    rng = np.random.default_rng(4)
    n = 3000
    group = rng.choice(["promoter", "passive", "detractor"], n)
    hr = np.select([group == "detractor", group == "passive"], [2.0, 1.4], 1.0)
    tenure, value = rng.uniform(0, 3, n), rng.normal(5, 1, n)
    t = rng.exponential(200 / (hr * np.exp(-0.2 * tenure)), n)
    censor = rng.uniform(50, 600, n)
    frame = pd.DataFrame({"customer_id": np.arange(n), "nps_group": group, "days": np.minimum(t, censor),
                          "lapsed": (t <= censor).astype(int), "tenure_years": tenure, "log_value": value,
                          "revenue_year_before": np.exp(value)})
    m = satisfaction.LapseModel().fit(frame)
    det = m.hazard_ratio("detractor")
    assert det.ci_low < 2.0 < det.ci_high and det.ci_low > 1
    assert m.hazard_ratio("passive").ci_low < 1.4 < m.hazard_ratio("passive").ci_high
    # revenue at stake: as detractors minus as promoters, straight from the fitted model
    stake = m.revenue_at_stake(365)
    rows = frame[frame["nps_group"] == "detractor"].assign(detractor=1, passive=0)
    cols = list(m.COVARIATES)
    as_det = m.cph_.predict_survival_function(rows[cols], times=[365]).iloc[0].to_numpy()
    as_pro = m.cph_.predict_survival_function(rows[cols].assign(detractor=0), times=[365]).iloc[0].to_numpy()
    assert stake.excess_lapses.estimate == pytest.approx((as_pro - as_det).sum(), rel=1e-6)
    revenue = ((as_pro - as_det) * rows["revenue_year_before"]).sum()
    assert stake.revenue.estimate == pytest.approx(revenue, rel=1e-6)
    assert stake.revenue.ci_low < stake.revenue.estimate < stake.revenue.ci_high
    assert stake.detractors == len(rows)


@pytest.mark.parametrize("unit", UNITS)
def test_detractor_hazard_ratio_on_demo(unit, frames, truth):
    """Above 1 where satisfaction drives dropout; the b2b null (strength 0) is not rejected."""
    m = satisfaction.LapseModel().fit(satisfaction.lapse_frame(frames(unit)))
    hr = m.hazard_ratio("detractor")
    if truth["units"][unit]["satisfaction_dropout"] > 0:
        assert hr.ci_low > 1
        assert m.revenue_at_stake(365).revenue.ci_low > 0
    else:
        assert hr.ci_low <= 1 <= hr.ci_high


# -- the unit's frame and outputs --------------------------------------------------------------
def test_survey_frame_on_demo(frames, demo_unit):
    data = demo_unit("stores")
    r = frames("stores")
    n = int(data.survey_responses.count().execute())
    assert len(r) == n and r["response_id"].is_unique
    assert not set(contract.PERSONAL_FIELDS) & set(r.columns)
    assert r["customer_id"].str.startswith("ST").all()
    assert set(r["order_channel"].dropna()) <= {"store", "phone", "click_and_collect"}
    assert r["segment"].notna().all() and r["nps_group"].notna().all()
    scores = satisfaction.score_table(r, data.params.satisfaction, satisfaction.small_sample_n(data.params))
    assert set(scores["group"]) == {"unit", "segment", "channel", "region", "customer type", "month"}
    assert (scores.groupby("group")["n"].sum().drop("unit") == n).all()


def test_small_sample_override():
    p = load_params("online", ROOT / "params")
    assert satisfaction.small_sample_n(p) == p.small_sample_n
    p2 = p.model_copy(update={"satisfaction": p.satisfaction.model_copy(update={"small_sample_n": 80})})
    assert satisfaction.small_sample_n(p2) == 80
    with pytest.raises(ValueError):
        SatisfactionParams(promoter_min=6, detractor_max=6)


# -- thin data: what the responses cannot support is a sentence, never an exception ------------
def test_nps_display_never_reads_minus_zero(params):
    """An NPS of −0.4 with an interval −15.2 to −0.3 reads "0 (−15 to 0)", never "-0"."""
    rows = pd.DataFrame({"group_value": ["East"], "n": [300], "nps": [-0.4], "ci_low": [-15.2], "ci_high": [-0.3],
                         "promoters": [0.3], "passives": [0.4], "detractors": [0.3], "csat": [0.5],
                         "csat_ci_low": [0.44], "csat_ci_high": [0.56]})
    cell = present.score_table(rows, "region", params, 30)["NPS (95% CI)"].item()
    assert cell == "0 (−15 to 0)" and "-" not in cell


def test_group_rows_one_level_and_too_few():
    r = _responses({"2025-01-15": [("East", 10, 5)] * 40 + [("West", 3, 2)] * 5})
    t = satisfaction.score_table(r, small_n=30)
    assert "one month (2025-01)" in satisfaction.group_rows(t, "month", 30).reason
    assert isinstance(satisfaction.group_rows(t, "region", 30), Unavailable)  # only East has 30
    assert len(satisfaction.group_rows(t, "region", 5)) == 2
    assert "No segment" in satisfaction.group_rows(t, "segment", 30).reason


def test_change_test_with_an_empty_period():
    r = _responses({"2025-09-01": [("E", 9, 4)] * 40})
    c = satisfaction.change_test(r, date(2025, 12, 31), SatisfactionParams())
    assert isinstance(c, Unavailable) and "2025-01 to 2025-06" in c.reason


def test_change_display_masks_small_periods():
    r = _responses({"2025-03-01": [("E", 10, 5)] * 5, "2025-09-01": [("E", 9, 4), ("E", 2, 1)] * 20})
    change = satisfaction.change_test(r, date(2025, 12, 31), SatisfactionParams())
    shown = present.change_table(change, small_n=30)
    cells = shown.set_index(["Measure", "Period"])["Estimate (95% CI)"]
    assert (cells.xs("2025-01 to 2025-06", level="Period") == "too few (n = 5)").all()
    assert (cells.xs("change", level="Period") == "too few (n = 45)").all()
    assert shown["p (change)"].eq("").all()
    assert cells["NPS", "2025-07 to 2025-12"].startswith("0 (")
    assert cells["CSAT", "2025-07 to 2025-12"].startswith("50% (")


def _ratings(n: int, seed: int = 0) -> pd.DataFrame:
    X, y = _correlated(n, len(satisfaction.ATTRIBUTES), seed)
    d = X.set_axis(list(satisfaction.ATTRIBUTES), axis=1).clip(-2, 2).round() + 3
    return d.assign(nps=(y.clip(-5, 5) + 5).round())


def test_key_drivers_preconditions():
    cfg, small = SatisfactionParams(bootstrap_reps=50), 30
    few = satisfaction.key_drivers(_ratings(10), cfg, small)
    assert isinstance(few, Unavailable) and "10 responses" in few.reason
    d = _ratings(200).assign(delivery=4, service=np.nan)
    left = satisfaction.driver_attributes(d)
    assert {a: u.reason for a, u in left.items()} == {"delivery": "rated 4 by every respondent",
                                                      "service": "rated by no respondent"}
    kd = satisfaction.key_drivers(d, cfg, small, left)
    assert set(kd.summary["attribute"]) == {"product_quality", "value_for_money", "digital_experience"}
    assert kd.summary["importance"].sum() == pytest.approx(kd.r2_)
    flat = satisfaction.key_drivers(_ratings(200).assign(nps=7), cfg, small)
    assert "same NPS score" in flat.reason
    collinear = _ratings(200)
    collinear["service"] = collinear["delivery"]
    assert "collinear" in satisfaction.key_drivers(collinear, cfg, small).reason


def test_key_drivers_bootstrap_skips_degenerate_resamples():
    """An attribute rated differently by one respondent only is constant in many resamples."""
    d = _ratings(40, seed=3)
    d["service"] = 3.0
    d.loc[0, "service"] = 5.0
    kd = satisfaction.KeyDrivers(bootstrap_reps=200, seed=1).fit(d)
    assert kd.bootstrap_.isna().any(axis=1).any()
    assert kd.summary[["ci_low", "ci_high", "top2_share"]].notna().all().all()


def _lapse(groups: list[str], lapsed: list[int]) -> pd.DataFrame:
    n = len(groups)
    rng = np.random.default_rng(0)
    return pd.DataFrame({"customer_id": range(n), "nps_group": groups, "days": rng.uniform(10, 400, n),
                         "lapsed": lapsed, "tenure_years": rng.uniform(0, 3, n), "log_value": 0.0,
                         "revenue_year_before": 0.0})


def test_lapse_model_preconditions_and_constant_covariates():
    groups = ["passive", "detractor"] * 30
    assert "No promoters" in satisfaction.lapse_model(_lapse(groups, [1, 0] * 30), 30).reason
    assert "has lapsed" in satisfaction.lapse_model(_lapse(["promoter", "detractor"] * 30, [0] * 60), 30).reason
    assert "Too few" in satisfaction.lapse_model(_lapse(["promoter", "detractor"] * 5, [1, 0] * 5), 30).reason
    m = satisfaction.lapse_model(_lapse(["promoter", "detractor"] * 40, ([1, 0, 0, 1] * 20)), 30)
    assert m.covariates_ == ["detractor", "tenure_years"]  # no passives; value constant
    assert m.summary["term"].tolist() == ["detractor", "tenure_years"]
    assert m.revenue_at_stake(365).detractors == 40


@pytest.fixture(scope="module")
def thin(tmp_path_factory):
    """Analyses of small and degenerate units (tests/thin_data.py)."""
    import shutil
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    import thin_data

    from custlib import sources

    root = tmp_path_factory.mktemp("thin")
    (root / "params" / "business_units").mkdir(parents=True)
    shutil.copy(thin_data.ROOT / "params" / "defaults.yaml", root / "params")
    units = {"n5": (5, "full"), "n50": (50, "full"), "no_promoters": (300, "all_members_no_promoters"),
             "one_class": (300, "one_class"), "one_time": (200, "one_time_buyers")}
    for unit, (n, shape) in units.items():
        thin_data.make_unit(root, unit, n, shape)
    return {u: satisfaction.analyse(sources.load_unit(u, root, "2026-01-15")) for u in units}


def test_thin_units_say_what_is_missing(thin, params):
    assert "too few" in present.findings(thin["n5"], params)[0].text
    assert present.kpis(thin["n5"], params) == {"actions": []}  # the page says "not measured"
    assert all(isinstance(thin["n50"].groups[g], Unavailable) for g in ("segment", "month"))
    assert isinstance(thin["n50"].drivers, Unavailable) and isinstance(thin["n50"].lapse, Unavailable)
    np_ = thin["no_promoters"]
    assert "No promoters" in np_.lapse.reason and np_.at_stake is np_.lapse
    assert any("No promoters (scores 9–10)" in w for w in present.score_warnings(np_, params))
    assert all(isinstance(v, Unavailable) for v in np_.comments.values())
    oc = thin["one_class"]
    assert all("one" in oc.groups[g].reason for g in ("channel", "region", "customer type"))


@pytest.mark.parametrize("language", ["en", "zh"])
def test_every_section_renders_on_thin_units(thin, params, language, capsys):
    """Each presentation function runs on small and degenerate units in both languages, and
    the findings are at most five."""
    import matplotlib.pyplot as plt

    from custlib.plots import use_style

    i18n.set_language(language)
    use_style()  # as report.header: fonts that draw Chinese
    for unit, sat in thin.items():
        found = present.findings(sat, params)
        assert 1 <= len(found) <= 5 and all(f.text for f in found), unit
        for section in (present.scores, present.change, present.groups, present.drivers, present.priority,
                        present.lapse, present.comments, present.diagnostics):
            section(sat, params)
        present.kpis(sat, params)
        plt.close("all")
    capsys.readouterr()


# -- the report: narrative from params, findings, charts ------------------------------------------
@pytest.fixture(scope="module")
def online(demo_unit):
    """The satisfaction analysis of the online demo unit."""
    data = demo_unit("online")
    return satisfaction.analyse(data), data.params


@pytest.mark.parametrize("language", ["en", "zh"])
def test_findings_at_most_five_with_actions(online, language):
    sat, p = online
    i18n.set_language(language)
    found = present.findings(sat, p)
    assert len(found) == 5
    assert not any(re.search(r"(?<![\d-])[-−]0(?![.\d])", f.text) for f in found)  # no "-0"
    kpis = present.kpis(sat, p)
    assert kpis["nps"]["kind"] == "nps" and kpis["csat"]["kind"] == "pct"
    assert kpis["nps"]["estimate"] == pytest.approx(sat.overall["nps"])
    assert 1 <= len(kpis["actions"]) <= 3 and all(kpis["actions"])


def test_a_service_finding_takes_the_place_of_csat_after_the_cost(online):
    sat, p = online
    service = Finding("Slow replies cost CNY 1.", "Answer within 24 hours.")
    found = present.findings(sat, p, service=service)
    assert len(found) == 5 and found[-1] == service and found[:4] == [f for f in present.findings(sat, p)
                                                                       if "CSAT" not in f.text]


def _with(p, **satisfaction_params):
    return p.model_copy(update={"satisfaction": p.satisfaction.model_copy(update=satisfaction_params)})


def test_thresholds_in_the_text_come_from_params(online):
    """The NPS groups and the CSAT top box are stated as params set them, in both languages."""
    sat, p = online
    changed = _with(p, promoter_min=8, detractor_max=5, csat_satisfied_min=5)
    assert present.score_bands(p) == {"promoters": "9–10", "passives": "7–8", "detractors": "0–6", "csat": "4–5"}
    assert present.score_bands(changed) == {"promoters": "8–10", "passives": "6–7", "detractors": "0–5",
                                            "csat": "5"}
    assert present.score_bands(_with(p, promoter_min=7, detractor_max=6))["passives"].startswith("none")
    for language in ("en", "zh"):
        i18n.set_language(language)
        default, custom = present.findings(sat, p), present.findings(sat, changed)
        assert "9–10" in default[0].text and "0–6" in default[0].text
        assert "8–10" in custom[0].text and "0–5" in custom[0].text and "9–10" not in custom[0].text
        assert "4–5" in default[1].text and "4–5" not in custom[1].text
        intro = i18n.t("satisfaction.scores.intro", **present.score_bands(changed), top=5)
        assert all(x in intro for x in ("8–10", "6–7", "0–5")) and "9–10" not in intro


def test_window_and_lapse_threshold_in_the_text_come_from_params(online):
    sat, p = online
    assert "the last 6 months" in present.findings(sat, p)[2].text
    i18n.set_language("zh")
    assert "最近6个月" in present.findings(sat, p)[2].text
    assert "最近1个月" == present._window(1)["recent"]


def test_zh_group_names_come_from_params(online):
    sat, p = online
    renamed = _with(p, nps_group_names={"promoter": "忠实推荐者", "passive": "中立者", "detractor": "批评者"})
    i18n.set_language("zh")
    table = present.lapse_table(sat.lapse_groups, renamed, sat.small_n)
    assert table.iloc[:, 0].tolist() == ["忠实推荐者", "中立者", "批评者"]
    i18n.set_language("en")
    assert present.lapse_table(sat.lapse_groups, renamed, sat.small_n).iloc[:, 0].tolist() == [
        "Promoters", "Passives", "Detractors"]


def test_catalogues_have_the_same_keys_and_fields():
    import string

    import yaml

    def flat(language):
        tree = yaml.safe_load((ROOT / "custlib" / "locales" / language / "satisfaction.yaml").read_text("utf-8"))
        return i18n._flatten(tree)

    en, zh = flat("en"), flat("zh")
    assert set(en) == set(zh)
    def fields(template: str) -> set[str]:
        return {f for _, f, _, _ in string.Formatter().parse(template) if f}

    assert {k: fields(v) for k, v in en.items()} == {k: fields(v) for k, v in zh.items()}


def test_chinese_labels_are_never_stripped():
    import matplotlib.pyplot as plt

    from custlib.plots import satisfaction as plots
    from custlib.plots import use_style

    use_style()
    d = pd.DataFrame({"label": ["华东", "华北"], "nps": [10.0, -5.0], "ci_low": [2.0, -12.0], "ci_high": [18.0, 2.0],
                      "n": [324, 410]})
    ax = plots.nps_by_group(d, dimension="region", ref=3.0)
    labels = [x.get_text() for x in ax.get_yticklabels()]
    assert labels == ["华东  (n=324)", "华北  (n=410)"]
    plt.close(ax.figure)


def test_priority_matrix_labels_do_not_overlap():
    """Service drawn over Digital experience was the complaint: points almost on top of each other."""
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    from custlib.plots import satisfaction as plots

    d = pd.DataFrame({"attribute": list("abcde"), "label": ["Service", "Digital experience", "Delivery",
                                                            "Value for money", "Product quality"],
                      "importance": [0.055, 0.064, 0.28, 0.18, 0.12], "mean_score": [3.36, 3.38, 3.38, 3.37, 3.38],
                      "n": 5000,
                      "quadrant": ["watch", "watch", "fix_first", "fix_first", "watch"],
                      "first_fix": [False, False, True, False, False]})
    d = d.assign(ci_low=d["importance"] - 0.008, ci_high=d["importance"] + 0.008,
                 mean_score_ci_low=d["mean_score"] - 0.03, mean_score_ci_high=d["mean_score"] + 0.03)
    ax = plots.priority_matrix(d)
    renderer = ax.figure.canvas.get_renderer()
    labels = [a for a in ax.texts if a.get_text() in set(d["label"])]
    for a in labels:
        a.update_positions(renderer)
    boxes = [Text.get_window_extent(a, renderer) for a in labels]  # the text alone, without its line
    assert len(boxes) == 5
    for i, b in enumerate(boxes):
        assert not any(b.overlaps(o) for o in boxes[i + 1:])
    plt.close(ax.figure)


def test_comment_terms_say_what_is_missing():
    comments = pd.Series(["slow delivery again", "delivery was slow", "great service", "great friendly service",
                          "配送太慢"] * 10)
    groups = pd.Series(["detractor", "detractor", "promoter", "promoter", "detractor"] * 10)
    terms = text.distinctive_terms(comments, groups, "detractor", "promoter")
    top = satisfaction.comment_terms(terms, "en", 3, min_comments=30)
    assert set(top["side"]) == {"detractor", "promoter"}
    assert "No Chinese comments from promoters" in satisfaction.comment_terms(terms, "zh", 3, 30).reason
    assert "Too few" in satisfaction.comment_terms(terms, "en", 3, min_comments=100).reason
    flat = text.distinctive_terms(pd.Series(["ok fine"] * 40), pd.Series(["detractor", "promoter"] * 20),
                                  "detractor", "promoter")
    assert "No term" in satisfaction.comment_terms(flat, "en", 3, 30).reason
    i18n.set_language("zh")
    assert "没有来自推荐者的中文评论" in satisfaction.comment_terms(terms, "zh", 3, 30).reason
