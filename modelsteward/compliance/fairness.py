"""Fairness of decisions across groups with fairlearn: demographic parity (difference and ratio, the
four-fifths rule), equalized odds, and per-group performance. Pure: decisions and labels in, a result out."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from modelsteward.domain.compliance import Check, FairnessTest, TestResult
from modelsteward.errors import InvalidArgument, require


def favourable_decisions(outputs: pd.DataFrame, test: FairnessTest) -> np.ndarray:
    """1 where the model's decision is the favourable outcome, from its ``prediction`` or a cut score."""
    if test.decision is not None:
        if test.decision.score not in outputs.columns:
            raise InvalidArgument(
                f"the model has no output {test.decision.score!r} to decide on (outputs: {', '.join(outputs.columns)})",
                details={"field": "decision.score"},
            )
        score = outputs[test.decision.score].to_numpy(dtype=float)
        labels = np.where(score > test.decision.threshold, test.decision.above, test.decision.below)
    else:
        labels = outputs["prediction"].to_numpy()
    return _is(labels, test.favourable)


def _is(values: Any, favourable: Any) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind in "biuf" and isinstance(favourable, (int, float, bool)):
        return (values.astype(float) == float(favourable)).astype(int)
    return (values.astype(str) == str(favourable)).astype(int)


def fairness(decisions: np.ndarray, target: pd.Series, groups: pd.DataFrame, test: FairnessTest) -> TestResult:
    """Judge ``decisions`` (1 = favourable) against the favourable truth for each column of ``groups``.

    Selection rate is the share of favourable decisions; the equalized-odds difference is the larger of the
    true- and false-positive-rate gaps, with "positive" meaning favourable. Groups smaller than
    ``min_group_size`` are shown but left out of the judged figures (a ratio over five people is noise).
    """
    metrics = require("fairlearn.metrics", "fairness")
    truth = _is(target.to_numpy(), test.favourable)
    checks: list[Check] = []
    per_group: dict[str, list[dict[str, Any]]] = {}
    for column in groups.columns:
        sensitive = groups[column].astype(str).fillna("(missing)").to_numpy()
        frame = metrics.MetricFrame(
            metrics={
                "selection_rate": metrics.selection_rate,
                "true_positive_rate": metrics.true_positive_rate,
                "false_positive_rate": metrics.false_positive_rate,
                "accuracy": _accuracy,
                "count": metrics.count,
            },
            y_true=truth,
            y_pred=decisions,
            sensitive_features=pd.Series(sensitive, name=column),
        )
        table = frame.by_group.reset_index()
        table.columns = ["group", *table.columns[1:]]
        per_group[column] = [
            {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
            for row in _plain(table).to_dict(orient="records")
        ]
        judged = np.isin(sensitive, table.loc[table["count"] >= test.min_group_size, "group"].astype(str).to_numpy())
        if len(set(sensitive[judged])) < 2:
            checks.append(
                Check(
                    metric="groups",
                    value=float(len(set(sensitive[judged]))),
                    over=column,
                    bound=f">= 2 groups of >= {test.min_group_size}",
                    passed=False,
                )
            )
            continue
        y, d, s = truth[judged], decisions[judged], sensitive[judged]
        figures = {
            "demographic_parity_ratio": (metrics.demographic_parity_ratio, test.min_demographic_parity_ratio, ">="),
            "demographic_parity_difference": (
                metrics.demographic_parity_difference,
                test.max_demographic_parity_difference,
                "<=",
            ),
            "equalized_odds_difference": (metrics.equalized_odds_difference, test.max_equalized_odds_difference, "<="),
        }
        for name, (fn, bound, op) in figures.items():
            value = float(fn(y, d, sensitive_features=s))
            if bound is None:
                checks.append(Check(metric=name, value=value, bound="reported", passed=True, over=column))
                continue
            passed = value >= bound if op == ">=" else value <= bound
            checks.append(Check(metric=name, value=value, bound=f"{op} {bound:g}", passed=passed, over=column))
    failed = [c for c in checks if not c.passed]
    summary = (
        "; ".join(f"{c.metric} over {c.over} = {_num(c.value)}, required {c.bound}" for c in failed)
        if failed
        else f"{len(checks)} figures over {', '.join(groups.columns)} within bounds"
    )
    return TestResult(
        name="",
        type="fairness",
        status="fail" if failed else "pass",
        summary=summary,
        checks=checks,
        figures={
            "groups": per_group,
            "favourable": str(test.favourable),
            "rows": int(len(truth)),
            "favourable_rate": float(decisions.mean()) if len(decisions) else None,
        },
    )


def _accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if len(y_true) else float("nan")


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if column == "group":
            out[column] = out[column].astype(str)
        elif column == "count":
            out[column] = out[column].astype(int)
        else:
            out[column] = out[column].astype(float).round(6)
    return out


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
