"""The generator is deterministic and plants what parameters.json says."""

import numpy as np
import pandas as pd
from scipy import stats

from custlib import contract, demo


def test_deterministic_for_a_seed(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    demo.generate(a, customers=800, seed=7, units=("online",))
    demo.generate(b, customers=800, seed=7, units=("online",))
    for t in contract.TABLES:
        pd.testing.assert_frame_equal(pd.read_parquet(a / f"{t}.parquet"), pd.read_parquet(b / f"{t}.parquet"))


def test_a_unit_drawn_in_batches_keeps_unique_and_linked_keys(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "BATCH_CUSTOMERS", 300)
    counts = demo.generate(tmp_path, customers=700, seed=3, units=("stores",))
    tables = {t: pd.read_parquet(tmp_path / f"{t}.parquet") for t in contract.TABLES}
    assert counts["customers"] == 700 and not any(p.name.startswith(".parts") for p in tmp_path.iterdir())
    for table, key in (("customers", "customer_id"), ("transactions", "order_id"), ("leads", "lead_id"),
                       ("survey_responses", "response_id"), ("service_tickets", "ticket_id"),
                       ("campaigns", "campaign_id")):
        assert tables[table][key].is_unique, table
    known = set(tables["customers"]["customer_id"])
    for table in ("transactions", "loyalty_members", "survey_responses", "leads", "campaign_contacts",
                  "service_tickets"):
        assert set(tables[table]["customer_id"].dropna()) <= known, table
    contacts = tables["campaign_contacts"]
    assert set(contacts["campaign_id"]) == set(tables["campaigns"]["campaign_id"])
    assert not contacts.duplicated(["campaign_id", "customer_id"]).any()
    # the first batch is the same draw as a unit of that size on its own
    demo.generate(tmp_path / "alone", customers=300, seed=3, units=("stores",))
    alone = pd.read_parquet(tmp_path / "alone" / "customers.parquet")
    pd.testing.assert_frame_equal(tables["customers"].iloc[:300], alone)


def test_tables_follow_the_contract(demo_dir):
    for name, spec in contract.TABLES.items():
        cols = list(pd.read_parquet(demo_dir / f"{name}.parquet").columns)
        assert cols == [c for c in spec.column_names if c in cols]
        assert set(spec.required_columns) <= set(cols)


def test_latent_rates_have_the_planted_marginals(customer_truth, truth):
    for unit, spec in truth["units"].items():
        ct = customer_truth[customer_truth.business_unit == unit]
        g = spec["bgnbd"]
        ks_rate = stats.kstest(ct.purchase_rate, stats.gamma(g["r"], scale=1 / g["alpha"]).cdf)
        ks_drop = stats.kstest(ct.dropout_prob, stats.beta(g["a"], g["b"]).cdf)
        assert ks_rate.statistic < 0.01 and ks_drop.statistic < 0.01
        # archetypes differ in behaviour, overlapping rather than separated, and keep rate,
        # dropout and order value independent (the 2 x 2 design)
        for latent in ("purchase_rate", "mean_spend"):
            by = ct.groupby("archetype")[latent].median()
            assert by.max() / by.min() > 1.5
        for a, b in (("purchase_rate", "dropout_prob"), ("purchase_rate", "spend_rate"),
                     ("dropout_prob", "spend_rate")):
            assert abs(ct[a].corr(ct[b], method="spearman")) < 0.05
        q = ct.groupby("archetype").purchase_rate.quantile([0.05, 0.95]).unstack()
        assert q[0.95].min() > q[0.05].max()  # every pair of archetypes overlaps


def test_heavier_buyers_join_the_programme_more_often(customer_truth):
    ct = customer_truth[customer_truth.first_purchase_date.notna()]
    joined = ct.loyalty_tier.notna()
    assert ct.loc[joined, "purchase_rate"].median() > 1.3 * ct.loc[~joined, "purchase_rate"].median()


def test_personal_fields_are_fake_but_present(demo_dir):
    c = pd.read_parquet(demo_dir / "customers.parquet")
    assert c.email.str.endswith("@example.com").all()
    assert c.phone.str.fullmatch(r"1\d{10}").all()
    assert c.customer_id.is_unique and np.all(c.name.str.len() > 3)
