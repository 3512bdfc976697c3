"""The auditor's report as an A4 PDF (reportlab): outline per section, "page N of M", charts drawn natively.

Imports reportlab at import time: reach it through ``report_render.render_pdf``, which gives the install hint first.
"""

from __future__ import annotations

import io
import math
from datetime import datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing, Group, Line, String
from reportlab.graphics.widgets.markers import makeMarker
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    KeepTogether,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    TableStyle,
)
from reportlab.platypus import (
    Table as RLTable,
)

from modelsteward.domain.report import Block, Chart, Facts, Report, Section, Status, Text
from modelsteward.governance.report_render import (
    MAX_TABLE_POINTS,
    PALETTE,
    STATUS_COLOUR,
    STATUS_LABEL,
    chart_notes,
    chart_rows,
    chart_x_values,
    format_datetime,
    format_x,
    is_time_axis,
    parse_time,
    verdict,
)

MARGIN = 18 * mm
WIDTH = A4[0] - 2 * MARGIN  # the frame's width: tables and charts span it
CHART_HEIGHT = 250
LEGEND_COLUMNS = 6  # series per legend row
GRID = colors.HexColor("#d9dee3")
HEAD = colors.HexColor("#f2f4f7")
MUTED = colors.HexColor("#52606d")
_EPOCH = datetime(1970, 1, 1)


def _strong(status: Status) -> Any:
    return colors.HexColor(STATUS_COLOUR[status][0]) if status in STATUS_COLOUR else MUTED


def _light(status: Status) -> Any:
    return colors.HexColor(STATUS_COLOUR[status][1]) if status in STATUS_COLOUR else colors.white


def _markup(text: Any) -> str:
    """User text made safe for Paragraph's mini-markup, line breaks kept."""
    return escape("" if text is None else str(text)).replace("\n", "<br/>")


class _Styles:
    def __init__(self) -> None:
        base = getSampleStyleSheet()
        body = ParagraphStyle("body", parent=base["BodyText"], fontSize=9.5, leading=13)
        self.body = body
        self.title = ParagraphStyle("title", parent=base["Title"], fontSize=20, leading=24, alignment=0)
        self.subject = ParagraphStyle("subject", parent=body, fontSize=13, leading=17, textColor=MUTED, spaceAfter=8)
        self.heading = ParagraphStyle("heading", parent=base["Heading1"], fontSize=16, leading=20, spaceAfter=6)
        self.caption = ParagraphStyle("caption", parent=body, fontName="Helvetica-Bold", spaceBefore=6, spaceAfter=2)
        self.cell = ParagraphStyle("cell", parent=body, fontSize=8.5, leading=10.5)
        self.head = ParagraphStyle("head", parent=self.cell, fontName="Helvetica-Bold")
        self.empty = ParagraphStyle("empty", parent=self.cell, fontName="Helvetica-Oblique", textColor=MUTED)
        self.small = ParagraphStyle("small", parent=body, fontSize=8, leading=10, textColor=MUTED)

    def note(self, status: Status) -> ParagraphStyle:
        return ParagraphStyle(
            f"note-{status}", parent=self.body, backColor=_light(status), borderColor=_strong(status),
            borderWidth=0.8, borderPadding=5, leftIndent=5, rightIndent=5, spaceBefore=8, spaceAfter=10,
        )  # fmt: skip


def _label(status: Status) -> str:
    """A status word in its colour, so a row or note is told apart in greyscale print too."""
    if status == "none":
        return ""
    return f'<font color="{STATUS_COLOUR[status][0]}"><b>{STATUS_LABEL[status]}</b></font> '


# -- tables ---------------------------------------------------------------------------------------------------------


def _widths(columns: list[str], rows: list[list[str]], total: float) -> list[float]:
    """Column widths by the longest text in each column, capped so one long column cannot squeeze the others out."""
    lengths = [max([len(c), *(len(r[i]) for r in rows if i < len(r))]) for i, c in enumerate(columns)]
    weights = [min(max(n, 5), 50) for n in lengths]
    return [total * w / sum(weights) for w in weights]


