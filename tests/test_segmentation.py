"""Segmentation: hand-made RFM, value-tier and Gini examples, the client's classes, the
playbook, migration, recovery of the planted archetypes and demographic skews, and the
report's findings and narrative following params in both languages."""

from __future__ import annotations

import dataclasses
import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.metrics import adjusted_rand_score

from custlib import contract
from custlib import segmentation as sg
from custlib.errors import CustlibDataError
from custlib.params import ClassDimension, SegmentationParams, load_params
from custlib.present import segmentation as present
from custlib.present.i18n import set_language
from custlib.profiles import profile
from custlib.stats import Unavailable

ROOT = Path(__file__).resolve().parents[1]

UNITS = ("online", "stores", "b2b")


@pytest.fixture(scope="module")
def seg_params() -> SegmentationParams:
    return load_params("online", ROOT / "params").segmentation


# -- scores -------------------------------------------------------------------------------------

def test_scores_are_quintiles_of_distinct_values():
    assert sg.quintile_scores(np.arange(1, 11)).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_single_purchase_mass_gets_its_own_score_and_the_rest_is_split_evenly():
    orders = [1] * 6 + [2, 3, 4, 5]
    assert sg.quintile_scores(orders).tolist() == [1] * 6 + [2, 3, 4, 5]


def test_ties_are_never_split_and_no_score_is_empty():
    # groups (value: count) 1:2, 2:3, 3:1, 4:1, 5:2, 6:1; targets 2, then 8/4, 5/3, 3/2, rest
    values = [1, 1, 2, 2, 2, 3, 4, 5, 5, 6]
    assert sg.quintile_scores(values).tolist() == [1, 1, 2, 2, 2, 3, 3, 4, 4, 5]


def test_few_distinct_values_spread_over_the_scale():
    assert sg.quintile_scores([1, 1, 2, 2]).tolist() == [1, 1, 5, 5]
    assert sg.quintile_scores([1, 2, 3]).tolist() == [1, 3, 5]
    assert sg.quintile_scores([7, 7, 7]).tolist() == [3, 3, 3]


def test_rfm_from_transactions_matches_hand_computation(seg_params):
    """Recency counts from the last positive order, returns reduce monetary, one-purchase
    customers have frequency 1."""
    tx = pd.DataFrame({
        "order_id": ["o1", "o2", "o3", "o4"], "customer_id": ["A", "A", "A", "B"],
        "business_unit": "u", "order_date": ["2025-12-01", "2025-12-20", "2025-12-25", "2025-06-30"],
        "amount": [100.0, 50.0, -20.0, 200.0], "discount": 0.0, "quantity": 1, "channel": "web",
        "product_category": "x",
    })
    from custlib import features

    agg = features.customer_aggregates(tx, date(2025, 12, 31))
    rfm = sg.rfm_scores(agg)
    assert rfm.loc["A", ["recency", "frequency", "monetary"]].tolist() == [11, 2, 130]
    assert rfm.loc["B", ["recency", "frequency", "monetary"]].tolist() == [184, 1, 200]
    # two distinct values per measure: the better one scores 5, the other 1
    assert rfm.loc["A", ["r_score", "f_score", "m_score"]].tolist() == [5, 5, 1]
    assert rfm.loc["B", ["r_score", "f_score", "m_score"]].tolist() == [1, 1, 5]
    assert sg.assign_rfm_segments(rfm, seg_params).to_dict() == {"A": "Champions", "B": "Lost"}
    recent = features.customer_aggregates(tx, date(2025, 12, 31), orders_since=date(2025, 12, 1))
    assert recent["recent_orders"].to_dict() == {"A": 1, "B": 0}  # the return on 12-25 is no order


def test_segment_names_follow_the_standard_map(seg_params):
    # ten customers: recency 1..10 days -> R 5,5,4,4,3,3,2,2,1,1; orders chosen per F score
    table = pd.DataFrame({
        "recency_days": np.arange(1, 11), "revenue": np.arange(1, 11) * 10.0,
        "orders": [9, 1, 1, 6, 4, 2, 9, 5, 1, 9],
    }, index=[f"c{i}" for i in range(10)])
    rfm = sg.rfm_scores(table)
    # orders by value (count) 1(3) 2(1) 4(1) 5(1) 6(1) 9(3): bins {1}, {2, 4}, {5}, {6}, {9}
    assert rfm["f_score"].tolist() == [5, 1, 1, 4, 2, 2, 5, 3, 1, 5]
    segments = sg.assign_rfm_segments(rfm, seg_params).tolist()
    assert segments == ["Champions", "New", "Promising", "Loyal", "About to sleep", "About to sleep",
                        "Can't lose them", "At risk", "Lost", "Can't lose them"]


