"""The streams a request can open: a request for the app, or a short reply the app never sees."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

from asgi_core import ConnectionInfo, Headers, RequestCycle, UpgradeRequest, build_http_scope, error_response

from ._headers import RequestHead
from ._request import RequestStream
from ._tunnel import TunnelStream

if TYPE_CHECKING:
    from ._protocol import H3Protocol

_EXTENSIONS: Final[dict[str, Any]] = {
    "http.response.pathsend": {},
    "http.response.early_hint": {},
    "http.response.trailers": {},
}


def new_request(
    protocol: H3Protocol, stream_id: int, head: RequestHead, conn: ConnectionInfo, *, ended: bool
) -> RequestStream:
    """A request for the app, its cycle ready to run."""
    stream = RequestStream(
        protocol, stream_id, expect_continue=head.expect_continue and not ended, head_request=head.method == "HEAD"
    )
    stream.peer_ended = ended
    config = protocol.config
    scope = build_http_scope(
        conn=conn,
        method=head.method,
        http_version="3",
        target=head.path,
        headers=head.headers,
        root_path=config.root_path,
        state=protocol.context.state,
        extensions=dict(_EXTENSIONS),
    )
    stream.cycle = RequestCycle(
        scope, stream, protocol.context, content_length=head.content_length, body_expected=not ended
    )
    return stream


def open_tunnel(
    protocol: H3Protocol, stream_id: int, head: RequestHead, conn: ConnectionInfo
) -> tuple[TunnelStream, asyncio.Protocol] | int:
    """An extended CONNECT (RFC 9220) handed to the upgrade handler registered for its `:protocol`, or the
    status to refuse it with: 501 when none is, 400 when the handler does not accept the request."""
    name = (head.protocol or "").lower()
    registry = protocol.context.registry
    handler = registry.upgrade(name) if registry is not None and name and name != "h2c" else None
    if handler is None:
        return 501
    request = UpgradeRequest(
        method="CONNECT",
        target=head.path,
        http_version="3",
        headers=head.headers,
        conn=conn,
        leftover=b"",
        config=protocol.config,
    )
    if not handler.accepts(request):
        return 400
    return TunnelStream(protocol, stream_id, conn), handler.create_protocol(protocol.context, request)


def reply_status(protocol: H3Protocol, stream_id: int, status: int, *, head_only: bool) -> None:
    """A short error response for a request the app never sees."""
    fields, body = error_response(status)
    headers: Headers = [(b":status", str(status).encode("ascii")), *fields]
    protocol.send_headers(stream_id, headers, end_stream=head_only)
    if not head_only:
        protocol.send_data(stream_id, body, end_stream=True)
