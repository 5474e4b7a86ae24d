"""The dependency every protected route uses: authenticate, check scope, rate-limit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from marketq.api.auth import Principal, authenticate, require
from marketq.api.ratelimit import check_rate, defer
from marketq.api.state import ApiState, State
from marketq.common.settings import Scope


def access(
    scope: Scope, *, count_here: bool = True
) -> Callable[[Request, ApiState], Awaitable[Principal]]:
    """``count_here=False``: the route counts the request in its own Redis script (one
    round trip per request); if it fails before that, the error handlers count it."""

    async def dependency(request: Request, state: State) -> Principal:
        principal = authenticate(request, state.keys)
        require(principal, scope)
        if count_here:
            await check_rate(
                state.redis,
                state.settings.redis_key_prefix,
                principal.name,
                state.settings.api_rate_limit_per_minute,
            )
        else:
            defer(request, principal.name)
        return principal

    return dependency


# Route parameter types: `principal: Trigger` authenticates, checks and rate-limits.
Read = Annotated[Principal, Depends(access("read"))]
Trigger = Annotated[Principal, Depends(access("trigger"))]
Admin = Annotated[Principal, Depends(access("admin"))]
# The single-submit route: its publish script counts the request (see ratelimit.py).
TriggerCountedBySubmit = Annotated[Principal, Depends(access("trigger", count_here=False))]
