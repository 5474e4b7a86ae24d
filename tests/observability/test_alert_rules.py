"""The alert rules load in promtool, and every alert is unit-tested both ways.

``rules_test.yaml`` holds the promtool cases; these tests run them and check that no
alert lacks a firing case or a case where it must stay silent.
"""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict

import pytest
import yaml

from tests.observability.promtool import (
    RULE_TESTS,
    RULES,
    RUNBOOK_BASE,
    RUNBOOKS,
    alert_rules,
    binary,
)

ALERTS = [rule["alert"] for rule in alert_rules()]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_check_rules_accepts_the_rules_file() -> None:
    result = _run("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = _run("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _cases() -> tuple[dict[str, int], dict[str, int]]:
    firing: dict[str, int] = defaultdict(int)
    silent: dict[str, int] = defaultdict(int)
    for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for case in test.get("alert_rule_test", []):
            bucket = firing if case.get("exp_alerts") else silent
            bucket[case["alertname"]] += 1
    return firing, silent


def alerts_with_firing_tests() -> set[str]:
    """Alerts whose firing case promtool checks (the real-Prometheus test relies on it)."""
    return set(_cases()[0])


@pytest.mark.parametrize("alert", ALERTS)
def test_every_alert_has_a_firing_and_a_silent_case(alert: str) -> None:
    firing, silent = _cases()
    assert firing[alert] >= 1, f"{alert}: no promtool case where it fires"
    assert silent[alert] >= 1, f"{alert}: no promtool case where it must stay silent"


def test_rules_tests_name_only_existing_alerts() -> None:
    firing, silent = _cases()
    assert set(firing) | set(silent) <= set(ALERTS)


@pytest.mark.parametrize("rule", alert_rules(), ids=ALERTS)
def test_every_alert_is_actionable(rule: dict[str, object]) -> None:
    labels = rule.get("labels")
    annotations = rule.get("annotations")
    assert isinstance(labels, dict)
    assert isinstance(annotations, dict)
    assert labels.get("severity") in {"critical", "warning"}
    assert {"summary", "description", "runbook_url"} <= set(annotations)
    if not str(rule["expr"]).startswith("absent("):  # absent() has no labels to name
        assert "{{" in annotations["summary"], "a summary says which queue/job/target or value"
    # Pages wait long enough to skip blips; nothing fires on a single evaluation.
    assert re.fullmatch(r"\d+m", str(rule.get("for"))), "every alert needs a `for` in minutes"


@pytest.mark.parametrize("rule", alert_rules(), ids=ALERTS)
def test_runbook_url_points_at_a_section_of_docs_runbooks(rule: dict[str, object]) -> None:
    annotations = rule["annotations"]
    assert isinstance(annotations, dict)
    url = annotations["runbook_url"]
    alert = str(rule["alert"])
    assert url == f"{RUNBOOK_BASE}#{alert.lower()}"
    headings = re.findall(r"^## (\S+)", RUNBOOKS.read_text(), flags=re.MULTILINE)
    assert alert in headings, f"docs/runbooks.md has no '## {alert}' section"
