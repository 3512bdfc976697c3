"""Deployment routes: create and change route sets, canary steps, rollback, history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field

from modelsteward.api.deps import Reader, Writer, needs
from modelsteward.api.json_route import StrictJSONRoute
from modelsteward.domain.records import Deployment, DeploymentRevision

router = APIRouter(prefix="/api/v1/deployments", tags=["deployments"], route_class=StrictJSONRoute)


class DeployRequest(BaseModel):
    """A route set, as ``Steward.deploy`` takes it."""

    model_config = ConfigDict(extra="forbid")

    champion: str | None = Field(default=None, description="the reference that answers, e.g. credit-risk@production")
    challengers: dict[str, float] = Field(default_factory=dict, description="reference -> share of traffic")
    shadows: list[str] = Field(default_factory=list, description="references that get a copy of each request")
    sticky_key: str | None = Field(default=None, description="a request field whose hash picks the arm")
    pipeline: dict[str, Any] | str | None = Field(default=None, description="a pipeline definition (object or YAML)")
    log_predictions: bool = True
    description: str = ""


class TrafficRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    challengers: dict[str, float] = Field(description="reference -> new share, e.g. {'credit-risk@challenger': 0.25}")


@router.get("", response_model=list[Deployment], summary="List deployments", **needs("catalog.read"))
def list_deployments(st: Reader, status: Annotated[str | None, Query(pattern="^(active|retired)$")] = None) -> Any:
    return st.list_deployments(status=status)


@router.get(
    "/{name}",
    response_model=Deployment,
    summary="A deployment and its arms as they resolve now",
    **needs("catalog.read"),
)
def get_deployment(st: Reader, name: str) -> Any:
    return st.get_deployment(name)


@router.put(
    "/{name}",
    response_model=Deployment,
    summary="Create or change a deployment's route set",
    **needs("deployment.manage"),
)
def deploy(st: Writer, name: str, request: DeployRequest) -> Any:
    return st.deploy(
        name,
        request.champion,
        challengers=request.challengers,
        shadows=request.shadows,
        sticky_key=request.sticky_key,
        pipeline=request.pipeline,
        log_predictions=request.log_predictions,
        description=request.description,
    )


@router.put(
    "/{name}/traffic",
    response_model=Deployment,
    summary="Change the challengers' shares (canary step)",
    **needs("deployment.manage"),
)
def set_traffic(st: Writer, name: str, request: TrafficRequest) -> Any:
    return st.set_traffic(name, request.challengers)


@router.post(
    "/{name}/rollback",
    response_model=Deployment,
    summary="Back to the route set before the last change",
    **needs("deployment.manage"),
)
def rollback(st: Writer, name: str, _body: Annotated[dict[str, Any] | None, Body()] = None) -> Any:
    return st.rollback(name)


@router.delete(
    "/{name}",
    response_model=Deployment,
    summary="Stop serving a deployment (history stays)",
    **needs("deployment.manage"),
)
def undeploy(st: Writer, name: str) -> Any:
    return st.undeploy(name)


@router.get(
    "/{name}/history",
    response_model=list[DeploymentRevision],
    summary="Revisions, newest first",
    **needs("catalog.read"),
)
def history(st: Reader, name: str) -> Any:
    return st.deployment_history(name)
