"""One way to call a vendor's REST API: quota first, then the request, then the answer
classified into the provider error classes (docs/design.md#vendor-adapters).

Transport failures become ``TransientProviderError``; a status is read by
``errors.error_for_status`` (429/408/5xx transient with the vendor's ``Retry-After``,
401/403 an invalid key, 404 an unknown symbol, other 4xx permanent).
A body that is not the JSON (or text) the adapter expects is permanent too: asking again
gets the same malformed answer and spends quota.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from marketq.providers.errors import (
    PermanentProviderError,
    TransientProviderError,
    error_for_status,
)
from marketq.providers.quota import NoQuota, Quota, key_id_for

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "VendorHttp"]

DEFAULT_TIMEOUT_SECONDS = 20.0


class VendorHttp:
    """An httpx client bound to one vendor, its API key id and the shared quota."""

    def __init__(
        self,
        vendor: str,
        *,
        api_key: str | None = None,
        quota: Quota | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        client: httpx.Client | None = None,
    ) -> None:
        self.vendor = vendor
        self.key_id = key_id_for(api_key)
        self._quota = quota or NoQuota()
        self._client = client or httpx.Client(
            timeout=timeout, headers=dict(headers or {}), follow_redirects=True
        )

    def get(self, url: str, params: Mapping[str, str] | None = None) -> httpx.Response:
        """The vendor's 2xx answer to ``GET url``; any other outcome raises a provider error."""
        self._quota.acquire(self.vendor, self.key_id)
        try:
            response = self._client.get(url, params=dict(params or {}))
        except httpx.TimeoutException as exc:
            raise TransientProviderError(
                f"{self.vendor} timed out ({type(exc).__name__})", vendor=self.vendor
            ) from exc
        except httpx.TransportError as exc:
            raise TransientProviderError(
                f"{self.vendor} unreachable ({type(exc).__name__}: {exc})", vendor=self.vendor
            ) from exc
        self.raise_for_status(response)
        return response

    def get_json(self, url: str, params: Mapping[str, str] | None = None) -> Any:
        response = self.get(url, params)
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PermanentProviderError(
                f"malformed answer from {self.vendor}: not JSON ({exc})", vendor=self.vendor
            ) from exc

    def raise_for_status(self, response: httpx.Response) -> None:
        error = error_for_status(
            self.vendor,
            response.status_code,
            retry_after=response.headers.get("Retry-After"),
            detail=_excerpt(response),
        )
        if error is not None:
            raise error

    def close(self) -> None:
        self._client.close()


def _excerpt(response: httpx.Response, limit: int = 200) -> str:
    """The start of a response body for an error message (vendors put the reason there)."""
    text = " ".join(response.text.split())
    return text[:limit] + ("..." if len(text) > limit else "")
