"""Checks on a request head that h11 leaves to the server, and the canned replies to broken requests."""

from __future__ import annotations

from http import HTTPStatus

import h11
from asgi_core import Config

_REQUEST_LINE_OVERHEAD = len(b"  HTTP/1.1")


class HeadRejected(Exception):
    """A request head breaks a limit; `status` is what the client is told before the connection closes."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def check_partial_head(buffered: bytes, config: Config) -> None:
    """On an incomplete head: a request line already longer than allowed need not be waited for."""
    limit = config.limit_request_line
    if not limit:
        return
    line_end = buffered.find(b"\n")
    if (line_end == -1 and len(buffered) > limit + 2) or line_end > limit + 1:
        raise HeadRejected(414, "request line too long")


def check_head(request: h11.Request, config: Config) -> None:
    limit = config.limit_request_line
    if limit and len(request.method) + len(request.target) + _REQUEST_LINE_OVERHEAD > limit:
        raise HeadRejected(414, "request line too long")
    headers = request.headers
    if len(headers) > config.limit_request_fields:
        raise HeadRejected(431, "too many header fields")
    field_limit = config.limit_request_field_size
    if field_limit:
        for name, value in headers:
            if len(name) + len(value) + 2 > field_limit:
                raise HeadRejected(431, "header field too large")


def error_response(status: int) -> bytes:
    """A complete HTTP/1.1 reply that closes the connection, written without h11 because h11 refuses to
    send anything once the peer broke the protocol."""
    phrase = HTTPStatus(status).phrase
    body = f"{status} {phrase}\n".encode("ascii")
    return (
        f"HTTP/1.1 {status} {phrase}\r\n"
        "content-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode("ascii") + body
