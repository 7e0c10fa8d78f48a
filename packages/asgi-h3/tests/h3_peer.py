"""A paired peer for the unit tests (each imports it as `h3_peer`): aioquic's own HTTP/3 client connection
against our `H3Server`, joined in memory, so every datagram either side sends is delivered without sockets.

`H3Peer` collects what the server sends per request stream (`StreamResult`) and the frames of the server's
control stream (to see its GOAWAY).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import trustme
from aioquic._buffer import Buffer, BufferReadError
from aioquic.h3 import events as h3
from aioquic.h3.connection import H3_ALPN, FrameType, H3Connection
from aioquic.quic import events as quic_events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from asgi_core import ASGIApp, Config, ServerContext
from asgi_h3 import CertificateFiles, H3Limits, H3Protocol, H3Server
from asgi_h3._server import quic_configuration

SERVER_ADDR = ("127.0.0.1", 8443)
CLIENT_ADDR = ("127.0.0.1", 50000)
RUN_TIMEOUT = 10.0
_CA = trustme.CA()
_CERT = _CA.issue_cert("localhost")


@dataclass
class StreamResult:
    heads: list[list[tuple[bytes, bytes]]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    ended: bool = False
    reset: int | None = None
    #: The error code of the server's STOP_SENDING: it wants no more of the request.
    stopped: int | None = None

    @property
    def status(self) -> int:
        finals = [dict(head)[b":status"] for head in self.heads if b":status" in dict(head)]
        return int(next(status for status in finals if not status.startswith(b"1")))

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(next(head for head in self.heads if not dict(head).get(b":status", b"").startswith(b"1")))


class MemoryDatagramTransport(asyncio.DatagramTransport):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[bytes, Any]] = []
        self.closed = False

    def sendto(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        if not self.closed:
            self.sent.append((bytes(data), addr))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return SERVER_ADDR if name == "sockname" else default


def certificate_files(tmp: Any) -> CertificateFiles:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    _CERT.cert_chain_pems[0].write_to_path(cert)
    _CERT.private_key_pem.write_to_path(key)
    return CertificateFiles(str(cert), str(key))


def client_configuration() -> QuicConfiguration:
    configuration = QuicConfiguration(is_client=True, alpn_protocols=list(H3_ALPN), server_name="localhost")
    configuration.load_verify_locations(cadata=_CA.cert_pem.bytes())
    configuration.verify_mode = ssl.CERT_REQUIRED
    return configuration


class H3Peer:
    """aioquic's client against one `H3Server`, in memory. Use inside a running loop."""

    def __init__(
        self,
        app: ASGIApp,
        files: CertificateFiles,
        *,
        config: Config | None = None,
        limits: H3Limits | None = None,
        client_config: Callable[[QuicConfiguration], None] | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.context = ServerContext(app=app, config=config or Config(), loop=loop)
        limits = limits or H3Limits()
        self.server = H3Server(self.context, quic_configuration(files, limits), limits)
        self.server_transport = MemoryDatagramTransport()
        self.server.connection_made(self.server_transport)
        configuration = client_configuration()
        if client_config is not None:
            client_config(configuration)
        self.quic = QuicConnection(configuration=configuration)
        self.h3 = H3Connection(self.quic)
        self.results: dict[int, StreamResult] = {}
        self.control: bytearray = bytearray()
        self.terminated: quic_events.ConnectionTerminated | None = None
        #: While set, what the server sends is held back (nothing lost, nothing acknowledged) until it is cleared.
        self.hold_server = False

    @property
    def protocol(self) -> H3Protocol:
        protocols = {id(p): p for p in self.server._protocols.values()}
        (protocol,) = protocols.values()
        assert isinstance(protocol, H3Protocol)
        return protocol

    async def connect(self) -> None:
        self.quic.connect(SERVER_ADDR, now=self.loop.time())
        await self.settle()

    def request(
        self,
        path: bytes = b"/",
        *,
        method: bytes = b"GET",
        headers: Iterable[tuple[bytes, bytes]] = (),
        body: bytes = b"",
        end: bool = True,
    ) -> int:
        stream_id = self.quic.get_next_available_stream_id()
        head = [(b":method", method), (b":scheme", b"https"), (b":authority", b"localhost"), (b":path", path)]
        self.h3.send_headers(stream_id, [*head, *headers], end_stream=end and not body)
        if body:
            self.h3.send_data(stream_id, body, end_stream=end)
        self.results[stream_id] = StreamResult()
        return stream_id

    def send_data(self, stream_id: int, data: bytes, *, end: bool) -> None:
        self.h3.send_data(stream_id, data, end_stream=end)

    def reset(self, stream_id: int, code: int = 0x10C) -> None:
        self.quic.reset_stream(stream_id, code)

    async def settle(self, *, quiet_rounds: int = 3) -> None:
        """Deliver datagrams both ways until neither side has anything to send for a few loop rounds."""
        quiet = 0
        while quiet < quiet_rounds:
            moved = self._flush()
            await asyncio.sleep(0)
            quiet = 0 if moved else quiet + 1

    async def until(self, done: Callable[[], bool], timeout: float = RUN_TIMEOUT) -> None:
        deadline = self.loop.time() + timeout
        while not done():
            if self.loop.time() > deadline:
                raise TimeoutError("the condition did not come true")
            if not self._flush():
                await asyncio.sleep(0.001)
            else:
                await asyncio.sleep(0)

    async def response(self, stream_id: int) -> StreamResult:
        result = self.results[stream_id]
        await self.until(lambda: result.ended or result.reset is not None)
        return result

    def take_datagrams(self) -> list[bytes]:
        """What the client would send now, kept back from the server (to deliver later, in any order)."""
        return [data for data, _ in self.quic.datagrams_to_send(now=self.loop.time())]

    def deliver(self, datagrams: list[bytes]) -> None:
        for data in datagrams:
            self.server.datagram_received(data, CLIENT_ADDR)

    def goaway_ids(self) -> list[int]:
        """Stream ids of the GOAWAY frames on the server's control stream so far."""
        buf = Buffer(data=bytes(self.control))
        ids: list[int] = []
        try:
            buf.pull_uint_var()  # the stream type
            while not buf.eof():
                frame_type, length = buf.pull_uint_var(), buf.pull_uint_var()
                payload = buf.pull_bytes(length)
                if frame_type == FrameType.GOAWAY:
                    ids.append(Buffer(data=payload).pull_uint_var())
        except BufferReadError:
            pass
        return ids

    # ---- internals -----------------------------------------------------------------------------------

    def _flush(self) -> bool:
        moved = False
        timer = self.quic.get_timer()
        if timer is not None and timer <= self.loop.time():
            self.quic.handle_timer(now=self.loop.time())  # loss recovery, and the end of the closing period
        for data, _ in self.quic.datagrams_to_send(now=self.loop.time()):
            moved = True
            self.server.datagram_received(data, CLIENT_ADDR)
        if self.hold_server:
            sent = []
        else:
            sent, self.server_transport.sent = self.server_transport.sent, []
        for data, _ in sent:
            moved = True
            self.quic.receive_datagram(data, SERVER_ADDR, now=self.loop.time())
        while (event := self.quic.next_event()) is not None:
            moved = True
            self._client_event(event)
        return moved

    def _client_event(self, event: quic_events.QuicEvent) -> None:
        if isinstance(event, quic_events.StreamDataReceived) and event.stream_id % 4 == 3:
            if event.stream_id == 3:
                self.control += event.data  # the server's first unidirectional stream is its control stream
        elif isinstance(event, quic_events.StreamReset):
            result = self.results.get(event.stream_id)
            if result is not None:
                result.reset = event.error_code
        elif isinstance(event, quic_events.StopSendingReceived):
            result = self.results.get(event.stream_id)
            if result is not None:
                result.stopped = event.error_code
        elif isinstance(event, quic_events.ConnectionTerminated):
            self.terminated = event
        for h3_event in self.h3.handle_event(event):
            result = self.results.get(getattr(h3_event, "stream_id", -1))
            if result is None:
                continue
            if isinstance(h3_event, h3.HeadersReceived):
                result.heads.append(list(h3_event.headers))
                result.ended = result.ended or h3_event.stream_ended
            elif isinstance(h3_event, h3.DataReceived):
                result.body += h3_event.data
                result.ended = result.ended or h3_event.stream_ended
