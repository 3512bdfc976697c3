"""What a transition does once its gates passed and its approvers signed: move aliases and change
route sets. Every action sets a desired state (doing it twice changes nothing the second time) or
is guarded by what it saw before it started (a rollback), so an interrupted run can resume safely."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelsteward.catalog.service import CatalogService
from modelsteward.domain.lifecycle import (
    Action,
    DeployAction,
    PromoteAction,
    RemoveAliasAction,
    RollbackAction,
    SetAliasAction,
    TrafficAction,
)
from modelsteward.domain.records import DeploymentSpec
from modelsteward.domain.refs import ModelRef
from modelsteward.errors import NotFound
from modelsteward.serving.deployments import DeploymentService


@dataclass(frozen=True)
class Context:
    catalog: CatalogService
    deployments: DeploymentService
    model: str
    version: int

    @property
    def ref(self) -> str:
        return f"{self.model}/{self.version}"


def snapshot(ctx: Context, action: Action) -> dict[str, Any] | None:
    """What the action will change, as it is before it runs (stored with its step)."""
    body = action.body
    deployment = getattr(body, "deployment", None)
    if deployment is not None:
        try:
            return {"deployment": deployment, "revision": ctx.deployments.get(deployment).revision}
        except NotFound:
            return {"deployment": deployment, "revision": None}
    alias = getattr(body, "alias", None)
    if alias is not None:
        current = {a.alias: a.version for a in ctx.catalog.list_aliases(ctx.model)}
        return {"alias": alias, "version": current.get(alias)}
    return None


def perform(ctx: Context, action: Action, *, before: dict[str, Any] | None, actor: str) -> dict[str, Any]:
    body = action.body
    if isinstance(body, SetAliasAction):
        return _set_alias(ctx, body.alias, actor)
    if isinstance(body, RemoveAliasAction):
        current = {a.alias: a.version for a in ctx.catalog.list_aliases(ctx.model)}
        if current.get(body.alias) != ctx.version:
            return {"changed": False, "note": f"{body.alias} does not point at version {ctx.version}"}
        ctx.catalog.delete_alias(ctx.model, body.alias, actor=actor)
        return {"changed": True}
    if isinstance(body, DeployAction):
        return _deploy(ctx, body, actor)
    if isinstance(body, TrafficAction):
        spec = _spec(ctx, body.deployment)
        if spec.challengers.get(ctx.ref) == body.weight:
            return {"changed": False}
        ctx.deployments.set_traffic(body.deployment, {**spec.challengers, ctx.ref: body.weight}, actor=actor)
        return {"changed": True, "weight": body.weight}
    if isinstance(body, PromoteAction):
        detail = _set_alias(ctx, body.alias, actor)
        if body.deployment is not None:
            detail["deployment"] = _promote(ctx, body, actor)
        return detail
    assert isinstance(body, RollbackAction)
    current = ctx.deployments.get(body.deployment).revision
    if before is not None and before.get("revision") is not None and current != before["revision"]:
        return {"changed": False, "note": f"already changed since revision {before['revision']} (now {current})"}
    done = ctx.deployments.rollback(body.deployment, actor=actor)
    return {"changed": True, "revision": done.revision}


def _set_alias(ctx: Context, alias: str, actor: str) -> dict[str, Any]:
    current = {a.alias: a.version for a in ctx.catalog.list_aliases(ctx.model)}
    if current.get(alias) == ctx.version:
        return {"changed": False, "alias": alias}
    ctx.catalog.set_alias(ctx.model, alias, ctx.version, actor=actor)
    return {"changed": True, "alias": alias, "previous": current.get(alias)}


def _spec(ctx: Context, deployment: str) -> DeploymentSpec:
    return ctx.deployments.get(deployment).spec


def _mine(ctx: Context, ref: str) -> bool:
    """Does a route reference point at this version (``name/3``, or ``name@alias`` resolving to it)?"""
    try:
        parsed = ModelRef.parse(ref)
    except Exception:  # noqa: BLE001 - a pipeline step name or another model
        return False
    if parsed.name != ctx.model:
        return False
    if parsed.version is not None:
        return parsed.version == ctx.version
    return False  # an alias follows whichever version holds it


def _deploy(ctx: Context, action: DeployAction, actor: str) -> dict[str, Any]:
    try:
        spec = _spec(ctx, action.deployment)
    except NotFound:
        if action.role != "champion":
            raise
        ctx.deployments.deploy(action.deployment, DeploymentSpec(champion=ctx.ref), actor=actor)
        return {"changed": True, "created": True}
    challengers = {k: v for k, v in spec.challengers.items() if not _mine(ctx, k)}
    shadows = [s for s in spec.shadows if not _mine(ctx, s)]
    champion = spec.champion
    if action.role == "shadow":
        shadows.append(ctx.ref)
    elif action.role == "canary":
        assert action.weight is not None
        challengers[ctx.ref] = action.weight
    else:
        champion = ctx.ref
    wanted = spec.model_copy(update={"champion": champion, "challengers": challengers, "shadows": shadows})
    if wanted == spec:
        return {"changed": False}
    ctx.deployments.deploy(action.deployment, wanted, actor=actor)
    return {"changed": True, "role": action.role}


def _promote(ctx: Context, action: PromoteAction, actor: str) -> dict[str, Any]:
    """The version answers alone: the champion reference follows the alias, this version's canary
    and shadow routes go."""
    assert action.deployment is not None
    spec = _spec(ctx, action.deployment)
    champion = f"{ctx.model}@{action.alias}"
    wanted = spec.model_copy(
        update={
            "champion": champion,
            "challengers": {k: v for k, v in spec.challengers.items() if not _mine(ctx, k)},
            "shadows": [s for s in spec.shadows if not _mine(ctx, s)],
        }
    )
    if wanted == spec:
        return {"changed": False}
    ctx.deployments.deploy(action.deployment, wanted, actor=actor)
    return {"changed": True, "champion": champion}
