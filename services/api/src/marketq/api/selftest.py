"""``marketq-api-selftest``: a health_check through the API on each queue (`helm test`).

The chart's test hook runs it in the API image, which carries no command line of its
own (``marketq`` is for people; docs/design.md#who-uses-what), so it uses only the
standard library. Exit 0 when every run ended SUCCESS; 1 otherwise, saying which.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

FINISHED = frozenset({"SUCCESS", "FAILURE", "REVOKED"})


def call(url: str, key: str, method: str = "GET", body: Any = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 (the API URL)
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def check_queue(api_url: str, key: str, queue: str, timeout: float) -> str:
    """The final state of a health_check run on ``queue`` (or ``TIMEOUT``)."""
    accepted = call(f"{api_url}/api/v1/jobs/health_check/runs", key, "POST", {"queue": queue})
    status_url = api_url + str(accepted["status_url"])
    deadline = time.monotonic() + timeout
    state = str(accepted.get("state", "QUEUED"))
    while state not in FINISHED and time.monotonic() < deadline:
        time.sleep(0.5)
        state = str(call(status_url, key).get("state"))
    return state if state in FINISHED else "TIMEOUT"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="marketq-api-selftest",
        description="Run health_check through the API on each queue and wait for it.",
    )
    parser.add_argument("--queue", action="append", required=True, help="repeat per queue")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per run")
    args = parser.parse_args(argv)
    api_url = os.environ.get("MARKETQ_API_URL", "http://127.0.0.1:8000").rstrip("/")
    key = os.environ.get("MARKETQ_API_KEY", "")
    failed = []
    for queue in args.queue:
        try:
            state = check_queue(api_url, key, queue, args.timeout)
        except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
            state = f"ERROR ({exc})"
        print(f"health_check on {queue}: {state}", flush=True)
        if state != "SUCCESS":
            failed.append(queue)
    if failed:
        print(f"failed on: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
