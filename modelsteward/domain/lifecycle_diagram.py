"""A life-cycle definition as a Mermaid state diagram, with a model's versions marked on their stages."""

from __future__ import annotations

from modelsteward.domain.lifecycle import LifecycleDefinition, LifecycleStatus


def _id(stage: str) -> str:
    return "s_" + stage.replace("-", "_")


def mermaid(defn: LifecycleDefinition, status: LifecycleStatus | None = None) -> str:
    """``stateDiagram-v2`` text: stages, transitions labelled with their trigger, gates and approvals;
    with ``status``, each stage lists the model's versions in it and the occupied stages are highlighted."""
    versions: dict[str, list[int]] = {}
    if status is not None:
        for p in status.positions:
            versions.setdefault(p.stage, []).append(p.version)
    lines = ["stateDiagram-v2", f"    [*] --> {_id(defn.initial_stage)}"]
    for stage in defn.stages:
        label = stage.name
        if versions.get(stage.name):
            label += " (" + ", ".join(f"v{v}" for v in sorted(versions[stage.name])) + ")"
        lines.append(f'    state "{label}" as {_id(stage.name)}')
    for t in defn.transitions:
        parts = [t.name or ""]
        if t.trigger is not None:
            parts.append(f"on {t.trigger.event}" if t.trigger.event else f"every {t.trigger.schedule}")
        if t.gates:
            parts.append(f"{len(t.gates)} gate{'s' if len(t.gates) > 1 else ''}")
        if t.approvals:
            parts.append(
                "approval: " + ", ".join(f"{a.role}" + (f" x{a.count}" if a.count > 1 else "") for a in t.approvals)
            )
        text = "; ".join(p for p in parts if p).replace(":", " -").replace('"', "'")
        sources = defn.stage_names if "*" in t.from_ else t.from_
        for source in sources:
            if source == t.to:
                continue
            lines.append(f"    {_id(source)} --> {_id(t.to)}" + (f": {text}" if text else ""))
    occupied = [s for s in defn.stage_names if versions.get(s)]
    if occupied:
        lines.append("    classDef current fill:#fde68a,stroke:#b45309,stroke-width:2px")
        lines.append("    class " + ",".join(_id(s) for s in occupied) + " current")
    return "\n".join(lines) + "\n"
