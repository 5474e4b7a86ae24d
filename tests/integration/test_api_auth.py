"""Who may call what: the auth matrix over every route in the OpenAPI document.

The routes are read from ``create_app().openapi()``, so a route added later is covered
without touching this file: it must demand a key (unless it is a probe or /metrics), answer
401 with ``WWW-Authenticate: Bearer`` to no, malformed or unknown keys, 403 to a key that
lacks the scope, and let the right scope through. Every refusal has the one error shape.
Runs against a real uvicorn process, Redis and a migrated database.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from marketq.api.app import create_app
from marketq.api.auth import hash_key
from marketq.common.settings import Settings
from tests.fixtures.api import KEYS, ApiProcess, start_api
from tests.fixtures.ports import free_port
from tests.fixtures.workers import ROOT, Stack

pytestmark = pytest.mark.integration

OPEN_PATHS = frozenset({"/livez", "/readyz", "/metrics"})
SCOPES = ("read", "trigger", "admin")  # each implies the ones before it
# The scope a route needs: GET reads, anything else triggers. A route that needs more
# is listed here (and then the trigger key must get 403 on it).
ADMIN_ONLY: frozenset[tuple[str, str]] = frozenset(
    {
        ("PATCH", "/api/v1/schedules/{name}"),  # changes what beat fires for everyone
        ("DELETE", "/api/v1/schedules/{name}/override"),
        ("POST", "/api/v1/providers/check"),  # spends a call of every vendor's quota
    }
)
PATH_SAMPLES = {"name": "stock_quotes", "run_id": "0b7e1a52-0000-4000-8000-000000000000"}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # the template, e.g. /api/v1/runs/{run_id}
    url: str  # with path parameters filled in
    body: Any

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def scope(self) -> str:
        if (self.method, self.path) in ADMIN_ONLY:
            return "admin"
        return "read" if self.method == "GET" else "trigger"

    def send(self, client: httpx.Client, headers: dict[str, str] | None = None) -> httpx.Response:
        return client.request(
            self.method,
            self.url,
            headers=headers,
            json=self.body if self.body is not None else None,
        )

    def send_raw(self, base_url: str, authorization: str) -> httpx.Response:
        """With an Authorization value httpx refuses to send (e.g. trailing space)."""
        url = httpx.URL(base_url)
        connection = http.client.HTTPConnection(url.host, url.port, timeout=10)
        try:
            body = None if self.body is None else json.dumps(self.body).encode()
            headers = {"Authorization": authorization}
            if body is not None:
                headers["Content-Type"] = "application/json"
            connection.request(self.method, self.url, body=body, headers=headers)
            raw = connection.getresponse()
            return httpx.Response(raw.status, headers=raw.getheaders(), content=raw.read())
        finally:
            connection.close()


def _sample(parameter: dict[str, Any]) -> str:
    if parameter["name"] in PATH_SAMPLES:
        return PATH_SAMPLES[parameter["name"]]
    examples = parameter.get("examples") or parameter.get("schema", {}).get("examples")
    if isinstance(examples, dict):  # OpenAPI-style {"name": {"value": ...}}
        return str(next(iter(examples.values()))["value"])
    if examples:
        return str(examples[0])
    return "x"


def _body(document: dict[str, Any], operation: dict[str, Any]) -> Any:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return None
    schema = content.get("schema", {})
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    examples = schema.get("examples") or [{}]
    return examples[0]


def operations() -> list[Operation]:
    document = create_app(Settings()).openapi()
    found = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            url = path
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    url = url.replace("{" + parameter["name"] + "}", _sample(parameter))
            found.append(Operation(method.upper(), path, url, _body(document, operation)))
    return found


OPERATIONS = operations()
PROTECTED = [op for op in OPERATIONS if op.path not in OPEN_PATHS]


def assert_error_shape(response: httpx.Response, status: int, code: str | None = None) -> None:
    """The one error shape, nothing else in it, and no traceback anywhere."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "Traceback" not in response.text and 'File "' not in response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    for detail in body["error"]["details"]:
        assert set(detail) == {"field", "message", "type"}, detail
    if code is not None:
        assert body["error"]["code"] == code, body


