"""Gathering the facts a transition's gates are judged on (metrics, champion, monitors, arms, compliance)."""

from __future__ import annotations

from typing import Any

from modelsteward.domain.lifecycle import ChallengerGate, GateResult, Transition
from modelsteward.domain.records import ModelVersion
from modelsteward.domain.refs import ModelRef
from modelsteward.lifecycle import gates
from modelsteward.lifecycle.collaborators import Collaborators
from modelsteward.store import lifecycle_repo


class GateFacts(Collaborators):
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


def _matches(predicted: Any, actual: Any) -> Any:
    """Row by row, is the prediction the actual label? Numbers and booleans compare as numbers (True == 1)."""
    import pandas as pd

    left = pd.to_numeric(predicted.map(lambda v: int(v) if isinstance(v, bool) else v), errors="coerce")
    right = pd.to_numeric(actual.map(lambda v: int(v) if isinstance(v, bool) else v), errors="coerce")
    if left.notna().all() and right.notna().all():
        return left == right
    return predicted.astype(str) == actual.astype(str)
