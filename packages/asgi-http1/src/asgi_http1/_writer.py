"""The HTTP/1.1 side of one response: asgi-core's `ResponseWriter` on top of the connection's engine."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TYPE_CHECKING, BinaryIO, Final, cast

from asgi_core import Headers, Transport

if TYPE_CHECKING:
    from ._protocol import HTTP1Protocol

_CONNECTION_CLOSE: Final = (b"connection", b"close")

if sys.version_info >= (3, 12):

    def _writelines(transport: Transport, pieces: list[bytes]) -> None:
        # CPython 3.12+'s selector transports keep an empty piece in their buffer forever (python/cpython#155888):
        # the connection then never closes and its writer spins the loop. Callers pass none; this makes sure.
        transport.writelines([piece for piece in pieces if piece])
        # Before 3.12.9 and 3.13.2 they also buffer in writelines() without pausing their protocol, as write()
        # does (python/cpython#127655); without the pause a client that reads nothing would be sent response
        # after response. Ask for it the way write() does (uvloop's transports pause by themselves and have no
        # such method; on fixed versions the call finds nothing to do).
        maybe_pause = getattr(transport, "_maybe_pause_protocol", None)
        if maybe_pause is not None:
            maybe_pause()

else:

    def _writelines(transport: Transport, pieces: list[bytes]) -> None:
        transport.writelines(pieces)  # 3.11's writelines() is write(b"".join(pieces)), which pauses


#: Bodies up to this size are joined to their head for one `write`; larger ones go out with `writelines`.
_JOIN_LIMIT: Final = 4096
#: Streamed pieces wait for the end of the loop iteration up to this many bytes, then go out at once.
_BATCH_LIMIT: Final = 65536


class HTTP1ResponseWriter:
    """Writes one response. Holds the head back until the first body bytes so that a small response leaves
    in a single `transport.write`, and batches streamed pieces: those sent in one iteration of the event loop
    leave together at its end (or with the end of the response), in one system call instead of one each.
    Calls from a request whose turn is over are ignored, so an app that keeps running after its response
    (background tasks) cannot disturb the next pipelined request."""

    __slots__ = (
        "_batch",
        "_batch_size",
        "_head",
        "_protocol",
        "can_send_informational",
        "can_send_trailers",
        "can_sendfile",
        "done",
    )

    def __init__(
        self,
        protocol: HTTP1Protocol,
        *,
        trailers: bool,
        informational: bool,
        sendfile: bool,
    ) -> None:
        self._protocol = protocol
        self._head: bytes | None = None
        self._batch: list[bytes] | None = None  # streamed pieces not written yet
        self._batch_size = 0
        self.done = False
        self.can_send_trailers = trailers
        self.can_send_informational = informational
        self.can_sendfile = sendfile

    def request_body(self) -> None:
        engine = self._protocol.engine
        if not self.done and engine.waiting_for_100_continue:
            self._write(engine.send_informational(100, []))

    def body_consumed(self, size: int) -> None:
        if not self.done:
            self._protocol.body_consumed()

    def send_informational(self, status: int, headers: Headers) -> None:
        self._write(self._protocol.engine.send_informational(status, headers))

    def start_response(self, status: int, headers: Headers) -> None:
        protocol = self._protocol
        # A client still waiting for 100 Continue may or may not send its body after a final answer (RFC 9110
        # section 10.1.1): closing is the only way both sides agree on where a next request would start.
        if protocol.closing_after_response or protocol.engine.waiting_for_100_continue:
            headers = [*headers, _CONNECTION_CLOSE]
        self._head = protocol.engine.send_response(status, headers)

    def send_data(self, data: bytes) -> None:
        protocol = self._protocol
        data = protocol.engine.send_data(data)
        head = self._head
        if head is not None:
            data = head + data
            self._head = None
        if not data:
            return
        batch = self._batch
        if batch is None:
            if len(data) >= _BATCH_LIMIT:
                protocol.transport.write(data)
                return
            self._batch = [data]
            self._batch_size = len(data)
            # Written when the app next lets the loop run (it awaits anything that waits), or sooner.
            protocol.loop.call_soon(self._write_batch)
        else:
            batch.append(data)
            self._batch_size += len(data)
            if self._batch_size >= _BATCH_LIMIT:
                self._write_batch()

    def _write_batch(self) -> None:
        batch = self._batch
        if batch is None:
            return
        self._batch = None
        transport = self._protocol.transport
        if not transport.is_closing():
            _writelines(transport, batch)

    def drain(self) -> Awaitable[None] | None:
        # A batch waiting for the end of the loop iteration is bounded by _BATCH_LIMIT; backpressure is the
        # transport's, once it has the bytes.
        flow = self._protocol.flow
        return flow.drain() if flow.write_paused else None

    async def send_file(self, file: BinaryIO, offset: int, count: int) -> None:
        protocol = self._protocol
        before, after = protocol.engine.frame_file(count)
        self._write(before)
        await protocol.flow.drain()
        # Only offered on the event loop's own socket transports (see `can_sendfile`), which are WriteTransports.
        transport = cast("asyncio.WriteTransport", protocol.transport)
        await asyncio.get_running_loop().sendfile(transport, file, offset, count)
        self._write(after)

    def send_whole(self, status: int, headers: Headers, body: bytes) -> None:
        """`start_response`, `send_data` and `end_response` in one call and one write: the usual response."""
        self.start_response(status, headers)  # ValueError: refused, nothing changed
        engine = self._protocol.engine
        try:
            data = engine.send_data(body) if body else b""
            end = engine.send_end(None)
        except ValueError as exc:
            raise RuntimeError(str(exc)) from exc  # the head was taken: this must not read as a refused head
        head = self._head
        self._head = None
        transport = self._protocol.transport
        if len(data) < _JOIN_LIMIT:
            transport.write(head + data + end if head is not None else data + end)
        else:
            # A large body is not copied once more to join it to its head: the transport writes both at once.
            pieces = [head, data] if head is not None else [data]
            if end:  # a Content-Length body has no end marker
                pieces.append(end)
            _writelines(transport, pieces)
        self.done = True
        self._protocol.response_complete()

    def end_response(self, trailers: Headers | None) -> None:
        self._write(self._protocol.engine.send_end(trailers))
        self.done = True
        self._protocol.response_complete()

    def abort_response(self) -> None:
        self._flush()
        self.done = True
        self._protocol.abort()

    def _write(self, data: bytes | None) -> None:
        if self._head is not None:
            data = self._head + data if data else self._head
            self._head = None
        batch = self._batch
        if batch is not None:  # what waits goes first, in the same system call
            self._batch = None
            if data:
                batch.append(data)
            _writelines(self._protocol.transport, batch)
        elif data:
            self._protocol.transport.write(data)

    def _flush(self) -> None:
        self._write(None)
