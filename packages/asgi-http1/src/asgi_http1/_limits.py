"""Checks on a request head that h11 leaves to the server, and the canned replies to broken requests."""

from __future__ import annotations

import re
from typing import Final

from asgi_core import Config, Headers, HeadRejected, has_control_character, reason_phrase
from asgi_core import error_response as canned_error

from ._request import Request

_REQUEST_LINE_OVERHEAD: Final = len(b"  HTTP/1.1")


class HeadGuard:
    """Reads the raw bytes of a request head, before any parser, for what h11 tolerates and we refuse.

    h11 accepts a bare LF as a line end, unfolds obs-fold lines and merges repeated Content-Length fields; RFC
    9112 lets a server accept or reject each, and rejecting is what keeps us from disagreeing with a proxy in
    front about where a request ends (request smuggling). The guard sees every byte of a head once, so a client
    trickling bytes costs linear work, and it tells an over-long request line (414) before the line ends.
    """

    __slots__ = ("_buffer", "_done", "_limit", "_line_from", "_line_ok", "_search_from")

    def __init__(self, config: Config, buffer: bytearray) -> None:
        """`buffer`: the receive buffer, which the guard reads in place (and never changes)."""
        self._limit = config.limit_request_line
        self._buffer = buffer
        self.reset()

    def reset(self) -> None:
        """A new head starts at the front of the buffer."""
        self._search_from = self._line_from = 0
        self._line_ok = not self._limit
        self._done = False

    def check(self) -> bytes | None:
        """Raise `HeadRejected` for a broken head: the whole head once it is complete, its first line before.
        Returns the head once it is complete (up to and including its empty line), once per head."""
        if self._done:
            return None
        match = _BLANK_LINE.search(self._buffer, self._search_from)
        if match is None:
            self._search_from = max(0, len(self._buffer) - 2)
            self._check_request_line()
            return None
        head = bytes(self._buffer[: match.end()])
        self._done = True
        check_raw_head(head)
        return head

    def _check_request_line(self) -> None:
        if self._line_ok:
            return
        end = self._buffer.find(b"\n", self._line_from)
        if end != -1:
            self._line_ok = True
        else:
            self._line_from = len(self._buffer)
        if (end == -1 and len(self._buffer) > self._limit + 2) or end > self._limit + 1:
            raise HeadRejected(414, "request line too long")


_BLANK_LINE: Final = re.compile(rb"\n\r?\n")  # where h11 ends a head
_CONTENT_LENGTH: Final = re.compile(rb"\ncontent-length[ \t]*:([^\r\n]*)", re.IGNORECASE)


def check_raw_head(head: bytes) -> None:
    """A complete head, as received, up to and including its empty line."""
    crlf = head.count(b"\r\n")
    if head.count(b"\n") != crlf or head.count(b"\r") != crlf:
        raise HeadRejected(400, "bare CR or LF in the request head")
    # `find`, not `in`, for bytes in bytes: see docs/discussion/design.md, "Speed".
    if head.find(b"\n ") >= 0 or head.find(b"\n\t") >= 0:
        raise HeadRejected(400, "obsolete line folding in the request head")
    if head.find(b"\x00") >= 0:
        raise HeadRejected(400, "NUL in the request head")
    if head.lower().find(b"content-length") < 0:
        return  # the common head, with no body: no need for the (slower) search below
    lengths = _CONTENT_LENGTH.findall(head)
    if len(lengths) > 1 or any(value.find(b",") >= 0 for value in lengths):
        raise HeadRejected(400, "more than one Content-Length")


def refuse_control_characters(headers: Headers) -> None:
    """RFC 9110 section 5.5: a field value holding a control character other than HTAB (BEL, DEL, ESC...) is
    invalid. h11 and llhttp let some of them through, so their readings are checked here (the fast parser's strict
    grammar admits none of them)."""
    for _, value in headers:
        if has_control_character(value):
            raise HeadRejected(400, "control character in a header field value")


