"""The monitoring pages: the deployments list, and one deployment's traffic (checked against a DuckDB count over the
log), drift with its threshold, distributions, performance and KPIs with the revisions marked; fast, refused without
a role, 404 for an unknown deployment; drawn in Chromium, also on a tablet."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelsteward.api.app import create_app
from modelsteward.monitoring.export import run_sql
from tests.web.conftest import Dashboard, Page

BUDGET_MS = 300.0


@pytest.fixture(scope="module")
def client(dashboard: Dashboard) -> Iterator[TestClient]:
    """The dashboard's app over the seeded steward, in process (no lifespan: the live server keeps serving)."""
    st = dashboard.steward
    with pytest.MonkeyPatch.context():
        yield TestClient(create_app(st.settings, steward=st))


def _get(client: TestClient, dashboard: Dashboard, path: str, who: str = "omar") -> Any:
    client.cookies.clear()
    client.cookies.set("steward_session", dashboard.tokens[who])
    return client.get(path, follow_redirects=False)


def _server_ms(response: Any) -> float:
    match = re.fullmatch(r"page;dur=([0-9.]+)", response.headers["server-timing"])
    assert match, response.headers["server-timing"]
    return float(match.group(1))


def _figures(html: str) -> dict[str, dict[str, Any]]:
    found = re.findall(r'<script type="application/json" data-chart="([^"]+)">(.*?)</script>', html, flags=re.S)
    assert all("<" not in text for _, text in found)  # escaped: nothing can close the script element
    return {name: json.loads(text) for name, text in found}


def _log_counts(dashboard: Dashboard, deployment: str) -> dict[str, tuple[int, int]]:
    """{arm: (answers, days with answers)} straight from the prediction log."""
    frame = run_sql(
        dashboard.steward.settings,
        "SELECT arm, count(DISTINCT prediction_id) AS answers, count(DISTINCT CAST(ts AS DATE)) AS days "
        f"FROM predictions WHERE deployment = '{deployment}' GROUP BY arm",
    )
    return {row.arm: (int(row.answers), int(row.days)) for row in frame.itertuples()}


@pytest.mark.parametrize("deployment", ["credit-risk", "credit-decision"])
def test_a_deployment_page_charts_its_traffic_drift_and_kpis_fast(
    client: TestClient, dashboard: Dashboard, deployment: str
) -> None:
    _get(client, dashboard, f"/ui/deployments/{deployment}")  # the first request pays for imports
    timings = []
    for _ in range(3):
        response = _get(client, dashboard, f"/ui/deployments/{deployment}")
        assert response.status_code == 200, response.text[:500]
        timings.append(_server_ms(response))
    assert min(timings) < BUDGET_MS, timings
    html = response.text
    figures = _figures(html)

    # traffic: one point per day and arm, as many answers as the log holds (the demo lies within 60 days)
    counts = _log_counts(dashboard, deployment)
    volume = {t["name"]: t for t in figures["volume"]["data"]}
    assert set(volume) == set(counts)
    for arm, (answers, days) in counts.items():
        assert sum(volume[arm]["y"]) == answers
        assert len(volume[arm]["x"]) == days
    latency = {t["name"]: t for t in figures["latency"]["data"]}
    assert {f"{arm} {q}" for arm in counts for q in ("p50", "p95")} == set(latency)
    assert all(len(latency[f"{arm} p95"]["y"]) == days for arm, (_, days) in counts.items())
    assert all(0 <= v <= 1 for t in figures["errors"]["data"] for v in t["y"])

    # drift per column, with the threshold drawn; the drifted columns' distributions
    drift = figures["drift-0"]["data"]
    names = {t["name"] for t in drift}
    assert {"income (wasserstein)", "debt_to_income (wasserstein)", "threshold"} <= names
    threshold = next(t for t in drift if t["name"] == "threshold")
    assert set(threshold["y"]) == {0.1}
    results = dashboard.steward.monitor_results("credit-risk-drift")
    assert len(next(t for t in drift if t["name"] == "income (wasserstein)")["x"]) == len(results)
    distributions = [f for k, f in figures.items() if k.startswith("distribution-0-")]
    titles = " ".join(f["layout"]["title"]["text"] for f in distributions)
    assert "income:" in titles and "debt_to_income:" in titles
    assert all(abs(sum(t["y"]) - 1) < 1e-6 for f in distributions for t in f["data"])
    assert any(t["name"].startswith("roc_auc") for t in figures["performance-0"]["data"])

    # KPIs with the deployment's revisions marked on the time axis
    history = dashboard.steward.deployment_history(deployment)
    kpis = {f["layout"]["title"]["text"]: f for k, f in figures.items() if k.startswith("kpi-")}
    approval = kpis["approval_rate @ credit-decision"]
    assert len(approval["data"][0]["x"]) == len(dashboard.steward.kpi_series("approval_rate", "credit-decision"))
    marks = [s["x0"] for s in approval["layout"]["shapes"]]
    assert len(marks) == len(history)
    assert {m[:19] for m in marks} == {r.created_at.isoformat()[:19] for r in history}

    # accessible: headings in order, every table captioned with scoped headers, every chart with its table
    levels = [int(h) for h in re.findall(r"<h([1-6])[ >]", html)]
    assert levels[0] == 1 and all(b - a <= 1 for a, b in zip(levels, levels[1:], strict=False))
    assert html.count("<table") == html.count("<caption>") and 'scope="row"' in html
    assert all(f'id="{name}-table"' in html for name in figures)


