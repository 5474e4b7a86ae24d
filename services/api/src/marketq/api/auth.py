"""API keys with scopes, presented as ``Authorization: Bearer <key>``.

Keys are configured as SHA-256 hashes (MARKETQ_API_KEYS or a mounted file), never in
plain text. The presented key is hashed and compared with every configured hash in
constant time. 401 when no valid key is presented, 403 when the key lacks the scope.
``admin`` implies every scope, ``trigger`` implies ``read``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request

from marketq.api.errors import ApiError
from marketq.common.settings import ApiKey, Scope

IMPLIED: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "trigger": frozenset({"read", "trigger"}),
    "admin": frozenset({"read", "trigger", "admin"}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    scopes: frozenset[str]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh random key and its hash (for `marketq api-key new` and `make up`)."""
    key = "mq_" + secrets.token_urlsafe(32)
    return key, hash_key(key)


class KeyRing:
    def __init__(self, keys: tuple[ApiKey, ...]) -> None:
        self._keys = [
            (bytes.fromhex(k.sha256), k.name, frozenset().union(*(IMPLIED[s] for s in k.scopes)))
            for k in keys
        ]

    def authenticate(self, presented: str) -> Principal | None:
        digest = hashlib.sha256(presented.encode()).digest()
        found: Principal | None = None
        for stored, name, scopes in self._keys:  # no early exit: constant work per key
            if hmac.compare_digest(stored, digest):
                found = Principal(name, scopes)
        return found


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def authenticate(request: Request, ring: KeyRing) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise _unauthorized("missing Authorization: Bearer <api key>")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("Authorization must be 'Bearer <api key>'")
    principal = ring.authenticate(token.strip())
    if principal is None:
        raise _unauthorized("invalid API key")
    return principal


def require(principal: Principal, scope: Scope) -> None:
    if scope not in principal.scopes:
        raise ApiError(403, "forbidden", f"API key {principal.name!r} lacks the {scope!r} scope")
