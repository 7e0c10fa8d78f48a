"""The Server: choosing a protocol per connection (ALPN, the h2c preface), the accept loop's connection cap,
PROXY headers, counts and the two-step drain, with stand-in protocol plugins over real loopback sockets, TLS
included."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import ssl
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import trustme
from asgi_core import (
    Config,
    ConfigError,
    ProtocolPlan,
    ProxyHeader,
    Registry,
    Server,
    ServerContext,
    plan_protocols,
)
from asgi_core._listener import Listener

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

LOG = logging.getLogger("test")


class Answering(asyncio.Protocol):
    """Echoes `<protocol name>:<every byte received>` and closes when the client is done: shows which protocol
    got the connection, and that no byte was lost in the hand-off."""

    def __init__(self, name: str, context: ServerContext, proxy: ProxyHeader | None = None) -> None:
        self.name, self.context, self.proxy = name, context, proxy
        self.named = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport
        self.context.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if not self.named:
            self.named = True
            # A PROXY header's client (`length` > 0), not the one the server accepted the connection from.
            client = f"@{self.proxy.client[0]}" if self.proxy and self.proxy.length and self.proxy.client else ""
            data = f"{self.name}{client}:".encode() + data
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
        return Answering(self.name, context, proxy)


@dataclass
class PrefacePlugin(Plugin):
    """Stands in for HTTP/2: recognizes its connections by the first line of the preface."""

    def recognizes(self, data: bytes) -> bool | None:
        head = data[:16]
        if H2_PREFACE[: len(head)] != head:
            return False
        return True if len(head) == 16 else None


def registry(*plugins: Plugin) -> Registry:
    found = Registry(discover=False)
    for plugin in plugins:
        found.add_protocol(plugin)
    return found


HTTP, H2, UWSGI = Plugin("http", ("http/1.1",)), PrefacePlugin("h2", ("h2",)), Plugin("uwsgi", ())


def test_plan_offers_alpn_in_preference_order(caplog: pytest.LogCaptureFixture) -> None:
    plan = plan_protocols(registry(HTTP, H2), Config(http_protocols=("h2", "h1")), tls=True)
    assert plan.alpn == ("h2", "http/1.1")
    assert plan.default is HTTP
    assert plan.by_alpn == {"h2": H2, "http/1.1": HTTP}
    assert plan.h2c == "off"
    assert not caplog.records


def test_plan_refuses_protocols_that_are_not_installed() -> None:
    with pytest.raises(ConfigError, match=r"http_protocols: 'h2'.*not installed.*pip install asgi-h2"):
        plan_protocols(registry(HTTP), Config(http_protocols=("h1", "h2")), tls=True)
    with pytest.raises(ConfigError, match=r"protocol: 'uwsgi'; accepted: an installed protocol \(http\)"):
        plan_protocols(registry(HTTP), Config(protocol="uwsgi"), tls=False)
    with pytest.raises(ConfigError, match="protocol"):
        Server(_app, Config(protocol="uwsgi"), registry=registry(HTTP))  # the Server checks at construction


def test_plan_h2c_needs_h2_enabled_and_no_tls(caplog: pytest.LogCaptureFixture) -> None:
    both = registry(HTTP, H2)
    plan = plan_protocols(both, Config(http_protocols=("h1", "h2"), http2_cleartext="both"), tls=False)
    assert (plan.h2c, plan.prior_knowledge, plan.prior_knowledge_only) == ("both", H2, False)
    plan = plan_protocols(both, Config(http_protocols=("h1", "h2"), http2_cleartext="upgrade"), tls=False)
    assert (plan.h2c, plan.prior_knowledge) == ("upgrade", None)
    assert not caplog.records
    plan = plan_protocols(both, Config(http2_cleartext="prior-knowledge"), tls=False)
    assert plan.h2c == "off"
    plan = plan_protocols(both, Config(http_protocols=("h2",), http2_cleartext="both"), tls=True)
    assert plan.h2c == "off"
    assert len(caplog.records) == 2
    # The server's config says what applies, for HTTP/1.1's `Upgrade: h2c`.
    server = Server(_app, Config(http2_cleartext="both"), registry=both)
    assert server.config.http2_cleartext == "off"


def test_plan_for_uwsgi_ignores_http_settings(caplog: pytest.LogCaptureFixture) -> None:
    plan = plan_protocols(registry(UWSGI), Config(protocol="uwsgi", http_protocols=("h2",)), tls=False)
    assert plan == ProtocolPlan(default=UWSGI)
    assert "do not apply to protocol uwsgi" in caplog.records[0].getMessage()


# ---- over real sockets -------------------------------------------------------------------------------


async def _app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("never called")


def listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


async def serving(
    found: Registry,
    client: Callable[[int], Awaitable[Any]],
    *,
    config: Config | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> Any:
    sock = listener()
    server = Server(_app, config or Config(), registry=found, ssl_context=ssl_context, logger=LOG)
    await server.start([sock])
    try:
        return await asyncio.wait_for(client(sock.getsockname()[1]), 10)
    finally:
        await server.shutdown(5)
        sock.close()


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

    config = Config(http_protocols=("h2", "h1"))
    answers = asyncio.run(serving(registry(HTTP, H2), clients, config=config, ssl_context=server_context))
    assert answers == [(b"h2:hi", "h2"), (b"http:hi", "http/1.1"), (b"http:hi", None)]


@pytest.mark.parametrize(
    ("mode", "trusted", "request_bytes", "expected"),
    [
        ("both", True, H2_PREFACE + b"frames", b"h2:" + H2_PREFACE + b"frames"),
        ("both", True, b"GET / HTTP/1.1\r\n\r\n", b"http:GET / HTTP/1.1\r\n\r\n"),
        ("prior-knowledge", True, H2_PREFACE, b"h2:" + H2_PREFACE),
        # A port that serves only HTTP/2 hands everything to it: HTTP/2 refuses a bad preface in its own terms.
        ("prior-knowledge", True, b"GET / HTTP/1.1\r\n\r\n", b"h2:GET / HTTP/1.1"),
        # The preface's first line makes it HTTP/2 even when the rest is wrong (h2spec 3.5/2): not HTTP/1.1's.
        ("both", True, b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", b"h2:PRI * HTTP/2.0\r\n\r\nXX"),
        ("prior-knowledge", False, H2_PREFACE, b"http:" + H2_PREFACE),  # h2c is for trusted peers only
    ],
)
def test_h2c_preface_selects_http2_for_trusted_peers(
    mode: str, trusted: bool, request_bytes: bytes, expected: bytes
) -> None:
    config = Config(
        forwarded_allow_ips=("127.0.0.1",) if trusted else ("10.0.0.1",),
        http_protocols=("h1", "h2"),
        http2_cleartext=mode,
    )

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

    answer = asyncio.run(serving(registry(HTTP, H2), client, config=config))
    assert answer.startswith(expected)


def test_server_stops_accepting_at_the_cap() -> None:
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

    assert asyncio.run(serving(registry(HTTP), client, config=Config(max_connections=1))) == b"http:two"


def proxy_v2(client: tuple[str, int], server: tuple[str, int]) -> bytes:
    body = socket.inet_aton(client[0]) + socket.inet_aton(server[0]) + struct.pack("!HH", client[1], server[1])
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


@pytest.mark.parametrize(
    ("allowed", "expected"),
    [
        (("127.0.0.1",), b"http@192.0.2.7:hello"),  # a trusted proxy: its header is read, its client announced
        (("10.0.0.1",), b"http:\r\n\r\n\x00\r\nQUIT\n"),  # anyone else: the bytes reach the protocol as they are
    ],
)
def test_proxy_header_addresses_travel_with_the_connection(allowed: tuple[str, ...], expected: bytes) -> None:
    config = Config(proxy_protocol="v2", proxy_allow_ips=allowed)

    async def client(port: int) -> bytes:
        return (await exchange(port, proxy_v2(("192.0.2.7", 4711), ("192.0.2.1", 80)) + b"hello"))[0]

    assert asyncio.run(serving(registry(HTTP), client, config=config)).startswith(expected)


def test_malformed_proxy_header_closes_only_that_connection() -> None:
    config = Config(proxy_protocol="auto")

    async def client(port: int) -> list[bytes]:
        try:  # closed with the request unread: a reset, or an empty answer
            bad = (await exchange(port, b"PROXY TCP4 not-an-address 192.0.2.1 1 2\r\nhello"))[0]
        except ConnectionResetError:
            bad = b""
        good = (await exchange(port, b"PROXY TCP4 192.0.2.9 192.0.2.1 1 2\r\nhello"))[0]
        return [bad, good]

    assert asyncio.run(serving(registry(HTTP), client, config=config)) == [b"", b"http@192.0.2.9:hello"]


class Lingering(Answering):
    """Keeps its connection through the drain's first step, like a WebSocket, and records each step."""

    steps: ClassVar[list[tuple[str, float]]] = []

    def shutdown(self) -> None:
        self.steps.append(("shutdown", asyncio.get_running_loop().time()))

    def going_away(self) -> None:
        self.steps.append(("going_away", asyncio.get_running_loop().time()))
        self.transport.write(b"bye")
        self.transport.close()


