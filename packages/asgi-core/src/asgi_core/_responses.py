"""The responses a server makes up itself: one reason-phrase table and one form of canned error, for every
protocol. Each protocol only frames them (a status line and `Connection: close` on HTTP/1.1, `:status` and
END_STREAM on HTTP/2, a CGI-style head on uWSGI); what they say is decided here once."""

from __future__ import annotations

from http import HTTPStatus
from typing import Final

from ._types import Headers

#: Status code to reason phrase, for status lines (HTTP/1.1, uWSGI's reply head).
REASONS: Final[dict[int, bytes]] = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}


def reason_phrase(status: int) -> bytes:
    """The reason phrase of `status`; empty for a code the standard library does not name (RFC 9112 allows it)."""
    return REASONS.get(status, b"")


def error_response(status: int, detail: str | None = None) -> tuple[Headers, bytes]:
    """Headers and body of a short plain-text error the server sends on its own (the app's 500, a refused
    head, an oversized body): the reason phrase, then `detail` after a colon when there is one to tell."""
    body = REASONS.get(status, b"Error")
    if detail:
        body += b": " + detail.encode("ascii", "replace")
    headers: Headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
    ]
    return headers, body
