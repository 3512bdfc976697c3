"""``steward compliance`` (suites as code, runs on versions, their findings), ``steward explain`` and
``steward audit report``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from modelsteward.cli.commands_audit import audit_app
from modelsteward.cli.common import DataDir, JsonOut, Token, Url, app, console, handle_errors, open_steward, print_json
from modelsteward.errors import InvalidArgument

compliance_app = typer.Typer(
    help="Compliance suites: fairness, performance, explainability and reproducibility tests of versions.",
    no_args_is_help=True,
)
app.add_typer(compliance_app, name="compliance")

_STYLE = {"pass": "green", "fail": "bold red", "error": "yellow"}


@compliance_app.command("apply")
@handle_errors
def apply(
    path: Annotated[Path, typer.Argument(help="the suite's YAML file")],
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Store (or replace) a suite by its name, for runs by name and for life-cycle gates (``compliance: {suite}``)."""
    with open_steward(data_dir, url, token) as st:
        stored = st.put_compliance_suite(path)
    console.print(f"suite [bold]{stored.name}[/] stored: {len(stored.suite.tests)} test(s)", highlight=False)


@compliance_app.command("suites")
@handle_errors
def suites(as_json: JsonOut = False, data_dir: DataDir = None, url: Url = None, token: Token = None) -> None:
    """The stored suites and their tests."""
    with open_steward(data_dir, url, token) as st:
        found = st.list_compliance_suites()
    if as_json:
        print_json(found)
        return
    table = Table("suite", "data", "tests", "updated")
    for s in found:
        tests = ", ".join(f"{t.label} ({t.kind})" for t in s.suite.tests)
        table.add_row(s.name, s.suite.data or "given", tests, f"{s.updated_at:%Y-%m-%d %H:%M} by {s.updated_by}")
    console.print(table)


