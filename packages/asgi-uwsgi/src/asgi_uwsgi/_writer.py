"""The response side of one uWSGI request: asgi-core's `ResponseWriter` writing what nginx's uwsgi module reads.

nginx parses a uWSGI response like an HTTP/1.x one without chunked coding: a status line, header lines, a
blank line, then the body as raw bytes. nginx never reuses a uWSGI upstream connection (not even with
`keepalive` in its `upstream` block; checked against nginx 1.22), and without a Content-Length it reads the
body until the connection closes. So every response is framed by closing the connection after it, and a
Content-Length the app or asgi-core set is passed on: nginx then finishes at the last byte and forwards the
length to its client. A Transfer-Encoding from the app is dropped, since the body is never chunked here.
"""

from __future__ import annotations

import asyncio
import re
from http import HTTPStatus
from typing import TYPE_CHECKING, BinaryIO

from asgi_core import Headers

if TYPE_CHECKING:
    from ._protocol import UwsgiProtocol

_REASONS = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE_BYTE = re.compile(rb"[\x00\r\n]")


def response_head(status: int, headers: Headers) -> bytes:
    """Status line and header block; `ValueError` for a header that cannot be written as it is."""
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b""))]
    for name, value in headers:
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"invalid response header name {name!r}")
        if _BAD_VALUE_BYTE.search(value):
            raise ValueError(f"invalid response header value {value!r} for {name!r}")
        if name.lower() == b"transfer-encoding":
            continue
        lines.append(b"%s: %s\r\n" % (name, value))
    lines.append(b"\r\n")
    return b"".join(lines)


def error_response(status: int, explanation: str) -> bytes:
    """A complete plain-text response that needs nothing from the app."""
    body = explanation.encode("utf-8") + b"\n"
    headers: Headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
    ]
    return response_head(status, headers) + body


class UwsgiResponseWriter:
    """Writes one response. The head waits for the first body bytes so a small response is one write."""

    __slots__ = ("_head", "_protocol", "can_send_informational", "can_send_trailers", "can_sendfile", "done")

    def __init__(self, protocol: UwsgiProtocol, *, sendfile: bool) -> None:
        self._protocol = protocol
        self._head: bytes | None = None
        self.done = False
        # nginx's uwsgi module reads one final response: no 1xx, no trailers.
        self.can_send_trailers = False
        self.can_send_informational = False
        self.can_sendfile = sendfile

    def request_body(self) -> None:
        pass  # nginx sends the body unasked: there is no 100-continue on this wire

    def body_consumed(self, size: int) -> None:
        if not self.done:
            self._protocol.body_consumed()

    def send_informational(self, status: int, headers: Headers) -> None:
        pass  # can_send_informational is False: the cycle never calls this

    def start_response(self, status: int, headers: Headers) -> None:
        self._head = response_head(status, headers)

    def send_data(self, data: bytes) -> None:
        self._write(data)

    async def drain(self) -> None:
        await self._protocol.flow.drain()

    async def send_file(self, file: BinaryIO, offset: int, count: int) -> None:
        protocol = self._protocol
        self._write(b"")
        await protocol.flow.drain()
        if protocol.transport.is_closing():
            return
        await asyncio.get_running_loop().sendfile(protocol.transport, file, offset, count)  # type: ignore[arg-type]

    def end_response(self, trailers: Headers | None) -> None:
        self._write(b"")
        self.done = True
        self._protocol.response_complete()

    def abort_response(self) -> None:
        self._head = None  # a response cut before its head must not look like a complete empty one
        self.done = True
        self._protocol.abort()

    def _write(self, data: bytes) -> None:
        if self._head is not None:
            data = self._head + data
            self._head = None
        if data and not self.done:
            self._protocol.transport.write(data)
