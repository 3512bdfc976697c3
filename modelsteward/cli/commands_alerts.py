"""``steward alerts``, ``channels`` and ``kpi``: alerts that reach people, and business KPIs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from modelsteward.cli.commands_monitoring import KPI, At, Kind, Scope, SpecFile
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

alerts_app = typer.Typer(help="List, acknowledge and resolve alerts; define alert rules.", no_args_is_help=True)
channels_app = typer.Typer(help="Where alerts go: webhooks, Slack, e-mail, tickets.", no_args_is_help=True)
kpi_app = typer.Typer(help="Record business KPIs and test whether a model change moved them.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
app.add_typer(channels_app, name="channels")
app.add_typer(kpi_app, name="kpi")

ALERT_STATES = {
    "firing": "[bold red]firing[/]",
    "acknowledged": "[yellow]acknowledged[/]",
    "resolved": "[green]resolved[/]",
}


# -- alerts, rules and channels --------------------------------------------------------------------------------


@alerts_app.command("list")
@handle_errors
def list_alerts(
    status: Annotated[str | None, typer.Option(help="firing, acknowledged or resolved")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: JsonOut = False,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """List alerts, newest first."""
    with open_steward(data_dir, url, token) as st:
        items = st.list_alerts(status=status, limit=limit)
    if as_json:
        return print_json(items)
    rows = [
        [
            a.id,
            ALERT_STATES.get(a.status, a.status),
            a.severity,
            a.rule,
            a.title,
            a.occurrences,
            when(a.first_fired_at),
            when(a.last_fired_at),
        ]
        for a in items
    ]
    columns = ["id", "status", "severity", "rule", "title", "times", "first fired", "last fired"]
    table(f"{len(items)} alert(s)", columns, rows)


@alerts_app.command("ack")
@handle_errors
def ack(
    alert_id: Annotated[int, typer.Argument(help="the alert's id")],
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Acknowledge an alert: someone is on it (it stays open until resolved)."""
    with open_steward(data_dir, url, token) as st:
        alert = st.acknowledge_alert(alert_id)
    console.print(f"alert {alert.id} acknowledged by {alert.acknowledged_by}: {alert.title}", highlight=False)


