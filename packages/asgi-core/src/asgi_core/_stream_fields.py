"""Field sections of the multiplexed HTTP versions, HTTP/2 (RFC 9113) and HTTP/3 (RFC 9114), in and out.

Both carry a request as pseudo-headers (`:method`, `:path`, `:authority`, `:protocol`) followed by regular
fields, and a response as `:status` followed by the fields, with lower-case names and none of HTTP/1.1's
connection-specific fields (RFC 9113 section 8.2.2, RFC 9114 section 4.2). Each protocol reads the
pseudo-headers and checks what its library left unchecked (h2's validation is off; aioquic does RFC 9114
section 4.3's checks); what follows is the same on both and lives here:

- `request_head`: the request-size limits shared with HTTP/1.1 (431 and 414, as there), a `host` field for
  apps that read it, the `cookie` fields joined back into one (RFC 9113 section 8.2.3, RFC 9114 section
  4.2.1), the declared length and `Expect: 100-continue`;
- `response_head` and `response_fields`: the app's HTTP/1-style headers made fit for the multiplexed wire;
- `StreamResponse`: a response's head held until the next call, so that a response without a body leaves as
  a single HEADERS frame ending the stream, and its body held to the content-length it declares.

Hot module: this code runs for every request stream (its speed tricks: docs/discussion/design.md, "Speed").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from ._config import Config
from ._errors import HeadRejected
from ._fields import content_length, has_control_character, is_token
from ._types import Headers

#: Fields that describe one HTTP/1.1 hop and are forbidden on HTTP/2 and HTTP/3 (RFC 9113 8.2.2, RFC 9114 4.2).
CONNECTION_SPECIFIC: Final = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"te"}
)
#: What an HTTP/1.1 request line adds to the method and target (`limit_request_line` counts it the same way).
_REQUEST_LINE_OVERHEAD: Final = len(b"  HTTP/2")
_BODYLESS: Final = frozenset({204, 304})
_NAME_CACHE_SIZE: Final = 512
#: Response field names already found to be lower-case tokens: the names an app sends are few and come back
#: with every response.
_good_names: Final[set[bytes]] = set()


@dataclass(slots=True, init=False)
class RequestHead:
    """A request as a multiplexed protocol hands it on: to the app (`stream_cycle`) or to a tunnel. One is made
    per stream: its `__init__` is written out, as the one `dataclass` generates stays interpreted when compiled
    (`ConnectionInfo`)."""

    method: str
    path: bytes
    #: `:protocol`, set on an extended CONNECT (RFC 8441, RFC 9220).
    protocol: str | None
    headers: Headers
    content_length: int | None
    expect_continue: bool
    authority: bytes | None
    #: A `forwarded` or `x-forwarded-*` field is present (whether a trusted proxy's is for the caller to say).
    forwarded: bool

    def __init__(
        self,
        method: str,
        path: bytes,
        protocol: str | None,
        headers: Headers,
        content_length: int | None,
        expect_continue: bool,  # noqa: FBT001 - the field, as the dataclass names it
        authority: bytes | None = None,
        forwarded: bool = False,  # noqa: FBT001, FBT002
    ) -> None:
        self.method, self.path, self.protocol = method, path, protocol
        self.headers, self.content_length, self.expect_continue = headers, content_length, expect_continue
        self.authority, self.forwarded = authority, forwarded


def request_head(
    fields: Headers,
    config: Config,
    *,
    method: bytes,
    path: bytes | None,
    authority: bytes | None,
    protocol: bytes | None,
    has_host: bool,
    forwarded: bool = False,
) -> RequestHead:
    """The request whose pseudo-headers the protocol has read and checked, and whose regular `fields` it
    collected in order (every `cookie` field still apart). Raises `HeadRejected`."""
    field_limit = config.limit_request_field_size
    length: int | None = None
    expect_continue = False
    cookies = 0
    for name, value in fields:
        if field_limit and len(name) + len(value) + 2 > field_limit:
            raise HeadRejected(431, "header field too large")
        if name == b"cookie":
            cookies += 1
        elif name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                raise HeadRejected(400, "invalid content-length") from None
        elif name == b"expect":
            expect_continue = value.lower() == b"100-continue"
    if cookies > 1:
        fields = _join_cookies(fields)
    if len(fields) > config.limit_request_fields:
        raise HeadRejected(431, "too many header fields")
    if path is None:
        path = authority or b""  # a CONNECT request's target is its authority
    line_limit = config.limit_request_line
    if line_limit and len(method) + len(path) + _REQUEST_LINE_OVERHEAD > line_limit:
        raise HeadRejected(414, "request line too long")
    if authority is not None and not has_host:
        fields.insert(0, (b"host", authority))
    return RequestHead(
        method=method.decode("ascii", "replace"),
        path=path,
        protocol=protocol.decode("ascii", "replace") if protocol is not None else None,
        headers=fields,
        content_length=length,
        expect_continue=expect_continue,
        authority=authority,
        forwarded=forwarded,
    )


def _join_cookies(fields: Headers) -> Headers:
    """The `cookie` fields as one, where the first one stood (RFC 9113 section 8.2.3)."""
    joined = b"; ".join([value for name, value in fields if name == b"cookie"])
    result: Headers = []
    seen = False
    for name, value in fields:
        if name != b"cookie":
            result.append((name, value))
        elif not seen:
            seen = True
            result.append((b"cookie", joined))
    return result


def is_head_request(raw: Headers) -> bool:
    """Whether a received field section is a HEAD request's (its refusal then carries no body)."""
    return any(name == b":method" and value == b"HEAD" for name, value in raw)


