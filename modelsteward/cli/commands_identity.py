"""``steward users`` and ``steward tokens``: who may call the server, and with which tokens."""

from __future__ import annotations

from typing import Annotated

import typer

from modelsteward.cli.common import (
    DataDir,
    JsonOut,
    Token,
    Url,
    app,
    console,
    err_console,
    handle_errors,
    open_steward,
    print_json,
    table,
    when,
)

users_app = typer.Typer(help="Users and service accounts.", no_args_is_help=True)
app.add_typer(users_app, name="users")
tokens_app = typer.Typer(help="API tokens: shown once, stored as a hash, revocable, with an expiry.",
                         no_args_is_help=True)  # fmt: skip
app.add_typer(tokens_app, name="tokens")

Name = Annotated[str, typer.Argument(help="the user or service account")]


@users_app.command("create")
@handle_errors
def create_user(
    name: Name,
    service: Annotated[
        bool, typer.Option("--service", help="a service account (an application), not a person")
    ] = False,
    display_name: Annotated[str, typer.Option("--display-name", help="e.g. the person's full name")] = "",
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Create a user (or a service account) who can then hold tokens and roles."""
    with open_steward(data_dir, url, token) as st:
        who = st.create_user(name, kind="service" if service else "user", display_name=display_name)
    console.print(f"{who.kind} [bold]{who.name}[/] created; give it a token: steward tokens create {who.name}",
                  highlight=False)  # fmt: skip


@users_app.command("list")
@handle_errors
def list_users(as_json: JsonOut = False, data_dir: DataDir = None, url: Url = None, token: Token = None) -> None:
    """Users and service accounts."""
    with open_steward(data_dir, url, token) as st:
        items = st.list_users()
    if as_json:
        return print_json(items)
    table("users", ["name", "kind", "display name", "disabled", "created by", "created (UTC)"],
          [[u.name, u.kind, u.display_name, "yes" if u.disabled else "", u.created_by or "", when(u.created_at)]
           for u in items])  # fmt: skip
    return None


@users_app.command("disable")
@handle_errors
def disable_user(name: Name, data_dir: DataDir = None, url: Url = None, token: Token = None) -> None:
    """Disable a user: its tokens stop working."""
    with open_steward(data_dir, url, token) as st:
        st.disable_user(name)
    console.print(f"{name} is disabled", highlight=False)


@tokens_app.command("create")
@handle_errors
def create_token(
    principal: Name,
    name: Annotated[str, typer.Option("--name", help="what the token is for, e.g. ci or laptop")] = "default",
    expires: Annotated[str, typer.Option("--expires", help="e.g. 30d, 12h, or never")] = "90d",
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Create a token; it is printed once (on standard output, alone) and stored only as a hash."""
    with open_steward(data_dir, url, token) as st:
        made = st.create_token(principal, name=name, expires_in=None if expires == "never" else expires)
    until = f"expires {when(made.expires_at)} UTC" if made.expires_at else "never expires"
    err_console.print(f"token {made.id} for {made.principal} ({made.name}, {until}); keep it now, it is not shown "
                      "again:", highlight=False)  # fmt: skip
    typer.echo(made.token)


@tokens_app.command("list")
@handle_errors
def list_tokens(
    principal: Annotated[str | None, typer.Argument(help="only this user's")] = None,
    as_json: JsonOut = False,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Tokens (never their secrets)."""
    with open_steward(data_dir, url, token) as st:
        items = st.list_tokens(principal)
    if as_json:
        return print_json(items)
    table("tokens", ["id", "principal", "name", "created (UTC)", "expires (UTC)", "revoked (UTC)", "last used (UTC)"],
          [[t.id, t.principal, t.name, when(t.created_at), when(t.expires_at), when(t.revoked_at),
            when(t.last_used_at)] for t in items])  # fmt: skip
    return None


@tokens_app.command("revoke")
@handle_errors
def revoke_token(token_id: Annotated[int, typer.Argument(help="the token's id")], data_dir: DataDir = None,
                 url: Url = None, token: Token = None) -> None:  # fmt: skip
    """Revoke a token: it stops working (within seconds on every worker)."""
    with open_steward(data_dir, url, token) as st:
        st.revoke_token(token_id)
    console.print(f"token {token_id} revoked", highlight=False)
