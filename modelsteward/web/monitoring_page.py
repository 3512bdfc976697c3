"""The monitoring pages: the deployments with their arms and last day's traffic, and one deployment's traffic,
drift, performance and business KPIs as charts, each with its table (issue 7, point 3)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from modelsteward.errors import InvalidArgument, StewardError
from modelsteward.governance.permissions import needs
from modelsteward.web.pages import nav, page, render
from modelsteward.web.session import viewer

# no prefix of its own: routes.py includes it into its "/ui" router (a "/ui" prefix here would give /ui/ui/...)
router = APIRouter(include_in_schema=False)
nav("/ui/deployments", "Monitoring")

MAX_DAYS = 366
RESULTS = 60  # monitor runs drawn per monitor
_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


# -- charts: Plotly figures as plain JSON (steward.js draws them), each with the table of its figures ------------


@dataclass
class Table:
    caption: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    @property
    def cells(self) -> list[list[str]]:
        return [[_cell(v) for v in row] for row in self.rows]


def _cell(value: Any) -> str:
    value = _clean(value)
    if value is None:
        return "—"
    if isinstance(value, datetime):
        stamp = value.astimezone(UTC)
        return stamp.strftime("%Y-%m-%d" if stamp.time() == datetime.min.time() else "%Y-%m-%d %H:%M")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@dataclass
class Chart:
    id: str
    title: str
    figure: dict[str, Any]
    table: Table

    @property
    def json(self) -> str:
        """The figure, safe inside a script element."""
        return json.dumps(self.figure, default=_jsonable, allow_nan=False).translate(_ESCAPES)

    @property
    def points(self) -> int:
        return sum(len(trace.get("x") or []) for trace in self.figure["data"])


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def _clean(value: Any) -> Any:
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime()
    return value


def _layout(title: str, x: str, y: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": 15}},
        "xaxis": {"title": {"text": x}, "automargin": True},
        "yaxis": {"title": {"text": y}, "automargin": True, "rangemode": "tozero"},
        "template": "plotly_white",
        "height": 340,
        "margin": {"l": 60, "r": 20, "t": 50, "b": 40},
        "legend": {"orientation": "h", "y": -0.25},
        **extra,
    }


def _line(name: str, x: list[Any], y: list[Any], **extra: Any) -> dict[str, Any]:
    return {"type": "scatter", "mode": "lines+markers", "name": name, "x": x, "y": [_clean(v) for v in y], **extra}


def _traffic_charts(frame: Any) -> list[Chart]:
    arms = list(dict.fromkeys(frame["arm"].tolist()))
    by_arm = {arm: frame[frame["arm"] == arm] for arm in arms}
    buckets = [_clean(b) for b in frame["bucket"]]

    def xs(arm: str) -> list[Any]:
        return [_clean(b) for b in by_arm[arm]["bucket"]]

    latency = [
        _line(f"{arm} {q}", xs(arm), by_arm[arm][f"{q}_ms"].tolist(), line={"dash": "dot"} if q == "p95" else {})
        for arm in arms
        for q in ("p50", "p95")
    ]
    errors = [_line(arm, xs(arm), by_arm[arm]["error_rate"].tolist()) for arm in arms]
    volume = [{"type": "bar", "name": arm, "x": xs(arm), "y": by_arm[arm]["requests"].tolist()} for arm in arms]
    rows = [[_clean(v) for v in row] for row in frame[["bucket", "arm", "p50_ms", "p95_ms"]].itertuples(index=False)]
    counts = zip(buckets, frame["arm"], frame["errors"], frame["requests"], frame["error_rate"], strict=True)
    error_rows = [[b, a, int(e), int(r), _clean(rate)] for b, a, e, r, rate in counts]
    return [
        Chart("latency", "Latency per answer (p50 and p95)", {"data": latency, "layout": _layout(
            "Latency per answer (p50 and p95)", "time (UTC)", "milliseconds")},
            Table("Latency per time bucket and arm, in milliseconds", ["bucket", "arm", "p50", "p95"], rows)),
        Chart("errors", "Error rate", {"data": errors, "layout": _layout(
            "Error rate", "time (UTC)", "share of answers failed", yaxis={"tickformat": ".1%", "rangemode": "tozero"})},
            Table("Failed answers per time bucket and arm", ["bucket", "arm", "failed", "answers", "error rate"],
                  error_rows)),
        Chart("volume", "Request volume", {"data": volume, "layout": _layout(
            "Request volume", "time (UTC)", "answers", barmode="stack")},
            Table("Answers per time bucket and arm", ["bucket", "arm", "answers"],
                  [[b, a, int(r)] for b, a, r in zip(buckets, frame["arm"], frame["requests"], strict=True)])),
    ]  # fmt: skip


def _series_chart(chart_id: str, title: str, y: str, series: dict[str, list[tuple[datetime, float | None]]],
                  thresholds: dict[str, float | None] | None = None) -> Chart:  # fmt: skip
    traces = [_line(label, [t for t, _ in points], [v for _, v in points]) for label, points in series.items()]
    stamps = sorted({t for points in series.values() for t, _ in points})
    limits = {label: value for label, value in (thresholds or {}).items() if value is not None and label in series}
    if limits and stamps:
        edges = [stamps[0], stamps[-1]] if len(stamps) > 1 else [stamps[0] - timedelta(hours=12), stamps[0]]
        common = set(limits.values())
        for value in sorted(common):
            names = [label for label, v in limits.items() if v == value]
            name = "threshold" if len(common) == 1 else f"threshold ({', '.join(n.split(' (')[0] for n in names)})"
            traces.append({"type": "scatter", "mode": "lines", "name": name, "x": edges, "y": [value, value],
                           "line": {"dash": "dash", "color": "#c53030"}})  # fmt: skip
    labels = list(series)
    columns = ["window end", *labels] + (["threshold"] if limits and len(set(limits.values())) == 1 else [])
    rows = []
    for t in stamps:
        row: list[Any] = [t, *[_clean(dict(series[label]).get(t)) for label in labels]]
        if len(columns) > len(labels) + 1:
            row.append(next(iter(limits.values())))
        rows.append(row)
    return Chart(chart_id, title, {"data": traces, "layout": _layout(title, "window end (UTC)", y)},
                 Table(title, columns, rows))  # fmt: skip


def _distribution_chart(chart_id: str, d: Any) -> Chart:
    figures = f"{d.statistic} {_fmt(d.value)}, threshold {_fmt(d.threshold)}"
    title = f"{d.column}: reference against the latest window ({figures})"
    traces = [{"type": "bar", "name": "reference", "x": d.labels, "y": d.reference},
              {"type": "bar", "name": "current", "x": d.labels, "y": d.current}]  # fmt: skip
    layout = _layout(title, d.column, "share of rows", barmode="group")
    layout["xaxis"]["type"] = "category"
    rows = [[label, r, c] for label, r, c in zip(d.labels, d.reference, d.current, strict=True)]
    return Chart(chart_id, title, {"data": traces, "layout": layout},
                 Table(f"{d.column}: share of rows per bin", ["bin" if not d.categorical else "category",
                                                               "reference", "current"], rows))  # fmt: skip


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.3g}" if isinstance(value, float) else str(value)


def _kpi_chart(chart_id: str, kpi: str, scope: str, points: list[Any], changes: list[Any]) -> Chart:
    arms = sorted({p.arm or "" for p in points})
    traces = [_line(arm or kpi, [p.ts for p in points if (p.arm or "") == arm],
                    [p.value for p in points if (p.arm or "") == arm]) for arm in arms]  # fmt: skip
    shapes = [{"type": "line", "xref": "x", "yref": "paper", "x0": r.created_at, "x1": r.created_at, "y0": 0,
               "y1": 1, "line": {"dash": "dot", "color": "#52606d", "width": 1}} for r in changes]  # fmt: skip
    notes = [{"x": r.created_at, "y": 1, "xref": "x", "yref": "paper", "text": f"r{r.revision} {r.action}",
              "showarrow": False, "yanchor": "bottom", "font": {"size": 10}} for r in changes]  # fmt: skip
    title = f"{kpi} @ {scope}"
    layout = _layout(title, "time (UTC)", kpi, shapes=shapes, annotations=notes)
    rows = [[p.ts, p.arm or "—", p.value] for p in points]
    return Chart(chart_id, title, {"data": traces, "layout": layout}, Table(title, ["time", "arm", "value"], rows))


def _comparison_chart(chart_id: str, kpi: str, c: dict[str, Any]) -> Chart:
    labels = list(c.get("labels") or ["A", "B"])
    estimates = [c.get("estimate_a"), c.get("estimate_b")]
    traces = [{"type": "bar", "name": kpi, "x": labels, "y": [_clean(v) for v in estimates]}]
    title = f"{kpi}: mean per arm"
    layout = _layout(title, "arm", kpi)
    layout["xaxis"]["type"] = "category"
    rows = [[labels[0], _clean(c.get("estimate_a")), c.get("n_a")], [labels[1], _clean(c.get("estimate_b")),
                                                                      c.get("n_b")]]  # fmt: skip
    return Chart(chart_id, title, {"data": traces, "layout": layout},
                 Table(f"{kpi}: estimate per arm", ["arm", "estimate", "observations"], rows))  # fmt: skip


# -- the pages -----------------------------------------------------------------------------------------------------


@router.get("/deployments", **needs("catalog.read"))
@page
async def deployments(request: Request) -> Response:
    st = viewer(request)
    since = datetime.now(UTC) - timedelta(hours=24)
    listed = st.list_deployments()
    summary = st.traffic_summary(since=since)
    traffic: dict[str, dict[str, Any]] = {}
    for row in summary.itertuples(index=False):
        entry = traffic.setdefault(row.deployment, {"requests": 0, "errors": 0, "last": None, "arms": {}})
        entry["requests"] += int(row.requests)
        entry["errors"] += int(row.errors)
        entry["arms"][row.arm] = int(row.requests)
        last = _clean(row.last_ts)
        entry["last"] = last if entry["last"] is None or (last and last > entry["last"]) else entry["last"]
    return render(request, st, "deployments.html", title="Monitoring", deployments=listed, traffic=traffic,
                  since=since)  # fmt: skip


@router.get("/deployments/{name}", **needs("catalog.read"))
@page
async def deployment(request: Request, name: str) -> Response:
    st = viewer(request)
    try:
        days = int(request.query_params.get("days", "60"))
    except ValueError as e:
        raise InvalidArgument("days must be a whole number", details={"field": "days"}) from e
    if not 1 <= days <= MAX_DAYS:
        raise InvalidArgument(f"days must lie between 1 and {MAX_DAYS}", details={"field": "days"})
    current = st.get_deployment(name)
    history = st.deployment_history(name)
    traffic = st.traffic(name, days=days, bucket="1d" if days > 3 else "1h")
    charts: dict[str, Any] = {"traffic": _traffic_charts(traffic.frame) if len(traffic.frame) else []}

    monitors = []
    for i, watch in enumerate(st.deployment_monitors(name)):
        results = st.monitor_results(watch.monitor.name, limit=RESULTS)
        from modelsteward.reporting.deployment_watch import drift_series, performance_series

        drift, thresholds = drift_series(results)
        performance = performance_series(results)
        latest = results[0] if results else None
        distributions = st.drift_distributions(watch.monitor.name, latest) if latest is not None else []
        monitors.append({
            "watch": watch,
            "latest": latest,
            "drift": _series_chart(f"drift-{i}", f"Drift per column: {watch.monitor.name}",
                                   "statistic", drift, thresholds) if drift else None,
            "performance": _series_chart(f"performance-{i}", f"Performance per window: {watch.monitor.name}",
                                         "metric", performance) if performance else None,
            "distributions": [_distribution_chart(f"distribution-{i}-{j}", d) for j, d in enumerate(distributions)],
        })  # fmt: skip

    kpis, comparisons = _kpis(st, current, history, traffic)
    return render(request, st, "deployment.html", title=f"Deployment {name}", deployment=current,
                  history=history, traffic=traffic, days=days, charts=charts, monitors=monitors, kpis=kpis,
                  comparisons=comparisons)  # fmt: skip


def _kpis(st: Any, current: Any, history: list[Any], traffic: Any) -> tuple[list[Chart], list[dict[str, Any]]]:
    """The KPIs the served models name and those recorded for the deployment or its models, with the
    deployment's revisions marked; and, where a KPI has two arms, their comparison."""
    from modelsteward.reporting.deployment_watch import served_models

    models = sorted(served_models(current))
    # the deployments answering with the same models (a pipeline's step) decide with them: their KPIs belong here too
    related = [d.name for d in st.list_deployments() if d.name != current.name and served_models(d) & set(models)]
    scopes = list(dict.fromkeys([current.name, *models, *related]))
    pairs: list[tuple[str, str]] = []
    for model in models:
        try:
            named = [k.name for k in st.get_model(model).kpis]
        except StewardError:  # a model deleted since, or out of the viewer's reach: its KPIs are left out
            continue
        pairs += [(kpi, scope) for kpi in named for scope in scopes]
    for scope in scopes:
        pairs += [(kpi, scope) for kpi, _scope, _n in st.kpi_names(scope)]
    charts, comparisons = [], []
    for kpi, scope in dict.fromkeys(pairs):
        points = st.kpi_series(kpi, scope)
        if not points:
            continue
        charts.append(_kpi_chart(f"kpi-{len(charts)}", kpi, scope, points, history))
        if len({p.arm for p in points if p.arm is not None}) == 2:
            try:
                result = st.compare_kpi_arms(kpi, scope)
            except StewardError:
                continue
            comparisons.append({"kpi": kpi, "scope": scope, "result": result,
                                "chart": _comparison_chart(f"compare-{len(comparisons)}", kpi, result)})  # fmt: skip
    return charts, comparisons
