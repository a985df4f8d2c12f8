"""Campaign effects (custlib.marketing) against the demo's planted truths, and the estimators on
small hand-computed examples.

On the demo each unit has four randomised campaigns (one without effect) and one self-selected
campaign without holdout (truth/parameters.json, units.<unit>.campaign_effects). The planted
effects are the mean expected effects over the compared customers, which the estimators target.
"""

import dataclasses
from datetime import date
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from scipy import stats as st
from test_presentation import test_analyses_compute_only as computes_only

from custlib import contract, demo, marketing, sources
from custlib.features import as_table
from custlib.params import SegmentationParams
from custlib.stats import Estimate, Unavailable, proportion

UNITS = tuple(demo.UNITS)


@pytest.fixture(scope="module")
def results(demo_unit) -> dict[str, marketing.MarketingResult]:
    return {u: marketing.analyse(demo_unit(u)) for u in UNITS}


def _effects(results, method: str, outcome: str, segment: str = "all") -> pd.DataFrame:
    """Rows of every unit's effects table for one method, outcome and segment, indexed by campaign."""
    t = pd.concat([r.effects_table().assign(unit=u) for u, r in results.items()], ignore_index=True)
    return t[(t["method"] == method) & (t["outcome"] == outcome) & (t["segment"] == segment)].set_index("campaign")


def _planted(truth, outcome: str, randomised: bool) -> dict[str, float]:
    return {c: e[f"{outcome}_uplift"] for u in UNITS for c, e in truth["units"][u]["campaign_effects"].items()
            if e["randomised"] == randomised}


def _misses(rows: pd.DataFrame, planted: dict[str, float]) -> dict[str, tuple]:
    assert set(rows.index) == set(planted)
    return {c: (planted[c], r["ci_low"], r["ci_high"]) for c, r in rows.iterrows()
            if not r["ci_low"] <= planted[c] <= r["ci_high"]}


def test_marketing_computes_only():
    """The architecture check of the other analyses (no report, presentation or plotting layer)."""
    computes_only("marketing")


# -- hand-computed examples ---------------------------------------------------------------------

def test_difference_and_its_interval_by_hand():
    y, d = np.array([1, 0, 1, 1, 0, 0, 1, 0]), np.array([1, 1, 1, 1, 0, 0, 0, 0])
    e = marketing.difference(y, d)
    # 3/4 - 1/4; both sample variances (ddof 1) are 0.25: se = sqrt(0.25/4 + 0.25/4)
    assert e.estimate == pytest.approx(0.5) and e.se == pytest.approx(np.sqrt(0.125))
    assert (e.ci_low, e.ci_high) == pytest.approx((0.5 - 1.959964 * np.sqrt(0.125), 0.5 + 1.959964 * np.sqrt(0.125)))
    assert e.n == 8


def test_adjusted_difference_equals_the_plain_one_without_covariate_information_and_uses_it_otherwise():
    rng = np.random.default_rng(1)
    n = 400
    d = (rng.random(n) < 0.3).astype(int)
    x = rng.normal(size=n)
    y = 2.0 * x + 0.5 * d + rng.normal(scale=0.1, size=n)
    plain = marketing.difference(y, d)
    constant = marketing.adjusted_difference(y, d, pd.DataFrame({"c": np.ones(n)}))
    # HC2 with a binary regressor only is the unequal-variance (Neyman) error
    assert constant.estimate == pytest.approx(plain.estimate) and constant.se == pytest.approx(plain.se)
    adjusted = marketing.adjusted_difference(y, d, pd.DataFrame({"x": x}))
    assert adjusted.ci_low < 0.5 < adjusted.ci_high and adjusted.se < plain.se / 5


def test_heterogeneity_test_by_hand():
    q, df, p = marketing.heterogeneity_test([Estimate.normal(0.1, 0.1, 100), Estimate.normal(0.3, 0.1, 100)])
    assert (q, df) == (pytest.approx(2.0), 1) and p == pytest.approx(st.chi2.sf(2.0, 1))


# -- planted truths on the demo -----------------------------------------------------------------

