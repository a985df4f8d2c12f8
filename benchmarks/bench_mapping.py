"""Benchmark: loading CRM exports through the source mapping, next to plain pandas readers.

Generates demo data for one unit (``online``; 100,000 customers, about 600k transactions by
default) in a temporary folder and writes its transactions three ways, each next to the
customers' Parquet (the other optional tables are left out):

(a) the data contract's Parquet, as generated;
(b) a GB18030/GBK CSV with Chinese headers, ``￥1,234.50`` amounts, ``YYYY/MM/DD`` dates and a
    ``合计`` footer line, as a Chinese CRM or Excel exports it;
(c) an .xlsx of the first 100,000 rows of (b), footer included (written with xlsxwriter;
    the writing is not timed).

Timed, best of 2: ``sources.open_source`` + ``sources.validate`` + ``features.customer_summary``
through custlib (the mapping below for (b) and (c)), and the plain reads that give only the raw
text (no cleaning, no checks, footer read as a row): ``pandas.read_csv(encoding="gb18030")``
for (b), ``pandas.read_excel`` with calamine (and openpyxl if installed) for (c). Each case runs
in its own Python process, so its peak RSS (``VmHWM``; interpreter and imports included,
the baseline is printed) is its own. Prints a markdown table:

    .venv/bin/python benchmarks/bench_mapping.py [customers]     # default 100000
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import pandas as pd

from custlib import demo, features, sources
from custlib.mapping import SourceMapping

OBSERVATION_END = date(2025, 12, 31)
XLSX_ROWS = 100_000
HEADERS = {"order_id": "订单编号", "customer_id": "客户编号", "order_date": "下单时间", "amount": "金额",
           "discount": "折扣", "quantity": "数量", "channel": "渠道", "product_category": "品类"}
CSV, XLSX = "订单.csv", "订单.xlsx"


def mapping(file: str) -> SourceMapping:
    """The unit's ``sources:``: transactions from ``file`` with the Chinese headers."""
    return SourceMapping.model_validate({"transactions": {
        "file": file, "skip_footer": 1, "columns": {zh: c for c, zh in HEADERS.items()},
        "dates": {"order_date": ["%Y/%m/%d"]}}})


def peak_rss_mib() -> float:
    """This process's peak RSS: VmHWM on Linux (getrusage's ru_maxrss keeps the parent's peak
    across fork + exec, so it would report the parent's), else getrusage."""
    try:
        status = Path("/proc/self/status").read_text()
        return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        return rss / (1 << 20 if sys.platform == "darwin" else 1 << 10)


def run_case(case: str, folder: Path) -> dict:
    """One case in this process: rows read and the best of 2 timings."""
    if case == "baseline":
        return {"rows": 0, "seconds": 0.0}
    best, rows = float("inf"), 0
    for _ in range(2):
        t0 = time.perf_counter()
        if case.startswith("custlib"):
            file = {"custlib-parquet": None, "custlib-csv": CSV, "custlib-xlsx": XLSX}[case]
            src = sources.open_source(folder, mapping(file) if file else None, unit_id="online")
            sources.validate(src)
            features.customer_summary(src.typed("transactions"), OBSERVATION_END)
            best = min(best, time.perf_counter() - t0)
            rows = int(src.typed("transactions").count().execute())
        else:
            df = (pd.read_csv(folder / CSV, encoding="gb18030") if case == "read_csv"
                  else pd.read_excel(folder / XLSX, engine=case.split("-")[1]))
            best, rows = min(best, time.perf_counter() - t0), len(df)
    return {"rows": rows, "seconds": best}


