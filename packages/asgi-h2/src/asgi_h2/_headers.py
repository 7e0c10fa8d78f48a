"""HTTP/2 header blocks in and out: a request's pseudo-headers and limits, a response's head and trailers.

h2 has already checked the request's pseudo-headers against RFC 9113 section 8.3 (present, not repeated,
before the regular fields, `:protocol` only on CONNECT) and refused connection-specific fields. What is left
here is what an ASGI server adds: the request-size limits shared with HTTP/1.1 (431 and 414, as there), a
`host` field for apps that read it, `cookie` fields joined back into one (section 8.2.3), and the reverse for
responses: the app's HTTP/1-style headers made fit for HTTP/2 before h2 sees them, because h2 changes the
stream's state before validating what it sends.
"""

from __future__ import annotations

from dataclasses import dataclass

from asgi_core import Config, Headers

#: Fields that describe one HTTP/1.1 hop and mean nothing (or are forbidden) in HTTP/2, RFC 9113 8.2.2.
CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"te"}
)
_FORWARDING = frozenset({b"forwarded", b"x-forwarded-for", b"x-forwarded-proto"})
_TOKEN = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
_REQUEST_LINE_OVERHEAD = len(b"  HTTP/2")


class HeadRejected(Exception):
    """A request breaks a limit; `status` is the response the stream gets instead of reaching the app."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(slots=True)
class RequestHead:
    method: str
    path: bytes
    authority: bytes | None
    protocol: str | None
    headers: Headers
    content_length: int | None
    forwarded: bool
    expect_continue: bool


def parse_request(raw: list[tuple[bytes, bytes]], config: Config) -> RequestHead:
    method = path = authority = protocol = None
    headers: Headers = []
    cookies: list[bytes] = []
    content_length: int | None = None
    forwarded = expect_continue = False
    has_host = False
    field_limit = config.limit_request_field_size
    for name, value in raw:
        if name[:1] == b":":
            if name == b":method":
                method = value
            elif name == b":path":
                path = value
            elif name == b":authority":
                authority = value
            elif name == b":protocol":
                protocol = value
            continue
        if field_limit and len(name) + len(value) + 2 > field_limit:
            raise HeadRejected(431, "header field too large")
        if name == b"cookie":
            cookies.append(value)
            if len(cookies) > 1:
                continue  # joined into the first one below
        elif name == b"host":
            has_host = True
        elif name == b"content-length":
            try:
                content_length = int(value)
            except ValueError:
                raise HeadRejected(400, "invalid content-length") from None
        elif name == b"expect":
            expect_continue = value.lower() == b"100-continue"
        elif name in _FORWARDING:
            forwarded = True
        headers.append((name, value))
    if len(headers) > config.limit_request_fields:
        raise HeadRejected(431, "too many header fields")
    if method is None:
        raise HeadRejected(
            400, "no :method"
        )  # h2 refuses this already; kept for a clear error if it ever does not
    if path is None:
        path = (authority or b"") if method == b"CONNECT" else b"/"
    line_limit = config.limit_request_line
    if line_limit and len(method) + len(path) + _REQUEST_LINE_OVERHEAD > line_limit:
        raise HeadRejected(414, "request line too long")
    if len(cookies) > 1:
        index = next(i for i, (name, _) in enumerate(headers) if name == b"cookie")
        headers[index] = (b"cookie", b"; ".join(cookies))
    if authority is not None and not has_host:
        headers.insert(0, (b"host", authority))
    return RequestHead(
        method=method.decode("ascii", "replace"),
        path=path,
        authority=authority,
        protocol=protocol.decode("ascii", "replace") if protocol is not None else None,
        headers=headers,
        content_length=content_length,
        forwarded=forwarded,
        expect_continue=expect_continue,
    )


def response_head(status: int, headers: Headers) -> Headers:
    """`:status` and the app's headers as HTTP/2 carries them. Raises `ValueError` for one it cannot send."""
    return [(b":status", str(status).encode("ascii")), *fields(headers)]


def fields(headers: Headers) -> Headers:
    """Lower-cased names, connection-specific fields dropped, values without surrounding whitespace; a name or
    value HTTP/2 forbids raises `ValueError` (RFC 9113 section 8.2.1)."""
    result: Headers = []
    for raw_name, raw_value in headers:
        name = raw_name.lower()
        if name in CONNECTION_SPECIFIC:
            continue
        if not name or name.translate(None, _TOKEN):
            raise ValueError(f"invalid header name {raw_name!r}")
        value = raw_value.strip(b" \t")
        if b"\r" in value or b"\n" in value or b"\x00" in value:
            raise ValueError(f"invalid value for header {raw_name!r}")
        result.append((name, value))
    return result
