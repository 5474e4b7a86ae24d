"""``marketq queues`` and ``workers``: backlog and consumers."""

from __future__ import annotations

from typing import Annotated

import typer

from marketq.cli.client import DEFAULT_API_URL, fetch
from marketq.cli.options import ApiKeyOption, ApiUrlOption, JsonOption
from marketq.cli.render import render_queues, render_view, render_workers


def queues(
    consumers: Annotated[
        bool,
        typer.Option(
            "--consumers",
            metavar="",
            help="Also count the workers consuming each queue (asks them).",
        ),
    ] = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Backlog per queue: waiting, by priority, oldest age, reserved (GET /api/v1/queues)."""
    query = {"consumers": "true" if consumers else None}
    body = fetch("/api/v1/queues", api_url, api_key, as_json, **query)
    if body is not None:
        render_view(body, "queues", "queues", render_queues)


def workers(
    api_url: ApiUrlOption = DEFAULT_API_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Workers online, their queues, pools and load (GET /api/v1/workers)."""
    body = fetch("/api/v1/workers", api_url, api_key, as_json)
    if body is not None:
        render_view(body, "workers", "workers", render_workers)