def test_the_deployments_list_shows_arms_and_the_last_day(client: TestClient, dashboard: Dashboard) -> None:
    response = _get(client, dashboard, "/ui/deployments", who="val")
    assert response.status_code == 200
    html = response.text
    for name in ("credit-risk", "credit-decision", "credit-policy", "affordability"):
        assert f'href="/ui/deployments/{name}"' in html
    assert "champion: credit-risk/3" in html
    assert _server_ms(response) < 1000


def test_an_unknown_deployment_is_a_404_page_and_no_role_is_a_403(client: TestClient, dashboard: Dashboard) -> None:
    missing = _get(client, dashboard, "/ui/deployments/no-such-deployment")
    assert missing.status_code == 404 and "no-such-deployment" in missing.text and 'role="alert"' in missing.text
    st = dashboard.steward
    if "nobody-monitoring" not in {u.name for u in st.list_users()}:
        st.create_user("nobody-monitoring")
    dashboard.tokens["nobody-monitoring"] = st.create_token("nobody-monitoring").token
    for path in ("/ui/deployments", "/ui/deployments/credit-risk"):
        refused = _get(client, dashboard, path, who="nobody-monitoring")
        assert refused.status_code == 403 and "lacks catalog.read" in refused.text
    assert _get(client, dashboard, "/ui/deployments/credit-risk?days=0").status_code == 422


def test_an_ab_deployment_compares_its_arms(tmp_path: Any, numeric_model: Any) -> None:
    from datetime import UTC, datetime, timedelta

    from modelsteward.local_steward import LocalSteward
    from modelsteward.settings import Settings

    settings = Settings(data_dir=tmp_path / "ab", scheduler=False, tune_gc=False)
    st = LocalSteward(settings=settings)
    try:
        model, X = numeric_model
        st.register_model("ab-risk", model, input_example=X.head(), capture_git=False)
        st.register_model("ab-risk", model, input_example=X.head(), capture_git=False)
        st.deploy("ab-risk", "ab-risk/1", challengers={"ab-risk/2": 0.5})
        start = datetime(2026, 1, 1, tzinfo=UTC)
        st.record_kpis([{"kpi": "approval_rate", "scope": "ab-risk", "arm": arm, "ts": start + timedelta(days=d),
                         "value": base + 0.01 * (d % 3)}
                        for d in range(20) for arm, base in (("ab-risk/1", 0.6), ("ab-risk/2", 0.5))])  # fmt: skip
        response = TestClient(create_app(settings, steward=st)).get("/ui/deployments/ab-risk")
        assert response.status_code == 200, response.text[:500]
        html = response.text
        assert 'id="comparison"' in html and "ab-risk/1 vs ab-risk/2" in html
        figure = _figures(html)["compare-0"]
        assert figure["data"][0]["x"] == ["ab-risk/1", "ab-risk/2"]
        assert figure["data"][0]["y"] == pytest.approx([0.6095, 0.5095], abs=1e-3)
        assert "No answer logged" in html  # no traffic yet: said, not drawn
    finally:
        st.close()


# -- in Chromium -------------------------------------------------------------------------------------------------


def test_from_the_list_to_a_deployment_the_charts_are_drawn(tab: Page, dashboard: Dashboard) -> None:
    page = tab.page
    tab.sign_in(dashboard.tokens["omar"])
    tab.goto("/ui/deployments")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Monitoring")
    tab.shot("deployments")
    page.locator("#deployments").get_by_role("link", name="credit-risk", exact=True).click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/ui/deployments/credit-risk")
    for chart in ("latency", "errors", "volume", "drift-0", "performance-0", "kpi-0"):
        page.wait_for_selector(f"#{chart}[data-drawn] .main-svg", timeout=15_000)
        assert page.locator(f"#{chart} .scatterlayer .trace, #{chart} .barlayer .trace").count() > 0, chart
    assert page.locator("#latency .scatterlayer .trace path.js-line").count() >= 2
    assert page.locator("#volume .barlayer .point").count() > 0
    assert page.locator("#kpi-0 .shapelayer path").count() > 0  # the revision markers
    page.get_by_text("Latency per answer (p50 and p95): the figures as a table").click()
    assert page.locator("#latency-table").is_visible()
    tab.shot("monitoring")


def test_the_deployment_page_fits_a_tablet(tab: Page, dashboard: Dashboard) -> None:
    page = tab.page
    page.set_viewport_size({"width": 768, "height": 1024})
    tab.sign_in(dashboard.tokens["val"])
    tab.goto("/ui/deployments/credit-decision")
    page.wait_for_selector("#latency[data-drawn] .main-svg", timeout=15_000)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 768 + 2, width
    tab.shot("monitoring-tablet")
