"""One table from error codes to HTTP answers, with the body ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelsteward.errors import StewardError

log = logging.getLogger("modelsteward.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"error": {"code": code, "message": message, "details": details or {}}}
    )


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or ".".join(str(p) for p in loc)


#: FastAPI's words when it cannot parse a body
_UNREADABLE_BODY = "There was an error parsing the body"


def _unauthenticated(request: Request) -> JSONResponse | None:
    """The 401 a caller without a valid token meets on a server that demands one, for a body FastAPI refused
    before the route's dependencies could check the caller: who may not call a route learns nothing of how it
    reads its input."""
    from modelsteward.api.deps import check_caller

    try:
        check_caller(request)
    except StewardError as e:
        return error_response(e.http_status, e.code, e.message, e.details)
    return None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StewardError)
    async def _steward_error(_request: Request, exc: StewardError) -> JSONResponse:
        response = error_response(exc.http_status, exc.code, exc.message, exc.details)
        retry_after = exc.details.get("retry_after")
        if exc.http_status == 503 and retry_after is not None:
            response.headers["retry-after"] = str(retry_after)  # back-pressure (a full prediction log)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        if first.get("type") == "json_invalid":  # FastAPI read the body before any dependency checked the caller
            refused = _unauthenticated(request)
            if refused is not None:
                return refused
            at = first.get("loc", ("body", 0))[-1]
            reason = (first.get("ctx") or {}).get("error", "JSON decode error")
            return error_response(
                422, "invalid_argument", f"the body is not valid JSON: {reason} (at character {at})",
                {"field": "body", "problems": [{"field": "body", "problem": reason}]},
            )  # fmt: skip
        field = _field_path(first.get("loc", ()))
        problems = [{"field": _field_path(e.get("loc", ())), "problem": e.get("msg", "")} for e in errors]
        return error_response(
            422,
            "invalid_argument",
            f"invalid {field or 'request'}: {first.get('msg')}",
            {"field": field, "problems": problems},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message, details = str(exc.detail), {}
        if exc.status_code == 400:
            # Only reading the body raises a bare 400 (FastAPI: not UTF-8, nested too deep; Starlette: a broken
            # multipart form), and it does so before any dependency checked the caller.
            refused = _unauthenticated(request)
            if refused is not None:
                return refused
            message = "the body could not be read" + ("" if message == _UNREADABLE_BODY else f": {message}")
            details = {"field": "body"}
        response = error_response(exc.status_code, code, message, details)
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "internal error; the server log has the details")
