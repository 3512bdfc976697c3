"""A monitor's report as one self-contained HTML file: latest status and breaches, distributions, trends, KPIs.

The file works offline: Plotly's JavaScript is inlined once, there is no CDN and no external stylesheet, and every
plot has a table with the same figures, so the report reads without JavaScript too.

>>> html = build_report(st, "credit-risk-drift", runs=30)          # doctest: +SKIP
>>> Path("report.html").write_text(html, encoding="utf-8")         # doctest: +SKIP
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from modelsteward.domain.monitoring import KPIPoint, Monitor, MonitorResult, parse_duration
from modelsteward.errors import StewardError, require
from modelsteward.monitoring.export import figure_rows
from modelsteward.stats.sketch import DriftProfile, category_counts

if TYPE_CHECKING:
    from modelsteward.monitoring.window import Window

MAX_DISTRIBUTIONS = 12  # drifted columns drawn; the drift table lists them all
MAX_CATEGORIES = 20  # bars per categorical column; the rest are summed as "(other)"
BINS = 30

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:1rem 2rem;
color:#1f2933;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{border-bottom:1px solid #d9dee3;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}
caption{text-align:left;font-weight:600;padding:.3rem 0}
th,td{border:1px solid #d9dee3;padding:.25rem .5rem;text-align:left;vertical-align:top}thead th{background:#f2f4f7}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.status{display:inline-block;padding:.1rem .6rem;border-radius:.8rem;font-weight:700;color:#fff;background:#52606d}
.status-ok{background:#2f855a}.status-breach,.status-error{background:#c53030}.status-not_enough_data{background:#b7791f}
tr.breached td{background:#fff5f5}.note{background:#fffbea;border-left:4px solid #b7791f;padding:.4rem .8rem}
figure{margin:1rem 0}figcaption{font-size:.9rem;color:#52606d}details{margin:.3rem 0 1rem}
@media print{details{display:block}}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def _table(
    caption: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, breached: Sequence[bool] = ()
) -> str:
    """A table whose first column heads each row (``<th scope="row">``)."""
    head = "".join(f'<th scope="col">{_e(c)}</th>' for c in columns)
    body = []
    for i, row in enumerate(rows):
        cells = [f'<th scope="row">{_e(_fmt(row[0]))}</th>']
        for value in row[1:]:
            numeric = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
            cells.append(f"{'<td class=num>' if numeric else '<td>'}{_e(_fmt(value))}</td>")
        flagged = ' class="breached"' if i < len(breached) and breached[i] else ""
        body.append(f"<tr{flagged}>{''.join(cells)}</tr>")
    return (
        f"<table><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _details(summary: str, content: str) -> str:
    return f"<details><summary>{_e(summary)}</summary>{content}</details>"


class _Plots:
    """Plotly figures as HTML fragments; the first one carries the inlined Plotly bundle, the others reuse it."""

    def __init__(self) -> None:
        require("plotly", "reports")
        import plotly.graph_objects as go

        self.go = go
        self.count = 0

    def figure(self, traces: list[Any], *, title: str, x: str, y: str, barmode: str | None = None) -> str:
        fig = self.go.Figure(traces)
        fig.update_layout(
            title=title,
            xaxis_title=x,
            yaxis_title=y,
            template="plotly_white",
            height=360,
            barmode=barmode,
            margin={"l": 60, "r": 20, "t": 50, "b": 50},
            legend={"orientation": "h", "y": -0.2},
        )
        self.count += 1
        fragment = fig.to_html(
            full_html=False,
            include_plotlyjs=self.count == 1,
            div_id=f"plot-{self.count}",
            config={"displaylogo": False, "responsive": True},
        )
        return f'<figure aria-label="{_e(title)}">{fragment}<figcaption>{_e(title)}</figcaption></figure>'


# -- distributions: the reference against the current window --------------------------------------------------


def numeric_distribution(reference: Any, current: pd.Series, *, bins: int = BINS) -> tuple[list[str], Any, Any]:
    """Shares of the reference and the current values on common equal-width bins. ``reference`` is a profile's
    column (each fine quantile bin placed at its mean) or the reference values."""
    cur = pd.to_numeric(current, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    cur = cur[np.isfinite(cur)]
    if isinstance(reference, pd.Series):
        ref_values = pd.to_numeric(reference, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        ref_values = ref_values[np.isfinite(ref_values)]
        ref_weights = np.ones_like(ref_values)
    else:
        counts = np.asarray(reference.summary.counts, dtype=float)
        sums = np.asarray(reference.summary.sums or np.zeros_like(counts), dtype=float)
        keep = counts > 0
        ref_values, ref_weights = sums[keep] / counts[keep], counts[keep]
    both = np.concatenate([ref_values, cur])
    if both.size == 0:
        return [], np.zeros(0), np.zeros(0)
    low, high = float(both.min()), float(both.max())
    edges = np.linspace(low, high if high > low else low + 1.0, bins + 1)
    ref_counts = np.histogram(ref_values, bins=edges, weights=ref_weights)[0]
    cur_counts = np.histogram(cur, bins=edges)[0].astype(float)
    labels = [f"{(a + b) / 2:.4g}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return labels, ref_counts / max(ref_counts.sum(), 1), cur_counts / max(cur_counts.sum(), 1)


def categorical_distribution(reference: Any, current: pd.Series) -> tuple[list[str], Any, Any]:
    """Shares of each category in the reference and the current values (the most common ones, then "(other)")."""
    if isinstance(reference, pd.Series):
        labels, counts = category_counts(reference)
        ref = dict(zip(labels.tolist(), counts.tolist(), strict=True))
    else:
        ref = dict(zip(reference.categories or [], reference.summary.counts[:-1], strict=True))
        if reference.summary.counts[-1]:
            ref["(other)"] = reference.summary.counts[-1]
    labels, counts = category_counts(current)
    cur = dict(zip(labels.tolist(), counts.tolist(), strict=True))
    ref_total, cur_total = max(sum(ref.values()), 1), max(sum(cur.values()), 1)
    shares = {k: (ref.get(k, 0) / ref_total, cur.get(k, 0) / cur_total) for k in set(ref) | set(cur)}
    order = sorted(shares, key=lambda k: (-max(shares[k]), k))
    kept, rest = order[:MAX_CATEGORIES], order[MAX_CATEGORIES:]
    ref_share = [shares[k][0] for k in kept] + ([sum(shares[k][0] for k in rest)] if rest else [])
    cur_share = [shares[k][1] for k in kept] + ([sum(shares[k][1] for k in rest)] if rest else [])
    return kept + (["(other)"] if rest else []), np.asarray(ref_share), np.asarray(cur_share)


def column_shares(
    rows: list[dict[str, Any]], current: pd.DataFrame, reference: Any
) -> Iterator[tuple[dict[str, Any], bool, list[Any], np.ndarray, np.ndarray]]:
    """For each drift row (at most MAX_DISTRIBUTIONS) whose column both sides have: the row, whether the column
    is categorical, the bins and the reference's and the current window's share of rows in each."""
    for row in rows[:MAX_DISTRIBUTIONS]:
        name = row["column"]
        if name not in current.columns:
            continue
        if isinstance(reference, DriftProfile):
            if name not in reference.names:
                continue
            ref: Any = reference.column(name)
            categorical = ref.kind == "categorical"
        elif name in reference.columns:
            ref = reference[name]
            categorical = not pd.api.types.is_numeric_dtype(ref) or pd.api.types.is_bool_dtype(ref)
        else:
            continue
        compute = categorical_distribution if categorical else numeric_distribution
        labels, ref_share, cur_share = compute(ref, current[name])
        yield row, categorical, labels, ref_share, cur_share


def _distributions(plots: _Plots, drift: dict[str, Any], current: pd.DataFrame | None, reference: Any) -> str:
    drifted = [r for r in drift.get("rows", []) if r.get("drifted")]
    if not drifted:
        return "<p>No column drifted in the latest run.</p>"
    if current is None or reference is None:
        return ""
    parts = []
    for row, _categorical, labels, ref_share, cur_share in column_shares(drifted, current, reference):
        name = row["column"]
        go = plots.go
        traces = [go.Bar(x=labels, y=ref_share, name="reference"), go.Bar(x=labels, y=cur_share, name="current")]
        title = f"{name}: {row['statistic']} {_fmt(row.get('value'))} (threshold {_fmt(row.get('threshold'))})"
        parts.append(f"<h3>{_e(name)}</h3>")
        parts.append(plots.figure(traces, title=title, x=name, y="share of rows", barmode="group"))
        data = [(label, float(r), float(c)) for label, r, c in zip(labels, ref_share, cur_share, strict=True)]
        parts.append(_details(f"{name}: the shares as a table", _table(name, ["bin", "reference", "current"], data)))
    if len(drifted) > MAX_DISTRIBUTIONS:
        parts.append(f"<p>{len(drifted) - MAX_DISTRIBUTIONS} more drifted column(s): see the drift table.</p>")
    return "".join(parts)


# -- trends over the stored runs -------------------------------------------------------------------------------


def _series(results: list[MonitorResult], pick: Any) -> dict[str, list[tuple[datetime, float | None]]]:
    """``{label: [(window end, value), ...]}`` over runs (oldest first), from ``pick(figures) -> {label: value}``."""
    out: dict[str, list[tuple[datetime, float | None]]] = {}
    for result in results:
        for label, value in pick(result.figures).items():
            out.setdefault(label, []).append((result.window_end, value))
    return out


def _drift_scores(check: str) -> Any:
    def pick(figures: dict[str, Any]) -> dict[str, float | None]:
        rows = (figures.get(check) or {}).get("rows") or []
        return {f"{r['column']} ({r['statistic']})": r.get("value") for r in rows if isinstance(r, dict)}

    return pick


def _performance(figures: dict[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name, value in ((figures.get("performance") or {}).get("values") or {}).items():
        out[name] = value
    for name, estimate in ((figures.get("estimated_performance") or {}).get("metrics") or {}).items():
        out[f"{name} (estimated)"] = estimate.get("value") if isinstance(estimate, dict) else None
    return out


def _trend(plots: _Plots, series: dict[str, list[tuple[datetime, float | None]]], *, title: str, y: str) -> str:
    go = plots.go
    traces = [
        go.Scatter(x=[t for t, _ in points], y=[v for _, v in points], mode="lines+markers", name=label)
        for label, points in series.items()
    ]
    stamps = sorted({t for points in series.values() for t, _ in points})
    labels = list(series)
    rows = [[t, *[dict(series[label]).get(t) for label in labels]] for t in stamps]
    table = _table(title, ["window end", *labels], rows)
    return plots.figure(traces, title=title, x="window end", y=y) + _details(f"{title}: the values", table)


def _kpis(plots: _Plots, kpis: dict[str, list[KPIPoint]]) -> str:
    go, parts, summary = plots.go, [], []
    for label, points in kpis.items():
        arms = sorted({p.arm or "" for p in points})
        traces = [
            go.Scatter(
                x=[p.ts for p in points if (p.arm or "") == arm],
                y=[p.value for p in points if (p.arm or "") == arm],
                mode="lines+markers",
                name=arm or label,
            )
            for arm in arms
        ]
        parts.append(plots.figure(traces, title=label, x="time", y=label.split(" @ ")[0]))
        values = [p.value for p in points]
        summary.append([label, len(points), points[-1].ts, points[-1].value, float(np.mean(values))])
    return _table("KPI series", ["KPI @ scope", "points", "latest at", "latest", "mean"], summary) + "".join(parts)


# -- the page ------------------------------------------------------------------------------------------------------


_DRIFT_COLUMNS = ("column", "type", "statistic", "value", "threshold", "p_value", "drifted", "n_reference", "n_current")
_FIGURE_KEYS = ("check_kind", "metric", "column_name", "value", "threshold", "breached")
_FIGURE_COLUMNS = ("check", "metric", "column", "value", "threshold", "breached")


def _section(key: str, heading: str, *parts: str) -> str:
    return f'<section aria-labelledby="{key}"><h2 id="{key}">{_e(heading)}</h2>{"".join(parts)}</section>'


def _latest(latest: MonitorResult) -> str:
    """The latest run: its status, window, breaches and every figure it computed."""
    status = f'<p>Status: <strong class="status status-{_e(latest.status)}">{_e(latest.status)}</strong></p>'
    reason = latest.error or latest.figures.get("reason")
    facts = [("run", latest.run_id), ("window", f"{_fmt(latest.window_start)} to {_fmt(latest.window_end)}")]
    facts += [("rows", latest.rows)] + ([("reason", reason)] if reason else [])
    parts = [status, _table("Run", ["field", "value"], facts)]
    if latest.breaches:
        rows = [(b.check, b.metric, b.column, b.value, b.threshold) for b in latest.breaches]
        parts.append(_table(f"{len(rows)} breach(es)", list(_FIGURE_COLUMNS[:-1]), rows))
    else:
        parts.append("<p>No breaches.</p>")
    figures = [r for r in figure_rows(latest) if r["metric"] is not None]
    if figures:
        rows = [[r[k] for k in _FIGURE_KEYS] for r in figures]
        flags = [r["breached"] for r in figures]
        parts.append(_table("Figures of the latest run", list(_FIGURE_COLUMNS), rows, breached=flags))
    return _section("latest", "Latest run", *parts)


def render_report(
    monitor: Monitor,
    results: list[MonitorResult],
    *,
    current: pd.DataFrame | None = None,
    reference: DriftProfile | pd.DataFrame | None = None,
    kpis: dict[str, list[KPIPoint]] | None = None,
    notes: Sequence[str] = (),
) -> str:
    """The HTML report of ``monitor`` over ``results`` (any order; the newest is the "latest run").

    ``current`` (the latest window's input columns) and ``reference`` (the training profile or reference rows) draw
    the distributions of the drifted columns; ``kpis`` maps ``"kpi @ scope"`` to its points; ``notes`` are shown
    under the title (what the report could not show, and why).
    """
    plots = _Plots()
    spec = monitor.spec
    runs = sorted(results, key=lambda r: (r.window_end, r.run_id or 0))
    latest = runs[-1] if runs else None
    title = f"Monitor {monitor.name}"
    reference_text = (
        "training data" if spec.reference == "training" else ", ".join(f"{k} {v}" for k, v in spec.reference.items())
    )
    facts = [
        ("target", spec.target.label + (f", step {spec.target.step}" if spec.target.step else "")),
        ("window", spec.window),
        ("reference", reference_text),
        ("checks", ", ".join(c.kind for c in spec.checks)),
        ("minimum rows", spec.min_rows),
        ("schedule", spec.schedule or "on demand"),
        ("runs shown", len(runs)),
        ("generated", datetime.now(UTC)),
    ]
    out = [
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{_e(title)}</title>'
        f"<style>{_CSS}</style></head><body><header><h1>{_e(title)}</h1>"
    ]
    if spec.description:
        out.append(f"<p>{_e(spec.description)}</p>")
    out.append(_table("Monitor definition", ["setting", "value"], facts))
    out.extend(f'<p class="note">{_e(note)}</p>' for note in notes)
    out.append('<noscript><p class="note">The plots need JavaScript; the tables hold the same figures.</p></noscript>')
    out.append("</header><main>")
    if latest is None:
        out.append(_section("latest", "Latest run", "<p>The monitor has not run yet.</p>"))
    else:
        out.append(_latest(latest))
        drift = latest.figures.get("drift")
        if isinstance(drift, dict) and drift.get("rows"):
            rows = [[r.get(k) for k in _DRIFT_COLUMNS] for r in drift["rows"]]
            flags = [bool(r["drifted"]) for r in drift["rows"]]
            table = _table("Drift per column", [c.replace("_", " ") for c in _DRIFT_COLUMNS], rows, breached=flags)
            distributions = _distributions(plots, drift, current, reference)
            heading = "<h3>Distributions of the drifted columns</h3>"
            out.append(_section("drift", "Input drift in the latest run", table, heading, distributions))
    for check, heading in (("drift", "Input drift over time"), ("prediction_drift", "Prediction drift over time")):
        series = _series(runs, _drift_scores(check))
        if series:
            trend = _trend(plots, series, title=f"{heading}: the deciding statistic per column", y="statistic")
            out.append(_section(f"trend-{check}", heading, trend))
    performance = _series(runs, _performance)
    if performance:
        trend = _trend(plots, performance, title="Performance per run", y="metric")
        out.append(_section("performance", "Performance over time", trend))
    if kpis:
        out.append(_section("kpis", "Business KPIs", _kpis(plots, kpis)))
    if runs:
        history = [(r.run_id, r.window_end, r.status, r.rows, len(r.breaches), r.error or "") for r in reversed(runs)]
        columns = ["run", "window end", "status", "rows", "breaches", "error"]
        flags = [r.status == "breach" for r in reversed(runs)]
        out.append(_section("history", "Run history", _table("Runs, newest first", columns, history, breached=flags)))
    out.append("</main><footer><p>Generated by Model Steward. This file is self-contained and works offline.</p>")
    out.append("</footer></body></html>")
    return "\n".join(out)


# -- gathering through the facade -----------------------------------------------------------------------------------


def _reference_profile(st: Any, window: Window) -> DriftProfile | None:
    dominant = window.dominant_version()
    if dominant is None:
        return None
    version = st.get_version(f"{dominant[0]}/{dominant[1]}")
    training = [d for d in version.datasets if d.role == "training"]
    if not training:
        return None
    profile = st.get_dataset(training[0].content_hash).fingerprint.drift_profile
    return DriftProfile.model_validate(profile) if profile is not None else None


def _windows(st: Any, monitor: Monitor, latest: MonitorResult) -> tuple[pd.DataFrame, Any]:
    """The latest run's window (input columns) and its reference, read from the embedded steward's log."""
    from modelsteward.monitoring.window import load

    spec, root = monitor.spec, st.settings.resolved_inference_url()
    current = load(root, spec.target, latest.window_start, latest.window_end)
    if spec.reference == "training":
        return current.inputs(), _reference_profile(st, current)
    length = parse_duration(spec.reference["window"])
    end = latest.window_end - parse_duration(spec.reference.get("offset", spec.reference["window"]))
    return current.inputs(), load(root, spec.target, end - length, end).inputs()


def _kpi_names(st: Any, monitor: Monitor) -> list[tuple[str, str]]:
    """The KPIs a monitor feeds (kpi_query checks) and those its target's model declares, by scope."""
    target = monitor.spec.target
    pairs = [(c.kpi_query.kpi, c.kpi_query.scope) for c in monitor.spec.checks if c.kpi_query is not None]
    if target.deployment is not None:
        models = {arm.version.partition("/")[0] for arm in st.get_deployment(target.deployment).arms}
        scopes = [target.deployment, *sorted(models - {target.deployment})]
    else:
        models = {str(target.model).partition("/")[0]}
        scopes = sorted(models)
    for model in sorted(models):
        for kpi in st.get_model(model).kpis:
            pairs.extend((kpi.name, scope) for scope in scopes)
    return list(dict.fromkeys(pairs))


def build_report(st: Any, name: str, *, runs: int = 30) -> str:
    """The report of monitor ``name`` over its last ``runs`` results, gathered through the facade.

    Distributions need the latest window's rows, which only an embedded steward reads (it has ``settings``); with
    a remote one the report shows the statistics and says why the distributions are missing.
    """
    monitor = st.get_monitor(name)
    results = st.monitor_results(name, limit=runs)
    notes: list[str] = []
    current = reference = None
    latest = max(results, key=lambda r: (r.window_end, r.run_id or 0)) if results else None
    drift = latest.figures.get("drift") if latest is not None else None
    if isinstance(drift, dict) and drift.get("drifted"):
        if getattr(st, "settings", None) is None:
            notes.append(
                "The distributions of the drifted columns need the prediction log, which only an embedded steward "
                "(--data-dir) reads: this report shows the drift statistics only."
            )
        else:
            try:
                current, reference = _windows(st, monitor, latest)  # type: ignore[arg-type]
            except StewardError as e:
                notes.append(f"The distributions could not be drawn: {e.message}")
            if reference is None or current is None or current.empty:
                notes.append("The latest window or its reference has no rows left to draw distributions from.")
                current = reference = None
    kpis: dict[str, list[KPIPoint]] = {}
    try:
        for kpi, scope in _kpi_names(st, monitor):
            points = st.kpi_series(kpi, scope)
            if points:
                kpis[f"{kpi} @ {scope}"] = points
    except StewardError as e:  # a retired deployment or a deleted model: the report goes on without KPIs
        notes.append(f"The KPIs could not be read: {e.message}")
    return render_report(monitor, results, current=current, reference=reference, kpis=kpis, notes=notes)
