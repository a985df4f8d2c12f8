"""How a unit's files map onto the data contract (``sources:`` in params), and reading them.

:func:`open_tables` registers every contract table found in a source as an Ibis table named
after it, with the contract's column names. A table absent from the source is simply not
registered; :mod:`custlib.sources` decides whether that is allowed (optional tables) or an
error (required ones).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import ibis
from pydantic import BaseModel, ConfigDict, Field

from custlib import contract
from custlib.errors import CustlibDataError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TableSource(_Strict):
    """Where one contract table comes from and how its columns map onto the contract."""

    file: str | None = Field(None, description="File in the data folder (CSV, Parquet, .xlsx/.xls) "
                                               "or a table of the .duckdb file; default <table>.parquet/.csv")
    sheet: str | None = Field(None, description="Excel sheet name (default: the first sheet)")
    encoding: str = Field("auto", description="CSV encoding; auto-detected by default")
    delimiter: str | None = Field(None, description="CSV delimiter; auto-detected by default")
    header_row: int = Field(1, ge=1, description="1-based row holding the column names")
    skip_footer: int = Field(0, ge=0, description="lines to drop at the end (report totals, notices)")
    columns: dict[str, str] = Field(default_factory=dict, description="export column -> contract column")
    dates: dict[str, list[str]] = Field(default_factory=dict,
                                        description="contract column -> strptime formats tried in order")
    decimal: Literal[".", ","] = Field(".", description="decimal separator of numbers")
    values: dict[str, dict[str, str]] = Field(default_factory=dict,
                                              description="contract column -> {export value: contract value}")
    constants: dict[str, str] = Field(default_factory=dict,
                                      description="contract column -> value, for columns the export lacks")


class SourceMapping(_Strict):
    """``sources:`` in params: an optional preset (``params/sources/<preset>.yaml``) and one
    entry per table that differs from the contract's own layout."""

    preset: str | None = None
    customers: TableSource = TableSource()
    transactions: TableSource = TableSource()
    loyalty_members: TableSource = TableSource()
    survey_responses: TableSource = TableSource()
    leads: TableSource = TableSource()

    def table(self, name: str) -> TableSource:
        return getattr(self, name)


def open_tables(location: Path, mapping: SourceMapping, timezone: str,
                unit_id: str | None = None) -> tuple[ibis.BaseBackend, dict[str, str]]:
    """Connect to ``location`` and register each contract table it holds.

    Returns the connection and ``{table: file}`` of the tables found (``file`` names what the
    user would open: a path, or ``db.duckdb::table``).
    """
    if location.is_file():
        try:
            con = ibis.duckdb.connect(str(location), read_only=True)
            have = set(con.list_tables())
        except Exception as e:  # duckdb raises IOException / InvalidInputException
            raise CustlibDataError(f"cannot open the DuckDB database: {str(e).splitlines()[0]}",
                                   file=str(location)) from None
        return con, {t: f"{location}::{t}" for t in contract.TABLES if t in have}
    if not location.is_dir():
        raise CustlibDataError("data source not found (a folder of Parquet/CSV files or a "
                               ".duckdb file)", file=str(location))
    con = ibis.duckdb.connect()
    files = {}
    for t in contract.TABLES:
        pq, csv = location / f"{t}.parquet", location / f"{t}.csv"
        if pq.exists():
            con.read_parquet(pq, table_name=t)
            files[t] = str(pq)
        elif csv.exists():
            con.read_csv(csv, table_name=t)
            files[t] = str(csv)
    return con, files
