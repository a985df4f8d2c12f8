"""Purchases at discrete occasions: the occasion summary by hand and on a planted BG/BB process,
and the lifecycle analysis of a unit whose customers buy once a year or not at all (BG/BB in the
model comparison, chosen or forced, its CLV, P(alive) and churn list, and the report), while the
default, continuous unit keeps its comparison."""

from __future__ import annotations

import dataclasses
import re
from datetime import date

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from custlib import clv, demo, features, lifecycle, plots, sources
from custlib.present import i18n
from custlib.present import lifecycle as present

PLANTED = {"alpha": 1.4, "beta": 0.9, "gamma": 0.6, "delta": 3.5}  # BG/BB, per year
SPEND = {"p": 6.0, "q": 4.0, "v": 600.0}  # Gamma-Gamma spend per purchase (currency)
LAST_YEAR = 2025


@pytest.fixture(autouse=True)
def english():
    i18n.set_language("en")
    yield
    i18n.set_language("en")


def _tx(rows):
    df = pd.DataFrame(rows, columns=["customer_id", "order_date", "amount"])
    df["order_id"] = [f"O{i:03d}" for i in range(len(df))]
    return df


def test_occasion_summary_by_hand():
    """Calendar occasions, the occasion still running at the calibration end (neither counted nor
    its purchases), holdout occasions per customer, returns left out, zero-value orders kept."""
    tx = _tx([("A", "2020-03-01", 10.0), ("A", "2020-07-01", 5.0),   # two purchases, one occasion
              ("A", "2022-05-05", 3.0), ("A", "2023-12-31", 4.0),
              ("A", "2024-02-01", 7.0), ("A", "2025-06-01", 7.0),
              ("B", "2021-01-01", 1.0), ("B", "2024-01-10", -1.0),   # a return is not a purchase
              ("C", "2023-06-01", 0.0),                               # a free order is
              ("D", "2024-02-02", 9.0), ("D", "2024-03-01", 9.0),   # first purchase in the running year
              ("D", "2025-01-05", 9.0),
              ("E", "2024-05-01", 5.0)])                             # after the calibration end
    s = features.occasion_summary(tx, date(2025, 12, 31), "yearly", calibration_end=date(2024, 3, 31))
    assert list(s.index) == ["A", "B", "C", "D"]
    assert s["first_occasion"].dt.year.tolist() == [2020, 2021, 2023, 2024]
    # calibration: the whole years up to 2023 (2024 is still running on 2024-03-31)
    assert s["frequency"].tolist() == [2, 0, 0, 0]
    assert s["recency"].tolist() == [3, 0, 0, 0]
    assert s["n_periods"].tolist() == [3, 2, 0, 0]
    # holdout: 2024 and 2025, for D only 2025 (2024 is its first purchase's year)
    assert s["n_holdout"].tolist() == [2, 2, 2, 1]
    assert s["frequency_holdout"].tolist() == [2, 0, 0, 1]
    assert (s.dtypes[["frequency", "recency", "n_periods", "frequency_holdout", "n_holdout"]] == "int64").all()

    q = features.occasion_summary(tx, date(2025, 12, 31), "quarterly")
    assert q.loc["A", ["frequency", "recency", "n_periods"]].tolist() == [5, 21, 23]  # 2020Q1 .. 2025Q2; 2025Q4
    assert q["first_occasion"].loc["D"] == pd.Timestamp("2024-01-01")
    m = features.occasion_summary(tx, date(2024, 2, 15), "monthly")  # February 2024 still running
    assert m.loc["A", ["frequency", "recency", "n_periods"]].tolist() == [3, 45, 46]  # 2020-03 .. 2024-01
    assert m.loc["D", ["frequency", "recency", "n_periods"]].tolist() == [0, 0, 0]
    assert features.last_whole_occasion(date(2025, 12, 31), "yearly") == 2025
    assert features.last_whole_occasion(date(2025, 12, 30), "yearly") == 2024


