"""One JSON error shape for every failure: ``{"error": {"code", "message", "details"}}``.

Clients never see a traceback. Validation errors name the field (``details[].field``);
Redis being unreachable is a 503 with ``Retry-After``; anything unexpected is a logged
500 with an id the operator can find in the logs. The OpenAPI document says the same:
FastAPI's own 422 model (``HTTPValidationError``) is replaced by ``ErrorResponse``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import OperationalError as DatabaseOperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("marketq.api")

RETRY_AFTER_SECONDS = 2


class ErrorDetail(BaseModel):
    field: str | None = Field(default=None, description="Dotted path of the offending field.")
    message: str
    type: str | None = None


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. invalid_params.")
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    error: ErrorBody


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[ErrorDetail] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = headers or {}


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[ErrorDetail] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(code=code, message=message, details=details or []))
    return JSONResponse(
        body.model_dump(mode="json"), status_code=status, headers=dict(headers or {})
    )


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


async def require_json_body(request: Request) -> None:
    """A request body is JSON, said so by its Content-Type; anything else is a 415.

    FastAPI would otherwise validate a form or plain-text body as if it were the model's
    input and answer with a confusing 422 (or, for a model whose fields all have
    defaults, accept it)."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    content_type = request.headers.get("content-type", "")
    if await request.body() and not _is_json(content_type):
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json "
            f"(got {content_type or 'no Content-Type'})",
        )


def _json_error(body: bytes, error: Mapping[str, Any]) -> str:
    """Where the JSON broke, as an editor shows it: ``invalid JSON at line 3, column 7``."""
    loc = tuple(error.get("loc", ()))
    position = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
    reason = str((error.get("ctx") or {}).get("error") or error.get("msg") or "")
    if position is None:
        return f"invalid JSON: {reason}"
    before = body.decode("utf-8", errors="replace")[:position]
    line = before.count("\n") + 1
    column = position - (before.rfind("\n") + 1) + 1
    return f"invalid JSON at line {line}, column {column}: {reason}"


def _field(loc: tuple[Any, ...]) -> str:
    # Drop FastAPI's "body"/"query"/"path"/"header" prefix: clients know where they sent it.
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    return ".".join(parts)


def _document_error_shape(document: dict[str, Any]) -> dict[str, Any]:
    """Point FastAPI's default 422 responses at ErrorResponse, the body actually sent."""
    ref = "#/components/schemas/HTTPValidationError"
    for operation in (op for ops in document.get("paths", {}).values() for op in ops.values()):
        response = operation.get("responses", {}).get("422")
        schema = (response or {}).get("content", {}).get("application/json", {}).get("schema")
        if schema == {"$ref": ref}:
            response["description"] = "Invalid request; details name each offending field."
            schema["$ref"] = "#/components/schemas/ErrorResponse"
    schemas = document.get("components", {}).get("schemas", {})
    if ref not in json.dumps(document.get("paths", {})):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return document


def _redis_unavailable(exc: Exception) -> JSONResponse:
    log.warning("redis unavailable: %s", exc)
    return error_response(
        503,
        "broker_unavailable",
        "the message broker is unavailable; nothing was accepted, retry shortly",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _deferred_count(request: Request) -> JSONResponse | None:
    """Count a request whose route would have counted it in its publish script but which
    failed first (see ratelimit.py); the 429 or 503 that counting gives wins."""
    from marketq.api.ratelimit import count_deferred  # ratelimit imports this module

    state = getattr(request.app.state, "marketq", None)
    if state is None:
        return None
    try:
        await count_deferred(
            request,
            state.redis,
            state.settings.redis_key_prefix,
            state.settings.api_rate_limit_per_minute,
        )
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)
    except (RedisConnectionError, RedisTimeoutError) as exc:
        return _redis_unavailable(exc)
    return None


def install_error_handlers(app: FastAPI) -> None:
    """Answer every failure in the one shape, and document that shape in /openapi.json."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        return _document_error_shape(generate())

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        if (counted := await _deferred_count(request)) is not None:
            return counted
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if (counted := await _deferred_count(request)) is not None:
            return counted
        body = await request.body()
        details = [
            ErrorDetail(
                # A body that is not JSON: the loc is a character position, not a field.
                field=None if e["type"] == "json_invalid" else _field(tuple(e.get("loc", ()))),
                message=_json_error(body, e) if e["type"] == "json_invalid" else e["msg"],
                type=e["type"],
            )
            for e in exc.errors()
        ]
        names = ", ".join(d.field or "(body)" for d in details)
        return error_response(422, "invalid_request", f"invalid request: {names}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if (counted := await _deferred_count(request)) is not None:
            return counted
        if exc.status_code == 400:
            # FastAPI's only 400: a body it cannot decode (not UTF-8, say). Invalid JSON is
            # already a 422 json_invalid; an unreadable body is the same client error.
            detail = ErrorDetail(field=None, message=str(exc.detail), type="json_invalid")
            return error_response(422, "invalid_request", "invalid request: (body)", [detail])
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RedisConnectionError)
    @app.exception_handler(RedisTimeoutError)
    async def _redis_down(_request: Request, exc: Exception) -> JSONResponse:
        return _redis_unavailable(exc)

    @app.exception_handler(DatabaseOperationalError)
    async def _database_down(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return error_response(
            503,
            "database_unavailable",
            "the database is unavailable; retry shortly",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        incident = uuid.uuid4().hex[:12]
        log.error("unhandled error (incident %s)", incident, exc_info=exc)
        return error_response(500, "internal_error", f"internal error (incident {incident})")
