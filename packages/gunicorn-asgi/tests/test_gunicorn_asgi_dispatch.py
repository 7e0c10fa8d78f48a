"""Choosing a protocol per connection (ALPN, the h2c preface) and the accept loop's connection cap, with
stand-in protocol plugins over real loopback sockets, TLS included."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
import trustme
from asgi_core import Config, ProxyHeader, Registry, ServerContext
from gunicorn_asgi import StartupError
from gunicorn_asgi._dispatch import H2_PREFACE, Dispatcher, ProtocolPlan, plan_protocols
from gunicorn_asgi._listen import Acceptor, ConnectionSet

LOG = logging.getLogger("test")


class Answering(asyncio.Protocol):
    """Echoes `<protocol name>:<every byte received>` and closes when the client is done: shows which protocol
    got the connection, and that no byte was lost in the hand-off."""

    def __init__(self, name: str, context: ServerContext) -> None:
        self.name, self.context = name, context
        self.named = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport
        self.context.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if not self.named:
            self.named = True
            data = self.name.encode() + b":" + data
        self.transport.write(data)

    def eof_received(self) -> bool:
        self.transport.close()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.context.connections.discard(self)

    def shutdown(self) -> None:
        self.transport.close()

    def going_away(self) -> None:
        self.transport.close()


@dataclass
class Plugin:
    name: str
    alpn: tuple[str, ...]

    def create_protocol(self, context: ServerContext, proxy: ProxyHeader | None = None) -> asyncio.Protocol:
        return Answering(self.name, context)


def registry(*plugins: Plugin) -> Registry:
    found = Registry(discover=False)
    for plugin in plugins:
        found.add_protocol(plugin)
    return found


HTTP, H2, UWSGI = Plugin("http", ("http/1.1",)), Plugin("h2", ("h2",)), Plugin("uwsgi", ())


def settings(**values: Any) -> Any:
    return SimpleNamespace(**{"protocol": "http", "http_protocols": ["h1"], "http2_cleartext": "off", **values})


def test_plan_offers_alpn_in_preference_order() -> None:
    warnings: list[str] = []
    plan = plan_protocols(
        settings(http_protocols=["h2", "h1"]), registry(HTTP, H2), tls=True, warn=warnings.append
    )
    assert plan.alpn == ("h2", "http/1.1")
    assert plan.default is HTTP
    assert plan.by_alpn == {"h2": H2, "http/1.1": HTTP}
    assert plan.h2c == "off"
    assert warnings == []


def test_plan_refuses_protocols_that_are_not_installed() -> None:
    with pytest.raises(StartupError, match=r"http_protocols asks for protocol 'h2'.*gunicorn-asgi\[http2\]"):
        plan_protocols(settings(http_protocols=["h1", "h2"]), registry(HTTP), tls=True, warn=LOG.warning)
    with pytest.raises(StartupError, match="installed: http"):
        plan_protocols(settings(protocol="uwsgi"), registry(HTTP), tls=False, warn=LOG.warning)


def test_plan_h2c_needs_h2_enabled_and_no_tls() -> None:
    warnings: list[str] = []
    both = registry(HTTP, H2)
    plan = plan_protocols(
        settings(http_protocols=["h1", "h2"], http2_cleartext="both"), both, tls=False, warn=warnings.append
    )
    assert (plan.h2c, plan.prior_knowledge, plan.prior_knowledge_only) == ("both", H2, False)
    plan = plan_protocols(
        settings(http_protocols=["h1", "h2"], http2_cleartext="upgrade"), both, tls=False, warn=warnings.append
    )
    assert (plan.h2c, plan.prior_knowledge) == ("upgrade", None)
    assert warnings == []
    plan = plan_protocols(settings(http2_cleartext="prior-knowledge"), both, tls=False, warn=warnings.append)
    assert plan.h2c == "off"
    plan = plan_protocols(
        settings(http_protocols=["h2"], http2_cleartext="both"), both, tls=True, warn=warnings.append
    )
    assert plan.h2c == "off"
    assert len(warnings) == 2


def test_plan_for_uwsgi_ignores_http_settings() -> None:
    warnings: list[str] = []
    plan = plan_protocols(
        settings(protocol="uwsgi", http_protocols=["h2"]), registry(UWSGI), tls=False, warn=warnings.append
    )
    assert plan == ProtocolPlan(default=UWSGI)
    assert "do not apply to --protocol uwsgi" in warnings[0]


# ---- over real sockets -------------------------------------------------------------------------------


async def _app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("never called")


async def serving(
    plan: ProtocolPlan,
    client: Callable[[int], Awaitable[Any]],
    *,
    config: Config | None = None,
    ssl_context: ssl.SSLContext | None = None,
    limit: int = 100,
) -> Any:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    connections = ConnectionSet()
    context = ServerContext(app=_app, config=config or Config(), connections=connections)
    acceptor = Acceptor(
        [listener],
        factory=Dispatcher(plan, context).protocol_factory(tls=ssl_context is not None),
        connections=connections,
        limit=limit,
        ssl_context=ssl_context,
        handshake_timeout=5,
        proxy=None,
        log=LOG,
    )
    acceptor.start()
    try:
        return await asyncio.wait_for(client(listener.getsockname()[1]), 10)
    finally:
        acceptor.stop()
        context.drain_connections()
        await asyncio.wait_for(acceptor.wait_idle(), 5)
        listener.close()


async def exchange(port: int, data: bytes, ssl_context: ssl.SSLContext | None = None) -> tuple[bytes, str | None]:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ssl_context, server_hostname="127.0.0.1" if ssl_context else None
    )
    ssl_object = writer.get_extra_info("ssl_object")
    writer.write(data)
    if ssl_context is None:
        writer.write_eof()
    else:
        await asyncio.sleep(0.05)
        writer.close()  # TLS has no half-close: close_notify ends the client side
    answer = await reader.read()
    writer.close()
    return answer, ssl_object.selected_alpn_protocol() if ssl_object else None


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, trustme.CA]:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    server.set_alpn_protocols(["h2", "http/1.1"])
    return server, ca


def test_alpn_selects_the_protocol(tls: tuple[ssl.SSLContext, trustme.CA]) -> None:
    server_context, ca = tls
    plan = plan_protocols(settings(http_protocols=["h2", "h1"]), registry(HTTP, H2), tls=True, warn=LOG.warning)

    def client(alpn: list[str] | None) -> ssl.SSLContext:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        if alpn:
            context.set_alpn_protocols(alpn)
        return context

    async def clients(port: int) -> list[tuple[bytes, str | None]]:
        return [
            await exchange(port, b"hi", client(["h2", "http/1.1"])),
            await exchange(port, b"hi", client(["http/1.1"])),
            await exchange(port, b"hi", client(None)),
        ]

    answers = asyncio.run(serving(plan, clients, ssl_context=server_context))
    assert answers == [(b"h2:hi", "h2"), (b"http:hi", "http/1.1"), (b"http:hi", None)]


@pytest.mark.parametrize(
    ("mode", "trusted", "request_bytes", "expected"),
    [
        ("both", True, H2_PREFACE + b"frames", b"h2:" + H2_PREFACE + b"frames"),
        ("both", True, b"GET / HTTP/1.1\r\n\r\n", b"http:GET / HTTP/1.1\r\n\r\n"),
        ("prior-knowledge", True, H2_PREFACE, b"h2:" + H2_PREFACE),
        ("prior-knowledge", True, b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
        ("prior-knowledge", False, H2_PREFACE, b"http:" + H2_PREFACE),  # h2c is for trusted peers only
    ],
)
def test_h2c_preface_selects_http2_for_trusted_peers(
    mode: str, trusted: bool, request_bytes: bytes, expected: bytes
) -> None:
    plan = plan_protocols(
        settings(http_protocols=["h1", "h2"], http2_cleartext=mode),
        registry(HTTP, H2),
        tls=False,
        warn=LOG.warning,
    )
    config = Config(forwarded_allow_ips=("127.0.0.1",) if trusted else ("10.0.0.1",), http2_cleartext=mode)

    async def client(port: int) -> bytes:
        # Split the first bytes, as a slow client would: the choice waits for enough of them.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request_bytes[:5])
        await asyncio.sleep(0.05)
        with contextlib.suppress(OSError):  # the server may have answered and closed already
            writer.write(request_bytes[5:])
            writer.write_eof()
        answer = await reader.read()
        writer.close()
        return answer

    answer = asyncio.run(serving(plan, client, config=config))
    assert answer.startswith(expected)


def test_acceptor_stops_accepting_at_the_cap() -> None:
    plan = ProtocolPlan(default=HTTP)

    async def client(port: int) -> bytes:
        first_reader, first = await asyncio.open_connection("127.0.0.1", port)
        first.write(b"one")
        assert await first_reader.read(100) == b"http:one"  # held open: the worker is at its cap
        second_reader, second = await asyncio.open_connection("127.0.0.1", port)  # waits in the backlog
        second.write(b"two")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(second_reader.read(100), 0.3)
        first.close()  # a slot frees up
        second.write_eof()
        answer = await asyncio.wait_for(second_reader.read(100), 5)
        second.close()
        return answer

    assert asyncio.run(serving(plan, client, limit=1)) == b"http:two"
