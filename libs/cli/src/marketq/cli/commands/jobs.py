"""``marketq jobs`` and ``marketq run``: the catalog, and triggering a run over the API."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from marketq.cli.client import (
    DEFAULT_API_URL,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_RATE_LIMITED,
    EXIT_RUN_FAILED,
    EXIT_TIMEOUT,
    EXIT_UNAVAILABLE,
    FINISHED,
    ApiCallError,
    ApiClient,
    api_session,
    report,
)
from marketq.cli.lookup import job_names, with_hint
from marketq.cli.options import (
    ApiKeyOption,
    ApiUrlOption,
    CountdownOption,
    JobArgument,
    JsonOption,
    ParamOption,
    ParamsJsonOption,
    PriorityOption,
    QueueOption,
)
from marketq.cli.output import console, emit, err_console
from marketq.cli.params import api_params
from marketq.cli.render import render_jobs, styled_state


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
    render_jobs(response.json())


def follow_run(
    client: ApiClient, accepted: dict[str, Any], timeout: float, *, as_json: bool
) -> int:
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
            f"follow it with `marketq status --wait {run_id[:8]}`)",
            highlight=False,
        )
        return EXIT_TIMEOUT
    assert last is not None
    body = last.json()
    if as_json:
        emit(last.text)
    else:
        console.print(
            f"{styled_state(state)} {escape(run_id)} attempts={body.get('attempts')} "
            f"worker={escape(str(body.get('worker')))}",
            highlight=False,
        )
        if state == "SUCCESS" and body.get("result") is not None:
            console.print_json(data=body["result"])
        if body.get("error"):
            console.print(f"[red]{escape(str(body['error']))}[/]", highlight=False)
    return EXIT_OK if state == "SUCCESS" else EXIT_RUN_FAILED


def run(
    job_name: JobArgument,
    param: ParamOption = None,
    params_json: ParamsJsonOption = None,
    countdown: CountdownOption = None,
    priority: PriorityOption = None,
    queue: QueueOption = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(help="Same key + same request: the same run, once (Idempotency-Key)."),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="Follow the run to its end, with a progress bar.", metavar=""),
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
        params = api_params(job_name, param or [], params_json)
    except (typer.BadParameter, json.JSONDecodeError) as exc:
        report(ApiCallError(EXIT_INVALID, f"invalid parameters: {exc}"), as_json=False)
        raise typer.Exit(EXIT_INVALID) from None
    body: dict[str, Any] = {"params": params}
    for key, value in (("countdown", countdown), ("priority", priority), ("queue", queue)):
        if value is not None:
            body[key] = value
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    with api_session(api_url, api_key, as_json=as_json) as client:
        try:
            response = client.call(
                "POST", f"/api/v1/jobs/{quote(job_name, safe='')}/runs", body=body, headers=headers
            )
        except ApiCallError as failure:
            raise with_hint(failure, "job", job_name, job_names(client)) from None
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
        code = follow_run(client, accepted, timeout, as_json=as_json)
    raise typer.Exit(code)
