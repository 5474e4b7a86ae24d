"""``marketq db``: database migrations, drift checks and the demo portfolio."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.engine import make_url

from marketq.cli.output import console, err_console

db_app = typer.Typer(help="Database schema: migrations and drift checks.", no_args_is_help=True)


UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="SQLAlchemy database URL [default: MARKETQ_DATABASE_URL / settings.database_url]",
        show_default=False,
    ),
]


def _resolve_url(url: str | None) -> str:
    if url:
        return url
    from marketq.common.settings import get_settings

    return get_settings().database_url


def _safe(url: str) -> str:
    """The URL with its password masked, for output."""
    return make_url(url).render_as_string(hide_password=True)


def _describe(diff: Any) -> str:
    if isinstance(diff, list):  # modify_* diffs come as a list of tuples for one column
        return "; ".join(_describe(item) for item in diff)
    if isinstance(diff, tuple) and diff:
        return f"{diff[0]}: " + ", ".join(str(part) for part in diff[1:] if part is not None)
    return str(diff)


@db_app.command("upgrade")
def db_upgrade(
    url: UrlOption = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Migrate the database to the newest schema (or to --revision)."""
    from marketq.common.db import migrate

    console.print(
        migrate.upgrade_report(_resolve_url(url), revision), markup=False, highlight=False
    )


@db_app.command("current")
def db_current(url: UrlOption = None) -> None:
    """Show the database's revision and the newest one."""
    from marketq.common.db import migrate

    target = _resolve_url(url)
    at, newest = migrate.current(target), migrate.head()
    table = Table(show_header=False, box=None)
    table.add_row("database", _safe(target))
    table.add_row("current", at or "(none)")
    table.add_row("head", newest)
    status = "[green]up to date[/]" if at == newest else "[yellow]upgrade needed[/]"
    table.add_row("status", status)
    console.print(table)


@db_app.command("check")
def db_check(
    url: UrlOption = None,
    scratch: Annotated[
        bool,
        typer.Option(
            "--scratch",
            help="Compare the models with a scratch SQLite database built by the migrations, "
            "instead of an existing database.",
            metavar="",
        ),
    ] = False,
) -> None:
    """Fail (exit 1) when the models and the migrations differ; exit 2 if not at head."""
    from marketq.common.db import migrate

    target = None if scratch else _resolve_url(url)
    try:
        diffs = migrate.check(target)
    except migrate.NotAtHeadError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    where = "scratch database" if target is None else _safe(target)
    if not diffs:
        console.print(f"[green]no drift[/]: models match the migrations ({where})")
        return
    err_console.print(f"[red]drift[/]: {len(diffs)} difference(s) between models and {where}:")
    for diff in diffs:
        err_console.print(f"  - {_describe(diff)}", markup=False, highlight=False)
    err_console.print("write a migration: marketq db revision -m '<what changed>'")
    raise typer.Exit(1)


DEMO_PORTFOLIO = "demo"


DEMO_POSITIONS = (
    ("AAPL", 50, 8_250.0),
    ("MSFT", 30, 11_400.0),
    ("NVDA", 40, 4_800.0),
    ("JPM", 60, 11_700.0),
    ("SPY", 25, 13_500.0),
)


@db_app.command("seed-demo")
def db_seed_demo(url: UrlOption = None) -> None:
    """Create the 'demo' portfolio (local stacks); leaves an existing one alone."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from marketq.common.db.engine import create_db_engine, session_factory
    from marketq.common.db.models import Portfolio, Position

    target = _resolve_url(url)
    with session_factory(create_db_engine(target)).begin() as session:
        found = session.scalar(select(Portfolio.id).where(Portfolio.name == DEMO_PORTFOLIO))
        if found is not None:
            console.print(f"portfolio [bold]{DEMO_PORTFOLIO}[/] exists (id {found})")
            return
        now = datetime.now(UTC)
        portfolio = Portfolio(name=DEMO_PORTFOLIO, created_at=now, updated_at=now)
        session.add(portfolio)
        session.flush()
        for symbol, quantity, cost in DEMO_POSITIONS:
            session.add(
                Position(
                    portfolio_id=portfolio.id,
                    symbol=symbol,
                    quantity=quantity,
                    cost_basis=cost,
                    updated_at=now,
                )
            )
        console.print(
            f"[green]created[/] portfolio {DEMO_PORTFOLIO} (id {portfolio.id}) "
            f"with {len(DEMO_POSITIONS)} positions"
        )


@db_app.command("revision")
def db_revision(
    message: Annotated[str, typer.Option("-m", "--message", help="What the migration does.")],
) -> None:
    """Autogenerate a migration script from the model changes (run in a source checkout)."""
    from marketq.common.db import migrate

    path = migrate.revision(message)
    console.print(f"[green]wrote[/] {path}: review it, then run `marketq db check --scratch`")
