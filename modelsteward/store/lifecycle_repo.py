"""Life-cycle queries on an open transaction: definitions, bindings, positions, runs, steps,
approvals, role grants and the engine's bookmarks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from modelsteward.domain.lifecycle import (
    Approval,
    GateResult,
    Job,
    Lifecycle,
    LifecycleDefinition,
    Position,
    RoleGrant,
    Run,
    Step,
)
from modelsteward.store.catalog_repo import now, utc
from modelsteward.store.tables import (
    approvals,
    jobs,
    lifecycle_marks,
    lifecycle_models,
    lifecycle_positions,
    lifecycle_runs,
    lifecycle_steps,
    lifecycles,
    role_grants,
)

LC, LM, LP, LR, LS = lifecycles.c, lifecycle_models.c, lifecycle_positions.c, lifecycle_runs.c, lifecycle_steps.c
AP, RG, MK, JB = approvals.c, role_grants.c, lifecycle_marks.c, jobs.c

OPEN = ("waiting_approval", "acting")

# The engine's hot statements, built once with bound parameters: a round over a thousand models runs
# each of them thousands of times, and building a statement costs more than SQLite running it.
_GOVERNING = (
    sa.select(LM.model, LM.lifecycle, LM.parameters, LM.retrain, LC.revision, LC.definition)
    .join(lifecycles, LC.name == LM.lifecycle)
    .where(LM.model == sa.bindparam("model"))
)
_POSITION = sa.select(lifecycle_positions).where(
    LP.model == sa.bindparam("model"), LP.version == sa.bindparam("version")
)
_POSITIONS = sa.select(lifecycle_positions).where(LP.model == sa.bindparam("model")).order_by(LP.version.desc())
_IN_STAGE = (
    sa.select(lifecycle_positions)
    .where(LP.model == sa.bindparam("model"), LP.stage == sa.bindparam("stage"))
    .order_by(LP.version.desc())
)
_INSERT_POSITION = lifecycle_positions.insert()
_MOVE_POSITION = (
    lifecycle_positions.update()
    .where(LP.id == sa.bindparam("pk"))
    .values(lifecycle=sa.bindparam("lifecycle"), stage=sa.bindparam("stage"), since=sa.bindparam("since"))
)
_INSERT_RUN = lifecycle_runs.insert().returning(LR.id)
_CLOSE_RUN = (
    lifecycle_runs.update()
    .where(LR.id == sa.bindparam("run_id"), LR.status.in_(OPEN))
    .values(status=sa.bindparam("status"), error=sa.bindparam("error"), updated_at=sa.bindparam("at"))
)
_RUN = sa.select(lifecycle_runs).where(LR.id == sa.bindparam("run_id"))
_STEPS = sa.select(lifecycle_steps).where(LS.run_id == sa.bindparam("run_id")).order_by(LS.seq)
_OPEN_RUNS_OF_VERSION = (
    sa.select(lifecycle_runs)
    .where(LR.status.in_(OPEN), LR.model == sa.bindparam("model"), LR.version == sa.bindparam("version"))
    .order_by(LR.id)
)
_RUNS_WITH_TRIGGER = sa.select(LR.id, LR.version).where(
    LR.model == sa.bindparam("model"), LR.trigger == sa.bindparam("trigger")
)


# -- definitions and the models they govern ---------------------------------------------------------


def _lifecycle(conn: Connection, row: Row[Any]) -> Lifecycle:
    governed = conn.execute(sa.select(LM.model).where(LM.lifecycle == row.name).order_by(LM.model)).scalars()
    return Lifecycle(
        name=row.name,
        revision=row.revision,
        definition=LifecycleDefinition.model_validate(row.definition),
        models=list(governed),
        updated_by=row.updated_by,
        updated_at=utc(row.updated_at),
    )


def put_lifecycle(
    conn: Connection, defn: LifecycleDefinition, *, source: str | None, actor: str
) -> tuple[Lifecycle, dict[str, Any] | None]:
    """Create or replace a definition (its revision goes up); returns it and the definition it replaced."""
    body = defn.model_dump(mode="json", by_alias=True, exclude={"models"})
    row = conn.execute(sa.select(lifecycles).where(LC.name == defn.name)).first()
    values = {"definition": body, "source": source, "updated_by": actor, "updated_at": now()}
    if row is None:
        conn.execute(lifecycles.insert().values(name=defn.name, revision=1, **values))
        before = None
    else:
        before = row.definition
        if before != body:
            conn.execute(lifecycles.update().where(LC.id == row.id).values(revision=row.revision + 1, **values))
    fresh = conn.execute(sa.select(lifecycles).where(LC.name == defn.name)).one()
    return _lifecycle(conn, fresh), before


def get_lifecycle(conn: Connection, name: str) -> Lifecycle | None:
    row = conn.execute(sa.select(lifecycles).where(LC.name == name)).first()
    return _lifecycle(conn, row) if row is not None else None


def governing(conn: Connection, model: str) -> Row[Any] | None:
    """The model's binding with its life cycle's name, revision and definition (one query)."""
    return conn.execute(_GOVERNING, {"model": model}).first()


def list_lifecycles(conn: Connection) -> list[Lifecycle]:
    return [_lifecycle(conn, r) for r in conn.execute(sa.select(lifecycles).order_by(LC.name)).all()]


def bind(
    conn: Connection, model: str, lifecycle: str, parameters: dict[str, float], retrain: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Put a model under a life cycle (or change its thresholds); returns the binding it replaced."""
    row = conn.execute(sa.select(lifecycle_models).where(LM.model == model)).first()
    values = {"lifecycle": lifecycle, "parameters": parameters, "retrain": retrain, "applied_at": now()}
    if row is None:
        conn.execute(lifecycle_models.insert().values(model=model, **values))
        return None
    conn.execute(lifecycle_models.update().where(LM.model == model).values(**values))
    return {"lifecycle": row.lifecycle, "parameters": row.parameters, "retrain": row.retrain}