def _simulate(customer_ids, first_years, rng, params=PLANTED):
    """Yearly BG/BB purchases: a first purchase on a random day of its year, then each year to
    LAST_YEAR the customer may die first (theta) and, alive, buys once on a random day (p);
    spend per purchase Gamma-Gamma. Returns the transactions and the true occasion summary."""
    n = len(customer_ids)
    p = rng.beta(params["alpha"], params["beta"], n)
    theta = rng.beta(params["gamma"], params["delta"], n)
    nu = rng.gamma(SPEND["q"], 1 / SPEND["v"], n)
    years = np.arange(first_years.min(), LAST_YEAR + 1)
    alive = np.ones(n, bool)
    bought = np.zeros((n, len(years)), bool)
    for j, year in enumerate(years):
        later = year > first_years
        alive &= ~later | (rng.random(n) >= theta)
        bought[:, j] = (year == first_years) | (later & alive & (rng.random(n) < p))
    who, col = np.nonzero(bought)
    start = pd.to_datetime(pd.Series(years[col]).astype(str) + "-01-01")
    day = start + pd.to_timedelta(rng.integers(0, 365, len(who)), unit="D")
    tx = pd.DataFrame({"customer_id": np.asarray(customer_ids)[who], "order_date": day.dt.date.to_numpy(),
                       "amount": rng.gamma(SPEND["p"], 1 / nu[who]).round(2)})
    repeat = bought & (years[None, :] > first_years[:, None])
    last = np.where(repeat.any(axis=1), years[len(years) - 1 - np.argmax(repeat[:, ::-1], axis=1)], first_years)
    truth = pd.DataFrame({"frequency": repeat.sum(axis=1), "recency": last - first_years,
                          "n_periods": LAST_YEAR - first_years}, index=pd.Index(customer_ids, name="customer_id"))
    return tx, truth


def test_occasion_summary_and_fit_recover_a_planted_bgbb_process():
    """4,000 customers buying at yearly occasions for up to 8 years: the engine's summary is the
    simulated one, and the BG/BB fit on it finds the planted parameters within 3 standard errors."""
    rng = np.random.default_rng(2024)
    ids = [f"C{i:05d}" for i in range(4000)]
    tx, truth = _simulate(ids, rng.integers(2018, 2023, len(ids)), rng)
    tx["order_id"] = [f"O{i:06d}" for i in range(len(tx))]
    summary = features.occasion_summary(tx, date(LAST_YEAR, 12, 31), "yearly")
    pd.testing.assert_frame_equal(summary[["frequency", "recency", "n_periods"]], truth, check_dtype=False)
    model = clv.BetaGeoBetaBinomModel().fit(summary)
    assert model.converged_ and model.n_customers_ == 4000
    z = (model.params_ - pd.Series(PLANTED)) / model.standard_errors_
    assert (z.abs() < 3).all(), pd.DataFrame({"planted": PLANTED, "estimate": model.params_, "z": z})
    # the fit on the customers' rows is the fit on their distinct histories with weights
    weighted = summary.groupby(["frequency", "recency", "n_periods"]).size().rename("weights").reset_index()
    np.testing.assert_allclose(clv.BetaGeoBetaBinomModel().fit(weighted).params_, model.params_, rtol=1e-6)