def test_rfm_map_must_cover_every_score_combination():
    with pytest.raises(ValidationError, match="no rule matches"):
        SegmentationParams(rfm_segments=[{"name": "recent", "r": [3, 5]}])
    SegmentationParams(rfm_segments=[{"name": "recent", "r": [3, 5]}, {"name": "old", "r": [1, 2]}])


# -- value tiers and concentration ----------------------------------------------------------------

def test_value_tiers_and_gini_match_a_direct_computation(seg_params):
    revenue = pd.Series([5.0, 50.0, 2.0, 30.0, 10.0, 3.0, 0.0], index=list("abcdefg"))
    tiers = sg.value_tiers(revenue, (0.80, 0.95), ("high", "mid", "low"))
    # largest first: b 50 (0% before), d 30 (50%), e 10 (80%), a 5 (90%), f 3 (95%), c 2 (98%), g 0
    assert tiers.to_dict() == {"a": "mid", "b": "high", "c": "low", "d": "high", "e": "mid",
                               "f": "low", "g": "low"}
    x = revenue.to_numpy()
    direct = np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean())
    assert sg.gini(x) == pytest.approx(direct)
    v = sg.value_analysis(revenue, seg_params)
    assert v.gini.estimate == pytest.approx(direct) and v.gini.ci_low <= direct <= v.gini.ci_high
    assert v.top20.estimate == pytest.approx(80 / 100)  # top 2 of 7 customers: 50 + 30
    assert v.top20.ci_low <= v.top20.ci_high and v.top20.n == 7 and v.top20.method.startswith("bootstrap")
    assert v.lorenz["revenue_share"].iloc[[0, -1]].tolist() == [0.0, 1.0]
    assert v.summary["customers"].tolist() == [2, 2, 3]
    assert v.summary["revenue_share"].iloc[0].estimate == pytest.approx(0.8)


def test_concentration_bootstrap_is_the_full_resample_matrix_one_row_at_a_time():
    """The resamples, and so the intervals, are exactly those of sorting a (reps x n) matrix of
    resampled revenues; only the memory differs."""
    rng = np.random.default_rng(3)
    x = np.round(rng.lognormal(3, 1, 1001), 2)
    x[:100] = 0.0
    reps, n = 40, len(x)
    sample = np.sort(x[np.random.default_rng(7).integers(0, n, (reps, n))], axis=1)
    totals = sample.sum(axis=1)
    g = 2 * (sample * np.arange(1, n + 1)).sum(axis=1) / (n * totals) - (n + 1) / n
    top = sample[:, n - int(np.ceil(sg.TOP_SHARE * n)):].sum(axis=1) / totals
    gini, top20 = sg._bootstrap_concentration(x, reps, np.random.default_rng(7))
    assert (gini.se, gini.ci_low, gini.ci_high) == (g.std(ddof=1), *np.percentile(g, [2.5, 97.5]))
    assert (top20.se, top20.ci_low, top20.ci_high) == (top.std(ddof=1), *np.percentile(top, [2.5, 97.5]))


def test_share_of_total_is_the_ratio_with_an_interval():
    values = pd.Series([10.0, 20.0, 30.0, 40.0])
    e = sg.share_of_total(values, values > 25)
    assert e.estimate == pytest.approx(0.7) and e.n == 2 and e.ci_low < 0.7 < e.ci_high


# -- classes and playbook -------------------------------------------------------------------------

def test_classes_first_matching_rule_wins_and_bad_rules_are_reported():
    dim = ClassDimension(title="need", rules=[{"name": "potential", "rule": "orders == 0"},
                                              {"name": "basic", "rule": "discounted_share >= 0.5"}],
                         otherwise={"name": "mainstream"})
    table = pd.DataFrame({"orders": [0, 3, 2], "discounted_share": [np.nan, 0.6, 0.1]})
    assert sg.classify(table, dim).tolist() == ["potential", "basic", "mainstream"]
    bad = dim.model_copy(update={"rules": [dim.rules[0].model_copy(update={"rule": "no_such_column > 1"})]})
    with pytest.raises(CustlibDataError, match="cannot be evaluated"):
        sg.classify(table, bad)


