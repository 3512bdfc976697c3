"""Fairness figures equal fairlearn's called directly, decisions follow the cut score, small groups are not judged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    selection_rate,
)

from modelsteward.compliance.fairness import fairness, favourable_decisions
from modelsteward.domain.compliance import FairnessTest
from modelsteward.errors import InvalidArgument


def _data(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, pd.Series, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    truth = (rng.uniform(size=n) < np.where(group == "c", 0.6, 0.8)).astype(int)  # 1 = repaid
    score = rng.uniform(size=n) + np.where(group == "c", -0.2, 0.0)
    decisions = (score > 0.3).astype(int)  # 1 = approved
    return decisions, pd.Series(truth), pd.DataFrame({"grp": group})


def test_figures_equal_fairlearn_called_directly() -> None:
    decisions, truth, groups = _data()
    test = FairnessTest(favourable=1, min_demographic_parity_ratio=0.8, max_demographic_parity_difference=0.1,
                        max_equalized_odds_difference=0.2)  # fmt: skip
    result = fairness(decisions, truth, groups, test)
    figures = {c.metric: c.value for c in result.checks}
    kwargs = {"sensitive_features": groups["grp"]}
    assert figures["demographic_parity_ratio"] == pytest.approx(demographic_parity_ratio(truth, decisions, **kwargs))
    assert figures["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(truth, decisions, **kwargs)
    )
    assert figures["equalized_odds_difference"] == pytest.approx(equalized_odds_difference(truth, decisions, **kwargs))
    direct = MetricFrame(metrics=selection_rate, y_true=truth, y_pred=decisions, sensitive_features=groups["grp"])
    per_group = {g["group"]: g for g in result.figures["groups"]["grp"]}
    for name, rate in direct.by_group.items():
        assert per_group[name]["selection_rate"] == pytest.approx(rate, abs=1e-6)
        assert per_group[name]["count"] == int((groups["grp"] == name).sum())
    # group c is approved less often: the ratio fails the four-fifths rule and the finding names it
    ratio = next(c for c in result.checks if c.metric == "demographic_parity_ratio")
    assert ratio.passed is (ratio.value >= 0.8)
    assert result.status == ("pass" if all(c.passed for c in result.checks) else "fail")
    if result.status == "fail":
        assert "over grp" in result.summary


def test_a_four_fifths_violation_is_a_failing_check_with_its_figure() -> None:
    truth = pd.Series([1] * 100 + [1] * 100)
    decisions = np.array([1] * 90 + [0] * 10 + [1] * 60 + [0] * 40)  # 90% against 60% approved: ratio 0.667
    groups = pd.DataFrame({"age_group": ["young"] * 100 + ["old"] * 100})
    result = fairness(decisions, truth, groups, FairnessTest(favourable=1))
    ratio = next(c for c in result.checks if c.metric == "demographic_parity_ratio")
    assert ratio.value == pytest.approx(60 / 90)
    assert not ratio.passed and result.status == "fail"
    assert "demographic_parity_ratio over age_group = 0.667, required >= 0.8" in result.summary


def test_groups_smaller_than_the_minimum_are_shown_but_not_judged() -> None:
    truth = pd.Series([1] * 205)
    decisions = np.array([1] * 100 + [1] * 100 + [0] * 5)  # 5 people in group c, none approved
    groups = pd.DataFrame({"g": ["a"] * 100 + ["b"] * 100 + ["c"] * 5})
    result = fairness(decisions, truth, groups, FairnessTest(favourable=1, min_group_size=30))
    assert result.status == "pass"
    assert {g["group"] for g in result.figures["groups"]["g"]} == {"a", "b", "c"}


def test_one_judged_group_is_a_failure_not_a_pass() -> None:
    result = fairness(np.ones(50, dtype=int), pd.Series([1] * 50), pd.DataFrame({"g": ["a"] * 50}), FairnessTest())
    assert result.status == "fail" and result.checks[0].metric == "groups"


def test_decisions_come_from_the_cut_score_with_the_favourable_label() -> None:
    outputs = pd.DataFrame({"prediction": [1, 1, 0, 0], "proba_1": [0.1, 0.5, 0.34, 0.36]})
    test = FairnessTest(favourable=0, decision={"score": "proba_1", "threshold": 0.35})
    # above 0.35 -> 1 (default: decline), else 0 (favourable: approve)
    assert favourable_decisions(outputs, test).tolist() == [1, 0, 1, 0]
    assert favourable_decisions(outputs, FairnessTest(favourable=0)).tolist() == [0, 0, 1, 1]
    with pytest.raises(InvalidArgument, match="no output 'proba_9'"):
        favourable_decisions(outputs, FairnessTest(decision={"score": "proba_9", "threshold": 0.5}))
