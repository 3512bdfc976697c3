"""The HTTP app of a model bundle: the gateway's inference protocols for the one model a bundle holds.

``serve.py`` in a bundle calls :func:`main`. The answers are the gateway's, byte for byte in shape: the same
codecs (Open Inference Protocol v2 with the binary extension, plain JSON), the same headers, prediction ids
and error bodies; only the catalog is missing, so the one route is the model's name.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response

import modelsteward
from modelsteward import __version__
from modelsteward.api.app import BodyLimit
from modelsteward.api.errors import install_error_handlers
from modelsteward.api.routes_inference import JSON, REQUEST_HEADER, VERSION_HEADER
from modelsteward.errors import InvalidArgument, NotFound, StewardError
from modelsteward.serving.bundle_files import DEFAULT_PORT
from modelsteward.serving.bundle_runtime import BundleServer, open_bundle, read_manifest
from modelsteward.serving.protocols import (
    HEADER_LENGTH,
    decode_json_request,
    decode_request,
    encode_json_response,
    encode_response,
    model_metadata,
    server_metadata,
)
from modelsteward.settings import Settings

LOG_DIR_VARIABLE = "STEWARD_LOG_DIR"


def _header_length(request: Request) -> int | None:
    raw = request.headers.get(HEADER_LENGTH)
    if raw is None:
        return None
    if not raw.isdigit():
        raise InvalidArgument(f"{HEADER_LENGTH} must be a byte count", details={"field": HEADER_LENGTH})
    return int(raw)


def create_bundle_app(
    bundle_dir: Path, *, log_dir: str | Path | None = None, settings: Settings | None = None
) -> FastAPI:
    """The app serving the model in ``bundle_dir``, loaded (and its sha256 checked) before this returns.

    With ``log_dir``, every prediction is appended to a prediction log there, flushed every
    ``settings.log_flush_interval`` seconds and on shutdown. Raises the :class:`StewardError` that keeps
    the model from being served (``IntegrityError`` for a tampered artifact).
    """
    settings = settings or Settings()
    bundle_dir = Path(bundle_dir).resolve()
    server = BundleServer(open_bundle(bundle_dir))
    version = server.model.version
    name = version.name

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The log's writer thread belongs to the serving process: start it here, flush it on SIGTERM/SIGINT.
        if log_dir is not None:
            from modelsteward.serving.prediction_log import PredictionLog, default_worker_name

            # No metadata store here, so no alert: a log that keeps failing says so in the server log (error).
            server.sink = PredictionLog(
                str(log_dir),
                worker=default_worker_name(),
                flush_interval=settings.log_flush_interval,
                max_queue_rows=settings.log_max_queue_rows,
                max_buffer_rows=min(50_000, settings.log_max_queue_rows),
                retry_max=settings.log_retry_max,
                alert_after_failures=settings.log_alert_after_failures,
            )
        try:
            yield
        finally:
            sink, server.sink = server.sink, None
            if sink is not None:
                sink.close()  # type: ignore[attr-defined]

    app = FastAPI(
        lifespan=lifespan,
        title=f"{version.ref} (Model Steward bundle)",
        version=__version__,
        description=f"Serves {version.ref} ({version.kind}) without the catalog. Errors answer "
        '`{"error": {"code", "message", "details"}}`.',
    )
    app.state.bundle_server = server
    install_error_handlers(app)

    def served_model(requested: str) -> BundleServer:
        if requested != name:
            raise NotFound(
                f"no active deployment named {requested!r}; this bundle serves {name!r}",
                details={"deployment": requested},
            )
        return server

    @app.post("/v2/models/{model}/infer", tags=["inference"], summary="Open Inference Protocol v2 inference")
    async def v2_infer(model: str, request: Request) -> Response:
        bundle = served_model(model)
        decoded = decode_request(
            await request.body(),
            header_length=_header_length(request),
            signature=bundle.signature,
            owner=model,
            allow_extra=True,
        )
        served = bundle.serve(decoded.frame, request_id=decoded.id, checked_against=bundle.signature)
        body, headers = encode_response(
            model_name=model,
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

    @app.post("/api/v1/deployments/{deployment}/predict", tags=["inference"], summary="Predict (plain JSON)")
    async def json_predict(deployment: str, request: Request) -> Response:
        """Body: ``{"instances": [...]}``, ``{"dataframe_split": {"columns", "data"}}``,
        ``{"dataframe_records": [...]}`` or ``{"inputs": {col: [...]}}``, with an optional ``"id"``."""
        bundle = served_model(deployment)
        frame, request_id, _parameters = decode_json_request(
            await request.body(), signature=bundle.signature, owner=deployment, allow_extra=True
        )
        served = bundle.serve(frame, request_id=request_id, checked_against=bundle.signature)
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

    @app.get("/v2", tags=["inference"], summary="Open Inference Protocol server metadata")
    def v2_server() -> Any:
        return server_metadata(__version__)

    @app.get("/v2/health/live", tags=["inference"], summary="The server process is up")
    def v2_live() -> Any:
        return {"live": True}

    @app.get("/v2/health/ready", tags=["inference"], summary="The model is loaded and the log takes predictions")
    def v2_ready() -> Any:
        # The model was loaded and checked before the app existed; a prediction log refusing rows (disk full)
        # would answer every prediction 503, so the worker is not ready meanwhile.
        if getattr(server.sink, "refusing", False):
            return Response(content=b'{"ready":false}', media_type=JSON, status_code=503)
        return {"ready": True}

    @app.get("/v2/models/{model}", tags=["inference"], summary="The model's metadata: inputs and outputs")
    def v2_model(model: str) -> Any:
        bundle = served_model(model)
        return model_metadata(model, [version.ref], bundle.signature)

    @app.get("/v2/models/{model}/ready", tags=["inference"], summary="The model is loaded")
    def v2_model_ready(model: str) -> Any:
        served_model(model)
        return {"name": model, "ready": True}

    @app.get("/bundle", tags=["operations"], summary="What this bundle holds and which code serves it")
    def bundle_info() -> Any:
        return {
            "model_version": version.ref,
            "kind": version.kind,
            "sha256": version.artifact.sha256,
            "bundle": str(bundle_dir),
            "modelsteward_version": __version__,
            "modelsteward_path": str(Path(modelsteward.__file__).resolve().parent),
            "prediction_log": None if log_dir is None else str(log_dir),
        }

    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes, max_upload_bytes=settings.max_request_bytes)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    """``python serve.py [--host 0.0.0.0] [--port 8080]``: check and load the bundle, then serve it with uvicorn.

    Returns 1 (with the reason on stderr) when the bundle cannot be served, e.g. a tampered artifact.
    """
    parser = argparse.ArgumentParser(prog="serve.py", description="Serve the model of a Model Steward bundle.")
    parser.add_argument("--bundle", type=Path, default=Path.cwd(), help="the bundle directory [default: .]")
    parser.add_argument("--host", default="0.0.0.0", help="interface to listen on [default: 0.0.0.0]")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port [default: {DEFAULT_PORT}]")
    parser.add_argument(
        "--log-dir",
        default=os.environ.get(LOG_DIR_VARIABLE) or None,
        help=f"keep every prediction in a prediction log there [default: ${LOG_DIR_VARIABLE}, else none]",
    )
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    parser.add_argument(
        "--keep-alive", type=int, default=75,
        help="seconds an idle keep-alive connection stays open: above the load balancer's idle timeout [75]",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        app = create_bundle_app(args.bundle, log_dir=args.log_dir)
    except StewardError as e:
        ref = _bundle_ref(args.bundle)
        print(f"error: cannot serve {ref}: {e.message}", file=sys.stderr)
        return 1
    import uvicorn

    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_keep_alive=args.keep_alive)
    return 0


def _bundle_ref(bundle_dir: Path) -> str:
    try:
        return read_manifest(bundle_dir)[0].ref
    except StewardError:
        return f"the bundle in {bundle_dir}"