def test_playbook_target_lists_hold_ids_and_segment_fields_only(seg_params):
    table = pd.DataFrame({
        "record": ["customer", "customer", "customer", "lead"], "orders": [5, 1, 0, 0],
        "revenue": [500.0, 20.0, np.nan, np.nan], "rfm_segment": ["Champions", "Lost", None, None],
        "value_tier": ["high", "low", None, None], "cluster": [1, 2, np.nan, np.nan],
        "cluster_name": ["frequent buyers", "occasional buyers", None, None],
        "need_class": ["mainstream", "basic", "potential", "potential"],
        "frequency_class": ["regular", "low-frequency", "potential", "potential"],
        "email": ["a@example.com", "b@example.com", "c@example.com", None],
    }, index=pd.Index(["C1", "C2", "C3", "L1"], name="customer_id"))
    book = sg.build_playbook(table, seg_params)
    vip = book.targets["vip_service"]
    assert vip["customer_id"].tolist() == ["C1"]
    assert vip["matched"].tolist() == ["value_tier=high"]
    trial = book.targets["trial_first_order"]
    assert trial["customer_id"].tolist() == ["C3"]  # the open lead has no customer record
    assert trial["matched"].tolist() == ["need_class=potential"]
    for df in book.targets.values():
        assert not set(df.columns) & set(contract.PERSONAL_FIELDS)
    row = book.groups.set_index(["field", "group"]).loc[("rfm_segment", "Champions")]
    assert row["customers"] == 1 and row["revenue_share"].estimate == pytest.approx(500 / 520)
    potential = book.groups.set_index(["field", "group"]).loc[("need_class", "potential")]
    assert (potential["customers"], potential["buyers"]) == (1, 0)  # C3; the lead has no record


def test_target_lists_name_every_matching_group_in_playbook_order(seg_params):
    table = pd.DataFrame({
        "record": "customer", "orders": [3, 2, 4], "revenue": [90.0, 50.0, 70.0],
        "rfm_segment": ["Loyal", "Lost", "Loyal"], "value_tier": ["mid", "low", "mid"],
        "need_class": ["basic", "basic", "mainstream"], "frequency_class": "regular",
    }, index=pd.Index(["C9", "C2", "C5"], name="customer_id"))
    bundles = sg.build_playbook(table, seg_params).targets["value_bundles"]
    assert bundles["customer_id"].tolist() == ["C2", "C5", "C9"]
    assert bundles["matched"].tolist() == ["need_class=basic", "value_tier=mid",
                                           "value_tier=mid; need_class=basic"]


def test_migration_scores_the_earlier_date_from_earlier_orders(seg_params):
    days = pd.to_datetime(["2025-01-10", "2025-02-10", "2025-03-10", "2025-05-01", "2025-11-01",
                           "2025-11-20", "2025-12-01", "2025-09-01"])
    tx = pd.DataFrame({"order_id": [f"o{i}" for i in range(8)],
                       "customer_id": ["A", "A", "B", "C", "C", "D", "E", "F"], "business_unit": "u",
                       "order_date": days, "amount": 100.0, "discount": 0.0, "quantity": 1,
                       "channel": "web", "product_category": "x"})
    from custlib import features

    end, earlier = date(2025, 12, 31), date(2025, 6, 30)
    now = sg.rfm_segments(features.customer_aggregates(tx, end), seg_params)
    m = sg.migration(sg.rfm_at(tx, earlier, seg_params), now, earlier, end, seg_params)
    assert int(m.matrix.to_numpy().sum()) == 6
    assert m.matrix.loc[sg.NOT_YET].sum() == 3  # D, E and F first bought after the earlier date
    assert m.row_shares().sum(axis=1).round(6).eq(1).all()


# -- the demo data: planted archetypes and skews ----------------------------------------------------

@pytest.fixture(scope="module")
def clustered(demo_unit, customer_truth):
    """Per unit: the customer table, the fitted clustering (few bootstrap refits) and the truth."""
    out = {}
    truth = customer_truth.set_index("customer_id")
    for u in UNITS:
        data = demo_unit(u)
        table = sg.customer_table(data)
        params = data.params.segmentation.clustering.model_copy(update={"bootstrap": 2})
        out[u] = (table, sg.BehaviourClustering(params).fit(table), truth)
    return out


