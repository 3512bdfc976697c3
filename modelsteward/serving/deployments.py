"""The deployment service: create, re-weight, roll back and retire route sets, each change audited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelsteward.catalog.service import CatalogService
from modelsteward.domain.records import (
    Deployment,
    DeploymentRevision,
    DeploymentSpec,
    LineageEdge,
    ModelVersion,
    RouteArm,
)
from modelsteward.domain.refs import ModelRef, check_name
from modelsteward.errors import Conflict, InvalidArgument, NotFound, StewardError
from modelsteward.store import deployment_repo, event_repo
from modelsteward.store.database import Database

PipelineCheck = Callable[[dict[str, Any]], None]
"""Validates a pipeline definition (and that its models resolve); raises a StewardError if not."""


def _not_found(name: str) -> NotFound:
    return NotFound(f"no deployment named {name!r}", details={"deployment": name})


class DeploymentService:
    """Owns the ``deployments`` tables. Every change is a new revision plus an audit event in one
    transaction; the event bumps the catalog generation, which is how running gateways notice."""

    def __init__(self, db: Database, catalog: CatalogService, *, check_pipeline: PipelineCheck | None = None) -> None:
        self.db = db
        self.catalog = catalog
        self.check_pipeline = check_pipeline

    # -- changes ------------------------------------------------------------------------------------

    def _validate(self, spec: DeploymentSpec) -> None:
        for ref in spec.refs:
            self.catalog.get_version(ModelRef.parse(ref))  # NotFound names the missing model, alias or version
        if spec.sticky_key is not None and spec.sticky_key in ("", "id"):
            raise InvalidArgument(
                "sticky_key must name a field of the request's rows, e.g. customer_id ('id' is the request's own id)",
                details={"field": "sticky_key"},
            )
        if spec.pipeline is not None:
            if self.check_pipeline is None:
                raise InvalidArgument("this server cannot run pipelines", details={"field": "pipeline"})
            self.check_pipeline(spec.pipeline)

    def deploy(self, name: str, spec: DeploymentSpec, *, actor: str) -> Deployment:
        check_name(name, field="deployment")
        self._validate(spec)
        with self.db.write() as conn:
            current = deployment_repo.lock(conn, name)
            revision = deployment_repo.write(
                conn,
                name=name,
                current=current,
                spec=spec,
                status="active",
                action="deploy",
                parent=current.revision if current is not None else None,
                actor=actor,
            )
            event_repo.append_event(
                conn,
                actor=actor,
                action="deployment.deployed",
                details={
                    "deployment": name,
                    "revision": revision,
                    "before": current.spec if current is not None else None,
                    "after": spec.model_dump(mode="json"),
                },
            )
        return self.get(name)

    def set_traffic(self, name: str, challengers: dict[str, float], *, actor: str) -> Deployment:
        """Change the challengers' shares (a canary step: 5% -> 25% -> 100%), keeping everything else."""
        with self.db.read() as conn:
            current = deployment_repo.get(conn, name)
        if current is None:
            raise _not_found(name)
        spec = _spec_with(DeploymentSpec.model_validate(current.spec), challengers=challengers)
        self._validate(spec)
        return self._change(name, action="traffic", actor=actor, make=lambda _conn, row: (spec, "active", row.revision))

    def undeploy(self, name: str, *, actor: str) -> Deployment:
        return self._change(
            name,
            action="undeploy",
            actor=actor,
            make=lambda _conn, row: (DeploymentSpec.model_validate(row.spec), "retired", row.revision),
        )

    def rollback(self, name: str, *, actor: str) -> Deployment:
        """Return to the route set the last change replaced, in one transaction. Rolling back again
        goes one step further back, like an undo stack."""

        def previous(conn: Any, row: Any) -> tuple[DeploymentSpec, str, int | None]:
            current = deployment_repo.revision(conn, row.id, row.revision)
            if current is None or current.parent is None:
                raise Conflict(
                    f"deployment {name!r} has no earlier route set to roll back to",
                    details={"deployment": name, "revision": row.revision},
                )
            target = deployment_repo.revision(conn, row.id, current.parent)
            assert target is not None
            return DeploymentSpec.model_validate(target.spec), target.status, target.parent

        return self._change(name, action="rollback", actor=actor, make=previous)

    def _change(
        self,
        name: str,
        *,
        action: str,
        actor: str,
        make: Callable[[Any, Any], tuple[DeploymentSpec, str, int | None]],
    ) -> Deployment:
        check_name(name, field="deployment")
        with self.db.write() as conn:
            current = deployment_repo.lock(conn, name)
            if current is None:
                raise _not_found(name)
            spec, status, parent = make(conn, current)
            revision = deployment_repo.write(
                conn,
                name=name,
                current=current,
                spec=spec,
                status=status,
                action=action,
                parent=parent,
                actor=actor,
            )
            event_repo.append_event(
                conn,
                actor=actor,
                action={"traffic": "deployment.traffic", "undeploy": "deployment.undeployed"}.get(
                    action, "deployment.rolled_back"
                ),
                details={
                    "deployment": name,
                    "revision": revision,
                    "before": {"spec": current.spec, "status": current.status},
                    "after": {"spec": spec.model_dump(mode="json"), "status": status},
                },
            )
        return self.get(name)

    # -- questions ----------------------------------------------------------------------------------

    def _arms(self, spec: DeploymentSpec) -> list[RouteArm]:
        arms: list[RouteArm] = []
        roles = []
        if spec.champion is not None:
            roles.append(("champion", spec.champion, 1 - sum(spec.challengers.values())))
        roles += [("challenger", ref, weight) for ref, weight in spec.challengers.items()]
        roles += [("shadow", ref, 0.0) for ref in spec.shadows]
        for role, ref, weight in roles:
            try:
                version = self.catalog.get_version(ref).ref
            except StewardError:
                version = "unresolved"
            arms.append(RouteArm(role=role, ref=ref, version=version, weight=round(weight, 6)))  # type: ignore[arg-type]
        return arms

    def get(self, name: str) -> Deployment:
        check_name(name, field="deployment")
        with self.db.read() as conn:
            row = deployment_repo.get(conn, name)
        if row is None:
            raise _not_found(name)
        return deployment_repo.record(row, self._arms(DeploymentSpec.model_validate(row.spec)))

    def list(self, *, status: str | None = None) -> list[Deployment]:
        with self.db.read() as conn:
            rows = deployment_repo.list_rows(conn, status=status)
        return [deployment_repo.record(r, self._arms(DeploymentSpec.model_validate(r.spec))) for r in rows]

    def history(self, name: str) -> list[DeploymentRevision]:
        with self.db.read() as conn:
            row = deployment_repo.get(conn, name)
            if row is None:
                raise _not_found(name)
            return deployment_repo.history(conn, row.id)

    def downstream(self, version: ModelVersion) -> list[LineageEdge]:
        """Active deployments whose arms resolve to ``version`` right now."""
        edges = []
        for deployment in self.list(status="active"):
            for arm in deployment.arms:
                if arm.version == version.ref:
                    edges.append(
                        LineageEdge(
                            source_type="version",
                            source=version.ref,
                            target_type="deployment",
                            target=deployment.name,
                            relation=f"serves_as_{arm.role}",
                            created_at=deployment.updated_at,
                        )
                    )
        return edges


def _spec_with(spec: DeploymentSpec, **changes: Any) -> DeploymentSpec:
    from pydantic import ValidationError

    try:
        return DeploymentSpec.model_validate({**spec.model_dump(), **changes})
    except ValidationError as e:
        raise InvalidArgument(f"invalid route set: {e.errors()[0]['msg']}", details={"field": "challengers"}) from e
