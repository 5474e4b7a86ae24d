"""Pipelines: catalog jobs run in dependency order as one tracked parent run.

A pipeline is declared here, next to the catalog: its steps (catalog jobs with fixed
params), the steps each one waits for (a DAG: fan-out and fan-in are allowed), an
optional schedule on the exchange calendar and a deadline after its scheduled start.
A pipeline run's own params (say ``symbols``) flow into every step whose job takes that
field and does not fix it itself. How runs advance: ``marketq.common.pipeline_runs``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from marketq.common.catalog import CATALOG, Catalog, Schedule


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    job: str
    params: Mapping[str, Any] = field(default_factory=dict)
    after: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PipelineSpec:
    name: str
    description: str
    steps: tuple[Step, ...]
    schedule: Schedule | None = None
    # A scheduled run not done this long after its scheduled start is overdue (alert).
    deadline_minutes: int | None = None
    # Started (same params) when a run of this other pipeline succeeds.
    follows: str | None = None
    example: Mapping[str, Any] = field(default_factory=dict)

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def accepted_params(self, catalog: Catalog = CATALOG) -> set[str]:
        """Run params some step can take (the others are refused, naming the field)."""
        return {
            name
            for step in self.steps
            for name in catalog[step.job].params.model_fields
            if name not in step.params
        }

    def step_params(
        self, step: Step, run_params: Mapping[str, Any], catalog: Catalog = CATALOG
    ) -> dict[str, Any]:
        fields = catalog[step.job].params.model_fields
        inherited = {k: v for k, v in run_params.items() if k in fields}
        return {**inherited, **step.params}


def _check(spec: PipelineSpec, catalog: Catalog) -> None:
    names = [s.name for s in spec.steps]
    if len(set(names)) != len(names):
        raise ValueError(f"pipeline {spec.name}: duplicate step name")
    if not spec.steps:
        raise ValueError(f"pipeline {spec.name}: no steps")
    for step in spec.steps:
        if step.job not in catalog:
            raise ValueError(f"pipeline {spec.name}: step {step.name} runs unknown job {step.job}")
        for dependency in step.after:
            if dependency not in names:
                raise ValueError(
                    f"pipeline {spec.name}: {step.name} waits for unknown {dependency}"
                )
    # No cycles: every step must become ready once its predecessors are done.
    done: set[str] = set()
    while len(done) < len(names):
        ready = [s.name for s in spec.steps if s.name not in done and set(s.after) <= done]
        if not ready:
            raise ValueError(f"pipeline {spec.name}: its steps wait for each other in a cycle")
        done.update(ready)


_PIPELINES: tuple[PipelineSpec, ...] = (
    PipelineSpec(
        name="end_of_day",
        description="End-of-day bars, then the technical indicators, then the trading "
        "signals (the chain historical_prices → technical_indicators → trading_signals).",
        steps=(
            Step("historical_prices", "historical_prices"),
            Step("technical_indicators", "technical_indicators", after=("historical_prices",)),
            Step("trading_signals", "trading_signals", after=("technical_indicators",)),
        ),
        schedule=Schedule(cron="30 17 * * *", trading_days_only=True),
        deadline_minutes=90,
        example={"symbols": ["AAPL", "MSFT"]},
    ),
    PipelineSpec(
        name="research_daily",
        description="The research workflow on the day's stored data: universe, "
        "fundamentals, features, walk-forward model, backtest, proposed trades, broker sync.",
        steps=(
            Step("universe", "rebuild_universe"),
            Step("fundamentals", "fundamentals", after=("universe",)),
            Step("features", "build_features", after=("universe",)),
            Step("model", "train_and_predict", after=("features",)),
            Step("backtest", "run_backtest", after=("model",)),
            Step("trades", "generate_trades", after=("model", "fundamentals")),
            Step("broker", "sync_broker", after=("trades",)),
        ),
        follows="end_of_day",
        deadline_minutes=120,
        example={},
    ),
)


class UnknownPipelineError(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown pipeline {name!r}; known: {', '.join(sorted(PIPELINES))}")
        self.name = name


class Pipelines(Mapping[str, PipelineSpec]):
    def __init__(self, pipelines: tuple[PipelineSpec, ...], catalog: Catalog = CATALOG) -> None:
        self._pipelines = {p.name: p for p in pipelines}
        if len(self._pipelines) != len(pipelines):
            raise ValueError("duplicate pipeline name")
        clashes = set(self._pipelines) & set(catalog)
        if clashes:
            # Schedule entries of jobs and pipelines share one namespace.
            raise ValueError(f"pipelines named like catalog jobs: {', '.join(sorted(clashes))}")
        for spec in pipelines:
            _check(spec, catalog)
            if spec.follows is not None and spec.follows not in self._pipelines:
                raise ValueError(f"pipeline {spec.name} follows unknown pipeline {spec.follows}")

    def __getitem__(self, name: str) -> PipelineSpec:
        try:
            return self._pipelines[name]
        except KeyError:
            raise UnknownPipelineError(name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._pipelines

    def __iter__(self) -> Iterator[str]:
        return iter(self._pipelines)

    def __len__(self) -> int:
        return len(self._pipelines)

    def followers(self, name: str) -> list[PipelineSpec]:
        return [p for p in self._pipelines.values() if p.follows == name]


PIPELINES = Pipelines(_PIPELINES)
