"""Loyalty-programme impact (客户忠诚度计划: points 积分 and VIP membership VIP会员): what membership
changes beyond the fact that good customers are the ones who join. Numbers only: the report's
wording, tables and files come from :mod:`custlib.present.loyalty`.

Members are not a random sample: heavier buyers join more often, so the member vs non-member
gap (:func:`naive_gap`) mixes the programme's effect with who joins. The estimates that answer
the question compare customers who enrolled in a given month with customers of the same tier
and the same acquisition month who had not enrolled yet:

* staggered difference-in-differences around enrollment on the customer x month panel
  (:func:`custlib.causal.did.cohort_did`): one comparison per enrollment cohort and event month,
  an event-study curve (leads = pre-trend check) and an overall effect;
* inverse-probability weighting, nearest-neighbour matching and doubly robust AIPW
  (:func:`custlib.causal.att.estimate_att`) on pre/post changes of :func:`cohort_snapshots`
  (with AIPW the doubly robust DiD of Sant'Anna & Zhao 2020).

Effects are absolute (orders per customer-month, currency per customer-month, proportions)
and relative to the members' counterfactual level (what they would have done without the
programme), which is how a purchase-rate uplift is usually stated.

Scale: the engine aggregates transactions to the customer-months with activity; they are held
once per analysis as running sums per customer and month (:class:`PanelGrid`, about 20 bytes
per customer-month), the regressions run on sufficient statistics
(:mod:`custlib.causal.did`, :func:`naive_gap`), and the propensity methods see at most
:data:`MAX_CONTROLS` sampled controls per enrollment cohort (:func:`cohort_snapshots`). The
functions take that grid or, for small data, a panel frame (:func:`panel_grid`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from threadpoolctl import threadpool_limits

from custlib import features
from custlib.causal import did
from custlib.causal.att import ATTMethod, ATTResult, estimate_att
from custlib.causal.did import CohortDiD, PanelGrid
from custlib.params import LoyaltyParams, SegmentationParams
from custlib.stats import Estimate, Term, Unavailable

TIERS = ("points", "vip")
ControlGroup = Literal["later_members", "all_not_yet_enrolled"]
DID_CONTROLS: dict[str, did.ControlGroup] = {"later_members": "later_treated",
                                             "all_not_yet_enrolled": "not_yet_treated"}
OTHER_CONTROL_GROUP: dict[str, ControlGroup] = {"later_members": "all_not_yet_enrolled",
                                                "all_not_yet_enrolled": "later_members"}
PANEL_OUTCOMES = ("orders", "spend", "gross_sales", "active")
STATIC_COVARIATES = ("acquisition_channel", "customer_type", "region", "age", "gender", "income_band")
PRE_COVARIATES = ("pre_orders", "pre_spend", "pre_order_value", "last3_orders", "active_share",
                  "lifetime_orders", "recency_months", "tenure_months")
NEW_SINCE_LAUNCH = "new_since_launch"
MAX_CONTROLS = 15_000  # controls per enrollment cohort in the propensity snapshots (sampled above)


# -- inputs ---------------------------------------------------------------------------------

def customer_frame(panel: pd.DataFrame, members: pd.DataFrame,
                   attributes: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per buyer in ``panel``: ``first_month``, ``enrolled_month`` (NaT if not a member),
    ``tier`` (None if not a member) and, if given, the customer ``attributes``. Indexed by
    ``customer_id`` (sorted); members who never bought are left out (they have no behaviour to
    compare). ``panel``: dense or compact (:func:`custlib.features.customer_month_panel`).
    """
    first = panel.groupby("customer_id", observed=True)["first_month"].first()
    first = pd.Series(did.month_start(did.month_number(first)), index=first.index.astype(object), name="first_month")
    out = first.sort_index().to_frame()
    m = members.set_index("customer_id")
    out["enrolled_month"] = pd.to_datetime(m["enrolled_date"]).dt.to_period("M").dt.to_timestamp().reindex(out.index)
    out["tier"] = m["tier"].reindex(out.index).astype(object).where(out["enrolled_month"].notna(), None)
    if attributes is not None:
        out = out.join(attributes.set_index("customer_id"), how="left")
    return out


@dataclass(frozen=True)
class LoyaltyInputs:
    """The panel grid and the per-customer frame of one unit (see :func:`load_inputs`)."""

    grid: PanelGrid
    customers: pd.DataFrame

    @property
    def launch(self) -> pd.Timestamp:
        """Programme launch month, taken as the first enrollment month."""
        return self.customers["enrolled_month"].min()


