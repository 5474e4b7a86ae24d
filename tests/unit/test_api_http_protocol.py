"""marketq-api's HTTP protocol sets TCP_NODELAY on every connection it serves.

uvicorn creates the listening socket itself for ``--workers N`` (N > 1), with protocol
number 0, and asyncio's loop then leaves TCP_NODELAY off on the sockets it accepts: each
response waited about 40 ms for the client's delayed ACK (docs/design.md#api-event-loop).
Real sockets on loopback, one asyncio loop, uvicorn's own protocol classes."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from marketq.api.http_protocol import PROTOCOL_PATH, NoDelayHttpToolsProtocol


async def _app(scope: Any, receive: Any, send: Any) -> None:  # never called
    raise AssertionError("no request is sent")


async def _nodelay_of_an_accepted_connection(protocol_class: type[HttpToolsProtocol]) -> int:
    listener = socket.socket(socket.AF_INET)  # as uvicorn's Config.bind_socket: protocol 0
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    config = Config(app=_app, lifespan="off")
    config.load()
    state = ServerState()
    loop = asyncio.get_running_loop()
    seen: asyncio.Future[int] = loop.create_future()

    class Probe(protocol_class):  # type: ignore[valid-type,misc]
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            sock = transport.get_extra_info("socket")
            seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    server = await loop.create_server(
        lambda: Probe(config=config, server_state=state, app_state={}), sock=listener
    )
    try:
        _reader, writer = await asyncio.open_connection(*listener.getsockname())
        value = await asyncio.wait_for(seen, 5)
        writer.close()
        return value
    finally:
        server.close()
        await server.wait_closed()


def test_marketq_protocol_turns_nagle_off_on_a_socket_uvicorn_made() -> None:
    assert asyncio.run(_nodelay_of_an_accepted_connection(NoDelayHttpToolsProtocol)) != 0
    assert PROTOCOL_PATH == "marketq.api.http_protocol:NoDelayHttpToolsProtocol"


def test_asyncio_leaves_nagle_on_with_uvicorns_own_protocol() -> None:
    """The upstream behaviour the subclass exists for: when this fails, asyncio or uvicorn
    sets the option itself and the subclass can go."""
    assert asyncio.run(_nodelay_of_an_accepted_connection(HttpToolsProtocol)) == 0