def test_randomised_conversion_intervals_cover_the_planted_uplifts(results, truth):
    """12 randomised campaigns over the three units: by chance about 0.6 of the 95% intervals
    miss; the plain difference may miss once. The regression-adjusted intervals are narrower and
    move with chance imbalance in pre-campaign behaviour: on this draw they miss twice (ONC01 at
    2.1 se, B2C03 at 2.8 se, where the plain difference misses too), which 95% coverage produces
    with probability 0.12; three or more misses (probability 0.02) would fail. Each estimate
    stays within 3 standard errors."""
    planted = _planted(truth, "conversion", randomised=True)
    plain = _effects(results, "randomised_difference", "conversion")
    adjusted = _effects(results, "randomised_regression_adjusted", "conversion")
    assert len(_misses(plain, planted)) <= 1, _misses(plain, planted)
    assert len(_misses(adjusted, planted)) <= 2, _misses(adjusted, planted)
    far = {c: r["estimate"] for c, r in adjusted.iterrows() if abs(r["estimate"] - planted[c]) > 3 * r["se"]}
    assert far == {}


def test_randomised_spend_intervals_cover_the_planted_uplifts(results, truth):
    planted = _planted(truth, "spend", randomised=True)
    misses = _misses(_effects(results, "randomised_regression_adjusted", "spend"), planted)
    assert len(misses) <= 1, misses


def test_campaign_without_effect_covers_zero_and_effects_are_informative(results, truth):
    for method in ("randomised_difference", "randomised_regression_adjusted"):
        rows = _effects(results, method, "conversion")
        for c, e in _planted(truth, "conversion", randomised=True).items():
            r = rows.loc[c]
            if e == 0:
                assert r["ci_low"] <= 0 <= r["ci_high"], (c, method)
            assert r["se"] < 0.025, (c, method)


def test_adjusted_standard_errors_are_not_larger_than_plain_ones_on_average(results):
    t = pd.concat([r.effects_table() for r in results.values()], ignore_index=True)
    keys = ["campaign", "segment", "outcome"]
    se = t[t["method"].str.startswith("randomised") & (t["segment_type"] != "rfm_segment")].pivot_table("se", keys, "method")
    ratio = se["randomised_regression_adjusted"] / se["randomised_difference"]
    assert len(ratio) == 12 * 4 * 2 and ratio.mean() < 0.97 and (ratio < 1).mean() > 0.7, ratio.describe()


def test_observational_naive_gap_is_off_while_ipw_and_aipw_cover_the_truth(results, truth):
    for outcome in ("conversion", "spend"):
        planted = _planted(truth, outcome, randomised=False)
        naive = _effects(results, "observational_naive_gap", outcome)
        assert {c: r["ci_low"] for c, r in naive.iterrows() if r["ci_low"] <= 2 * planted[c]} == {}
        for method in ("ipw", "aipw"):
            assert _misses(_effects(results, f"observational_{method}", outcome), planted) == {}, (method, outcome)
        matching = _effects(results, "observational_matching", outcome)
        assert set(matching.index) == set(planted)


def test_the_segment_with_the_largest_planted_uplift_has_the_largest_pooled_estimate(results, truth):
    """Per unit, the inverse-variance pooled adjusted conversion effect per value tier over the
    campaigns with an effect ranks the planted largest tier first (online: mid, stores: low,
    b2b: high) in every unit; campaign by campaign it does in at least 7 of the 9."""
    hits = 0
    for u, r in results.items():
        effects = truth["units"][u]["campaign_effects"]
        with_effect = [c for c, e in effects.items() if e["randomised"] and e["conversion_uplift"] > 0]
        largest = {effects[c]["largest_uplift_segment"] for c in with_effect}
        assert len(largest) == 1
        t = r.randomised
        t = t[(t["method"] == "regression_adjusted") & (t["outcome"] == "conversion")
              & (t["segment_type"] == "value_tier") & t["campaign"].isin(with_effect)]
        by_campaign = t.loc[t.groupby("campaign")["estimate"].idxmax(), "segment"]
        hits += int((by_campaign == next(iter(largest))).sum())
        w = 1 / t["se"] ** 2
        pooled = (t["estimate"] * w).groupby(t["segment"]).sum() / w.groupby(t["segment"]).sum()
        assert pooled.idxmax() == next(iter(largest)), (u, pooled)
    assert hits >= 7


def test_heterogeneity_is_found_where_segments_differ_most(results, truth):
    """The test of equal tier effects rejects (p < 0.05) for at least half of the campaigns
    with an effect and for at most one campaign without one (all tiers 0)."""
    rejected, null_rejected, n = 0, 0, 0
    for u, r in results.items():
        h = r.heterogeneity.query("outcome == 'conversion' and segment_type == 'value_tier'").set_index("campaign")
        assert (h["segments"] == 3).all() and (h["df"] == 2).all()
        for c, e in truth["units"][u]["campaign_effects"].items():
            if e["randomised"] and e["conversion_uplift"] > 0:
                rejected, n = rejected + int(h.loc[c, "p_value"] < 0.05), n + 1
            elif e["randomised"]:
                null_rejected += int(h.loc[c, "p_value"] < 0.05)
    assert rejected >= n / 2 and null_rejected <= 1


