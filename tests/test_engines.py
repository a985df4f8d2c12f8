"""The same Ibis code on DuckDB, PostgreSQL and Spark: validation and every feature/aggregate
function give equal results on one generated demo read by DuckDB and by each other engine.

Each engine is compared when it is available and skipped on its own otherwise:

* PostgreSQL: ``CUSTLIB_TEST_POSTGRES=postgresql://user@host:port/database`` (``.ci/run``
  starts a throwaway cluster and sets it). The tests write the contract tables into the schema
  ``custlib_engines`` of that database (dropped first and at the end).
* Spark: ``CUSTLIB_TEST_SPARK=1`` (``make test-engines`` sets it) with PySpark installed
  (``pip install -e '.[spark]'``) and a Java 17 runtime. Spark runs in local mode (``local[2]``)
  in the test process and reads the tables as Parquet files of a temporary folder
  (``spark:local:<folder>``); the JVM takes some 15-30 s to start, so this stays out of
  ``make test``.

The rows go in reversed, so a result that depends on scan order (an unbroken tie) shows up as a
difference.

Tolerance: floats equal within a relative 1e-9 (plus 1e-6 absolute, a millionth of a currency
unit, for sums that cancel to about zero): the engines add floats in different orders. Everything
else (counts, dates, ids, chosen categories and channels) is equal exactly.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable
from dataclasses import astuple, dataclass, fields, is_dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ROOT

from custlib import contract, demo, features, overview, sources
from custlib.errors import CustlibDataError
from custlib.mapping import (SourceMapping, SparkURL, TableSource, is_database_url, parse_spark_url,
                             spark_url_under)
from custlib.params import unit_ids
from custlib.stats import Estimate

URL = os.environ.get("CUSTLIB_TEST_POSTGRES")
SPARK = os.environ.get("CUSTLIB_TEST_SPARK", "") not in ("", "0")

SCHEMA = "custlib_engines"
RTOL, ATOL = 1e-9, 1e-6
UNITS = ["online", "stores", "b2b"]
RUN_DATE = "2026-01-15"

needs_postgres = pytest.mark.skipif(not URL, reason="PostgreSQL parity tests need CUSTLIB_TEST_POSTGRES="
                                    "postgresql://user@host:port/db (.ci/run starts a local server and sets it)")
needs_spark = pytest.mark.skipif(not SPARK, reason="Spark parity tests need CUSTLIB_TEST_SPARK=1, PySpark "
                                 "(pip install -e '.[spark]') and Java 17 (make test-engines)")
ENGINES = [pytest.param("postgres", marks=needs_postgres), pytest.param("spark", marks=needs_spark)]


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


@dataclass
class Engine:
    """The demo on another engine: its Ibis backend name, the ``data_source`` that reads it and
    ``add(member, table)``, which stores one more table (rows reversed) and returns what
    ``sources.<table>.file`` names it by."""

    name: str
    url: str
    add: Callable[[str, pa.Table], str]


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


@pytest.fixture(scope="module")
def spark_folder(demo_300, tmp_path_factory):
    """The demo's tables as Parquet files (rows reversed) of a folder Spark reads; the local
    Spark session is stopped at the end. Its catalog lives in a temporary folder (by default
    Spark makes ./spark-warehouse in the working directory)."""
    folder = tmp_path_factory.mktemp("spark")
    for name in contract.TABLES:
        if (demo_300 / f"{name}.parquet").exists():
            pq.write_table(_reversed(_arrow(demo_300, name)), folder / f"{name}.parquet")
    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    with pytest.MonkeyPatch.context() as env:  # read by PySpark when it starts the JVM
        env.setenv("PYSPARK_SUBMIT_ARGS", f"--conf spark.sql.warehouse.dir={warehouse} pyspark-shell")
        yield folder
        from pyspark import SparkContext

        if SparkContext._active_spark_context is not None:
            SparkContext._active_spark_context.stop()


@pytest.fixture(scope="module", params=ENGINES)
def engine(request) -> Engine:
    if request.param == "postgres":
        con, url = request.getfixturevalue("pg")

        def add(member: str, table: pa.Table) -> str:
            con.create_table(member, _reversed(table), database=SCHEMA, overwrite=True)
            return member

        return Engine("postgres", url, add)
    folder = request.getfixturevalue("spark_folder")

    def add(member: str, table: pa.Table) -> str:
        pq.write_table(_reversed(table), folder / f"{member}.parquet")
        return f"{member}.parquet"

    return Engine("pyspark", f"spark:local:{folder}", add)


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
        "occasion_summary": (
            lambda: features.occasion_summary(tx, end, "quarterly", calibration_end=cal_end), ["customer_id"]),
        "occasion_summary (yearly)": (lambda: features.occasion_summary(tx, end, "yearly"), ["customer_id"]),
        "customer_aggregates": (
            lambda: features.customer_aggregates(tx, end, data.params.category_tiers), ["customer_id"]),
        "survey_followup": (
            lambda: features.survey_followup(data.survey_responses, tx, end, lapse), ["response_id"]),
        "customer_month_panel": (
            lambda: features.customer_month_panel(tx, end, date(2024, 1, 1)), ["customer_id", "month"]),
        "customer_month_panel (compact)": (  # ids as text: the categories' order is the engine's row order
            lambda: features.customer_month_panel(tx, end, date(2024, 1, 1), zeros=False).astype({"customer_id": str}),
            ["customer_id", "month"]),
        "customer_snapshots": (
            lambda: features.customer_snapshots(tx, [date(2024, 12, 31), cal_end, end]), ["customer_id", "snapshot"]),
        "purchase_day_counts": (lambda: features.purchase_day_counts(tx, end, cal_end), ["date"]),
        "lapse_times": (lambda: features.lapse_times(tx, end, lapse), ["customer_id"]),
        "unit_kpis": (lambda: overview.unit_kpis(data), None),
        "monthly_activity": (lambda: overview.monthly_activity(data), ["month"]),
        "monthly_responses": (lambda: overview.monthly_responses(data), ["month"]),
        "table_counts": (lambda: overview.table_counts(data), ["table"]),
    }


FEATURES = {"customer_summary", "occasion_summary", "customer_aggregates", "survey_followup",
            "customer_month_panel", "customer_snapshots", "purchase_day_counts", "lapse_times"}
CALENDAR_HELPERS = {"occasion_number", "last_whole_occasion"}  # arithmetic on dates, no query


def test_every_feature_function_is_compared():
    public = {n for n, f in inspect.getmembers(features, inspect.isfunction)
              if not n.startswith("_") and f.__module__ == features.__name__} - {"as_table", *CALENDAR_HELPERS}
    assert public == FEATURES, "a feature function was added or renamed: compare it in _calls"


@pytest.mark.parametrize("unit", UNITS)
def test_features_equal_on_duckdb_and(engine, unit, demo_300):
    # validation is compared by the tests below (check=False saves Spark a minute of queries)
    duck = sources.load_unit(unit, ROOT, run_date=RUN_DATE, data_source=demo_300, check=False)
    other = sources.load_unit(unit, ROOT, run_date=RUN_DATE, data_source=engine.url, check=False)
    assert other.source.con.name == engine.name and duck.source.con.name == "duckdb"
    d_calls, o_calls = _calls(duck), _calls(other)
    assert FEATURES <= {name.split(" ")[0] for name in d_calls}
    for name, (run, keys) in d_calls.items():
        try:
            assert_same(run(), o_calls[name][0](), keys)
        except AssertionError as e:
            raise AssertionError(f"{unit}: {name} differs between DuckDB and {engine.name}\n{e}") from None



ANALYSES = ("segmentation", "lifecycle", "loyalty", "satisfaction", "service", "marketing")
# the analyses fit models by numerical optimisation (which stops within its tolerance) and numerical
# differentiation on inputs that differ in their last bits between engines: floats to 1e-5 relative
ANALYSIS_RTOL = 1e-5


def _plain(x) -> bool:
    return x is None or isinstance(x, (str, int, float, bool, date, pd.Timestamp))


def _rows_sorted(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows (a named index as columns) in the order of their values as text, floats to 6
    significant digits so that the last bits do not decide."""
    rows = frame.reset_index(drop=isinstance(frame.index, pd.RangeIndex) and frame.index.name is None)
    key = pd.DataFrame({i: (c.map(lambda v: f"{v:.6g}") if c.dtype.kind == "f" else c.astype(str))
                        for i, (_, c) in enumerate(rows.items())})
    return rows.loc[key.sort_values(list(key.columns), kind="stable").index].reset_index(drop=True)