def check_all(operations: list[Operation], check: Any) -> None:
    """Run ``check`` on every operation; report every one that fails, not just the first."""
    failures = []
    for op in operations:
        try:
            check(op)
        except AssertionError as exc:
            failures.append(f"{op.label}: {exc}")
    assert not failures, "\n".join(failures)


def test_the_matrix_covers_the_routes_that_exist() -> None:
    labels = {op.label for op in OPERATIONS}
    assert {"GET /livez", "GET /api/v1/jobs", "POST /api/v1/jobs/{name}/runs"} <= labels
    assert len(PROTECTED) >= 7


def test_open_routes_need_no_key(stack: Stack, api: ApiProcess) -> None:
    open_ops = [op for op in OPERATIONS if op.path in OPEN_PATHS]
    with api.client(None) as client:

        def check(op: Operation) -> None:
            response = op.send(client)
            assert response.status_code not in (401, 403), response.text

        check_all(open_ops, check)


def test_no_key_is_401_with_a_bearer_challenge_on_every_protected_route(
    stack: Stack, api: ApiProcess
) -> None:
    with api.client(None) as client:

        def check(op: Operation) -> None:
            response = op.send(client)
            assert_error_shape(response, 401, "unauthorized")
            assert response.headers.get("www-authenticate") == "Bearer"

        check_all(PROTECTED, check)


MALFORMED = (
    "Token " + KEYS["admin"],  # another scheme, even with a valid key
    "Bearer ",  # the scheme without a key
    "Bearer",
    "Basic YWRtaW46YWRtaW4=",
    KEYS["admin"],  # the key without a scheme
)


def test_a_malformed_authorization_header_is_401(stack: Stack, api: ApiProcess) -> None:
    def check(op: Operation) -> None:
        for authorization in MALFORMED:
            response = op.send_raw(api.url, authorization)
            assert_error_shape(response, 401, "unauthorized")
            assert response.headers.get("www-authenticate") == "Bearer", authorization

    check_all(PROTECTED, check)


def test_an_unknown_key_is_401(stack: Stack, api: ApiProcess) -> None:
    with api.client(None) as client:

        def check(op: Operation) -> None:
            for key in ("mq_not_a_key", KEYS["admin"] + "x", KEYS["admin"].upper()):
                response = op.send(client, {"Authorization": f"Bearer {key}"})
                assert_error_shape(response, 401, "unauthorized")
                assert response.headers.get("www-authenticate") == "Bearer"
                assert key not in response.text  # the presented key is never echoed

        check_all(PROTECTED, check)


def test_a_key_without_the_scope_is_403_and_the_right_scope_gets_through(
    stack: Stack, api: ApiProcess
) -> None:
    clients = {scope: api.client(scope) for scope in SCOPES}
    try:

        def check(op: Operation) -> None:
            needed = SCOPES.index(op.scope)
            for rank, scope in enumerate(SCOPES):
                response = op.send(clients[scope])
                if rank < needed:
                    assert_error_shape(response, 403, "forbidden")
                    assert op.scope in response.json()["error"]["message"]
                else:
                    assert response.status_code not in (401, 403), f"{scope} key: {response.text}"
                    assert response.status_code < 500, f"{scope} key: {response.text}"

        check_all(PROTECTED, check)
    finally:
        for client in clients.values():
            client.close()
    # The read key met every POST/DELETE route and was refused before anything happened.
    assert any(op.scope != "read" for op in PROTECTED)


def _wait_for_a_fresh_window(seconds_needed: float = 10) -> None:
    """The limit is a fixed one-minute window: do not start a burst just before it rolls."""
    left = 60 - time.time() % 60
    if left < seconds_needed:
        time.sleep(left + 0.05)


