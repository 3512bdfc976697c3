"""The alert service on SQLite and PostgreSQL: channels, rules, firing, dedup, resolving, acknowledging, audit."""

from __future__ import annotations

import pytest
from alert_helpers import T0, Clock, add_rule, add_webhook, result

from modelsteward.alerts import AlertService
from modelsteward.domain.monitoring import AlertCondition, AlertRule, Channel, KPIPoint
from modelsteward.errors import Conflict, InvalidArgument, NotFound
from modelsteward.store import alert_repo, event_repo
from modelsteward.store.database import Database

HOOK = "http://127.0.0.1:9/hook"


def events(db: Database, action: str | None = None) -> list:
    with db.read() as conn:
        found = event_repo.list_events(conn, limit=1000)
    return [e for e in found if action is None or e.action == action]


# -- channels -----------------------------------------------------------------------------------------


def test_channels_are_created_replaced_listed_and_deleted(service: AlertService, db: Database) -> None:
    add_webhook(service, "ops", HOOK, secret_env="OPS_HOOK_SECRET")
    add_webhook(service, "ops", HOOK + "2")
    service.put_channel(
        Channel(name="mail", type="email", smtp_host="localhost", sender="s@x.org", recipients=["a@x.org"]), "ana"
    )
    assert [c.name for c in service.list_channels()] == ["mail", "ops"]
    assert service.get_channel("ops").url == HOOK + "2"
    service.delete_channel("mail", actor="ana")
    with pytest.raises(NotFound, match="no alert channel named 'mail'"):
        service.get_channel("mail")
    assert [e.action for e in reversed(events(db))] == [
        "channel.created",
        "channel.updated",
        "channel.created",
        "channel.deleted",
    ]


def test_channels_refuse_secrets_and_malformed_urls(service: AlertService) -> None:
    with pytest.raises(InvalidArgument, match="environment variable"):
        add_webhook(service, "ops", HOOK, secret_env="s3cr3t value!")
    with pytest.raises(InvalidArgument, match="password"):
        add_webhook(service, "ops", "https://user:hunter2@hooks.example/x")
    with pytest.raises(InvalidArgument, match="http"):
        add_webhook(service, "ops", "ftp://hooks.example/x")
    with pytest.raises(InvalidArgument, match="project"):
        service.put_channel(Channel(name="jira", type="ticket", url=HOOK), "ana")


def test_a_channel_in_use_cannot_be_deleted(service: AlertService) -> None:
    add_webhook(service, "ops", HOOK)
    add_rule(service, channels=["ops"])
    with pytest.raises(Conflict, match="used by alert rule"):
        service.delete_channel("ops", actor="ana")


# -- rules --------------------------------------------------------------------------------------------


def test_rules_need_existing_channels(service: AlertService) -> None:
    with pytest.raises(NotFound, match="no alert channel named 'pager'"):
        add_rule(service, channels=["pager"])
    with pytest.raises(NotFound, match="no alert rule named 'drift'"):
        service.get_rule("drift")


def test_rules_are_stored_enabled_disabled_and_deleted(service: AlertService, db: Database) -> None:
    add_webhook(service, "ops", HOOK)
    add_rule(service, channels=["ops"], consecutive=2)
    state = service.get_rule("drift")
    assert state.enabled and state.streak == 0 and state.rule.consecutive == 2
    assert not service.disable("drift", actor="ana").enabled
    assert [r.rule.name for r in service.list_rules(enabled=False)] == ["drift"]
    assert service.enable("drift", actor="ana").enabled
    service.delete_rule("drift", actor="ana")
    assert service.list_rules() == []
    assert {"alert_rule.created", "alert_rule.disabled", "alert_rule.enabled", "alert_rule.deleted"} <= {
        e.action for e in events(db)
    }


def test_kpi_rules_must_compare_the_value(service: AlertService) -> None:
    rule = AlertRule(name="k", kpi="approval_rate", scope="credit", when=AlertCondition(metric="mean", threshold=1))
    with pytest.raises(InvalidArgument, match="metric: value"):
        service.put_rule(rule, actor="ana")


# -- evaluation ---------------------------------------------------------------------------------------


