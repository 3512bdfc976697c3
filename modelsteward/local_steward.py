"""The embedded body of the facade: the services run in this process, on the configured store."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelsteward.domain.lifecycle import (
    GateCheck,
    Job,
    Lifecycle,
    LifecycleDefinition,
    LifecycleStatus,
    RoleGrant,
    Run,
)
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
from modelsteward.domain.records import (
    Alias,
    Dataset,
    Deployment,
    DeploymentRevision,
    DeploymentSpec,
    Event,
    Lineage,
    ModelPage,
    ModelVersion,
    RegisteredModel,
    Signature,
    VersionSummary,
)
from modelsteward.domain.refs import ModelRef, model_of
from modelsteward.errors import NotFound, StewardError
from modelsteward.governance.permissions import Reach
from modelsteward.local_governance import GovernanceMethods
from modelsteward.local_views import ViewMethods
from modelsteward.steward import Steward, deployment_spec, model_update, parse_spec

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd

    from modelsteward.catalog.registration import Registration
    from modelsteward.catalog.service import CatalogService
    from modelsteward.kinds.loaded import LoadedModel
    from modelsteward.serving.deployments import DeploymentService
    from modelsteward.serving.gateway import Gateway, Served
    from modelsteward.settings import Settings


class LocalSteward(GovernanceMethods, ViewMethods, Steward):
    """The embedded body: the services run in this process, on the configured store."""

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        url: None = None,
        token: None = None,
        settings: Settings | None = None,
        actor: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """``clock`` is the life-cycle engine's "now" (gate windows, monitor ages): tests and simulations
        pass a fake one; the scheduler's rounds take their time as ``lifecycle_tick(at)``."""
        from modelsteward.catalog.service import CatalogService
        from modelsteward.settings import Settings
        from modelsteward.store.artifacts import ArtifactStore
        from modelsteward.store.database import Database

        if settings is None:
            settings = Settings(data_dir=Path(data_dir)) if data_dir is not None else Settings()
        elif data_dir is not None:
            settings = settings.model_copy(update={"data_dir": Path(data_dir)})
        self.settings = settings
        self.actor = actor or settings.user
        self.db = Database(settings.resolved_database_url(), busy_timeout=settings.db_busy_timeout)
        self.db.migrate()
        self.catalog: CatalogService = CatalogService(self.db, ArtifactStore(settings.resolved_artifact_url()))
        from modelsteward.serving.deployments import DeploymentService

        self.deployments: DeploymentService = DeploymentService(
            self.db, self.catalog, check_pipeline=self._check_pipeline
        )
        self._gateway: Gateway | None = None
        self._feedback: Any = None
        self._gateway_lock = threading.RLock()
        self._scheduler: Any = None
        from modelsteward.alerts import AlertService
        from modelsteward.monitoring.service import MonitorService

        self.alerts: AlertService = AlertService(self.db)
        self.monitors: MonitorService = MonitorService(
            self.db,
            self.catalog,
            self.deployments,
            inference_root=settings.resolved_inference_url(),
            feedback_root=settings.resolved_feedback_url(),
            alerts=self.alerts,
            dask_scheduler=settings.dask_scheduler,
            dask_timeout=settings.dask_timeout,
            before_run=self.flush_logs,
        )
        from modelsteward.governance.identity import IdentityService
        from modelsteward.lifecycle.engine import LifecycleService
        from modelsteward.lifecycle.jobs import JobRunner

        self.identities = IdentityService(self.db)
        from modelsteward.serving.prediction_log import default_worker_name

        jobs = JobRunner(
            self.db,
            self.catalog,
            environment=settings.job_environment(),
            log_dir=settings.data_dir / "jobs",
            holder=default_worker_name(),
        )
        from modelsteward.compliance.service import ComplianceService

        self.compliance = ComplianceService(self.db, self.catalog)
        self.lifecycles: LifecycleService = LifecycleService(
            self.db,
            self.catalog,
            self.deployments,
            self.monitors,
            alerts=self.alerts,
            jobs=jobs,
            clock=clock,
            compliance=self.compliance,
        )
        from modelsteward.governance.access import AccessControl

        self.access = AccessControl(
            self.db, lambda principal: [(g.role, g.scope) for g in self.lifecycles.grants(principal)], self._unit_of
        )
        # Embedded use and the open laptop server run unchecked, as the local admin; a server's
        # ``acting_as(actor, enforce=True)`` copies check every call against the actor's grants.
        self._enforce = False
        self._implicit_roles: tuple[str, ...] = ()
        self._request: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"<LocalSteward {self.db.safe_url}>"

    def acting_as(
        self,
        actor: str,
        *,
        enforce: bool = False,
        implicit_roles: tuple[str, ...] = (),
        request: dict[str, Any] | None = None,
    ) -> LocalSteward:
        """The same steward (same store, same caches) recording changes in ``actor``'s name. With
        ``enforce``, every call first checks that ``actor`` holds a role granting its permission (see
        ``modelsteward.governance.permissions``), refusing with Forbidden (403) and an ``access.denied``
        audit event; ``implicit_roles`` count as global grants (an open server's anonymous reader);
        ``request`` (method, path) is recorded with a denial."""
        clone = object.__new__(LocalSteward)
        clone.__dict__.update(self.__dict__)
        clone.actor = actor
        clone._enforce = enforce
        clone._implicit_roles = tuple(implicit_roles)
        clone._request = request
        return clone

    # -- access control -------------------------------------------------------------------------------

    def _authorize(
        self,
        permission: str,
        *,
        model: str | None = None,
        models: set[str] | None = None,
        unit: str | None = None,
        reach: Reach = Reach.GLOBAL,
    ) -> None:
        """Refuse (Forbidden, audited) unless the actor may ``permission`` on ``model``/``models`` (all of
        them) and business ``unit``; with none of them, with a grant in ``reach``. A no-op unless enforcing."""
        if not self._enforce:
            return
        targets = set(models or ())
        if model is not None:
            targets.add(model)
        if not self.access.allowed(
            self.actor, permission, models=targets, unit=unit, reach=reach, implicit=self._implicit_roles
        ):
            raise self.access.deny(self.actor, permission, models=targets, unit=unit, reach=reach,
                                   request=self._request)  # fmt: skip

    def _unit_of(self, model: str) -> str | None:
        try:
            return self.catalog.get_model(model).business_unit
        except StewardError:  # no such model (or not a model name): only global and model grants cover it
            return None

    def _authorize_registration(self, registration: Registration) -> None:
        """A version of an existing model needs model.register on it; a new model needs a global grant or
        one for the business unit it is registered under."""
        if not self._enforce:
            return
        if self._model_exists(registration.name):
            self._authorize("model.register", model=registration.name)
        else:
            self._authorize("model.register", unit=registration.model_update.business_unit)

    def _model_exists(self, name: str) -> bool:
        try:
            self.catalog.get_model(name)
            return True
        except NotFound:
            return False

    def _deployment_models(self, name: str) -> set[str]:
        """The models a stored deployment routes to (none when there is no such deployment)."""
        if not self._enforce:  # embedded: no lookup for a check that will not be made
            return set()
        try:
            return self.deployments.get(name).spec.models
        except StewardError:
            return set()

    def _served_models(self, name: str) -> set[str]:
        """The models a deployment routes to, from the gateway's memory (the serving path's check)."""
        if not self._enforce:
            return set()
        try:
            route = self.gateway.route(name)
        except StewardError:
            return set()
        refs = [arm.ref for arm in (*route.arms, *route.shadows)]
        refs += list(getattr(route.pipeline, "versions", {}).values()) if route.pipeline is not None else []
        return {model_of(ref) for ref in refs}

    def register_prepared(self, registration: Registration) -> ModelVersion:
        self._authorize_registration(registration)
        if self.settings.job_id is not None:  # registered by a retraining job: say which
            import dataclasses

            tags = {**registration.version_tags, "steward.job": str(self.settings.job_id)}
            registration = dataclasses.replace(registration, version_tags=tags)
        return self._placed(self.catalog.register(registration, actor=self.actor))

    def _placed(self, version: ModelVersion) -> ModelVersion:
        """A new version of a model under a life cycle enters its initial stage (and what that triggers)."""
        self.lifecycles.place_new_version(version.name, version.version, actor=self.actor)
        return version

    def register_upload(self, registration: Registration) -> ModelVersion:
        """Record a registration that arrived over the network, after checking its artifact."""
        self._authorize_registration(registration)
        return self._placed(self.catalog.register(self.catalog.verify_upload(registration), actor=self.actor))

    def get_model(self, name: str) -> RegisteredModel:
        self._authorize("catalog.read", model=name)
        return self.catalog.get_model(name)

    def update_model(self, name: str, **fields: Any) -> RegisteredModel:
        self._authorize("model.update", model=name, unit=fields.get("business_unit"))
        updated = self.catalog.update_model(name, model_update(**fields), actor=self.actor)
        if "business_unit" in fields:
            self.access.invalidate()
        return updated

    def search_models(self, **filters: Any) -> ModelPage:
        self._authorize("catalog.read", reach=Reach.ANYWHERE)
        return self.catalog.search_models(**filters)

    def get_version(self, ref: str) -> ModelVersion:
        self._authorize("catalog.read", model=model_of(ref))
        return self.catalog.get_version(ref)

    def list_versions(
        self, name: str | None = None, *, limit: int | None = None, offset: int = 0
    ) -> list[VersionSummary]:
        self._authorize("catalog.read", model=name, reach=Reach.ANYWHERE)
        return self.catalog.list_versions(name, limit=limit, offset=offset)[0]

    def count_versions(self, name: str | None = None) -> int:
        self._authorize("catalog.read", model=name, reach=Reach.ANYWHERE)
        return self.catalog.list_versions(name, limit=0)[1]

    def get_lineage(self, ref: str) -> Lineage:
        self._authorize("catalog.read", model=model_of(ref))
        lineage = self.catalog.lineage(ref)
        downstream = self.deployments.downstream(self.catalog.get_version(lineage.version))
        return lineage.model_copy(update={"downstream": downstream})

    def get_dataset(self, content_hash: str) -> Dataset:
        self._authorize("catalog.read", reach=Reach.ANYWHERE)
        return self.catalog.get_dataset(content_hash)

    def set_alias(self, name: str, alias: str, version: int, *, expected_version: int | None = None) -> Alias:
        self._authorize("alias.set", model=name)
        return self.catalog.set_alias(name, alias, version, actor=self.actor, expected_version=expected_version)

    def delete_alias(self, name: str, alias: str) -> None:
        self._authorize("alias.set", model=name)
        self.catalog.delete_alias(name, alias, actor=self.actor)

    def list_aliases(self, name: str) -> list[Alias]:
        self._authorize("catalog.read", model=name)
        return self.catalog.list_aliases(name)

    def load_model(self, ref: str) -> LoadedModel:
        self._authorize("inference.predict", model=model_of(ref))
        return self.catalog.load(self.catalog.get_version(ref))

    def predict(self, ref: str, data: Any) -> pd.DataFrame:
        return self.load_model(ref).predict(data)

    def artifact_bytes(self, ref: str) -> tuple[ModelVersion, bytes]:
        """A version and its artifact, hash-checked (the remote body downloads through this)."""
        self._authorize("model.download", model=model_of(ref))
        version = self.catalog.get_version(ref)
        return version, self.catalog.artifact_bytes(version)

    def list_events(
        self, *, model: str | None = None, action: str | None = None, actor: str | None = None, limit: int = 100
    ) -> list[Event]:
        self._authorize("audit.read", model=model)
        return self.catalog.list_events(model=model, action=action, actor=actor, limit=limit)

    # -- deployments and the gateway ----------------------------------------------------------------

    def _check_pipeline(self, definition: dict[str, Any]) -> None:
        from modelsteward.serving.pipeline import PipelineSpec, bind

        spec = PipelineSpec.model_validate(definition)
        bind(
            spec, lambda ref: self.catalog.load(self.catalog.get_version(ref)), context=self._pipeline_context()
        ).close()

    def _pipeline_context(self) -> dict[str, str]:
        return {"DATA_DIR": str(self.settings.data_dir.resolve())}

    def _bind_pipeline(self, definition: dict[str, Any], resolve: Callable[[str], LoadedModel]) -> Any:
        from modelsteward.serving.pipeline import PipelineSpec, bind

        return bind(PipelineSpec.model_validate(definition), resolve, context=self._pipeline_context())

    def deploy(
        self,
        name: str,
        champion: str | None = None,
        *,
        challengers: dict[str, float] | None = None,
        shadows: list[str] | None = None,
        sticky_key: str | None = None,
        pipeline: dict[str, Any] | str | Path | None = None,
        log_predictions: bool = True,
        description: str = "",
    ) -> Deployment:
        spec = deployment_spec(
            champion=champion,
            challengers=challengers,
            shadows=shadows,
            sticky_key=sticky_key,
            pipeline=pipeline,
            log_predictions=log_predictions,
            description=description,
        )
        return self.deploy_spec(name, spec)

    def deploy_spec(self, name: str, spec: DeploymentSpec) -> Deployment:
        self._authorize("deployment.manage", models=self._deployment_models(name) | spec.models)
        return self.deployments.deploy(name, spec, actor=self.actor)

    def set_traffic(self, name: str, challengers: dict[str, float]) -> Deployment:
        self._authorize("deployment.manage", models=self._deployment_models(name) | {model_of(r) for r in challengers})
        return self.deployments.set_traffic(name, challengers, actor=self.actor)

    def set_share(self, name: str, ref: str, weight: float) -> Deployment:
        # The change's permission first: whoever may not make it is refused for that, not for reading the spec.
        self._authorize("deployment.manage", models=self._deployment_models(name) | {model_of(ref)})
        return self.set_traffic(name, {**self.deployments.get(name).spec.challengers, ref: weight})

    def undeploy(self, name: str) -> Deployment:
        self._authorize("deployment.manage", models=self._deployment_models(name))
        return self.deployments.undeploy(name, actor=self.actor)

    def rollback(self, name: str) -> Deployment:
        self._authorize("deployment.manage", models=self._deployment_models(name))
        return self.deployments.rollback(name, actor=self.actor)

    def get_deployment(self, name: str) -> Deployment:
        self._authorize("catalog.read", models=self._deployment_models(name))
        return self.deployments.get(name)

    def list_deployments(self, *, status: str | None = None) -> list[Deployment]:
        self._authorize("catalog.read", reach=Reach.ANYWHERE)
        return self.deployments.list(status=status)

    def deployment_history(self, name: str) -> list[DeploymentRevision]:
        self._authorize("catalog.read", models=self._deployment_models(name))
        return self.deployments.history(name)

    @property
    def gateway(self) -> Gateway:
        """The in-process gateway (started on first use; ``steward up`` starts it at boot)."""
        if self._gateway is None:
            self.start_serving()
        assert self._gateway is not None
        return self._gateway

    def start_serving(self, *, on_served: Callable[[str, str, str, str, float], None] | None = None) -> Gateway:
        """Start the gateway and the prediction and feedback logs of this process (idempotent)."""
        with self._gateway_lock:
            if self._gateway is None:
                from modelsteward.serving.feedback_log import FeedbackLog
                from modelsteward.serving.gateway import Gateway
                from modelsteward.serving.prediction_log import PredictionLog, default_worker_name

                worker = default_worker_name()
                options = self._log_options()
                sink = PredictionLog(self.settings.resolved_inference_url(), worker=worker, **options)
                self._feedback = FeedbackLog(self.settings.resolved_feedback_url(), worker=worker, **options)
                gateway = Gateway(
                    self.catalog,
                    self.deployments,
                    sink,
                    refresh_interval=self.settings.route_refresh_interval,
                    bind_pipeline=self._bind_pipeline,
                    on_served=on_served,
                )
                gateway.start()
                self._gateway = gateway
        return self._gateway

    def _log_options(self) -> dict[str, Any]:
        """The logs' limits from the settings, and their alarm: a log whose writes keep failing raises a
        ``system`` alert naming the worker, the log and the error, from its writer thread (never on a request),
        and clears it once the rows it kept are written."""
        from modelsteward.alerts import SystemAlarm

        settings = self.settings
        alarm = SystemAlarm(self.alerts)

        def on_health(health: Any) -> None:
            details = {
                "worker": health.worker,
                "log": health.root,
                "error": health.error,
                "errno": health.errno,
                "failed_attempts": health.failed_attempts,
                "since": health.since.isoformat() if health.since is not None else None,
                "queue_depth": health.queue_depth,
                "max_queue_rows": health.max_queue_rows,
                "rows_rejected": health.rows_rejected,
            }
            alarm.report(
                f"{health.what}-log", health.worker, problem=health.failing, title=health.describe(), details=details
            )

        return {
            "flush_interval": settings.log_flush_interval,
            "max_queue_rows": settings.log_max_queue_rows,
            "max_buffer_rows": min(50_000, settings.log_max_queue_rows),
            "retry_max": settings.log_retry_max,
            "alert_after_failures": settings.log_alert_after_failures,
            "on_health": on_health,
            "on_error": lambda _error: alarm.retry(),
        }

    def serving_ready(self) -> bool:
        """Whether this process should get predictions: the routes are loaded and the prediction log takes
        rows (a log refusing them answers every request 503; a load balancer should send them elsewhere)."""
        gateway = self.gateway
        return gateway.ready and not getattr(gateway.sink, "refusing", False)

    def flush_logs(self, timeout: float = 30.0) -> None:
        """Write every prediction and feedback row this process has acknowledged (monitors call it first)."""
        gateway, feedback = self._gateway, self._feedback
        if gateway is not None:
            gateway.sink.flush(timeout)  # type: ignore[union-attr]
        if feedback is not None:
            feedback.flush(timeout)

    def stop_serving(self) -> None:
        """Stop the gateway: finish shadows, then flush both logs (nothing acknowledged is lost)."""
        with self._gateway_lock:
            if self._gateway is not None:
                self._gateway.close()
                self._gateway.sink.close()  # type: ignore[union-attr]
                self._gateway = None
            if self._feedback is not None:
                self._feedback.close()
                self._feedback = None

    def serve(
        self,
        name: str,
        data: Any,
        *,
        request_id: str | None = None,
        checked_against: Signature | None = None,
        at: datetime | None = None,
    ) -> Served:
        """``at`` records another time than now in the prediction log: backfills and simulations."""
        self._authorize("inference.predict", models=self._served_models(name))
        from modelsteward.stats.schema import to_frame

        return self.gateway.serve(name, to_frame(data), request_id=request_id, checked_against=checked_against, at=at)

    def serving_signature(self, name: str) -> Signature | None:
        """What a deployment's requests carry (its champion's or pipeline's inputs), from memory. The
        first step of a prediction: it checks inference.predict, so a refusal comes before any decoding."""
        self._authorize("inference.predict", models=self._served_models(name))
        return self.gateway.route(name).signature

    def serving_description(self, name: str) -> dict[str, Any]:
        self._authorize("catalog.read", models=self._served_models(name))
        route = self.gateway.route(name)
        versions = [arm.version for arm in route.arms] or sorted(getattr(route.pipeline, "versions", {}).values())
        return {"signature": route.signature, "versions": versions, "revision": route.revision}

    def send_feedback(self, name: str, rows: list[dict[str, Any]], *, at: datetime | None = None) -> int:
        """Record ground truth: each row has ``prediction_id`` and ``actual`` and/or ``actual_<name>``
        values (and optionally ``ts``, when the outcome was observed). Returns the rows accepted."""
        self._authorize("feedback.write", models=self._served_models(name))
        from modelsteward.serving.feedback_rows import feedback_batch

        self.deployments.get(name)  # NotFound for an unknown deployment
        batch = feedback_batch(rows)
        if at is not None:
            batch = batch._replace(ts=at)
        self.start_serving()  # the feedback log starts with the gateway
        assert self._feedback is not None
        self._feedback.append(name, batch)
        return len(batch.prediction_ids)

    # -- monitoring and alerts ----------------------------------------------------------------------

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

    # -- life cycles ------------------------------------------------------------------------------------

    def apply_lifecycle(self, definition: LifecycleDefinition | dict[str, Any] | str | Path) -> Lifecycle:
        self._authorize("lifecycle.define")
        from modelsteward.domain.lifecycle import parse_lifecycle

        defn, text = parse_lifecycle(definition)
        return self.lifecycles.apply(defn, source=text, actor=self.actor)

    def get_lifecycle(self, name: str) -> Lifecycle:
        self._authorize("catalog.read", reach=Reach.ANYWHERE)
        return self.lifecycles.get(name)

    def list_lifecycles(self) -> list[Lifecycle]:
        self._authorize("catalog.read", reach=Reach.ANYWHERE)
        return self.lifecycles.list()

    def assign_lifecycle(
        self, model: str, lifecycle: str, *, parameters: dict[str, float] | None = None
    ) -> LifecycleStatus:
        self._authorize("lifecycle.define", model=model)
        return self.lifecycles.assign(model, lifecycle, parameters, actor=self.actor)

    def lifecycle_status(self, model: str) -> LifecycleStatus:
        self._authorize("catalog.read", model=model)
        return self.lifecycles.status(model)

    def advance(self, ref: str, to: str) -> Run:
        self._authorize("lifecycle.request", model=model_of(ref))
        return self.lifecycles.request(ref, to, actor=self.actor)

    def check_gates(self, ref: str, to: str) -> GateCheck:
        self._authorize("compliance.run", model=model_of(ref))
        version, transition, results = self.lifecycles.gate(ref, to)
        name = ModelRef.parse(ref).name
        position = {p.version: p.stage for p in self.lifecycles.status(name).positions}
        return GateCheck(
            model=name,
            version=version,
            transition=transition.label,
            from_stage=position.get(version, "?"),
            to_stage=transition.to,
            passed=all(r.passed for r in results),
            gates=results,
        )

    def approve(self, ref: str, *, role: str, comment: str = "") -> Run:
        self._authorize("lifecycle.approve", model=model_of(ref))
        return self.lifecycles.decide(ref, role=role, decision="approve", comment=comment, actor=self.actor)

    def reject(self, ref: str, *, role: str, comment: str = "") -> Run:
        self._authorize("lifecycle.approve", model=model_of(ref))
        return self.lifecycles.decide(ref, role=role, decision="reject", comment=comment, actor=self.actor)

    def lifecycle_runs(self, *, model: str | None = None, status: str | None = None, limit: int = 50) -> list[Run]:
        self._authorize("catalog.read", model=model, reach=Reach.ANYWHERE)
        return self.lifecycles.list_runs(model=model, status=status, limit=limit)

    def get_lifecycle_run(self, run_id: int) -> Run:
        self._authorize("catalog.read", reach=Reach.ANYWHERE)
        return self.lifecycles.get_run(run_id)

    def cancel_lifecycle_run(self, run_id: int, *, reason: str = "") -> Run:
        if self._enforce:  # a grant somewhere first (so an unknown run is a 403 too), then on the run's model
            self._authorize("lifecycle.cancel", reach=Reach.ANYWHERE)
            self._authorize("lifecycle.cancel", model=self.lifecycles.get_run(run_id).model)
        return self.lifecycles.cancel(run_id, actor=self.actor, reason=reason)

    def grant_role(
        self, principal: str, role: str, *, model: str | None = None, business_unit: str | None = None
    ) -> RoleGrant:
        self._authorize("identity.admin")
        grant = self.lifecycles.grant(principal, role, model=model, unit=business_unit, actor=self.actor)
        self.access.invalidate()
        return grant

    def revoke_role(
        self, principal: str, role: str, *, model: str | None = None, business_unit: str | None = None
    ) -> None:
        self._authorize("identity.admin")
        self.lifecycles.revoke(principal, role, model=model, unit=business_unit, actor=self.actor)
        self.access.invalidate()

    def list_grants(self, principal: str | None = None) -> list[RoleGrant]:
        if principal is None or principal != self.actor:  # one may always see one's own grants
            self._authorize("identity.read")
        return self.lifecycles.grants(principal)

    def has_role(self, principal: str, role: str, *, model: str | None = None) -> bool:
        """Does ``principal`` hold ``role`` globally, for ``model`` or for its business unit?"""
        return self.lifecycles.has_role(principal, role, model=model)

    def list_jobs(self, *, model: str | None = None, status: str | None = None, limit: int = 50) -> list[Job]:
        self._authorize("catalog.read", model=model, reach=Reach.ANYWHERE)
        assert self.lifecycles.jobs is not None
        return self.lifecycles.jobs.list(model=model, status=status, limit=limit)

    def get_job(self, job_id: int) -> Job:
        self._authorize("catalog.read", reach=Reach.ANYWHERE)
        assert self.lifecycles.jobs is not None
        return self.lifecycles.jobs.get(job_id)

    def lifecycle_tick(self, at: datetime | None = None) -> dict[str, int]:
        """One round of the life-cycle engine (what ``steward up``'s scheduler does each second)."""
        return self.lifecycles.tick(at)

    def start_scheduler(self) -> Any:
        """Start the scheduler of ``steward up``: due monitors and alert notifications (idempotent)."""
        with self._gateway_lock:
            if self._scheduler is None:
                from modelsteward.alerts import Dispatcher
                from modelsteward.monitoring.scheduler import Scheduler
                from modelsteward.serving.prediction_log import default_worker_name

                self._scheduler = Scheduler(
                    self.db,
                    self.monitors,
                    holder=default_worker_name(),
                    dispatcher=Dispatcher(self.db),
                    rounds=[self.lifecycles.tick, self._daily_debt_round()],
                )
                self._scheduler.start()
        return self._scheduler

    def _daily_debt_round(self) -> Callable[[datetime], None]:
        """The scheduler's round that takes the day's debt snapshot: once a day, first on start (a restart takes
        the day's again, which the upsert makes harmless); after a failure, again ten minutes later."""
        from datetime import timedelta

        tried: dict[str, Any] = {"day": None, "at": None}

        def record_debt_daily(now: datetime) -> None:
            if tried["day"] == now.date() or (tried["at"] is not None and now - tried["at"] < timedelta(minutes=10)):
                return
            tried["at"] = now
            self.record_debt(now.date())
            tried["day"] = now.date()

        return record_debt_daily

    def stop_scheduler(self) -> None:
        with self._gateway_lock:
            if self._scheduler is not None:
                self._scheduler.stop()
                self._scheduler = None

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

    def serving_stats(self) -> dict[str, float]:
        """Counters for /metrics: the log's queue and writes, shadows dropped."""
        if self._gateway is None:
            return {}
        sink = self._gateway.sink
        return {
            "log_queue_rows": float(getattr(sink, "queue_depth", 0)),
            "log_rows_written": float(getattr(sink, "rows_written", 0)),
            "log_write_errors": float(getattr(sink, "write_errors", 0)),
            "log_rows_rejected": float(getattr(sink, "rows_rejected", 0)),
            "log_failing": float(bool(getattr(sink, "failing", False))),
            "shadows_dropped": float(self._gateway.shadows_dropped),
        }

    def close(self) -> None:
        self.stop_scheduler()
        assert self.lifecycles.jobs is not None
        self.lifecycles.jobs.wait()  # a retraining job this process started finishes and is recorded
        self.stop_serving()
        self.db.dispose()
