"""``steward deploy``, ``undeploy``, ``rollback`` and ``steward deployments ...``: route sets."""

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
    open_steward,
    print_json,
)
from modelsteward.errors import InvalidArgument

deployments_app = typer.Typer(help="List, inspect and re-weight deployments.", no_args_is_help=True)
app.add_typer(deployments_app, name="deployments")


def _weights(items: list[str] | None, option: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items or []:
        ref, sep, weight = item.rpartition("=")
        if not sep or not ref:
            raise InvalidArgument(
                f"{option} {item!r} must look like REF=SHARE, e.g. m@challenger=0.2", details={"field": option}
            )
        try:
            out[ref] = float(weight.rstrip("%")) / (100 if weight.endswith("%") else 1)
        except ValueError:
            raise InvalidArgument(f"{option} {item!r}: {weight!r} is not a share", details={"field": option}) from None
    return out


def _render(deployment: Any) -> None:
    state = "[green]active[/]" if deployment.status == "active" else "[yellow]retired[/]"
    console.print(f"[bold]{deployment.name}[/] revision {deployment.revision} {state}", highlight=False)
    if deployment.spec.pipeline is not None:
        steps = [s.get("name", "?") for s in deployment.spec.pipeline.get("steps", [])]
        console.print(f"  pipeline: {' -> '.join(steps)}", highlight=False)
    if deployment.spec.sticky_key:
        console.print(f"  sticky key: {deployment.spec.sticky_key}", highlight=False)
    if deployment.arms:
        table = Table()
        for column in ("role", "reference", "version now", "traffic"):
            table.add_column(column)
        for arm in deployment.arms:
            share = f"{arm.weight:.0%}" if arm.role != "shadow" else "copy"
            table.add_row(arm.role, arm.ref, arm.version, share)
        console.print(table)


@app.command("deploy")
@handle_errors
def deploy(
    name: Annotated[str, typer.Argument(help="the deployment's name (its endpoint)")],
    champion: Annotated[
        str | None, typer.Option(help="the reference that answers, e.g. credit-risk@production")
    ] = None,
    challenger: Annotated[list[str] | None, typer.Option(help="REF=SHARE (0.2 or 20%), repeatable")] = None,
    shadow: Annotated[list[str] | None, typer.Option(help="a reference that gets a copy of each request")] = None,
    sticky_key: Annotated[str | None, typer.Option("--sticky-key", help="request field that pins the arm")] = None,
    pipeline: Annotated[
        Path | None, typer.Option(help="a pipeline definition (YAML file) instead of a champion")
    ] = None,
    no_log: Annotated[bool, typer.Option("--no-log", help="do not log this deployment's predictions")] = False,
    description: Annotated[str, typer.Option(help="what the deployment is for")] = "",
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Create or change a deployment: champion, challengers (A/B, canary), shadows, sticky key."""
    if pipeline is not None and not pipeline.is_file():
        raise InvalidArgument(f"no such file: {pipeline}", details={"field": "pipeline"})
    with open_steward(data_dir, url, token) as st:
        result = st.deploy(
            name,
            champion,
            challengers=_weights(challenger, "--challenger"),
            shadows=shadow or [],
            sticky_key=sticky_key,
            pipeline=pipeline.read_text() if pipeline is not None else None,
            log_predictions=not no_log,
            description=description,
        )
    _render(result)


@app.command("undeploy")
@handle_errors
def undeploy(
    name: Annotated[str, typer.Argument(help="the deployment to stop serving")],
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Stop serving a deployment (its history stays; rollback brings it back)."""
    with open_steward(data_dir, url, token) as st:
        _render(st.undeploy(name))


@app.command("rollback")
@handle_errors
def rollback(
    name: Annotated[str, typer.Argument(help="the deployment to roll back")],
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Return a deployment to its route set before the last change."""
    with open_steward(data_dir, url, token) as st:
        _render(st.rollback(name))


@deployments_app.command("list")
@handle_errors
def list_deployments(
    status: Annotated[str | None, typer.Option(help="active or retired")] = None,
    as_json: JsonOut = False,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """List deployments with their arms."""
    with open_steward(data_dir, url, token) as st:
        items = st.list_deployments(status=status)
    if as_json:
        print_json(items)
        return
    table = Table(title=f"{len(items)} deployment(s)")
    for column in ("name", "status", "revision", "arms", "sticky key"):
        table.add_column(column)
    for d in items:
        arms = (
            ", ".join(f"{a.role}:{a.version}" + (f" {a.weight:.0%}" if a.role == "challenger" else "") for a in d.arms)
            or "pipeline"
        )
        table.add_row(d.name, d.status, str(d.revision), arms, d.spec.sticky_key or "")
    console.print(table)


@deployments_app.command("show")
@handle_errors
def show(
    name: Annotated[str, typer.Argument(help="the deployment")],
    as_json: JsonOut = False,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Show a deployment and the versions its arms resolve to now."""
    with open_steward(data_dir, url, token) as st:
        deployment = st.get_deployment(name)
    if as_json:
        print_json(deployment)
        return
    _render(deployment)


@deployments_app.command("history")
@handle_errors
def history(
    name: Annotated[str, typer.Argument(help="the deployment")],
    as_json: JsonOut = False,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """A deployment's revisions, newest first."""
    with open_steward(data_dir, url, token) as st:
        revisions = st.deployment_history(name)
    if as_json:
        print_json(revisions)
        return
    table = Table(title=f"history of {name}")
    for column in ("revision", "action", "status", "champion", "challengers", "shadows", "by", "at"):
        table.add_column(column)
    for r in revisions:
        table.add_row(
            str(r.revision),
            r.action,
            r.status,
            r.spec.champion or "pipeline",
            ", ".join(f"{k}={v:.0%}" for k, v in r.spec.challengers.items()),
            ", ".join(r.spec.shadows),
            r.created_by or "",
            r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    console.print(table)


@deployments_app.command("traffic")
@handle_errors
def traffic(
    name: Annotated[str, typer.Argument(help="the deployment")],
    shares: Annotated[list[str], typer.Argument(help="REF=SHARE for each challenger, e.g. m@challenger=25%")],
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Set the challengers' shares: step a canary up (5% -> 25% -> 100%) or down."""
    with open_steward(data_dir, url, token) as st:
        _render(st.set_traffic(name, _weights(shares, "SHARE")))