def test_consecutive_breaches_fire_once_and_write_the_outbox_with_the_event(
    service: AlertService, db: Database, clock: Clock
) -> None:
    add_webhook(service, "ops", HOOK)
    add_webhook(service, "ml-team", HOOK)
    add_rule(service, consecutive=3, severity="critical", channels=["ops", "ml-team"])

    assert service.evaluate_result(result()) == []
    assert service.evaluate_result(result()) == []
    assert service.get_rule("drift").streak == 2
    clock.advance(minutes=15)
    fired = service.evaluate_result(result())

    assert len(fired) == 1
    alert = fired[0]
    assert alert.status == "firing" and alert.severity == "critical" and alert.rule == "drift"
    assert alert.first_fired_at == clock.now and alert.details["consecutive"] == 3
    deliveries = service.list_deliveries(alert_id=alert.id)
    assert sorted(d.channel for d in deliveries) == ["ml-team", "ops"]
    assert all(d.status == "pending" and d.event == "fire" and d.attempts == 0 for d in deliveries)
    [event] = events(db, "alert.fired")
    assert event.details["alert"] == alert.id
    assert sorted(event.details["deliveries"]) == sorted(d.id for d in deliveries)


def test_a_pass_resets_the_streak(service: AlertService) -> None:
    add_rule(service, consecutive=2)
    service.evaluate_result(result())
    service.evaluate_result(result(status="ok"))
    assert service.get_rule("drift").streak == 0
    assert service.evaluate_result(result()) == []
    assert service.list_alerts() == []


def test_breaches_while_firing_only_count_occurrences(service: AlertService, clock: Clock) -> None:
    add_webhook(service, "ops", HOOK)
    add_rule(service, channels=["ops"])
    [alert] = service.evaluate_result(result())
    clock.advance(hours=1)
    assert service.evaluate_result(result()) == []
    clock.advance(hours=1)
    assert service.evaluate_result(result()) == []

    again = service.get_alert(alert.id)
    assert again.occurrences == 3 and again.last_fired_at == clock.now and again.first_fired_at == T0
    assert len(service.list_deliveries()) == 1  # no new notification
    assert len(service.list_alerts()) == 1


def test_a_pass_resolves_the_alert_and_sends_a_resolve_notice(
    service: AlertService, db: Database, clock: Clock
) -> None:
    add_webhook(service, "ops", HOOK)
    add_rule(service, channels=["ops"])
    [alert] = service.evaluate_result(result())
    clock.advance(hours=2)
    [resolved] = service.evaluate_result(result(status="ok"))

    assert resolved.id == alert.id and resolved.status == "resolved" and resolved.resolved_at == clock.now
    notices = {d.event: d for d in service.list_deliveries(alert_id=alert.id)}
    assert set(notices) == {"fire", "resolve"} and notices["resolve"].status == "pending"
    assert events(db, "alert.resolved")[0].details["reason"] == "condition passed"
    # A later breach is a new problem: a new alert and a new fire notice.
    [second] = service.evaluate_result(result())
    assert second.id != alert.id and second.status == "firing"
    assert [a.status for a in service.list_alerts()] == ["firing", "resolved"]


@pytest.mark.parametrize("status", ["not_enough_data", "error"])
def test_empty_windows_and_errors_neither_fire_nor_resolve(service: AlertService, status: str) -> None:
    add_webhook(service, "ops", HOOK)
    add_rule(service, channels=["ops"], consecutive=2)
    service.evaluate_result(result())
    assert service.evaluate_result(result(status=status)) == []
    assert service.get_rule("drift").streak == 1  # kept, not reset
    [alert] = service.evaluate_result(result())
    assert service.evaluate_result(result(status=status)) == []
    assert service.get_alert(alert.id).status == "firing"
    assert [d.event for d in service.list_deliveries()] == ["fire"]


def test_metric_rules_read_nested_figures(service: AlertService) -> None:
    when = AlertCondition(metric="drift.share_drifted", op=">", threshold=0.3)
    add_rule(service, when=when)
    assert service.evaluate_result(result(status="ok", drift={"share_drifted": 0.1})) == []
    [alert] = service.evaluate_result(result(status="ok", drift={"share_drifted": 0.45}))
    assert alert.details["value"] == 0.45
    [resolved] = service.evaluate_result(result(status="ok", drift={"share_drifted": 0.2}))
    assert resolved.status == "resolved"


def test_only_rules_watching_the_monitor_are_evaluated(service: AlertService) -> None:
    add_rule(service, "drift")
    add_rule(service, "other", monitor="quality")
    add_rule(service, "off")
    service.disable("off", actor="ana")
    fired = service.evaluate_result(result())
    assert [a.rule for a in fired] == ["drift"]
    assert service.get_rule("other").streak == 0 and service.get_rule("off").streak == 0


