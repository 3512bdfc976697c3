"""Retraining jobs, event and schedule triggers, SLA alerts and notices, on an embedded steward driven
by the scheduler's round (``lifecycle_tick``) with explicit times."""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelsteward import InvalidDefinition, LocalSteward
from modelsteward.alerts import Dispatcher
from modelsteward.settings import Settings

HERE = Path(__file__).parent


def applicants(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"income": rng.normal(50_000 * (1 + shift), 10_000, n), "debt_to_income": rng.uniform(0, 0.8, n)}
    )


class Inbox:
    """A local webhook receiver: what arrived, in order."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["content-length"]))
                inbox.received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def inbox() -> Any:
    box = Inbox()
    yield box
    box.close()


@pytest.fixture
def st(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)
    steward = LocalSteward(settings=Settings(data_dir=tmp_path / "data", log_flush_interval=0.05), actor="dana")
    train = applicants(2000, 0)
    model = LogisticRegression().fit(train, train["debt_to_income"] > 0.4)
    v = steward.register_model("risk", model, input_example=train.head(), training_data=train, metrics={"auc": 0.8})
    steward.set_alias("risk", "production", v.version)
    steward.deploy("risk", "risk@production")
    yield steward
    steward.close()


def definition(*, retrain: dict[str, Any], extra: str = "") -> str:
    return f"""\
name: retrained
stages:
  - name: candidate
  - name: shadow
  - name: production
    single: true
    replaced_to: retired
  - name: retired
transitions:
  - name: retrain
    from: production
    to: production
    trigger: {{event: monitor_breach, monitor: risk-drift}}
    actions:
      - notify: {{channel: ops, message: "drift on risk: retraining"}}
      - retrain
  - name: try
    from: candidate
    to: shadow
    trigger: {{event: version_registered}}
    gates:
      - metric: {{metric: auc, min: 0.85}}
    actions:
      - deploy: {{deployment: risk, role: shadow}}
  - name: promote
    from: shadow
    to: production
    sla: 1h
    approvals:
      - {{role: validator}}
    actions:
      - promote: {{deployment: risk}}
{extra}models:
  risk:
    retrain: {json.dumps(retrain)}
