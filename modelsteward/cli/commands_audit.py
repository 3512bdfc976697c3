"""``steward audit`` (check the tamper-evident trail, export it for a SIEM) and ``steward debt``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from modelsteward.cli.common import DataDir, JsonOut, Token, Url, app, console, handle_errors, open_steward, print_json

audit_app = typer.Typer(help="The audit trail: verify its hash chain, export it.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
@handle_errors
def verify(as_json: JsonOut = False, data_dir: DataDir = None, url: Url = None, token: Token = None) -> None:
    """Check that every event follows from its content and the one before; exits 1 and names the first
    broken event when one was edited, deleted or moved."""
    with open_steward(data_dir, url, token) as st:
        check = st.verify_audit()
    if as_json:
        print_json(check)
    elif check.ok:
        console.print(f"[green]the audit trail holds[/]: {check.message}", highlight=False)
    else:
        console.print(f"[bold red]the audit trail is broken[/] at event {check.first_broken}: {check.message}",
                      highlight=False)  # fmt: skip
    if not check.ok:
        raise typer.Exit(1)


@audit_app.command("export")
@handle_errors
def export(
    out: Annotated[Path | None, typer.Option("--out", help="a .jsonl file (default: standard output)")] = None,
    after: Annotated[int, typer.Option("--after", min=0, help="only events after this sequence number")] = 0,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Write the trail as JSON Lines, oldest first, each event with its chain hashes (for a SIEM)."""
    with open_steward(data_dir, url, token) as st:
        if out is None:
            st.export_audit(sys.stdout, after=after)
            return
        partial = out.with_name(out.name + ".partial")
        with partial.open("w", encoding="utf-8") as f:
            count = st.export_audit(f, after=after)
        partial.replace(out)  # a reader never sees half an export
    console.print(f"{count} event(s) written to {out}", highlight=False)


@app.command("debt")
@handle_errors
def debt(
    model: Annotated[str | None, typer.Argument(help="one model (default: the whole catalog)")] = None,
    max_age: Annotated[str, typer.Option("--max-age", help="retraining is overdue after this long")] = "180d",
    history: Annotated[bool, typer.Option("--history", help="the daily snapshots instead: debt over time")] = False,
    days: Annotated[int, typer.Option("--days", min=1, help="with --history: how many days back")] = 90,
    as_json: JsonOut = False,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Model debt, worst first: unmonitored or unwatched production models, open alerts, failing gates,
    overdue approvals and retraining, missing owners."""
    from modelsteward.cli.common import table

    if history:
        return _debt_history(model, days, as_json, data_dir, url, token)
    with open_steward(data_dir, url, token) as st:
        report = st.model_debt(model, max_age=max_age)
    if as_json:
        return print_json(report)
    rows = [[d.model, d.score, "yes" if d.in_production else "", "; ".join(f.message for f in d.flags)]
            for d in report.models if d.score or model]  # fmt: skip
    table(f"model debt: {report.total} points on {report.with_debt} of {len(report.models)} model(s)",
          ["model", "score", "in production", "why"], rows)  # fmt: skip
    return None


def _debt_history(
    model: str | None, days: int, as_json: bool, data_dir: Path | None, url: str | None, token: str | None
) -> None:
    """One line a snapshot day: the catalog's total and the models with debt (or one model's score)."""
    from modelsteward.cli.common import table

    with open_steward(data_dir, url, token) as st:
        points = st.debt_history(days)
    if as_json:
        return print_json(points)
    if model is not None:
        rows = [[p.day.isoformat(), p.models.get(model, "")] for p in points]
        table(f"model debt of {model}: {len(points)} daily snapshot(s)", ["day", "score"], rows)
        return None
    rows = [[p.day.isoformat(), p.total, p.with_debt,
             ", ".join(f"{m} {s}" for m, s in sorted(p.models.items(), key=lambda x: (-x[1], x[0])) if s)]
            for p in points]  # fmt: skip
    table(f"model debt over the last {days} day(s): {len(points)} daily snapshot(s)",
          ["day", "total", "models with debt", "scores"], rows)  # fmt: skip
    return None
