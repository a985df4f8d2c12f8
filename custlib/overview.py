"""A unit's data at a glance: rows per table, date ranges, monthly activity."""

from __future__ import annotations

import pandas as pd

from custlib.sources import UnitData

DATE_COLUMNS = {"customers": "signup_date", "transactions": "order_date",
                "loyalty_members": "enrolled_date", "survey_responses": "response_date",
                "leads": "created_date", "campaigns": "start_date", "campaign_contacts": "sent_date",
                "service_tickets": "opened_at"}


def table_counts(data: UnitData) -> pd.DataFrame:
    """Rows and date range of each input table for this unit; ``note`` is "no rows" (the table
    exists without rows for the unit), "not in source" (the source lacks the table) or ""."""
    rows = []
    for name, col in DATE_COLUMNS.items():
        t = getattr(data, name)
        r = t.aggregate(rows=t.count(), first=t[col].min(), last=t[col].max()).execute().iloc[0]
        rows.append({"table": name, "rows": int(r["rows"]),
                     "from": r["first"].date() if r["rows"] else None,
                     "to": r["last"].date() if r["rows"] else None,
                     "note": "" if r["rows"] else "no rows" if data.source.has_table(name) else "not in source"})
    return pd.DataFrame(rows)


def monthly_activity(data: UnitData) -> pd.DataFrame:
    """Per calendar month: net revenue (currency), orders and distinct buying customers."""
    t = data.transactions
    t = t.mutate(month=t.order_date.truncate("M"))
    df = (t.group_by("month")
          .aggregate(revenue=t.amount.sum(), orders=(t.amount > 0).sum(),
                     customers=t.customer_id.nunique())
          .order_by("month").execute())
    df["month"] = pd.to_datetime(df["month"])
    return df


def monthly_responses(data: UnitData) -> pd.DataFrame:
    """Per calendar month: survey responses and mean NPS score (0-10)."""
    t = data.survey_responses
    t = t.mutate(month=t.response_date.truncate("M"))
    df = (t.group_by("month").aggregate(responses=t.count(), mean_nps_score=t.nps.mean())
          .order_by("month").execute())
    df["month"] = pd.to_datetime(df["month"])
    return df


def unit_kpis(data: UnitData) -> dict:
    """Customers, active buyers (an order in the 365 days up to the observation end), net
    revenue of those 365 days and of the 365 before, and the relative change between them as an
    :class:`~custlib.stats.Estimate`: the ratio of the two sums minus one, with the delta-method
    standard error over customers (each customer's pair of yearly revenues is one observation;
    assumes customers independent, seasonality equal in both years)."""
    from datetime import timedelta

    import ibis

    from custlib.stats import Estimate

    end = data.params.observation_end
    cut, start = end - timedelta(days=365), end - timedelta(days=730)
    t = data.transactions
    t = t.filter(t.order_date > start)
    recent = t.order_date > cut
    per_customer = t.group_by("customer_id").aggregate(
        current=ibis.ifelse(recent, t.amount, 0).sum(), previous=ibis.ifelse(recent, 0, t.amount).sum(),
        active=(recent & (t.amount > 0)).any())
    pc = per_customer
    s = pc.aggregate(n=pc.count(), active=pc.active.sum(), c=pc.current.sum(), p=pc.previous.sum(),
                     cc=(pc.current * pc.current).sum(), pp=(pc.previous * pc.previous).sum(),
                     cp=(pc.current * pc.previous).sum()).execute().iloc[0]
    customers = int(data.customers.count().execute())
    n, c, p = int(s["n"]), float(s["c"] or 0), float(s["p"] or 0)
    if n > 1 and p > 0:
        r = c / p
        ss = float(s["cc"]) - 2 * r * float(s["cp"]) + r * r * float(s["pp"])
        trend = Estimate.normal(r - 1, (max(ss, 0.0) * n / (n - 1)) ** 0.5 / p, n, "ratio of yearly revenue, delta method")
    else:
        trend = Estimate(float("nan"), float("nan"), float("nan"), float("nan"), n, "no revenue in the year before")
    return {"customers": customers, "active_buyers": int(s["active"] or 0), "revenue_12m": c,
            "revenue_prev_12m": p, "revenue_trend": trend}
