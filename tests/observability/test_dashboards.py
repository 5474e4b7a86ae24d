"""The Grafana dashboards are current, well formed, and bound to the datasource variable."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.observability.promtool import DASHBOARDS, ROOT

EXPECTED_UIDS = {
    "marketq-overview",
    "marketq-queues",
    "marketq-tasks",
    "marketq-workers",
    "marketq-schedule",
    "marketq-api",
}
DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dashboards", ROOT / "scripts" / "dashboards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def dashboards() -> dict[Path, dict[str, Any]]:
    return {path: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def test_committed_dashboards_are_what_the_generator_writes() -> None:
    files = generator().rendered_files()
    committed = {path.name: path.read_text() for path in DASHBOARDS.glob("*.json")}
    assert committed == files, "charts/marketq/dashboards is stale: run scripts/dashboards.py"


def test_one_dashboard_per_file_with_fixed_unique_uids() -> None:
    found = {path.name: board["uid"] for path, board in dashboards().items()}
    assert set(found.values()) == EXPECTED_UIDS
    assert len(set(found.values())) == len(found)
    for name, uid in found.items():
        assert name == f"{uid}.json"
        assert len(uid) <= 40  # Grafana's limit


@pytest.mark.parametrize("path", sorted(DASHBOARDS.glob("*.json")), ids=lambda p: p.stem)
def test_every_panel_and_query_uses_the_datasource_variable(path: Path) -> None:
    board = json.loads(path.read_text())
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE_REF
    assert board["panels"], "a dashboard without panels"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["datasource"] == DATASOURCE_REF, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE_REF, panel["title"]
            assert target["expr"].strip(), panel["title"]
            # every $variable a query uses is defined (or a Grafana built-in)
            used = set(re.findall(r"\$(\w+)", target["expr"]))
            assert used <= set(variables) | {"__rate_interval", "__interval", "__range"}, used
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]


@pytest.mark.parametrize("path", sorted(DASHBOARDS.glob("*.json")), ids=lambda p: p.stem)
def test_panels_do_not_overlap(path: Path) -> None:
    cells: set[tuple[int, int]] = set()
    for panel in json.loads(path.read_text())["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
