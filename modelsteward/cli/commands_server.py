"""``steward up``: the server (REST API now; the gateway and dashboard join it in later releases)."""

from __future__ import annotations

import ipaddress
from typing import Annotated

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
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Start the Model Steward server (API docs at /docs)."""
    import uvicorn

    from modelsteward.api.app import create_app
    from modelsteward.local_steward import LocalSteward
    from modelsteward.settings import Settings

    overrides: dict[str, object] = {"host": host, "port": port}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    settings = Settings(**overrides)  # type: ignore[arg-type]
    if not _is_loopback(host) and settings.api_token is None and not allow_unauthenticated:
        raise InvalidArgument(
            f"refusing to serve on {host} without authentication: set STEWARD_API_TOKEN "
            "(or pass --allow-unauthenticated on a trusted network)",
            details={"field": "host"},
        )
    steward = LocalSteward(settings=settings)
    if demo:
        from modelsteward.demo.seed import seed_demo

        with console.status("seeding the Northwind Bank demo..."):
            summary = seed_demo(steward)
        console.print(summary)
    app_ = create_app(settings, steward=steward)
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    console.print(
        f"[bold green]Model Steward[/] is running at [bold]http://{shown_host}:{port}[/] "
        f"(API docs: http://{shown_host}:{port}/docs; data: {settings.data_dir.resolve()}). Ctrl+C stops it.",
        highlight=False,
    )
    uvicorn.run(app_, host=host, port=port, log_level=log_level)