@pytest.mark.parametrize("unit", UNITS)
def test_behavioural_clusters_recover_the_planted_archetypes(clustered, unit):
    table, clusters, truth = clustered[unit]
    archetype = truth.loc[clusters.labels_.index, "archetype"]
    assert adjusted_rand_score(archetype, clusters.labels_) >= 0.6
    by_k = clusters.silhouette_.set_index("k")["silhouette"]
    assert by_k.idxmax() == clusters.k_
    assert len(set(clusters.names_.values())) == clusters.k_


def test_clusters_fitted_on_a_sample_assign_every_buyer_and_agree_with_all(clustered, monkeypatch):
    """Above FIT_SAMPLE buyers k-means is fitted on a sample: here 5,000 of the demo's ~18,000
    buyers give the same k and nearly the same clusters as the fit on all of them."""
    table, full, _ = clustered["online"]
    monkeypatch.setattr(sg, "FIT_SAMPLE", 5000)
    sampled = sg.BehaviourClustering(full.params).fit(table)
    assert sampled.labels_.index.equals(full.labels_.index) and sampled.labels_.notna().all()
    assert sampled.k_ == full.k_
    assert adjusted_rand_score(full.labels_, sampled.labels_) >= 0.95
    assert sampled.centroids_["customers"].sum() == len(full.labels_)


@pytest.mark.parametrize("unit", UNITS)
def test_profiles_flag_planted_skews_and_not_the_independent_variable(clustered, truth, unit):
    table, clusters, ctruth = clustered[unit]
    buyers = table.loc[clusters.labels_.index]
    p = profile(clusters.labels_, buyers[["age_band", "gender", "income_band", "region"]])
    significant = p.tests.set_index("variable")["significant"]
    independent = truth["units"][unit]["independent_of_archetype"]
    assert independent == ["gender"]
    assert not significant["gender"]
    assert significant[["age_band", "income_band", "region"]].all()
    # the cluster made mostly of the archetype planted with the most high incomes over-represents them
    spec = {a["name"]: a for a in truth["units"][unit]["archetypes"]}
    richest = max(spec, key=lambda a: spec[a]["income_probs"][3])
    majority = pd.crosstab(clusters.labels_, ctruth.loc[clusters.labels_.index, "archetype"]).idxmax(axis=1)
    cell = p.cells.set_index(["group", "variable", "category"]).loc[
        (majority[majority == richest].index[0], "income_band", "high")]
    assert cell["flagged"] and cell["direction"] == "over"


def _fast(data, **segmentation):
    """``data`` with two cluster-stability refits (and other segmentation params replaced)."""
    sp = data.params.segmentation
    fast = sp.model_copy(update={"clustering": sp.clustering.model_copy(update={"bootstrap": 2}), **segmentation})
    return dataclasses.replace(data, params=data.params.model_copy(update={"segmentation": fast}))


@pytest.fixture(scope="module")
def b2b(demo_unit):
    data = _fast(demo_unit("b2b"))
    return data, sg.analyse(data)


def test_report_outputs_hold_the_units_customers_and_no_personal_field(b2b, tmp_path):
    data, seg = b2b
    sp = data.params.segmentation
    files = present.write_files(seg, tmp_path)
    segments = pd.read_parquet(tmp_path / "segments.parquet")
    for col in ("customer_id", "recency", "frequency", "monetary", "r_score", "f_score", "m_score",
                "rfm_segment", "value_tier", "cluster"):
        assert col in segments
    ids = set(data.customers.customer_id.execute())
    assert set(segments["customer_id"]) == ids
    assert segments["rfm_segment"].notna().sum() == seg.rfm.n
    allowed = {"customer_id", "matched", *sg.SEGMENT_FIELDS, *sp.classes}
    for action in sp.actions:
        df = pd.read_csv(tmp_path / "targets" / f"{action}.csv")
        assert set(df.columns) <= allowed
        assert set(df["customer_id"]) <= ids
    assert len(files) == 1 + len(sp.actions)
    assert not set(segments.columns) & set(contract.PERSONAL_FIELDS)


ENGLISH_RUN = re.compile(r"[A-Za-z][A-Za-z'-]+(?:[ ,;:]+[A-Za-z][A-Za-z'-]+){2,}")


@pytest.mark.parametrize("language", ["en", "zh"])
def test_findings_are_at_most_five_with_an_interval_each(b2b, language):
    data, seg = b2b
    set_language(language)
    try:
        found = present.findings(seg, data.params)
        texts = [f.text + f.action for f in found]
    finally:
        set_language("en")
    assert 4 <= len(found) <= 5
    assert sum("95%" in f.text for f in found) >= 3  # every finding past the counts carries its interval
    assert all(f.text.count("95%") <= 1 for f in found)
    if language == "zh":
        assert not [m.group(0) for x in texts for m in ENGLISH_RUN.finditer(x)]