@alerts_app.command("resolve")
@handle_errors
def resolve(
    alert_id: Annotated[int, typer.Argument(help="the alert's id")],
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Resolve an alert."""
    with open_steward(data_dir, url, token) as st:
        alert = st.resolve_alert(alert_id)
    console.print(f"alert {alert.id} resolved: {alert.title}", highlight=False)


@alerts_app.command("deliveries")
@handle_errors
def deliveries(
    alert: Annotated[int | None, typer.Option("--alert", help="one alert's deliveries")] = None,
    status: Annotated[str | None, typer.Option(help="pending, sent or failed")] = None,
    as_json: JsonOut = False,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Notifications sent (or still retried) to the channels."""
    with open_steward(data_dir, url, token) as st:
        items = st.list_deliveries(alert_id=alert, status=status)
    if as_json:
        return print_json(items)
    rows = [
        [d.id, d.alert_id, d.channel, d.event, d.status, d.attempts, when(d.sent_at), d.last_error or ""] for d in items
    ]
    table(f"{len(items)} delivery(ies)", ["id", "alert", "channel", "event", "status", "tries", "sent", "error"], rows)


@alerts_app.command("rule")
@handle_errors
def rule(
    name: Annotated[str, typer.Argument(help="the rule's name")],
    spec: SpecFile,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Create or replace an alert rule from a YAML file (monitor, kpi or lifecycle, when, severity, channels)."""
    from pydantic import ValidationError

    from modelsteward.domain.monitoring import AlertRule
    from modelsteward.domain.yaml_source import definition_error, load_yaml

    data, locate = load_yaml(spec_file(spec).read_text(encoding="utf-8"), source=str(spec))
    if not isinstance(data, dict):
        raise InvalidArgument(f"{spec}: an alert rule is a mapping (monitor:, when:, ...)", details={"field": "spec"})
    if data.setdefault("name", name) != name:
        raise InvalidArgument(f"{spec} names the rule {data['name']!r}, not {name!r}", details={"field": "name"})
    try:
        parsed = AlertRule.model_validate(data)
    except ValidationError as e:
        raise definition_error(e, locate, str(spec)) from e
    with open_steward(data_dir, url, token) as st:
        state = st.put_alert_rule(parsed)
    console.print(f"alert rule [bold]{state.rule.name}[/] saved", highlight=False)


def _watches(r: Any) -> str:
    if r.monitor:
        return f"monitor {r.monitor}"
    if r.lifecycle:
        return f"life cycle {r.lifecycle}: {', '.join(r.problems)}"
    return f"kpi {r.kpi}@{r.scope}"


@alerts_app.command("rules")
@handle_errors
def rules(as_json: JsonOut = False, data_dir: DataDir = None, url: Url = None, token: Token = None) -> None:
    """List alert rules with their current breach streak."""
    with open_steward(data_dir, url, token) as st:
        items = st.list_alert_rules()
    if as_json:
        return print_json(items)
    rows = [
        [
            s.rule.name,
            _watches(s.rule),
            s.rule.when.status or f"{s.rule.when.metric} {s.rule.when.op} {s.rule.when.threshold}",
            s.rule.consecutive,
            s.rule.severity,
            ", ".join(s.rule.channels),
            s.streak,
            "yes" if s.enabled else "no",
        ]
        for s in items
    ]
    columns = ["name", "watches", "when", "in a row", "severity", "channels", "streak", "on"]
    table(f"{len(items)} rule(s)", columns, rows)


@channels_app.command("add")
@handle_errors
def add_channel(spec: SpecFile, data_dir: DataDir = None, url: Url = None, token: Token = None) -> None:
    """Create or replace a channel from a YAML file (name, type, url or smtp settings, secret_env)."""
    from modelsteward.domain.monitoring import Channel
    from modelsteward.steward import parse_spec

    channel = parse_spec(Channel, spec_file(spec), what="channel")
    with open_steward(data_dir, url, token) as st:
        saved = st.put_channel(channel)
    console.print(f"channel [bold]{saved.name}[/] ({saved.type}) saved", highlight=False)


@channels_app.command("list")
@handle_errors
def list_channels(as_json: JsonOut = False, data_dir: DataDir = None, url: Url = None, token: Token = None) -> None:
    """List channels (secrets are never stored: secret_env names the variable)."""
    with open_steward(data_dir, url, token) as st:
        items = st.list_channels()
    if as_json:
        return print_json(items)
    rows = [[c.name, c.type, c.url or ", ".join(c.recipients), c.secret_env or ""] for c in items]
    table(f"{len(items)} channel(s)", ["name", "type", "destination", "secret from"], rows)


# -- KPIs ----------------------------------------------------------------------------------------------------------


@kpi_app.command("record")
@handle_errors
def record(
    kpi: KPI,
    scope: Scope,
    value: Annotated[float, typer.Argument(help="the observed value")],
    ts: Annotated[str | None, typer.Option("--ts", help="when it was observed (ISO; default now)")] = None,
    arm: Annotated[str | None, typer.Option("--arm", help="the A/B arm (version) it belongs to")] = None,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Record one KPI observation."""
    observed = parse_time(ts, "--ts") or datetime.now(UTC)
    with open_steward(data_dir, url, token) as st:
        st.record_kpis([{"kpi": kpi, "scope": scope, "ts": observed, "value": value, "arm": arm, "source": "cli"}])
    console.print(f"{kpi}@{scope} = {value:g} recorded at {when(observed)} UTC", highlight=False)


@kpi_app.command("upload")
@handle_errors
def upload(
    file: Annotated[Path, typer.Argument(help="a .csv or .parquet file: kpi, scope, ts, value (and arm)")],
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Record KPI observations from a CSV or Parquet file."""
    from modelsteward.monitoring.export import output_format
    from modelsteward.monitoring.kpi_feeds import points_from_table

    parquet = output_format(file) == "parquet"
    if not file.is_file():
        raise InvalidArgument(f"no such file: {file}", details={"field": "file"})
    points = points_from_table(file.read_bytes(), parquet=parquet)
    with open_steward(data_dir, url, token) as st:
        count = st.record_kpis(points)
    console.print(f"{count} KPI point(s) recorded from {file}", highlight=False)


@kpi_app.command("show")
@handle_errors
def show_kpi(
    kpi: KPI, scope: Scope, as_json: JsonOut = False, data_dir: DataDir = None, url: Url = None, token: Token = None
) -> None:
    """A KPI's observations, oldest first."""
    with open_steward(data_dir, url, token) as st:
        points = st.kpi_series(kpi, scope)
    if as_json:
        return print_json(points)
    table(
        f"{kpi}@{scope}: {len(points)} point(s)",
        ["ts (UTC)", "value", "arm", "source"],
        [[when(p.ts), f"{p.value:g}", p.arm, p.source] for p in points],
    )


def _print_comparison(c: dict[str, Any]) -> None:
    if c.get("status") != "ok":
        return
    a, b = c.get("labels") or ("A", "B")
    rows = [
        [f"{a} (n={c.get('n_a')})", num(c.get("estimate_a"))],
        [f"{b} (n={c.get('n_b')})", num(c.get("estimate_b"))],
        ["difference", num(c.get("difference"))],
        [f"{c.get('confidence', 0.95):.0%} interval", f"{num(c.get('ci_low'))} to {num(c.get('ci_high'))}"],
        ["p-value", num(c.get("p_value"))],
        [c.get("effect_size_name") or "effect size", num(c.get("effect_size"))],
    ]
    table("figures", ["", "value"], rows)


@kpi_app.command("arms")
@handle_errors
def arms(
    kpi: KPI,
    scope: Scope,
    kind: Kind = "mean",
    as_json: JsonOut = False,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Compare a KPI between the two arms of an A/B deployment (Welch's t-test or a two-proportion test)."""
    with open_steward(data_dir, url, token) as st:
        result = st.compare_kpi_arms(kpi, scope, kind=kind)
    if as_json:
        return print_json(result)
    console.print(result["verdict"], highlight=False, markup=False)
    _print_comparison(result)


@kpi_app.command("change")
@handle_errors
def change(
    kpi: KPI,
    scope: Scope,
    at: At = None,
    kind: Kind = "mean",
    as_json: JsonOut = False,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Did the KPI move at the deployment's last change (or --at)? Before/after test and change-point search."""
    with open_steward(data_dir, url, token) as st:
        result = st.kpi_change(kpi, scope, change_at=parse_time(at, "--at"), kind=kind)
    if as_json:
        return print_json(result)
    console.print(f"[bold]{result['answer']}[/]", highlight=False)
    _print_comparison(result["comparison"])
    point = result.get("change_point")
    if point:
        console.print(
            f"most likely change point: {point['at']} (p = {point['p_value']:.3g}, mean "
            f"{point['mean_before']:.4g} -> {point['mean_after']:.4g})",
            highlight=False,
        )
