"""The dashboard's work queues: the approvals inbox (sign or reject a transition), alerts (acknowledge, resolve),
retraining jobs with their logs, and the audit trail with its verification and export."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import Response, StreamingResponse

from modelsteward.domain.lifecycle import Run
from modelsteward.errors import InvalidArgument, StewardError
from modelsteward.governance.permissions import needs
from modelsteward.local_steward import LocalSteward
from modelsteward.web.pages import back, nav, page, render
from modelsteward.web.session import check_csrf, viewer

router = APIRouter(include_in_schema=False)  # included under /ui by routes.py
ALERT_STATUSES = ("firing", "acknowledged", "resolved")
JOB_STATUSES = ("running", "succeeded", "failed", "timed_out")
DECIDED = ("done", "rejected")  # runs someone signed or turned down: the inbox's history
RECENT = 20
EVENT_LIMITS = (50, 100, 200, 500)

nav("/ui/approvals", "Approvals")
nav("/ui/alerts", "Alerts")
nav("/ui/jobs", "Jobs")
nav("/ui/audit", "Audit trail")


def brief(value: Any, width: int = 160) -> str:
    """Evidence or an event's details on one line, cut at ``width`` characters."""
    if value is None:
        text = "—"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, dict):
        text = ", ".join(f"{k}={brief(v, width)}" for k, v in value.items())
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(brief(v, width) for v in value) + "]"
    else:
        text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


# -- approvals ------------------------------------------------------------------------------------------


def _requirements(st: LocalSteward, runs: list[Run]) -> dict[int, list[dict[str, Any]]]:
    """Per run: each role its transition needs, how many signatures, and how many it has (accepted)."""
    definitions: dict[str, Any] = {}
    needed: dict[int, list[dict[str, Any]]] = {}
    for run in runs:
        if run.lifecycle not in definitions:
            try:
                definitions[run.lifecycle] = st.get_lifecycle(run.lifecycle).definition
            except StewardError:  # the definition is gone: show the run without its requirements
                definitions[run.lifecycle] = None
        defn = definitions[run.lifecycle]
        try:
            approvals = defn.transition(run.transition).approvals if defn is not None else []
        except KeyError:  # redefined since the run started
            approvals = []
        needed[run.id] = [
            {"role": a.role, "count": a.count,
             "signed": sum(1 for s in run.approvals if s.accepted and s.decision == "approve" and s.role == a.role)}
            for a in approvals
        ]  # fmt: skip
    return needed


def _default_role(st: LocalSteward, run: Run, needs_: list[dict[str, Any]]) -> str | None:
    """The role the form offers first: one still missing that the viewer holds, else the first missing."""
    missing = [n["role"] for n in needs_ if n["signed"] < n["count"]] or [n["role"] for n in needs_]
    held = [r for r in missing if st.has_role(st.actor, r, model=run.model)]
    return (held or missing or [None])[0]


@router.get("/approvals", **needs("catalog.read"))
@page
async def approvals(request: Request) -> Response:
    st = viewer(request)
    waiting = st.lifecycle_runs(status="waiting_approval", limit=100)
    decided = sorted(
        (r for status in DECIDED for r in st.lifecycle_runs(status=status, limit=RECENT) if r.approvals),
        key=lambda r: r.updated_at,
        reverse=True,
    )[:RECENT]
    needed = _requirements(st, waiting + decided)
    preferred = {r.id: _default_role(st, r, needed[r.id]) for r in waiting}
    return render(request, st, "approvals.html", title="Approvals", waiting=waiting, decided=decided,
                  needed=needed, preferred=preferred, brief=brief)  # fmt: skip


async def _decide(request: Request, decision: str, ref: str, role: str, comment: str, csrf: str) -> Response:
    st = viewer(request)
    check_csrf(request, csrf)
    if decision == "approve":
        run = st.approve(ref, role=role, comment=comment.strip())
    else:
        run = st.reject(ref, role=role, comment=comment.strip())
    name = f"{run.model}/{run.version}"
    if run.status == "waiting_approval":
        note = f"Signed {name} as {role}: the transition {run.transition} still waits for approval."
    elif run.status == "rejected":
        note = f"Rejected {name} ({run.transition}): it stays in {run.from_stage}."
    elif run.status == "done":
        note = f"Approved {name}: it moved from {run.from_stage} to {run.to_stage}."
    else:
        note = f"Signed {name} as {role}: the run is {run.status.replace('_', ' ')}."
    return back("/ui/approvals", note=note)


