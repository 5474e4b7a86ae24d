"""Each image's build stages, replayed without Docker: its install steps really work.

There is no container engine here, so the build stage's own instructions are executed on
the host in a scratch directory: its ENV, WORKDIR and COPY lines, then its RUN lines
(the `uv sync --frozen --no-dev --package ...` steps, BuildKit cache mounts dropped),
with /opt/marketq and /src moved under the scratch directory. The environment they build
is then checked the way the runtime stage uses it: the image's entrypoint starts, the
migration command migrates a database from the installed (non-editable) wheel, and the
packages another service needs are absent.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unit.test_images import ENTRYPOINTS, ROOT, SERVICES, build_stage, uv

# Importable names that must NOT be in an image (module -> why).
ABSENT = {
    # The API has marketq.providers for its admin provider check, without the Yahoo client.
    "api": ["marketq.worker", "marketq.beat", "yfinance", "marketq.cli", "redbeat"],
    "worker": ["fastapi", "uvicorn", "starlette", "marketq.api", "marketq.cli", "redbeat"],
    "beat": ["fastapi", "uvicorn", "marketq.api", "marketq.worker", "marketq.providers"],
}


def replay(service: str, scratch: Path) -> Path:
    """Run the build stage's instructions under ``scratch``; the environment it built."""
    moved = {"/opt/marketq": str(scratch / "opt" / "marketq"), "/src": str(scratch / "src")}

    def here(text: str) -> str:
        for container_path, host_path in moved.items():
            text = re.sub(rf"(?<![\w/]){re.escape(container_path)}(?=/|\s|$)", host_path, text)
        return text

    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{Path(uv()).parent}:{env['PATH']}"
    workdir = scratch
    for item in build_stage(service):
        keyword, value = item.keyword, item.value
        if keyword == "ENV":
            for pair in shlex.split(value):
                key, _, val = pair.partition("=")
                env[key] = here(val)
        elif keyword == "WORKDIR":
            workdir = Path(here(value))
            workdir.mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":
            if value.startswith("--from"):
                continue  # the uv binary itself: the host's uv stands in
            *sources, dest = value.split()
            target = Path(dest) if dest.startswith("/") else workdir / dest
            for source in sources:
                origin = ROOT / source
                if origin.is_dir():
                    shutil.copytree(
                        origin,
                        target,
                        dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"),
                    )
                else:
                    destination = target / origin.name if dest.endswith("/") else target
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, destination)
        elif keyword == "RUN":
            command = re.sub(r"--mount=\S+\s*", "", value)
            result = subprocess.run(
                ["bash", "-ec", here(command)],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert result.returncode == 0, f"RUN {command}\n{result.stdout}\n{result.stderr}"
    return Path(moved["/opt/marketq"])


@pytest.mark.parametrize("service", SERVICES)
def test_build_stage_installs_a_working_service(service: str, tmp_path: Path) -> None:
    venv = replay(service, tmp_path)
    python = venv / "bin" / "python"
    entry = venv / "bin" / ENTRYPOINTS[service]
    assert entry.is_file(), sorted(p.name for p in (venv / "bin").iterdir())
    # Installed as wheels, not editable links back into /src (absent at runtime).
    for pth in venv.glob("lib/python*/site-packages/*.pth"):
        assert str(tmp_path / "src") not in pth.read_text(), pth
    help_text = subprocess.run(
        [str(entry), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert help_text.returncode == 0, help_text.stderr
    database = tmp_path / "migrated.db"
    migrated = subprocess.run(
        [str(venv / "bin" / "marketq-migrate")],
        env={**os.environ, "MARKETQ_DATABASE_URL": f"sqlite:///{database}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    probe = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    present = subprocess.run(
        [str(python), "-c", probe, *ABSENT[service]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert present == "[]", f"the {service} image would contain {present}"
