"""The portfolio page over HTTP on the seeded demo: its figures are the facade's, it answers in under 300 ms of
server time, its tables are accessible, and the debt history follows the demo's story."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelsteward.reporting import portfolio_summary as summary
from tests.web.conftest import Dashboard


@pytest.fixture(scope="module")
def client(dashboard: Dashboard) -> Iterator[TestClient]:
    from modelsteward.api.app import create_app

    st = dashboard.steward
    with TestClient(create_app(st.settings, steward=st)) as c:
        c.cookies.set("steward_session", dashboard.tokens["val"])
        yield c


def _figure(html: str, name: str) -> int:
    match = re.search(rf'data-figure="{name}">(\d+)<', html)
    assert match, name
    return int(match.group(1))


class _Outline(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.headings: list[int] = []
        self.tables = self.captions = 0
        self.th_without_scope = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        elif tag == "table":
            self.tables += 1
        elif tag == "caption":
            self.captions += 1
        elif tag == "th" and "scope" not in dict(attrs):
            self.th_without_scope += 1


def test_the_figures_are_the_facades_and_the_page_is_fast(client: TestClient, dashboard: Dashboard) -> None:
    st: Any = dashboard.steward
    client.get("/ui/portfolio")  # warm: the templates compile once per process
    response = client.get("/ui/portfolio")
    assert response.status_code == 200
    server_ms = float(response.headers["server-timing"].split("dur=")[1])
    assert server_ms < 300, f"server time {server_ms} ms"
    html = response.text
    rows, total = st.catalog_overview(limit=None)
    open_alerts = [a for a in st.list_alerts(limit=10_000) if a.status != "resolved"]
    assert _figure(html, "models") == total == 5
    assert _figure(html, "in_production") == sum(1 for r in rows if r.production_version) == 5
    assert _figure(html, "with_debt") == st.model_debt().with_debt
    assert _figure(html, "open_alerts") == len(open_alerts) >= 1
    for r in rows:
        assert f'href="/ui/models/{r.name}"' in html
    table = summary.stage_unit_table(rows)
    assert "production" in table.stages and table.units == ["Retail Credit"]
    assert table.stage_total("production") == 5  # credit-risk/3 (life cycle) and four by their production alias
    for kpi in ("approval_rate", "default_rate_90d", "profit_per_decision"):
        assert f'data-kpi-latest="{kpi}"' in html
    assert 'id="debt-history"' in html and 'id="stage-units"' in html and 'href="/ui/alerts"' in html
    assert html.count('id="stage-units"') == 1  # the chart's id is its own (the table is stage-units-table)


def test_headings_in_order_and_every_table_captioned(client: TestClient) -> None:
    outline = _Outline()
    outline.feed(client.get("/ui/portfolio").text)
    assert outline.headings[0] == 1 and outline.headings.count(1) == 1
    assert all(b - a <= 1 for a, b in zip(outline.headings, outline.headings[1:], strict=False))
    assert outline.tables >= 6 and outline.tables == outline.captions and outline.th_without_scope == 0


def test_the_debt_history_tells_the_demo_story(dashboard: Dashboard) -> None:
    history = dashboard.steward.debt_history(90)
    assert len(history) == 60  # one snapshot per simulated day
    credit = [p.models["credit-risk"] for p in history]
    assert credit[0] == 0 and max(credit[:30]) == 0  # watched and quiet before the downturn
    assert credit[32] > credit[29]  # after the day-31 downturn: findings, then the day-33 drift alert
    assert max(credit) == credit[36]  # day 37: the promotion stopped at a gate
    assert history[-1].total == dashboard.steward.model_debt().total


def test_without_a_session_the_page_asks_to_sign_in(dashboard: Dashboard) -> None:
    from modelsteward.api.app import create_app

    st = dashboard.steward
    with TestClient(create_app(st.settings, steward=st)) as anonymous:
        response = anonymous.get("/ui/portfolio", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/ui/login?next=")
