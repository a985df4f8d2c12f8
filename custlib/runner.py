"""Run the notebooks once per business unit and publish self-contained HTML reports.

For each (unit, analysis) the notebook is executed with papermill into a temporary file, the
executed notebook is kept for analysts (``reports/<bu>/<analysis>.ipynb``) and an HTML report
without code is exported (``reports/<bu>/<analysis>.html``). Files are written to a temporary
name and renamed into place, so a failed run keeps the last good report. ``reports/index.html``
and ``reports/manifest.json`` record every report's status.
"""

from __future__ import annotations

import html
import json
import multiprocessing
import os
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path

from custlib.contract import ANALYSES
from custlib.errors import CustlibDataError
from custlib.mapping import is_database_url, redacted
from custlib.params import load_params, unit_ids
from custlib.present.i18n import set_language, t
from custlib.sources import UnitData, open_unit_source, unit_problem, validate

CSS = (Path(__file__).parent / "templates" / "report.css").read_text(encoding="utf-8")
EXIT_OK, EXIT_REPORT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


@dataclass
class ReportResult:
    unit: str
    analysis: str
    status: str  # "ok", "failed", "not available" (data it needs is absent) or "refused" (unit unusable)
    duration_s: float
    finished_at: str
    error: str | None = None
    html: str | None = None  # path relative to reports/
    notebook: str | None = None


def write_atomic(path: Path, text: str) -> None:
    """Write text to a temporary file beside ``path`` and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def page(title: str, body: str, language: str = "en") -> str:
    """A complete, self-contained HTML page with the shared stylesheet."""
    return (f'<!DOCTYPE html>\n<html lang="{"zh-CN" if language == "zh" else "en"}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
            f"<body><main>{body}</main></body></html>\n")


def export_html(nb, title: str, language: str = "en") -> str:
    """Report HTML from an executed notebook: the outputs only — no code, no markdown cells
    (they speak to the analyst in JupyterLab; the report's headings and narrative come from the
    language catalogue), no stderr, no error tracebacks, no bare object reprs; images embedded;
    nothing loaded from the web."""

    from nbconvert import HTMLExporter

    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [
                o for o in cell.outputs
                if not (o.output_type == "stream" and o.name == "stderr")
                and o.output_type != "error"
                and not (o.output_type == "execute_result" and set(o.get("data", {})) <= {"text/plain"})
            ]
    exporter = HTMLExporter(template_name="basic", exclude_input=True, exclude_markdown=True,
                            exclude_input_prompt=True, exclude_output_prompt=True, anchor_link_text="")
    body, _ = exporter.from_notebook_node(nb)
    set_language(language)
    footer = t("report.footer", when=f"{datetime.now():%Y-%m-%d %H:%M}")
    return page(title, body + f"<footer>{html.escape(footer)}</footer>", language)


def _ipc_kernel_manager():
    """A kernel manager whose kernels talk over local sockets instead of TCP ports, so kernels
    started at the same moment by parallel workers cannot collide on a port ("Address already
    in use", "Kernel died before replying to kernel_info")."""
    import uuid

    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):  # socket files <tmp>/custlib-kernel-<uuid>-<n>, removed at shutdown
            ip = os.path.join(tempfile.gettempdir(), f"custlib-kernel-{uuid.uuid4().hex}")
            super().__init__(transport="ipc", ip=ip, **kwargs)

    return IPCKernelManager


