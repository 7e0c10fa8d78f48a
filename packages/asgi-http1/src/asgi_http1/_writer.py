"""The HTTP/1.1 side of one response: asgi-core's `ResponseWriter` on top of an h11 connection."""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import TYPE_CHECKING, BinaryIO

import h11
from asgi_core import Headers

if TYPE_CHECKING:
    from ._protocol import HTTP1Protocol

_REASONS = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}
_CONNECTION_CLOSE = (b"connection", b"close")


class _FileBody:
    """Stands in for a file body in h11's passthrough mode: h11 needs only its length to frame it."""

    __slots__ = ("count", "file", "offset")

    def __init__(self, file: BinaryIO, offset: int, count: int) -> None:
        self.file, self.offset, self.count = file, offset, count

    def __len__(self) -> int:
        return self.count


class H11ResponseWriter:
    """Writes one response. Holds the head back until the first body bytes so that a small response leaves
    in a single `transport.write`. Calls from a request whose turn is over are ignored, so an app that keeps
    running after its response (background tasks) cannot disturb the next pipelined request."""

    __slots__ = (
        "_connect",
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
        connect: bool = False,
    ) -> None:
        self._protocol = protocol
        self._connect = connect
        self._head: bytes | None = None
        self.done = False
        self.can_send_trailers = trailers
        self.can_send_informational = informational
        self.can_sendfile = sendfile

    def request_body(self) -> None:
        conn = self._protocol.h11_conn
        if not self.done and conn.they_are_waiting_for_100_continue:
            self._write(conn.send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")))

    def body_consumed(self, size: int) -> None:
        if not self.done:
            self._protocol.body_consumed()

    def send_informational(self, status: int, headers: Headers) -> None:
        event = h11.InformationalResponse(status_code=status, headers=headers, reason=_REASONS.get(status, b""))
        self._write(self._protocol.h11_conn.send(event))

    def start_response(self, status: int, headers: Headers) -> None:
        # A client still waiting for 100 Continue may or may not send its body after a final answer (RFC 9110
        # section 10.1.1): closing is the only way both sides agree on where a next request would start.
        if self._protocol.closing_after_response or self._protocol.h11_conn.they_are_waiting_for_100_continue:
            headers = [*headers, _CONNECTION_CLOSE]
        if self._connect and 200 <= status < 300:  # noqa: PLR2004 - the 2xx class
            # A 2xx answer to CONNECT turns the connection into a tunnel (RFC 9110 section 9.3.6), which ASGI
            # cannot carry: refuse it before anything is sent, so that the client gets a clean 500.
            raise ValueError("a 2xx response to CONNECT would open a tunnel; ASGI cannot serve one")
        try:
            event = h11.Response(status_code=status, headers=headers, reason=_REASONS.get(status, b""))
        except h11.LocalProtocolError as exc:
            raise ValueError(str(exc)) from None  # h11 validated the event without touching connection state
        self._head = self._protocol.h11_conn.send(event)

    def send_data(self, data: bytes) -> None:
        self._write(self._protocol.h11_conn.send(h11.Data(data=data)))

    async def drain(self) -> None:
        await self._protocol.flow.drain()

    async def send_file(self, file: BinaryIO, offset: int, count: int) -> None:
        protocol = self._protocol
        body = _FileBody(file, offset, count)
        # h11 frames any object with a length; the kernel then sends the bytes themselves.
        pieces = protocol.h11_conn.send_with_data_passthrough(h11.Data(data=body))  # type: ignore[arg-type]
        for piece in pieces or ():
            if isinstance(piece, _FileBody):
                self._flush()
                await protocol.flow.drain()
                await asyncio.get_running_loop().sendfile(protocol.transport, file, offset, count)
            else:
                self._write(piece)

    def end_response(self, trailers: Headers | None) -> None:
        self._write(self._protocol.h11_conn.send(h11.EndOfMessage(headers=trailers or [])))
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
        if data:
            self._protocol.transport.write(data)

    def _flush(self) -> None:
        self._write(None)
