"""Open a data source through Ibis (DuckDB by default), validate it against the contract, and
hand out typed, per-unit table expressions.

A source is a folder of ``<table>.parquet`` / ``<table>.csv`` files, a DuckDB database file, a
PostgreSQL database (``postgresql://…``) or Spark (``spark:…``: a Parquet folder or catalog
tables, see :func:`custlib.mapping.parse_spark_url`) whose tables follow the contract; the same
Ibis expressions run on every engine. Files are registered as views: nothing is copied and raw
transactions never enter pandas.
Personal fields are never selected into the typed tables, so no analysis can leak them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pandas as pd

from custlib import contract
from custlib.errors import CustlibDataError
from custlib.mapping import (SourceMapping, is_database_url, open_database, open_tables, redacted,
                             row_examples, spark_url_under)
from custlib.params import UnitParams, load_params

N_EXAMPLES = 5


@dataclass
class Source:
    """An open data source: the Ibis connection and where each table came from.

    ``files`` holds the tables found in the source; an optional table that is absent reads as
    an empty table with the contract's columns. ``location`` is a path, or a database URL
    (without its password); ``tables`` holds the table expressions of a database source (files
    are views of ``con`` named after their table)."""

    location: Path | str
    con: ibis.BaseBackend
    files: dict[str, str] = field(default_factory=dict)  # table -> file (or db::table)
    tables: dict[str, ir.Table] = field(default_factory=dict, repr=False)

    def has_table(self, table: str) -> bool:
        return table in self.files

    def raw(self, table: str) -> ir.Table:
        if table in self.tables:
            return self.tables[table]
        if table in self.files:
            return self.con.table(table)
        spec = contract.TABLES[table]
        return ibis.memtable(pd.DataFrame({c.name: pd.Series(dtype=_PANDAS_TYPES[c.dtype])
                                           for c in spec.columns if not c.personal}))

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
        """SHA-256 over the source files' bytes (changes when any input changes). For a database:
        over its location and each table's columns and row count (the engine does not hand out
        the bytes; an update that keeps the row count keeps the fingerprint)."""
        h = hashlib.sha256()
        if not isinstance(self.location, Path):
            h.update(self.location.encode())
            for name in sorted(self.tables):
                t = self.tables[name]
                h.update(f"{name}:{t.schema()!r}:{int(t.count().execute())}".encode())
            return h.hexdigest()[:16]
        paths = sorted({Path(f.split("::")[0]) for f in self.files.values()})
        for p in paths:
            h.update(p.name.encode())
            with open(p, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        return h.hexdigest()[:16]


_PANDAS_TYPES = {"string": "object", "date": "datetime64[ns]", "timestamp": "datetime64[ns]", "int": "int64",
                 "float": "float64"}


def open_source(location: str | Path, mapping: SourceMapping | None = None,
                timezone: str = "Asia/Shanghai", unit_id: str | None = None) -> Source:
    """Connect to a data source (a folder of files, a ``.duckdb`` file, a ``postgresql://`` or
    ``spark:`` URL) through its mapping.

    Raises :class:`CustlibDataError` when the source cannot be read or a required table
    (customers, transactions) is absent.
    """
    tables: dict[str, ir.Table] = {}
    if is_database_url(location):
        con, files, tables = open_database(location, mapping or SourceMapping(), unit_id)
        location, is_db = redacted(location), True
    else:
        location = Path(location)
        con, files = open_tables(location, mapping or SourceMapping(), timezone, unit_id)
        is_db = location.is_file()
    for name, spec in contract.TABLES.items():
        if spec.required and name not in files:
            expected = ("the database has no table of that name" if is_db else
                        f"expected {name}.parquet or {name}.csv, or a file mapped under sources.{name} in params")
            if str(location).startswith("spark:"):
                expected = f"expected {name}.parquet in the folder, or a catalog table {name}"
            raise CustlibDataError(f"required table '{name}' is missing: {expected}",
                                   file=str(location), table=name, rule="required table")
    return Source(location, con, files, tables)


def _examples(raw: ir.Table, cond: ir.BooleanValue, column: str) -> list[str]:
    return row_examples(raw, cond, column, N_EXAMPLES)


_HINTS = {
    "date": "Fix the file or add a format under sources.{table}.dates.{column} in params.",
    "timestamp": "Fix the file or add a format under sources.{table}.dates.{column} in params.",
    "float": "Fix the file, or set sources.{table}.decimal in params if numbers use a decimal comma.",
    "int": "Fix the file, or set sources.{table}.decimal in params if numbers use a decimal comma.",
}


# Engines whose text is checked against a pattern before it is cast. PostgreSQL has no TRY_CAST
# (Ibis's try_cast is a plain CAST there: one bad value would fail the whole query); Spark's
# TRY_CAST reads more than DuckDB's as a date ('2024' as 2024-01-01, '2024-03' as 2024-03-01).
_NO_TRY_CAST = {"postgres", "pyspark"}
_TEXT_PATTERNS = {
    "int": r"^\s*[+-]?\d{1,18}\s*$",
    "float": r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$",
    "date": r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*$",
    "timestamp": r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})([ T]([01]?\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?)?)?\s*$",
}
_DATE_TEXT = {"date": r"^\d{4}-\d{1,2}-\d{1,2}",  # the part of valid text that is cast
              "timestamp": r"^\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?"}
_KINDS = {"date": "dates", "timestamp": "date-times", "int": "numbers", "float": "numbers"}


def _try_cast(source: Source, col: ir.Value, dtype: str) -> ir.Value:
    """``col`` as the contract type, null where it cannot be read as one, on every engine.

    Where the engine has no TRY_CAST or a more lenient one (PostgreSQL, Spark), text must match
    a pattern first: plain numbers, and ISO dates (``2024-03-05``, a time of day allowed) on a
    real calendar day; a timestamp keeps its time of day, which must be a real time (00:00 to
    23:59:59)."""
    target = contract.IBIS_TYPES[dtype]
    if source.con.name not in _NO_TRY_CAST or not col.type().is_string():
        return col.try_cast(target)
    pattern = _TEXT_PATTERNS[dtype]
    ok = col.re_search(pattern)
    if dtype in _DATE_TEXT:
        y, m, d = (col.re_extract(pattern, i) for i in (1, 2, 3))
        y, m, d = (ibis.ifelse(ok, v, "0").cast("int64") for v in (y, m, d))
        leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
        last = ibis.cases((m == 2, ibis.ifelse(leap, 29, 28)), (m.isin([4, 6, 9, 11]), 30), else_=31)
        ok = ok & m.between(1, 12) & d.between(1, last)
        col = col.strip().re_extract(_DATE_TEXT[dtype], 0)
    return ibis.ifelse(ok, col, ibis.null("string")).cast(target)


def validate(source: Source, unit_ids: list[str] | None = None) -> None:
    """Check every table the source holds against the contract; raise the first problem found.

    Rules: required columns present, values castable to the column's type, not-null, allowed
    values, numeric range, order of two columns (``not_before``), unique keys, references to
    other tables and, given ``unit_ids``, every ``business_unit`` value naming a unit that has a
    parameter file.
    """
    for name, spec in contract.TABLES.items():
        if not source.has_table(name):
            continue
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
            if c.dtype != "string" and col.type().is_string():
                checks.append((c.name, f"values are not {_KINDS[c.dtype]}",
                               col.notnull() & (col.strip() != "") & _try_cast(source, col, c.dtype).isnull()))
            typed = _try_cast(source, col, c.dtype) if c.dtype != "string" else col.cast("string")
            if not c.nullable:
                checks.append((c.name, "values are missing", col.isnull()))
            if c.allowed:
                checks.append((c.name, f"values are not one of {', '.join(c.allowed)}",
                               typed.notnull() & ~typed.isin(c.allowed)))
            if c.min is not None:
                checks.append((c.name, f"values are below {c.min:g}", typed < c.min))
            if c.max is not None:
                checks.append((c.name, f"values are above {c.max:g}", typed > c.max))
            if c.not_before and c.not_before in raw.columns:
                earlier = _try_cast(source, raw[c.not_before], c.dtype)
                checks.append((c.name, f"values are before {c.not_before}", typed < earlier))
        total, *counts = raw.aggregate(
            [raw.count().name("_n")]
            + [cond.fill_null(False).sum().name(f"_c{i}") for i, (_, _, cond) in enumerate(checks)]
        ).execute().iloc[0].tolist()
        for (column, message, cond), count in zip(checks, counts):
            if count:
                raise CustlibDataError(message, table=name, file=file, column=column, rule=message,
                                       count=int(count), total=int(total),
                                       examples=_examples(raw, cond.fill_null(False), column),
                                       hint=_HINTS.get(spec.column(column).dtype, "").format(table=name, column=column) or None)
        if unit_ids is not None:
            _check_units(raw, name, file, unit_ids, int(total))
        for c in spec.columns:
            if c.unique and c.name in raw.columns:
                key = raw[c.name]
                dups = raw.group_by(key.name("_key")).aggregate(_k=raw.count()).filter(lambda t: t._k > 1)
                n = int(ibis.coalesce((dups._k - 1).sum(), 0).execute())
                if n:
                    raise CustlibDataError("values are not unique", table=name, file=file, column=c.name,
                                           rule="unique", count=n, total=int(total),
                                           examples=_examples(raw, key.isin(dups._key), c.name))
            if c.references and c.name in raw.columns and source.has_table(c.references.split(".")[0]):
                ref_table, ref_col = c.references.split(".")
                ref = source.raw(ref_table).select(_ref=source.raw(ref_table)[ref_col].cast("string"))
                key = raw[c.name].cast("string")
                orphan = key.notnull() & ~key.isin(ref._ref)
                n = int(raw.filter(orphan).count().execute())
                if n:
                    raise CustlibDataError(f"values do not exist in {c.references}", table=name, file=file,
                                           column=c.name, rule="references", count=n, total=int(total),
                                           examples=_examples(raw, orphan, c.name))


def _check_units(raw: ir.Table, table: str, file: str, unit_ids: list[str], total: int) -> None:
    """Every business_unit value must name a unit with a parameter file (suggest the nearest)."""
    import difflib

    counts = raw.group_by(bu=raw.business_unit.cast("string")).aggregate(n=raw.count()).execute()
    unknown = counts[~counts["bu"].isin(unit_ids)].sort_values("n", ascending=False)
    if len(unknown):
        value, n = unknown["bu"].iloc[0], int(unknown["n"].iloc[0])
        near = difflib.get_close_matches(str(value).strip(), unit_ids, n=1, cutoff=0.6)
        hint = f"; did you mean {near[0]!r}?" if near else f" (units: {', '.join(unit_ids)})"
        raise CustlibDataError(f"{n:,} rows have business_unit {value!r}, which has no file in "
                               f"params/business_units{hint}", table=table, file=file,
                               column="business_unit", rule="known unit", count=int(unknown["n"].sum()),
                               total=total, examples=[repr(v) for v in unknown["bu"].head(N_EXAMPLES)])


@dataclass
class UnitData:
    """One business unit's parameters and typed tables (Ibis expressions, filtered to the unit)."""

    params: UnitParams
    source: Source
    project_root: Path
    run_date: date
    _rows: dict[str, int] = field(default_factory=dict, repr=False)

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
    def campaigns(self) -> ir.Table:
        return self.table("campaigns")

    @property
    def campaign_contacts(self) -> ir.Table:
        return self.table("campaign_contacts")

    @property
    def service_tickets(self) -> ir.Table:
        return self.table("service_tickets")

    def rows(self, name: str) -> int:
        """Rows of a table for this unit (transactions: up to the observation end); 0 when the
        source does not have the table."""
        if name not in self._rows:
            self._rows[name] = int(getattr(self, name).count().execute()) if self.source.has_table(name) else 0
        return self._rows[name]

    def has(self, name: str) -> bool:
        """Whether the unit has rows in this table."""
        return self.rows(name) > 0

    def missing_for(self, analysis: str) -> list[str]:
        """The tables an analysis needs that this unit does not have (empty: it can run)."""
        return [t for t in contract.ANALYSES[analysis].needs if not self.has(t)]

    def outputs(self, analysis: str) -> Path:
        """``reports/<unit>/data/<analysis>``: the machine-readable outputs one analysis owns."""
        return self.project_root / "reports" / self.params.id / "data" / analysis

    def period(self) -> tuple[date, date]:
        """First and last order date of the unit, up to the observation end."""
        t = self.transactions
        row = t.aggregate(first=t.order_date.min(), last=t.order_date.max()).execute().iloc[0]
        return row["first"].date(), row["last"].date()


