"""Catalog routes: models, versions (with artifact upload and download), aliases, lineage, predict."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Form, Query, Request, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from modelsteward.api.deps import Reader, Writer, needs
from modelsteward.api.json_route import StrictJSONRoute
from modelsteward.api.params import STORE_INT_MAX, Offset, VersionNumber, VersionQuery
from modelsteward.api.payloads import frame_from_json, frame_to_records
from modelsteward.catalog.registration import from_manifest
from modelsteward.domain.records import (
    Alias,
    AuditCheck,
    Comment,
    Dataset,
    DebtPoint,
    DebtReport,
    Event,
    Lineage,
    ModelPage,
    ModelUpdate,
    ModelVersion,
    RegisteredModel,
    VersionSummary,
)
from modelsteward.domain.refs import MAX_VERSION, ModelRef, check_name
from modelsteward.errors import InvalidArgument, PayloadTooLarge

router = APIRouter(prefix="/api/v1", route_class=StrictJSONRoute)

VERSION_HEADER = "x-steward-model-version"


class VersionList(BaseModel):
    items: list[VersionSummary]
    total: int


class AliasChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=MAX_VERSION, description="the version the alias should point at")
    expected_version: int | None = Field(
        default=None, ge=1, le=MAX_VERSION, description="only move the alias if it still points here (compare-and-set)"
    )


class CommentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=10_000)
    version: int | None = Field(
        default=None, ge=1, le=MAX_VERSION, description="a version of the model, or none for the model"
    )


class PredictionResponse(BaseModel):
    model_version: str
    columns: list[str]
    predictions: list[dict[str, Any]]


def _ref(name: str, version: int | None, alias: str | None) -> str:
    check_name(name)
    if version is not None and alias is not None:
        raise InvalidArgument("give version or alias, not both", details={"field": "alias"})
    if version is not None:
        return f"{name}/{version}"
    if alias is not None:
        return str(ModelRef.parse(f"{name}@{alias}"))
    return name


def _parse_tags(tag: list[str] | None) -> dict[str, str] | None:
    if not tag:
        return None
    tags: dict[str, str] = {}
    for item in tag:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"tag filter {item!r} must look like key=value", details={"field": "tag"})
        tags[key] = value
    return tags


@router.get("/models", response_model=ModelPage, summary="List and search models", **needs("catalog.read"))
def list_models(
    st: Reader,
    kind: str | None = None,
    owner: str | None = None,
    business_unit: str | None = None,
    risk_tier: str | None = None,
    tag: Annotated[list[str] | None, Query(description="key=value, repeatable")] = None,
    q: Annotated[str | None, Query(description="search names, descriptions, owners, business units")] = None,
    limit: Annotated[int, Query(ge=0, le=1000)] = 100,
    offset: Offset = 0,
    order_by: Annotated[str, Query(pattern="^(name|updated_at|created_at)$")] = "name",
) -> ModelPage:
    return st.search_models(
        kind=kind,
        owner=owner,
        business_unit=business_unit,
        risk_tier=risk_tier,
        tags=_parse_tags(tag),
        query=q,
        limit=limit,
        offset=offset,
        order_by=order_by,
    )


@router.get(
    "/models/{name}",
    response_model=RegisteredModel,
    summary="A model with its metadata and aliases",
    **needs("catalog.read"),
)
def get_model(st: Reader, name: str) -> RegisteredModel:
    return st.get_model(name)


@router.patch(
    "/models/{name}", response_model=RegisteredModel, summary="Change a model's metadata", **needs("model.update")
)
def update_model(st: Writer, name: str, update: ModelUpdate) -> RegisteredModel:
    return st.update_model(name, **update.model_dump(exclude_none=True))


@router.get(
    "/models/{name}/versions",
    response_model=VersionList,
    summary="Versions of a model, newest first",
    **needs("catalog.read"),
)
def list_model_versions(
    st: Reader,
    name: str,
    limit: Annotated[int, Query(ge=0, le=1000)] = 100,
    offset: Offset = 0,
) -> VersionList:
    items = st.list_versions(name, limit=limit, offset=offset)
    return VersionList(items=items, total=st.count_versions(name))


@router.post(
    "/models/{name}/versions",
    response_model=ModelVersion,
    status_code=201,
    summary="Register a version: the artifact file plus its JSON manifest",
    **needs("model.register"),
)
def register_version(
    st: Writer,
    request: Request,
    name: str,
    artifact: Annotated[UploadFile, File(description="the artifact bytes a kind wrote")],
    manifest: Annotated[str, Form(description="RegistrationManifest as JSON")],
) -> ModelVersion:
    limit = request.app.state.settings.max_upload_bytes
    data = artifact.file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(
            f"the artifact is larger than the server's limit of {limit} bytes", details={"field": "artifact"}
        )
    return st.register_upload(from_manifest(name, manifest, data))


@router.get(
    "/models/{name}/versions/{version}", response_model=ModelVersion, summary="One version", **needs("catalog.read")
)
def get_version(st: Reader, name: str, version: VersionNumber) -> ModelVersion:
    return st.get_version(f"{check_name(name)}/{version}")


@router.get(
    "/models/{name}/versions/{version}/artifact",
    summary="Download a version's artifact (hash-checked on the way out)",
    response_class=Response,
    **needs("model.download"),
)
def download_artifact(st: Reader, name: str, version: VersionNumber) -> Response:
    record, data = st.artifact_bytes(f"{check_name(name)}/{version}")
    return Response(
        content=data,
        media_type="application/octet-stream",
        headers={"x-steward-sha256": record.artifact.sha256, VERSION_HEADER: record.ref},
    )


@router.get(
    "/models/{name}/versions/{version}/lineage",
    response_model=Lineage,
    summary="Where a version came from",
    **needs("catalog.read"),
)
def get_lineage(st: Reader, name: str, version: VersionNumber) -> Lineage:
    return st.get_lineage(f"{check_name(name)}/{version}")


@router.get("/models/{name}/aliases", response_model=list[Alias], summary="A model's aliases", **needs("catalog.read"))
def list_aliases(st: Reader, name: str) -> list[Alias]:
    return st.list_aliases(name)


@router.put(
    "/models/{name}/aliases/{alias}", response_model=Alias, summary="Point an alias at a version", **needs("alias.set")
)
def set_alias(st: Writer, name: str, alias: str, change: AliasChange) -> Alias:
    return st.set_alias(name, alias, change.version, expected_version=change.expected_version)


@router.delete("/models/{name}/aliases/{alias}", status_code=204, summary="Remove an alias", **needs("alias.set"))
def delete_alias(st: Writer, name: str, alias: str) -> Response:
    st.delete_alias(name, alias)
    return Response(status_code=204)


@router.get(
    "/resolve",
    response_model=ModelVersion,
    summary="Resolve name, name/3 or name@alias to a version",
    **needs("catalog.read"),
)
def resolve(st: Reader, ref: Annotated[str, Query(description="name, name/VERSION or name@ALIAS")]) -> ModelVersion:
    return st.get_version(ref)


@router.get(
    "/versions", response_model=VersionList, summary="Versions across the whole catalog", **needs("catalog.read")
)
def list_all_versions(
    st: Reader,
    limit: Annotated[int, Query(ge=0, le=10_000)] = 100,
    offset: Offset = 0,
) -> VersionList:
    return VersionList(items=st.list_versions(None, limit=limit, offset=offset), total=st.count_versions(None))


@router.get(
    "/datasets/{content_hash}", response_model=Dataset, summary="A data set's fingerprint", **needs("catalog.read")
)
def get_dataset(st: Reader, content_hash: str) -> Dataset:
    return st.get_dataset(content_hash)


@router.get(
    "/debt",
    response_model=DebtReport,
    summary="Model debt per model, worst first, and for the catalog",
    **needs("catalog.read"),
)
def model_debt(st: Reader, model: str | None = None, max_age: str = "180d", stale_after: str = "2d") -> Any:
    return st.model_debt(model, max_age=max_age, stale_after=stale_after)


@router.get(
    "/debt/history",
    response_model=list[DebtPoint],
    summary="Model debt over the last days, one point per daily snapshot, oldest first",
    **needs("catalog.read"),
)
def debt_history(st: Reader, days: Annotated[int, Query(ge=1, le=3660)] = 90) -> Any:
    return st.debt_history(days)


class DebtSnapshot(BaseModel):
    model_config = ConfigDict(extra="forbid")

    day: date | None = Field(default=None, description="the day the snapshot is for (default: today, UTC)")


class DebtSnapshotTaken(BaseModel):
    models: int


@router.post(
    "/debt/snapshots",
    response_model=DebtSnapshotTaken,
    summary="Take the day's snapshot of model debt (replacing one taken earlier that day)",
    **needs("monitor.run"),
)
def record_debt(st: Writer, request: Annotated[DebtSnapshot | None, Body()] = None) -> Any:
    return DebtSnapshotTaken(models=st.record_debt(request.day if request else None))


@router.get(
    "/audit/verify", response_model=AuditCheck, summary="Check the audit trail's hash chain", **needs("audit.read")
)
def verify_audit(st: Reader) -> Any:
    return st.verify_audit()


@router.get("/audit/export", summary="The audit trail as JSON Lines (for a SIEM), oldest first", **needs("audit.read"))
def export_audit(st: Reader, after: Annotated[int, Query(ge=0, le=STORE_INT_MAX)] = 0) -> Any:
    from fastapi.responses import StreamingResponse

    return StreamingResponse(st.audit_lines(after=after), media_type="application/x-ndjson")


@router.get("/events", response_model=list[Event], summary="The newest audit events", **needs("audit.read"))
def list_events(
    st: Reader,
    model: str | None = None,
    action: Annotated[str | None, Query(description="one action, or a family: lifecycle.*")] = None,
    actor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Event]:
    return st.list_events(model=model, action=action, actor=actor, limit=limit)


@router.post(
    "/models/{name}/predict",
    response_model=PredictionResponse,
    summary="Predict with a version (latest, ?version=3 or ?alias=production)",
    **needs("inference.predict"),
)
def predict(
    st: Reader,
    response: Response,
    name: str,
    body: Annotated[dict[str, Any], Body(examples=[{"instances": [{"income": 52000, "age": 41}]}])],
    version: VersionQuery = None,
    alias: str | None = None,
) -> PredictionResponse:
    model = st.load_model(_ref(name, version, alias))
    output = model.predict(frame_from_json(body))
    response.headers[VERSION_HEADER] = model.ref
    return PredictionResponse(
        model_version=model.ref,
        columns=[str(c) for c in output.columns],
        predictions=frame_to_records(output),
    )


@router.post("/models/{name}/comments", response_model=Comment, status_code=201,
             summary="Comment on a model or a version", **needs("comment.write"))  # fmt: skip
def add_comment(st: Writer, name: str, body: CommentBody) -> Any:
    check_name(name)
    return st.add_comment(name, body.text, version=body.version)


@router.get("/models/{name}/comments", response_model=list[Comment], summary="A model's comments, newest first",
            **needs("catalog.read"))  # fmt: skip
def list_comments(
    st: Reader, name: str, version: VersionQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Any:  # fmt: skip
    check_name(name)
    return st.list_comments(name, version=version, limit=limit)


@router.get("/models/{name}/history", response_model=list[Event], summary="A model's audit events, newest first",
            **needs("catalog.read"))  # fmt: skip
def model_history(st: Reader, name: str, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
    check_name(name)
    return st.model_history(name, limit=limit)
