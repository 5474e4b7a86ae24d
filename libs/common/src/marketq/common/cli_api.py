"""``marketq`` commands over the HTTP API, for operators and service owners.

``jobs``, ``run``, ``status``, ``cancel``, ``runs``, ``queues``, ``workers``, ``schedules``
and ``market`` call the marketq API (``/api/v1``) with an API key; nothing here touches
Redis or the database directly (``marketq submit`` does, for machines inside the stack).

Every command takes ``--api-url`` (``MARKETQ_API_URL``, default http://127.0.0.1:8000)
and ``--api-key`` (``MARKETQ_API_KEY``), prints rich tables by default, and with
``--json`` writes the API's JSON body unchanged to stdout and nothing else there.
Exit codes are the same for every command (``EXIT_CODES_HELP``).
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from marketq.common.catalog import CATALOG, UnknownJobError
from marketq.common.cli_jobs import parse_params

console = Console()
err_console = Console(stderr=True)

DEFAULT_API_URL = "http://127.0.0.1:8000"
HTTP_TIMEOUT_SECONDS = 15.0
FINISHED = frozenset({"SUCCESS", "FAILURE", "REVOKED"})

# Exit codes scripts can rely on (the same for every command).
EXIT_OK = 0
EXIT_RUN_FAILED = 1  # run --wait: the run ended FAILURE or REVOKED
EXIT_INVALID = 2  # invalid input: HTTP 400/404/409/422 (and other 4xx), bad options
EXIT_UNAVAILABLE = 3  # API or broker unavailable: no connection, timeout, 503 (any 5xx)
EXIT_TIMEOUT = 4  # run --wait gave up; the run goes on
EXIT_AUTH = 5  # authentication or authorization: HTTP 401/403
EXIT_RATE_LIMITED = 6  # HTTP 429

EXIT_CODES_HELP = (
    "Exit codes: 0 ok (with --wait: the run succeeded) · 1 the run ended FAILURE or REVOKED "
    "(--wait) · 2 invalid input (HTTP 400/404/409/422) · 3 API or broker unavailable "
    "(no connection, 503) · 4 --wait timed out (the run goes on) · 5 authentication or "
    "authorization (401/403) · 6 rate limited (429).\n\n"
    "Connection: --api-url / MARKETQ_API_URL (default http://127.0.0.1:8000), "
    "--api-key / MARKETQ_API_KEY."
)

# --- options shared by every command ----------------------------------------------------

ApiUrlOption = Annotated[
    str,
    typer.Option(
        "--api-url",
        envvar="MARKETQ_API_URL",
        help="Base URL of the marketq API.",
        rich_help_panel="Connection",
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="MARKETQ_API_KEY",
        help="API key (sent as Authorization: Bearer).",
        show_default=False,
        show_envvar=True,
        rich_help_panel="Connection",
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print the API's JSON body unchanged on stdout and nothing else there (on an "
        "API error: its error body); messages go to stderr.",
        rich_help_panel="Output",
    ),
]


# --- the HTTP client ----------------------------------------------------------------------


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


def emit(text: str) -> None:
    """Write JSON text exactly as received, newline-terminated, to stdout."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


# --- rendering ------------------------------------------------------------------------------


def _when(value: Any) -> str:
    """ISO timestamps shortened to seconds, in UTC."""
    if not value:
        return ""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return parsed.strftime("%Y-%m-%d %H:%M:%S")


