"""The same Ibis code on DuckDB and PostgreSQL: validation and every feature/aggregate function
give equal results on one generated demo read by both engines.

Needs a PostgreSQL server: ``CUSTLIB_TEST_POSTGRES=postgresql://user@host:port/database``
(``.ci/run`` starts a throwaway cluster and sets it). The tests write the contract tables into
the schema ``custlib_engines`` of that database (dropped first and at the end); the rows go in
reversed, so a result that depends on scan order (an unbroken tie) shows up as a difference.

Tolerance: floats equal within a relative 1e-9 (plus 1e-6 absolute, a millionth of a currency
unit, for sums that cancel to about zero): the engines add floats in different orders. Everything
else (counts, dates, ids, chosen categories and channels) is equal exactly.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import astuple, fields
from datetime import date
from urllib.parse import urlsplit

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ROOT

from custlib import contract, demo, features, overview, sources
from custlib.errors import CustlibDataError
from custlib.mapping import SourceMapping, TableSource
from custlib.params import unit_ids
from custlib.stats import Estimate

URL = os.environ.get("CUSTLIB_TEST_POSTGRES")
if not URL:
    pytest.skip("PostgreSQL parity tests need CUSTLIB_TEST_POSTGRES=postgresql://user@host:port/db "
                "(.ci/run starts a local server and sets it)", allow_module_level=True)

SCHEMA = "custlib_engines"
RTOL, ATOL = 1e-9, 1e-6
UNITS = ["online", "stores", "b2b"]
RUN_DATE = "2026-01-15"


@pytest.fixture(scope="module")
def demo_300(tmp_path_factory):
    out = tmp_path_factory.mktemp("engines")
    demo.generate(out, customers=300, seed=11)
    return out


def _arrow(demo_dir, table: str, sql: str | None = None) -> pa.Table:
    """A demo table as Arrow (contract types as generated), optionally changed by DuckDB SQL over ``t``."""
    con = duckdb.connect()
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{demo_dir / f'{table}.parquet'}')")
    return con.sql(sql or "SELECT * FROM t").fetch_arrow_table()


def _reversed(tbl: pa.Table) -> pa.Table:
    return tbl.take(pa.array(range(tbl.num_rows - 1, -1, -1)))


@pytest.fixture(scope="module")
def pg(demo_300):
    """The demo's tables in SCHEMA (rows reversed); yields (ibis connection, URL of the schema)."""
    import ibis

    con = ibis.connect(URL)
    con.raw_sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}").close()
    for name in contract.TABLES:
        if (demo_300 / f"{name}.parquet").exists():
            con.create_table(name, _reversed(_arrow(demo_300, name)), database=SCHEMA)
    parts = urlsplit(URL)
    yield con, parts._replace(path=f"/{parts.path.strip('/').split('/')[0]}/{SCHEMA}").geturl()
    con.raw_sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE").close()
    con.disconnect()


# -- comparing -------------------------------------------------------------------------------------

def assert_same(duck, post, keys: list[str] | None = None) -> None:
    """Equal results: frames sorted by their keys, floats within RTOL/ATOL, the rest exactly."""
    if isinstance(duck, dict):
        assert duck.keys() == post.keys()
        for k in duck:
            assert_same(duck[k], post[k])
    elif isinstance(duck, Estimate):
        assert [f.name for f in fields(duck)] == [f.name for f in fields(post)]
        for a, b in zip(astuple(duck), astuple(post)):
            assert_same(a, b)
    elif isinstance(duck, float):
        assert duck == pytest.approx(post, rel=RTOL, abs=ATOL, nan_ok=True)
    elif isinstance(duck, pd.DataFrame):
        if keys:
            duck = duck.reset_index() if keys[0] not in duck.columns else duck
            post = post.reset_index() if keys[0] not in post.columns else post
            duck, post = (f.sort_values(keys, kind="stable").reset_index(drop=True) for f in (duck, post))
        assert len(duck) > 0, "nothing compared"
        pd.testing.assert_frame_equal(duck, post, check_exact=False, rtol=RTOL, atol=ATOL)
    else:
        assert duck == post


