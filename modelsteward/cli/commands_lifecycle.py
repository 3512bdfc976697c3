"""``steward lifecycle``, ``approve``, ``reject`` and ``roles``: life cycles as code, driven by hand or from CI."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.tree import Tree

from modelsteward.cli.common import (
    DataDir,
    JsonOut,
    Token,
    Url,
    app,
    console,
    err_console,
    handle_errors,
    open_steward,
    parse_pairs,
    print_json,
    spec_file,
    table,
    when,
)

lifecycle_app = typer.Typer(help="Life cycles as code: apply, watch and drive them.", no_args_is_help=True)
app.add_typer(lifecycle_app, name="lifecycle")
jobs_app = typer.Typer(help="Retraining jobs: status, duration, logs.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
roles_app = typer.Typer(help="Grant and revoke roles (validator, approver, ...).", no_args_is_help=True)
app.add_typer(roles_app, name="roles")

Model = Annotated[str, typer.Argument(help="the model")]
Ref = Annotated[str, typer.Argument(help="name/3, name@alias, or name (its version that can make the move)")]
To = Annotated[str, typer.Option("--to", help="the stage to move to")]
RoleOpt = Annotated[str, typer.Option("--role", help="validator, approver, ...")]
Comment = Annotated[str, typer.Option("--comment", help="why")]
_RUN = {
    "done": "[green]done[/]",
    "failed": "[bold red]failed[/]",
    "rejected": "[red]rejected[/]",
    "waiting_approval": "[yellow]waiting for approval[/]",
    "acting": "[cyan]acting[/]",
    "cancelled": "[dim]cancelled[/]",
}


@lifecycle_app.command("apply")
@handle_errors
def apply(file: Annotated[Path, typer.Argument(help="the definition (YAML)")], data_dir: DataDir = None,
          url: Url = None, token: Token = None) -> None:  # fmt: skip
    """Apply a life-cycle definition and put the models it lists under it (errors name the line)."""
    with open_steward(data_dir, url, token) as st:
        lifecycle = st.apply_lifecycle(spec_file(file))
    d = lifecycle.definition
    models = ", ".join(lifecycle.models) or "none yet (`steward lifecycle assign`)"
    console.print(
        f"life cycle [bold]{d.name}[/] revision {lifecycle.revision}: stages {' -> '.join(d.stage_names)}; "
        f"{len(d.transitions)} transitions; models: {models}",
        highlight=False,
    )


@lifecycle_app.command("assign")
@handle_errors
def assign(
    model: Model,
    lifecycle: Annotated[str, typer.Option("--lifecycle", help="a stored life cycle")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a threshold: min_auc=0.8")] = None,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Put a model under a stored life cycle, with its own thresholds."""
    with open_steward(data_dir, url, token) as st:
        status = st.assign_lifecycle(model, lifecycle, parameters=parse_pairs(set_, "--set", numeric=True) or None)
    params = ", ".join(f"{k}={v:g}" for k, v in status.parameters.items()) or "none"
    console.print(f"{model} follows [bold]{lifecycle}[/] (thresholds: {params})", highlight=False)


@lifecycle_app.command("status")
@handle_errors
def status(model: Model, as_json: JsonOut = False, data_dir: DataDir = None, url: Url = None,
           token: Token = None) -> None:  # fmt: skip
    """Where each version of a model stands, drawn on its life cycle, and its recent transitions."""
    with open_steward(data_dir, url, token) as st:
        state = st.lifecycle_status(model)
        defn = st.get_lifecycle(state.lifecycle).definition if state.lifecycle else None
    if as_json:
        return print_json(state)
    if defn is None:
        console.print(f"{model} is not under a life cycle", highlight=False)
        return None
    versions: dict[str, list[int]] = {}
    for p in state.positions:
        versions.setdefault(p.stage, []).append(p.version)
    tree = Tree(f"[bold]{model}[/] follows [bold]{defn.name}[/]")
    for stage in defn.stages:
        here = versions.get(stage.name)
        label = (
            f"[bold green]{stage.name}[/]  " + ", ".join(f"v{v}" for v in sorted(here))
            if here
            else f"[dim]{stage.name}[/]"
        )
        node = tree.add(label)
        for t in defn.transitions:
            if stage.name in t.from_ or "*" in t.from_:
                extra = []
                if t.trigger is not None:
                    extra.append(f"on {t.trigger.event}" if t.trigger.event else f"every {t.trigger.schedule}")
                if t.gates:
                    extra.append(f"{len(t.gates)} gate(s)")
                if t.approvals:
                    extra.append("approval: " + ", ".join(a.role for a in t.approvals))
                node.add(f"-> {t.to}  [dim]{t.label}{'; ' + '; '.join(extra) if extra else ''}[/]")
    console.print(tree)
    if state.runs:
        rows = [
            [r.id, f"v{r.version}", r.transition, f"{r.from_stage} -> {r.to_stage}", _RUN.get(r.status, r.status),
             r.trigger, when(r.updated_at), r.error or ""]
            for r in state.runs
        ]  # fmt: skip
        columns = ["run", "version", "transition", "move", "status", "trigger", "updated (UTC)", "why"]
        table("recent transitions", columns, rows)
    return None


