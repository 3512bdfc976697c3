"""The demo's webhook receiver: the operations inbox the demo's alert is delivered to (``--demo`` only)."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request

from modelsteward.api.deps import needs
from modelsteward.api.json_route import StrictJSONRoute
from modelsteward.errors import InvalidArgument

router = APIRouter(prefix="/demo", tags=["demo"], route_class=StrictJSONRoute)
MAX_MESSAGES = 200


def _inbox(request: Request) -> deque[dict[str, Any]]:
    inbox = getattr(request.app.state, "demo_inbox", None)
    if inbox is None:
        inbox = request.app.state.demo_inbox = deque(maxlen=MAX_MESSAGES)
    return inbox


@router.post(
    "/inbox", status_code=202, summary="Receive an alert notification (the demo's operations webhook)", **needs(None)
)
async def receive(request: Request) -> Any:
    try:
        payload = orjson.loads(await request.body())
    except orjson.JSONDecodeError as e:
        raise InvalidArgument(f"the body is not valid JSON: {e}", details={"field": "body"}) from e
    _inbox(request).appendleft(
        {
            "received_at": datetime.now(UTC).isoformat(),
            "event": request.headers.get("x-steward-event"),
            "payload": payload,
        }
    )
    return {"received": True}


@router.get("/inbox", summary="What the demo's operations webhook received, newest first", **needs(None))
def messages(request: Request) -> Any:
    return list(_inbox(request))
