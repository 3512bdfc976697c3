"""Dashboard sign-in through an OpenID Connect provider (authorization code + PKCE): the provider's user lands on
the dashboard with a session; a wrong state, a replayed code, a wrong nonce or a refusal end on the sign-in page
with the reason and no session; nothing sends the browser to another site."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from pydantic import SecretStr

from modelsteward.api.app import create_app
from modelsteward.catalog.registration import prepare_registration
from modelsteward.governance.oidc_login import code_challenge
from modelsteward.settings import Settings
from tests.conftest import free_port
from tests.governance.test_oidc import FakeIdP
from tests.web.conftest import Page

ADMIN = "bootstrap-admin-token-for-oidc-login"
CLIENT_ID = "steward-dashboard"
SECRET = "dashboard-client-secret"
TESTSERVER_CALLBACK = "http://testserver/ui/login/callback"


class LoginIdP(FakeIdP):
    """The fake IdP, plus an authorization endpoint that signs ``user`` in at once (checking the client, the
    redirect URI and the PKCE challenge) and a token endpoint (checking the code, once, the verifier against the
    challenge and the client secret) that issues an id_token carrying the nonce."""

    def __init__(self, keys: dict[str, rsa.RSAPrivateKey], *, secret: str | None = SECRET) -> None:
        super().__init__(keys)
        self.secret = secret
        self.redirect_uri = TESTSERVER_CALLBACK
        self.user = "alice"
        self.refuse: str | None = None  # an ?error= to answer the authorization request with
        self.nonce: str | None = None  # a nonce to put in id_tokens instead of the one asked for
        self.codes: dict[str, dict[str, str]] = {}
        self.issued: list[str] = []
        idp = self
        base: Any = self.server.RequestHandlerClass

        class Handler(base):  # type: ignore[misc, valid-type]
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                url = urlsplit(self.path)
                if url.path == "/.well-known/openid-configuration":
                    idp.send(self, 200, {"issuer": idp.issuer, "jwks_uri": f"{idp.issuer}/jwks",
                                         "authorization_endpoint": f"{idp.issuer}/authorize",
                                         "token_endpoint": f"{idp.issuer}/token"})  # fmt: skip
                elif url.path == "/authorize":
                    idp.authorize(self, {k: v[0] for k, v in parse_qs(url.query).items()})
                else:
                    super().do_GET()

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if urlsplit(self.path).path != "/token":
                    self.send_error(404)
                    return
                status, body = idp.exchange(form, self.headers.get("authorization", ""))
                idp.send(self, status, body)

        self.server.RequestHandlerClass = Handler

    @staticmethod
    def send(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def authorize(self, handler: BaseHTTPRequestHandler, query: dict[str, str]) -> None:
        expected = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": self.redirect_uri,
                    "code_challenge_method": "S256"}  # fmt: skip
        wrong = [k for k, v in expected.items() if query.get(k) != v]
        if wrong or "openid" not in query.get("scope", "").split() or not query.get("code_challenge"):
            self.send(handler, 400, {"error": "invalid_request", "wrong": wrong})
            return
        if self.refuse:
            answer = {"error": self.refuse, "error_description": "Call +1 555 0100 to unlock", "state": query["state"]}
        else:
            code = base64.urlsafe_b64encode(time.time_ns().to_bytes(8, "big")).decode().rstrip("=")
            self.codes[code] = {"challenge": query["code_challenge"], "nonce": query.get("nonce", ""),
                                "redirect_uri": query["redirect_uri"], "used": ""}  # fmt: skip
            answer = {"code": code, "state": query["state"]}
        handler.send_response(302)
        handler.send_header("location", f"{self.redirect_uri}?{urlencode(answer)}")
        handler.send_header("content-length", "0")
        handler.end_headers()

    def exchange(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        if self.secret is not None:
            basic = base64.b64encode(f"{CLIENT_ID}:{self.secret}".encode()).decode()
            if authorization != f"Basic {basic}":
                return 401, {"error": "invalid_client"}
        elif form.get("client_id") != CLIENT_ID:
            return 401, {"error": "invalid_client"}
        grant = self.codes.get(form.get("code", ""))
        if form.get("grant_type") != "authorization_code" or grant is None or grant["used"]:
            return 400, {"error": "invalid_grant", "error_description": "unknown or used code"}
        grant["used"] = "yes"
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri differs"}
        if code_challenge(form.get("code_verifier", "")) != grant["challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verifier does not match"}
        token = self.token(aud=CLIENT_ID, nonce=self.nonce or grant["nonce"], preferred_username=self.user)
        self.issued.append(token)
        return 200, {"access_token": "opaque", "token_type": "Bearer", "expires_in": 300, "id_token": token}


@pytest.fixture(scope="module")
def keys() -> dict[str, rsa.RSAPrivateKey]:
    return {"k1": rsa.generate_private_key(public_exponent=65537, key_size=2048)}


def _settings(tmp_path: Path, idp: LoginIdP, **more: Any) -> Settings:
    values = {"oidc_issuer": idp.issuer, "oidc_audience": CLIENT_ID, "oidc_client_id": CLIENT_ID, **more}
    return Settings(data_dir=tmp_path, auth="required", api_token=SecretStr(ADMIN), scheduler=False, tune_gc=False,
                    **values)  # fmt: skip


@pytest.fixture(params=["confidential", "public"])
def setup(request: pytest.FixtureRequest, tmp_path: Path, keys: Any) -> Iterator[tuple[TestClient, LoginIdP]]:
    """A server trusting the fake IdP for sign-in: a confidential client (secret) or a public one (PKCE alone)."""
    confidential = request.param == "confidential"
    idp = LoginIdP(keys, secret=SECRET if confidential else None)
    app = create_app(_settings(tmp_path, idp, oidc_client_secret=SecretStr(SECRET) if confidential else None))
    with TestClient(app) as client:
        yield client, idp
    app.state.steward.close()
    idp.stop()


def _to_idp(client: TestClient, idp: LoginIdP, next: str = "/ui") -> str:
    """Starts a sign-in and lets the IdP answer: the callback URL it sends the browser to."""
    start = client.get("/ui/login/oidc", params={"next": next}, follow_redirects=False)
    assert start.status_code == 303, start.text
    assert start.headers["location"].startswith(f"{idp.issuer}/authorize?")
    cookie = start.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/ui/login/callback" in cookie
    at_idp = httpx.get(start.headers["location"], follow_redirects=False)
    assert at_idp.status_code == 302, at_idp.text
    return at_idp.headers["location"]


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _continues_to(response: httpx.Response) -> str:
    found = re.search(r'http-equiv="refresh" content="0; url=([^"]*)"', response.text)
    assert found, response.text
    return found.group(1).replace("&amp;", "&")


def _session_set(response: httpx.Response) -> bool:
    return any(c.startswith("steward_session=") for c in response.headers.get_list("set-cookie"))


def test_the_idps_user_signs_in_and_sees_the_catalog_once_granted_a_role(setup: tuple[TestClient, LoginIdP]):
    client, idp = setup
    assert "Sign in with your identity provider" in client.get("/ui/login").text
    back = client.get(_to_idp(client, idp, next="/ui?kind=sklearn"), follow_redirects=False)
    assert back.status_code == 200 and back.headers["x-steward-user"] == "alice"
    assert _session_set(back) and _continues_to(back) == "/ui?kind=sklearn"
    assert client.cookies.get("steward_session") == idp.issued[-1]  # the session is the id_token
    assert client.get("/ui").status_code == 403  # signed in as alice, who holds no role yet
    client.app.state.steward.grant_role("alice", "viewer")  # type: ignore[attr-defined]
    catalog = client.get("/ui")
    assert catalog.status_code == 200 and "alice" in catalog.text
    assert idp.issued[-1] not in catalog.text


def test_a_wrong_state_is_refused_without_a_session(setup: tuple[TestClient, LoginIdP]) -> None:
    client, idp = setup
    callback = _to_idp(client, idp)
    forged = f"{TESTSERVER_CALLBACK}?{urlencode({**_query(callback), 'state': 'not-the-state'})}"
    response = client.get(forged, follow_redirects=False)
    assert response.status_code == 400 and "expired or was not started here" in response.text
    assert not _session_set(response) and not idp.issued  # the code was never exchanged
    again = client.get(callback, follow_redirects=False)  # the right state, but the flow is spent
    assert again.status_code == 400 and not _session_set(again)


def test_a_replayed_code_is_refused_by_the_idp_and_shown(setup: tuple[TestClient, LoginIdP]) -> None:
    client, idp = setup
    first = _query(_to_idp(client, idp))
    assert _session_set(client.get(f"{TESTSERVER_CALLBACK}?{urlencode(first)}", follow_redirects=False))
    second = _query(_to_idp(client, idp))  # a new flow, and the old code with its state
    replayed = client.get(f"{TESTSERVER_CALLBACK}?{urlencode({**second, 'code': first['code']})}",
                          follow_redirects=False)  # fmt: skip
    assert replayed.status_code == 401 and "refused the sign-in (invalid_grant)" in replayed.text
    assert not _session_set(replayed) and "Traceback" not in replayed.text


def test_a_token_with_another_nonce_is_refused_and_never_shown(setup: tuple[TestClient, LoginIdP]) -> None:
    client, idp = setup
    idp.nonce = "a-nonce-from-another-sign-in"
    response = client.get(_to_idp(client, idp), follow_redirects=False)
    assert response.status_code == 401 and "not issued for this sign-in (nonce)" in response.text
    assert not _session_set(response) and idp.issued and idp.issued[-1] not in response.text


def test_an_idp_refusal_shows_its_meaning_but_not_its_free_text(setup: tuple[TestClient, LoginIdP]) -> None:
    client, idp = setup
    idp.refuse = "access_denied"
    response = client.get(_to_idp(client, idp), follow_redirects=False)
    assert response.status_code == 401 and not _session_set(response)
    assert "you declined, or the identity provider does not let you use Model Steward (access_denied)" in response.text
    assert "555 0100" not in response.text  # a link anyone can craft must not put words on our page


def test_next_never_leaves_the_dashboard(setup: tuple[TestClient, LoginIdP]) -> None:
    client, idp = setup
    for target in ("https://evil.example", "//evil.example/ui", "/ui\\@evil.example", "/api/v1/models"):
        back = client.get(_to_idp(client, idp, next=target), follow_redirects=False)
        assert back.status_code == 200 and _continues_to(back) == "/ui", target


def test_sign_in_is_not_offered_without_a_client_id(tmp_path: Path, keys: Any) -> None:
    idp = LoginIdP(keys)
    app = create_app(_settings(tmp_path, idp, oidc_client_id=None))
    try:
        with TestClient(app) as client:
            assert "Sign in with your identity provider" not in client.get("/ui/login").text
            response = client.get("/ui/login/oidc", follow_redirects=False)
            assert response.status_code == 404 and "does not offer sign-in" in response.text
    finally:
        app.state.steward.close()
        idp.stop()


# -- in a browser ------------------------------------------------------------------------------------------------


@pytest.fixture
def live(tmp_path: Path, keys: Any, numeric_model: Any) -> Iterator[tuple[str, LoginIdP]]:
    """A server (no demo) trusting the fake IdP, with one model registered and alice granted the viewer role."""
    import uvicorn

    idp = LoginIdP(keys)
    app = create_app(_settings(tmp_path, idp, oidc_client_secret=SecretStr(SECRET)))
    st = app.state.steward
    model, X = numeric_model
    st.register_prepared(prepare_registration("risk", model, input_example=X.head()))
    st.grant_role("alice", "viewer")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    idp.redirect_uri = f"{url}/ui/login/callback"
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield url, idp
    server.should_exit = True
    thread.join(timeout=15)
    st.close()
    idp.stop()


def test_in_a_browser_the_idp_button_lands_on_the_catalog(browser: Any, live: tuple[str, LoginIdP]) -> None:
    url, idp = live
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    tab = Page(context.new_page(), url)
    try:
        tab.goto("/ui")  # not signed in: the sign-in page
        assert "/ui/login" in tab.page.url
        tab.shot("oidc-login-page")
        tab.page.get_by_role("button", name="Sign in with your identity provider").click()
        tab.page.wait_for_url(f"{url}/ui", timeout=10_000)
        tab.page.wait_for_load_state("networkidle")
        assert tab.page.get_by_role("link", name="risk", exact=True).first.is_visible()
        assert "alice" in tab.page.locator("header .who").inner_text()
        tab.shot("oidc-login-catalog")
    finally:
        context.close()
    assert not tab.errors, f"errors in the browser console: {tab.errors}"
