"""One source of truth per default: the chart repeats the Settings defaults.

values.yaml's ``config:`` block and the per-queue worker values must equal the defaults of
``marketq.common.settings.Settings`` (what a process uses when the variable is unset), or
be listed below with the reason the cluster needs another value. ``null`` in the chart
means "not set": the process default applies.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_core import to_jsonable_python

from marketq.common.queues import Queue
from marketq.common.settings import Settings

VALUES = Path(__file__).resolve().parents[2] / "charts" / "marketq" / "values.yaml"

# Setting -> why the chart's value differs from the process default. Empty today.
INTENTIONAL_DIFFERENCES: dict[str, str] = {}

# values.yaml key of each per-queue worker option (QueueOptions field).
QUEUE_KEYS = {
    "concurrency": "concurrency",
    "max_tasks_per_child": "maxTasksPerChild",
    "max_memory_per_child_kb": "maxMemoryPerChildKb",
    "max_time_limit_seconds": "maxTimeLimitSeconds",
    "target_age_seconds": "targetAgeSeconds",
}


def snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def same(chart: Any, default: Any) -> bool:
    """Equal as the environment variable would carry them (3 and 3.0 are one value)."""
    if isinstance(chart, int | float) and isinstance(default, int | float):
        return float(chart) == float(default)
    return bool(chart == default)


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(VALUES.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def defaults() -> Settings:
    # model_construct: the declared defaults, without reading this process's environment.
    return Settings.model_construct()


def test_config_values_equal_the_settings_defaults(
    values: dict[str, Any], defaults: Settings
) -> None:
    differing = {}
    for key, chart in values["config"].items():
        name = snake(key)
        default = to_jsonable_python(getattr(defaults, name))
        if chart is not None and not same(chart, default) and name not in INTENTIONAL_DIFFERENCES:
            differing[name] = (chart, default)
    assert not differing, f"chart value vs Settings default: {differing}"


@pytest.mark.parametrize("queue", [q.value for q in Queue])
def test_worker_values_equal_the_queue_defaults(
    values: dict[str, Any], defaults: Settings, queue: str
) -> None:
    workers = values["workers"]
    chart = {**workers["defaults"], **(workers["queues"].get(queue) or {})}
    options = defaults.queues.for_queue(Queue(queue))
    for field, key in QUEUE_KEYS.items():
        assert same(chart[key], getattr(options, field)), (queue, key, chart[key])


def test_listed_differences_name_real_settings_that_really_differ(
    values: dict[str, Any], defaults: Settings
) -> None:
    config = {snake(key): value for key, value in values["config"].items()}
    for name in INTENTIONAL_DIFFERENCES:
        assert name in config, f"{name} is not in the chart's config block"
        assert not same(config[name], to_jsonable_python(getattr(defaults, name))), name


def test_a_changed_default_is_caught(values: dict[str, Any], defaults: Settings) -> None:
    # The comparison above is not vacuous: one default moved is one difference found.
    changed = defaults.model_copy(update={"import_dir": "/elsewhere"})
    chart = values["config"]["importDir"]
    assert not same(chart, to_jsonable_python(changed.import_dir))
