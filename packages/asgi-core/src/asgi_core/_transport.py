"""The I/O surface a protocol talks to, and write flow control on top of it."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Protocol, cast


class Transport(Protocol):
    """The subset of `asyncio.Transport` that our protocols use. An asyncio transport satisfies it as it is;
    another server can wrap its own connection object in these few methods."""

    def write(self, data: bytes | bytearray | memoryview, /) -> None: ...
    def writelines(self, list_of_data: list[bytes], /) -> None: ...
    def close(self) -> None: ...
    def is_closing(self) -> bool: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def get_extra_info(self, name: str, default: Any = None, /) -> Any: ...


class StreamTransport(Transport, Protocol):
    """A transport for one stream of a multiplexed connection, such as an HTTP/2 extended CONNECT (RFC 8441).

    A protocol taking over such a stream answers its handshake with a response head (`send_head`) instead of
    raw HTTP/1.1 bytes; `write` then carries the stream's data and `close` ends the stream.
    """

    def send_head(self, status: int, headers: list[tuple[bytes, bytes]], *, end_stream: bool = False) -> None: ...


def close_now(transport: Transport, sock: socket.socket | None) -> None:
    """Close a connection whose last bytes are written, its FIN sent now rather than at the loop's next turn.

    Both event loops close the socket a turn after `close()`. Until then a client that has its whole response
    closes first, and so keeps the connection's TIME_WAIT, and with it a port, on its side: in a capture of
    bench/run.py's Connection: close scenario 87% of connections ended so, and the client's p99 latency grew
    from 3 ms to 10-15 ms on some runs; a peer that reads to the end of the connection (nginx with uWSGI, an
    HTTP/1.0 client) waits for that turn too. `sock` is the plain socket the acceptor took
    (`ProxyHeader.sock`): without one, or with bytes still queued in the transport, it is a plain `close()`.
    """
    # With a socket from the acceptor the transport is the event loop's own, which counts what it holds.
    if sock is not None and not cast("asyncio.WriteTransport", transport).get_write_buffer_size():
        try:  # noqa: SIM105 - a `with` costs a context manager on every close; `try` costs nothing
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the peer is gone already; `close()` still frees the socket
    transport.close()


class FlowControl:
    """Write backpressure for one connection.

    The event loop calls the protocol's `pause_writing`/`resume_writing` when the transport's buffer crosses
    its high/low water marks; the protocol forwards them here, and senders `await drain()` so a fast app
    cannot queue unbounded data for a slow client. Read pausing is counted, so that the app's body buffer and
    pipelined-request parking can both hold reading paused without resuming each other's pause.
    """

    __slots__ = ("_drain_waiter", "_read_pauses", "_transport", "write_paused")

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self.write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._read_pauses: set[str] = set()

    async def drain(self) -> None:
        if not self.write_paused:
            return
        if self._drain_waiter is None:
            self._drain_waiter = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._drain_waiter)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._release_drain()

    def connection_lost(self) -> None:
        # Wake writers: their next write finds the connection gone and reports it.
        self.write_paused = False
        self._release_drain()

    def _release_drain(self) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pause_reading(self, reason: str) -> None:
        if not self._read_pauses and not self._transport.is_closing():
            self._transport.pause_reading()
        self._read_pauses.add(reason)

    def resume_reading(self, reason: str) -> None:
        if reason not in self._read_pauses:
            return
        self._read_pauses.discard(reason)
        if not self._read_pauses and not self._transport.is_closing():
            self._transport.resume_reading()

    @property
    def reading_paused(self) -> bool:
        return bool(self._read_pauses)
