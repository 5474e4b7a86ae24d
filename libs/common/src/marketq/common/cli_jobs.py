"""``marketq submit``: direct publishing (``marketq jobs`` and ``run`` use the API: cli_api).

``submit`` publishes straight to the broker through the same validation the API uses and
follows the run in the ledger. It is for operators on a machine that reaches Redis and
the database; services integrate over the HTTP API instead.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from marketq.common.catalog import CATALOG, JobSpec, UnknownJobError

console = Console()
err_console = Console(stderr=True)

# Exit codes scripts can rely on.
EXIT_OK = 0
EXIT_RUN_FAILED = 1  # the run ended in FAILURE or REVOKED
EXIT_INVALID = 2  # bad job name, params or options: nothing was published
EXIT_UNAVAILABLE = 3  # the broker could not be reached: nothing was published
EXIT_TIMEOUT = 4  # --wait gave up; the run goes on


def _is_list_field(job: JobSpec, name: str) -> bool:
    schema = job.params.model_json_schema()["properties"].get(name, {})
    variants = schema.get("anyOf", [schema])
    return any(v.get("type") == "array" for v in variants)


def parse_params(job: JobSpec, pairs: list[str], raw_json: str | None) -> dict[str, Any]:
    """``k=v`` pairs (JSON values allowed; comma lists for list fields) over ``--json``."""
    params: dict[str, Any] = json.loads(raw_json) if raw_json else {}
    if not isinstance(params, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="--json")
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="--param")
        if value[:1] in '[{"' and value:
            params[key] = json.loads(value)
        elif _is_list_field(job, key):
            params[key] = [item.strip() for item in value.split(",") if item.strip()]
        else:
            params[key] = value
    return params


def submit(
    job_name: Annotated[str, typer.Argument(metavar="JOB", help="Catalog job name.")],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="key=value; repeat. Lists: symbols=AAPL,MSFT"),
    ] = None,
    params_json: Annotated[
        str | None, typer.Option("--json", help="All params as one JSON object.")
    ] = None,
    queue: Annotated[str | None, typer.Option(help="Another queue (health_check only).")] = None,
    countdown: Annotated[float | None, typer.Option(help="Seconds to wait first.")] = None,
    priority: Annotated[int | None, typer.Option(help="0 (highest) .. 9.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the run to its end.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits.")] = 300.0,
) -> None:
    """Publish one run of JOB directly to the broker (validated like the API does)."""
    from kombu.exceptions import OperationalError

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
    ledger = _ledger()
    ledger.queued(
        run.run_id,
        job=spec.name,
        queue=run.queue.value,
        params=run.params,
        enqueued_at=run.enqueued_at,
        eta=run.eta,
    )
    try:
        send_run(app, run)
    except OperationalError as exc:
        ledger.delete_unpublished(run.run_id)
        err_console.print(f"[red]broker unavailable:[/] {exc}; nothing was published")
        raise typer.Exit(EXIT_UNAVAILABLE) from None
    finally:
        app.close()
    console.print(f"queued [bold]{run.run_id}[/] ({spec.name} on {run.queue.value})")
    if wait:
        raise typer.Exit(_follow(run.run_id, timeout))


def _ledger() -> Any:
    from marketq.common.db.engine import get_sessionmaker
    from marketq.common.ledger import Ledger
    from marketq.common.settings import get_settings

    return Ledger(get_sessionmaker(get_settings()))


def _follow(run_id: str, timeout: float) -> int:
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
    colour = "green" if row.state == "SUCCESS" else "red"
    console.print(f"[{colour}]{row.state}[/] {run_id} attempts={row.attempts} worker={row.worker}")
    if row.state == "SUCCESS":
        console.print_json(data=row.result)
        return EXIT_OK
    console.print(f"[red]{row.error}[/]")
    return EXIT_RUN_FAILED
