"""The difference-in-differences and the naive gap on sufficient statistics (custlib.causal.did,
loyalty.naive_gap) against the straightforward implementation they replaced — every stacked
row in a frame, statsmodels WLS / OLS — on a small generated demo: the same numbers up to
floating error (1e-8 relative)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.stats import chi2

from custlib import demo, features, loyalty
from custlib.causal import did

RTOL = 1e-8


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """300 customers of one unit: dense panel, customer frame, grid."""
    out = tmp_path_factory.mktemp("demo300")
    demo.generate(out, customers=300, seed=11, units=("stores",))
    truth = json.loads((out / "truth" / "parameters.json").read_text())
    tx = pd.read_parquet(out / "transactions.parquet")
    members = pd.read_parquet(out / "loyalty_members.parquet")
    start, end = pd.Timestamp(truth["data_start"]).date(), pd.Timestamp(truth["observation_end"]).date()
    panel = features.customer_month_panel(tx, end, start)
    customers = loyalty.customer_frame(panel, members)
    sparse = features.customer_month_panel(tx, end, start, zeros=False)
    return {"panel": panel, "customers": customers, "grid": loyalty.panel_grid(panel, customers),
            "sparse": sparse, "start": start, "end": end}


# -- the reference: stacked rows and statsmodels (the implementation before sufficient statistics) --

class Dense:
    """Customer x month arrays of one outcome (NaN before the first month) and of the activity."""

    def __init__(self, panel, customers, outcome):
        month = did.month_number(panel["month"]).astype(int)
        start = month.min()
        rows = customers.index.get_indexer(panel["customer_id"])
        shape = (len(customers), month.max() - start + 1)
        self.y, act = np.full(shape, np.nan), np.full(shape, np.nan)
        self.y[rows, month - start] = panel[outcome].to_numpy(dtype=float)
        act[rows, month - start] = panel["active"].to_numpy(dtype=float)
        self.cum = np.c_[np.zeros(shape[0]), np.cumsum(np.nan_to_num(self.y), axis=1)]
        self.last = np.maximum.accumulate(np.where(np.nan_to_num(act) > 0, np.arange(shape[1]), -1), axis=1)
        self.first = did.month_number(customers["first_month"]) - start
        self.treated = did.month_number(customers["enrolled_month"]) - start
        self.group = customers["tier"].fillna("none").to_numpy(dtype=object)
        self.n_months = shape[1]

    def mean(self, rows, lo, hi):
        lo = np.maximum(lo, self.first[rows]).astype(int)
        return (self.cum[rows, hi + 1] - self.cum[rows, lo]) / (hi + 1 - lo)


def ref_cells(grid: Dense, event_times, base_months, control_group, covariates=False) -> pd.DataFrame:
    code = pd.factorize(grid.group)[0] if control_group == "later_treated" else np.zeros(len(grid.group), int)
    parts = []
    for g in np.unique(grid.treated[~np.isnan(grid.treated)]).astype(int):
        acquired = grid.first <= g - 1
        if not (acquired & (grid.treated == g)).any():
            continue
        for e in event_times:
            t = g + e
            if t < 0 or t >= grid.n_months:
                continue
            rows = np.flatnonzero(acquired & (grid.first <= t) & (
                (grid.treated == g) | did.not_yet_treated(grid.treated, max(t, g), control_group)))
            d = (grid.treated[rows] == g).astype(int)
            if d.all() or not d.any():
                continue
            part = pd.DataFrame({"row": rows, "e": e, "treated": d, "key": f"{g}|{e}|" + pd.Series(
                grid.first[rows].astype(int) * 10 + code[rows]).astype(str), "y": grid.y[rows, t],
                "dy": grid.y[rows, t] - grid.mean(rows, g - base_months, g - 1), "group": grid.group[rows]})
            if covariates:
                part = part.assign(x_pre=grid.mean(rows, g - base_months, g - 1), x_year=grid.mean(rows, g - 12, g - 1),
                                   x_tenure=grid.mean(rows, 0, g - 1), x_last=np.nan_to_num(grid.y[rows, g - 1]),
                                   x_recency=(g - 1 - grid.last[rows, g - 1]).astype(float))
            parts.append(part)
    return pd.concat(parts, ignore_index=True)


def ref_strata(cells):
    key = pd.factorize(cells["key"])[0]
    d = cells["treated"].to_numpy(dtype=float)
    n_t, n_c = np.bincount(key, weights=d), np.bincount(key, weights=1 - d)
    keep = (n_t[key] > 0) & (n_c[key] > 0)
    w = np.where(d == 1, 1.0, (n_t / np.where(n_c > 0, n_c, 1))[key])[keep]
    return keep, pd.factorize(key[keep])[0], w


def ref_cluster_covariance(fit, leverage, groups):
    x, w = fit.model.exog, fit.model.weights
    scores = x * (w * np.asarray(fit.resid) / np.sqrt(1 - np.clip(leverage, 0, 0.99)))[:, None]
    codes = pd.factorize(groups)[0]
    per_cluster = np.zeros((codes.max() + 1, x.shape[1]))
    np.add.at(per_cluster, codes, scores)
    g = len(per_cluster)
    return g / (g - 1) * fit.normalized_cov_params @ (per_cluster.T @ per_cluster) @ fit.normalized_cov_params


def ref_regression(cells: list[pd.DataFrame], covariates=()):
    keep, key, w = ref_strata(cells[0])
    total_w = np.bincount(key, weights=w)

    def demean(v):
        return v - (np.bincount(key, weights=w * v) / total_w)[key]

    c0 = cells[0][keep]
    d = c0["treated"].to_numpy()
    tr, groups, k = d == 1, c0["row"].to_numpy(), 2 + len(covariates)
    ys, xs, ws, gs, hs = [], [], [], [], []
    for j, frame in enumerate(cells):
        c = frame[keep]
        x = np.zeros((len(c) + tr.sum(), k * len(cells)))
        x[:len(c), j * k:j * k + k - 1] = np.column_stack([d - 0.5] + [demean(c[v].to_numpy()) for v in covariates])
        x[len(c):, j * k + k - 1] = 1.0
        xs.append(x)
        ys.append(np.r_[demean(c["dy"].to_numpy()), c["y"].to_numpy()[tr]])
        ws.append(np.r_[w, np.ones(tr.sum())])
        gs.append(np.r_[groups, groups[tr]])
        hs.append(np.r_[w / total_w[key], np.full(tr.sum(), 1 / tr.sum())])
    fit = sm.WLS(np.concatenate(ys), np.vstack(xs), weights=np.concatenate(ws)).fit()
    cov = ref_cluster_covariance(fit, np.concatenate(hs), np.concatenate(gs))
    return np.asarray(fit.params), cov, pd.unique(groups[tr]).size, pd.unique(groups[~tr]).size


def ref_leads_test(cells):
    keep, key, w = ref_strata(cells)
    c = cells[keep]
    times = np.sort(pd.unique(c["e"]))
    e, d = c["e"].to_numpy(), c["treated"].to_numpy(dtype=float)
    x = np.column_stack([(d - 0.5) * (e == t) for t in times])
    y = c["dy"].to_numpy()
    y = y - (np.bincount(key, weights=w * y) / np.bincount(key, weights=w))[key]
    fit = sm.WLS(y, x, weights=w).fit()
    b = np.asarray(fit.params)
    v = ref_cluster_covariance(fit, w / np.bincount(key, weights=w)[key], c["row"].to_numpy())
    if np.linalg.cond(v) > 1e12:  # a lead whose comparisons fit exactly: zero variance up to rounding
        return np.nan, np.nan
    stat = float(b @ np.linalg.solve(v, b))
    return stat, float(chi2.sf(stat, len(b)))


def subset(cells, group):
    return cells if group == "all" else cells[(cells["treated"] == 0) | (cells["group"] == group)]


# -- the comparisons -------------------------------------------------------------------------------

def test_reference_covariance_is_statsmodels_cluster_covariance_without_leverage():
    rng = np.random.default_rng(3)
    x = sm.add_constant(rng.normal(size=(200, 2)))
    groups = np.repeat(np.arange(50), 4)
    y = x @ [1.0, 2.0, -1.0] + rng.normal(size=50)[groups] + rng.normal(size=200)
    w = rng.uniform(0.5, 2, 200)
    fit = sm.WLS(y, x, weights=w).fit()
    ref = sm.WLS(y, x, weights=w).fit(cov_type="cluster", cov_kwds={"groups": groups}).cov_params()
    np.testing.assert_allclose(ref_cluster_covariance(fit, np.zeros(200), groups) * 199 / 197, ref, rtol=1e-10)


def test_sparse_panel_gives_the_dense_grid(small):
    dense = small["grid"]
    sparse = did.PanelGrid.build(small["sparse"], small["customers"], loyalty.PANEL_OUTCOMES,
                                 months=(small["start"], small["end"]))
    assert sparse.n_months == dense.n_months
    for o in loyalty.PANEL_OUTCOMES:
        np.testing.assert_array_equal(sparse.cumulative[o], dense.cumulative[o])


@pytest.mark.filterwarnings("ignore:The design matrix is rank-deficient")  # the reference on thin strata
@pytest.mark.parametrize("control_group", ["later_treated", "not_yet_treated"])
@pytest.mark.parametrize("outcomes,covariates", [(("orders",), did.HISTORY_COVARIATES), (("spend",), ()),
                                                 (("gross_sales", "orders"), did.HISTORY_COVARIATES)])
def test_did_regression_matches_stacked_statsmodels(small, control_group, outcomes, covariates):
    groups = ("all", "points", "vip")
    fits = did.did_regression(small["grid"], outcomes, range(1, 13), 6, control_group, groups, covariates)
    cells = [ref_cells(Dense(small["panel"], small["customers"], o), range(1, 13), 6, control_group, bool(covariates))
             for o in outcomes]
    for g in groups:
        beta, cov, n_t, n_c = ref_regression([subset(c, g) for c in cells], covariates)
        new_beta, new_cov, pos = fits[g]
        np.testing.assert_allclose(new_beta, beta, rtol=RTOL, atol=RTOL * np.abs(beta).max())
        np.testing.assert_allclose(new_cov, cov, rtol=RTOL, atol=RTOL * np.abs(cov).max())
        assert (pos["n_treated"], pos["n_control"]) == (n_t, n_c)


@pytest.mark.parametrize("control_group", ["later_treated", "not_yet_treated"])
def test_event_study_and_pretrend_match_stacked_statsmodels(small, control_group):
    res = did.cohort_did(small["grid"], "orders", leads=6, lags=12, control_group=control_group,
                         groups=("all", "points", "vip"))
    times = [e for e in range(-6, 13) if e != -1]
    cells = ref_cells(Dense(small["panel"], small["customers"], "orders"), times, 1, control_group)
    for g in ("all", "points", "vip"):
        sub = subset(cells, g)
        curve = res.event_study[(res.event_study["tier"] == g) & (res.event_study["event_time"] != -1)]
        compared = [e for e in times if ref_strata(sub[sub["e"] == e])[0].any()]
        assert list(curve["event_time"]) == compared
        for e, row in curve.set_index("event_time").iterrows():
            beta, cov, n_t, n_c = ref_regression([sub[sub["e"] == e]])
            np.testing.assert_allclose([row["estimate"], row["se"]], [beta[0], np.sqrt(cov[0, 0])], rtol=RTOL,
                                       atol=1e-12)  # a single-pair cell: se 0 up to rounding
            assert (row["n_treated"], row["n_control"]) == (n_t, n_c)
        stat, p = ref_leads_test(sub[sub["e"] < -1])
        test = res.pretrend.set_index("tier").loc[g]
        np.testing.assert_allclose([test["chi2"], test["p_value"]], [stat, p], rtol=RTOL)
        assert np.isnan(stat) == (g in res.pretrend_missing)


def test_segment_sample_matches_the_subset_panel(small):
    panel, customers = small["panel"], small["customers"]
    within = customers["first_month"] < customers["first_month"].median()
    sub = customers[within]
    expected = loyalty.cohort_did(panel[panel["customer_id"].isin(sub.index)], sub, event_study=False, tiers=("all",))
    got = loyalty.cohort_did(small["grid"], customers, event_study=False, tiers=("all",), sample=within.to_numpy())
    pd.testing.assert_frame_equal(got.overall, expected.overall, rtol=RTOL)


def test_naive_gap_matches_statsmodels_cluster_ols(small):
    panel, customers = small["panel"], small["customers"]
    gap = loyalty.naive_gap(small["grid"], customers).set_index("tier")
    p = panel[panel["month"] >= customers["enrolled_month"].min()].merge(
        customers[["enrolled_month", "tier"]], left_on="customer_id", right_index=True)
    member = p["enrolled_month"].notna() & (p["month"] > p["enrolled_month"])
    never = p["enrolled_month"].isna()
    for tier in ("all", "points", "vip"):
        treated = member & ((p["tier"] == tier) if tier != "all" else True)
        d = p[treated | never]
        fit = sm.OLS(d["orders"].to_numpy(dtype=float), sm.add_constant(treated[treated | never].astype(float).to_numpy())
                     ).fit(cov_type="cluster", cov_kwds={"groups": pd.factorize(d["customer_id"])[0]})
        row = gap.loc[tier]
        np.testing.assert_allclose([row["non_member_mean"], row["gap"], row["gap_se"]],
                                   [fit.params[0], fit.params[1], np.sqrt(fit.cov_params()[1, 1])], rtol=RTOL)
        assert row["n_members"] == d.loc[treated, "customer_id"].nunique()
        assert row["n_non_members"] == d.loc[never, "customer_id"].nunique()
