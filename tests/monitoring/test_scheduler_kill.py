"""A scheduler killed in the middle of a round: the next process takes the lease over once it expires
and every due monitor fire has exactly one result, including the one that was running."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from modelsteward import LocalSteward
from modelsteward.monitoring.scheduler import Scheduler
from modelsteward.settings import Settings

MONITORS = ("a-first", "b-second")

# The child sets up a model, a deployment and two hourly monitors, then runs one scheduler round at
# created + 61 min as holder "dead", and dies (os._exit, as kill -9 would) at the named moment:
#   evaluating-first: while the first monitor computes its figures (nothing stored yet)
#   after-first:      right after the first monitor's result is committed
#   committing-second: inside the second monitor's transaction, its run row inserted but not committed
CHILD = """
import os, sys
from datetime import datetime, timedelta
import numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression
from modelsteward import LocalSteward
from modelsteward.monitoring.scheduler import Scheduler
from modelsteward.settings import Settings
from modelsteward.store import event_repo

moment = sys.argv[2]
st = LocalSteward(settings=Settings(data_dir=sys.argv[1], user="tester"))
X = pd.DataFrame({"a": np.arange(50.0), "b": np.arange(50.0) % 7})
st.register_model("risk", LogisticRegression().fit(X, X["b"] > 3), input_example=X.head(), training_data=X)
st.deploy("risk", "risk/1")
for name in ("a-first", "b-second"):
    st.put_monitor(name, {"target": {"deployment": "risk"}, "window": "1h", "schedule": "1h",
                          "checks": [{"drift": {}}]})
created = max(st.get_monitor(n).created_at for n in ("a-first", "b-second"))
print(created.isoformat(), flush=True)

real_evaluate, real_record, real_append = st.monitors._evaluate, st.monitors.record_result, event_repo.append_event

def evaluate(spec, *args):
    if moment == "evaluating-first":
        os._exit(137)
    return real_evaluate(spec, *args)

def record(result, **kw):
    out = real_record(result, **kw)
    if moment == "after-first":
        os._exit(137)
    return out

def append(conn, **kw):
    out = real_append(conn, **kw)
    if moment == "committing-second" and kw["action"] == "monitor.run" and kw["details"]["monitor"] == "b-second":
        os._exit(137)  # the run row and its event are inserted; the transaction never commits
    return out

