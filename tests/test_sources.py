"""Validation names table, file, column, rule and row count; inputs are never modified."""

import hashlib

import pandas as pd
import pytest

from custlib import contract, sources
from custlib.errors import CustlibDataError

TABLES = list(contract.TABLES)


@pytest.fixture
def csv_source(demo_dir, tmp_path):
    """A small CSV copy of the online unit's demo data."""
    cust = pd.read_parquet(demo_dir / "customers.parquet").query("business_unit == 'online'").head(300)
    ids = set(cust.customer_id)
    for t in TABLES:
        df = cust if t == "customers" else pd.read_parquet(demo_dir / f"{t}.parquet")
        if "customer_id" in df and t != "customers":
            df = df[df.customer_id.isin(ids) | df.customer_id.isna()] if t == "leads" else df[df.customer_id.isin(ids)]
        if t == "leads":
            df = df[df.business_unit == "online"].head(200)
            df = df[df.customer_id.isna() | df.customer_id.isin(ids)]
        df.to_csv(tmp_path / f"{t}.csv", index=False)
    return tmp_path


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_demo_data_meets_the_contract(demo_dir):
    sources.validate(sources.open_source(demo_dir))


def test_clean_csv_source_passes(csv_source):
    sources.validate(sources.open_source(csv_source))


def test_text_in_amount_names_file_column_and_rows(csv_source):
    f = csv_source / "transactions.csv"
    df = pd.read_csv(f)
    df["amount"] = df["amount"].astype(object)
    df.loc[[2, 7], "amount"] = "twelve"
    df.to_csv(f, index=False)
    before = _digest(csv_source)
    with pytest.raises(CustlibDataError) as e:
        sources.validate(sources.open_source(csv_source))
    err = e.value
    assert (err.table, err.column, err.file, err.count, err.total) == ("transactions", "amount", str(f), 2, len(df))
    assert err.examples[0] == "row 4: 'twelve'"  # line 4 of the file: header + rows 0, 1, 2
    assert _digest(csv_source) == before


def test_missing_required_column(csv_source):
    f = csv_source / "customers.csv"
    pd.read_csv(f).drop(columns="signup_date").to_csv(f, index=False)
    with pytest.raises(CustlibDataError) as e:
        sources.validate(sources.open_source(csv_source))
    assert (e.value.table, e.value.column, e.value.rule) == ("customers", "signup_date", "required")


def test_a_first_response_before_the_ticket_was_opened_is_reported(csv_source):
    f = csv_source / "service_tickets.csv"
    df = pd.read_csv(f)
    rows = df.index[df["first_response_at"].notna()][:2]
    df.loc[rows, "first_response_at"] = (pd.to_datetime(df.loc[rows, "opened_at"]) - pd.Timedelta(hours=1)).astype(str)
    df.to_csv(f, index=False)
    with pytest.raises(CustlibDataError) as e:
        sources.validate(sources.open_source(csv_source))
    err = e.value
    assert (err.table, err.column, err.rule, err.count) == ("service_tickets", "first_response_at",
                                                            "values are before opened_at", 2)


def test_timestamps_keep_their_time_of_day_and_impossible_ones_are_named(csv_source):
    src = sources.open_source(csv_source)
    opened = src.typed("service_tickets").opened_at.execute()
    assert opened.dt.hour.nunique() > 5 and opened.dt.minute.nunique() > 5
    f = csv_source / "service_tickets.csv"
    df = pd.read_csv(f)
    df.loc[0, "opened_at"] = "2024-02-30 10:00"
    df.loc[1, "opened_at"] = "2024-03-05 25:00"
    df.to_csv(f, index=False)
    with pytest.raises(CustlibDataError) as e:
        sources.validate(sources.open_source(csv_source))
    err = e.value
    assert (err.column, err.rule, err.count) == ("opened_at", "values are not date-times", 2)
    assert err.examples == ["row 2: '2024-02-30 10:00'", "row 3: '2024-03-05 25:00'"]


