"""Job implementations, registered against the catalog by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from marketq.common.catalog import CATALOG, Catalog
from marketq.common.params import JobParams
from marketq.worker.context import JobContext

JobResult = dict[str, Any]
JobFunction = Callable[[JobContext, Any], JobResult]
F = TypeVar("F", bound=JobFunction)

_IMPLEMENTATIONS: dict[str, JobFunction] = {}


def implements(job_name: str) -> Callable[[F], F]:
    """Register the decorated function as the implementation of a catalog job."""

    def register(function: F) -> F:
        if job_name in _IMPLEMENTATIONS:
            raise ValueError(f"job {job_name!r} already has an implementation")
        _IMPLEMENTATIONS[job_name] = function
        return function

    return register


def implementations() -> Mapping[str, JobFunction]:
    """Every registered implementation (importing the jobs package registers them)."""
    import marketq.worker.jobs  # noqa: F401  (registers by import)

    return dict(_IMPLEMENTATIONS)


class CatalogMismatchError(RuntimeError):
    pass


def check_against_catalog(catalog: Catalog = CATALOG) -> None:
    """Fail unless every catalog job has exactly one implementation and vice versa."""
    found = set(implementations())
    declared = set(catalog)
    problems = []
    if missing := sorted(declared - found):
        problems.append(f"catalog jobs without an implementation: {', '.join(missing)}")
    if extra := sorted(found - declared):
        problems.append(f"implementations of jobs not in the catalog: {', '.join(extra)}")
    if problems:
        raise CatalogMismatchError("; ".join(problems))


__all__ = ["JobParams", "JobResult", "check_against_catalog", "implementations", "implements"]
