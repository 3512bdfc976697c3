"""Life-cycle definitions: applying them, checking what they name, binding models to them, reading them back."""

from __future__ import annotations

from typing import Any

from modelsteward.domain.lifecycle import (
    Lifecycle,
    LifecycleDefinition,
    LifecycleStatus,
    ModelBinding,
    check_definition,
)
from modelsteward.errors import InvalidArgument, InvalidDefinition, NotFound
from modelsteward.lifecycle.collaborators import Collaborators
from modelsteward.store import event_repo, lifecycle_repo


class Definitions(Collaborators):
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


def _path(path: tuple[Any, ...]) -> str:
    from modelsteward.domain.yaml_source import format_path

    return format_path(path)
