"""``marketq market``: is the market open."""

from __future__ import annotations

from marketq.cli.client import DEFAULT_API_URL, fetch
from marketq.cli.options import ApiKeyOption, ApiUrlOption, AtOption, JsonOption
from marketq.cli.render import render_market, render_view


def market(
    at: AtOption = None,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Is the market open: session, next open and close (GET /api/v1/market/status)."""
    body = fetch("/api/v1/market/status", api_url, api_key, as_json, at=at)
    if body is not None:
        render_view(body, "is_open", "market", render_market)
