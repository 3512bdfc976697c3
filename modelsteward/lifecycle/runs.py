"""A run's state machine: starting it past its gates, taking it through approvals and actions, finishing it."""

from __future__ import annotations

import logging
from typing import Any

from modelsteward.domain.lifecycle import GateResult, Job, LifecycleDefinition, RetrainSpec, Run, Transition
from modelsteward.domain.monitoring import LifecycleSignal
from modelsteward.domain.refs import ModelRef
from modelsteward.errors import Conflict, InvalidArgument, NotFound, StewardError
from modelsteward.lifecycle import actions
from modelsteward.lifecycle.definitions import Definitions
from modelsteward.lifecycle.gate_facts import GateFacts
from modelsteward.lifecycle.signals import Signals
from modelsteward.store import event_repo, lifecycle_repo

log = logging.getLogger("modelsteward.lifecycle")


class Runs(Definitions, Signals, GateFacts):
    def get_run(self, run_id: int) -> Run:
        with self.db.read() as conn:
            run = lifecycle_repo.get_run(conn, run_id)
        if run is None:
            raise NotFound(f"no life-cycle run {run_id}", details={"run": run_id})
        return run

    def list_runs(self, *, model: str | None = None, status: str | None = None, limit: int = 50) -> list[Run]:
        with self.db.read() as conn:
            return lifecycle_repo.list_runs(conn, model=model, status=status, limit=limit)

    # -- placing versions -----------------------------------------------------------------------------

    def place_new_version(self, model: str, version: int, *, actor: str) -> list[Run]:
        """A newly registered version of a governed model enters the initial stage; transitions
        triggered by ``version_registered`` or ``entered`` start. A model under no life cycle: nothing."""
        with self.db.read() as conn:
            row = lifecycle_repo.binding(conn, model)
            found = lifecycle_repo.get_lifecycle(conn, row.lifecycle) if row is not None else None
        if found is None:
            return []
        defn = found.definition
        with self.db.write() as conn:
            if lifecycle_repo.position(conn, model, version) is not None:
                return []
            lifecycle_repo.set_position(conn, model, version, defn.name, defn.initial_stage)
            event_repo.append_event(
                conn,
                actor=actor,
                action="lifecycle.entered",
                model=model,
                version=version,
                details={"lifecycle": defn.name, "stage": defn.initial_stage},
            )
        runs = []
        for t in defn.transitions:
            if t.trigger is not None and t.trigger.event in ("version_registered", "entered"):
                if defn.initial_stage in t.from_ or "*" in t.from_:
                    runs.append(self._start(model, version, defn, t, trigger=f"event:{t.trigger.event}", actor=actor))
        return runs

    # -- runs -----------------------------------------------------------------------------------------

    def request(self, ref: str, to_stage: str, *, actor: str, trigger: str | None = None) -> Run:
        """Ask to move a version (``name/3``, ``name@alias``, or ``name``: the newest version that can
        make that move) to ``to_stage``. Starts a run and takes it as far as it goes."""
        parsed = ModelRef.parse(ref)
        defn, _ = self.governed(parsed.name)
        if to_stage not in defn.stage_names:
            raise InvalidArgument(
                f"life cycle {defn.name!r} has no stage {to_stage!r} (stages: {', '.join(defn.stage_names)})",
                details={"field": "to", "stage": to_stage},
            )
        version, transition = self._pick(parsed, defn, to_stage)
        started = self._start(parsed.name, version, defn, transition, trigger=trigger or f"manual:{actor}", actor=actor)
        return self.get_run(started.id)

    def _pick(self, ref: ModelRef, defn: LifecycleDefinition, to_stage: str) -> tuple[int, Transition]:
        with self.db.read() as conn:
            if ref.version is not None or ref.alias is not None:
                versions = [self.catalog.get_version(ref).version]
            else:
                versions = [p.version for p in lifecycle_repo.positions(conn, ref.name)]
            for version in versions:
                at = lifecycle_repo.position(conn, ref.name, version)
                stage = at.stage if at is not None else defn.initial_stage
                options = defn.transitions_to(to_stage, from_stage=stage)
                if options:
                    return version, options[0]
        if len(versions) == 1:
            raise InvalidArgument(
                f"{ref.name}/{versions[0]} is in stage {stage!r}: the life cycle has no transition from there "
                f"to {to_stage!r}" + _allowed(defn, stage),
                details={"field": "to", "stage": stage},
            )
        raise InvalidArgument(
            f"no version of {ref.name} is in a stage with a transition to {to_stage!r}",
            details={"field": "to", "model": ref.name},
        )

    def _start(
        self,
        model: str,
        version: int,
        defn: LifecycleDefinition,
        transition: Transition,
        *,
        trigger: str,
        actor: str,
        parameters: dict[str, float] | None = None,
    ) -> Run:
        """Start a run: its gates are evaluated first, then the run is stored with their results in one
        transaction, and it goes on to its approvals or actions. Returns the run as this call left it
        (public callers fetch it again for its steps)."""
        with self.db.read() as conn:
            moving = self._moving(conn, model, version, transition)
        if moving is not None:
            return moving
        if parameters is None:
            _, parameters = self.governed(model)
        specific = defn.for_model(transition, model)
        results = self._evaluate(model, version, specific, parameters)
        failed = [r for r in results if not r.passed]
        status = "failed" if failed else ("waiting_approval" if transition.approvals else "acting")
        error = "; ".join(f"{r.gate}: {r.reason}" for r in failed) or None
        with self.db.write() as conn:
            moving = self._moving(conn, model, version, transition)
            if moving is not None:
                return moving
            at = lifecycle_repo.position(conn, model, version)
            from_stage = at.stage if at is not None else defn.initial_stage
            run_id, created = lifecycle_repo.create_run(
                conn,
                model=model,
                version=version,
                lifecycle=defn.name,
                transition=transition.label,
                from_stage=from_stage,
                to_stage=transition.to,
                trigger=trigger,
                requested_by=actor,
                status=status,
                gates=results,
                error=error,
            )
            base = {"run": run_id, "transition": transition.label}
            events = [{"action": "lifecycle.requested", "details": {**base, "from": from_stage, "to": transition.to,
                                                                    "trigger": trigger}}]  # fmt: skip
            if results:
                gates_json = [r.model_dump(mode="json") for r in results]
                action = "lifecycle.gates_failed" if failed else "lifecycle.gates_passed"
                events.append({"action": action, "details": {**base, "gates": gates_json}})
            if failed:
                events.append({"action": "lifecycle.failed", "details": {**base, "error": error}})
            event_repo.append_events(
                conn, actor=actor, items=[{**e, "model": model, "version": version} for e in events]
            )
        run = Run(
            id=run_id, model=model, version=version, lifecycle=defn.name, transition=transition.label,
            from_stage=from_stage, to_stage=transition.to, status=status, trigger=trigger[:256], requested_by=actor,
            created_at=created, updated_at=created, gates=results, error=error,
        )  # fmt: skip
        if failed:
            self._signal(self._run_signal(run, "failed", error=error))
        if status == "acting":
            return self._act(run, specific, actor, defn)
        return run

    def _moving(self, conn: Any, model: str, version: int, transition: Transition) -> Run | None:
        """The version's open run when it is this transition (asked twice: the same run); Conflict when
        the version is moving elsewhere; None when it is free to move."""
        for run in lifecycle_repo.open_runs(conn, model=model, version=version):
            if run.transition == transition.label:
                return run
            raise Conflict(
                f"{model}/{version} is already moving ({run.transition}, run {run.id}, {run.status}); "
                "finish, reject or cancel it first",
                details={"run": run.id},
            )
        return None

    def process(self, run_id: int, *, actor: str = "lifecycle") -> Run:
        """Take a run as far as it can go now: past its approvals, through its actions, to the move. (Its gates
        were evaluated when it was stored.)"""
        run = self.get_run(run_id)
        defn, _ = self.governed(run.model)
        try:
            transition = defn.for_model(defn.transition(run.transition), run.model)
        except KeyError:
            return self._finish(run, "failed", actor, error=f"transition {run.transition!r} left the life cycle")
        if run.status == "waiting_approval" and _approved(run, transition):
            run = self._set_status(run, "acting", actor)
        if run.status == "acting":
            run = self._act(run, transition, actor, defn)
        return self.get_run(run.id)

    def gate(self, ref: str, to_stage: str) -> tuple[int, Transition, list[GateResult]]:
        """Evaluate a transition's gates for a version without starting a run (for CI pipelines)."""
        parsed = ModelRef.parse(ref)
        defn, parameters = self.governed(parsed.name)
        if to_stage not in defn.stage_names:
            raise InvalidArgument(f"life cycle {defn.name!r} has no stage {to_stage!r}", details={"field": "to"})
        version, transition = self._pick(parsed, defn, to_stage)
        transition = defn.for_model(transition, parsed.name)
        return version, transition, self._evaluate(parsed.name, version, transition, parameters)

    def _set_status(self, run: Run, status: str, actor: str) -> Run:
        with self.db.write() as conn:
            lifecycle_repo.update_run(conn, run.id, status=status)
        return self.get_run(run.id)

    def _act(self, run: Run, transition: Transition, actor: str, defn: LifecycleDefinition | None = None) -> Run:
        for index, action in enumerate(transition.actions):
            name = f"action[{index}]:{action.kind}"
            with self.db.write() as conn:
                step = lifecycle_repo.step(conn, run.id, name)
                if step is None:
                    before = actions.snapshot(self._context(run), action)
                    lifecycle_repo.begin_step(conn, run.id, "action", name, {"before": before})
                elif step.status in ("done", "skipped"):
                    continue
                else:
                    before = (step.detail or {}).get("before")
            try:
                if action.retrain is not None:
                    detail = self._retrain(run, name, actor)
                    if detail is None:
                        return self.get_run(run.id)  # the job runs; its end takes the run further
                elif action.notify is not None or action.ticket is not None:
                    detail = self._notify(run, transition, name, action, actor)
                else:
                    detail = actions.perform(self._context(run), action, before=before, actor=actor)
            except StewardError as e:
                with self.db.write() as conn:
                    lifecycle_repo.finish_step(conn, run.id, name, "failed", {"before": before, "error": e.message})
                return self._finish(run, "failed", actor, error=f"{name}: {e.message}", defn=defn)
            with self.db.write() as conn:
                lifecycle_repo.finish_step(conn, run.id, name, "done", {"before": before, **detail})
        return self._finish(run, "done", actor, defn=defn)

    def _retrain(self, run: Run, step: str, actor: str) -> dict[str, Any] | None:
        """Start the model's retraining job for this step (once), or read how it ended; None while it runs."""
        if self.jobs is None:
            raise InvalidArgument("this steward cannot run retraining jobs", details={"run": run.id})
        with self.db.read() as conn:
            job = lifecycle_repo.job_for_step(conn, run.id, step)
            row = lifecycle_repo.binding(conn, run.model)
        if job is None:
            if row is None or not row.retrain:
                raise InvalidArgument(
                    f"{run.model} declares no retraining: add 'retrain:' under models.{run.model} in its life cycle",
                    details={"model": run.model},
                )
            job = self.jobs.start(
                model=run.model, spec=RetrainSpec.model_validate(row.retrain), run_id=run.id, step=step, actor=actor
            )
        if job.status == "running":
            return None
        if job.status != "succeeded":
            raise InvalidArgument(f"retraining job {job.id} {job.status.replace('_', ' ')}: {job.error}",
                                  details={"job": job.id})  # fmt: skip
        return {"job": job.id, "version": job.version}

    def _job_done(self, job: Job) -> None:
        if job.status != "succeeded":
            self._signal(LifecycleSignal(
                lifecycle=self._lifecycle_of(job.model), model=job.model, version=job.version, problem="job_failed",
                subject=f"job:{job.id}", title=f"retraining job {job.id} of {job.model} {job.status.replace('_', ' ')}",
                details={"job": job.id, "error": job.error, "exit_code": job.exit_code}, severity="critical",
            ))  # fmt: skip
        if job.run_id is not None:
            self.process(job.run_id, actor="lifecycle")

    def _notify(self, run: Run, transition: Transition, step: str, action: Any, actor: str) -> dict[str, Any]:
        if self.alerts is None:
            raise InvalidArgument("this steward has no alerting to notify through", details={"run": run.id})
        body = action.notify if action.notify is not None else action.ticket
        channels = body.channels if action.notify is not None else [body.channel]
        text = (body.message if action.notify is not None else body.summary) or (
            f"{run.model}/{run.version}: {run.from_stage} -> {run.to_stage} ({run.transition})"
        )
        self.alerts.evaluate_lifecycle(
            LifecycleSignal(
                lifecycle=run.lifecycle, model=run.model, version=run.version, problem="notice",
                subject=f"run:{run.id}:{step}", title=text, channels=channels,
                severity=getattr(body, "severity", "info"),
                details={"run": run.id, "transition": run.transition, "from": run.from_stage, "to": run.to_stage,
                         "gates": [g.model_dump(mode="json") for g in run.gates]},
            ),
            actor,
        )  # fmt: skip
        return {"channels": channels}

    def _context(self, run: Run) -> actions.Context:
        return actions.Context(self.catalog, self.deployments, run.model, run.version)

    def _finish(
        self, run: Run, status: str, actor: str, *, error: str | None = None, defn: LifecycleDefinition | None = None
    ) -> Run:
        """End a run; on success the version enters its new stage (and what that triggers)."""
        entered: str | None = None
        with self.db.write() as conn:
            if not lifecycle_repo.close_run(conn, run.id, status=status, error=error):
                return self.get_run(run.id)  # someone else ended it
            if defn is None:
                governed = self._governed_on(conn, run.model)
                defn = governed[0] if governed is not None else None
            if status == "done" and defn is not None:
                self._displace(conn, run, defn, actor)
                left = lifecycle_repo.set_position(conn, run.model, run.version, run.lifecycle, run.to_stage)
                entered = run.to_stage
                event_repo.append_event(
                    conn, actor=actor, action="lifecycle.advanced", model=run.model, version=run.version,
                    details={"run": run.id, "transition": run.transition, "from": left, "to": run.to_stage},
                )  # fmt: skip
            else:
                event_repo.append_event(
                    conn, actor=actor, action=f"lifecycle.{status}", model=run.model, version=run.version,
                    details={"run": run.id, "transition": run.transition, "error": error},
                )  # fmt: skip
            waited = lifecycle_repo.mark(conn, f"sla:{run.id}") is not None
        if waited:
            self._signal(self._run_signal(run, "sla", resolved=True))
        if status == "failed":
            self._signal(self._run_signal(run, "failed", error=error))
        if entered is not None and defn is not None:
            self._on_entered(run.model, run.version, entered, defn, actor)
        return run.model_copy(update={"status": status, "error": error})

    def _displace(self, conn: Any, run: Run, defn: LifecycleDefinition, actor: str) -> None:
        """Entering a single-version stage moves the version that held it on (production -> retired)."""
        stage = defn.stage(run.to_stage)
        if not stage.single or stage.replaced_to is None:
            return
        for held in lifecycle_repo.in_stage(conn, run.model, stage.name):
            if held.version == run.version:
                continue
            lifecycle_repo.set_position(conn, run.model, held.version, run.lifecycle, stage.replaced_to)
            event_repo.append_event(
                conn, actor=actor, action="lifecycle.replaced", model=run.model, version=held.version,
                details={"run": run.id, "by_version": run.version, "from": stage.name, "to": stage.replaced_to},
            )  # fmt: skip

    def _on_entered(self, model: str, version: int, stage: str, defn: LifecycleDefinition, actor: str) -> None:
        for t in defn.transitions:
            if t.trigger is not None and t.trigger.event == "entered" and (stage in t.from_ or "*" in t.from_):
                try:
                    self._start(model, version, defn, t, trigger="event:entered", actor=actor)
                except StewardError as e:
                    log.warning("automatic transition %s of %s/%s did not start: %s", t.label, model, version, e)
                return  # one automatic move at a time

    def cancel(self, run_id: int, *, actor: str, reason: str = "") -> Run:
        run = self.get_run(run_id)
        if not run.open:
            raise Conflict(f"run {run_id} is already {run.status}", details={"run": run_id})
        return self._finish(run, "cancelled", actor, error=reason or f"cancelled by {actor}")


def _approved(run: Run, transition: Transition) -> bool:
    accepted = [a for a in run.approvals if a.accepted and a.decision == "approve"]
    return all(sum(1 for a in accepted if a.role == need.role) >= need.count for need in transition.approvals)


def _allowed(defn: LifecycleDefinition, stage: str) -> str:
    targets = sorted({t.to for t in defn.transitions if stage in t.from_ or "*" in t.from_})
    return f" (from {stage!r} it can go to: {', '.join(targets)})" if targets else f" ({stage!r} is a final stage)"
