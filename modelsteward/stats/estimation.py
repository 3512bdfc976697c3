"""Performance of a binary classifier estimated before labels arrive (confidence-based, as NannyML's CBPE).

If the predicted probability ``p`` of the positive class is calibrated, a row's label is 1 with
probability ``p``; summing those probabilities gives the expected confusion matrix, and from it
the expected accuracy, precision, recall and F1. The expected ROC AUC comes from the expected true
and false positive rates at every threshold over the sorted scores. It holds under covariate shift
(the inputs change, ``P(y | x)`` does not); it cannot see concept shift. When the reference data
shows miscalibration, :func:`calibrate` fits an isotonic map to apply to the scores first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from modelsteward.errors import InvalidArgument, require
from modelsteward.stats.performance import MetricReport, json_ready, reliability_table

ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


@dataclass(frozen=True)
class MetricEstimate:
    """An estimated metric with one standard error of sampling and the band ``value ± z·std_error``."""

    value: float | None
    std_error: float | None = None
    lower: float | None = None
    upper: float | None = None


@dataclass(frozen=True)
class Estimate:
    """Expected performance of one set of predictions; ``expected`` holds the expected confusion counts."""

    status: Literal["ok", "not_enough_data"]
    n: int
    dropped: int
    threshold: float | None
    metrics: dict[str, MetricEstimate]
    expected: dict[str, float] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> float | None:
        return self.metrics[name].value

    @property
    def values(self) -> dict[str, float | None]:
        return {name: m.value for name, m in self.metrics.items()}

    def to_dict(self) -> dict[str, Any]:
        return json_ready(asdict(self))


def _array(values: Any, name: str) -> np.ndarray:
    array = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    if array.ndim != 1:
        raise InvalidArgument(f"{name} must be a 1-D array", details={"field": name})
    return array


def _zero_one(values: np.ndarray, name: str) -> np.ndarray:
    """0/1 or boolean labels as booleans; anything else is the caller's mistake."""
    if values.dtype == bool:
        return values
    try:
        numbers = values.astype(float)
    except (TypeError, ValueError):
        numbers = np.full(len(values), np.nan)
    if not np.all((numbers == 0) | (numbers == 1)):
        raise InvalidArgument(f"{name} must be 0/1 or booleans", details={"field": name})
    return numbers == 1


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def _expected_auc(p: np.ndarray) -> float | None:
    """Area under the expected ROC curve: expected TPR and FPR at each distinct score, highest first."""
    ordered = np.sort(p)[::-1]
    tp, fp = np.cumsum(ordered), np.cumsum(1.0 - ordered)
    if tp[-1] <= 0 or fp[-1] <= 0:
        return None
    # Tied scores share one threshold: keep the last row of each run of equal scores.
    last = np.r_[ordered[1:] != ordered[:-1], True]
    tpr = np.r_[0.0, tp[last] / tp[-1]]
    fpr = np.r_[0.0, fp[last] / fp[-1]]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def _auc_std_error(auc: float, positives: float, negatives: float) -> float | None:
    # Hanley & McNeil (1982) with the expected class counts; it also counts score sampling, so it is
    # a conservative band for labels drawn given fixed scores.
    if positives < 1 or negatives < 1:
        return None
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)) / (
        positives * negatives
    )
    return math.sqrt(max(var, 0.0))