def render_report(root: Path, unit: str, analysis: str, run_date: str) -> ReportResult:
    """Execute one notebook for one unit and publish its HTML (atomically)."""
    import nbformat
    import papermill as pm

    nb_file = ANALYSES[analysis].notebook
    out_dir = root / "reports" / unit
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    fd, tmp_nb = tempfile.mkstemp(dir=out_dir, prefix=f".{analysis}.", suffix=".ipynb")
    os.close(fd)
    try:
        pm.execute_notebook(
            str(root / "notebooks" / nb_file), tmp_nb,
            parameters={"business_unit": unit, "project_root": str(root), "run_date": run_date,
                        "check_data": False},  # validated once by check_inputs before any run
            cwd=str(root / "notebooks"), kernel_name="python3", progress_bar=False, log_output=False,
            # the kernel's own log: jupyter_client interrupts every kernel when it shuts it down, which
            # a kernel still finishing a message logs as an error ("KeyboardInterrupt caught in
            # kernel"); errors in the notebook's cells reach the result through papermill
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"], kernel_manager_class=_ipc_kernel_manager(),
        )
        nb = nbformat.read(tmp_nb, as_version=4)
        p = load_params(unit, root / "params")
        set_language(p.language)
        write_atomic(out_dir / f"{analysis}.html", export_html(nb, f"{t(f'analysis.{analysis}')} · {p.display_name}",
                                                              p.language))
        os.chmod(tmp_nb, 0o644)
        os.replace(tmp_nb, out_dir / f"{analysis}.ipynb")
        failed = out_dir / f"{analysis}.failed.ipynb"
        failed.unlink(missing_ok=True)
        return ReportResult(unit, analysis, "ok", time.perf_counter() - t0, datetime.now().isoformat(timespec="seconds"),
                            html=f"{unit}/{analysis}.html", notebook=f"{unit}/{analysis}.ipynb")
    except Exception as e:  # a failed report is recorded, never fatal for the others
        if os.path.exists(tmp_nb):
            os.replace(tmp_nb, out_dir / f"{analysis}.failed.ipynb")
        message = _short_error(e)
        last_good = out_dir / f"{analysis}.html"
        return ReportResult(unit, analysis, "failed", time.perf_counter() - t0,
                            datetime.now().isoformat(timespec="seconds"), error=message,
                            html=f"{unit}/{analysis}.html" if last_good.exists() else None,
                            notebook=f"{unit}/{analysis}.failed.ipynb")


def _short_error(e: Exception) -> str:
    name = getattr(e, "ename", type(e).__name__)
    value = getattr(e, "evalue", str(e))
    text = f"{name}: {value}".strip()
    return text if len(text) < 600 else text[:600] + " …" if text else traceback.format_exc(limit=1)


def _longest_first(tasks: list[tuple[str, str]], manifest: Path) -> list[tuple[str, str]]:
    """Order reports by their last run's duration, longest first (unknown ones first), so the
    parallel run does not end waiting on one long report."""
    last = {}
    if manifest.exists():
        last = {(r["unit"], r["analysis"]): r["duration_s"] for r in json.loads(manifest.read_text())["reports"]}
    return sorted(tasks, key=lambda t: -last.get(t, float("inf")))


