"""Lifecycle: stage rules, snapshots and transitions, cohorts, time to lapse, churn risk —
hand-computed examples, then one unit end to end on the demo data and its presentation."""

from __future__ import annotations

import dataclasses
import itertools
import re
from datetime import date

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from scipy.stats import mannwhitneyu
from sklearn.metrics import roc_auc_score
from thin_data import make_project

from custlib import clv, contract, demo, features, lifecycle, sources
from custlib.params import LifecycleParams
from custlib.present import i18n
from custlib.present import lifecycle as present
from custlib.stats import Unavailable


@pytest.fixture(autouse=True)
def english():
    i18n.set_language("en")
    yield
    i18n.set_language("en")


RULES = LifecycleParams(new_within_days=90, lapsed_after_days=365, at_risk_gap_factor=2.0,
                        at_risk_p_alive=0.5, loyal_min_purchases=5, loyal_recent_days=180)


def _tx(rows):
    df = pd.DataFrame(rows, columns=["customer_id", "order_date", "amount", "product_category"][: len(rows[0])])
    df["order_id"] = [f"O{i:03d}" for i in range(len(df))]
    if "product_category" not in df:
        df["product_category"] = "x"
    return df


def test_stage_rules_by_hand():
    snap = pd.Timestamp("2025-12-31")
    d = pd.Timestamp
    rows = [  # expected stage, first purchase, last purchase, purchase days, p_alive
        ("prospect", pd.NaT, pd.NaT, 0, np.nan),
        ("new", d("2025-11-01"), d("2025-11-01"), 1, np.nan),        # 60 days since the first purchase
        ("new", d("2025-10-02"), d("2025-12-01"), 3, 0.1),           # exactly 90 days: still new
        ("at_risk", d("2025-10-01"), d("2025-10-01"), 1, np.nan),    # 91 days, one purchase only
        ("lapsed", d("2024-06-01"), d("2024-12-30"), 4, 0.9),        # silent 366 days
        ("at_risk", d("2024-12-31"), d("2024-12-31"), 1, np.nan),    # silent exactly 365 days
        ("at_risk", d("2025-01-01"), d("2025-07-01"), 3, 0.9),       # mean gap 90.5 d, silent 183 > 181
        ("repeat", d("2025-01-01"), d("2025-09-01"), 3, 0.9),        # mean gap 121.5 d, silent 121
        ("loyal", d("2025-01-01"), d("2025-12-01"), 5, 0.9),         # 5 purchase days, silent 30
        ("at_risk", d("2025-01-01"), d("2025-12-01"), 5, 0.4),       # P(alive) below 0.5
        ("repeat", d("2023-01-01"), d("2025-06-14"), 6, 0.9),        # silent 200 > 180: not loyal
    ]
    h = pd.DataFrame(rows, columns=["expected", "first_purchase", "last_purchase", "purchase_days", "p_alive"])
    h["snapshot"] = snap
    got = lifecycle.assign_stages(h, RULES)
    assert list(got.astype(str)) == list(h["expected"])
    assert list(got.cat.categories) == ["prospect", "new", "repeat", "loyal", "at_risk", "lapsed"]


def test_stage_history_snapshots_and_transitions_by_hand():
    # "AB" is not a customer (an unvalidated source): its purchase days count for nobody
    tx = _tx([("A", "2025-01-10", 10.0), ("AB", "2025-01-11", 1.0), ("AB", "2025-01-12", 1.0),
              ("AB", "2025-02-12", 1.0), ("C", "2025-02-10", 5.0)])
    customers = pd.DataFrame({"customer_id": ["A", "B", "C"],
                              "signup_date": pd.to_datetime(["2025-01-05", "2025-01-20", "2025-02-10"])})
    leads = pd.DataFrame({
        "lead_id": ["L1", "L2", "L3"], "customer_id": [None, "C", None],
        "created_date": pd.to_datetime(["2025-01-15", "2025-01-03", "2025-01-02"]),
        "won_date": pd.to_datetime([None, "2025-02-10", None]),
        "lost_date": pd.to_datetime([None, None, "2025-01-20"]),
    })
    h = lifecycle.stage_history(tx, customers, leads, date(2025, 2, 28), RULES, start=date(2025, 1, 1))
    counts = h.counts.pivot(index="snapshot", columns="stage", values="entities")
    assert counts.loc["2025-01-31", "prospect"] == 3 and counts.loc["2025-01-31", "new"] == 1  # B, L1, lead of C
    assert counts.loc["2025-02-28", "prospect"] == 2 and counts.loc["2025-02-28", "new"] == 2
    assert counts.sum(axis=1).tolist() == [4, 4]  # the lost lead L3 has left
    t = h.transitions().set_index(["from_stage", "to_stage"])
    assert t.loc[("prospect", "prospect"), "entities"] == 2 and t.loc[("prospect", "new"), "entities"] == 1
    assert t.loc[("prospect", "new"), "share"] == pytest.approx(1 / 3)
    assert t.loc[("new", "new"), "share"] == 1
    cur = h.current()
    assert sorted(cur.index) == ["A", "B", "C"]  # the open lead L1 is not a customer
    assert cur.loc["C", "stage"] == "new" and cur.loc["B", "stage"] == "prospect"
    assert cur.loc[["A", "C"], "purchase_days"].tolist() == [1, 1]
    assert h.previous_stage().to_dict() == {"A": "new", "B": "prospect"}


