"""BI access: one DuckDB connection with the prediction log, feedback, monitor results and KPIs as views, and export.

>>> con = sql_connection(settings)                                               # doctest: +SKIP
>>> con.sql("SELECT deployment, count(*) FROM predictions GROUP BY ALL").df()    # doctest: +SKIP
>>> export(settings, "monitor_results", Path("results.parquet"))                 # doctest: +SKIP

The views (see :data:`VIEWS`):

- ``predictions``: the prediction log, one row per answer (per arm and step), ``in_*`` and ``out_*`` columns;
- ``feedback``: the feedback log as stored (``prediction_id``, ``ts``, ``actual``/``actual_<name>``);
- ``predictions_with_feedback``: predictions that have ground truth, each with the latest observed value of every
  ``actual*`` column and ``feedback_ts``, joined on (deployment, prediction_id);
- ``monitor_results``: one row per run and figure or breach (:func:`figure_rows`): monitor, run_id, status,
  window_start, window_end, rows, check_kind, metric, column_name, value, threshold, breached;
- ``kpis``: business KPI observations (kpi, scope, arm, ts, value).

A connection is a snapshot: the Parquet views list the files that exist when it opens (so a compaction never shows a
row twice), and the metadata views are read once. Open a new connection to see newer data.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from modelsteward.domain.monitoring import MonitorResult
from modelsteward.errors import InvalidArgument

if TYPE_CHECKING:
    import duckdb

    from modelsteward.settings import Settings
    from modelsteward.store.database import Database

VIEWS = ("predictions", "feedback", "predictions_with_feedback", "monitor_results", "kpis")
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}

#: The columns of ``monitor_results`` with their pandas dtypes (typed even when empty, so queries bind). ``check_kind``
#: and ``column_name`` because CHECK and COLUMN are reserved words in SQL: BI queries need no quoting.
RESULT_COLUMNS: dict[str, str] = {
    "monitor": "string",
    "run_id": "Int64",
    "status": "string",
    "window_start": "datetime64[us, UTC]",
    "window_end": "datetime64[us, UTC]",
    "rows": "Int64",
    "check_kind": "string",
    "metric": "string",
    "column_name": "string",
    "value": "float64",
    "threshold": "float64",
    "breached": "boolean",
}
KPI_COLUMNS: dict[str, str] = {
    "kpi": "string",
    "scope": "string",
    "arm": "string",
    "ts": "datetime64[us, UTC]",
    "value": "float64",
}


# -- monitor results, flattened ---------------------------------------------------------------------------------


_NOT_FIGURES = frozenset({"positive", "threshold"})  # scalars that set a figure up rather than measure anything


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _check_figures(check: str, figures: dict[str, Any]) -> list[tuple[str, str | None, float | None, float | None]]:
    """(metric, column, value, threshold) for every figure a check stored, whatever its kind."""
    out: list[tuple[str, str | None, float | None, float | None]] = []
    for key, value in figures.items():
        if (
            _number(value) is not None and key not in _NOT_FIGURES
        ):  # scalars: share_drifted, labelled, infeasible_rate, latest...
            out.append((key, None, _number(value), None))
    for name, value in (figures.get("values") or {}).items():  # performance metrics
        if _number(value) is not None or value is None:
            out.append((name, None, _number(value), None))
    for name, estimate in (figures.get("metrics") or {}).items():  # estimated performance
        if isinstance(estimate, dict):
            out.append((name, None, _number(estimate.get("value")), None))
    for row in figures.get("rows") or []:
        if not isinstance(row, dict):
            continue
        if "statistic" in row:  # a drift row: the deciding statistic of one column
            out.append((row["statistic"], row.get("column"), _number(row.get("value")), _number(row.get("threshold"))))
        elif "check" in row:  # a quality row
            out.append((row["check"], row.get("column"), _number(row.get("value")), _number(row.get("threshold"))))
    for rate in figures.get("rules") or []:  # rule hit rates: the current share against the reference share
        if isinstance(rate, dict):
            metric = f"share_{rate['flag']}" if rate.get("flag") else "share"
            out.append(
                (
                    metric,
                    str(rate.get("rule")),
                    _number(rate.get("current_share")),
                    _number(rate.get("reference_share")),
                )
            )
    return out


def figure_rows(result: MonitorResult) -> list[dict[str, Any]]:
    """A run flattened for BI: one row per figure (metric, column, value, threshold, breached) plus one per breach
    no figure carries; a run without figures (not enough data, an error) is one row with no metric."""
    base = {
        "monitor": result.monitor,
        "run_id": result.run_id,
        "status": result.status,
        "window_start": result.window_start,
        "window_end": result.window_end,
        "rows": result.rows,
    }
    breaches = {(b.check, b.metric, b.column): b for b in result.breaches}
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str | None]] = set()
    for check, figures in result.figures.items():
        if not isinstance(figures, dict):
            continue
        for metric, column, value, threshold in _check_figures(check, figures):
            key = (check, metric, column)
            breach = breaches.get(key)
            seen.add(key)
            if threshold is None and breach is not None:
                threshold = breach.threshold
            rows.append(
                base
                | {
                    "check_kind": check,
                    "metric": metric,
                    "column_name": column,
                    "value": value,
                    "threshold": threshold,
                    "breached": breach is not None,
                }
            )
    for key, breach in breaches.items():
        if key not in seen:
            rows.append(
                base
                | {
                    "check_kind": breach.check,
                    "metric": breach.metric,
                    "column_name": breach.column,
                    "value": breach.value,
                    "threshold": breach.threshold,
                    "breached": True,
                }
            )
    if not rows:
        rows.append(
            base
            | {
                "check_kind": None,
                "metric": None,
                "column_name": None,
                "value": None,
                "threshold": None,
                "breached": False,
            }
        )
    return rows


def _typed(records: list[dict[str, Any]], columns: dict[str, str]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records, columns=list(columns))
    return frame.astype({name: dtype for name, dtype in columns.items() if not dtype.startswith("datetime")}).assign(
        **{
            name: pd.to_datetime(frame[name], utc=True).astype(dtype)
            for name, dtype in columns.items()
            if dtype.startswith("datetime")
        }
    )


def results_frame(results: list[MonitorResult]) -> pd.DataFrame:
    """Monitor results as the ``monitor_results`` table, oldest run first."""
    ordered = sorted(results, key=lambda r: (r.window_end, r.run_id or 0))
    return _typed([row for result in ordered for row in figure_rows(result)], RESULT_COLUMNS)


# -- reading the metadata store --------------------------------------------------------------------------------


def _metadata_frames(db: Database) -> tuple[pd.DataFrame, pd.DataFrame]:
    import sqlalchemy as sa

    from modelsteward.store.catalog_repo import utc
    from modelsteward.store.tables import kpi_points, monitor_runs, monitors

    runs = sa.select(monitor_runs, monitors.c.name.label("monitor")).join(
        monitors, monitors.c.id == monitor_runs.c.monitor_id
    )
    kpis = sa.select(kpi_points.c.kpi, kpi_points.c.scope, kpi_points.c.arm, kpi_points.c.ts, kpi_points.c.value)
    with db.read() as conn:
        results = [
            MonitorResult(
                monitor=r.monitor,
                run_id=r.id,
                status=r.status,
                window_start=utc(r.window_start),
                window_end=utc(r.window_end),
                rows=r.rows,
                figures=r.figures,
                breaches=r.breaches,
                error=r.error,
                started_at=utc(r.started_at),
                finished_at=utc(r.finished_at),
            )
            for r in conn.execute(runs.order_by(monitor_runs.c.id))
        ]
        points = [dict(r._mapping) for r in conn.execute(kpis.order_by(kpi_points.c.kpi, kpi_points.c.ts))]
    return results_frame(results), _typed(points, KPI_COLUMNS)


# -- the connection ----------------------------------------------------------------------------------------------


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_connection(settings: Settings, *, db: Database | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection over one data directory's store, with the views of :data:`VIEWS` (module doc).

    ``db`` reuses an open metadata database; by default one is opened (and migrated) from ``settings``.
    """
    from modelsteward.serving.feedback_log import FEEDBACK_COLUMNS
    from modelsteward.serving.log_reader import connect, scan_sql

    own_db = db is None
    if db is None:
        from modelsteward.store.database import Database

        db = Database(settings.resolved_database_url(), busy_timeout=settings.db_busy_timeout)
        db.migrate()
    try:
        results, kpis = _metadata_frames(db)
    finally:
        if own_db:
            db.dispose()
    inference, feedback = settings.resolved_inference_url(), settings.resolved_feedback_url()
    con = connect(inference, feedback)
    con.execute("SET TimeZone = 'UTC'")  # timestamps print and export in UTC, whatever the machine's zone
    con.execute(f"CREATE VIEW predictions AS SELECT * FROM {scan_sql(inference)}")
    con.execute(f"CREATE VIEW feedback AS SELECT * FROM {scan_sql(feedback, empty_columns=FEEDBACK_COLUMNS)}")
    actuals = [
        _quote_ident(row[0])
        for row in con.execute("DESCRIBE feedback").fetchall()
        if row[0] == "actual" or row[0].startswith("actual_")
    ]
    latest = "".join(f", arg_max({q}, ts) FILTER (WHERE {q} IS NOT NULL) AS {q}" for q in actuals)
    con.execute(
        "CREATE VIEW predictions_with_feedback AS "
        "WITH fb AS (SELECT deployment AS fb_deployment, prediction_id AS fb_prediction_id, "
        f"max(ts) AS feedback_ts{latest} FROM feedback GROUP BY ALL) "
        "SELECT p.*, fb.* EXCLUDE (fb_deployment, fb_prediction_id) FROM predictions AS p "
        "JOIN fb ON p.deployment = fb.fb_deployment AND p.prediction_id = fb.fb_prediction_id"
    )
    con.register("monitor_results", results)
    con.register("kpis", kpis)
    return con


