"""The streams a request can open: a request for the app, an RFC 9220 tunnel, or a short reply the app never
sees. How each opens is asgi-core's (`stream_cycle`, `tunnel_upgrade`), as for HTTP/2."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from asgi_core import ConnectionInfo, RequestHead, error_response, response_head, stream_cycle, tunnel_upgrade

from ._request import RequestStream
from ._tunnel import TunnelStream

if TYPE_CHECKING:
    from ._protocol import H3Protocol


def new_request(
    protocol: H3Protocol, stream_id: int, head: RequestHead, conn: ConnectionInfo, *, ended: bool
) -> RequestStream:
    """A request for the app, its cycle ready to run."""
    stream = RequestStream(protocol, stream_id, head, ended=ended)
    stream.cycle = stream_cycle(stream, protocol.context, conn, head, "3", ended=ended)
    return stream


def open_tunnel(
    protocol: H3Protocol, stream_id: int, head: RequestHead, conn: ConnectionInfo
) -> tuple[TunnelStream, asyncio.Protocol] | int:
    """An extended CONNECT (RFC 9220) handed to the upgrade handler registered for its `:protocol`, or the
    status to refuse it with: 501 when none is, 400 when the handler does not accept the request."""
    upgrade = tunnel_upgrade(protocol.context, conn, head, "3")
    if isinstance(upgrade, int):
        return upgrade
    handler, request = upgrade
    return TunnelStream(protocol, stream_id, conn), handler.create_protocol(protocol.context, request)


def reply_status(protocol: H3Protocol, stream_id: int, status: int, *, head_only: bool) -> None:
    """A short error response for a request the app never sees."""
    fields, body = error_response(status)
    protocol.send_headers(stream_id, response_head(status, fields), end_stream=head_only)
    if not head_only:
        protocol.send_data(stream_id, body, end_stream=True)