def load_inputs(data) -> LoyaltyInputs:
    """Panel grid of :data:`PANEL_OUTCOMES` (the customer-months with activity aggregated in the
    engine, :func:`custlib.features.customer_month_panel`), members and the non-personal customer
    attributes (text as categories) of one unit (a :class:`custlib.sources.UnitData`)."""
    p = data.params
    start = data.period()[0]
    panel = features.customer_month_panel(data.transactions, p.observation_end, start, zeros=False)
    members = data.loyalty_members.select("customer_id", "enrolled_date", "tier").execute()
    attributes = data.customers.select("customer_id", *STATIC_COVARIATES).to_pyarrow().to_pandas(
        strings_to_categorical=True, memory_pool=pa.system_memory_pool())
    customers = customer_frame(panel, members, attributes.assign(customer_id=attributes["customer_id"].astype(object)))
    grid = PanelGrid.build(panel, customers, PANEL_OUTCOMES, months=(start, p.observation_end))
    return LoyaltyInputs(grid, customers)


def panel_grid(panel: pd.DataFrame | PanelGrid, customers: pd.DataFrame) -> PanelGrid:
    """``panel`` if it is a :class:`PanelGrid` (as :func:`load_inputs` builds once per unit), else
    the grid of :data:`PANEL_OUTCOMES` of a :func:`custlib.features.customer_month_panel` frame."""
    return panel if isinstance(panel, PanelGrid) else PanelGrid.build(panel, customers, PANEL_OUTCOMES)


# -- the naive gap ----------------------------------------------------------------------------


def naive_gap(panel: pd.DataFrame | PanelGrid, customers: pd.DataFrame,
              outcome: str = "orders") -> pd.DataFrame | Unavailable:
    """Members' mean monthly ``outcome`` after enrollment vs never-enrolled customers' mean over the
    same programme months — the comparison that mixes the programme's effect with who joins.

    One row per tier (``all``, ``points``, ``vip``): ``member_mean``, ``non_member_mean``, absolute
    ``gap`` and ``relative_gap`` (members / non-members - 1) with cluster-robust (by customer)
    95% intervals, ``n_members``, ``n_non_members`` (customers). Tiers without member months are
    left out; :class:`Unavailable` without never-enrolled customers or without any member month.

    The regression of the customer-month outcome on a member-month indicator, from per-customer
    sums: the means are the two groups' totals over their months, and each customer's residual
    sum is their score, so the covariance is the cluster-robust OLS one with the usual small-sample
    factor G / (G - 1) x (N - 1) / (N - 2) (statsmodels' ``cov_type="cluster"``)."""
    grid = panel_grid(panel, customers)
    launch = np.nanmin(grid.treated, initial=grid.n_months)
    member = ~np.isnan(grid.treated)
    start = np.where(member, np.nan_to_num(grid.treated) + 1, launch).clip(max=grid.n_months).astype(int)
    total, months = grid.window_sum(outcome, np.arange(len(member)), start, grid.n_months - 1)
    never, member = ~member & (months > 0), member & (months > 0)
    if not never.any() or not member.any():
        return Unavailable("loyalty.unavailable.naive", {"members": int(member.sum()), "never": int(never.sum())})
    rows = []
    for tier in ("all", *TIERS):
        treated = member & ((grid.group == tier) if tier != "all" else True)
        if not treated.any():
            continue
        n0, n1 = months[never].sum(), months[treated].sum()
        mean0 = total[never].sum() / n0
        beta = np.array([mean0, total[treated].sum() / n1 - mean0])
        score0 = total[never] - months[never] * beta[0]
        score1 = total[treated] - months[treated] * beta.sum()
        meat = np.full((2, 2), score1 @ score1)
        meat[0, 0] += score0 @ score0
        bread = np.linalg.inv([[n0 + n1, n1], [n1, n1]])
        g, n = never.sum() + treated.sum(), n0 + n1
        cov = g / (g - 1) * (n - 1) / (n - 2) * bread @ meat @ bread
        n_m, n_n = int(treated.sum()), int(never.sum())
        gap = Estimate.normal(beta[1], np.sqrt(cov[1, 1]), n_m + n_n, "naive_gap")
        rel = did.ratio_estimate(beta, cov, np.array([0.0, 1.0]), np.array([1.0, 0.0]), n_m + n_n, "naive_gap")
        rows.append({"tier": tier, "member_mean": beta[0] + beta[1], "non_member_mean": beta[0],
                     "gap": gap.estimate, "gap_ci_low": gap.ci_low, "gap_ci_high": gap.ci_high,
                     "gap_se": gap.se, "relative_gap": rel.estimate, "relative_se": rel.se,
                     "relative_ci_low": rel.ci_low, "relative_ci_high": rel.ci_high,
                     "n_members": n_m, "n_non_members": n_n})
    return pd.DataFrame(rows)


# -- difference-in-differences on the programme's tiers -----------------------------------------

def cohort_did(panel: pd.DataFrame | PanelGrid, customers: pd.DataFrame, outcome: str = "orders", leads: int = 6,
               lags: int = 12, pre_months: int = 6, control_group: ControlGroup = "later_members",
               event_study: bool = True, tiers: tuple[str, ...] = ("all", *TIERS),
               adjust: bool = True, sample: np.ndarray | None = None) -> CohortDiD | Unavailable:
    """:func:`custlib.causal.did.cohort_did` around enrollment, per tier (``all`` and each tier):
    members against not-yet-enrolled customers (``control_group`` as in params); ``sample``: a
    mask of the customers (rows of ``customers``) to compare."""
    return did.cohort_did(panel_grid(panel, customers), outcome, leads, lags, pre_months, DID_CONTROLS[control_group],
                          event_study, tiers, adjust, sample=sample)


