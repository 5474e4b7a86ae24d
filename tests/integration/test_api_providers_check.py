"""``POST /api/v1/providers/check`` on a real API process (no vendor is reachable here:
the checks below need no network, and the replayed vendor answers are covered by
tests/unit/test_providers_check.py through the same check code)."""

from __future__ import annotations

import pytest

from tests.fixtures.api import start_api
from tests.fixtures.workers import Stack

pytestmark = pytest.mark.integration


def test_admin_checks_the_configured_providers(stack: Stack) -> None:
    api = start_api(
        stack,
        {"MARKETQ_PROVIDERS__NEWS": "alphavantage", "MARKETQ_PROVIDERS__ECONOMIC_SERIES": "fred"},
    )
    try:
        with api.client("admin") as client:
            answer = client.post("/api/v1/providers/check")
            only = client.post("/api/v1/providers/check", params={"provider": "synthetic"})
            unknown = client.post("/api/v1/providers/check", params={"provider": "bloomberg"})
        with api.client("trigger") as client:
            forbidden = client.post("/api/v1/providers/check")
    finally:
        api.stop()
    assert answer.status_code == 200, answer.text
    report = answer.json()
    by_name = {p["provider"]: p for p in report["providers"]}
    assert list(by_name) == ["synthetic", "alphavantage", "fred"]
    assert report["ok"] is False
    assert by_name["synthetic"]["ok"] is True
    # No keys configured: refused before any call, with the reason.
    for vendor in ("alphavantage", "fred"):
        assert by_name[vendor]["ok"] is False and by_name[vendor]["key_valid"] is False
        assert "needs an API key" in by_name[vendor]["detail"]
    assert only.status_code == 200 and only.json()["ok"] is True
    assert unknown.status_code == 422 and "provider" in unknown.text
    assert forbidden.status_code == 403
