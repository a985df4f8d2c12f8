"""Customer service: quantile intervals and complaint rates by hand, ticket durations in the
engine, the planted effects of a slow first reply recovered on the demo (lapse hazard ratio,
later NPS and CSAT, response-time medians), units without or with few tickets, and what the
report shows of it (custlib.present.service) in English and Chinese, with service.csv."""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest
from conftest import once_per_unit

from custlib import contract, service, sources
from custlib.params import UnitParams
from custlib.present import i18n
from custlib.present import service as present
from custlib.stats import Unavailable

UNITS = ("online", "stores", "b2b")
ROOT = Path(__file__).resolve().parents[1]
PARAMS = UnitParams(id="u", display_name="U", data_source="data/u", observation_end=date(2025, 6, 30))


@pytest.fixture(autouse=True)
def english():
    i18n.set_language("en")
    yield
    i18n.set_language("en")


@pytest.fixture(scope="module")
def results(demo_unit):
    """The service analysis of each demo unit (computed once)."""
    return once_per_unit(lambda unit: service.analyse(demo_unit(unit)))


# -- quantiles and rates by hand -------------------------------------------------------------------
def test_order_statistic_ranks_match_the_published_table():
    """Conover (1999), table A3 / the classic sign-test interval: for n = 10 the 95% interval of
    the median runs from the 2nd to the 9th order statistic (coverage 97.9%); at n = 5 no
    interval with 95% coverage exists, so both sides are open."""
    assert service.quantile_ranks(10, 0.5) == (2, 9)
    assert service.quantile_ranks(5, 0.5) == (0, 6)
    assert service.quantile_ranks(6, 0.5) == (1, 6)
    lo, hi = service.quantile_ranks(100, 0.9)
    assert (lo, hi) == (84, 96)  # Bin(100, 0.9): F(83) < 0.025 <= F(84); F(94) < 0.975 <= F(95)


def test_quantile_estimate_by_hand_and_its_coverage():
    x = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0, 4.0, 6.0, 10.0, np.nan]
    e = service.quantile_estimate(x, 0.5)
    assert e.n == 10 and e.estimate == pytest.approx(5.5)  # numpy's linear interpolation
    assert (e.ci_low, e.ci_high) == (2.0, 9.0)
    p90 = service.quantile_estimate(x, 0.9)
    assert p90.estimate == pytest.approx(np.quantile(np.arange(1, 11), 0.9)) and np.isnan(p90.ci_high)
    rng = np.random.default_rng(3)
    hits = {0.5: 0, 0.9: 0}
    for _ in range(2000):
        s = rng.lognormal(1.0, 1.0, 60)
        for q in hits:
            e = service.quantile_estimate(s, q)
            truth = np.exp(1.0 + 1.0 * {0.5: 0.0, 0.9: 1.2815515655446004}[q])
            hits[q] += e.ci_low <= truth <= e.ci_high
    assert hits[0.5] / 2000 >= 0.94 and hits[0.9] / 2000 >= 0.94  # at least 95%, up to simulation noise


def test_engine_quantiles_equal_the_in_memory_ones():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"measure": "response", "dimension": "channel",
                       "group": rng.choice(["a", "b", "c"], 500, p=[0.6, 0.38, 0.02]),
                       "x": np.round(rng.exponential(5.0, 500), 1)})
    df.loc[::17, "x"] = np.nan
    out = service.quantile_table(ibis.memtable(df))
    for r in out.itertuples():
        e = service.quantile_estimate(df.loc[df["group"] == r.group, "x"], service.QUANTILES[r.quantile])
        assert r.n == e.n and r.estimate == pytest.approx(e.estimate)
        assert r.ci_low == pytest.approx(e.ci_low, nan_ok=True) and r.ci_high == pytest.approx(e.ci_high, nan_ok=True)
    assert len(out) == 6


def test_poisson_rate_exact_interval():
    """Garwood intervals of a Poisson count (published values for 0 and 10 events)."""
    e = service.poisson_rate(10, 2000)
    assert e.estimate == pytest.approx(5.0)
    assert (e.ci_low, e.ci_high) == pytest.approx((4.7954 / 2, 18.3904 / 2), abs=1e-3)
    zero = service.poisson_rate(0, 1000)
    assert zero.estimate == 0 and zero.ci_low == 0 and zero.ci_high == pytest.approx(3.6889, abs=1e-3)