@dataclass
class LingeringPlugin(Plugin):
    def create_protocol(self, context: ServerContext, proxy: ProxyHeader | None = None) -> asyncio.Protocol:
        return Lingering(self.name, context, proxy)


def test_drain_steps_then_ends_what_is_still_open() -> None:
    """Step 1 at once; what stays open is told to go (step 2) before the timeout; the server then returns."""
    Lingering.steps = []

    async def run() -> tuple[bytes, float, float, int]:
        sock = listener()
        server = Server(_app, Config(), registry=registry(LingeringPlugin("http", ())), logger=LOG)
        await server.start([sock])
        reader, writer = await asyncio.open_connection(*sock.getsockname())
        writer.write(b"hi")
        assert await reader.read(100) == b"http:hi"
        loop = asyncio.get_running_loop()
        started = loop.time()
        await server.shutdown(2.0)
        took = loop.time() - started
        answer = await reader.read()
        # A client arriving after the drain began waits in the backlog: nobody accepts it here.
        late_reader, late = await asyncio.open_connection(*sock.getsockname())
        late.write(b"late")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(late_reader.read(100), 0.2)
        late.close()
        writer.close()
        sock.close()
        return answer, started, took, server.open_connections

    answer, started, took, left = asyncio.run(run())
    assert answer == b"bye"
    assert [name for name, _ in Lingering.steps] == ["shutdown", "going_away"]
    assert Lingering.steps[0][1] - started < 0.1
    # The second step comes with its share of the timeout left (a quarter of 2 s), not at the very end.
    assert 1.3 < Lingering.steps[1][1] - started < 1.7
    assert took < 2.0
    assert left == 0


