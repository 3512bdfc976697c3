"""The auditor's report as data: sections of blocks (text, facts, tables, charts), renderer-neutral.

The governance service fills a ``Report`` from the store; ``governance/report_render.py`` turns the same
``Report`` into an offline HTML page and into a PDF, so both always say the same thing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

Status = Literal["pass", "fail", "warn", "info", "none"]


class Text(BaseModel):
    """A paragraph of plain text (no markup: renderers escape it)."""

    type: Literal["text"] = "text"
    text: str
    status: Status = "none"  # a finding paragraph is drawn as a coloured note


class Facts(BaseModel):
    """Label/value pairs, drawn as a two-column table (a model card, a dataset's fingerprint)."""

    type: Literal["facts"] = "facts"
    items: list[tuple[str, str]]
    caption: str = ""


class Table(BaseModel):
    """A table of strings; ``statuses`` (one per row, optional) colours a row's pass/fail."""

    type: Literal["table"] = "table"
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""
    statuses: list[Status] = Field(default_factory=list)
    empty: str = "none recorded"  # what to say when there are no rows


class Series(BaseModel):
    name: str
    x: list[str | float]  # ISO timestamps or category labels or numbers
    y: list[float | None]


class Marker(BaseModel):
    """A vertical line on a time axis (a deployment change, an alias move)."""

    x: str
    label: str


class Chart(BaseModel):
    """A line or bar chart; the renderers also print its figures as a table for readers without scripts."""

    type: Literal["chart"] = "chart"
    title: str
    kind: Literal["line", "bar"] = "line"
    x_label: str = ""
    y_label: str = ""
    series: list[Series]
    markers: list[Marker] = Field(default_factory=list)
    threshold: float | None = None  # a horizontal line (a gate's threshold, 0.8 for the four-fifths rule)


Block = Annotated[Text | Facts | Table | Chart, Field(discriminator="type")]


class Section(BaseModel):
    id: str  # an anchor: "model-card", "training-data", ...
    title: str
    blocks: list[Block] = Field(default_factory=list)
    status: Status = "none"  # the section's verdict where it has one (compliance, audit trail)


class Requirement(BaseModel):
    """One row of the mapping table: a framework's requirement and the sections that answer it."""

    framework: str  # "SR 11-7" or "EU AI Act Annex IV"
    requirement: str
    sections: list[str]  # Section ids


class Report(BaseModel):
    title: str
    subject: str  # the resolved reference: "credit-risk/3"
    asked: str  # what the user asked for: "credit-risk@production as of 2026-03-01"
    as_of: datetime  # the point in time the report describes
    generated_at: datetime
    generated_by: str
    summary: list[tuple[str, str]] = Field(default_factory=list)  # the first screen: version, stage, verdicts
    sections: list[Section]
    mapping: list[Requirement] = Field(default_factory=list)

    def section(self, section_id: str) -> Section:
        return next(s for s in self.sections if s.id == section_id)