def _order_value_effect(b: np.ndarray, sales: tuple[int, int], orders: tuple[int, int], scale: str) -> float:
    """Members' value per order minus the counterfactual one (``absolute``) or their ratio - 1
    (``relative``), from the positions (ATT, members' level) of monthly sales and orders in ``b``."""
    (a_s, l_s), (a_o, l_o) = sales, orders
    if scale == "absolute":
        return b[l_s] / b[l_o] - (b[l_s] - b[a_s]) / (b[l_o] - b[a_o])
    return (b[l_s] / (b[l_s] - b[a_s])) / (b[l_o] / (b[l_o] - b[a_o])) - 1


def spend_per_order_did(panel: pd.DataFrame | PanelGrid, customers: pd.DataFrame, lags: int = 12, pre_months: int = 6,
                        control_group: ControlGroup = "later_members",
                        tiers: tuple[str, ...] = ("all", *TIERS)) -> pd.DataFrame | Unavailable:
    """Effect of membership on the value per order (gross sales / orders), from the DiD effects on
    monthly gross sales and monthly orders estimated jointly on the same comparisons: relative
    effect = (1 + relative effect on sales) / (1 + relative effect on orders) - 1, absolute =
    members' value per order - counterfactual value per order (currency); delta-method
    intervals. Working from the two monthly totals avoids comparing only customers who happened
    to order after enrollment (membership itself changes who that is). One row per tier and
    scale, as :attr:`CohortDiD.overall`; a tier is left out without a comparison or without
    orders (actual or counterfactual) after enrollment, :class:`Unavailable` if every tier is."""
    fits = did.did_regression(panel_grid(panel, customers), ("gross_sales", "orders"), range(1, lags + 1),
                              pre_months, DID_CONTROLS[control_group], tiers, did.HISTORY_COVARIATES)
    rows, missing = [], []
    for tier in tiers:
        fit = fits[tier]
        if isinstance(fit, Unavailable):
            missing.append(fit)
            continue
        beta, cov, pos = fit
        a_s, l_s, a_o, l_o = pos["att0"], pos["level0"], pos["att1"], pos["level1"]
        if min(beta[l_o], beta[l_o] - beta[a_o], beta[l_s] - beta[a_s]) <= 0:
            missing.append(Unavailable("loyalty.unavailable.spend_per_order", {
                "tier": Term(f"loyalty.tier_term.{tier}"), "actual": f"{beta[l_o]:.3f}",
                "counterfactual": f"{beta[l_o] - beta[a_o]:.3f}"}))
            continue
        n = pos["n_treated"] + pos["n_control"]
        for scale in ("absolute", "relative"):
            fn = partial(_order_value_effect, sales=(a_s, l_s), orders=(a_o, l_o), scale=scale)
            est = did.delta_estimate(fn, beta, cov, n, "cohort_did")
            rows.append({"outcome": "spend_per_order", "tier": tier, "scale": scale, "method": est.method,
                         "estimate": est.estimate, "se": est.se, "ci_low": est.ci_low, "ci_high": est.ci_high,
                         "counterfactual_mean": (beta[l_s] - beta[a_s]) / (beta[l_o] - beta[a_o]),
                         "n_treated": pos["n_treated"], "n_control": pos["n_control"]})
    return pd.DataFrame(rows) if rows else missing[0]


# -- cohort snapshots for the propensity methods -----------------------------------------------