def _limit_threads() -> None:
    """One BLAS/OpenMP thread per kernel when reports run in parallel (no oversubscription)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"


@dataclass
class Inputs:
    """What was checked before any run: parameters and data fingerprint per unit, units refused
    (``{unit: reason}``) and reports not available (``{(unit, analysis): missing tables}``)."""

    parameters: dict
    data_fingerprints: dict
    refused: dict[str, str]
    unavailable: dict[tuple[str, str], list[str]]
    data: dict[str, UnitData] = field(default_factory=dict, repr=False)  # the opened unit data


def check_inputs(root: Path, units: list[str], analyses: list[str] | None = None,
                 data_source: str | Path | None = None) -> Inputs:
    """Validate every unit's parameters and each distinct data source once, before any run.

    Raises CustlibDataError (exit code 2) for bad parameters or bad data. A unit whose data
    holds nothing to report on (no customers, or no transactions up to its observation end) is
    refused; reports whose required tables the unit lacks are marked not available.
    ``data_source`` replaces every unit's own.
    """
    analyses = analyses or list(ANALYSES)
    known = unit_ids(root / "params")
    params, fingerprints, checked, opened = {}, {}, {}, {}
    refused, unavailable = {}, {}
    owners: dict[tuple, list[str]] = {}  # source -> units that see every customer of it
    run_date = date.today()
    for u in units:
        p = load_params(u, root / "params")
        if data_source is not None:
            location = str(data_source) if is_database_url(str(data_source)) else str(Path(data_source).resolve())
            p = p.model_copy(update={"data_source": location})
        params[u] = p.model_dump(mode="json")
        if is_database_url(p.data_source):  # the manifest never holds a password
            params[u]["data_source"] = redacted(p.data_source)
        key = (p.data_source, p.sources.model_dump_json(), p.timezone)
        src = open_unit_source(p, root)
        if key not in checked:
            validate(src, known)
            checked[key] = src.fingerprint()
        fingerprints[u] = checked[key]
        data = opened[u] = UnitData(p, src, root, run_date)
        if data.rows("customers") and data.rows("customers") == src.raw("customers").count().execute():
            owners.setdefault(key, []).append(u)
        _check_shared(owners.get(key, []), params[u]["data_source"])
        problem = unit_problem(data)
        if problem:
            refused[u] = problem
            continue
        for a in analyses:
            missing = data.missing_for(a)
            if missing:
                unavailable[(u, a)] = missing
    return Inputs(params, fingerprints, refused, unavailable, opened)


def _check_shared(units: list[str], location: str) -> None:
    """Units that share a source must not each see all of it: that happens when the files have
    no business_unit column, which each unit then fills with its own id."""
    if len(units) > 1:
        raise CustlibDataError(
            f"units {units[0]} and {units[1]} read the same files and each would see every customer: "
            "the files have no business_unit column to tell the units apart", file=location,
            column="business_unit", rule="shared source",
            hint="Give each unit its own data_source, or add a business_unit column (or a constant "
                 "under sources.<table>.constants in each unit's params).")


def describe_inputs(root: str | Path = ".", units: list[str] | None = None,
                    data_source: str | Path | None = None) -> tuple[str, bool]:
    """``custlib validate``: per unit, each table's rows and date range and which reports its
    data supports. Returns the text and whether a unit was refused. Raises CustlibDataError
    for bad parameters or data."""
    from custlib import overview

    root = Path(root).resolve()
    units = units or unit_ids(root / "params")
    inputs = check_inputs(root, units, data_source=data_source)
    lines = []
    for u in units:
        data = inputs.data[u]
        p = data.params
        lines.append(f"{u} · {p.display_name} · observation end {p.observation_end:%Y-%m-%d}")
        counts = overview.table_counts(data)
        for r in counts.to_dict("records"):
            span = (f"{r['from']:%Y-%m-%d} to {r['to']:%Y-%m-%d}" if r["rows"] else
                    {"no rows": "no rows for this unit", "not in source": "not in the data source"}[r["note"]])
            lines.append(f"  {r['table']:<18}{r['rows']:>12,}  {span}")
        if u in inputs.refused:
            lines.append(f"  refused: {inputs.refused[u]}")
        for a in ANALYSES:
            missing = inputs.unavailable.get((u, a))
            state = f"not available — needs {', '.join(missing)}" if missing else "supported"
            if u not in inputs.refused:
                lines.append(f"  report {a:<16}{state}")
        lines.append("")
    lines.append("All tables meet the data contract." if not inputs.refused else
                 f"{len(inputs.refused)} unit(s) refused: nothing to report on.")
    return "\n".join(lines), bool(inputs.refused)


def exit_code(results: list[ReportResult]) -> int:
    """2 when a unit was refused for its data, 1 when a report failed, else 0 (reports not
    available for lack of an optional table are not a failure)."""
    if any(r.status == "refused" for r in results):
        return EXIT_BAD_INPUT
    return EXIT_REPORT_FAILED if any(r.status == "failed" for r in results) else EXIT_OK


def _not_run(unit: str, analysis: str, status: str, reason: str, out_dir: Path) -> ReportResult:
    """A report that was not run: the reason is recorded; a last good HTML is left in place."""
    last = out_dir / unit / f"{analysis}.html"
    return ReportResult(unit, analysis, status, 0.0, datetime.now().isoformat(timespec="seconds"),
                        error=reason, html=f"{unit}/{analysis}.html" if status == "refused" and last.exists() else None)


def run(root: str | Path = ".", units: list[str] | None = None, analyses: list[str] | None = None,
        jobs: int | None = None, run_date: str | None = None, progress: bool = True) -> list[ReportResult]:
    """Render the reports of ``units`` x ``analyses`` (all by default), ``jobs`` at a time.

    Reports whose data is absent are listed as not available, units with nothing to report on
    as refused; neither stops the others."""
    from tqdm.auto import tqdm

    root = Path(root).resolve()
    units = units or unit_ids(root / "params")
    analyses = analyses or list(ANALYSES)
    unknown = [a for a in analyses if a not in ANALYSES]
    if unknown:
        raise ValueError(f"unknown analysis {unknown[0]!r}; choose from {', '.join(ANALYSES)}")
    run_date = run_date or date.today().isoformat()
    inputs = check_inputs(root, units, analyses)
    results: list[ReportResult] = []
    for u, reason in inputs.refused.items():
        results += [_not_run(u, a, "refused", reason, root / "reports") for a in analyses]
    for (u, a), missing in inputs.unavailable.items():
        results.append(_not_run(u, a, "not available", f"needs {', '.join(missing)}", root / "reports"))
    skip = {(r.unit, r.analysis) for r in results}
    tasks = _longest_first([(u, a) for u in units for a in analyses if (u, a) not in skip],
                           root / "reports" / "manifest.json")
    started = datetime.now()
    jobs = jobs or os.cpu_count() or 1
    # spawn, not fork: a forked copy of a process holding DuckDB or BLAS threads can hang or die
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_limit_threads if jobs > 1 else None) as pool:
        futures = [pool.submit(render_report, root, u, a, run_date) for u, a in tasks]
        with tqdm(total=len(futures), desc="reports", unit="report", disable=not progress) as bar:
            for f in as_completed(futures):
                r = f.result()
                results.append(r)
                bar.set_postfix_str(f"{r.unit}/{r.analysis} {r.status}")
                bar.update()
    results.sort(key=lambda r: (r.unit, list(ANALYSES).index(r.analysis)))
    write_manifest(root / "reports", results, inputs, started, run_date)
    return results


def write_manifest(reports: Path, results: list[ReportResult], inputs: Inputs, started: datetime,
                   run_date: str) -> dict:
    """Merge this run into reports/manifest.json and rewrite reports/index.html."""
    path = reports / "manifest.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    entries = {(r["unit"], r["analysis"]): r for r in old.get("reports", [])}
    entries.update({(r.unit, r.analysis): asdict(r) for r in results})
    manifest = {
        "run_started": started.isoformat(timespec="seconds"),
        "run_finished": datetime.now().isoformat(timespec="seconds"),
        "run_date": run_date,
        "data_fingerprints": {**old.get("data_fingerprints", {}), **inputs.data_fingerprints},
        "parameters": {**old.get("parameters", {}), **inputs.parameters},
        "reports": sorted(entries.values(), key=lambda r: (r["unit"], list(ANALYSES).index(r["analysis"]))),
    }
    write_atomic(path, json.dumps(manifest, indent=2, ensure_ascii=False, default=str))
    write_atomic(reports / "index.html", index_html(manifest, reports))
    return manifest


def index_html(manifest: dict, reports: Path) -> str:
    """The portfolio page: the units side by side on their KPIs, then links to every report."""
    from custlib.present.portfolio import page_body

    title, body, language = page_body(manifest, reports)
    return page(title, body, language)
