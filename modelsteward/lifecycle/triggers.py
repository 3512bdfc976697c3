"""The scheduler's round: events and schedules that start runs, runs past their SLA, runs and jobs to resume."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from modelsteward.domain.lifecycle import LifecycleDefinition, Transition
from modelsteward.domain.refs import ModelRef
from modelsteward.errors import NotFound, StewardError
from modelsteward.lifecycle.runs import Runs
from modelsteward.store import event_repo, lifecycle_repo

log = logging.getLogger("modelsteward.lifecycle")


class Triggers(Runs):
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


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
