"""Refuse request bodies over ``api_max_body_bytes`` (uploads: ``import_max_bytes``)
before anything reads them whole.

A declared Content-Length above the limit is answered 413 at once; a chunked body is
counted as it arrives and refused the moment it passes the limit. Either way the route
never runs, so nothing is published (docs/api.md#limits).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from marketq.api.errors import error_response


class _TooLargeError(Exception):
    pass


class BodyLimitMiddleware:
    """``max_bytes`` for every route; ``routes`` gives some their own limit (uploads)."""

    def __init__(self, app: ASGIApp, max_bytes: int, routes: dict[str, int]) -> None:
        self._app = app
        self._default = max_bytes
        self._routes = routes

    @staticmethod
    def _refusal(limit: int) -> ASGIApp:
        return error_response(
            413,
            "body_too_large",
            f"the request body is larger than {limit} bytes; large inputs go through "
            "POST /api/v1/uploads",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limit = self._routes.get(scope["path"], self._default)
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._refusal(limit)(scope, receive, send)
                return
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLargeError
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self._app(scope, counted_receive, tracked_send)
        except _TooLargeError:
            if not started:
                await self._refusal(limit)(scope, receive, send)