_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def cell(value: Any) -> str:
    """One value as table text: blanks for null, yes/no, compact JSON for structures."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return _when(value) if _ISO_DATETIME.match(value) else value
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value)
    return json.dumps(value, separators=(",", ":"), default=str)


def _is_records(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def records_table(records: list[dict[str, Any]], title: str | None) -> Table:
    """Rows of JSON objects as a table; columns are the union of keys, first seen first."""
    columns: list[str] = []
    for record in records:
        columns.extend(key for key in record if key not in columns)
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column.replace("_", " "), overflow="fold")
    for record in records:
        table.add_row(*(escape(cell(record.get(column))) for column in columns))
    return table


def mapping_table(data: Mapping[str, Any], title: str | None) -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key, value in data.items():
        table.add_row(escape(key.replace("_", " ")), escape(cell(value)))
    return table


def render(data: Any, title: str) -> None:
    """Any JSON the API returns, as tables: lists of objects as rows, objects as fields."""
    if _is_records(data):
        if data:
            console.print(records_table(data, title))
        else:
            console.print(f"{title}: none")
        return
    if isinstance(data, dict):
        fields = {k: v for k, v in data.items() if not (_is_records(v) and v)}
        tables = {k: v for k, v in data.items() if _is_records(v) and v}
        if fields:
            console.print(mapping_table(fields, title))
        for key, rows in tables.items():
            console.print(records_table(rows, f"{title}: {key.replace('_', ' ')}"))
        return
    console.print(escape(cell(data)))


def _progress_text(progress: Any) -> str:
    if not isinstance(progress, dict):
        return ""
    current, total = progress.get("current"), progress.get("total")
    if current is None and total is None:
        return ""
    return f"{current if current is not None else '?'}/{total if total is not None else '?'}"


STATE_STYLE = {"SUCCESS": "green", "FAILURE": "red", "REVOKED": "red", "RETRY": "yellow"}


def _state(state: Any) -> str:
    text = escape(str(state or ""))
    style = STATE_STYLE.get(str(state))
    return f"[{style}]{text}[/]" if style else text


def _took(run: dict[str, Any]) -> str:
    """Enqueue to finish, for finished runs."""
    try:
        start = datetime.fromisoformat(str(run["enqueued_at"]))
        end = datetime.fromisoformat(str(run["finished_at"]))
    except (KeyError, TypeError, ValueError):
        return ""
    return _age((end - start).total_seconds())


RUNS_WIDE_COLUMNS = 120  # below this, the runs table leaves out queue, tries and worker


def runs_table(runs: list[dict[str, Any]], title: str | None = None) -> Table:
    wide = console.width >= RUNS_WIDE_COLUMNS
    with_progress = wide and any(_progress_text(run.get("progress")) for run in runs)
    table = Table(
        title=title,
        title_justify="left",
        caption="times in UTC",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("run", no_wrap=True, min_width=36)
    table.add_column("job", overflow="fold", min_width=8)
    if wide:
        table.add_column("queue", overflow="fold", min_width=5)
    table.add_column("state", no_wrap=True)
    if with_progress:
        table.add_column("progress", justify="right", no_wrap=True)
    if wide:
        table.add_column("tries", justify="right", no_wrap=True)
    table.add_column("enqueued", no_wrap=True, min_width=19)
    table.add_column("took", justify="right", no_wrap=True)
    if wide:
        table.add_column("worker", overflow="fold", min_width=6)
    for run in runs:
        row = [escape(str(run.get("run_id", ""))), escape(str(run.get("job", "")))]
        if wide:
            row.append(escape(str(run.get("queue", ""))))
        row.append(_state(run.get("state")))
        if with_progress:
            row.append(_progress_text(run.get("progress")))
        if wide:
            row.append(cell(run.get("attempts")))
        row += [_when(run.get("enqueued_at")).removesuffix("Z"), _took(run)]
        if wide:
            row.append(escape(cell(run.get("worker"))))
        table.add_row(*row)
    return table


def print_status(run: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_row("run", escape(str(run.get("run_id", ""))))
    table.add_row("job", escape(str(run.get("job", ""))))
    table.add_row("queue", escape(str(run.get("queue", ""))))
    table.add_row("state", _state(run.get("state")))
    if run.get("progress"):
        table.add_row("progress", _progress_text(run.get("progress")))
    table.add_row("attempts", cell(run.get("attempts")))
    for key in ("worker", "enqueued_at", "eta", "received_at", "started_at", "finished_at"):
        if run.get(key):
            label = key.removesuffix("_at") + (" (UTC)" if key.endswith("_at") else "")
            table.add_row(label, escape(cell(run[key])))
    table.add_row("params", escape(cell(run.get("params") or {})))
    if run.get("error"):
        table.add_row("error", f"[red]{escape(str(run['error']))}[/]")
    console.print(table)
    if run.get("result") is not None:
        console.print("result:", style="bold")
        console.print_json(data=run["result"])


# --- commands -------------------------------------------------------------------------------


def jobs(
    api_url: ApiUrlOption = DEFAULT_API_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the job catalog (GET /api/v1/jobs)."""
    with api_session(api_url, api_key, as_json=as_json) as client:
        response = client.get("/api/v1/jobs")
    if as_json:
        emit(response.text)
        return
    table = Table(title="marketq jobs", title_justify="left")
    table.add_column("job", no_wrap=True)
    table.add_column("queue", no_wrap=True)
    table.add_column("schedule")
    table.add_column("market hours")
    table.add_column("description")
    for job in response.json():
        schedule = job.get("schedule") or "on demand"
        if job.get("trading_days_only"):
            schedule += " (trading days)"
        table.add_row(
            escape(str(job.get("name", ""))),
            escape(str(job.get("queue", ""))),
            escape(schedule),
            "yes" if job.get("market_hours_only") else "",
            escape(str(job.get("description", ""))),
        )
    console.print(table)


