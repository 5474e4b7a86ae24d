"""Arguments and options the commands share, and the exit codes' help text."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperOption

EXIT_CODES_HELP = (
    "Exit codes: 0 ok (with --wait: the run succeeded) · 1 the run ended FAILURE, REVOKED or LOST "
    "(--wait) · 2 invalid input (HTTP 400/404/409/422) · 3 API or broker unavailable "
    "(no connection, 503) · 4 --wait timed out (the run goes on) · 5 authentication or "
    "authorization (401/403) · 6 rate limited (429).\n\n"
    "Connection: --api-url / MARKETQ_API_URL (default http://127.0.0.1:8000), "
    "--api-key / MARKETQ_API_KEY."
)


ApiUrlOption = Annotated[
    str,
    typer.Option(
        "--api-url",
        envvar="MARKETQ_API_URL",
        help="Base URL of the marketq API.",
        rich_help_panel="Connection",
    ),
]


ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="MARKETQ_API_KEY",
        help="API key (sent as Authorization: Bearer).",
        show_default=False,
        show_envvar=True,
        rich_help_panel="Connection",
    ),
]


JsonOption = Annotated[
    bool,
    typer.Option(
        "--json",
        metavar="",
        help="Print the API's JSON body unchanged on stdout and nothing else there (on an "
        "API error: its error body); messages go to stderr.",
        rich_help_panel="Output",
    ),
]


AtOption = Annotated[
    str | None,
    typer.Option(help="Answer for this instant (ISO 8601 with a UTC offset) instead of now."),
]


RunIdArgument = Annotated[str, typer.Argument(metavar="ID", help="Run id.")]


# What a new run is: `marketq run` (over the API) and `marketq submit` (to the broker).
JobArgument = Annotated[str, typer.Argument(metavar="JOB", help="Catalog job name.")]
ParamOption = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        metavar="KEY=VALUE",
        help="One param; repeat. Lists: symbols=AAPL,MSFT; JSON values ok.",
    ),
]
ParamsJsonOption = Annotated[
    str | None,
    typer.Option(
        "--params-json",
        metavar="PARAMS",
        help="All params as one JSON object (--param pairs override its keys).",
    ),
]
CountdownOption = Annotated[float | None, typer.Option(help="Seconds to wait first.")]
PriorityOption = Annotated[int | None, typer.Option(help="0 (highest) .. 9.")]
QueueOption = Annotated[str | None, typer.Option(help="Another queue (health_check only).")]


def hide_flag_types() -> None:
    """Show no type beside a flag in help (typer 0.29 prints ``--help <bool>``: a flag
    takes no value, so a type there misleads); options that take a value keep theirs."""
    shown = TyperOption.display_type_rich
    if getattr(shown, "marketq_hides_flags", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag and self.metavar is None:
            return None
        return shown(self, ctx)

    display_type_rich.marketq_hides_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