def test_roi_follows_from_the_spend_effect_and_cost(results, demo_unit):
    r = results["online"]
    margin = demo_unit("online").params.loyalty.margin_rate
    roi = r.roi.set_index("campaign")
    adjusted = _effects({"online": r}, "randomised_regression_adjusted", "spend")
    for c, row in roi.iterrows():
        if row["method"] != "regression_adjusted":
            continue
        n, cost = row["treated"], row["cost"]
        assert cost == pytest.approx(r.campaigns.set_index("campaign_id").loc[c, "cost_per_contact"] * n)
        assert row["incremental_revenue"] == pytest.approx(adjusted.loc[c, "estimate"] * n)
        assert row["roi"] == pytest.approx(margin * row["incremental_revenue"] / cost - 1)
        assert row["roi_ci_low"] == pytest.approx(margin * adjusted.loc[c, "ci_low"] * n / cost - 1)
    assert set(roi["method"]) == {"regression_adjusted", "aipw"}


def test_open_rates_are_context_with_wilson_intervals(results):
    e = results["online"].engagement
    opened = e[e["measure"] == "opened"]
    assert ((opened["ci_low"] < opened["share"]) & (opened["share"] < opened["ci_high"])).all()
    email = opened[opened["campaign"].isin(["ONC01", "ONC03", "ONC04"])]["share"]
    assert np.allclose(email, demo.OPEN_RATES["email"], atol=0.03)


def test_effects_table_has_the_output_columns_and_every_campaign(results):
    t = results["stores"].effects_table()
    assert list(t.columns) == ["campaign", "segment_type", "segment", "outcome", "estimate", "se", "ci_low",
                               "ci_high", "n_treated", "n_control", "method"]
    assert set(t["campaign"]) == {f"STC0{i}" for i in range(1, 6)}
    assert set(t.loc[t["segment_type"] == "value_tier", "segment"]) == {"high", "mid", "low"}
    assert set(t.loc[t["segment_type"] == "all", "segment"]) == {"all"} and set(t["outcome"]) == {"conversion", "spend"}
    rfm = t[t["segment_type"] == "rfm_segment"]
    assert set(rfm["campaign"]) == {f"STC0{i}" for i in range(1, 5)} and rfm["segment"].nunique() >= 4
    assert t[["estimate", "se", "ci_low", "ci_high"]].notna().all().all()
    assert "customer_id" not in t.columns


# -- what the data cannot support -----------------------------------------------------------------

def test_a_unit_without_campaign_tables_gets_needs_table(demo_dir, tmp_path):
    for f in demo_dir.glob("*.parquet"):
        if not f.name.startswith("campaign"):
            (tmp_path / f.name).symlink_to(f)
    data = sources.load_unit("online", ROOT, run_date="2026-01-15", data_source=tmp_path)
    r = marketing.analyse(data)
    assert isinstance(r.randomised, Unavailable) and r.randomised.key == "unavailable.needs_table"
    assert r.randomised.values["table"] == "campaigns"
    assert r.effects_table().empty and r.effects_table().columns[0] == "campaign"
    assert "campaigns" in r.randomised.reason.lower()  # the table's display name ("Campaigns")
    assert isinstance(r.uplift, Unavailable) and r.uplift.values["table"] == "campaigns"
    assert isinstance(r.unit_uplift, Unavailable)
    assert isinstance(r.basket_rules, pd.DataFrame) and len(r.basket_rules)  # needs no campaign table


def test_campaigns_with_too_few_contacts_are_left_out_with_a_reason(demo_unit):
    data = demo_unit("b2b")
    strict = dataclasses.replace(data, params=data.params.model_copy(update={"small_sample_n": 700}))
    r = marketing.analyse(strict)
    assert set(r.too_few) == {"B2C01", "B2C02"}  # holdouts of 593 and 615 customers
    assert r.too_few["B2C01"].key == "unavailable.too_few" and r.too_few["B2C01"].values["n"] == 593
    assert set(r.effects_table()["campaign"]) == {"B2C03", "B2C04", "B2C05"}
    assert r.too_few["B2C01"].reason
    # uplift models of the other randomised campaigns need 2 x 700 of each outcome in each group
    assert set(r.uplift) == {"B2C03", "B2C04"}
    assert all(isinstance(m, Unavailable) and m.values["needed"] == 1400 for m in r.uplift.values())
    assert isinstance(r.unit_uplift, Unavailable)


