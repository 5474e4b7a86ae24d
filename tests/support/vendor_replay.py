"""Replaying the recorded vendor responses in tests/fixtures/vendors/.

Each fixture is one recorded exchange: ``source`` (the documentation or client code
whose shape it follows), ``request`` (method, URL, the query parameters that identify
it) and ``response`` (status, headers, and ``json`` or ``text``). The httpx adapters are
replayed with respx; yfinance is replayed with ``responses`` on a requests Session,
because its default transport (curl_cffi) runs in libcurl where no Python-level mock
can reach (docs/design.md#vendor-replay).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import responses
import respx
from responses import matchers

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vendors"


def fixture(vendor: str, name: str) -> dict[str, Any]:
    recorded: dict[str, Any] = json.loads((FIXTURES / vendor / f"{name}.json").read_text())
    return recorded


def all_fixtures() -> list[Path]:
    return sorted(FIXTURES.glob("*/*.json"))


def httpx_response(recorded: dict[str, Any]) -> httpx.Response:
    answer = recorded["response"]
    headers = dict(answer.get("headers", {}))
    if "json" in answer:
        return httpx.Response(answer["status"], headers=headers, json=answer["json"])
    return httpx.Response(answer["status"], headers=headers, text=answer["text"])


def respx_route(router: respx.MockRouter, vendor: str, name: str) -> respx.Route:
    """Route the fixture's request (method, URL, its identifying parameters) to its answer."""
    recorded = fixture(vendor, name)
    request = recorded["request"]
    route = router.route(
        method=request["method"], url=request["url"], params__contains=request.get("params", {})
    )
    route.mock(return_value=httpx_response(recorded))
    return route


def responses_add(mock: responses.RequestsMock, vendor: str, name: str) -> None:
    recorded = fixture(vendor, name)
    request, answer = recorded["request"], recorded["response"]
    headers = {k: v for k, v in answer.get("headers", {}).items() if k != "Content-Type"}
    body: dict[str, Any] = (
        {"json": answer["json"]} if "json" in answer else {"body": answer["text"]}
    )
    match = (
        [matchers.query_param_matcher(request["params"], strict_match=False)]
        if request.get("params")
        else []
    )
    mock.add(
        request["method"],
        request["url"],
        status=answer["status"],
        headers=headers,
        content_type=answer.get("headers", {}).get("Content-Type", "application/json"),
        match=match,
        **body,
    )