@pytest.fixture(scope="module")
def small_b2b(tmp_path_factory):
    """The b2b unit of a 300-customer demo (it has leads), with extra leads for the edge cases:
    two open leads of one customer before the signup, leads of ids missing from the customers."""
    out = tmp_path_factory.mktemp("small_demo")
    demo.generate(out, customers=300, seed=3, units=("b2b",))
    leads = pd.read_parquet(out / "leads.parquet")
    late = pd.read_parquet(out / "customers.parquet").sort_values("signup_date").iloc[-1]
    extra = leads.iloc[[0, 0, 0, 0]].assign(
        lead_id=["X1", "X2", "X3", "X4"], customer_id=[late["customer_id"], late["customer_id"], "GONE", "GONE"],
        created_date=pd.Timestamp("2024-03-01"), qualified_date=pd.NaT, opportunity_date=pd.NaT,
        won_date=pd.NaT, lost_date=[pd.NaT, pd.NaT, pd.NaT, pd.Timestamp("2024-09-15")])
    pd.concat([leads, extra], ignore_index=True).to_parquet(out / "leads.parquet")
    return sources.load_unit("b2b", ROOT, run_date="2026-01-15", data_source=out, check=False)


def _stage_panel(tx, customers, leads, end, rules, model, start) -> pd.DataFrame:
    """Every customer and open lead at every snapshot, one row each, with its stage: the
    straightforward pandas panel the streaming :func:`lifecycle.stage_history` must agree with."""
    snap = pd.DataFrame({"snapshot": pd.to_datetime(lifecycle.snapshot_dates(start, end))})
    hist = features.customer_snapshots(tx, list(snap["snapshot"].dt.date))
    cust = customers[["customer_id", "signup_date"]].merge(snap, how="cross").merge(
        hist, on=["customer_id", "snapshot"], how="left")
    cust = cust[(pd.to_datetime(cust["signup_date"]) <= cust["snapshot"]) | cust["first_purchase"].notna()]
    cust = cust.rename(columns={"customer_id": "key"}).assign(is_customer=True)
    lp = leads.assign(key=leads["customer_id"].fillna(leads["lead_id"])).merge(snap, how="cross")
    decided = pd.to_datetime(lp["won_date"]).fillna(pd.to_datetime(lp["lost_date"]))
    lp = lp[(pd.to_datetime(lp["created_date"]) <= lp["snapshot"]) & ~(decided <= lp["snapshot"])]
    counted = pd.MultiIndex.from_frame(cust[["key", "snapshot"]])
    lp = lp[~pd.MultiIndex.from_frame(lp[["key", "snapshot"]]).isin(counted)][["key", "snapshot"]]
    panel = pd.concat([cust, lp.assign(is_customer=False)], ignore_index=True)
    panel["purchase_days"] = panel["purchase_days"].fillna(0).astype(int)
    b = panel[panel["purchase_days"] > 0]
    panel.loc[b.index, "p_alive"] = model.probability_alive(pd.DataFrame(
        {"frequency": b["purchase_days"] - 1, "recency": (b["last_purchase"] - b["first_purchase"]).dt.days / 7.0,
         "T": (b["snapshot"] - b["first_purchase"]).dt.days / 7.0}))
    return panel.assign(stage=lifecycle.assign_stages(panel, rules))


def test_streaming_stage_history_equals_the_full_panel(small_b2b):
    data = small_b2b
    end, rules = data.params.observation_end, data.params.lifecycle
    tx = data.transactions
    customers = data.customers.select("customer_id", "signup_date").execute()
    leads = data.leads.execute()
    start = data.period()[0]
    model = clv.BetaGeoModel().fit(features.customer_summary(tx, end))
    h = lifecycle.stage_history(tx, customers, leads, end, rules, model=model, start=start)
    panel = _stage_panel(tx, customers, leads, end, rules, model, start)

    counts = panel.groupby(["snapshot", "stage"], observed=False).size().rename("entities").reset_index()
    pd.testing.assert_frame_equal(h.counts, counts)
    snaps = sorted(panel["snapshot"].unique())
    assert h.snapshots == snaps and len(snaps) > 24
    for months in (1, 12, len(snaps)):
        pairs = list(itertools.pairwise(snaps))[-months:]
        at = {s: panel[panel["snapshot"] == s][["key", "stage"]] for s in snaps}
        moved = pd.concat([at[a].merge(at[b], on="key", suffixes=("_from", "_to")) for a, b in pairs])
        expected = moved.groupby(["stage_from", "stage_to"], observed=False).size().to_numpy()
        assert h.transitions(months)["entities"].tolist() == expected.tolist()
    last, before = (panel[(panel["snapshot"] == s) & panel["is_customer"]].set_index("key")
                    for s in (snaps[-1], snaps[-2]))
    cols = ["first_purchase", "last_purchase", "purchase_days", "p_alive", "stage"]
    expected = last[cols].rename_axis("customer_id").astype({"first_purchase": "datetime64[ns]",
                                                             "last_purchase": "datetime64[ns]"})
    pd.testing.assert_frame_equal(h.current(), expected, check_exact=True)
    pd.testing.assert_series_equal(h.previous_stage(), before["stage"].rename_axis("customer_id"))
    open_leads = panel[(panel["snapshot"] == snaps[-1]) & ~panel["is_customer"]]
    assert h.open_leads == len(open_leads) and (open_leads["key"] == "GONE").sum() == 1
    # the two open leads of the late customer count twice before the signup, then as the customer
    late = panel[panel["key"] == customers.sort_values("signup_date")["customer_id"].iloc[-1]]
    assert (late.groupby("snapshot").size() == 2).any()