def response_head(status: int, headers: Headers) -> Headers:
    """`:status` and the app's headers as HTTP/2 and HTTP/3 carry them. Raises `ValueError` for one they
    cannot carry."""
    return [(b":status", str(status).encode("ascii")), *response_fields(headers)]


def response_fields(headers: Headers) -> Headers:
    """Lower-cased names, connection-specific fields dropped, values without surrounding whitespace; a name
    that is no token or a value with a control character other than HTAB raises `ValueError` (RFC 9110
    section 5, RFC 9113 section 8.2.1)."""
    result: Headers = []
    for raw_name, raw_value in headers:
        if raw_name in _good_names:
            name = raw_name
        else:
            name = raw_name.lower()
            if name in CONNECTION_SPECIFIC:
                continue
            if not is_token(name):
                raise ValueError(f"invalid header name {raw_name!r}")
            if name == raw_name and len(_good_names) < _NAME_CACHE_SIZE:
                _good_names.add(name)
        value = raw_value.strip(b" \t")
        if has_control_character(value):
            raise ValueError(f"invalid value for header {raw_name!r}")
        result.append((name, value))
    return result


class StreamResponse:
    """The response side of one request stream, whatever frames it: the head held until the body's first
    bytes or its end, the body counted against the content-length the head declares, the trailers made fit
    for the wire. The stream asks what to send; sending is its own."""

    __slots__ = ("_declared", "_expect_continue", "_head_request", "_sent", "head")

    def __init__(self, request: RequestHead, *, ended: bool) -> None:
        self._head_request = request.method == "HEAD"
        #: `Expect: 100-continue` is answered only while the request's body is still to come.
        self._expect_continue = request.expect_continue and not ended
        #: The head `start` made and no frame has carried yet.
        self.head: Headers | None = None
        self._declared: int | None = None
        self._sent = 0

    def continue_due(self) -> bool:
        """Whether the app's first wait for body is when to answer `Expect: 100-continue` (once, and only if
        no response has started)."""
        if self._expect_continue and self.head is None:
            self._expect_continue = False
            return True
        return False

    def start(self, status: int, headers: Headers) -> None:
        """Hold the head of the response. Raises `ValueError` (nothing held) for one the wire cannot carry."""
        self.head, self._declared = self._framed(status, headers)
        self._expect_continue = False

    def whole(self, status: int, headers: Headers, size: int) -> Headers:
        """The head of a response sent in one piece of `size` bytes. Raises `ValueError` for a head the wire
        cannot carry or a content-length other than `size`."""
        head, declared = self._framed(status, headers)
        if declared is not None and declared != size:
            raise ValueError(f"content-length {declared} for a body of {size} bytes")
        self._expect_continue = False
        return head

    def take_head(self) -> Headers | None:
        """The held head, for the frame about to go; None once it went."""
        head, self.head = self.head, None
        return head

    def count(self, size: int) -> None:
        """`size` more bytes of body. RFC 9113 section 8.1.1 and RFC 9114 section 4.1.2: a body longer than its
        content-length is malformed, so the app is told (`ValueError`; the cycle then resets the stream)
        rather than the client receiving a broken response."""
        self._sent += size
        if self._declared is not None and self._sent > self._declared:
            raise ValueError(f"more body than the declared content-length of {self._declared}")

    def end(self, trailers: Headers | None, logger: logging.Logger) -> Headers | None:
        """The body is complete: the trailers to send, if any. Raises `ValueError` when the body fell short of
        its content-length; a trailer the wire cannot carry is dropped (the body is out already)."""
        if self._declared is not None and self._sent != self._declared:
            raise ValueError(f"body of {self._sent} bytes for a declared content-length of {self._declared}")
        if not trailers:
            return None
        try:
            return response_fields(trailers)
        except ValueError as exc:
            logger.warning("trailers dropped: %s", exc)
            return None

    def _framed(self, status: int, headers: Headers) -> tuple[Headers, int | None]:
        head = response_head(status, headers)
        if self._head_request or status in _BODYLESS:
            return head, None
        declared = None
        for name, value in head:
            if name == b"content-length":
                declared = content_length(value)  # ValueError: the cycle answers 500
                if not value.isdigit():  # "5, 5": sent on as the one value it means
                    head = [(n, b"%d" % declared if n == b"content-length" else v) for n, v in head]
        return head, declared


def informational_head(status: int, headers: Headers, logger: logging.Logger) -> Headers | None:
    """A 1xx response's head, or None (logged) when the wire cannot carry its headers: an informational
    response is optional, so it is dropped rather than failing the request."""
    try:
        return response_head(status, headers)
    except ValueError as exc:
        logger.debug("informational response dropped: %s", exc)
        return None