@compliance_app.command("run")
@handle_errors
def run(
    ref: Annotated[str, typer.Argument(help="the version: name/VERSION or name@ALIAS")],
    suite: Annotated[str, typer.Option("--suite", "-s", help="a stored suite's name or a YAML file")],
    data: Annotated[
        Path | None, typer.Option("--data", help="held-out data (.csv/.parquet) overriding the suite's")
    ] = None,
    as_json: JsonOut = False,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Run a suite on a version and keep the result with it; exits 1 when a test fails or cannot be judged,
    so that a CI job stops on a finding."""
    given: Any = Path(suite) if suite.endswith((".yaml", ".yml")) else suite
    with console.status(f"running {suite} on {ref}..."), open_steward(data_dir, url, token) as st:
        result = st.run_compliance(ref, given, data=data)
    if as_json:
        print_json(result)
    else:
        _print_run(result)
    if result.status != "pass":
        raise typer.Exit(1)


@compliance_app.command("results")
@handle_errors
def results(
    ref: Annotated[str, typer.Argument(help="a model, or a version: name/VERSION, name@ALIAS")],
    suite: Annotated[str | None, typer.Option("--suite", help="only this suite")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    as_json: JsonOut = False,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Runs of suites, newest first, with each test's status."""
    with open_steward(data_dir, url, token) as st:
        runs = st.compliance_runs(ref, suite=suite, limit=limit)
    if as_json:
        print_json(runs)
        return
    table = Table("run", "version", "suite", "finished", "by", "status", "tests")
    for r in runs:
        tests = ", ".join(f"[{_STYLE[t.status]}]{t.name}[/]" for t in r.results)
        table.add_row(str(r.id), r.ref, r.suite, f"{r.finished_at:%Y-%m-%d %H:%M}", r.actor,
                      f"[{_STYLE[r.status]}]{r.status}[/]", tests)  # fmt: skip
    console.print(table)


@compliance_app.command("show")
@handle_errors
def show(
    run_id: Annotated[int, typer.Argument(help="a run's number (steward compliance results)")],
    as_json: JsonOut = False,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """One run with every check and its figures."""
    with open_steward(data_dir, url, token) as st:
        result = st.get_compliance_run(run_id)
    if as_json:
        print_json(result)
    else:
        _print_run(result)


def _print_run(run: Any) -> None:
    data = f"{run.data.source}, {run.data.rows:,} rows" if run.data else "no data"
    console.print(f"run {run.id}: suite [bold]{run.suite}[/] on [bold]{run.ref}[/] ({data}): "
                  f"[{_STYLE[run.status]}]{run.status}[/]", highlight=False)  # fmt: skip
    table = Table("test", "type", "status", "finding")
    for t in run.results:
        table.add_row(t.name, t.type, f"[{_STYLE[t.status]}]{t.status}[/]", t.summary)
    console.print(table)
    checks = Table("test", "figure", "over", "value", "required", "")
    for t in run.results:
        for c in t.checks:
            value = "n/a" if c.value is None else f"{c.value:.4g}"
            mark = "[green]pass[/]" if c.passed else "[bold red]fail[/]"
            checks.add_row(t.name, c.metric, c.over or "", value, c.bound, mark)
    if checks.row_count:
        console.print(checks)


@app.command("explain")
@handle_errors
def explain(
    deployment: Annotated[str, typer.Argument(help="the deployment whose champion explains")],
    input_path: Annotated[Path, typer.Option("--input", "-i", help="CSV or Parquet rows to explain (at most 100)")],
    top: Annotated[int, typer.Option("--top", min=1, help="contributions shown per row")] = 5,
    as_json: JsonOut = False,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Why the deployment's champion answered what it did: SHAP contributions per input, or the rule that fired."""
    from modelsteward.catalog.registration import read_table

    frame = read_table(input_path)
    if len(frame) > 100:
        raise InvalidArgument(f"explain at most 100 rows at a time, not {len(frame)}", details={"field": "input"})
    with open_steward(data_dir, url, token) as st:
        found = st.explain(deployment, frame)
    if as_json:
        print_json(found)
        return
    for e in found:
        head = f"row {e.row}: {e.output} = {e.prediction}" + (f", rule [bold]{e.rule}[/]" if e.rule else "")
        console.print(head, highlight=False)
        for c in e.contributions[:top]:
            console.print(f"   {c.feature} = {c.value}: {c.contribution:+.4f}", highlight=False)


@audit_app.command("report")
@handle_errors
def report(
    ref: Annotated[str, typer.Argument(help="name/VERSION or name@ALIAS (resolved as it was on --as-of)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="report.html, report.pdf or report.json")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="a past date or time (ISO), default now")] = None,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """The auditor's report of a version: model card, data, tests, approvals, history, monitoring and the trail's
    check, with a table mapping its sections to SR 11-7 and the EU AI Act's Annex IV."""
    suffix = out.suffix.lower()
    if suffix not in (".html", ".htm", ".pdf", ".json"):
        raise InvalidArgument(f"write the report as .html, .pdf or .json, not {suffix or out.name}",
                              details={"field": "out"})  # fmt: skip
    when = _when(as_of) if as_of else None
    with console.status(f"gathering the report of {ref}..."), open_steward(data_dir, url, token) as st:
        found = st.audit_report(ref, as_of=when)
    from modelsteward.governance.report_render import render_html, render_pdf

    partial = out.with_name(out.name + ".partial")
    if suffix == ".pdf":
        partial.write_bytes(render_pdf(found))
    elif suffix == ".json":
        partial.write_text(found.model_dump_json(indent=2), encoding="utf-8")
    else:
        partial.write_text(render_html(found), encoding="utf-8")
    partial.replace(out)
    failing = [s.title for s in found.sections if s.status == "fail"]
    console.print(f"report of [bold]{found.subject}[/] as of {found.as_of:%Y-%m-%d %H:%M} UTC written to {out}"
                  + (f" (findings in: {', '.join(failing)})" if failing else ""), highlight=False)  # fmt: skip


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as e:
        raise InvalidArgument(f"--as-of: {text!r} is not an ISO date or time (2026-03-01, 2026-03-01T12:00)",
                              details={"field": "as_of"}) from e  # fmt: skip
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if len(text) == 10:  # a date means the end of that day
        value = value.replace(hour=23, minute=59, second=59)
    return value
