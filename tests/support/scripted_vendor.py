"""A real HTTP server on a free loopback port standing in for a market-data vendor in the
retry and quota tests: per symbol it plays a script of answers, then answers 200.

Script steps: an ``int`` status (``429`` with ``retry_after``), ``"hang"`` (answers only
after ``hang_seconds``, past the client's timeout), ``"slow"`` (answers 200 after
``slow_seconds``, within it: keeps a job in flight), ``"drop"`` (closes the connection
without a word). Every request is recorded with its arrival time and the caller it names
in ``X-Caller``, so a test can count calls per second and per worker process.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fixtures.ports import free_port

Step = int | str


@dataclass(frozen=True)
class Seen:
    symbol: str
    at: float  # time.monotonic() of arrival
    caller: str


class ScriptedVendor:
    def __init__(
        self, *, retry_after: int = 3, hang_seconds: float = 4.0, slow_seconds: float = 2.0
    ) -> None:
        self.retry_after = retry_after
        self.hang_seconds = hang_seconds
        self.slow_seconds = slow_seconds
        self.scripts: dict[str, list[Step]] = defaultdict(list)
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self.port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, symbol: str, *steps: Step) -> None:
        with self._lock:
            self.scripts[symbol] = list(steps)

    def calls(self, symbol: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if symbol is None or s.symbol == symbol]

    def start(self) -> ScriptedVendor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_step(self, symbol: str, caller: str) -> Step:
        with self._lock:
            self.seen.append(Seen(symbol, time.monotonic(), caller))
            steps = self.scripts.get(symbol)
            return steps.pop(0) if steps else 200

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        vendor = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                symbol = query.get("symbol", ["?"])[0]
                step = vendor._next_step(symbol, self.headers.get("X-Caller", "?"))
                if step == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                if step in ("hang", "slow"):
                    time.sleep(vendor.hang_seconds if step == "hang" else vendor.slow_seconds)
                    step = 200
                status = int(step)
                body = json.dumps({"symbol": symbol, "status": status}).encode()
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", str(vendor.retry_after))
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