def _statement(table_or_sql: str) -> str:
    text = table_or_sql.strip().rstrip(";").strip()
    if not text:
        raise InvalidArgument("give a view name or a SELECT statement", details={"field": "sql"})
    return f"SELECT * FROM {text}" if text in VIEWS else text


def _failed(e: Exception) -> InvalidArgument:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if "Catalog Error" in first:
        first += f" (the views are {', '.join(VIEWS)})"
    return InvalidArgument(f"the query failed: {first}", details={"field": "sql", "views": list(VIEWS)})


def run_sql(settings: Settings, table_or_sql: str, *, db: Database | None = None) -> pd.DataFrame:
    """The rows of a view (by name) or of a query over the views, as a DataFrame."""
    import duckdb

    con = sql_connection(settings, db=db)
    try:
        return con.execute(_statement(table_or_sql)).df()
    except duckdb.Error as e:
        raise _failed(e) from e
    finally:
        con.close()


def output_format(out: Path) -> str:
    """``csv`` or ``parquet`` from a file name, or :class:`InvalidArgument`."""
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise InvalidArgument(
            f"cannot tell the format of {out.name}: name the file .csv or .parquet", details={"field": "out"}
        )
    return fmt


def write_frame(frame: pd.DataFrame, out: Path) -> int:
    """Write a DataFrame as CSV or Parquet, chosen by the file's extension; returns the row count."""
    fmt = output_format(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
    return len(frame)


def export(settings: Settings, table_or_sql: str, out: Path, *, db: Database | None = None) -> int:
    """Write a view (by name) or a query's result to ``out`` (.csv or .parquet), streamed by DuckDB; returns the
    row count."""
    import duckdb

    fmt = output_format(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    options = "FORMAT csv, HEADER" if fmt == "csv" else "FORMAT parquet"
    target = "'" + str(out).replace("'", "''") + "'"
    con = sql_connection(settings, db=db)
    try:
        copied = con.execute(f"COPY ({_statement(table_or_sql)}) TO {target} ({options})").fetchone()
    except duckdb.Error as e:
        raise _failed(e) from e
    finally:
        con.close()
    return int(copied[0]) if copied else 0
