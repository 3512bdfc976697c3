"""Pure rule evaluation: figures by dotted path, breach/pass/skip, KPI rules, fingerprints."""

from __future__ import annotations

import math

from alert_helpers import T0, result

from modelsteward.alerts.evaluation import fingerprint, judge_kpi, judge_result, lookup, watches_kpi, watches_result
from modelsteward.domain.monitoring import AlertCondition, AlertRule, KPIPoint


def metric_rule(metric: str, op: str = ">", threshold: float = 0.2) -> AlertRule:
    return AlertRule(name="r", monitor="credit-drift", when=AlertCondition(metric=metric, op=op, threshold=threshold))


def test_lookup_follows_dotted_paths_into_dicts_and_lists() -> None:
    figures = {"drift": {"share_drifted": 0.4, "columns": [{"score": 0.1}, {"score": 0.9}]}, "a.b": 3}
    assert lookup(figures, "drift.share_drifted") == 0.4
    assert lookup(figures, "drift.columns.1.score") == 0.9
    assert lookup(figures, "a.b") == 3  # a key that itself contains a dot wins
    assert lookup(figures, "drift.missing") is None
    assert lookup(figures, "drift.columns.7.score") is None


def test_status_rule_breaches_on_breach_and_passes_on_ok() -> None:
    rule = AlertRule(name="r", monitor="credit-drift")
    verdict = judge_result(rule, result(status="breach"))
    assert verdict.outcome == "breach"
    assert "credit-drift" in verdict.title and "share_drifted" in verdict.title
    assert verdict.details["breaches"][0]["metric"] == "share_drifted"
    assert judge_result(rule, result(status="ok")).outcome == "pass"


def test_no_data_and_errors_are_skipped_never_pass_or_breach() -> None:
    for rule in (AlertRule(name="r", monitor="credit-drift"), metric_rule("drift.share_drifted")):
        assert judge_result(rule, result(status="not_enough_data")).outcome == "skip"
        assert judge_result(rule, result(status="error")).outcome == "skip"


def test_metric_rule_compares_a_nested_figure_with_its_threshold() -> None:
    rule = metric_rule("drift.share_drifted", ">=", 0.25)
    assert judge_result(rule, result(status="ok", drift={"share_drifted": 0.25})).outcome == "breach"
    assert judge_result(rule, result(status="ok", drift={"share_drifted": 0.1})).outcome == "pass"
    below = metric_rule("performance.roc_auc", "<", 0.7)
    verdict = judge_result(below, result(status="ok", performance={"roc_auc": 0.64}))
    assert verdict.outcome == "breach" and verdict.details["value"] == 0.64


def test_metric_rule_without_a_numeric_figure_says_nothing() -> None:
    rule = metric_rule("drift.share_drifted")
    assert judge_result(rule, result(status="ok")).outcome == "skip"
    assert judge_result(rule, result(status="ok", drift={"share_drifted": "n/a"})).outcome == "skip"
    assert judge_result(rule, result(status="ok", drift={"share_drifted": math.nan})).outcome == "skip"
    assert judge_result(rule, result(status="ok", drift={"share_drifted": True})).outcome == "skip"


def test_kpi_rule_matches_kpi_and_scope_and_compares_the_value() -> None:
    low = AlertCondition(metric="value", op="<", threshold=0.5)
    rule = AlertRule(name="approvals", kpi="approval_rate", scope="credit", when=low)
    point = KPIPoint(kpi="approval_rate", scope="credit", ts=T0, value=0.42, arm="3")
    assert watches_kpi(rule, point)
    assert not watches_kpi(rule, point.model_copy(update={"scope": "other"}))
    assert not watches_result(rule, result())
    verdict = judge_kpi(rule, point)
    assert verdict.outcome == "breach" and "0.42 < 0.5" in verdict.title and verdict.details["arm"] == "3"
    assert judge_kpi(rule, point.model_copy(update={"value": 0.6})).outcome == "pass"


def test_fingerprint_is_stable_and_tells_sources_apart() -> None:
    a = AlertRule(name="r", monitor="m1")
    assert fingerprint(a) == fingerprint(AlertRule(name="r", monitor="m1", severity="critical"))
    assert fingerprint(a) != fingerprint(AlertRule(name="r", monitor="m2"))
    assert len(fingerprint(a)) == 64