def binding(conn: Connection, model: str) -> Row[Any] | None:
    return conn.execute(sa.select(lifecycle_models).where(LM.model == model)).first()


def bindings(conn: Connection, lifecycle: str | None = None) -> list[Row[Any]]:
    query = sa.select(lifecycle_models).order_by(LM.model)
    if lifecycle is not None:
        query = query.where(LM.lifecycle == lifecycle)
    return list(conn.execute(query))


# -- positions --------------------------------------------------------------------------------------


def _position(row: Row[Any]) -> Position:
    return Position(
        model=row.model, version=row.version, lifecycle=row.lifecycle, stage=row.stage, since=utc(row.since)
    )


def position(conn: Connection, model: str, version: int) -> Position | None:
    row = conn.execute(_POSITION, {"model": model, "version": version}).first()
    return _position(row) if row is not None else None


def positions(conn: Connection, model: str) -> list[Position]:
    return [_position(r) for r in conn.execute(_POSITIONS, {"model": model})]


def in_stage(conn: Connection, model: str, stage: str) -> list[Position]:
    return [_position(r) for r in conn.execute(_IN_STAGE, {"model": model, "stage": stage})]


def set_position(conn: Connection, model: str, version: int, lifecycle: str, stage: str) -> str | None:
    """Place a version in a stage; returns the stage it left (None when it had none)."""
    row = conn.execute(_POSITION, {"model": model, "version": version}).first()
    values = {"lifecycle": lifecycle, "stage": stage, "since": now()}
    if row is None:
        conn.execute(_INSERT_POSITION, {"model": model, "version": version, **values})
        return None
    conn.execute(_MOVE_POSITION, {"pk": row.id, **values})
    return str(row.stage)


def stage_counts(conn: Connection) -> dict[tuple[str, str], int]:
    query = sa.select(LP.lifecycle, LP.stage, sa.func.count()).group_by(LP.lifecycle, LP.stage)
    return {(r[0], r[1]): int(r[2]) for r in conn.execute(query)}


# -- runs and their steps ---------------------------------------------------------------------------


def create_run(
    conn: Connection,
    *,
    model: str,
    version: int,
    lifecycle: str,
    transition: str,
    from_stage: str,
    to_stage: str,
    trigger: str,
    requested_by: str | None,
    status: str,
    gates: list[GateResult] | None = None,
    error: str | None = None,
) -> tuple[int, datetime]:
    """Store a new run; returns its id and creation time."""
    at = now()
    values = {
        "model": model, "version": version, "lifecycle": lifecycle, "transition": transition,
        "from_stage": from_stage, "to_stage": to_stage, "status": status, "trigger": trigger[:256],
        "requested_by": requested_by, "gates": [g.model_dump(mode="json") for g in gates or []], "error": error,
        "created_at": at, "updated_at": at,
    }  # fmt: skip
    return int(conn.execute(_INSERT_RUN, values).scalar_one()), at


