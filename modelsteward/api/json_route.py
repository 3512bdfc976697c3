"""The route class of every API router: JSON bodies parsed as the inference fast path parses them (orjson),
so that all routes agree on what JSON is. Python's own parser takes ``NaN``, ``Infinity`` and ``1e999``,
which JSON does not have (a KPI of Infinity was stored as null, and a model given one failed with a 500);
lone surrogates in strings; and nesting until the interpreter's recursion limit. orjson refuses all of
them with a ``JSONDecodeError`` (a subclass of the standard one), which FastAPI answers with a 422 on the
field ``body``."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict
