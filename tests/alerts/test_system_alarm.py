"""Steward's own problems as alerts: a default system rule, one open alert per worker, resolving, and retrying."""

from __future__ import annotations

from typing import Any

import pytest
from alert_helpers import add_webhook

from modelsteward.alerts import AlertService, SystemAlarm
from modelsteward.domain.monitoring import AlertRule
from modelsteward.errors import StoreUnavailable
from modelsteward.store import alert_repo
from modelsteward.store.database import Database

HOOK = "http://127.0.0.1:9/hook"
DETAILS = {"worker": "host-1", "log": "/data/inference", "error": "OSError: [Errno 28] No space left on device"}


def raise_log(service: AlertService, worker: str = "host-1", problem: bool = True) -> list:
    return service.evaluate_system(
        "prediction-log", subject=worker, problem=problem, title=f"log of {worker} cannot be written", details=DETAILS
    )


def test_a_system_problem_fires_once_through_a_default_critical_rule_and_resolves(service: AlertService) -> None:
    fired = raise_log(service)
    assert [a.status for a in fired] == ["firing"]
    alert = fired[0]
    assert alert.rule == "system-prediction-log" and alert.severity == "critical"
    assert alert.title == "system-prediction-log: log of host-1 cannot be written"
    assert alert.details["error"].endswith("No space left on device") and "description" in alert.details
    rule = service.get_rule("system-prediction-log").rule
    assert rule.system == "prediction-log" and rule.channels == []

    # Raised again while open (another report, another process): the same alert, one more occurrence.
    assert raise_log(service) == []
    assert len(service.list_alerts()) == 1 and service.get_alert(alert.id).occurrences == 2
    # Another worker is another problem.
    other = raise_log(service, worker="host-2")
    assert len(other) == 1 and other[0].id != alert.id

    resolved = raise_log(service, problem=False)
    assert [(a.id, a.status) for a in resolved] == [(alert.id, "resolved")]
    assert service.get_alert(other[0].id).status == "firing"
    assert raise_log(service, problem=False) == []  # nothing open: nothing to do
    assert [r.rule.name for r in service.list_rules()] == ["system-prediction-log"]  # made once


def test_a_replaced_system_rule_delivers_to_its_channels_and_a_disabled_one_stays_quiet(
    service: AlertService, db: Database
) -> None:
    add_webhook(service, "ops", HOOK)
    service.put_rule(
        AlertRule(name="system-prediction-log", system="prediction-log", severity="critical", channels=["ops"]),
        actor="ana",
    )
    (alert,) = raise_log(service)
    raise_log(service, problem=False)
    with db.read() as conn:
        deliveries = alert_repo.list_deliveries(conn, alert_id=alert.id, status=None, limit=10)
    assert sorted((d.channel, d.event) for d in deliveries) == [("ops", "fire"), ("ops", "resolve")]

    service.disable("system-prediction-log", actor="ana")
    assert raise_log(service) == []
    assert len(service.list_rules()) == 1  # switched off on purpose: no default rule behind the user's back


def test_a_rule_watches_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one of monitor, kpi, lifecycle and system"):
        AlertRule(name="both", system="prediction-log", monitor="m")
    with pytest.raises(ValueError):
        AlertRule(name="unknown", system="coffee-machine")  # type: ignore[arg-type]


class FlakyAlerts:
    """An alert service whose store is down for the first ``down`` calls."""

    def __init__(self, down: int) -> None:
        self.down = down
        self.recorded: list[tuple[str, str, bool]] = []

    def evaluate_system(self, source: str, *, subject: str, problem: bool, **_: Any) -> list:
        if self.down:
            self.down -= 1
            raise StoreUnavailable("database or disk is full")
        self.recorded.append((source, subject, problem))
        return []


def test_the_alarm_keeps_what_the_store_could_not_take_and_records_the_latest_state_later(caplog) -> None:
    alerts = FlakyAlerts(down=2)
    alarm = SystemAlarm(alerts)  # type: ignore[arg-type]
    alarm.report("prediction-log", "host-1", problem=True, title="t", details={})
    assert alarm.pending == 1 and alerts.recorded == []
    assert "could not record the prediction-log alert of host-1" in caplog.text
    alarm.retry()  # still down
    assert alarm.pending == 1
    alarm.retry()
    assert alarm.pending == 0 and alerts.recorded == [("prediction-log", "host-1", True)]
    alarm.retry()  # nothing left: nothing recorded twice
    assert alerts.recorded == [("prediction-log", "host-1", True)]

    # A clear that replaces a raise the store never took: only the latest state is recorded.
    alerts.down = 1
    alarm.report("prediction-log", "host-2", problem=True, title="t", details={})
    alarm.report("prediction-log", "host-2", problem=False, title="t", details={})
    assert alarm.pending == 0 and alerts.recorded[-1] == ("prediction-log", "host-2", False)
