"""The metadata schema as SQLAlchemy Core tables; Alembic migrations create exactly these."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)

registered_models = sa.Table(
    "registered_models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("owner", sa.String(256)),
    sa.Column("business_unit", sa.String(256)),
    sa.Column("risk_tier", sa.String(16)),
    sa.Column("kpis", JSON, nullable=False),
    sa.Column("resources", JSON, nullable=False),
    sa.Column("protected_attributes", JSON, nullable=False),
    sa.Column("tags", JSON, nullable=False),
    sa.Column("latest_version", sa.Integer, nullable=False, default=0),
    sa.Column("created_by", sa.String(256)),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("registered_models.id", ondelete="CASCADE"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("artifact_sha256", sa.String(64), nullable=False),
    sa.Column("artifact_size", sa.BigInteger, nullable=False),
    sa.Column("artifact_format", sa.String(64), nullable=False),
    sa.Column("artifact_meta", JSON, nullable=False),
    sa.Column("signature", JSON, nullable=False),
    sa.Column("metrics", JSON, nullable=False),
    sa.Column("params", JSON, nullable=False),
    sa.Column("requirements", JSON, nullable=False),
    sa.Column("source", JSON),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("tags", JSON, nullable=False),
    sa.Column("input_example", JSON),
    sa.Column("created_by", sa.String(256)),
    sa.Column("created_at", TS, nullable=False),
    sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_id_version"),
)

aliases = sa.Table(
    "aliases",
    metadata,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id", ondelete="CASCADE"), nullable=False),
    sa.Column("updated_by", sa.String(256)),
    sa.Column("updated_at", TS, nullable=False),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("content_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("uri", sa.Text),
    sa.Column("row_count", sa.BigInteger, nullable=False),
    sa.Column("fingerprint", JSON, nullable=False),
    sa.Column("created_at", TS, nullable=False),
)

version_datasets = sa.Table(
    "version_datasets",
    metadata,
    sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), primary_key=True),
    sa.Column("role", sa.String(32), primary_key=True),
)

# The audit trail: one row per change, appended in the change's own transaction and hash-chained
# (each event's hash covers the previous hash), so an edit or a deletion is detectable.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("seq", sa.BigInteger, nullable=False, unique=True),
    sa.Column("at", TS, nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("model", sa.String(128)),
    sa.Column("version", sa.Integer),
    sa.Column("details", JSON, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
sa.Index("ix_events_model", events.c.model, events.c.seq)

# One row. ``generation`` rises with every change, so a gateway can notice changes by reading one
# integer; updating this row also serializes writers, which keeps the event chain linear.
catalog_state = sa.Table(
    "catalog_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("generation", sa.BigInteger, nullable=False),
    sa.Column("head_hash", sa.String(64), nullable=False),
)

GENESIS_HASH = "0" * 64

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("spec", JSON, nullable=False),
    sa.Column("created_by", sa.String(256)),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_by", sa.String(256)),
    sa.Column("updated_at", TS, nullable=False),
)

deployment_revisions = sa.Table(
    "deployment_revisions",
    metadata,
    sa.Column("deployment_id", sa.Integer, sa.ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("revision", sa.Integer, primary_key=True),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("spec", JSON, nullable=False),
    sa.Column("parent", sa.Integer),
    sa.Column("created_by", sa.String(256)),
    sa.Column("created_at", TS, nullable=False),
)

monitors = sa.Table(
    "monitors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("spec", JSON, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_by", sa.String(256)),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

monitor_runs = sa.Table(
    "monitor_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("monitor_id", sa.Integer, sa.ForeignKey("monitors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("window_start", TS, nullable=False),
    sa.Column("window_end", TS, nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("figures", JSON, nullable=False),
    sa.Column("breaches", JSON, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("finished_at", TS, nullable=False),
)
sa.Index("ix_monitor_runs_monitor", monitor_runs.c.monitor_id, monitor_runs.c.id)

kpi_points = sa.Table(
    "kpi_points",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("kpi", sa.String(128), nullable=False),
    sa.Column("scope", sa.String(128), nullable=False),
    sa.Column("arm", sa.String(256)),
    sa.Column("ts", TS, nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("created_at", TS, nullable=False),
)
sa.Index("ix_kpi_points_series", kpi_points.c.kpi, kpi_points.c.scope, kpi_points.c.ts)

channels = sa.Table(
    "channels",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("spec", JSON, nullable=False),
    sa.Column("created_at", TS, nullable=False),
)

alert_rules = sa.Table(
    "alert_rules",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("spec", JSON, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("streak", sa.Integer, nullable=False),
    sa.Column("created_at", TS, nullable=False),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("rule_id", sa.Integer, sa.ForeignKey("alert_rules.id", ondelete="CASCADE"), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("details", JSON, nullable=False),
    sa.Column("occurrences", sa.Integer, nullable=False),
    sa.Column("first_fired_at", TS, nullable=False),
    sa.Column("last_fired_at", TS, nullable=False),
    sa.Column("resolved_at", TS),
    sa.Column("acknowledged_by", sa.String(256)),
)
sa.Index("ix_alerts_open", alerts.c.fingerprint, alerts.c.status)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("channel", sa.String(64), nullable=False),
    sa.Column("event", sa.String(16), nullable=False),
    sa.Column("payload", JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("next_attempt_at", TS),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("sent_at", TS),
)
sa.Index("ix_deliveries_due", deliveries.c.status, deliveries.c.next_attempt_at)

# Who runs the schedules: one process at a time holds the lease and renews it; another takes over
# when it lapses (a killed worker), so scheduled work runs exactly once.
scheduler_lease = sa.Table(
    "scheduler_lease",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("holder", sa.String(256), nullable=False),
    sa.Column("expires_at", TS, nullable=False),
)

# -- life cycles --------------------------------------------------------------------------------------

lifecycles = sa.Table(
    "lifecycles",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("definition", JSON, nullable=False),
    sa.Column("source", sa.Text),
    sa.Column("updated_by", sa.String(256)),
    sa.Column("updated_at", TS, nullable=False),
)

# Which life cycle governs a model, with the model's own thresholds and retraining.
lifecycle_models = sa.Table(
    "lifecycle_models",
    metadata,
    sa.Column("model", sa.String(128), primary_key=True, autoincrement=False),
    sa.Column("lifecycle", sa.String(128), nullable=False),
    sa.Column("parameters", JSON, nullable=False),
    sa.Column("retrain", JSON),
    sa.Column("applied_at", TS, nullable=False),
)

lifecycle_positions = sa.Table(
    "lifecycle_positions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("lifecycle", sa.String(128), nullable=False),
    sa.Column("stage", sa.String(64), nullable=False),
    sa.Column("since", TS, nullable=False),
    sa.UniqueConstraint("model", "version", name="uq_lifecycle_positions_model"),
)

lifecycle_runs = sa.Table(
    "lifecycle_runs",
    metadata,
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
)
sa.Index("ix_lifecycle_runs_model", lifecycle_runs.c.model, lifecycle_runs.c.status)

# Every step of a run, written before it acts and marked when done: a restart knows what already ran.
lifecycle_steps = sa.Table(
    "lifecycle_steps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("lifecycle_runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("detail", JSON, nullable=False),
    sa.Column("at", TS, nullable=False),
    sa.UniqueConstraint("run_id", "name", name="uq_lifecycle_steps_run_id"),
)

approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("lifecycle_runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("principal", sa.String(256), nullable=False),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("accepted", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", TS, nullable=False),
)
sa.Index("ix_approvals_run", approvals.c.run_id)

role_grants = sa.Table(
    "role_grants",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("principal", sa.String(256), nullable=False),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("scope", sa.String(300), nullable=False),
    sa.Column("granted_by", sa.String(256)),
    sa.Column("granted_at", TS, nullable=False),
    sa.UniqueConstraint("principal", "role", "scope", name="uq_role_grants_principal"),
)

jobs = sa.Table(
    "jobs",
    metadata,
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
    sa.UniqueConstraint("run_id", "step", name="uq_jobs_run_id"),
)
sa.Index("ix_jobs_model", jobs.c.model, jobs.c.id)

# The engine's bookmarks: the last audit event it reacted to, and when each schedule last fired.
lifecycle_marks = sa.Table(
    "lifecycle_marks",
    metadata,
    sa.Column("key", sa.String(400), primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger),
    sa.Column("at", TS),
)

# -- identities ---------------------------------------------------------------------------------------

principals = sa.Table(
    "principals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("display_name", sa.String(256), nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("created_by", sa.String(256)),
    sa.Column("created_at", TS, nullable=False),
)

# API tokens: only a SHA-256 of each secret is kept (the secret is shown once, at creation).
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("principal", sa.String(256), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("created_by", sa.String(256)),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("expires_at", TS),
    sa.Column("revoked_at", TS),
    sa.Column("last_used_at", TS),
)
sa.Index("ix_api_tokens_principal", api_tokens.c.principal)

# -- compliance -----------------------------------------------------------------------------------------

compliance_suites = sa.Table(
    "compliance_suites",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("definition", JSON, nullable=False),
    sa.Column("updated_by", sa.String(256)),
    sa.Column("updated_at", TS, nullable=False),
)

# One row per run of a suite against a version; ``results`` holds every test's checks and figures.
compliance_runs = sa.Table(
    "compliance_runs",
    metadata,
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
)
sa.Index("ix_compliance_runs_model", compliance_runs.c.model, compliance_runs.c.version)

# -- collaboration and the portfolio's history ----------------------------------------------------------

comments = sa.Table(
    "comments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer),
    sa.Column("author", sa.String(256), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("created_at", TS, nullable=False),
)
sa.Index("ix_comments_model", comments.c.model, comments.c.id)

# One row per model and day: the portfolio page draws model debt over time from them.
debt_snapshots = sa.Table(
    "debt_snapshots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("score", sa.Integer, nullable=False),
    sa.Column("flags", JSON, nullable=False),
    sa.Column("taken_at", TS, nullable=False),
    sa.UniqueConstraint("day", "model", name="uq_debt_snapshots_day"),
)