def update_run(conn: Connection, run_id: int, **values: Any) -> None:
    if "gates" in values:
        values["gates"] = [g.model_dump(mode="json") if isinstance(g, GateResult) else g for g in values["gates"]]
    conn.execute(lifecycle_runs.update().where(LR.id == run_id).values(updated_at=now(), **values))


def close_run(conn: Connection, run_id: int, *, status: str, error: str | None) -> bool:
    """End an open run; False when it was already ended (by another process or a second call)."""
    return bool(conn.execute(_CLOSE_RUN, {"run_id": run_id, "status": status, "error": error, "at": now()}).rowcount)


def _run(conn: Connection, row: Row[Any]) -> Run:
    steps = [
        Step(seq=s.seq, kind=s.kind, name=s.name, status=s.status, detail=s.detail or {}, at=utc(s.at))
        for s in conn.execute(_STEPS, {"run_id": row.id})
    ]
    return Run(
        id=row.id,
        model=row.model,
        version=row.version,
        lifecycle=row.lifecycle,
        transition=row.transition,
        from_stage=row.from_stage,
        to_stage=row.to_stage,
        status=row.status,
        trigger=row.trigger,
        requested_by=row.requested_by,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
        gates=[GateResult.model_validate(g) for g in row.gates or []],
        approvals=approvals_of(conn, row.id),
        steps=steps,
        error=row.error,
    )


def get_run(conn: Connection, run_id: int) -> Run | None:
    row = conn.execute(_RUN, {"run_id": run_id}).first()
    return _run(conn, row) if row is not None else None


def open_runs(conn: Connection, *, model: str | None = None, version: int | None = None) -> list[Run]:
    if model is not None and version is not None:
        return [_run(conn, r) for r in conn.execute(_OPEN_RUNS_OF_VERSION, {"model": model, "version": version})]
    query = sa.select(lifecycle_runs).where(LR.status.in_(OPEN)).order_by(LR.id)
    if model is not None:
        query = query.where(LR.model == model)
    if version is not None:
        query = query.where(LR.version == version)
    return [_run(conn, r) for r in conn.execute(query)]


def runs_with_trigger(conn: Connection, model: str, trigger: str) -> list[Row[Any]]:
    return list(conn.execute(_RUNS_WITH_TRIGGER, {"model": model, "trigger": trigger[:256]}))


def list_runs(conn: Connection, *, model: str | None = None, status: str | None = None, limit: int = 50) -> list[Run]:
    query = sa.select(lifecycle_runs).order_by(LR.id.desc()).limit(limit)
    if model is not None:
        query = query.where(LR.model == model)
    if status is not None:
        query = query.where(LR.status == status)
    return [_run(conn, r) for r in conn.execute(query)]


def step(conn: Connection, run_id: int, name: str) -> Row[Any] | None:
    return conn.execute(sa.select(lifecycle_steps).where(LS.run_id == run_id, LS.name == name)).first()


def begin_step(conn: Connection, run_id: int, kind: str, name: str, detail: dict[str, Any] | None = None) -> None:
    seq = conn.execute(sa.select(sa.func.count()).where(LS.run_id == run_id)).scalar_one()
    conn.execute(
        lifecycle_steps.insert().values(
            run_id=run_id, seq=int(seq) + 1, kind=kind, name=name, status="started", detail=detail or {}, at=now()
        )
    )


def finish_step(conn: Connection, run_id: int, name: str, status: str, detail: dict[str, Any] | None = None) -> None:
    values: dict[str, Any] = {"status": status, "at": now()}
    if detail is not None:
        values["detail"] = detail
    conn.execute(lifecycle_steps.update().where(LS.run_id == run_id, LS.name == name).values(**values))


# -- approvals and role grants ----------------------------------------------------------------------


def add_approval(
    conn: Connection,
    run_id: int,
    *,
    principal: str,
    role: str,
    decision: str,
    comment: str,
    accepted: bool,
    reason: str,
) -> int:
    return int(
        conn.execute(
            approvals.insert()
            .values(
                run_id=run_id,
                principal=principal,
                role=role,
                decision=decision,
                comment=comment,
                accepted=accepted,
                reason=reason,
                at=now(),
            )
            .returning(AP.id)
        ).scalar_one()
    )


