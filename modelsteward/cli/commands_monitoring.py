"""``steward monitor`` and ``sql``: watching models, for people and for BI (alerts and KPIs: commands_alerts)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from modelsteward.cli.common import (
    DataDir,
    JsonOut,
    Token,
    Url,
    app,
    console,
    handle_errors,
    num,
    open_steward,
    parse_time,
    print_json,
    spec_file,
    table,
    when,
)
from modelsteward.errors import InvalidArgument

monitor_app = typer.Typer(help="Define, run and report on monitors.", no_args_is_help=True)
app.add_typer(monitor_app, name="monitor")

MonitorName = Annotated[str, typer.Argument(help="the monitor")]
SpecFile = Annotated[Path, typer.Option("--spec", help="a YAML file")]
OutFile = Annotated[Path, typer.Option("--out", help="the file to write")]
At = Annotated[str | None, typer.Option("--at", help="ISO time, e.g. 2026-03-01T12:00 (UTC unless it says)")]
KPI = Annotated[str, typer.Argument(help="the KPI, e.g. approval_rate")]
Scope = Annotated[str, typer.Argument(help="the deployment or model it belongs to")]
Kind = Annotated[str, typer.Option("--kind", help="mean, or proportion for 0/1 values")]
_STATUS = {"ok": "[green]ok[/]", "breach": "[bold red]BREACH[/]", "not_enough_data": "[yellow]not enough data[/]"}


# -- monitors ------------------------------------------------------------------------------------------------------


@monitor_app.command("create")
@handle_errors
def create(name: MonitorName, spec: SpecFile, data_dir: DataDir = None, url: Url = None, token: Token = None) -> None:
    """Create or replace a monitor from a YAML file (target, window, reference, checks, min_rows, schedule)."""
    with open_steward(data_dir, url, token) as st:
        monitor = st.put_monitor(name, spec_file(spec))
    checks = ", ".join(c.kind for c in monitor.spec.checks)
    console.print(
        f"monitor [bold]{name}[/] saved: {monitor.spec.target.label}, window {monitor.spec.window}, checks: {checks}",
        highlight=False,
    )


@monitor_app.command("list")
@handle_errors
def list_monitors(as_json: JsonOut = False, data_dir: DataDir = None, url: Url = None, token: Token = None) -> None:
    """List monitors."""
    with open_steward(data_dir, url, token) as st:
        items = st.list_monitors()
    if as_json:
        return print_json(items)
    rows = [
        [
            m.name,
            m.spec.target.label,
            m.spec.window,
            "training" if m.spec.reference == "training" else "window",
            ", ".join(c.kind for c in m.spec.checks),
            m.spec.schedule or "",
            "yes" if m.enabled else "no",
        ]
        for m in items
    ]
    table(f"{len(items)} monitor(s)", ["name", "target", "window", "reference", "checks", "schedule", "on"], rows)


@monitor_app.command("show")
@handle_errors
def show(
    name: MonitorName, as_json: JsonOut = False, data_dir: DataDir = None, url: Url = None, token: Token = None
) -> None:
    """Show a monitor's definition."""
    import yaml

    with open_steward(data_dir, url, token) as st:
        monitor = st.get_monitor(name)
    if as_json:
        return print_json(monitor)
    console.print(
        f"[bold]{name}[/] ({'enabled' if monitor.enabled else 'disabled'}), saved by "
        f"{monitor.created_by or '?'}, updated {when(monitor.updated_at)}",
        highlight=False,
    )
    spec = monitor.spec.model_dump(mode="json", exclude_defaults=True)
    console.print(yaml.safe_dump(spec, sort_keys=False).rstrip(), highlight=False, markup=False)


@monitor_app.command("delete")
@handle_errors
def delete(name: MonitorName, data_dir: DataDir = None, url: Url = None, token: Token = None) -> None:
    """Delete a monitor and its results."""
    with open_steward(data_dir, url, token) as st:
        st.delete_monitor(name)
    console.print(f"monitor [bold]{name}[/] deleted", highlight=False)


def _render_result(result: Any) -> None:
    status = _STATUS.get(result.status, f"[bold red]{result.status}[/]")
    console.print(
        f"{result.monitor} run {result.run_id}: {status}, {result.rows} row(s), window "
        f"{when(result.window_start)} to {when(result.window_end)} UTC",
        highlight=False,
    )
    reason = result.error or result.figures.get("reason")
    if reason:
        console.print(f"  {reason}", highlight=False, markup=False)
    if result.breaches:
        rows = [[b.check, b.metric, b.column, num(b.value), num(b.threshold)] for b in result.breaches]
        table = Table(title=f"[bold red]{len(rows)} breach(es)[/]", border_style="red")
        for column in ("check", "metric", "column", "value", "threshold"):
            table.add_column(column)
        for row in rows:
            table.add_row(*(v or "" for v in row), style="red")
        console.print(table)


