"""The tamper-evident audit trail for auditors: verify the hash chain, export it as JSON Lines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO

from modelsteward.domain.records import AuditCheck
from modelsteward.store import event_repo
from modelsteward.store.database import Database


class AuditService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def verify(self) -> AuditCheck:
        """Walk the whole chain; the first broken event is named with the reason."""
        with self.db.read() as conn:
            checked, broken, why = event_repo.verify_chain(conn)
            head = event_repo.generation(conn)
        return AuditCheck(ok=broken is None, events=checked, written=head, first_broken=broken, message=why,
                          checked_at=datetime.now(UTC))  # fmt: skip

    def lines(self, *, after: int = 0) -> Iterator[str]:
        """The trail as JSON Lines, oldest first, each event with ``prev_hash`` and ``hash`` so that a SIEM
        can check the chain itself."""
        with self.db.read() as conn:
            for event in event_repo.iter_events(conn, after=after):
                yield json.dumps(event, separators=(",", ":"), default=str) + "\n"

    def export(self, out: IO[str], *, after: int = 0) -> int:
        count = 0
        for line in self.lines(after=after):
            out.write(line)
            count += 1
        return count
