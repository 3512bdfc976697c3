"""The dashboard's router: static assets (Plotly's JavaScript from its package), sign-in and sign-out, and the
catalog; the other pages live in their own modules and are included here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from modelsteward.errors import InvalidArgument, NotFound, Unauthenticated
from modelsteward.governance.permissions import needs
from modelsteward.web import oidc_login
from modelsteward.web.pages import nav, page, render
from modelsteward.web.session import SESSION_COOKIE, check_csrf, protected, set_cookies, viewer

router = APIRouter(prefix="/ui", include_in_schema=False)
STATIC = Path(__file__).with_name("static")
PAGE_SIZE = 50
SORTABLE = ("name", "kind", "owner", "business_unit", "risk_tier")

nav("/ui", "Catalog")


@router.get("/static/{name}", **needs(None))
async def static(name: str) -> Response:
    if name == "plotly.min.js":
        from modelsteward.errors import require

        plotly = require("plotly", "reports")
        path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
        return FileResponse(path, media_type="text/javascript", headers={"cache-control": "public, max-age=86400"})
    if name not in {p.name for p in STATIC.iterdir()}:  # only the files that ship: no path ever reaches the disk
        raise NotFound(f"no asset {name!r}", details={"asset": name})
    media = {".css": "text/css", ".svg": "image/svg+xml"}.get(Path(name).suffix, "text/javascript")
    return FileResponse(STATIC / name, media_type=media, headers={"cache-control": "public, max-age=3600"})


@router.get("/login", **needs(None))
async def login_form(request: Request, next: str = "/ui") -> Response:
    st = request.app.state.steward.acting_as("")
    return render(request, st, "login.html", title="Sign in", next=_local(next), error=None)


@router.post("/login", **needs(None))
@page
async def login(
    request: Request,
    token: Annotated[str, Form()],
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/ui",
) -> Response:
    check_csrf(request, csrf)
    st = request.app.state.steward
    try:
        who = st.sign_in(token.strip())
    except Unauthenticated as e:
        return render(request, st.acting_as(""), "login.html", title="Sign in", next=_local(next), error=e.message,
                      status=401)  # fmt: skip
    response = RedirectResponse(_local(next), status_code=303)
    set_cookies(response, request, token=token.strip())
    response.headers["x-steward-user"] = who
    return response


@router.post("/logout", **needs(None))
@page
async def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf)
    response = RedirectResponse("/ui/login" if protected(request.app.state.settings) else "/ui", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _local(target: str) -> str:
    """Only a path on this server: a sign-in link must not send anyone elsewhere."""
    return target if target.startswith("/ui") and not target.startswith("//") else "/ui"


@router.get("", **needs("catalog.read"))
@page
async def catalog(request: Request) -> Response:
    st = viewer(request)
    params = request.query_params
    filters = {k: params.get(k, "").strip() for k in ("q", "kind", "risk_tier", "business_unit", "owner")}
    order = params.get("order_by", "name")
    descending = order.startswith("-")
    column = order.lstrip("-")
    if column not in SORTABLE:
        raise InvalidArgument(
            f"cannot sort by {column!r} (sort by {', '.join(SORTABLE)})", details={"field": "order_by"}
        )
    try:
        offset = max(int(params.get("offset", "0")), 0)
    except ValueError as e:
        raise InvalidArgument("offset must be a number", details={"field": "offset"}) from e
    search: dict[str, Any] = {"limit": PAGE_SIZE, "offset": offset, "order_by": order}
    for key, value in filters.items():
        if value:
            search["query" if key == "q" else key] = value
    rows, total = st.catalog_overview(**search)
    from modelsteward.kinds.registry import kind_names

    def query(**change: Any) -> str:
        merged = {k: v for k, v in {**dict(params), **change}.items() if v not in ("", None) and k != "note"}
        return urlencode(merged)

    return render(request, st, "catalog.html", title="Catalog", rows=rows, total=total, filters=filters,
                  kinds=kind_names(), order=column, descending=descending, offset=offset, limit=PAGE_SIZE,
                  query=query, active=any(filters.values()))  # fmt: skip


router.include_router(oidc_login.router)
from modelsteward.web import monitoring_page  # noqa: E402  (after nav("/ui", ...): the catalog leads the menu)

router.include_router(monitoring_page.router)

from modelsteward.web import portfolio_page  # noqa: E402  (after nav("/ui", ...): the catalog leads the menu)

router.include_router(portfolio_page.router)

from modelsteward.web import model_page  # noqa: E402

router.include_router(model_page.router)

from modelsteward.web import work_pages  # noqa: E402  (after nav("/ui", ...): the catalog leads the menu)

router.include_router(work_pages.router)