def test_engine_cohorts_equal_the_dense_panel(small_b2b):
    data = small_b2b
    end, start = data.params.observation_end, data.period()[0]
    panel = features.customer_month_panel(data.transactions, end, start)
    size = panel[panel["months_since_first"] == 0].groupby("first_month").size().rename("cohort_size")
    g = panel.groupby(["first_month", "months_since_first"]).agg(active=("active", "sum"),
                                                                  revenue=("spend", "sum"))
    expected = g.reset_index().merge(size.reset_index(), on="first_month").rename(
        columns={"first_month": "cohort"})
    got = lifecycle.cohort_retention(data.transactions, end, start)
    for c in ("cohort", "months_since_first", "cohort_size", "active"):
        assert got[c].astype(str).tolist() == expected[c].astype(str).tolist(), c
    # the engine sums the same amounts in another order
    np.testing.assert_allclose(got["revenue"], expected["revenue"], rtol=1e-12)


def test_lapse_curves_on_counts_equal_the_curves_on_customers(small_b2b):
    data = small_b2b
    per_customer = features.lapse_times(data.transactions, data.params.observation_end,
                                        data.params.lifecycle.lapsed_after_days)
    customers = data.customers.select("customer_id", "acquisition_channel").execute()
    counted = lifecycle.lapse_counts(per_customer, customers, data.params.category_tiers)
    assert counted["customers"].sum() == len(per_customer) and len(counted) < len(per_customer)
    rows = per_customer.merge(customers, on="customer_id", how="left")
    rows["first_order_tier"] = rows["first_category"].map(data.params.category_tiers)
    medians = [lifecycle.median_time_to_lapse(d) for d in (counted, rows)]
    np.testing.assert_equal(*[(m.estimate, m.ci_low, m.ci_high, m.n) for m in medians])
    for by in ("acquisition_channel", "first_order_tier"):
        smallest = int(rows[by].value_counts().min())
        assert rows[by].nunique() > 2  # leaving the smallest group out leaves two
        a, b = (lifecycle.time_to_lapse(d, by, min_n=smallest + 1) for d in (counted, rows))
        assert len(a.medians) == rows[by].nunique() - 1
        pd.testing.assert_frame_equal(a.curves, b.curves, check_exact=True)
        pd.testing.assert_frame_equal(a.medians, b.medians, check_exact=True)
        assert a.logrank == pytest.approx(b.logrank, rel=1e-12)  # the weighted test sums in another order


def test_cohort_retention_by_hand():
    tx = _tx([("A", "2025-01-05", 10.0), ("A", "2025-01-20", 5.0), ("A", "2025-03-02", 7.0),
              ("B", "2025-01-10", 20.0), ("B", "2025-02-15", -5.0),   # a return is not activity
              ("C", "2025-02-01", 8.0), ("C", "2025-03-03", 4.0)])
    c = lifecycle.cohort_retention(tx, date(2025, 3, 31), date(2025, 1, 1))
    c = c.set_index(["cohort", "months_since_first"])
    jan, feb = pd.Timestamp("2025-01-01"), pd.Timestamp("2025-02-01")
    assert c.loc[(jan, 0), "cohort_size"] == 2 and c.loc[(feb, 0), "cohort_size"] == 1
    assert c.loc[(jan, 0), "revenue"] == pytest.approx(35.0)
    assert c.loc[(jan, 1), "retention"] == 0 and c.loc[(jan, 1), "revenue_per_customer"] == pytest.approx(-2.5)
    assert c.loc[(jan, 2), "retention"] == pytest.approx(0.5)
    assert c.loc[(feb, 1), "retention"] == 1
    r1 = lifecycle.retention_at(c.reset_index(), 1)
    assert (r1.estimate, r1.n) == (pytest.approx(1 / 3), 3)
    assert r1.ci_low < 1 / 3 < r1.ci_high


