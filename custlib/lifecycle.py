"""Customer lifecycle 客户生命周期: stages, acquisition cohorts, time to lapse and the churn-risk
warning, plus :func:`analyse`, which runs the whole lifecycle report of one business unit.

Stages (rules in ``params.lifecycle``; the first matching rule wins, in this order):

* ``prospect`` — no purchase yet: open leads and customers who signed up without buying;
* ``new`` — first purchase within ``new_within_days``;
* ``lapsed`` — no purchase for more than ``lapsed_after_days``;
* ``at_risk`` — one purchase only and past the new window, or silent for longer than
  ``at_risk_gap_factor`` times the customer's own mean gap between purchase days, or the purchase
  model's P(alive) below ``at_risk_p_alive``;
* ``loyal`` — at least ``loyal_min_purchases`` purchase days and a purchase within
  ``loyal_recent_days``;
* ``repeat`` — everyone else (two or more purchase days).

Purchases are purchase *days* (several orders on one day are one purchase); returns are left out.

The purchase model (BG/NBD or Pareto/NBD, :data:`PURCHASE_MODELS`, on purchase days) is chosen
on the holdout check: both are fitted on the data before the last ``holdout_weeks`` and compared
on that window (:func:`choose_model`); ``params.lifecycle.purchase_model`` can force one. When a
unit's purchases happen at discrete occasions (``params.lifecycle.purchase_occasions``: yearly,
quarterly or monthly calendar occasions, such as annual events, renewals or donations), BG/BB
(:data:`OCCASION_MODELS`) joins the comparison on the occasion summary
(:func:`custlib.features.occasion_summary`): it counts occasions with a purchase, not purchase
days. The CLV, P(alive), the at-risk rule and the churn list use the chosen one.

:func:`analyse` returns a :class:`LifecycleResult` of numbers only; what a report shows (tables,
findings, notes, output files) is built from it by :mod:`custlib.present.lifecycle`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow.compute as pc
from lifelines import KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test
from lifelines.utils import median_survival_times
from sklearn.metrics import roc_curve

from custlib import clv, features, funnel
from custlib.params import LIFECYCLE_STAGES, LifecycleParams
from custlib.stats import Z95, Estimate, Term, Unavailable, proportion

STAGE_CODE = {s: i for i, s in enumerate(LIFECYCLE_STAGES)}  # stage -> position, the stage codes
ACTIVE_STAGES = ("new", "repeat", "loyal", "at_risk")
CHURN_COLUMNS = ["customer_id", "risk_rank", "p_alive", "p_no_purchase", "clv", "value_if_retained",
                 "value_at_risk", "became_at_risk"]
WEEK = 7.0
TRANSITION_MONTHS = 12  # month-to-month moves pooled in the transition matrix
PURCHASE_MODELS = {"bg_nbd": clv.BetaGeoModel, "pareto_nbd": clv.ParetoNBDModel}  # on purchase days (weeks)
OCCASION_MODELS = {"bg_bb": clv.BetaGeoBetaBinomModel}  # on occasions, with discrete purchase occasions
PurchaseModel = clv.PurchaseModel
DEFAULT_MODEL = "bg_nbd"  # used without a holdout comparison (unless params force another)
RULE_SCORE = "recency_weeks"  # the plain churn rule the models' scores are compared with
NEAR_TIE = 0.02  # holdout errors closer than 2 percentage points are a tie, broken by BIC


# -- stages ------------------------------------------------------------------------------------

def _stage_codes(n: np.ndarray, since_first: np.ndarray, silence: np.ndarray, p_alive: np.ndarray,
                 rules: LifecycleParams) -> np.ndarray:
    """Stage of each row as its position in ``LIFECYCLE_STAGES`` (int8), from the purchase days
    ``n``, the days since the first and since the last purchase (NaN without a purchase) and
    P(alive) (NaN: the rule is not used)."""
    span = since_first - silence  # first to last purchase, days
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_gap = np.where(n >= 2, span / np.maximum(n - 1, 1), np.nan)
    at_risk = ((n == 1) | (silence > rules.at_risk_gap_factor * mean_gap)
               | (p_alive < rules.at_risk_p_alive))
    conditions = [
        n == 0,
        since_first <= rules.new_within_days,
        silence > rules.lapsed_after_days,
        at_risk,
        (n >= rules.loyal_min_purchases) & (silence <= rules.loyal_recent_days),
    ]
    codes = [STAGE_CODE[s] for s in ("prospect", "new", "lapsed", "at_risk", "loyal")]
    return np.select(conditions, codes, default=STAGE_CODE["repeat"]).astype(np.int8)


def _stages(codes: np.ndarray) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, categories=LIFECYCLE_STAGES)


def assign_stages(history: pd.DataFrame, rules: LifecycleParams) -> pd.Series:
    """Stage of each row of ``history`` at its ``snapshot`` date.

    ``history`` columns: ``snapshot``, ``first_purchase``, ``last_purchase`` (NaT without a
    purchase), ``purchase_days`` (0 without a purchase) and optionally ``p_alive``.
    """
    snap = pd.to_datetime(history["snapshot"])
    n = history["purchase_days"].fillna(0).to_numpy()
    since_first = (snap - pd.to_datetime(history["first_purchase"])).dt.days.to_numpy(float)
    silence = (snap - pd.to_datetime(history["last_purchase"])).dt.days.to_numpy(float)
    p_alive = history["p_alive"].to_numpy(float) if "p_alive" in history else np.full(len(n), np.nan)
    codes = _stage_codes(n, since_first, silence, p_alive, rules)
    return pd.Series(_stages(codes), index=history.index, name="stage")


def snapshot_dates(start: date, end: date) -> list[date]:
    """Month ends from ``start``'s month to ``end``; the last snapshot is ``end`` itself."""
    ends = [d.date() for d in pd.date_range(start, end, freq="ME")]
    return ends if ends and ends[-1] == end else [*ends, end]


@dataclass(frozen=True)
class StageHistory:
    """Stages of the customers and open leads at monthly snapshots, kept as aggregates: memory
    grows with the customers, not with customers x snapshots.

    ``snapshots``: the snapshot dates with at least one customer or open lead; ``counts``:
    ``snapshot, stage, entities`` (customers and open leads); ``moves``: entities in stage i at
    one snapshot and in stage j at the next (int array, pairs of consecutive snapshots x stages x
    stages, stages in ``LIFECYCLE_STAGES`` order); ``last``: the customers at the last snapshot,
    indexed by customer_id (``first_purchase``, ``last_purchase``, ``purchase_days``, ``p_alive``,
    ``stage``); ``stage_before``: the stage of the customers one snapshot before the last;
    ``open_leads``: open leads at the last snapshot not counted as a customer."""

    snapshots: list[pd.Timestamp]
    counts: pd.DataFrame
    moves: np.ndarray
    last: pd.DataFrame
    stage_before: pd.Series
    open_leads: int

    def current(self) -> pd.DataFrame:
        """Customers at the last snapshot (leads without a customer record are left out)."""
        return self.last

    def previous_stage(self) -> pd.Series:
        """Each customer's stage one snapshot before the last."""
        return self.stage_before

    def transitions(self, months: int = TRANSITION_MONTHS) -> pd.DataFrame | Unavailable:
        """Stage-to-stage moves between consecutive snapshots, pooled over the last ``months``
        pairs: ``from_stage, to_stage, entities, share`` (share of the from-stage row)."""
        if len(self.snapshots) < 2:
            return Unavailable("lifecycle.unavailable.transitions_one_month")
        pooled = self.moves[max(len(self.moves) - months, 0):].sum(axis=0)
        k = len(LIFECYCLE_STAGES)
        t = pd.DataFrame({"from_stage": _stages(np.repeat(np.arange(k), k)),
                          "to_stage": _stages(np.tile(np.arange(k), k)), "entities": pooled.ravel()})
        t["share"] = t["entities"] / t.groupby("from_stage", observed=False)["entities"].transform("sum")
        return t

    def stage_mix(self) -> pd.DataFrame:
        """Stages at the last snapshot: ``stage, entities`` (customers and open leads) and their
        share of all entities with its Wilson 95% interval (``estimate, se, ci_low, ci_high, n``)."""
        c = self.counts
        c = c[c["snapshot"] == self.snapshots[-1]]
        total = int(c["entities"].sum())
        rows = [{"stage": str(stage), "entities": int(k), **proportion(int(k), total).to_dict()}
                for stage, k in zip(c["stage"], c["entities"])]
        return pd.DataFrame(rows)


