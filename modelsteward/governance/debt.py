"""Model debt: what a model owes its owners (no monitor, stale monitoring, open alerts, failing gates,
compliance findings on the production version, an approval or a retraining overdue, no owner), scored so
that the worst come first."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from modelsteward.domain.records import DebtFlag, ModelDebt

WEIGHTS = {
    "unmonitored": 3,
    "open_alert": 3,
    "failing_gates": 2,
    "compliance_findings": 2,
    "overdue_retraining": 2,
    "stale_monitoring": 1,
    "overdue_review": 1,
    "no_owner": 1,
}


@dataclass(frozen=True)
class DebtFacts:
    """What is known of one model, gathered by the caller."""

    model: str
    owner: str | None
    production_version: int | None
    production_since: datetime | None
    monitors: list[str] = field(default_factory=list)
    last_result_at: datetime | None = None
    open_alerts: list[str] = field(default_factory=list)
    failed_run: str | None = None  # the latest run's transition when it failed its gates
    overdue_runs: list[str] = field(default_factory=list)  # transitions waiting past their SLA
    compliance_findings: list[str] = field(default_factory=list)  # the production version's failing suites


def assess(facts: DebtFacts, *, now: datetime, max_age: timedelta, stale_after: timedelta) -> ModelDebt:
    """The flags and the score of one model; a model not in production owes only its owner."""
    flags: list[DebtFlag] = []

    def flag(code: str, message: str) -> None:
        flags.append(DebtFlag(code=code, message=message, weight=WEIGHTS[code]))  # type: ignore[arg-type]

    live = facts.production_version is not None
    if live and not facts.monitors:
        flag("unmonitored", f"version {facts.production_version} is in production and no monitor watches it")
    if live and facts.monitors and (facts.last_result_at is None or now - facts.last_result_at > stale_after):
        seen = f"last result {facts.last_result_at:%Y-%m-%d}" if facts.last_result_at else "no result yet"
        flag("stale_monitoring", f"its monitors ({', '.join(facts.monitors)}) have not run recently: {seen}")
    for title in facts.open_alerts:
        flag("open_alert", f"open alert: {title}")
    if facts.failed_run is not None:
        flag("failing_gates", f"its latest life-cycle transition ({facts.failed_run}) failed")
    for finding in facts.compliance_findings:
        flag("compliance_findings", f"version {facts.production_version} in production: {finding}")
    for transition in facts.overdue_runs:
        flag("overdue_review", f"{transition} waits on an approval past its SLA")
    if live and facts.production_since is not None and now - facts.production_since > max_age:
        days = (now - facts.production_since).days
        flag("overdue_retraining", f"version {facts.production_version} has been in production for {days} days")
    if not facts.owner:
        flag("no_owner", "no owner is recorded")
    return ModelDebt(model=facts.model, score=sum(f.weight for f in flags), in_production=live, flags=flags)
