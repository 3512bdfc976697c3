"""Realized performance: metrics agree with scikit-learn, bad rows are dropped and said, windows and segments."""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics

from modelsteward.errors import InvalidArgument
from modelsteward.stats.performance import (
    CLASSIFICATION_METRICS,
    by_segment,
    by_window,
    classification_metrics,
    regression_metrics,
    reliability_table,
)


def binary(seed: int = 0, n: int = 2000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    score = rng.uniform(size=n)
    truth = (rng.uniform(size=n) < score).astype(int)
    return truth, (score >= 0.5).astype(int), score


def test_binary_metrics_match_sklearn() -> None:
    truth, pred, score = binary()
    report = classification_metrics(truth, pred, score)
    assert report.status == "ok" and report.n == len(truth) and report.dropped == 0 and report.positive == 1
    assert report["accuracy"] == pytest.approx(metrics.accuracy_score(truth, pred))
    assert report["precision"] == pytest.approx(metrics.precision_score(truth, pred))
    assert report["recall"] == pytest.approx(metrics.recall_score(truth, pred))
    assert report["f1"] == pytest.approx(metrics.f1_score(truth, pred))
    assert report["roc_auc"] == pytest.approx(metrics.roc_auc_score(truth, score))
    assert report["log_loss"] == pytest.approx(metrics.log_loss(truth, score))
    assert report.reasons == {}


def test_calibration_error_and_reliability_table() -> None:
    ece, table = reliability_table(np.array([0.05, 0.15, 0.15, 0.95]), np.array([0, 1, 0, 1]))
    # Bins: [0, .1) mean .05 observed 0; [.1, .2) mean .15 observed .5; [.9, 1] mean .95 observed 1.
    assert ece == pytest.approx((0.05 + 2 * 0.35 + 0.05) / 4)
    assert [b.count for b in table] == [1, 2, 0, 0, 0, 0, 0, 0, 0, 1]
    assert table[2].mean_predicted is None and table[1].observed == 0.5
    truth, pred, score = binary(n=20_000)
    calibrated = classification_metrics(truth, pred, score)
    overconfident = classification_metrics(truth, pred, np.clip((score - 0.5) * 3 + 0.5, 0, 1))
    assert calibrated["ece"] < 0.02 < 0.1 < overconfident["ece"]
    assert sum(b.count for b in calibrated.reliability) == 20_000


def test_single_class_gives_no_auc_with_a_reason() -> None:
    report = classification_metrics([1, 1, 1, 1], [1, 0, 1, 1], [0.9, 0.3, 0.8, 0.7])
    assert report.status == "ok" and report["roc_auc"] is None
    assert "one class" in report.reasons["roc_auc"]
    assert report["accuracy"] == 0.75 and report["log_loss"] is not None


def test_missing_and_non_finite_rows_are_counted_and_dropped() -> None:
    truth = np.array([0, 1, 1, 0, 1, 0], dtype=float)
    truth[0] = np.nan
    score = np.array([0.1, 0.8, np.inf, 0.3, 0.6, 0.2])
    pred = np.array([0, 1, 1, None, 1, 0], dtype=object)
    report = classification_metrics(truth, pred, score)
    assert report.dropped == 3 and report.n == 3 and "3 row(s)" in report.reasons["dropped"]
    assert report["accuracy"] == 1.0 and report["roc_auc"] == 1.0


def test_no_rows_is_not_enough_data_with_every_metric_named() -> None:
    for report in (
        classification_metrics([], [], []),
        classification_metrics([None, None], [1, 0]),
    ):
        assert report.status == "not_enough_data" and report.n == 0
        assert set(report.values) == set(CLASSIFICATION_METRICS) and all(v is None for v in report.values.values())
    assert regression_metrics([np.nan], [1.0]).status == "not_enough_data"


def test_scores_are_optional_and_non_probabilities_only_lose_log_loss() -> None:
    truth, pred, score = binary()
    without = classification_metrics(truth, pred)
    assert without["roc_auc"] is None and "no scores" in without.reasons["roc_auc"]
    margins = classification_metrics(truth, pred, (score - 0.5) * 10)
    assert margins["roc_auc"] == pytest.approx(metrics.roc_auc_score(truth, score))
    assert margins["log_loss"] is None and "probabilities" in margins.reasons["log_loss"]


def test_text_labels_with_a_positive_label_and_two_score_columns() -> None:
    truth = np.array(["default", "repaid", "default", "repaid", "repaid"])
    pred = np.array(["default", "repaid", "repaid", "repaid", "default"])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7], [0.6, 0.4]])  # columns: default, repaid
    report = classification_metrics(truth, pred, proba, positive="default")
    assert report.positive == "default"
    assert report["precision"] == 0.5 and report["recall"] == 0.5
    assert report["roc_auc"] == pytest.approx(metrics.roc_auc_score(truth == "default", proba[:, 0]))
    guessed = classification_metrics(truth, pred)
    assert guessed.positive == "repaid" and "positive" in guessed.reasons


