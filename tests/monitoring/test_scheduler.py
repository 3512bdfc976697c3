"""The scheduler: cron and interval schedules, one lease holder, exactly one run per fire, restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelsteward import InvalidArgument, LocalSteward
from modelsteward.monitoring.scheduler import Scheduler, next_fire
from modelsteward.settings import Settings


def test_next_fire_for_cron_and_intervals() -> None:
    at = datetime(2026, 11, 27, 10, 7, tzinfo=UTC)
    assert next_fire("15m", at) == at + timedelta(minutes=15)
    assert next_fire("*/15 * * * *", at) == datetime(2026, 11, 27, 10, 15, tzinfo=UTC)
    assert next_fire("0 6 * * *", at) == datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
    with pytest.raises(InvalidArgument, match="invalid schedule"):
        next_fire("every tuesday", at)


@pytest.fixture
def st(tmp_path: Path, numeric_model):
    steward = LocalSteward(settings=Settings(data_dir=tmp_path, user="tester"))
    model, X = numeric_model
    steward.register_model("risk", model, input_example=X.head(), training_data=X)
    steward.deploy("risk", "risk/1")
    steward.put_monitor(
        "hourly", {"target": {"deployment": "risk"}, "window": "1h", "schedule": "1h", "checks": [{"drift": {}}]}
    )
    yield steward
    steward.close()


def test_a_due_monitor_runs_once_per_fire_and_resumes_after_a_restart(st: LocalSteward) -> None:
    created = st.get_monitor("hourly").created_at
    first = Scheduler(st.db, st.monitors, holder="worker-a")
    assert first.tick(created + timedelta(minutes=30)) == []  # not due yet
    assert first.tick(created + timedelta(minutes=61)) == ["hourly"]
    assert first.tick(created + timedelta(minutes=62)) == []  # ran already for this fire
    result = st.monitor_results("hourly")[0]
    assert result.status == "not_enough_data"  # no traffic: no false alarm
    restarted = Scheduler(st.db, st.monitors, holder="worker-a")  # same holder after a restart
    assert restarted.tick(created + timedelta(minutes=63)) == []
    assert len(st.monitor_results("hourly")) == 1


def test_only_the_lease_holder_runs_scheduled_work(st: LocalSteward) -> None:
    created = st.get_monitor("hourly").created_at
    a = Scheduler(st.db, st.monitors, holder="worker-a", lease=30)
    b = Scheduler(st.db, st.monitors, holder="worker-b", lease=30)
    now = created + timedelta(minutes=61)
    assert a.hold_lease(now) is True
    assert b.tick(now) == []  # a holds the lease
    assert a.tick(now) == ["hourly"]
    later = now + timedelta(seconds=31)  # a stopped renewing (killed): b takes over
    assert b.hold_lease(later) is True
    assert a.hold_lease(later) is False
    assert len(st.monitor_results("hourly")) == 1


def test_the_lease_holder_runs_the_extra_rounds_and_a_failing_one_does_not_stop_it(st: LocalSteward) -> None:
    from modelsteward.errors import InvalidArgument

    seen: list[datetime] = []

    def failing(now: datetime) -> None:
        raise InvalidArgument("the engine could not run")

    a = Scheduler(st.db, st.monitors, holder="worker-a", lease=30, rounds=[failing, seen.append])
    b = Scheduler(st.db, st.monitors, holder="worker-b", lease=30, rounds=[seen.append])
    now = st.get_monitor("hourly").created_at + timedelta(minutes=61)
    assert a.tick(now) == ["hourly"] and seen == [now]  # after the failing round, the next still ran
    assert a.last_error == "the engine could not run"
    b.tick(now + timedelta(seconds=1))  # not the lease holder: no rounds
    assert seen == [now]
