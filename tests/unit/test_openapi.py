"""The API's OpenAPI document: committed in docs/openapi.json, and complete enough to use.

The committed file must equal what ``create_app().openapi()`` generates (regenerate it with
``make openapi``, which runs this module). Every operation has a summary, every 4xx/5xx
response documents the one error model, and every model request body has an example.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from marketq.api.app import create_app

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "openapi.json"
ERROR_MODEL = "#/components/schemas/ErrorResponse"
# Probes answer for kubelet, not for services: /readyz's 503 carries the readiness checks.
NOT_ERROR_MODEL = {("GET", "/readyz", "503"): "#/components/schemas/Readiness"}


def generate() -> dict[str, Any]:
    document: dict[str, Any] = create_app().openapi()
    return document


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write() -> None:
    """``make openapi``: write the generated document to docs/openapi.json."""
    COMMITTED.write_text(render(generate()), encoding="utf-8")


DOCUMENT = generate()
OPERATIONS = [
    (method.upper(), path, operation)
    for path, methods in DOCUMENT["paths"].items()
    for method, operation in methods.items()
]


def _ids(operations: list[tuple[str, str, Any]]) -> list[str]:
    return [f"{method} {path}" for method, path, _ in operations]


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        resolved: dict[str, Any] = DOCUMENT["components"]["schemas"][schema["$ref"].split("/")[-1]]
        return resolved
    return schema


def test_the_committed_document_is_the_generated_one() -> None:
    assert COMMITTED.exists(), "docs/openapi.json is missing: run `make openapi`"
    committed = COMMITTED.read_text(encoding="utf-8")
    assert committed == render(DOCUMENT), "docs/openapi.json is out of date: run `make openapi`"


def test_the_document_covers_the_api() -> None:
    assert DOCUMENT["openapi"].startswith("3.")
    assert DOCUMENT["info"]["title"] and DOCUMENT["info"]["version"]
    labels = set(_ids(OPERATIONS))
    assert {"POST /api/v1/jobs/{name}/runs", "GET /api/v1/runs/{run_id}", "GET /livez"} <= labels


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS, ids=_ids(OPERATIONS))
def test_every_operation_has_a_summary(method: str, path: str, operation: dict[str, Any]) -> None:
    assert operation.get("summary", "").strip(), f"{method} {path} has no summary"


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS, ids=_ids(OPERATIONS))
def test_every_error_response_documents_the_error_model(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    errors = {s: r for s, r in operation["responses"].items() if s[0] in "45"}
    assert "500" in errors, f"{method} {path} does not document 500"
    for status, response in errors.items():
        assert response.get("description", "").strip(), f"{method} {path} {status}: no description"
        content = response.get("content", {})
        assert list(content) == ["application/json"], f"{method} {path} {status}: {content}"
        expected = NOT_ERROR_MODEL.get((method, path, status), ERROR_MODEL)
        assert content["application/json"]["schema"] == {"$ref": expected}, (
            f"{method} {path} {status} documents {content['application/json']['schema']}, "
            f"not {expected}"
        )


def test_the_error_model_is_the_one_shape() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    assert schemas["ErrorResponse"]["required"] == ["error"]
    assert set(schemas["ErrorBody"]["properties"]) == {"code", "message", "details"}
    assert set(schemas["ErrorDetail"]["properties"]) == {"field", "message", "type"}
    # FastAPI's own 422 model is not what the API sends; it must not be documented.
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas


WITH_BODY = [(m, p, op) for m, p, op in OPERATIONS if "requestBody" in op]


def test_there_are_request_bodies_to_check() -> None:
    assert len(WITH_BODY) >= 2


@pytest.mark.parametrize(("method", "path", "operation"), WITH_BODY, ids=_ids(WITH_BODY))
def test_model_request_bodies_have_examples(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    for media_type, content in operation["requestBody"]["content"].items():
        schema = content.get("schema", {})
        model = _resolve(schema)
        if model.get("type") != "object" and "properties" not in model:
            continue  # not a model
        examples = content.get("examples") or content.get("example") or model.get("examples")
        assert examples, f"{method} {path} ({media_type}): the request model has no example"


if __name__ == "__main__":
    write()
