"""Compliance routes: suites, runs of them on versions, stored importances, per-prediction explanations, and the
auditor's report (JSON, HTML or PDF, at any past date)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from modelsteward.api.deps import Reader, Writer, needs
from modelsteward.api.json_route import StrictJSONRoute
from modelsteward.api.params import RowId, VersionNumber
from modelsteward.api.payloads import frame_from_json
from modelsteward.domain.compliance import ComplianceRun, StoredSuite, TestResult, parse_suite
from modelsteward.domain.explain import Explanation
from modelsteward.domain.refs import check_name
from modelsteward.domain.report import Report
from modelsteward.errors import InvalidArgument

router = APIRouter(prefix="/api/v1", route_class=StrictJSONRoute)


class SuiteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    definition: dict[str, Any] | str = Field(description="the suite as a mapping or as YAML text")


class RunBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: str = Field(description="the version: name/3 or name@alias", examples=["credit-risk@production"])
    suite: dict[str, Any] | str = Field(description="a stored suite's name, or a definition (mapping or YAML text)")
    data: dict[str, Any] | None = Field(
        default=None,
        description="held-out data overriding the suite's: {'instances': [...]} or {'dataframe_split': {...}}",
    )


@router.put(
    "/compliance/suites/{name}",
    response_model=StoredSuite,
    summary="Store a compliance suite",
    **needs("compliance.define"),
)
def put_suite(st: Writer, name: str, body: SuiteBody) -> Any:
    check_name(name)
    given = body.definition
    suite = parse_suite(given if isinstance(given, str) else {"name": name, **given}, source="definition")
    if suite.name != name:
        raise InvalidArgument(f"the suite is named {suite.name!r} but was sent to {name!r}", details={"field": "name"})
    return st.put_compliance_suite(suite)


@router.get(
    "/compliance/suites", response_model=list[StoredSuite], summary="Stored compliance suites", **needs("catalog.read")
)
def list_suites(st: Reader) -> Any:
    return st.list_compliance_suites()


@router.post(
    "/compliance/runs",
    response_model=ComplianceRun,
    status_code=201,
    summary="Run a suite on a version",
    **needs("compliance.run"),
)
def run_suite(st: Writer, body: RunBody) -> Any:
    data = frame_from_json(body.data) if body.data is not None else None
    return st.run_compliance(body.ref, body.suite, data=data)


@router.get(
    "/compliance/runs",
    response_model=list[ComplianceRun],
    summary="Runs of suites, newest first",
    **needs("catalog.read"),
)
def list_runs(
    st: Reader,
    ref: Annotated[str | None, Query(description="a model, or a version: name/3, name@alias")] = None,
    suite: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    return st.compliance_runs(ref, suite=suite, limit=limit)


@router.get(
    "/compliance/runs/{run_id}",
    response_model=ComplianceRun,
    summary="One run with every figure",
    **needs("catalog.read"),
)
def get_run(st: Reader, run_id: RowId) -> Any:
    return st.get_compliance_run(run_id)


@router.get(
    "/models/{name}/versions/{version}/importance",
    response_model=TestResult,
    summary="Global feature importances stored with a version",
    **needs("catalog.read"),
)
def importance(st: Reader, name: str, version: VersionNumber) -> Any:
    check_name(name)
    return st.feature_importance(f"{name}/{version}")


@router.post(
    "/deployments/{name}/explain",
    response_model=list[Explanation],
    summary="Explain predictions of a deployment's champion: SHAP values per input, or the rule that fired",
    **needs("inference.predict"),
)
def explain(
    st: Reader,
    name: str,
    body: Annotated[dict[str, Any], Body(examples=[{"instances": [{"income": 52000, "age": 41}]}])],
) -> Any:
    check_name(name)
    frame = frame_from_json(body)
    if len(frame) > 100:
        raise InvalidArgument(f"explain at most 100 rows per request, not {len(frame)}", details={"field": "instances"})
    return st.explain(name, frame)


@router.get(
    "/audit/report",
    summary="The auditor's report of a version, as of a date (JSON, HTML or PDF)",
    **needs("audit.report"),
)
def audit_report(
    st: Reader,
    ref: Annotated[str, Query(description="name/3 or name@alias", examples=["credit-risk@production"])],
    as_of: Annotated[datetime | None, Query(description="ISO date or time; an alias resolves as it was then")] = None,
    format: Annotated[Literal["json", "html", "pdf"], Query()] = "json",
) -> Any:
    report: Report = st.audit_report(ref, as_of=as_of)
    if format == "json":
        return Response(report.model_dump_json(), media_type="application/json")
    from modelsteward.governance.report_render import render_html, render_pdf

    filename = f"{report.subject.replace('/', '-v')}-report.{format}"
    disposition = {"content-disposition": f'attachment; filename="{filename}"'}
    if format == "html":
        return Response(render_html(report), media_type="text/html; charset=utf-8", headers=disposition)
    return Response(render_pdf(report), media_type="application/pdf", headers=disposition)
