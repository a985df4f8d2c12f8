"""Loyalty impact: estimators on hand-computed tiny examples, and the planted uplift of the demo."""

from __future__ import annotations

import dataclasses
import re
from datetime import date

import pandas as pd
import pytest
from conftest import ROOT

from custlib import features, loyalty, report
from custlib.causal.did import CohortDiD
from custlib.params import LoyaltyParams, load_params
from custlib.present import loyalty as present
from custlib.present.i18n import set_language
from custlib.stats import Unavailable

END = date(2024, 3, 31)


def _tx(orders: dict[str, dict[str, int]]) -> pd.DataFrame:
    """Transactions: ``orders[customer][YYYY-MM]`` orders of 10.0 each on the 5th of the month."""
    rows = [{"order_id": f"{c}-{m}-{k}", "customer_id": c, "business_unit": "u", "order_date": f"{m}-05",
             "amount": 10.0, "discount": 0.0, "quantity": 1, "channel": "web", "product_category": "x"}
            for c, months in orders.items() for m, n in months.items() for k in range(n)]
    return pd.DataFrame(rows)


def _members(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "enrolled_date", "tier"])


# -- engine panel ------------------------------------------------------------------------------

def test_customer_month_panel_is_dense_from_first_order_and_skips_returns():
    tx = _tx({"A": {"2024-01": 2, "2024-03": 1}, "B": {"2024-02": 1}})
    ret = tx.iloc[[0]].assign(order_id="R", amount=-4.0, order_date="2024-02-10")
    panel = features.customer_month_panel(pd.concat([tx, ret]), END, date(2024, 1, 1))
    a = panel[panel["customer_id"] == "A"].set_index("month")
    assert list(a["orders"]) == [2, 0, 1]
    assert list(a["spend"]) == [20.0, -4.0, 10.0]
    assert list(a["gross_sales"]) == [20.0, 0.0, 10.0]
    assert list(a["active"]) == [1, 0, 1]
    assert list(a["months_since_first"]) == [0, 1, 2]
    b = panel[panel["customer_id"] == "B"]
    assert list(b["month"].dt.month) == [2, 3] and list(b["orders"]) == [1, 0]


# -- difference-in-differences on a hand-made 2x2 ------------------------------------------------

@pytest.fixture
def two_by_two():
    """Enrollment in February 2024; January is the baseline, March the post month (e = 1).
    points: treated changes +3, +1; later-enrolled controls +1, -1  -> ATT 2.
    vip: treated +4; control +1 -> ATT 3.  All tiers, treated-weighted: (2 * 2 + 3) / 3 = 7/3."""
    tx = _tx({"T1": {"2024-01": 2, "2024-03": 5}, "T2": {"2024-01": 1, "2024-03": 2},
              "C1": {"2024-01": 2, "2024-03": 3}, "C2": {"2024-01": 4, "2024-03": 3},
              "T3": {"2024-01": 1, "2024-03": 5}, "C3": {"2024-01": 1, "2024-03": 2},
              "N1": {"2024-01": 1, "2024-02": 1}})
    members = _members([("T1", "2024-02-10", "points"), ("T2", "2024-02-20", "points"),
                        ("T3", "2024-02-03", "vip"), ("C1", "2024-05-01", "points"),
                        ("C2", "2024-06-11", "points"), ("C3", "2024-07-01", "vip")])
    panel = features.customer_month_panel(tx, END, date(2024, 1, 1))
    return panel, loyalty.customer_frame(panel, members)


def test_cohort_did_reproduces_hand_computed_2x2(two_by_two):
    panel, customers = two_by_two
    did = loyalty.cohort_did(panel, customers, lags=1, pre_months=1, event_study=False, adjust=False)
    o = did.overall.set_index(["tier", "scale"])
    assert o.loc[("points", "absolute"), "estimate"] == pytest.approx(2.0)
    assert o.loc[("vip", "absolute"), "estimate"] == pytest.approx(3.0)
    assert o.loc[("all", "absolute"), "estimate"] == pytest.approx(7 / 3)
    # relative: ATT / (treated March mean - ATT) = 2 / (3.5 - 2)
    assert o.loc[("points", "relative"), "estimate"] == pytest.approx(2 / 1.5)
    assert o.loc[("points", "absolute"), "counterfactual_mean"] == pytest.approx(1.5)
    assert o.loc[("points", "absolute"), "n_treated"] == 2 and o.loc[("points", "absolute"), "n_control"] == 2
    # the never-enrolled customer is a control only when asked for
    wide = loyalty.cohort_did(panel, customers, lags=1, pre_months=1, event_study=False, adjust=False,
                              control_group="all_not_yet_enrolled", tiers=("points",))
    assert wide.overall["n_control"].iloc[0] == 4