st.monitors._evaluate, st.monitors.record_result, event_repo.append_event = evaluate, record, append
Scheduler(st.db, st.monitors, holder="dead", lease=30).tick(created + timedelta(minutes=61))
print("not reached", flush=True)
"""


@pytest.mark.parametrize("moment", ["evaluating-first", "after-first", "committing-second"])
def test_a_round_killed_mid_run_resumes_with_exactly_one_result_per_fire(tmp_path: Path, moment: str) -> None:
    data = tmp_path / "data"
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHILD), str(data), moment],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert child.returncode == 137, child.stdout + child.stderr
    created = datetime.fromisoformat(child.stdout.split()[0])
    killed_at = created + timedelta(minutes=61)  # the dead round's "now": its lease runs to +30 s
    with LocalSteward(settings=Settings(data_dir=data, user="ops")) as st:
        before = {name: len(st.monitor_results(name)) for name in MONITORS}
        expected_before = {"evaluating-first": 0, "after-first": 1, "committing-second": 1}[moment]
        assert before == {"a-first": expected_before, "b-second": 0}  # the torn transaction left nothing

        fresh = Scheduler(st.db, st.monitors, holder="fresh", lease=30)
        assert fresh.tick(killed_at + timedelta(seconds=10)) == []  # the dead process's lease still holds
        assert {name: len(st.monitor_results(name)) for name in MONITORS} == before
        # expired (the dead round renewed it as it went, at most a few seconds on): taken over, the round resumes
        ran = fresh.tick(killed_at + timedelta(seconds=60))
        assert sorted(ran) == [n for n in MONITORS if before[n] == 0]
        assert {name: len(st.monitor_results(name)) for name in MONITORS} == {"a-first": 1, "b-second": 1}
        assert fresh.tick(killed_at + timedelta(seconds=70)) == []  # nothing run twice for this fire
        assert fresh.last_error is None

        # the next fire, an hour on: each monitor once more, no more
        assert sorted(fresh.tick(killed_at + timedelta(minutes=62))) == list(MONITORS)
        assert fresh.tick(killed_at + timedelta(minutes=63)) == []
        for name in MONITORS:
            results = st.monitor_results(name)
            assert len(results) == 2
            assert all(r.status == "not_enough_data" for r in results)  # no traffic: no false alarm
        runs = [e for e in st.list_events(limit=500) if e.action == "monitor.run"]
        assert sorted(e.details["monitor"] for e in runs) == sorted(MONITORS * 2)  # one event per stored result
        assert st.verify_audit().ok


def test_a_round_longer_than_the_lease_keeps_it_and_no_fire_runs_twice(tmp_path: Path, numeric_model) -> None:
    """Many or slow monitors can make one round outlast the lease: the holder renews it as the round goes,
    so another worker ticking meanwhile finds it held and does not run the same fires a second time."""
    model, X = numeric_model
    with LocalSteward(settings=Settings(data_dir=tmp_path / "data", user="tester")) as st:
        st.register_model("risk", model, input_example=X.head(), training_data=X)
        st.deploy("risk", "risk/1")
        for name in MONITORS:
            st.put_monitor(
                name, {"target": {"deployment": "risk"}, "window": "1h", "schedule": "1h", "checks": [{"drift": {}}]}
            )
        start = max(st.get_monitor(n).created_at for n in MONITORS) + timedelta(minutes=61)
        base, elapsed = [start], [timedelta(0)]
        slow = Scheduler(st.db, st.monitors, holder="slow", lease=30, clock=lambda: base[0] + elapsed[0])
        other = Scheduler(st.db, st.monitors, holder="other", lease=30)
        seen_by_other: list[list[str]] = []
        real_evaluate = st.monitors._evaluate

        def evaluate(spec, *args):  # type: ignore[no-untyped-def]
            elapsed[0] += timedelta(seconds=20)  # each monitor takes 20 s of the round
            if elapsed[0] >= timedelta(seconds=40) and not seen_by_other:  # past the round's first lease
                seen_by_other.append([])  # (once: the other's own runs come through here too)
                seen_by_other[0] = other.tick(start + elapsed[0] - timedelta(seconds=5))
            return real_evaluate(spec, *args)

        st.monitors._evaluate = evaluate  # type: ignore[method-assign]
        assert sorted(slow.tick(start)) == list(MONITORS)
        assert seen_by_other == [[]]  # the lease was renewed during the round: the other worker waited
        assert {name: len(st.monitor_results(name)) for name in MONITORS} == {"a-first": 1, "b-second": 1}

        # a holder that stalls past its lease and loses it mid-round stops there; the new holder runs the rest
        base[0], elapsed[0] = start + timedelta(hours=1), timedelta(0)
        taken: list[bool] = []

        def stalling(spec, *args):  # type: ignore[no-untyped-def]
            if not taken:
                elapsed[0] += timedelta(seconds=40)
                taken.append(other.hold_lease(base[0] + timedelta(seconds=35)))
            return real_evaluate(spec, *args)

        st.monitors._evaluate = stalling  # type: ignore[method-assign]
        assert slow.tick(base[0]) == ["a-first"] and taken == [True]
        assert other.tick(base[0] + timedelta(seconds=36)) == ["b-second"]
        assert {name: len(st.monitor_results(name)) for name in MONITORS} == {"a-first": 2, "b-second": 2}


def test_one_monitor_longer_than_the_lease_keeps_it_while_it_runs(tmp_path: Path, numeric_model) -> None:
    """A single slow monitor (a large window on Dask) outlasts the lease: a side thread renews it while the
    monitor runs, so another worker never takes it over and runs the same fire again."""
    import threading
    import time

    model, X = numeric_model
    with LocalSteward(settings=Settings(data_dir=tmp_path / "data", user="tester")) as st:
        st.register_model("risk", model, input_example=X.head(), training_data=X)
        st.deploy("risk", "risk/1")
        st.put_monitor(
            "slow", {"target": {"deployment": "risk"}, "window": "1h", "schedule": "1h", "checks": [{"drift": {}}]}
        )
        start = st.get_monitor("slow").created_at + timedelta(minutes=61)
        t0 = time.monotonic()

        def clock() -> datetime:  # both schedulers on one timeline, in real seconds from the due time
            return start + timedelta(seconds=time.monotonic() - t0)

        slow = Scheduler(st.db, st.monitors, holder="slow", lease=0.6, clock=clock)
        other = Scheduler(st.db, st.monitors, holder="other", lease=0.6, clock=clock)
        tries: list[bool] = []
        real_evaluate = st.monitors._evaluate

        def evaluate(spec, *args):  # type: ignore[no-untyped-def]
            for _ in range(8):  # 2 s of work, over three leases; the other worker tries all along
                time.sleep(0.25)
                tries.append(other.hold_lease())
            return real_evaluate(spec, *args)

        st.monitors._evaluate = evaluate  # type: ignore[method-assign]
        worker = threading.Thread(target=lambda: tries.append(bool(slow.tick())))
        worker.start()
        worker.join(timeout=60)
        st.monitors._evaluate = real_evaluate  # type: ignore[method-assign]
        assert tries[:-1] == [False] * 8  # held throughout the run
        assert tries[-1] is True  # the slow round ran the monitor
        assert len(st.monitor_results("slow")) == 1
        time.sleep(0.7)  # the slow worker's lease runs out: the other takes it over and finds the fire stored
        assert other.hold_lease() and other.tick() == []
        assert len(st.monitor_results("slow")) == 1