def write_inputs(tmp: Path, customers: int) -> dict[str, Path]:
    """Demo data, and one folder per layout: customers.parquet + the transactions in it."""
    gen = tmp / "demo"
    demo.generate(gen, customers=customers, seed=1, units=("online",))
    folders = {k: tmp / k for k in ("parquet", "csv", "xlsx")}
    for k, d in folders.items():
        d.mkdir()
        os.link(gen / "customers.parquet", d / "customers.parquet")
    os.link(gen / "transactions.parquet", folders["parquet"] / "transactions.parquet")

    tx = pd.read_parquet(gen / "transactions.parquet").drop(columns="business_unit")[list(HEADERS)]
    tx["order_date"] = pd.to_datetime(tx["order_date"]).dt.strftime("%Y/%m/%d")
    tx["amount"] = [f"￥{a:,.2f}" for a in tx["amount"]]  # full-width: GBK has no U+00A5
    tx = tx.rename(columns=HEADERS)
    footer = f"合计：{len(tx):,} 条订单"
    with open(folders["csv"] / CSV, "w", encoding="gbk", newline="") as fh:
        tx.to_csv(fh, index=False, lineterminator="\r\n")
        fh.write(f'"{footer}"\r\n')

    import xlsxwriter

    with xlsxwriter.Workbook(folders["xlsx"] / XLSX, {"constant_memory": True}) as book:
        sheet = book.add_worksheet("订单")
        sheet.write_row(0, 0, list(tx.columns))
        for i, row in enumerate(tx.head(XLSX_ROWS).itertuples(index=False), start=1):
            sheet.write_row(i, 0, row)
        sheet.write(min(len(tx), XLSX_ROWS) + 1, 0, footer)
    return folders


CASES = [  # (case, layout, what is timed)
    ("custlib-parquet", "parquet", "custlib: open_source + validate + customer_summary"),
    ("custlib-csv", "csv", "custlib (mapping): open_source + validate + customer_summary"),
    ("read_csv", "csv", 'pandas.read_csv(encoding="gb18030"), raw text only'),
    ("custlib-xlsx", "xlsx", "custlib (mapping): open_source + validate + customer_summary"),
    ("read_excel-calamine", "xlsx", 'pandas.read_excel(engine="calamine"), raw text only'),
    ("read_excel-openpyxl", "xlsx", 'pandas.read_excel(engine="openpyxl"), raw text only'),
]
LAYOUTS = {"parquet": "(a) contract Parquet", "csv": f"(b) GBK CSV, {CSV}",
           "xlsx": f"(c) .xlsx, first {XLSX_ROWS:,} rows"}


def main(customers: int) -> None:
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-mapping-") as tmp:
        print(f"writing demo data ({customers:,} customers) and the CSV / xlsx exports …", flush=True)
        folders = write_inputs(Path(tmp), customers)
        sizes = {k: sum(p.stat().st_size for p in d.iterdir() if p.name != "customers.parquet")
                 for k, d in folders.items()}
        print(f"  written in {time.perf_counter() - t_start:.0f} s", flush=True)
        results = {}
        for case, layout, _ in [("baseline", "parquet", ""), *CASES]:
            module = {"read_excel-calamine": "python_calamine", "read_excel-openpyxl": "openpyxl"}.get(case)
            if module and importlib.util.find_spec(module) is None:
                print(f"  {case}: {module} not installed, skipped", flush=True)
                continue
            print(f"  {case} …", flush=True)
            out = subprocess.run([sys.executable, __file__, "--case", case, str(folders[layout])],
                                 check=True, capture_output=True, text=True).stdout
            results[case] = json.loads(out.strip().splitlines()[-1])

    print()
    print("| input | what is timed | rows | seconds (best of 2) | peak RSS |")
    print("|---|---|---:|---:|---:|")
    for case, layout, what in CASES:
        r = results.get(case)
        cells = ([f"{r['rows']:,}", f"{r['seconds']:.2f}", f"{r['rss_mib']:,.0f} MiB"] if r
                 else ["—", "not installed", "—"])
        print(f"| {LAYOUTS[layout]} ({sizes[layout] / 2**20:.0f} MB) | {what} | " + " | ".join(cells) + " |")
    print(f"\nbaseline peak RSS of a process after the imports: {results['baseline']['rss_mib']:.0f} MiB; "
          f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--case"]:
        result = run_case(sys.argv[2], Path(sys.argv[3]))
        print(json.dumps(result | {"rss_mib": peak_rss_mib()}))
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