def _params(job_name: str, pairs: list[str], raw_json: str | None) -> dict[str, Any]:
    """``k=v`` pairs parsed with the local catalog's model (comma lists for list fields)."""
    try:
        spec = CATALOG[job_name]
    except UnknownJobError:
        spec = None
    if spec is not None:
        return parse_params(spec, pairs, raw_json)
    # Not in this library's catalog (an older CLI than the API?): the API decides.
    params: dict[str, Any] = json.loads(raw_json) if raw_json else {}
    if not isinstance(params, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="--params-json")
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="--param")
        params[key] = json.loads(value) if value[:1] in '[{"' and value else value
    return params


def _follow(client: ApiClient, accepted: dict[str, Any], timeout: float, *, as_json: bool) -> int:
    """Poll the run until it ends or ``timeout`` passes; print the outcome; its exit code."""
    run_id = str(accepted["run_id"])
    path = f"/api/v1/runs/{quote(run_id, safe='')}"
    deadline = time.monotonic() + timeout
    last: httpx.Response | None = None
    last_failure: ApiCallError | None = None
    state = str(accepted.get("state") or "QUEUED")
    interval = 0.2
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[state]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as progress:
        bar = progress.add_task(f"{accepted.get('job', '')} {run_id[:8]}", total=None, state=state)
        while True:
            pause = interval
            try:
                last = client.call("GET", path)
                last_failure = None
                body = last.json()
                state = str(body.get("state"))
                done = body.get("progress") or {}
                progress.update(
                    bar,
                    state=state,
                    completed=done.get("current") or 0,
                    total=done.get("total"),
                )
                if state in FINISHED:
                    break
            except ApiCallError as failure:
                # The run goes on while the API or Redis blinks: keep asking until the deadline.
                if failure.exit_code not in (EXIT_UNAVAILABLE, EXIT_RATE_LIMITED):
                    raise
                last_failure = failure
                progress.update(bar, state=escape(f"{state} (API: {failure.message[:60]})"))
                pause = max(interval, failure.retry_after or 0)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(pause, remaining))
            interval = min(interval * 1.5, 1.0)

    if state not in FINISHED:
        if last_failure is not None:
            raise last_failure
        if as_json and last is not None:
            emit(last.text)
        err_console.print(
            f"[yellow]still {escape(state)} after {timeout:g} s[/]: {run_id} (the run goes on; "
            f"follow it with `marketq status {run_id}`)",
            highlight=False,
        )
        return EXIT_TIMEOUT
    assert last is not None
    body = last.json()
    if as_json:
        emit(last.text)
    else:
        console.print(
            f"{_state(state)} {escape(run_id)} attempts={body.get('attempts')} "
            f"worker={escape(str(body.get('worker')))}",
            highlight=False,
        )
        if state == "SUCCESS" and body.get("result") is not None:
            console.print_json(data=body["result"])
        if body.get("error"):
            console.print(f"[red]{escape(str(body['error']))}[/]", highlight=False)
    return EXIT_OK if state == "SUCCESS" else EXIT_RUN_FAILED