def approvals_of(conn: Connection, run_id: int) -> list[Approval]:
    query = sa.select(approvals).where(AP.run_id == run_id).order_by(AP.id)
    return [
        Approval(
            id=r.id,
            run_id=r.run_id,
            user=r.principal,
            role=r.role,
            decision=r.decision,
            comment=r.comment,
            accepted=r.accepted,
            reason=r.reason,
            at=utc(r.at),
        )
        for r in conn.execute(query)
    ]


def grant(conn: Connection, principal: str, role: str, scope: str, *, actor: str) -> bool:
    """Grant a role; False when the principal already had it in that scope."""
    exists = conn.execute(sa.select(RG.id).where(RG.principal == principal, RG.role == role, RG.scope == scope)).first()
    if exists is not None:
        return False
    conn.execute(
        role_grants.insert().values(principal=principal, role=role, scope=scope, granted_by=actor, granted_at=now())
    )
    return True


def revoke(conn: Connection, principal: str, role: str, scope: str) -> bool:
    return bool(
        conn.execute(role_grants.delete().where(RG.principal == principal, RG.role == role, RG.scope == scope)).rowcount
    )


def grants(conn: Connection, principal: str | None = None) -> list[RoleGrant]:
    query = sa.select(role_grants).order_by(RG.principal, RG.role, RG.scope)
    if principal is not None:
        query = query.where(RG.principal == principal)
    return [
        RoleGrant(
            principal=r.principal, role=r.role, scope=r.scope, granted_by=r.granted_by, granted_at=utc(r.granted_at)
        )
        for r in conn.execute(query)
    ]


# -- bookmarks --------------------------------------------------------------------------------------


def mark(conn: Connection, key: str) -> Row[Any] | None:
    return conn.execute(sa.select(lifecycle_marks).where(MK.key == key)).first()


def set_mark(conn: Connection, key: str, *, seq: int | None = None, at: datetime | None = None) -> None:
    if conn.execute(sa.select(MK.key).where(MK.key == key)).first() is None:
        conn.execute(lifecycle_marks.insert().values(key=key, seq=seq, at=at))
    else:
        conn.execute(lifecycle_marks.update().where(MK.key == key).values(seq=seq, at=at))


# -- jobs -------------------------------------------------------------------------------------------


def _job(row: Row[Any]) -> Job:
    started, finished = utc(row.started_at), utc(row.finished_at) if row.finished_at is not None else None
    return Job(
        id=row.id,
        kind=row.kind,
        model=row.model,
        run_id=row.run_id,
        status=row.status,
        spec=row.spec or {},
        holder=row.holder,
        started_at=started,
        finished_at=finished,
        duration_s=(finished - started).total_seconds() if finished is not None else None,
        exit_code=row.exit_code,
        version=row.version,
        error=row.error,
        log=row.log or "",
        created_by=row.created_by,
    )


def create_job(
    conn: Connection,
    *,
    kind: str,
    model: str,
    run_id: int | None,
    step: str | None,
    spec: dict[str, Any],
    holder: str,
    actor: str,
) -> int:
    at = now()
    return int(
        conn.execute(
            jobs.insert()
            .values(kind=kind, model=model, run_id=run_id, step=step, status="running", spec=spec, holder=holder,
                    heartbeat_at=at, started_at=at, log="", created_by=actor)
            .returning(JB.id)
        ).scalar_one()
    )  # fmt: skip


def update_job(conn: Connection, job_id: int, **values: Any) -> None:
    conn.execute(jobs.update().where(JB.id == job_id).values(**values))


def get_job(conn: Connection, job_id: int) -> Job | None:
    row = conn.execute(sa.select(jobs).where(JB.id == job_id)).first()
    return _job(row) if row is not None else None


def job_for_step(conn: Connection, run_id: int, step: str) -> Job | None:
    row = conn.execute(sa.select(jobs).where(JB.run_id == run_id, JB.step == step)).first()
    return _job(row) if row is not None else None


def list_jobs(conn: Connection, *, model: str | None = None, status: str | None = None, limit: int = 50) -> list[Job]:
    query = sa.select(jobs).order_by(JB.id.desc()).limit(limit)
    if model is not None:
        query = query.where(JB.model == model)
    if status is not None:
        query = query.where(JB.status == status)
    return [_job(r) for r in conn.execute(query)]