"""


ROOT = str(HERE.parent.parent.resolve())  # where `tests.lifecycle.retrain_fixture` imports from
ENTRY = {
    "entry_point": "tests.lifecycle.retrain_fixture:retrain",
    "data": "select in_income as income, in_debt_to_income as debt_to_income from predictions",
    "timeout": "2m",
    "cwd": ROOT,
}


def serve_drifted(st: Any) -> None:
    frame = applicants(600, 7, shift=0.5)
    for start in range(0, len(frame), 100):
        st.serve("risk", frame.iloc[start : start + 100])
    st.flush_logs()


def drift_monitor(st: Any) -> None:
    st.put_monitor("risk-drift", {"target": {"deployment": "risk"}, "window": "1h", "min_rows": 100,
                                  "checks": [{"drift": {"columns": ["income"]}}]})  # fmt: skip


def wait_for_job(st: Any, timeout: float = 60.0) -> Any:
    """The job once it has ended and the engine has taken its run further (the job's thread does both)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = st.list_jobs()
        if jobs and jobs[0].status != "running":
            run = st.get_lifecycle_run(jobs[0].run_id) if jobs[0].run_id else None
            if run is None or run.status != "acting":
                return jobs[0]
        time.sleep(0.2)
    raise AssertionError("the job or its run did not end")


def test_a_drift_breach_retrains_and_the_new_version_goes_to_shadow(st: Any, inbox: Inbox) -> None:
    st.put_channel({"name": "ops", "type": "webhook", "url": inbox.url})
    drift_monitor(st)
    st.apply_lifecycle(definition(retrain=ENTRY))
    st.lifecycle_tick()  # the first round sets the engine's bookmark: history does not replay
    serve_drifted(st)
    breach = st.run_monitor("risk-drift")
    assert breach.status == "breach"
    assert st.lifecycle_tick()["started"] == 1  # the breach started `retrain` for the production version
    job = wait_for_job(st)
    assert job.status == "succeeded", job.log
    assert job.version == 2 and "fitted on 600 rows" in job.log and job.duration_s and job.duration_s > 0
    new = st.get_version("risk/2")
    assert new.tags["steward.job"] == str(job.id) and new.created_by == f"job-{job.id}"
    assert new.datasets[0].role == "training" and new.datasets[0].row_count == 600  # lineage to the data it used
    status = st.lifecycle_status("risk")
    assert {p.version: p.stage for p in status.positions} == {1: "production", 2: "shadow"}
    retrain_run = next(r for r in status.runs if r.transition == "retrain")
    assert retrain_run.status == "done" and retrain_run.trigger.startswith("event:monitor_breach:risk-drift#")
    assert [s.status for s in retrain_run.steps] == ["done", "done"]
    assert st.get_deployment("risk").spec.shadows == ["risk/2"]
    assert st.lifecycle_tick()["started"] == 0  # the same breach never starts it twice
    assert st.run_monitor("risk-drift").status == "breach"
    assert st.lifecycle_tick()["started"] == 0  # nor does the monitor breaching again: still the same episode
    Dispatcher(st.db).run_once(datetime.now(UTC))
    assert [m["title"] for m in inbox.received] == ["drift on risk: retraining"]


def test_a_failing_job_fails_the_run_keeps_the_champion_and_alerts(st: Any, inbox: Inbox) -> None:
    st.put_channel({"name": "ops", "type": "webhook", "url": inbox.url})
    st.put_alert_rule({"name": "lifecycle-ops", "lifecycle": "*", "channels": ["ops"], "severity": "critical"})
    drift_monitor(st)
    spec = {**ENTRY, "env": {"RETRAIN_FAIL": "1"}}
    st.apply_lifecycle(definition(retrain=spec))
    st.lifecycle_tick()
    serve_drifted(st)
    st.run_monitor("risk-drift")
    st.lifecycle_tick()
    job = wait_for_job(st)
    assert job.status == "failed" and "exited with status 1" in (job.error or "")
    assert "the training data is not good enough" in job.log
    run = next(r for r in st.lifecycle_runs(model="risk") if r.transition == "retrain")
    assert run.status == "failed" and f"retraining job {job.id} failed" in (run.error or "")
    assert st.get_version("risk@production").version == 1
    deadline = time.monotonic() + 30  # the job's thread raises the alerts right after it ends the run
    while time.monotonic() < deadline:
        titles = [a.title for a in st.list_alerts()]
        if any("could not move production -> production" in t for t in titles):
            break
        time.sleep(0.1)
    assert any("retraining job" in t and "failed" in t for t in titles)
    assert any("could not move production -> production" in t for t in titles)


def test_a_hung_job_is_stopped_at_its_timeout(st: Any) -> None:
    drift_monitor(st)
    spec = {"command": [sys.executable, "-c", "import time; print('working', flush=True); time.sleep(60)"],
            "timeout": "2s"}  # fmt: skip
    st.apply_lifecycle(
        definition(retrain=spec).replace('      - notify: {channel: ops, message: "drift on risk: retraining"}\n', "")
    )
    st.lifecycle_tick()
    serve_drifted(st)
    st.run_monitor("risk-drift")
    started = time.monotonic()
    st.lifecycle_tick()
    job = wait_for_job(st, timeout=30)
    assert job.status == "timed_out" and time.monotonic() - started < 20
    assert "working" in job.log and "timeout (2s)" in (job.error or "")


def test_an_approval_past_its_sla_alerts_once_and_resolves_when_done(st: Any, inbox: Inbox) -> None:
    st.put_channel({"name": "ops", "type": "webhook", "url": inbox.url})
    st.put_alert_rule({"name": "approvals-late", "lifecycle": "retrained", "problems": ["sla"], "channels": ["ops"]})
    drift_monitor(st)
    st.apply_lifecycle(definition(retrain=ENTRY))
    x = applicants(300, 3)
    v2 = st.acting_as("dana").register_model("risk", LogisticRegression().fit(x, x["debt_to_income"] > 0.4),
                                              input_example=x.head(), metrics={"auc": 0.9}).version  # fmt: skip
    run = st.advance(f"risk/{v2}", "production")
    assert run.status == "waiting_approval"
    later = datetime.now(UTC) + timedelta(hours=2)
    assert st.lifecycle_tick(later)["sla"] == 1
    assert st.lifecycle_tick(later + timedelta(minutes=1))["sla"] == 0  # once
    st.grant_role("victor", "validator")
    st.acting_as("victor").approve(f"risk/{v2}", role="validator")
    Dispatcher(st.db).run_once(datetime.now(UTC))
    events = [(m["event"], m["title"]) for m in inbox.received]
    assert [e for e, _ in events] == ["alert.fired", "alert.resolved"]
    assert "waited longer than its SLA" in events[0][1]


def test_a_scheduled_transition_fires_once_per_period(st: Any) -> None:
    extra = """\
  - name: review
    from: production
    to: production
    trigger: {schedule: "1d"}
"""
    drift_monitor(st)
    st.put_channel({"name": "ops", "type": "webhook", "url": "http://127.0.0.1:9/hook"})
    st.apply_lifecycle(definition(retrain=ENTRY, extra=extra))
    now = datetime.now(UTC)
    assert st.lifecycle_tick(now)["scheduled"] == 0
    assert st.lifecycle_tick(now + timedelta(days=1, minutes=1))["scheduled"] == 1
    assert st.lifecycle_tick(now + timedelta(days=1, minutes=2))["scheduled"] == 0
    reviews = [r for r in st.lifecycle_runs(model="risk") if r.transition == "review"]
    assert len(reviews) == 1 and reviews[0].status == "done" and reviews[0].trigger.startswith("schedule:1d@")


def test_definitions_that_name_missing_things_are_refused(st: Any) -> None:
    with pytest.raises(InvalidDefinition, match="no monitor named 'risk-drift'"):
        st.apply_lifecycle(definition(retrain=ENTRY))
    drift_monitor(st)
    with pytest.raises(InvalidDefinition, match="no alert channel named 'ops'"):
        st.apply_lifecycle(definition(retrain=ENTRY))
    st.put_channel({"name": "ops", "type": "webhook", "url": "http://127.0.0.1:9/hook"})
    with pytest.raises(InvalidDefinition, match="a gate on metric 'gini', which no version of risk records"):
        st.apply_lifecycle(definition(retrain=ENTRY).replace("metric: auc", "metric: gini"))
    with pytest.raises(InvalidDefinition, match="retrains, but risk declares no 'retrain'"):
        st.apply_lifecycle(
            definition(retrain=ENTRY).replace(f"    retrain: {json.dumps(ENTRY)}\n", "    parameters: {}\n")
        )