def assert_same_result(duck, other, path: str) -> None:
    """Two analysis results equal field by field (dataclasses and fitted objects through their
    attributes): frames and arrays to :data:`ANALYSIS_RTOL` (absolute: the module's), with rows in any order (engines
    return unordered rows; reports sort for display), everything else exactly."""
    if isinstance(duck, (pd.DataFrame, pd.Series)):
        d, o = (_rows_sorted(x.to_frame() if isinstance(x, pd.Series) else x) for x in (duck, other))
        assert list(d.columns) == list(o.columns), path
        objects = [c for c in d.columns if d[c].dtype == object and not d[c].map(_plain).all()]
        for c in objects:  # e.g. Estimate cells
            assert_same_result(d[c].tolist(), o[c].tolist(), f"{path}[{c!r}]")
        pd.testing.assert_frame_equal(d.drop(columns=objects), o.drop(columns=objects), check_exact=False,
                                      rtol=ANALYSIS_RTOL, atol=ATOL, obj=path)
    elif isinstance(duck, np.ndarray):
        if duck.dtype.kind in "fc":
            np.testing.assert_allclose(duck, other, rtol=ANALYSIS_RTOL, atol=ATOL, err_msg=path)
        else:
            np.testing.assert_array_equal(duck, other, err_msg=path)
    elif isinstance(duck, dict):
        assert duck.keys() == other.keys(), path
        for k in duck:
            assert_same_result(duck[k], other[k], f"{path}[{k!r}]")
    elif isinstance(duck, (list, tuple)):
        assert len(duck) == len(other), path
        for i, (a, b) in enumerate(zip(duck, other)):
            assert_same_result(a, b, f"{path}[{i}]")
    elif isinstance(duck, float):
        assert duck == pytest.approx(other, rel=ANALYSIS_RTOL, abs=ATOL, nan_ok=True), path
    elif hasattr(duck, "__dict__") and not callable(duck) or is_dataclass(duck):
        fields_ = ({f.name: getattr(duck, f.name) for f in fields(duck)} if is_dataclass(duck)
                   else {k: v for k, v in vars(duck).items() if not k.startswith("_")})  # fitted state, not internals
        for k, v in fields_.items():
            assert_same_result(v, getattr(other, k), f"{path}.{k}")
    else:
        assert duck == other, path