def test_lapse_times_and_kaplan_meier_by_hand():
    tx = _tx([("A", "2025-01-01", 5.0, "y"), ("A", "2025-01-01", 5.0, "x"), ("A", "2025-01-20", 5.0, "x"),
              ("A", "2025-03-05", 5.0, "x"),                       # gap of 44 > 30 days after 01-20
              ("B", "2025-01-10", 5.0, "z"), ("B", "2025-02-05", 5.0, "z"), ("B", "2025-03-01", 5.0, "z"),
              ("C", "2025-02-01", 5.0, "z"),                       # never again
              ("D", "2025-03-15", 5.0, "z")])                      # too late to follow
    lt = features.lapse_times(tx, date(2025, 3, 31), 30).set_index("customer_id")
    assert list(lt.index) == ["A", "B", "C"]
    assert lt.loc["A", "first_category"] == "y"                     # first order by order id
    assert bool(lt.loc["A", "lapsed"]) and lt.loc["A", "days_to_lapse"] == 19
    assert not lt.loc["B", "lapsed"] and lt.loc["B", "days_to_lapse"] == 50  # censored on 03-01
    assert bool(lt.loc["C", "lapsed"]) and lt.loc["C", "days_to_lapse"] == 0

    km = pd.DataFrame({"days_to_lapse": [1, 2, 3, 4, 5, 6, 7, 9], "lapsed": [1, 1, 1, 1, 1, 0, 1, 1],
                       "group": ["g1"] * 4 + ["g2"] * 3 + ["tiny"]})
    curves = lifecycle.time_to_lapse(km, "group", min_n=2)
    med = curves.medians.set_index("group")
    assert list(med.index) == ["g1", "g2"]
    assert med.loc["g1", "median_days"] == 2   # S = 0.75, 0.5 -> first day with S <= 0.5
    assert med.loc["g2", "median_days"] == 7   # S(5) = 2/3, censored at 6, S(7) = 0
    assert 0 < curves.logrank["p_value"] < 1 and curves.logrank["df"] == 1


def test_churn_risk_selection_by_hand():
    values = pd.DataFrame({
        "p_alive": [0.9, 0.3, 0.8, 0.2, 0.9, 0.1],
        "p_no_purchase": [0.2, 0.8, 0.5, 0.9, 0.1, 0.95],
        "clv": [100.0, 30.0, 80.0, 5.0, 10.0, 50.0],
    }, index=pd.Index(list("ABCDEF"), name="customer_id"))
    values["value_if_retained"] = values["clv"] / values["p_alive"]  # A 111, B 100, C 100, D 25, E 11, F 500
    now = pd.Series(["loyal", "repeat", "at_risk", "at_risk", "new", "lapsed"], index=values.index)
    before = pd.Series(["loyal", "repeat", "repeat", "at_risk", "prospect", "at_risk"], index=values.index)
    rules = RULES.model_copy(update={"churn_value_quantile": 0.5})
    out = lifecycle.churn_risk(values, now, before, rules)
    # active: A-E; median value if retained 100 -> valuable A, B, C; at risk: B (p_alive), C (stage)
    assert list(out["customer_id"]) == ["B", "C"]          # value at risk 70 and 20
    assert out["value_at_risk"].tolist() == pytest.approx([70.0, 20.0])
    assert out["became_at_risk"].tolist() == [0, 1]
    assert out["risk_rank"].tolist() == [1, 2]
    assert not set(out.columns) & set(contract.PERSONAL_FIELDS)


def test_auc_matches_scikit_learn_with_ties():
    rng = np.random.default_rng(5)
    y = (rng.random(500) < 0.3).astype(int)
    s = rng.integers(0, 10, 500) + 2 * y
    auc, _ = lifecycle._ScoreRanking(y, s).on(np.arange(500))
    assert auc == pytest.approx(roc_auc_score(y, s))


def test_bootstrap_metrics_from_counts_equal_the_metrics_of_each_resample():
    """The per-resample counts give exactly the AUC (Mann–Whitney U, ties half) and top-decile
    lift (stable sort: tied scores in resample order) computed on the resampled rows."""
    rng = np.random.default_rng(8)
    for n in (25, 400):
        y = (rng.random(n) < 0.35).astype(int)
        for s in (rng.integers(0, 6, n) + y, rng.random(n).round(1)):  # heavy ties
            ranking = lifecycle._ScoreRanking(y, s)
            for _ in range(30):
                i = rng.integers(0, n, n)
                yi, si = y[i], s[i]
                pos = yi == 1
                u = mannwhitneyu(si[pos], si[~pos], method="asymptotic", use_continuity=False).statistic
                top = max(1, round(0.1 * n))
                lift = yi[np.argsort(-si, kind="stable")[:top]].mean() / yi.mean()
                assert ranking.on(i) == (float(u / (pos.sum() * (~pos).sum())), float(lift))


@pytest.fixture(scope="module")
def stores(demo_unit):
    data = demo_unit("stores")
    return data, lifecycle.analyse(data)


def _writing_to(data, root):
    """The unit's data with its report outputs under ``root`` (not the repository)."""
    return dataclasses.replace(data, project_root=root)