@router.post("/approvals/approve", **needs("lifecycle.approve"))
@page
async def approve(
    request: Request,
    ref: Annotated[str, Form()],
    role: Annotated[str, Form()],
    comment: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    return await _decide(request, "approve", ref, role, comment, csrf)


@router.post("/approvals/reject", **needs("lifecycle.approve"))
@page
async def reject(
    request: Request,
    ref: Annotated[str, Form()],
    role: Annotated[str, Form()],
    comment: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    return await _decide(request, "reject", ref, role, comment, csrf)


# -- alerts ---------------------------------------------------------------------------------------------


def _alerts_page(status: str) -> str:
    return "/ui/alerts" + (f"?{urlencode({'status': status})}" if status in ALERT_STATUSES else "")


@router.get("/alerts", **needs("catalog.read"))
@page
async def alerts(request: Request, status: str = "") -> Response:
    st = viewer(request)
    status = status.strip()
    if status and status not in ALERT_STATUSES:
        raise InvalidArgument(f"alert status is one of {', '.join(ALERT_STATUSES)}", details={"field": "status"})
    rows = st.list_alerts(status=status or None, limit=100)
    deliveries = {a.id: st.list_deliveries(alert_id=a.id) for a in rows}
    return render(request, st, "alerts.html", title="Alerts", alerts=rows, deliveries=deliveries, chosen=status,
                  statuses=ALERT_STATUSES, brief=brief)  # fmt: skip


#: past a 64-bit integer the number would fail in the database driver (a 500) instead of here (a 422)
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post("/alerts/{alert_id}/acknowledge", **needs("alert.manage"))
@page
async def acknowledge(
    request: Request, alert_id: AlertId, csrf: Annotated[str, Form()] = "", status: Annotated[str, Form()] = ""
) -> Response:
    st = viewer(request)
    check_csrf(request, csrf)
    alert = st.acknowledge_alert(alert_id)
    return back(_alerts_page(status), note=f"Acknowledged alert {alert.id}: {alert.title}")


@router.post("/alerts/{alert_id}/resolve", **needs("alert.manage"))
@page
async def resolve(
    request: Request, alert_id: AlertId, csrf: Annotated[str, Form()] = "", status: Annotated[str, Form()] = ""
) -> Response:
    st = viewer(request)
    check_csrf(request, csrf)
    alert = st.resolve_alert(alert_id)
    return back(_alerts_page(status), note=f"Resolved alert {alert.id}: {alert.title}")


# -- jobs -----------------------------------------------------------------------------------------------


@router.get("/jobs", **needs("catalog.read"))
@page
async def jobs(request: Request, model: str = "", status: str = "") -> Response:
    st = viewer(request)
    model, status = model.strip(), status.strip()
    if status and status not in JOB_STATUSES:
        raise InvalidArgument(f"job status is one of {', '.join(JOB_STATUSES)}", details={"field": "status"})
    rows = st.list_jobs(model=model or None, status=status or None, limit=100)
    return render(request, st, "jobs.html", title="Jobs", jobs=rows, model=model, chosen=status,
                  statuses=JOB_STATUSES)  # fmt: skip


@router.get("/jobs/{job_id}", **needs("catalog.read"))
@page
async def job(request: Request, job_id: int) -> Response:
    st = viewer(request)
    found = st.get_job(job_id)
    return render(request, st, "job.html", title=f"Job {found.id}", job=found)


# -- the audit trail ------------------------------------------------------------------------------------


@router.get("/audit", **needs("audit.read"))
@page
async def audit(request: Request, model: str = "", action: str = "", actor: str = "", limit: int = 100) -> Response:
    st = viewer(request)
    filters = {"model": model.strip(), "action": action.strip(), "actor": actor.strip()}
    if limit not in EVENT_LIMITS:
        raise InvalidArgument(f"show {', '.join(map(str, EVENT_LIMITS))} events", details={"field": "limit"})
    check = st.verify_audit()
    events = st.list_events(**{k: v or None for k, v in filters.items()}, limit=limit)
    return render(request, st, "audit.html", title="Audit trail", check=check, events=events, filters=filters,
                  limit=limit, limits=EVENT_LIMITS, active=any(filters.values()), brief=brief)  # fmt: skip


@router.get("/audit/export", **needs("audit.read"))
@page
async def audit_export(request: Request, after: int = 0) -> Response:
    st = viewer(request)
    if after < 0:
        raise InvalidArgument("after is a sequence number (0 or more)", details={"field": "after"})
    lines = st.audit_lines(after=after)  # checked here, before the first byte goes out
    return StreamingResponse(lines, media_type="application/x-ndjson",
                             headers={"content-disposition": 'attachment; filename="audit-trail.jsonl"',
                                      "cache-control": "no-store"})  # fmt: skip
