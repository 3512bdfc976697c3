"""The auditor's report of a model version at a point in time, filled from the facade's public methods (so the
embedded and the remote bodies give the same report): the model card, provenance, data, performance, every
compliance test, approvals, deployment and alias history, monitoring and alerts, and the audit trail's check,
with a table mapping its sections to SR 11-7 and to the EU AI Act's Annex IV."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from modelsteward.domain.compliance import ComplianceRun, TestResult
from modelsteward.domain.records import Event, ModelVersion
from modelsteward.domain.refs import ModelRef, named_model
from modelsteward.domain.report import (
    Block,
    Chart,
    Facts,
    Marker,
    Report,
    Requirement,
    Section,
    Series,
    Status,
    Table,
    Text,
)
from modelsteward.errors import NotFound

MAPPING: list[tuple[str, str, list[str]]] = [
    ("SR 11-7", "Model purpose, design and intended use are documented", ["model-card", "version"]),
    ("SR 11-7", "Conceptual soundness: quality and relevance of the development data", ["training-data"]),
    (
        "SR 11-7",
        "Conceptual soundness: methodology, assumptions and limitations",
        ["model-card", "version", "compliance"],
    ),
    ("SR 11-7", "Effective challenge: independent validation and approval before use", ["approvals", "compliance"]),
    ("SR 11-7", "Ongoing monitoring: process verification and benchmarking", ["monitoring", "deployments"]),
    (
        "SR 11-7",
        "Outcomes analysis: back-testing against realized outcomes",
        ["performance", "compliance", "monitoring"],
    ),
    ("SR 11-7", "Governance and controls: inventory, roles, records of changes", ["audit-trail", "approvals"]),
    ("EU AI Act Annex IV", "1. General description: intended purpose, provider, versions", ["model-card", "version"]),
    ("EU AI Act Annex IV", "2(b). Design specifications, key choices and parameters", ["version"]),
    (
        "EU AI Act Annex IV",
        "2(d). Data requirements: provenance, scope and characteristics of training data",
        ["training-data"],
    ),
    ("EU AI Act Annex IV", "2(e). Human oversight measures (Article 14)", ["approvals"]),
    (
        "EU AI Act Annex IV",
        "2(g). Validation and testing: metrics, accuracy, discriminatory impacts; test logs dated and signed",
        ["performance", "compliance"],
    ),
    (
        "EU AI Act Annex IV",
        "3. Monitoring, functioning and control; performance limits and foreseeable unintended outcomes",
        ["monitoring", "model-card"],
    ),
    ("EU AI Act Annex IV", "6. Relevant changes made through the life cycle", ["deployments", "audit-trail"]),
    ("EU AI Act Annex IV", "9. Post-market monitoring plan (Article 72)", ["monitoring"]),
]

MAX_EVENTS = 1000


def build_report(st: Any, ref: str, *, as_of: datetime | None = None) -> Report:
    """The report of the version ``ref`` names, as the store knew it at ``as_of`` (now when None)."""
    generated = datetime.now(UTC)
    when = (as_of or generated).astimezone(UTC) if (as_of is None or as_of.tzinfo) else as_of.replace(tzinfo=UTC)
    parsed = ModelRef.parse(ref)
    events = sorted(st.list_events(model=parsed.name, limit=MAX_EVENTS), key=lambda e: e.seq)
    version = _resolve(st, parsed, events, when)
    model = st.get_model(version.name)
    if version.created_at > when:
        raise NotFound(
            f"{version.ref} was registered on {version.created_at:%Y-%m-%d %H:%M} UTC, after {when:%Y-%m-%d %H:%M} UTC",
            details={"ref": ref, "as_of": when.isoformat()},
        )
    past = [e for e in events if e.at <= when]
    runs = [r for r in st.compliance_runs(version.ref, limit=200) if r.finished_at <= when]
    life = [
        r
        for r in st.lifecycle_runs(model=version.name, limit=500)
        if r.version == version.version and r.created_at <= when
    ]
    versions = [v for v in st.list_versions(version.name, limit=100) if v.created_at <= when]
    audit = st.verify_audit()
    sections = [
        _model_card(model, version),
        _version(version),
        _data(st, version),
        _performance(version, versions),
        _compliance(runs),
        _approvals(life),
        _deployments(st, version, past, when),
        _monitoring(st, version, past, when),
        _audit(audit, [e for e in past if e.version in (None, version.version)]),
    ]
    aliases_then = _aliases_at(past)
    latest_by_suite: dict[str, ComplianceRun] = {}
    for run in runs:
        latest_by_suite.setdefault(run.suite, run)
    summary = [
        ("Version", version.ref),
        ("Aliases then", ", ".join(a for a, v in sorted(aliases_then.items()) if v == version.version) or "none"),
        ("Registered", f"{version.created_at:%Y-%m-%d %H:%M} UTC by {version.created_by or 'unknown'}"),
        ("Owner", model.owner or "not recorded"),
        ("Risk tier", model.risk_tier or "not recorded"),
        *[
            (f"Compliance: {s}", f"{r.status} (run {r.id}, {r.finished_at:%Y-%m-%d})")
            for s, r in latest_by_suite.items()
        ],
        ("Approvals", f"{sum(len([a for a in r.approvals if a.accepted]) for r in life)} accepted signatures"),
        ("Audit trail", "verified" if audit.ok else f"BROKEN at event {audit.first_broken}"),
    ]
    return Report(
        title=f"Model risk report: {version.ref}",
        subject=version.ref,
        asked=f"{ref} as of {when:%Y-%m-%d %H:%M} UTC",
        as_of=when,
        generated_at=generated,
        generated_by=getattr(st, "actor", "") or "",
        summary=summary,
        sections=sections,
        mapping=[Requirement(framework=f, requirement=r, sections=s) for f, r, s in MAPPING],
    )


def _resolve(st: Any, parsed: ModelRef, events: list[Event], when: datetime) -> ModelVersion:
    """The version a reference named at ``when``: an alias is followed through its recorded moves."""
    if parsed.alias is None:
        return st.get_version(str(parsed))
    pointed: int | None = None
    for e in events:
        if e.at > when or e.details.get("alias") != parsed.alias:
            continue
        if e.action == "alias.set":
            pointed = int(e.details.get("after") or e.version or 0) or None
        elif e.action == "alias.deleted":
            pointed = None
    if pointed is None:
        raise NotFound(
            f"{parsed.name}@{parsed.alias} named no version on {when:%Y-%m-%d %H:%M} UTC",
            details={"ref": str(parsed), "as_of": when.isoformat()},
        )
    return st.get_version(f"{parsed.name}/{pointed}")


def _aliases_at(events: Iterable[Event]) -> dict[str, int | None]:
    found: dict[str, int | None] = {}
    for e in events:
        if e.action == "alias.set":
            found[e.details.get("alias", "?")] = int(e.details.get("after") or e.version or 0) or None
        elif e.action == "alias.deleted":
            found[e.details.get("alias", "?")] = None
    return found


def _ts(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _num(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _model_card(model: Any, version: ModelVersion) -> Section:
    kpis = "; ".join(f"{k.name} ({k.direction or 'watched'}{', ' + k.unit if k.unit else ''})" for k in model.kpis)
    kpis = kpis or "none recorded"
    facts = [
        ("Model", model.name),
        ("Kind", model.kind),
        ("Purpose", model.description or "not recorded"),
        ("This version", version.description or "not described"),
        ("Owner", model.owner or "not recorded"),
        ("Business unit", model.business_unit or "not recorded"),
        ("Risk tier", model.risk_tier or "not recorded"),
        ("Business KPIs", kpis),
        ("Protected attributes", ", ".join(model.protected_attributes) or "none declared"),
        ("Limitations", model.tags.get("limitations") or version.tags.get("limitations") or "not recorded"),
        ("Tags", ", ".join(f"{k}={v}" for k, v in sorted(model.tags.items()) if k != "limitations") or "none"),
    ]
    blocks: list[Block] = [Facts(items=facts)]
    if not model.owner:
        blocks.append(Text(text="The model has no recorded owner: accountability is not established.", status="fail"))
    return Section(id="model-card", title="Model card", blocks=blocks)


def _version(v: ModelVersion) -> Section:
    source = v.source
    facts = [
        ("Reference", v.ref),
        ("Registered", f"{_ts(v.created_at)} UTC by {v.created_by or 'unknown'}"),
        ("Artifact", f"sha256 {v.artifact.sha256} ({v.artifact.size:,} bytes, {v.artifact.format})"),
        (
            "Code",
            f"{source.repository or 'repository not recorded'} @ {source.commit or 'no commit'}"
            f"{' (uncommitted changes)' if source.dirty else ''}"
            if source
            else "not recorded (no git source)",
        ),
        (
            "Environment",
            f"Python {v.requirements.python} on {v.requirements.platform}; "
            f"{len(v.requirements.packages)} packages recorded",
        ),
    ]
    params = Table(
        columns=["Parameter", "Value"],
        rows=[[k, _num(p)] for k, p in sorted(v.params.items())],
        caption="Training parameters",
    )
    inputs = Table(
        columns=["Input", "Type", "Nullable"],
        rows=[[c.name, str(c.type), "yes" if c.nullable else "no"] for c in v.signature.inputs],
        caption="Input signature (checked before every prediction)",
    )
    packages = Table(
        columns=["Package", "Version"],
        rows=[[n, p] for n, p in sorted(v.requirements.packages.items())][:40],
        caption="Environment (first 40 packages)",
    )
    return Section(id="version", title="Version and provenance", blocks=[Facts(items=facts), params, inputs, packages])


def _data(st: Any, v: ModelVersion) -> Section:
    blocks: list[Block] = []
    links = Table(
        columns=["Role", "Data set", "Rows", "Fingerprint (sha256)", "Location"],
        rows=[],
        caption="Data sets in the version's lineage",
    )
    training = None
    for link in v.datasets:
        try:
            dataset = st.get_dataset(link.content_hash)
            uri = dataset.uri or "not recorded"
        except NotFound:
            dataset, uri = None, "unknown"
        links.rows.append([link.role, link.name, f"{link.row_count:,}", link.content_hash, uri])
        if link.role == "training" and dataset is not None:
            training = dataset
    blocks.append(links)
    if not v.datasets:
        blocks.append(Text(text="No data set is linked: the training data cannot be identified.", status="fail"))
    if training is not None:
        rows = []
        for c in training.fingerprint.columns:
            top = ", ".join(f"{k} ({n})" for k, n in list((c.top_values or {}).items())[:4])
            rows.append(
                [c.name, str(c.type), f"{c.null_count:,}", _num(c.min), _num(c.mean), _num(c.max), _num(c.std), top]
            )
        blocks.append(
            Table(
                columns=["Column", "Type", "Nulls", "Min", "Mean", "Max", "Std", "Top values"],
                rows=rows,
                caption=f"Training data statistics ({training.fingerprint.row_count:,} rows)",
            )
        )
    return Section(id="training-data", title="Training data", blocks=blocks)


def _performance(v: ModelVersion, versions: list[Any]) -> Section:
    blocks: list[Block] = [
        Table(
            columns=["Metric", "Value"],
            rows=[[k, _num(m)] for k, m in sorted(v.metrics.items())],
            caption=f"Metrics recorded with {v.ref}",
        )
    ]
    others = sorted(versions, key=lambda x: x.version)
    shared = sorted({m for x in others for m in x.metrics} & set(v.metrics))
    if len(others) > 1 and shared:
        blocks.append(
            Chart(
                title=f"Recorded metrics of {v.name}'s versions",
                kind="bar",
                x_label="version",
                y_label="value",
                series=[
                    Series(name=m, x=[f"v{x.version}" for x in others], y=[x.metrics.get(m) for x in others])
                    for m in shared[:4]
                ],
            )
        )
    return Section(id="performance", title="Performance", blocks=blocks)


def _status(value: str) -> Status:
    return "pass" if value == "pass" else "fail" if value == "fail" else "warn"


def _compliance(runs: list[ComplianceRun]) -> Section:
    if not runs:
        return Section(
            id="compliance",
            title="Compliance tests",
            status="warn",
            blocks=[Text(text="No compliance suite has been run on this version.", status="warn")],
        )
    blocks: list[Block] = [
        Table(
            columns=["Run", "Suite", "When", "By", "Data", "Status"],
            rows=[
                [
                    str(r.id),
                    r.suite,
                    _ts(r.finished_at),
                    r.actor,
                    f"{r.data.source}, {r.data.rows:,} rows, sha256 {r.data.content_hash[:12]}…" if r.data else "none",
                    r.status,
                ]
                for r in runs
            ],
            statuses=[_status(r.status) for r in runs],
            caption="Every run of a suite on this version",
        )
    ]
    latest: dict[str, ComplianceRun] = {}
    for run in runs:
        latest.setdefault(run.suite, run)
    for run in latest.values():
        blocks.append(
            Table(
                columns=["Test", "Type", "Status", "Finding"],
                rows=[[t.name, t.type, t.status, t.summary] for t in run.results],
                statuses=[_status(t.status) for t in run.results],
                caption=f"Latest run of {run.suite} (run {run.id})",
            )
        )
        for test in run.results:
            blocks.extend(_test_blocks(test))
    worst = {r.status for r in latest.values()}
    return Section(
        id="compliance",
        title="Compliance tests",
        blocks=blocks,
        status="fail" if "fail" in worst else "warn" if "error" in worst else "pass",
    )


def _test_blocks(test: TestResult) -> list[Block]:
    blocks: list[Block] = []
    if test.checks:
        blocks.append(
            Table(
                columns=["Figure", "Over", "Value", "Required", "Result"],
                rows=[
                    [c.metric, c.over or "", _num(c.value), c.bound, "pass" if c.passed else "fail"]
                    for c in test.checks
                ],
                statuses=["pass" if c.passed else "fail" for c in test.checks],
                caption=f"{test.name}: checks",
            )
        )
    if test.type == "fairness":
        for column, groups in (test.figures.get("groups") or {}).items():
            names = [str(g["group"]) for g in groups]
            blocks.append(
                Chart(
                    title=f"{test.name}: favourable decisions and true positive rate by {column}",
                    kind="bar",
                    x_label=column,
                    y_label="rate",
                    series=[
                        Series(name="selection rate", x=names, y=[g.get("selection_rate") for g in groups]),
                        Series(name="true positive rate", x=names, y=[g.get("true_positive_rate") for g in groups]),
                    ],
                )
            )
            blocks.append(
                Table(
                    columns=["Group", "Count", "Selection rate", "TPR", "FPR", "Accuracy"],
                    rows=[
                        [
                            str(g["group"]),
                            str(g.get("count")),
                            _num(g.get("selection_rate")),
                            _num(g.get("true_positive_rate")),
                            _num(g.get("false_positive_rate")),
                            _num(g.get("accuracy")),
                        ]
                        for g in groups
                    ],
                    caption=f"{test.name}: per-group figures over {column}",
                )
            )
    elif test.type == "explainability":
        features = (test.figures.get("features") or [])[:15]
        if features:
            blocks.append(
                Chart(
                    title=f"{test.name}: global importance ({test.figures.get('method', '')}, "
                    f"{test.figures.get('explainer', '')})",
                    kind="bar",
                    x_label="feature",
                    y_label="importance",
                    series=[
                        Series(
                            name="importance", x=[f["feature"] for f in features], y=[f["importance"] for f in features]
                        )
                    ],
                )
            )
    elif test.type == "reproducibility":
        rec, refit = test.figures.get("recorded") or {}, test.figures.get("refit") or {}
        blocks.append(
            Table(
                columns=["Metric", "Version", "Refit"],
                rows=[[k, _num(rec.get(k)), _num(refit.get(k))] for k in rec if rec.get(k) is not None],
                caption=f"{test.name}: the version against a refit on its recorded training data",
            )
        )
    return blocks


def _approvals(runs: list[Any]) -> Section:
    if not runs:
        return Section(
            id="approvals",
            title="Approvals and life-cycle decisions",
            blocks=[Text(text="This version went through no life-cycle transition.", status="info")],
        )
    blocks: list[Block] = [
        Table(
            columns=["Run", "Transition", "From", "To", "Status", "Requested", "By"],
            rows=[
                [
                    str(r.id),
                    r.transition,
                    r.from_stage,
                    r.to_stage,
                    r.status,
                    _ts(r.created_at),
                    r.requested_by or r.trigger,
                ]
                for r in runs
            ],
            statuses=[
                "pass" if r.status == "done" else "fail" if r.status in ("failed", "rejected") else "info" for r in runs
            ],
            caption="Life-cycle runs of this version",
        )
    ]
    signatures = [(r, a) for r in runs for a in r.approvals]
    blocks.append(
        Table(
            columns=["Run", "Who", "Role", "Decision", "When", "Accepted", "Comment / reason"],
            rows=[
                [str(r.id), a.user, a.role, a.decision, _ts(a.at), "yes" if a.accepted else "no", a.comment or a.reason]
                for r, a in signatures
            ],
            statuses=[
                "pass"
                if a.accepted and a.decision == "approve"
                else "fail"
                if not a.accepted or a.decision == "reject"
                else "info"
                for _, a in signatures
            ],
            caption="Every signature, refused ones included",
            empty="no signature recorded",
        )
    )
    gates = [(r, g) for r in runs for g in r.gates]
    blocks.append(
        Table(
            columns=["Run", "Gate", "Result", "Evidence"],
            rows=[[str(r.id), g.gate, "pass" if g.passed else "fail", g.reason] for r, g in gates],
            statuses=["pass" if g.passed else "fail" for _, g in gates],
            caption="Gates evaluated",
            empty="no gate evaluated",
        )
    )
    return Section(id="approvals", title="Approvals and life-cycle decisions", blocks=blocks)


def _deployments(st: Any, v: ModelVersion, events: list[Event], when: datetime) -> Section:
    moves = [e for e in events if e.action in ("alias.set", "alias.deleted")]
    blocks: list[Block] = [
        Table(
            columns=["When", "Who", "Alias", "Before", "After"],
            rows=[
                [
                    _ts(e.at),
                    e.actor,
                    str(e.details.get("alias")),
                    _num(e.details.get("before")),
                    _num(e.details.get("after")) if e.action == "alias.set" else "deleted",
                ]
                for e in moves
            ],
            caption=f"Alias history of {v.name}",
        )
    ]
    rows, statuses = [], []
    for deployment in st.list_deployments():
        for rev in st.deployment_history(deployment.name):
            refs = [r for r in [*rev.spec.refs, *rev.spec.model_steps.values()] if named_model(r) == v.name]
            if rev.created_at > when or not refs:
                continue
            rows.append(
                [
                    _ts(rev.created_at),
                    deployment.name,
                    str(rev.revision),
                    rev.action,
                    ", ".join(refs),
                    rev.created_by or "",
                ]
            )
            statuses.append("info")
    blocks.append(
        Table(
            columns=["When", "Deployment", "Revision", "Change", f"{v.name} arms", "By"],
            rows=sorted(rows),
            caption="Deployment changes that route to the model",
            empty="never deployed directly",
        )
    )
    return Section(id="deployments", title="Deployment and alias history", blocks=blocks)


def _monitoring(st: Any, v: ModelVersion, events: list[Event], when: datetime) -> Section:
    from modelsteward.monitoring.export import figure_rows

    deployments = {d.name for d in st.list_deployments() if v.name in d.spec.models}
    mine = [
        m
        for m in st.list_monitors()
        if (m.spec.target.model or "").split("/")[0] == v.name or m.spec.target.deployment in deployments
    ]
    blocks: list[Block] = []
    markers = [
        Marker(x=e.at.isoformat(), label=f"{e.details.get('alias')} -> v{e.details.get('after')}")
        for e in events
        if e.action == "alias.set"
    ]
    for monitor in mine:
        results = [r for r in st.monitor_results(monitor.name, limit=500) if r.finished_at <= when]
        results.sort(key=lambda r: r.window_end)
        blocks.append(
            Table(
                columns=["Window end", "Status", "Rows", "Breaches"],
                rows=[
                    [
                        _ts(r.window_end),
                        r.status,
                        f"{r.rows:,}",
                        "; ".join(f"{b.metric} {b.column or ''} = {_num(b.value)}" for b in r.breaches),
                    ]
                    for r in results[-30:]
                ],
                statuses=[
                    "fail" if r.status == "breach" else "pass" if r.status == "ok" else "warn" for r in results[-30:]
                ],
                caption=f"Monitor {monitor.name}: latest {min(len(results), 30)} of {len(results)} runs",
                empty="the monitor has not run",
            )
        )
        series: dict[str, list[tuple[str, float]]] = {}
        for r in results:
            for row in figure_rows(r):
                if row.get("threshold") is not None and isinstance(row.get("value"), (int, float)):
                    key = f"{row['metric']} {row.get('column_name') or ''}".strip()
                    series.setdefault(key, []).append((r.window_end.isoformat(), float(row["value"])))
        ranked = sorted(series.items(), key=lambda kv: -max(y for _, y in kv[1]))[:6]
        if ranked and len(results) > 1:
            blocks.append(
                Chart(
                    title=f"Monitor {monitor.name} over time",
                    x_label="window end",
                    y_label="value",
                    series=[Series(name=k, x=[x for x, _ in pts], y=[y for _, y in pts]) for k, pts in ranked],
                    markers=markers,
                )
            )
    if not mine:
        blocks.append(Text(text=f"No monitor watches {v.name} or a deployment that routes to it.", status="warn"))
    alerts = [a for a in st.list_alerts(limit=500) if a.first_fired_at <= when and _about(a, v.name, deployments, mine)]
    blocks.append(
        Table(
            columns=["Alert", "Severity", "Status", "First fired", "Resolved", "Acknowledged by"],
            rows=[
                [a.title, a.severity, a.status, _ts(a.first_fired_at), _ts(a.resolved_at), a.acknowledged_by or ""]
                for a in alerts
            ],
            statuses=["fail" if a.status == "firing" else "info" for a in alerts],
            caption="Alerts about the model, its deployments and monitors",
            empty="no alert fired",
        )
    )
    return Section(id="monitoring", title="Monitoring and alerts", blocks=blocks)


def _about(alert: Any, model: str, deployments: set[str], monitors: list[Any]) -> bool:
    names = {model, *deployments, *(m.name for m in monitors)}
    text = " ".join([alert.title, str(alert.details)])
    return any(n in text for n in names)


def _audit(check: Any, events: list[Event]) -> Section:
    blocks: list[Block] = [
        Text(
            text=f"{check.message} ({check.events:,} events checked at {_ts(check.checked_at)} UTC).",
            status="pass" if check.ok else "fail",
        ),
        Table(
            columns=["Seq", "When", "Who", "Action", "Version", "Details"],
            rows=[
                [str(e.seq), _ts(e.at), e.actor, e.action, _num(e.version), _brief(e.details)] for e in events[-200:]
            ],
            caption=f"The model's audit events up to the report's date (latest {min(len(events), 200)} of "
            f"{len(events)})",
        ),
    ]
    return Section(id="audit-trail", title="Audit trail", blocks=blocks, status="pass" if check.ok else "fail")


def _brief(details: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v}" for k, v in details.items() if k not in ("before", "after") and v not in (None, "", []))
    return text[:160] + ("…" if len(text) > 160 else "")
