"""Compliance: suites as code and the runs of them against model versions (results kept with the version).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "compliance_suites",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("definition", JSON, nullable=False),
        sa.Column("updated_by", sa.String(256)),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_compliance_suites"),
        sa.UniqueConstraint("name", name="uq_compliance_suites_name"),
    )
    op.create_table(
        "compliance_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("suite", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("data", JSON),
        sa.Column("results", JSON, nullable=False),
        sa.Column("actor", sa.String(256)),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_compliance_runs"),
    )
    op.create_index("ix_compliance_runs_model", "compliance_runs", ["model", "version"])


def downgrade() -> None:
    op.drop_table("compliance_runs")
    op.drop_table("compliance_suites")
