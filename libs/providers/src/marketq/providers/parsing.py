"""Reading vendors' loosely typed values: numbers as strings, "None" or "" for missing."""

from __future__ import annotations

from datetime import date
from typing import Any

from marketq.providers.errors import PermanentProviderError

__all__ = ["fiscal_quarter", "optional_float", "optional_int", "parse_date"]

_MISSING = (None, "", "None", "none", "-", ".", "null")


def optional_float(value: Any) -> float | None:
    """A vendor number, or None where the vendor publishes none."""
    if value in _MISSING:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise PermanentProviderError(f"malformed number {value!r} in a vendor answer") from None


def optional_int(value: Any) -> int | None:
    number = optional_float(value)
    return None if number is None else int(number)


def parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value[:10])
    except (TypeError, ValueError):
        raise PermanentProviderError(f"malformed date {value!r} in a vendor answer") from None


def fiscal_quarter(period_end: date) -> str:
    """The period label marketq uses: the calendar quarter the period ended in ("2026Q3")."""
    return f"{period_end.year}Q{(period_end.month - 1) // 3 + 1}"