def _base_style(header: bool) -> list[tuple[Any, ...]]:
    style: list[tuple[Any, ...]] = [
        ("GRID", (0, 0), (-1, -1), 0.4, GRID),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), HEAD))
    return style


def _grid(
    st: _Styles, columns: list[str], rows: list[list[str]], *, statuses: list[Status] | None = None, empty: str = ""
) -> RLTable:
    """A table with its header row repeated on every page it spans; long cells wrap; rows coloured by status."""
    n = max(len(columns), 1)
    padded = [(list(r) + [""] * n)[:n] for r in rows]
    data: list[list[Any]] = [[Paragraph(_markup(c), st.head) for c in columns]]
    style = _base_style(header=True)
    for i, row in enumerate(padded, start=1):
        status: Status = statuses[i - 1] if statuses and i - 1 < len(statuses) else "none"
        cells = [Paragraph(_markup(v), st.cell) for v in row]
        if status != "none":
            cells[0] = Paragraph(_label(status) + _markup(row[0]), st.cell)
            style.append(("BACKGROUND", (0, i), (-1, i), _light(status)))
            style.append(("LINEBEFORE", (0, i), (0, i), 3, _strong(status)))
        data.append(cells)
    if not rows:
        data.append([Paragraph(_markup(empty), st.empty)] + [""] * (n - 1))
        style.append(("SPAN", (0, 1), (-1, 1)))
    table = RLTable(data, colWidths=_widths(columns, padded, WIDTH), repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle(style))
    return table


def _facts_table(st: _Styles, items: list[tuple[str, str]], *, verdicts: bool = False) -> RLTable:
    data, style = [], _base_style(header=False)
    style.append(("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f8f9fb")))
    for i, (label, value) in enumerate(items):
        status = verdict(value) if verdicts else "none"
        text = _markup(value)
        if status != "none":
            text = f'<font color="{STATUS_COLOUR[status][0]}"><b>{text}</b></font>'
            style.append(("BACKGROUND", (1, i), (1, i), _light(status)))
        data.append([Paragraph(_markup(label), st.head), Paragraph(text, st.cell)])
    table = RLTable(data, colWidths=[0.3 * WIDTH, 0.7 * WIDTH], hAlign="LEFT")
    table.setStyle(TableStyle(style))
    return table


# -- charts ---------------------------------------------------------------------------------------------------------


def _axis(chart: Chart) -> tuple[str, list[str | float]]:
    """How x values are placed: ``"time"`` (days since 1970), ``"number"``, or ``"category"`` (by index)."""
    xs = chart_x_values(chart)
    if is_time_axis(chart):
        return "time", xs
    return ("number" if all(isinstance(x, float | int) for x in xs) else "category"), xs


def _position(value: str | float, axis: str, categories: list[str | float]) -> float:
    if axis == "time":
        moment = parse_time(value)
        return (moment - _EPOCH).total_seconds() / 86400 if moment is not None else math.nan
    if axis == "number":
        try:
            return float(value)
        except ValueError:
            return math.nan
    return float(categories.index(value)) if value in categories else math.nan


def _span(values: list[float], *, flat: float | None = None) -> tuple[float, float]:
    """The range drawn for ``values``, with a margin; ``flat`` is the half-width around a single value."""
    low, high = min(values), max(values)
    if high == low:
        pad = flat if flat is not None else (abs(low) * 0.1 or 1)
        return low - pad, high + pad
    pad = (high - low) * 0.06
    return low - pad, high + pad


def _x_ticks(low: float, high: float, axis: str, categories: list[str | float]) -> tuple[list[float] | None, Any]:
    """Tick positions (None: the axis chooses) and their label format."""
    if axis == "time":
        ticks, fmt = _date_ticks(low, high)
        return ticks, lambda v: (_EPOCH + timedelta(days=v)).strftime(fmt)
    if axis == "category":
        step = max(1, math.ceil(len(categories) / 8))
        ticks = [float(i) for i in range(0, len(categories), step)]
        return ticks, lambda v: str(categories[round(v)])[:14] if 0 <= round(v) < len(categories) else ""
    return None, lambda v: f"{v:.4g}"


