"""The inference protocols: Open Inference Protocol v2 and plain JSON over deployments, feedback, /metrics.

These handlers sit on the hot path: they read the raw body once, decode it with the codecs in
``serving.protocols`` (orjson, typed columns built once) and answer with a prebuilt body, skipping
FastAPI's body models. Every answer names the version(s) that answered (``x-steward-model-version``)
and the prediction ids.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response

from modelsteward import __version__
from modelsteward.errors import InvalidArgument, StewardError
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

VERSION_HEADER = "x-steward-model-version"
REQUEST_HEADER = "x-steward-request-id"
JSON = "application/json"


def _steward(request: Request) -> LocalSteward:
    return request.app.state.steward


def _observe(request: Request, deployment: str, protocol: str, status: int, started: float) -> None:
    request.app.state.metrics.observe_request(deployment, protocol, status, time.perf_counter() - started)


def _header_length(request: Request) -> int | None:
    raw = request.headers.get("inference-header-content-length")
    if raw is None:
        return None
    if not raw.isdigit():
        raise InvalidArgument(
            "Inference-Header-Content-Length must be a byte count", details={"field": "Inference-Header-Content-Length"}
        )
    return int(raw)


@router.post("/v2/models/{name}/infer", tags=["inference"], summary="Open Inference Protocol v2 inference")
async def v2_infer(name: str, request: Request) -> Response:
    started = time.perf_counter()
    st = _steward(request)
    status = 200
    try:
        signature = st.serving_signature(name)
        decoded = decode_request(
            await request.body(),
            header_length=_header_length(request),
            signature=signature,
            owner=name,
            allow_extra=True,
        )
        served = st.serve(name, decoded.frame, request_id=decoded.id, checked_against=signature)
        body, headers = encode_response(
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
        return Response(content=body, headers=headers)
    except StewardError as e:
        status = e.http_status
        raise
    finally:
        _observe(request, name, "v2", status, started)


@router.post("/api/v1/deployments/{name}/predict", tags=["inference"], summary="Predict through a deployment")
async def json_predict(name: str, request: Request) -> Response:
    """Body: ``{"instances": [...]}``, ``{"dataframe_split": {"columns", "data"}}``,
    ``{"dataframe_records": [...]}`` or ``{"inputs": {col: [...]}}``, with an optional ``"id"``.
    The answer carries ``model_version``, ``prediction_ids``, ``columns`` and ``predictions``."""
    started = time.perf_counter()
    st = _steward(request)
    status = 200
    try:
        signature = st.serving_signature(name)
        frame, request_id, _parameters = decode_json_request(
            await request.body(), signature=signature, owner=name, allow_extra=True
        )
        served = st.serve(name, frame, request_id=request_id, checked_against=signature)
        body = encode_json_response(
            model_version=served.model_version,
            request_id=served.request_id,
            prediction_ids=served.prediction_ids,
            outputs=served.outputs,
            extra={"arms": served.arms},
        )
        return Response(
            content=body,
            media_type=JSON,
            headers={VERSION_HEADER: served.model_version, REQUEST_HEADER: served.request_id},
        )
    except StewardError as e:
        status = e.http_status
        raise
    finally:
        _observe(request, name, "json", status, started)


@router.post("/api/v1/deployments/{name}/feedback", tags=["inference"], summary="Ground truth for predictions")
async def feedback(name: str, request: Request) -> Any:
    """Body: ``{"feedback": [{"prediction_id": "...", "actual": 1}, ...]}``; several targets may be
    sent as ``actual_<name>`` fields. Joined to the predictions on ``prediction_id`` later."""
    import orjson

    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as e:
        raise InvalidArgument(f"the body is not valid JSON: {e}", details={"field": "body"}) from e
    rows = body.get("feedback") if isinstance(body, dict) else None
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise InvalidArgument(
            'give {"feedback": [{"prediction_id": "...", "actual": ...}, ...]}', details={"field": "feedback"}
        )
    accepted = _steward(request).send_feedback(name, rows)
    return {"deployment": name, "accepted": accepted}


@router.get("/v2", tags=["inference"], summary="Open Inference Protocol server metadata")
def v2_server() -> Any:
    return server_metadata(__version__)


@router.get("/v2/health/live", tags=["inference"], summary="The server process is up")
def v2_live() -> Any:
    return {"live": True}


@router.get("/v2/health/ready", tags=["inference"], summary="Routes are loaded and the store answers")
def v2_ready(request: Request) -> Response:
    st = _steward(request)
    ready = st.gateway.ready
    if ready:
        try:
            st.db.ping()
        except StewardError:
            ready = False
    return Response(
        content=b'{"ready":true}' if ready else b'{"ready":false}', media_type=JSON, status_code=200 if ready else 503
    )


@router.get("/v2/models/{name}", tags=["inference"], summary="A deployment's metadata: inputs and outputs")
def v2_model(name: str, request: Request) -> Any:
    st = _steward(request)
    served = st.serving_description(name)
    return model_metadata(name, served["versions"], served["signature"])


@router.get("/v2/models/{name}/ready", tags=["inference"], summary="The deployment's models are loaded")
def v2_model_ready(name: str, request: Request) -> Any:
    _steward(request).serving_signature(name)  # NotFound (404) when it is not deployed
    return {"name": name, "ready": True}


@router.get("/metrics", tags=["operations"], summary="Prometheus metrics", include_in_schema=True)
def metrics(request: Request) -> Response:
    st = _steward(request)
    body = request.app.state.metrics.render(st.serving_stats())
    return Response(content=body, media_type="text/plain; version=0.0.4; charset=utf-8")
