"""Deterministic draws: every random number is a ``blake2b`` digest of its inputs.

Digests of ``seed|symbol|...`` (never Python's per-process ``hash()``) make each value a
pure function of its arguments, the same in every process and on every run.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np


def digest(*parts: object) -> bytes:
    text = "|".join(str(p) for p in parts)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def unit(*parts: object) -> float:
    """Uniform in [0, 1) from a digest."""
    return (int.from_bytes(digest(*parts)[:8], "big") >> 11) / float(1 << 53)


def units(*parts: object) -> tuple[float, float]:
    """Two independent uniforms in [0, 1) from one digest."""
    d = digest(*parts)
    scale = float(1 << 53)
    return (int.from_bytes(d[:8], "big") >> 11) / scale, (
        int.from_bytes(d[8:], "big") >> 11
    ) / scale


def normal(*parts: object) -> float:
    """Standard normal from a digest (Box-Muller)."""
    u1, u2 = units(*parts)
    return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)


def choice(items: tuple[str, ...], *parts: object) -> str:
    return items[int(unit(*parts) * len(items))]


def rng(*parts: object) -> np.random.Generator:
    """A numpy ``PCG64`` generator seeded by a digest, for vectorised draws."""
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest(*parts), "big")))


def hex_id(*parts: object) -> str:
    return hashlib.blake2b("|".join(str(p) for p in parts).encode(), digest_size=10).hexdigest()
