"""``POST /api/v1/providers/check`` (admin): one live call to each configured vendor.

The same check as ``marketq providers check``, run by the API process with the API's
settings and keys. The Yahoo adapter's client is not in the API image, so a configured
``yahoo`` is reported as not checkable here (docs/providers.md#the-live-check).
"""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from marketq.api.access import Admin
from marketq.api.state import State
from marketq.common.settings import ProviderName
from marketq.providers.check import check_providers
from marketq.providers.routing import ProviderRegistry

router = APIRouter(prefix="/api/v1", tags=["admin"])


class ProviderCheckResult(BaseModel):
    provider: str
    ok: bool
    reachable: bool
    key_valid: bool | None = Field(description="null when the vendor takes no key.")
    plan_limits: str
    latency_seconds: float | None
    detail: str


class ProviderCheckReport(BaseModel):
    ok: bool = Field(description="Every checked provider answered with a valid key.")
    providers: list[ProviderCheckResult]


@router.post(
    "/providers/check",
    response_model=ProviderCheckReport,
    summary="Check the configured market-data vendors with one live call each",
)
async def check(
    principal: Admin,
    state: State,
    provider: Annotated[ProviderName | None, Query(description="Check only this one.")] = None,
) -> ProviderCheckReport:
    registry = ProviderRegistry(state.settings)
    # Vendor calls block: run them off the event loop.
    results = await to_thread.run_sync(check_providers, registry, provider)
    return ProviderCheckReport(
        ok=all(r.ok for r in results),
        providers=[ProviderCheckResult(**r.as_dict()) for r in results],
    )
