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
    VersionSummary,
)
from modelsteward.domain.refs import ModelRef, model_of
from modelsteward.errors import NotFound, StewardError
from modelsteward.governance.permissions import Reach
from modelsteward.local_governance import GovernanceMethods
from modelsteward.local_monitoring import MonitoringMethods
from modelsteward.local_serving import ServingMethods
from modelsteward.local_views import ViewMethods
from modelsteward.steward import Steward, deployment_spec, model_update

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd

    from modelsteward.catalog.registration import Registration
    from modelsteward.catalog.service import CatalogService
    from modelsteward.kinds.loaded import LoadedModel
    from modelsteward.serving.deployments import DeploymentService
    from modelsteward.serving.gateway import Gateway
    from modelsteward.settings import Settings


class LocalSteward(ServingMethods, MonitoringMethods, GovernanceMethods, ViewMethods, Steward):
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

    # -- deployments ----------------------------------------------------------------------------------

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

    def close(self) -> None:
        self.stop_scheduler()
        assert self.lifecycles.jobs is not None
        self.lifecycles.jobs.wait()  # a retraining job this process started finishes and is recorded
        self.stop_serving()
        self.db.dispose()