def _render_run(run: Any) -> None:
    console.print(
        f"run {run.id}: {run.model}/{run.version} {run.from_stage} -> {run.to_stage} ({run.transition}): "
        f"{_RUN.get(run.status, run.status)}",
        highlight=False,
    )
    for g in run.gates:
        console.print(
            f"  {'[green]pass[/]' if g.passed else '[bold red]FAIL[/]'}  {g.gate}: {g.reason}", highlight=False
        )
    for a in run.approvals:
        mark = "[green]signed[/]" if a.accepted else "[red]refused[/]"
        console.print(f"  {mark}  {a.user} as {a.role} ({a.decision}){': ' + a.comment if a.comment else ''}"
                      f"{' - ' + a.reason if a.reason else ''}", highlight=False)  # fmt: skip
    for s in run.steps:
        console.print(f"  {s.status:8} {s.name}", highlight=False)
    if run.error and run.status != "failed":
        console.print(f"  {run.error}", highlight=False)


@lifecycle_app.command("advance")
@handle_errors
def advance(ref: Ref, to: To, as_json: JsonOut = False, data_dir: DataDir = None, url: Url = None,
            token: Token = None) -> None:  # fmt: skip
    """Ask to move a version to a stage: its gates run now, then approvals and actions follow."""
    with open_steward(data_dir, url, token) as st:
        run = st.advance(ref, to)
    if as_json:
        return print_json(run)
    _render_run(run)
    if run.status == "failed":
        raise typer.Exit(1)
    return None


@lifecycle_app.command("gate")
@handle_errors
def gate(ref: Ref, to: To, as_json: JsonOut = False, data_dir: DataDir = None, url: Url = None,
         token: Token = None) -> None:  # fmt: skip
    """Run the gates of a move without making it; exits 1 when one fails (for CI pipelines)."""
    with open_steward(data_dir, url, token) as st:
        check = st.check_gates(ref, to)
    if as_json:
        print_json(check)
    else:
        verdict = "[green]all gates pass[/]" if check.passed else "[bold red]a gate fails[/]"
        console.print(f"{check.model}/{check.version} {check.from_stage} -> {check.to_stage} ({check.transition}): "
                      f"{verdict}", highlight=False)  # fmt: skip
        for g in check.gates:
            console.print(f"  {'[green]pass[/]' if g.passed else '[bold red]FAIL[/]'}  {g.gate}: {g.reason}",
                          highlight=False)  # fmt: skip
        if not check.gates:
            console.print("  (this transition has no gates)")
    if not check.passed:
        raise typer.Exit(1)


