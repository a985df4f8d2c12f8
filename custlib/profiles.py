"""Profiles of groups: which categories are over- or under-represented in a group, and whether
that is more than chance.

For each descriptive variable a group x category contingency table is tested with Pearson's
chi-square (scipy); each cell is judged by its adjusted standardized residual
``(O - E) / sqrt(E (1 - row share) (1 - column share))`` (Agresti, *Categorical Data Analysis*,
2.4.5), which is standard normal under independence. A cell is flagged when its variable's test
is significant after Holm's correction across variables and the residual exceeds the Bonferroni
critical value for the cells of that table, so the family-wise error rate stays at ``alpha``.
The index is 100 x (share of the category in the group) / (share in the whole population).
Numbers only: the report tables are made by :mod:`custlib.present.segmentation`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as st
from statsmodels.stats.multitest import multipletests

from custlib.stats import Term, Unavailable, wilson_interval

TAG_YES = "yes"
CELL_COLUMNS = ["variable", "group", "category", "n_group", "count", "share", "ci_low", "ci_high",
                "share_overall", "index", "adj_residual"]


def expand_tags(values: pd.Series, prefix: str, sep: str = ";") -> pd.DataFrame:
    """One yes/no column (categorical) per tag of a multi-label column (e.g. ``interests``
    "travel;food").

    Columns are named ``"<prefix>: <tag>"``, tags in sorted order; a missing value means no
    tags. The tags are split once per distinct value, not once per row.
    """
    codes, distinct = pd.factorize(values)
    dummies = pd.Series(distinct, dtype=object).str.get_dummies(sep=sep)
    dummies = dummies.loc[:, [c for c in dummies.columns if c]]
    has = np.vstack([dummies.to_numpy(dtype=np.int8), np.zeros((1, dummies.shape[1]), dtype=np.int8)])[codes]
    return pd.DataFrame({f"{prefix}: {tag}": pd.Categorical.from_codes(has[:, j], ["no", TAG_YES])
                         for j, tag in enumerate(dummies.columns)}, index=values.index)


@dataclass(frozen=True)
class Profile:
    """Profile of groups over descriptive variables.

    ``cells``: one row per variable x group x category with ``n_group`` (group members with the
    variable known), ``count``, ``share`` and its Wilson 95% interval, ``share_overall``,
    ``index``, ``adj_residual``, ``flagged`` (significant skew) and ``direction``;
    ``tests``: one row per variable with ``chi2``, ``dof``, ``p_value``, ``p_holm``,
    ``cramers_v``, ``n`` and ``significant`` (a variable with one category or one group among
    the customers who have it has dof 0 and is not tested); ``n``: customers with a group.
    """

    cells: pd.DataFrame
    tests: pd.DataFrame
    alpha: float
    n: int

    def flagged(self, top: int | None = None) -> pd.DataFrame:
        """Significant skews, strongest first (by absolute adjusted residual)."""
        f = self.cells[self.cells["flagged"]]
        f = f.reindex(f["adj_residual"].abs().sort_values(ascending=False).index)
        return f.head(top) if top else f

    def variable_cells(self, variable: str) -> pd.DataFrame | Unavailable:
        """The cells of one variable, or why it could not be compared between the groups (the
        reason names the variable by its catalogue name ``names.profile_variable.<variable>``)."""
        cells = self.cells[self.cells["variable"] == variable]
        if len(cells):
            return cells
        return Unavailable("segmentation.unavailable.variable_not_compared",
                           {"variable": Term(f"names.profile_variable.{variable}")})


def _one_variable(g: np.ndarray, g_names: np.ndarray, values: pd.Series, name: str) -> tuple[pd.DataFrame, dict]:
    """Test and cells of one variable; ``g``: group codes of the rows (-1 = no group) into the
    sorted ``g_names``. Only the groups and categories of rows with both known take part."""
    c, c_names = pd.factorize(values, sort=True)
    known = (g >= 0) & (c >= 0)
    obs = np.bincount(g[known] * len(c_names) + c[known], minlength=len(g_names) * len(c_names))
    obs = obs.reshape(len(g_names), len(c_names)).astype(float)
    present_g, present_c = obs.sum(axis=1) > 0, obs.sum(axis=0) > 0
    obs, g_names, c_names = obs[present_g][:, present_c], g_names[present_g], np.asarray(c_names)[present_c]
    n = int(obs.sum())
    if obs.shape[0] < 2 or obs.shape[1] < 2:
        return pd.DataFrame(), {"variable": name, "chi2": 0.0, "dof": 0, "p_value": 1.0, "n": n,
                                "cramers_v": 0.0, "cells": obs.size}
    chi2, p, dof, expected = st.chi2_contingency(obs, correction=False)
    row = obs.sum(axis=1, keepdims=True)
    col = obs.sum(axis=0, keepdims=True)
    resid = (obs - expected) / np.sqrt(expected * (1 - row / n) * (1 - col / n))
    share = obs / row
    lo, hi = wilson_interval(obs, np.broadcast_to(row, obs.shape))
    overall = col / n
    cells = pd.DataFrame({
        "variable": name,
        "group": np.repeat(g_names, obs.shape[1]),
        "category": np.tile(c_names, obs.shape[0]),
        "n_group": np.repeat(row.ravel(), obs.shape[1]).astype(int),
        "count": obs.ravel().astype(int),
        "share": share.ravel(), "ci_low": np.asarray(lo).ravel(), "ci_high": np.asarray(hi).ravel(),
        "share_overall": np.broadcast_to(overall, obs.shape).ravel(),
        "index": 100 * (share / overall).ravel(),
        "adj_residual": resid.ravel(),
    })
    v = float(np.sqrt(chi2 / (n * (min(obs.shape) - 1))))
    return cells, {"variable": name, "chi2": float(chi2), "dof": int(dof), "p_value": float(p), "n": n,
                   "cramers_v": v, "cells": obs.size}


def profile(groups: pd.Series, attributes: pd.DataFrame, alpha: float = 0.05,
            tag_columns: tuple[str, ...] = (), min_n: int = 1,
            what: str = "segmentation.what.profiles_groups") -> Profile | Unavailable:
    """Profile ``groups`` (one label per row) over the categorical columns of ``attributes``.

    Missing values are left out per variable (e.g. age of enterprise accounts), so each test
    uses the rows where the variable is known. ``tag_columns`` are multi-label columns
    (``"a;b"``): each tag becomes a yes/no variable and only its "yes" cells are reported.
    Unavailable (naming ``what``, a catalogue key) with fewer than ``min_n`` labelled rows or
    fewer than two groups.
    """
    n, n_groups = int(groups.notna().sum()), groups.nunique()
    if n < min_n:
        return Unavailable.too_few(what, n, min_n)
    if n_groups < 2:
        return Unavailable("segmentation.unavailable.one_group", {"what": Term(what), "n": n})
    attrs = attributes.drop(columns=list(tag_columns))
    for c in tag_columns:
        attrs = attrs.join(expand_tags(attributes[c], c))
    tagged = [c for c in attrs.columns if c.split(": ")[0] in tag_columns]
    g, g_names = pd.factorize(groups, sort=True)
    parts, tests = [], []
    for name in attrs.columns:
        cells, test = _one_variable(g, np.asarray(g_names), attrs[name], name)
        parts.append(cells)
        tests.append(test)
    tests = pd.DataFrame(tests)
    tests["p_holm"] = multipletests(tests["p_value"], method="holm")[1]
    tests["significant"] = tests["p_holm"] < alpha
    parts = [p for p in parts if len(p)]
    cells = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=CELL_COLUMNS)
    crit = tests.set_index("variable").apply(lambda t: st.norm.isf(alpha / 2 / max(t["cells"], 1)), axis=1)
    sig_var = tests.set_index("variable")["significant"]
    cells["flagged"] = (cells["variable"].map(sig_var).astype(bool)
                        & (cells["adj_residual"].abs() > cells["variable"].map(crit)))
    cells["direction"] = np.where(cells["adj_residual"] > 0, "over", "under")
    cells = cells[~cells["variable"].isin(tagged) | (cells["category"] == TAG_YES)].reset_index(drop=True)
    return Profile(cells, tests.drop(columns="cells"), alpha, n)
