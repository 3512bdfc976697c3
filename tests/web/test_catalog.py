"""The catalog page in Chromium: sign in, every demo model listed with its stage, health and debt, filter and
sort on the server, refusal without a role, and a sign-in that bad tokens cannot pass."""

from __future__ import annotations

from typing import Any

from tests.web.conftest import Dashboard, Page


def test_sign_in_then_the_catalog_lists_every_model(tab: Page, dashboard: Dashboard) -> None:
    page = tab.page
    tab.goto("/ui")
    assert "/ui/login" in page.url  # no session: the sign-in form
    tab.sign_in(dashboard.tokens["vera"])
    assert page.url.endswith("/ui")
    names = page.locator("#catalog tbody th a").all_inner_texts()
    assert names == ["affordability", "credit-policy", "credit-risk", "credit-risk-onnx", "limit-allocation"]
    row = page.locator("#catalog tbody tr", has_text="credit-risk").first
    assert "production" in row.inner_text() and "v3" in row.inner_text()
    assert page.locator(".who").inner_text().startswith("vera")
    tab.shot("catalog")

    page.get_by_role("combobox", name="Kind").select_option("rules")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("#catalog tbody th a").all_inner_texts() == ["credit-policy"]
    tab.goto("/ui?order_by=-name")
    assert page.locator("#catalog tbody th a").first.inner_text() == "limit-allocation"


def test_a_bad_token_is_refused_at_sign_in_and_a_principal_without_a_role_sees_why(
    tab: Page, dashboard: Dashboard
) -> None:
    page = tab.page
    tab.goto("/ui/login")
    page.get_by_label("API token").fill("stw_1_not-a-real-secret")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").is_visible()
    tab.errors.clear()  # the 401 of the refused sign-in is the expected answer, not a page error
    st: Any = dashboard.steward
    st.create_user("nobody-at-all")
    tab.sign_in(st.create_token("nobody-at-all").token)
    response = tab.goto("/ui")
    assert response.status == 403 and "lacks catalog.read" in page.get_by_role("alert").inner_text()
    tab.errors.clear()
