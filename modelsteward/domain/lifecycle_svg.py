"""A life-cycle definition drawn as inline SVG (stages as boxes in a row, transitions as labelled arrows), with
a model's versions marked on the stages that hold them: the dashboard's picture of where a model stands."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape

from modelsteward.domain.lifecycle import LifecycleDefinition, LifecycleStatus, Transition

BOX_W, BOX_H, GAP = 150, 64, 110
MARGIN_X, TOP = 24, 92  # room above the row for self-loops and their labels
ARC_STEP = 34  # how much deeper each longer arc below the row goes
INK, MUTED, LINE = "#1f2933", "#52606d", "#7b8794"
CURRENT_FILL, CURRENT_STROKE, FILL = "#fde68a", "#b45309", "#f7f8fa"


@dataclass(frozen=True, slots=True)
class Arrow:
    """One drawn arrow: every transition between the same two stages shares it."""

    source: int
    target: int
    labels: tuple[str, ...]
    details: tuple[str, ...]


def describe(t: Transition) -> str:
    """A transition in words: what starts it, its gates, approvals and actions."""
    parts = []
    if t.trigger is not None:
        parts.append(f"on {t.trigger.event}" if t.trigger.event else f"every {t.trigger.schedule}")
    else:
        parts.append("on request")
    if t.gates:
        parts.append(f"{len(t.gates)} gate{'s' if len(t.gates) > 1 else ''}")
    if t.approvals:
        parts.append("approval by " + ", ".join(a.role + (f" x{a.count}" if a.count > 1 else "") for a in t.approvals))
    actions = [next(k for k, v in a.model_dump(exclude_none=True).items()) for a in t.actions]
    if actions:
        parts.append("then " + ", ".join(actions))
    return "; ".join(parts)


def arrows(defn: LifecycleDefinition) -> list[Arrow]:
    """The arrows to draw, in the definition's order; a wildcard source means every other stage."""
    index = {name: i for i, name in enumerate(defn.stage_names)}
    merged: dict[tuple[int, int], tuple[list[str], list[str]]] = {}
    for t in defn.transitions:
        sources = [s for s in defn.stage_names if s != t.to] if "*" in t.from_ else t.from_
        for source in sources:
            if source not in index or t.to not in index:
                continue
            labels, details = merged.setdefault((index[source], index[t.to]), ([], []))
            labels.append(t.label)
            details.append(f"{t.label}: {source} → {t.to}, {describe(t)}")
    return [Arrow(s, d, tuple(lab), tuple(det)) for (s, d), (lab, det) in merged.items()]


def versions_by_stage(status: LifecycleStatus | None) -> dict[str, list[int]]:
    held: dict[str, list[int]] = {}
    for p in status.positions if status is not None else []:
        held.setdefault(p.stage, []).append(p.version)
    return {stage: sorted(vs, reverse=True) for stage, vs in held.items()}


def summary(defn: LifecycleDefinition, status: LifecycleStatus | None) -> str:
    """One sentence for the picture's title: where the versions are."""
    held = versions_by_stage(status)
    where = [f"{', '.join(f'v{v}' for v in held[s])} in {s}" for s in defn.stage_names if held.get(s)]
    model = f" of {status.model}" if status is not None else ""
    return f"Life cycle {defn.name}{model}: " + ("; ".join(where) if where else "no version has entered it yet")


