"""Engines and sessions.

* SQLite (local runs): the file's directory is created; every connection gets WAL,
  ``busy_timeout=30000`` and ``foreign_keys=ON`` (several worker processes write one file).
* PostgreSQL: ``pool_pre_ping`` so connections dropped by a restart or a proxy are replaced.

:func:`get_engine` / :func:`get_sessionmaker` cache one engine per URL per process. Engines
are fork safe: after ``fork()`` (Celery's prefork pool) the child drops the pool it inherited
without closing the parent's sockets, and opens its own connections.
"""

from __future__ import annotations

import functools
import os
import threading
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from marketq.common.settings import Settings, get_settings

__all__ = [
    "SQLITE_BUSY_TIMEOUT_MS",
    "create_db_engine",
    "dispose_after_fork",
    "dispose_engines",
    "get_engine",
    "get_sessionmaker",
    "session_factory",
    "sqlite_file",
]

SQLITE_BUSY_TIMEOUT_MS = 30_000

_engines: weakref.WeakSet[Engine] = weakref.WeakSet()
_cache: dict[str, tuple[Engine, sessionmaker[Session]]] = {}
_lock = threading.Lock()


def sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL, or None for in-memory databases."""
    database = url.database
    if not database or database == ":memory:" or url.query.get("mode") == "memory":
        return None
    if database.startswith("file:"):
        database = database[len("file:") :].split("?", 1)[0]
        if not database or database == ":memory:":
            return None
    return Path(database).expanduser()


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def create_db_engine(url: str | URL, **kwargs: Any) -> Engine:
    """A new engine for ``url`` configured for marketq (see the module docstring).

    ``kwargs`` go to :func:`sqlalchemy.create_engine` (e.g. ``poolclass=NullPool``).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_file(parsed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
    else:
        kwargs.setdefault("pool_pre_ping", True)
        engine = create_engine(parsed, **kwargs)
    _engines.add(engine)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine``; objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def _key(url: str | URL) -> str:
    if isinstance(url, str):
        return _key_of_text(url)
    return url.render_as_string(hide_password=False)


@functools.lru_cache(maxsize=64)
def _key_of_text(url: str) -> str:
    # Parsed once per URL: a worker asks for its session factory on every run.
    return make_url(url).render_as_string(hide_password=False)


def _cached(url: str | URL) -> tuple[Engine, sessionmaker[Session]]:
    key = _key(url)
    with _lock:
        entry = _cache.get(key)
        if entry is None:
            engine = create_db_engine(key)
            entry = (engine, session_factory(engine))
            _cache[key] = entry
        return entry


def get_engine(settings: Settings | None = None, *, url: str | URL | None = None) -> Engine:
    """The process-wide engine of ``url`` (default: ``settings.database_url``)."""
    if url is None:
        url = (settings or get_settings()).database_url
    return _cached(url)[0]


def get_sessionmaker(
    settings: Settings | None = None, *, url: str | URL | None = None
) -> sessionmaker[Session]:
    """The process-wide session factory of ``url`` (default: ``settings.database_url``)."""
    if url is None:
        url = (settings or get_settings()).database_url
    return _cached(url)[1]


def dispose_after_fork() -> None:
    """Forget inherited pooled connections in a forked child, without closing them.

    Registered with ``os.register_at_fork``; idempotent, so calling it again from a
    ``worker_process_init`` handler is harmless.
    """
    for engine in list(_engines):
        engine.dispose(close=False)


def dispose_engines() -> None:
    """Close every pooled connection and empty the engine cache (shutdown, tests)."""
    with _lock:
        _cache.clear()
    for engine in list(_engines):
        engine.dispose()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # another thread may have held it at fork time
    dispose_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
