"""Request dependencies: who is calling (from their API token), the facade acting as them, and the checks
on changes and on administration."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from modelsteward.errors import Forbidden, Unauthenticated
from modelsteward.local_steward import LocalSteward

ADMIN_TOKEN_ACTOR = "token:admin"  # whoever holds the server's STEWARD_API_TOKEN (the bootstrap admin)


def bearer(authorization: str | None) -> str | None:
    scheme, _, value = (authorization or "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def authenticate(steward: LocalSteward, settings: object, token: str) -> str:
    """The actor a token names: the bootstrap admin for STEWARD_API_TOKEN, an identity provider's user for its
    JWT when OpenID Connect is configured (roles come from Steward's grants to that name), else its user or
    service account."""
    expected = getattr(settings, "api_token", None)
    if expected is not None and hmac.compare_digest(token.encode(), expected.get_secret_value().encode()):
        return ADMIN_TOKEN_ACTOR
    if getattr(settings, "oidc_issuer", None):
        from modelsteward.governance.oidc import looks_like_jwt, verifier_for

        if looks_like_jwt(token):  # a stw_ token never has a JWT's three dot-separated segments
            return verifier_for(settings).verify(token)  # type: ignore[arg-type]
    return steward.authenticate(token)


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


def get_steward(request: Request) -> LocalSteward:
    """The facade for a read: as the token's principal; anonymous when the server does not demand one."""
    steward: LocalSteward = request.app.state.steward
    settings = request.app.state.settings
    actor = _caller(request, required=settings.auth_required)
    return steward.acting_as(actor or request.app.state.anonymous_actor)


def get_writer(request: Request) -> LocalSteward:
    """The facade for a change: with a token when the server demands one or has STEWARD_API_TOKEN;
    on an open laptop server, as the ``x-steward-actor`` the client names."""
    steward: LocalSteward = request.app.state.steward
    settings = request.app.state.settings
    required = settings.auth_required or settings.api_token is not None
    actor = _caller(request, required=required)
    if actor is None:
        actor = (request.headers.get("x-steward-actor") or request.app.state.anonymous_actor)[:256]
    return steward.acting_as(actor)


def get_admin(request: Request) -> LocalSteward:
    """The facade for administration (users, tokens, roles): the bootstrap admin or a global admin. On an
    open laptop server (no token demanded, none configured) everyone is the local admin."""
    writer = get_writer(request)
    settings = request.app.state.settings
    if not (settings.auth_required or settings.api_token is not None):
        return writer
    if writer.actor == ADMIN_TOKEN_ACTOR or writer.has_role(writer.actor, "admin"):
        return writer
    raise Forbidden(f"{writer.actor} is not an admin: users, tokens and roles are administered by admins",
                    details={"user": writer.actor, "role": "admin"})  # fmt: skip


Reader = Annotated[LocalSteward, Depends(get_steward)]
Writer = Annotated[LocalSteward, Depends(get_writer)]
Admin = Annotated[LocalSteward, Depends(get_admin)]
