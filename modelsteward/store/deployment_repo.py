"""Deployment queries on an open transaction: route sets and their revision history."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from modelsteward.domain.records import Deployment, DeploymentRevision, DeploymentSpec, RouteArm
from modelsteward.store.catalog_repo import now, utc
from modelsteward.store.tables import deployment_revisions, deployments

DP, DR = deployments.c, deployment_revisions.c


def lock(conn: Connection, name: str) -> Row[Any] | None:
    """The deployment's row, locked until the transaction ends where the database can."""
    query = sa.select(deployments).where(DP.name == name)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).first()


def get(conn: Connection, name: str) -> Row[Any] | None:
    return conn.execute(sa.select(deployments).where(DP.name == name)).first()


def list_rows(conn: Connection, *, status: str | None = None) -> list[Row[Any]]:
    query = sa.select(deployments).order_by(DP.name)
    if status is not None:
        query = query.where(DP.status == status)
    return list(conn.execute(query))


def write(
    conn: Connection,
    *,
    name: str,
    current: Row[Any] | None,
    spec: DeploymentSpec,
    status: str,
    action: str,
    parent: int | None,
    actor: str,
) -> int:
    """Record a new revision of ``name`` (creating the deployment on first use); returns its number."""
    at = now()
    body = spec.model_dump(mode="json")
    if current is None:
        revision = 1
        deployment_pk = conn.execute(
            deployments.insert()
            .values(
                name=name,
                revision=revision,
                status=status,
                spec=body,
                created_by=actor,
                created_at=at,
                updated_by=actor,
                updated_at=at,
            )
            .returning(DP.id)
        ).scalar_one()
    else:
        revision = current.revision + 1
        deployment_pk = current.id
        conn.execute(
            deployments.update()
            .where(DP.id == deployment_pk)
            .values(revision=revision, status=status, spec=body, updated_by=actor, updated_at=at)
        )
    conn.execute(
        deployment_revisions.insert().values(
            deployment_id=deployment_pk,
            revision=revision,
            action=action,
            status=status,
            spec=body,
            parent=parent,
            created_by=actor,
            created_at=at,
        )
    )
    return revision


def revision(conn: Connection, deployment_pk: int, number: int) -> Row[Any] | None:
    return conn.execute(
        sa.select(deployment_revisions).where(DR.deployment_id == deployment_pk, DR.revision == number)
    ).first()


def history(conn: Connection, deployment_pk: int) -> list[DeploymentRevision]:
    rows = conn.execute(
        sa.select(deployment_revisions).where(DR.deployment_id == deployment_pk).order_by(DR.revision.desc())
    )
    return [
        DeploymentRevision(
            revision=r.revision,
            action=r.action,
            spec=DeploymentSpec.model_validate(r.spec),
            status=r.status,
            parent=r.parent,
            created_by=r.created_by,
            created_at=utc(r.created_at),
        )
        for r in rows
    ]


def record(row: Row[Any], arms: list[RouteArm]) -> Deployment:
    return Deployment(
        name=row.name,
        revision=row.revision,
        status=row.status,
        spec=DeploymentSpec.model_validate(row.spec),
        arms=arms,
        created_by=row.created_by,
        created_at=utc(row.created_at),
        updated_by=row.updated_by,
        updated_at=utc(row.updated_at),
    )
