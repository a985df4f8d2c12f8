"""Exports mapped under `sources:` in params load as the contract's tables, whatever their layout.

The same small demo data written as the contract's Parquet, as a Chinese-header GBK CSV report
and as an Excel workbook must give identical typed tables; dates, numbers and text are cleaned
with known answers; unreadable inputs raise one CustlibDataError naming file and rule, and the
inputs are never modified.
"""

import hashlib
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from conftest import ROOT

from custlib import demo, sources
from custlib.errors import CustlibDataError
from custlib.mapping import SourceMapping
from custlib.params import load_params

KEYS = {"customers": "customer_id", "transactions": "order_id"}


@pytest.fixture(scope="module")
def demo_small(tmp_path_factory):
    out = tmp_path_factory.mktemp("small")
    demo.generate(out, customers=300, seed=5, units=("online",))
    return out


@pytest.fixture(scope="module")
def expected(demo_small):
    """(a) the typed tables read from the contract's own Parquet files."""
    src = sources.open_source(demo_small)
    return {t: _frame(src, t) for t in KEYS}


def _frame(src, table):
    return src.typed(table).execute().sort_values(KEYS[table]).reset_index(drop=True)


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _assert_same(src, expected):
    sources.validate(src)
    for t in KEYS:
        pd.testing.assert_frame_equal(_frame(src, t), expected[t])


def _unit_params(tmp_path, sources_yaml: dict, **keys):
    """A params folder (copy of the project's) whose 'online' unit has these `sources:` and keys."""
    d = tmp_path / "params"
    shutil.copytree(ROOT / "params", d)
    f = d / "business_units" / "online.yaml"
    unit = yaml.safe_load(f.read_text(encoding="utf-8")) | {"sources": sources_yaml} | keys
    f.write_text(yaml.safe_dump(unit, allow_unicode=True), encoding="utf-8")
    return load_params("online", d)


# -- the same data in three layouts ----------------------------------------------------------------

def test_gbk_csv_report_with_chinese_headers_matches_parquet(demo_small, expected, tmp_path):
    cust = pd.read_parquet(demo_small / "customers.parquet")
    cust = cust.drop(columns=["business_unit", "name", "email", "phone"])
    cust["signup_date"] = cust["signup_date"].dt.strftime("%Y/%m/%d")
    cust["customer_type"] = cust["customer_type"].map({"individual": "个人", "enterprise": "企业"})
    cust["gender"] = cust["gender"].map({"female": "女", "male": "男", "other": "其他"})
    cust.columns = [" 客户编号", "注册日期 ", "客户类型", "区域", "城市", "年龄", "性别", "收入水平", "兴趣", "获客渠道"]
    tx = pd.read_parquet(demo_small / "transactions.parquet").drop(columns="business_unit")
    tx["order_date"] = pd.to_datetime(tx["order_date"]).dt.strftime("%Y/%m/%d")
    tx["amount"] = [f"￥{a:,}" if i % 2 else str(a) for i, a in enumerate(tx["amount"])]
    tx.columns = ["订单编号", "客户编号", "下单时间", " 金额 ", "折扣", "数量", "渠道", "品类"]
    assert any("," in a for a in tx[" 金额 "])  # thousands separators are exercised
    for df, name, footer in ((cust, "客户.csv", "合计：300 位客户"), (tx, "订单.csv", "Grand Totals (1,888 records)")):
        df.to_csv(tmp_path / name, index=False, encoding="gbk")
        with open(tmp_path / name, "ab") as fh:
            fh.write(f'\n"{footer}"\n\n'.encode("gbk"))
    mapping = SourceMapping.model_validate({
        "customers": {"file": "客户.csv", "skip_footer": 1,
                      "columns": {"客户编号": "customer_id", "注册日期": "signup_date", "客户类型": "customer_type",
                                  "区域": "region", "城市": "city", "年龄": "age", "性别": "gender",
                                  "收入水平": "income_band", "兴趣": "interests", "获客渠道": "acquisition_channel"},
                      "values": {"customer_type": {"个人": "individual", "企业": "enterprise"},
                                 "gender": {"女": "female", "男": "male", "其他": "other"}}},
        "transactions": {"file": "订单.csv", "skip_footer": 1,
                         "columns": {"订单编号": "order_id", "客户编号": "customer_id", "下单时间": "order_date",
                                     "金额": "amount", "折扣": "discount", "数量": "quantity", "渠道": "channel",
                                     "品类": "product_category"}},
    })
    before = _digest(tmp_path)
    _assert_same(sources.open_source(tmp_path, mapping, unit_id="online"), expected)
    assert _digest(tmp_path) == before


