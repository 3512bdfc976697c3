"""The facade's monitoring and alerting for the embedded body: monitors and their results, business KPIs, alert
channels, rules, alerts and deliveries, and the monitoring figures for /metrics. A part of ``LocalSteward``, kept
apart to keep each module about one concern; every method checks the caller's permission first."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from modelsteward.governance.permissions import Reach
from modelsteward.steward import parse_spec

if TYPE_CHECKING:
    from datetime import datetime


class MonitoringMethods:
    """Mixed into :class:`~modelsteward.local_steward.LocalSteward`, whose services and checks it uses."""

    def put_monitor(self, name: str, spec: MonitorSpec | dict[str, Any] | str | Path) -> Monitor:
        self._authorize("monitor.manage")
        return self.monitors.put(name, parse_spec(MonitorSpec, spec, what="monitor"), actor=self.actor)

    def get_monitor(self, name: str) -> Monitor:
        self._authorize("catalog.read", reach=Reach.ANYWHERE)
        return self.monitors.get(name)

    def list_monitors(self) -> list[Monitor]:
        self._authorize("catalog.read", reach=Reach.ANYWHERE)
        return self.monitors.list()

    def delete_monitor(self, name: str) -> None:
        self._authorize("monitor.manage")
        self.monitors.delete(name, actor=self.actor)

    def run_monitor(self, name: str, *, at: datetime | None = None) -> MonitorResult:
        self._authorize("monitor.run")
        return self.monitors.run(name, at=at, actor=self.actor)

    def monitor_results(self, name: str, *, limit: int = 50) -> list[MonitorResult]:
        self._authorize("catalog.read", reach=Reach.ANYWHERE)
        return self.monitors.results(name, limit=limit)

    def record_kpis(self, points: list[KPIPoint | dict[str, Any]]) -> int:
        self._authorize("feedback.write")
        parsed = [parse_spec(KPIPoint, p, what="KPI point") for p in points]
        return self.monitors.record_kpis(parsed, actor=self.actor)

    def kpi_series(
        self, kpi: str, scope: str, *, start: datetime | None = None, end: datetime | None = None
    ) -> list[KPIPoint]:
        self._authorize("catalog.read", reach=Reach.ANYWHERE)
        return self.monitors.kpi_series(kpi, scope, start=start, end=end)

    def compare_kpi_arms(
        self, kpi: str, scope: str, *, start: datetime | None = None, end: datetime | None = None, kind: str = "mean"
    ) -> dict[str, Any]:
        self._authorize("catalog.read", reach=Reach.ANYWHERE)
        return self.monitors.compare_arms(kpi, scope, start=start, end=end, kind=kind)

    def kpi_change(
        self, kpi: str, scope: str, *, change_at: datetime | None = None, kind: str = "mean"
    ) -> dict[str, Any]:
        self._authorize("catalog.read", reach=Reach.ANYWHERE)
        return self.monitors.change(kpi, scope, change_at=change_at, kind=kind)

    def put_channel(self, channel: Channel | dict[str, Any]) -> Channel:
        self._authorize("alert.manage")
        return self.alerts.put_channel(parse_spec(Channel, channel, what="channel"), self.actor)

    def list_channels(self) -> list[Channel]:
        self._authorize("catalog.read", reach=Reach.ANYWHERE)
        return self.alerts.list_channels()

    def put_alert_rule(self, rule: AlertRule | dict[str, Any]) -> AlertRuleState:
        self._authorize("alert.manage")
        return self.alerts.put_rule(parse_spec(AlertRule, rule, what="alert rule"), self.actor)

    def list_alert_rules(self) -> list[AlertRuleState]:
        self._authorize("catalog.read", reach=Reach.ANYWHERE)
        return self.alerts.list_rules()

    def list_alerts(self, *, status: str | None = None, limit: int = 100) -> list[Alert]:
        self._authorize("catalog.read", reach=Reach.ANYWHERE)
        return self.alerts.list_alerts(status=status, limit=limit)

    def acknowledge_alert(self, alert_id: int) -> Alert:
        self._authorize("alert.manage")
        return self.alerts.acknowledge(alert_id, self.actor)

    def resolve_alert(self, alert_id: int) -> Alert:
        self._authorize("alert.manage")
        return self.alerts.resolve(alert_id, self.actor)

    def list_deliveries(self, *, alert_id: int | None = None, status: str | None = None) -> list[Delivery]:
        self._authorize("catalog.read", reach=Reach.ANYWHERE)
        return self.alerts.list_deliveries(alert_id=alert_id, status=status)

    def monitoring_stats(self) -> dict[str, Any]:
        """Monitor and alert figures for /metrics: each monitor's latest result, firing alerts, deliveries."""
        latest = {}
        for monitor in self.monitors.list():
            results = self.monitors.results(monitor.name, limit=1)
            if results:
                latest[monitor.name] = results[0]
        return {
            "monitors": latest,
            "alerts_firing": len(self.alerts.list_alerts(status="firing", limit=10_000)),
            "deliveries": self.alerts.delivery_counts(),
        }
