"""All-or-nothing parsing and validation of the CSV files the ``data_import`` job loads.

:func:`parse_csv` either returns every row of the file, typed and normalised, ready for
the job's upserts, or raises :class:`CsvValidationError` listing what is wrong (up to
``max_errors`` problems, each naming the row and the column); it never returns part of a
file. It is pure: no database, no file system.

Datasets and their columns (header names are matched case-insensitively, surrounding
spaces ignored; columns may come in any order):

``daily_bars``
    Required ``symbol, date, open, high, low, close, volume``; optional ``adj_close``
    (an absent column or an empty cell means "same as close"). Rows become
    :class:`DailyBarRow` (``date`` is renamed ``day``, the database's column name).
``positions``
    Required ``symbol, quantity, cost_basis``. Rows become :class:`PositionRow`.

Rules, each violation reported as a :class:`CsvError`:

* Text: UTF-8, with or without a byte-order mark (``bytes`` are decoded here; a ``str``
  must not carry undecodable surrogates). An empty file is an error.
* Header: the first non-blank line. Every required column present, no unknown or
  repeated column, no unnamed column; header errors stop the validation there (rows
  cannot be read without a valid header).
* Rows: blank lines (or rows of empty fields) are skipped; every other row has exactly
  one field per header column; fields are stripped of surrounding spaces. At most
  ``max_rows`` (default 1,000,000) data rows. A header with no rows is a valid, empty
  import.
* ``symbol``: upper-cased, must match ``^[A-Z][A-Z0-9.\\-]{0,9}$`` (as the job's
  parameters do).
* ``date``: exactly ``YYYY-MM-DD`` and a real calendar day.
* Numbers: plain decimal notation, optional sign and exponent (``12``, ``-0.5``,
  ``1.2e3``); no thousands separators, ``nan`` or ``inf``; the result must be finite.
* Prices (``open``, ``high``, ``low``, ``close``, ``adj_close``) ``> 0``;
  ``high >= max(open, close)`` and ``low <= min(open, close)`` (together these imply
  ``low <= high``). ``adj_close`` is not compared with the others (dividend and split
  adjustments move it legitimately).
* ``volume``: a whole number ``>= 0`` (``1200``; ``1200.0`` or ``1.2e3`` are accepted
  since spreadsheets write integers that way) and below 2**63.
* ``quantity``: finite and non-zero; negative means a short position, fractions are
  fractional shares. A zero quantity is rejected rather than silently stored: a
  position of nothing is not a position (leave the row out instead).
* ``cost_basis``: finite and ``>= 0`` (zero allowed: gifted or spun-off shares).
* Natural keys are unique within the file: ``(symbol, date)`` for bars, ``symbol`` for
  positions; a repeat is reported on the later row, naming the first.

Row numbers are what a spreadsheet shows: the header is row 1 and every CSV record
(including blank lines, and counting a quoted field spanning several lines as one row)
is one row. Invalid UTF-8 in ``bytes`` input is reported at the physical line holding
the bad byte.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import math
import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Final, Generic, Literal, TypedDict, TypeVar, overload

Dataset = Literal["daily_bars", "positions"]

MAX_ROWS: Final = 1_000_000
MAX_ERRORS: Final = 50
#: How many errors ``str(CsvValidationError)`` spells out; all are in ``.errors``.
ERRORS_IN_MESSAGE: Final = 10

REQUIRED_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "daily_bars": ("symbol", "date", "open", "high", "low", "close", "volume"),
    "positions": ("symbol", "quantity", "cost_basis"),
}
OPTIONAL_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "daily_bars": ("adj_close",),
    "positions": (),
}

SYMBOL_PATTERN: Final = re.compile(r"[A-Z][A-Z0-9.\-]{0,9}")
_WHOLE: Final = re.compile(r"\+?\d+")
_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_MAX_VOLUME: Final = 2**63 - 1
_EXACT_FLOAT_INT: Final = 2**53


class DailyBarRow(TypedDict):
    symbol: str
    day: date
    open: float
    high: float
    low: float
    close: float
    adj_close: float
    volume: int


class PositionRow(TypedDict):
    symbol: str
    quantity: float
    cost_basis: float


RowT = TypeVar("RowT", DailyBarRow, PositionRow)


@dataclass(frozen=True, slots=True)
class ParsedImport(Generic[RowT]):
    """A whole, valid file: its rows in file order."""

    dataset: Dataset
    rows: list[RowT]


@dataclass(frozen=True, slots=True)
class CsvError:
    """One problem: ``row`` as a spreadsheet numbers it (header = 1), ``column`` by name."""

    row: int
    column: str | None
    message: str

    def __str__(self) -> str:
        where = (
            f"row {self.row}" if self.column is None else f"row {self.row}, column '{self.column}'"
        )
        return f"{where}: {self.message}"


class CsvValidationError(ValueError):
    """The file was rejected; nothing in it may be imported.

    ``errors`` holds up to ``max_errors`` problems in file order; ``truncated`` is true
    when validation stopped because there were more.
    """

    def __init__(self, dataset: str, errors: Sequence[CsvError], *, truncated: bool) -> None:
        self.dataset = dataset
        self.errors: tuple[CsvError, ...] = tuple(errors)
        self.truncated = truncated
        super().__init__(self._message())

    def _message(self) -> str:
        count = len(self.errors)
        summary = f"{count} error{'' if count == 1 else 's'}"
        if self.truncated:
            summary = f"more than {summary} (validation stopped at {count})"
        lines = [f"{self.dataset} CSV rejected, nothing imported: {summary}"]
        lines += [f"  {error}" for error in self.errors[:ERRORS_IN_MESSAGE]]
        if count > ERRORS_IN_MESSAGE:
            lines.append(f"  ... {count - ERRORS_IN_MESSAGE} more listed in .errors")
        return "\n".join(lines)


class _ErrorLimitError(Exception):
    pass


class _FieldError(Exception):
    pass


@dataclass(slots=True)
class _Errors:
    limit: int
    found: list[CsvError] = field(default_factory=list)
    truncated: bool = False

    def add(self, row: int, column: str | None, message: str) -> None:
        if len(self.found) >= self.limit:
            self.truncated = True
            raise _ErrorLimitError
        self.found.append(CsvError(row, column, message))


# --- field parsers: return the value or raise _FieldError(message) ----------------------


_EMPTY: Final = "is empty; a value is required"


def _required(raw: str) -> str:
    if not raw:
        raise _FieldError(_EMPTY)
    return raw


@functools.lru_cache(maxsize=65_536)  # files repeat symbols and dates on every row
def _valid_symbol(raw: str) -> str | None:
    symbol = raw.upper()
    return symbol if SYMBOL_PATTERN.fullmatch(symbol) is not None else None


@functools.lru_cache(maxsize=65_536)
def _valid_day(raw: str) -> date | None:
    if _DATE.fullmatch(raw) is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        return None


def _symbol(raw: str) -> str:
    symbol = _valid_symbol(_required(raw))
    if symbol is None:
        raise _FieldError(
            f"{raw!r} is not a valid symbol (1-10 characters: a letter, then letters, "
            "digits, '.' or '-')"
        )
    return symbol


def _day(raw: str) -> date:
    day = _valid_day(_required(raw))
    if day is not None:
        return day
    if _DATE.fullmatch(raw) is None:
        raise _FieldError(f"{raw!r} is not a date in the form YYYY-MM-DD")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _FieldError(f"{raw!r} is not a valid calendar date") from None


def _number(raw: str) -> float:
    # float() accepts exactly our notation plus "_" digit separators, non-ASCII digits,
    # and nan/inf spellings; the first two are refused here, the last by isfinite.
    try:
        value = float(raw)
    except ValueError:
        raise _FieldError(f"{raw!r} is not a number" if raw else _EMPTY) from None
    if "_" in raw or not raw.isascii():
        raise _FieldError(f"{raw!r} is not a number")
    if not math.isfinite(value):
        raise _FieldError(f"{raw!r} is not a finite number")
    return value


def _price(raw: str) -> float:
    value = _number(raw)
    if value <= 0:
        raise _FieldError(f"must be > 0, got {raw}")
    return value


def _volume(raw: str) -> int:
    if _WHOLE.fullmatch(_required(raw)) is not None:
        volume = int(raw)
    else:
        value = _number(raw)
        if value < 0:
            raise _FieldError(f"must be >= 0, got {raw}")
        if not value.is_integer() or value >= _EXACT_FLOAT_INT:
            raise _FieldError(f"must be a whole number of shares, got {raw}")
        volume = int(value)
    if volume > _MAX_VOLUME:
        raise _FieldError(f"{raw} is too large (max {_MAX_VOLUME})")
    return volume


def _quantity(raw: str) -> float:
    value = _number(raw)
    if value == 0:
        raise _FieldError("must not be 0 (leave the row out instead)")
    return value


def _cost_basis(raw: str) -> float:
    value = _number(raw)
    if value < 0:
        raise _FieldError(f"must be >= 0, got {raw}")
    return value


# --- per-dataset row builders ------------------------------------------------------------

T = TypeVar("T")


class _Row:
    """One data row's stripped fields; parses each, recording problems as it goes."""

    __slots__ = ("errors", "index", "number", "values")

    def __init__(
        self, number: int, values: list[str], index: dict[str, int], errors: _Errors
    ) -> None:
        self.number = number
        self.values = values
        self.index = index
        self.errors = errors

    def raw(self, column: str) -> str:
        """The field's text; "" for an optional column the file does not have."""
        position = self.index.get(column)
        return "" if position is None else self.values[position]

    def get(self, column: str, parse: Callable[[str], T]) -> T | None:
        try:
            return parse(self.values[self.index[column]])
        except _FieldError as problem:
            self.errors.add(self.number, column, str(problem))
            return None