@pytest.mark.parametrize("analysis", ANALYSES)
def test_analyses_equal_on_duckdb_and(engine, analysis, demo_300):
    """Every number of each report's analysis (``analyse``), on the unit with the most of them."""
    module = importlib.import_module(f"custlib.{analysis}")
    duck = sources.load_unit("stores", ROOT, run_date=RUN_DATE, data_source=demo_300, check=False)
    other = sources.load_unit("stores", ROOT, run_date=RUN_DATE, data_source=engine.url, check=False)
    assert_same_result(module.analyse(duck), module.analyse(other), analysis)

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
    # Spark's own TRY_CAST reads '2024' as 2024-01-01; DuckDB does not
    "year as date": ("customers", "SELECT * REPLACE (CASE WHEN customer_id = (SELECT min(customer_id) FROM t) "
                                  "THEN '2024' ELSE CAST(CAST(signup_date AS DATE) AS VARCHAR) END "
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


def test_validation_passes_on_both(engine, demo_300):
    assert _outcome(sources.open_source(demo_300)) is None
    assert _outcome(sources.open_source(engine.url)) is None


@pytest.mark.parametrize("case", PROBLEMS)
def test_validation_finds_the_same_problem(engine, case, demo_300, tmp_path):
    table, sql, expected = PROBLEMS[case]
    bad = _arrow(demo_300, table, sql)
    for f in demo_300.glob("*.parquet"):
        (tmp_path / f.name).symlink_to(f)
    (tmp_path / f"{table}.parquet").unlink()
    pq.write_table(bad, tmp_path / f"{table}.parquet")
    member = engine.add(f"{table}__{case.replace(' ', '_')}", bad)

    duck = _outcome(sources.open_source(tmp_path))
    other = _outcome(sources.open_source(engine.url, SourceMapping(**{table: TableSource(file=member)})))
    assert duck is not None and other is not None
    assert {k: duck[k] for k in expected} == expected
    assert duck == other


@needs_postgres
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


@needs_postgres
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


def test_database_source_refuses_file_mappings(engine):
    mapping = SourceMapping(transactions=TableSource(decimal=","))
    with pytest.raises(CustlibDataError) as e:
        sources.open_source(engine.url, mapping)
    assert (e.value.table, e.value.rule) == ("transactions", "mapping")
    with pytest.raises(CustlibDataError) as e:
        sources.open_source(engine.url, SourceMapping(leads=TableSource(file="no_such_table")))
    assert (e.value.table, e.value.rule) == ("leads", "missing file")
    optional = sources.open_source(engine.url, SourceMapping(leads=TableSource(file="no_such_table",
                                                                               optional=True)))
    assert not optional.has_table("leads") and optional.has_table("transactions")


# -- Spark sources ---------------------------------------------------------------------------------

@pytest.mark.parametrize("url, expected", [
    ("spark:local", SparkURL("local[2]")),
    ("spark:local:data/demo", SparkURL("local[2]", "data/demo")),
    ("spark:local[4]:/srv/data/demo", SparkURL("local[4]", "/srv/data/demo")),
    ("spark:local[*]:hdfs://nn:8020/data/demo", SparkURL("local[*]", "hdfs://nn:8020/data/demo")),
    ("spark:local?database=sales", SparkURL("local[2]", database="sales")),
    ("spark://spark-master:7077/mnt/data/demo", SparkURL("spark://spark-master:7077", "/mnt/data/demo")),
    ("spark://spark-master:7077?database=sales", SparkURL("spark://spark-master:7077", database="sales")),
])
def test_spark_url_syntax(url, expected):
    assert is_database_url(url) and parse_spark_url(url) == expected


@pytest.mark.parametrize("url", ["spark:locale", "spark:local[two]:x", "spark://host/data",
                                 "spark:local:x?database=sales", "spark:local?db=sales"])
def test_spark_url_mistakes_are_parameter_errors(url):
    with pytest.raises(CustlibDataError) as e:
        parse_spark_url(url)
    assert e.value.kind == "params"


def test_a_relative_spark_folder_is_under_the_project_root():
    root = Path("/srv/project")
    assert spark_url_under("spark:local[4]:data/demo", root) == "spark:local[4]:/srv/project/data/demo"
    for same in ("spark:local:/abs/demo", "spark:local:s3a://bucket/demo", "spark:local",
                 "spark://host:7077/data", "postgresql://u@h/db"):
        assert spark_url_under(same, root) == same


@needs_spark
def test_a_run_pointed_at_spark_checks_and_reads_it(spark_folder):
    """`custlib validate/run --data-source spark:local:<folder>`: validation, fingerprint and the
    unit's rows come from Spark, and the manifest's parameters name the source as given."""
    from custlib import runner

    url = f"spark:local:{spark_folder}"
    inputs = runner.check_inputs(ROOT, ["online"], data_source=url)
    assert inputs.refused == {} and inputs.data["online"].rows("customers") > 0
    assert inputs.data["online"].source.con.name == "pyspark"
    assert inputs.parameters["online"]["data_source"] == url


@needs_spark
def test_spark_catalog_tables(spark_folder, demo_300, tmp_path):
    """``spark:local?database=<name>``: the contract tables of a catalog database (here external
    tables over the Parquet files) read and compare like the folder."""
    from custlib.mapping import spark_session

    session = spark_session()  # the running one, started by an earlier test or now
    session.sql(f"CREATE DATABASE IF NOT EXISTS custlib_catalog LOCATION '{tmp_path}'")
    try:
        for f in spark_folder.glob("*.parquet"):
            if f.stem in contract.TABLES:
                session.sql(f"CREATE TABLE custlib_catalog.{f.stem} USING parquet LOCATION '{f}'")
        src = sources.open_source("spark:local?database=custlib_catalog")
        assert set(src.files) == {f.stem for f in demo_300.glob("*.parquet")}
        assert _outcome(src) is None
        duck = sources.load_unit("online", ROOT, data_source=demo_300, check=False)
        spark = sources.load_unit("online", ROOT, data_source="spark:local?database=custlib_catalog", check=False)
        end = duck.params.observation_end
        assert_same(features.customer_summary(duck.transactions, end),
                    features.customer_summary(spark.transactions, end), ["customer_id"])
    finally:
        session.sql("DROP DATABASE IF EXISTS custlib_catalog CASCADE")


@needs_spark
def test_a_spark_folder_must_exist(spark_folder):
    with pytest.raises(CustlibDataError) as e:
        sources.open_source(f"spark:local:{spark_folder / 'missing'}")
    assert e.value.rule == "unreadable source"