# -- next best category -----------------------------------------------------------------------------

def _tiny_orders() -> pd.DataFrame:
    """c1-c3 bought x and y, c4 only x, c5-c9 z and w (popularity z = w = 5/9 > x = 4/9 > y = 3/9)
    before 2024-06-30; afterwards c1 buys w, c4 y, c5 y (all new to them) and c2 x again."""
    before = {"c1": "xy", "c2": "xy", "c3": "xy", "c4": "x", **{f"c{i}": "zw" for i in range(5, 10)}}
    rows = [(c, "2024-01-15", k) for c, cats in before.items() for k in cats]
    rows += [("c1", "2024-08-01", "w"), ("c4", "2024-08-01", "y"), ("c5", "2024-08-01", "y"), ("c2", "2024-08-01", "x")]
    df = pd.DataFrame(rows, columns=["customer_id", "order_date", "product_category"])
    return df.assign(amount=10.0)


TINY_CUTOFF, TINY_END = pd.Timestamp("2024-06-30").date(), pd.Timestamp("2024-12-31").date()


def test_co_occurrence_ranks_the_category_bought_with_the_customers_own_first():
    r = marketing.recommend(_tiny_orders(), TINY_CUTOFF, k=3).set_index(["customer_id", "rank"])
    # c4 bought x: P(y | x) = 3/4, P(z | x) = P(w | x) = 0, although z and w are the most popular
    assert r.loc[("c4", 1), "category"] == "y" and r.loc[("c4", 1), "score"] == pytest.approx(0.75)
    assert [r.loc[("c4", k), "category"] for k in (2, 3)] == ["w", "z"]  # score 0: popularity, then name
    assert r.loc[("c5", 1), "category"] == "x"  # no co-occurrence: the more popular of x and y
    assert r.xs("c1", level="customer_id")["category"].tolist() == ["w", "z"]  # only two not bought


def test_segment_share_is_blended_into_the_score():
    segments = pd.DataFrame({"customer_id": ["c4", *(f"c{i}" for i in range(5, 10))], "segment": "s"})
    r = marketing.recommend(_tiny_orders(), TINY_CUTOFF, k=3, segments=segments).query("customer_id == 'c4'")
    # w: 0.5 * 0 + 0.5 * 5/6 (of c4..c9, c5-c9 bought w); y: 0.5 * 3/4 + 0.5 * 0
    assert r["category"].tolist() == ["w", "z", "y"]
    assert r["score"].tolist() == pytest.approx([5 / 12, 5 / 12, 0.375])


def test_holdout_precision_and_hit_rate_by_hand():
    r = marketing.next_best_category(_tiny_orders(), TINY_CUTOFF, TINY_END, k=1)
    # evaluated: c1, c2, c4, c5 (bought in the holdout); top-1 model w, w, y, x; popularity w, w, w, x.
    # New categories bought: c1 w, c4 y, c5 y (c2 only x again): model hits c1 and c4, popularity c1.
    assert (r.n_customers, r.n_hit_customers) == (4, 3)
    assert r.precision["model"].estimate == pytest.approx(2 / 4)
    assert r.precision["popularity"].estimate == pytest.approx(1 / 4)
    assert r.precision["difference"].estimate == pytest.approx(1 / 4)
    # linearised differences (h_m - h_b) - 0.25: 0, -0.25, 0.75, -0.25 over mean 1 recommendation
    assert r.precision["difference"].se == pytest.approx(np.std([-0.25, -0.25, 0.75, -0.25], ddof=1) / 2)
    assert r.hit_rate["model"] == proportion(2, 3) and r.hit_rate["popularity"] == proportion(1, 3)
    assert r.hit_rate["difference"].estimate == pytest.approx(1 / 3)
    # the CRM file is fitted on everything up to the end: c4 has bought y by then
    assert r.recommendations.query("customer_id == 'c4'")["category"].tolist() == ["w"]


def test_segments_are_taken_on_the_cutoff_for_the_check_and_on_the_end_for_the_crm_file():
    asked = []

    def segments(day):
        asked.append(day)
        return pd.DataFrame({"customer_id": ["c4", *(f"c{i}" for i in range(5, 10))], "segment": "s"})

    r = marketing.next_best_category(_tiny_orders(), TINY_CUTOFF, TINY_END, k=1, segments=segments)
    assert asked == [TINY_CUTOFF, TINY_END]
    blended = marketing.recommend(_tiny_orders(), TINY_END, k=1, segments=segments(TINY_END))
    assert r.recommendations.equals(blended)


