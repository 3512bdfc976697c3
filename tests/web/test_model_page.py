"""The model page: credit-risk's card, versions with their figures and lineage, the life-cycle diagram with the
production stage marked, deployments, compliance runs, drivers, timeline and the report; fast; actions offered
and allowed by role, each behind the form token; in Chromium: the chart and diagram drawn, an alias moved after
confirming, a comment added, the report downloaded, and nothing offered to a viewer."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelsteward.api.app import create_app
from modelsteward.domain.lifecycle import LifecycleDefinition
from modelsteward.domain.lifecycle_svg import lifecycle_svg
from tests.web.conftest import Dashboard, Page

BUDGET_MS = 300.0
PAGE = "/ui/models/credit-risk"


@pytest.fixture(scope="module")
def client(dashboard: Dashboard) -> Iterator[TestClient]:
    """The dashboard's app over the seeded steward, in process (no lifespan: the live server keeps serving)."""
    st = dashboard.steward
    yield TestClient(create_app(st.settings, steward=st))


def _as(client: TestClient, dashboard: Dashboard, who: str) -> TestClient:
    client.cookies.clear()
    client.cookies.set("steward_session", dashboard.tokens[who])
    client.cookies.set("steward_csrf", "form-token")
    return client


def _server_ms(response: Any) -> float:
    match = re.fullmatch(r"page;dur=([0-9.]+)", response.headers["server-timing"])
    assert match, response.headers["server-timing"]
    return float(match.group(1))


def _section(html: str, heading_id: str) -> str:
    start = html.index(f'id="{heading_id}"')
    end = html.find("<section", start)
    return html[start : end if end > 0 else len(html)]


def test_credit_risk_shows_its_versions_diagram_deployments_and_compliance_fast(
    client: TestClient, dashboard: Dashboard
) -> None:
    st = dashboard.steward
    c = _as(client, dashboard, "vera")
    c.get(PAGE)  # the first request compiles the templates
    responses = [c.get(PAGE) for _ in range(3)]
    assert all(r.status_code == 200 for r in responses)
    timings = [_server_ms(r) for r in responses]
    assert max(timings) < BUDGET_MS, timings
    html = responses[-1].text

    # versions 1-3, newest first, each with its AUC; the production alias on v3
    rows = re.findall(r'<tr id="v(\d+)" data-version="\d+">(.*?)</tr>', html, flags=re.S)
    assert [int(v) for v, _ in rows] == [3, 2, 1]
    for (number, row), version in zip(rows, st.list_versions("credit-risk"), strict=True):
        assert version.version == int(number)
        assert f"<dt>AUC</dt><dd>{version.metrics['auc']:.4g}</dd>" in row
        for link in version.datasets:
            assert link.name in row and link.content_hash[:12] in row and f"{link.row_count:,}" in row
    assert "@production" in dict(rows)["3"] and "@production" not in dict(rows)["2"] + dict(rows)["1"]
    assert "0.8213" in dict(rows)["3"] and "0.8065" in dict(rows)["1"]

    # the diagram: an accessible SVG with the production stage marked with v3
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert 'role="img"' in svg and 'aria-labelledby="lifecycle-title lifecycle-desc"' in svg
    assert '<title id="lifecycle-title">Life cycle credit-models of credit-risk: v3 in production' in svg
    production = re.search(r'<g class="stage current" data-stage="production">(.*?)</g>', svg, flags=re.S)
    assert production and 'class="versions"' in production.group(1) and ">v3<" in production.group(1)
    assert '<g class="stage" data-stage="canary">' in svg  # no version there: not marked
    for label in ("submit", "canary", "promote", "retrain", "shelve"):
        assert f">{label}</text>" in svg
    stages = re.sub(r"<[^>]+>|\s+", " ", _section(html, "stage-list"))
    assert re.search(r"production : v3 \(since", stages), stages  # the same, as text below the picture

    # deployments routing to it, with their arms and a link to their monitoring page
    deployments = _section(html, "deployments-h")
    assert '<a href="/ui/deployments/credit-risk">credit-risk</a>' in deployments
    assert '<a href="/ui/deployments/credit-decision">credit-decision</a>' in deployments
    assert '<th scope="row">champion</th><td>credit-risk@production</td><td>credit-risk/3</td>' in deployments
    assert "pipeline step score" in deployments

    # compliance runs with each test's summary; the importances as a chart and a table
    compliance = _section(html, "compliance-h")
    for run in st.compliance_runs("credit-risk"):
        assert f'<th scope="row">{run.id}</th><td>{run.suite}</td><td>v{run.version}</td>' in compliance
        for result in run.results:
            assert result.summary.replace("<", "&lt;").replace(">", "&gt;") in compliance
    assert 'data-chart="importance"' in compliance and "/ui/static/plotly.min.js" in html
    top = st.feature_importance("credit-risk@production").figures["features"][0]
    assert f'<th scope="row">{top["feature"]}</th><td class="num">{top["importance"]:.4g}</td>' in compliance

    # a validator may not move aliases, deploy or request transitions: no such form; may comment and report
    assert 'action="/ui/models/credit-risk/alias"' not in html
    assert 'action="/ui/models/credit-risk/rollback"' not in html
    assert 'action="/ui/models/credit-risk/comments"' in html
    assert "/ui/models/credit-risk/report?format=html&amp;ref=credit-risk%40production" in html
    timeline = _section(html, "timeline-h")
    assert "alias.set" in timeline and "production: v2 → v3" in timeline


