"""The credit-risk model's life cycle on the demo's days 33-40: retrained on the drift alert, shadow, canary, a
gate that fails, refused and rejected sign-offs, then the promotion (DEMO-STORY.md).

Everything goes through the facade as people would do it, each under their own name: the engine's round reacts
to the alert, the retraining job runs as a process of its own, traffic and outcomes reach the ``credit-risk``
deployment with ``serve(..., at=...)`` and ``send_feedback(..., at=...)`` on the simulated days.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelsteward.demo.data import FEATURES, true_default_probability
from modelsteward.demo.seed import BUSINESS_UNIT, definition
from modelsteward.demo.timeline import ALERT_DAY, DOWNTURN_DAY, downturn, record_debt_days
from modelsteward.errors import Conflict, Forbidden

MODEL = "credit-risk"
DEPLOYMENT = "credit-risk"  # the plain scoring endpoint: a pipeline step has no canary
LIFECYCLE_FILE = "credit_lifecycle.yaml"
VALIDATOR = "vera"  # Model Risk Management
APPROVER = "carl"  # the credit committee
DATA_SCIENTIST = "dana"  # looks after credit-risk; may move it, may not sign for it
AUDITOR = "ines"  # Internal Audit: reads the trail and the reports
OPERATOR = "omar"  # runs the gateway: deployments, monitors, alerts
USERS = {
    VALIDATOR: "Vera (Model Risk Management)",
    APPROVER: "Carl (credit committee)",
    DATA_SCIENTIST: "Dana (data science, retail credit)",
    AUDITOR: "Ines (Internal Audit)",
    OPERATOR: "Omar (ML platform operations)",
}
SUITE_FILE = "credit_risk_compliance.yaml"
SHADOW_DAY, CANARY_DAY, FIRST_TRY_DAY, SECOND_TRY_DAY, PROMOTION_DAY = 34, 35, 37, 39, 40
PER_DAY = 300  # applicants a day on the credit-risk endpoint: the canary's fifth is about 60
JOB_PATIENCE = 600.0  # seconds; the definition stops the job after 10 minutes


class LifecycleStory:
    """The story in two acts: :meth:`govern` before the day-33 breach, :meth:`play` after it."""

    def __init__(self, st: Any, pool: pd.DataFrame, *, start: datetime) -> None:
        self.st = st
        self.pool = pool
        self.start = start  # day 0 of the simulated calendar
        self.dana = st.acting_as(DATA_SCIENTIST)
        self.lines: list[str] = []
        self.champion = 0  # the version in production when the alert fired
        self.version = 0  # the one the retraining job registered

    # -- before the breach -------------------------------------------------------------------------

    def govern(self) -> None:
        """Roles, the life cycle, the superseded baseline shelved, and the engine's first round, which
        bookmarks the event log (history does not replay): the breach that follows is news to it."""
        st = self.st
        known = {u.name for u in st.list_users()}
        for name, display in USERS.items():
            if name not in known:
                st.create_user(name, display_name=display)
        st.grant_role(VALIDATOR, "validator")  # Model Risk Management validates every model of the bank
        st.grant_role(APPROVER, "approver", business_unit=BUSINESS_UNIT)
        st.grant_role(DATA_SCIENTIST, "data_scientist", model=MODEL)
        st.grant_role(AUDITOR, "auditor")
        st.grant_role(OPERATOR, "operator")
        self._validate(f"{MODEL}@production")
        lifecycle = st.apply_lifecycle(definition(LIFECYCLE_FILE))
        shelved = self.dana.advance(f"{MODEL}/1", "retired")
        _expect(shelved.status == "done", f"{MODEL}/1 was not shelved: {shelved.error}")
        st.lifecycle_tick()
        stages = self._stages()
        self.lines.append(
            f"life cycle {lifecycle.name} governs {MODEL}: v{_holder(stages, 'production')} in production, v1 "
            f"(the logistic baseline) shelved to retired; {VALIDATOR} validates (Model Risk Management), "
            f"{APPROVER} approves (credit committee), {DATA_SCIENTIST} is the model's data scientist"
        )

    # -- after the breach --------------------------------------------------------------------------

    def play(self) -> str:
        """Days 33-40; returns the summary, one line a step."""
        self._retrain()
        ref = f"{MODEL}/{self.version}"
        self._validate(ref)
        self._serve(SHADOW_DAY)
        self._debt(SHADOW_DAY, CANARY_DAY)
        passed = ", ".join(g.gate for g in self._last_run("submit").gates)
        self.lines.append(
            f"day {SHADOW_DAY}: {ref} passed submit's gates ({passed}); "
            f"in shadow on {DEPLOYMENT}, it scored the day's {PER_DAY} applicants beside v{self.champion}, unseen"
        )

        canary = self.dana.advance(ref, "canary")
        _expect(canary.status == "done", f"{ref} did not reach the canary: {canary.error}")
        self._follow()
        weight = self.st.get_deployment(DEPLOYMENT).spec.challengers.get(ref, 0.0)
        for day in range(CANARY_DAY, FIRST_TRY_DAY):
            self._serve(day)
        self._debt(CANARY_DAY, FIRST_TRY_DAY)
        self.lines.append(
            f"day {CANARY_DAY}: {DATA_SCIENTIST} moved {ref} to the canary: {weight:.0%} of the applicants "
            f"(by applicant, sticky) meet it; their outcomes arrive the next day"
        )

        first = self._request(ref)
        _expect(first.status == "failed", f"the first promotion of {ref} did not stop at its gate: {first.status}")
        self.lines.append(f"day {FIRST_TRY_DAY}: promotion refused by a gate: {first.error}")

        for day in range(FIRST_TRY_DAY, SECOND_TRY_DAY):
            self._serve(day)
        self._debt(FIRST_TRY_DAY, SECOND_TRY_DAY)
        second = self._request(ref)
        _expect(second.status == "waiting_approval", f"{ref} did not wait for sign-off: {second.error}")
        evidence = second.gates[0].evidence
        author = self.st.get_version(ref).created_by or "its author"
        refusals = [self._refused(ref, author), self._refused(ref, DATA_SCIENTIST)]
        comment = (
            f"{evidence['n_b']} labelled canary decisions over {SECOND_TRY_DAY - CANARY_DAY} days; Model Risk "
            f"Management asks for five days of outcomes before a champion change"
        )
        rejected = self.st.acting_as(VALIDATOR).reject(ref, role="validator", comment=comment)
        _expect(rejected.status == "rejected", f"the rejection did not end run {rejected.id}")
        self.lines.append(
            f"day {SECOND_TRY_DAY}: gates passed ({self._gates(second)}); {'; '.join(refusals)}; "
            f'{VALIDATOR} (validator) rejected: "{comment}"'
        )

        for day in range(SECOND_TRY_DAY, PROMOTION_DAY):
            self._serve(day)
        self._debt(SECOND_TRY_DAY, PROMOTION_DAY)
        third = self._request(ref)
        _expect(third.status == "waiting_approval", f"{ref} did not wait for sign-off: {third.error}")
        self.st.acting_as(VALIDATOR).approve(
            ref, role="validator", comment=f"five days of canary outcomes: {third.gates[0].evidence['verdict']}"
        )
        done = self.st.acting_as(APPROVER).approve(ref, role="approver", comment="approved by the credit committee")
        _expect(done.status == "done", f"{ref} was not promoted: {done.status} {done.error}")
        self._follow()
        stages = self._stages()
        _expect(stages.get(self.version) == "production", f"{ref} is in {stages.get(self.version)}")
        self._debt(PROMOTION_DAY, PROMOTION_DAY + 1)
        self.lines.append(
            f"day {PROMOTION_DAY}: asked again, gates passed ({self._gates(third)}); {VALIDATOR} (validator) and "
            f"{APPROVER} (approver) signed; {ref} promoted: the production alias, {DEPLOYMENT}'s champion and the "
            f"credit decision's score; v{self.champion} {stages.get(self.champion)}"
        )
        self._report()
        return "\n".join(self.lines)

    def _validate(self, ref: str) -> None:
        """Model Risk Management runs its suite on a version: the figures are kept with it."""
        vera = self.st.acting_as(VALIDATOR)
        vera.put_compliance_suite(definition(SUITE_FILE))
        run = vera.run_compliance(ref, "credit-risk-validation")
        findings = "; ".join(f"{r.name}: {r.summary}" for r in run.failed) or "every test passed"
        self.lines.append(
            f"{VALIDATOR} ran credit-risk-validation on {run.ref} (run {run.id}): {run.status}: {findings}"
        )

    def _report(self) -> None:
        """Internal Audit files the report of the production model (steward audit report ... --out ...)."""
        from modelsteward.governance.report_render import render_html

        report = self.st.acting_as(AUDITOR).audit_report(f"{MODEL}@production")
        folder = Path(self.st.settings.data_dir) / "demo" / "reports"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{report.subject.replace('/', '-v')}-report.html"
        path.write_text(render_html(report), encoding="utf-8")
        failing = [s.title for s in report.sections if s.status == "fail"]
        self.lines.append(
            f"{AUDITOR} (Internal Audit) filed the report of {MODEL}@production ({report.subject}): {path}"
            + (f"; findings in {', '.join(failing)}" if failing else "")
        )

    def _retrain(self) -> None:
        """The engine's round after the breach: the alert starts `retrain`, which notifies and runs the job."""
        started = self.st.lifecycle_tick()
        run = self._last_run("retrain")
        _expect(started["started"] >= 1 and run is not None, f"the day-{ALERT_DAY} drift alert retrained nothing")
        self.champion = run.version
        run = self._wait(run.id)
        job = next(j for j in self.st.list_jobs(model=MODEL) if j.run_id == run.id)
        _expect(
            run.status == "done" and job.status == "succeeded" and job.version is not None,
            f"retraining ended {run.status} (job {job.id} {job.status}: {job.error})\n{job.log[-3000:]}",
        )
        self.version = int(job.version or 0)
        new = self.st.get_version(f"{MODEL}/{self.version}")
        old = self.st.get_version(f"{MODEL}/{self.champion}")
        _expect(self._stages().get(self.version) == "shadow", f"{MODEL}/{self.version} did not reach the shadow")
        self._follow()
        self.lines.append(
            f"day {ALERT_DAY}: the drift alert started `retrain` for {MODEL}/{self.champion} (run {run.id}): the "
            f"ops webhook was told; job {job.id} refitted v{self.champion}'s recipe in {job.duration_s or 0:.0f} s on "
            f"its {new.params['development_rows']} development rows + {new.params['recent_rows']} labelled decisions "
            f"of the last 30 days -> {MODEL}/{self.version}: AUC {new.metrics['auc']:.3f} on the held-out test set "
            f"(v{self.champion}: {old.metrics['auc']:.3f}), {new.metrics.get('auc_recent', float('nan')):.3f} on "
            f"the held-out applicants' recent decisions"
        )

    # -- helpers -----------------------------------------------------------------------------------

    def _serve(self, day: int) -> None:
        """One day of applicants on the credit-risk endpoint, and their outcomes the next day. The story
        compresses the wait for outcomes (the timeline's 30 days would put them after the demo's now);
        they are drawn from the same known formula as every other outcome of the demo."""
        rng = np.random.default_rng(30_000 + day)
        rows = self.pool.iloc[rng.choice(len(self.pool), size=PER_DAY, replace=False)].reset_index(drop=True)
        applicants = downturn(rows) if day >= DOWNTURN_DAY else rows
        defaulted = rng.uniform(size=len(applicants)) < true_default_probability(applicants)
        at = self.start + timedelta(days=day, hours=10)
        # one request a day: the gateway splits it between the arms by applicant (sticky), each row logged at ``at``
        served = self.st.serve(
            DEPLOYMENT, applicants[["applicant_id", *FEATURES]], request_id=f"{DEPLOYMENT}-day{day:02d}", at=at
        )
        outcomes = zip(served.prediction_ids, defaulted, strict=True)
        feedback = [{"prediction_id": i, "actual": int(d)} for i, d in outcomes]
        self.st.send_feedback(DEPLOYMENT, feedback, at=at + timedelta(days=1))

    def _debt(self, first: int, stop: int) -> None:
        """The daily debt snapshots of days ``first`` to ``stop - 1``, as the story stands now."""
        record_debt_days(self.st, self.start, range(first, stop))

    def _request(self, ref: str) -> Any:
        return self.dana.advance(ref, "production")

    def _refused(self, ref: str, user: str) -> str:
        try:
            self.st.acting_as(user).approve(ref, role="validator", comment="signing off")
        except Forbidden as e:
            return f"{user} may not sign: {e.message}"
        raise Conflict(f"{user} signed {ref} as a validator, which the life cycle must refuse", details={"user": user})

    def _follow(self) -> None:
        """Serve the deployment's current revision now, not at the gateway's next refresh."""
        wanted = self.st.get_deployment(DEPLOYMENT).revision
        self.st.gateway.refresh()
        served = self.st.serving_description(DEPLOYMENT)["revision"]
        _expect(served == wanted, f"the gateway serves revision {served} of {DEPLOYMENT}, not {wanted}")

    def _wait(self, run_id: int) -> Any:
        deadline = time.monotonic() + JOB_PATIENCE
        while True:
            run = self.st.get_lifecycle_run(run_id)
            if not run.open or time.monotonic() > deadline:
                return run
            time.sleep(0.2)

    def _last_run(self, transition: str) -> Any:
        runs = [r for r in self.st.lifecycle_runs(model=MODEL, limit=100) if r.transition == transition]
        return max(runs, key=lambda r: r.id) if runs else None

    def _stages(self) -> dict[int, str]:
        return {p.version: p.stage for p in self.st.lifecycle_status(MODEL).positions}

    @staticmethod
    def _gates(run: Any) -> str:
        return "; ".join(f"{g.gate}: {g.reason}" for g in run.gates)


def _holder(stages: dict[int, str], stage: str) -> str:
    return ", ".join(str(v) for v, s in sorted(stages.items()) if s == stage) or "none"


def _expect(condition: bool, message: str) -> None:
    """The story goes as told or stops loudly: a demo that silently skips a step would mislead."""
    if not condition:
        raise Conflict(f"the demo's life cycle: {message}", details={"model": MODEL})