def cohort_snapshots(panel: pd.DataFrame | PanelGrid, customers: pd.DataFrame, pre_months: int = 6,
                     post_months: int = 6, control_group: ControlGroup = "later_members",
                     max_controls: int | None = MAX_CONTROLS) -> pd.DataFrame | Unavailable:
    """One row per enrollment cohort (month g) and customer: the cohort's members (``treated`` = 1)
    and the customers not enrolled by the end of the outcome window g + ``post_months``
    (``treated`` = 0), all with a first order before g. The same customer can be a control for
    several cohorts (cluster on ``customer_id``).

    Pre-enrollment covariates (the ``pre_months`` months before g): ``pre_orders`` and
    ``pre_spend`` per month, ``pre_order_value`` (gross value per order, NaN without orders),
    ``last3_orders`` per month, ``active_share`` of months, ``lifetime_orders`` per month since the
    first order, ``recency_months``, ``tenure_months``, plus the static customer attributes.
    Outcomes over months g+1..g+``post_months`` (the enrollment month is left out): ``post_orders``,
    ``post_spend`` (per month), ``post_order_value`` and the changes ``d_orders``, ``d_spend``,
    ``d_order_value`` (post minus pre); ``still_active``: any order in the last three months of
    the window.

    ``weight``: 1, except in a cohort with more than ``max_controls`` controls (``None``: no
    limit), where a simple random sample of ``max_controls`` of them (seeded by the cohort month)
    stands for all, each weighted by controls / ``max_controls``; the treated are never sampled.
    This bounds the memory of the propensity methods (about 1.5 kB per row) at any unit size. The
    weighted estimates target the comparison with every control and their intervals include the
    sampling noise: standard errors grow by about sqrt((1/T + 1/cap) / (1/T + 1/C)) for T members
    and C controls of a cohort. Units whose cohorts have at most ``max_controls`` controls each
    are not sampled (the demo's 20,000 customers per unit: about 11,000 at most).

    :class:`Unavailable` when no member bought before enrolling in a month followed by
    ``post_months`` observed months.
    """
    grid = panel_grid(panel, customers)
    static = [c for c in STATIC_COVARIATES if c in customers.columns]
    launch = int(np.nanmin(grid.treated))
    parts = []
    for g in range(max(launch, 1), grid.n_months - post_months):
        acquired = grid.first <= g - 1
        treated = acquired & (grid.treated == g)
        if not treated.any():
            continue
        controls = np.flatnonzero(acquired & did.not_yet_treated(grid.treated, g + post_months,
                                                                 DID_CONTROLS[control_group]))
        weight = 1.0
        if max_controls is not None and len(controls) > max_controls:
            weight = len(controls) / max_controls
            controls = np.random.default_rng(grid.start + g).choice(controls, max_controls, replace=False)
        rows = np.union1d(np.flatnonzero(treated), controls)
        pre_lo, post = g - pre_months, (g + 1, g + post_months)
        pre_sales = grid.window_sum("gross_sales", rows, pre_lo, g - 1)[0]
        pre_n = grid.window_sum("orders", rows, pre_lo, g - 1)
        post_sales = grid.window_sum("gross_sales", rows, *post)[0]
        post_orders = grid.window_sum("orders", rows, *post)[0]
        f = pd.DataFrame({
            "customer_id": customers.index[rows], "cohort": did.month_start([grid.start + g])[0],
            "treated": treated[rows].astype(np.int8), "tier": grid.group[rows],
            "pre_orders": pre_n[0] / pre_n[1],
            "pre_spend": grid.window_mean("spend", rows, pre_lo, g - 1),
            "pre_order_value": np.where(pre_n[0] > 0, pre_sales / np.maximum(pre_n[0], 1), np.nan),
            "last3_orders": grid.window_mean("orders", rows, g - 3, g - 1),
            "active_share": grid.window_mean("active", rows, pre_lo, g - 1),
            "lifetime_orders": grid.window_mean("orders", rows, 0, g - 1),
            "recency_months": grid.recency(rows, g),
            "tenure_months": (g - grid.first[rows]).astype(float),
            "post_orders": post_orders / post_months,
            "post_spend": grid.window_mean("spend", rows, *post),
            "post_order_value": np.where(post_orders > 0, post_sales / np.maximum(post_orders, 1), np.nan),
            "still_active": (grid.window_sum("active", rows, g + post_months - 2, g + post_months)[0] > 0
                             ).astype(float),
            "weight": np.where(treated[rows], 1.0, weight),
        })
        for c in static:
            f[c] = customers[c].array.take(rows)
        parts.append(f)
    if not parts:
        return Unavailable("loyalty.unavailable.snapshots", {
            "months": post_months, "members": int((~np.isnan(grid.treated)).sum()),
            "bought_before": int((grid.first < grid.treated).sum())})
    out = pd.concat(parts, ignore_index=True)
    for c in ("orders", "spend", "order_value"):
        out[f"d_{c}"] = out[f"post_{c}"] - out[f"pre_{c}"]
    return out



# -- propensity methods, tiers, segments, retention, ROI ----------------------------------------

def _tier_rows(snapshots: pd.DataFrame, tier: str, control_group: ControlGroup) -> pd.DataFrame:
    """Treated of ``tier`` and their controls: later members of the same tier, plus never-enrolled
    customers for ``"all_not_yet_enrolled"``."""
    s = snapshots
    if tier == "all":
        return s
    same = s["tier"] == tier
    if control_group == "all_not_yet_enrolled":
        return s[same | ((s["treated"] == 0) & (s["tier"] == "none"))]
    return s[same]


def snapshot_covariates(snapshots: pd.DataFrame) -> list[str]:
    """Pre-enrollment covariates of :func:`cohort_snapshots` (behaviour, tenure, channel,
    demographics, cohort month)."""
    return [c for c in (*PRE_COVARIATES, *STATIC_COVARIATES, "cohort") if c in snapshots.columns]


