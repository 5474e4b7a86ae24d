"""Dialect-aware bulk upsert: ``INSERT ... ON CONFLICT (natural key) DO UPDATE``.

Every marketq write goes through :func:`upsert`, so a redelivered task writes the same rows
again and changes nothing but ``updated_at``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from marketq.common.db.models import Base, natural_key

__all__ = ["MAX_ROWS_PER_STATEMENT", "upsert"]

#: Rows per executed batch; with the widest table this stays far below SQLite's variable
#: limit (32766 since 3.32, 999 before) even if the driver folds a batch into one statement.
MAX_ROWS_PER_STATEMENT = 500
_SQLITE_MAX_VARIABLES = 32_766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
_PRESERVED_ON_UPDATE = frozenset({"created_at"})


def _statement(
    dialect: str, table: Table, keys: Sequence[str], update_columns: Sequence[str]
) -> Executable:
    if dialect == "postgresql":
        pg = postgresql.insert(table)
        if not update_columns:
            return pg.on_conflict_do_nothing(index_elements=list(keys))
        return pg.on_conflict_do_update(
            index_elements=list(keys), set_={c: pg.excluded[c] for c in update_columns}
        )
    if dialect == "sqlite":
        lite = sqlite.insert(table)
        if not update_columns:
            return lite.on_conflict_do_nothing(index_elements=list(keys))
        return lite.on_conflict_do_update(
            index_elements=list(keys), set_={c: lite.excluded[c] for c in update_columns}
        )
    raise NotImplementedError(f"upsert does not support the {dialect!r} dialect")


def _chunks(rows: Sequence[dict[str, Any]], size: int) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def upsert(
    session: Session,
    model: type[Base],
    rows: Sequence[Mapping[str, Any]],
    *,
    conflict: Sequence[str] | None = None,
    now: datetime | None = None,
    keep_existing: bool = False,
) -> int:
    """Insert ``rows`` into ``model``'s table, updating the rows whose key already exists.

    * ``rows``: mappings of column name to value; all with the same keys (e.g.
      ``dataclasses.asdict(record)`` plus extra columns).
    * ``conflict``: the key columns; default :func:`natural_key` of ``model``.
    * On conflict every supplied non-key column is overwritten, except ``created_at``, which
      keeps its first value. Columns not supplied keep their stored values (on insert they
      get their defaults). The row must still be insertable: the database checks NOT NULL
      before it looks for a conflict, so required columns must always be supplied.
    * ``updated_at`` and ``created_at``, when the table has them and the rows do not supply
      them, are set to ``now`` (default: the current UTC time).
    * Rows repeating a key within the call are collapsed, the last one winning.
    * ``keep_existing``: insert only the rows whose key is not stored yet; stored rows
      stay as they are (fills gaps without overriding another writer).

    Runs inside the session's transaction; the caller commits. Returns the number of rows
    written (inserted or updated).
    """
    if not rows:
        return 0
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a Table")
    keys = tuple(conflict) if conflict is not None else natural_key(model)
    columns = table.columns
    if now is None:
        now = datetime.now(UTC)

    supplied_set = set(rows[0].keys())
    unknown = supplied_set.difference(columns.keys())
    if unknown:
        raise ValueError(f"{table.name} has no column(s) {sorted(unknown)}")
    missing_keys = set(keys).difference(supplied_set)
    if missing_keys:
        raise ValueError(f"rows for {table.name} lack key column(s) {sorted(missing_keys)}")
    stamp = [c for c in ("updated_at", "created_at") if c in columns and c not in supplied_set]

    deduplicated: dict[tuple[Any, ...], dict[str, Any]] = {}
    for index, row in enumerate(rows):
        if row.keys() != supplied_set:
            raise ValueError(
                f"row {index} for {table.name} has columns {sorted(row.keys())}, "
                f"row 0 has {sorted(supplied_set)}: all rows need the same columns"
            )
        values = dict(row)
        for name in stamp:
            values[name] = now
        deduplicated[tuple(values[k] for k in keys)] = values
    batch = list(deduplicated.values())

    all_columns = supplied_set.union(stamp)
    primary = {c.name for c in table.primary_key}
    update_columns = [
        column.name
        for column in columns
        if (name := column.name) in all_columns
        and name not in keys
        and name not in primary
        and name not in _PRESERVED_ON_UPDATE
        and not keep_existing
    ]

    dialect = session.get_bind().dialect.name
    stmt = _statement(dialect, table, keys, update_columns)
    size = MAX_ROWS_PER_STATEMENT
    if dialect == "sqlite":
        size = max(1, min(size, _SQLITE_MAX_VARIABLES // max(1, len(all_columns))))
    for chunk in _chunks(batch, size):
        session.execute(stmt, list(chunk))
    return len(batch)
