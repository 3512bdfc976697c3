"""``steward comments``: remarks on a model or a version, in its timeline beside its events."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from modelsteward.cli.common import DataDir, JsonOut, Token, Url, app, console, handle_errors, open_steward, print_json

comments_app = typer.Typer(help="Comments on models and versions.", no_args_is_help=True)
app.add_typer(comments_app, name="comments")


@comments_app.command("add")
@handle_errors
def add(
    model: Annotated[str, typer.Argument(help="the model")],
    text: Annotated[str, typer.Argument(help="the comment")],
    version: Annotated[int | None, typer.Option("--version", min=1, help="about this version")] = None,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Comment on a model (or one of its versions)."""
    with open_steward(data_dir, url, token) as st:
        comment = st.add_comment(model, text, version=version)
    about = f"{model}/{version}" if version else model
    console.print(f"comment {comment.id} on {about} by {comment.author}", highlight=False)


@comments_app.command("list")
@handle_errors
def list_(
    model: Annotated[str, typer.Argument(help="the model")],
    version: Annotated[int | None, typer.Option("--version", min=1, help="only this version's")] = None,
    as_json: JsonOut = False,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """A model's comments, newest first."""
    with open_steward(data_dir, url, token) as st:
        found = st.list_comments(model, version=version)
    if as_json:
        print_json(found)
        return
    table = Table("when", "who", "version", "comment")
    for c in found:
        table.add_row(f"{c.created_at:%Y-%m-%d %H:%M}", c.author, str(c.version or ""), c.text)
    console.print(table)
