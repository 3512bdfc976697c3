"""Alerting queries on an open transaction: channels, alert rules, alerts and the deliveries outbox."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from modelsteward.domain.monitoring import Alert, AlertRule, AlertRuleState, Channel, Delivery
from modelsteward.store.catalog_repo import utc
from modelsteward.store.tables import alert_rules, alerts, channels, deliveries

CH, AR, AL, DL = channels.c, alert_rules.c, alerts.c, deliveries.c
OPEN = ("firing", "acknowledged")


def _locked(conn: Connection, query: sa.Select[Any]) -> sa.Select[Any]:
    # PostgreSQL locks the rows until the transaction ends; SQLite's write transaction already holds the lock.
    return query.with_for_update() if conn.dialect.name == "postgresql" else query


# -- channels -----------------------------------------------------------------------------------------


def get_channel(conn: Connection, name: str) -> Channel | None:
    spec = conn.execute(sa.select(CH.spec).where(CH.name == name)).scalar()
    return Channel.model_validate(spec) if spec is not None else None


def list_channels(conn: Connection) -> list[Channel]:
    return [Channel.model_validate(spec) for spec in conn.execute(sa.select(CH.spec).order_by(CH.name)).scalars()]


def channel_names(conn: Connection) -> set[str]:
    return set(conn.execute(sa.select(CH.name)).scalars())


def put_channel(conn: Connection, channel: Channel, *, at: datetime) -> Channel | None:
    """Insert or replace ``channel``; returns the previous definition (``None`` when new)."""
    before = get_channel(conn, channel.name)
    spec = channel.model_dump(mode="json")
    if before is None:
        conn.execute(channels.insert().values(name=channel.name, spec=spec, created_at=at))
    else:
        conn.execute(channels.update().where(CH.name == channel.name).values(spec=spec))
    return before


def delete_channel(conn: Connection, name: str) -> None:
    conn.execute(channels.delete().where(CH.name == name))


# -- rules --------------------------------------------------------------------------------------------


def rule_row(conn: Connection, name: str, *, lock: bool = False) -> Row[Any] | None:
    query = sa.select(alert_rules).where(AR.name == name)
    return conn.execute(_locked(conn, query) if lock else query).first()


def rule_rows(conn: Connection, *, enabled: bool | None = None) -> list[Row[Any]]:
    query = sa.select(alert_rules).order_by(AR.name)
    if enabled is not None:
        query = query.where(AR.enabled == enabled)
    return list(conn.execute(query))


def lock_rules(conn: Connection, ids: Iterable[int]) -> list[Row[Any]]:
    """The rules' rows, locked in id order (a fixed order, so two evaluations cannot deadlock)."""
    query = sa.select(alert_rules).where(AR.id.in_(sorted(ids))).order_by(AR.id)
    return list(conn.execute(_locked(conn, query)))


def rule_state(row: Row[Any]) -> AlertRuleState:
    return AlertRuleState(
        rule=AlertRule.model_validate(row.spec), enabled=row.enabled, streak=row.streak, created_at=utc(row.created_at)
    )


def insert_rule(conn: Connection, rule: AlertRule, *, at: datetime) -> None:
    conn.execute(
        alert_rules.insert().values(
            name=rule.name, spec=rule.model_dump(mode="json"), enabled=True, streak=0, created_at=at
        )
    )


def update_rule(conn: Connection, rule_id: int, **values: Any) -> None:
    """Set columns of one rule (``spec`` given as a domain record is stored as JSON)."""
    if isinstance(values.get("spec"), AlertRule):
        values["spec"] = values["spec"].model_dump(mode="json")
    conn.execute(alert_rules.update().where(AR.id == rule_id).values(**values))


def delete_rule(conn: Connection, rule_id: int) -> None:
    conn.execute(alert_rules.delete().where(AR.id == rule_id))


def rules_using_channel(conn: Connection, name: str) -> list[str]:
    return [r.name for r in rule_rows(conn) if name in (r.spec.get("channels") or [])]


# -- alerts -------------------------------------------------------------------------------------------

_ALERT_COLUMNS = [*alerts.c, AR.name.label("rule_name")]


def _alert_query() -> sa.Select[Any]:
    return sa.select(*_ALERT_COLUMNS).join(alert_rules, AR.id == AL.rule_id)


