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

import codecs
import contextlib
import csv
import functools
import io
import math
import re
from array import array
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final, Generic, Literal, TypedDict, TypeVar, cast, overload

import numpy as np

from marketq.worker.imports.encodings import undecodable_message

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


# --- the file ---------------------------------------------------------------------------

#: Delimiters a file may use (``delimiter`` parameter); how error messages name them.
DELIMITERS: Final[dict[str, str]] = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}


class UndecodableTextError(Exception):
    """The file's bytes are not text in the expected encoding (raised by a line source)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def _is_blank(record: list[str]) -> bool:
    return all(not value.strip() for value in record)


def _delimiter_hint(dataset: Dataset, header: list[str], delimiter: str) -> str | None:
    """When a one-column header splits into the expected columns on another delimiter."""
    if len(header) != 1:
        return None
    required = set(REQUIRED_COLUMNS[dataset])
    for candidate, name in DELIMITERS.items():
        if candidate == delimiter or candidate not in header[0]:
            continue
        names = {part.strip().lower() for part in header[0].split(candidate)}
        if required <= names:
            return (
                f"the header looks {name}-separated, not {DELIMITERS[delimiter]}-separated; "
                f"pass delimiter: {candidate!r}"
            )
    return None


def _check_header(
    dataset: Dataset, row: int, header: list[str], errors: _Errors, delimiter: str
) -> bool:
    hint = _delimiter_hint(dataset, header, delimiter)
    if hint is not None:
        errors.add(row, None, hint)
        return False
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


class _Keys:
    """Natural keys seen so far, 16 bytes a row: duplicates are found after the scan by
    sorting, so memory does not hold a dict entry (or a row) per line of the file."""

    _DAY_BITS: Final = 22  # date.toordinal() < 2**22 for every year up to 9999

    def __init__(self) -> None:
        self.symbol_ids: dict[str, int] = {}
        self.symbols: list[str] = []
        self.keys = array("q")
        self.rows = array("q")

    def add(self, key: Hashable, row: int) -> None:
        if isinstance(key, tuple):
            symbol, day = key
            code = (self._symbol_id(symbol) << self._DAY_BITS) | day.toordinal()
        else:
            code = self._symbol_id(str(key)) << self._DAY_BITS
        self.keys.append(code)
        self.rows.append(row)

    def _symbol_id(self, symbol: str) -> int:
        found = self.symbol_ids.get(symbol)
        if found is None:
            found = self.symbol_ids[symbol] = len(self.symbols)
            self.symbols.append(symbol)
        return found

    def duplicates(self, dataset: Dataset) -> list[CsvError]:
        """A repeat of a key, reported on each later row, naming the first."""
        if not self.keys:
            return []
        keys = np.frombuffer(self.keys, dtype=np.int64)
        rows = np.frombuffer(self.rows, dtype=np.int64)
        order = np.lexsort((rows, keys))
        sorted_keys = keys[order]
        repeats = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1]) + 1
        found = []
        for position in repeats.tolist():
            first = position
            while first > 0 and sorted_keys[first - 1] == sorted_keys[position]:
                first -= 1
            code = int(sorted_keys[position])
            symbol = self.symbols[code >> self._DAY_BITS]
            if dataset == "daily_bars":
                day = date.fromordinal(code & ((1 << self._DAY_BITS) - 1))
                what = f"same symbol and date: {symbol} {day}"
            else:
                what = f"same symbol: {symbol}"
            message = f"duplicate of row {int(rows[order[first]])} ({what})"
            found.append(CsvError(int(rows[order[position]]), None, message))
        return found


def _scan(
    dataset: Dataset,
    records: Iterable[list[str]],
    build: Callable[[_Row], _Built[RowT]],
    errors: _Errors,
    keys: _Keys | None,
    max_rows: int,
    delimiter: str,
) -> Iterator[RowT]:
    """Each valid row of the file as it is read, recording every problem in ``errors``
    (and each row's key in ``keys`` for the duplicate check). Holds one row at a time."""
    number = 0
    header: list[str] | None = None
    index: dict[str, int] = {}
    data_rows = 0
    try:
        for number, record in enumerate(records, start=1):
            if not record or (not record[0].strip() and _is_blank(record)):
                continue
            if header is None:
                header = [name.strip().lower() for name in record]
                if not _check_header(dataset, number, record, errors, delimiter):
                    return
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
            if key is not None and keys is not None:
                keys.add(key, number)
            if typed is not None:
                yield typed
    except UndecodableTextError as failure:
        errors.add(failure.line, None, failure.message)
        return
    except csv.Error as exc:
        errors.add(number + 1, None, f"malformed CSV: {exc}")
    if header is None:
        if not errors.found:  # nothing but blank lines
            expected = ",".join(REQUIRED_COLUMNS[dataset])
            errors.add(1, None, f"the file is empty; expected a header line: {expected}")
        else:
            errors.add(1, None, "the file has no header line")


_BUILDERS: Final[dict[str, Callable[[_Row], _Built[Any]]]] = {
    "daily_bars": _bar,
    "positions": _position,
}


def _check_arguments(dataset: str, max_errors: int, max_rows: int) -> Dataset:
    if dataset not in REQUIRED_COLUMNS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {list(REQUIRED_COLUMNS)}")
    if max_errors < 1 or max_rows < 1:
        raise ValueError("max_errors and max_rows must be >= 1")
    return cast(Dataset, dataset)


def validate_records(
    dataset: str,
    records: Iterable[list[str]],
    *,
    max_errors: int = MAX_ERRORS,
    max_rows: int = MAX_ROWS,
    delimiter: str = ",",
) -> int:
    """Check a whole file, one record at a time; the number of data rows when it is valid,
    else :class:`CsvValidationError` (see the module docstring for the rules).

    ``records`` are the file's rows as lists of fields (``csv.reader`` output, or a
    spreadsheet's rows as text); nothing but the duplicate check's 16 bytes a row is kept,
    so memory does not grow with the file. ``delimiter`` only shapes the header hint.
    """
    checked = _check_arguments(dataset, max_errors, max_rows)
    errors = _Errors(max_errors)
    keys = _Keys()
    valid = 0
    with contextlib.suppress(_ErrorLimitError):
        for _row in _scan(checked, records, _BUILDERS[checked], errors, keys, max_rows, delimiter):
            valid += 1
    found = sorted([*errors.found, *keys.duplicates(checked)], key=lambda e: e.row)
    if found:
        truncated = errors.truncated or len(found) > max_errors
        raise CsvValidationError(checked, found[:max_errors], truncated=truncated)
    return valid


def iter_valid_rows(
    dataset: str, records: Iterable[list[str]], *, max_rows: int = MAX_ROWS
) -> Iterator[DailyBarRow] | Iterator[PositionRow]:
    """The typed rows of a file :func:`validate_records` accepted, read again one at a time.

    A problem found now (the file changed between the two reads) raises
    :class:`CsvValidationError`; the caller's transaction then writes nothing.
    """
    checked = _check_arguments(dataset, 1, max_rows)
    errors = _Errors(1)
    try:
        for row in _scan(checked, records, _BUILDERS[checked], errors, None, max_rows, ","):
            if errors.found:
                break
            yield row
    except _ErrorLimitError:
        pass
    if errors.found:
        raise CsvValidationError(checked, errors.found, truncated=False)


def csv_records(lines: Iterable[str], delimiter: str = ",") -> Iterator[list[str]]:
    """``csv.reader`` over text lines (each with its line ending), strict quoting."""
    if delimiter not in DELIMITERS:
        raise ValueError(f"delimiter must be one of {sorted(DELIMITERS)}, got {delimiter!r}")
    return csv.reader(lines, delimiter=delimiter, strict=True)


def decode_lines(chunks: Iterable[bytes], encoding: str = "utf-8-sig") -> Iterator[str]:
    """Text lines (split on ``\n`` only, endings kept) from byte chunks in ``encoding``.

    Undecodable bytes raise :class:`UndecodableTextError` at the physical line holding them,
    with what the bytes look like instead (:func:`marketq.worker.imports.encodings.guess`).
    """
    decoder = codecs.getincrementaldecoder(encoding)()
    lines_before = 0
    carry = ""
    head = b""  # the file's first chunk: what the error guesses the encoding from
    utf8 = codecs.lookup(encoding).name in {"utf-8", "utf-8-sig"}
    for chunk in chunks:
        if not head:
            head = chunk
            if utf8 and b"\x00" in chunk:  # never in a CSV; UTF-16 text is full of them
                raise UndecodableTextError(1, undecodable_message(chunk, encoding, None))
        try:
            text = decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            line = lines_before + chunk.count(b"\n", 0, max(exc.start, 0)) + 1
            bad = chunk[exc.start] if 0 <= exc.start < len(chunk) else None
            raise UndecodableTextError(line, undecodable_message(head, encoding, bad)) from None
        parts = (carry + text).split("\n")
        carry = parts.pop()
        lines_before += len(parts)
        for part in parts:
            yield part + "\n"
    try:
        carry += decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise UndecodableTextError(
            lines_before + 1, undecodable_message(head, encoding, None)
        ) from None
    if carry:
        yield carry


def _text_records(text: str | bytes, errors_at: list[CsvError]) -> Iterator[list[str]]:
    if isinstance(text, bytes | bytearray):
        return csv_records(decode_lines([bytes(text)]))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        line = text.count("\n", 0, exc.start) + 1
        errors_at.append(
            CsvError(line, None, "not valid UTF-8 (undecodable character); save as UTF-8")
        )
        return iter(())
    return csv_records(io.StringIO(text.removeprefix("\ufeff"), newline=""))


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
    ``dataset`` or a non-positive limit is a programming error: ``ValueError``. For files
    too big to hold, :func:`validate_records` and :func:`iter_valid_rows` stream instead.
    """
    checked = _check_arguments(dataset, max_errors, max_rows)
    refused: list[CsvError] = []
    records = _text_records(text, refused)
    if refused:
        raise CsvValidationError(checked, refused, truncated=False)
    validate_records(checked, records, max_errors=max_errors, max_rows=max_rows)
    rows = list(iter_valid_rows(checked, _text_records(text, refused), max_rows=max_rows))
    if checked == "daily_bars":
        return ParsedImport("daily_bars", cast(list[DailyBarRow], rows))
    return ParsedImport("positions", cast(list[PositionRow], rows))
