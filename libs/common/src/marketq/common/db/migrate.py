"""Schema migrations (Alembic), driven programmatically.

The migration scripts ship inside this package (``marketq/common/db/migrations``) and the
Alembic configuration is built here, so migrations run from an installed wheel with no
``alembic.ini``: ``marketq-migrate`` (every image has it; the chart's hook Job runs it),
``marketq db upgrade`` (the command line) or :func:`upgrade`.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import JSON, DefaultClause, MetaData
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.elements import False_, True_

from marketq.common.db.engine import create_db_engine, sqlite_file
from marketq.common.db.models import Base
from marketq.common.db.types import UTCDateTime

__all__ = [
    "MIGRATIONS_DIR",
    "NotAtHeadError",
    "alembic_config",
    "check",
    "compare",
    "context_options",
    "current",
    "downgrade",
    "head",
    "main",
    "render_item",
    "revision",
    "upgrade",
    "upgrade_report",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class NotAtHeadError(RuntimeError):
    """The database is not at the newest migration, so it cannot be compared to the models."""


def _url_string(url: str | URL) -> str:
    return make_url(url).render_as_string(hide_password=False)


def alembic_config(
    url: str | URL | None = None, *, script_location: str | Path | None = None
) -> Config:
    """An Alembic ``Config`` for marketq's migrations, optionally bound to ``url``.

    ``env.py`` reads the URL from ``config.attributes["url"]`` (or the ``sqlalchemy.url``
    main option), never from a global or the environment. ``script_location`` overrides
    the packaged migrations directory (tests).
    """
    config = Config()
    config.set_main_option("script_location", str(script_location or MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if url is not None:
        rendered = _url_string(url)
        config.attributes["url"] = rendered
        # configparser interpolates "%": URL-encoded passwords must be escaped.
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Autogenerate rendering that yields scripts correct on both dialects.

    Migrations must not import application code that may change later: a
    :class:`UTCDateTime` is a ``DateTime(timezone=True)`` in the database. Boolean server
    defaults and JSONB variants are rendered dialect-neutrally.
    """
    if type_ == "server_default" and isinstance(obj, DefaultClause):
        # Booleans: autogenerate would render the scratch dialect's literal ('0' on SQLite),
        # which PostgreSQL rejects for a BOOLEAN column.
        if isinstance(obj.arg, False_):
            return "sa.false()"
        if isinstance(obj.arg, True_):
            return "sa.true()"
        return False
    if type_ != "type":
        return False
    if isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if isinstance(obj, JSON) and isinstance(obj._variant_mapping.get("postgresql"), JSONB):
        # Alembic renders JSONB's astext_type inside a variant without the "sa." prefix.
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return 'sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")'
    return False


def context_options(dialect_name: str) -> dict[str, Any]:
    """``MigrationContext`` options shared by ``env.py`` and :func:`compare`."""
    return {
        "compare_type": True,
        "render_as_batch": dialect_name == "sqlite",
        "render_item": render_item,
    }


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision`` (default: the newest)."""
    command.upgrade(alembic_config(url), revision)


def upgrade_report(url: str | URL, revision: str = "head") -> str:
    """Migrate like :func:`upgrade`, and say what changed in one line (password masked)."""
    before = current(url)
    upgrade(url, revision)
    after = current(url)
    where = make_url(url).render_as_string(hide_password=True)
    if before == after:
        return f"up to date: {where} at revision {after}"
    return f"upgraded {where}: {before or '(empty)'} -> {after}"


def main(argv: list[str] | None = None) -> int:
    """``marketq-migrate``: migrate MARKETQ_DATABASE_URL (the images' migration command)."""
    parser = argparse.ArgumentParser(
        prog="marketq-migrate",
        description="Migrate the database of MARKETQ_DATABASE_URL (or MARKETQ_DATABASE_URL_FILE) "
        "to the newest schema.",
    )
    parser.add_argument("--revision", default="head", help="target revision (default: head)")
    args = parser.parse_args(argv)
    from marketq.common.settings import get_settings

    print(upgrade_report(get_settings().database_url, args.revision), flush=True)
    return 0


def downgrade(url: str | URL, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``"base"``: drop everything)."""
    command.downgrade(alembic_config(url), revision)


def head() -> str:
    """The newest revision shipped with this package."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"expected one migration head, found {heads}")
    return heads[0]


def current(url: str | URL) -> str | None:
    """The revision the database at ``url`` is at (None: never migrated).

    A SQLite file that does not exist is reported as never migrated, and not created.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_file(parsed)
        if path is not None and not path.exists():
            return None
    engine = create_db_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def compare(url: str | URL, metadata: MetaData | None = None) -> list[Any]:
    """Differences between the database at ``url`` and ``metadata`` (default: the models).

    The items are Alembic autogenerate diffs, e.g. ``("add_column", None, "quotes", Column)``.
    """
    target = Base.metadata if metadata is None else metadata
    engine = create_db_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            options = context_options(connection.dialect.name)
            options["target_metadata"] = target
            context = MigrationContext.configure(connection, opts=options)
            diffs: list[Any] = compare_metadata(context, target)
            return diffs
    finally:
        engine.dispose()


def check(url: str | URL | None = None, metadata: MetaData | None = None) -> list[Any]:
    """Differences between the models and what the migrations build; empty means in sync.

    With ``url``, that database must be at head (:class:`NotAtHeadError` otherwise) and is
    only read. Without it, a scratch SQLite database is migrated to head and compared.
    """
    if url is None:
        with tempfile.TemporaryDirectory(prefix="marketq-check-") as scratch:
            scratch_url = f"sqlite:///{Path(scratch) / 'check.db'}"
            upgrade(scratch_url)
            return compare(scratch_url, metadata)
    at, newest = current(url), head()
    if at != newest:
        raise NotAtHeadError(
            f"the database is at revision {at or '(none)'} but the newest is {newest}; "
            "run `marketq db upgrade` first"
        )
    return compare(url, metadata)


def _next_revision_id() -> str:
    numbers = [
        int(match.group(1))
        for path in (MIGRATIONS_DIR / "versions").glob("*.py")
        if (match := re.match(r"(\d+)_", path.name))
    ]
    return f"{max(numbers, default=0) + 1:04d}"


def revision(message: str, *, rev_id: str | None = None) -> Path:
    """Autogenerate a migration from the model changes; returns the new script's path.

    A scratch SQLite database is migrated to head and compared with the models; the
    operations are rendered in batch mode, which PostgreSQL runs as plain ``ALTER``s.
    Review the script before committing it.
    """
    with tempfile.TemporaryDirectory(prefix="marketq-revision-") as scratch:
        scratch_url = f"sqlite:///{Path(scratch) / 'revision.db'}"
        upgrade(scratch_url)
        script = command.revision(
            alembic_config(scratch_url),
            message=message,
            autogenerate=True,
            rev_id=rev_id or _next_revision_id(),
        )
    if script is None or isinstance(script, list):
        raise RuntimeError("alembic did not produce exactly one revision script")
    return Path(script.path)
