"""Imports of daily bars and positions files (CSV or .xlsx): all rows of a valid file,
or nothing.

The file is read twice, one record at a time: once to validate every row (and hash it),
then, inside one transaction, to write it in batches. Memory stays bounded whatever the
file's size (docs/design.md#streaming-imports).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from marketq.common.db.models import DailyBarRow, DataImport, Portfolio, Position, Upload
from marketq.common.params import DataImportParams
from marketq.worker.context import JobContext
from marketq.worker.errors import PermanentJobError
from marketq.worker.imports.csv_validation import (
    CsvValidationError,
    csv_records,
    decode_lines,
    iter_valid_rows,
    validate_records,
)
from marketq.worker.imports.spreadsheet import spreadsheet_records
from marketq.worker.jobs._rows import write
from marketq.worker.registry import JobResult, implements

CHUNK_BYTES = 64 * 1024
WRITE_BATCH_ROWS = 2000
#: A validate_only run lists this many problems (an import stops at the default 50).
VALIDATE_ONLY_MAX_ERRORS = 1000


def import_file_path(import_dir: str, relative: str, max_bytes: int) -> Path:
    """The file under the import directory, refusing paths that leave it."""
    root = Path(import_dir).resolve()
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root):
        raise PermanentJobError(f"path: {relative!r} is outside the import directory")
    if not candidate.is_file():
        raise PermanentJobError(f"path: no file {relative!r} in the import directory")
    if candidate.stat().st_size > max_bytes:
        raise PermanentJobError(f"path: {relative!r} is larger than {max_bytes} bytes")
    return candidate


class _Source:
    """The file's records, read afresh on every call, hashing the bytes as they go by."""

    def __init__(self, ctx: JobContext, params: DataImportParams) -> None:
        self.params = params
        limit = ctx.settings.import_max_bytes
        self.path: Path | None = None
        self.text = params.content or ""
        if params.path is not None:
            self.path = import_file_path(ctx.settings.import_dir, params.path, limit)
        elif params.upload_id is not None:
            # The upload route bounded its size; it is read once, then streamed like content.
            with ctx.sessions() as session:
                upload = session.get(Upload, params.upload_id)
                if upload is None:
                    raise PermanentJobError(f"upload_id: no upload {params.upload_id!r}")
                self.text = upload.content
        elif len(self.text.encode("utf-8")) > limit:
            raise PermanentJobError(f"content: larger than {limit} bytes")
        # The same positions file imported into two portfolios is two imports.
        self.scope = f"{params.portfolio}\n".encode() if params.portfolio is not None else b""

    @property
    def name(self) -> str:
        if self.params.upload_id is not None:
            return f"upload {self.params.upload_id}"
        return self.params.path or "content"

    def _chunks(self, digest: Any) -> Iterator[bytes]:
        digest.update(self.scope)
        if self.path is None:
            data = self.text.encode("utf-8")
            for start in range(0, len(data), CHUNK_BYTES):
                chunk = data[start : start + CHUNK_BYTES]
                digest.update(chunk)
                yield chunk
            return
        with self.path.open("rb") as file:
            while chunk := file.read(CHUNK_BYTES):
                digest.update(chunk)
                yield chunk

    def records(self, digest: Any) -> Iterator[list[str]]:
        if self.path is not None and self.params.is_spreadsheet:
            for _chunk in self._chunks(digest):
                pass  # the workbook is a zip: hash its bytes, then let openpyxl read it
            return spreadsheet_records(self.path)
        encoding = self.params.encoding or "utf-8-sig"
        lines = decode_lines(self._chunks(digest), encoding)
        return csv_records(lines, self.params.delimiter)


def _portfolio_id(session: Session, name: str, ctx: JobContext) -> int:
    found = session.scalar(select(Portfolio.id).where(Portfolio.name == name))
    if found is not None:
        return found
    portfolio = Portfolio(name=name, created_at=ctx.now(), updated_at=ctx.now())
    session.add(portfolio)
    session.flush()
    return portfolio.id


def _batches(rows: Iterator[Any], size: int) -> Iterator[list[dict[str, Any]]]:
    while batch := [dict(row) for row in islice(rows, size)]:
        yield batch


def _write_rows(
    ctx: JobContext, session: Session, params: DataImportParams, rows: Iterator[Any], total: int
) -> None:
    model: type[DailyBarRow] | type[Position] = DailyBarRow
    extra: dict[str, Any] = {"source": "import"}
    if params.dataset == "positions":
        assert params.portfolio is not None  # the params model guarantees it
        portfolio_id = _portfolio_id(session, params.portfolio, ctx)
        # A positions file is the portfolio's full holdings: replace, don't merge.
        session.execute(delete(Position).where(Position.portfolio_id == portfolio_id))
        model, extra = Position, {"portfolio_id": portfolio_id}
    done = 0
    for batch in _batches(rows, WRITE_BATCH_ROWS):
        write(session, model, [{**row, **extra} for row in batch])
        done += len(batch)
        ctx.progress(done, total)


@implements("data_import")
def data_import(ctx: JobContext, params: DataImportParams) -> JobResult:
    source = _Source(ctx, params)
    first_read = hashlib.sha256()
    max_errors = VALIDATE_ONLY_MAX_ERRORS if params.validate_only else None
    try:
        total = validate_records(
            params.dataset,
            source.records(first_read),
            delimiter=params.delimiter,
            **({"max_errors": max_errors} if max_errors else {}),
        )
    except CsvValidationError as exc:
        if params.validate_only:
            return {
                "dataset": params.dataset,
                "valid": False,
                "errors": [str(error) for error in exc.errors],
                "truncated": exc.truncated,
            }
        # Nothing has been written: validation happens before the transaction opens.
        raise PermanentJobError(f"rejected {source.name}: {exc}") from None
    checksum = first_read.hexdigest()
    if params.validate_only:
        return {"dataset": params.dataset, "valid": True, "rows": total, "checksum": checksum}
    if params.dataset == "positions" and total == 0 and not params.replace_all:
        raise PermanentJobError(
            f"rejected {source.name}: the positions file has no rows, which would remove "
            f"every holding of portfolio {params.portfolio!r}; pass replace_all: true to "
            "do that"
        )

    ctx.progress(0, total)
    second_read = hashlib.sha256()
    with ctx.transaction() as session:
        try:
            rows = iter_valid_rows(params.dataset, source.records(second_read))
            _write_rows(ctx, session, params, rows, total)
        except CsvValidationError as exc:
            raise PermanentJobError(
                f"rejected {source.name}: changed while importing: {exc}"
            ) from None
        if second_read.hexdigest() != checksum:
            # Raising rolls the transaction back: nothing of either version is kept.
            raise PermanentJobError(f"rejected {source.name}: the file changed while importing")
        write(
            session,
            DataImport,
            [
                {
                    "run_id": ctx.run_id,
                    "dataset": params.dataset,
                    "checksum": checksum,
                    "filename": params.path,
                    "rows": total,
                    "status": "imported",
                    "created_at": ctx.as_of,
                }
            ],
        )
    ctx.progress(total, total)
    return {"dataset": params.dataset, "rows": total, "checksum": checksum}
