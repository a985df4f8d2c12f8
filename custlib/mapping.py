"""How a unit's files map onto the data contract (``sources:`` in params), and reading them.

:func:`open_tables` registers every contract table found in a source as an Ibis view named
after it, with the contract's column names. A table absent from the source is simply not
registered; :mod:`custlib.sources` decides whether that is allowed (optional tables) or an
error (required ones).

CSV files and Excel sheets are read as text (a sheet through python-calamine into a DuckDB
table), Parquet files and DuckDB tables with their types; no rows reach pandas. A table whose ``sources.<table>`` entry sets any key is *mapped*: its columns become contract
columns through one engine expression (DuckDB through Ibis), in which

* text is trimmed (including non-breaking and full-width spaces), empty text is missing,
  ``values`` maps export values onto contract values;
* numbers lose currency symbols and codes, spaces and thousands separators (``decimal``
  names the decimal mark): ``¥1,234.50`` and ``1.234,50 €`` (``decimal: ","``) are 1234.5;
* dates are parsed with the ``dates`` formats given, or recognised per column (ISO,
  ``YYYY/MM/DD``, ``YYYY年M月D日``, Excel serial numbers, and day- or month-first with
  ``/ . -``: the reading under which every such value is a date, an error when both are);
  a timestamp with a UTC offset is converted to the unit's time zone before its date is taken,
  one without is taken as local time. Dates come out as ISO text (``2024-03-05``); columns of
  the contract type ``timestamp`` keep the time of day (``2024-03-05 14:30:00``, local time).

A value that still does not parse is left as it was, so :func:`custlib.sources.validate`
reports it with its rows. A table without a ``business_unit`` column or constant gets the id
of the unit opening the source: such a source belongs to that one unit.

Inputs are never modified: a CSV that is not UTF-8, has its header below line 1 or a footer is
streamed into a UTF-8 temporary file that lives as long as the connection.
"""

from __future__ import annotations

import codecs
import csv
import datetime as pydt
import re
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb
import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
from pydantic import BaseModel, ConfigDict, Field