def test_excel_workbooks_through_the_jiandaoyun_preset_match_parquet(demo_small, expected, tmp_path):
    import xlsxwriter

    data = tmp_path / "data"
    data.mkdir()
    cust = pd.read_parquet(demo_small / "customers.parquet")
    book = xlsxwriter.Workbook(data / "客户.xlsx")
    sheet, stamp = book.add_worksheet("客户"), book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    sheet.write(0, 0, "客户列表 (导出)")
    head = ["客户编号", "客户名称", "创建时间", "客户类型", "所属区域", "城市", "年龄", "性别", "收入水平",
            "兴趣标签", "客户来源"]
    sheet.write_row(1, 0, head)
    for i, r in enumerate(cust.itertuples(), start=2):
        sheet.write_row(i, 0, [r.customer_id, r.name])
        sheet.write_datetime(i, 2, r.signup_date.to_pydatetime(), stamp)  # a date cell
        sheet.write_row(i, 3, [{"individual": "个人", "enterprise": "企业"}[r.customer_type], r.region, r.city,
                               None if pd.isna(r.age) else float(r.age),  # Excel numbers are floats
                               {"female": "女", "male": "男", "other": "其他"}.get(r.gender), r.income_band and
                               {"low": "低", "lower_mid": "中低", "upper_mid": "中高", "high": "高"}[r.income_band],
                               r.interests, r.acquisition_channel])
    sheet.write_row(len(cust) + 3, 0, ["合计", f"{len(cust)} 位客户"])  # after an empty row
    book.close()
    tx = pd.read_parquet(demo_small / "transactions.parquet")
    book = xlsxwriter.Workbook(data / "订单.xlsx")
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ["订单编号", "客户编号", "下单日期", "成交金额", "优惠金额", "数量", "销售渠道", "产品类别"])
    serial = (pd.to_datetime(tx["order_date"]) - pd.Timestamp("1899-12-30")).dt.days
    for i, (r, day) in enumerate(zip(tx.itertuples(), serial), start=1):
        sheet.write_row(i, 0, [r.order_id, r.customer_id, day, r.amount, r.discount, float(r.quantity),
                               r.channel, r.product_category])  # order date as an Excel serial number
    sheet.write_row(len(tx) + 1, 0, ["合计", "", "", tx["amount"].sum()])
    book.close()
    p = _unit_params(tmp_path, {"preset": "jiandaoyun", "customers": {"header_row": 2, "skip_footer": 1},
                                "transactions": {"skip_footer": 1}}, data_source=str(data))
    assert p.sources.customers.header_row == 2 and p.sources.customers.columns["客户编号"] == "customer_id"
    before = _digest(data)
    src = sources.open_unit_source(p, ROOT)
    assert not src.has_table("loyalty_members")  # optional in the preset, and absent
    assert "name" not in src.raw("customers").columns  # 客户名称 is never read
    _assert_same(src, expected)
    assert _digest(data) == before


# -- cleaning with known answers -------------------------------------------------------------------

ORDERS = "order_id,customer_id,business_unit,order_date,amount,discount,quantity,channel,product_category\n"


def _orders(tmp_path, rows: list[str], timezone="Asia/Shanghai", unit_id="online", title="", **spec):
    """Open a source of one customer and these order rows (below `title` lines), mapped as `spec` says."""
    (tmp_path / "customers.csv").write_text(
        "customer_id,business_unit,signup_date,customer_type,region,city,age,gender,income_band,interests,"
        "acquisition_channel\nC1,online,2024-01-01,individual,East,Suzhou,30,female,low,,search\n")
    (tmp_path / "orders.csv").write_text(title + ORDERS + "".join(r + "\n" for r in rows))
    mapping = SourceMapping.model_validate({"transactions": {"file": "orders.csv"} | spec})
    return sources.open_source(tmp_path, mapping, timezone, unit_id)


def _column(src, column):
    t = src.raw("transactions")
    return t.order_by("order_id")[column].execute().tolist()


