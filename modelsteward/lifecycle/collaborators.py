"""The services and state that every part of the life-cycle service shares."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from modelsteward.alerts import AlertService
from modelsteward.catalog.service import CatalogService
from modelsteward.compliance.service import ComplianceService
from modelsteward.domain.lifecycle import LifecycleDefinition
from modelsteward.lifecycle.jobs import JobRunner
from modelsteward.monitoring.service import MonitorService
from modelsteward.serving.deployments import DeploymentService
from modelsteward.store.database import Database


class Collaborators:
    """What :class:`~modelsteward.lifecycle.engine.LifecycleService` is built from; its parts (definitions,
    runs, gate facts, signals, triggers, approvals) are mixins over these attributes."""

    db: Database
    catalog: CatalogService
    deployments: DeploymentService
    monitors: MonitorService
    alerts: AlertService | None
    jobs: JobRunner | None
    clock: Callable[[], datetime]
    compliance: ComplianceService | None
    _parsed: dict[str, tuple[int, LifecycleDefinition]]
