"""The auditor's report rendered: ``render_html`` and ``render_pdf``, and the reading of a ``Report`` both share.

Both renderers take the same ``Report`` and lay it out in the same order (title block, summary, the table that maps
SR 11-7 and EU AI Act Annex IV requirements to sections, then the sections), so the HTML page and the PDF filed as
evidence always say the same thing. What they must agree on lives here: which summary values are verdicts, how a
chart's x values are read (a time axis or categories) and the figures table printed under every chart.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from modelsteward.domain.report import Chart, Report, Status
from modelsteward.errors import require

STATUS_LABEL: dict[str, str] = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "info": "INFO"}
# (strong, light) per status: badges and note borders use the first, row and note backgrounds the second
STATUS_COLOUR: dict[str, tuple[str, str]] = {
    "pass": ("#2f855a", "#f0fff4"),
    "fail": ("#c53030", "#fff5f5"),
    "warn": ("#b7791f", "#fffbea"),
    "info": ("#2b6cb0", "#ebf8ff"),
}
# Okabe-Ito: told apart by readers with colour-blindness, and in greyscale print
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
MAX_TABLE_POINTS = 30  # the PDF prints a chart's figures only up to this many rows; the HTML folds longer tables

_VERDICT_WORDS: dict[str, Status] = {
    **dict.fromkeys(("pass", "passed", "passing", "ok", "verified", "valid", "approved", "compliant"), "pass"),
    **dict.fromkeys(("fail", "failed", "failing", "broken", "invalid", "rejected", "tampered", "breach"), "fail"),
    **dict.fromkeys(("warn", "warning", "warnings", "pending", "partial"), "warn"),
}


def verdict(value: str) -> Status:
    """The status a summary value states by its first word (``"fail (2 of 9 tests)"`` -> ``"fail"``), else none."""
    first = re.match(r"\s*([A-Za-z]+)", value)
    return _VERDICT_WORDS.get(first.group(1).lower(), "none") if first else "none"


def format_datetime(value: datetime) -> str:
    """A timestamp in UTC (naive ones are taken as UTC, as the store keeps them)."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def parse_time(value: str | float) -> datetime | None:
    """An ISO date or timestamp as a naive UTC datetime, or None when ``value`` is not one."""
    if not isinstance(value, str) or not re.match(r"\d{4}-\d{2}-\d{2}", value):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def is_time_axis(chart: Chart) -> bool:
    """Whether every x value (and every marker) is a date: the chart then gets a date axis."""
    xs = [x for s in chart.series for x in s.x] + [m.x for m in chart.markers]
    return bool(xs) and all(parse_time(x) is not None for x in xs)


def format_x(value: str | float, *, time_axis: bool) -> str:
    if time_axis:
        moment = parse_time(value)
        if moment is not None:
            return moment.strftime("%Y-%m-%d") if moment.time() == datetime.min.time() else f"{moment:%Y-%m-%d %H:%M}"
    return format_y(value) if isinstance(value, float | int) else str(value)


def format_y(value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.6g}"


def chart_x_values(chart: Chart) -> list[str | float]:
    """The x values of all series, once each: in time order on a time axis, else in the order first seen."""
    xs = list(dict.fromkeys(x for s in chart.series for x in s.x))
    if is_time_axis(chart):
        xs.sort(key=lambda x: parse_time(x) or datetime.min)
    return xs


def chart_rows(chart: Chart) -> tuple[list[str], list[list[str]]]:
    """The figures table of a chart: one row per x value, one column per series (a dash where a series has none)."""
    time_axis = is_time_axis(chart)
    lookups = [dict(zip(s.x, s.y, strict=False)) for s in chart.series]
    columns = [chart.x_label or ("date" if time_axis else "x"), *[s.name for s in chart.series]]
    rows = [
        [format_x(x, time_axis=time_axis), *[format_y(values.get(x)) for values in lookups]]
        for x in chart_x_values(chart)
    ]
    return columns, rows


def chart_notes(chart: Chart) -> list[str]:
    """The chart's reference lines in words, printed under it (labels drawn on a plot can overlap)."""
    time_axis = is_time_axis(chart)
    notes = [f"{format_x(m.x, time_axis=time_axis)}: {m.label}" for m in chart.markers]
    if chart.threshold is not None:
        notes.append(f"threshold: {format_y(chart.threshold)}")
    return notes


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page that works offline (Plotly's JavaScript inlined once, no CDN).

    >>> Path("report.html").write_text(render_html(report), encoding="utf-8")   # doctest: +SKIP
    """
    # imported here because the renderers import the shared helpers above
    from modelsteward.governance.report_html import html_page

    return html_page(report)


def render_pdf(report: Report) -> bytes:
    """The report as an A4 PDF with an outline entry per section; needs ``pip install 'modelsteward[pdf]'``.

    >>> Path("report.pdf").write_bytes(render_pdf(report))                       # doctest: +SKIP
    """
    require("reportlab", "pdf")
    from modelsteward.governance.report_pdf import pdf_document

    return pdf_document(report)
