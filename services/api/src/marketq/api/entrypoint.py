"""``marketq-api``: serve the API with uvicorn (exec'd, so it is PID 1 in a container)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="marketq-api", description="Serve the marketq API.")
    parser.add_argument("--host", default=os.environ.get("MARKETQ_API_HOST", "0.0.0.0"))  # noqa: S104
    parser.add_argument("--port", type=int, default=int(os.environ.get("MARKETQ_API_PORT", "8000")))
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args(argv)
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "marketq.api.app:create_served_app",
        "--factory",
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--workers",
        str(args.workers),
        "--no-access-log",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--timeout-graceful-shutdown",
        "20",
    ]
    os.execv(command[0], command)  # noqa: S606  (exec, no shell)


if __name__ == "__main__":
    main()
