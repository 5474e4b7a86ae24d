"""Pipeline declarations and the state a run derives from its steps (pure)."""

from __future__ import annotations

import pytest

from marketq.common.catalog import CATALOG
from marketq.common.pipeline_runs import StepView, derive_state, is_step_run_id, step_run_id
from marketq.common.pipelines import PIPELINES, Pipelines, PipelineSpec, Step


def steps(*states: str) -> list[StepView]:
    return [
        StepView(f"s{i}", "health_check", (), state, 1, None, None)
        for i, state in enumerate(states)
    ]


@pytest.mark.parametrize(
    ("states", "cancelled", "expected"),
    [
        (("SUCCESS", "SUCCESS"), False, "SUCCESS"),
        (("QUEUED", "PENDING"), False, "QUEUED"),
        (("RUNNING", "PENDING"), False, "RUNNING"),
        (("SUCCESS", "PENDING"), False, "RUNNING"),  # the next step is about to be published
        (("FAILED", "RUNNING"), False, "RUNNING"),  # another branch still runs
        (("FAILED", "PENDING"), False, "FAILED"),
        (("REVOKED", "PENDING"), True, "REVOKED"),
        (("SUCCESS", "PENDING"), True, "REVOKED"),  # cancelled between two steps
        (("RUNNING", "PENDING"), True, "RUNNING"),  # the running step runs to its end
        (("FAILED", "REVOKED"), True, "FAILED"),
    ],
)
def test_the_run_state_is_derived_from_its_steps(
    states: tuple[str, ...], cancelled: bool, expected: str
) -> None:
    assert derive_state(PIPELINES["end_of_day"], steps(*states), cancelled) == expected


def test_step_run_ids_are_deterministic_per_attempt_and_recognisable() -> None:
    first = step_run_id("run-1", "historical_prices", 1)
    assert first == step_run_id("run-1", "historical_prices", 1)
    assert first != step_run_id("run-1", "historical_prices", 2)
    assert first != step_run_id("run-2", "historical_prices", 1)
    assert is_step_run_id(first)
    assert not is_step_run_id("4f0c2b8e-6f57-4e44-9b3f-2c1f0e9a7d10")  # a uuid4 run id
    assert not is_step_run_id("not-a-uuid")


def test_run_params_flow_into_the_steps_that_take_them() -> None:
    spec = PIPELINES["research_daily"]
    params = {"symbols": ["AAPL"], "top_n": 3}
    assert spec.step_params(spec.step("features"), params) == {"symbols": ["AAPL"]}
    assert spec.step_params(spec.step("trades"), params) == {"top_n": 3}
    assert spec.step_params(spec.step("universe"), params) == {}
    assert {"symbols", "top_n", "cost_bps"} <= spec.accepted_params()


def test_the_shipped_pipelines_use_catalog_jobs_in_a_dag() -> None:
    assert set(PIPELINES) == {"end_of_day", "research_daily"}
    for spec in PIPELINES.values():
        assert all(step.job in CATALOG for step in spec.steps)
    research = PIPELINES["research_daily"]
    assert research.follows == "end_of_day"
    assert set(research.step("trades").after) == {"model", "fundamentals"}  # fan-in


def _pipeline(*steps_: Step, name: str = "p") -> PipelineSpec:
    return PipelineSpec(name=name, description="", steps=steps_)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (_pipeline(Step("a", "nope")), "unknown job"),
        (_pipeline(Step("a", "news", after=("b",))), "unknown b"),
        (_pipeline(Step("a", "news", after=("b",)), Step("b", "news", after=("a",))), "cycle"),
        (_pipeline(Step("a", "news"), Step("a", "news")), "duplicate step"),
        (_pipeline(Step("a", "news"), name="news"), "named like catalog jobs"),
    ],
)
def test_bad_declarations_are_refused_at_import(spec: PipelineSpec, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Pipelines((spec,))