def test_naive_gap_hand_computed(two_by_two):
    panel, customers = two_by_two
    gap = loyalty.naive_gap(panel, customers).set_index("tier")
    # members after enrollment (March): T1 5, T2 2, T3 5; never-enrolled N1 in Feb, Mar: 1, 0
    assert gap.loc["all", "member_mean"] == pytest.approx(4.0)
    assert gap.loc["all", "non_member_mean"] == pytest.approx(0.5)
    assert gap.loc["all", "relative_gap"] == pytest.approx(7.0)
    assert gap.loc["points", "gap"] == pytest.approx(3.5 - 0.5)


# -- ROI ---------------------------------------------------------------------------------------

def test_programme_roi_by_hand():
    overall = pd.DataFrame([
        {"outcome": "spend", "tier": t, "scale": s, "method": "cohort_did", "estimate": est, "se": se,
         "ci_low": est - 1.96 * se, "ci_high": est + 1.96 * se, "counterfactual_mean": 100.0,
         "n_treated": 50, "n_control": 60}
        for t in ("points", "vip") for s, est, se in (("absolute", 10.0, 2.0), ("relative", 0.1, 0.02))])
    did = CohortDiD("spend", "later_treated", overall, pd.DataFrame(), pd.DataFrame())
    customers = pd.DataFrame({"enrolled_month": pd.to_datetime(["2025-06-01", "2024-01-01"]),
                              "tier": ["points", "vip"]}, index=["a", "b"])
    p = LoyaltyParams(margin_rate=0.4, cost_per_member_month={"points": 1.0, "vip": 5.0},
                      points_per_currency=1.0, point_value=0.01, redemption_rate=0.5)
    roi = loyalty.programme_roi(did, customers, p, date(2025, 12, 31)).set_index("tier")
    liability = 110 * 1.0 * 0.01 * 0.5  # members spend 100 + 10 a month
    assert roi.loc["points", "cost"] == pytest.approx(1.0 + liability)
    assert roi.loc["points", "net"] == pytest.approx(0.4 * 10 - 1.0 - liability)
    assert roi.loc["points", "net_ci_low"] == pytest.approx(0.4 * (10 - 1.96 * 2) - 1.0 - liability)
    assert roi.loc["points", "break_even_uplift"] == pytest.approx((1.0 + liability) / (0.4 * 100))
    assert roi.loc["points", "member_months_12m"] == 6  # July-December 2025
    assert roi.loc["vip", "member_months_12m"] == 12
    assert roi.loc["all", "annual_net"] == pytest.approx(6 * roi.loc["points", "net"] + 12 * roi.loc["vip", "net"])
    annual_cost = 6 * roi.loc["points", "cost"] + 12 * roi.loc["vip", "cost"]
    assert roi.loc["all", "roi"] == pytest.approx(roi.loc["all", "annual_net"] / annual_cost)
    assert roi.loc["all", "roi_ci_low"] == pytest.approx(roi.loc["all", "annual_net_ci_low"] / annual_cost)
    assert roi.loc["points", "roi_se"] == pytest.approx(0.4 * 2.0 / roi.loc["points", "cost"])


# -- planted truths (demo data, seed 42) ---------------------------------------------------------

@pytest.fixture(scope="module")
def demo_results(demo_unit):
    """Naive gap, DiD and AIPW per unit on the demo data (no event study: keeps the test short)."""
    out = {}
    for unit in ("online", "stores", "b2b"):
        inputs = loyalty.load_inputs(demo_unit(unit))
        did = loyalty.cohort_did(inputs.grid, inputs.customers, event_study=False)
        snaps = loyalty.cohort_snapshots(inputs.grid, inputs.customers)
        aipw = loyalty.propensity_effects(snaps, methods=("aipw",), tiers=loyalty.TIERS)
        out[unit] = (loyalty.naive_gap(inputs.grid, inputs.customers).set_index("tier"), did, aipw)
    return out