def propensity_effects(snapshots: pd.DataFrame, outcome: str = "d_orders", level: str = "post_orders",
                       methods: tuple[ATTMethod, ...] = ("ipw", "matching", "aipw"),
                       tiers: tuple[str, ...] = ("all", *TIERS),
                       control_group: ControlGroup = "later_members", trim: float = 0.01,
                       neighbours: int = 1, caliper: float | None = 0.2) -> dict[tuple[str, str], ATTResult | Unavailable]:
    """:func:`estimate_att` per tier and method on cohort snapshots (rows clustered by customer,
    matching exact on the cohort month, weighted by the snapshots' sampling ``weight``). Keys are
    ``(tier, method)``; a tier without members or without controls gets :class:`Unavailable`
    (one class)."""
    data = snapshots.copy(deep=False)  # the cohort month as text, without copying the other columns
    data["cohort"] = data["cohort"].astype("category").cat.rename_categories(lambda m: m.strftime("%Y-%m"))
    covariates = snapshot_covariates(data)
    out = {}
    for tier in tiers:
        rows = _tier_rows(data, tier, control_group)
        for m in methods:
            out[tier, m] = estimate_att(rows, "treated", outcome, covariates, m, cluster="customer_id",
                                        level=level, exact=["cohort"] if m == "matching" else None,
                                        neighbours=neighbours, trim=trim, caliper=caliper,
                                        weights="weight" if "weight" in rows else None)
    return out


def att_frame(results: dict[tuple[str, str], ATTResult], outcome: str) -> pd.DataFrame:
    """Tidy rows (outcome, tier, method, scale, estimate, se, ci_low, ci_high, n_treated,
    n_control) from the estimated :func:`propensity_effects` results."""
    rows = [r.summary.assign(tier=tier, outcome=outcome) for (tier, _), r in results.items()
            if isinstance(r, ATTResult)]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def value_tiers_at_launch(transactions, launch: pd.Timestamp, params: SegmentationParams) -> pd.Series:
    """Value tier 客户价值 of each buyer on the eve of the programme launch, a segment no member's
    enrollment can have changed: the segmentation's Pareto tiers (cut points and names from
    ``params``) on net revenue before the launch; customers whose first order came later are
    ``new_since_launch`` (assigned by :func:`segment_effects`)."""
    from custlib.segmentation import value_tiers

    agg = features.customer_aggregates(transactions, (launch - pd.Timedelta(days=1)).date())
    names = tuple(t.name for t in params.value_tiers)
    return value_tiers(agg["revenue"], params.value_tier_cuts, names).rename("segment")


def segment_effects(panel: pd.DataFrame | PanelGrid, customers: pd.DataFrame, segments: pd.Series,
                    outcome: str = "orders", **did_options) -> pd.DataFrame | Unavailable:
    """:func:`cohort_did` (all tiers) within each segment: treated and controls both from the
    segment. ``segments``: segment per customer_id, fixed before enrollment; customers missing
    from it count as ``new_since_launch``. One row per segment and scale; segments whose members
    have no comparison are left out, :class:`Unavailable` if all are."""
    grid = panel_grid(panel, customers)
    seg = segments.reindex(customers.index).fillna(NEW_SINCE_LAUNCH)
    rows = []
    for name in pd.unique(seg):
        sample = (seg == name).to_numpy()
        within = cohort_did(grid, customers, outcome, event_study=False, tiers=("all",), sample=sample,
                            **did_options) if customers["tier"][sample].notna().any() else None
        if isinstance(within, CohortDiD):
            rows.append(within.overall.assign(segment=name))
    if not rows:
        return Unavailable("loyalty.unavailable.segments", {"members": int(customers["tier"].notna().sum()),
                                                            "segments": int(seg[customers["tier"].notna()].nunique())})
    return pd.concat(rows, ignore_index=True)


def retention_effect(panel: pd.DataFrame | PanelGrid, customers: pd.DataFrame, months: int = 12,
                     regular_orders: float = 1.0, pre_months: int = 6,
                     control_group: ControlGroup = "later_members", trim: float = 0.01
                     ) -> pd.DataFrame | Unavailable:
    """Effect of membership on being still active ``months`` after enrollment (any order in the
    last three months of that window), in percentage points, by AIPW on cohort snapshots.

    Measured on regular buyers (at least ``regular_orders`` orders a month in the ``pre_months``
    before enrollment): for them a quarter without an order almost always means they stopped
    buying, so the comparison measures staying rather than buying more often (for an occasional
    buyer, more frequent purchases alone would raise the chance of an order in any quarter).
    One row per tier: estimate, se, ci_low, ci_high (proportions), treated_rate,
    counterfactual_rate, n_treated, n_control; tiers without an estimate are left out,
    :class:`Unavailable` if all are."""
    snaps = cohort_snapshots(panel, customers, pre_months, months, control_group)
    if isinstance(snaps, Unavailable):
        return snaps
    regular = snaps[snaps["pre_orders"] >= regular_orders]
    n_t, n_c = (regular.loc[regular["treated"] == k, "customer_id"].nunique() for k in (1, 0))
    if not (n_t and n_c):
        return Unavailable("loyalty.unavailable.retention", {"orders": f"{regular_orders:g}", "months": pre_months,
                                                             "members": int(n_t), "control": int(n_c)})
    res = propensity_effects(regular, "still_active", "still_active", ("aipw",),
                             control_group=control_group, trim=trim)
    rows = []
    for (tier, _), r in res.items():
        if isinstance(r, Unavailable):
            continue
        e = r.estimate
        rows.append({"tier": tier, "estimate": e.estimate, "se": e.se, "ci_low": e.ci_low, "ci_high": e.ci_high,
                     "treated_rate": r.counterfactual_mean + e.estimate,
                     "counterfactual_rate": r.counterfactual_mean,
                     "n_treated": r.n_treated, "n_control": r.n_control})
    return pd.DataFrame(rows) if rows else res["all", "aipw"]


