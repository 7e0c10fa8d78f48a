"""HTTP responses given instead of a WebSocket: refusals (403), denials the app writes itself, errors.

These are plain HTTP responses, so they go through asgi-core's `RequestCycle` (the one place the ASGI HTTP
rules live) against this `ResponseWriter`. Over HTTP/1.1 the connection closes after the response; over HTTP/2
the head goes out with `send_head` and closing the transport ends the stream.
"""

from __future__ import annotations

from typing import BinaryIO, Protocol

from asgi_core import (
    FlowControl,
    Headers,
    InvalidMessage,
    ResponseWriter,
    ServerContext,
    Transport,
    error_response,
    http_date,
    reason_phrase,
)

from ._handshake import HandshakeError, validate_headers

#: Connection-specific headers (RFC 9113 section 8.2.2) that HTTP/2 forbids and HTTP/1.1 framing here replaces.
_FRAMING_HEADERS = frozenset({b"connection", b"transfer-encoding", b"keep-alive", b"upgrade", b"proxy-connection"})


class _HeadTransport(Transport, Protocol):
    def send_head(self, status: int, headers: list[tuple[bytes, bytes]], *, end_stream: bool = False) -> None: ...


def http1_head(status: int, headers: Headers) -> bytes:
    """An HTTP/1.1 response head; header names and values must already be validated."""
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status))]
    lines.extend(name + b": " + value + b"\r\n" for name, value in headers)
    lines.append(b"\r\n")
    return b"".join(lines)


class ResponseWriterBase:
    """What both wire forms share: no trailers, no 1xx, no sendfile, no request body to acknowledge."""

    can_send_trailers = False
    can_send_informational = False
    can_sendfile = False

    def __init__(self, transport: Transport, flow: FlowControl) -> None:
        self._transport = transport
        self._flow = flow
        self.finished = False

    def request_body(self) -> None:
        pass

    def body_consumed(self, size: int) -> None:
        pass

    def send_informational(self, status: int, headers: Headers) -> None:
        pass

    async def drain(self) -> None:
        await self._flow.drain()

    async def send_file(self, file: BinaryIO, offset: int, count: int) -> None:
        raise NotImplementedError("a WebSocket denial response has no pathsend")  # never advertised

    def abort_response(self) -> None:
        self.finished = True
        abort = getattr(self._transport, "abort", None)
        if callable(abort):
            abort()
        else:
            self._transport.close()

    @staticmethod
    def _checked(headers: Headers) -> Headers:
        try:
            return validate_headers(headers)
        except InvalidMessage as exc:
            raise ValueError(str(exc)) from None  # the cycle turns this into the app's error, nothing sent


class Http1ResponseWriter(ResponseWriterBase):
    """A response on an HTTP/1.1 connection that then closes: chunked unless its length is known."""

    def __init__(self, transport: Transport, flow: FlowControl) -> None:
        super().__init__(transport, flow)
        self._chunked = False
        self._head: bytes | None = None

    def start_response(self, status: int, headers: Headers) -> None:
        headers = [(name, value) for name, value in self._checked(headers) if name.lower() not in _FRAMING_HEADERS]
        has_length = any(name.lower() == b"content-length" for name, _ in headers)
        self._chunked = not has_length and status not in (204, 304)
        if self._chunked:
            headers.append((b"transfer-encoding", b"chunked"))
        headers.append((b"connection", b"close"))
        self._head = http1_head(status, headers)  # held back to leave with the first body bytes

    def send_data(self, data: bytes) -> None:
        if self._chunked:
            data = b"%x\r\n%b\r\n" % (len(data), data)
        self._write(data)

    def end_response(self, trailers: Headers | None) -> None:
        self._write(b"0\r\n\r\n" if self._chunked else b"")
        self.finished = True
        self._transport.close()

    def _write(self, data: bytes) -> None:
        if self._head is not None:
            data, self._head = self._head + data, None
        if data and not self._transport.is_closing():
            self._transport.write(data)


class Http2ResponseWriter(ResponseWriterBase):
    """A response on one HTTP/2 stream (RFC 8441): a head with `send_head`, DATA with `write`, then close."""

    def __init__(self, transport: _HeadTransport, flow: FlowControl) -> None:
        super().__init__(transport, flow)
        self._stream = transport

    def start_response(self, status: int, headers: Headers) -> None:
        headers = [(name, value) for name, value in self._checked(headers) if name.lower() not in _FRAMING_HEADERS]
        self._stream.send_head(status, [(name.lower(), value) for name, value in headers])

    def send_data(self, data: bytes) -> None:
        if data and not self._stream.is_closing():
            self._stream.write(data)

    def end_response(self, trailers: Headers | None) -> None:
        self.finished = True
        self._stream.close()


def make_writer(
    transport: Transport, flow: FlowControl, *, tunnelled: bool
) -> Http1ResponseWriter | Http2ResponseWriter:
    if tunnelled:
        return Http2ResponseWriter(transport, flow)  # type: ignore[arg-type]
    return Http1ResponseWriter(transport, flow)


def simple_response(status: int, reason: str, extra: Headers | None = None) -> tuple[Headers, bytes]:
    """Headers and body of a short plain-text response (handshake errors)."""
    headers, body = error_response(status, reason)
    return headers + (extra or []), body


def with_server_headers(headers: Headers, context: ServerContext) -> Headers:
    """`headers` plus `Server` and `Date`, as configured, unless the app sent its own."""
    names = {name.lower() for name, _ in headers}
    extra: Headers = []
    if context.config.server_header and b"server" not in names:
        extra.append((b"server", context.server_name))
    if context.config.date_header and b"date" not in names:
        extra.append((b"date", http_date()))
    return [*headers, *extra]


def reject(writer: ResponseWriter, exc: HandshakeError, context: ServerContext) -> None:
    """Answer an invalid handshake request with its status (400, 426...) and a short text body."""
    headers, body = simple_response(exc.status, str(exc), exc.headers)
    writer.start_response(exc.status, with_server_headers(headers, context))
    writer.send_data(body)
    writer.end_response(None)