def test_drain_returns_as_soon_as_connections_are_gone() -> None:
    async def run() -> float:
        sock = listener()
        server = Server(_app, Config(), registry=registry(HTTP), logger=LOG)
        await server.start([sock])
        reader, writer = await asyncio.open_connection(*sock.getsockname())
        writer.write(b"hi")
        assert await reader.read(100) == b"http:hi"
        assert server.open_connections == 1
        loop = asyncio.get_running_loop()
        started = loop.time()
        await server.shutdown(30.0)  # Answering closes on shutdown(): nothing to wait for
        writer.close()
        sock.close()
        return loop.time() - started

    assert asyncio.run(run()) < 1.0


def test_hurry_cuts_a_drain_short() -> None:
    Lingering.steps = []

    async def run() -> float:
        sock = listener()
        server = Server(_app, Config(), registry=registry(LingeringPlugin("http", ())), logger=LOG)
        await server.start([sock])
        reader, writer = await asyncio.open_connection(*sock.getsockname())
        writer.write(b"hi")
        assert await reader.read(100) == b"http:hi"
        loop = asyncio.get_running_loop()
        started = loop.time()
        loop.call_later(0.2, server.hurry)
        await server.shutdown(30.0)
        writer.close()
        sock.close()
        return loop.time() - started

    assert asyncio.run(run()) < 1.0
    assert [name for name, _ in Lingering.steps] == ["shutdown", "going_away"]


class DatagramEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(b"h3:" + data, addr)


@dataclass
class DatagramPluginStandIn:
    """Stands in for HTTP/3: a protocol on datagram endpoints, named in http_protocols like any HTTP version."""

    name: str = "h3"
    alpn: tuple[str, ...] = ("h3",)

    def create_datagram_protocol(
        self, context: ServerContext, ssl_context: ssl.SSLContext
    ) -> asyncio.DatagramProtocol:
        assert isinstance(ssl_context, ssl.SSLContext)
        return DatagramEcho()


