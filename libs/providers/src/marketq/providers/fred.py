"""FRED, the St. Louis Fed's economic data (https://fred.stlouisfed.org/docs/api/fred/).

Economic series only: ``fred/series`` for the unit, ``fred/series/observations`` for the
values. FRED answers errors with a non-2xx status and ``{error_code, error_message}``;
a 400 names either the key or the series, which ``_classify`` tells apart.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx

from marketq.providers.adapter import VendorAdapter
from marketq.providers.base import (
    EconomicObservation,
)
from marketq.providers.errors import (
    InvalidKeyError,
    PermanentProviderError,
    UnknownSymbolError,
)
from marketq.providers.http import DEFAULT_TIMEOUT_SECONDS, VendorHttp
from marketq.providers.parsing import optional_float, parse_date
from marketq.providers.quota import Quota

__all__ = ["FRED_SERIES", "FredProvider"]

BASE_URL = "https://api.stlouisfed.org/fred"

# marketq series codes that are not FRED series ids; any other code is passed through.
FRED_SERIES: dict[str, str] = {"CPI": "CPIAUCSL", "REAL_GDP": "GDPC1"}


class FredProvider(VendorAdapter):
    name = "fred"

    def __init__(
        self,
        api_key: str,
        *,
        quota: Quota | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        client: httpx.Client | None = None,
    ) -> None:
        if not api_key:
            raise InvalidKeyError("fred needs an API key", vendor=self.name)
        self._api_key = api_key
        self._http = VendorHttp(
            self.name, api_key=api_key, quota=quota, timeout=timeout, client=client
        )

    def _get(self, path: str, series_id: str, **params: str) -> dict[str, Any]:
        query = {"series_id": series_id, **params, "api_key": self._api_key, "file_type": "json"}
        try:
            body = self._http.get_json(f"{BASE_URL}/{path}", query)
        except PermanentProviderError as exc:
            raise self._classify(exc, series_id) from exc
        if not isinstance(body, dict):
            raise PermanentProviderError(
                f"malformed answer from fred/{path}: {type(body).__name__}", vendor=self.name
            )
        return body

    def _classify(self, error: PermanentProviderError, series_id: str) -> PermanentProviderError:
        message = str(error)
        if "api_key" in message:
            return InvalidKeyError(message, vendor=self.name)
        if "series does not exist" in message:
            return UnknownSymbolError(
                f"fred has no series {series_id!r}: {message}", vendor=self.name
            )
        return error

    def economic_series(self, series: str, start: date, end: date) -> list[EconomicObservation]:
        series_id = FRED_SERIES.get(series, series)
        meta = self._get("series", series_id)
        try:
            unit = str(meta["seriess"][0]["units"])
            observations = self._get(
                "series/observations",
                series_id,
                observation_start=start.isoformat(),
                observation_end=end.isoformat(),
            )["observations"]
        except (KeyError, IndexError, TypeError) as exc:
            raise PermanentProviderError(
                f"malformed answer from fred for {series_id}: missing {exc}", vendor=self.name
            ) from exc
        out = []
        for row in observations:
            value = optional_float(row.get("value"))  # "." marks a missing observation
            period = parse_date(str(row["date"]))
            if value is not None and start <= period <= end:
                out.append(
                    EconomicObservation(series=series, period=period, value=value, unit=unit)
                )
        return out

    def close(self) -> None:
        self._http.close()
