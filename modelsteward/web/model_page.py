"""The model page (/ui/models/NAME): a model's card, versions and lineage, where it stands in its life cycle, the
deployments that route to it, its compliance results and drivers, its timeline of events and comments, the
auditor's report to download, and the actions the viewer may take (each one facade call, then back here)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from modelsteward.domain.lifecycle_svg import arrows, describe, lifecycle_svg, summary
from modelsteward.domain.records import Comment, Deployment, Event, RegisteredModel
from modelsteward.domain.refs import MAX_VERSION, ModelRef, named_model
from modelsteward.errors import InvalidArgument, NotFound
from modelsteward.governance.permissions import needs
from modelsteward.web.pages import back, page, render
from modelsteward.web.session import check_csrf, viewer

# no prefix of its own: routes.py includes it into its "/ui" router (a "/ui" prefix here would give /ui/ui/...)
router = APIRouter(include_in_schema=False)
TIMELINE = 100


@router.get("/models/{name}", **needs("catalog.read"))
@page
async def model_page(request: Request, name: str) -> Response:
    st = viewer(request)
    model = st.get_model(name)
    versions = st.list_versions(name)
    status = st.lifecycle_status(name)
    lifecycle = st.get_lifecycle(status.lifecycle).definition if status.lifecycle else None
    deployments = [d for d in st.list_deployments() if name in d.spec.models]
    production = model.aliases.get("production")
    importance = None
    if production is not None:
        try:
            importance = st.feature_importance(f"{name}/{production}")
        except NotFound:  # no explainability test has run on it yet: the page says so
            importance = None
    features = (importance.figures.get("features") or []) if importance is not None else []
    stage_of = {p.version: p.stage for p in status.positions}
    moves = []
    if lifecycle is not None:
        for p in sorted(status.positions, key=lambda p: -p.version):
            for t in lifecycle.transitions:
                if p.stage in t.from_ or "*" in t.from_:
                    moves.append({"version": p.version, "stage": p.stage, "transition": t, "about": describe(t)})
    return render(
        request, st, "model.html", title=name,
        model=model, versions=versions, aliases=st.list_aliases(name), life=status, lifecycle=lifecycle,
        diagram=lifecycle_svg(lifecycle, status, id="lifecycle") if lifecycle is not None else None,
        diagram_summary=summary(lifecycle, status) if lifecycle is not None else None,
        transitions=arrows(lifecycle) if lifecycle is not None else [], stage_of=stage_of, moves=moves,
        deployments=[_deployment_view(d, model, [v.version for v in versions]) for d in deployments],
        runs=st.compliance_runs(name, limit=20), importance=importance, features=features,
        importance_figure=_importance_figure(features, importance.figures.get("scoring")) if features else None,
        timeline=_timeline(st.model_history(name, limit=TIMELINE), st.list_comments(name, limit=TIMELINE)),
        report_ref=f"{name}@production" if production is not None else f"{name}/{model.latest_version}",
    )  # fmt: skip


@router.get("/models/{name}/report", **needs("audit.report"))
@page
async def report(
    request: Request,
    name: str,
    format: Annotated[Literal["html", "pdf"], Query()] = "html",
    ref: Annotated[str | None, Query()] = None,
) -> Response:
    """The auditor's report as a download (the API's report route wants a bearer token, the page a session)."""
    st = viewer(request)
    ref = ref or f"{name}@production"
    if ModelRef.parse(ref).name != name:
        raise InvalidArgument(f"{ref!r} is not a version of {name!r}", details={"field": "ref"})
    document = st.audit_report(ref)
    from modelsteward.governance.report_render import render_html, render_pdf

    filename = f"{document.subject.replace('/', '-v')}-report.{format}"
    headers = {"content-disposition": f'attachment; filename="{filename}"', "cache-control": "no-store"}
    if format == "html":
        return Response(render_html(document), media_type="text/html; charset=utf-8", headers=headers)
    return Response(render_pdf(document), media_type="application/pdf", headers=headers)


# Bounded like the API's version numbers: a number past what the store holds is a 422 here, not a 500 there.
FormVersion = Annotated[int, Form(ge=1, le=MAX_VERSION)]


@router.post("/models/{name}/alias", **needs("alias.set"))
@page
async def move_alias(
    request: Request,
    name: str,
    alias: Annotated[str, Form()],
    version: FormVersion,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    moved = viewer(request).set_alias(name, alias.strip(), version)
    return back(f"/ui/models/{name}", note=f"{name}@{moved.alias} now points at v{moved.version}")


@router.post("/models/{name}/rollback", **needs("deployment.manage"))
@page
async def rollback(
    request: Request, name: str, deployment: Annotated[str, Form()], csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(request, csrf)
    done = viewer(request).rollback(deployment)
    return back(f"/ui/models/{name}", note=f"deployment {done.name} rolled back (revision {done.revision})")


@router.post("/models/{name}/traffic", **needs("deployment.manage"))
@page
async def traffic(
    request: Request,
    name: str,
    deployment: Annotated[str, Form()],
    ref: Annotated[str, Form()],
    weight: Annotated[float, Form()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    st = viewer(request)
    done = st.set_share(deployment, ref, weight)  # the other challengers keep their shares
    return back(f"/ui/models/{name}", note=f"{ref} now takes {weight:.0%} of {done.name}'s traffic")


@router.post("/models/{name}/advance", **needs("lifecycle.request"))
@page
async def advance(
    request: Request,
    name: str,
    version: FormVersion,
    to: Annotated[str, Form()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    run = viewer(request).advance(f"{name}/{version}", to)
    move = f"{run.transition} of v{run.version} ({run.from_stage} → {run.to_stage})"
    return back(f"/ui/models/{name}", note=f"{move}: {_words(run.status)}")


@router.post("/models/{name}/comments", **needs("comment.write"))
@page
async def comment(
    request: Request,
    name: str,
    text: Annotated[str, Form()],
    version: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    if version.strip() and not version.strip().isdigit():
        raise InvalidArgument("the version is a number", details={"field": "version"})
    added = viewer(request).add_comment(name, text, version=int(version) if version.strip() else None)
    on = f"v{added.version}" if added.version is not None else name
    return back(f"/ui/models/{name}", note=f"comment added on {on}")


# -- what the template shows ---------------------------------------------------------------------------------


def _words(value: str) -> str:
    return value.replace("_", " ")


def _deployment_view(d: Deployment, model: RegisteredModel, versions: list[int]) -> dict[str, Any]:
    """A deployment with its arms (a pipeline's: its steps that call the model), and the references a canary form
    offers: its challengers of this model with their shares, then the model's versions that no arm serves."""
    arms = [{"role": a.role, "ref": a.ref, "version": a.version, "weight": a.weight} for a in d.arms]
    for step, ref in d.spec.model_steps.items():
        if named_model(ref) != model.name:
            continue
        parsed = ModelRef.parse(ref)
        resolved = parsed.version or (model.aliases.get(parsed.alias) if parsed.alias else model.latest_version)
        version = f"{model.name}/{resolved}" if resolved else "—"
        arms.append({"role": f"pipeline step {step}", "ref": ref, "version": version, "weight": None})
    candidates: list[tuple[str, float | None]] = []
    if d.spec.pipeline is None:
        candidates = [(ref, w) for ref, w in d.spec.challengers.items() if named_model(ref) == model.name]
        serving = {a.version for a in d.arms} | set(d.spec.challengers)
        candidates += [(f"{model.name}/{v}", None) for v in versions if f"{model.name}/{v}" not in serving]
    return {"deployment": d, "arms": arms, "candidates": candidates}


def _importance_figure(features: list[dict[str, Any]], scoring: str | None) -> str:
    """A horizontal bar chart of the global importances (largest on top), as Plotly figure JSON."""
    ranked = sorted(features, key=lambda f: f.get("importance") or 0)
    figure = {
        "data": [{
            "type": "bar", "orientation": "h", "x": [f.get("importance") for f in ranked],
            "y": [f.get("feature") for f in ranked], "marker": {"color": "#1f5fae"},
            "error_x": {"type": "data", "array": [f.get("std") or 0 for f in ranked], "visible": True},
            "hovertemplate": "%{y}: %{x:.4f}<extra></extra>",
        }],
        "layout": {
            "margin": {"l": 150, "r": 20, "t": 10, "b": 40}, "height": max(240, 28 * len(ranked) + 60),
            "xaxis": {"title": {"text": f"drop in {scoring or 'score'} when shuffled"}, "zeroline": True},
            "yaxis": {"automargin": True}, "plot_bgcolor": "#fff", "paper_bgcolor": "#fff",
        },
    }  # fmt: skip
    # "</" cannot end the script element the figure sits in
    return json.dumps(figure).replace("</", "<\\/")


def _timeline(events: list[Event], comments: list[Comment]) -> list[dict[str, Any]]:
    """Events and comments, newest first; a comment's own audit event is left out (the comment shows itself)."""
    items: list[tuple[datetime, dict[str, Any]]] = []
    for e in events:
        if e.action == "comment.added":
            continue
        items.append((e.at, {"kind": "event", "at": e.at, "who": e.actor, "version": e.version, "action": e.action,
                             "text": _event_text(e)}))  # fmt: skip
    for c in comments:
        items.append((c.created_at, {"kind": "comment", "at": c.created_at, "who": c.author, "version": c.version,
                                     "action": "comment", "text": c.text}))  # fmt: skip
    items.sort(key=lambda item: item[0], reverse=True)
    return [item for _, item in items[:TIMELINE]]


def _event_text(e: Event) -> str:
    """An audit event in a line: the details that say what happened."""
    d = e.details
    if e.action == "alias.set":
        return (
            f"{d.get('alias')}: v{d.get('before')} → v{d.get('after')}"
            if d.get("before")
            else f"{d.get('alias')} → v{d.get('after')}"
        )
    if "from" in d and "to" in d:
        by = f" (replaced by v{d['by_version']})" if d.get("by_version") else ""
        move = f"{d['from']} → {d['to']}{by}"
        return f"{d['transition']}: {move}" if "transition" in d else move
    if "gates" in d and isinstance(d["gates"], list):
        failed = [g.get("gate") for g in d["gates"] if isinstance(g, dict) and not g.get("passed")]
        return f"{d.get('transition', '')}: " + (f"failed {', '.join(map(str, failed))}" if failed else "all passed")
    if "role" in d and "transition" in d:
        said = f': "{d["comment"]}"' if d.get("comment") else ""
        return f"{d['transition']} as {d['role']}{said}" + (f" ({d['reason']})" if d.get("reason") else "")
    if e.action == "compliance.run":
        return f"{d.get('suite')}: {d.get('status')}" + (f" ({', '.join(d['failed'])})" if d.get("failed") else "")
    if "error" in d and d["error"]:
        return str(d["error"])
    shown = [f"{k} {v}" for k, v in d.items() if isinstance(v, (str, int, float)) and len(str(v)) <= 80][:4]
    return ", ".join(shown)
