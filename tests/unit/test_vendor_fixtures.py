"""The recorded vendor answers say where their shape comes from and replay as recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.vendor_replay import FIXTURES, all_fixtures

VENDORS = {"alphavantage", "fred", "finnhub", "edgar", "yahoo"}


def test_every_vendor_has_fixtures() -> None:
    assert {path.parent.name for path in all_fixtures()} == VENDORS


@pytest.mark.parametrize("path", all_fixtures(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_fixture_cites_its_source_and_is_a_complete_exchange(path: Path) -> None:
    recorded = json.loads(path.read_text())
    assert set(recorded) == {"source", "request", "response"}
    # A documentation page or the client code that reads the shape.
    assert "https://" in recorded["source"] or "yfinance/" in recorded["source"]
    request, response = recorded["request"], recorded["response"]
    assert request["method"] in ("GET", "POST") and request["url"].startswith("https://")
    assert 200 <= response["status"] < 600
    assert ("json" in response) != ("text" in response)
    assert path.is_relative_to(FIXTURES)