def unit_problem(data: UnitData) -> str | None:
    """Why no report can be made for this unit, or None: it has no customers, or no
    transactions on or before the observation end."""
    p, u = data.params, data.params.id
    if not data.has("customers"):
        return f"unit {u}: no customers (business_unit '{u}') in {data.source.files['customers']}"
    if not data.has("transactions"):
        t = data.table("transactions")
        first = t.order_date.min().execute()
        if first is None or pd.isna(first):
            return f"unit {u}: no transactions (business_unit '{u}') in {data.source.files['transactions']}"
        return (f"unit {u}: no transactions on or before observation_end {p.observation_end:%Y-%m-%d} "
                f"(first order {pd.Timestamp(first):%Y-%m-%d})")
    return None


def open_unit_source(params: UnitParams, root: Path) -> Source:
    """The unit's data source as its parameters describe it (location, mapping, time zone)."""
    if is_database_url(params.data_source):  # a spark:local folder may be relative to the root
        return open_source(spark_url_under(params.data_source, root), params.sources, params.timezone,
                           params.id)
    location = Path(params.data_source)
    location = location if location.is_absolute() else root / location
    return open_source(location, params.sources, params.timezone, params.id)


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
    source = open_unit_source(params, root)
    if check:
        validate(source)
    return UnitData(params, source, root, run_date or date.today())
