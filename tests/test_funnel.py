"""Sales funnel: a hand-computed example, its presentation and the planted conversion rates of
the demo data."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from custlib import funnel
from custlib.params import UnitParams
from custlib.present import i18n
from custlib.present import lifecycle as present
from custlib.stats import wilson_interval

PARAMS = UnitParams(id="u", display_name="U", data_source="data/u", observation_end=date(2025, 1, 31))


@pytest.fixture(autouse=True)
def english():
    i18n.set_language("en")
    yield
    i18n.set_language("en")

UNITS = ("online", "stores", "b2b")


def test_funnel_by_hand():
    d = pd.Timestamp
    rows = [  # source, created, qualified, opportunity, won, lost
        ("web", d("2025-01-01"), d("2025-01-03"), d("2025-01-10"), d("2025-01-20"), pd.NaT),  # won
        ("web", d("2025-01-01"), d("2025-01-05"), pd.NaT, pd.NaT, d("2025-01-09")),           # lost at qualified
        ("web", d("2025-01-01"), pd.NaT, pd.NaT, pd.NaT, d("2025-01-02")),                    # lost at lead
        ("web", d("2025-01-01"), pd.NaT, pd.NaT, pd.NaT, d("2025-01-05")),                    # lost at lead
        ("web", d("2025-01-25"), pd.NaT, pd.NaT, pd.NaT, pd.NaT),                             # open at lead
        ("fair", d("2025-01-01"), d("2025-01-02"), d("2025-01-04"), pd.NaT, pd.NaT),          # open at opportunity
        ("fair", d("2025-01-01"), d("2025-01-07"), d("2025-01-08"), pd.NaT, d("2025-02-15")), # lost after the end
    ]
    leads = pd.DataFrame(rows, columns=["source", "created_date", "qualified_date", "opportunity_date",
                                        "won_date", "lost_date"])
    f = funnel.sales_funnel(leads, date(2025, 1, 31))
    c = f.conversion.set_index(["source", "from_stage"])
    web_lead = c.loc[("web", "lead")]
    assert (web_lead["reached"], web_lead["advanced"], web_lead["lost"], web_lead["open"]) == (5, 2, 2, 1)
    assert web_lead["conversion"] == pytest.approx(0.5)
    lo, hi = wilson_interval(2, 4)
    assert (web_lead["ci_low"], web_lead["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    # days to a decision at 'lead' for web: 1, 2, 4, 4 decided, 6 censored:
    # S(1) = 4/5, S(2) = 3/5, S(4) = 3/5 * 1/3 -> Kaplan-Meier median 4
    assert web_lead["median_days_in_stage"] == 4
    fair_opp = c.loc[("fair", "opportunity")]
    assert (fair_opp["advanced"], fair_opp["lost"], fair_opp["open"]) == (0, 0, 2)  # both still open
    assert np.isnan(fair_opp["conversion"])
    everyone = c.loc[("all sources", "qualified")]  # qualified -> opportunity: 3 advanced, 1 lost
    assert (everyone["advanced"], everyone["lost"]) == (3, 1)
    b = f.bottleneck
    assert (b["from_stage"], b["to_stage"]) == ("lead", "qualified")  # 4/6 vs 3/4 vs 1/1
    table = present.funnel_table(f, PARAMS)
    assert table.iloc[:, 0].tolist() == ["Lead → Qualified", "Qualified → Opportunity", "Opportunity → Won"]
    lo, hi = wilson_interval(4, 6)  # all sources: 4 of 6 decided leads advanced
    assert table.iloc[0, -2] == f"67% ({100 * lo:.0f}%–{100 * hi:.0f}%)"
    i18n.set_language("zh")  # the client's terms from params
    assert present.funnel_table(f, PARAMS).iloc[2, 0] == "商机 → 成交"


def test_funnel_without_decided_leads_names_no_bottleneck():
    leads = pd.DataFrame({"source": ["web", "fair"],
                          "created_date": pd.to_datetime(["2025-01-05", "2025-01-09"]),
                          **{c: pd.NaT for c in ("qualified_date", "opportunity_date", "won_date", "lost_date")}})
    f = funnel.sales_funnel(leads, date(2025, 1, 31))
    assert f.bottleneck is None
    assert (present.funnel_table(f, PARAMS).iloc[:, -2] == "–").all()


def test_planted_conversion_rates_recovered(demo_unit, truth):
    """Every planted rate (unit x source x step, 30 in all) lies in its 99.9% Wilson interval
    (a chance miss among 30 has probability ~3%), and at least 80% lie in their 95% intervals
    (seven or more misses of 30 have probability 0.3% when the estimator is right)."""
    inside95, total = 0, 0
    for unit in UNITS:
        data = demo_unit(unit)
        f = funnel.sales_funnel(data.leads.execute(), data.params.observation_end)
        c = f.conversion[f.conversion["source"] != funnel.ALL_SOURCES]
        planted = truth["units"][unit]["funnel"]
        assert set(c["source"]) == set(planted)
        for _, row in c.iterrows():
            rate = planted[row["source"]][row["to_stage"]]
            lo, hi = wilson_interval(row["advanced"], row["n"], alpha=0.001)
            assert lo <= rate <= hi, (unit, row["source"], row["to_stage"], row["conversion"], rate)
            inside95 += row["ci_low"] <= rate <= row["ci_high"]
            total += 1
    assert total == 30
    assert inside95 / total >= 0.8
