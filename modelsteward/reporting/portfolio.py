"""The catalog seen as a portfolio: each model's debt (see ``governance/debt.py``) and its one-line overview for
the dashboard (stage, production version, health, open alerts, debt), gathered in a few queries per page."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from modelsteward.domain.monitoring import parse_duration
from modelsteward.domain.records import ModelDebt, ModelOverview, RegisteredModel
from modelsteward.errors import NotFound
from modelsteward.governance.debt import DebtFacts, assess

if TYPE_CHECKING:
    from modelsteward.alerts import AlertService
    from modelsteward.catalog.service import CatalogService
    from modelsteward.compliance.service import ComplianceService
    from modelsteward.lifecycle.engine import LifecycleService
    from modelsteward.monitoring.service import MonitorService

_HEALTH_ORDER = ("error", "breach", "not_enough_data", "ok")  # the worst first


class Portfolio:
    def __init__(
        self,
        catalog: CatalogService,
        monitors: MonitorService,
        lifecycles: LifecycleService,
        alerts: AlertService,
        compliance: ComplianceService,
    ) -> None:
        self.catalog = catalog
        self.monitors = monitors
        self.lifecycles = lifecycles
        self.alerts = alerts
        self.compliance = compliance

    def _watching(self) -> dict[str, list[str]]:
        watching: dict[str, list[str]] = {}
        for monitor in self.monitors.list():
            for name in self.lifecycles.models_of_monitor(monitor.name):
                watching.setdefault(name, []).append(monitor.name)
        return watching

    def debts(
        self, models: list[RegisteredModel], *, now: datetime, max_age: timedelta, stale_after: timedelta
    ) -> list[ModelDebt]:
        watching = self._watching()
        rule_monitor = {r.rule.name: r.rule.monitor for r in self.alerts.list_rules()}
        open_alerts = [a for a in self.alerts.list_alerts(limit=10_000) if a.status != "resolved"]
        debts = []
        for m in models:
            production = next((a for a in self.catalog.list_aliases(m.name) if a.alias == "production"), None)
            mine = watching.get(m.name, [])
            latest = self.monitors.latest(mine)
            runs = self.lifecycles.list_runs(model=m.name, limit=20)
            facts = DebtFacts(
                model=m.name,
                owner=m.owner,
                production_version=production.version if production else None,
                production_since=production.updated_at if production else None,
                monitors=mine,
                last_result_at=max((v[1] for v in latest.values()), default=None),
                open_alerts=[a.title for a in open_alerts if rule_monitor.get(a.rule) in mine],
                failed_run=runs[0].transition if runs and runs[0].status == "failed" else None,
                overdue_runs=self._overdue(m.name, runs, now),
                compliance_findings=self.findings(m.name, production.version) if production else [],
            )
            debts.append(assess(facts, now=now, max_age=max_age, stale_after=stale_after))
        return debts

    def _overdue(self, model: str, runs: list[object], now: datetime) -> list[str]:
        overdue = []
        for run in runs:
            if getattr(run, "status", None) != "waiting_approval":
                continue
            defn, _ = self.lifecycles.governed(model)
            labels = {t.label for t in defn.transitions}
            sla = defn.transition(run.transition).sla if run.transition in labels else None  # type: ignore[attr-defined]
            if sla is not None and now - run.created_at > parse_duration(sla):  # type: ignore[attr-defined]
                overdue.append(run.transition)  # type: ignore[attr-defined]
        return overdue

    def findings(self, model: str, version: int) -> list[str]:
        """The suites whose latest run on this version did not pass, with what failed."""
        latest: dict[str, object] = {}
        for run in self.compliance.runs(f"{model}/{version}", limit=100):
            latest.setdefault(run.suite, run)
        return [f"{r.suite} {r.status} ({', '.join(t.name for t in r.failed)}, run {r.id})"  # type: ignore[attr-defined]
                for r in latest.values() if r.status != "pass"]  # type: ignore[attr-defined]  # fmt: skip

    def overview(self, models: list[RegisteredModel], *, now: datetime) -> list[ModelOverview]:
        """One row per model: its production version and stage, the health of its monitors, its open alerts
        and its debt."""
        debts = {d.model: d for d in self.debts(models, now=now, max_age=timedelta(days=180),
                                                 stale_after=timedelta(days=2))}  # fmt: skip
        watching = self._watching()
        rows = []
        for m in models:
            production = m.aliases.get("production")
            stage = lifecycle = None
            try:
                status = self.lifecycles.status(m.name)
                lifecycle = status.lifecycle
                stage = next((p.stage for p in status.positions if p.version == production), None)
            except NotFound:
                pass
            mine = watching.get(m.name, [])
            statuses = {s for s, _, _ in self.monitors.latest(mine).values()}
            health = next((h for h in _HEALTH_ORDER if h in statuses), "unmonitored" if not mine else "no_result")
            debt = debts[m.name]
            rows.append(ModelOverview(
                name=m.name, kind=m.kind, description=m.description, owner=m.owner, business_unit=m.business_unit,
                risk_tier=m.risk_tier, latest_version=m.latest_version, production_version=production,
                lifecycle=lifecycle, stage=stage, health=health, monitors=len(mine),
                open_alerts=sum(1 for f in debt.flags if f.code == "open_alert"), debt_score=debt.score,
                debt_flags=[f.code for f in debt.flags],
            ))  # fmt: skip
        return rows
