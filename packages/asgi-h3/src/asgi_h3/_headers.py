"""HTTP/3 field sections in: a request's pseudo-headers and the limits HTTP/3 alone has.

aioquic has already checked a received section against RFC 9114 section 4.3 (pseudo-headers present, once,
first; lower-case names; no connection-specific fields) and treats a malformed one as a connection error. What
is added here is the field section's size limit (section 4.2.2) and a 400 for control characters; what an ASGI
server adds on every HTTP version (the request-size limits shared with HTTP/1.1 and HTTP/2, answered on the
stream, a `host` field for apps that read it, `cookie` fields joined back into one, section 4.2.1) is
asgi-core's `request_head`, shared with HTTP/2, as are responses (`response_head`).
"""

from __future__ import annotations

from typing import Final

from asgi_core import Config, Headers, HeadRejected, RequestHead, has_control_character, request_head

#: RFC 9114 section 4.2.2: a field's size counts 32 bytes of overhead besides its name and value.
_FIELD_OVERHEAD: Final = 32


def parse_request(raw: Headers, config: Config, max_section_size: int) -> RequestHead:
    """The request in a decoded field section. Raises `HeadRejected`."""
    method = path = authority = protocol = None
    host = False
    headers: Headers = []
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
        host = host or name == b"host"
        headers.append((name, value))
    if size > max_section_size:
        raise HeadRejected(431, "header section too large")
    if method is None:
        raise HeadRejected(400, "no :method")
    if path is None and (method != b"CONNECT" or protocol is not None):
        raise HeadRejected(400, "no :path")
    return request_head(
        headers, config, method=method, path=path, authority=authority, protocol=protocol, has_host=host
    )