# Every public function of features.py (as_table only wraps its input) and the overview aggregates,
# with the columns that key their rows.
def _calls(data: sources.UnitData) -> dict[str, tuple]:
    end, tx = data.params.observation_end, data.transactions
    cal_end, lapse = date(2025, 6, 30), 60
    return {
        "customer_summary": (lambda: features.customer_summary(tx, end), ["customer_id"]),
        "customer_summary (calibration)": (
            lambda: features.customer_summary(tx, end, calibration_end=cal_end, freq="D"), ["customer_id"]),
        "customer_aggregates": (
            lambda: features.customer_aggregates(tx, end, data.params.category_tiers), ["customer_id"]),
        "survey_followup": (
            lambda: features.survey_followup(data.survey_responses, tx, end, lapse), ["response_id"]),
        "customer_month_panel": (
            lambda: features.customer_month_panel(tx, end, date(2024, 1, 1)), ["customer_id", "month"]),
        "customer_snapshots": (
            lambda: features.customer_snapshots(tx, [date(2024, 12, 31), cal_end, end]), ["customer_id", "snapshot"]),
        "purchase_day_counts": (lambda: features.purchase_day_counts(tx, end, cal_end), ["date"]),
        "lapse_times": (lambda: features.lapse_times(tx, end, lapse), ["customer_id"]),
        "unit_kpis": (lambda: overview.unit_kpis(data), None),
        "monthly_activity": (lambda: overview.monthly_activity(data), ["month"]),
        "monthly_responses": (lambda: overview.monthly_responses(data), ["month"]),
        "table_counts": (lambda: overview.table_counts(data), ["table"]),
    }


FEATURES = {"customer_summary", "customer_aggregates", "survey_followup", "customer_month_panel",
            "customer_snapshots", "purchase_day_counts", "lapse_times"}


def test_every_feature_function_is_compared():
    public = {n for n, f in inspect.getmembers(features, inspect.isfunction)
              if not n.startswith("_") and f.__module__ == features.__name__} - {"as_table"}
    assert public == FEATURES, "a feature function was added or renamed: compare it in _calls"


@pytest.mark.parametrize("unit", UNITS)
def test_features_equal_on_duckdb_and_postgres(unit, demo_300, pg):
    _, url = pg
    duck = sources.load_unit(unit, ROOT, run_date=RUN_DATE, data_source=demo_300)
    post = sources.load_unit(unit, ROOT, run_date=RUN_DATE, data_source=url)
    assert post.source.con.name == "postgres" and duck.source.con.name == "duckdb"
    d_calls, p_calls = _calls(duck), _calls(post)
    assert FEATURES <= {name.split(" ")[0] for name in d_calls}
    for name, (run, keys) in d_calls.items():
        try:
            assert_same(run(), p_calls[name][0](), keys)
        except AssertionError as e:
            raise AssertionError(f"{unit}: {name} differs between DuckDB and PostgreSQL\n{e}") from None


# -- validation ------------------------------------------------------------------------------------

# one planted problem per case: (table, DuckDB SQL over the demo table t, CustlibDataError fields)
PROBLEMS = {
    "duplicate key": ("transactions", "SELECT * FROM t UNION ALL (SELECT * FROM t ORDER BY order_id LIMIT 1)",
                      dict(table="transactions", column="order_id", rule="unique", count=1)),
    "orphan reference": ("transactions", "SELECT * REPLACE (CASE WHEN order_id = (SELECT min(order_id) FROM t) "
                                         "THEN 'nobody' ELSE customer_id END AS customer_id) FROM t",
                         dict(table="transactions", column="customer_id", rule="references", count=1)),
    "out of range": ("survey_responses", "SELECT * REPLACE (CASE WHEN response_id = (SELECT min(response_id) "
                                         "FROM t) THEN 11 ELSE nps END AS nps) FROM t",
                     dict(table="survey_responses", column="nps", rule="values are above 10", count=1)),
    "not allowed": ("loyalty_members", "SELECT * REPLACE (CASE WHEN customer_id = (SELECT min(customer_id) "
                                       "FROM t) THEN 'diamond' ELSE tier END AS tier) FROM t",
                    dict(table="loyalty_members", column="tier", count=1)),
    "text dates": ("customers", "SELECT * REPLACE (CASE WHEN customer_id = (SELECT min(customer_id) FROM t) "
                                "THEN '2024-13-02' ELSE CAST(CAST(signup_date AS DATE) AS VARCHAR) END "
                                "AS signup_date) FROM t",
                   dict(table="customers", column="signup_date", rule="values are not dates", count=1)),
    "unknown unit": ("customers", "SELECT * REPLACE (CASE WHEN customer_id = (SELECT min(customer_id) FROM t) "
                                  "THEN 'onlin' ELSE business_unit END AS business_unit) FROM t",
                     dict(table="customers", column="business_unit", rule="known unit", count=1)),
}
ERROR_FIELDS = ("table", "column", "rule", "count", "total", "message")