#: What a row builder returns: the row's natural key when symbol (and date) parsed, and
#: the typed row when every field did.
_Built = tuple[Hashable | None, RowT | None]


def _fmt(value: float) -> str:
    return f"{value:g}"


def _bar(row: _Row) -> _Built[DailyBarRow]:
    symbol = row.get("symbol", _symbol)
    day = row.get("date", _day)
    open_ = row.get("open", _price)
    high = row.get("high", _price)
    low = row.get("low", _price)
    close = row.get("close", _price)
    # An absent adj_close column or an empty cell means "same as close".
    adj_close = row.get("adj_close", _price) if row.raw("adj_close") else close
    volume = row.get("volume", _volume)
    if open_ is not None and high is not None and low is not None and close is not None:
        if high < max(open_, close):
            detail = f"high {_fmt(high)}, open {_fmt(open_)}, close {_fmt(close)}"
            row.errors.add(row.number, "high", f"must be >= max(open, close) ({detail})")
            high = None
        if low > min(open_, close):
            detail = f"low {_fmt(low)}, open {_fmt(open_)}, close {_fmt(close)}"
            row.errors.add(row.number, "low", f"must be <= min(open, close) ({detail})")
            low = None
    if (
        symbol is None
        or day is None
        or open_ is None
        or high is None
        or low is None
        or close is None
        or adj_close is None
        or volume is None
    ):
        return (None if symbol is None or day is None else (symbol, day)), None
    bar: DailyBarRow = {
        "symbol": symbol,
        "day": day,
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "adj_close": adj_close,
        "volume": volume,
    }
    return (symbol, day), bar


