"""HTTP/2 header blocks in: a request's pseudo-headers and the checks h2 is not asked to make.

Requests are checked here rather than by h2 (its inbound validation is turned off, see `_settings`): one pass
over the fields does RFC 9113 section 8.2 and 8.3's checks, where h2's chain of generators costs several Python
calls per field. A malformed request is a stream error (section 8.1.1, `MalformedRequest`): the stream is reset
with PROTOCOL_ERROR and the connection's other streams go on. What HTTP/3 does the same (the size limits, the
`host` field, the joined cookies) is asgi-core's `request_head`, and so are responses: `response_head` makes
the app's HTTP/1-style headers fit for HTTP/2 before h2 sees them, because h2 changes the stream's state before
validating what it sends.
"""

from __future__ import annotations

from typing import Final, NoReturn

from asgi_core import CONNECTION_SPECIFIC, Config, Headers, RequestHead, has_control_character, request_head

from ._errors import MalformedRequest

_FORWARDING: Final = frozenset({b"forwarded", b"x-forwarded-for", b"x-forwarded-proto"})
#: Section 8.2.1: what a received field name may contain (no controls, space, upper case, DEL, non-ASCII or
#: colon). Wider than a token (`asgi_core.is_token`): a name that is no token is still well-formed HTTP/2, and h2 let it through.
_NAME_BYTES: Final = bytes(range(0x21, 0x7F)).translate(None, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ:")
_NAME_CACHE_SIZE: Final = 512
#: Names already found well-formed: the names a server receives are few and come back with every request.
_good_names: Final[set[bytes]] = set()
_WHITESPACE: Final = (0x20, 0x09)


def parse_request(raw: list[tuple[bytes, bytes]], config: Config) -> RequestHead:
    """The request in a received header block. Raises `MalformedRequest` or `HeadRejected`."""
    method = scheme = path = authority = protocol = host = None
    headers: Headers = []
    forwarded = regular = False
    # One search for a control character in all the values (joined by a space, which is allowed), rather than
    # one per value: the search's own setup costs more than scanning a request's few hundred bytes.
    if has_control_character(b" ".join([value for _, value in raw])):
        _refuse_values(raw)
    for name, value in raw:
        if value and (value[0] in _WHITESPACE or value[-1] in _WHITESPACE):
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
        if name == b"host":
            if host is not None:
                raise MalformedRequest("repeated host")
            host = value
        elif name in _FORWARDING:
            forwarded = True
        elif name in CONNECTION_SPECIFIC and (name != b"te" or value.lower() != b"trailers"):
            raise MalformedRequest(f"connection-specific field {name!r}")
        headers.append((name, value))
    _check_pseudo_headers(method, scheme, path, authority, protocol, host)
    assert method is not None  # noqa: S101 - _check_pseudo_headers refuses a request without one
    return request_head(
        headers,
        config,
        method=method,
        path=path,
        authority=authority,
        protocol=protocol,
        has_host=host is not None,
        forwarded=forwarded,
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


def _refuse_values(raw: list[tuple[bytes, bytes]]) -> NoReturn:
    """Raise `MalformedRequest` naming the first field whose value is invalid (one holds a control character)."""
    for name, value in raw:
        if value and not _valid_value(value):
            raise MalformedRequest(f"invalid value for {name!r}")
    raise MalformedRequest("invalid field value")


def _valid_value(value: bytes) -> bool:
    """Section 8.2.1 and RFC 9110 section 5.5: no control character but HTAB (NUL, CR and LF included), and no
    whitespace at either end (an empty value is fine)."""
    if has_control_character(value):
        return False
    return value[0] not in _WHITESPACE and value[-1] not in _WHITESPACE