def test_text_is_trimmed_and_values_are_mapped(tmp_path):
    src = _orders(tmp_path, ["1,C1 ,online ,2024-03-05,10,0,1, web,shoes",
                             "2,C1,\u3000online\u00a0,2024-03-05,10,0,1,网店\u3000,shoes"],
                  values={"channel": {"网店": "web"}})
    assert _column(src, "business_unit") == ["online", "online"]
    assert _column(src, "channel") == ["web", "web"]
    assert _column(src, "customer_id") == ["C1", "C1"]
    sources.validate(src)


def test_business_unit_defaults_to_the_unit_opening_the_source(tmp_path):
    src = _orders(tmp_path, ["1,C1,,2024-03-05,10,0,1,web,shoes"], unit_id="stores",
                  columns={"business_unit": None})  # un-mapped: as if the export lacked it
    assert _column(src, "business_unit") == ["stores"]


@pytest.mark.parametrize("timezone, expected", [
    ("Asia/Shanghai", ["2024-03-06", "2024-03-05", "2024-03-06", "2024-03-05", "2024-03-05", "2024-03-05"]),
    ("America/New_York", ["2024-03-05", "2024-03-05", "2024-03-05", "2024-03-04", "2024-03-05", "2024-03-05"]),
])
def test_utc_offsets_are_converted_to_the_unit_time_zone_before_the_date(tmp_path, timezone, expected):
    stamps = ["2024-03-05 23:30:00-05:00", "2024-03-05T15:30:00Z", "2024-03-05T16:30:00.250Z",
              "2024-03-05 08:00:00+08:00", "2024-03-05 23:59:59", "2024-03-05T12:00:00+0530"]
    src = _orders(tmp_path, [f"{i},C1,online,{s},10,0,1,web,shoes" for i, s in enumerate(stamps)], timezone)
    assert [str(d) for d in _column(src, "order_date")] == expected


@pytest.mark.parametrize("dates, expected", [
    (["03/05/2024", "12/25/2024"], ["2024-03-05", "2024-12-25"]),  # 25 is a day: month-first
    (["03.05.2024", "25.12.2024 14:00"], ["2024-05-03", "2024-12-25"]),  # day-first
    (["2024/3/5", "2024年12月25日", "45356", "2024-03-05T10:00"],  # unambiguous layouts mix
     ["2024-03-05", "2024-12-25", "2024-03-05", "2024-03-05"]),
])
def test_date_layouts_are_recognised_per_column(tmp_path, dates, expected):
    src = _orders(tmp_path, [f"{i},C1,online,{d},10,0,1,web,shoes" for i, d in enumerate(dates)])
    assert _column(src, "order_date") == expected


@pytest.mark.parametrize("formats, dates, expected", [
    (["%Y%m%d", "excel"], ["20240305", "45356.75"], ["2024-03-05", "2024-03-05"]),  # tried in order
    (["%d/%m/%Y %H:%M %z"], ["05/03/2024 23:30 -0500"], ["2024-03-06"]),  # offsets still convert
])
def test_date_formats_given_in_params(tmp_path, formats, dates, expected):
    src = _orders(tmp_path, [f"{i},C1,online,{d},10,0,1,web,shoes" for i, d in enumerate(dates)],
                  dates={"order_date": formats})
    assert _column(src, "order_date") == expected


def test_dates_readable_both_ways_are_an_error_until_a_format_is_given(tmp_path):
    rows = ["1,C1,online,03/05/2024,10,0,1,web,shoes", "2,C1,online,04/06/2024,10,0,1,web,shoes"]
    with pytest.raises(CustlibDataError) as e:
        _orders(tmp_path, rows)
    err = e.value
    assert (err.file, err.table, err.column, err.rule) == (str(tmp_path / "orders.csv"), "transactions",
                                                           "order_date", "ambiguous dates")
    assert err.examples == ["row 2: '03/05/2024'", "row 3: '04/06/2024'"]
    src = _orders(tmp_path, rows, dates={"order_date": ["%d/%m/%Y"]})
    assert _column(src, "order_date") == ["2024-05-03", "2024-06-04"]


def test_unparseable_dates_stay_as_they_are_for_validation(tmp_path):
    src = _orders(tmp_path, ["1,C1,online,2024-03-05,10,0,1,web,shoes", "2,C1,online,昨天,10,0,1,web,shoes"])
    with pytest.raises(CustlibDataError) as e:
        sources.validate(src)
    assert (e.value.column, e.value.examples) == ("order_date", ["row 3: '昨天'"])


