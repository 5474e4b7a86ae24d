"""values.yaml is the chart's contract: every value documented, the schema strict and
generated from it, the README table in sync, the chart's copies of code facts true."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import yaml

from marketq.common.catalog import CATALOG
from scripts.chart_values_docs import parse_comments
from tests.chart.helm import CHART, REPO, helm

VALUES_TEXT = (CHART / "values.yaml").read_text(encoding="utf-8")
SCHEMA = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
# Objects whose keys are Kubernetes' or the user's, not the chart's.
FREE_FORM = {"affinity", "file", "items"}


def test_schema_and_readme_are_generated_from_values() -> None:
    out = subprocess.run(
        [sys.executable, "scripts/chart_values_docs.py", "--check"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr


def test_every_value_is_documented() -> None:
    entries = parse_comments(VALUES_TEXT)
    values = yaml.safe_load(VALUES_TEXT)
    undocumented = []
    for path, entry in entries.items():
        value: Any = values
        for key in path:
            value = value[key]
        # Leaves and empty maps need a description, their own or an enclosing value's
        # (a queue's overrides, a resources block); a mapping with children is a section.
        is_section = isinstance(value, dict) and value and not entry.leaf_line
        described = any(
            entries[path[:n]].description for n in range(1, len(path) + 1) if path[:n] in entries
        )
        if not is_section and not described:
            undocumented.append(".".join(path))
    assert not undocumented, f"values without a `# --` description: {undocumented}"


def _objects(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            found.append((path, node))
        for key, child in node.items():
            if key in ("properties", "$defs"):
                for name, sub in child.items():
                    found += _objects(sub, f"{path}.{name}")
            elif isinstance(child, dict):
                found += _objects(child, f"{path}.{key}")
    return found


def test_the_schema_is_strict_everywhere() -> None:
    loose = [
        path for path, node in _objects(SCHEMA)
        if node.get("additionalProperties", True) is True
        and path.rsplit(".", 1)[-1] not in FREE_FORM
    ]  # fmt: skip
    assert not loose, f"objects accepting any key: {loose}"


def test_the_readme_documents_install_keda_and_monitoring() -> None:
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    for text in (
        "helm install marketq charts/marketq",
        "keda",
        "serviceMonitor",
        "dashboards",
        "redis.existingSecret",
        "database.existingSecret",
        "api.auth.existingSecret",
    ):
        assert text in readme, text  # fmt: skip
    for path in parse_comments(VALUES_TEXT):
        entry = parse_comments(VALUES_TEXT)[path]
        if entry.description:
            assert f"| `{'.'.join(path)}` |" in readme


def test_the_chart_copy_of_the_catalog_time_limits_is_true() -> None:
    tpl = (CHART / "templates" / "_helpers.tpl").read_text(encoding="utf-8")
    block = tpl.split('define "marketq.catalogTimeLimits" -}}', 1)[1].split("{{- end }}", 1)[0]
    copied = json.loads(block)
    longest: dict[str, int] = {}
    for job in CATALOG.values():
        longest[job.queue.value] = max(longest.get(job.queue.value, 0), job.time_limit)
    assert copied == longest


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    assert chart["apiVersion"] == "v2"
    out = helm("show", "chart", str(CHART))
    assert yaml.safe_load(out.stdout)["name"] == "marketq"


def test_helm_is_version_4() -> None:
    assert helm("version", "--short").stdout.startswith("v4.")
