"""The demo's life cycle of credit-risk: the day-33 drift alert retrains it, version 3 goes through shadow and a
canary, its first promotion stops at a gate, the author and a data scientist may not sign, a validator rejects,
then signs with an approver and version 3 replaces version 2."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient

from modelsteward import LocalSteward
from modelsteward.demo.data import FEATURES, TARGET
from modelsteward.demo.lifecycle_story import (
    APPROVER,
    DATA_SCIENTIST,
    FIRST_TRY_DAY,
    PROMOTION_DAY,
    SECOND_TRY_DAY,
    VALIDATOR,
)
from modelsteward.demo.retrain import applicant_keys
from modelsteward.demo.seed import definition, seed_demo
from modelsteward.demo.timeline import ALERT_DAY, MONITOR
from modelsteward.domain.lifecycle import Run
from modelsteward.monitoring.export import run_sql
from modelsteward.settings import Settings

pytestmark = pytest.mark.slow

MIN_SAMPLES = 200  # the promote gate's, in credit_lifecycle.yaml


@dataclass
class Demo:
    st: LocalSteward
    client: TestClient
    summary: str

    @property
    def runs(self) -> list[Run]:
        return sorted(self.st.lifecycle_runs(model="credit-risk", limit=100), key=lambda r: r.id)

    @property
    def start(self) -> datetime:
        """Day 0 of the simulated calendar, from the day-33 monitor run."""
        return self.st.monitor_results(MONITOR)[0].window_end - timedelta(days=ALERT_DAY)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """One seeded demo for the module: seeding plays 60 days and the life cycle (tens of seconds)."""
    from modelsteward.api.app import create_app

    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("STEWARD_")]:
            mp.delenv(key)  # a developer's settings must not reach the demo or its retraining job
        settings = Settings(data_dir=tmp_path_factory.mktemp("demo-lifecycle"), demo=True, scheduler=False)
        app = create_app(settings)
        st: LocalSteward = app.state.steward
        with TestClient(app) as client:
            summary = seed_demo(st, inbox_url="http://testserver/demo/inbox")
            yield Demo(st, client, summary)


def _labelled_answers(demo: Demo, *, before_day: int, arm: str, version: int) -> int:
    """How many answers of ``arm`` on the credit-risk endpoint had an outcome, counted straight from the log."""
    end = demo.start + timedelta(days=before_day)
    counted = run_sql(
        demo.st.settings,
        "SELECT count(*) AS n FROM predictions_with_feedback WHERE deployment = 'credit-risk' AND status = 'ok' "
        f"AND arm = '{arm}' AND version = {version} AND ts < TIMESTAMPTZ '{end.isoformat()}'",
    )
    return int(counted["n"].iloc[0])


def test_versions_end_in_their_stages_and_v3_answers_everywhere(demo: Demo) -> None:
    st = demo.st
    status = st.lifecycle_status("credit-risk")
    assert status.lifecycle == "credit-models"
    assert {p.version: p.stage for p in status.positions} == {1: "retired", 2: "retired", 3: "production"}
    assert st.get_version("credit-risk@production").version == 3
    spec = st.get_deployment("credit-risk").spec
    assert (spec.champion, spec.challengers, spec.shadows) == ("credit-risk@production", {}, [])
    assert "credit-risk/3" in st.serving_description("credit-decision")["versions"]  # the pipeline follows the alias


def test_the_runs_follow_the_story_in_order(demo: Demo) -> None:
    runs = demo.runs
    assert [(r.transition, r.version, r.status) for r in runs] == [
        ("shelve", 1, "done"),
        ("retrain", 2, "done"),
        ("submit", 3, "done"),
        ("canary", 3, "done"),
        ("promote", 3, "failed"),
        ("promote", 3, "rejected"),
        ("promote", 3, "done"),
    ]
    retrain, submit = runs[1], runs[2]
    assert retrain.trigger.startswith("event:alert:credit-risk-drift#")  # the day-33 alert, not a person
    assert [(s.name, s.status) for s in retrain.steps if s.kind == "action"] == [
        ("action[0]:notify", "done"),
        ("action[1]:retrain", "done"),
    ]
    assert submit.trigger == "event:version_registered" and submit.requested_by.startswith("job-")
    assert [g.gate for g in submit.gates] == ["metric auc", "champion auc", "provenance"]
    assert all(g.passed for g in submit.gates)
    assert {r.requested_by for r in runs[3:]} == {DATA_SCIENTIST}
    for day in (ALERT_DAY, 34, 35, FIRST_TRY_DAY, SECOND_TRY_DAY, PROMOTION_DAY):
        assert f"\nday {day}: " in demo.summary
    assert "credit-risk/3 promoted" in demo.summary and "v2 retired" in demo.summary


def test_the_first_promotion_stops_at_the_challenger_gate_for_want_of_outcomes(demo: Demo) -> None:
    failed = demo.runs[4]
    [gate] = failed.gates
    assert gate.gate == "challenger accuracy on credit-risk" and not gate.passed
    assert "not enough data to decide" in gate.reason and failed.error == f"{gate.gate}: {gate.reason}"
    assert failed.approvals == []
    # the gate counted what the log holds for the canary's first days, per arm
    n_a, n_b = gate.evidence["n_a"], gate.evidence["n_b"]
    assert n_b < MIN_SAMPLES <= n_a
    assert n_a == _labelled_answers(demo, before_day=FIRST_TRY_DAY, arm="champion", version=2)
    assert n_b == _labelled_answers(demo, before_day=FIRST_TRY_DAY, arm="challenger", version=3)
    assert f"day {FIRST_TRY_DAY}: promotion refused by a gate: {failed.error}" in demo.summary


def test_the_author_and_a_data_scientist_are_refused_and_the_validator_rejects(demo: Demo) -> None:
    st = demo.st
    rejected = demo.runs[5]
    job = st.list_jobs(model="credit-risk")[0]
    author = f"job-{job.id}"
    assert [(a.user, a.role, a.decision, a.accepted) for a in rejected.approvals] == [
        (author, "validator", "approve", False),
        (DATA_SCIENTIST, "validator", "approve", False),
        (VALIDATOR, "validator", "reject", True),
    ]
    refused_author, refused_scientist, rejection = rejected.approvals
    assert refused_author.reason.startswith(f"separation of duties: {author} registered credit-risk/3")
    assert refused_scientist.reason == f"{DATA_SCIENTIST} does not hold the role validator for credit-risk"
    assert rejection.comment and rejected.error == f"rejected by {VALIDATOR} (validator): {rejection.comment}"
    assert [g.passed for g in rejected.gates] == [True]  # the gates passed: people decided
    events = [e for e in st.list_events(model="credit-risk", limit=500) if e.details.get("run") == rejected.id]
    assert sorted(e.actor for e in events if e.action == "lifecycle.approval_refused") == sorted(
        [author, DATA_SCIENTIST]
    )
    assert [e.actor for e in events if e.action.startswith("lifecycle.reject")] == [VALIDATOR]


def test_the_promotion_has_both_signatures_and_its_live_evidence(demo: Demo) -> None:
    st = demo.st
    promoted = demo.runs[6]
    assert [(a.user, a.role, a.decision, a.accepted) for a in promoted.approvals] == [
        (VALIDATOR, "validator", "approve", True),
        (APPROVER, "approver", "approve", True),
    ]
    [gate] = promoted.gates
    evidence = gate.evidence
    assert gate.passed and evidence["status"] == "ok" and evidence["n_b"] >= MIN_SAMPLES
    assert evidence["n_a"] == _labelled_answers(demo, before_day=PROMOTION_DAY, arm="champion", version=2)
    assert evidence["n_b"] == _labelled_answers(demo, before_day=PROMOTION_DAY, arm="challenger", version=3)
    assert 0.5 < evidence["estimate_a"] < 1 and 0.5 < evidence["estimate_b"] < 1
    assert not (evidence["significant"] and evidence["difference"] < 0)  # not significantly worse
    replaced = [e for e in st.list_events(model="credit-risk", limit=500) if e.action == "lifecycle.replaced"]
    assert [(e.version, e.details["to"], e.details["by_version"]) for e in replaced] == [(2, "retired", 3)]


def test_the_retraining_job_trained_on_labelled_decisions_with_lineage_and_a_held_out_auc(demo: Demo) -> None:
    from sklearn.metrics import roc_auc_score

    st = demo.st
    [job] = st.list_jobs(model="credit-risk")
    assert job.status == "succeeded" and job.exit_code == 0 and job.version == 3
    assert job.run_id == demo.runs[1].id and job.duration_s and job.duration_s > 0
    assert "recent decisions:" in job.log and "registered credit-risk/3" in job.log
    v2, v3 = st.get_version("credit-risk/2"), st.get_version("credit-risk/3")
    assert v3.created_by == f"job-{job.id}" and v3.tags["steward.job"] == str(job.id)
    links = {d.role: d for d in v3.datasets}
    assert set(links) == {"training", "test", "validation"}
    assert links["test"] == next(d for d in v2.datasets if d.role == "test")  # measured on v2's test set
    lineage = st.get_lineage("credit-risk/3")
    assert {e.relation for e in lineage.upstream} == {"training_data", "test_data", "validation_data"}

    training = pd.read_parquet(st.get_dataset(links["training"].content_hash).uri)
    test = pd.read_parquet(st.get_dataset(links["test"].content_hash).uri)
    holdout = pd.read_parquet(st.get_dataset(links["validation"].content_hash).uri)
    assert len(training) == links["training"].row_count == v3.params["development_rows"] + v3.params["recent_rows"]
    assert not applicant_keys(training).isin(set(applicant_keys(test))).any()  # the test set's applicants held out
    assert applicant_keys(holdout).isin(set(applicant_keys(test))).all()

    # the recent rows are the labelled credit decisions the definition's query returns, split by applicant
    query = yaml.safe_load(Path(definition("credit_lifecycle.yaml")).read_text())["models"]["credit-risk"]["retrain"]
    labelled = run_sql(st.settings, query["data"])
    assert len(labelled) == v3.params["recent_rows"] + len(holdout)

    # the recorded AUC is v3's on the held-out test set, like v2's
    scores = st.predict("credit-risk/3", test[FEATURES])
    assert round(float(roc_auc_score(test[TARGET], scores["proba_1"])), 4) == v3.metrics["auc"]
    assert v3.metrics["auc"] >= 0.75 and v3.metrics["auc"] - v2.metrics["auc"] >= -0.01  # the submit gates
    assert 0.5 < v3.metrics["auc_recent"] < 1


def test_the_retraining_notice_reaches_the_ops_inbox(demo: Demo) -> None:
    import httpx

    from modelsteward.alerts import Dispatcher
    from modelsteward.alerts.channels import WebhookSender

    client = demo.client
    transport = httpx.MockTransport(
        lambda request: httpx.Response(
            client.post("/demo/inbox", content=request.content, headers=dict(request.headers)).status_code
        )
    )
    sender = WebhookSender(httpx.Client(transport=transport))
    assert Dispatcher(demo.st.db, senders={"webhook": sender}).run_once() == 2  # the drift alert and the notice
    inbox: list[dict[str, Any]] = client.get("/demo/inbox").json()
    by_rule = {m["payload"]["rule"]: m for m in inbox}
    assert set(by_rule) == {"credit-risk-drift", "lifecycle-credit-models-notices"}
    notice = by_rule["lifecycle-credit-models-notices"]["payload"]
    assert "retraining" in notice["title"] and notice["details"]["run"] == demo.runs[1].id
    assert notice["details"]["transition"] == "retrain"


def test_the_demo_validates_its_versions_and_files_the_auditors_report(demo: Demo) -> None:
    from modelsteward.demo.lifecycle_story import AUDITOR, OPERATOR, USERS

    st = demo.st
    assert {u.name for u in st.list_users()} >= set(USERS)
    assert st.has_role(AUDITOR, "auditor") and st.has_role(OPERATOR, "operator")
    runs = {r.version: r for r in st.compliance_runs("credit-risk", suite="credit-risk-validation")}
    assert set(runs) == {2, 3}
    for version, run in runs.items():
        fair = next(r for r in run.results if r.name == "fair lending")
        gap = next(c for c in fair.checks if c.metric == "equalized_odds_difference" and c.over == "age_group")
        assert not gap.passed and gap.value > 0.1, (version, gap)  # the finding the summary reports
        assert run.actor == VALIDATOR and run.data is not None and run.data.rows == 3000
        assert next(r for r in run.results if r.name == "reproducible").status == "pass"
    assert "vera ran credit-risk-validation on credit-risk/2" in demo.summary
    assert "equalized_odds_difference over age_group" in demo.summary
    report_path = Path(st.settings.data_dir) / "demo" / "reports" / "credit-risk-v3-report.html"
    assert f"filed the report of credit-risk@production (credit-risk/3): {report_path}" in demo.summary
    page = report_path.read_text(encoding="utf-8")
    for section in ("model-card", "training-data", "compliance", "approvals", "deployments", "monitoring",
                    "audit-trail"):  # fmt: skip
        assert f'id="{section}"' in page
    assert "SR 11-7" in page and "Annex IV" in page and "carl" in page and "vera" in page
    flags = {f.code: f.message for f in st.model_debt("credit-risk").models[0].flags}
    assert "credit-risk-validation fail (fair lending" in flags["compliance_findings"]  # the finding is debt
    report = st.audit_report("credit-risk@production")
    signatures = report.section("approvals").blocks[1].rows
    assert any(row[1] == APPROVER and row[3] == "approve" and row[5] == "yes" for row in signatures)
    assert any(row[1] == DATA_SCIENTIST and row[5] == "no" for row in signatures)  # the refused signature
    # which version was in production just before the promotion? the one the alias named then
    moves = [e for e in st.list_events(model="credit-risk", limit=1000) if e.action == "alias.set"]
    promoted = max(e.at for e in moves if e.details.get("after") == 3)
    assert (
        st.audit_report("credit-risk@production", as_of=promoted - timedelta(microseconds=1)).subject == "credit-risk/2"
    )