def run(
    job_name: Annotated[str, typer.Argument(metavar="JOB", help="Catalog job name.")],
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", "-p", help="key=value; repeat. Lists: symbols=AAPL,MSFT; JSON values ok."
        ),
    ] = None,
    params_json: Annotated[
        str | None,
        typer.Option(
            "--params-json",
            metavar="PARAMS",
            help="All params as one JSON object (--param pairs override its keys).",
        ),
    ] = None,
    countdown: Annotated[float | None, typer.Option(help="Seconds to wait first.")] = None,
    priority: Annotated[int | None, typer.Option(help="0 (highest) .. 9.")] = None,
    queue: Annotated[str | None, typer.Option(help="Another queue (health_check only).")] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(help="Same key + same request: the same run, once (Idempotency-Key)."),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the run to its end, with a progress bar.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits.")] = 300.0,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Trigger one run of JOB (POST /api/v1/jobs/JOB/runs); --wait follows it to its end.

    Prints the run id (--json: the 202 body, or with --wait the final GET /runs/ID body).
    """
    try:
        params = _params(job_name, param or [], params_json)
    except (typer.BadParameter, json.JSONDecodeError) as exc:
        report(ApiCallError(EXIT_INVALID, f"invalid parameters: {exc}"), as_json=False)
        raise typer.Exit(EXIT_INVALID) from None
    body: dict[str, Any] = {"params": params}
    for key, value in (("countdown", countdown), ("priority", priority), ("queue", queue)):
        if value is not None:
            body[key] = value
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    with api_session(api_url, api_key, as_json=as_json) as client:
        response = client.call(
            "POST", f"/api/v1/jobs/{quote(job_name, safe='')}/runs", body=body, headers=headers
        )
        accepted = response.json()
        replayed = response.headers.get("Idempotent-Replayed") == "true"
        note = " (Idempotency-Key seen before: the first run)" if replayed else ""
        line = (
            f"queued [bold]{escape(str(accepted['run_id']))}[/] "
            f"({escape(str(accepted.get('job')))} on {escape(str(accepted.get('queue')))}){note}"
        )
        if as_json:
            if not wait:
                emit(response.text)
                return
            err_console.print(line, highlight=False)
        else:
            console.print(line, highlight=False)
        if not wait:
            return
        code = _follow(client, accepted, timeout, as_json=as_json)
    raise typer.Exit(code)


RunIdArgument = Annotated[str, typer.Argument(metavar="ID", help="Run id.")]


def status(
    run_id: RunIdArgument,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """One run's state, progress, result or error (GET /api/v1/runs/ID)."""
    with api_session(api_url, api_key, as_json=as_json) as client:
        response = client.get(f"/api/v1/runs/{quote(run_id, safe='')}")
    if as_json:
        emit(response.text)
    else:
        print_status(response.json())


