"""Builders for the ASGI `http` and `websocket` scopes, exactly as ASGI spec 2.4 describes them.

Hot module: a scope is built for every request (its speed tricks: docs/discussion/design.md, "Speed").
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import quote, unquote_to_bytes

from ._connection import ConnectionInfo
from ._types import Headers, Scope

ASGI_VERSION: Final = {"version": "3.0", "spec_version": "2.4"}
_SCHEME_TO_WS: Final = {"http": "ws", "https": "wss"}
#: Characters RFC 3986 allows as they are in a path segment; the rest of a root_path is percent-encoded.
_PATH_SAFE: Final = "/:@!$&'()*+,;=~"


def split_target(target: bytes) -> tuple[bytes, bytes]:
    """Request target -> (raw path, query string) for every RFC 9112 form.

    origin-form `/a?b` and asterisk-form `*` keep their path; absolute-form `http://host/a?b` is reduced to its
    path, as RFC 9112 section 3.2.2 asks a server to treat it; authority-form (CONNECT) has no path of its own.
    A fragment (`#...`) is never part of a request target (RFC 9112 section 3.2, RFC 3986 section 3.5): a
    client that sends one anyway gets it dropped, not folded into the path or the query.
    """
    target = target.partition(b"#")[0]
    raw_path, _, query = target.partition(b"?")
    if raw_path[:1] == b"/" or raw_path == b"*":
        return raw_path, query
    scheme_end = raw_path.find(b"://")
    if scheme_end > 0:
        path_start = raw_path.find(b"/", scheme_end + 3)
        return (raw_path[path_start:] if path_start >= 0 else b"/"), query
    return target, b""  # authority-form: the whole target is the authority, there is no path or query


def decode_path(raw_path: bytes) -> str:
    """Percent-decode and read as UTF-8; bytes that are not UTF-8 become U+FFFD rather than failing."""
    if raw_path.isascii():
        # The usual path, checked as text: for bytes, `in` costs an exception raised and cleared on the way.
        path = raw_path.decode("ascii")
        if "%" not in path:
            return path
    return unquote_to_bytes(raw_path).decode("utf-8", "replace")


def mount(root_path: str, path: str, raw_path: bytes) -> tuple[str, bytes]:
    """Make `path` include `root_path` whether or not the proxy in front stripped the prefix, never twice."""
    # Asterisk- and authority-form targets (OPTIONS *, CONNECT host:port) are not paths: nothing to mount.
    if not root_path or not raw_path.startswith(b"/") or path == root_path or path.startswith(root_path + "/"):
        return path, raw_path
    # raw_path is the wire form, so the (decoded) root_path joins it percent-encoded.
    return root_path + path, quote(root_path, safe=_PATH_SAFE).encode("ascii") + raw_path


def build_http_scope(  # not keyword-only: the HTTP/1.1 protocol passes all by position (see its call)
    conn: ConnectionInfo,
    method: str,
    http_version: str,
    target: bytes,
    headers: Headers,
    root_path: str,
    state: dict[str, Any] | None,
    extensions: dict[str, Any],
) -> Scope:
    raw_path, query = split_target(target)
    path = decode_path(raw_path)
    if root_path:
        path, raw_path = mount(root_path, path, raw_path)
    scope: Scope = {
        "type": "http",
        "asgi": ASGI_VERSION,
        "http_version": http_version,
        "method": method,
        "scheme": conn.scheme,
        "path": path,
        "raw_path": raw_path,
        "query_string": query,
        "root_path": root_path,
        "headers": headers,
        "client": conn.client,
        "server": conn.server,
        "extensions": extensions if conn.tls_extension is None else {**extensions, "tls": conn.tls_extension},
    }
    if state is not None:
        scope["state"] = state.copy()  # shallow copy per request, as the lifespan spec asks
    return scope


def build_websocket_scope(
    *,
    conn: ConnectionInfo,
    http_version: str,
    target: bytes,
    headers: Headers,
    root_path: str,
    state: dict[str, Any] | None,
    extensions: dict[str, Any],
) -> Scope:
    raw_path, query = split_target(target)
    path, raw_path = mount(root_path, decode_path(raw_path), raw_path)
    subprotocols = [
        token.strip().decode("latin-1")
        for name, value in headers
        if name == b"sec-websocket-protocol"
        for token in value.split(b",")
        if token.strip()
    ]
    scope: Scope = {
        "type": "websocket",
        "asgi": ASGI_VERSION,
        "http_version": http_version,
        "scheme": _SCHEME_TO_WS.get(conn.scheme, "ws"),
        "path": path,
        "raw_path": raw_path,
        "query_string": query,
        "root_path": root_path,
        "headers": headers,
        "client": conn.client,
        "server": conn.server,
        "subprotocols": subprotocols,
        # A new dict: the caller's may be a constant shared by every connection.
        "extensions": extensions if conn.tls_extension is None else {**extensions, "tls": conn.tls_extension},
    }
    if state is not None:
        scope["state"] = state.copy()
    return scope