def test_ticket_export_with_chinese_headers_keeps_the_time_of_day(tmp_path):
    """A 工单 export: Chinese headers and values, date-times in several layouts (one with a UTC
    offset, one an Excel serial number) read as local date-times of the unit."""
    _orders(tmp_path, ["1,C1,online,2024-03-05,10,0,1,web,shoes"])  # customers and orders
    (tmp_path / "工单.csv").write_text(
        "工单号,客户编号,创建时间,首次响应时间,解决时间,渠道,类别,是否解决\n"
        "T1,C1,2024/3/5 14:30,2024年3月5日 15:05,2024-03-06T01:30:00Z,在线客服,投诉,是\n"
        "T2,C1,45356.75,,,邮件,咨询,否\n", encoding="utf-8")
    mapping = SourceMapping.model_validate({
        "transactions": {"file": "orders.csv"},
        "service_tickets": {"file": "工单.csv",
                            "columns": {"工单号": "ticket_id", "客户编号": "customer_id", "创建时间": "opened_at",
                                        "首次响应时间": "first_response_at", "解决时间": "resolved_at",
                                        "渠道": "channel", "类别": "category", "是否解决": "resolved"},
                            "values": {"channel": {"在线客服": "chat", "邮件": "email"},
                                       "category": {"投诉": "complaint", "咨询": "inquiry"},
                                       "resolved": {"是": "1", "否": "0"}}}})
    src = sources.open_source(tmp_path, mapping, "Asia/Shanghai", "online")
    sources.validate(src)
    t = src.typed("service_tickets").order_by("ticket_id").execute()
    assert t["opened_at"].tolist() == [pd.Timestamp("2024-03-05 14:30"), pd.Timestamp("2024-03-05 18:00")]
    assert t["first_response_at"].iloc[0] == pd.Timestamp("2024-03-05 15:05") and pd.isna(t["first_response_at"].iloc[1])
    assert t["resolved_at"].iloc[0] == pd.Timestamp("2024-03-06 09:30")  # 01:30 UTC in Shanghai
    assert t[["channel", "category", "resolved", "business_unit"]].values.tolist() == [
        ["chat", "complaint", 1, "online"], ["email", "inquiry", 0, "online"]]


def test_numbers_lose_currency_and_separators(tmp_path):
    src = _orders(tmp_path, ['1,C1,online,2024-03-05,"¥1,234.50",0,1,web,shoes',
                             "2,C1,online,2024-03-05,USD 99,0,1,web,shoes",
                             '3,C1,online,2024-03-05,"-1,000",0,1,web,shoes'])
    assert _column(src, "amount") == ["1234.50", "99", "-1000"]
    sources.validate(src)


def test_decimal_comma(tmp_path):
    src = _orders(tmp_path, ['1,C1,online,2024-03-05,"1.234,50 €",0,1,web,shoes',
                             '2,C1,online,2024-03-05,"12,5",0,1,web,shoes'], decimal=",")
    assert src.typed("transactions").order_by("order_id").amount.execute().tolist() == [1234.5, 12.5]


def test_a_value_that_is_no_number_is_reported_with_its_row(tmp_path):
    src = _orders(tmp_path, ["1,C1,online,2024-03-05,10,0,1,web,shoes",
                             '2,C1,online,2024-03-05,"12,5",0,1,web,shoes'])  # decimal comma, not declared
    with pytest.raises(CustlibDataError) as e:
        sources.validate(src)
    assert (e.value.column, e.value.count, e.value.examples) == ("amount", 1, ["row 3: '12,5'"])


def test_rows_are_kept_by_value_and_keep_their_line_numbers(tmp_path):
    src = _orders(tmp_path, ["1,C1,online,2024-03-05,10,lost,1,web,shoes",
                             "2,C1,online,2024-03-05,x,won,1,web,shoes"],
                  keep_rows={"discount": ["won"]}, constants={"discount": "0"}, columns={"discount": None})
    with pytest.raises(CustlibDataError) as e:
        sources.validate(src)
    assert (e.value.column, e.value.total, e.value.examples) == ("amount", 1, ["row 3: 'x'"])


def test_header_below_title_lines_keeps_line_numbers(tmp_path):
    src = _orders(tmp_path, ["1,C1,online,2024-03-05,10,0,1,web,shoes", "2,C1,online,2024-03-05,ten,0,1,web,shoes"],
                  title="Orders report\nexported 2025-12-31\n", header_row=3)
    with pytest.raises(CustlibDataError) as e:
        sources.validate(src)
    assert (e.value.column, e.value.examples) == ("amount", ["row 5: 'ten'"])


