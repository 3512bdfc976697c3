"""Compliance suites and runs on an open transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from modelsteward.domain.compliance import ComplianceRun, ComplianceSuite, DataUsed, StoredSuite, TestResult
from modelsteward.store.catalog_repo import now, utc
from modelsteward.store.tables import compliance_runs, compliance_suites

CS, CR = compliance_suites.c, compliance_runs.c


def _suite(row: Row[Any]) -> StoredSuite:
    return StoredSuite(name=row.name, suite=ComplianceSuite.model_validate(row.definition),
                       updated_at=utc(row.updated_at), updated_by=row.updated_by or "")  # fmt: skip


def _run(row: Row[Any]) -> ComplianceRun:
    return ComplianceRun(
        id=row.id, model=row.model, version=row.version, suite=row.suite, status=row.status,
        data=DataUsed.model_validate(row.data) if row.data else None,
        results=[TestResult.model_validate(r) for r in row.results], actor=row.actor or "",
        started_at=utc(row.started_at), finished_at=utc(row.finished_at),
    )  # fmt: skip


def put_suite(conn: Connection, suite: ComplianceSuite, *, actor: str) -> tuple[StoredSuite, dict[str, Any] | None]:
    """Create or replace; returns the stored suite and the definition it replaced (None when new)."""
    definition = suite.model_dump(mode="json", exclude_defaults=True)
    old = conn.execute(sa.select(CS.definition).where(CS.name == suite.name)).scalar()
    values = {"definition": definition, "updated_by": actor, "updated_at": now()}
    if old is None:
        conn.execute(compliance_suites.insert().values(name=suite.name, **values))
    else:
        conn.execute(compliance_suites.update().where(CS.name == suite.name).values(**values))
    row = conn.execute(sa.select(compliance_suites).where(CS.name == suite.name)).one()
    return _suite(row), old


def get_suite(conn: Connection, name: str) -> StoredSuite | None:
    row = conn.execute(sa.select(compliance_suites).where(CS.name == name)).first()
    return _suite(row) if row is not None else None


def list_suites(conn: Connection) -> list[StoredSuite]:
    return [_suite(r) for r in conn.execute(sa.select(compliance_suites).order_by(CS.name))]


def add_run(
    conn: Connection, *, model: str, version: int, suite: str, status: str, data: DataUsed | None,
    results: list[TestResult], actor: str, started_at: datetime,
) -> ComplianceRun:  # fmt: skip
    run_id = conn.execute(
        compliance_runs.insert()
        .values(model=model, version=version, suite=suite, status=status,
                data=data.model_dump(mode="json") if data else None,
                results=[r.model_dump(mode="json") for r in results], actor=actor,
                started_at=started_at, finished_at=now())
        .returning(CR.id)
    ).scalar_one()  # fmt: skip
    return _run(conn.execute(sa.select(compliance_runs).where(CR.id == run_id)).one())


def get_run(conn: Connection, run_id: int) -> ComplianceRun | None:
    row = conn.execute(sa.select(compliance_runs).where(CR.id == run_id)).first()
    return _run(row) if row is not None else None


def list_runs(
    conn: Connection, *, model: str | None = None, version: int | None = None, suite: str | None = None,
    before: datetime | None = None, limit: int = 50,
) -> list[ComplianceRun]:  # fmt: skip
    query = sa.select(compliance_runs).order_by(CR.id.desc()).limit(limit)
    if model is not None:
        query = query.where(CR.model == model)
    if version is not None:
        query = query.where(CR.version == version)
    if suite is not None:
        query = query.where(CR.suite == suite)
    if before is not None:
        query = query.where(CR.finished_at <= before)
    return [_run(r) for r in conn.execute(query)]
