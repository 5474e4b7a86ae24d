"""Render charts/marketq with a real helm (v4) binary."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helm import helm_binary as chart_helm_binary

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "marketq"

Manifest = dict[str, Any]


def helm_binary() -> str:
    """The project's helm v4: on PATH, or fetched by scripts/fetch-helm.sh into .tools/helm."""
    return chart_helm_binary()


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
