"""The portfolio's shaping, from plain records: headline figures, stages by business unit, the most indebted
models, alerts by severity, a KPI's weekly change; and the charts' JSON safe inside a script element."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from modelsteward.domain.monitoring import Alert, KPIPoint
from modelsteward.domain.records import BusinessKPI, DebtPoint, ModelOverview
from modelsteward.reporting import portfolio_summary as summary

T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)


def _row(name: str, *, unit: str | None = "Retail", stage: str | None = None, prod: int | None = 1,
         debt: int = 0) -> ModelOverview:  # fmt: skip
    return ModelOverview(name=name, kind="sklearn", business_unit=unit, production_version=prod, stage=stage,
                         health="ok", debt_score=debt)  # fmt: skip


def _alert(i: int, severity: str, status: str = "firing") -> Alert:
    at = T0 + timedelta(hours=i)
    return Alert(id=i, rule="r", fingerprint=str(i), status=status, severity=severity, title=f"alert {i}",  # type: ignore[arg-type]
                 first_fired_at=at, last_fired_at=at)  # fmt: skip


def test_headline_and_stages_by_unit() -> None:
    rows = [_row("a", stage="canary", debt=3), _row("b"), _row("c", unit=None, prod=None), _row("d", unit="Cards")]
    head = summary.headline(rows, [_alert(1, "critical")])
    assert (head.models, head.in_production, head.with_debt, head.open_alerts) == (4, 3, 1, 1)
    table = summary.stage_unit_table(rows)
    assert table.stages == ["canary", "production", summary.NOT_LIVE]
    assert table.units == ["Cards", "Retail", summary.NO_UNIT]
    assert table.count("production", "Retail") == 1 and table.count("production", "Cards") == 1
    assert table.stage_total("production") == 2 and table.unit_total("Retail") == 2
    assert sum(table.stage_total(s) for s in table.stages) == len(rows)


def test_the_most_indebted_come_from_the_latest_snapshot_first() -> None:
    history = [
        DebtPoint(day=date(2026, 11, 1), total=9, with_debt=2, models={"a": 6, "b": 3, "c": 0}),
        DebtPoint(day=date(2026, 11, 2), total=5, with_debt=2, models={"a": 1, "b": 4, "c": 0}),
    ]
    assert summary.most_indebted(history) == ["b", "a"]  # c never owed anything
    assert summary.most_indebted(history, n=1) == ["b"] and summary.most_indebted([]) == []


def test_open_alerts_by_severity_and_the_newest() -> None:
    alerts = [_alert(i, sev) for i, sev in enumerate(["warning", "critical", "info", "critical", "page-me"], 1)]
    result = summary.alert_summary(alerts, n=2)
    assert result.by_severity == [("critical", 2), ("warning", 1), ("info", 1), ("page-me", 1)]
    assert [a.id for a in result.newest] == [5, 4] and result.total == 5


def test_a_kpi_latest_value_and_its_change_over_a_week() -> None:
    points = [KPIPoint(kpi="default_rate", scope="d", ts=T0 + timedelta(days=i), value=0.10 + 0.01 * i)
              for i in range(10)]  # fmt: skip
    points.append(KPIPoint(kpi="default_rate", scope="d", ts=T0 + timedelta(days=9, hours=3), value=0.29))
    declared = BusinessKPI(name="default_rate", unit="%", direction="decrease")
    glance = summary.kpi_glance("default_rate", "d", points, declared=declared)
    assert glance is not None and len(glance.days) == 10
    assert round(glance.latest, 6) == round((0.19 + 0.29) / 2, 6)  # the day's mean
    assert round(glance.week_ago or 0, 6) == 0.12 and round(glance.change or 0, 6) == 0.12
    assert glance.better is False  # a default rate going up is worse
    short = summary.kpi_glance("k", "d", points[:3])
    assert short is not None and short.week_ago is None and short.change is None and short.better is None
    assert summary.kpi_glance("k", "d", []) is None


def test_chart_json_cannot_close_its_script_element() -> None:
    from modelsteward.web.portfolio_page import debt_chart

    history = [DebtPoint(day=date(2026, 11, 1), total=3, with_debt=1, models={"</script><b>&": 3})]
    chart = debt_chart(history, ["</script><b>&"])
    assert "<" not in chart.json and ">" not in chart.json and "&" not in chart.json
    assert "\\u003c/script\\u003e" in chart.json
