"""Engine aggregates: raw transactions -> one row per customer or per customer-period.

Each function builds one Ibis expression and executes it once; pandas only sees the result.
Pass a typed transactions table (``UnitData.transactions``) or, in tests, a pandas frame with
the contract's columns (it is wrapped in an in-memory table).

The expressions run unchanged on DuckDB and PostgreSQL (tests/test_engines.py compares them):
conditions are counted with ``cond.sum()``, which Ibis compiles to a cast each engine accepts
(PostgreSQL has no boolean -> bigint or boolean -> double cast), and every choice of one row
among several (``argmin``/``argmax``, ``row_number``) is ordered by a key that cannot tie.
"""

from __future__ import annotations

from datetime import date, timedelta

import ibis
import ibis.expr.types as ir
import pandas as pd

PERIOD_DAYS = {"D": 1.0, "W": 7.0, "M": 365.25 / 12}


def as_table(transactions: ir.Table | pd.DataFrame) -> ir.Table:
    """An Ibis table for either an Ibis expression or a (small) pandas frame."""
    if isinstance(transactions, pd.DataFrame):
        df = transactions.copy()
        for c in ("order_date",):
            if c in df:
                df[c] = pd.to_datetime(df[c]).dt.date
        return ibis.memtable(df)
    return transactions


def _days_between(later, earlier) -> ir.NumericValue:
    return later.delta(earlier, unit="day").cast("float64")


def _purchase_days(tx: ir.Table, until: date, since: date | None = None) -> ir.Table:
    """Orders collapsed to one row per customer and day; returns (negative amounts) are
    excluded, zero-value orders (free items, full discounts) are purchases."""
    t = tx.filter((tx.amount >= 0) & (tx.order_date <= until))
    if since is not None:
        t = t.filter(t.order_date > since)
    return t.group_by(["customer_id", "order_date"]).aggregate(value=t.amount.sum())


def customer_summary(transactions: ir.Table | pd.DataFrame, observation_end: date,
                     calibration_end: date | None = None, freq: str = "W") -> pd.DataFrame:
    """Per-customer ``frequency, recency, T, monetary_value`` as in the BG/NBD and Gamma-Gamma papers.

    ``frequency``: repeat purchase *days* (several orders on one day are one purchase);
    ``recency``: first to last purchase, ``T``: first purchase to the end of the calibration
    period, both in fractional periods of ``freq`` (``"D"``, ``"W"`` = 7 days, ``"M"``);
    ``monetary_value``: mean value of the repeat purchase days (0 without repeats). Returns
    (negative amounts) are left out. With ``calibration_end``, the model columns describe the
    calibration period (customers whose first purchase is on or before it) and
    ``frequency_holdout``, ``monetary_value_holdout`` and ``duration_holdout`` the period after.
    Indexed by ``customer_id``.
    """
    tx = as_table(transactions)
    period = PERIOD_DAYS[freq]
    cal_end = calibration_end or observation_end
    days = _purchase_days(tx, cal_end)
    first_value = days.value.argmin(days.order_date)
    agg = days.group_by("customer_id").aggregate(
        first=days.order_date.min(), last=days.order_date.max(), n=days.count(),
        total=days.value.sum(), first_value=first_value,
    )
    out = agg.select(
        "customer_id",
        frequency=(agg.n - 1).cast("float64"),
        recency=_days_between(agg["last"], agg["first"]) / period,
        T=_days_between(ibis.literal(cal_end), agg["first"]) / period,
        monetary_value=ibis.ifelse(agg.n > 1, (agg.total - agg.first_value) / (agg.n - 1), 0.0),
    )
    if calibration_end is not None:
        hold = _purchase_days(tx, observation_end, since=calibration_end)
        hold = hold.group_by("customer_id").aggregate(frequency_holdout=hold.count().cast("float64"),
                                                      monetary_value_holdout=hold.value.mean())
        out = out.left_join(hold, "customer_id").select(
            out,
            frequency_holdout=hold.frequency_holdout.fill_null(0.0),
            monetary_value_holdout=hold.monetary_value_holdout.fill_null(0.0),
            duration_holdout=ibis.literal((observation_end - calibration_end).days / period),
        )
    return out.order_by("customer_id").execute().set_index("customer_id")


OCCASIONS_PER_YEAR = {"yearly": 1, "quarterly": 4, "monthly": 12}  # calendar occasions


