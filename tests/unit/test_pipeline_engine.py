"""The pipeline engine's transactions, on SQLite as on PostgreSQL.

Two advances of one run go one after the other. Two steps of a run ending at once in two
worker processes each advance the run; if both read before either wrote, each sees the
other's step unfinished and the run is never ended (until a sweep). PostgreSQL's FOR
UPDATE serializes them; SQLite has no row lock, so the engine takes the database's write
lock first (pipeline_runs._lock).

A pipeline that follows another is recorded in the transaction that ends the first
(``research_daily`` follows ``end_of_day``). If the follower were created only after the
parent's end was committed, a reader could see every pipeline run ended while a follower
was still to come (and a crash in between would never start it).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from celery import Celery
from sqlalchemy import select

from marketq.common.celery_app import create_celery_app
from marketq.common.db.engine import create_db_engine, session_factory
from marketq.common.db.models import PipelineRun
from marketq.common.pipeline_runs import TERMINAL, PipelineEngine
from marketq.common.settings import Settings
from tests.fixtures.postgres import DIALECTS


@pytest.fixture
def app(redis_url: str) -> Iterator[Celery]:
    celery = create_celery_app("marketq-test", settings=Settings(redis_url=redis_url))
    yield celery
    celery.close()


@pytest.mark.parametrize("db_url", DIALECTS, indirect=True)
def test_an_advance_waits_for_the_one_holding_the_run(
    db_url: str, redis_url: str, app: Celery
) -> None:
    settings = Settings(database_url=db_url, redis_url=redis_url)
    engine = create_db_engine(db_url)
    pipelines = PipelineEngine(session_factory(engine), app, settings)
    run_id = pipelines.start("end_of_day", {"symbols": ["AAPL"]}).run.id

    holding, release, advanced = threading.Event(), threading.Event(), threading.Event()

    def hold() -> None:
        with session_factory(engine).begin() as session:
            assert pipelines._lock(session, run_id) is not None
            holding.set()
            release.wait(30)

    def advance() -> None:
        pipelines.advance(run_id)
        advanced.set()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(30)
        threading.Thread(target=advance, daemon=True).start()
        # While the first transaction holds the run, the second advance does not read it.
        assert not advanced.wait(1.0), "the advance ran while another held the run"
    finally:
        release.set()
        holder.join(30)
    assert advanced.wait(30), "the advance never ran after the holder committed"
    engine.dispose()


@pytest.mark.parametrize("db_url", DIALECTS, indirect=True)
def test_a_follower_exists_as_soon_as_its_parents_end_is_visible(
    db_url: str, redis_url: str, app: Celery
) -> None:
    settings = Settings(database_url=db_url, redis_url=redis_url)
    engine = create_db_engine(db_url)
    sessions = session_factory(engine)
    seen_at_end: list[list[tuple[str, str]]] = []

    def on_finished(run: PipelineRun) -> None:
        # Called once the parent's end is committed: what any other reader sees now.
        with sessions() as session:
            rows = session.execute(select(PipelineRun.pipeline, PipelineRun.state)).all()
        seen_at_end.append(sorted((name, state) for name, state in rows))

    pipelines = PipelineEngine(sessions, app, settings, on_finished=on_finished)
    view = pipelines.start("end_of_day", {"symbols": ["AAPL"]})
    parent = view.run.id
    for _ in range(len(view.steps) + 1):
        if view.run.state in TERMINAL:
            break
        # Every published step reports success, as the worker does when a step ends.
        view = pipelines.advance(parent, {s.run_id: "SUCCESS" for s in view.steps if s.run_id})
    assert view.run.state == "SUCCESS"

    assert seen_at_end[0] == [("end_of_day", "SUCCESS"), ("research_daily", "QUEUED")]
    # Once the parent's advance returns, the follower has its first steps published.
    [follower] = [v for v in pipelines.recent("research_daily", 5)]
    assert follower.run.trigger == "pipeline"
    assert any(step.run_id for step in follower.steps)
    # Ending the parent again (a second advance, a sweep) starts no second follower.
    pipelines.advance(parent)
    assert len(pipelines.recent("research_daily", 5)) == 1
    engine.dispose()
