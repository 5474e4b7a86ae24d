"""The HTTP client of the API commands, its error shape and the exit codes.

Nothing in ``marketq`` touches Redis or the database except ``submit`` and ``db``; every
other command calls the API (``/api/v1``) with an API key through ``ApiClient``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx
import typer
from rich.markup import escape

from marketq.cli.output import emit, err_console

DEFAULT_API_URL = "http://127.0.0.1:8000"


HTTP_TIMEOUT_SECONDS = 15.0


FINISHED = frozenset({"SUCCESS", "FAILURE", "REVOKED", "LOST"})


# Exit codes scripts can rely on (the same for every command).
EXIT_OK = 0


EXIT_RUN_FAILED = 1  # run --wait: the run ended FAILURE, REVOKED or LOST


EXIT_INVALID = 2  # invalid input: HTTP 400/404/409/422 (and other 4xx), bad options


EXIT_UNAVAILABLE = 3  # API or broker unavailable: no connection, timeout, 503 (any 5xx)


EXIT_TIMEOUT = 4  # run --wait gave up; the run goes on


EXIT_AUTH = 5  # authentication or authorization: HTTP 401/403


EXIT_RATE_LIMITED = 6  # HTTP 429


class ApiCallError(Exception):
    """A request that did not succeed, with the exit code and what to tell the user."""

    def __init__(
        self,
        exit_code: int,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        details: list[tuple[str | None, str | None]] | None = None,
        hint: str | None = None,
        body: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message
        self.status = status
        self.error_code = error_code
        self.details = details or []
        self.hint = hint
        self.body = body
        self.retry_after = retry_after


def exit_code_for(status: int) -> int:
    """The exit code of an unsuccessful HTTP status."""
    if status in (401, 403):
        return EXIT_AUTH
    if status == 429:
        return EXIT_RATE_LIMITED
    if status >= 500:
        return EXIT_UNAVAILABLE
    return EXIT_INVALID


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def failure_from(response: httpx.Response, *, has_key: bool) -> ApiCallError:
    """Read the API's error shape ``{"error": {"code", "message", "details"}}``."""
    status = response.status_code
    message = f"HTTP {status} {response.reason_phrase}".strip()
    error_code: str | None = None
    details: list[tuple[str | None, str | None]] = []
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or message)
        error_code = str(error["code"]) if error.get("code") else None
        for detail in error.get("details") or []:
            if isinstance(detail, dict):
                field, text = detail.get("field"), detail.get("message")
                details.append(
                    (str(field) if field else None, str(text) if text is not None else None)
                )
    retry_after = _retry_after(response)
    hint = None
    if status == 401 and not has_key:
        hint = "no API key given: pass --api-key or set MARKETQ_API_KEY"
    elif retry_after is not None and status in (429, 503):
        hint = f"retry after {retry_after:g} s"
    elif error_code == "running":
        hint = "the run has started: `marketq cancel --terminate ID` stops it"
    return ApiCallError(
        exit_code_for(status),
        message,
        status=status,
        error_code=error_code,
        details=details,
        hint=hint,
        body=response.text,
        retry_after=retry_after,
    )


class ApiClient:
    """A thin synchronous client: raises ApiCallError for anything but a 2xx."""

    def __init__(self, url: str, key: str | None, timeout: float = HTTP_TIMEOUT_SECONDS) -> None:
        self.url = url.rstrip("/")
        self.has_key = bool(key)
        self.timeout = timeout
        headers = {"Accept": "application/json", "User-Agent": "marketq-cli"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        try:
            self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        except (httpx.InvalidURL, ValueError) as exc:
            raise ApiCallError(EXIT_INVALID, f"invalid --api-url {url!r}: {exc}") from None

    def close(self) -> None:
        self._http.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        try:
            response = self._http.request(
                method,
                path,
                params={k: v for k, v in (params or {}).items() if v is not None},
                json=body,
                headers=dict(headers or {}),
            )
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise ApiCallError(EXIT_INVALID, f"invalid --api-url {self.url!r}: {exc}") from None
        except httpx.TimeoutException:
            raise ApiCallError(
                EXIT_UNAVAILABLE, f"the API at {self.url} did not answer in {self.timeout:g} s"
            ) from None
        except httpx.TransportError as exc:
            raise ApiCallError(
                EXIT_UNAVAILABLE, f"cannot reach the API at {self.url}: {exc}"
            ) from None
        if response.is_success:
            return response
        raise failure_from(response, has_key=self.has_key)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.call("GET", path, params=params)


def report(failure: ApiCallError, *, as_json: bool) -> None:
    """The API's error.message and every details[].field on stderr (the body on stdout)."""
    if as_json and failure.body:
        emit(failure.body)
    where = ", ".join(
        part
        for part in (f"HTTP {failure.status}" if failure.status else "", failure.error_code or "")
        if part
    )
    suffix = f" [dim]({escape(where)})[/]" if where else ""
    err_console.print(f"[red]error:[/] {escape(failure.message)}{suffix}", highlight=False)
    for field, text in failure.details:
        err_console.print(
            f"  [bold]{escape(field or '(request)')}[/]: {escape(text or '')}", highlight=False
        )
    if failure.hint:
        err_console.print(f"[yellow]{escape(failure.hint)}[/]", highlight=False)


@contextmanager
def api_session(url: str, key: str | None, *, as_json: bool) -> Iterator[ApiClient]:
    """A client for one command; a ApiCallError becomes its report and exit code."""
    client: ApiClient | None = None
    try:
        client = ApiClient(url, key)
        yield client
    except ApiCallError as failure:
        report(failure, as_json=as_json)
        raise typer.Exit(failure.exit_code) from None
    finally:
        if client is not None:
            client.close()


def fetch(path: str, api_url: str, api_key: str | None, as_json: bool, **query: Any) -> Any | None:
    """GET ``path``; with --json print the body and return None, else return its JSON."""
    with api_session(api_url, api_key, as_json=as_json) as client:
        response = client.get(path, **query)
    if as_json:
        emit(response.text)
        return None
    return response.json()
