"""The registry entry: how HTTP/1.1 (and HTTP/2 extended CONNECT) hand a connection to WebSocket."""

from __future__ import annotations

from asgi_core import ServerContext, UpgradeRequest

from ._handshake import wants_websocket
from ._protocol import WebSocketProtocol


class WebSocketUpgrade:
    """An `asgi_core.UpgradeHandler` for the `websocket` token.

    `accepts` is true for every request that asks to switch to WebSocket in HTTP's own terms, valid handshake
    or not: the protocol then answers an invalid one with 400 (426 for an unsupported version) itself, as
    RFC 6455 section 4.2.1 requires, rather than letting it reach the app as a plain HTTP request.
    """

    token = "websocket"  # noqa: S105 - an Upgrade token, not a secret

    def accepts(self, request: UpgradeRequest) -> bool:
        return wants_websocket(request)

    def create_protocol(self, context: ServerContext, request: UpgradeRequest) -> WebSocketProtocol:
        return WebSocketProtocol(context, request)


UPGRADE = WebSocketUpgrade()