CASES = [(u, t) for u in ("online", "stores", "b2b") for t in ("points", "vip")]


@pytest.mark.parametrize("unit,tier", CASES)
def test_naive_gap_is_far_from_the_planted_uplift(demo_results, truth, unit, tier):
    planted = truth["units"][unit]["loyalty_uplift"][tier]
    gap = demo_results[unit][0].loc[tier]
    assert gap["relative_ci_low"] > planted + 0.1
    assert gap["relative_gap"] > 2 * planted


def _main_intervals(demo_results) -> dict:
    """Relative effect on monthly orders per (unit, tier, method) for the DiD and the AIPW."""
    return {(u, t, m): (demo_results[u][1].effect(t, "relative") if m == "cohort_did"
                        else demo_results[u][2][t, "aipw"].relative)
            for u, t in CASES for m in ("cohort_did", "aipw")}


@pytest.mark.parametrize("unit,tier", CASES)
@pytest.mark.parametrize("method", ["cohort_did", "aipw"])
def test_estimate_is_within_three_standard_errors_of_the_planted_uplift(demo_results, truth, unit, tier, method):
    planted = truth["units"][unit]["loyalty_uplift"][tier]
    e = _main_intervals(demo_results)[unit, tier, method]
    assert abs(e.estimate - planted) < 3 * e.se, e
    assert e.se < 0.15, e  # informative, not just wide


def test_95_intervals_contain_the_planted_uplift(demo_results, truth):
    """The DiD and AIPW 95% intervals of every unit and tier against the planted uplift. On one
    draw of the data about 0.6 of these 12 intervals miss by chance, so one miss is tolerated;
    the coverage rate itself is measured over 20 seeds by benchmarks/loyalty_coverage.py."""
    misses = [(k, e) for k, e in _main_intervals(demo_results).items()
              if not e.ci_low <= truth["units"][k[0]]["loyalty_uplift"][k[1]] <= e.ci_high]
    assert len(misses) <= 1, misses


@pytest.mark.parametrize("unit,tier", CASES)
def test_aipw_balances_the_pre_enrollment_covariates(demo_results, unit, tier):
    assert demo_results[unit][2][tier, "aipw"].balance["smd_after"].abs().max() < 0.1


def test_sampled_controls_stand_for_all_of_them(demo_unit):
    """Above ``max_controls`` per cohort the snapshots keep a weighted random sample of the
    controls: on the demo, with 1,000 of up to 10,000 controls per cohort, the weighted estimates
    (IPW, AIPW) from the sample hold the estimate from every control within their 95% intervals,
    which are wider. (Matching draws neighbours from the sample as it is, a coarser pool.)"""
    inputs = loyalty.load_inputs(demo_unit("stores"))
    snaps = {cap: loyalty.cohort_snapshots(inputs.grid, inputs.customers, control_group="all_not_yet_enrolled",
                                           max_controls=cap) for cap in (loyalty.MAX_CONTROLS, 1000)}
    assert (snaps[loyalty.MAX_CONTROLS]["weight"] == 1).all()  # the demo is below the default cap
    sampled = snaps[1000]
    assert (sampled.groupby("cohort")["treated"].apply(lambda d: (d == 0).sum()) <= 1000).all()
    assert sampled.loc[sampled["treated"] == 0, "weight"].max() > 10
    full, part = (loyalty.propensity_effects(s, methods=("ipw", "aipw"), tiers=("all",),
                                             control_group="all_not_yet_enrolled") for s in snaps.values())
    for method in ("ipw", "aipw"):
        a, b = full["all", method], part["all", method]
        assert b.estimate.ci_low < a.estimate.estimate < b.estimate.ci_high, (method, a.estimate, b.estimate)
        assert b.relative.ci_low < a.relative.estimate < b.relative.ci_high, (method, a.relative, b.relative)
        assert b.estimate.se > a.estimate.se


