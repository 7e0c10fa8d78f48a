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
from collections.abc import Awaitable
from typing import TYPE_CHECKING, BinaryIO, Final

from asgi_core import Headers, content_length, has_control_character, is_token, reason_phrase
from asgi_core import error_response as canned_error

if TYPE_CHECKING:
    from ._protocol import UwsgiProtocol

_BODYLESS_STATUSES: Final = frozenset({204, 304})


def response_head(status: int, headers: Headers) -> tuple[bytes, int | None]:
    """Status line and header block, and the declared Content-Length (None without one). `ValueError` for a
    header that cannot be written as it is, or a Content-Length nginx would refuse (not a number, or two
    different ones: "upstream sent duplicate header line")."""
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status))]
    length: bytes | None = None
    for name, value in headers:
        if not is_token(name):
            raise ValueError(f"invalid response header name {name!r}")
        if has_control_character(value):
            raise ValueError(f"invalid response header value {value!r} for {name!r}")
        lowered = name.lower()
        if lowered == b"content-length":
            declared = _one_length(value)
            if length is not None:
                if declared != length:
                    raise ValueError(f"conflicting content-length values {length!r} and {declared!r}")
                continue  # the same length twice is sent once
            length = declared
            lines.append(b"%s: %s\r\n" % (name, declared))
            continue
        if lowered == b"transfer-encoding":
            continue
        lines.append(b"%s: %s\r\n" % (name, value))
    lines.append(b"\r\n")
    return b"".join(lines), None if length is None else int(length)


def _one_length(value: bytes) -> bytes:
    """The declared length, as the digits to send on (asgi-core's one Content-Length rule)."""
    return b"%d" % content_length(value)


def error_response(status: int, explanation: str) -> bytes:
    """asgi-core's canned error for `status`, with `explanation`, framed as a complete uWSGI reply."""
    headers, body = canned_error(status, explanation)
    return response_head(status, headers)[0] + body


class UwsgiResponseWriter:
    """Writes one response. The head waits for the first body bytes so a small response is one write.

    A declared Content-Length is held to, as on HTTP/1.1 and HTTP/2: nginx must not get a body that
    disagrees with it (it would pass a short one on as complete, or log and drop the excess). Body past the
    length raises `ValueError` before a byte of it is written, and so does an end that falls short; asgi-core's
    cycle then tells the app and aborts, and nginx sees a reset."""

    __slots__ = (
        "_head",
        "_head_request",
        "_protocol",
        "_remaining",
        "can_send_informational",
        "can_send_trailers",
        "can_sendfile",
        "done",
    )

    def __init__(self, protocol: UwsgiProtocol, *, sendfile: bool, head_request: bool = False) -> None:
        self._protocol = protocol
        self._head: bytes | None = None
        self._head_request = head_request
        #: Body bytes still owed to the declared Content-Length; None when nothing was declared (or no body
        #: goes out at all: HEAD, 204, 304).
        self._remaining: int | None = None
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
        head, length = response_head(status, headers)
        self._head = head
        if self._head_request or status in _BODYLESS_STATUSES:
            length = None  # the length describes a body that is not sent
        self._remaining = length

    def send_data(self, data: bytes) -> None:
        self._count(len(data))
        self._write(data)

    def send_whole(self, status: int, headers: Headers, body: bytes) -> None:
        """`start_response`, `send_data` and `end_response` in one call: a body whose length disagrees with
        the declared one is refused before anything is written."""
        self.start_response(status, headers)  # ValueError: refused, nothing changed
        remaining = self._remaining
        if remaining is not None and len(body) != remaining:
            # Not a ValueError: the head was taken, so this must not read as a refused head.
            raise RuntimeError(f"response body of {len(body)} bytes for a declared content-length of {remaining}")
        self._remaining = None
        self._write(body)
        self.done = True
        self._protocol.response_complete()

    def drain(self) -> Awaitable[None] | None:
        # Nothing to wait for (the usual case) costs no coroutine; backpressure is the transport's.
        flow = self._protocol.flow
        return flow.drain() if flow.write_paused else None

    async def send_file(self, file: BinaryIO, offset: int, count: int) -> None:
        self._count(count)
        protocol = self._protocol
        self._write(b"")
        await protocol.flow.drain()
        if protocol.transport.is_closing():
            return
        await asyncio.get_running_loop().sendfile(protocol.transport, file, offset, count)  # type: ignore[arg-type]

    def end_response(self, trailers: Headers | None) -> None:
        if self._remaining:
            raise ValueError(f"response ended {self._remaining} bytes short of its declared content-length")
        self._write(b"")
        self.done = True
        self._protocol.response_complete()

    def abort_response(self) -> None:
        self._head = None  # a response cut before its head must not look like a complete empty one
        self.done = True
        self._protocol.abort()

    def _count(self, size: int) -> None:
        remaining = self._remaining
        if remaining is not None:
            if size > remaining:
                raise ValueError(f"response body runs {size - remaining} bytes past its declared content-length")
            self._remaining = remaining - size

    def _write(self, data: bytes) -> None:
        if self._head is not None:
            data = self._head + data
            self._head = None
        if data and not self.done:
            self._protocol.transport.write(data)