# -- unreadable inputs -----------------------------------------------------------------------------

def _expect_error(folder, mapping: dict | None = None, **fields):
    before = _digest(folder)
    with pytest.raises(CustlibDataError) as e:
        sources.open_source(folder, SourceMapping.model_validate(mapping or {}), unit_id="online")
    assert {k: getattr(e.value, k) for k in fields} == fields
    assert _digest(folder) == before
    return e.value


@pytest.fixture
def folder(demo_small, tmp_path):
    for t in ("customers", "transactions"):
        shutil.copy(demo_small / f"{t}.parquet", tmp_path)
    return tmp_path


def test_undecodable_bytes_name_the_line(folder):
    (folder / "orders.csv").write_bytes(ORDERS.encode() + b"1,C1,online,2024-03-05,10,0,1,web,\xff\xfeshoes\n")
    err = _expect_error(folder, {"transactions": {"file": "orders.csv", "encoding": "utf-8"}},
                        file=str(folder / "orders.csv"), table="transactions", rule="encoding")
    assert err.examples == ["line 2"]


def test_truncated_parquet(folder):
    f = folder / "transactions.parquet"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    _expect_error(folder, file=str(f), table="transactions", rule="unreadable file")


def test_corrupt_duckdb_file(tmp_path):
    (tmp_path / "crm.duckdb").write_bytes(b"not a database" * 100)
    before = _digest(tmp_path)
    with pytest.raises(CustlibDataError) as e:
        sources.open_source(tmp_path / "crm.duckdb")
    assert (e.value.file, e.value.rule) == (str(tmp_path / "crm.duckdb"), "unreadable file")
    assert _digest(tmp_path) == before


