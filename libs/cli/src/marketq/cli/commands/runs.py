"""``marketq status``, ``cancel`` and ``runs``: one run, and the run history."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
import typer
from rich.markup import escape

from marketq.cli.client import (
    DEFAULT_API_URL,
    EXIT_OK,
    EXIT_RUN_FAILED,
    FINISHED,
    api_session,
)
from marketq.cli.commands.jobs import follow_run
from marketq.cli.lookup import require_job, resolve_run_id, run_path
from marketq.cli.options import ApiKeyOption, ApiUrlOption, JsonOption, RunIdArgument
from marketq.cli.output import console, emit, err_console
from marketq.cli.render import print_status, runs_table, styled_state


def status(
    run_id: RunIdArgument,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            "--follow",
            "-w",
            help="Follow the run to its end with a progress bar; exit as `run --wait` does.",
            metavar="",
        ),
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits.")] = 300.0,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """One run's state, progress, result or error (GET /api/v1/runs/ID); --wait follows it.

    ID may be the first characters of the id (as the progress bar prints it) when they
    match one run among the newest.
    """
    with api_session(api_url, api_key, as_json=as_json) as client:
        full_id = resolve_run_id(client, run_id)
        response = client.get(run_path(full_id))
        if wait and response.json().get("state") not in FINISHED:
            code = follow_run(client, response.json(), timeout, as_json=as_json)
            raise typer.Exit(code)
    if as_json:
        emit(response.text)
    else:
        print_status(response.json())
    if wait:
        raise typer.Exit(EXIT_OK if response.json().get("state") == "SUCCESS" else EXIT_RUN_FAILED)


def cancel(
    run_id: RunIdArgument,
    terminate: Annotated[
        bool, typer.Option("--terminate", help="Also stop it if it is already running.", metavar="")
    ] = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel a run (POST /api/v1/runs/ID/cancel). A finished run is an error (exit 2)."""
    with api_session(api_url, api_key, as_json=as_json) as client:
        run_id = resolve_run_id(client, run_id)
        response = client.call(
            "POST",
            f"{run_path(run_id)}/cancel",
            params={"terminate": "true" if terminate else None},
        )
    if as_json:
        emit(response.text)
        return
    body = response.json()
    state = str(body.get("state"))
    if state == "REVOKED":
        console.print(f"{styled_state(state)} {escape(run_id)}", highlight=False)
    else:
        console.print(
            f"cancel requested: {escape(run_id)} is {styled_state(state)}; "
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
            "--all",
            metavar="",
            help="Follow next_cursor to the end (--json: one page-shaped object).",
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
        if job is not None:
            require_job(client, job)  # an unknown job is an error, not "no runs"
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