def _date_ticks(low: float, high: float) -> tuple[list[float], str]:
    """At most six ticks on whole days, weeks, or the first of a month, so a date label sits on its date."""
    span = high - low
    if span < 2:
        return [low + span * i / 4 for i in range(5)], "%m-%d %H:%M"
    for days in (1, 2, 7, 14):
        if span / days <= 6:
            first = math.ceil(low / days) * days
            return [float(d) for d in range(first, math.floor(high) + 1, days)], "%Y-%m-%d"
    months = next((m for m in (1, 2, 3, 6, 12, 24, 60) if span / (30.44 * m) <= 6), 120)
    start = _EPOCH + timedelta(days=low)
    index = math.ceil((start.year * 12 + start.month) / months) * months  # months since year 0, 1-based
    ticks: list[float] = []
    while (tick := (datetime((index - 1) // 12, (index - 1) % 12 + 1, 1) - _EPOCH).days) <= high:
        if tick >= low:
            ticks.append(float(tick))
        index += months
    return ticks, "%Y-%m" if months < 12 else "%Y"


def _rotated(x: float, y: float, text: str, colour: Any) -> Group:
    """A label running up a vertical line, hanging from (x, y) on its left."""
    group = Group(String(0, 0, text[:40], fontName="Helvetica", fontSize=7, fillColor=colour, textAnchor="end"))
    group.transform = (0, 1, -1, 0, x - 3, y - 2)
    return group


def _overlay(drawing: Drawing, chart: Chart, plot: Any, y_range: tuple[float, float], x_of: Any) -> None:
    """Markers, the threshold, axis titles and the legend, drawn over a laid-out plot."""
    low, high = y_range
    legend_top, label_y = _bottom(chart)
    top = plot.y + plot.height
    for marker in chart.markers:
        x = x_of(marker.x)
        if x is None or not plot.x <= x <= plot.x + plot.width:
            continue
        drawing.add(Line(x, plot.y, x, top, strokeColor=MUTED, strokeWidth=1, strokeDashArray=[4, 3]))
        drawing.add(_rotated(x, top, marker.label, MUTED))
    if chart.threshold is not None:
        red = _strong("fail")
        y = plot.y + (chart.threshold - low) / (high - low) * plot.height
        drawing.add(Line(plot.x, y, plot.x + plot.width, y, strokeColor=red, strokeWidth=1, strokeDashArray=[2, 2]))
        label = f"threshold {chart.threshold:g}"
        drawing.add(String(plot.x + plot.width - 2, y + 2, label, fontSize=7, fillColor=red, textAnchor="end"))
    if chart.x_label:
        drawing.add(String(plot.x + plot.width / 2, label_y, chart.x_label[:80], fontSize=8, textAnchor="middle"))
    if chart.y_label:
        title = Group(String(0, 0, chart.y_label[:60], fontSize=8, textAnchor="middle"))
        title.transform = (0, 1, -1, 0, 10, plot.y + plot.height / 2)
        drawing.add(title)
    legend = Legend()
    legend.x, legend.y, legend.alignment = plot.x, legend_top, "right"
    legend.fontSize, legend.dx, legend.dy, legend.deltax, legend.deltay = 7, 8, 6, 10, 10
    legend.columnMaximum = max(1, math.ceil(len(chart.series) / LEGEND_COLUMNS))
    legend.colorNamePairs = [(_colour(i), s.name[:24]) for i, s in enumerate(chart.series)]
    drawing.add(legend)


def _colour(index: int) -> Any:
    return colors.HexColor(PALETTE[index % len(PALETTE)])


def _bottom(chart: Chart) -> tuple[float, float]:
    """Where the legend's top and the x axis title sit, from the bottom up (the legend wraps every six series)."""
    legend_top = 4 + 10 * max(1, math.ceil(len(chart.series) / LEGEND_COLUMNS))
    return legend_top, legend_top + (10 if chart.x_label else 0)


def _plot_area(plot: Any, chart: Chart, *, tick_room: float = 22) -> None:
    """The plot's box in the drawing: room below for tick labels, the x title and the legend."""
    plot.x, plot.y = 50, _bottom(chart)[1] + tick_room
    plot.width, plot.height = WIDTH - 72, CHART_HEIGHT - plot.y - 14


def _line_chart(chart: Chart) -> Drawing:
    axis, categories = _axis(chart)
    drawing = Drawing(WIDTH, CHART_HEIGHT)
    plot = LinePlot()
    _plot_area(plot, chart)
    lines: list[list[tuple[float, float]]] = []
    owners: list[int] = []
    for index, series in enumerate(chart.series):
        run: list[tuple[float, float]] = []
        points = [(_position(x, axis, categories), y) for x, y in zip(series.x, series.y, strict=False)]
        for x, y in [*points, (math.nan, None)]:
            if y is None or not (math.isfinite(x) and math.isfinite(y)):  # a gap in the data is a gap in the line
                if run:
                    lines.append(run)
                    owners.append(index)
                run = []
            else:
                run.append((x, float(y)))
    xs = [p[0] for line in lines for p in line] + [_position(m.x, axis, categories) for m in chart.markers]
    ys = [p[1] for line in lines for p in line] + ([chart.threshold] if chart.threshold is not None else [])
    x_low, x_high = _span([x for x in xs if math.isfinite(x)] or [0.0], flat=1 if axis == "time" else 0.5)
    y_low, y_high = _span(ys or [0.0])
    plot.data = lines or [[(x_low, y_low)]]
    symbols = sum(len(line) for line in lines) <= 120
    for i, owner in enumerate(owners):
        plot.lines[i].strokeColor = _colour(owner)
        plot.lines[i].strokeWidth = 1.5
        if symbols:
            plot.lines[i].symbol = makeMarker("FilledCircle", size=3, fillColor=_colour(owner))
    plot.xValueAxis.valueMin, plot.xValueAxis.valueMax = x_low, x_high
    ticks, fmt = _x_ticks(x_low, x_high, axis, categories)
    if ticks is not None:
        plot.xValueAxis.valueSteps = ticks
    plot.xValueAxis.labelTextFormat = fmt
    plot.yValueAxis.valueMin, plot.yValueAxis.valueMax = y_low, y_high
    plot.yValueAxis.labelTextFormat = lambda v: f"{v:.4g}"
    plot.xValueAxis.labels.fontSize = plot.yValueAxis.labels.fontSize = 7
    plot.yValueAxis.visibleGrid, plot.yValueAxis.gridStrokeColor = True, GRID
    drawing.add(plot)

    def x_of(value: str) -> float | None:
        position = _position(value, axis, categories)
        return plot.x + (position - x_low) / (x_high - x_low) * plot.width if math.isfinite(position) else None

    _overlay(drawing, chart, plot, (y_low, y_high), x_of)
    return drawing


def _bar_chart(chart: Chart) -> Drawing:
    time_axis = is_time_axis(chart)
    xs = chart_x_values(chart)
    drawing = Drawing(WIDTH, CHART_HEIGHT)
    plot = VerticalBarChart()
    labels = [format_x(x, time_axis=time_axis)[:16] for x in xs]
    rotate = len(labels) > 6
    _plot_area(plot, chart, tick_room=44 if rotate else 22)
    lookups = [dict(zip(s.x, s.y, strict=False)) for s in chart.series]
    plot.data = [[values.get(x) for x in xs] for values in lookups]
    ys = [y for row in plot.data for y in row if y is not None]
    y_low, y_high = _span([*ys, 0.0] + ([chart.threshold] if chart.threshold is not None else []))
    if min(ys, default=0.0) >= 0:  # bars of positive figures stand on zero
        y_low = 0.0
    plot.valueAxis.valueMin, plot.valueAxis.valueMax = y_low, y_high
    plot.valueAxis.labelTextFormat = lambda v: f"{v:.4g}"
    plot.valueAxis.visibleGrid, plot.valueAxis.gridStrokeColor = True, GRID
    plot.categoryAxis.categoryNames = labels
    plot.categoryAxis.labels.fontSize = plot.valueAxis.labels.fontSize = 7
    if rotate:
        plot.categoryAxis.labels.angle, plot.categoryAxis.labels.boxAnchor = 30, "ne"
    for i in range(len(chart.series)):
        plot.bars[i].fillColor = _colour(i)
        plot.bars[i].strokeColor = None
    plot.groupSpacing, plot.barSpacing = 6, 1
    drawing.add(plot)

    def x_of(value: str) -> float | None:
        label = format_x(value, time_axis=time_axis)[:16]
        if label not in labels:
            return None
        return plot.x + (labels.index(label) + 0.5) * plot.width / len(labels)

    _overlay(drawing, chart, plot, (y_low, y_high), x_of)
    return drawing


# -- blocks, sections and the document --------------------------------------------------------------------------


def _chart(st: _Styles, chart: Chart) -> list[Flowable]:
    if not any(y is not None for s in chart.series for y in s.y):
        drawing: Flowable = Paragraph("No data to draw.", st.empty)
    else:
        drawing = _bar_chart(chart) if chart.kind == "bar" else _line_chart(chart)
    parts: list[Flowable] = [Paragraph(_markup(chart.title), st.caption), drawing]
    notes = chart_notes(chart)
    if notes:
        label = "Reference lines" if chart.markers else "Reference line"
        parts.append(Paragraph(f"{label}: {_markup('; '.join(notes))}.", st.small))
    out: list[Flowable] = [KeepTogether(parts)]
    columns, rows = chart_rows(chart)
    if rows and len(rows) <= MAX_TABLE_POINTS:
        out += [Paragraph(_markup(f"{chart.title}: the figures"), st.caption), _grid(st, columns, rows)]
    elif rows:
        out.append(Paragraph(f"{len(rows)} points: the HTML report lists the figures.", st.small))
    return [*out, Spacer(1, 8)]


def _block(st: _Styles, block: Block) -> list[Flowable]:
    if isinstance(block, Text):
        if block.status == "none":
            return [Paragraph(_markup(block.text), st.body)]
        return [Paragraph(_label(block.status) + _markup(block.text), st.note(block.status))]
    if isinstance(block, Chart):
        return _chart(st, block)
    caption = [Paragraph(_markup(block.caption), st.caption)] if block.caption else []
    if isinstance(block, Facts):
        facts = _facts_table(st, block.items) if block.items else Paragraph("none recorded", st.empty)
        return [*caption, facts, Spacer(1, 8)]
    table = _grid(st, block.columns, block.rows, statuses=block.statuses, empty=block.empty)
    return [*caption, table, Spacer(1, 8)]


class _Heading(Paragraph):
    """A heading that becomes an outline entry and a link destination (see ``_Doc.afterFlowable``)."""

    def __init__(self, st: _Styles, text: str, key: str) -> None:
        super().__init__(_markup(text), st.heading)
        self.outline = (key, text)


def _section(st: _Styles, section: Section, key: str) -> list[Flowable]:
    out: list[Flowable] = [PageBreak(), _Heading(st, section.title, key)]
    if section.status != "none":
        out += [Paragraph(f"Verdict: {_label(section.status)}", st.body), Spacer(1, 4)]
    for block in section.blocks:
        out += _block(st, block)
    return out if section.blocks else [*out, Paragraph("Nothing recorded.", st.empty)]


def _mapping(st: _Styles, report: Report, keys: dict[str, str]) -> RLTable:
    titles = {s.id: s.title for s in report.sections}
    data: list[list[Any]] = [[Paragraph(c, st.head) for c in ("Requirement", "Framework", "Answered in")]]
    for requirement in report.mapping:
        links = [
            f'<a href="#{keys[i]}" color="#1a56db">{_markup(titles[i])}</a>'
            if i in keys
            else f'<font color="{STATUS_COLOUR["fail"][0]}">{_markup(i)} (no such section)</font>'
            for i in requirement.sections
        ]
        data.append(
            [
                Paragraph(_markup(requirement.requirement), st.cell),
                Paragraph(_markup(requirement.framework), st.cell),
                Paragraph(", ".join(links) or f'<font color="{STATUS_COLOUR["fail"][0]}">not answered</font>', st.cell),
            ]
        )
    style = _base_style(header=True)
    if not report.mapping:
        data.append([Paragraph("No requirements mapped.", st.empty), "", ""])
        style.append(("SPAN", (0, 1), (-1, 1)))
    table = RLTable(data, colWidths=[0.45 * WIDTH, 0.2 * WIDTH, 0.35 * WIDTH], repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle(style))
    return table


class _Doc(BaseDocTemplate):
    def afterFlowable(self, flowable: Flowable) -> None:  # noqa: N802  (reportlab's hook)
        outline = getattr(flowable, "outline", None)
        if outline is not None:  # a heading: the destination its links and its outline entry point to
            key, title = outline
            self.canv.bookmarkPage(key)
            self.canv.addOutlineEntry(title, key, level=0)


def _page_decoration(report: Report, total: int) -> Any:
    """Header and footer of every page: the subject, the as-of date, "page N of M"."""
    left = report.subject[:90]
    right = f"as of {format_datetime(report.as_of)}"
    footer = f"{report.title} - generated {format_datetime(report.generated_at)} by {report.generated_by}"[:110]

    def decorate(canvas: Canvas, doc: BaseDocTemplate) -> None:
        width, height = A4
        top, bottom = height - MARGIN + 6 * mm, MARGIN - 9 * mm
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.setFillColor(MUTED)
        canvas.setStrokeColor(GRID)
        canvas.drawString(MARGIN, top, left)
        canvas.drawRightString(width - MARGIN, top, right)
        canvas.line(MARGIN, top - 2 * mm, width - MARGIN, top - 2 * mm)
        canvas.line(MARGIN, bottom + 4 * mm, width - MARGIN, bottom + 4 * mm)
        canvas.drawString(MARGIN, bottom, footer)
        canvas.drawRightString(width - MARGIN, bottom, f"page {doc.page} of {total}")
        canvas.restoreState()

    return decorate


def _story(st: _Styles, report: Report) -> list[Flowable]:
    keys = {s.id: f"section-{i}" for i, s in enumerate(report.sections)}
    meta = [
        ("Asked for", report.asked),
        ("As of", format_datetime(report.as_of)),
        ("Generated at", format_datetime(report.generated_at)),
        ("Generated by", report.generated_by),
    ]
    summary = _facts_table(st, report.summary, verdicts=True) if report.summary else Paragraph("No summary.", st.empty)
    story: list[Flowable] = [
        Paragraph(_markup(report.title), st.title),
        Paragraph(_markup(report.subject), st.subject),
        _facts_table(st, meta),
        Spacer(1, 10),
        _Heading(st, "Summary", "report-summary"),
        summary,
        Spacer(1, 10),
        _Heading(st, "Requirements mapping", "report-mapping"),
        Paragraph("Which section of this report answers which requirement (SR 11-7, EU AI Act Annex IV).", st.small),
        Spacer(1, 4),
        _mapping(st, report, keys),
    ]
    for section in report.sections:
        story += _section(st, section, keys[section.id])
    return story


def pdf_document(report: Report) -> bytes:
    """The whole PDF (``report_render.render_pdf`` is the public entry point)."""
    st = _Styles()
    total, pdf = 0, b""
    # two passes: the first counts the pages so that every footer can say "page N of M" (a canvas that holds pages
    # back until the end would break the outline, whose entries point at the page being drawn)
    for _ in range(2):
        buffer = io.BytesIO()
        doc = _Doc(
            buffer, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN, bottomMargin=MARGIN,
            title=f"{report.title}: {report.subject}", author=report.generated_by, subject=report.asked,
            creator="Model Steward",
        )  # fmt: skip
        frame = Frame(MARGIN, MARGIN, WIDTH, A4[1] - 2 * MARGIN, id="body")
        doc.addPageTemplates([PageTemplate(id="page", frames=[frame], onPage=_page_decoration(report, total))])
        doc.build(_story(st, report))
        total, pdf = doc.page, buffer.getvalue()
    return pdf
