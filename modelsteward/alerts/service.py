"""The alert service: channels, alert rules, evaluation of results and KPI points, and alerts' life cycle.

Firing or resolving an alert writes the alert, one delivery per channel (the outbox) and an audit
event in one transaction, so an alert and its notifications are never recorded apart; the
dispatcher sends the deliveries afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from modelsteward.alerts.evaluation import (
    Verdict,
    fingerprint,
    judge_kpi,
    judge_lifecycle,
    judge_result,
    judge_system,
    watches_kpi,
    watches_lifecycle,
    watches_result,
    watches_system,
)
from modelsteward.domain.monitoring import (
    Alert,
    AlertRule,
    AlertRuleState,
    Channel,
    Delivery,
    KPIPoint,
    LifecycleSignal,
    MonitorResult,
)
from modelsteward.errors import Conflict, InvalidArgument, NotFound
from modelsteward.store import alert_repo, event_repo
from modelsteward.store.catalog_repo import now as utc_now
from modelsteward.store.database import Database

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_STATUSES = ("firing", "acknowledged", "resolved")
_DELIVERY_STATUSES = ("pending", "sent", "failed")
SYSTEM_RULE_PREFIX = "system-"
_SYSTEM_RULE_DESCRIPTIONS = {
    "prediction-log": "a server worker cannot write its prediction log (disk full, permissions, object store "
    "down): its predictions wait in memory and are refused with 503 once its queue is full",
    "feedback-log": "a server worker cannot write its feedback log: ground truth waits in memory and is refused "
    "with 503 once its queue is full",
}


def _channel_not_found(name: str) -> NotFound:
    return NotFound(f"no alert channel named {name!r}", details={"channel": name})


def _rule_not_found(name: str) -> NotFound:
    return NotFound(f"no alert rule named {name!r}", details={"rule": name})


def _alert_not_found(alert_id: int) -> NotFound:
    return NotFound(f"no alert with id {alert_id}", details={"alert": alert_id})


def notice_payload(alert: Alert) -> dict[str, Any]:
    """What a delivery stores: the alert as it was at the event, so a late send tells the same story."""
    return {"alert": alert.model_dump(mode="json")}


class AlertService:
    """Owns the ``channels``, ``alert_rules``, ``alerts`` and ``deliveries`` tables.

    >>> service = AlertService(db)
    >>> service.put_channel(Channel(name="ops", type="webhook", url="https://hooks.example/steward",
    ...                             secret_env="STEWARD_HOOK_SECRET"), actor="ana")
    >>> service.put_rule(AlertRule(name="drift", monitor="credit-drift", consecutive=2, channels=["ops"]), actor="ana")
    >>> service.evaluate_result(result)   # a MonitorResult: fires on the 2nd breach in a row
    """

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.db = db
        self.clock = clock

    # -- channels -----------------------------------------------------------------------------------

    def put_channel(self, channel: Channel, actor: str) -> Channel:
        """Create or replace a channel. Secrets stay out of the store: name a variable in ``secret_env``."""
        _check_channel(channel)
        with self.db.write() as conn:
            if alert_repo.get_channel(conn, channel.name) == channel:
                return channel  # nothing changed: no event
            before = alert_repo.put_channel(conn, channel, at=self.clock())
            event_repo.append_event(
                conn,
                actor=actor,
                action="channel.created" if before is None else "channel.updated",
                details={
                    "channel": channel.name,
                    "before": before.model_dump(mode="json") if before is not None else None,
                    "after": channel.model_dump(mode="json"),
                },
            )
        return channel

    def get_channel(self, name: str) -> Channel:
        with self.db.read() as conn:
            channel = alert_repo.get_channel(conn, name)
        if channel is None:
            raise _channel_not_found(name)
        return channel

    def list_channels(self) -> list[Channel]:
        with self.db.read() as conn:
            return alert_repo.list_channels(conn)

    def delete_channel(self, name: str, actor: str) -> None:
        """Delete a channel no rule uses and no pending delivery still waits for."""
        with self.db.write() as conn:
            channel = alert_repo.get_channel(conn, name)
            if channel is None:
                raise _channel_not_found(name)
            users = alert_repo.rules_using_channel(conn, name)
            if users:
                raise Conflict(
                    f"channel {name!r} is used by alert rule(s) {', '.join(users)}: remove it from them first",
                    details={"channel": name, "rules": users},
                )
            pending = alert_repo.count_pending(conn, channel=name)
            if pending:
                raise Conflict(
                    f"channel {name!r} still has {pending} pending deliveries; delete it once they are sent or failed",
                    details={"channel": name, "pending": pending},
                )
            alert_repo.delete_channel(conn, name)
            event_repo.append_event(
                conn,
                actor=actor,
                action="channel.deleted",
                details={"channel": name, "before": channel.model_dump(mode="json")},
            )

    # -- rules --------------------------------------------------------------------------------------

    def put_rule(self, rule: AlertRule, actor: str) -> AlertRuleState:
        """Create or replace a rule. Replacing it with a different definition restarts its streak."""
        if rule.kpi is not None and rule.when.metric != "value":
            raise InvalidArgument(
                f"a KPI rule compares the KPI's value: use metric: value, not {rule.when.metric!r}",
                details={"field": "when.metric"},
            )
        with self.db.write() as conn:
            known = alert_repo.channel_names(conn)
            for name in rule.channels:
                if name not in known:
                    raise _channel_not_found(name)
            row = alert_repo.rule_row(conn, rule.name, lock=True)
            spec = rule.model_dump(mode="json")
            if row is not None and row.spec == spec:
                return alert_repo.rule_state(row)  # nothing changed: no event, the streak goes on
            if row is None:
                alert_repo.insert_rule(conn, rule, at=self.clock())
            else:
                alert_repo.update_rule(conn, row.id, spec=rule, streak=0)
            event_repo.append_event(
                conn,
                actor=actor,
                action="alert_rule.created" if row is None else "alert_rule.updated",
                details={"rule": rule.name, "before": row.spec if row is not None else None, "after": spec},
            )
        return self.get_rule(rule.name)

    def get_rule(self, name: str) -> AlertRuleState:
        with self.db.read() as conn:
            row = alert_repo.rule_row(conn, name)
        if row is None:
            raise _rule_not_found(name)
        return alert_repo.rule_state(row)

    def list_rules(self, *, enabled: bool | None = None) -> list[AlertRuleState]:
        with self.db.read() as conn:
            return [alert_repo.rule_state(r) for r in alert_repo.rule_rows(conn, enabled=enabled)]

    def delete_rule(self, name: str, actor: str) -> None:
        """Delete a rule with no open alert and no pending delivery. Its past alerts go with it (the
        audit trail keeps their events); to keep the history, disable the rule instead."""
        with self.db.write() as conn:
            row = alert_repo.rule_row(conn, name, lock=True)
            if row is None:
                raise _rule_not_found(name)
            open_alerts = alert_repo.count_open_alerts(conn, row.id)
            pending = alert_repo.count_pending(conn, rule_id=row.id)
            if open_alerts or pending:
                raise Conflict(
                    f"alert rule {name!r} has {open_alerts} open alert(s) and {pending} pending deliveries: "
                    "resolve them (or disable the rule) first",
                    details={"rule": name, "open_alerts": open_alerts, "pending_deliveries": pending},
                )
            alert_repo.delete_rule(conn, row.id)
            event_repo.append_event(
                conn, actor=actor, action="alert_rule.deleted", details={"rule": name, "before": row.spec}
            )

    def enable(self, name: str, actor: str) -> AlertRuleState:
        return self._set_enabled(name, True, actor)

    def disable(self, name: str, actor: str) -> AlertRuleState:
        """Stop evaluating a rule; its open alerts stay open until resolved by hand or re-enabled."""
        return self._set_enabled(name, False, actor)

    def _set_enabled(self, name: str, enabled: bool, actor: str) -> AlertRuleState:
        with self.db.write() as conn:
            row = alert_repo.rule_row(conn, name, lock=True)
            if row is None:
                raise _rule_not_found(name)
            if row.enabled != enabled:
                alert_repo.update_rule(conn, row.id, enabled=enabled, streak=0)
                event_repo.append_event(
                    conn,
                    actor=actor,
                    action="alert_rule.enabled" if enabled else "alert_rule.disabled",
                    details={"rule": name},
                )
        return self.get_rule(name)

    # -- evaluation ---------------------------------------------------------------------------------

    def evaluate_result(self, result: MonitorResult) -> list[Alert]:
        """Apply every enabled rule watching ``result.monitor``; returns the alerts fired or resolved."""
        return self._evaluate(lambda rule: watches_result(rule, result), lambda rule: judge_result(rule, result))

    def evaluate_kpi(self, point: KPIPoint) -> list[Alert]:
        """Apply every enabled rule watching ``point.kpi`` in ``point.scope``; returns the alerts fired or resolved."""
        return self._evaluate(lambda rule: watches_kpi(rule, point), lambda rule: judge_kpi(rule, point))

    def evaluate_lifecycle(self, signal: LifecycleSignal, actor: str = "lifecycle") -> list[Alert]:
        """A problem of the life-cycle engine (or its end) through the rules that watch that life cycle;
        a notice goes straight to its channels, once per subject however often it is sent."""
        if signal.problem == "notice":
            return self._notice(signal, actor)
        return self._evaluate(
            lambda rule: watches_lifecycle(rule, signal),
            lambda rule: judge_lifecycle(rule, signal),
            actor,
            subject=signal.subject,
        )

    def evaluate_system(
        self, source: str, *, subject: str, problem: bool, title: str, details: dict[str, Any], actor: str = "steward"
    ) -> list[Alert]:
        """Steward's own condition ``source`` (``prediction-log``...) raised or cleared for ``subject`` (a worker).

        Goes through the enabled rules watching ``system: <source>``, one open alert per subject: raising it
        again while open only counts an occurrence, clearing it resolves it. So that such a problem is never
        silent, a raise finds a default rule ``system-<source>`` (critical, no channel) created the first time no
        rule watches the source; replace it (same name) to add channels, or disable it.
        """
        if problem:
            self._ensure_system_rule(source, actor)
        return self._evaluate(
            lambda rule: watches_system(rule, source),
            lambda rule: judge_system(rule, problem=problem, title=title, details=details),
            actor,
            subject=subject,
        )

    def _ensure_system_rule(self, source: str, actor: str) -> None:
        with self.db.read() as conn:
            if any(row.spec.get("system") == source for row in alert_repo.rule_rows(conn)):
                return  # a rule watches it (even a disabled one: switched off on purpose)
        rule = AlertRule(
            name=f"{SYSTEM_RULE_PREFIX}{source}",
            system=source,  # type: ignore[arg-type]
            severity="critical",
            description=_SYSTEM_RULE_DESCRIPTIONS.get(source, ""),
        )
        try:
            with self.db.write() as conn:
                if alert_repo.rule_row(conn, rule.name, lock=True) is not None:
                    return  # another worker made it meanwhile, or a rule of that name watches something else
                alert_repo.insert_rule(conn, rule, at=self.clock())
                event_repo.append_event(
                    conn,
                    actor=actor,
                    action="alert_rule.created",
                    details={"rule": rule.name, "before": None, "after": rule.model_dump(mode="json")},
                )
        except IntegrityError:
            pass  # created by another process between the check and the insert

    def _notice(self, signal: LifecycleSignal, actor: str) -> list[Alert]:
        rule = AlertRule(
            name=f"lifecycle-{signal.lifecycle}-notices"[:128],
            lifecycle=signal.lifecycle,
            problems=["notice"],
            severity="info",
            description=f"notices sent by the transitions of life cycle {signal.lifecycle} (kept by the engine)",
        )
        at = self.clock()
        with self.db.write() as conn:
            known = alert_repo.channel_names(conn)
            for name in signal.channels:
                if name not in known:
                    raise _channel_not_found(name)
            row = alert_repo.rule_row(conn, rule.name, lock=True)
            if row is None:
                alert_repo.insert_rule(conn, rule, at=at)
                row = alert_repo.rule_row(conn, rule.name, lock=True)
            assert row is not None
            key = fingerprint(rule, signal.subject)
            if alert_repo.any_alert(conn, row.id, key) is not None:
                return []  # sent before (a resumed step): nothing twice
            details = {"lifecycle": signal.lifecycle, "model": signal.model, "version": signal.version,
                       "subject": signal.subject, **signal.details}  # fmt: skip
            alert_id = alert_repo.insert_alert(
                conn, rule_id=row.id, fingerprint=key, severity=signal.severity, title=signal.title,
                details=details, at=at,
            )  # fmt: skip
            alert_repo.update_alert(conn, alert_id, status="resolved", resolved_at=at)  # informs; nothing to fix
            alert = alert_repo.get_alert(conn, alert_id)
            assert alert is not None
            fired = alert.model_copy(update={"status": "firing", "resolved_at": None})
            delivery_ids = alert_repo.insert_deliveries(
                conn,
                alert_id=alert_id,
                channel_names=signal.channels,
                event="fire",
                payload=notice_payload(fired),
                at=at,
            )
            event_repo.append_event(
                conn, actor=actor, action="alert.notice", model=signal.model, version=signal.version,
                details={"alert": alert_id, "title": signal.title, "channels": signal.channels,
                         "deliveries": delivery_ids},
            )  # fmt: skip
        return [alert]

    def _evaluate(
        self,
        watches: Callable[[AlertRule], bool],
        judge: Callable[[AlertRule], Verdict],
        actor: str = "alerting",
        *,
        subject: str = "",
    ) -> list[Alert]:
        # Find the rules with a cheap read first: most results concern no rule and need no write lock.
        with self.db.read() as conn:
            ids = [r.id for r in alert_repo.rule_rows(conn, enabled=True) if watches(AlertRule.model_validate(r.spec))]
        if not ids:
            return []
        changed: list[int] = []
        with self.db.write() as conn:
            for row in alert_repo.lock_rules(conn, ids):
                rule = AlertRule.model_validate(row.spec)
                if not row.enabled or not watches(rule):
                    continue  # changed since the read above
                verdict = judge(rule)
                alert_id = self._apply(conn, row.id, row.streak, rule, verdict, actor, subject)
                if alert_id is not None:
                    changed.append(alert_id)
            alerts = [alert_repo.get_alert(conn, i) for i in changed]
        return [a for a in alerts if a is not None]

    def _apply(
        self,
        conn: Connection,
        rule_id: int,
        streak: int,
        rule: AlertRule,
        verdict: Verdict,
        actor: str,
        subject: str = "",
    ) -> int | None:
        """One rule, one verdict: keep the streak, then fire, bump or resolve. Returns the alert id
        when an alert was fired or resolved."""
        if verdict.outcome == "skip":
            return None
        at = self.clock()
        key = fingerprint(rule, subject)
        current = alert_repo.open_alert(conn, rule_id, key)
        if rule.lifecycle is not None or rule.system is not None:
            streak = rule.consecutive - 1  # each subject is its own problem: no streak across subjects
        if verdict.outcome == "pass":
            if streak:
                alert_repo.update_rule(conn, rule_id, streak=0)
            if current is None:
                return None
            self._resolve(conn, current, at=at, actor=actor, reason="condition passed", details=verdict.details)
            return current.id
        streak += 1
        alert_repo.update_rule(conn, rule_id, streak=streak)
        if streak < rule.consecutive:
            return None
        details = {**verdict.details, "consecutive": streak}
        if current is not None:
            alert_repo.bump_alert(conn, current.id, title=verdict.title, details=details, at=at)
            return None
        alert_id = alert_repo.insert_alert(
            conn, rule_id=rule_id, fingerprint=key, severity=rule.severity, title=verdict.title, details=details, at=at
        )
        alert = alert_repo.get_alert(conn, alert_id)
        assert alert is not None
        known = alert_repo.channel_names(conn)
        targets = [name for name in rule.channels if name in known]
        delivery_ids = alert_repo.insert_deliveries(
            conn, alert_id=alert_id, channel_names=targets, event="fire", payload=notice_payload(alert), at=at
        )
        event_repo.append_event(
            conn,
            actor=actor,
            action="alert.fired",
            details={
                "alert": alert_id,
                "rule": rule.name,
                "fingerprint": key,
                "severity": rule.severity,
                "title": verdict.title,
                "channels": targets,
                "deliveries": delivery_ids,
            },
        )
        return alert_id

    def _resolve(
        self, conn: Connection, alert: Alert, *, at: datetime, actor: str, reason: str, details: dict[str, Any]
    ) -> None:
        alert_repo.update_alert(conn, alert.id, status="resolved", resolved_at=at)
        resolved = alert.model_copy(update={"status": "resolved", "resolved_at": at})
        known = alert_repo.channel_names(conn)
        targets = [name for name in alert_repo.fired_channels(conn, alert.id) if name in known]
        delivery_ids = alert_repo.insert_deliveries(
            conn, alert_id=alert.id, channel_names=targets, event="resolve", payload=notice_payload(resolved), at=at
        )
        event_repo.append_event(
            conn,
            actor=actor,
            action="alert.resolved",
            details={
                "alert": alert.id,
                "rule": alert.rule,
                "fingerprint": alert.fingerprint,
                "reason": reason,
                "value": details.get("value"),
                "channels": targets,
                "deliveries": delivery_ids,
            },
        )

    # -- alerts -------------------------------------------------------------------------------------

    def acknowledge(self, alert_id: int, actor: str) -> Alert:
        """Someone is on it: the alert stays open (further breaches are still counted, silently)."""
        with self.db.write() as conn:
            alert = alert_repo.get_alert(conn, alert_id, lock=True)
            if alert is None:
                raise _alert_not_found(alert_id)
            if alert.status == "resolved":
                raise Conflict(f"alert {alert_id} is already resolved", details={"alert": alert_id})
            if alert.status == "firing":
                alert_repo.update_alert(conn, alert_id, status="acknowledged", acknowledged_by=actor)
                event_repo.append_event(
                    conn, actor=actor, action="alert.acknowledged", details={"alert": alert_id, "rule": alert.rule}
                )
        return self.get_alert(alert_id)

    def resolve(self, alert_id: int, actor: str) -> Alert:
        """Resolve by hand and send the resolve notice. The rule's streak restarts, so a condition that
        still breaches fires a new alert after ``consecutive`` more breaches."""
        with self.db.write() as conn:
            alert = alert_repo.get_alert(conn, alert_id)
            if alert is None:
                raise _alert_not_found(alert_id)
            # Lock the rule before the alert, in the order evaluation takes them (no deadlock).
            row = alert_repo.rule_row(conn, alert.rule, lock=True)
            alert = alert_repo.get_alert(conn, alert_id, lock=True)
            assert alert is not None
            if alert.status == "resolved":
                raise Conflict(f"alert {alert_id} is already resolved", details={"alert": alert_id})
            if row is not None:
                alert_repo.update_rule(conn, row.id, streak=0)
            self._resolve(conn, alert, at=self.clock(), actor=actor, reason="resolved by hand", details={})
        return self.get_alert(alert_id)

    def get_alert(self, alert_id: int) -> Alert:
        with self.db.read() as conn:
            alert = alert_repo.get_alert(conn, alert_id)
        if alert is None:
            raise _alert_not_found(alert_id)
        return alert

    def list_alerts(self, status: str | None = None, rule: str | None = None, limit: int = 100) -> list[Alert]:
        """Newest first."""
        if status is not None and status not in _STATUSES:
            raise InvalidArgument(f"alert status is one of {', '.join(_STATUSES)}", details={"field": "status"})
        with self.db.read() as conn:
            return alert_repo.list_alerts(conn, status=status, rule=rule, limit=_limit(limit))

    # -- deliveries ---------------------------------------------------------------------------------

    def list_deliveries(
        self, alert_id: int | None = None, status: str | None = None, limit: int = 100
    ) -> list[Delivery]:
        """Newest first; ``status="failed"`` lists the notifications that gave up and wait for a hand retry."""
        if status is not None and status not in _DELIVERY_STATUSES:
            raise InvalidArgument(
                f"delivery status is one of {', '.join(_DELIVERY_STATUSES)}", details={"field": "status"}
            )
        with self.db.read() as conn:
            return alert_repo.list_deliveries(conn, alert_id=alert_id, status=status, limit=_limit(limit))

    def delivery_counts(self) -> dict[str, int]:
        """How many deliveries are pending, sent and failed."""
        with self.db.read() as conn:
            return alert_repo.count_deliveries(conn)

    def retry_delivery(self, delivery_id: int, actor: str) -> Delivery:
        """Send a failed delivery again now (one more attempt; failing again it returns to ``failed``).
        A pending delivery is left as it is; a sent one is a conflict."""
        with self.db.write() as conn:
            delivery = alert_repo.get_delivery(conn, delivery_id, lock=True)
            if delivery is None:
                raise NotFound(f"no delivery with id {delivery_id}", details={"delivery": delivery_id})
            if delivery.status == "sent":
                raise Conflict(f"delivery {delivery_id} was already sent", details={"delivery": delivery_id})
            if delivery.status == "failed":
                alert_repo.requeue(conn, delivery_id, at=self.clock())
                event_repo.append_event(
                    conn,
                    actor=actor,
                    action="delivery.retried",
                    details={"delivery": delivery_id, "alert": delivery.alert_id, "channel": delivery.channel},
                )
            updated = alert_repo.get_delivery(conn, delivery_id)
        assert updated is not None
        return updated


def _limit(limit: int) -> int:
    if not 1 <= limit <= 10_000:
        raise InvalidArgument("limit must be between 1 and 10000", details={"field": "limit"})
    return limit


def _check_channel(channel: Channel) -> None:
    for field in ("secret_env", "smtp_user_env"):
        value = getattr(channel, field)
        if value is not None and not _ENV_NAME.match(value):
            raise InvalidArgument(
                f"{field} names an environment variable (letters, digits, _), not a value", details={"field": field}
            )
    if channel.url is not None:
        parts = urlsplit(channel.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidArgument(
                f"channel url must be http(s)://host/..., got {parts.scheme or 'no'} scheme", details={"field": "url"}
            )
        if parts.password:
            raise InvalidArgument(
                "a channel url must not carry a password: put the secret in an environment variable and name it "
                "in secret_env (or write ${VARIABLE} in the url)",
                details={"field": "url"},
            )
    if channel.type == "ticket" and not channel.project:
        raise InvalidArgument("a ticket channel needs a project key", details={"field": "project"})
