"""``steward up``: the server (REST API now; the gateway and dashboard join it in later releases)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

import typer

from modelsteward.cli.common import DataDir, app, console, handle_errors
from modelsteward.errors import InvalidArgument


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _has_tokens(settings: Any) -> bool:
    from modelsteward.local_steward import LocalSteward

    with LocalSteward(settings=settings) as st:
        return any(t.revoked_at is None for t in st.list_tokens())


@app.command("up")
@handle_errors
def up(
    host: Annotated[str, typer.Option(envvar="STEWARD_HOST", help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="STEWARD_PORT", min=1, max=65535)] = 8765,
    data_dir: DataDir = None,
    demo: Annotated[bool, typer.Option("--demo", help="seed the Northwind Bank demo models first")] = False,
    allow_unauthenticated: Annotated[
        bool,
        typer.Option(
            "--allow-unauthenticated",
            help="serve changes without a token on a non-loopback address (not for production)",
        ),
    ] = False,
    auth: Annotated[
        str,
        typer.Option(
            "--auth",
            envvar="STEWARD_AUTH",
            help="required: every request needs a token; auto: required unless bound to a loopback address; off",
        ),
    ] = "auto",
    workers: Annotated[int, typer.Option(min=1, max=64, help="worker processes sharing the store")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Start the Model Steward server (API docs at /docs)."""
    import uvicorn

    from modelsteward.api.app import create_server
    from modelsteward.local_steward import LocalSteward
    from modelsteward.settings import Settings

    if auth not in ("auto", "required", "off"):
        raise InvalidArgument(f"--auth must be auto, required or off, not {auth!r}", details={"field": "auth"})
    overrides: dict[str, object] = {"host": host, "port": port, "demo": demo, "auth": auth}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    settings = Settings(**overrides)  # type: ignore[arg-type]
    if allow_unauthenticated:
        settings = settings.model_copy(update={"auth": "off"})
    if not _is_loopback(host) and not settings.auth_required and settings.api_token is None:
        raise InvalidArgument(
            f"refusing to serve on {host} without authentication: keep --auth auto or required and set "
            "STEWARD_API_TOKEN for the first admin (or pass --allow-unauthenticated on a trusted network)",
            details={"field": "host"},
        )
    if settings.auth_required and settings.api_token is None and not _has_tokens(settings):
        raise InvalidArgument(
            "every request will need a token, and there is none yet: set STEWARD_API_TOKEN (the bootstrap "
            "admin's token), or create a user and a token first (steward users create; steward tokens create)",
            details={"field": "auth"},
        )
    steward = LocalSteward(settings=settings)
    if demo:
        from modelsteward.demo.seed import seed_demo

        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        with console.status("seeding the Northwind Bank demo (models, deployments, 60 days of traffic)..."):
            summary = seed_demo(steward, inbox_url=f"http://{shown}:{port}/demo/inbox")
        console.print(summary)
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    console.print(
        f"[bold green]Model Steward[/] is running at [bold]http://{shown_host}:{port}[/] "
        f"(dashboard: http://{shown_host}:{port}/ui; API docs: http://{shown_host}:{port}/docs; "
        f"data: {settings.data_dir.resolve()}; "
        f"{workers} worker{'s' if workers > 1 else ''}). Ctrl+C stops it.",
        highlight=False,
    )
    if workers == 1:
        uvicorn.run(
            create_server(settings, steward=steward, demo=demo),
            host=host, port=port, log_level=log_level, timeout_keep_alive=settings.keep_alive_timeout,
        )  # fmt: skip
        return
    steward.close()
    _run_workers(settings, workers=workers, log_level=log_level)


def _run_workers(settings: Any, *, workers: int, log_level: str) -> None:
    """Several worker processes: each builds its own app from the environment set here, owns its
    prediction-log writer, and reports metrics through Prometheus' multiprocess files."""
    import os
    import shutil
    import tempfile

    import uvicorn

    os.environ["STEWARD_DATA_DIR"] = str(settings.data_dir.resolve())
    os.environ["STEWARD_DEMO"] = "true" if settings.demo else "false"
    os.environ["STEWARD_HOST"], os.environ["STEWARD_AUTH"] = settings.host, settings.auth  # the workers' auth
    for key in ("database_url", "artifact_url", "inference_url", "feedback_url"):
        value = getattr(settings, key)
        if value:
            os.environ[f"STEWARD_{key.upper()}"] = value
    metrics_dir = tempfile.mkdtemp(prefix="steward-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(
            "modelsteward.api.app:app_from_environment",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_level=log_level,
            timeout_keep_alive=settings.keep_alive_timeout,
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