def test_lifecycle_end_to_end_on_one_unit(stores, tmp_path):
    data, lc = stores
    paths = present.write_outputs(lc, _writing_to(data, tmp_path))
    tmp_path = tmp_path / "reports" / "stores" / "data" / "lifecycle"
    ids = set(data.customers.customer_id.execute())
    out = pd.read_parquet(tmp_path / "lifecycle.parquet")
    assert list(out.columns) == ["customer_id", "stage", "p_alive", "expected_purchases", "expected_spend", "clv",
                                 "clv_ci_low", "clv_ci_high"]
    assert set(out["customer_id"]) == ids
    churn = pd.read_csv(tmp_path / "targets" / "churn_risk.csv")
    assert set(churn["customer_id"]) <= ids and len(churn) > 0
    assert list(churn.columns) == ["customer_id", "risk_rank", "p_alive", "p_no_purchase", "clv",
                                   "value_if_retained", "value_at_risk", "became_at_risk"]
    for p in paths:
        df = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
        assert not set(df.columns) & set(contract.PERSONAL_FIELDS)
    # buyers never sit in the prospect stage; never-buyers always do
    buyers = out["expected_spend"].notna()
    assert (out.loc[buyers, "stage"] != "prospect").all() and (out.loc[~buyers, "stage"] == "prospect").all()
    # the holdout check: the model forecasts holdout purchases of the calibration customers
    track = lc.holdout.tracking.iloc[-1]
    assert track["predicted"] == pytest.approx(track["actual"], rel=0.05)
    # the CLV of the stages adds up to the total; the value at risk is the list's value if retained
    total = lc.value.total.estimate
    assert lc.stage_value["estimate"].sum() == pytest.approx(total.estimate)
    assert (lc.stage_value["ci_low"] < lc.stage_value["estimate"]).all()
    risk = lc.value_at_risk
    assert risk.estimate == pytest.approx(lc.churn["value_if_retained"].sum())
    assert risk.ci_low < risk.estimate < risk.ci_high and risk.n == len(lc.churn)
    assert lc.retention.set_index("months").loc[3, "estimate"] == lifecycle.retention_at(lc.cohorts, 3).estimate


# -- presentation: text from params, findings, tables for executives -----------------------------

def _with_lifecycle(params, **changes):
    return params.model_copy(update={"lifecycle": params.lifecycle.model_copy(update=changes)})


@pytest.mark.parametrize("language, days", [("en", "{} days"), ("zh", "{}天")])
def test_thresholds_in_the_text_follow_params(stores, language, days):
    data, lc = stores
    i18n.set_language(language)
    for lapse, new in ((365, 90), (200, 45)):
        params = _with_lifecycle(data.params, lapsed_after_days=lapse, new_within_days=new)
        rules = present.stage_rules(params)
        assert days.format(lapse) in rules["lapsed"]
        assert days.format(new) in rules["new"] and days.format(new) in rules["at_risk"]
        text = " ".join(f.text for f in present.findings(lc, params))
        assert days.format(lapse) in text
        table = present.stage_table(lc, params)
        assert days.format(new) in " ".join(table.iloc[:, 1])
    other = present.stage_rules(_with_lifecycle(data.params, at_risk_p_alive=0.3, loyal_min_purchases=7))
    assert "30%" in other["at_risk"] and "7" in other["loyal"]
    assert "%" not in present.stage_rules(data.params, with_model=False)["at_risk"]


@pytest.mark.parametrize("language", ["en", "zh"])
def test_at_most_five_findings_each_with_an_action(stores, language):
    data, lc = stores
    i18n.set_language(language)
    found = present.findings(lc, data.params)
    assert 1 <= len(found) <= 5 and all(f.text and f.action for f in found)
    if language == "zh":
        words = re.compile(r"[A-Za-z][a-z]+(?:[ -][A-Za-z][a-z]+){2,}")
        assert not [f for f in found if words.search(f.text + f.action)]
        assert data.params.lifecycle.stages["lapsed"].chinese in " ".join(present.stage_names(data.params).values())


def test_tables_for_executives_show_display_values(stores):
    data, lc = stores
    stage = present.stage_table(lc, data.params)
    clv_column = next(c for c in stage.columns if "CLV" in c)
    assert data.params.currency in clv_column and "se" not in stage.columns
    assert not stage[clv_column].str.contains(r"\.\d\d\b").any()  # no fen above 1,000
    retention = present.retention_table(lc, data.params)
    assert retention.iloc[:, 0].tolist()[:3] == [1, 2, 3] and retention.iloc[:, 1].str.contains("%").all()
    churn = present.churn_table(lc, data.params)
    assert len(churn) == present.CHURN_ROWS_SHOWN and not set(churn.columns) & set(lifecycle.CHURN_COLUMNS)
    assert all(churn[c].astype(str).str.strip().ne("").any() for c in churn.columns)  # no empty column
    lapse = present.lapse_table(lc.lapse_by_channel)
    assert lapse.iloc[:, -1].str.match(r"^\d[\d,]* days \(").all()


def test_kpis_for_the_portfolio(stores):
    data, lc = stores
    k = present.kpis(lc, data.params)
    assert k["clv_total"]["kind"] == k["value_at_risk"]["kind"] == "money"
    assert k["clv_total"]["currency"] == data.params.currency
    assert k["value_at_risk"]["ci_low"] < k["value_at_risk"]["estimate"] < k["value_at_risk"]["ci_high"]
    assert k["at_risk_customers"] == len(lc.churn) and 1 <= len(k["actions"]) <= 3


# -- thin and partial data: a sentence instead of a number ---------------------------------------