def test_value_tier_cuts_from_params_set_the_narrative(demo_unit, b2b):
    data, seg = b2b
    intro = present.value_tiers_intro(data.params)
    assert "first 80% of net revenue" in intro and "next 15%" in intro and "remaining 5%" in intro
    data = _fast(demo_unit("b2b"), value_tier_cuts=(0.7, 0.9))
    seg = sg.analyse(data)
    intro = present.value_tiers_intro(data.params)
    assert "first 70% of net revenue" in intro and "next 20%" in intro and "remaining 10%" in intro
    concentration = [f for f in present.findings(seg, data.params) if "top 20%" in f.text]
    assert "first 70% of net revenue" in concentration[0].action
    assert seg.value.summary["revenue_share"].iloc[0].estimate == pytest.approx(0.7, abs=0.01)
    assert present.value_table(seg, data.params).iloc[1, 1] == "the next 20%"


def test_class_rules_read_as_words_not_code(b2b):
    data, seg = b2b
    assert present.class_rule_text(seg, "orders_per_month >= 3") == "Orders per month ≥ 3"
    assert present.class_rule_text(seg, "orders_per_month <= 1 / 3") == "Orders per month ≤ 0.33"
    assert present.class_rule_text(seg, "discounted_share >= 0.5 and basic_share >= 0.5") == (
        "Share of discounted orders ≥ 50% and Share of basic-tier orders ≥ 50%")
    assert present.class_rule_text(seg, "customer_type == 'enterprise'") == "Customer type = Enterprise"
    assert present.class_rule_text(seg, "orders.between(1, 2)") is None  # shown in the diagnostics
    rules = present.classes_table(seg, data.params).iloc[:, 2]
    assert not rules.str.contains(r"\w_\w|==|>=|<=").any()


def test_kpis_carry_gini_top20_share_and_actions(b2b):
    data, seg = b2b
    k = present.kpis(seg, data.params)
    assert k["gini"]["kind"] == "ratio" and k["top20_share"]["kind"] == "pct"
    assert k["top20_share"]["ci_low"] <= k["top20_share"]["estimate"] <= k["top20_share"]["ci_high"]
    assert k["top20_share"]["n"] == seg.buyers and 1 <= len(k["actions"]) <= 3


# -- thin and partial data: every part either a result or a sentence saying why not ----------------

THIN = {"n5": (5, "full"), "n50_no_leads": (50, "empty"), "one_time": (200, "one_time_buyers"),
        "one_class": (300, "one_class")}


@pytest.fixture(scope="module")
def thin(tmp_path_factory):
    """Per thin unit (see tests/thin_data.py): its UnitData and segmentation."""
    import thin_data

    from custlib import sources

    root = thin_data.make_project(tmp_path_factory.mktemp("thin"), THIN)
    out = {}
    for unit in THIN:
        data = sources.load_unit(unit, root, run_date="2026-01-15")
        out[unit] = data, sg.analyse(data)
    return out


@pytest.mark.parametrize("unit", THIN)
def test_thin_units_give_every_part_or_a_reason(thin, unit):
    data, seg = thin[unit]
    for part in (seg.prospects, seg.clusters, seg.migration, *seg.profiles.values()):
        assert not isinstance(part, Unavailable) or part.reason.endswith(".")
    texts = [f.text + f.action for f in present.findings(seg, data.params)] + present.warning_texts(seg, data.params)
    assert texts and "nan" not in " ".join(texts).lower()
    for table in (present.rfm_table, present.value_table, present.classes_table, present.playbook_table,
                  present.actions_table):
        shown = table(seg, data.params)
        assert len(shown) and "nan" not in shown.to_string().lower()
    assert seg.segments()["rfm_segment"].notna().sum() == seg.rfm.n == data.rows("customers") - (
        seg.customers.query("record == 'customer'")["orders"] == 0).sum()


