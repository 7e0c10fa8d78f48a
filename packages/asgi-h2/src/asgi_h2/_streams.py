"""The streams a request can open besides a plain one's bookkeeping: a request for the app (from a header block
or from the HTTP/1.1 request that asked for h2c), an RFC 8441 tunnel, or a short reply the app never sees.

Each is built here and registered in `protocol.streams`; the protocol decides whether it may open at all and,
for a request, when its app starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from asgi_core import (
    CONNECTION_SPECIFIC,
    ConnectionInfo,
    RequestHead,
    UpgradeRequest,
    error_response,
    response_head,
    stream_cycle,
    tunnel_upgrade,
)

from ._request import RequestStream
from ._stream import OutboundStream
from ._tunnel import TunnelStream

if TYPE_CHECKING:
    from ._protocol import H2Protocol

_UPGRADE_ONLY: Final = frozenset({b"http2-settings"}) | CONNECTION_SPECIFIC


def request_stream(
    protocol: H2Protocol, stream_id: int, head: RequestHead, conn: ConnectionInfo, *, ended: bool
) -> RequestStream:
    """A request for the app, registered, its cycle ready to run."""
    stream = RequestStream(protocol, stream_id, head, ended=ended)
    stream.cycle = stream_cycle(stream, protocol.context, conn, head, "2", ended=ended)
    protocol.streams[stream_id] = stream
    return stream


def upgrade_stream(protocol: H2Protocol, upgrade: UpgradeRequest) -> RequestStream:
    """RFC 7540 section 3.2: the request that asked for h2c, answered on stream 1 (its body, if any, was
    refused before the upgrade: `H2CUpgrade.accepts`)."""
    head = RequestHead(
        method=upgrade.method,
        path=upgrade.target,
        protocol=None,
        headers=[(name, value) for name, value in upgrade.headers if name not in _UPGRADE_ONLY],
        content_length=None,
        expect_continue=False,
    )
    return request_stream(protocol, 1, head, upgrade.conn, ended=True)


def open_tunnel(
    protocol: H2Protocol, stream_id: int, head: RequestHead, conn: ConnectionInfo, *, ended: bool, enabled: bool
) -> None:
    """An extended CONNECT (RFC 8441): the stream handed to the registered upgrade handler, or a 501 / 400."""
    upgrade = tunnel_upgrade(protocol.context, conn, head, "2") if enabled else 501
    if isinstance(upgrade, int):
        reply_status(protocol, stream_id, upgrade, peer_ended=ended)
        return
    handler, request = upgrade
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
    headers = response_head(status, fields)
    if head_only:
        protocol.sender.send_headers(stream, headers, end_stream=True)
        if not stream.closed:
            stream.mark_ended()
        return
    protocol.sender.send_headers(stream, headers, end_stream=False)
    stream.queue(body)
    stream.finish()
