"""The portfolio at a glance, for managers: headline figures, models per life-cycle stage and business unit,
the most indebted models over time, open alerts by severity and each KPI's latest value and weekly change.

Pure functions over what the facade returns (overview rows, debt snapshots, alerts, KPI points): the dashboard's
portfolio page shapes nothing itself.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from modelsteward.domain.monitoring import Alert, KPIPoint
from modelsteward.domain.records import BusinessKPI, DebtPoint, ModelOverview

#: the life-cycle stages in the order a version moves through them; others (a custom life cycle's) follow
STAGE_ORDER = ("development", "staging", "shadow", "canary", "production", "retired")
SEVERITY_ORDER = ("critical", "error", "warning", "info")
NO_UNIT = "no business unit"
NOT_LIVE = "not in production"


@dataclass(frozen=True)
class Headline:
    models: int
    in_production: int
    with_debt: int
    open_alerts: int


@dataclass(frozen=True)
class StageUnitTable:
    """How many models sit in each stage (rows) for each business unit (columns)."""

    stages: list[str]
    units: list[str]
    counts: dict[tuple[str, str], int]

    def count(self, stage: str, unit: str) -> int:
        return self.counts.get((stage, unit), 0)

    def stage_total(self, stage: str) -> int:
        return sum(self.count(stage, u) for u in self.units)

    def unit_total(self, unit: str) -> int:
        return sum(self.count(s, unit) for s in self.stages)


@dataclass(frozen=True)
class KPIGlance:
    """A KPI's daily values (the mean of a day's observations), the latest one and its change over a week."""

    kpi: str
    scope: str
    days: list[date]
    values: list[float]
    latest: float
    week_ago: float | None
    unit: str | None = None
    direction: str | None = None
    description: str = ""

    @property
    def change(self) -> float | None:
        return None if self.week_ago is None else self.latest - self.week_ago

    @property
    def better(self) -> bool | None:
        """Did the week's change go the way the KPI's owners want (None: no direction, or no change)?"""
        if self.change is None or self.change == 0 or self.direction not in ("increase", "decrease"):
            return None
        return (self.change > 0) == (self.direction == "increase")


@dataclass(frozen=True)
class AlertSummary:
    by_severity: list[tuple[str, int]]
    newest: list[Alert] = field(default_factory=list)
    total: int = 0


def stage_of(row: ModelOverview) -> str:
    """A model's place: its production version's life-cycle stage; a model no life cycle governs is in
    production when its production alias is set."""
    if row.stage:
        return row.stage
    return "production" if row.production_version is not None else NOT_LIVE


def headline(rows: list[ModelOverview], open_alerts: list[Alert]) -> Headline:
    return Headline(
        models=len(rows),
        in_production=sum(1 for r in rows if r.production_version is not None),
        with_debt=sum(1 for r in rows if r.debt_score),
        open_alerts=len(open_alerts),
    )


def stage_unit_table(rows: list[ModelOverview]) -> StageUnitTable:
    counts = Counter((stage_of(r), r.business_unit or NO_UNIT) for r in rows)
    seen_stages = {s for s, _ in counts}
    stages = [s for s in STAGE_ORDER if s in seen_stages] + sorted(seen_stages - {*STAGE_ORDER, NOT_LIVE})
    if NOT_LIVE in seen_stages:
        stages.append(NOT_LIVE)
    units = sorted({u for _, u in counts}, key=lambda u: (u == NO_UNIT, u.lower()))
    return StageUnitTable(stages=stages, units=units, counts=dict(counts))


def most_indebted(history: list[DebtPoint], n: int = 5) -> list[str]:
    """The ``n`` models with the most debt in the latest snapshot (then over the whole period), worst first;
    models that never carried debt are left out."""
    if not history:
        return []
    latest = history[-1].models
    overall: Counter[str] = Counter()
    for point in history:
        overall.update(point.models)
    candidates = [m for m, total in overall.items() if total > 0]
    return sorted(candidates, key=lambda m: (-latest.get(m, 0), -overall[m], m))[:n]


def alert_summary(open_alerts: list[Alert], n: int = 5) -> AlertSummary:
    counts = Counter(a.severity for a in open_alerts)
    order = [s for s in SEVERITY_ORDER if s in counts] + sorted(set(counts) - set(SEVERITY_ORDER))
    newest = sorted(open_alerts, key=lambda a: (a.last_fired_at, a.id), reverse=True)[:n]
    return AlertSummary(by_severity=[(s, counts[s]) for s in order], newest=newest, total=len(open_alerts))


def kpi_glance(
    kpi: str, scope: str, points: Iterable[KPIPoint], *, declared: BusinessKPI | None = None, week: int = 7
) -> KPIGlance | None:
    """The KPI's daily means; the latest against the one ``week`` days before (or the nearest earlier day)."""
    by_day: dict[date, list[float]] = defaultdict(list)
    for p in points:
        by_day[p.ts.date()].append(p.value)
    if not by_day:
        return None
    days = sorted(by_day)
    values = [sum(by_day[d]) / len(by_day[d]) for d in days]
    target = days[-1] - timedelta(days=week)
    earlier = [v for d, v in zip(days, values, strict=True) if d <= target]
    return KPIGlance(
        kpi=kpi,
        scope=scope,
        days=days,
        values=values,
        latest=values[-1],
        week_ago=earlier[-1] if earlier else None,
        unit=declared.unit if declared else None,
        direction=declared.direction if declared else None,
        description=declared.description if declared else "",
    )


def sparkline_start(now: datetime, days: int = 30) -> datetime:
    """Where a KPI's sparkline starts: ``days`` before ``now``."""
    return now - timedelta(days=days)
