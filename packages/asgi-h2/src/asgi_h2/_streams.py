"""The streams a request can open besides a plain one's bookkeeping: a request for the app (from a header block
or from the HTTP/1.1 request that asked for h2c), an RFC 8441 tunnel, or a short reply the app never sees.

Each is built here and registered in `protocol.streams`; the protocol decides whether it may open at all and,
for a request, when its app starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from asgi_core import ConnectionInfo, Headers, RequestCycle, UpgradeRequest, build_http_scope, error_response

from ._headers import CONNECTION_SPECIFIC, RequestHead
from ._request import RequestStream
from ._stream import OutboundStream
from ._tunnel import TunnelStream

if TYPE_CHECKING:
    from ._protocol import H2Protocol

_UPGRADE_ONLY: Final = frozenset({b"http2-settings"}) | CONNECTION_SPECIFIC
_EXTENSIONS: Final[dict[str, Any]] = {
    "http.response.pathsend": {},
    "http.response.early_hint": {},
    "http.response.trailers": {},
}


def request_stream(
    protocol: H2Protocol, stream_id: int, head: RequestHead, conn: ConnectionInfo, *, ended: bool
) -> RequestStream:
    """A request for the app, registered, its cycle ready to run."""
    stream = RequestStream(
        protocol, stream_id, expect_continue=head.expect_continue and not ended, head_request=head.method == "HEAD"
    )
    stream.peer_ended = ended
    config = protocol.config
    scope = build_http_scope(
        conn=conn,
        method=head.method,
        http_version="2",
        target=head.path,
        headers=head.headers,
        root_path=config.root_path,
        state=protocol.context.state,
        extensions=dict(_EXTENSIONS),
    )
    stream.cycle = RequestCycle(
        scope, stream, protocol.context, content_length=head.content_length, body_expected=not ended
    )
    protocol.streams[stream_id] = stream
    return stream


def upgrade_stream(protocol: H2Protocol, upgrade: UpgradeRequest) -> RequestStream:
    """RFC 7540 section 3.2: the request that asked for h2c, answered on stream 1."""
    headers = [(name, value) for name, value in upgrade.headers if name not in _UPGRADE_ONLY]
    stream = RequestStream(protocol, 1, head_request=upgrade.method == "HEAD")
    stream.peer_ended = True
    scope = build_http_scope(
        conn=upgrade.conn,
        method=upgrade.method,
        http_version="2",
        target=upgrade.target,
        headers=headers,
        root_path=protocol.config.root_path,
        state=protocol.context.state,
        extensions=dict(_EXTENSIONS),
    )
    stream.cycle = RequestCycle(scope, stream, protocol.context, body_expected=False)
    protocol.streams[1] = stream
    return stream


def open_tunnel(
    protocol: H2Protocol, stream_id: int, head: RequestHead, conn: ConnectionInfo, *, ended: bool, enabled: bool
) -> None:
    """An extended CONNECT (RFC 8441): the stream handed to the registered upgrade handler, or a 501 / 400."""
    name = (head.protocol or "").lower()
    registry = protocol.context.registry
    handler = registry.upgrade(name) if registry is not None and enabled and name != "h2c" else None
    if handler is None:
        reply_status(protocol, stream_id, 501, peer_ended=ended)
        return
    request = UpgradeRequest(
        method="CONNECT",
        target=head.path,
        http_version="2",
        headers=head.headers,
        conn=conn,
        leftover=b"",
        config=protocol.config,
    )
    if not handler.accepts(request):
        reply_status(protocol, stream_id, 400, peer_ended=ended)
        return
    tunnel = TunnelStream(protocol, stream_id)
    protocol.streams[stream_id] = tunnel
    tunnel.attach(handler.create_protocol(protocol.context, request))
    if ended:
        tunnel.end_of_body()


def reply_status(
    protocol: H2Protocol, stream_id: int, status: int, *, peer_ended: bool, head_only: bool = False
) -> None:
    """A short error response for a request the app never sees (a body still coming is refused with
    RST_STREAM NO_ERROR once the response is out)."""
    fields, body = error_response(status)
    stream = OutboundStream(protocol, stream_id)
    stream.peer_ended = peer_ended
    protocol.streams[stream_id] = stream
    headers: Headers = [(b":status", str(status).encode("ascii")), *fields]
    if head_only:
        protocol.send_headers(stream, headers, end_stream=True)
        if not stream.closed:
            stream.mark_ended()
        return
    protocol.send_headers(stream, headers, end_stream=False)
    stream.queue(body)
    stream.finish()


def is_head(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name == b":method" and value == b"HEAD" for name, value in headers)
