"""Open a data source through Ibis (DuckDB by default), validate it against the contract, and
hand out typed, per-unit table expressions.

A source is a folder of ``<table>.parquet`` / ``<table>.csv`` files or a DuckDB database file.
Files are registered as views: nothing is copied and raw transactions never enter pandas.
Personal fields are never selected into the typed tables, so no analysis can leak them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import ibis
import ibis.expr.types as ir

from custlib import contract
from custlib.errors import CustlibDataError
from custlib.params import UnitParams, load_params

N_EXAMPLES = 5


@dataclass
class Source:
    """An open data source: the Ibis connection and where each table came from."""

    location: Path
    con: ibis.BaseBackend
    files: dict[str, str] = field(default_factory=dict)  # table -> file (or db::table)

    def raw(self, table: str) -> ir.Table:
        return self.con.table(table)

    def typed(self, table: str) -> ir.Table:
        """The table with contract dtypes and without personal columns (validate first)."""
        spec = contract.TABLES[table]
        raw = self.raw(table)
        cols = []
        for c in spec.columns:
            if c.personal:
                continue
            if c.name in raw.columns:
                cols.append(raw[c.name].cast(contract.IBIS_TYPES[c.dtype]).name(c.name))
            else:
                cols.append(ibis.null(contract.IBIS_TYPES[c.dtype]).name(c.name))
        return raw.select(cols)

    def fingerprint(self) -> str:
        """SHA-256 over the source files' bytes (changes when any input changes)."""
        h = hashlib.sha256()
        paths = sorted({Path(f.split("::")[0]) for f in self.files.values()})
        for p in paths:
            h.update(p.name.encode())
            with open(p, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        return h.hexdigest()[:16]


def open_source(location: str | Path) -> Source:
    """Connect to a folder of Parquet/CSV files or a ``.duckdb`` file."""
    location = Path(location)
    if location.is_file():
        con = ibis.duckdb.connect(str(location), read_only=True)
        have = set(con.list_tables())
        files = {t: f"{location}::{t}" for t in contract.TABLES if t in have}
        missing = [t for t in contract.TABLES if t not in have]
        if missing:
            raise CustlibDataError(f"the database has no table {missing[0]!r}", file=str(location),
                                   table=missing[0])
        return Source(location, con, files)
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
        else:
            raise CustlibDataError(f"table '{t}' is missing: expected {t}.parquet or {t}.csv",
                                   file=str(location), table=t)
    return Source(location, con, files)


def _examples(raw: ir.Table, cond: ir.BooleanValue, column: str) -> list[str]:
    rows = (raw.mutate(_row=ibis.row_number() + 2)  # +1 for 1-based, +1 for a CSV header
            .filter(cond).select("_row", column).limit(N_EXAMPLES).execute())
    return [f"row {r}: {v!r}" for r, v in zip(rows["_row"], rows[column])]


def validate(source: Source) -> None:
    """Check every table against the contract; raise the first problem found.

    Rules: required columns present, values castable to the column's type, not-null, allowed
    values, numeric range, unique keys and references to other tables.
    """
    for name, spec in contract.TABLES.items():
        raw = source.raw(name)
        file = source.files[name]
        missing = [c for c in spec.required_columns if c not in raw.columns]
        if missing:
            raise CustlibDataError("required column is missing", table=name, file=file,
                                   column=missing[0], rule="required")
        checks: list[tuple[str, str, ir.BooleanValue]] = []
        for c in spec.columns:
            if c.name not in raw.columns:
                continue
            col = raw[c.name]
            target = contract.IBIS_TYPES[c.dtype]
            if c.dtype != "string" and col.type().is_string():
                checks.append((c.name, f"values are not {'dates' if c.dtype == 'date' else 'numbers'}",
                               col.notnull() & (col.strip() != "") & col.try_cast(target).isnull()))
            typed = col.try_cast(target) if c.dtype != "string" else col.cast("string")
            if not c.nullable:
                checks.append((c.name, "values are missing", col.isnull()))
            if c.allowed:
                checks.append((c.name, f"values are not one of {', '.join(c.allowed)}",
                               typed.notnull() & ~typed.isin(c.allowed)))
            if c.min is not None:
                checks.append((c.name, f"values are below {c.min:g}", typed < c.min))
            if c.max is not None:
                checks.append((c.name, f"values are above {c.max:g}", typed > c.max))
        total, *counts = raw.aggregate(
            [raw.count().name("_n")]
            + [cond.fill_null(False).cast("int64").sum().name(f"_c{i}") for i, (_, _, cond) in enumerate(checks)]
        ).execute().iloc[0].tolist()
        for (column, message, cond), count in zip(checks, counts):
            if count:
                raise CustlibDataError(message, table=name, file=file, column=column, rule=message,
                                       count=int(count), total=int(total),
                                       examples=_examples(raw, cond.fill_null(False), column))
        for c in spec.columns:
            if c.unique and c.name in raw.columns:
                dup = int(total - raw[c.name].nunique().execute())
                if dup:
                    raise CustlibDataError("values are not unique", table=name, file=file, column=c.name,
                                           rule="unique", count=dup, total=int(total))
            if c.references and c.name in raw.columns:
                ref_table, ref_col = c.references.split(".")
                ref = source.raw(ref_table).select(_ref=source.raw(ref_table)[ref_col].cast("string"))
                key = raw[c.name].cast("string")
                orphan = raw.filter(key.notnull() & ~key.isin(ref._ref))
                n = int(orphan.count().execute())
                if n:
                    raise CustlibDataError(f"values do not exist in {c.references}", table=name, file=file,
                                           column=c.name, rule="references", count=n, total=int(total),
                                           examples=[repr(v) for v in orphan.select(c.name).limit(N_EXAMPLES).execute()[c.name]])


@dataclass
class UnitData:
    """One business unit's parameters and typed tables (Ibis expressions, filtered to the unit)."""

    params: UnitParams
    source: Source
    project_root: Path
    run_date: date

    def table(self, name: str) -> ir.Table:
        t = self.source.typed(name)
        return t.filter(t.business_unit == self.params.id)

    @property
    def customers(self) -> ir.Table:
        return self.table("customers")

    @property
    def transactions(self) -> ir.Table:
        t = self.table("transactions")
        return t.filter(t.order_date <= self.params.observation_end)

    @property
    def loyalty_members(self) -> ir.Table:
        return self.table("loyalty_members")

    @property
    def survey_responses(self) -> ir.Table:
        return self.table("survey_responses")

    @property
    def leads(self) -> ir.Table:
        return self.table("leads")

    @property
    def output_dir(self) -> Path:
        """``reports/<unit>/data``: machine-readable outputs of this unit."""
        return self.project_root / "reports" / self.params.id / "data"

    def period(self) -> tuple[date, date]:
        """First and last order date of the unit, up to the observation end."""
        t = self.transactions
        row = t.aggregate(first=t.order_date.min(), last=t.order_date.max()).execute().iloc[0]
        return row["first"].date(), row["last"].date()


def load_unit(unit_id: str, project_root: str | Path = ".", run_date: date | str | None = None,
              data_source: str | Path | None = None, check: bool = True) -> UnitData:
    """Parameters and validated data of one business unit.

    ``run_date``: ISO date shown in headers (empty: today); ``data_source`` overrides the
    parameter of that name (tests point units at generated data this way).
    """
    root = Path(project_root).resolve()
    if isinstance(run_date, str):
        run_date = date.fromisoformat(run_date) if run_date else None
    params = load_params(unit_id, root / "params")
    if data_source is not None:
        params = params.model_copy(update={"data_source": str(data_source)})
    location = Path(params.data_source)
    source = open_source(location if location.is_absolute() else root / location)
    if check:
        validate(source)
    return UnitData(params, source, root, run_date or date.today())
