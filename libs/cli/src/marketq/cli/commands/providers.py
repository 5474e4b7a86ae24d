"""``marketq providers check``: one live call to each configured vendor, from this process.

It reads the same settings as the workers (``MARKETQ_PROVIDER``, ``MARKETQ_PROVIDERS__*``
and the vendor keys or their ``*_FILE`` variables), so running it where the workers run
checks the keys they use. Exit status 1 when a configured vendor fails.
"""

from __future__ import annotations

import json
import typing
from typing import Annotated

import typer
from rich.table import Table

from marketq.cli.output import console, emit

providers_app = typer.Typer(help="Market-data vendors: live checks.", no_args_is_help=True)


@providers_app.command("check")
def check(
    provider: Annotated[
        str | None,
        typer.Option(
            "--provider",
            help="Check only this provider (synthetic, yahoo, alphavantage, fred, edgar).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the results as a JSON list on stdout.")
    ] = False,
) -> None:
    """Call each configured vendor once: reachable, key valid, plan limits, latency."""
    from marketq.common.settings import ProviderName, get_settings
    from marketq.providers.check import check_providers
    from marketq.providers.routing import ProviderRegistry

    known = typing.get_args(ProviderName)
    if provider is not None and provider not in known:
        raise typer.BadParameter(f"unknown provider {provider!r}; known: {', '.join(known)}")
    results = check_providers(ProviderRegistry(get_settings()), provider)
    if as_json:
        emit(json.dumps([r.as_dict() for r in results]))
    else:
        table = Table(
            "provider", "ok", "reachable", "key valid", "plan limits", "latency", "detail"
        )
        for r in results:
            table.add_row(
                r.provider,
                "yes" if r.ok else "[red]NO[/red]",
                "yes" if r.reachable else "no",
                "n/a" if r.key_valid is None else "yes" if r.key_valid else "no",
                r.plan_limits,
                "-" if r.latency_seconds is None else f"{r.latency_seconds * 1000:.0f} ms",
                r.detail,
            )
        console.print(table)
    if not all(r.ok for r in results):
        raise typer.Exit(1)
