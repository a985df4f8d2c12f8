"""Customer segmentation (notebook 01): RFM segments, value tiers, the client's classes,
behavioural clusters, a strategy playbook with CRM target lists, and segment migration.

Per-customer aggregates come from the engine (:mod:`custlib.features`); everything here works
on one row per customer. Profiles of the groups use :mod:`custlib.profiles`; k-means,
silhouette and the adjusted Rand index come from scikit-learn. Numbers only: tables, findings
and output files are made by :mod:`custlib.present.segmentation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.preprocessing import StandardScaler

from custlib import features
from custlib.errors import CustlibDataError
from custlib.params import ClassDimension, ClusteringParams, SegmentationParams
from custlib.profiles import Profile, profile
from custlib.stats import Estimate, Unavailable, proportion

N_SCORES = 5
# k-means restarts per k, in the fit and in each stability refit: with 2, one poor local optimum
# in a refit lowered the demo's stability (adjusted Rand index) from 0.98 to 0.86
N_INIT = 4
FIT_SAMPLE = 50_000  # buyers: above this, k-means is fitted on a random sample of this many
DAYS_PER_MONTH = 365.25 / 12
PROFILE_VARIABLES = ("age_band", "gender", "income_band", "region", "city", "customer_type",
                     "acquisition_channel", "interests")
PROFILE_TAGS = ("interests",)
TOP_SHARE = 0.2  # concentration: share of net revenue made by this top share of buyers
CONCENTRATION_REPS = 200  # bootstrap resamples of the Gini and top-share intervals
NOT_YET = "Not yet a customer"
SEGMENT_FIELDS = ("rfm_segment", "value_tier", "cluster", "cluster_name")
NO_LEADS = Unavailable.needs_table("leads", "segmentation.what.open_leads")


# -- estimates ---------------------------------------------------------------------------------

def mean_estimate(values: pd.Series) -> Estimate:
    """Mean with a normal-approximation 95% interval."""
    v = pd.Series(values).dropna().astype(float)
    n = len(v)
    se = float(v.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return Estimate.normal(float(v.mean()) if n else float("nan"), se, n, "mean, normal interval")


def share_of_total(values: pd.Series, member: pd.Series) -> Estimate:
    """Share of the total of ``values`` held by the ``member`` rows, with a ratio-estimator
    (linearisation) 95% interval; n is the number of members."""
    x = np.asarray(values, dtype=float)
    m = np.asarray(member, dtype=bool)
    total = x.sum()
    share = x[m].sum() / total
    z = (m - share) * x
    n = len(x)
    se = float(np.sqrt(n / (n - 1) * (z**2).sum()) / abs(total)) if n > 1 else float("nan")
    return Estimate.normal(share, se, int(m.sum()), "ratio estimator")


# -- the per-customer table ---------------------------------------------------------------------

def age_bands(age: pd.Series, edges: list[int]) -> pd.Series:
    """Age bands '<25', '25–34', …, '65+' from upper-exclusive edges in years."""
    labels = [f"<{edges[0]}"] + [f"{a}–{b - 1}" for a, b in zip(edges[:-1], edges[1:])] + [f"{edges[-1]}+"]
    return pd.cut(age.astype(float), [-np.inf, *edges, np.inf], right=False, labels=labels)


def _execute_compact(expr, index: str) -> pd.DataFrame:
    """Run ``expr`` through Arrow, indexed by its ``index`` column: the other text columns become
    categoricals (sorted categories) instead of one Python string per row, dates datetime64[s]
    as Ibis gives them. Rows in ``index`` order (code-point order, as in pandas: an engine's own
    order depends on its collation, and k-means' result on the order of its rows)."""
    t = expr.to_pyarrow()
    df = t.drop_columns(index).to_pandas(strings_to_categorical=True, date_as_object=False)
    for c in df.select_dtypes("category"):
        df[c] = df[c].cat.reorder_categories(sorted(df[c].cat.categories))
    for c in df.select_dtypes("datetime"):
        df[c] = df[c].astype("datetime64[s]")
    df.index = pd.Index(t[index].to_pandas(), name=index)
    return df.sort_index(kind="stable")


def customer_table(data) -> pd.DataFrame:
    """One row per customer of the unit plus one per open lead without a customer record.

    Columns: profile fields of the customers table (no personal fields), ``age_band``,
    ``record`` ("customer" or "lead"), the engine aggregates of
    :func:`custlib.features.customer_aggregates`, ``avg_order_value`` (gross sales per order,
    currency), ``orders_per_month`` (positive orders per month over the last
    ``frequency_window_months``, or over the tenure if shorter, at least one month).
    Customers and leads without purchases have ``orders`` = 0 and missing aggregates. Text
    profile fields are categoricals. Indexed by ``customer_id`` (lead rows by ``lead_id``).
    """
    p = data.params
    sp = p.segmentation
    end = p.observation_end
    since = (pd.Timestamp(end) - pd.DateOffset(months=sp.frequency_window_months)).date()
    agg = features.customer_aggregates(data.transactions, end, p.category_tiers, orders_since=since)
    recent = agg.pop("recent_orders")
    cust = _execute_compact(data.customers.drop("business_unit"), "customer_id")
    leads = data.leads
    open_leads = (leads.filter(leads.customer_id.isnull() & (leads.stage != "lost"))
                  .select("lead_id", acquisition_channel=leads.source).execute().set_index("lead_id").sort_index())
    people = cust
    if len(open_leads):
        people = pd.concat([cust, open_leads])
        people.index.name = "customer_id"
        people["acquisition_channel"] = people["acquisition_channel"].astype("category")
    table = people.join(agg, how="left")
    table["record"] = np.repeat(np.array(["customer", "lead"], dtype=object), [len(cust), len(open_leads)])
    table["orders"] = table["orders"].fillna(0).astype(int)
    table["avg_order_value"] = table["gross_sales"] / table["orders"].where(table["orders"] > 0)
    window_days = (pd.Timestamp(end) - pd.Timestamp(since)).days
    months = np.maximum(np.minimum(table["tenure_days"], window_days) / DAYS_PER_MONTH, 1.0)
    table["orders_per_month"] = recent.reindex(table.index).fillna(0) / months
    table["age_band"] = age_bands(table["age"], sp.age_bands)
    return table


# -- prospects ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Prospects:
    """Who has not bought yet, per acquisition channel (an open lead's channel is its source):
    ``summary`` with ``registered`` (customer record, no purchase), ``open_leads``, ``prospects``
    and ``share`` of all prospects (Estimate)."""

    summary: pd.DataFrame

    @property
    def n(self) -> int:
        return int(self.summary["prospects"].sum())


def prospects(table: pd.DataFrame) -> Prospects | Unavailable:
    """Registered customers without a purchase and open leads of ``table`` (see
    :func:`customer_table`) per acquisition channel, largest first."""
    p = table[table["orders"] == 0]
    if p.empty:
        return Unavailable("segmentation.unavailable.no_prospects")
    counts = pd.crosstab(p["acquisition_channel"], p["record"]).reindex(columns=["customer", "lead"], fill_value=0)
    counts = counts.assign(total=counts.sum(axis=1)).sort_values("total", ascending=False)
    n = int(counts["total"].sum())
    return Prospects(pd.DataFrame({
        "channel": np.asarray(counts.index, dtype=object), "registered": counts["customer"].to_numpy(),
        "open_leads": counts["lead"].to_numpy(), "prospects": counts["total"].to_numpy(),
        "share": [proportion(int(k), n) for k in counts["total"]]}))


# -- RFM --------------------------------------------------------------------------------------

def quintile_scores(values: pd.Series | np.ndarray, n_scores: int = N_SCORES) -> np.ndarray:
    """Scores 1..n_scores (higher value -> higher score) in near-equal-frequency bins that
    never split a tie.

    Bins are built from the lowest value up: each takes whole groups of tied values until its
    size is closest to (customers left) / (bins left), so a value shared by more customers than
    one bin holds (e.g. the many single-purchase customers) forms its own bin and the rest are
    divided evenly; no bin is empty. With fewer distinct values than scores each value is its
    own bin and the bins are spread over 1..n_scores (lowest 1, highest n_scores; a single
    value scores the middle).
    """
    x = np.asarray(values, dtype=float)
    distinct, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    m = len(distinct)
    if m == 1:
        return np.full(len(x), (n_scores + 1) // 2, dtype=int)
    if m <= n_scores:
        score_of_group = 1 + np.round(np.arange(m) * (n_scores - 1) / (m - 1)).astype(int)
        return score_of_group[inverse]
    group_bin = np.empty(m, dtype=int)
    start = 0
    for b in range(n_scores - 1):
        bins_left = n_scores - b
        target = counts[start:].sum() / bins_left
        end, size = start + 1, counts[start]
        last_allowed = m - (bins_left - 1)
        while end < last_allowed and abs(size + counts[end] - target) < abs(size - target):
            size += counts[end]
            end += 1
        group_bin[start:end] = b + 1
        start = end
    group_bin[start:] = n_scores
    return group_bin[inverse]


def rfm_scores(table: pd.DataFrame) -> pd.DataFrame:
    """Recency (days since the last order), frequency (orders), monetary (net revenue) and
    their scores 1-5 for customers with at least one order (5 = most recent / most / highest)."""
    b = table[table["orders"] > 0]
    out = pd.DataFrame({"recency": b["recency_days"].astype(float), "frequency": b["orders"].astype(int),
                        "monetary": b["revenue"].astype(float)}, index=b.index)
    out["r_score"] = quintile_scores(-out["recency"])
    out["f_score"] = quintile_scores(out["frequency"])
    out["m_score"] = quintile_scores(out["monetary"])
    return out


def assign_rfm_segments(scores: pd.DataFrame, params: SegmentationParams) -> pd.Series:
    """Segment name of each customer from its r/f/m scores: the first matching rule wins."""
    seg = pd.Series(None, index=scores.index, dtype=object)
    for rule in params.rfm_segments:
        hit = (seg.isna() & scores["r_score"].between(*rule.r) & scores["f_score"].between(*rule.f)
               & scores["m_score"].between(*rule.m))
        seg[hit] = rule.name
    return seg


@dataclass(frozen=True)
class RfmSegments:
    """RFM scores and segments of the buyers at one date.

    ``customers``: recency, frequency, monetary, r/f/m scores, rfm_segment per customer;
    ``summary``: per segment customers, share and revenue share (Estimates), mean recency
    (days), frequency (orders) and monetary (currency) and mean scores.
    """

    customers: pd.DataFrame
    summary: pd.DataFrame

    @property
    def n(self) -> int:
        return len(self.customers)

    def grid(self) -> pd.DataFrame:
        """Customers per recency x frequency score (rows R 5..1, columns F 1..5)."""
        g = pd.crosstab(self.customers["r_score"], self.customers["f_score"])
        return g.reindex(index=range(N_SCORES, 0, -1), columns=range(1, N_SCORES + 1), fill_value=0)


def _rfm_summary(seg: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    rows = []
    n = len(seg)
    revenue = seg["monetary"].clip(lower=0)
    for name in order:
        m = seg["rfm_segment"] == name
        k = int(m.sum())
        if not k:
            continue
        g = seg[m]
        rows.append({
            "segment": name, "customers": k, "share": proportion(k, n),
            "revenue_share": share_of_total(revenue, m),
            "mean_recency": g["recency"].mean(), "mean_frequency": g["frequency"].mean(),
            "mean_monetary": mean_estimate(g["monetary"]),
            "mean_r": g["r_score"].mean(), "mean_f": g["f_score"].mean(), "mean_m": g["m_score"].mean(),
        })
    return pd.DataFrame(rows)


def rfm_segments(table: pd.DataFrame, params: SegmentationParams) -> RfmSegments:
    """Score the buyers of ``table`` (see :func:`customer_table`) and name their segments."""
    scores = rfm_scores(table)
    scores["rfm_segment"] = assign_rfm_segments(scores, params)
    order = [r.name for r in params.rfm_segments]
    return RfmSegments(scores, _rfm_summary(scores, order))


def lapsing_segments(params: SegmentationParams) -> list[str]:
    """The RFM segments of once-frequent buyers who have stopped ordering: recency score at most
    2 and frequency score at least 3 by their rules (e.g. At risk, Can't lose them)."""
    return [r.name for r in params.rfm_segments if r.r[1] <= 2 and r.f[0] >= 3]


def current_segments(data) -> pd.Series:
    """RFM segment name of every buyer of the unit at the observation end, by ``customer_id``
    (for other analyses that break results down by segment)."""
    return rfm_segments(customer_table(data), data.params.segmentation).customers["rfm_segment"]


# -- value tiers ------------------------------------------------------------------------------

def value_tiers(monetary: pd.Series, cuts: tuple[float, float], labels: tuple[str, str, str]) -> pd.Series:
    """Pareto / ABC tiers: sorted by revenue (largest first), a customer is in the first tier
    while the revenue of the customers before it is below ``cuts[0]`` of the total, in the second
    below ``cuts[1]``, else in the third. Ties in revenue are ordered by customer id; customers
    with zero or negative revenue are in the last tier."""
    v = monetary.clip(lower=0).astype(float).to_numpy()
    by_id = np.argsort(monetary.index.to_numpy(), kind="stable")
    order = by_id[np.argsort(-v[by_id], kind="stable")]
    s = pd.Series(v[order])
    before = (s.cumsum() - s) / s.sum()
    tier = np.where(before < cuts[0], labels[0], np.where(before < cuts[1], labels[1], labels[2]))
    tier[(s <= 0).to_numpy()] = labels[2]
    out = np.empty(len(v), dtype=object)
    out[order] = tier
    return pd.Series(out, index=monetary.index)


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0 = equal, 1 = one customer has everything)."""
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    i = np.arange(1, n + 1)
    return float(2 * (i * x).sum() / (n * x.sum()) - (n + 1) / n)


def lorenz_curve(values: np.ndarray, points: int = 201) -> pd.DataFrame:
    """Concentration curve: cumulative share of customers (smallest first) against cumulative
    share of revenue, at ``points`` evenly spaced customer shares from 0 to 1."""
    x = np.sort(np.asarray(values, dtype=float))
    cum = np.concatenate([[0.0], np.cumsum(x)]) / x.sum()
    pop = np.linspace(0, 1, len(x) + 1)
    grid = np.linspace(0, 1, points)
    return pd.DataFrame({"customer_share": grid, "revenue_share": np.interp(grid, pop, cum)})


def top_share(values: np.ndarray, top: float = TOP_SHARE) -> float:
    """Share of the total of non-negative ``values`` held by the largest ``top`` share of them
    (rounded up to whole customers)."""
    x = np.sort(np.asarray(values, dtype=float))
    return float(x[len(x) - int(np.ceil(top * len(x))):].sum() / x.sum())


def _bootstrap_concentration(x: np.ndarray, reps: int, rng: np.random.Generator) -> tuple[Estimate, Estimate]:
    """Gini coefficient and top-20% revenue share of ``x`` with percentile intervals from the
    same ``reps`` bootstrap resamples of the customers; n is the number of customers.

    One resample at a time (memory of a few copies of ``x``, not ``reps`` of them): its sorted
    values are ``x`` sorted once, each repeated as often as the resample drew it, so no resample
    is sorted.
    """
    n = len(x)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    i = np.arange(1, n + 1)
    top_from = n - int(np.ceil(TOP_SHARE * n))
    totals, weighted, tops = np.empty(reps), np.empty(reps), np.empty(reps)
    for b in range(reps):
        sample = np.repeat(xs, np.bincount(rng.integers(0, n, n), minlength=n)[order])
        totals[b], weighted[b], tops[b] = sample.sum(), (sample * i).sum(), sample[top_from:].sum()
    g = 2 * weighted / (n * totals) - (n + 1) / n
    top = tops / totals
    method = f"bootstrap ({reps})"

    def estimate(point: float, boot: np.ndarray) -> Estimate:
        lo, hi = np.percentile(boot, [2.5, 97.5])
        return Estimate(point, float(boot.std(ddof=1)), float(lo), float(hi), n, method)

    return estimate(gini(x), g), estimate(top_share(x), top)


@dataclass(frozen=True)
class ValueTiers:
    """Value tiers, the Lorenz curve and the Gini coefficient of revenue per customer.

    ``tiers``: tier per buyer; ``summary``: per tier customers, share and revenue share
    (Estimates) and mean revenue (currency); ``gini``: Estimate (bootstrap interval);
    ``top20``: share of net revenue made by the top 20% of buyers (Estimate, bootstrap interval
    from the same resamples; n = buyers).
    """

    tiers: pd.Series
    summary: pd.DataFrame
    lorenz: pd.DataFrame
    gini: Estimate
    top20: Estimate


def value_analysis(monetary: pd.Series, params: SegmentationParams, reps: int = CONCENTRATION_REPS,
                   seed: int = 0) -> ValueTiers:
    """Tiers, concentration curve, Gini and top-20% share (bootstrap 95% intervals) of
    revenue per buyer (negative revenue counts as 0)."""
    labels = tuple(t.name for t in params.value_tiers)
    tiers = value_tiers(monetary, params.value_tier_cuts, labels)
    x = monetary.clip(lower=0).to_numpy(dtype=float)
    rows = []
    for t in labels:
        m = (tiers == t).to_numpy()
        rows.append({"tier": t, "customers": int(m.sum()), "share": proportion(int(m.sum()), len(m)),
                     "revenue_share": share_of_total(x, m), "mean_revenue": mean_estimate(monetary[m])})
    concentration = _bootstrap_concentration(x, reps, np.random.default_rng(seed))
    return ValueTiers(tiers, pd.DataFrame(rows), lorenz_curve(x), *concentration)


# -- the client's classes -----------------------------------------------------------------------

def classify(table: pd.DataFrame, dimension: ClassDimension) -> pd.Series:
    """Class of each row: the first rule (a pandas query) that holds, else ``otherwise``."""
    out = pd.Series(None, index=table.index, dtype=object)
    for rule in dimension.rules:
        try:
            hit = table.eval(rule.rule, engine="python")
        except Exception as e:  # a bad rule in the parameter file
            raise CustlibDataError(f"class rule {rule.rule!r} cannot be evaluated: {e}",
                                   column=f"segmentation.classes.{rule.name}", kind="params") from None
        out[out.isna() & hit.fillna(False).astype(bool)] = rule.name
    return out.fillna(dimension.otherwise.name)


@dataclass(frozen=True)
class Classes:
    """The client's classifications: ``summary`` per dimension (params key) and class (name)
    with customers, open leads among them, share, revenue share (Estimates), mean orders and
    mean revenue (currency, Estimate); leads count as customers without purchases."""

    summary: pd.DataFrame


def class_summary(table: pd.DataFrame, params: SegmentationParams) -> Classes:
    """Size and value of each class of each classification in ``params.classes``."""
    rows = []
    revenue = table["revenue"].fillna(0).clip(lower=0)
    for key, dim in params.classes.items():
        for name in dict.fromkeys([*(r.name for r in dim.rules), dim.otherwise.name]):
            m = (table[key] == name).to_numpy()
            if not m.any():
                continue
            rows.append({
                "dimension": key, "class": name, "customers": int(m.sum()),
                "leads": int((table["record"][m] == "lead").sum()),
                "share": proportion(int(m.sum()), len(m)), "revenue_share": share_of_total(revenue, m),
                "mean_orders": table["orders"][m].mean(),
                "mean_revenue": mean_estimate(table["revenue"][m].fillna(0)),
            })
    return Classes(pd.DataFrame(rows))


# -- behavioural clusters ---------------------------------------------------------------------

LOG_FEATURES = ("recency_days", "orders", "avg_order_value", "revenue", "tenure_days")


class BehaviourClustering:
    """k-means on standardized, log-transformed recency (days), frequency (orders) and monetary
    (average order value or revenue, per params) plus the optional features, with k chosen by the
    silhouette over ``k_min..k_max``.

    After :meth:`fit`: ``features_`` (the features used), ``k_``, ``silhouette_`` (k,
    silhouette), ``labels_`` (cluster 1..k per customer, 1 = largest), ``descriptors_`` (cluster
    -> the words of ``params.words`` that describe it, strongest features in feature order),
    ``names_`` (cluster -> those words as a name, e.g. 'frequent full-price buyers', as written to
    the outputs), ``centroids_`` (per cluster size, share and the mean of each feature in
    original units), ``zscores_`` (cluster means of the standardized features), ``stability_``
    (adjusted Rand index of bootstrap refits against the fitted clustering, Estimate).
    """

    def __init__(self, params: ClusteringParams):
        self.params = params

    @property
    def features(self) -> list[str]:
        return ["recency_days", "orders", self.params.monetary, *self.params.extra_features]

    def usable_features(self, table: pd.DataFrame) -> list[str]:
        """The configured features the buyers of ``table`` have values for (the price-tier
        shares are missing when the unit's params map no product category to a tier)."""
        buyers = table.loc[table["orders"] > 0, self.features]
        return [f for f in self.features if buyers[f].notna().any()]

    @staticmethod
    def _matrix(table: pd.DataFrame, features: list[str]) -> np.ndarray:
        cols = []
        for f in features:
            v = table[f].astype(float)
            cols.append(np.log1p(v.clip(lower=0)) if f in LOG_FEATURES else v)
        return np.column_stack(cols)

    def distinct_points(self, table: pd.DataFrame) -> int:
        """How many buyers of ``table`` differ in their features: k-means cannot find more clusters."""
        features = self.usable_features(table)
        m = self._matrix(table.loc[table["orders"] > 0, features], features)
        return int((~pd.DataFrame(m).duplicated()).sum())

    def fit(self, table: pd.DataFrame) -> "BehaviourClustering":
        """Fit on the buyers of ``table`` (rows with orders > 0). k is tried up to the number of
        distinct feature vectors and buyers - 1 (the silhouette needs a buyer outside each
        cluster); there must be room for ``k_min`` (see :func:`cluster_buyers`).

        Above ``FIT_SAMPLE`` buyers, k-means (the choice of k and the stability refits) is fitted
        on a random sample of ``FIT_SAMPLE`` buyers and every buyer is assigned to the nearest
        centre; up to it, on all buyers. Each fit has ``N_INIT`` restarts."""
        p = self.params
        self.features_ = self.usable_features(table)
        buyers = table.loc[table["orders"] > 0, self.features_]
        self.scaler_ = StandardScaler()
        z = self.scaler_.fit_transform(self._matrix(buyers, self.features_))
        n = len(z)
        fit_z = z
        if n > FIT_SAMPLE:
            fit_z = z[np.sort(np.random.default_rng(p.seed).choice(n, FIT_SAMPLE, replace=False))]
        sample = min(len(fit_z), p.silhouette_sample)
        fits, rows = {}, []
        for k in range(p.k_min, min(p.k_max, n - 1, self.distinct_points(table)) + 1):
            km = KMeans(k, n_init=N_INIT, random_state=p.seed).fit(fit_z)
            fits[k] = km
            rows.append({"k": k, "silhouette": silhouette_score(fit_z, km.labels_, sample_size=sample,
                                                                random_state=p.seed)})
        self.silhouette_ = pd.DataFrame(rows)
        self.k_ = int(self.silhouette_.loc[self.silhouette_["silhouette"].idxmax(), "k"])
        km = fits[self.k_]
        labels = km.labels_ if len(fit_z) == n else km.predict(z)
        sizes = np.bincount(labels, minlength=self.k_)
        rank = np.empty(self.k_, dtype=int)
        rank[np.argsort(-sizes, kind="stable")] = np.arange(1, self.k_ + 1)
        self.model_ = km
        self.labels_ = pd.Series(rank[labels], index=buyers.index, name="cluster")
        self.zscores_ = pd.DataFrame(z, columns=self.features_).groupby(self.labels_.to_numpy()).mean()
        self.descriptors_ = self._descriptors(self.zscores_)
        self.names_ = self._names(self.descriptors_)
        orig = buyers.astype(float).groupby(self.labels_).mean()
        counts = self.labels_.value_counts().sort_index()
        self.centroids_ = orig.assign(customers=counts, share=counts / n).reset_index(names="cluster")
        self.centroids_.insert(1, "name", self.centroids_["cluster"].map(self.names_))
        self.stability_ = self._stability(fit_z, z, labels)
        return self

    def _descriptors(self, zscores: pd.DataFrame, threshold: float = 0.5) -> dict[int, tuple[str, ...]]:
        """The words of the two strongest features (|z| >= threshold) per cluster in feature
        order, e.g. ('frequent', 'full-price'); three when two clusters would share two."""
        words = self.params.words

        def describe(row: pd.Series, top: int) -> tuple[str, ...]:
            cand = [(abs(z), i, words[f][int(z > 0)]) for i, (f, z) in enumerate(row.items())
                    if f in words and abs(z) >= threshold and words[f][int(z > 0)]]
            return tuple(w for _, _, w in sorted(sorted(cand, reverse=True)[:top], key=lambda c: c[1]))

        out = {c: describe(zscores.loc[c], 2) for c in zscores.index}
        dup = pd.Series(out).duplicated(keep=False)
        return out | {c: describe(zscores.loc[c], 3) for c in dup[dup].index}

    @staticmethod
    def _names(descriptors: dict[int, tuple[str, ...]]) -> dict[int, str]:
        """'frequent full-price buyers' ('average buyers' without descriptors); the cluster
        number is added when names still collide."""
        names = {c: " ".join(w) + " buyers" if w else "average buyers" for c, w in descriptors.items()}
        dup = pd.Series(names).duplicated(keep=False)
        return names | {c: f"{names[c]} ({c})" for c in dup[dup].index}

    def _stability(self, fit_z: np.ndarray, z: np.ndarray, labels: np.ndarray) -> Estimate:
        """Adjusted Rand index between ``labels`` of all buyers (standardized features ``z``) and
        the assignment by k-means refitted on bootstrap resamples of
        ``fit_z``, the buyers the clustering was fitted on."""
        rng = np.random.default_rng(self.params.seed)
        m, reps = len(fit_z), self.params.bootstrap
        ari = []
        for b in range(reps):
            idx = rng.integers(0, m, m)
            km = KMeans(self.k_, n_init=N_INIT, random_state=self.params.seed + b + 1).fit(fit_z[idx])
            ari.append(adjusted_rand_score(labels, km.predict(z)))
        ari = np.asarray(ari)
        lo, hi = np.percentile(ari, [2.5, 97.5])
        return Estimate(float(ari.mean()), float(ari.std(ddof=1)), float(lo), float(hi), reps,
                        f"bootstrap refits ({reps})")


def cluster_buyers(table: pd.DataFrame, params: ClusteringParams,
                   small_n: int = 30) -> BehaviourClustering | Unavailable:
    """Behavioural clusters of the buyers of ``table``, or why there are none: fewer than
    ``small_n`` buyers (and at least ``k_min`` + 1), or fewer than ``k_min`` distinct buyers."""
    model = BehaviourClustering(params)
    buyers, needed = int((table["orders"] > 0).sum()), max(small_n, params.k_min + 1)
    if buyers < needed:
        return Unavailable.too_few("segmentation.what.clusters", buyers, needed, "segmentation.of.buyers")
    distinct = model.distinct_points(table)
    if distinct < params.k_min:
        return Unavailable("segmentation.unavailable.clusters_alike",
                           {"n": buyers, "distinct": distinct, "needed": params.k_min})
    return model.fit(table)


# -- playbook and target lists ----------------------------------------------------------------

@dataclass(frozen=True)
class Playbook:
    """Recommended actions per group, and the customers each action targets.

    ``groups``: per playbook field and group its customers (with a customer record), buyers
    among them, revenue share (Estimate) and ``actions`` (tuple of action keys);
    ``actions``: per action (key) its target list ``file``, the customers targeted and the
    revenue share they hold; ``targets``: per action a frame of customer_id and segment fields
    (no personal data, see :class:`TargetLists`).
    """

    groups: pd.DataFrame
    actions: pd.DataFrame
    targets: TargetLists


class TargetLists(Mapping):
    """Action key -> its target list: customer_id, the segment and class fields and ``matched``,
    by customer_id. Each list is built when asked for from the rows of the per-customer table it
    selects, so a unit of a million customers keeps row numbers, not a copy of the table per action."""

    def __init__(self, table: pd.DataFrame, fields: list[str], rows: dict[str, np.ndarray],
                 matched: dict[str, np.ndarray]):
        self._table, self._fields, self._rows, self._matched = table, fields, rows, matched

    def __getitem__(self, action: str) -> pd.DataFrame:
        rows, t = self._rows[action], self._table
        return pd.DataFrame({"customer_id": t.index.values[rows], **{f: t[f].values[rows] for f in self._fields},
                             "matched": self._matched[action]})

    def __contains__(self, action) -> bool:
        return action in self._rows

    def __iter__(self):
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


def _joined(flags: np.ndarray, keys: list[str]) -> np.ndarray:
    """Per row of ``flags`` (rows x keys, bool) the keys it flags joined by "; ", in key order;
    each distinct row is put into words once."""
    if not len(flags):
        return np.array([], dtype=object)
    pattern = pd.DataFrame(flags).groupby(list(range(len(keys))), sort=False).ngroup().to_numpy()
    first = np.unique(pattern, return_index=True)[1]
    words = np.array(["; ".join(k for k, on in zip(keys, flags[i]) if on) for i in first], dtype=object)
    return words[pattern]


def build_playbook(table: pd.DataFrame, params: SegmentationParams) -> Playbook:
    """Apply ``params.playbook`` (segment field -> group -> actions) to ``table``.

    Target lists hold customers with a customer record (open leads have none) and the columns
    customer_id, the segment fields, the class fields and ``matched`` (the groups that put the
    customer on the list).
    """
    revenue = table["revenue"].fillna(0).clip(lower=0).to_numpy()
    customers = (table["record"] == "customer").to_numpy()
    buyers = (table["orders"] > 0).to_numpy()
    reasons: dict[str, dict[str, np.ndarray]] = {a: {} for a in params.actions}
    rows = []
    for fld, groups in params.playbook.items():
        if fld not in table:
            raise CustlibDataError(f"playbook field {fld!r} is not a segment field",
                                   column=f"segmentation.playbook.{fld}", kind="params")
        values = table[fld].astype(str).to_numpy()
        for group, acts in groups.items():
            m = (values == group) & customers
            rows.append({"field": fld, "group": group, "customers": int(m.sum()),
                         "buyers": int((m & buyers).sum()),
                         "revenue_share": share_of_total(revenue, m), "actions": tuple(acts)})
            for a in acts:
                reasons[a][f"{fld}={group}"] = m
    by_id = table.index.argsort()
    listed, matched, arows = {}, {}, []
    for a in params.actions:
        keys = list(reasons[a])
        why = np.column_stack(list(reasons[a].values())) if keys else np.zeros((len(table), 0), dtype=bool)
        hit = why.any(axis=1)
        listed[a] = by_id[hit[by_id]]
        matched[a] = _joined(why[listed[a]], keys)
        arows.append({"action": a, "file": f"targets/{a}.csv",
                      "customers": int(hit.sum()), "revenue_share": share_of_total(revenue, hit)})
    fields = [c for c in (*SEGMENT_FIELDS, *params.classes) if c in table]
    return Playbook(pd.DataFrame(rows), pd.DataFrame(arows), TargetLists(table, fields, listed, matched))


# -- migration ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Migration:
    """RFM segments at an earlier date against the observation end.

    ``matrix``: customers per earlier segment (rows, plus 'Not yet a customer') and current
    segment (columns); ``flows``: one row per (from, to) with customers and the share of the
    origin segment (Estimate, Wilson interval).
    """

    earlier: date
    later: date
    matrix: pd.DataFrame
    flows: pd.DataFrame

    def row_shares(self) -> pd.DataFrame:
        """Share of each earlier segment (row) now in each segment (column); rows add up to 1."""
        return self.matrix.div(self.matrix.sum(axis=1), axis=0)

    def moves(self) -> pd.DataFrame:
        """The flows between two different segments among customers who were buyers at the
        earlier date, largest first."""
        f = self.flows[(self.flows["from"] != self.flows["to"]) & (self.flows["from"] != NOT_YET)]
        return f.sort_values("customers", ascending=False, kind="stable")


def rfm_at(transactions, at: date, params: SegmentationParams) -> RfmSegments:
    """RFM segments of the buyers by ``at``, from their orders up to that date and scored against
    each other (the earlier side of :func:`migration`)."""
    agg = features.customer_aggregates(transactions, at)
    return rfm_segments(agg.assign(orders=agg["orders"].astype(int)), params)


def migration(before: RfmSegments, now: RfmSegments, earlier: date, later: date,
              params: SegmentationParams, min_n: int = 1) -> Migration | Unavailable:
    """Transition of RFM segments from ``before`` (at ``earlier``, see :func:`rfm_at`) to ``now``
    (at the observation end ``later``); Unavailable with fewer than ``min_n`` buyers by ``earlier``."""
    if before.n < min_n:
        return Unavailable("segmentation.unavailable.migration_too_few",
                           {"date": f"{earlier:%Y-%m-%d}", "n": before.n, "needed": min_n})
    current = now.customers["rfm_segment"]
    was = before.customers["rfm_segment"].reindex(current.index).fillna(NOT_YET)
    order = [r.name for r in params.rfm_segments]
    matrix = pd.crosstab(was, current).reindex(index=[*order, NOT_YET], columns=order, fill_value=0)
    matrix = matrix.loc[matrix.sum(axis=1) > 0, matrix.sum(axis=0) > 0]
    rows = []
    for f, row in matrix.iterrows():
        total = int(row.sum())
        for t, k in row.items():
            rows.append({"from": f, "to": t, "customers": int(k), "share": proportion(int(k), total)})
    return Migration(earlier, later, matrix, pd.DataFrame(rows))


# -- the whole analysis -----------------------------------------------------------------------

@dataclass(frozen=True)
class SegmentGroup:
    """Buyers in any of ``segments`` (RFM segment names): how many and the share of net revenue
    they hold (Estimate, ratio estimator)."""

    segments: tuple[str, ...]
    customers: int
    revenue_share: Estimate


@dataclass(frozen=True)
class SegmentationResult:
    """Everything notebook 01 shows for one unit; ``customers`` is the per-customer table with
    the segment and class fields added; ``lapsing``: the once-frequent buyers who stopped
    ordering (:func:`lapsing_segments`). A part the unit's data cannot support is
    :class:`custlib.stats.Unavailable`."""

    unit: str
    currency: str
    observation_end: date
    customers: pd.DataFrame
    prospects: Prospects | Unavailable
    rfm: RfmSegments
    value: ValueTiers
    classes: Classes
    clusters: BehaviourClustering | Unavailable
    playbook: Playbook
    migration: Migration | Unavailable
    profiles: dict[str, Profile | Unavailable]
    lapsing: SegmentGroup
    params: SegmentationParams
    small_n: int

    @property
    def buyers(self) -> int:
        return self.rfm.n

    @property
    def registered_without_purchase(self) -> int:
        """Customers with a customer record and no purchase."""
        c = self.customers
        return int(((c["orders"] == 0) & (c["record"] == "customer")).sum())

    @property
    def open_leads(self) -> int:
        """Open leads without a customer record (0 when the unit has no leads data)."""
        return int((self.customers["record"] == "lead").sum())

    def segments(self) -> pd.DataFrame:
        """The machine-readable output: one row per customer record with RFM values, scores,
        segment, value tier, cluster and classes (no personal fields)."""
        c = self.customers
        known = (c["record"] == "customer").to_numpy()
        out = self.rfm.customers.reindex(c.index[known])
        for col in ("frequency", "r_score", "f_score", "m_score"):
            out[col] = out[col].astype("Int64")
        for col in ("value_tier", "cluster", "cluster_name", *self.params.classes):
            out[col] = c[col].array[known]
        return out.reset_index()


def segment_group(rfm: RfmSegments, segments: list[str]) -> SegmentGroup:
    """Size and revenue share of the buyers in any of ``segments``."""
    member = rfm.customers["rfm_segment"].isin(segments)
    return SegmentGroup(tuple(segments), int(member.sum()),
                        share_of_total(rfm.customers["monetary"].clip(lower=0), member))


def migration_date(params) -> date:
    """The earlier date of the migration: ``segmentation.migration_from``, or
    ``migration_months`` before the observation end (``params``: UnitParams)."""
    sp = params.segmentation
    return sp.migration_from or (pd.Timestamp(params.observation_end) - pd.DateOffset(months=sp.migration_months)).date()


PROFILE_WHAT = {"rfm_segment": "segmentation.what.profiles_rfm", "value_tier": "segmentation.what.profiles_value",
                "cluster_name": "segmentation.what.profiles_clusters"}


def analyse(data) -> SegmentationResult:
    """Run the whole segmentation of one unit (``data``: :class:`custlib.sources.UnitData`)."""
    p = data.params
    sp, small, end = p.segmentation, p.small_sample_n, p.observation_end
    earlier = migration_date(p)
    # the engine's queries first: their working memory then adds to little that pandas holds
    before = rfm_at(data.transactions, earlier, sp)
    table = customer_table(data)
    leads = prospects(table) if data.has("leads") else NO_LEADS
    rfm = rfm_segments(table, sp)
    value = value_analysis(rfm.customers["monetary"], sp, seed=sp.clustering.seed)
    for col in ("r_score", "f_score", "m_score", "rfm_segment"):
        table[col] = rfm.customers[col]
    table["value_tier"] = value.tiers
    clusters = cluster_buyers(table, sp.clustering, small)
    fitted = isinstance(clusters, BehaviourClustering)
    cluster_of = clusters.labels_ if fitted else pd.Series(dtype=float)
    table["cluster"] = cluster_of.reindex(table.index).astype("Int64")
    table["cluster_name"] = table["cluster"].map(clusters.names_ if fitted else {})
    for key, dim in sp.classes.items():
        table[key] = classify(table, dim)
    mig = migration(before, rfm, earlier, end, sp, min_n=small)
    groupings = {"rfm_segment": PROFILE_WHAT["rfm_segment"], "value_tier": PROFILE_WHAT["value_tier"],
                 "cluster_name": PROFILE_WHAT["cluster_name"],
                 **{k: "segmentation.what.profiles_classes" for k in sp.classes}}
    known = table.loc[table["record"] == "customer", list(dict.fromkeys([*groupings, *PROFILE_VARIABLES]))]
    profiles = {g: profile(known[g], known[[v for v in PROFILE_VARIABLES if v != g]], sp.profile_alpha,
                           PROFILE_TAGS, min_n=small, what=what) for g, what in groupings.items()}
    return SegmentationResult(p.id, p.currency, end, table, leads, rfm, value, class_summary(table, sp),
                              clusters, build_playbook(table, sp), mig, profiles,
                              segment_group(rfm, lapsing_segments(sp)), sp, small)