@pytest.mark.slow
def test_demo_effects_table_and_output(demo_unit, tmp_path):
    """The whole analysis on one unit: the machine-readable table has the agreed columns, only
    that unit's numbers and no personal fields; order value and retention show no effect; the
    report opens with at most five findings in both languages."""
    data = demo_unit("online")
    res = loyalty.analyse(data)
    present.write_effects(res, tmp_path)
    t = pd.read_csv(tmp_path / "loyalty_effects.csv")
    assert list(t.columns[:9]) == ["outcome", "tier", "method", "estimate", "se", "ci_low", "ci_high",
                                   "n_treated", "n_control"]
    assert {"naive_gap", "cohort_did", "ipw", "matching", "aipw"} <= set(t["method"])
    # no effect is planted on order value or retention: every estimate within 3 SE of zero
    # (as for the uplift, a single 95% interval excludes the truth 1 time in 20)
    spo = t[(t["outcome"] == "spend_per_order_relative")]
    assert len(spo) and (spo["estimate"].abs() < 3 * spo["se"]).all(), spo
    ret = t[t["outcome"].str.startswith("active_12m")]
    assert len(ret) and (ret["estimate"].abs() < 3 * ret["se"]).all(), ret
    for lang in ("en", "zh"):
        set_language(lang)
        items = present.findings(res, data.params)
        assert 3 <= len(items) <= 5
        assert not [f.text for f in items if ENGLISH_WORDS.search(f.text + f.action)] or lang == "en"
    set_language("en")
    k = present.kpis(res, data.params)
    assert k["effect"]["kind"] == "change" and k["effect"]["ci_low"] < k["effect"]["estimate"] < k["effect"]["ci_high"]
    assert k["roi"]["kind"] == "change" and k["roi"]["ci_low"] < k["roi"]["estimate"] < k["roi"]["ci_high"]
    assert 1 <= len(k["actions"]) <= 3


# -- thin data: a reason instead of an exception ---------------------------------------------------

def test_no_comparison_group_gives_reasons_not_errors(two_by_two):
    """Without later members there is no DiD, without never-enrolled customers no naive gap, and a
    propensity model with one class is not fitted: each says why."""
    panel, customers = two_by_two
    treated_only = customers.drop(["C1", "C2", "C3", "N1"])
    sub = panel[panel["customer_id"].isin(treated_only.index)]
    assert isinstance(loyalty.cohort_did(sub, treated_only, lags=1, pre_months=1), Unavailable)
    assert isinstance(loyalty.naive_gap(sub, treated_only), Unavailable)
    did = loyalty.cohort_did(panel, customers.assign(tier=customers["tier"].replace("vip", "points")),
                             lags=1, pre_months=1, event_study=False)
    assert "vip" in did.missing and (did.overall["tier"] != "vip").all()



# -- presentation: wording from params and results ---------------------------------------------------

ENGLISH_WORDS = re.compile(r"[A-Za-z]{2,}(?:\s+[A-Za-z]{2,}){2,}")


@pytest.fixture
def params():
    return load_params("online", ROOT / "params")


@pytest.fixture(autouse=True)
def english():
    set_language("en")
    yield
    set_language("en")


def _with_loyalty(params, **changes):
    return params.model_copy(update={"loyalty": params.loyalty.model_copy(update=changes)})


def test_did_window_follows_the_lags_in_params(params):
    assert "months 1–12" in present.did_intro(params)
    six = present.did_intro(_with_loyalty(params, lags=6, pre_months=3))
    assert "months 1–6" in six and "1–12" not in six and "3 months before" in six
    assert "month 1 " in present.did_intro(_with_loyalty(params, lags=1))
    set_language("zh")
    assert "第1–6个月" in present.did_intro(_with_loyalty(params, lags=6))


def _overall(tier_effects: dict[str, tuple[float, float, float]], n: int = 200) -> pd.DataFrame:
    rows = []
    for tier, (est, lo, hi) in tier_effects.items():
        for scale in ("absolute", "relative"):
            rows.append({"outcome": "orders", "tier": tier, "scale": scale, "method": "cohort_did",
                         "estimate": est, "se": (hi - lo) / 3.92, "ci_low": lo, "ci_high": hi,
                         "counterfactual_mean": 1.0, "n_treated": n, "n_control": n})
    return pd.DataFrame(rows)


