"""Rows of an Excel workbook (.xlsx) as the text records the import validation reads.

openpyxl's read-only mode streams the sheet's XML, so memory does not grow with the
workbook. Cells become the text a CSV export would hold: numbers in Python's shortest
round-trip form (a whole float as an integer), dates as YYYY-MM-DD, empty cells as "".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zipfile import BadZipFile

from openpyxl import load_workbook  # type: ignore[import-untyped]

from marketq.worker.imports.csv_validation import UndecodableTextError


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        # A date cell: Excel stores days, openpyxl returns midnight; keep any time shown.
        return value.date().isoformat() if value.time() == datetime.min.time() else str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return str(value).strip()


def spreadsheet_records(path: Path) -> Iterator[list[str]]:
    """The first sheet's rows, in order, one list of cell texts per row."""
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (BadZipFile, KeyError, OSError, ValueError) as exc:
        raise UndecodableTextError(1, f"not a readable .xlsx workbook ({exc})") from None
    width: int | None = None  # the header's: a sheet pads every row to its widest one
    try:
        sheet = workbook.worksheets[0]
        for row in sheet.iter_rows(values_only=True):
            cells = [_text(value) for value in row]
            if width is None:
                while cells and cells[-1] == "":
                    cells.pop()
                width = len(cells) or None
            elif len(cells) > width and not any(cells[width:]):
                cells = cells[:width]
            elif len(cells) < width and any(cells):
                cells += [""] * (width - len(cells))
            yield cells
    finally:
        workbook.close()