def test_duckdb_file_locked_by_another_process(demo_small, tmp_path):
    import duckdb

    db = tmp_path / "crm.duckdb"
    con = duckdb.connect(str(db))
    con.execute(f"CREATE TABLE customers AS SELECT * FROM '{demo_small / 'customers.parquet'}'")
    con.close()
    hold = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('open', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(CustlibDataError) as e:
            sources.open_source(db)
        assert (e.value.file, e.value.rule) == (str(db), "locked database")
    finally:
        holder.kill()
        holder.wait()


def test_missing_mapped_file(folder):
    _expect_error(folder, {"transactions": {"file": "orders.csv"}}, file=str(folder / "orders.csv"),
                  table="transactions", rule="missing file")


def test_missing_sheet(folder):
    import xlsxwriter

    book = xlsxwriter.Workbook(folder / "orders.xlsx")
    book.add_worksheet("Sheet1").write_row(0, 0, ORDERS.strip().split(","))
    book.close()
    err = _expect_error(folder, {"transactions": {"file": "orders.xlsx", "sheet": "订单"}},
                        file=str(folder / "orders.xlsx"), rule="missing sheet")
    assert "Sheet1" in err.message


def test_corrupt_workbook(folder):
    (folder / "orders.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    _expect_error(folder, {"transactions": {"file": "orders.xlsx"}}, file=str(folder / "orders.xlsx"),
                  rule="unreadable file")


def test_mapped_column_not_in_the_file_lists_its_columns(folder):
    (folder / "orders.csv").write_text(ORDERS + "1,C1,online,2024-03-05,10,0,1,web,shoes\n")
    err = _expect_error(folder, {"transactions": {"file": "orders.csv", "columns": {"Amount (CNY)": "amount"}}},
                        column="Amount (CNY)", rule="mapped column missing", table="transactions")
    assert "order_id, customer_id" in err.message


def test_mapping_onto_a_column_the_contract_lacks(folder):
    (folder / "orders.csv").write_text(ORDERS + "1,C1,online,2024-03-05,10,0,1,web,shoes\n")
    _expect_error(folder, {"transactions": {"file": "orders.csv", "columns": {"amount": "revenue"}}},
                  column="revenue", rule="unknown contract column", kind="params")


def test_footer_longer_than_the_file_says_is_an_error(folder):
    (folder / "orders.csv").write_text(ORDERS + "1,C1,online,2024-03-05,10,0,1,web,shoes\n\"Total\"\n")
    _expect_error(folder, {"transactions": {"file": "orders.csv", "skip_footer": 2}},
                  file=str(folder / "orders.csv"), rule="footer")


# -- presets ---------------------------------------------------------------------------------------

def test_hubspot_exports_through_the_preset(tmp_path):
    head = ('"Record ID","First Name","Email","Create Date","Lifecycle Stage","Original Source",'
            '"Became a Lead Date","Became a Sales Qualified Lead Date","Became an Opportunity Date",'
            '"Became a Customer Date"\n')
    (tmp_path / "contacts.csv").write_text(
        head + '"101","Li","li@example.com","2024-03-05 09:12","Customer","Organic Search","2024-03-05 09:12",'
               '"2024-03-10 11:00","2024-03-20 16:45","2024-04-02 10:00"\n'
               '"102","Wang","w@example.com","2024-03-06 18:30","Lead","Paid Social","2024-03-06 18:30",,,\n',
        "utf-8-sig")
    (tmp_path / "deals.csv").write_text(
        '"Record ID","Deal Name","Deal Stage","Pipeline","Amount","Close Date","Associated Contact",'
        '"Associated Contact IDs"\n'
        '"9001","Li - first order","Closed Won","Sales Pipeline","1200.5","2024-04-02 10:00","Li (li@x.com)","101"\n'
        '"9002","Wang - trial","Closed Lost","Sales Pipeline","300","2024-04-05 12:00","Wang (w@x.com)","102"\n')
    p = _unit_params(tmp_path, {"preset": "hubspot"}, data_source=str(tmp_path))
    src = sources.open_unit_source(p, ROOT)
    sources.validate(src)
    tx = src.typed("transactions").execute()
    assert tx[["order_id", "customer_id", "amount", "channel"]].values.tolist() == [
        ["9001", "101", 1200.5, "Sales Pipeline"]]  # the lost deal is no order
    assert str(tx["order_date"][0].date()) == "2024-04-02"
    leads = src.typed("leads").order_by("lead_id").execute()
    assert leads["stage"].tolist() == ["won", "lead"] and leads["customer_id"].tolist() == ["101", "102"]
    cust = src.typed("customers").order_by("customer_id").execute()
    assert cust[["customer_type", "region", "business_unit"]].drop_duplicates().values.tolist() == [
        ["individual", "unknown", "online"]]


def test_salesforce_report_exports_through_the_preset(tmp_path):
    footer = ('\n\n"Accounts report"\n"Copyright (c) 2000-2025 salesforce.com, inc. All rights reserved."\n'
              '"Confidential Information - Do Not Distribute"\n'
              '"Generated By:  Ana Admin  3/9/2025 10:15 AM"\n"Acme"\n')
    (tmp_path / "accounts.csv").write_text(
        '"Id","Name","CreatedDate","BillingState","BillingCity","AccountSource"\n'
        '"001A","Acme Trading","2024-03-04T17:30:00.000Z","Zhejiang","Hangzhou","Web"\n' + footer)
    (tmp_path / "opportunities.csv").write_text(
        '"Id","AccountId","StageName","Amount","CloseDate","LeadSource"\n'
        '"006A","001A","Closed Won","USD 25,000.00","2025-01-15","Partner"\n'
        '"006B","001A","Prospecting","5,000.00","2025-02-15","Partner"\n' + footer)
    p = _unit_params(tmp_path, {"preset": "salesforce"}, data_source=str(tmp_path))
    src = sources.open_unit_source(p, ROOT)
    sources.validate(src)
    assert not src.has_table("leads")
    assert str(src.typed("customers").signup_date.execute()[0].date()) == "2024-03-05"  # 01:30 in Shanghai
    assert src.typed("transactions").amount.execute().tolist() == [25000.0]


def test_unit_keys_win_over_the_preset(tmp_path):
    p = _unit_params(tmp_path, {"preset": "hubspot", "transactions": {"file": "my-deals.csv",
                                                                      "columns": {"Pipeline": None}}})
    t = p.sources.transactions
    assert t.file == "my-deals.csv" and t.columns["Pipeline"] is None and t.columns["Amount"] == "amount"


def test_unknown_preset_and_time_zone_are_parameter_errors(tmp_path):
    with pytest.raises(CustlibDataError) as e:
        _unit_params(tmp_path, {"preset": "zoho"})
    assert (e.value.kind, e.value.column) == ("params", "sources.preset")
    with pytest.raises(CustlibDataError) as e:
        _unit_params(tmp_path / "b", {}, timezone="China/Beijing")
    assert (e.value.kind, e.value.column) == ("params", "timezone")
