"""CSV imports are all-or-nothing: typed rows for a good file, located errors otherwise."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from marketq.worker.imports.csv_validation import (
    CsvError,
    CsvValidationError,
    ParsedImport,
    parse_csv,
)

BARS_HEADER = "symbol,date,open,high,low,close,volume"
POSITIONS_HEADER = "symbol,quantity,cost_basis"


def csv_text(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def rejected(dataset: str, text: str | bytes, **limits: int) -> list[CsvError]:
    with pytest.raises(CsvValidationError) as caught:
        parse_csv(dataset, text, **limits)
    return list(caught.value.errors)


def where(errors: list[CsvError]) -> list[tuple[int, str | None]]:
    return [(e.row, e.column) for e in errors]


# --- good files ----------------------------------------------------------------------------


def test_daily_bars_parse_to_typed_rows() -> None:
    parsed = parse_csv(
        "daily_bars",
        csv_text(
            BARS_HEADER + ",adj_close",
            "AAPL,2024-01-02,187.15,188.44,183.89,185.64,82488700,184.53",
            "brk.b,2024-01-02,362.0,364.5,360.1,363.2,3500000,",
        ),
    )
    assert parsed == ParsedImport(
        "daily_bars",
        [
            {
                "symbol": "AAPL",
                "day": date(2024, 1, 2),
                "open": 187.15,
                "high": 188.44,
                "low": 183.89,
                "close": 185.64,
                "adj_close": 184.53,
                "volume": 82488700,
            },
            {
                "symbol": "BRK.B",  # normalised to upper case
                "day": date(2024, 1, 2),
                "open": 362.0,
                "high": 364.5,
                "low": 360.1,
                "close": 363.2,
                "adj_close": 363.2,  # empty cell: same as close
                "volume": 3500000,
            },
        ],
    )
    assert type(parsed.rows[0]["volume"]) is int


def test_adj_close_column_is_optional_and_columns_may_come_in_any_order() -> None:
    parsed = parse_csv(
        "daily_bars",
        csv_text(" Close , Date,SYMBOL,volume,low,high,open", "10.5,2024-05-31,msft,100,9.5,11,10"),
    )
    (row,) = parsed.rows
    assert row["symbol"] == "MSFT"
    assert (row["open"], row["high"], row["low"], row["close"], row["adj_close"]) == (
        10.0,
        11.0,
        9.5,
        10.5,
        10.5,
    )


def test_positions_parse_to_typed_rows() -> None:
    parsed = parse_csv(
        "positions",
        csv_text(POSITIONS_HEADER, "AAPL,150,25000.50", "TSLA,-20,0", "VOO,0.125,52.1"),
    )
    assert parsed.dataset == "positions"
    assert parsed.rows == [
        {"symbol": "AAPL", "quantity": 150.0, "cost_basis": 25000.5},
        {"symbol": "TSLA", "quantity": -20.0, "cost_basis": 0.0},  # short, gifted shares
        {"symbol": "VOO", "quantity": 0.125, "cost_basis": 52.1},  # fractional shares
    ]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("\ufeff" + csv_text(POSITIONS_HEADER, "AAPL,1,2"), id="str-with-bom"),
        pytest.param(("\ufeff" + csv_text(POSITIONS_HEADER, "AAPL,1,2")).encode(), id="bytes-bom"),
        pytest.param(csv_text(POSITIONS_HEADER, "AAPL,1,2").encode(), id="bytes-no-bom"),
        pytest.param("symbol,quantity,cost_basis\r\nAAPL,1,2\r\n", id="crlf"),
        pytest.param("symbol,quantity,cost_basis\nAAPL,1,2", id="no-final-newline"),
        pytest.param(
            csv_text("", POSITIONS_HEADER, "", "AAPL , 1 , 2", ",,", ""), id="blank-lines"
        ),
        pytest.param(csv_text(POSITIONS_HEADER, '"AAPL","1","2"'), id="quoted"),
    ],
)
def test_encoding_and_layout_variants_parse_the_same(text: str | bytes) -> None:
    rows = parse_csv("positions", text).rows
    assert rows == [{"symbol": "AAPL", "quantity": 1.0, "cost_basis": 2.0}]


def test_header_only_file_is_a_valid_import_of_nothing() -> None:
    assert parse_csv("daily_bars", csv_text(BARS_HEADER)).rows == []


@pytest.mark.parametrize(
    ("volume", "expected"),
    [("0", 0), ("+12", 12), ("1200.0", 1200), ("1.2e3", 1200), ("9223372036854775807", 2**63 - 1)],
)
def test_volume_accepts_whole_numbers_however_written(volume: str, expected: int) -> None:
    parsed = parse_csv("daily_bars", csv_text(BARS_HEADER, f"A,2024-01-02,1,1,1,1,{volume}"))
    assert parsed.rows[0]["volume"] == expected


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [("a", "A"), ("BRK-B", "BRK-B"), ("bf.b", "BF.B"), ("ABCDEFGHIJ", "ABCDEFGHIJ"), ("X1", "X1")],
)
def test_valid_symbols(symbol: str, expected: str) -> None:
    assert (
        parse_csv("positions", csv_text(POSITIONS_HEADER, f"{symbol},1,1")).rows[0]["symbol"]
        == expected
    )


# --- each class of bad input is located by row and column ----------------------------------

GOOD_BAR = "AAPL,2024-01-02,10,11,9,10.5,100"


@pytest.mark.parametrize(
    ("line", "column", "message"),
    [
        ("1AAPL,2024-01-02,10,11,9,10.5,100", "symbol", "not a valid symbol"),
        ("TOOLONGNAME,2024-01-02,10,11,9,10.5,100", "symbol", "not a valid symbol"),
        ("AA PL,2024-01-02,10,11,9,10.5,100", "symbol", "not a valid symbol"),
        (",2024-01-02,10,11,9,10.5,100", "symbol", "is empty"),
        ("AAPL,01/02/2024,10,11,9,10.5,100", "date", "YYYY-MM-DD"),
        ("AAPL,20240102,10,11,9,10.5,100", "date", "YYYY-MM-DD"),
        ("AAPL,2023-02-29,10,11,9,10.5,100", "date", "not a valid calendar date"),
        ("AAPL,2024-01-02,ten,11,9,10.5,100", "open", "not a number"),
        ("AAPL,2024-01-02,1_0,11,9,10.5,100", "open", "not a number"),
        ('AAPL,2024-01-02,"1,000",1001,999,1000,100', "open", "not a number"),
        ("AAPL,2024-01-02,10,nan,9,10.5,100", "high", "not a finite number"),
        ("AAPL,2024-01-02,10,inf,9,10.5,100", "high", "not a finite number"),
        ("AAPL,2024-01-02,10,1e999,9,10.5,100", "high", "not a finite number"),
        ("AAPL,2024-01-02,10,11,0,10.5,100", "low", "must be > 0"),
        ("AAPL,2024-01-02,10,11,9,-10.5,100", "close", "must be > 0"),
        ("AAPL,2024-01-02,10,11,9,,100", "close", "is empty"),
        ("AAPL,2024-01-02,10,11,9,10.5,-1", "volume", "must be >= 0"),
        ("AAPL,2024-01-02,10,11,9,10.5,10.5", "volume", "whole number"),
        ("AAPL,2024-01-02,10,11,9,10.5,9223372036854775808", "volume", "too large"),
        ("AAPL,2024-01-02,10,10.4,9,10.5,100", "high", "must be >= max(open, close)"),
        ("AAPL,2024-01-02,9,11,9.5,10.5,100", "low", "must be <= min(open, close)"),
    ],
)
def test_bad_bar_field_is_reported_at_its_row_and_column(
    line: str, column: str, message: str
) -> None:
    errors = rejected("daily_bars", csv_text(BARS_HEADER, GOOD_BAR.replace("01-02", "01-01"), line))
    assert where(errors) == [(3, column)]
    assert message in errors[0].message


def test_adj_close_must_be_a_positive_price_when_given() -> None:
    errors = rejected("daily_bars", csv_text(BARS_HEADER + ",adj_close", GOOD_BAR + ",0"))
    assert where(errors) == [(2, "adj_close")]
    assert "must be > 0" in errors[0].message


def test_low_above_high_is_reported_on_both() -> None:
    errors = rejected("daily_bars", csv_text(BARS_HEADER, "AAPL,2024-01-02,10,9,11,10,100"))
    assert where(errors) == [(2, "high"), (2, "low")]


def test_error_str_names_row_and_column() -> None:
    errors = rejected(
        "daily_bars",
        csv_text(
            BARS_HEADER,
            *[GOOD_BAR.replace("02", f"0{d}") for d in range(3, 8)],
            "AAPL,2024-01-09,10,10.4,9,10.5,100",
        ),
    )
    assert str(errors[0]).startswith("row 7, column 'high': must be >= max(open, close)")
    assert str(CsvError(4, None, "expected 7 fields")) == "row 4: expected 7 fields"


@pytest.mark.parametrize(
    ("line", "column", "message"),
    [
        ("aapl!,1,1", "symbol", "not a valid symbol"),
        ("AAPL,0,1", "quantity", "must not be 0"),
        ("AAPL,-0.0,1", "quantity", "must not be 0"),
        ("AAPL,nan,1", "quantity", "not a finite number"),
        ("AAPL,,1", "quantity", "is empty"),
        ("AAPL,1,-0.01", "cost_basis", "must be >= 0"),
        ("AAPL,1,$100", "cost_basis", "not a number"),
        ("AAPL,1,\uff11\uff10\uff10", "cost_basis", "not a number"),  # full-width "100"
    ],
)
def test_bad_position_field_is_reported_at_its_row_and_column(
    line: str, column: str, message: str
) -> None:
    errors = rejected("positions", csv_text(POSITIONS_HEADER, "MSFT,1,1", line))
    assert where(errors) == [(3, column)]
    assert message in errors[0].message


def test_wrong_number_of_fields() -> None:
    errors = rejected(
        "positions", csv_text(POSITIONS_HEADER, "AAPL,1", "MSFT,1,1", "TSLA,1,1,extra")
    )
    assert where(errors) == [(2, None), (4, None)]
    assert errors[0].message == "expected 3 fields (one per header column), found 2"
    assert "found 4" in errors[1].message


def test_row_numbers_are_spreadsheet_rows() -> None:
    # A quoted field spanning two lines is one spreadsheet row; blank lines still count.
    text = csv_text(POSITIONS_HEADER, '"AAPL",1,"2"', "", 'MSFT,"1', '2",1', "TSLA,0,1")
    errors = rejected("positions", text)
    assert where(errors) == [(4, "quantity"), (5, "quantity")]
    assert errors[0].message == "'1\\n2' is not a number"
    assert errors[1].message.startswith("must not be 0")


# --- header ---------------------------------------------------------------------------------


def test_missing_required_columns_are_each_named_on_row_1() -> None:
    errors = rejected("daily_bars", csv_text("symbol,date,close", "AAPL,2024-01-02,1"))
    assert where(errors) == [(1, "open"), (1, "high"), (1, "low"), (1, "volume")]
    assert "required column is missing" in errors[0].message


def test_unknown_and_duplicate_columns_are_errors() -> None:
    errors = rejected(
        "positions", csv_text("Symbol,quantity,cost_basis,Notes,QUANTITY", "A,1,1,x,1")
    )
    assert where(errors) == [(1, "Notes"), (1, "quantity")]
    assert "unknown column" in errors[0].message
    assert "duplicate column (columns 2 and 5)" in errors[1].message


def test_unnamed_column_is_an_error() -> None:
    errors = rejected("positions", csv_text("symbol,,quantity,cost_basis", "A,,1,1"))
    assert where(errors) == [(1, None)]
    assert "column 2 has no name" in errors[0].message


def test_a_file_without_header_is_reported_on_row_1() -> None:
    errors = rejected("positions", csv_text("AAPL,1,1", "MSFT,2,2"))
    assert {e.row for e in errors} == {1}
    assert "the first line must be the header" in errors[-1].message


@pytest.mark.parametrize("text", ["", "\n\n", "\ufeff", b"", b"\xef\xbb\xbf", "  \r\n"])
def test_empty_file(text: str | bytes) -> None:
    errors = rejected("daily_bars", text)
    assert where(errors) == [(1, None)]
    assert errors[0].message.startswith("the file is empty")


# --- encoding and malformed CSV -------------------------------------------------------------


def test_invalid_utf8_is_reported_at_its_line() -> None:
    data = csv_text(POSITIONS_HEADER, "AAPL,1,1", "CAF\xc9,1,1").encode("latin-1")
    errors = rejected("positions", data)
    assert where(errors) == [(3, None)]
    assert "not valid UTF-8" in errors[0].message


def test_undecodable_surrogates_in_str_are_refused() -> None:
    text = csv_text(POSITIONS_HEADER, "AAPL,1,1\udcff")
    assert where(rejected("positions", text)) == [(2, None)]


def test_unterminated_quote_is_malformed_csv() -> None:
    errors = rejected("positions", csv_text(POSITIONS_HEADER, "AAPL,1,1", '"MSFT,1,1'))
    assert where(errors) == [(3, None)]
    assert errors[0].message.startswith("malformed CSV")


# --- whole-file rules ----------------------------------------------------------------------


def test_duplicate_bar_key_names_both_rows() -> None:
    errors = rejected(
        "daily_bars",
        csv_text(
            BARS_HEADER, GOOD_BAR, "AAPL,2024-01-03,10,11,9,10.5,100", "aapl,2024-01-02,1,1,1,1,1"
        ),
    )
    assert where(errors) == [(4, None)]
    assert errors[0].message == "duplicate of row 2 (same symbol and date: AAPL 2024-01-02)"


def test_duplicate_is_found_even_when_the_first_row_has_other_errors() -> None:
    errors = rejected("positions", csv_text(POSITIONS_HEADER, "AAPL,0,1", "MSFT,1,1", "AAPL,2,1"))
    assert where(errors) == [(2, "quantity"), (4, None)]
    assert errors[1].message == "duplicate of row 2 (same symbol: AAPL)"


def test_same_symbol_on_different_days_is_not_a_duplicate() -> None:
    parsed = parse_csv(
        "daily_bars", csv_text(BARS_HEADER, GOOD_BAR, GOOD_BAR.replace("01-02", "01-03"))
    )
    assert [row["day"] for row in parsed.rows] == [date(2024, 1, 2), date(2024, 1, 3)]


def bar_lines(count: int, first: date = date(2000, 1, 3)) -> list[str]:
    return [
        f"S{i % 40},{first + timedelta(days=i // 40)},100.5,101.25,99.75,100,123456"
        for i in range(count)
    ]


def test_one_bad_row_among_many_good_rejects_the_whole_file() -> None:
    lines = bar_lines(5000)
    lines[3210] = lines[3210].replace("101.25", "99")  # high below open and close
    errors = rejected("daily_bars", csv_text(BARS_HEADER, *lines))
    assert where(errors) == [(3212, "high")]  # data line i sits on row i + 2


def test_errors_are_collected_up_to_max_errors() -> None:
    lines = [f"S{i},1,-1" for i in range(120)]  # every row: a negative cost basis
    with pytest.raises(CsvValidationError) as caught:
        parse_csv("positions", csv_text(POSITIONS_HEADER, *lines), max_errors=25)
    failure = caught.value
    assert [e.row for e in failure.errors] == list(range(2, 27))
    assert failure.truncated
    text = str(failure)
    assert text.startswith("positions CSV rejected, nothing imported: more than 25 errors")
    assert "row 2, column 'cost_basis': must be >= 0, got -1" in text
    assert "row 11, column 'cost_basis'" in text
    assert "row 12, column" not in text  # only the first 10 are spelled out
    assert "15 more listed in .errors" in text


def test_default_limit_is_50_and_exactly_the_limit_is_not_truncated() -> None:
    many = csv_text(POSITIONS_HEADER, *[f"S{i},0,1" for i in range(80)])
    assert len(rejected("positions", many)) == 50
    with pytest.raises(CsvValidationError) as caught:
        parse_csv(
            "positions", csv_text(POSITIONS_HEADER, *[f"S{i},0,1" for i in range(3)]), max_errors=3
        )
    assert len(caught.value.errors) == 3
    assert not caught.value.truncated
    assert str(caught.value).startswith("positions CSV rejected, nothing imported: 3 errors\n")


def test_row_limit() -> None:
    text = csv_text(POSITIONS_HEADER, *[f"S{i},1,1" for i in range(6)])
    assert len(parse_csv("positions", text, max_rows=6).rows) == 6
    errors = rejected("positions", text, max_rows=5)
    assert where(errors) == [(7, None)]
    assert "more than 5 data rows" in errors[0].message


def test_programming_errors_are_not_csv_errors() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'trades'") as caught:
        parse_csv("trades", csv_text(POSITIONS_HEADER))
    assert not isinstance(caught.value, CsvValidationError)
    with pytest.raises(ValueError, match="max_errors"):
        parse_csv("positions", csv_text(POSITIONS_HEADER), max_errors=0)


def test_one_hundred_thousand_rows_parse_whole() -> None:
    # Speed is a benchmark's business, not a test's; this checks a large file is complete.
    parsed = parse_csv("daily_bars", csv_text(BARS_HEADER, *bar_lines(100_000)))
    assert len(parsed.rows) == 100_000
    assert parsed.rows[-1]["day"] == date(2000, 1, 3) + timedelta(days=99_999 // 40)
