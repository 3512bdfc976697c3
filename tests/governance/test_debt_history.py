"""Model debt over time: daily snapshots taken by ``record_debt`` (again the same day: replaced, not doubled),
read back by ``debt_history``, the same embedded and remote; the scheduler's daily round; ``steward debt --history``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from typer.testing import CliRunner

from modelsteward import LocalSteward
from modelsteward.cli.main import app
from modelsteward.settings import Settings
from modelsteward.store.tables import debt_snapshots


def _catalog(st: Any, numeric_model: Any) -> None:
    """Three models: one in production unwatched and without owner (debt 4), one in production with an owner
    (debt 3), one draft (debt 0)."""
    model, X = numeric_model
    st.register_model("unwatched", model, input_example=X.head(), capture_git=False)
    st.register_model("owned", model, input_example=X.head(), owner="ann", capture_git=False)
    st.register_model("draft", model, input_example=X.head(), owner="ann", capture_git=False)
    st.set_alias("unwatched", "production", 1)
    st.set_alias("owned", "production", 1)


def test_snapshots_replace_the_day_and_sum_to_model_debt(steward: Any, numeric_model: Any) -> None:
    _catalog(steward, numeric_model)
    today = datetime.now(UTC).date()
    assert steward.debt_history() == []
    assert steward.record_debt() == 3
    assert steward.record_debt() == 3  # again the same day: one row per model, not two
    assert steward.record_debt(day=today - timedelta(days=3)) == 3
    history = steward.debt_history(days=30)
    assert [p.day for p in history] == [today - timedelta(days=3), today]
    report = steward.model_debt()
    for point in history:
        assert point.total == report.total == 7
        assert point.with_debt == report.with_debt == 2
        assert point.models == {d.model: d.score for d in report.models} == {"unwatched": 4, "owned": 3, "draft": 0}
    assert [p.day for p in steward.debt_history(days=1)] == [today]  # only the days asked for

    steward.set_alias("unwatched", "production", 1)  # unchanged facts...
    steward.update_model("unwatched", owner="bo")  # ...but now it has an owner: retaken today, 3 instead of 4
    steward.record_debt()
    latest = steward.debt_history()[-1]
    assert latest.day == today and latest.models["unwatched"] == 3 and latest.total == 6
    assert steward.debt_history()[0].models["unwatched"] == 4  # an earlier day keeps its snapshot


def test_one_row_per_model_and_day_in_the_store(tmp_path: Path, numeric_model: Any) -> None:
    with LocalSteward(settings=Settings(data_dir=tmp_path), actor="ann") as st:
        _catalog(st, numeric_model)
        day = date(2026, 10, 1)
        for _ in range(3):
            st.record_debt(day=day)
        with st.db.read() as conn:
            rows = conn.execute(sa.select(debt_snapshots.c.model, debt_snapshots.c.flags)
                                .where(debt_snapshots.c.day == day).order_by(debt_snapshots.c.model)).all()  # fmt: skip
        assert [r.model for r in rows] == ["draft", "owned", "unwatched"]
        assert sorted(rows[2].flags) == ["no_owner", "unmonitored"]


def test_the_scheduler_takes_one_snapshot_a_day(tmp_path: Path, numeric_model: Any) -> None:
    with LocalSteward(settings=Settings(data_dir=tmp_path), actor="ann") as st:
        _catalog(st, numeric_model)
        daily = st._daily_debt_round()
        now = datetime.now(UTC)
        calls: list[date | None] = []
        record = st.record_debt
        st.record_debt = lambda day=None: calls.append(day) or record(day)  # type: ignore[method-assign]
        daily(now)
        daily(now + timedelta(seconds=1))  # the same day: nothing more
        assert calls == [now.date()]
        assert [p.day for p in st.debt_history()] == [now.date()]
        restarted = st._daily_debt_round()  # a restart takes the day's again: harmless, still one point
        restarted(now + timedelta(seconds=2))
        assert len(calls) == 2 and len(st.debt_history()) == 1


def test_an_unreasonable_number_of_days_is_refused(tmp_path: Path) -> None:
    import pytest

    from modelsteward.errors import InvalidArgument

    with LocalSteward(settings=Settings(data_dir=tmp_path)) as st, pytest.raises(InvalidArgument):
        st.debt_history(days=0)


def test_the_cli_prints_the_series(tmp_path: Path, numeric_model: Any) -> None:
    with LocalSteward(settings=Settings(data_dir=tmp_path), actor="ann") as st:
        _catalog(st, numeric_model)
        st.record_debt(day=datetime.now(UTC).date() - timedelta(days=1))
        st.record_debt()
    runner = CliRunner()
    out = runner.invoke(app, ["debt", "--history", "--data-dir", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "2 daily snapshot(s)" in " ".join(out.output.split()) and "unwatched 4" in out.output
    one = runner.invoke(app, ["debt", "owned", "--history", "--days", "1", "--data-dir", str(tmp_path)])
    assert one.exit_code == 0 and "model debt of owned: 1 daily snapshot(s)" in " ".join(one.output.split())
    as_json = runner.invoke(app, ["debt", "--history", "--json", "--data-dir", str(tmp_path)])
    import json

    points = json.loads(as_json.output)
    assert [p["total"] for p in points] == [7, 7] and points[-1]["models"]["owned"] == 3
