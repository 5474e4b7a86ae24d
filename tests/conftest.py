"""Shared fixtures: real servers on free loopback ports, stopped by PID.

Tiers. A test is *fast* unless it carries one of the markers ``integration`` (it starts a
process: a server, a worker, a tool such as helm, hadolint or a second Python),
``postgres`` or ``slow``. ``make test-fast`` runs only fast tests, so a fast test must
stay in this process: using a server fixture marks it ``integration`` here, and starting
a process from an unmarked test fails with a message saying to mark it.
"""

from __future__ import annotations

import multiprocessing.process
import subprocess
from typing import Any

import pytest

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.redis",
    "tests.fixtures.sentinel",
    "tests.fixtures.workers",
    "tests.fixtures.api",
    "tests.fixtures.beat",
    "tests.fixtures.otlp",
]

TIER_MARKERS = ("integration", "postgres", "slow")

# Suites whose every test drives a process (helm, promtool, the rendered chart, workers).
PROCESS_SUITES = frozenset({"integration", "chart", "e2e", "observability"})

# Fixtures that start a server process (tests/fixtures): a test using one is integration.
PROCESS_FIXTURES = frozenset(
    {
        "redis_server",
        "redis_url",
        "sentinel_group",
        "stack",
        "api",
        "beats",
        "otlp_receiver",
        "postgres_admin_url",
        "postgres_url",
        "postgres_template_name",
        "postgres_shared_db",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        suite = item.path.parent.name if item.path.parent.parent.name == "tests" else ""
        starts_processes = bool(fixtures & PROCESS_FIXTURES) or suite in PROCESS_SUITES
        if starts_processes and item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.integration)
    if getattr(config.option, "loadgroup", False):  # set in xdist workers by --dist=loadgroup
        _suffix_xdist_groups(items)


def _suffix_xdist_groups(items: list[pytest.Item]) -> None:
    """Give each ``xdist_group`` test the ``@group`` node id suffix that sends its group to
    one xdist worker. pytest-xdist 3.8 writes the suffix to ``item._nodeid``, which pytest
    9.2 no longer reads (it keeps a structured ``item._id``), so without this the group is
    split over the workers and, e.g., the chart stack of tests/e2e is started on each
    (pytest-dev/pytest-xdist#1386, open when written)."""
    from _pytest.nodeid import NodeId

    for item in items:
        groups = {
            str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
            for mark in item.iter_markers("xdist_group")
        }
        if groups and "@" not in item.nodeid and isinstance(getattr(item, "_id", None), NodeId):
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(sorted(groups))}")


def is_fast(item: pytest.Item) -> bool:
    return not any(item.get_closest_marker(name) for name in TIER_MARKERS)


class _ProcessRefused(subprocess.Popen):  # type: ignore[type-arg]
    def __init__(self, args: Any, *_: Any, **__: Any) -> None:
        raise AssertionError(
            f"this test starts a process ({args!r}) but has no tier marker: mark it "
            "pytest.mark.integration (make test-fast runs unmarked tests only)"
        )


def _refuse_start(process: multiprocessing.process.BaseProcess) -> None:
    raise AssertionError(
        f"this test starts a process ({process.name}) but has no tier marker: mark it "
        "pytest.mark.integration (make test-fast runs unmarked tests only)"
    )


@pytest.fixture(autouse=True)
def _fast_tests_start_no_process(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if is_fast(request.node):
        monkeypatch.setattr(subprocess, "Popen", _ProcessRefused)
        monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", _refuse_start)