def test_parts_the_data_cannot_support_are_unavailable_by_hand():
    by = "acquisition_channel"
    one_group = pd.DataFrame({"days_to_lapse": [1.0, 2, 3, 4], "lapsed": [1, 0, 1, 1], by: ["a"] * 4})
    assert "two groups" in lifecycle.time_to_lapse(one_group, by, min_n=2).reason
    no_lapse = one_group.assign(lapsed=0, **{by: ["a", "a", "b", "b"]})
    assert "none of the 4 customers" in lifecycle.time_to_lapse(no_lapse, by, min_n=2).reason
    assert isinstance(lifecycle.median_time_to_lapse(no_lapse), Unavailable)
    assert "fewer than half" in lifecycle.median_time_to_lapse(no_lapse.assign(lapsed=[1, 0, 0, 0])).reason.lower()

    one_month = _tx([("A", "2025-01-05", 10.0), ("B", "2025-01-09", 5.0)])
    assert isinstance(lifecycle.cohort_retention(one_month, date(2025, 1, 31), date(2025, 1, 1)), Unavailable)

    scores = {"model": np.arange(40.0), "rule": np.arange(40.0)[::-1]}
    assert "both kinds" in lifecycle.churn_ranking(np.ones(40, int), scores, 30).reason
    few = lifecycle.churn_ranking(np.r_[np.ones(10, int), np.zeros(10, int)], scores, 30)
    assert few.reason.startswith("Too few")

    summary = pd.DataFrame({"frequency": 0.0, "recency": 0.0, "T": np.arange(1.0, 41.0), "monetary_value": 0.0})
    few = lifecycle.customer_value(summary.head(5), RULES, 30)
    assert "5 buyers, at least 30 needed" in few.reason
    assert "0 repeat buyers" in lifecycle.customer_value(summary, RULES, 30).reason


@pytest.fixture(scope="module")
def thin_root(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("thin_lifecycle"),
                        {"n5": (5, "full"), "n50_absent": (50, "absent"), "one_time": (200, "one_time_buyers")})


@pytest.mark.parametrize("unit", ["n5", "n50_absent", "one_time"])
def test_thin_units_give_reasons_not_exceptions(thin_root, unit, tmp_path):
    data = sources.load_unit(unit, thin_root, run_date="2026-01-15")
    lc = lifecycle.analyse(data)
    for language in ("en", "zh"):
        i18n.set_language(language)
        found = present.findings(lc, data.params)
        text = " ".join([f.text + f.action for f in found] + present.caveats(lc, data.params))
        assert len(found) <= 5 and not re.search(r"\bnan\b|\binf\b", text, re.IGNORECASE)
        assert len(present.stage_table(lc, data.params)) == len(lifecycle.LIFECYCLE_STAGES)
    i18n.set_language("en")
    assert lc.stage_mix["entities"].sum() == lc.n_staged
    data = _writing_to(data, tmp_path)
    tmp_path = data.outputs("lifecycle")
    tmp_path.mkdir(parents=True)
    stale = tmp_path / "funnel.csv"
    stale.write_text("left by an earlier run\n")
    present.write_outputs(lc, data)
    out = pd.read_parquet(tmp_path / "lifecycle.parquet")
    assert set(out["customer_id"]) == set(data.customers.customer_id.execute())
    churn = pd.read_csv(tmp_path / "targets" / "churn_risk.csv")
    assert list(churn.columns) == lifecycle.CHURN_COLUMNS
    assert stale.exists() == data.has("leads")
    if unit != "n50_absent":  # no CLV: an empty model column and an empty churn list
        assert isinstance(lc.value, Unavailable) and isinstance(lc.churn, Unavailable)
        assert out["clv"].isna().all() and churn.empty
    if unit == "n5":
        assert "5 buyers only" in present.caveats(lc, data.params)[0]
        assert "5 buyers, at least 30 needed" in lc.value.reason
    if unit == "n50_absent":
        assert lc.funnel.values["table"] == lc.open_leads.values["table"] == "leads"
    if unit == "one_time":
        assert "0 repeat buyers" in lc.value.reason and isinstance(lc.holdout, Unavailable)


# -- which purchase model: BG/NBD vs Pareto/NBD on the holdout, and the spend assumption ----------

def test_purchase_models_compared_on_the_holdout(stores):
    _, lc = stores
    h = lc.holdout
    cmp = h.comparison.set_index("model")
    assert list(cmp.index) == ["bg_nbd", "pareto_nbd"] and cmp["converged"].all()
    n = len(h.by_frequency[h.by_frequency["model"] == "bg_nbd"])
    assert n and set(h.by_frequency["model"]) == {"bg_nbd", "pareto_nbd"}
    k = cmp["parameters"].to_numpy()
    assert cmp["bic"].to_numpy() == pytest.approx(k * np.log(cmp["n"].to_numpy()) - 2 * cmp["log_likelihood"].to_numpy())
    # both forecast the holdout total within 10%; the actual total is the customers' holdout purchases
    assert (cmp["error"].abs() < 0.10).all() and (cmp["error_ci_low"] < cmp["error"]).all()
    assert (cmp["predicted"] / cmp["actual"] - 1).to_numpy() == pytest.approx(cmp["error"].to_numpy())
    # both models' churn scores beat the recency rule; AUCs carry bootstrap intervals and n
    assert (cmp["auc_difference_ci_low"] > 0).all() and (cmp["auc_ci_low"] < cmp["auc"]).all()
    assert (cmp["ranked"] == h.ranking.n).all()
    # the choice follows the stated rule, and CLV, P(alive) and the churn list use the chosen model
    choice = lc.purchase_model
    assert choice == lifecycle.choose_model(h.comparison, "auto") and choice.reason in {"holdout_error", "near_tie_bic"}
    err = cmp["error"].abs()
    if choice.reason == "holdout_error":
        assert choice.model == err.idxmin() and err.max() - err.min() > lifecycle.NEAR_TIE
    else:
        assert err.max() - err.min() <= lifecycle.NEAR_TIE and choice.model == cmp["bic"].idxmin()
    assert lc.value.model == choice.model and type(lc.value.purchases) is lifecycle.PURCHASE_MODELS[choice.model]
    assert h.model is h.models[choice.model]


