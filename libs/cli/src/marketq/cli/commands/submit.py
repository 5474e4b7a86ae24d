"""``marketq submit``: direct publishing (the other run commands use the API).

``submit`` publishes straight to the broker through the same validation the API uses and
follows the run in the ledger. It is for operators on a machine that reaches Redis and
the database; services integrate over the HTTP API instead.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from marketq.cli.client import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_RUN_FAILED,
    EXIT_TIMEOUT,
    EXIT_UNAVAILABLE,
)
from marketq.cli.options import (
    CountdownOption,
    JobArgument,
    ParamOption,
    ParamsJsonOption,
    PriorityOption,
    QueueOption,
)
from marketq.cli.output import console, emit, err_console
from marketq.cli.params import parse_params
from marketq.common.catalog import CATALOG, UnknownJobError


def submit(
    job_name: JobArgument,
    param: ParamOption = None,
    params_json: ParamsJsonOption = None,
    countdown: CountdownOption = None,
    priority: PriorityOption = None,
    queue: QueueOption = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key",
            help="Same key with the same job and options: the first run, published once "
            "(kept MARKETQ_API_IDEMPOTENCY_TTL_SECONDS). Safe to retry after a timeout.",
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the run to its end.", metavar="")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits.")] = 300.0,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the run as JSON on stdout (with --wait: its final record); messages "
            "go to stderr.",
            metavar="",
            rich_help_panel="Output",
        ),
    ] = False,
) -> None:
    """Publish one run of JOB directly to the broker (validated like the API does)."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from marketq.common.celery_app import create_celery_app
    from marketq.common.publish import PublishError, prepare_run, send_run

    try:
        spec = CATALOG[job_name]
        params = parse_params(spec, param or [], params_json)
        run = prepare_run(job_name, params, queue=queue, countdown=countdown, priority=priority)
    except (UnknownJobError, PublishError, typer.BadParameter, json.JSONDecodeError) as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_INVALID) from None

    app = create_celery_app("marketq-cli")
    run_id, replayed = run.run_id, False
    try:
        if idempotency_key is not None:
            claim = _claim(idempotency_key, run, (queue, countdown, priority))
            if claim is None:
                err_console.print(
                    "[red]error:[/] --idempotency-key was used with another job or options"
                )
                raise typer.Exit(EXIT_INVALID)
            run_id, replayed = claim, claim != run.run_id
        if not replayed:
            try:
                send_run(app, run, source="cli")
            except RedisConnectionError:
                if idempotency_key is not None:  # nothing published: free the key
                    _release(idempotency_key, run.run_id)
                raise
    except RedisTimeoutError as exc:
        again = (
            "submit again with the same --idempotency-key"
            if idempotency_key
            else "`marketq status` it before submitting again"
        )
        err_console.print(
            f"[red]broker timed out:[/] {exc}; run {run.run_id} may have been queued ({again})"
        )
        raise typer.Exit(EXIT_UNAVAILABLE) from None
    except RedisConnectionError as exc:
        err_console.print(f"[red]broker unavailable:[/] {exc}; nothing was published")
        raise typer.Exit(EXIT_UNAVAILABLE) from None
    finally:
        app.close()
    if replayed:
        queued = f"already queued [bold]{run_id}[/] (same --idempotency-key)"
        (err_console if as_json else console).print(queued)
        if wait:
            raise typer.Exit(_follow(run_id, timeout, as_json=as_json))
        if as_json:
            emit(json.dumps({"run_id": run_id, "job": spec.name, "replayed": True}))
        return
    queued = f"queued [bold]{run.run_id}[/] ({spec.name} on {run.queue.value})"
    (err_console if as_json else console).print(queued)
    if wait:
        raise typer.Exit(_follow(run.run_id, timeout, as_json=as_json))
    if as_json:
        emit(json.dumps({"run_id": run.run_id, "job": spec.name, "queue": run.queue.value}))


def _idempotency_key(key: str) -> str:
    from marketq.common.settings import get_settings

    # The CLI's own namespace beside the API's per-principal ones.
    return f"{get_settings().redis_key_prefix}idempotency:cli:{key}"


def _claim(key: str, run: Any, options: tuple[Any, ...]) -> str | None:
    """The run id ``key`` stands for: this run's if the key was free (now claimed), the
    first run's if it was used with the same request, None if with another one."""
    from marketq.common.run_events import broker_redis
    from marketq.common.settings import get_settings

    settings = get_settings()
    request = {"job": run.job.name, "params": run.params, "options": list(options)}
    fingerprint = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
    value = json.dumps({"run_id": run.run_id, "fingerprint": fingerprint})
    client = broker_redis(settings)
    try:
        redis_key = _idempotency_key(key)
        if client.set(redis_key, value, nx=True, ex=settings.api_idempotency_ttl_seconds):
            return str(run.run_id)
        stored = client.get(redis_key)
    finally:
        client.close()
    if stored is None:  # expired between the two calls: claim it again
        return _claim(key, run, options)
    first = json.loads(stored)
    return str(first["run_id"]) if first["fingerprint"] == fingerprint else None


def _release(key: str, run_id: str) -> None:
    from redis.exceptions import RedisError

    from marketq.common.run_events import broker_redis
    from marketq.common.settings import get_settings

    client = broker_redis(get_settings())
    try:
        redis_key = _idempotency_key(key)
        if (raw := client.get(redis_key)) is not None and json.loads(raw)["run_id"] == run_id:
            client.delete(redis_key)
    except RedisError:
        pass  # the broker is down: the key expires with its TTL
    finally:
        client.close()


def _ledger() -> Any:
    from marketq.common.db.engine import get_sessionmaker
    from marketq.common.ledger import Ledger
    from marketq.common.settings import get_settings

    return Ledger(get_sessionmaker(get_settings()))


def _follow(run_id: str, timeout: float, *, as_json: bool) -> int:
    from marketq.common.ledger import FINISHED_STATES

    ledger = _ledger()
    row = None
    deadline = time.monotonic() + timeout
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[state]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as progress:
        bar = progress.add_task(run_id[:8], total=None, state="QUEUED")
        while time.monotonic() < deadline:
            row = ledger.get(run_id)
            if row is not None:
                progress.update(
                    bar,
                    state=row.state,
                    completed=row.progress_current or 0,
                    total=row.progress_total,
                )
                if row.state in FINISHED_STATES:
                    break
            time.sleep(0.2)
    if row is None or row.state not in FINISHED_STATES:
        err_console.print(f"[yellow]still running after {timeout:.0f} s[/]: {run_id}")
        return EXIT_TIMEOUT
    if as_json:
        record = {
            "run_id": run_id,
            "job": row.job,
            "state": row.state,
            "attempts": row.attempts,
            "worker": row.worker,
            "result": row.result,
            "error": row.error,
        }
        emit(json.dumps(record, default=str))
        return EXIT_OK if row.state == "SUCCESS" else EXIT_RUN_FAILED
    colour = "green" if row.state == "SUCCESS" else "red"
    console.print(f"[{colour}]{row.state}[/] {run_id} attempts={row.attempts} worker={row.worker}")
    if row.state == "SUCCESS":
        console.print_json(data=row.result)
        return EXIT_OK
    console.print(f"[red]{row.error}[/]")
    return EXIT_RUN_FAILED
