"""Collaboration and the portfolio's history: comments on models and versions, and daily model-debt snapshots.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "comments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer),
        sa.Column("author", sa.String(256), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_comments"),
    )
    op.create_index("ix_comments_model", "comments", ["model", "id"])
    op.create_table(
        "debt_snapshots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("flags", JSON, nullable=False),
        sa.Column("taken_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_debt_snapshots"),
        sa.UniqueConstraint("day", "model", name="uq_debt_snapshots_day"),
    )


def downgrade() -> None:
    op.drop_table("debt_snapshots")
    op.drop_table("comments")
