"""The life-cycle engine: definitions applied to models, versions moved between stages by runs that
check gates, wait for approvals and perform actions, every step stored before it acts.

A run is a small state machine kept in the store: its gates are evaluated before it is stored (a failed
gate stores it ``failed``), then ``waiting_approval`` -> ``acting`` -> ``done`` (or ``rejected`` /
``cancelled``). :meth:`LifecycleService.process` takes a run
as far as it can and can be called again at any time, by anyone, after any crash: each action is a
step row written (unique per run) before the action runs and marked when it is done, and every
action is idempotent (it sets a desired state) or guarded (a rollback checks the revision it
started from), so a restart resumes where it stood and nothing runs twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from modelsteward.alerts import AlertService
from modelsteward.catalog.service import CatalogService
from modelsteward.compliance.service import ComplianceService
from modelsteward.lifecycle.approvals import Approvals
from modelsteward.lifecycle.jobs import JobRunner
from modelsteward.lifecycle.triggers import Triggers
from modelsteward.monitoring.service import MonitorService
from modelsteward.serving.deployments import DeploymentService
from modelsteward.store.database import Database

__all__ = ["LifecycleService"]


class LifecycleService(Triggers, Approvals):
    """The life-cycle service, assembled from its parts: :class:`~.definitions.Definitions` (apply, assign,
    status), :class:`~.runs.Runs` (request, process, gate, cancel), :class:`~.triggers.Triggers` (tick),
    :class:`~.approvals.Approvals` (decide, roles), over :class:`~.gate_facts.GateFacts` and
    :class:`~.signals.Signals`."""

    def __init__(
        self,
        db: Database,
        catalog: CatalogService,
        deployments: DeploymentService,
        monitors: MonitorService,
        *,
        alerts: AlertService | None = None,
        jobs: JobRunner | None = None,
        clock: Callable[[], datetime] | None = None,
        compliance: ComplianceService | None = None,
    ) -> None:
        self.db = db
        self.compliance = compliance
        self.catalog = catalog
        self.deployments = deployments
        self.monitors = monitors
        self.alerts = alerts
        self.jobs = jobs
        self._parsed = {}
        if jobs is not None:
            jobs.on_done = self._job_done
        self.clock = clock or (lambda: datetime.now(UTC))
