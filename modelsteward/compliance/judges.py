"""Each kind of compliance test judged on a loaded version and its held-out data: pure functions from the
model, the data and the test's bounds to a :class:`TestResult` with its checks and figures."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from modelsteward.compliance.fairness import fairness, favourable_decisions
from modelsteward.domain.compliance import (
    Check,
    ComplianceSuite,
    ExplainabilityTest,
    FairnessTest,
    PerformanceTest,
    ReproducibilityTest,
    TestResult,
)
from modelsteward.errors import InvalidArgument
from modelsteward.stats.performance import MetricReport, classification_metrics, regression_metrics

if TYPE_CHECKING:
    from modelsteward.domain.records import ModelVersion
    from modelsteward.kinds.loaded import LoadedModel

# Model-agnostic SHAP costs rows x background x permutations predictions: past a thousand rows the mean |SHAP|
# barely moves, and the suite would run for hours on a slow model.
SHAP_MAX_ROWS = 1000


def _column(frame: pd.DataFrame, name: str, what: str) -> pd.Series:
    if name not in frame.columns:
        raise InvalidArgument(
            f"the held-out data has no {what} column {name!r} (columns: {', '.join(frame.columns)})",
            details={"field": what, "column": name},
        )
    return frame[name]


def fairness_test(
    test: FairnessTest, spec: ComplianceSuite, protected: list[str], model: LoadedModel, frame: pd.DataFrame
) -> TestResult:
    columns = test.sensitive or protected
    if not columns:
        raise InvalidArgument(
            "no protected attributes to test: name them in the test (sensitive) or in the model's "
            "metadata (protected_attributes)",
            details={"field": "sensitive"},
        )
    groups = pd.DataFrame({c: _column(frame, c, "sensitive") for c in columns})
    target = _column(frame, spec.target or "", "target")
    outputs = model.predict(frame, allow_extra=True)
    return fairness(favourable_decisions(outputs, test), target, groups, test)


def metric_report(outputs: pd.DataFrame, target: pd.Series, score: str | None) -> MetricReport:
    """Classification metrics when the model gives classes (with the positive-class score when it has one),
    regression metrics when it gives numbers for a numeric target with many values."""
    prediction = outputs["prediction"] if "prediction" in outputs.columns else outputs.iloc[:, 0]
    if score is None:
        probas = [c for c in outputs.columns if c.startswith("proba_")]
        score = probas[-1] if len(probas) == 2 else None
    numeric = pd.api.types.is_float_dtype(prediction) and target.nunique() > 20
    if numeric and score is None:
        return regression_metrics(target.to_numpy(), prediction.to_numpy())
    y_score = _column(outputs, score, "score").to_numpy(dtype=float) if score else None
    positive = score.removeprefix("proba_") if score and score.startswith("proba_") else None
    if positive is not None and pd.api.types.is_numeric_dtype(target):
        positive = type(target.iloc[0].item())(positive) if len(target) else positive
    return classification_metrics(target.to_numpy(), prediction.to_numpy(), y_score, positive=positive)


def performance_test(
    test: PerformanceTest,
    spec: ComplianceSuite,
    model: LoadedModel,
    frame: pd.DataFrame,
    champion: tuple[ModelVersion, LoadedModel] | None,
) -> TestResult:
    target = _column(frame, spec.target or "", "target")
    report = metric_report(model.predict(frame, allow_extra=True), target, test.score)
    checks: list[Check] = []
    for name, bound in test.min.items():
        value = _known(report, name)
        checks.append(
            Check(metric=name, value=value, bound=f">= {bound:g}", passed=value is not None and value >= bound)
        )
    for name, bound in test.max.items():
        value = _known(report, name)
        checks.append(
            Check(metric=name, value=value, bound=f"<= {bound:g}", passed=value is not None and value <= bound)
        )
    figures: dict[str, Any] = {"metrics": _clean(report.values), "rows": report.n}
    if test.champion is not None:
        c = test.champion
        mine = _known(report, c.metric)
        if champion is None:
            figures["champion"] = {"alias": c.alias, "note": "this version holds the alias: nothing to compare"}
        else:
            theirs_version, theirs_model = champion
            theirs = metric_report(theirs_model.predict(frame, allow_extra=True), target, test.score)
            other = _known(theirs, c.metric)
            drop = None if mine is None or other is None else (other - mine if c.higher_is_better else mine - other)
            figures["champion"] = {
                "alias": c.alias,
                "version": theirs_version.version,
                "metrics": _clean(theirs.values),
            }
            checks.append(
                Check(
                    metric=f"{c.metric} vs {c.alias} (v{theirs_version.version}: {_fmt(other)})",
                    value=mine,
                    bound=f"drop <= {c.max_drop:g}",
                    passed=drop is not None and drop <= c.max_drop,
                )
            )
    failed = [c for c in checks if not c.passed]
    summary = (
        "; ".join(f"{c.metric} = {_fmt(c.value)}, required {c.bound}" for c in failed)
        if failed
        else ", ".join(f"{c.metric} = {_fmt(c.value)}" for c in checks)
    )
    return TestResult(
        name="",
        type="performance",
        status="fail" if failed else "pass",
        summary=summary,
        checks=checks,
        figures=figures,
    )


def explainability_test(
    test: ExplainabilityTest, spec: ComplianceSuite, model: LoadedModel, frame: pd.DataFrame
) -> TestResult:
    from modelsteward.compliance import explain

    sample = frame.sample(n=min(test.rows, len(frame)), random_state=0) if len(frame) > test.rows else frame
    if test.method == "permutation":
        target = _column(sample, spec.target or "", "target")
        found = explain.permutation_importance(model, sample, target)
    else:
        found = explain.shap_importance(model, sample, max_rows=min(test.rows, SHAP_MAX_ROWS))
    ranking = [f.feature for f in found.features]
    top = ranking[: test.top]
    checks = [
        Check(
            metric=f"rank of {name}",
            value=float(ranking.index(name) + 1) if name in ranking else None,
            bound=f"> {test.top}",
            passed=name not in top,
        )
        for name in test.forbidden
    ]
    failed = [c for c in checks if not c.passed]
    summary = (
        f"{', '.join(c.metric.removeprefix('rank of ') for c in failed)} among the {test.top} most important "
        f"features ({', '.join(top)})"
        if failed
        else f"most important: {', '.join(top)}"
    )
    figures = found.model_dump(mode="json")
    return TestResult(
        name="",
        type="explainability",
        status="fail" if failed else "pass",
        summary=summary,
        checks=checks,
        figures=figures,
    )


def reproducibility_test(
    test: ReproducibilityTest,
    spec: ComplianceSuite,
    version: ModelVersion,
    model: LoadedModel,
    frame: pd.DataFrame,
    training: pd.DataFrame,
    train: Callable[[pd.DataFrame, dict[str, Any]], Any],
) -> TestResult:
    """Refit with ``train(training, params)`` and compare with the version on the held-out data."""
    from modelsteward.kinds.loaded import LoadedModel

    target = _column(frame, spec.target or "", "target")
    native = train(training, dict(version.params))
    refit = LoadedModel(model.kind, native, version)
    original_out = model.predict(frame, allow_extra=True)
    refit_out = refit.predict(frame, allow_extra=True)
    original = metric_report(original_out, target, test.score)
    again = metric_report(refit_out, target, test.score)
    checks = []
    for name in test.metrics:
        before, after = _known(original, name), _known(again, name)
        diff = None if before is None or after is None else abs(after - before)
        checks.append(
            Check(
                metric=f"{name} refit vs recorded",
                value=diff,
                bound=f"<= {test.tolerance:g}",
                passed=diff is not None and diff <= test.tolerance,
            )
        )
    agreement = (
        float(np.mean(original_out["prediction"].to_numpy() == refit_out["prediction"].to_numpy()))
        if "prediction" in original_out.columns
        else None
    )
    failed = [c for c in checks if not c.passed]
    summary = (
        "; ".join(f"{c.metric}: differs by {_fmt(c.value)}, tolerance {test.tolerance:g}" for c in failed)
        if failed
        else f"refit on {len(training)} training rows reproduces "
        + ", ".join(f"{m} within {test.tolerance:g}" for m in test.metrics)
    )
    return TestResult(
        name="",
        type="reproducibility",
        status="fail" if failed else "pass",
        summary=summary,
        checks=checks,
        figures={
            "recorded": _clean(original.values),
            "refit": _clean(again.values),
            "training_rows": len(training),
            "prediction_agreement": agreement,
            "params": {k: str(v) for k, v in version.params.items()},
        },
    )


def _known(report: MetricReport, name: str) -> float | None:
    if name not in report.values:
        raise InvalidArgument(
            f"unknown metric {name!r} (metrics: {', '.join(report.values)})",
            details={"field": "metric", "metric": name},
        )
    value = report.values[name]
    return None if value is None or not np.isfinite(value) else float(value)


def _clean(values: dict[str, float | None]) -> dict[str, float | None]:
    return {k: (round(float(v), 6) if v is not None and np.isfinite(v) else None) for k, v in values.items()}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