def test_the_rate_limit_answers_429_with_retry_after_per_key(stack: Stack) -> None:
    limited = start_api(stack, {"MARKETQ_API_RATE_LIMIT_PER_MINUTE": "5"})
    try:
        _wait_for_a_fresh_window()
        with limited.client("read") as read, limited.client("trigger") as trigger:
            answers = [read.get("/api/v1/jobs").status_code for _ in range(5)]
            assert answers == [200] * 5
            refused = read.get("/api/v1/jobs")
            assert_error_shape(refused, 429, "rate_limited")
            retry_after = refused.headers["retry-after"]
            assert retry_after.isdigit() and 1 <= int(retry_after) <= 60, retry_after
            # Still refused on another route: the limit is per key, not per route.
            assert read.get("/api/v1/runs").status_code == 429
            # Other keys have their own budget.
            assert trigger.get("/api/v1/jobs").status_code == 200
            # Probes are never rate limited (kubelet would restart a busy pod).
            with limited.client(None) as anonymous:
                assert all(anonymous.get("/livez").status_code == 200 for _ in range(10))
    finally:
        limited.stop()


def _start_api_with_env(stack: Stack, env: dict[str, str]) -> ApiProcess:
    """Like ``start_api`` but with exactly ``env``: start_api always sets MARKETQ_API_KEYS,
    which (by design) takes precedence over MARKETQ_API_KEYS_FILE."""
    port = free_port()
    log_path = stack.logdir / f"api-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "marketq.api.entrypoint", "--host", "127.0.0.1"]
    process = subprocess.Popen(
        [*argv, "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
    )
    api = ApiProcess(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"marketq-api exited:\n{api.log_text()[-4000:]}")
        try:
            if httpx.get(f"{api.url}/livez", timeout=1).status_code == 200:
                return api
        except httpx.TransportError:
            time.sleep(0.1)
    api.stop()
    pytest.fail(f"marketq-api did not answer /livez in 60 s:\n{api.log_text()[-4000:]}")


def test_keys_from_a_mounted_file(stack: Stack, tmp_path: Path) -> None:
    # A Kubernetes Secret mounted as a file: hashes only, with a trailing newline.
    keys_file = tmp_path / "secrets" / "api-keys.json"
    keys_file.parent.mkdir()
    mounted = {"reader": "mq_from_file_read", "operator": "mq_from_file_admin"}
    keys_file.write_text(
        json.dumps(
            [
                {"name": "reader", "sha256": hash_key(mounted["reader"]), "scopes": ["read"]},
                {"name": "operator", "sha256": hash_key(mounted["operator"]), "scopes": ["admin"]},
            ]
        )
        + "\n"
    )
    stack.monkeypatch.delenv("MARKETQ_API_KEYS", raising=False)
    stack.monkeypatch.setenv("MARKETQ_API_KEYS_FILE", str(keys_file))
    assert [k.name for k in Settings().api_keys] == ["reader", "operator"]
    env = {k: v for k, v in stack.env.items() if k != "MARKETQ_API_KEYS"}
    env["MARKETQ_API_KEYS_FILE"] = str(keys_file)
    api = _start_api_with_env(stack, env)
    try:
        with httpx.Client(base_url=api.url, timeout=10) as client:

            def get(key: str) -> httpx.Response:
                return client.get("/api/v1/jobs", headers={"Authorization": f"Bearer {key}"})

            assert get(mounted["reader"]).status_code == 200
            assert get(mounted["operator"]).status_code == 200
            # The keys of the environment variable are not configured in this process.
            assert_error_shape(get(KEYS["admin"]), 401, "unauthorized")
            refused = client.post(
                "/api/v1/jobs/health_check/runs",
                json={},
                headers={"Authorization": f"Bearer {mounted['reader']}"},
            )
            assert_error_shape(refused, 403, "forbidden")
            accepted = client.post(
                "/api/v1/jobs/health_check/runs",
                json={},
                headers={"Authorization": f"Bearer {mounted['operator']}"},
            )
            assert accepted.status_code == 202, accepted.text
    finally:
        api.stop()
