"""Life cycles: definitions, the models they govern, version positions, runs and their steps,
approvals, role grants, retraining jobs, and the engine's bookmarks.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "lifecycles",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("definition", JSON, nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("updated_by", sa.String(256)),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_lifecycles"),
        sa.UniqueConstraint("name", name="uq_lifecycles_name"),
    )
    op.create_table(
        "lifecycle_models",
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("lifecycle", sa.String(128), nullable=False),
        sa.Column("parameters", JSON, nullable=False),
        sa.Column("retrain", JSON),
        sa.Column("applied_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("model", name="pk_lifecycle_models"),
    )
    op.create_table(
        "lifecycle_positions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("lifecycle", sa.String(128), nullable=False),
        sa.Column("stage", sa.String(64), nullable=False),
        sa.Column("since", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_lifecycle_positions"),
        sa.UniqueConstraint("model", "version", name="uq_lifecycle_positions_model"),
    )
    op.create_table(
        "lifecycle_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("lifecycle", sa.String(128), nullable=False),
        sa.Column("transition", sa.String(128), nullable=False),
        sa.Column("from_stage", sa.String(64), nullable=False),
        sa.Column("to_stage", sa.String(64), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("trigger", sa.String(256), nullable=False),
        sa.Column("requested_by", sa.String(256)),
        sa.Column("gates", JSON, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_lifecycle_runs"),
    )
    op.create_index("ix_lifecycle_runs_model", "lifecycle_runs", ["model", "status"])
    op.create_table(
        "lifecycle_steps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", JSON, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_lifecycle_steps"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["lifecycle_runs.id"], name="fk_lifecycle_steps_run_id_lifecycle_runs", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("run_id", "name", name="uq_lifecycle_steps_run_id"),
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("principal", sa.String(256), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("accepted", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_approvals"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["lifecycle_runs.id"], name="fk_approvals_run_id_lifecycle_runs", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_approvals_run", "approvals", ["run_id"])
    op.create_table(
        "role_grants",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("principal", sa.String(256), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(300), nullable=False),
        sa.Column("granted_by", sa.String(256)),
        sa.Column("granted_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_role_grants"),
        sa.UniqueConstraint("principal", "role", "scope", name="uq_role_grants_principal"),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("run_id", sa.Integer),
        sa.Column("step", sa.String(256)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("holder", sa.String(256)),
        sa.Column("heartbeat_at", TS),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("exit_code", sa.Integer),
        sa.Column("version", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("log", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(256)),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.UniqueConstraint("run_id", "step", name="uq_jobs_run_id"),
    )
    op.create_index("ix_jobs_model", "jobs", ["model", "id"])
    op.create_table(
        "lifecycle_marks",
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("seq", sa.BigInteger),
        sa.Column("at", TS),
        sa.PrimaryKeyConstraint("key", name="pk_lifecycle_marks"),
    )


def downgrade() -> None:
    for table in (
        "lifecycle_marks",
        "jobs",
        "role_grants",
        "approvals",
        "lifecycle_steps",
        "lifecycle_runs",
        "lifecycle_positions",
        "lifecycle_models",
        "lifecycles",
    ):
        op.drop_table(table)