def _outcome(source: sources.Source) -> dict | None:
    try:
        sources.validate(source, unit_ids(ROOT / "params"))
    except CustlibDataError as e:
        out = {f: getattr(e, f) for f in ERROR_FIELDS}
        # examples name the row as the engine scanned it; the values are what must agree
        out["values"] = sorted(x.split(": ", 1)[-1] for x in e.examples)
        return out
    return None


def test_validation_passes_on_both(demo_300, pg):
    _, url = pg
    assert _outcome(sources.open_source(demo_300)) is None
    assert _outcome(sources.open_source(url)) is None


@pytest.mark.parametrize("case", PROBLEMS)
def test_validation_finds_the_same_problem(case, demo_300, pg, tmp_path):
    con, url = pg
    table, sql, expected = PROBLEMS[case]
    bad = _arrow(demo_300, table, sql)
    for f in demo_300.glob("*.parquet"):
        (tmp_path / f.name).symlink_to(f)
    (tmp_path / f"{table}.parquet").unlink()
    pq.write_table(bad, tmp_path / f"{table}.parquet")
    member = f"{table}__{case.replace(' ', '_')}"
    con.create_table(member, _reversed(bad), database=SCHEMA, overwrite=True)

    duck = _outcome(sources.open_source(tmp_path))
    post = _outcome(sources.open_source(url, SourceMapping(**{table: TableSource(file=member)})))
    assert duck is not None and post is not None
    assert {k: duck[k] for k in expected} == expected
    assert duck == post


def test_database_source_names_its_tables_without_the_password(pg):
    _, url = pg
    parts = urlsplit(url)
    with_password = parts._replace(netloc=f"{parts.username or 'postgres'}:secret@{parts.hostname}:{parts.port}")
    try:
        src = sources.open_source(with_password.geturl())
    except CustlibDataError as e:  # a server that checks passwords refuses the made-up one
        assert "secret" not in str(e)
        return
    assert src.files and not any("secret" in f for f in src.files.values())
    assert "secret" not in str(src.location)
    assert len(src.fingerprint()) == 16


def test_a_run_pointed_at_the_database_records_no_password(pg):
    """`custlib validate/run --data-source postgresql://…` validates the database; the manifest's
    parameters name it without the password."""
    from custlib import runner

    _, url = pg
    parts = urlsplit(url)
    with_password = parts._replace(netloc=f"{parts.username or 'postgres'}:secret@{parts.hostname}:{parts.port}")
    try:
        inputs = runner.check_inputs(ROOT, ["online"], data_source=with_password.geturl())
    except CustlibDataError as e:  # a server that checks passwords refuses the made-up one
        assert "secret" not in str(e)
        return
    assert inputs.refused == {} and inputs.data["online"].rows("customers") > 0
    assert "secret" not in inputs.parameters["online"]["data_source"]


def test_database_source_refuses_file_mappings(pg):
    _, url = pg
    mapping = SourceMapping(transactions=TableSource(decimal=","))
    with pytest.raises(CustlibDataError) as e:
        sources.open_source(url, mapping)
    assert (e.value.table, e.value.rule) == ("transactions", "mapping")
