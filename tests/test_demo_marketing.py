"""What the demo generator plants for marketing and service, checked on the generated tables.

Campaigns: randomised ones keep their planted holdout share and their naive treatment - holdout
difference in 30-day conversion lands within 3 standard errors of the planted uplift; the
self-selected campaign's naive gap misses its planted effect by far. Service: tickets are
consistent in time, a slow first response makes customers lapse more (a Cox model recovers the
planted hazard ratio) and lowers later NPS. Orders show the archetypes' category preferences.
"""

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter

from custlib import contract, demo

UNITS = tuple(demo.UNITS)
RANDOMISED = [(u, demo.campaign_id(u, c)) for u in UNITS for c in demo.UNITS[u].campaigns if c.holdout is not None]
SELF_SELECTED = [(u, demo.campaign_id(u, c)) for u in UNITS for c in demo.UNITS[u].campaigns if c.holdout is None]
WINDOW = pd.Timedelta(days=demo.CONVERSION_WINDOW_DAYS)


@pytest.fixture(scope="module")
def tables(demo_dir) -> dict[str, pd.DataFrame]:
    names = ("customers", "transactions", "campaigns", "campaign_contacts", "service_tickets", "survey_responses")
    out = {t: pd.read_parquet(demo_dir / f"{t}.parquet") for t in names}
    for table, column in (("transactions", "order_date"), ("campaigns", "start_date"),
                          ("campaign_contacts", "sent_date"), ("survey_responses", "response_date")):
        out[table][column] = pd.to_datetime(out[table][column])
    out["orders"] = out["transactions"].loc[out["transactions"]["amount"] > 0, ["customer_id", "order_date", "amount"]]
    return out


def _converted(who: pd.DataFrame, orders: pd.DataFrame) -> pd.Series:
    """Per row of ``who`` (customer_id, sent_date): whether the customer ordered 1-30 days after sent_date."""
    m = who[["customer_id", "sent_date"]].reset_index().merge(orders, on="customer_id")
    inside = (m["order_date"] > m["sent_date"]) & (m["order_date"] <= m["sent_date"] + WINDOW)
    return pd.Series(who.index.isin(m.loc[inside, "index"]), index=who.index)


def _difference(a: pd.Series, b: pd.Series) -> tuple[float, float]:
    """Difference in means of two samples and its standard error."""
    return a.mean() - b.mean(), float(np.sqrt(a.var() / len(a) + b.var() / len(b)))


def test_new_tables_follow_the_contract_and_hold_no_personal_field(tables):
    for name in ("campaigns", "campaign_contacts", "service_tickets"):
        df = tables[name]
        assert list(df.columns) == contract.TABLES[name].column_names, name
        assert set(df["business_unit"]) == set(UNITS), name
        assert not set(contract.PERSONAL_FIELDS) & set(df.columns), name
    assert tables["campaigns"]["campaign_id"].is_unique
    assert not tables["campaign_contacts"].duplicated(["campaign_id", "customer_id"]).any()


@pytest.mark.parametrize("unit,campaign", RANDOMISED)
def test_randomised_campaigns_keep_their_planted_holdout_share(tables, truth, unit, campaign):
    c = tables["campaign_contacts"].query("campaign_id == @campaign")
    planted = truth["units"][unit]["campaign_effects"][campaign]["planted_holdout_share"]
    assert set(c["group"]) == {"treatment", "holdout"}
    share = (c["group"] == "holdout").mean()
    assert abs(share - planted) < 3 * np.sqrt(planted * (1 - planted) / len(c)), share
    holdout = c[c["group"] == "holdout"]
    assert holdout["opened"].isna().all() and holdout["clicked"].isna().all()  # never sent


@pytest.mark.parametrize("unit,campaign", RANDOMISED)
def test_naive_difference_in_conversion_is_within_3_se_of_the_planted_uplift(tables, truth, unit, campaign):
    c = tables["campaign_contacts"].query("campaign_id == @campaign")
    converted = _converted(c, tables["orders"])
    diff, se = _difference(converted[c["group"] == "treatment"], converted[c["group"] == "holdout"])
    planted = truth["units"][unit]["campaign_effects"][campaign]["conversion_uplift"]
    assert abs(diff - planted) < 3 * se, (diff, se, planted)
    assert se < 0.03  # informative, not just wide


def test_every_unit_has_a_campaign_without_effect_and_uplifts_that_differ_by_segment(truth):
    for unit in UNITS:
        effects = truth["units"][unit]["campaign_effects"]
        randomised = [e for e in effects.values() if e["randomised"]]
        assert sum(e["conversion_uplift"] == 0 for e in randomised) == 1
        for e in randomised:
            if e["conversion_uplift"]:
                tiers = {t: v["conversion_uplift"] for t, v in e["by_value_tier"].items()}
                assert e["largest_uplift_segment"] == max(tiers, key=tiers.get)
                assert max(tiers.values()) > 1.5 * sorted(tiers.values())[-2], tiers  # a clear first


