"""Confidence-based performance estimation: right on calibrated scores, follows covariate shift, calibrates."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelsteward.errors import InvalidArgument
from modelsteward.stats.estimation import Calibrator, calibrate, compare, estimate
from modelsteward.stats.performance import classification_metrics

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def world(seed: int, n: int = 10_000, mean: float = 0.0, spread: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Applicants' risk signal x, and labels from the true P(default | x) = sigmoid(x - 1), the same in every window."""
    rng = np.random.default_rng(seed)
    x = rng.normal(mean, spread, n)
    return x, (rng.uniform(size=n) < sigmoid(x - 1)).astype(int)


def realized(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict[str, float | None]:
    return classification_metrics(labels, (scores >= threshold).astype(int), scores).values


@pytest.mark.parametrize("seed", range(5))
def test_calibrated_scores_estimate_the_realized_metrics_within_three_standard_errors(seed: int) -> None:
    # Labels are drawn from the scores, so the scores are perfectly calibrated. Given the scores, the
    # realized accuracy is a mean of independent Bernoulli draws whose standard deviation is exactly
    # the estimate's std_error (about 0.004 at n=10,000); 3 standard errors leave a 0.3% chance of a
    # false failure per comparison. The AUC's Hanley-McNeil error is conservative (0.0049 against an
    # observed 0.0042 over 300 draws), so the same bound holds for it with room to spare.
    x, labels = world(seed)
    scores = sigmoid(x - 1)
    result = estimate(scores)
    truth = realized(scores, labels)
    for name in METRICS:
        metric = result.metrics[name]
        assert metric.std_error is not None and metric.std_error < 0.01
        assert abs(metric.value - truth[name]) <= 3 * metric.std_error, name
        assert metric.lower <= truth[name] <= metric.upper


def test_standard_error_is_the_spread_of_the_realized_accuracy() -> None:
    rng = np.random.default_rng(7)
    scores = sigmoid(rng.normal(-1, 2, 10_000))
    result = estimate(scores)
    labels = rng.uniform(size=(300, scores.size)) < scores  # 300 label draws for the same predictions
    accuracy = (labels == (scores >= 0.5)).mean(axis=1)
    assert accuracy.mean() == pytest.approx(result["accuracy"], abs=3 * result.metrics["accuracy"].std_error / 17)
    assert accuracy.std() == pytest.approx(result.metrics["accuracy"].std_error, rel=0.15)


def test_estimate_follows_a_covariate_shift_without_concept_shift() -> None:
    # Day 31 of the demo: applicants move towards the uncertain middle; P(default | x) is unchanged.
    x_ref, y_ref = world(11)
    x_cur, y_cur = world(12, mean=1.0, spread=0.6)
    ref_scores, cur_scores = sigmoid(x_ref - 1), sigmoid(x_cur - 1)
    before, after = estimate(ref_scores), estimate(cur_scores)
    truth_before, truth_after = realized(ref_scores, y_ref), realized(cur_scores, y_cur)
    for name in ("accuracy", "roc_auc"):
        realized_drop = truth_before[name] - truth_after[name]
        estimated_drop = before[name] - after[name]
        assert realized_drop > 0.1, name
        band = 3 * np.hypot(before.metrics[name].std_error, after.metrics[name].std_error)
        assert abs(estimated_drop - realized_drop) <= band, name


def test_miscalibrated_scores_are_fixed_by_isotonic_calibration_on_the_reference() -> None:
    x_ref, y_ref = world(21)
    x_cur, y_cur = world(22, mean=1.0, spread=0.6)
    overconfident = lambda x: sigmoid(3 * (x - 1))  # noqa: E731 - the model's raw, overconfident score
    calibrator = calibrate(overconfident(x_ref), y_ref)
    assert calibrator.status == "ok" and calibrator.recommended and calibrator.ece_before > 0.05
    raw = estimate(overconfident(x_cur))
    fixed = estimate(calibrator.apply(overconfident(x_cur)))
    truth = realized(overconfident(x_cur), y_cur)
    assert raw["accuracy"] - truth["accuracy"] > 0.1  # an overconfident model promises too much
    assert abs(fixed["accuracy"] - truth["accuracy"]) < 0.02
    assert abs(fixed["roc_auc"] - truth["roc_auc"]) < 0.02
    rebuilt = Calibrator.from_dict(json.loads(json.dumps(calibrator.to_dict())))
    np.testing.assert_allclose(rebuilt(np.array([0.0, 0.3, 0.9])), calibrator.apply(np.array([0.0, 0.3, 0.9])))


def test_calibration_is_not_recommended_for_calibrated_scores_and_needs_data() -> None:
    x, labels = world(31)
    assert not calibrate(sigmoid(x - 1), labels).recommended
    thin = calibrate([0.2, 0.7, np.nan], [0, 1, 1])
    assert thin.status == "not_enough_data" and thin.dropped == 1 and not thin.recommended
    np.testing.assert_allclose(thin.apply([0.1, 0.8]), [0.1, 0.8])  # the identity
    one_class = calibrate(np.linspace(0, 1, 200), np.ones(200))
    assert one_class.status == "not_enough_data"


def test_given_predictions_override_the_threshold_and_fill_the_expected_confusion_matrix() -> None:
    scores = np.array([0.9, 0.8, 0.3, 0.1])
    result = estimate(scores, predictions=[True, False, False, False])
    assert result.threshold is None
    assert result.expected == pytest.approx({"tp": 0.9, "fp": 0.1, "fn": 1.2, "tn": 1.8})
    assert result["accuracy"] == pytest.approx((0.9 + 1.8) / 4)
    assert result["precision"] == pytest.approx(0.9)
    assert result["recall"] == pytest.approx(0.9 / 2.1)
    assert result["f1"] == pytest.approx(1.8 / (1.8 + 0.1 + 1.2))
    by_threshold = estimate(scores, threshold=0.85)
    assert by_threshold["accuracy"] == pytest.approx(result["accuracy"]) and by_threshold.threshold == 0.85


def test_expected_auc_handles_ties_and_degenerate_scores() -> None:
    assert estimate(np.full(100, 0.3))["roc_auc"] == pytest.approx(0.5)
    certain = estimate(np.ones(10))
    assert certain["roc_auc"] is None and "no expected negatives" in certain.reasons["roc_auc"]
    no_positive = estimate(np.full(10, 0.2))
    assert no_positive["precision"] is None and no_positive.reasons["precision"] == "no positive predictions"


def test_bad_rows_are_dropped_and_bad_inputs_refused() -> None:
    result = estimate(np.array([0.9, np.nan, 0.2, np.inf]), predictions=np.array([1, 1, None, 0], dtype=object))
    assert result.n == 1 and result.dropped == 3 and "3 row(s)" in result.reasons["dropped"]
    empty = estimate([])
    assert empty.status == "not_enough_data" and all(v is None for v in empty.values.values())
    with pytest.raises(InvalidArgument, match="probabilities"):
        estimate([0.5, 1.5])
    with pytest.raises(InvalidArgument, match="0/1"):
        estimate([0.5, 0.6], predictions=["yes", "no"])
    with pytest.raises(InvalidArgument, match="length"):
        estimate([0.5, 0.6], predictions=[1])


def test_compare_reports_the_estimation_error_once_labels_arrive() -> None:
    x, labels = world(41)
    scores = sigmoid(x - 1)
    guess = estimate(scores)
    report = compare(guess, classification_metrics(labels, (scores >= 0.5).astype(int), scores))
    assert [row.metric for row in report.rows] == list(METRICS)
    assert all(row.within_band for row in report.rows)
    assert report.max_abs_error == max(abs(row.error) for row in report.rows) < 0.02
    partial = compare(guess, {"accuracy": 0.5, "roc_auc": None})
    assert [row.metric for row in partial.rows] == ["accuracy", "roc_auc"]
    assert partial.rows[0].within_band is False and partial.rows[0].z_score > 3 and partial.rows[1].error is None
    json.dumps(report.to_dict(), allow_nan=False)
    json.dumps(guess.to_dict(), allow_nan=False)


def test_without_a_band_only_values_are_given() -> None:
    result = estimate(np.array([0.2, 0.8, 0.6]), z=None)
    assert all(m.std_error is None and m.lower is None for m in result.metrics.values())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=200), st.floats(0.05, 0.95))
def test_estimates_are_probabilities_and_the_expected_confusion_matrix_adds_up(scores: list[float], cut: float) -> None:
    p = np.array(scores)
    result = estimate(p, threshold=cut)
    assert sum(result.expected.values()) == pytest.approx(len(p))
    assert result["accuracy"] == pytest.approx(np.mean(np.where(p >= cut, p, 1 - p)))
    for metric in result.metrics.values():
        assert metric.value is None or -1e-12 <= metric.value <= 1 + 1e-12
        assert metric.lower is None or metric.lower <= metric.value <= metric.upper
