"""The monitoring service: keep monitor definitions, run them over the prediction log, store and alert."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from modelsteward.catalog.service import CatalogService
from modelsteward.domain.monitoring import Breach, KPIPoint, Monitor, MonitorResult, MonitorSpec, parse_duration
from modelsteward.domain.refs import ModelRef, check_name
from modelsteward.errors import InvalidArgument, NotFound, StewardError
from modelsteward.monitoring import checks, window
from modelsteward.serving.deployments import DeploymentService
from modelsteward.store import event_repo, monitor_repo
from modelsteward.store.database import Database

log = logging.getLogger("modelsteward.monitoring")


def _not_found(name: str) -> NotFound:
    return NotFound(f"no monitor named {name!r}", details={"monitor": name})


class MonitorService:
    """Monitors read the prediction log (and the feedback log) with DuckDB, compute their checks with
    the pure functions of ``stats``, store each result with its figures, emit an event, and hand the
    result to the alert rules. A failing check makes an ``error`` result; a thin window a
    ``not_enough_data`` one: neither raises nor alarms."""

    def __init__(
        self,
        db: Database,
        catalog: CatalogService,
        deployments: DeploymentService,
        *,
        inference_root: str,
        feedback_root: str,
        alerts: Any = None,
        dask_scheduler: str | None = None,
        dask_timeout: float = 3600.0,
        before_run: Callable[[], None] | None = None,
    ) -> None:
        """``before_run`` is called before each run: the local steward flushes its own process's logs there,
        so that a monitor sees every row that this process has acknowledged."""
        self.before_run = before_run
        self.db = db
        self.catalog = catalog
        self.deployments = deployments
        self.inference_root = inference_root
        self.feedback_root = feedback_root
        self.alerts = alerts
        self.dask_scheduler = dask_scheduler
        self.dask_timeout = dask_timeout

    # -- definitions --------------------------------------------------------------------------------

    def put(self, name: str, spec: MonitorSpec, *, actor: str) -> Monitor:
        check_name(name, field="monitor")
        if spec.target.deployment is not None:
            self.deployments.get(spec.target.deployment)  # NotFound names it
        else:
            assert spec.target.model is not None
            self.catalog.get_version(ModelRef.parse(spec.target.model))
        with self.db.write() as conn:
            monitor, before = monitor_repo.put(conn, name, spec, actor=actor)
            event_repo.append_event(
                conn,
                actor=actor,
                action="monitor.saved",
                details={"monitor": name, "before": before, "after": spec.model_dump(mode="json")},
            )
        return monitor

    def get(self, name: str) -> Monitor:
        with self.db.read() as conn:
            monitor = monitor_repo.get(conn, name)
        if monitor is None:
            raise _not_found(name)
        return monitor

    def list(self) -> list[Monitor]:
        with self.db.read() as conn:
            return monitor_repo.list_all(conn)

    def delete(self, name: str, *, actor: str) -> None:
        with self.db.write() as conn:
            if not monitor_repo.delete(conn, name):
                raise _not_found(name)
            event_repo.append_event(conn, actor=actor, action="monitor.deleted", details={"monitor": name})

    def enable(self, name: str, enabled: bool, *, actor: str) -> Monitor:
        with self.db.write() as conn:
            if not monitor_repo.set_enabled(conn, name, enabled):
                raise _not_found(name)
            event_repo.append_event(
                conn,
                actor=actor,
                action="monitor.enabled" if enabled else "monitor.disabled",
                details={"monitor": name},
            )
        return self.get(name)

    def results(self, name: str, *, limit: int = 50) -> list[MonitorResult]:
        self.get(name)
        with self.db.read() as conn:
            return monitor_repo.runs(conn, name, limit=limit)

    def latest(self, names: list[str]) -> dict[str, tuple[str, datetime, int]]:
        """The latest result of each named monitor that has one: (status, finished_at, breaches)."""
        if not names:
            return {}
        with self.db.read(single_statement=True) as conn:
            return monitor_repo.latest(conn, names)

    def status_before(self, name: str, run_id: int) -> str | None:
        with self.db.read(single_statement=True) as conn:
            return monitor_repo.status_before(conn, name, run_id)

    def target_of(self, name: str) -> dict[str, Any] | None:
        """A monitor's target as stored (``{"deployment": ..., "step": ...}`` or ``{"model": ...}``), or None."""
        with self.db.read(single_statement=True) as conn:
            return monitor_repo.target_of(conn, name)

    # -- running ------------------------------------------------------------------------------------

    def run(self, name: str, *, at: datetime | None = None, actor: str = "scheduler") -> MonitorResult:
        """Run a monitor over the window that ends at ``at`` (now by default) and store the result."""
        monitor = self.get(name)
        spec = monitor.spec
        end = (at or datetime.now(UTC)).astimezone(UTC)
        start = end - parse_duration(spec.window)
        started = datetime.now(UTC)
        figures: dict[str, Any] = {}
        breaches: list[Breach] = []
        rows = 0
        error: str | None = None
        try:
            if self.before_run is not None:
                self.before_run()
            rows, status = self._evaluate(spec, start, end, figures, breaches)
        except StewardError as e:
            status, error = "error", e.message
        except Exception as e:  # noqa: BLE001 - a monitor must never take the scheduler down
            log.exception("monitor %s failed", name)
            status, error = "error", f"{type(e).__name__}: {e}"
        result = MonitorResult(
            monitor=name,
            status=status,  # type: ignore[arg-type]
            window_start=start,
            window_end=end,
            rows=rows,
            figures=figures,
            breaches=breaches,
            error=error,
            started_at=started,
            finished_at=datetime.now(UTC),
        )
        return self.record_result(result, actor=actor)

    def record_result(self, result: MonitorResult, *, actor: str) -> MonitorResult:
        """Store a result (with its ``monitor.run`` event) and hand it to the alert rules: what a run
        does once its figures are computed, also for figures computed elsewhere."""
        with self.db.write() as conn:
            row = monitor_repo.get_row(conn, result.monitor)
            if row is None:  # deleted while it ran
                raise _not_found(result.monitor)
            run_id = monitor_repo.add_run(conn, row.id, result)
            event_repo.append_event(
                conn,
                actor=actor,
                action="monitor.run",
                details={"monitor": result.monitor, "run": run_id, "status": result.status,
                         "breaches": len(result.breaches)},
            )  # fmt: skip
        result = result.model_copy(update={"run_id": run_id})
        if self.alerts is not None:
            self.alerts.evaluate_result(result)
        return result

    def _evaluate(
        self, spec: MonitorSpec, start: datetime, end: datetime, figures: dict[str, Any], breaches: list[Breach]
    ) -> tuple[int, str]:
        """Run the checks, filling ``figures`` and ``breaches``; returns the window's rows and the status."""
        if spec.engine == "dask":
            rows, outcome = checks.run_on_dask(spec, self, start, end)
            figures["drift"] = outcome.figures
            breaches.extend(outcome.breaches)
            return rows, "breach" if breaches else str(outcome.figures.get("status", "ok"))
        current = window.load(self.inference_root, spec.target, start, end)
        only_kpis = all(c.kind == "kpi_query" for c in spec.checks)
        if current.size < spec.min_rows and not only_kpis:
            figures["reason"] = f"{current.size} answered predictions in the window; the monitor needs {spec.min_rows}"
            return current.size, "not_enough_data"
        context = checks.Context(spec=spec, current=current, service=self, start=start, end=end)
        for check in spec.checks:
            outcome = checks.run(check, context)
            figures[check.kind] = outcome.figures
            breaches.extend(outcome.breaches)
        if breaches:
            return current.size, "breach"
        if all(isinstance(f, dict) and f.get("status") == "not_enough_data" for f in figures.values()):
            return current.size, "not_enough_data"
        return current.size, "ok"

    def reference_window(self, spec: MonitorSpec, start: datetime) -> window.Window:
        """The past window a monitor compares with: ``reference: {window, offset}``, else the window
        just before the current one."""
        if isinstance(spec.reference, dict):
            length = parse_duration(spec.reference["window"])
            offset = parse_duration(spec.reference.get("offset", spec.reference["window"]))
        else:
            length = offset = parse_duration(spec.window)
        end = start + parse_duration(spec.window) - offset
        return window.load(self.inference_root, spec.target, end - length, end)

    # -- KPIs ---------------------------------------------------------------------------------------

    def record_kpis(self, points: list[KPIPoint], *, actor: str) -> int:
        if not points:
            raise InvalidArgument("give at least one KPI point", details={"field": "points"})
        with self.db.write() as conn:
            count = monitor_repo.add_kpi_points(conn, points)
            event_repo.append_event(
                conn,
                actor=actor,
                action="kpi.recorded",
                details={"points": count, "kpis": sorted({f"{p.kpi}@{p.scope}" for p in points})},
            )
        if self.alerts is not None:
            for point in points:
                self.alerts.evaluate_kpi(point)
        return count

    def kpi_series(
        self, kpi: str, scope: str, *, start: datetime | None = None, end: datetime | None = None
    ) -> list[KPIPoint]:
        with self.db.read() as conn:
            return monitor_repo.kpi_series(conn, kpi, scope, start=start, end=end)

    def compare_arms(
        self, kpi: str, scope: str, *, start: datetime | None = None, end: datetime | None = None, kind: str = "mean"
    ) -> dict[str, Any]:
        """Is the KPI different between the two arms of an A/B deployment? A significance test with
        the effect and its confidence interval."""
        from modelsteward.stats.kpi import compare_arms

        points = self.kpi_series(kpi, scope, start=start, end=end)
        arms = sorted({p.arm for p in points if p.arm is not None})
        if len(arms) != 2:
            raise InvalidArgument(
                f"{kpi}@{scope} has {len(arms)} arm(s) in this period ({', '.join(arms) or 'none'}); "
                "comparing arms needs exactly two",
                details={"field": "arm", "arms": arms},
            )
        values = [[p.value for p in points if p.arm == arm] for arm in arms]
        return compare_arms(values[0], values[1], kind=kind, labels=(arms[0], arms[1]), name=kpi).to_dict()  # type: ignore[arg-type]

    def change(self, kpi: str, scope: str, *, change_at: datetime | None = None, kind: str = "mean") -> dict[str, Any]:
        """Did the KPI move at a deployment change? Before vs after with a test, and where the most
        likely change point lies. ``change_at`` defaults to the deployment's latest revision."""
        from modelsteward.stats.kpi import before_after

        if change_at is None:
            try:
                change_at = self.deployments.history(scope)[0].created_at
            except NotFound as e:
                raise InvalidArgument(
                    f"{scope!r} is not a deployment: give change_at, the time of the change to assess",
                    details={"field": "change_at"},
                ) from e
        points = self.kpi_series(kpi, scope)
        result = before_after(
            [p.ts for p in points],
            [p.value for p in points],
            change_at,
            kind=kind,
            name=kpi,  # type: ignore[arg-type]
        )
        return result.to_dict()

    def kpis(self, scope: str | None = None) -> list[tuple[str, str, int]]:
        with self.db.read() as conn:
            return monitor_repo.kpi_names(conn, scope)
