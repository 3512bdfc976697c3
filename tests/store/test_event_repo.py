"""The audit trail's chain: events appended one by one or several at once verify, and edits do not."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from modelsteward.store import event_repo
from modelsteward.store.database import Database


def test_single_and_batched_appends_form_one_chain_that_detects_edits(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'steward.db'}")
    db.migrate()
    try:
        with db.write() as conn:
            event_repo.append_event(conn, actor="ann", action="model.created", model="m", details={"n": 1})
            last = event_repo.append_events(conn, actor="eve", items=[
                {"action": "lifecycle.requested", "model": "m", "version": 1, "details": {"run": 1}},
                {"action": "lifecycle.gates_passed", "model": "m", "version": 1, "details": {"gates": [0.5, "x"]}},
            ])  # fmt: skip
            event_repo.append_event(conn, actor="ann", action="alias.set", model="m", version=1)
        assert last == 3
        with db.read() as conn:
            assert event_repo.verify_chain(conn)[:2] == (4, None)
            seqs = [e.seq for e in event_repo.list_events(conn)]
        assert sorted(seqs) == [1, 2, 3, 4]
        with db.write() as conn:
            conn.execute(sa.text("UPDATE events SET actor = 'mallory' WHERE seq = 3"))
        with db.read() as conn:
            assert event_repo.verify_chain(conn)[1:] == (3, "event 3 was changed after it was written")
        with db.write() as conn:
            conn.execute(sa.text("UPDATE events SET actor = 'eve' WHERE seq = 3"))
            conn.execute(sa.text("DELETE FROM events WHERE seq = 2"))
        with db.read() as conn:
            assert event_repo.verify_chain(conn)[1:] == (2, "event 2 is missing (the next one is 3)")
    finally:
        db.dispose()


def test_events_filter_by_model_action_family_and_actor_newest_first(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'steward.db'}")
    db.migrate()
    try:
        with db.write() as conn:
            event_repo.append_events(conn, actor="dana", items=[
                {"action": "lifecycle.requested", "model": "m", "version": 1},
                {"action": "alias.set", "model": "m", "version": 1},
                {"action": "lifecycle.requested", "model": "other", "version": 1},
            ])  # fmt: skip
            event_repo.append_event(conn, actor="vera", action="lifecycle.approved", model="m", version=1)
            event_repo.append_event(conn, actor="vera", action="lifecycle_x", model="m")  # no dot: not the family
        with db.read() as conn:

            def seqs(**filters: str) -> list[int]:
                return [e.seq for e in event_repo.list_events(conn, **filters)]  # type: ignore[arg-type]

            assert seqs(action="lifecycle.*") == [4, 3, 1]
            assert seqs(action="lifecycle.requested", model="m") == [1]
            assert seqs(actor="vera") == [5, 4]
            assert seqs(action="lifecycle.*", actor="vera", model="m") == [4]
            assert seqs(action="alias.set", actor="vera") == []
    finally:
        db.dispose()
