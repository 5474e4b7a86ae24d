"""Migrations on SQLite and on a real PostgreSQL: upgrade, drift check, downgrade, CLI."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, inspect
from sqlalchemy.engine import make_url

from marketq.common.db import migrate
from marketq.common.db.engine import create_db_engine
from marketq.common.db.models import Base

MODEL_TABLES = set(Base.metadata.tables)


def _tables(url: str) -> set[str]:
    engine = create_db_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _execute(url: str, statement: str) -> None:
    engine = create_db_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


def test_one_head_and_scripts_named_after_their_revision() -> None:
    versions = sorted((migrate.MIGRATIONS_DIR / "versions").glob("*.py"))
    assert versions, "no migration scripts"
    assert migrate.head() == f"{len(versions):04d}"  # 0001, 0002, ...: one linear chain
    for path in versions:
        revision = re.search(r'^revision: str = "(\w+)"', path.read_text(), re.M)
        assert revision is not None, path
        assert path.name.startswith(f"{revision.group(1)}_"), path


def test_upgrade_reaches_head(blank_db_url: str) -> None:
    assert migrate.current(blank_db_url) is None
    if blank_db_url.startswith("sqlite"):  # reading the revision did not create the file
        assert not Path(blank_db_url.removeprefix("sqlite:///")).exists()
    migrate.upgrade(blank_db_url)
    assert migrate.current(blank_db_url) == migrate.head()
    assert _tables(blank_db_url) == MODEL_TABLES | {"alembic_version"}
    migrate.upgrade(blank_db_url)  # a second upgrade is a no-op
    assert migrate.current(blank_db_url) == migrate.head()


def test_models_match_migrations(db_url: str) -> None:
    assert migrate.check(db_url) == []


def test_models_match_migrations_on_a_scratch_database() -> None:
    assert migrate.check() == []


def test_check_reports_drift(db_url: str) -> None:
    _execute(db_url, "DROP INDEX ix_task_runs_state")
    diffs = migrate.check(db_url)
    assert [(d[0], d[1].name) for d in diffs] == [("add_index", "ix_task_runs_state")]

    extra = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(extra)
    Table("quotes", extra, Column("bid_count", Integer), extend_existing=True)
    added = [d for d in migrate.check(db_url, extra) if d[0] == "add_column"]
    assert [(d[2], d[3].name) for d in added] == [("quotes", "bid_count")]


def test_check_refuses_a_database_behind_head(blank_db_url: str) -> None:
    with pytest.raises(migrate.NotAtHeadError, match="marketq db upgrade"):
        migrate.check(blank_db_url)


def test_downgrade_to_base_and_back(blank_db_url: str) -> None:
    migrate.upgrade(blank_db_url)
    migrate.downgrade(blank_db_url, "base")
    assert migrate.current(blank_db_url) is None
    assert _tables(blank_db_url) <= {"alembic_version"}
    migrate.upgrade(blank_db_url)
    assert migrate.current(blank_db_url) == migrate.head()
    assert migrate.check(blank_db_url) == []


def test_offline_sql_renders_for_postgres(capsys: pytest.CaptureFixture[str]) -> None:
    from alembic import command

    config = migrate.alembic_config("postgresql+psycopg://u:p%40ss@localhost/db")
    command.upgrade(config, "head", sql=True)
    sql = capsys.readouterr().out
    assert "CREATE TABLE task_runs" in sql
    assert "expired BOOLEAN DEFAULT false NOT NULL" in sql
    assert "params JSONB NOT NULL" in sql
    assert "TIMESTAMP WITH TIME ZONE" in sql


def test_env_uses_the_configured_url_not_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "from-env.db"
    monkeypatch.setenv("MARKETQ_DATABASE_URL", f"sqlite:///{elsewhere}")
    target = f"sqlite:///{tmp_path / 'target.db'}"
    migrate.upgrade(target)
    assert migrate.current(target) == migrate.head()
    assert not elsewhere.exists()


# --- the CLI, as a real process ------------------------------------------------------------


def _marketq() -> str:
    script = Path(sys.executable).parent / "marketq"
    found = str(script) if script.exists() else shutil.which("marketq")
    assert found, "the marketq console script is not installed (uv sync)"
    return found


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_marketq(), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        check=False,
    )


@pytest.mark.integration
def test_cli_db_upgrade_current_check(blank_db_url: str) -> None:
    outputs: list[str] = []

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = _run("db", *args, "--url", blank_db_url)
        outputs.append(done.stdout + done.stderr)
        return done

    done = run("check")
    assert done.returncode == 2, done
    assert "marketq db upgrade" in done.stderr

    done = run("upgrade")
    assert done.returncode == 0, done
    assert "upgraded" in done.stdout
    assert migrate.current(blank_db_url) == migrate.head()
    assert _tables(blank_db_url) == MODEL_TABLES | {"alembic_version"}

    done = run("current")
    assert done.returncode == 0, done
    assert migrate.head() in done.stdout
    assert "up to date" in done.stdout

    done = run("check")
    assert done.returncode == 0, done
    assert "no drift" in done.stdout

    _execute(blank_db_url, "DROP INDEX ix_news_articles_symbol_published_at")
    done = run("check")
    assert done.returncode == 1, done
    assert "ix_news_articles_symbol_published_at" in done.stderr

    password = make_url(blank_db_url).password
    if password:  # PostgreSQL: URLs are printed with the password masked
        assert all(password not in output for output in outputs)
        assert "***" in outputs[1]


@pytest.mark.integration
def test_cli_defaults_to_the_settings_url(tmp_path: Path) -> None:
    path = tmp_path / "var" / "marketq.db"
    done = _run("db", "upgrade", env={"MARKETQ_DATABASE_URL": f"sqlite:///{path}"})
    assert done.returncode == 0, done
    assert migrate.current(f"sqlite:///{path}") == migrate.head()


@pytest.mark.integration
def test_cli_check_scratch() -> None:
    done = _run("db", "check", "--scratch")
    assert done.returncode == 0, done
    assert "no drift" in done.stdout


def test_newest_migration_is_what_autogenerate_writes(tmp_path: Path) -> None:
    """The newest script equals a fresh autogenerate of the models against a database at
    the revision before it (formatting and comments aside), and a schema generated from
    nothing renders booleans dialect-neutrally: env.py's rendering hooks produce scripts
    that need no hand edits on either dialect."""
    import ast

    from alembic import command

    shipped = sorted((migrate.MIGRATIONS_DIR / "versions").glob("*.py"))
    newest = shipped[-1]
    newest_id = newest.name.split("_", 1)[0]

    def functions(path: Path) -> dict[str, str]:
        tree = ast.parse(path.read_text())
        return {
            node.name: ast.dump(node)
            for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name in ("upgrade", "downgrade")
        }

    def scratch_scripts(name: str, keep: list[Path]) -> Path:
        scripts = tmp_path / name
        shutil.copytree(migrate.MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("*.pyc"))
        for path in (scripts / "versions").glob("*.py"):
            if path.name not in {k.name for k in keep}:
                path.unlink()
        return scripts

    before = scratch_scripts("before-newest", shipped[:-1])
    url = f"sqlite:///{tmp_path / 'before-newest.db'}"
    config = migrate.alembic_config(url, script_location=before)
    if len(shipped) > 1:
        command.upgrade(config, "head")
    if re.search(r"^HAND_EDITED_BECAUSE = ", newest.read_text(), re.M):
        # A data migration (a rename, a back-fill of existing rows) autogenerate cannot
        # write: the script says why, and applying it must leave exactly the models' schema.
        config = migrate.alembic_config(url)
        command.upgrade(config, "head")
        assert migrate.check(url) == []
    else:
        command.revision(config, message="newest", autogenerate=True, rev_id=newest_id)
        (generated,) = (before / "versions").glob(f"{newest_id}_*.py")
        assert functions(generated) == functions(newest)

    blank = scratch_scripts("from-nothing", [])
    config = migrate.alembic_config(f"sqlite:///{tmp_path / 'blank.db'}", script_location=blank)
    command.revision(config, message="everything", autogenerate=True, rev_id="0001")
    (everything,) = (blank / "versions").glob("0001_*.py")
    assert "sa.false()" in everything.read_text()


def test_0004_keeps_existing_rows_and_names_their_source(blank_db_url: str) -> None:
    """Rows written before provider sources were recorded came from the synthetic provider;
    a news row's outlet moves from ``source`` to ``publisher``."""
    migrate.upgrade(blank_db_url, "0002")
    _execute(
        blank_db_url,
        "INSERT INTO news_articles (article_id, symbol, published_at, headline, summary, "
        "source, url, sentiment, updated_at) VALUES ('n1', 'AAPL', '2026-12-03 15:00:00+00', "
        "'h', 's', 'Example Wire', 'https://example.test/n1', 0.1, '2026-12-03 15:01:00+00')",
    )
    _execute(
        blank_db_url,
        "INSERT INTO quotes (symbol, ts, price, bid, ask, bid_size, ask_size, volume, change, "
        "change_percent, updated_at) VALUES ('AAPL', '2026-12-03 15:00:00+00', 1, 1, 1, 1, 1, "
        "1, 0, 0, '2026-12-03 15:01:00+00')",
    )
    migrate.upgrade(blank_db_url)
    engine = create_db_engine(blank_db_url)
    try:
        with engine.connect() as connection:
            news = connection.exec_driver_sql(
                "SELECT publisher, source, fetched_at FROM news_articles"
            ).one()
            quote = connection.exec_driver_sql("SELECT source FROM quotes").one()
    finally:
        engine.dispose()
    assert tuple(news) == ("Example Wire", "synthetic", None)
    assert tuple(quote) == ("synthetic",)
    assert migrate.check(blank_db_url) == []
