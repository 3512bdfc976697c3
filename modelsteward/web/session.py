"""Who is looking: the dashboard's session (an API token or an identity provider's token kept in an HttpOnly
cookie), the facade acting as them, and the CSRF token every form carries."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from fastapi import Request

from modelsteward.errors import StewardError, Unauthenticated
from modelsteward.local_steward import LocalSteward

SESSION_COOKIE = "steward_session"
CSRF_COOKIE = "steward_csrf"
SESSION_HOURS = 8


class LoginRequired(StewardError):
    """The page needs a signed-in user: the dashboard answers with the login page."""

    code = "login_required"
    http_status = 401


def protected(settings: Any) -> bool:
    """Does this server check who calls it? Not an open laptop server, where everyone is the local admin."""
    return bool(settings.auth_required or settings.api_token is not None)


def viewer(request: Request) -> LocalSteward:
    """The facade as the signed-in user, checked against their roles; the local admin on an open server."""
    steward: LocalSteward = request.app.state.steward
    settings = request.app.state.settings
    if not protected(settings):
        return steward.acting_as(settings.user)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequired("sign in to see this page", details={"next": request.url.path})
    try:
        actor = steward.sign_in(token)
    except Unauthenticated as e:
        raise LoginRequired(e.message, details={"next": request.url.path}) from e
    return steward.acting_as(actor, enforce=True, request={"method": request.method, "path": request.url.path})


def csrf_token(request: Request) -> str:
    """The form token for this browser (double-submit: the cookie and the form field must match)."""
    return request.cookies.get(CSRF_COOKIE) or request.state.__dict__.setdefault("csrf", secrets.token_urlsafe(24))


def check_csrf(request: Request, submitted: str | None) -> None:
    expected = request.cookies.get(CSRF_COOKIE)
    if not expected or not submitted or not hmac.compare_digest(expected, submitted):
        from modelsteward.errors import Forbidden

        raise Forbidden("the form expired or came from another site: reload the page and try again",
                        details={"field": "csrf"})  # fmt: skip


def set_cookies(response: Any, request: Request, *, token: str | None = None) -> None:
    """Keep the CSRF token (and, at sign-in, the session) in cookies the page's script cannot read."""
    secure = request.url.scheme == "https"
    if token is not None:
        response.set_cookie(SESSION_COOKIE, token, max_age=SESSION_HOURS * 3600, httponly=True, samesite="strict",
                            secure=secure, path="/")  # fmt: skip
    if CSRF_COOKIE not in request.cookies:
        response.set_cookie(CSRF_COOKIE, csrf_token(request), httponly=True, samesite="strict", secure=secure,
                            path="/")  # fmt: skip