def test_the_rule_and_the_forcing_param_by_hand():
    def cmp(errors, bics, converged=(True, True)):
        return pd.DataFrame({"model": ["bg_nbd", "pareto_nbd"], "error": errors, "bic": bics, "converged": converged})

    assert lifecycle.choose_model(cmp([0.10, -0.03], [100.0, 200.0]), "auto") == lifecycle.ModelChoice(
        "pareto_nbd", "holdout_error")
    assert lifecycle.choose_model(cmp([0.03, -0.02], [100.0, 200.0]), "auto").model == "bg_nbd"  # tie: BIC
    assert lifecycle.choose_model(cmp([np.nan, np.nan], [300.0, 200.0]), "auto").reason == "bic"
    assert lifecycle.choose_model(cmp([0.10, -0.03], [100.0, 200.0]), "bg_nbd") == lifecycle.ModelChoice("bg_nbd", "forced")
    # never a model that did not converge, even when forced or better on the holdout
    failed = cmp([0.10, 0.0], [100.0, 50.0], converged=(True, False))
    assert lifecycle.choose_model(failed, "auto") == lifecycle.ModelChoice("bg_nbd", "only_converged")
    assert lifecycle.choose_model(failed, "pareto_nbd") == lifecycle.ModelChoice("bg_nbd", "only_converged", "pareto_nbd")
    assert lifecycle.default_choice("auto").model == "bg_nbd" and lifecycle.default_choice("pareto_nbd").reason == "forced"


def _forcing(data, model):
    params = data.params.model_copy(update={"lifecycle": data.params.lifecycle.model_copy(
        update={"purchase_model": model})})
    return dataclasses.replace(data, params=params)


@pytest.mark.parametrize("model", ["bg_nbd", "pareto_nbd"])
def test_forcing_the_param_changes_the_model_used(small_b2b, model):
    lc = lifecycle.analyse(_forcing(small_b2b, model))
    assert lc.purchase_model == lifecycle.ModelChoice(model, "forced")
    assert lc.value.model == model and isinstance(lc.value.purchases, lifecycle.PURCHASE_MODELS[model])
    assert lc.holdout.model is lc.holdout.models[model]
    np.testing.assert_allclose(lc.value.table["p_alive"], lc.value.purchases.probability_alive(lc.value.summary))
    assert lc.value.total.estimate.estimate == pytest.approx(lc.value.table["clv"].sum())
    assert lc.stages.current()["p_alive"].dropna().between(0, 1).all()


class _NotConverged(clv.ParetoNBDModel):
    """Pareto/NBD whose fit is flagged as degenerate."""

    def fit(self, summary):
        super().fit(summary)
        self.converged_, self.warnings_ = False, [clv.FitWarning("optimiser_failed")]
        return self


def test_a_model_that_did_not_converge_is_never_chosen(small_b2b, monkeypatch):
    monkeypatch.setitem(lifecycle.PURCHASE_MODELS, "pareto_nbd", _NotConverged)
    data = _forcing(small_b2b, "pareto_nbd")
    lc = lifecycle.analyse(data)
    assert lc.purchase_model == lifecycle.ModelChoice("bg_nbd", "only_converged", "pareto_nbd")
    assert lc.value.model == "bg_nbd"
    row = lc.holdout.comparison.set_index("model").loc["pareto_nbd"]
    assert not row["converged"] and np.isnan(row["predicted"]) and np.isnan(row["auc"])
    assert "pareto_nbd" not in set(lc.holdout.by_frequency["model"])
    caveats = present.caveats(lc, data.params)
    assert any("Pareto/NBD could not be fitted" in c for c in caveats)
    assert any("ask for Pareto/NBD" in c for c in caveats)
    shown = []
    monkeypatch.setattr(present.report, "_show", shown.append)
    present.purchase_models(lc, data.params)
    assert "Reasons given by the fit: the optimiser stopped without reaching a maximum." in "".join(shown)


