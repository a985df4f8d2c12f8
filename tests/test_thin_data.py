"""The real notebooks on thin, partial and degenerate units: every report renders (with notes
where the data cannot support an estimate), is marked not available, or the unit is refused
before any run; never a Python exception in a report."""

import json
import re
import subprocess
import sys

import pandas as pd
import pytest

from custlib import runner
from custlib.errors import CustlibDataError
from conftest import ROOT
from thin_data import make_project

UNITS = {
    "n0": (0, "full"),
    "n5": (5, "full"),
    "n50_absent": (50, "absent"),
    "n50_empty": (50, "empty"),
    "one_time_buyers": (200, "one_time_buyers"),
    "degenerate": (300, "degenerate"),  # one class of everything, all members, no promoters
}
# Empty optional tables are read like absent ones (sources: a table without rows): n50_empty is
# checked against n50_absent before any run, not rendered a second time.
RENDERED = [u for u in UNITS if u != "n50_empty"]


@pytest.fixture(scope="module")
def thin_run(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("thin"), UNITS)
    results = runner.run(root, units=RENDERED, jobs=2, run_date="2026-01-15", progress=False)
    return root, {(r.unit, r.analysis): r for r in results}


def test_no_report_fails(thin_run):
    _, results = thin_run
    failed = {k: r.error for k, r in results.items() if r.status == "failed"}
    assert not failed


def test_statuses_follow_the_data(thin_run):
    root, results = thin_run
    assert {results["n0", a].status for a in runner.ANALYSES} == {"refused"}
    assert "n0" in results["n0", "segmentation"].error
    unit = "n50_absent"
    assert results[unit, "segmentation"].status == results[unit, "lifecycle"].status == "ok"
    assert results[unit, "loyalty_impact"].status == "not available"
    assert results[unit, "loyalty_impact"].error == "needs loyalty_members"
    assert results[unit, "satisfaction"].error == "needs survey_responses"
    assert results[unit, "marketing"].status == "ok"  # campaign sections say what is missing
    absent, empty = (runner.check_inputs(root, [u]) for u in ("n50_absent", "n50_empty"))
    assert {a: m for (_, a), m in empty.unavailable.items()} == {a: m for (_, a), m in absent.unavailable.items()}
    assert empty.refused == {} and empty.data["n50_empty"].rows("campaigns") == 0
    for unit in ("n5", "one_time_buyers", "degenerate"):
        assert {results[unit, a].status for a in runner.ANALYSES} == {"ok"}, unit
    manifest = json.loads((root / "reports" / "manifest.json").read_text())
    assert {r["status"] for r in manifest["reports"]} == {"ok", "not available", "refused"}
    index = (root / "reports" / "index.html").read_text()
    assert "needs Survey responses" in index and "status-not-available" in index


def test_reports_explain_what_is_missing(thin_run):
    root, _ = thin_run
    for unit in ("n5", "n50_absent", "one_time_buyers"):
        for analysis in ("segmentation", "lifecycle"):
            page = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "",
                          (root / "reports" / unit / f"{analysis}.html").read_text())
            assert "Traceback" not in page and "NaN" not in page and ">nan<" not in page
    lifecycle = (root / "reports" / "n50_absent" / "lifecycle.html").read_text()
    assert "cl-unavailable" in lifecycle and "leads" in lifecycle
    marketing = (root / "reports" / "n50_absent" / "marketing.html").read_text()
    assert "cl-unavailable" in marketing and "Campaigns table" in marketing
    assert "Traceback" not in marketing and ">nan<" not in marketing


def test_cli_exit_code_tells_a_scheduler(thin_run):
    root, _ = thin_run
    run = lambda *a: subprocess.run([sys.executable, "-m", "custlib.cli", "--root", str(root), *a],  # noqa: E731
                                    capture_output=True, text=True)
    out = run("run", "--bu", "n0", "n50_absent", "--analysis", "satisfaction", "--jobs", "1")
    assert out.returncode == 2 and "n0" in out.stderr and "Traceback" not in out.stderr
    out = run("run", "--bu", "n50_absent", "--analysis", "satisfaction", "--jobs", "1")
    assert out.returncode == 0 and "needs survey_responses" in out.stderr
    out = run("validate", "--bu", "n50_absent", "n5")
    assert out.returncode == 0
    assert re.search(r"leads\s+0\s+not in the data source", out.stdout) and "not available — needs loyalty_members" in out.stdout


def test_orders_only_unit_renders_segmentation_and_lifecycle(tmp_path):
    """A real transaction log (CDNOW) converted by hand into customers.csv and transactions.csv."""
    root = make_project(tmp_path, {})
    orders = pd.read_csv(ROOT / "tests" / "data" / "cdnow_sample_transactions.csv.gz", dtype={"customer_id": str})
    orders["customer_id"] = "C" + orders["customer_id"]
    folder = root / "data" / "cdnow"
    folder.mkdir(parents=True)
    first = orders.groupby("customer_id", as_index=False)["order_date"].min()
    customers = first.rename(columns={"order_date": "signup_date"}).assign(
        business_unit="cdnow", customer_type="individual", region="US", city="unknown", age=None,
        gender=None, income_band=None, interests=None, acquisition_channel="unknown")
    customers.to_csv(folder / "customers.csv", index=False)
    orders.assign(order_id=[f"O{i}" for i in range(len(orders))], business_unit="cdnow", discount=0.0,
                  quantity=1, channel="mail order", product_category="music").to_csv(folder / "transactions.csv", index=False)
    (root / "params" / "business_units" / "cdnow.yaml").write_text(
        "id: cdnow\ndisplay_name: CDNOW\ndata_source: data/cdnow\nobservation_end: 1998-06-30\ncurrency: USD\n")
    out = subprocess.run([sys.executable, "-m", "custlib.cli", "--root", str(root), "run", "--jobs", "2"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    manifest = json.loads((root / "reports" / "manifest.json").read_text())
    status = {r["analysis"]: (r["status"], r["error"]) for r in manifest["reports"]}
    assert status == {"segmentation": ("ok", None), "lifecycle": ("ok", None),
                      "loyalty_impact": ("not available", "needs loyalty_members"),
                      "satisfaction": ("not available", "needs survey_responses"),
                      "marketing": ("ok", None)}  # neither campaigns nor a second category: notes
    lifecycle = (root / "reports" / "cdnow" / "lifecycle.html").read_text()
    assert "CLV" in lifecycle and "cl-unavailable" in lifecycle  # the funnel: no leads
    churn = pd.read_csv(root / "reports" / "cdnow" / "data" / "lifecycle" / "targets" / "churn_risk.csv")
    assert churn["customer_id"].str.startswith("C").all()


def test_units_sharing_files_without_business_unit_are_refused(tmp_path):
    """Without a business_unit column a source belongs to the one unit that reads it; two units
    reading it would each see every customer."""
    root = make_project(tmp_path, {"east": (5, "full")})
    for f in (root / "data" / "east").glob("*.parquet"):
        pd.read_parquet(f).drop(columns="business_unit").to_parquet(f)
    assert runner.check_inputs(root, ["east"]).refused == {}
    west = (root / "params" / "business_units" / "east.yaml").read_text().replace("id: east", "id: west")
    (root / "params" / "business_units" / "west.yaml").write_text(west)
    with pytest.raises(CustlibDataError) as e:
        runner.check_inputs(root, ["east", "west"])
    assert (e.value.column, e.value.rule) == ("business_unit", "shared source")
