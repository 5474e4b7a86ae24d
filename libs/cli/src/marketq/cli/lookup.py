"""Names and ids as people type them: "did you mean" for near misses, and the short run
ids the progress bar prints (the first 8 characters) when they are unique."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from urllib.parse import quote

from marketq.cli.client import EXIT_INVALID, ApiCallError, ApiClient

FULL_ID_LENGTH = 36  # a UUID with its dashes
SHORT_ID_SEARCH = 500  # the newest runs a short id is looked up among


def did_you_mean(name: str, known: Iterable[str]) -> str | None:
    """``did you mean 'x'?`` for the closest known names, or None when none is close."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


def unknown(what: str, name: str, known: Iterable[str]) -> ApiCallError:
    names = sorted(known)
    hint = did_you_mean(name, names) or f"known {what}s: {', '.join(names)}"
    return ApiCallError(EXIT_INVALID, f"unknown {what} {name!r}", hint=hint)


def job_names(client: ApiClient) -> list[str]:
    return [str(job["name"]) for job in client.get("/api/v1/jobs").json()]


def schedule_names(client: ApiClient) -> list[str]:
    body = client.get("/api/v1/schedules", count=1).json()
    return [str(entry["name"]) for entry in body.get("schedules", [])]


def require_job(client: ApiClient, name: str) -> None:
    """Refuse a job name the API does not know, naming the closest ones."""
    known = job_names(client)
    if name not in known:
        raise unknown("job", name, known)


def with_hint(failure: ApiCallError, what: str, name: str, known: Iterable[str]) -> ApiCallError:
    """A 404 for ``name`` with a "did you mean" added when a known name is close."""
    if failure.status == 404 and failure.hint is None:
        failure.hint = did_you_mean(name, known)
    return failure


def resolve_run_id(client: ApiClient, given: str) -> str:
    """The full id of ``given``: itself, or the one recent run whose id starts with it."""
    if len(given) >= FULL_ID_LENGTH:
        return given
    page = client.get("/api/v1/runs", limit=SHORT_ID_SEARCH).json()
    matches = sorted(str(run["run_id"]) for run in page["runs"] if run["run_id"].startswith(given))
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ApiCallError(
            EXIT_INVALID,
            f"no run among the newest {SHORT_ID_SEARCH} has an id starting with {given!r}",
            hint="give the full run id (marketq runs lists them)",
        )
    raise ApiCallError(
        EXIT_INVALID,
        f"{given!r} is the start of {len(matches)} run ids: {', '.join(matches[:5])}",
        hint="give more characters of the id",
    )


def run_path(run_id: str) -> str:
    return f"/api/v1/runs/{quote(run_id, safe='')}"
