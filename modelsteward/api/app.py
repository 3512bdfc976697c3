"""The ASGI application: ``create_app(settings)`` builds it around one embedded facade."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelsteward import __version__
from modelsteward.api.deps import needs
from modelsteward.api.errors import error_response, install_error_handlers
from modelsteward.api.routes_catalog import router as catalog_router
from modelsteward.api.routes_compliance import router as compliance_router
from modelsteward.api.routes_deployments import router as deployments_router
from modelsteward.api.routes_identity import router as identity_router
from modelsteward.api.routes_inference import FastInference
from modelsteward.api.routes_inference import router as inference_router
from modelsteward.api.routes_lifecycle import router as lifecycle_router
from modelsteward.api.routes_monitoring import router as monitoring_router
from modelsteward.local_steward import LocalSteward
from modelsteward.serving.metrics import ServingMetrics
from modelsteward.settings import Settings


class BodyLimit:
    """Refuse bodies over the limit with 413: at once when Content-Length says so, else (a chunked body)
    as soon as the bytes received pass it, so nothing reads an unbounded body into memory. Registration
    uploads have their own, larger limit."""

    UPLOAD_PATHS = ("/versions", "/kpis/upload")

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        limit = self.max_upload_bytes if scope["path"].endswith(self.UPLOAD_PATHS) else self.max_bytes
        if length is not None and length.isdigit() and int(length) > limit:
            response = error_response(
                413,
                "payload_too_large",
                f"the request body ({int(length)} bytes) is over the limit of {limit} bytes",
                {"limit": limit},
            )
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI re-raises an HTTPException met while reading the body; the app's handler
                    # turns it into the usual 413 body
                    raise HTTPException(413, f"the request body is over the limit of {limit} bytes")
            return message

        await self.app(scope, counted, send)


def _tune_garbage_collector() -> None:
    """Serving allocates many short-lived objects and almost no reference cycles: collect the young
    generation less often, and move everything loaded at start-up (models, routes, modules) out of
    the collector's sight, so a full collection does not rescan it on the request path."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def create_app(settings: Settings | None = None, *, steward: LocalSteward | None = None, demo: bool = False) -> FastAPI:
    """Build the API over ``steward`` (or a new embedded one on ``settings``)."""
    settings = settings or Settings()
    steward = steward or LocalSteward(settings=settings)
    metrics = ServingMetrics()

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The gateway and its logs belong to the worker process that serves: start them here, after
        # any fork, and flush them on shutdown (SIGTERM/SIGINT) so nothing acknowledged is lost.
        from modelsteward.web.pages import warm

        warm()
        steward.start_serving(on_served=metrics.observe_model)
        if settings.scheduler:
            steward.start_scheduler()
        if settings.tune_gc:
            _tune_garbage_collector()
        try:
            yield
        finally:
            steward.stop_scheduler()
            steward.stop_serving()

    app = FastAPI(
        lifespan=lifespan,
        title="Model Steward",
        version=__version__,
        description="Catalogue, serve, monitor and govern every model. Errors answer "
        '`{"error": {"code", "message", "details"}}`.',
    )
    app.state.settings = settings
    app.state.steward = steward
    app.state.metrics = metrics
    app.state.anonymous_actor = "anonymous" if settings.api_token is None else "reader"
    install_error_handlers(app)
    app.include_router(catalog_router)
    app.include_router(deployments_router)
    app.include_router(inference_router)
    app.include_router(monitoring_router)
    app.include_router(lifecycle_router)
    app.include_router(identity_router)
    app.include_router(compliance_router)
    from modelsteward.web.routes import router as dashboard_router

    app.include_router(dashboard_router)
    if demo or settings.demo:
        from modelsteward.api.routes_demo import router as demo_router

        app.include_router(demo_router)

    @app.get("/", include_in_schema=False, **needs(None))
    def root() -> RedirectResponse:
        return RedirectResponse("/ui")

    @app.get("/api/v1/health", summary="Liveness and the metadata store's reachability", **needs(None))
    def health() -> Any:
        steward.db.ping()
        return {"status": "ok", "database": "ok"}

    @app.get("/api/v1/info", summary="Version, backends and known kinds", **needs(None))
    def info() -> Any:
        from modelsteward.kinds.registry import kind_names

        return {
            "version": __version__,
            "database": steward.db.safe_url,
            "artifact_store": steward.catalog.artifacts.url,
            "kinds": kind_names(),
            "auth": "required" if settings.auth_required else ("token" if settings.api_token is not None else "none"),
        }

    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes, max_upload_bytes=settings.max_upload_bytes)
    return app


def create_server(
    settings: Settings | None = None, *, steward: LocalSteward | None = None, demo: bool = False
) -> FastInference:
    """What ``steward up`` runs: the app behind the inference fast path, which answers the two
    inference routes before any of FastAPI's layers and hands everything else to the app."""
    app = create_app(settings, steward=steward, demo=demo)
    return FastInference(
        app,
        steward=app.state.steward,
        metrics=app.state.metrics,
        max_bytes=app.state.settings.max_request_bytes,
    )


def app_from_environment() -> FastInference:
    """The server of one worker process when ``steward up --workers N`` runs several: settings come
    from the ``STEWARD_*`` variables the parent process set."""
    return create_server(Settings())
