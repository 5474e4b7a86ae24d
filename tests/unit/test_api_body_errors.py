"""The API's answers to the two commonest body mistakes, in-process (no Redis is reached:
both are refused before anything is published)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from marketq.api.app import create_app
from marketq.api.auth import hash_key
from marketq.common.settings import ApiKey, Settings

KEY = "mq_body_errors_test_key"
RUNS = "/api/v1/jobs/health_check/runs"


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    settings = Settings(
        redis_url="redis://127.0.0.1:1/0",
        database_url="sqlite://",
        api_keys=(ApiKey(name="test", sha256=hash_key(KEY), scopes=("admin",)),),
    )
    with TestClient(create_app(settings)) as test_client:
        test_client.headers["Authorization"] = f"Bearer {KEY}"
        yield test_client


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain"])
def test_a_body_that_is_not_declared_json_is_a_415(client: TestClient, content_type: str) -> None:
    answer = client.post(RUNS, content=b'{"params": {}}', headers={"Content-Type": content_type})
    assert answer.status_code == 415, answer.text
    error = answer.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert "Content-Type: application/json" in error["message"]
    assert content_type in error["message"]


def test_invalid_json_names_its_line_and_column(client: TestClient) -> None:
    body = b'{\n  "params": {"symbols": ["AAPL",]}\n}'
    answer = client.post(RUNS, content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 422, answer.text
    [detail] = answer.json()["error"]["details"]
    assert detail["type"] == "json_invalid"
    # The ']' after the trailing comma: line 2, column 33 (as an editor counts).
    assert detail["message"].startswith("invalid JSON at line 2, column 33:"), detail


def test_json_with_a_charset_is_json(client: TestClient) -> None:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    answer = client.post(RUNS, content=b"{", headers=headers)
    assert answer.status_code == 422  # read as JSON (and broken), not refused as a media type
    assert answer.json()["error"]["details"][0]["type"] == "json_invalid"
