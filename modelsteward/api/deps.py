"""Request dependencies: the facade for this request, acting as the caller, and the write check."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from modelsteward.errors import Unauthenticated
from modelsteward.local_steward import LocalSteward


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def get_steward(request: Request) -> LocalSteward:
    steward: LocalSteward = request.app.state.steward
    return steward.acting_as(request.app.state.anonymous_actor)


def get_writer(request: Request) -> LocalSteward:
    """The facade for a change; when the server has a token, the request must carry it."""
    steward: LocalSteward = request.app.state.steward
    expected = request.app.state.settings.api_token
    if expected is None:
        actor = request.headers.get("x-steward-actor") or request.app.state.anonymous_actor
        return steward.acting_as(actor[:256])
    given = _bearer(request)
    if given is None or not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise Unauthenticated(
            "this server requires a token for changes: send 'Authorization: Bearer <token>'",
            details={"header": "authorization"},
        )
    return steward.acting_as("token:admin")


Reader = Annotated[LocalSteward, Depends(get_steward)]
Writer = Annotated[LocalSteward, Depends(get_writer)]
