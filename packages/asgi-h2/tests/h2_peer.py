"""A paired peer for the unit tests (each imports it as `h2_peer`): h2's own client connection against our
server protocol, joined by an in-memory transport, so every frame either side sends is seen and nothing
depends on sockets or timing.

`H2Peer` collects what the server sends per stream (`StreamResult`) and, like a well-behaved client, hands
flow-control credit back for what it received, unless a test turns that off to exhaust the windows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from asgi_core import ASGIApp, ClientDisconnected, Config, Receive, Registry, ServerContext
from asgi_h2 import H2Limits, H2Protocol
from h2 import events as ev
from h2.config import H2Configuration
from h2.connection import H2Connection
from hyperframe.frame import Frame

RUN_TIMEOUT = 10.0


class MemoryTransport(asyncio.Transport):
    """What the server writes is kept for the test to read; `close` reports the loss as asyncio would."""

    def __init__(
        self,
        protocol: asyncio.Protocol,
        *,
        peer: tuple[str, int] = ("127.0.0.1", 50000),
        high_water: int | None = None,
    ) -> None:
        super().__init__()
        self.protocol = protocol
        #: With a high-water mark, writes pause the protocol as asyncio's transports do, until `take` empties the
        #: buffer (the peer read everything); without one the test drives pause/resume itself.
        self.high_water = high_water
        self.writing_paused = False
        #: Set by a test whose peer reads nothing: `close` then waits for the unread buffer, as asyncio's does,
        #: and only `abort` ends the connection.
        self.unread = False
        self.out = bytearray()
        self.closed = False
        self.aborted = False
        self.reading = True
        self.extra: dict[str, Any] = {"peername": peer, "sockname": ("127.0.0.1", 8000)}

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self.closed:
            self.out += data
            if self.high_water is not None and not self.writing_paused and len(self.out) > self.high_water:
                self.writing_paused = True
                self.protocol.pause_writing()

    def take(self) -> bytes:
        data = bytes(self.out)
        self.out.clear()
        if self.writing_paused:
            self.writing_paused = False
            self.protocol.resume_writing()
        return data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if not self.unread:
                asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        if not self.aborted:
            self.aborted = True
            self.closed = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass  # the test drives pause_writing/resume_writing itself


@dataclass
class StreamResult:
    headers: list[tuple[bytes, bytes]] | None = None
    informational: list[list[tuple[bytes, bytes]]] = field(default_factory=list)
    data: bytearray = field(default_factory=bytearray)
    trailers: list[tuple[bytes, bytes]] | None = None
    ended: bool = False
    reset: int | None = None

    @property
    def status(self) -> int | None:
        if self.headers is None:
            return None
        return int(dict(self.headers)[b":status"])

    def header(self, name: bytes) -> bytes | None:
        return dict(self.headers or []).get(name)


class H2Peer:
    """h2's client connection wired to an `H2Protocol` through a `MemoryTransport`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        config: Config | None = None,
        limits: H2Limits | None = None,
        registry: Registry | None = None,
        auto_ack: bool = True,
        client_settings: dict[int, int] | None = None,
        context: ServerContext | None = None,
        write_buffer: int | None = None,
    ) -> None:
        self.context = context or ServerContext(
            app=app, config=config or Config(), registry=registry or Registry(discover=False)
        )
        self.protocol = H2Protocol(self.context, limits=limits or H2Limits())
        self.transport = MemoryTransport(self.protocol, high_water=write_buffer)
        self.client = H2Connection(H2Configuration(client_side=True, header_encoding=None))
        self.auto_ack = auto_ack
        self.streams: dict[int, StreamResult] = {}
        self.goaway: ev.ConnectionTerminated | None = None
        self.events: list[ev.Event] = []
        self.protocol.connection_made(self.transport)
        if client_settings:
            self.client.local_settings.update(client_settings)
            self.client.local_settings.acknowledge()
        self.client.initiate_connection()
        self.flush()

    # ---- client -> server ----------------------------------------------------------------------------

    def flush(self) -> None:
        data = self.client.data_to_send()
        if data and not self.transport.closed:
            self.protocol.data_received(data)

    def send_raw(self, data: bytes) -> None:
        self.protocol.data_received(data)

    def request(
        self,
        method: str = "GET",
        path: str = "/",
        *,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes | None = None,
        end: bool = True,
        stream_id: int | None = None,
    ) -> int:
        stream_id = stream_id or self.client.get_next_available_stream_id()
        head = [(":method", method), (":path", path), (":scheme", "https"), (":authority", "example.org")]
        self.client.send_headers(stream_id, [*head, *headers], end_stream=end and not body)
        if body:
            self.client.send_data(stream_id, body, end_stream=end)
        self.streams[stream_id] = StreamResult()
        self.flush()
        return stream_id

    # ---- server -> client ----------------------------------------------------------------------------

    def receive(self) -> list[ev.Event]:
        data = self.transport.take()
        if not data:
            return []
        events = self.client.receive_data(data)
        for event in events:
            self._record(event)
        self.events.extend(events)
        self.flush()
        return events

    async def settle(self, rounds: int = 10) -> None:
        """Let the server's tasks run and collect what it sent."""
        for _ in range(rounds):
            await asyncio.sleep(0)
            self.receive()

    async def until(self, condition: Callable[[], bool], timeout: float = 3.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("condition not reached in time")
            await asyncio.sleep(0.001)
            self.receive()

    async def response(self, stream_id: int, timeout: float = 3.0) -> StreamResult:
        result = self.streams.setdefault(stream_id, StreamResult())
        await self.until(lambda: result.ended or result.reset is not None, timeout)
        return result

    def _record(self, event: ev.Event) -> None:
        if isinstance(event, ev.ConnectionTerminated):
            self.goaway = event
            return
        stream_id = getattr(event, "stream_id", 0)
        if not stream_id:
            return
        result = self.streams.setdefault(stream_id, StreamResult())
        if isinstance(event, ev.ResponseReceived):
            result.headers = list(event.headers)
        elif isinstance(event, ev.InformationalResponseReceived):
            result.informational.append(list(event.headers))
        elif isinstance(event, ev.DataReceived):
            result.data += event.data
            if self.auto_ack and event.flow_controlled_length:
                self.client.acknowledge_received_data(event.flow_controlled_length, stream_id)
        elif isinstance(event, ev.TrailersReceived):
            result.trailers = list(event.headers)
        elif isinstance(event, ev.StreamEnded):
            result.ended = True
        elif isinstance(event, ev.StreamReset):
            result.reset = event.error_code


def parse_frames(data: bytes) -> list[Frame]:
    """The frames in what the server wrote, for when h2's client cannot follow (it stops reading at GOAWAY)."""
    frames: list[Frame] = []
    view = memoryview(data)
    while len(view) >= 9:
        frame, length = Frame.parse_frame_header(view[:9])
        frame.parse_body(view[9 : 9 + length])
        frames.append(frame)
        view = view[9 + length :]
    return frames


async def read_body(receive: Receive) -> bytes:
    """The whole request body, as an app reads it; `ClientDisconnected` if the stream goes away first."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        body += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return body


def run(coro: Coroutine[Any, Any, None], timeout: float = RUN_TIMEOUT) -> None:
    """Run one scenario in a fresh event loop, bounded in time."""
    asyncio.run(asyncio.wait_for(coro, timeout))