def cancel(
    run_id: RunIdArgument,
    terminate: Annotated[
        bool, typer.Option("--terminate", help="Also stop it if it is already running.")
    ] = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel a run (POST /api/v1/runs/ID/cancel). A finished run is an error (exit 2)."""
    with api_session(api_url, api_key, as_json=as_json) as client:
        response = client.call(
            "POST",
            f"/api/v1/runs/{quote(run_id, safe='')}/cancel",
            params={"terminate": "true" if terminate else None},
        )
    if as_json:
        emit(response.text)
        return
    body = response.json()
    state = str(body.get("state"))
    if state == "REVOKED":
        console.print(f"{_state(state)} {escape(run_id)}", highlight=False)
    else:
        console.print(
            f"cancel requested: {escape(run_id)} is {_state(state)}; "
            f"`marketq status {escape(run_id)}` shows when it stops",
            highlight=False,
        )


_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def since_param(value: str | None, now: datetime | None = None) -> str | None:
    """``15m``, ``2h``, ``7d`` become a UTC timestamp; anything else goes to the API as is."""
    if value is None:
        return None
    match = _RELATIVE.match(value.strip())
    if not match:
        return value
    seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    return ((now or datetime.now(UTC)) - timedelta(seconds=seconds)).isoformat()


def runs(
    job: Annotated[str | None, typer.Option(help="Only this job.")] = None,
    state: Annotated[
        str | None,
        typer.Option(help="Only this state: QUEUED, STARTED, SUCCESS, FAILURE, REVOKED, ..."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Enqueued at or after: 15m, 2h, 7d, or ISO time with offset."),
    ] = None,
    limit: Annotated[int, typer.Option(help="Runs per page (1..500).")] = 50,
    cursor: Annotated[str | None, typer.Option(help="Continue from a page's next_cursor.")] = None,
    all_pages: Annotated[
        bool,
        typer.Option(
            "--all", help="Follow next_cursor to the end (--json: one page-shaped object)."
        ),
    ] = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run history, newest first (GET /api/v1/runs)."""
    query: dict[str, Any] = {
        "job": job,
        "state": state.upper() if state else None,
        "since": since_param(since),
        "limit": limit,
        "cursor": cursor,
    }
    pages: list[httpx.Response] = []
    with api_session(api_url, api_key, as_json=as_json) as client:
        while True:
            response = client.get("/api/v1/runs", **query)
            pages.append(response)
            next_cursor = response.json().get("next_cursor")
            if not all_pages or not next_cursor:
                break
            query["cursor"] = next_cursor
    if as_json:
        if len(pages) == 1:
            emit(pages[0].text)
        else:  # the same shape as one page: every run, no cursor left
            every = [run for page in pages for run in page.json()["runs"]]
            emit(json.dumps({"runs": every, "next_cursor": None}, separators=(",", ":")))
        return
    collected = [run for page in pages for run in page.json()["runs"]]
    if not collected:
        console.print("no runs")
    else:
        console.print(runs_table(collected))
    next_cursor = pages[-1].json().get("next_cursor")
    if next_cursor:
        err_console.print(
            f"more runs: pass --all, or --cursor {next_cursor}", highlight=False, soft_wrap=True
        )


def _fetch(path: str, api_url: str, api_key: str | None, as_json: bool, **query: Any) -> Any | None:
    """GET ``path``; with --json print the body and return None, else return its JSON."""
    with api_session(api_url, api_key, as_json=as_json) as client:
        response = client.get(path, **query)
    if as_json:
        emit(response.text)
        return None
    return response.json()


def _instant(value: Any) -> str:
    """An API instant ``{"exchange_time", "utc"}`` in the exchange's time, to the minute."""
    raw = value.get("exchange_time") if isinstance(value, dict) else value
    if not raw:
        return ""
    try:
        parsed = datetime.fromisoformat(str(raw))
    except ValueError:
        return str(raw)
    return parsed.strftime("%a %Y-%m-%d %H:%M %z")


def _age(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return ""
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def render_queues(body: dict[str, Any]) -> None:
    table = Table(title=f"queues (read {_when(body.get('read_at'))})", title_justify="left")
    table.add_column("queue", no_wrap=True)
    table.add_column("waiting", justify="right")
    table.add_column("by priority (0 first)")
    table.add_column("oldest waiting", justify="right")
    table.add_column("reserved", justify="right")
    with_consumers = any(q.get("consumers") is not None for q in body["queues"])
    if with_consumers:
        table.add_column("consumers", justify="right")
    for queue in body["queues"]:
        by_priority = queue.get("by_priority") or {}
        row = [
            escape(str(queue.get("name", ""))),
            cell(queue.get("length")),
            " ".join(f"{p}:{n}" for p, n in by_priority.items()),
            _age(queue.get("oldest_age_seconds")),
            "?" if queue.get("reserved") is None else cell(queue.get("reserved")),
        ]
        if with_consumers:
            consumers = queue.get("consumers")
            row.append("[yellow]0[/]" if consumers == 0 else cell(consumers))
        table.add_row(*row)
    console.print(table)
    console.print(f"reserved by workers in all: {cell(body.get('reserved_total'))}")


def render_workers(body: dict[str, Any]) -> None:
    cached = body.get("cache_seconds")
    title = f"workers (asked {_when(body.get('fetched_at'))}, cached {cell(cached)} s)"
    if not body["workers"]:
        console.print(f"{title}: [yellow]no worker answered[/]")
    else:
        table = Table(title=title, title_justify="left")
        for column in ("worker", "queues", "pool", "active", "reserved", "processed", "up"):
            table.add_column(column, justify="left" if column in ("worker", "queues") else "right")
        table.add_column("pid", justify="right")
        for worker in body["workers"]:
            table.add_row(
                escape(str(worker.get("name", ""))),
                escape(cell(worker.get("queues"))),
                cell(worker.get("pool_size")),
                cell(worker.get("active")),
                cell(worker.get("reserved")),
                cell(worker.get("processed")),
                _age(worker.get("uptime_seconds")),
                cell(worker.get("pid")),
            )
        console.print(table)
    per_queue = Table(title="consumers per queue", title_justify="left")
    for column in ("queue", "workers", "pool", "names"):
        per_queue.add_column(column, justify="right" if column in ("workers", "pool") else "left")
    for queue in body.get("queues") or []:
        count = queue.get("workers")
        per_queue.add_row(
            escape(str(queue.get("name", ""))),
            "[yellow]0[/]" if count == 0 else cell(count),
            cell(queue.get("pool_size")),
            escape(cell(queue.get("worker_names"))),
        )
    console.print(per_queue)


def render_schedules(body: dict[str, Any]) -> None:
    title = (
        f"schedules on {escape(str(body.get('exchange', '')))} "
        f"({escape(str(body.get('timezone', '')))}) after {_instant(body.get('as_of'))}"
        if body.get("exchange")
        else "schedule entry"
    )
    scheduler = body.get("scheduler") or {}
    if scheduler.get("holder"):
        title += (
            f"; beat {escape(str(scheduler['holder']))} ticked {_when(scheduler.get('last_tick'))}"
        )
    elif scheduler:
        title += "; [yellow]no beat holds the lock[/]"
    table = Table(title=title, title_justify="left")
    table.add_column("entry", no_wrap=True)
    table.add_column("queue", no_wrap=True)
    table.add_column("when")
    table.add_column("calendar")
    table.add_column("next fires (exchange time)")
    table.add_column("last fire")
    for entry in body["schedules"]:
        when = entry.get("cron") or (
            f"every {entry['every_seconds']} s"
            if entry.get("every_seconds")
            else f"after {entry.get('after')}"
        )
        if entry.get("followed_by"):
            when += f" → {', '.join(entry['followed_by'])}"
        flags = [
            label
            for key, label in (
                ("market_hours_only", "market hours"),
                ("trading_days_only", "trading days"),
            )
            if entry.get(key)
        ]
        name = str(entry.get("name") or entry.get("job", ""))
        if entry.get("job") and entry.get("job") != name:
            name += f" ({entry['job']})"
        if entry.get("enabled") is False:
            name += " [yellow]disabled[/]"
        if entry.get("source") == "runtime":
            flags.append("edited")
        last = entry.get("last_fire") or {}
        table.add_row(
            escape(name) if "[" not in name else name,
            escape(str(entry.get("queue", ""))),
            escape(when),
            ", ".join(flags),
            "\n".join(_instant(fire) for fire in entry.get("next_fires") or []),
            _when(last.get("fire_at")) if last else "",
        )
    console.print(table)


def render_market(body: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value")
    table.add_row("exchange", f"{escape(str(body.get('exchange')))} ({body.get('timezone')})")
    table.add_row("now", _instant(body.get("now")))
    table.add_row("market", "[green]open[/]" if body["is_open"] else "[yellow]closed[/]")
    session = body.get("session")
    if isinstance(session, dict):
        early = " (early close)" if session.get("early_close") else ""
        table.add_row(
            "session",
            f"{session.get('day')}: {_instant(session.get('open'))} - "
            f"{_instant(session.get('close'))}{early}",
        )
    table.add_row("next open", _instant(body.get("next_open")))
    table.add_row("next close", _instant(body.get("next_close")))
    console.print(table)


def _render_view(body: Any, key: str, title: str, renderer: Callable[[Any], None]) -> None:
    """The view's own layout; any other shape (another API version) generically."""
    if isinstance(body, dict) and key in body:
        renderer(body)
    else:
        render(body, title)


AtOption = Annotated[
    str | None,
    typer.Option(help="Answer for this instant (ISO 8601 with a UTC offset) instead of now."),
]


def queues(
    consumers: Annotated[
        bool,
        typer.Option(
            "--consumers", help="Also count the workers consuming each queue (asks them)."
        ),
    ] = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Backlog per queue: waiting, by priority, oldest age, reserved (GET /api/v1/queues)."""
    query = {"consumers": "true" if consumers else None}
    body = _fetch("/api/v1/queues", api_url, api_key, as_json, **query)
    if body is not None:
        _render_view(body, "queues", "queues", render_queues)


def workers(
    api_url: ApiUrlOption = DEFAULT_API_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Workers online, their queues, pools and load (GET /api/v1/workers)."""
    body = _fetch("/api/v1/workers", api_url, api_key, as_json)
    if body is not None:
        _render_view(body, "workers", "workers", render_workers)


def schedules(
    at: AtOption = None,
    count: Annotated[int, typer.Option(help="Next fires per job (1..20).")] = 3,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Scheduled jobs and their next fires in exchange time (GET /api/v1/schedules)."""
    body = _fetch("/api/v1/schedules", api_url, api_key, as_json, at=at, count=count)
    if body is not None:
        _render_view(body, "schedules", "schedules", render_schedules)


def schedule(
    name: Annotated[str, typer.Argument(metavar="ENTRY", help="Schedule entry name.")],
    enable: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Turn the entry on or off.")
    ] = None,
    cron: Annotated[str | None, typer.Option(help="New cron, in exchange time.")] = None,
    every: Annotated[int | None, typer.Option(help="Fire every N seconds instead.")] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="k=v params replacing the entry's (repeatable)."),
    ] = None,
    reset: Annotated[
        bool, typer.Option("--reset", help="Drop the runtime edit (back to catalog + file).")
    ] = False,
    fire: Annotated[
        bool, typer.Option("--run", help="Fire the entry now (with its chain); prints the run.")
    ] = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show, edit (PATCH), reset or fire one schedule entry. Edits take effect within one
    beat loop and survive beat restarts; --reset drops them."""
    path = f"/api/v1/schedules/{quote(name, safe='')}"
    with api_session(api_url, api_key, as_json=as_json) as client:
        if reset:
            response = client.call("DELETE", f"{path}/override")
        elif fire:
            response = client.call("POST", f"{path}/run")
        elif enable is not None or cron or every or param:
            body: dict[str, Any] = {}
            if enable is not None:
                body["enabled"] = enable
            if cron:
                body["cron"] = cron
            if every:
                body["every_seconds"] = every
            if param:
                listed = client.get(path).json()
                body["params"] = _params(str(listed.get("job", name)), param, None)
            response = client.call("PATCH", path, body=body)
        else:
            response = client.get(path)
    if as_json:
        emit(response.text)
        return
    data = response.json()
    if fire:
        console.print(
            f"fired {escape(name)}: run {escape(str(data.get('run_id')))} "
            f"(`marketq status {escape(str(data.get('run_id')))}`)",
            highlight=False,
        )
        return
    render_schedules({"schedules": [data]})


def market(
    at: AtOption = None,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Is the market open: session, next open and close (GET /api/v1/market/status)."""
    body = _fetch("/api/v1/market/status", api_url, api_key, as_json, at=at)
    if body is not None:
        _render_view(body, "is_open", "market", render_market)


COMMANDS: dict[str, Callable[..., None]] = {
    "jobs": jobs,
    "run": run,
    "status": status,
    "cancel": cancel,
    "runs": runs,
    "queues": queues,
    "workers": workers,
    "schedules": schedules,
    "schedule": schedule,
    "market": market,
}


def register(app: typer.Typer) -> None:
    """Add the API commands to the ``marketq`` app, each with the exit codes in its help."""
    for name, command in COMMANDS.items():
        app.command(name, epilog=EXIT_CODES_HELP, rich_help_panel="API")(command)