def test_multiclass_macro_averages_match_sklearn() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(3000, 3))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    truth = (rng.uniform(size=(3000, 1)) > proba.cumsum(axis=1)).sum(axis=1)
    labels = np.array(["car", "home", "other"])[truth]
    pred = np.array(["car", "home", "other"])[proba.argmax(axis=1)]
    report = classification_metrics(labels, pred, proba)
    assert report.positive is None and report.classes == ["car", "home", "other"]
    assert report["precision"] == pytest.approx(metrics.precision_score(labels, pred, average="macro"))
    assert report["recall"] == pytest.approx(metrics.recall_score(labels, pred, average="macro"))
    assert report["f1"] == pytest.approx(metrics.f1_score(labels, pred, average="macro"))
    assert report["roc_auc"] == pytest.approx(metrics.roc_auc_score(labels, proba, multi_class="ovr"))
    assert report["log_loss"] == pytest.approx(metrics.log_loss(labels, proba))
    assert 0 <= report["ece"] < 0.05
    wrong = classification_metrics(labels, pred, proba[:, :2])
    assert wrong["roc_auc"] is None and "one column per class" in wrong.reasons["roc_auc"]


def test_mixed_label_types_are_refused() -> None:
    with pytest.raises(InvalidArgument):
        classification_metrics(np.array([1, "a"], dtype=object), np.array([1, 2], dtype=object))
    with pytest.raises(InvalidArgument):
        classification_metrics([1, 0, 1], [1, 0])


def test_regression_metrics_match_sklearn_and_mape_skips_zero_truth() -> None:
    rng = np.random.default_rng(1)
    truth = rng.normal(100, 20, 500)
    pred = truth + rng.normal(0, 5, 500)
    report = regression_metrics(truth, pred)
    assert report["mae"] == pytest.approx(metrics.mean_absolute_error(truth, pred))
    assert report["rmse"] == pytest.approx(np.sqrt(metrics.mean_squared_error(truth, pred)))
    assert report["mape"] == pytest.approx(metrics.mean_absolute_percentage_error(truth, pred))
    assert report["r2"] == pytest.approx(metrics.r2_score(truth, pred))
    zeros = regression_metrics([0.0, 2.0, 4.0, np.inf], [1.0, 3.0, 3.0, 1.0])
    assert zeros.dropped == 1 and zeros["mape"] == pytest.approx(0.375) and "true value of 0" in zeros.reasons["mape"]
    constant = regression_metrics([3.0, 3.0], [2.0, 4.0])
    assert constant["r2"] is None and constant["mae"] == 1.0


def log(seed: int = 0, n: int = 3000) -> pd.DataFrame:
    truth, pred, score = binary(seed, n)
    rng = np.random.default_rng(seed + 100)
    offsets = pd.to_timedelta(rng.uniform(0, 5, n), unit="D")
    frame = pd.DataFrame(
        {
            "ts": pd.Timestamp("2026-11-01", tz="UTC") + offsets,
            "actual": truth,
            "prediction": pred,
            "proba_1": score,
            "region": rng.choice(np.array(["north", "south", None], dtype=object), n, p=[0.5, 0.45, 0.05]),
            "housing": rng.choice(["rent", "own"], n),
        }
    )
    frame.loc[frame["ts"].dt.day == 3, "ts"] = pd.NaT  # a day with no timestamps: an empty window
    frame.loc[(frame["ts"].dt.day == 5) & (frame.index % 10 != 0), "actual"] = np.nan  # labels mostly late
    return frame


def test_by_window_gives_every_window_and_flags_thin_ones() -> None:
    frame = log()
    columns = {"y_true": "actual", "y_pred": "prediction", "y_score": "proba_1"}
    result = by_window(frame, ts="ts", freq="1D", fn=classification_metrics, min_rows=100, **columns)
    table = result.to_frame()
    assert list(table["window_start"].dt.day) == [1, 2, 3, 4, 5]
    assert result.dropped == int(frame["ts"].isna().sum()) > 0
    day3, day5 = table.iloc[2], table.iloc[4]
    assert day3["rows"] == 0 and day3["status"] == "not_enough_data"
    assert day5["status"] == "not_enough_data" and day5["n"] < 100 and result.rows[4]["roc_auc"] is None
    assert "min_rows" in day5["reasons"]["status"]
    first = frame[frame["ts"].dt.day == 1]
    direct = classification_metrics(first["actual"], first["prediction"], first["proba_1"])
    assert table.iloc[0]["status"] == "ok" and table.iloc[0]["roc_auc"] == pytest.approx(direct["roc_auc"])
    assert table.iloc[0]["window_end"] - table.iloc[0]["window_start"] == pd.Timedelta("1D")
    json.dumps(result.to_dict(), allow_nan=False)


def test_by_segment_one_row_per_segment_including_missing() -> None:
    frame = log()
    result = by_segment(frame, segment="region", fn=regression_metrics, min_rows=50, y_true="proba_1", y_pred="actual")
    assert [row["region"] for row in result.rows] == ["north", "south", None]
    assert sum(row["rows"] for row in result.rows) == len(frame)
    assert result.rows[2]["status"] in ("ok", "not_enough_data")
    pairs = by_segment(
        frame,
        segment=["region", "housing"],
        fn=partial(classification_metrics, positive=1),
        min_rows=1,
        y_true="actual",
        y_pred="prediction",
    )
    assert len(pairs.rows) == 6 and {"region", "housing", "accuracy"} <= set(pairs.to_frame().columns)
    json.dumps(pairs.to_dict(), allow_nan=False)
    with pytest.raises(InvalidArgument, match="missing_column"):
        by_segment(frame, segment="region", fn=regression_metrics, y_true="missing_column", y_pred="actual")


def test_report_is_json_serializable() -> None:
    truth, pred, score = binary()
    payload = classification_metrics(truth, pred, score).to_dict()
    assert json.loads(json.dumps(payload, allow_nan=False))["values"]["accuracy"] == pytest.approx(
        metrics.accuracy_score(truth, pred)
    )
    assert len(payload["reliability"]) == 10
