"""What every command shares: the Typer apps, the common options, error handling and output helpers."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from modelsteward.errors import InvalidArgument, StewardError

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="steward",
    help="Model Steward: catalogue, serve, monitor and govern every model.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(help="Register, list, show and alias models.", no_args_is_help=True)
app.add_typer(models_app, name="models")

# Rich wraps at 80 columns when output is not a terminal; catalog tables read better wider in files and CI logs.
_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
console = Console(width=_WIDTH)
err_console = Console(stderr=True, width=_WIDTH)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="STEWARD_DATA_DIR", help="embedded data directory [default: ./steward-data]"),
]
Url = Annotated[
    str | None,
    typer.Option("--url", envvar="STEWARD_URL", help="work against a server instead, e.g. http://127.0.0.1:8765"),
]
Token = Annotated[
    str | None,
    typer.Option("--token", envvar="STEWARD_TOKEN", help="API token for --url", show_default=False),
]
JsonOut = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


def handle_errors(fn: F) -> F:
    """Print a StewardError's message and exit 1; never show a traceback unless STEWARD_DEBUG is set."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StewardError as e:
            err_console.print(f"[bold red]error:[/] {e.message}", highlight=False)
            raise typer.Exit(1) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001 - the last line of defence against tracebacks
            if os.environ.get("STEWARD_DEBUG"):
                raise
            err_console.print(
                f"[bold red]internal error:[/] {type(e).__name__}: {e}\n(set STEWARD_DEBUG=1 to see the traceback)",
                highlight=False,
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def open_steward(data_dir: Path | None, url: str | None, token: str | None) -> Any:
    from modelsteward.steward import Steward

    if url:
        if data_dir is not None and "STEWARD_DATA_DIR" not in os.environ:
            raise InvalidArgument("give --data-dir (embedded) or --url (a server), not both", details={"field": "url"})
        return Steward(url=url, token=token)
    return Steward(data_dir=data_dir) if data_dir is not None else Steward()


def print_json(value: Any) -> None:
    from pydantic import BaseModel

    def default(obj: Any) -> Any:
        if isinstance(obj, BaseModel):
            return obj.model_dump(mode="json")
        return str(obj)

    if isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    elif isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    sys.stdout.write(json.dumps(value, indent=2, default=default) + "\n")


def parse_pairs(items: list[str] | None, option: str, *, numeric: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"{option} {item!r} must look like key=value", details={"field": option})
        if numeric:
            try:
                out[key] = float(value)
            except ValueError:
                raise InvalidArgument(f"{option} {key}: {value!r} is not a number", details={"field": option}) from None
        else:
            out[key] = _scalar(value)
    return out


def _scalar(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_time(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(
            f"{option} {text!r} is not an ISO time like 2026-03-01T12:00", details={"field": option}
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def spec_file(path: Path) -> Path:
    if not path.is_file():
        raise InvalidArgument(f"no such file: {path}", details={"field": "spec"})
    return path


def when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def num(value: Any) -> str:
    return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    rendered = Table(title=title)
    for column in columns:
        rendered.add_column(column)
    for row in rows:
        rendered.add_row(*("" if v is None else str(v) for v in row))
    console.print(rendered)
