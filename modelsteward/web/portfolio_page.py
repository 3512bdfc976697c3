"""The portfolio page for managers (issue 7, point 6): headline figures, models per life-cycle stage and business
unit, model debt over time, open alerts and the KPIs at a glance; each chart with its figures as a table."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from modelsteward.governance.permissions import needs
from modelsteward.reporting import portfolio_summary as summary
from modelsteward.web.pages import nav, page, render
from modelsteward.web.session import viewer

router = APIRouter(include_in_schema=False)  # included under /ui by routes.py (a prefix here would double it)
nav("/ui/portfolio", "Portfolio")

HISTORY_DAYS = 90
SPARKLINE_DAYS = 30
_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})
_PALETTE = ["#1f5fae", "#c05621", "#2f855a", "#805ad5", "#b83280", "#2c7a7b", "#975a16", "#4a5568"]


@dataclass
class Chart:
    """A Plotly figure as JSON for steward.js, with the table of its figures (its text alternative)."""

    id: str
    title: str
    figure: dict[str, Any]
    caption: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    @property
    def json(self) -> str:
        return json.dumps(self.figure, default=str, allow_nan=False).translate(_ESCAPES)


def _layout(title: str, x: str, y: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": 15}},
        "xaxis": {"title": {"text": x}, "automargin": True},
        "yaxis": {"title": {"text": y}, "automargin": True, "rangemode": "tozero"},
        "template": "plotly_white",
        "height": 340,
        "margin": {"l": 60, "r": 20, "t": 50, "b": 40},
        "legend": {"orientation": "h", "y": -0.3},
        **extra,
    }


def stage_unit_chart(table: summary.StageUnitTable) -> Chart:
    traces = [
        {"type": "bar", "name": unit, "x": table.stages, "y": [table.count(s, unit) for s in table.stages],
         "marker": {"color": _PALETTE[i % len(_PALETTE)]}}
        for i, unit in enumerate(table.units)
    ]  # fmt: skip
    title = "Models per life-cycle stage and business unit"
    figure = {"data": traces, "layout": _layout(title, "stage", "models", barmode="stack",
                                                  yaxis={"dtick": 1, "rangemode": "tozero"})}  # fmt: skip
    rows = [[s, *[table.count(s, u) for u in table.units], table.stage_total(s)] for s in table.stages]
    return Chart("stage-units", title, figure, "Models per life-cycle stage (rows) and business unit (columns)",
                 ["stage", *table.units, "all units"], rows)  # fmt: skip


def debt_chart(history: list[Any], top: list[str]) -> Chart:
    days = [p.day.isoformat() for p in history]
    traces = [{"type": "scatter", "mode": "lines+markers", "name": "catalog total", "x": days,
               "y": [p.total for p in history], "line": {"width": 3, "color": "#102a43"}}]  # fmt: skip
    for i, model in enumerate(top):
        traces.append({"type": "scatter", "mode": "lines", "name": model, "x": days,
                       "y": [p.models.get(model, 0) for p in history],
                       "line": {"dash": "dot", "color": _PALETTE[i % len(_PALETTE)]}})  # fmt: skip
    title = "Model debt over time"
    figure = {"data": traces, "layout": _layout(title, "day", "debt score (points)")}
    rows = [[p.day.isoformat(), p.total, p.with_debt, *[p.models.get(m, 0) for m in top]] for p in history]
    caption = "Model debt per daily snapshot: the catalog's total, the models with debt, the most indebted models"
    return Chart("debt-history", title, figure, caption, ["day", "total", "models with debt", *top], rows)


def kpi_chart(index: int, glance: summary.KPIGlance) -> Chart:
    days = [d.isoformat() for d in glance.days]
    title = f"{glance.kpi} ({glance.scope}), daily"
    figure = {
        "data": [{"type": "scatter", "mode": "lines", "name": glance.kpi, "x": days, "y": glance.values,
                  "line": {"color": "#1f5fae", "width": 2}, "fill": "tozeroy", "fillcolor": "rgba(31,95,174,0.08)"}],
        "layout": {"height": 80, "margin": {"l": 0, "r": 0, "t": 4, "b": 4}, "showlegend": False,
                   "xaxis": {"visible": False}, "yaxis": {"visible": False}, "template": "plotly_white"},
    }  # fmt: skip
    rows = [[d, _fmt_kpi(v, glance.unit)] for d, v in zip(days, glance.values, strict=True)]
    return Chart(f"kpi-{index}", title, figure, f"{glance.kpi} on {glance.scope}: the mean of each day",
                 ["day", glance.kpi], rows)  # fmt: skip


def _fmt_kpi(value: float | None, unit: str | None, *, signed: bool = False) -> str:
    if value is None:
        return "—"
    sign = "+" if signed and value > 0 else ""
    if unit == "%":
        return f"{sign}{value * 100:.1f}{' pts' if signed else ' %'}"
    text = f"{sign}{value:,.2f}"
    return f"{text} {unit}" if unit else text


def _glances(st: Any, models: list[Any]) -> list[summary.KPIGlance]:
    declared = {k.name: k for m in models for k in m.kpis}
    glances = []
    for kpi, scope, _count in st.kpi_names():
        points = st.kpi_series(kpi, scope)
        if points:
            points = [p for p in points if p.ts >= summary.sparkline_start(points[-1].ts, SPARKLINE_DAYS)]
        glance = summary.kpi_glance(kpi, scope, points, declared=declared.get(kpi))
        if glance is not None:
            glances.append(glance)
    return glances


@router.get("/portfolio", **needs("catalog.read"))
@page
async def portfolio(request: Request) -> Response:
    st = viewer(request)
    rows, _total = st.catalog_overview(limit=None)
    models = st.search_models(limit=None).items
    history = st.debt_history(HISTORY_DAYS)
    open_alerts = [a for a in st.list_alerts(limit=10_000) if a.status != "resolved"]
    glances = _glances(st, models)

    table = summary.stage_unit_table(rows)
    top = summary.most_indebted(history)
    indebted = sorted((r for r in rows if r.debt_score), key=lambda r: (-r.debt_score, r.name))
    return render(
        request, st, "portfolio.html", title="Portfolio",
        headline=summary.headline(rows, open_alerts), rows=rows, table=table, indebted=indebted,
        stage_chart=stage_unit_chart(table), history=history, debt=debt_chart(history, top) if history else None,
        alerts=summary.alert_summary(open_alerts), kpis=[(g, kpi_chart(i, g)) for i, g in enumerate(glances)],
        fmt_kpi=_fmt_kpi, today=datetime.now(UTC).date(), history_days=HISTORY_DAYS, as_day=date.isoformat,
    )  # fmt: skip
