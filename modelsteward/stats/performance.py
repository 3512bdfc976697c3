"""Realized model performance once ground truth arrives: classification and regression metrics, per window or segment.

Every function takes plain arrays and returns a :class:`MetricReport`; rows with a missing or
non-finite label, prediction or score are counted and dropped, and a metric that cannot be computed
(one class present, no scores, no rows) is ``None`` with a reason instead of an exception.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from modelsteward.errors import InvalidArgument, require

CALIBRATION_BINS = 10
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "ece")
REGRESSION_METRICS = ("mae", "rmse", "mape", "r2")
Status = Literal["ok", "not_enough_data"]


def json_ready(value: Any) -> Any:
    """A JSON-ready Python value: NumPy scalars unwrapped, NaN and inf as None, timestamps as ISO text."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, (datetime, np.datetime64)):
        return None if pd.isna(value) else pd.Timestamp(value).isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _number(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of the reliability table: predicted probability against the observed frequency."""

    lower: float
    upper: float
    count: int
    mean_predicted: float | None
    observed: float | None


@dataclass(frozen=True)
class MetricReport:
    """Metrics of one set of rows. ``values[name]`` is ``None`` when ``reasons[name]`` says why not.

    ``report["roc_auc"]`` is a shortcut for ``report.values["roc_auc"]``.
    """

    kind: Literal["classification", "regression"]
    status: Status
    n: int
    dropped: int
    values: dict[str, float | None]
    reasons: dict[str, str] = field(default_factory=dict)
    positive: Any = None
    classes: list[Any] = field(default_factory=list)
    reliability: list[ReliabilityBin] = field(default_factory=list)

    def __getitem__(self, name: str) -> float | None:
        return self.values[name]

    def to_dict(self) -> dict[str, Any]:
        return json_ready(asdict(self))


def _valid(values: np.ndarray) -> np.ndarray:
    """Rows with a present, finite value (all columns of a 2-D array)."""
    if values.dtype.kind in "fc":
        ok = np.isfinite(values)
    elif values.dtype.kind in "iub":
        ok = np.ones(values.shape, dtype=bool)
    else:
        ok = ~pd.isna(values)
    return ok.all(axis=1) if ok.ndim == 2 else ok


def _array(values: Any, name: str) -> np.ndarray:
    array = values.to_numpy() if isinstance(values, (pd.Series, pd.DataFrame)) else np.asarray(values)
    if array.ndim == 0:
        raise InvalidArgument(f"{name} must be an array, not a single value", details={"field": name})
    return array


def _same_length(arrays: dict[str, np.ndarray]) -> int:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise InvalidArgument(f"arrays of different lengths: {lengths}", details={"lengths": lengths})
    return next(iter(lengths.values()))


def reliability_table(
    probability: np.ndarray, outcome: np.ndarray, bins: int = CALIBRATION_BINS
) -> tuple[float | None, list[ReliabilityBin]]:
    """Expected calibration error over equal-width bins, and the table it is computed from.

    ``probability`` is the predicted probability of ``outcome`` (0/1); the ECE is the
    count-weighted mean gap between the mean prediction and the observed frequency per bin.
    """
    p = np.clip(np.asarray(probability, dtype=float), 0.0, 1.0)
    y = np.asarray(outcome, dtype=float)
    index = np.minimum((p * bins).astype(np.intp), bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(index, weights=p, minlength=bins) / counts
        observed = np.bincount(index, weights=y, minlength=bins) / counts
    table = [
        ReliabilityBin(
            lower=i / bins,
            upper=(i + 1) / bins,
            count=int(counts[i]),
            mean_predicted=_number(mean_p[i]),
            observed=_number(observed[i]),
        )
        for i in range(bins)
    ]
    if not p.size:
        return None, table
    gaps = np.where(counts > 0, np.abs(mean_p - observed), 0.0)
    return float(np.sum(counts * gaps) / p.size), table


def _classes(y_true: np.ndarray, y_pred: np.ndarray, given: Sequence[Any] | None) -> np.ndarray:
    if given is not None:
        return np.asarray(list(given))
    try:
        return np.unique(np.concatenate([y_true, y_pred]))
    except TypeError as exc:
        raise InvalidArgument("labels mix value types (e.g. text and numbers); give them one type") from exc


def _positive_label(classes: np.ndarray, positive: Any, reasons: dict[str, str]) -> Any:
    if positive is not None:
        return positive
    if all(c in (0, 1) for c in classes.tolist()):
        return True if classes.dtype == bool else 1
    chosen = classes[-1].item() if isinstance(classes[-1], np.generic) else classes[-1]
    reasons["positive"] = f"assumed {chosen!r} (the last label in sorted order); pass positive= to choose"
    return chosen


def _binary_scores(score: np.ndarray, classes: np.ndarray, positive: Any) -> np.ndarray | None:
    if score.ndim == 1:
        return score.astype(float)
    if score.ndim == 2 and score.shape[1] == 2 and positive in classes.tolist():
        return score[:, classes.tolist().index(positive)].astype(float)
    return None


def _score_metrics_binary(
    truth: np.ndarray, score: np.ndarray, values: dict[str, float | None], reasons: dict[str, str]
) -> list[ReliabilityBin]:
    metrics = require("sklearn.metrics", "sklearn")
    if truth.all() or not truth.any():
        reasons["roc_auc"] = f"only one class present in y_true ({'positive' if truth.any() else 'negative'})"
    else:
        values["roc_auc"] = float(metrics.roc_auc_score(truth, score))
    if score.min() < 0 or score.max() > 1:
        reasons["log_loss"] = reasons["ece"] = "scores are not probabilities (outside 0..1)"
        return []
    values["log_loss"] = float(metrics.log_loss(truth, score, labels=[False, True]))
    values["ece"], table = reliability_table(score, truth)
    return table


def _score_metrics_multiclass(
    y_true: np.ndarray, score: np.ndarray, classes: np.ndarray, values: dict[str, float | None], reasons: dict[str, str]
) -> list[ReliabilityBin]:
    if score.ndim != 2 or score.shape[1] != len(classes):
        why = f"y_score needs one column per class ({len(classes)}: {classes.tolist()}); pass classes= in column order"
        reasons["roc_auc"] = reasons["log_loss"] = reasons["ece"] = why
        return []
    metrics = require("sklearn.metrics", "sklearn")
    onehot = y_true[:, None] == classes[None, :]
    present = onehot.any(axis=0) & ~onehot.all(axis=0)
    if present.sum() < 2:
        reasons["roc_auc"] = "fewer than two classes present in y_true"
    else:
        # One-vs-rest per class present; a class absent from y_true has no defined AUC.
        aucs = [metrics.roc_auc_score(onehot[:, j], score[:, j]) for j in np.flatnonzero(present)]
        values["roc_auc"] = float(np.mean(aucs))
        if not present.all():
            reasons["roc_auc"] = f"macro average over the {int(present.sum())} classes present in y_true"
    if score.min() < 0 or score.max() > 1 or not onehot.any(axis=1).all():
        why = "scores are not probabilities, or y_true holds a label outside classes"
        reasons["log_loss"] = reasons["ece"] = why
        return []
    total = score.sum(axis=1, keepdims=True)
    proba = np.divide(score, total, out=np.full_like(score, 1.0 / len(classes)), where=total > 0)
    values["log_loss"] = float(metrics.log_loss(onehot.argmax(axis=1), proba, labels=list(range(len(classes)))))
    top = proba.argmax(axis=1)
    values["ece"], table = reliability_table(proba.max(axis=1), onehot[np.arange(len(top)), top])
    return table


def classification_metrics(
    y_true: Any,
    y_pred: Any,
    y_score: Any = None,
    *,
    positive: Any = None,
    classes: Sequence[Any] | None = None,
) -> MetricReport:
    """Accuracy, precision, recall, F1, ROC AUC, log loss and calibration (ECE, 10 bins) of a classifier.

    Binary when ``positive`` is given or at most two labels occur (0/1 and booleans take 1/True as
    positive); ``y_score`` is then the positive-class score (or two columns in ``classes`` order).
    Otherwise multiclass with macro averages, ``y_score`` one column per class in ``classes`` order
    (sorted labels by default) and calibration on the top-label confidence. Log loss, AUC and ECE
    need ``y_score``.

    >>> classification_metrics([0, 1, 1, 0], [0, 1, 0, 0], [0.2, 0.9, 0.4, 0.1])["roc_auc"]
    1.0
    """
    truth_all, pred_all = _array(y_true, "y_true"), _array(y_pred, "y_pred")
    arrays = {"y_true": truth_all, "y_pred": pred_all}
    score_all = None if y_score is None else _array(y_score, "y_score")
    if score_all is not None:
        arrays["y_score"] = score_all
    total = _same_length(arrays)
    keep = np.ones(total, dtype=bool)
    for array in arrays.values():
        keep &= _valid(array)
    truth, pred = truth_all[keep], pred_all[keep]
    score = None if score_all is None else score_all[keep]
    n, dropped = int(keep.sum()), int(total - keep.sum())
    values: dict[str, float | None] = dict.fromkeys(CLASSIFICATION_METRICS)
    reasons: dict[str, str] = {}
    if dropped:
        reasons["dropped"] = f"{dropped} row(s) without a label, a prediction or a finite score"
    if n == 0:
        reasons["status"] = "no rows with both a label and a prediction"
        return MetricReport("classification", "not_enough_data", 0, dropped, values, reasons)
    labels = _classes(truth, pred, classes)
    binary = positive is not None or len(labels) <= 2
    metrics = require("sklearn.metrics", "sklearn")
    values["accuracy"] = float(np.mean(truth == pred))
    table: list[ReliabilityBin] = []
    chosen = None
    if binary:
        chosen = _positive_label(labels, positive, reasons)
        t, p = truth == chosen, pred == chosen
        tp, fp, fn = int(np.sum(t & p)), int(np.sum(~t & p)), int(np.sum(t & ~p))
        values["precision"] = tp / (tp + fp) if tp + fp else None
        values["recall"] = tp / (tp + fn) if tp + fn else None
        values["f1"] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
        if tp + fp == 0:
            reasons["precision"] = "no positive predictions"
        if tp + fn == 0:
            reasons["recall"] = "no positive labels"
        if tp + fp + fn == 0:
            reasons["f1"] = "no positive labels or predictions"
        binary_score = None if score is None else _binary_scores(score, labels, chosen)
        if binary_score is not None:
            table = _score_metrics_binary(t, binary_score, values, reasons)
        elif score is not None:
            reasons["roc_auc"] = reasons["log_loss"] = reasons["ece"] = "give y_score as the positive-class score"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            precision, recall, f1, _ = metrics.precision_recall_fscore_support(
                truth, pred, labels=labels, average=None, zero_division=np.nan
            )
        for name, per_class in (("precision", precision), ("recall", recall), ("f1", f1)):
            defined = ~np.isnan(per_class)
            values[name] = float(per_class[defined].mean()) if defined.any() else None
            if not defined.all():
                reasons[name] = f"macro average over the {int(defined.sum())} of {len(labels)} classes where defined"
        if score is not None:
            table = _score_metrics_multiclass(truth, score.astype(float), labels, values, reasons)
    if score is None:
        reasons["roc_auc"] = reasons["log_loss"] = reasons["ece"] = "no scores given (y_score)"
    return MetricReport(
        "classification", "ok", n, dropped, values, reasons, json_ready(chosen), json_ready(labels.tolist()), table
    )


def regression_metrics(y_true: Any, y_pred: Any) -> MetricReport:
    """MAE, RMSE, MAPE (over rows whose true value is not zero) and R² of a regression model."""
    truth_all = _array(y_true, "y_true").astype(float)
    pred_all = _array(y_pred, "y_pred").astype(float)
    total = _same_length({"y_true": truth_all, "y_pred": pred_all})
    keep = np.isfinite(truth_all) & np.isfinite(pred_all)
    truth, pred = truth_all[keep], pred_all[keep]
    n, dropped = int(keep.sum()), int(total - keep.sum())
    values: dict[str, float | None] = dict.fromkeys(REGRESSION_METRICS)
    reasons: dict[str, str] = {}
    if dropped:
        reasons["dropped"] = f"{dropped} row(s) with a missing or non-finite value"
    if n == 0:
        reasons["status"] = "no rows with both a true and a predicted value"
        return MetricReport("regression", "not_enough_data", 0, dropped, values, reasons)
    metrics = require("sklearn.metrics", "sklearn")
    values["mae"] = float(metrics.mean_absolute_error(truth, pred))
    values["rmse"] = float(np.sqrt(metrics.mean_squared_error(truth, pred)))
    nonzero = truth != 0
    # sklearn divides by a tiny epsilon where the truth is 0, which turns one zero into an absurd MAPE.
    if nonzero.any():
        values["mape"] = float(np.mean(np.abs((pred[nonzero] - truth[nonzero]) / truth[nonzero])))
        if not nonzero.all():
            reasons["mape"] = f"{int((~nonzero).sum())} row(s) with a true value of 0 left out"
    else:
        reasons["mape"] = "every true value is 0"
    if n < 2 or np.all(truth == truth[0]):
        reasons["r2"] = "the true values are constant"
    else:
        values["r2"] = float(metrics.r2_score(truth, pred))
    return MetricReport("regression", "ok", n, dropped, values, reasons)


@dataclass(frozen=True)
class Breakdown:
    """One row per window or segment: the key, raw ``rows``, ``n`` used, ``status``, the metrics and reasons."""

    by: Literal["window", "segment"]
    key: list[str]
    rows: list[dict[str, Any]]
    dropped: int = 0

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    def to_dict(self) -> dict[str, Any]:
        return json_ready(asdict(self))


def _row(result: Any, rows: int, min_rows: int) -> dict[str, Any]:
    values = dict(getattr(result, "values", {}))
    reasons = dict(getattr(result, "reasons", {}))
    status = getattr(result, "status", "ok")
    n = int(getattr(result, "n", rows))
    if status == "ok" and n < min_rows:
        status = "not_enough_data"
        values = dict.fromkeys(values)
        reasons["status"] = f"{n} usable row(s), fewer than min_rows={min_rows}"
    return (
        {"rows": rows, "n": n, "dropped": int(getattr(result, "dropped", 0)), "status": status}
        | values
        | {"reasons": reasons}
    )


def _call(fn: Callable[..., Any], group: pd.DataFrame, columns: dict[str, str]) -> Any:
    return fn(**{param: group[name].to_numpy() for param, name in columns.items()})


def _check_columns(frame: pd.DataFrame, columns: dict[str, str], extra: Sequence[str]) -> None:
    missing = [c for c in [*columns.values(), *extra] if c not in frame.columns]
    if missing:
        raise InvalidArgument(f"no column(s) {missing} in the data", details={"columns": missing})


def by_window(
    frame: pd.DataFrame,
    *,
    ts: str,
    freq: str,
    fn: Callable[..., Any],
    min_rows: int = 100,
    **columns: str,
) -> Breakdown:
    """Apply ``fn`` per time window: ``columns`` map ``fn``'s parameters to columns of ``frame``.

    Every window between the first and the last timestamp appears, an empty one too; a window with
    fewer than ``min_rows`` usable rows is ``not_enough_data`` and its metrics are ``None``. ``fn``
    returns an object with ``values`` (and optionally ``status``, ``n``, ``dropped``, ``reasons``);
    use :func:`functools.partial` for its other options. Rows without a timestamp are counted in
    ``dropped``.

    >>> by_window(log, ts="ts", freq="1D", fn=classification_metrics,
    ...           y_true="actual", y_pred="prediction", y_score="proba_1").to_frame()
    """
    _check_columns(frame, columns, [ts])
    stamps = pd.to_datetime(frame[ts])
    present = stamps.notna().to_numpy()
    data = frame.loc[present, list(dict.fromkeys(columns.values()))].assign(_ts=stamps[present])
    offset = pd.tseries.frequencies.to_offset(freq)
    rows = []
    for start, group in data.groupby(pd.Grouper(key="_ts", freq=offset)):
        window = {"window_start": start, "window_end": start + offset}
        rows.append(window | _row(_call(fn, group, columns), len(group), min_rows))
    return Breakdown("window", ["window_start", "window_end"], rows, int((~present).sum()))


def by_segment(
    frame: pd.DataFrame,
    *,
    segment: str | Sequence[str],
    fn: Callable[..., Any],
    min_rows: int = 100,
    **columns: str,
) -> Breakdown:
    """Apply ``fn`` per segment (one column or several); a missing segment value is its own segment (None).

    >>> by_segment(log, segment="region", fn=regression_metrics, y_true="actual", y_pred="prediction")
    """
    keys = [segment] if isinstance(segment, str) else list(segment)
    _check_columns(frame, columns, keys)
    rows = []
    for key, group in frame.groupby(keys if len(keys) > 1 else keys[0], dropna=False, observed=True, sort=True):
        parts = key if isinstance(key, tuple) else (key,)
        labels = {name: None if pd.isna(value) else json_ready(value) for name, value in zip(keys, parts, strict=True)}
        rows.append(labels | _row(_call(fn, group, columns), len(group), min_rows))
    return Breakdown("segment", keys, rows)
