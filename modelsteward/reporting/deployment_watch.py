"""What watches a deployment: the monitors on its traffic or on the models it serves, and the reference-vs-current
distributions of the columns a drift run found drifted (drawn as the monitor's HTML report draws them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelsteward.domain.monitoring import Monitor, MonitorResult
from modelsteward.domain.records import Deployment
from modelsteward.domain.refs import named_model
from modelsteward.errors import StewardError
from modelsteward.monitoring.report import column_shares


@dataclass(frozen=True)
class Watch:
    """A monitor watching a deployment, and how: ``direct`` (its traffic) or ``via`` another deployment's
    pipeline step or a model version that the deployment also serves."""

    monitor: Monitor
    how: str  # "direct", "step score of credit-decision", "model credit-risk"


@dataclass(frozen=True)
class Distribution:
    """Shares of a drifted column's values in the reference and in the run's window, on common bins."""

    column: str
    statistic: str
    value: float | None
    threshold: float | None
    categorical: bool
    labels: list[str]
    reference: list[float]
    current: list[float]


def step_models(deployment: Deployment) -> dict[str, str]:
    """``{step: model name}`` of a pipeline deployment (empty for a route set)."""
    return {step: named_model(ref) for step, ref in deployment.spec.model_steps.items()}


def served_models(deployment: Deployment) -> set[str]:
    """The models a deployment answers with: its arms, its shadows and its pipeline's steps."""
    return deployment.spec.models


def watching(
    deployment: Deployment, monitors: list[Monitor], lookup: Callable[[str], Deployment | None]
) -> list[Watch]:
    """The monitors on ``deployment``'s traffic first, then those on a model it serves (a model target, or a
    step of another deployment's pipeline running that model); ``lookup`` finds another deployment by name."""
    served = served_models(deployment)
    direct, related = [], []
    for monitor in sorted(monitors, key=lambda m: m.name):
        target = monitor.spec.target
        if target.deployment == deployment.name:
            direct.append(Watch(monitor, "direct"))
        elif target.model is not None and named_model(target.model) in served:
            related.append(Watch(monitor, f"model {target.model}"))
        elif target.deployment is not None and target.step is not None:
            other = lookup(target.deployment)
            if other is not None and step_models(other).get(target.step) in served:
                related.append(Watch(monitor, f"step {target.step} of {target.deployment}"))
    return direct + related


def drift_distributions(st: Any, monitor: Monitor, result: MonitorResult) -> list[Distribution]:
    """The reference and the current shares of each column ``result``'s drift check found drifted (the first
    :data:`~modelsteward.monitoring.report.MAX_DISTRIBUTIONS`); empty when the window or its reference is gone.
    ``st`` is an embedded steward (it reads the prediction log)."""

    from modelsteward.monitoring.report import _windows

    drift = result.figures.get("drift")
    rows = [r for r in (drift or {}).get("rows", []) if isinstance(r, dict) and r.get("drifted")]
    if not rows:
        return []
    try:
        current, reference = _windows(st, monitor, result)
    except StewardError:
        return []
    if reference is None or current is None or current.empty:
        return []
    out = []
    for row, categorical, labels, ref_share, cur_share in column_shares(rows, current, reference):
        name = row["column"]
        out.append(
            Distribution(
                column=name,
                statistic=str(row.get("statistic") or ""),
                value=row.get("value"),
                threshold=row.get("threshold"),
                categorical=categorical,
                labels=[str(label) for label in labels],
                reference=[float(v) for v in ref_share],
                current=[float(v) for v in cur_share],
            )
        )
    return out


Series = dict[str, list[tuple[datetime, float | None]]]


def drift_series(results: list[MonitorResult]) -> tuple[Series, dict[str, float | None]]:
    """The deciding drift statistic per column over the runs (oldest first), as ``{"income (wasserstein)":
    [(window end, value), ...]}``, and each series' threshold (the latest run's)."""
    from modelsteward.monitoring.report import _drift_scores, _series

    runs = sorted(results, key=lambda r: (r.window_end, r.run_id or 0))
    thresholds: dict[str, float | None] = {}
    for result in runs:
        for row in (result.figures.get("drift") or {}).get("rows") or []:
            if isinstance(row, dict):
                thresholds[f"{row['column']} ({row['statistic']})"] = row.get("threshold")
    return _series(runs, _drift_scores("drift")), thresholds


def performance_series(results: list[MonitorResult]) -> Series:
    """Performance per run once ground truth arrived (``accuracy``...) and as estimated before it
    (``accuracy (estimated)``), oldest run first."""
    from modelsteward.monitoring.report import _performance, _series

    return _series(sorted(results, key=lambda r: (r.window_end, r.run_id or 0)), _performance)
