"""Request dependencies: who is calling (from their API token) and the facade acting as them, which checks
every call against the caller's roles; and ``needs``, how a route declares the permission it takes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from modelsteward.errors import Unauthenticated
from modelsteward.governance.permissions import BOOTSTRAP_ADMIN
from modelsteward.governance.permissions import PERMISSION_KEY as PERMISSION_KEY  # routes and tests import them here
from modelsteward.governance.permissions import needs as needs
from modelsteward.local_steward import LocalSteward

ADMIN_TOKEN_ACTOR = BOOTSTRAP_ADMIN  # whoever holds the server's STEWARD_API_TOKEN


def bearer(authorization: str | None) -> str | None:
    scheme, _, value = (authorization or "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def authenticate(steward: LocalSteward, settings: object, token: str) -> str:
    """The actor a token names (see ``LocalSteward.sign_in``); ``settings`` must be the steward's own."""
    return steward.sign_in(token)


def _caller(request: Request, *, required: bool) -> str | None:
    token = bearer(request.headers.get("authorization"))
    if token is None:
        if required:
            raise Unauthenticated(
                "this server requires a token: send 'Authorization: Bearer <token>' (steward tokens create)",
                details={"header": "authorization"},
            )
        return None
    return authenticate(request.app.state.steward, request.app.state.settings, token)


def check_caller(request: Request) -> None:
    """Raise Unauthenticated when the server demands a token and the route is not public, unless the request
    carries a valid one: for the errors FastAPI meets before any dependency ran (an unreadable body). The
    dashboard's pages (/ui) sign in with a session cookie and answer for themselves."""
    if not request.url.path.startswith(("/api/", "/v2/")):
        return
    settings = request.app.state.settings
    route = request.scope.get("route")
    public = (getattr(route, "openapi_extra", None) or {}).get(PERMISSION_KEY) == "public"
    if settings.auth_required and not public:
        _caller(request, required=True)


def _about(request: Request) -> dict[str, str]:
    return {"method": request.method, "path": request.url.path}


def _protected(settings: Any) -> bool:
    """Does this server check who calls it? Not an open laptop server (no token demanded or configured),
    where everyone is the local admin."""
    return bool(settings.auth_required or settings.api_token is not None)


def get_steward(request: Request) -> LocalSteward:
    """The facade for a read: as the token's principal, checked against its roles. Where the server lets
    reads in without a token (STEWARD_API_TOKEN set, auth off), the anonymous caller reads as a viewer."""
    steward: LocalSteward = request.app.state.steward
    settings = request.app.state.settings
    actor = _caller(request, required=settings.auth_required)
    if not _protected(settings):
        return steward.acting_as(actor or request.app.state.anonymous_actor)
    if actor is None:
        return steward.acting_as(
            request.app.state.anonymous_actor, enforce=True, implicit_roles=("viewer",), request=_about(request)
        )
    return steward.acting_as(actor, enforce=True, request=_about(request))


def get_writer(request: Request) -> LocalSteward:
    """The facade for a change: with a token, checked against its principal's roles, when the server
    demands one or has STEWARD_API_TOKEN; on an open laptop server, as the ``x-steward-actor`` the client
    names, unchecked."""
    steward: LocalSteward = request.app.state.steward
    settings = request.app.state.settings
    actor = _caller(request, required=_protected(settings))
    if actor is None:
        return steward.acting_as((request.headers.get("x-steward-actor") or request.app.state.anonymous_actor)[:256])
    return steward.acting_as(actor, enforce=True, request=_about(request))


def get_inference(request: Request) -> LocalSteward:
    """The facade for inference, feedback and serving metadata: with a valid token, checked, when the server
    demands one; open otherwise (applications on a laptop or an internal network)."""
    steward: LocalSteward = request.app.state.steward
    if not request.app.state.settings.auth_required:
        return steward
    actor = _caller(request, required=True)
    assert actor is not None
    return steward.acting_as(actor, enforce=True, request=_about(request))


Reader = Annotated[LocalSteward, Depends(get_steward)]
Writer = Annotated[LocalSteward, Depends(get_writer)]
Admin = Writer  # administration is checked like every change: identity.admin (see governance.permissions)