def alert_record(row: Row[Any]) -> Alert:
    return Alert(
        id=row.id,
        rule=row.rule_name,
        fingerprint=row.fingerprint,
        status=row.status,
        severity=row.severity,
        title=row.title,
        details=row.details,
        occurrences=row.occurrences,
        first_fired_at=utc(row.first_fired_at),
        last_fired_at=utc(row.last_fired_at),
        resolved_at=utc(row.resolved_at) if row.resolved_at is not None else None,
        acknowledged_by=row.acknowledged_by,
    )


def get_alert(conn: Connection, alert_id: int, *, lock: bool = False) -> Alert | None:
    if lock and conn.dialect.name == "postgresql":
        conn.execute(sa.select(AL.id).where(AL.id == alert_id).with_for_update())
    row = conn.execute(_alert_query().where(AL.id == alert_id)).first()
    return alert_record(row) if row is not None else None


def open_alert(conn: Connection, rule_id: int, fingerprint: str) -> Alert | None:
    """The rule's firing or acknowledged alert with this fingerprint (at most one is ever open)."""
    row = conn.execute(
        _alert_query()
        .where(AL.rule_id == rule_id, AL.fingerprint == fingerprint, AL.status.in_(OPEN))
        .order_by(AL.id.desc())
        .limit(1)
    ).first()
    return alert_record(row) if row is not None else None


def any_alert(conn: Connection, rule_id: int, fingerprint: str) -> Alert | None:
    """The rule's latest alert with this fingerprint, open or not."""
    row = conn.execute(
        _alert_query().where(AL.rule_id == rule_id, AL.fingerprint == fingerprint).order_by(AL.id.desc()).limit(1)
    ).first()
    return alert_record(row) if row is not None else None


def count_open_alerts(conn: Connection, rule_id: int) -> int:
    query = sa.select(sa.func.count()).select_from(alerts).where(AL.rule_id == rule_id, AL.status.in_(OPEN))
    return int(conn.execute(query).scalar_one())


def list_alerts(
    conn: Connection, *, status: str | None = None, rule: str | None = None, limit: int = 100
) -> list[Alert]:
    query = _alert_query().order_by(AL.id.desc()).limit(limit)
    if status is not None:
        query = query.where(AL.status == status)
    if rule is not None:
        query = query.where(AR.name == rule)
    return [alert_record(r) for r in conn.execute(query)]


def insert_alert(
    conn: Connection,
    *,
    rule_id: int,
    fingerprint: str,
    severity: str,
    title: str,
    details: dict[str, Any],
    at: datetime,
) -> int:
    return int(
        conn.execute(
            alerts.insert()
            .values(
                rule_id=rule_id,
                fingerprint=fingerprint,
                status="firing",
                severity=severity,
                title=title,
                details=details,
                occurrences=1,
                first_fired_at=at,
                last_fired_at=at,
            )
            .returning(AL.id)
        ).scalar_one()
    )


def update_alert(conn: Connection, alert_id: int, **values: Any) -> None:
    conn.execute(alerts.update().where(AL.id == alert_id).values(**values))


def bump_alert(conn: Connection, alert_id: int, *, title: str, details: dict[str, Any], at: datetime) -> None:
    """One more breach of an open alert: count it, keep the latest figures, notify nobody."""
    update_alert(conn, alert_id, occurrences=AL.occurrences + 1, last_fired_at=at, title=title, details=details)


# -- deliveries (the outbox) --------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A due delivery taken by one dispatcher until ``lease_until``; the lease also guards the write-back."""

    id: int
    alert_id: int
    channel: str
    event: str
    payload: dict[str, Any]
    attempts: int
    lease_until: datetime


def delivery_record(row: Row[Any]) -> Delivery:
    return Delivery(
        id=row.id,
        alert_id=row.alert_id,
        channel=row.channel,
        event=row.event,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=utc(row.created_at),
        sent_at=utc(row.sent_at) if row.sent_at is not None else None,
        next_attempt_at=utc(row.next_attempt_at) if row.next_attempt_at is not None else None,
    )


def insert_deliveries(
    conn: Connection, *, alert_id: int, channel_names: Iterable[str], event: str, payload: dict[str, Any], at: datetime
) -> list[int]:
    ids = []
    for name in channel_names:
        ids.append(
            conn.execute(
                deliveries.insert()
                .values(
                    alert_id=alert_id,
                    channel=name,
                    event=event,
                    payload=payload,
                    status="pending",
                    attempts=0,
                    next_attempt_at=at,
                    created_at=at,
                )
                .returning(DL.id)
            ).scalar_one()
        )
    return ids


