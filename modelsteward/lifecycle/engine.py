"""The life-cycle engine: definitions applied to models, versions moved between stages by runs that
check gates, wait for approvals and perform actions, every step stored before it acts.

A run is a small state machine kept in the store: its gates are evaluated before it is stored (a failed
gate stores it ``failed``), then ``waiting_approval`` -> ``acting`` -> ``done`` (or ``rejected`` /
``cancelled``). :meth:`LifecycleService.process` takes a run
as far as it can and can be called again at any time, by anyone, after any crash: each action is a
step row written (unique per run) before the action runs and marked when it is done, and every
action is idempotent (it sets a desired state) or guarded (a rollback checks the revision it
started from), so a restart resumes where it stood and nothing runs twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from modelsteward.alerts import AlertService
from modelsteward.catalog.service import CatalogService
from modelsteward.compliance.service import ComplianceService
from modelsteward.domain.lifecycle import (
    ROLES,
    ChallengerGate,
    GateResult,
    Job,
    Lifecycle,
    LifecycleDefinition,
    LifecycleStatus,
    ModelBinding,
    RetrainSpec,
    RoleGrant,
    Run,
    Transition,
    check_definition,
)
from modelsteward.domain.monitoring import LifecycleSignal
from modelsteward.domain.records import ModelVersion
from modelsteward.domain.refs import ModelRef, check_name
from modelsteward.errors import Conflict, Forbidden, InvalidArgument, InvalidDefinition, NotFound, StewardError
from modelsteward.lifecycle import actions, gates
from modelsteward.lifecycle.jobs import JobRunner
from modelsteward.monitoring.service import MonitorService
from modelsteward.serving.deployments import DeploymentService
from modelsteward.store import event_repo, lifecycle_repo
from modelsteward.store.database import Database

log = logging.getLogger("modelsteward.lifecycle")


class LifecycleService:
    def __init__(
        self,
        db: Database,
        catalog: CatalogService,
        deployments: DeploymentService,
        monitors: MonitorService,
        *,
        alerts: AlertService | None = None,
        jobs: JobRunner | None = None,
        clock: Callable[[], datetime] | None = None,
        compliance: ComplianceService | None = None,
    ) -> None:
        self.db = db
        self.compliance = compliance
        self.catalog = catalog
        self.deployments = deployments
        self.monitors = monitors
        self.alerts = alerts
        self.jobs = jobs
        self._parsed: dict[str, tuple[int, LifecycleDefinition]] = {}
        if jobs is not None:
            jobs.on_done = self._job_done
        self.clock = clock or (lambda: datetime.now(UTC))

    # -- definitions ----------------------------------------------------------------------------------

    def apply(self, defn: LifecycleDefinition, *, source: str | None = None, actor: str) -> Lifecycle:
        """Store a definition (a new revision when it changed) and put the models it lists under it.
        Versions without a stage enter the stage named like an alias they hold, or the initial stage."""
        problems = check_definition(defn) + self._references(defn)
        if problems:
            path, message = problems[0]
            raise InvalidDefinition(f"{_path(path)}: {message}", details={"field": _path(path), "path": list(path)})
        with self.db.write() as conn:
            lifecycle, before = lifecycle_repo.put_lifecycle(conn, defn, source=source, actor=actor)
            if before != lifecycle.definition.model_dump(mode="json", by_alias=True, exclude={"models"}):
                event_repo.append_event(
                    conn,
                    actor=actor,
                    action="lifecycle.applied",
                    details={"lifecycle": defn.name, "revision": lifecycle.revision, "before": before},
                )
            for model, binding in defn.models.items():
                retrain = binding.retrain.model_dump(mode="json", exclude_none=True) if binding.retrain else None
                self._bind(conn, model, defn, binding.parameters, actor, retrain)
            found = lifecycle_repo.get_lifecycle(conn, defn.name)
        assert found is not None
        return found

    def assign(self, model: str, lifecycle: str, parameters: dict[str, float] | None, *, actor: str) -> LifecycleStatus:
        """Put one model under a stored life cycle, with its own thresholds."""
        defn = self.get(lifecycle).definition
        self.catalog.get_model(model)
        unknown = sorted(set(parameters or {}) - set(defn.parameters))
        if unknown:
            raise InvalidArgument(
                f"{', '.join(unknown)}: not a parameter of life cycle {lifecycle!r} "
                f"(it has: {', '.join(sorted(defn.parameters)) or 'none'})",
                details={"field": "parameters", "unknown": unknown},
            )
        problems = self._references(
            defn.model_copy(update={"models": {model: ModelBinding(parameters=parameters or {})}})
        )
        if problems:
            path, message = problems[0]
            raise InvalidArgument(f"{_path(path)}: {message}", details={"field": _path(path)})
        with self.db.write() as conn:
            row = lifecycle_repo.binding(conn, model)
            retrain = row.retrain if row is not None and row.lifecycle == lifecycle else None
            self._bind(conn, model, defn, parameters or {}, actor, retrain)
        return self.status(model)

    def _references(self, defn: LifecycleDefinition) -> list[tuple[tuple[Any, ...], str]]:
        """What the definition names in the store: models, monitors, alert channels, and metrics that the
        models' versions record (a gate on a metric no version has would never pass)."""
        problems: list[tuple[tuple[Any, ...], str]] = []
        recorded: dict[str, set[str]] = {}
        for model in defn.models:
            try:
                self.catalog.get_model(model)
            except NotFound:
                problems.append((("models", model), f"no model named {model!r}"))
                continue
            versions, _ = self.catalog.list_versions(model)
            if versions:
                recorded[model] = {m for v in versions for m in v.metrics}
        monitors = {m.name for m in self.monitors.list()}
        channels = {c.name: c for c in self.alerts.list_channels()} if self.alerts is not None else {}
        governed = list(defn.models)

        def missing(name: str) -> str | None:
            """A monitor name (a template when it says {model}) that names no monitor for some model."""
            names = [name.replace("{model}", m) for m in governed] if "{model}" in name else [name]
            absent = [n for n in names if n not in monitors]
            return absent[0] if absent else None

        for i, t in enumerate(defn.transitions):
            if t.trigger is not None and t.trigger.monitor is not None and (gone := missing(t.trigger.monitor)):
                problems.append((("transitions", i, "trigger", "monitor"), f"no monitor named {gone!r}"))
            for g, gate in enumerate(t.gates):
                if gate.compliance is not None and self.compliance is not None:
                    suite = gate.compliance.suite
                    stored = {x.name for x in self.compliance.list_suites()}
                    names = [suite.replace("{model}", m) for m in governed] if "{model}" in suite else [suite]
                    if gone := next((n for n in names if n not in stored), None):
                        why = f"no compliance suite named {gone!r} (steward compliance apply FILE)"
                        problems.append((("transitions", i, "gates", g, "compliance", "suite"), why))
                if gate.monitor is not None and (gone := missing(gate.monitor.monitor)):
                    problems.append(
                        (("transitions", i, "gates", g, "monitor", "monitor"), f"no monitor named {gone!r}")
                    )
                metric = gate.metric.metric if gate.metric else gate.champion.metric if gate.champion else None
                for model, names in recorded.items():
                    if metric is not None and metric not in names:
                        problems.append((("transitions", i, "gates", g, gate.kind, "metric"),
                                         f"a gate on metric {metric!r}, which no version of {model} records "
                                         f"(they record: {', '.join(sorted(names)) or 'no metrics'})"))  # fmt: skip
            for a, action in enumerate(t.actions):
                names = action.notify.channels if action.notify else [action.ticket.channel] if action.ticket else []
                for name in names:
                    if self.alerts is not None and name not in channels:
                        problems.append((("transitions", i, "actions", a), f"no alert channel named {name!r}"))
                ticket = action.ticket.channel if action.ticket is not None else None
                if ticket is not None and ticket in channels and channels[ticket].type != "ticket":
                    kind = channels[ticket].type
                    path = ("transitions", i, "actions", a, "ticket", "channel")
                    problems.append((path, f"channel {ticket!r} is a {kind} channel, not a ticket channel"))
                if action.retrain is not None:
                    for model, binding in defn.models.items():
                        if binding.retrain is None:
                            why = f"transition {t.label!r} retrains, but {model} declares no 'retrain'"
                            problems.append((("models", model), why))
        return problems

    def _bind(
        self,
        conn: Any,
        model: str,
        defn: LifecycleDefinition,
        parameters: dict[str, float],
        actor: str,
        retrain: dict[str, Any] | None = None,
    ) -> None:
        before = lifecycle_repo.bind(conn, model, defn.name, parameters, retrain)
        after = {"lifecycle": defn.name, "parameters": parameters, "retrain": retrain}
        if before != after:
            event_repo.append_event(
                conn, actor=actor, action="lifecycle.assigned", model=model, details={"before": before, "after": after}
            )
        stages = set(defn.stage_names)
        aliases = {a.version: a.alias for a in self.catalog.list_aliases(model) if a.alias in stages}
        for summary in self.catalog.list_versions(model)[0]:
            if lifecycle_repo.position(conn, model, summary.version) is None:
                stage = aliases.get(summary.version, defn.initial_stage)
                lifecycle_repo.set_position(conn, model, summary.version, defn.name, stage)

    def get(self, name: str) -> Lifecycle:
        with self.db.read() as conn:
            found = lifecycle_repo.get_lifecycle(conn, name)
        if found is None:
            raise NotFound(f"no life cycle named {name!r}", details={"lifecycle": name})
        return found

    def list(self) -> list[Lifecycle]:
        with self.db.read() as conn:
            return lifecycle_repo.list_lifecycles(conn)

    def governed(self, model: str) -> tuple[LifecycleDefinition, dict[str, float]]:
        """The model's definition and its thresholds (the definition's, overridden by the model's)."""
        with self.db.read() as conn:
            found = self._governed_on(conn, model)
        if found is None:
            self.catalog.get_model(model)
            raise InvalidArgument(
                f"model {model!r} is not under a life cycle: list it under 'models' in a definition and "
                "`steward lifecycle apply FILE`, or `steward lifecycle assign`",
                details={"model": model},
            )
        return found

    def _governed_on(self, conn: Any, model: str) -> tuple[LifecycleDefinition, dict[str, float]] | None:
        row = lifecycle_repo.governing(conn, model)
        if row is None:
            return None
        defn = self._definition(row.lifecycle, row.revision, row.definition)
        return defn, {**defn.parameters, **(row.parameters or {})}

    def _definition(self, name: str, revision: int, body: dict[str, Any]) -> LifecycleDefinition:
        """Parsed definitions, kept per revision: a round over a thousand models parses each once."""
        cached = self._parsed.get(name)
        if cached is None or cached[0] != revision:
            cached = (revision, LifecycleDefinition.model_validate(body))
            self._parsed[name] = cached
        return cached[1]

    def status(self, model: str) -> LifecycleStatus:
        self.catalog.get_model(model)
        with self.db.read() as conn:
            row = lifecycle_repo.binding(conn, model)
            lifecycle = row.lifecycle if row is not None else None
            found = lifecycle_repo.get_lifecycle(conn, lifecycle) if lifecycle else None
            parameters = {**found.definition.parameters, **(row.parameters or {})} if found and row else {}
            return LifecycleStatus(
                model=model,
                lifecycle=lifecycle,
                parameters=parameters,
                positions=lifecycle_repo.positions(conn, model) if lifecycle else [],
                runs=lifecycle_repo.list_runs(conn, model=model, limit=20),
            )

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

    def _evaluate(
        self, model: str, version: int, transition: Transition, parameters: dict[str, float]
    ) -> list[GateResult]:
        if not transition.gates:
            return []
        mv = self.catalog.get_version(ModelRef(model, version=version))
        facts = self._facts(mv, transition)
        results = []
        for gate in transition.gates:
            try:
                results.append(gates.evaluate(gate, parameters, facts))
            except Exception as e:  # noqa: BLE001 - a broken gate fails closed, with its reason
                results.append(GateResult(gate=gates.label(gate), passed=False, reason=f"could not evaluate: {e}"))
        return results

    def _facts(self, mv: ModelVersion, transition: Transition) -> gates.Facts:
        champion = None
        stages = {g.champion.stage for g in transition.gates if g.champion is not None}
        if stages:
            stage = stages.pop()
            with self.db.read() as conn:
                holders = [p for p in lifecycle_repo.in_stage(conn, mv.name, stage) if p.version != mv.version]
            if holders:
                other = self.catalog.get_version(ModelRef(mv.name, version=holders[0].version))
                champion = (other.version, dict(other.metrics))
        names = [g.monitor.monitor for g in transition.gates if g.monitor is not None]
        latest = self.monitors.latest(names)
        monitors: dict[str, gates.MonitorFact | None] = {
            name: gates.MonitorFact(*latest[name]) if name in latest else None for name in names
        }
        arms: dict[str, gates.ArmsFact] = {}
        for g in transition.gates:
            if g.challenger is not None:
                arms[gates.label(g)] = self._arms(mv, g.challenger)
        source = mv.source
        provenance = {
            "training_data": any(d.role == "training" for d in mv.datasets),
            "git_commit": bool(source and source.commit),
            "clean_tree": bool(source and source.commit and source.dirty is False),
            "environment": bool(mv.requirements.packages),
            "signature": bool(mv.signature.inputs),
        }
        return gates.Facts(now=self.clock(), metrics=dict(mv.metrics), provenance=provenance, champion=champion,
                           monitors=monitors, arms=arms, compliance=self._compliance(mv, transition))  # fmt: skip

    def _compliance(self, mv: ModelVersion, transition: Transition) -> dict[str, gates.ComplianceFact | None]:
        """The latest run of each suite the gates name; a gate that may run its suite runs it when the version
        has no recent enough run (the run is stored and audited like one started by hand)."""
        from modelsteward.domain.monitoring import parse_duration

        found: dict[str, gates.ComplianceFact | None] = {}
        for g in transition.gates:
            if g.compliance is None or self.compliance is None:
                continue
            run = self.compliance.latest(mv.name, mv.version, g.compliance.suite)
            stale = run is None or self.clock() - run.finished_at > parse_duration(g.compliance.max_age)
            if stale and g.compliance.run:
                run = self.compliance.run(mv.ref, g.compliance.suite, actor="lifecycle")
            found[g.compliance.suite] = None if run is None else gates.ComplianceFact(
                run.id, run.status, run.finished_at, [f"{r.name}: {r.summary}" for r in run.failed]
            )  # fmt: skip
        return found

    def _arms(self, mv: ModelVersion, gate: ChallengerGate) -> gates.ArmsFact:
        """What each arm of the deployment did in the window: correctness once labelled, or KPI values."""
        from modelsteward.domain.monitoring import Target, parse_duration
        from modelsteward.monitoring.window import load_with_feedback

        end = self.clock()
        start = end - parse_duration(gate.window)
        if self.monitors.before_run is not None:
            self.monitors.before_run()  # what this process served and was told is on disk before it is read
        if gate.kpi is not None:
            points = self.monitors.kpi_series(gate.kpi, gate.deployment, start=start, end=end)
            mine = f"{mv.name}/{mv.version}"
            by_arm: dict[str, list[float]] = {}
            for p in points:
                if p.arm is not None:
                    by_arm.setdefault(p.arm, []).append(p.value)
            others = sorted(a for a in by_arm if a != mine and a.startswith(f"{mv.name}/"))
            champion = others[-1] if others else None
            version = int(champion.rsplit("/", 1)[1]) if champion and champion.rsplit("/", 1)[1].isdigit() else None
            return gates.ArmsFact(version, by_arm.get(champion, []) if champion else [], by_arm.get(mine, []))
        rows = load_with_feedback(self.monitors.inference_root, self.monitors.feedback_root,
                                  Target(deployment=gate.deployment), start, end).rows  # fmt: skip
        predicted, actual = f"out_{gate.prediction}", gate.actual
        if rows.empty or predicted not in rows.columns or actual not in rows.columns:
            return gates.ArmsFact(None, [], [])
        correct = _matches(rows[predicted], rows[actual]).astype(float)
        champion_rows = rows["arm"] == "champion"
        versions = rows.loc[champion_rows & (rows["model"] == mv.name), "version"]
        champion_version = int(versions.mode().iloc[0]) if not versions.empty else None
        mine = (rows["model"] == mv.name) & (rows["version"] == mv.version) & (rows["arm"] != "champion")
        return gates.ArmsFact(champion_version, correct[champion_rows].tolist(), correct[mine].tolist())

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

    def _signal(self, signal: LifecycleSignal) -> None:
        if self.alerts is None:
            return
        try:
            self.alerts.evaluate_lifecycle(signal)
        except StewardError as e:
            log.warning("life-cycle alert %s not raised: %s", signal.subject, e.message)

    def _lifecycle_of(self, model: str) -> str:
        with self.db.read() as conn:
            row = lifecycle_repo.binding(conn, model)
        return row.lifecycle if row is not None else "?"

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

    def _run_signal(
        self, run: Run, problem: Any, *, resolved: bool = False, error: str | None = None
    ) -> LifecycleSignal:
        titles = {
            "sla": f"{run.model}/{run.version} has waited longer than its SLA for {run.transition} ({run.status})",
            "failed": f"{run.model}/{run.version} could not move {run.from_stage} -> {run.to_stage}: {error}",
            "stalled": f"the life cycle of {run.model}/{run.version} is stuck in {run.transition}: {error}",
        }
        return LifecycleSignal(
            lifecycle=run.lifecycle, model=run.model, version=run.version, problem=problem, subject=f"run:{run.id}",
            title=titles[problem], resolved=resolved,
            details={"run": run.id, "transition": run.transition, "status": run.status, "error": error},
            severity="critical" if problem == "failed" else "warning",
        )  # fmt: skip

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

    # -- the scheduler's round ----------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> dict[str, int]:
        """One round (``steward up``'s scheduler calls it each second on the lease holder): react to
        monitor breaches and alerts, fire schedules, alert on runs past their SLA, and resume runs and
        jobs that a stopped process left behind. Returns what it did."""
        now = now or self.clock()
        done = {"events": 0, "started": 0, "scheduled": 0, "sla": 0, "resumed": 0, "reaped": 0}
        self._react(done)
        self._schedules(now, done)
        self._watch(now, done)
        return done

    _EVENTS = ("monitor.run", "alert.fired")

    def _react(self, done: dict[str, int], *, batch_size: int = 1000) -> None:
        """Every monitor result and alert since the bookmark, in batches, until caught up."""
        with self.db.read() as conn:
            mark = lifecycle_repo.mark(conn, "events")
            if mark is None:
                with self.db.write() as writer:  # from now on: history does not replay
                    lifecycle_repo.set_mark(writer, "events", seq=event_repo.generation(conn))
                return
        seq = int(mark.seq or 0)
        while True:
            with self.db.read() as conn:
                batch = event_repo.events_after(conn, seq, actions=self._EVENTS, limit=batch_size)
            for event in batch:
                done["events"] += 1
                done["started"] += self._react_to(event)
            if not batch:
                return
            # The bookmark moves once per batch: a crash in the middle replays the batch, and each event's
            # runs carry its sequence number in their trigger, so a replayed event starts nothing twice.
            seq = batch[-1].seq
            with self.db.write() as conn:
                lifecycle_repo.set_mark(conn, "events", seq=seq)
            if len(batch) < batch_size:
                return

    def _react_to(self, event: Any) -> int:
        if event.action == "monitor.run" and event.details.get("status") == "breach":
            monitor = str(event.details.get("monitor"))
            if self.monitors.status_before(monitor, int(event.details.get("run") or 0)) == "breach":
                return 0  # still the same breach: a monitor that keeps breaching fires its trigger once
            return self._fire("monitor_breach", monitor, None, f"event:monitor_breach:{monitor}#{event.seq}")
        if event.action == "alert.fired":
            rule = str(event.details.get("rule"))
            return self._fire("alert", None, rule, f"event:alert:{rule}#{event.seq}")
        return 0

    def _fire(self, kind: str, monitor: str | None, rule: str | None, trigger: str) -> int:
        """Start the transitions an event triggers, for the versions in their from-stages; once per event."""
        watched = monitor
        models: set[str] = set()
        if rule is not None and self.alerts is not None:
            try:
                spec = self.alerts.get_rule(rule).rule
            except NotFound:
                return 0
            watched = spec.monitor
            if spec.kpi is not None and spec.scope is not None:
                models |= self._models_of_scope(spec.scope)
        if watched is not None:
            models |= self.models_of_monitor(watched)
        started = 0
        for model in sorted(models):
            with self.db.read(single_statement=True) as conn:
                governed = self._governed_on(conn, model)
            if governed is None:
                continue
            defn, parameters = governed
            for t in defn.transitions:
                trig = t.trigger
                if trig is None or trig.event != kind:
                    continue
                wanted_monitor = trig.monitor.replace("{model}", model) if trig.monitor else None
                wanted_rule = trig.rule.replace("{model}", model) if trig.rule else None
                if (kind == "monitor_breach" and wanted_monitor not in (None, monitor)) or (
                    kind == "alert" and wanted_rule not in (None, rule)
                ):
                    continue
                started += self._start_for_stage(model, defn, t, trigger, parameters)
        return started

    def _start_for_stage(
        self,
        model: str,
        defn: LifecycleDefinition,
        t: Transition,
        trigger: str,
        parameters: dict[str, float] | None = None,
    ) -> int:
        started = 0
        with self.db.read() as conn:
            holders = [p for p in lifecycle_repo.positions(conn, model) if p.stage in t.from_ or "*" in t.from_]
            already = {r.version for r in lifecycle_repo.runs_with_trigger(conn, model, trigger)}
        for p in holders:
            if p.version in already:
                continue  # this event (or schedule fire) started it before a restart
            try:
                self._start(model, p.version, defn, t, trigger=trigger, actor="lifecycle", parameters=parameters)
                started += 1
            except StewardError as e:
                log.warning("%s: %s/%s not moved by %s: %s", trigger, model, p.version, t.label, e.message)
        return started

    def models_of_monitor(self, name: str) -> set[str]:
        target = self.monitors.target_of(name)
        if not target:
            return set()
        if target.get("model"):
            return {ModelRef.parse(str(target["model"])).name}
        return self._models_of_scope(str(target.get("deployment")), step=target.get("step"))

    def _models_of_scope(self, scope: str, *, step: str | None = None) -> set[str]:
        """The models a deployment routes to (its arms, or its pipeline's model steps, or one step's);
        or a model's name."""
        try:
            deployment = self.deployments.get(scope)
        except NotFound:
            try:
                return {self.catalog.get_model(scope).name}
            except NotFound:
                return set()
        names = {ModelRef.parse(ref).name for ref in deployment.spec.refs}
        for item in (deployment.spec.pipeline or {}).get("steps", []):
            if isinstance(item, dict) and item.get("model") and (step is None or item.get("name") == step):
                names.add(ModelRef.parse(str(item["model"])).name)
        return names

    def _schedules(self, now: datetime, done: dict[str, int]) -> None:
        from modelsteward.monitoring.scheduler import next_fire

        with self.db.read() as conn:
            rows = lifecycle_repo.bindings(conn)
            defs = {d.name: d.definition for d in lifecycle_repo.list_lifecycles(conn)}
        for row in rows:
            defn = defs.get(row.lifecycle)
            if defn is None:
                continue
            for t in defn.transitions:
                if t.trigger is None or t.trigger.schedule is None:
                    continue
                key = f"schedule:{row.model}:{t.label}"
                with self.db.read() as conn:
                    mark = lifecycle_repo.mark(conn, key)
                after = _utc(mark.at) if mark is not None and mark.at is not None else _utc(row.applied_at)
                if next_fire(t.trigger.schedule, after) > now:
                    continue
                with self.db.write() as conn:
                    lifecycle_repo.set_mark(conn, key, at=now)
                done["scheduled"] += 1
                done["started"] += self._start_for_stage(
                    row.model, defn, t, f"schedule:{t.trigger.schedule}@{now.isoformat()}"
                )

    def _watch(self, now: datetime, done: dict[str, int], *, stale_after: float = 300.0) -> None:
        if self.jobs is not None:
            for job in self.jobs.reap(now):
                done["reaped"] += 1
                self._job_done(job)
        with self.db.read() as conn:
            runs = lifecycle_repo.open_runs(conn)
        for run in runs:
            defn, _ = self.governed(run.model)
            try:
                transition = defn.transition(run.transition)
            except KeyError:
                continue
            if run.status == "waiting_approval" and transition.sla is not None:
                from modelsteward.domain.monitoring import parse_duration

                if now - run.created_at > parse_duration(transition.sla):
                    with self.db.write() as conn:
                        first = lifecycle_repo.mark(conn, f"sla:{run.id}") is None
                        if first:
                            lifecycle_repo.set_mark(conn, f"sla:{run.id}", at=now)
                    if first:
                        done["sla"] += 1
                        self._signal(self._run_signal(run, "sla"))
            elif run.status == "acting" and (now - run.updated_at).total_seconds() > stale_after:
                if self.jobs is not None and any(j.run_id == run.id for j in self.jobs.list(status="running")):
                    continue  # waiting for its job, which has its own timeout
                done["resumed"] += 1
                try:
                    self.process(run.id, actor="lifecycle")
                except StewardError as e:
                    self._signal(self._run_signal(run, "stalled", error=e.message))

    # -- approvals ------------------------------------------------------------------------------------

    def decide(self, ref: str, *, role: str, decision: str, comment: str, actor: str) -> Run:
        """Approve or reject the version's transition waiting for approval. A refusal (the author, a
        user without the role, a second approval by the same person) is recorded, then raised."""
        if role not in ROLES:
            raise InvalidArgument(f"unknown role {role!r} (roles: {', '.join(ROLES)})", details={"field": "role"})
        parsed = ModelRef.parse(ref)
        mv = self.catalog.get_version(parsed) if parsed.version or parsed.alias else None
        with self.db.read() as conn:
            runs = lifecycle_repo.open_runs(conn, model=parsed.name, version=mv.version if mv else None)
        waiting = [r for r in runs if r.status == "waiting_approval"]
        if not waiting:
            raise Conflict(
                f"no transition of {ref} is waiting for approval",
                details={"ref": ref, "open_runs": [r.id for r in runs]},
            )
        run = waiting[0]
        version = mv or self.catalog.get_version(ModelRef(run.model, version=run.version))
        defn, _ = self.governed(run.model)
        transition = defn.transition(run.transition)
        reason = self._refusal(run, transition, version, role, actor)
        with self.db.write() as conn:
            lifecycle_repo.add_approval(
                conn, run.id, principal=actor, role=role, decision=decision, comment=comment,
                accepted=reason is None, reason=reason or "",
            )  # fmt: skip
            action = "lifecycle.approval_refused" if reason else f"lifecycle.{decision.removesuffix('e')}ed"
            event_repo.append_event(
                conn, actor=actor, action=action, model=run.model, version=run.version,
                details={"run": run.id, "transition": run.transition, "role": role, "comment": comment,
                         "reason": reason},
            )  # fmt: skip
            if reason is None and decision == "reject":
                lifecycle_repo.update_run(
                    conn, run.id, status="rejected", error=f"rejected by {actor} ({role}): {comment}"
                )
        if reason is not None:
            raise Forbidden(reason, details={"run": run.id, "role": role, "user": actor})
        return self.process(run.id, actor=actor)

    def _refusal(self, run: Run, transition: Transition, version: ModelVersion, role: str, actor: str) -> str | None:
        needed = {a.role for a in transition.approvals}
        if role not in needed:
            return f"transition {run.transition!r} needs approval by {', '.join(sorted(needed))}, not {role}"
        if version.created_by is not None and version.created_by == actor:
            return f"separation of duties: {actor} registered {run.model}/{run.version} and may not approve it"
        if not self.has_role(actor, role, model=run.model):
            return f"{actor} does not hold the role {role} for {run.model}"
        if any(a.accepted and a.user == actor for a in run.approvals):
            return f"separation of duties: {actor} has already signed this transition"
        return None

    # -- roles ----------------------------------------------------------------------------------------

    def grant(
        self, principal: str, role: str, *, model: str | None = None, unit: str | None = None, actor: str
    ) -> RoleGrant:
        scope = _scope(role, model, unit)
        if model is not None:
            self.catalog.get_model(model)
        with self.db.write() as conn:
            if lifecycle_repo.grant(conn, principal, role, scope, actor=actor):
                event_repo.append_event(
                    conn, actor=actor, action="role.granted", model=model,
                    details={"principal": principal, "role": role, "scope": scope},
                )  # fmt: skip
            found = [g for g in lifecycle_repo.grants(conn, principal) if g.role == role and g.scope == scope]
        return found[0]

    def revoke(
        self, principal: str, role: str, *, model: str | None = None, unit: str | None = None, actor: str
    ) -> None:
        scope = _scope(role, model, unit)
        with self.db.write() as conn:
            if not lifecycle_repo.revoke(conn, principal, role, scope):
                raise NotFound(f"{principal} holds no {role} role in scope {scope}", details={"principal": principal})
            event_repo.append_event(
                conn, actor=actor, action="role.revoked", model=model,
                details={"principal": principal, "role": role, "scope": scope},
            )  # fmt: skip

    def grants(self, principal: str | None = None) -> list[RoleGrant]:
        with self.db.read() as conn:
            return lifecycle_repo.grants(conn, principal)

    def has_role(self, principal: str, role: str, *, model: str | None = None) -> bool:
        scopes = {"global"}
        if model is not None:
            scopes.add(f"model:{model}")
            unit = self.catalog.get_model(model).business_unit
            if unit:
                scopes.add(f"unit:{unit}")
        return any(g.role == role and g.scope in scopes for g in self.grants(principal))


