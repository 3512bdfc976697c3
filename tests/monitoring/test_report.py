"""The monitor report: one offline HTML file whose tables read without JavaScript and whose plots need no network."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelsteward.domain.monitoring import Breach, KPIPoint, Monitor, MonitorResult, MonitorSpec
from modelsteward.errors import MissingDependency
from modelsteward.local_steward import LocalSteward
from modelsteward.monitoring.report import build_report, categorical_distribution, numeric_distribution, render_report
from modelsteward.settings import Settings
from modelsteward.stats.drift import detect_drift
from modelsteward.stats.sketch import reference_sketch

SERVED = 300
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


class Page(HTMLParser):
    """The tags of a page, with their attributes, and every header cell's scope."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def count(self, tag: str) -> int:
        return sum(t == tag for t, _ in self.tags)

    def external(self) -> list[str]:
        """Resources the page would load from elsewhere (scripts, styles, images, frames)."""
        return [
            str(a.get("src") or a.get("href"))
            for t, a in self.tags
            if t in ("script", "link", "img", "iframe") and "//" in str(a.get("src") or a.get("href") or "")
        ]


def plotly_header() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()[:200]


@pytest.fixture(scope="module")
def steward(tmp_path_factory: pytest.TempPathFactory, numeric_model: Any) -> Any:
    """An embedded steward whose deployment served drifted traffic with ground truth, monitored twice."""
    model, X = numeric_model
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("report"),
        database_url=None,
        inference_url=None,
        feedback_url=None,
        log_flush_interval=0.05,
    )
    st = LocalSteward(settings=settings, actor="tester")
    st.register_model("risk", model, input_example=X.head(), training_data=X, kpis=["approval_rate"])
    st.deploy("risk", "risk/1")
    current = X.sample(SERVED, replace=True, random_state=2).reset_index(drop=True)
    current["income"] += 2 * X["income"].std()
    served = st.serve("risk", current)
    st.send_feedback("risk", [{"prediction_id": p, "actual": i % 2} for i, p in enumerate(served.prediction_ids)])
    st.stop_serving()
    checks = [{"drift": {}}, {"performance": {"metric": "roc_auc", "threshold": 0.9, "score": "proba_1"}}]
    st.put_monitor("risk-watch", {"target": {"deployment": "risk"}, "window": "1h", "checks": checks, "min_rows": 50})
    st.run_monitor("risk-watch", at=datetime.now(UTC) + timedelta(minutes=1))
    st.run_monitor("risk-watch", at=datetime.now(UTC) + timedelta(minutes=2))
    start = datetime.now(UTC) - timedelta(days=10)
    st.record_kpis(
        [{"kpi": "approval_rate", "scope": "risk", "ts": start + timedelta(days=i), "value": 0.6} for i in range(10)]
    )
    yield st
    st.close()


def test_the_report_is_one_offline_page_with_tables_plots_and_kpis(steward: Any) -> None:
    page = build_report(steward, "risk-watch")
    parsed = Page(page)
    assert "risk-watch" in page and parsed.count("h1") == 1 and parsed.count("table") >= 5
    assert page.count(plotly_header()) == 1  # the bundle, inlined once for every plot
    assert parsed.external() == [] and 'src="http' not in page  # no CDN, no external stylesheet
    scopes = [a.get("scope") for t, a in parsed.tags if t == "th"]
    assert scopes and set(scopes) <= {"col", "row"}
    for heading in ("Latest run", "Input drift in the latest run", "Input drift over time", "Performance over time"):
        assert f">{heading}</h2>" in page
    assert "<h3>income</h3>" in page  # the drifted column's distributions, reference against current
    assert "Business KPIs" in page and "approval_rate @ risk" in page
    assert "status-breach" in page and page.count('class="plotly-graph-div"') >= 4


def test_a_remote_steward_gets_the_statistics_and_a_note_instead_of_distributions(steward: Any) -> None:
    class Remote:  # the facade without the embedded body's settings, as RemoteSteward is
        def __getattr__(self, name: str) -> Any:
            if name == "settings":
                raise AttributeError(name)
            return getattr(steward, name)

    page = build_report(Remote(), "risk-watch", runs=1)
    assert "only an embedded steward" in page and "<h3>income</h3>" not in page
    assert "Drift per column" in page and page.count(plotly_header()) == 1


