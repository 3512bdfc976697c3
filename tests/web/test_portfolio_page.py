"""The portfolio page in Chromium, signed in as val the viewer: headline cards, the stage/unit chart and the
debt-over-time chart drawn by Plotly with their points, KPI sparklines, links to models and alerts, and a tablet
layout with no horizontal overflow."""

from __future__ import annotations

from typing import Any

from tests.web.conftest import Dashboard, Page


def _drawn(page: Any, chart: str) -> int:
    page.wait_for_selector(f"#{chart}[data-drawn] .main-svg", timeout=15_000)
    return page.locator(f"#{chart} .main-svg").count()


def test_the_portfolio_draws_its_charts_for_a_viewer(tab: Page, dashboard: Dashboard) -> None:
    page = tab.page
    tab.sign_in(dashboard.tokens["val"])
    response = tab.goto("/ui/portfolio")
    assert response.status == 200
    assert float(response.headers["server-timing"].split("dur=")[1]) < 300
    assert page.get_by_role("heading", level=1).inner_text().startswith("Portfolio")
    assert page.locator("header nav a[aria-current=page]").inner_text() == "Portfolio"

    st: Any = dashboard.steward
    cards = {k: int(page.locator(f'[data-figure="{k}"]').inner_text()) for k in
             ("models", "in_production", "with_debt", "open_alerts")}  # fmt: skip
    debt = st.model_debt()
    assert cards == {"models": 5, "in_production": 5, "with_debt": debt.with_debt,
                     "open_alerts": len([a for a in st.list_alerts() if a.status != "resolved"])}  # fmt: skip

    assert _drawn(page, "debt-history") > 0
    traces = page.locator("#debt-history .scatterlayer .trace")
    assert traces.count() >= 2  # the catalog's total and at least one indebted model
    assert page.locator("#debt-history .scatterlayer .trace .points path").count() >= 60  # a marker per day
    assert page.locator("#debt-history-table tbody tr").count() == len(st.debt_history(90)) == 60

    assert _drawn(page, "stage-units") > 0
    assert page.locator("#stage-units .barlayer .trace").count() == 1  # one business unit: Retail Credit
    assert page.locator("#stage-units .barlayer .point").count() >= 1

    for i in range(3):  # approval rate, default rate, profit per decision
        assert _drawn(page, f"kpi-{i}") > 0
        assert page.locator(f"#kpi-{i} .scatterlayer .trace").count() == 1

    links = page.locator("#models tbody th a").all_inner_texts()
    assert sorted(links) == ["affordability", "credit-policy", "credit-risk", "credit-risk-onnx", "limit-allocation"]
    assert page.locator("#newest-alerts a[href='/ui/alerts']").count() >= 1
    tab.shot("portfolio")


def test_the_portfolio_on_a_tablet_fits_its_width(browser: Any, dashboard: Dashboard) -> None:
    context = browser.new_context(viewport={"width": 768, "height": 1024})
    tab = Page(context.new_page(), dashboard.url)
    try:
        tab.sign_in(dashboard.tokens["carl"])
        tab.goto("/ui/portfolio")
        page = tab.page
        _drawn(page, "debt-history")
        _drawn(page, "stage-units")
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{overflow} px of horizontal overflow"
        tab.shot("portfolio-tablet")
        assert not tab.errors, tab.errors
    finally:
        context.close()
