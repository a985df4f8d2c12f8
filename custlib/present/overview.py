"""The "About the data" section every report ends with, and the unit-level KPIs of the
portfolio page (customers, active buyers, revenue and its trend)."""

from __future__ import annotations

import pandas as pd

from custlib import overview, report
from custlib.plots import overview as overview_plots
from custlib.present import fmt
from custlib.present.i18n import name, t


def table_display(counts: pd.DataFrame) -> pd.DataFrame:
    """:func:`custlib.overview.table_counts` with display names."""
    notes = {"no rows": t("overview.no_rows"), "not in source": t("overview.not_in_source"), "": ""}
    return pd.DataFrame({
        t("overview.table"): counts["table"].map(lambda x: name("table", x)),
        t("overview.rows"): counts["rows"].map(lambda x: fmt.value(x, "count")),
        t("overview.from"): counts["from"].map(lambda d: "" if d is None or pd.isna(d) else f"{d:%Y-%m-%d}"),
        t("overview.to"): counts["to"].map(lambda d: "" if d is None or pd.isna(d) else f"{d:%Y-%m-%d}"),
        t("overview.note"): counts["note"].map(notes),
    })


def about_data(data, monthly: str = "revenue") -> None:
    """Section: rows and dates per input table, then net revenue per month (``monthly =
    "revenue"``) or survey responses per month (``"responses"``)."""
    report.section(t("report.about_data"), t("report.about_data_intro"))
    report.table(table_display(overview.table_counts(data)), t("overview.table_caption"))
    if monthly == "revenue":
        overview_plots.monthly_bars(overview.monthly_activity(data), value="revenue", kind="money",
                                    title=t("overview.monthly_revenue_title"),
                                    ylabel=t("overview.revenue_axis"),
                                    currency=data.params.currency)
    else:
        overview_plots.monthly_bars(overview.monthly_responses(data), value="responses", kind="count",
                                    title=t("overview.monthly_responses_title"), ylabel=t("overview.responses_axis"))


def kpis(data) -> dict:
    """Customers, active buyers (a purchase in the last 12 months), net revenue of the last 12
    months, its change against the 12 months before (with interval) and revenue per month."""
    k = overview.unit_kpis(data)
    monthly = overview.monthly_activity(data)
    return {"customers": k["customers"], "active_buyers": k["active_buyers"],
            "revenue_12m": {**k["revenue_trend"].to_dict(), "kind": "change",
                            "current": k["revenue_12m"], "previous": k["revenue_prev_12m"]},
            "monthly_revenue": {"month": monthly["month"].dt.strftime("%Y-%m").tolist(),
                                "revenue": monthly["revenue"].round(2).tolist()}}
