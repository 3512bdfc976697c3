"""What every page shares: the template environment, the layout's context (who is looking, what they may do,
the form token), the navigation, and errors shown as pages (a sign-in form for a missing session)."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from modelsteward import __version__
from modelsteward.errors import StewardError
from modelsteward.local_steward import LocalSteward
from modelsteward.web.session import LoginRequired, csrf_token, protected, set_cookies

TEMPLATES = Path(__file__).with_name("templates")

#: (path, label): the navigation, in order; a page module adds itself with ``nav``
NAVIGATION: list[tuple[str, str]] = []


def nav(path: str, label: str) -> None:
    if (path, label) not in NAVIGATION:
        NAVIGATION.append((path, label))


@functools.cache
def environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["num"] = _num
    env.filters["pct"] = lambda v: "—" if v is None else f"{float(v):.0%}"
    env.filters["url"] = lambda v: quote(str(v), safe="")
    return env


def warm() -> None:
    """Compile every template once at start-up, so that no user's first page pays for it."""
    env = environment()
    for template in sorted(TEMPLATES.glob("*.html")):
        env.get_template(template.name)


def _when(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render(request: Request, st: LocalSteward, template: str, *, title: str, status: int = 200, **context: Any
           ) -> HTMLResponse:  # fmt: skip
    """A page in the layout, with who is looking and the form token; server time in a header."""
    started = getattr(request.state, "started", None) or time.perf_counter()
    settings = request.app.state.settings
    html = (
        environment()
        .get_template(template)
        .render(
            request=request,
            title=title,
            user=st.actor,
            signed_in=protected(settings),
            may=st.may,
            csrf=csrf_token(request),
            navigation=NAVIGATION,
            path=request.url.path,
            version=__version__,
            **context,
        )
    )
    response = HTMLResponse(html, status_code=status)
    response.headers["server-timing"] = f"page;dur={(time.perf_counter() - started) * 1000:.1f}"
    response.headers["cache-control"] = "no-store"
    set_cookies(response, request)
    return response


def page(fn: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    """Errors as pages: the sign-in form for a missing session, a message with the right status otherwise."""

    @functools.wraps(fn)
    async def wrapper(request: Request, *args: Any, **kwargs: Any) -> Response:
        request.state.started = time.perf_counter()
        try:
            return await fn(request, *args, **kwargs)
        except LoginRequired:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/ui/login?next={quote(target, safe='')}", status_code=303)
        except StewardError as e:
            return error_page(request, e.http_status, e.message)

    return wrapper


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    titles = {403: "Not allowed", 404: "Not found", 409: "Conflict", 422: "Cannot do that"}
    html = environment().get_template("error.html").render(
        title=titles.get(status, "Something went wrong"), message=message, status=status, navigation=NAVIGATION,
        path=request.url.path, user=None, signed_in=False, version=__version__, csrf="",
    )  # fmt: skip
    return HTMLResponse(html, status_code=status)


def back(to: str, *, note: str | None = None) -> RedirectResponse:
    """After an action: back to the page it was taken on, with a one-line notice."""
    sep = "&" if "?" in to else "?"
    return RedirectResponse(to + (f"{sep}note={quote(note, safe='')}" if note else ""), status_code=303)