def test_kpi_rules_fire_and_resolve_by_kpi_and_scope(service: AlertService) -> None:
    add_webhook(service, "ops", HOOK)
    low = AlertCondition(metric="value", op="<", threshold=0.5)
    rule = AlertRule(name="approvals", kpi="approval_rate", scope="credit", when=low, channels=["ops"])
    service.put_rule(rule, actor="ana")

    assert service.evaluate_kpi(KPIPoint(kpi="approval_rate", scope="fraud", ts=T0, value=0.1)) == []
    assert service.evaluate_kpi(KPIPoint(kpi="default_rate", scope="credit", ts=T0, value=0.1)) == []
    [alert] = service.evaluate_kpi(KPIPoint(kpi="approval_rate", scope="credit", ts=T0, value=0.41))
    assert alert.details["kpi"] == "approval_rate" and alert.details["value"] == 0.41
    [resolved] = service.evaluate_kpi(KPIPoint(kpi="approval_rate", scope="credit", ts=T0, value=0.55))
    assert resolved.status == "resolved"
    assert [d.event for d in service.list_deliveries()] == ["resolve", "fire"]


def test_the_alert_and_its_deliveries_are_written_together_or_not_at_all(
    service: AlertService, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_webhook(service, "ops", HOOK)
    add_rule(service, channels=["ops"])

    def broken(*args: object, **kwargs: object) -> list[int]:
        raise RuntimeError("disk full")

    monkeypatch.setattr(alert_repo, "insert_deliveries", broken)
    with pytest.raises(RuntimeError):
        service.evaluate_result(result())
    assert service.list_alerts() == [] and events(db, "alert.fired") == []
    assert service.get_rule("drift").streak == 0
    monkeypatch.undo()
    assert len(service.evaluate_result(result())) == 1


# -- acknowledging and resolving by hand ------------------------------------------------------------------


def test_acknowledged_alerts_stay_open_and_still_resolve(service: AlertService, db: Database) -> None:
    add_webhook(service, "ops", HOOK)
    add_rule(service, channels=["ops"])
    [alert] = service.evaluate_result(result())
    acked = service.acknowledge(alert.id, actor="bob")
    assert acked.status == "acknowledged" and acked.acknowledged_by == "bob"
    assert service.evaluate_result(result()) == []
    assert service.get_alert(alert.id).occurrences == 2
    assert service.list_alerts(status="acknowledged")[0].id == alert.id
    [resolved] = service.evaluate_result(result(status="ok"))
    assert resolved.status == "resolved" and resolved.acknowledged_by == "bob"
    with pytest.raises(Conflict, match="already resolved"):
        service.acknowledge(alert.id, actor="bob")
    assert events(db, "alert.acknowledged")[0].actor == "bob"


def test_resolving_by_hand_sends_the_notice_and_restarts_the_streak(service: AlertService) -> None:
    add_webhook(service, "ops", HOOK)
    add_rule(service, channels=["ops"], consecutive=2)
    service.evaluate_result(result())
    [alert] = service.evaluate_result(result())
    resolved = service.resolve(alert.id, actor="bob")
    assert resolved.status == "resolved"
    assert sorted(d.event for d in service.list_deliveries(alert_id=alert.id)) == ["fire", "resolve"]
    assert service.get_rule("drift").streak == 0
    assert service.evaluate_result(result()) == []  # needs two fresh breaches again
    with pytest.raises(Conflict):
        service.resolve(alert.id, actor="bob")
    with pytest.raises(NotFound, match="no alert with id 999"):
        service.resolve(999, actor="bob")


def test_list_alerts_filters_by_rule_and_status(service: AlertService) -> None:
    add_rule(service, "a")
    add_rule(service, "b")
    service.evaluate_result(result())
    assert {a.rule for a in service.list_alerts()} == {"a", "b"}
    assert [a.rule for a in service.list_alerts(rule="b")] == ["b"]
    assert service.list_alerts(status="resolved") == []
    assert len(service.list_alerts(limit=1)) == 1
    with pytest.raises(InvalidArgument):
        service.list_alerts(status="open")


def test_a_rule_with_open_alerts_cannot_be_deleted(service: AlertService) -> None:
    add_rule(service)
    [alert] = service.evaluate_result(result())
    with pytest.raises(Conflict, match="open alert"):
        service.delete_rule("drift", actor="ana")
    service.resolve(alert.id, actor="ana")
    service.delete_rule("drift", actor="ana")


def test_changing_a_rule_restarts_its_streak(service: AlertService) -> None:
    add_rule(service, consecutive=3)
    service.evaluate_result(result())
    add_rule(service, consecutive=3)  # unchanged: the streak goes on
    assert service.get_rule("drift").streak == 1
    add_rule(service, consecutive=2)
    assert service.get_rule("drift").streak == 0