def member_months(customers: pd.DataFrame, observation_end, months: int = 12) -> pd.Series:
    """Member-months per tier in the last ``months`` calendar months up to ``observation_end``
    (membership counts from the month after enrollment)."""
    end = pd.Timestamp(observation_end).to_period("M")
    start = end - months + 1
    m = customers.dropna(subset=["enrolled_month"])
    first = np.maximum((m["enrolled_month"].dt.to_period("M") + 1).map(lambda p: p.ordinal), start.ordinal)
    n = (end.ordinal - first + 1).clip(lower=0)
    return n.groupby(m["tier"]).sum()


def programme_roi(spend_did: CohortDiD | Unavailable, customers: pd.DataFrame, params: LoyaltyParams,
                  observation_end) -> pd.DataFrame | Unavailable:
    """Does the programme pay for itself? Per tier and member-month: incremental net revenue (the
    DiD effect on monthly spend) x ``margin_rate`` = incremental gross margin, minus the programme
    cost (``cost_per_member_month`` plus the points liability: members' spend x points per
    currency x point value x redemption rate). The interval of the net contribution is that of
    the spend effect (costs are taken as known). ``break_even_uplift``: the relative spend uplift
    at which the margin would just cover the cost; compare with ``estimated_uplift``. Annual
    figures use the member-months of the last 12 months. :class:`Unavailable` without a spend
    effect for any tier (then the reason the spend effect has none); ``break_even_uplift`` is NaN
    when the counterfactual spend is not positive. ``roi`` = net / cost with ``roi_se`` and
    interval; the ``all`` row weights the tiers by member-months and adds their intervals."""
    if isinstance(spend_did, Unavailable):
        return spend_did
    mm = member_months(customers, observation_end)
    rows = []
    for tier in TIERS:
        if mm.get(tier, 0) == 0 or (spend_did.overall["tier"] == tier).sum() == 0:
            continue
        att, rel = spend_did.effect(tier, "absolute"), spend_did.effect(tier, "relative")
        base = float(spend_did.overall.query("tier == @tier")["counterfactual_mean"].iloc[0])
        liability = (base + att.estimate) * params.points_per_currency * params.point_value * params.redemption_rate
        cost = params.cost_per_member_month[tier] + liability
        margin = params.margin_rate * np.array([att.estimate, att.ci_low, att.ci_high])
        net = margin - cost
        rows.append({"tier": tier, "incremental_revenue": att.estimate, "incremental_margin": margin[0],
                     "fixed_cost": params.cost_per_member_month[tier], "points_liability": liability,
                     "cost": cost, "net": net[0], "net_se": params.margin_rate * att.se,
                     "net_ci_low": net[1], "net_ci_high": net[2],
                     "roi": net[0] / cost, "roi_se": params.margin_rate * att.se / cost,
                     "roi_ci_low": net[1] / cost, "roi_ci_high": net[2] / cost,
                     "member_months_12m": int(mm[tier]), "annual_net": net[0] * mm[tier],
                     "annual_net_ci_low": net[1] * mm[tier], "annual_net_ci_high": net[2] * mm[tier],
                     "estimated_uplift": rel.estimate, "estimated_uplift_ci_low": rel.ci_low,
                     "estimated_uplift_ci_high": rel.ci_high,
                     "break_even_uplift": cost / (params.margin_rate * base) if base > 0 else np.nan,
                     "n_treated": int(spend_did.overall.query("tier == @tier")["n_treated"].iloc[0])})
    if not rows:
        return Unavailable("loyalty.unavailable.roi")
    out = pd.DataFrame(rows)
    total = {"tier": "all", "member_months_12m": int(out["member_months_12m"].sum())}
    for c in ("annual_net", "annual_net_ci_low", "annual_net_ci_high"):
        total[c] = out[c].sum()  # tiers' intervals added: conservative
    w = out["member_months_12m"] / out["member_months_12m"].sum()
    for c in ("incremental_revenue", "incremental_margin", "fixed_cost", "points_liability", "cost", "net"):
        total[c] = float((out[c] * w).sum())
    total["net_ci_low"] = total["annual_net_ci_low"] / total["member_months_12m"]
    total["net_ci_high"] = total["annual_net_ci_high"] / total["member_months_12m"]
    total["roi"] = total["net"] / total["cost"]
    annual_cost = float((out["cost"] * out["member_months_12m"]).sum())
    total["roi_se"] = float((out["roi_se"] * out["cost"] * out["member_months_12m"]).sum()) / annual_cost
    total["roi_ci_low"] = total["annual_net_ci_low"] / annual_cost
    total["roi_ci_high"] = total["annual_net_ci_high"] / annual_cost
    total["n_treated"] = int(out["n_treated"].sum())
    return pd.concat([out, pd.DataFrame([total])], ignore_index=True)




