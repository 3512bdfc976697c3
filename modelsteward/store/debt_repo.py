"""Daily snapshots of model debt (one row a day per model), on an open transaction."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelsteward.domain.records import DebtPoint, ModelDebt
from modelsteward.store.catalog_repo import now
from modelsteward.store.tables import debt_snapshots

D = debt_snapshots.c


def upsert(conn: Connection, day: date, debts: list[ModelDebt]) -> int:
    """Replace ``day``'s snapshot with ``debts`` (the whole catalog): taking it again the same day is harmless,
    and a model gone from the catalog leaves that day's snapshot. Returns the number of models."""
    conn.execute(debt_snapshots.delete().where(D.day == day))
    if debts:
        taken = now()
        conn.execute(
            debt_snapshots.insert(),
            [{"day": day, "model": d.model, "score": d.score, "flags": [f.code for f in d.flags], "taken_at": taken}
             for d in debts],
        )  # fmt: skip
    return len(debts)


def history(conn: Connection, since: date) -> list[DebtPoint]:
    """Each snapshot day from ``since`` on, oldest first: the total, the models with debt, each model's score."""
    rows = conn.execute(
        sa.select(D.day, D.model, D.score).where(D.day >= since).order_by(D.day, D.model)
    ).all()  # fmt: skip
    days: dict[date, dict[str, int]] = {}
    for row in rows:
        day = row.day if isinstance(row.day, date) else date.fromisoformat(str(row.day))
        days.setdefault(day, {})[row.model] = int(row.score)
    return [DebtPoint(day=day, total=sum(scores.values()), with_debt=sum(1 for s in scores.values() if s),
                      models=scores) for day, scores in days.items()]  # fmt: skip
