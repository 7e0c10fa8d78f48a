"""HTTP/2 header blocks in and out: a request's pseudo-headers, checks and limits, a response's head and trailers.

Requests are checked here rather than by h2 (its inbound validation is turned off, see `_settings`): one pass
over the fields does RFC 9113 section 8.2 and 8.3's checks together with what an ASGI server adds, where h2's
chain of generators costs several Python calls per field. A malformed request is a stream error (section
8.1.1, `MalformedRequest`): the stream is reset with PROTOCOL_ERROR and the connection's other streams go on.
What is added on top: the request-size limits shared with HTTP/1.1 (431 and 414, as there), a `host` field for
apps that read it, `cookie` fields joined back into one (section 8.2.3), and the reverse for responses: the
app's HTTP/1-style headers made fit for HTTP/2 before h2 sees them, because h2 changes the stream's state
before validating what it sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from asgi_core import Config, Headers, HeadRejected, has_control_character, is_token

from ._errors import MalformedRequest

#: Fields that describe one HTTP/1.1 hop and mean nothing (or are forbidden) in HTTP/2, RFC 9113 8.2.2.
CONNECTION_SPECIFIC: Final = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"te"}
)
_FORWARDING: Final = frozenset({b"forwarded", b"x-forwarded-for", b"x-forwarded-proto"})
_REQUEST_LINE_OVERHEAD: Final = len(b"  HTTP/2")
#: Section 8.2.1: what a received field name may contain (no controls, space, upper case, DEL, non-ASCII or
#: colon). Wider than a token (`asgi_core.is_token`): a name that is no token is still well-formed HTTP/2, and h2 let it through.
_NAME_BYTES: Final = bytes(range(0x21, 0x7F)).translate(None, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ:")
_NAME_CACHE_SIZE: Final = 512
#: Names already found well-formed: the names a server receives are few and come back with every request.
_good_names: Final[set[bytes]] = set()
_WHITESPACE: Final = (0x20, 0x09)


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
    """The request in a received header block. Raises `MalformedRequest` or `HeadRejected`."""
    method = scheme = path = authority = protocol = host = None
    headers: Headers = []
    cookies: list[bytes] = []
    content_length: int | None = None
    forwarded = expect_continue = regular = False
    field_limit = config.limit_request_field_size
    for name, value in raw:
        if value and not _valid_value(value):
            raise MalformedRequest(f"invalid value for {name!r}")
        if name[:1] == b":":
            if regular:
                raise MalformedRequest(f"pseudo-header {name!r} after a regular field")
            if name == b":method":
                duplicate, method = method is not None, value
            elif name == b":path":
                duplicate, path = path is not None, value
            elif name == b":scheme":
                duplicate, scheme = scheme is not None, value
            elif name == b":authority":
                duplicate, authority = authority is not None, value
            elif name == b":protocol":
                duplicate, protocol = protocol is not None, value
            else:
                raise MalformedRequest(f"unknown pseudo-header {name!r}")
            if duplicate:
                raise MalformedRequest(f"repeated pseudo-header {name!r}")
            continue
        regular = True
        if name not in _good_names:
            _check_name(name)
        if field_limit and len(name) + len(value) + 2 > field_limit:
            raise HeadRejected(431, "header field too large")
        if name == b"cookie":
            cookies.append(value)
            if len(cookies) > 1:
                continue  # joined into the first one below
        elif name == b"host":
            if host is not None:
                raise MalformedRequest("repeated host")
            host = value
        elif name == b"content-length":
            try:
                content_length = int(value)
            except ValueError:
                raise HeadRejected(400, "invalid content-length") from None
        elif name == b"expect":
            expect_continue = value.lower() == b"100-continue"
        elif name in _FORWARDING:
            forwarded = True
        elif name in CONNECTION_SPECIFIC and (name != b"te" or value.lower() != b"trailers"):
            raise MalformedRequest(f"connection-specific field {name!r}")
        headers.append((name, value))
    _check_pseudo_headers(method, scheme, path, authority, protocol, host)
    assert method is not None  # noqa: S101 - _check_pseudo_headers refuses a request without one
    if len(headers) > config.limit_request_fields:
        raise HeadRejected(431, "too many header fields")
    if path is None:
        path = authority or b""  # a CONNECT request's target is its authority
    line_limit = config.limit_request_line
    if line_limit and len(method) + len(path) + _REQUEST_LINE_OVERHEAD > line_limit:
        raise HeadRejected(414, "request line too long")
    if len(cookies) > 1:
        index = next(i for i, (name, _) in enumerate(headers) if name == b"cookie")
        headers[index] = (b"cookie", b"; ".join(cookies))
    if authority is not None and host is None:
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


def check_trailers(raw: list[tuple[bytes, bytes]]) -> None:
    """Received trailers: regular fields only, well-formed (section 8.1). Raises `MalformedRequest`."""
    for name, value in raw:
        if name[:1] == b":":
            raise MalformedRequest(f"pseudo-header {name!r} in trailers")
        if name not in _good_names:
            _check_name(name)
        if value and not _valid_value(value):
            raise MalformedRequest(f"invalid value for {name!r}")


def _check_pseudo_headers(
    method: bytes | None,
    scheme: bytes | None,
    path: bytes | None,
    authority: bytes | None,
    protocol: bytes | None,
    host: bytes | None,
) -> None:
    """Section 8.3.1 and RFC 8441 section 4: which pseudo-headers each kind of request must and must not have."""
    if method is None:
        raise MalformedRequest("no :method")
    if method == b"CONNECT" and protocol is None:
        if scheme is not None or path is not None:
            raise MalformedRequest("CONNECT with :scheme or :path")
        if authority is None:
            raise MalformedRequest("CONNECT without :authority")
    else:
        if protocol is not None and method != b"CONNECT":
            raise MalformedRequest(":protocol on a request other than CONNECT")
        if scheme is None or path is None:
            raise MalformedRequest("no :scheme or :path")
        if not path:
            raise MalformedRequest("empty :path")
    if authority is None and host is None:
        raise MalformedRequest("neither :authority nor host")
    if authority is not None and host is not None and authority != host:
        raise MalformedRequest(":authority and host disagree")


def _check_name(name: bytes) -> None:
    if not name or name.translate(None, _NAME_BYTES):
        raise MalformedRequest(f"invalid field name {name!r}")
    if len(_good_names) < _NAME_CACHE_SIZE:
        _good_names.add(name)


def _valid_value(value: bytes) -> bool:
    """Section 8.2.1 and RFC 9110 section 5.5: no control character but HTAB (NUL, CR and LF included), and no
    whitespace at either end (an empty value is fine)."""
    if has_control_character(value):
        return False
    return value[0] not in _WHITESPACE and value[-1] not in _WHITESPACE


def response_head(status: int, headers: Headers) -> Headers:
    """`:status` and the app's headers as HTTP/2 carries them. Raises `ValueError` for one it cannot send."""
    return [(b":status", str(status).encode("ascii")), *fields(headers)]


def fields(headers: Headers) -> Headers:
    """Lower-cased names, connection-specific fields dropped, values without surrounding whitespace; a name or
    value HTTP/2 forbids raises `ValueError` (RFC 9113 section 8.2.1; a control character other than HTAB,
    RFC 9110 section 5.5)."""
    result: Headers = []
    for raw_name, raw_value in headers:
        name = raw_name.lower()
        if name in CONNECTION_SPECIFIC:
            continue
        if not is_token(name):
            raise ValueError(f"invalid header name {raw_name!r}")
        value = raw_value.strip(b" \t")
        if has_control_character(value):  # RFC 9110 section 5.5, as for the requests we receive
            raise ValueError(f"invalid value for header {raw_name!r}")
        result.append((name, value))
    return result
