"""The runner publishes self-contained HTML, records failures, and keeps the last good report."""

import json
import re
import shutil
import subprocess
import sys

import nbformat
import pandas as pd
import pytest

from custlib import demo, runner
from custlib.contract import ANALYSES
from conftest import ROOT

STUB = [
    ("code", 'business_unit = "online"\nproject_root = ".."\nrun_date = ""\ncheck_data = True', {"tags": ["parameters"]}),
    ("code", "from custlib import overview, report, sources\n"
             "from custlib.plots import overview as overview_plots\n"
             "data = sources.load_unit(business_unit, project_root, run_date, check=check_data)\n"
             "report.header(data, 'segmentation')", {}),
    ("markdown", "## Revenue", {}),
    ("code", 'import sys; print("for analysts", file=sys.stderr)\n'
             'overview_plots.monthly_bars(overview.monthly_activity(data), value="revenue", title="Revenue", ylabel="CNY")', {}),
]


def _write_stub(path, fail=False):
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
    for i, (kind, src, meta) in enumerate(STUB):
        cell = (nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell)(src, metadata=meta)
        cell["id"] = f"c{i}"
        nb.cells.append(cell)
    if fail:
        nb.cells.append(nbformat.v4.new_code_cell('raise RuntimeError("planted failure")'))
        nb.cells[-1]["id"] = "fail"
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project root with the real params, a stub segmentation notebook and small demo data."""
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(ROOT / "params", root / "params")
    (root / "notebooks").mkdir()
    _write_stub(root / "notebooks" / ANALYSES["segmentation"].notebook)
    demo.generate(root / "data" / "demo", customers=600, seed=3)
    return root


@pytest.fixture(scope="module")
def published(project):
    """The stub segmentation report of two units, rendered once for the module."""
    return runner.run(project, units=["online", "b2b"], analyses=["segmentation"], jobs=2,
                      run_date="2026-01-15", progress=False)


def test_reports_are_self_contained_and_code_free(project, published):
    assert [r.status for r in published] == ["ok", "ok"]
    page = (project / "reports" / "online" / "segmentation.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?https?://|url\(\s*["']?https?://|@import""", page)
    assert "<script" not in page and "data:image/png;base64," in page
    assert "import sys" not in page and "for analysts" not in page and "Traceback" not in page
    assert "Online shop" in page and "2026-01-15" in page
    assert (project / "reports" / "online" / "segmentation.ipynb").exists()
    manifest = json.loads((project / "reports" / "manifest.json").read_text())
    assert {(r["unit"], r["status"]) for r in manifest["reports"]} == {("online", "ok"), ("b2b", "ok")}
    assert set(manifest["data_fingerprints"]) == {"online", "b2b"}
    index = (project / "reports" / "index.html").read_text()
    assert 'href="online/segmentation.html"' in index and "B2B accounts" in index


def test_a_failing_report_keeps_the_last_good_one(project, published):
    good = (project / "reports" / "online" / "segmentation.html").read_bytes()
    _write_stub(project / "notebooks" / ANALYSES["segmentation"].notebook, fail=True)
    try:
        results = runner.run(project, units=["online", "stores"], analyses=["segmentation"], jobs=2,
                             progress=False)
    finally:
        _write_stub(project / "notebooks" / ANALYSES["segmentation"].notebook)
    assert [r.status for r in results] == ["failed", "failed"]
    assert "planted failure" in results[0].error
    assert (project / "reports" / "online" / "segmentation.html").read_bytes() == good
    assert (project / "reports" / "online" / "segmentation.failed.ipynb").exists()
    assert not list((project / "reports").rglob(".*.tmp"))
    index = (project / "reports" / "index.html").read_text()
    assert "status-failed" in index and "last good report kept" in index


def _cli(project, *args):
    return subprocess.run([sys.executable, "-m", "custlib.cli", "--root", str(project), *args],
                          capture_output=True, text=True)


def test_cli_exit_codes_and_clear_data_errors(project):
    assert _cli(project, "run", "--bu", "online", "--analysis", "segmentation", "--jobs", "1").returncode == 0
    data = project / "data" / "demo"
    original = data / "transactions.parquet"
    backup = original.read_bytes()
    tx = pd.read_parquet(original)
    tx["amount"] = tx["amount"].astype(str)
    tx.loc[5, "amount"] = "n/a"
    original.unlink()
    tx.to_csv(data / "transactions.csv", index=False)
    try:
        before = (data / "transactions.csv").read_bytes()
        out = _cli(project, "run", "--bu", "online", "--analysis", "segmentation")
        assert out.returncode == 2
        assert "transactions.csv" in out.stderr and "'amount'" in out.stderr and "1 of" in out.stderr
        assert "Traceback" not in out.stderr
        assert (data / "transactions.csv").read_bytes() == before
    finally:
        (data / "transactions.csv").unlink()
        original.write_bytes(backup)
    bad = project / "params" / "business_units" / "stores.yaml"
    keep = bad.read_text()
    bad.write_text(keep + "\nsmall_sample_n: -3\n")
    try:
        out = _cli(project, "run", "--bu", "stores")
        assert out.returncode == 2 and "small_sample_n" in out.stderr and "Traceback" not in out.stderr
    finally:
        bad.write_text(keep)
