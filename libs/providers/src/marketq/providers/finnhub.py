"""Finnhub (https://finnhub.io/docs/api/economic-calendar): the economic release calendar.

Economic events only: ``calendar/economic?from=&to=`` answers
``{"economicCalendar": [{actual, country, estimate, event, impact, prev, time, unit}]}``
with ``time`` in UTC. Errors come as a non-2xx status with ``{"error": ...}``: 401 for a
bad key, 429 past the plan's rate, 403 for an endpoint the key's plan does not include.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from typing import Any, Final

import httpx

from marketq.providers.adapter import VendorAdapter
from marketq.providers.base import EconomicEvent, Importance
from marketq.providers.errors import InvalidKeyError, PermanentProviderError
from marketq.providers.http import DEFAULT_TIMEOUT_SECONDS, VendorHttp
from marketq.providers.parsing import optional_float
from marketq.providers.quota import Quota

__all__ = ["FinnhubProvider"]

BASE_URL = "https://finnhub.io/api/v1"

_IMPACT: Final[dict[str, Importance]] = {"low": "low", "medium": "medium", "high": "high"}


class FinnhubProvider(VendorAdapter):
    name = "finnhub"

    def __init__(
        self,
        api_key: str,
        *,
        quota: Quota | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        client: httpx.Client | None = None,
    ) -> None:
        if not api_key:
            raise InvalidKeyError("finnhub needs an API key", vendor=self.name)
        # The key goes in Finnhub's X-Finnhub-Token header rather than ?token=, so it never
        # appears in a logged URL or an error message.
        headers = {"X-Finnhub-Token": api_key}
        if client is not None:
            client.headers.update(headers)
        self._http = VendorHttp(
            self.name,
            api_key=api_key,
            quota=quota,
            headers=headers,
            timeout=timeout,
            client=client,
        )

    def _get(self, path: str, **params: str) -> dict[str, Any]:
        try:
            body = self._http.get_json(f"{BASE_URL}/{path}", params)
        except PermanentProviderError as exc:
            raise self._classify(exc, path) from exc
        if not isinstance(body, dict):
            raise PermanentProviderError(
                f"malformed answer from finnhub/{path}: {type(body).__name__}", vendor=self.name
            )
        if "error" in body:  # not documented on a 200, but never data
            raise PermanentProviderError(f"finnhub/{path}: {body['error']}", vendor=self.name)
        return body

    def _classify(self, error: PermanentProviderError, path: str) -> PermanentProviderError:
        message = str(error)
        # A 403 is a valid key on a plan without the endpoint; a new key will not fix it,
        # a plan with access will (InvalidKeyError is the class for both, as for
        # Alpha Vantage's premium endpoints).
        if "HTTP 403" in message:
            return InvalidKeyError(
                f"finnhub: the key's plan has no access to {path} (a premium endpoint; "
                f"it needs a Finnhub plan that includes it): {message}",
                vendor=self.name,
            )
        return error

    def economic_events(self, start: date, end: date) -> list[EconomicEvent]:
        body = self._get("calendar/economic", **{"from": start.isoformat(), "to": end.isoformat()})
        try:
            rows = body["economicCalendar"]
            out = [_event(row) for row in rows]
        except (KeyError, TypeError, ValueError) as exc:
            raise PermanentProviderError(
                f"malformed answer from finnhub/calendar/economic: {type(exc).__name__} {exc}",
                vendor=self.name,
            ) from exc
        except PermanentProviderError as exc:  # a malformed number
            exc.vendor = self.name
            raise
        return [event for event in out if start <= event.scheduled_at.date() <= end]

    def close(self) -> None:
        self._http.close()


def _event(row: dict[str, Any]) -> EconomicEvent:
    scheduled_at = datetime.strptime(str(row["time"]), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    country = str(row["country"]).upper()
    name = str(row["event"]).strip()
    # Finnhub gives events no id: the natural key is what identifies a release, so a
    # re-fetch (with its actual figure filled in) updates the same row. The name is hashed
    # to keep the id short whatever Finnhub calls the event.
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return EconomicEvent(
        event_id=f"finnhub:{country}:{scheduled_at:%Y-%m-%dT%H:%M}Z:{digest}",
        name=name,
        country=country,
        scheduled_at=scheduled_at,
        # Finnhub leaves some events unrated; those count as low importance.
        importance=_IMPACT.get(str(row.get("impact") or "low").lower(), "low"),
        forecast=optional_float(row.get("estimate")),
        previous=optional_float(row.get("prev")),
        actual=optional_float(row.get("actual")),
    )