def test_value_tiers_at_a_day_by_hand():
    tx = pd.DataFrame({"customer_id": ["a", "b", "c", "c"], "order_date": pd.to_datetime(
        ["2024-01-01", "2024-01-02", "2024-01-03", "2024-03-01"]), "amount": [80.0, 15.0, 5.0, 900.0],
        "product_category": "x"})
    tiers = marketing.value_tiers_at(tx, date(2024, 1, 31), SegmentationParams()).set_index("customer_id")["segment"]
    # revenue 80 / 15 / 5 by the day: the first 80% is a, the next 15% b, the rest c (cuts 0.8, 0.95)
    assert tiers.to_dict() == {"a": "high", "b": "mid", "c": "low"}


def test_next_best_category_beats_popularity_on_the_demo(results):
    """Archetypes prefer one category per price tier, so categories co-occur: the co-occurrence
    model's precision@3 and hit rate@3 exceed the popularity baseline's, paired 95% intervals of
    the difference above 0, in every unit (about +0.02 precision, +0.10 hit rate)."""
    for u, r in results.items():
        n = r.next_best_category
        assert isinstance(n, marketing.NextBestCategory) and n.k == 3, u
        assert (n.end - n.cutoff).days == 180, u
        assert n.precision["difference"].ci_low > 0 and n.hit_rate["difference"].ci_low > 0, (u, n.precision)
        assert n.precision["model"].ci_low > n.precision["popularity"].estimate, u
        assert n.n_customers >= 1000 and n.n_hit_customers >= 1000, u


def test_recommendations_hold_no_personal_field_and_no_category_already_bought(results, demo_unit):
    for u, r in results.items():
        rec = r.next_best_category.recommendations
        assert list(rec.columns) == ["customer_id", "rank", "category", "score"]
        assert not set(contract.PERSONAL_FIELDS) & set(rec.columns)
        assert set(rec["rank"]) == {1, 2, 3} and not rec.duplicated(["customer_id", "rank"]).any()
        assert (rec.groupby("customer_id")["score"].diff().dropna() <= 0).all()
        tx = demo_unit(u).transactions
        bought = tx.filter((tx.amount > 0) & (tx.order_date <= r.next_best_category.end))
        bought = bought.select("customer_id", category=bought.product_category.cast("string")).distinct().execute()
        assert rec.merge(bought, on=["customer_id", "category"]).empty, u
        assert rec["customer_id"].nunique() == bought["customer_id"].nunique() - (
            bought.groupby("customer_id").size() == bought["category"].nunique()).sum()


def test_next_best_category_is_unavailable_without_variety_or_holdout_customers(demo_unit):
    data = demo_unit("online")
    for update, n, needed in (({"marketing": data.params.marketing.model_copy(update={"top_k": 6})}, 6, 7),
                              ({"small_sample_n": 100_000}, None, 100_000)):
        r = marketing._next_best(dataclasses.replace(data, params=data.params.model_copy(update=update)))
        assert isinstance(r, Unavailable) and r.key == "unavailable.too_few" and r.reason
        assert r.values["needed"] == needed and (n is None or r.values["n"] == n)


# -- uplift models ------------------------------------------------------------------------------------

def _uplift(results, truth, with_effect: bool) -> dict[str, tuple[str, marketing.CampaignUplift]]:
    """The uplift models of the randomised campaigns with (or without) a planted effect, with their unit."""
    out = {}
    for u, r in results.items():
        for c, e in truth["units"][u]["campaign_effects"].items():
            if e["randomised"] and (e["conversion_uplift"] > 0) == with_effect:
                assert isinstance(r.uplift[c], marketing.CampaignUplift), (c, r.uplift[c])
                out[c] = (u, r.uplift[c])
    return out


def test_uplift_models_score_every_compared_customer_out_of_fold(results, truth):
    for u, r in results.items():
        randomised = [c for c, e in truth["units"][u]["campaign_effects"].items() if e["randomised"]]
        assert set(r.uplift) == set(randomised), u
        for c in randomised:
            m = r.uplift[c]
            n = (r.campaigns.set_index("campaign_id").loc[c, ["treated", "holdout"]]).sum()
            assert m.n == len(m.held_out) == m.qini_area.n == n
            assert len(m.qini_curve) == marketing.UPLIFT_CURVE_POINTS and m.qini_curve.iloc[0].tolist() == [0, 0, 0]
            assert m.by_group["n_treated"].sum() + m.by_group["n_control"].sum() == n
            assert (m.by_group["mean_predicted_uplift"].diff().dropna() <= 0).all()


