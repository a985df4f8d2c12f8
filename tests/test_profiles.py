"""Profiles: index and adjusted standardized residuals against hand computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custlib.profiles import expand_tags, profile
from custlib.stats import Unavailable


def _groups_and_values(table: dict[str, dict[str, int]]) -> tuple[pd.Series, pd.Series]:
    g, v = [], []
    for group, counts in table.items():
        for cat, k in counts.items():
            g += [group] * k
            v += [cat] * k
    return pd.Series(g), pd.Series(v)


def test_index_and_adjusted_residual_match_hand_computation():
    # A: 30 x, 10 y; B: 20 x, 40 y. E(A,x) = 40*50/100 = 20;
    # adjusted residual = (30-20) / sqrt(20 * (1-0.4) * (1-0.5)) = 10/sqrt(6); index = (30/40)/(50/100).
    g, v = _groups_and_values({"A": {"x": 30, "y": 10}, "B": {"x": 20, "y": 40}})
    p = profile(g, pd.DataFrame({"var": v}))
    cell = p.cells.set_index(["group", "category"]).loc[("A", "x")]
    assert cell["adj_residual"] == pytest.approx(10 / np.sqrt(6))
    assert cell["index"] == pytest.approx(150.0)
    assert cell["share"] == pytest.approx(0.75) and cell["n_group"] == 40
    assert cell["ci_low"] < 0.75 < cell["ci_high"]
    test = p.tests.iloc[0]
    assert test["chi2"] == pytest.approx(100 / 20 * 2 + 100 / 30 * 2)  # = residual^2 in a 2x2 table
    assert test["significant"] and cell["flagged"] and cell["direction"] == "over"
    assert p.cells.set_index(["group", "category"]).loc[("A", "y"), "direction"] == "under"


def test_independent_variable_is_not_flagged_and_missing_values_are_left_out():
    g, v = _groups_and_values({"A": {"x": 20, "y": 20}, "B": {"x": 30, "y": 30}})
    v[:5] = None  # five unknown values in group A
    p = profile(g, pd.DataFrame({"var": v}))
    assert not p.tests["significant"].any()
    assert not p.cells["flagged"].any()
    assert p.tests.iloc[0]["n"] == 95
    assert p.flagged().empty


def test_rows_without_a_group_take_no_part_not_even_their_categories():
    g, v = _groups_and_values({"A": {"x": 30, "y": 10}, "B": {"x": 20, "y": 40}})
    g = pd.concat([g, pd.Series([None] * 7)], ignore_index=True)
    v = pd.concat([v, pd.Series(["z"] * 7)], ignore_index=True)
    p = profile(g, pd.DataFrame({"var": v.astype("category")}))
    assert set(p.cells["category"]) == {"x", "y"} and p.n == 100 and p.tests.iloc[0]["n"] == 100
    cell = p.cells.set_index(["group", "category"]).loc[("A", "x")]
    assert cell["adj_residual"] == pytest.approx(10 / np.sqrt(6))


def test_tags_become_yes_no_variables():
    tags = expand_tags(pd.Series(["travel;food", None, "food"]), "interests")
    assert list(tags.columns) == ["interests: food", "interests: travel"]
    assert tags["interests: food"].tolist() == ["yes", "no", "yes"]
    assert expand_tags(pd.Series(["", None, "a;;b"]), "t").astype(str).to_dict("list") == {
        "t: a": ["no", "no", "yes"], "t: b": ["no", "no", "yes"]}
    g = pd.Series(["A"] * 50 + ["B"] * 50)
    interests = pd.Series(["food"] * 45 + [None] * 5 + [None] * 45 + ["food"] * 5)
    p = profile(g, pd.DataFrame({"interests": interests}), tag_columns=("interests",))
    assert set(p.cells["category"]) == {"yes"}
    top = p.flagged()
    assert top.iloc[0]["variable"] == "interests: food"
    assert top.iloc[0]["index"] == pytest.approx(180.0) and top.iloc[0]["group"] == "A"


def test_one_group_or_too_few_customers_is_unavailable_not_an_error():
    g, v = _groups_and_values({"A": {"x": 30, "y": 10}})
    one = profile(g, pd.DataFrame({"var": v}), what="segmentation.what.profiles_value")
    assert isinstance(one, Unavailable) and "value tiers" in one.reason and "one group" in one.reason
    g, v = _groups_and_values({"A": {"x": 3}, "B": {"y": 2}})
    few = profile(g, pd.DataFrame({"var": v}), min_n=30)
    assert isinstance(few, Unavailable) and "30" in few.reason


def test_variables_with_one_category_are_not_tested():
    g, v = _groups_and_values({"A": {"x": 30, "y": 10}, "B": {"x": 20, "y": 40}})
    p = profile(g, pd.DataFrame({"var": v, "region": "north"}))
    assert set(p.cells["variable"]) == {"var"}
    tests = p.tests.set_index("variable")
    assert tests.loc["region", "dof"] == 0 and not tests.loc["region", "significant"]
    region = p.variable_cells("region")
    assert isinstance(region, Unavailable) and region.reason.startswith("Region cannot be compared")
    assert len(p.variable_cells("var")) == 4
    only = profile(g, pd.DataFrame({"region": "north"}, index=g.index))  # nothing to test at all
    assert only.cells.empty and only.flagged().empty and only.n == 100
