"""``steward``: the command line. Each command parses, calls one facade method and renders."""

from __future__ import annotations

from modelsteward.cli import (  # noqa: F401 - importing a module registers its commands
    commands_alerts,
    commands_audit,
    commands_comments,
    commands_compliance,
    commands_deployments,
    commands_identity,
    commands_lifecycle,
    commands_models,
    commands_monitoring,
    commands_package,
    commands_server,
)
from modelsteward.cli.common import app, console, handle_errors

__all__ = ["app", "run"]


@app.command()
@handle_errors
def version() -> None:
    """Print the installed version."""
    from modelsteward import __version__

    console.print(f"modelsteward {__version__}")


def run() -> None:
    """Console-script entry point."""
    app()
