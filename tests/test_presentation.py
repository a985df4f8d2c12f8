"""The presentation layer: one formatter, catalogues in step, charts that draw Chinese, analyses
that compute only, plots that behave like seaborn's, and the portfolio page."""

import ast
import importlib
import inspect
import json
import pkgutil
import re
import string
import warnings

import matplotlib.pyplot as plt
import pytest

from custlib import plots
from custlib.present import fmt, i18n
from custlib.stats import Estimate
from conftest import ROOT

ANALYSIS_MODULES = ["segmentation", "lifecycle", "loyalty", "satisfaction", "service", "marketing", "clv",
                    "funnel", "profiles", "text", "features", "causal.att", "causal.did"]


@pytest.fixture(autouse=True)
def english():
    i18n.set_language("en")
    yield
    i18n.set_language("en")


def _fields(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


def test_catalogues_have_the_same_keys_and_placeholders():
    en, zh = i18n.catalogue("en"), i18n.catalogue("zh")
    assert sorted(set(en) ^ set(zh)) == []
    differ = {k: (_fields(en[k]), _fields(zh[k])) for k in en if _fields(en[k]) != _fields(zh[k])}
    assert differ == {}


def test_chinese_catalogue_has_no_english_sentences():
    words = re.compile(r"[A-Za-z][a-z]+(?:[ -][A-Za-z][a-z]+){2,}")
    leaks = {k: v for k, v in i18n.catalogue("zh").items() if words.search(re.sub(r"\{[^}]*\}", "", v))}
    assert leaks == {}


@pytest.mark.parametrize("x, kind, expected", [
    (0.362, "pct", "36%"), (0.0462, "pct", "4.6%"), (0.043, "change", "+4.3%"), (-0.12, "change", "−12%"),
    (0.018, "pp", "+1.8 pp"), (1462990.14, "money", "CNY 1,462,990"), (12.5, "money", "CNY 12.50"),
    (14_600_000, "money", "CNY 14.6 million"), (1204, "count", "1,204"), (208.0, "days", "208 days"),
    (-0.3, "nps", "0"), (-0.5, "number", "−0.50"), (-0.0004, "change", "0.0%"), (0.004, "pp", "+0.4 pp"), (12.4, "nps", "+12"), (-15.2, "nps", "−15"), (1.7123, "ratio", "1.71"),
])
def test_values_read_as_their_kind(x, kind, expected):
    assert fmt.value(x, kind, currency="CNY", compact=kind == "money" and x > 1e7) == expected


def test_signed_money_keeps_the_sign_with_the_number():
    assert fmt.value(-1.7, "money", currency="CNY", signed=True) == "CNY −1.70"
    assert fmt.value(1.3, "money", currency="CNY", signed=True) == "CNY +1.30"


def test_estimates_and_intervals():
    e = Estimate(0.362, 0.0104, 0.342, 0.383, 1204)
    assert fmt.estimate(e, "pct") == "36% (95% CI 34%–38%, n = 1,204)"
    assert fmt.cell(e, "pct") == "36% (34%–38%)"
    assert fmt.cell(e, "pct", small_n=2000) == "too few (n = 1,204)"
    nps = {"estimate": -5.0, "ci_low": -15.2, "ci_high": -0.2, "n": 300}
    assert fmt.interval(nps, "nps") == "−15 to 0"
    assert fmt.pvalue(1.1e-6) == "p < 0.001" and fmt.pvalue(0.0312) == "p = 0.03" and fmt.pvalue(0.0042) == "p = 0.004"
    i18n.set_language("zh")
    assert fmt.estimate(e, "pct") == "36%（95%置信区间 34%–38%，n = 1,204）"
    assert fmt.value(14_600_000, "money", currency="CNY", compact=True) == "1,460万元"
    assert fmt.value(2.5e8, "money", currency="CNY", compact=True) == "2.5亿元"


def test_a_chart_with_chinese_labels_has_every_glyph():
    plots.use_style()
    fig, ax = plt.subplots()
    ax.bar(["华东", "华北", "西南", "未知"], [3, 2, 1, 4])
    ax.set_title("各区域净推荐值（NPS）−5 至 +12")
    ax.set_xlabel("区域")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph … missing from font(s)"
        fig.canvas.draw()
    plt.close(fig)


def _imports(module: str) -> set[str]:
    path = ROOT / "custlib" / (module.replace(".", "/") + ".py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


@pytest.mark.parametrize("module", ANALYSIS_MODULES)
def test_analyses_compute_only(module):
    """No analysis imports the report, presentation or plotting layers or writes files."""
    imported = _imports(module)
    assert not {n for n in imported if re.match(r"custlib\.(report|present|plots)\b", n)}
    source = (ROOT / "custlib" / (module.replace(".", "/") + ".py")).read_text(encoding="utf-8")
    assert not re.search(r"\.to_(csv|parquet|excel)\(|\bopen\([^)]*['\"]w|write_text\(", source)


@pytest.mark.parametrize("module", ["segmentation", "lifecycle", "loyalty", "satisfaction", "service", "marketing"])
def test_every_analysis_has_analyse(module):
    analyse = importlib.import_module(f"custlib.{module}").analyse
    assert list(inspect.signature(analyse).parameters)[0] == "data"


def _plot_functions():
    for info in pkgutil.iter_modules(plots.__path__):
        mod = importlib.import_module(f"custlib.plots.{info.name}")
        for name, f in inspect.getmembers(mod, inspect.isfunction):
            if f.__module__ == mod.__name__ and not name.startswith("_"):
                yield f"{info.name}.{name}", f


@pytest.mark.parametrize("name, f", list(_plot_functions()))
def test_plot_functions_take_ax(name, f):
    p = inspect.signature(f).parameters
    assert "ax" in p and p["ax"].default is None and p["ax"].kind == p["ax"].KEYWORD_ONLY


def test_importing_plots_changes_no_global_style():
    import subprocess
    import sys

    code = ("import matplotlib as mpl; before = dict(mpl.rcParams); "
            "import custlib.plots, custlib.plots.segmentation, custlib.plots.lifecycle, custlib.plots.loyalty, "
            "custlib.plots.satisfaction, custlib.plots.service, custlib.plots.marketing, custlib.plots.overview; "
            "changed = [k for k, v in mpl.rcParams.items() if not k.startswith('backend') and before[k] != v]; print(changed)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_portfolio_page_compares_units_from_kpis(tmp_path):
    from custlib.present import portfolio

    reports = tmp_path / "reports"
    kpis = {"segmentation": {"customers": 1200, "active_buyers": 800,
                             "revenue_12m": {"estimate": 0.05, "se": 0.02, "ci_low": 0.01, "ci_high": 0.09, "n": 900,
                                             "kind": "change", "current": 2.5e6, "previous": 2.38e6},
                             "gini": {"estimate": 0.61, "se": 0.01, "ci_low": 0.59, "ci_high": 0.63, "n": 900, "kind": "ratio"},
                             "monthly_revenue": {"month": ["2025-01", "2025-02", "2025-03"], "revenue": [1.0, 3.0, 2.0]},
                             "actions": ["Call the 120 at-risk VIP customers"]},
            "satisfaction": {"nps": {"estimate": 12.3, "se": 3, "ci_low": 6.4, "ci_high": 18.2, "n": 410, "kind": "nps"}}}
    for analysis, k in kpis.items():
        (reports / "u1" / "data" / analysis).mkdir(parents=True)
        (reports / "u1" / "data" / analysis / "kpis.json").write_text(json.dumps(k))
    manifest = {"run_finished": "2026-01-15T10:00:00", "run_date": "", "parameters": {
        "u1": {"display_name": "Unit one", "currency": "CNY", "language": "en"},
        "u2": {"display_name": "Unit two", "currency": "CNY", "language": "en"}},
        "reports": [{"unit": "u1", "analysis": a, "status": "ok", "html": f"u1/{a}.html"} for a in kpis]
        + [{"unit": "u2", "analysis": "segmentation", "status": "failed", "error": "boom", "html": None}]}
    title, body, language = portfolio.page_body(manifest, reports)
    assert language == "en" and "Unit one" in body and "Unit two" in body
    assert "+5.0% (+1.0% to +9.0%)" in body and "CNY 2.5 million" in body
    assert "+12" in body and "95% CI +6 to +18" in body and "0.61" in body
    assert "<svg" in body and "Call the 120 at-risk VIP customers" in body
    assert body.count("not measured") >= 6  # u1 lacks lifecycle and loyalty, u2 has nothing


def test_revenue_trend_matches_pandas_and_a_bootstrap(demo_unit, demo_dir):
    """Yearly revenue and its change, against the same sums in pandas; the delta-method
    standard error against 400 bootstrap resamples of customers (within 10%)."""
    import numpy as np
    import pandas as pd

    from custlib import overview

    data = demo_unit("stores")
    k = overview.unit_kpis(data)
    t = pd.read_parquet(demo_dir / "transactions.parquet")
    t = t[t["business_unit"] == "stores"]
    end = pd.Timestamp(data.params.observation_end)
    days = (end - pd.to_datetime(t["order_date"])).dt.days
    t = t[(days >= 0) & (days < 730)]
    recent = days.loc[t.index] < 365
    per = pd.DataFrame({"c": t["amount"].where(recent, 0), "p": t["amount"].where(~recent, 0),
                        "id": t["customer_id"]}).groupby("id").sum()
    assert k["revenue_12m"] == pytest.approx(per["c"].sum()) and k["revenue_prev_12m"] == pytest.approx(per["p"].sum())
    assert k["active_buyers"] == t.loc[recent & (t["amount"] > 0), "customer_id"].nunique()
    rng = np.random.default_rng(5)
    c, p = per["c"].to_numpy(), per["p"].to_numpy()
    boot = [c[i].sum() / p[i].sum() - 1 for i in (rng.integers(0, len(c), len(c)) for _ in range(400))]
    assert k["revenue_trend"].estimate == pytest.approx(c.sum() / p.sum() - 1)
    assert k["revenue_trend"].se == pytest.approx(np.std(boot), rel=0.1)
