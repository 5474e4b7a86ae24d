"""Turning provider records into database rows and writing them idempotently."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy.orm import Session

from marketq.common.db.models import Base, natural_key
from marketq.common.db.upsert import upsert


def as_rows(records: Iterable[Any], **extra: Any) -> list[dict[str, Any]]:
    """Provider dataclasses as column dicts (their field names are the column names)."""
    return [{**asdict(record), **extra} for record in records]


def write(
    session: Session,
    model: type[Base],
    rows: Sequence[dict[str, Any]],
    *,
    keep_existing: bool = False,
) -> int:
    """Upsert on the model's natural key: a redelivered run rewrites the same rows.
    ``keep_existing`` only fills in missing rows (see ``upsert``)."""
    if not rows:
        return 0
    # One statement may not touch a key twice (PostgreSQL refuses); the last row wins.
    key = natural_key(model)
    unique = {tuple(row[c] for c in key): row for row in rows}
    return upsert(session, model, list(unique.values()), keep_existing=keep_existing)