def estimate(
    scores: Any,
    predictions: Any = None,
    threshold: float = 0.5,
    *,
    z: float | None = 3.0,
) -> Estimate:
    """Expected accuracy, precision, recall, F1 and ROC AUC from calibrated positive-class probabilities.

    ``predictions`` are the 0/1 (or boolean) labels the model gave; without them a row is
    predicted positive when its score is at least ``threshold``. Rows with a non-finite score or a
    missing prediction are counted and dropped. With ``z`` each metric carries its standard error
    (the labels' Bernoulli sampling given the scores, by the delta method for ratios; Hanley-McNeil
    for the AUC) and the band ``value ± z·std_error``.

    >>> estimate(model_scores)["accuracy"]
    0.87
    """
    p_all = _array(scores, "scores").astype(float)
    keep = np.isfinite(p_all)
    pred_all = None
    if predictions is not None:
        pred_all = _array(predictions, "predictions")
        if len(pred_all) != len(p_all):
            raise InvalidArgument("scores and predictions differ in length", details={"field": "predictions"})
        keep &= ~pd.isna(pred_all)
    p = p_all[keep]
    n, dropped = int(keep.sum()), int(len(p_all) - keep.sum())
    if p.size and (p.min() < 0 or p.max() > 1):
        raise InvalidArgument("scores must be probabilities between 0 and 1", details={"field": "scores"})
    if pred_all is None:
        positive = p >= threshold
    else:
        positive = _zero_one(pred_all[keep], "predictions")
    reasons: dict[str, str] = {}
    if dropped:
        reasons["dropped"] = f"{dropped} row(s) with a non-finite score or a missing prediction"
    if n == 0:
        reasons["status"] = "no rows with a finite score"
        metrics = {name: MetricEstimate(None) for name in ESTIMATED_METRICS}
        return Estimate("not_enough_data", 0, dropped, threshold if pred_all is None else None, metrics, {}, reasons)

    tp, fn = float(p[positive].sum()), float(p[~positive].sum())
    predicted_positive = int(positive.sum())
    fp, tn = predicted_positive - tp, (n - predicted_positive) - fn
    # Variances of the realized counts: each label is Bernoulli(p) given the score.
    var_tp, var_fn = float(np.sum((p * (1 - p))[positive])), float(np.sum((p * (1 - p))[~positive]))
    values = {
        "accuracy": (tp + tn) / n,
        "precision": _ratio(tp, predicted_positive),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, tp + predicted_positive + fn),
        "roc_auc": _expected_auc(p),
    }
    errors: dict[str, float | None] = {
        "accuracy": math.sqrt(var_tp + var_fn) / n,
        "precision": math.sqrt(var_tp) / predicted_positive if predicted_positive else None,
        "recall": None,
        "f1": None,
        "roc_auc": None,
    }
    if tp + fn > 0:
        # recall = TP / (TP + FN) and F1 = 2TP / (TP + PP + FN): TP and FN are independent sums.
        # Shares before squares: squaring a tiny expected count would underflow to zero.
        positives, f1_base = tp + fn, tp + predicted_positive + fn
        errors["recall"] = math.sqrt((fn / positives) ** 2 * var_tp + (tp / positives) ** 2 * var_fn) / positives
        spread = ((predicted_positive + fn) / f1_base) ** 2 * var_tp + (tp / f1_base) ** 2 * var_fn
        errors["f1"] = 2 * math.sqrt(spread) / f1_base
    if values["roc_auc"] is not None:
        errors["roc_auc"] = _auc_std_error(values["roc_auc"], tp + fn, n - tp - fn)
    if predicted_positive == 0:
        reasons["precision"] = "no positive predictions"
    if values["roc_auc"] is None:
        reasons["roc_auc"] = "the scores leave no expected positives or no expected negatives"
    metrics = {}
    for name in ESTIMATED_METRICS:
        value, se = values[name], errors[name]
        if value is None or z is None or se is None:
            metrics[name] = MetricEstimate(value, se if z is not None else None)
        else:
            metrics[name] = MetricEstimate(value, se, max(0.0, value - z * se), min(1.0, value + z * se))
    expected = {"tp": tp, "fp": fp, "fn": fn, "tn": tn}
    return Estimate("ok", n, dropped, threshold if pred_all is None else None, metrics, expected, reasons)


