"""The ``marketq`` command line (console script ``marketq``).

API commands (``jobs``, ``run``, ``status``, ``cancel``, ``runs``, ``pipeline``, ``queues``,
``workers``, ``schedules``, ``schedule``, ``market``) call the marketq API with an API key,
print rich tables by default and, with ``--json``, the API's JSON body unchanged on
stdout. ``submit`` publishes straight to the broker, ``db`` manages the database schema and
``providers check`` calls each configured market-data vendor once from this process.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version
from typing import Annotated

import typer

from marketq.cli.commands import (
    cluster,
    db,
    jobs,
    market,
    pipelines,
    providers,
    runs,
    schedules,
    submit,
)
from marketq.cli.options import EXIT_CODES_HELP, hide_flag_types

hide_flag_types()
app = typer.Typer(
    name="marketq",
    help="marketq: market-data jobs on Celery and Redis.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(db.db_app, name="db")
app.add_typer(providers.providers_app, name="providers")
app.add_typer(pipelines.pipeline_app, name="pipeline", rich_help_panel="API")

API_COMMANDS: dict[str, Callable[..., None]] = {
    "jobs": jobs.jobs,
    "run": jobs.run,
    "status": runs.status,
    "cancel": runs.cancel,
    "runs": runs.runs,
    "queues": cluster.queues,
    "workers": cluster.workers,
    "schedules": schedules.schedules,
    "schedule": schedules.schedule,
    "market": market.market,
}


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"marketq {version('marketq-cli')}")
        raise typer.Exit()


@app.callback()
def main(
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            help="Print the version and exit.",
            callback=_print_version,
            is_eager=True,
            metavar="",
        ),
    ] = False,
) -> None:
    """marketq: market-data jobs on Celery and Redis."""


app.command("submit")(submit.submit)
for _name, _command in API_COMMANDS.items():
    app.command(_name, epilog=EXIT_CODES_HELP, rich_help_panel="API")(_command)


if __name__ == "__main__":  # pragma: no cover
    app()
