"""The auditor's report as one self-contained HTML page: semantic, printable, and readable offline and without scripts.

Plotly's JavaScript is inlined once (with the first chart), nothing is fetched from a CDN, every value from the
report is escaped, and every chart is followed by a table of its figures.
"""

from __future__ import annotations

import html
import re
from typing import Any

from modelsteward.domain.report import Block, Chart, Facts, Report, Section, Status, Table, Text
from modelsteward.errors import require
from modelsteward.governance.report_render import (
    MAX_TABLE_POINTS,
    PALETTE,
    STATUS_COLOUR,
    STATUS_LABEL,
    chart_notes,
    chart_rows,
    format_datetime,
    is_time_axis,
    parse_time,
    verdict,
)

_MARK = {"pass": "✓", "fail": "✗", "warn": "!", "info": "i"}

_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:1rem 2rem;
color:#1f2933;line-height:1.45}
h1{font-size:1.7rem;margin:.6rem 0 .2rem}
h2{font-size:1.3rem;border-bottom:1px solid #d9dee3;padding-bottom:.2rem;margin-top:2.2rem}
a{color:#1a56db}
.subject{font-size:1.15rem;color:#3e4c59;margin:0 0 .6rem}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:.5rem 0 1rem}
dl.meta dt{font-weight:600;color:#52606d}dl.meta dd{margin:0}
.table-wrap{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}
caption{text-align:left;font-weight:600;padding:.3rem 0}
th,td{border:1px solid #d9dee3;padding:.3rem .5rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}
thead th{background:#f2f4f7}tbody th{font-weight:600}
table.facts tbody th{background:#f8f9fb;width:16rem}
td.empty,p.empty{color:#52606d;font-style:italic}
.badge{display:inline-block;padding:.05rem .6rem;border-radius:.8rem;font-size:.8rem;font-weight:700;color:#fff;
background:#52606d;vertical-align:middle}
h2 .badge{margin-left:.5rem}
.mark{font-weight:700;margin-right:.35rem}
.note{border-left:4px solid #52606d;background:#f8f9fb;padding:.5rem .8rem;margin:.6rem 0;white-space:pre-line}
.note .badge{margin-right:.5rem}
p.text{white-space:pre-line}
.summary{background:#f8f9fb;border:1px solid #d9dee3;border-radius:.4rem;padding:.2rem 1rem .4rem}
.summary h2{margin-top:.6rem;border:0}.summary table{background:#fff}
nav ol{columns:2 18rem;padding-left:1.5rem}nav li{margin:.15rem 0}
.missing{color:#c53030}
figure{margin:1rem 0}figcaption{font-weight:600;margin:.3rem 0}
.plot{min-height:380px}.chart-notes{font-size:.9rem;color:#52606d;margin:.2rem 0}
details{margin:.3rem 0 1rem}summary{cursor:pointer;color:#3e4c59}
footer{margin-top:3rem;border-top:1px solid #d9dee3;color:#52606d;font-size:.85rem}
@media (max-width:720px){body{padding:.5rem .8rem}dl.meta{grid-template-columns:1fr}dl.meta dd{margin-bottom:.3rem}
table.facts tbody th{width:auto}nav ol{columns:1}}
@media print{nav,noscript,details>summary{display:none}body{max-width:none;padding:0}
main>section.report-section{break-before:page}figure,tr,.note{break-inside:avoid}thead{display:table-header-group}
a{color:inherit;text-decoration:none}}
""" + "".join(
    f".badge-{s}{{background:{strong}}}.mark-{s}{{color:{strong}}}tr.row-{s}>*{{background:{light}}}"
    f".note-{s}{{border-left-color:{strong};background:{light}}}\n"
    for s, (strong, light) in STATUS_COLOUR.items()
)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _anchor(section_id: str) -> str:
    """A section id safe in ``id`` and ``href`` (the report's ids are already slugs; this guards odd ones)."""
    return re.sub(r"[^A-Za-z0-9_.:-]+", "-", section_id) or "section"


def _badge(status: Status, text: str | None = None) -> str:
    if status == "none":
        return _e(text) if text is not None else ""
    return f'<span class="badge badge-{status}">{_e(text if text is not None else STATUS_LABEL[status])}</span>'


def _mark(status: Status) -> str:
    if status == "none":
        return ""
    return f'<span class="mark mark-{status}" role="img" aria-label="{status}">{_MARK[status]}</span>'


def _wrap(table: str) -> str:
    return f'<div class="table-wrap">{table}</div>'


def _caption(text: str) -> str:
    return f"<caption>{_e(text)}</caption>" if text else ""


def _grid(columns: list[str], rows: list[list[str]], *, caption: str = "", statuses: list[Status] | None = None) -> str:
    """A table whose first column heads each row; a row with a status is coloured and marked (not by colour only)."""
    head = "".join(f'<th scope="col">{_e(c)}</th>' for c in columns)
    body = []
    for i, row in enumerate(rows):
        status: Status = statuses[i] if statuses and i < len(statuses) else "none"
        first, *rest = row or [""]
        cells = f'<th scope="row">{_mark(status)}{_e(first)}</th>' + "".join(f"<td>{_e(v)}</td>" for v in rest)
        attrs = f' class="row-{status}"' if status != "none" else ""
        body.append(f"<tr{attrs}>{cells}</tr>")
    return _wrap(f"<table>{_caption(caption)}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


class _Plots:
    """Plotly figures as HTML fragments; the first carries the inlined Plotly bundle, the others reuse it.

    Text handed to Plotly is escaped too: plotly.js reads titles, names and labels as a small HTML dialect.
    """

    def __init__(self) -> None:
        self.count = 0
        self._go: Any = None

    def figure(self, chart: Chart) -> str:
        if self._go is None:  # a report without charts renders without plotly installed
            require("plotly", "reports")
            import plotly.graph_objects as go

            self._go = go
        go, time_axis = self._go, is_time_axis(chart)

        def xs(values: list[str | float]) -> list[Any]:
            # plotly.js ignores time zones: hand it naive UTC times
            if not time_axis:
                return list(values)
            return [moment.isoformat() for x in values if (moment := parse_time(x)) is not None]

        if chart.kind == "bar":
            traces = [go.Bar(x=xs(s.x), y=list(s.y), name=_e(s.name)) for s in chart.series]
        else:
            mode = "lines+markers" if max((len(s.y) for s in chart.series), default=0) <= 60 else "lines"
            traces = [go.Scatter(x=xs(s.x), y=list(s.y), name=_e(s.name), mode=mode) for s in chart.series]
        fig = go.Figure(traces)
        fig.update_layout(
            title=_e(chart.title),
            xaxis_title=_e(chart.x_label),
            yaxis_title=_e(chart.y_label),
            template="plotly_white",
            colorway=list(PALETTE),
            height=380,
            barmode="group" if chart.kind == "bar" else None,
            margin={"l": 60, "r": 20, "t": 50, "b": 50},
            legend={"orientation": "h", "y": -0.2},
            showlegend=True,
        )
        if time_axis:
            fig.update_xaxes(type="date")
        known = {x for series in chart.series for x in series.x}
        for marker in chart.markers:
            if not time_axis and marker.x not in known:  # plotly would add it as a category of its own
                continue
            x = xs([marker.x])[0]
            line = {"color": "#52606d", "width": 1.5, "dash": "dash"}
            fig.add_shape(type="line", xref="x", yref="paper", x0=x, x1=x, y0=0, y1=1, line=line)
            fig.add_annotation(
                x=x, y=1, xref="x", yref="paper", text=_e(marker.label), showarrow=False, textangle=-90,
                xanchor="right", yanchor="top", font={"size": 11, "color": "#3e4c59"},
            )  # fmt: skip
        if chart.threshold is not None:
            line = {"color": STATUS_COLOUR["fail"][0], "width": 1.5, "dash": "dot"}
            y = chart.threshold
            fig.add_shape(type="line", xref="paper", yref="y", x0=0, x1=1, y0=y, y1=y, line=line)
            fig.add_annotation(
                x=1, y=y, xref="paper", yref="y", text=f"threshold {y:g}", showarrow=False,
                xanchor="right", yanchor="bottom", font={"size": 11, "color": STATUS_COLOUR["fail"][0]},
            )  # fmt: skip
        self.count += 1
        return fig.to_html(
            full_html=False,
            include_plotlyjs=self.count == 1,
            div_id=f"report-plot-{self.count}",
            config={"displaylogo": False, "responsive": True},
        )


# -- blocks -----------------------------------------------------------------------------------------------------


def _text(block: Text) -> str:
    if block.status == "none":
        return f'<p class="text">{_e(block.text)}</p>'
    return f'<p class="note note-{block.status}" role="note">{_badge(block.status)}{_e(block.text)}</p>'


def _facts(block: Facts) -> str:
    if not block.items:
        caption = f'<p class="text"><strong>{_e(block.caption)}</strong></p>' if block.caption else ""
        return f'{caption}<p class="text empty">none recorded</p>'
    rows = "".join(f'<tr><th scope="row">{_e(k)}</th><td>{_e(v)}</td></tr>' for k, v in block.items)
    return _wrap(f'<table class="facts">{_caption(block.caption)}<tbody>{rows}</tbody></table>')


def _table(block: Table) -> str:
    if block.rows:
        return _grid(block.columns, block.rows, caption=block.caption, statuses=block.statuses)
    head = "".join(f'<th scope="col">{_e(c)}</th>' for c in block.columns)
    empty = f'<tr><td class="empty" colspan="{max(len(block.columns), 1)}">{_e(block.empty)}</td></tr>'
    return _wrap(f"<table>{_caption(block.caption)}<thead><tr>{head}</tr></thead><tbody>{empty}</tbody></table>")


def _chart(block: Chart, plots: _Plots) -> str:
    columns, rows = chart_rows(block)
    notes = chart_notes(block)
    parts = [
        f'<figure class="chart"><div class="plot" role="img" aria-label="{_e(block.title)}: '
        f'the figures are in the table below">{plots.figure(block)}</div>',
        f"<figcaption>{_e(block.title)}</figcaption>",
    ]
    if notes:
        label = "Reference lines" if block.markers else "Reference line"
        parts.append(f'<p class="chart-notes">{label}: {_e("; ".join(notes))}.</p>')
    opened = " open" if len(rows) <= MAX_TABLE_POINTS else ""
    table = _grid(columns, rows, caption=f"{block.title}: the figures")
    parts.append(f"<details{opened}><summary>The figures ({len(rows)} rows)</summary>{table}</details></figure>")
    return "".join(parts)


def _block(block: Block, plots: _Plots) -> str:
    if isinstance(block, Text):
        return _text(block)
    if isinstance(block, Facts):
        return _facts(block)
    if isinstance(block, Table):
        return _table(block)
    return _chart(block, plots)


# -- the page -----------------------------------------------------------------------------------------------------


def _section(section: Section, plots: _Plots) -> str:
    anchor = _anchor(section.id)
    heading = f'<h2 id="{anchor}-h">{_e(section.title)}{_badge(section.status)}'
    body = "".join(_block(b, plots) for b in section.blocks) or '<p class="text">Nothing recorded.</p>'
    return f'<section id="{anchor}" class="report-section" aria-labelledby="{anchor}-h">{heading}</h2>{body}</section>'


def _header(report: Report) -> str:
    meta = [
        ("Subject", report.subject),
        ("Asked for", report.asked),
        ("As of", format_datetime(report.as_of)),
        ("Generated at", format_datetime(report.generated_at)),
        ("Generated by", report.generated_by),
    ]
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in meta)
    return (
        f'<header><h1>{_e(report.title)}</h1><p class="subject">{_e(report.subject)}</p><dl class="meta">{items}</dl>'
        '<noscript><p class="note">The charts need JavaScript; the tables under them hold the same figures.</p>'
        "</noscript></header>"
    )


def _summary(report: Report) -> str:
    rows = "".join(f'<tr><th scope="row">{_e(k)}</th><td>{_badge(verdict(v), v)}</td></tr>' for k, v in report.summary)
    table = f'<table class="facts"><tbody>{rows}</tbody></table>' if rows else "<p>No summary.</p>"
    return (
        '<section id="report-summary" class="summary" aria-labelledby="report-summary-h">'
        f'<h2 id="report-summary-h">Summary</h2>{_wrap(table)}</section>'
    )


def _mapping(report: Report) -> str:
    titles = {s.id: s.title for s in report.sections}

    def answered_in(ids: list[str]) -> str:
        links = [
            f'<a href="#{_anchor(i)}">{_e(titles[i])}</a>'
            if i in titles
            else f'<span class="missing">{_e(i)} (no such section)</span>'
            for i in ids
        ]
        return ", ".join(links) or '<span class="missing">not answered</span>'

    rows = "".join(
        f'<tr><th scope="row">{_e(r.requirement)}</th><td>{_e(r.framework)}</td><td>{answered_in(r.sections)}</td></tr>'
        for r in report.mapping
    )
    if not rows:
        rows = '<tr><td class="empty" colspan="3">No requirements mapped.</td></tr>'
    head = "".join(f'<th scope="col">{c}</th>' for c in ("Requirement", "Framework", "Answered in"))
    caption = "Which section of this report answers which requirement (SR 11-7, EU AI Act Annex IV)"
    return (
        '<section id="report-mapping" aria-labelledby="report-mapping-h"><h2 id="report-mapping-h">Requirements mapping'
        f"</h2>{_wrap(f'<table>{_caption(caption)}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>')}"
        "</section>"
    )


def _toc(report: Report) -> str:
    items = [
        '<li><a href="#report-summary">Summary</a></li>',
        '<li><a href="#report-mapping">Requirements mapping</a></li>',
    ]
    items += [f'<li><a href="#{_anchor(s.id)}">{_e(s.title)}</a> {_badge(s.status)}</li>' for s in report.sections]
    return f'<nav aria-labelledby="report-toc-h"><h2 id="report-toc-h">Contents</h2><ol>{"".join(items)}</ol></nav>'


def html_page(report: Report) -> str:
    """The whole page (``report_render.render_html`` is the public entry point)."""
    plots = _Plots()
    title = f"{report.title}: {report.subject}"
    return "\n".join(
        [
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="generator" content="Model Steward"><title>{_e(title)}</title>',
            f"<style>{_CSS}</style></head><body>",
            _header(report),
            _toc(report),
            "<main>",
            _summary(report),
            _mapping(report),
            *(_section(s, plots) for s in report.sections),
            "</main>",
            f"<footer><p>Generated by {_e(report.generated_by)} with Model Steward on "
            f"{_e(format_datetime(report.generated_at))}, describing {_e(report.subject)} as of "
            f"{_e(format_datetime(report.as_of))}. This file is self-contained and works offline.</p></footer>",
            "</body></html>",
        ]
    )