def _result(figures: dict[str, Any], breaches: list[Breach], *, at: datetime = NOW, run_id: int = 1) -> MonitorResult:
    status = "breach" if breaches else "ok"
    return MonitorResult(
        monitor="m",
        run_id=run_id,
        status=status,
        window_start=at - timedelta(hours=1),
        window_end=at,
        rows=500,
        figures=figures,
        breaches=breaches,
        started_at=at,
        finished_at=at,
    )


def _monitor(**spec: Any) -> Monitor:
    body = {"target": {"deployment": "d"}, "checks": [{"drift": {}}]} | spec
    return Monitor(name="m", spec=MonitorSpec.model_validate(body), created_at=NOW, updated_at=NOW)


def test_categorical_and_numeric_columns_are_drawn_from_reference_rows() -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"region": rng.choice(["n", "s"], 1000), "score": rng.normal(0, 1, 1000)})
    current = pd.DataFrame({"region": rng.choice(["n", "s", "w"], 500), "score": rng.normal(1, 1, 500)})
    report = detect_drift(reference, current)
    breaches = [
        Breach(check="drift", metric=r.statistic, value=r.value, threshold=r.threshold, column=r.column)
        for r in report.rows
        if r.drifted
    ]
    assert {b.column for b in breaches} == {"region", "score"}
    result = _result({"drift": {"status": "ok", **report.to_dict()}}, breaches)
    page = render_report(_monitor(reference={"window": "1d"}), [result], current=current, reference=reference)
    assert "<h3>region</h3>" in page and "<h3>score</h3>" in page and ">w</th>" in page  # the unseen category
    assert "window 1d" in page and page.count(plotly_header()) == 1


def test_a_monitor_that_never_ran_has_no_plots_and_a_missing_extra_names_its_install() -> None:
    page = render_report(_monitor(), [], kpis={"k @ d": [KPIPoint(kpi="k", scope="d", ts=NOW, value=1.0)]})
    assert "has not run yet" in page and "Business KPIs" in page
    Page(page)
    empty = render_report(_monitor(), [])
    assert "<script" not in empty
    saved = sys.modules.get("plotly")
    sys.modules["plotly"] = None  # type: ignore[assignment]
    try:
        with pytest.raises(MissingDependency, match=r"modelsteward\[reports\]"):
            render_report(_monitor(), [])
    finally:
        if saved is not None:
            sys.modules["plotly"] = saved
        else:
            del sys.modules["plotly"]


def test_trends_follow_the_runs_oldest_first_and_mark_breached_runs() -> None:
    def run(i: int, auc: float) -> MonitorResult:
        figures = {"performance": {"status": "ok", "values": {"roc_auc": auc}}}
        breaches = [Breach(check="performance", metric="roc_auc", value=auc, threshold=0.8)] if auc < 0.8 else []
        return _result(figures, breaches, at=NOW + timedelta(hours=i), run_id=i + 1)

    page = render_report(_monitor(), [run(2, 0.7), run(0, 0.9), run(1, 0.85)])
    trend = page[page.index("Performance per run: the values") :]
    assert trend.index(">0.9<") < trend.index(">0.85<") < trend.index(">0.7<")
    history = page[page.index("Runs, newest first") :]
    assert history.index(">3</th>") < history.index(">1</th>") and '<tr class="breached"><th scope="row">3' in history


def test_distributions_share_bins_between_a_profile_and_current_values() -> None:
    rng = np.random.default_rng(1)
    train = pd.DataFrame({"x": rng.normal(0, 1, 5000), "c": rng.choice(list("abc"), 5000)})
    profile = reference_sketch(train)
    shifted = pd.Series(rng.normal(2, 1, 800))
    labels, ref, cur = numeric_distribution(profile.column("x"), shifted, bins=20)
    assert len(labels) == 20 and ref.sum() == pytest.approx(1) and cur.sum() == pytest.approx(1)
    centres = np.array(labels, dtype=float)
    assert (centres * cur).sum() - (centres * ref).sum() == pytest.approx(2, abs=0.3)
    labels, ref, cur = categorical_distribution(profile.column("c"), pd.Series(["a"] * 90 + ["z"] * 10))
    shares = dict(zip(labels, cur, strict=True))
    assert shares["a"] == pytest.approx(0.9) and shares["z"] == pytest.approx(0.1) and ref.sum() == pytest.approx(1)
