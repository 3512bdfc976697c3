"""Life-cycle routes: definitions, model status, transitions, gates, approvals, runs and role grants."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from modelsteward.api.deps import Admin, Reader, Writer, needs
from modelsteward.api.json_route import StrictJSONRoute
from modelsteward.api.params import RowId
from modelsteward.domain.lifecycle import (
    GateCheck,
    Job,
    Lifecycle,
    LifecycleDefinition,
    LifecycleStatus,
    Role,
    RoleGrant,
    Run,
)

router = APIRouter(prefix="/api/v1", tags=["life cycles"], route_class=StrictJSONRoute)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApplyRequest(_Body):
    definition: LifecycleDefinition | None = None
    yaml: str | None = Field(default=None, description="the definition as YAML text (errors then name the line)")


class AssignRequest(_Body):
    lifecycle: str
    parameters: dict[str, float] | None = None


class AdvanceRequest(_Body):
    ref: str = Field(description="name/3, name@alias, or name (the newest version that can make the move)")
    to: str


class DecisionRequest(_Body):
    ref: str
    role: Role
    comment: str = Field(default="", max_length=10_000)


class CancelRequest(_Body):
    reason: str = Field(default="", max_length=10_000)


class GrantRequest(_Body):
    principal: str = Field(min_length=1, max_length=256)
    role: Role
    model: str | None = None
    business_unit: str | None = None


@router.post(
    "/lifecycles",
    response_model=Lifecycle,
    summary="Apply a life-cycle definition (JSON or YAML text)",
    **needs("lifecycle.define"),
)
def apply_lifecycle(st: Writer, request: ApplyRequest) -> Any:
    from modelsteward.errors import InvalidArgument

    if (request.definition is None) == (request.yaml is None):
        raise InvalidArgument("send exactly one of 'definition' and 'yaml'", details={"field": "definition"})
    return st.apply_lifecycle(request.yaml if request.yaml is not None else request.definition)  # type: ignore[arg-type]


@router.get(
    "/lifecycles", response_model=list[Lifecycle], summary="List life-cycle definitions", **needs("catalog.read")
)
def list_lifecycles(st: Reader) -> Any:
    return st.list_lifecycles()


@router.get("/lifecycles/{name}", response_model=Lifecycle, summary="A life-cycle definition", **needs("catalog.read"))
def get_lifecycle(st: Reader, name: str) -> Any:
    return st.get_lifecycle(name)


@router.get(
    "/lifecycles/{name}/diagram",
    response_class=PlainTextResponse,
    summary="The definition as a Mermaid state diagram (with ?model=, its versions marked)",
    **needs("catalog.read"),
)
def lifecycle_diagram(st: Reader, name: str, model: str | None = None) -> Any:
    return PlainTextResponse(st.lifecycle_diagram(name, model=model), media_type="text/plain")


@router.put(
    "/models/{name}/lifecycle",
    response_model=LifecycleStatus,
    summary="Put a model under a life cycle",
    **needs("lifecycle.define"),
)
def assign_lifecycle(st: Writer, name: str, request: AssignRequest) -> Any:
    return st.assign_lifecycle(name, request.lifecycle, parameters=request.parameters)


@router.get(
    "/models/{name}/lifecycle",
    response_model=LifecycleStatus,
    summary="A model's life-cycle status",
    **needs("catalog.read"),
)
def lifecycle_status(st: Reader, name: str) -> Any:
    return st.lifecycle_status(name)


@router.post(
    "/lifecycle/advance", response_model=Run, summary="Ask to move a version to a stage", **needs("lifecycle.request")
)
def advance(st: Writer, request: AdvanceRequest) -> Any:
    return st.advance(request.ref, request.to)


@router.post(
    "/lifecycle/gates",
    response_model=GateCheck,
    summary="Evaluate a move's gates without making it",
    **needs("compliance.run"),
)
def check_gates(st: Reader, request: AdvanceRequest) -> Any:
    return st.check_gates(request.ref, request.to)


@router.post(
    "/lifecycle/approve",
    response_model=Run,
    summary="Approve the transition a version waits on",
    **needs("lifecycle.approve"),
)
def approve(st: Writer, request: DecisionRequest) -> Any:
    return st.approve(request.ref, role=request.role, comment=request.comment)


@router.post(
    "/lifecycle/reject",
    response_model=Run,
    summary="Reject the transition a version waits on",
    **needs("lifecycle.approve"),
)
def reject(st: Writer, request: DecisionRequest) -> Any:
    return st.reject(request.ref, role=request.role, comment=request.comment)


@router.get(
    "/lifecycle/runs", response_model=list[Run], summary="Life-cycle runs, newest first", **needs("catalog.read")
)
def lifecycle_runs(
    st: Reader,
    model: str | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Any:
    return st.lifecycle_runs(model=model, status=status, limit=limit)


@router.get(
    "/lifecycle/runs/{run_id}", response_model=Run, summary="One life-cycle run with its steps", **needs("catalog.read")
)
def get_run(st: Reader, run_id: RowId) -> Any:
    return st.get_lifecycle_run(run_id)


@router.post(
    "/lifecycle/runs/{run_id}/cancel", response_model=Run, summary="Cancel an open run", **needs("lifecycle.cancel")
)
def cancel_run(st: Writer, run_id: RowId, request: Annotated[CancelRequest | None, Body()] = None) -> Any:
    return st.cancel_lifecycle_run(run_id, reason=request.reason if request else "")


@router.get("/roles", response_model=list[RoleGrant], summary="Role grants", **needs("identity.read"))
def list_grants(st: Reader, principal: str | None = None) -> Any:
    return st.list_grants(principal)


@router.post(
    "/roles",
    response_model=RoleGrant,
    summary="Grant a role (globally, for a model or a business unit)",
    **needs("identity.admin"),
)
def grant_role(st: Admin, request: GrantRequest) -> Any:
    return st.grant_role(request.principal, request.role, model=request.model, business_unit=request.business_unit)


@router.post("/roles/revoke", status_code=204, summary="Revoke a role grant", **needs("identity.admin"))
def revoke_role(st: Admin, request: GrantRequest) -> None:
    st.revoke_role(request.principal, request.role, model=request.model, business_unit=request.business_unit)


@router.get("/jobs", response_model=list[Job], summary="Retraining jobs, newest first", **needs("catalog.read"))
def list_jobs(
    st: Reader,
    model: str | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Any:
    return st.list_jobs(model=model, status=status, limit=limit)


@router.get("/jobs/{job_id}", response_model=Job, summary="One retraining job with its log", **needs("catalog.read"))
def get_job(st: Reader, job_id: RowId) -> Any:
    return st.get_job(job_id)