def fired_channels(conn: Connection, alert_id: int) -> list[str]:
    """The channels an alert's fire notice went to (its resolve notice goes to the same places)."""
    query = sa.select(DL.channel).where(DL.alert_id == alert_id, DL.event == "fire").distinct().order_by(DL.channel)
    return list(conn.execute(query).scalars())


def get_delivery(conn: Connection, delivery_id: int, *, lock: bool = False) -> Delivery | None:
    query = sa.select(deliveries).where(DL.id == delivery_id)
    row = conn.execute(_locked(conn, query) if lock else query).first()
    return delivery_record(row) if row is not None else None


def list_deliveries(
    conn: Connection, *, alert_id: int | None = None, status: str | None = None, limit: int = 100
) -> list[Delivery]:
    query = sa.select(deliveries).order_by(DL.id.desc()).limit(limit)
    if alert_id is not None:
        query = query.where(DL.alert_id == alert_id)
    if status is not None:
        query = query.where(DL.status == status)
    return [delivery_record(r) for r in conn.execute(query)]


def count_deliveries(conn: Connection) -> dict[str, int]:
    rows = conn.execute(sa.select(DL.status, sa.func.count()).group_by(DL.status))
    counts = {"pending": 0, "sent": 0, "failed": 0}
    counts.update({status: int(n) for status, n in rows})
    return counts


def count_pending(conn: Connection, *, channel: str | None = None, rule_id: int | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(deliveries).where(DL.status == "pending")
    if channel is not None:
        query = query.where(DL.channel == channel)
    if rule_id is not None:
        query = query.where(DL.alert_id.in_(sa.select(AL.id).where(AL.rule_id == rule_id)))
    return int(conn.execute(query).scalar_one())


def any_due(conn: Connection, *, now: datetime) -> bool:
    """Whether a pending delivery is due: a cheap read that spares an idle dispatcher the write lock."""
    query = sa.select(DL.id).where(DL.status == "pending", DL.next_attempt_at <= now).limit(1)
    return conn.execute(query).first() is not None


def claim_due(conn: Connection, *, now: datetime, lease_until: datetime, limit: int) -> list[Claim]:
    """Take up to ``limit`` due pending deliveries by moving their next attempt to ``lease_until``.

    On PostgreSQL the rows are selected ``FOR UPDATE SKIP LOCKED``: concurrent dispatchers each take
    different rows and never wait for one another. Once this transaction commits, the rows are no
    longer due, so nobody else takes them until the lease runs out (a dispatcher killed mid-send).
    """
    query = (
        sa.select(DL.id, DL.alert_id, DL.channel, DL.event, DL.payload, DL.attempts)
        .where(DL.status == "pending", DL.next_attempt_at <= now)
        .order_by(DL.next_attempt_at, DL.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(conn.execute(query))
    if not rows:
        return []
    conn.execute(deliveries.update().where(DL.id.in_([r.id for r in rows])).values(next_attempt_at=lease_until))
    return [Claim(r.id, r.alert_id, r.channel, r.event, r.payload, r.attempts, lease_until) for r in rows]


def _still_ours(claim: Claim) -> Any:
    return sa.and_(
        DL.id == claim.id,
        DL.status == "pending",
        DL.attempts == claim.attempts,
        DL.next_attempt_at == claim.lease_until,
    )


def record_sent(conn: Connection, claim: Claim, *, at: datetime) -> bool:
    """Mark a claimed delivery sent; ``False`` when the claim was lost meanwhile (nothing changes)."""
    result = conn.execute(
        deliveries.update()
        .where(_still_ours(claim))
        .values(status="sent", sent_at=at, attempts=claim.attempts + 1, last_error=None, next_attempt_at=None)
    )
    return result.rowcount == 1


def record_failure(conn: Connection, claim: Claim, *, error: str, next_attempt_at: datetime | None) -> bool:
    """Count a failed attempt: retry at ``next_attempt_at``, or give up (``failed``) when it is ``None``."""
    values: dict[str, Any] = {"attempts": claim.attempts + 1, "last_error": error, "next_attempt_at": next_attempt_at}
    if next_attempt_at is None:
        values["status"] = "failed"
    result = conn.execute(deliveries.update().where(_still_ours(claim)).values(**values))
    return result.rowcount == 1


def requeue(conn: Connection, delivery_id: int, *, at: datetime) -> None:
    conn.execute(deliveries.update().where(DL.id == delivery_id).values(status="pending", next_attempt_at=at))