def write_yearly_unit(out, customers: int = 2500, seed: int = 17):
    """A b2b unit (customers and transactions only) whose customers follow the planted yearly
    BG/BB process: first purchases 2018-2023, observed to 2025; returns its data folder."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"B2{i:07d}" for i in range(customers)])
    tx, _ = _simulate(ids, rng.integers(2018, 2024, customers), rng)
    tx = tx.sort_values(["order_date", "customer_id"], ignore_index=True)
    tx = tx.assign(order_id=[f"B2-{i:09d}" for i in range(len(tx))], business_unit="b2b", discount=0.0,
                   quantity=1, channel="portal", product_category="consumables")
    first = tx.groupby("customer_id")["order_date"].min()
    people = pd.DataFrame({"customer_id": ids, "business_unit": "b2b",
                           "signup_date": pd.to_datetime(first.reindex(ids).to_numpy()).astype("datetime64[ms]"),
                           "customer_type": "enterprise", "region": "East", "city": "Shanghai",
                           "age": pd.array([None] * customers, dtype="Int64"), "gender": None,
                           "income_band": None, "interests": None,
                           "acquisition_channel": rng.choice(["trade_show", "website_form"], customers)})
    people.to_parquet(out / "customers.parquet", index=False)
    tx[["order_id", "customer_id", "business_unit", "order_date", "amount", "discount", "quantity", "channel",
        "product_category"]].to_parquet(out / "transactions.parquet", index=False)
    return out


@pytest.fixture(scope="module")
def yearly_unit(tmp_path_factory):
    """:func:`write_yearly_unit` with purchases at yearly occasions, a holdout of 104 weeks (the
    years 2024 and 2025) and customers lapsed after two silent years (one is normal)."""
    out = write_yearly_unit(tmp_path_factory.mktemp("yearly_unit"))
    data = sources.load_unit("b2b", ROOT, run_date="2026-01-15", data_source=out, check=False)
    return _with(data, purchase_occasions="yearly", holdout_weeks=104, lapsed_after_days=730)


def _with(data, **changes):
    params = data.params.model_copy(update={"lifecycle": data.params.lifecycle.model_copy(update=changes)})
    return dataclasses.replace(data, params=params)


@pytest.fixture(scope="module")
def yearly(yearly_unit):
    return yearly_unit, lifecycle.analyse(yearly_unit)


def test_bgbb_joins_the_comparison_on_occasions_and_is_chosen(yearly):
    """On the planted unit BG/BB forecasts the holdout years within chance and the rule chooses
    it; BG/NBD and Pareto/NBD, on the purchase days of once-a-year buyers, are compared alongside
    (their fits may be degenerate: then there is no purchase-day tracking chart)."""
    data, lc = yearly
    h = lc.holdout
    cmp = h.comparison.set_index("model")
    assert list(cmp.index) == ["bg_nbd", "pareto_nbd", "bg_bb"]
    assert cmp["counts"].tolist() == ["purchase_days", "purchase_days", "occasions"]
    bb = cmp.loc["bg_bb"]
    assert bb["converged"] and bb["parameters"] == 4
    assert bb["bic"] == pytest.approx(4 * np.log(bb["n"]) - 2 * bb["log_likelihood"])
    # its actual: the calibration customers' years with a purchase in 2024-2025
    end, cal_end = data.params.observation_end, h.calibration_end
    occasions = features.occasion_summary(data.transactions, end, "yearly", calibration_end=cal_end)
    assert cal_end == date(2024, 1, 3) and occasions["n_holdout"].max() == 2
    assert bb["actual"] == occasions["frequency_holdout"].sum() and bb["n"] == len(occasions)
    fitted = h.models["bg_bb"]
    assert bb["predicted"] == pytest.approx(fitted.expected_purchases(occasions["n_holdout"], occasions).sum())
    assert abs(bb["error"]) < 3 * bb["error_se"] and bb["error_ci_low"] < bb["error"] < bb["error_ci_high"]
    assert "bg_bb" in set(h.ranking.table["score"]) and bb["ranked"] == h.ranking.n
    assert bb["auc_difference_ci_low"] > 0  # P(no purchase) ranks better than the weeks since the last purchase
    buckets = h.by_frequency[h.by_frequency["model"] == "bg_bb"]
    assert buckets["customers"].sum() == len(occasions)
    assert (buckets["actual"] * buckets["customers"]).sum() == pytest.approx(bb["actual"])
    # the rule, unchanged, chooses BG/BB; CLV, P(alive) and churn list use it
    assert lc.purchase_model == lifecycle.choose_model(h.comparison, "auto")
    assert lc.purchase_model.model == "bg_bb" and lc.purchase_model.reason in {"holdout_error", "only_converged"}
    days = cmp[cmp["counts"] == "purchase_days"]
    assert (h.tracking_model is None) == (not days["converged"].any())
    assert (h.tracking is None) == (h.tracking_model is None)
    _check_bgbb_value(data, lc, "yearly")


def test_a_near_tie_with_bgbb_is_decided_by_the_holdout_error_not_by_bic():
    cmp = pd.DataFrame({"model": ["bg_nbd", "pareto_nbd", "bg_bb"],
                        "counts": ["purchase_days", "purchase_days", "occasions"],
                        "error": [0.030, -0.100, 0.015], "bic": [900.0, 950.0, 100.0], "converged": True})
    assert lifecycle.choose_model(cmp, "auto") == lifecycle.ModelChoice("bg_bb", "holdout_error")
    days_tie = cmp.assign(error=[0.030, -0.035, 0.045], bic=[900.0, 850.0, 100.0])
    assert lifecycle.choose_model(days_tie, "auto") == lifecycle.ModelChoice("pareto_nbd", "near_tie_bic")
    no_holdout = cmp.assign(error=np.nan)
    assert lifecycle.choose_model(no_holdout, "auto") == lifecycle.ModelChoice("bg_nbd", "bic")
    unchecked = cmp.assign(error=[0.05, -0.10, np.nan], bic=[900.0, 950.0, 100.0])  # no whole holdout occasion
    assert lifecycle.choose_model(unchecked, "auto") == lifecycle.ModelChoice("bg_nbd", "holdout_error")
    assert lifecycle.choose_model(cmp.assign(converged=[True, True, False]), "bg_bb") == lifecycle.ModelChoice(
        "bg_nbd", "holdout_error", "bg_bb")


def _check_bgbb_value(data, lc, occasion):
    """CLV, P(alive), churn list and stages of a unit valued with BG/BB, against the occasion
    summary at the observation end and the closed forms."""
    r, end = data.params.lifecycle, data.params.observation_end
    value = lc.value
    assert value.model == "bg_bb" and isinstance(value.purchases, clv.BetaGeoBetaBinomModel)
    occasions = features.occasion_summary(data.transactions, end, occasion)
    weekly = features.customer_summary(data.transactions, end)
    assert list(value.table.index) == list(occasions.index) == list(weekly.index)
    np.testing.assert_allclose(value.table["p_alive"], value.purchases.probability_alive(occasions), rtol=1e-12)
    # month i of the horizon brings the occasions that end in it, discounted at i months
    months = np.arange(1, r.clv_horizon_months + 1)
    whole = np.floor(months * clv.DAYS_PER_MONTH / lifecycle.occasion_days(occasion) + 1e-9)
    expected = np.array([value.purchases.expected_transactions(k, occasions) for k in np.r_[0, whole]])
    discount = (1 + clv.monthly_discount(r.annual_discount_rate)) ** months
    per_purchase = (np.diff(expected, axis=0) / discount[:, None]).sum(axis=0)
    spend = value.spend.expected_spend(weekly).to_numpy()
    np.testing.assert_allclose(value.table["clv"], per_purchase * spend, rtol=1e-9)
    if occasion == "yearly":  # 12 months: the next year, discounted at the annual rate
        np.testing.assert_allclose(value.table["clv"], expected[-1] * spend / (1 + r.annual_discount_rate), rtol=1e-9)
    np.testing.assert_allclose(value.table["expected_purchases"], expected[-1], rtol=1e-12)
    window = lifecycle.churn_window_occasions(r.holdout_weeks, occasion)
    np.testing.assert_allclose(value.table["p_no_purchase"], value.purchases.probability_no_purchase(window, occasions))
    assert value.total.estimate.estimate == pytest.approx(value.table["clv"].sum(), rel=1e-12)
    assert value.total.estimate.ci_low < value.total.estimate.estimate < value.total.estimate.ci_high
    # the at-risk rule at every snapshot uses BG/BB on the occasions up to it; at the end, the same P(alive)
    now = lc.stages.current()
    buyers = now["purchase_days"] > 0
    np.testing.assert_allclose(now.loc[buyers, "p_alive"], value.table["p_alive"].reindex(now.index[buyers]),
                               rtol=1e-12)
    churn = lc.churn.set_index("customer_id")
    np.testing.assert_allclose(churn["p_alive"], value.table.loc[churn.index, "p_alive"])
    assert lc.stage_value["estimate"].sum() == pytest.approx(value.total.estimate.estimate)


def test_forced_bgbb_keeps_the_tracking_chart_on_a_purchase_day_model(small_b2b_continuous, monkeypatch):
    """A unit of daily purchases declared monthly, BG/BB forced: CLV, P(alive) and the churn
    list use BG/BB on months with a purchase; the tracking chart stays on the purchase-day model
    the rule prefers, and the report says so."""
    data = _with(small_b2b_continuous, purchase_occasions="monthly", purchase_model="bg_bb")
    lc = lifecycle.analyse(data)
    h = lc.holdout
    assert lc.purchase_model == lifecycle.ModelChoice("bg_bb", "forced") and h.model is h.models["bg_bb"]
    days = h.comparison[h.comparison["counts"] == "purchase_days"]
    assert h.tracking_model == lifecycle.choose_model(days, "auto").model and len(h.tracking)
    _check_bgbb_value(data, lc, "monthly")
    shown = []
    monkeypatch.setattr(present.report, "_show", shown.append)
    present.diagnostics(lc, data.params)
    html = "".join(shown)
    assert f"The tracking chart shows {present.model_name(h.tracking_model)}, the purchase-day model" in html
    assert "months with a purchase, one occasion each month" in html


@pytest.mark.parametrize("language", ["en", "zh"])
def test_the_report_names_bgbb_and_its_occasions(yearly, language, monkeypatch):
    data, lc = yearly
    i18n.set_language(language)
    with plt.rc_context():
        plots.use_style()  # the report's fonts, which draw Chinese
        _show_bgbb_report(data, lc, language, monkeypatch)


def _show_bgbb_report(data, lc, language, monkeypatch):
    table = present.comparison_table(lc.holdout, data.params)
    assert table.iloc[:, 0].tolist() == ["BG/NBD", "Pareto/NBD", "BG/BB"]
    shown = []
    monkeypatch.setattr(present.report, "_show", shown.append)
    present.purchase_models(lc, data.params)
    present.value(lc, data.params)
    present.churn(lc, data.params)
    present.diagnostics(lc, data.params)
    html = "".join(shown)
    assert not re.search(r"\bnan\b", html, re.IGNORECASE)
    churn = present.churn_table(lc, data.params)
    assert lifecycle.churn_window_occasions(104, "yearly") == 2
    assert any(present.occasion_count(2, "yearly") in c for c in churn.columns)
    if language == "en":
        assert "BG/BB counts years with a purchase, the other models purchase days" in html
        assert "in the 2 years after the last whole year before 2024-01-03" in html
        assert "This report uses BG/BB" in html
        assert "γ (stopping before an occasion, Beta γ)" in html
    else:
        assert "BG/BB统计的是有购买的年份" in html and "采用BG/BB模型" in html
        text = re.sub(r"<[^>]+>|BG/NBD|Pareto/NBD|BG/BB|Gamma-Gamma|BIC|AUC|CLV", "", html)
        assert not re.search(r"[A-Za-z][a-z]+(?:[ -][A-Za-z][a-z]+){2,}", text)


def test_a_holdout_without_a_whole_occasion_leaves_bgbb_unchecked(yearly_unit, monkeypatch):
    """Observed to 2025-08-31 with 26 weeks held out: 2025 is still running at both ends, so no
    whole year follows the calibration's last (2024); BG/BB is fitted but has no forecast, score
    or bucket. The purchase-day models do not converge on these once-a-year buyers, so it is
    the only model to use; its churn section leaves out the holdout check."""
    params = yearly_unit.params.model_copy(update={"observation_end": date(2025, 8, 31)})
    data = _with(dataclasses.replace(yearly_unit, params=params), holdout_weeks=26)
    lc = lifecycle.analyse(data)
    cmp = lc.holdout.comparison.set_index("model")
    row = cmp.loc["bg_bb"]
    assert row["converged"] and np.isnan(row["predicted"]) and np.isnan(row["auc"])
    assert not cmp.loc[["bg_nbd", "pareto_nbd"], "converged"].any()
    assert lc.holdout.by_frequency.empty and lc.holdout.tracking is None
    assert lc.purchase_model == lifecycle.ModelChoice("bg_bb", "only_converged") and lc.value.model == "bg_bb"
    shown = []
    monkeypatch.setattr(present.report, "_show", shown.append)
    present.purchase_models(lc, data.params)
    assert "The holdout window holds no whole year after the last whole year before 2025-03-02" in "".join(shown)
    assert not any("not clearly better" in c for c in present.caveats(lc, data.params))
    shown.clear()
    present.churn(lc, data.params)
    present.diagnostics(lc, data.params)
    assert "Does the score find real lapses?" not in "".join(shown)


def test_the_continuous_default_keeps_its_comparison(small_b2b_continuous):
    """The default unit (continuous purchases) compares BG/NBD and Pareto/NBD only, as before;
    declaring yearly occasions adds the BG/BB row and leaves their rows as they were."""
    data = small_b2b_continuous
    assert data.params.lifecycle.purchase_occasions == "continuous"
    lc = lifecycle.analyse(data)
    cmp = lc.holdout.comparison
    assert cmp["model"].tolist() == ["bg_nbd", "pareto_nbd"] and set(cmp["counts"]) == {"purchase_days"}
    assert set(lc.holdout.by_frequency["model"]) == {"bg_nbd", "pareto_nbd"}
    assert lc.purchase_model == lifecycle.choose_model(cmp.drop(columns="counts"), "auto")
    assert lc.holdout.tracking_model == lc.purchase_model.model
    yearly = lifecycle.analyse(_with(data, purchase_occasions="yearly"))
    both = yearly.holdout.comparison
    assert both["model"].tolist() == ["bg_nbd", "pareto_nbd", "bg_bb"]
    pd.testing.assert_frame_equal(both.iloc[:2], cmp, check_dtype=False)  # "ranked" is float beside a NaN


@pytest.fixture(scope="module")
def small_b2b_continuous(tmp_path_factory):
    out = tmp_path_factory.mktemp("small_b2b")
    demo.generate(out, customers=300, seed=3, units=("b2b",))
    return sources.load_unit("b2b", ROOT, run_date="2026-01-15", data_source=out, check=False)
