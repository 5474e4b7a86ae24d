"""``marketq schedules`` and ``schedule``: next fires, edits, firing an entry now."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import httpx
import typer
from rich.markup import escape

from marketq.cli.client import DEFAULT_API_URL, ApiCallError, ApiClient, api_session, fetch
from marketq.cli.lookup import schedule_names, with_hint
from marketq.cli.options import ApiKeyOption, ApiUrlOption, AtOption, JsonOption
from marketq.cli.output import console, emit
from marketq.cli.params import api_params
from marketq.cli.render import render_schedules, render_view


def schedules(
    at: AtOption = None,
    count: Annotated[int, typer.Option(help="Next fires per job (1..20).")] = 3,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Scheduled jobs and their next fires in exchange time (GET /api/v1/schedules)."""
    body = fetch("/api/v1/schedules", api_url, api_key, as_json, at=at, count=count)
    if body is not None:
        render_view(body, "schedules", "schedules", render_schedules)


def schedule(
    name: Annotated[str, typer.Argument(metavar="ENTRY", help="Schedule entry name.")],
    enable: Annotated[
        bool | None,
        typer.Option("--enable/--disable", help="Turn the entry on or off.", metavar=""),
    ] = None,
    cron: Annotated[str | None, typer.Option(help="New cron, in exchange time.")] = None,
    every: Annotated[
        int | None, typer.Option(min=1, help="Fire every N seconds instead (N >= 1).")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="k=v params replacing the entry's (repeatable)."),
    ] = None,
    reset: Annotated[
        bool,
        typer.Option("--reset", metavar="", help="Drop the runtime edit (back to catalog + file)."),
    ] = False,
    fire: Annotated[
        bool,
        typer.Option(
            "--run", metavar="", help="Fire the entry now (with its chain); prints the run."
        ),
    ] = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show, edit (PATCH), reset or fire one schedule entry.

    Edits take effect within one beat loop and survive beat restarts; --reset drops them.
    """
    path = f"/api/v1/schedules/{quote(name, safe='')}"
    with api_session(api_url, api_key, as_json=as_json) as client:
        try:
            response = _apply(client, path, name, reset, fire, enable, cron, every, param)
        except ApiCallError as failure:
            raise with_hint(failure, "schedule entry", name, schedule_names(client)) from None
    if as_json:
        emit(response.text)
        return
    data = response.json()
    if fire:
        console.print(
            f"fired {escape(name)}: run {escape(str(data.get('run_id')))} "
            f"(`marketq status --wait {escape(str(data.get('run_id'))[:8])}`)",
            highlight=False,
        )
        return
    render_schedules({"schedules": [data]})


def _apply(
    client: ApiClient,
    path: str,
    name: str,
    reset: bool,
    fire: bool,
    enable: bool | None,
    cron: str | None,
    every: int | None,
    param: list[str] | None,
) -> httpx.Response:
    """The request ``schedule`` makes: reset, fire, edit, or show the entry."""
    if reset:
        return client.call("DELETE", f"{path}/override")
    if fire:
        return client.call("POST", f"{path}/run")
    if enable is None and not cron and every is None and not param:
        return client.get(path)
    body: dict[str, Any] = {}
    if enable is not None:
        body["enabled"] = enable
    if cron:
        body["cron"] = cron
    if every is not None:
        body["every_seconds"] = every
    if param:
        listed = client.get(path).json()
        body["params"] = api_params(str(listed.get("job", name)), param, None)
    return client.call("PATCH", path, body=body)