def test_a_data_scientist_moves_an_alias_and_the_form_token_is_required(
    client: TestClient, dashboard: Dashboard
) -> None:
    st = dashboard.steward
    c = _as(client, dashboard, "dana")
    html = c.get(PAGE).text
    assert 'action="/ui/models/credit-risk/alias"' in html and 'data-confirm="' in html
    assert "Request retrain for v3" in html  # the retraining a person may start by hand

    missing = c.post(f"{PAGE}/alias", data={"alias": "candidate", "version": "2"}, follow_redirects=False)
    assert missing.status_code == 403 and "the form expired" in missing.text
    wrong = c.post(f"{PAGE}/alias", data={"alias": "candidate", "version": "2", "csrf": "other"},
                   follow_redirects=False)  # fmt: skip
    assert wrong.status_code == 403
    assert "candidate" not in st.get_model("credit-risk").aliases

    huge = c.post(f"{PAGE}/alias", data={"alias": "candidate", "version": str(10**30), "csrf": "form-token"},
                  follow_redirects=False)  # fmt: skip
    assert huge.status_code == 422 and huge.json()["error"]["details"]["field"] == "version"  # not the driver's 500

    moved = c.post(f"{PAGE}/alias", data={"alias": "candidate", "version": "2", "csrf": "form-token"},
                   follow_redirects=False)  # fmt: skip
    assert moved.status_code == 303
    assert moved.headers["location"] == f"{PAGE}?note=credit-risk%40candidate%20now%20points%20at%20v2"
    try:
        assert st.get_model("credit-risk").aliases["candidate"] == 2
        page = c.get(moved.headers["location"]).text
        assert '<p class="notice" role="status">credit-risk@candidate now points at v2</p>' in page
    finally:
        st.delete_alias("credit-risk", "candidate")
    assert st.get_model("credit-risk").aliases["production"] == 3


def test_a_viewer_is_offered_no_action_and_is_refused_each_one(client: TestClient, dashboard: Dashboard) -> None:
    st = dashboard.steward
    c = _as(client, dashboard, "val")
    html = c.get(PAGE).text
    main = html[html.index('<main id="main"') :]
    assert "<form" not in main and "Auditor's report" not in main
    assert "v3" in main  # but sees the model
    token = {"csrf": "form-token"}
    refused = {
        "alias": {"alias": "production", "version": "1"},
        "rollback": {"deployment": "credit-risk"},
        "traffic": {"deployment": "credit-risk", "ref": "credit-risk/2", "weight": "0.5"},
        "advance": {"version": "3", "to": "production"},
        "comments": {"text": "a viewer's remark"},
    }
    for action, form in refused.items():
        response = c.post(f"{PAGE}/{action}", data={**form, **token}, follow_redirects=False)
        assert response.status_code == 403, action
        assert "val lacks" in response.text and "Not allowed" in response.text
    assert c.get(f"{PAGE}/report?format=html", follow_redirects=False).status_code == 403
    assert st.get_model("credit-risk").aliases["production"] == 3
    assert st.get_deployment("credit-risk").spec.challengers == {}


