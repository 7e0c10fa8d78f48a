"""HTTP/3 field sections in and out: a request's pseudo-headers and limits, a response's head and trailers.

aioquic has already checked a received section against RFC 9114 section 4.3 (pseudo-headers present, once,
first; lower-case names; no connection-specific fields) and treats a malformed one as a connection error. What
is added here is what an ASGI server adds on every HTTP version: the request-size limits shared with HTTP/1.1
and HTTP/2 (431 and 414, answered on the stream), a `host` field for apps that read it, `cookie` fields joined
back into one (section 4.2.1), and for responses the app's HTTP/1-style headers made fit for HTTP/3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from asgi_core import Config, Headers, HeadRejected, has_control_character, is_token

#: Fields that describe one HTTP/1.1 hop and are forbidden in HTTP/3 (RFC 9114 section 4.2).
CONNECTION_SPECIFIC: Final = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"te"}
)
_REQUEST_LINE_OVERHEAD: Final = len(b"  HTTP/3")
#: RFC 9114 section 4.2.2: a field's size counts 32 bytes of overhead besides its name and value.
_FIELD_OVERHEAD: Final = 32
_NAME_CACHE_SIZE: Final = 512
#: Response field names already found to be lower-case tokens that HTTP/3 may carry.
_good_names: Final[set[bytes]] = set()


@dataclass(slots=True)
class RequestHead:
    method: str
    path: bytes
    protocol: str | None
    headers: Headers
    content_length: int | None
    expect_continue: bool


def parse_request(raw: Headers, config: Config, max_section_size: int) -> RequestHead:
    """The request in a decoded field section. Raises `HeadRejected`."""
    method = path = authority = protocol = None
    host = False
    headers: Headers = []
    cookies: list[bytes] = []
    content_length: int | None = None
    expect_continue = False
    field_limit = config.limit_request_field_size
    size = 0
    for name, value in raw:
        size += len(name) + len(value) + _FIELD_OVERHEAD
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
        if has_control_character(value):
            raise HeadRejected(400, f"invalid value for {name!r}")
        if field_limit and len(name) + len(value) + 2 > field_limit:
            raise HeadRejected(431, "header field too large")
        if name == b"cookie":
            cookies.append(value)
            if len(cookies) > 1:
                continue  # joined into the first one below
        elif name == b"host":
            host = True
        elif name == b"content-length":
            content_length = int(value)  # aioquic checked it is a non-negative integer
        elif name == b"expect":
            expect_continue = value.lower() == b"100-continue"
        headers.append((name, value))
    if size > max_section_size:
        raise HeadRejected(431, "header section too large")
    if len(headers) > config.limit_request_fields:
        raise HeadRejected(431, "too many header fields")
    if method is None:
        raise HeadRejected(400, "no :method")
    if path is None:
        if method != b"CONNECT" or protocol is not None:
            raise HeadRejected(400, "no :path")
        path = authority or b""  # a CONNECT request's target is its authority
    line_limit = config.limit_request_line
    if line_limit and len(method) + len(path) + _REQUEST_LINE_OVERHEAD > line_limit:
        raise HeadRejected(414, "request line too long")
    if len(cookies) > 1:
        index = next(i for i, (name, _) in enumerate(headers) if name == b"cookie")
        headers[index] = (b"cookie", b"; ".join(cookies))
    if authority is not None and not host:
        headers.insert(0, (b"host", authority))
    return RequestHead(
        method=method.decode("ascii", "replace"),
        path=path,
        protocol=protocol.decode("ascii", "replace") if protocol is not None else None,
        headers=headers,
        content_length=content_length,
        expect_continue=expect_continue,
    )


def response_head(status: int, headers: Headers) -> Headers:
    """`:status` and the app's headers as HTTP/3 carries them. Raises `ValueError` for one it cannot send."""
    return [(b":status", str(status).encode("ascii")), *fields(headers)]


def fields(headers: Headers) -> Headers:
    """Lower-cased names, connection-specific fields dropped, values without surrounding whitespace; a name
    that is no token or a value with a control character raises `ValueError` (RFC 9110 section 5)."""
    result: Headers = []
    for raw_name, raw_value in headers:
        if raw_name in _good_names:  # the names an app sends are few and come back with every response
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