from custlib import contract
from custlib.errors import CustlibDataError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TableSource(_Strict):
    """Where one contract table comes from and how its columns map onto the contract."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    file: str | None = Field(None, description="File in the data folder (CSV, Parquet, .xlsx/.xls) "
                                               "or a table of the .duckdb file; default <table>.parquet/.csv")
    optional: bool = Field(False, description="an absent file means the table is absent instead of an "
                                              "error (presets set it for optional tables)")
    sheet: str | None = Field(None, description="Excel sheet name (default: the first sheet)")
    encoding: str = Field("auto", description="CSV encoding (e.g. gb18030, utf-8-sig); auto-detected "
                                              "by default")
    delimiter: str | None = Field(None, description="CSV delimiter; auto-detected by default")
    header_row: int = Field(1, ge=1, description="1-based row holding the column names")
    skip_footer: int = Field(0, ge=0, description="non-blank lines to drop at the end (report totals, "
                                                  "notices); blank lines at the end are always dropped")
    columns: dict[str, str | list[str] | None] = Field(
        default_factory=dict, description="export column -> contract column(s); null ignores the "
                                          "column (and un-maps a preset's). Export columns named like a "
                                          "contract column map onto it by themselves")
    dates: dict[str, list[str]] = Field(default_factory=dict,
                                        description="contract column -> strptime formats tried in order; "
                                                    "'excel' for Excel serial day numbers")
    decimal: Literal[".", ","] = Field(".", description="decimal separator of numbers")
    values: dict[str, dict[str, str]] = Field(default_factory=dict,
                                              description="contract column -> {export value: contract value}")
    constants: dict[str, str | None] = Field(default_factory=dict,
                                             description="contract column -> value (null: empty) for "
                                                         "columns the export lacks")
    keep_rows: dict[str, list[str]] = Field(default_factory=dict,
                                            description="export column -> the only values whose rows are "
                                                        "kept (e.g. won deals as orders)")


class SourceMapping(_Strict):
    """``sources:`` in params: an optional preset (``params/sources/<preset>.yaml``, merged under
    the unit's entries by :func:`custlib.params.load_params`) and one entry per table that
    differs from the contract's own layout."""

    preset: str | None = None
    customers: TableSource = TableSource()
    transactions: TableSource = TableSource()
    loyalty_members: TableSource = TableSource()
    survey_responses: TableSource = TableSource()
    leads: TableSource = TableSource()
    campaigns: TableSource = TableSource()
    campaign_contacts: TableSource = TableSource()
    service_tickets: TableSource = TableSource()

    def table(self, name: str) -> TableSource:
        return getattr(self, name)


def open_tables(location: Path, mapping: SourceMapping, timezone: str,
                unit_id: str | None = None) -> tuple[ibis.BaseBackend, dict[str, str]]:
    """Connect to ``location`` and register each contract table it holds.

    ``timezone``: IANA zone that timestamps with a UTC offset are converted to; ``unit_id``:
    fills ``business_unit`` where a table has neither that column nor a constant for it.
    Parquet files and database tables are views; CSV and Excel tables are parsed and cleaned
    once into temporary engine tables. Returns the connection and ``{table: file}`` of the
    tables found (``file`` names what the user would open: a path, or ``db.duckdb::table``).
    Raises :class:`CustlibDataError` naming the file when one cannot be read.
    """
    con = ibis.duckdb.connect()
    if location.is_file():
        try:
            con.attach(str(location), name=_DB[0], read_only=True)
        except duckdb.Error as e:
            locked = "lock" in str(e).lower()
            raise CustlibDataError(
                "the database is open in another program that holds a write lock: close it "
                "(or copy the file) and retry" if locked else
                f"not a readable DuckDB database ({_first_line(e)}): export it again",
                file=str(location), rule="locked database" if locked else "unreadable file") from None
    elif not location.is_dir():
        raise CustlibDataError("data source not found (a folder of Parquet/CSV files or a "
                               ".duckdb file)", file=str(location))
    reader = _Reader(con, location)
    files = {}
    for name in contract.TABLES:
        spec = mapping.table(name)
        found = reader.locate(name, spec)
        if found is None:
            continue
        raw = reader.read(found, spec, name)
        table = (_Mapper(name, spec, found.display, timezone).apply(raw, unit_id) if spec != TableSource()
                 else _with_unit(raw, unit_id))
        if found.kind in ("csv", "excel"):  # text parsed and cleaned once, not on every query
            con.create_table(name, table, temp=True, overwrite=True)
        else:
            con.create_view(name, table, overwrite=True)
        files[name] = found.display
    return con, files


DATABASE_SCHEMES = ("postgresql://", "postgres://", "spark:")


def is_database_url(location: object) -> bool:
    """Whether a data source names an engine (``postgresql://…``, ``spark:…``) instead of a path
    DuckDB reads."""
    return isinstance(location, str) and location.startswith(DATABASE_SCHEMES)


def redacted(url: str) -> str:
    """The URL without its password, for messages and manifests."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def open_database(url: str, mapping: SourceMapping,
                  unit_id: str | None = None) -> tuple[ibis.BaseBackend, dict[str, str], dict[str, ir.Table]]:
    """Connect to a database whose tables already follow the contract: PostgreSQL
    (``postgresql://…``) or Spark (``spark:…``, see :func:`parse_spark_url`).

    Each contract table is the database table of its name (or ``sources.<table>.file``, a table
    name; in a Spark folder ``<table>.parquet``, or the file name given); its columns must carry
    the contract's names (the engine casts them to the contract's types on use). The column
    mapping and cleaning of exports (dates, decimal commas, values) is done for files DuckDB
    reads only: load mapped exports into the database after cleaning them. A table without
    ``business_unit`` gets ``unit_id``, as for files. Nothing is created in the database.
    Returns the connection, ``{table: "<url>::<table>"}`` (password left out) and the table
    expressions. Needs the driver: ``pip install 'custlib[postgres]'`` or ``'custlib[spark]'``.
    """
    if url.startswith("spark:"):
        return _open_spark(url, mapping, unit_id)
    display = redacted(url)
    try:
        con = ibis.connect(url)
    except ModuleNotFoundError as e:
        raise CustlibDataError(f"reading a PostgreSQL database needs its driver ({e.name} is not "
                               "installed): pip install 'custlib[postgres]'", file=display,
                               rule="missing driver") from None
    except Exception as e:  # noqa: BLE001 - the driver's own error names the cause
        raise CustlibDataError(f"cannot connect to the database ({_first_line(e)}): check the URL, "
                               "and give the password in PGPASSWORD or ~/.pgpass rather than in params",
                               file=display, rule="unreadable source") from None
    present = set(con.list_tables())
    files, tables = _database_tables(mapping, unit_id, display, present, con.table)
    return con, files, tables


def _database_tables(mapping: SourceMapping, unit_id: str | None, display: str, present: set[str],
                     read, suffix: str = "") -> tuple[dict[str, str], dict[str, ir.Table]]:
    """``{table: "<display>::<member>"}`` and the table expressions (``read(member)``) of the
    contract tables among ``present`` (a table's member: ``sources.<table>.file``, else its name
    plus ``suffix``); refuses file mappings and a mapped member that is absent."""
    files, tables = {}, {}
    holder, member_kind = ("the folder", "file") if suffix else ("the database", "table")
    for name in contract.TABLES:
        spec = mapping.table(name)
        mapped = sorted(spec.model_dump(exclude_defaults=True).keys() - {"file", "optional"})
        if mapped:
            raise CustlibDataError(f"sources.{name}.{mapped[0]} is for files: a database table must "
                                   "already have the contract's column names and values (only file, the "
                                   "table name, and optional can be set)", table=name, file=display,
                                   rule="mapping")
        member = spec.file or name + suffix
        if member not in present:
            if spec.file and not spec.optional:
                raise CustlibDataError(f"{holder} has no {member_kind} {member!r} (mapped under sources.{name}."
                                       f"file); its {member_kind}s: {', '.join(sorted(present))}",
                                       table=name, file=display, rule="missing file")
            continue
        tables[name] = _with_unit(read(member), unit_id)
        files[name] = f"{display}::{member}"
    return files, tables


# -- Spark -----------------------------------------------------------------------------------------

SPARK_LOCAL_THREADS = 2  # spark:local is local[2]


@dataclass(frozen=True)
class SparkURL:
    """A parsed ``spark:`` data source: the Spark master and a Parquet folder or a catalog database."""

    master: str  # local[2], local[*], spark://host:7077
    folder: str | None = None  # Parquet files <table>.parquet (a path or a file system URI)
    database: str | None = None  # catalog database (None: the session's current one)


_SPARK_LOCAL = re.compile(r"^spark:(local(?:\[(?:\d+|\*)\])?)(?::(.*?))?(?:\?(.*))?$")


def parse_spark_url(url: str) -> SparkURL:
    """Where a ``spark:`` data source points.

    * ``spark:local`` / ``spark:local[N]`` / ``spark:local[*]``: local mode in this process
      (``local`` is ``local[2]``: two worker threads), then optionally ``:<folder>``;
      a relative folder is relative to the project root (as a ``data_source`` path), a file
      system URI (``hdfs://…``, ``s3a://…``) is passed to Spark as it is;
    * ``spark://host:port/<folder>``: a standalone cluster; the absolute folder as both this
      process (the driver) and the workers see it (a shared mount);
    * without a folder: the tables of the Spark catalog, ``?database=<name>`` (default: the
      session's current database, usually ``default``).

    A folder holds one Parquet file (or Spark's folder of part files) per contract table,
    ``<table>.parquet``, as ``custlib demo-data`` writes them.
    """
    from urllib.parse import parse_qs, urlsplit

    def query(text: str | None) -> str | None:
        opts = parse_qs(text or "", keep_blank_values=True)
        unknown = sorted(opts.keys() - {"database"})
        if unknown or any(len(v) != 1 or not v[0] for v in opts.values()):
            raise CustlibDataError(f"a spark: data source takes only ?database=<name>, not {text!r}",
                                   file=url, rule="data source", kind="params")
        return opts["database"][0] if opts else None

    if url.startswith("spark://"):
        parts = urlsplit(url)
        if not parts.hostname or parts.port is None:
            raise CustlibDataError("a Spark cluster is spark://host:port[/folder][?database=name]",
                                   file=url, rule="data source", kind="params")
        folder = parts.path if parts.path not in ("", "/") else None
        spark = SparkURL(f"spark://{parts.hostname}:{parts.port}", folder, query(parts.query))
    else:
        m = _SPARK_LOCAL.match(url)
        if m is None:
            raise CustlibDataError("a local Spark data source is spark:local[N][:folder][?database=name] "
                                   "(e.g. spark:local:data/demo), a cluster spark://host:port/folder",
                                   file=url, rule="data source", kind="params")
        master = m.group(1) if m.group(1) != "local" else f"local[{SPARK_LOCAL_THREADS}]"
        spark = SparkURL(master, m.group(2) or None, query(m.group(3)))
    if spark.folder and spark.database:
        raise CustlibDataError("a spark: data source reads a Parquet folder or a catalog database, "
                               "not both", file=url, rule="data source", kind="params")
    return spark


def spark_url_under(url: str, root: Path) -> str:
    """A ``spark:local`` URL with its relative folder made absolute under ``root``; other
    data sources unchanged."""
    if not url.startswith("spark:local"):
        return url
    spark = parse_spark_url(url)
    if not spark.folder or "://" in spark.folder or Path(spark.folder).is_absolute():
        return url
    head = url[:len("spark:") + len(_SPARK_LOCAL.match(url).group(1))]
    return f"{head}:{root / spark.folder}"


def spark_session(master: str = f"local[{SPARK_LOCAL_THREADS}]"):
    """The process's Spark session on ``master``, created light when there is none: UTC session
    time zone, 4 shuffle partitions (small data; Spark's 200 would make 200 tasks of every
    aggregate), no web UI or console progress bar, log level ERROR. A session already running
    (one per process) is reused if it has the same master."""
    try:
        from pyspark import SparkContext
        from pyspark.sql import SparkSession
    except ModuleNotFoundError as e:
        raise CustlibDataError(f"reading through Spark needs PySpark ({e.name} is not installed): "
                               "pip install 'custlib[spark]' (and a Java 17 runtime)", file=f"spark:{master}",
                               rule="missing driver") from None
    active = SparkContext._active_spark_context
    if active is not None:
        if active.master != master:
            raise CustlibDataError(f"this process already runs Spark on {active.master}: one Spark "
                                   "session per process, so every spark: source must name the same master",
                                   file=f"spark:{master}", rule="unreadable source")
        return SparkSession.builder.getOrCreate()
    try:
        session = (SparkSession.builder.master(master).appName("custlib")
                   .config("spark.sql.session.timeZone", "UTC")
                   .config("spark.sql.shuffle.partitions", "4")
                   .config("spark.ui.enabled", "false")
                   .config("spark.ui.showConsoleProgress", "false")
                   .getOrCreate())
    except Exception as e:  # noqa: BLE001 - Java missing, cluster unreachable: Spark names it
        raise CustlibDataError(f"cannot start Spark on {master} ({_first_line(e)}): it needs a Java 17 "
                               "runtime (java on PATH or JAVA_HOME)", file=f"spark:{master}",
                               rule="unreadable source") from None
    session.sparkContext.setLogLevel("ERROR")
    return session


def _open_spark(url: str, mapping: SourceMapping,
                unit_id: str | None) -> tuple[ibis.BaseBackend, dict[str, str], dict[str, ir.Table]]:
    """A ``spark:`` source (:func:`parse_spark_url`) through Ibis's PySpark backend. Parquet
    files become temporary views with generated names, so several folders can be open at once."""
    spark = parse_spark_url(url)
    session = spark_session(spark.master)
    con = ibis.pyspark.connect(session)
    if spark.folder is None:
        database = spark.database or con.current_database
        try:
            present = set(con.list_tables(database=database))
        except Exception as e:  # noqa: BLE001
            raise CustlibDataError(f"cannot list the tables of Spark database {database!r} "
                                   f"({_first_line(e)})", file=url, rule="unreadable source") from None
        return con, *_database_tables(mapping, unit_id, url, present,
                                      lambda member: con.table(member, database=database))
    # listed through Spark's Hadoop file system: a local path, hdfs://, s3a:// ... alike
    try:
        folder = session.sparkContext._jvm.org.apache.hadoop.fs.Path(spark.folder)
        fs = folder.getFileSystem(session.sparkContext._jsc.hadoopConfiguration())
        names = [s.getPath().getName() for s in fs.listStatus(folder)] if fs.isDirectory(folder) else None
    except Exception as e:  # noqa: BLE001 - unknown file system, unreachable name node ...
        raise CustlibDataError(f"cannot list the folder ({_first_line(e)})", file=url,
                               rule="unreadable source") from None
    if names is None:
        raise CustlibDataError("data source not found (a folder of <table>.parquet files)",
                               file=url, rule="unreadable source")
    present = {n for n in names if n.lower().endswith(".parquet")}

    def read(member: str) -> ir.Table:
        path = f"{spark.folder.rstrip('/')}/{member}"
        try:
            return con.read_parquet(path)
        except Exception as e:  # noqa: BLE001
            raise CustlibDataError(f"not a readable Parquet file ({_first_line(e)})", file=path,
                                   rule="unreadable file") from None

    return con, *_database_tables(mapping, unit_id, url, present, read, suffix=".parquet")


# -- reading files ---------------------------------------------------------------------------------

_DB = ("source_db", "main")  # catalog and schema of an attached .duckdb file
_CHUNK = 1 << 20  # characters streamed at a time when transcoding a CSV
_SAMPLE = 1 << 16  # bytes read to detect an encoding
_KINDS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet",
          ".xlsx": "excel", ".xlsm": "excel", ".xls": "excel"}  # file suffix -> reader
LINE = "_line"  # hidden column: line (CSV) or row (Excel) of the file, where row order cannot give it


@dataclass(frozen=True)
class _Input:
    kind: Literal["csv", "parquet", "excel", "duckdb"]
    path: Path
    display: str
    member: str | None = None  # table of the DuckDB file


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0]


def _pinned(sniffed: str, default: str) -> str:
    """A quote or escape character the sniffer found, else the CSV standard's: a sample without
    quotes says nothing about the rows after it."""
    return default if sniffed in ("", "(empty)") else sniffed


class _Reader:
    """Finds and reads the files of one source into raw Ibis tables on one connection."""

    def __init__(self, con: ibis.BaseBackend, location: Path):
        self.con, self.location = con, location
        self.is_db = location.is_file()
        self.folder = location.parent if self.is_db else location
        self.db_tables = set(con.list_tables(database=_DB)) if self.is_db else set()
        self._tmp: Path | None = None

    def locate(self, table: str, spec: TableSource) -> _Input | None:
        """The input of a table, or None when the source lacks it (or it is optional and absent)."""
        if spec.file is None:
            if self.is_db:
                return (_Input("duckdb", self.location, f"{self.location}::{table}", table)
                        if table in self.db_tables else None)
            for suffix in (".parquet", ".csv"):
                if (path := self.location / f"{table}{suffix}").exists():
                    return _Input(_KINDS[suffix], path, str(path))
            return None
        kind = _KINDS.get(Path(spec.file).suffix.lower())
        if self.is_db and kind is None:
            if spec.file in self.db_tables:
                return _Input("duckdb", self.location, f"{self.location}::{spec.file}", spec.file)
            if spec.optional:
                return None
            raise CustlibDataError(f"the database has no table {spec.file!r} (mapped under sources.{table}."
                                   f"file); its tables: {', '.join(sorted(self.db_tables))}",
                                   table=table, file=str(self.location), rule="missing file")
        path = self.folder / spec.file
        if not path.is_file():
            if spec.optional:
                return None
            raise CustlibDataError(f"file not found (mapped under sources.{table}.file, relative to "
                                   f"{self.folder}): put the export there or correct the name",
                                   table=table, file=str(path), rule="missing file")
        if kind is None:
            raise CustlibDataError(f"unsupported file type {path.suffix!r}: use CSV, Parquet or Excel",
                                   table=table, file=str(path), rule="unreadable file")
        return _Input(kind, path, str(path))

    def read(self, found: _Input, spec: TableSource, table: str) -> ir.Table:
        """The file as an Ibis table with its own column names (CSV and Excel as text)."""
        if found.kind == "duckdb":
            return self.con.table(found.member, database=_DB)
        if found.kind == "excel":
            return self._excel(found, spec, table)
        if found.kind == "parquet":
            try:
                return self.con.read_parquet(found.path)
            except duckdb.Error as e:
                raise CustlibDataError(f"not a readable Parquet file, truncated or corrupt ({_first_line(e)}): "
                                       "export it again", table=table, file=found.display,
                                       rule="unreadable file") from None
        return self._csv(found, spec, table)

    def _csv(self, found: _Input, spec: TableSource, table: str) -> ir.Table:
        """The CSV as text columns (validation and the typed view cast them); its dialect is
        sniffed once here and pinned, since DuckDB would sniff again for every query."""
        encoding = _encoding(found.path, spec.encoding, table)
        if encoding in ("utf-8", "utf-8-sig") and spec.header_row == 1 and not spec.skip_footer:
            _check_decodes(found.path, encoding, table)
            path = found.path
        else:
            path = self._transcode(found.path, encoding, spec, table)
        options = dict(header=True, skip=0, all_varchar=True, null_padding=True)
        if spec.delimiter:
            options["delim"] = spec.delimiter
        try:
            args = ", ".join(f"{k} := ${i + 2}" for i, k in enumerate(options))
            delim, quote, escape, columns = self.con.con.execute(
                f"SELECT Delimiter, Quote, Escape, Columns FROM sniff_csv($1, {args})",
                [str(path), *options.values()]).fetchone()
            raw = self.con.read_csv(
                str(path), columns={c["name"]: "VARCHAR" for c in columns}, header=True, skip=0,
                null_padding=True, delim=delim, quote=_pinned(quote, '"'), escape=_pinned(escape, '"'))
            raw.count().execute()  # parse it all now, so a broken file fails here, not mid-report
        except duckdb.Error as e:
            raise CustlibDataError(f"cannot read the CSV file ({_first_line(e)}): check the delimiter "
                                   f"and quoting, or set sources.{table}.delimiter",
                                   table=table, file=found.display, rule="unreadable file") from None
        if spec.header_row > 1 or spec.keep_rows:
            # rows are numbered before keep_rows drops any (a window: costs a little per query)
            raw = raw.mutate(**{LINE: ibis.row_number() + spec.header_row + 1})
        return raw

    def _transcode(self, path: Path, encoding: str, spec: TableSource, table: str) -> Path:
        """Stream the CSV into a UTF-8 temporary file, from its header line to before its footer."""
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="custlib-"))
            weakref.finalize(self.con, shutil.rmtree, self._tmp, True)
        out = self._tmp / f"{table}.csv"
        try:
            with (open(path, encoding=encoding, newline="") as src,
                  open(out, "w", encoding="utf-8", newline="") as dst):
                for _ in range(spec.header_row - 1):
                    src.readline()
                header = src.readline()
                dst.write(header)
                lines, tail = spec.header_row, ""
                while chunk := src.read(_CHUNK):
                    tail += chunk
                    if len(tail) > 2 * _CHUNK:
                        cut = tail.rfind("\n", 0, len(tail) - _CHUNK) + 1
                        lines += tail.count("\n", 0, cut)
                        dst.write(tail[:cut])
                        tail = tail[cut:]
                delimiter = spec.delimiter or max(",;\t|", key=header.count)
                split = lambda line: next(csv.reader([line], delimiter=delimiter), [])  # noqa: E731
                dst.writelines(_drop_footer(tail.splitlines(keepends=True), split, split(header),
                                            spec.skip_footer, lines + 1, table, str(path)))
        except UnicodeDecodeError:
            _check_decodes(path, encoding, table)
            raise  # not reached: the check names the line
        return out

    def _excel(self, found: _Input, spec: TableSource, table: str) -> ir.Table:
        """Register the sheet's rows as a DuckDB table of text, numbered by their sheet row."""
        import pyarrow as pa
        from python_calamine import CalamineError, CalamineWorkbook

        try:
            book = CalamineWorkbook.from_path(str(found.path))
        except (CalamineError, OSError) as e:
            raise CustlibDataError(f"not a readable Excel workbook ({_first_line(e)}): save it again "
                                   "as .xlsx", table=table, file=found.display, rule="unreadable file") from None
        sheet = spec.sheet or book.sheet_names[0]
        if sheet not in book.sheet_names:
            raise CustlibDataError(f"the workbook has no sheet {sheet!r} (sources.{table}.sheet); its sheets: "
                                   f"{', '.join(book.sheet_names)}", table=table, file=found.display,
                                   rule="missing sheet")
        rows = [[_cell_text(v) for v in row]
                for row in book.get_sheet_by_name(sheet).to_python(skip_empty_area=False)]
        header = rows[spec.header_row - 1] if len(rows) >= spec.header_row else []
        body = _drop_footer(rows[spec.header_row:], list, header, spec.skip_footer, spec.header_row + 1,
                            table, found.display)
        names = _unique([h or f"column{j + 1}" for j, h in enumerate(header)])
        data = {n: pa.array([r[j] if j < len(r) else None for r in body], pa.string())
                for j, n in enumerate(names)}
        data[LINE] = pa.array(range(spec.header_row + 1, spec.header_row + 1 + len(body)), pa.int64())
        return self.con.create_table(ibis.util.gen_name("excel"), pa.table(data), temp=True)


def _encoding(path: Path, stated: str, table: str) -> str:
    """The codec to read a CSV with: the stated one, or detected (BOM, UTF-8, else
    charset-normalizer on the first bytes). GBK and GB2312 are read as their superset GB18030."""
    if stated == "auto":
        with open(path, "rb") as fh:
            head = fh.read(_SAMPLE)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head)  # a character cut at the end is fine
            return "utf-8"
        except UnicodeDecodeError:
            pass
        from charset_normalizer import from_bytes

        best = from_bytes(head).best()
        if best is None:
            raise CustlibDataError(f"cannot tell the text encoding: set sources.{table}.encoding in params "
                                   "(e.g. gb18030, utf-8)", table=table, file=str(path), rule="encoding")
        stated = best.encoding
    try:
        name = codecs.lookup(stated).name
    except LookupError:
        raise CustlibDataError(f"unknown encoding {stated!r} under sources.{table}.encoding",
                               table=table, file=str(path), rule="encoding", kind="params") from None
    return "gb18030" if name in ("gbk", "gb2312") else name


def _check_decodes(path: Path, encoding: str, table: str) -> None:
    """Raise, naming the first line with bytes that are not text in ``encoding``."""
    decoder = codecs.getincrementaldecoder(encoding)()
    lines = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as e:
                line = lines + e.object[:e.start].count(b"\n") + 1
                raise CustlibDataError(
                    f"line {line:,} has bytes that are not {encoding} text "
                    f"({e.object[e.start:e.start + 4]!r}): save the file as UTF-8 or set "
                    f"sources.{table}.encoding in params", table=table, file=str(path), rule="encoding",
                    examples=[f"line {line}"]) from None
            lines += chunk.count(b"\n")


def _drop_footer(rows: list, cells, header: list, n: int, first_line: int, table: str, file: str) -> list:
    """``rows`` (the end of a file, the first on line ``first_line``; ``cells`` splits one into
    its values) without blank rows at the end and the ``n`` non-blank rows before them.

    A footer row holds a note or a total; one that fills most columns is a data row, and
    dropping it is an error rather than a silent loss."""
    rows, dropped = list(rows), 0
    while rows:
        values = [str(c) for c in cells(rows[-1]) if c and str(c).strip()]
        if values and dropped == n:
            break
        if len(values) > max(1, len(header) // 2):
            line = first_line + len(rows) - 1
            raise CustlibDataError(f"sources.{table}.skip_footer would drop line {line:,}, which looks like "
                                   "a data row: lower skip_footer", table=table, file=file, rule="footer",
                                   examples=[f"line {line}: {','.join(values)[:80]!r}"])
        dropped += bool(values)
        rows.pop()
    return rows


def _cell_text(value) -> str | None:
    """An Excel cell as text: dates ISO, whole numbers without '.0', empty as None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (pydt.datetime, pydt.date)):
        return value.isoformat(sep=" ") if isinstance(value, pydt.datetime) else value.isoformat()
    return str(value)


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}_{seen[n]}")
    return out


def row_examples(table: ir.Table, cond: ir.BooleanValue, column: str, n: int = 5) -> list[str]:
    """Up to ``n`` values of ``column`` where ``cond`` holds, as ``"row 18: 'n/a'"``: the file's
    line (CSV) or row (Excel), kept in the hidden ``_line`` column where row order cannot give
    it, else the row's position + 1 for a header line."""
    row = table[LINE] if LINE in table.columns else ibis.row_number() + 2
    rows = table.mutate(_row=row).filter(cond).select("_row", column).limit(n).execute()
    return [f"row {r}: {v!r}" for r, v in zip(rows["_row"], rows[column])]


def _with_unit(raw: ir.Table, unit_id: str | None) -> ir.Table:
    """An unmapped table as it is, with the unit's id as business_unit if it has no such column."""
    if unit_id and "business_unit" not in raw.columns:
        return raw.mutate(business_unit=ibis.literal(unit_id))
    return raw


# -- cleaning in the engine -------------------------------------------------------------------------

# whitespace trimmed from text: ASCII, no-break, Ogham, en/em..., line/paragraph, narrow no-break,
# medium mathematical, ideographic (full-width) space, and the byte-order mark
_SPACES = " \t\r\n\v\f\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
          "\u2028\u2029\u202f\u205f\u3000\ufeff"
_MONEY = r"(?i)CNY|RMB|USD|EUR|GBP|HKD|[¥￥€$£元]|[\s\x{00A0}\x{202F}\x{3000}]"
_GROUPED = {".": r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$", ",": r"^[+-]?\d{1,3}(\.\d{3})+(,\d*)?$"}

_TIME = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)"
_ISO_TZ = rf"^\d{{4}}-\d{{1,2}}-\d{{1,2}}{_TIME}\s*(?:Z|[+-]\d{{2}}:?\d{{2}})$"
_ISO = rf"^\d{{4}}-\d{{1,2}}-\d{{1,2}}{_TIME}?$"
_YMD = r"^\d{4}[/.]\d{1,2}[/.]\d{1,2}(?: \d{1,2}:\d{2}(?::\d{2})?)?$"
_CHINESE = r"^\d{4}年\d{1,2}月\d{1,2}日(?: ?\d{1,2}:\d{2}(?::\d{2})?)?$"
_SERIAL = r"^\d{5}(?:\.\d+)?$"
_DAY_MONTH = (r"^\d{1,2}(?:/\d{1,2}/|\.\d{1,2}\.|-\d{1,2}-)\d{4}"
              r"(?: \d{1,2}:\d{2}(?::\d{2})?(?: ?[AaPp][Mm])?)?$")
_CLOCKS = ("", " %H:%M", " %H:%M:%S")
_YMD_FORMATS = [f"%Y{s}%m{s}%d{t}" for s in "/." for t in _CLOCKS]
_CHINESE_FORMATS = [f"%Y年%m月%d日{t}" for t in (*_CLOCKS, "%H:%M", "%H:%M:%S")]
_DM_CLOCKS = (*_CLOCKS, " %I:%M %p", " %I:%M:%S %p", " %I:%M%p")
_READINGS = {"day-first": [f"%d{s}%m{s}%Y{t}" for s in "/.-" for t in _DM_CLOCKS],
             "month-first": [f"%m{s}%d{s}%Y{t}" for s in "/.-" for t in _DM_CLOCKS]}
_PLAUSIBLE_SERIALS = (18264, 73051)  # Excel day numbers of 1950-01-01 and 2100-01-01
_ALL_SERIALS = (1, 2958466)  # 1900-01-01 to 9999-12-31
_TZ = dt.Timestamp(timezone="UTC")


@ibis.udf.scalar.builtin(name="trim")
def _trim(value: str, characters: str) -> str:
    """DuckDB trim(value, characters): strips any of the characters from both ends."""


@ibis.udf.scalar.builtin(name="try_strptime")
def _strptime(value: str, format: str) -> dt.Timestamp():
    """DuckDB try_strptime: the timestamp, or NULL when the text does not match the format."""


@ibis.udf.scalar.builtin(name="try_strptime")
def _strptime_tz(value: str, format: str) -> _TZ:
    """DuckDB try_strptime with %z or %Z in the format: an instant (TIMESTAMPTZ)."""


@ibis.udf.scalar.builtin(name="timezone")
def _in_zone(zone: str, instant: _TZ) -> dt.Timestamp():
    """DuckDB timezone(zone, instant): the wall-clock time of the instant in the IANA zone."""


def _excel_day(number: ir.FloatingValue, bounds: tuple[int, int]) -> ir.TimestampValue:
    """Excel serial day number (days since 1899-12-30, time of day as the fraction, kept to the
    second) -> timestamp."""
    whole = number.floor()
    stamp = (ibis.timestamp("1899-12-30 00:00:00") + whole.cast("int64").as_interval("D")
             + ((number - whole) * 86400).round().cast("int64").as_interval("s"))
    return ibis.cases((number.between(bounds[0], bounds[1] - 1), stamp), else_=ibis.null("timestamp"))


def _first(text: ir.StringValue, formats: list[str]) -> ir.TimestampValue:
    return ibis.coalesce(*(_strptime(text, f) for f in formats))


def _norm(name: str) -> str:
    return " ".join(name.replace("\ufeff", "").split()).casefold()


_TEMPORAL = ("date", "timestamp")  # contract dtypes parsed from text as dates


class _Mapper:
    """Turns one raw export table into the contract's columns, as one Ibis expression."""

    def __init__(self, table: str, spec: TableSource, file: str, timezone: str):
        self.table, self.spec, self.file, self.tz = table, spec, file, timezone
        self.contract = contract.TABLES[table]
        self._check_names()

    def apply(self, raw: ir.Table, unit_id: str | None) -> ir.Table:
        """The contract's columns (those the export has, constants, the unit id) of the kept rows."""
        for col, keep in self.spec.keep_rows.items():
            raw = raw.filter(self._text(raw[self._find(raw, col)]).isin(keep))
        sources = self._sources(raw)
        text = {c: self._text(v) for c, v in sources.items()
                if v.type().is_string() or c in self.spec.values
                or (self.contract.column(c).dtype in _TEMPORAL and not v.type().is_temporal())}
        for c, mapping in self.spec.values.items():
            if c in text:
                text[c] = text[c].substitute(mapping, else_=text[c])
        step = raw.select(**{c: text.get(c, v) for c, v in sources.items()},
                          **({LINE: raw[LINE]} if LINE in raw.columns else {}))
        readings = self._readings(step, [c for c in text if self.contract.column(c).dtype in _TEMPORAL
                                         and c not in self.spec.dates])
        out = {}
        for col in self.contract.columns:
            c = col.name
            if c in sources:
                out[c] = self._convert(step[c], col.dtype, c in text, self.spec.dates.get(c), readings.get(c))
            elif c in self.spec.constants:
                value = self.spec.constants[c]
                out[c] = ibis.null("string") if value is None else ibis.literal(value, "string")
            elif c == "business_unit" and unit_id:
                out[c] = ibis.literal(unit_id, "string")
        if LINE in step.columns:
            out[LINE] = step[LINE]
        return step.select(**out)

    def _check_names(self) -> None:
        spec, known = self.spec, set(self.contract.column_names)
        targets = [t for v in spec.columns.values() if v for t in ([v] if isinstance(v, str) else v)]
        for key, names in (("columns", targets), ("dates", spec.dates), ("values", spec.values),
                           ("constants", spec.constants)):
            for n in names:
                if n not in known:
                    raise CustlibDataError(
                        f"sources.{self.table}.{key} names {n!r}, which is not a column of {self.table} "
                        f"(columns: {', '.join(self.contract.column_names)})", table=self.table,
                        file=self.file, column=n, rule="unknown contract column", kind="params")
        for n in spec.dates:
            if self.contract.column(n).dtype not in _TEMPORAL:
                raise CustlibDataError(f"sources.{self.table}.dates names {n!r}, which is not a date column",
                                       table=self.table, file=self.file, column=n,
                                       rule="not a date column", kind="params")
        twice = {t for t in targets if targets.count(t) > 1}
        if twice:
            raise CustlibDataError(f"sources.{self.table}.columns maps several export columns onto "
                                   f"{sorted(twice)[0]!r}", table=self.table, file=self.file,
                                   column=sorted(twice)[0], rule="mapped twice", kind="params")

    def _find(self, raw: ir.Table, export: str) -> str:
        """The file's column called ``export`` (ignoring case and spacing when not exact)."""
        if export in raw.columns:
            return export
        match = [c for c in raw.columns if _norm(c) == _norm(export)]
        if not match:
            shown = [c for c in raw.columns if c != LINE]
            raise CustlibDataError(f"column {export!r} (mapped under sources.{self.table}) is not in the "
                                   f"file; its columns: {', '.join(shown)}", table=self.table, file=self.file,
                                   column=export, rule="mapped column missing")
        return match[0]

    def _sources(self, raw: ir.Table) -> dict[str, ir.Column]:
        """Contract column -> the export column it comes from."""
        out, used = {}, set()
        for export, targets in self.spec.columns.items():
            if targets is None:  # ignored, even where named like a contract column
                used.update(c for c in raw.columns if _norm(c) == _norm(export))
                continue
            name = self._find(raw, export)
            used.add(name)
            for t in [targets] if isinstance(targets, str) else targets:
                out[t] = raw[name]
        for c in self.contract.column_names:
            if c not in out and c in raw.columns and c not in used:
                out[c] = raw[c]
        return out

    @staticmethod
    def _text(value: ir.Value) -> ir.StringValue:
        return _trim(value.cast("string"), _SPACES).nullif("")

    def _convert(self, value: ir.Value, dtype: str, is_text: bool, formats: list[str] | None,
                 reading: str | None) -> ir.Value:
        """A mapped column in its contract form: numbers and dates parsed where text parses
        (a timestamp column keeps the time of day, as local time)."""
        if dtype in ("int", "float") and is_text:
            return self._number(value)
        if dtype in _TEMPORAL and is_text:
            parsed = self._dates(value, formats, reading)
            return ibis.coalesce((parsed.date() if dtype == "date" else parsed).cast("string"), value)
        if dtype in _TEMPORAL and value.type().is_timestamp():
            local = _in_zone(self.tz, value) if value.type().timezone else value
            return local.date() if dtype == "date" else local
        return value

    def _number(self, text: ir.StringValue) -> ir.StringValue:
        bare = text.re_replace(_MONEY, "")
        sep = "," if self.spec.decimal == "." else "."
        bare = ibis.cases((bare.re_search(_GROUPED[self.spec.decimal]), bare.replace(sep, "")), else_=bare)
        if self.spec.decimal == ",":
            bare = bare.replace(",", ".")
        return ibis.cases((bare.try_cast("float64").notnull(), bare), else_=text)

    def _dates(self, text: ir.StringValue, formats: list[str] | None, reading: str | None) -> ir.TimestampValue:
        """Local timestamps: by the formats given (in order), else by the recognised layouts."""
        if formats:
            return ibis.coalesce(*(
                _excel_day(text.try_cast("float64"), _ALL_SERIALS) if f == "excel"
                else _in_zone(self.tz, _strptime_tz(text, f)) if "%z" in f or "%Z" in f
                else _strptime(text, f) for f in formats))
        branches = [
            (text.re_search(_ISO_TZ), _in_zone(self.tz, text.try_cast(_TZ))),
            (text.re_search(_ISO), text.try_cast("timestamp")),
            (text.re_search(_YMD), _first(text, _YMD_FORMATS)),
            (text.re_search(_CHINESE), _first(text, _CHINESE_FORMATS)),
            (text.re_search(_SERIAL), _excel_day(text.try_cast("float64"), _PLAUSIBLE_SERIALS)),
        ]
        if reading:
            branches.append((text.re_search(_DAY_MONTH), _first(text, _READINGS[reading])))
        return ibis.cases(*branches, else_=ibis.null("timestamp"))

    def _readings(self, step: ir.Table, columns: list[str]) -> dict[str, str]:
        """Day-first or month-first, per date column with such values: the reading under which
        every one of them is a date. Raises when both are (ambiguous: never guessed); with
        neither, the values stay as they are and validation reports them."""
        if not columns:
            return {}
        stats = {}
        for c in columns:
            dm = step[c].re_search(_DAY_MONTH).fill_null(False)
            stats[f"{c}|n"] = dm.cast("int64").sum()
            for name, formats in _READINGS.items():
                valid = ibis.cases((dm, _first(step[c], formats).notnull()), else_=False)
                stats[f"{c}|{name}"] = valid.cast("int64").sum()
        row = step.aggregate(**stats).execute().iloc[0].fillna(0)
        out = {}
        for c in columns:
            n = row[f"{c}|n"]
            valid = [name for name in _READINGS if n and row[f"{c}|{name}"] == n]
            if len(valid) == 2:
                raise CustlibDataError(
                    "dates read as both day-first and month-first, in every row: add a format under "
                    f"sources.{self.table}.dates.{c} in params (e.g. '%d/%m/%Y' or '%m/%d/%Y')",
                    table=self.table, file=self.file, column=c, rule="ambiguous dates", count=int(n),
                    examples=row_examples(step, step[c].re_search(_DAY_MONTH), c))
            if valid:
                out[c] = valid[0]
        return out