# -- the analysis of one unit -------------------------------------------------------------------

@dataclass(frozen=True)
class LoyaltyResult:
    """Every estimate of the loyalty-impact report for one unit (:func:`analyse`); a part the
    unit's data cannot support is an :class:`Unavailable` saying why.

    ``naive``: :func:`naive_gap`; ``did``, ``did_spend``, ``did_active``: :func:`cohort_did` on
    monthly orders (with event study and pre-trend test), spend and active months;
    ``propensity``: :func:`propensity_effects` keyed ``(tier, method)`` against the params'
    comparison group, ``propensity_all_customers``: AIPW against the other comparison group;
    ``order_value``: :func:`spend_per_order_did`; ``retention``: :func:`retention_effect`;
    ``segments``: :func:`segment_effects` by value tier at launch; ``roi``: :func:`programme_roi`;
    ``n_members``: members who bought at least once; ``sampled_controls``: whether some
    enrollment cohort had more than :data:`MAX_CONTROLS` controls, so that the propensity methods
    ran on a weighted random sample of them (:func:`cohort_snapshots`)."""

    params: LoyaltyParams
    currency: str
    small_sample_n: int
    naive: pd.DataFrame | Unavailable
    did: CohortDiD | Unavailable
    did_spend: CohortDiD | Unavailable
    did_active: CohortDiD | Unavailable
    propensity: dict[tuple[str, str], ATTResult | Unavailable] | Unavailable
    propensity_all_customers: dict[tuple[str, str], ATTResult | Unavailable] | Unavailable
    order_value: pd.DataFrame | Unavailable
    retention: pd.DataFrame | Unavailable
    segments: pd.DataFrame | Unavailable
    roi: pd.DataFrame | Unavailable
    n_members: int
    sampled_controls: bool = False

    def main_effect(self, tier: str = "all") -> Estimate | Unavailable:
        """Relative effect on monthly orders from the main estimator (params.main_estimator);
        :class:`Unavailable` without an estimate or with fewer members than ``small_sample_n``."""
        if self.params.main_estimator == "aipw":
            r = self.propensity if isinstance(self.propensity, Unavailable) else self.propensity[tier, "aipw"]
            if isinstance(r, Unavailable):
                return r
            e, n_treated = r.relative, r.n_treated
        else:
            if isinstance(self.did, Unavailable) or tier in self.did.missing:
                return self.did if isinstance(self.did, Unavailable) else self.did.missing[tier]
            e = self.did.effect(tier, "relative")
            n_treated = int(self.did.overall.query("tier == @tier")["n_treated"].iloc[0])
        if n_treated < self.small_sample_n:
            return Unavailable.too_few(f"loyalty.what.effect.{tier}", n_treated, self.small_sample_n,
                                       "loyalty.of.compared_members")
        if e is None or not np.isfinite(e.estimate):
            return Unavailable("loyalty.unavailable.no_relative", {"tier": Term(f"loyalty.tier_term.{tier}")})
        return e

    @property
    def other_control_group(self) -> ControlGroup:
        """The comparison group of ``propensity_all_customers``: the one params did not choose."""
        return OTHER_CONTROL_GROUP[self.params.control_group]

    def effects_table(self) -> pd.DataFrame:
        """Every estimate as tidy rows: outcome, tier, method, estimate, se, ci_low, ci_high,
        n_treated, n_control, segment. Relative effects are fractions (0.10 = +10%) in outcomes
        ending in ``_relative``; absolute effects are per customer-month in orders, currency or,
        for activity and retention, proportions. Only the estimates the unit's data supports."""
        cols = ["outcome", "tier", "method", "estimate", "se", "ci_low", "ci_high", "n_treated", "n_control", "segment"]
        frames = []
        n = self.naive
        if not isinstance(n, Unavailable):
            for scale, suffix, prefix in (("gap", "", ""), ("relative_gap", "_relative", "relative_")):
                frames.append(pd.DataFrame({
                    "outcome": "monthly_orders" + suffix, "tier": n["tier"], "method": "naive_gap",
                    "estimate": n[scale], "se": n[f"{'gap' if scale == 'gap' else 'relative'}_se"],
                    "ci_low": n[f"{prefix or 'gap_'}ci_low"], "ci_high": n[f"{prefix or 'gap_'}ci_high"],
                    "n_treated": n["n_members"], "n_control": n["n_non_members"]}))
        names = {"orders": "monthly_orders", "spend": "monthly_spend", "active": "active_month",
                 "spend_per_order": "spend_per_order"}
        for o in (self.did, self.did_spend, self.did_active, self.order_value):
            if isinstance(o, Unavailable):
                continue
            o = o.overall if isinstance(o, CohortDiD) else o
            o = o if o["outcome"].iloc[0] != "active" else o[o["scale"] == "absolute"]
            suffix = np.where(o["scale"] == "relative", "_relative", "")
            frames.append(o.assign(outcome=names[o["outcome"].iloc[0]] + suffix))
        other = f"_{self.other_control_group}"
        for results, suffix in ((self.propensity, ""), (self.propensity_all_customers, other)):
            f = pd.DataFrame() if isinstance(results, Unavailable) else att_frame(results, "monthly_orders")
            if len(f):
                frames.append(f.assign(outcome="monthly_orders" + np.where(f["scale"] == "relative", "_relative", ""),
                                       method=f["method"] + suffix))
        r = self.retention
        if not isinstance(r, Unavailable):
            frames.append(r.assign(outcome=f"active_{self.params.retention_months}m_regular_buyers", method="aipw"))
        s = self.segments
        if not isinstance(s, Unavailable):
            frames.append(s.assign(outcome="monthly_orders" + np.where(s["scale"] == "relative", "_relative", "")))
        if not isinstance(self.roi, Unavailable):
            roi = self.roi[self.roi["tier"] != "all"]
            frames.append(pd.DataFrame({"outcome": f"net_margin_per_member_month_{self.currency}", "tier": roi["tier"],
                                        "method": "cohort_did_roi", "estimate": roi["net"], "se": roi["net_se"],
                                        "ci_low": roi["net_ci_low"], "ci_high": roi["net_ci_high"],
                                        "n_treated": roi["n_treated"], "n_control": np.nan}))
        out = (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)).reindex(columns=cols)
        out["segment"] = out["segment"].fillna("all")
        out[["n_treated", "n_control"]] = out[["n_treated", "n_control"]].astype("Int64")
        return out

    def small_samples(self) -> pd.DataFrame:
        """Rows of :meth:`effects_table` with fewer treated customers than ``small_sample_n``."""
        t = self.effects_table()
        return t[t["n_treated"] < self.small_sample_n]


