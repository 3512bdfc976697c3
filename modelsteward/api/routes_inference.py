"""The inference protocols: Open Inference Protocol v2 and plain JSON over deployments, feedback, /metrics.

These handlers sit on the hot path: they read the raw body once, decode it with the codecs in
``serving.protocols`` (orjson, typed columns built once) and answer with a prebuilt body, skipping
FastAPI's body models. Every answer names the version(s) that answered (``x-steward-model-version``)
and the prediction ids.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from modelsteward import __version__
from modelsteward.api.deps import authenticate, bearer, get_inference, needs
from modelsteward.api.openapi_bodies import FEEDBACK, JSON_PREDICT, V2_INFER, needs_with_body
from modelsteward.errors import InvalidArgument, PayloadTooLarge, StewardError, Unauthenticated
from modelsteward.local_steward import LocalSteward
from modelsteward.serving.protocols import (
    decode_json_request,
    decode_request,
    encode_json_response,
    encode_response,
    model_metadata,
    server_metadata,
)

router = APIRouter()
log = logging.getLogger("modelsteward.api")

VERSION_HEADER = "x-steward-model-version"
REQUEST_HEADER = "x-steward-request-id"
JSON = "application/json"


def _authenticated(request: Request) -> LocalSteward:
    """The facade, unchecked, for /metrics: any valid token when the server demands one, no role (Prometheus
    sends a service account's token)."""
    settings = request.app.state.settings
    if settings.auth_required:
        token = bearer(request.headers.get("authorization"))
        if token is None:
            raise Unauthenticated("this server requires a token: send 'Authorization: Bearer <token>'",
                                  details={"header": "authorization"})  # fmt: skip
        authenticate(request.app.state.steward, settings, token)
    return request.app.state.steward


def _header_length(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit():
        raise InvalidArgument(
            "Inference-Header-Content-Length must be a byte count", details={"field": "Inference-Header-Content-Length"}
        )
    return int(raw)


Answer = tuple[int, dict[str, str], bytes]


def answer_v2(st: LocalSteward, name: str, body: bytes, header_length: str | None) -> Answer:
    """One Open Inference Protocol v2 request, start to finish; errors propagate as StewardErrors."""
    signature = st.serving_signature(name)
    decoded = decode_request(
        body, header_length=_header_length(header_length), signature=signature, owner=name, allow_extra=True
    )
    served = st.serve(name, decoded.frame, request_id=decoded.id, checked_against=signature)
    content, headers = encode_response(
        model_name=name,
        model_version=served.model_version,
        request_id=served.request_id,
        outputs=served.outputs,
        parameters={"prediction_ids": served.prediction_ids},
        binary=decoded.binary_outputs,
        requested_outputs=decoded.requested_outputs,
    )
    headers[VERSION_HEADER] = served.model_version
    headers[REQUEST_HEADER] = served.request_id
    return 200, headers, content


def answer_json(st: LocalSteward, name: str, body: bytes) -> Answer:
    """One plain JSON prediction request, start to finish; errors propagate as StewardErrors."""
    signature = st.serving_signature(name)
    frame, request_id, _parameters = decode_json_request(body, signature=signature, owner=name, allow_extra=True)
    served = st.serve(name, frame, request_id=request_id, checked_against=signature)
    content = encode_json_response(
        model_version=served.model_version,
        request_id=served.request_id,
        prediction_ids=served.prediction_ids,
        outputs=served.outputs,
        extra={"arms": served.arms},
    )
    headers = {"content-type": JSON, VERSION_HEADER: served.model_version, REQUEST_HEADER: served.request_id}
    return 200, headers, content


async def _timed(request: Request, name: str, protocol: str, run: Any) -> Response:
    started = time.perf_counter()
    status = 500
    try:
        status, headers, content = run()
        return Response(content=content, status_code=status, headers=headers)
    except StewardError as e:
        status = e.http_status
        raise
    finally:
        request.app.state.metrics.observe_request(name, protocol, status, time.perf_counter() - started)


@router.post(
    "/v2/models/{name}/infer",
    tags=["inference"],
    summary="Open Inference Protocol v2 inference",
    **needs_with_body("inference.predict", V2_INFER),
)
async def v2_infer(name: str, request: Request) -> Response:
    """JSON, or the binary tensor extension with ``Inference-Header-Content-Length``. Tabular inputs
    arrive as one named 1-D tensor per column or one 2-D tensor in the signature's column order.
    (``FastInference`` answers this path before FastAPI routing; this route documents it.)"""
    body = await request.body()
    length = request.headers.get("inference-header-content-length")
    return await _timed(request, name, "v2", lambda: answer_v2(get_inference(request), name, body, length))


@router.post(
    "/api/v1/deployments/{name}/predict",
    tags=["inference"],
    summary="Predict through a deployment",
    **needs_with_body("inference.predict", JSON_PREDICT),
)
async def json_predict(name: str, request: Request) -> Response:
    """Body: ``{"instances": [...]}``, ``{"dataframe_split": {"columns", "data"}}``,
    ``{"dataframe_records": [...]}`` or ``{"inputs": {col: [...]}}``, with an optional ``"id"``.
    The answer carries ``model_version``, ``prediction_ids``, ``columns`` and ``predictions``."""
    body = await request.body()
    return await _timed(request, name, "json", lambda: answer_json(get_inference(request), name, body))


class FastInference:
    """The outermost ASGI layer of ``steward up``: it answers the two inference paths before
    Starlette's and FastAPI's layers and routing, which would cost more than the rest of a one-row
    request. Same handlers, answers and errors as the routes above; every other request (and the
    lifespan) passes to the app untouched."""

    def __init__(self, app: ASGIApp, *, steward: LocalSteward, metrics: Any, max_bytes: int) -> None:
        self.app = app
        self.steward = steward
        self.metrics = metrics
        self.max_bytes = max_bytes
        # decided once: the per-request path only reads a boolean
        self.auth_required = bool(app.state.settings.auth_required)  # type: ignore[attr-defined]

    @property
    def state(self) -> Any:
        """The wrapped app's state (settings, steward, metrics)."""
        return self.app.state  # type: ignore[attr-defined]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith("/v2/models/") and path.endswith("/infer"):
                name = path[len("/v2/models/") : -len("/infer")]
                if name and "/" not in name:
                    return await self._answer(scope, receive, send, name, "v2")
            elif path.startswith("/api/v1/deployments/") and path.endswith("/predict"):
                name = path[len("/api/v1/deployments/") : -len("/predict")]
                if name and "/" not in name:
                    return await self._answer(scope, receive, send, name, "json")
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send, name: str, protocol: str) -> None:
        started = time.perf_counter()
        try:
            steward = self.steward
            if self.auth_required:  # applications call with a service account's token, checked for inference.predict
                token = bearer(next((v.decode() for k, v in scope["headers"] if k == b"authorization"), None))
                if token is None:
                    raise Unauthenticated("this server requires a token: send 'Authorization: Bearer <token>'",
                                          details={"header": "authorization"})  # fmt: skip
                actor = authenticate(steward, self.state.settings, token)
                steward = steward.acting_as(actor, enforce=True, request={"method": "POST", "path": scope["path"]})
            body = await _read_body(receive, self.max_bytes)
            if protocol == "v2":
                length = next(
                    (v.decode() for k, v in scope["headers"] if k == b"inference-header-content-length"), None
                )
                status, headers, content = answer_v2(steward, name, body, length)
            else:
                status, headers, content = answer_json(steward, name, body)
        except StewardError as e:
            status, headers, content = e.http_status, {"content-type": JSON}, _error_body(e.code, e.message, e.details)
            retry_after = e.details.get("retry_after")
            if status == 503 and retry_after is not None:
                headers["retry-after"] = str(retry_after)
        except Exception:  # noqa: BLE001 - the last line of defence: a 500 with the usual body
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            status, headers = 500, {"content-type": JSON}
            content = _error_body("internal", "internal error; the server log has the details", {})
        raw_headers = [(k.encode(), v.encode()) for k, v in headers.items()]
        raw_headers.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": content})
        self.metrics.observe_request(name, protocol, status, time.perf_counter() - started)


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidArgument("the client went away before sending the whole body", details={"field": "body"})
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"the request body is over the limit of {limit} bytes", details={"field": "body", "limit": limit}
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _error_body(code: str, message: str, details: dict[str, Any]) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message, "details": details}}, default=str)