@pytest.mark.parametrize("unit,campaign", SELF_SELECTED)
def test_self_selected_campaign_naive_gap_is_far_from_its_planted_effect(tables, truth, unit, campaign):
    c = tables["campaign_contacts"].query("campaign_id == @campaign")
    assert c["group"].isna().all()
    start = tables["campaigns"].set_index("campaign_id").loc[campaign, "start_date"]
    first = tables["orders"].groupby("customer_id")["order_date"].min()
    unit_customers = tables["customers"].loc[tables["customers"]["business_unit"] == unit, "customer_id"]
    eligible = first[first.index.isin(unit_customers) & (first <= start - WINDOW)].index
    others = pd.DataFrame({"customer_id": eligible[~eligible.isin(c["customer_id"])], "sent_date": start})
    assert set(c["customer_id"]) <= set(eligible)
    gap, se = _difference(_converted(c, tables["orders"]), _converted(others, tables["orders"]))
    planted = truth["units"][unit]["campaign_effects"][campaign]["conversion_uplift"]
    assert planted > 0 and gap - planted > 3 * se, (gap, se, planted)


def test_campaign_extra_orders_and_service_lapses_change_few_orders(truth, demo_dir):
    contacts = pd.read_parquet(demo_dir / "truth" / "campaign_truth.parquet")
    for unit in UNITS:
        realised = truth["units"][unit]["realised"]
        assert 0 < realised["campaign_extra_order_share"] < 0.02
        assert 0 < realised["orders_removed_share"] < 0.03
        assert realised["campaign_extra_orders"] == contacts.loc[contacts["business_unit"] == unit, "extra_order"].sum()


def test_customers_who_stop_because_of_service_buy_nothing_afterwards(tables, customer_truth):
    stopped = customer_truth.dropna(subset=["service_lapse_date"]).set_index("customer_id")
    assert len(stopped) > 100
    last = tables["orders"].groupby("customer_id")["order_date"].max().reindex(stopped.index)
    assert (last <= stopped["service_lapse_date"]).all()
    assert (stopped["first_ticket_date"] <= stopped["service_lapse_date"]).all()
    assert (stopped["service_hazard_ratio"] > 1).all()


def test_tickets_are_consistent_in_time(tables, truth):
    t = tables["service_tickets"]
    answered = t["first_response_at"].notna()
    assert (t.loc[answered, "first_response_at"] >= t.loc[answered, "opened_at"]).all()
    done = t["resolved_at"].notna()
    assert (t.loc[done, "resolved_at"] >= t.loc[done, "first_response_at"]).all()
    assert (t["resolved"] == done.astype(int)).all()
    assert not (t.loc[~answered, "resolved"]).any()
    assert t["opened_at"].dt.hour.between(8, 22).all() and t["opened_at"].dt.hour.nunique() > 10
    assert 0.005 < (~answered).mean() < 0.05
    hours = (t["first_response_at"] - t["opened_at"]).dt.total_seconds() / 3600
    median = hours.groupby([t["business_unit"], t["channel"]]).median()
    for unit in UNITS:
        planted = truth["units"][unit]["service"]["response_hours"]
        for channel, (m, _) in planted.items():
            assert median[unit, channel] == pytest.approx(m, rel=0.25, abs=0.05), (unit, channel)


def _first_ticket_lapses(tickets: pd.DataFrame, transactions: pd.DataFrame, spec: dict,
                         end: pd.Timestamp) -> pd.DataFrame:
    """One row per customer's first ticket opened on or before end - LAPSE_DAYS: ``delay``, days
    beyond the SLA to the first response (capped; never answered: the cap); ``days`` from the
    ticket day to lapse (the first purchase day, from the last one on or before the ticket on,
    followed by more than LAPSE_DAYS days without a purchase) or to end - LAPSE_DAYS
    (``lapsed`` 0); ``tenure_years`` since the first order; ``log_value``, log(1 + net revenue of
    the 365 days up to the ticket)."""
    lapse = pd.Timedelta(days=demo.LAPSE_DAYS)
    first = tickets.sort_values(["opened_at", "ticket_id"]).drop_duplicates("customer_id")
    hours = (first["first_response_at"] - first["opened_at"]).dt.total_seconds() / 3600
    delay = np.clip(hours - spec["sla_hours"], 0, spec["cap_hours"]).fillna(spec["cap_hours"]) / 24
    t = pd.DataFrame({"customer_id": first["customer_id"], "day": first["opened_at"].dt.normalize(),
                      "delay": delay})
    t = t[t["day"] <= end - lapse]
    days = (transactions.loc[transactions["amount"] > 0, ["customer_id", "order_date"]]
            .drop_duplicates().sort_values(["customer_id", "order_date"]))
    following = days.groupby("customer_id")["order_date"].shift(-1)
    days["starts_lapse"] = np.where(following.isna(), end - days["order_date"] > lapse,
                                    following - days["order_date"] > lapse)
    d = days.merge(t, on="customer_id")
    anchor = d[d["order_date"] <= d["day"]].groupby("customer_id")["order_date"].max()
    d = d[d["order_date"] >= d["customer_id"].map(anchor)]
    lapse_date = d[d["starts_lapse"]].groupby("customer_id")["order_date"].min()
    t["lapsed"] = t["customer_id"].map(lapse_date).notna().astype(int)
    stop = t["customer_id"].map(lapse_date).fillna(end - lapse)
    t["days"] = (stop - t["day"]).dt.days.clip(lower=0).astype(float)
    t["tenure_years"] = (t["day"] - t["customer_id"].map(days.groupby("customer_id")["order_date"].min())).dt.days / 365.25
    tx = transactions.merge(t[["customer_id", "day"]], on="customer_id")
    year = tx[(tx["order_date"] <= tx["day"]) & (tx["order_date"] > tx["day"] - pd.Timedelta(days=365))]
    t["log_value"] = np.log1p(t["customer_id"].map(year.groupby("customer_id")["amount"].sum()).fillna(0).clip(lower=0))
    return t