def _propensity_or(snapshots: pd.DataFrame | Unavailable, **options) -> dict | Unavailable:
    """:func:`propensity_effects` on snapshots, or the reason there are none: no snapshots, or
    no tier and method with an estimate (the reason of the first)."""
    if isinstance(snapshots, Unavailable):
        return snapshots
    results = propensity_effects(snapshots, **options)
    first = next(iter(results.values()))
    return first if all(isinstance(r, Unavailable) for r in results.values()) else results


@threadpool_limits.wrap(limits=1)  # many small fits: more BLAS threads stall more than they help
def analyse(data) -> LoyaltyResult:
    """The whole loyalty-impact analysis of one unit (a :class:`custlib.sources.UnitData`), on
    one BLAS / OpenMP thread (with two on 2 shared cores it took three to four times as long)."""
    p = data.params.loyalty
    inputs = load_inputs(data)
    grid, cust = inputs.grid, inputs.customers
    did_opts = {"lags": p.lags, "pre_months": p.pre_months, "control_group": p.control_group}
    orders = cohort_did(grid, cust, "orders", leads=p.leads, **did_opts)
    spend = cohort_did(grid, cust, "spend", event_study=False, **did_opts)
    active = cohort_did(grid, cust, "active", event_study=False, **did_opts)
    snapshots = cohort_snapshots(grid, cust, p.pre_months, p.post_months, p.control_group)
    sampled = not isinstance(snapshots, Unavailable) and bool((snapshots["weight"] > 1).any())
    propensity = _propensity_or(snapshots, control_group=p.control_group, trim=p.propensity_trim,
                                neighbours=p.matching_neighbours, caliper=p.matching_caliper)
    del snapshots  # released before the other comparison group's snapshots are built
    other = OTHER_CONTROL_GROUP[p.control_group]
    propensity_other = _propensity_or(cohort_snapshots(grid, cust, p.pre_months, p.post_months, other),
                                      methods=("aipw",), control_group=other, trim=p.propensity_trim)
    segments = value_tiers_at_launch(data.transactions, inputs.launch, data.params.segmentation)
    return LoyaltyResult(
        params=p, currency=data.params.currency, small_sample_n=data.params.small_sample_n,
        naive=naive_gap(grid, cust), did=orders, did_spend=spend, did_active=active,
        propensity=propensity, propensity_all_customers=propensity_other,
        order_value=spend_per_order_did(grid, cust, tiers=TIERS, **did_opts),
        retention=retention_effect(grid, cust, p.retention_months, p.regular_buyer_orders, p.pre_months,
                                   p.control_group, p.propensity_trim),
        segments=segment_effects(grid, cust, segments, **did_opts),
        roi=programme_roi(spend, cust, p, data.params.observation_end),
        n_members=int(cust["tier"].notna().sum()), sampled_controls=sampled)