@lifecycle_app.command("runs")
@handle_errors
def runs(
    model: Annotated[str | None, typer.Option("--model", help="only this model")] = None,
    status_: Annotated[str | None, typer.Option("--status", help="e.g. waiting_approval")] = None,
    run_id: Annotated[int | None, typer.Option("--id", help="one run, with its steps")] = None,
    as_json: JsonOut = False,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Life-cycle runs, newest first (the approvals inbox: --status waiting_approval)."""
    with open_steward(data_dir, url, token) as st:
        items = [st.get_lifecycle_run(run_id)] if run_id is not None else st.lifecycle_runs(model=model, status=status_)
    if as_json:
        return print_json(items)
    if run_id is not None:
        return _render_run(items[0])
    rows = [[r.id, f"{r.model}/{r.version}", r.transition, f"{r.from_stage} -> {r.to_stage}",
             _RUN.get(r.status, r.status), r.requested_by or "", when(r.updated_at)] for r in items]  # fmt: skip
    table("life-cycle runs", ["run", "version", "transition", "move", "status", "requested by", "updated (UTC)"], rows)
    return None


@lifecycle_app.command("cancel")
@handle_errors
def cancel(run_id: Annotated[int, typer.Argument(help="the run")], reason: Comment = "", data_dir: DataDir = None,
           url: Url = None, token: Token = None) -> None:  # fmt: skip
    """Cancel an open run (nothing it has not done yet will happen)."""
    with open_steward(data_dir, url, token) as st:
        _render_run(st.cancel_lifecycle_run(run_id, reason=reason))


@lifecycle_app.command("diagram")
@handle_errors
def diagram(
    name: Annotated[str, typer.Argument(help="the life cycle")],
    model: Annotated[str | None, typer.Option("--model", help="mark this model's versions")] = None,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Print the life cycle as a Mermaid state diagram (paste it into any Markdown that renders Mermaid)."""
    with open_steward(data_dir, url, token) as st:
        typer.echo(st.lifecycle_diagram(name, model=model), nl=False)


def _decide(decision: str, ref: str, role: str, comment: str, data_dir: Path | None, url: str | None,
            token: str | None) -> None:  # fmt: skip
    with open_steward(data_dir, url, token) as st:
        run = (
            st.approve(ref, role=role, comment=comment)
            if decision == "approve"
            else st.reject(ref, role=role, comment=comment)
        )
    _render_run(run)


@app.command("approve")
@handle_errors
def approve(ref: Ref, role: RoleOpt, comment: Comment = "", data_dir: DataDir = None, url: Url = None,
            token: Token = None) -> None:  # fmt: skip
    """Approve the transition a version waits on, in a role (refused for its author or without the role)."""
    _decide("approve", ref, role, comment, data_dir, url, token)


@app.command("reject")
@handle_errors
def reject(ref: Ref, role: RoleOpt, comment: Comment = "", data_dir: DataDir = None, url: Url = None,
           token: Token = None) -> None:  # fmt: skip
    """Reject the transition a version waits on: the run ends and the version stays where it is."""
    _decide("reject", ref, role, comment, data_dir, url, token)


Principal = Annotated[str, typer.Argument(help="the user or service account")]
RoleArg = Annotated[str, typer.Argument(help="viewer, data_scientist, validator, approver, operator, auditor, admin")]
ForModel = Annotated[str | None, typer.Option("--model", help="only for this model")]
ForUnit = Annotated[str | None, typer.Option("--unit", help="only for this business unit")]


@roles_app.command("grant")
@handle_errors
def grant(principal: Principal, role: RoleArg, model: ForModel = None, unit: ForUnit = None, data_dir: DataDir = None,
          url: Url = None, token: Token = None) -> None:  # fmt: skip
    """Grant a role, globally or for one model or business unit."""
    with open_steward(data_dir, url, token) as st:
        g = st.grant_role(principal, role, model=model, business_unit=unit)
    console.print(f"{g.principal} is {g.role} ({g.scope})", highlight=False)


@roles_app.command("revoke")
@handle_errors
def revoke(principal: Principal, role: RoleArg, model: ForModel = None, unit: ForUnit = None, data_dir: DataDir = None,
           url: Url = None, token: Token = None) -> None:  # fmt: skip
    """Revoke a role grant."""
    with open_steward(data_dir, url, token) as st:
        st.revoke_role(principal, role, model=model, business_unit=unit)
    err_console.print(f"{principal} is no longer {role}", highlight=False)


@roles_app.command("list")
@handle_errors
def list_roles(principal: Annotated[str | None, typer.Argument(help="only this principal")] = None,
               as_json: JsonOut = False, data_dir: DataDir = None, url: Url = None,
               token: Token = None) -> None:  # fmt: skip
    """Role grants."""
    with open_steward(data_dir, url, token) as st:
        items = st.list_grants(principal)
    if as_json:
        return print_json(items)
    table("role grants", ["principal", "role", "scope", "granted by", "at (UTC)"],
          [[g.principal, g.role, g.scope, g.granted_by or "", when(g.granted_at)] for g in items])  # fmt: skip
    return None


@jobs_app.command("list")
@handle_errors
def list_jobs(
    model: Annotated[str | None, typer.Option("--model", help="only this model")] = None,
    status_: Annotated[str | None, typer.Option("--status", help="running, succeeded, failed, timed_out")] = None,
    as_json: JsonOut = False,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Retraining jobs, newest first."""
    with open_steward(data_dir, url, token) as st:
        items = st.list_jobs(model=model, status=status_)
    if as_json:
        return print_json(items)
    rows = [[j.id, j.model, j.status, j.run_id or "", when(j.started_at),
             f"{j.duration_s:.1f} s" if j.duration_s is not None else "", f"v{j.version}" if j.version else "",
             j.error or ""] for j in items]  # fmt: skip
    table("jobs", ["job", "model", "status", "run", "started (UTC)", "took", "made", "error"], rows)
    return None


@jobs_app.command("show")
@handle_errors
def show_job(job_id: Annotated[int, typer.Argument(help="the job")], as_json: JsonOut = False,
             data_dir: DataDir = None, url: Url = None, token: Token = None) -> None:  # fmt: skip
    """One job with its log."""
    with open_steward(data_dir, url, token) as st:
        job = st.get_job(job_id)
    if as_json:
        return print_json(job)
    took = f", {job.duration_s:.1f} s" if job.duration_s is not None else ""
    made = f", registered {job.model}/{job.version}" if job.version else ""
    console.print(f"job {job.id} ({job.kind} of {job.model}): {job.status}{took}{made}", highlight=False)
    if job.error:
        console.print(f"error: {job.error}", highlight=False)
    typer.echo(job.log, nl=not job.log.endswith("\n"))
    return None
