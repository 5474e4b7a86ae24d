"""Validation of imported files for the ``data_import`` job."""

from .csv_validation import (
    MAX_ERRORS,
    MAX_ROWS,
    CsvError,
    CsvValidationError,
    DailyBarRow,
    Dataset,
    ParsedImport,
    PositionRow,
    parse_csv,
)

__all__ = [
    "MAX_ERRORS",
    "MAX_ROWS",
    "CsvError",
    "CsvValidationError",
    "DailyBarRow",
    "Dataset",
    "ParsedImport",
    "PositionRow",
    "parse_csv",
]
