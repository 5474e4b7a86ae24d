"""Renders shared by the chart tests: each values set is rendered once per session."""

from __future__ import annotations

import pytest

from tests.chart.helm import OPTIONAL_APIS, VALUES_MAX, Rendered, render


@pytest.fixture(scope="session")
def default_render() -> Rendered:
    """The chart with its default values, on a cluster without KEDA or the Operator."""
    return render()


@pytest.fixture(scope="session")
def max_render() -> Rendered:
    """tests/chart/values-max.yaml (every option on) with KEDA and the Operator present."""
    return render([VALUES_MAX], api_versions=OPTIONAL_APIS)


@pytest.fixture(scope="session", params=["default", "max"])
def each_render(request: pytest.FixtureRequest) -> Rendered:
    rendered: Rendered = request.getfixturevalue(f"{request.param}_render")
    return rendered
