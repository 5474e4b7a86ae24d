"""data_import on real-world files (issue 13, defects 5-7): empty positions files, big
files, other encodings and delimiters. In-process on a real migrated database, except
the memory test, which measures a separate process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import openpyxl  # type: ignore[import-untyped]
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from marketq.common.db.engine import create_db_engine
from marketq.common.db.models import DailyBarRow, DataImport, Portfolio, Position
from marketq.common.params import DataImportParams
from marketq.common.scheduling.calendar import MarketCalendar
from marketq.common.settings import Settings
from marketq.providers import SyntheticProvider
from marketq.worker.context import JobContext
from marketq.worker.errors import PermanentJobError
from marketq.worker.jobs import imports
from tests.support.job_context import job_context

ROOT = Path(__file__).resolve().parents[2]
BARS_HEADER = "symbol,date,open,high,low,close,volume"


@pytest.fixture
def import_dir(tmp_path: Path) -> Path:
    path = tmp_path / "imports"
    path.mkdir()
    return path


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_db_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def ctx(engine: Engine, db_url: str, import_dir: Path) -> JobContext:
    calendar = MarketCalendar("XNYS")
    return job_context(
        engine,
        as_of=datetime(2026, 11, 20, 21, 30, tzinfo=UTC),
        provider=SyntheticProvider(seed=0, calendar=calendar),
        calendar=calendar,
        settings=Settings(database_url=db_url, import_dir=str(import_dir)),
        job="data_import",
    )


def holdings(engine: Engine, name: str) -> dict[str, float]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(Position.symbol, Position.quantity)
            .join(Portfolio, Portfolio.id == Position.portfolio_id)
            .where(Portfolio.name == name)
        ).all()
    return dict(rows)


def count(engine: Engine, model: type) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(model)).scalar_one())


# --- 5: a header-only positions file ---------------------------------------------------------


def positions(content: str, **extra: object) -> DataImportParams:
    return DataImportParams(dataset="positions", portfolio="main", content=content, **extra)


def test_a_header_only_positions_file_does_not_empty_the_portfolio(
    ctx: JobContext, engine: Engine
) -> None:
    imports.data_import(ctx, positions("symbol,quantity,cost_basis\nAAPL,10,1500\n"))

    with pytest.raises(PermanentJobError, match=r"no rows.*replace_all: true"):
        imports.data_import(ctx, positions("symbol,quantity,cost_basis\n"))

    assert holdings(engine, "main") == {"AAPL": 10.0}
    assert count(engine, DataImport) == 1


def test_replace_all_true_lets_a_header_only_file_remove_every_holding(
    ctx: JobContext, engine: Engine
) -> None:
    imports.data_import(ctx, positions("symbol,quantity,cost_basis\nAAPL,10,1500\n"))

    result = imports.data_import(ctx, positions("symbol,quantity,cost_basis\n", replace_all=True))

    assert result["rows"] == 0
    assert holdings(engine, "main") == {}


def test_replace_all_belongs_to_positions_only() -> None:
    with pytest.raises(ValueError, match="replace_all"):
        DataImportParams(dataset="daily_bars", content=BARS_HEADER + "\n", replace_all=True)


# --- 7: encodings and delimiters -----------------------------------------------------------

POSITIONS_TEXT = "symbol,quantity,cost_basis\nAAPL,10,1500\nMSFT,5,2000\n"


def test_a_latin_1_file_is_rejected_naming_the_likely_encoding_and_the_parameter(
    ctx: JobContext, import_dir: Path
) -> None:
    (import_dir / "p.csv").write_bytes(
        "symbol,quantity,cost_basis\nAAPL,10,1500\nCAFÉ,1,1\n".encode("latin-1")
    )
    params = DataImportParams(dataset="positions", portfolio="main", path="p.csv")

    with pytest.raises(PermanentJobError) as raised:
        imports.data_import(ctx, params)

    message = str(raised.value)
    assert "not UTF-8" in message and "row 3" in message and "0xc9" in message
    assert "Latin-1" in message and "encoding" in message
    # Decoded as Latin-1 the file reads, and its real problem shows: the symbol.
    with pytest.raises(PermanentJobError, match=r"row 3, column 'symbol'.*'CAFÉ'"):
        imports.data_import(ctx, params.model_copy(update={"encoding": "latin-1"}))


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_utf_16_file_is_detected_and_imports_with_encoding_utf_16(
    ctx: JobContext, engine: Engine, import_dir: Path, codec: str
) -> None:
    (import_dir / "p.csv").write_bytes(POSITIONS_TEXT.encode(codec))
    params = DataImportParams(dataset="positions", portfolio="main", path="p.csv")

    with pytest.raises(PermanentJobError, match=r"not UTF-8.*looks like UTF-16.*encoding"):
        imports.data_import(ctx, params)

    imports.data_import(ctx, params.model_copy(update={"encoding": codec}))
    assert holdings(engine, "main") == {"AAPL": 10.0, "MSFT": 5.0}


def test_an_unknown_encoding_is_refused_by_the_params_model() -> None:
    with pytest.raises(ValueError, match="encoding"):
        DataImportParams(dataset="positions", portfolio="p", content="x", encoding="klingon-8")


@pytest.mark.parametrize(("delimiter", "name"), [(";", "';'"), ("\t", "tab"), ("|", "'|'")])
def test_a_file_with_another_delimiter_gets_one_hint_naming_it(
    ctx: JobContext, engine: Engine, delimiter: str, name: str
) -> None:
    text = POSITIONS_TEXT.replace(",", delimiter)

    with pytest.raises(PermanentJobError) as raised:
        imports.data_import(ctx, positions(text))

    message = str(raised.value)
    assert f"looks {name}-separated" in message and "delimiter" in message
    assert "1 error" in message  # one hint, not one error per missing column
    imports.data_import(ctx, positions(text, delimiter=delimiter))
    assert holdings(engine, "main") == {"AAPL": 10.0, "MSFT": 5.0}


# --- 6: memory -----------------------------------------------------------------------------


def write_bars_file(path: Path, at_least_bytes: int) -> int:
    """A valid daily-bars CSV of at least ``at_least_bytes``; returns its row count."""
    rows = 0
    with path.open("w", encoding="utf-8") as out:
        out.write(BARS_HEADER + ",adj_close\n")
        written = 0
        symbol = 0
        while written < at_least_bytes:
            day = date(1990, 1, 1)
            for _ in range(5000):
                line = f"S{symbol:05d},{day.isoformat()},100.25,105.5,99.75,104.125,123456,104.0\n"
                out.write(line)
                written += len(line)
                rows += 1
                day += timedelta(days=1)
            symbol += 1
    return rows


@pytest.mark.slow
def test_importing_a_20_mb_file_adds_less_than_100_mb_of_peak_rss(
    sqlite_template_path: Path, tmp_path: Path, import_dir: Path
) -> None:
    database = tmp_path / "rss.db"
    shutil.copyfile(sqlite_template_path, database)
    db_url = f"sqlite:///{database}"
    rows = write_bars_file(import_dir / "big.csv", 20_000_000)  # under the 20 MiB default limit
    completed = subprocess.run(
        [sys.executable, "-m", "tests.support.import_rss", db_url, str(import_dir), "big.csv"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    added_kib, imported = (int(v) for v in completed.stdout.split())
    assert imported == rows
    engine = create_db_engine(db_url)
    try:
        assert count(engine, DailyBarRow) == rows + 1  # plus the warm-up row
    finally:
        engine.dispose()
    assert added_kib < 100 * 1024, f"peak RSS grew by {added_kib / 1024:.0f} MiB"


# --- .xlsx and validate_only ---------------------------------------------------------------


def write_workbook(path: Path, rows: list[list[object]]) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    workbook.save(path)


XLSX_BARS: list[list[object]] = [
    ["symbol", "date", "open", "high", "low", "close", "volume"],
    ["AAPL", datetime(2026, 11, 18), 104, 106, 103, 105.25, 1200],
    ["MSFT", date(2026, 11, 19), 400.5, 410, 395, 405, 900.0],
]


def test_an_xlsx_workbook_imports_like_the_same_csv(
    ctx: JobContext, engine: Engine, import_dir: Path
) -> None:
    write_workbook(import_dir / "bars.xlsx", XLSX_BARS)

    result = imports.data_import(ctx, DataImportParams(dataset="daily_bars", path="bars.xlsx"))

    assert result["rows"] == 2
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                DailyBarRow.symbol, DailyBarRow.day, DailyBarRow.close, DailyBarRow.volume
            ).order_by(DailyBarRow.symbol)
        ).all()
    assert rows == [
        ("AAPL", date(2026, 11, 18), 105.25, 1200),
        ("MSFT", date(2026, 11, 19), 405.0, 900),
    ]


def test_an_invalid_xlsx_names_row_and_column_and_writes_nothing(
    ctx: JobContext, engine: Engine, import_dir: Path
) -> None:
    write_workbook(
        import_dir / "bad.xlsx", [*XLSX_BARS, ["NVDA", date(2026, 11, 19), 10, 9, 8, 9.5, 5]]
    )

    with pytest.raises(PermanentJobError, match=r"row 4, column 'high'"):
        imports.data_import(ctx, DataImportParams(dataset="daily_bars", path="bad.xlsx"))
    assert count(engine, DailyBarRow) == 0 and count(engine, DataImport) == 0


def test_a_file_that_is_not_a_workbook_is_refused_clearly(
    ctx: JobContext, import_dir: Path
) -> None:
    (import_dir / "fake.xlsx").write_text("symbol,date\n")
    with pytest.raises(PermanentJobError, match=r"row 1: not a readable .xlsx workbook"):
        imports.data_import(ctx, DataImportParams(dataset="daily_bars", path="fake.xlsx"))


@pytest.mark.parametrize("name", ["bad.csv", "bad.xlsx"])
def test_validate_only_reports_every_problem_and_writes_nothing(
    ctx: JobContext, engine: Engine, import_dir: Path, name: str
) -> None:
    rows: list[list[object]] = [["symbol", "quantity", "cost_basis"]]
    rows += [[f"S{i}", 0, -1] for i in range(60)]  # two errors a row: 120 in all
    if name.endswith(".csv"):
        (import_dir / name).write_text("\n".join(",".join(map(str, r)) for r in rows) + "\n")
    else:
        write_workbook(import_dir / name, rows)
    params = DataImportParams(dataset="positions", portfolio="main", path=name, validate_only=True)

    result = imports.data_import(ctx, params)

    assert result["valid"] is False and result["truncated"] is False
    assert len(result["errors"]) == 120  # more than an import's limit of 50
    assert (
        result["errors"][0] == "row 2, column 'quantity': must not be 0 (leave the row out instead)"
    )
    assert count(engine, Position) == 0 and count(engine, Portfolio) == 0
    assert count(engine, DataImport) == 0


def test_validate_only_of_a_good_file_says_so_and_writes_nothing(
    ctx: JobContext, engine: Engine
) -> None:
    result = imports.data_import(ctx, positions(POSITIONS_TEXT, validate_only=True))
    assert result["valid"] is True and result["rows"] == 2
    assert count(engine, Position) == 0 and count(engine, DataImport) == 0
