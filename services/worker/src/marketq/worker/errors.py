"""Errors a job raises to tell the worker what to do next."""

from __future__ import annotations


class TransientJobError(Exception):
    """Worth retrying with backoff: a provider timeout, a rate limit, a brief outage."""


class PermanentJobError(Exception):
    """Retrying cannot help: bad input discovered at run time (a rejected CSV, say)."""
