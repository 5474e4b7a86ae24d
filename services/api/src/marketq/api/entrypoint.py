"""``marketq-api``: serve the API with uvicorn (exec'd, so it is PID 1 in a container)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from marketq.api.http_protocol import SERVING_FLAGS
from marketq.common.settings import get_settings


def main(argv: Sequence[str] | None = None) -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="marketq-api", description="Serve the marketq API.")
    parser.add_argument("--host", default=settings.api_host, help="default: MARKETQ_API_HOST")
    parser.add_argument(
        "--port", type=int, default=settings.api_port, help="default: MARKETQ_API_PORT"
    )
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
        *SERVING_FLAGS,  # asyncio's loop, httptools with TCP_NODELAY (design.md#api-event-loop)
        "--timeout-graceful-shutdown",
        "20",
    ]
    os.execv(command[0], command)  # noqa: S606  (exec, no shell)


if __name__ == "__main__":
    main()
