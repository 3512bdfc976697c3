"""The dashboard's sign-in through an OpenID Connect provider: /ui/login/oidc sends the browser there with a
fresh state, nonce and PKCE verifier (kept in a short-lived HttpOnly cookie), and /ui/login/callback turns the
code it comes back with into the session (the id_token, verified by ``sign_in`` on every request after)."""

from __future__ import annotations

import base64
import hmac
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from modelsteward.errors import StoreUnavailable, Unauthenticated
from modelsteward.governance import oidc_login
from modelsteward.governance.permissions import needs
from modelsteward.web.pages import environment, render
from modelsteward.web.session import set_cookies

# No prefix of its own: routes.py includes this router in its "/ui" one, and FastAPI joins the two prefixes.
router = APIRouter(include_in_schema=False)
FLOW_COOKIE = "steward_oidc"
FLOW_MINUTES = 10  # time to sign in at the provider
CALLBACK = "/ui/login/callback"


@router.get("/login/oidc", **needs(None))
def start(request: Request, next: str = "/ui") -> Response:
    settings = request.app.state.settings
    target = local(next)
    if not oidc_login.offered(settings):
        return _refused(request, "this server does not offer sign-in through an identity provider", target, 404)
    try:
        auth = oidc_login.authorization(settings, redirect_uri(request))
    except StoreUnavailable as e:
        return _refused(request, e.message, target, 503)
    response = RedirectResponse(auth.url, status_code=303)
    flow = {"state": auth.state, "nonce": auth.nonce, "verifier": auth.code_verifier, "next": target}
    # Lax, not Strict: the provider sends the browser back cross-site, and the callback must see this cookie.
    response.set_cookie(FLOW_COOKIE, _encode(flow), max_age=FLOW_MINUTES * 60, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", path=CALLBACK)  # fmt: skip
    return response


@router.get("/login/callback", **needs(None))
def callback(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
    flow = _decode(request.cookies.get(FLOW_COOKIE, ""))
    if flow is None or not hmac.compare_digest(state.encode(), flow["state"].encode()):
        return _refused(request, "this sign-in expired or was not started here: sign in again", "/ui", 400)
    if error:
        return _refused(request, f"the identity provider did not sign you in: {oidc_login.refusal(error)}",
                        flow["next"], 401)  # fmt: skip
    if not code:
        return _refused(request, "the identity provider sent no sign-in code: sign in again", flow["next"], 400)
    steward = request.app.state.steward
    try:
        token = oidc_login.id_token(request.app.state.settings, code=code, redirect_uri=redirect_uri(request),
                                    code_verifier=flow["verifier"], nonce=flow["nonce"])  # fmt: skip
        who = steward.sign_in(token)  # what every later request does with the session: it must pass here too
    except Unauthenticated as e:
        return _refused(request, e.message, flow["next"], 401)
    except StoreUnavailable as e:
        return _refused(request, e.message, flow["next"], 503)
    # A page that moves on by itself instead of a redirect: the browser arrived here from the provider's site, and
    # a redirect would keep that cross-site navigation going, so the SameSite=Strict session cookie set here would
    # not be sent with it; a navigation this page starts is same-site.
    html = environment().get_template("oidc_signed_in.html").render(user=who, next=flow["next"])
    response = HTMLResponse(html, headers={"cache-control": "no-store", "x-steward-user": who})
    set_cookies(response, request, token=token)
    response.delete_cookie(FLOW_COOKIE, path=CALLBACK, httponly=True, samesite="lax")
    return response


def redirect_uri(request: Request) -> str:
    """Where the provider sends the browser back: STEWARD_OIDC_REDIRECT_URL, else this server's callback as the
    request reached it."""
    configured: str | None = request.app.state.settings.oidc_redirect_url
    return configured or str(request.base_url).rstrip("/") + CALLBACK


def local(target: str) -> str:
    """Only a dashboard path on this server (the rule of the token sign-in's ``next``): the round trip through
    the provider must not end on another site."""
    ours = target == "/ui" or target.startswith(("/ui/", "/ui?"))
    return target if ours and "\\" not in target and target.isprintable() else "/ui"


def _refused(request: Request, message: str, target: str, status: int) -> Response:
    """The sign-in page with the reason; the flow's cookie goes, so a state is good for one callback only."""
    st = request.app.state.steward.acting_as("")
    response = render(request, st, "login.html", title="Sign in", next=target, error=message, status=status)
    response.delete_cookie(FLOW_COOKIE, path=CALLBACK, httponly=True, samesite="lax")
    return response


def _encode(flow: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(flow).encode()).decode("ascii")


def _decode(value: str) -> dict[str, str] | None:
    try:
        flow: Any = json.loads(base64.urlsafe_b64decode(value.encode("ascii")))
    except ValueError:  # binascii.Error and UnicodeError are ValueErrors too
        return None
    keys = ("state", "nonce", "verifier", "next")
    if not isinstance(flow, dict) or not all(isinstance(flow.get(k), str) and flow[k] for k in keys):
        return None
    return {"state": flow["state"], "nonce": flow["nonce"], "verifier": flow["verifier"], "next": local(flow["next"])}