def test_the_uplift_models_beat_random_targeting_in_every_unit(results, truth):
    """Acceptance: per unit, the campaigns' cross-fitted uplift scores pooled into one ranking
    per fold beat random targeting (the whole 95% interval of the Qini area, the folds' mean
    with its conservative interval, above 0). Measured: online 0.0108 (0.0050 to 0.0169), stores
    0.0111 (0.0047 to 0.0174), b2b 0.0163 (0.0087 to 0.0238).

    Campaign by campaign the evidence is thinner (holdouts of 10-20%: 400-1,600 controls, each
    fold scored on half of them): the interval is above 0 for 4 of the 9 campaigns with a
    planted effect (ONC01, ONC03, B2C02, B2C03) and covers 0 for the others and for the three
    without effect. Asserted: at least 4 of 9, and at most one campaign without effect outside 0."""
    for u, r in results.items():
        assert isinstance(r.unit_uplift, marketing.UnitUplift) and r.unit_uplift.beats_random, (u, r.unit_uplift)
        assert set(r.unit_uplift.campaigns) == set(r.uplift)
    worked = _uplift(results, truth, with_effect=True)
    assert len(worked) == 9
    assert sum(m.beats_random for _, m in worked.values()) >= 4, {c: m.qini_area for c, (_, m) in worked.items()}
    none = _uplift(results, truth, with_effect=False)
    assert sum(not m.qini_area.ci_low <= 0 <= m.qini_area.ci_high for _, m in none.values()) <= 1


def test_the_tier_with_the_largest_planted_uplift_has_the_largest_mean_predicted_uplift(results, truth):
    """Per unit, the mean predicted uplift per value tier over the compared customers of the
    campaigns with an effect (pooled: customer-weighted) ranks the planted largest tier first
    (online: mid, stores: low, b2b: high); campaign by campaign it does for 8 of the 9 (ONC02
    ranks low before mid), asserted at least 7 as for the tier effects above."""
    hits = 0
    for u in results:
        tiers = []
        for c, (unit, m) in _uplift(results, truth, with_effect=True).items():
            if unit != u:
                continue
            largest = truth["units"][u]["campaign_effects"][c]["largest_uplift_segment"]
            hits += int(m.by_tier["value_tier"].iloc[0] == largest)
            tiers.append(m.by_tier.assign(total=m.by_tier["n"] * m.by_tier["mean_predicted_uplift"]))
        pooled = pd.concat(tiers).groupby("value_tier")[["total", "n"]].sum()
        assert (pooled["total"] / pooled["n"]).idxmax() == largest, (u, pooled)
        assert results[u].unit_uplift.by_tier["value_tier"].iloc[0] == largest, results[u].unit_uplift.by_tier
    assert hits >= 7


def test_target_lists_rank_current_customers_of_the_unit_by_predicted_uplift(results, demo_unit):
    for u, r in results.items():
        ids = set(demo_unit(u).customers.customer_id.execute())
        contacted = r.campaigns.set_index("campaign_id")["treated"]
        for c, m in r.uplift.items():
            t = m.targets
            assert list(t.columns) == ["customer_id", "rank", "predicted_uplift"]
            assert not set(contract.PERSONAL_FIELDS) & set(t.columns)
            assert set(t["customer_id"]) <= ids and t["customer_id"].is_unique
            assert t["rank"].tolist() == list(range(1, len(t) + 1))
            assert (t["predicted_uplift"] > 0).all() and (t["predicted_uplift"].diff().dropna() <= 0).all()
            assert 0 < len(t) <= contacted[c], c


def test_target_list_by_hand():
    t = marketing.target_list(["c1", "c2", "c3", "c4", "c5"], np.array([0.1, -0.2, 0.3, 0.1, 0.0]), limit=3)
    # positive only, highest first, equal predictions in the given order
    assert t["customer_id"].tolist() == ["c3", "c1", "c4"] and t["rank"].tolist() == [1, 2, 3]
    assert marketing.target_list(["c1", "c2", "c3"], np.array([0.1, 0.2, 0.3]), limit=2)["customer_id"].tolist() == [
        "c3", "c2"]