@monitor_app.command("run")
@handle_errors
def run(
    name: MonitorName,
    at: At = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="tcp://HOST:PORT of a Dask scheduler for a monitor with engine: dask (embedded use; a server "
            "uses its own STEWARD_DASK_SCHEDULER)",
        ),
    ] = None,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Run a monitor now (or over the window ending --at) and store its result; a breach still exits 0."""
    if scheduler is None:
        opened = open_steward(data_dir, url, token)
    elif url:
        raise InvalidArgument(
            "--scheduler applies to embedded use: a server runs dask monitors on its STEWARD_DASK_SCHEDULER",
            details={"field": "scheduler"},
        )
    else:
        from modelsteward.local_steward import LocalSteward
        from modelsteward.settings import Settings

        settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
        opened = LocalSteward(settings=settings.model_copy(update={"dask_scheduler": scheduler}))
    with opened as st:
        result = st.run_monitor(name, at=parse_time(at, "--at"))
    _render_result(result)


@monitor_app.command("results")
@handle_errors
def results(
    name: MonitorName,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="how many runs, newest first")] = 20,
    as_json: JsonOut = False,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """A monitor's latest results, newest first."""
    with open_steward(data_dir, url, token) as st:
        items = st.monitor_results(name, limit=limit)
    if as_json:
        return print_json(items)
    rows = [
        [
            r.run_id,
            when(r.window_end),
            _STATUS.get(r.status, f"[red]{r.status}[/]"),
            r.rows,
            len(r.breaches),
            ", ".join(sorted({b.column or b.metric for b in r.breaches})),
            r.error or "",
        ]
        for r in items
    ]
    table(f"results of {name}", ["run", "window end (UTC)", "status", "rows", "breaches", "what", "error"], rows)


@monitor_app.command("report")
@handle_errors
def report(
    name: MonitorName,
    out: OutFile,
    runs: Annotated[int, typer.Option(min=1, max=1000, help="how many runs the trends cover")] = 30,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Write a self-contained HTML report (works offline): latest status, breaches, distributions, trends, KPIs."""
    from modelsteward.monitoring.report import build_report

    with open_steward(data_dir, url, token) as st:
        page = build_report(st, name, runs=runs)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    console.print(f"report written to {out} ({len(page.encode()) / 1e6:.1f} MB)", highlight=False)


@monitor_app.command("export")
@handle_errors
def export_results(
    name: MonitorName,
    out: OutFile,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="how many runs, newest first")] = 1000,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Export a monitor's results, one row per run and figure, to a .csv or .parquet file."""
    from modelsteward.monitoring.export import output_format, results_frame, write_frame

    output_format(out)  # refuse a bad extension before any work
    with open_steward(data_dir, url, token) as st:
        items = st.monitor_results(name, limit=limit)
    count = write_frame(results_frame(items), out)
    console.print(f"{count} row(s) from {len(items)} run(s) written to {out}", highlight=False)


# -- SQL for BI ----------------------------------------------------------------------------------------------------


@app.command("sql")
@handle_errors
def sql(
    query: Annotated[str, typer.Argument(help="a SELECT over the views, or a view's name")],
    out: Annotated[Path | None, typer.Option("--out", help="write the result to a .csv or .parquet file")] = None,
    limit: Annotated[int, typer.Option(min=1, help="rows to print (--out writes them all)")] = 50,
    as_json: JsonOut = False,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Query the data directory with SQL (DuckDB). Views: predictions, feedback, predictions_with_feedback,
    monitor_results, kpis."""
    import json

    from modelsteward.monitoring.export import export, output_format, run_sql
    from modelsteward.settings import Settings

    if url and data_dir is None:
        raise InvalidArgument(
            "steward sql reads the data directory's files itself: give --data-dir (it does not work with --url)",
            details={"field": "url"},
        )
    settings = Settings(data_dir=data_dir) if data_dir is not None else Settings()
    if out is not None:
        output_format(out)
        count = export(settings, query, out)
        console.print(f"{count} row(s) written to {out}", highlight=False)
        return
    frame = run_sql(settings, query)
    if as_json:
        return print_json(json.loads(frame.to_json(orient="records", date_format="iso", date_unit="us")))
    shown = frame.head(limit)
    table(
        f"{len(frame)} row(s)" + (f", first {limit} shown" if len(frame) > limit else ""),
        [str(c) for c in frame.columns],
        [[num(v) if isinstance(v, float) else v for v in row] for row in shown.itertuples(index=False)],
    )
