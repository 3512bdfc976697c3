"""The alerts a life cycle raises about its runs and jobs (failed, past SLA, stalled, job failed)."""

from __future__ import annotations

import logging
from typing import Any

from modelsteward.domain.lifecycle import Run
from modelsteward.domain.monitoring import LifecycleSignal
from modelsteward.errors import StewardError
from modelsteward.lifecycle.collaborators import Collaborators
from modelsteward.store import lifecycle_repo

log = logging.getLogger("modelsteward.lifecycle")


class Signals(Collaborators):
    def _signal(self, signal: LifecycleSignal) -> None:
        if self.alerts is None:
            return
        try:
            self.alerts.evaluate_lifecycle(signal)
        except StewardError as e:
            log.warning("life-cycle alert %s not raised: %s", signal.subject, e.message)

    def _lifecycle_of(self, model: str) -> str:
        with self.db.read() as conn:
            row = lifecycle_repo.binding(conn, model)
        return row.lifecycle if row is not None else "?"

    def _run_signal(
        self, run: Run, problem: Any, *, resolved: bool = False, error: str | None = None
    ) -> LifecycleSignal:
        titles = {
            "sla": f"{run.model}/{run.version} has waited longer than its SLA for {run.transition} ({run.status})",
            "failed": f"{run.model}/{run.version} could not move {run.from_stage} -> {run.to_stage}: {error}",
            "stalled": f"the life cycle of {run.model}/{run.version} is stuck in {run.transition}: {error}",
        }
        return LifecycleSignal(
            lifecycle=run.lifecycle, model=run.model, version=run.version, problem=problem, subject=f"run:{run.id}",
            title=titles[problem], resolved=resolved,
            details={"run": run.id, "transition": run.transition, "status": run.status, "error": error},
            severity="critical" if problem == "failed" else "warning",
        )  # fmt: skip
