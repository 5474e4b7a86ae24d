"""Paths and the promtool/prometheus binaries the observability tests use."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "charts" / "marketq" / "rules" / "marketq-alerts.yaml"
RULE_TESTS = Path(__file__).with_name("rules_test.yaml")
DASHBOARDS = ROOT / "charts" / "marketq" / "dashboards"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
RUNBOOK_BASE = "https://github.com/marketq/marketq/blob/main/docs/runbooks.md"


def binary(name: str) -> str:
    """promtool or prometheus from Debian's `prometheus` package (scripts/bootstrap.sh test)."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} is not installed: `apt-get install prometheus` "
            "(make test installs it via scripts/bootstrap.sh test when run as root)"
        )
    return found


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]
