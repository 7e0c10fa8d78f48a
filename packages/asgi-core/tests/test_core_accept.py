"""What a connection knows of its addresses when the server accepts it: the peer `accept()` returned and the local
address (the listener's, or the connection's own on a wildcard listener), over IPv4, IPv6 and Unix sockets."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from typing import Any

import pytest
from asgi_core import Config, ConnectionInfo, ProxyHeader, Registry, Server, ServerContext

LOCALHOST = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}


class Reporting(asyncio.Protocol):
    """Answers with the client and server addresses of its `ConnectionInfo`, then closes."""

    def __init__(self, context: ServerContext, proxy: ProxyHeader | None) -> None:
        self.context, self.proxy = context, proxy

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        info = ConnectionInfo.from_transport(transport, self.proxy)  # type: ignore[arg-type]
        transport.write(repr((info.client, info.server)).encode())  # type: ignore[attr-defined]
        transport.close()


class ReportingPlugin:
    name = "http"
    alpn: tuple[str, ...] = ()

    def create_protocol(self, context: ServerContext, proxy: ProxyHeader | None = None) -> asyncio.Protocol:
        return Reporting(context, proxy)


async def _addresses(listening: socket.socket, connect: Any) -> tuple[str, Any]:
    found = Registry(discover=False)
    found.add_protocol(ReportingPlugin())
    server = Server(lambda *_: None, Config(), registry=found)  # type: ignore[arg-type]
    await server.start([listening])
    try:
        client = connect()
        client.setblocking(False)
        loop = asyncio.get_running_loop()
        answer = b""
        while chunk := await asyncio.wait_for(loop.sock_recv(client, 1000), 5):
            answer += chunk
        expected = (client.getsockname(), client.getpeername())
        client.close()
        return answer.decode(), expected
    finally:
        await server.shutdown(1)


@pytest.mark.parametrize(
    ("family", "bound"),
    [
        (socket.AF_INET, "127.0.0.1"),
        (socket.AF_INET, "0.0.0.0"),
        (socket.AF_INET6, "::1"),
        (socket.AF_INET6, "::"),
    ],
)
def test_tcp_connections_know_their_client_and_server(family: socket.AddressFamily, bound: str) -> None:
    if not socket.has_ipv6 and family == socket.AF_INET6:
        pytest.skip("no IPv6 on this machine")
    listening = socket.socket(family)
    try:
        listening.bind((bound, 0))
    except OSError:
        listening.close()
        pytest.skip(f"cannot bind {bound}")
    listening.listen(4)
    port = listening.getsockname()[1]
    with listening:
        answer, (client, server) = asyncio.run(
            _addresses(listening, lambda: socket.create_connection((LOCALHOST[family], port)))
        )
    # On a wildcard listener the server address is where the connection arrived, not 0.0.0.0 or ::.
    assert answer == repr(((client[0], client[1]), (server[0], server[1])))


def test_unix_socket_connections_have_the_socket_path_as_server_and_no_client() -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "server.sock")
        listening = socket.socket(socket.AF_UNIX)
        listening.bind(path)
        listening.listen(4)

        def connect() -> socket.socket:
            client = socket.socket(socket.AF_UNIX)
            client.connect(path)
            return client

        with listening:
            answer, _ = asyncio.run(_addresses(listening, connect))
    assert answer == repr((None, (path, None)))
