"""Gate evaluation: pure functions from a gate, the model's thresholds and the gathered facts to a
:class:`GateResult` with its evidence. The engine gathers the facts; nothing here reads the store."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelsteward.domain.lifecycle import (
    ChallengerGate,
    ChampionGate,
    ComplianceGate,
    Gate,
    GateResult,
    MetricGate,
    MonitorGate,
    ProvenanceGate,
    Threshold,
    parameter_name,
)
from modelsteward.domain.monitoring import parse_duration


@dataclass(frozen=True)
class MonitorFact:
    status: str
    finished_at: datetime
    breaches: int = 0


@dataclass(frozen=True)
class ComplianceFact:
    run: int
    status: str
    finished_at: datetime
    failed: list[str]


@dataclass(frozen=True)
class Facts:
    """What the gates of one transition look at, gathered once."""

    now: datetime
    metrics: dict[str, float]
    provenance: dict[str, bool]
    champion: tuple[int, dict[str, float]] | None = None  # (version, metrics) of the stage's holder
    monitors: dict[str, MonitorFact | None] = field(default_factory=dict)
    arms: dict[str, ArmsFact] = field(default_factory=dict)  # per challenger gate label
    compliance: dict[str, ComplianceFact | None] = field(default_factory=dict)  # per suite


@dataclass(frozen=True)
class ArmsFact:
    """Live observations per arm: 0/1 correctness (metric) or KPI values, for the champion and this version."""

    champion_version: int | None
    champion: list[float]
    challenger: list[float]


def resolve(value: Threshold | None, parameters: dict[str, float]) -> float | None:
    """A threshold as a number: itself, or the value of the parameter it names."""
    if value is None:
        return None
    name = parameter_name(value)
    if name is None:
        return float(value)
    return float(parameters[name])


def evaluate(gate: Gate, parameters: dict[str, float], facts: Facts) -> GateResult:
    body = gate.body
    if isinstance(body, MetricGate):
        return _metric(body, parameters, facts)
    if isinstance(body, ChampionGate):
        return _champion(body, parameters, facts)
    if isinstance(body, MonitorGate):
        return _monitor(body, facts)
    if isinstance(body, ChallengerGate):
        return _challenger(body, facts.arms.get(label(gate)))
    if isinstance(body, ComplianceGate):
        return _compliance(body, facts)
    assert isinstance(body, ProvenanceGate)
    return _provenance(body, facts)


def label(gate: Gate) -> str:
    body = gate.body
    if isinstance(body, MetricGate):
        return f"metric {body.metric}"
    if isinstance(body, ChampionGate):
        return f"champion {body.metric}"
    if isinstance(body, MonitorGate):
        return f"monitor {body.monitor}"
    if isinstance(body, ChallengerGate):
        return f"challenger {body.metric or body.kpi} on {body.deployment}"
    if isinstance(body, ComplianceGate):
        return f"compliance {body.suite}"
    return "provenance"


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _metric(gate: MetricGate, parameters: dict[str, float], facts: Facts) -> GateResult:
    low, high = resolve(gate.min, parameters), resolve(gate.max, parameters)
    bounds = " and ".join(
        x for x in (f">= {low:g}" if low is not None else "", f"<= {high:g}" if high is not None else "") if x
    )
    name = f"metric {gate.metric}"
    value = _number(facts.metrics.get(gate.metric))
    if value is None:
        known = ", ".join(sorted(facts.metrics)) or "none"
        return GateResult(
            gate=name,
            passed=False,
            threshold=bounds,
            reason=f"the version has no metric {gate.metric!r} (it has: {known})",
        )
    passed = (low is None or value >= low) and (high is None or value <= high)
    reason = f"{gate.metric} = {value:.4g}, required {bounds}"
    return GateResult(gate=name, passed=passed, value=value, threshold=bounds, reason=reason)


def _champion(gate: ChampionGate, parameters: dict[str, float], facts: Facts) -> GateResult:
    delta = resolve(gate.min_delta, parameters) or 0.0
    name = f"champion {gate.metric}"
    value = _number(facts.metrics.get(gate.metric))
    if value is None:
        return GateResult(gate=name, passed=False, reason=f"the version has no metric {gate.metric!r}")
    if facts.champion is None:
        return GateResult(
            gate=name, passed=True, value=value, reason=f"no version holds {gate.stage!r} yet: nothing to beat"
        )
    version, metrics = facts.champion
    theirs = _number(metrics.get(gate.metric))
    if theirs is None:
        return GateResult(
            gate=name,
            passed=True,
            value=value,
            reason=f"the champion (version {version}) has no {gate.metric!r} to compare",
        )
    gain = value - theirs if gate.higher_is_better else theirs - value
    passed = gain >= delta
    direction = "higher" if gate.higher_is_better else "lower"
    return GateResult(
        gate=name,
        passed=passed,
        value=value,
        threshold=theirs + delta if gate.higher_is_better else theirs - delta,
        evidence={"champion_version": version, "champion_value": theirs, "gain": gain, "min_delta": delta},
        reason=f"{gate.metric} {value:.4g} vs champion version {version} {theirs:.4g}: gain {gain:+.4g}, "
        f"required {delta:+.4g} ({direction} is better)",
    )


def _monitor(gate: MonitorGate, facts: Facts) -> GateResult:
    name = f"monitor {gate.monitor}"
    fact = facts.monitors.get(gate.monitor)
    if fact is None:
        return GateResult(gate=name, passed=False, reason=f"monitor {gate.monitor!r} has no result yet")
    age = facts.now - fact.finished_at
    limit = parse_duration(gate.max_age)
    evidence = {"status": fact.status, "finished_at": fact.finished_at.isoformat(), "breaches": fact.breaches}
    if age > limit:
        return GateResult(
            gate=name, passed=False, value=fact.status, evidence=evidence,
            reason=f"its latest result is {_age(age)} old, older than {gate.max_age}",
        )  # fmt: skip
    passed = fact.status in gate.allow
    reason = f"latest result {fact.status} ({_age(age)} ago); allowed: {', '.join(gate.allow)}"
    return GateResult(
        gate=name, passed=passed, value=fact.status, threshold=",".join(gate.allow), evidence=evidence, reason=reason
    )


def _compliance(gate: ComplianceGate, facts: Facts) -> GateResult:
    name = f"compliance {gate.suite}"
    fact = facts.compliance.get(gate.suite)
    if fact is None:
        return GateResult(gate=name, passed=False, reason=f"the version has no run of suite {gate.suite!r} yet "
                          f"(steward compliance run REF --suite {gate.suite})")  # fmt: skip
    evidence = {"run": fact.run, "status": fact.status, "finished_at": fact.finished_at.isoformat(),
                "failed": fact.failed}  # fmt: skip
    age = facts.now - fact.finished_at
    if age > parse_duration(gate.max_age):
        why = f"its latest run ({fact.run}) is {_age(age)} old, older than {gate.max_age}"
        return GateResult(gate=name, passed=False, value=fact.status, evidence=evidence, reason=why)
    if fact.status != "pass":
        return GateResult(gate=name, passed=False, value=fact.status, evidence=evidence,
                          reason=f"run {fact.run}: {fact.status}: " + "; ".join(fact.failed))  # fmt: skip
    return GateResult(gate=name, passed=True, value=fact.status, evidence=evidence,
                      reason=f"run {fact.run} passed every test")  # fmt: skip


def _age(delta: Any) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h" if seconds < 172800 else f"{seconds // 86400} d"


_PROVENANCE = {
    "training_data": "a training-data fingerprint",
    "git_commit": "the git commit of its code",
    "clean_tree": "code committed (no uncommitted changes)",
    "environment": "the package environment",
    "signature": "an input signature",
}


def _provenance(gate: ProvenanceGate, facts: Facts) -> GateResult:
    missing = [item for item in gate.require if not facts.provenance.get(item, False)]
    evidence = {item: bool(facts.provenance.get(item, False)) for item in gate.require}
    if missing:
        return GateResult(
            gate="provenance", passed=False, evidence=evidence,
            reason="cannot be reproduced without " + "; ".join(_PROVENANCE[m] for m in missing),
        )  # fmt: skip
    return GateResult(gate="provenance", passed=True, evidence=evidence, reason="records " + ", ".join(gate.require))


def _challenger(gate: ChallengerGate, fact: ArmsFact | None) -> GateResult:
    """Champion vs challenger with a significance test; the comparison is the evidence."""
    from modelsteward.stats.kpi import compare_arms

    what = gate.metric or gate.kpi or "?"
    name = f"challenger {what} on {gate.deployment}"
    if fact is None or fact.champion_version is None:
        return GateResult(
            gate=name, passed=False, reason=f"no champion answered on {gate.deployment} in the last {gate.window}"
        )
    labels = (f"champion v{fact.champion_version}", "this version")
    kind = "proportion" if gate.metric is not None else "mean"
    result = compare_arms(fact.champion, fact.challenger, kind=kind, alpha=gate.alpha, min_n=gate.min_samples,
                          labels=labels, name=f"the {what}")  # fmt: skip
    evidence = result.to_dict()
    if result.status != "ok" or result.difference is None:
        return GateResult(
            gate=name, passed=False, evidence=evidence, threshold=f">= {gate.min_samples} per arm",
            reason=f"not enough data to decide: {len(fact.champion)} observations for the champion and "
            f"{len(fact.challenger)} for this version (at least {gate.min_samples} each)",
        )  # fmt: skip
    gain = result.difference if gate.higher_is_better else -result.difference
    if gate.require == "better":
        passed = bool(result.significant) and gain > 0
    else:
        passed = not (result.significant and gain < 0)
    required = "significantly better" if gate.require == "better" else "not significantly worse"
    return GateResult(
        gate=name, passed=passed, value=result.estimate_b, threshold=result.estimate_a, evidence=evidence,
        reason=f"{result.verdict}; required: {required}",
    )  # fmt: skip