def test_datagram_protocols_get_an_endpoint_on_the_tls_port(tls: tuple[ssl.SSLContext, trustme.CA]) -> None:
    found = registry(HTTP)
    found.add_protocol(DatagramPluginStandIn())  # type: ignore[arg-type]
    config = Config(http_protocols=("h1", "h3"))
    with pytest.raises(ConfigError, match="h3 only with TLS"):
        Server(_app, config, registry=found)
    with pytest.raises(ConfigError, match="protocol: 'h3'; accepted: a stream protocol"):
        Server(_app, Config(protocol="h3"), registry=found, ssl_context=tls[0])

    async def run() -> tuple[bytes, str, bool]:
        sock = listener()
        server = Server(_app, config, registry=found, ssl_context=tls[0], logger=LOG)
        await server.start([sock])
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bytes] = loop.create_future()

        class Client(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Any) -> None:
                answer.set_result(data)

        transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=sock.getsockname())
        transport.sendto(b"hello")
        echoed = await asyncio.wait_for(answer, 5)
        transport.close()
        udp = server.datagram_sockets[0]
        port = sock.getsockname()[1]
        assert server.context.alt_svc == f'h3=":{port}"; ma=86400'.encode()  # what HTTP/1.1 and HTTP/2 advertise
        await server.shutdown(1.0)
        await asyncio.sleep(0.05)  # a transport closes its socket on the next turn of the loop
        sock.close()
        return echoed, server.describe(), udp.fileno() == -1

    echoed, described, closed = asyncio.run(run())
    assert echoed == b"h3:hello"
    assert described == "http, h3 over TLS"  # and h3 is not offered by ALPN on the TCP port
    assert closed  # the endpoint closes with the drain


def test_an_accepted_socket_reports_its_family_and_type_as_integers() -> None:
    # The event loops check an accepted socket's family and type; the listener's are read once, not per client.
    with listener() as sock:
        sock.setblocking(False)  # as the acceptor makes its listening sockets
        taking = Listener(sock)
        with pytest.raises(BlockingIOError):
            taking.accept()
        with socket.create_connection(sock.getsockname()[:2]) as client:
            accepted, address = _accept_when_ready(taking)
            with accepted:
                assert (accepted.family, accepted.type) == (socket.AF_INET, socket.SOCK_STREAM)
                assert (type(accepted.family), type(accepted.type)) == (int, int)  # not enums: no conversion
                assert address == client.getsockname()
                assert not taking.has_pending()  # the backlog is empty again: the acceptor stops there
                client.sendall(b"x")
                assert accepted.recv(1) == b"x"  # the client's own connection


def test_every_client_waiting_in_the_backlog_is_served() -> None:
    # Clients that queued up before the acceptor started are all taken at its first readiness event (a batch,
    # `has_pending` saying when to stop), none left waiting in the backlog.
    async def run() -> list[bytes]:
        sock = listener()
        port = sock.getsockname()[1]
        opened = [await asyncio.open_connection("127.0.0.1", port) for _ in range(12)]
        for index, (_, writer) in enumerate(opened):
            writer.write(b"%d" % index)
            writer.write_eof()
        server = Server(_app, Config(), registry=registry(HTTP), logger=LOG)
        await server.start([sock])
        try:
            return await asyncio.wait_for(asyncio.gather(*(reader.read() for reader, _ in opened)), 10)
        finally:
            for _, writer in opened:
                writer.close()
            await server.shutdown(5)
            sock.close()

    assert asyncio.run(run()) == [b"http:%d" % index for index in range(12)]


def test_the_listener_tells_whether_more_connections_wait() -> None:
    # The acceptor takes connections for as long as this says some wait, rather than until accept() fails.
    with listener() as sock:
        sock.setblocking(False)
        taking = Listener(sock)
        with socket.create_connection(sock.getsockname()[:2]), socket.create_connection(sock.getsockname()[:2]):
            first, _ = _accept_when_ready(taking)
            for _ in range(500):
                if taking.has_pending():
                    break
                time.sleep(0.01)
            second, _ = taking.accept()  # no BlockingIOError: has_pending() said it waits
            assert not taking.has_pending()
            first.close()
            second.close()


def _accept_when_ready(taking: Listener) -> tuple[socket.socket, object]:
    for _ in range(500):
        try:
            return taking.accept()
        except BlockingIOError:
            time.sleep(0.01)
    raise AssertionError("the connection never reached the listening socket")


async def _reset_at_once(*args: object, **kwargs: object) -> None:
    raise ConnectionResetError(104, "Connection reset by peer")


async def _reset_after_a_wait(*args: object, **kwargs: object) -> None:
    # As the loops do: the transport is made, then its `connection_made` awaited for a loop turn.
    waiter = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(
        waiter.set_exception, ConnectionResetError(104, "Connection reset by peer")
    )
    await waiter