def test_five_customers_show_counts_and_say_what_is_too_few(thin):
    data, seg = thin["n5"]
    small = seg.small_n
    assert isinstance(seg.clusters, Unavailable) and f"at least {small}" in seg.clusters.reason
    assert isinstance(seg.migration, Unavailable) and "migration" in seg.migration.reason
    assert all(isinstance(p, Unavailable) for p in seg.profiles.values())
    assert seg.customers["cluster"].isna().all() and seg.segments()["cluster"].isna().all()
    assert any(w.startswith(f"Only {seg.buyers} buyers") for w in present.warning_texts(seg, data.params))
    assert len(present.findings(seg, data.params)) == 1  # counts only: no confident numbers on five buyers
    assert set(present.value_table(seg, data.params).iloc[:, 4]) <= {f"too few (n = {k})" for k in range(6)}


def test_without_leads_the_prospects_section_names_the_table(thin):
    data, seg = thin["n50_no_leads"]
    assert isinstance(seg.prospects, Unavailable) and "Leads table" in seg.prospects.reason
    assert seg.prospects == sg.NO_LEADS and seg.prospects.values["table"] == "leads"
    assert "no leads data" in present.findings(seg, data.params)[0].text


def test_no_repeat_buyers_one_frequency_value(thin):
    _, seg = thin["one_time"]
    assert seg.rfm.customers["frequency"].eq(1).all() and seg.rfm.customers["f_score"].nunique() == 1
    assert isinstance(seg.clusters, sg.BehaviourClustering)
    assert (seg.clusters.centroids_["orders"] == 1).all()


def test_one_class_of_every_variable(thin):
    _, seg = thin["one_class"]
    assert isinstance(seg.profiles["type_class"], Unavailable)  # one customer type: one group
    rfm = seg.profiles["rfm_segment"]
    assert rfm.tests.set_index("variable").loc[["region", "city", "acquisition_channel"], "dof"].eq(0).all()
    assert isinstance(rfm.variable_cells("region"), Unavailable)


def test_clusters_limited_by_distinct_buyers(seg_params):
    cp = seg_params.clustering
    table = pd.DataFrame({"orders": [1, 2, 8] * 20, "recency_days": [400.0, 90.0, 5.0] * 20,
                          "avg_order_value": [50.0, 200.0, 900.0] * 20, "discounted_share": 0.0,
                          "premium_share": 0.0, "basic_share": 0.0})
    fitted = sg.cluster_buyers(table, cp, small_n=30)
    assert fitted.k_ <= 3 and fitted.silhouette_["k"].max() == 3
    same = table.assign(orders=1, recency_days=10.0, avg_order_value=100.0)
    assert isinstance(sg.cluster_buyers(same, cp, small_n=30), Unavailable)
    assert isinstance(sg.cluster_buyers(table.head(12), cp, small_n=30), Unavailable)


def test_migration_from_before_all_orders_is_unavailable(seg_params):
    tx = pd.DataFrame({"order_id": ["o1", "o2"], "customer_id": ["A", "B"], "business_unit": "u",
                       "order_date": pd.to_datetime(["2025-03-01", "2025-09-01"]), "amount": 100.0,
                       "discount": 0.0, "quantity": 1, "channel": "web", "product_category": "x"})
    from custlib import features

    end = date(2025, 12, 31)
    now = sg.rfm_segments(features.customer_aggregates(tx, end), seg_params)
    m = sg.migration(sg.rfm_at(tx, date(2024, 1, 1), seg_params), now, date(2024, 1, 1), end, seg_params)
    assert isinstance(m, Unavailable) and m.values == {"date": "2024-01-01", "n": 0, "needed": 1}
    assert "since 2024-01-01" in m.reason


def test_write_outputs_touches_only_segmentations_own_folder(thin):
    data, seg = thin["n5"]
    other = data.outputs("lifecycle") / "targets" / "churn_risk.csv"
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_bytes(b"customer_id,risk\nC1,0.9\n")
    before = other.read_bytes()
    own = data.outputs("segmentation")
    stale = own / "targets" / "dropped_action.csv"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text("customer_id\n")
    files = present.write_files(seg, own)
    assert other.read_bytes() == before
    assert not stale.exists()
    assert own == data.project_root / "reports" / data.params.id / "data" / "segmentation"
    for action, df in seg.playbook.targets.items():  # empty lists are written too, header only
        assert len(pd.read_csv(own / "targets" / f"{action}.csv")) == len(df)
    assert (files["rows"] == 0).any()


def test_leads_without_open_ones_are_not_reported_as_missing(thin):
    data, seg = thin["n5"]  # one lead, already won
    assert seg.prospects != sg.NO_LEADS
    first = present.findings(seg, data.params)[0].text
    assert "no lead is open" in first and "no leads data" not in first