def check_head(request: Request, config: Config) -> None:
    limit = config.limit_request_line
    if limit and len(request.method) + len(request.target) + _REQUEST_LINE_OVERHEAD > limit:
        raise HeadRejected(414, "request line too long")
    headers = request.headers
    version = request.http_version
    if not version.startswith(b"1."):
        raise HeadRejected(505, "only HTTP/1.x is served here")
    check_target(request.method, request.target)
    # RFC 9112 section 3.2; the engine has made sure there is at most one Host.
    if request.host is not None and not valid_host(request.host):
        raise HeadRejected(400, "invalid Host header")
    # RFC 9112 section 6.3 lets a server reject this pairing, and h11 would silently prefer the chunked framing:
    # a proxy in front that picked Content-Length would then disagree with us about where the request ends.
    if request.chunked:
        if request.content_length is not None:
            raise HeadRejected(400, "both Content-Length and Transfer-Encoding (request smuggling)")
        if version == b"1.0":
            # RFC 9112 section 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
            raise HeadRejected(400, "Transfer-Encoding in an HTTP/1.0 request")
    if len(headers) > config.limit_request_fields:
        raise HeadRejected(431, "too many header fields")
    field_limit = config.limit_request_field_size
    if field_limit and not 0 < request.head_size <= field_limit:  # a head within the limit has no field past it
        for name, value in headers:
            if len(name) + len(value) + 2 > field_limit:
                raise HeadRejected(431, "header field too large")


_ABSOLUTE_FORM: Final = re.compile(rb"[A-Za-z][A-Za-z0-9+.-]*://")
# uri-host [":" port]: a reg-name, an IPv4 address or a bracketed IP literal; empty is allowed (RFC 9112 3.2).
_HOST: Final = re.compile(rb"(\[[0-9A-Fa-f:.vV]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]*)(:[0-9]*)?")
# Host values found valid: a server sees a few again and again, and a set lookup costs a tenth of the match.
# Bounded, in count and length, so that clients sending new names only cost the match each.
_VALID_HOSTS: Final[set[bytes]] = set()
_VALID_HOSTS_KEPT: Final = 256
_VALID_HOST_LENGTH_KEPT: Final = 261  # a DNS name's 253 bytes and a port


def valid_host(host: bytes) -> bool:
    """RFC 9112 section 3.2's `Host` value: uri-host, an optional port; empty allowed."""
    if host in _VALID_HOSTS:
        return True
    if _HOST.fullmatch(host) is None:
        return False
    if len(_VALID_HOSTS) < _VALID_HOSTS_KEPT and len(host) <= _VALID_HOST_LENGTH_KEPT:
        _VALID_HOSTS.add(host)
    return True


def check_target(method: bytes, target: bytes) -> None:
    """RFC 9112 section 3.2: which request-target form goes with which method."""
    if method == b"CONNECT":
        if target.find(b"/") >= 0 or not _HOST.fullmatch(target):
            raise HeadRejected(400, "CONNECT needs an authority-form target (host:port)")
        # A 2xx answer would turn the connection into a tunnel, which ASGI cannot carry: an app could only ever
        # refuse, so the server does, before the app (RFC 9110 section 15.6.2: a method it does not support).
        raise HeadRejected(501, "CONNECT (a tunnel) is not served over ASGI")
    if target == b"*":
        if method != b"OPTIONS":
            raise HeadRejected(400, "the asterisk-form target is for OPTIONS only")
    elif not target.startswith(b"/") and not _ABSOLUTE_FORM.match(target):
        raise HeadRejected(400, "request target is neither origin-form nor absolute-form")


def error_response(status: int) -> bytes:
    """A complete HTTP/1.1 reply that closes the connection, written without h11 because h11 refuses to
    send anything once the peer broke the protocol."""
    headers, body = canned_error(status)
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status))]
    lines.extend(b"%s: %s\r\n" % field for field in headers)
    lines.append(b"connection: close\r\n\r\n")
    return b"".join(lines) + body