def _scope(role: str, model: str | None, unit: str | None) -> str:
    if role not in ROLES:
        raise InvalidArgument(f"unknown role {role!r} (roles: {', '.join(ROLES)})", details={"field": "role"})
    if model is not None and unit is not None:
        raise InvalidArgument("grant a role for a model or for a business unit, not both", details={"field": "scope"})
    if model is not None:
        check_name(model, field="model")
        return f"model:{model}"
    return f"unit:{unit}" if unit is not None else "global"


def _matches(predicted: Any, actual: Any) -> Any:
    """Row by row, is the prediction the actual label? Numbers and booleans compare as numbers (True == 1)."""
    import pandas as pd

    left = pd.to_numeric(predicted.map(lambda v: int(v) if isinstance(v, bool) else v), errors="coerce")
    right = pd.to_numeric(actual.map(lambda v: int(v) if isinstance(v, bool) else v), errors="coerce")
    if left.notna().all() and right.notna().all():
        return left == right
    return predicted.astype(str) == actual.astype(str)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _approved(run: Run, transition: Transition) -> bool:
    accepted = [a for a in run.approvals if a.accepted and a.decision == "approve"]
    return all(sum(1 for a in accepted if a.role == need.role) >= need.count for need in transition.approvals)


def _allowed(defn: LifecycleDefinition, stage: str) -> str:
    targets = sorted({t.to for t in defn.transitions if stage in t.from_ or "*" in t.from_})
    return f" (from {stage!r} it can go to: {', '.join(targets)})" if targets else f" ({stage!r} is a final stage)"


def _path(path: tuple[Any, ...]) -> str:
    from modelsteward.domain.yaml_source import format_path

    return format_path(path)