def occasion_number(year, quarter, month, occasion: str):
    """Consecutive number of the calendar occasion (``yearly``: the year, ``quarterly``: the
    quarter, ``monthly``: the month) of a date given by its year, quarter (1-4) and month
    (1-12), as Ibis expressions, integers or arrays: the occasion after number k is k + 1."""
    if occasion == "yearly":
        return year
    if occasion == "quarterly":
        return year * 4 + quarter - 1
    return year * 12 + month - 1


def last_whole_occasion(day: date, occasion: str) -> int:
    """Number (:func:`occasion_number`) of the last occasion that has ended by ``day``, inclusive
    (the one before the occasion of the next day)."""
    after = day + timedelta(days=1)
    return occasion_number(after.year, (after.month - 1) // 3 + 1, after.month, occasion) - 1


def occasion_summary(transactions: ir.Table | pd.DataFrame, observation_end: date, occasion: str,
                     calibration_end: date | None = None) -> pd.DataFrame:
    """Per-customer BG/BB summary at calendar occasions (``yearly``, ``quarterly``, ``monthly``;
    :data:`OCCASIONS_PER_YEAR`): which occasions had a purchase, not how many purchases.

    Customers with a purchase on or before the calibration end (``observation_end`` without
    ``calibration_end``). ``first_occasion``: first day of the occasion of the first purchase;
    ``n_periods``: whole occasions after it up to the calibration end: an occasion still running
    at the calibration end is not counted, nor are its purchases (0 when the first purchase is
    in it); ``frequency``: those occasions with a purchase; ``recency``: the last of them,
    counted from the first purchase's occasion (0 if none). With ``calibration_end``, the
    holdout: ``n_holdout``, the whole occasions after both the calibration's last whole
    occasion and the first purchase's, up to ``observation_end`` (so an occasion running at the
    calibration end is a holdout occasion), and ``frequency_holdout``, those with a purchase.
    Returns (negative amounts) are left out, zero-value orders are purchases (as in
    :func:`customer_summary`). Counts as int64; indexed by ``customer_id``.
    """
    tx = as_table(transactions)
    cal_end = calibration_end or observation_end
    last_calibration = last_whole_occasion(cal_end, occasion)
    days = _purchase_days(tx, observation_end)
    d = days.order_date
    days = days.mutate(occasion=occasion_number(d.year(), d.quarter(), d.month(), occasion),
                       occasion_start=d.truncate({"yearly": "Y", "quarterly": "Q", "monthly": "M"}[occasion]))
    per_occasion = days.group_by(["customer_id", "occasion", "occasion_start"]).aggregate(
        first_day=days.order_date.min())
    o = per_occasion.mutate(first=per_occasion.occasion.min().over(ibis.window(group_by="customer_id")))
    later = (o.occasion > o.first) & (o.occasion <= last_calibration)
    aggs = dict(first_day=o.first_day.min(), first=o.first.min(), first_occasion=o.occasion_start.min(),
                frequency=later.sum(), last=o.occasion.max(where=later))
    if calibration_end is not None:
        last_holdout = last_whole_occasion(observation_end, occasion)
        holdout = (o.occasion > ibis.greatest(o.first, last_calibration)) & (o.occasion <= last_holdout)
        aggs["frequency_holdout"] = holdout.sum()
    agg = o.group_by("customer_id").aggregate(**aggs)
    agg = agg.filter(agg.first_day <= cal_end)
    columns = dict(
        first_occasion=agg.first_occasion,
        frequency=agg.frequency.cast("int64"),
        recency=ibis.coalesce(agg["last"] - agg["first"], 0).cast("int64"),
        n_periods=ibis.greatest(last_calibration - agg["first"], 0).cast("int64"),
    )
    if calibration_end is not None:
        columns |= dict(frequency_holdout=agg.frequency_holdout.cast("int64"),
                        n_holdout=ibis.greatest(last_holdout - ibis.greatest(agg["first"], last_calibration),
                                                0).cast("int64"))
    out = agg.select("customer_id", **columns).order_by("customer_id").execute().set_index("customer_id")
    out["first_occasion"] = pd.to_datetime(out["first_occasion"])
    return out


def customer_aggregates(transactions: ir.Table | pd.DataFrame, observation_end: date,
                        category_tiers: dict[str, str] | None = None,
                        orders_since: date | None = None) -> pd.DataFrame:
    """One row per buyer up to ``observation_end``: dates, counts, revenue and price sensitivity.

    Columns: ``first_order``, ``last_order`` (dates of positive orders), ``orders`` (positive
    orders), ``purchase_days``, ``revenue`` (net of returns, currency), ``gross_sales`` (positive
    orders only), ``discounted_share`` (share of positive orders with a discount),
    ``discount_rate`` (discount / (sales + discount)), ``recency_days`` (observation end minus
    last order), ``tenure_days`` (observation end minus first order) and ``basic_share``, ``standard_share``,
    ``premium_share`` of positive orders (missing without ``category_tiers``); with
    ``orders_since``, ``recent_orders``: positive orders after that date (same scan).
    """
    tx = as_table(transactions)
    t = tx.filter(tx.order_date <= observation_end)
    pos = t.amount > 0
    aggs = dict(
        first_order=t.order_date.min(where=pos),
        last_order=t.order_date.max(where=pos),
        orders=pos.sum(),
        purchase_days=t.order_date.nunique(where=pos),
        revenue=t.amount.sum(),
        gross_sales=t.amount.sum(where=pos),
        discounted_share=((t.discount > 0) & pos).sum() / pos.sum(),
        discount_rate=t.discount.sum(where=pos) / (t.amount.sum(where=pos) + t.discount.sum(where=pos)),
    )
    tier = t.product_category.substitute(category_tiers, else_=ibis.null("string")) if category_tiers else None
    for name in ("basic", "standard", "premium"):
        aggs[f"{name}_share"] = (((tier == name) & pos).sum() / pos.sum()
                                 if category_tiers else ibis.null("float64"))
    if orders_since is not None:
        aggs["recent_orders"] = (pos & (t.order_date > orders_since)).sum()
    agg = t.group_by("customer_id").aggregate(**aggs)
    agg = agg.filter(agg.orders > 0).mutate(
        recency_days=_days_between(ibis.literal(observation_end), agg.last_order),
        tenure_days=_days_between(ibis.literal(observation_end), agg.first_order),
    )
    return agg.order_by("customer_id").execute().set_index("customer_id")


def _lapse_starts(days: ir.Table, observation_end: date, lapse_days: int) -> ir.Table:
    """Purchase days with ``next_date`` (the customer's next purchase day) and ``starts_lapse``:
    followed by more than ``lapse_days`` days without a purchase, known by the observation end
    (the day is before ``observation_end - lapse_days``)."""
    followup_end = observation_end - timedelta(days=lapse_days)
    days = days.mutate(next_date=days.order_date.lead().over(
        ibis.window(group_by="customer_id", order_by="order_date")))
    return days.mutate(starts_lapse=(days.order_date < followup_end) & (
        days.next_date.isnull() | (_days_between(days.next_date, days.order_date) > lapse_days)))


def survey_followup(responses: ir.Table | pd.DataFrame, transactions: ir.Table | pd.DataFrame,
                    observation_end: date, lapse_days: int) -> pd.DataFrame:
    """Each survey response in the context of the respondent's purchases, one row per ``response_id``.

    Columns: ``response_id``, ``customer_id``, ``response_date``, ``order_channel`` (channel of
    the last positive order on or before the response date), ``first_order`` (first positive
    order), ``orders_before`` (purchase days on or before the response date),
    ``revenue_year_before`` (net revenue of the 365 days up to the response date, currency),
    ``lapse_date`` and ``followup_end``.

    Lapse, with L = ``lapse_days``: a purchase day followed by more than L days without a
    purchase. ``lapse_date`` is the first such purchase day from the respondent's last purchase
    on or before the response onwards. It is only known once the L-day gap has passed, so it
    counts only if it falls before ``followup_end`` = observation end − L; null means no lapse
    observed by then (censored at ``followup_end``). Returns are left out.
    """
    tx = as_table(transactions)
    tx = tx.filter(tx.order_date <= observation_end)
    if isinstance(responses, pd.DataFrame):
        r = responses[["response_id", "customer_id", "response_date"]].copy()
        r["response_date"] = pd.to_datetime(r["response_date"]).dt.date
        r = ibis.memtable(r)
    else:
        r = responses.select("response_id", "customer_id", "response_date")
    followup_end = observation_end - timedelta(days=lapse_days)

    days = _lapse_starts(_purchase_days(tx, observation_end), observation_end, lapse_days)
    d = r.inner_join(days, "customer_id")
    # a gap that ends after the response starts at the last purchase on or before it (or later)
    after_response = d.next_date.isnull() | (d.next_date > d.response_date)
    lapse = d.starts_lapse & after_response
    by_day = d.group_by("response_id").aggregate(
        first_order=d.order_date.min(),
        orders_before=(d.order_date <= d.response_date).sum(),
        lapse_date=d.order_date.min(where=lapse),
    )
    o = r.inner_join(tx, "customer_id")
    o = o.filter(o.order_date <= o.response_date)
    by_order = o.group_by("response_id").aggregate(
        # the latest purchase's channel; same-day orders are told apart by order_id (as text), so
        # every engine picks the same row whatever order it scans them in
        order_channel=o.channel.argmax(o.order_date.cast("string").concat("|", o.order_id.cast("string")),
                                       where=o.amount > 0),
        revenue_year_before=o.amount.sum(where=o.order_date > o.response_date - ibis.interval(days=365)),
    )
    out = (r.left_join(by_day, "response_id").left_join(by_order, "response_id")
           .select("response_id", "customer_id", "response_date", "order_channel", "first_order",
                   orders_before=ibis.coalesce(by_day.orders_before, 0),
                   revenue_year_before=ibis.coalesce(by_order.revenue_year_before, 0.0),
                   lapse_date=by_day.lapse_date)
           .order_by("response_id").execute())
    for c in ("response_date", "first_order", "lapse_date"):
        out[c] = pd.to_datetime(out[c])
    out["followup_end"] = pd.Timestamp(followup_end)
    return out


def customer_month_panel(transactions: ir.Table | pd.DataFrame, observation_end: date,
                         start: date, zeros: bool = True) -> pd.DataFrame:
    """Customer x calendar-month panel, from each buyer's first order month (or ``start``'s
    month, whichever is later) to ``observation_end``'s month.

    Columns: ``customer_id``, ``month`` (first day), ``first_month`` (month of the first
    positive order), ``months_since_first`` (0 in the first-order month), ``orders`` (positive
    orders), ``gross_sales`` (value of the positive orders, currency), ``spend`` (net of
    returns, currency), ``active`` (1 if any positive order that month).

    ``zeros=True``: dense, zeros where nothing was bought, ordered by customer and month.
    ``zeros=False``: the compact form of a large panel, about 35 bytes per customer-month with an
    order or a return (the other months are zeros and left out), in no particular order:
    ``customer_id`` categorical, ``month`` and ``first_month`` as month numbers
    (year x 12 + month - 1), narrow integer types.
    """
    tx = as_table(transactions)
    t = tx.filter(tx.order_date <= observation_end)
    t = t.mutate(month=t.order_date.truncate("M"))
    pos = t.amount > 0
    activity = t.group_by(["customer_id", "month"]).aggregate(
        orders=pos.sum(), gross_sales=t.amount.sum(where=pos), spend=t.amount.sum())
    first = t.filter(pos).group_by("customer_id").aggregate(first_month=t.month.min())
    calendar = pd.date_range(pd.Timestamp(start).to_period("M").to_timestamp(),
                             pd.Timestamp(observation_end), freq="MS")
    if zeros:
        months = ibis.memtable(pd.DataFrame({"month": calendar.date}))
        grid = first.cross_join(months)
        grid = grid.filter(grid.month >= grid.first_month)
        p = grid.left_join(activity, ["customer_id", "month"])
    else:
        p = activity.inner_join(first, "customer_id")
        p = p.filter((p.month >= p.first_month) & (p.month >= calendar[0].date()))
    index = lambda d: d.year() * 12 + d.month() - 1  # noqa: E731
    out = p.select(
        "customer_id", "month", "first_month",
        months_since_first=(index(p.month) - index(p.first_month)).cast("int64"),
        orders=ibis.coalesce(p.orders, 0),
        gross_sales=ibis.coalesce(p.gross_sales, 0.0),
        spend=ibis.coalesce(p.spend, 0.0),
    )
    out = out.mutate(active=ibis.ifelse(out.orders > 0, 1, 0).cast("int64"))
    if not zeros:  # through Arrow, so that ids never become one Python object per row; the system
        import pyarrow as pa  # allocator returns the transfer's memory when it is freed

        out = out.mutate(month=index(out.month).cast("int32"), first_month=index(out.first_month).cast("int32"),
                         months_since_first=out.months_since_first.cast("int16"),
                         orders=out.orders.cast("int32"), active=out.active.cast("int8"))
        return out.to_pyarrow().to_pandas(strings_to_categorical=True, self_destruct=True,
                                          memory_pool=pa.system_memory_pool())
    df = out.order_by(["customer_id", "month"]).execute()
    for c in ("month", "first_month"):
        df[c] = pd.to_datetime(df[c])
    return df


def customer_snapshots(transactions: ir.Table | pd.DataFrame, snapshot_dates: list[date]) -> pd.DataFrame:
    """Each buyer's purchase history as of each snapshot date, one row per customer and snapshot
    on or after the first purchase.

    Columns: ``customer_id``, ``snapshot`` (date), ``first_purchase``, ``last_purchase`` (dates of
    the first and last purchase day up to the snapshot) and ``purchase_days`` (days with a
    purchase up to the snapshot; several orders on one day are one purchase; returns left out).
    """
    tx = as_table(transactions)
    days = _purchase_days(tx, max(snapshot_dates))
    snaps = ibis.memtable(pd.DataFrame({"snapshot": pd.to_datetime(pd.Series(snapshot_dates)).dt.date}))
    j = days.inner_join(snaps, days.order_date <= snaps.snapshot)
    agg = j.group_by(["customer_id", "snapshot"]).aggregate(
        first_purchase=j.order_date.min(), last_purchase=j.order_date.max(),
        purchase_days=j.count())
    df = agg.order_by(["customer_id", "snapshot"]).execute()
    for c in ("snapshot", "first_purchase", "last_purchase"):
        df[c] = pd.to_datetime(df[c])
    return df


def purchase_day_counts(transactions: ir.Table | pd.DataFrame, observation_end: date,
                        cohort_end: date) -> pd.DataFrame:
    """Per calendar day up to ``observation_end``: ``first_purchases`` (customers whose first
    purchase day it is) and ``repeat_purchases`` (repeat purchase days of customers whose first
    purchase is on or before ``cohort_end``). Days without either are left out. Returns excluded.
    """
    tx = as_table(transactions)
    days = _purchase_days(tx, observation_end)
    days = days.mutate(first=days.order_date.min().over(ibis.window(group_by="customer_id")))
    is_first = days.order_date == days.first
    agg = days.group_by(date=days.order_date).aggregate(
        first_purchases=is_first.sum(),
        repeat_purchases=(~is_first & (days.first <= cohort_end)).sum())
    df = agg.order_by("date").execute()
    df["date"] = pd.to_datetime(df["date"])
    return df


def lapse_times(transactions: ir.Table | pd.DataFrame, observation_end: date, lapse_days: int) -> pd.DataFrame:
    """Time from the first purchase to the first lapse, per buyer, for survival analysis.

    A lapse starts on a purchase day followed by more than ``lapse_days`` days without a purchase
    (as in :func:`survey_followup`). It is only known once that gap has passed, so a lapse counts
    if it starts before ``followup_end`` = observation end − ``lapse_days`` (a purchase on that day
    has been followed by exactly ``lapse_days`` silent days, not more); otherwise the customer is
    censored there. Buyers whose first purchase is not before ``followup_end`` are left out.

    Columns: ``customer_id``, ``first_purchase``, ``first_category`` (product category of the
    first positive order, ties broken by order id), ``lapse_date`` (null if censored),
    ``lapsed`` (bool) and ``days_to_lapse`` (first purchase to lapse or to ``followup_end``).
    """
    tx = as_table(transactions)
    followup_end = observation_end - timedelta(days=lapse_days)
    days = _lapse_starts(_purchase_days(tx, observation_end), observation_end, lapse_days)
    per = days.group_by("customer_id").aggregate(first_purchase=days.order_date.min(),
                                                 lapse_date=days.order_date.min(where=days.starts_lapse))
    per = per.filter(per.first_purchase < followup_end)
    orders = tx.filter((tx.amount >= 0) & (tx.order_date <= observation_end))
    orders = orders.mutate(k=ibis.row_number().over(
        ibis.window(group_by="customer_id", order_by=[orders.order_date, orders.order_id])))
    first_cat = orders.filter(orders.k == 0).select("customer_id", first_category=orders.product_category)
    out = per.left_join(first_cat, "customer_id").select(
        "customer_id", "first_purchase", "first_category", "lapse_date",
        lapsed=per.lapse_date.notnull(),
        days_to_lapse=_days_between(ibis.coalesce(per.lapse_date, ibis.literal(followup_end)),
                                    per.first_purchase))
    df = out.order_by("customer_id").execute()
    for c in ("first_purchase", "lapse_date"):
        df[c] = pd.to_datetime(df[c])
    return df
