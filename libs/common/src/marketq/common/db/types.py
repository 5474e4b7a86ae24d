"""Column types shared by every model."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["JSONType", "NaiveDatetimeError", "UTCDateTime"]


class NaiveDatetimeError(ValueError):
    """A naive datetime was bound to a :class:`UTCDateTime` column."""


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back as a timezone-aware UTC datetime.

    * PostgreSQL: ``TIMESTAMP WITH TIME ZONE``; values are converted to UTC before binding.
    * SQLite (no native timestamp type): stored as naive UTC text in SQLAlchemy's fixed-width
      ISO format, so string comparison and ordering match time order.

    Binding a naive datetime raises :class:`NaiveDatetimeError` (wrapped by SQLAlchemy in a
    ``StatementError``): guessing the zone of a naive value is how timestamps silently shift.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"UTCDateTime expects a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise NaiveDatetimeError(
                f"naive datetime {value.isoformat()!r} given for a UTCDateTime column; "
                "pass a timezone-aware datetime (e.g. datetime.now(UTC))"
            )
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # raw text, e.g. from a column created outside the models
            value = datetime.fromisoformat(value)
        if not isinstance(value, datetime):
            raise TypeError(f"UTCDateTime read a {type(value).__name__}, not a datetime")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: JSON documents: ``JSONB`` on PostgreSQL, SQLite's JSON (text) elsewhere.
JSONType: TypeEngine[Any] = JSON().with_variant(JSONB(), "postgresql")