def _position(row: _Row) -> _Built[PositionRow]:
    symbol = row.get("symbol", _symbol)
    quantity = row.get("quantity", _quantity)
    cost_basis = row.get("cost_basis", _cost_basis)
    if symbol is None or quantity is None or cost_basis is None:
        return symbol, None
    return symbol, {"symbol": symbol, "quantity": quantity, "cost_basis": cost_basis}


def _describe_key(key: Hashable) -> str:
    if isinstance(key, tuple):
        symbol, day = key
        return f"same symbol and date: {symbol} {day}"
    return f"same symbol: {key}"


# --- the file ---------------------------------------------------------------------------


def _decode(text: str | bytes, errors: _Errors) -> str | None:
    if isinstance(text, bytes | bytearray):
        try:
            return bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = text.count(b"\n", 0, exc.start) + 1
            errors.add(line, None, f"not valid UTF-8 (byte 0x{text[exc.start]:02x}); save as UTF-8")
            return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        line = text.count("\n", 0, exc.start) + 1
        errors.add(line, None, "not valid UTF-8 (undecodable character); save as UTF-8")
        return None
    return text.removeprefix("\ufeff")


def _is_blank(record: list[str]) -> bool:
    return all(not value.strip() for value in record)


def _check_header(dataset: Dataset, row: int, header: list[str], errors: _Errors) -> bool:
    required = REQUIRED_COLUMNS[dataset]
    known = required + OPTIONAL_COLUMNS[dataset]
    first_seen: dict[str, int] = {}
    ok = True
    for position, raw in enumerate(header, start=1):
        name = raw.strip().lower()
        if not name:
            errors.add(row, None, f"column {position} has no name in the header")
            ok = False
        elif name in first_seen:
            errors.add(row, name, f"duplicate column (columns {first_seen[name]} and {position})")
            ok = False
        elif name not in known:
            errors.add(row, raw.strip(), f"unknown column; expected {', '.join(known)}")
            ok = False
        else:
            first_seen[name] = position
    for name in required:
        if name not in first_seen:
            errors.add(
                row,
                name,
                "required column is missing (the first line must be the header: "
                f"{','.join(required)})",
            )
            ok = False
    return ok