@router.post(
    "/api/v1/deployments/{name}/feedback",
    tags=["inference"],
    summary="Ground truth for predictions",
    **needs_with_body("feedback.write", FEEDBACK),
)
async def feedback(name: str, request: Request) -> Any:
    """Body: ``{"feedback": [{"prediction_id": "...", "actual": 1}, ...]}``; several targets may be
    sent as ``actual_<name>`` fields. Joined to the predictions on ``prediction_id`` later."""
    st = get_inference(request)  # the caller first: who may not send feedback learns nothing of the body's rules
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as e:
        raise InvalidArgument(f"the body is not valid JSON: {e}", details={"field": "body"}) from e
    rows = body.get("feedback") if isinstance(body, dict) else None
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise InvalidArgument(
            'give {"feedback": [{"prediction_id": "...", "actual": ...}, ...]}', details={"field": "feedback"}
        )
    accepted = st.send_feedback(name, rows)
    return {"deployment": name, "accepted": accepted}


@router.get("/v2", tags=["inference"], summary="Open Inference Protocol server metadata", **needs(None))
def v2_server() -> Any:
    return server_metadata(__version__)


@router.get("/v2/health/live", tags=["inference"], summary="The server process is up", **needs(None))
def v2_live() -> Any:
    return {"live": True}


