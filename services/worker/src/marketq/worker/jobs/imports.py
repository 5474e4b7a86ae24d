"""CSV imports: all rows of a valid file, or nothing from an invalid one."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from marketq.common.db.models import DailyBarRow, DataImport, Portfolio, Position
from marketq.common.params import DataImportParams
from marketq.worker.context import JobContext
from marketq.worker.errors import PermanentJobError
from marketq.worker.imports.csv_validation import CsvValidationError, parse_csv
from marketq.worker.jobs._rows import write
from marketq.worker.registry import JobResult, implements


def read_import_file(import_dir: str, relative: str, max_bytes: int) -> str:
    """Read a file from under the import directory, refusing paths that leave it."""
    root = Path(import_dir).resolve()
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root):
        raise PermanentJobError(f"path: {relative!r} is outside the import directory")
    if not candidate.is_file():
        raise PermanentJobError(f"path: no file {relative!r} in the import directory")
    if candidate.stat().st_size > max_bytes:
        raise PermanentJobError(f"path: {relative!r} is larger than {max_bytes} bytes")
    try:
        return candidate.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PermanentJobError(f"path: {relative!r} is not UTF-8 ({exc.reason})") from None


def _portfolio_id(session: Session, name: str, ctx: JobContext) -> int:
    found = session.scalar(select(Portfolio.id).where(Portfolio.name == name))
    if found is not None:
        return found
    portfolio = Portfolio(name=name, created_at=ctx.now(), updated_at=ctx.now())
    session.add(portfolio)
    session.flush()
    return portfolio.id


@implements("data_import")
def data_import(ctx: JobContext, params: DataImportParams) -> JobResult:
    limit = ctx.settings.import_max_bytes
    if params.path is not None:
        text = read_import_file(ctx.settings.import_dir, params.path, limit)
    else:
        text = params.content or ""
        if len(text.encode("utf-8")) > limit:
            raise PermanentJobError(f"content: larger than {limit} bytes")
    try:
        parsed = parse_csv(params.dataset, text)
    except CsvValidationError as exc:
        # Nothing has been written: validation happens before the transaction opens.
        raise PermanentJobError(f"rejected {params.path or 'content'}: {exc}") from None

    # The same positions file imported into two portfolios is two imports.
    scope = f"{params.portfolio}\n" if params.portfolio is not None else ""
    checksum = hashlib.sha256((scope + text).encode("utf-8")).hexdigest()
    rows = parsed.rows
    ctx.progress(0, len(rows))
    with ctx.transaction() as session:
        if params.dataset == "daily_bars":
            write(session, DailyBarRow, [{**row, "source": "import"} for row in rows])
        else:
            assert params.portfolio is not None  # the params model guarantees it
            portfolio_id = _portfolio_id(session, params.portfolio, ctx)
            # A positions file is the portfolio's full holdings: replace, don't merge.
            session.execute(delete(Position).where(Position.portfolio_id == portfolio_id))
            write(session, Position, [{**row, "portfolio_id": portfolio_id} for row in rows])
        write(
            session,
            DataImport,
            [
                {
                    "run_id": ctx.run_id,
                    "dataset": params.dataset,
                    "checksum": checksum,
                    "filename": params.path,
                    "rows": len(rows),
                    "status": "imported",
                    "created_at": ctx.as_of,
                }
            ],
        )
    ctx.progress(len(rows), len(rows))
    return {"dataset": params.dataset, "rows": len(rows), "checksum": checksum}
