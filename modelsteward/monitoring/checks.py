"""The checks a monitor runs: each turns a window (and its reference) into figures and breaches.

Every computation is a pure function of ``stats``; this module only picks the columns, calls it,
and says which figures breached which threshold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from modelsteward.domain.monitoring import (
    Breach,
    Check,
    DriftCheck,
    EstimatedPerformanceCheck,
    KPIQueryCheck,
    MonitorSpec,
    OptimizationCheck,
    PerformanceCheck,
    PredictionDriftCheck,
    QualityCheck,
    RuleHitRateCheck,
)
from modelsteward.errors import InvalidArgument
from modelsteward.monitoring.window import Window, load_with_feedback

if TYPE_CHECKING:
    from modelsteward.monitoring.service import MonitorService


@dataclass
class Context:
    spec: MonitorSpec
    current: Window
    service: MonitorService
    start: datetime
    end: datetime
    _reference: Window | None = field(default=None, repr=False)

    def reference_window(self) -> Window:
        if self._reference is None:
            self._reference = self.service.reference_window(self.spec, self.start)
        return self._reference


@dataclass
class Outcome:
    figures: dict[str, Any]
    breaches: list[Breach] = field(default_factory=list)


Runner = Callable[[Any, Context], Outcome]
_RUNNERS: dict[str, Runner] = {}


def runner(kind: str) -> Callable[[Runner], Runner]:
    def register(fn: Runner) -> Runner:
        _RUNNERS[kind] = fn
        return fn

    return register


def run(check: Check, context: Context) -> Outcome:
    return _RUNNERS[check.kind](check.body, context)


def _output(frame_window: Window, column: str, *, check: str) -> np.ndarray:
    outputs = frame_window.outputs()
    if column not in outputs.columns:
        raise InvalidArgument(
            f"the {check} check reads the output {column!r}, which the logged predictions do not have "
            f"(they have: {', '.join(outputs.columns) or 'none'})",
            details={"field": f"checks.{check}", "column": column},
        )
    return outputs[column].to_numpy()


def _compare(value: float | None, threshold: float, direction: str) -> bool:
    if value is None or not np.isfinite(value):
        return False
    return value < threshold if direction == "min" else value > threshold


def _training_profile(context: Context) -> tuple[Any, Any]:
    """The drift profile of the training data of the version that answered most of the window, and
    that version (its signature tells quality checks which nulls are allowed)."""
    dominant = context.current.dominant_version()
    if dominant is None:
        raise InvalidArgument("the window has no predictions")
    version = context.service.catalog.get_version(f"{dominant[0]}/{dominant[1]}")
    return _profile_of(context.service, version), version


def _profile_of(service: MonitorService, version: Any) -> Any:
    from modelsteward.stats.sketch import DriftProfile

    training = [d for d in version.datasets if d.role == "training"]
    if not training:
        raise InvalidArgument(
            f"{version.ref} was registered without training data, so there is no training profile to compare "
            "with: register it with training_data=..., or give the monitor a reference window",
            details={"field": "reference", "model_version": version.ref},
        )
    fingerprint = service.catalog.get_dataset(training[0].content_hash).fingerprint
    if fingerprint.drift_profile is None:
        raise InvalidArgument(
            f"the training data of {version.ref} has no drift profile (registered by an older release); "
            "give the monitor a reference window",
            details={"field": "reference", "model_version": version.ref},
        )
    return DriftProfile.model_validate(fingerprint.drift_profile)


def _columns(wanted: Any, available: list[str], *, check: str) -> list[str]:
    if wanted == "all":
        return available
    missing = [c for c in wanted if c not in available]
    if missing:
        raise InvalidArgument(
            f"the {check} check names column(s) {missing} that the model's inputs do not have "
            f"(they are: {', '.join(available)})",
            details={"field": f"checks.{check}.columns", "column": missing[0]},
        )
    return list(wanted)


def _drift_outcome(report: Any, check: str, max_share: float) -> Outcome:
    figures = {
        "status": "ok" if any(r.status == "ok" for r in report.rows) else "not_enough_data",
        **report.to_dict(),
    }
    breaches = []
    if report.share_drifted > max_share:
        breaches = [
            Breach(check=check, metric=row.statistic, value=row.value, threshold=row.threshold, column=row.column)
            for row in report.rows
            if row.drifted
        ]
    return Outcome(figures, breaches)


@runner("drift")
def _drift(check: DriftCheck, context: Context) -> Outcome:
    from modelsteward.stats.drift import detect_drift

    inputs = context.current.inputs()
    if context.spec.reference == "training":
        reference, _version = _training_profile(context)
        available = [c for c in reference.names if c in inputs.columns]
    else:
        reference = context.reference_window().inputs()
        if reference.empty:
            return Outcome({"status": "not_enough_data", "reason": "the reference window has no predictions"})
        available = [c for c in inputs.columns if c in reference.columns]
    columns = _columns(check.columns, available, check="drift")
    report = detect_drift(reference, inputs, columns=columns, stattest=check.stattest, threshold=check.threshold)
    return _drift_outcome(report, "drift", check.max_share_drifted)


@runner("prediction_drift")
def _prediction_drift(check: PredictionDriftCheck, context: Context) -> Outcome:
    from modelsteward.stats.drift import detect_drift

    current = _output(context.current, check.column, check="prediction_drift")
    reference_window = context.reference_window()
    if reference_window.size == 0:
        return Outcome({"status": "not_enough_data", "reason": "the reference window has no predictions"})
    reference = _output(reference_window, check.column, check="prediction_drift")
    report = detect_drift(
        pd.DataFrame({check.column: reference}),
        pd.DataFrame({check.column: current}),
        stattest=check.stattest,
        threshold=check.threshold,
    )
    return _drift_outcome(report, "prediction_drift", 0.0)


@runner("quality")
def _quality(check: QualityCheck, context: Context) -> Outcome:
    from modelsteward.stats.quality import check_quality

    profile, version = _training_profile(context)
    inputs = context.current.inputs()
    report = check_quality(
        inputs,
        profile,
        signature=version.signature,
        columns=[c for c in profile.names if c in inputs.columns],
        null_rate_tolerance=check.max_null_rate,
        max_out_of_range=check.max_out_of_range_rate,
        max_unseen=check.max_unseen_rate,
        max_duplicates=1.0,  # repeated applications are normal traffic for a scoring endpoint
    )
    figures = {"status": "ok", **report.to_dict()}
    breaches = [
        Breach(check="quality", metric=row.check, value=row.value, threshold=row.threshold, column=row.column)
        for row in report.rows
        if not row.passed
    ]
    return Outcome(figures, breaches)


@runner("performance")
def _performance(check: PerformanceCheck, context: Context) -> Outcome:
    from modelsteward.stats.performance import classification_metrics, regression_metrics

    service = context.service
    labelled = load_with_feedback(
        service.inference_root, service.feedback_root, context.spec.target, context.start, context.end
    )
    if labelled.size == 0 or check.actual not in labelled.rows.columns:
        return Outcome({"status": "not_enough_data", "labelled": 0, "reason": "no ground truth for this window yet"})
    actual = labelled.rows[check.actual].to_numpy()
    predicted = _output(labelled, check.prediction, check="performance")
    regression = check.metric in ("mae", "rmse", "mape", "r2")
    if regression:
        report = regression_metrics(actual, predicted)
    else:
        score = _output(labelled, check.score, check="performance") if check.score else None
        report = classification_metrics(actual, predicted, score)
    figures = {"status": report.status, "labelled": labelled.size, **report.to_dict()}
    value = report.values.get(check.metric)
    breaches = []
    if report.status == "ok" and _compare(value, check.threshold, check.direction):
        breaches.append(Breach(check="performance", metric=check.metric, value=value, threshold=check.threshold))
    if check.segment_by is not None:
        segments = _performance_by_segment(check, labelled, actual, predicted, regression)
        figures["segments"] = segments
        breaches += [
            Breach(
                check="performance",
                metric=check.metric,
                value=row[check.metric],
                threshold=check.threshold,
                segment=f"{check.segment_by}={row[check.segment_by]}",
            )
            for row in segments
            if row["status"] == "ok" and _compare(row.get(check.metric), check.threshold, check.direction)
        ]
    return Outcome(figures, breaches)


def _performance_by_segment(
    check: PerformanceCheck, labelled: Window, actual: np.ndarray, predicted: np.ndarray, regression: bool
) -> list[dict[str, Any]]:
    """The metric per value of an input column; a segment with too few labelled rows is ``not_enough_data``."""
    from modelsteward.stats.performance import by_segment, classification_metrics, regression_metrics

    assert check.segment_by is not None
    inputs = labelled.inputs()
    if check.segment_by not in inputs.columns:
        raise InvalidArgument(
            f"the performance check segments by {check.segment_by!r}, which the logged requests do not have "
            f"(they have: {', '.join(inputs.columns) or 'none'})",
            details={"field": "checks.performance.segment_by", "column": check.segment_by},
        )
    segment = inputs[check.segment_by].to_numpy()
    frame = pd.DataFrame({"_actual": actual, "_predicted": predicted, check.segment_by: segment})
    columns = {"y_true": "_actual", "y_pred": "_predicted"}
    if regression:
        fn: Callable[..., Any] = regression_metrics
    else:
        fn = classification_metrics
        if check.score:
            frame["_score"] = _output(labelled, check.score, check="performance")
            columns["y_score"] = "_score"
    breakdown = by_segment(frame, segment=check.segment_by, fn=fn, min_rows=check.min_segment_rows, **columns)
    return breakdown.to_dict()["rows"]


@runner("estimated_performance")
def _estimated(check: EstimatedPerformanceCheck, context: Context) -> Outcome:
    from modelsteward.stats.estimation import estimate

    scores = _output(context.current, check.score, check="estimated_performance").astype(float)
    result = estimate(scores)
    figures = {"status": result.status, **result.to_dict(), "realized": _estimate_against_labels(check, context)}
    value = result.values.get(check.metric) if result.status == "ok" else None
    breaches = []
    if _compare(value, check.threshold, "min"):
        breaches.append(
            Breach(check="estimated_performance", metric=check.metric, value=value, threshold=check.threshold)
        )
    return Outcome(figures, breaches)


def _estimate_against_labels(check: EstimatedPerformanceCheck, context: Context) -> dict[str, Any] | None:
    """Once ground truth has arrived for part of the window: the estimate over the labelled rows beside
    the performance realized on them, so that the estimation itself is checked."""
    from modelsteward.stats.estimation import compare, estimate
    from modelsteward.stats.performance import classification_metrics

    service = context.service
    labelled = load_with_feedback(
        service.inference_root, service.feedback_root, context.spec.target, context.start, context.end
    )
    if labelled.size == 0 or check.actual not in labelled.rows.columns:
        return None
    scores = _output(labelled, check.score, check="estimated_performance").astype(float)
    outputs = labelled.outputs()
    # without a label output, a row is predicted positive at a score of 0.5 or more (as the estimate assumes)
    predicted = outputs[check.prediction].to_numpy() if check.prediction in outputs else (scores >= 0.5).astype(int)
    try:
        guess = estimate(scores, predicted)
        realized = classification_metrics(labelled.rows[check.actual].to_numpy(), predicted, scores)
    except InvalidArgument as e:  # e.g. labels that are not 0/1: the estimate stands, its check cannot be made
        return {"labelled": labelled.size, "status": "error", "reason": e.message}
    if guess.status != "ok" or realized.status != "ok":
        return {"labelled": labelled.size, "status": "not_enough_data"}
    return {"labelled": labelled.size, "status": "ok", **compare(guess, realized).to_dict()}


@runner("rule_hit_rate")
def _rule_hit_rate(check: RuleHitRateCheck, context: Context) -> Outcome:
    from modelsteward.stats.kind_monitors import rule_hit_rates

    current = _output(context.current, "rule", check="rule_hit_rate")
    reference = context.reference_window()
    if reference.size == 0:
        return Outcome({"status": "not_enough_data", "reason": "the reference window has no predictions"})
    rates = rule_hit_rates(
        _output(reference, "rule", check="rule_hit_rate"), current, max_ratio=check.max_ratio, min_share=check.min_share
    )
    figures = {"status": rates.status, **rates.to_dict()}
    breaches = [
        Breach(
            check="rule_hit_rate",
            metric=f"share_{rate.flag}",
            value=rate.current_share,
            threshold=rate.reference_share,
            column=str(rate.rule),
        )
        for rate in rates.rules
        if rate.flag is not None and rates.breach
    ]
    return Outcome(figures, breaches)


@runner("optimization")
def _optimization(check: OptimizationCheck, context: Context) -> Outcome:
    from modelsteward.stats.kind_monitors import optimization_health

    rows = context.current.rows
    health = optimization_health(
        _output(context.current, "status", check="optimization"),
        _output(context.current, "objective", check="optimization").astype(float),
        rows["latency_ms"].to_numpy(dtype=float),
        run=rows["request_id"].to_numpy(),
        max_infeasible_rate=check.max_infeasible_rate,
    )
    figures = {"status": health.status, **health.to_dict()}
    breaches = []
    if health.breach:
        breaches.append(
            Breach(
                check="optimization",
                metric="infeasible_rate",
                value=health.infeasible_rate,
                threshold=check.max_infeasible_rate,
            )
        )
    return Outcome(figures, breaches)


@runner("kpi_query")
def _kpi_query(check: KPIQueryCheck, context: Context) -> Outcome:
    from modelsteward.monitoring.kpi_feeds import points_from_sql

    service = context.service
    known = service.kpi_series(check.kpi, check.scope)
    since = known[-1].ts if known else None
    points = points_from_sql(check.url, check.query, kpi=check.kpi, scope=check.scope, since=since)
    if points:
        service.record_kpis(points, actor="monitor")
    latest = points[-1].value if points else (known[-1].value if known else None)
    return Outcome({"status": "ok", "fetched": len(points), "latest": latest})


def run_on_dask(spec: MonitorSpec, service: MonitorService, start: datetime, end: datetime) -> tuple[int, Outcome]:
    """A drift-only monitor computed part by part on Dask; returns the window's rows and the outcome."""
    from modelsteward.monitoring.dask_engine import window_sketch
    from modelsteward.stats.drift import detect_drift

    checks = [c for c in spec.checks if c.kind == "drift"]
    if len(checks) != len(spec.checks) or spec.reference != "training":
        raise InvalidArgument(
            "on Dask a monitor runs drift checks against the training profile only; move the other checks "
            "to a monitor with engine: local",
            details={"field": "engine"},
        )
    if spec.target.deployment is not None:
        arms = service.deployments.get(spec.target.deployment).arms
        version_ref = next((a.version for a in arms if a.role == "champion"), None)
    else:
        assert spec.target.model is not None
        version_ref = service.catalog.get_version(spec.target.model).ref
    if version_ref is None or version_ref == "unresolved":
        raise InvalidArgument(f"cannot tell which version {spec.target.label} serves", details={"field": "target"})
    version = service.catalog.get_version(version_ref)
    profile = _profile_of(service, version)
    check: DriftCheck = checks[0].body
    columns = _columns(check.columns, profile.names, check="drift")
    sketch, rows = window_sketch(
        service.inference_root, spec.target, start, end, profile, columns,
        scheduler=service.dask_scheduler, timeout=service.dask_timeout,
    )  # fmt: skip
    if sketch is None or rows < spec.min_rows:
        return rows, Outcome({"status": "not_enough_data", "reason": f"{rows} rows in the window"})
    report = detect_drift(profile, sketch, columns=columns, stattest=check.stattest, threshold=check.threshold)
    return rows, _drift_outcome(report, "drift", check.max_share_drifted)
