"""Symbol identity: real reference data for a few well-known tickers, the word lists that
generate the rest, and the symbol syntax. Identity depends on the symbol only, never on
the seed."""

from __future__ import annotations

import re
from dataclasses import dataclass

from marketq.providers.synthetic.draws import unit

_SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,14}$")


def check_symbol(symbol: str) -> str:
    if not isinstance(symbol, str) or not _SYMBOL_RE.match(symbol):
        raise ValueError(
            f"invalid symbol {symbol!r}: expected upper-case letters, digits, '.' or '-'"
        )
    return symbol


@dataclass(frozen=True, slots=True)
class Known:
    name: str
    sector: str
    industry: str
    exchange: str
    employees: int
    website: str
    dividend_yield: float  # 0.0 for non-payers
    volatility: float | None = None


KNOWN: dict[str, Known] = {
    "AAPL": Known(
        "Apple Inc.", "Technology", "Consumer Electronics", "NASDAQ", 164_000,
        "https://www.apple.com", 0.005, 0.27,
    ),
    "MSFT": Known(
        "Microsoft Corporation", "Technology", "Software - Infrastructure", "NASDAQ", 228_000,
        "https://www.microsoft.com", 0.008, 0.25,
    ),
    "GOOGL": Known(
        "Alphabet Inc.", "Communication Services", "Internet Content & Information", "NASDAQ",
        182_000, "https://abc.xyz", 0.0, 0.30,
    ),
    "GOOG": Known(
        "Alphabet Inc.", "Communication Services", "Internet Content & Information", "NASDAQ",
        182_000, "https://abc.xyz", 0.0, 0.30,
    ),
    "AMZN": Known(
        "Amazon.com, Inc.", "Consumer Cyclical", "Internet Retail", "NASDAQ", 1_550_000,
        "https://www.amazon.com", 0.0, 0.33,
    ),
    "NVDA": Known(
        "NVIDIA Corporation", "Technology", "Semiconductors", "NASDAQ", 36_000,
        "https://www.nvidia.com", 0.0003, 0.50,
    ),
    "META": Known(
        "Meta Platforms, Inc.", "Communication Services", "Internet Content & Information",
        "NASDAQ", 74_000, "https://www.meta.com", 0.004, 0.38,
    ),
    "JPM": Known(
        "JPMorgan Chase & Co.", "Financial Services", "Banks - Diversified", "NYSE", 317_000,
        "https://www.jpmorganchase.com", 0.022, 0.24,
    ),
    "XOM": Known(
        "Exxon Mobil Corporation", "Energy", "Oil & Gas Integrated", "NYSE", 61_000,
        "https://corporate.exxonmobil.com", 0.034, 0.26,
    ),
    "JNJ": Known(
        "Johnson & Johnson", "Healthcare", "Drug Manufacturers - General", "NYSE", 131_900,
        "https://www.jnj.com", 0.031, 0.17,
    ),
    "SPY": Known(
        "SPDR S&P 500 ETF Trust", "Fund", "Exchange Traded Fund", "NYSE Arca", 0,
        "https://www.ssga.com", 0.013, 0.16,
    ),
    "TSLA": Known(
        "Tesla, Inc.", "Consumer Cyclical", "Auto Manufacturers", "NASDAQ", 125_000,
        "https://www.tesla.com", 0.0, 0.55,
    ),
    "NFLX": Known(
        "Netflix, Inc.", "Communication Services", "Entertainment", "NASDAQ", 14_000,
        "https://www.netflix.com", 0.0, 0.40,
    ),
    "BRK.B": Known(
        "Berkshire Hathaway Inc.", "Financial Services", "Insurance - Diversified", "NYSE",
        392_000, "https://www.berkshirehathaway.com", 0.0, 0.18,
    ),
}  # fmt: skip

SECTORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Technology", ("Software - Application", "Semiconductors", "IT Services")),
    ("Healthcare", ("Biotechnology", "Medical Devices", "Diagnostics & Research")),
    ("Financial Services", ("Banks - Regional", "Asset Management", "Capital Markets")),
    ("Consumer Cyclical", ("Specialty Retail", "Restaurants", "Auto Parts")),
    ("Consumer Defensive", ("Packaged Foods", "Beverages - Non-Alcoholic", "Household Products")),
    ("Industrials", ("Aerospace & Defense", "Specialty Industrial Machinery", "Railroads")),
    ("Energy", ("Oil & Gas E&P", "Oil & Gas Midstream")),
    ("Utilities", ("Utilities - Regulated Electric", "Utilities - Renewable")),
    ("Real Estate", ("REIT - Industrial", "REIT - Residential")),
    ("Communication Services", ("Telecom Services", "Entertainment", "Advertising Agencies")),
    ("Basic Materials", ("Specialty Chemicals", "Steel", "Gold")),
)
NAME_HEADS = (
    "Ar", "Bel", "Cor", "Dyn", "El", "Fen", "Gal", "Hal", "Ion", "Jun", "Kel", "Lum", "Mer",
    "Nov", "Or", "Pax", "Quan", "Ryn", "Sol", "Tor", "Ul", "Ver", "Wex", "Xan", "Yor", "Zen",
)  # fmt: skip
NAME_TAILS = ("a", "ex", "ia", "on", "is", "ora", "us", "yn", "ar", "ium", "eon", "ix")
NAME_SUFFIXES = (
    "Corp.", "Inc.", "Holdings, Inc.", "Technologies, Inc.", "Group", "Industries, Inc.",
)  # fmt: skip
CURRENCIES = {
    "XNYS": ("US", "USD"), "XNAS": ("US", "USD"), "XASE": ("US", "USD"), "XTSE": ("CA", "CAD"),
    "XLON": ("GB", "GBP"), "XETR": ("DE", "EUR"), "XFRA": ("DE", "EUR"), "XPAR": ("FR", "EUR"),
    "XAMS": ("NL", "EUR"), "XSWX": ("CH", "CHF"), "XTKS": ("JP", "JPY"), "XHKG": ("HK", "HKD"),
    "XASX": ("AU", "AUD"),
}  # fmt: skip
"""Country and currency of each exchange calendar (default: US, USD)."""


def is_payer(symbol: str) -> bool:
    """Whether the symbol pays dividends (known tickers: as in real life)."""
    known = KNOWN.get(symbol)
    if known is not None:
        return known.dividend_yield > 0
    return unit(symbol, "payer") < 0.6