@pytest.fixture(scope="module")
def lapses(tables, truth) -> dict[str, pd.DataFrame]:
    end = pd.Timestamp(truth["observation_end"])
    return {u: _first_ticket_lapses(tables["service_tickets"].query("business_unit == @u"),
                                    tables["transactions"].query("business_unit == @u"),
                                    truth["units"][u]["service"], end) for u in UNITS}


@pytest.mark.parametrize("unit", UNITS)
def test_customers_with_a_slow_first_response_lapse_more(lapses, unit):
    t = lapses[unit]
    slow = t["delay"] > 0
    diff, se = _difference(t.loc[slow, "lapsed"], t.loc[~slow, "lapsed"])
    assert slow.sum() > 100 and diff > 3 * se, (diff, se)


@pytest.mark.parametrize("unit", UNITS)
def test_cox_model_recovers_the_planted_hazard_ratio_per_day_of_delay(lapses, truth, unit):
    """Controlling for value and tenure, as the satisfaction report's lapse model does."""
    cox = CoxPHFitter().fit(lapses[unit][["delay", "tenure_years", "log_value", "days", "lapsed"]], "days", "lapsed")
    low, high = np.exp(cox.confidence_intervals_.loc["delay"])
    planted = truth["units"][unit]["service"]["lapse_hazard_ratio_per_day"]
    assert 1 < low <= planted <= high, (low, high)


@pytest.mark.parametrize("unit", UNITS)
def test_later_nps_and_csat_fall_with_the_delay_of_the_first_response(tables, lapses, truth, unit):
    first = tables["service_tickets"].query("business_unit == @unit").sort_values(["opened_at", "ticket_id"])
    first = first.drop_duplicates("customer_id")
    s = truth["units"][unit]["service"]
    hours = (first["first_response_at"] - first["opened_at"]).dt.total_seconds() / 3600
    first = first.assign(delay=np.clip(hours - s["sla_hours"], 0, s["cap_hours"]).fillna(s["cap_hours"]) / 24)
    r = tables["survey_responses"].merge(first[["customer_id", "opened_at", "delay"]], on="customer_id")
    r = r[r["response_date"] > r["opened_at"].dt.normalize()]
    for score, planted in (("nps", s["nps_per_day"]), ("csat", s["csat_per_day"])):
        slope, intercept = np.polyfit(r["delay"], r[score], 1)
        resid = r[score] - intercept - slope * r["delay"]
        se = np.sqrt((resid ** 2).sum() / (len(r) - 2) / ((r["delay"] - r["delay"].mean()) ** 2).sum())
        assert slope < -3 * se and abs(slope + planted) < 0.3 * planted + 3 * se, (score, slope, se)


def test_orders_show_the_archetypes_category_preferences(tables, customer_truth):
    """Within its price tier an order is in the archetype's preferred category with probability
    strength + (1 - strength) / 2 (two categories per tier)."""
    tx = tables["transactions"].merge(customer_truth[["customer_id", "archetype"]], on="customer_id")
    for unit in UNITS:
        spec = demo.UNITS[unit]
        expected = spec.category_preference_strength + (1 - spec.category_preference_strength) / 2
        u = tx[tx["business_unit"] == unit]
        for archetype, preferred in spec.category_preference.items():
            a = u[u["archetype"] == archetype]
            for k, category in enumerate(preferred):
                in_tier = a[a["product_category"].map(spec.categories) == demo.TIERS[k]]
                share = (in_tier["product_category"] == category).mean()
                assert abs(share - expected) < 4 * np.sqrt(expected * (1 - expected) / len(in_tier)) + 0.01, \
                    (unit, archetype, category, share)