def _result(params, effect: tuple[float, float, float], roi: dict[str, tuple[float, float, float]]):
    """A LoyaltyResult with a DiD effect on orders (all tiers and each tier) and net
    contributions per tier (estimate, ci_low, ci_high); the other parts unavailable."""
    orders = CohortDiD("orders", "later_treated", _overall({t: effect for t in ("all", *loyalty.TIERS)}),
                       pd.DataFrame(), pd.DataFrame())
    rows = [{"tier": tier, "net": net, "net_ci_low": lo, "net_ci_high": hi, "net_se": (hi - lo) / 3.92,
             "cost": 10.0, "roi": net / 10, "roi_se": (hi - lo) / 39.2, "roi_ci_low": lo / 10,
             "roi_ci_high": hi / 10, "estimated_uplift": 0.05, "break_even_uplift": 0.2, "n_treated": 200}
            for tier, (net, lo, hi) in roi.items()]
    total = {"tier": "all", "net": 0.0, "net_ci_low": -1.0, "net_ci_high": 1.0, "net_se": 0.5, "cost": 10.0,
             "roi": 0.0, "roi_se": 0.05, "roi_ci_low": -0.1, "roi_ci_high": 0.1, "n_treated": 400}
    gone = Unavailable("loyalty.unavailable.roi")
    return loyalty.LoyaltyResult(
        params=params.loyalty, currency="CNY", small_sample_n=30, naive=gone, did=orders, did_spend=gone,
        did_active=gone, propensity=gone, propensity_all_customers=gone, order_value=gone, retention=gone,
        segments=gone, roi=pd.DataFrame(rows + [total]), n_members=400)


@pytest.mark.parametrize("effect,en,zh", [((0.12, 0.02, 0.22), "raises monthly orders by 12%", "增加"),
                                          ((-0.12, -0.22, -0.02), "lowers monthly orders by 12%", "减少"),
                                          ((0.03, -0.07, 0.13), "no clear change", "没有明确影响")])
def test_direction_word_follows_the_sign_and_the_interval(params, effect, en, zh):
    res = _result(params, effect, {"points": (-5.0, -9.0, -1.0), "vip": (3.0, -1.0, 7.0)})
    text = present.findings(res, params)[0].text
    assert en in text, text
    set_language("zh")
    assert zh in present.findings(res, params)[0].text


def test_findings_are_at_most_five_and_say_whether_each_tier_pays(params):
    res = _result(params, (0.12, 0.02, 0.22), {"points": (-5.0, -9.0, -1.0), "vip": (3.0, 1.0, 5.0)})
    for lang in ("en", "zh"):
        set_language(lang)
        items = present.findings(res, params)
        assert len(items) <= 5 and all(f.text for f in items)
        if lang == "zh":
            assert "积分计划无法收回成本" in items[1].text
            assert "VIP会员计划能够收回成本" in items[2].text
            assert not [f.text for f in items if ENGLISH_WORDS.search(f.text + f.action)]
        else:
            assert "Points tier does not pay" in items[1].text and "VIP tier pays" in items[2].text
            assert "+20%" in items[1].action  # the break-even uplift


def test_kpis_name_their_kind(params):
    k = present.kpis(_result(params, (0.12, 0.02, 0.22), {"points": (-5.0, -9.0, -1.0)}), params)
    assert k["effect"]["kind"] == "change" and k["effect"]["estimate"] == pytest.approx(0.12)
    assert k["roi"]["kind"] == "change" and (k["roi"]["ci_low"], k["roi"]["ci_high"]) == (-0.1, 0.1)


def test_covariate_names_are_readable_and_keep_chinese_values():
    assert present.covariate_name("tenure_months") == "Tenure (months)"
    assert present.covariate_name("region=West") == "Region: West"
    assert present.covariate_name("region=华东") == "Region: 华东"
    assert present.covariate_name("pre_order_value_missing") == "Value per order before enrollment: missing"
    set_language("zh")
    assert present.covariate_name("region=华东") == "地区：华东"



@pytest.mark.parametrize("sampled", [False, True])
def test_diagnostics_say_when_the_propensity_controls_were_sampled(params, monkeypatch, sampled):
    shown = []
    monkeypatch.setattr(report, "_show", shown.append)
    res = dataclasses.replace(_result(params, (0.12, 0.02, 0.22), {"points": (-5.0, -9.0, -1.0)}),
                              roi=Unavailable("loyalty.unavailable.roi"), sampled_controls=sampled)
    present.diagnostics(res, params)
    assert ("a random sample of 15,000 of them stands for all" in shown[0]) is sampled
