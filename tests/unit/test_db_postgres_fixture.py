"""The PostgreSQL test plugin itself: a private cluster, scratch databases, clear failures."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from tests.fixtures.ports import free_port
from tests.fixtures.postgres import (
    ENV_URL,
    SharedMigratedDatabase,
    find_postgres_bindir,
    normalize_url,
    scratch_database,
)

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.postgres


def _scalar(url: str, sql: str) -> object:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql)).scalar()
    finally:
        engine.dispose()


def _databases(admin_url: str) -> set[str]:
    engine = create_engine(admin_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return set(connection.execute(text("SELECT datname FROM pg_database")).scalars())
    finally:
        engine.dispose()


@pytest.mark.skipif(bool(os.environ.get(ENV_URL)), reason=f"{ENV_URL} points at a given server")
def test_private_cluster_is_ours(postgres_admin_url: str) -> None:
    url = make_url(postgres_admin_url)
    assert url.host == "127.0.0.1"
    assert url.port != 5432
    data_directory = str(_scalar(postgres_admin_url, "SHOW data_directory"))
    assert "marketq-pg-" in data_directory
    assert _scalar(postgres_admin_url, "SHOW fsync") == "off"
    assert _scalar(postgres_admin_url, "SHOW listen_addresses") == "127.0.0.1"
    if os.geteuid() == 0:  # PostgreSQL refuses root: the cluster runs as `postgres`
        assert Path(data_directory).stat().st_uid == pwd.getpwnam("postgres").pw_uid
    # The server is real: a password is required over TCP.
    with pytest.raises(Exception, match="password"):
        _scalar(url.set(password="wrong").render_as_string(hide_password=False), "SELECT 1")


def test_postgres_url_is_an_empty_database(postgres_url: str) -> None:
    assert make_url(postgres_url).database.startswith("marketq_test")  # type: ignore[union-attr]
    tables = _scalar(
        postgres_url, "SELECT count(*) FROM information_schema.tables WHERE table_schema='public'"
    )
    assert tables == 0


def test_scratch_database_is_created_and_dropped(postgres_admin_url: str) -> None:
    """The path taken with MARKETQ_TEST_POSTGRES_URL: a unique database on a given server."""
    with scratch_database(postgres_admin_url) as url:
        name = make_url(url).database
        assert name in _databases(postgres_admin_url)
        engine = create_engine(url)  # left open on purpose: dropping must still work
        with engine.connect() as connection:
            assert connection.execute(text("SELECT current_database()")).scalar() == name
    assert name not in _databases(postgres_admin_url)
    engine.dispose()


def test_shared_database_is_emptied_and_rebuilt(
    postgres_admin_url: str, postgres_template_name: str
) -> None:
    shared = SharedMigratedDatabase(postgres_admin_url, postgres_template_name)
    try:
        url = shared.reset()
        engine = create_engine(url, poolclass=NullPool)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO portfolios (name, base_currency, created_at, updated_at) "
                    "VALUES ('p', 'USD', now(), now())"
                )
            )
        shared.reset()
        assert _scalar(url, "SELECT count(*) FROM portfolios") == 0

        with engine.begin() as connection:
            connection.execute(text("DROP INDEX ix_task_runs_state"))
        shared.reset()
        assert _scalar(url, "SELECT count(*) FROM pg_indexes WHERE indexname='ix_task_runs_state'")
        engine.dispose()
    finally:
        shared.close()


def test_normalize_url_picks_psycopg() -> None:
    assert normalize_url("postgresql://u:p@h:1/d") == "postgresql+psycopg://u:p@h:1/d"
    assert normalize_url("postgresql+psycopg://u@h/d") == "postgresql+psycopg://u@h/d"


def test_find_postgres_bindir_prefers_the_newest(tmp_path: Path) -> None:
    for version in ("9.6", "15", "13"):
        bindir = tmp_path / version / "bin"
        bindir.mkdir(parents=True)
        (bindir / "initdb").touch()
        (bindir / "postgres").touch()
    (tmp_path / "16" / "bin").mkdir(parents=True)  # incomplete: no binaries
    pattern = (str(tmp_path / "*" / "bin"),)
    assert find_postgres_bindir(pattern, use_path=False) == tmp_path / "15" / "bin"
    assert find_postgres_bindir((str(tmp_path / "none" / "*"),), use_path=False) is None


def test_free_port_is_bindable() -> None:
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


@pytest.mark.integration
def test_missing_binaries_fail_with_install_hint(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            """
            import tests.fixtures.postgres as pg

            pg.BIN_GLOBS = ("/nonexistent/postgresql/*/bin",)
            pytest_plugins = ["tests.fixtures.postgres"]
            """
        )
    )
    (tmp_path / "test_needs_pg.py").write_text("def test_it(postgres_url):\n    pass\n")
    env = {k: v for k, v in os.environ.items() if k != ENV_URL}
    env |= {"PATH": str(tmp_path), "PYTHONPATH": str(REPO)}
    # Run outside the repo's pytest config, so its `-p no:cloudcoil` is repeated here: that
    # package registers a pytest plugin whose import fails without its optional extras.
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:cloudcoil"]
    done = subprocess.run(
        [*argv, str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "1 error" in output, output
    assert "install Debian's `postgresql` package" in output
