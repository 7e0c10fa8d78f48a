"""aioquic's HTTP/3 client for the end-to-end tests (each imports it as `h3_client`): one QUIC connection on
a loopback UDP socket, requests on it concurrently, and the GOAWAY frames the server sent. Holds no tests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from aioquic._buffer import Buffer, BufferReadError
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3 import events as h3
from aioquic.h3.connection import H3_ALPN, FrameType, H3Connection
from aioquic.quic import events as quic_events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection


@dataclass
class Response:
    heads: list[list[tuple[bytes, bytes]]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    reset: int | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def status(self) -> int:
        for head in self.heads:
            status = dict(head).get(b":status", b"")
            if status and not status.startswith(b"1"):
                return int(status)
        raise AssertionError(f"no final response: {self.heads}")

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.heads[-1] if len(self.heads) == 1 else self.heads[0])


class H3Client(QuicConnectionProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.responses: dict[int, Response] = {}
        self.control = bytearray()
        self.terminated: quic_events.ConnectionTerminated | None = None

    def start(
        self,
        path: bytes = b"/",
        *,
        method: bytes = b"GET",
        headers: Iterable[tuple[bytes, bytes]] = (),
        body: bytes = b"",
        authority: bytes = b"localhost",
    ) -> Response:
        """Send a request; its `Response` fills in as the answer arrives (`await response.done.wait()`)."""
        stream_id = self._quic.get_next_available_stream_id()
        head = [(b":method", method), (b":scheme", b"https"), (b":authority", authority), (b":path", path)]
        self.h3.send_headers(stream_id, [*head, *headers], end_stream=not body)
        if body:
            self.h3.send_data(stream_id, body, end_stream=True)
        response = self.responses[stream_id] = Response()
        self.transmit()
        return response

    async def request(self, path: bytes = b"/", *, timeout: float = 10.0, **kwargs: Any) -> Response:
        response = self.start(path, **kwargs)
        await asyncio.wait_for(response.done.wait(), timeout)
        return response

    def goaway_ids(self) -> list[int]:
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

    def quic_event_received(self, event: quic_events.QuicEvent) -> None:
        if isinstance(event, quic_events.StreamDataReceived) and event.stream_id == 3:
            self.control += event.data  # the server's first unidirectional stream: its control stream
        elif isinstance(event, quic_events.StreamReset):
            response = self.responses.get(event.stream_id)
            if response is not None:
                response.reset = event.error_code
                response.done.set()
        elif isinstance(event, quic_events.ConnectionTerminated):
            self.terminated = event
            for response in self.responses.values():
                response.done.set()
        for h3_event in self.h3.handle_event(event):
            response = self.responses.get(getattr(h3_event, "stream_id", -1))
            if response is None:
                continue
            if isinstance(h3_event, h3.HeadersReceived):
                response.heads.append(list(h3_event.headers))
                if h3_event.stream_ended:
                    response.done.set()
            elif isinstance(h3_event, h3.DataReceived):
                response.body += h3_event.data
                if h3_event.stream_ended:
                    response.done.set()


def client_configuration(ca_pem: bytes | None) -> QuicConfiguration:
    configuration = QuicConfiguration(is_client=True, alpn_protocols=list(H3_ALPN), server_name="localhost")
    if ca_pem is None:
        configuration.verify_mode = ssl.CERT_NONE
    else:
        configuration.load_verify_locations(cadata=ca_pem)
    return configuration


@contextlib.asynccontextmanager
async def connect(port: int, ca_pem: bytes | None, *, timeout: float = 5.0) -> AsyncIterator[H3Client]:
    """An HTTP/3 connection to 127.0.0.1:`port` from a socket bound to loopback only."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    quic = QuicConnection(configuration=client_configuration(ca_pem))
    transport, protocol = await loop.create_datagram_endpoint(lambda: H3Client(quic), sock=sock)
    assert isinstance(protocol, H3Client)
    try:
        protocol.connect(("127.0.0.1", port))
        await asyncio.wait_for(protocol.wait_connected(), timeout)
        yield protocol
    finally:
        protocol.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(protocol.wait_closed(), 1.0)
        transport.close()