def _tickets(rows):
    """An in-memory service_tickets table of ``rows``."""
    cols = [c.name for c in contract.SERVICE_TICKETS.columns]
    df = pd.DataFrame(rows, columns=["ticket_id", "customer_id", "opened_at", "first_response_at", "resolved_at",
                                     "channel", "category", "resolved"])
    for c in ("opened_at", "first_response_at", "resolved_at"):
        df[c] = pd.to_datetime(df[c])
    df["business_unit"] = "u"
    return ibis.memtable(df[cols])



TICKETS = [
    # id, customer, opened, first response, resolved, channel, category, resolved
    ("T1", "A", "2025-01-10 09:00", "2025-01-10 11:00", "2025-01-11 09:00", "chat", "complaint", 1),   # 2 h
    ("T2", "A", "2025-02-01 10:00", "2025-02-02 16:00", None, "email", "complaint", 0),                # 30 h: 6 h late
    ("T3", "B", "2025-01-20 08:00", None, None, "email", "complaint", 0),                                 # never answered
    ("T4", "C", "2025-01-05 12:00", "2025-01-09 16:00", "2025-01-10 12:00", "email", "inquiry", 1),    # 100 h: capped
    ("T5", "D", "2025-06-30 20:00", None, None, "phone", "return", 0),                                    # SLA not over yet
    ("T6", "E", "2025-07-02 10:00", "2025-07-02 11:00", None, "phone", "return", 0),                   # after the end
    ("T7", "C", "2025-03-01 12:00", "2025-07-03 12:00", None, "phone", "complaint", 0),                # answered after the end
]


def test_ticket_durations_by_hand():
    d = service.ticket_durations(_tickets(TICKETS), PARAMS).execute().set_index("ticket_id")
    assert "T6" not in d.index  # opened after the observation end
    assert d.loc["T1", "response_hours"] == 2 and d.loc["T2", "response_hours"] == 30
    assert d.loc["T4", "resolution_hours"] == 120 and pd.isna(d.loc["T7", "response_hours"])
    assert d["delay_days"].round(6).to_dict() == {"T1": 0, "T2": 0.25, "T3": 2, "T4": 2, "T5": 2, "T7": 2}
    assert not d.loc["T5", "sla_known"] and d.loc["T1":"T4", "sla_known"].all()
    assert d.loc["T1", "within_sla"] and not d.loc["T2", "within_sla"]
    assert d["unanswered"].to_dict() == {"T1": False, "T2": False, "T3": True, "T4": False, "T5": True, "T7": True}
    times = service.times_table(service.ticket_durations(_tickets(TICKETS), PARAMS))
    unit = times[times["dimension"] == "unit"].set_index("measure")
    assert unit.loc["tickets", "n"] == 6
    assert unit.loc["sla_share", "estimate"] == pytest.approx(1 / 5) and unit.loc["sla_share", "n"] == 5
    assert unit.loc["unanswered_share", "estimate"] == pytest.approx(2 / 5)  # T5 opened too late to tell
    assert unit.loc["response_median", "estimate"] == pytest.approx(30.0) and unit.loc["response_median", "n"] == 3
    months = times[(times["dimension"] == "month") & (times["measure"] == "tickets")]
    assert months["group"].tolist() == ["2025-01", "2025-02", "2025-03", "2025-06"]


def test_complaint_rates_and_retention_by_hand():
    orders = [("A", "2025-01-01", 50.0),    # before the first ticket: outside the period
              ("A", "2025-01-15", 20.0), ("A", "2025-03-01", -5.0),  # a return is not an order
              ("B", "2025-02-01", 10.0), ("C", "2025-02-15", 10.0), ("C", "2025-08-20", 10.0)]
    tx = pd.DataFrame(orders, columns=["customer_id", "order_date", "amount"])
    tx["order_date"] = pd.to_datetime(tx["order_date"]).dt.date
    tx = ibis.memtable(tx)
    params = PARAMS.model_copy(update={"observation_end": date(2025, 12, 31)})
    d = service.ticket_durations(_tickets(TICKETS[:4] + TICKETS[6:]), params)
    rates = service.complaint_rates(d, tx, params).set_index(["dimension", "group"])
    assert rates.loc[("unit", "all"), "orders"] == 4 and rates.loc[("unit", "all"), "tickets"] == 4
    assert rates.loc[("unit", "all"), "estimate"] == pytest.approx(1000.0)
    assert rates.loc[("channel", "email"), "tickets"] == 2 and rates.loc[("category", "inquiry"), "tickets"] == 1
    assert rates.loc[("unit", "all"), "start"] == pd.Timestamp("2025-01-05")
    # first complaints: A resolved (bought again 2025-01-15), B not resolved (2025-02-01), C not resolved
    # (T7, 2025-03-01; next purchase 2025-08-20: 172 days later)
    r = service.complaint_retention(d, tx, params, small_n=1)
    assert (r.resolved.n, r.resolved.estimate) == (1, 1.0)
    assert (r.unresolved.n, r.unresolved.estimate) == (2, 1.0)
    assert r.difference.estimate == 0
    few = service.complaint_retention(d, tx, params, small_n=2)
    assert isinstance(few, Unavailable) and few.values["resolved"] == 1