def _nanoseconds(values: pd.Series, missing: int) -> np.ndarray:
    """Timestamps as int64 nanoseconds since 1970, ``missing`` where null."""
    t = pd.to_datetime(values)
    return np.where(t.isna(), missing, t.to_numpy("datetime64[ns]").view(np.int64))


class _PurchaseDays:
    """Every buyer's purchase days up to ``until`` (days with an order of value >= 0, as in
    ``features``), fetched from the engine once as one list of order dates per buyer, then sorted
    and deduplicated here. ``customer``: the buyer's position in ``customer_ids`` (buyers missing
    from it are left out); ``days``: all buyers' days end to end (days since 1970-01-01);
    ``starts`` and ``first``: where each buyer's days start and the first of them. With
    ``occasion`` (``yearly``, ``quarterly``, ``monthly``), for :meth:`occasions_as_of`:
    ``day_occasion``, each day's calendar occasion (:func:`features.occasion_number`), and
    ``occasion_rank``, its place among the buyer's occasions (0: the first purchase's)."""

    def __init__(self, transactions, until: date, customer_ids: pd.Index, occasion: str | None = None):
        tx = features.as_table(transactions)
        t = tx.filter((tx.amount >= 0) & (tx.order_date <= until))
        lists = t.group_by("customer_id").aggregate(days=t.order_date.collect()).to_pyarrow()
        customer = customer_ids.get_indexer(lists["customer_id"].to_numpy())
        lists = lists.filter(customer >= 0)  # buyers missing from customer_ids are left out
        self.customer = customer[customer >= 0]
        lengths = pc.list_value_length(lists["days"]).to_numpy()
        day = pc.list_flatten(lists["days"]).to_numpy().astype("datetime64[D]").astype(np.int64)
        origin = day.min() if len(day) else 0
        span = int(day.max() - origin) + 1 if len(day) else 1
        # one key per (buyer, day), sorted: each buyer's days in order; repeats dropped
        key = np.sort(np.repeat(np.arange(len(lengths)), lengths) * span + (day - origin))
        buyer, day = np.divmod(key[np.diff(key, prepend=-1) != 0], span)
        self.days = day + origin
        self.starts = starts = np.flatnonzero(np.diff(buyer, prepend=-1))
        self.first = self.days[starts]
        self.occasion = occasion
        if occasion is not None:
            months = self.days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)  # since 1970-01
            month = months % 12 + 1
            self.day_occasion = features.occasion_number(months // 12 + 1970, (month - 1) // 3 + 1, month, occasion)
            new = np.r_[True, self.day_occasion[1:] != self.day_occasion[:-1]]
            new[starts] = True
            seen = np.cumsum(new)
            self.occasion_rank = seen - seen[starts][buyer]

    def as_of(self, day: int) -> tuple[np.ndarray, np.ndarray]:
        """Per buyer: the purchase days up to ``day`` (int32) and the last of them (the first
        purchase day where there is none)."""
        if not len(self.starts):
            return np.zeros(0, np.int32), self.first
        n = np.add.reduceat(self.days <= day, self.starts, dtype=np.int32)
        return n, self.days[self.starts + np.maximum(n - 1, 0)]

    def occasions_as_of(self, day: int) -> pd.DataFrame:
        """Per buyer (as in :meth:`as_of`), the occasion summary with ``day`` (days since
        1970-01-01) as the observation end, as :func:`features.occasion_summary` defines it:
        ``frequency``, ``recency``, ``n_periods`` (whole occasions only)."""
        last = features.last_whole_occasion(date(1970, 1, 1) + timedelta(days=int(day)), self.occasion)
        if not len(self.starts):
            return pd.DataFrame({"frequency": [], "recency": [], "n_periods": []}, dtype=float)
        starts = self.starts
        whole = np.add.reduceat(self.day_occasion <= last, starts, dtype=np.int64)  # days in whole occasions
        latest = starts + np.maximum(whole - 1, 0)
        first = self.day_occasion[starts]
        history = pd.DataFrame({"frequency": np.where(whole > 0, self.occasion_rank[latest], 0),
                                "recency": np.where(whole > 0, self.day_occasion[latest] - first, 0),
                                "n_periods": np.maximum(last - first, 0)}, dtype=float)
        return history


@dataclass(frozen=True)
class _Snapshot:
    """Stages at one snapshot. The entities are the customers (in the customers frame's order),
    then the keys of leads without a customer record. ``stage``: stage code per entity;
    ``rows``: 1 for a customer counted at the snapshot, else the entity's open leads (0: not
    counted); ``customer``: whether each customer counts; ``buyers``: the customers with a
    purchase by the snapshot (``at``: position; ``purchase_days``; ``first_purchase`` and
    ``last_purchase`` in days since 1970-01-01; ``p_alive``)."""

    stage: np.ndarray
    rows: np.ndarray
    customer: np.ndarray
    buyers: pd.DataFrame

    def counts(self) -> np.ndarray:
        """Entities per stage."""
        return np.bincount(self.stage, weights=self.rows, minlength=len(LIFECYCLE_STAGES)).astype(np.int64)

    def moves_to(self, after: _Snapshot) -> np.ndarray:
        """Stage x stage counts of the entities counted at both snapshots (rows multiply, as in a
        join of this snapshot's rows with the next one's on the entity)."""
        k = len(LIFECYCLE_STAGES)
        both = (self.rows > 0) & (after.rows > 0)
        cell = self.stage[both].astype(np.int64) * k + after.stage[both]
        weights = (self.rows * after.rows)[both]
        return np.bincount(cell, weights=weights, minlength=k * k).astype(np.int64).reshape(k, k)

    def customers(self, ids: pd.Index) -> pd.DataFrame:
        """The customers counted, indexed by customer_id: ``first_purchase``, ``last_purchase``
        (NaT without a purchase), ``purchase_days``, ``p_alive`` (NaN without) and ``stage``."""
        b = self.buyers.set_index("at").reindex(np.arange(len(ids)))
        frame = pd.DataFrame({
            "first_purchase": pd.to_datetime(b["first_purchase"], unit="D").to_numpy(),
            "last_purchase": pd.to_datetime(b["last_purchase"], unit="D").to_numpy(),
            "purchase_days": b["purchase_days"].fillna(0).to_numpy(np.int64),
            "p_alive": b["p_alive"].to_numpy(),
            "stage": _stages(self.stage[:len(ids)]),
        }, index=ids.rename("customer_id"))
        return frame[self.customer]


def _probability_alive_once_per_history(model: PurchaseModel, history: pd.DataFrame) -> np.ndarray:
    """P(alive) of each row of ``history``, computed once per distinct row."""
    groups = history.groupby(list(history.columns), sort=False)
    distinct = groups.size().index.to_frame(index=False)
    return model.probability_alive(distinct).to_numpy()[groups.ngroup().to_numpy()]


def stage_history(transactions, customers: pd.DataFrame, leads: pd.DataFrame, observation_end: date,
                  rules: LifecycleParams, model: PurchaseModel | None = None,
                  start: date | None = None, purchase_occasions: str = "continuous") -> StageHistory:
    """Monthly stage snapshots of every customer and open lead.

    ``customers``: ``customer_id, signup_date``; ``leads``: ``lead_id, customer_id,
    created_date, won_date, lost_date``. A customer counts from the signup or the first
    purchase, whichever comes first. A lead is a prospect from its creation until it is won or
    lost; a lead with a customer_id is that customer, counted once (as the customer) while the
    customer counts. ``model``: a fitted purchase model whose P(alive) feeds the at-risk rule at
    every snapshot (without it the rule is not used): of each buyer's weekly history, or, for
    BG/BB, of the occasion history at ``purchase_occasions`` (whole occasions by the snapshot).

    The purchase days come from the engine once; the snapshots are walked in order, keeping the
    counts, the moves and the last two snapshots only.
    """
    ids = pd.Index(customers["customer_id"])
    never = np.iinfo(np.int64).max
    signup = _nanoseconds(customers["signup_date"], missing=never)
    snaps = snapshot_dates(start or pd.to_datetime(customers["signup_date"]).min().date(), observation_end)
    on_occasions = isinstance(model, clv.BetaGeoBetaBinomModel)
    if on_occasions and purchase_occasions == "continuous":
        raise ValueError("BG/BB needs discrete purchase occasions (yearly, quarterly or monthly)")
    bought = _PurchaseDays(transactions, observation_end, ids, purchase_occasions if on_occasions else None)

    lead_key = leads["customer_id"].fillna(leads["lead_id"])
    lead_entity = ids.get_indexer(lead_key)
    other = lead_entity < 0
    other_codes, other_keys = pd.factorize(lead_key[other])
    lead_entity[other] = len(ids) + other_codes
    entities = len(ids) + len(other_keys)
    created = _nanoseconds(leads["created_date"], missing=never)
    decided = _nanoseconds(pd.to_datetime(leads["won_date"]).fillna(pd.to_datetime(leads["lost_date"])),
                           missing=never)

    def at(snap: pd.Timestamp) -> _Snapshot:
        day = (snap - pd.Timestamp(0)).days
        n, latest = bought.as_of(day)
        has = n > 0
        who, n, first, latest = bought.customer[has], n[has], bought.first[has], latest[has]
        p_alive = np.full(len(who), np.nan)
        if on_occasions:
            p_alive = _probability_alive_once_per_history(model, bought.occasions_as_of(day)[has])
        elif model is not None:
            weeks = {"recency": (latest - first) / WEEK, "T": (day - first) / WEEK}
            p_alive = model.probability_alive(pd.DataFrame({"frequency": n - 1, **weeks})).to_numpy()
        stage = np.zeros(entities, np.int8)  # prospect
        stage[who] = _stage_codes(n, (day - first).astype(float), (day - latest).astype(float), p_alive, rules)
        is_customer = signup <= snap.value
        is_customer[who] = True
        rows = np.bincount(lead_entity[(created <= snap.value) & (snap.value < decided)], minlength=entities)
        rows[:len(ids)][is_customer] = 1  # a customer's own open lead is not counted again
        buyers = pd.DataFrame({"at": who, "purchase_days": n, "first_purchase": first, "last_purchase": latest,
                               "p_alive": p_alive})
        return _Snapshot(stage, rows, is_customer, buyers)

    k = len(LIFECYCLE_STAGES)
    kept, counts, moves = [], [], []
    before = last = None
    for snap in pd.to_datetime(snaps):
        s = at(snap)
        c = s.counts()
        if not c.sum():
            continue
        if last is not None:
            moves.append(last.moves_to(s))
        kept.append(snap)
        counts.append(c)
        before, last = last, s
    if last is None:  # nobody at any snapshot
        last = s
    count_frame = pd.DataFrame({"snapshot": np.repeat(pd.DatetimeIndex(kept), k),
                                "stage": _stages(np.tile(np.arange(k), len(kept))),
                                "entities": np.array(counts, np.int64).reshape(-1)})
    stage_before = before.customers(ids)["stage"] if before is not None else pd.Series(dtype=object)
    return StageHistory(kept, count_frame, np.array(moves, np.int64).reshape(-1, k, k), last.customers(ids),
                        stage_before, open_leads=int(last.rows.sum() - last.customer.sum()))


# -- acquisition cohorts -----------------------------------------------------------------------

def cohort_retention(transactions, observation_end: date, start: date) -> pd.DataFrame | Unavailable:
    """Monthly acquisition cohorts x months since the first purchase, aggregated in the engine.

    A cohort is the calendar month of its customers' first positive order (from ``start``'s
    month on); a customer is active in a month with a positive order. Returns ``cohort`` (first
    day of the month), ``months_since_first`` (every month from 0 to ``observation_end``'s),
    ``cohort_size``, ``active`` (customers with a positive order that month), ``retention``
    (active / cohort size), ``revenue`` (net of returns from the first order's month on,
    currency) and ``revenue_per_customer`` (revenue / cohort size): the dense
    ``features.customer_month_panel`` summed by cohort and month. Unavailable when no cohort can
    be followed into a month after the first purchase.
    """
    tx = features.as_table(transactions)
    t = tx.filter(tx.order_date <= observation_end)
    t = t.mutate(month=t.order_date.truncate("M"))
    pos = t.amount > 0
    first = t.filter(pos).group_by("customer_id").aggregate(first_month=t.month.min())
    first = first.filter(first.first_month >= start.replace(day=1))
    months = t.group_by(["customer_id", "month"]).aggregate(orders=pos.sum(), spend=t.amount.sum())
    m = months.inner_join(first, "customer_id")
    m = m.filter(m.month >= m.first_month)
    since_first = (m.month.year() - m.first_month.year()) * 12 + m.month.month() - m.first_month.month()
    by_month = m.group_by(cohort=m.first_month, months_since_first=since_first.cast("int64")).aggregate(
        active=(m.orders > 0).sum(), revenue=m.spend.sum()).execute()
    by_month["cohort"] = pd.to_datetime(by_month["cohort"])

    # every customer of a cohort is active in its first month
    size = by_month[by_month["months_since_first"] == 0].rename(columns={"active": "cohort_size"})
    cohort = size["cohort"]
    followed = (observation_end.year - cohort.dt.year) * 12 + observation_end.month - cohort.dt.month
    if not (followed >= 1).any():
        return Unavailable("lifecycle.unavailable.cohorts_one_month")
    grid = size[["cohort", "cohort_size"]].loc[size.index.repeat(followed + 1)]
    grid["months_since_first"] = grid.groupby("cohort").cumcount()
    out = grid.merge(by_month, how="left", on=["cohort", "months_since_first"])
    out = out.fillna({"active": 0, "revenue": 0.0}).astype({"active": "int64", "cohort_size": "int64"})
    out["retention"] = out["active"] / out["cohort_size"]
    out["revenue_per_customer"] = out["revenue"] / out["cohort_size"]
    out = out.sort_values(["cohort", "months_since_first"], ignore_index=True)
    return out[["cohort", "months_since_first", "cohort_size", "active", "retention", "revenue",
                "revenue_per_customer"]]


def retention_at(cohorts: pd.DataFrame, months: int) -> Estimate:
    """Share of customers who bought in month ``months`` after their first purchase, pooled over
    the cohorts observed that long (Wilson 95% interval; n = customers in those cohorts)."""
    c = cohorts[cohorts["months_since_first"] == months]
    return proportion(int(c["active"].sum()), int(c["cohort_size"].sum()))


def pooled_retention(cohorts: pd.DataFrame) -> pd.DataFrame:
    """:func:`retention_at` for every month after the first purchase that a cohort reaches:
    ``months, estimate, se, ci_low, ci_high, n, method``."""
    months = range(1, int(cohorts["months_since_first"].max()) + 1)
    return pd.DataFrame([{"months": m, **retention_at(cohorts, m).to_dict()} for m in months])


# -- time to lapse -----------------------------------------------------------------------------

@dataclass(frozen=True)
class LapseCurves:
    """Kaplan–Meier curves of days from the first purchase to the lapse, by a group column.

    ``curves``: ``group, days, survival, ci_low, ci_high`` (share not yet lapsed, 95% band);
    ``medians``: ``group, n, lapses, median_days, ci_low, ci_high`` (NaN where the curve does not
    reach 50%); ``logrank``: test statistic, degrees of freedom and p-value of equal curves.
    """

    by: str
    curves: pd.DataFrame
    medians: pd.DataFrame
    logrank: dict


def _customers_per_row(lapses: pd.DataFrame) -> pd.Series:
    """How many customers each row of lapse times stands for: its ``customers`` column, else 1."""
    return lapses["customers"] if "customers" in lapses else pd.Series(1, index=lapses.index)


def lapse_counts(lapses: pd.DataFrame, customers: pd.DataFrame, category_tiers: dict[str, str]) -> pd.DataFrame:
    """``features.lapse_times`` rows counted by ``days_to_lapse, lapsed, acquisition_channel,
    first_order_tier`` (the tier of the first order's category): one row per distinct
    combination, ``customers`` per row (what the Kaplan–Meier fits need, as case weights)."""
    d = lapses[["customer_id", "days_to_lapse", "lapsed", "first_category"]].merge(
        customers[["customer_id", "acquisition_channel"]], on="customer_id", how="left")
    d["first_order_tier"] = d["first_category"].map(category_tiers)
    keys = ["days_to_lapse", "lapsed", "acquisition_channel", "first_order_tier"]
    return d.groupby(keys, dropna=False, sort=False).size().rename("customers").reset_index()


def time_to_lapse(lapses: pd.DataFrame, by: str, min_n: int = 30) -> LapseCurves | Unavailable:
    """Kaplan–Meier estimate per value of ``by`` on lapse times (``days_to_lapse``, ``lapsed``;
    ``features.lapse_times`` rows or their :func:`lapse_counts`) and a multivariate log-rank
    test; groups of fewer than ``min_n`` customers are left out. ``by``: ``acquisition_channel``
    or ``first_order_tier`` (the groupings the report names). Unavailable with fewer than two
    such groups or without any lapse in them."""
    d = lapses.dropna(subset=[by])
    w = _customers_per_row(d)
    sizes = w.groupby(d[by]).sum()
    kept = d[by].isin(sizes[sizes >= min_n].index)
    d, w = d[kept], w[kept]
    what = Term(f"lifecycle.what.lapse_by.{by}")
    groups = d[by].nunique()
    if groups < 2:
        return Unavailable("lifecycle.unavailable.lapse_groups",
                           {"what": what, "min_n": int(min_n), "n": int(_customers_per_row(lapses).sum()),
                            "groups": int(groups)})
    if not d["lapsed"].any():
        return Unavailable("lifecycle.unavailable.lapse_none", {"what": what, "n": int(w.sum())})
    curves, medians = [], []
    for group, part in d.groupby(by, sort=True):
        pw = w[part.index]
        kmf = KaplanMeierFitter().fit(part["days_to_lapse"], part["lapsed"], weights=pw.to_numpy(),
                                      label=str(group))
        ci = kmf.confidence_interval_survival_function_
        curves.append(pd.DataFrame({"group": str(group), "days": kmf.survival_function_.index,
                                    "survival": kmf.survival_function_.iloc[:, 0].to_numpy(),
                                    "ci_low": ci.iloc[:, 0].to_numpy(), "ci_high": ci.iloc[:, 1].to_numpy()}))
        med_ci = median_survival_times(kmf.confidence_interval_)
        lapsed = int(pw[part["lapsed"].astype(bool)].sum())
        medians.append({"group": str(group), "n": int(pw.sum()), "lapses": lapsed,
                        "median_days": float(kmf.median_survival_time_),
                        "ci_low": float(med_ci.iloc[0, 0]), "ci_high": float(med_ci.iloc[0, 1])})
    test = multivariate_logrank_test(d["days_to_lapse"], d[by], d["lapsed"], weights=w.to_numpy())
    med = pd.DataFrame(medians).replace([np.inf, -np.inf], np.nan)
    return LapseCurves(by, pd.concat(curves, ignore_index=True), med,
                       {"statistic": float(test.test_statistic), "df": int(test.degrees_of_freedom),
                        "p_value": float(test.p_value)})


def median_time_to_lapse(lapses: pd.DataFrame) -> Estimate | Unavailable:
    """Kaplan–Meier median days from the first purchase to the lapse over all customers
    followed (lapse times as in :func:`time_to_lapse`), with its 95% interval (NaN bound where
    the band does not reach 50%); unavailable while fewer than half have lapsed."""
    w = _customers_per_row(lapses)
    n, lapsed = int(w.sum()), int(w[lapses["lapsed"].astype(bool)].sum())
    if not lapsed:
        return Unavailable("lifecycle.unavailable.lapse_none", {"what": Term("lifecycle.what.lapse"), "n": n})
    kmf = KaplanMeierFitter().fit(lapses["days_to_lapse"], lapses["lapsed"], weights=w.to_numpy())
    median = float(kmf.median_survival_time_)
    if not np.isfinite(median):
        return Unavailable("lifecycle.unavailable.lapse_median", {"n": n, "lapses": lapsed})
    lo, hi = (float(x) for x in median_survival_times(kmf.confidence_interval_).iloc[0])
    return Estimate(median, float("nan"), lo, hi if np.isfinite(hi) else float("nan"), n,
                    "Kaplan–Meier median")


# -- CLV and its validation --------------------------------------------------------------------

@dataclass(frozen=True)
class CustomerValue:
    """Fitted purchase model (``model``: its key in :data:`PURCHASE_MODELS`) and Gamma-Gamma
    model and per-customer values at the observation end.

    ``table`` (indexed by customer_id): ``p_alive``, ``expected_purchases`` (over the horizon),
    ``expected_spend`` (per purchase, currency), ``clv`` (discounted, currency) with
    ``clv_ci_low`` / ``clv_ci_high`` (95%, parameter uncertainty, delta method),
    ``value_if_retained`` (CLV if the customer is still active: clv / p_alive) and
    ``p_no_purchase`` (no purchase in the next ``window_weeks``); ``uncertainty``: the CLV's
    sensitivity to the parameters, for the interval of any group's total; ``total``: everyone's;
    ``summary``: the weekly customer summary the models were fitted on (Gamma-Gamma always; the
    purchase model unless it is BG/BB).

    With BG/BB (``model`` "bg_bb"), fitted on the occasion summary: ``p_alive`` is P(alive at
    the next occasion), ``expected_purchases`` counts occasions with a purchase among the whole
    occasions of the horizon, ``p_no_purchase`` is over :func:`churn_window_occasions` of
    ``window_weeks``, and the CLV values each occasion with a purchase at the expected spend per
    purchase (one purchase per occasion), discounting occasion i at i occasion lengths."""

    model: str
    purchases: PurchaseModel
    spend: clv.GammaGammaModel
    table: pd.DataFrame
    uncertainty: clv.ClvUncertainty
    total: clv.ClvTotal
    window_weeks: int
    summary: pd.DataFrame

    def total_of(self, customers, if_retained: bool = False) -> Estimate:
        """Sum of the discounted CLV of ``customers`` (ids; None: all; ``if_retained``: of their
        value if still active, CLV / P(alive)) with a delta-method 95% interval for this fixed
        group."""
        rows = None if customers is None else self.table.index.get_indexer(pd.Index(customers))
        return self.uncertainty.total(rows, if_retained)


def _degenerate(models: dict) -> str:
    """The names of the fitted models (name -> model) that did not converge (their ``warnings_``
    say why); empty when all converged."""
    return ", ".join(name for name, m in models.items() if not m.converged_)


MODEL_NAMES = {"bg_nbd": "BG/NBD", "pareto_nbd": "Pareto/NBD", "bg_bb": "BG/BB", "gamma_gamma": "Gamma-Gamma"}


def occasion_days(occasion: str) -> float:
    """Length of a calendar occasion (``yearly``, ``quarterly``, ``monthly``) in days, on
    average: 365.25, 365.25 / 4 or 365.25 / 12."""
    return 365.25 / features.OCCASIONS_PER_YEAR[occasion]


def churn_window_occasions(weeks: int, occasion: str) -> int:
    """The whole occasions nearest to ``weeks`` weeks, at least one: BG/BB's window of the
    probability of no purchase in the churn list (26 weeks: 1 year, 2 quarters, 6 months)."""
    return max(1, round(weeks * WEEK / occasion_days(occasion)))


class _SpendPerPurchase:
    """A fitted Gamma-Gamma model that always values a customer from their weekly history
    (repeat purchase days and their mean value in ``weekly``, by customer id), whichever summary
    of the same customers asks: :func:`clv.clv_uncertainty` then values BG/BB's occasions with a
    purchase at each customer's expected spend per purchase. ``names``, ``params_`` and
    ``covariance_`` are the model's."""

    def __init__(self, model: clv.GammaGammaModel, weekly: pd.DataFrame):
        self.model, self.weekly = model, weekly
        self.names, self.params_, self.covariance_ = model.names, model.params_, model.covariance_

    def expected_spend(self, summary: pd.DataFrame, params: pd.Series | None = None) -> pd.Series:
        return self.model.expected_spend(self.weekly.loc[summary.index], params)


def customer_value(summary: pd.DataFrame, rules: LifecycleParams, small_n: int, model: str = DEFAULT_MODEL,
                   occasions: pd.DataFrame | None = None) -> CustomerValue | Unavailable:
    """Fit the purchase model ``model`` (a key of :data:`PURCHASE_MODELS` or
    :data:`OCCASION_MODELS`) and Gamma-Gamma on a weekly ``customer_summary`` and value every
    customer; BG/BB is fitted on ``occasions``, the :func:`features.occasion_summary` of the
    same customers at ``rules.purchase_occasions``, and its CLV is in occasions (period
    :func:`occasion_days`; see :class:`CustomerValue`). Unavailable with fewer than
    ``small_n`` buyers or repeat buyers, or when a fit did not converge (then ``values``
    holds ``warnings``: model name -> its ``warnings_``)."""
    repeat_buyers = len(clv.GammaGammaModel.repeat_buyers(summary))
    if len(summary) < small_n:
        return Unavailable.too_few("lifecycle.what.purchase_model", len(summary), small_n, "lifecycle.of.buyers")
    if repeat_buyers < small_n:
        return Unavailable.too_few("lifecycle.what.gamma_gamma", repeat_buyers, small_n,
                                   "lifecycle.of.repeat_buyers")
    on_occasions = model in OCCASION_MODELS
    if on_occasions:
        history = occasions.loc[summary.index]
        purchases = OCCASION_MODELS[model]().fit(history)
    else:
        history = summary
        purchases = PURCHASE_MODELS[model]().fit(summary)
    gg = clv.GammaGammaModel().fit(summary)
    fits = {MODEL_NAMES[model]: purchases, MODEL_NAMES["gamma_gamma"]: gg}
    problem = _degenerate(fits)
    if problem:
        return Unavailable("lifecycle.unavailable.degenerate", {
            "models": problem, "warnings": {k: list(m.warnings_) for k, m in fits.items() if not m.converged_}})
    if on_occasions:
        period = occasion_days(rules.purchase_occasions)
        window = churn_window_occasions(rules.holdout_weeks, rules.purchase_occasions)
        # DiscountedClv reads the age from T: the whole occasions observed
        valued, spend = history.assign(T=history["n_periods"]), _SpendPerPurchase(gg, summary)
    else:
        period, window, valued, spend = WEEK, rules.holdout_weeks, summary, gg
    horizon = rules.clv_horizon_months * clv.DAYS_PER_MONTH / period
    uncertainty = clv.clv_uncertainty(purchases, spend, valued, rules.clv_horizon_months,
                                      rules.annual_discount_rate, period_days=period)
    value = uncertainty.per_customer().set_index(summary.index)
    table = pd.DataFrame({
        "p_alive": purchases.probability_alive(history),
        "expected_purchases": purchases.expected_purchases(horizon, history),
        "expected_spend": gg.expected_spend(summary),
        "clv": value["clv"], "clv_ci_low": value["clv_ci_low"], "clv_ci_high": value["clv_ci_high"],
        "value_if_retained": uncertainty.if_retained,
        "p_no_purchase": purchases.probability_no_purchase(window, history),
    }, index=summary.index)
    total = clv.ClvTotal(uncertainty.total(), rules.clv_horizon_months, rules.annual_discount_rate)
    return CustomerValue(model, purchases, gg, table, uncertainty, total, rules.holdout_weeks, summary)


def spend_frequency_correlation(summary: pd.DataFrame, small_n: int, reps: int = 200,
                                seed: int = 0) -> Estimate | Unavailable:
    """Pearson correlation of the average spend per repeat purchase with the number of repeat
    purchases among repeat buyers, with a bootstrap percentile 95% interval (spend is skewed, so
    no normal-theory interval). Gamma-Gamma assumes the two independent, and then this
    correlation is 0 in expectation (the mean of ``x`` purchases has the same expectation for
    every ``x``; a rank correlation would not be). Unavailable with fewer than ``small_n``
    repeat buyers or when either is constant."""
    rep = clv.GammaGammaModel.repeat_buyers(summary)
    n = len(rep)
    if n < max(small_n, 3):
        return Unavailable.too_few("lifecycle.what.spend_correlation", n, max(small_n, 3), "lifecycle.of.repeat_buyers")
    z, x = rep["monetary_value"].to_numpy(float), rep["frequency"].to_numpy(float)
    if z.std() == 0 or x.std() == 0:
        return Unavailable("lifecycle.unavailable.spend_correlation_constant", {"n": n})
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(reps):
        i = rng.integers(0, n, n)
        boot.append(np.corrcoef(z[i], x[i])[0, 1])
    lo, hi = np.nanpercentile(boot, [2.5, 97.5])
    return Estimate(float(np.corrcoef(z, x)[0, 1]), float(np.nanstd(boot)), float(lo), float(hi), n,
                    "Pearson, bootstrap percentile interval")


@dataclass(frozen=True)
class ChurnRanking:
    """How well scores rank "no purchase in the holdout window": ``table`` (AUC and top-decile
    lift per score and each score's AUC minus the last score's, the plain rule, bootstrap 95%
    intervals), ``roc`` points, ``n`` customers scored and their ``lapse_rate``."""

    table: pd.DataFrame
    roc: pd.DataFrame
    n: int
    lapse_rate: Estimate


@dataclass(frozen=True)
class ModelChoice:
    """Which purchase model (a key of :data:`PURCHASE_MODELS` or :data:`OCCASION_MODELS`) the
    CLV, P(alive) and churn list use, and why. ``reason``: ``forced`` (params),
    ``holdout_error`` (the lowest holdout error), ``near_tie_bic`` (holdout errors within
    :data:`NEAR_TIE` of the lowest: the lowest BIC among them), ``bic`` (no holdout error to
    compare: the lowest BIC), ``only_converged`` (the others did not converge) or ``default``
    (no holdout comparison: :data:`DEFAULT_MODEL`); ``forced_failed``: the model params
    forced, when it did not converge and the rule chose."""

    model: str
    reason: str
    forced_failed: str | None = None


def choose_model(comparison: pd.DataFrame, forced: str) -> ModelChoice:
    """The purchase model to use, from the holdout comparison (:attr:`HoldoutCheck.comparison`,
    at least one model converged) and ``params.lifecycle.purchase_model`` (``auto`` or a key).

    Never a model that did not converge. Forced: that model. Otherwise the lowest absolute
    error of the holdout total; errors within :data:`NEAR_TIE` of the lowest are a tie, broken
    by the lowest BIC (the models have the same number of parameters, so the higher calibration
    likelihood). BIC compares likelihoods of the same observations only: with a ``counts``
    column (:func:`model_comparison`), a tie is among the models counting what the lowest
    error's model counts (BG/BB's likelihood is of occasions, the others' of purchase days),
    and without any holdout error the lowest BIC is sought among the purchase-day models."""
    ok = comparison[comparison["converged"]].set_index("model")
    if forced != "auto" and forced in ok.index:
        return ModelChoice(forced, "forced")
    failed = None if forced == "auto" else forced
    if len(ok) == 1:
        return ModelChoice(str(ok.index[0]), "only_converged", failed)
    counts = ok["counts"] if "counts" in ok else pd.Series("purchase_days", index=ok.index)
    error = ok["error"].abs()
    if not error.notna().any():
        days = ok[counts == "purchase_days"]
        return ModelChoice(str((days if len(days) else ok)["bic"].idxmin()), "bic", failed)
    best = error.idxmin()
    close = ok[(error <= error.min() + NEAR_TIE) & (counts == counts[best])]
    if len(close) > 1:
        return ModelChoice(str(close["bic"].idxmin()), "near_tie_bic", failed)
    return ModelChoice(str(best), "holdout_error", failed)


def default_choice(forced: str) -> ModelChoice:
    """The choice without a holdout comparison: the forced model, else :data:`DEFAULT_MODEL`."""
    return ModelChoice(DEFAULT_MODEL, "default") if forced == "auto" else ModelChoice(forced, "forced")


@dataclass(frozen=True)
class HoldoutCheck:
    """Calibration / holdout validation and comparison of the purchase models and of the
    churn-risk ranking.

    ``models``: each purchase model fitted on the calibration period (key -> fitted model,
    converged or not); ``comparison``: one row per model (:func:`model_comparison`);
    ``choice``: :func:`choose_model`; ``by_frequency``: per converged model with a forecast
    (``model``) and calibration repeat purchases (``bucket``): customers, mean actual and
    predicted holdout purchases (for BG/BB: by calibration occasions with a purchase, and
    occasions with a purchase in the holdout occasions); ``tracking``: weekly cumulative repeat
    purchases, actual and predicted by ``tracking_model``: the chosen model, or, when that is
    BG/BB (which counts occasions, not purchase days), the purchase-day model the rule prefers
    (None, and no tracking, when none converged); ``ranking``: how well each converged
    model's churn score and the plain rule find the customers who bought nothing in the
    holdout window.
    """

    calibration_end: date
    models: dict
    comparison: pd.DataFrame
    choice: ModelChoice
    by_frequency: pd.DataFrame
    tracking: pd.DataFrame | None
    tracking_model: str | None
    ranking: ChurnRanking | Unavailable

    @property
    def model(self) -> PurchaseModel:
        """The chosen model, as fitted on the calibration period."""
        return self.models[self.choice.model]


def _frequency_buckets(summary: pd.DataFrame, predicted: pd.Series, top: int = 7) -> pd.DataFrame:
    b = summary["frequency"].clip(upper=top).astype(int)
    out = pd.DataFrame({"bucket": b, "actual": summary["frequency_holdout"], "predicted": predicted})
    out = out.groupby("bucket").agg(customers=("actual", "size"), actual=("actual", "mean"),
                                    predicted=("predicted", "mean")).reset_index()
    out["bucket"] = out["bucket"].astype(str).where(out["bucket"] < top, f"{top}+")
    return out


def _tracking(model: PurchaseModel, daily: pd.DataFrame, calibration_end: date) -> pd.DataFrame:
    """Weekly cumulative repeat purchases of the calibration customers, actual vs the model's
    expectation (sum over first-purchase days of customers x E[X(t - first day)])."""
    cal = pd.Timestamp(calibration_end)
    firsts = daily[(daily["date"] <= cal) & (daily["first_purchases"] > 0)]
    weeks = pd.date_range(daily["date"].min(), daily["date"].max(), freq="7D")
    age = (weeks.to_numpy()[:, None] - firsts["date"].to_numpy()[None, :]) / np.timedelta64(1, "D") / WEEK
    expected = model.expected_purchases_new_customer(np.clip(age, 0, None))
    predicted = (expected * firsts["first_purchases"].to_numpy()[None, :]).sum(axis=1)
    actual = daily.set_index("date")["repeat_purchases"].cumsum().reindex(weeks, method="ffill").fillna(0)
    return pd.DataFrame({"week": weeks, "actual": actual.to_numpy(), "predicted": predicted,
                         "period": np.where(weeks <= cal, "calibration", "holdout")})


class _ScoreRanking:
    """AUC and top-decile lift of one score for the outcome ``y``, on resamples of the scored
    customers given as indices ``i``: equal to computing them on ``y[i], score[i]``, but from the
    resample's counts per distinct score, without sorting each resample. The AUC is the
    Mann–Whitney U / (n1 n0) (ties count half); the top decile keeps tied scores in the
    resample's order, as a stable sort does."""

    def __init__(self, y: np.ndarray, score: np.ndarray, share: float = 0.1):
        self.y = y
        values, self.level = np.unique(score, return_inverse=True)  # distinct scores, ascending
        self.levels = len(values)
        self.top = max(1, round(share * len(y)))

    def on(self, i: np.ndarray) -> tuple[float, float]:
        """(AUC, top-decile lift) of the resample ``i``; NaN where it has no positive, and an
        AUC of NaN where it has no negative."""
        level, y = self.level[i], self.y[i]
        neg, pos = np.bincount(2 * level + y, minlength=2 * self.levels).reshape(-1, 2).T
        every = neg + pos
        n1, n0 = int(pos.sum()), int(neg.sum())
        if not n1:
            return float("nan"), float("nan")
        auc = float(np.sum(pos * (np.cumsum(neg) - 0.5 * neg)) / (n1 * n0)) if n0 else float("nan")
        from_top = np.cumsum(every[::-1])
        cut = self.levels - 1 - np.searchsorted(from_top, self.top)  # the score level the top decile ends in
        above = int(every[cut + 1:].sum())
        hits = int(pos[cut + 1:].sum() + y[level == cut][: self.top - above].sum())
        return auc, float((hits / self.top) / (n1 / len(i)))


def _ranking(y: np.ndarray, scores: dict[str, np.ndarray], reps: int = 200, seed: int = 0) -> pd.DataFrame:
    """AUC and top-decile lift per score, and each score's AUC minus the last score's (metric
    ``auc_difference``), with paired bootstrap 95% intervals (resamples that hold one class only
    are left out)."""
    rng = np.random.default_rng(seed)
    names = list(scores)
    ranking = {k: _ScoreRanking(y, s) for k, s in scores.items()}
    point = {k: r.on(np.arange(len(y))) for k, r in ranking.items()}
    boot = {k: [] for k in names}
    for _ in range(reps):
        i = rng.integers(0, len(y), len(y))
        for k, r in ranking.items():
            boot[k].append(r.on(i))
    rows = []
    for k in names:
        b = np.array(boot[k])
        for j, metric in enumerate(("auc", "top_decile_lift")):
            lo, hi = np.nanpercentile(b[:, j], [2.5, 97.5])
            rows.append({"score": k, "metric": metric, "estimate": point[k][j], "ci_low": lo,
                         "ci_high": hi, "n": len(y)})
    base = names[-1]
    for k in names[:-1]:
        diff = np.array(boot[k])[:, 0] - np.array(boot[base])[:, 0]
        lo, hi = np.nanpercentile(diff, [2.5, 97.5])
        rows.append({"score": k, "metric": "auc_difference", "estimate": point[k][0] - point[base][0],
                     "ci_low": lo, "ci_high": hi, "n": len(y)})
    return pd.DataFrame(rows)


def churn_ranking(y: np.ndarray, scores: dict[str, np.ndarray], small_n: int) -> ChurnRanking | Unavailable:
    """AUC, top-decile lift and ROC of each score for the outcome ``y`` (1: no purchase in the
    window), and each score's AUC minus the last score's (:func:`_ranking`); unavailable with
    fewer than ``small_n`` customers or one outcome only."""
    if len(y) < small_n:
        return Unavailable.too_few("lifecycle.what.ranking", len(y), small_n, "lifecycle.of.holdout_customers")
    if y.min() == y.max():
        outcome = "lifecycle.outcome.bought_nothing" if y[0] else "lifecycle.outcome.bought_again"
        return Unavailable("lifecycle.unavailable.ranking_one_outcome", {"n": len(y), "outcome": Term(outcome)})
    roc = []
    for k, s in scores.items():
        fpr, tpr, _ = roc_curve(y, s)
        roc.append(pd.DataFrame({"score": k, "false_positive_rate": fpr, "true_positive_rate": tpr}))
    return ChurnRanking(_ranking(y, scores), pd.concat(roc, ignore_index=True), len(y),
                        proportion(int(y.sum()), len(y)))


def model_comparison(models: dict, calibration: pd.DataFrame, predicted: dict,
                     ranking: ChurnRanking | Unavailable, occasions: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per purchase model (key -> fitted on ``calibration``, or for the
    :data:`OCCASION_MODELS` on ``occasions``, the occasion summary of the same customers):
    ``model``, ``counts`` (what the model counts: ``purchase_days``, or ``occasions`` with a
    purchase, whose actual holdout count is ``occasions["frequency_holdout"]``), ``converged``,
    calibration ``log_likelihood``, ``parameters`` (k), ``n`` (customers),
    ``bic = k ln n - 2 LL``; the holdout total ``predicted`` (sum of each customer's expected
    purchases in the window; ``predicted``: key -> per-customer Series, converged models only)
    and ``actual``, ``error`` = predicted / actual - 1 with a 95% interval for the chance in the
    customers' holdout purchases (``error_se`` = sqrt of the sum of squared customer residuals /
    actual; customers independent, model parameters taken as known); the churn score's ``auc``
    and its AUC minus the recency rule's (``auc_difference``), bootstrap 95% intervals."""
    auc = ranking.table.set_index(["score", "metric"]) if isinstance(ranking, ChurnRanking) else None
    rows = []
    for key, m in models.items():
        on_occasions = key in OCCASION_MODELS
        actual = (occasions if on_occasions else calibration)["frequency_holdout"]
        k, n = len(m.names), m.n_customers_
        row = {"model": key, "counts": "occasions" if on_occasions else "purchase_days",
               "converged": bool(m.converged_), "log_likelihood": m.log_likelihood_,
               "parameters": k, "n": n, "bic": k * np.log(n) - 2 * m.log_likelihood_}
        if key in predicted:
            total = float(actual.sum())
            pred = float(predicted[key].sum())
            se = float(np.sqrt(((actual - predicted[key]) ** 2).sum())) / total if total else np.nan
            error = pred / total - 1 if total else np.nan
            row |= {"predicted": pred, "actual": total, "error": error, "error_se": se,
                    "error_ci_low": error - Z95 * se, "error_ci_high": error + Z95 * se}
        if auc is not None and (key, "auc") in auc.index:
            a, d = auc.loc[(key, "auc")], auc.loc[(key, "auc_difference")]
            row |= {"auc": a["estimate"], "auc_ci_low": a["ci_low"], "auc_ci_high": a["ci_high"],
                    "auc_difference": d["estimate"], "auc_difference_ci_low": d["ci_low"],
                    "auc_difference_ci_high": d["ci_high"], "ranked": int(a["n"])}
        rows.append(row)
    columns = ["model", "counts", "converged", "log_likelihood", "parameters", "n", "bic", "predicted", "actual",
               "error", "error_se", "error_ci_low", "error_ci_high", "auc", "auc_ci_low", "auc_ci_high",
               "auc_difference", "auc_difference_ci_low", "auc_difference_ci_high", "ranked"]
    return pd.DataFrame(rows).reindex(columns=columns)


def holdout_check(calibration: pd.DataFrame, daily: pd.DataFrame, calibration_end: date,
                  rules: LifecycleParams, small_n: int,
                  occasions: pd.DataFrame | None = None) -> HoldoutCheck | Unavailable:
    """Fit every purchase model once on the calibration period, compare them with what happened
    in the holdout and choose one (:func:`choose_model`, ``rules.purchase_model``).

    ``calibration``: ``customer_summary(..., calibration_end=...)`` (weekly, with holdout
    columns); ``daily``: ``features.purchase_day_counts(..., cohort_end=calibration_end)``;
    ``occasions`` (with discrete purchase occasions): ``features.occasion_summary(...,
    calibration_end=...)`` of the same customers, on which BG/BB is fitted too; it forecasts
    the occasions with a purchase among each customer's holdout occasions (``n_holdout``; no
    forecast when the holdout holds no whole occasion).
    The ranking is scored on customers active at the calibration end (silent for at most
    ``lapsed_after_days``); the outcome is no purchase in the holdout window. Each model's score
    is P(no purchase in the window; for BG/BB in the holdout occasions); the plain rule ranks
    by weeks since the last purchase.
    Unavailable with fewer than ``small_n`` calibration customers or when no model converged.
    """
    if len(calibration) < small_n:
        return Unavailable.too_few("lifecycle.what.holdout_model", len(calibration), small_n,
                                   "lifecycle.of.buyers_before_holdout")
    models = {key: model().fit(calibration) for key, model in PURCHASE_MODELS.items()}
    if occasions is not None:
        occasions = occasions.loc[calibration.index]
        models |= {key: model().fit(occasions) for key, model in OCCASION_MODELS.items()}
    fitted = {key: m for key, m in models.items() if m.converged_}
    if not fitted:
        return Unavailable("lifecycle.unavailable.holdout_degenerate")
    window = float(calibration["duration_holdout"].iloc[0])
    silence_weeks = calibration["T"] - calibration["recency"]
    active = calibration[silence_weeks * WEEK <= rules.lapsed_after_days]
    y = (active["frequency_holdout"] == 0).to_numpy(int)
    predicted, scores = {}, {}
    for key, m in fitted.items():
        if key in PURCHASE_MODELS:
            predicted[key] = m.expected_purchases(window, calibration)
            scores[key] = m.probability_no_purchase(window, active).to_numpy()
        elif occasions["n_holdout"].gt(0).any():
            predicted[key] = m.expected_purchases(occasions["n_holdout"].to_numpy(), occasions)
            ranked = occasions.loc[active.index]
            scores[key] = m.probability_no_purchase(ranked["n_holdout"].to_numpy(), ranked).to_numpy()
    scores[RULE_SCORE] = (active["T"] - active["recency"]).to_numpy()
    ranking = churn_ranking(y, scores, small_n)
    comparison = model_comparison(models, calibration, predicted, ranking, occasions)
    choice = choose_model(comparison, rules.purchase_model)
    buckets = [_frequency_buckets(occasions if key in OCCASION_MODELS else calibration, p).assign(model=key)
               for key, p in predicted.items()]
    columns = ["model", "bucket", "customers", "actual", "predicted"]
    by_frequency = pd.concat(buckets, ignore_index=True)[columns] if buckets else pd.DataFrame(columns=columns)
    days = comparison[comparison["counts"] == "purchase_days"]
    if choice.model in PURCHASE_MODELS:
        tracking_model = choice.model
    else:
        tracking_model = choose_model(days, "auto").model if days["converged"].any() else None
    tracking = _tracking(fitted[tracking_model], daily, calibration_end) if tracking_model else None
    return HoldoutCheck(calibration_end, models, comparison, choice, by_frequency, tracking, tracking_model, ranking)


# -- churn-risk warning ------------------------------------------------------------------------

def churn_risk(values: pd.DataFrame, stage_now: pd.Series, stage_before: pd.Series,
               rules: LifecycleParams) -> pd.DataFrame:
    """Valuable active customers at risk, ranked by value at risk.

    Valuable: ``value_if_retained`` at or above the ``churn_value_quantile`` of active customers
    (not lapsed). At risk: stage ``at_risk`` or P(alive) below ``at_risk_p_alive``.
    ``value_at_risk`` = value_if_retained − clv (the expected value lost because the customer may
    already be gone). Returns customer_id and scores only.
    """
    v = values.join(stage_now.rename("stage"), how="inner")
    active = v[v["stage"].isin(ACTIVE_STAGES)]
    cut = active["value_if_retained"].quantile(rules.churn_value_quantile)
    before = stage_before.reindex(active.index).astype(object)
    flagged = active[(active["value_if_retained"] >= cut)
                     & ((active["stage"] == "at_risk") | (active["p_alive"] < rules.at_risk_p_alive))]
    out = flagged.assign(value_at_risk=flagged["value_if_retained"] - flagged["clv"],
                         became_at_risk=((flagged["stage"] == "at_risk")
                                         & (before.reindex(flagged.index) != "at_risk")).astype(int))
    out = out.sort_values(["value_at_risk", "value_if_retained"], ascending=False)
    out.insert(0, "risk_rank", np.arange(1, len(out) + 1))
    return out.rename_axis("customer_id").reset_index()[CHURN_COLUMNS]


def churn_list(value: CustomerValue | Unavailable, stages: StageHistory,
               rules: LifecycleParams) -> pd.DataFrame | Unavailable:
    """The churn-risk list (:func:`churn_risk`), or why there is none: no CLV, or nobody flagged."""
    if isinstance(value, Unavailable):
        return Unavailable("lifecycle.unavailable.churn_no_clv")
    out = churn_risk(value.table, stages.current()["stage"], stages.previous_stage(), rules)
    if out.empty:
        return Unavailable("lifecycle.unavailable.churn_empty")
    return out


# -- the whole analysis ------------------------------------------------------------------------

@dataclass(frozen=True)
class LifecycleResult:
    """Everything the lifecycle analysis of one business unit estimates, numbers only; a part
    this unit's data cannot support is a :class:`custlib.stats.Unavailable` saying why.

    ``stage_mix``: :meth:`StageHistory.stage_mix`; ``stage_value``: expected CLV per stage of
    the customers in it (``stage, estimate, se, ci_low, ci_high, n``, currency, delta method);
    ``transitions`` pooled over the last ``transition_months`` month-to-month moves;
    ``retention``: :func:`pooled_retention`; ``lapse``: median days to lapse of all customers
    followed; ``purchase_model``: which purchase model the CLV, P(alive) and churn list use and
    why (:func:`choose_model`); ``spend_correlation``: :func:`spend_frequency_correlation`;
    ``value_at_risk``: what the customers on the churn list are worth if retained
    (sum of CLV / P(alive) over the horizon, currency, delta method)."""

    stages: StageHistory
    stage_mix: pd.DataFrame
    stage_value: pd.DataFrame | Unavailable
    open_leads: int | Unavailable
    transitions: pd.DataFrame | Unavailable
    transition_months: int
    cohorts: pd.DataFrame | Unavailable
    retention: pd.DataFrame | Unavailable
    lapse: Estimate | Unavailable
    lapse_by_channel: LapseCurves | Unavailable
    lapse_by_tier: LapseCurves | Unavailable
    purchase_model: ModelChoice
    value: CustomerValue | Unavailable
    spend_correlation: Estimate | Unavailable
    holdout: HoldoutCheck | Unavailable
    churn: pd.DataFrame | Unavailable
    value_at_risk: Estimate | Unavailable
    funnel: funnel.Funnel | Unavailable

    def output_table(self) -> pd.DataFrame:
        """One row per customer: customer_id, stage, p_alive, expected_purchases, expected_spend,
        clv with its 95% interval clv_ci_low, clv_ci_high (the model columns empty without CLV)."""
        cols = ["p_alive", "expected_purchases", "expected_spend", "clv", "clv_ci_low", "clv_ci_high"]
        values = self.value.table[cols] if self.has_value else pd.DataFrame(columns=cols, dtype=float)
        out = self.stages.current()[["stage"]].join(values, how="left")
        out["stage"] = out["stage"].astype(str)
        return out.rename_axis("customer_id").reset_index()

    @property
    def has_value(self) -> bool:
        return isinstance(self.value, CustomerValue)

    @property
    def ranking(self) -> ChurnRanking | Unavailable:
        """The holdout check of the churn ranking, or why there is none."""
        if isinstance(self.holdout, HoldoutCheck):
            return self.holdout.ranking
        return Unavailable("lifecycle.unavailable.ranking_no_holdout")

    @property
    def n_staged(self) -> int:
        """Customers and open leads at the observation end."""
        return int(self.stage_mix["entities"].sum())

    @property
    def buyers(self) -> int:
        """Customers with at least one purchase by the observation end."""
        return int((self.stages.current()["purchase_days"] > 0).sum())


def _stage_value(value: CustomerValue, stages: StageHistory) -> pd.DataFrame:
    """Expected CLV per stage (buyers only; prospects have none) with delta-method intervals."""
    stage = stages.current()["stage"].reindex(value.table.index)
    rows = [{"stage": str(s), **value.total_of(ids.index).to_dict()}
            for s, ids in stage.groupby(stage, observed=True)]
    return pd.DataFrame(rows)


def analyse(data) -> LifecycleResult:
    """Run the lifecycle analysis of one unit (``sources.UnitData``); parts its data cannot
    support (no leads, too few customers, no repeat buyers, ...) are :class:`Unavailable`."""
    p = data.params
    rules, small = p.lifecycle, p.small_sample_n
    end = p.observation_end
    tx = data.transactions
    customers = data.customers.select("customer_id", "signup_date", "acquisition_channel").execute()
    leads = data.leads.execute()
    start, _ = data.period()

    cal_end = end - timedelta(weeks=rules.holdout_weeks)
    occasion = rules.purchase_occasions
    on_occasions = occasion != "continuous"
    calibration = features.customer_summary(tx, end, calibration_end=cal_end)
    cal_occasions = features.occasion_summary(tx, end, occasion, calibration_end=cal_end) if on_occasions else None
    daily = features.purchase_day_counts(tx, end, cal_end)
    holdout = holdout_check(calibration, daily, cal_end, rules, small, cal_occasions)
    choice = holdout.choice if isinstance(holdout, HoldoutCheck) else default_choice(rules.purchase_model)

    summary = features.customer_summary(tx, end)
    occasions = features.occasion_summary(tx, end, occasion) if on_occasions else None
    value = customer_value(summary, rules, small, choice.model, occasions)
    model = value.purchases if isinstance(value, CustomerValue) else None
    stages = stage_history(tx, customers, leads, end, rules, model=model, start=start, purchase_occasions=occasion)
    cohorts = cohort_retention(tx, end, start)

    lapses = lapse_counts(features.lapse_times(tx, end, rules.lapsed_after_days), customers, p.category_tiers)

    if data.has("leads"):
        open_leads = stages.open_leads
        fun = funnel.sales_funnel(leads, end)
    else:
        open_leads = Unavailable.needs_table("leads", "lifecycle.what.prospect_leads")
        fun = Unavailable.needs_table("leads", "lifecycle.what.funnel")
    churn = churn_list(value, stages, rules)
    stage_value = _stage_value(value, stages) if isinstance(value, CustomerValue) else value
    if isinstance(churn, pd.DataFrame):
        at_risk = value.total_of(churn["customer_id"], if_retained=True)
    else:
        at_risk = churn
    transitions = stages.transitions(TRANSITION_MONTHS)
    return LifecycleResult(
        stages=stages, stage_mix=stages.stage_mix(), stage_value=stage_value, open_leads=open_leads,
        transitions=transitions, transition_months=min(TRANSITION_MONTHS, len(stages.snapshots) - 1),
        cohorts=cohorts,
        retention=pooled_retention(cohorts) if isinstance(cohorts, pd.DataFrame) else cohorts,
        lapse=median_time_to_lapse(lapses),
        lapse_by_channel=time_to_lapse(lapses, "acquisition_channel", small),
        lapse_by_tier=time_to_lapse(lapses, "first_order_tier", small),
        purchase_model=choice, value=value, spend_correlation=spend_frequency_correlation(summary, small),
        holdout=holdout, churn=churn, value_at_risk=at_risk, funnel=fun)
