"""A unit's data at a glance: rows per table, date ranges, monthly activity."""

from __future__ import annotations

import pandas as pd

from custlib.sources import UnitData

DATE_COLUMNS = {"customers": "signup_date", "transactions": "order_date",
                "loyalty_members": "enrolled_date", "survey_responses": "response_date",
                "leads": "created_date"}


def table_counts(data: UnitData) -> pd.DataFrame:
    """Rows and date range of each input table for this unit."""
    rows = []
    for name, col in DATE_COLUMNS.items():
        t = getattr(data, name)
        r = t.aggregate(rows=t.count(), first=t[col].min(), last=t[col].max()).execute().iloc[0]
        rows.append({"table": name, "rows": int(r["rows"]),
                     "from": r["first"].date() if r["rows"] else None,
                     "to": r["last"].date() if r["rows"] else None,
                     "note": "" if r["rows"] else "no rows for this unit" if data.source.has_table(name)
                     else "not in the data source"})
    return pd.DataFrame(rows)


def monthly_activity(data: UnitData) -> pd.DataFrame:
    """Per calendar month: net revenue (currency), orders and distinct buying customers."""
    t = data.transactions
    t = t.mutate(month=t.order_date.truncate("M"))
    df = (t.group_by("month")
          .aggregate(revenue=t.amount.sum(), orders=(t.amount > 0).cast("int64").sum(),
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
