"""marketq's database layer: models, engines and sessions, upserts, migrations.

* :mod:`.models` — the tables (SQLAlchemy 2 typed models) and :func:`natural_key`.
* :mod:`.engine` — :func:`create_db_engine`, :func:`get_engine`, :func:`get_sessionmaker`.
* :mod:`.upsert` — :func:`upsert`, the one way data is written.
* :mod:`.migrate` — Alembic migrations shipped in this package (``marketq db upgrade``).
"""

from marketq.common.db.engine import (
    create_db_engine,
    dispose_after_fork,
    dispose_engines,
    get_engine,
    get_sessionmaker,
    session_factory,
)
from marketq.common.db.models import DATA_MODELS, Base, RunState, natural_key
from marketq.common.db.types import JSONType, NaiveDatetimeError, UTCDateTime
from marketq.common.db.upsert import upsert

__all__ = [
    "DATA_MODELS",
    "Base",
    "JSONType",
    "NaiveDatetimeError",
    "RunState",
    "UTCDateTime",
    "create_db_engine",
    "dispose_after_fork",
    "dispose_engines",
    "get_engine",
    "get_sessionmaker",
    "natural_key",
    "session_factory",
    "upsert",
]
