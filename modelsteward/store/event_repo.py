"""The audit trail: hash-chained events appended in the transaction of the change they record."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from modelsteward.domain.records import Event
from modelsteward.store.catalog_repo import now, utc
from modelsteward.store.tables import GENESIS_HASH, catalog_state, events

_GENERATION = sa.select(catalog_state.c.generation).where(catalog_state.c.id == 1)


def _event_hash(prev_hash: str, body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


_BUMP_GENERATION = (
    catalog_state.update()
    .where(catalog_state.c.id == 1)
    .values(generation=catalog_state.c.generation + 1)
    .returning(catalog_state.c.generation, catalog_state.c.head_hash)
)
_INSERT_EVENT = events.insert()
_SET_HEAD = catalog_state.update().where(catalog_state.c.id == 1).values(head_hash=sa.bindparam("head"))


def append_event(
    conn: Connection,
    *,
    actor: str,
    action: str,
    model: str | None = None,
    version: int | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Append one audit event and bump the catalog generation, in the caller's transaction.

    Updating the single state row first takes its lock, so concurrent writers chain their
    events one after the other. Returns the new generation.
    """
    state = conn.execute(_BUMP_GENERATION).one()
    at = now()
    body = {
        "seq": state.generation,
        "at": at.isoformat(),
        "actor": actor,
        "action": action,
        "model": model,
        "version": version,
        "details": details or {},
    }
    digest = _event_hash(state.head_hash, body)
    conn.execute(
        _INSERT_EVENT,
        {
            "seq": state.generation,
            "at": at,
            "actor": actor,
            "action": action,
            "model": model,
            "version": version,
            "details": details or {},
            "prev_hash": state.head_hash,
            "hash": digest,
        },
    )
    conn.execute(_SET_HEAD, {"head": digest})
    return int(state.generation)


_BUMP_BY = (
    catalog_state.update()
    .where(catalog_state.c.id == 1)
    .values(generation=catalog_state.c.generation + sa.bindparam("n"))
    .returning(catalog_state.c.generation, catalog_state.c.head_hash)
)


def append_events(conn: Connection, *, actor: str, items: list[dict[str, Any]]) -> int:
    """Append several events of one change at once (``action``, ``model``, ``version``, ``details``
    each), chained in order exactly as one by one would, in three statements. Returns the last sequence."""
    if not items:
        return generation(conn)
    state = conn.execute(_BUMP_BY, {"n": len(items)}).one()
    first = int(state.generation) - len(items) + 1
    at = now()
    head = state.head_hash
    rows = []
    for offset, item in enumerate(items):
        body = {
            "seq": first + offset,
            "at": at.isoformat(),
            "actor": actor,
            "action": item["action"],
            "model": item.get("model"),
            "version": item.get("version"),
            "details": item.get("details") or {},
        }
        digest = _event_hash(head, body)
        rows.append({**body, "at": at, "prev_hash": head, "hash": digest})
        head = digest
    conn.execute(_INSERT_EVENT, rows)
    conn.execute(_SET_HEAD, {"head": head})
    return int(state.generation)


def list_events(
    conn: Connection,
    *,
    model: str | None = None,
    action: str | None = None,
    actor: str | None = None,
    limit: int = 100,
) -> list[Event]:
    """The newest events first; ``action`` is one action or a family (``lifecycle.*``)."""
    query = sa.select(events).order_by(events.c.seq.desc()).limit(limit)
    if model is not None:
        query = query.where(events.c.model == model)
    if action is not None:
        if action.endswith("*"):
            query = query.where(events.c.action.startswith(action.rstrip("*"), autoescape=True))
        else:
            query = query.where(events.c.action == action)
    if actor is not None:
        query = query.where(events.c.actor == actor)
    return [
        Event(
            seq=r.seq,
            at=utc(r.at),
            actor=r.actor,
            action=r.action,
            model=r.model,
            version=r.version,
            details=r.details,
        )
        for r in conn.execute(query)
    ]


def events_after(conn: Connection, seq: int, *, actions: tuple[str, ...], limit: int = 1000) -> list[Event]:
    """Events with a sequence number above ``seq`` and one of ``actions``, oldest first."""
    query = (
        sa.select(events).where(events.c.seq > seq, events.c.action.in_(actions)).order_by(events.c.seq).limit(limit)
    )
    return [
        Event(seq=r.seq, at=utc(r.at), actor=r.actor, action=r.action, model=r.model, version=r.version,
              details=r.details)
        for r in conn.execute(query)
    ]  # fmt: skip


def _body(r: Row[Any]) -> dict[str, Any]:
    return {"seq": r.seq, "at": utc(r.at).isoformat(), "actor": r.actor, "action": r.action, "model": r.model,
            "version": r.version, "details": r.details or {}}  # fmt: skip


def verify_chain(conn: Connection, *, batch: int = 5000) -> tuple[int, int | None, str]:
    """Walk the trail from the first event: returns (events checked, the sequence number of the first
    broken event or None, why). An edited event no longer hashes to its stored hash; a deleted one
    leaves a gap; a reordering breaks the link to the event before; deleting the newest ones leaves
    the recorded head behind."""
    expected_prev, expected_seq, checked = GENESIS_HASH, 1, 0
    while True:
        rows = conn.execute(
            sa.select(events).where(events.c.seq >= expected_seq).order_by(events.c.seq).limit(batch)
        ).all()
        for r in rows:
            if r.seq != expected_seq:
                return checked, expected_seq, f"event {expected_seq} is missing (the next one is {r.seq})"
            if r.prev_hash != expected_prev:
                return checked, int(r.seq), f"event {r.seq} does not follow the event before it"
            if _event_hash(r.prev_hash, _body(r)) != r.hash:
                return checked, int(r.seq), f"event {r.seq} was changed after it was written"
            expected_prev, expected_seq, checked = r.hash, expected_seq + 1, checked + 1
        if len(rows) < batch:
            break
    state = conn.execute(sa.select(catalog_state.c.generation, catalog_state.c.head_hash)).one()
    if int(state.generation) >= expected_seq or state.head_hash != expected_prev:
        return checked, expected_seq, f"the trail ends at event {expected_seq - 1}, but {state.generation} were written"
    return checked, None, f"{checked} events, each following from the one before"


def iter_events(conn: Connection, *, after: int = 0, batch: int = 5000) -> Iterator[dict[str, Any]]:
    """Every event after sequence ``after`` with its chain hashes, oldest first (for a SIEM)."""
    while True:
        rows = conn.execute(sa.select(events).where(events.c.seq > after).order_by(events.c.seq).limit(batch)).all()
        for r in rows:
            yield {**_body(r), "prev_hash": r.prev_hash, "hash": r.hash}
            after = int(r.seq)
        if len(rows) < batch:
            return


def generation(conn: Connection) -> int:
    return int(conn.execute(_GENERATION).scalar_one())
