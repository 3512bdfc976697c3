"""Monitor and KPI queries on an open transaction: definitions, runs and KPI points."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from modelsteward.domain.monitoring import KPIPoint, Monitor, MonitorResult, MonitorSpec
from modelsteward.store.catalog_repo import now, utc
from modelsteward.store.tables import kpi_points, monitor_runs, monitors

MO, MR, KP = monitors.c, monitor_runs.c, kpi_points.c


def _monitor(row: Row[Any]) -> Monitor:
    return Monitor(
        name=row.name,
        spec=MonitorSpec.model_validate(row.spec),
        enabled=row.enabled,
        created_by=row.created_by,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
    )


def get_row(conn: Connection, name: str) -> Row[Any] | None:
    return conn.execute(sa.select(monitors).where(MO.name == name)).first()


def put(conn: Connection, name: str, spec: MonitorSpec, *, actor: str) -> tuple[Monitor, dict[str, Any] | None]:
    """Create or replace a monitor; returns it and the spec it replaced (None when new)."""
    at = now()
    body = spec.model_dump(mode="json")
    row = get_row(conn, name)
    if row is None:
        conn.execute(
            monitors.insert().values(name=name, spec=body, enabled=True, created_by=actor, created_at=at, updated_at=at)
        )
        before = None
    else:
        conn.execute(monitors.update().where(MO.id == row.id).values(spec=body, updated_at=at))
        before = row.spec
    fresh = get_row(conn, name)
    assert fresh is not None
    return _monitor(fresh), before


def set_enabled(conn: Connection, name: str, enabled: bool) -> bool:
    return bool(
        conn.execute(monitors.update().where(MO.name == name).values(enabled=enabled, updated_at=now())).rowcount
    )


def delete(conn: Connection, name: str) -> bool:
    return bool(conn.execute(monitors.delete().where(MO.name == name)).rowcount)


def get(conn: Connection, name: str) -> Monitor | None:
    row = get_row(conn, name)
    return _monitor(row) if row is not None else None


def list_all(conn: Connection) -> list[Monitor]:
    return [_monitor(r) for r in conn.execute(sa.select(monitors).order_by(MO.name))]


def add_run(conn: Connection, monitor_pk: int, result: MonitorResult) -> int:
    return conn.execute(
        monitor_runs.insert()
        .values(
            monitor_id=monitor_pk,
            status=result.status,
            window_start=result.window_start,
            window_end=result.window_end,
            rows=result.rows,
            figures=result.figures,
            breaches=[b.model_dump(mode="json") for b in result.breaches],
            error=result.error,
            started_at=result.started_at,
            finished_at=result.finished_at,
        )
        .returning(MR.id)
    ).scalar_one()


_NEWEST = (
    sa.select(sa.func.max(MR.id))
    .join(monitors, MO.id == MR.monitor_id)
    .where(MO.name.in_(sa.bindparam("names", expanding=True)))
    .group_by(MR.monitor_id)
    .scalar_subquery()
)
_LATEST = (
    sa.select(MO.name, MR.status, MR.finished_at, MR.breaches)
    .join(monitors, MO.id == MR.monitor_id)
    .where(MR.id.in_(_NEWEST))
)
_TARGET = sa.select(MO.spec).where(MO.name == sa.bindparam("name"))
_STATUS_BEFORE = (
    sa.select(MR.status)
    .join(monitors, MO.id == MR.monitor_id)
    .where(MO.name == sa.bindparam("name"), MR.id < sa.bindparam("run_id"))
    .order_by(MR.id.desc())
    .limit(1)
)


def latest(conn: Connection, names: list[str]) -> dict[str, tuple[str, datetime, int]]:
    """Each named monitor's latest result as (status, finished_at, breach count); one query."""
    rows = conn.execute(_LATEST, {"names": list(names)})
    return {r.name: (r.status, utc(r.finished_at), len(r.breaches or [])) for r in rows}


def target_of(conn: Connection, name: str) -> dict[str, Any] | None:
    """A monitor's stored target, read without validating the whole definition (the engine's hot path)."""
    row = conn.execute(_TARGET, {"name": name}).first()
    return dict(row.spec.get("target") or {}) if row is not None else None


def status_before(conn: Connection, name: str, run_id: int) -> str | None:
    """The status of the monitor's result just before run ``run_id`` (None for its first)."""
    return conn.execute(_STATUS_BEFORE, {"name": name, "run_id": run_id}).scalar_one_or_none()


def runs(conn: Connection, name: str, *, limit: int = 50, since: datetime | None = None) -> list[MonitorResult]:
    query = (
        sa.select(monitor_runs, MO.name.label("monitor"))
        .join(monitors, MO.id == MR.monitor_id)
        .where(MO.name == name)
        .order_by(MR.id.desc())
        .limit(limit)
    )
    if since is not None:
        query = query.where(MR.window_end >= since)
    return [
        MonitorResult(
            monitor=r.monitor,
            run_id=r.id,
            status=r.status,
            window_start=utc(r.window_start),
            window_end=utc(r.window_end),
            rows=r.rows,
            figures=r.figures,
            breaches=r.breaches,
            error=r.error,
            started_at=utc(r.started_at),
            finished_at=utc(r.finished_at),
        )
        for r in conn.execute(query)
    ]


def add_kpi_points(conn: Connection, points: list[KPIPoint]) -> int:
    if not points:
        return 0
    at = now()
    conn.execute(
        kpi_points.insert(),
        [
            {
                "kpi": p.kpi,
                "scope": p.scope,
                "arm": p.arm,
                "ts": p.ts,
                "value": p.value,
                "source": p.source,
                "created_at": at,
            }
            for p in points
        ],
    )
    return len(points)


def kpi_series(
    conn: Connection, kpi: str, scope: str, *, start: datetime | None = None, end: datetime | None = None
) -> list[KPIPoint]:
    query = sa.select(kpi_points).where(KP.kpi == kpi, KP.scope == scope).order_by(KP.ts, KP.id)
    if start is not None:
        query = query.where(KP.ts >= start)
    if end is not None:
        query = query.where(KP.ts < end)
    return [
        KPIPoint(kpi=r.kpi, scope=r.scope, ts=utc(r.ts), value=r.value, arm=r.arm, source=r.source)
        for r in conn.execute(query)
    ]


def kpi_names(conn: Connection, scope: str | None = None) -> list[tuple[str, str, int]]:
    query = sa.select(KP.kpi, KP.scope, sa.func.count()).group_by(KP.kpi, KP.scope).order_by(KP.kpi, KP.scope)
    if scope is not None:
        query = query.where(KP.scope == scope)
    return [(k, s, int(n)) for k, s, n in conn.execute(query)]
