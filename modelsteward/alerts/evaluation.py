"""Pure alert-rule evaluation: does a monitor result or a KPI point breach a rule, pass it, or say nothing?"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from modelsteward.domain.monitoring import AlertRule, KPIPoint, LifecycleSignal, MonitorResult

Outcome = Literal["breach", "pass", "skip"]
_OPS = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}
_MAX_BREACHES_KEPT = 20


@dataclass(frozen=True)
class Verdict:
    """What one observation means for one rule. ``skip`` neither fires nor resolves (no data, an error)."""

    outcome: Outcome
    title: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


def fingerprint(rule: AlertRule, subject: str = "") -> str:
    """The identity of "the same problem": the rule, what it watches, the scope, and for life-cycle
    and system rules the subject (a run, a job, a worker), since each is its own problem (64 hex characters)."""
    if rule.monitor is not None:
        source = f"monitor:{rule.monitor}"
    elif rule.kpi is not None:
        source = f"kpi:{rule.kpi}"
    elif rule.system is not None:
        source = f"system:{rule.system}\x1f{subject}"
    else:
        source = f"lifecycle:{rule.lifecycle}\x1f{subject}"
    return hashlib.sha256(f"{rule.name}\x1f{source}\x1f{rule.scope or ''}".encode()).hexdigest()


def watches_lifecycle(rule: AlertRule, signal: LifecycleSignal) -> bool:
    return (
        rule.lifecycle is not None
        and rule.lifecycle in ("*", signal.lifecycle)
        and signal.problem in rule.problems
        and (rule.scope is None or rule.scope == signal.model)
    )


def judge_lifecycle(rule: AlertRule, signal: LifecycleSignal) -> Verdict:
    details = {"lifecycle": signal.lifecycle, "model": signal.model, "version": signal.version,
               "problem": signal.problem, "subject": signal.subject, **signal.details}  # fmt: skip
    if rule.description:
        details["description"] = rule.description
    if signal.resolved:
        return Verdict("pass", details=details)
    return Verdict("breach", title=f"{rule.name}: {signal.title}", details=details)


def watches_system(rule: AlertRule, source: str) -> bool:
    return rule.system is not None and rule.system == source


def judge_system(rule: AlertRule, *, problem: bool, title: str, details: dict[str, Any]) -> Verdict:
    """A condition Steward raised (``problem``) or cleared about itself: a breach or a pass, never a streak."""
    details = dict(details)
    if rule.description:
        details["description"] = rule.description
    if not problem:
        return Verdict("pass", details=details)
    return Verdict("breach", title=f"{rule.name}: {title}", details=details)


def lookup(figures: dict[str, Any], path: str) -> Any:
    """``figures[path]``, or a dotted path into nested dicts and lists (``"drift.share_drifted"``,
    ``"columns.0.score"``); ``None`` when any step is missing."""
    if path in figures:
        return figures[path]
    current: Any = figures
    for step in path.split("."):
        if isinstance(current, dict) and step in current:
            current = current[step]
        elif isinstance(current, list) and step.lstrip("-").isdigit() and -len(current) <= int(step) < len(current):
            current = current[int(step)]
        else:
            return None
    return current


def as_number(value: Any) -> float | None:
    """A finite number, or ``None`` (booleans, text, NaN and infinities are not figures to compare)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def compare(value: float, op: str, threshold: float) -> bool:
    return bool(_OPS[op](value, threshold))


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def watches_result(rule: AlertRule, result: MonitorResult) -> bool:
    return rule.monitor is not None and rule.monitor == result.monitor


def watches_kpi(rule: AlertRule, point: KPIPoint) -> bool:
    return rule.kpi is not None and rule.kpi == point.kpi and rule.scope == point.scope


def judge_result(rule: AlertRule, result: MonitorResult) -> Verdict:
    """Breach, pass or skip for a rule watching ``result.monitor``.

    Results with status ``not_enough_data`` or ``error`` are skipped: an empty window or a failed
    computation must never raise a false alarm, nor close a real one.
    """
    if result.status in ("not_enough_data", "error"):
        return Verdict("skip", reason=f"the monitor result is {result.status}")
    condition = rule.when
    details: dict[str, Any] = {
        "monitor": result.monitor,
        "run_id": result.run_id,
        "result_status": result.status,
        "window_start": result.window_start.isoformat(),
        "window_end": result.window_end.isoformat(),
        "rows": result.rows,
        "condition": condition.model_dump(exclude_none=True),
        "breach_count": len(result.breaches),
        "breaches": [b.model_dump(mode="json") for b in result.breaches[:_MAX_BREACHES_KEPT]],
    }
    if rule.description:
        details["description"] = rule.description
    if condition.status is not None:
        if result.status != "breach":
            return Verdict("pass", details=details)
        first = result.breaches[0] if result.breaches else None
        summary = ""
        if first is not None:
            where = f" {first.column}" if first.column else ""
            figures = f" {_fmt(first.value)}" if first.value is not None else ""
            limit = f" (threshold {_fmt(first.threshold)})" if first.threshold is not None else ""
            summary = f": {first.check}{where} {first.metric}{figures}{limit}"
            if len(result.breaches) > 1:
                summary += f" and {len(result.breaches) - 1} more"
        return Verdict("breach", title=f"{rule.name}: monitor {result.monitor} breached{summary}", details=details)
    assert condition.metric is not None and condition.threshold is not None
    value = as_number(lookup(result.figures, condition.metric))
    if value is None:
        return Verdict("skip", reason=f"the result has no numeric figure {condition.metric!r}")
    details["metric"] = condition.metric
    details["value"] = value
    if not compare(value, condition.op, condition.threshold):
        return Verdict("pass", details=details)
    title = (
        f"{rule.name}: {condition.metric} = {_fmt(value)} {condition.op} {_fmt(condition.threshold)}"
        f" on monitor {result.monitor}"
    )
    return Verdict("breach", title=title, details=details)


def judge_kpi(rule: AlertRule, point: KPIPoint) -> Verdict:
    """Breach or pass for a KPI rule (``metric: value``) watching ``point.kpi`` in ``point.scope``."""
    condition = rule.when
    assert condition.threshold is not None
    value = as_number(point.value)
    if value is None:
        return Verdict("skip", reason="the KPI value is not a finite number")
    details: dict[str, Any] = {
        "kpi": point.kpi,
        "scope": point.scope,
        "arm": point.arm,
        "ts": point.ts.isoformat(),
        "source": point.source,
        "metric": "value",
        "value": value,
        "condition": condition.model_dump(exclude_none=True),
    }
    if rule.description:
        details["description"] = rule.description
    if not compare(value, condition.op, condition.threshold):
        return Verdict("pass", details=details)
    arm = f" (arm {point.arm})" if point.arm else ""
    title = (
        f"{rule.name}: KPI {point.kpi} for {point.scope}{arm} = {_fmt(value)} {condition.op} "
        f"{_fmt(condition.threshold)}"
    )
    return Verdict("breach", title=title, details=details)