def _spend_summary(dependent: bool, n: int = 3000, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.poisson(3.0, n) + 1.0
    nu = rng.gamma(3.0, 1 / 30.0, n) * (1 + x / 2 if dependent else 1)  # planted: frequent buyers spend less
    z = rng.gamma(4.0 * x, 1 / (nu * x))  # the mean of x purchases of Gamma(4, nu)
    return pd.DataFrame({"frequency": x, "recency": 10.0, "T": 20.0, "monetary_value": z})


def test_spend_frequency_correlation_finds_a_planted_dependence(stores):
    data, lc = stores
    independent = lifecycle.spend_frequency_correlation(_spend_summary(False), 30)
    dependent = lifecycle.spend_frequency_correlation(_spend_summary(True), 30)
    assert independent.ci_low < 0 < independent.ci_high and independent.n == 3000
    assert dependent.ci_high < -data.params.lifecycle.spend_correlation_warning
    warned = [present.spend_correlated(dataclasses.replace(lc, spend_correlation=r), data.params)
              for r in (independent, dependent)]
    assert warned == [False, True]
    # the demo data follow Gamma-Gamma: no warning
    assert lc.spend_correlation.ci_low < 0.1 and not present.spend_correlated(lc, data.params)
    assert isinstance(lifecycle.spend_frequency_correlation(_spend_summary(True).head(10), 30), Unavailable)


def test_gamma_gamma_that_did_not_converge_shows_its_warnings_not_a_clv(small_b2b, monkeypatch):
    planted = clv.FitWarning("boundary_infinity", {"parameter": "q", "value": 3.2e9})

    class Degenerate(clv.GammaGammaModel):
        def fit(self, summary):
            super().fit(summary)
            self.converged_, self.warnings_ = False, [planted]
            return self

    monkeypatch.setattr(lifecycle.clv, "GammaGammaModel", Degenerate)
    data = small_b2b
    summary = features.customer_summary(data.transactions, data.params.observation_end)
    value = lifecycle.customer_value(summary, data.params.lifecycle, data.params.small_sample_n)
    assert isinstance(value, Unavailable) and "Gamma-Gamma" in value.reason
    assert value.values["warnings"] == {"Gamma-Gamma": [planted]}


@pytest.mark.parametrize("language", ["en", "zh"])
def test_fit_warnings_render_from_the_catalogue(stores, language, monkeypatch):
    """The warnings of flagged fits (parameters at the boundary, nothing to fit) are shown in the
    report language: each the catalogue sentence with its values; in Chinese no English words
    but the parameter names and the numbers' exponent."""
    data, lc = stores
    rng = np.random.default_rng(5)
    same_price = pd.DataFrame({"frequency": rng.integers(1, 8, 2000).astype(float),
                               "monetary_value": 50.0 / rng.gamma(3.0, 1.0, 2000)})
    one_time = pd.DataFrame({"frequency": 0.0, "recency": 0.0, "T": [10.0, 20.0, 30.0]})
    fits = {"Gamma-Gamma": clv.GammaGammaModel().fit(same_price), "BG/NBD": clv.BetaGeoModel().fit(one_time)}
    warnings = {k: m.warnings_ for k, m in fits.items()}
    keys = {w.key for ws in warnings.values() for w in ws}
    assert {"boundary_zero", "boundary_infinity", "no_repeat_purchases"} <= keys
    degenerate = dataclasses.replace(lc, value=Unavailable("lifecycle.unavailable.degenerate", {
        "models": ", ".join(fits), "warnings": warnings}))
    i18n.set_language(language)
    worded = {k.removeprefix("lifecycle.model_warnings.") for k in i18n.catalogue(language)
              if k.startswith("lifecycle.model_warnings.")}
    assert worded == {*clv.FIT_WARNING_KEYS, "sep"}
    shown = []
    monkeypatch.setattr(present.report, "_show", shown.append)
    present.value(degenerate, data.params)
    html = re.sub(r"<[^>]+>", "", "".join(shown))
    for model, ws in warnings.items():
        note = i18n.t("lifecycle.value.fit_warnings", model=model, warnings=present._fit_warnings(ws))
        assert note in html
        for w in ws:
            assert i18n.t(f"lifecycle.model_warnings.{w.key}", **w.values) in note
            assert str(w) not in note  # the report words it, never the raw key
        if language == "zh":
            words = set(re.findall(r"[A-Za-z]+", note.replace(model, "")))
            assert words <= {"e"} | {w.values["parameter"] for w in ws if "parameter" in w.values}, words


@pytest.mark.parametrize("language", ["en", "zh"])
def test_which_model_section_renders_in_both_languages(stores, language, monkeypatch):
    data, lc = stores
    i18n.set_language(language)
    shown = []
    monkeypatch.setattr(present.report, "_show", shown.append)
    present.purchase_models(lc, data.params)
    present.value(lc, data.params)
    html = "".join(shown)
    table = present.comparison_table(lc.holdout, data.params)
    assert table.iloc[:, 0].tolist() == ["BG/NBD", "Pareto/NBD"] and len(table.columns) == 9
    assert table.iloc[:, 5].str.contains("%").all() and table.iloc[:, 6].str.match(r"^0\.\d\d \(").all()
    assert present.model_name(lc.purchase_model.model) in html.split("</table>")[-1]  # the sentence naming it
    assert not re.search(r"\bnan\b", html, re.IGNORECASE)
    if language == "zh":
        text = re.sub(r"<[^>]+>|BG/NBD|Pareto/NBD|Gamma-Gamma|BIC|AUC|CLV", "", html)
        assert not re.search(r"[A-Za-z][a-z]+(?:[ -][A-Za-z][a-z]+){2,}", text)
        assert "采用" in html
    else:
        assert "This report uses" in html
