"""Monitoring routes: monitors and their results, KPIs, alert channels and rules, alerts and deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Query, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from modelsteward.api.deps import Reader, Writer, needs
from modelsteward.api.json_route import StrictJSONRoute
from modelsteward.api.params import STORE_INT_MAX, RowId
from modelsteward.domain.monitoring import (
    Alert,
    AlertRule,
    AlertRuleState,
    Channel,
    Delivery,
    KPIPoint,
    Monitor,
    MonitorResult,
    MonitorSpec,
)
from modelsteward.errors import InvalidArgument

router = APIRouter(prefix="/api/v1", tags=["monitoring"], route_class=StrictJSONRoute)


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: datetime | None = Field(default=None, description="the end of the window; default: now")


class KPIRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: list[KPIPoint] = Field(min_length=1, max_length=100_000)


class Accepted(BaseModel):
    accepted: int


@router.get("/monitors", response_model=list[Monitor], summary="List monitors", **needs("catalog.read"))
def list_monitors(st: Reader) -> Any:
    return st.list_monitors()


@router.put(
    "/monitors/{name}", response_model=Monitor, summary="Create or replace a monitor", **needs("monitor.manage")
)
def put_monitor(st: Writer, name: str, spec: MonitorSpec) -> Any:
    return st.put_monitor(name, spec)


@router.get("/monitors/{name}", response_model=Monitor, summary="A monitor", **needs("catalog.read"))
def get_monitor(st: Reader, name: str) -> Any:
    return st.get_monitor(name)


@router.delete(
    "/monitors/{name}", status_code=204, summary="Delete a monitor (its results go with it)", **needs("monitor.manage")
)
def delete_monitor(st: Writer, name: str) -> None:
    st.delete_monitor(name)


@router.post("/monitors/{name}/run", response_model=MonitorResult, summary="Run a monitor now", **needs("monitor.run"))
def run_monitor(st: Writer, name: str, request: Annotated[RunRequest | None, Body()] = None) -> Any:
    return st.run_monitor(name, at=request.at if request else None)


@router.get(
    "/monitors/{name}/results",
    response_model=list[MonitorResult],
    summary="A monitor's results, newest first",
    **needs("catalog.read"),
)
def monitor_results(st: Reader, name: str, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> Any:
    return st.monitor_results(name, limit=limit)


@router.post("/kpis", response_model=Accepted, summary="Record business KPI observations", **needs("feedback.write"))
def record_kpis(st: Writer, request: KPIRequest) -> Any:
    return Accepted(accepted=st.record_kpis(list(request.points)))


@router.post(
    "/kpis/upload",
    response_model=Accepted,
    summary="Record KPI observations from a CSV or Parquet file",
    **needs("feedback.write"),
)
def upload_kpis(
    st: Writer, file: Annotated[UploadFile, File(description="columns kpi, scope, ts, value[, arm]")]
) -> Any:
    from modelsteward.monitoring.kpi_feeds import points_from_table

    name = (file.filename or "").lower()
    if not name.endswith((".csv", ".parquet")):
        raise InvalidArgument("upload a .csv or .parquet file", details={"field": "file"})
    return Accepted(accepted=st.record_kpis(points_from_table(file.file.read(), parquet=name.endswith(".parquet"))))


@router.get(
    "/kpis/{kpi}/{scope}",
    response_model=list[KPIPoint],
    summary="A KPI's series for a model or deployment",
    **needs("catalog.read"),
)
def kpi_series(st: Reader, kpi: str, scope: str, start: datetime | None = None, end: datetime | None = None) -> Any:
    return st.kpi_series(kpi, scope, start=start, end=end)


@router.get(
    "/kpis/{kpi}/{scope}/arms",
    summary="Compare a KPI between the two arms of an A/B deployment",
    **needs("catalog.read"),
)
def kpi_arms(
    st: Reader,
    kpi: str,
    scope: str,
    start: datetime | None = None,
    end: datetime | None = None,
    kind: Annotated[str, Query(pattern="^(mean|proportion)$")] = "mean",
) -> Any:
    return st.compare_kpi_arms(kpi, scope, start=start, end=end, kind=kind)


@router.get("/kpis/{kpi}/{scope}/change", summary="Did the KPI move at the deployment change?", **needs("catalog.read"))
def kpi_change(
    st: Reader,
    kpi: str,
    scope: str,
    change_at: datetime | None = None,
    kind: Annotated[str, Query(pattern="^(mean|proportion)$")] = "mean",
) -> Any:
    return st.kpi_change(kpi, scope, change_at=change_at, kind=kind)


@router.get("/channels", response_model=list[Channel], summary="Alert channels", **needs("catalog.read"))
def list_channels(st: Reader) -> Any:
    return st.list_channels()


@router.put(
    "/channels/{name}", response_model=Channel, summary="Create or replace an alert channel", **needs("alert.manage")
)
def put_channel(st: Writer, name: str, channel: Channel) -> Any:
    if channel.name != name:
        raise InvalidArgument("the channel's name must match the path", details={"field": "name"})
    return st.put_channel(channel)


@router.get("/alert-rules", response_model=list[AlertRuleState], summary="Alert rules", **needs("catalog.read"))
def list_rules(st: Reader) -> Any:
    return st.list_alert_rules()


@router.put(
    "/alert-rules/{name}",
    response_model=AlertRuleState,
    summary="Create or replace an alert rule",
    **needs("alert.manage"),
)
def put_rule(st: Writer, name: str, rule: AlertRule) -> Any:
    if rule.name != name:
        raise InvalidArgument("the rule's name must match the path", details={"field": "name"})
    return st.put_alert_rule(rule)


@router.get("/alerts", response_model=list[Alert], summary="Alerts, newest first", **needs("catalog.read"))
def list_alerts(
    st: Reader,
    status: Annotated[str | None, Query(pattern="^(firing|acknowledged|resolved)$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    return st.list_alerts(status=status, limit=limit)


@router.post(
    "/alerts/{alert_id}/acknowledge", response_model=Alert, summary="Acknowledge an alert", **needs("alert.manage")
)
def acknowledge(st: Writer, alert_id: RowId) -> Any:
    return st.acknowledge_alert(alert_id)


@router.post(
    "/alerts/{alert_id}/resolve", response_model=Alert, summary="Resolve an alert by hand", **needs("alert.manage")
)
def resolve(st: Writer, alert_id: RowId) -> Any:
    return st.resolve_alert(alert_id)


@router.get(
    "/deliveries",
    response_model=list[Delivery],
    summary="Alert notifications and their delivery state",
    **needs("catalog.read"),
)
def list_deliveries(
    st: Reader,
    alert_id: Annotated[int | None, Query(ge=1, le=STORE_INT_MAX)] = None,
    status: Annotated[str | None, Query(pattern="^(pending|sent|failed)$")] = None,
) -> Any:
    return st.list_deliveries(alert_id=alert_id, status=status)