def test_uplift_by_group_by_hand():
    predicted = np.array([0.4, 0.3, 0.2, 0.1, 0.0, -0.1, -0.2, -0.3])
    treated = np.array([1, 1, 0, 0, 1, 1, 0, 0])
    converted = np.array([1, 1, 0, 1, 0, 1, 1, 1])
    g = marketing.uplift_by_group(predicted, treated, converted, groups=2)
    # top half: treated 2/2 converted, controls 1/2 -> +0.5; bottom half: 1/2 against 2/2 -> -0.5
    assert g["group"].tolist() == [1, 2] and g["uplift"].tolist() == pytest.approx([0.5, -0.5])
    assert g["mean_predicted_uplift"].tolist() == pytest.approx([0.25, -0.15])
    assert g["se"].iloc[0] == pytest.approx(marketing.difference([1, 1, 0, 1], [1, 1, 0, 0]).se)
    assert g[["n_treated", "n_control"]].to_numpy().tolist() == [[2, 2], [2, 2]]


def test_an_uplift_model_needs_enough_converters_and_non_converters_in_each_group():
    rows = pd.DataFrame({"campaign_id": "X", "customer_id": [f"c{i}" for i in range(200)],
                         "treated": np.r_[np.ones(150), np.zeros(50)].astype(int),
                         "conversion": np.r_[np.arange(150) < 60, np.arange(50) < 12].astype(int),
                         **{c: 0.0 for c in marketing.COUNT_COLUMNS}, "tenure_days": 400.0, "value_tier": "low"})
    r = marketing.campaign_uplift(rows, rows, limit=10, min_n=10)
    # rarest: 12 converted controls, 2 x 10 needed
    assert isinstance(r, Unavailable) and r.key == "unavailable.too_few"
    assert (r.values["n"], r.values["needed"]) == (12, 20)
    assert isinstance(marketing.campaign_uplift(rows, rows, limit=10, min_n=6), marketing.CampaignUplift)


def test_current_customers_by_hand(demo_unit):
    """Behaviour as of a campaign starting the day after the observation end (2025-01-01)."""
    rows = [("a", "2024-12-31", 100.0), ("a", "2024-12-15", -20.0), ("a", "2024-10-01", 50.0),
            ("a", "2024-01-10", 30.0), ("b", "2024-12-20", 10.0), ("c", "2023-06-01", 500.0), ("d", "2024-06-01", 5.0)]
    tx = pd.DataFrame(rows, columns=["customer_id", "order_date", "amount"])
    params = demo_unit("online").params.model_copy(update={"observation_end": date(2024, 12, 31)})
    data = SimpleNamespace(params=params, transactions=as_table(tx))
    c = marketing.current_customers(data, window_days=30).set_index("customer_id")
    assert c.index.tolist() == ["a", "c", "d"]  # b's first order is 12 days before the start
    # a: days before the start 1 (+100), 17 (-20), 92 (+50), 357 (+30)
    assert c.loc["a", ["pre_orders_90", "pre_spend_90", "pre_orders_365", "pre_spend_365"]].tolist() == [1, 80, 3, 160]
    assert c.loc["a", "tenure_days"] == 357 and c.loc["c", "tenure_days"] == 580
    assert c.loc["c", ["pre_orders_90", "pre_spend_365"]].tolist() == [0, 0]
    # Pareto tiers of revenue to date (500, 160, 5 of 665): c and a before 80% -> high, d after 95% -> low
    assert c["value_tier"].tolist() == ["high", "high", "low"]


# -- basket rules -------------------------------------------------------------------------------------