# -- planted truths on the demo ---------------------------------------------------------------------
@pytest.mark.parametrize("unit", UNITS)
def test_planted_hazard_ratio_per_24h_of_delay_is_recovered(results, truth, unit):
    hr = results(unit).lapse.hazard_ratio()
    planted = truth["units"][unit]["service"]["lapse_hazard_ratio_per_day"]
    assert 1 < hr.ci_low <= planted <= hr.ci_high, hr
    assert hr.ci_high / hr.ci_low < 1.4  # informative


@pytest.mark.parametrize("unit", UNITS)
def test_later_nps_and_csat_fall_by_the_planted_amount(results, truth, unit):
    """The planted drops act on the score before it is rounded to the scale and capped by its
    ends, which the interval regression models; slopes are within 3 standard errors of the
    planted values (stores lies about 2 se off: its 64 responses after a late reply happen to
    come from less satisfied customers; with the latent satisfaction as a control the slope is
    the planted one)."""
    planted = truth["units"][unit]["service"]
    for score, key in (("nps", "nps_per_day"), ("csat", "csat_per_day")):
        s = results(unit).scores[score]
        assert s.slope.ci_high < 0 and abs(s.slope.estimate + planted[key]) < 3 * s.slope.se, (score, s.slope)
        assert s.ols.estimate > s.slope.estimate  # answers at the ends of the scale flatten least squares


@pytest.mark.parametrize("unit", UNITS)
def test_response_time_medians_by_channel_are_the_planted_ones(results, truth, unit):
    rows = results(unit).group_rows("channel").set_index("group")
    for channel, (median, _) in truth["units"][unit]["service"]["response_hours"].items():
        r = rows.loc[channel]
        assert r["response_median"] == pytest.approx(median, rel=0.15, abs=1 / 60), channel  # to the minute
        assert r["response_median_ci_low"] <= r["response_median"] <= r["response_median_ci_high"]
        assert r["response_p90"] > r["response_median"]


def test_revenue_at_stake_follows_the_hazard_ratio(results):
    svc = results("online")
    c = svc.cost
    assert c.customers > 0 and c.hours_late > 0
    assert 0 < c.revenue.ci_low < c.revenue.estimate < c.revenue.ci_high
    assert c.revenue_per_hour.estimate == pytest.approx(c.revenue.estimate / c.hours_late)
    assert 0 < c.lapses.estimate < c.customers
    # every late customer of the last year, each once
    recent = svc.first_tickets[svc.first_tickets["opened"] > pd.Timestamp("2024-12-31")]
    assert c.customers == int((recent["delay_days"] > 0).sum())


