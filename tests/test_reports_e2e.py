"""The real notebooks end to end on a small demo (1,000 customers per unit), as `make
reports` runs them: every report renders; the stores unit (`language: zh`, regions and cities
in Chinese as the demo writes them) reads in Chinese with every glyph drawn; a unit with overridden cuts, NPS groups and DiD
window states its own values; the portfolio page compares the units."""

import hashlib
import json
import re
import shutil

import nbformat
import pytest
import yaml

from custlib import demo, runner
from custlib.contract import ANALYSES
from conftest import ROOT

OVERRIDES = {"segmentation": {"value_tier_cuts": [0.7, 0.9]},
             "satisfaction": {"promoter_min": 10, "detractor_max": 5},
             "loyalty": {"lags": 9}}
CODE_IDENTIFIER = re.compile(r"\b(ci_low|ci_high|se|p_alive|p_no_purchase|smd_after|smd_before|tenure_months|age_band|"
                             r"acquisition_channel|income_band|customer_type|became_at_risk|aipw_\w+|ipw_\w+)\b")


def _edit_yaml(path, update):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in update.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    shutil.copytree(ROOT / "params", root / "params")
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    data = root / "data" / "demo"
    demo.generate(data, customers=1_000, seed=11)
    _edit_yaml(root / "params" / "business_units" / "b2b.yaml", OVERRIDES)
    results = runner.run(root, jobs=2, run_date="2026-01-15", progress=False)
    return root, {(r.unit, r.analysis): r for r in results}


def _visible_text(page: str) -> str:
    page = re.sub(r"<style.*?</style>|<svg.*?</svg>", " ", page, flags=re.S)
    page = re.sub(r'src="data:image/png;base64,[^"]+"', "", page)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def test_every_report_renders(demo_run):
    _, results = demo_run
    assert {k: r.error for k, r in results.items() if r.status != "ok"} == {}
    assert len(results) == 3 * len(ANALYSES)


@pytest.mark.parametrize("analysis", list(ANALYSES))
@pytest.mark.parametrize("unit", ["online", "stores", "b2b"])
def test_reports_read_cleanly(demo_run, unit, analysis):
    root, _ = demo_run
    page = (root / "reports" / unit / f"{analysis}.html").read_text(encoding="utf-8")
    text = _visible_text(page)
    assert page.index('class="cl-headline"') < page.index("<h2")  # the findings come first
    assert not CODE_IDENTIFIER.search(text), CODE_IDENTIFIER.search(text).group(0)
    assert not re.search(r"\d[eE][+-]?\d{2}\b|\bnan\b|NaN|object at 0x|Traceback", text)
    assert not re.search(r"(?<![\d.])[−-]0(?:\.0+)?(?![\d.])", text), re.search(r".{30}[−-]0(?![\d.]).{10}", text)
    nb = nbformat.read(root / "reports" / unit / f"{analysis}.ipynb", as_version=4)
    stderr = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                     if o.output_type == "stream" and o.name == "stderr")
    assert "missing from font" not in stderr


@pytest.mark.parametrize("analysis", list(ANALYSES))
def test_a_chinese_unit_reads_in_chinese(demo_run, analysis):
    root, _ = demo_run
    text = _visible_text((root / "reports" / "stores" / f"{analysis}.html").read_text(encoding="utf-8"))
    english = re.findall(r"[A-Za-z][a-z]+(?:[ -][A-Za-z][a-z]+){2,}", text)
    assert english == []
    assert len(re.findall(r"[\u4e00-\u9fff]", text)) > 200


def test_chinese_category_values_are_kept(demo_run):
    root, _ = demo_run
    page = (root / "reports" / "stores" / "segmentation.html").read_text(encoding="utf-8")
    assert "华东" in page


def test_overridden_params_are_stated(demo_run):
    root, _ = demo_run
    text = {a: _visible_text((root / "reports" / "b2b" / f"{a}.html").read_text(encoding="utf-8")) for a in ANALYSES}
    assert "70%" in text["segmentation"] and "80%" not in text["segmentation"]
    band = lambda b: re.search(rf"(?<![\d.]){b}(?![\d.])", text["satisfaction"])  # not inside "48.0–62.3 h"
    assert band("0–5") and not band("0–6")
    assert "1–9" in text["loyalty_impact"] and "1–12" not in text["loyalty_impact"]


def test_portfolio_compares_the_units(demo_run):
    root, _ = demo_run
    page = (root / "reports" / "index.html").read_text(encoding="utf-8")
    for unit in ("online", "stores", "b2b"):
        kpis = json.loads((root / "reports" / unit / "data" / "segmentation" / "kpis.json").read_text())
        assert kpis["customers"] > 0
    assert page.count("95% CI") >= 3 * 6 and page.count("<svg") == 3


def _digests(folder):
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_rerunning_one_analysis_leaves_the_others_outputs_alone(demo_run):
    root, _ = demo_run
    data = root / "reports" / "b2b" / "data"
    before = {k: v for k, v in _digests(data).items() if k.parts[0] != "segmentation"}
    assert any(k.parts[0] == "lifecycle" and "targets" in k.parts for k in before)
    runner.run(root, units=["b2b"], analyses=["segmentation"], jobs=1, progress=False)
    after = {k: v for k, v in _digests(data).items() if k.parts[0] != "segmentation"}
    assert after == before


def test_marketing_outputs_hold_no_personal_field_and_only_the_units_customers(demo_run):
    import pandas as pd

    from custlib.contract import PERSONAL_FIELDS

    root, _ = demo_run
    customers = pd.read_parquet(root / "data" / "demo" / "customers.parquet")
    for unit in ("online", "stores", "b2b"):
        folder = root / "reports" / unit / "data" / "marketing"
        files = {p.relative_to(folder).as_posix(): pd.read_csv(p) for p in folder.rglob("*.csv")}
        assert {"campaign_effects.csv", "targets/next_best_category.csv"} <= set(files)
        assert list(files["campaign_effects.csv"].columns) == [
            "campaign", "segment_type", "segment", "outcome", "estimate", "se", "ci_low", "ci_high", "n_treated",
            "n_control", "method"]
        own = set(customers.loc[customers["business_unit"] == unit, "customer_id"])
        for name, df in files.items():
            assert not set(df.columns) & set(PERSONAL_FIELDS), name
            if name.startswith("targets/"):
                assert len(df) and set(df["customer_id"].astype(str)) <= own, name