@dataclass(frozen=True)
class Calibrator:
    """A monotone map from raw scores to calibrated probabilities, piecewise linear through ``(x, y)``.

    ``ece_before`` is the reference's expected calibration error (10 bins) before calibration;
    ``recommended`` says it exceeds the tolerance ``calibrate`` was given. It is plain data, so it
    can be stored as JSON and rebuilt with :meth:`from_dict`.
    """

    status: Literal["ok", "not_enough_data"]
    x: list[float]
    y: list[float]
    n: int
    dropped: int
    ece_before: float | None
    recommended: bool
    reasons: dict[str, str] = field(default_factory=dict)

    def apply(self, scores: Any) -> np.ndarray:
        """Calibrated probabilities; scores outside the reference range take the nearest end value."""
        return np.interp(np.asarray(scores, dtype=float), self.x, self.y)

    __call__ = apply

    def to_dict(self) -> dict[str, Any]:
        return json_ready(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibrator:
        return cls(**dict(data))


IDENTITY = ([0.0, 1.0], [0.0, 1.0])


def calibrate(
    reference_scores: Any, reference_labels: Any, *, tolerance: float = 0.02, min_rows: int = 100
) -> Calibrator:
    """Fit an isotonic calibration (scikit-learn ``IsotonicRegression``) on reference scores and 0/1 labels.

    With fewer than ``min_rows`` usable rows or a single class, the result is the identity map
    with status ``not_enough_data``.

    >>> calibrator = calibrate(reference["proba_1"], reference["defaulted_90d"])
    >>> estimate(calibrator.apply(current["proba_1"])) if calibrator.recommended else estimate(current["proba_1"])
    """
    s_all = _array(reference_scores, "reference_scores").astype(float)
    y_all = _array(reference_labels, "reference_labels")
    if len(s_all) != len(y_all):
        raise InvalidArgument("reference scores and labels differ in length", details={"field": "reference_labels"})
    keep = np.isfinite(s_all) & ~pd.isna(y_all)
    s, y = s_all[keep], _zero_one(y_all[keep], "reference_labels").astype(float)
    n, dropped = int(keep.sum()), int(len(s_all) - keep.sum())
    reasons = {"dropped": f"{dropped} row(s) with a non-finite score or a missing label"} if dropped else {}
    if n < min_rows or y.min(initial=1) == y.max(initial=0):
        reasons["status"] = f"{n} usable row(s) (need {min_rows}) or a single class: no calibration fitted"
        return Calibrator("not_enough_data", *IDENTITY, n, dropped, None, False, reasons)
    ece = None
    if s.min() >= 0 and s.max() <= 1:
        ece, _ = reliability_table(s, y)
    isotonic = require("sklearn.isotonic", "sklearn")
    model = isotonic.IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)
    x_points = [float(v) for v in model.X_thresholds_]
    y_points = [float(v) for v in model.y_thresholds_]
    if len(x_points) == 1:
        x_points, y_points = [x_points[0], x_points[0]], [y_points[0], y_points[0]]
    recommended = ece is None or ece > tolerance
    if ece is None:
        reasons["ece_before"] = "scores are not probabilities (outside 0..1): calibrate before estimating"
    return Calibrator("ok", x_points, y_points, n, dropped, ece, recommended, reasons)


@dataclass(frozen=True)
class EstimationError:
    """Estimated against realized metrics: ``error = estimated - realized``; ``within_band`` uses its band."""

    metric: str
    estimated: float | None
    realized: float | None
    error: float | None
    z_score: float | None
    within_band: bool | None


@dataclass(frozen=True)
class Comparison:
    rows: list[EstimationError]
    max_abs_error: float | None

    def to_dict(self) -> dict[str, Any]:
        return json_ready(asdict(self))


def compare(estimate: Estimate, realized: MetricReport | Mapping[str, float | None]) -> Comparison:
    """How far the estimate was from the performance realized once labels arrived.

    ``realized`` is a :func:`~modelsteward.stats.performance.classification_metrics` report (or its
    ``values``) over the same rows.
    """
    actual = realized.values if isinstance(realized, MetricReport) else realized
    rows = []
    for name, guess in estimate.metrics.items():
        if name not in actual:
            continue
        truth = actual[name]
        error = None if guess.value is None or truth is None else guess.value - truth
        z_score = None if error is None or not guess.std_error else error / guess.std_error
        within = None
        if error is not None and guess.lower is not None and guess.upper is not None:
            within = bool(guess.lower <= truth <= guess.upper)  # type: ignore[operator]
        rows.append(EstimationError(name, guess.value, truth, error, z_score, within))
    errors = [abs(r.error) for r in rows if r.error is not None]
    return Comparison(rows, max(errors) if errors else None)
