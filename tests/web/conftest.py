"""The dashboard in a real browser: Debian's Chromium driven by playwright against a server with the demo seeded
and tokens demanded. Outside CI the browser tests skip, with the reason, when Chromium or playwright is missing;
in CI (CI=true) they fail instead, since .ci/run installs both."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from modelsteward.settings import Settings
from tests.conftest import free_port

ADMIN = "dashboard-admin-token-for-the-browser-tests"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the browser tests (.ci/run installs Chromium)")
    pytest.skip(f"{reason}: the browser tests need Debian's chromium (apt-get install chromium) and playwright")


@dataclass
class Dashboard:
    """The demo served on a free port, with a token per demo user (and one for a viewer)."""

    url: str
    steward: Any
    tokens: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    import uvicorn

    from modelsteward.api.app import create_server
    from modelsteward.demo.lifecycle_story import USERS
    from modelsteward.demo.seed import seed_demo

    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("STEWARD_")]:
            mp.delenv(key)
        settings = Settings(data_dir=tmp_path_factory.mktemp("dashboard"), demo=True, scheduler=False,
                            auth="required", api_token=SecretStr(ADMIN), tune_gc=False)  # fmt: skip
        app = create_server(settings)
        st = app.state.steward
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the dashboard's server did not start")
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        seed_demo(st, inbox_url=f"{url}/demo/inbox")
        board = Dashboard(url=url, steward=st)
        for name in [*USERS, "val"]:
            if name not in {u.name for u in st.list_users()}:
                st.create_user(name)
            board.tokens[name] = st.create_token(name).token
        st.grant_role("val", "viewer")
        board.tokens["admin"] = ADMIN
        yield board
        server.should_exit = True
        thread.join(timeout=15)
        st.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        _missing("no chromium on PATH")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Page:
    """A browser tab that records console errors and failed requests, signs in, and saves screenshots."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def sign_in(self, token: str) -> None:
        self.page.goto(f"{self.base}/ui/login")
        self.page.get_by_label("API token").fill(token)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_load_state("networkidle")

    def goto(self, path: str) -> Any:
        response = self.page.goto(f"{self.base}{path}")
        self.page.wait_for_load_state("networkidle")
        return response

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def tab(browser: Any, dashboard: Dashboard) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = Page(context.new_page(), dashboard.url)
    yield page
    context.close()
    assert not page.errors, f"errors in the browser console: {page.errors}"