def test_orphan_transactions_and_bad_categories(csv_source):
    f = csv_source / "loyalty_members.csv"
    df = pd.read_csv(f)
    df.loc[0, "tier"] = "gold"
    df.to_csv(f, index=False)
    with pytest.raises(CustlibDataError) as e:
        sources.validate(sources.open_source(csv_source))
    assert (e.value.column, e.value.count) == ("tier", 1)
    df.loc[0, "tier"] = "vip"
    df.loc[1, "customer_id"] = "NOPE"
    df.to_csv(f, index=False)
    with pytest.raises(CustlibDataError) as e:
        sources.validate(sources.open_source(csv_source))
    assert (e.value.column, e.value.rule, e.value.count) == ("customer_id", "references", 1)


def test_duckdb_file_source(demo_dir, tmp_path):
    import duckdb

    db = tmp_path / "crm.duckdb"
    con = duckdb.connect(str(db))
    for t in TABLES:
        con.execute(f"CREATE TABLE {t} AS SELECT * FROM read_parquet('{demo_dir / (t + '.parquet')}')")
    con.close()
    src = sources.open_source(db)
    sources.validate(src)
    assert src.typed("transactions").count().execute() == len(pd.read_parquet(demo_dir / "transactions.parquet"))


def test_unit_tables_hold_only_that_unit_and_no_personal_fields(demo_unit):
    data = demo_unit("stores")
    for name in TABLES:
        t = data.table(name)
        assert not set(contract.PERSONAL_FIELDS) & set(t.columns)
        assert set(t.business_unit.execute().unique()) <= {"stores"}


def test_duplicate_keys_are_shown_with_their_rows(csv_source):
    f = csv_source / "transactions.csv"
    df = pd.read_csv(f)
    df.loc[5, "order_id"] = df.loc[2, "order_id"]
    df.to_csv(f, index=False)
    with pytest.raises(CustlibDataError) as e:
        sources.validate(sources.open_source(csv_source))
    assert (e.value.column, e.value.rule, e.value.count) == ("order_id", "unique", 1)
    assert e.value.examples == [f"row 4: {df.loc[2, 'order_id']!r}", f"row 7: {df.loc[2, 'order_id']!r}"]


def test_business_unit_without_params_file_suggests_the_nearest(csv_source):
    f = csv_source / "customers.csv"
    df = pd.read_csv(f)
    df.loc[:9, "business_unit"] = "onlin"
    df.to_csv(f, index=False)
    with pytest.raises(CustlibDataError) as e:
        sources.validate(sources.open_source(csv_source), unit_ids=["b2b", "online", "stores"])
    assert (e.value.table, e.value.column, e.value.rule, e.value.count) == ("customers", "business_unit", "known unit", 10)
    assert "did you mean 'online'?" in e.value.message


def test_optional_tables_may_be_absent_required_ones_not(csv_source):
    for t in ("loyalty_members", "survey_responses", "leads"):
        (csv_source / f"{t}.csv").unlink()
    src = sources.open_source(csv_source)
    sources.validate(src)
    assert not src.has_table("leads") and src.typed("leads").count().execute() == 0
    (csv_source / "transactions.csv").unlink()
    with pytest.raises(CustlibDataError) as e:
        sources.open_source(csv_source)
    assert (e.value.table, e.value.rule) == ("transactions", "required table")


def test_unit_without_orders_in_its_window_is_refused(demo_unit):
    data = demo_unit("b2b")
    early = sources.UnitData(data.params.model_copy(update={"observation_end": pd.Timestamp("2015-01-01").date()}),
                             data.source, data.project_root, data.run_date)
    assert sources.unit_problem(data) is None
    assert sources.unit_problem(early) == ("unit b2b: no transactions on or before observation_end 2015-01-01 "
                                           "(first order 2023-01-01)")