# -- units without or with few tickets ------------------------------------------------------------
def _unit_folder(demo_dir: Path, folder: Path, tickets: pd.DataFrame | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("customers", "transactions", "survey_responses"):
        shutil.copy(demo_dir / f"{name}.parquet", folder / f"{name}.parquet")
    if tickets is not None:
        tickets.to_parquet(folder / "service_tickets.parquet", index=False)
    return folder


@pytest.fixture(scope="module")
def thin(demo_dir, tmp_path_factory):
    """The online unit without service tickets, with only its first 20 tickets, and with every
    ticket answered within an hour and none resolved."""
    root = tmp_path_factory.mktemp("service")
    tickets = pd.read_parquet(demo_dir / "service_tickets.parquet")
    online = tickets[tickets["business_unit"] == "online"]
    few = online.head(20)
    fast = online.assign(first_response_at=online["opened_at"] + pd.Timedelta(hours=1), resolved_at=pd.NaT,
                         resolved=0)
    out = {}
    for name, t in (("none", None), ("few", few), ("fast", fast)):
        folder = _unit_folder(demo_dir, root / name, t)
        data = sources.load_unit("online", ROOT, "2026-01-15", data_source=folder)
        out[name] = (data, service.analyse(data))
    return out


def test_a_unit_without_tickets_says_what_is_missing(thin):
    data, svc = thin["none"]
    parts = [svc.times, svc.lapse, svc.cost, svc.complaints, svc.retention, *svc.scores.values()]
    assert all(isinstance(p, Unavailable) and p.key == "unavailable.needs_table" for p in parts)
    assert all(p.values["table"] == "service_tickets" for p in parts)
    assert "Service tickets" in svc.times.reason
    assert present.write_outputs(svc, data) == []


def test_a_unit_with_few_tickets_says_what_it_cannot_estimate(thin):
    _, svc = thin["few"]
    assert svc.tickets == 20 and isinstance(svc.times, pd.DataFrame)
    assert isinstance(svc.lapse, Unavailable) and "Too few" in svc.lapse.reason
    assert svc.cost is svc.lapse
    assert all(isinstance(s, Unavailable) for s in svc.scores.values())
    assert isinstance(svc.retention, Unavailable) and isinstance(svc.complaints, pd.DataFrame)
    assert svc.group_rows("unit")["tickets"].iloc[0] == 20


def test_a_unit_answering_every_ticket_on_time_has_no_delay_to_price(thin):
    _, svc = thin["fast"]
    assert svc.lapse.key == "service.unavailable.delay_flat" and svc.cost is svc.lapse
    assert all(s.key == "service.unavailable.score_flat" for s in svc.scores.values())
    unit = svc.group_rows("unit").iloc[0]
    assert unit["sla_share"] == 1 and np.isnan(unit["resolution_median"]) and unit["resolved_share"] == 0


# -- the report ---------------------------------------------------------------------------------
def _render(svc, params, monkeypatch) -> str:
    """Run every presentation function, collecting the HTML they show and the charts."""
    shown: list[str] = []
    monkeypatch.setattr(present.report, "_show", shown.append)
    monkeypatch.setattr(present.report, "chart", lambda ax: shown.append(f"<chart {ax.get_title()}>"))
    found = present.finding(svc, params)
    shown.append(found.text if found else "")
    for section in (present.times, present.trend, present.cost, present.complaints, present.diagnostics):
        section(svc, params)
    import matplotlib.pyplot as plt

    plt.close("all")
    return "\n".join(shown)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_every_section_renders(results, thin, demo_unit, language, monkeypatch):
    from custlib.plots import use_style

    i18n.set_language(language)
    use_style()
    params = demo_unit("online").params
    full = _render(results("online"), params, monkeypatch)
    assert full.count("<chart") == 4 and "<figure" in full
    assert ("24-hour SLA" if language == "en" else "24小时服务时限") in full
    assert not re.search(r"(?<![\d-])[-−]0(?![.\d])", full)  # no "-0"
    for name in ("none", "few", "fast"):
        text = _render(thin[name][1], params, monkeypatch)
        assert "cl-unavailable" in text
    none = _render(thin["none"][1], params, monkeypatch)
    assert none.count("cl-unavailable") == 4 and "<chart" not in none  # one note per section
    assert present.finding(thin["none"][1], params) is None  # no tickets: no finding


def test_service_csv_is_tidy_and_holds_no_personal_field(results, demo_unit, tmp_path, monkeypatch):
    data = demo_unit("online")
    monkeypatch.setattr(present.report, "_show", lambda html: None)
    moved = sources.UnitData(data.params, data.source, tmp_path, data.run_date)
    (path,) = present.write_outputs(results("online"), moved)
    assert path == tmp_path / "reports" / "online" / "data" / "satisfaction" / "service.csv"
    out = pd.read_csv(path)
    assert list(out.columns) == ["section", "measure", "dimension", "group", "estimate", "se", "ci_low", "ci_high",
                                 "n", "unit", "method"]
    assert not set(contract.PERSONAL_FIELDS) & set(out.columns) and "customer_id" not in out.columns
    hr = out[out["measure"] == "lapse_hazard_ratio_per_24h_delay"].iloc[0]
    assert hr["estimate"] == pytest.approx(results("online").lapse.hazard_ratio().estimate)
    assert set(out["section"]) == {"times", "complaints", "retention", "outcomes"}
    assert not out["group"].astype(str).str.match(r"^ON\d+").any()  # no customer ids