def test_the_report_downloads_as_an_attachment_and_names_the_version(client: TestClient, dashboard: Dashboard) -> None:
    c = _as(client, dashboard, "ines")
    response = c.get(f"{PAGE}/report", params={"format": "html", "ref": "credit-risk@production"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert response.headers["content-disposition"] == 'attachment; filename="credit-risk-v3-report.html"'
    assert "credit-risk/3" in response.text
    other = c.get(f"{PAGE}/report", params={"ref": "affordability@production"}, follow_redirects=False)
    assert other.status_code == 422  # this page's report is of this model's versions
    assert c.get("/ui/models/no-such-model", follow_redirects=False).status_code == 404


def test_the_svg_draws_loops_skips_and_wildcards_and_escapes_names() -> None:
    defn = LifecycleDefinition.model_validate({
        "name": "plain", "stages": [{"name": "draft"}, {"name": "live"}, {"name": "gone"}],
        "transitions": [{"name": "go", "from": "draft", "to": "live"}, {"name": "kill", "from": "*", "to": "gone"},
                        {"name": "refresh", "from": "live", "to": "live"},
                        {"name": "back", "from": "live", "to": "draft"}],
    })  # fmt: skip
    svg = lifecycle_svg(defn, None, id="x")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert 'class="stage current"' not in svg and "no version has entered it yet" in svg
    assert svg.count('class="transition"') == 5  # go, kill from draft, kill from live, refresh, back
    assert 'marker-end="url(#x-arrow)"' in svg and '<title id="x-title">' in svg
    assert "kill: draft → gone, on request" in svg


# -- in Chromium -------------------------------------------------------------------------------------------------


def test_from_the_catalog_to_the_model_page_the_chart_and_the_diagram_are_drawn(
    tab: Page, dashboard: Dashboard
) -> None:
    page = tab.page
    tab.sign_in(dashboard.tokens["vera"])
    page.get_by_role("link", name="credit-risk", exact=True).click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(PAGE)
    assert page.get_by_role("heading", level=1).inner_text().startswith("credit-risk")
    chart = page.locator("#importance.js-plotly-plot")
    chart.wait_for()
    bars = page.locator("#importance .bars .point path")  # one per feature (the error bars are apart)
    assert bars.count() == len(dashboard.steward.feature_importance("credit-risk@production").figures["features"])
    diagram = page.get_by_role("img", name=re.compile("Life cycle credit-models of credit-risk"))
    assert diagram.is_visible()
    assert page.locator("svg.lifecycle g.stage.current[data-stage=production] text.versions").text_content() == "v3"
    levels = [int(t[1]) for t in page.locator("main h1, main h2, main h3").evaluate_all("e => e.map(x => x.tagName)")]
    assert levels[0] == 1 and all(b - a <= 1 for a, b in zip(levels, levels[1:], strict=False))
    tab.shot("model-page")


def test_dana_moves_an_alias_after_confirming_and_sees_the_notice(tab: Page, dashboard: Dashboard) -> None:
    page = tab.page
    st = dashboard.steward
    tab.sign_in(dashboard.tokens["dana"])
    tab.goto(PAGE)
    questions: list[str] = []

    def confirm(dialog: Any) -> None:
        questions.append(dialog.message)
        dialog.accept()

    page.on("dialog", confirm)
    page.get_by_label("Alias", exact=True).fill("review")
    page.get_by_label("Version", exact=True).select_option("2")
    page.get_by_role("button", name="Move the alias").click()
    page.wait_for_load_state("networkidle")
    try:
        assert questions and "Point this alias" in questions[0]
        assert page.get_by_role("status").inner_text() == "credit-risk@review now points at v2"
        assert "@review" in page.locator("#v2 .aliases").inner_text()
        assert st.get_model("credit-risk").aliases["review"] == 2
    finally:
        st.delete_alias("credit-risk", "review")
    assert st.get_model("credit-risk").aliases["production"] == 3


def test_a_viewer_sees_the_model_without_any_action(tab: Page, dashboard: Dashboard) -> None:
    page = tab.page
    page.set_viewport_size({"width": 768, "height": 1000})
    tab.sign_in(dashboard.tokens["val"])
    tab.goto(PAGE)
    assert page.locator("main form").count() == 0
    assert page.locator("main input, main select, main textarea, main button[type=submit]").count() == 0
    assert page.locator("#versions tbody tr").count() == 3
    assert page.evaluate("document.documentElement.scrollWidth") <= 768  # readable on a tablet, no sideways scroll
    tab.shot("model-page-viewer-768")


def test_a_comment_joins_the_timeline_and_the_report_downloads(tab: Page, dashboard: Dashboard) -> None:
    page = tab.page
    tab.sign_in(dashboard.tokens["ines"])
    tab.goto(PAGE)
    page.on("dialog", lambda d: d.accept())
    text = "Internal Audit: report of v3 filed with the credit committee's minutes"
    page.get_by_label("Comment", exact=True).fill(text)
    page.get_by_label("On", exact=True).select_option("3")
    page.get_by_role("button", name="Add the comment").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("status").inner_text() == "comment added on v3"
    first = page.locator("#timeline li").first
    assert "ines" in first.inner_text() and text in first.inner_text() and "on v3" in first.inner_text()
    assert any(c.text == text and c.version == 3 for c in dashboard.steward.list_comments("credit-risk"))

    with page.expect_download() as download:
        page.get_by_role("link", name="Download the report of credit-risk@production (HTML)").click()
    saved = download.value
    assert saved.suggested_filename == "credit-risk-v3-report.html"
    body = open(saved.path(), encoding="utf-8").read()
    assert body.lstrip().lower().startswith("<!doctype html") and "credit-risk" in body