def test_basket_rules_by_hand():
    """Baskets in 2024: c1, c2 {x, y}; c3 {x, w}; c4 {z}; c5 {y, z}; c6 {z} (its x is from 2023);
    c7 {x} (its y was returned). Segments s1 = c1-c4, s2 = c5-c7."""
    rows = [("c1", "x"), ("c1", "y"), ("c2", "x"), ("c2", "y"), ("c3", "x"), ("c3", "w"), ("c4", "z"), ("c5", "y"),
            ("c5", "z"), ("c6", "z"), ("c7", "x")]
    tx = pd.DataFrame(rows, columns=["customer_id", "product_category"]).assign(order_date="2024-05-01", amount=10.0)
    tx = pd.concat([tx, pd.DataFrame({"customer_id": ["c6", "c7"], "product_category": ["x", "y"],
                                      "order_date": ["2023-06-01", "2024-05-01"], "amount": [10.0, -10.0]})])
    segments = pd.DataFrame({"customer_id": [f"c{i}" for i in range(1, 8)], "segment": ["s1"] * 4 + ["s2"] * 3})
    r = marketing.basket_rules(tx, segments, date(2024, 12, 31)).set_index(["segment", "antecedent", "consequent"])
    # all 7: x 4, y 3, z 3, w 1; both x&y 2, x&w 1, y&z 1 (lift 7/9 < 1: left out)
    assert r.loc["all"].index.tolist() == [("w", "x"), ("x", "w"), ("x", "y"), ("y", "x")]
    assert r.loc[("all", "x", "y"), ["support", "confidence", "lift"]].tolist() == pytest.approx([2 / 7, 1 / 2, 7 / 6])
    assert r.loc[("all", "w", "x"), ["support", "confidence", "lift"]].tolist() == pytest.approx([1 / 7, 1, 7 / 4])
    assert r.loc[("all", "x", "w"), ["n_both", "n_antecedent", "n_consequent", "n_customers"]].tolist() == [1, 4, 1, 7]
    # s1 (4): x 3, y 2, w 1, z 1; x&y 2, x&w 1: every lift 4/3, ranked by support, then names
    assert r.loc["s1"].index.tolist() == [("x", "y"), ("y", "x"), ("w", "x"), ("x", "w")]
    assert r.loc[("s1", "y", "x"), ["support", "confidence", "lift"]].tolist() == pytest.approx([1 / 2, 1, 4 / 3])
    # s2 (3): y 1, z 2, x 1; y&z 1: lift 3/2
    assert r.loc[("s2", "y", "z"), ["support", "confidence", "lift"]].tolist() == pytest.approx([1 / 3, 1, 3 / 2])
    assert r.groupby(level="segment")["rank"].apply(list).to_dict() == {"all": [1, 2, 3, 4], "s1": [1, 2, 3, 4],
                                                                        "s2": [1, 2]}
    few = marketing.basket_rules(tx, segments, date(2024, 12, 31), min_support=0.2, top=1, min_customers=4)
    assert few[["segment", "antecedent", "consequent"]].values.tolist() == [["all", "x", "y"], ["s1", "x", "y"]]


def test_basket_rules_on_the_demo_follow_the_planted_category_preferences(results):
    """Each demo customer has their own shares of the basic / standard / premium price tiers and
    an archetype with one preferred category per tier. So the two categories of one price tier
    are bought together most (the first rule of every segment), other pairs above chance
    (lift > 1) are the preferred categories of one archetype, and two categories of different
    tiers that no archetype prefers together are not among the rules."""
    for u, r in results.items():
        spec = demo.UNITS[u]
        together = {frozenset((a, b)) for cats in spec.category_preference.values() for a in cats for b in cats}
        rules = r.basket_rules
        assert set(rules["segment"]) == {"all", "high", "mid", "low"}, u
        assert (rules["lift"] > 1).all() and (rules["support"] >= marketing.BASKET_MIN_SUPPORT).all()
        assert (rules.groupby("segment")["rank"].max() <= marketing.BASKET_TOP_RULES).all()
        same_tier = [spec.categories[a] == spec.categories[b] for a, b in zip(rules["antecedent"], rules["consequent"])]
        preferred = [frozenset((a, b)) in together for a, b in zip(rules["antecedent"], rules["consequent"])]
        assert all(s or p for s, p in zip(same_tier, preferred)), rules[~(np.array(same_tier) | preferred)]
        assert np.array(same_tier)[rules["rank"] == 1].all(), u
        assert sum(preferred) >= 4, u


def test_the_best_campaigns_action_targets_by_uplift_only_when_its_target_file_is_written(results, demo_unit):
    """The first finding's action sends the best campaign to the customers with the highest
    predicted uplift only when that campaign's model beats random targeting (online: Spring sale
    does; stores: the best campaign's model does not, so the action keeps the holdout instead)."""
    from custlib.present import marketing as present
    from custlib.present.i18n import set_language

    set_language("en")
    for u, r in results.items():
        best = present.findings(r, demo_unit(u).params)[0]
        targeted = [c for c, m in r.uplift.items() if isinstance(m, marketing.CampaignUplift) and m.beats_random]
        best_is_targeted = any(best.text.startswith(present.campaign_name(r, c)) for c in targeted)
        assert ("predicted uplift" in best.action) == best_is_targeted, (u, best)
        assert best_is_targeted == (u != "stores"), u