@router.get(
    "/v2/health/ready", tags=["inference"], summary="Routes are loaded and predictions can be served", **needs(None)
)
def v2_ready(request: Request) -> Response:
    # A probe answers only yes or no, and a kubelet has no token to send: no token needed, even when the server
    # demands one everywhere else. Not ready either while the prediction log refuses rows (disk full): every
    # prediction would get a 503 here, so a load balancer should send them to another worker meanwhile.
    # The metadata database is NOT consulted: predictions are served from the routes held in memory, so during
    # a database outage every worker keeps serving; failing this probe would take all of them out of the load
    # balancer at once and turn a catalog outage into a prediction outage (/api/v1/health reports the database).
    st: LocalSteward = request.app.state.steward
    ready = st.serving_ready()
    return Response(
        content=b'{"ready":true}' if ready else b'{"ready":false}', media_type=JSON, status_code=200 if ready else 503
    )


@router.get(
    "/v2/models/{name}",
    tags=["inference"],
    summary="A deployment's metadata: inputs and outputs",
    **needs("catalog.read"),
)
def v2_model(name: str, request: Request) -> Any:
    st = get_inference(request)
    served = st.serving_description(name)
    return model_metadata(name, served["versions"], served["signature"])


@router.get(
    "/v2/models/{name}/ready", tags=["inference"], summary="The deployment's models are loaded", **needs("catalog.read")
)
def v2_model_ready(name: str, request: Request) -> Any:
    get_inference(request).serving_description(name)  # NotFound (404) when it is not deployed
    return {"name": name, "ready": True}


@router.get("/metrics", tags=["operations"], summary="Prometheus metrics", include_in_schema=True, **needs(None))
def metrics(request: Request) -> Response:
    st = _authenticated(request)
    request.app.state.metrics.observe_monitoring(st.monitoring_stats())
    body = request.app.state.metrics.render(st.serving_stats())
    return Response(content=body, media_type="text/plain; version=0.0.4; charset=utf-8")