def lifecycle_svg(defn: LifecycleDefinition, status: LifecycleStatus | None = None, *, id: str = "lifecycle") -> str:
    """The diagram as an ``<svg role="img">`` element, titled by :func:`summary`; ``id`` prefixes the ids it
    defines (its title, description and arrowhead), so that a page may hold more than one."""
    held = versions_by_stage(status)
    drawn = arrows(defn)
    n = len(defn.stages)

    def x(i: int) -> float:
        return MARGIN_X + i * (BOX_W + GAP)

    spans = [abs(a.target - a.source) for a in drawn if not (a.target == a.source + 1 or a.target == a.source)]
    depth = max(spans, default=0)
    width = 2 * MARGIN_X + n * BOX_W + (n - 1) * GAP
    height = TOP + BOX_H + (depth * ARC_STEP + 40 if depth else 24)
    mid = TOP + BOX_H / 2
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lifecycle" role="img" '
        f'aria-labelledby="{id}-title {id}-desc" viewBox="0 0 {width} {height:.0f}" '
        f'width="{width}" height="{height:.0f}" font-family="system-ui, sans-serif" font-size="14">',
        f'<title id="{id}-title">{escape(summary(defn, status))}</title>',
        f'<desc id="{id}-desc">{escape(_description(defn, drawn))}</desc>',
        f'<defs><marker id="{id}-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" '
        f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{LINE}"/></marker></defs>',
    ]
    for a in drawn:
        out.append(_arrow(a, x, mid, id))
    for i, stage in enumerate(defn.stages):
        versions = held.get(stage.name, [])
        current = bool(versions)
        classes = "stage current" if current else "stage"
        label = escape(stage.name)
        out.append(f'<g class="{classes}" data-stage="{label}">')
        if stage.description:
            out.append(f"<title>{label}: {escape(stage.description)}</title>")
        out.append(
            f'<rect x="{x(i)}" y="{TOP}" width="{BOX_W}" height="{BOX_H}" rx="8" '
            f'fill="{CURRENT_FILL if current else FILL}" stroke="{CURRENT_STROKE if current else LINE}" '
            f'stroke-width="{3 if current else 1.5}"/>'
        )
        centre = x(i) + BOX_W / 2
        if versions:
            out.append(f'<text x="{centre}" y="{TOP + 26}" text-anchor="middle" font-weight="700" fill="{INK}">'
                       f"{label}</text>")  # fmt: skip
            shown = ", ".join(f"v{v}" for v in versions[:6]) + (" …" if len(versions) > 6 else "")
            out.append(f'<text class="versions" x="{centre}" y="{TOP + 48}" text-anchor="middle" '
                       f'fill="{CURRENT_STROKE}" font-weight="700">{shown}</text>')  # fmt: skip
        else:
            out.append(f'<text x="{centre}" y="{mid + 5}" text-anchor="middle" fill="{INK}">{label}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


def _description(defn: LifecycleDefinition, drawn: list[Arrow]) -> str:
    stages = "Stages: " + ", ".join(defn.stage_names) + "."
    moves = " ".join(d + "." for a in drawn for d in a.details)
    return f"{stages} Transitions: {moves}" if moves else stages


def _arrow(a: Arrow, pos: Callable[[int], float], mid: float, id: str) -> str:
    """A straight arrow to the next stage, a loop above a stage to itself, an arc below the row otherwise."""
    label = escape(" / ".join(a.labels))
    style = f'fill="none" stroke="{LINE}" stroke-width="1.5" marker-end="url(#{id}-arrow)"'
    tip = f"<title>{escape('; '.join(a.details))}</title>"
    if a.target == a.source:  # a loop over the box, e.g. retrain: production -> production
        left = pos(a.source) + BOX_W * 0.3
        right = pos(a.source) + BOX_W * 0.7
        path = f"M{left},{TOP} C{left - 10},{TOP - 52} {right + 10},{TOP - 52} {right},{TOP - 2}"
        text = (f'<text x="{(left + right) / 2}" y="{TOP - 46}" text-anchor="middle" font-size="13" '
                f'fill="{MUTED}">{label}</text>')  # fmt: skip
    elif a.target == a.source + 1:
        start = pos(a.source) + BOX_W
        end = pos(a.target) - 2
        path = f"M{start},{mid} L{end},{mid}"
        text = (f'<text x="{(start + end) / 2}" y="{mid - 8}" text-anchor="middle" font-size="13" '
                f'fill="{MUTED}">{label}</text>')  # fmt: skip
    else:  # a skip forward or a move back: an arc under the row, deeper for longer spans
        forward = a.target > a.source
        start = pos(a.source) + BOX_W * (0.6 if forward else 0.4)
        end = pos(a.target) + BOX_W * (0.4 if forward else 0.6)
        bottom = TOP + BOX_H
        dip = bottom + abs(a.target - a.source) * ARC_STEP
        path = f"M{start},{bottom} C{start},{dip} {end},{dip} {end},{bottom + 2}"
        text = (f'<text x="{(start + end) / 2}" y="{bottom + (dip - bottom) * 0.75 + 14}" text-anchor="middle" '
                f'font-size="13" fill="{MUTED}">{label}</text>')  # fmt: skip
    return (
        f'<g class="transition" data-from="{a.source}" data-to="{a.target}">{tip}<path d="{path}" {style}/>{text}</g>'
    )
