"""From the CGI variables of a uWSGI packet to an ASGI `http` scope, through asgi-core's scope builder.

The variables are the ones nginx's `uwsgi_params` sends. The path is PATH_INFO (`$document_uri`): what nginx
routed on, after its normalisation and any `rewrite ... break`, under SCRIPT_NAME as `root_path`. REQUEST_URI
holds the target the client sent; it gives `raw_path` (the client's own percent-encoding, `%2F` included) only
when it decodes to that same path, which it no longer does after a rewrite. The query string is QUERY_STRING
(`$args`, which a rewrite may change too). Without PATH_INFO (another front end), REQUEST_URI is the target.
The client and scheme are nginx's view (REMOTE_ADDR, HTTPS, ...): the allow-list already decided that this
peer may speak for the client, so no X-Forwarded-* header is consulted.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote_from_bytes, unquote_to_bytes

from asgi_core import (
    Address,
    ConnectionInfo,
    Headers,
    HeadRejected,
    Scope,
    ServerContext,
    build_http_scope,
    has_control_character,
    is_token,
    split_target,
)

from ._packet import Request

_BAD_TARGET_BYTE = re.compile(rb"[\x00-\x20\x7f]")
_PATH_SAFE = "/!$&'()*+,;=:@-._~"
_REQUEST_LINE_OVERHEAD = len(b"  HTTP/1.1")
_MAX_PORT = 65535
_HTTP_VERSIONS = {b"HTTP/1.0": "1.0", b"HTTP/1.1": "1.1", b"HTTP/2.0": "2", b"HTTP/2": "2", b"HTTP/3.0": "3"}
_TRUE = frozenset({b"on", b"1", b"yes", b"true"})
_FALSE = frozenset({b"off", b"0", b"no", b"false"})
_SCHEMES = {b"http": "http", b"https": "https", b"ws": "http", b"wss": "https"}
#: Framing of the client's request to nginx: nginx re-frames the body with CONTENT_LENGTH, so these no
#: longer describe what the app receives.
_CLIENT_FRAMING = frozenset({b"HTTP_CONTENT_LENGTH", b"HTTP_TRANSFER_ENCODING"})

WEBSOCKET_REFUSAL = (
    "WebSocket is not available over the uWSGI protocol. Route WebSocket requests to an HTTP listener with "
    "nginx proxy_pass (with the Upgrade and Connection headers set) instead of uwsgi_pass."
)


def request_scope(request: Request, transport_conn: ConnectionInfo, context: ServerContext) -> Scope:
    """The scope of one request. Raises `HeadRejected` for a request that must not reach the app."""
    config = context.config
    # The first value of each variable, looked up in one place: some twenty lookups per request, and a block
    # of thousands of variables must not make each of them a scan.
    first = dict(reversed(request.variables))
    method = first.get(b"REQUEST_METHOD")
    if not method or not is_token(method):
        raise HeadRejected(400, "The uWSGI request has no valid REQUEST_METHOD variable.")
    script_name = first.get(b"SCRIPT_NAME")
    target = _target(first, script_name)
    if (
        config.limit_request_line
        and len(method) + len(target) + _REQUEST_LINE_OVERHEAD > config.limit_request_line
    ):
        raise HeadRejected(414, "The request target is longer than limit_request_line allows.")
    headers = _headers(request, first)
    if len(headers) > config.limit_request_fields:
        raise HeadRejected(431, "The request has more header fields than limit_request_fields allows.")
    field_limit = config.limit_request_field_size
    for name, value in headers:
        if field_limit and len(name) + len(value) + 2 > field_limit:
            raise HeadRejected(431, "A request header field is larger than limit_request_field_size allows.")
        if name == b"upgrade" and b"websocket" in value.lower():
            raise HeadRejected(501, WEBSOCKET_REFUSAL)
    conn = ConnectionInfo(
        client=_client(first),
        server=_server(first, transport_conn.server),
        scheme=_scheme(first),
    )
    extensions: dict[str, Any] = {
        "http.response.pathsend": {},
        "uwsgi": {"modifier1": request.modifier1, "modifier2": request.modifier2, "vars": request.variables},
    }
    return build_http_scope(
        conn=conn,
        method=method.decode("ascii"),
        http_version=_HTTP_VERSIONS.get(first.get(b"SERVER_PROTOCOL") or b"", "1.1"),
        target=target,
        headers=headers,
        root_path=_root_path(script_name, config.root_path),
        state=context.state,
        extensions=extensions,
    )


def _target(first: dict[bytes, bytes], script_name: bytes | None) -> bytes:
    uri = first.get(b"REQUEST_URI")
    path_info = first.get(b"PATH_INFO")
    query = first.get(b"QUERY_STRING")
    uri_path, uri_query = split_target(uri) if uri else (b"", b"")
    if path_info:
        if not _agrees(uri_path, path_info, script_name):
            # PATH_INFO is percent-decoded: encode it again so that decoding gives it back exactly.
            uri_path = quote_from_bytes(path_info, safe=_PATH_SAFE).encode("ascii")
    elif not uri:
        uri_path = b"/"
    if query is None:
        query = uri_query
    target = uri_path + b"?" + query if query else uri_path
    if _BAD_TARGET_BYTE.search(target) or not (uri_path.startswith(b"/") or uri_path == b"*"):
        raise HeadRejected(400, "The request target (REQUEST_URI, PATH_INFO, QUERY_STRING) is not valid.")
    return target


def _agrees(uri_path: bytes, path_info: bytes, script_name: bytes | None) -> bool:
    """Whether REQUEST_URI's path decodes to PATH_INFO, alone or under SCRIPT_NAME (a front end may or may not
    have stripped the mount point from PATH_INFO)."""
    if not uri_path.startswith(b"/"):
        return False
    decoded = unquote_to_bytes(uri_path) if uri_path.find(b"%") >= 0 else uri_path
    if decoded == path_info:
        return True
    root = script_name.rstrip(b"/") if script_name else b""
    return bool(root) and decoded == root + path_info


def _headers(request: Request, first: dict[bytes, bytes]) -> Headers:
    content_type = first.get(b"CONTENT_TYPE")
    headers: Headers = []
    for name, value in request.variables:
        if name.startswith(b"HTTP_"):
            if name in _CLIENT_FRAMING or (name == b"HTTP_CONTENT_TYPE" and content_type):
                continue
            header = name[5:].lower().replace(b"_", b"-")
        elif name == b"CONTENT_TYPE" and value:
            header = b"content-type"
        elif name == b"CONTENT_LENGTH" and value:
            header = b"content-length"
        else:
            continue
        # RFC 9110 section 5.5: a control character other than HTAB makes the field invalid (nginx passes
        # BEL, DEL, ESC... through), and the name must be a token once the CGI spelling is undone.
        if not is_token(header) or has_control_character(value):
            raise HeadRejected(400, f"The request variable {name[:64]!r} is not a valid header field.")
        headers.append((header, value))
    return headers


def _client(first: dict[bytes, bytes]) -> Address | None:
    host = first.get(b"REMOTE_ADDR")
    if not host:
        return None
    return (host.decode("latin-1"), _port(first.get(b"REMOTE_PORT")))


def _server(first: dict[bytes, bytes], transport_server: Address | None) -> Address | None:
    host = first.get(b"SERVER_NAME") or first.get(b"SERVER_ADDR")
    port = _port(first.get(b"SERVER_PORT"))
    if not host:
        return transport_server
    if port is None and transport_server is not None:
        port = transport_server[1]
    return (host.decode("latin-1"), port)


def _port(raw: bytes | None) -> int | None:
    if raw and len(raw) <= len(str(_MAX_PORT)) and raw.isdigit() and int(raw) <= _MAX_PORT:
        return int(raw)
    return None


def _scheme(first: dict[bytes, bytes]) -> str:
    """Explicit settings first (UWSGI_SCHEME, wsgi.url_scheme, HTTPS), then nginx's own REQUEST_SCHEME."""
    for name in (b"UWSGI_SCHEME", b"wsgi.url_scheme"):
        scheme = _SCHEMES.get((first.get(name) or b"").strip().lower())
        if scheme is not None:
            return scheme
    https = (first.get(b"HTTPS") or b"").strip().lower()
    if https in _TRUE:
        return "https"
    if https in _FALSE:
        return "http"
    return _SCHEMES.get((first.get(b"REQUEST_SCHEME") or b"").strip().lower(), "http")


def _root_path(script_name: bytes | None, default: str) -> str:
    if not script_name:
        return default
    root = script_name.decode("utf-8", "replace").rstrip("/")
    if root and not root.startswith("/"):
        root = "/" + root
    return root