async def _cancelled_wait(*args: object, **kwargs: object) -> None:
    waiter = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(waiter.cancel)
    await waiter


@pytest.mark.parametrize(
    ("opening", "logged"),
    [
        (_reset_at_once, "not opened: [Errno 104] Connection reset by peer"),
        (_reset_after_a_wait, "not opened: [Errno 104] Connection reset by peer"),
        (_cancelled_wait, "not opened"),
    ],
    ids=["fails-at-once", "fails-after-a-wait", "its-wait-cancelled"],
)
def test_a_connection_that_fails_while_it_is_opened_is_logged_and_forgotten(
    caplog: pytest.LogCaptureFixture, opening: Callable[..., Awaitable[None]], logged: str
) -> None:
    # The event loop may fail to take over an accepted socket (the peer reset it, a TLS handshake failed):
    # routine on the internet, so a debug line, the socket closed, the slot freed, and nothing raised.
    async def main() -> tuple[int, list[dict[str, object]]]:
        loop = asyncio.get_running_loop()
        failures: list[dict[str, object]] = []
        loop.set_exception_handler(lambda _loop, context: failures.append(context))
        loop.connect_accepted_socket = opening  # type: ignore[method-assign, assignment]
        sock = listener()
        server = Server(_app, Config(), registry=registry(HTTP), logger=LOG)
        await server.start([sock])
        try:
            with socket.create_connection(sock.getsockname()[:2]):
                for _ in range(200):
                    await asyncio.sleep(0.01)
                    if "not opened" in caplog.text:
                        break
            return server.open_connections, failures
        finally:
            await server.shutdown(1)
            sock.close()

    with caplog.at_level(logging.DEBUG, logger=LOG.name):
        open_connections, failures = asyncio.run(main())
    assert logged in caplog.text
    assert open_connections == 0
    assert failures == []


def test_a_protocol_factory_that_fails_frees_the_connection_slot() -> None:
    # A plugin's bug is reported, and its connection closed and not counted: the connection cap does not leak.
    class Broken(Plugin):
        def create_protocol(self, context: ServerContext, proxy: ProxyHeader | None = None) -> asyncio.Protocol:
            raise RuntimeError("a plugin bug")

    async def main() -> tuple[int, bytes, list[str]]:
        loop = asyncio.get_running_loop()
        reported: list[str] = []
        loop.set_exception_handler(lambda _loop, context: reported.append(repr(context.get("exception"))))
        sock = listener()
        server = Server(_app, Config(max_connections=1), registry=registry(Broken("http", ())), logger=LOG)
        await server.start([sock])
        try:
            reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            answer = await asyncio.wait_for(reader.read(), 5)  # closed by the server
            writer.close()
            return server.open_connections, answer, reported
        finally:
            await server.shutdown(1)
            sock.close()

    open_connections, answer, reported = asyncio.run(main())
    assert (open_connections, answer) == (0, b"")
    assert reported == ["RuntimeError('a plugin bug')"]


class _OutOfDescriptorsOnce(socket.socket):
    """A listening socket whose first accept fails as a process out of file descriptors sees it fail."""

    failures = 1

    def _accept(self) -> tuple[int, object]:
        if self.failures:
            self.failures -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        return super()._accept()  # type: ignore[misc, no-any-return]


def test_out_of_file_descriptors_pauses_accepting_then_serves_the_waiting_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # EMFILE on accept() would come back at once if retried at once (the loop would spin): the acceptor logs it,
    # stops watching the listener and tries again a second later; the client waits in the backlog meanwhile.
    async def main() -> tuple[bytes, float]:
        sock = _OutOfDescriptorsOnce()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        server = Server(_app, Config(), registry=registry(HTTP), logger=LOG)
        await server.start([sock])
        try:
            started = time.monotonic()
            reply = (await asyncio.wait_for(exchange(sock.getsockname()[1], b"hello"), 10))[0]
            return reply, time.monotonic() - started
        finally:
            await server.shutdown(5)
            sock.close()

    with caplog.at_level(logging.ERROR, logger=LOG.name):
        reply, waited = asyncio.run(main())
    assert reply.startswith(b"http")
    assert reply.endswith(b"hello")
    assert waited >= 0.9  # the retry comes a second later
    assert "cannot accept connections ([Errno 24] Too many open files); retrying in 1 s" in caplog.text
