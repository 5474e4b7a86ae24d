"""uvicorn's httptools protocol, with TCP_NODELAY on every connection it serves.

marketq-api runs on asyncio's own event loop (docs/design.md#api-event-loop). asyncio
sets TCP_NODELAY only on sockets whose protocol number is TCP's, and the listening socket
uvicorn creates itself for ``--workers N`` (N > 1) carries protocol 0, as do the sockets
it accepts. Without the option, Nagle's algorithm holds the second write of a response
until the client's delayed ACK: every request then takes about 40 ms. uvloop sets the
option on every TCP socket, so the stall came with the loop change.
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# The value of uvicorn's ``--http`` option that selects this protocol.
PROTOCOL_PATH = f"{__name__}:NoDelayHttpToolsProtocol"
# How marketq-api is served (and its benchmark peer, bench/naive_api.py). asyncio's own
# loop, not uvloop: at 256 concurrent clients uvloop left 1-2% of requests waiting seconds
# while the rest took 100 ms; asyncio's loop served them in turn at the same throughput.
SERVING_FLAGS = ("--loop", "asyncio", "--http", PROTOCOL_PATH)


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