def _rows(
    dataset: Dataset,
    text: str | bytes,
    build: Callable[[_Row], _Built[RowT]],
    errors: _Errors,
    max_rows: int,
) -> list[RowT]:
    decoded = _decode(text, errors)
    if decoded is None:
        return []
    if not decoded.strip():
        expected = ",".join(REQUIRED_COLUMNS[dataset])
        errors.add(1, None, f"the file is empty; expected a header line: {expected}")
        return []
    reader = csv.reader(io.StringIO(decoded, newline=""), strict=True)
    number = 0
    rows: list[RowT] = []
    first_row_of: dict[Hashable, int] = {}
    header: list[str] | None = None
    index: dict[str, int] = {}
    data_rows = 0
    try:
        for number, record in enumerate(reader, start=1):
            if not record or (not record[0].strip() and _is_blank(record)):
                continue
            if header is None:
                header = [name.strip().lower() for name in record]
                if not _check_header(dataset, number, record, errors):
                    return []
                index = {name: position for position, name in enumerate(header)}
                continue
            data_rows += 1
            if data_rows > max_rows:
                errors.add(number, None, f"more than {max_rows:,} data rows; split the file")
                break
            if len(record) != len(header):
                errors.add(
                    number,
                    None,
                    f"expected {len(header)} fields (one per header column), found {len(record)}",
                )
                continue
            key, typed = build(_Row(number, [v.strip() for v in record], index, errors))
            if key is not None:
                first = first_row_of.setdefault(key, number)
                if first != number:
                    errors.add(number, None, f"duplicate of row {first} ({_describe_key(key)})")
                    continue
            if typed is not None and not errors.found:  # after a failure rows are only checked
                rows.append(typed)
    except csv.Error as exc:
        errors.add(number + 1, None, f"malformed CSV: {exc}")
    if header is None:
        errors.add(1, None, "the file has no header line")
    return rows


def _validate(
    dataset: Dataset,
    text: str | bytes,
    build: Callable[[_Row], _Built[RowT]],
    max_errors: int,
    max_rows: int,
) -> list[RowT]:
    errors = _Errors(max_errors)
    rows: list[RowT] = []
    with contextlib.suppress(_ErrorLimitError):
        rows = _rows(dataset, text, build, errors, max_rows)
    if errors.found:
        raise CsvValidationError(dataset, errors.found, truncated=errors.truncated)
    return rows


@overload
def parse_csv(
    dataset: Literal["daily_bars"],
    text: str | bytes,
    *,
    max_errors: int = ...,
    max_rows: int = ...,
) -> ParsedImport[DailyBarRow]: ...
@overload
def parse_csv(
    dataset: Literal["positions"],
    text: str | bytes,
    *,
    max_errors: int = ...,
    max_rows: int = ...,
) -> ParsedImport[PositionRow]: ...
@overload
def parse_csv(
    dataset: str,
    text: str | bytes,
    *,
    max_errors: int = ...,
    max_rows: int = ...,
) -> ParsedImport[DailyBarRow] | ParsedImport[PositionRow]: ...
def parse_csv(
    dataset: str,
    text: str | bytes,
    *,
    max_errors: int = MAX_ERRORS,
    max_rows: int = MAX_ROWS,
) -> ParsedImport[DailyBarRow] | ParsedImport[PositionRow]:
    """Every row of ``text`` as typed dicts, or :class:`CsvValidationError` (see module doc).

    ``text`` is the file's content, as ``str`` or UTF-8 ``bytes`` (a BOM is dropped).
    Validation collects up to ``max_errors`` problems before giving up. An unknown
    ``dataset`` or a non-positive limit is a programming error: ``ValueError``.
    """
    if dataset not in REQUIRED_COLUMNS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {list(REQUIRED_COLUMNS)}")
    if max_errors < 1 or max_rows < 1:
        raise ValueError("max_errors and max_rows must be >= 1")
    if dataset == "daily_bars":
        bars = _validate("daily_bars", text, _bar, max_errors, max_rows)
        return ParsedImport("daily_bars", bars)
    positions = _validate("positions", text, _position, max_errors, max_rows)
    return ParsedImport("positions", positions)
